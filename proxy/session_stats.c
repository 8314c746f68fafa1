/*
 * What the hub reports to the worker's metrics (proxy/metrics.h) and checks
 * against the connection limits at accept. Counters only: nothing here
 * changes what happens to a session.
 */
#include <string.h>

#include "proxy/auth/policy.h"
#include "proxy/limits.h"
#include "proxy/metrics.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "tls/resume.h"

_Static_assert(RESUME_REFUSAL_LABELS == TLS_RESUME_REFUSAL_COUNT, "one label per refusal");

/* A ticket turned down during this handshake, whatever came of it. */
static void stats_resume_refused(struct session *s)
{
	if (s->peer.resume_refused != TLS_RESUME_ACCEPTED && s->peer.resume_refused < RESUME_REFUSAL_LABELS)
		counter_add(&s->w->metrics.resume_refused[s->peer.resume_refused], 1);
}

/* A handshake that ends without completing, by why (a stop is not counted). */
void stats_handshake_failed(struct session *s, const char *reason)
{
	enum hs_result r;

	if (strcmp(reason, "shutdown") == 0)
		return;
	stats_resume_refused(s);
	if (strcmp(reason, "hello_timeout") == 0 || strcmp(reason, "handshake_timeout") == 0)
		r = HS_TIMEOUT;
	else if (strcmp(reason, "handshake_evicted") == 0)
		r = HS_EVICTED;
	else
		r = s->peer.verify_error ? HS_VERIFY_FAILED : HS_FAILED;
	counter_add(&s->w->metrics.handshakes[TLSV_NONE][r], 1);
}

/* The client has (or is about to have) its CONNACK: time it once. */
void stats_connack(struct session *s)
{
	if (s->flags & F_CONNACK_SEEN)
		return;
	s->flags |= F_CONNACK_SEEN;
	histogram_observe(&s->w->metrics.connack_seconds, (session_now_ms() - s->start_ms) * 1000);
}

/* The result label of a refusal the auth stage decided. */
enum auth_result_label stats_auth_refusal(const char *reason)
{
	if (strcmp(reason, "not_authorized") == 0)
		return AUTHR_NOT_AUTHORIZED;
	if (strcmp(reason, "bad_auth_method") == 0)
		return AUTHR_BAD_METHOD;
	if (strcmp(reason, "bad_identity") == 0)
		return AUTHR_BAD_IDENTITY;
	if (strcmp(reason, "jwks_unavailable") == 0)
		return AUTHR_UNAVAILABLE;
	return AUTHR_BAD_CREDENTIALS;
}

void stats_auth(struct session *s, enum auth_result_label r)
{
	unsigned method = s->auth ? s->auth->method : AUTH_NONE;

	counter_add(&s->w->metrics.auth[method < AUTH_METHOD_LABELS ? method : 0][r], 1);
}

void stats_handshake_ok(struct session *s)
{
	struct metrics *m = &s->w->metrics;

	counter_add(&m->handshakes[SSL_version(s->ssl) == TLS1_3_VERSION ? TLSV_13 : TLSV_12][HS_OK], 1);
	if (SSL_session_reused(s->ssl))
		counter_add(&m->handshakes_resumed, 1);
	stats_resume_refused(s);
	histogram_observe(&m->handshake_seconds, (session_now_ms() - s->start_ms) * 1000);
}

/* The limits a new client is checked against at accept; over one, it is
 * still served up to its CONNECT, which gets a CONNACK that says why. */
void limits_at_accept(struct session *s)
{
	struct proxy *p = s->w->proxy;

	if (s->w->n_sessions >= p->cfg->max_connections) {
		s->over_limit = OVER_MAX_CONNECTIONS;
		counter_add(&s->w->metrics.accept_refused[REFUSED_MAX_CONNECTIONS], 1);
		return;
	}
	switch (limits_conn_begin(p->limits, &s->addr.sa, s->start_ms)) {
	case LIMIT_OK:
		if (p->limits)
			s->flags |= F_IP_COUNTED;
		break;
	case LIMIT_CONN_PER_IP:
		s->over_limit = OVER_CONN_PER_IP;
		counter_add(&s->w->metrics.accept_refused[REFUSED_CONN_PER_IP], 1);
		break;
	case LIMIT_CONN_RATE:
		s->over_limit = OVER_CONN_RATE;
		counter_add(&s->w->metrics.accept_refused[REFUSED_CONN_RATE_PER_IP], 1);
		break;
	}
}

