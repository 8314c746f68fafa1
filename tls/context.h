/*
 * Server-side TLS contexts on BoringSSL: certificate chain and key from PEM
 * files, TLS 1.2/1.3 with forward-secret AEAD suites only, X25519 and P-256,
 * ALPN "mqtt", and optional or required client certificates with CRLs.
 */
#ifndef TLS_CONTEXT_H
#define TLS_CONTEXT_H

#include <stddef.h>
#include <openssl/ssl.h>

enum tls_client_cert { TLS_CLIENT_CERT_NONE, TLS_CLIENT_CERT_OPTIONAL, TLS_CLIENT_CERT_REQUIRED };

struct tls_server_opts {
	const char *cert_file;      /* chain, leaf first */
	const char *key_file;
	const char *client_ca_file; /* NULL: no client certificates */
	const char *crl_file;       /* NULL: no revocation checks */
	enum tls_client_cert client_cert;
};

/*
 * Builds a server context. On failure returns NULL and writes one line (no
 * trailing newline) naming the file and the problem into |err|. The caller
 * owns the result and releases it with SSL_CTX_free.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, char *err, size_t errlen);

#endif
