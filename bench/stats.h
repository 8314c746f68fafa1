/*
 * What one mqtls-bench thread measures: latency histograms and counters,
 * errors counted by kind. Each worker owns one; they are merged at the end.
 * The few counters the live progress line reads from another thread are
 * atomics; everything else is touched by its own thread only.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "bench/histogram.h"

enum bench_error {
	BERR_TCP_REFUSED,       /* connect(): ECONNREFUSED */
	BERR_TCP_OTHER,         /* socket/connect failures other than refused or timeout */
	BERR_TLS_ALERT,         /* the server sent a TLS alert */
	BERR_TLS_VERIFY,        /* the server certificate did not verify */
	BERR_TLS_OTHER,         /* any other handshake failure */
	BERR_RESET,             /* ECONNRESET or EPIPE */
	BERR_CLOSED,            /* the server closed the connection early */
	BERR_TIMEOUT,           /* a stage outlived --timeout */
	BERR_REFUSED,           /* CONNACK with a nonzero code (see refused_by_code) */
	BERR_PROTOCOL,          /* a malformed or unexpected packet from the server */
	BERR_COUNT,
};

/* The name used in reports and JSON, e.g. "tls_alert". */
const char *bench_error_name(enum bench_error e);

struct bench_stats {
	/* Latencies in nanoseconds; owned. */
	struct histogram *tcp_connect;   /* connect() until writable */
	struct histogram *tls_handshake; /* first SSL_do_handshake until done */
	struct histogram *ws_upgrade;    /* --ws: upgrade request queued until the 101 read */
	struct histogram *connack;       /* CONNECT written until CONNACK read */
	struct histogram *total;         /* connect() until CONNACK read */
	struct histogram *ping;          /* PINGREQ written until PINGRESP read */
	struct histogram *subscribe;     /* SUBSCRIBE written until SUBACK read */
	struct histogram *pub_ack;       /* PUBLISH queued until PUBACK (QoS 1) or PUBCOMP (QoS 2) */
	struct histogram *e2e;           /* pubsub: PUBLISH queued until its subscriber read it */

	uint64_t errors[BERR_COUNT];
	uint64_t refused_by_code[256];   /* CONNACK return/reason code -> count */
	uint64_t pings;
	uint64_t resumed;                /* TLS handshakes that resumed a session */
	uint64_t jwt_minted;             /* tokens minted (--jwt-key), outside the latencies */
	uint64_t jwt_mint_ns;            /* time spent minting them */

	/* Messages; bytes count MQTT payload only. */
	uint64_t published;              /* PUBLISH packets queued by publishers */
	uint64_t pub_acked;              /* QoS 1/2 flows completed */
	uint64_t pub_bytes;
	uint64_t received;               /* PUBLISH packets read by subscribers */
	uint64_t recv_bytes;
	uint64_t sub_refused;            /* SUBACK return codes >= 0x80 */
	/* pubsub: from the sequence numbers, per subscriber against its publisher. */
	uint64_t expected;               /* what the publishers of live pairs queued */
	uint64_t unique;                 /* distinct sequence numbers received */
	uint64_t duplicates;             /* sequence numbers received again */
	uint64_t reordered;              /* arrived after a higher sequence number */
	uint64_t foreign;                /* payloads without a valid stamp for this pair */

	/* Read by the progress line while the run goes on. */
	atomic_uint_fast64_t started;     /* connection attempts begun */
	atomic_uint_fast64_t connected;   /* CONNACK with success received */
	atomic_uint_fast64_t active;      /* currently connected */
	atomic_uint_fast64_t failed;      /* sum of errors[] */
};

/* Zeroes |s| and creates its histograms; returns 0 if memory is short
 * (then bench_stats_cleanup is still safe to call). */
int bench_stats_init(struct bench_stats *s);
void bench_stats_cleanup(struct bench_stats *s);

/* Adds everything in |src| to |dst|. Returns 0 on a histogram mismatch. */
int bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* Counts one error of kind |e|. */
void bench_stats_error(struct bench_stats *s, enum bench_error e);

#endif
