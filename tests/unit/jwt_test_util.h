/*
 * Helpers shared by the JWT tests: keys made at test time, their public
 * halves as PEM and JWK, and tokens signed here with BoringSSL directly
 * (independently of the code under test, including its base64).
 */
#ifndef TESTS_UNIT_JWT_TEST_UTIL_H
#define TESTS_UNIT_JWT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define TEST_NOW 1700000000

struct test_keys {
	EVP_PKEY *rsa, *ec256, *ec384, *ed25519, *rsa1024;
	uint8_t secret[64];
};

static EVP_PKEY *gen_rsa(int bits)
{
	EVP_PKEY *pkey = EVP_PKEY_new();
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();

	if (!pkey || !rsa || !e || !BN_set_word(e, RSA_F4) ||
	    !RSA_generate_key_ex(rsa, bits, e, NULL) || !EVP_PKEY_assign_RSA(pkey, rsa))
		abort();
	BN_free(e);
	return pkey;
}

static EVP_PKEY *gen_ec(int nid)
{
	EVP_PKEY *pkey = EVP_PKEY_new();
	EC_KEY *ec = EC_KEY_new_by_curve_name(nid);

	if (!pkey || !ec || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec))
		abort();
	return pkey;
}

static EVP_PKEY *gen_ed25519(void)
{
	uint8_t seed[32];

	for (size_t i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i * 13 + 1);
	return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

static void test_keys_make(struct test_keys *k)
{
	k->rsa = gen_rsa(2048);
	k->rsa1024 = gen_rsa(1024);
	k->ec256 = gen_ec(NID_X9_62_prime256v1);
	k->ec384 = gen_ec(NID_secp384r1);
	k->ed25519 = gen_ed25519();
	for (size_t i = 0; i < sizeof(k->secret); i++)
		k->secret[i] = (uint8_t)(0xa0 ^ i);
}

static void test_keys_free(struct test_keys *k)
{
	EVP_PKEY_free(k->rsa);
	EVP_PKEY_free(k->rsa1024);
	EVP_PKEY_free(k->ec256);
	EVP_PKEY_free(k->ec384);
	EVP_PKEY_free(k->ed25519);
}

/* Appends the public key of `pkey` as a PEM "PUBLIC KEY" block to `out`
 * (capacity `cap`, NUL-terminated). */
static void pem_append(char *out, size_t cap, EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t len, have = strlen(out);

	if (!bio || !PEM_write_bio_PUBKEY(bio, pkey) || !BIO_mem_contents(bio, &data, &len) ||
	    have + len + 1 > cap)
		abort();
	memcpy(out + have, data, len);
	out[have + len] = '\0';
	BIO_free(bio);
}

/* base64url without padding, by way of BoringSSL's standard encoder. */
static char *b64url(const uint8_t *in, size_t len)
{
	size_t cap = (len + 2) / 3 * 4 + 1;
	char *out = malloc(cap), *p;

	if (!out)
		abort();
	EVP_EncodeBlock((uint8_t *)out, in, len);
	for (p = out; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = '\0';
	}
	return out;
}

static char *b64url_bn(const BIGNUM *bn, size_t pad)
{
	uint8_t buf[1024];
	size_t n = pad ? pad : BN_num_bytes(bn);

	if (n > sizeof(buf) || !BN_bn2bin_padded(buf, n, bn))
		abort();
	return b64url(buf, n);
}

/* One JWK for the public half of `pkey` (or the secret when pkey is NULL),
 * with optional extra members such as "\"kid\":\"a\"". */
static char *jwk_of(EVP_PKEY *pkey, const uint8_t *secret, size_t slen, const char *extra)
{
	char *out = malloc(4096), *a = NULL, *b = NULL;
	const char *sep = extra && *extra ? "," : "";

	if (!out)
		abort();
	if (pkey == NULL) {
		a = b64url(secret, slen);
		snprintf(out, 4096, "{\"kty\":\"oct\",\"k\":\"%s\"%s%s}", a, sep, extra ? extra : "");
	} else if (EVP_PKEY_id(pkey) == EVP_PKEY_RSA) {
		const RSA *rsa = EVP_PKEY_get0_RSA(pkey);

		a = b64url_bn(RSA_get0_n(rsa), 0);
		b = b64url_bn(RSA_get0_e(rsa), 0);
		snprintf(out, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s%s}", a, b, sep,
			 extra ? extra : "");
	} else if (EVP_PKEY_id(pkey) == EVP_PKEY_EC) {
		const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pkey);
		const EC_GROUP *g = EC_KEY_get0_group(ec);
		int p256 = EC_GROUP_get_curve_name(g) == NID_X9_62_prime256v1;
		BIGNUM *x = BN_new(), *y = BN_new();

		if (!EC_POINT_get_affine_coordinates_GFp(g, EC_KEY_get0_public_key(ec), x, y, NULL))
			abort();
		a = b64url_bn(x, p256 ? 32 : 48);
		b = b64url_bn(y, p256 ? 32 : 48);
		snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s%s}",
			 p256 ? "P-256" : "P-384", a, b, sep, extra ? extra : "");
		BN_free(x);
		BN_free(y);
	} else {
		uint8_t raw[32];
		size_t n = sizeof(raw);

		if (!EVP_PKEY_get_raw_public_key(pkey, raw, &n))
			abort();
		a = b64url(raw, n);
		snprintf(out, 4096, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"%s%s}", a, sep,
			 extra ? extra : "");
	}
	free(a);
	free(b);
	return out;
}

