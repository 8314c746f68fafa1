/*
 * Unit tests for proxy/acl_filter.c: the ACL filter over a session's two
 * queues, without a session. Streams are fed whole and a byte at a time
 * (every cut of a header, a held SUBACK, answers waiting for a boundary);
 * what the broker gets and what the client gets are compared with packets
 * spelled out here, byte by byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/packet.h"
#include "proxy/acl_filter.h"
#include "proxy/bufq.h"
#include "proxy/metrics.h"
#include "tests/unit/mqtt_bytes.h"

static const char RULES[] =
	"topic read public/#\n"
	"user alice\n"
	"topic readwrite a/#\n"
	"topic deny a/secret\n"
	"topic read public/#\n";

struct rig {
	struct blk_cache c;
	struct bufq up, down;
	struct mqtt_framer f;
	struct acl_io io;
	struct acl_session *a;
};

static void rig_init(struct rig *r, uint8_t version, int disconnect, int connack_seen)
{
	char err[200];
	struct acl *acl = acl_parse(RULES, sizeof(RULES) - 1, "rules", err, sizeof(err));
	struct slice user = { (const uint8_t *)"alice", 5 }, cid = { (const uint8_t *)"c1", 2 };

	memset(r, 0, sizeof(*r));
	assert_non_null(acl);
	blk_cache_init(&r->c, 4);
	r->io = (struct acl_io){ &r->up, &r->down, &r->f, &r->c, NULL };
	r->a = acl_session_new(acl, NULL, &user, cid, version, disconnect);
	assert_non_null(r->a);
	if (connack_seen) {
		/* The broker's CONNACK went by: answers may go at the end. */
		static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };

		mqtt_framer_feed(&r->f, connack, sizeof(connack));
	}
}

static void rig_free(struct rig *r)
{
	acl_session_free(r->a);
	bufq_clear(&r->up, &r->c);
	bufq_clear(&r->down, &r->c);
	blk_cache_cleanup(&r->c);
}

static void queue_bytes(const struct bufq *q, struct pkt *out)
{
	out->n = bufq_len(q);
	assert_true(out->n <= sizeof(out->b));
	assert_true(bufq_copyout(q, 0, out->b, out->n));
}

static void assert_queue(const struct bufq *q, const struct pkt *want)
{
	struct pkt got;

	queue_bytes(q, &got);
	assert_int_equal(got.n, want->n);
	assert_memory_equal(got.b, want->b, want->n);
}

/* Feeds |s| to the filter in pieces of |step| bytes; returns the last step's result. */
static enum acl_step feed_up(struct rig *r, const struct pkt *s, size_t step, struct acl_report *rep)
{
	enum acl_step res = ACL_OK;

	for (size_t i = 0; i < s->n && res == ACL_OK; i += step) {
		size_t n = s->n - i < step ? s->n - i : step, from = bufq_len(&r->up);

		assert_true(bufq_add(&r->up, &r->c, s->b + i, n));
		res = acl_filter_up(r->a, &r->io, from, rep);
	}
	return res;
}

static void feed_down(struct rig *r, const struct pkt *s, size_t step)
{
	for (size_t i = 0; i < s->n; i += step) {
		size_t n = s->n - i < step ? s->n - i : step, from = bufq_len(&r->down);

		assert_true(bufq_add(&r->down, &r->c, s->b + i, n));
		if (acl_down_busy(r->a))
			assert_true(acl_filter_down(r->a, &r->io, from));
		else
			mqtt_framer_feed(&r->f, s->b + i, n);
	}
}

static void publish(struct pkt *out, uint8_t version, const char *topic, unsigned qos, unsigned id,
                    const char *payload)
{
	struct pkt body = { .n = 0 };

	p_str(&body, topic);
	if (qos)
		p_u16(&body, id);
	if (version == 5)
		p_u8(&body, 0);
	p_raw(&body, payload, strlen(payload));
	p_frame(out, 0x30 | (qos << 1), &body);
}

