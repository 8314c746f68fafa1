/*
 * Unit tests for proxy/ws_frame.c: client->server frame decoding in place
 * (RFC 6455 section 5) and the server's frame headers, close and pong
 * frames. Client frames are built here byte by byte, masked with a key of
 * the test's choosing; a stream of frames is decoded whole, in two pieces
 * at every byte position, in three pieces, and one byte at a time, and
 * must give the same MQTT bytes and the same events every time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/ws_frame.h"

#define MAX_STREAM 200000

struct bytes {
	uint8_t *b;
	size_t n;
};

static void put(struct bytes *s, const void *p, size_t n)
{
	assert_true(s->n + n <= MAX_STREAM);
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void put8(struct bytes *s, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(s, &b, 1);
}

static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Appends a frame. |len_form| forces the length encoding: 0 shortest, 2
 * the 16-bit form, 8 the 64-bit form. |masked| 0 sends it unmasked. */
static void frame_ex(struct bytes *s, unsigned first, const void *payload, size_t n, int masked,
                     int len_form)
{
	const uint8_t *p = payload;
	int form = len_form != 0 ? len_form : n < 126 ? 0 : n <= 0xffff ? 2 : 8;
	size_t i;

	put8(s, first);
	if (form == 0) {
		put8(s, (masked ? 0x80 : 0) | (unsigned)n);
	} else if (form == 2) {
		put8(s, (masked ? 0x80 : 0) | 126);
		put8(s, (unsigned)(n >> 8));
		put8(s, (unsigned)n);
	} else {
		put8(s, (masked ? 0x80 : 0) | 127);
		for (i = 0; i < 8; i++)
			put8(s, (unsigned)((uint64_t)n >> (56 - 8 * i)));
	}
	if (masked)
		put(s, key, 4);
	for (i = 0; i < n; i++)
		put8(s, p[i] ^ (masked ? key[i & 3] : 0));
}

static void frame(struct bytes *s, unsigned first, const void *payload, size_t n)
{
	frame_ex(s, first, payload, n, 1, 0);
}

static struct bytes new_bytes(void)
{
	struct bytes s = { malloc(MAX_STREAM), 0 };

	assert_non_null(s.b);
	return s;
}

/* What decoding a stream produced: the MQTT bytes and the events. */
struct result {
	struct bytes data;
	int events[64];
	uint16_t codes[64];
	uint8_t payloads[64][WS_CONTROL_MAX];
	size_t lens[64];
	int nev;
};

/* Decodes |s| cut at |cuts| (each piece a separate read into its own
 * exact-size buffer) with frames up to |max| bytes. Stops at the first
 * CLOSE or ERROR. */
static void decode_cut(const struct bytes *s, const size_t *cuts, size_t ncuts, uint64_t max,
                       struct result *res)
{
	struct ws_decoder d;
	size_t start = 0, i;

	memset(res, 0, sizeof(*res));
	res->data = new_bytes();
	ws_decoder_init(&d, max);
	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : s->n;
		struct ws_region r;
		uint8_t *piece = malloc(end - start + 1);

		assert_non_null(piece);
		memcpy(piece, s->b + start, end - start);
		r.ptr = piece;
		r.len = end - start;
		r.in = r.out = 0;
		for (;;) {
			struct ws_control ctl;
			enum ws_event ev = ws_decode(&d, &r, &ctl);

			assert_true(r.out <= r.in && r.in <= r.len);
			if (ev == WS_EV_DRAINED) {
				assert_int_equal(r.in, r.len);
				break;
			}
			assert_true(res->nev < 64);
			res->events[res->nev] = ev;
			res->codes[res->nev] = ctl.code;
			res->lens[res->nev] = ctl.len;
			if (ctl.len > 0)
				memcpy(res->payloads[res->nev], ctl.payload, ctl.len);
			res->nev++;
			if (ev == WS_EV_CLOSE || ev == WS_EV_ERROR) {
				/* The data decoded before it still counts. */
				put(&res->data, piece, r.out);
				free(piece);
				return;
			}
		}
		put(&res->data, piece, r.out);
		free(piece);
		start = end;
	}
}

static void decode_all(const struct bytes *s, uint64_t max, struct result *res)
{
	decode_cut(s, NULL, 0, max, res);
}

static void free_result(struct result *res)
{
	free(res->data.b);
}

