/*
 * The MQTT 5.0 property table and the reader that checks a property block
 * against it (properties.h).
 */
#include <stddef.h>

#include "mqtt/properties.h"
#include "mqtt/topic.h"

#define VARINT_MAX 268435455u

#define P_PUBACKS (MQTT_PLACE_PUBACK)
#define P_ALL (MQTT_PLACE_CONNECT | MQTT_PLACE_WILL | MQTT_PLACE_CONNACK | \
               MQTT_PLACE_PUBLISH | MQTT_PLACE_PUBACK | MQTT_PLACE_SUBSCRIBE | \
               MQTT_PLACE_SUBACK | MQTT_PLACE_UNSUBSCRIBE | \
               MQTT_PLACE_UNSUBACK | MQTT_PLACE_DISCONNECT | MQTT_PLACE_AUTH)

/*
 * 5.0 2.2.2.2, with the range rules stated next to each property in the
 * sections of the packets that carry it. A numeric property outside its
 * range is a Protocol Error; every property not marked repeatable may
 * appear only once ("It is a Protocol Error to include ... more than
 * once", stated for each one).
 */
static const struct mqtt_prop_info prop_table[] = {
	{ MQTT_PROP_PAYLOAD_FORMAT, MQTT_PROP_BYTE,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_WILL, 0, 0, 1, 0,
	  "[5.0 3.1.3.2.3] payload format indicator not 0 or 1" },
	{ MQTT_PROP_MESSAGE_EXPIRY, MQTT_PROP_U32,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_WILL, 0, 0, UINT32_MAX, 0, NULL },
	{ MQTT_PROP_CONTENT_TYPE, MQTT_PROP_UTF8,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_WILL, 0, 0, 0, 0, NULL },
	{ MQTT_PROP_RESPONSE_TOPIC, MQTT_PROP_UTF8,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_WILL, 0, 0, 0,
	  MQTT_PROP_CHECK_TOPIC_NAME, NULL },
	{ MQTT_PROP_CORRELATION_DATA, MQTT_PROP_BINARY,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_WILL, 0, 0, 0, 0, NULL },
	/* A server may attach several to one PUBLISH (3.3.2.3.8). */
	{ MQTT_PROP_SUBSCRIPTION_ID, MQTT_PROP_VARINT,
	  MQTT_PLACE_PUBLISH | MQTT_PLACE_SUBSCRIBE, MQTT_PLACE_PUBLISH,
	  1, VARINT_MAX, 0, "[5.0 3.8.2.1.2] subscription identifier of 0" },
	{ MQTT_PROP_SESSION_EXPIRY, MQTT_PROP_U32,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK | MQTT_PLACE_DISCONNECT, 0,
	  0, UINT32_MAX, 0, NULL },
	{ MQTT_PROP_ASSIGNED_CLIENT_ID, MQTT_PROP_UTF8,
	  MQTT_PLACE_CONNACK, 0, 0, 0, 0, NULL },
	{ MQTT_PROP_SERVER_KEEP_ALIVE, MQTT_PROP_U16,
	  MQTT_PLACE_CONNACK, 0, 0, UINT16_MAX, 0, NULL },
	{ MQTT_PROP_AUTH_METHOD, MQTT_PROP_UTF8,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK | MQTT_PLACE_AUTH, 0,
	  0, 0, 0, NULL },
	{ MQTT_PROP_AUTH_DATA, MQTT_PROP_BINARY,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK | MQTT_PLACE_AUTH, 0,
	  0, 0, 0, NULL },
	{ MQTT_PROP_REQUEST_PROBLEM_INFO, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNECT, 0, 0, 1, 0,
	  "[5.0 3.1.2.11.7] request problem information not 0 or 1" },
	{ MQTT_PROP_WILL_DELAY, MQTT_PROP_U32,
	  MQTT_PLACE_WILL, 0, 0, UINT32_MAX, 0, NULL },
	{ MQTT_PROP_REQUEST_RESPONSE_INFO, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNECT, 0, 0, 1, 0,
	  "[5.0 3.1.2.11.6] request response information not 0 or 1" },
	{ MQTT_PROP_RESPONSE_INFO, MQTT_PROP_UTF8,
	  MQTT_PLACE_CONNACK, 0, 0, 0, 0, NULL },
	{ MQTT_PROP_SERVER_REFERENCE, MQTT_PROP_UTF8,
	  MQTT_PLACE_CONNACK | MQTT_PLACE_DISCONNECT, 0, 0, 0, 0, NULL },
	{ MQTT_PROP_REASON_STRING, MQTT_PROP_UTF8,
	  MQTT_PLACE_CONNACK | P_PUBACKS | MQTT_PLACE_SUBACK |
	  MQTT_PLACE_UNSUBACK | MQTT_PLACE_DISCONNECT | MQTT_PLACE_AUTH, 0,
	  0, 0, 0, NULL },
	{ MQTT_PROP_RECEIVE_MAXIMUM, MQTT_PROP_U16,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK, 0, 1, UINT16_MAX, 0,
	  "[5.0 3.1.2.11.3] receive maximum of 0" },
	{ MQTT_PROP_TOPIC_ALIAS_MAXIMUM, MQTT_PROP_U16,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK, 0, 0, UINT16_MAX, 0, NULL },
	{ MQTT_PROP_TOPIC_ALIAS, MQTT_PROP_U16,
	  MQTT_PLACE_PUBLISH, 0, 1, UINT16_MAX, 0,
	  "[MQTT-3.3.2-8] topic alias of 0" },
	{ MQTT_PROP_MAXIMUM_QOS, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNACK, 0, 0, 1, 0,
	  "[5.0 3.2.2.3.4] maximum QoS not 0 or 1" },
	{ MQTT_PROP_RETAIN_AVAILABLE, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNACK, 0, 0, 1, 0,
	  "[5.0 3.2.2.3.5] retain available not 0 or 1" },
	{ MQTT_PROP_USER_PROPERTY, MQTT_PROP_PAIR, P_ALL, P_ALL,
	  0, 0, 0, NULL },
	{ MQTT_PROP_MAXIMUM_PACKET_SIZE, MQTT_PROP_U32,
	  MQTT_PLACE_CONNECT | MQTT_PLACE_CONNACK, 0, 1, UINT32_MAX, 0,
	  "[5.0 3.1.2.11.4] maximum packet size of 0" },
	{ MQTT_PROP_WILDCARD_SUB_AVAILABLE, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNACK, 0, 0, 1, 0,
	  "[5.0 3.2.2.3.11] wildcard subscription available not 0 or 1" },
	{ MQTT_PROP_SUB_ID_AVAILABLE, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNACK, 0, 0, 1, 0,
	  "[5.0 3.2.2.3.12] subscription identifiers available not 0 or 1" },
	{ MQTT_PROP_SHARED_SUB_AVAILABLE, MQTT_PROP_BYTE,
	  MQTT_PLACE_CONNACK, 0, 0, 1, 0,
	  "[5.0 3.2.2.3.13] shared subscription available not 0 or 1" },
};

