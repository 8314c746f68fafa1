/*
 * One client connection, seen from outside: the worker creates sessions,
 * keeps them on its lists, asks them to stop, and frees them once finished.
 * Everything else about a session is internal (session_int.h).
 *
 * A session's life is a state machine owned by proxy/session.c (the hub):
 *
 *   HANDSHAKE -> AWAIT_CONNECT -> AUTHENTICATING -> UPSTREAM_CONNECTING
 *             -> FORWARDING -> CLOSING -> (freed by the worker)
 *
 * It can be closed from any state any number of times; its memory is freed
 * by the worker after the current callback returns.
 */
#ifndef PROXY_SESSION_H
#define PROXY_SESSION_H

#include <stdint.h>
#include <sys/socket.h>

struct session;
struct slab_cache;
struct worker;

/* A doubly linked list of sessions, owned by a worker; new ones go to the
 * head, so the tail is the oldest. All-zero is empty. */
struct session_list {
	struct session *head, *tail;
};

/* Takes ownership of the socket |fd| accepted from |sa| on the worker's
 * listener number |listener| and starts the TLS handshake on |w|'s loop.
 * Returns NULL on failure (the fd is closed). The caller puts the session
 * on one of its lists. */
struct session *session_new(struct worker *w, unsigned listener, int fd, const struct sockaddr *sa,
                            socklen_t salen);
/* Ends |s| now with |reason| (for code outside the session's callbacks,
 * such as the worker): it flushes what it can and may finish at once. */
void session_close_now(struct session *s, const char *reason);
/* Ends |s| for a server stop: an MQTT 5 client first gets DISCONNECT 0x8B
 * (server shutting down) between two broker packets; others are closed. */
void session_shutdown(struct session *s);
/* Ends |s| at once without flushing anything (a forced stop). */
void session_abort(struct session *s);
/* Frees a finished session (worker only). session_free(NULL) is a no-op. */
void session_free(struct session *s);
/* Prepares |c| to hold sessions: session_new takes them from its worker's
 * cache, session_free gives them back (proxy/slab.h says why). */
void session_slots_init(struct slab_cache *c);

/* Monotonic milliseconds at which |s| was accepted. */
uint64_t session_started_ms(const struct session *s);
/* The client's address, borrowed from |s|. */
const struct sockaddr *session_peer(const struct session *s);

/* Puts |s| at the head of |l|. */
void session_list_push(struct session_list *l, struct session *s);
/* Takes |s| off |l|, which must hold it. */
void session_list_unlink(struct session_list *l, struct session *s);
/* The session after |s| on its list (towards the tail), or NULL. */
struct session *session_list_next(const struct session *s);
/* The session before |s| on its list (towards the head: newer), or NULL. */
struct session *session_list_prev(const struct session *s);
/* 1 while |s| has not received a complete ClientHello (nor, behind a
 * balancer, its PROXY header): what a stalled client looks like. */
int session_in_hello(const struct session *s);

/* Monotonic milliseconds, for durations and the failure-delay table. */
uint64_t session_now_ms(void);

#endif
