/*
 * The forwarding path: how bytes cross mqtls without being copied.
 *
 * client -> broker: SSL_read decrypts into free space reserved at the tail of
 *   s->to_up (evbuffer_reserve_space / evbuffer_commit_space); evbuffer_write
 *   then hands those same chains to writev(2) on the broker socket. Besides
 *   the decryption, BoringSSL copies the plaintext out of its record buffer
 *   (its public API cannot decrypt into ours), and tls/sock.c may copy
 *   ciphertext once from its read-ahead into BoringSSL's buffer, which is
 *   what lets one recv(2) carry a whole record or several.
 * broker -> client: readv(2) fills s->to_client's reserved chains; SSL_write
 *   encrypts from the first chain in place (evbuffer_peek) and the consumed
 *   bytes are drained. The encryption is the only copy.
 *
 * No payload byte is copied between our own buffers. A buffer exists only
 * while it holds data and is freed once drained, so an idle connection owns
 * no buffer at all.
 *
 * Backpressure: each buffer is bounded by --max-buffer. While to_up is full
 * the client is not read; while to_client is full the broker is not read
 * (session_rearm decides which events are armed). Because a record may
 * already sit inside the SSL, or read ahead in tls/sock.c, when we stop
 * reading, resuming checks both and schedules a read even if the socket is
 * quiet.
 *
 * Each function below runs in any state and returns quietly when the state
 * does not allow it; errors end the session through session_close().
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "tls/io.h"

/* Largest TLS record plaintext: one SSL_read never yields more. */
#define RECORD_MAX 16384
/* Per callback, so one busy connection cannot starve the others on the loop. */
#define READ_BUDGET (256 * 1024)
/* One read from the broker: four full TLS records. */
#define UP_READ_MAX (64 * 1024)

static void drop_buffer(struct evbuffer **b)
{
	if (*b) {
		evbuffer_free(*b);
		*b = NULL;
	}
}

static int reading_client_allowed(const struct session *s)
{
	switch (s->state) {
	case S_AWAIT_CONNECT:
	case S_AUTHENTICATING:
	case S_UPSTREAM_CONNECTING:
	case S_FORWARDING:
		return !(s->flags & (F_CLIENT_EOF | F_CLIENT_DEAD));
	default:
		return 0;
	}
}

/* Decrypts client bytes into to_up until the socket is drained, to_up is
 * full, or the budget is spent. */
void forward_client_in(struct session *s)
{
	size_t max = session_client_in_limit(s), budget = READ_BUDGET;
	enum tls_io r = TLS_IO_WANT_READ;

	s->flags &= ~F_READ_WANTS_WRITE;
	while (reading_client_allowed(s) && buf_len(s->to_up) < max) {
		struct evbuffer_iovec v;
		size_t n = 0;

		if (s->to_up == NULL && (s->to_up = evbuffer_new()) == NULL)
			goto oom;
		if (evbuffer_reserve_space(s->to_up, RECORD_MAX, &v, 1) < 1)
			goto oom;
		r = tls_read(s->ssl, v.iov_base, v.iov_len, &n);
		v.iov_len = n;
		evbuffer_commit_space(s->to_up, &v, r == TLS_IO_OK ? 1 : 0);
		if (r == TLS_IO_WANT_READ)
			s->flags |= F_READ_IDLE;
		if (r != TLS_IO_OK)
			break;
		s->flags &= ~F_READ_IDLE;
		s->bytes_in += n;
		/* The first record goes to the broker before looking for more:
		 * the read that finds the socket empty then adds no latency to a
		 * lone message, while a burst still leaves in one writev. */
		if (budget == READ_BUDGET && s->state == S_FORWARDING) {
			forward_up_out(s);
			if (s->state != S_FORWARDING)
				return;
		}
		if (n >= budget) {
			/* Come back on the next loop turn even if the socket is quiet. */
			session_kick_read(s);
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
		break;
	case TLS_IO_ERROR:
		s->flags |= F_CLIENT_EOF | F_CLIENT_DEAD;
		break;
	default:
		break;
	}
	if (s->to_up && buf_len(s->to_up) == 0 && s->state != S_AWAIT_CONNECT)
		drop_buffer(&s->to_up);

	if (s->state == S_AWAIT_CONNECT)
		session_parse_connect(s);
	else if (s->state == S_FORWARDING)
		forward_up_out(s);
	if (s->state == S_DEAD || s->state == S_CLOSING)
		return;
	if (s->flags & F_CLIENT_DEAD)
		session_close(s, "client_error");
	else if (s->flags & F_CLIENT_EOF)
		session_close(s, "client_closed");
	return;
oom:
	session_close(s, "out_of_memory");
}

/* Encrypts to_client onto the client socket. */
void forward_client_out(struct session *s)
{
	s->flags &= ~F_WRITE_WANTS_READ;
	if (s->flags & F_CLIENT_DEAD) {
		drop_buffer(&s->to_client);
		return;
	}
	while (buf_len(s->to_client) > 0) {
		struct evbuffer_iovec v;
		size_t n = 0, len;
		enum tls_io r;

		if (evbuffer_peek(s->to_client, -1, NULL, &v, 1) < 1)
			break;
		/* After a WANT_*, the retry passes the same first chain again,
		 * at least as long as before, as BoringSSL requires. */
		len = v.iov_len < RECORD_MAX ? v.iov_len : RECORD_MAX;
		r = tls_write(s->ssl, v.iov_base, len, &n);
		s->write_pending = r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE ? (uint16_t)len : 0;
		if (r == TLS_IO_OK) {
			evbuffer_drain(s->to_client, n);
			s->bytes_out += n;
			continue;
		}
		if (r == TLS_IO_WANT_READ)
			s->flags |= F_WRITE_WANTS_READ;
		if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE)
			return;
		s->flags |= F_CLIENT_DEAD | F_CLIENT_EOF;
		drop_buffer(&s->to_client);
		session_close(s, "client_error");
		return;
	}
	drop_buffer(&s->to_client);
}

