/*
 * The client->broker PUBLISH header parser (publish.h).
 *
 * The header is read in wire order from a window of the packet: the bytes
 * given, cut at the packet's end. A field that runs past the window is
 * either past the packet (the packet is malformed) or merely not here yet
 * (NEED_MORE, with the offset where that field ends).
 */
#include <string.h>

#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "mqtt/properties.h"
#include "mqtt/publish.h"
#include "mqtt/topic.h"

struct parse {
	struct cursor c;      /* over the window */
	size_t window;        /* bytes of the packet visible */
	size_t total;         /* bytes the packet has */
	int v5;
	struct mqtt_publish *out;
	const char *why;
};

static enum mqtt_parse_result fail(struct parse *p, enum mqtt_parse_result r, const char *why)
{
	p->why = why;
	return r;
}

static size_t pos(const struct parse *p)
{
	return p->window - cursor_left(&p->c);
}

/* A field of |n| bytes at the current position does not fit the window. */
static enum mqtt_parse_result short_field(struct parse *p, size_t n, const char *why)
{
	size_t end = pos(p) + n;

	if (end > p->total)
		return fail(p, MQTT_PARSE_MALFORMED, why);
	p->out->need = end;
	return MQTT_PARSE_NEED_MORE;
}

/* Reads a 16-bit length and that many bytes (a UTF-8 string's shape). */
static enum mqtt_parse_result read_topic(struct parse *p)
{
	uint16_t len;

	if (cursor_left(&p->c) < 2)
		return short_field(p, 2, "[MQTT-3.3.2-1] topic name missing or truncated");
	(void)cursor_u16(&p->c, &len);
	if (cursor_left(&p->c) < len)
		return short_field(p, len, "[MQTT-3.3.2-1] topic name missing or truncated");
	(void)cursor_take(&p->c, len, &p->out->topic);
	/* [MQTT-3.3.2-1] a UTF-8 Encoded String; this also refuses U+0000
	 * [MQTT-4.7.3-2]. */
	if (!mqtt_utf8_valid(p->out->topic.ptr, p->out->topic.len))
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-3.3.2-1] topic name is not valid UTF-8");
	/* [MQTT-3.3.2-2] no wildcard characters in a Topic Name. */
	if (p->out->topic.len > 0 && !mqtt_topic_name_valid(p->out->topic))
		return fail(p, MQTT_PARSE_TOPIC_INVALID, "[MQTT-3.3.2-2] topic name contains a wildcard");
	/* [MQTT-4.7.3-1] at least one character; 5.0 lets a Topic Alias
	 * stand for it (checked once the properties are read). */
	if (p->out->topic.len == 0 && !p->v5)
		return fail(p, MQTT_PARSE_TOPIC_INVALID, "[MQTT-4.7.3-1] empty topic name");
	return MQTT_PARSE_OK;
}

static enum mqtt_parse_result read_packet_id(struct parse *p)
{
	if (p->out->qos == 0)
		return MQTT_PARSE_OK;
	if (cursor_left(&p->c) < 2)
		return short_field(p, 2, "[2.3.1] packet identifier missing or truncated");
	(void)cursor_u16(&p->c, &p->out->packet_id);
	/* 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]: non-zero. */
	if (p->out->packet_id == 0)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR,
		            p->v5 ? "[MQTT-2.2.1-3] packet identifier 0"
		                  : "[MQTT-2.3.1-1] packet identifier 0");
	return MQTT_PARSE_OK;
}

/* 5.0 2.2.2.1: the Property Length varint, then that many bytes. */
static enum mqtt_parse_result read_property_block(struct parse *p, struct slice *block)
{
	struct cursor t = p->c;
	size_t left = cursor_left(&p->c), i;
	uint32_t len;
	uint8_t b;

	/* Is the varint complete in the window? Its last byte has the high
	 * bit clear, within four bytes (1.5.5). If every byte here has it
	 * set, exactly one more byte is needed: asking for more could make a
	 * caller's size limit refuse a header that fits it. */
	for (i = 0; i < 4 && i < left; i++) {
		(void)cursor_u8(&t, &b);
		if ((b & 0x80) == 0)
			break;
	}
	if (i < 4 && i == left) {
		size_t end = pos(p) + left + 1;

		if (end > p->total)   /* the packet ends inside the varint */
			return fail(p, MQTT_PARSE_MALFORMED, "[5.0 3.3.2.3.1] property length truncated");
		p->out->need = end;
		return MQTT_PARSE_NEED_MORE;
	}
	if (!cursor_varint(&p->c, &len))
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-1.5.5-1] property length malformed");
	if (cursor_left(&p->c) < len)
		return short_field(p, len, "[5.0 3.3.2.3.1] properties run past the packet");
	(void)cursor_take(&p->c, len, block);
	return MQTT_PARSE_OK;
}

