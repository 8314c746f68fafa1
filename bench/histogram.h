/*
 * A log-linear latency histogram with bounded relative error, in the manner
 * of HdrHistogram.
 *
 * Values (nanoseconds, but nothing here cares about the unit) below 2^B are
 * counted exactly; above that, every power of two is cut into 2^B equal
 * buckets, so a bucket is never wider than 1/2^B of the values it holds.
 * B is chosen from the requested number of significant decimal digits, so
 * any value reported for a percentile is within 10^-digits of the recorded
 * value at that rank (relative). Memory is allocated once, at creation:
 * recording is a count-leading-zeros, a shift and an increment, and never
 * allocates. A histogram is not thread-safe: give each thread its own and
 * merge them at the end.
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

/* One hour in nanoseconds: the default upper end for latency histograms. */
#define HISTOGRAM_ONE_HOUR_NS (3600ULL * 1000 * 1000 * 1000)

struct histogram {
	unsigned sub_bits;      /* B: log2 of the buckets per power of two */
	uint64_t highest;       /* largest value counted in its own bucket */
	size_t nbuckets;
	uint64_t *counts;       /* owned; nbuckets entries */

	uint64_t count;         /* every recorded value, clamped ones included */
	uint64_t clamped;       /* values above |highest|, counted in the top bucket */
	uint64_t min;           /* exact, from the values as given (UINT64_MAX if empty) */
	uint64_t max;           /* exact, from the values as given (0 if empty) */
	double sum;             /* of the values as given, for the mean */
};

/*
 * Returns a new empty histogram able to tell apart values up to |highest|
 * with |sig_digits| (1..4) significant decimal digits, or NULL if the
 * arguments are out of range (highest below the exactly-counted range, or
 * more than 2^62) or memory is short. The caller owns it; free it with
 * histogram_free. Two significant digits up to one hour take ~19 KB.
 */
struct histogram *histogram_new(uint64_t highest, unsigned sig_digits);

/* Frees |h| and its buckets. histogram_free(NULL) is a no-op. */
void histogram_free(struct histogram *h);

/* Forgets every recorded value, keeping the configuration. */
void histogram_reset(struct histogram *h);

/*
 * Counts one value. Values above the highest trackable one are counted in
 * the top bucket and in |clamped|, so they show up in the percentiles
 * instead of vanishing; min, max and mean still use the exact value.
 */
void histogram_record(struct histogram *h, uint64_t value);

/* Counts |value| |n| times (n may be 0). */
void histogram_record_n(struct histogram *h, uint64_t value, uint64_t n);

/*
 * Adds every value counted in |src| to |dst|. Both must have been created
 * with the same highest value and significant digits; returns 0 (and leaves
 * |dst| unchanged) if they were not. |src| is not modified.
 */
int histogram_merge(struct histogram *dst, const struct histogram *src);

/*
 * The value at |percentile| (0..100; out-of-range arguments are clamped):
 * the smallest recorded value such that at least that share of all values
 * is not larger, up to the histogram's precision. Percentile 0 is the exact
 * minimum and 100 the exact maximum. Returns 0 for an empty histogram.
 */
uint64_t histogram_percentile(const struct histogram *h, double percentile);

/* The mean of the recorded values, or 0 for an empty histogram. */
double histogram_mean(const struct histogram *h);

/* Exact min and max, both 0 for an empty histogram. */
uint64_t histogram_min(const struct histogram *h);
uint64_t histogram_max(const struct histogram *h);

/*
 * The figures every report prints, taken in one pass. For an empty
 * histogram every field is 0.
 */
struct histogram_summary {
	uint64_t count;
	uint64_t clamped;
	uint64_t min, max;
	double mean;
	uint64_t p50, p90, p99, p999;
};

void histogram_summarize(const struct histogram *h, struct histogram_summary *out);

/*
 * The half-open range [*lo, *hi) of values counted together with |value|.
 * Exposed for tests and for tools that plot the distribution.
 */
void histogram_bucket_range(const struct histogram *h, uint64_t value,
                            uint64_t *lo, uint64_t *hi);

#endif
