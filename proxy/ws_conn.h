/*
 * The per-connection state of MQTT over WebSockets: allocated when a
 * session accepted on a --ws-listen listener finishes its TLS handshake
 * (struct session holds one pointer, NULL on plain TLS listeners, so an
 * idle TLS connection pays nothing for it).
 *
 * Shared by the upgrade stage (ws_stage.c) and the byte mover's WebSocket
 * half (ws_forward.c); nothing else looks inside.
 */
#ifndef PROXY_WS_CONN_H
#define PROXY_WS_CONN_H

#include <stdint.h>

#include "proxy/ws_frame.h"

/* What is written raw before any data: the HTTP answer to the upgrade
 * (a 101 is about 170 bytes, a 4xx about 100), or a pong. Allocated only
 * while it waits, so an idle connection does not keep it. */
#define WS_RAW_MAX 256

/* Broker bytes per data frame: with its 4-byte header, one full TLS
 * record, so a frame and its header leave in one SSL_write. */
#define WS_CHUNK_MAX (16384 - 4)
/* Headroom left in front of each block of broker bytes for that header. */
#define WS_OUT_HEADROOM 4

enum ws_close_state { WS_CLOSE_NONE, WS_CLOSE_QUEUED, WS_CLOSE_SENT };

struct ws_conn {
	struct ws_decoder dec;      /* client->broker frames */
	uint8_t upgraded;           /* 101 sent: bytes from the client are frames */
	uint8_t counted;            /* the upgrade's outcome is in the metrics */
	uint8_t close;              /* enum ws_close_state of our close frame */
	uint8_t raw_busy;           /* an SSL_write of raw must be retried as is */
	uint8_t hdr_len;            /* a frame header to send alone (no room before its payload) */
	uint8_t hdr[WS_HEADER_MAX];
	uint8_t close_frame[WS_CLOSE_FRAME_MAX];
	uint8_t close_len;
	uint16_t raw_len;
	uint16_t hdr_payload;       /* the payload bytes that header announces */
	uint16_t out_left;          /* payload bytes of a frame whose header went alone */
	uint16_t retry_chunk;       /* a frame written with its header must be retried as is */
	const char *end_reason;     /* static: why the client's stream ended, or NULL */
	uint8_t *raw;               /* owned while raw_len > 0, else NULL */
};

/* Replaces what waits to be written raw with a copy of the |n| bytes at
 * |p| (at most WS_RAW_MAX). Returns 1, or 0 (nothing changed) without memory. */
int ws_raw_set(struct ws_conn *w, const void *p, size_t n);
/* Frees what waited to be written raw. */
void ws_raw_clear(struct ws_conn *w);

#endif
