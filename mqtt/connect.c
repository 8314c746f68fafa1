/*
 * The strict CONNECT parser (connect.h) for MQTT 3.1, 3.1.1 and 5.0.
 *
 * Fields are read in wire order, one small function each; every check
 * names the normative statement it enforces. Where 3.1.1 and 5.0 number
 * the same rule differently both are given, 3.1.1 first. MQTT 3.1 has no
 * numbered statements; it follows the 3.1.1 rules except where noted.
 */
#include <string.h>

#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "mqtt/properties.h"
#include "mqtt/topic.h"

/* Parsing state: the cursor over the packet, the result being filled
 * (borrowed from the caller), and the why-string of the first failure. */
struct parse {
	struct cursor c;
	struct mqtt_connect *out;
	int v5;
	const char *why;
};

static enum mqtt_connect_error fail(struct parse *p, enum mqtt_connect_error e,
                                    const char *why)
{
	p->why = why;
	return e;
}

/* Picks the wording of a rule for the packet's version. */
static const char *rule(const struct parse *p, const char *v3, const char *v5)
{
	return p->v5 ? v5 : v3;
}

/* 3.1.2.1 Protocol Name and 3.1.2.2 Protocol Level. */
static enum mqtt_connect_error read_protocol(struct parse *p)
{
	struct slice name;
	uint8_t level;
	int mqtt, mqisdp;

	if (!cursor_binary(&p->c, &name) || !cursor_u8(&p->c, &level))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[3.1.2.1] protocol name or level truncated");
	/* Recorded even when refused, so the refusal can be answered in a
	 * format the client may understand. */
	p->out->version = level;
	p->v5 = level == MQTT_V5;

	mqtt = name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0;
	mqisdp = name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0;
	/* 3.1.1 [MQTT-3.1.2-1], 5.0 3.1.2.1: an unknown protocol name may
	 * be refused with "unacceptable protocol version". */
	if (!mqtt && !mqisdp)
		return fail(p, MQTT_CONNECT_BAD_PROTOCOL,
		            "[MQTT-3.1.2-1] unknown protocol name");
	/* 3.1.1 [MQTT-3.1.2-2], 5.0 [MQTT-3.1.2-2]: an unsupported level is
	 * answered with that code. The name must match the level: "MQIsdp"
	 * is only 3.1 (level 3), "MQTT" only 3.1.1 (4) and 5.0 (5). */
	if ((mqisdp && level != MQTT_V31) ||
	    (mqtt && level != MQTT_V311 && level != MQTT_V5))
		return fail(p, MQTT_CONNECT_BAD_PROTOCOL,
		            "[MQTT-3.1.2-2] unsupported protocol level");
	return MQTT_CONNECT_OK;
}

/* 3.1.2.3 Connect Flags. */
static enum mqtt_connect_error read_flags(struct parse *p)
{
	struct mqtt_connect *out = p->out;
	uint8_t f;

	if (!cursor_u8(&p->c, &f))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[3.1.2.3] connect flags truncated");
	out->flags = f;
	out->clean_start = (f & 0x02) != 0;
	out->has_will = (f & 0x04) != 0;
	out->will_qos = (uint8_t)((f >> 3) & 0x03);
	out->will_retain = (f & 0x20) != 0;
	out->has_password = (f & 0x40) != 0;
	out->has_username = (f & 0x80) != 0;

	/* [MQTT-3.1.2-3] the reserved flag must be 0 (3.1 leaves it unused;
	 * no 3.1 client sets it, so the same rule applies). */
	if (f & 0x01)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.2-3] reserved connect flag set");
	/* 3.1.1 [MQTT-3.1.2-13], 5.0 [MQTT-3.1.2-11]: no will, will QoS 0. */
	if (!out->has_will && out->will_qos != 0)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            rule(p, "[MQTT-3.1.2-13] will QoS set without will flag",
		                 "[MQTT-3.1.2-11] will QoS set without will flag"));
	/* 3.1.1 [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-13]: no will, no retain. */
	if (!out->has_will && out->will_retain)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            rule(p, "[MQTT-3.1.2-15] will retain set without will flag",
		                 "[MQTT-3.1.2-13] will retain set without will flag"));
	/* 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]: will QoS 3 is invalid. */
	if (out->will_qos == 3)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            rule(p, "[MQTT-3.1.2-14] will QoS 3",
		                 "[MQTT-3.1.2-12] will QoS 3"));
	/* [MQTT-3.1.2-22] before 5.0 a password needs a user name; 5.0
	 * dropped the rule (3.1.2.9). */
	if (!p->v5 && out->has_password && !out->has_username)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.2-22] password flag set without username flag");
	return MQTT_CONNECT_OK;
}

