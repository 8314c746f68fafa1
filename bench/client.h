/*
 * One benchmark client: TCP connect, TLS handshake, CONNECT, CONNACK, then
 * hold (with keepalive pings in the idle scenario), churn or wait for the
 * end of the run. The socket is non-blocking and driven by libevent; with
 * TLS the SSL reads and writes the socket itself (SSL_set_fd).
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "bench/mqtt_codec.h"
#include "mqtt/cursor.h"
#include "bench/worker.h"

#define CLIENT_MAGIC 0x62636c69u      /* "bcli" */
#define CLIENT_OUT_MAX 768            /* CONNECT with id, user name, password */
#define CLIENT_IN_MAX 512             /* the largest packet a client accepts */

enum client_state {
	CLIENT_TCP_CONNECTING,
	CLIENT_TLS_HANDSHAKE,
	CLIENT_WS_UPGRADE,                /* --ws: the HTTP upgrade, after TLS */
	CLIENT_AWAIT_CONNACK,
	CLIENT_CONNECTED,
	CLIENT_CLOSED,
};

struct bench_msg;
struct bench_ws;

struct bench_client {
	uint32_t magic;
	enum client_state state;
	struct bench_worker *w;           /* borrowed: the owning worker */
	struct bench_client *prev, *next; /* links in the worker's live or dead list */
	uint32_t index;                   /* global client index */
	int fd;                           /* owned */
	SSL *ssl;                         /* owned; NULL without TLS */
	struct event rd, wr, timer;       /* embedded */
	int rd_on, wr_on;                 /* whether rd / wr are added */
	int read_wants_write;             /* SSL_read asked for writability */
	int write_wants_read;             /* SSL_write asked for readability */
	int read_paused;                  /* reading waits for room for acknowledgements */
	int pump_more;                    /* a publisher has more to send once writable */
	int pending;                      /* the worker counts this client as in flight */
	int ping_outstanding;
	struct bench_msg *msg;            /* owned; pub/sub scenarios only */
	struct bench_ws *ws;              /* owned; --ws only (ws_client.h) */
	char *token;                      /* owned; the minted JWT until CONNECT is queued */
	size_t token_len;

	uint64_t t_start, t_stage, t_ping;
	uint8_t *out, *in;                /* out_small / in_small, or buffers owned by msg */
	uint32_t out_cap, out_len, out_off;
	uint32_t in_cap, in_len;
	uint8_t out_small[CLIENT_OUT_MAX];
	uint8_t in_small[CLIENT_IN_MAX];
};

/*
 * Allocates a client with global index |index|, mints its JWT when the
 * worker has a minter (timed apart from the latencies), links it into
 * w->live and starts its TCP connect. On immediate failure the error is
 * counted and the client is already closed. Returns 0 only if memory is
 * short or the token could not be minted.
 */
int bench_client_start(struct bench_worker *w, uint32_t index);

/* Sends DISCONNECT if connected, then closes. Idempotent. */
void bench_client_disconnect(struct bench_client *c);

/* Frees a closed client. bench_client_free(NULL) is a no-op. */
void bench_client_free(struct bench_client *c);

/* ---- shared with client_msg.c ---- */

/* Counts an error of kind |kind| and closes the client. */
void bench_client_fail(struct bench_client *c, enum bench_error kind);

/* Queues CONNECT and waits for CONNACK. Returns 0 if the client closed. */
int bench_client_send_connect(struct bench_client *c);

/* Writes what is queued. Returns 0 if the client closed. */
int bench_client_flush(struct bench_client *c);

/* An outbuf over the free tail of the output buffer. */
struct outbuf bench_client_out_tail(struct bench_client *c);

/* (Re)starts the client's single timer. */
void bench_client_set_timer(struct bench_client *c, double seconds);

/* Tells the worker the client is ready (CONNACK, and SUBACK for a
 * subscriber); the worker no longer counts it as in flight. */
void bench_client_ready(struct bench_client *c);

/* Arms or disarms the readable and writable events. */
void bench_client_arm(struct bench_client *c, int want_read, int want_write);

/* Handles one complete packet. Returns 0 if the client closed. */
int bench_client_on_packet(struct bench_client *c, const struct mqttc_packet *p);

/* ---- I/O (client_io.c) ---- */

/* Reads, decodes and handles everything the socket has; writes what that
 * queued (acknowledgements, a publisher's next messages). */
void bench_client_on_readable(struct bench_client *c);

enum io_result { IO_OK, IO_WANT_READ, IO_WANT_WRITE, IO_CLOSED, IO_FAILED };

/*
 * Write or read at most |n| bytes through the client's SSL, or its socket
 * without TLS. IO_OK sets *done / *got (never 0 for a read); IO_FAILED sets
 * *err. IO_CLOSED is an orderly close by the server (or an EOF in TLS).
 */
enum io_result bench_client_io_write(struct bench_client *c, const uint8_t *p, size_t n,
                               size_t *done, enum bench_error *err);
enum io_result bench_client_io_read(struct bench_client *c, uint8_t *p, size_t n,
                              size_t *got, enum bench_error *err);

/* The same on the bare transport (TLS or TCP), under any WebSocket
 * framing: ws_client.c frames and unframes around these. */
enum io_result bench_client_raw_write(struct bench_client *c, const uint8_t *p, size_t n,
                                      size_t *done, enum bench_error *err);
enum io_result bench_client_raw_read(struct bench_client *c, uint8_t *p, size_t n,
                                     size_t *got, enum bench_error *err);

/* The error kind of a failed socket call's errno. */
enum bench_error bench_client_errno_kind(int err);

/* Classifies a failed TLS call from its SSL_get_error code, the verify
 * result and the error queue, which it then clears. */
enum bench_error bench_client_tls_error(struct bench_client *c, int ssl_err);

#endif
