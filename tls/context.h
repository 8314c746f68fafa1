/*
 * Server-side TLS contexts on BoringSSL: certificate chain and key from PEM
 * files, TLS 1.2/1.3 with forward-secret AEAD suites only, X25519 and P-256,
 * ALPN "mqtt", and optional or required client certificates with CRLs.
 */
#ifndef TLS_CONTEXT_H
#define TLS_CONTEXT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

enum tls_client_cert { TLS_CLIENT_CERT_NONE, TLS_CLIENT_CERT_OPTIONAL, TLS_CLIENT_CERT_REQUIRED };

struct tls_server_opts {
	const char *cert_file;      /* chain, leaf first */
	const char *key_file;
	const char *client_ca_file; /* NULL: no client certificates */
	const char *crl_file;       /* NULL: no revocation checks */
	enum tls_client_cert client_cert;
	const char *ticket_keys_file;   /* NULL: BoringSSL's own keys, rotated by it */
};

/*
 * Builds a server context. On failure returns NULL and writes one line (no
 * trailing newline) naming the file and the problem into |err|. The caller
 * owns the result and releases it with SSL_CTX_free.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, char *err, size_t errlen);

/* What the log says about the certificate a context serves. */
struct tls_cert_info {
	char subject[256];          /* RFC 2253 ("CN=mqtt.example.com,O=..."), cut to fit */
	char serial[80];            /* hex digits, upper case, cut to fit */
	int64_t not_after;          /* Unix seconds */
	char not_after_text[32];    /* "2026-01-31T12:00:00Z" */
};

/* Fills |out| from the leaf certificate of |ctx|. Returns 1, or 0 if |ctx|
 * has no certificate or its fields cannot be read. */
int tls_server_ctx_cert_info(const SSL_CTX *ctx, struct tls_cert_info *out);

#endif
