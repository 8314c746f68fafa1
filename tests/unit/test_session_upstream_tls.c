/*
 * The session with --upstream-tls, on the harness of test_session.c (one
 * real worker, a real TLS client on a socketpair, the clocks in the test's
 * hands) with a broker that speaks TLS itself: a BoringSSL server on the
 * accepted broker socket, driven here. The hard cases of a second TLS
 * side: the CONNECT goes out only inside the handshake's protection;
 * bytes that wait inside the broker's SSL while the client does not read
 * arrive once it reads again, without the loop spinning meanwhile (pump
 * fails on a spin); backpressure both ways across both TLS sides; bytes
 * behind the CONNECT held for the handshake; a KeyUpdate; close_notify
 * both ways; a wrong name and a broker that never handshakes.
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
#include "proxy/upstream_tls.h"

/* The broker's certificate (DNS:localhost, its own CA) and context. */
static char broker_pem[128], broker_key[128];
static SSL_CTX *broker_ctx;

/* The TLS broker: plaintext in |got| and to send in |out|. */
static struct tb {
	SSL *ssl;
	int mute;           /* accepts, never answers the handshake */
	int paused;         /* does not read */
	size_t record;      /* largest record it sends; 0: 16384 */
	int hs_done, notify, eof, tls_error;
	struct bytes got, out;
} tb;

static size_t tb_io(struct fx *f)
{
	uint8_t buf[65536];
	size_t moved = 0;
	int r;

	if (f->b.fd < 0 || tb.mute)
		return 0;
	if (tb.ssl == NULL) {
		assert_non_null(tb.ssl = SSL_new(broker_ctx));
		SSL_set_fd(tb.ssl, f->b.fd);
		SSL_set_accept_state(tb.ssl);
		moved++;
	}
	if (tb.tls_error || tb.eof)
		return moved;
	if (!tb.hs_done) {
		r = SSL_do_handshake(tb.ssl);
		if (r == 1) {
			tb.hs_done = 1;
			moved++;
		} else if (SSL_get_error(tb.ssl, r) != SSL_ERROR_WANT_READ) {
			tb.tls_error = 1;
			ERR_clear_error();
			return moved + 1;
		} else {
			return moved;
		}
	}
	while (bytes_left(&tb.out) > 0) {
		size_t max = tb.record ? tb.record : 16384;
		size_t n = bytes_left(&tb.out) < max ? bytes_left(&tb.out) : max;

		r = SSL_write(tb.ssl, tb.out.p + tb.out.off, (int)n);
		if (r <= 0) {
			ERR_clear_error();
			break;
		}
		bytes_take(&tb.out, (size_t)r);
		moved += (size_t)r;
	}
	while (!tb.paused && !tb.notify) {
		r = SSL_read(tb.ssl, buf, sizeof(buf));
		if (r > 0) {
			bytes_add(&tb.got, buf, (size_t)r);
			moved += (size_t)r;
			continue;
		}
		switch (SSL_get_error(tb.ssl, r)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_ZERO_RETURN:
			tb.notify = 1;
			moved++;
			break;
		default:
			tb.eof = 1;
			moved++;
			break;
		}
		ERR_clear_error();
		break;
	}
	return moved;
}

/* pump() with the TLS broker as one more peer: fails on a spin. */
static void tpump(struct fx *f)
{
	int quiet = 0;

	for (int i = 0; i < PUMP_MAX; i++) {
		long ready = spy.epoll_ready;
		size_t moved;

		loop_once(f);
		moved = peers_io(f) + tb_io(f);
		if (moved == 0 && spy.epoll_ready == ready &&
		    event_base_get_num_events(f->w.base, EVENT_BASE_COUNT_ACTIVE) == 0)
			quiet++;
		else
			quiet = 0;
		if (quiet >= 2)
			return;
	}
	fail_msg("the worker loop never went quiet in %d passes (a spin?)", PUMP_MAX);
}

/* The worker of test_session.c, its broker speaking TLS for |sni|. */
static void start(struct fx *f, const char *sni, size_t max_buffer)
{
	struct fx_opts o = { .auth = FX_AUTH_OFF, .up = FX_UP_BROKER, .max_buffer = max_buffer };
	char err[512];

	fx_start(f, &o);
	f->b.paused = 1;    /* the raw broker reads nothing: tb_io speaks TLS on its socket */
	f->run.upstream_tls = 1;
	f->run.upstream_ca = broker_pem;
	f->run.upstream_sni = (char *)sni;
	if (!upstream_tls_setup(&f->p, &f->run, err, sizeof(err)))
		fail_msg("upstream_tls_setup: %s", err);
}

