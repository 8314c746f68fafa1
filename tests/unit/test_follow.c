/*
 * Unit tests for mqtt/follow.c, the client->broker packet follower.
 *
 * A simulated caller plays the session's part: bytes arrive in chunks (an
 * evbuffer's chains), the follower is shown the contiguous bytes at the
 * current position (copied into a buffer of exactly that size, so ASan
 * catches any read past them), NEED_MORE is answered by a "pullup" once
 * enough has arrived, PASS bytes are forwarded, DROP bytes discarded, and
 * every INSPECT is decided by a small policy (drop a PUBLISH whose topic
 * starts with "deny"). The forwarded bytes must equal the stream without
 * the dropped packets for every way of cutting the stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/follow.h"
#include "mqtt/packet.h"
#include "tests/unit/mqtt_bytes.h"

#define ACL_TYPES (MQTT_FOLLOW_TYPE(MQTT_PUBLISH) | MQTT_FOLLOW_TYPE(MQTT_SUBSCRIBE) | \
                   MQTT_FOLLOW_TYPE(MQTT_UNSUBSCRIBE))

struct stream {
	struct pkt all;        /* the client's bytes */
	struct pkt kept;       /* what the broker should get */
	int inspections;       /* INSPECT steps expected (one per inspected packet) */
};

static void append(struct stream *s, const struct pkt *frame, int keep, int inspected)
{
	p_raw(&s->all, frame->b, frame->n);
	if (keep)
		p_raw(&s->kept, frame->b, frame->n);
	s->inspections += inspected;
}

static void add_publish(struct stream *s, int v5, unsigned qos, const char *topic,
                        size_t payload)
{
	struct pkt body = { .n = 0 }, frame;

	p_str(&body, topic);
	if (qos > 0)
		p_u16(&body, 7);
	if (v5)
		p_u8(&body, 0);
	memset(body.b + body.n, 0x30, payload);   /* bodies that look like PUBLISH headers */
	body.n += payload;
	p_frame(&frame, 0x30 | (qos << 1), &body);
	append(s, &frame, strncmp(topic, "deny", 4) != 0, 1);
}

static void add_sub(struct stream *s, int v5, unsigned first, const char *filter)
{
	struct pkt body = { .n = 0 }, frame;

	p_u16(&body, 3);
	if (v5)
		p_u8(&body, 0);
	p_str(&body, filter);
	if (first == 0x82)
		p_u8(&body, 1);
	p_frame(&frame, first, &body);
	append(s, &frame, 1, 1);
}

static void add_raw(struct stream *s, const void *b, size_t n)
{
	struct pkt frame = { .n = 0 };

	p_raw(&frame, b, n);
	append(s, &frame, 1, 0);
}

static void mixed_stream(struct stream *s, int v5)
{
	memset(s, 0, sizeof(*s));
	add_raw(s, "\xc0\x00", 2);                       /* PINGREQ */
	add_publish(s, v5, 1, "ok/1", 300);              /* two-byte remaining length */
	add_raw(s, "\x40\x02\x00\x05", 4);               /* PUBACK */
	add_publish(s, v5, 0, "deny/x", 20);
	add_sub(s, v5, 0x82, "a/#");
	add_sub(s, v5, 0xa2, "a/#");
	add_publish(s, v5, 0, "ok/2", 0);
	add_publish(s, v5, 2, "deny/y", 5);
	add_raw(s, "\x62\x02\x00\x07", 4);               /* PUBREL */
	add_raw(s, "\xe0\x00", 2);                       /* DISCONNECT */
}

/* The simulated caller's record of one run. */
struct run {
	struct pkt fwd;
	size_t dropped;
	int inspections;
	size_t max_contig;
	enum mqtt_follow_step last;
	const char *why;
	size_t pos;
};

/* Bytes [0, received) have arrived in chunks ending at |cuts| (and at
 * |received|). Drives the follower as far as those bytes allow. */
