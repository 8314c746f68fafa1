/*
 * A worker is one thread with one event loop and its own listening sockets
 * (SO_REUSEPORT): the kernel spreads new connections across workers and a
 * connection never moves between threads.
 */
#ifndef PROXY_WORKER_H
#define PROXY_WORKER_H

#include <pthread.h>
#include <sys/socket.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "proxy/config.h"
#include "proxy/bufq.h"
#include "proxy/metrics.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "proxy/slab.h"

struct session;
struct counts;

/* Event priorities: live sessions first, new clients when they are idle. */
enum {
	PRI_LIVE = 0,       /* established sessions, timers, control events */
	PRI_NEW = 1,        /* accepting and TLS handshakes */
	PRI_COUNT = 2,
};

struct worker {
	int id;
	struct proxy *proxy;               /* shared, borrowed */
	struct event_base *base;           /* owned */
	int lfd[CONFIG_MAX_LISTEN];        /* owned listening sockets */
	int n_listen;
	struct event ev_listen[CONFIG_MAX_LISTEN];
	int accepting;                     /* listen events armed */
	struct event ev_resume;            /* re-arms accepting after EMFILE */
	struct event ev_reap;              /* frees finished sessions */
	struct event ev_stop;              /* activated from the main thread */
	struct event ev_deadline;          /* hard stop during shutdown */
	struct session_list handshaking;   /* owned; in the TLS handshake, oldest at the tail */
	struct session_list sessions;      /* owned; past the handshake */
	struct session_list dead;          /* finished, freed by ev_reap */
	long n_sessions;                   /* on either list */
	long n_handshakes;                 /* on the handshaking list */
	struct counts *counts;             /* owned: in-flight counts per address / user */
	struct blk_cache blocks;           /* owned: free buffer blocks of this worker's sessions */
	struct slab_cache session_slots;   /* owned: the memory of this worker's sessions */
	struct metrics metrics;            /* written by this worker only, read by /metrics */
	struct event ev_tick;              /* once a second: the heartbeat /healthz reads */
	struct event ev_drain;             /* activated from the main thread: stop accepting */
	long auth_jobs;                    /* slow auth checks on the pool */
	size_t auth_bytes;                 /* memory those jobs hold */
	uint64_t refused_log_ms;           /* rate limit of the "refused at accept" line */
	long refused_quiet;                /* refusals not logged since */
	int stopping;
	int draining;                      /* listeners closed; sessions go on */
	struct pool_home home;             /* auth checks finished on the pool */
	int home_ok;
	pthread_t thread;
};

/*
 * Binds one listening socket per address in |cfg->listen| for worker |w|.
 * |bound| carries the addresses actually bound by the first worker (port 0
 * resolved), so that every worker shares the same ports. Returns 1/0 and
 * writes a one-line error.
 */
int worker_init(struct worker *w, int id, struct proxy *p, struct address *bound,
                char *err, size_t errlen);
int worker_start(struct worker *w);
/* Takes ownership of the accepted client socket |fd| from |sa|: starts its
 * session (TLS handshake) on this worker's loop, or closes the fd when the
 * address is over --max-handshakes-per-ip or memory is short. Returns the
 * session, borrowed (the worker frees it), or NULL. What the accept callback
 * does for each connection; tests and fuzzers call it with socketpairs. */
struct session *worker_adopt(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len);
/* Thread-safe: asks the worker to stop accepting and close its listening
 * sockets; its sessions go on (the first phase of a drain). */
void worker_request_drain(struct worker *w);
/* Thread-safe: the worker's open connections, as last counted by it. */
uint64_t worker_connections(const struct worker *w);
/* Thread-safe: asks the worker to stop accepting and close its sessions. */
void worker_request_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_cleanup(struct worker *w);

/* Called by sessions. */
/* Moves finished |s| to the dead list; the worker frees it after the
 * current callback returns. */
void worker_session_finished(struct worker *w, struct session *s);
/* |s| left the TLS handshake (done or failed): frees its handshake slot and,
 * if |ip_counted|, its per-address count; resumes accepting if that was the
 * limit. */
void worker_handshake_done(struct worker *w, struct session *s, int ip_counted);
/* Counts one more handshake for the client address |sa| (--max-handshakes-
 * per-ip); returns 1, or 0 (counted nothing, logged, metric moved) when the
 * address is at its limit. */
int worker_take_handshake_ip(struct worker *w, const struct sockaddr *sa);

#endif
