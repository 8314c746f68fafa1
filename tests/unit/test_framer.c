/*
 * Following packet boundaries in the broker->client stream (mqtt/framer.c).
 *
 * Streams are built here from packet descriptions (a first byte and a body
 * length, MQTT 3.1.1 / 5.0 section 2.1 and 1.5.5 for the Variable Byte
 * Integer); the expected boundary after any prefix of a stream is the end
 * of the last packet that fits in that prefix, computed independently of
 * the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/framer.h"

#define MAX_PACKETS 16

/* A stream of whole packets and the stream offset where each one ends. */
struct stream {
	uint8_t *bytes;
	size_t len;
	size_t ends[MAX_PACKETS];
	size_t n;
};

/* Appends a packet with first byte |type| and |body| bytes of body. */
static void add_packet(struct stream *s, uint8_t type, size_t body)
{
	uint8_t hdr[5];
	size_t h = 0, v = body;

	assert_true(s->n < MAX_PACKETS);
	assert_true(body <= 268435455);
	hdr[h++] = type;
	do {
		uint8_t b = v % 128;

		v /= 128;
		hdr[h++] = (uint8_t)(v ? b | 0x80 : b);
	} while (v);
	s->bytes = realloc(s->bytes, s->len + h + body);
	assert_non_null(s->bytes);
	memcpy(s->bytes + s->len, hdr, h);
	/* Body bytes that look like headers, so a framer that read them
	 * would go wrong. */
	memset(s->bytes + s->len + h, 0xff, body);
	s->len += h + body;
	s->ends[s->n++] = s->len;
}

static void stream_free(struct stream *s)
{
	free(s->bytes);
	memset(s, 0, sizeof(*s));
}

/* The end of the last whole packet within the first |k| bytes. */
static size_t expected_boundary(const struct stream *s, size_t k)
{
	size_t b = 0;

	for (size_t i = 0; i < s->n && s->ends[i] <= k; i++)
		b = s->ends[i];
	return b;
}

static void assert_state(const struct mqtt_framer *f, const struct stream *s, size_t fed)
{
	assert_int_equal(f->lost, 0);
	assert_int_equal(f->total, fed);
	assert_int_equal(f->boundary, expected_boundary(s, fed));
	assert_true(f->boundary <= f->total);
}

static void assert_whole_feed(const struct stream *s)
{
	struct mqtt_framer f = { 0 };

	mqtt_framer_feed(&f, s->bytes, s->len);
	assert_state(&f, s, s->len);
	assert_int_equal(f.boundary, s->len);
}

static void assert_byte_by_byte(const struct stream *s)
{
	struct mqtt_framer f = { 0 };

	for (size_t i = 0; i < s->len; i++) {
		mqtt_framer_feed(&f, s->bytes + i, 1);
		assert_state(&f, s, i + 1);
	}
}

static void assert_split_at(const struct stream *s, size_t at)
{
	struct mqtt_framer f = { 0 };

	mqtt_framer_feed(&f, s->bytes, at);
	assert_state(&f, s, at);
	mqtt_framer_feed(&f, s->bytes + at, s->len - at);
	assert_state(&f, s, s->len);
}

static void assert_every_split(const struct stream *s)
{
	for (size_t at = 0; at <= s->len; at++)
		assert_split_at(s, at);
}

static void test_framer_starts_with_nothing_fed_and_no_boundary(void **state)
{
	struct mqtt_framer f = { 0 };

	mqtt_framer_feed(&f, NULL, 0);
	assert_int_equal(f.total, 0);
	assert_int_equal(f.boundary, 0);
	assert_int_equal(f.lost, 0);
}

static void test_framer_finds_the_end_of_a_single_publish(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x30, 10);
	assert_whole_feed(&s);
	assert_int_equal(s.len, 12);
	stream_free(&s);
}

/* PINGRESP, 3.1.1 section 3.13: c0 00, a packet with no body at all. */
static void test_framer_counts_a_zero_length_pingresp_as_complete(void **state)
{
	struct mqtt_framer f = { 0 };
	const uint8_t pingresp[2] = { 0xc0, 0x00 };

	mqtt_framer_feed(&f, pingresp, 1);
	assert_int_equal(f.boundary, 0);
	assert_int_equal(f.total, 1);
	mqtt_framer_feed(&f, pingresp + 1, 1);
	assert_int_equal(f.boundary, 2);
	assert_int_equal(f.total, 2);
}

