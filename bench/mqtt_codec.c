/*
 * Client-side MQTT encoder and decoder for mqtls-bench (mqtt_codec.h).
 *
 * Section numbers are those of MQTT 3.1.1 unless marked "5.0". Conformance
 * statement numbers that differ between the versions are given for both.
 */
#include "bench/mqtt_codec.h"

#include <string.h>

/* The largest Remaining Length a varint can carry (2.2.3, 5.0 1.5.5). */
#define REMAINING_MAX 268435455u

/* What an encoder needs before writing anything: the whole packet fits,
 * so it is never left half-written in the caller's buffer. */
static int begin_packet(struct outbuf *o, uint8_t first, size_t remaining)
{
	size_t hdr;

	if (o->failed || remaining > REMAINING_MAX)
		goto err;
	hdr = 1 + mqtt_varint_size((uint32_t)remaining);
	if (o->cap - o->len < hdr || o->cap - o->len - hdr < remaining)
		goto err;
	return outbuf_u8(o, first) && outbuf_varint(o, (uint32_t)remaining);
err:
	o->failed = 1;
	return 0;
}

static int fail(struct outbuf *o)
{
	o->failed = 1;
	return 0;
}

static int has_wildcard(struct slice s)
{
	if (s.len == 0)
		return 0;
	return memchr(s.ptr, '+', s.len) != NULL || memchr(s.ptr, '#', s.len) != NULL;
}

int mqttc_encode_connect(struct outbuf *o, const struct mqttc_connect *c)
{
	static const uint8_t name[] = { 0, 4, 'M', 'Q', 'T', 'T' };
	uint8_t flags = 0;
	size_t len;

	if (c->version != MQTTC_V311 && c->version != MQTTC_V5)
		return fail(o);
	if (c->client_id.len > 0xffff || c->username.len > 0xffff || c->password.len > 0xffff)
		return fail(o);
	/* [MQTT-3.1.2-22] 3.1.1: no password without a user name. */
	if (c->version == MQTTC_V311 && c->has_password && !c->has_username)
		return fail(o);

	len = sizeof(name) + 1 + 1 + 2 + 2 + c->client_id.len;
	if (c->version == MQTTC_V5)
		len += 1;                       /* empty properties */
	if (c->has_username) {
		flags |= 0x80;
		len += 2 + c->username.len;
	}
	if (c->has_password) {
		flags |= 0x40;
		len += 2 + c->password.len;
	}
	if (c->clean_start)
		flags |= 0x02;

	if (!begin_packet(o, MQTT_CONNECT << 4, len))
		return 0;
	outbuf_bytes(o, name, sizeof(name));
	outbuf_u8(o, c->version);
	outbuf_u8(o, flags);
	outbuf_u16(o, c->keepalive);
	if (c->version == MQTTC_V5)
		outbuf_varint(o, 0);
	outbuf_binary(o, c->client_id);
	if (c->has_username)
		outbuf_binary(o, c->username);
	if (c->has_password)
		outbuf_binary(o, c->password);
	return !o->failed;
}

int mqttc_encode_publish(struct outbuf *o, uint8_t version, const struct mqttc_publish *p)
{
	uint8_t first;
	size_t len;

	if (version != MQTTC_V311 && version != MQTTC_V5)
		return fail(o);
	if (p->qos > 2)                                 /* [MQTT-3.3.1-4] */
		return fail(o);
	if (p->dup && p->qos == 0)                      /* [MQTT-3.3.1-2] */
		return fail(o);
	if (p->qos > 0 && p->packet_id == 0)            /* [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3] */
		return fail(o);
	if (p->topic.len == 0 || p->topic.len > 0xffff) /* [MQTT-4.7.3-1] */
		return fail(o);
	if (has_wildcard(p->topic))                     /* [MQTT-3.3.2-2] */
		return fail(o);

	first = (uint8_t)(MQTT_PUBLISH << 4 | (p->dup ? 0x08 : 0) | p->qos << 1 |
	                  (p->retain ? 0x01 : 0));
	len = 2 + p->topic.len + (p->qos > 0 ? 2 : 0) + (version == MQTTC_V5 ? 1 : 0);
	if (p->payload.len > REMAINING_MAX - len)
		return fail(o);
	len += p->payload.len;

	if (!begin_packet(o, first, len))
		return 0;
	outbuf_binary(o, p->topic);
	if (p->qos > 0)
		outbuf_u16(o, p->packet_id);
	if (version == MQTTC_V5)
		outbuf_varint(o, 0);
	outbuf_bytes(o, p->payload.ptr, p->payload.len);
	return !o->failed;
}