static int setup(void **state)
{
	memset(&tb, 0, sizeof(tb));
	return fx_setup(state);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	SSL_CTX *ctx = f->p.upstream_ctx;
	struct upstream_name *names = f->p.upstream_names;
	int rc;

	/* The sessions go first (worker_cleanup in fx_teardown), then what
	 * their SSLs borrowed. */
	rc = fx_teardown(state);
	SSL_CTX_free(ctx);
	free(names);
	SSL_free(tb.ssl);
	bytes_free(&tb.got);
	bytes_free(&tb.out);
	memset(&tb, 0, sizeof(tb));
	return rc;
}

static void assert_tb_got(const void *want, size_t n)
{
	if (tb.got.len != n || (n > 0 && memcmp(tb.got.p, want, n) != 0))
		fail_msg("the TLS broker got %zu bytes, %zu expected", tb.got.len, n);
}

/* A client in FORWARDING through the TLS broker, CONNECT and CONNACK done
 * (and cleared from both byte logs). */
static struct client *tls_forwarding_client(struct fx *f, unsigned level)
{
	struct client *c = client_new(f);
	struct pkt p;

	client_handshake(f, c);
	mk_connect(&p, level, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	tpump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_true(tb.hs_done);
	assert_tb_got(p.b, p.n);
	tb.got.len = 0;
	bytes_add(&tb.out, CONNACK_OK_311, sizeof(CONNACK_OK_311));
	tpump(f);
	assert_client_got(c, CONNACK_OK_311, sizeof(CONNACK_OK_311));
	c->got.len = 0;
	return c;
}

static void test_connect_reaches_the_tls_broker_whole_and_its_connack_comes_back(void **state)
{
	struct fx *f = *state;

	start(f, "localhost", 0);
	(void)tls_forwarding_client(f, 4);
	assert_int_equal(f->b.accepted, 1);
}

static void test_bytes_cross_both_tls_sides_both_ways_with_small_buffers(void **state)
{
	struct fx *f = *state;
	struct client *c;
	struct bytes up = { 0 }, down = { 0 };

	start(f, "localhost", 16384);
	c = tls_forwarding_client(f, 4);
	mk_publish(&up, "t/up", 300000, 1);
	mk_publish(&down, "t/down", 300000, 2);
	client_send(c, up.p, up.len);
	bytes_add(&tb.out, down.p, down.len);
	tpump(f);
	assert_tb_got(up.p, up.len);
	assert_client_got(c, down.p, down.len);
	bytes_free(&up);
	bytes_free(&down);
}

/*
 * Small records: one read of the broker socket takes many, so when to_client
 * is full the rest wait in mqtls's read-ahead and SSL, with nothing left in
 * the socket to wake it. The turn that reads them must come from the hub
 * once the client has room again, and no turn may spin while it has none.
 */
static void test_broker_bytes_held_while_the_client_does_not_read_arrive_when_it_does(void **state)
{
	struct fx *f = *state;
	struct client *c;
	struct bytes down = { 0 };

	start(f, "localhost", 16384);
	c = tls_forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	c->paused = 1;
	tb.record = 700;
	mk_publish(&down, "t/down", 40000, 3);
	bytes_add(&tb.out, down.p, down.len);
	tpump(f);    /* quiet although records wait inside: no spin */
	assert_true(c->got.len < down.len);
	assert_int_equal(bytes_left(&tb.out), 0);
	c->paused = 0;
	tpump(f);
	assert_client_got(c, down.p, down.len);
	bytes_free(&down);
}

static void test_client_bytes_held_while_the_broker_does_not_read_arrive_when_it_does(void **state)
{
	struct fx *f = *state;
	struct client *c;
	struct bytes up = { 0 };

	start(f, "localhost", 16384);
	c = tls_forwarding_client(f, 4);
	tb.paused = 1;
	mk_publish(&up, "t/up", 200000, 4);
	client_send(c, up.p, up.len);
	tpump(f);
	assert_true(tb.got.len < up.len);
	tb.paused = 0;
	tpump(f);
	assert_tb_got(up.p, up.len);
	bytes_free(&up);
}

/* What the client sends behind its CONNECT while the broker's handshake is
 * still going waits for it, and then follows the CONNECT in order. */
static void test_bytes_behind_the_connect_wait_for_the_broker_handshake(void **state)
{
	struct fx *f = *state;
	struct client *c;
	struct bytes all = { 0 };
	struct pkt p;

	start(f, "localhost", 0);
	tb.mute = 1;
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 4, "c1", NULL, NULL);
	bytes_add(&all, p.b, p.n);
	mk_publish(&all, "t/early", 3000, 5);
	client_send(c, all.p, all.len);
	tpump(f);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	assert_int_equal(tb.got.len, 0);
	tb.mute = 0;
	tpump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_tb_got(all.p, all.len);
	bytes_free(&all);
}

/* A TLS 1.3 KeyUpdate from the broker that asks for one back: mqtls's
 * read takes it (and owes a write), and the bytes on both sides go on. */
