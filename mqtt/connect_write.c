/*
 * Re-emitting a CONNECT for the broker (connect.h). The serializer trusts
 * the struct's has_* flags and slices, not its raw flags byte, so a caller
 * may swap the credentials before writing.
 */
#include "mqtt/connect.h"
#include "mqtt/packet.h"

/* Fields with a 16-bit length prefix cannot be longer than this. */
#define BINARY_MAX 0xffffu

/* Bytes of a v5 property block with its Property Length in front, or 0
 * if it is too long to describe. */
static size_t props_size(struct slice props)
{
	size_t n;

	if (props.len > UINT32_MAX)
		return 0;
	n = mqtt_varint_size((uint32_t)props.len);
	return n == 0 ? 0 : n + props.len;
}

/* 2 + |s|, or 0 if |s| does not fit a 16-bit length. */
static size_t binary_size(struct slice s)
{
	return s.len > BINARY_MAX ? 0 : 2 + s.len;
}

/* Adds |n| to *total; a 0 means "cannot be encoded" and sticks. */
static int add(size_t *total, size_t n)
{
	if (n == 0)
		return 0;
	*total += n;
	return 1;
}

/* The remaining length of |c|, or 0 if it cannot be encoded. */
static size_t remaining_len(const struct mqtt_connect *c)
{
	int v5 = c->version == MQTT_V5;
	size_t n = 0;

	if (c->version != MQTT_V31 && c->version != MQTT_V311 && !v5)
		return 0;
	/* [MQTT-3.1.2-22] before 5.0 a password needs a user name. */
	if (!v5 && c->has_password && !c->has_username)
		return 0;
	/* [MQTT-3.1.2-14] (5.0 [MQTT-3.1.2-12]) will QoS 3 does not exist. */
	if (c->has_will && c->will_qos > 2)
		return 0;

	/* Protocol name ("MQIsdp" 8 or "MQTT" 6), level, flags, keep alive. */
	n = (c->version == MQTT_V31 ? 8 : 6) + 1 + 1 + 2;
	if (v5 && !add(&n, props_size(c->properties)))
		return 0;
	if (!add(&n, binary_size(c->client_id)))
		return 0;
	if (c->has_will) {
		if (v5 && !add(&n, props_size(c->will_properties)))
			return 0;
		if (!add(&n, binary_size(c->will_topic)) ||
		    !add(&n, binary_size(c->will_payload)))
			return 0;
	}
	if (c->has_username && !add(&n, binary_size(c->username)))
		return 0;
	if (c->has_password && !add(&n, binary_size(c->password)))
		return 0;
	if (mqtt_varint_size(n > UINT32_MAX ? UINT32_MAX : (uint32_t)n) == 0)
		return 0;
	return n;
}

size_t mqtt_connect_serialized_len(const struct mqtt_connect *c)
{
	size_t rem = remaining_len(c);

	if (rem == 0)
		return 0;
	return 1 + mqtt_varint_size((uint32_t)rem) + rem;
}

/* Connect Flags (3.1.2.3) rebuilt from the struct's fields; the will QoS
 * and retain bits are only meaningful with a will. */
static uint8_t connect_flags(const struct mqtt_connect *c)
{
	uint8_t f = 0;

	if (c->clean_start)
		f |= 0x02;
	if (c->has_will) {
		f |= 0x04;
		f |= (uint8_t)(c->will_qos << 3);
		if (c->will_retain)
			f |= 0x20;
	}
	if (c->has_password)
		f |= 0x40;
	if (c->has_username)
		f |= 0x80;
	return f;
}

static void write_props(struct outbuf *o, struct slice props)
{
	outbuf_varint(o, (uint32_t)props.len);
	outbuf_bytes(o, props.ptr, props.len);
}

size_t mqtt_connect_serialize(const struct mqtt_connect *c, uint8_t *out, size_t cap)
{
	static const struct slice mqisdp = { (const uint8_t *)"MQIsdp", 6 };
	static const struct slice mqtt = { (const uint8_t *)"MQTT", 4 };
	int v5 = c->version == MQTT_V5;
	size_t rem = remaining_len(c);
	struct outbuf o;

	/* Checked up front so nothing is written for a packet that cannot
	 * be encoded or does not fit. */
	if (rem == 0 || 1 + mqtt_varint_size((uint32_t)rem) + rem > cap)
		return 0;

	outbuf_init(&o, out, cap);
	outbuf_u8(&o, MQTT_CONNECT << 4);
	outbuf_varint(&o, (uint32_t)rem);
	outbuf_binary(&o, c->version == MQTT_V31 ? mqisdp : mqtt);
	outbuf_u8(&o, c->version);
	outbuf_u8(&o, connect_flags(c));
	outbuf_u16(&o, c->keepalive);
	if (v5)
		write_props(&o, c->properties);
	outbuf_binary(&o, c->client_id);
	if (c->has_will) {
		if (v5)
			write_props(&o, c->will_properties);
		outbuf_binary(&o, c->will_topic);
		outbuf_binary(&o, c->will_payload);
	}
	if (c->has_username)
		outbuf_binary(&o, c->username);
	if (c->has_password)
		outbuf_binary(&o, c->password);
	return o.failed ? 0 : o.len;
}
