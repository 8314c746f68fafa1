/*
 * MQTT 5.0 properties (2.2.2): one table says, for every identifier, its
 * data type, the packets (places) it may appear in, whether it may repeat
 * there, and its legal range. A reader walks a property block and checks
 * each property against that table, so no packet parser carries its own
 * per-property rules.
 */
#ifndef MQTT_PROPERTIES_H
#define MQTT_PROPERTIES_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"

/* Property identifiers (2.2.2.2). */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_ID = 0x0b,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1a,
	MQTT_PROP_SERVER_REFERENCE = 0x1c,
	MQTT_PROP_REASON_STRING = 0x1f,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER_PROPERTY = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2a,
};

/* Data types (1.5). */
enum mqtt_prop_type {
	MQTT_PROP_BYTE,
	MQTT_PROP_U16,
	MQTT_PROP_U32,
	MQTT_PROP_VARINT,
	MQTT_PROP_UTF8,
	MQTT_PROP_PAIR,      /* UTF-8 string pair: name, value */
	MQTT_PROP_BINARY,
};

/* Places a property block can sit; a table entry holds a mask of them. */
enum mqtt_prop_place {
	MQTT_PLACE_CONNECT = 1u << 0,
	MQTT_PLACE_WILL = 1u << 1,          /* will properties inside CONNECT */
	MQTT_PLACE_CONNACK = 1u << 2,
	MQTT_PLACE_PUBLISH = 1u << 3,
	MQTT_PLACE_PUBACK = 1u << 4,        /* also PUBREC, PUBREL, PUBCOMP */
	MQTT_PLACE_SUBSCRIBE = 1u << 5,
	MQTT_PLACE_SUBACK = 1u << 6,
	MQTT_PLACE_UNSUBSCRIBE = 1u << 7,
	MQTT_PLACE_UNSUBACK = 1u << 8,
	MQTT_PLACE_DISCONNECT = 1u << 9,
	MQTT_PLACE_AUTH = 1u << 10,
};

/* Extra checks a table entry may ask for. */
#define MQTT_PROP_CHECK_TOPIC_NAME 1u   /* non-empty, no wildcards */

/* One row of the table; rows are static and never freed. */
struct mqtt_prop_info {
	uint8_t id;
	uint8_t type;             /* enum mqtt_prop_type */
	unsigned places;          /* where it is allowed */
	unsigned repeat_places;   /* where it may appear more than once */
	uint32_t min, max;        /* numeric types: legal range */
	unsigned checks;          /* MQTT_PROP_CHECK_* */
	const char *range_why;    /* why-string when out of range */
};

/* The table row for |id|, or NULL for an unknown identifier. */
const struct mqtt_prop_info *mqtt_prop_lookup(uint32_t id);

/* One decoded property; its slices point into the block being read. */
struct mqtt_property {
	const struct mqtt_prop_info *info;   /* static table row */
	uint8_t id;
	uint32_t num;         /* BYTE, U16, U32, VARINT */
	struct slice str;     /* UTF8, BINARY; PAIR: the name */
	struct slice value;   /* PAIR: the value */
};

enum mqtt_prop_result {
	MQTT_PROP_OK,               /* *out holds the next property */
	MQTT_PROP_END,              /* block fully and cleanly read */
	MQTT_PROP_MALFORMED,        /* 5.0 reason 0x81 */
	MQTT_PROP_PROTOCOL_ERROR,   /* 5.0 reason 0x82 */
};

/* Walks one property block. Valid all-zero state is not needed: always
 * start with mqtt_props_init. Borrows the block's bytes. */
struct mqtt_props_reader {
	struct cursor c;
	unsigned place;
	uint64_t seen;      /* one bit per identifier (all are below 64) */
};

/*
 * Reads a property block's Property Length (a Variable Byte Integer,
 * 2.2.2.1) and then that many bytes from |c| into |block| (without the
 * length). Returns 1, or 0 if the length is malformed or overruns |c|.
 */
int mqtt_props_block(struct cursor *c, struct slice *block);

/* Starts reading |block| as properties at |place| (one MQTT_PLACE_*). */
void mqtt_props_init(struct mqtt_props_reader *r, struct slice block,
                     unsigned place);

/*
 * Reads the next property into |out| and checks it against the table:
 * known identifier, allowed at this place, value of the right type, not
 * repeated unless allowed, within range. On MALFORMED or PROTOCOL_ERROR
 * sets *why (if |why| is not NULL) to a static string naming the rule.
 */
enum mqtt_prop_result mqtt_props_next(struct mqtt_props_reader *r,
                                      struct mqtt_property *out,
                                      const char **why);

#endif
