/*
 * The hub's failover between brokers (session.c asking upstream.c for the
 * next one, proxy/brokers.c choosing it), on the harness of test_session.c:
 * one real worker, a real TLS client on a socketpair, a scripted broker on
 * a unix socket and the proxy's clock in the test's hands. A broker that
 * refuses costs nothing (the next one is tried in the same turn); one that
 * does not answer costs one --upstream-timeout; a client is refused only
 * after every broker was tried, with the reason of the last attempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

/* The harness serves test_session.c first; not all of it is used here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/unit/session_test_util.h"
#pragma GCC diagnostic pop
#include "proxy/brokers.h"

#define FX(state) ((struct fx *)*(state))

/* Installs the broker set |specs| (first balance) in the fixture's proxy,
 * as main() does from --upstream. */
static void use_brokers(struct fx *f, const char *const *specs, int n)
{
	struct config c;
	char err[512];

	memset(&c, 0, sizeof(c));
	for (int i = 0; i < n; i++)
		c.upstream[i] = (char *)specs[i];
	c.n_upstream = n;
	c.upstream_balance = (char *)"first";
	f->p.brokers = brokers_new(&c, err, sizeof(err));
	if (f->p.brokers == NULL)
		fail_msg("brokers_new: %s", err);
}

/* Before the fixture's teardown: no session uses the set any more. */
static void drop_brokers(struct fx *f)
{
	brokers_free(f->p.brokers);
	f->p.brokers = NULL;
}

static void test_a_refusing_first_broker_fails_over_to_the_next_in_the_same_turn(void **state)
{
	struct fx *f = FX(state);
	char dead[160], live[160];
	const char *specs[2] = { dead, live };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .up = FX_UP_BROKER });
	snprintf(dead, sizeof(dead), "unix:%s/nobody.sock", f->env->dir);
	snprintf(live, sizeof(live), "unix:%s", f->b.path);
	use_brokers(f, specs, 2);
	c = forwarding_client(f, 4);    /* forwarding, through the second broker */
	assert_true(log_has(f, "broker broker=unix:"));
	assert_true(log_has(f, "nobody.sock error=\"No such file or directory\""));
	assert_true(log_has(f, "state=down"));
	assert_false(brokers_is_up(f->p.brokers, 0));
	assert_true(brokers_is_up(f->p.brokers, 1));
	assert_int_equal(brokers_failures(f->p.brokers, 0), 1);
	assert_true(session_alive(f, c));
	drop_brokers(f);
}

static void test_a_silent_first_broker_costs_one_upstream_timeout_then_the_next_is_tried(void **state)
{
	struct fx *f = FX(state);
	struct address hole;
	char silent[160], live[160];
	const char *specs[2] = { silent, live };
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .up = FX_UP_BROKER, .upstream_ms = 2000 });
	broker_blackhole(f, &hole);
	address_format((const struct sockaddr *)&hole.sa, hole.len, silent, sizeof(silent));
	snprintf(live, sizeof(live), "unix:%s", f->b.path);
	use_brokers(f, specs, 2);
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 5, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	assert_int_equal(f->b.accepted, 0);
	advance(f, 1);
	pump(f);
	/* The second broker got the CONNECT, whole, and the client waits for
	 * its CONNACK: no refusal. */
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(f->b.accepted, 1);
	assert_broker_got(&f->b, p.b, p.n);
	assert_int_equal(c->got.len, 0);
	assert_true(log_has(f, "error=\"Connection timed out\""));
	assert_false(brokers_is_up(f->p.brokers, 0));
	drop_brokers(f);
}

static void test_every_broker_refusing_gets_connack_0x88_after_trying_each(void **state)
{
	struct fx *f = FX(state);
	char a[160], b[160];
	const char *specs[2] = { a, b };
	static const uint8_t want[] = { 0x20, 0x03, 0x00, 0x88, 0x00 };
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .up = FX_UP_NOWHERE });
	snprintf(a, sizeof(a), "unix:%s/nobody-a.sock", f->env->dir);
	snprintf(b, sizeof(b), "unix:%s/nobody-b.sock", f->env->dir);
	use_brokers(f, specs, 2);
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 5, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_gone(f, c);
	assert_client_got(c, want, sizeof(want));
	assert_true(log_has(f, "nobody-a.sock error="));
	assert_true(log_has(f, "nobody-b.sock error="));
	assert_close_line(f, c, "authenticating", "broker_unreachable");
	/* Both marked down now; the next client still tries both. */
	assert_false(brokers_is_up(f->p.brokers, 0) || brokers_is_up(f->p.brokers, 1));
	c = client_new(f);
	client_handshake(f, c);
	client_send_pkt(c, &p);
	pump(f);
	assert_gone(f, c);
	assert_client_got(c, want, sizeof(want));
	assert_int_equal(brokers_failures(f->p.brokers, 0), 2);
	assert_int_equal(brokers_failures(f->p.brokers, 1), 2);
	drop_brokers(f);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_a_refusing_first_broker_fails_over_to_the_next_in_the_same_turn),
		T(test_a_silent_first_broker_costs_one_upstream_timeout_then_the_next_is_tried),
		T(test_every_broker_refusing_gets_connack_0x88_after_trying_each),
	};
	int rc;

	session_tests_init();
	if (env_setup(&g_env) != 0) {
		fprintf(stderr, "session broker tests: cannot set up the environment\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	env_teardown(&g_env);
	return rc;
}
