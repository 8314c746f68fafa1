/*
 * Inside a session: the struct, and the stages the hub (session.c) calls.
 *
 * The hub alone owns the libevent callbacks, the state and its transitions,
 * the one timer and what it means in each state, and the ways out (close,
 * refuse, graceful end). A stage does one job on the session's buffers or
 * sockets and returns an outcome; it never calls another stage, never sets
 * s->state and never arms an event. The stages:
 *
 *   forward.c       moves bytes one way, bounded               enum fwd
 *   connect.c       frames and parses the CONNECT, once        enum connect_step
 *   session_auth.c  decides who the client is; may use the pool enum auth_step
 *   upstream.c      opens and completes the broker connection  enum up_step
 *   session_end.c   follows broker packet boundaries for a clean cut
 *   acl_stage.c     topic ACL on client PUBLISH/SUBSCRIBE          enum acl_step
 *   ws_stage.c      answers a WebSocket upgrade request         enum ws_step
 *
 * On WebSocket listeners the byte mover frames and unframes the client's
 * side (ws_forward.c), so to_up and to_client hold plain MQTT either way.
 *
 * With --upstream-tls the broker socket carries TLS (upstream_tls.c): a
 * transport under upstream.c (the handshake) and forward.c (reads and
 * writes), as tls/ is under the client side, so to_up and to_client hold
 * plain MQTT on that side too.
 *
 * The one call from a stage to the hub is session_auth_ready(): the pool's
 * answer arriving on the loop, which the hub then asks for its outcome.
 */
#ifndef PROXY_SESSION_INT_H
#define PROXY_SESSION_INT_H

#include <netinet/in.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "mqtt/connack.h"
#include "mqtt/connect.h"
#include "mqtt/framer.h"
#include "proxy/acl_filter.h"
#include "proxy/bufq.h"
#include "proxy/metrics.h"
#include "proxy/session.h"
#include "tls/peer.h"
#include "tls/sock.h"

#define SESSION_MAGIC 0x6d71746cu   /* "mqtl" */

enum session_state {
	S_PROXY_HEADER,         /* --accept-proxy: reading the balancer's header */
	S_HANDSHAKE,
	S_WS_UPGRADE,           /* --ws-listen: reading the HTTP upgrade request */
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
	F_CONNACK_SEEN = 1 << 13,       /* the client has had its CONNACK (timed for metrics) */
	F_IP_COUNTED = 1 << 14,         /* counted in the per-address connection limit */
	F_ID_COUNTED = 1 << 15,         /* counted in the per-identity limit (auth->user) */
	F_HS_IP_COUNTED = 1 << 16,      /* counted in the worker's handshakes per address */
};

struct worker;
struct auth_job;
struct upstream_tls;
struct ws_conn;
struct acl;
struct acl_session;

/* A limit a client was over when it was accepted: it still gets its TLS
 * handshake, so that its CONNECT can be answered with a CONNACK. */
enum session_limit {
	OVER_NONE,
	OVER_CONN_PER_IP,       /* 5.0 0x97 quota exceeded; 3.x 3 */
	OVER_CONN_RATE,         /* the same */
	OVER_MAX_CONNECTIONS,   /* 5.0 0x89 server busy; 3.x 3 */
};

/* Authentication state; allocated only when a policy or injection is on. */
struct session_auth {
	struct auth_job *job;           /* in flight on the pool, or NULL */
	struct auth_job *ready;         /* back from the pool, owned until finished */
	uint8_t method;                 /* enum auth_method that decided */
	uint8_t refusing;               /* a refusal waits for its delay */
	uint8_t refusal;                /* enum mqtt_refusal */
	const char *refusal_reason;     /* static */
	uint32_t hold_ms;               /* how long the refusal still waits */
	char *user;                     /* escaped identity, owned */
	char *identity;                 /* the same unescaped, owned, kept only for an ACL's %u */
	struct acl *acl;                /* the token's `acl` claim until the ACL stage takes it */
	int64_t expires;                /* token end (with leeway), 0 if none */
	uint64_t connect_ms;            /* when the CONNECT was complete: the failure delay's start */
};

