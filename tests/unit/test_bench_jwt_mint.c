/*
 * mqtls-bench's JWT minting: HS256 checked against an HMAC computed here,
 * the public-key algorithms against the proxy's own verifier, and the
 * claims template (%i, added iat/exp).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "bench/jwt_mint.h"
#include "proxy/auth/jwt.h"
#include "proxy/auth/jwt_keys.h"

#define NOW 1700000000

static const char secret[] = "0123456789abcdef0123456789abcdef-bench\n";

/* PEM of |pkey|: its private key, or its public half. Caller frees. */
static char *pem_of(EVP_PKEY *pkey, int private)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t len;
	char *out;

	assert_non_null(bio);
	assert_true(private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
	                    : PEM_write_bio_PUBKEY(bio, pkey));
	assert_true(BIO_mem_contents(bio, &data, &len));
	out = calloc(1, len + 1);
	assert_non_null(out);
	memcpy(out, data, len);
	BIO_free(bio);
	return out;
}

static EVP_PKEY *gen_key(int type)
{
	EVP_PKEY *pkey = EVP_PKEY_new();
	uint8_t seed[32];
	EC_KEY *ec;
	RSA *rsa;
	BIGNUM *e;

	assert_non_null(pkey);
	if (type == EVP_PKEY_EC) {
		ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
		assert_true(ec != NULL && EC_KEY_generate_key(ec) && EVP_PKEY_assign_EC_KEY(pkey, ec));
	} else if (type == EVP_PKEY_RSA) {
		rsa = RSA_new();
		e = BN_new();
		assert_true(rsa && e && BN_set_word(e, RSA_F4) && RSA_generate_key_ex(rsa, 2048, e, NULL));
		assert_true(EVP_PKEY_assign_RSA(pkey, rsa));
		BN_free(e);
	} else {
		EVP_PKEY_free(pkey);
		for (size_t i = 0; i < sizeof(seed); i++)
			seed[i] = (uint8_t)(i * 7 + 3);
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
		assert_non_null(pkey);
	}
	return pkey;
}

static struct jwt_minter *minter(const void *key, size_t len, const char *alg, const char *claims,
                                 const char *kid)
{
	struct jwt_mint_config cfg = { alg, claims, 3600, kid };
	char err[256] = "";
	struct jwt_minter *m = jwt_minter_new(key, len, &cfg, err, sizeof(err));

	if (m == NULL)
		print_error("minter: %s\n", err);
	return m;
}

static char *mint(const struct jwt_minter *m, uint32_t index)
{
	char *tok = malloc(JWT_MINT_MAX);
	size_t len = 0;

	assert_non_null(tok);
	assert_true(jwt_minter_mint(m, index, NOW, tok, JWT_MINT_MAX, &len));
	assert_int_equal(strlen(tok), len);
	return tok;
}

/* Decodes part |which| (0 header, 1 claims) of |tok| as a JSON object,
 * by way of BoringSSL's standard base64 decoder. */
static json_t *part(const char *tok, int which)
{
	const char *p = tok, *end;
	char b64[JWT_MINT_MAX];
	uint8_t raw[JWT_MINT_MAX];
	size_t n, rawlen;
	json_t *j;

	for (; which > 0; which--)
		p = strchr(p, '.') + 1;
	end = strchr(p, '.');
	n = (size_t)(end - p);
	memcpy(b64, p, n);
	for (size_t i = 0; i < n; i++)
		b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
	while (n % 4)
		b64[n++] = '=';
	assert_true(EVP_DecodeBase64(raw, &rawlen, sizeof(raw), (const uint8_t *)b64, n));
	j = json_loadb((const char *)raw, rawlen, 0, NULL);
	assert_non_null(j);
	return j;
}

static void assert_claims(const char *tok, const char *sub)
{
	json_t *c = part(tok, 1);

	assert_string_equal(json_string_value(json_object_get(c, "sub")), sub);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
	json_decref(c);
}

