/*
 * JWT verification (proxy/auth/jwt.c, jwt_sig.c). Keys are made at test
 * time and tokens signed here with BoringSSL; see jwt_test_util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/acl.h"
#include "proxy/auth/jwt.h"
#include "tests/unit/jwt_test_util.h"

#define STD_CLAIMS "{\"sub\":\"device-7\",\"exp\":1700000600,\"iat\":1700000000}"

static struct test_keys K;

static int group_setup(void **state)
{
	test_keys_make(&K);
	return 0;
}

static int group_teardown(void **state)
{
	test_keys_free(&K);
	return 0;
}

static struct jwt_keyset *keyset_from(const char *text)
{
	char err[256];
	struct jwt_keyset *ks = jwt_keyset_parse((const uint8_t *)text, strlen(text), err,
						 sizeof(err));

	if (ks == NULL)
		fail_msg("keyset: %s", err);
	return ks;
}

static struct jwt_keyset *pem_keyset(EVP_PKEY *pkey)
{
	char pem[8192] = "";

	pem_append(pem, sizeof(pem), pkey);
	return keyset_from(pem);
}

static struct jwt_keyset *secret_keyset(size_t len)
{
	char err[256];
	struct jwt_keyset *ks = jwt_keyset_parse(K.secret, len, err, sizeof(err));

	assert_non_null(ks);
	return ks;
}

/* Asserts that a `why` quotes no part of the token. */
static void assert_why_is_clean(const char *why, const char *token)
{
	const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;

	if (strlen(token) >= 8)
		assert_null(strstr(why, token));
	if (dot1 && dot2) {
		char part[64];
		size_t n;

		/* A 16-character stretch of each part is enough to notice. */
		n = (size_t)(dot1 - token) < 16 ? (size_t)(dot1 - token) : 16;
		memcpy(part, token, n);
		part[n] = '\0';
		if (n >= 8)
			assert_null(strstr(why, part));
		snprintf(part, sizeof(part), "%.16s", dot1 + 1);
		if (strlen(part) >= 8)
			assert_null(strstr(why, part));
		snprintf(part, sizeof(part), "%.16s", dot2 + 1);
		if (strlen(part) >= 8)
			assert_null(strstr(why, part));
	}
}

static enum jwt_result verify(const struct jwt_keyset *ks, const char *token,
			      const struct jwt_options *o)
{
	struct jwt_claims c;
	char why[256];
	enum jwt_result r = jwt_verify(ks, token, strlen(token), TEST_NOW, o, &c, why, sizeof(why));

	assert_why_is_clean(why, token);
	if (r == JWT_OK)
		assert_non_null(c.username);
	else
		assert_null(c.username);
	jwt_claims_cleanup(&c);
	return r;
}

/* Signs the standard claims with `alg` and checks that the key set built
 * from the key's PEM (or from the secret) accepts them. */
static void assert_alg_verifies(const char *alg, EVP_PKEY *pkey)
{
	char header[64];
	struct jwt_keyset *ks = pkey ? pem_keyset(pkey) : secret_keyset(sizeof(K.secret));
	struct jwt_claims c;
	char *tok;

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	tok = make_token(alg, pkey, K.secret, sizeof(K.secret), header, STD_CLAIMS);
	assert_int_equal(jwt_verify(ks, tok, strlen(tok), TEST_NOW, NULL, &c, NULL, 0), JWT_OK);
	assert_string_equal(c.username, "device-7");
	assert_int_equal(c.username_len, 8);
	assert_int_equal(c.has_exp, 1);
	assert_int_equal(c.exp, 1700000600);
	jwt_claims_cleanup(&c);
	/* The same token with the last signature character changed fails. */
	tok[strlen(tok) - 1] = tok[strlen(tok) - 1] == 'A' ? 'Q' : 'A';
	assert_int_not_equal(verify(ks, tok, NULL), JWT_OK);
	free(tok);
	jwt_keyset_free(ks);
}

