/*
 * Unit tests for mqtt/publish.c: the header of a client->broker PUBLISH
 * (3.1.1 and 5.0 section 3.3) as the ACL reads it. Packets are spelled out
 * byte by byte (mqtt_bytes.h). Each refusal test names the normative
 * statement it covers; the prefix tests feed every cut of a packet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/publish.h"
#include "tests/unit/mqtt_bytes.h"

/* Builds a PUBLISH: first byte 0x30 | flags, topic, packet id when QoS >
 * 0, 5.0 properties when |props| is not NULL, then |payload_len| bytes. */
static void publish(struct pkt *out, unsigned flags, const void *topic, size_t tlen,
                    unsigned pid, const struct pkt *props, size_t payload_len)
{
	struct pkt body = { .n = 0 };

	p_bin(&body, topic, tlen);
	if ((flags >> 1) & 3)
		p_u16(&body, pid);
	if (props != NULL)
		p_props(&body, props);
	memset(body.b + body.n, 'x', payload_len);
	body.n += payload_len;
	p_frame(out, 0x30 | flags, &body);
}

static void expect_refused(const struct pkt *pk, uint8_t version, enum mqtt_parse_result want,
                           const char *rule)
{
	struct mqtt_publish m;
	const char *why = NULL;

	assert_int_equal(mqtt_publish_parse(pk->b, pk->n, version, &m, &why), want);
	assert_non_null(why);
	if (strstr(why, rule) == NULL)
		fail_msg("why \"%s\" does not name %s", why, rule);
}

static void assert_topic(struct slice s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_publish_v311_qos0_parses_topic_and_lengths(void **state)
{
	struct pkt pk;
	struct mqtt_publish m;
	const char *why = "unset";

	(void)state;
	publish(&pk, 0x00, "a/b", 3, 0, NULL, 5);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 4, &m, &why), MQTT_PARSE_OK);
	assert_null(why);
	assert_topic(m.topic, "a/b");
	assert_int_equal(m.qos, 0);
	assert_int_equal(m.packet_id, 0);
	assert_int_equal(m.header_len, 2 + 2 + 3);
	assert_int_equal(m.total_len, pk.n);
	assert_int_equal(m.properties.len, 0);
	assert_false(m.has_topic_alias);
}

static void test_publish_v311_qos1_reads_the_packet_identifier(void **state)
{
	struct pkt pk;
	struct mqtt_publish m;

	(void)state;
	publish(&pk, 0x02, "t", 1, 0x1234, NULL, 0);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 4, &m, NULL), MQTT_PARSE_OK);
	assert_int_equal(m.qos, 1);
	assert_int_equal(m.packet_id, 0x1234);
	assert_int_equal(m.header_len, pk.n);
}

static void test_publish_reads_dup_qos2_and_retain_flags(void **state)
{
	struct pkt pk;
	struct mqtt_publish m;

	(void)state;
	publish(&pk, 0x08 | 0x04 | 0x01, "t", 1, 7, NULL, 1);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 4, &m, NULL), MQTT_PARSE_OK);
	assert_int_equal(m.dup, 1);
	assert_int_equal(m.qos, 2);
	assert_int_equal(m.retain, 1);
	assert_int_equal(m.packet_id, 7);
}

static void test_publish_mqtt31_is_read_like_311(void **state)
{
	struct pkt pk;
	struct mqtt_publish m;

	(void)state;
	publish(&pk, 0x02, "x/y", 3, 9, NULL, 3);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 3, &m, NULL), MQTT_PARSE_OK);
	assert_topic(m.topic, "x/y");
	assert_int_equal(m.packet_id, 9);
}

static void test_publish_v5_skips_properties_by_length_and_reports_the_topic_alias(void **state)
{
	struct pkt pk, props = { .n = 0 };
	struct mqtt_publish m;

	(void)state;
	p_u8(&props, 0x01);   /* payload format indicator */
	p_u8(&props, 1);
	p_u8(&props, 0x23);   /* topic alias */
	p_u16(&props, 5);
	p_u8(&props, 0x26);   /* user property */
	p_str(&props, "k");
	p_str(&props, "v");
	publish(&pk, 0x02, "a", 1, 1, &props, 4);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 5, &m, NULL), MQTT_PARSE_OK);
	assert_true(m.has_topic_alias);
	assert_int_equal(m.topic_alias, 5);
	assert_int_equal(m.properties.len, props.n);
	assert_int_equal(m.header_len, pk.n - 4);
}

