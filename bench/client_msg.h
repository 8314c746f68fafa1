/*
 * The publishing and subscribing part of a benchmark client (pub, sub and
 * pubsub scenarios): SUBSCRIBE/SUBACK, PUBLISH with the QoS 1 and 2
 * acknowledgement flows in both directions, pacing, and the bookkeeping of
 * pubsub's stamped payloads (latency, loss, duplicates, reordering).
 *
 * In pubsub, clients come in pairs: index 2k subscribes to the topic with
 * %i = k and index 2k+1 publishes to it. A stamped payload starts with the
 * send time (monotonic ns), the pair index and the sequence number.
 */
#ifndef BENCH_CLIENT_MSG_H
#define BENCH_CLIENT_MSG_H

#include <stdint.h>

#include <event2/event_struct.h>

#include "bench/mqtt_codec.h"

struct bench_client;

enum msg_role { ROLE_PUB, ROLE_SUB };

/* One QoS 1/2 PUBLISH awaiting its acknowledgement. */
struct pub_slot {
	uint64_t t_sent;
	uint8_t state;            /* 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP */
};

struct bench_msg {
	enum msg_role role;
	uint32_t pair;            /* the %i of the topic */
	char topic[256];
	uint16_t topic_len;
	int sub_pending;          /* SUBSCRIBE sent, SUBACK not yet read */
	uint64_t t_sub;

	/* Publisher. */
	struct event pace;        /* embedded: next message due by --msg-rate */
	int publishing, done;
	uint64_t seq;             /* messages queued so far */
	uint64_t t_begin;
	uint32_t outstanding;     /* QoS 1/2 flows not complete */
	uint32_t mask;            /* slots - 1; slots is a power of two */
	int window_full;          /* --window: waiting for the subscriber */
	struct pub_slot *slots;   /* owned */

	/* Subscriber (pubsub). */
	uint64_t next_seq;        /* one past the highest sequence number seen */
	uint64_t seen_bits;       /* size of |seen| in bits; 0: no duplicate tracking */
	uint8_t *seen;            /* owned bitmap */

	uint8_t *out_big, *in_big; /* owned buffers the client uses instead of its own */
};

/*
 * Gives |c| its role and the buffers the scenario needs. Returns 0 if memory
 * is short (the client then fails). Must run before the first write.
 */
int bench_msg_attach(struct bench_client *c);

/* Frees what bench_msg_attach made. Safe when nothing was attached. */
void bench_msg_detach(struct bench_client *c);

/* After CONNACK: a subscriber subscribes. Returns 0 if the client closed. */
int bench_msg_connected(struct bench_client *c);

/* The worker says publishing may begin. */
void bench_msg_start(struct bench_client *c);

/* Stops a publisher where it is (end of --duration). */
void bench_msg_stop(struct bench_client *c);

/* Queues what a publisher may send now and writes it. Returns 0 if the
 * client closed. */
int bench_msg_pump(struct bench_client *c);

/* Handles a packet of the message phase (PUBLISH, acks, SUBACK).
 * Returns 0 if the client closed. */
int bench_msg_packet(struct bench_client *c, const struct mqttc_packet *p);

#endif
