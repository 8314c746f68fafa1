/*
 * What every worker shares: the configuration, the broker's address, the
 * current TLS context and auth snapshot, the auth pool and the failure-delay
 * table. Everything here is read-only after startup except what a reload
 * (SIGHUP, or a watched file changed) replaces: the configuration pointer
 * and the two live limits below (atomic stores), and the TLS context and
 * auth snapshot pointers (swapped under the lock); the pool and the
 * failure-delay table lock for themselves.
 *
 * Configuration lifetime: workers, the metrics thread and whoever else
 * reads cfg use it without a reference (one atomic load, then plain reads
 * for as long as they like). So a configuration is never freed while the
 * process runs: one a reload installs stays in |configs| until exit. A
 * reload whose options did not change (a renewed certificate, a new users
 * file: the same paths, new contents) installs no new one, so they pile up
 * only when an operator edits options, about a kilobyte each time.
 */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "proxy/address.h"
#include "proxy/config.h"

struct pool;
struct faildelay;
struct watch;
struct limits;
struct jwks_fetch;
struct brokers;
struct upstream_name;

struct proxy {
	const struct config *_Atomic cfg;  /* the live one: main's, or one of |configs| */
	struct brokers *brokers;           /* owned: the --upstream set (proxy/brokers.h) */
	struct address upstream;           /* the one broker when |brokers| is NULL (unit fixtures) */
	_Atomic size_t max_buffer;         /* from cfg; a reload stores the new value */
	_Atomic size_t max_connect_size;   /* likewise */
	struct timeval hello_timeout;      /* accept -> complete ClientHello */
	struct timeval handshake_timeout;
	struct timeval connect_timeout;
	struct timeval upstream_timeout;
	struct timeval linger_timeout;     /* flushing at close */

	uint8_t identity_kind;             /* enum tls_identity_kind for client certs */
	struct pool *pool;                 /* owned: slow auth checks */
	struct faildelay *faildelay;       /* owned */
	struct limits *limits;             /* owned; NULL without per-address/identity limits */
	struct jwks_fetch *jwks;           /* owned: keys from the identity provider, or NULL */

	atomic_int draining;               /* SIGTERM seen: /readyz says 503 */

	pthread_mutex_t lock;              /* guards ssl_ctx, upstream_ctx and auth */
	SSL_CTX *ssl_ctx;                  /* owned; replaced by proxy_swap_ssl_ctx */
	SSL_CTX *upstream_ctx;             /* owned; --upstream-tls, else NULL; replaced by
	                                      upstream_tls_swap (proxy/upstream_tls.h) */
	struct upstream_name *upstream_names;  /* owned, one per --upstream with --upstream-tls: what
	                                          each broker's certificate must carry */
	int n_upstream_names;
	struct auth_material *auth;        /* owned reference; replaced by proxy_swap_auth */

	/* Reloads: the main thread only. */
	int argc;                          /* how the configuration was read, */
	char **argv;                       /* borrowed from main (and the environment) */
	struct config **configs;           /* owned: every one a reload installed */
	size_t n_configs;
	struct watch *watch;               /* owned: the loaded files' watcher, or NULL */
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

/*
 * A reload's snapshot goes live at once: |cfg| (takes ownership; NULL
 * keeps the running configuration) with its max-buffer and
 * max-connect-size, |ctx| (takes ownership) and |m| (takes the reference).
 * New connections get the new ones; live ones keep their context and auth
 * snapshot. Returns 0, having changed and freed nothing, only when there
 * is no memory to remember |cfg|.
 */
int proxy_install(struct proxy *p, struct config *cfg, SSL_CTX *ctx, struct auth_material *m);
/* At exit, once no thread reads cfg any more: frees every configuration a
 * reload installed (main's own is main's to clean up). */
void proxy_free_configs(struct proxy *p);

#endif