const struct mqtt_prop_info *mqtt_prop_lookup(uint32_t id)
{
	size_t i;

	for (i = 0; i < sizeof(prop_table) / sizeof(prop_table[0]); i++)
		if (prop_table[i].id == id)
			return &prop_table[i];
	return NULL;
}

int mqtt_props_block(struct cursor *c, struct slice *block)
{
	uint32_t len;

	return cursor_varint(c, &len) && cursor_take(c, len, block);
}

void mqtt_props_init(struct mqtt_props_reader *r, struct slice block,
                     unsigned place)
{
	cursor_init(&r->c, block.ptr, block.len);
	r->place = place;
	r->seen = 0;
}

static enum mqtt_prop_result prop_fail(const char **why,
                                       enum mqtt_prop_result res,
                                       const char *msg)
{
	if (why != NULL)
		*why = msg;
	return res;
}

/* Reads the value of |out| according to its type; 0 if truncated. */
static int read_value(struct cursor *c, struct mqtt_property *out)
{
	uint8_t b;
	uint16_t w;

	switch (out->info->type) {
	case MQTT_PROP_BYTE:
		if (!cursor_u8(c, &b))
			return 0;
		out->num = b;
		return 1;
	case MQTT_PROP_U16:
		if (!cursor_u16(c, &w))
			return 0;
		out->num = w;
		return 1;
	case MQTT_PROP_U32:
		return cursor_u32(c, &out->num);
	case MQTT_PROP_VARINT:
		return cursor_varint(c, &out->num);
	case MQTT_PROP_UTF8:
	case MQTT_PROP_BINARY:
		return cursor_binary(c, &out->str);
	case MQTT_PROP_PAIR:
		return cursor_binary(c, &out->str) &&
		       cursor_binary(c, &out->value);
	}
	return 0;
}

