/*
 * HTTP/1.1 responses as the JWKS fetcher reads them
 * (proxy/auth/http_response.c): the status line and fields (RFC 9112 4, 5),
 * body framing (RFC 9112 6.3, 7.1), Cache-Control freshness (RFC 9111
 * 5.2.2.1, 4.2.3) and the limits. Each response is also fed in every
 * prefix, as reads would deliver it: MORE until it is complete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth/http_response.h"

#define MAX_BODY 1024

static struct http_response R;
static char err[200];

static enum http_parse parse_n(const char *text, size_t len, int eof, size_t max_body)
{
	http_response_cleanup(&R);
	err[0] = '\0';
	return http_response_parse((const uint8_t *)text, len, eof, max_body, &R, err, sizeof(err));
}

static enum http_parse parse(const char *text, int eof)
{
	return parse_n(text, strlen(text), eof, MAX_BODY);
}

/* Every proper prefix of |text| is incomplete (or, at the end of input,
 * bad), and the whole is DONE. */
static void assert_done_only_when_whole(const char *text)
{
	size_t n = strlen(text);

	for (size_t i = 0; i < n; i++) {
		enum http_parse p = parse_n(text, i, 0, MAX_BODY);

		if (p != HTTP_PARSE_MORE)
			fail_msg("prefix of %zu of %zu bytes: %d (%s)", i, n, p, err);
	}
	if (parse(text, 0) != HTTP_PARSE_DONE)
		fail_msg("whole response: not done (%s)", err);
}

static void assert_body(const char *want)
{
	assert_int_equal(R.body_len, strlen(want));
	assert_memory_equal(R.body, want, R.body_len);
}

static void assert_bad(const char *text, int eof, const char *needle)
{
	enum http_parse p = parse(text, eof);

	if (p != HTTP_PARSE_BAD)
		fail_msg("want BAD, got %d", p);
	if (strstr(err, needle) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, needle);
}

static int teardown(void **state)
{
	http_response_cleanup(&R);
	return 0;
}

#define OK_HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

static void test_content_length_body(void **state)
{
	const char *t = OK_HEAD "Content-Length: 12\r\n\r\n{\"keys\":[1]}";

	assert_done_only_when_whole(t);
	assert_int_equal(R.status, 200);
	assert_body("{\"keys\":[1]}");
	assert_int_equal(R.fresh_s, -1);
}

/* RFC 9112 6.3: bytes after Content-Length are not part of the body. */
static void test_content_length_ignores_what_follows(void **state)
{
	assert_int_equal(parse(OK_HEAD "Content-Length: 2\r\n\r\n{}garbage", 0), HTTP_PARSE_DONE);
	assert_body("{}");
}

static void test_content_length_cut_short_by_the_close_is_bad(void **state)
{
	assert_bad(OK_HEAD "Content-Length: 10\r\n\r\n{}", 1, "cut short");
}

/* The size limit applies before the body is read: a 10 MB document is
 * refused on its header alone. */
static void test_content_length_over_the_limit_is_too_large_at_once(void **state)
{
	assert_int_equal(parse(OK_HEAD "Content-Length: 10485760\r\n\r\n", 0), HTTP_PARSE_TOO_LARGE);
	assert_non_null(strstr(err, "10485760"));
	assert_int_equal(parse(OK_HEAD "Content-Length: 99999999999999999999999\r\n\r\n", 0),
	                 HTTP_PARSE_TOO_LARGE);
	assert_int_equal(parse(OK_HEAD "Content-Length: 1024\r\n\r\n", 0), HTTP_PARSE_MORE);
}

