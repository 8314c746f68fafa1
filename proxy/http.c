#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "proxy/address.h"
#include "proxy/brokers.h"
#include "proxy/http.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "proxy/worker.h"

/* A loop that has not ticked for this long is stalled (it ticks every second). */
#define STALL_MS 5000
/* The broker is probed at most this often, whatever the request rate. */
#define PROBE_EVERY_MS 2000
#define PROBE_TIMEOUT_MS 1000

struct http_server {
	struct proxy *p;                   /* borrowed */
	struct worker **workers;           /* owned array of borrowed workers */
	int n;
	struct event_base *base;           /* owned */
	struct evhttp *http;               /* owned */
	struct event ev_stop;
	pthread_t thread;
	int fd;                            /* listening socket, owned by evhttp once bound */
	uint64_t probe_ms;                 /* last broker probe, monotonic */
	int probe_ok;
	char probe_reason[320];
};

static void reply(struct evhttp_request *req, int code, const char *type, const char *line)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evbuffer_add_printf(b, "%s\n", line);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Service Unavailable", b);
	evbuffer_free(b);
}

static void on_metrics(struct http_server *h, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	metrics_render(b, h->p, h->workers, h->n);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* Healthy while every worker's loop ticks (a loop stuck in a callback
 * stops ticking, which is what a liveness probe should catch). */
static void on_healthz(struct http_server *h, struct evhttp_request *req)
{
	uint64_t now = session_now_ms();
	char why[120];

	for (int i = 0; i < h->n; i++) {
		uint64_t beat = counter_get(&h->workers[i]->metrics.heartbeat_ms);

		if (now > beat + STALL_MS) {
			snprintf(why, sizeof(why), "worker %d has not run its loop for %llu ms", i,
			         (unsigned long long)(now - beat));
			reply(req, 503, "text/plain", why);
			return;
		}
	}
	reply(req, 200, "text/plain", "ok");
}

/* One TCP (or unix) connect to |u|, bounded by PROBE_TIMEOUT_MS; 0 or the errno. */
static int probe_one(const struct address *u)
{
	int in_progress = 0, err = 0, fd;
	socklen_t elen = sizeof(err);

	fd = address_connect(u, &in_progress);
	if (fd >= 0 && in_progress) {
		struct pollfd pfd = { fd, POLLOUT, 0 };
		int r = poll(&pfd, 1, PROBE_TIMEOUT_MS);

		if (r == 0)
			err = ETIMEDOUT;
		else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
			err = errno;
	} else if (fd < 0) {
		err = errno;
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/* Ready while any broker answers (with several, sessions fail over). The
 * brokers taken as up are probed first: one that does not answer (marked
 * down) would otherwise cost PROBE_TIMEOUT_MS on every check, longer than
 * a readiness probe usually waits. */
static void probe_broker(struct http_server *h)
{
	struct brokers *b = h->p->brokers;
	int n = b ? brokers_count(b) : 1, err = 0, done = 0;
	struct address u = h->p->upstream;
	char addr[160];

	for (int pass = 0; pass < 2 && !done; pass++) {
		for (int i = 0; i < n && !done; i++) {
			if (b && brokers_is_up(b, i) != (pass == 0))
				continue;
			if (b)
				brokers_address(b, i, &u);
			else if (pass > 0)
				break;
			done = (err = probe_one(&u)) == 0;
		}
	}
	h->probe_ok = err == 0;
	address_format((const struct sockaddr *)&u.sa, u.len, addr, sizeof(addr));
	snprintf(h->probe_reason, sizeof(h->probe_reason), "%sbroker %s unreachable: %s",
	         n > 1 ? "no broker reachable; the last: " : "", addr, strerror(err));
}

static void on_readyz(struct http_server *h, struct evhttp_request *req)
{
	uint64_t now = session_now_ms();
	SSL_CTX *ctx;

	if (atomic_load(&h->p->draining)) {
		reply(req, 503, "text/plain", "draining");
		return;
	}
	ctx = proxy_get_ssl_ctx(h->p);
	if (ctx == NULL || SSL_CTX_get0_certificate(ctx) == NULL) {
		SSL_CTX_free(ctx);
		reply(req, 503, "text/plain", "no certificate loaded");
		return;
	}
	SSL_CTX_free(ctx);
	if (h->probe_ms == 0 || now - h->probe_ms >= PROBE_EVERY_MS) {
		probe_broker(h);
		h->probe_ms = now;
	}
	if (!h->probe_ok) {
		reply(req, 503, "text/plain", h->probe_reason);
		return;
	}
	reply(req, 200, "text/plain", "ready");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *h = arg;
	const char *uri = evhttp_request_get_uri(req);
	size_t plen = strcspn(uri, "?");

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, NULL);
	} else if (plen == 8 && memcmp(uri, "/metrics", 8) == 0) {
		on_metrics(h, req);
	} else if (plen == 8 && memcmp(uri, "/healthz", 8) == 0) {
		on_healthz(h, req);
	} else if (plen == 7 && memcmp(uri, "/readyz", 7) == 0) {
		on_readyz(h, req);
	} else {
		evhttp_send_error(req, 404, NULL);
	}
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *h = arg;

	event_base_loopbreak(h->base);
}

static void *http_main(void *arg)
{
	struct http_server *h = arg;

	event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static int open_listener(const char *spec, char *err, size_t errlen)
{
	struct address a;
	int one = 1, fd;

	if (!address_parse(spec, 0, &a, err, errlen))
		return -1;
	fd = socket(a.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&a.sa, a.len) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

struct http_server *http_start(const char *addr, struct proxy *p, struct worker *workers, int n, char *err,
                               size_t errlen)
{
	struct http_server *h = calloc(1, sizeof(*h));
	char why[200];
	int fd = -1;

	if (h == NULL || (h->workers = calloc((size_t)n, sizeof(*h->workers))) == NULL) {
		snprintf(err, errlen, "--metrics: out of memory");
		goto err;
	}
	h->p = p;
	h->n = n;
	for (int i = 0; i < n; i++)
		h->workers[i] = &workers[i];
	if ((fd = open_listener(addr, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "--metrics %s: %s", addr, why);
		goto err;
	}
	if ((h->base = event_base_new()) == NULL || (h->http = evhttp_new(h->base)) == NULL ||
	    evhttp_accept_socket(h->http, fd) != 0) {
		snprintf(err, errlen, "--metrics %s: cannot start the HTTP server", addr);
		goto err;
	}
	fd = -1;    /* evhttp owns it now */
	evhttp_set_gencb(h->http, on_request, h);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 1024);
	event_assign(&h->ev_stop, h->base, -1, 0, on_stop, h);
	if (pthread_create(&h->thread, NULL, http_main, h) != 0) {
		snprintf(err, errlen, "--metrics: cannot start its thread");
		goto err;
	}
	return h;
err:
	if (fd >= 0)
		close(fd);
	if (h) {
		if (h->http)
			evhttp_free(h->http);
		if (h->base)
			event_base_free(h->base);
		free(h->workers);
		free(h);
	}
	return NULL;
}

void http_stop(struct http_server *h)
{
	if (h == NULL)
		return;
	event_active(&h->ev_stop, EV_READ, 0);
	pthread_join(h->thread, NULL);
	evhttp_free(h->http);
	event_base_free(h->base);
	free(h->workers);
	free(h);
}
