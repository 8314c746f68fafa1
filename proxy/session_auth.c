/*
 * AUTHENTICATING: deciding who the client is, and what the broker sees.
 *
 * The CONNECT is copied out of the input buffer (it must outlive buffer
 * changes while a pool thread looks at it), the credentials are checked on
 * the loop when cheap or on the pool when slow, and then either
 *   - the CONNECT is re-emitted with the injected username/password and put
 *     in front of whatever the client pipelined behind it, or
 *   - after the failure delay for that address, the client gets its CONNACK
 *     refusal and the broker never hears of it.
 * A connection authenticated by a token ends when the token expires; an
 * MQTT 5 client first gets a DISCONNECT (0xA0), inserted between two broker
 * packets, which is why such sessions count packet boundaries downstream.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/mem.h>

#include "mqtt/connack.h"
#include "mqtt/connect.h"
#include "mqtt/cursor.h"
#include "proxy/auth/faildelay.h"
#include "proxy/auth/policy.h"
#include "proxy/counts.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/session.h"
#include "proxy/worker.h"

#define CHEAP_US 150
/* Memory all of one worker's queued checks may hold (their CONNECT copies). */
#define AUTH_QUEUE_BYTES (4u << 20)

struct auth_job {
	struct pool_job base;        /* first: the pool hands this pointer back */
	struct session *s;           /* NULL once the session is gone */
	atomic_int cancelled;        /* the client left: the pool skips the check */
	struct worker *w;            /* borrowed; set while counted in its queue */
	uint64_t ip_key, user_key;   /* counts taken in w->counts, 0 if none */
	size_t held;                 /* bytes counted in w->auth_bytes */
	const char *refuse_reason;   /* overrides the verdict's reason, static */
	struct auth_material *m;     /* reference */
	uint8_t *pkt;                /* owned copy of the CONNECT */
	size_t pkt_len;
	struct mqtt_connect c;       /* slices into pkt */
	struct auth_request req;
	enum auth_method method;
	struct auth_result res;
	int64_t now;
};

static void job_free(struct auth_job *j)
{
	if (j == NULL)
		return;
	auth_request_cleanup(&j->req);
	auth_result_cleanup(&j->res);
	auth_material_unref(j->m);
	if (j->pkt) {
		OPENSSL_cleanse(j->pkt, j->pkt_len);
		free(j->pkt);
	}
	free(j);
}

void session_auth_free(struct session_auth *a)
{
	if (a == NULL)
		return;
	if (a->job) {
		/* The pool still has it: disown it, its completion frees it, and
		 * a check nobody waits for is not worth running. */
		atomic_store(&a->job->cancelled, 1);
		a->job->s = NULL;
		a->job = NULL;
	}
	free(a->user);
	free(a);
}

static char *copy_slice(struct slice sl)
{
	char *p = malloc(sl.len + 1);

	/* An absent field is a NULL slice: nothing to copy. */
	if (p) {
		if (sl.len > 0)
			memcpy(p, sl.ptr, sl.len);
		p[sl.len] = '\0';
	}
	return p;
}

static int build_request(struct auth_job *j, const struct session *s)
{
	struct auth_request *r = &j->req;
	const struct mqtt_connect *c = &j->c;

	r->version = c->version;
	r->client_id_len = c->client_id.len;
	r->has_username = c->has_username;
	r->username_len = c->username.len;
	r->has_password = c->has_password;
	r->password_len = c->password.len;
	r->has_auth_method = c->has_auth_method;
	r->client_id = copy_slice(c->client_id);
	r->username = copy_slice(c->username);
	r->password = (uint8_t *)copy_slice(c->password);
	if (s->peer.identity)
		r->cert_identity = strdup(s->peer.identity);
	return r->client_id && r->username && r->password &&
	       (s->peer.identity == NULL || r->cert_identity);
}

