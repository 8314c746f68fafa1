/*
 * Unit tests for mqtt/connect.c with MQTT 5.0 packets: CONNECT properties
 * (3.1.2.11), will properties (3.1.3.2) and the 5.0 numbering of the
 * connect flag rules. Each refusal test names the statement it covers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/connect.h"
#include "mqtt/properties.h"
#include "tests/unit/mqtt_bytes.h"

/* Starts a 5.0 CONNECT body (keep alive 30) with the property block |props|. */
static void v5(struct pkt *body, unsigned flags, const struct pkt *props)
{
	body->n = 0;
	p_connect_header(body, "MQTT", 5, flags, 30);
	p_props(body, props);
}

static enum mqtt_connect_error parse_body(const struct pkt *body,
                                          struct mqtt_connect *c,
                                          const char **why)
{
	struct pkt frame;

	p_frame(&frame, 0x10, body);
	return mqtt_connect_parse(frame.b, frame.n, c, why);
}

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

/* A CONNECT whose only unusual part is the CONNECT property block. */
static void expect_props_refused(const struct pkt *props,
                                 enum mqtt_connect_error want, const char *rule)
{
	struct pkt body;

	v5(&body, 0x02, props);
	p_str(&body, "c");
	expect_refused(&body, want, rule);
}

/* A CONNECT with a will whose only unusual part is the will properties. */
static void expect_will_props_refused(const struct pkt *wprops,
                                      enum mqtt_connect_error want,
                                      const char *rule)
{
	struct pkt body, none = { .n = 0 };

	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, wprops);
	p_str(&body, "will/topic");
	p_str(&body, "bye");
	expect_refused(&body, want, rule);
}

