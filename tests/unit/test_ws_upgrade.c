/*
 * Unit tests for proxy/ws_upgrade.c: the WebSocket opening handshake of
 * RFC 6455 section 4.2 for MQTT (MQTT 5.0 section 6). Requests are written
 * out as browsers and MQTT libraries send them; each refusal checks the
 * status, the reason and the exact response bytes where they matter, and
 * every prefix of a request must give "need more" or the same verdict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/ws_upgrade.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* A request as Chromium sends it for new WebSocket(url, ["mqtt"]). */
static const char chrome[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Host: broker.example:443\r\n"
	"Connection: Upgrade\r\n"
	"Pragma: no-cache\r\n"
	"Cache-Control: no-cache\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0\r\n"
	"Upgrade: websocket\r\n"
	"Origin: https://app.example\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Sec-WebSocket-Key: " KEY "\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"\r\n";

static enum ws_upgrade_result parse_str(const char *req, struct ws_upgrade *u)
{
	return ws_upgrade_parse((const uint8_t *)req, strlen(req), "/mqtt", 0, u);
}

/* Builds a request from the request line and header lines (each without
 * CRLF), NULL-terminated. */
static char *request(const char *first, ...)
{
	static char buf[16384];
	va_list ap;
	const char *line;
	size_t n = 0;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\r\n", first);
	va_start(ap, first);
	while ((line = va_arg(ap, const char *)) != NULL)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\r\n", line);
	va_end(ap);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	return buf;
}

#define GOOD_HEADERS "Host: h", "Upgrade: websocket", "Connection: Upgrade", \
	"Sec-WebSocket-Key: " KEY, "Sec-WebSocket-Version: 13"

/* Asserts that every prefix of |req| gives NEED_MORE or the whole
 * request's verdict (and status), and returns that verdict. */
static enum ws_upgrade_result check_prefixes(const char *req, struct ws_upgrade *whole)
{
	size_t len = strlen(req), cut;
	enum ws_upgrade_result want = parse_str(req, whole);

	for (cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut + 1);   /* exact size: ASan sees overreads */
		struct ws_upgrade u;
		enum ws_upgrade_result r;

		assert_non_null(copy);
		memcpy(copy, req, cut);
		r = ws_upgrade_parse(copy, cut, "/mqtt", 0, &u);
		free(copy);
		if (r == WS_UPGRADE_NEED_MORE)
			continue;
		if (r != want || u.status != whole->status)
			fail_msg("prefix of %zu bytes gave %d/%d, the whole %d/%d", cut, r, u.status, want,
			         whole->status);
	}
	return want;
}

static void expect_refused(const char *req, int status, const char *reason)
{
	struct ws_upgrade u;

	assert_int_equal(check_prefixes(req, &u), WS_UPGRADE_REFUSE);
	assert_int_equal(u.status, status);
	assert_non_null(u.why);
	if (strstr(u.why, reason) == NULL)
		fail_msg("why \"%s\" does not name \"%s\"", u.why, reason);
}

static void assert_slice(struct slice s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_ws_accept_key_matches_the_rfc_6455_example(void **state)
{
	char out[WS_ACCEPT_LEN + 1];

	(void)state;
	/* RFC 6455 1.3: "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" */
	assert_true(ws_accept_key(KEY, strlen(KEY), out));
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_false(ws_accept_key(NULL, 0, out));
}

static void test_ws_upgrade_accepts_a_browser_request(void **state)
{
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(check_prefixes(chrome, &u), WS_UPGRADE_OK);
	assert_int_equal(u.request_len, strlen(chrome));
	assert_int_equal(u.protocol, WS_PROTO_MQTT);
	assert_string_equal(u.key, KEY);
	assert_slice(u.path, "/mqtt");
	assert_slice(u.host, "broker.example:443");
	assert_true(u.has_origin);
	assert_slice(u.origin, "https://app.example");
}

static void test_ws_upgrade_answers_101_with_accept_and_protocol(void **state)
{
	struct ws_upgrade u;
	char out[512];
	const char want[] =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		"Sec-WebSocket-Protocol: mqtt\r\n"
		"\r\n";

	(void)state;
	assert_int_equal(parse_str(chrome, &u), WS_UPGRADE_OK);
	assert_int_equal(ws_upgrade_accept(&u, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(ws_upgrade_accept(&u, out, strlen(want)), 0);   /* no room for the NUL */
}

static void test_ws_upgrade_leaves_bytes_after_the_head_for_the_frames(void **state)
{
	char req[2048];
	struct ws_upgrade u;

	(void)state;
	snprintf(req, sizeof(req), "%s\x82\x80", chrome);
	assert_int_equal(parse_str(req, &u), WS_UPGRADE_OK);
	assert_int_equal(u.request_len, strlen(chrome));
}

static void test_ws_upgrade_prefers_mqtt_and_accepts_mqttv31_alone(void **state)
{
	struct ws_upgrade u;
	char out[512];

	(void)state;
	assert_int_equal(check_prefixes(request("GET /mqtt HTTP/1.1", GOOD_HEADERS,
	                                        "Sec-WebSocket-Protocol: mqttv3.1, mqtt", NULL), &u),
	                 WS_UPGRADE_OK);
	assert_int_equal(u.protocol, WS_PROTO_MQTT);
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", GOOD_HEADERS,
	                                   "Sec-WebSocket-Protocol: mqttv3.1", NULL), &u),
	                 WS_UPGRADE_OK);
	assert_int_equal(u.protocol, WS_PROTO_MQTTV31);
	assert_true(ws_upgrade_accept(&u, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "Sec-WebSocket-Protocol: mqttv3.1\r\n"));
}

