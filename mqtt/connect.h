/*
 * The CONNECT packet (MQTT 3.1 "MQIsdp" level 3, 3.1.1 level 4, 5.0 level 5):
 * a strict parser, and a serializer that re-emits it (possibly with other
 * credentials) for the broker.
 */
#ifndef MQTT_CONNECT_H
#define MQTT_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"

enum mqtt_version {
	MQTT_V31 = 3,
	MQTT_V311 = 4,
	MQTT_V5 = 5,
};

/*
 * A parsed CONNECT. Every slice points into the packet bytes handed to
 * mqtt_connect_parse; the struct is valid only while they are. "Absent" and
 * "empty" differ: test has_* flags, never len == 0, for presence.
 */
struct mqtt_connect {
	uint8_t version;               /* enum mqtt_version */
	uint8_t flags;                 /* raw Connect Flags byte (3.1.2.3) */
	uint16_t keepalive;
	int clean_start;

	struct slice properties;       /* v5: raw property bytes, without their length */
	struct slice client_id;

	int has_will;
	uint8_t will_qos;
	int will_retain;
	struct slice will_properties;  /* v5: raw bytes, without their length */
	struct slice will_topic;
	struct slice will_payload;

	int has_username;
	struct slice username;
	int has_password;
	struct slice password;

	/* v5 CONNECT properties (3.1.2.11), decoded for the proxy's use. */
	int has_session_expiry;
	uint32_t session_expiry;
	int has_receive_maximum;
	uint16_t receive_maximum;
	int has_maximum_packet_size;
	uint32_t maximum_packet_size;
	int has_topic_alias_maximum;
	uint16_t topic_alias_maximum;
	int has_request_response_info;
	uint8_t request_response_info;
	int has_request_problem_info;
	uint8_t request_problem_info;
	int has_auth_method;
	struct slice auth_method;
	int has_auth_data;
	struct slice auth_data;
	size_t user_property_count;
};

/* Why a CONNECT was refused; the proxy maps it to a CONNACK (connack.h). */
enum mqtt_connect_error {
	MQTT_CONNECT_OK = 0,
	MQTT_CONNECT_MALFORMED,          /* 5.0: 0x81; 3.x: close without CONNACK */
	MQTT_CONNECT_PROTOCOL_ERROR,     /* 5.0: 0x82; 3.x: close without CONNACK */
	MQTT_CONNECT_BAD_PROTOCOL,       /* unknown name/level: 5.0 0x84, 3.x code 1 */
	MQTT_CONNECT_BAD_CLIENT_ID,      /* 3.1 id over 23 bytes: code 2 */
};

/*
 * Parses one complete CONNECT packet, fixed header included (|pkt| is
 * exactly the frame). On error returns the reason and, if |why| is not
 * NULL, sets it to a static string naming the rule (for logs; it never
 * contains packet bytes). |out| is fully zeroed first.
 */
enum mqtt_connect_error mqtt_connect_parse(const uint8_t *pkt, size_t len,
                                           struct mqtt_connect *out,
                                           const char **why);

/*
 * Best-effort look at the start of a CONNECT that may be incomplete or too
 * large to parse: if the protocol level byte is already present, sets
 * *version to it and returns 1; otherwise returns 0.
 */
int mqtt_connect_peek_version(const uint8_t *buf, size_t len, uint8_t *version);

/*
 * Writes |c| as a CONNECT packet into |out|, fixed header included. Uses the
 * has_* flags and slices as they are, so a caller can swap username and
 * password first; protocol name is derived from the version, and the
 * username/password flags from has_username/has_password. Returns the
 * length written, or 0 if it does not fit in |cap| (nothing useful written).
 */
size_t mqtt_connect_serialize(const struct mqtt_connect *c, uint8_t *out, size_t cap);

/* Points every slice of |c|, parsed from a packet at |from|, at the same
 * bytes in a copy of that packet at |to|: a parsed CONNECT can outlive its
 * input buffer without being parsed again. */
void mqtt_connect_rebase(struct mqtt_connect *c, const uint8_t *from, const uint8_t *to);

/* The exact size mqtt_connect_serialize would need, or 0 if |c| cannot be encoded. */
size_t mqtt_connect_serialized_len(const struct mqtt_connect *c);

#endif
