/*
 * The connection state machine: creation, the TLS handshake, timers, event
 * arming and the way out. Data movement is in forward.c, the CONNECT and
 * the broker connection in session_connect.c.
 *
 * Every libevent callback here ends with session_settle(), which either
 * finishes a CLOSING session whose buffers are flushed or re-arms exactly the
 * events the current state and buffers call for (session_rearm). No other
 * code arms the socket events; they are only removed on the way out
 * (session_close_upstream, session_finish).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt/connack.h"
#include "proxy/address.h"
#include "proxy/auth/policy.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "tls/io.h"

static const char *const state_names[] = {
	"handshake", "await_connect", "authenticating", "upstream_connecting",
	"forwarding", "closing", "dead",
};

uint64_t session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct session *session_get(void *arg)
{
	struct session *s = arg;

	/* A stale callback on freed memory must stop loudly, not corrupt. */
	if (s == NULL || s->magic != SESSION_MAGIC)
		abort();
	return s;
}

static void leave_handshake_count(struct session *s)
{
	if (s->flags & F_IN_HANDSHAKE_COUNT) {
		s->flags &= ~F_IN_HANDSHAKE_COUNT;
		worker_handshake_done(s->w, s);
	}
}

void session_close_upstream(struct session *s)
{
	/* The events leave the loop before the fd number can be reused. */
	if (s->flags & F_UP_EVENTS) {
		event_del(&s->ev_up);
		s->armed &= (uint8_t)~(ARM_UP_READ | ARM_UP_WRITE);
		s->flags &= ~F_UP_EVENTS;
	}
	if (s->ufd >= 0)
		close(s->ufd);
	s->ufd = -1;
}

size_t session_client_in_limit(const struct session *s)
{
	/* Before authentication a client gets room for its CONNECT and a
	 * little pipelining, not the forwarding-phase buffers. */
	if (s->state == S_FORWARDING)
		return s->w->proxy->max_buffer;
	return s->w->proxy->max_connect_size;
}

static void on_client_event(evutil_socket_t fd, short what, void *arg);
static void on_up_event(evutil_socket_t fd, short what, void *arg);

/* Points |ev| at the wanted READ/WRITE set; an empty set leaves it out of
 * the loop. Re-assigning is legal only while the event is not pending. */
static void assign_events(struct session *s, struct event *ev, int fd, int rd, int wr,
                          event_callback_fn cb)
{
	short what = (short)((rd ? EV_READ : 0) | (wr ? EV_WRITE : 0));

	event_del(ev);
	event_assign(ev, s->w->base, fd, what | EV_PERSIST, cb, s);
	/* Live sessions are served before handshakes (worker.h). */
	event_priority_set(ev, s->state == S_HANDSHAKE ? PRI_NEW : PRI_LIVE);
	if (what)
		event_add(ev, NULL);
}

void session_kick_read(struct session *s)
{
	s->flags |= F_KICK_READ;
	event_active(&s->ev_client, EV_READ, 0);
}

