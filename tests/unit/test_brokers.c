/*
 * The broker set (proxy/brokers.c, proxy/brokers_watch.c): the selection
 * rules as pure functions (first with failover, clientid-hash stability and
 * minimal movement), the back-off, building the set from --upstream values,
 * passive health as sessions report it, and the watcher's probe bringing a
 * broker back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "proxy/brokers_int.h"
#include "proxy/config.h"
#include "proxy/log.h"

#define ALL_UP 0u
#define NONE_TRIED 0u

/* ---- back-off ------------------------------------------------------------- */

static void test_backoff_starts_at_one_second_doubles_and_stops_at_thirty(void **state)
{
	assert_int_equal(brokers_backoff_ms(1), 1000);
	assert_int_equal(brokers_backoff_ms(2), 2000);
	assert_int_equal(brokers_backoff_ms(3), 4000);
	assert_int_equal(brokers_backoff_ms(4), 8000);
	assert_int_equal(brokers_backoff_ms(5), 16000);
	assert_int_equal(brokers_backoff_ms(6), 30000);     /* 32 s capped */
	assert_int_equal(brokers_backoff_ms(32), 30000);
	assert_int_equal(brokers_backoff_ms(UINT32_MAX), 30000);
	assert_int_equal(brokers_backoff_ms(0), 1000);      /* never below the first step */
}

/* ---- first ----------------------------------------------------------------- */

static void test_first_takes_the_brokers_in_the_order_given_as_each_fails(void **state)
{
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, ALL_UP, NONE_TRIED), 0);
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, ALL_UP, 1u), 1);
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, ALL_UP, 1u | 2u), 2);
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, ALL_UP, 7u), -1);
}

static void test_first_skips_brokers_marked_down_and_tries_them_last(void **state)
{
	unsigned down = 1u;    /* broker 0 */

	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, down, NONE_TRIED), 1);
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, down, 2u), 2);
	/* Every broker up has failed this client: the one marked down is
	 * still tried before the client is refused. */
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, down, 2u | 4u), 0);
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, down, 7u), -1);
	/* All down: the order given. */
	assert_int_equal(brokers_choose(3, BALANCE_FIRST, NULL, 7u, NONE_TRIED), 0);
}

/* ---- clientid-hash ----------------------------------------------------------- */

static const char *const specs3[] = { "mq-0.mq:1883", "mq-1.mq:1883", "mq-2.mq:1883" };

static int hash_pick(const char *const *specs, int n, const char *id, unsigned down, unsigned tried)
{
	uint64_t w[CONFIG_MAX_LIST];

	for (int i = 0; i < n; i++)
		w[i] = brokers_weight(specs[i], id, strlen(id));
	return brokers_choose(n, BALANCE_CLIENTID_HASH, w, down, tried);
}

/* The weight is part of the interface: a changed function or key would
 * move most devices to another broker on upgrade. These values pin it. */
static void test_weight_is_a_fixed_function_of_broker_and_client_id(void **state)
{
	uint64_t a = brokers_weight("mq-0.mq:1883", "sensor-17", 9);

	assert_true(a == brokers_weight("mq-0.mq:1883", "sensor-17", 9));
	assert_true(a != brokers_weight("mq-1.mq:1883", "sensor-17", 9));
	assert_true(a != brokers_weight("mq-0.mq:1883", "sensor-18", 9));
	assert_true(a == UINT64_C(0xe1577babff419d34));
}

static void test_same_client_id_picks_the_same_broker_whatever_the_order_given(void **state)
{
	const char *const reversed[] = { specs3[2], specs3[1], specs3[0] };

	for (int k = 0; k < 200; k++) {
		char id[32];
		int i, j;

		snprintf(id, sizeof(id), "device-%d", k);
		i = hash_pick(specs3, 3, id, ALL_UP, NONE_TRIED);
		j = hash_pick(reversed, 3, id, ALL_UP, NONE_TRIED);
		assert_true(i >= 0 && j >= 0);
		assert_string_equal(specs3[i], reversed[j]);
		assert_int_equal(hash_pick(specs3, 3, id, ALL_UP, NONE_TRIED), i);
	}
}

