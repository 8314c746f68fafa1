/*
 * The byte mover's WebSocket half (forward.c calls it for sessions that
 * have s->ws): client frames are decoded where they were decrypted, broker
 * bytes are framed where they lie.
 *
 * client -> broker: the record SSL_read put at to_up's tail is decoded in
 *   place (ws_frame.c unmasks each payload byte and moves it down over the
 *   frame headers in the same pass), and only the MQTT bytes are committed:
 *   to_up holds exactly what a TLS client's would.
 * broker -> client: one binary frame per TLS record. The frame header (2
 *   or 4 bytes) is written into the free bytes just in front of the payload
 *   in its block: broker bytes are read with WS_OUT_HEADROOM bytes left
 *   free at the front of each block, and later frames of a block start
 *   where the previous one's bytes were drained. Header and payload then
 *   leave in one SSL_write and no payload byte is copied. Only when there
 *   is no room (a packet mqtls wrote itself, a CONNACK or DISCONNECT) does
 *   the header go alone, in its own record.
 *
 * Control frames: a ping is answered with a pong between two data frames
 * (only the latest when several wait, RFC 6455 5.5.3); the client's close
 * is echoed after what is already queued, and so is the close mqtls sends
 * when the session ends on its side. Nothing is sent after a close frame.
 */
#include <string.h>

#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "proxy/ws_conn.h"
#include "tls/io.h"

/* The close reason of a stream the client broke, by the code it gets. */
static const char *error_reason(uint16_t code)
{
	switch (code) {
	case WS_CLOSE_UNSUPPORTED:
		return "ws_text_frame";
	case WS_CLOSE_TOO_BIG:
		return "ws_frame_too_big";
	default:
		return "ws_protocol_error";
	}
}

static void queue_close(struct ws_conn *w, uint16_t code)
{
	if (w->close != WS_CLOSE_NONE)
		return;
	w->close_len = (uint8_t)ws_close_frame(w->close_frame, code);
	w->close = WS_CLOSE_QUEUED;
}

int ws_forward_in(struct session *s, uint8_t *p, size_t *n)
{
	struct ws_conn *w = s->ws;
	struct ws_region r = { p, *n, 0, 0 };
	struct ws_control ctl;

	/* The upgrade request is read as it came (ws_stage.c). */
	if (!w->upgraded)
		return 1;
	for (;;) {
		switch (ws_decode(&w->dec, &r, &ctl)) {
		case WS_EV_DRAINED:
			*n = r.out;
			return 1;
		case WS_EV_PING:
			/* A pong already handed to SSL_write must be retried as is;
			 * the newer ping then goes unanswered (5.5.3 allows it). */
			if (!w->raw_busy && w->close == WS_CLOSE_NONE) {
				uint8_t pong[WS_PONG_FRAME_MAX];

				/* Without memory the ping goes unanswered, like a
				 * newer one behind a pong being sent. */
				(void)ws_raw_set(w, pong, ws_pong_frame(pong, ctl.payload, ctl.len));
			}
			continue;
		case WS_EV_PONG:
			continue;
		case WS_EV_CLOSE:
			/* 5.5.1: answer with a close, echoing the code it gave. */
			w->end_reason = "ws_closed";
			queue_close(w, ctl.code);
			break;
		case WS_EV_ERROR:
			w->end_reason = error_reason(ctl.code);
			session_log_refusal(s, w->end_reason, ctl.why);
			queue_close(w, ctl.code);
			break;
		}
		*n = r.out;
		s->flags |= F_CLIENT_EOF;
		/* forward.c counts only what a read that goes on brought. */
		s->bytes_in += r.out;
		counter_add(&s->w->metrics.bytes[BYTES_CLIENT_TO_BROKER], r.out);
		return 0;
	}
}

int ws_forward_rest(struct session *s)
{
	size_t rest = bufq_len(&s->to_up), n = rest;
	uint8_t *p;

	if (rest == 0)
		return 1;
	/* The queue owns these bytes and nothing else points into them. */
	if ((p = (uint8_t *)bufq_pullup(&s->to_up, session_blocks(s), rest)) == NULL)
		return 0;
	/* They were counted as read, framed; what they carry counts instead
	 * (ws_forward_in counts it itself when the stream ends there). */
	s->bytes_in -= rest < s->bytes_in ? rest : s->bytes_in;
	counter_add(&s->w->metrics.bytes[BYTES_CLIENT_TO_BROKER], (uint64_t)0 - rest);
	if (ws_forward_in(s, p, &n)) {
		s->bytes_in += n;
		counter_add(&s->w->metrics.bytes[BYTES_CLIENT_TO_BROKER], n);
	}
	bufq_truncate(&s->to_up, session_blocks(s), n);
	return 1;
}

/* One SSL_write; on WANT_* the caller retries with the same bytes. */
static enum tls_io put(struct session *s, const void *p, size_t len)
{
	size_t n = 0;
	enum tls_io r = tls_write(s->ssl, p, len, &n);

