/*
 * The session's life outside its callbacks: the clock, the log lines that
 * describe it, the worker's lists, and freeing. Nothing here changes a
 * session's state (session.c owns that).
 */
#include <stdlib.h>
#include <time.h>

#include "proxy/address.h"
#include "proxy/auth/policy.h"
#include "proxy/log.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "tls/io.h"
#include "tls/resume.h"

struct blk_cache *session_blocks(const struct session *s)
{
	return &s->w->blocks;
}

static const char *const state_names[] = {
	"proxy_header", "handshake", "ws_upgrade", "await_connect", "authenticating", "upstream_connecting",
	"forwarding", "closing", "dead",
};

uint64_t session_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void session_log_close(const struct session *s)
{
	char peer[80];
	const SSL_CIPHER *cipher = (s->flags & F_TLS_DONE) ? SSL_get_current_cipher(s->ssl) : NULL;

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(LOG_INFO,
	        "close peer=%s tls=%s cipher=%s client_id=\"%s\" mqtt=%u auth=%s user=\"%s\" in=%llu out=%llu ms=%llu transport=%s state=%s reason=%s",
	        peer, (s->flags & F_TLS_DONE) ? SSL_get_version(s->ssl) : "-",
	        cipher ? SSL_CIPHER_get_name(cipher) : "-", s->client_id ? s->client_id : "",
	        s->mqtt_version, auth_method_name(s->auth ? (enum auth_method)s->auth->method : AUTH_NONE),
	        s->auth && s->auth->user ? s->auth->user : "", (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	        (unsigned long long)(session_now_ms() - s->start_ms),
	        config_listener_is_ws(s->w->proxy->cfg, s->listener) ? "ws" : "tls",
	        state_names[s->close_state], s->close_reason ? s->close_reason : "error");
}

void session_log_refusal(const struct session *s, const char *reason, const char *detail)
{
	char peer[80];

	if (!log_enabled(LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(LOG_INFO, "refuse peer=%s mqtt=%u reason=%s%s%s%s", peer, s->mqtt_version, reason,
	        detail ? " detail=\"" : "", detail ? detail : "", detail ? "\"" : "");
}

void session_log_resume_refusal(const struct session *s)
{
	unsigned r = s->peer.resume_refused;
	char peer[80];

	if (r == TLS_RESUME_ACCEPTED || !log_enabled(r == TLS_RESUME_REVOKED ? LOG_WARN : LOG_INFO))
		return;
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	log_msg(r == TLS_RESUME_REVOKED ? LOG_WARN : LOG_INFO,
	        "resume refused peer=%s reason=%s", peer, tls_resume_refusal_name(r));
}

void session_log_handshake_failure(const struct session *s)
{
	char peer[80], e[160];

	session_log_resume_refusal(s);
	address_format(&s->addr.sa, sizeof(s->addr), peer, sizeof(peer));
	if (s->peer.verify_error)
		log_warn("verify failed peer=%s depth=%d reason=\"%s\"", peer, s->peer.verify_depth,
		         s->peer.verify_error);
	else
		log_debug("handshake failed peer=%s error=\"%s\"", peer, tls_last_error(e, sizeof(e)));
}

uint64_t session_started_ms(const struct session *s)
{
	return s->start_ms;
}

const struct sockaddr *session_peer(const struct session *s)
{
	return &s->addr.sa;
}

void session_list_push(struct session_list *l, struct session *s)
{
	s->prev = NULL;
	s->next = l->head;
	if (l->head)
		l->head->prev = s;
	else
		l->tail = s;
	l->head = s;
}

void session_list_unlink(struct session_list *l, struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->next = s->prev = NULL;
}

struct session *session_list_next(const struct session *s)
{
	return s->next;
}

struct session *session_list_prev(const struct session *s)
{
	return s->prev;
}

int session_in_hello(const struct session *s)
{
	return s->state == S_PROXY_HEADER || (s->state == S_HANDSHAKE && !s->peer.hello_seen);
}

void session_slots_init(struct slab_cache *c)
{
	slab_cache_init(c, sizeof(struct session));
}

void session_free(struct session *s)
{
	if (s == NULL)
		return;
	SSL_free(s->ssl);
	tls_sock_cleanup(&s->sock);
	bufq_clear(&s->to_up, session_blocks(s));
	bufq_clear(&s->to_client, session_blocks(s));
	tls_peer_cleanup(&s->peer);
	session_auth_free(s->auth);
	free(s->end);
	upstream_tls_free(s);
	ws_conn_free(s->ws);
	acl_session_free(s->acl);
	free(s->client_id);
	s->magic = 0;
	slab_free(&s->w->session_slots, s);
}