static void test_client_ids_spread_over_all_brokers(void **state)
{
	int count[3] = { 0 };

	for (int k = 0; k < 3000; k++) {
		char id[32];

		snprintf(id, sizeof(id), "client-%d", k);
		count[hash_pick(specs3, 3, id, ALL_UP, NONE_TRIED)]++;
	}
	for (int i = 0; i < 3; i++) {
		if (count[i] < 850 || count[i] > 1150)
			fail_msg("broker %d got %d of 3000 clients", i, count[i]);
	}
}

/* Rendezvous hashing: a broker going down moves its own clients, spread
 * over the others, and nobody else's. */
static void test_a_broker_down_moves_only_its_own_clients(void **state)
{
	int moved_to[3] = { 0 }, own = 0;

	for (int k = 0; k < 3000; k++) {
		char id[32];
		int before, after;

		snprintf(id, sizeof(id), "client-%d", k);
		before = hash_pick(specs3, 3, id, ALL_UP, NONE_TRIED);
		after = hash_pick(specs3, 3, id, 2u /* broker 1 down */, NONE_TRIED);
		if (before != 1) {
			assert_int_equal(after, before);
			continue;
		}
		own++;
		assert_int_not_equal(after, 1);
		moved_to[after]++;
	}
	assert_true(own > 0);
	/* Its clients spread over both others, not onto one of them. */
	assert_true(moved_to[0] > own / 4 && moved_to[2] > own / 4);
}

static void test_hash_fails_over_to_the_next_weight_and_tries_down_ones_last(void **state)
{
	const char *id = "sensor-17";
	int first = hash_pick(specs3, 3, id, ALL_UP, NONE_TRIED);
	int second = hash_pick(specs3, 3, id, ALL_UP, 1u << first);
	int third = hash_pick(specs3, 3, id, ALL_UP, (1u << first) | (1u << second));

	assert_true(first != second && second != third && first != third);
	assert_int_equal(hash_pick(specs3, 3, id, ALL_UP, 7u), -1);
	/* Its broker down: the second choice, and its own broker last. */
	assert_int_equal(hash_pick(specs3, 3, id, 1u << first, NONE_TRIED), second);
	assert_int_equal(hash_pick(specs3, 3, id, 1u << first, (1u << second) | (1u << third)), first);
}

/* ---- the set -------------------------------------------------------------- */

struct fx {
	struct config cfg;
	struct brokers *b;
	char err[512];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	log_set_level(LOG_ERROR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	brokers_free(f->b);
	for (int i = 0; i < f->cfg.n_upstream; i++)
		free(f->cfg.upstream[i]);
	free(f);
	return 0;
}

static struct brokers *build(struct fx *f, const char *balance, const char *spec, ...)
{
	va_list ap;

