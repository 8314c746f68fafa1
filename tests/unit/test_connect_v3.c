/*
 * Unit tests for mqtt/connect.c with MQTT 3.1 ("MQIsdp", level 3) and
 * 3.1.1 ("MQTT", level 4) packets, plus the version-independent framing
 * rules. Each refusal test names the normative statement it covers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/connect.h"
#include "tests/unit/mqtt_bytes.h"

/* Starts a 3.1.1 CONNECT body with keep alive 60. */
static void v311(struct pkt *body, unsigned flags)
{
	body->n = 0;
	p_connect_header(body, "MQTT", 4, flags, 60);
}

static void v31(struct pkt *body, unsigned flags)
{
	body->n = 0;
	p_connect_header(body, "MQIsdp", 3, flags, 60);
}

static enum mqtt_connect_error parse_body(const struct pkt *body,
                                          struct mqtt_connect *c,
                                          const char **why)
{
	struct pkt frame;

	p_frame(&frame, 0x10, body);
	return mqtt_connect_parse(frame.b, frame.n, c, why);
}

/* Parses |body| as a CONNECT and asserts the refusal and its rule. */
static void expect_refused(const struct pkt *body, enum mqtt_connect_error want,
                           const char *rule)
{
	struct mqtt_connect c;
	const char *why = NULL;

	assert_int_equal(parse_body(body, &c, &why), want);
	assert_non_null(why);
	if (strstr(why, rule) == NULL)
		fail_msg("why \"%s\" does not name %s", why, rule);
}

static void expect_raw_refused(const struct pkt *frame, enum mqtt_connect_error want,
                               const char *rule)
{
	struct mqtt_connect c;
	const char *why = NULL;

	assert_int_equal(mqtt_connect_parse(frame->b, frame->n, &c, &why), want);
	assert_non_null(why);
	if (strstr(why, rule) == NULL)
		fail_msg("why \"%s\" does not name %s", why, rule);
}

static void assert_slice(struct slice s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_connect_v311_minimal_parses(void **state)
{
	struct pkt body;
	struct mqtt_connect c;
	const char *why = "unset";

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "client-1");
	assert_int_equal(parse_body(&body, &c, &why), MQTT_CONNECT_OK);
	assert_null(why);
	assert_int_equal(c.version, MQTT_V311);
	assert_int_equal(c.flags, 0x02);
	assert_int_equal(c.keepalive, 60);
	assert_true(c.clean_start);
	assert_slice(c.client_id, "client-1");
	assert_false(c.has_will);
	assert_false(c.has_username);
	assert_false(c.has_password);
	assert_int_equal(c.properties.len, 0);
	assert_int_equal(c.user_property_count, 0);
}

static void test_connect_v311_with_will_username_and_password_parses(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	/* user, password, will retain, will QoS 1, will, clean */
	v311(&body, 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02);
	p_str(&body, "dev");
	p_str(&body, "status/dev");
	p_bin(&body, "\x00\xff", 2);              /* will payload is binary */
	p_str(&body, "alice");
	p_bin(&body, "\xff\xfe\x00", 3);          /* password is binary */
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_true(c.has_will);
	assert_int_equal(c.will_qos, 1);
	assert_true(c.will_retain);
	assert_slice(c.will_topic, "status/dev");
	assert_int_equal(c.will_payload.len, 2);
	assert_memory_equal(c.will_payload.ptr, "\x00\xff", 2);
	assert_true(c.has_username);
	assert_slice(c.username, "alice");
	assert_true(c.has_password);
	assert_int_equal(c.password.len, 3);
	assert_int_equal(c.will_properties.len, 0);
}

static void test_connect_v311_will_qos_2_without_retain_parses(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	v311(&body, 0x10 | 0x04);
	p_str(&body, "dev");
	p_str(&body, "t");
	p_bin(&body, "", 0);
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(c.will_qos, 2);
	assert_false(c.will_retain);
	assert_false(c.clean_start);
	assert_int_equal(c.will_payload.len, 0);
}

/* [MQTT-3.1.3-6] [MQTT-3.1.3-7] an empty id is fine with clean session. */
static void test_connect_v311_empty_client_id_with_clean_session_parses(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(c.client_id.len, 0);
}

