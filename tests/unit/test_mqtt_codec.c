/*
 * Unit tests for bench/mqtt_codec.c: encoders against byte arrays written
 * by hand from the MQTT 3.1.1 and 5.0 specifications, the decoder on
 * hand-written packets, on every split point, and on malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bench/mqtt_codec.h"

#define S(str) ((struct slice){ (const uint8_t *)(str), sizeof(str) - 1 })
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t buf[4096];

static struct outbuf fresh(void)
{
	struct outbuf o;

	outbuf_init(&o, buf, sizeof(buf));
	return o;
}

static void assert_encoded(const struct outbuf *o, const uint8_t *want, size_t len)
{
	assert_false(o->failed);
	assert_int_equal(o->len, len);
	assert_memory_equal(o->ptr, want, len);
}

static enum mqttc_decode_result decode(uint8_t version, const uint8_t *p, size_t len,
                                       struct mqttc_packet *out)
{
	return mqttc_decode(version, p, len, 65536, out, NULL);
}

static void assert_malformed(uint8_t version, const uint8_t *p, size_t len)
{
	struct mqttc_packet pkt;
	const char *why = NULL;

	assert_int_equal(mqttc_decode(version, p, len, 65536, &pkt, &why), MQTTC_DECODE_MALFORMED);
	assert_non_null(why);
}

/* ---- encoding (3.1, 3.3, 3.4-3.7, 3.8, 3.12, 3.14) ---- */

static void test_connect_v311_with_credentials_matches_spec_bytes(void **state)
{
	static const uint8_t want[] = {
		0x10, 26, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 60,
		0, 7, 'b', 'e', 'n', 'c', 'h', '-', '1', 0, 1, 'u', 0, 2, 'p', 'w',
	};
	struct mqttc_connect c = {
		.version = MQTTC_V311, .clean_start = 1, .keepalive = 60,
		.client_id = S("bench-1"), .has_username = 1, .username = S("u"),
		.has_password = 1, .password = S("pw"),
	};
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_connect(&o, &c));
	assert_encoded(&o, want, sizeof(want));
}

static void test_connect_v5_carries_empty_properties(void **state)
{
	static const uint8_t want[] = {
		0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 1, 'c',
	};
	struct mqttc_connect c = {
		.version = MQTTC_V5, .clean_start = 1, .keepalive = 30, .client_id = S("c"),
	};
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_connect(&o, &c));
	assert_encoded(&o, want, sizeof(want));
}

static void test_connect_v5_sends_empty_password_without_username(void **state)
{
	/* 5.0 allows a password alone; an empty one is present, not absent. */
	static const uint8_t want[] = {
		0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x40, 0, 0, 0, 0, 0, 0, 0,
	};
	struct mqttc_connect c = {
		.version = MQTTC_V5, .client_id = S(""), .has_password = 1, .password = S(""),
	};
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_connect(&o, &c));
	assert_encoded(&o, want, sizeof(want));
}

static void test_connect_v311_refuses_password_without_username_mqtt_3_1_2_22(void **state)
{
	struct mqttc_connect c = {
		.version = MQTTC_V311, .client_id = S("x"), .has_password = 1, .password = S("p"),
	};
	struct outbuf o = fresh();

	(void)state;
	assert_false(mqttc_encode_connect(&o, &c));
	assert_true(o.failed);
	assert_int_equal(o.len, 0);
}

static void test_connect_refuses_unknown_version(void **state)
{
	struct mqttc_connect c = { .version = 3, .client_id = S("x") };
	struct outbuf o = fresh();

	(void)state;
	assert_false(mqttc_encode_connect(&o, &c));
}

static void test_publish_qos0_v311_matches_spec_bytes(void **state)
{
	static const uint8_t want[] = { 0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i' };
	struct mqttc_publish p = { .topic = S("a/b"), .payload = S("hi") };
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_publish(&o, MQTTC_V311, &p));
	assert_encoded(&o, want, sizeof(want));
}