void session_rearm(struct session *s)
{
	size_t max = s->w->proxy->max_buffer;
	size_t in_max = session_client_in_limit(s);
	size_t up = buf_len(s->to_up), down = buf_len(s->to_client);
	int client_ok = !(s->flags & F_CLIENT_DEAD);
	uint8_t want = 0;

	switch (s->state) {
	case S_HANDSHAKE:
		want = (s->flags & F_HS_WANTS_WRITE) ? ARM_CLIENT_WRITE : ARM_CLIENT_READ;
		break;
	case S_AWAIT_CONNECT:
	case S_AUTHENTICATING:
	case S_UPSTREAM_CONNECTING:
	case S_FORWARDING:
		/* Backpressure: the client is read only while the broker side
		 * has room, and the broker only while the client side has. */
		if (client_ok && !(s->flags & F_CLIENT_EOF) && up < in_max)
			want |= (s->flags & F_READ_WANTS_WRITE) ? ARM_CLIENT_WRITE : ARM_CLIENT_READ;
		if (client_ok && down > 0)
			want |= (s->flags & F_WRITE_WANTS_READ) ? ARM_CLIENT_READ : ARM_CLIENT_WRITE;
		if (s->state == S_UPSTREAM_CONNECTING)
			want |= ARM_UP_WRITE;
		if (s->state == S_FORWARDING) {
			if (!(s->flags & (F_UP_EOF | F_UP_DEAD)) && down < max)
				want |= ARM_UP_READ;
			if (up > 0)
				want |= ARM_UP_WRITE;
		}
		break;
	case S_CLOSING:
		if (client_ok && down > 0)
			want |= (s->flags & F_WRITE_WANTS_READ) ? ARM_CLIENT_READ : ARM_CLIENT_WRITE;
		if (s->ufd >= 0 && !(s->flags & F_UP_DEAD) && up > 0)
			want |= ARM_UP_WRITE;
		break;
	default:
		break;
	}
	if ((want & ARM_CLIENT) != (s->armed & ARM_CLIENT) ||
	    event_get_priority(&s->ev_client) != (s->state == S_HANDSHAKE ? PRI_NEW : PRI_LIVE))
		assign_events(s, &s->ev_client, s->cfd, want & ARM_CLIENT_READ, want & ARM_CLIENT_WRITE,
		              on_client_event);
	if ((want & ARM_UP) != (s->armed & ARM_UP))
		assign_events(s, &s->ev_up, s->ufd, want & ARM_UP_READ, want & ARM_UP_WRITE, on_up_event);
	s->armed = want;
	/* A requested read turn must survive the re-assignment above. */
	if ((s->flags & F_KICK_READ) && (want & ARM_CLIENT))
		event_active(&s->ev_client, EV_READ, 0);
	/* Bytes already read from the socket (inside the SSL or read ahead)
	 * would not wake the socket event: reading them needs a turn. But only
	 * when the last read stopped for another reason than an empty socket:
	 * after WANT_READ, what the SSL holds is an incomplete record that only
	 * more socket bytes can finish, and a turn that cannot make progress
	 * must not schedule itself again (it would spin the loop forever and
	 * starve every other connection and timer on it). */
	else if ((want & ARM_CLIENT_READ) && s->state != S_HANDSHAKE && !(s->flags & F_READ_IDLE) &&
	         (tls_sock_buffered(&s->sock) || SSL_has_pending(s->ssl)))
		session_kick_read(s);
}