static void test_framer_finds_every_boundary_of_consecutive_zero_length_packets(void **state)
{
	struct stream s = { 0 };

	for (int i = 0; i < 5; i++)
		add_packet(&s, 0xc0, 0);
	assert_whole_feed(&s);
	assert_byte_by_byte(&s);
	assert_every_split(&s);
	stream_free(&s);
}

static void test_framer_finds_the_end_of_several_packets_fed_at_once(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x20, 2);     /* CONNACK */
	add_packet(&s, 0x90, 3);     /* SUBACK */
	add_packet(&s, 0x32, 40);    /* PUBLISH QoS 1 */
	add_packet(&s, 0xc0, 0);     /* PINGRESP */
	add_packet(&s, 0x40, 2);     /* PUBACK */
	assert_whole_feed(&s);
	stream_free(&s);
}

/* 1.5.5: 127 fits one length byte, 128 takes two. */
static void test_framer_reads_two_byte_remaining_length_of_128(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x30, 127);
	add_packet(&s, 0x30, 128);
	assert_int_equal(s.ends[0], 129);
	assert_int_equal(s.ends[1], 129 + 3 + 128);
	assert_whole_feed(&s);
	assert_byte_by_byte(&s);
	assert_every_split(&s);
	stream_free(&s);
}

/* 16383 is the largest two-byte length, 16384 the smallest three-byte one. */
static void test_framer_reads_three_byte_remaining_length_of_16384(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x30, 16383);
	add_packet(&s, 0x30, 16384);
	add_packet(&s, 0xc0, 0);
	assert_int_equal(s.ends[1] - s.ends[0], 4 + 16384);
	assert_whole_feed(&s);
	assert_byte_by_byte(&s);
	assert_every_split(&s);
	stream_free(&s);
}

/* 2097151 is the largest three-byte length, 2097152 needs four. */
static void test_framer_reads_four_byte_remaining_length_of_2097152(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x30, 2097151);
	add_packet(&s, 0x30, 2097152);
	add_packet(&s, 0xe0, 0);
	assert_int_equal(s.ends[0], 4 + 2097151);
	assert_int_equal(s.ends[1] - s.ends[0], 5 + 2097152);
	assert_whole_feed(&s);
	assert_byte_by_byte(&s);
	/* Every split across the headers and the packet edges; inside the
	 * bodies one split per 4 KiB is enough (the body is skipped by count). */
	for (size_t at = 0; at <= s.len; at++) {
		int near_edge = at < 8;

		for (size_t i = 0; i < s.n && !near_edge; i++)
			near_edge = at + 8 > s.ends[i] && at < s.ends[i] + 8;
		if (near_edge || at % 4096 == 0)
			assert_split_at(&s, at);
	}
	stream_free(&s);
}

/* The largest remaining length, ff ff ff 7f (268435455), is still MQTT. */
static void test_framer_accepts_the_largest_four_byte_remaining_length(void **state)
{
	struct mqtt_framer f = { 0 };
	const uint8_t hdr[5] = { 0x30, 0xff, 0xff, 0xff, 0x7f };

	mqtt_framer_feed(&f, hdr, sizeof(hdr));
	assert_int_equal(f.lost, 0);
	assert_int_equal(f.total, 5);
	assert_int_equal(f.boundary, 0);
	assert_int_equal(f.left, 268435455);
}

static void test_framer_gives_the_same_result_for_every_two_piece_split_of_a_mixed_stream(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x20, 2);
	add_packet(&s, 0xc0, 0);
	add_packet(&s, 0x30, 128);
	add_packet(&s, 0xd0, 0);
	add_packet(&s, 0x3d, 300);
	add_packet(&s, 0x30, 16384);
	add_packet(&s, 0x62, 2);
	add_packet(&s, 0xc0, 0);
	assert_whole_feed(&s);
	assert_byte_by_byte(&s);
	assert_every_split(&s);
	stream_free(&s);
}

