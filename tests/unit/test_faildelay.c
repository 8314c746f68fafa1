/*
 * The delay before refusing an address that keeps failing
 * (proxy/auth/faildelay.c).
 *
 * Addresses that must not share a table slot differ only in their last
 * byte, and by less than 16: the table hashes with FNV-1a (an odd
 * multiplier) into a power-of-two number of slots, where such keys can
 * never collide, so the tests do not depend on luck.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/faildelay.h"

static const uint8_t V4_A[4] = { 192, 0, 2, 1 };
static const uint8_t V4_B[4] = { 192, 0, 2, 2 };
static const uint8_t V6_A[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t V6_B[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 };

static int setup(void **state)
{
	*state = faildelay_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	faildelay_free(*state);
	return 0;
}

static uint32_t fail4(struct faildelay *fd, const uint8_t *a, uint64_t now, uint32_t base)
{
	return faildelay_record(fd, a, 4, now, base);
}

static void test_faildelay_first_failure_waits_the_base_delay(void **state)
{
	assert_int_equal(fail4(*state, V4_A, 1000, 100), 100);
}

static void test_faildelay_doubles_with_each_failure(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(fail4(fd, V4_A, 1000, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1001, 100), 200);
	assert_int_equal(fail4(fd, V4_A, 1002, 100), 400);
	assert_int_equal(fail4(fd, V4_A, 1003, 100), 800);
	assert_int_equal(fail4(fd, V4_A, 1004, 100), 1600);
	assert_int_equal(fail4(fd, V4_A, 1005, 100), 3200);
}

static void test_faildelay_is_capped_at_the_maximum(void **state)
{
	struct faildelay *fd = *state;
	uint32_t d = 0;

	for (int i = 0; i < 6; i++)
		d = fail4(fd, V4_A, 1000 + (uint64_t)i, 100);
	assert_int_equal(d, 3200);
	assert_int_equal(fail4(fd, V4_A, 2000, 100), FAILDELAY_MAX_MS);
	/* Far past the point where the shift would overflow 32 bits. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(fail4(fd, V4_A, 3000 + (uint64_t)i, 100), FAILDELAY_MAX_MS);
}

static void test_faildelay_caps_a_base_above_the_maximum(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(fail4(fd, V4_A, 1000, 10 * FAILDELAY_MAX_MS), FAILDELAY_MAX_MS);
	assert_int_equal(fail4(fd, V4_A, 1001, UINT32_MAX), FAILDELAY_MAX_MS);
}

static void test_faildelay_remembers_failures_up_to_the_forget_time(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(fail4(fd, V4_A, 1000, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1000 + FAILDELAY_FORGET_MS, 100), 200);
}

static void test_faildelay_forgets_an_address_quiet_for_longer_than_the_forget_time(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(fail4(fd, V4_A, 1000, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1001, 100), 200);
	assert_int_equal(fail4(fd, V4_A, 1002, 100), 400);
	assert_int_equal(fail4(fd, V4_A, 1002 + FAILDELAY_FORGET_MS + 1, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1003 + FAILDELAY_FORGET_MS + 1, 100), 200);
}

/* Each failure restarts the forget time: steady guessing never resets. */
static void test_faildelay_forget_time_counts_from_the_last_failure(void **state)
{
	struct faildelay *fd = *state;
	uint64_t now = 1000;

	assert_int_equal(fail4(fd, V4_A, now, 100), 100);
	for (int i = 1; i < 10; i++) {
		now += FAILDELAY_FORGET_MS - 1;
		assert_int_equal(fail4(fd, V4_A, now, 100),
		                 i < 6 ? 100u << i : (uint32_t)FAILDELAY_MAX_MS);
	}
}

static void test_faildelay_keeps_separate_addresses_independent(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(fail4(fd, V4_A, 1000, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1001, 100), 200);
	assert_int_equal(fail4(fd, V4_A, 1002, 100), 400);
	assert_int_equal(fail4(fd, V4_B, 1003, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1004, 100), 800);
	assert_int_equal(fail4(fd, V4_B, 1005, 100), 200);
}