static enum mqtt_refusal refusal_for(enum auth_verdict v)
{
	switch (v) {
	case AUTH_BAD_METHOD:
		return MQTT_REFUSE_BAD_AUTH_METHOD;
	case AUTH_NOT_AUTHORIZED:
		return MQTT_REFUSE_NOT_AUTHORIZED;
	default:
		return MQTT_REFUSE_BAD_CREDENTIALS;
	}
}

static const char *reason_for(const struct auth_job *j)
{
	enum auth_verdict v = j->res.verdict;

	if (j->refuse_reason)
		return j->refuse_reason;
	switch (v) {
	case AUTH_BAD_METHOD:
		return "bad_auth_method";
	case AUTH_NOT_AUTHORIZED:
		return "not_authorized";
	default:
		return "bad_credentials";
	}
}

/* Re-emits the CONNECT with the credentials the broker should see and puts
 * it in front of the pipelined bytes. Returns 1/0. */
static int inject(struct session *s, struct auth_job *j)
{
	struct mqtt_connect c = j->c;
	const struct auth_material *m = j->m;
	uint8_t *out = NULL;
	size_t need, n;
	int ok = 0;

	if (m->upstream_username) {
		c.has_username = 1;
		c.username = (struct slice){ (const uint8_t *)m->upstream_username, strlen(m->upstream_username) };
	} else if (j->res.identity) {
		c.has_username = 1;
		c.username = (struct slice){ (const uint8_t *)j->res.identity, strlen(j->res.identity) };
	} else if (j->method != AUTH_NONE) {
		c.has_username = 0;
		c.username = (struct slice){ NULL, 0 };
	}
	/* The client's own password or token never reaches the broker. */
	c.has_password = m->upstream_password != NULL;
	c.password = (struct slice){ m->upstream_password, m->upstream_password_len };
	if (c.version != MQTT_V5 && c.has_password && !c.has_username)
		c.has_password = 0;   /* 3.x cannot carry a password alone */
	need = mqtt_connect_serialized_len(&c);
	if (need == 0 || (out = malloc(need)) == NULL)
		goto err;
	n = mqtt_connect_serialize(&c, out, need);
	if (n != need)
		goto err;
	if (s->to_up == NULL && (s->to_up = evbuffer_new()) == NULL)
		goto err;
	ok = evbuffer_prepend(s->to_up, out, n) == 0;
err:
	if (out) {
		OPENSSL_cleanse(out, need);
		free(out);
	}
	return ok;
}

static void log_auth_refusal(struct session *s, const struct auth_job *j, uint32_t delay)
{
	char peer[80], detail[sizeof(j->res.detail) * 2];

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	/* Quotes inside the detail (user names, JWT claim names) are escaped
	 * so the detail="..." field stays one field. */
	log_escape(detail, sizeof(detail), j->res.detail, strlen(j->res.detail));
	log_msg(LOG_INFO, "refuse peer=%s mqtt=%u auth=%s reason=%s delay_ms=%u detail=\"%s\"", peer,
	        s->mqtt_version, auth_method_name(j->method), reason_for(j), delay, detail);
}

static void log_server_busy(struct session *s, const struct auth_job *j)
{
	const struct config *c = s->w->proxy->cfg;
	char peer[80];

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(LOG_INFO,
	        "refuse peer=%s mqtt=%u auth=%s reason=server_busy detail=\"auth queue %ld/%ld, per ip %ld, per user %ld\"",
	        peer, s->mqtt_version, auth_method_name(j->method), s->w->auth_jobs, c->max_auth_queue,
	        c->max_auth_per_ip, c->max_auth_per_user);
}

static uint32_t failure_delay(struct session *s, const struct auth_material *m)
{
	const void *ip;
	size_t len;

	if (s->addr.sa.sa_family == AF_INET6) {
		ip = &s->addr.in6.sin6_addr;
		len = 16;
	} else {
		ip = &s->addr.in.sin_addr;
		len = 4;
	}
	return faildelay_record(s->w->proxy->faildelay, ip, len, session_now_ms(), m->fail_delay_ms);
}

