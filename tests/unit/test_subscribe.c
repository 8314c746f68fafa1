/*
 * Unit tests for mqtt/subscribe.c: SUBSCRIBE (3.8) and UNSUBSCRIBE (3.10)
 * from a client in 3.1.1 and 5.0, the filter iterator and the re-written
 * SUBSCRIBE that keeps only some filters. Each refusal names its rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/packet.h"
#include "mqtt/subscribe.h"
#include "tests/unit/mqtt_bytes.h"

/* A SUBSCRIBE body: packet id, then (5.0) |props|. Filters are appended
 * with add(). */
static void body_start(struct pkt *b, unsigned pid, const struct pkt *props)
{
	b->n = 0;
	p_u16(b, pid);
	if (props != NULL)
		p_props(b, props);
}

static void add(struct pkt *b, const char *filter, int options)
{
	p_str(b, filter);
	if (options >= 0)
		p_u8(b, (unsigned)options);
}

static enum mqtt_parse_result parse(const struct pkt *body, unsigned first, uint8_t version,
                                    struct mqtt_subscribe *s, const char **why)
{
	static struct pkt frame;   /* outlives the call: slices point into it */

	p_frame(&frame, first, body);
	return mqtt_subscribe_parse(frame.b, frame.n, version, s, why);
}

static void expect_refused(const struct pkt *body, unsigned first, uint8_t version,
                           enum mqtt_parse_result want, const char *rule)
{
	struct mqtt_subscribe s;
	const char *why = NULL;

	assert_int_equal(parse(body, first, version, &s, &why), want);
	assert_non_null(why);
	if (strstr(why, rule) == NULL)
		fail_msg("why \"%s\" does not name %s", why, rule);
	assert_int_equal(s.count, 0);
}

static void assert_slice(struct slice s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_subscribe_v311_parses_every_filter_and_its_qos(void **state)
{
	struct pkt b;
	struct mqtt_subscribe s;
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;
	const char *why = "unset";

	(void)state;
	body_start(&b, 10, NULL);
	add(&b, "a/b", 0);
	add(&b, "c/+", 1);
	add(&b, "#", 2);
	assert_int_equal(parse(&b, 0x82, 4, &s, &why), MQTT_PARSE_OK);
	assert_null(why);
	assert_int_equal(s.type, MQTT_SUBSCRIBE);
	assert_int_equal(s.packet_id, 10);
	assert_int_equal(s.count, 3);
	mqtt_sub_iter_init(&it, &s);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_slice(e.filter, "a/b");
	assert_slice(e.acl_filter, "a/b");
	assert_int_equal(e.qos, 0);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_slice(e.filter, "c/+");
	assert_int_equal(e.qos, 1);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_slice(e.filter, "#");
	assert_int_equal(e.qos, 2);
	assert_false(mqtt_sub_iter_next(&it, &e));
	assert_false(mqtt_sub_iter_next(&it, &e));
}

static void test_subscribe_v5_reads_properties_and_options(void **state)
{
	struct pkt b, props = { .n = 0 };
	struct mqtt_subscribe s;
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;

	(void)state;
	p_u8(&props, 0x0b);
	p_varint(&props, 300);
	p_u8(&props, 0x26);
	p_str(&props, "k");
	p_str(&props, "v");
	body_start(&b, 1, &props);
	add(&b, "a", 0x04 | 0x08 | 0x20 | 0x01);   /* no local, RAP, retain handling 2, QoS 1 */
	assert_int_equal(parse(&b, 0x82, 5, &s, NULL), MQTT_PARSE_OK);
	assert_true(s.has_subscription_id);
	assert_int_equal(s.subscription_id, 300);
	assert_int_equal(s.properties.len, props.n);
	mqtt_sub_iter_init(&it, &s);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_int_equal(e.options, 0x2d);
	assert_int_equal(e.qos, 1);
}

static void test_subscribe_splits_a_shared_subscription_for_the_acl(void **state)
{
	struct pkt b, props = { .n = 0 };
	struct mqtt_subscribe s;
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;

	(void)state;
	body_start(&b, 1, &props);
	add(&b, "$share/g/a/+", 1);
	assert_int_equal(parse(&b, 0x82, 5, &s, NULL), MQTT_PARSE_OK);
	mqtt_sub_iter_init(&it, &s);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_true(e.shared);
	assert_slice(e.filter, "$share/g/a/+");
	assert_slice(e.share_name, "g");
	assert_slice(e.acl_filter, "a/+");
}

static void test_subscribe_v311_treats_a_malformed_share_as_an_ordinary_filter(void **state)
{
	struct pkt b;
	struct mqtt_subscribe s;
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "$share//a", 0);
	assert_int_equal(parse(&b, 0x82, 4, &s, NULL), MQTT_PARSE_OK);
	mqtt_sub_iter_init(&it, &s);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_false(e.shared);
	assert_slice(e.acl_filter, "$share//a");
}

