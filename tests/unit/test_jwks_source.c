/*
 * Where an identity provider's keys come from (proxy/auth/jwks_source.c):
 * the options and their rules, --jwt-jwks-refresh, the OpenID discovery
 * document (OpenID Connect Discovery 1.0, 3 and 4.3), and the setup of a
 * source (a CA file that does not load is refused at startup).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/jwks_source.h"

#define ISSUER "https://idp.example/realms/mqtt"

static void assert_check(const struct config *cfg, const char *needle)
{
	char err[300] = "";
	int ok = jwks_config_check(cfg, err, sizeof(err));

	if (needle == NULL) {
		if (!ok)
			fail_msg("refused: %s", err);
		return;
	}
	if (ok)
		fail_msg("accepted, want an error about \"%s\"", needle);
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static void test_no_identity_provider_is_fine(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	assert_false(jwks_configured(&c));
	assert_check(&c, NULL);
	c.jwt_jwks_refresh = "10..20";
	assert_check(&c, NULL);
}

static void test_url_must_be_https(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.jwt_jwks_url = "https://idp.example/realms/mqtt/protocol/openid-connect/certs";
	assert_true(jwks_configured(&c));
	assert_check(&c, NULL);
	c.jwt_jwks_url = "http://idp.example/certs";
	assert_check(&c, "--jwt-jwks-url");
	c.jwt_jwks_url = "https://idp.example:99999/certs";
	assert_check(&c, "port");
}

static void test_discovery_needs_an_https_issuer_and_no_url(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.jwt_discovery = 1;
	assert_true(jwks_configured(&c));
	assert_check(&c, "--jwt-issuer");
	c.jwt_issuer = "http://idp.example/realms/mqtt";
	assert_check(&c, "https://");
	c.jwt_issuer = "https://idp.example/realms/mqtt?x=1";
	assert_check(&c, "query");
	c.jwt_issuer = ISSUER;
	assert_check(&c, NULL);
	c.jwt_jwks_url = "https://idp.example/certs";
	assert_check(&c, "one of them");
}

static void test_ca_needs_a_provider(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.jwt_jwks_ca = "/etc/ssl/certs/ca-certificates.crt";
	assert_check(&c, "needs --jwt-jwks-url");
}

static void assert_refresh(const char *s, uint32_t lo, uint32_t hi)
{
	uint32_t a = 0, b = 0;
	char err[200] = "";
	int ok = jwks_refresh_parse(s, &a, &b, err, sizeof(err));

	if (lo == 0) {
		if (ok)
			fail_msg("\"%s\" accepted as %u..%u", s, a, b);
		assert_non_null(strstr(err, "MIN..MAX"));
		return;
	}
	if (!ok)
		fail_msg("\"%s\" refused: %s", s, err);
	assert_int_equal(a, lo);
	assert_int_equal(b, hi);
}

static void test_refresh_is_min_dot_dot_max_seconds(void **state)
{
	assert_refresh("300..3600", 300, 3600);
	assert_refresh(JWKS_REFRESH_DEFAULT, 300, 3600);
	assert_refresh("1..1", 1, 1);
	assert_refresh("60..604800", 60, 604800);
	assert_refresh("0..10", 0, 0);
	assert_refresh("20..10", 0, 0);
	assert_refresh("1..604801", 0, 0);
	assert_refresh("300", 0, 0);
	assert_refresh("..300", 0, 0);
	assert_refresh("300..", 0, 0);
	assert_refresh("5m..1h", 0, 0);
	assert_refresh("-1..5", 0, 0);
	assert_refresh("1...5", 0, 0);
	assert_refresh("99999999..99999999", 0, 0);
	assert_refresh(NULL, 0, 0);
}

static void test_refresh_is_checked_with_the_options(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.jwt_jwks_url = "https://idp.example/certs";
	c.jwt_jwks_refresh = "3600..300";
	assert_check(&c, "--jwt-jwks-refresh");
}

static int discover(const char *doc, const char *issuer, struct https_url *u, char *err,
                    size_t errlen)
{
	return jwks_discovery_parse((const uint8_t *)doc, strlen(doc), issuer, u, err, errlen);
}

static void assert_discovery_refused(const char *doc, const char *needle)
{
	struct https_url u;
	char err[300] = "";

	assert_false(discover(doc, ISSUER, &u, err, sizeof(err)));
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

/* Discovery 3: the document's jwks_uri is where the keys are. */
static void test_discovery_document_gives_the_jwks_uri(void **state)
{
	struct https_url u;
	char err[300] = "";

	if (!discover("{\"issuer\":\"" ISSUER "\",\"token_endpoint\":\"x\","
	              "\"jwks_uri\":\"https://idp.example:8443/realms/mqtt/protocol/openid-connect/certs\"}",
	              ISSUER, &u, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_string_equal(u.host, "idp.example");
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/realms/mqtt/protocol/openid-connect/certs");
}

/* Discovery 4.3: the issuer in the document must be exactly ours, or a
 * provider could hand out keys for another's tokens. */
static void test_discovery_issuer_must_match_exactly(void **state)
{
	assert_discovery_refused("{\"issuer\":\"https://evil.example/realms/mqtt\",\"jwks_uri\":\"https://idp.example/c\"}",
	                         "issuer");
	assert_discovery_refused("{\"issuer\":\"" ISSUER "/\",\"jwks_uri\":\"https://idp.example/c\"}", "issuer");
	assert_discovery_refused("{\"issuer\":\"HTTPS://IDP.EXAMPLE/realms/mqtt\",\"jwks_uri\":\"https://idp.example/c\"}",
	                         "issuer");
	assert_discovery_refused("{\"jwks_uri\":\"https://idp.example/c\"}", "issuer");
	assert_discovery_refused("{\"issuer\":7,\"jwks_uri\":\"https://idp.example/c\"}", "issuer");
	/* A NUL inside the JSON string cannot cut the comparison short: the
	 * JSON parser already refuses it. */
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\\u0000x\",\"jwks_uri\":\"https://idp.example/c\"}",
	                         "JSON object");
}

static void test_discovery_jwks_uri_must_be_an_https_url(void **state)
{
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\"}", "jwks_uri");
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\",\"jwks_uri\":[\"https://a/\"]}", "jwks_uri");
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"http://idp.example/c\"}",
	                         "https://");
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\",\"jwks_uri\":\"/relative\"}", "https://");
}

