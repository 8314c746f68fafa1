/*
 * One password hash in the formats Mosquitto's password files use:
 *
 *   $6$SALT$HASH                 SHA-512(password || salt), mosquitto 1.x
 *   $7$ITER$SALT$HASH            PBKDF2-HMAC-SHA512, 64-byte output;
 *                                mosquitto 2.0 writes 101 iterations and a
 *                                12-byte salt, 2.1 writes 210000 and 64 bytes
 *   $argon2id$v=19$m=M,t=T,p=P$SALT$HASH
 *                                the PHC string mosquitto 2.1 writes
 *
 * SALT and HASH are standard base64: padded in $6$/$7$ (unpadded accepted),
 * unpadded in PHC strings. Parsing copies everything it needs, so a parsed
 * hash owns no pointers and can be copied with memcpy.
 */
#ifndef PROXY_AUTH_PWHASH_H
#define PROXY_AUTH_PWHASH_H

#include <stddef.h>
#include <stdint.h>

#define PWHASH_MAX_SALT 128
#define PWHASH_MAX_HASH 128
/* Bounds on parameters read from a file. They exist to catch typos that
 * would make every login take minutes, not to judge strength. */
#define PWHASH_MAX_PBKDF2_ITER 10000000u
#define PWHASH_MAX_ARGON2_MEM_KIB (1u << 20)   /* 1 GiB */
#define PWHASH_MAX_ARGON2_PASSES 64u
#define PWHASH_MAX_ARGON2_LANES 64u

/* What `mqtls passwd` writes unless told otherwise. PBKDF2 takes
 * mosquitto 2.1's iteration count (OWASP's 2023 advice for
 * PBKDF2-HMAC-SHA512) but a 12-byte salt, because mosquitto 2.0 refuses
 * any other salt length and a file should stay readable by both; argon2id
 * uses OWASP's 19 MiB, 2 passes, 1 lane, which costs about as much CPU as
 * the PBKDF2 default while being memory-hard. */
#define PWHASH_DEFAULT_PBKDF2_ITER 210000u
#define PWHASH_DEFAULT_PBKDF2_SALT 12u
#define PWHASH_DEFAULT_ARGON2_MEM_KIB 19456u
#define PWHASH_DEFAULT_ARGON2_PASSES 2u
#define PWHASH_DEFAULT_ARGON2_LANES 1u
#define PWHASH_DEFAULT_ARGON2_SALT 16u
#define PWHASH_DEFAULT_ARGON2_HASH 32u

enum pwhash_scheme {
	PWHASH_SHA512,          /* $6$ */
	PWHASH_PBKDF2_SHA512,   /* $7$ */
	PWHASH_ARGON2ID,        /* $argon2id$ */
};

struct pwhash {
	enum pwhash_scheme scheme;
	uint32_t iterations;    /* PBKDF2 iterations, or argon2 passes (t) */
	uint32_t mem_kib;       /* argon2 only (m) */
	uint32_t lanes;         /* argon2 only (p) */
	uint32_t version;       /* argon2 only: 0x10 or 0x13 */
	size_t salt_len;
	size_t hash_len;
	uint8_t salt[PWHASH_MAX_SALT];
	uint8_t hash[PWHASH_MAX_HASH];
};

/* Parses the `len` characters at `s` (no trailing newline) into `*out`.
 * Returns 1 on success; on failure returns 0 and points `*why` at a static
 * description that never quotes the input. */
int pwhash_parse(const char *s, size_t len, struct pwhash *out, const char **why);

/* Writes `h` in the file format described above, NUL-terminated, into
 * `out` (capacity `cap`, owned by the caller). Returns 1, or 0 if it does
 * not fit. */
int pwhash_format(const struct pwhash *h, char *out, size_t cap);

/* Fills `*h` for `scheme` with the default parameters, a fresh random salt
 * and the hash of `pw`. Returns 1 on success, 0 on failure. */
int pwhash_create(struct pwhash *h, enum pwhash_scheme scheme, const uint8_t *pw, size_t pwlen);

/* Computes the hash of `pw` under the scheme, parameters and salt of `h`
 * into `out` (`h->hash_len` bytes, owned by the caller). Returns 1 on
 * success, 0 if the computation failed (for argon2: out of memory). */
int pwhash_compute(const struct pwhash *h, const uint8_t *pw, size_t pwlen, uint8_t *out);

/* Returns 1 if `pw` matches `h`, 0 otherwise (including when the
 * computation itself failed). The final comparison is constant-time. */
int pwhash_verify(const struct pwhash *h, const uint8_t *pw, size_t pwlen);

/* A rough estimate of the CPU time one pwhash_verify() of `h` takes, in
 * microseconds, from per-unit costs measured on a 2020s x86-64 core. It
 * lets a caller decide whether to run the check off its event loop. */
uint32_t pwhash_cost_us(const struct pwhash *h);

#endif