	if (r == TLS_IO_WANT_READ)
		s->flags |= F_WRITE_WANTS_READ;
	/* One record at most is asked for: it goes whole or not at all. */
	if (r == TLS_IO_OK && n != len)
		r = TLS_IO_ERROR;
	return r;
}

/* Writes the next piece of broker bytes: the rest of a frame whose header
 * went alone, or a whole frame, header in front of its payload. */
static enum tls_io put_data(struct session *s)
{
	struct ws_conn *w = s->ws;
	struct blk_cache *c = session_blocks(s);
	struct iovec v;
	size_t chunk, hl;
	uint8_t hdr[WS_HEADER_MAX];
	enum tls_io r;

	if (bufq_peek(&s->to_client, 0, &v, 1) < 1)
		return TLS_IO_OK;
	if (w->out_left > 0) {
		chunk = v.iov_len < w->out_left ? v.iov_len : w->out_left;
		if ((r = put(s, v.iov_base, chunk)) == TLS_IO_OK) {
			bufq_drain(&s->to_client, c, chunk);
			s->bytes_out += chunk;
			w->out_left = (uint16_t)(w->out_left - chunk);
		}
		return r;
	}
	if (w->hdr_len > 0) {
		if ((r = put(s, w->hdr, w->hdr_len)) == TLS_IO_OK) {
			w->out_left = w->hdr_payload;
			w->hdr_len = 0;
		}
		return r;
	}
	chunk = w->retry_chunk ? w->retry_chunk : v.iov_len < WS_CHUNK_MAX ? v.iov_len : WS_CHUNK_MAX;
	hl = ws_frame_header(hdr, WS_OP_BINARY, 1, chunk);
	if (bufq_headroom(&s->to_client) < hl) {
		memcpy(w->hdr, hdr, hl);
		w->hdr_len = (uint8_t)hl;
		w->hdr_payload = (uint16_t)chunk;
		return TLS_IO_OK;    /* the caller comes back for it */
	}
	/* The bytes in front of the payload are drained or headroom: ours. */
	memcpy((uint8_t *)v.iov_base - hl, hdr, hl);
	r = put(s, (uint8_t *)v.iov_base - hl, hl + chunk);
	w->retry_chunk = r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE ? (uint16_t)chunk : 0;
	if (r == TLS_IO_OK) {
		bufq_drain(&s->to_client, c, chunk);
		s->bytes_out += chunk;
	}
	return r;
}

/* Between two frames: nothing of a data frame is half sent. */
static int between_frames(const struct ws_conn *w)
{
	return w->out_left == 0 && w->hdr_len == 0 && w->retry_chunk == 0;
}

enum fwd ws_forward_out(struct session *s)
{
	struct ws_conn *w = s->ws;
	struct blk_cache *c = session_blocks(s);

	s->flags &= ~F_WRITE_WANTS_READ;
	if (s->flags & F_CLIENT_DEAD) {
		bufq_clear(&s->to_client, c);
		ws_raw_clear(w);
		w->hdr_len = 0;
		w->out_left = w->retry_chunk = 0;
		s->write_pending = 0;
		if (w->close == WS_CLOSE_QUEUED)
			w->close = WS_CLOSE_SENT;
		return FWD_OK;
	}
	for (;;) {
		enum tls_io r = TLS_IO_OK;

		/* A frame in progress always has its payload queued (a clean cut
		 * keeps write_pending bytes); should that ever not hold, nothing
		 * could finish the frame and what waits behind it would spin. */
		if (bufq_len(&s->to_client) == 0)
			w->out_left = w->hdr_len = w->retry_chunk = 0;
		if (w->raw_len > 0 && between_frames(w)) {
			w->raw_busy = 1;
			if ((r = put(s, w->raw, w->raw_len)) == TLS_IO_OK)
				ws_raw_clear(w);
		} else if (w->close == WS_CLOSE_SENT) {
			/* 5.5.1: no data frame after a close frame. */
			bufq_clear(&s->to_client, c);
			return FWD_OK;
		} else if (bufq_len(&s->to_client) > 0 && w->upgraded) {
			r = put_data(s);
			/* What a clean cut (session_end.c) must leave in to_client:
			 * the payload a header, sent or being sent, announced. */
			s->write_pending = w->out_left ? w->out_left : w->hdr_len ? w->hdr_payload : w->retry_chunk;
		} else if (w->close == WS_CLOSE_QUEUED && between_frames(w)) {
			if ((r = put(s, w->close_frame, w->close_len)) == TLS_IO_OK)
				w->close = WS_CLOSE_SENT;
		} else {
			return FWD_OK;
		}
		if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE)
			return FWD_OK;
		if (r != TLS_IO_OK) {
			s->flags |= F_CLIENT_DEAD | F_CLIENT_EOF;
			s->write_pending = 0;
			bufq_clear(&s->to_client, c);
			return FWD_ERROR;
		}
	}
}
