/*
 * Unit tests for mqtt/cursor.c: bounds-checked readers, the Variable Byte
 * Integer (5.0 1.5.5), MQTT UTF-8 strings (5.0 1.5.4) and the outbuf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/cursor.h"

static int varint_of(const uint8_t *b, size_t n, uint32_t *v, size_t *left)
{
	struct cursor c;
	int ok;

	cursor_init(&c, b, n);
	ok = cursor_varint(&c, v);
	*left = cursor_left(&c);
	return ok;
}

static int utf8(const char *s, size_t n)
{
	return mqtt_utf8_valid((const uint8_t *)s, n);
}

static void test_cursor_reads_big_endian_integers(void **state)
{
	static const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07 };
	struct cursor c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;

	(void)state;
	cursor_init(&c, b, sizeof(b));
	assert_true(cursor_u8(&c, &u8));
	assert_int_equal(u8, 0x01);
	assert_true(cursor_u16(&c, &u16));
	assert_int_equal(u16, 0x0203);
	assert_true(cursor_u32(&c, &u32));
	assert_int_equal(u32, 0x04050607);
	assert_int_equal(cursor_left(&c), 0);
	assert_false(cursor_u8(&c, &u8));
}

static void test_cursor_refuses_reads_past_the_end(void **state)
{
	static const uint8_t b[] = { 0x01, 0x02, 0x03 };
	struct cursor c;
	uint16_t u16;
	uint32_t u32;
	struct slice s;

	(void)state;
	cursor_init(&c, b, 1);
	assert_false(cursor_u16(&c, &u16));
	cursor_init(&c, b, 3);
	assert_false(cursor_u32(&c, &u32));
	cursor_init(&c, b, 3);
	assert_false(cursor_take(&c, 4, &s));
	assert_true(cursor_take(&c, 3, &s));
	assert_ptr_equal(s.ptr, b);
	assert_int_equal(s.len, 3);
	assert_true(cursor_take(&c, 0, &s));
	assert_int_equal(s.len, 0);
}

static void test_cursor_binary_reads_length_then_bytes(void **state)
{
	static const uint8_t b[] = { 0x00, 0x02, 'h', 'i', 0x00, 0x00 };
	struct cursor c;
	struct slice s;

	(void)state;
	cursor_init(&c, b, sizeof(b));
	assert_true(cursor_binary(&c, &s));
	assert_int_equal(s.len, 2);
	assert_memory_equal(s.ptr, "hi", 2);
	/* empty, not absent */
	assert_true(cursor_binary(&c, &s));
	assert_int_equal(s.len, 0);
	assert_int_equal(cursor_left(&c), 0);
}

static void test_cursor_binary_rejects_length_beyond_input(void **state)
{
	static const uint8_t b[] = { 0x00, 0x03, 'h', 'i' };
	struct cursor c;
	struct slice s;

	(void)state;
	cursor_init(&c, b, sizeof(b));
	assert_false(cursor_binary(&c, &s));
	cursor_init(&c, b, 1);
	assert_false(cursor_binary(&c, &s));
}

/* 5.0 1.5.5: boundary values of each encoded length. */
static void test_cursor_varint_decodes_each_length(void **state)
{
	static const struct {
		uint8_t b[4];
		size_t n;
		uint32_t v;
	} cases[] = {
		{ { 0x00 }, 1, 0 },
		{ { 0x7f }, 1, 127 },
		{ { 0x80, 0x01 }, 2, 128 },
		{ { 0xff, 0x7f }, 2, 16383 },
		{ { 0x80, 0x80, 0x01 }, 3, 16384 },
		{ { 0xff, 0xff, 0x7f }, 3, 2097151 },
		{ { 0x80, 0x80, 0x80, 0x01 }, 4, 2097152 },
		{ { 0xff, 0xff, 0xff, 0x7f }, 4, 268435455 },
	};
	size_t i, left;
	uint32_t v;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(varint_of(cases[i].b, cases[i].n, &v, &left));
		assert_int_equal(v, cases[i].v);
		assert_int_equal(left, 0);
	}
}

/* 5.0 1.5.5: at most four bytes. */
static void test_cursor_varint_rejects_a_fifth_byte(void **state)
{
	static const uint8_t b[] = { 0xff, 0xff, 0xff, 0xff, 0x01 };
	uint32_t v;
	size_t left;

	(void)state;
	assert_false(varint_of(b, sizeof(b), &v, &left));
}

/* [MQTT-1.5.5-1] the encoding must use the minimum number of bytes. */
static void test_cursor_varint_rejects_non_minimal_encoding(void **state)
{
	static const uint8_t zero2[] = { 0x80, 0x00 };
	static const uint8_t zero3[] = { 0x80, 0x80, 0x00 };
	static const uint8_t one2[] = { 0x81, 0x00 };
	static const uint8_t big4[] = { 0xff, 0xff, 0x80, 0x00 };
	uint32_t v;
	size_t left;

	(void)state;
	assert_false(varint_of(zero2, sizeof(zero2), &v, &left));
	assert_false(varint_of(zero3, sizeof(zero3), &v, &left));
	assert_false(varint_of(one2, sizeof(one2), &v, &left));
	assert_false(varint_of(big4, sizeof(big4), &v, &left));
}

