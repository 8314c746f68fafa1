/*
 * Unit tests for mqtt/connect_write.c: a parsed CONNECT re-emits to the
 * same bytes, credentials can be swapped, and packets that cannot be
 * encoded (or do not fit) give 0. Expected bytes are built by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/connect.h"
#include "tests/unit/mqtt_bytes.h"

/* Parses |frame|, serializes the result, and asserts identical bytes. */
static void assert_round_trip(const struct pkt *frame)
{
	struct mqtt_connect c;
	uint8_t out[8192];
	size_t n;

	assert_int_equal(mqtt_connect_parse(frame->b, frame->n, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(mqtt_connect_serialized_len(&c), frame->n);
	n = mqtt_connect_serialize(&c, out, sizeof(out));
	assert_int_equal(n, frame->n);
	assert_memory_equal(out, frame->b, n);
}

static void test_write_round_trips_minimal_v311(void **state)
{
	struct pkt body = { .n = 0 }, frame;

	(void)state;
	p_connect_header(&body, "MQTT", 4, 0x02, 60);
	p_str(&body, "c");
	p_frame(&frame, 0x10, &body);
	assert_round_trip(&frame);
}

static void test_write_round_trips_v311_with_everything(void **state)
{
	struct pkt body = { .n = 0 }, frame;

	(void)state;
	p_connect_header(&body, "MQTT", 4, 0xf6, 0xffff);
	p_str(&body, "client");
	p_str(&body, "a/b");
	p_bin(&body, "\x00\x01\x02", 3);
	p_str(&body, "user");
	p_bin(&body, "\xff", 1);
	p_frame(&frame, 0x10, &body);
	assert_round_trip(&frame);
}

static void test_write_round_trips_v31_with_mqisdp_name(void **state)
{
	struct pkt body = { .n = 0 }, frame;

	(void)state;
	p_connect_header(&body, "MQIsdp", 3, 0xce, 10);
	p_str(&body, "old-client");
	p_str(&body, "lwt");
	p_str(&body, "x");
	p_str(&body, "u");
	p_str(&body, "p");
	p_frame(&frame, 0x10, &body);
	assert_round_trip(&frame);
}

static void test_write_round_trips_v5_with_all_properties(void **state)
{
	struct pkt body = { .n = 0 }, frame, props = { .n = 0 }, w = { .n = 0 };

	(void)state;
	p_u8(&props, 0x11); p_u32(&props, 60);
	p_u8(&props, 0x21); p_u16(&props, 5);
	p_u8(&props, 0x27); p_u32(&props, 4096);
	p_u8(&props, 0x22); p_u16(&props, 3);
	p_u8(&props, 0x19); p_u8(&props, 1);
	p_u8(&props, 0x17); p_u8(&props, 1);
	p_u8(&props, 0x26); p_str(&props, "x"); p_str(&props, "y");
	p_u8(&props, 0x15); p_str(&props, "m");
	p_u8(&props, 0x16); p_bin(&props, "d", 1);
	p_u8(&w, 0x18); p_u32(&w, 1);
	p_u8(&w, 0x01); p_u8(&w, 1);
	p_u8(&w, 0x02); p_u32(&w, 2);
	p_u8(&w, 0x03); p_str(&w, "ct");
	p_u8(&w, 0x08); p_str(&w, "rt");
	p_u8(&w, 0x09); p_bin(&w, "cd", 2);
	p_u8(&w, 0x26); p_str(&w, "a"); p_str(&w, "b");
	p_connect_header(&body, "MQTT", 5, 0xee, 120);
	p_props(&body, &props);
	p_str(&body, "c5");
	p_props(&body, &w);
	p_str(&body, "t");
	p_str(&body, "payload");
	p_str(&body, "u");
	p_str(&body, "p");
	p_frame(&frame, 0x10, &body);
	assert_round_trip(&frame);
}

/* A remaining length over 127 takes a two-byte varint; over 16383, three. */
static void test_write_round_trips_multi_byte_remaining_length(void **state)
{
	static uint8_t pw[20000];
	struct pkt body = { .n = 0 }, frame;

	(void)state;
	memset(pw, 'p', sizeof(pw));
	p_connect_header(&body, "MQTT", 4, 0xc2, 60);
	p_str(&body, "c");
	p_str(&body, "u");
	p_bin(&body, pw, 3000);
	p_frame(&frame, 0x10, &body);
	assert_round_trip(&frame);
	assert_int_equal(frame.b[1] & 0x80, 0x80);
}

/* The proxy's use: replace the client's credentials before forwarding. */
static void test_write_uses_swapped_credentials(void **state)
{
	struct pkt body = { .n = 0 }, frame, want_body = { .n = 0 }, want;
	struct mqtt_connect c;
	uint8_t out[256];
	size_t n;

	(void)state;
	p_connect_header(&body, "MQTT", 4, 0xc2, 60);
	p_str(&body, "c");
	p_str(&body, "client-user");
	p_str(&body, "client-secret");
	p_frame(&frame, 0x10, &body);
	assert_int_equal(mqtt_connect_parse(frame.b, frame.n, &c, NULL), MQTT_CONNECT_OK);

	c.username.ptr = (const uint8_t *)"broker-user";
	c.username.len = 11;
	c.has_password = 0;
	p_connect_header(&want_body, "MQTT", 4, 0x82, 60);
	p_str(&want_body, "c");
	p_str(&want_body, "broker-user");
	p_frame(&want, 0x10, &want_body);

	n = mqtt_connect_serialize(&c, out, sizeof(out));
	assert_int_equal(n, want.n);
	assert_memory_equal(out, want.b, n);
}

/* Flags come from the fields, not the raw byte; no will, no will bits. */
static void test_write_rebuilds_flags_from_fields(void **state)
{
	struct mqtt_connect c;
	uint8_t out[64];
	size_t n;
	static const uint8_t want[] = { 0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T',
	                                0x04, 0x02, 0x00, 0x05, 0x00, 0x01, 'z' };

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V311;
	c.flags = 0xff;
	c.clean_start = 1;
	c.keepalive = 5;
	c.client_id.ptr = (const uint8_t *)"z";
	c.client_id.len = 1;
	c.will_qos = 2;
	c.will_retain = 1;
	n = mqtt_connect_serialize(&c, out, sizeof(out));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, n);
}

/* 5.0: an empty property block is written as length 0 (3.1.2.11.1). */
static void test_write_v5_writes_empty_property_length(void **state)
{
	struct mqtt_connect c;
	uint8_t out[64];
	size_t n;
	static const uint8_t want[] = { 0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T',
	                                0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V5;
	n = mqtt_connect_serialize(&c, out, sizeof(out));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, n);
	/* a stray properties slice on a 3.1.1 packet is not written */
	c.version = MQTT_V311;
	c.properties.ptr = (const uint8_t *)"\x11\x00\x00\x00\x01";
	c.properties.len = 5;
	assert_int_equal(mqtt_connect_serialized_len(&c), 14);
}

/* [MQTT-3.1.2-22] before 5.0 a password cannot go without a user name. */
static void test_write_refuses_v311_password_without_username(void **state)
{
	struct mqtt_connect c;
	uint8_t out[64];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = MQTT_V311;
	c.has_password = 1;
	c.password.ptr = (const uint8_t *)"pw";
	c.password.len = 2;
	assert_int_equal(mqtt_connect_serialized_len(&c), 0);
	assert_int_equal(mqtt_connect_serialize(&c, out, sizeof(out)), 0);
	c.version = MQTT_V31;
	assert_int_equal(mqtt_connect_serialize(&c, out, sizeof(out)), 0);
	c.version = MQTT_V5;
	assert_int_not_equal(mqtt_connect_serialize(&c, out, sizeof(out)), 0);
}

static void test_write_refuses_what_cannot_be_encoded(void **state)
{
	static uint8_t big[70000];
	struct mqtt_connect c;
	uint8_t out[64];

	(void)state;
	memset(&c, 0, sizeof(c));
	c.version = 6;
	assert_int_equal(mqtt_connect_serialize(&c, out, sizeof(out)), 0);
	c.version = MQTT_V311;
	c.has_will = 1;
	c.will_qos = 3;
	c.will_topic.ptr = (const uint8_t *)"t";
	c.will_topic.len = 1;
	assert_int_equal(mqtt_connect_serialized_len(&c), 0);
	c.will_qos = 1;
	assert_int_not_equal(mqtt_connect_serialized_len(&c), 0);
	c.client_id.ptr = big;
	c.client_id.len = sizeof(big);
	assert_int_equal(mqtt_connect_serialized_len(&c), 0);
}

/* The output is bounded: one byte short gives 0, exact size works. */
static void test_write_fails_cleanly_when_output_is_too_small(void **state)
{
	struct pkt body = { .n = 0 }, frame;
	struct mqtt_connect c;
	uint8_t out[64];

	(void)state;
	p_connect_header(&body, "MQTT", 4, 0x02, 60);
	p_str(&body, "abc");
	p_frame(&frame, 0x10, &body);
	assert_int_equal(mqtt_connect_parse(frame.b, frame.n, &c, NULL), MQTT_CONNECT_OK);
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(mqtt_connect_serialize(&c, out, frame.n - 1), 0);
	assert_int_equal(out[0], 0x5a);          /* nothing written */
	assert_int_equal(mqtt_connect_serialize(&c, out, frame.n), frame.n);
	assert_int_equal(mqtt_connect_serialize(&c, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_round_trips_minimal_v311),
		cmocka_unit_test(test_write_round_trips_v311_with_everything),
		cmocka_unit_test(test_write_round_trips_v31_with_mqisdp_name),
		cmocka_unit_test(test_write_round_trips_v5_with_all_properties),
		cmocka_unit_test(test_write_round_trips_multi_byte_remaining_length),
		cmocka_unit_test(test_write_uses_swapped_credentials),
		cmocka_unit_test(test_write_rebuilds_flags_from_fields),
		cmocka_unit_test(test_write_v5_writes_empty_property_length),
		cmocka_unit_test(test_write_refuses_v311_password_without_username),
		cmocka_unit_test(test_write_refuses_what_cannot_be_encoded),
		cmocka_unit_test(test_write_fails_cleanly_when_output_is_too_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
