/* proxy/bufq.c: byte queues over reused blocks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/bufq.h"

/* Appends |n| bytes of the pattern starting at |*seq| through reserve/commit,
 * the way the forwarding path does, with at most |max_iov| pieces. */
static void put(struct bufq *q, struct blk_cache *c, size_t n, uint32_t *seq, int max_iov)
{
	while (n > 0) {
		struct iovec iov[4];
		int k = bufq_reserve(q, c, n, iov, max_iov);
		size_t done = 0;

		assert_true(k >= 1);
		for (int i = 0; i < k && done < n; i++) {
			uint8_t *p = iov[i].iov_base;

			for (size_t j = 0; j < iov[i].iov_len && done < n; j++, done++)
				p[j] = (uint8_t)((*seq)++ * 7);
		}
		bufq_commit(q, c, done);
		n -= done;
	}
}

/* Reads |n| bytes from the head and checks them against the pattern. */
static void take(struct bufq *q, struct blk_cache *c, size_t n, uint32_t *seq)
{
	while (n > 0) {
		struct iovec iov;
		const uint8_t *p;
		size_t len;

		assert_int_equal(bufq_peek(q, 0, &iov, 1), 1);
		p = iov.iov_base;
		len = iov.iov_len < n ? iov.iov_len : n;
		for (size_t j = 0; j < len; j++)
			assert_int_equal(p[j], (uint8_t)((*seq)++ * 7));
		bufq_drain(q, c, len);
		n -= len;
	}
}

static void test_bytes_come_out_in_the_order_they_went_in(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	uint32_t in = 0, out = 0;
	size_t sizes[] = { 1, 100, 16384, 5, BLK_SIZE, BLK_SIZE + 1, 3 * BLK_SIZE, 17 };

	blk_cache_init(&c, 4);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		put(&q, &c, sizes[i], &in, 1 + (int)(i % 4));
		assert_int_equal(bufq_len(&q), in - out);
		take(&q, &c, sizes[i] / 2, &out);
	}
	take(&q, &c, bufq_len(&q), &out);
	assert_int_equal(in, out);
	assert_null(q.head);
	bufq_clear(&q, &c);
	blk_cache_cleanup(&c);
}

/* A reservation of one piece that does not fit the tail's free sliver
 * takes a new block, and the commit must not write into the sliver. */
static void test_a_single_piece_reservation_skips_a_too_small_tail(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	uint32_t in = 0, out = 0;

	blk_cache_init(&c, 4);
	put(&q, &c, BLK_SIZE - 10, &in, 1);
	put(&q, &c, 16384, &in, 1);
	put(&q, &c, 16384, &in, 1);
	take(&q, &c, bufq_len(&q), &out);
	assert_int_equal(in, out);
	blk_cache_cleanup(&c);
}

static void test_drained_blocks_are_reused_and_the_cache_is_bounded(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	uint32_t in = 0, out = 0;

	blk_cache_init(&c, 2);
	put(&q, &c, 5 * BLK_SIZE, &in, 4);
	take(&q, &c, 5 * BLK_SIZE, &out);
	assert_int_equal(c.n, 2);
	put(&q, &c, BLK_SIZE, &in, 1);
	assert_int_equal(c.n, 1);
	bufq_clear(&q, &c);
	assert_int_equal(c.n, 2);
	blk_cache_cleanup(&c);
	assert_int_equal(c.n, 0);
}

static void test_uncommitted_space_goes_back(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	struct iovec iov[4];

	blk_cache_init(&c, 8);
	assert_int_equal(bufq_reserve(&q, &c, 3 * BLK_SIZE, iov, 4), 3);
	bufq_commit(&q, &c, 0);
	assert_int_equal(bufq_len(&q), 0);
	assert_null(q.head);
	assert_int_equal(c.n, 3);
	blk_cache_cleanup(&c);
}

static void test_pullup_makes_a_split_prefix_contiguous(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	uint32_t in = 0, out = 0;
	const uint8_t *p;
	size_t n = BLK_SIZE + 100;

	blk_cache_init(&c, 4);
	put(&q, &c, 10, &in, 1);
	put(&q, &c, BLK_SIZE, &in, 1);
	put(&q, &c, 500, &in, 1);
	p = bufq_pullup(&q, &c, n);
	assert_non_null(p);
	for (size_t j = 0; j < n; j++)
		assert_int_equal(p[j], (uint8_t)(j * 7));
	assert_null(bufq_pullup(&q, &c, bufq_len(&q) + 1));
	take(&q, &c, bufq_len(&q), &out);
	assert_int_equal(in, out);
	blk_cache_cleanup(&c);
}

static void test_prepend_truncate_and_add_keep_the_length_right(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	struct iovec iov[8];
	uint32_t in = 0;
	char buf[64] = { 0 };
	size_t got = 0;
	int n;

	blk_cache_init(&c, 4);
	put(&q, &c, 2 * BLK_SIZE, &in, 4);
	assert_true(bufq_prepend(&q, &c, "head", 4));
	bufq_truncate(&q, &c, 10);
	assert_int_equal(bufq_len(&q), 10);
	assert_true(bufq_add(&q, &c, "tail", 4));
	assert_int_equal(bufq_len(&q), 14);
	n = bufq_peek(&q, 0, iov, 8);
	for (int i = 0; i < n; i++) {
		memcpy(buf + got, iov[i].iov_base, iov[i].iov_len);
		got += iov[i].iov_len;
	}
	assert_int_equal(got, 14);
	assert_memory_equal(buf, "head", 4);
	assert_memory_equal(buf + 10, "tail", 4);
	n = bufq_peek(&q, 12, iov, 8);
	assert_int_equal(n, 1);
	assert_int_equal(iov[0].iov_len, 2);
	bufq_clear(&q, &c);
	blk_cache_cleanup(&c);
}