static void assert_slice(struct slice s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_connect_v5_minimal_parses(void **state)
{
	struct pkt body, none = { .n = 0 };
	struct mqtt_connect c;
	const char *why = "unset";

	(void)state;
	v5(&body, 0x02, &none);
	p_str(&body, "v5-client");
	assert_int_equal(parse_body(&body, &c, &why), MQTT_CONNECT_OK);
	assert_null(why);
	assert_int_equal(c.version, MQTT_V5);
	assert_int_equal(c.keepalive, 30);
	assert_int_equal(c.properties.len, 0);
	assert_slice(c.client_id, "v5-client");
	assert_false(c.has_session_expiry);
	assert_false(c.has_receive_maximum);
	assert_false(c.has_auth_method);
}

/* 3.1.2.11.2 - 3.1.2.11.10: every CONNECT property, decoded. */
static void test_connect_v5_decodes_every_connect_property(void **state)
{
	struct pkt body, props = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	p_u8(&props, 0x11); p_u32(&props, 3600);            /* session expiry */
	p_u8(&props, 0x21); p_u16(&props, 20);              /* receive maximum */
	p_u8(&props, 0x27); p_u32(&props, 1048576);         /* max packet size */
	p_u8(&props, 0x22); p_u16(&props, 10);              /* topic alias max */
	p_u8(&props, 0x19); p_u8(&props, 1);                /* request response */
	p_u8(&props, 0x17); p_u8(&props, 0);                /* request problem */
	p_u8(&props, 0x26); p_str(&props, "k"); p_str(&props, "v");
	p_u8(&props, 0x26); p_str(&props, "k"); p_str(&props, "w");
	p_u8(&props, 0x15); p_str(&props, "SCRAM-SHA-1");   /* auth method */
	p_u8(&props, 0x16); p_bin(&props, "\x00\x01\xff", 3);
	v5(&body, 0x02, &props);
	p_str(&body, "c");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_int_equal(c.properties.len, props.n);
	assert_memory_equal(c.properties.ptr, props.b, props.n);
	assert_true(c.has_session_expiry);
	assert_int_equal(c.session_expiry, 3600);
	assert_true(c.has_receive_maximum);
	assert_int_equal(c.receive_maximum, 20);
	assert_true(c.has_maximum_packet_size);
	assert_int_equal(c.maximum_packet_size, 1048576);
	assert_true(c.has_topic_alias_maximum);
	assert_int_equal(c.topic_alias_maximum, 10);
	assert_true(c.has_request_response_info);
	assert_int_equal(c.request_response_info, 1);
	assert_true(c.has_request_problem_info);
	assert_int_equal(c.request_problem_info, 0);
	assert_int_equal(c.user_property_count, 2);
	assert_true(c.has_auth_method);
	assert_slice(c.auth_method, "SCRAM-SHA-1");
	assert_true(c.has_auth_data);
	assert_int_equal(c.auth_data.len, 3);
}

/* 3.1.3.2: every will property, with the will and credentials. */
static void test_connect_v5_with_every_will_property_parses(void **state)
{
	struct pkt body, none = { .n = 0 }, w = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	p_u8(&w, 0x18); p_u32(&w, 5);                        /* will delay */
	p_u8(&w, 0x01); p_u8(&w, 1);                         /* UTF-8 payload */
	p_u8(&w, 0x02); p_u32(&w, 600);                      /* message expiry */
	p_u8(&w, 0x03); p_str(&w, "text/plain");             /* content type */
	p_u8(&w, 0x08); p_str(&w, "reply/here");             /* response topic */
	p_u8(&w, 0x09); p_bin(&w, "\x01\x02", 2);            /* correlation */
	p_u8(&w, 0x26); p_str(&w, "a"); p_str(&w, "b");
	p_u8(&w, 0x26); p_str(&w, "a"); p_str(&w, "c");
	v5(&body, 0xc0 | 0x20 | 0x10 | 0x04, &none);
	p_str(&body, "dev");
	p_props(&body, &w);
	p_str(&body, "dev/status");
	p_str(&body, "offline \xe2\x9c\x9d");
	p_str(&body, "carol");
	p_bin(&body, "\x00\x00", 2);
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_true(c.has_will);
	assert_int_equal(c.will_qos, 2);
	assert_true(c.will_retain);
	assert_false(c.clean_start);
	assert_int_equal(c.will_properties.len, w.n);
	assert_memory_equal(c.will_properties.ptr, w.b, w.n);
	assert_slice(c.will_topic, "dev/status");
	assert_slice(c.username, "carol");
	assert_int_equal(c.password.len, 2);
	/* will user properties are not CONNECT user properties */
	assert_int_equal(c.user_property_count, 0);
}

/* 5.0 3.1.2.9 dropped [MQTT-3.1.2-22]: a password alone is allowed. */
static void test_connect_v5_accepts_password_without_username(void **state)
{
	struct pkt body, none = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	v5(&body, 0x42, &none);
	p_str(&body, "c");
	p_str(&body, "token");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_false(c.has_username);
	assert_true(c.has_password);
	assert_slice(c.password, "token");
}

/* [MQTT-3.1.3-6] 5.0 assigns an id whatever Clean Start says. */
static void test_connect_v5_accepts_empty_client_id_without_clean_start(void **state)
{
	struct pkt body, none = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	v5(&body, 0x00, &none);
	p_str(&body, "");
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
	assert_false(c.clean_start);
}

/* 3.1.3.2.3: a binary will payload is fine with format indicator 0. */
static void test_connect_v5_binary_will_payload_with_format_0_parses(void **state)
{
	struct pkt body, none = { .n = 0 }, w = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	p_u8(&w, 0x01); p_u8(&w, 0);
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, &w);
	p_str(&body, "t");
	p_bin(&body, "\xff\xfe", 2);
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
}

/* 3.1.3.2.3: UTF-8 character data may contain U+0000 (it is not a string). */
static void test_connect_v5_utf8_will_payload_may_contain_null(void **state)
{
	struct pkt body, none = { .n = 0 }, w = { .n = 0 };
	struct mqtt_connect c;

	(void)state;
	p_u8(&w, 0x01); p_u8(&w, 1);
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, &w);
	p_str(&body, "t");
	p_bin(&body, "a\0b", 3);
	assert_int_equal(parse_body(&body, &c, NULL), MQTT_CONNECT_OK);
}

/* 3.1.2.11.1: the CONNECT properties are required in 5.0. */
static void test_connect_v5_rejects_missing_property_length(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "MQTT", 5, 0x02, 30);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[5.0 3.1.2.11.1]");
}

/* 3.1.2.11.1: a property length beyond the packet. */
static void test_connect_v5_rejects_property_length_beyond_packet(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "MQTT", 5, 0x02, 30);
	p_varint(&body, 200);
	p_u8(&body, 0x11); p_u32(&body, 1);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[5.0 3.1.2.11.1]");
}