static void test_rs256_token_verifies(void **s) { assert_alg_verifies("RS256", K.rsa); }
static void test_rs384_token_verifies(void **s) { assert_alg_verifies("RS384", K.rsa); }
static void test_rs512_token_verifies(void **s) { assert_alg_verifies("RS512", K.rsa); }
static void test_ps256_token_verifies(void **s) { assert_alg_verifies("PS256", K.rsa); }
static void test_ps384_token_verifies(void **s) { assert_alg_verifies("PS384", K.rsa); }
static void test_ps512_token_verifies(void **s) { assert_alg_verifies("PS512", K.rsa); }
static void test_es256_token_verifies(void **s) { assert_alg_verifies("ES256", K.ec256); }
static void test_es384_token_verifies(void **s) { assert_alg_verifies("ES384", K.ec384); }
static void test_eddsa_token_verifies(void **s) { assert_alg_verifies("EdDSA", K.ed25519); }
static void test_hs256_token_verifies(void **s) { assert_alg_verifies("HS256", NULL); }
static void test_hs384_token_verifies(void **s) { assert_alg_verifies("HS384", NULL); }
static void test_hs512_token_verifies(void **s) { assert_alg_verifies("HS512", NULL); }

static char *hs256(const char *header, const char *payload)
{
	return make_token("HS256", NULL, K.secret, sizeof(K.secret), header, payload);
}

#define HS_HDR "{\"alg\":\"HS256\"}"

static void test_expired_token_is_refused_and_leeway_is_honoured(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .leeway_s = 30 };
	char *at_now = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000000}");
	char *past = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1699999975}");
	char *long_past = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1699999970.5}");

	/* RFC 7519 4.1.4: not accepted on or after exp. */
	assert_int_equal(verify(ks, at_now, NULL), JWT_EXPIRED);
	assert_int_equal(verify(ks, past, &o), JWT_OK);
	assert_int_equal(verify(ks, long_past, &o), JWT_EXPIRED);
	free(at_now);
	free(past);
	free(long_past);
	jwt_keyset_free(ks);
}

static void test_token_before_nbf_or_issued_in_the_future_is_not_yet_valid(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .leeway_s = 30 };
	char *nbf = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"nbf\":1700000020}");
	char *iat = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"iat\":1700000100}");

	assert_int_equal(verify(ks, nbf, NULL), JWT_NOT_YET_VALID);
	assert_int_equal(verify(ks, nbf, &o), JWT_OK);
	assert_int_equal(verify(ks, iat, &o), JWT_NOT_YET_VALID);
	free(nbf);
	free(iat);
	jwt_keyset_free(ks);
}

static void test_token_without_exp_is_refused_unless_allowed(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .allow_missing_exp = 1 };
	struct jwt_claims c;
	char *tok = hs256(HS_HDR, "{\"sub\":\"a\"}");

	assert_int_equal(verify(ks, tok, NULL), JWT_MISSING_EXP);
	assert_int_equal(jwt_verify(ks, tok, strlen(tok), TEST_NOW, &o, &c, NULL, 0), JWT_OK);
	assert_int_equal(c.has_exp, 0);
	jwt_claims_cleanup(&c);
	free(tok);
	jwt_keyset_free(ks);
}

static void test_time_claims_that_are_not_numbers_are_malformed(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *a = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":\"1700000600\"}");
	char *b = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1e300}");

	assert_int_equal(verify(ks, a, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, b, NULL), JWT_MALFORMED);
	free(a);
	free(b);
	jwt_keyset_free(ks);
}

static void test_wrong_or_missing_issuer_is_refused_when_one_is_configured(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .issuer = "https://idp.example" };
	char *good = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"iss\":\"https://idp.example\"}");
	char *bad = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"iss\":\"https://evil.example\"}");
	char *none = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600}");
	struct jwt_claims c;
	char why[256];

	assert_int_equal(verify(ks, good, &o), JWT_OK);
	assert_int_equal(verify(ks, bad, &o), JWT_BAD_ISSUER);
	assert_int_equal(verify(ks, none, &o), JWT_BAD_ISSUER);
	assert_int_equal(verify(ks, bad, NULL), JWT_OK);
	/* The log line names the issuer it refused. */
	jwt_verify(ks, bad, strlen(bad), TEST_NOW, &o, &c, why, sizeof(why));
	assert_non_null(strstr(why, "evil.example"));
	free(good);
	free(bad);
	free(none);
	jwt_keyset_free(ks);
}