/* Signs `input` with `alg` into `sig` (capacity 1024); returns its length. */
static size_t sign_raw(const char *alg, EVP_PKEY *pkey, const uint8_t *secret, size_t slen,
		       const char *input, uint8_t *sig)
{
	const EVP_MD *md = strstr(alg, "384") ? EVP_sha384() :
			   strstr(alg, "512") ? EVP_sha512() : EVP_sha256();
	size_t len = 1024;
	unsigned ulen;

	if (alg[0] == 'H') {
		if (!HMAC(md, secret, slen, (const uint8_t *)input, strlen(input), sig, &ulen))
			abort();
		return ulen;
	}
	if (alg[0] == 'E' && alg[1] == 'S') {
		uint8_t digest[64];
		unsigned dlen;
		size_t n = alg[2] == '2' ? 32 : 48;
		ECDSA_SIG *es;

		EVP_Digest(input, strlen(input), digest, &dlen, md, NULL);
		es = ECDSA_do_sign(digest, dlen, EVP_PKEY_get0_EC_KEY(pkey));
		if (!es || !BN_bn2bin_padded(sig, n, es->r) || !BN_bn2bin_padded(sig + n, n, es->s))
			abort();
		ECDSA_SIG_free(es);
		return 2 * n;
	}
	{
		EVP_MD_CTX ctx;
		EVP_PKEY_CTX *pctx;

		EVP_MD_CTX_init(&ctx);
		if (!EVP_DigestSignInit(&ctx, &pctx, strcmp(alg, "EdDSA") == 0 ? NULL : md, NULL, pkey))
			abort();
		if (alg[0] == 'P' && (!EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ||
				      !EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1)))
			abort();
		if (!EVP_DigestSign(&ctx, sig, &len, (const uint8_t *)input, strlen(input)))
			abort();
		EVP_MD_CTX_cleanup(&ctx);
		return len;
	}
}

/* A compact JWS of the given header and payload JSON texts. */
static char *make_token(const char *alg, EVP_PKEY *pkey, const uint8_t *secret, size_t slen,
			const char *header, const char *payload)
{
	char *h = b64url((const uint8_t *)header, strlen(header));
	char *p = b64url((const uint8_t *)payload, strlen(payload));
	size_t n = strlen(h) + strlen(p) + 2000;
	char *tok = malloc(n), *s;
	uint8_t sig[1024];
	size_t siglen;

	if (!tok)
		abort();
	snprintf(tok, n, "%s.%s", h, p);
	siglen = sign_raw(alg, pkey, secret, slen, tok, sig);
	s = b64url(sig, siglen);
	strcat(tok, ".");
	strcat(tok, s);
	free(h);
	free(p);
	free(s);
	return tok;
}

#endif