/* The name the broker will see must be one it accepts: a certificate CN or
 * a token claim with control characters made the broker drop the client,
 * who then got a bare close instead of a CONNACK. */
static void check_identity(struct auth_job *j)
{
	const char *id = j->res.identity;

	if (j->res.verdict != AUTH_OK || id == NULL || !j->m->inject || j->m->upstream_username)
		return;
	if (mqtt_utf8_valid_printable((const uint8_t *)id, strlen(id)))
		return;
	j->res.verdict = AUTH_NOT_AUTHORIZED;
	j->refuse_reason = "bad_identity";
	snprintf(j->res.detail, sizeof(j->res.detail),
	         "%s: identity is not a printable MQTT string", auth_method_name(j->method));
}

static void complete(struct session *s, struct auth_job *j)
{
	struct session_auth *a = s->auth;

	a->method = (uint8_t)j->method;
	check_identity(j);
	if (j->res.verdict != AUTH_OK) {
		uint32_t delay = j->res.verdict == AUTH_BAD_METHOD ? 0 : failure_delay(s, j->m);
		/* The delay counts from the CONNECT, not from the end of a check
		 * that may have waited in the queue. */
		uint64_t spent = session_now_ms() - a->connect_ms;
		uint32_t hold = spent < delay ? delay - (uint32_t)spent : 0;
		struct timeval tv = { hold / 1000, (hold % 1000) * 1000 };

		log_auth_refusal(s, j, delay);
		a->refusal = (uint8_t)refusal_for(j->res.verdict);
		a->refusal_reason = reason_for(j);
		a->refusing = 1;
		if (hold == 0) {
			session_refuse(s, a->refusal, a->refusal_reason);
		} else {
			/* Hold the answer; on_timer sends it (session_auth_timer). */
			event_add(&s->ev_timer, &tv);
		}
		return;
	}
	if (j->res.identity) {
		char buf[200];

		log_escape(buf, sizeof(buf), j->res.identity, strlen(j->res.identity));
		a->user = strdup(buf);
	}
	if (j->method == AUTH_JWT && j->m->jwt_expiry_disconnect && j->res.expires > 0)
		a->expires = j->res.expires + j->m->jwt_leeway;
	if (j->m->inject && !inject(s, j)) {
		session_close(s, "out_of_memory");
		return;
	}
	session_connect_parsed(s);
}

static void job_run(struct pool_job *pj)
{
	struct auth_job *j = (struct auth_job *)pj;

	if (!atomic_load(&j->cancelled))
		auth_run(j->m, j->method, &j->req, j->now, &j->res);
}

/*
 * Whether the worker takes one more slow check: bounded in number and
 * memory per worker, and per client address and user name, so that one
 * address (or a spray against one user) cannot fill the queue in front of
 * everybody else. Takes the counts on success (release_queue gives them
 * back).
 */
static int admit_to_queue(struct worker *w, struct auth_job *j, const struct session *s)
{
	const struct config *c = w->proxy->cfg;
	size_t held = sizeof(*j) + j->pkt_len;
	uint64_t ip, user = 0;

	if (w->auth_jobs >= c->max_auth_queue || w->auth_bytes + held > AUTH_QUEUE_BYTES)
		return 0;
	ip = counts_key_addr(w->counts, COUNT_AUTH_IP, &s->addr.sa);
	if (!counts_take(w->counts, ip, (uint32_t)c->max_auth_per_ip))
		return 0;
	if (j->req.has_username) {
		user = counts_key(w->counts, COUNT_AUTH_USER, j->req.username, j->req.username_len);
		if (!counts_take(w->counts, user, (uint32_t)c->max_auth_per_user)) {
			counts_give(w->counts, ip);
			return 0;
		}
	}
	j->w = w;
	j->ip_key = ip;
	j->user_key = user;
	j->held = held;
	w->auth_jobs++;
	w->auth_bytes += held;
	return 1;
}