static void test_broker_key_update_is_answered_and_bytes_go_on(void **state)
{
	struct fx *f = *state;
	struct client *c;
	struct bytes up = { 0 }, down = { 0 };

	start(f, "localhost", 0);
	c = tls_forwarding_client(f, 4);
	assert_int_equal(SSL_key_update(tb.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	mk_publish(&down, "t/down", 5000, 6);
	bytes_add(&tb.out, down.p, down.len);
	tpump(f);
	assert_client_got(c, down.p, down.len);
	mk_publish(&up, "t/up", 5000, 7);
	client_send(c, up.p, up.len);
	tpump(f);
	assert_tb_got(up.p, up.len);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	bytes_free(&up);
	bytes_free(&down);
}

static void test_broker_close_notify_ends_the_client_with_close_notify(void **state)
{
	struct fx *f = *state;
	struct client *c;

	start(f, "localhost", 0);
	c = tls_forwarding_client(f, 4);
	(void)SSL_shutdown(tb.ssl);
	tpump(f);
	assert_true(c->notify);
	assert_int_equal(state_of(f, c), -1);
	assert_close_line(f, c, "forwarding", "broker_closed");
}

static void test_client_close_sends_close_notify_to_the_broker(void **state)
{
	struct fx *f = *state;
	struct client *c;

	start(f, "localhost", 0);
	c = tls_forwarding_client(f, 4);
	client_close_notify(c);
	tpump(f);
	assert_true(tb.notify);
	assert_close_line(f, c, "forwarding", "client_closed");
}

static void test_wrong_broker_name_gets_connack_3_and_reason_broker_tls(void **state)
{
	static const uint8_t connack3[] = { 0x20, 0x02, 0x00, 0x03 };
	struct fx *f = *state;
	struct client *c;
	struct pkt p;

	start(f, "broker.other.example", 0);
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 4, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	tpump(f);
	assert_client_got(c, connack3, sizeof(connack3));
	assert_int_equal(tb.got.len, 0);
	assert_close_line(f, c, "upstream_connecting", "broker_tls");
	assert_true(log_has(f, "reason=broker_tls error=\"certificate verify failed: Hostname mismatch\""));
	assert_int_equal(counter_get(&f->w.metrics.broker_errors[BROKER_TLS]), 1);
}

static void test_broker_that_never_handshakes_gets_connack_0x88_at_the_upstream_deadline(void **state)
{
	static const uint8_t connack88[] = { 0x20, 0x03, 0x00, 0x88, 0x00 };
	struct fx *f = *state;
	struct client *c;
	struct pkt p;

	start(f, "localhost", 0);
	tb.mute = 1;
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 5, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	tpump(f);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	advance(f, 4900);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	advance(f, 200);
	assert_client_got(c, connack88, sizeof(connack88));
	assert_close_line(f, c, "upstream_connecting", "broker_timeout");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_connect_reaches_the_tls_broker_whole_and_its_connack_comes_back),
		T(test_bytes_cross_both_tls_sides_both_ways_with_small_buffers),
		T(test_broker_bytes_held_while_the_client_does_not_read_arrive_when_it_does),
		T(test_client_bytes_held_while_the_broker_does_not_read_arrive_when_it_does),
		T(test_bytes_behind_the_connect_wait_for_the_broker_handshake),
		T(test_broker_key_update_is_answered_and_bytes_go_on),
		T(test_broker_close_notify_ends_the_client_with_close_notify),
		T(test_client_close_sends_close_notify_to_the_broker),
		T(test_wrong_broker_name_gets_connack_3_and_reason_broker_tls),
		T(test_broker_that_never_handshakes_gets_connack_0x88_at_the_upstream_deadline),
	};
	int rc;

	session_tests_init();
	if (env_setup(&g_env) != 0) {
		fprintf(stderr, "# cannot set up the test environment\n");
		return 1;
	}
	snprintf(broker_pem, sizeof(broker_pem), "%s/broker.pem", g_env.dir);
	snprintf(broker_key, sizeof(broker_key), "%s/broker.key", g_env.dir);
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
		         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s -out %s "
		         "-subj /CN=localhost -days 2 -addext subjectAltName=DNS:localhost >/dev/null 2>&1",
		         broker_key, broker_pem);
		if (system(cmd) != 0 || (broker_ctx = SSL_CTX_new(TLS_method())) == NULL ||
		    !SSL_CTX_use_certificate_chain_file(broker_ctx, broker_pem) ||
		    !SSL_CTX_use_PrivateKey_file(broker_ctx, broker_key, SSL_FILETYPE_PEM)) {
			fprintf(stderr, "# cannot make the broker's certificate\n");
			env_teardown(&g_env);
			return 1;
		}
		SSL_CTX_set_mode(broker_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	SSL_CTX_free(broker_ctx);
	env_teardown(&g_env);
	return rc;
}