	f->cfg.upstream_balance = (char *)balance;
	f->cfg.resolve_interval = 30;
	va_start(ap, spec);
	for (; spec; spec = va_arg(ap, const char *))
		f->cfg.upstream[f->cfg.n_upstream++] = strdup(spec);
	va_end(ap);
	f->err[0] = '\0';
	f->b = brokers_new(&f->cfg, f->err, sizeof(f->err));
	return f->b;
}

static void assert_refused(struct fx *f, const char *what)
{
	assert_null(f->b);
	if (strstr(f->err, what) == NULL || strchr(f->err, '\n') != NULL)
		fail_msg("error \"%s\" should be one line mentioning \"%s\"", f->err, what);
}

static void test_bad_spec_is_a_one_line_error_naming_the_flag_and_value(void **state)
{
	struct fx *f = *state;

	build(f, "first", "127.0.0.1:1883", "127.0.0.1:99999", NULL);
	assert_refused(f, "--upstream '127.0.0.1:99999'");
}

static void test_unresolvable_host_is_an_error_naming_it(void **state)
{
	struct fx *f = *state;

	build(f, "first", "no-such-broker.invalid:1883", NULL);
	assert_refused(f, "--upstream 'no-such-broker.invalid:1883': cannot resolve");
}

static void test_the_same_broker_twice_is_an_error(void **state)
{
	struct fx *f = *state;

	build(f, "first", "127.0.0.1:1883", "127.0.0.1:1884", "127.0.0.1:1883", NULL);
	assert_refused(f, "--upstream 127.0.0.1:1883: given twice");
}

static void test_host_names_are_resolved_and_marked_for_re_resolution(void **state)
{
	struct fx *f = *state;
	struct address a;
	char text[128];

	assert_non_null(build(f, "first", "localhost:1883", "127.0.0.1:1884", "[::1]:1885", "unix:/run/m.sock",
	                      NULL));
	assert_int_equal(brokers_count(f->b), 4);
	assert_true(f->b->b[0].by_name);
	assert_false(f->b->b[1].by_name || f->b->b[2].by_name || f->b->b[3].by_name);
	brokers_address(f->b, 0, &a);
	address_format((const struct sockaddr *)&a.sa, a.len, text, sizeof(text));
	assert_true(strcmp(text, "127.0.0.1:1883") == 0 || strcmp(text, "[::1]:1883") == 0);
	assert_string_equal(brokers_spec(f->b, 3), "unix:/run/m.sock");
	brokers_describe(f->b, text, sizeof(text));
	assert_string_equal(text, "localhost:1883, 127.0.0.1:1884, [::1]:1885, unix:/run/m.sock (first)");
}

static int next(struct fx *f, const char *id, unsigned tried)
{
	struct address a;
	int i = brokers_next(f->b, id, strlen(id), tried, &a);
	struct address want;

	if (i >= 0) {
		brokers_address(f->b, i, &want);
		assert_memory_equal(&a, &want, sizeof(a));
	}
	return i;
}

/* Passive health: the first failure marks a broker down and sends new
 * sessions elsewhere; more failures meanwhile do not lengthen its
 * back-off; a session that reaches it brings it back. */
static void test_a_failed_connect_marks_the_broker_down_until_one_succeeds(void **state)
{
	struct fx *f = *state;
	uint64_t due;

	assert_non_null(build(f, "first", "127.0.0.1:1883", "127.0.0.1:1884", NULL));
	assert_int_equal(next(f, "a", NONE_TRIED), 0);
	brokers_failed(f->b, 0);
	assert_false(brokers_is_up(f->b, 0));
	assert_int_equal(brokers_failures(f->b, 0), 1);
	assert_int_equal(next(f, "a", NONE_TRIED), 1);
	due = atomic_load(&f->b->b[0].down_until);
	assert_true(due >= brokers_now_ms() + 900 && due <= brokers_now_ms() + 1000);
	brokers_failed(f->b, 0);
	assert_int_equal(brokers_failures(f->b, 0), 2);
	assert_true(atomic_load(&f->b->b[0].down_until) == due);
	brokers_connected(f->b, 0);
	assert_true(brokers_is_up(f->b, 0));
	assert_int_equal(next(f, "a", NONE_TRIED), 0);
}

/* Active health: each failed probe doubles the wait for the next one. */
static void test_each_failed_probe_doubles_the_wait_up_to_the_cap(void **state)
{
	struct fx *f = *state;
	uint64_t now = brokers_now_ms();
	static const uint32_t want[] = { 2000, 4000, 8000, 16000, 30000, 30000 };

	assert_non_null(build(f, "first", "127.0.0.1:1883", NULL));
	brokers_failed(f->b, 0);
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		brokers_probe_failed(f->b, 0, now);
		assert_true(atomic_load(&f->b->b[0].down_until) == now + want[k]);
	}
	brokers_mark_up(f->b, 0, "probe");
	assert_true(brokers_is_up(f->b, 0));
	/* Down again later: the back-off starts over at 1 s. */
	brokers_failed(f->b, 0);
	now = brokers_now_ms();
	brokers_probe_failed(f->b, 0, now);
	assert_true(atomic_load(&f->b->b[0].down_until) == now + 2000);
}

static int listener(struct sockaddr_in *in)
{
	socklen_t len = sizeof(*in);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)in, sizeof(*in)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)in, &len), 0);
	return fd;
}

/* The watcher probes a broker marked down once its back-off has run out:
 * one that listens is back within about a second, one that does not stays
 * down with its failed probes counted. */
