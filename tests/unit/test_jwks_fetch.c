/*
 * The JWKS fetcher (proxy/auth/jwks_fetch.c) with its network replaced by a
 * fake fetch the test steers: key sets swapped by generation, checks
 * parked on a fetch and woken when it ends, the unknown-kid rate limit,
 * taking a parked check back, a failed fetch keeping the last good keys,
 * the refresh schedule, and a stop that wakes whoever still waits.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "proxy/auth/jwks_fetch.h"
#include "proxy/log.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/unit/jwt_test_util.h"
#pragma GCC diagnostic pop

static struct test_keys K;
static char *JWKS;

/* What the fake fetch does; steered by the test. */
struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int blocking;           /* each call waits for a release */
	int releases;
	enum jwks_result next;
	int64_t fresh_s;
	enum jwks_result after; /* what calls return once |next| was used, if set */
	int use_after;
};

static struct fake F;

static enum jwks_result fake_fetch(void *arg, struct jwt_keyset **out, int64_t *fresh_s,
                                   char *why, size_t whylen)
{
	struct fake *fk = arg;
	enum jwks_result r;
	char err[200];

	pthread_mutex_lock(&fk->lock);
	fk->calls++;
	pthread_cond_broadcast(&fk->cond);
	while (fk->blocking && fk->releases == 0)
		pthread_cond_wait(&fk->cond, &fk->lock);
	if (fk->releases > 0)
		fk->releases--;
	r = fk->next;
	if (fk->use_after)
		fk->next = fk->after;
	*fresh_s = fk->fresh_s;
	pthread_mutex_unlock(&fk->lock);
	if (r == JWKS_OK) {
		*out = jwt_keyset_parse_jwks((const uint8_t *)JWKS, strlen(JWKS), err, sizeof(err));
		if (*out == NULL)
			fail_msg("test JWKS: %s", err);
	} else {
		snprintf(why, whylen, "fake failure");
	}
	return r;
}

static void fake_set(int blocking, enum jwks_result next)
{
	pthread_mutex_lock(&F.lock);
	F.blocking = blocking;
	F.next = next;
	F.use_after = 0;
	pthread_mutex_unlock(&F.lock);
}

static void fake_release(enum jwks_result r)
{
	pthread_mutex_lock(&F.lock);
	F.next = r;
	F.releases++;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
}

static int fake_calls(void)
{
	int n;

	pthread_mutex_lock(&F.lock);
	n = F.calls;
	pthread_mutex_unlock(&F.lock);
	return n;
}

/* Waits (at most 5 s) until the fake was called |n| times. */
static void wait_calls(int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&F.lock);
	while (F.calls < n) {
		if (pthread_cond_timedwait(&F.cond, &F.lock, &ts) != 0)
			break;
	}
	n = F.calls < n ? F.calls : -1;
	pthread_mutex_unlock(&F.lock);
	if (n >= 0)
		fail_msg("the fetch was called %d times", n);
}

struct waiter {
	struct jwks_waiter w;
	atomic_int woken;
};

static void on_wake(struct jwks_waiter *w)
{
	struct waiter *t = w->arg;

	atomic_fetch_add(&t->woken, 1);
}

static void waiter_init(struct waiter *t)
{
	memset(t, 0, sizeof(*t));
	t->w.wake = on_wake;
	t->w.arg = t;
}

static void wait_woken(struct waiter *t)
{
	for (int i = 0; i < 5000 && atomic_load(&t->woken) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&t->woken), 1);
}

static uint64_t current_gen(struct jwks_fetch *f)
{
	struct jwks_keys *k = jwks_fetch_current(f);
	uint64_t gen = k ? k->gen : 0;

	jwks_keys_unref(k);
	return gen;
}

static struct jwks_fetch *start(uint32_t lo, uint32_t hi)
{
	struct jwks_opts o;
	struct jwks_fetch *f;
	char err[200] = "";

	memset(&o, 0, sizeof(o));
	o.refresh_min_s = lo;
	o.refresh_max_s = hi;
	o.fetch = fake_fetch;
	o.fetch_arg = &F;
	f = jwks_fetch_new(&o, err, sizeof(err));
	if (f == NULL)
		fail_msg("jwks_fetch_new: %s", err);
	return f;
}

/* What the metrics say, as text. */
static char *metrics_of(struct jwks_fetch *f)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	jwks_fetch_metrics(b, f);
	n = evbuffer_get_length(b);
	s = calloc(1, n + 1);
	evbuffer_remove(b, s, n);
	evbuffer_free(b);
	return s;
}