static void test_ws_upgrade_reads_protocols_over_several_header_lines(void **state)
{
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", GOOD_HEADERS,
	                                   "Sec-WebSocket-Protocol: chat", "sec-websocket-protocol: ,mqtt ,",
	                                   NULL), &u),
	                 WS_UPGRADE_OK);
	assert_int_equal(u.protocol, WS_PROTO_MQTT);
}

static void test_ws_upgrade_compares_names_and_tokens_case_insensitively(void **state)
{
	struct ws_upgrade u;

	(void)state;
	/* RFC 6455 4.2.1: Upgrade and Connection values are case-insensitive;
	 * Firefox sends "keep-alive, Upgrade". */
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", "HOST: h", "upgrade: WebSocket",
	                                   "CONNECTION: keep-alive, upgrade", "sec-websocket-key: " KEY,
	                                   "SEC-WEBSOCKET-VERSION: 13", "Sec-Websocket-Protocol: mqtt", NULL),
	                           &u),
	                 WS_UPGRADE_OK);
}

static void test_ws_upgrade_ignores_the_query_string(void **state)
{
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(parse_str(request("GET /mqtt?token=abc HTTP/1.1", GOOD_HEADERS,
	                                   "Sec-WebSocket-Protocol: mqtt", NULL), &u),
	                 WS_UPGRADE_OK);
	assert_slice(u.path, "/mqtt");
}