static void test_publish_v5_accepts_an_empty_topic_with_a_topic_alias(void **state)
{
	struct pkt pk, props = { .n = 0 };
	struct mqtt_publish m;

	(void)state;
	p_u8(&props, 0x23);
	p_u16(&props, 1);
	publish(&pk, 0x00, "", 0, 0, &props, 2);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 5, &m, NULL), MQTT_PARSE_OK);
	assert_int_equal(m.topic.len, 0);
	assert_int_equal(m.topic_alias, 1);
}

static void test_publish_v5_refuses_an_empty_topic_without_a_topic_alias(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	publish(&pk, 0x00, "", 0, 0, &props, 2);
	expect_refused(&pk, 5, MQTT_PARSE_PROTOCOL_ERROR, "[5.0 3.3.2.3.4]");
}

static void test_publish_v311_refuses_an_empty_topic_mqtt_4_7_3_1(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x00, "", 0, 0, NULL, 2);
	expect_refused(&pk, 4, MQTT_PARSE_TOPIC_INVALID, "[MQTT-4.7.3-1]");
}

static void test_publish_refuses_wildcards_in_the_topic_mqtt_3_3_2_2(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	publish(&pk, 0x00, "a/+", 3, 0, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_TOPIC_INVALID, "[MQTT-3.3.2-2]");
	publish(&pk, 0x00, "a/#", 3, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_TOPIC_INVALID, "[MQTT-3.3.2-2]");
}

static void test_publish_refuses_a_topic_that_is_not_utf8_mqtt_3_3_2_1(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x00, "a\xff", 2, 0, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1]");
	publish(&pk, 0x00, "a\xed\xa0\x80", 4, 0, NULL, 0);   /* a surrogate */
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1]");
}

static void test_publish_refuses_a_nul_character_in_the_topic_mqtt_4_7_3_2(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x00, "a\0b", 3, 0, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1]");
}

static void test_publish_refuses_qos_3_mqtt_3_3_1_4(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x06, "t", 1, 1, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.1-4]");
}

static void test_publish_refuses_dup_on_qos_0_mqtt_3_3_1_2(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x08, "t", 1, 0, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.1-2]");
}

static void test_publish_v311_refuses_packet_identifier_0_mqtt_2_3_1_1(void **state)
{
	struct pkt pk;

	(void)state;
	publish(&pk, 0x02, "t", 1, 0, NULL, 0);
	expect_refused(&pk, 4, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-2.3.1-1]");
}

static void test_publish_v5_refuses_packet_identifier_0_mqtt_2_2_1_3(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	publish(&pk, 0x04, "t", 1, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-2.2.1-3]");
}

static void test_publish_v5_refuses_topic_alias_0_mqtt_3_3_2_8(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x23);
	p_u16(&props, 0);
	publish(&pk, 0x00, "t", 1, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.3.2-8]");
}

static void test_publish_v5_refuses_a_subscription_identifier_from_the_client_mqtt_3_3_4_6(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x0b);
	p_varint(&props, 3);
	publish(&pk, 0x00, "t", 1, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.3.4-6]");
}

static void test_publish_v5_refuses_a_repeated_topic_alias(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x23);
	p_u16(&props, 1);
	p_u8(&props, 0x23);
	p_u16(&props, 2);
	publish(&pk, 0x00, "t", 1, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_PROTOCOL_ERROR, "more than once");
}

static void test_publish_v5_refuses_a_property_not_allowed_in_publish(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x11);   /* session expiry interval: CONNECT only */
	p_u32(&props, 10);
	publish(&pk, 0x00, "t", 1, 0, &props, 0);
	expect_refused(&pk, 5, MQTT_PARSE_MALFORMED, "[5.0 2.2.2.2]");
}

