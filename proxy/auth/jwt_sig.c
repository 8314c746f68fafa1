/*
 * JWS signature algorithms; see jwt_sig.h.
 */
#include "proxy/auth/jwt_sig.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "proxy/auth/ct.h"

/* EVP_PKEY_CTX_set_rsa_pss_saltlen's "as long as the digest". */
#define PSS_SALT_IS_DIGEST_LEN (-1)

enum sig_kind { SIG_RSA_PKCS1, SIG_RSA_PSS, SIG_ECDSA, SIG_EDDSA, SIG_HMAC };

struct jwt_alg {
	const char *name;
	enum sig_kind kind;
	enum jwt_key_type key;          /* for RSA and HMAC, any of that family */
	const EVP_MD *(*md)(void);      /* NULL for EdDSA */
	size_t ec_scalar;               /* ECDSA: bytes of r and of s */
};

static const struct jwt_alg algs[] = {
	{ "RS256", SIG_RSA_PKCS1, JWT_KEY_RSA, EVP_sha256, 0 },
	{ "RS384", SIG_RSA_PKCS1, JWT_KEY_RSA, EVP_sha384, 0 },
	{ "RS512", SIG_RSA_PKCS1, JWT_KEY_RSA, EVP_sha512, 0 },
	{ "PS256", SIG_RSA_PSS, JWT_KEY_RSA, EVP_sha256, 0 },
	{ "PS384", SIG_RSA_PSS, JWT_KEY_RSA, EVP_sha384, 0 },
	{ "PS512", SIG_RSA_PSS, JWT_KEY_RSA, EVP_sha512, 0 },
	{ "ES256", SIG_ECDSA, JWT_KEY_EC_P256, EVP_sha256, 32 },
	{ "ES384", SIG_ECDSA, JWT_KEY_EC_P384, EVP_sha384, 48 },
	{ "EdDSA", SIG_EDDSA, JWT_KEY_ED25519, NULL, 0 },
	{ "HS256", SIG_HMAC, JWT_KEY_HMAC, EVP_sha256, 0 },
	{ "HS384", SIG_HMAC, JWT_KEY_HMAC, EVP_sha384, 0 },
	{ "HS512", SIG_HMAC, JWT_KEY_HMAC, EVP_sha512, 0 },
};

const struct jwt_alg *jwt_alg_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
			return &algs[i];
	return NULL;
}

const char *jwt_alg_name(const struct jwt_alg *alg)
{
	return alg->name;
}

int jwt_key_fits(const struct jwt_key *key, const struct jwt_alg *alg)
{
	if (key->type != alg->key)
		return 0;
	if (key->alg != NULL && strcmp(key->alg, alg->name) != 0)
		return 0;
	if (alg->kind == SIG_HMAC && key->secret_len < EVP_MD_size(alg->md()))
		return 0;
	return 1;
}

/* RSA (PKCS #1 v1.5 or PSS) and Ed25519 through EVP_DigestVerify. */
static int verify_evp(const struct jwt_key *key, const struct jwt_alg *alg, const uint8_t *msg,
		      size_t msglen, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX ctx;
	EVP_PKEY_CTX *pctx = NULL;
	int ok = 0;

	EVP_MD_CTX_init(&ctx);
	if (!EVP_DigestVerifyInit(&ctx, &pctx, alg->md ? alg->md() : NULL, NULL, key->pkey))
		goto err;
	/* RFC 7518 3.5: the salt is as long as the hash, MGF1 uses the same
	 * hash (BoringSSL's default when only the digest is set). */
	if (alg->kind == SIG_RSA_PSS &&
	    (!EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ||
	     !EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_IS_DIGEST_LEN)))
		goto err;
	ok = EVP_DigestVerify(&ctx, sig, siglen, msg, msglen);
err:
	EVP_MD_CTX_cleanup(&ctx);
	ERR_clear_error();
	return ok == 1;
}

/* JWS carries ECDSA signatures as r || s, each zero-padded to the curve
 * size (RFC 7518 3.4), not as DER. */
static int verify_ecdsa(const struct jwt_key *key, const struct jwt_alg *alg,
			const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned dlen;
	ECDSA_SIG *esig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int ok = 0;

	if (siglen != 2 * alg->ec_scalar)
		return 0;
	if (!EVP_Digest(msg, msglen, digest, &dlen, alg->md(), NULL))
		goto err;
	r = BN_bin2bn(sig, alg->ec_scalar, NULL);
	s = BN_bin2bn(sig + alg->ec_scalar, alg->ec_scalar, NULL);
	esig = ECDSA_SIG_new();
	if (r == NULL || s == NULL || esig == NULL || !ECDSA_SIG_set0(esig, r, s))
		goto err;
	r = s = NULL;
	ok = ECDSA_do_verify(digest, dlen, esig, EVP_PKEY_get0_EC_KEY(key->pkey));
err:
	ECDSA_SIG_free(esig);
	BN_free(r);
	BN_free(s);
	ERR_clear_error();
	return ok == 1;
}

static int verify_hmac(const struct jwt_key *key, const struct jwt_alg *alg, const uint8_t *msg,
		       size_t msglen, const uint8_t *sig, size_t siglen)
{
	uint8_t tag[EVP_MAX_MD_SIZE];
	unsigned taglen;

	if (HMAC(alg->md(), key->secret, key->secret_len, msg, msglen, tag, &taglen) == NULL)
		return 0;
	/* The tag's length is public (it is fixed by alg), its bytes are not. */
	return siglen == taglen && ct_equal(tag, sig, taglen);
}

int jwt_sig_verify(const struct jwt_key *key, const struct jwt_alg *alg, const uint8_t *msg,
		   size_t msglen, const uint8_t *sig, size_t siglen)
{
	if (!jwt_key_fits(key, alg))
		return 0;
	switch (alg->kind) {
	case SIG_RSA_PKCS1:
	case SIG_RSA_PSS:
	case SIG_EDDSA:
		return verify_evp(key, alg, msg, msglen, sig, siglen);
	case SIG_ECDSA:
		return verify_ecdsa(key, alg, msg, msglen, sig, siglen);
	case SIG_HMAC:
		return verify_hmac(key, alg, msg, msglen, sig, siglen);
	}
	return 0;
}
