/*
 * What mqtls counts, per worker, for /metrics (DESIGN.md §9).
 *
 * Each worker owns one struct metrics and is its only writer; the HTTP
 * thread reads every worker's and sums them when scraped. The counters are
 * relaxed atomics written with a plain load and store (no locked
 * instruction: the forwarding path pays one add per read or write call),
 * so a scrape reads each value whole without slowing the workers down.
 *
 * Labels have bounded sets: listener index, TLS version, result and reason
 * names from the fixed tables below; never a client id, user or address.
 */
#ifndef PROXY_METRICS_H
#define PROXY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"

typedef _Atomic uint64_t counter_t;

/* Adds |n| to a counter only its own worker writes. */
static inline void counter_add(counter_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Sets a gauge only its own worker writes. */
static inline void gauge_set(counter_t *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t counter_get(const counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Upper bounds (seconds) of the latency histograms' buckets; +Inf follows. */
#define HIST_BUCKETS 14

struct histogram {
	counter_t bucket[HIST_BUCKETS + 1];   /* not cumulative; the last is +Inf */
	counter_t count;
	counter_t sum_us;
};

enum tls_ver_label { TLSV_12, TLSV_13, TLSV_NONE, TLSV_COUNT };
enum hs_result { HS_OK, HS_VERIFY_FAILED, HS_FAILED, HS_TIMEOUT, HS_EVICTED, HS_RESULT_COUNT };
enum mqtt_ver_label { MQTTV_31, MQTTV_311, MQTTV_5, MQTTV_COUNT };
enum byte_dir { BYTES_CLIENT_TO_BROKER, BYTES_BROKER_TO_CLIENT, BYTES_DIR_COUNT };
enum broker_error { BROKER_UNREACHABLE, BROKER_TIMEOUT, BROKER_TLS, BROKER_ERROR_COUNT };
enum accept_refusal { REFUSED_HANDSHAKES_PER_IP, REFUSED_CONN_PER_IP, REFUSED_CONN_RATE_PER_IP,
	              REFUSED_MAX_CONNECTIONS, REFUSED_COUNT };

/* WebSocket upgrade outcomes: 101, 404, 400, 400 with the version, 431,
 * no complete request in time, the client went away first. */
enum ws_upgrade_label { WSU_OK, WSU_BAD_PATH, WSU_BAD_REQUEST, WSU_BAD_VERSION, WSU_TOO_LARGE,
	                WSU_TIMEOUT, WSU_ABORTED, WSU_COUNT };

/* ACL decisions, by packet: [packet][0 allowed, 1 denied]; a SUBSCRIBE
 * counts one per filter. */
enum acl_packet_label { ACLP_PUBLISH, ACLP_SUBSCRIBE, ACLP_COUNT };

/* Auth methods (enum auth_method order) and results. */
#define AUTH_METHOD_LABELS 5
enum auth_result_label { AUTHR_OK, AUTHR_BAD_CREDENTIALS, AUTHR_NOT_AUTHORIZED, AUTHR_BAD_METHOD,
	                 AUTHR_BAD_IDENTITY, AUTHR_BUSY, AUTHR_IDENTITY_LIMIT, AUTHR_UNAVAILABLE, AUTHR_COUNT };

/* Why a session ticket was turned down (enum tls_resume_refusal, 0 unused). */
#define RESUME_REFUSAL_LABELS 6

/* CONNACK codes mqtls itself sends: 3.x 1..5, 5.0 0x80..0x9F. */
#define CONNACK_CODES 256

/* Close reasons: a fixed table, "other" for anything not in it. */
#define CLOSE_REASONS 64

struct metrics {
	counter_t connections_active[CONFIG_MAX_LISTEN];
	counter_t connections_total[CONFIG_MAX_LISTEN];
	counter_t handshakes[TLSV_COUNT][HS_RESULT_COUNT];
	counter_t handshakes_resumed;
	counter_t resume_refused[RESUME_REFUSAL_LABELS];
	counter_t auth[AUTH_METHOD_LABELS][AUTHR_COUNT];
	counter_t connack[CONNACK_CODES];
	counter_t mqtt_connects[MQTTV_COUNT];
	counter_t bytes[BYTES_DIR_COUNT];
	counter_t broker_errors[BROKER_ERROR_COUNT];
	counter_t accept_refused[REFUSED_COUNT];
	counter_t closed[CLOSE_REASONS];
	counter_t ws_upgrades[WSU_COUNT];
	counter_t acl_decisions[ACLP_COUNT][2];
	counter_t acl_ack_untracked;        /* allowed QoS 1/2 PUBLISHes past the ACL's ack ring */
	counter_t auth_queue;               /* gauge: slow checks queued or running */
	counter_t heartbeat_ms;             /* gauge: the loop's last tick, monotonic ms */
	struct histogram handshake_seconds;
	struct histogram connack_seconds;   /* TCP accept -> CONNACK forwarded */
};

/* Records one observation of |us| microseconds. */
void histogram_observe(struct histogram *h, uint64_t us);
/* The index of a close reason in the fixed table ("other" if unknown). */
size_t metrics_close_reason(const char *reason);

/* Process-wide events outside the workers (reloads); thread-safe. */
void metrics_reload_result(int ok);

struct proxy;
struct worker;
struct evbuffer;

/* Appends the Prometheus text exposition of the |n| workers' metrics
 * (summed) and the process's to |out|. */
void metrics_render(struct evbuffer *out, struct proxy *p, struct worker *const *workers, int n);

#endif
