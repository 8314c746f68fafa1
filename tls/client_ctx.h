/*
 * Client-side TLS contexts on BoringSSL, for connections mqtls opens itself
 * (the broker behind --upstream-tls): TLS 1.2 or 1.3, the server's chain
 * verified against a CA file (or the system's), the server's name or
 * address checked, an optional client certificate, and resumption of the
 * last session to the same name (for up to 8 names). Certificates stay in
 * their wire form (TLS_with_buffers_method): no parsed chain outlives the
 * check.
 */
#ifndef TLS_CLIENT_CTX_H
#define TLS_CLIENT_CTX_H

#include <stddef.h>
#include <openssl/ssl.h>

/* The CA bundle used when no CA file is given (Debian's ca-certificates). */
#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

struct tls_client_opts {
	const char *ca_file;        /* PEM CAs the server must chain to; NULL: the system's */
	const char *cert_file;      /* client chain, leaf first, or NULL */
	const char *key_file;       /* its key; given exactly when cert_file is */
	const char *flag_prefix;    /* "--upstream" for error messages ("--upstream-ca FILE: ...") */
};

/*
 * Builds a client context that verifies the server (SSL_VERIFY_PEER). On
 * failure returns NULL and writes one line naming the flag, the file and
 * the problem into |err|. The caller owns the result (SSL_CTX_free).
 */
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *err, size_t errlen);

/*
 * A new client SSL from |ctx| that will accept only a server certificate
 * for |name|: a DNS name (also sent as SNI) or, with |is_ip|, an IP
 * address in text form (checked against the IP SANs; no SNI, which cannot
 * carry an address). |name| is borrowed and must outlive the SSL. Offers
 * the last session |ctx| saw for the same name. Returns NULL on failure;
 * the caller owns the SSL.
 */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *name, int is_ip);

/* The result of checking the server's certificate in |ssl|'s last full
 * handshake (an X509_V_* code; X509_V_OK if none failed or none ran). */
long tls_client_verify_result(const SSL *ssl);

/*
 * Why a client handshake or its first reads failed, in one line, from what
 * was saved at the failure: the verification result |verify| (from
 * tls_client_verify_result: "certificate verify failed: Hostname
 * mismatch"), else the TLS error |err_code| (an ERR_peek_last_error value),
 * else the socket's |sys_errno|, else "connection closed". Writes into |buf|
 * and returns it.
 */
const char *tls_client_failure(long verify, unsigned long err_code, int sys_errno, char *buf, size_t len);

#endif