static enum mqtt_connect_error from_prop_result(struct parse *p,
                                                enum mqtt_prop_result res,
                                                const char *why)
{
	if (res == MQTT_PROP_PROTOCOL_ERROR)
		return fail(p, MQTT_CONNECT_PROTOCOL_ERROR, why);
	return fail(p, MQTT_CONNECT_MALFORMED, why);
}

/* 5.0 3.1.2.11 CONNECT Properties: checked by the property table, then
 * decoded into |out| for the proxy. */
static enum mqtt_connect_error read_connect_properties(struct parse *p)
{
	struct mqtt_connect *out = p->out;
	struct mqtt_props_reader r;
	struct mqtt_property prop;
	enum mqtt_prop_result res;
	const char *why = NULL;

	/* [5.0 2.2.2.1] Property Length, then exactly that many bytes. */
	if (!mqtt_props_block(&p->c, &out->properties))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[5.0 3.1.2.11.1] property length malformed or too long");
	mqtt_props_init(&r, out->properties, MQTT_PLACE_CONNECT);
	while ((res = mqtt_props_next(&r, &prop, &why)) == MQTT_PROP_OK) {
		switch (prop.id) {
		case MQTT_PROP_SESSION_EXPIRY:
			out->has_session_expiry = 1;
			out->session_expiry = prop.num;
			break;
		case MQTT_PROP_RECEIVE_MAXIMUM:
			out->has_receive_maximum = 1;
			out->receive_maximum = (uint16_t)prop.num;
			break;
		case MQTT_PROP_MAXIMUM_PACKET_SIZE:
			out->has_maximum_packet_size = 1;
			out->maximum_packet_size = prop.num;
			break;
		case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
			out->has_topic_alias_maximum = 1;
			out->topic_alias_maximum = (uint16_t)prop.num;
			break;
		case MQTT_PROP_REQUEST_RESPONSE_INFO:
			out->has_request_response_info = 1;
			out->request_response_info = (uint8_t)prop.num;
			break;
		case MQTT_PROP_REQUEST_PROBLEM_INFO:
			out->has_request_problem_info = 1;
			out->request_problem_info = (uint8_t)prop.num;
			break;
		case MQTT_PROP_AUTH_METHOD:
			out->has_auth_method = 1;
			out->auth_method = prop.str;
			break;
		case MQTT_PROP_AUTH_DATA:
			out->has_auth_data = 1;
			out->auth_data = prop.str;
			break;
		case MQTT_PROP_USER_PROPERTY:
			out->user_property_count++;
			break;
		default:
			break;   /* the table admits nothing else here */
		}
	}
	if (res != MQTT_PROP_END)
		return from_prop_result(p, res, why);
	/* [5.0 3.1.2.11.10] Authentication Data needs an Authentication Method. */
	if (out->has_auth_data && !out->has_auth_method)
		return fail(p, MQTT_CONNECT_PROTOCOL_ERROR,
		            "[5.0 3.1.2.11.10] authentication data without method");
	return MQTT_CONNECT_OK;
}

/* 3.1.3.1 Client Identifier. */
static enum mqtt_connect_error read_client_id(struct parse *p)
{
	struct mqtt_connect *out = p->out;

	/* [MQTT-3.1.3-3] the client id is always the first payload field. */
	if (!cursor_binary(&p->c, &out->client_id))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.3-3] client identifier missing or truncated");
	/* [MQTT-3.1.3-4] it is a UTF-8 string (same number in 5.0). */
	if (!mqtt_utf8_valid(out->client_id.ptr, out->client_id.len))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.3-4] client identifier is not valid UTF-8");
	/* MQTT 3.1 3.1 Client Identifier: 1 to 23 characters, otherwise
	 * "identifier rejected" (code 2). */
	if (out->version == MQTT_V31 &&
	    (out->client_id.len < 1 || out->client_id.len > 23))
		return fail(p, MQTT_CONNECT_BAD_CLIENT_ID,
		            "[MQTT 3.1 §3.1] client identifier not 1 to 23 bytes");
	/* [MQTT-3.1.3-7] [MQTT-3.1.3-8] in 3.1.1 an empty id needs clean
	 * session 1, otherwise "identifier rejected" (code 2). 5.0 lets the
	 * server assign one either way [MQTT-3.1.3-6]. */
	if (out->version == MQTT_V311 && out->client_id.len == 0 &&
	    !out->clean_start)
		return fail(p, MQTT_CONNECT_BAD_CLIENT_ID,
		            "[MQTT-3.1.3-8] empty client identifier without clean session");
	return MQTT_CONNECT_OK;
}