/* The broker->client packet boundaries, followed while a clean cut may be
 * needed (MQTT 5: token expiry, shutdown); allocated only then. */
struct session_end {
	struct mqtt_framer down;
	uint8_t ending;                 /* a cut waits for the packet in progress */
	uint8_t code;                   /* the DISCONNECT reason to send then */
	const char *reason;             /* and the close reason to log, static */
};

struct session {
	uint32_t magic;
	uint8_t state;                  /* enum session_state */
	uint8_t armed;                  /* ARM_* bits currently added to the loop */
	uint8_t mqtt_version;           /* 0 until a CONNECT was parsed */
	uint8_t close_state;            /* the state session_close was called in */
	uint8_t listener;               /* index of the listener it came in on */
	uint8_t over_limit;             /* enum session_limit: refused once its CONNECT is read */
	uint8_t broker;                 /* index of the broker being tried (proxy/brokers.h) */
	uint8_t brokers_tried;          /* a bit per broker this session has tried */
	uint32_t flags;
	uint16_t write_pending;         /* bytes of to_client an unfinished SSL_write must be retried
	                                   with (WebSocket: the payload a sent frame header announced) */
	int cfd;                        /* client socket, owned */
	int ufd;                        /* broker socket, owned, -1 if none */
	SSL *ssl;                       /* owned */
	struct tls_sock sock;           /* the client fd as the SSL's BIO sees it */
	struct worker *w;               /* borrowed */
	struct session *next, *prev;    /* the worker's list (session_list_*) */
	/* One event per socket, re-assigned when the wanted READ/WRITE set
	 * changes (session_rearm): two events less per connection. */
	struct event ev_client, ev_up, ev_timer;
	struct bufq to_up;              /* plaintext for the broker; blocks only while not empty */
	struct bufq to_client;          /* plaintext to encrypt; the same */
	struct tls_peer peer;
	struct session_auth *auth;      /* owned, or NULL */
	struct session_end *end;        /* owned, or NULL */
	struct upstream_tls *up_tls;    /* owned with --upstream-tls, else NULL (upstream_tls.c) */
	struct ws_conn *ws;             /* owned; WebSocket listeners only, from TLS done on */
	struct acl_session *acl;        /* owned while an ACL applies (acl_stage.c), else NULL */
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

/* The worker's free blocks, which the session's queues take and give back. */
struct blk_cache *session_blocks(const struct session *s);

/* The most client bytes to_up may hold in the current state: room for the
 * CONNECT before authentication, the forwarding buffer after. */
size_t session_client_in_limit(const struct session *s);

/* ---- the session's life (session_life.c) -------------------------------- */

/* Logs the one line that describes a finished connection. */
void session_log_close(const struct session *s);
/* Logs that the client is refused for |reason|, with |detail| (may be NULL). */
void session_log_refusal(const struct session *s, const char *reason, const char *detail);
/* Logs why a TLS handshake failed (verify failures at warn, others at debug). */
void session_log_handshake_failure(const struct session *s);
/* Logs why the client's session ticket was turned down, if it was (a revoked
 * certificate at warn, other reasons at info). */
void session_log_resume_refusal(const struct session *s);

/* ---- metrics and limits at accept (session_stats.c) ---------------------- */

/* Counts a handshake that ended before completing, classified by |reason|. */
void stats_handshake_failed(struct session *s, const char *reason);
/* Counts a completed handshake: version, resumption, duration. */
void stats_handshake_ok(struct session *s);
/* Times the client's CONNACK (the broker's or mqtls's refusal), once. */
void stats_connack(struct session *s);
/* Counts an auth decision of the session's method with result |r|. */
void stats_auth(struct session *s, enum auth_result_label r);
/* The result label of a refusal reason the auth stage gave. */
enum auth_result_label stats_auth_refusal(const char *reason);
/* Checks a new client against --max-connections and the per-address
 * limits; over one, sets s->over_limit (its CONNECT will be refused). */
void limits_at_accept(struct session *s);

/* ---- PROXY header (accept_proxy.c) ------------------------------------------ */

enum header_step {
	HEADER_WAIT,        /* incomplete: the socket will say when there is more */
	HEADER_DONE,        /* read; s->addr is the client the header names */
	HEADER_INVALID,     /* not a PROXY header, or malformed, or too long */
	HEADER_CLOSED,      /* the peer closed before the header was complete */
	HEADER_ERROR,       /* the socket failed */
};

/* Reads the balancer's PROXY v1/v2 header off the client socket, never a
 * byte beyond it. */
enum header_step proxy_header_read(struct session *s);

/* ---- hub entry for stages (session.c) ---------------------------------- */

/* The auth stage's pending check finished on the pool; called on the
 * session's loop, outside any session callback. */
void session_auth_ready(struct session *s);

/* ---- byte mover (forward.c) -------------------------------------------- */

enum fwd {
	FWD_OK,         /* moved what could be moved; the sockets say when to go on */
	FWD_AGAIN,      /* stopped by the per-turn budget: more may be waiting */
	FWD_EOF,        /* the peer closed its side */
	FWD_ERROR,      /* the peer failed: never write to it again */
	FWD_OOM,        /* no memory for a buffer */
};

/* Decrypts client bytes into to_up until the socket is empty, to_up holds
 * session_client_in_limit bytes, or the turn's budget is spent; with
 * |flush_first|, the first record is written to the broker before reading
 * on (a lone message then leaves at once). */
enum fwd forward_client_in(struct session *s, int flush_first);
/* Encrypts to_client onto the client socket until it is empty or the socket
 * is full; drops it when the client is dead. */
enum fwd forward_client_out(struct session *s);
/* Reads broker bytes into to_client, at most |limit| in this call and never
 * beyond --max-buffer. */
enum fwd forward_up_in(struct session *s, size_t limit);
/* Writes to_up to the broker socket until it is empty or the socket is
 * full; drops it when the broker is dead. */
enum fwd forward_up_out(struct session *s);

/* Byte mover hooks for WebSocket sessions (ws_forward.c). */
/* Decodes the |*n| client bytes just decrypted at |p| in place (raw until
 * the upgrade is answered) and sets *n to the MQTT bytes now at |p|.
 * Returns 1, or 0 when the client's stream ended (a close frame or a
 * protocol error: F_CLIENT_EOF is set, the close answer queued). */
int ws_forward_in(struct session *s, uint8_t *p, size_t *n);
/* Decodes in place the frames that followed the upgrade request in to_up
 * (a client may send them before the 101). Returns 1, or 0 without memory. */
int ws_forward_rest(struct session *s);
/* forward_client_out for WebSocket sessions: the upgrade answer, pongs,
 * to_client as binary frames (headers written in place), the close frame. */
enum fwd ws_forward_out(struct session *s);

/* ---- WebSocket upgrade (ws_stage.c) -------------------------------------- */

enum ws_step {
	WS_STEP_NEED_MORE,  /* the request head has not ended yet */
	WS_STEP_OK,         /* the 101 is queued; to_up holds the frames that followed */
	WS_STEP_REFUSE,     /* the 4xx answer is queued, the refusal logged; *reason says why */
	WS_STEP_OOM,
};

/* Gives a session of a --ws-listen listener its WebSocket state. Returns 1/0. */
int ws_stage_start(struct session *s);
/* Reads the upgrade request at the front of to_up and answers it. */
enum ws_step ws_stage_upgrade(struct session *s, const char **reason);
/* Counts an upgrade that ended with the session (|reason|) before an answer. */
void ws_stage_abandoned(struct session *s, const char *reason);
/* Queues a close frame with |code| after what is queued, unless the
 * upgrade was never answered or a close is queued already. */
void ws_stage_close(struct session *s, uint16_t code);
/* Why the client's stream ended once F_CLIENT_EOF is set: its close
 * frame, a protocol error, or "client_closed" (no frame at all). */
const char *ws_stage_end_reason(const struct session *s);
/* Bytes still to write to the client besides to_client (s->ws set). */
size_t ws_stage_pending(const struct session *s);
/* Frees |w|; NULL is a no-op. */
void ws_conn_free(struct ws_conn *w);

/* ---- CONNECT (connect.c) ----------------------------------------------- */

enum connect_step {
	CONNECT_NEED_MORE,  /* the first packet is not complete yet */
	CONNECT_OK,         /* *out describes the CONNECT at the front of to_up */
	CONNECT_REFUSE,     /* *refusal and *reason say how to answer */
	CONNECT_OOM,        /* no memory to make the packet contiguous */
};

/* Frames and parses the client's first packet at the front of to_up. On OK,
 * *pkt and *len are the packet (contiguous, borrowed from to_up until it
 * changes) and *out its parsed fields pointing into it; sets
 * s->mqtt_version and s->client_id. On REFUSE, *refusal is an enum
 * mqtt_refusal (answered if the client's version has a code for it), and
 * the refusal is logged. */
enum connect_step connect_parse(struct session *s, struct mqtt_connect *out, const uint8_t **pkt,
                                size_t *len, int *refusal, const char **reason);

/* ---- auth (session_auth.c) --------------------------------------------- */

enum auth_step {
	AUTH_STEP_ALLOW,    /* to_up holds the CONNECT the broker should get */
	AUTH_STEP_REFUSE,   /* s->auth says with what and after how long */
	AUTH_STEP_PENDING,  /* on the pool; session_auth_ready() follows */
	AUTH_STEP_BUSY,     /* the check queue is full: refuse "server busy" now */
	AUTH_STEP_OOM,
};

/* Starts deciding on the CONNECT |c| (the |len| bytes at |pkt|, at the
 * front of to_up), which it consumes from to_up (and re-emits with
 * injected credentials when it allows). */
enum auth_step session_auth_start(struct session *s, const struct mqtt_connect *c,
                                  const uint8_t *pkt, size_t len);
/* The outcome of a check that was PENDING, once session_auth_ready ran. */
enum auth_step session_auth_finish(struct session *s);
/* Frees |a|, disowning (and cancelling) a check still on the pool. NULL is a no-op. */
void session_auth_free(struct session_auth *a);

/* ---- broker connection (upstream.c) ------------------------------------ */

enum up_step {
	UP_CONNECTED,       /* s->ufd is connected (to_up may already be on its way) */
	UP_PENDING,         /* wait for the socket to be writable, then upstream_check */
	UP_FAILED,          /* *err is the errno; s->ufd is closed; another broker may be left */
	UP_EXHAUSTED,       /* every broker has been tried: none is left */
	UP_TLS_FAILED,      /* --upstream-tls: the broker's TLS failed; s->ufd is closed */
};

/* Opens the connection to the next broker this session has not tried
 * (brokers_next) into s->ufd. */
enum up_step upstream_open(struct session *s, int *err);
/* Whether a pending connection completed, learnt by writing the CONNECT. */
enum up_step upstream_check(struct session *s, int *err);
/* Closes s->ufd (its events leave the loop first); safe without one. */
void upstream_close(struct session *s);
/* Logs that the broker tried could not be reached, with |err|. */
void upstream_log_failure(const struct session *s, int err);
/* The broker tried did not answer within --upstream-timeout: marks it
 * down and closes s->ufd, so that upstream_open may try the next. */
void upstream_abandon(struct session *s);
/* 1 once this session has tried every broker. */
int upstream_tried_all(const struct session *s);

/* ---- broker TLS (upstream_tls.c) ---------------------------------------- */

/* Keeps the PROXY v2 header |hdr| (|n| bytes) to send in clear before the
 * TLS handshake, where PROXY receivers expect it. Returns 1/0. */
int upstream_tls_preamble(struct session *s, const uint8_t *hdr, size_t n);
/* upstream_check with --upstream-tls: the connect, then the PROXY header,
 * then the TLS handshake; CONNECTED once it is done (to_up not yet sent). */
enum up_step upstream_tls_check(struct session *s, int *err);
/* readv(2) on the broker socket, through its TLS: decrypts into the |nv|
 * vectors until they are full or the SSL has no more; returns the count,
 * 0 at the broker's end, or -1 with errno (EAGAIN when it must wait). */
ssize_t upstream_tls_read(struct session *s, const struct iovec *v, int nv);
/* bufq_write of to_up's first block through the broker's TLS: returns the
 * bytes written and drained, or -1 with errno (EAGAIN when it must wait). */
ssize_t upstream_tls_write(struct session *s);
/* The broker events |want| (ARM_* bits) asks for, turned into those the
 * TLS connection waits for; |want| itself without --upstream-tls. */
uint8_t upstream_tls_arm(const struct session *s, uint8_t want);
/* 1 if decrypted or read-ahead broker bytes wait while the socket may stay
 * quiet, and the last read did not end for want of socket bytes. */
int upstream_tls_kick(const struct session *s);
/* 1 if the broker's TLS ended in a TLS error (an alert, a bad record),
 * not a plain close. */
int upstream_tls_alerted(const struct session *s);
/* 1 if the last SSL_write to the broker waits for the socket readable. */
int upstream_tls_write_wants_read(const struct session *s);
/* 1 if the last SSL_read from the broker waits for the socket writable. */
int upstream_tls_read_wants_write(const struct session *s);
/* Sends close_notify to a broker that completed the handshake and is not
 * dead, and frees the SSL (before s->ufd closes); s->up_tls stays. */
void upstream_tls_close(struct session *s);
/* Frees s->up_tls; safe without one. */
void upstream_tls_free(struct session *s);
/* Logs why TLS with the broker failed (reason=broker_tls, the verify error). */
void upstream_tls_log_failure(const struct session *s);

/* ---- topic ACL (acl_stage.c, on proxy/acl_filter.c) ---------------------- */

enum acl_attach {
	ACL_OFF,            /* no ACL applies: the stream stays opaque */
	ACL_ON,             /* s->acl is set; filter what follows the CONNECT */
	ACL_ATTACH_OOM,
};

/* Once the client is admitted, sets s->acl if --acl-file or its token's
 * `acl` claim applies, and says in *connect_len where the CONNECT at the
 * front of to_up ends. */
enum acl_attach acl_attach(struct session *s, size_t *connect_len);
/* Filters the client bytes of to_up from offset |from| on (acl_filter.h):
 * afterwards to_up holds only what may reach the broker. */
enum acl_step acl_up(struct session *s, size_t from, struct acl_report *rep);

enum acl_down {
	ACL_DOWN_IDLE,      /* nothing for the ACL: feed the end framer as usual */
	ACL_DOWN_DONE,      /* the broker bytes from |from| on were followed and fed */
	ACL_DOWN_OOM,
};

/* Looks at the broker bytes of to_client from offset |from| on while a
 * SUBACK merge or an answer of mqtls's waits. */
enum acl_down acl_down(struct session *s, size_t from);

/* ---- packet boundaries (session_end.c) --------------------------------- */

/* Starts following broker->client packets (MQTT 5 only). Returns 1/0. */
int end_follow(struct session *s);
/* Feeds the broker bytes of to_client from offset |from| on to the framer. */
void end_track(struct session *s, size_t from);
/* What forward_up_in may read now: all of |room|, or while a cut waits,
 * no more than the end of the packet in progress. */
size_t end_read_limit(const struct session *s, size_t room);

enum end_step {
	END_CUT,            /* to_client ends on a packet boundary (+ DISCONNECT if any) */
	END_WAIT,           /* the client has the start of a packet: wait for its end */
};

/* Prepares to_client for the session's last bytes: drops a trailing
 * partial packet and appends DISCONNECT |code| (MQTT 5 with boundaries
 * known), or waits for the packet the client already has the start of
 * (once: a second call never waits). */
enum end_step end_cut(struct session *s, uint8_t code, const char *reason);
/* 1 while a cut waits and the packet it waits for has now ended. */
int end_ready(const struct session *s);

#endif
