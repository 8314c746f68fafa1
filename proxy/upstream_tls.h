/*
 * TLS to the broker (--upstream-tls), the process's side: the client
 * context every broker connection is made from, and the name the broker's
 * certificate must carry. The session's side (handshake, reads, writes,
 * close_notify) is in session_int.h under "broker TLS".
 */
#ifndef PROXY_UPSTREAM_TLS_H
#define PROXY_UPSTREAM_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "proxy/config.h"

struct proxy;

#define UPSTREAM_NAME_MAX 256

/* What a broker's certificate must carry. */
struct upstream_name {
	char name[UPSTREAM_NAME_MAX];   /* a DNS name (also sent as SNI) or an IP address */
	uint8_t is_ip;
};

/*
 * At start: with --upstream-tls, decides for each --upstream the name to
 * verify (--upstream-sni, else the broker's host: a DNS name is also sent
 * as SNI, an IP literal is checked against the certificate's IP SANs; a
 * unix: socket needs --upstream-sni) and builds p->upstream_ctx. Without
 * it does nothing. Returns 0 with one line in |err| on a configuration
 * error; upstream_tls_cleanup frees what it built either way.
 */
int upstream_tls_setup(struct proxy *p, const struct config *cfg, char *err, size_t errlen);
/* Frees p->upstream_ctx and the names, at exit. */
void upstream_tls_cleanup(struct proxy *p);

/*
 * The name the broker's certificate must carry, from --upstream |spec| and
 * --upstream-sni |sni| (may be NULL), into |out|; *is_ip says whether it is
 * an IP address (checked against IP SANs, never sent as SNI). Returns 0
 * with one line in |err| when there is none (a unix: socket without
 * --upstream-sni) or it does not fit.
 */
int upstream_tls_name(const char *spec, const char *sni, char *out, size_t cap, int *is_ip, char *err,
                      size_t errlen);

/* Builds the client context of |cfg| (CA, client certificate); NULL with
 * one line in |err| on failure. The caller owns the result. */
SSL_CTX *upstream_tls_ctx_new(const struct config *cfg, char *err, size_t errlen);

/* A reload's new context goes live (takes ownership); connections keep the
 * SSL they have. NULL is ignored. */
void upstream_tls_swap(struct proxy *p, SSL_CTX *ctx);

#endif
