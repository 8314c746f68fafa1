/*
 * Unit tests for mqtt/properties.c: the 5.0 property table (2.2.2.2) and
 * the reader, at places other than CONNECT too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/properties.h"
#include "tests/unit/mqtt_bytes.h"

static enum mqtt_prop_result read_all(const struct pkt *props, unsigned place,
                                      size_t *count, const char **why)
{
	struct mqtt_props_reader r;
	struct mqtt_property p;
	struct slice block = { props->b, props->n };
	enum mqtt_prop_result res;

	*count = 0;
	mqtt_props_init(&r, block, place);
	while ((res = mqtt_props_next(&r, &p, why)) == MQTT_PROP_OK)
		(*count)++;
	return res;
}

static void test_props_table_knows_every_identifier_and_type(void **state)
{
	static const struct { uint8_t id, type; } known[] = {
		{ 0x01, MQTT_PROP_BYTE }, { 0x02, MQTT_PROP_U32 },
		{ 0x03, MQTT_PROP_UTF8 }, { 0x08, MQTT_PROP_UTF8 },
		{ 0x09, MQTT_PROP_BINARY }, { 0x0b, MQTT_PROP_VARINT },
		{ 0x11, MQTT_PROP_U32 }, { 0x12, MQTT_PROP_UTF8 },
		{ 0x13, MQTT_PROP_U16 }, { 0x15, MQTT_PROP_UTF8 },
		{ 0x16, MQTT_PROP_BINARY }, { 0x17, MQTT_PROP_BYTE },
		{ 0x18, MQTT_PROP_U32 }, { 0x19, MQTT_PROP_BYTE },
		{ 0x1a, MQTT_PROP_UTF8 }, { 0x1c, MQTT_PROP_UTF8 },
		{ 0x1f, MQTT_PROP_UTF8 }, { 0x21, MQTT_PROP_U16 },
		{ 0x22, MQTT_PROP_U16 }, { 0x23, MQTT_PROP_U16 },
		{ 0x24, MQTT_PROP_BYTE }, { 0x25, MQTT_PROP_BYTE },
		{ 0x26, MQTT_PROP_PAIR }, { 0x27, MQTT_PROP_U32 },
		{ 0x28, MQTT_PROP_BYTE }, { 0x29, MQTT_PROP_BYTE },
		{ 0x2a, MQTT_PROP_BYTE },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const struct mqtt_prop_info *info = mqtt_prop_lookup(known[i].id);

		assert_non_null(info);
		assert_int_equal(info->type, known[i].type);
	}
	assert_null(mqtt_prop_lookup(0x00));
	assert_null(mqtt_prop_lookup(0x04));
	assert_null(mqtt_prop_lookup(0x2b));
	assert_null(mqtt_prop_lookup(0x1000));
}

static void test_props_empty_block_ends_at_once(void **state)
{
	struct pkt props = { .n = 0 };
	size_t n;

	(void)state;
	assert_int_equal(read_all(&props, MQTT_PLACE_CONNECT, &n, NULL), MQTT_PROP_END);
	assert_int_equal(n, 0);
}

static void test_props_reader_decodes_values_of_each_type(void **state)
{
	struct pkt props = { .n = 0 };
	struct mqtt_props_reader r;
	struct mqtt_property p;
	struct slice block;

	(void)state;
	p_u8(&props, 0x0b); p_varint(&props, 300);          /* varint */
	p_u8(&props, 0x23); p_u16(&props, 7);               /* two-byte */
	p_u8(&props, 0x26); p_str(&props, "n"); p_str(&props, "val");
	block.ptr = props.b;
	block.len = props.n;
	mqtt_props_init(&r, block, MQTT_PLACE_PUBLISH);
	assert_int_equal(mqtt_props_next(&r, &p, NULL), MQTT_PROP_OK);
	assert_int_equal(p.id, 0x0b);
	assert_int_equal(p.num, 300);
	assert_int_equal(mqtt_props_next(&r, &p, NULL), MQTT_PROP_OK);
	assert_int_equal(p.num, 7);
	assert_int_equal(mqtt_props_next(&r, &p, NULL), MQTT_PROP_OK);
	assert_int_equal(p.str.len, 1);
	assert_int_equal(p.value.len, 3);
	assert_memory_equal(p.value.ptr, "val", 3);
	assert_int_equal(mqtt_props_next(&r, &p, NULL), MQTT_PROP_END);
}

/* 3.2.2.3: CONNACK properties are accepted at the CONNACK place. */
static void test_props_connack_place_accepts_server_properties(void **state)
{
	struct pkt props = { .n = 0 };
	size_t n;

	(void)state;
	p_u8(&props, 0x24); p_u8(&props, 1);
	p_u8(&props, 0x25); p_u8(&props, 0);
	p_u8(&props, 0x12); p_str(&props, "assigned");
	p_u8(&props, 0x13); p_u16(&props, 120);
	p_u8(&props, 0x1f); p_str(&props, "why");
	assert_int_equal(read_all(&props, MQTT_PLACE_CONNACK, &n, NULL), MQTT_PROP_END);
	assert_int_equal(n, 5);
	assert_int_equal(read_all(&props, MQTT_PLACE_CONNECT, &n, NULL), MQTT_PROP_MALFORMED);
}

