/*
 * Sessions on a WebSocket listener (proxy/ws_stage.c, proxy/ws_forward.c
 * and the hub's WS_UPGRADE state) on a real worker loop, with the harness
 * of test_session.c: a real TLS client over a socketpair, a scripted
 * broker, the clock in the test's hands. The upgrade and the client's
 * frames cut at every byte across TLS records, broker bursts framed and
 * whole through a client that stops reading, pings, both close
 * handshakes, the clean MQTT 5 cut on shutdown, and each refusal with the
 * state and reason of its close line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* The helpers serve several test files; this one uses some of them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/unit/session_test_util.h"
#pragma GCC diagnostic pop

#define FX(state) ((struct fx *)*(state))

static const char REQUEST[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Host: localhost\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"\r\n";

/* RFC 6455 1.3's example key and its accept value. */
static const char ANSWER_101[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"\r\n";

/* The fixture with its one listener (index 0, what worker_adopt uses) a
 * WebSocket one: the worker opened no socket, so only the count matters. */
static void ws_start(struct fx *f, const struct fx_opts *o)
{
	fx_start(f, o);
	f->run.n_listen = 0;
	f->run.n_ws_listen = 1;
}

/* A masked client frame of |n| bytes at |p| appended to |out|. */
static void ws_frame(struct bytes *out, uint8_t opcode, int fin, const void *p, size_t n, unsigned seed)
{
	uint8_t hdr[14], mask[4] = { (uint8_t)(0x37 + seed), 0xfa, 0x21, (uint8_t)(0x3d ^ seed) };
	size_t h = 0;
	const uint8_t *src = p;

	hdr[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (n < 126) {
		hdr[h++] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(n >> 8);
		hdr[h++] = (uint8_t)n;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	memcpy(hdr + h, mask, 4);
	h += 4;
	bytes_add(out, hdr, h);
	for (size_t i = 0; i < n; i++) {
		uint8_t b = src[i] ^ mask[i & 3];

		bytes_add(out, &b, 1);
	}
}

/* |n| passes of the loop read nothing from either socket and see no ready
 * event: the session waits without spinning. */
static void assert_idle_loop(struct fx *f, const struct client *c, int n)
{
	long recvs = spy.recvs[c->pfd], readvs = spy.readvs, ready = spy.epoll_ready;

	for (int i = 0; i < n; i++)
		loop_once(f);
	assert_int_equal(spy.recvs[c->pfd], recvs);
	assert_int_equal(spy.readvs, readvs);
	assert_int_equal(spy.epoll_ready, ready);
}

/* Sends |b| one TLS record of |cut| bytes at a time, pumping after each. */
static void send_cut(struct fx *f, struct client *c, const struct bytes *b, size_t cut)
{
	for (size_t i = 0; i < b->len; i += cut) {
		client_send(c, b->p + i, b->len - i < cut ? b->len - i : cut);
		pump(f);
	}
}

struct server_frames {
	struct bytes payload;   /* the binary frames' payloads, joined */
	int binary, control;    /* how many of each */
	uint8_t last_op;        /* the last frame's opcode */
	uint8_t close[125];     /* the last close frame's body */
	size_t close_len;
};

/* Parses what the client got as server frames: unmasked, FIN, binary or
 * control, no larger than one TLS record with its header. */
static void unframe(const struct bytes *got, struct server_frames *out)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	while (i < got->len) {
		const uint8_t *p = got->p + i;
		size_t n, h;

		assert_true(got->len - i >= 2);
		assert_int_equal(p[0] & 0x80, 0x80);        /* FIN */
		assert_int_equal(p[1] & 0x80, 0);           /* never masked (RFC 6455 5.1) */
		n = p[1] & 0x7f;
		h = 2;
		if (n == 126) {
			n = (size_t)p[2] << 8 | p[3];
			h = 4;
		}
		assert_true(n != 127);
		assert_true(h + n <= 16384);
		assert_true(got->len - i >= h + n);
		out->last_op = p[0] & 0x0f;
		if (out->last_op == 0x2) {
			out->binary++;
			bytes_add(&out->payload, p + h, n);
		} else {
			assert_true(out->last_op == 0x8 || out->last_op == 0xa);
			out->control++;
			if (out->last_op == 0x8) {
				memcpy(out->close, p + h, n);
				out->close_len = n;
			}
		}
		i += h + n;
	}
}

static void assert_close_frame(const struct server_frames *fr, uint16_t code)
{
	assert_int_equal(fr->last_op, 0x8);
	assert_int_equal(fr->close_len, 2);
	assert_int_equal(fr->close[0] << 8 | fr->close[1], code);
}

/* A client past its handshake, in WS_UPGRADE. */
static struct client *ws_client(struct fx *f)
{
	struct client *c = client_new(f);

	client_handshake_with(f, c, NULL, 0);
	assert_int_equal(state_of(f, c), S_WS_UPGRADE);
	return c;
}

/* A client upgraded, its CONNECT (protocol |level|) at the broker and the
 * broker's CONNACK in a frame at the client; both byte logs then cleared. */
static struct client *ws_forwarding_client(struct fx *f, unsigned level)
{
	struct client *c = ws_client(f);
	struct bytes fr = { 0 };
	struct server_frames got;
	struct pkt p;

	client_send(c, REQUEST, sizeof(REQUEST) - 1);
	pump(f);
	assert_client_got(c, ANSWER_101, sizeof(ANSWER_101) - 1);
	c->got.len = 0;
	mk_connect(&p, level, "c1", NULL, NULL);
	ws_frame(&fr, 0x2, 1, p.b, p.n, 1);
	client_send(c, fr.p, fr.len);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, p.b, p.n);
	f->b.got.len = 0;
	if (level == 5)
		broker_send(f, CONNACK_OK_5, sizeof(CONNACK_OK_5));
	else
		broker_send(f, CONNACK_OK_311, sizeof(CONNACK_OK_311));
	pump(f);
	unframe(&c->got, &got);
	assert_int_equal(got.binary, 1);
	assert_int_equal(got.payload.len, level == 5 ? 5 : 4);
	bytes_free(&got.payload);
	bytes_free(&fr);
	c->got.len = 0;
	return c;
}

/* ---- the upgrade and the client's frames ------------------------------------------ */

/* The request one byte per TLS record, then a CONNECT and two PUBLISHes
 * in fragmented frames with a ping between fragments, one byte per
 * record: the 101, then exactly the MQTT bytes at the broker, the pong
 * at the client, and never a spinning loop. */
static void test_upgrade_and_frames_cut_at_every_byte_reach_the_broker_as_plain_mqtt(void **state)
{
	struct fx *f = FX(state);
	struct bytes req = { 0 }, mqtt = { 0 }, frames = { 0 };
	struct server_frames got;
	struct client *c;
	struct pkt p;
	size_t half;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	bytes_add(&req, REQUEST, sizeof(REQUEST) - 1);
	send_cut(f, c, &req, 1);
	assert_client_got(c, ANSWER_101, sizeof(ANSWER_101) - 1);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
	c->got.len = 0;
	mk_connect(&p, 4, "c1", NULL, NULL);
	bytes_add(&mqtt, p.b, p.n);
	mk_publish(&mqtt, "t/a", 300, 1);
	mk_publish(&mqtt, "t/b", 70000, 2);
	half = p.n + 100;
	ws_frame(&frames, 0x2, 1, mqtt.p, half, 1);
	ws_frame(&frames, 0x2, 0, mqtt.p + half, 5, 2);
	ws_frame(&frames, 0x9, 1, "ping!", 5, 3);
	ws_frame(&frames, 0x0, 0, mqtt.p + half + 5, 0, 4);
	ws_frame(&frames, 0x0, 1, mqtt.p + half + 5, mqtt.len - half - 5, 5);
	send_cut(f, c, &frames, 1);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, mqtt.p, mqtt.len);
	unframe(&c->got, &got);
	assert_int_equal(got.control, 1);
	assert_int_equal(got.last_op, 0xa);
	assert_int_equal(c->got.len, 7);
	assert_memory_equal(c->got.p + 2, "ping!", 5);
	bytes_free(&got.payload);
	bytes_free(&req);
	bytes_free(&mqtt);
	bytes_free(&frames);
}