static int drive(struct mqtt_follow *f, const struct pkt *all, const size_t *cuts, size_t ncuts,
                 size_t received, size_t *pulled, struct run *r)
{
	for (;;) {
		struct mqtt_follow_out out;
		size_t end = received, avail, i;
		uint8_t *copy;

		for (i = 0; i < ncuts; i++)
			if (cuts[i] > r->pos && cuts[i] < end)
				end = cuts[i];
		if (*pulled > end)
			end = *pulled;
		avail = end - r->pos;
		copy = malloc(avail > 0 ? avail : 1);
		assert_non_null(copy);
		memcpy(copy, all->b + r->pos, avail);
		r->last = mqtt_follow_next(f, copy, avail, &out);
		switch (r->last) {
		case MQTT_FOLLOW_PASS:
			assert_true(out.len > 0 && out.len <= avail);
			p_raw(&r->fwd, copy, out.len);
			r->pos += out.len;
			break;
		case MQTT_FOLLOW_DROP:
			assert_true(out.len > 0 && out.len <= avail);
			r->dropped += out.len;
			r->pos += out.len;
			break;
		case MQTT_FOLLOW_INSPECT:
			r->inspections++;
			assert_true(out.len <= avail);
			if (out.type == MQTT_PUBLISH)
				mqtt_follow_decide(f, !(out.publish.topic.len >= 4 &&
				                        memcmp(out.publish.topic.ptr, "deny", 4) == 0));
			else
				mqtt_follow_decide(f, 1);
			break;
		case MQTT_FOLLOW_NEED_MORE:
			assert_true(out.len > avail);
			if (received - r->pos < out.len) {
				free(copy);
				return 1;   /* wait for more bytes */
			}
			*pulled = r->pos + out.len;
			if (out.len > r->max_contig)
				r->max_contig = out.len;
			break;
		default:
			r->why = out.why;
			free(copy);
			return 0;
		}
		free(copy);
		if (*pulled <= r->pos)
			*pulled = 0;
	}
}

/* Feeds |all| cut at |cuts| (increasing, inside the stream). */
static void run_cut(const struct pkt *all, uint8_t version, size_t max_inspect,
                    const size_t *cuts, size_t ncuts, struct run *r)
{
	struct mqtt_follow f;
	size_t pulled = 0, i;

	memset(r, 0, sizeof(*r));
	mqtt_follow_init(&f, version, ACL_TYPES, max_inspect);
	for (i = 0; i <= ncuts; i++) {
		size_t received = i < ncuts ? cuts[i] : all->n;

		if (!drive(&f, all, cuts, ncuts, received, &pulled, r))
			return;
	}
}

static void expect_clean(const struct stream *s, const struct run *r)
{
	assert_int_equal(r->last, MQTT_FOLLOW_NEED_MORE);
	assert_int_equal(r->pos, s->all.n);
	assert_int_equal(r->fwd.n, s->kept.n);
	assert_memory_equal(r->fwd.b, s->kept.b, s->kept.n);
	assert_int_equal(r->dropped, s->all.n - s->kept.n);
	assert_int_equal(r->inspections, s->inspections);
}

static void test_follow_forwards_everything_but_dropped_packets_in_one_piece(void **state)
{
	static struct stream s;
	static struct run r;

	(void)state;
	mixed_stream(&s, 0);
	run_cut(&s.all, 4, 1024, NULL, 0, &r);
	expect_clean(&s, &r);
	mixed_stream(&s, 1);
	run_cut(&s.all, 5, 1024, NULL, 0, &r);
	expect_clean(&s, &r);
}

static void test_follow_agrees_for_every_two_piece_split(void **state)
{
	static struct stream s;
	static struct run r;
	size_t cut;

	(void)state;
	for (int v5 = 0; v5 <= 1; v5++) {
		mixed_stream(&s, v5);
		for (cut = 1; cut < s.all.n; cut++) {
			run_cut(&s.all, v5 ? 5 : 4, 1024, &cut, 1, &r);
			expect_clean(&s, &r);
		}
	}
}

