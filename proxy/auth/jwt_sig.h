/*
 * JWS signature algorithms (RFC 7518 section 3, RFC 8037 for EdDSA): which
 * key type each `alg` needs, and the signature check itself.
 */
#ifndef PROXY_AUTH_JWT_SIG_H
#define PROXY_AUTH_JWT_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/jwt_keys.h"

struct jwt_alg;

/* Looks up the `len` bytes at `name` ("RS256", ...). Returns a static
 * description, or NULL for "none" and anything unsupported. */
const struct jwt_alg *jwt_alg_find(const char *name, size_t len);

/* The algorithm's name, static. */
const char *jwt_alg_name(const struct jwt_alg *alg);

/* Returns 1 if `key` may verify signatures made with `alg`: the key type
 * matches (an RSA or EC public key is never an HMAC secret), the JWK's own
 * "alg" (if any) is the same, and an HMAC secret is at least as long as the
 * hash (RFC 7518 3.2). */
int jwt_key_fits(const struct jwt_key *key, const struct jwt_alg *alg);

/* Returns 1 if `sig` is a valid `alg` signature of `msg` under `key`, which
 * must fit `alg`. HMAC tags are compared in constant time. All buffers are
 * borrowed. */
int jwt_sig_verify(const struct jwt_key *key, const struct jwt_alg *alg, const uint8_t *msg,
		   size_t msglen, const uint8_t *sig, size_t siglen);

#endif