static void test_publish_qos1_v5_with_dup_and_retain_matches_spec_bytes(void **state)
{
	static const uint8_t want[] = { 0x3b, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, 0, 'x' };
	struct mqttc_publish p = {
		.topic = S("a/b"), .payload = S("x"), .qos = 1, .dup = 1, .retain = 1,
		.packet_id = 0x1234,
	};
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_publish(&o, MQTTC_V5, &p));
	assert_encoded(&o, want, sizeof(want));
}

static void test_publish_qos2_v311_carries_packet_id(void **state)
{
	static const uint8_t want[] = { 0x34, 5, 0, 1, 't', 0, 9 };
	struct mqttc_publish p = { .topic = S("t"), .qos = 2, .packet_id = 9 };
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_publish(&o, MQTTC_V311, &p));
	assert_encoded(&o, want, sizeof(want));
}

static void test_publish_of_200_bytes_uses_two_byte_remaining_length(void **state)
{
	static uint8_t payload[200];
	struct mqttc_publish p = { .topic = S("t"), .payload = { payload, sizeof(payload) } };
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_publish(&o, MQTTC_V311, &p));
	/* 203 = 0xcb: low seven bits 0x4b with the continuation bit, then 1. */
	assert_int_equal(o.len, 3 + 203);
	assert_int_equal(buf[1], 0xcb);
	assert_int_equal(buf[2], 0x01);
}

static void test_publish_refuses_invalid_arguments(void **state)
{
	struct mqttc_publish qos3 = { .topic = S("t"), .qos = 3, .packet_id = 1 };
	struct mqttc_publish dup0 = { .topic = S("t"), .dup = 1 };       /* [MQTT-3.3.1-2] */
	struct mqttc_publish noid = { .topic = S("t"), .qos = 1 };       /* [MQTT-2.3.1-1] */
	struct mqttc_publish wild = { .topic = S("a/+") };               /* [MQTT-3.3.2-2] */
	struct mqttc_publish hash = { .topic = S("#") };
	struct mqttc_publish empty = { .topic = S("") };                 /* [MQTT-4.7.3-1] */
	const struct mqttc_publish *bad[] = { &qos3, &dup0, &noid, &wild, &hash, &empty };
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		struct outbuf o = fresh();

		assert_false(mqttc_encode_publish(&o, MQTTC_V5, bad[i]));
		assert_int_equal(o.len, 0);
	}
}

static void test_subscribe_v311_matches_spec_bytes(void **state)
{
	static const uint8_t want[] = { 0x82, 8, 0, 10, 0, 3, 't', '/', '#', 1 };
	struct slice filter = S("t/#");
	uint8_t qos = 1;
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_subscribe(&o, MQTTC_V311, 10, &filter, &qos, 1));
	assert_encoded(&o, want, sizeof(want));
}

static void test_subscribe_v5_two_filters_with_options(void **state)
{
	static const uint8_t want[] = {
		0x82, 12, 0, 2, 0, 0, 1, 'a', 0x01, 0, 2, 'b', '+', 0x06,
	};
	struct slice filters[] = { S("a"), S("b+") };
	uint8_t options[] = { 0x01, 0x06 };     /* QoS 1; QoS 2 with No Local */
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_subscribe(&o, MQTTC_V5, 2, filters, options, 2));
	assert_encoded(&o, want, sizeof(want));
}

static void test_subscribe_refuses_no_filters_and_reserved_option_bits(void **state)
{
	struct slice filter = S("t");
	uint8_t qos3 = 3, reserved311 = 0x04, reserved5 = 0x40, retain_handling3 = 0x30;
	struct outbuf o = fresh();

	(void)state;
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V311, 1, &filter, &qos3, 0));
	o = fresh();
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V311, 1, &filter, &qos3, 1));
	o = fresh();
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V311, 1, &filter, &reserved311, 1));
	o = fresh();
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V5, 1, &filter, &reserved5, 1));
	o = fresh();
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V5, 1, &filter, &retain_handling3, 1));
	o = fresh();
	assert_false(mqttc_encode_subscribe(&o, MQTTC_V5, 0, &filter, &reserved311, 1));
	assert_int_equal(o.len, 0);
}

