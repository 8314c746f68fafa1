/*
 * HTTPS URLs for the JWKS fetcher (proxy/auth/https_url.c): what
 * --jwt-jwks-url, a discovery document's jwks_uri and a Location header may
 * say (RFC 3986 3.2, 3.3), and what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/https_url.h"

static struct https_url must_parse(const char *s)
{
	struct https_url u;
	char err[200] = "";

	if (!https_url_parse(s, strlen(s), &u, err, sizeof(err)))
		fail_msg("\"%s\" refused: %s", s, err);
	return u;
}

static void assert_refused(const char *s, const char *needle)
{
	struct https_url u;
	char err[200] = "";

	assert_false(https_url_parse(s, strlen(s), &u, err, sizeof(err)));
	if (strstr(err, needle) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s, err, needle);
}

static void test_url_with_host_port_path_and_query(void **state)
{
	struct https_url u = must_parse("https://Auth.Example.com:8443/realms/mqtt/certs?x=1");

	assert_string_equal(u.host, "auth.example.com");   /* host names are case-insensitive */
	assert_int_equal(u.port, 8443);
	assert_false(u.is_ip);
	assert_string_equal(u.path, "/realms/mqtt/certs?x=1");
}

static void test_url_defaults_to_port_443_and_path_slash(void **state)
{
	struct https_url u = must_parse("HTTPS://idp.example");

	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "/");
	u = must_parse("https://idp.example?q");
	assert_string_equal(u.path, "/?q");
}

static void test_url_fragment_is_dropped(void **state)
{
	struct https_url u = must_parse("https://idp.example/certs#frag");

	assert_string_equal(u.path, "/certs");
}

static void test_url_ip_literals_are_marked(void **state)
{
	struct https_url u = must_parse("https://127.0.0.1:9443/c");

	assert_true(u.is_ip);
	assert_string_equal(u.host, "127.0.0.1");
	u = must_parse("https://[::1]:9443/c");
	assert_true(u.is_ip);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 9443);
	u = must_parse("https://[2001:db8::7]/c");
	assert_int_equal(u.port, 443);
}

/* Keys must come over TLS: no plain http, whatever the case of the scheme. */
static void test_url_http_is_refused(void **state)
{
	assert_refused("http://idp.example/certs", "https://");
	assert_refused("HTTP://idp.example/certs", "https://");
	assert_refused("ftp://idp.example/certs", "not an https:// URL");
	assert_refused("idp.example/certs", "not an https:// URL");
	assert_refused("", "not an https:// URL");
}

/* RFC 3986 3.2.1: user info in a URL is deprecated and never needed here. */
static void test_url_user_info_is_refused(void **state)
{
	assert_refused("https://user:pw@idp.example/", "user info");
	assert_refused("https://idp.example@evil.example/", "user info");
}

static void test_url_bad_ports_are_refused(void **state)
{
	assert_refused("https://idp.example:0/", "port");
	assert_refused("https://idp.example:65536/", "port");
	assert_refused("https://idp.example:/", "port");
	assert_refused("https://idp.example:44x/", "port");
	assert_refused("https://idp.example:1234567/", "port");
	assert_refused("https://[::1]x/", "port");
	assert_refused("https://[::1]:0/", "port");
}

static void test_url_bad_hosts_are_refused(void **state)
{
	char long_host[300];

	assert_refused("https:///certs", "no host");
	assert_refused("https://idp_example/", "host name");
	assert_refused("https://idp example/", "host name");
	assert_refused("https://[not-v6]/", "IPv6");
	assert_refused("https://[::1/", "IPv6");
	memset(long_host, 'a', sizeof(long_host));
	memcpy(long_host, "https://", 8);
	long_host[sizeof(long_host) - 1] = '\0';
	assert_refused(long_host, "253");
}

/* RFC 3986 3.3: nothing outside the path characters (a log line quotes
 * the URL, and a quote or a space in it would forge fields). */
static void test_url_path_characters_outside_rfc3986_are_refused(void **state)
{
	assert_refused("https://idp.example/a b", "RFC 3986");
	assert_refused("https://idp.example/a\"b", "RFC 3986");
	assert_refused("https://idp.example/a\\b", "RFC 3986");
	assert_refused("https://idp.example/\xc3\xa9", "RFC 3986");
	assert_refused("https://idp.example/a\nb", "RFC 3986");
	must_parse("https://idp.example/a%20b/~x/-._!$&'()*+,;=:@?y=/z");
}

