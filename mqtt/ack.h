/*
 * The acknowledgements mqtls writes or rewrites when the ACL takes a
 * PUBLISH or some SUBSCRIBE filters out: PUBACK / PUBREC / PUBCOMP for a
 * dropped PUBLISH, and the SUBACK the client gets, which carries a failure
 * code at each denied filter's position and the broker's answer for the
 * others ([MQTT-3.9.3-1]: codes in the order of the filters).
 */
#ifndef MQTT_ACK_H
#define MQTT_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"
#include "mqtt/publish.h"

/* Reason codes used here (5.0 2.4). */
#define MQTT_RC_SUCCESS 0x00
#define MQTT_RC_SUBACK_FAILURE_V3 0x80   /* 3.1.1 SUBACK "Failure" */
#define MQTT_RC_NOT_AUTHORIZED 0x87       /* 5.0 */

/*
 * Writes a PUBACK, PUBREC or PUBCOMP (|type| MQTT_PUBACK, MQTT_PUBREC or
 * MQTT_PUBCOMP) for |packet_id| into |out| (capacity |cap|). In 5.0 the
 * |reason| is written (and no property block, 3.4.2.2.1); before 5.0 the
 * packet has no reason and |reason| is ignored. Returns the length (4 or
 * 5), or 0 for another type or if it does not fit.
 */
size_t mqtt_ack_write(uint8_t type, uint8_t version, uint16_t packet_id, uint8_t reason,
                      uint8_t *out, size_t cap);

/* A parsed SUBACK from the broker; slices point into the packet. */
struct mqtt_suback {
	uint16_t packet_id;
	struct slice properties;   /* 5.0: the raw block without its length */
	struct slice codes;        /* one return / reason code per filter */
};

/*
 * Parses one complete SUBACK (|pkt| is exactly the frame) for protocol
 * level |version|: fixed header flags 0, a packet identifier, in 5.0 a
 * property block the table accepts at SUBACK, then at least one code.
 * The codes are not judged: they are the broker's answer and pass through.
 */
enum mqtt_parse_result mqtt_suback_parse(const uint8_t *pkt, size_t len, uint8_t version,
                                         struct mqtt_suback *out, const char **why);

/*
 * Fills |codes| (|n| entries, caller-owned) with the client's answer to a
 * SUBSCRIBE of |n| filters of which those with keep[i] != 0 went to the
 * broker: the broker's codes in order at the kept positions, |deny| at
 * the others. Returns 1, or 0 if the broker answered with a different
 * number of codes than filters were kept.
 */
int mqtt_suback_merge(const uint8_t *keep, size_t n, struct slice broker_codes, uint8_t deny,
                      uint8_t *codes);

/*
 * Writes a SUBACK for |packet_id| with the |n| codes at |codes| into |out|
 * (capacity |cap|); in 5.0 with the property block |props| (may be empty,
 * e.g. the broker's, kept). Returns the length, or 0 if |n| is 0 or it
 * does not fit.
 */
size_t mqtt_suback_write(uint8_t version, uint16_t packet_id, struct slice props,
                         const uint8_t *codes, size_t n, uint8_t *out, size_t cap);

#endif