static void test_acks_match_spec_bytes(void **state)
{
	static const uint8_t want[] = {
		0x40, 2, 0, 1,                  /* PUBACK */
		0x50, 2, 0, 2,                  /* PUBREC */
		0x62, 2, 0, 3,                  /* PUBREL, flags 0010 [MQTT-3.6.1-1] */
		0x70, 2, 0, 4,                  /* PUBCOMP */
		0x50, 4, 0, 5, 0x10, 0,         /* 5.0 PUBREC "no matching subscribers" */
		0x70, 2, 0, 6,                  /* 5.0 success uses the short form */
	};
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBACK, 1, 0));
	assert_true(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBREC, 2, 0));
	assert_true(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBREL, 3, 0));
	assert_true(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBCOMP, 4, 0));
	assert_true(mqttc_encode_ack(&o, MQTTC_V5, MQTT_PUBREC, 5, 0x10));
	assert_true(mqttc_encode_ack(&o, MQTTC_V5, MQTT_PUBCOMP, 6, 0));
	assert_encoded(&o, want, sizeof(want));
}

static void test_ack_refuses_other_types_zero_id_and_v311_reason(void **state)
{
	struct outbuf o = fresh();

	(void)state;
	assert_false(mqttc_encode_ack(&o, MQTTC_V311, MQTT_SUBACK, 1, 0));
	o = fresh();
	assert_false(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBACK, 0, 0));
	o = fresh();
	assert_false(mqttc_encode_ack(&o, MQTTC_V311, MQTT_PUBACK, 1, 0x10));
}

static void test_pingreq_and_disconnect_match_spec_bytes(void **state)
{
	static const uint8_t want[] = { 0xc0, 0, 0xe0, 0, 0xe0, 0, 0xe0, 2, 0x04, 0 };
	struct outbuf o = fresh();

	(void)state;
	assert_true(mqttc_encode_pingreq(&o));
	assert_true(mqttc_encode_disconnect(&o, MQTTC_V311, 0));
	assert_true(mqttc_encode_disconnect(&o, MQTTC_V5, 0));
	assert_true(mqttc_encode_disconnect(&o, MQTTC_V5, 0x04));
	assert_encoded(&o, want, sizeof(want));
	assert_false(mqttc_encode_disconnect(&o, MQTTC_V311, 0x04));
}

static void test_encoder_that_does_not_fit_writes_nothing_and_stays_failed(void **state)
{
	uint8_t small[8];
	struct mqttc_publish p = { .topic = S("topic"), .payload = S("x") };
	struct outbuf o;

	(void)state;
	outbuf_init(&o, small, sizeof(small));
	assert_true(mqttc_encode_pingreq(&o));
	assert_false(mqttc_encode_publish(&o, MQTTC_V311, &p));  /* needs 10 */
	assert_int_equal(o.len, 2);
	assert_true(o.failed);
	assert_false(mqttc_encode_pingreq(&o));
	assert_int_equal(o.len, 2);
}

/* ---- decoding ---- */

