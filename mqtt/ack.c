/*
 * PUBACK-family and SUBACK writers and the SUBACK merge (ack.h).
 */
#include <string.h>

#include "mqtt/ack.h"
#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "mqtt/properties.h"

size_t mqtt_ack_write(uint8_t type, uint8_t version, uint16_t packet_id, uint8_t reason,
                      uint8_t *out, size_t cap)
{
	struct outbuf o;
	int v5 = version == MQTT_V5;

	if (type != MQTT_PUBACK && type != MQTT_PUBREC && type != MQTT_PUBCOMP)
		return 0;
	outbuf_init(&o, out, cap);
	/* 3.4.1, 3.5.1, 3.7.1: fixed header flags 0. */
	outbuf_u8(&o, (uint8_t)(type << 4));
	/* 5.0 3.4.2.1: the Reason Code may be left out only when it is 0x00;
	 * with a remaining length under 4 there is no Property Length. */
	outbuf_varint(&o, v5 ? 3 : 2);
	outbuf_u16(&o, packet_id);
	if (v5)
		outbuf_u8(&o, reason);
	return o.failed ? 0 : o.len;
}

enum mqtt_parse_result mqtt_suback_parse(const uint8_t *pkt, size_t len, uint8_t version,
                                         struct mqtt_suback *out, const char **why)
{
	struct mqtt_frame f;
	struct cursor c;
	struct slice skip;
	const char *w = NULL;
	enum mqtt_parse_result r = MQTT_PARSE_MALFORMED;

	memset(out, 0, sizeof(*out));
	if (pkt == NULL)
		len = 0;
	if (mqtt_frame_parse(pkt, len, len, &f) != MQTT_FRAME_OK || f.total_len != len) {
		w = "[2.2.3] remaining length malformed or not matching the packet";
		goto err;
	}
	/* 3.9.1: SUBACK, reserved flags 0. */
	if (f.type != MQTT_SUBACK || f.flags != 0) {
		w = "[3.9.1] not a SUBACK or flags not 0";
		goto err;
	}
	cursor_init(&c, pkt, len);
	(void)cursor_take(&c, f.header_len, &skip);
	if (!cursor_u16(&c, &out->packet_id)) {
		w = "[3.9.2] packet identifier missing";
		goto err;
	}
	if (version == MQTT_V5) {
		struct mqtt_props_reader pr;
		struct mqtt_property prop;
		enum mqtt_prop_result res;

		if (!mqtt_props_block(&c, &out->properties)) {
			w = "[5.0 3.9.2.1] property length malformed or too long";
			goto err;
		}
		mqtt_props_init(&pr, out->properties, MQTT_PLACE_SUBACK);
		while ((res = mqtt_props_next(&pr, &prop, &w)) == MQTT_PROP_OK)
			;
		if (res != MQTT_PROP_END) {
			r = res == MQTT_PROP_PROTOCOL_ERROR ? MQTT_PARSE_PROTOCOL_ERROR : MQTT_PARSE_MALFORMED;
			goto err;
		}
	}
	/* [MQTT-3.8.4-5] (5.0 [MQTT-3.8.4-6]): a code for each filter, and a
	 * SUBSCRIBE has at least one. */
	(void)cursor_take(&c, cursor_left(&c), &out->codes);
	if (out->codes.len == 0) {
		r = MQTT_PARSE_PROTOCOL_ERROR;
		w = "[MQTT-3.8.4-5] SUBACK without a return code";
		goto err;
	}
	if (why != NULL)
		*why = NULL;
	return MQTT_PARSE_OK;
err:
	memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = w;
	return r;
}

int mqtt_suback_merge(const uint8_t *keep, size_t n, struct slice broker_codes, uint8_t deny,
                      uint8_t *codes)
{
	size_t i, j = 0;

	for (i = 0; i < n; i++) {
		if (!keep[i]) {
			codes[i] = deny;
			continue;
		}
		if (j >= broker_codes.len)
			return 0;
		codes[i] = broker_codes.ptr[j++];
	}
	return j == broker_codes.len;
}

size_t mqtt_suback_write(uint8_t version, uint16_t packet_id, struct slice props,
                         const uint8_t *codes, size_t n, uint8_t *out, size_t cap)
{
	struct outbuf o;
	size_t rem = 2 + n;
	int v5 = version == MQTT_V5;

	if (n == 0)
		return 0;
	if (v5) {
		size_t vs = mqtt_varint_size((uint32_t)props.len);

		if (vs == 0 || props.len > UINT32_MAX)
			return 0;
		rem += vs + props.len;
	}
	if (rem > 268435455u)
		return 0;
	outbuf_init(&o, out, cap);
	outbuf_u8(&o, MQTT_SUBACK << 4);
	outbuf_varint(&o, (uint32_t)rem);
	outbuf_u16(&o, packet_id);
	if (v5) {
		outbuf_varint(&o, (uint32_t)props.len);
		outbuf_bytes(&o, props.ptr, props.len);
	}
	outbuf_bytes(&o, codes, n);
	return o.failed ? 0 : o.len;
}