static void test_ws_upgrade_refuses_a_wrong_path_with_404(void **state)
{
	struct ws_upgrade u;
	char out[256];
	const char want[] = "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

	(void)state;
	expect_refused(request("GET /mqtt/ HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Protocol: mqtt", NULL),
	               404, "path");
	expect_refused(request("GET /ws HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Protocol: mqtt", NULL),
	               404, "path");
	assert_int_equal(parse_str(request("GET / HTTP/1.1", GOOD_HEADERS, NULL), &u), WS_UPGRADE_REFUSE);
	assert_int_equal(ws_upgrade_refuse(&u, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
}

static void test_ws_upgrade_refuses_a_method_other_than_get(void **state)
{
	(void)state;
	expect_refused(request("POST /mqtt HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "[RFC 6455 4.2.1] method is not GET");
	expect_refused(request("get /mqtt HTTP/1.1", GOOD_HEADERS, NULL), 400, "method is not GET");
}

static void test_ws_upgrade_refuses_http_1_0_and_malformed_request_lines(void **state)
{
	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.0", GOOD_HEADERS, NULL), 400, "not HTTP/1.1");
	expect_refused(request("GET /mqtt", GOOD_HEADERS, NULL), 400, "malformed request line");
	expect_refused(request("GET  /mqtt HTTP/1.1", GOOD_HEADERS, NULL), 400, "not HTTP/1.1");
	expect_refused(request("GET * HTTP/1.1", GOOD_HEADERS, NULL), 400, "not a path");
	expect_refused(request("GET http://h/mqtt HTTP/1.1", GOOD_HEADERS, NULL), 400, "not a path");
	expect_refused(request("GET /mq\x01tt HTTP/1.1", GOOD_HEADERS, NULL), 400, "bad character");
}

static void test_ws_upgrade_refuses_a_request_that_is_not_an_upgrade(void **state)
{
	struct ws_upgrade u;
	char out[256];

	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Accept: */*", NULL), 400, "Upgrade");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: h2c", "Connection: Upgrade",
	                       "Sec-WebSocket-Key: " KEY, "Sec-WebSocket-Version: 13",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Upgrade does not name websocket");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket",
	                       "Connection: keep-alive", "Sec-WebSocket-Key: " KEY,
	                       "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Connection does not include Upgrade");
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", "Host: h", NULL), &u), WS_UPGRADE_REFUSE);
	assert_true(ws_upgrade_refuse(&u, out, sizeof(out)) > 0);
	assert_string_equal(out, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
}

static void test_ws_upgrade_refuses_another_version_with_400_and_version_13(void **state)
{
	struct ws_upgrade u;
	char out[256];
	const char want[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n"
	                    "Sec-WebSocket-Version: 13\r\n\r\n";
	const char *req = request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket",
	                          "Connection: Upgrade", "Sec-WebSocket-Key: " KEY,
	                          "Sec-WebSocket-Version: 8", "Sec-WebSocket-Protocol: mqtt", NULL);

	(void)state;
	expect_refused(req, 400, "[RFC 6455 4.4]");
	assert_int_equal(parse_str(req, &u), WS_UPGRADE_REFUSE);
	assert_true(u.want_version);
	assert_int_equal(ws_upgrade_refuse(&u, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
}

static void test_ws_upgrade_refuses_a_missing_or_repeated_version(void **state)
{
	struct ws_upgrade u;

	(void)state;
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket",
	                                   "Connection: Upgrade", "Sec-WebSocket-Key: " KEY,
	                                   "Sec-WebSocket-Protocol: mqtt", NULL), &u),
	                 WS_UPGRADE_REFUSE);
	assert_true(u.want_version);
	assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Version: 13",
	                                   "Sec-WebSocket-Protocol: mqtt", NULL), &u),
	                 WS_UPGRADE_REFUSE);
	assert_true(u.want_version);
}

static void test_ws_upgrade_refuses_a_key_that_is_not_16_bytes_of_base64(void **state)
{
	(void)state;
	/* Missing, 15 bytes, 17 bytes, bad characters, repeated. */
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
	                       "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Sec-WebSocket-Key");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
	                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", "Sec-WebSocket-Version: 13",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Sec-WebSocket-Key");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
	                       "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=", "Sec-WebSocket-Version: 13",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Sec-WebSocket-Key");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
	                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ*=", "Sec-WebSocket-Version: 13",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Sec-WebSocket-Key");
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Key: " KEY,
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Sec-WebSocket-Key");
}

static void test_ws_upgrade_refuses_a_request_without_the_mqtt_subprotocol_mqtt_6_0_0_3(void **state)
{
	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, NULL), 400, "[MQTT-6.0.0-3]");
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Protocol: mqttv5, chat",
	                       NULL),
	               400, "[MQTT-6.0.0-3]");
	/* Subprotocol names are compared exactly. */
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Sec-WebSocket-Protocol: MQTT", NULL),
	               400, "[MQTT-6.0.0-3]");
}

static void test_ws_upgrade_refuses_a_missing_or_repeated_host(void **state)
{
	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
	                       "Sec-WebSocket-Key: " KEY, "Sec-WebSocket-Version: 13",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Host");
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Host: other",
	                       "Sec-WebSocket-Protocol: mqtt", NULL),
	               400, "Host");
}

static void test_ws_upgrade_refuses_lines_not_ended_by_crlf(void **state)
{
	(void)state;
	expect_refused("GET /mqtt HTTP/1.1\nHost: h\n\n", 400, "CRLF");
	expect_refused("GET /mqtt HTTP/1.1\r\nHost: h\n\r\n", 400, "CRLF");
	expect_refused("GET /mqtt HTTP/1.1\r\nHost: h\rx\r\n\r\n", 400, "CRLF");
}

static void test_ws_upgrade_refuses_malformed_header_lines(void **state)
{
	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h", " folded", NULL), 400, "folding");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host h", NULL), 400, "colon");
	expect_refused(request("GET /mqtt HTTP/1.1", ": value", NULL), 400, "colon");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host : h", NULL), 400, "header name");
	expect_refused(request("GET /mqtt HTTP/1.1", "Host: h\x01", NULL), 400, "control character");
}

static void test_ws_upgrade_refuses_a_body(void **state)
{
	(void)state;
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Content-Length: 5", NULL), 400, "body");
	expect_refused(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Transfer-Encoding: chunked", NULL), 400,
	               "body");
	{
		struct ws_upgrade u;

		assert_int_equal(parse_str(request("GET /mqtt HTTP/1.1", GOOD_HEADERS, "Content-Length: 0",
		                                   "Sec-WebSocket-Protocol: mqtt", NULL), &u),
		                 WS_UPGRADE_OK);
	}
}