static void subscribe(struct pkt *out, uint8_t version, unsigned id, const char *const *filters, size_t n)
{
	struct pkt body = { .n = 0 };

	p_u16(&body, id);
	if (version == 5)
		p_u8(&body, 0);
	for (size_t i = 0; i < n; i++) {
		p_str(&body, filters[i]);
		p_u8(&body, 1);
	}
	p_frame(out, 0x82, &body);
}

static void suback(struct pkt *out, uint8_t version, unsigned id, const uint8_t *codes, size_t n)
{
	struct pkt body = { .n = 0 };

	p_u16(&body, id);
	if (version == 5)
		p_u8(&body, 0);
	p_raw(&body, codes, n);
	p_frame(out, 0x90, &body);
}

static void append(struct pkt *to, const struct pkt *p)
{
	p_raw(to, p->b, p->n);
}

/* Allowed packets pass byte for byte, a denied PUBLISH (payload and all)
 * is cut out, a denied QoS 1 is answered with a PUBACK (3.1.1: no
 * reason), however the stream is cut. */
static void test_publish_denied_cut_out(void **state)
{
	for (size_t step = 1; step <= 64; step = step * 2 + 1) {
		struct rig r;
		struct acl_report rep;
		struct pkt in = { .n = 0 }, want = { .n = 0 }, p, ping = { .n = 0 }, ack = { .n = 0 };

		rig_init(&r, 4, 0, 1);
		publish(&p, 4, "a/1", 0, 0, "hello");
		append(&in, &p);
		append(&want, &p);
		publish(&p, 4, "a/secret", 1, 7, "a payload that must not pass");
		append(&in, &p);
		publish(&p, 4, "b/x", 0, 0, "also denied");
		append(&in, &p);
		p_u8(&ping, 0xc0);
		p_u8(&ping, 0);
		append(&in, &ping);
		append(&want, &ping);
		publish(&p, 4, "a/2", 1, 8, "bye");
		append(&in, &p);
		append(&want, &p);
		assert_int_equal(feed_up(&r, &in, step, &rep), ACL_OK);
		assert_queue(&r.up, &want);
		p_u8(&ack, 0x40);
		p_u8(&ack, 2);
		p_u16(&ack, 7);
		assert_queue(&r.down, &ack);
		rig_free(&r);
	}
	(void)state;
}

/* Answers wait for the broker's CONNACK, and for the end of a broker
 * packet the client has the start of. */
static void test_answers_wait_for_a_boundary(void **state)
{
	struct rig r;
	struct acl_report rep;
	struct pkt in = { .n = 0 }, connack = { .n = 0 }, big = { .n = 0 }, want = { .n = 0 };

	rig_init(&r, 5, 0, 0);
	publish(&in, 5, "a/secret", 2, 9, "x");
	assert_int_equal(feed_up(&r, &in, in.n, &rep), ACL_OK);
	assert_int_equal(rep.answered, 0);
	assert_int_equal(bufq_len(&r.down), 0);
	assert_true(acl_down_busy(r.a));
	p_u8(&connack, 0x20);
	p_u8(&connack, 3);
	p_u8(&connack, 0);
	p_u8(&connack, 0);
	p_u8(&connack, 0);
	publish(&big, 5, "public/x", 0, 0, "from the broker");
	/* CONNACK and half a PUBLISH: the PUBREC goes between them. */
	{
		struct pkt first = { .n = 0 }, rest = { .n = 0 };

		append(&first, &connack);
		p_raw(&first, big.b, 6);
		p_raw(&rest, big.b + 6, big.n - 6);
		feed_down(&r, &first, first.n);
		feed_down(&r, &rest, rest.n);
	}
	append(&want, &connack);
	p_u8(&want, 0x50);
	p_u8(&want, 3);
	p_u16(&want, 9);
	p_u8(&want, 0x87);
	append(&want, &big);
	assert_queue(&r.down, &want);
	assert_false(acl_down_busy(r.a));
	assert_int_equal(r.f.state, 0);
	assert_int_equal(r.f.total, want.n);
	rig_free(&r);
	(void)state;
}

