/*
 * Which of several certificate pairs a client gets (--cert/--key repeated):
 * pure functions over names and ClientHello bytes, no TLS state, so that
 * every rule is unit-tested (tests/unit/test_sni.c). tls/sni.c feeds them
 * from the certificates and the ClientHello.
 */
#ifndef TLS_SNI_MATCH_H
#define TLS_SNI_MATCH_H

#include <stddef.h>
#include <stdint.h>

/* Longest host name a certificate name or SNI may have (RFC 1035), without
 * a trailing dot. */
#define TLS_SNI_NAME_MAX 253

enum tls_sni_match {
	TLS_SNI_NONE = 0,
	TLS_SNI_WILDCARD = 1,   /* "*.example.com" covered the left-most label */
	TLS_SNI_EXACT = 2,
};

/*
 * Does certificate name |pattern| (a DNS SAN, or the CN of a certificate
 * without one) cover host |host| (the client's SNI)? ASCII case-insensitive,
 * one trailing dot ignored on either side. A wildcard is only a whole
 * left-most "*" label over at least two more labels ("*.example.com"), and
 * stands for exactly one non-empty label. Names that are not letters,
 * digits, '-' and '_' in non-empty labels (raw UTF-8, NUL, spaces, "..")
 * never match anything.
 */
enum tls_sni_match tls_sni_name_match(const char *pattern, const char *host);

/* What the client can verify, from its ClientHello (bits). */
#define TLS_CAN_RSA        0x01u   /* an RSA certificate (PSS in 1.3, with an ECDHE-RSA suite in 1.2) */
#define TLS_CAN_ECDSA_P256 0x02u
#define TLS_CAN_ECDSA_P384 0x04u
#define TLS_CAN_ECDSA_P521 0x08u

/* The parts of a ClientHello that decide between an ECDSA and an RSA
 * certificate; NULL means the extension was absent. Borrowed bytes. */
struct tls_hello_algs {
	const uint8_t *suites;        /* cipher_suites, u16 list without its length */
	size_t suites_len;
	const uint8_t *versions;      /* supported_versions body (u8 length, u16 list) */
	size_t versions_len;
	const uint8_t *sigalgs;       /* signature_algorithms body (u16 length, u16 list) */
	size_t sigalgs_len;
};

/*
 * TLS_CAN_* bits for a client, knowing that the server speaks TLS 1.2 and
 * 1.3 with the ECDHE AEAD suites only. A malformed extension counts as
 * offering nothing (the handshake itself then fails on it).
 */
unsigned tls_hello_caps(const struct tls_hello_algs *h);

enum tls_key_kind {
	TLS_KEY_OTHER = 0,          /* Ed25519 and the like: chosen last */
	TLS_KEY_RSA,
	TLS_KEY_ECDSA_P256,
	TLS_KEY_ECDSA_P384,
	TLS_KEY_ECDSA_P521,
};

/* What the choice needs to know about one certificate pair. */
struct tls_sni_cert {
	const char *const *names;   /* its DNS SANs, or its CN when it has none */
	size_t n_names;
	enum tls_key_kind key;
	unsigned char serves_default;   /* 1: same names as the first pair (tls_sni_same_names) */
};

/* 1 if |a| and |b| hold the same names, in any order and case. */
int tls_sni_same_names(const struct tls_sni_cert *a, const struct tls_sni_cert *b);

/*
 * The index of the pair to serve, in [0, n): the pairs whose names cover
 * |host| (exact matches before wildcard ones), or, with no SNI (NULL) or no
 * match, the first pair and those serving the same names as it. Among
 * those, the first ECDSA one the client can verify, else the first RSA one
 * it can, else the first of them. n must be at least 1.
 */
size_t tls_sni_choose(const struct tls_sni_cert *certs, size_t n, const char *host, unsigned caps);

#endif