static void test_follow_agrees_for_every_three_piece_split(void **state)
{
	static struct stream s;
	static struct run r;
	size_t cuts[2];

	(void)state;
	mixed_stream(&s, 1);
	for (cuts[0] = 1; cuts[0] < s.all.n; cuts[0] += 3)
		for (cuts[1] = cuts[0] + 1; cuts[1] < s.all.n; cuts[1]++) {
			run_cut(&s.all, 5, 1024, cuts, 2, &r);
			expect_clean(&s, &r);
		}
}

static void test_follow_agrees_when_every_byte_arrives_alone(void **state)
{
	static struct stream s;
	static struct run r;
	static size_t cuts[4096];
	size_t i;

	(void)state;
	mixed_stream(&s, 0);
	for (i = 0; i + 1 < s.all.n; i++)
		cuts[i] = i + 1;
	run_cut(&s.all, 4, 1024, cuts, s.all.n - 1, &r);
	expect_clean(&s, &r);
}

static void test_follow_passes_several_uninspected_packets_in_one_step(void **state)
{
	const uint8_t b[] = { 0xc0, 0x00, 0x40, 0x02, 0x00, 0x01, 0xe0, 0x00 };
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, b, sizeof(b), &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, sizeof(b));
	/* Cut inside the PUBACK: the whole PINGREQ and the start of the PUBACK. */
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, b, 4, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, 4);
	assert_int_equal(mqtt_follow_next(&f, b + 4, 2, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, 2);
	/* Cut inside the DISCONNECT's fixed header: stop before it. */
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, b, 7, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, 6);
	assert_int_equal(mqtt_follow_next(&f, b + 6, 1, &out), MQTT_FOLLOW_NEED_MORE);
	assert_int_equal(out.len, 2);
}

static void test_follow_stops_a_pass_before_an_inspected_packet(void **state)
{
	struct pkt b = { .n = 0 }, body = { .n = 0 }, frame;
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	p_raw(&b, "\xc0\x00", 2);
	p_str(&body, "t");
	p_frame(&frame, 0x30, &body);
	p_raw(&b, frame.b, frame.n);
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, b.b, b.n, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, 2);
	assert_int_equal(mqtt_follow_next(&f, b.b + 2, b.n - 2, &out), MQTT_FOLLOW_INSPECT);
	assert_int_equal(out.type, MQTT_PUBLISH);
	assert_int_equal(out.total_len, frame.n);
}

static void test_follow_streams_a_large_uninspected_packet_through_small_buffers(void **state)
{
	/* A PUBLISH of 100,000 bytes with PUBLISH not inspected. */
	static uint8_t big[100010];
	struct pkt hdr = { .n = 0 };
	struct mqtt_follow f;
	struct mqtt_follow_out out;
	size_t pos = 0, passed = 0;

	(void)state;
	p_u8(&hdr, 0x30);
	p_varint(&hdr, 100000);
	memcpy(big, hdr.b, hdr.n);
	memset(big + hdr.n, 0xc0, 100000);
	mqtt_follow_init(&f, 4, MQTT_FOLLOW_TYPE(MQTT_SUBSCRIBE), 64);
	while (pos < hdr.n + 100000) {
		size_t avail = hdr.n + 100000 - pos < 1000 ? hdr.n + 100000 - pos : 1000;

		assert_int_equal(mqtt_follow_next(&f, big + pos, avail, &out), MQTT_FOLLOW_PASS);
		pos += out.len;
		passed += out.len;
	}
	assert_int_equal(passed, hdr.n + 100000);
}

