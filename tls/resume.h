/*
 * Session resumption with client certificates. The SSL_SESSION of a
 * connection keeps only a hash of the client's chain (no certificate stays
 * in memory after the handshake); the ticket carries the chain itself, next
 * to a hash of the client-CA configuration. A resumption is accepted only if
 * that hash is the current one (the CA file that verified the chain is
 * unchanged), the certificates are within their validity periods and the
 * leaf is not on a current CRL of its issuer; otherwise the ticket is
 * ignored and the client goes through a full handshake, which verifies its
 * certificate again.
 */
#ifndef TLS_RESUME_H
#define TLS_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Why a ticket was turned down (struct tls_peer's resume_refused). */
enum tls_resume_refusal {
	TLS_RESUME_ACCEPTED = 0,
	TLS_RESUME_CA_CHANGED,      /* --client-ca contents or --client-cert changed since */
	TLS_RESUME_REVOKED,         /* the certificate is on a CRL loaded since */
	TLS_RESUME_EXPIRED,         /* the certificate is no longer (or not yet) valid */
	TLS_RESUME_UNVERIFIED,      /* no CRL of the issuer in force, or no chain carried */
	TLS_RESUME_MALFORMED,       /* our key opened it but its contents do not parse */
	TLS_RESUME_REFUSAL_COUNT
};

/* Certificates and bytes of DER a ticket carries at most; a longer chain
 * still gets a ticket, but one that cannot resume (verification fails). */
#define TLS_RESUME_MAX_CERTS 4
#define TLS_RESUME_MAX_CHAIN 8192

/* The label of a refusal ("revoked", ...), "accepted" for 0, "unknown"
 * for anything else. */
const char *tls_resume_refusal_name(unsigned r);

/* Enables tickets on |ctx| already set up to ask for client certificates
 * from |ca_file| (|required| or optional; with |crl|, a CRL of the issuer
 * is required): sets its session id context to a hash of the mode and the
 * file's contents and installs the ticket method and a handshake-done
 * hook. Returns 1, or 0 with a one-line reason naming --client-ca in
 * |err|. */
int tls_resume_install(SSL_CTX *ctx, const char *ca_file, int required, int crl, char *err,
                       size_t errlen);

/* What a ticket's plaintext holds, as parsed by tls_resume_blob_parse; the
 * pointers point into the parsed buffer. */
struct tls_resume_blob {
	int had_cert;              /* the client presented a certificate */
	const uint8_t *sid_ctx;
	size_t sid_ctx_len;
	size_t n_certs;
	const uint8_t *cert[TLS_RESUME_MAX_CERTS];   /* DER, leaf first */
	size_t cert_len[TLS_RESUME_MAX_CERTS];
	const uint8_t *session;    /* BoringSSL's serialized SSL_SESSION */
	size_t session_len;
};

/* Bytes of the chain list (each certificate a 16-bit length and its DER)
 * for certificates of lengths |len|: up to TLS_RESUME_MAX_CERTS of them,
 * stopping before the first that would pass TLS_RESUME_MAX_CHAIN bytes (so
 * a leaf too large gives an empty list). */
size_t tls_resume_chain_size(const size_t *len, size_t n);

/* Bytes tls_resume_blob_write needs for these lengths. */
size_t tls_resume_blob_size(size_t sid_ctx_len, size_t chain_size, size_t session_len);

/* Writes version, whether the client |had_cert|, session id context, the
 * chain list of certificates |der| (cut as tls_resume_chain_size says) and
 * the session into |out|. Returns the bytes written, or 0 if |max| is too
 * small or an argument is out of range (sid_ctx over 32 bytes, no
 * session). */
size_t tls_resume_blob_write(uint8_t *out, size_t max, int had_cert, const uint8_t *sid_ctx,
                             size_t sid_ctx_len, const uint8_t *const *der, const size_t *len,
                             size_t n, const uint8_t *session, size_t session_len);

/* Parses what tls_resume_blob_write wrote; 1, or 0 if |in| is not that. */
int tls_resume_blob_parse(const uint8_t *in, size_t len, struct tls_resume_blob *out);

#endif