static void test_url_with_a_nul_byte_is_refused(void **state)
{
	static const char s[] = "https://idp.example/a\0b";
	struct https_url u;
	char err[200];

	assert_false(https_url_parse(s, sizeof(s) - 1, &u, err, sizeof(err)));
	assert_false(https_url_parse("https://idp\0.example/", 22, &u, err, sizeof(err)));
}

static void test_url_path_over_the_limit_is_refused(void **state)
{
	static char s[HTTPS_MAX_PATH + 64];
	size_t n = (size_t)snprintf(s, sizeof(s), "https://idp.example/");

	memset(s + n, 'p', HTTPS_MAX_PATH);
	s[n + HTTPS_MAX_PATH] = '\0';
	assert_refused(s, "over");
}

static struct https_url resolve(const struct https_url *base, const char *loc, int want_ok)
{
	struct https_url out;
	char err[200] = "";
	int ok = https_url_resolve(base, (const uint8_t *)loc, strlen(loc), &out, err, sizeof(err));

	if (ok != want_ok)
		fail_msg("Location \"%s\": %s (%s)", loc, ok ? "accepted" : "refused", err);
	return out;
}

/* RFC 9110 10.2.2: Location is a URI reference, resolved against the
 * request's URL. */
static void test_location_absolute_path_keeps_host_and_port(void **state)
{
	struct https_url base = must_parse("https://idp.example:8443/old?x");
	struct https_url u = resolve(&base, "/realms/mqtt/certs", 1);

	assert_string_equal(u.host, "idp.example");
	assert_int_equal(u.port, 8443);
	assert_string_equal(u.path, "/realms/mqtt/certs");
}

static void test_location_absolute_and_scheme_relative_urls(void **state)
{
	struct https_url base = must_parse("https://idp.example/old");
	struct https_url u = resolve(&base, "https://keys.example:9443/k", 1);

	assert_string_equal(u.host, "keys.example");
	assert_int_equal(u.port, 9443);
	u = resolve(&base, "//cdn.example/jwks.json", 1);
	assert_string_equal(u.host, "cdn.example");
	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "/jwks.json");
}

static void test_location_to_http_or_relative_is_not_followed(void **state)
{
	struct https_url base = must_parse("https://idp.example/a/b");

	resolve(&base, "http://idp.example/certs", 0);
	resolve(&base, "certs", 0);
	resolve(&base, "../certs", 0);
	resolve(&base, "", 0);
	resolve(&base, "javascript:alert(1)", 0);
}

static void test_url_format_shows_the_port_only_when_not_443(void **state)
{
	char out[HTTPS_MAX_URL];
	struct https_url u = must_parse("https://idp.example/c");

	https_url_format(&u, out, sizeof(out));
	assert_string_equal(out, "https://idp.example/c");
	u = must_parse("https://[::1]:8443/c?x");
	https_url_format(&u, out, sizeof(out));
	assert_string_equal(out, "https://[::1]:8443/c?x");
	u = must_parse("https://10.0.0.1:444");
	https_url_format(&u, out, sizeof(out));
	assert_string_equal(out, "https://10.0.0.1:444/");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_with_host_port_path_and_query),
		cmocka_unit_test(test_url_defaults_to_port_443_and_path_slash),
		cmocka_unit_test(test_url_fragment_is_dropped),
		cmocka_unit_test(test_url_ip_literals_are_marked),
		cmocka_unit_test(test_url_http_is_refused),
		cmocka_unit_test(test_url_user_info_is_refused),
		cmocka_unit_test(test_url_bad_ports_are_refused),
		cmocka_unit_test(test_url_bad_hosts_are_refused),
		cmocka_unit_test(test_url_path_characters_outside_rfc3986_are_refused),
		cmocka_unit_test(test_url_with_a_nul_byte_is_refused),
		cmocka_unit_test(test_url_path_over_the_limit_is_refused),
		cmocka_unit_test(test_location_absolute_path_keeps_host_and_port),
		cmocka_unit_test(test_location_absolute_and_scheme_relative_urls),
		cmocka_unit_test(test_location_to_http_or_relative_is_not_followed),
		cmocka_unit_test(test_url_format_shows_the_port_only_when_not_443),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
