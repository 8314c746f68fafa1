/*
 * Loading JWT keys (proxy/auth/jwt_keys.c): PEM, JWKS and HMAC secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/auth/jwt.h"
#include "proxy/auth/jwt_keys.h"
#include "tests/unit/jwt_test_util.h"

#define STD_CLAIMS "{\"sub\":\"device-7\",\"exp\":1700000600}"

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

static struct jwt_keyset *parse(const char *text, char *err, size_t errlen)
{
	return jwt_keyset_parse((const uint8_t *)text, strlen(text), err, errlen);
}

static struct jwt_keyset *must_parse(const char *text)
{
	char err[256];
	struct jwt_keyset *ks = parse(text, err, sizeof(err));

	if (ks == NULL)
		fail_msg("keyset: %s", err);
	return ks;
}

/* Asserts that `text` is refused with a message containing `needle`. */
static void assert_refused(const char *text, const char *needle)
{
	char err[256] = "";

	assert_null(parse(text, err, sizeof(err)));
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static enum jwt_result verify_with(const struct jwt_keyset *ks, const char *alg, EVP_PKEY *pkey,
				   const uint8_t *secret, size_t slen, const char *header)
{
	char *tok = make_token(alg, pkey, secret, slen, header, STD_CLAIMS);
	struct jwt_claims c;
	enum jwt_result r = jwt_verify(ks, tok, strlen(tok), TEST_NOW, NULL, &c, NULL, 0);

	jwt_claims_cleanup(&c);
	free(tok);
	return r;
}

static void test_pem_file_may_hold_several_keys_of_each_type(void **s)
{
	char pem[16384] = "# comment lines between blocks are ignored\n";
	struct jwt_keyset *ks;

	pem_append(pem, sizeof(pem), K.rsa);
	pem_append(pem, sizeof(pem), K.ec256);
	strcat(pem, "\n");
	pem_append(pem, sizeof(pem), K.ec384);
	pem_append(pem, sizeof(pem), K.ed25519);
	ks = must_parse(pem);
	assert_int_equal(jwt_keyset_count(ks), 4);
	assert_int_equal(verify_with(ks, "RS256", K.rsa, NULL, 0, "{\"alg\":\"RS256\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "ES384", K.ec384, NULL, 0, "{\"alg\":\"ES384\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "EdDSA", K.ed25519, NULL, 0, "{\"alg\":\"EdDSA\"}"), JWT_OK);
	/* PEM keys have no kid, so they serve tokens that name one. */
	assert_int_equal(verify_with(ks, "ES256", K.ec256, NULL, 0,
				     "{\"alg\":\"ES256\",\"kid\":\"whatever\"}"), JWT_OK);
	jwt_keyset_free(ks);
}

static void test_pkcs1_rsa_public_key_block_is_accepted(void **s)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t len;
	char pem[4096];
	struct jwt_keyset *ks;

	assert_int_equal(PEM_write_bio_RSAPublicKey(bio, EVP_PKEY_get0_RSA(K.rsa)), 1);
	assert_int_equal(BIO_mem_contents(bio, &data, &len), 1);
	snprintf(pem, sizeof(pem), "%.*s", (int)len, (const char *)data);
	assert_non_null(strstr(pem, "BEGIN RSA PUBLIC KEY"));
	ks = must_parse(pem);
	assert_int_equal(verify_with(ks, "PS256", K.rsa, NULL, 0, "{\"alg\":\"PS256\"}"), JWT_OK);
	jwt_keyset_free(ks);
	BIO_free(bio);
}

static void test_certificate_made_by_the_openssl_cli_supplies_its_key(void **s)
{
	char dir[] = "/tmp/mqtls-test-jwt-XXXXXX", cmd[1024], path[128], err[256];
	struct jwt_keyset *ks;
	EVP_PKEY *priv;
	FILE *f;

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout key.pem -out cert.pem -subj /CN=issuer -days 1 2>/dev/null", dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	priv = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(priv);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	ks = jwt_keyset_load(path, err, sizeof(err));
	if (ks == NULL)
		fail_msg("%s", err);
	assert_int_equal(verify_with(ks, "ES256", priv, NULL, 0, "{\"alg\":\"ES256\"}"), JWT_OK);
	/* The private key file itself is refused. */
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	assert_null(jwt_keyset_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "private key"));
	jwt_keyset_free(ks);
	EVP_PKEY_free(priv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_private_keys_short_rsa_keys_and_damaged_pem_are_refused(void **s)
{
	BIO *bio = BIO_new(BIO_s_mem());
	const uint8_t *data;
	size_t len;
	char pem[8192] = "", *end;

	assert_int_equal(PEM_write_bio_PrivateKey(bio, K.ec256, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(BIO_mem_contents(bio, &data, &len), 1);
	snprintf(pem, sizeof(pem), "%.*s", (int)len, (const char *)data);
	assert_refused(pem, "private key");
	BIO_free(bio);

	pem[0] = '\0';
	pem_append(pem, sizeof(pem), K.rsa1024);
	assert_refused(pem, "2048");

	pem[0] = '\0';
	pem_append(pem, sizeof(pem), K.ec256);
	pem_append(pem, sizeof(pem), K.ec384);
	end = strstr(strstr(pem, "END PUBLIC KEY") + 1, "-----END");
	*end = '\0';   /* the second block loses its END line */
	assert_refused(pem, "PEM block 2");
	assert_refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM block 1");
}

static void test_jwks_with_every_supported_key_type_loads(void **s)
{
	char *rsa = jwk_of(K.rsa, NULL, 0, "\"kid\":\"r\"");
	char *ec256 = jwk_of(K.ec256, NULL, 0, "\"kid\":\"e1\"");
	char *ec384 = jwk_of(K.ec384, NULL, 0, "\"kid\":\"e2\"");
	char *ed = jwk_of(K.ed25519, NULL, 0, "\"kid\":\"o\"");
	char *oct = jwk_of(NULL, K.secret, sizeof(K.secret), "\"kid\":\"h\"");
	char *enc = jwk_of(K.ec256, NULL, 0, "\"use\":\"enc\"");
	char jwks[16384];
	struct jwt_keyset *ks;

	snprintf(jwks, sizeof(jwks),
		 "{\"keys\":[%s,%s,%s,%s,%s,%s,"
		 "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"},"
		 "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"},{\"kty\":\"future\"}]}",
		 rsa, ec256, ec384, ed, oct, enc);
	ks = must_parse(jwks);
	/* The encryption key and the three unusable types are skipped. */
	assert_int_equal(jwt_keyset_count(ks), 5);
	assert_string_equal(jwt_keyset_get0(ks, 0)->kid, "r");
	assert_int_equal(verify_with(ks, "RS512", K.rsa, NULL, 0, "{\"alg\":\"RS512\",\"kid\":\"r\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "ES384", K.ec384, NULL, 0, "{\"alg\":\"ES384\",\"kid\":\"e2\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "EdDSA", K.ed25519, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"o\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "HS512", NULL, K.secret, sizeof(K.secret), "{\"alg\":\"HS512\",\"kid\":\"h\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "ES256", K.ec256, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"o\"}"), JWT_UNKNOWN_KID);
	free(rsa);
	free(ec256);
	free(ec384);
	free(ed);
	free(oct);
	free(enc);
	jwt_keyset_free(ks);
}

static void test_jwk_alg_pins_the_algorithm(void **s)
{
	char *rsa = jwk_of(K.rsa, NULL, 0, "\"alg\":\"RS256\"");
	struct jwt_keyset *ks = must_parse(rsa);   /* a lone JWK, not a set */

	assert_int_equal(verify_with(ks, "RS256", K.rsa, NULL, 0, "{\"alg\":\"RS256\"}"), JWT_OK);
	assert_int_equal(verify_with(ks, "PS256", K.rsa, NULL, 0, "{\"alg\":\"PS256\"}"), JWT_BAD_ALG);
	free(rsa);
	jwt_keyset_free(ks);
}

static void test_broken_jwks_documents_are_refused(void **s)
{
	char *ec = jwk_of(K.ec256, NULL, 0, "\"d\":\"AAAA\"");
	char *xy = jwk_of(K.ec256, NULL, 0, "");
	char buf[8192], *x;

	assert_refused(ec, "private key");
	assert_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
		       "JSON error");
	assert_refused("{\"keys\":[", "JSON error");
	assert_refused("{\"keys\":[]}", "no usable key");
	assert_refused("{\"issuer\":\"x\"}", "neither");
	assert_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "key 1");
	assert_refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}", "key 1");
	assert_refused("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}", "key 1");
	assert_refused("{\"keys\":[7]}", "key 1");
	/* Change x so that the point leaves the curve. */
	snprintf(buf, sizeof(buf), "%s", xy);
	x = strstr(buf, "\"x\":\"") + 5;
	x[0] = x[0] == 'A' ? 'B' : 'A';
	assert_refused(buf, "key 1");
	free(ec);
	free(xy);
}

static void test_hmac_secret_file_loses_one_trailing_newline(void **s)
{
	char text[80], err[256];
	struct jwt_keyset *ks;

	memcpy(text, K.secret, sizeof(K.secret));
	memcpy(text + sizeof(K.secret), "\r\n", 2);
	ks = jwt_keyset_parse((const uint8_t *)text, sizeof(K.secret) + 2, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(jwt_keyset_get0(ks, 0)->secret_len, sizeof(K.secret));
	assert_int_equal(verify_with(ks, "HS256", NULL, K.secret, sizeof(K.secret), "{\"alg\":\"HS256\"}"), JWT_OK);
	jwt_keyset_free(ks);
}

static void test_short_hmac_secret_is_refused_without_being_quoted(void **s)
{
	char err[256] = "";

	assert_null(parse("tooshort-secret\n", err, sizeof(err)));
	assert_non_null(strstr(err, "32"));
	assert_null(strstr(err, "tooshort"));
}

static void test_load_reports_the_path_of_a_missing_file(void **s)
{
	char err[256] = "";

	assert_null(jwt_keyset_load("/nonexistent/jwt.pem", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/jwt.pem"));
}

static struct jwt_keyset *parse_jwks(const char *text, char *err, size_t errlen)
{
	return jwt_keyset_parse_jwks((const uint8_t *)text, strlen(text), err, errlen);
}

static void assert_jwks_refused(const char *text, const char *needle)
{
	char err[256] = "";

	assert_null(parse_jwks(text, err, sizeof(err)));
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

/* A published JWK Set: signature keys only, never a secret (anyone could
 * read it), never anything but {"keys": [...]}. */
static void test_published_jwks_skips_secrets_and_takes_only_a_set(void **state)
{
	char *ec = jwk_of(K.ec256, NULL, 0, "\"kid\":\"e\"");
	char *oct = jwk_of(NULL, K.secret, sizeof(K.secret), "\"kid\":\"h\"");
	char text[8192], err[256];
	struct jwt_keyset *ks;

	snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", oct, ec);
	ks = parse_jwks(text, err, sizeof(err));
	if (ks == NULL)
		fail_msg("refused: %s", err);
	assert_int_equal(jwt_keyset_count(ks), 1);
	assert_string_equal(jwt_keyset_get0(ks, 0)->kid, "e");
	jwt_keyset_free(ks);
	snprintf(text, sizeof(text), "{\"keys\":[%s]}", oct);
	assert_jwks_refused(text, JWT_KEYS_NONE_USABLE);
	/* A bare JWK is a file format, not what a provider publishes. */
	assert_jwks_refused(ec, "no \"keys\" array");
	free(ec);
	free(oct);
}

static void test_published_jwks_is_never_pem_or_a_secret(void **state)
{
	char pem[8192] = "";

	pem_append(pem, sizeof(pem), K.ec256);
	assert_jwks_refused(pem, "JSON");
	/* An error page must not become an HMAC secret. */
	assert_jwks_refused("<html><body>502 Bad Gateway - upstream timed out</body></html>", "JSON");
	assert_jwks_refused("{\"keys\": \"nope\"}", "no \"keys\" array");
	assert_jwks_refused("{\"keys\": []}", JWT_KEYS_NONE_USABLE);
	assert_jwks_refused("", "JSON");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_file_may_hold_several_keys_of_each_type),
		cmocka_unit_test(test_pkcs1_rsa_public_key_block_is_accepted),
		cmocka_unit_test(test_certificate_made_by_the_openssl_cli_supplies_its_key),
		cmocka_unit_test(test_private_keys_short_rsa_keys_and_damaged_pem_are_refused),
		cmocka_unit_test(test_jwks_with_every_supported_key_type_loads),
		cmocka_unit_test(test_jwk_alg_pins_the_algorithm),
		cmocka_unit_test(test_broken_jwks_documents_are_refused),
		cmocka_unit_test(test_hmac_secret_file_loses_one_trailing_newline),
		cmocka_unit_test(test_short_hmac_secret_is_refused_without_being_quoted),
		cmocka_unit_test(test_load_reports_the_path_of_a_missing_file),
		cmocka_unit_test(test_published_jwks_skips_secrets_and_takes_only_a_set),
		cmocka_unit_test(test_published_jwks_is_never_pem_or_a_secret),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
