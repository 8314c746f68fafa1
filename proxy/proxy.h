/*
 * What every worker shares: the configuration, the broker's address, the
 * current TLS context and auth snapshot, the auth pool and the failure-delay
 * table. Everything here is read-only after startup except the TLS context
 * and auth snapshot pointers, which a reload (SIGHUP) swaps under the lock;
 * the pool and the failure-delay table lock for themselves.
 */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <pthread.h>
#include <stddef.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "proxy/address.h"
#include "proxy/config.h"

struct pool;
struct faildelay;

struct proxy {
	const struct config *cfg;          /* borrowed from main */
	struct address upstream;
	size_t max_buffer;
	size_t max_connect_size;
	struct timeval hello_timeout;      /* accept -> complete ClientHello */
	struct timeval handshake_timeout;
	struct timeval connect_timeout;
	struct timeval upstream_timeout;
	struct timeval linger_timeout;     /* flushing at close */

	uint8_t identity_kind;             /* enum tls_identity_kind for client certs */
	struct pool *pool;                 /* owned: slow auth checks */
	struct faildelay *faildelay;       /* owned */

	pthread_mutex_t lock;              /* guards ssl_ctx and auth */
	SSL_CTX *ssl_ctx;                  /* owned; replaced by proxy_swap_ssl_ctx */
	struct auth_material *auth;        /* owned reference; replaced by proxy_swap_auth */
};

struct auth_material;
/* The current auth snapshot with a new reference (auth_material_unref it). */
struct auth_material *proxy_get_auth(struct proxy *p);
/* Installs |m| (takes the reference); sessions keep the one they took. */
void proxy_swap_auth(struct proxy *p, struct auth_material *m);

/* Returns the current context with a new reference the caller must free. */
SSL_CTX *proxy_get_ssl_ctx(struct proxy *p);
/* Installs |ctx| (takes ownership); live connections keep the old one. */
void proxy_swap_ssl_ctx(struct proxy *p, SSL_CTX *ctx);

#endif
