/*
 * SUBSCRIBE / UNSUBSCRIBE parsing and the filtered re-write (subscribe.h).
 *
 * One function reads and checks one payload entry; the parser runs it over
 * the whole payload once, and the iterator runs it again to hand entries
 * out, so the two can never disagree about where an entry ends.
 */
#include <string.h>

#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "mqtt/properties.h"
#include "mqtt/subscribe.h"
#include "mqtt/topic.h"

/* Subscription Options (5.0 3.8.3.1; 3.1.1 has only the QoS bits). */
#define OPT_QOS 0x03u
#define OPT_NO_LOCAL 0x04u
#define OPT_RETAIN_HANDLING 0x30u
#define OPT_RESERVED_V5 0xc0u
#define OPT_RESERVED_V3 0xfcu

struct parse {
	struct cursor c;
	uint8_t type;
	int v5;
	const char *why;
};

static enum mqtt_parse_result fail(struct parse *p, enum mqtt_parse_result r, const char *why)
{
	p->why = why;
	return r;
}

/* The filter, its shared-subscription split and its validity. */
static enum mqtt_parse_result read_filter(struct parse *p, struct mqtt_sub_entry *e)
{
	int sub = p->type == MQTT_SUBSCRIBE;

	if (!cursor_binary(&p->c, &e->filter))
		return fail(p, MQTT_PARSE_MALFORMED, sub ? "[MQTT-3.8.3-1] topic filter truncated"
		                                         : "[MQTT-3.10.3-1] topic filter truncated");
	/* [MQTT-3.8.3-1] [MQTT-3.10.3-1] UTF-8 Encoded Strings, so also no
	 * U+0000 [MQTT-4.7.3-2]. */
	if (!mqtt_utf8_valid(e->filter.ptr, e->filter.len))
		return fail(p, MQTT_PARSE_MALFORMED, sub ? "[MQTT-3.8.3-1] topic filter is not valid UTF-8"
		                                         : "[MQTT-3.10.3-1] topic filter is not valid UTF-8");
	e->acl_filter = e->filter;
	switch (mqtt_topic_shared_split(e->filter, &e->share_name, &e->acl_filter)) {
	case MQTT_SHARE_OK:
		e->shared = 1;
		break;
	case MQTT_SHARE_INVALID:
		/* 5.0 defines "$share/" (4.8.2); before 5.0 such a filter is an
		 * ordinary one, checked below like any other. */
		if (p->v5)
			return fail(p, MQTT_PARSE_PROTOCOL_ERROR,
			            "[MQTT-4.8.2-1] [MQTT-4.8.2-2] malformed shared subscription");
		e->acl_filter = e->filter;
		break;
	case MQTT_SHARE_NONE:
		break;
	}
	/* [MQTT-4.7.3-1] not empty, [MQTT-4.7.1-2] '#' last and alone,
	 * [MQTT-4.7.1-3] '+' alone in its level. */
	if (!mqtt_topic_filter_valid(e->acl_filter))
		return fail(p, MQTT_PARSE_MALFORMED,
		            e->filter.len == 0 ? "[MQTT-4.7.3-1] empty topic filter"
		                               : "[MQTT-4.7.1-2] [MQTT-4.7.1-3] wildcard not alone in its level or '#' not last");
	return MQTT_PARSE_OK;
}

/* 3.8.3.1 Subscription Options. */
static enum mqtt_parse_result read_options(struct parse *p, struct mqtt_sub_entry *e)
{
	if (!cursor_u8(&p->c, &e->options))
		return fail(p, MQTT_PARSE_MALFORMED, "[3.8.3] subscription options missing");
	e->qos = e->options & OPT_QOS;
	if (!p->v5) {
		/* [MQTT-3-8.3-4] reserved bits 0 and QoS 0, 1 or 2. */
		if ((e->options & OPT_RESERVED_V3) != 0 || e->qos == 3)
			return fail(p, MQTT_PARSE_MALFORMED,
			            "[MQTT-3-8.3-4] reserved bits set or QoS 3 in a SUBSCRIBE");
		return MQTT_PARSE_OK;
	}
	/* [MQTT-3.8.3-5] reserved bits 6 and 7. */
	if ((e->options & OPT_RESERVED_V5) != 0)
		return fail(p, MQTT_PARSE_MALFORMED, "[MQTT-3.8.3-5] reserved subscription option bits set");
	/* [5.0 3.8.3.1] "It is a Protocol Error if the Maximum QoS field has
	 * the value 3", and "to send a Retain Handling value of 3". */
	if (e->qos == 3)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, "[5.0 3.8.3.1] maximum QoS 3");
	if ((e->options & OPT_RETAIN_HANDLING) == OPT_RETAIN_HANDLING)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, "[5.0 3.8.3.1] retain handling 3");
	/* [MQTT-3.8.3-4] No Local on a Shared Subscription. */
	if (e->shared && (e->options & OPT_NO_LOCAL) != 0)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, "[MQTT-3.8.3-4] no local on a shared subscription");
	return MQTT_PARSE_OK;
}

