/*
 * Several certificate pairs on one listener (--cert/--key repeated): one
 * SSL_CTX per pair, all with the same settings; the first is the one
 * connections start on, and its ClientHello callback moves a connection to
 * the pair its SNI and signature algorithms call for (SSL_set_SSL_CTX)
 * before anything is sent. Session resumption keeps working across them:
 * tickets and the session cache belong to the first context, and every
 * context has the same session-id context, client CAs, CRLs and ALPN.
 */
#ifndef TLS_SNI_H
#define TLS_SNI_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "tls/context.h"

#define TLS_SNI_MAX_PAIRS 8        /* CONFIG_MAX_LIST */
#define TLS_SNI_MAX_NAMES 512      /* DNS names per certificate */

/*
 * Builds the contexts of pairs (certs[i], keys[i]), i < n, each as
 * tls_server_ctx_new would from |o| (whose cert_file and key_file are
 * ignored), and returns the first; it owns the others, and SSL_CTX_free of
 * it frees them all once no connection uses them. On failure returns NULL
 * with one line naming the flag and file in |err|.
 */
SSL_CTX *tls_server_ctx_set_new(const struct tls_server_opts *o, const char *const *certs,
                                const char *const *keys, size_t n, char *err, size_t errlen);

/* The number of pairs |ctx| serves: 1 for a context tls_server_ctx_new
 * built on its own. */
size_t tls_server_ctx_pairs(const SSL_CTX *ctx);

/* Pair |i| (< tls_server_ctx_pairs) of |ctx|: its context, borrowed from
 * |ctx| (|ctx| itself for 0), and its certificate file in |*file| (NULL
 * when |ctx| was built on its own). */
SSL_CTX *tls_server_ctx_pair(const SSL_CTX *ctx, size_t i, const char **file);

/* For the log: pair |i|'s names as the choice sees them, comma-separated
 * into |out| (cut with "..." to fit |cap|, which must be at least 4), and
 * in |*key| its key type ("ecdsa-p256", "rsa", ...; "unknown" for a context
 * built on its own). Returns |out|. */
const char *tls_server_ctx_pair_names(const SSL_CTX *ctx, size_t i, char *out, size_t cap, const char **key);

#endif
