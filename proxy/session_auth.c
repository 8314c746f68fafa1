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
 * A stage (session_int.h): it returns an outcome and leaves the answer,
 * the timer and the transition to the hub. The one call back is
 * session_auth_ready(), when a check on the pool comes home.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/mem.h>

#include "mqtt/connack.h"
#include "mqtt/connect.h"
#include "mqtt/cursor.h"
#include "proxy/acl.h"
#include "proxy/auth/faildelay.h"
#include "proxy/auth/jwks_fetch.h"
#include "proxy/auth/policy.h"
#include "proxy/counts.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"

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
	struct pool *pool;           /* borrowed; set while on the pool */
	struct jwks_fetch *jwks;     /* borrowed: the identity provider's keys, or NULL */
	struct jwks_waiter wait;     /* parked on a key fetch (an unknown kid) */
	int parked;                  /* has waited once: the next outcome is final */
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

static void release_counts(struct auth_job *j);
static void release_queue(struct auth_job *j);

void session_auth_free(struct session_auth *a)
{
	if (a == NULL)
		return;
	job_free(a->ready);
	if (a->job) {
		struct auth_job *j = a->job;
		struct pool *pool = j->w ? j->w->proxy->pool : NULL;

		a->job = NULL;
		/* A check nobody waits for is not worth running, nor worth its
		 * place in the queue: taken back if it has not started, else
		 * disowned, and its completion frees it. */
		if ((pool && pool_cancel(pool, &j->base)) || jwks_fetch_unpark(j->jwks, &j->wait)) {
			release_queue(j);
			job_free(j);
		} else {
			atomic_store(&j->cancelled, 1);
			release_counts(j);
			j->s = NULL;
		}
	}
	free(a->user);
	free(a->identity);
	acl_free(a->acl);
	free(a);
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
	r->client_id = slice_dup(c->client_id);
	r->username = slice_dup(c->username);
	r->password = (uint8_t *)slice_dup(c->password);
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
	case AUTH_UNAVAILABLE:
		return MQTT_REFUSE_SERVER_UNAVAILABLE;
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
	case AUTH_UNAVAILABLE:
		return "jwks_unavailable";
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
	ok = bufq_prepend(&s->to_up, session_blocks(s), out, n);
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

static enum auth_step complete(struct session *s, struct auth_job *j)
{
	struct session_auth *a = s->auth;

	a->method = (uint8_t)j->method;
	check_identity(j);
	if (j->res.verdict != AUTH_OK) {
		/* Neither counts as the client's failure. */
		uint32_t delay = j->res.verdict == AUTH_BAD_METHOD || j->res.verdict == AUTH_UNAVAILABLE
		                 ? 0 : failure_delay(s, j->m);
		/* The delay counts from the CONNECT, not from the end of a check
		 * that may have waited in the queue. */
		uint64_t spent = session_now_ms() - a->connect_ms;

		log_auth_refusal(s, j, delay);
		a->refusal = (uint8_t)refusal_for(j->res.verdict);
		a->refusal_reason = reason_for(j);
		a->refusing = 1;
		a->hold_ms = spent < delay ? delay - (uint32_t)spent : 0;
		return AUTH_STEP_REFUSE;
	}
	if (j->res.identity) {
		char buf[200];

		log_escape(buf, sizeof(buf), j->res.identity, strlen(j->res.identity));
		a->user = strdup(buf);
		/* An ACL's %u is the identity itself, not its escaped form. */
		if ((j->m->acl || j->res.acl) && (a->identity = strdup(j->res.identity)) == NULL)
			return AUTH_STEP_OOM;
	}
	a->acl = j->res.acl;    /* the token's claim, for the ACL stage */
	j->res.acl = NULL;
	if (j->method == AUTH_JWT && j->m->jwt_expiry_disconnect && j->res.expires > 0)
		a->expires = j->res.expires + j->m->jwt_leeway;
	if (!inject(s, j))
		return AUTH_STEP_OOM;
	return AUTH_STEP_ALLOW;
}

static void job_run(struct pool_job *pj)
{
	struct auth_job *j = (struct auth_job *)pj;

	if (atomic_load(&j->cancelled))
		return;
	if (j->parked) {
		/* Again, with the keys the fetch it waited for brought. */
		auth_result_cleanup(&j->res);
		jwks_keys_unref(j->req.jwks);
		j->req.jwks = jwks_fetch_current(j->jwks);
	}
	auth_run(j->m, j->method, &j->req, j->now, &j->res);
}

/* On the fetcher's thread: the fetch a parked check waited for ended. */
static void job_wake(struct jwks_waiter *w)
{
	struct auth_job *j = w->arg;

	pool_submit(j->pool, &j->base);
}

/*
 * A token whose kid the fetched keys lack may be signed with a key the
 * identity provider published since: the check waits for one fetch (the
 * fetcher rate-limits them) and runs again, once. Meanwhile it keeps its
 * place in the queue and the session its --connect-timeout. Returns 1 if
 * the job is away (it comes home through the pool again).
 */
static int park(struct auth_job *j)
{
	if (!j->res.refetch || j->parked || j->jwks == NULL || j->pool == NULL)
		return 0;
	j->parked = 1;
	j->wait.wake = job_wake;
	j->wait.arg = j;
	switch (jwks_fetch_park(j->jwks, j->req.jwks ? j->req.jwks->gen : 0, &j->wait)) {
	case JWKS_PARKED:
		return 1;
	case JWKS_RETRY:
		pool_submit(j->pool, &j->base);
		return 1;
	default:
		return 0;
	}
}

/*
 * Whether the worker takes one more slow check: bounded in number and
 * memory per worker, and per client address and user name, so that one
 * address (or a spray against one user) cannot fill the queue in front of
 * everybody else. Takes the counts on success (release_queue gives them
 * back).
 */
static int admit_to_queue(struct worker *w, struct auth_job *j, const struct session *s, uint32_t cost_us)
{
	const struct config *c = w->proxy->cfg;
	size_t held = sizeof(*j) + j->pkt_len;
	uint64_t ip = 0, user = 0;

	if (w->auth_jobs >= c->max_auth_queue || w->auth_bytes + held > AUTH_QUEUE_BYTES)
		return 0;
	/* The per-address and per-user caps are for checks that each hold a
	 * pool thread for a long time (password hashes): a signature check is
	 * on the pool only so as not to stall a loop, and a fleet behind one
	 * NAT logging in with tokens must not be refused for it. */
	if (cost_us < AUTH_EXPENSIVE_US)
		goto admitted;
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
admitted:
	j->w = w;
	j->ip_key = ip;
	j->user_key = user;
	j->held = held;
	w->auth_jobs++;
	w->auth_bytes += held;
	gauge_set(&w->metrics.auth_queue, (uint64_t)w->auth_jobs);
	return 1;
}

/* Gives back the per-address and per-user counts: as soon as the client
 * leaves, since a departed client no longer wants a check (an attacker
 * that hangs up must not keep its address or its victim's name blocked). */
static void release_counts(struct auth_job *j)
{
	struct worker *w = j->w;

	if (w == NULL)
		return;
	if (j->ip_key)
		counts_give(w->counts, j->ip_key);
	if (j->user_key)
		counts_give(w->counts, j->user_key);
	j->ip_key = j->user_key = 0;
}

/* Gives back the queue place and memory once the job is home. */
static void release_queue(struct auth_job *j)
{
	struct worker *w = j->w;

	if (w == NULL)
		return;
	release_counts(j);
	w->auth_jobs--;
	w->auth_bytes -= j->held;
	gauge_set(&w->metrics.auth_queue, (uint64_t)w->auth_jobs);
	j->w = NULL;
}

/* Back on the session's loop. */
static void job_done(struct pool_job *pj)
{
	struct auth_job *j = (struct auth_job *)pj;
	struct session *s = j->s;

	if (s != NULL && s->state == S_AUTHENTICATING && park(j))
		return;
	release_queue(j);
	if (s == NULL || s->state != S_AUTHENTICATING) {
		job_free(j);
		return;
	}
	s->auth->job = NULL;
	s->auth->ready = j;
	session_auth_ready(s);
}

enum auth_step session_auth_finish(struct session *s)
{
	struct auth_job *j = s->auth ? s->auth->ready : NULL;
	enum auth_step r;

	if (j == NULL)
		return AUTH_STEP_OOM;
	s->auth->ready = NULL;
	r = complete(s, j);
	job_free(j);
	return r;
}

enum auth_step session_auth_start(struct session *s, const struct mqtt_connect *c, const uint8_t *pkt,
                                  size_t len)
{
	uint32_t cost;
	struct auth_material *m = proxy_get_auth(s->w->proxy);
	struct auth_job *j = NULL;

	if (m == NULL || !m->inject) {
		/* Pure TLS termination: the CONNECT goes on byte for byte. */
		auth_material_unref(m);
		return AUTH_STEP_ALLOW;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (s->auth == NULL && (s->auth = calloc(1, sizeof(*s->auth))) == NULL))
		goto oom;
	s->auth->connect_ms = session_now_ms();
	j->m = m;
	m = NULL;
	/* The job owns a copy of the packet (a pool thread reads it while the
	 * input buffer changes); the parsed fields move with it. */
	j->pkt = malloc(len);
	if (j->pkt == NULL)
		goto oom;
	memcpy(j->pkt, pkt, len);
	j->pkt_len = len;
	j->c = *c;
	mqtt_connect_rebase(&j->c, pkt, j->pkt);
	if (!build_request(j, s))
		goto oom;
	bufq_drain(&s->to_up, session_blocks(s), len);
	j->method = auth_select(j->m, &j->req);
	if (j->method == AUTH_JWT && j->m->jwks) {
		j->jwks = s->w->proxy->jwks;
		j->req.jwks = jwks_fetch_current(j->jwks);
	}
	j->now = (int64_t)time(NULL);
	j->s = s;
	cost = auth_cost_us(j->m, j->method, &j->req);
	if (cost > AUTH_CHEAP_US && s->w->proxy->pool) {
		if (!admit_to_queue(s->w, j, s, cost)) {
			/* Refused at once: waiting would only hold memory and a
			 * connection, and the client may retry later. */
			log_server_busy(s, j);
			job_free(j);
			return AUTH_STEP_BUSY;
		}
		j->base.run = job_run;
		j->base.done = job_done;
		j->base.home = &s->w->home;
		j->pool = s->w->proxy->pool;
		s->auth->job = j;
		pool_submit(s->w->proxy->pool, &j->base);
		return AUTH_STEP_PENDING;
	}
	{
		enum auth_step r;

		auth_run(j->m, j->method, &j->req, j->now, &j->res);
		r = complete(s, j);
		job_free(j);
		return r;
	}
oom:
	auth_material_unref(m);
	job_free(j);
	return AUTH_STEP_OOM;
}