static void test_cursor_varint_rejects_truncation(void **state)
{
	static const uint8_t b[] = { 0x80, 0x80 };
	uint32_t v;
	size_t left;

	(void)state;
	assert_false(varint_of(b, sizeof(b), &v, &left));
	assert_false(varint_of(b, 0, &v, &left));
}

static void test_utf8_accepts_well_formed_text(void **state)
{
	(void)state;
	assert_true(utf8("", 0));
	assert_true(utf8("plain/ascii", 11));
	assert_true(utf8("\xc2\x80", 2));                  /* U+0080 */
	assert_true(utf8("\xdf\xbf", 2));                  /* U+07FF */
	assert_true(utf8("\xe0\xa0\x80", 3));              /* U+0800 */
	assert_true(utf8("\xed\x9f\xbf", 3));              /* U+D7FF */
	assert_true(utf8("\xee\x80\x80", 3));              /* U+E000 */
	assert_true(utf8("\xef\xbb\xbf", 3));              /* BOM is kept [MQTT-1.5.4-3] */
	assert_true(utf8("\xf0\x90\x80\x80", 4));          /* U+10000 */
	assert_true(utf8("\xf4\x8f\xbf\xbf", 4));          /* U+10FFFF */
	assert_true(utf8("caf\xc3\xa9 \xe2\x82\xac", 9));
}

/* [MQTT-1.5.4-2] no U+0000 in an MQTT string. */
static void test_utf8_rejects_null_character(void **state)
{
	(void)state;
	assert_false(utf8("a\0b", 3));
	assert_false(utf8("\0", 1));
	/* payload data may carry it (5.0 3.3.2.3.2 only asks for well-formed) */
	assert_true(mqtt_utf8_valid_data((const uint8_t *)"a\0b", 3));
}

/* [MQTT-1.5.4-1] ill-formed UTF-8: overlong forms. */
static void test_utf8_rejects_overlong_encodings(void **state)
{
	(void)state;
	assert_false(utf8("\xc0\x80", 2));                 /* overlong U+0000 */
	assert_false(utf8("\xc1\xbf", 2));
	assert_false(utf8("\xe0\x80\x80", 3));
	assert_false(utf8("\xe0\x9f\xbf", 3));
	assert_false(utf8("\xf0\x80\x80\x80", 4));
	assert_false(utf8("\xf0\x8f\xbf\xbf", 4));
	assert_false(mqtt_utf8_valid_data((const uint8_t *)"\xc0\x80", 2));
}

/* [MQTT-1.5.4-1] surrogates U+D800..U+DFFF are not characters. */
static void test_utf8_rejects_surrogates(void **state)
{
	(void)state;
	assert_false(utf8("\xed\xa0\x80", 3));             /* U+D800 */
	assert_false(utf8("\xed\xbf\xbf", 3));             /* U+DFFF */
}

/* [MQTT-1.5.4-1] nothing above U+10FFFF, no F5..FF lead bytes. */
static void test_utf8_rejects_code_points_beyond_unicode(void **state)
{
	(void)state;
	assert_false(utf8("\xf4\x90\x80\x80", 4));         /* U+110000 */
	assert_false(utf8("\xf5\x80\x80\x80", 4));
	assert_false(utf8("\xff", 1));
	assert_false(utf8("\xfe", 1));
}

/* [MQTT-1.5.4-1] stray continuation bytes and cut sequences. */
static void test_utf8_rejects_broken_sequences(void **state)
{
	(void)state;
	assert_false(utf8("\x80", 1));
	assert_false(utf8("a\xbf", 2));
	assert_false(utf8("\xc3", 1));
	assert_false(utf8("\xe2\x82", 2));
	assert_false(utf8("\xf0\x90\x80", 3));
	assert_false(utf8("\xc3\x28", 2));
	assert_false(utf8("\xe2\x28\xa1", 3));
	assert_false(utf8("\xf0\x90\x28\xbc", 4));
}

static void test_cursor_utf8_checks_the_string(void **state)
{
	static const uint8_t good[] = { 0x00, 0x02, 0xc3, 0xa9 };
	static const uint8_t bad[] = { 0x00, 0x02, 0xc3, 0x28 };
	struct cursor c;
	struct slice s;

	(void)state;
	cursor_init(&c, good, sizeof(good));
	assert_true(cursor_utf8(&c, &s));
	assert_int_equal(s.len, 2);
	cursor_init(&c, bad, sizeof(bad));
	assert_false(cursor_utf8(&c, &s));
}