static void test_hs256_token_matches_an_hmac_computed_independently(void **state)
{
	struct jwt_minter *m = minter(secret, strlen(secret), NULL, NULL, NULL);
	char *tok, *dot, expect[128];
	uint8_t mac[32];
	unsigned mac_len;
	size_t i;

	(void)state;
	assert_non_null(m);
	assert_string_equal(jwt_minter_alg(m), "HS256");
	tok = mint(m, 7);
	dot = strrchr(tok, '.');
	/* The secret is the file without its trailing newline. */
	assert_non_null(HMAC(EVP_sha256(), secret, strlen(secret) - 1, (const uint8_t *)tok,
	                     (size_t)(dot - tok), mac, &mac_len));
	EVP_EncodeBlock((uint8_t *)expect, mac, mac_len);
	for (i = 0; expect[i] != '\0'; i++)
		expect[i] = expect[i] == '+' ? '-' : expect[i] == '/' ? '_' : expect[i] == '=' ? '\0' : expect[i];
	assert_string_equal(dot + 1, expect);
	assert_claims(tok, "bench-7");
	free(tok);
	jwt_minter_free(m);
}

/* Mints with the private key and checks with the proxy's verifier given
 * only the public key. */
static void check_public_key_alg(int type, const char *alg)
{
	EVP_PKEY *pkey = gen_key(type);
	char *priv = pem_of(pkey, 1), *pub = pem_of(pkey, 0), *tok, err[256];
	struct jwt_minter *m = minter(priv, strlen(priv), NULL, NULL, "k1");
	struct jwt_keyset *ks = jwt_keyset_parse((const uint8_t *)pub, strlen(pub), err, sizeof(err));
	struct jwt_claims claims;
	json_t *h;

	assert_non_null(m);
	assert_non_null(ks);
	assert_string_equal(jwt_minter_alg(m), alg);
	tok = mint(m, 42);
	assert_int_equal(jwt_verify(ks, tok, strlen(tok), NOW + 10, NULL, &claims, err, sizeof(err)), JWT_OK);
	assert_string_equal(claims.username, "bench-42");
	jwt_claims_cleanup(&claims);
	h = part(tok, 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "k1");
	json_decref(h);
	/* One changed claim byte and the signature no longer holds. */
	tok[strchr(tok, '.') - tok + 5] ^= 1;
	assert_int_not_equal(jwt_verify(ks, tok, strlen(tok), NOW + 10, NULL, &claims, err, sizeof(err)),
	                     JWT_OK);
	free(tok);
	jwt_keyset_free(ks);
	jwt_minter_free(m);
	free(priv);
	free(pub);
	EVP_PKEY_free(pkey);
}

static void test_es256_token_verifies_with_the_proxy_verifier(void **state)
{
	(void)state;
	check_public_key_alg(EVP_PKEY_EC, "ES256");
}

static void test_eddsa_token_verifies_with_the_proxy_verifier(void **state)
{
	(void)state;
	check_public_key_alg(EVP_PKEY_ED25519, "EdDSA");
}

static void test_rs256_token_verifies_with_the_proxy_verifier(void **state)
{
	(void)state;
	check_public_key_alg(EVP_PKEY_RSA, "RS256");
}

static void test_hs512_token_verifies_with_the_proxy_verifier(void **state)
{
	static const char long_secret[] =
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct jwt_minter *m = minter(long_secret, strlen(long_secret), "HS512", NULL, NULL);
	struct jwt_keyset *ks;
	struct jwt_claims claims;
	char err[256], *tok;

	(void)state;
	assert_non_null(m);
	ks = jwt_keyset_parse((const uint8_t *)long_secret, strlen(long_secret), err, sizeof(err));
	assert_non_null(ks);
	tok = mint(m, 0);
	assert_int_equal(jwt_verify(ks, tok, strlen(tok), NOW, NULL, &claims, err, sizeof(err)), JWT_OK);
	assert_string_equal(claims.username, "bench-0");
	jwt_claims_cleanup(&claims);
	free(tok);
	jwt_keyset_free(ks);
	jwt_minter_free(m);
}