/* 3.2.2.3.4: Maximum QoS is 0 or 1. */
static void test_props_rejects_maximum_qos_of_two(void **state)
{
	struct pkt props = { .n = 0 };
	const char *why = NULL;
	size_t n;

	(void)state;
	p_u8(&props, 0x24); p_u8(&props, 2);
	assert_int_equal(read_all(&props, MQTT_PLACE_CONNACK, &n, &why),
	                 MQTT_PROP_PROTOCOL_ERROR);
	assert_non_null(strstr(why, "3.2.2.3.4"));
}

/* 3.3.2.3.8: a PUBLISH may carry several Subscription Identifiers;
 * 3.8.2.1.2: a SUBSCRIBE only one, and never 0. */
static void test_props_subscription_identifier_repeats_only_in_publish(void **state)
{
	struct pkt props = { .n = 0 };
	size_t n;

	(void)state;
	p_u8(&props, 0x0b); p_varint(&props, 1);
	p_u8(&props, 0x0b); p_varint(&props, 2);
	assert_int_equal(read_all(&props, MQTT_PLACE_PUBLISH, &n, NULL), MQTT_PROP_END);
	assert_int_equal(read_all(&props, MQTT_PLACE_SUBSCRIBE, &n, NULL),
	                 MQTT_PROP_PROTOCOL_ERROR);
	props.n = 0;
	p_u8(&props, 0x0b); p_varint(&props, 0);
	assert_int_equal(read_all(&props, MQTT_PLACE_SUBSCRIBE, &n, NULL),
	                 MQTT_PROP_PROTOCOL_ERROR);
}

/* [MQTT-3.3.2-8] a Topic Alias of 0 is not permitted. */
static void test_props_rejects_topic_alias_of_zero(void **state)
{
	struct pkt props = { .n = 0 };
	size_t n;

	(void)state;
	p_u8(&props, 0x23); p_u16(&props, 0);
	assert_int_equal(read_all(&props, MQTT_PLACE_PUBLISH, &n, NULL),
	                 MQTT_PROP_PROTOCOL_ERROR);
}

/* User Property may repeat everywhere (3.1.2.11.8 and others). */
static void test_props_user_property_repeats_everywhere(void **state)
{
	static const unsigned places[] = {
		MQTT_PLACE_CONNECT, MQTT_PLACE_WILL, MQTT_PLACE_CONNACK,
		MQTT_PLACE_PUBLISH, MQTT_PLACE_PUBACK, MQTT_PLACE_SUBSCRIBE,
		MQTT_PLACE_SUBACK, MQTT_PLACE_UNSUBSCRIBE, MQTT_PLACE_UNSUBACK,
		MQTT_PLACE_DISCONNECT, MQTT_PLACE_AUTH,
	};
	struct pkt props = { .n = 0 };
	size_t i, n;

	(void)state;
	for (i = 0; i < 3; i++) {
		p_u8(&props, 0x26); p_str(&props, "k"); p_str(&props, "v");
	}
	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		assert_int_equal(read_all(&props, places[i], &n, NULL), MQTT_PROP_END);
		assert_int_equal(n, 3);
	}
}

/* [MQTT-4.7.3-1] a Response Topic is a Topic Name, so not empty. */
static void test_props_rejects_empty_response_topic(void **state)
{
	struct pkt props = { .n = 0 };
	size_t n;

	(void)state;
	p_u8(&props, 0x08); p_str(&props, "");
	assert_int_equal(read_all(&props, MQTT_PLACE_PUBLISH, &n, NULL),
	                 MQTT_PROP_PROTOCOL_ERROR);
}

static void test_props_block_reads_length_then_bytes(void **state)
{
	static const uint8_t b[] = { 0x03, 0x24, 0x01, 0x00, 0xaa };
	static const uint8_t over[] = { 0x05, 0x24, 0x01 };
	struct cursor c;
	struct slice block;

	(void)state;
	cursor_init(&c, b, sizeof(b));
	assert_true(mqtt_props_block(&c, &block));
	assert_int_equal(block.len, 3);
	assert_int_equal(cursor_left(&c), 1);
	cursor_init(&c, over, sizeof(over));
	assert_false(mqtt_props_block(&c, &block));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_props_table_knows_every_identifier_and_type),
		cmocka_unit_test(test_props_empty_block_ends_at_once),
		cmocka_unit_test(test_props_reader_decodes_values_of_each_type),
		cmocka_unit_test(test_props_connack_place_accepts_server_properties),
		cmocka_unit_test(test_props_rejects_maximum_qos_of_two),
		cmocka_unit_test(test_props_subscription_identifier_repeats_only_in_publish),
		cmocka_unit_test(test_props_rejects_topic_alias_of_zero),
		cmocka_unit_test(test_props_user_property_repeats_everywhere),
		cmocka_unit_test(test_props_rejects_empty_response_topic),
		cmocka_unit_test(test_props_block_reads_length_then_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