static void test_audience_may_be_a_string_or_an_array(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .audience = "mqtt" };
	char *str = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"aud\":\"mqtt\"}");
	char *arr = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"aud\":[\"web\",\"mqtt\"]}");
	char *other = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600,\"aud\":[\"web\",\"mqttx\"]}");
	char *none = hs256(HS_HDR, "{\"sub\":\"a\",\"exp\":1700000600}");

	assert_int_equal(verify(ks, str, &o), JWT_OK);
	assert_int_equal(verify(ks, arr, &o), JWT_OK);
	assert_int_equal(verify(ks, other, &o), JWT_BAD_AUDIENCE);
	assert_int_equal(verify(ks, none, &o), JWT_BAD_AUDIENCE);
	free(str);
	free(arr);
	free(other);
	free(none);
	jwt_keyset_free(ks);
}

static void test_username_comes_from_the_configured_claim(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	struct jwt_options o = { .username_claim = "client_id" };
	char *tok = hs256(HS_HDR, "{\"sub\":\"a\",\"client_id\":\"dev\\u00e9\",\"exp\":1700000600}");
	char *num = hs256(HS_HDR, "{\"sub\":7,\"exp\":1700000600}");
	char *empty = hs256(HS_HDR, "{\"sub\":\"\",\"exp\":1700000600}");
	struct jwt_claims c;

	assert_int_equal(jwt_verify(ks, tok, strlen(tok), TEST_NOW, &o, &c, NULL, 0), JWT_OK);
	assert_string_equal(c.username, "dev\xc3\xa9");
	jwt_claims_cleanup(&c);
	assert_int_equal(verify(ks, num, NULL), JWT_NO_USERNAME_CLAIM);
	assert_int_equal(verify(ks, empty, NULL), JWT_NO_USERNAME_CLAIM);
	assert_int_equal(verify(ks, num, &o), JWT_NO_USERNAME_CLAIM);
	free(tok);
	free(num);
	free(empty);
	jwt_keyset_free(ks);
}

/* The EMQX-style `acl` claim becomes a table whose %u is the token's user;
 * a claim of another shape refuses the token. */
static void test_acl_claim(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *tok = hs256(HS_HDR, "{\"sub\":\"d7\",\"exp\":1700000600,"
	                          "\"acl\":{\"pub\":[\"up/%u/#\"],\"sub\":[\"cmd/%u\"],\"all\":[\"both/#\"]}}");
	char *none = hs256(HS_HDR, "{\"sub\":\"d7\",\"exp\":1700000600}");
	const char *const bad[] = {
		"{\"sub\":\"d7\",\"exp\":1700000600,\"acl\":[\"a/#\"]}",
		"{\"sub\":\"d7\",\"exp\":1700000600,\"acl\":{\"pub\":\"a/#\"}}",
		"{\"sub\":\"d7\",\"exp\":1700000600,\"acl\":{\"pub\":[7]}}",
		"{\"sub\":\"d7\",\"exp\":1700000600,\"acl\":{\"sub\":[\"a/#/b\"]}}",
	};
	struct jwt_claims c;

	assert_int_equal(jwt_verify(ks, tok, strlen(tok), TEST_NOW, NULL, &c, NULL, 0), JWT_OK);
	assert_non_null(c.acl);
	assert_true(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"up/d7/t", 7, ACL_WRITE));
	assert_false(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"up/d8/t", 7, ACL_WRITE));
	assert_false(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"up/d7/t", 7, ACL_READ));
	assert_true(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"cmd/d7", 6, ACL_READ));
	assert_true(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"both/1", 6, ACL_READ));
	assert_true(acl_check(c.acl, "d7", 2, "x", 1, (const uint8_t *)"both/1", 6, ACL_WRITE));
	jwt_claims_cleanup(&c);
	assert_null(c.acl);
	assert_int_equal(jwt_verify(ks, none, strlen(none), TEST_NOW, NULL, &c, NULL, 0), JWT_OK);
	assert_null(c.acl);
	jwt_claims_cleanup(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = hs256(HS_HDR, bad[i]);

		assert_int_equal(verify(ks, t, NULL), JWT_MALFORMED);
		free(t);
	}
	free(tok);
	free(none);
	jwt_keyset_free(ks);
}

