/*
 * Log-linear histogram; see histogram.h for the error bound.
 *
 * Bucket index of a value v, with B = sub_bits and M = 2^B - 1:
 *   v < 2^B:  v itself (counted exactly);
 *   else:     with h the index of v's highest set bit,
 *             ((h - B + 1) << B) | ((v >> (h - B)) & M).
 * Both rules agree on [2^B, 2^(B+1)), so the index space has no holes, and
 * a bucket at shift s = h - B is 2^s wide while holding values of at least
 * 2^(B+s): its width is at most 1/2^B of any value in it.
 */
#include "bench/histogram.h"

#include <stdlib.h>
#include <string.h>

/* Sub-bucket bits per number of significant digits d: the smallest B with
 * 2^-(B+1) <= 10^-d, because a bucket is reported by its midpoint, which is
 * at most half a bucket width away from any value counted in it. */
static const unsigned sub_bits_for_digits[] = { 0, 3, 6, 9, 13 };

static unsigned highest_bit(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static size_t bucket_index(unsigned b, uint64_t v)
{
	unsigned h;

	if (v < (1ULL << b))
		return (size_t)v;
	h = highest_bit(v);
	return ((size_t)(h - b + 1) << b) | (size_t)((v >> (h - b)) & ((1ULL << b) - 1));
}

/* Lowest value and width of bucket |i|. */
static void bucket_bounds(unsigned b, size_t i, uint64_t *lo, uint64_t *width)
{
	size_t group = i >> b;
	uint64_t sub = i & ((1ULL << b) - 1);

	if (group == 0) {
		*lo = sub;
		*width = 1;
		return;
	}
	*lo = ((1ULL << b) + sub) << (group - 1);
	*width = 1ULL << (group - 1);
}

struct histogram *histogram_new(uint64_t highest, unsigned sig_digits)
{
	struct histogram *h = NULL;
	unsigned b;

	if (sig_digits < 1 || sig_digits > 4)
		goto err;
	b = sub_bits_for_digits[sig_digits];
	if (highest < (1ULL << b) || highest > (1ULL << 62))
		goto err;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto err;
	h->sub_bits = b;
	h->highest = highest;
	h->nbuckets = bucket_index(b, highest) + 1;
	h->counts = calloc(h->nbuckets, sizeof(*h->counts));
	if (h->counts == NULL)
		goto err;
	histogram_reset(h);
	return h;
err:
	histogram_free(h);
	return NULL;
}

void histogram_free(struct histogram *h)
{
	if (h == NULL)
		return;
	free(h->counts);
	free(h);
}

void histogram_reset(struct histogram *h)
{
	memset(h->counts, 0, h->nbuckets * sizeof(*h->counts));
	h->count = 0;
	h->clamped = 0;
	h->min = UINT64_MAX;
	h->max = 0;
	h->sum = 0;
}

void histogram_record_n(struct histogram *h, uint64_t value, uint64_t n)
{
	uint64_t counted = value;

	if (n == 0)
		return;
	if (value > h->highest) {
		counted = h->highest;
		h->clamped += n;
	}
	h->counts[bucket_index(h->sub_bits, counted)] += n;
	h->count += n;
	h->sum += (double)value * (double)n;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void histogram_record(struct histogram *h, uint64_t value)
{
	histogram_record_n(h, value, 1);
}

int histogram_merge(struct histogram *dst, const struct histogram *src)
{
	size_t i;

	if (dst->sub_bits != src->sub_bits || dst->highest != src->highest)
		return 0;
	for (i = 0; i < dst->nbuckets; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	return 1;
}

uint64_t histogram_min(const struct histogram *h)
{
	return h->count ? h->min : 0;
}

uint64_t histogram_max(const struct histogram *h)
{
	return h->count ? h->max : 0;
}

double histogram_mean(const struct histogram *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t histogram_percentile(const struct histogram *h, double percentile)
{
	uint64_t rank, seen = 0, lo, width, v;
	double want;
	size_t i;

	if (h->count == 0)
		return 0;
	if (!(percentile > 0.0))        /* also catches NaN */
		return h->min;
	if (percentile >= 100.0)
		return h->max;
	/* The rank of the value at this percentile, 1-based; the small epsilon
	 * keeps 99.9% of 1000 at rank 999 despite binary fractions. */
	want = percentile / 100.0 * (double)h->count;
	rank = (uint64_t)want;
	if ((double)rank < want - 1e-9)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (i = 0; i < h->nbuckets; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			break;
	}
	if (i == h->nbuckets)           /* unreachable while counts add up */
		return h->max;
	bucket_bounds(h->sub_bits, i, &lo, &width);
	v = lo + (width - 1) / 2;
	/* Never report beyond what was actually seen. */
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

void histogram_summarize(const struct histogram *h, struct histogram_summary *out)
{
	memset(out, 0, sizeof(*out));
	if (h->count == 0)
		return;
	out->count = h->count;
	out->clamped = h->clamped;
	out->min = h->min;
	out->max = h->max;
	out->mean = histogram_mean(h);
	out->p50 = histogram_percentile(h, 50.0);
	out->p90 = histogram_percentile(h, 90.0);
	out->p99 = histogram_percentile(h, 99.0);
	out->p999 = histogram_percentile(h, 99.9);
}

void histogram_bucket_range(const struct histogram *h, uint64_t value,
                            uint64_t *lo, uint64_t *hi)
{
	uint64_t width;

	if (value > h->highest)
		value = h->highest;
	bucket_bounds(h->sub_bits, bucket_index(h->sub_bits, value), lo, &width);
	*hi = *lo + width;
}