/* Absent and empty differ: an empty password is present. */
static void test_connect_v311_empty_username_and_password_are_present(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	v311(&body, 0xc2);
	p_str(&body, "x");
	p_str(&body, "");
	p_str(&body, "");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_true(c.has_username);
	assert_int_equal(c.username.len, 0);
	assert_true(c.has_password);
	assert_int_equal(c.password.len, 0);
}

/* 3.1.1 [MQTT-3.1.3-5] a server may accept ids longer than 23 bytes. */
static void test_connect_v311_accepts_long_client_id(void **state)
{
	struct pkt body;
	struct mqtt_connect c;
	char id[300];

	(void)state;
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	v311(&body, 0x02);
	p_str(&body, id);
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(c.client_id.len, 299);
}

static void test_connect_v31_with_credentials_parses(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	v31(&body, 0xc2 | 0x04);
	p_str(&body, "paho/1234");
	p_str(&body, "lwt");
	p_str(&body, "gone");
	p_str(&body, "bob");
	p_str(&body, "secret");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(c.version, MQTT_V31);
	assert_slice(c.client_id, "paho/1234");
	assert_slice(c.will_topic, "lwt");
	assert_slice(c.username, "bob");
	assert_slice(c.password, "secret");
}

/* MQTT 3.1 §3.1: 23 bytes is the longest accepted id. */
static void test_connect_v31_accepts_23_byte_client_id(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	v31(&body, 0x02);
	p_str(&body, "12345678901234567890123");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
}

/* MQTT 3.1 §3.1: more than 23 bytes is "identifier rejected". */
static void test_connect_v31_rejects_24_byte_client_id(void **state)
{
	struct pkt body;

	(void)state;
	v31(&body, 0x02);
	p_str(&body, "123456789012345678901234");
	expect_refused(&body, MQTT_CONNECT_BAD_CLIENT_ID, "MQTT 3.1");
}

/* MQTT 3.1 §3.1: the id is at least one byte. */
static void test_connect_v31_rejects_empty_client_id(void **state)
{
	struct pkt body;

	(void)state;
	v31(&body, 0x02);
	p_str(&body, "");
	expect_refused(&body, MQTT_CONNECT_BAD_CLIENT_ID, "MQTT 3.1");
}

/* [MQTT-3.1.2-22] also applied to 3.1, which 3.1.1 clarified. */
static void test_connect_v31_rejects_password_without_username(void **state)
{
	struct pkt body;

	(void)state;
	v31(&body, 0x42);
	p_str(&body, "c");
	p_str(&body, "pw");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-22]");
}

/* [MQTT-2.2.2-2] CONNECT's fixed header flags are reserved 0. */
static void test_connect_rejects_fixed_header_flags(void **state)
{
	struct pkt body, frame;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_frame(&frame, 0x12, &body);
	expect_raw_refused(&frame, MQTT_CONNECT_MALFORMED, "[MQTT-2.2.2-2]");
}

/* [MQTT-3.1.0-1] the first packet must be a CONNECT. */
static void test_connect_rejects_other_packet_types(void **state)
{
	struct pkt body, frame;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_frame(&frame, 0x30, &body);
	expect_raw_refused(&frame, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.0-1]");
}

/* 2.2.3: bytes beyond the remaining length are not part of the packet. */
static void test_connect_rejects_bytes_beyond_remaining_length(void **state)
{
	struct pkt body, frame;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_frame(&frame, 0x10, &body);
	p_u8(&frame, 0x00);
	expect_raw_refused(&frame, MQTT_CONNECT_MALFORMED, "[2.2.3]");
}

/* 2.2.3: a remaining length promising more than the packet holds. */
static void test_connect_rejects_remaining_length_short_of_packet(void **state)
{
	struct pkt body, frame;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_frame(&frame, 0x10, &body);
	frame.n--;
	expect_raw_refused(&frame, MQTT_CONNECT_MALFORMED, "[2.2.3]");
}

/* [MQTT-1.5.5-1] the remaining length must be minimally encoded. */
static void test_connect_rejects_non_minimal_remaining_length(void **state)
{
	struct pkt body, frame;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	frame.n = 0;
	p_u8(&frame, 0x10);
	p_u8(&frame, 0x80 | (unsigned)body.n);
	p_u8(&frame, 0x00);
	p_raw(&frame, body.b, body.n);
	expect_raw_refused(&frame, MQTT_CONNECT_MALFORMED, "[2.2.3]");
}

