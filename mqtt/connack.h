/*
 * Building the packets mqtls itself sends to a client: a refusing CONNACK
 * with the right code for the client's protocol version, and (5.0 only)
 * a server DISCONNECT.
 */
#ifndef MQTT_CONNACK_H
#define MQTT_CONNACK_H

#include <stddef.h>
#include <stdint.h>

enum mqtt_refusal {
	MQTT_REFUSE_MALFORMED,            /* 5.0 0x81; 3.x: none */
	MQTT_REFUSE_PROTOCOL_ERROR,       /* 5.0 0x82; 3.x: none */
	MQTT_REFUSE_UNSUPPORTED_VERSION,  /* 5.0 0x84; 3.x 1 */
	MQTT_REFUSE_BAD_CLIENT_ID,        /* 5.0 0x85; 3.x 2 */
	MQTT_REFUSE_SERVER_UNAVAILABLE,   /* 5.0 0x88; 3.x 3 */
	MQTT_REFUSE_BAD_CREDENTIALS,      /* 5.0 0x86; 3.x 4 */
	MQTT_REFUSE_NOT_AUTHORIZED,       /* 5.0 0x87; 3.x 5 */
	MQTT_REFUSE_SERVER_BUSY,          /* 5.0 0x89; 3.x 3 */
	MQTT_REFUSE_BAD_AUTH_METHOD,      /* 5.0 0x8C; 3.x 4 */
	MQTT_REFUSE_PACKET_TOO_LARGE,     /* 5.0 0x95; 3.x: none */
	MQTT_REFUSE_QUOTA_EXCEEDED,       /* 5.0 0x97; 3.x 3 */
};

/* The code the CONNACK would carry for |version|, or -1 when that version
 * has none for this reason (the connection is then just closed). */
int mqtt_connack_code(uint8_t version, enum mqtt_refusal why);

/*
 * Writes a refusing CONNACK (session present 0) for |version| into |out|.
 * Returns its length (4 for 3.x, 5 for 5.0 with empty properties), or 0 if
 * this version has no code for |why| or |cap| is too small.
 */
size_t mqtt_connack_build(uint8_t version, enum mqtt_refusal why,
                          uint8_t *out, size_t cap);

/* Writes a 5.0 DISCONNECT with |reason| (e.g. 0x8B server shutting down,
 * 0xA0 maximum connect time) and no properties. Returns 3, or 0. */
size_t mqtt_disconnect_build_v5(uint8_t reason, uint8_t *out, size_t cap);

#endif
