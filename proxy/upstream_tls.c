/*
 * TLS on the broker socket (--upstream-tls): the client context, and the
 * session's side of it, a stage like upstream.c and forward.c (session_int.h).
 *
 * A session gets its broker SSL only when the feature is on: one pointer in
 * struct session, NULL otherwise, so idle memory without the feature does
 * not grow. The handshake is part of UPSTREAM_CONNECTING (the hub's
 * --upstream-timeout covers it); the CONNECT the auth stage left in to_up
 * is written through the SSL only once the handshake is done, while a
 * --send-proxy-v2 header goes in clear before the ClientHello, where every
 * PROXY protocol receiver (HAProxy, nginx, ...) expects it in front of TLS.
 *
 * While forwarding, forward.c moves the bytes as for a plain broker and
 * only its two socket calls come here (upstream_tls_read for readv,
 * upstream_tls_write for the write of to_up's first block). Reads and
 * writes cross directions as on the client side: SSL_read may need the
 * socket writable and SSL_write readable, and |wants| tells the hub which
 * event to arm instead (upstream_tls_arm). A read that ended in WANT_READ
 * leaves an incomplete record inside the SSL that only more socket bytes
 * can finish, so such a turn never asks for another one (upstream_tls_kick);
 * any other stop with bytes inside does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/session_int.h"
#include "proxy/upstream_tls.h"
#include "proxy/worker.h"
#include "tls/client_ctx.h"
#include "tls/io.h"

/* Largest TLS record plaintext: one SSL_write never sends more. */
#define RECORD_MAX 16384

enum {
	UT_HS_READ = 1,         /* the handshake waits for the socket readable */
	UT_READ_WRITE = 2,      /* SSL_read needs the socket writable */
	UT_WRITE_READ = 4,      /* SSL_write needs the socket readable */
	UT_READ_IDLE = 8,       /* the last read found the socket empty */
};

struct upstream_tls {
	SSL *ssl;               /* owned; NULL between connection attempts */
	struct tls_sock sock;   /* the broker fd as the SSL's BIO sees it */
	uint8_t *pre;           /* owned: the PROXY header to send in clear first, or NULL */
	uint16_t pre_len, pre_off;
	uint8_t tcp_up;         /* the TCP (or unix) connection is established */
	uint8_t done;           /* the handshake completed: close_notify makes sense */
	uint8_t wants;          /* UT_* */
	int sys_errno;          /* what the broker failed with, kept for the log */
	long verify;
	unsigned long err_code;
};

/* ---- the process's side ------------------------------------------------------ */

int upstream_tls_name(const char *spec, const char *sni, char *out, size_t cap, int *is_ip, char *err,
                      size_t errlen)
{
	const char *host = sni;
	size_t len;
	unsigned char bin[sizeof(struct in6_addr)];

	if (host) {
		len = strlen(host);
	} else if (strncmp(spec, "unix:", 5) == 0) {
		snprintf(err, errlen, "--upstream-tls with a unix: --upstream needs --upstream-sni NAME "
		         "(the name the broker's certificate carries)");
		return 0;
	} else if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		host = spec + 1;
		len = close ? (size_t)(close - host) : 0;
	} else {
		const char *colon = strrchr(spec, ':');

		host = spec;
		len = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (len == 0 || len >= cap) {
		snprintf(err, errlen, "--upstream-tls: no usable broker name in '%s' (set --upstream-sni NAME)",
		         sni ? sni : spec);
		return 0;
	}
	memcpy(out, host, len);
	out[len] = '\0';
	*is_ip = inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1;
	return 1;
}

SSL_CTX *upstream_tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_client_opts o = {
		.ca_file = cfg->upstream_ca,
		.cert_file = cfg->upstream_cert,
		.key_file = cfg->upstream_key,
		.flag_prefix = "--upstream",
	};

	return tls_client_ctx_new(&o, err, errlen);
}

