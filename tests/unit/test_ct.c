/*
 * Constant-time comparison (proxy/auth/ct.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/ct.h"

static void test_ct_equal_accepts_identical_buffers(void **state)
{
	uint8_t a[64], b[64];

	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_int_equal(ct_equal(a, b, sizeof(a)), 1);
}

static void test_ct_equal_rejects_a_difference_in_any_byte_or_bit(void **state)
{
	uint8_t a[64], b[64];
	size_t i;
	int bit;

	for (i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(a); i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(b, a, sizeof(b));
			b[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(ct_equal(a, b, sizeof(a)), 0);
		}
	}
}

static void test_ct_equal_of_zero_bytes_is_equal(void **state)
{
	assert_int_equal(ct_equal(NULL, NULL, 0), 1);
}

static void test_ct_equal_secret_accepts_the_same_bytes(void **state)
{
	static const char s[] = "the-secret";

	assert_int_equal(ct_equal_secret(s, 10, "the-secret", 10), 1);
}

static void test_ct_equal_secret_rejects_a_prefix_of_the_secret(void **state)
{
	static const char s[] = "the-secret";

	assert_int_equal(ct_equal_secret(s, 10, "the-secr", 8), 0);
	assert_int_equal(ct_equal_secret(s, 10, "", 0), 0);
}

static void test_ct_equal_secret_rejects_the_secret_followed_by_more(void **state)
{
	static const char s[] = "the-secret";

	assert_int_equal(ct_equal_secret(s, 10, "the-secretX", 11), 0);
	/* Bytes past the secret's end are compared with its first byte
	 * internally; that must not make a guess of repeated 't's pass. */
	assert_int_equal(ct_equal_secret(s, 10, "the-secrettttt", 14), 0);
}

static void test_ct_equal_secret_handles_an_empty_secret(void **state)
{
	assert_int_equal(ct_equal_secret(NULL, 0, NULL, 0), 1);
	assert_int_equal(ct_equal_secret(NULL, 0, "x", 1), 0);
	assert_int_equal(ct_equal_secret("", 0, "\0", 1), 0);
}

static void test_ct_equal_secret_rejects_a_flipped_last_byte(void **state)
{
	static const char s[] = "abcdefgh";

	assert_int_equal(ct_equal_secret(s, 8, "abcdefgi", 8), 0);
	assert_int_equal(ct_equal_secret(s, 8, "bbcdefgh", 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ct_equal_accepts_identical_buffers),
		cmocka_unit_test(test_ct_equal_rejects_a_difference_in_any_byte_or_bit),
		cmocka_unit_test(test_ct_equal_of_zero_bytes_is_equal),
		cmocka_unit_test(test_ct_equal_secret_accepts_the_same_bytes),
		cmocka_unit_test(test_ct_equal_secret_rejects_a_prefix_of_the_secret),
		cmocka_unit_test(test_ct_equal_secret_rejects_the_secret_followed_by_more),
		cmocka_unit_test(test_ct_equal_secret_handles_an_empty_secret),
		cmocka_unit_test(test_ct_equal_secret_rejects_a_flipped_last_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
