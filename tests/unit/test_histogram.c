/*
 * Unit tests for bench/histogram.c: the relative error bound on known
 * distributions, exact extremes, merge, empty and out-of-range cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <cmocka.h>

#include "bench/histogram.h"

/* A small deterministic generator, so every run checks the same values. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The exact value at |p| percent of sorted |v|, by the histogram's rule. */
static uint64_t exact_percentile(const uint64_t *v, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank = (size_t)want;

	if ((double)rank < want - 1e-9)
		rank++;
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static void assert_within(uint64_t got, uint64_t want, double rel)
{
	double err = fabs((double)got - (double)want) / (double)want;

	if (err > rel)
		fail_msg("got %llu want %llu: relative error %g > %g",
		         (unsigned long long)got, (unsigned long long)want, err, rel);
}

/* Records |v| into a fresh histogram and checks every percentile tenth and
 * the usual tail ones against the exact answer. */
static void check_distribution(uint64_t *v, size_t n, unsigned digits)
{
	static const double tails[] = { 50, 75, 90, 95, 99, 99.5, 99.9, 99.99 };
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, digits);
	double bound = pow(10.0, -(double)digits);
	size_t i;

	assert_non_null(h);
	for (i = 0; i < n; i++)
		histogram_record(h, v[i]);
	qsort(v, n, sizeof(*v), compare_u64);
	for (i = 1; i < 1000; i++)
		assert_within(histogram_percentile(h, (double)i / 10.0),
		              exact_percentile(v, n, (double)i / 10.0), bound);
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++)
		assert_within(histogram_percentile(h, tails[i]),
		              exact_percentile(v, n, tails[i]), bound);
	assert_int_equal(histogram_min(h), v[0]);
	assert_int_equal(histogram_max(h), v[n - 1]);
	assert_int_equal(h->count, n);
	histogram_free(h);
}

static void test_new_rejects_digits_outside_one_to_four(void **state)
{
	(void)state;
	assert_null(histogram_new(HISTOGRAM_ONE_HOUR_NS, 0));
	assert_null(histogram_new(HISTOGRAM_ONE_HOUR_NS, 5));
}

static void test_new_rejects_highest_below_exact_range_or_above_2_pow_62(void **state)
{
	(void)state;
	assert_null(histogram_new(7, 2));
	assert_null(histogram_new((1ULL << 62) + 1, 2));
	histogram_free(histogram_new(1ULL << 62, 1));
}

static void test_two_digits_up_to_one_hour_fit_in_twenty_kilobytes(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	assert_non_null(h);
	assert_true(h->nbuckets * sizeof(uint64_t) <= 20 * 1024);
	histogram_free(h);
}

static void test_empty_histogram_reports_zero_everywhere(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram_summary s;

	(void)state;
	assert_int_equal(histogram_percentile(h, 50), 0);
	assert_int_equal(histogram_percentile(h, 100), 0);
	assert_int_equal(histogram_min(h), 0);
	assert_int_equal(histogram_max(h), 0);
	assert_true(histogram_mean(h) == 0.0);
	histogram_summarize(h, &s);
	assert_int_equal(s.count, 0);
	assert_int_equal(s.p50, 0);
	assert_int_equal(s.p999, 0);
	assert_int_equal(s.max, 0);
	histogram_free(h);
}

static void test_single_value_is_every_percentile(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, 123456789);
	assert_int_equal(histogram_percentile(h, 0), 123456789);
	assert_int_equal(histogram_percentile(h, 50), 123456789);
	assert_int_equal(histogram_percentile(h, 99.9), 123456789);
	assert_int_equal(histogram_percentile(h, 100), 123456789);
	histogram_free(h);
}

static void test_small_values_are_counted_exactly(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	uint64_t v;

	(void)state;
	for (v = 1; v <= 100; v++)
		histogram_record(h, v);
	for (v = 1; v <= 100; v++)
		assert_int_equal(histogram_percentile(h, (double)v), v);
	histogram_free(h);
}

