/*
 * One client connection and everything it owns: the client socket and its
 * SSL, the broker socket, their events (embedded), buffers only while data is
 * pending, one timer, counters. Its life is a state machine:
 *
 *   HANDSHAKE -> AWAIT_CONNECT -> AUTHENTICATING -> UPSTREAM_CONNECTING
 *             -> FORWARDING -> CLOSING -> (freed by the worker)
 *
 * session_close() is the only way out, callable from any state any number of
 * times; memory is freed by the worker after the current callback returns.
 */
#ifndef PROXY_SESSION_H
#define PROXY_SESSION_H

#include <netinet/in.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "mqtt/framer.h"
#include "tls/peer.h"
#include "tls/sock.h"

#define SESSION_MAGIC 0x6d71746cu   /* "mqtl" */

enum session_state {
	S_HANDSHAKE,
	S_AWAIT_CONNECT,
	S_AUTHENTICATING,
	S_UPSTREAM_CONNECTING,
	S_FORWARDING,
	S_CLOSING,
	S_DEAD,
};

/* Event bits for session->armed / the wanted set. */
enum {
	ARM_CLIENT_READ = 1,
	ARM_CLIENT_WRITE = 2,
	ARM_UP_READ = 4,
	ARM_UP_WRITE = 8,
	ARM_CLIENT = ARM_CLIENT_READ | ARM_CLIENT_WRITE,
	ARM_UP = ARM_UP_READ | ARM_UP_WRITE,
};

/* Flags. */
enum {
	F_READ_WANTS_WRITE = 1 << 0,    /* SSL_read needs the socket writable */
	F_WRITE_WANTS_READ = 1 << 1,    /* SSL_write needs the socket readable */
	F_HS_WANTS_WRITE = 1 << 2,      /* handshake waits for writable */
	F_CLIENT_EOF = 1 << 3,          /* no more bytes will come from the client */
	F_CLIENT_DEAD = 1 << 4,         /* never write to the client again */
	F_UP_EOF = 1 << 5,
	F_UP_DEAD = 1 << 6,
	F_IN_HANDSHAKE_COUNT = 1 << 7,  /* counted in worker->n_handshakes */
	F_TLS_DONE = 1 << 8,            /* handshake completed: close_notify makes sense */
	F_UP_EVENTS = 1 << 9,           /* ev_up is assigned */
	F_KICK_READ = 1 << 10,          /* a client read turn was requested by event_active */
	F_READ_IDLE = 1 << 11,          /* the last client read found the socket empty */
	F_HELLO_DONE = 1 << 12,         /* the ClientHello deadline gave way to the handshake's */
};

struct worker;
struct auth_job;

/* Authentication state; allocated only when a policy or injection is on. */
struct session_auth {
	struct auth_job *job;           /* in flight on the pool, or NULL */
	uint8_t method;                 /* enum auth_method that decided */
	uint8_t refusing;               /* a refusal waits for its delay */
	uint8_t refusal;                /* enum mqtt_refusal */
	uint8_t track_down;             /* count broker->client packet boundaries */
	uint8_t expiring;               /* ending mid-packet: finishing that packet first */
	uint8_t end_code;               /* the DISCONNECT reason sent once it is finished */
	const char *end_reason;         /* and the close reason logged */
	const char *refusal_reason;
	char *user;                     /* escaped identity, owned */
	int64_t expires;                /* token end (with leeway), 0 if none */
	uint64_t connect_ms;            /* when the CONNECT was complete: the failure delay's start */
	struct mqtt_framer down;        /* broker->client boundaries */
};

struct session {
	uint32_t magic;
	uint8_t state;                  /* enum session_state */
	uint8_t armed;                  /* ARM_* bits currently added to the loop */
	uint8_t mqtt_version;           /* 0 until a CONNECT was parsed */
	uint8_t close_state;            /* the state session_close was called in */
	uint16_t flags;
	uint16_t write_pending;         /* bytes an unfinished SSL_write must be retried with */
	int cfd;                        /* client socket, owned */
	int ufd;                        /* broker socket, owned, -1 if none */
	SSL *ssl;                       /* owned */
	struct tls_sock sock;           /* the client fd as the SSL's BIO sees it */
	struct worker *w;               /* borrowed */
	struct session *next, *prev;    /* worker's list */
	/* One event per socket, re-assigned when the wanted READ/WRITE set
	 * changes (session_rearm): two events less per connection. */
	struct event ev_client, ev_up, ev_timer;
	struct evbuffer *to_up;         /* plaintext for the broker; owned, NULL when empty */
	struct evbuffer *to_client;     /* plaintext to encrypt; owned, NULL when empty */
	struct tls_peer peer;
	struct session_auth *auth;      /* owned, or NULL */
	char *client_id;                /* escaped copy for the log; owned */
	const char *close_reason;       /* static string */
	uint64_t bytes_in;              /* plaintext from client */
	uint64_t bytes_out;             /* plaintext to client */
	uint64_t start_ms;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
};

/* Takes ownership of |fd|; starts the TLS handshake. Returns NULL on failure
 * (the fd is closed). */
struct session *session_new(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen);
/* Ends the session with |reason| (kept if one was already set): flushes what
 * can be flushed, sends close_notify, then hands it to the worker to free. */
void session_close(struct session *s, const char *reason);
/* session_close for code outside a session callback (the worker's stop):
 * also settles the session, which may finish it at once. */
void session_close_now(struct session *s, const char *reason);
/* Frees the memory of a finished session (worker only). */
void session_free(struct session *s);

/* Internal to proxy/session*.c and proxy/forward.c */
static inline size_t buf_len(const struct evbuffer *b)
{
	return b ? evbuffer_get_length(b) : 0;
}

/* Monotonic milliseconds, for durations and the failure-delay table. */
uint64_t session_now_ms(void);
void session_rearm(struct session *s);
/* Gives the client side a read turn on the next loop iteration even if the
 * socket is quiet (data may wait inside the SSL). */
void session_kick_read(struct session *s);
size_t session_client_in_limit(const struct session *s);
void session_connect_parsed(struct session *s);
void session_refuse(struct session *s, int refusal, const char *reason);
void forward_client_in(struct session *s);
void forward_client_out(struct session *s);
void forward_up_in(struct session *s);
void forward_up_out(struct session *s);
void session_try_connect(struct session *s);
void session_assign_upstream(struct session *s);
void session_close_upstream(struct session *s);
void session_parse_connect(struct session *s);
void session_settle_external(struct session *s);
/* session_auth.c */
void session_authenticate(struct session *s, const uint8_t *pkt, size_t len);
void session_auth_free(struct session_auth *a);
int session_auth_timer(struct session *s);
void session_auth_forwarding(struct session *s);
void session_auth_track(struct session *s, struct evbuffer *buf, size_t from);
void session_auth_timer_forwarding(struct session *s);
void session_end_v5(struct session *s, uint8_t code, const char *reason);
size_t session_auth_read_limit(const struct session *s, size_t room);
void session_auth_after_read(struct session *s);
void session_maybe_finish(struct session *s);

#endif