static void assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->data.n, b->data.n);
	assert_memory_equal(a->data.b, b->data.b, a->data.n);
	assert_int_equal(a->nev, b->nev);
	for (int i = 0; i < a->nev; i++) {
		assert_int_equal(a->events[i], b->events[i]);
		assert_int_equal(a->codes[i], b->codes[i]);
		assert_int_equal(a->lens[i], b->lens[i]);
		assert_memory_equal(a->payloads[i], b->payloads[i], a->lens[i]);
	}
}

/* Decodes |s| whole and expects one error with |code|. */
static void expect_error(const struct bytes *s, uint16_t code, const char *why)
{
	struct ws_decoder d;
	struct ws_region r = { s->b, s->n, 0, 0 };
	struct ws_control ctl;
	enum ws_event ev;

	ws_decoder_init(&d, 1 << 20);
	while ((ev = ws_decode(&d, &r, &ctl)) != WS_EV_DRAINED && ev != WS_EV_ERROR)
		;
	assert_int_equal(ev, WS_EV_ERROR);
	assert_int_equal(ctl.code, code);
	if (strstr(ctl.why, why) == NULL)
		fail_msg("why \"%s\" does not name \"%s\"", ctl.why, why);
}

static void test_ws_frame_decodes_the_rfc_example_as_binary(void **state)
{
	/* RFC 6455 5.7: a masked "Hello" (sent as text there; binary here). */
	uint8_t b[] = { 0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct ws_decoder d;
	struct ws_region r = { b, sizeof(b), 0, 0 };
	struct ws_control ctl;

	(void)state;
	ws_decoder_init(&d, 1024);
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_DRAINED);
	assert_int_equal(r.in, sizeof(b));
	assert_int_equal(r.out, 5);
	assert_memory_equal(b, "Hello", 5);   /* moved to the front, in place */
}

static void test_ws_frame_refuses_the_rfc_text_example_with_1003_mqtt_6_0_0_1(void **state)
{
	uint8_t b[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	struct bytes s = { b, sizeof(b) };

	(void)state;
	expect_error(&s, WS_CLOSE_UNSUPPORTED, "[MQTT-6.0.0-1]");
}

static void test_ws_frame_refuses_an_unmasked_client_frame_with_1002(void **state)
{
	/* RFC 6455 5.7's unmasked ping, from a client: refused (5.1). */
	uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	struct bytes s = { ping, sizeof(ping) }, t = new_bytes();

	(void)state;
	expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 5.1]");
	frame_ex(&t, 0x82, "abc", 3, 0, 0);
	expect_error(&t, WS_CLOSE_PROTOCOL, "[RFC 6455 5.1]");
	free(t.b);
}

static void test_ws_frame_joins_mqtt_bytes_across_frames_and_fragments(void **state)
{
	struct bytes s = new_bytes();
	struct result res;

	(void)state;
	frame(&s, 0x02, "\x10\x0c", 2);          /* binary, FIN 0 */
	frame(&s, 0x00, "\x00\x04MQ", 4);        /* continuation */
	frame(&s, 0x80, "TT\x04\x02\x00\x3c", 6); /* continuation, FIN */
	frame(&s, 0x82, "", 0);                  /* an empty binary frame */
	frame(&s, 0x82, "\xc0\x00", 2);
	decode_all(&s, 1024, &res);
	assert_int_equal(res.nev, 0);
	assert_int_equal(res.data.n, 14);
	assert_memory_equal(res.data.b, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\xc0\x00", 14);
	free_result(&res);
	free(s.b);
}

static void test_ws_frame_reports_a_ping_inside_a_fragmented_message_in_order(void **state)
{
	struct bytes s = new_bytes();
	struct ws_decoder d;
	struct ws_region r;
	struct ws_control ctl;

	(void)state;
	frame(&s, 0x02, "ab", 2);
	frame(&s, 0x89, "ping!", 5);
	frame(&s, 0x80, "cd", 2);
	ws_decoder_init(&d, 1024);
	r.ptr = s.b;
	r.len = s.n;
	r.in = r.out = 0;
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_PING);
	assert_int_equal(ctl.len, 5);
	assert_memory_equal(ctl.payload, "ping!", 5);
	assert_int_equal(r.out, 2);
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_DRAINED);
	assert_int_equal(r.out, 4);
	assert_memory_equal(s.b, "abcd", 4);
	free(s.b);
}