/* [MQTT-1.5.5-1] the property length is a minimal varint. */
static void test_connect_v5_rejects_non_minimal_property_length(void **state)
{
	struct pkt body;

	(void)state;
	body.n = 0;
	p_connect_header(&body, "MQTT", 5, 0x02, 30);
	p_u8(&body, 0x80); p_u8(&body, 0x00);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[5.0 3.1.2.11.1]");
}

/* 3.1.2.11.2: "It is a Protocol Error to include the Session Expiry
 * Interval more than once." */
static void test_connect_v5_rejects_duplicate_session_expiry(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x11); p_u32(&props, 1);
	p_u8(&props, 0x11); p_u32(&props, 1);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "more than once");
}

/* 3.1.2.11.9: Authentication Method only once. */
static void test_connect_v5_rejects_duplicate_auth_method(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x15); p_str(&props, "a");
	p_u8(&props, 0x15); p_str(&props, "b");
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "more than once");
}

/* 3.1.2.11.3: a Receive Maximum of 0 is a Protocol Error. */
static void test_connect_v5_rejects_receive_maximum_of_zero(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x21); p_u16(&props, 0);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.2.11.3]");
}

/* 3.1.2.11.4: a Maximum Packet Size of 0 is a Protocol Error. */
static void test_connect_v5_rejects_maximum_packet_size_of_zero(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x27); p_u32(&props, 0);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.2.11.4]");
}

/* 3.1.2.11.6: Request Response Information is 0 or 1. */
static void test_connect_v5_rejects_request_response_information_of_two(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x19); p_u8(&props, 2);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.2.11.6]");
}

/* 3.1.2.11.7: Request Problem Information is 0 or 1. */
static void test_connect_v5_rejects_request_problem_information_of_two(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x17); p_u8(&props, 2);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.2.11.7]");
}

/* 3.1.2.11.10: Authentication Data without Authentication Method. */
static void test_connect_v5_rejects_auth_data_without_auth_method(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x16); p_bin(&props, "x", 1);
	expect_props_refused(&props, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.2.11.10]");
}

/* 2.2.2.2: a will-only property in the CONNECT properties is malformed. */
static void test_connect_v5_rejects_will_property_among_connect_properties(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x18); p_u32(&props, 5);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "not valid in this packet");
}

/* 2.2.2.2: a CONNACK-only property in CONNECT is malformed. */
static void test_connect_v5_rejects_connack_property_in_connect(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x24); p_u8(&props, 1);           /* Maximum QoS */
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "not valid in this packet");
}

/* 2.2.2.2: an unknown identifier is malformed. */
static void test_connect_v5_rejects_unknown_property_identifier(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x7f); p_u8(&props, 0);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "unknown property");
	props.n = 0;
	p_u8(&props, 0x00); p_u8(&props, 0);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "unknown property");
}

/* 2.2.2.2 / [MQTT-1.5.5-1]: the identifier is a minimal varint. */
static void test_connect_v5_rejects_non_minimal_property_identifier(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x91); p_u8(&props, 0x00); p_u32(&props, 1);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "malformed property identifier");
}

/* 2.2.2.2: a value cut short by the end of the property block. */
static void test_connect_v5_rejects_truncated_property_value(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x11); p_u16(&props, 1);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "truncated");
	props.n = 0;
	p_u8(&props, 0x26); p_str(&props, "name-only");
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "truncated");
}

/* [MQTT-1.5.4-1] string properties are UTF-8. */
static void test_connect_v5_rejects_invalid_utf8_in_string_property(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x15); p_bin(&props, "\xc3", 1);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "[MQTT-1.5.4-1]");
	props.n = 0;
	p_u8(&props, 0x26); p_str(&props, "k"); p_bin(&props, "\xed\xb0\x80", 3);
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "[MQTT-1.5.4-1]");
}

/* [MQTT-1.5.4-2] no U+0000 in a user property name. */
static void test_connect_v5_rejects_null_in_user_property(void **state)
{
	struct pkt props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x26); p_bin(&props, "a\0", 2); p_str(&props, "v");
	expect_props_refused(&props, MQTT_CONNECT_MALFORMED, "[MQTT-1.5.4-1]");
}