static void test_bucket_is_at_most_one_64th_as_wide_as_its_values_for_two_digits(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	uint64_t v, lo, hi;

	(void)state;
	for (v = 1; v < HISTOGRAM_ONE_HOUR_NS; v = v * 3 / 2 + 1) {
		histogram_bucket_range(h, v, &lo, &hi);
		assert_true(lo <= v && v < hi);
		assert_true(hi - lo == 1 || (hi - lo) * 64 <= lo);
	}
	histogram_free(h);
}

static void test_uniform_distribution_stays_within_one_percent(void **state)
{
	size_t n = 100000, i;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 42;

	(void)state;
	for (i = 0; i < n; i++)
		v[i] = 1 + next_random(&seed) % 10000000;        /* 1 ns .. 10 ms */
	check_distribution(v, n, 2);
	free(v);
}

static void test_long_tailed_distribution_stays_within_one_percent(void **state)
{
	size_t n = 100000, i;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 7;

	(void)state;
	/* Log-uniform over twelve decades: every bucket shape gets exercised. */
	for (i = 0; i < n; i++) {
		double u = (double)(next_random(&seed) >> 11) / 9007199254740992.0;
		v[i] = 1 + (uint64_t)pow(10.0, u * 12.0);
	}
	check_distribution(v, n, 2);
	free(v);
}

static void test_three_digits_stay_within_a_tenth_of_a_percent(void **state)
{
	size_t n = 50000, i;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 99;

	(void)state;
	for (i = 0; i < n; i++)
		v[i] = 1000 + next_random(&seed) % 50000000;
	check_distribution(v, n, 3);
	free(v);
}

static void test_min_and_max_are_exact_not_bucketed(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, 1000001);
	histogram_record(h, 5000000);
	histogram_record(h, 999999937);
	assert_int_equal(histogram_min(h), 1000001);
	assert_int_equal(histogram_max(h), 999999937);
	assert_int_equal(histogram_percentile(h, 0), 1000001);
	assert_int_equal(histogram_percentile(h, 100), 999999937);
	/* The first third is the minimum, reported inside [min, bucket end]. */
	assert_within(histogram_percentile(h, 10), 1000001, 0.01);
	histogram_free(h);
}

static void test_mean_is_exact_for_small_samples(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, 100);
	histogram_record(h, 200);
	histogram_record_n(h, 600, 2);
	histogram_record_n(h, 5, 0);
	assert_int_equal(h->count, 4);
	assert_true(fabs(histogram_mean(h) - 375.0) < 1e-9);
	histogram_free(h);
}

static void test_merge_equals_recording_everything_in_one(void **state)
{
	struct histogram *a = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram *b = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram *all = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	uint64_t seed = 1234, v;
	double p;
	int i;

	(void)state;
	for (i = 0; i < 20000; i++) {
		v = next_random(&seed) % 100000000;
		histogram_record(i % 3 ? a : b, v);
		histogram_record(all, v);
	}
	assert_true(histogram_merge(a, b));
	assert_int_equal(a->count, all->count);
	assert_int_equal(histogram_min(a), histogram_min(all));
	assert_int_equal(histogram_max(a), histogram_max(all));
	assert_true(fabs(histogram_mean(a) - histogram_mean(all)) < 1e-3);
	for (p = 0; p <= 100; p += 0.5)
		assert_int_equal(histogram_percentile(a, p), histogram_percentile(all, p));
	histogram_free(a);
	histogram_free(b);
	histogram_free(all);
}

static void test_merge_of_empty_changes_nothing(void **state)
{
	struct histogram *a = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram *empty = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(a, 77);
	assert_true(histogram_merge(a, empty));
	assert_int_equal(a->count, 1);
	assert_int_equal(histogram_min(a), 77);
	assert_int_equal(histogram_max(a), 77);
	assert_true(histogram_merge(empty, a));
	assert_int_equal(histogram_min(empty), 77);
	histogram_free(a);
	histogram_free(empty);
}

static void test_merge_refuses_different_configurations(void **state)
{
	struct histogram *a = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram *b = histogram_new(HISTOGRAM_ONE_HOUR_NS, 3);
	struct histogram *c = histogram_new(1000000, 2);

	(void)state;
	histogram_record(b, 5);
	assert_false(histogram_merge(a, b));
	assert_false(histogram_merge(a, c));
	assert_int_equal(a->count, 0);
	histogram_free(a);
	histogram_free(b);
	histogram_free(c);
}