/* A SUBSCRIBE loses its denied filters on the way to the broker, and the
 * broker's SUBACK (held while incomplete) gets 0x80 at their positions. */
static void test_subscribe_merge(void **state)
{
	static const char *const all[] = { "a/x", "a/secret", "public/y", "nope" };
	static const char *const kept[] = { "a/x", "public/y" };
	static const uint8_t broker_codes[] = { 1, 0 };
	static const uint8_t client_codes[] = { 1, 0x80, 0, 0x80 };

	for (size_t step = 1; step <= 32; step = step * 2 + 1) {
		struct rig r;
		struct acl_report rep;
		struct pkt in, want, sa, merged, ping = { .n = 0 }, down = { .n = 0 }, expect = { .n = 0 };

		rig_init(&r, 4, 0, 1);
		subscribe(&in, 4, 0x1234, all, 4);
		subscribe(&want, 4, 0x1234, kept, 2);
		assert_int_equal(feed_up(&r, &in, step, &rep), ACL_OK);
		assert_queue(&r.up, &want);
		assert_true(acl_down_busy(r.a));
		/* A PINGRESP, then the SUBACK in pieces. */
		p_u8(&ping, 0xd0);
		p_u8(&ping, 0);
		suback(&sa, 4, 0x1234, broker_codes, 2);
		append(&down, &ping);
		append(&down, &sa);
		feed_down(&r, &down, step);
		suback(&merged, 4, 0x1234, client_codes, 4);
		append(&expect, &ping);
		append(&expect, &merged);
		assert_queue(&r.down, &expect);
		assert_false(acl_down_busy(r.a));
		assert_int_equal(r.f.total, 4 + expect.n);
		rig_free(&r);
	}
	(void)state;
}

/* Nothing allowed: the broker never sees it; 5.0 gets 0x87 for each. */
static void test_subscribe_all_denied_answered_alone(void **state)
{
	static const char *const all[] = { "nope", "a/secret" };
	static const uint8_t codes[] = { 0x87, 0x87 };
	struct rig r;
	struct acl_report rep;
	struct pkt in, sa;

	rig_init(&r, 5, 0, 1);
	subscribe(&in, 5, 3, all, 2);
	assert_int_equal(feed_up(&r, &in, in.n, &rep), ACL_OK);
	assert_int_equal(bufq_len(&r.up), 0);
	assert_int_equal(rep.answered, 1);
	suback(&sa, 5, 3, codes, 2);
	assert_queue(&r.down, &sa);
	assert_false(acl_down_busy(r.a));
	rig_free(&r);
	(void)state;
}

/* --acl-deny disconnect: the broker gets what came before, nothing after. */
static void test_deny_disconnect(void **state)
{
	struct rig r;
	struct acl_report rep;
	struct pkt in = { .n = 0 }, want = { .n = 0 }, p;

	rig_init(&r, 5, 1, 1);
	publish(&p, 5, "a/ok", 0, 0, "1");
	append(&in, &p);
	append(&want, &p);
	publish(&p, 5, "a/secret", 0, 0, "2");
	append(&in, &p);
	publish(&p, 5, "a/ok", 0, 0, "3");
	append(&in, &p);
	assert_int_equal(feed_up(&r, &in, in.n, &rep), ACL_DENY_CLOSE);
	assert_int_equal(rep.code, 0x87);
	assert_queue(&r.up, &want);
	/* Whatever follows is dropped. */
	assert_int_equal(feed_up(&r, &p, p.n, &rep), ACL_OK);
	assert_queue(&r.up, &want);
	rig_free(&r);
	(void)state;
}

/* 5.0 Topic Alias: the alias stands for the topic it was set with, a
 * denied one included; an alias never set is a protocol error. */