static void assert_metric(struct jwks_fetch *f, const char *line)
{
	char *s = metrics_of(f);

	if (strstr(s, line) == NULL)
		fail_msg("metrics lack \"%s\":\n%s", line, s);
	free(s);
}

static int setup(void **state)
{
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.lock, NULL);
	pthread_cond_init(&F.cond, NULL);
	F.fresh_s = -1;
	return 0;
}

static int teardown(void **state)
{
	pthread_cond_destroy(&F.cond);
	pthread_mutex_destroy(&F.lock);
	return 0;
}

static void test_first_fetch_installs_generation_one(void **state)
{
	struct jwks_fetch *f;
	struct jwks_keys *k;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	k = jwks_fetch_current(f);
	assert_non_null(k);
	assert_int_equal(k->gen, 1);
	assert_int_equal(jwt_keyset_count(k->set), 2);
	assert_metric(f, "mqtls_jwks_fetch_total{result=\"ok\"} 1\n");
	assert_metric(f, "mqtls_jwks_keys 2\n");
	jwks_fetch_free(f);
	/* A reference outlives the fetcher. */
	assert_int_equal(jwt_keyset_count(k->set), 2);
	jwks_keys_unref(k);
}

/* Before any keys, a check has nothing to wait for: the retries alone
 * bring the first set, and logins are refused "server unavailable". */
static void test_no_keys_yet_parks_nothing(void **state)
{
	struct jwks_fetch *f;
	struct waiter w;

	fake_set(0, JWKS_UNREACHABLE);
	f = start(300, 3600);
	assert_false(jwks_fetch_wait_first(f, 5000));
	assert_null(jwks_fetch_current(f));
	waiter_init(&w);
	assert_int_equal(jwks_fetch_park(f, 0, &w.w), JWKS_NOT_PARKED);
	assert_metric(f, "mqtls_jwks_fetch_total{result=\"unreachable\"} 1\n");
	assert_metric(f, "mqtls_jwks_age_seconds -1\n");
	jwks_fetch_free(f);
}

static void test_unknown_kid_parks_checks_on_one_fetch_and_wakes_them(void **state)
{
	struct jwks_fetch *f;
	struct waiter a, b, c;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	fake_set(1, JWKS_OK);
	waiter_init(&a);
	waiter_init(&b);
	waiter_init(&c);
	/* The first asks for a fetch; the second waits for the same one. */
	assert_int_equal(jwks_fetch_park(f, 1, &a.w), JWKS_PARKED);
	wait_calls(2);
	assert_int_equal(jwks_fetch_park(f, 1, &b.w), JWKS_PARKED);
	assert_int_equal(atomic_load(&a.woken) + atomic_load(&b.woken), 0);
	fake_release(JWKS_OK);
	wait_woken(&a);
	wait_woken(&b);
	assert_int_equal(current_gen(f), 2);
	/* A check that saw generation 1 now finds 2 installed: run again. */
	assert_int_equal(jwks_fetch_park(f, 1, &c.w), JWKS_RETRY);
	assert_int_equal(fake_calls(), 2);
	jwks_fetch_free(f);
}

/* At most one fetch per JWKS_KID_REFETCH_S for unknown kids, however many
 * tokens name one. */
static void test_unknown_kid_refetches_are_rate_limited(void **state)
{
	struct jwks_fetch *f;
	struct waiter a, b;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	waiter_init(&a);
	assert_int_equal(jwks_fetch_park(f, 1, &a.w), JWKS_PARKED);
	wait_woken(&a);
	for (int i = 0; i < 100; i++) {
		waiter_init(&b);
		assert_int_equal(jwks_fetch_park(f, 2, &b.w), JWKS_NOT_PARKED);
	}
	assert_int_equal(fake_calls(), 2);
	assert_metric(f, "mqtls_jwks_refetch_limited_total 100\n");
	jwks_fetch_free(f);
}

static void test_a_parked_check_can_be_taken_back(void **state)
{
	struct jwks_fetch *f;
	struct waiter a, b;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	fake_set(1, JWKS_OK);
	waiter_init(&a);
	waiter_init(&b);
	assert_int_equal(jwks_fetch_park(f, 1, &a.w), JWKS_PARKED);
	assert_int_equal(jwks_fetch_park(f, 1, &b.w), JWKS_PARKED);
	assert_true(jwks_fetch_unpark(f, &a.w));
	assert_false(jwks_fetch_unpark(f, &a.w));
	wait_calls(2);
	fake_release(JWKS_OK);
	wait_woken(&b);
	assert_false(jwks_fetch_unpark(f, &b.w));
	assert_int_equal(atomic_load(&a.woken), 0);
	jwks_fetch_free(f);
}