static void test_publish_v5_refuses_properties_that_run_past_the_packet(void **state)
{
	struct pkt body = { .n = 0 }, pk;

	(void)state;
	p_str(&body, "t");
	p_varint(&body, 10);   /* claims 10 property bytes, has 2 */
	p_u8(&body, 0x23);
	p_u8(&body, 0);
	p_frame(&pk, 0x30, &body);
	expect_refused(&pk, 5, MQTT_PARSE_MALFORMED, "past the packet");
}

static void test_publish_v5_refuses_a_non_minimal_property_length(void **state)
{
	struct pkt body = { .n = 0 }, pk;

	(void)state;
	p_str(&body, "t");
	p_u8(&body, 0x80);   /* 0 in two bytes [MQTT-1.5.5-1] */
	p_u8(&body, 0x00);
	p_frame(&pk, 0x30, &body);
	expect_refused(&pk, 5, MQTT_PARSE_MALFORMED, "[MQTT-1.5.5-1]");
}

static void test_publish_v5_refuses_a_packet_that_ends_inside_the_property_length(void **state)
{
	struct pkt body = { .n = 0 }, pk;

	(void)state;
	p_str(&body, "t");
	p_u8(&body, 0x80);
	p_frame(&pk, 0x30, &body);
	expect_refused(&pk, 5, MQTT_PARSE_MALFORMED, "property length truncated");
}

static void test_publish_v5_asks_for_one_more_byte_of_an_unfinished_property_length(void **state)
{
	struct pkt body = { .n = 0 }, pk;
	struct mqtt_publish m;
	struct pkt props = { .n = 0 };

	(void)state;
	/* 200 bytes of properties: a two-byte Property Length. */
	for (int i = 0; i < 20; i++) {
		p_u8(&props, 0x26);
		p_str(&props, "k");
		p_str(&props, "vvv");
	}
	p_str(&body, "t");
	p_props(&body, &props);
	p_frame(&pk, 0x30, &body);
	/* Fixed header 3 bytes, topic 3: the varint starts at 6. */
	assert_int_equal(mqtt_publish_parse(pk.b, 6, 5, &m, NULL), MQTT_PARSE_NEED_MORE);
	assert_int_equal(m.need, 7);
	assert_int_equal(mqtt_publish_parse(pk.b, 7, 5, &m, NULL), MQTT_PARSE_NEED_MORE);
	assert_int_equal(m.need, 8);
	assert_int_equal(mqtt_publish_parse(pk.b, 8, 5, &m, NULL), MQTT_PARSE_NEED_MORE);
	assert_int_equal(m.need, 8 + props.n);
}

static void test_publish_refuses_a_topic_that_runs_past_the_packet(void **state)
{
	struct pkt body = { .n = 0 }, pk;

	(void)state;
	p_u16(&body, 20);
	p_raw(&body, "abc", 3);
	p_frame(&pk, 0x30, &body);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1]");
	body.n = 1;   /* not even the length */
	p_frame(&pk, 0x30, &body);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1]");
}

static void test_publish_refuses_a_missing_packet_identifier_on_qos_1(void **state)
{
	struct pkt body = { .n = 0 }, pk;

	(void)state;
	p_str(&body, "t");
	p_u8(&body, 1);
	p_frame(&pk, 0x32, &body);
	expect_refused(&pk, 4, MQTT_PARSE_MALFORMED, "[2.3.1]");
}

static void test_publish_refuses_another_packet_type(void **state)
{
	const uint8_t puback[] = { 0x40, 0x02, 0x00, 0x01 };
	struct mqtt_publish m;
	const char *why = NULL;

	(void)state;
	assert_int_equal(mqtt_publish_parse(puback, sizeof(puback), 4, &m, &why), MQTT_PARSE_MALFORMED);
	assert_non_null(strstr(why, "not a PUBLISH"));
}

