/*
 * WebSocket framing for the server side (RFC 6455 section 5), as the
 * transport under MQTT: binary frames carry the MQTT byte stream, cut
 * anywhere (MQTT packets and frames need not line up [MQTT-6.0.0-2]).
 *
 * Decoding works in place on the caller's buffer (the decrypted bytes):
 * payload bytes are unmasked and moved down over the frame headers in the
 * same pass, so the MQTT bytes end up contiguous at the front of the
 * region and no payload byte is copied twice. Control frames interleaved
 * with the data stop the pass so the caller can answer them in order.
 *
 * Encoding writes only frame headers: the caller sends the header and the
 * payload where it lies (writev, or two SSL_write calls), so broker bytes
 * are never copied to be framed.
 */
#ifndef PROXY_WS_FRAME_H
#define PROXY_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes (5.2). */
enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close status codes (7.4.1) used here. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_PROTOCOL 1002        /* protocol error */
#define WS_CLOSE_UNSUPPORTED 1003     /* a data type it cannot accept (text) */
#define WS_CLOSE_NO_STATUS 1005       /* none was given; never sent */
#define WS_CLOSE_INVALID_DATA 1007    /* close reason not UTF-8 */
#define WS_CLOSE_TOO_BIG 1009         /* frame over the limit */

#define WS_CONTROL_MAX 125            /* control frame payload (5.5) */
#define WS_HEADER_MAX 10              /* server frame header: no mask */
#define WS_CLOSE_FRAME_MAX 4          /* header + status code */
#define WS_PONG_FRAME_MAX (2 + WS_CONTROL_MAX)

/* Decoder state for one connection's client->server stream; embedded in
 * the session, set up by ws_decoder_init. */
struct ws_decoder {
	uint64_t max_frame;          /* largest data frame payload accepted */
	uint64_t left;               /* payload bytes of the current frame to come */
	uint8_t state;               /* header, payload, closed, failed */
	uint8_t hdr[14];             /* a header split across reads */
	uint8_t hdr_len;
	uint8_t opcode;              /* the current frame's */
	uint8_t fin;
	uint8_t in_message;          /* a fragmented binary message is open */
	uint8_t mask[4];
	uint8_t mask_pos;            /* payload bytes so far, mod 4 */
	uint8_t ctl_len;
	uint8_t ctl[WS_CONTROL_MAX]; /* a control frame's payload */
	uint16_t fail_code;
	const char *fail_why;
};

/*
 * The region being decoded: bytes [in, len) of |ptr| are still to be read;
 * decoded MQTT bytes are [0, out) and out <= in always. Start a region
 * over fresh bytes with in = out = 0; the caller owns |ptr|.
 */
struct ws_region {
	uint8_t *ptr;
	size_t len;
	size_t in;
	size_t out;
};

enum ws_event {
	WS_EV_DRAINED,   /* every byte of the region was read */
	WS_EV_PING,      /* send ws_pong_frame(payload) back */
	WS_EV_PONG,      /* nothing to do */
	WS_EV_CLOSE,     /* send ws_close_frame(code) back, then close */
	WS_EV_ERROR,     /* send ws_close_frame(code), then close */
};

/* What an event carries. |payload| is owned by the decoder and valid until
 * its next call. */
struct ws_control {
	uint16_t code;              /* CLOSE: the client's code, WS_CLOSE_NO_STATUS if
	                               none; ERROR: the code to send */
	const uint8_t *payload;     /* PING, PONG: the payload; CLOSE: the reason */
	size_t len;
	const char *why;            /* ERROR: static, names the rule */
};

/* Starts a stream that accepts data frames of up to |max_frame| payload
 * bytes (larger ones are refused with 1009). */
void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame);

/*
 * Reads frames from |r| until the region is drained or an event needs the
 * caller. Data frames (binary, and continuations of a binary message) are
 * unmasked into [r->out, ...) and r->out advances; everything read
 * advances r->in. A header, a payload or a control frame may be split
 * across calls in any way. Refused with WS_EV_ERROR: an unmasked frame
 * (5.1), reserved bits (no extension is negotiated) or a reserved opcode,
 * a continuation without a message or a new message inside one (5.4), a
 * control frame that is fragmented or longer than 125 bytes (5.5), a
 * length not in its shortest form or with the top bit set (5.2): 1002; a
 * text frame [MQTT-6.0.0-1]: 1003; a close reason that is not UTF-8: 1007;
 * a close code that may not be sent (7.4): 1002; a data frame over
 * max_frame: 1009. After CLOSE or ERROR every later call returns the same
 * event and reads nothing more.
 */
enum ws_event ws_decode(struct ws_decoder *d, struct ws_region *r, struct ws_control *ctl);

/*
 * Writes the header of an unmasked server frame with |opcode|, FIN = |fin|
 * and a |len|-byte payload into |out|; returns its length: 2, 4 or 10.
 */
size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], enum ws_opcode opcode, int fin, uint64_t len);

/*
 * Writes a complete close frame into |out|: with |code| as its body, or
 * with no body when |code| is WS_CLOSE_NO_STATUS (which must not be sent,
 * 7.4.1). Returns its length (2 or 4).
 */
size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code);

/*
 * Writes a complete pong frame echoing the |len| bytes at |payload| (at
 * most 125, 5.5.3) into |out|. Returns its length, or 0 if |len| > 125.
 */
size_t ws_pong_frame(uint8_t out[WS_PONG_FRAME_MAX], const uint8_t *payload, size_t len);

#endif