/* A client may send its first frame right behind the request, in the same
 * record: it is decoded like any other. */
static void test_connect_frame_in_the_record_of_the_request_is_forwarded(void **state)
{
	struct fx *f = FX(state);
	struct bytes b = { 0 };
	struct client *c;
	struct pkt p;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	bytes_add(&b, REQUEST, sizeof(REQUEST) - 1);
	mk_connect(&p, 5, "c1", NULL, NULL);
	ws_frame(&b, 0x2, 1, p.b, p.n, 7);
	client_send(c, b.p, b.len);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, p.b, p.n);
	bytes_free(&b);
}

/* The request, a CONNECT frame and a close in one record: the broker gets
 * the CONNECT, the client the 101 and its close echoed, and the close line
 * counts the MQTT bytes only (not the request, not the frame headers). */
static void test_request_connect_and_close_in_one_record_count_only_the_mqtt_bytes(void **state)
{
	static const uint8_t body[] = { 0x03, 0xe8 };
	struct fx *f = FX(state);
	struct bytes b = { 0 };
	struct client *c;
	struct pkt p;
	char in[32];

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	bytes_add(&b, REQUEST, sizeof(REQUEST) - 1);
	mk_connect(&p, 4, "c1", NULL, NULL);
	ws_frame(&b, 0x2, 1, p.b, p.n, 7);
	ws_frame(&b, 0x8, 1, body, sizeof(body), 8);
	client_send(c, b.p, b.len);
	pump(f);
	assert_broker_got(&f->b, p.b, p.n);
	assert_true(c->got.len == sizeof(ANSWER_101) - 1 + 4);
	assert_memory_equal(c->got.p + sizeof(ANSWER_101) - 1, "\x88\x02\x03\xe8", 4);
	advance(f, 10);
	pump(f);
	assert_gone(f, c);
	snprintf(in, sizeof(in), " in=%zu ", p.n);
	assert_true(log_has(f, in));
	bytes_free(&b);
}

