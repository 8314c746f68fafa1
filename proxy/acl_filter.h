/*
 * The ACL filter on a live stream (the stage acl_stage.c wires into a
 * session): it decides every PUBLISH and SUBSCRIBE the client sends,
 * before any of it reaches the broker, and answers for what it takes out.
 *
 * client->broker: new bytes arrive at the end of the |up| queue; the
 * filter follows packets (mqtt/follow.c) and leaves in |up| only bytes that
 * may go: a denied PUBLISH is cut out (its payload as it streams by), a
 * SUBSCRIBE loses its denied filters, a SUBSCRIBE denied whole is cut out.
 * Bytes it cannot decide yet (the start of a packet header) are taken out
 * and held until more arrive, so whatever is in |up| between two calls may
 * be written to the broker as it is: the byte mover needs no limit.
 *
 * broker->client: its own answers (PUBACK/PUBREC with 0x87, a SUBACK for a
 * SUBSCRIBE denied whole) go into |down| only between two broker packets,
 * and only after the broker's CONNACK; the broker's SUBACK for a SUBSCRIBE
 * that lost filters is rewritten with 0x80 (3.1.1) / 0x87 (5.0) at their
 * positions. The boundaries come from the session's one broker->client
 * framer (session_end.c's), which the filter feeds itself, a packet at a
 * time, only while it has such work pending.
 *
 * Acknowledgements stay in the order of the PUBLISHes (MQTT-4.6.0-2): the
 * packet ids of allowed QoS 1/2 PUBLISHes sent up are remembered until the
 * broker's PUBACK (QoS 1) or PUBREC (QoS 2) for them goes by, and an
 * answer of mqtls's waits, behind a gate, until every one sent up before
 * its PUBLISH was acknowledged. Only ACL_MAX_INFLIGHT are remembered: one
 * more goes up unremembered (counted in mqtls_acl_ack_untracked_total), and
 * an answer may then overtake the broker's for it. With --acl-deny
 * disconnect nothing is remembered: mqtls never answers a PUBLISH then.
 */
#ifndef PROXY_ACL_FILTER_H
#define PROXY_ACL_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"
#include "mqtt/follow.h"
#include "mqtt/framer.h"
#include "proxy/acl.h"
#include "proxy/bufq.h"

/* Largest PUBLISH header (topic and properties) or SUBSCRIBE inspected;
 * a larger one is refused (5.0 0x95). */
#define ACL_MAX_INSPECT (128u * 1024u)
/* SUBSCRIBEs that lost filters, answered by the broker not yet. */
#define ACL_MAX_MERGES 16
/* Bytes of mqtls's own answers waiting for a broker packet to end. */
#define ACL_MAX_BACKLOG (64u * 1024u)
/* Allowed QoS 1/2 PUBLISHes followed until the broker acknowledges them. */
#define ACL_MAX_INFLIGHT 64
/* Distinct waits among the answers held back; more are merged into the
 * last one (which then waits longer, never less). */
#define ACL_MAX_GATES 16

struct metrics;

/* Bytes taken out of a queue, owned (NULL when empty). */
struct acl_hold {
	uint8_t *p;
	size_t len;
};

struct acl_merge {
	uint16_t packet_id;
	uint32_t n;              /* filters in the client's SUBSCRIBE */
	uint8_t *keep;           /* owned: n entries, 1 = went to the broker */
};

/* An allowed QoS 1/2 PUBLISH the broker has not acknowledged yet. */
struct acl_inflight {
	uint64_t seq;            /* order in which it went up */
	uint16_t packet_id;
	uint8_t ack;             /* what acknowledges it: MQTT_PUBACK or MQTT_PUBREC */
};

/* The backlog's bytes before |end| (and after the previous gate's) wait
 * until no PUBLISH with a seq below |need| is unacknowledged. */
struct acl_gate {
	size_t end;
	uint64_t need;
};

/* Allocated at the first allowed QoS 1/2 PUBLISH of a session. */
struct acl_order {
	struct acl_inflight ring[ACL_MAX_INFLIGHT];   /* oldest first */
	struct acl_gate gates[ACL_MAX_GATES];
	uint8_t n;
	uint8_t n_gates;
	uint64_t next_seq;
};