static void test_values_above_highest_are_clamped_and_counted(void **state)
{
	struct histogram *h = histogram_new(1000000, 2);

	(void)state;
	histogram_record(h, 10);
	histogram_record(h, 5000000);
	histogram_record(h, UINT64_MAX);
	assert_int_equal(h->count, 3);
	assert_int_equal(h->clamped, 2);
	assert_int_equal(histogram_max(h), UINT64_MAX);
	/* The clamped values stay in the upper percentiles, at the top bucket. */
	assert_within(histogram_percentile(h, 66), 1000000, 0.01);
	assert_int_equal(histogram_percentile(h, 100), UINT64_MAX);
	histogram_free(h);
}

static void test_zero_is_a_countable_value(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, 0);
	histogram_record(h, 0);
	histogram_record(h, 10);
	assert_int_equal(histogram_min(h), 0);
	assert_int_equal(histogram_percentile(h, 50), 0);
	assert_int_equal(histogram_percentile(h, 90), 10);
	histogram_free(h);
}

static void test_one_hour_is_tracked_without_clamping(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, HISTOGRAM_ONE_HOUR_NS);
	histogram_record(h, 1);
	assert_int_equal(h->clamped, 0);
	assert_int_equal(histogram_percentile(h, 50), 1);
	assert_int_equal(histogram_percentile(h, 100), HISTOGRAM_ONE_HOUR_NS);
	histogram_free(h);
}

static void test_reset_forgets_values_but_keeps_configuration(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);

	(void)state;
	histogram_record(h, 5);
	histogram_reset(h);
	assert_int_equal(h->count, 0);
	assert_int_equal(histogram_max(h), 0);
	histogram_record(h, 9);
	assert_int_equal(histogram_min(h), 9);
	histogram_free(h);
}

static void test_summary_has_the_reported_percentiles(void **state)
{
	struct histogram *h = histogram_new(HISTOGRAM_ONE_HOUR_NS, 2);
	struct histogram_summary s;
	uint64_t v;

	(void)state;
	for (v = 1; v <= 1000; v++)
		histogram_record(h, v * 1000);
	histogram_summarize(h, &s);
	assert_int_equal(s.count, 1000);
	assert_int_equal(s.min, 1000);
	assert_int_equal(s.max, 1000000);
	assert_within(s.p50, 500000, 0.01);
	assert_within(s.p90, 900000, 0.01);
	assert_within(s.p99, 990000, 0.01);
	assert_within(s.p999, 999000, 0.01);
	assert_true(fabs(s.mean - 500500.0) < 1e-6);
	histogram_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_digits_outside_one_to_four),
		cmocka_unit_test(test_new_rejects_highest_below_exact_range_or_above_2_pow_62),
		cmocka_unit_test(test_two_digits_up_to_one_hour_fit_in_twenty_kilobytes),
		cmocka_unit_test(test_empty_histogram_reports_zero_everywhere),
		cmocka_unit_test(test_single_value_is_every_percentile),
		cmocka_unit_test(test_small_values_are_counted_exactly),
		cmocka_unit_test(test_bucket_is_at_most_one_64th_as_wide_as_its_values_for_two_digits),
		cmocka_unit_test(test_uniform_distribution_stays_within_one_percent),
		cmocka_unit_test(test_long_tailed_distribution_stays_within_one_percent),
		cmocka_unit_test(test_three_digits_stay_within_a_tenth_of_a_percent),
		cmocka_unit_test(test_min_and_max_are_exact_not_bucketed),
		cmocka_unit_test(test_mean_is_exact_for_small_samples),
		cmocka_unit_test(test_merge_equals_recording_everything_in_one),
		cmocka_unit_test(test_merge_of_empty_changes_nothing),
		cmocka_unit_test(test_merge_refuses_different_configurations),
		cmocka_unit_test(test_values_above_highest_are_clamped_and_counted),
		cmocka_unit_test(test_zero_is_a_countable_value),
		cmocka_unit_test(test_one_hour_is_tracked_without_clamping),
		cmocka_unit_test(test_reset_forgets_values_but_keeps_configuration),
		cmocka_unit_test(test_summary_has_the_reported_percentiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
