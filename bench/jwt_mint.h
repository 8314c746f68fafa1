/*
 * JWTs minted by mqtls-bench, one per client, from a signing key
 * (`--jwt-key`): the token goes in the CONNECT password.
 *
 * The key file is a PEM private key (EC P-256 -> ES256, EC P-384 -> ES384,
 * Ed25519 -> EdDSA, RSA -> RS256) or, without "-----BEGIN", an HMAC secret:
 * the file's raw bytes with one trailing newline (LF or CRLF) removed, at
 * least 32 bytes (-> HS256; HS384 and HS512 need 48 and 64). An explicit alg may pick another one the key
 * fits (HS384/HS512, RS384/RS512).
 *
 * The claims template is a JSON object text in which every "%i" becomes
 * the client index in decimal. Unless the template has them, "iat" (now)
 * and "exp" (now + ttl) are appended. A minter is immutable once made and
 * may be used from any number of threads at once.
 */
#ifndef BENCH_JWT_MINT_H
#define BENCH_JWT_MINT_H

#include <stddef.h>
#include <stdint.h>

/* Longest token minted: what fits a client's CONNECT buffer is smaller. */
#define JWT_MINT_MAX 2048

struct jwt_minter;

struct jwt_mint_config {
	const char *alg;        /* borrowed; NULL: from the key type */
	const char *claims;     /* borrowed; NULL: {"sub":"bench-%i"} */
	int64_t ttl_s;          /* exp = now + ttl_s */
	const char *kid;        /* borrowed; NULL: no kid in the header */
};

/* Makes a minter from the |len| key bytes at |key| (borrowed; PEM private
 * key or HMAC secret) under |cfg|. Returns a new minter owned by the caller
 * (jwt_minter_free), or NULL with a one-line reason in |err| (capacity
 * |errlen|) that never quotes the key. */
struct jwt_minter *jwt_minter_new(const uint8_t *key, size_t len, const struct jwt_mint_config *cfg,
                                  char *err, size_t errlen);

/* The same with the key read from the file at |path|. */
struct jwt_minter *jwt_minter_load(const char *path, const struct jwt_mint_config *cfg,
                                   char *err, size_t errlen);

/* Frees |m| and wipes its secret. jwt_minter_free(NULL) is a no-op. */
void jwt_minter_free(struct jwt_minter *m);

/* The JWS alg the minter signs with ("ES256", ...), owned by the minter. */
const char *jwt_minter_alg(const struct jwt_minter *m);

/* Mints the token of client |index| at time |now| (seconds since the epoch)
 * into |out| (capacity |cap|, owned by the caller), NUL-terminated, and
 * stores its length in *len. Returns 0 if it does not fit or signing failed. */
int jwt_minter_mint(const struct jwt_minter *m, uint32_t index, int64_t now, char *out, size_t cap,
                    size_t *len);

#endif