static void test_connect_rejects_empty_input(void **state)
{
	struct mqtt_connect c;
	const char *why = NULL;

	(void)state;
	assert_int_equal(mqtt_connect_parse(NULL, 0, &c, &why), MQTT_CONNECT_MALFORMED);
	assert_non_null(why);
}

/* 3.1.2.1: a packet that ends inside the protocol name. */
static void test_connect_rejects_truncated_protocol_name(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_u16(&body, 4);
	p_raw(&body, "MQ", 2);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[3.1.2.1]");
}

/* 3.1.1 [MQTT-3.1.2-1]: an unknown protocol name is refused. */
static void test_connect_rejects_unknown_protocol_name(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "HTTP", 4, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-1]");
	/* the level is still reported, for the CONNACK's format */
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_BAD_PROTOCOL);
	assert_int_equal(c.version, 4);
}

/* 3.1.1 [MQTT-3.1.2-2]: an unsupported level gets code 1. */
static void test_connect_rejects_unsupported_protocol_level(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "MQTT", 6, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-2]");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_BAD_PROTOCOL);
	assert_int_equal(c.version, 6);
	/* a bridge's "private" level with the high bit set */
	body.n = 0;
	p_connect_header(&body, "MQTT", 0x84, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-2]");
}

/* [MQTT-3.1.2-2]: "MQTT" is levels 4 and 5 only, "MQIsdp" level 3 only. */
static void test_connect_rejects_protocol_name_that_mismatches_level(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "MQTT", 3, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-2]");
	body.n = 0;
	p_connect_header(&body, "MQIsdp", 4, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-2]");
	body.n = 0;
	p_connect_header(&body, "MQIsdp", 5, 0x02, 60);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_BAD_PROTOCOL, "[MQTT-3.1.2-2]");
}

/* 3.1.2.3: the packet ends before the connect flags. */
static void test_connect_rejects_truncated_connect_flags(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_str(&body, "MQTT");
	p_u8(&body, 4);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[3.1.2.3]");
}

/* 3.1.2.10: the packet ends inside the keep alive. */
static void test_connect_rejects_truncated_keep_alive(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_str(&body, "MQTT");
	p_u8(&body, 4);
	p_u8(&body, 0x02);
	p_u8(&body, 0x00);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[3.1.2.10]");
}

/* [MQTT-3.1.2-3] the reserved connect flag must be 0. */
static void test_connect_v311_rejects_reserved_connect_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x03);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-3]");
}

/* [MQTT-3.1.2-13] without a will, will QoS must be 0. */
static void test_connect_v311_rejects_will_qos_without_will_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x08 | 0x02);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-13]");
}

/* [MQTT-3.1.2-15] without a will, will retain must be 0. */
static void test_connect_v311_rejects_will_retain_without_will_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x20 | 0x02);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-15]");
}

/* [MQTT-3.1.2-14] will QoS 3 does not exist. */
static void test_connect_v311_rejects_will_qos_3(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x18 | 0x04 | 0x02);
	p_str(&body, "c");
	p_str(&body, "t");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-14]");
}

/* [MQTT-3.1.2-22] a password needs a user name in 3.1.1. */
static void test_connect_v311_rejects_password_without_username(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x40 | 0x02);
	p_str(&body, "c");
	p_str(&body, "pw");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-22]");
}

/* [MQTT-3.1.3-3] the packet ends before the client id. */
static void test_connect_v311_rejects_missing_client_id(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x02);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-3]");
	p_u16(&body, 5);
	p_raw(&body, "ab", 2);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-3]");
}

/* [MQTT-3.1.3-4] the client id is a UTF-8 string. */
static void test_connect_v311_rejects_invalid_utf8_client_id(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x02);
	p_bin(&body, "a\xc0\xafz", 4);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-4]");
}

/* 3.1.1 [MQTT-1.5.3-2] (5.0 [MQTT-1.5.4-2]) no U+0000 in a string. */
static void test_connect_v311_rejects_null_character_in_client_id(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x02);
	p_bin(&body, "a\0b", 3);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-4]");
}

/* [MQTT-3.1.3-8] an empty id without clean session gets code 2. */
static void test_connect_v311_rejects_empty_client_id_without_clean_session(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x00);
	p_str(&body, "");
	expect_refused(&body, MQTT_CONNECT_BAD_CLIENT_ID, "[MQTT-3.1.3-8]");
}