/* 5.0 3.3.2.3: checked by the property table; the alias is kept. */
static enum mqtt_parse_result read_properties(struct parse *p)
{
	struct mqtt_publish *out = p->out;
	struct mqtt_props_reader r;
	struct mqtt_property prop;
	enum mqtt_prop_result res;
	enum mqtt_parse_result e;
	const char *why = NULL;

	if ((e = read_property_block(p, &out->properties)) != MQTT_PARSE_OK)
		return e;
	mqtt_props_init(&r, out->properties, MQTT_PLACE_PUBLISH);
	while ((res = mqtt_props_next(&r, &prop, &why)) == MQTT_PROP_OK) {
		/* [MQTT-3.3.4-6] a Subscription Identifier is for the
		 * server's PUBLISH only. */
		if (prop.id == MQTT_PROP_SUBSCRIPTION_ID)
			return fail(p, MQTT_PARSE_PROTOCOL_ERROR,
			            "[MQTT-3.3.4-6] subscription identifier in a client's PUBLISH");
		if (prop.id == MQTT_PROP_TOPIC_ALIAS) {
			out->has_topic_alias = 1;
			out->topic_alias = (uint16_t)prop.num;
		}
	}
	if (res == MQTT_PROP_PROTOCOL_ERROR)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, why);
	if (res != MQTT_PROP_END)
		return fail(p, MQTT_PARSE_MALFORMED, why);
	/* [5.0 3.3.2.3.4] "It is a Protocol Error if the Topic Name is zero
	 * length and there is no Topic Alias." */
	if (out->topic.len == 0 && !out->has_topic_alias)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR,
		            "[5.0 3.3.2.3.4] empty topic name without a topic alias");
	return MQTT_PARSE_OK;
}

static enum mqtt_parse_result parse(struct parse *p, const uint8_t *bytes, size_t avail)
{
	struct mqtt_publish *out = p->out;
	struct mqtt_frame f;
	struct slice skip;
	enum mqtt_parse_result e;

	switch (mqtt_frame_parse(bytes, avail, SIZE_MAX, &f)) {
	case MQTT_FRAME_OK:
		break;
	case MQTT_FRAME_NEED_MORE:
		/* At most five header bytes; one more is the honest ask. */
		out->need = avail < 2 ? 2 : avail + 1;
		return MQTT_PARSE_NEED_MORE;
	default:
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-1.5.5-1] remaining length malformed");
	}
	if (f.type != MQTT_PUBLISH)
		return fail(p, MQTT_PARSE_MALFORMED, "[2.1.2] not a PUBLISH packet");
	out->dup = (f.flags >> 3) & 1;
	out->qos = (f.flags >> 1) & 3;
	out->retain = f.flags & 1;
	out->total_len = f.total_len;
	/* [MQTT-3.3.1-4] both QoS bits set. */
	if (out->qos == 3)
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-3.3.1-4] PUBLISH with QoS 3");
	/* [MQTT-3.3.1-2] DUP is 0 for every QoS 0 message. */
	if (out->dup && out->qos == 0)
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH");

	p->total = f.total_len;
	p->window = avail < f.total_len ? avail : f.total_len;
	cursor_init(&p->c, bytes, p->window);
	(void)cursor_take(&p->c, f.header_len, &skip);

	if ((e = read_topic(p)) != MQTT_PARSE_OK || (e = read_packet_id(p)) != MQTT_PARSE_OK)
		return e;
	if (p->v5 && (e = read_properties(p)) != MQTT_PARSE_OK)
		return e;
	out->header_len = pos(p);
	return MQTT_PARSE_OK;
}

enum mqtt_parse_result mqtt_publish_parse(const uint8_t *bytes, size_t avail, uint8_t version,
                                          struct mqtt_publish *out, const char **why)
{
	struct parse p;
	enum mqtt_parse_result e;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.out = out;
	p.v5 = version == MQTT_V5;
	if (bytes == NULL)
		avail = 0;
	e = parse(&p, bytes, avail);
	if (why != NULL)
		*why = e == MQTT_PARSE_OK || e == MQTT_PARSE_NEED_MORE ? NULL : p.why;
	return e;
}
