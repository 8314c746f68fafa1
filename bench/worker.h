/*
 * One mqtls-bench thread: an event loop that opens its share of the
 * connections at its share of the rate, and the clients it owns.
 *
 * Clients never move between workers. A client that closes is put on the
 * worker's dead list and freed from the worker's own timer, never from
 * inside the client's callback.
 */
#ifndef BENCH_WORKER_H
#define BENCH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "bench/options.h"
#include "bench/stats.h"

#define WORKER_MAGIC 0x62776b72u     /* "bwkr" */

struct bench_client;
struct jwt_minter;

struct bench_worker {
	uint32_t magic;
	int id;
	const struct bench_options *opt;   /* borrowed, outlives the worker */
	SSL_CTX *const *ssl_ctxs;          /* borrowed; client i uses [i % n_ssl_ctxs] */
	size_t n_ssl_ctxs;                 /* 0 without TLS */
	const struct jwt_minter *minter;   /* borrowed; NULL without --jwt-key */
	struct sockaddr_storage addr;
	socklen_t addr_len;

	struct event_base *base;           /* owned */
	struct event tick;                 /* embedded: starts clients, frees dead ones */
	struct event end_timer;            /* embedded: end of the idle hold */
	pthread_t thread;
	int thread_started;

	uint32_t first_index;              /* global index of this worker's first client */
	uint32_t count;                    /* connections this worker opens */
	double rate;                       /* per second; 0: unlimited */
	uint32_t concurrency;              /* attempts in flight at once */
	uint32_t started, finished, in_flight;
	uint64_t t_start_ns, t_last_connack_ns;
	int holding;                       /* idle/sub: the hold timer runs; pub: the duration cap */
	int publishing;                    /* pub/pubsub: publishers were told to start */
	int draining;                      /* pubsub: waiting for subscribers after publishing */
	uint32_t pubs_running;             /* publishers started and not yet done */
	uint64_t t_msg_start_ns, t_msg_end_ns; /* the publishing phase */
	uint8_t *payload;                  /* owned: scratch payload of --payload bytes */
	/* pubsub --window: per pair of this worker, what its subscriber has
	 * received and which client publishes for it. */
	uint32_t first_pair, n_pairs;
	uint64_t *pair_rx;                 /* owned */
	struct bench_client **pair_pub;    /* owned array; the clients are borrowed */
	SSL_SESSION *session;              /* owned: the session later connections resume */
	atomic_int stop;                   /* set by another thread: end the run now */
	int ending;                        /* disconnecting everyone */
	int filling;                       /* inside fill(): no recursion */
	atomic_int done;                   /* set by the thread when its loop ended */

	struct bench_client *live;         /* owned, intrusive list */
	struct bench_client *dead;         /* owned, freed on the next tick */
	struct bench_stats stats;
};

/*
 * Prepares |w| (its event base, stats, timers) to open |count| connections
 * with global indices from |first_index|, over TLS with the |n_ctx|
 * contexts at |ctxs| (borrowed; none: plain TCP), minting tokens with
 * |minter| (borrowed; may be NULL). Returns 0 on failure; call
 * bench_worker_cleanup in every case.
 */
int bench_worker_init(struct bench_worker *w, int id, const struct bench_options *o,
                SSL_CTX *const *ctxs, size_t n_ctx, const struct jwt_minter *minter,
                const struct sockaddr_storage *addr, socklen_t addr_len,
                uint32_t first_index, uint32_t count, double rate, uint32_t concurrency);

/* Runs the worker's loop on a new thread until its scenario ends. */
int bench_worker_start(struct bench_worker *w);
void bench_worker_join(struct bench_worker *w);

/* Frees every client, the loop and the stats. Safe on a zeroed worker. */
void bench_worker_cleanup(struct bench_worker *w);

/* Called by a client when its CONNACK arrived with success. */
void bench_worker_client_connected(struct bench_worker *w);
/* Called by a client when it has closed (it is not freed yet). |was_pending|
 * says it had not reached CONNACK. */
void bench_worker_client_closed(struct bench_worker *w, struct bench_client *c, int was_pending);

/* Called by a publisher when it has sent (and had acknowledged) its last
 * message, or stopped. */
void bench_worker_publisher_done(struct bench_worker *w);
/* Called by a pubsub subscriber for each new stamped message. */
void bench_worker_message_received(struct bench_worker *w);

/* Asks the worker, from any thread, to end its run as soon as it can. */
void bench_worker_stop(struct bench_worker *w);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

#endif