static void test_publish_refuses_a_non_minimal_remaining_length_mqtt_1_5_5_1(void **state)
{
	const uint8_t bad[] = { 0x30, 0x83, 0x00, 0x00, 0x01, 't' };
	const uint8_t five[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01 };
	struct mqtt_publish m;

	(void)state;
	assert_int_equal(mqtt_publish_parse(bad, sizeof(bad), 4, &m, NULL), MQTT_PARSE_MALFORMED);
	assert_int_equal(mqtt_publish_parse(five, sizeof(five), 4, &m, NULL), MQTT_PARSE_MALFORMED);
}

static void test_publish_does_not_look_at_bytes_after_the_packet(void **state)
{
	struct pkt pk;
	struct mqtt_publish m;

	(void)state;
	publish(&pk, 0x00, "t", 1, 0, NULL, 2);
	p_raw(&pk, "\xff\xff\xff", 3);
	assert_int_equal(mqtt_publish_parse(pk.b, pk.n, 4, &m, NULL), MQTT_PARSE_OK);
	assert_int_equal(m.total_len, pk.n - 3);
}

static void test_publish_parses_the_header_of_a_large_packet_without_its_payload(void **state)
{
	/* A 1 MiB payload is announced; only the header is present. */
	struct pkt body = { .n = 0 }, hdr = { .n = 0 };
	struct mqtt_publish m;
	size_t payload = 1u << 20;

	(void)state;
	p_str(&body, "big/one");
	p_u16(&body, 3);
	p_u8(&hdr, 0x32);
	p_varint(&hdr, (uint32_t)(body.n + payload));
	p_raw(&hdr, body.b, body.n);
	assert_int_equal(mqtt_publish_parse(hdr.b, hdr.n, 4, &m, NULL), MQTT_PARSE_OK);
	assert_int_equal(m.header_len, hdr.n);
	assert_int_equal(m.total_len, hdr.n + payload);
	assert_topic(m.topic, "big/one");
}

/*
 * Every cut of |pk| before its header ends gives NEED_MORE with a need
 * beyond the cut and within the packet; supplying what was asked for
 * reaches the same verdict as the whole packet in a few rounds.
 */
static void check_every_prefix(const struct pkt *pk, uint8_t version)
{
	struct mqtt_publish whole, m;
	enum mqtt_parse_result want, r;
	size_t cut;

	want = mqtt_publish_parse(pk->b, pk->n, version, &whole, NULL);
	assert_int_not_equal(want, MQTT_PARSE_NEED_MORE);
	for (cut = 0; cut <= pk->n; cut++) {
		size_t avail = cut;
		int rounds = 0;
		uint8_t *copy = malloc(pk->n);   /* so ASan sees reads past the cut */

		assert_non_null(copy);
		for (;;) {
			memcpy(copy, pk->b, avail);
			r = mqtt_publish_parse(copy, avail, version, &m, NULL);
			if (r != MQTT_PARSE_NEED_MORE)
				break;
			assert_true(m.need > avail);
			assert_true(m.need <= pk->n);
			avail = m.need;
			assert_true(++rounds <= 10);
		}
		free(copy);
		assert_int_equal(r, want);
		if (r == MQTT_PARSE_OK) {
			assert_int_equal(m.header_len, whole.header_len);
			assert_int_equal(m.total_len, whole.total_len);
			assert_int_equal(m.packet_id, whole.packet_id);
			assert_int_equal(m.topic.len, whole.topic.len);
			assert_int_equal(m.topic_alias, whole.topic_alias);
		}
	}
}

static void test_publish_every_prefix_needs_more_then_agrees_with_the_whole_packet(void **state)
{
	struct pkt pk, props = { .n = 0 }, big = { .n = 0 };
	char topic[300];

	(void)state;
	publish(&pk, 0x00, "a/b/c", 5, 0, NULL, 3);
	check_every_prefix(&pk, 4);
	publish(&pk, 0x04, "a/b/c", 5, 77, NULL, 0);
	check_every_prefix(&pk, 4);
	p_u8(&props, 0x23);
	p_u16(&props, 9);
	publish(&pk, 0x02, "x", 1, 5, &props, 10);
	check_every_prefix(&pk, 5);
	/* A property block long enough for a two-byte length. */
	for (int i = 0; i < 40; i++) {
		p_u8(&big, 0x26);
		p_str(&big, "key");
		p_str(&big, "value");
	}
	memset(topic, 't', sizeof(topic));
	publish(&pk, 0x02, topic, sizeof(topic), 5, &big, 10);
	check_every_prefix(&pk, 5);
}

