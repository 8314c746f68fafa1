/*
 * What every worker shares: the configuration, the broker's address and the
 * current TLS context. Everything here is read-only after startup except
 * the TLS context pointer, which a reload swaps under a lock.
 */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <pthread.h>
#include <stddef.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "proxy/address.h"
#include "proxy/config.h"

struct proxy {
	const struct config *cfg;          /* borrowed from main */
	struct address upstream;
	size_t max_buffer;
	size_t max_connect_size;
	struct timeval handshake_timeout;
	struct timeval connect_timeout;
	struct timeval upstream_timeout;
	struct timeval linger_timeout;     /* flushing at close */

	pthread_mutex_t lock;              /* guards ssl_ctx */
	SSL_CTX *ssl_ctx;                  /* owned; replaced by proxy_swap_ssl_ctx */
};

/* Returns the current context with a new reference the caller must free. */
SSL_CTX *proxy_get_ssl_ctx(struct proxy *p);
/* Installs |ctx| (takes ownership); live connections keep the old one. */
void proxy_swap_ssl_ctx(struct proxy *p, SSL_CTX *ctx);

#endif