static void test_ws_frame_reports_pongs_and_empty_pings(void **state)
{
	struct bytes s = new_bytes();
	struct result res;

	(void)state;
	frame(&s, 0x8a, "x", 1);
	frame(&s, 0x89, "", 0);
	decode_all(&s, 1024, &res);
	assert_int_equal(res.nev, 2);
	assert_int_equal(res.events[0], WS_EV_PONG);
	assert_int_equal(res.events[1], WS_EV_PING);
	assert_int_equal(res.lens[1], 0);
	free_result(&res);
	free(s.b);
}

static void test_ws_frame_accepts_a_125_byte_control_frame(void **state)
{
	struct bytes s = new_bytes();
	uint8_t p[125];
	struct result res;

	(void)state;
	memset(p, 'p', sizeof(p));
	frame(&s, 0x89, p, sizeof(p));
	decode_all(&s, 1024, &res);
	assert_int_equal(res.nev, 1);
	assert_int_equal(res.lens[0], 125);
	free_result(&res);
	free(s.b);
}

static void test_ws_frame_reports_close_with_its_code_and_reason(void **state)
{
	struct bytes s = new_bytes();
	struct ws_decoder d;
	struct ws_region r;
	struct ws_control ctl;
	size_t in;

	(void)state;
	frame(&s, 0x88, "\x03\xe8" "bye", 5);
	frame(&s, 0x82, "late", 4);   /* after a close: never read */
	ws_decoder_init(&d, 1024);
	r.ptr = s.b;
	r.len = s.n;
	r.in = r.out = 0;
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_CLOSE);
	assert_int_equal(ctl.code, 1000);
	assert_int_equal(ctl.len, 3);
	assert_memory_equal(ctl.payload, "bye", 3);
	in = r.in;
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_CLOSE);
	assert_int_equal(ctl.code, 1000);
	assert_int_equal(r.in, in);
	assert_int_equal(r.out, 0);
	free(s.b);
}

static void test_ws_frame_reports_a_close_without_code_as_1005(void **state)
{
	struct bytes s = new_bytes();
	struct result res;

	(void)state;
	frame(&s, 0x88, "", 0);
	decode_all(&s, 1024, &res);
	assert_int_equal(res.nev, 1);
	assert_int_equal(res.events[0], WS_EV_CLOSE);
	assert_int_equal(res.codes[0], WS_CLOSE_NO_STATUS);
	free_result(&res);
	free(s.b);
}

static void test_ws_frame_refuses_a_close_body_of_one_byte(void **state)
{
	struct bytes s = new_bytes();

	(void)state;
	frame(&s, 0x88, "\x03", 1);
	expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 5.5.1]");
	free(s.b);
}

static void test_ws_frame_accepts_only_close_codes_that_may_be_sent(void **state)
{
	static const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1014, 3000,
	                                 4999 };
	static const uint16_t bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct bytes s = new_bytes();
		uint8_t c[2] = { (uint8_t)(good[i] >> 8), (uint8_t)good[i] };
		struct result res;

		frame(&s, 0x88, c, 2);
		decode_all(&s, 1024, &res);
		assert_int_equal(res.events[0], WS_EV_CLOSE);
		assert_int_equal(res.codes[0], good[i]);
		free_result(&res);
		free(s.b);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bytes s = new_bytes();
		uint8_t c[2] = { (uint8_t)(bad[i] >> 8), (uint8_t)bad[i] };

		frame(&s, 0x88, c, 2);
		expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 7.4]");
		free(s.b);
	}
}

static void test_ws_frame_refuses_a_close_reason_that_is_not_utf8_with_1007(void **state)
{
	struct bytes s = new_bytes();

	(void)state;
	frame(&s, 0x88, "\x03\xe8\xff", 3);
	expect_error(&s, WS_CLOSE_INVALID_DATA, "[RFC 6455 5.5.1]");
	free(s.b);
}

static void test_ws_frame_refuses_reserved_bits_with_1002(void **state)
{
	(void)state;
	for (unsigned rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
		struct bytes s = new_bytes();

		frame(&s, 0x82 | rsv, "x", 1);
		expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] reserved bits");
		free(s.b);
	}
}

static void test_ws_frame_refuses_reserved_opcodes_with_1002(void **state)
{
	static const unsigned ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct bytes s = new_bytes();

		frame(&s, 0x80 | ops[i], "", 0);
		expect_error(&s, WS_CLOSE_PROTOCOL, "reserved opcode");
		free(s.b);
	}
}

