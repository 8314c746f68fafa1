/*
 * Following packet boundaries in a stream of MQTT packets without holding
 * any of it: only fixed headers are read, bodies are skipped by count. The
 * proxy uses it on the broker->client stream when it may need to insert a
 * packet of its own (a DISCONNECT) between two of the broker's.
 */
#ifndef MQTT_FRAMER_H
#define MQTT_FRAMER_H

#include <stddef.h>
#include <stdint.h>

/* All-zero is the start of a stream. */
struct mqtt_framer {
	uint8_t state;       /* 0 first byte, 1 remaining length, 2 body */
	uint8_t shift;
	uint8_t lost;        /* a malformed length was seen: boundaries unknown */
	uint32_t acc;
	uint64_t left;       /* body bytes still to come */
	uint64_t total;      /* bytes fed so far */
	uint64_t boundary;   /* offset just after the last complete packet */
};

/* Feeds the next |len| bytes of the stream (borrowed). */
void mqtt_framer_feed(struct mqtt_framer *f, const uint8_t *p, size_t len);

#endif