int upstream_tls_setup(struct proxy *p, const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->upstream_tls)
		return 1;
	p->upstream_names = calloc((size_t)cfg->n_upstream, sizeof(*p->upstream_names));
	if (p->upstream_names == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	p->n_upstream_names = cfg->n_upstream;
	for (int i = 0; i < cfg->n_upstream; i++) {
		struct upstream_name *n = &p->upstream_names[i];
		int is_ip = 0;

		if (!upstream_tls_name(cfg->upstream[i], cfg->upstream_sni, n->name, sizeof(n->name), &is_ip,
		                       err, errlen))
			return 0;
		n->is_ip = (uint8_t)is_ip;
	}
	p->upstream_ctx = upstream_tls_ctx_new(cfg, err, errlen);
	return p->upstream_ctx != NULL;
}

void upstream_tls_cleanup(struct proxy *p)
{
	SSL_CTX_free(p->upstream_ctx);
	p->upstream_ctx = NULL;
	free(p->upstream_names);
	p->upstream_names = NULL;
	p->n_upstream_names = 0;
}

void upstream_tls_swap(struct proxy *p, SSL_CTX *ctx)
{
	SSL_CTX *old;

	if (ctx == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	old = p->upstream_ctx;
	p->upstream_ctx = ctx;
	pthread_mutex_unlock(&p->lock);
	/* Each SSL holds its own reference: live connections keep the old one. */
	SSL_CTX_free(old);
}

/* ---- the session's side -------------------------------------------------------- */

static struct upstream_tls *get_or_new(struct session *s)
{
	if (s->up_tls == NULL)
		s->up_tls = calloc(1, sizeof(*s->up_tls));
	return s->up_tls;
}

int upstream_tls_preamble(struct session *s, const uint8_t *hdr, size_t n)
{
	struct upstream_tls *u = get_or_new(s);

	if (u == NULL || n == 0 || n > UINT16_MAX || u->pre != NULL || (u->pre = malloc(n)) == NULL)
		return 0;
	memcpy(u->pre, hdr, n);
	u->pre_len = (uint16_t)n;
	u->pre_off = 0;
	return 1;
}

/* The name of the broker the session is connecting to (borrowed: it lives
 * as long as the process, as tls_client_ssl_new asks). */
static const struct upstream_name *broker_name(const struct session *s)
{
	const struct proxy *p = s->w->proxy;

	if (p->n_upstream_names == 0)
		return NULL;
	return &p->upstream_names[s->broker < p->n_upstream_names ? s->broker : 0];
}

/* Gives the new broker socket s->ufd an SSL. Returns 1/0. */
static int attach(struct session *s)
{
	struct proxy *p = s->w->proxy;
	struct upstream_tls *u = get_or_new(s);
	const struct upstream_name *name = broker_name(s);
	SSL_CTX *ctx;
	BIO *bio;

	if (u == NULL || name == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	ctx = p->upstream_ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&p->lock);
	u->ssl = tls_client_ssl_new(ctx, name->name, name->is_ip);
	SSL_CTX_free(ctx);     /* the SSL holds its own reference */
	tls_sock_cleanup(&u->sock);
	u->sock.fd = s->ufd;
	if (u->ssl == NULL || (bio = tls_sock_bio_new(&u->sock)) == NULL) {
		SSL_free(u->ssl);
		u->ssl = NULL;
		return 0;
	}
	SSL_set_bio(u->ssl, bio, bio);    /* the SSL owns the BIO */
	/* The client certificate and name copies are not needed after the
	 * handshake: less memory per forwarding connection. */
	SSL_set_shed_handshake_config(u->ssl, 1);
	u->tcp_up = u->done = u->wants = 0;
	u->pre_off = 0;
	u->verify = X509_V_OK;
	u->err_code = 0;
	u->sys_errno = 0;
	return 1;
}

static void save_failure(struct upstream_tls *u, int sys_errno)
{
	u->sys_errno = sys_errno;
	u->err_code = ERR_peek_last_error();
	/* The verification result means something only when it is what
	 * failed: a handshake cut short before the certificate has none. */
	if (u->ssl && ERR_GET_LIB(u->err_code) == ERR_LIB_SSL &&
	    ERR_GET_REASON(u->err_code) == SSL_R_CERTIFICATE_VERIFY_FAILED)
		u->verify = tls_client_verify_result(u->ssl);
	ERR_clear_error();
}

/* Whether the socket's connect completed: SO_ERROR says if it failed,
 * getpeername if it is established yet. Returns 1 up, 0 pending, -1 failed. */
static int tcp_state(int fd, int *err)
{
	struct sockaddr_storage peer;
	socklen_t elen = sizeof(*err), plen = sizeof(peer);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
		*err = errno;
	if (*err != 0)
		return -1;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
		return 1;
	if (errno == ENOTCONN)
		return 0;
	*err = errno;
	return -1;
}

enum up_step upstream_tls_check(struct session *s, int *err)
{
	struct upstream_tls *u = s->up_tls;
	enum tls_io r;
	int ret;

	*err = 0;
	/* A new connection: the first, or the next broker after a failure. */
	if (u == NULL || u->ssl == NULL) {
		if (!attach(s)) {
			*err = ENOMEM;
			goto unreachable;
		}
		u = s->up_tls;
	}
	u->wants = 0;    /* pending without UT_HS_READ: wait for writable */
	if (!u->tcp_up) {
		ret = tcp_state(s->ufd, err);
		if (ret == 0)
			return UP_PENDING;
		if (ret < 0)
			goto unreachable;
		u->tcp_up = 1;
	}
	while (u->pre && u->pre_off < u->pre_len) {
		ssize_t n = send(s->ufd, u->pre + u->pre_off, (size_t)(u->pre_len - u->pre_off), MSG_NOSIGNAL);

		if (n > 0) {
			u->pre_off = (uint16_t)(u->pre_off + n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return UP_PENDING;
		*err = n < 0 ? errno : EPIPE;
		goto unreachable;
	}
	errno = 0;
	switch ((r = tls_handshake(u->ssl))) {
	case TLS_IO_OK:
		u->done = 1;
		free(u->pre);
		u->pre = NULL;
		return UP_CONNECTED;
	case TLS_IO_WANT_READ:
		u->wants = UT_HS_READ;
		return UP_PENDING;
	case TLS_IO_WANT_WRITE:
		return UP_PENDING;
	default:
		/* errno tells something only of a socket that failed, not of
		 * a peer that closed. */
		save_failure(u, r == TLS_IO_ERROR ? errno : 0);
		upstream_close(s);
		return UP_TLS_FAILED;
	}
unreachable:
	upstream_close(s);
	return UP_FAILED;
}

ssize_t upstream_tls_read(struct session *s, const struct iovec *v, int nv)
{
	struct upstream_tls *u = s->up_tls;
	size_t total = 0;

	u->wants &= (uint8_t)~(UT_READ_WRITE | UT_READ_IDLE);
	if (u->ssl == NULL) {
		errno = EBADF;
		return -1;
	}
	/* One SSL_read yields at most a record: go on until the vectors are
	 * full or the SSL has nothing more, so that a short count means what
	 * it means for readv (the socket is drained). */
	for (int i = 0; i < nv; i++) {
		size_t off = 0;

		while (off < v[i].iov_len) {
			size_t n = 0;
			enum tls_io r = tls_read(u->ssl, (uint8_t *)v[i].iov_base + off, v[i].iov_len - off, &n);
			int e = errno;

			if (r == TLS_IO_OK) {
				off += n;
				total += n;
				continue;
			}
			if (r == TLS_IO_WANT_READ)
				u->wants |= UT_READ_IDLE;
			else if (r == TLS_IO_WANT_WRITE)
				u->wants |= UT_READ_WRITE;
			/* What was read counts now; an end or a failure is
			 * reported again by the next call (the SSL keeps it). */
			if (total > 0)
				return (ssize_t)total;
			if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE) {
				errno = EAGAIN;
				return -1;
			}
			if (r == TLS_IO_CLOSED || r == TLS_IO_EOF) {
				save_failure(u, 0);
				return 0;
			}
			save_failure(u, e);
			errno = e ? e : EPROTO;
			return -1;
		}
	}
	return (ssize_t)total;
}

ssize_t upstream_tls_write(struct session *s)
{
	struct upstream_tls *u = s->up_tls;
	struct iovec v;
	size_t n = 0, len;
	enum tls_io r;
	int e;

	u->wants &= (uint8_t)~UT_WRITE_READ;
	if (u->ssl == NULL || bufq_peek(&s->to_up, 0, &v, 1) < 1) {
		errno = EBADF;
		return -1;
	}
	/* After a WANT_*, the retry passes the same first block again, at
	 * least as long as before, as BoringSSL requires: to_up only grows at
	 * its tail until it is written. */
	len = v.iov_len < RECORD_MAX ? v.iov_len : RECORD_MAX;
	r = tls_write(u->ssl, v.iov_base, len, &n);
	e = errno;
	if (r == TLS_IO_OK) {
		bufq_drain(&s->to_up, session_blocks(s), n);
		return (ssize_t)n;
	}
	if (r == TLS_IO_WANT_READ)
		u->wants |= UT_WRITE_READ;
	if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	save_failure(u, e);
	errno = e ? e : EPIPE;
	return -1;
}

uint8_t upstream_tls_arm(const struct session *s, uint8_t want)
{
	const struct upstream_tls *u = s->up_tls;
	uint8_t out = want & (uint8_t)~ARM_UP;

	if (u == NULL)
		return want;
	if (want & ARM_UP_READ)
		out |= (u->wants & UT_READ_WRITE) ? ARM_UP_WRITE : ARM_UP_READ;
	if (want & ARM_UP_WRITE)
		out |= (u->wants & (UT_WRITE_READ | UT_HS_READ)) ? ARM_UP_READ : ARM_UP_WRITE;
	return out;
}

int upstream_tls_kick(const struct session *s)
{
	const struct upstream_tls *u = s->up_tls;

	return u && u->ssl && u->done && !(u->wants & (UT_READ_IDLE | UT_READ_WRITE)) &&
	       (SSL_has_pending(u->ssl) || tls_sock_buffered(&u->sock));
}

int upstream_tls_alerted(const struct session *s)
{
	return s->up_tls && s->up_tls->err_code != 0;
}

int upstream_tls_write_wants_read(const struct session *s)
{
	return s->up_tls && (s->up_tls->wants & UT_WRITE_READ);
}

int upstream_tls_read_wants_write(const struct session *s)
{
	return s->up_tls && (s->up_tls->wants & UT_READ_WRITE);
}

void upstream_tls_close(struct session *s)
{
	struct upstream_tls *u = s->up_tls;

	if (u == NULL)
		return;
	if (u->ssl) {
		/* Only to a broker that took the handshake and is still there. */
		if (u->done && s->ufd >= 0 && !(s->flags & F_UP_DEAD))
			tls_close_notify(u->ssl);
		SSL_free(u->ssl);
		u->ssl = NULL;
	}
	tls_sock_cleanup(&u->sock);
	u->tcp_up = u->done = u->wants = 0;
}

void upstream_tls_free(struct session *s)
{
	struct upstream_tls *u = s->up_tls;

	if (u == NULL)
		return;
	SSL_free(u->ssl);
	tls_sock_cleanup(&u->sock);
	free(u->pre);
	free(u);
	s->up_tls = NULL;
}

void upstream_tls_log_failure(const struct session *s)
{
	const struct upstream_tls *u = s->up_tls;
	const struct upstream_name *n = broker_name(s);
	const struct config *cfg = s->w->proxy->cfg;
	const char *spec = s->broker < cfg->n_upstream ? cfg->upstream[s->broker] : "";
	char name[300], broker[300], why[200];

	if (!log_enabled(LOG_WARN))
		return;
	log_escape(name, sizeof(name), n ? n->name : "", n ? strlen(n->name) : 0);
	log_escape(broker, sizeof(broker), spec, strlen(spec));
	if (u)
		tls_client_failure(u->verify, u->err_code, u->sys_errno, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "unknown");
	/* key=value after the event word, so --log-format json has the fields. */
	log_msg(LOG_WARN, "broker broker=%s tls_name=\"%s\" reason=broker_tls error=\"%s\"", broker, name, why);
}