static void test_ws_frame_refuses_fragmented_or_long_control_frames_with_1002(void **state)
{
	struct bytes s = new_bytes(), t = new_bytes();
	uint8_t p[126];

	(void)state;
	frame(&s, 0x09, "a", 1);   /* ping without FIN */
	expect_error(&s, WS_CLOSE_PROTOCOL, "fragmented control frame");
	memset(p, 0, sizeof(p));
	frame(&t, 0x89, p, sizeof(p));
	expect_error(&t, WS_CLOSE_PROTOCOL, "over 125 bytes");
	free(s.b);
	free(t.b);
}

static void test_ws_frame_refuses_a_continuation_without_a_message(void **state)
{
	struct bytes s = new_bytes();

	(void)state;
	frame(&s, 0x80, "a", 1);
	expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 5.4] continuation");
	free(s.b);
}

static void test_ws_frame_refuses_a_new_message_inside_a_fragmented_one(void **state)
{
	struct bytes s = new_bytes();

	(void)state;
	frame(&s, 0x02, "a", 1);
	frame(&s, 0x82, "b", 1);
	expect_error(&s, WS_CLOSE_PROTOCOL, "[RFC 6455 5.4] new message");
	free(s.b);
}

static void test_ws_frame_refuses_lengths_not_in_their_shortest_form(void **state)
{
	struct bytes s = new_bytes(), t = new_bytes();
	uint8_t p[200];

	(void)state;
	memset(p, 1, sizeof(p));
	frame_ex(&s, 0x82, p, 125, 1, 2);
	expect_error(&s, WS_CLOSE_PROTOCOL, "shortest form");
	frame_ex(&t, 0x82, p, 200, 1, 8);
	expect_error(&t, WS_CLOSE_PROTOCOL, "shortest form");
	free(s.b);
	free(t.b);
}

static void test_ws_frame_refuses_a_64_bit_length_with_the_top_bit_set(void **state)
{
	uint8_t b[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };
	struct bytes s = { b, sizeof(b) };

	(void)state;
	expect_error(&s, WS_CLOSE_PROTOCOL, "top bit");
}

static void test_ws_frame_refuses_a_frame_over_the_limit_with_1009(void **state)
{
	struct bytes s = new_bytes();
	uint8_t p[1001];
	struct result res;
	uint8_t big[] = { 0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };   /* 2^32 bytes */
	struct bytes t = { big, sizeof(big) };

	(void)state;
	memset(p, 7, sizeof(p));
	frame(&s, 0x82, p, 1000);
	decode_all(&s, 1000, &res);
	assert_int_equal(res.nev, 0);
	assert_int_equal(res.data.n, 1000);
	free_result(&res);
	s.n = 0;
	frame(&s, 0x82, p, 1001);
	decode_all(&s, 1000, &res);
	assert_int_equal(res.nev, 1);
	assert_int_equal(res.events[0], WS_EV_ERROR);
	assert_int_equal(res.codes[0], WS_CLOSE_TOO_BIG);
	assert_int_equal(res.data.n, 0);
	free_result(&res);
	expect_error(&t, WS_CLOSE_TOO_BIG, "[RFC 6455 7.4.1]");
	free(s.b);
}

static void test_ws_frame_stays_failed_and_reads_nothing_more(void **state)
{
	struct bytes s = new_bytes();
	struct ws_decoder d;
	struct ws_region r;
	struct ws_control ctl;
	size_t in;

	(void)state;
	frame(&s, 0x81, "t", 1);
	frame(&s, 0x82, "b", 1);
	ws_decoder_init(&d, 1024);
	r.ptr = s.b;
	r.len = s.n;
	r.in = r.out = 0;
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_ERROR);
	in = r.in;
	assert_int_equal(ws_decode(&d, &r, &ctl), WS_EV_ERROR);
	assert_int_equal(ctl.code, WS_CLOSE_UNSUPPORTED);
	assert_non_null(ctl.why);
	assert_int_equal(r.in, in);
	free(s.b);
}

/* A stream with every kind of frame and every length encoding. */
static void mixed_stream(struct bytes *s)
{
	static uint8_t p[70000];

	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = (uint8_t)(i * 31 + 7);
	frame(s, 0x82, p, 3);
	frame(s, 0x02, p + 3, 126);           /* 16-bit length, FIN 0 */
	frame(s, 0x89, "hi", 2);
	frame(s, 0x00, p + 129, 0);
	frame(s, 0x8a, "", 0);
	frame(s, 0x80, p + 129, 70000 - 129); /* 64-bit length, FIN */
	frame(s, 0x82, "", 0);
	frame(s, 0x89, p, 125);
	frame(s, 0x82, p, 1);
	frame(s, 0x88, "\x0f\xa0" "done", 6);
}

