/*
 * Unit tests for bench/ws_client.c's codec: masked client frames, in-place
 * unframing of server frames split anywhere, the 101 answer's checks, the
 * upgrade request, and --ws on the command line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bench/options.h"
#include "bench/ws_client.h"

/* RFC 6455 1.3's example. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static uint8_t big_a[70000], big_b[70000 + 14];

static void test_frames_are_masked_with_the_shortest_length(void **state)
{
	static const uint8_t mask[4] = { 0x11, 0x22, 0x33, 0x44 };
	static const size_t sizes[] = { 0, 1, 125, 126, 65535, 65536, 70000 };
	size_t i, j, n, len, h;

	(void)state;
	for (i = 0; i < sizeof(big_a); i++)
		big_a[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		h = n < 126 ? 6 : n < 65536 ? 8 : 14;
		len = bench_ws_frame(big_b, sizeof(big_b), big_a, n, mask);
		assert_int_equal(len, h + n);
		assert_int_equal(big_b[0], 0x82);                    /* FIN, binary */
		assert_int_equal(big_b[1] & 0x80, 0x80);             /* masked */
		if (h == 6)
			assert_int_equal(big_b[1] & 0x7f, n);
		else if (h == 8)
			assert_int_equal(((size_t)big_b[2] << 8) | big_b[3], n);
		else
			assert_int_equal(((size_t)big_b[6] << 24) | ((size_t)big_b[7] << 16) |
			                 ((size_t)big_b[8] << 8) | big_b[9], n);
		assert_memory_equal(&big_b[h - 4], mask, 4);
		for (j = 0; j < n; j++)
			assert_int_equal(big_b[h + j] ^ mask[j & 3], big_a[j]);
	}
	/* One byte short of the frame: nothing written. */
	assert_int_equal(bench_ws_frame(big_b, 6 + 99, big_a, 100, mask), 0);
	assert_int_equal(bench_ws_frame(big_b, 5, big_a, 0, mask), 0);
}

/* A server stream: binary "hello ", ping "p", continuation "world", pong,
 * a 300-byte binary frame (16-bit length), a 64-bit-length frame of 3. */
static size_t server_stream(uint8_t *s, uint8_t *want, size_t *want_len)
{
	size_t n = 0, w = 0, i;

	memcpy(&s[n], "\x02\x06hello ", 8);   /* binary, not final */
	n += 8;
	memcpy(&want[w], "hello ", 6);
	w += 6;
	memcpy(&s[n], "\x89\x01p", 3);        /* ping */
	n += 3;
	memcpy(&s[n], "\x80\x05world", 7);    /* continuation, final */
	n += 7;
	memcpy(&want[w], "world", 5);
	w += 5;
	memcpy(&s[n], "\x8a\x00", 2);         /* empty pong */
	n += 2;
	s[n++] = 0x82;
	s[n++] = 126;
	s[n++] = 300 >> 8;
	s[n++] = 300 & 0xff;
	for (i = 0; i < 300; i++)
		want[w++] = s[n++] = (uint8_t)i;
	memcpy(&s[n], "\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x03xyz", 13);
	n += 13;
	memcpy(&want[w], "xyz", 3);
	w += 3;
	*want_len = w;
	return n;
}

static void test_server_frames_unframe_in_place_split_anywhere(void **state)
{
	uint8_t stream[512], want[512], buf[512], got[512];
	size_t n, want_len, cut, out, got_len;
	struct bench_ws_rx d;

	(void)state;
	n = server_stream(stream, want, &want_len);
	for (cut = 0; cut <= n; cut++) {
		memset(&d, 0, sizeof(d));
		got_len = 0;
		memcpy(buf, stream, cut);
		assert_int_equal(bench_ws_decode(&d, buf, cut, &out), BENCH_WS_RX_OK);
		memcpy(&got[got_len], buf, out);
		got_len += out;
		memcpy(buf, &stream[cut], n - cut);
		assert_int_equal(bench_ws_decode(&d, buf, n - cut, &out), BENCH_WS_RX_OK);
		memcpy(&got[got_len], buf, out);
		got_len += out;
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
	}
}

static void test_a_close_frame_ends_the_stream_after_the_data_before_it(void **state)
{
	uint8_t buf[] = { 0x82, 0x02, 'o', 'k', 0x88, 0x02, 0x03, 0xe8, 0x82, 0x01, 'x' };
	struct bench_ws_rx d = { 0 };
	size_t out;

	(void)state;
	assert_int_equal(bench_ws_decode(&d, buf, sizeof(buf), &out), BENCH_WS_RX_CLOSED);
	assert_int_equal(out, 2);
	assert_memory_equal(buf, "ok", 2);
	assert_int_equal(bench_ws_decode(&d, buf, sizeof(buf), &out), BENCH_WS_RX_CLOSED);
	assert_int_equal(out, 0);
}

