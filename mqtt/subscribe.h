/*
 * SUBSCRIBE (3.8) and UNSUBSCRIBE (3.10) from a client, read for the ACL:
 * the packet identifier, the 5.0 properties, and each Topic Filter with
 * its options. A SUBSCRIBE is parsed and checked whole once; its filters
 * are then walked with an iterator, so no array of filters is allocated.
 * A SUBSCRIBE can be re-written with only some of its filters, for the
 * broker, when the ACL takes the others out.
 */
#ifndef MQTT_SUBSCRIBE_H
#define MQTT_SUBSCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"
#include "mqtt/publish.h"

/*
 * A parsed SUBSCRIBE or UNSUBSCRIBE. Slices point into the packet bytes
 * given to the parser and are valid only while those are.
 */
struct mqtt_subscribe {
	uint8_t type;                /* MQTT_SUBSCRIBE or MQTT_UNSUBSCRIBE */
	uint8_t version;             /* protocol level it was parsed for */
	uint16_t packet_id;
	struct slice properties;     /* 5.0: the raw block without its length */
	int has_subscription_id;     /* 5.0 SUBSCRIBE property 0x0B */
	uint32_t subscription_id;
	struct slice payload;        /* the filters (and option bytes), as sent */
	size_t count;                /* number of filters, at least 1 */
	size_t total_len;            /* the whole packet */
};

/* One filter of the payload. */
struct mqtt_sub_entry {
	struct slice filter;         /* as sent, "$share/NAME/" included */
	struct slice acl_filter;     /* what the ACL checks: the filter after
	                                "$share/NAME/" for a shared subscription,
	                                otherwise the same as |filter| */
	int shared;
	struct slice share_name;     /* shared: the ShareName */
	uint8_t options;             /* SUBSCRIBE: the raw options byte; else 0 */
	uint8_t qos;                 /* SUBSCRIBE: requested (maximum) QoS */
};

/*
 * Parses one complete SUBSCRIBE or UNSUBSCRIBE, fixed header included
 * (|pkt| is exactly the frame), for protocol level |version| (3, 4 or 5).
 * Refuses: fixed-header flags other than 0010 ([MQTT-3.8.1-1],
 * [MQTT-3.10.1-1]); a packet identifier of 0 (3.1.1 [MQTT-2.3.1-1], 5.0
 * [MQTT-2.2.1-3]); in 5.0 a property block the table refuses; no filter
 * at all (SUBSCRIBE 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2]; UNSUBSCRIBE
 * [MQTT-3.10.3-2]); a filter that is not UTF-8 ([MQTT-3.8.3-1],
 * [MQTT-3.10.3-1]) or not a valid filter ([MQTT-4.7.1-2], [MQTT-4.7.1-3],
 * [MQTT-4.7.3-1]); reserved option bits or QoS 3 (3.1.1 [MQTT-3-8.3-4],
 * 5.0 [MQTT-3.8.3-5]); in 5.0 Retain Handling 3, No Local on a shared
 * subscription [MQTT-3.8.3-4] and a malformed shared subscription
 * ([MQTT-4.8.2-1], [MQTT-4.8.2-2]). On a refusal *why (if |why| is not
 * NULL) names the rule. Never returns NEED_MORE: a cut packet is
 * MALFORMED. |out| is zeroed first.
 */
enum mqtt_parse_result mqtt_subscribe_parse(const uint8_t *pkt, size_t len, uint8_t version,
                                            struct mqtt_subscribe *out, const char **why);

/* Walks the filters of a parsed packet in order. */
struct mqtt_sub_iter {
	struct cursor c;
	uint8_t type;
	uint8_t version;
};

/* Starts at the first filter of |s| (borrowed; must outlive the walk). */
void mqtt_sub_iter_init(struct mqtt_sub_iter *it, const struct mqtt_subscribe *s);

/* Fills |e| with the next filter and returns 1, or returns 0 after the last. */
int mqtt_sub_iter_next(struct mqtt_sub_iter *it, struct mqtt_sub_entry *e);

/*
 * The length of the SUBSCRIBE that keeps only the filters whose index i
 * (0-based, in packet order) has keep[i] != 0, with the same packet
 * identifier and properties; |keep| has s->count entries. Returns 0 if no
 * filter is kept (such a SUBSCRIBE would break [MQTT-3.8.3-3]) or if |s|
 * is not a SUBSCRIBE.
 */
size_t mqtt_subscribe_subset_len(const struct mqtt_subscribe *s, const uint8_t *keep);

/*
 * Writes that SUBSCRIBE into |out| (capacity |cap|, owned by the caller).
 * Returns the length written, or 0 if it would be empty or does not fit.
 */
size_t mqtt_subscribe_write_subset(const struct mqtt_subscribe *s, const uint8_t *keep,
                                   uint8_t *out, size_t cap);

#endif