static void release_queue(struct auth_job *j)
{
	struct worker *w = j->w;

	if (w == NULL)
		return;
	counts_give(w->counts, j->ip_key);
	if (j->user_key)
		counts_give(w->counts, j->user_key);
	w->auth_jobs--;
	w->auth_bytes -= j->held;
	j->w = NULL;
}

/* Back on the session's loop. */
static void job_done(struct pool_job *pj)
{
	struct auth_job *j = (struct auth_job *)pj;
	struct session *s = j->s;

	release_queue(j);
	if (s != NULL && s->state == S_AUTHENTICATING) {
		s->auth->job = NULL;
		complete(s, j);
		session_settle_external(s);
	}
	job_free(j);
}

void session_authenticate(struct session *s, const uint8_t *pkt, size_t len)
{
	struct auth_material *m = proxy_get_auth(s->w->proxy);
	struct auth_job *j = NULL;
	const char *why = NULL;

	s->state = S_AUTHENTICATING;
	if (m == NULL || !m->inject) {
		/* Pure TLS termination: the CONNECT goes on byte for byte. */
		auth_material_unref(m);
		session_connect_parsed(s);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (s->auth = calloc(1, sizeof(*s->auth))) == NULL)
		goto oom;
	s->auth->connect_ms = session_now_ms();
	j->m = m;
	m = NULL;
	j->pkt = malloc(len);
	if (j->pkt == NULL)
		goto oom;
	memcpy(j->pkt, pkt, len);
	j->pkt_len = len;
	/* Parsed again on the copy so that every slice points into memory the
	 * job owns; it parsed once already, so this cannot fail. */
	if (mqtt_connect_parse(j->pkt, len, &j->c, &why) != MQTT_CONNECT_OK || !build_request(j, s))
		goto oom;
	evbuffer_drain(s->to_up, len);
	j->method = auth_select(j->m, &j->req);
	j->now = (int64_t)time(NULL);
	j->s = s;
	if (auth_cost_us(j->m, j->method, &j->req) > CHEAP_US && s->w->proxy->pool) {
		if (!admit_to_queue(s->w, j, s)) {
			/* Refused at once: waiting would only hold memory and a
			 * connection, and the client may retry later. */
			log_server_busy(s, j);
			session_refuse(s, MQTT_REFUSE_SERVER_BUSY, "server_busy");
			job_free(j);
			return;
		}
		j->base.run = job_run;
		j->base.done = job_done;
		j->base.home = &s->w->home;
		s->auth->job = j;
		pool_submit(s->w->proxy->pool, &j->base);
		return;
	}
	auth_run(j->m, j->method, &j->req, j->now, &j->res);
	complete(s, j);
	job_free(j);
	return;
oom:
	auth_material_unref(m);
	job_free(j);
	session_close(s, "out_of_memory");
}

int session_auth_timer(struct session *s)
{
	if (s->auth == NULL || !s->auth->refusing)
		return 0;
	session_refuse(s, s->auth->refusal, s->auth->refusal_reason);
	return 1;
}

void session_auth_forwarding(struct session *s)
{
	struct timespec now;
	struct timeval tv;
	int64_t left_ms;

	if (s->auth == NULL || s->auth->expires == 0)
		return;
	/* To the millisecond: exp is a whole second of wall-clock time. */
	clock_gettime(CLOCK_REALTIME, &now);
	left_ms = s->auth->expires * 1000 - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	if (left_ms < 1)
		left_ms = 1;
	tv.tv_sec = left_ms / 1000;
	tv.tv_usec = (left_ms % 1000) * 1000;
	event_add(&s->ev_timer, &tv);
}