static void test_follow_inspects_a_large_publish_with_only_its_header_contiguous(void **state)
{
	struct pkt hdr = { .n = 0 }, body = { .n = 0 };
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	p_str(&body, "a/b");
	p_u16(&body, 1);
	p_u8(&hdr, 0x32);
	p_varint(&hdr, (uint32_t)(body.n + 1000000));
	p_raw(&hdr, body.b, body.n);
	mqtt_follow_init(&f, 4, ACL_TYPES, 32);
	assert_int_equal(mqtt_follow_next(&f, hdr.b, hdr.n, &out), MQTT_FOLLOW_INSPECT);
	assert_int_equal(out.len, hdr.n);
	assert_int_equal(out.total_len, hdr.n + 1000000);
	assert_int_equal(out.publish.packet_id, 1);
	mqtt_follow_decide(&f, 0);
	assert_int_equal(mqtt_follow_next(&f, hdr.b, hdr.n, &out), MQTT_FOLLOW_DROP);
	assert_int_equal(out.len, hdr.n);
}

static void test_follow_refuses_a_subscribe_larger_than_the_inspection_limit(void **state)
{
	static struct stream s;
	static struct run r;

	(void)state;
	memset(&s, 0, sizeof(s));
	add_sub(&s, 0, 0x82, "a/very/long/filter/that/does/not/fit");
	run_cut(&s.all, 4, 16, NULL, 0, &r);
	assert_int_equal(r.last, MQTT_FOLLOW_TOO_LARGE);
	assert_int_equal(r.fwd.n, 0);
	assert_non_null(r.why);
}

static void test_follow_refuses_a_publish_header_larger_than_the_inspection_limit(void **state)
{
	static struct stream s;
	static struct run r;
	size_t cut;

	(void)state;
	memset(&s, 0, sizeof(s));
	add_publish(&s, 0, 0, "a/topic/name/longer/than/the/limit", 3);
	for (cut = 1; cut < s.all.n; cut++) {
		run_cut(&s.all, 4, 20, &cut, 1, &r);
		assert_int_equal(r.last, MQTT_FOLLOW_TOO_LARGE);
		assert_true(r.max_contig <= 20);
	}
}

static void test_follow_inspects_a_header_exactly_at_the_limit_at_every_split(void **state)
{
	static struct stream s;
	static struct run r;
	size_t cut, limit;

	(void)state;
	/* A 5.0 PUBLISH whose header (fixed header, topic, packet id, empty
	 * property length) is 23 bytes, with a payload after it: the limit
	 * of 23 must admit it however the bytes arrive. */
	memset(&s, 0, sizeof(s));
	add_publish(&s, 1, 1, "ok/seventeen-chr", 40);
	limit = 2 + 2 + 16 + 2 + 1;
	for (cut = 1; cut < s.all.n; cut++) {
		run_cut(&s.all, 5, limit, &cut, 1, &r);
		expect_clean(&s, &r);
		assert_true(r.max_contig <= limit);
	}
	run_cut(&s.all, 5, limit - 1, NULL, 0, &r);
	assert_int_equal(r.last, MQTT_FOLLOW_TOO_LARGE);
}

static void test_follow_refuses_a_malformed_publish_at_every_split(void **state)
{
	static struct stream s;
	static struct run r;
	size_t cut;

	(void)state;
	memset(&s, 0, sizeof(s));
	add_raw(&s, "\xc0\x00", 2);
	add_publish(&s, 0, 0, "bad/+", 3);
	for (cut = 1; cut < s.all.n; cut++) {
		run_cut(&s.all, 4, 1024, &cut, 1, &r);
		assert_int_equal(r.last, MQTT_FOLLOW_REFUSE);
		assert_non_null(strstr(r.why, "[MQTT-3.3.2-2]"));
		/* The PINGREQ before it was forwarded; nothing of the PUBLISH. */
		assert_int_equal(r.fwd.n, 2);
	}
}

