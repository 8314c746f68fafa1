/*
 * Unit tests for mqtt/ack.c: the PUBACK / PUBREC / PUBCOMP mqtls sends for
 * a PUBLISH the ACL dropped, and the client's SUBACK when some filters
 * were denied (codes at the filters' positions, [MQTT-3.9.3-1]).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/ack.h"
#include "mqtt/packet.h"
#include "tests/unit/mqtt_bytes.h"

static void test_ack_v5_puback_carries_not_authorized(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(mqtt_ack_write(MQTT_PUBACK, 5, 0x1234, MQTT_RC_NOT_AUTHORIZED, out, sizeof(out)), 5);
	assert_memory_equal(out, "\x40\x03\x12\x34\x87", 5);
	assert_int_equal(mqtt_ack_write(MQTT_PUBREC, 5, 1, MQTT_RC_NOT_AUTHORIZED, out, sizeof(out)), 5);
	assert_memory_equal(out, "\x50\x03\x00\x01\x87", 5);
}

static void test_ack_v311_puback_has_no_reason(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(mqtt_ack_write(MQTT_PUBACK, 4, 7, MQTT_RC_NOT_AUTHORIZED, out, sizeof(out)), 4);
	assert_memory_equal(out, "\x40\x02\x00\x07", 4);
	assert_int_equal(mqtt_ack_write(MQTT_PUBCOMP, 3, 7, 0, out, sizeof(out)), 4);
	assert_memory_equal(out, "\x70\x02\x00\x07", 4);
}

static void test_ack_refuses_other_types_and_small_buffers(void **state)
{
	uint8_t out[8];

	(void)state;
	assert_int_equal(mqtt_ack_write(MQTT_PUBREL, 4, 7, 0, out, sizeof(out)), 0);
	assert_int_equal(mqtt_ack_write(MQTT_PUBACK, 5, 7, 0, out, 4), 0);
}

static void test_suback_parse_reads_the_codes(void **state)
{
	struct pkt body = { .n = 0 }, frame;
	struct mqtt_suback s;
	const char *why = "unset";

	(void)state;
	p_u16(&body, 9);
	p_u8(&body, 0x01);
	p_u8(&body, 0x80);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 4, &s, &why), MQTT_PARSE_OK);
	assert_null(why);
	assert_int_equal(s.packet_id, 9);
	assert_int_equal(s.codes.len, 2);
	assert_memory_equal(s.codes.ptr, "\x01\x80", 2);
}

static void test_suback_parse_v5_reads_properties(void **state)
{
	struct pkt body = { .n = 0 }, frame, props = { .n = 0 };
	struct mqtt_suback s;

	(void)state;
	p_u8(&props, 0x1f);
	p_str(&props, "why");
	p_u16(&body, 9);
	p_props(&body, &props);
	p_u8(&body, 0x00);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 5, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(s.properties.len, props.n);
	assert_int_equal(s.codes.len, 1);
}

static void test_suback_parse_refuses_malformed_packets(void **state)
{
	struct pkt body = { .n = 0 }, frame;
	struct mqtt_suback s;
	const char *why = NULL;

	(void)state;
	p_u16(&body, 9);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 4, &s, &why), MQTT_PARSE_PROTOCOL_ERROR);
	assert_non_null(strstr(why, "[MQTT-3.8.4-5]"));
	p_u8(&body, 0);
	p_frame(&frame, 0x92, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 4, &s, &why), MQTT_PARSE_MALFORMED);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n - 1, 4, &s, &why), MQTT_PARSE_MALFORMED);
	/* 5.0: a property a SUBACK may not carry. */
	body.n = 0;
	p_u16(&body, 9);
	p_u8(&body, 2);
	p_u8(&body, 0x01);
	p_u8(&body, 0x01);
	p_u8(&body, 0x00);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 5, &s, &why), MQTT_PARSE_MALFORMED);
	assert_non_null(why);
}