static void test_topic_alias(void **state)
{
	struct rig r;
	struct acl_report rep;
	struct pkt in = { .n = 0 }, want = { .n = 0 }, body, p;
	const struct {
		const char *topic;
		unsigned alias;
		int pass;
	} seq[] = { { "a/ok", 1, 1 }, { "", 1, 1 }, { "a/secret", 2, 0 }, { "", 2, 0 }, { "a/ok2", 2, 1 },
		    { "", 2, 1 } };

	rig_init(&r, 5, 0, 1);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		struct pkt props = { .n = 0 };

		body.n = 0;
		p_str(&body, seq[i].topic);
		p_u8(&props, 0x23);
		p_u16(&props, seq[i].alias);
		p_props(&body, &props);
		p_raw(&body, "pl", 2);
		p_frame(&p, 0x30, &body);
		append(&in, &p);
		if (seq[i].pass)
			append(&want, &p);
	}
	assert_int_equal(feed_up(&r, &in, 3, &rep), ACL_OK);
	assert_queue(&r.up, &want);
	body.n = 0;
	p_str(&body, "");
	{
		struct pkt props = { .n = 0 };

		p_u8(&props, 0x23);
		p_u16(&props, 9);
		p_props(&body, &props);
	}
	p_frame(&p, 0x30, &body);
	assert_int_equal(feed_up(&r, &p, p.n, &rep), ACL_REFUSE);
	assert_int_equal(rep.code, 0x82);
	assert_queue(&r.up, &want);
	rig_free(&r);
	(void)state;
}

/* A malformed PUBLISH (QoS 3) ends the stream before it; the follower's
 * rule is the reason. */
static void test_malformed_refused(void **state)
{
	struct rig r;
	struct acl_report rep;
	struct pkt in = { .n = 0 }, want = { .n = 0 }, p;

	rig_init(&r, 5, 0, 1);
	publish(&p, 5, "a/ok", 0, 0, "1");
	append(&in, &p);
	append(&want, &p);
	publish(&p, 5, "a/ok", 0, 0, "2");
	p.b[0] |= 0x06;    /* QoS 3 */
	append(&in, &p);
	assert_int_equal(feed_up(&r, &in, 2, &rep), ACL_REFUSE);
	assert_non_null(rep.why);
	assert_int_equal(rep.code, 0x81);
	assert_queue(&r.up, &want);
	rig_free(&r);
	(void)state;
}

/* ---- acknowledgements in the order of the PUBLISHes (MQTT-4.6.0-2) ---------- */

/* A PUBACK (type 4) or PUBREC (type 5) for |id|; 5.0 with a reason code. */
static void ack(struct pkt *out, uint8_t version, unsigned type, unsigned id, uint8_t rc)
{
	struct pkt body = { .n = 0 };

	p_u16(&body, id);
	if (version == 5)
		p_u8(&body, rc);
	p_frame(out, (uint8_t)(type << 4), &body);
}

/* mqtls's own answer to a denied PUBLISH: 5.0 carries 0x87, 3.1.1 nothing. */
static void denial(struct pkt *out, uint8_t version, unsigned type, unsigned id)
{
	struct pkt body = { .n = 0 };

	p_u16(&body, id);
	if (version == 5)
		p_u8(&body, 0x87);
	p_frame(out, (uint8_t)(type << 4), &body);
}

/* Client PUBLISHes, each allowed (a/...) or denied (a/secret). */
struct pub {
	unsigned qos, id;
	int allowed;
};

static void send_pubs(struct rig *r, uint8_t version, const struct pub *pubs, size_t n, struct pkt *want_up)
{
	struct acl_report rep;
	struct pkt in = { .n = 0 }, p;

	want_up->n = 0;
	for (size_t i = 0; i < n; i++) {
		publish(&p, version, pubs[i].allowed ? "a/ok" : "a/secret", pubs[i].qos, pubs[i].id, "payload");
		append(&in, &p);
		if (pubs[i].allowed)
			append(want_up, &p);
	}
	assert_int_equal(feed_up(r, &in, in.n, &rep), ACL_OK);
	assert_queue(&r->up, want_up);
}