int mqttc_encode_subscribe(struct outbuf *o, uint8_t version, uint16_t packet_id,
                           const struct slice *filters, const uint8_t *options, size_t n)
{
	size_t len, i;

	if (version != MQTTC_V311 && version != MQTTC_V5)
		return fail(o);
	if (n == 0 || packet_id == 0)       /* [MQTT-3.8.3-3], [MQTT-2.3.1-1] */
		return fail(o);
	len = 2 + (version == MQTTC_V5 ? 1 : 0);
	for (i = 0; i < n; i++) {
		uint8_t opt = options[i];

		if (filters[i].len == 0 || filters[i].len > 0xffff)   /* [MQTT-4.7.3-1] */
			return fail(o);
		/* QoS 3 is invalid in both; 3.1.1 reserves bits 2-7
		 * [MQTT-3.8.3-4], 5.0 bits 6-7 and Retain Handling 3. */
		if ((opt & 0x03) == 3)
			return fail(o);
		if (version == MQTTC_V311 && opt > 2)
			return fail(o);
		if (version == MQTTC_V5 && (opt > 0x3f || (opt & 0x30) == 0x30))
			return fail(o);
		if (len > REMAINING_MAX)
			return fail(o);
		len += 2 + filters[i].len + 1;
	}

	/* [MQTT-3.8.1-1] the SUBSCRIBE fixed header flags are 0010. */
	if (!begin_packet(o, MQTT_SUBSCRIBE << 4 | 0x02, len))
		return 0;
	outbuf_u16(o, packet_id);
	if (version == MQTTC_V5)
		outbuf_varint(o, 0);
	for (i = 0; i < n; i++) {
		outbuf_binary(o, filters[i]);
		outbuf_u8(o, options[i]);
	}
	return !o->failed;
}

int mqttc_encode_ack(struct outbuf *o, uint8_t version, uint8_t type,
                     uint16_t packet_id, uint8_t reason)
{
	uint8_t first;
	int long_form = version == MQTTC_V5 && reason != 0;

	if (version != MQTTC_V311 && version != MQTTC_V5)
		return fail(o);
	if (version == MQTTC_V311 && reason != 0)
		return fail(o);
	if (packet_id == 0)
		return fail(o);
	switch (type) {
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		first = (uint8_t)(type << 4);
		break;
	case MQTT_PUBREL:
		first = MQTT_PUBREL << 4 | 0x02;        /* [MQTT-3.6.1-1] */
		break;
	default:
		return fail(o);
	}
	if (!begin_packet(o, first, long_form ? 4 : 2))
		return 0;
	outbuf_u16(o, packet_id);
	if (long_form) {
		outbuf_u8(o, reason);
		outbuf_varint(o, 0);
	}
	return !o->failed;
}

int mqttc_encode_pingreq(struct outbuf *o)
{
	return begin_packet(o, MQTT_PINGREQ << 4, 0);
}

int mqttc_encode_disconnect(struct outbuf *o, uint8_t version, uint8_t reason)
{
	if (version != MQTTC_V311 && version != MQTTC_V5)
		return fail(o);
	if (version == MQTTC_V311 && reason != 0)
		return fail(o);
	/* 5.0 3.14.2.1: reason 0 and no properties may be sent as nothing. */
	if (reason == 0)
		return begin_packet(o, MQTT_DISCONNECT << 4, 0);
	if (!begin_packet(o, MQTT_DISCONNECT << 4, 2))
		return 0;
	outbuf_u8(o, reason);
	outbuf_varint(o, 0);
	return !o->failed;
}