static void test_ws_frame_gives_the_same_result_for_every_two_piece_split(void **state)
{
	struct bytes s = new_bytes();
	struct result whole, cut;
	size_t at;

	(void)state;
	mixed_stream(&s);
	decode_all(&s, 1 << 20, &whole);
	assert_int_equal(whole.data.n, 70000 + 1);
	assert_int_equal(whole.nev, 4);
	assert_int_equal(whole.events[3], WS_EV_CLOSE);
	assert_int_equal(whole.codes[3], 4000);
	/* Every position in the first and last 400 bytes (all the headers
	 * and small frames), every 97th inside the 70,000-byte payload. */
	for (at = 1; at < s.n; at += (at > 400 && at < s.n - 400) ? 97 : 1) {
		decode_cut(&s, &at, 1, 1 << 20, &cut);
		assert_same(&whole, &cut);
		free_result(&cut);
	}
	free_result(&whole);
	free(s.b);
}

static void test_ws_frame_gives_the_same_result_for_every_three_piece_split_of_small_frames(void **state)
{
	struct bytes s = new_bytes();
	struct result whole, cut;
	size_t cuts[2];

	(void)state;
	frame(&s, 0x82, "abc", 3);
	frame(&s, 0x02, "de", 2);
	frame(&s, 0x89, "p", 1);
	frame(&s, 0x80, "f", 1);
	frame(&s, 0x88, "\x03\xe8", 2);
	decode_all(&s, 1024, &whole);
	for (cuts[0] = 1; cuts[0] < s.n; cuts[0]++)
		for (cuts[1] = cuts[0] + 1; cuts[1] < s.n; cuts[1]++) {
			decode_cut(&s, cuts, 2, 1024, &cut);
			assert_same(&whole, &cut);
			free_result(&cut);
		}
	free_result(&whole);
	free(s.b);
}

static void test_ws_frame_gives_the_same_result_one_byte_at_a_time(void **state)
{
	struct bytes s = new_bytes();
	struct result whole, cut;
	size_t *cuts, i;

	(void)state;
	frame(&s, 0x82, "abc", 3);
	frame(&s, 0x02, "de", 2);
	frame(&s, 0x89, "ping", 4);
	{
		uint8_t p[300];

		memset(p, 'z', sizeof(p));
		frame(&s, 0x80, p, sizeof(p));
	}
	frame(&s, 0x88, "", 0);
	decode_all(&s, 1024, &whole);
	cuts = malloc(s.n * sizeof(*cuts));
	assert_non_null(cuts);
	for (i = 0; i + 1 < s.n; i++)
		cuts[i] = i + 1;
	decode_cut(&s, cuts, s.n - 1, 1024, &cut);
	assert_same(&whole, &cut);
	free_result(&cut);
	free_result(&whole);
	free(cuts);
	free(s.b);
}

static void test_ws_frame_errors_are_the_same_however_the_stream_is_cut(void **state)
{
	struct bytes s = new_bytes();
	struct result whole, cut;
	size_t at;

	(void)state;
	frame(&s, 0x82, "ok", 2);
	frame_ex(&s, 0x82, "bad", 3, 0, 0);
	decode_all(&s, 1024, &whole);
	assert_int_equal(whole.events[0], WS_EV_ERROR);
	for (at = 1; at < s.n; at++) {
		decode_cut(&s, &at, 1, 1024, &cut);
		assert_same(&whole, &cut);
		free_result(&cut);
	}
	free_result(&whole);
	free(s.b);
}

static void test_ws_frame_header_uses_2_4_or_10_bytes(void **state)
{
	uint8_t h[WS_HEADER_MAX];

	(void)state;
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 0), 2);
	assert_memory_equal(h, "\x82\x00", 2);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 125), 2);
	assert_memory_equal(h, "\x82\x7d", 2);
	/* RFC 6455 5.7: "256 bytes binary message in a single unmasked frame
	 * 0x82 0x7E 0x0100 [256 bytes of binary data]" */
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 256), 4);
	assert_memory_equal(h, "\x82\x7e\x01\x00", 4);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 126), 4);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 65535), 4);
	assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
	/* "64KiB binary message ... 0x82 0x7F 0x0000000000010000" */
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 1, 65536), 10);
	assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	assert_int_equal(ws_frame_header(h, WS_OP_BINARY, 0, 5), 2);
	assert_int_equal(h[0], 0x02);
	assert_int_equal(ws_frame_header(h, WS_OP_CONTINUATION, 1, 5), 2);
	assert_int_equal(h[0], 0x80);
}

