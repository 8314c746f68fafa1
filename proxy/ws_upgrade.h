/*
 * The WebSocket opening handshake, server side (RFC 6455 section 4.2): the
 * client's HTTP/1.1 upgrade request is read from a bounded buffer, and the
 * answer is built: 101 Switching Protocols with Sec-WebSocket-Accept and
 * the chosen subprotocol, or the error response the refusal calls for.
 *
 * MQTT over WebSockets (MQTT 5.0 section 6, 3.1.1 section 6) needs the
 * subprotocol "mqtt" [MQTT-6.0.0-3] [MQTT-6.0.0-4]; old clients (paho
 * before 1.1, MQTT 3.1) offer "mqttv3.1", which is accepted too. A request
 * that offers neither is refused: a client that did not ask for MQTT must
 * not get it.
 *
 * Nothing here touches a socket; the buffer is the decrypted bytes the
 * client sent after the TLS handshake.
 */
#ifndef PROXY_WS_UPGRADE_H
#define PROXY_WS_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"

#define WS_UPGRADE_MAX 8192         /* default bound on the request head */
#define WS_KEY_LEN 24               /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28            /* base64 of a SHA-1 */

enum ws_upgrade_result {
	WS_UPGRADE_NEED_MORE,   /* the request head has not ended yet */
	WS_UPGRADE_OK,          /* answer with ws_upgrade_accept() */
	WS_UPGRADE_REFUSE,      /* answer with ws_upgrade_refuse(), then close */
};

enum ws_subprotocol {
	WS_PROTO_NONE,
	WS_PROTO_MQTT,          /* "mqtt" */
	WS_PROTO_MQTTV31,       /* "mqttv3.1" */
};

/* What was read. Slices point into the request buffer. */
struct ws_upgrade {
	size_t request_len;               /* OK: bytes of the request head; frames follow */
	enum ws_subprotocol protocol;     /* OK: the one chosen ("mqtt" if offered) */
	char key[WS_KEY_LEN + 1];         /* OK: Sec-WebSocket-Key, NUL-terminated */
	struct slice path;                /* the request-target before any '?' */
	struct slice host;                /* Host */
	int has_origin;
	struct slice origin;              /* Origin, as browsers send it */
	int status;                       /* REFUSE: 400, 404 or 431 */
	int want_version;                 /* REFUSE: add "Sec-WebSocket-Version: 13" */
	const char *why;                  /* REFUSE: static reason for the log */
};

/*
 * Reads the request head at |buf| (|len| bytes, borrowed) for a WebSocket
 * served at |path| (NUL-terminated; compared exactly with the
 * request-target up to any '?'). |max| bounds the head (0 means
 * WS_UPGRADE_MAX): NEED_MORE while it has not ended within |len| bytes
 * and |len| < |max|; REFUSE with 431 once |max| bytes hold no end.
 * Refusals: a request line that is not "GET <target> HTTP/1.1", a header
 * line that is not "name: value", CR without LF, obs-fold, a missing or
 * repeated Host, a body (Content-Length other than 0, Transfer-Encoding),
 * no "websocket" in Upgrade or no "Upgrade" in Connection, a key that is
 * not the base64 of 16 bytes or is repeated, and no subprotocol this
 * server speaks: 400. Sec-WebSocket-Version other than 13 (or missing or
 * repeated): 400 with want_version. A wrong path: 404. |out| is zeroed
 * first.
 */
enum ws_upgrade_result ws_upgrade_parse(const uint8_t *buf, size_t len, const char *path, size_t max,
                                        struct ws_upgrade *out);

/*
 * Computes Sec-WebSocket-Accept for the |len|-byte key at |key|: base64 of
 * the SHA-1 of the key followed by the GUID 258EAFA5-E914-47DA-95CA-
 * C5AB0DC85B11 (RFC 6455 4.2.2). Writes 28 characters and a NUL into
 * |out|. Returns 1, or 0 if |key| is NULL.
 */
int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1]);

/*
 * Writes the 101 Switching Protocols response for |u| (an OK result) into
 * |out| (capacity |cap|, owned by the caller): Upgrade, Connection,
 * Sec-WebSocket-Accept and Sec-WebSocket-Protocol. Returns its length
 * (without a NUL), or 0 if it does not fit.
 */
size_t ws_upgrade_accept(const struct ws_upgrade *u, char *out, size_t cap);

/*
 * Writes the error response for |u| (a REFUSE result): the status line,
 * Connection: close, Content-Length: 0 and, when want_version is set,
 * Sec-WebSocket-Version: 13. Returns its length, or 0 if it does not fit.
 */
size_t ws_upgrade_refuse(const struct ws_upgrade *u, char *out, size_t cap);

#endif