static void test_the_watcher_brings_back_a_broker_that_answers_its_probe(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in up, gone;
	char a[32], b[32];
	int lfd = listener(&up), dead = listener(&gone);
	uint64_t deadline;

	close(dead);    /* nothing listens on that port now */
	snprintf(a, sizeof(a), "127.0.0.1:%u", ntohs(up.sin_port));
	snprintf(b, sizeof(b), "127.0.0.1:%u", ntohs(gone.sin_port));
	assert_non_null(build(f, "first", a, b, NULL));
	assert_true(brokers_start(f->b, 500));
	brokers_failed(f->b, 0);
	brokers_failed(f->b, 1);
	deadline = brokers_now_ms() + 3000;
	while (!brokers_is_up(f->b, 0) && brokers_now_ms() < deadline)
		usleep(20 * 1000);
	assert_true(brokers_is_up(f->b, 0));
	deadline = brokers_now_ms() + 3000;
	while (brokers_failures(f->b, 1) < 2 && brokers_now_ms() < deadline)
		usleep(20 * 1000);
	assert_true(brokers_failures(f->b, 1) >= 2);   /* the session's, then the probe's */
	assert_false(brokers_is_up(f->b, 1));
	close(lfd);
}

/* Re-resolution: the watcher resolves host names again on its own thread
 * and the next connect copies the fresh address. Here the stored address
 * of "localhost" is made stale by hand; the next resolution replaces it. */
static void test_the_watcher_resolves_host_names_again_and_swaps_the_address(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in *in;
	struct address a;
	char text[64];
	uint64_t deadline;
	int fresh = 0;

	assert_non_null(build(f, "first", "localhost:1883", "127.0.0.1:1884", NULL));
	pthread_mutex_lock(&f->b->lock);
	in = (struct sockaddr_in *)&f->b->b[0].addr.sa;
	memset(&f->b->b[0].addr, 0, sizeof(f->b->b[0].addr));
	in->sin_family = AF_INET;
	in->sin_port = htons(1883);
	in->sin_addr.s_addr = htonl(0xC0000201);    /* 192.0.2.1, TEST-NET-1 */
	f->b->b[0].addr.len = sizeof(*in);
	pthread_mutex_unlock(&f->b->lock);
	f->b->resolve_interval_ms = 50;
	assert_true(brokers_start(f->b, 500));
	deadline = brokers_now_ms() + 3000;
	while (!fresh && brokers_now_ms() < deadline) {
		brokers_address(f->b, 0, &a);
		address_format((const struct sockaddr *)&a.sa, a.len, text, sizeof(text));
		fresh = strcmp(text, "192.0.2.1:1883") != 0;
		if (!fresh)
			usleep(10 * 1000);
	}
	assert_true(fresh);
	assert_true(strcmp(text, "127.0.0.1:1883") == 0 || strcmp(text, "[::1]:1883") == 0);
	/* A literal address is never looked up again. */
	brokers_address(f->b, 1, &a);
	address_format((const struct sockaddr *)&a.sa, a.len, text, sizeof(text));
	assert_string_equal(text, "127.0.0.1:1884");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_starts_at_one_second_doubles_and_stops_at_thirty),
		cmocka_unit_test(test_first_takes_the_brokers_in_the_order_given_as_each_fails),
		cmocka_unit_test(test_first_skips_brokers_marked_down_and_tries_them_last),
		cmocka_unit_test(test_weight_is_a_fixed_function_of_broker_and_client_id),
		cmocka_unit_test(test_same_client_id_picks_the_same_broker_whatever_the_order_given),
		cmocka_unit_test(test_client_ids_spread_over_all_brokers),
		cmocka_unit_test(test_a_broker_down_moves_only_its_own_clients),
		cmocka_unit_test(test_hash_fails_over_to_the_next_weight_and_tries_down_ones_last),
		cmocka_unit_test_setup_teardown(test_bad_spec_is_a_one_line_error_naming_the_flag_and_value, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_unresolvable_host_is_an_error_naming_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_same_broker_twice_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_names_are_resolved_and_marked_for_re_resolution, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_connect_marks_the_broker_down_until_one_succeeds, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_each_failed_probe_doubles_the_wait_up_to_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_watcher_brings_back_a_broker_that_answers_its_probe, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_the_watcher_resolves_host_names_again_and_swaps_the_address, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
