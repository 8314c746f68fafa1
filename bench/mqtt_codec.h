/*
 * The client side of MQTT 3.1.1 and 5.0 for mqtls-bench: encoders for what a
 * client sends and a decoder for what a broker sends back.
 *
 * Encoders append one whole packet to a caller-owned outbuf (mqtt/cursor.h)
 * and return 1, or return 0, set the outbuf's `failed` flag and append
 * nothing when the packet does not fit or an argument cannot be encoded.
 * Several packets can therefore be batched into one buffer and written with
 * one call. Version 5 packets are sent with empty properties.
 *
 * The decoder reads one packet from the front of a byte stream and reports
 * one of three outcomes: complete, more bytes needed, or malformed. Every
 * slice it returns points into the caller's buffer; nothing is copied.
 */
#ifndef BENCH_MQTT_CODEC_H
#define BENCH_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"
#include "mqtt/packet.h"

/* Protocol levels, as in CONNECT's protocol level byte. */
#define MQTTC_V311 4
#define MQTTC_V5   5

struct mqttc_connect {
	uint8_t version;          /* MQTTC_V311 or MQTTC_V5 */
	int clean_start;          /* "clean session" in 3.1.1 */
	uint16_t keepalive;       /* seconds; 0 turns keepalive off */
	struct slice client_id;   /* borrowed; may be empty */
	int has_username;
	struct slice username;    /* borrowed */
	int has_password;
	struct slice password;    /* borrowed; never logged */
};

struct mqttc_publish {
	struct slice topic;       /* borrowed; must not contain wildcards */
	struct slice payload;     /* borrowed */
	uint8_t qos;              /* 0, 1 or 2 */
	int retain;
	int dup;                  /* only with QoS 1 or 2 */
	uint16_t packet_id;       /* nonzero for QoS 1 and 2, ignored for 0 */
};

/* CONNECT (3.1). 3.1.1 requires a client id when clean_start is 0; the
 * encoder leaves that rule to the broker so that tests can break it. */
int mqttc_encode_connect(struct outbuf *o, const struct mqttc_connect *c);

/* PUBLISH (3.3). */
int mqttc_encode_publish(struct outbuf *o, uint8_t version, const struct mqttc_publish *p);

/*
 * SUBSCRIBE (3.8) of |n| (>= 1) topic filters. |options[i]| is the requested
 * QoS in 3.1.1 (0..2) and the whole subscription options byte in 5.0 (QoS in
 * bits 0-1, No Local, Retain As Published, Retain Handling in bits 2-5).
 */
int mqttc_encode_subscribe(struct outbuf *o, uint8_t version, uint16_t packet_id,
                           const struct slice *filters, const uint8_t *options, size_t n);

/*
 * PUBACK, PUBREC, PUBREL or PUBCOMP (|type| from enum mqtt_packet_type).
 * In 5.0 a nonzero |reason| is sent (with empty properties); reason 0 uses
 * the short form, as 3.4.2.1 allows. In 3.1.1 |reason| must be 0.
 */
int mqttc_encode_ack(struct outbuf *o, uint8_t version, uint8_t type,
                     uint16_t packet_id, uint8_t reason);

int mqttc_encode_pingreq(struct outbuf *o);

/* DISCONNECT (3.14). In 3.1.1 |reason| must be 0; in 5.0 reason 0 (normal
 * disconnection) uses the empty form. */
int mqttc_encode_disconnect(struct outbuf *o, uint8_t version, uint8_t reason);

enum mqttc_decode_result {
	MQTTC_DECODE_COMPLETE,
	MQTTC_DECODE_NEED_MORE,
	MQTTC_DECODE_MALFORMED,
};

/*
 * One decoded packet. Slices point into the buffer given to mqttc_decode
 * and are valid while it is. Fields not used by |type| are zero.
 */
struct mqttc_packet {
	uint8_t type;             /* enum mqtt_packet_type */
	uint8_t flags;            /* low nibble of the first byte */
	size_t len;               /* bytes the packet occupies, header included */

	uint16_t packet_id;       /* PUBLISH with QoS > 0, SUBACK, UNSUBACK, acks */
	/* CONNACK return code (3.1.1) or reason code (5.0); ack and DISCONNECT
	 * reason code (0 when the short form omitted it). */
	uint8_t reason;
	int session_present;      /* CONNACK */
	struct slice properties;  /* 5.0: raw property bytes, without their length */

	/* PUBLISH */
	uint8_t qos;
	int retain;
	int dup;
	struct slice topic;       /* may be empty in 5.0 (topic alias) */
	struct slice payload;

	/* SUBACK / UNSUBACK (5.0): one return or reason code per filter. */
	struct slice codes;
};

/*
 * Decodes the packet at the front of |buf|/|len| as a client of protocol
 * |version| receives it. A packet longer than |max_len| bytes in total is
 * malformed as soon as its header says so, so a broker cannot make the
 * caller buffer more than it chose to. On MALFORMED, |*why| (if not NULL)
 * is set to a static string naming the rule, never containing packet bytes.
 * On COMPLETE the caller consumes |out->len| bytes.
 */
enum mqttc_decode_result mqttc_decode(uint8_t version, const uint8_t *buf, size_t len,
                                      size_t max_len, struct mqttc_packet *out,
                                      const char **why);

#endif
