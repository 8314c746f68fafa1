/*
 * Mosquitto-compatible password hashes; see pwhash.h.
 */
#include "proxy/auth/pwhash.h"

#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "proxy/auth/b64.h"
#include "proxy/auth/ct.h"

/* Both SHA-512 schemes store exactly one SHA-512 output. */
#define SHA512_HASH_LEN 64
/* libargon2's own lower bounds. */
#define ARGON2_MIN_SALT 8
#define ARGON2_MIN_HASH 4

/* Takes the characters up to the next '$' (consuming the '$'), or, when
 * `last` is set, all that remains, which must then hold no '$'. */
static int take_field(CBS *in, CBS *out, int last)
{
	if (last) {
		*out = *in;
		CBS_skip(in, CBS_len(in));
		return memchr(CBS_data(out), '$', CBS_len(out)) == NULL;
	}
	return CBS_get_until_first(in, out, '$') && CBS_skip(in, 1);
}

/* A decimal number: 1-10 digits, no sign, no leading zero, at most max. */
static int parse_u32(const CBS *field, uint32_t max, uint32_t *out)
{
	CBS c = *field;
	uint64_t v = 0;
	uint8_t d;

	if (CBS_len(&c) == 0 || CBS_len(&c) > 10)
		return 0;
	if (CBS_len(&c) > 1 && CBS_data(&c)[0] == '0')
		return 0;
	while (CBS_get_u8(&c, &d)) {
		if (d < '0' || d > '9')
			return 0;
		v = v * 10 + (uint64_t)(d - '0');
	}
	if (v > max)
		return 0;
	*out = (uint32_t)v;
	return 1;
}

/* "name=N" with a decimal N in 1..max. */
static int parse_param(CBS *field, const char *name, uint32_t max, uint32_t *out)
{
	size_t n = strlen(name);

	if (CBS_len(field) <= n + 1 || memcmp(CBS_data(field), name, n) != 0 ||
	    CBS_data(field)[n] != '=')
		return 0;
	CBS_skip(field, n + 1);
	return parse_u32(field, max, out) && *out > 0;
}

static int decode(const CBS *field, int flags, uint8_t *out, size_t cap, size_t *outlen)
{
	return b64_decode((const char *)CBS_data(field), CBS_len(field), flags, out, cap, outlen);
}

static int parse_sha512(CBS *in, struct pwhash *h, const char **why)
{
	CBS salt, hash;

	*why = "malformed $6$ hash";
	if (!take_field(in, &salt, 0) || !take_field(in, &hash, 1))
		return 0;
	*why = "bad salt";
	if (!decode(&salt, B64_PAD_OPTIONAL, h->salt, sizeof(h->salt), &h->salt_len) ||
	    h->salt_len == 0)
		return 0;
	*why = "bad hash";
	if (!decode(&hash, B64_PAD_OPTIONAL, h->hash, sizeof(h->hash), &h->hash_len) ||
	    h->hash_len != SHA512_HASH_LEN)
		return 0;
	h->scheme = PWHASH_SHA512;
	return 1;
}

static int parse_pbkdf2(CBS *in, struct pwhash *h, const char **why)
{
	CBS iter, salt, hash;

	*why = "malformed $7$ hash";
	if (!take_field(in, &iter, 0) || !take_field(in, &salt, 0) || !take_field(in, &hash, 1))
		return 0;
	*why = "bad iteration count";
	if (!parse_u32(&iter, PWHASH_MAX_PBKDF2_ITER, &h->iterations) || h->iterations == 0)
		return 0;
	*why = "bad salt";
	if (!decode(&salt, B64_PAD_OPTIONAL, h->salt, sizeof(h->salt), &h->salt_len) ||
	    h->salt_len == 0)
		return 0;
	*why = "bad hash";
	if (!decode(&hash, B64_PAD_OPTIONAL, h->hash, sizeof(h->hash), &h->hash_len) ||
	    h->hash_len != SHA512_HASH_LEN)
		return 0;
	h->scheme = PWHASH_PBKDF2_SHA512;
	return 1;
}

/* After "$argon2id$": [v=N$]m=M,t=T,p=P$SALT$HASH. A missing version means
 * 0x10, as in the PHC format's reference implementation. */