static void test_connack_v311_accepted_refused_and_session_present(void **state)
{
	static const uint8_t ok[] = { 0x20, 2, 0, 0 };
	static const uint8_t present[] = { 0x20, 2, 1, 0 };
	static const uint8_t refused[] = { 0x20, 2, 0, 5 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, ok, sizeof(ok), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_CONNACK);
	assert_int_equal(p.len, 4);
	assert_int_equal(p.reason, 0);
	assert_false(p.session_present);
	assert_int_equal(decode(MQTTC_V311, present, sizeof(present), &p), MQTTC_DECODE_COMPLETE);
	assert_true(p.session_present);
	assert_int_equal(decode(MQTTC_V311, refused, sizeof(refused), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 5);
}

static void test_connack_v5_skips_properties_and_reports_reason(void **state)
{
	/* Receive Maximum 10, Server Keep Alive 60. */
	static const uint8_t props[] = { 0x20, 9, 0, 0, 6, 0x21, 0, 10, 0x13, 0, 60 };
	static const uint8_t refused[] = { 0x20, 3, 0, 0x86, 0 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V5, props, sizeof(props), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0);
	assert_int_equal(p.properties.len, 6);
	assert_int_equal(p.properties.ptr[0], 0x21);
	assert_int_equal(decode(MQTTC_V5, refused, sizeof(refused), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0x86);
}

static void test_connack_malformed_cases_are_rejected(void **state)
{
	static const uint8_t reserved_bits[] = { 0x20, 2, 0x02, 0 };      /* 3.2.2.1 */
	static const uint8_t refused_present[] = { 0x20, 2, 1, 5 };      /* [MQTT-3.2.2-4] */
	static const uint8_t trailing[] = { 0x20, 3, 0, 0, 0 };
	static const uint8_t short_body[] = { 0x20, 1, 0 };
	static const uint8_t bad_flags[] = { 0x21, 2, 0, 0 };            /* [MQTT-2.2.2-1] */
	static const uint8_t v5_props_overrun[] = { 0x20, 3, 0, 0, 5 };
	static const uint8_t v5_no_props[] = { 0x20, 2, 0, 0 };

	(void)state;
	assert_malformed(MQTTC_V311, reserved_bits, sizeof(reserved_bits));
	assert_malformed(MQTTC_V311, refused_present, sizeof(refused_present));
	assert_malformed(MQTTC_V311, trailing, sizeof(trailing));
	assert_malformed(MQTTC_V311, short_body, sizeof(short_body));
	assert_malformed(MQTTC_V311, bad_flags, sizeof(bad_flags));
	assert_malformed(MQTTC_V5, v5_props_overrun, sizeof(v5_props_overrun));
	assert_malformed(MQTTC_V5, v5_no_props, sizeof(v5_no_props));
}

static void test_suback_codes_are_returned_and_reserved_ones_rejected(void **state)
{
	static const uint8_t v311[] = { 0x90, 4, 0, 10, 1, 0x80 };
	static const uint8_t v5[] = { 0x90, 4, 0, 10, 0, 0x87 };
	static const uint8_t reserved[] = { 0x90, 3, 0, 10, 3 };          /* [MQTT-3.9.3-2] */
	static const uint8_t no_codes[] = { 0x90, 2, 0, 10 };
	static const uint8_t zero_id[] = { 0x90, 3, 0, 0, 1 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, v311, sizeof(v311), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_SUBACK);
	assert_int_equal(p.packet_id, 10);
	assert_int_equal(p.codes.len, 2);
	assert_int_equal(p.codes.ptr[1], 0x80);
	assert_int_equal(decode(MQTTC_V5, v5, sizeof(v5), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.codes.len, 1);
	assert_int_equal(p.codes.ptr[0], 0x87);
	assert_malformed(MQTTC_V311, reserved, sizeof(reserved));
	assert_malformed(MQTTC_V311, no_codes, sizeof(no_codes));
	assert_malformed(MQTTC_V311, zero_id, sizeof(zero_id));
}

static void test_unsuback_v311_is_exactly_a_packet_id(void **state)
{
	static const uint8_t ok[] = { 0xb0, 2, 0, 4 };
	static const uint8_t trailing[] = { 0xb0, 3, 0, 4, 0 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, ok, sizeof(ok), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.packet_id, 4);
	assert_malformed(MQTTC_V311, trailing, sizeof(trailing));
}

static void test_publish_v311_qos0_gives_topic_and_payload(void **state)
{
	static const uint8_t pkt[] = { 0x31, 7, 0, 3, 'a', '/', 'b', 'h', 'i' };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, pkt, sizeof(pkt), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_PUBLISH);
	assert_int_equal(p.qos, 0);
	assert_true(p.retain);
	assert_int_equal(p.topic.len, 3);
	assert_memory_equal(p.topic.ptr, "a/b", 3);
	assert_int_equal(p.payload.len, 2);
	assert_memory_equal(p.payload.ptr, "hi", 2);
}

static void test_publish_v5_qos1_skips_properties(void **state)
{
	/* Payload Format Indicator 1 as the one property. */
	static const uint8_t pkt[] = {
		0x3a, 12, 0, 3, 'a', '/', 'b', 0, 5, 2, 0x01, 1, 'o', 'k',
	};
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V5, pkt, sizeof(pkt), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.qos, 1);
	assert_true(p.dup);
	assert_int_equal(p.packet_id, 5);
	assert_int_equal(p.properties.len, 2);
	assert_int_equal(p.payload.len, 2);
	assert_memory_equal(p.payload.ptr, "ok", 2);
}

static void test_publish_v5_allows_empty_topic_for_topic_alias(void **state)
{
	static const uint8_t pkt[] = { 0x30, 6, 0, 0, 3, 0x23, 0, 1, };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V5, pkt, sizeof(pkt), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.topic.len, 0);
	assert_int_equal(p.payload.len, 0);
	assert_malformed(MQTTC_V311, pkt, sizeof(pkt));  /* [MQTT-4.7.3-1] */
}