/* 5.0 3.1.3.2 Will Properties: only checked, kept raw for re-emission.
 * Sets *utf8_payload when the Payload Format Indicator is 1. */
static enum mqtt_connect_error read_will_properties(struct parse *p,
                                                    int *utf8_payload)
{
	struct mqtt_props_reader r;
	struct mqtt_property prop;
	enum mqtt_prop_result res;
	const char *why = NULL;

	if (!mqtt_props_block(&p->c, &p->out->will_properties))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[5.0 3.1.3.2.1] will property length malformed or too long");
	mqtt_props_init(&r, p->out->will_properties, MQTT_PLACE_WILL);
	while ((res = mqtt_props_next(&r, &prop, &why)) == MQTT_PROP_OK)
		if (prop.id == MQTT_PROP_PAYLOAD_FORMAT && prop.num == 1)
			*utf8_payload = 1;
	if (res != MQTT_PROP_END)
		return from_prop_result(p, res, why);
	return MQTT_CONNECT_OK;
}

/* 3.1.3.2 - 3.1.3.4: Will Properties (5.0), Will Topic, Will Payload. */
static enum mqtt_connect_error read_will(struct parse *p)
{
	struct mqtt_connect *out = p->out;
	enum mqtt_connect_error e;
	int utf8_payload = 0;

	if (p->v5 && (e = read_will_properties(p, &utf8_payload)) != MQTT_CONNECT_OK)
		return e;
	/* 3.1.1 [MQTT-3.1.2-9], 5.0 [MQTT-3.1.2-9]: with the will flag the
	 * will topic and payload must be present. */
	if (!cursor_binary(&p->c, &out->will_topic) ||
	    !cursor_binary(&p->c, &out->will_payload))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.2-9] will topic or payload missing or truncated");
	/* 3.1.1 [MQTT-3.1.3-10], 5.0 [MQTT-3.1.3-11]: UTF-8 will topic. */
	if (!mqtt_utf8_valid(out->will_topic.ptr, out->will_topic.len))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            rule(p, "[MQTT-3.1.3-10] will topic is not valid UTF-8",
		                 "[MQTT-3.1.3-11] will topic is not valid UTF-8"));
	/* It is a Topic Name: not empty [MQTT-4.7.3-1], no wildcards
	 * (3.1.1 [MQTT-4.7.1-1], 5.0 [MQTT-4.7.0-1]). */
	if (!mqtt_topic_name_valid(out->will_topic))
		return fail(p, MQTT_CONNECT_PROTOCOL_ERROR,
		            rule(p, "[MQTT-4.7.1-1] will topic empty or has wildcards",
		                 "[MQTT-4.7.0-1] will topic empty or has wildcards"));
	/* [5.0 3.1.3.2.3] with Payload Format Indicator 1 the will payload
	 * must be UTF-8 character data; the spec's reason is 0x99 (payload
	 * format invalid), reported here as malformed. */
	if (utf8_payload &&
	    !mqtt_utf8_valid_data(out->will_payload.ptr, out->will_payload.len))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[5.0 3.1.3.2.3] will payload is not the UTF-8 its format indicator says");
	return MQTT_CONNECT_OK;
}

/* 3.1.3.5 User Name and 3.1.3.6 Password. */
static enum mqtt_connect_error read_credentials(struct parse *p)
{
	struct mqtt_connect *out = p->out;

	if (out->has_username) {
		/* 3.1.1 [MQTT-3.1.2-19], 5.0 [MQTT-3.1.2-17]: present. */
		if (!cursor_binary(&p->c, &out->username))
			return fail(p, MQTT_CONNECT_MALFORMED,
			            rule(p, "[MQTT-3.1.2-19] user name missing or truncated",
			                 "[MQTT-3.1.2-17] user name missing or truncated"));
		/* 3.1.1 [MQTT-3.1.3-11], 5.0 [MQTT-3.1.3-12]: UTF-8. */
		if (!mqtt_utf8_valid(out->username.ptr, out->username.len))
			return fail(p, MQTT_CONNECT_MALFORMED,
			            rule(p, "[MQTT-3.1.3-11] user name is not valid UTF-8",
			                 "[MQTT-3.1.3-12] user name is not valid UTF-8"));
	}
	/* 3.1.1 [MQTT-3.1.2-21], 5.0 [MQTT-3.1.2-19]: present; binary data. */
	if (out->has_password && !cursor_binary(&p->c, &out->password))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            rule(p, "[MQTT-3.1.2-21] password missing or truncated",
		                 "[MQTT-3.1.2-19] password missing or truncated"));
	return MQTT_CONNECT_OK;
}

static enum mqtt_connect_error parse_body(struct parse *p)
{
	enum mqtt_connect_error e;