static void test_suback_merge_puts_denials_at_their_positions_mqtt_3_9_3_1(void **state)
{
	const uint8_t keep[5] = { 0, 1, 0, 1, 1 };
	struct slice broker = { (const uint8_t *)"\x01\x00\x02", 3 };
	uint8_t codes[5];

	(void)state;
	assert_true(mqtt_suback_merge(keep, 5, broker, MQTT_RC_NOT_AUTHORIZED, codes));
	assert_memory_equal(codes, "\x87\x01\x87\x00\x02", 5);
	assert_true(mqtt_suback_merge(keep, 5, broker, MQTT_RC_SUBACK_FAILURE_V3, codes));
	assert_memory_equal(codes, "\x80\x01\x80\x00\x02", 5);
}

static void test_suback_merge_refuses_a_broker_answer_of_the_wrong_size(void **state)
{
	const uint8_t keep[3] = { 1, 0, 1 };
	struct slice one = { (const uint8_t *)"\x01", 1 }, three = { (const uint8_t *)"\x01\x01\x01", 3 };
	uint8_t codes[3];

	(void)state;
	assert_false(mqtt_suback_merge(keep, 3, one, 0x80, codes));
	assert_false(mqtt_suback_merge(keep, 3, three, 0x80, codes));
}

static void test_suback_write_builds_the_answer_mqtls_gives_alone(void **state)
{
	const uint8_t codes[2] = { 0x87, 0x87 };
	struct slice none = { NULL, 0 };
	uint8_t out[32];
	struct mqtt_suback s;

	(void)state;
	/* Every filter denied: mqtls answers the SUBSCRIBE itself. */
	assert_int_equal(mqtt_suback_write(5, 0x0102, none, codes, 2, out, sizeof(out)), 7);
	assert_memory_equal(out, "\x90\x05\x01\x02\x00\x87\x87", 7);
	assert_int_equal(mqtt_suback_parse(out, 7, 5, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(mqtt_suback_write(4, 0x0102, none, (const uint8_t *)"\x80", 1, out, sizeof(out)), 5);
	assert_memory_equal(out, "\x90\x03\x01\x02\x80", 5);
	assert_int_equal(mqtt_suback_write(4, 1, none, codes, 0, out, sizeof(out)), 0);
	assert_int_equal(mqtt_suback_write(5, 1, none, codes, 2, out, 6), 0);
}

static void test_suback_write_keeps_the_brokers_properties(void **state)
{
	struct pkt body = { .n = 0 }, frame, props = { .n = 0 };
	struct mqtt_suback s;
	const uint8_t keep[2] = { 0, 1 };
	uint8_t codes[2], out[64];
	size_t n;

	(void)state;
	p_u8(&props, 0x1f);
	p_str(&props, "ok");
	p_u16(&body, 3);
	p_props(&body, &props);
	p_u8(&body, 0x01);
	p_frame(&frame, 0x90, &body);
	assert_int_equal(mqtt_suback_parse(frame.b, frame.n, 5, &s, NULL), MQTT_PARSE_OK);
	assert_true(mqtt_suback_merge(keep, 2, s.codes, MQTT_RC_NOT_AUTHORIZED, codes));
	n = mqtt_suback_write(5, s.packet_id, s.properties, codes, 2, out, sizeof(out));
	assert_int_equal(n, frame.n + 1);
	assert_int_equal(mqtt_suback_parse(out, n, 5, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(s.codes.len, 2);
	assert_memory_equal(s.codes.ptr, "\x87\x01", 2);
	assert_int_equal(s.properties.len, props.n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_v5_puback_carries_not_authorized),
		cmocka_unit_test(test_ack_v311_puback_has_no_reason),
		cmocka_unit_test(test_ack_refuses_other_types_and_small_buffers),
		cmocka_unit_test(test_suback_parse_reads_the_codes),
		cmocka_unit_test(test_suback_parse_v5_reads_properties),
		cmocka_unit_test(test_suback_parse_refuses_malformed_packets),
		cmocka_unit_test(test_suback_merge_puts_denials_at_their_positions_mqtt_3_9_3_1),
		cmocka_unit_test(test_suback_merge_refuses_a_broker_answer_of_the_wrong_size),
		cmocka_unit_test(test_suback_write_builds_the_answer_mqtls_gives_alone),
		cmocka_unit_test(test_suback_write_keeps_the_brokers_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