static enum mqtt_parse_result read_entry(struct parse *p, struct mqtt_sub_entry *e)
{
	enum mqtt_parse_result r;

	memset(e, 0, sizeof(*e));
	if ((r = read_filter(p, e)) != MQTT_PARSE_OK)
		return r;
	if (p->type == MQTT_SUBSCRIBE)
		return read_options(p, e);
	return MQTT_PARSE_OK;
}

/* 5.0 3.8.2.1 / 3.10.2.1: SUBSCRIBE and UNSUBSCRIBE properties. */
static enum mqtt_parse_result read_properties(struct parse *p, struct mqtt_subscribe *out)
{
	struct mqtt_props_reader r;
	struct mqtt_property prop;
	enum mqtt_prop_result res;
	const char *why = NULL;

	if (!mqtt_props_block(&p->c, &out->properties))
		return fail(p, MQTT_PARSE_MALFORMED, "[5.0 3.8.2.1] property length malformed or too long");
	mqtt_props_init(&r, out->properties,
	                p->type == MQTT_SUBSCRIBE ? MQTT_PLACE_SUBSCRIBE : MQTT_PLACE_UNSUBSCRIBE);
	while ((res = mqtt_props_next(&r, &prop, &why)) == MQTT_PROP_OK) {
		if (prop.id == MQTT_PROP_SUBSCRIPTION_ID) {
			out->has_subscription_id = 1;
			out->subscription_id = prop.num;
		}
	}
	if (res == MQTT_PROP_PROTOCOL_ERROR)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, why);
	if (res != MQTT_PROP_END)
		return fail(p, MQTT_PARSE_MALFORMED, why);
	return MQTT_PARSE_OK;
}

static enum mqtt_parse_result parse(struct parse *p, const uint8_t *pkt, size_t len,
                                    struct mqtt_subscribe *out)
{
	struct mqtt_frame f;
	struct slice skip;
	struct mqtt_sub_entry e;
	enum mqtt_parse_result r;
	int sub;

	/* Exactly one packet: the remaining length matches the bytes given
	 * (2.2.3 / 5.0 2.1.4) and is a minimal varint [MQTT-1.5.5-1]. */
	if (mqtt_frame_parse(pkt, len, len, &f) != MQTT_FRAME_OK || f.total_len != len)
		return fail(p, MQTT_PARSE_MALFORMED, "[2.2.3] remaining length malformed or not matching the packet");
	if (f.type != MQTT_SUBSCRIBE && f.type != MQTT_UNSUBSCRIBE)
		return fail(p, MQTT_PARSE_MALFORMED, "[2.1.2] not a SUBSCRIBE or UNSUBSCRIBE packet");
	sub = f.type == MQTT_SUBSCRIBE;
	p->type = f.type;
	out->type = f.type;
	out->total_len = f.total_len;
	/* [MQTT-3.8.1-1] [MQTT-3.10.1-1] fixed header flags 0010. */
	if (f.flags != 0x2)
		return fail(p, MQTT_PARSE_MALFORMED, sub ? "[MQTT-3.8.1-1] SUBSCRIBE fixed header flags not 0010"
		                                         : "[MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags not 0010");
	cursor_init(&p->c, pkt, len);
	(void)cursor_take(&p->c, f.header_len, &skip);