static void test_subscribe_v5_refuses_a_malformed_shared_subscription_mqtt_4_8_2_1(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 1, &props);
	add(&b, "$share//a", 0);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-4.8.2-1]");
	body_start(&b, 1, &props);
	add(&b, "$share/g", 0);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-4.8.2-2]");
}

static void test_subscribe_v5_refuses_no_local_on_a_shared_subscription_mqtt_3_8_3_4(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 1, &props);
	add(&b, "$share/g/a", 0x04);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.8.3-4]");
}

static void test_subscribe_refuses_fixed_header_flags_other_than_0010_mqtt_3_8_1_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", 0);
	expect_refused(&b, 0x80, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.8.1-1]");
	expect_refused(&b, 0x83, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.8.1-1]");
}

static void test_unsubscribe_refuses_fixed_header_flags_other_than_0010_mqtt_3_10_1_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", -1);
	expect_refused(&b, 0xa0, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.10.1-1]");
}

static void test_subscribe_v311_refuses_packet_identifier_0_mqtt_2_3_1_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 0, NULL);
	add(&b, "a", 0);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-2.3.1-1]");
}

static void test_subscribe_v5_refuses_packet_identifier_0_mqtt_2_2_1_3(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 0, &props);
	add(&b, "a", 0);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-2.2.1-3]");
}

static void test_subscribe_v311_refuses_an_empty_payload_mqtt_3_8_3_3(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.8.3-3]");
}

static void test_subscribe_v5_refuses_an_empty_payload_mqtt_3_8_3_2(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 1, &props);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.8.3-2]");
}

static void test_unsubscribe_refuses_an_empty_payload_mqtt_3_10_3_2(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	expect_refused(&b, 0xa2, 4, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.10.3-2]");
}

static void test_subscribe_refuses_a_filter_that_is_not_utf8_mqtt_3_8_3_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	p_bin(&b, "a\xc0\x80", 3);   /* overlong NUL */
	p_u8(&b, 0);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.8.3-1]");
}

static void test_unsubscribe_refuses_a_filter_that_is_not_utf8_mqtt_3_10_3_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	p_bin(&b, "\xff", 1);
	expect_refused(&b, 0xa2, 4, MQTT_PARSE_MALFORMED, "[MQTT-3.10.3-1]");
}

static void test_subscribe_refuses_an_empty_filter_mqtt_4_7_3_1(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "", 0);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-4.7.3-1]");
}

static void test_subscribe_refuses_a_hash_that_is_not_last_mqtt_4_7_1_2(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a/#/b", 0);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-4.7.1-2]");
}

static void test_subscribe_refuses_a_plus_sharing_its_level_mqtt_4_7_1_3(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a/b+", 0);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-4.7.1-3]");
}

static void test_subscribe_v311_refuses_reserved_option_bits_or_qos_3_mqtt_3_8_3_4(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", 0x04);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-3-8.3-4]");
	body_start(&b, 1, NULL);
	add(&b, "a", 0x03);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "[MQTT-3-8.3-4]");
}

static void test_subscribe_v5_refuses_reserved_option_bits_mqtt_3_8_3_5(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 1, &props);
	add(&b, "a", 0x40);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_MALFORMED, "[MQTT-3.8.3-5]");
}

static void test_subscribe_v5_refuses_qos_3_and_retain_handling_3(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	body_start(&b, 1, &props);
	add(&b, "a", 0x03);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "maximum QoS 3");
	body_start(&b, 1, &props);
	add(&b, "a", 0x30);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "retain handling 3");
}

static void test_subscribe_v5_refuses_a_subscription_identifier_of_0(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x0b);
	p_varint(&props, 0);
	body_start(&b, 1, &props);
	add(&b, "a", 0);
	expect_refused(&b, 0x82, 5, MQTT_PARSE_PROTOCOL_ERROR, "[5.0 3.8.2.1.2]");
}