/* ---- decoding ---- */

/* 5.0 2.2.2: a varint length, then that many bytes of properties. */
static int read_properties(struct cursor *c, struct slice *out)
{
	uint32_t len;

	return cursor_varint(c, &len) && cursor_take(c, len, out);
}

static int read_packet_id(struct cursor *c, uint16_t *id)
{
	/* [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]: never zero. */
	return cursor_u16(c, id) && *id != 0;
}

static int decode_connack(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                          const char **why)
{
	uint8_t ack_flags;

	*why = "CONNACK too short";
	if (!cursor_u8(c, &ack_flags) || !cursor_u8(c, &p->reason))
		return 0;
	*why = "CONNACK acknowledge flags reserved bits set";  /* 3.2.2.1, 5.0 [MQTT-3.2.2-1] */
	if (ack_flags & 0xfe)
		return 0;
	p->session_present = ack_flags & 0x01;
	/* [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6] */
	*why = "CONNACK refusal with session present";
	if (p->reason != 0 && p->session_present)
		return 0;
	*why = "CONNACK properties malformed";
	if (version == MQTTC_V5 && !read_properties(c, &p->properties))
		return 0;
	*why = "CONNACK has trailing bytes";
	return cursor_left(c) == 0;
}

static int decode_publish(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                          const char **why)
{
	p->qos = (p->flags >> 1) & 0x03;
	p->dup = (p->flags & 0x08) != 0;
	p->retain = p->flags & 0x01;
	*why = "PUBLISH with QoS 3";                    /* [MQTT-3.3.1-4] */
	if (p->qos == 3)
		return 0;
	*why = "PUBLISH QoS 0 with DUP";                /* [MQTT-3.3.1-2] */
	if (p->qos == 0 && p->dup)
		return 0;
	*why = "PUBLISH topic malformed";
	if (!cursor_utf8(c, &p->topic))
		return 0;
	*why = "PUBLISH topic has a wildcard";          /* [MQTT-3.3.2-2] */
	if (has_wildcard(p->topic))
		return 0;
	/* [MQTT-4.7.3-1]; 5.0 allows an empty topic with a Topic Alias. */
	*why = "PUBLISH topic empty";
	if (version == MQTTC_V311 && p->topic.len == 0)
		return 0;
	*why = "PUBLISH packet identifier missing or zero";
	if (p->qos > 0 && !read_packet_id(c, &p->packet_id))
		return 0;
	*why = "PUBLISH properties malformed";
	if (version == MQTTC_V5 && !read_properties(c, &p->properties))
		return 0;
	return cursor_take(c, cursor_left(c), &p->payload);
}

/* SUBACK (3.9) and UNSUBACK (3.11). */
static int decode_sub_unsub_ack(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                                const char **why)
{
	struct cursor codes;
	uint8_t rc;

	*why = "packet identifier missing or zero";
	if (!read_packet_id(c, &p->packet_id))
		return 0;
	*why = "properties malformed";
	if (version == MQTTC_V5 && !read_properties(c, &p->properties))
		return 0;
	if (p->type == MQTT_UNSUBACK && version == MQTTC_V311) {
		*why = "UNSUBACK has trailing bytes";   /* 3.11.1: remaining length 2 */
		return cursor_left(c) == 0;
	}
	*why = "acknowledgement without codes";  /* one per filter, and SUBSCRIBE has one */
	if (cursor_left(c) == 0 || !cursor_take(c, cursor_left(c), &p->codes))
		return 0;
	if (p->type == MQTT_SUBACK && version == MQTTC_V311) {
		/* [MQTT-3.9.3-2] 3.1.1 allows 0, 1, 2 and 0x80 only. */
		*why = "SUBACK return code reserved";
		cursor_init(&codes, p->codes.ptr, p->codes.len);
		while (cursor_u8(&codes, &rc))
			if (rc > 2 && rc != 0x80)
				return 0;
	}
	return 1;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7, 5.0 3.4.2.1 for the short forms). */