	if (!cursor_u16(&p->c, &out->packet_id))
		return fail(p, MQTT_PARSE_MALFORMED, "[2.3.1] packet identifier missing");
	/* 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]: non-zero. */
	if (out->packet_id == 0)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR, p->v5 ? "[MQTT-2.2.1-3] packet identifier 0"
		                                                : "[MQTT-2.3.1-1] packet identifier 0");
	if (p->v5 && (r = read_properties(p, out)) != MQTT_PARSE_OK)
		return r;

	(void)cursor_take(&p->c, cursor_left(&p->c), &out->payload);
	cursor_init(&p->c, out->payload.ptr, out->payload.len);
	/* SUBSCRIBE 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2]; UNSUBSCRIBE
	 * [MQTT-3.10.3-2] (same number in both): at least one filter. */
	if (out->payload.len == 0)
		return fail(p, MQTT_PARSE_PROTOCOL_ERROR,
		            !sub ? "[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter"
		                 : p->v5 ? "[MQTT-3.8.3-2] SUBSCRIBE without a topic filter"
		                         : "[MQTT-3.8.3-3] SUBSCRIBE without a topic filter");
	while (cursor_left(&p->c) > 0) {
		if ((r = read_entry(p, &e)) != MQTT_PARSE_OK)
			return r;
		out->count++;
	}
	return MQTT_PARSE_OK;
}

enum mqtt_parse_result mqtt_subscribe_parse(const uint8_t *pkt, size_t len, uint8_t version,
                                            struct mqtt_subscribe *out, const char **why)
{
	struct parse p;
	enum mqtt_parse_result r;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.v5 = version == MQTT_V5;
	out->version = version;
	if (pkt == NULL)
		len = 0;
	r = parse(&p, pkt, len, out);
	if (r != MQTT_PARSE_OK) {
		out->count = 0;
		out->payload.ptr = NULL;
		out->payload.len = 0;
	}
	if (why != NULL)
		*why = r == MQTT_PARSE_OK ? NULL : p.why;
	return r;
}

void mqtt_sub_iter_init(struct mqtt_sub_iter *it, const struct mqtt_subscribe *s)
{
	cursor_init(&it->c, s->payload.ptr, s->payload.len);
	it->type = s->type;
	it->version = s->version;
}

int mqtt_sub_iter_next(struct mqtt_sub_iter *it, struct mqtt_sub_entry *e)
{
	struct parse p;

	if (cursor_left(&it->c) == 0)
		return 0;
	memset(&p, 0, sizeof(p));
	p.c = it->c;
	p.type = it->type;
	p.v5 = it->version == MQTT_V5;
	/* The parser checked every entry already; a failure here means the
	 * iterator was given something that was not parsed. */
	if (read_entry(&p, e) != MQTT_PARSE_OK) {
		cursor_init(&it->c, NULL, 0);
		return 0;
	}
	it->c = p.c;
	return 1;
}

/* The remaining length of the subset, or 0 if nothing is kept. */
static size_t subset_remaining(const struct mqtt_subscribe *s, const uint8_t *keep)
{
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;
	size_t n = 2, i = 0, kept = 0;

	if (s->type != MQTT_SUBSCRIBE || keep == NULL)
		return 0;
	if (s->version == MQTT_V5)
		n += mqtt_varint_size((uint32_t)s->properties.len) + s->properties.len;
	mqtt_sub_iter_init(&it, s);
	while (mqtt_sub_iter_next(&it, &e)) {
		if (i < s->count && keep[i]) {
			n += 2 + e.filter.len + 1;
			kept++;
		}
		i++;
	}
	return kept > 0 ? n : 0;
}

size_t mqtt_subscribe_subset_len(const struct mqtt_subscribe *s, const uint8_t *keep)
{
	size_t rem = subset_remaining(s, keep), vs;

	if (rem == 0 || (vs = mqtt_varint_size((uint32_t)rem)) == 0)
		return 0;
	return 1 + vs + rem;
}

size_t mqtt_subscribe_write_subset(const struct mqtt_subscribe *s, const uint8_t *keep,
                                   uint8_t *out, size_t cap)
{
	struct mqtt_sub_iter it;
	struct mqtt_sub_entry e;
	struct outbuf o;
	size_t rem = subset_remaining(s, keep), i = 0;

	if (rem == 0)
		return 0;
	outbuf_init(&o, out, cap);
	outbuf_u8(&o, (MQTT_SUBSCRIBE << 4) | 0x2);   /* [MQTT-3.8.1-1] */
	outbuf_varint(&o, (uint32_t)rem);
	outbuf_u16(&o, s->packet_id);
	if (s->version == MQTT_V5) {
		outbuf_varint(&o, (uint32_t)s->properties.len);
		outbuf_bytes(&o, s->properties.ptr, s->properties.len);
	}
	mqtt_sub_iter_init(&it, s);
	while (mqtt_sub_iter_next(&it, &e)) {
		if (i < s->count && keep[i]) {
			outbuf_binary(&o, e.filter);
			outbuf_u8(&o, e.options);
		}
		i++;
	}
	return o.failed ? 0 : o.len;
}