/* One session's ACL state; allocated only for sessions an ACL applies to. */
struct acl_session {
	struct acl *file;        /* reference: the --acl-file table, or NULL */
	struct acl *claim;       /* reference: the token's `acl` claim, or NULL */
	char *user;              /* owned; NULL: the client has no username */
	size_t ulen;
	char *cid;               /* owned, maybe empty */
	size_t clen;
	uint8_t version;         /* protocol level of the CONNECT */
	uint8_t disconnect;      /* --acl-deny disconnect */
	uint8_t dead;            /* ended for a denial: nothing more goes up */
	uint8_t n_merges;
	struct mqtt_follow up;
	struct acl_hold up_held;     /* an undecided packet start */
	struct acl_hold down_held;   /* an incomplete SUBACK a merge waits for */
	struct acl_hold backlog;     /* own answers waiting for a boundary */
	struct acl_merge merges[ACL_MAX_MERGES];
	struct acl_order *order;     /* owned, or NULL: no QoS 1/2 PUBLISH went up yet */
	uint8_t *aliases;        /* owned: 2 bits per Topic Alias (known, allowed) */
	uint32_t alias_cap;      /* aliases the array covers */
};

/* The buffers a step works on: a session's, or a test's. */
struct acl_io {
	struct bufq *up;             /* client->broker */
	struct bufq *down;           /* broker->client */
	struct mqtt_framer *framer;  /* the broker->client boundaries, fed up to the end of |down| */
	struct blk_cache *c;
	struct metrics *m;           /* decisions are counted here; may be NULL */
};

/*
 * A new state for a client with username |user| (NULL: none) and client id
 * |cid|, protocol level |version|, checked against |file| and |claim|
 * (either may be NULL; their references are taken over, also on failure).
 * |disconnect|: --acl-deny disconnect. NULL when out of memory.
 */
struct acl_session *acl_session_new(struct acl *file, struct acl *claim, const struct slice *user,
                                    struct slice cid, uint8_t version, int disconnect);
/* Frees |a| and what it holds; NULL is a no-op. */
void acl_session_free(struct acl_session *a);

/* Whether the client may PUBLISH to (ACL_WRITE) or SUBSCRIBE to (ACL_READ)
 * |topic|: the token's claim grants, or the file does. */
int acl_session_allows(const struct acl_session *a, struct slice topic, enum acl_access access);

enum acl_step {
	ACL_OK,            /* |up| holds only what may go */
	ACL_DENY_CLOSE,    /* --acl-deny disconnect: |up| ends before the denied packet */
	ACL_REFUSE,        /* a malformed packet: |up| ends before it; rep->code says why */
	ACL_OOM,
};

struct acl_report {
	int answered;      /* bytes were added to |down|: the client should get them */
	uint8_t code;      /* ACL_DENY_CLOSE, ACL_REFUSE: the 5.0 DISCONNECT reason */
	const char *why;   /* ACL_REFUSE: static, names the rule */
};

/*
 * Filters the bytes of |up| from offset |from| on (those before it were
 * filtered already), after putting back in front of them what an earlier
 * call held. |rep| is zeroed first.
 */
enum acl_step acl_filter_up(struct acl_session *a, const struct acl_io *io, size_t from,
                            struct acl_report *rep);

/* Whether broker->client bytes need the filter (a merge or an answer
 * waits, a SUBACK or an ack header is held, or a PUBLISH sent up awaits
 * its ack); else the caller just feeds its framer. */
int acl_down_busy(const struct acl_session *a);

/*
 * Follows the broker bytes of |down| from offset |from| on (feeding the
 * framer with them), rewrites a SUBACK a merge waits for, notes the
 * broker's PUBACKs and PUBRECs, and puts waiting answers in at packet
 * boundaries once the acks they wait for went by. Returns 1, or 0 when out of memory.
 */
int acl_filter_down(struct acl_session *a, const struct acl_io *io, size_t from);

#endif
