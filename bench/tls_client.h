/*
 * The TLS client context of mqtls-bench (BoringSSL), shared by every
 * thread: SSL_CTX is safe to use from many threads once configured.
 */
#ifndef BENCH_TLS_CLIENT_H
#define BENCH_TLS_CLIENT_H

#include <openssl/ssl.h>

#include "bench/options.h"

/*
 * Builds a client SSL_CTX from the TLS options: CA file (verification on
 * when given, off otherwise), forced version, and the client certificate
 * and key files |cert| and |key| (borrowed; NULL: none). Returns NULL
 * after printing one line to stderr. The caller owns the result
 * (SSL_CTX_free).
 */
SSL_CTX *bench_tls_ctx_new(const struct bench_options *o, const char *cert, const char *key);

/*
 * Returns a new client SSL bound to |fd|, sending the SNI name and checking
 * it against the certificate when |sni| is not NULL. The caller owns it.
 */
SSL *bench_tls_new(SSL_CTX *ctx, int fd, const char *sni);

#endif
