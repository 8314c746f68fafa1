/*
 * One HTTPS GET at a time, blocking, bounded; see https_get.h.
 */
#include "proxy/auth/https_get.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifndef MQTLS_VERSION
#define MQTLS_VERSION "dev"
#endif

/* The first read buffer; it doubles as the response grows. */
#define FIRST_BUFFER 16384

/* One request's limits and where its error goes. */
struct req {
	const struct https_get_opts *o;
	uint64_t deadline_ms;       /* the whole request */
	char *err;
	size_t errlen;
};

static enum https_result fail(struct req *q, enum https_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes the reason and returns |r|, so callers can `return fail(...)`. */
static enum https_result fail(struct req *q, enum https_result r, const char *fmt, ...)
{
	va_list ap;

	if (q->errlen == 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(q->err, q->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *https_result_name(enum https_result r)
{
	switch (r) {
	case HTTPS_OK: return "ok";
	case HTTPS_UNREACHABLE: return "unreachable";
	case HTTPS_TLS: return "tls";
	case HTTPS_TIMEOUT: return "timeout";
	case HTTPS_HTTP_STATUS: return "http_status";
	case HTTPS_TOO_LARGE: return "too_large";
	case HTTPS_MALFORMED: return "malformed";
	case HTTPS_REDIRECTS: return "redirects";
	case HTTPS_CANCELLED: return "cancelled";
	case HTTPS_RESULT_COUNT: break;
	}
	return "unknown";
}

/* Waits until |fd| is ready for |events|, the |deadline| passes or the
 * request is cancelled: HTTPS_OK, HTTPS_TIMEOUT or HTTPS_CANCELLED. */
static enum https_result wait_fd(struct req *q, int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = { { fd, events, 0 }, { q->o->cancel_fd, POLLIN, 0 } };
		uint64_t now = now_ms();
		int n;

		if (now >= deadline)
			return HTTPS_TIMEOUT;
		n = poll(p, q->o->cancel_fd >= 0 ? 2 : 1, (int)(deadline - now));
		if (n < 0 && errno != EINTR)
			return HTTPS_TIMEOUT;
		if (n <= 0)
			continue;
		if (q->o->cancel_fd >= 0 && p[1].revents)
			return HTTPS_CANCELLED;
		if (p[0].revents)
			return HTTPS_OK;
	}
}

/* A TCP connection to one of |u|'s addresses, tried in turn, each within
 * the connect timeout. Returns the descriptor, or -1 with *r set. Name
 * resolution is the system resolver's, bounded by its own timeout and
 * attempts (resolv.conf), not by ours. */
static int tcp_connect(struct req *q, const struct https_url *u, enum https_result *r)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[8], last[128] = "no address";
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (u->is_ip ? AI_NUMERICHOST : 0);
	snprintf(port, sizeof(port), "%u", u->port);
	rc = getaddrinfo(u->host, port, &hints, &res);
	if (rc != 0) {
		*r = fail(q, HTTPS_UNREACHABLE, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -1;
	}
	*r = HTTPS_UNREACHABLE;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		uint64_t deadline = now_ms() + (uint64_t)q->o->connect_timeout_ms;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		enum https_result w = HTTPS_OK;

		if (deadline > q->deadline_ms)
			deadline = q->deadline_ms;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(last, sizeof(last), "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				soerr = errno;
			} else if ((w = wait_fd(q, fd, POLLOUT, deadline)) == HTTPS_OK) {
				if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
					soerr = errno;
			}
		}
		if (w == HTTPS_OK && soerr == 0)
			break;
		close(fd);
		fd = -1;
		if (w == HTTPS_CANCELLED) {
			*r = HTTPS_CANCELLED;
			snprintf(last, sizeof(last), "cancelled");
			break;
		}
		if (w == HTTPS_TIMEOUT) {
			snprintf(last, sizeof(last), "connect timed out");
			if (now_ms() >= q->deadline_ms) {
				*r = HTTPS_TIMEOUT;
				break;
			}
		} else {
			snprintf(last, sizeof(last), "%s", strerror(soerr));
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		fail(q, *r, "cannot connect to %s port %u: %s", u->host, u->port, last);
	return fd;
}

/* Waits for what the last SSL call asked for; HTTPS_OK means try again. */
static enum https_result ssl_wait(struct req *q, SSL *ssl, int ret, int fd)
{
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(q, fd, POLLIN, q->deadline_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(q, fd, POLLOUT, q->deadline_ms);
	default:
		return HTTPS_TLS;
	}
}

static SSL_CTX *client_ctx(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (ca_file == NULL)
		ca_file = HTTPS_SYSTEM_CA;
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_load_verify_locations(ctx, ca_file, NULL)) {
		unsigned long e = ERR_peek_last_error();

		snprintf(err, errlen, "cannot load the CA certificates from %s: %s", ca_file,
		         e ? ERR_reason_error_string(e) : "out of memory");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

int https_ca_check(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = client_ctx(ca_file, err, errlen);

	SSL_CTX_free(ctx);
	return ctx != NULL;
}

/* Why a handshake failed, in one line. */
static enum https_result tls_failure(struct req *q, SSL *ssl, const struct https_url *u)
{
	long v = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();

	ERR_clear_error();
	if (v != X509_V_OK)
		return fail(q, HTTPS_TLS, "certificate of %s does not verify: %s", u->host,
		            X509_verify_cert_error_string(v));
	return fail(q, HTTPS_TLS, "TLS handshake with %s failed: %s", u->host,
	            e ? ERR_reason_error_string(e) : "connection closed");
}

/* Handshake: SNI and the name (or address) the certificate must carry. */
static enum https_result tls_connect(struct req *q, SSL *ssl, int fd, const struct https_url *u)
{
	int ok = SSL_set_fd(ssl, fd);

	if (ok && u->is_ip)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
	else if (ok)
		ok = SSL_set_tlsext_host_name(ssl, u->host) && SSL_set1_host(ssl, u->host);
	if (!ok)
		return fail(q, HTTPS_TLS, "cannot set up TLS for %s", u->host);
	for (;;) {
		int ret = SSL_connect(ssl);
		enum https_result w;

		if (ret == 1)
			return HTTPS_OK;
		w = ssl_wait(q, ssl, ret, fd);
		if (w == HTTPS_TLS)
			return tls_failure(q, ssl, u);
		if (w == HTTPS_TIMEOUT)
			return fail(q, w, "TLS handshake with %s timed out", u->host);
		if (w != HTTPS_OK)
			return fail(q, w, "cancelled");
	}
}

static enum https_result send_request(struct req *q, SSL *ssl, int fd, const struct https_url *u)
{
	char req[HTTPS_MAX_PATH + HTTPS_MAX_HOST + 256], host[HTTPS_MAX_HOST + 16];
	const char *colon = strchr(u->host, ':');
	int n, off = 0;

	if (u->port == 443)
		snprintf(host, sizeof(host), colon ? "[%s]" : "%s", u->host);
	else
		snprintf(host, sizeof(host), colon ? "[%s]:%u" : "%s:%u", u->host, u->port);
	n = snprintf(req, sizeof(req),
	             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mqtls/%s\r\n"
	             "Accept: application/json\r\nConnection: close\r\n\r\n",
	             u->path, host, MQTLS_VERSION);
	if (n < 0 || (size_t)n >= sizeof(req))
		return fail(q, HTTPS_MALFORMED, "request too long");
	while (off < n) {
		int ret = SSL_write(ssl, req + off, n - off);
		enum https_result w;

		if (ret > 0) {
			off += ret;
			continue;
		}
		w = ssl_wait(q, ssl, ret, fd);
		if (w == HTTPS_TLS)
			return fail(q, w, "sending the request to %s failed", u->host);
		if (w != HTTPS_OK)
			return fail(q, w, w == HTTPS_TIMEOUT ? "timed out" : "cancelled");
	}
	return HTTPS_OK;
}

/* Reads until the response is complete (or bad, or over its limits). */
static enum https_result read_response(struct req *q, SSL *ssl, int fd, const struct https_url *u,
                                       struct http_response *out)
{
	/* Room for the headers, and for a chunked body's framing. */
	size_t cap_max = 2 * q->o->max_body + HTTP_MAX_HEADER_BYTES, cap = FIRST_BUFFER, len = 0;
	uint8_t *buf = malloc(cap);
	enum https_result r = HTTPS_OK;
	enum http_parse p = HTTP_PARSE_MORE;
	char why[160] = "";

	if (buf == NULL)
		return fail(q, HTTPS_MALFORMED, "out of memory");
	while (p == HTTP_PARSE_MORE) {
		int ret, e;

		if (len == cap) {
			uint8_t *nb;

			if (cap >= cap_max) {
				p = HTTP_PARSE_TOO_LARGE;
				snprintf(why, sizeof(why), "response over %zu bytes", cap_max);
				break;
			}
			cap = cap * 2 < cap_max ? cap * 2 : cap_max;
			if ((nb = realloc(buf, cap)) == NULL) {
				r = fail(q, HTTPS_MALFORMED, "out of memory");
				break;
			}
			buf = nb;
		}
		ret = SSL_read(ssl, buf + len, (int)(cap - len));
		if (ret > 0) {
			len += (size_t)ret;
			p = http_response_parse(buf, len, 0, q->o->max_body, out, why, sizeof(why));
			continue;
		}
		e = SSL_get_error(ssl, ret);
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
			/* The server closed: what we have is all there is. */
			p = http_response_parse(buf, len, 1, q->o->max_body, out, why, sizeof(why));
			break;
		}
		r = ssl_wait(q, ssl, ret, fd);
		if (r == HTTPS_TLS)
			r = fail(q, r, "reading the response from %s failed", u->host);
		else if (r != HTTPS_OK)
			r = fail(q, r, r == HTTPS_TIMEOUT ? "timed out reading the response from %s"
			                                  : "cancelled reading from %s", u->host);
		if (r != HTTPS_OK)
			break;
	}
	ERR_clear_error();
	free(buf);
	if (r != HTTPS_OK) {
		if (p == HTTP_PARSE_DONE)
			http_response_cleanup(out);
		return r;
	}
	if (p == HTTP_PARSE_TOO_LARGE)
		return fail(q, HTTPS_TOO_LARGE, "%s: %s", u->host, why);
	if (p != HTTP_PARSE_DONE)
		return fail(q, HTTPS_MALFORMED, "%s: malformed HTTP response: %s", u->host, why);
	return HTTPS_OK;
}

/* One request on one connection. */
static enum https_result get_once(struct req *q, SSL_CTX *ctx, const struct https_url *u,
                                  struct http_response *out)
{
	enum https_result r;
	SSL *ssl = NULL;
	int fd = tcp_connect(q, u, &r);

	if (fd < 0)
		return r;
	ssl = SSL_new(ctx);
	if (ssl == NULL) {
		r = fail(q, HTTPS_TLS, "out of memory");
		goto out;
	}
	r = tls_connect(q, ssl, fd, u);
	if (r == HTTPS_OK)
		r = send_request(q, ssl, fd, u);
	if (r == HTTPS_OK)
		r = read_response(q, ssl, fd, u, out);
out:
	SSL_free(ssl);
	close(fd);
	return r;
}

static int is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

enum https_result https_get(const struct https_url *url, const struct https_get_opts *o,
                            struct http_response *out, struct https_url *final, char *err,
                            size_t errlen)
{
	struct req q = { o, now_ms() + (uint64_t)o->total_timeout_ms, err, errlen };
	struct https_url cur = *url, next;
	enum https_result r;
	char why[160];
	SSL_CTX *ctx;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	ctx = client_ctx(o->ca_file, why, sizeof(why));
	if (ctx == NULL)
		return fail(&q, HTTPS_TLS, "%s", why);
	for (int hops = 0;; hops++) {
		r = get_once(&q, ctx, &cur, out);
		if (r != HTTPS_OK)
			break;
		if (out->status == 200) {
			if (final)
				*final = cur;
			break;
		}
		if (!is_redirect(out->status) || !out->has_location) {
			r = fail(&q, HTTPS_HTTP_STATUS, "%s answered HTTP %d", cur.host, out->status);
			break;
		}
		if (hops == o->max_redirects) {
			r = fail(&q, HTTPS_REDIRECTS, "more than %d redirects", o->max_redirects);
			break;
		}
		if (!https_url_resolve(&cur, (const uint8_t *)out->location, strlen(out->location), &next,
		                       why, sizeof(why))) {
			r = fail(&q, HTTPS_REDIRECTS, "redirect from %s not followed: %s", cur.host, why);
			break;
		}
		http_response_cleanup(out);
		cur = next;
	}
	if (r != HTTPS_OK)
		http_response_cleanup(out);
	SSL_CTX_free(ctx);
	return r;
}