/* [MQTT-3.1.2-9] with the will flag, topic and payload are present. */
static void test_connect_v311_rejects_missing_will_payload(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x06);
	p_str(&body, "c");
	p_str(&body, "t");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-9]");
}

/* [MQTT-3.1.3-10] the will topic is a UTF-8 string. */
static void test_connect_v311_rejects_invalid_utf8_will_topic(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x06);
	p_str(&body, "c");
	p_bin(&body, "t\xed\xa0\x80", 4);     /* a surrogate */
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-10]");
}

/* [MQTT-4.7.1-1] a topic name carries no wildcards. */
static void test_connect_v311_rejects_wildcard_will_topic(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x06);
	p_str(&body, "c");
	p_str(&body, "a/#");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_PROTOCOL_ERROR, "[MQTT-4.7.1-1]");
	v311(&body, 0x06);
	p_str(&body, "c");
	p_str(&body, "a/+/b");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_PROTOCOL_ERROR, "[MQTT-4.7.1-1]");
}

/* [MQTT-4.7.3-1] a topic name is at least one character long. */
static void test_connect_v311_rejects_empty_will_topic(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x06);
	p_str(&body, "c");
	p_str(&body, "");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_PROTOCOL_ERROR, "will topic empty");
}

/* [MQTT-3.1.2-11] without the will flag no will fields may follow. */
static void test_connect_v311_rejects_will_fields_without_will_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_str(&body, "t");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-1]");
}

/* [MQTT-3.1.2-18] without the user name flag no user name may follow. */
static void test_connect_v311_rejects_username_without_username_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x02);
	p_str(&body, "c");
	p_str(&body, "alice");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-1]");
}

/* [MQTT-3.1.2-20] without the password flag no password may follow. */
static void test_connect_v311_rejects_password_without_password_flag(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x82);
	p_str(&body, "c");
	p_str(&body, "alice");
	p_str(&body, "pw");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-1]");
}

/* [MQTT-3.1.2-19] with the user name flag the user name is present. */
static void test_connect_v311_rejects_missing_username(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x82);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-19]");
}

/* [MQTT-3.1.3-11] the user name is a UTF-8 string. */
static void test_connect_v311_rejects_invalid_utf8_username(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0x82);
	p_str(&body, "c");
	p_bin(&body, "\xf8\x88\x80\x80\x80", 5);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-11]");
}

/* [MQTT-3.1.2-21] with the password flag the password is present. */
static void test_connect_v311_rejects_missing_password(void **state)
{
	struct pkt body;

	(void)state;
	v311(&body, 0xc2);
	p_str(&body, "c");
	p_str(&body, "alice");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-21]");
	p_u16(&body, 10);
	p_raw(&body, "abc", 3);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-21]");
}

/* The result is zeroed first, so a refused parse leaves no stale fields. */
static void test_connect_parse_zeroes_the_result(void **state)
{
	struct pkt body;
	struct mqtt_connect c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	v311(&body, 0x01);
	p_str(&body, "c");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_MALFORMED);
	assert_false(c.has_username);
	assert_false(c.has_password);
	assert_int_equal(c.client_id.len, 0);
	assert_null(c.client_id.ptr);
}

static void test_peek_version_reads_level_from_a_partial_connect(void **state)
{
	struct pkt body, frame;
	uint8_t v = 0;
	size_t level_end;

	(void)state;
	v31(&body, 0x02);
	p_str(&body, "c");
	p_frame(&frame, 0x10, &body);
	level_end = 2 + 2 + 6 + 1;
	assert_false(mqtt_connect_peek_version(frame.b, level_end - 1, &v));
	assert_true(mqtt_connect_peek_version(frame.b, level_end, &v));
	assert_int_equal(v, 3);
	assert_true(mqtt_connect_peek_version(frame.b, frame.n, &v));
	assert_int_equal(v, 3);
}

static void test_peek_version_handles_long_remaining_length(void **state)
{
	static const uint8_t b[] = { 0x10, 0xff, 0xff, 0x7f, 0x00, 0x04,
	                             'M', 'Q', 'T', 'T', 0x05 };
	uint8_t v = 0;

	(void)state;
	assert_true(mqtt_connect_peek_version(b, sizeof(b), &v));
	assert_int_equal(v, 5);
	assert_false(mqtt_connect_peek_version(b, 3, &v));
	assert_false(mqtt_connect_peek_version(NULL, 0, &v));
}