static void test_ws_close_frame_echoes_a_code_or_sends_none(void **state)
{
	uint8_t f[WS_CLOSE_FRAME_MAX];

	(void)state;
	assert_int_equal(ws_close_frame(f, 1000), 4);
	assert_memory_equal(f, "\x88\x02\x03\xe8", 4);
	assert_int_equal(ws_close_frame(f, WS_CLOSE_PROTOCOL), 4);
	assert_memory_equal(f, "\x88\x02\x03\xea", 4);
	/* 1005 must not be sent in a close frame (7.4.1): an empty body. */
	assert_int_equal(ws_close_frame(f, WS_CLOSE_NO_STATUS), 2);
	assert_memory_equal(f, "\x88\x00", 2);
}

static void test_ws_pong_frame_echoes_the_ping_payload(void **state)
{
	uint8_t f[WS_PONG_FRAME_MAX], p[126];

	(void)state;
	assert_int_equal(ws_pong_frame(f, (const uint8_t *)"Hello", 5), 7);
	/* RFC 6455 5.7: "Unmasked Pong response: 0x8a 0x05 0x48 0x65 0x6c 0x6c 0x6f" */
	assert_memory_equal(f, "\x8a\x05Hello", 7);
	assert_int_equal(ws_pong_frame(f, NULL, 0), 2);
	memset(p, 0, sizeof(p));
	assert_int_equal(ws_pong_frame(f, p, 125), 127);
	assert_int_equal(ws_pong_frame(f, p, 126), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ws_frame_decodes_the_rfc_example_as_binary),
		cmocka_unit_test(test_ws_frame_refuses_the_rfc_text_example_with_1003_mqtt_6_0_0_1),
		cmocka_unit_test(test_ws_frame_refuses_an_unmasked_client_frame_with_1002),
		cmocka_unit_test(test_ws_frame_joins_mqtt_bytes_across_frames_and_fragments),
		cmocka_unit_test(test_ws_frame_reports_a_ping_inside_a_fragmented_message_in_order),
		cmocka_unit_test(test_ws_frame_reports_pongs_and_empty_pings),
		cmocka_unit_test(test_ws_frame_accepts_a_125_byte_control_frame),
		cmocka_unit_test(test_ws_frame_reports_close_with_its_code_and_reason),
		cmocka_unit_test(test_ws_frame_reports_a_close_without_code_as_1005),
		cmocka_unit_test(test_ws_frame_refuses_a_close_body_of_one_byte),
		cmocka_unit_test(test_ws_frame_accepts_only_close_codes_that_may_be_sent),
		cmocka_unit_test(test_ws_frame_refuses_a_close_reason_that_is_not_utf8_with_1007),
		cmocka_unit_test(test_ws_frame_refuses_reserved_bits_with_1002),
		cmocka_unit_test(test_ws_frame_refuses_reserved_opcodes_with_1002),
		cmocka_unit_test(test_ws_frame_refuses_fragmented_or_long_control_frames_with_1002),
		cmocka_unit_test(test_ws_frame_refuses_a_continuation_without_a_message),
		cmocka_unit_test(test_ws_frame_refuses_a_new_message_inside_a_fragmented_one),
		cmocka_unit_test(test_ws_frame_refuses_lengths_not_in_their_shortest_form),
		cmocka_unit_test(test_ws_frame_refuses_a_64_bit_length_with_the_top_bit_set),
		cmocka_unit_test(test_ws_frame_refuses_a_frame_over_the_limit_with_1009),
		cmocka_unit_test(test_ws_frame_stays_failed_and_reads_nothing_more),
		cmocka_unit_test(test_ws_frame_gives_the_same_result_for_every_two_piece_split),
		cmocka_unit_test(test_ws_frame_gives_the_same_result_for_every_three_piece_split_of_small_frames),
		cmocka_unit_test(test_ws_frame_gives_the_same_result_one_byte_at_a_time),
		cmocka_unit_test(test_ws_frame_errors_are_the_same_however_the_stream_is_cut),
		cmocka_unit_test(test_ws_frame_header_uses_2_4_or_10_bytes),
		cmocka_unit_test(test_ws_close_frame_echoes_a_code_or_sends_none),
		cmocka_unit_test(test_ws_pong_frame_echoes_the_ping_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