	if ((e = read_protocol(p)) != MQTT_CONNECT_OK ||
	    (e = read_flags(p)) != MQTT_CONNECT_OK)
		return e;
	if (!cursor_u16(&p->c, &p->out->keepalive))
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[3.1.2.10] keep alive truncated");
	if (p->v5 && (e = read_connect_properties(p)) != MQTT_CONNECT_OK)
		return e;
	if ((e = read_client_id(p)) != MQTT_CONNECT_OK)
		return e;
	if (p->out->has_will && (e = read_will(p)) != MQTT_CONNECT_OK)
		return e;
	if ((e = read_credentials(p)) != MQTT_CONNECT_OK)
		return e;
	/* Nothing may follow the fields the flags announce: a will, user name
	 * or password whose flag is 0 must be absent (3.1.1 [MQTT-3.1.2-11],
	 * [MQTT-3.1.2-18], [MQTT-3.1.2-20]; 5.0 [MQTT-3.1.2-16],
	 * [MQTT-3.1.2-18]), and the remaining length is consumed exactly. */
	if (cursor_left(&p->c) != 0)
		return fail(p, MQTT_CONNECT_MALFORMED,
		            "[MQTT-3.1.3-1] bytes after the last field the flags announce");
	return MQTT_CONNECT_OK;
}

enum mqtt_connect_error mqtt_connect_parse(const uint8_t *pkt, size_t len,
                                           struct mqtt_connect *out,
                                           const char **why)
{
	struct mqtt_frame frame;
	struct parse p;
	struct slice body;
	enum mqtt_connect_error e;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.out = out;

	cursor_init(&p.c, pkt, len);
	/* The frame must be exactly this packet: its remaining length may
	 * neither exceed nor fall short of the bytes given (2.2.3 / 5.0
	 * 2.1.4; a minimal varint [MQTT-1.5.5-1]). */
	if (mqtt_frame_parse(pkt, len, len, &frame) != MQTT_FRAME_OK ||
	    frame.total_len != len) {
		e = fail(&p, MQTT_CONNECT_MALFORMED,
		         "[2.2.3] remaining length malformed or not matching the packet");
		goto err;
	}
	/* [MQTT-3.1.0-1] the first packet must be CONNECT. */
	if (frame.type != MQTT_CONNECT) {
		e = fail(&p, MQTT_CONNECT_MALFORMED,
		         "[MQTT-3.1.0-1] first packet is not CONNECT");
		goto err;
	}
	/* [MQTT-2.2.2-2] (5.0 2.1.3): CONNECT's fixed header flags are 0. */
	if (frame.flags != 0) {
		e = fail(&p, MQTT_CONNECT_MALFORMED,
		         "[MQTT-2.2.2-2] CONNECT fixed header flags not 0");
		goto err;
	}
	if (!cursor_take(&p.c, frame.header_len, &body) ||
	    !cursor_take(&p.c, frame.remaining_len, &body)) {
		e = fail(&p, MQTT_CONNECT_MALFORMED, "[2.2.3] packet truncated");
		goto err;
	}
	cursor_init(&p.c, body.ptr, body.len);
	e = parse_body(&p);
	if (e != MQTT_CONNECT_OK)
		goto err;
	if (why != NULL)
		*why = NULL;
	return MQTT_CONNECT_OK;

err:
	if (why != NULL)
		*why = p.why;
	return e;
}

int mqtt_connect_peek_version(const uint8_t *buf, size_t len, uint8_t *version)
{
	struct cursor c;
	struct slice skip;
	uint8_t first, level;
	uint16_t name_len;
	uint32_t remaining;

	/* Reads the same fields as the parser but stops at the level byte;
	 * a split or oversized packet simply has not said yet. */
	cursor_init(&c, buf, len);
	if (!cursor_u8(&c, &first) || (first >> 4) != MQTT_CONNECT ||
	    !cursor_varint(&c, &remaining) || !cursor_u16(&c, &name_len) ||
	    !cursor_take(&c, name_len, &skip) || !cursor_u8(&c, &level))
		return 0;
	*version = level;
	return 1;
}

static void rebase(struct slice *sl, const uint8_t *from, const uint8_t *to)
{
	/* An absent field has no bytes to move. */
	if (sl->ptr != NULL)
		sl->ptr = to + (sl->ptr - from);
}

void mqtt_connect_rebase(struct mqtt_connect *c, const uint8_t *from, const uint8_t *to)
{
	struct slice *all[] = {
		&c->properties, &c->client_id, &c->will_properties, &c->will_topic, &c->will_payload,
		&c->username, &c->password, &c->auth_method, &c->auth_data,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		rebase(all[i], from, to);
}