static int parse_argon2id(CBS *in, struct pwhash *h, const char **why)
{
	CBS field, m, t, salt, hash;

	*why = "malformed argon2id parameters";
	if (!take_field(in, &field, 0))
		return 0;
	h->version = ARGON2_VERSION_10;
	if (CBS_len(&field) >= 2 && memcmp(CBS_data(&field), "v=", 2) == 0) {
		if (!parse_param(&field, "v", UINT32_MAX, &h->version) ||
		    (h->version != ARGON2_VERSION_10 && h->version != ARGON2_VERSION_13))
			return 0;
		if (!take_field(in, &field, 0))
			return 0;
	}
	if (!CBS_get_until_first(&field, &m, ',') || !CBS_skip(&field, 1) ||
	    !CBS_get_until_first(&field, &t, ',') || !CBS_skip(&field, 1))
		return 0;
	if (!parse_param(&m, "m", PWHASH_MAX_ARGON2_MEM_KIB, &h->mem_kib) ||
	    !parse_param(&t, "t", PWHASH_MAX_ARGON2_PASSES, &h->iterations) ||
	    !parse_param(&field, "p", PWHASH_MAX_ARGON2_LANES, &h->lanes))
		return 0;
	/* libargon2 refuses less than 8 KiB per lane. */
	if (h->mem_kib < 8 * h->lanes)
		return 0;
	*why = "malformed argon2id hash";
	if (!take_field(in, &salt, 0) || !take_field(in, &hash, 1))
		return 0;
	*why = "bad salt";
	if (!decode(&salt, 0, h->salt, sizeof(h->salt), &h->salt_len) ||
	    h->salt_len < ARGON2_MIN_SALT)
		return 0;
	*why = "bad hash";
	if (!decode(&hash, 0, h->hash, sizeof(h->hash), &h->hash_len) ||
	    h->hash_len < ARGON2_MIN_HASH)
		return 0;
	h->scheme = PWHASH_ARGON2ID;
	return 1;
}

int pwhash_parse(const char *s, size_t len, struct pwhash *out, const char **why)
{
	static const char p6[] = "$6$", p7[] = "$7$", pa[] = "$argon2id$";
	CBS in;

	memset(out, 0, sizeof(*out));
	if (len >= 3 && memcmp(s, p6, 3) == 0) {
		CBS_init(&in, (const uint8_t *)s + 3, len - 3);
		return parse_sha512(&in, out, why);
	}
	if (len >= 3 && memcmp(s, p7, 3) == 0) {
		CBS_init(&in, (const uint8_t *)s + 3, len - 3);
		return parse_pbkdf2(&in, out, why);
	}
	if (len >= sizeof(pa) - 1 && memcmp(s, pa, sizeof(pa) - 1) == 0) {
		CBS_init(&in, (const uint8_t *)s + sizeof(pa) - 1, len - (sizeof(pa) - 1));
		return parse_argon2id(&in, out, why);
	}
	*why = "unsupported or missing hash type (plain-text password?)";
	return 0;
}

/* Appends the base64 of `p` at `*o` and advances it; 0 if it does not fit. */
static int append_b64(char **o, char *end, const uint8_t *p, size_t n, int flags)
{
	if (!b64_encode(p, n, flags, *o, (size_t)(end - *o)))
		return 0;
	*o += strlen(*o);
	return 1;
}

int pwhash_format(const struct pwhash *h, char *out, size_t cap)
{
	char *o = out, *end = out + cap;
	int n, flags = B64_PAD;

	switch (h->scheme) {
	case PWHASH_SHA512:
		n = snprintf(out, cap, "$6$");
		break;
	case PWHASH_PBKDF2_SHA512:
		n = snprintf(out, cap, "$7$%u$", (unsigned)h->iterations);
		break;
	case PWHASH_ARGON2ID:
		n = snprintf(out, cap, "$argon2id$v=%u$m=%u,t=%u,p=%u$", (unsigned)h->version,
			     (unsigned)h->mem_kib, (unsigned)h->iterations, (unsigned)h->lanes);
		flags = 0;
		break;
	default:
		return 0;
	}
	if (n < 0 || (size_t)n >= cap)
		return 0;
	o += n;
	if (!append_b64(&o, end, h->salt, h->salt_len, flags) || end - o < 2)
		return 0;
	*o++ = '$';
	return append_b64(&o, end, h->hash, h->hash_len, flags);
}

/* Runs argon2id with one thread whatever the lane count: the result is the
 * same, and a verifier running on a worker pool should not fan out further. */
