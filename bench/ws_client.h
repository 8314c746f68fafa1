/*
 * mqtls-bench over WebSockets (--ws PATH): the client side of RFC 6455 as
 * the transport under MQTT, between TLS (or TCP) and the MQTT codec.
 *
 * After the TLS handshake the client sends an HTTP/1.1 upgrade request for
 * PATH with the subprotocol "mqtt" and checks the 101 answer (its
 * Sec-WebSocket-Accept and subprotocol) before it sends CONNECT. From then
 * on every write goes out as one masked binary frame (a client must mask,
 * 5.3) and reads are unframed in place: server frames are unmasked, their
 * headers are dropped and the MQTT bytes end contiguous in the caller's
 * buffer. Ping frames from the server are dropped unanswered (mqtls sends
 * none); a close frame ends the client.
 *
 * The codec functions touch no socket, so the unit tests drive them
 * directly; the rest plugs into client.c and client_io.c.
 */
#ifndef BENCH_WS_CLIENT_H
#define BENCH_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "bench/client.h"

#define BENCH_WS_KEY_LEN 24          /* base64 of 16 random bytes */
#define BENCH_WS_HDR_MAX 14          /* client frame header: 64-bit length + mask */
#define BENCH_WS_REQUEST_MAX 512     /* the upgrade request, path included */

/* The server->client stream's decoder. */
struct bench_ws_rx {
	uint64_t left;                   /* payload bytes of the current frame to come */
	uint8_t hdr[10];                 /* a header split across reads (unmasked: <= 10) */
	uint8_t hdr_len;
	uint8_t opcode;                  /* the current frame's */
	uint8_t closed;                  /* a close frame was seen */
};

/* One client's WebSocket state: allocated with --ws only (owned by the
 * client, bench_ws_free). */
struct bench_ws {
	struct bench_ws_rx rx;
	uint8_t *frame;                  /* owned: the masked frame being written */
	uint32_t frame_cap, frame_len, frame_off;
	uint32_t frame_payload;          /* MQTT bytes the pending frame carries */
	uint32_t mask_state;             /* xorshift32 for the masking keys */
	char key[BENCH_WS_KEY_LEN + 1];  /* Sec-WebSocket-Key sent */
};

enum bench_ws_rx_result { BENCH_WS_RX_OK, BENCH_WS_RX_CLOSED, BENCH_WS_RX_BAD };

enum bench_ws_reply { BENCH_WS_REPLY_NEED_MORE, BENCH_WS_REPLY_OK, BENCH_WS_REPLY_BAD };

/* ---- codec ---- */

/*
 * Writes one final binary frame carrying |n| bytes of |p| masked with
 * |mask| into |dst| (|cap| bytes). Returns the frame's length, or 0 if it
 * does not fit.
 */
size_t bench_ws_frame(uint8_t *dst, size_t cap, const uint8_t *p, size_t n, const uint8_t mask[4]);

/*
 * Unframes |len| bytes at |buf| in place: payload bytes of binary and
 * continuation frames move to the front, *out tells how many. Control
 * frames' payloads are dropped. CLOSED once a close frame's header is read
 * (the data before it is still in *out); BAD for a masked server frame, a
 * reserved bit, a text frame [MQTT-6.0.0-1] or an unknown opcode.
 */
enum bench_ws_rx_result bench_ws_decode(struct bench_ws_rx *d, uint8_t *buf, size_t len, size_t *out);

/*
 * Writes the upgrade request for |path| with |key| and the Host |host|
 * (all NUL-terminated) into |dst|. Returns its length, 0 if it does not fit
 * in |cap|.
 */
size_t bench_ws_request(char *dst, size_t cap, const char *host, const char *path, const char *key);

/*
 * Reads the server's answer at |buf| (|len| bytes): NEED_MORE until the
 * head ends, OK (with *head_len, the bytes of the head; frames may follow)
 * for a 101 with the Sec-WebSocket-Accept |key| calls for and the
 * subprotocol "mqtt", BAD otherwise.
 */
enum bench_ws_reply bench_ws_reply(const uint8_t *buf, size_t len, const char *key, size_t *head_len);

/* ---- the client's transport ---- */

/* Allocates the client's WebSocket state (frame buffer sized to its output
 * buffer). Returns 0 if memory is short. */
int bench_ws_attach(struct bench_client *c);

/* Frees |ws|; NULL is a no-op. */
void bench_ws_free(struct bench_ws *ws);

/* Queues and sends the upgrade request (state CLIENT_WS_UPGRADE). Returns
 * 0 if the client closed. */
int bench_ws_start(struct bench_client *c);

/* Reads the answer to the upgrade; on a good one sends CONNECT. */
void bench_ws_on_upgrade_readable(struct bench_client *c);

/* bench_client_io_write and _read through WebSocket frames (same contract). */
enum io_result bench_ws_write(struct bench_client *c, const uint8_t *p, size_t n, size_t *done,
                              enum bench_error *err);
enum io_result bench_ws_read(struct bench_client *c, uint8_t *p, size_t n, size_t *got,
                             enum bench_error *err);

#endif