/* ---- broker bytes towards the client --------------------------------------------- */

/* The broker's burst waits while the client does not read (the proxy
 * stops reading the broker at --max-buffer), then arrives whole, in
 * binary frames of at most one record each, with the loop idle meanwhile. */
static void test_a_client_that_stops_reading_gets_every_broker_byte_framed(void **state)
{
	struct fx *f = FX(state);
	struct bytes sent = { 0 }, chunk = { 0 };
	struct server_frames got;
	struct client *c;
	unsigned seed = 0;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	f->b.sndbuf = 4096;
	assert_int_equal(setsockopt(f->b.fd, SOL_SOCKET, SO_SNDBUF, &f->b.sndbuf, sizeof(f->b.sndbuf)), 0);
	c->paused = 1;
	while (bytes_left(&f->b.out) == 0) {
		assert_true(sent.len < (16u << 20));
		chunk.len = 0;
		mk_publish(&chunk, "t/down", 7000 + seed, seed);
		seed++;
		bytes_add(&sent, chunk.p, chunk.len);
		broker_send(f, chunk.p, chunk.len);
		pump(f);
	}
	assert_int_equal(c->s->armed & ARM_UP_READ, 0);
	assert_idle_loop(f, c, 200);
	c->paused = 0;
	pump(f);
	assert_int_equal(bytes_left(&f->b.out), 0);
	unframe(&c->got, &got);
	assert_int_equal(got.control, 0);
	assert_int_equal(got.payload.len, sent.len);
	assert_memory_equal(got.payload.p, sent.p, sent.len);
	/* One frame per record, not one per byte. */
	assert_true((size_t)got.binary <= sent.len / 1000);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	bytes_free(&got.payload);
	bytes_free(&sent);
	bytes_free(&chunk);
}