static int argon2id_compute(const struct pwhash *h, const uint8_t *pw, size_t pwlen,
			    uint8_t *out)
{
	argon2_context ctx;

	if (pwlen > UINT32_MAX)
		return 0;
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = out;
	ctx.outlen = (uint32_t)h->hash_len;
	ctx.pwd = (uint8_t *)(uintptr_t)pw;   /* not written: no CLEAR_PASSWORD flag */
	ctx.pwdlen = (uint32_t)pwlen;
	ctx.salt = (uint8_t *)(uintptr_t)h->salt;
	ctx.saltlen = (uint32_t)h->salt_len;
	ctx.t_cost = h->iterations;
	ctx.m_cost = h->mem_kib;
	ctx.lanes = h->lanes;
	ctx.threads = 1;
	ctx.version = h->version;
	ctx.flags = ARGON2_DEFAULT_FLAGS;
	return argon2_ctx(&ctx, Argon2_id) == ARGON2_OK;
}

int pwhash_compute(const struct pwhash *h, const uint8_t *pw, size_t pwlen, uint8_t *out)
{
	static const uint8_t empty[1];
	SHA512_CTX sha;

	if (pw == NULL)
		pw = empty;
	switch (h->scheme) {
	case PWHASH_SHA512:
		if (h->hash_len != SHA512_DIGEST_LENGTH)
			return 0;
		SHA512_Init(&sha);
		SHA512_Update(&sha, pw, pwlen);
		SHA512_Update(&sha, h->salt, h->salt_len);
		SHA512_Final(out, &sha);
		return 1;
	case PWHASH_PBKDF2_SHA512:
		return PKCS5_PBKDF2_HMAC((const char *)pw, pwlen, h->salt, h->salt_len,
					 h->iterations, EVP_sha512(), h->hash_len, out);
	case PWHASH_ARGON2ID:
		return argon2id_compute(h, pw, pwlen, out);
	}
	return 0;
}

int pwhash_verify(const struct pwhash *h, const uint8_t *pw, size_t pwlen)
{
	uint8_t got[PWHASH_MAX_HASH];
	int ok;

	if (h->hash_len == 0 || h->hash_len > sizeof(got))
		return 0;
	ok = pwhash_compute(h, pw, pwlen, got) && ct_equal(got, h->hash, h->hash_len);
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

int pwhash_create(struct pwhash *h, enum pwhash_scheme scheme, const uint8_t *pw, size_t pwlen)
{
	memset(h, 0, sizeof(*h));
	h->scheme = scheme;
	switch (scheme) {
	case PWHASH_SHA512:
		h->salt_len = 12;
		h->hash_len = SHA512_HASH_LEN;
		break;
	case PWHASH_PBKDF2_SHA512:
		h->iterations = PWHASH_DEFAULT_PBKDF2_ITER;
		h->salt_len = PWHASH_DEFAULT_PBKDF2_SALT;
		h->hash_len = SHA512_HASH_LEN;
		break;
	case PWHASH_ARGON2ID:
		h->iterations = PWHASH_DEFAULT_ARGON2_PASSES;
		h->mem_kib = PWHASH_DEFAULT_ARGON2_MEM_KIB;
		h->lanes = PWHASH_DEFAULT_ARGON2_LANES;
		h->version = ARGON2_VERSION_13;
		h->salt_len = PWHASH_DEFAULT_ARGON2_SALT;
		h->hash_len = PWHASH_DEFAULT_ARGON2_HASH;
		break;
	default:
		return 0;
	}
	return RAND_bytes(h->salt, h->salt_len) && pwhash_compute(h, pw, pwlen, h->hash);
}

/* Per-unit CPU costs in nanoseconds, measured with the project's BoringSSL
 * (Debian's Android build) and libargon2 on one core of the development
 * machine: one SHA-512 of a short password 0.4 us, PBKDF2-HMAC-SHA512
 * 0.72 us per iteration (101: 78 us, 210000: 150 ms), argon2id 0.85-1.3 us
 * per KiB and pass (m=19456,t=2: 33 ms; m=65536,t=2: 166 ms). Only the
 * order of magnitude matters. */
#define COST_SHA512_NS 1000u
#define COST_PBKDF2_ITER_NS 720u
#define COST_ARGON2_KIB_PASS_NS 1000u

uint32_t pwhash_cost_us(const struct pwhash *h)
{
	uint64_t ns = COST_SHA512_NS;

	switch (h->scheme) {
	case PWHASH_SHA512:
		break;
	case PWHASH_PBKDF2_SHA512:
		ns = (uint64_t)h->iterations * COST_PBKDF2_ITER_NS;
		break;
	case PWHASH_ARGON2ID:
		ns = (uint64_t)h->mem_kib * h->iterations * COST_ARGON2_KIB_PASS_NS;
		break;
	}
	ns /= 1000;
	return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns ? ns : 1);
}
