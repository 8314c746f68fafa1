/*
 * Escaping untrusted text for log lines (proxy/log.c, log_escape).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/log.h"

#define GUARD 16

/* The whole escaped form, computed independently of the code under test, plus
 * the offsets where one escaped byte ends and the next begins. */
struct reference {
	char text[4096];
	size_t len;
	size_t boundary[1024];   /* boundary[i]: length of the escape of the first i bytes */
	size_t n;
};

static void reference_escape(struct reference *r, const unsigned char *p, size_t len)
{
	r->len = 0;
	r->n = len;
	r->boundary[0] = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];

		if (ch == '"' || ch == '\\') {
			r->text[r->len++] = '\\';
			r->text[r->len++] = (char)ch;
		} else if (ch >= 0x20 && ch <= 0x7e) {
			r->text[r->len++] = (char)ch;
		} else {
			r->len += (size_t)snprintf(r->text + r->len, 5, "\\x%02x", ch);
		}
		r->boundary[i + 1] = r->len;
	}
	r->text[r->len] = '\0';
}

static int is_boundary(const struct reference *r, size_t off)
{
	for (size_t i = 0; i <= r->n; i++) {
		if (r->boundary[i] == off)
			return 1;
	}
	return 0;
}

/* Escapes into a buffer with guard bytes after |cap| and checks that none
 * was touched; returns a pointer to a static copy of the result. */
static const char *escape(size_t cap, const void *data, size_t len)
{
	static char result[4096];
	unsigned char *buf = malloc(cap + GUARD);

	assert_non_null(buf);
	memset(buf, 0x5a, cap + GUARD);
	log_escape((char *)buf, cap, data, len);
	for (size_t i = cap; i < cap + GUARD; i++)
		assert_int_equal(buf[i], 0x5a);
	if (cap == 0) {
		result[0] = '\0';
	} else {
		assert_non_null(memchr(buf, '\0', cap));
		strcpy(result, (char *)buf);
	}
	free(buf);
	return result;
}

static void test_printable_ascii_is_kept_as_is(void **state)
{
	const char in[] = "client-42 A~z {ok} 'single' !@#$%^&*()_+=";

	assert_string_equal(escape(128, in, strlen(in)), in);
}

static void test_quotes_and_backslashes_are_escaped_with_a_backslash(void **state)
{
	const char in[] = "a\"b\\c\"";

	assert_string_equal(escape(64, in, strlen(in)), "a\\\"b\\\\c\\\"");
}

static void test_control_bytes_become_hex_escapes(void **state)
{
	const unsigned char in[] = { '\n', '\r', '\t', 0x00, 0x1b, 0x1f, 0x7f, 'x' };

	assert_string_equal(escape(64, in, sizeof(in)), "\\x0a\\x0d\\x09\\x00\\x1b\\x1f\\x7fx");
}

static void test_non_ascii_bytes_become_hex_escapes(void **state)
{
	const unsigned char in[] = { 0xc3, 0xa9, 0x80, 0xff, ' ' };

	assert_string_equal(escape(64, in, sizeof(in)), "\\xc3\\xa9\\x80\\xff ");
}

static void test_a_forged_log_line_stays_on_one_line(void **state)
{
	const char in[] = "dev\n2024-01-01T00:00:00Z info forged";
	const char *out = escape(256, in, strlen(in));

	assert_null(strchr(out, '\n'));
	assert_non_null(strstr(out, "dev\\x0a2024"));
}

static void test_empty_input_gives_an_empty_string(void **state)
{
	assert_string_equal(escape(8, "", 0), "");
	assert_string_equal(escape(8, NULL, 0), "");
}

static void test_long_input_is_cut_with_an_ellipsis(void **state)
{
	char in[300];
	const char *out;

	memset(in, 'a', sizeof(in));
	out = escape(64, in, sizeof(in));
	assert_true(strlen(out) <= 63);
	assert_true(strlen(out) >= 64 - 8);
	assert_string_equal(out + strlen(out) - 3, "...");
	assert_int_equal(strspn(out, "a"), strlen(out) - 3);
}

