/*
 * Following client->broker packets on a stream, for a filter that must see
 * some of them (the ACL: PUBLISH and SUBSCRIBE) before they are forwarded.
 *
 * The follower never holds bytes. It is shown the contiguous bytes at the
 * current stream position and answers with one step:
 *
 *   PASS n       forward the next n bytes as they are; they are whole
 *                packets of uninspected types, or the rest of a packet
 *                already decided "forward"
 *   DROP n       discard the next n bytes (a packet decided "drop")
 *   INSPECT      a packet of an inspected type starts here and its header
 *                (for SUBSCRIBE/UNSUBSCRIBE: the whole packet) is parsed in
 *                |out|; decide with mqtt_follow_decide, then ask again: the
 *                packet's bytes, header included, come back as PASS or DROP
 *   NEED_MORE n  the next decision needs n contiguous bytes from here, more
 *                than were given: wait until n are buffered, make them
 *                contiguous (evbuffer_pullup), call again
 *   REFUSE       the packet is malformed or breaks a rule (out->result,
 *                out->why): disconnect; the follower stays refused
 *   TOO_LARGE    an inspected header would need more than max_inspect
 *                contiguous bytes: disconnect (5.0 0x95)
 *
 * The caller consumes exactly the n bytes of every PASS and DROP before the
 * next call, and nothing after INSPECT or NEED_MORE. The contiguous bytes
 * the caller must ever hold are bounded by max_inspect (and 5 for a fixed
 * header), whatever the packet's size: a PUBLISH payload streams through.
 */
#ifndef MQTT_FOLLOW_H
#define MQTT_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/publish.h"
#include "mqtt/subscribe.h"

enum mqtt_follow_step {
	MQTT_FOLLOW_PASS,
	MQTT_FOLLOW_DROP,
	MQTT_FOLLOW_INSPECT,
	MQTT_FOLLOW_NEED_MORE,
	MQTT_FOLLOW_REFUSE,
	MQTT_FOLLOW_TOO_LARGE,
};

/* Bits for mqtt_follow_init's |inspect|: 1 << packet type. */
#define MQTT_FOLLOW_TYPE(t) (1u << (t))

/* Embedded state; valid after mqtt_follow_init. */
struct mqtt_follow {
	uint8_t version;         /* the CONNECT's protocol level */
	uint8_t state;           /* at a packet start, passing, dropping, deciding, refused */
	unsigned inspect;        /* MQTT_FOLLOW_TYPE bits: PUBLISH, SUBSCRIBE, UNSUBSCRIBE */
	size_t max_inspect;
	uint64_t left;           /* bytes of the current packet still to pass or drop */
	uint64_t pending;        /* INSPECT: the inspected packet's length */
	enum mqtt_follow_step refused;   /* REFUSE or TOO_LARGE once refused */
	enum mqtt_parse_result result;
	const char *why;
};

/* What a step says. Slices in |publish| / |subscribe| point into the bytes
 * given to mqtt_follow_next and are valid while those are. */
struct mqtt_follow_out {
	size_t len;                        /* PASS, DROP: bytes; NEED_MORE: bytes wanted;
	                                      INSPECT: bytes parsed */
	uint8_t type;                      /* INSPECT, REFUSE, TOO_LARGE: packet type */
	size_t total_len;                  /* INSPECT, TOO_LARGE: the packet's length (if known) */
	enum mqtt_parse_result result;     /* REFUSE: the parser's verdict */
	const char *why;                   /* REFUSE, TOO_LARGE: static, names the rule */
	struct mqtt_publish publish;       /* INSPECT of a PUBLISH */
	struct mqtt_subscribe subscribe;   /* INSPECT of a SUBSCRIBE or UNSUBSCRIBE */
};

/*
 * Starts following a stream right after the CONNECT, for protocol level
 * |version|, inspecting the packet types in |inspect| (only PUBLISH,
 * SUBSCRIBE and UNSUBSCRIBE are understood; other bits are ignored), with
 * at most |max_inspect| contiguous bytes per inspected header.
 */
void mqtt_follow_init(struct mqtt_follow *f, uint8_t version, unsigned inspect, size_t max_inspect);

/*
 * Looks at the |avail| bytes at |p| (borrowed), the stream at the current
 * position, and returns the next step as described above.
 */
enum mqtt_follow_step mqtt_follow_next(struct mqtt_follow *f, const uint8_t *p, size_t avail,
                                       struct mqtt_follow_out *out);

/*
 * Settles the packet of the last INSPECT: |forward| 1 passes it on, 0
 * drops it (a caller that replaces it, like a SUBSCRIBE re-written without
 * its denied filters, drops the original and sends its own). Does nothing
 * unless an INSPECT is pending.
 */
void mqtt_follow_decide(struct mqtt_follow *f, int forward);

#endif
