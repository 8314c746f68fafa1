/*
 * What the TLS layer learned about the client, kept in the session after the
 * handshake so that no parsed certificate outlives it (DESIGN.md §4).
 */
#ifndef TLS_PEER_H
#define TLS_PEER_H

#include <openssl/ssl.h>

/* Which certificate field names the client (--identity-as-username). */
enum tls_identity_kind {
	TLS_ID_NONE = 0,
	TLS_ID_CN,
	TLS_ID_SAN_DNS,
	TLS_ID_SAN_EMAIL,
	TLS_ID_SAN_URI,
};

struct tls_peer {
	const char *verify_error;   /* static string from BoringSSL, or NULL */
	int verify_depth;
	uint8_t want_identity;      /* enum tls_identity_kind, set before the handshake */
	uint8_t hello_seen;         /* a complete ClientHello arrived */
	uint8_t want_cn;            /* copy the CN too (for a PROXY v2 header), set before the handshake */
	uint8_t resume_refused;     /* enum tls_resume_refusal (tls/resume.h): why a ticket was turned down, or 0 */
	char *cn;                   /* owned; the verified leaf's CN if want_cn, or NULL */
	char *identity;             /* owned; the wanted field of a verified leaf, or NULL */
};

/* Parses "cn", "san-dns", "san-email" or "san-uri"; returns 1/0. */
int tls_identity_kind_parse(const char *s, enum tls_identity_kind *out);

/* Allocates the ex_data slot; idempotent and thread-safe. Returns 1/0. */
int tls_peer_init(void);

/* Attaches |peer| (borrowed; must outlive |ssl|'s handshake) to |ssl| so the
 * verify callback can fill it. */
int tls_peer_attach(SSL *ssl, struct tls_peer *peer);
void tls_peer_cleanup(struct tls_peer *peer);

/* The peer attached to |ssl| by tls_peer_attach, or NULL. */
struct tls_peer *tls_peer_of(const SSL *ssl);

/* Copies the identity and CN that |peer| wants (and has not yet) from the
 * verified leaf |leaf|: the verify callback does it on a full handshake,
 * tls/resume.c on a resumed one. */
void tls_peer_take_leaf(struct tls_peer *peer, X509 *leaf);

/* The ClientHello callback installed by tls_server_ctx_new: marks the
 * attached peer's hello_seen and lets the handshake go on. */
enum ssl_select_cert_result_t tls_peer_hello_cb(const SSL_CLIENT_HELLO *hello);

/* The verify callback installed by tls_server_ctx_new. */
int tls_peer_verify_cb(int ok, X509_STORE_CTX *store);

#endif