static void test_faildelay_counts_ipv6_addresses_by_all_sixteen_bytes(void **state)
{
	struct faildelay *fd = *state;

	assert_int_equal(faildelay_record(fd, V6_A, 16, 1000, 50), 50);
	assert_int_equal(faildelay_record(fd, V6_A, 16, 1001, 50), 100);
	/* Same first 15 bytes, different last one. */
	assert_int_equal(faildelay_record(fd, V6_B, 16, 1002, 50), 50);
	assert_int_equal(faildelay_record(fd, V6_A, 16, 1003, 50), 200);
	assert_int_equal(faildelay_record(fd, V6_B, 16, 1004, 50), 100);
}

static void test_faildelay_does_not_confuse_an_ipv4_address_with_an_ipv6_prefix(void **state)
{
	struct faildelay *fd = *state;
	uint8_t v6[16] = { 0 };

	/* The IPv6 key starts with the same four bytes as the IPv4 one. */
	memcpy(v6, V4_A, 4);
	assert_int_equal(fail4(fd, V4_A, 1000, 100), 100);
	assert_int_equal(fail4(fd, V4_A, 1001, 100), 200);
	assert_int_equal(faildelay_record(fd, v6, 16, 1002, 100), 100);
}

static void test_faildelay_with_zero_base_never_delays_or_counts(void **state)
{
	struct faildelay *fd = *state;

	for (int i = 0; i < 5; i++)
		assert_int_equal(fail4(fd, V4_A, 1000 + (uint64_t)i, 0), 0);
	/* Nothing was recorded while disabled. */
	assert_int_equal(fail4(fd, V4_A, 2000, 100), 100);
}

static void test_faildelay_refuses_empty_and_oversized_addresses(void **state)
{
	struct faildelay *fd = *state;
	uint8_t big[17] = { 1 };

	assert_int_equal(faildelay_record(fd, V4_A, 0, 1000, 100), 0);
	assert_int_equal(faildelay_record(fd, big, 17, 1000, 100), 0);
	assert_int_equal(faildelay_record(fd, big, SIZE_MAX, 1000, 100), 0);
}

static void test_faildelay_free_of_null_is_a_no_op(void **state)
{
	faildelay_free(NULL);
}

#define THREADS 4
#define ROUNDS 50

struct hammer {
	struct faildelay *fd;
	uint8_t addr[4];
	int wrong;          /* delays that did not follow 1, 2, 4 ... for its own address */
};

/* Each thread fails with its own address (they differ only in the last
 * byte, so they never share a slot) and must see its own exact sequence,
 * however the other threads interleave. */
static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (int round = 0; round < ROUNDS; round++) {
		/* Each round is far past the forget time of the one before. */
		uint64_t now = 1000 + (uint64_t)round * 2 * FAILDELAY_FORGET_MS;

		for (uint32_t i = 0; i < 12; i++) {
			if (faildelay_record(h->fd, h->addr, 4, now, 1) != 1u << i)
				h->wrong++;
		}
	}
	return NULL;
}

static void test_faildelay_keeps_counts_exact_under_concurrent_failures(void **state)
{
	struct faildelay *fd = *state;
	struct hammer h[THREADS];
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++) {
		h[i].fd = fd;
		memcpy(h[i].addr, V4_A, 4);
		h[i].addr[3] = (uint8_t)(10 + i);
		h[i].wrong = 0;
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(h[i].wrong, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_faildelay_first_failure_waits_the_base_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_doubles_with_each_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_is_capped_at_the_maximum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_caps_a_base_above_the_maximum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_remembers_failures_up_to_the_forget_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_forgets_an_address_quiet_for_longer_than_the_forget_time,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_forget_time_counts_from_the_last_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_keeps_separate_addresses_independent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_counts_ipv6_addresses_by_all_sixteen_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_does_not_confuse_an_ipv4_address_with_an_ipv6_prefix,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_with_zero_base_never_delays_or_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faildelay_refuses_empty_and_oversized_addresses, setup, teardown),
		cmocka_unit_test(test_faildelay_free_of_null_is_a_no_op),
		cmocka_unit_test_setup_teardown(test_faildelay_keeps_counts_exact_under_concurrent_failures, setup,
		                                teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