/* An allowed QoS 1 PUBLISH the broker has not acknowledged, then a denied
 * one: the 0x87 PUBACK goes only after the broker's PUBACK for the first,
 * however the broker's bytes are cut; a broker PUBLISH before it changes
 * nothing. Both protocol levels. */
static void test_denial_waits_for_earlier_ack(void **state)
{
	static const struct pub pubs[] = { { 1, 1, 1 }, { 1, 2, 0 } };

	for (uint8_t version = 4; version <= 5; version++) {
		for (size_t step = 1; step <= 40; step++) {
			struct rig r;
			struct pkt up, down = { .n = 0 }, want = { .n = 0 }, p;

			rig_init(&r, version, 0, 1);
			send_pubs(&r, version, pubs, 2, &up);
			assert_int_equal(bufq_len(&r.down), 0);
			assert_true(acl_down_busy(r.a));
			publish(&p, version, "public/x", 0, 0, "from the broker");
			append(&down, &p);
			ack(&p, version, 4, 1, 0);
			append(&down, &p);
			feed_down(&r, &down, step);
			append(&want, &down);
			denial(&p, version, 4, 2);
			append(&want, &p);
			assert_queue(&r.down, &want);
			assert_false(acl_down_busy(r.a));
			assert_int_equal(r.f.total, 4 + want.n);
			assert_int_equal(r.f.state, 0);
			rig_free(&r);
		}
	}
	(void)state;
}

/* QoS 2: the broker's PUBREC is what orders (a PUBACK for the same id is
 * not it); the denied QoS 2 gets its PUBREC after it. */
static void test_denial_waits_for_pubrec(void **state)
{
	static const struct pub pubs[] = { { 2, 3, 1 }, { 2, 4, 0 } };

	for (size_t step = 1; step <= 12; step++) {
		struct rig r;
		struct pkt up, down = { .n = 0 }, want = { .n = 0 }, p;

		rig_init(&r, 5, 0, 1);
		send_pubs(&r, 5, pubs, 2, &up);
		ack(&p, 5, 4, 3, 0);    /* a PUBACK 3: not what QoS 2 waits for */
		append(&down, &p);
		feed_down(&r, &down, step);
		assert_queue(&r.down, &down);
		ack(&p, 5, 5, 3, 0);
		append(&want, &down);
		append(&want, &p);
		feed_down(&r, &p, step);
		denial(&p, 5, 5, 4);
		append(&want, &p);
		assert_queue(&r.down, &want);
		assert_false(acl_down_busy(r.a));
		rig_free(&r);
	}
	(void)state;
}

/* Several outstanding, acked out of order, with an ack for an id never
 * sent in between: each answer goes right after the last ack it waits for. */
static void test_several_outstanding_out_of_order(void **state)
{
	static const struct pub pubs[] = { { 1, 1, 1 }, { 2, 2, 1 }, { 1, 3, 0 }, { 1, 4, 1 }, { 2, 5, 0 },
		                           { 1, 6, 0 } };

	for (size_t step = 1; step <= 9; step += 4) {
		struct rig r;
		struct pkt up, want = { .n = 0 }, p;

		rig_init(&r, 5, 0, 1);
		send_pubs(&r, 5, pubs, 6, &up);
		ack(&p, 5, 5, 2, 0);      /* 2 first: 1 is still waited for */
		append(&want, &p);
		feed_down(&r, &p, step);
		ack(&p, 5, 4, 99, 0);     /* never sent: ignored */
		append(&want, &p);
		feed_down(&r, &p, step);
		assert_queue(&r.down, &want);
		ack(&p, 5, 4, 1, 0);      /* 3 waited for 1 and 2 */
		append(&want, &p);
		feed_down(&r, &p, step);
		denial(&p, 5, 4, 3);
		append(&want, &p);
		assert_queue(&r.down, &want);
		assert_true(acl_down_busy(r.a));
		ack(&p, 5, 4, 4, 0);      /* 5 and 6 waited for 4 too */
		append(&want, &p);
		feed_down(&r, &p, step);
		denial(&p, 5, 5, 5);
		append(&want, &p);
		denial(&p, 5, 4, 6);
		append(&want, &p);
		assert_queue(&r.down, &want);
		assert_false(acl_down_busy(r.a));
		rig_free(&r);
	}
	(void)state;
}