static void test_publish_malformed_cases_are_rejected(void **state)
{
	static const uint8_t qos3[] = { 0x36, 5, 0, 1, 't', 0, 1 };               /* [MQTT-3.3.1-4] */
	static const uint8_t dup_qos0[] = { 0x38, 3, 0, 1, 't' };                /* [MQTT-3.3.1-2] */
	static const uint8_t wildcard[] = { 0x30, 3, 0, 1, '+' };                /* [MQTT-3.3.2-2] */
	static const uint8_t zero_id[] = { 0x32, 5, 0, 1, 't', 0, 0 };           /* [MQTT-2.3.1-1] */
	static const uint8_t no_id[] = { 0x32, 3, 0, 1, 't' };
	static const uint8_t topic_overrun[] = { 0x30, 3, 0, 9, 't' };
	static const uint8_t bad_utf8[] = { 0x30, 4, 0, 2, 0xc0, 0x80 };          /* [MQTT-1.5.3-1] */
	static const uint8_t nul_in_topic[] = { 0x30, 4, 0, 2, 'a', 0 };          /* [MQTT-1.5.3-2] */

	(void)state;
	assert_malformed(MQTTC_V311, qos3, sizeof(qos3));
	assert_malformed(MQTTC_V311, dup_qos0, sizeof(dup_qos0));
	assert_malformed(MQTTC_V311, wildcard, sizeof(wildcard));
	assert_malformed(MQTTC_V311, zero_id, sizeof(zero_id));
	assert_malformed(MQTTC_V311, no_id, sizeof(no_id));
	assert_malformed(MQTTC_V311, topic_overrun, sizeof(topic_overrun));
	assert_malformed(MQTTC_V311, bad_utf8, sizeof(bad_utf8));
	assert_malformed(MQTTC_V311, nul_in_topic, sizeof(nul_in_topic));
}