/* RFC 9110 8.6: Content-Length is 1*DIGIT; repeats must agree. */
static void test_content_length_must_be_digits_and_agree(void **state)
{
	assert_bad(OK_HEAD "Content-Length: -1\r\n\r\n", 0, "Content-Length");
	assert_bad(OK_HEAD "Content-Length: 0x10\r\n\r\n", 0, "Content-Length");
	assert_bad(OK_HEAD "Content-Length:\r\n\r\n", 0, "Content-Length");
	assert_bad(OK_HEAD "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 0, "two different");
	assert_int_equal(parse(OK_HEAD "Content-Length: 2\r\ncontent-length: 2\r\n\r\n{}", 0),
	                 HTTP_PARSE_DONE);
}

/* RFC 9112 7.1: chunk-size [ext] CRLF data CRLF ... last-chunk trailers CRLF. */
static void test_chunked_body_is_decoded(void **state)
{
	const char *t = OK_HEAD "Transfer-Encoding: chunked\r\n\r\n"
	                "5\r\n{\"key\r\n"
	                "A;name=value\r\ns\":[1,2,3]\r\n"
	                "1\r\n}\r\n"
	                "0\r\nX-Trailer: t\r\n\r\n";

	assert_done_only_when_whole(t);
	assert_body("{\"keys\":[1,2,3]}");
}

static void test_chunked_size_hex_in_either_case(void **state)
{
	char t[400];
	char data[27];

	memset(data, 'x', 26);
	data[26] = '\0';
	snprintf(t, sizeof(t), OK_HEAD "Transfer-Encoding: Chunked\r\n\r\n1a\r\n%s\r\n0\r\n\r\n", data);
	assert_int_equal(parse(t, 0), HTTP_PARSE_DONE);
	assert_body(data);
	snprintf(t, sizeof(t), OK_HEAD "Transfer-Encoding: chunked\r\n\r\n1A\r\n%s\r\n0\r\n\r\n", data);
	assert_int_equal(parse(t, 0), HTTP_PARSE_DONE);
}

static void test_chunked_malformed_is_bad(void **state)
{
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\nz\r\n", 0, "chunk size");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n\r\n", 0, "chunk size");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n123456789\r\n", 0, "chunk size");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n2\n{}\r\n", 0, "chunk size line");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 0, "CRLF");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nbad\n\r\n", 0, "trailer");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", 1, "cut short");
}