static void test_unsubscribe_v5_refuses_a_subscription_identifier(void **state)
{
	struct pkt b, props = { .n = 0 };

	(void)state;
	p_u8(&props, 0x0b);
	p_varint(&props, 1);
	body_start(&b, 1, &props);
	add(&b, "a", -1);
	expect_refused(&b, 0xa2, 5, MQTT_PARSE_MALFORMED, "[5.0 2.2.2.2]");
}

static void test_subscribe_refuses_a_missing_options_byte(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", -1);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "options missing");
}

static void test_subscribe_refuses_a_filter_that_runs_past_the_packet(void **state)
{
	struct pkt b;

	(void)state;
	body_start(&b, 1, NULL);
	p_u16(&b, 9);
	p_raw(&b, "ab", 2);
	expect_refused(&b, 0x82, 4, MQTT_PARSE_MALFORMED, "truncated");
}

static void test_subscribe_refuses_a_packet_whose_length_does_not_match(void **state)
{
	struct pkt b, frame;
	struct mqtt_subscribe s;

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", 0);
	p_frame(&frame, 0x82, &b);
	assert_int_equal(mqtt_subscribe_parse(frame.b, frame.n - 1, 4, &s, NULL), MQTT_PARSE_MALFORMED);
	assert_int_equal(mqtt_subscribe_parse(frame.b, frame.n + 0, 4, &s, NULL), MQTT_PARSE_OK);
	frame.b[frame.n++] = 0;
	assert_int_equal(mqtt_subscribe_parse(frame.b, frame.n, 4, &s, NULL), MQTT_PARSE_MALFORMED);
}

