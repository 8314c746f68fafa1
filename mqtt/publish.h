/*
 * The header of a client->broker PUBLISH (3.3), read for the ACL: topic,
 * QoS, packet identifier and, in 5.0, the Topic Alias. Only the fixed and
 * variable headers are read; the payload may be megabytes and need not be
 * in memory at all, so the parser works on a prefix of the packet and says
 * how many leading bytes it needs when the prefix is too short.
 */
#ifndef MQTT_PUBLISH_H
#define MQTT_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"

/*
 * The outcome of parsing a client->broker packet header. NEED_MORE is not
 * an error: the bytes given end before the header does (3.1.1 / 5.0 allow
 * any split of the stream). The three refusals map to 5.0 DISCONNECT
 * reason codes; on 3.x every one of them closes the connection.
 */
enum mqtt_parse_result {
	MQTT_PARSE_OK,
	MQTT_PARSE_NEED_MORE,        /* out->need bytes from the packet start are needed */
	MQTT_PARSE_MALFORMED,        /* 5.0: 0x81 Malformed Packet */
	MQTT_PARSE_PROTOCOL_ERROR,   /* 5.0: 0x82 Protocol Error */
	MQTT_PARSE_TOPIC_INVALID,    /* 5.0: 0x90 Topic Name invalid */
};

/*
 * A parsed PUBLISH header. Slices point into the bytes given to
 * mqtt_publish_parse and are valid only while those are.
 */
struct mqtt_publish {
	uint8_t dup;
	uint8_t qos;
	uint8_t retain;
	struct slice topic;        /* empty only in 5.0 with a Topic Alias */
	uint16_t packet_id;        /* 0 when qos == 0 (no identifier on the wire) */
	int has_topic_alias;       /* 5.0 property 0x23 */
	uint16_t topic_alias;
	struct slice properties;   /* 5.0: the raw block without its length; else empty */
	size_t header_len;         /* fixed + variable header: the payload starts here */
	size_t total_len;          /* the whole packet, payload included */
	size_t need;               /* NEED_MORE: leading bytes to supply next time */
};

/*
 * Parses the PUBLISH whose first byte is at |p|; |avail| bytes are
 * readable there (a prefix of the packet, the whole packet, or more: bytes
 * after the packet are not looked at). |version| is the CONNECT's protocol
 * level (3, 4 or 5). On MQTT_PARSE_OK the header has been checked against
 * every rule of 3.3.1 and 3.3.2 that the header alone can break:
 * [MQTT-3.3.1-4] QoS 3, [MQTT-3.3.1-2] DUP on QoS 0, [MQTT-3.3.2-1] a UTF-8
 * topic, [MQTT-3.3.2-2] no wildcards, [MQTT-4.7.3-1] not empty (5.0: unless
 * a Topic Alias stands for it), a non-zero packet identifier when QoS > 0
 * (3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3]), and in 5.0 the property block
 * against the property table, no Subscription Identifier [MQTT-3.3.4-6] and
 * no Topic Alias of 0 [MQTT-3.3.2-8]. On NEED_MORE, out->need (> |avail|,
 * at most the packet's length) says how many leading bytes to supply; a
 * caller that supplies them converges in a few rounds. On a refusal *why
 * (if |why| is not NULL) is a static string naming the rule. |out| is
 * zeroed first.
 */
enum mqtt_parse_result mqtt_publish_parse(const uint8_t *p, size_t avail, uint8_t version,
                                          struct mqtt_publish *out, const char **why);

#endif