static void test_cap_zero_writes_nothing(void **state)
{
	char buf[4] = { 'x', 'y', 'z', 'w' };

	log_escape(buf, 0, "abc", 3);
	assert_memory_equal(buf, "xyzw", 4);
}

static void test_cap_one_gives_an_empty_string(void **state)
{
	assert_string_equal(escape(1, "abc", 3), "");
	assert_string_equal(escape(1, "\x01", 1), "");
	assert_string_equal(escape(1, "", 0), "");
}

/* For every cap and several kinds of input: nothing is written past cap, the
 * result is NUL-terminated, and a cut result is a prefix of the full escape
 * ending between two escaped bytes, followed by "..." when there is room. */
static void test_truncation_never_overflows_or_splits_an_escape_for_any_cap(void **state)
{
	static const char *const inputs[] = {
		"abcdefghijklmnopqrstuvwxyz0123456789",
		"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c",
		"\"\\\"\\\"\\\"\\\"\\\"\\",
		"a\x01\"b\xff\\c\n d\x7f\"\x80xyz",
		"\xe2\x82\xac euro \xe2\x82\xac",
	};
	struct reference ref;

	for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
		size_t len = strlen(inputs[k]);

		reference_escape(&ref, (const unsigned char *)inputs[k], len);
		for (size_t cap = 0; cap <= ref.len + 8; cap++) {
			const char *out = escape(cap, inputs[k], len);
			size_t olen = strlen(out);

			if (cap == 0)
				continue;
			assert_true(olen < cap);
			if (strcmp(out, ref.text) == 0)
				continue;
			if (olen >= 3 && strcmp(out + olen - 3, "...") == 0) {
				assert_memory_equal(out, ref.text, olen - 3);
				assert_true(is_boundary(&ref, olen - 3));
				/* No more than one escape and the "..." are given up. */
				assert_true(olen + 8 >= cap);
			} else {
				/* Too small for even "...": nothing at all. */
				assert_true(cap < 4);
				assert_int_equal(olen, 0);
			}
		}
	}
}

/* The same under ASan with buffers of exactly |cap| bytes. */
static void test_exactly_sized_buffers_are_never_overrun(void **state)
{
	const char in[] = "x\"y\\z\x01\xfe tail text that is long enough to be cut";

	for (size_t cap = 1; cap < 2 * sizeof(in) + 8; cap++) {
		char *buf = malloc(cap);

		assert_non_null(buf);
		log_escape(buf, cap, in, sizeof(in) - 1);
		assert_true(strlen(buf) < cap);
		free(buf);
	}
}

/* Text whose escaped form fits the buffer (with its NUL) must come out whole:
 * a cut, marked with "...", tells the reader that bytes were lost. */
static void test_text_that_fits_the_buffer_is_kept_whole(void **state)
{
	assert_string_equal(escape(3, "ab", 2), "ab");
	assert_string_equal(escape(4, "abc", 3), "abc");
	assert_string_equal(escape(6, "abc", 3), "abc");
	assert_string_equal(escape(5, "\x01", 1), "\\x01");
	assert_string_equal(escape(9, "client-1", 8), "client-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_ascii_is_kept_as_is),
		cmocka_unit_test(test_quotes_and_backslashes_are_escaped_with_a_backslash),
		cmocka_unit_test(test_control_bytes_become_hex_escapes),
		cmocka_unit_test(test_non_ascii_bytes_become_hex_escapes),
		cmocka_unit_test(test_a_forged_log_line_stays_on_one_line),
		cmocka_unit_test(test_empty_input_gives_an_empty_string),
		cmocka_unit_test(test_long_input_is_cut_with_an_ellipsis),
		cmocka_unit_test(test_cap_zero_writes_nothing),
		cmocka_unit_test(test_cap_one_gives_an_empty_string),
		cmocka_unit_test(test_truncation_never_overflows_or_splits_an_escape_for_any_cap),
		cmocka_unit_test(test_exactly_sized_buffers_are_never_overrun),
		cmocka_unit_test(test_text_that_fits_the_buffer_is_kept_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
