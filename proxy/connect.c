/*
 * The CONNECT stage: frames the client's first packet at the front of to_up
 * and parses it, once. A bad first packet is answered with the CONNACK its
 * version understands, or a close where that version has no code; the
 * refusal is logged here, the answer is sent by the hub.
 *
 * The CONNECT and anything the client pipelines behind it stay in to_up, in
 * order; nothing reaches the broker before the whole CONNECT was accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "mqtt/packet.h"
#include "proxy/log.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"

static enum connect_step refuse(struct session *s, int refusal, const char *reason, const char *detail,
                                int *out_refusal, const char **out_reason)
{
	session_log_refusal(s, reason, detail);
	*out_refusal = refusal;
	*out_reason = reason;
	return CONNECT_REFUSE;
}

/* The version a refusal is answered in: what the client claimed, if it is
 * one we speak; 0 (no CONNACK) otherwise. */
static uint8_t answerable(uint8_t v)
{
	return (v >= MQTT_V31 && v <= MQTT_V5) ? v : 0;
}

static enum connect_step refuse_parse_error(struct session *s, enum mqtt_connect_error e, const char *why,
                                            int *refusal, const char **reason)
{
	switch (e) {
	case MQTT_CONNECT_BAD_PROTOCOL:
		/* A level we do not speak gets the 3.1.1 answer (code 1), which
		 * every version's client can read, unless it claimed 5.0. */
		if (s->mqtt_version != MQTT_V5)
			s->mqtt_version = MQTT_V311;
		return refuse(s, MQTT_REFUSE_UNSUPPORTED_VERSION, "bad_protocol", why, refusal, reason);
	case MQTT_CONNECT_BAD_CLIENT_ID:
		return refuse(s, MQTT_REFUSE_BAD_CLIENT_ID, "bad_client_id", why, refusal, reason);
	case MQTT_CONNECT_PROTOCOL_ERROR:
		return refuse(s, MQTT_REFUSE_PROTOCOL_ERROR, "malformed_connect", why, refusal, reason);
	default:
		return refuse(s, MQTT_REFUSE_MALFORMED, "malformed_connect", why, refusal, reason);
	}
}

static void keep_client_id(struct session *s, const struct mqtt_connect *c)
{
	char buf[200];

	log_escape(buf, sizeof(buf), c->client_id.ptr, c->client_id.len);
	free(s->client_id);
	s->client_id = strdup(buf);
}

enum connect_step connect_parse(struct session *s, struct mqtt_connect *out, const uint8_t **pkt,
                                size_t *len_out, int *refusal, const char **reason)
{
	size_t len = bufq_len(&s->to_up);
	size_t hlen = len < MQTT_MAX_HEADER_LEN ? len : MQTT_MAX_HEADER_LEN;
	struct mqtt_frame f;
	enum mqtt_frame_result fr;
	enum mqtt_connect_error ce;
	const char *why = NULL;
	const uint8_t *p;

	if (len == 0)
		return CONNECT_NEED_MORE;
	p = bufq_pullup(&s->to_up, session_blocks(s), hlen);
	if (p == NULL)
		return CONNECT_OOM;
	/* [MQTT-3.1.0-1] the first packet from the client must be CONNECT. */
	if ((p[0] >> 4) != MQTT_CONNECT)
		return refuse(s, MQTT_REFUSE_PROTOCOL_ERROR, "not_connect", NULL, refusal, reason);
	fr = mqtt_frame_parse(p, hlen, s->w->proxy->max_connect_size, &f);
	if (fr == MQTT_FRAME_NEED_MORE)
		return CONNECT_NEED_MORE;
	if (fr == MQTT_FRAME_MALFORMED)
		return refuse(s, MQTT_REFUSE_MALFORMED, "malformed_connect", "bad remaining length", refusal,
		              reason);
	if (fr == MQTT_FRAME_TOO_LARGE) {
		size_t peek = len < 64 ? len : 64;
		uint8_t v = 0;

		const uint8_t *head = bufq_pullup(&s->to_up, session_blocks(s), peek);

		if (head != NULL)
			(void)mqtt_connect_peek_version(head, peek, &v);
		s->mqtt_version = answerable(v);
		return refuse(s, MQTT_REFUSE_PACKET_TOO_LARGE, "connect_too_large", NULL, refusal, reason);
	}
	if (len < f.total_len)
		return CONNECT_NEED_MORE;
	p = bufq_pullup(&s->to_up, session_blocks(s), f.total_len);
	if (p == NULL)
		return CONNECT_OOM;
	ce = mqtt_connect_parse(p, f.total_len, out, &why);
	if (ce != MQTT_CONNECT_OK) {
		uint8_t v = out->version;

		if (v == 0)
			(void)mqtt_connect_peek_version(p, f.total_len, &v);
		s->mqtt_version = answerable(v);
		return refuse_parse_error(s, ce, why, refusal, reason);
	}
	s->mqtt_version = out->version;
	keep_client_id(s, out);
	*pkt = p;
	*len_out = f.total_len;
	return CONNECT_OK;
}