/* ---- the ways out ---------------------------------------------------------------- */

/* The client's close is echoed after what it is owed, and the broker gets
 * the MQTT bytes that came before the close. */
static void test_client_close_is_echoed_and_ends_the_session(void **state)
{
	struct fx *f = FX(state);
	struct bytes fr = { 0 }, pub = { 0 };
	static const uint8_t body[] = { 0x03, 0xe8, 'b', 'y', 'e' };
	static const uint8_t disconnect[] = { 0xe0, 0x00 };
	struct server_frames got;
	struct client *c;
	struct pkt p;
	char in[32];

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_forwarding_client(f, 4);
	mk_publish(&pub, "t/owed", 500, 9);
	broker_send(f, pub.p, pub.len);
	ws_frame(&fr, 0x2, 1, disconnect, sizeof(disconnect), 2);
	ws_frame(&fr, 0x8, 1, body, sizeof(body), 3);
	client_send(c, fr.p, fr.len);
	pump(f);
	assert_gone(f, c);
	assert_broker_got(&f->b, disconnect, sizeof(disconnect));
	unframe(&c->got, &got);
	assert_close_frame(&got, 1000);
	assert_true(c->notify);
	assert_close_line(f, c, "forwarding", "ws_closed");
	/* The CONNECT and the DISCONNECT: MQTT bytes only. */
	mk_connect(&p, 4, "c1", NULL, NULL);
	snprintf(in, sizeof(in), " in=%zu ", p.n + sizeof(disconnect));
	assert_true(log_has(f, in));
	bytes_free(&got.payload);
	bytes_free(&fr);
	bytes_free(&pub);
}

/* A drain ends an MQTT 5 client with DISCONNECT 0x8B between two broker
 * packets, in a frame, then the close frame 1001 (going away). */
static void test_shutdown_sends_a_framed_disconnect_0x8b_then_close_1001(void **state)
{
	static const uint8_t disconnect[] = { 0xe0, 0x01, 0x8b };
	struct fx *f = FX(state);
	struct bytes want = { 0 };
	struct server_frames got;
	struct client *c;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_forwarding_client(f, 5);
	mk_publish(&want, "t/done", 200, 1);
	broker_send(f, want.p, want.len);
	pump(f);
	worker_shutdown(f, c);
	pump(f);
	bytes_add(&want, disconnect, sizeof(disconnect));
	assert_gone(f, c);
	unframe(&c->got, &got);
	assert_int_equal(got.payload.len, want.len);
	assert_memory_equal(got.payload.p, want.p, want.len);
	assert_close_frame(&got, 1001);
	assert_close_line(f, c, "forwarding", "shutdown");
	bytes_free(&got.payload);
	bytes_free(&want);
}

/* A refused CONNECT (a mqtls CONNACK: its bytes have no room in front for
 * a header, which then goes alone) gets the CONNACK in a frame, then the
 * close frame 1000; the broker is never contacted. */
static void test_refused_connect_gets_a_framed_connack_then_close_1000(void **state)
{
	static const uint8_t connack2[] = { 0x20, 0x02, 0x00, 0x02 };
	struct fx *f = FX(state);
	struct bytes fr = { 0 };
	struct server_frames got;
	struct client *c;
	struct pkt p;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	client_send(c, REQUEST, sizeof(REQUEST) - 1);
	pump(f);
	c->got.len = 0;
	/* [MQTT-3.1.3-8] an empty client id without clean session: code 2. */
	mk_connect(&p, 4, "", NULL, NULL);
	p.b[9] = 0x00;    /* connect flags: clean session off */
	ws_frame(&fr, 0x2, 1, p.b, p.n, 4);
	client_send(c, fr.p, fr.len);
	pump(f);
	assert_gone(f, c);
	unframe(&c->got, &got);
	assert_int_equal(got.payload.len, 4);
	assert_memory_equal(got.payload.p, connack2, 4);
	assert_close_frame(&got, 1000);
	assert_broker_untouched(f);
	assert_close_line(f, c, "await_connect", "bad_client_id");
	bytes_free(&got.payload);
	bytes_free(&fr);
}