/* The identity provider fails: the last good set stays, and checks that
 * waited are woken anyway (to be refused). */
static void test_a_failed_fetch_keeps_the_last_keys(void **state)
{
	struct jwks_fetch *f;
	struct waiter a;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	fake_set(0, JWKS_TLS);
	waiter_init(&a);
	assert_int_equal(jwks_fetch_park(f, 1, &a.w), JWKS_PARKED);
	wait_woken(&a);
	assert_int_equal(current_gen(f), 1);
	assert_metric(f, "mqtls_jwks_fetch_total{result=\"tls\"} 1\n");
	assert_metric(f, "mqtls_jwks_keys 2\n");
	jwks_fetch_free(f);
}

struct stopper {
	pthread_t t;
	struct jwks_fetch *f;
};

static void *stop_thread(void *arg)
{
	jwks_fetch_stop(((struct stopper *)arg)->f);
	return NULL;
}

/* At shutdown every parked check is woken, so it comes home and is freed. */
static void test_stop_wakes_parked_checks(void **state)
{
	struct jwks_fetch *f;
	struct waiter a, b;
	struct stopper st;
	char *s;

	fake_set(0, JWKS_OK);
	f = start(300, 3600);
	assert_true(jwks_fetch_wait_first(f, 5000));
	fake_set(1, JWKS_OK);
	waiter_init(&a);
	assert_int_equal(jwks_fetch_park(f, 1, &a.w), JWKS_PARKED);
	wait_calls(2);
	/* The stop waits for the fetch in progress, which a real one abandons
	 * at once (its cancel descriptor); the fake is told to. */
	st.f = f;
	assert_int_equal(pthread_create(&st.t, NULL, stop_thread, &st), 0);
	fake_release(JWKS_CANCELLED);
	pthread_join(st.t, NULL);
	wait_woken(&a);
	assert_int_equal(current_gen(f), 1);
	waiter_init(&b);
	assert_int_equal(jwks_fetch_park(f, 1, &b.w), JWKS_NOT_PARKED);
	/* A cancelled fetch is not counted. */
	assert_metric(f, "mqtls_jwks_fetch_total{result=\"ok\"} 1\n");
	s = metrics_of(f);
	assert_null(strstr(s, "cancelled"));
	free(s);
	jwks_fetch_free(f);
}

/* Failures are retried after 1 s, then 2 ...; successes follow max-age
 * within MIN..MAX: with 1..3600 and max-age 1, a fetch a second. */
static void test_retries_and_refreshes_follow_the_schedule(void **state)
{
	struct jwks_fetch *f;
	time_t t0 = time(NULL);

	pthread_mutex_lock(&F.lock);
	F.next = JWKS_UNREACHABLE;
	F.after = JWKS_OK;
	F.use_after = 1;
	F.fresh_s = 1;
	pthread_mutex_unlock(&F.lock);
	f = start(1, 3600);
	wait_calls(3);
	assert_true(time(NULL) - t0 <= 4);
	assert_int_equal(current_gen(f) >= 1, 1);
	assert_metric(f, "mqtls_jwks_fetch_total{result=\"unreachable\"} 1\n");
	jwks_fetch_free(f);
}

static void test_metrics_of_no_fetcher_are_empty(void **state)
{
	char *s = metrics_of(NULL);

	assert_string_equal(s, "");
	free(s);
	assert_null(jwks_fetch_current(NULL));
	assert_true(jwks_fetch_wait_first(NULL, 0));
	assert_false(jwks_fetch_unpark(NULL, NULL));
	jwks_fetch_stop(NULL);
	jwks_fetch_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_fetch_installs_generation_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_keys_yet_parks_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kid_parks_checks_on_one_fetch_and_wakes_them,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kid_refetches_are_rate_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_parked_check_can_be_taken_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_fetch_keeps_the_last_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_wakes_parked_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_and_refreshes_follow_the_schedule, setup,
		                                teardown),
		cmocka_unit_test(test_metrics_of_no_fetcher_are_empty),
	};
	char *a, *b;
	int rc;

	log_set_level(LOG_ERROR);
	test_keys_make(&K);
	a = jwk_of(K.ec256, NULL, 0, "\"kid\":\"a\"");
	b = jwk_of(K.ed25519, NULL, 0, "\"kid\":\"b\"");
	JWKS = malloc(strlen(a) + strlen(b) + 32);
	sprintf(JWKS, "{\"keys\":[%s,%s]}", a, b);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(a);
	free(b);
	free(JWKS);
	test_keys_free(&K);
	return rc;
}
