/*
 * The few packets mqtls writes to a client itself (connack.h): a refusing
 * CONNACK and the 5.0 server DISCONNECT.
 */
#include "mqtt/connack.h"
#include "mqtt/cursor.h"

int mqtt_connack_code(uint8_t version, enum mqtt_refusal why)
{
	/* 5.0 Reason Codes, 3.2.2.2. */
	if (version == 5) {
		switch (why) {
		case MQTT_REFUSE_MALFORMED:           return 0x81;
		case MQTT_REFUSE_PROTOCOL_ERROR:      return 0x82;
		case MQTT_REFUSE_UNSUPPORTED_VERSION: return 0x84;
		case MQTT_REFUSE_BAD_CLIENT_ID:       return 0x85;
		case MQTT_REFUSE_BAD_CREDENTIALS:     return 0x86;
		case MQTT_REFUSE_NOT_AUTHORIZED:      return 0x87;
		case MQTT_REFUSE_SERVER_UNAVAILABLE:  return 0x88;
		case MQTT_REFUSE_SERVER_BUSY:         return 0x89;
		case MQTT_REFUSE_BAD_AUTH_METHOD:     return 0x8c;
		case MQTT_REFUSE_PACKET_TOO_LARGE:    return 0x95;
		case MQTT_REFUSE_QUOTA_EXCEEDED:      return 0x97;
		}
		return -1;
	}

	/* 3.1 and 3.1.1 Return Codes (3.1.1 3.2.2.3). Any other level is
	 * answered in this format too: a client of an unknown version is told
	 * "unacceptable protocol version" the way 3.1.1 does [MQTT-3.1.2-2].
	 * Malformed and protocol errors have no code: the connection is just
	 * closed [MQTT-4.8.0-1]. */
	switch (why) {
	case MQTT_REFUSE_UNSUPPORTED_VERSION: return 1;
	case MQTT_REFUSE_BAD_CLIENT_ID:       return 2;
	case MQTT_REFUSE_SERVER_UNAVAILABLE:  return 3;
	case MQTT_REFUSE_SERVER_BUSY:         return 3;
	case MQTT_REFUSE_QUOTA_EXCEEDED:      return 3;
	case MQTT_REFUSE_BAD_CREDENTIALS:     return 4;
	case MQTT_REFUSE_BAD_AUTH_METHOD:     return 4;
	case MQTT_REFUSE_NOT_AUTHORIZED:      return 5;
	case MQTT_REFUSE_MALFORMED:
	case MQTT_REFUSE_PROTOCOL_ERROR:
	case MQTT_REFUSE_PACKET_TOO_LARGE:
		return -1;
	}
	return -1;
}

size_t mqtt_connack_build(uint8_t version, enum mqtt_refusal why,
                          uint8_t *out, size_t cap)
{
	struct outbuf o;
	int code = mqtt_connack_code(version, why);

	if (code < 0)
		return 0;
	outbuf_init(&o, out, cap);
	outbuf_u8(&o, 0x20);                      /* CONNACK, flags 0 */
	if (version == 5) {
		outbuf_u8(&o, 3);                 /* remaining length */
		outbuf_u8(&o, 0);                 /* session present 0 */
		outbuf_u8(&o, (uint8_t)code);
		outbuf_u8(&o, 0);                 /* property length 0 */
	} else {
		outbuf_u8(&o, 2);
		outbuf_u8(&o, 0);
		outbuf_u8(&o, (uint8_t)code);
	}
	return o.failed ? 0 : o.len;
}

size_t mqtt_disconnect_build_v5(uint8_t reason, uint8_t *out, size_t cap)
{
	struct outbuf o;

	/* Remaining length 1: with no properties the property length may be
	 * left out (3.14.2.2.1), which is also how common brokers send it. */
	outbuf_init(&o, out, cap);
	outbuf_u8(&o, 0xe0);
	outbuf_u8(&o, 1);
	outbuf_u8(&o, reason);
	return o.failed ? 0 : o.len;
}