static void test_follow_refuses_a_fifth_remaining_length_byte_and_stays_refused(void **state)
{
	const uint8_t b[] = { 0x40, 0xff, 0xff, 0xff, 0xff, 0x01 };
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, b, 4, &out), MQTT_FOLLOW_NEED_MORE);
	assert_int_equal(out.len, 5);
	assert_int_equal(mqtt_follow_next(&f, b, sizeof(b), &out), MQTT_FOLLOW_REFUSE);
	assert_int_equal(out.result, MQTT_PARSE_MALFORMED);
	assert_int_equal(mqtt_follow_next(&f, (const uint8_t *)"\xc0\x00", 2, &out), MQTT_FOLLOW_REFUSE);
	assert_non_null(out.why);
}

static void test_follow_inspects_again_when_no_decision_was_made(void **state)
{
	struct pkt body = { .n = 0 }, frame;
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	p_str(&body, "t");
	p_frame(&frame, 0x30, &body);
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, frame.b, frame.n, &out), MQTT_FOLLOW_INSPECT);
	assert_int_equal(mqtt_follow_next(&f, frame.b, frame.n, &out), MQTT_FOLLOW_INSPECT);
	mqtt_follow_decide(&f, 1);
	assert_int_equal(mqtt_follow_next(&f, frame.b, frame.n, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, frame.n);
	/* A decision without a pending INSPECT changes nothing. */
	mqtt_follow_decide(&f, 0);
	assert_int_equal(mqtt_follow_next(&f, frame.b, frame.n, &out), MQTT_FOLLOW_INSPECT);
}

static void test_follow_leaves_uninspected_types_alone(void **state)
{
	static struct stream s;
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	memset(&s, 0, sizeof(s));
	add_sub(&s, 0, 0x82, "a/#");
	mqtt_follow_init(&f, 4, MQTT_FOLLOW_TYPE(MQTT_PUBLISH), 1024);
	assert_int_equal(mqtt_follow_next(&f, s.all.b, s.all.n, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, s.all.n);
}

static void test_follow_asks_for_bytes_when_given_none(void **state)
{
	const uint8_t b[] = { 0x40, 0x02, 0x00 };
	struct mqtt_follow f;
	struct mqtt_follow_out out;

	(void)state;
	mqtt_follow_init(&f, 4, ACL_TYPES, 1024);
	assert_int_equal(mqtt_follow_next(&f, NULL, 0, &out), MQTT_FOLLOW_NEED_MORE);
	assert_int_equal(out.len, 2);
	assert_int_equal(mqtt_follow_next(&f, b, 3, &out), MQTT_FOLLOW_PASS);
	assert_int_equal(out.len, 3);
	assert_int_equal(mqtt_follow_next(&f, NULL, 0, &out), MQTT_FOLLOW_NEED_MORE);
	assert_int_equal(out.len, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follow_forwards_everything_but_dropped_packets_in_one_piece),
		cmocka_unit_test(test_follow_agrees_for_every_two_piece_split),
		cmocka_unit_test(test_follow_agrees_for_every_three_piece_split),
		cmocka_unit_test(test_follow_agrees_when_every_byte_arrives_alone),
		cmocka_unit_test(test_follow_passes_several_uninspected_packets_in_one_step),
		cmocka_unit_test(test_follow_stops_a_pass_before_an_inspected_packet),
		cmocka_unit_test(test_follow_streams_a_large_uninspected_packet_through_small_buffers),
		cmocka_unit_test(test_follow_inspects_a_large_publish_with_only_its_header_contiguous),
		cmocka_unit_test(test_follow_refuses_a_subscribe_larger_than_the_inspection_limit),
		cmocka_unit_test(test_follow_refuses_a_publish_header_larger_than_the_inspection_limit),
		cmocka_unit_test(test_follow_inspects_a_header_exactly_at_the_limit_at_every_split),
		cmocka_unit_test(test_follow_refuses_a_malformed_publish_at_every_split),
		cmocka_unit_test(test_follow_refuses_a_fifth_remaining_length_byte_and_stays_refused),
		cmocka_unit_test(test_follow_inspects_again_when_no_decision_was_made),
		cmocka_unit_test(test_follow_leaves_uninspected_types_alone),
		cmocka_unit_test(test_follow_asks_for_bytes_when_given_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