static void test_write_sends_the_head_and_drains_what_went(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	uint32_t in = 0;
	int sv[2];
	uint8_t buf[4096];
	ssize_t w, r;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	blk_cache_init(&c, 4);
	put(&q, &c, 3000, &in, 2);
	w = bufq_write(&q, &c, sv[0]);
	assert_int_equal(w, 3000);
	assert_int_equal(bufq_len(&q), 0);
	r = read(sv[1], buf, sizeof(buf));
	assert_int_equal(r, 3000);
	for (int j = 0; j < 3000; j++)
		assert_int_equal(buf[j], (uint8_t)(j * 7));
	close(sv[0]);
	close(sv[1]);
	blk_cache_cleanup(&c);
}

/* WebSocket framing writes a frame header into the bytes just in front of
 * the data it frames: new blocks of a headroom reservation start that far
 * in, bytes appended to the tail do not (they follow the data), and the
 * bytes drained from the head become room too. */
static void test_headroom_is_left_in_front_of_new_blocks_and_grows_as_the_head_drains(void **state)
{
	struct blk_cache c;
	struct bufq q = { 0 };
	struct iovec iov[4];
	uint32_t in = 0, out = 0;
	int k;

	(void)state;
	blk_cache_init(&c, 4);
	assert_int_equal(bufq_headroom(&q), 0);
	k = bufq_reserve_headroom(&q, &c, 2000, 4, iov, 1);
	assert_int_equal(k, 1);
	assert_int_equal(iov[0].iov_len, BLK_SIZE - 4);
	memset(iov[0].iov_base, 0xab, 100);
	bufq_commit(&q, &c, 100);
	assert_int_equal(bufq_len(&q), 100);
	assert_int_equal(bufq_headroom(&q), 4);
	/* The room is the caller's: a header written there leaves the data be. */
	assert_int_equal(bufq_peek(&q, 0, iov, 1), 1);
	memset((uint8_t *)iov[0].iov_base - 4, 0x55, 4);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 0xab);
	/* Appended bytes follow in the same block, no gap. */
	k = bufq_reserve_headroom(&q, &c, 50, 4, iov, 1);
	assert_int_equal(k, 1);
	bufq_commit(&q, &c, 50);
	assert_int_equal(bufq_peek(&q, 0, iov, 4), 1);
	assert_int_equal(iov[0].iov_len, 150);
	bufq_drain(&q, &c, 60);
	assert_int_equal(bufq_headroom(&q), 64);
	bufq_clear(&q, &c);
	/* Every new block of a multi-block reservation has it; the pattern
	 * survives whole. */
	k = bufq_reserve_headroom(&q, &c, 3 * BLK_SIZE, 4, iov, 4);
	assert_true(k >= 3);
	for (int i = 0; i < k; i++)
		assert_int_equal(iov[i].iov_len, BLK_SIZE - 4);
	bufq_commit(&q, &c, 0);
	for (int round = 0; round < 3; round++) {
		size_t n = 2 * BLK_SIZE + 123;

		while (n > 0) {
			size_t done = 0;

			k = bufq_reserve_headroom(&q, &c, n, 4, iov, 4);
			assert_true(k >= 1);
			for (int i = 0; i < k && done < n; i++) {
				uint8_t *p = iov[i].iov_base;

				for (size_t j = 0; j < iov[i].iov_len && done < n; j++, done++)
					p[j] = (uint8_t)(in++ * 7);
			}
			bufq_commit(&q, &c, done);
			n -= done;
		}
		take(&q, &c, BLK_SIZE - 4, &out);
		/* The first block is gone: the next one starts with its headroom. */
		assert_int_equal(bufq_headroom(&q), 4);
		take(&q, &c, bufq_len(&q), &out);
	}
	assert_int_equal(in, out);
	/* A plain reservation leaves none. */
	k = bufq_reserve(&q, &c, 10, iov, 1);
	bufq_commit(&q, &c, 10);
	assert_int_equal(bufq_headroom(&q), 0);
	bufq_clear(&q, &c);
	blk_cache_cleanup(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_come_out_in_the_order_they_went_in),
		cmocka_unit_test(test_a_single_piece_reservation_skips_a_too_small_tail),
		cmocka_unit_test(test_drained_blocks_are_reused_and_the_cache_is_bounded),
		cmocka_unit_test(test_uncommitted_space_goes_back),
		cmocka_unit_test(test_pullup_makes_a_split_prefix_contiguous),
		cmocka_unit_test(test_prepend_truncate_and_add_keep_the_length_right),
		cmocka_unit_test(test_write_sends_the_head_and_drains_what_went),
		cmocka_unit_test(test_headroom_is_left_in_front_of_new_blocks_and_grows_as_the_head_drains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
