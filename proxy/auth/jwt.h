/*
 * Verifying a JWT carried in the CONNECT password (RFC 7519, JWS compact
 * serialization, RFC 7515).
 *
 * The order of checks: size and shape (three base64url parts, canonical,
 * no padding), header (JSON object without duplicate members; `alg` known
 * and not "none"; no `crit`), key choice (`kid` when present; `alg` must
 * fit the key's type), signature, and only then the claims: `exp`, `nbf`,
 * `iat` with the leeway, `iss` and `aud` when configured, and the user
 * name claim. The payload is not parsed before its signature is checked.
 */
#ifndef PROXY_AUTH_JWT_H
#define PROXY_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/jwt_keys.h"

/* Longest token accepted. A JWT in an MQTT password could be 64 KiB, but
 * real access tokens are well under 2 KiB. */
#define JWT_MAX_LEN 8192

enum jwt_result {
	JWT_OK,
	JWT_MALFORMED,          /* not three canonical base64url parts of JSON objects */
	JWT_TOO_LONG,
	JWT_BAD_ALG,            /* "none", unknown, or no key of the type it needs */
	JWT_UNKNOWN_KID,
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,
	JWT_NOT_YET_VALID,      /* nbf in the future, or iat in the future */
	JWT_MISSING_EXP,        /* no exp, and the options demand one */
	JWT_BAD_ISSUER,
	JWT_BAD_AUDIENCE,
	JWT_NO_USERNAME_CLAIM,  /* the claim is absent, empty or not a string */
};

struct jwt_options {
	const char *issuer;          /* borrowed; NULL: iss not checked */
	const char *audience;        /* borrowed; NULL: aud not checked */
	const char *username_claim;  /* borrowed; NULL means "sub" */
	uint32_t leeway_s;           /* clock skew allowed on exp, nbf, iat */
	int allow_missing_exp;       /* 0 (the default): a token must expire */
};

struct acl;

struct jwt_claims {
	char *username;         /* owned by the caller: free with jwt_claims_cleanup */
	size_t username_len;    /* without the terminating NUL */
	int has_exp;
	int64_t exp;            /* seconds since the epoch, when has_exp */
	struct acl *acl;        /* owned: the `acl` claim (EMQX style
	                           {"pub": [..], "sub": [..], "all": [..]}), or NULL */
};

/* Verifies the `len` bytes at `token` at time `now` (seconds since the
 * epoch) against `keys` under `opts` (NULL for all defaults). On JWT_OK,
 * fills `*claims`, which the caller then owns; on any other result
 * `*claims` is zeroed. When `why` is not NULL, a short explanation for the
 * log is written there (capacity `whylen`): it may quote `alg`, the
 * numeric times and an escaped, shortened `iss` or `aud`, but never the
 * token, its signature or a key. Safe to call from any thread. */
enum jwt_result jwt_verify(const struct jwt_keyset *keys, const char *token, size_t len,
			   int64_t now, const struct jwt_options *opts,
			   struct jwt_claims *claims, char *why, size_t whylen);

/* The same against several key sets at once (`nsets` entries of `sets`,
 * NULL entries skipped), as if they were one: static keys beside keys
 * fetched from an identity provider. When `kid_absent` is not NULL it is
 * set to 1 if the result is JWT_UNKNOWN_KID because no key of any set has
 * the token's `kid` (rather than none of the type `alg` needs): newer keys
 * might. */
enum jwt_result jwt_verify_sets(const struct jwt_keyset *const *sets, size_t nsets,
				const char *token, size_t len, int64_t now,
				const struct jwt_options *opts, struct jwt_claims *claims,
				int *kid_absent, char *why, size_t whylen);

/* Frees what jwt_verify put in `*claims` and zeroes it. */
void jwt_claims_cleanup(struct jwt_claims *claims);

/* A short fixed name for a result ("expired", ...), for logs and metrics. */
const char *jwt_result_name(enum jwt_result r);

#endif