static void test_tampered_payload_fails_the_signature(void **s)
{
	struct jwt_keyset *ks = pem_keyset(K.ec256);
	char *tok = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}", STD_CLAIMS);
	char *forged = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}",
				  "{\"sub\":\"admin\",\"exp\":1700000600}");
	char *mixed = malloc(strlen(tok) + strlen(forged));
	const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	const char *f1 = strchr(forged, '.'), *f2 = strrchr(forged, '.');

	/* Header and signature of one token around the payload of another. */
	sprintf(mixed, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(f2 - f1), f1, d2);
	assert_int_equal(verify(ks, mixed, NULL), JWT_BAD_SIGNATURE);
	free(tok);
	free(forged);
	free(mixed);
	jwt_keyset_free(ks);
}

static void test_alg_none_is_refused(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *p = b64url((const uint8_t *)STD_CLAIMS, strlen(STD_CLAIMS));
	const char *hdrs[] = { "eyJhbGciOiJub25lIn0", /* {"alg":"none"} */
			       "eyJhbGciOiJOb05lIn0" /* {"alg":"NoNe"} */ };
	char tok[512];

	for (size_t i = 0; i < 2; i++) {
		snprintf(tok, sizeof(tok), "%s.%s.", hdrs[i], p);
		assert_int_equal(verify(ks, tok, NULL), JWT_MALFORMED);   /* empty signature */
		snprintf(tok, sizeof(tok), "%s.%s.AAAA", hdrs[i], p);
		assert_int_equal(verify(ks, tok, NULL), JWT_BAD_ALG);
	}
	free(p);
	jwt_keyset_free(ks);
}

static void test_hs256_signed_with_the_rsa_public_key_is_refused(void **s)
{
	char pem[8192] = "";
	struct jwt_keyset *ks;
	char *tok;

	/* The classic confusion: the attacker uses the public key's PEM text,
	 * which they know, as an HMAC secret. */
	pem_append(pem, sizeof(pem), K.rsa);
	ks = keyset_from(pem);
	tok = make_token("HS256", NULL, (const uint8_t *)pem, strlen(pem), HS_HDR, STD_CLAIMS);
	assert_int_equal(verify(ks, tok, NULL), JWT_BAD_ALG);
	free(tok);
	/* Nor is an RSA key usable for an EC algorithm. */
	tok = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}", STD_CLAIMS);
	assert_int_equal(verify(ks, tok, NULL), JWT_BAD_ALG);
	free(tok);
	jwt_keyset_free(ks);
}

static void test_curve_must_match_the_algorithm(void **s)
{
	struct jwt_keyset *ks = pem_keyset(K.ec384);
	char *tok = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}", STD_CLAIMS);

	assert_int_equal(verify(ks, tok, NULL), JWT_BAD_ALG);
	free(tok);
	jwt_keyset_free(ks);
}

static void test_hmac_secret_shorter_than_the_hash_is_not_used(void **s)
{
	struct jwt_keyset *ks = secret_keyset(32);
	char *tok = make_token("HS384", NULL, K.secret, 32, "{\"alg\":\"HS384\"}", STD_CLAIMS);

	/* RFC 7518 3.2: HS384 needs a key of at least 48 bytes. */
	assert_int_equal(verify(ks, tok, NULL), JWT_BAD_ALG);
	free(tok);
	jwt_keyset_free(ks);
}