static void log_close(struct session *s)
{
	char peer[80];
	const SSL_CIPHER *cipher = (s->flags & F_TLS_DONE) ? SSL_get_current_cipher(s->ssl) : NULL;

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(LOG_INFO,
	        "close peer=%s tls=%s cipher=%s client_id=\"%s\" mqtt=%u auth=%s user=\"%s\" in=%llu out=%llu ms=%llu state=%s reason=%s",
	        peer, (s->flags & F_TLS_DONE) ? SSL_get_version(s->ssl) : "-",
	        cipher ? SSL_CIPHER_get_name(cipher) : "-", s->client_id ? s->client_id : "",
	        s->mqtt_version, auth_method_name(s->auth ? (enum auth_method)s->auth->method : AUTH_NONE),
	        s->auth && s->auth->user ? s->auth->user : "", (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	        (unsigned long long)(session_now_ms() - s->start_ms),
	        state_names[s->close_state], s->close_reason ? s->close_reason : "error");
}

/* Ends the session now: close_notify, log, stop every event, close sockets.
 * The memory stays valid until the worker's reaper runs, so callers up the
 * stack may still look at s->state (S_DEAD) and return. */
static void session_finish(struct session *s)
{
	if ((s->flags & F_TLS_DONE) && !(s->flags & F_CLIENT_DEAD))
		tls_close_notify(s->ssl);
	leave_handshake_count(s);
	log_close(s);
	event_del(&s->ev_client);
	event_del(&s->ev_timer);
	session_close_upstream(s);
	s->armed = 0;
	/* Orderly TCP close after close_notify; the fd goes with the SSL. */
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = -1;
	s->state = S_DEAD;
	worker_session_finished(s->w, s);
}

void session_maybe_finish(struct session *s)
{
	int client_pending, up_pending;

	if (s->state != S_CLOSING)
		return;
	client_pending = !(s->flags & F_CLIENT_DEAD) && buf_len(s->to_client) > 0;
	up_pending = s->ufd >= 0 && !(s->flags & F_UP_DEAD) && buf_len(s->to_up) > 0;
	if (!client_pending && !up_pending)
		session_finish(s);
}

/* The end of every callback: finish or re-arm. */
static void session_settle(struct session *s)
{
	if (s->state == S_CLOSING)
		session_maybe_finish(s);
	if (s->state != S_DEAD)
		session_rearm(s);
}

static void set_timer(struct session *s, const struct timeval *tv)
{
	if (tv)
		event_add(&s->ev_timer, tv);
	else
		event_del(&s->ev_timer);
}

void session_close(struct session *s, const char *reason)
{
	if (s->state == S_DEAD || s->state == S_CLOSING) {
		if (s->close_reason == NULL)
			s->close_reason = reason;
		return;
	}
	s->close_reason = reason;
	s->close_state = s->state;
	if (s->auth && s->auth->job) {
		session_auth_free(s->auth);     /* disowns the job in flight */
		s->auth = NULL;
	}
	leave_handshake_count(s);
	/* Before FORWARDING nothing the client sent may reach the broker. */
	if (s->state != S_FORWARDING)
		session_close_upstream(s);
	if (s->state == S_HANDSHAKE)
		s->flags |= F_CLIENT_DEAD;
	s->state = S_CLOSING;
	set_timer(s, &s->w->proxy->linger_timeout);
}

static void handshake_failed(struct session *s)
{
	char peer[80], e[160];

	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	if (s->peer.verify_error)
		log_warn("verify failed peer=%s depth=%d reason=\"%s\"", peer, s->peer.verify_depth,
		         s->peer.verify_error);
	else
		log_debug("handshake failed peer=%s error=\"%s\"", peer, tls_last_error(e, sizeof(e)));
	s->flags |= F_CLIENT_DEAD;
	session_close(s, "handshake_failed");
}

/* Once the ClientHello is complete, the rest of the handshake gets what is
 * left of --handshake-timeout instead of the short --hello-timeout. */
static void hello_deadline_passed(struct session *s)
{
	const struct timeval *hs = &s->w->proxy->handshake_timeout;
	uint64_t limit = (uint64_t)hs->tv_sec * 1000 + (uint64_t)hs->tv_usec / 1000;
	uint64_t spent = session_now_ms() - s->start_ms;
	uint64_t left = spent < limit ? limit - spent : 1;
	struct timeval tv;

	if ((s->flags & F_HELLO_DONE) || !s->peer.hello_seen)
		return;
	s->flags |= F_HELLO_DONE;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	set_timer(s, &tv);
}

static void do_handshake(struct session *s)
{
	switch (tls_handshake(s->ssl)) {
	case TLS_IO_OK:
		s->flags |= F_TLS_DONE;
		s->flags &= ~F_HS_WANTS_WRITE;
		leave_handshake_count(s);
		s->state = S_AWAIT_CONNECT;
		set_timer(s, &s->w->proxy->connect_timeout);
		/* TLS 1.3 clients send their CONNECT right behind Finished, so it
		 * is usually in the socket already: reading now saves a loop turn. */
		forward_client_in(s);
		break;
	case TLS_IO_WANT_READ:
		s->flags &= ~F_HS_WANTS_WRITE;
		hello_deadline_passed(s);
		break;
	case TLS_IO_WANT_WRITE:
		s->flags |= F_HS_WANTS_WRITE;
		hello_deadline_passed(s);
		break;
	default:
		handshake_failed(s);
		break;
	}
}

static void on_client_event(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	s->flags &= ~F_KICK_READ;
	if (s->state == S_HANDSHAKE) {
		do_handshake(s);
	} else {
		/* Each direction is retried when the event it waited for arrives. */
		if (what & EV_READ) {
			if (s->flags & F_WRITE_WANTS_READ)
				forward_client_out(s);
			if (s->state != S_DEAD)
				forward_client_in(s);
		}
		if ((what & EV_WRITE) && s->state != S_DEAD) {
			if (s->flags & F_READ_WANTS_WRITE)
				forward_client_in(s);
			if (s->state != S_DEAD)
				forward_client_out(s);
		}
	}
	if (s->state != S_DEAD)
		session_settle(s);
}

static void on_up_event(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	if (s->state == S_UPSTREAM_CONNECTING) {
		session_try_connect(s);
	} else {
		if (what & EV_READ)
			forward_up_in(s);
		if ((what & EV_WRITE) && s->state != S_DEAD)
			forward_up_out(s);
	}
	if (s->state != S_DEAD)
		session_settle(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	switch (s->state) {
	case S_HANDSHAKE:
		s->flags |= F_CLIENT_DEAD;
		session_close(s, (s->flags & F_HELLO_DONE) ? "handshake_timeout" : "hello_timeout");
		break;
	case S_AWAIT_CONNECT:
		session_close(s, "connect_timeout");
		break;
	case S_AUTHENTICATING:
		/* Either a refusal has served its delay, or the check itself
		 * outlived --connect-timeout (the pool is saturated). */
		if (!session_auth_timer(s))
			session_refuse(s, MQTT_REFUSE_SERVER_BUSY, "auth_timeout");
		break;
	case S_UPSTREAM_CONNECTING:
		session_refuse(s, -1, "broker_timeout");
		break;
	case S_FORWARDING:
		session_auth_timer_forwarding(s);
		break;
	case S_CLOSING:
		/* The peers had their chance to take the rest: drop it. */
		s->flags |= F_CLIENT_DEAD | F_UP_DEAD;
		break;
	default:
		break;
	}
	if (s->state != S_DEAD)
		session_settle(s);
}

void session_close_now(struct session *s, const char *reason)
{
	session_close(s, reason);
	if (s->state != S_DEAD)
		session_settle(s);
}

void session_settle_external(struct session *s)
{
	if (s->state != S_DEAD)
		session_settle(s);
}

struct session *session_new(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct session *s = calloc(1, sizeof(*s));
	SSL_CTX *ctx = NULL;
	BIO *bio;

	if (s == NULL)
		goto err;
	s->magic = SESSION_MAGIC;
	s->w = w;
	s->cfd = fd;
	s->ufd = -1;
	s->state = S_HANDSHAKE;
	s->start_ms = session_now_ms();
	if (salen <= sizeof(s->addr))
		memcpy(&s->addr, sa, salen);
	ctx = proxy_get_ssl_ctx(w->proxy);
	s->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);      /* the SSL holds its own reference */
	s->sock.fd = fd;
	if (s->ssl == NULL || !tls_peer_attach(s->ssl, &s->peer) ||
	    (bio = tls_sock_bio_new(&s->sock)) == NULL)
		goto err;
	SSL_set_bio(s->ssl, bio, bio);    /* the SSL owns the BIO */
	SSL_set_accept_state(s->ssl);
	/* Frees the certificate/key configuration copy once the handshake is
	 * over: ~700 bytes of every idle connection (DESIGN.md §4). */
	SSL_set_shed_handshake_config(s->ssl, 1);
	s->peer.want_identity = w->proxy->identity_kind;
	event_assign(&s->ev_client, w->base, fd, EV_PERSIST, on_client_event, s);
	event_priority_set(&s->ev_client, PRI_NEW);
	evtimer_assign(&s->ev_timer, w->base, on_timer, s);
	event_priority_set(&s->ev_timer, PRI_LIVE);
	s->flags |= F_IN_HANDSHAKE_COUNT;
	set_timer(s, &w->proxy->hello_timeout);
	session_rearm(s);
	return s;
err:
	if (s) {
		SSL_free(s->ssl);
		tls_sock_cleanup(&s->sock);
		free(s);
	}
	close(fd);
	return NULL;
}

void session_assign_upstream(struct session *s)
{
	event_assign(&s->ev_up, s->w->base, s->ufd, EV_PERSIST, on_up_event, s);
	event_priority_set(&s->ev_up, PRI_LIVE);
	s->flags |= F_UP_EVENTS;
}

void session_free(struct session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl);
	tls_sock_cleanup(&s->sock);
	if (s->to_up)
		evbuffer_free(s->to_up);
	if (s->to_client)
		evbuffer_free(s->to_client);
	tls_peer_cleanup(&s->peer);
	session_auth_free(s->auth);
	free(s->client_id);
	s->magic = 0;
	free(s);
}
