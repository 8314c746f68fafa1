/*
 * The operations endpoint (--metrics ADDR:PORT): plain HTTP on a thread and
 * event loop of its own, never a forwarding loop.
 *
 *   /metrics  Prometheus text format (metrics.c)
 *   /healthz  200 while every worker's loop runs; 503 naming one that stalls
 *   /readyz   200 when certificates are loaded, the broker answers (probed at
 *             most every few seconds) and mqtls is not draining; else 503
 *             with the reason on one line
 */
#ifndef PROXY_HTTP_H
#define PROXY_HTTP_H

#include <stddef.h>

struct proxy;
struct worker;
struct http_server;

/* Binds |addr| and starts serving the |n| workers at |workers| (borrowed;
 * they must outlive the server). Returns NULL with a one-line reason in
 * |err| on failure. */
struct http_server *http_start(const char *addr, struct proxy *p, struct worker *workers, int n, char *err,
                               size_t errlen);
/* Stops the thread and frees the server. http_stop(NULL) is a no-op. */
void http_stop(struct http_server *h);

#endif