/* 2.2.2.2: a CONNECT-only property among the will properties. */
static void test_connect_v5_rejects_connect_property_among_will_properties(void **state)
{
	struct pkt w = { .n = 0 };

	(void)state;
	p_u8(&w, 0x11); p_u32(&w, 5);
	expect_will_props_refused(&w, MQTT_CONNECT_MALFORMED, "not valid in this packet");
}

/* 3.1.3.2.2: Will Delay Interval only once. */
static void test_connect_v5_rejects_duplicate_will_delay(void **state)
{
	struct pkt w = { .n = 0 };

	(void)state;
	p_u8(&w, 0x18); p_u32(&w, 5);
	p_u8(&w, 0x18); p_u32(&w, 6);
	expect_will_props_refused(&w, MQTT_CONNECT_PROTOCOL_ERROR, "more than once");
}

/* 3.1.3.2.3: the Payload Format Indicator is 0 or 1. */
static void test_connect_v5_rejects_payload_format_indicator_of_two(void **state)
{
	struct pkt w = { .n = 0 };

	(void)state;
	p_u8(&w, 0x01); p_u8(&w, 2);
	expect_will_props_refused(&w, MQTT_CONNECT_PROTOCOL_ERROR, "[5.0 3.1.3.2.3]");
}

/* 3.1.3.2.3: format indicator 1 with a payload that is not UTF-8 (the
 * spec's 0x99 Payload format invalid, reported as malformed). */
static void test_connect_v5_rejects_non_utf8_will_payload_marked_utf8(void **state)
{
	struct pkt body, none = { .n = 0 }, w = { .n = 0 };

	(void)state;
	p_u8(&w, 0x01); p_u8(&w, 1);
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, &w);
	p_str(&body, "t");
	p_bin(&body, "\xff\xfe", 2);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[5.0 3.1.3.2.3]");
}

/* [MQTT-3.3.2-14] the Response Topic carries no wildcards. */
static void test_connect_v5_rejects_wildcard_response_topic(void **state)
{
	struct pkt w = { .n = 0 };

	(void)state;
	p_u8(&w, 0x08); p_str(&w, "replies/#");
	expect_will_props_refused(&w, MQTT_CONNECT_PROTOCOL_ERROR, "[MQTT-3.3.2-14]");
}

/* 3.1.3.2.1: the will property length beyond the packet. */
static void test_connect_v5_rejects_truncated_will_properties(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_varint(&body, 100);
	p_str(&body, "t");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[5.0 3.1.3.2.1]");
}

/* [MQTT-3.1.2-3] (5.0 numbering is the same) the reserved flag is 0. */
static void test_connect_v5_rejects_reserved_connect_flag(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x01, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-3]");
}

/* 5.0 [MQTT-3.1.2-11] without a will, will QoS is 0. */
static void test_connect_v5_rejects_will_qos_without_will_flag(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x10, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-11]");
}

/* 5.0 [MQTT-3.1.2-12] will QoS 3 is malformed. */
static void test_connect_v5_rejects_will_qos_3(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x1c, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-12]");
}

/* 5.0 [MQTT-3.1.2-13] without a will, will retain is 0. */
static void test_connect_v5_rejects_will_retain_without_will_flag(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x20, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-13]");
}

/* 5.0 [MQTT-3.1.3-11] the will topic is UTF-8. */
static void test_connect_v5_rejects_invalid_utf8_will_topic(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, &none);
	p_bin(&body, "\xe0\x80\xaf", 3);
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-11]");
}

/* 5.0 [MQTT-4.7.0-1] no wildcards in a topic name. */
static void test_connect_v5_rejects_wildcard_will_topic(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x06, &none);
	p_str(&body, "c");
	p_props(&body, &none);
	p_str(&body, "+");
	p_str(&body, "m");
	expect_refused(&body, MQTT_CONNECT_PROTOCOL_ERROR, "[MQTT-4.7.0-1]");
}

/* 5.0 [MQTT-3.1.2-17] the flagged user name is present. */
static void test_connect_v5_rejects_missing_username(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x80, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-17]");
}