/* ---- refusals before the broker -------------------------------------------------- */

/* No complete request within --hello-timeout of the handshake. */
static void test_upgrade_request_cut_short_is_closed_at_the_hello_timeout(void **state)
{
	struct fx *f = FX(state);
	struct client *c;

	ws_start(f, &(struct fx_opts){ .hello_ms = 1000 });
	c = ws_client(f);
	client_send(c, REQUEST, 30);
	pump(f);
	advance(f, 990);
	assert_int_equal(state_of(f, c), S_WS_UPGRADE);
	advance(f, 20);
	assert_gone(f, c);
	assert_int_equal(c->got.len, 0);
	assert_true(c->notify);
	assert_broker_untouched(f);
	assert_close_line(f, c, "ws_upgrade", "ws_upgrade_timeout");
}

static void refused_upgrade(void **state, const char *request, const char *status_line,
                            const char *reason)
{
	struct fx *f = FX(state);
	struct client *c;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	client_send(c, request, strlen(request));
	pump(f);
	assert_gone(f, c);
	assert_true(c->got.len > strlen(status_line));
	assert_memory_equal(c->got.p, status_line, strlen(status_line));
	assert_true(c->notify);
	assert_broker_untouched(f);
	assert_close_line(f, c, "ws_upgrade", reason);
}

static void test_wrong_path_is_answered_404(void **state)
{
	refused_upgrade(state, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 ", "ws_bad_path");
}

static void test_request_without_upgrade_is_answered_400(void **state)
{
	refused_upgrade(state, "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ", "ws_bad_request");
}

static void test_unmasked_frame_is_closed_with_1002_before_the_broker(void **state)
{
	static const uint8_t unmasked[] = { 0x82, 0x02, 0xc0, 0x00 };
	struct fx *f = FX(state);
	struct server_frames got;
	struct client *c;

	ws_start(f, &(struct fx_opts){ 0 });
	c = ws_client(f);
	client_send(c, REQUEST, sizeof(REQUEST) - 1);
	pump(f);
	c->got.len = 0;
	client_send(c, unmasked, sizeof(unmasked));
	pump(f);
	assert_gone(f, c);
	unframe(&c->got, &got);
	assert_close_frame(&got, 1002);
	assert_broker_untouched(f);
	assert_close_line(f, c, "await_connect", "ws_protocol_error");
	bytes_free(&got.payload);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_upgrade_and_frames_cut_at_every_byte_reach_the_broker_as_plain_mqtt),
		T(test_connect_frame_in_the_record_of_the_request_is_forwarded),
		T(test_request_connect_and_close_in_one_record_count_only_the_mqtt_bytes),
		T(test_a_client_that_stops_reading_gets_every_broker_byte_framed),
		T(test_client_close_is_echoed_and_ends_the_session),
		T(test_shutdown_sends_a_framed_disconnect_0x8b_then_close_1001),
		T(test_refused_connect_gets_a_framed_connack_then_close_1000),
		T(test_upgrade_request_cut_short_is_closed_at_the_hello_timeout),
		T(test_wrong_path_is_answered_404),
		T(test_request_without_upgrade_is_answered_400),
		T(test_unmasked_frame_is_closed_with_1002_before_the_broker),
	};
	int rc;

	session_tests_init();
	if (env_setup(&g_env) != 0) {
		fprintf(stderr, "ws session tests: cannot set up the environment\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	env_teardown(&g_env);
	return rc;
}