/*
 * Reads broker bytes into to_client, then tries to encrypt them out.
 * readv into reserved space rather than evbuffer_read, which in libevent
 * 2.1 asks FIONREAD first and then reads at most 4 KB: two syscalls per
 * 4 KB and 4 KB TLS records. A short read means the socket is drained.
 */
void forward_up_in(struct session *s)
{
	size_t max = s->w->proxy->max_buffer, budget = READ_BUDGET;

	while (s->state == S_FORWARDING && !(s->flags & (F_UP_EOF | F_UP_DEAD))) {
		size_t have = buf_len(s->to_client), room = max > have ? max - have : 0;
		struct evbuffer_iovec v[2];
		ssize_t n;
		int nv;

		if (room == 0 || budget == 0)
			break;
		if (room > budget)
			room = budget;
		if (room > UP_READ_MAX)
			room = UP_READ_MAX;
		room = session_auth_read_limit(s, room);
		if (s->to_client == NULL && (s->to_client = evbuffer_new()) == NULL) {
			session_close(s, "out_of_memory");
			return;
		}
		nv = evbuffer_reserve_space(s->to_client, (ev_ssize_t)room, v, 2);
		if (nv < 1) {
			session_close(s, "out_of_memory");
			return;
		}
		/* The reservation may be larger than asked; read no more than room. */
		if (v[0].iov_len >= room) {
			v[0].iov_len = room;
			nv = 1;
		} else if (nv == 2 && v[0].iov_len + v[1].iov_len > room) {
			v[1].iov_len = room - v[0].iov_len;
		}
		n = readv(s->ufd, (struct iovec *)v, nv);
		if (n <= 0) {
			evbuffer_commit_space(s->to_client, v, 0);
			if (n == 0)
				s->flags |= F_UP_EOF;
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				s->flags |= F_UP_EOF | F_UP_DEAD;
			break;
		}
		if ((size_t)n <= v[0].iov_len) {
			v[0].iov_len = (size_t)n;
			nv = 1;
		} else {
			v[1].iov_len = (size_t)n - v[0].iov_len;
		}
		evbuffer_commit_space(s->to_client, v, nv);
		budget -= (size_t)n;
		if (s->auth) {
			session_auth_track(s, s->to_client, have);
			session_auth_after_read(s);
			if (s->state != S_FORWARDING)
				return;
		}
		if ((size_t)n < room)
			break;
	}
	forward_client_out(s);
	if (s->state == S_FORWARDING && (s->flags & F_UP_EOF))
		session_close(s, (s->flags & F_UP_DEAD) ? "broker_error" : "broker_closed");
}

/* Writes to_up to the broker socket with writev. */
void forward_up_out(struct session *s)
{
	if (s->ufd < 0 || (s->state != S_FORWARDING && s->state != S_CLOSING))
		return;
	if (s->flags & F_UP_DEAD) {
		drop_buffer(&s->to_up);
		return;
	}
	while (buf_len(s->to_up) > 0) {
		int n = evbuffer_write(s->to_up, s->ufd);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		s->flags |= F_UP_DEAD | F_UP_EOF;
		drop_buffer(&s->to_up);
		session_close(s, "broker_closed");
		return;
	}
	if (buf_len(s->to_up) == 0)
		drop_buffer(&s->to_up);
}