static void test_non_canonical_base64url_is_malformed(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *tok = hs256(HS_HDR, STD_CLAIMS);
	char buf[1024];
	size_t n = strlen(tok);

	assert_int_equal(verify(ks, tok, NULL), JWT_OK);
	/* Padding, a standard-alphabet character, white space. */
	snprintf(buf, sizeof(buf), "%s=", tok);
	assert_int_equal(verify(ks, buf, NULL), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s", tok);
	buf[3] = '+';
	assert_int_equal(verify(ks, buf, NULL), JWT_MALFORMED);
	snprintf(buf, sizeof(buf), " %s", tok);
	assert_int_equal(verify(ks, buf, NULL), JWT_MALFORMED);
	/* An HS256 tag is 32 bytes: 43 characters whose last carries two
	 * unused bits; setting one gives another spelling of the same bytes. */
	snprintf(buf, sizeof(buf), "%s", tok);
	{
		static const char abc[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		int v = (int)(strchr(abc, buf[n - 1]) - abc);

		buf[n - 1] = abc[v | 1];
		if (v != (v | 1))
			assert_int_equal(verify(ks, buf, NULL), JWT_MALFORMED);
		buf[n - 1] = abc[v ^ 2];
		assert_int_not_equal(verify(ks, buf, NULL), JWT_OK);
	}
	free(tok);
	jwt_keyset_free(ks);
}

static void test_bad_shapes_and_json_are_malformed(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *not_json = hs256("{alg:HS256}", STD_CLAIMS);
	char *array = hs256("[\"HS256\"]", STD_CLAIMS);
	char *dup = hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", STD_CLAIMS);
	char *crit = hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", STD_CLAIMS);
	char *bad_payload = hs256(HS_HDR, "{\"sub\":\"a\",");
	char *dup_payload = hs256(HS_HDR, "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1700000600}");
	char *kid_num = hs256("{\"alg\":\"HS256\",\"kid\":7}", STD_CLAIMS);
	char *five = malloc(strlen(dup) + 16);

	assert_int_equal(verify(ks, not_json, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, array, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, dup, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, crit, NULL), JWT_MALFORMED);
	/* Signed correctly, so only the payload's JSON is at fault. */
	assert_int_equal(verify(ks, bad_payload, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, dup_payload, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, kid_num, NULL), JWT_MALFORMED);
	sprintf(five, "%s.AAAA.AAAA", dup);
	assert_int_equal(verify(ks, five, NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, "", NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, "..", NULL), JWT_MALFORMED);
	assert_int_equal(verify(ks, "abc", NULL), JWT_MALFORMED);
	free(not_json);
	free(array);
	free(dup);
	free(crit);
	free(bad_payload);
	free(dup_payload);
	free(kid_num);
	free(five);
	jwt_keyset_free(ks);
}

static void test_token_over_the_length_limit_is_refused_unread(void **s)
{
	struct jwt_keyset *ks = secret_keyset(sizeof(K.secret));
	char *big = malloc(JWT_MAX_LEN + 2);

	memset(big, 'A', JWT_MAX_LEN + 1);
	big[JWT_MAX_LEN + 1] = '\0';
	assert_int_equal(verify(ks, big, NULL), JWT_TOO_LONG);
	free(big);
	jwt_keyset_free(ks);
}

static void test_kid_selects_the_key_from_a_jwks(void **s)
{
	char *a = jwk_of(K.ec256, NULL, 0, "\"kid\":\"a\"");
	char *b = jwk_of(K.rsa, NULL, 0, "\"kid\":\"b\",\"use\":\"sig\"");
	char jwks[8192];
	struct jwt_keyset *ks;
	char *ok, *wrong, *nokid, *other;

	snprintf(jwks, sizeof(jwks), "{\"keys\":[%s,%s]}", a, b);
	ks = keyset_from(jwks);
	assert_int_equal(jwt_keyset_count(ks), 2);
	ok = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"a\"}", STD_CLAIMS);
	wrong = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"c\"}", STD_CLAIMS);
	nokid = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}", STD_CLAIMS);
	/* Key "b" exists but is RSA: an ES256 token naming it finds no key. */
	other = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"b\"}", STD_CLAIMS);
	assert_int_equal(verify(ks, ok, NULL), JWT_OK);
	assert_int_equal(verify(ks, wrong, NULL), JWT_UNKNOWN_KID);
	assert_int_equal(verify(ks, nokid, NULL), JWT_OK);
	assert_int_equal(verify(ks, other, NULL), JWT_UNKNOWN_KID);
	free(a);
	free(b);
	free(ok);
	free(wrong);
	free(nokid);
	free(other);
	jwt_keyset_free(ks);
}