static void test_chunked_over_the_limit_is_too_large(void **state)
{
	assert_int_equal(parse(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n401\r\n", 0),
	                 HTTP_PARSE_TOO_LARGE);
	assert_int_equal(parse(OK_HEAD "Transfer-Encoding: chunked\r\n\r\nffffffff\r\n", 0),
	                 HTTP_PARSE_TOO_LARGE);
	assert_int_equal(parse(OK_HEAD "Transfer-Encoding: chunked\r\n\r\n400\r\n", 0), HTTP_PARSE_MORE);
}

/* We send no TE: chunked is the only coding a server may use. RFC 9112
 * 6.1: a message with both Transfer-Encoding and Content-Length is
 * refused rather than guessed at. */
static void test_other_transfer_codings_and_both_framings_are_bad(void **state)
{
	assert_bad(OK_HEAD "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, "Transfer-Encoding");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	           "Transfer-Encoding");
	assert_bad(OK_HEAD "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 0,
	           "both Transfer-Encoding and Content-Length");
}

/* RFC 9112 6.3 point 8: no framing, the body ends with the connection. */
static void test_body_until_the_close(void **state)
{
	assert_int_equal(parse(OK_HEAD "\r\n{\"keys\":[]}", 0), HTTP_PARSE_MORE);
	assert_int_equal(parse(OK_HEAD "\r\n{\"keys\":[]}", 1), HTTP_PARSE_DONE);
	assert_body("{\"keys\":[]}");
	assert_int_equal(parse(OK_HEAD "\r\n", 1), HTTP_PARSE_DONE);
	assert_int_equal(R.body_len, 0);
}

static void test_body_until_the_close_over_the_limit_is_too_large(void **state)
{
	char *t = malloc(MAX_BODY + 100);
	size_t n = (size_t)snprintf(t, MAX_BODY + 100, OK_HEAD "\r\n");

	memset(t + n, 'x', MAX_BODY + 1);
	assert_int_equal(parse_n(t, n + MAX_BODY + 1, 0, MAX_BODY), HTTP_PARSE_TOO_LARGE);
	assert_int_equal(parse_n(t, n + MAX_BODY, 0, MAX_BODY), HTTP_PARSE_MORE);
	assert_int_equal(parse_n(t, n + MAX_BODY, 1, MAX_BODY), HTTP_PARSE_DONE);
	free(t);
}

/* A redirect or an error is done once its headers are: its body is not
 * ours to read. */
static void test_other_statuses_are_done_after_the_headers(void **state)
{
	const char *t = "HTTP/1.1 302 Found\r\nLocation:  /realms/mqtt/certs \r\n"
	                "Content-Length: 500\r\n\r\n";

	assert_done_only_when_whole(t);
	assert_int_equal(R.status, 302);
	assert_true(R.has_location);
	assert_string_equal(R.location, "/realms/mqtt/certs");   /* OWS trimmed */
	assert_null(R.body);
	assert_int_equal(parse("HTTP/1.0 404 Not Found\r\n\r\n", 0), HTTP_PARSE_DONE);
	assert_int_equal(R.status, 404);
	assert_false(R.has_location);
}

/* RFC 9110 15.2: 1xx responses precede the final one; 101 would switch
 * protocols, which we never asked for. */
static void test_interim_responses_are_skipped(void **state)
{
	const char *t = "HTTP/1.1 100 Continue\r\n\r\n"
	                "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
	                OK_HEAD "Content-Length: 2\r\n\r\n{}";

	assert_done_only_when_whole(t);
	assert_int_equal(R.status, 200);
	assert_body("{}");
	assert_bad("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, "interim");
}

static void test_too_many_interim_responses_are_bad(void **state)
{
	char t[1000] = "";

	for (int i = 0; i < 10; i++)
		strcat(t, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_bad(t, 0, "interim");
}

/* RFC 9112 4: HTTP-version SP 3DIGIT SP [reason] CRLF. */
static void test_malformed_status_lines_are_bad(void **state)
{
	assert_bad("HTTP/2 200 OK\r\n\r\n", 0, "status line");
	assert_bad("HTTP/1.1 20 OK\r\n\r\n", 0, "status line");
	assert_bad("HTTP/1.1 2000 OK\r\n\r\n", 0, "status line");
	assert_bad("HTTP/1.1 099 OK\r\n\r\n", 0, "status line");
	assert_bad("HTTP/1.1  200 OK\r\n\r\n", 0, "status line");
	assert_bad("HTTP/1.1 200 O\x01K\r\n\r\n", 0, "status line");
	assert_bad("<html>\r\n\r\n", 0, "status line");
	assert_int_equal(parse("HTTP/1.1 204\r\n\r\n", 0), HTTP_PARSE_DONE);
	assert_int_equal(R.status, 204);
}

/* RFC 9112 5.1: no white space between a field name and the colon; 5.2:
 * obsolete line folding is refused; fields hold no control characters. */
static void test_malformed_fields_are_bad(void **state)
{
	assert_bad(OK_HEAD "Content-Length : 2\r\n\r\n{}", 0, "field name");
	assert_bad(OK_HEAD "X-A: 1\r\n  folded\r\n\r\n", 0, "field");
	assert_bad(OK_HEAD "NoColon\r\n\r\n", 0, "malformed header field");
	assert_bad(OK_HEAD ": empty name\r\n\r\n", 0, "malformed header field");
	assert_bad(OK_HEAD "X-A: a\x01" "b\r\n\r\n", 0, "control character");
	assert_bad(OK_HEAD "X-A: a\rb\r\n\r\n", 0, "CRLF");
	assert_bad(OK_HEAD "X-A: a\nb\r\n\r\n", 0, "CRLF");
}

static void test_bare_lf_line_endings_are_refused(void **state)
{
	assert_int_equal(parse("HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", 0), HTTP_PARSE_MORE);
	assert_int_equal(parse("HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", 1), HTTP_PARSE_BAD);
}

static void test_headers_over_the_limit_are_too_large(void **state)
{
	size_t n = HTTP_MAX_HEADER_BYTES + 100;
	char *t = malloc(n + 1);

	memcpy(t, OK_HEAD "X-Pad: ", strlen(OK_HEAD "X-Pad: "));
	memset(t + strlen(OK_HEAD "X-Pad: "), 'a', n - strlen(OK_HEAD "X-Pad: "));
	t[n] = '\0';
	assert_int_equal(parse(t, 0), HTTP_PARSE_TOO_LARGE);
	free(t);
}

static void test_more_than_the_header_count_is_bad(void **state)
{
	char t[4000];
	size_t o = (size_t)snprintf(t, sizeof(t), OK_HEAD);

	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		o += (size_t)snprintf(t + o, sizeof(t) - o, "X-%d: v\r\n", i);
	snprintf(t + o, sizeof(t) - o, "\r\n");
	assert_bad(t, 1, "header fields");
}

/* RFC 9111 5.2.2.1 max-age, 4.2.3 less the Age; no-store and no-cache ask
 * for a fetch as soon as allowed. */
static void test_cache_control_freshness(void **state)
{
	assert_int_equal(parse(OK_HEAD "Cache-Control: public, max-age=600\r\nContent-Length: 0\r\n\r\n", 0),
	                 HTTP_PARSE_DONE);
	assert_int_equal(R.fresh_s, 600);
	parse(OK_HEAD "Cache-Control: max-age=\"600\", must-revalidate\r\nAge: 100\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 500);
	parse(OK_HEAD "Cache-Control: max-age=60\r\nAge: 600\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 0);
	parse(OK_HEAD "Cache-Control: no-cache\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 0);
	parse(OK_HEAD "cache-control: max-age=600\r\nCACHE-CONTROL: No-Store\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 0);
	/* Two max-ages: the shorter. */
	parse(OK_HEAD "Cache-Control: max-age=600, max-age=30\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 30);
	/* RFC 9111 1.2.2: too large to represent is 2^31. */
	parse(OK_HEAD "Cache-Control: max-age=99999999999999999999\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, 2147483648LL);
}

static void test_malformed_cache_control_is_ignored(void **state)
{
	assert_int_equal(parse(OK_HEAD "Cache-Control: max-age=abc\r\nContent-Length: 0\r\n\r\n", 0),
	                 HTTP_PARSE_DONE);
	assert_int_equal(R.fresh_s, -1);
	parse(OK_HEAD "Cache-Control: max-age=-5, , =\r\nAge: x\r\nContent-Length: 0\r\n\r\n", 0);
	assert_int_equal(R.fresh_s, -1);
}

static void test_location_too_long_is_bad(void **state)
{
	size_t n = HTTPS_MAX_URL + 200;
	char *t = malloc(n);
	size_t o = (size_t)snprintf(t, n, "HTTP/1.1 302 Found\r\nLocation: /");

	memset(t + o, 'a', HTTPS_MAX_URL);
	strcpy(t + o + HTTPS_MAX_URL, "\r\n\r\n");
	assert_bad(t, 0, "Location");
	free(t);
}

/* A NUL byte in a field is a control character; in a body it is data. */
static void test_nul_bytes(void **state)
{
	static const char field[] = OK_HEAD "X-A: a\0b\r\nContent-Length: 0\r\n\r\n";
	static const char body[] = OK_HEAD "Content-Length: 3\r\n\r\na\0b";

	assert_int_equal(parse_n(field, sizeof(field) - 1, 0, MAX_BODY), HTTP_PARSE_BAD);
	assert_int_equal(parse_n(body, sizeof(body) - 1, 0, MAX_BODY), HTTP_PARSE_DONE);
	assert_int_equal(R.body_len, 3);
}

static void test_empty_input(void **state)
{
	assert_int_equal(parse("", 0), HTTP_PARSE_MORE);
	assert_bad("", 1, "cut short");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_content_length_body, teardown),
		cmocka_unit_test_teardown(test_content_length_ignores_what_follows, teardown),
		cmocka_unit_test_teardown(test_content_length_cut_short_by_the_close_is_bad, teardown),
		cmocka_unit_test_teardown(test_content_length_over_the_limit_is_too_large_at_once, teardown),
		cmocka_unit_test_teardown(test_content_length_must_be_digits_and_agree, teardown),
		cmocka_unit_test_teardown(test_chunked_body_is_decoded, teardown),
		cmocka_unit_test_teardown(test_chunked_size_hex_in_either_case, teardown),
		cmocka_unit_test_teardown(test_chunked_malformed_is_bad, teardown),
		cmocka_unit_test_teardown(test_chunked_over_the_limit_is_too_large, teardown),
		cmocka_unit_test_teardown(test_other_transfer_codings_and_both_framings_are_bad, teardown),
		cmocka_unit_test_teardown(test_body_until_the_close, teardown),
		cmocka_unit_test_teardown(test_body_until_the_close_over_the_limit_is_too_large, teardown),
		cmocka_unit_test_teardown(test_other_statuses_are_done_after_the_headers, teardown),
		cmocka_unit_test_teardown(test_interim_responses_are_skipped, teardown),
		cmocka_unit_test_teardown(test_too_many_interim_responses_are_bad, teardown),
		cmocka_unit_test_teardown(test_malformed_status_lines_are_bad, teardown),
		cmocka_unit_test_teardown(test_malformed_fields_are_bad, teardown),
		cmocka_unit_test_teardown(test_bare_lf_line_endings_are_refused, teardown),
		cmocka_unit_test_teardown(test_headers_over_the_limit_are_too_large, teardown),
		cmocka_unit_test_teardown(test_more_than_the_header_count_is_bad, teardown),
		cmocka_unit_test_teardown(test_cache_control_freshness, teardown),
		cmocka_unit_test_teardown(test_malformed_cache_control_is_ignored, teardown),
		cmocka_unit_test_teardown(test_location_too_long_is_bad, teardown),
		cmocka_unit_test_teardown(test_nul_bytes, teardown),
		cmocka_unit_test_teardown(test_empty_input, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