/* A packet id used again once the broker acknowledged it is a new
 * PUBLISH; a denial behind it waits for the second ack. */
static void test_packet_id_reuse(void **state)
{
	static const struct pub first[] = { { 1, 1, 1 } }, again[] = { { 1, 1, 1 }, { 1, 2, 0 } };
	struct rig r;
	struct pkt up, want = { .n = 0 }, p;

	rig_init(&r, 4, 0, 1);
	send_pubs(&r, 4, first, 1, &up);
	bufq_clear(&r.up, &r.c);
	ack(&p, 4, 4, 1, 0);
	append(&want, &p);
	feed_down(&r, &p, p.n);
	assert_false(acl_down_busy(r.a));
	send_pubs(&r, 4, again, 2, &up);
	assert_queue(&r.down, &want);
	ack(&p, 4, 4, 1, 0);
	append(&want, &p);
	feed_down(&r, &p, 1);
	denial(&p, 4, 4, 2);
	append(&want, &p);
	assert_queue(&r.down, &want);
	rig_free(&r);
	(void)state;
}

/* Nothing is remembered, and the broker's bytes are not followed, for
 * QoS 0, nor with --acl-deny disconnect (mqtls never answers a PUBLISH). */
static void test_nothing_followed_without_answers(void **state)
{
	static const struct pub q0[] = { { 0, 0, 1 } }, q1[] = { { 1, 1, 1 } };
	struct rig r;
	struct pkt up;

	rig_init(&r, 5, 0, 1);
	send_pubs(&r, 5, q0, 1, &up);
	assert_false(acl_down_busy(r.a));
	rig_free(&r);
	rig_init(&r, 5, 1, 1);
	send_pubs(&r, 5, q1, 1, &up);
	assert_false(acl_down_busy(r.a));
	assert_null(r.a->order);
	rig_free(&r);
	(void)state;
}

/* More than ACL_MAX_INFLIGHT unacknowledged: the one past the ring goes
 * up unremembered and counted; a denial waits for the remembered ones
 * only (the documented limit), and still at a boundary. */
static void test_ring_full(void **state)
{
	static struct metrics m;
	struct pub pubs[ACL_MAX_INFLIGHT + 2];
	struct rig r;
	struct pkt up, want = { .n = 0 }, down = { .n = 0 }, p;

	for (unsigned i = 0; i < ACL_MAX_INFLIGHT + 1; i++)
		pubs[i] = (struct pub){ 1, i + 1, 1 };
	pubs[ACL_MAX_INFLIGHT + 1] = (struct pub){ 1, 1000, 0 };
	rig_init(&r, 5, 0, 1);
	r.io.m = &m;
	send_pubs(&r, 5, pubs, ACL_MAX_INFLIGHT + 2, &up);
	assert_int_equal(counter_get(&m.acl_ack_untracked), 1);
	assert_int_equal(r.a->order->n, ACL_MAX_INFLIGHT);
	for (unsigned i = 1; i < ACL_MAX_INFLIGHT; i++) {
		ack(&p, 5, 4, i, 0);
		append(&down, &p);
	}
	feed_down(&r, &down, 7);
	assert_queue(&r.down, &down);
	append(&want, &down);
	ack(&p, 5, 4, ACL_MAX_INFLIGHT, 0);
	append(&want, &p);
	feed_down(&r, &p, 1);
	denial(&p, 5, 4, 1000);
	append(&want, &p);
	assert_queue(&r.down, &want);
	assert_false(acl_down_busy(r.a));
	rig_free(&r);
	(void)state;
}

