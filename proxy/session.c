/*
 * The hub of a connection (DESIGN.md §3). It alone owns the libevent
 * callbacks, the state and its transitions, the one timer and what it
 * means in each state, and the ways out. The stages it calls (forward.c,
 * connect.c, session_auth.c, upstream.c, session_end.c, accept_proxy.c,
 * acl_stage.c, ws_stage.c) return outcomes; what happens next is decided here and nowhere else.
 *
 * The timer, by state:
 *   PROXY_HEADER         --hello-timeout (accept to ClientHello covers it)
 *   HANDSHAKE            --hello-timeout, then what is left of --handshake-timeout
 *   WS_UPGRADE           --hello-timeout again: TLS done -> complete upgrade request
 *   AWAIT_CONNECT        --connect-timeout
 *   AUTHENTICATING       what is left of it (a check stuck in the queue), or
 *                        the failure delay before a refusal is sent
 *   UPSTREAM_CONNECTING  --upstream-timeout, for each broker tried
 *   FORWARDING           token expiry, or the grace for a packet to finish
 *                        before a clean cut
 *   CLOSING              how long the peers get to take the rest
 *
 * Every callback ends with session_settle(), which either finishes a
 * CLOSING session whose buffers are flushed or re-arms exactly the events
 * the state and buffers call for (session_rearm, the only place that arms
 * socket events).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/auth/policy.h"
#include "proxy/limits.h"
#include "proxy/metrics.h"
#include "proxy/proxyproto.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "proxy/ws_frame.h"
#include "proxy/ws_upgrade.h"
#include "tls/io.h"

/* How long a clean cut waits for the packet the client has the start of. */
static const struct timeval end_grace = { 2, 0 };

static void on_client_event(evutil_socket_t fd, short what, void *arg);
static void on_up_event(evutil_socket_t fd, short what, void *arg);
static void session_close(struct session *s, const char *reason);

static struct session *session_get(void *arg)
{
	struct session *s = arg;

	/* A stale callback on freed memory must stop loudly, not corrupt. */
	if (s == NULL || s->magic != SESSION_MAGIC)
		abort();
	return s;
}

size_t session_client_in_limit(const struct session *s)
{
	/* Before authentication a client gets room for its CONNECT and a
	 * little pipelining, not the forwarding-phase buffers. */
	if (s->state == S_FORWARDING)
		return s->w->proxy->max_buffer;
	if (s->state == S_WS_UPGRADE)
		return WS_UPGRADE_MAX;
	return s->w->proxy->max_connect_size;
}

/* ---- the timer ------------------------------------------------------------ */

static void set_timer(struct session *s, const struct timeval *tv)
{
	if (tv)
		event_add(&s->ev_timer, tv);
	else
		event_del(&s->ev_timer);
}

static void set_timer_ms(struct session *s, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	set_timer(s, &tv);
}