enum mqtt_prop_result mqtt_props_next(struct mqtt_props_reader *r,
                                      struct mqtt_property *out,
                                      const char **why)
{
	const struct mqtt_prop_info *info;
	uint32_t id;
	uint64_t bit;

	out->info = NULL;
	out->id = 0;
	out->num = 0;
	out->str.ptr = NULL;
	out->str.len = 0;
	out->value = out->str;

	if (cursor_left(&r->c) == 0)
		return MQTT_PROP_END;

	/* The identifier is a Variable Byte Integer (2.2.2.2). */
	if (!cursor_varint(&r->c, &id))
		return prop_fail(why, MQTT_PROP_MALFORMED,
		                 "[5.0 2.2.2.2] malformed property identifier");
	info = mqtt_prop_lookup(id);
	/* [5.0 2.2.2.2] "A Control Packet which contains an Identifier which
	 * is not valid for its packet type ... is a Malformed Packet." */
	if (info == NULL)
		return prop_fail(why, MQTT_PROP_MALFORMED,
		                 "[5.0 2.2.2.2] unknown property identifier");
	if ((info->places & r->place) == 0)
		return prop_fail(why, MQTT_PROP_MALFORMED,
		                 "[5.0 2.2.2.2] property not valid in this packet");
	out->info = info;
	out->id = info->id;

	if (!read_value(&r->c, out))
		return prop_fail(why, MQTT_PROP_MALFORMED,
		                 "[5.0 2.2.2.2] property value truncated");

	/* [MQTT-1.5.4-1] [MQTT-1.5.4-2] UTF-8 strings and string pairs;
	 * binary data is not checked. */
	if (info->type == MQTT_PROP_UTF8 || info->type == MQTT_PROP_PAIR) {
		if (!mqtt_utf8_valid(out->str.ptr, out->str.len) ||
		    !mqtt_utf8_valid(out->value.ptr, out->value.len))
			return prop_fail(why, MQTT_PROP_MALFORMED,
			                 "[MQTT-1.5.4-1] property string is not valid UTF-8");
	}

	/* Each property's own section: "It is a Protocol Error to include
	 * the <property> more than once" (all but User Property, and the
	 * Subscription Identifier in a PUBLISH). */
	bit = (uint64_t)1 << info->id;
	if ((r->seen & bit) != 0 && (info->repeat_places & r->place) == 0)
		return prop_fail(why, MQTT_PROP_PROTOCOL_ERROR,
		                 "[5.0 2.2.2.2] property included more than once");
	r->seen |= bit;

	if (info->range_why != NULL && (out->num < info->min || out->num > info->max))
		return prop_fail(why, MQTT_PROP_PROTOCOL_ERROR, info->range_why);

	/* [MQTT-3.3.2-14] the Response Topic must not contain wildcards;
	 * it is a Topic Name, so also not empty [MQTT-4.7.3-1]. */
	if ((info->checks & MQTT_PROP_CHECK_TOPIC_NAME) != 0 &&
	    !mqtt_topic_name_valid(out->str))
		return prop_fail(why, MQTT_PROP_PROTOCOL_ERROR,
		                 "[MQTT-3.3.2-14] response topic has wildcards or is empty");
	return MQTT_PROP_OK;
}
