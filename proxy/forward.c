/*
 * The forwarding path: how bytes cross mqtls without being copied.
 *
 * client -> broker: SSL_read decrypts into free space reserved at the tail of
 *   s->to_up (bufq_reserve / bufq_commit); bufq_write then hands those same
 *   blocks to writev(2) on the broker socket. Besides
 *   the decryption, BoringSSL copies the plaintext out of its record buffer
 *   (its public API cannot decrypt into ours), and tls/sock.c may copy
 *   ciphertext once from its read-ahead into BoringSSL's buffer, which is
 *   what lets one recv(2) carry a whole record or several.
 * broker -> client: readv(2) fills s->to_client's reserved blocks; SSL_write
 *   encrypts from the first block in place (bufq_peek) and the consumed
 *   bytes are drained. The encryption is the only copy.
 *
 * No payload byte is copied between our own buffers. A queue holds blocks
 * only while it holds data, so an idle connection owns none; drained blocks
 * go back to the worker's bounded cache (proxy/bufq.h), not to malloc.
 *
 * Backpressure: each buffer is bounded by --max-buffer. While to_up is full
 * the client is not read; while to_client is full the broker is not read
 * (session_rearm decides which events are armed). Because a record may
 * already sit inside the SSL, or read ahead in tls/sock.c, when we stop
 * reading, resuming checks both and schedules a read even if the socket is
 * quiet.
 *
 * This file is a stage (session_int.h): it moves bytes and reports what
 * happened; the hub decides what that means for the session. It knows
 * nothing of CONNECT, authentication or shutdown.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "proxy/ws_conn.h"
#include "tls/io.h"

/* Largest TLS record plaintext: one SSL_read never yields more. */
#define RECORD_MAX 16384
/* Per call, so one busy connection cannot starve the others on the loop. */
#define READ_BUDGET (256 * 1024)
/* One read from the broker: four full TLS records. */
#define UP_READ_MAX (64 * 1024)

enum fwd forward_client_in(struct session *s, int flush_first)
{
	struct blk_cache *c = session_blocks(s);
	size_t max = session_client_in_limit(s), budget = READ_BUDGET;
	enum tls_io r = TLS_IO_WANT_READ;
	enum fwd out = FWD_OK;

	s->flags &= ~F_READ_WANTS_WRITE;
	if (s->flags & (F_CLIENT_EOF | F_CLIENT_DEAD))
		return FWD_OK;
	while (bufq_len(&s->to_up) < max) {
		struct iovec v;
		size_t n = 0;

		/* Before forwarding only a CONNECT is expected: small blocks. */
		if (bufq_reserve(&s->to_up, c, s->state == S_FORWARDING ? RECORD_MAX : BLK_SMALL, &v, 1) < 1)
			return FWD_OOM;
		r = tls_read(s->ssl, v.iov_base, v.iov_len, &n);
		/* WebSocket frames are decoded in place (ws_forward.c); a close
		 * ends the stream after the MQTT bytes in front of it. */
		if (s->ws != NULL && r == TLS_IO_OK && !ws_forward_in(s, v.iov_base, &n))
			r = TLS_IO_CLOSED;
		bufq_commit(&s->to_up, c, r == TLS_IO_OK || r == TLS_IO_CLOSED ? n : 0);
		/* After WANT_READ what the SSL holds is an incomplete record:
		 * only more socket bytes can finish it (session.c). */
		if (r == TLS_IO_WANT_READ)
			s->flags |= F_READ_IDLE;
		if (r != TLS_IO_OK)
			break;
		s->flags &= ~F_READ_IDLE;
		s->bytes_in += n;
		counter_add(&s->w->metrics.bytes[BYTES_CLIENT_TO_BROKER], n);
		/* The first record goes to the broker before looking for more:
		 * the read that finds the socket empty then adds no latency to a
		 * lone message, while a burst still leaves in one writev. */
		if (flush_first && budget == READ_BUDGET && forward_up_out(s) == FWD_ERROR)
			return FWD_OK;    /* the broker side failed; the hub sees F_UP_DEAD */
		if (n >= budget) {
			out = FWD_AGAIN;
			break;
		}
		budget -= n;
	}
	switch (r) {
	case TLS_IO_WANT_WRITE:
		s->flags |= F_READ_WANTS_WRITE;
		break;
	case TLS_IO_CLOSED:
	case TLS_IO_EOF:
		s->flags |= F_CLIENT_EOF;
		out = FWD_EOF;
		break;
	case TLS_IO_ERROR:
		s->flags |= F_CLIENT_EOF | F_CLIENT_DEAD;
		out = FWD_ERROR;
		break;
	default:
		break;
	}
	return out;
}