static int decode_ack(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                      const char **why)
{
	*why = "acknowledgement packet identifier missing or zero";
	if (!read_packet_id(c, &p->packet_id))
		return 0;
	if (version == MQTTC_V5 && cursor_left(c) > 0) {
		*why = "acknowledgement properties malformed";
		if (!cursor_u8(c, &p->reason))
			return 0;
		if (cursor_left(c) > 0 && !read_properties(c, &p->properties))
			return 0;
	}
	*why = "acknowledgement has trailing bytes";
	return cursor_left(c) == 0;
}

static int decode_disconnect(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                             const char **why)
{
	*why = "DISCONNECT from a 3.1.1 server";        /* 3.14: client to server only */
	if (version != MQTTC_V5)
		return 0;
	*why = "DISCONNECT properties malformed";
	if (cursor_left(c) > 0) {
		if (!cursor_u8(c, &p->reason))
			return 0;
		if (cursor_left(c) > 0 && !read_properties(c, &p->properties))
			return 0;
	}
	*why = "DISCONNECT has trailing bytes";
	return cursor_left(c) == 0;
}

/* The fixed header flags every type but PUBLISH must carry
 * (2.2.2 [MQTT-2.2.2-1], 5.0 2.1.3 [MQTT-2.1.3-1]). */
static int flags_valid(uint8_t type, uint8_t flags)
{
	if (type == MQTT_PUBLISH)
		return 1;
	if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
		return flags == 0x02;
	return flags == 0;
}

static int decode_body(uint8_t version, struct cursor *c, struct mqttc_packet *p,
                       const char **why)
{
	switch (p->type) {
	case MQTT_CONNACK:
		return decode_connack(version, c, p, why);
	case MQTT_PUBLISH:
		return decode_publish(version, c, p, why);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return decode_sub_unsub_ack(version, c, p, why);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return decode_ack(version, c, p, why);
	case MQTT_PINGRESP:
		*why = "PINGRESP with a body";
		return cursor_left(c) == 0;
	case MQTT_DISCONNECT:
		return decode_disconnect(version, c, p, why);
	default:
		*why = "packet type a server does not send";
		return 0;
	}
}

enum mqttc_decode_result mqttc_decode(uint8_t version, const uint8_t *buf, size_t len,
                                      size_t max_len, struct mqttc_packet *out,
                                      const char **why)
{
	const char *reason = "malformed";
	struct mqtt_frame f;
	struct cursor c;
	struct slice skip, body;

	memset(out, 0, sizeof(*out));
	switch (mqtt_frame_parse(buf, len, max_len, &f)) {
	case MQTT_FRAME_OK:
		break;
	case MQTT_FRAME_NEED_MORE:
		return MQTTC_DECODE_NEED_MORE;
	case MQTT_FRAME_TOO_LARGE:
		reason = "packet larger than the limit";
		goto err;
	case MQTT_FRAME_MALFORMED:
	default:
		reason = "remaining length malformed";
		goto err;
	}
	if (f.total_len > len)
		return MQTTC_DECODE_NEED_MORE;

	out->type = f.type;
	out->flags = f.flags;
	out->len = f.total_len;
	reason = "fixed header flags invalid";
	if (!flags_valid(f.type, f.flags))
		goto err;
	cursor_init(&c, buf, len);
	if (!cursor_take(&c, f.header_len, &skip) || !cursor_take(&c, f.remaining_len, &body))
		goto err;
	cursor_init(&c, body.ptr, body.len);
	if (!decode_body(version, &c, out, &reason))
		goto err;
	return MQTTC_DECODE_COMPLETE;
err:
	if (why != NULL)
		*why = reason;
	return MQTTC_DECODE_MALFORMED;
}