/* Feeds the bytes just read from the broker to the framer, in place. */
void session_auth_track(struct session *s, struct evbuffer *buf, size_t from)
{
	struct session_auth *a = s->auth;
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[8];
	int n;

	if (a == NULL || !a->track_down || a->down.lost)
		return;
	if (evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) != 0) {
		a->down.lost = 1;
		return;
	}
	n = evbuffer_peek(buf, -1, &pos, v, 8);
	if (n > 8) {
		/* More chains than we looked at: rather lose track than guess. */
		a->down.lost = 1;
		return;
	}
	for (int i = 0; i < n; i++)
		mqtt_framer_feed(&a->down, v[i].iov_base, v[i].iov_len);
}

/* While an expired session finishes the packet the client already got the
 * start of, read no further than that packet's end. */
size_t session_auth_read_limit(const struct session *s, size_t room)
{
	const struct session_auth *a = s->auth;

	if (a == NULL || !a->expiring)
		return room;
	if (a->down.state == 2)
		return a->down.left < room ? (size_t)a->down.left : room;
	return 1;   /* inside a fixed header: a byte at a time */
}

void session_auth_after_read(struct session *s)
{
	struct session_auth *a = s->auth;

	if (a && a->expiring && a->down.state == 0 && s->state == S_FORWARDING)
		session_end_v5(s, a->end_code, a->end_reason);
}

/* The session timer in FORWARDING: either a token expired, or a packet we
 * were waiting for did not complete within the grace period. */
void session_auth_timer_forwarding(struct session *s)
{
	struct session_auth *a = s->auth;

	if (a && a->expiring)
		session_end_v5(s, a->end_code, a->end_reason);
	else
		session_end_v5(s, 0xA0, "token_expired");
}

/*
 * Ends a forwarding session. An MQTT 5 client whose broker stream is being
 * followed first gets a DISCONNECT with |code| (0xA0 token expired, 0x8B
 * server shutting down), placed between two broker packets; any other
 * client is just closed with |reason| logged.
 */
void session_end_v5(struct session *s, uint8_t code, const char *reason)
{
	static const struct timeval grace = { 2, 0 };
	struct session_auth *a = s->auth;
	uint8_t pkt[4];
	size_t n = 0;

	if (a && a->track_down && !a->down.lost) {
		size_t have = s->to_client ? evbuffer_get_length(s->to_client) : 0;
		uint64_t start = a->down.total - have;    /* stream offset of to_client's first byte */
		/* Bytes the client has, or that an unfinished SSL_write must
		 * still send as they are: the cut cannot go before them. */
		uint64_t committed = start + s->write_pending;
		size_t whole;

		if (a->down.boundary < committed && !a->expiring) {
			/* The client already has the start of a packet: let the
			 * broker finish it, then disconnect (or give up after the
			 * grace period and just close). */
			a->expiring = 1;
			a->end_code = code;
			a->end_reason = reason;
			event_add(&s->ev_timer, &grace);
			return;
		}
		if (a->down.boundary < committed)
			a->down.lost = 1;
		whole = a->down.lost ? have : (size_t)(a->down.boundary - start);

		/* Drop a trailing partial packet so the DISCONNECT starts on a
		 * packet boundary; the broker redelivers QoS 1/2 on reconnect. */
		if (whole < have) {
			struct evbuffer *keep = evbuffer_new();

			if (keep && evbuffer_remove_buffer(s->to_client, keep, whole) == (int)whole) {
				evbuffer_free(s->to_client);
				s->to_client = keep;
			} else if (keep) {
				evbuffer_free(keep);
				a->down.lost = 1;
			}
		}
		if (!a->down.lost)
			n = mqtt_disconnect_build_v5(code, pkt, sizeof(pkt));
	}
	if (n > 0) {
		if (s->to_client == NULL)
			s->to_client = evbuffer_new();
		if (s->to_client)
			evbuffer_add(s->to_client, pkt, n);
	}
	session_close(s, reason);
	forward_client_out(s);
}
