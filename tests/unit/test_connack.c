/*
 * Unit tests for mqtt/connack.c: refusing CONNACKs for each version
 * (3.1.1 3.2, 5.0 3.2) and the 5.0 server DISCONNECT (5.0 3.14).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mqtt/connack.h"

/* 3.1.1 3.2.2.3 return codes; 3.1 uses the same ones. */
static void test_connack_v3_codes_follow_the_return_code_table(void **state)
{
	(void)state;
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_UNSUPPORTED_VERSION), 1);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_BAD_CLIENT_ID), 2);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_SERVER_UNAVAILABLE), 3);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_SERVER_BUSY), 3);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_BAD_CREDENTIALS), 4);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_BAD_AUTH_METHOD), 4);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_NOT_AUTHORIZED), 5);
	assert_int_equal(mqtt_connack_code(3, MQTT_REFUSE_BAD_CLIENT_ID), 2);
}

/* [MQTT-4.8.0-1] 3.x has no code for malformed packets: just close. */
static void test_connack_v3_has_no_code_for_malformed_or_too_large(void **state)
{
	uint8_t buf[8];

	(void)state;
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_MALFORMED), -1);
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_PROTOCOL_ERROR), -1);
	assert_int_equal(mqtt_connack_code(3, MQTT_REFUSE_PACKET_TOO_LARGE), -1);
	assert_int_equal(mqtt_connack_build(4, MQTT_REFUSE_MALFORMED, buf, sizeof(buf)), 0);
}

/* 5.0 3.2.2.2 reason codes. */
static void test_connack_v5_codes_follow_the_reason_code_table(void **state)
{
	(void)state;
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_MALFORMED), 0x81);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_PROTOCOL_ERROR), 0x82);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_UNSUPPORTED_VERSION), 0x84);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_BAD_CLIENT_ID), 0x85);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_BAD_CREDENTIALS), 0x86);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_NOT_AUTHORIZED), 0x87);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_SERVER_UNAVAILABLE), 0x88);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_SERVER_BUSY), 0x89);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_BAD_AUTH_METHOD), 0x8c);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_PACKET_TOO_LARGE), 0x95);
	assert_int_equal(mqtt_connack_code(5, MQTT_REFUSE_QUOTA_EXCEEDED), 0x97);
	/* 3.x has no quota code: "server unavailable" is the nearest. */
	assert_int_equal(mqtt_connack_code(4, MQTT_REFUSE_QUOTA_EXCEEDED), 3);
}

/* [MQTT-3.1.2-2] an unknown level is answered in the 3.1.1 format. */
static void test_connack_unknown_level_gets_v3_unacceptable_version(void **state)
{
	static const uint8_t want[] = { 0x20, 0x02, 0x00, 0x01 };
	uint8_t buf[8];

	(void)state;
	assert_int_equal(mqtt_connack_build(6, MQTT_REFUSE_UNSUPPORTED_VERSION,
	                                    buf, sizeof(buf)), 4);
	assert_memory_equal(buf, want, 4);
}

/* 3.1.1 3.2: fixed header 0x20 0x02, session present 0, return code. */
static void test_connack_v3_build_is_four_bytes(void **state)
{
	static const uint8_t want[] = { 0x20, 0x02, 0x00, 0x05 };
	uint8_t buf[4];

	(void)state;
	assert_int_equal(mqtt_connack_build(4, MQTT_REFUSE_NOT_AUTHORIZED,
	                                    buf, sizeof(buf)), 4);
	assert_memory_equal(buf, want, 4);
}

/* 5.0 3.2: session present 0, reason code, empty properties. */
static void test_connack_v5_build_is_five_bytes_with_empty_properties(void **state)
{
	static const uint8_t want[] = { 0x20, 0x03, 0x00, 0x86, 0x00 };
	uint8_t buf[5];

	(void)state;
	assert_int_equal(mqtt_connack_build(5, MQTT_REFUSE_BAD_CREDENTIALS,
	                                    buf, sizeof(buf)), 5);
	assert_memory_equal(buf, want, 5);
}

static void test_connack_build_fails_when_buffer_is_small(void **state)
{
	uint8_t buf[4];

	(void)state;
	assert_int_equal(mqtt_connack_build(5, MQTT_REFUSE_BAD_CREDENTIALS, buf, 4), 0);
	assert_int_equal(mqtt_connack_build(4, MQTT_REFUSE_BAD_CREDENTIALS, buf, 3), 0);
	assert_int_equal(mqtt_connack_build(4, MQTT_REFUSE_BAD_CREDENTIALS, NULL, 0), 0);
}

/* 5.0 3.14.2.2.1: with remaining length 1 the property length is implied 0. */
static void test_disconnect_v5_is_three_bytes(void **state)
{
	static const uint8_t want[] = { 0xe0, 0x01, 0x8b };
	uint8_t buf[8];

	(void)state;
	assert_int_equal(mqtt_disconnect_build_v5(0x8b, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, want, 3);
	assert_int_equal(mqtt_disconnect_build_v5(0xa0, buf, 2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connack_v3_codes_follow_the_return_code_table),
		cmocka_unit_test(test_connack_v3_has_no_code_for_malformed_or_too_large),
		cmocka_unit_test(test_connack_v5_codes_follow_the_reason_code_table),
		cmocka_unit_test(test_connack_unknown_level_gets_v3_unacceptable_version),
		cmocka_unit_test(test_connack_v3_build_is_four_bytes),
		cmocka_unit_test(test_connack_v5_build_is_five_bytes_with_empty_properties),
		cmocka_unit_test(test_connack_build_fails_when_buffer_is_small),
		cmocka_unit_test(test_disconnect_v5_is_three_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