static void test_ecdsa_signature_in_der_form_is_refused(void **s)
{
	struct jwt_keyset *ks = pem_keyset(K.ec256);
	char *tok = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}", STD_CLAIMS);
	char *dot = strrchr(tok, '.'), *der64, buf[1024];
	uint8_t digest[32], *der = NULL;
	size_t derlen;
	unsigned dlen;
	ECDSA_SIG *es;

	*dot = '\0';
	EVP_Digest(tok, strlen(tok), digest, &dlen, EVP_sha256(), NULL);
	es = ECDSA_do_sign(digest, dlen, EVP_PKEY_get0_EC_KEY(K.ec256));
	assert_int_equal(ECDSA_SIG_to_bytes(&der, &derlen, es), 1);
	der64 = b64url(der, derlen);
	snprintf(buf, sizeof(buf), "%s.%s", tok, der64);
	assert_int_equal(verify(ks, buf, NULL), JWT_BAD_SIGNATURE);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	free(der64);
	free(tok);
	jwt_keyset_free(ks);
}

/* Two sets verify as one: a static key beside an identity provider's. */
static enum jwt_result verify_sets(const struct jwt_keyset *a, const struct jwt_keyset *b,
				   const char *token, int *kid_absent)
{
	const struct jwt_keyset *sets[2] = { a, b };
	struct jwt_claims c;
	char why[256];
	enum jwt_result r = jwt_verify_sets(sets, 2, token, strlen(token), TEST_NOW, NULL, &c,
					    kid_absent, why, sizeof(why));

	assert_why_is_clean(why, token);
	jwt_claims_cleanup(&c);
	return r;
}

static void test_two_key_sets_verify_as_one(void **s)
{
	char *a = jwk_of(K.ec256, NULL, 0, "\"kid\":\"static\"");
	char *b = jwk_of(K.rsa, NULL, 0, "\"kid\":\"idp\"");
	char jwks[8192];
	struct jwt_keyset *st, *idp;
	char *by_static, *by_idp;
	int absent = 7;

	snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", a);
	st = keyset_from(jwks);
	snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", b);
	idp = keyset_from(jwks);
	by_static = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"static\"}", STD_CLAIMS);
	by_idp = make_token("RS256", K.rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"idp\"}", STD_CLAIMS);
	assert_int_equal(verify_sets(st, idp, by_static, &absent), JWT_OK);
	assert_int_equal(absent, 0);
	assert_int_equal(verify_sets(st, idp, by_idp, NULL), JWT_OK);
	/* A missing set (no keys fetched yet) is skipped. */
	assert_int_equal(verify_sets(st, NULL, by_static, NULL), JWT_OK);
	assert_int_equal(verify_sets(NULL, idp, by_idp, NULL), JWT_OK);
	assert_int_equal(verify_sets(st, NULL, by_idp, &absent), JWT_UNKNOWN_KID);
	assert_int_equal(absent, 1);
	free(a);
	free(b);
	free(by_static);
	free(by_idp);
	jwt_keyset_free(st);
	jwt_keyset_free(idp);
}

/* Only a kid that no key has may be newer than our copy of the provider's
 * keys; a kid naming a key of another type, or a bad signature, is not. */