static void test_publish_every_prefix_of_a_malformed_packet_never_parses(void **state)
{
	struct pkt pk, props = { .n = 0 };

	(void)state;
	publish(&pk, 0x00, "a/+", 3, 0, NULL, 3);
	check_every_prefix(&pk, 4);
	p_u8(&props, 0x0b);
	p_varint(&props, 1);
	publish(&pk, 0x02, "x", 1, 5, &props, 1);
	check_every_prefix(&pk, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_v311_qos0_parses_topic_and_lengths),
		cmocka_unit_test(test_publish_v311_qos1_reads_the_packet_identifier),
		cmocka_unit_test(test_publish_reads_dup_qos2_and_retain_flags),
		cmocka_unit_test(test_publish_mqtt31_is_read_like_311),
		cmocka_unit_test(test_publish_v5_skips_properties_by_length_and_reports_the_topic_alias),
		cmocka_unit_test(test_publish_v5_accepts_an_empty_topic_with_a_topic_alias),
		cmocka_unit_test(test_publish_v5_refuses_an_empty_topic_without_a_topic_alias),
		cmocka_unit_test(test_publish_v311_refuses_an_empty_topic_mqtt_4_7_3_1),
		cmocka_unit_test(test_publish_refuses_wildcards_in_the_topic_mqtt_3_3_2_2),
		cmocka_unit_test(test_publish_refuses_a_topic_that_is_not_utf8_mqtt_3_3_2_1),
		cmocka_unit_test(test_publish_refuses_a_nul_character_in_the_topic_mqtt_4_7_3_2),
		cmocka_unit_test(test_publish_refuses_qos_3_mqtt_3_3_1_4),
		cmocka_unit_test(test_publish_refuses_dup_on_qos_0_mqtt_3_3_1_2),
		cmocka_unit_test(test_publish_v311_refuses_packet_identifier_0_mqtt_2_3_1_1),
		cmocka_unit_test(test_publish_v5_refuses_packet_identifier_0_mqtt_2_2_1_3),
		cmocka_unit_test(test_publish_v5_refuses_topic_alias_0_mqtt_3_3_2_8),
		cmocka_unit_test(test_publish_v5_refuses_a_subscription_identifier_from_the_client_mqtt_3_3_4_6),
		cmocka_unit_test(test_publish_v5_refuses_a_repeated_topic_alias),
		cmocka_unit_test(test_publish_v5_refuses_a_property_not_allowed_in_publish),
		cmocka_unit_test(test_publish_v5_refuses_properties_that_run_past_the_packet),
		cmocka_unit_test(test_publish_v5_refuses_a_non_minimal_property_length),
		cmocka_unit_test(test_publish_v5_refuses_a_packet_that_ends_inside_the_property_length),
		cmocka_unit_test(test_publish_v5_asks_for_one_more_byte_of_an_unfinished_property_length),
		cmocka_unit_test(test_publish_refuses_a_topic_that_runs_past_the_packet),
		cmocka_unit_test(test_publish_refuses_a_missing_packet_identifier_on_qos_1),
		cmocka_unit_test(test_publish_refuses_another_packet_type),
		cmocka_unit_test(test_publish_refuses_a_non_minimal_remaining_length_mqtt_1_5_5_1),
		cmocka_unit_test(test_publish_does_not_look_at_bytes_after_the_packet),
		cmocka_unit_test(test_publish_parses_the_header_of_a_large_packet_without_its_payload),
		cmocka_unit_test(test_publish_every_prefix_needs_more_then_agrees_with_the_whole_packet),
		cmocka_unit_test(test_publish_every_prefix_of_a_malformed_packet_never_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
