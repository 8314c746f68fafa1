/*
 * The keys JWTs are checked against (`--jwt-keys FILE`). One file holds
 * one of three things, told apart by its contents:
 *
 *   - PEM: anything containing "-----BEGIN". One or more blocks of
 *     PUBLIC KEY (SubjectPublicKeyInfo: RSA, EC P-256/P-384, Ed25519),
 *     RSA PUBLIC KEY (PKCS#1) or CERTIFICATE (its public key is used).
 *     Private keys are refused, so a signing key is never deployed here
 *     by mistake. PEM keys carry no `kid`; they match any.
 *   - JWKS: anything whose first non-blank character is '{'. A JSON Web
 *     Key Set ({"keys": [...]}) or a single JWK, with kty RSA, EC (P-256,
 *     P-384), OKP (Ed25519) or oct (an HMAC secret). `kid` and `alg` are
 *     kept; keys marked "use": "enc" and key types we cannot use are
 *     skipped; a broken key of a supported type fails the whole file.
 *   - anything else: an HMAC secret, the file's raw bytes with one
 *     trailing newline (LF or CRLF) removed; at least 32 bytes, as RFC
 *     7518 3.2 asks for HS256.
 *
 * RSA keys must have at least 2048 bits. A loaded set is immutable and
 * may be used from any number of threads at once.
 */
#ifndef PROXY_AUTH_JWT_KEYS_H
#define PROXY_AUTH_JWT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

enum jwt_key_type {
	JWT_KEY_RSA,
	JWT_KEY_EC_P256,
	JWT_KEY_EC_P384,
	JWT_KEY_ED25519,
	JWT_KEY_HMAC,
};

struct jwt_key {
	enum jwt_key_type type;
	char *kid;              /* owned; NULL when the key has none */
	char *alg;              /* owned; the JWK's "alg", or NULL: any that fits */
	EVP_PKEY *pkey;         /* owned; NULL for HMAC */
	uint8_t *secret;        /* owned; HMAC only */
	size_t secret_len;
};

struct jwt_keyset;

#define JWT_KEYS_MAX_FILE (1u << 20)
#define JWT_KEYS_MAX_KEYS 64
#define JWT_MIN_RSA_BITS 2048
#define JWT_MIN_HMAC_SECRET 32

/* Reads the file at `path`. Returns a new key set owned by the caller
 * (free with jwt_keyset_free), or NULL with a message in `err` (capacity
 * `errlen`) that names the problem but never quotes a secret. */
struct jwt_keyset *jwt_keyset_load(const char *path, char *err, size_t errlen);

/* The same from the `len` bytes at `data` (borrowed). */
struct jwt_keyset *jwt_keyset_parse(const uint8_t *data, size_t len, char *err, size_t errlen);

/* A JWK Set as an identity provider publishes it (`jwks_uri`): the JSON
 * object {"keys": [...]} and nothing else (no PEM, no bare JWK, never the
 * raw-bytes HMAC fallback), and HMAC ("oct") keys are skipped, since a
 * secret that was published is no secret. The other rules are those of a
 * JWKS file. Returns a new set owned by the caller, or NULL with the
 * reason in `err` (starting with JWT_KEYS_NONE_USABLE when nothing was
 * left). */
#define JWT_KEYS_NONE_USABLE "no usable key"
struct jwt_keyset *jwt_keyset_parse_jwks(const uint8_t *data, size_t len, char *err,
					 size_t errlen);

/* Frees `ks` and wipes its secrets. jwt_keyset_free(NULL) is a no-op. */
void jwt_keyset_free(struct jwt_keyset *ks);

size_t jwt_keyset_count(const struct jwt_keyset *ks);

/* The i-th key (i < count), owned by the set. */
const struct jwt_key *jwt_keyset_get0(const struct jwt_keyset *ks, size_t i);

#endif