static void test_peek_version_ignores_other_packet_types(void **state)
{
	static const uint8_t b[] = { 0x30, 0x07, 0x00, 0x04,
	                             'M', 'Q', 'T', 'T', 0x04 };
	uint8_t v = 0;

	(void)state;
	assert_false(mqtt_connect_peek_version(b, sizeof(b), &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_v311_minimal_parses),
		cmocka_unit_test(test_connect_v311_with_will_username_and_password_parses),
		cmocka_unit_test(test_connect_v311_will_qos_2_without_retain_parses),
		cmocka_unit_test(test_connect_v311_empty_client_id_with_clean_session_parses),
		cmocka_unit_test(test_connect_v311_empty_username_and_password_are_present),
		cmocka_unit_test(test_connect_v311_accepts_long_client_id),
		cmocka_unit_test(test_connect_v31_with_credentials_parses),
		cmocka_unit_test(test_connect_v31_accepts_23_byte_client_id),
		cmocka_unit_test(test_connect_v31_rejects_24_byte_client_id),
		cmocka_unit_test(test_connect_v31_rejects_empty_client_id),
		cmocka_unit_test(test_connect_v31_rejects_password_without_username),
		cmocka_unit_test(test_connect_rejects_fixed_header_flags),
		cmocka_unit_test(test_connect_rejects_other_packet_types),
		cmocka_unit_test(test_connect_rejects_bytes_beyond_remaining_length),
		cmocka_unit_test(test_connect_rejects_remaining_length_short_of_packet),
		cmocka_unit_test(test_connect_rejects_non_minimal_remaining_length),
		cmocka_unit_test(test_connect_rejects_empty_input),
		cmocka_unit_test(test_connect_rejects_truncated_protocol_name),
		cmocka_unit_test(test_connect_rejects_unknown_protocol_name),
		cmocka_unit_test(test_connect_rejects_unsupported_protocol_level),
		cmocka_unit_test(test_connect_rejects_protocol_name_that_mismatches_level),
		cmocka_unit_test(test_connect_rejects_truncated_connect_flags),
		cmocka_unit_test(test_connect_rejects_truncated_keep_alive),
		cmocka_unit_test(test_connect_v311_rejects_reserved_connect_flag),
		cmocka_unit_test(test_connect_v311_rejects_will_qos_without_will_flag),
		cmocka_unit_test(test_connect_v311_rejects_will_retain_without_will_flag),
		cmocka_unit_test(test_connect_v311_rejects_will_qos_3),
		cmocka_unit_test(test_connect_v311_rejects_password_without_username),
		cmocka_unit_test(test_connect_v311_rejects_missing_client_id),
		cmocka_unit_test(test_connect_v311_rejects_invalid_utf8_client_id),
		cmocka_unit_test(test_connect_v311_rejects_null_character_in_client_id),
		cmocka_unit_test(test_connect_v311_rejects_empty_client_id_without_clean_session),
		cmocka_unit_test(test_connect_v311_rejects_missing_will_payload),
		cmocka_unit_test(test_connect_v311_rejects_invalid_utf8_will_topic),
		cmocka_unit_test(test_connect_v311_rejects_wildcard_will_topic),
		cmocka_unit_test(test_connect_v311_rejects_empty_will_topic),
		cmocka_unit_test(test_connect_v311_rejects_will_fields_without_will_flag),
		cmocka_unit_test(test_connect_v311_rejects_username_without_username_flag),
		cmocka_unit_test(test_connect_v311_rejects_password_without_password_flag),
		cmocka_unit_test(test_connect_v311_rejects_missing_username),
		cmocka_unit_test(test_connect_v311_rejects_invalid_utf8_username),
		cmocka_unit_test(test_connect_v311_rejects_missing_password),
		cmocka_unit_test(test_connect_parse_zeroes_the_result),
		cmocka_unit_test(test_peek_version_reads_level_from_a_partial_connect),
		cmocka_unit_test(test_peek_version_handles_long_remaining_length),
		cmocka_unit_test(test_peek_version_ignores_other_packet_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