static void test_bad_server_frames_are_refused(void **state)
{
	static const uint8_t masked[] = { 0x82, 0x81, 1, 2, 3, 4, 'a' };
	static const uint8_t text[] = { 0x81, 0x01, 'a' };
	static const uint8_t rsv[] = { 0xc2, 0x01, 'a' };
	static const uint8_t opcode[] = { 0x83, 0x01, 'a' };
	const uint8_t *bad[] = { masked, text, rsv, opcode };
	size_t lens[] = { sizeof(masked), sizeof(text), sizeof(rsv), sizeof(opcode) };
	uint8_t buf[16];
	struct bench_ws_rx d;
	size_t i, out;

	(void)state;
	for (i = 0; i < 4; i++) {
		memset(&d, 0, sizeof(d));
		memcpy(buf, bad[i], lens[i]);
		assert_int_equal(bench_ws_decode(&d, buf, lens[i], &out), BENCH_WS_RX_BAD);
	}
}

static const char reply_ok[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"sec-websocket-accept:  " RFC_ACCEPT " \r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"\r\n";

static void test_the_101_answer_is_checked_and_may_arrive_in_pieces(void **state)
{
	uint8_t buf[512];
	size_t n = strlen(reply_ok), i, head = 0;

	(void)state;
	memcpy(buf, reply_ok, n);
	memcpy(&buf[n], "\x82\x02\x20\x02", 4);  /* a frame right behind the head */
	for (i = 0; i < n; i++)
		assert_int_equal(bench_ws_reply(buf, i, RFC_KEY, &head), BENCH_WS_REPLY_NEED_MORE);
	assert_int_equal(bench_ws_reply(buf, n + 4, RFC_KEY, &head), BENCH_WS_REPLY_OK);
	assert_int_equal(head, n);
	/* The accept value of another key does not do. */
	assert_int_equal(bench_ws_reply(buf, n, "AQIDBAUGBwgJCgsMDQ4PEA==", &head), BENCH_WS_REPLY_BAD);
}

static void test_answers_other_than_a_good_101_are_refused(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
		"Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x" RFC_ACCEPT "\r\n"
		"Sec-WebSocket-Protocol: mqtt\r\n\r\n",
	};
	size_t i, head;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(bench_ws_reply((const uint8_t *)bad[i], strlen(bad[i]), RFC_KEY, &head),
		                 BENCH_WS_REPLY_BAD);
}

static void test_the_upgrade_request_names_path_host_key_and_mqtt(void **state)
{
	char buf[BENCH_WS_REQUEST_MAX];
	size_t n;

	(void)state;
	n = bench_ws_request(buf, sizeof(buf), "localhost:8443", "/mqtt", RFC_KEY);
	assert_true(n > 0);
	assert_int_equal(n, strlen(buf));
	assert_true(strncmp(buf, "GET /mqtt HTTP/1.1\r\n", 20) == 0);
	assert_non_null(strstr(buf, "\r\nHost: localhost:8443\r\n"));
	assert_non_null(strstr(buf, "\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"));
	assert_non_null(strstr(buf, "\r\nSec-WebSocket-Version: 13\r\n"));
	assert_non_null(strstr(buf, "\r\nSec-WebSocket-Protocol: mqtt\r\n"));
	assert_true(strcmp(&buf[n - 4], "\r\n\r\n") == 0);
	assert_int_equal(bench_ws_request(buf, n, "localhost:8443", "/mqtt", RFC_KEY), 0);
}

static enum options_result parse_ws(struct bench_options *o, const char *path)
{
	char *argv[] = { (char *)"mqtls-bench", (char *)"conn", (char *)"--ws", (char *)path, NULL };

	return bench_options_parse(o, 4, argv);
}

static void test_ws_takes_an_absolute_path_without_spaces(void **state)
{
	struct bench_options o;

	(void)state;
	assert_int_equal(parse_ws(&o, "/mqtt"), OPTIONS_OK);
	assert_string_equal(o.ws, "/mqtt");
	assert_int_equal(parse_ws(&o, "mqtt"), OPTIONS_ERROR);
	assert_int_equal(parse_ws(&o, "/a b"), OPTIONS_ERROR);
	assert_int_equal(parse_ws(&o, "/a\r\nX: y"), OPTIONS_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_are_masked_with_the_shortest_length),
		cmocka_unit_test(test_server_frames_unframe_in_place_split_anywhere),
		cmocka_unit_test(test_a_close_frame_ends_the_stream_after_the_data_before_it),
		cmocka_unit_test(test_bad_server_frames_are_refused),
		cmocka_unit_test(test_the_101_answer_is_checked_and_may_arrive_in_pieces),
		cmocka_unit_test(test_answers_other_than_a_good_101_are_refused),
		cmocka_unit_test(test_the_upgrade_request_names_path_host_key_and_mqtt),
		cmocka_unit_test(test_ws_takes_an_absolute_path_without_spaces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