static void test_every_percent_i_becomes_the_index(void **state)
{
	struct jwt_minter *m = minter(secret, strlen(secret), NULL,
	                              " {\"sub\":\"dev-%i\",\"n\":%i,\"t\":\"%d%%i\"} \n", NULL);
	char *tok;
	json_t *c;

	(void)state;
	assert_non_null(m);
	tok = mint(m, 4294967295u);
	c = part(tok, 1);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "dev-4294967295");
	assert_int_equal(json_integer_value(json_object_get(c, "n")), 4294967295LL);
	assert_string_equal(json_string_value(json_object_get(c, "t")), "%d%4294967295");
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
	json_decref(c);
	free(tok);
	jwt_minter_free(m);
}

static void test_template_times_are_kept_and_empty_object_gets_them(void **state)
{
	struct jwt_minter *m = minter(secret, strlen(secret), NULL, "{\"sub\":\"a\",\"exp\":5}", NULL);
	struct jwt_minter *e = minter(secret, strlen(secret), NULL, "{ }", NULL);
	char *tok;
	json_t *c;

	(void)state;
	assert_non_null(m);
	assert_non_null(e);
	tok = mint(m, 1);
	c = part(tok, 1);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 5);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
	assert_int_equal(json_object_size(c), 3);
	json_decref(c);
	free(tok);
	tok = mint(e, 1);
	c = part(tok, 1);
	assert_int_equal(json_object_size(c), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
	json_decref(c);
	free(tok);
	jwt_minter_free(m);
	jwt_minter_free(e);
}

static void test_bad_keys_templates_and_algs_are_refused(void **state)
{
	EVP_PKEY *pkey = gen_key(EVP_PKEY_EC);
	char *priv = pem_of(pkey, 1), *pub = pem_of(pkey, 0);

	(void)state;
	assert_null(minter("short secret\n", 13, NULL, NULL, NULL));
	assert_null(minter(secret, strlen(secret), NULL, "[1,2]", NULL));
	assert_null(minter(secret, strlen(secret), NULL, "{\"sub\":", NULL));
	assert_null(minter(secret, strlen(secret), NULL, "{\"a\":1,\"a\":2}", NULL));
	assert_null(minter(secret, strlen(secret), "ES256", NULL, NULL));
	assert_null(minter(secret, strlen(secret), "HS512", NULL, NULL));
	assert_null(minter(priv, strlen(priv), "RS256", NULL, NULL));
	assert_null(minter(priv, strlen(priv), "none", NULL, NULL));
	assert_null(minter(pub, strlen(pub), NULL, NULL, NULL));
	free(priv);
	free(pub);
	EVP_PKEY_free(pkey);
}

static void test_a_token_that_does_not_fit_is_not_minted(void **state)
{
	struct jwt_minter *m = minter(secret, strlen(secret), NULL, NULL, NULL);
	char small[64];
	size_t len;

	(void)state;
	assert_non_null(m);
	assert_false(jwt_minter_mint(m, 1, NOW, small, sizeof(small), &len));
	jwt_minter_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hs256_token_matches_an_hmac_computed_independently),
		cmocka_unit_test(test_es256_token_verifies_with_the_proxy_verifier),
		cmocka_unit_test(test_eddsa_token_verifies_with_the_proxy_verifier),
		cmocka_unit_test(test_rs256_token_verifies_with_the_proxy_verifier),
		cmocka_unit_test(test_hs512_token_verifies_with_the_proxy_verifier),
		cmocka_unit_test(test_every_percent_i_becomes_the_index),
		cmocka_unit_test(test_template_times_are_kept_and_empty_object_gets_them),
		cmocka_unit_test(test_bad_keys_templates_and_algs_are_refused),
		cmocka_unit_test(test_a_token_that_does_not_fit_is_not_minted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