static uint64_t timeval_ms(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

/* ---- events ---------------------------------------------------------------- */

/* Points |ev| at the wanted READ/WRITE set; an empty set leaves it out of
 * the loop. Re-assigning is legal only while the event is not pending. */
static void assign_events(struct session *s, struct event *ev, int fd, int rd, int wr,
                          event_callback_fn cb)
{
	short what = (short)((rd ? EV_READ : 0) | (wr ? EV_WRITE : 0));

	event_del(ev);
	event_assign(ev, s->w->base, fd, what | EV_PERSIST, cb, s);
	/* Live sessions are served before handshakes (worker.h). */
	event_priority_set(ev, s->state <= S_HANDSHAKE ? PRI_NEW : PRI_LIVE);
	if (what)
		event_add(ev, NULL);
}

static void kick_read(struct session *s)
{
	s->flags |= F_KICK_READ;
	event_active(&s->ev_client, EV_READ, 0);
}

/* Bytes still to write to the client: to_client, and on WebSocket
 * listeners the HTTP answer and control frames besides. */
static size_t client_pending(const struct session *s)
{
	return bufq_len(&s->to_client) + (s->ws ? ws_stage_pending(s) : 0);
}

static void session_rearm(struct session *s)
{
	size_t max = s->w->proxy->max_buffer;
	size_t in_max = session_client_in_limit(s);
	size_t up = bufq_len(&s->to_up), down = client_pending(s);
	int client_ok = !(s->flags & F_CLIENT_DEAD);
	uint8_t want = 0;

	switch (s->state) {
	case S_PROXY_HEADER:
		want = ARM_CLIENT_READ;
		break;
	case S_HANDSHAKE:
		want = (s->flags & F_HS_WANTS_WRITE) ? ARM_CLIENT_WRITE : ARM_CLIENT_READ;
		break;
	case S_WS_UPGRADE:
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
	/* --upstream-tls: the broker events its TLS waits for, which may cross. */
	if (s->up_tls)
		want = upstream_tls_arm(s, want);
	if ((want & ARM_CLIENT) != (s->armed & ARM_CLIENT) ||
	    event_get_priority(&s->ev_client) != (s->state <= S_HANDSHAKE ? PRI_NEW : PRI_LIVE))
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
	else if ((want & ARM_CLIENT_READ) && s->state > S_HANDSHAKE && !(s->flags & F_READ_IDLE) &&
	         (tls_sock_buffered(&s->sock) || SSL_has_pending(s->ssl)))
		kick_read(s);
	/* The same rule for broker bytes inside the broker's SSL. */
	if ((want & ARM_UP_READ) && s->state == S_FORWARDING && upstream_tls_kick(s))
		event_active(&s->ev_up, EV_READ, 0);
}

/* ---- the way out ------------------------------------------------------------ */

static void leave_handshake_count(struct session *s)
{
	if (s->flags & F_IN_HANDSHAKE_COUNT) {
		s->flags &= ~F_IN_HANDSHAKE_COUNT;
		worker_handshake_done(s->w, s, (s->flags & F_HS_IP_COUNTED) != 0);
		s->flags &= ~(uint32_t)F_HS_IP_COUNTED;
	}
}

/* Ends the session now: close_notify, log, stop every event, close sockets.
 * The memory stays valid until the worker's reaper runs, so callers up the
 * stack may still look at s->state (S_DEAD) and return. */
static void session_finish(struct session *s)
{
	struct metrics *m = &s->w->metrics;

	if ((s->flags & F_TLS_DONE) && !(s->flags & F_CLIENT_DEAD))
		tls_close_notify(s->ssl);
	leave_handshake_count(s);
	counter_add(&m->closed[metrics_close_reason(s->close_reason)], 1);
	counter_add(&m->connections_active[s->listener], (uint64_t)-1);
	if (s->flags & F_IP_COUNTED)
		limits_conn_end(s->w->proxy->limits, &s->addr.sa);
	if ((s->flags & F_ID_COUNTED) && s->auth && s->auth->user)
		limits_identity_give(s->w->proxy->limits, s->auth->user, strlen(s->auth->user));
	s->flags &= ~(uint32_t)(F_IP_COUNTED | F_ID_COUNTED);
	event_del(&s->ev_client);
	event_del(&s->ev_timer);
	upstream_close(s);
	s->armed = 0;
	/* Orderly TCP close after close_notify; the fd goes with the SSL. */
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = -1;
	/* Logged once the sockets are closed: whoever reads the line may count
	 * on the descriptors being gone. */
	session_log_close(s);
	s->state = S_DEAD;
	worker_session_finished(s->w, s);
}

static void maybe_finish(struct session *s)
{
	int to_client = !(s->flags & F_CLIENT_DEAD) && client_pending(s) > 0;
	int up_pending = s->ufd >= 0 && !(s->flags & F_UP_DEAD) && bufq_len(&s->to_up) > 0;

	if (!to_client && !up_pending)
		session_finish(s);
}

/* The end of every callback: finish or re-arm. */
static void session_settle(struct session *s)
{
	if (s->state == S_CLOSING)
		maybe_finish(s);
	if (s->state != S_DEAD)
		session_rearm(s);
}

/* Enters CLOSING with |reason| (kept if one was already set): what is
 * buffered may still be flushed; session_settle finishes it. */
static void session_close(struct session *s, const char *reason)
{
	if (s->state == S_DEAD || s->state == S_CLOSING) {
		if (s->close_reason == NULL)
			s->close_reason = reason;
		return;
	}
	s->close_reason = reason;
	s->close_state = s->state;
	if (s->state == S_HANDSHAKE)
		stats_handshake_failed(s, reason);
	if (s->state == S_WS_UPGRADE)
		ws_stage_abandoned(s, reason);
	/* A WebSocket client is told with a close frame, after what is queued. */
	if (s->ws)
		ws_stage_close(s, reason && strcmp(reason, "shutdown") == 0 ? 1001 : WS_CLOSE_NORMAL);
	if (s->auth && s->auth->job) {
		session_auth_free(s->auth);     /* disowns and cancels the job in flight */
		s->auth = NULL;
	}
	leave_handshake_count(s);
	/* Before FORWARDING nothing the client sent may reach the broker. */
	if (s->state != S_FORWARDING)
		upstream_close(s);
	if (s->state <= S_HANDSHAKE)
		s->flags |= F_CLIENT_DEAD;
	s->state = S_CLOSING;
	set_timer(s, &s->w->proxy->linger_timeout);
}

/* ---- steps: a stage called, its outcome acted on ------------------------------ */

static void client_out(struct session *s)
{
	if (forward_client_out(s) == FWD_ERROR)
		session_close(s, "client_error");
}

static int broker_refused_late(struct session *s);

static void up_out(struct session *s)
{
	if (s->state != S_FORWARDING && s->state != S_CLOSING)
		return;
	if ((forward_up_out(s) == FWD_ERROR || (s->state == S_FORWARDING && (s->flags & F_UP_DEAD))) &&
	    !broker_refused_late(s))
		session_close(s, "broker_closed");
}

/*
 * Sends the refusing CONNACK for the client's version (when that version
 * has a code for |refusal|) and closes. The broker is never contacted, or
 * its half-open connection is dropped.
 */
static void session_refuse(struct session *s, enum mqtt_refusal refusal, const char *reason)
{
	uint8_t pkt[8];
	size_t n = 0;

	if (s->mqtt_version != 0)
		n = mqtt_connack_build(s->mqtt_version, refusal, pkt, sizeof(pkt));
	if (n > 0) {
		counter_add(&s->w->metrics.connack[pkt[3]], 1);    /* the code, in 3.x and 5.0 alike */
		stats_connack(s);
	}
	upstream_close(s);
	bufq_clear(&s->to_up, session_blocks(s));
	if (n > 0 && !(s->flags & F_CLIENT_DEAD) && !bufq_add(&s->to_client, session_blocks(s), pkt, n))
		s->flags |= F_CLIENT_DEAD;
	session_close(s, reason);
	/* Push the CONNACK out now; the close finishes once it is written. */
	client_out(s);
}

/* --upstream-tls: the broker's TLS failed; the client hears what it would
 * of a broker that cannot be reached. */
static void broker_tls_failed(struct session *s)
{
	counter_add(&s->w->metrics.broker_errors[BROKER_TLS], 1);
	upstream_tls_log_failure(s);
	session_refuse(s, MQTT_REFUSE_SERVER_UNAVAILABLE, "broker_tls");
}

/* A TLS 1.3 server checks the client's certificate after the client's
 * handshake is done: a broker that refuses ours sends an alert before its
 * first byte. Then the client gets the CONNACK of a TLS failure instead of
 * a bare close. Returns 1 if so. */
static int broker_refused_late(struct session *s)
{
	if (!upstream_tls_alerted(s) || s->state != S_FORWARDING || (s->flags & F_CONNACK_SEEN) ||
	    bufq_len(&s->to_client) > 0)
		return 0;
	broker_tls_failed(s);
	return 1;
}

/* A forwarding session ends on mqtls's initiative: an MQTT 5 client gets
 * DISCONNECT |code| between two broker packets (waiting a little for the
 * packet it has the start of), anyone else is just closed. */
static void end_session(struct session *s, uint8_t code, const char *reason)
{
	if (end_cut(s, code, reason) == END_WAIT) {
		set_timer(s, &end_grace);
		return;
	}
	session_close(s, reason);
	client_out(s);
}

static void enter_forwarding(struct session *s)
{
	s->state = S_FORWARDING;
	set_timer(s, NULL);
	/* An MQTT 5 client can be told why it is disconnected (shutdown, token
	 * expiry) if the broker's packet boundaries are known: follow them.
	 * Without the memory for it, such an end is a plain close. */
	if (s->mqtt_version == MQTT_V5)
		(void)end_follow(s);
	if (s->auth && s->auth->expires > 0) {
		struct timespec now;
		int64_t left;

		/* To the millisecond: exp is a whole second of wall-clock time. */
		clock_gettime(CLOCK_REALTIME, &now);
		left = s->auth->expires * 1000 - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
		set_timer_ms(s, left < 1 ? 1 : (uint64_t)left);
	}
	up_out(s);
}

static void open_broker(struct session *s);

static void broker_step(struct session *s, enum up_step r, int err)
{
	switch (r) {
	case UP_CONNECTED:
		enter_forwarding(s);
		break;
	case UP_PENDING:
		if (s->state != S_UPSTREAM_CONNECTING) {
			s->state = S_UPSTREAM_CONNECTING;
			set_timer(s, &s->w->proxy->upstream_timeout);
		}
		break;
	case UP_FAILED:
		counter_add(&s->w->metrics.broker_errors[BROKER_UNREACHABLE], 1);
		upstream_log_failure(s, err);
		open_broker(s);    /* failover: the next broker, if one is left */
		break;
	case UP_EXHAUSTED:
		session_refuse(s, MQTT_REFUSE_SERVER_UNAVAILABLE, "broker_unreachable");
		break;
	case UP_TLS_FAILED:
		counter_add(&s->w->metrics.broker_errors[BROKER_TLS], 1);
		upstream_tls_log_failure(s);
		if (upstream_tried_all(s))
			session_refuse(s, MQTT_REFUSE_SERVER_UNAVAILABLE, "broker_tls");
		else
			open_broker(s);    /* another broker's certificate may verify */
		break;
	}
}

/* --send-proxy-v2: the broker learns the client's address and TLS details
 * from a PROXY v2 header in front of the CONNECT. */
static int add_proxy_header(struct session *s)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	struct proxy_tls tls = { 1, s->peer.cn != NULL || s->peer.identity != NULL, SSL_get_version(s->ssl),
	                         s->peer.cn };
	uint8_t hdr[PROXY_HEADER_MAX];
	size_t n;

	if (getsockname(s->cfd, (struct sockaddr *)&local, &llen) != 0)
		return 0;
	/* Behind a balancer the client may be IPv6 where mqtls listens on
	 * IPv4: the header needs one family, so the local side is left blank. */
	if (local.ss_family != s->addr.sa.sa_family) {
		memset(&local, 0, sizeof(local));
		local.ss_family = s->addr.sa.sa_family;
	}
	n = proxy_header_v2_build(&s->addr.sa, (struct sockaddr *)&local, &tls, hdr, sizeof(hdr));
	/* With --upstream-tls it goes in clear before the ClientHello. */
	if (n > 0 && s->w->proxy->cfg->upstream_tls)
		return upstream_tls_preamble(s, hdr, n);
	return n > 0 && bufq_prepend(&s->to_up, session_blocks(s), hdr, n);
}

/* Tries the next broker (the first, or the next after a failure); to_up
 * holds what it is to be sent, kept whole by a failed attempt. */
static void open_broker(struct session *s)
{
	enum up_step r;
	int err = 0;

	r = upstream_open(s, &err);
	if (s->ufd >= 0) {
		event_assign(&s->ev_up, s->w->base, s->ufd, EV_PERSIST, on_up_event, s);
		event_priority_set(&s->ev_up, PRI_LIVE);
		s->flags |= F_UP_EVENTS;
	}
	/* --upstream-timeout is per broker: the next one gets all of it. */
	if (r == UP_PENDING && s->state == S_UPSTREAM_CONNECTING)
		set_timer(s, &s->w->proxy->upstream_timeout);
	broker_step(s, r, err);
}

static void connect_broker(struct session *s)
{
	set_timer(s, NULL);
	if (s->w->proxy->cfg->send_proxy_v2 && !add_proxy_header(s)) {
		session_close(s, "out_of_memory");
		return;
	}
	open_broker(s);
}

/* --max-conn-per-identity: the newest connection of an identity over the
 * limit is the one refused (the devices already connected keep working).
 * Returns 1 if the session may go on. */
static int identity_admitted(struct session *s)
{
	const char *id = s->auth ? s->auth->user : NULL;

	if (id == NULL)
		return 1;
	if (!limits_identity_take(s->w->proxy->limits, id, strlen(id))) {
		stats_auth(s, AUTHR_IDENTITY_LIMIT);
		session_log_refusal(s, "identity_limit", NULL);
		session_refuse(s, MQTT_REFUSE_QUOTA_EXCEEDED, "identity_limit");
		return 0;
	}
	if (s->w->proxy->limits)
		s->flags |= F_ID_COUNTED;
	return 1;
}

/* The ACL's outcome on client bytes: a denial that ends the session ends
 * it cleanly (MQTT 5: DISCONNECT between two broker packets); answers it
 * put in to_client go out now. */
static void acl_step(struct session *s, size_t from)
{
	struct acl_report rep;
	const char *reason = NULL;

	switch (acl_up(s, from, &rep)) {
	case ACL_OK:
		break;
	case ACL_DENY_CLOSE:
		reason = "acl_denied";
		break;
	case ACL_REFUSE:
		reason = "protocol_error";
		break;
	case ACL_OOM:
		session_close(s, "out_of_memory");
		return;
	}
	if (reason && s->state == S_FORWARDING)
		end_session(s, rep.code, reason);
	else if (reason)
		session_close(s, reason);
	else if (rep.answered)
		client_out(s);
}

/* An admitted client: an ACL that applies to it starts now, with what it
 * pipelined behind its CONNECT. Returns 1 if the session goes on. */
static int acl_begin(struct session *s)
{
	size_t len = 0;

	switch (acl_attach(s, &len)) {
	case ACL_OFF:
		return 1;
	case ACL_ATTACH_OOM:
		session_close(s, "out_of_memory");
		return 0;
	case ACL_ON:
		break;
	}
	if (bufq_len(&s->to_up) > len)
		acl_step(s, len);
	return s->state == S_AUTHENTICATING;
}

static void auth_step(struct session *s, enum auth_step r)
{
	switch (r) {
	case AUTH_STEP_ALLOW:
		if (!identity_admitted(s))
			break;
		stats_auth(s, AUTHR_OK);
		if (acl_begin(s))
			connect_broker(s);
		break;
	case AUTH_STEP_REFUSE:
		stats_auth(s, stats_auth_refusal(s->auth->refusal_reason));
		/* Held for the failure delay; the timer sends it. */
		if (s->auth->hold_ms == 0)
			session_refuse(s, s->auth->refusal, s->auth->refusal_reason);
		else
			set_timer_ms(s, s->auth->hold_ms);
		break;
	case AUTH_STEP_PENDING:
		break;    /* the --connect-timeout timer still runs */
	case AUTH_STEP_BUSY:
		stats_auth(s, AUTHR_BUSY);
		session_refuse(s, MQTT_REFUSE_SERVER_BUSY, "server_busy");
		break;
	case AUTH_STEP_OOM:
		session_close(s, "out_of_memory");
		break;
	}
}

void session_auth_ready(struct session *s)
{
	auth_step(s, session_auth_finish(s));
	if (s->state != S_DEAD)
		session_settle(s);
}

/* AWAIT_CONNECT: the first packet may be complete now. */
static void connect_step(struct session *s)
{
	struct mqtt_connect c;
	const uint8_t *pkt = NULL;
	const char *reason = NULL;
	size_t len = 0;
	int refusal = 0;

	switch (connect_parse(s, &c, &pkt, &len, &refusal, &reason)) {
	case CONNECT_NEED_MORE:
		return;
	case CONNECT_REFUSE:
		session_refuse(s, (enum mqtt_refusal)refusal, reason);
		return;
	case CONNECT_OOM:
		session_close(s, "out_of_memory");
		return;
	case CONNECT_OK:
		break;
	}
	counter_add(&s->w->metrics.mqtt_connects[c.version == MQTT_V5 ? MQTTV_5 :
	                                         c.version == MQTT_V311 ? MQTTV_311 : MQTTV_31], 1);
	if (s->over_limit != OVER_NONE) {
		static const char *const why[] = { "", "conn_per_ip", "conn_rate_per_ip", "max_connections" };

		session_log_refusal(s, why[s->over_limit], NULL);
		session_refuse(s, s->over_limit == OVER_MAX_CONNECTIONS ? MQTT_REFUSE_SERVER_BUSY
		                                                        : MQTT_REFUSE_QUOTA_EXCEEDED,
		               why[s->over_limit]);
		return;
	}
	s->state = S_AUTHENTICATING;
	auth_step(s, session_auth_start(s, &c, pkt, len));
}

/* WS_UPGRADE: the request may be complete now; once answered, the frames
 * that followed it (decoded by the byte mover) may hold the CONNECT. */
static void ws_upgrade_step(struct session *s)
{
	const char *reason = NULL;

	switch (ws_stage_upgrade(s, &reason)) {
	case WS_STEP_NEED_MORE:
		return;
	case WS_STEP_REFUSE:
		session_close(s, reason);
		client_out(s);
		return;
	case WS_STEP_OOM:
		session_close(s, "out_of_memory");
		return;
	case WS_STEP_OK:
		break;
	}
	if (!ws_forward_rest(s)) {
		session_close(s, "out_of_memory");
		return;
	}
	s->state = S_AWAIT_CONNECT;
	set_timer(s, &s->w->proxy->connect_timeout);
	client_out(s);
	if (s->state == S_AWAIT_CONNECT && bufq_len(&s->to_up) > 0)
		connect_step(s);
}

static void client_in(struct session *s)
{
	enum fwd r;
	size_t from;

	if (s->state < S_WS_UPGRADE || s->state > S_FORWARDING)
		return;
	from = bufq_len(&s->to_up);
	/* With an ACL nothing may leave before the filter has seen it. */
	r = forward_client_in(s, s->state == S_FORWARDING && s->acl == NULL);
	if (r == FWD_OOM) {
		session_close(s, "out_of_memory");
		return;
	}
	if (s->acl && bufq_len(&s->to_up) > from)
		acl_step(s, from);
	if (r == FWD_AGAIN)
		kick_read(s);    /* the budget ran out: come back next turn */
	if (s->state == S_WS_UPGRADE)
		ws_upgrade_step(s);
	else if (s->state == S_AWAIT_CONNECT)
		connect_step(s);
	else if (s->state == S_FORWARDING)
		up_out(s);
	if (s->state == S_DEAD || s->state == S_CLOSING)
		return;
	if (s->flags & F_CLIENT_DEAD)
		session_close(s, "client_error");
	else if (s->flags & F_CLIENT_EOF)
		session_close(s, s->ws ? ws_stage_end_reason(s) : "client_closed");
}

/* FORWARDING: broker bytes in, then out to the client. While a clean cut
 * waits, reads stop at the end of the packet in progress. */
static void up_in(struct session *s)
{
	for (;;) {
		size_t from = bufq_len(&s->to_client), limit = end_read_limit(s, SIZE_MAX), got;
		enum fwd r = forward_up_in(s, limit);

		if (r == FWD_OOM) {
			session_close(s, "out_of_memory");
			return;
		}
		got = bufq_len(&s->to_client) - from;
		if (got > 0) {
			enum acl_down d = s->acl ? acl_down(s, from) : ACL_DOWN_IDLE;

			if (d == ACL_DOWN_OOM) {
				session_close(s, "out_of_memory");
				return;
			}
			if (d == ACL_DOWN_IDLE)
				end_track(s, from);
			stats_connack(s);    /* the broker's first bytes are its CONNACK */
		}
		if (end_ready(s)) {
			end_session(s, s->end->code, s->end->reason);
			return;
		}
		if (r != FWD_OK || got == 0 || got < limit || !(s->end && s->end->ending))
			break;
	}
	client_out(s);
	if (s->state == S_FORWARDING && (s->flags & F_UP_EOF) && !broker_refused_late(s))
		session_close(s, (s->flags & F_UP_DEAD) ? "broker_error" : "broker_closed");
}

static void handshake_failed(struct session *s)
{
	session_log_handshake_failure(s);
	s->flags |= F_CLIENT_DEAD;
	session_close(s, "handshake_failed");
}

/* Once the ClientHello is complete, the rest of the handshake gets what is
 * left of --handshake-timeout instead of the short --hello-timeout. */
static void hello_deadline_passed(struct session *s)
{
	uint64_t limit = timeval_ms(&s->w->proxy->handshake_timeout);
	uint64_t spent = session_now_ms() - s->start_ms;

	if ((s->flags & F_HELLO_DONE) || !s->peer.hello_seen)
		return;
	s->flags |= F_HELLO_DONE;
	set_timer_ms(s, spent < limit ? limit - spent : 1);
}

static void handshake_step(struct session *s)
{
	switch (tls_handshake(s->ssl)) {
	case TLS_IO_OK:
		s->flags |= F_TLS_DONE;
		s->flags &= ~F_HS_WANTS_WRITE;
		/* A TLS 1.3 client that leaves Nagle on holds its CONNECT until
		 * its Finished is acknowledged, and we have nothing to send that
		 * would carry the ACK: without this, it waits for our delayed ACK
		 * (about 40 ms). One setsockopt, only here, not while forwarding. */
		(void)setsockopt(s->cfd, IPPROTO_TCP, TCP_QUICKACK, &(int){ 1 }, sizeof(int));
		stats_handshake_ok(s);
		session_log_resume_refusal(s);
		leave_handshake_count(s);
		if (config_listener_is_ws(s->w->proxy->cfg, s->listener)) {
			/* The upgrade request is as short and as prompt as a
			 * ClientHello: it gets --hello-timeout. */
			if (!ws_stage_start(s)) {
				session_close(s, "out_of_memory");
				break;
			}
			s->state = S_WS_UPGRADE;
			set_timer(s, &s->w->proxy->hello_timeout);
		} else {
			s->state = S_AWAIT_CONNECT;
			set_timer(s, &s->w->proxy->connect_timeout);
		}
		/* TLS 1.3 clients send their CONNECT right behind Finished, so it
		 * is usually in the socket already: reading now saves a loop turn. */
		client_in(s);
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

/* The client now has its real address: the per-address limits apply to it. */
static int admit_client_address(struct session *s)
{
	if (!worker_take_handshake_ip(s->w, &s->addr.sa)) {
		session_close(s, "handshakes_per_ip");
		return 0;
	}
	s->flags |= F_HS_IP_COUNTED;
	limits_at_accept(s);
	return 1;
}

/* PROXY_HEADER: once the balancer's header is read, the client has its
 * real address, the per-address limits apply, and TLS starts. */
static void header_step(struct session *s)
{
	switch (proxy_header_read(s)) {
	case HEADER_WAIT:
		return;
	case HEADER_INVALID:
		session_log_refusal(s, "proxy_header_invalid", NULL);
		session_close(s, "proxy_header_invalid");
		return;
	case HEADER_CLOSED:
		session_close(s, "client_closed");
		return;
	case HEADER_ERROR:
		session_close(s, "client_error");
		return;
	case HEADER_DONE:
		break;
	}
	if (!admit_client_address(s))
		return;
	s->state = S_HANDSHAKE;
	/* The ClientHello may well be here already. */
	handshake_step(s);
}

/* ---- callbacks ---------------------------------------------------------------- */

static void on_client_event(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	s->flags &= ~F_KICK_READ;
	if (s->state == S_PROXY_HEADER) {
		header_step(s);
	} else if (s->state == S_HANDSHAKE) {
		handshake_step(s);
	} else {
		/* Each direction is retried when the event it waited for arrives. */
		if (what & EV_READ) {
			if (s->flags & F_WRITE_WANTS_READ)
				client_out(s);
			if (s->state != S_DEAD)
				client_in(s);
		}
		if ((what & EV_WRITE) && s->state != S_DEAD) {
			if (s->flags & F_READ_WANTS_WRITE)
				client_in(s);
			if (s->state != S_DEAD)
				client_out(s);
		}
	}
	if (s->state != S_DEAD)
		session_settle(s);
}

static void on_up_event(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	if (s->state == S_UPSTREAM_CONNECTING) {
		int err = 0;
		enum up_step r = upstream_check(s, &err);

		broker_step(s, r, err);
	} else {
		/* With --upstream-tls each direction may wait for the other event. */
		if ((what & EV_READ) && upstream_tls_write_wants_read(s))
			up_out(s);
		if ((what & EV_READ) && s->state == S_FORWARDING)
			up_in(s);
		if ((what & EV_WRITE) && s->state == S_FORWARDING && upstream_tls_read_wants_write(s))
			up_in(s);
		if ((what & EV_WRITE) && s->state != S_DEAD)
			up_out(s);
	}
	if (s->state != S_DEAD)
		session_settle(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = session_get(arg);

	switch (s->state) {
	case S_PROXY_HEADER:
		session_close(s, "proxy_header_timeout");
		break;
	case S_HANDSHAKE:
		s->flags |= F_CLIENT_DEAD;
		session_close(s, (s->flags & F_HELLO_DONE) ? "handshake_timeout" : "hello_timeout");
		break;
	case S_WS_UPGRADE:
		session_close(s, "ws_upgrade_timeout");
		break;
	case S_AWAIT_CONNECT:
		session_close(s, "connect_timeout");
		break;
	case S_AUTHENTICATING:
		/* Either a refusal has served its delay, or the check itself
		 * outlived --connect-timeout (the pool is saturated). */
		if (s->auth && s->auth->refusing)
			session_refuse(s, s->auth->refusal, s->auth->refusal_reason);
		else
			session_refuse(s, MQTT_REFUSE_SERVER_BUSY, "auth_timeout");
		break;
	case S_UPSTREAM_CONNECTING:
		counter_add(&s->w->metrics.broker_errors[BROKER_TIMEOUT], 1);
		upstream_log_failure(s, ETIMEDOUT);
		upstream_abandon(s);
		if (upstream_tried_all(s))
			session_refuse(s, MQTT_REFUSE_SERVER_UNAVAILABLE, "broker_timeout");
		else
			open_broker(s);
		break;
	case S_FORWARDING:
		/* A cut that waited for its packet goes ahead now (without the
		 * DISCONNECT if the packet never finished); else a token expired. */
		if (s->end && s->end->ending)
			end_session(s, s->end->code, s->end->reason);
		else
			end_session(s, 0xA0, "token_expired");
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

/* ---- the worker's side (session.h) ------------------------------------------- */

void session_close_now(struct session *s, const char *reason)
{
	session_close(s, reason);
	if (s->state != S_DEAD)
		session_settle(s);
}

void session_shutdown(struct session *s)
{
	if (s->state == S_FORWARDING)
		end_session(s, 0x8B, "shutdown");
	else
		session_close(s, "shutdown");
	if (s->state != S_DEAD)
		session_settle(s);
}

void session_abort(struct session *s)
{
	s->flags |= F_CLIENT_DEAD | F_UP_DEAD;
	session_close_now(s, "shutdown");
}

struct session *session_new(struct worker *w, unsigned listener, int fd, const struct sockaddr *sa,
                            socklen_t salen)
{
	struct session *s = slab_alloc(&w->session_slots);
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
	s->listener = (uint8_t)(listener < CONFIG_MAX_LISTEN ? listener : 0);
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
	s->peer.want_cn = w->proxy->cfg->send_proxy_v2 != 0;
	event_assign(&s->ev_client, w->base, fd, EV_PERSIST, on_client_event, s);
	event_priority_set(&s->ev_client, PRI_NEW);
	evtimer_assign(&s->ev_timer, w->base, on_timer, s);
	event_priority_set(&s->ev_timer, PRI_LIVE);
	s->flags |= F_IN_HANDSHAKE_COUNT;
	/* --hello-timeout covers a PROXY header too: accept to ClientHello. */
	set_timer(s, &w->proxy->hello_timeout);
	counter_add(&w->metrics.connections_total[s->listener], 1);
	counter_add(&w->metrics.connections_active[s->listener], 1);
	if (w->proxy->cfg->accept_proxy) {
		s->state = S_PROXY_HEADER;
	} else {
		s->flags |= F_HS_IP_COUNTED;    /* worker_adopt counted it */
		limits_at_accept(s);
	}
	session_rearm(s);
	return s;
err:
	if (s) {
		SSL_free(s->ssl);
		tls_sock_cleanup(&s->sock);
		slab_free(&w->session_slots, s);
	}
	close(fd);
	return NULL;
}

