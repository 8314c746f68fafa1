/*
 * Strict base64 (proxy/auth/b64.c). RFC 4648 section 10 vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/b64.h"

static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *padded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
static const char *bare[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };

static int dec(const char *s, int flags, uint8_t *out, size_t *n)
{
	return b64_decode(s, strlen(s), flags, out, 64, n);
}

static void test_rfc4648_vectors_round_trip_with_and_without_padding(void **state)
{
	uint8_t out[64];
	char enc[64];
	size_t n, i;

	for (i = 0; i < 7; i++) {
		assert_int_equal(dec(padded[i], B64_PAD, out, &n), 1);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(out, plain[i], n);
		assert_int_equal(dec(bare[i], 0, out, &n), 1);
		assert_memory_equal(out, plain[i], n);
		assert_int_equal(b64_encode((const uint8_t *)plain[i], strlen(plain[i]), B64_PAD, enc, sizeof(enc)), 1);
		assert_string_equal(enc, padded[i]);
		assert_int_equal(b64_encode((const uint8_t *)plain[i], strlen(plain[i]), 0, enc, sizeof(enc)), 1);
		assert_string_equal(enc, bare[i]);
		assert_int_equal(strlen(enc), b64_encoded_len(strlen(plain[i]), 0));
	}
}

static void test_padding_is_required_forbidden_or_optional_as_asked(void **state)
{
	uint8_t out[64];
	size_t n;

	assert_int_equal(dec("Zg", B64_PAD, out, &n), 0);
	assert_int_equal(dec("Zg==", 0, out, &n), 0);
	assert_int_equal(dec("Zg==", B64_PAD_OPTIONAL, out, &n), 1);
	assert_int_equal(dec("Zg", B64_PAD_OPTIONAL, out, &n), 1);
	/* Wrong amounts of padding. */
	assert_int_equal(dec("Zg=", B64_PAD_OPTIONAL, out, &n), 0);
	assert_int_equal(dec("Zm8==", B64_PAD_OPTIONAL, out, &n), 0);
	assert_int_equal(dec("Zg===", B64_PAD_OPTIONAL, out, &n), 0);
	assert_int_equal(dec("====", B64_PAD_OPTIONAL, out, &n), 0);
}

static void test_non_canonical_trailing_bits_are_rejected(void **state)
{
	uint8_t out[64];
	size_t n;

	/* "Zh" decodes to the same byte as "Zg" if the low bits are ignored. */
	assert_int_equal(dec("Zh", 0, out, &n), 0);
	assert_int_equal(dec("Zm9", 0, out, &n), 0);
	assert_int_equal(dec("Zm8", 0, out, &n), 1);
}

static void test_alphabets_do_not_mix(void **state)
{
	uint8_t out[64];
	size_t n;

	assert_int_equal(dec("-_8", B64_URL, out, &n), 1);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(dec("+/8", B64_URL, out, &n), 0);
	assert_int_equal(dec("+/8", 0, out, &n), 1);
	assert_int_equal(dec("-_8", 0, out, &n), 0);
}

static void test_stray_characters_and_impossible_lengths_are_rejected(void **state)
{
	uint8_t out[64];
	size_t n;

	assert_int_equal(dec("Zm9v\n", 0, out, &n), 0);
	assert_int_equal(dec(" Zm9v", 0, out, &n), 0);
	assert_int_equal(dec("Zm9vY", 0, out, &n), 0);
	assert_int_equal(b64_decode("Zm\0v", 4, 0, out, 64, &n), 0);
}

static void test_output_that_does_not_fit_is_refused(void **state)
{
	uint8_t out[64];
	char enc[5];
	size_t n;

	assert_int_equal(b64_decode("Zm9vYmFy", 8, 0, out, 5, &n), 0);
	assert_int_equal(b64_decode("Zm9vYmFy", 8, 0, out, 6, &n), 1);
	assert_int_equal(b64_encode((const uint8_t *)"foo", 3, 0, enc, 4), 0);
	assert_int_equal(b64_encode((const uint8_t *)"foo", 3, 0, enc, 5), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors_round_trip_with_and_without_padding),
		cmocka_unit_test(test_padding_is_required_forbidden_or_optional_as_asked),
		cmocka_unit_test(test_non_canonical_trailing_bits_are_rejected),
		cmocka_unit_test(test_alphabets_do_not_mix),
		cmocka_unit_test(test_stray_characters_and_impossible_lengths_are_rejected),
		cmocka_unit_test(test_output_that_does_not_fit_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
