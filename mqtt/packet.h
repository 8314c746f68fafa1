/*
 * Framing of MQTT control packets (fixed header, 2.1): finds where one
 * packet ends in a stream of bytes without copying it.
 */
#ifndef MQTT_PACKET_H
#define MQTT_PACKET_H

#include <stddef.h>
#include <stdint.h>

enum mqtt_packet_type {
	MQTT_CONNECT = 1, MQTT_CONNACK = 2, MQTT_PUBLISH = 3, MQTT_PUBACK = 4,
	MQTT_PUBREC = 5, MQTT_PUBREL = 6, MQTT_PUBCOMP = 7, MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9, MQTT_UNSUBSCRIBE = 10, MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12, MQTT_PINGRESP = 13, MQTT_DISCONNECT = 14, MQTT_AUTH = 15,
};

/* The largest packet the remaining-length varint can describe plus header. */
#define MQTT_MAX_HEADER_LEN 5

/* Framing is the one place with three outcomes: a varint or a packet split
 * across reads is normal, so "need more" is not an error. */
enum mqtt_frame_result {
	MQTT_FRAME_OK,
	MQTT_FRAME_NEED_MORE,
	MQTT_FRAME_MALFORMED,   /* bad varint (too long or not minimal) */
	MQTT_FRAME_TOO_LARGE,   /* total length would exceed max_len */
};

struct mqtt_frame {
	uint8_t type;          /* high nibble of the first byte */
	uint8_t flags;         /* low nibble of the first byte */
	size_t header_len;     /* first byte + varint bytes */
	size_t remaining_len;
	size_t total_len;      /* header_len + remaining_len */
};

/*
 * Examines the first bytes of a stream. On MQTT_FRAME_OK fills |out|; the
 * packet is complete only if total_len <= len (the caller checks, so that
 * it can learn the size from the header alone). MQTT_FRAME_TOO_LARGE is
 * returned as soon as the header says total_len > max_len.
 * NEED_MORE means the header itself is incomplete. |out| is also filled
 * on MQTT_FRAME_TOO_LARGE, so the caller can tell how large it was.
 */
enum mqtt_frame_result mqtt_frame_parse(const uint8_t *buf, size_t len,
                                        size_t max_len, struct mqtt_frame *out);

#endif