static void test_acks_decode_short_and_long_forms(void **state)
{
	static const uint8_t puback[] = { 0x40, 2, 0, 7 };
	static const uint8_t pubrel[] = { 0x62, 2, 0, 7 };
	static const uint8_t pubrec_reason[] = { 0x50, 3, 0, 7, 0x10 };
	static const uint8_t pubcomp_props[] = { 0x70, 4, 0, 7, 0x92, 0 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, puback, sizeof(puback), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_PUBACK);
	assert_int_equal(p.packet_id, 7);
	assert_int_equal(decode(MQTTC_V311, pubrel, sizeof(pubrel), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_PUBREL);
	assert_int_equal(decode(MQTTC_V5, pubrec_reason, sizeof(pubrec_reason), &p),
	                 MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0x10);
	assert_int_equal(decode(MQTTC_V5, pubcomp_props, sizeof(pubcomp_props), &p),
	                 MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0x92);
	assert_int_equal(p.properties.len, 0);
}

static void test_ack_malformed_cases_are_rejected(void **state)
{
	static const uint8_t pubrel_flags0[] = { 0x60, 2, 0, 7 };                 /* [MQTT-3.6.1-1] */
	static const uint8_t puback_flags[] = { 0x41, 2, 0, 7 };
	static const uint8_t v311_trailing[] = { 0x40, 3, 0, 7, 0 };
	static const uint8_t zero_id[] = { 0x40, 2, 0, 0 };
	static const uint8_t v5_props_overrun[] = { 0x40, 4, 0, 7, 0x10, 4 };

	(void)state;
	assert_malformed(MQTTC_V311, pubrel_flags0, sizeof(pubrel_flags0));
	assert_malformed(MQTTC_V311, puback_flags, sizeof(puback_flags));
	assert_malformed(MQTTC_V311, v311_trailing, sizeof(v311_trailing));
	assert_malformed(MQTTC_V5, zero_id, sizeof(zero_id));
	assert_malformed(MQTTC_V5, v5_props_overrun, sizeof(v5_props_overrun));
}

static void test_pingresp_has_no_body(void **state)
{
	static const uint8_t ok[] = { 0xd0, 0 };
	static const uint8_t body[] = { 0xd0, 1, 0 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, ok, sizeof(ok), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.type, MQTT_PINGRESP);
	assert_int_equal(p.len, 2);
	assert_malformed(MQTTC_V311, body, sizeof(body));
}

static void test_disconnect_from_server_is_v5_only(void **state)
{
	static const uint8_t empty[] = { 0xe0, 0 };
	static const uint8_t reason[] = { 0xe0, 1, 0x8b };
	static const uint8_t props[] = { 0xe0, 2, 0xa0, 0 };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V5, empty, sizeof(empty), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0);
	assert_int_equal(decode(MQTTC_V5, reason, sizeof(reason), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0x8b);
	assert_int_equal(decode(MQTTC_V5, props, sizeof(props), &p), MQTTC_DECODE_COMPLETE);
	assert_int_equal(p.reason, 0xa0);
	assert_malformed(MQTTC_V311, empty, sizeof(empty));
}

static void test_client_to_server_types_are_rejected(void **state)
{
	static const uint8_t pingreq[] = { 0xc0, 0 };
	static const uint8_t subscribe[] = { 0x82, 5, 0, 1, 0, 1, 't' };
	static const uint8_t reserved0[] = { 0x00, 0 };
	static const uint8_t auth[] = { 0xf0, 0 };

	(void)state;
	assert_malformed(MQTTC_V311, pingreq, sizeof(pingreq));
	assert_malformed(MQTTC_V311, subscribe, sizeof(subscribe));
	assert_malformed(MQTTC_V311, reserved0, sizeof(reserved0));
	assert_malformed(MQTTC_V5, auth, sizeof(auth));
}

/* ---- framing ---- */

static void test_incomplete_header_and_body_need_more(void **state)
{
	static const uint8_t partial_varint[] = { 0x30, 0x80 };
	static const uint8_t partial_body[] = { 0x30, 7, 0, 3, 'a' };
	struct mqttc_packet p;

	(void)state;
	assert_int_equal(decode(MQTTC_V311, NULL, 0, &p), MQTTC_DECODE_NEED_MORE);
	assert_int_equal(decode(MQTTC_V311, partial_varint, 1, &p), MQTTC_DECODE_NEED_MORE);
	assert_int_equal(decode(MQTTC_V311, partial_varint, 2, &p), MQTTC_DECODE_NEED_MORE);
	assert_int_equal(decode(MQTTC_V311, partial_body, sizeof(partial_body), &p),
	                 MQTTC_DECODE_NEED_MORE);
}

static void test_remaining_length_of_five_bytes_or_not_minimal_is_malformed(void **state)
{
	static const uint8_t five[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f };   /* 2.2.3 */
	static const uint8_t non_minimal[] = { 0xd0, 0x80, 0x00 };            /* [MQTT-1.5.5-1] */

	(void)state;
	assert_malformed(MQTTC_V311, five, sizeof(five));
	assert_malformed(MQTTC_V311, non_minimal, sizeof(non_minimal));
}

static void test_packet_over_the_limit_is_malformed_from_its_header_alone(void **state)
{
	static const uint8_t header[] = { 0x30, 0xff, 0x01 };   /* 255 bytes announced */
	struct mqttc_packet p;
	const char *why = NULL;

	(void)state;
	assert_int_equal(mqttc_decode(MQTTC_V311, header, sizeof(header), 100, &p, &why),
	                 MQTTC_DECODE_MALFORMED);
	assert_string_equal(why, "packet larger than the limit");
	assert_int_equal(mqttc_decode(MQTTC_V311, header, sizeof(header), 258, &p, &why),
	                 MQTTC_DECODE_NEED_MORE);
}

static void test_back_to_back_packets_decode_one_at_a_time(void **state)
{
	static const uint8_t stream[] = { 0x20, 2, 0, 0, 0xd0, 0, 0x40, 2, 0, 3 };
	static const uint8_t types[] = { MQTT_CONNACK, MQTT_PINGRESP, MQTT_PUBACK };
	struct mqttc_packet p;
	struct cursor c;
	struct slice used;
	size_t i;

	(void)state;
	cursor_init(&c, stream, sizeof(stream));
	for (i = 0; i < ARRAY_LEN(types); i++) {
		assert_int_equal(decode(MQTTC_V311, c.ptr, cursor_left(&c), &p), MQTTC_DECODE_COMPLETE);
		assert_int_equal(p.type, types[i]);
		assert_true(cursor_take(&c, p.len, &used));
	}
	assert_int_equal(cursor_left(&c), 0);
}

/* Every prefix shorter than the packet needs more; the whole decodes the
 * same as it does with any number of following bytes. */
static void test_split_at_every_byte_needs_more_until_complete(void **state)
{
	static uint8_t big[300];
	struct mqttc_publish pub = { .topic = S("x/y"), .payload = { big, sizeof(big) },
	                             .qos = 2, .packet_id = 77 };
	struct mqttc_connect con = { .version = MQTTC_V5, .client_id = S("id") };
	static const uint8_t received[] = {
		0x20, 9, 0, 0, 6, 0x21, 0, 10, 0x13, 0, 60,
		0x90, 4, 0, 10, 0, 0x01,
		0x3a, 12, 0, 3, 'a', '/', 'b', 0, 5, 2, 0x01, 1, 'o', 'k',
		0x50, 3, 0, 7, 0x10,
		0xe0, 1, 0x8b,
	};
	uint8_t stream[1024];
	struct outbuf o;
	struct mqttc_packet whole, part;
	struct cursor c;
	struct slice used;
	size_t k, count = 0;

	(void)state;
	memset(big, 'p', sizeof(big));
	outbuf_init(&o, stream, sizeof(stream));
	assert_true(outbuf_bytes(&o, received, sizeof(received)));
	/* A large PUBLISH exercises a two-byte remaining length, and the
	 * CONNECT is not a server packet: only framing is asked of it here. */
	assert_true(mqttc_encode_publish(&o, MQTTC_V5, &pub));
	assert_true(mqttc_encode_connect(&o, &con));
	cursor_init(&c, stream, o.len);
	while (cursor_left(&c) > 0) {
		enum mqttc_decode_result r = decode(MQTTC_V5, c.ptr, cursor_left(&c), &whole);

		if (whole.type == MQTT_CONNECT) {
			assert_int_equal(r, MQTTC_DECODE_MALFORMED);
			break;
		}
		assert_int_equal(r, MQTTC_DECODE_COMPLETE);
		for (k = 0; k < whole.len; k++)
			assert_int_equal(decode(MQTTC_V5, c.ptr, k, &part), MQTTC_DECODE_NEED_MORE);
		assert_int_equal(decode(MQTTC_V5, c.ptr, whole.len, &part), MQTTC_DECODE_COMPLETE);
		assert_int_equal(part.type, whole.type);
		assert_int_equal(part.packet_id, whole.packet_id);
		assert_int_equal(part.payload.len, whole.payload.len);
		assert_true(cursor_take(&c, whole.len, &used));
		count++;
	}
	assert_int_equal(count, 6);
}

static void test_encoded_publish_decodes_to_the_same_fields(void **state)
{
	struct mqttc_publish pub = { .topic = S("bench/1"), .payload = S("hello"),
	                             .qos = 1, .retain = 1, .packet_id = 513 };
	struct mqttc_packet p;
	struct outbuf o = fresh();
	uint8_t version;

	(void)state;
	for (version = MQTTC_V311; version <= MQTTC_V5; version++) {
		o = fresh();
		assert_true(mqttc_encode_publish(&o, version, &pub));
		assert_int_equal(decode(version, o.ptr, o.len, &p), MQTTC_DECODE_COMPLETE);
		assert_int_equal(p.len, o.len);
		assert_int_equal(p.qos, 1);
		assert_true(p.retain);
		assert_false(p.dup);
		assert_int_equal(p.packet_id, 513);
		assert_memory_equal(p.topic.ptr, "bench/1", 7);
		assert_memory_equal(p.payload.ptr, "hello", 5);
	}
}

/* Pseudo-random bytes must never be read beyond their length (ASan
 * watches) and a complete packet never claims more than it was given. */
static void test_random_input_never_overruns(void **state)
{
	uint8_t noise[64];
	uint64_t x = 88172645463325252ULL;
	struct mqttc_packet p;
	int round;
	size_t i;

	(void)state;
	for (round = 0; round < 20000; round++) {
		size_t len = (size_t)(x % sizeof(noise));

		for (i = 0; i < sizeof(noise); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			noise[i] = (uint8_t)x;
		}
		if (round % 2)
			noise[1] = (uint8_t)(len > 2 ? len - 2 : 0);   /* plausible length */
		if (decode((uint8_t)(4 + round % 2), noise, len, &p) == MQTTC_DECODE_COMPLETE)
			assert_true(p.len <= len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_v311_with_credentials_matches_spec_bytes),
		cmocka_unit_test(test_connect_v5_carries_empty_properties),
		cmocka_unit_test(test_connect_v5_sends_empty_password_without_username),
		cmocka_unit_test(test_connect_v311_refuses_password_without_username_mqtt_3_1_2_22),
		cmocka_unit_test(test_connect_refuses_unknown_version),
		cmocka_unit_test(test_publish_qos0_v311_matches_spec_bytes),
		cmocka_unit_test(test_publish_qos1_v5_with_dup_and_retain_matches_spec_bytes),
		cmocka_unit_test(test_publish_qos2_v311_carries_packet_id),
		cmocka_unit_test(test_publish_of_200_bytes_uses_two_byte_remaining_length),
		cmocka_unit_test(test_publish_refuses_invalid_arguments),
		cmocka_unit_test(test_subscribe_v311_matches_spec_bytes),
		cmocka_unit_test(test_subscribe_v5_two_filters_with_options),
		cmocka_unit_test(test_subscribe_refuses_no_filters_and_reserved_option_bits),
		cmocka_unit_test(test_acks_match_spec_bytes),
		cmocka_unit_test(test_ack_refuses_other_types_zero_id_and_v311_reason),
		cmocka_unit_test(test_pingreq_and_disconnect_match_spec_bytes),
		cmocka_unit_test(test_encoder_that_does_not_fit_writes_nothing_and_stays_failed),
		cmocka_unit_test(test_connack_v311_accepted_refused_and_session_present),
		cmocka_unit_test(test_connack_v5_skips_properties_and_reports_reason),
		cmocka_unit_test(test_connack_malformed_cases_are_rejected),
		cmocka_unit_test(test_suback_codes_are_returned_and_reserved_ones_rejected),
		cmocka_unit_test(test_unsuback_v311_is_exactly_a_packet_id),
		cmocka_unit_test(test_publish_v311_qos0_gives_topic_and_payload),
		cmocka_unit_test(test_publish_v5_qos1_skips_properties),
		cmocka_unit_test(test_publish_v5_allows_empty_topic_for_topic_alias),
		cmocka_unit_test(test_publish_malformed_cases_are_rejected),
		cmocka_unit_test(test_acks_decode_short_and_long_forms),
		cmocka_unit_test(test_ack_malformed_cases_are_rejected),
		cmocka_unit_test(test_pingresp_has_no_body),
		cmocka_unit_test(test_disconnect_from_server_is_v5_only),
		cmocka_unit_test(test_client_to_server_types_are_rejected),
		cmocka_unit_test(test_incomplete_header_and_body_need_more),
		cmocka_unit_test(test_remaining_length_of_five_bytes_or_not_minimal_is_malformed),
		cmocka_unit_test(test_packet_over_the_limit_is_malformed_from_its_header_alone),
		cmocka_unit_test(test_back_to_back_packets_decode_one_at_a_time),
		cmocka_unit_test(test_split_at_every_byte_needs_more_until_complete),
		cmocka_unit_test(test_encoded_publish_decodes_to_the_same_fields),
		cmocka_unit_test(test_random_input_never_overruns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