/* More distinct waits than ACL_MAX_GATES: the last ones merge, so answers
 * wait longer but never go early, and all go in order in the end. */
static void test_gates_merge(void **state)
{
	struct pub pubs[2 * (ACL_MAX_GATES + 4)];
	size_t n = 0;
	struct rig r;
	struct pkt up, want = { .n = 0 }, p;

	for (unsigned i = 0; i < ACL_MAX_GATES + 4; i++) {
		pubs[n++] = (struct pub){ 1, 100 + i, 1 };
		pubs[n++] = (struct pub){ 1, 200 + i, 0 };
	}
	rig_init(&r, 4, 0, 1);
	send_pubs(&r, 4, pubs, n, &up);
	for (unsigned i = 0; i < ACL_MAX_GATES + 4; i++) {
		ack(&p, 4, 4, 100 + i, 0);
		append(&want, &p);
		feed_down(&r, &p, 2);
		if (i < ACL_MAX_GATES - 1) {
			denial(&p, 4, 4, 200 + i);
			append(&want, &p);
		} else if (i == ACL_MAX_GATES + 3) {
			/* the merged ones went after the last ack any of them waited for */
			for (unsigned k = ACL_MAX_GATES - 1; k < ACL_MAX_GATES + 4; k++) {
				denial(&p, 4, 4, 200 + k);
				append(&want, &p);
			}
		}
		assert_queue(&r.down, &want);
	}
	assert_false(acl_down_busy(r.a));
	rig_free(&r);
	(void)state;
}

/* bufq editing: cut and insert at every offset of a three-block queue. */
static void test_bufq_edit(void **state)
{
	struct blk_cache c;
	uint8_t data[3000], got[3100];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	blk_cache_init(&c, 4);
	for (size_t at = 0; at < sizeof(data); at += 97) {
		for (size_t n = 1; n < 1500; n += 331) {
			struct bufq q = { 0 };
			uint8_t *p;

			/* Three appends that make three small blocks. */
			assert_true(bufq_add(&q, &c, data, 1000));
			assert_true(bufq_add(&q, &c, data + 1000, 1000));
			assert_true(bufq_add(&q, &c, data + 2000, 1000));
			if (at + n <= sizeof(data)) {
				p = bufq_pullup_at(&q, &c, at, n);
				assert_non_null(p);
				assert_memory_equal(p, data + at, n);
			}
			bufq_cut(&q, &c, at, n);
			{
				size_t left = at + n < sizeof(data) ? sizeof(data) - n : at;

				assert_int_equal(bufq_len(&q), left);
				assert_true(bufq_copyout(&q, 0, got, left));
				assert_memory_equal(got, data, at);
				if (left > at)
					assert_memory_equal(got + at, data + at + n, left - at);
			}
			assert_true(bufq_insert(&q, &c, at, data + at, at + n <= sizeof(data) ? n : sizeof(data) - at));
			assert_true(bufq_copyout(&q, 0, got, bufq_len(&q)));
			assert_memory_equal(got, data, bufq_len(&q));
			bufq_clear(&q, &c);
		}
	}
	blk_cache_cleanup(&c);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_denied_cut_out),
		cmocka_unit_test(test_answers_wait_for_a_boundary),
		cmocka_unit_test(test_subscribe_merge),
		cmocka_unit_test(test_subscribe_all_denied_answered_alone),
		cmocka_unit_test(test_deny_disconnect),
		cmocka_unit_test(test_topic_alias),
		cmocka_unit_test(test_malformed_refused),
		cmocka_unit_test(test_denial_waits_for_earlier_ack),
		cmocka_unit_test(test_denial_waits_for_pubrec),
		cmocka_unit_test(test_several_outstanding_out_of_order),
		cmocka_unit_test(test_packet_id_reuse),
		cmocka_unit_test(test_nothing_followed_without_answers),
		cmocka_unit_test(test_ring_full),
		cmocka_unit_test(test_gates_merge),
		cmocka_unit_test(test_bufq_edit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