/* 5.0 [MQTT-3.1.3-12] the user name is UTF-8. */
static void test_connect_v5_rejects_invalid_utf8_username(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x80, &none);
	p_str(&body, "c");
	p_bin(&body, "\x80", 1);
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-12]");
}

/* 5.0 [MQTT-3.1.2-19] the flagged password is present. */
static void test_connect_v5_rejects_missing_password(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x40, &none);
	p_str(&body, "c");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.2-19]");
}

/* 5.0 [MQTT-3.1.2-16] [MQTT-3.1.2-18] nothing follows unflagged fields. */
static void test_connect_v5_rejects_trailing_fields(void **state)
{
	struct pkt body, none = { .n = 0 };

	(void)state;
	v5(&body, 0x02, &none);
	p_str(&body, "c");
	p_str(&body, "stray");
	expect_refused(&body, MQTT_CONNECT_MALFORMED, "[MQTT-3.1.3-1]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_v5_minimal_parses),
		cmocka_unit_test(test_connect_v5_decodes_every_connect_property),
		cmocka_unit_test(test_connect_v5_with_every_will_property_parses),
		cmocka_unit_test(test_connect_v5_accepts_password_without_username),
		cmocka_unit_test(test_connect_v5_accepts_empty_client_id_without_clean_start),
		cmocka_unit_test(test_connect_v5_binary_will_payload_with_format_0_parses),
		cmocka_unit_test(test_connect_v5_utf8_will_payload_may_contain_null),
		cmocka_unit_test(test_connect_v5_rejects_missing_property_length),
		cmocka_unit_test(test_connect_v5_rejects_property_length_beyond_packet),
		cmocka_unit_test(test_connect_v5_rejects_non_minimal_property_length),
		cmocka_unit_test(test_connect_v5_rejects_duplicate_session_expiry),
		cmocka_unit_test(test_connect_v5_rejects_duplicate_auth_method),
		cmocka_unit_test(test_connect_v5_rejects_receive_maximum_of_zero),
		cmocka_unit_test(test_connect_v5_rejects_maximum_packet_size_of_zero),
		cmocka_unit_test(test_connect_v5_rejects_request_response_information_of_two),
		cmocka_unit_test(test_connect_v5_rejects_request_problem_information_of_two),
		cmocka_unit_test(test_connect_v5_rejects_auth_data_without_auth_method),
		cmocka_unit_test(test_connect_v5_rejects_will_property_among_connect_properties),
		cmocka_unit_test(test_connect_v5_rejects_connack_property_in_connect),
		cmocka_unit_test(test_connect_v5_rejects_unknown_property_identifier),
		cmocka_unit_test(test_connect_v5_rejects_non_minimal_property_identifier),
		cmocka_unit_test(test_connect_v5_rejects_truncated_property_value),
		cmocka_unit_test(test_connect_v5_rejects_invalid_utf8_in_string_property),
		cmocka_unit_test(test_connect_v5_rejects_null_in_user_property),
		cmocka_unit_test(test_connect_v5_rejects_connect_property_among_will_properties),
		cmocka_unit_test(test_connect_v5_rejects_duplicate_will_delay),
		cmocka_unit_test(test_connect_v5_rejects_payload_format_indicator_of_two),
		cmocka_unit_test(test_connect_v5_rejects_non_utf8_will_payload_marked_utf8),
		cmocka_unit_test(test_connect_v5_rejects_wildcard_response_topic),
		cmocka_unit_test(test_connect_v5_rejects_truncated_will_properties),
		cmocka_unit_test(test_connect_v5_rejects_reserved_connect_flag),
		cmocka_unit_test(test_connect_v5_rejects_will_qos_without_will_flag),
		cmocka_unit_test(test_connect_v5_rejects_will_qos_3),
		cmocka_unit_test(test_connect_v5_rejects_will_retain_without_will_flag),
		cmocka_unit_test(test_connect_v5_rejects_invalid_utf8_will_topic),
		cmocka_unit_test(test_connect_v5_rejects_wildcard_will_topic),
		cmocka_unit_test(test_connect_v5_rejects_missing_username),
		cmocka_unit_test(test_connect_v5_rejects_invalid_utf8_username),
		cmocka_unit_test(test_connect_v5_rejects_missing_password),
		cmocka_unit_test(test_connect_v5_rejects_trailing_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