static void test_discovery_document_must_be_a_json_object(void **state)
{
	assert_discovery_refused("", "JSON object");
	assert_discovery_refused("[]", "JSON object");
	assert_discovery_refused("<html>", "JSON object");
	assert_discovery_refused("{\"issuer\":\"" ISSUER "\",\"issuer\":\"" ISSUER "\"}", "JSON object");
}

static void test_source_setup(void **state)
{
	struct jwks_source src;
	char err[300] = "", url[HTTPS_MAX_URL];

	assert_true(jwks_source_init(&src, "https://idp.example/certs", NULL, NULL, -1, err,
	                             sizeof(err)));
	jwks_source_url(&src, url, sizeof(url));
	assert_string_equal(url, "https://idp.example/certs");
	jwks_source_cleanup(&src);
	/* Discovery: no URL until the document was read. */
	assert_true(jwks_source_init(&src, NULL, ISSUER "/", NULL, -1, err, sizeof(err)));
	jwks_source_url(&src, url, sizeof(url));
	assert_string_equal(url, "");
	assert_string_equal(src.discovery_url.path, "/realms/mqtt/.well-known/openid-configuration");
	jwks_source_cleanup(&src);
}

static void test_source_with_a_ca_file_that_does_not_load_is_refused(void **state)
{
	struct jwks_source src;
	char err[300] = "";

	assert_false(jwks_source_init(&src, "https://idp.example/certs", NULL, "/nonexistent/ca.pem",
	                              -1, err, sizeof(err)));
	assert_non_null(strstr(err, "--jwt-jwks-ca"));
	jwks_source_cleanup(&src);
}

static void test_result_names(void **state)
{
	assert_string_equal(jwks_result_name(JWKS_OK), "ok");
	assert_string_equal(jwks_result_name(JWKS_TOO_LARGE), "too_large");
	assert_string_equal(jwks_result_name(JWKS_NO_KEYS), "no_keys");
	assert_string_equal(jwks_result_name(JWKS_RESULT_COUNT), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_identity_provider_is_fine),
		cmocka_unit_test(test_url_must_be_https),
		cmocka_unit_test(test_discovery_needs_an_https_issuer_and_no_url),
		cmocka_unit_test(test_ca_needs_a_provider),
		cmocka_unit_test(test_refresh_is_min_dot_dot_max_seconds),
		cmocka_unit_test(test_refresh_is_checked_with_the_options),
		cmocka_unit_test(test_discovery_document_gives_the_jwks_uri),
		cmocka_unit_test(test_discovery_issuer_must_match_exactly),
		cmocka_unit_test(test_discovery_jwks_uri_must_be_an_https_url),
		cmocka_unit_test(test_discovery_document_must_be_a_json_object),
		cmocka_unit_test(test_source_setup),
		cmocka_unit_test(test_source_with_a_ca_file_that_does_not_load_is_refused),
		cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