enum fwd forward_client_out(struct session *s)
{
	struct blk_cache *c = session_blocks(s);

	if (s->ws != NULL)
		return ws_forward_out(s);    /* frames as it writes */
	s->flags &= ~F_WRITE_WANTS_READ;
	if (s->flags & F_CLIENT_DEAD) {
		bufq_clear(&s->to_client, c);
		return FWD_OK;
	}
	while (bufq_len(&s->to_client) > 0) {
		struct iovec v;
		size_t n = 0, len;
		enum tls_io r;

		if (bufq_peek(&s->to_client, 0, &v, 1) < 1)
			break;
		/* After a WANT_*, the retry passes the same first block again, at
		 * least as long as before, as BoringSSL requires. */
		len = v.iov_len < RECORD_MAX ? v.iov_len : RECORD_MAX;
		r = tls_write(s->ssl, v.iov_base, len, &n);
		s->write_pending = r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE ? (uint16_t)len : 0;
		if (r == TLS_IO_OK) {
			bufq_drain(&s->to_client, c, n);
			s->bytes_out += n;
			continue;
		}
		if (r == TLS_IO_WANT_READ)
			s->flags |= F_WRITE_WANTS_READ;
		if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE)
			return FWD_OK;
		s->flags |= F_CLIENT_DEAD | F_CLIENT_EOF;
		bufq_clear(&s->to_client, c);
		return FWD_ERROR;
	}
	return FWD_OK;
}

/* readv into reserved blocks: one syscall for up to four records' worth,
 * and a short read means the socket is drained. */
enum fwd forward_up_in(struct session *s, size_t limit)
{
	struct blk_cache *c = session_blocks(s);
	size_t max = s->w->proxy->max_buffer, budget = READ_BUDGET < limit ? READ_BUDGET : limit;

	if (s->flags & (F_UP_EOF | F_UP_DEAD))
		return FWD_OK;
	for (;;) {
		size_t have = bufq_len(&s->to_client), room = max > have ? max - have : 0, got = 0;
		struct iovec v[4];
		ssize_t n;
		int nv;

		if (room == 0 || budget == 0)
			return FWD_OK;
		if (room > budget)
			room = budget;
		if (room > UP_READ_MAX)
			room = UP_READ_MAX;
		/* WebSocket framing writes a header in front of the bytes. */
		nv = bufq_reserve_headroom(&s->to_client, c, room, s->ws ? WS_OUT_HEADROOM : 0, v, 4);
		if (nv < 1)
			return FWD_OOM;
		/* The reservation may be larger than asked; read no more than room. */
		for (int i = 0; i < nv; i++) {
			if (got + v[i].iov_len >= room) {
				v[i].iov_len = room - got;
				nv = i + 1;
				break;
			}
			got += v[i].iov_len;
		}
		/* --upstream-tls: the same, decrypted (upstream_tls.c). */
		n = s->up_tls ? upstream_tls_read(s, v, nv) : readv(s->ufd, v, nv);
		bufq_commit(&s->to_client, c, n > 0 ? (size_t)n : 0);
		if (n == 0) {
			s->flags |= F_UP_EOF;
			return FWD_EOF;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return FWD_OK;
			s->flags |= F_UP_EOF | F_UP_DEAD;
			return FWD_ERROR;
		}
		budget -= (size_t)n;
		counter_add(&s->w->metrics.bytes[BYTES_BROKER_TO_CLIENT], (uint64_t)n);
		if ((size_t)n < room)
			return FWD_OK;
	}
}

enum fwd forward_up_out(struct session *s)
{
	struct blk_cache *c = session_blocks(s);

	if (s->ufd < 0)
		return FWD_OK;
	if (s->flags & F_UP_DEAD) {
		bufq_clear(&s->to_up, c);
		return FWD_OK;
	}
	while (bufq_len(&s->to_up) > 0) {
		ssize_t n = s->up_tls ? upstream_tls_write(s) : bufq_write(&s->to_up, c, s->ufd);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return FWD_OK;
		s->flags |= F_UP_DEAD | F_UP_EOF;
		bufq_clear(&s->to_up, c);
		return FWD_ERROR;
	}
	return FWD_OK;
}