static void test_outbuf_writes_big_endian_and_binary(void **state)
{
	static const uint8_t want[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
	                                0x07, 0x00, 0x02, 'o', 'k' };
	uint8_t buf[32];
	struct outbuf o;
	struct slice s = { (const uint8_t *)"ok", 2 };

	(void)state;
	outbuf_init(&o, buf, sizeof(buf));
	assert_true(outbuf_u8(&o, 0x01));
	assert_true(outbuf_u16(&o, 0x0203));
	assert_true(outbuf_u32(&o, 0x04050607));
	assert_true(outbuf_binary(&o, s));
	assert_false(o.failed);
	assert_int_equal(o.len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_outbuf_varint_is_minimal_and_bounded(void **state)
{
	static const uint32_t values[] = { 0, 127, 128, 16383, 16384,
	                                   2097151, 2097152, 268435455 };
	uint8_t buf[8];
	struct outbuf o;
	size_t i, left;
	uint32_t v;

	(void)state;
	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		outbuf_init(&o, buf, sizeof(buf));
		assert_true(outbuf_varint(&o, values[i]));
		assert_int_equal(o.len, mqtt_varint_size(values[i]));
		assert_true(varint_of(buf, o.len, &v, &left));
		assert_int_equal(v, values[i]);
	}
	assert_int_equal(mqtt_varint_size(127), 1);
	assert_int_equal(mqtt_varint_size(128), 2);
	assert_int_equal(mqtt_varint_size(268435456u), 0);
	outbuf_init(&o, buf, sizeof(buf));
	assert_false(outbuf_varint(&o, 268435456u));
	assert_true(o.failed);
}

static void test_outbuf_overflow_sticks_and_writes_nothing_more(void **state)
{
	uint8_t buf[4] = { 0 };
	struct outbuf o;

	(void)state;
	outbuf_init(&o, buf, 3);
	assert_true(outbuf_u16(&o, 0xaaaa));
	assert_false(outbuf_u16(&o, 0xbbbb));
	assert_true(o.failed);
	/* a smaller write after a failure still fails */
	assert_false(outbuf_u8(&o, 0xcc));
	assert_int_equal(o.len, 2);
	assert_int_equal(buf[2], 0);
}

static void test_outbuf_binary_refuses_over_64k(void **state)
{
	static uint8_t big[70000];
	uint8_t buf[16];
	struct outbuf o;
	struct slice s = { big, sizeof(big) };

	(void)state;
	outbuf_init(&o, buf, sizeof(buf));
	assert_false(outbuf_binary(&o, s));
	assert_true(o.failed);
}

/* [MQTT-1.5.4-1] recommendation: names mqtls injects carry no control
 * characters U+0001..U+001F or U+007F..U+009F. */
static void test_printable_string_rejects_c0_and_c1_controls(void **state)
{
	static const char *bad[] = { "dev\x01ice", "tab\there", "del\x7f", "c1\xc2\x80x", "c1\xc2\x9f" };

	assert_true(mqtt_utf8_valid_printable((const uint8_t *)"device-7", 8));
	assert_true(mqtt_utf8_valid_printable((const uint8_t *)"gr\xc3\xbc\xc3\x9f \xc2\xa0nbsp", 13));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(mqtt_utf8_valid_printable((const uint8_t *)bad[i], strlen(bad[i])));
}

static void test_printable_string_rejects_what_mqtt_utf8_rejects(void **state)
{
	assert_false(mqtt_utf8_valid_printable((const uint8_t *)"a\0b", 3));
	assert_false(mqtt_utf8_valid_printable((const uint8_t *)"\xed\xa0\x80", 3));
	assert_false(mqtt_utf8_valid_printable((const uint8_t *)"\xc2", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor_reads_big_endian_integers),
		cmocka_unit_test(test_cursor_refuses_reads_past_the_end),
		cmocka_unit_test(test_cursor_binary_reads_length_then_bytes),
		cmocka_unit_test(test_cursor_binary_rejects_length_beyond_input),
		cmocka_unit_test(test_cursor_varint_decodes_each_length),
		cmocka_unit_test(test_cursor_varint_rejects_a_fifth_byte),
		cmocka_unit_test(test_cursor_varint_rejects_non_minimal_encoding),
		cmocka_unit_test(test_cursor_varint_rejects_truncation),
		cmocka_unit_test(test_utf8_accepts_well_formed_text),
		cmocka_unit_test(test_utf8_rejects_null_character),
		cmocka_unit_test(test_utf8_rejects_overlong_encodings),
		cmocka_unit_test(test_utf8_rejects_surrogates),
		cmocka_unit_test(test_utf8_rejects_code_points_beyond_unicode),
		cmocka_unit_test(test_utf8_rejects_broken_sequences),
		cmocka_unit_test(test_cursor_utf8_checks_the_string),
		cmocka_unit_test(test_outbuf_writes_big_endian_and_binary),
		cmocka_unit_test(test_outbuf_varint_is_minimal_and_bounded),
		cmocka_unit_test(test_outbuf_overflow_sticks_and_writes_nothing_more),
		cmocka_unit_test(test_outbuf_binary_refuses_over_64k),
		cmocka_unit_test(test_printable_string_rejects_c0_and_c1_controls),
		cmocka_unit_test(test_printable_string_rejects_what_mqtt_utf8_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