static void test_framer_matches_for_every_three_piece_split_of_a_short_stream(void **state)
{
	struct stream s = { 0 };

	add_packet(&s, 0x30, 129);
	add_packet(&s, 0xc0, 0);
	add_packet(&s, 0x40, 2);
	for (size_t a = 0; a <= s.len; a++) {
		for (size_t b = a; b <= s.len; b++) {
			struct mqtt_framer f = { 0 };

			mqtt_framer_feed(&f, s.bytes, a);
			assert_state(&f, &s, a);
			mqtt_framer_feed(&f, s.bytes + a, b - a);
			assert_state(&f, &s, b);
			mqtt_framer_feed(&f, s.bytes + b, s.len - b);
			assert_state(&f, &s, s.len);
		}
	}
	stream_free(&s);
}

/* 1.5.5: a Variable Byte Integer has at most four bytes; a fourth one with
 * its continuation bit set announces a fifth, which is not MQTT. */
static void test_framer_loses_track_on_a_fifth_remaining_length_byte(void **state)
{
	struct mqtt_framer f = { 0 };
	const uint8_t ok[2] = { 0xc0, 0x00 };
	const uint8_t bad[6] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x01 };

	mqtt_framer_feed(&f, ok, sizeof(ok));
	assert_int_equal(f.boundary, 2);
	mqtt_framer_feed(&f, bad, sizeof(bad));
	assert_int_equal(f.lost, 1);
	assert_int_equal(f.boundary, 2);
	assert_true(f.boundary <= f.total);
}

static void test_framer_loses_track_when_the_long_length_is_split_across_feeds(void **state)
{
	struct mqtt_framer f = { 0 };
	const uint8_t bad[6] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01 };

	for (size_t i = 0; i < sizeof(bad); i++)
		mqtt_framer_feed(&f, bad + i, 1);
	assert_int_equal(f.lost, 1);
	assert_int_equal(f.boundary, 0);
}

static void test_framer_stays_lost_and_keeps_its_last_boundary(void **state)
{
	struct mqtt_framer f = { 0 };
	const uint8_t bad[7] = { 0x40, 0x02, 0x00, 0x01, 0x30, 0xff, 0xff };
	const uint8_t more[6] = { 0xff, 0xff, 0x01, 0xc0, 0x00, 0xc0 };
	uint64_t total;

	mqtt_framer_feed(&f, bad, sizeof(bad));
	assert_int_equal(f.boundary, 4);
	mqtt_framer_feed(&f, more, sizeof(more));
	assert_int_equal(f.lost, 1);
	total = f.total;
	mqtt_framer_feed(&f, more + 3, 2);
	assert_int_equal(f.lost, 1);
	assert_int_equal(f.boundary, 4);
	assert_int_equal(f.total, total);
	assert_true(f.boundary <= f.total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer_starts_with_nothing_fed_and_no_boundary),
		cmocka_unit_test(test_framer_finds_the_end_of_a_single_publish),
		cmocka_unit_test(test_framer_counts_a_zero_length_pingresp_as_complete),
		cmocka_unit_test(test_framer_finds_every_boundary_of_consecutive_zero_length_packets),
		cmocka_unit_test(test_framer_finds_the_end_of_several_packets_fed_at_once),
		cmocka_unit_test(test_framer_reads_two_byte_remaining_length_of_128),
		cmocka_unit_test(test_framer_reads_three_byte_remaining_length_of_16384),
		cmocka_unit_test(test_framer_reads_four_byte_remaining_length_of_2097152),
		cmocka_unit_test(test_framer_accepts_the_largest_four_byte_remaining_length),
		cmocka_unit_test(test_framer_gives_the_same_result_for_every_two_piece_split_of_a_mixed_stream),
		cmocka_unit_test(test_framer_matches_for_every_three_piece_split_of_a_short_stream),
		cmocka_unit_test(test_framer_loses_track_on_a_fifth_remaining_length_byte),
		cmocka_unit_test(test_framer_loses_track_when_the_long_length_is_split_across_feeds),
		cmocka_unit_test(test_framer_stays_lost_and_keeps_its_last_boundary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