static void test_ws_upgrade_refuses_too_many_headers_with_431(void **state)
{
	static char req[16384];
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /mqtt HTTP/1.1\r\n");
	for (i = 0; i < 101; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: y\r\n", i);
	snprintf(req + n, sizeof(req) - n, "\r\n");
	expect_refused(req, 431, "header fields");
}

static void test_ws_upgrade_bounds_the_head_and_answers_431(void **state)
{
	struct ws_upgrade u;
	char out[256];
	size_t len = strlen(chrome);

	(void)state;
	/* Exactly at the bound: fine. One byte less of room: 431. */
	assert_int_equal(ws_upgrade_parse((const uint8_t *)chrome, len, "/mqtt", len, &u), WS_UPGRADE_OK);
	assert_int_equal(ws_upgrade_parse((const uint8_t *)chrome, len, "/mqtt", len - 1, &u),
	                 WS_UPGRADE_REFUSE);
	assert_int_equal(u.status, 431);
	assert_true(ws_upgrade_refuse(&u, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	/* Fewer bytes than the bound and no end yet: wait. */
	assert_int_equal(ws_upgrade_parse((const uint8_t *)chrome, len - 1, "/mqtt", len, &u),
	                 WS_UPGRADE_NEED_MORE);
}

static void test_ws_upgrade_refuses_an_endless_header_at_the_default_bound(void **state)
{
	static uint8_t big[WS_UPGRADE_MAX + 100];
	struct ws_upgrade u;
	size_t n;

	(void)state;
	n = (size_t)snprintf((char *)big, sizeof(big), "GET /mqtt HTTP/1.1\r\nX-Long: ");
	memset(big + n, 'a', sizeof(big) - n);
	assert_int_equal(ws_upgrade_parse(big, WS_UPGRADE_MAX - 1, "/mqtt", 0, &u), WS_UPGRADE_NEED_MORE);
	assert_int_equal(ws_upgrade_parse(big, WS_UPGRADE_MAX, "/mqtt", 0, &u), WS_UPGRADE_REFUSE);
	assert_int_equal(u.status, 431);
	assert_int_equal(ws_upgrade_parse(big, sizeof(big), "/mqtt", 0, &u), WS_UPGRADE_REFUSE);
}

static void test_ws_upgrade_refusal_does_not_fit_a_tiny_buffer(void **state)
{
	struct ws_upgrade u;
	char out[16];

	(void)state;
	assert_int_equal(parse_str(request("GET /x HTTP/1.1", NULL), &u), WS_UPGRADE_REFUSE);
	assert_int_equal(ws_upgrade_refuse(&u, out, sizeof(out)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ws_accept_key_matches_the_rfc_6455_example),
		cmocka_unit_test(test_ws_upgrade_accepts_a_browser_request),
		cmocka_unit_test(test_ws_upgrade_answers_101_with_accept_and_protocol),
		cmocka_unit_test(test_ws_upgrade_leaves_bytes_after_the_head_for_the_frames),
		cmocka_unit_test(test_ws_upgrade_prefers_mqtt_and_accepts_mqttv31_alone),
		cmocka_unit_test(test_ws_upgrade_reads_protocols_over_several_header_lines),
		cmocka_unit_test(test_ws_upgrade_compares_names_and_tokens_case_insensitively),
		cmocka_unit_test(test_ws_upgrade_ignores_the_query_string),
		cmocka_unit_test(test_ws_upgrade_refuses_a_wrong_path_with_404),
		cmocka_unit_test(test_ws_upgrade_refuses_a_method_other_than_get),
		cmocka_unit_test(test_ws_upgrade_refuses_http_1_0_and_malformed_request_lines),
		cmocka_unit_test(test_ws_upgrade_refuses_a_request_that_is_not_an_upgrade),
		cmocka_unit_test(test_ws_upgrade_refuses_another_version_with_400_and_version_13),
		cmocka_unit_test(test_ws_upgrade_refuses_a_missing_or_repeated_version),
		cmocka_unit_test(test_ws_upgrade_refuses_a_key_that_is_not_16_bytes_of_base64),
		cmocka_unit_test(test_ws_upgrade_refuses_a_request_without_the_mqtt_subprotocol_mqtt_6_0_0_3),
		cmocka_unit_test(test_ws_upgrade_refuses_a_missing_or_repeated_host),
		cmocka_unit_test(test_ws_upgrade_refuses_lines_not_ended_by_crlf),
		cmocka_unit_test(test_ws_upgrade_refuses_malformed_header_lines),
		cmocka_unit_test(test_ws_upgrade_refuses_a_body),
		cmocka_unit_test(test_ws_upgrade_refuses_too_many_headers_with_431),
		cmocka_unit_test(test_ws_upgrade_bounds_the_head_and_answers_431),
		cmocka_unit_test(test_ws_upgrade_refuses_an_endless_header_at_the_default_bound),
		cmocka_unit_test(test_ws_upgrade_refusal_does_not_fit_a_tiny_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
