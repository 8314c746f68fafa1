/*
 * Unit tests for mqtt/packet.c: finding the end of one packet from its
 * fixed header (3.1.1 2.2, 5.0 2.1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mqtt/packet.h"

static void test_frame_reads_type_flags_and_lengths(void **state)
{
	static const uint8_t b[] = { 0x32, 0x03, 0x00, 0x01, 'x' };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 1024, &f), MQTT_FRAME_OK);
	assert_int_equal(f.type, MQTT_PUBLISH);
	assert_int_equal(f.flags, 0x2);
	assert_int_equal(f.header_len, 2);
	assert_int_equal(f.remaining_len, 3);
	assert_int_equal(f.total_len, 5);
}

static void test_frame_with_zero_remaining_length_is_complete(void **state)
{
	static const uint8_t b[] = { 0xc0, 0x00 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 2, &f), MQTT_FRAME_OK);
	assert_int_equal(f.type, MQTT_PINGREQ);
	assert_int_equal(f.total_len, 2);
}

/* The size is known from the header alone; the body may still be coming. */
static void test_frame_reports_size_before_the_body_arrives(void **state)
{
	static const uint8_t b[] = { 0x10, 0xc8, 0x01 };   /* 200 bytes follow */
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 4096, &f), MQTT_FRAME_OK);
	assert_int_equal(f.header_len, 3);
	assert_int_equal(f.remaining_len, 200);
	assert_int_equal(f.total_len, 203);
}

static void test_frame_needs_more_for_a_split_header(void **state)
{
	static const uint8_t b[] = { 0x10, 0x80, 0x80, 0x80 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, 0, 4096, &f), MQTT_FRAME_NEED_MORE);
	assert_int_equal(mqtt_frame_parse(b, 1, 4096, &f), MQTT_FRAME_NEED_MORE);
	assert_int_equal(mqtt_frame_parse(b, 2, 4096, &f), MQTT_FRAME_NEED_MORE);
	assert_int_equal(mqtt_frame_parse(b, 4, 4096, &f), MQTT_FRAME_NEED_MORE);
	assert_int_equal(mqtt_frame_parse(NULL, 0, 4096, &f), MQTT_FRAME_NEED_MORE);
}

/* 3.1.1 2.2.3 / 5.0 1.5.5: the remaining length is at most four bytes. */
static void test_frame_rejects_five_byte_remaining_length(void **state)
{
	static const uint8_t b[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 0x01 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), SIZE_MAX, &f),
	                 MQTT_FRAME_MALFORMED);
	/* known to be malformed before the fifth byte arrives */
	assert_int_equal(mqtt_frame_parse(b, 5, SIZE_MAX, &f), MQTT_FRAME_MALFORMED);
}

/* [MQTT-1.5.5-1] a non-minimal remaining length is malformed. */
static void test_frame_rejects_non_minimal_remaining_length(void **state)
{
	static const uint8_t b[] = { 0x10, 0x80, 0x00 };
	static const uint8_t c[] = { 0x10, 0x85, 0x80, 0x00 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 4096, &f), MQTT_FRAME_MALFORMED);
	assert_int_equal(mqtt_frame_parse(c, sizeof(c), 4096, &f), MQTT_FRAME_MALFORMED);
}

static void test_frame_too_large_as_soon_as_the_header_says_so(void **state)
{
	static const uint8_t b[] = { 0x10, 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t edge[] = { 0x10, 0x7e };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), 65536, &f), MQTT_FRAME_TOO_LARGE);
	assert_int_equal(f.remaining_len, 268435455);
	assert_int_equal(f.total_len, 268435460);
	/* total 128 against limits 128 and 127 */
	assert_int_equal(mqtt_frame_parse(edge, sizeof(edge), 128, &f), MQTT_FRAME_OK);
	assert_int_equal(mqtt_frame_parse(edge, sizeof(edge), 127, &f), MQTT_FRAME_TOO_LARGE);
}

static void test_frame_accepts_largest_remaining_length(void **state)
{
	static const uint8_t b[] = { 0x30, 0xff, 0xff, 0xff, 0x7f };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(mqtt_frame_parse(b, sizeof(b), SIZE_MAX, &f), MQTT_FRAME_OK);
	assert_int_equal(f.header_len, 5);
	assert_int_equal(f.remaining_len, 268435455);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_reads_type_flags_and_lengths),
		cmocka_unit_test(test_frame_with_zero_remaining_length_is_complete),
		cmocka_unit_test(test_frame_reports_size_before_the_body_arrives),
		cmocka_unit_test(test_frame_needs_more_for_a_split_header),
		cmocka_unit_test(test_frame_rejects_five_byte_remaining_length),
		cmocka_unit_test(test_frame_rejects_non_minimal_remaining_length),
		cmocka_unit_test(test_frame_too_large_as_soon_as_the_header_says_so),
		cmocka_unit_test(test_frame_accepts_largest_remaining_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