static void test_kid_absent_only_when_no_key_has_the_kid(void **s)
{
	char *a = jwk_of(K.rsa, NULL, 0, "\"kid\":\"r\"");
	char *e = jwk_of(K.ec256, NULL, 0, "\"kid\":\"e\"");
	char jwks[16384];
	struct jwt_keyset *idp, *pem;
	char *other_type, *unknown, *forged;
	EVP_PKEY *newer = gen_ec(NID_X9_62_prime256v1);
	int absent;

	snprintf(jwks, sizeof(jwks), "{\"keys\":[%s,%s]}", a, e);
	idp = keyset_from(jwks);
	pem = pem_keyset(K.ec256);      /* no kid: tried for any */
	other_type = make_token("ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"r\"}", STD_CLAIMS);
	unknown = make_token("ES256", newer, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"new\"}", STD_CLAIMS);
	forged = make_token("RS256", K.rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"r\"}", STD_CLAIMS);
	/* Change one signature character to another base64url character (a
	 * flipped bit could leave the alphabet and make the token malformed). */
	forged[strlen(forged) - 3] = forged[strlen(forged) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(verify_sets(idp, NULL, other_type, &absent), JWT_UNKNOWN_KID);
	assert_int_equal(absent, 0);
	/* The kid-less static key was tried and failed, yet the kid is new. */
	assert_int_equal(verify_sets(pem, idp, unknown, &absent), JWT_UNKNOWN_KID);
	assert_int_equal(absent, 1);
	assert_int_equal(verify_sets(pem, idp, forged, &absent), JWT_BAD_SIGNATURE);
	assert_int_equal(absent, 0);
	free(a);
	free(e);
	free(other_type);
	free(unknown);
	free(forged);
	EVP_PKEY_free(newer);
	jwt_keyset_free(idp);
	jwt_keyset_free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rs256_token_verifies),
		cmocka_unit_test(test_rs384_token_verifies),
		cmocka_unit_test(test_rs512_token_verifies),
		cmocka_unit_test(test_ps256_token_verifies),
		cmocka_unit_test(test_ps384_token_verifies),
		cmocka_unit_test(test_ps512_token_verifies),
		cmocka_unit_test(test_es256_token_verifies),
		cmocka_unit_test(test_es384_token_verifies),
		cmocka_unit_test(test_eddsa_token_verifies),
		cmocka_unit_test(test_hs256_token_verifies),
		cmocka_unit_test(test_hs384_token_verifies),
		cmocka_unit_test(test_hs512_token_verifies),
		cmocka_unit_test(test_expired_token_is_refused_and_leeway_is_honoured),
		cmocka_unit_test(test_token_before_nbf_or_issued_in_the_future_is_not_yet_valid),
		cmocka_unit_test(test_token_without_exp_is_refused_unless_allowed),
		cmocka_unit_test(test_time_claims_that_are_not_numbers_are_malformed),
		cmocka_unit_test(test_wrong_or_missing_issuer_is_refused_when_one_is_configured),
		cmocka_unit_test(test_audience_may_be_a_string_or_an_array),
		cmocka_unit_test(test_username_comes_from_the_configured_claim),
		cmocka_unit_test(test_acl_claim),
		cmocka_unit_test(test_tampered_payload_fails_the_signature),
		cmocka_unit_test(test_alg_none_is_refused),
		cmocka_unit_test(test_hs256_signed_with_the_rsa_public_key_is_refused),
		cmocka_unit_test(test_curve_must_match_the_algorithm),
		cmocka_unit_test(test_hmac_secret_shorter_than_the_hash_is_not_used),
		cmocka_unit_test(test_non_canonical_base64url_is_malformed),
		cmocka_unit_test(test_bad_shapes_and_json_are_malformed),
		cmocka_unit_test(test_token_over_the_length_limit_is_refused_unread),
		cmocka_unit_test(test_kid_selects_the_key_from_a_jwks),
		cmocka_unit_test(test_ecdsa_signature_in_der_form_is_refused),
		cmocka_unit_test(test_two_key_sets_verify_as_one),
		cmocka_unit_test(test_kid_absent_only_when_no_key_has_the_kid),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