static void test_unsubscribe_parses_filters_without_options(void **state)
{
	struct pkt b, props = { .n = 0 };
	struct mqtt_subscribe s;
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;

	(void)state;
	body_start(&b, 3, &props);
	add(&b, "a/#", -1);
	add(&b, "$share/g/b", -1);
	assert_int_equal(parse(&b, 0xa2, 5, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(s.type, MQTT_UNSUBSCRIBE);
	assert_int_equal(s.count, 2);
	mqtt_sub_iter_init(&it, &s);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_slice(e.filter, "a/#");
	assert_int_equal(e.options, 0);
	assert_true(mqtt_sub_iter_next(&it, &e));
	assert_slice(e.acl_filter, "b");
	assert_false(mqtt_sub_iter_next(&it, &e));
}

static void test_subscribe_subset_keeps_the_chosen_filters_in_order(void **state)
{
	struct pkt b, want_body, want, props = { .n = 0 };
	struct mqtt_subscribe s;
	uint8_t keep[4] = { 1, 0, 1, 0 }, out[256];
	size_t n;

	(void)state;
	p_u8(&props, 0x0b);
	p_varint(&props, 5);
	body_start(&b, 0x4242, &props);
	add(&b, "a", 1);
	add(&b, "secret/#", 2);
	add(&b, "c/+", 0x22);
	add(&b, "d", 0);
	assert_int_equal(parse(&b, 0x82, 5, &s, NULL), MQTT_PARSE_OK);
	body_start(&want_body, 0x4242, &props);
	add(&want_body, "a", 1);
	add(&want_body, "c/+", 0x22);
	p_frame(&want, 0x82, &want_body);
	n = mqtt_subscribe_subset_len(&s, keep);
	assert_int_equal(n, want.n);
	assert_int_equal(mqtt_subscribe_write_subset(&s, keep, out, sizeof(out)), want.n);
	assert_memory_equal(out, want.b, want.n);
	/* One byte short: nothing. */
	assert_int_equal(mqtt_subscribe_write_subset(&s, keep, out, want.n - 1), 0);
}

static void test_subscribe_subset_of_nothing_is_refused_mqtt_3_8_3_3(void **state)
{
	struct pkt b;
	struct mqtt_subscribe s;
	uint8_t keep[2] = { 0, 0 }, out[64];

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", 0);
	add(&b, "b", 0);
	assert_int_equal(parse(&b, 0x82, 4, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(mqtt_subscribe_subset_len(&s, keep), 0);
	assert_int_equal(mqtt_subscribe_write_subset(&s, keep, out, sizeof(out)), 0);
}

static void test_subscribe_subset_of_everything_is_the_same_packet(void **state)
{
	struct pkt b, frame;
	struct mqtt_subscribe s;
	uint8_t keep[2] = { 1, 1 }, out[64];

	(void)state;
	body_start(&b, 9, NULL);
	add(&b, "a", 0);
	add(&b, "b/+", 1);
	p_frame(&frame, 0x82, &b);
	assert_int_equal(mqtt_subscribe_parse(frame.b, frame.n, 4, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(mqtt_subscribe_write_subset(&s, keep, out, sizeof(out)), frame.n);
	assert_memory_equal(out, frame.b, frame.n);
}

static void test_unsubscribe_has_no_subset(void **state)
{
	struct pkt b;
	struct mqtt_subscribe s;
	uint8_t keep[1] = { 1 }, out[64];

	(void)state;
	body_start(&b, 1, NULL);
	add(&b, "a", -1);
	assert_int_equal(parse(&b, 0xa2, 4, &s, NULL), MQTT_PARSE_OK);
	assert_int_equal(mqtt_subscribe_write_subset(&s, keep, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subscribe_v311_parses_every_filter_and_its_qos),
		cmocka_unit_test(test_subscribe_v5_reads_properties_and_options),
		cmocka_unit_test(test_subscribe_splits_a_shared_subscription_for_the_acl),
		cmocka_unit_test(test_subscribe_v311_treats_a_malformed_share_as_an_ordinary_filter),
		cmocka_unit_test(test_subscribe_v5_refuses_a_malformed_shared_subscription_mqtt_4_8_2_1),
		cmocka_unit_test(test_subscribe_v5_refuses_no_local_on_a_shared_subscription_mqtt_3_8_3_4),
		cmocka_unit_test(test_subscribe_refuses_fixed_header_flags_other_than_0010_mqtt_3_8_1_1),
		cmocka_unit_test(test_unsubscribe_refuses_fixed_header_flags_other_than_0010_mqtt_3_10_1_1),
		cmocka_unit_test(test_subscribe_v311_refuses_packet_identifier_0_mqtt_2_3_1_1),
		cmocka_unit_test(test_subscribe_v5_refuses_packet_identifier_0_mqtt_2_2_1_3),
		cmocka_unit_test(test_subscribe_v311_refuses_an_empty_payload_mqtt_3_8_3_3),
		cmocka_unit_test(test_subscribe_v5_refuses_an_empty_payload_mqtt_3_8_3_2),
		cmocka_unit_test(test_unsubscribe_refuses_an_empty_payload_mqtt_3_10_3_2),
		cmocka_unit_test(test_subscribe_refuses_a_filter_that_is_not_utf8_mqtt_3_8_3_1),
		cmocka_unit_test(test_unsubscribe_refuses_a_filter_that_is_not_utf8_mqtt_3_10_3_1),
		cmocka_unit_test(test_subscribe_refuses_an_empty_filter_mqtt_4_7_3_1),
		cmocka_unit_test(test_subscribe_refuses_a_hash_that_is_not_last_mqtt_4_7_1_2),
		cmocka_unit_test(test_subscribe_refuses_a_plus_sharing_its_level_mqtt_4_7_1_3),
		cmocka_unit_test(test_subscribe_v311_refuses_reserved_option_bits_or_qos_3_mqtt_3_8_3_4),
		cmocka_unit_test(test_subscribe_v5_refuses_reserved_option_bits_mqtt_3_8_3_5),
		cmocka_unit_test(test_subscribe_v5_refuses_qos_3_and_retain_handling_3),
		cmocka_unit_test(test_subscribe_v5_refuses_a_subscription_identifier_of_0),
		cmocka_unit_test(test_unsubscribe_v5_refuses_a_subscription_identifier),
		cmocka_unit_test(test_subscribe_refuses_a_missing_options_byte),
		cmocka_unit_test(test_subscribe_refuses_a_filter_that_runs_past_the_packet),
		cmocka_unit_test(test_subscribe_refuses_a_packet_whose_length_does_not_match),
		cmocka_unit_test(test_unsubscribe_parses_filters_without_options),
		cmocka_unit_test(test_subscribe_subset_keeps_the_chosen_filters_in_order),
		cmocka_unit_test(test_subscribe_subset_of_nothing_is_refused_mqtt_3_8_3_3),
		cmocka_unit_test(test_subscribe_subset_of_everything_is_the_same_packet),
		cmocka_unit_test(test_unsubscribe_has_no_subset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
