/*
 * The session state machine (proxy/session.c and its stages) on a real
 * worker loop: a real TLS client over a socketpair handed to worker_adopt,
 * a broker scripted on a unix socket, and the proxy's monotonic clock
 * advanced by the test (session_test_util.h). Each state's timeout, each
 * refusal with the exact bytes the client decrypts and the close line the
 * proxy logs, a close from every state, pipelining, backpressure both ways,
 * half-closes, the broker's EOF mid-packet and the clean cut for MQTT 5,
 * and the partial TLS record that once froze a worker.
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

#include "tests/unit/session_test_util.h"

/* The helpers serve several test files; this one signs HMAC tokens only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/unit/jwt_test_util.h"
#pragma GCC diagnostic pop

#define FX(state) ((struct fx *)*(state))

static const uint8_t CONNACK_311[6][4] = {
	{ 0x20, 0x02, 0x00, 0x00 }, { 0x20, 0x02, 0x00, 0x01 }, { 0x20, 0x02, 0x00, 0x02 },
	{ 0x20, 0x02, 0x00, 0x03 }, { 0x20, 0x02, 0x00, 0x04 }, { 0x20, 0x02, 0x00, 0x05 },
};

/* A 5.0 CONNACK refusing with |code|, no properties. */
static void connack5(uint8_t out[5], uint8_t code)
{
	out[0] = 0x20;
	out[1] = 0x03;
	out[2] = 0x00;
	out[3] = code;
	out[4] = 0x00;
}

/* The client got exactly |want| and then close_notify and EOF. */
static void assert_client_answered(const struct client *c, const void *want, size_t n)
{
	assert_client_got(c, want, n);
	assert_true(c->notify);
	assert_true(c->eof);
}

/* ---- each state's timeout --------------------------------------------------------- */

static void test_hello_timeout_closes_a_client_that_sends_nothing(void **state)
{
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, &(struct fx_opts){ .hello_ms = 1000, .handshake_ms = 5000 });
	c = client_new(f);
	assert_int_equal(state_of(f, c), S_HANDSHAKE);
	assert_int_equal(f->w.n_handshakes, 1);
	/* The clock moves only when a test says so: the deadline is exact. */
	advance(f, 999);
	assert_int_equal(state_of(f, c), S_HANDSHAKE);
	assert_false(c->eof);
	advance(f, 1);
	assert_gone(f, c);
	assert_true(c->eof);
	assert_int_equal(c->got.len, 0);
	assert_close_line(f, c, "handshake", "hello_timeout");
	assert_broker_untouched(f);
}

static void test_hello_timeout_holds_a_client_hello_cut_short(void **state)
{
	struct fx *f = FX(state);
	struct client *c;
	struct bytes hello = { 0 };

	fx_start(f, &(struct fx_opts){ .hello_ms = 1000, .handshake_ms = 5000 });
	c = client_new(f);
	client_hello(f, c);
	/* Only the first 20 bytes of the ClientHello go out. */
	bytes_add(&hello, c->out.p + c->out.off, bytes_left(&c->out));
	bytes_take(&c->out, bytes_left(&c->out));
	bytes_add(&c->out, hello.p, 20);
	pump(f);
	advance(f, 999);
	assert_int_equal(state_of(f, c), S_HANDSHAKE);
	advance(f, 1);
	assert_gone(f, c);
	assert_close_line(f, c, "handshake", "hello_timeout");
	bytes_free(&hello);
}

static void test_handshake_timeout_follows_a_complete_client_hello(void **state)
{
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, &(struct fx_opts){ .hello_ms = 1000, .handshake_ms = 5000 });
	c = client_new(f);
	client_hello(f, c);
	pump(f);
	/* The ClientHello deadline has given way to the handshake's. */
	advance(f, 1500);
	assert_int_equal(state_of(f, c), S_HANDSHAKE);
	advance(f, 3499);
	assert_int_equal(state_of(f, c), S_HANDSHAKE);
	advance(f, 1);
	assert_gone(f, c);
	assert_close_line(f, c, "handshake", "handshake_timeout");
	assert_broker_untouched(f);
}

static void test_connect_timeout_closes_a_client_that_sends_no_connect(void **state)
{
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, &(struct fx_opts){ .connect_ms = 2000 });
	c = client_new(f);
	client_handshake(f, c);
	assert_int_equal(f->w.n_handshakes, 0);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, "", 0);
	assert_close_line(f, c, "await_connect", "connect_timeout");
	assert_broker_untouched(f);
}

static void test_connect_timeout_closes_a_client_whose_connect_stays_partial(void **state)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .connect_ms = 2000 });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 4, "partial", NULL, NULL);
	client_send(c, p.b, p.n - 1);
	pump(f);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, "", 0);
	assert_close_line(f, c, "await_connect", "connect_timeout");
	assert_broker_untouched(f);
}

/* A wrong password is answered only after the failure delay. */
static void refusal_waits_out_the_failure_delay(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .fail_delay_ms = 1000 });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", "carol", "wrong");
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_refuse_line(f, c, level == 5 ? "mqtt=5 auth=password reason=bad_credentials delay_ms=1000"
	                                    : "mqtt=4 auth=password reason=bad_credentials delay_ms=1000");
	advance(f, 999);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_int_equal(c->got.len, 0);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_close_line(f, c, "authenticating", "bad_credentials");
	assert_broker_untouched(f);
}

static void test_refusal_waits_out_the_failure_delay_then_sends_connack_4(void **state)
{
	refusal_waits_out_the_failure_delay(state, 4, CONNACK_311[4], 4);
}

static void test_refusal_waits_out_the_failure_delay_then_sends_connack_0x86(void **state)
{
	uint8_t want[5];

	connack5(want, 0x86);
	refusal_waits_out_the_failure_delay(state, 5, want, 5);
}

/* A slow check queued behind others outlives the connect deadline. */
static void check_stuck_in_the_queue(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .pool_threads = 1, .connect_ms = 2000 });
	block_pool(f);
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", "dave", "secret");
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_int_equal(f->w.auth_jobs, 1);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_int_equal(c->got.len, 0);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_close_line(f, c, "authenticating", "auth_timeout");
	/* The check never started: it left the queue with its client. */
	assert_int_equal(f->w.auth_jobs, 0);
	unblock_pool_and_wait(f);
	assert_broker_untouched(f);
}

static void test_check_stuck_in_the_queue_gets_connack_3_at_the_connect_deadline(void **state)
{
	check_stuck_in_the_queue(state, 4, CONNACK_311[3], 4);
}

static void test_check_stuck_in_the_queue_gets_connack_0x89_at_the_connect_deadline(void **state)
{
	uint8_t want[5];

	connack5(want, 0x89);
	check_stuck_in_the_queue(state, 5, want, 5);
}

static void broker_never_answers(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .up = FX_UP_BLACKHOLE, .upstream_ms = 2000 });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_UPSTREAM_CONNECTING);
	assert_int_equal(c->got.len, 0);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_close_line(f, c, "upstream_connecting", "broker_timeout");
}

static void test_broker_that_never_answers_gets_connack_3_at_the_upstream_deadline(void **state)
{
	broker_never_answers(state, 4, CONNACK_311[3], 4);
}

static void test_broker_that_never_answers_gets_connack_0x88_at_the_upstream_deadline(void **state)
{
	uint8_t want[5];

	connack5(want, 0x88);
	broker_never_answers(state, 5, want, 5);
}

/* A token valid for |ttl| more seconds, for the HMAC secret of the env. */
static char *token_for(long ttl)
{
	char payload[128];

	snprintf(payload, sizeof(payload), "{\"sub\":\"tok-user\",\"exp\":%ld}", (long)time(NULL) + ttl);
	return make_token("HS256", NULL, (const uint8_t *)JWT_SECRET, strlen(JWT_SECRET),
	                  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
}

static struct client *token_client(struct fx *f, unsigned level, long ttl)
{
	struct client *c = client_new(f);
	char *tok = token_for(ttl);
	struct pkt p;

	client_handshake(f, c);
	mk_connect(&p, level, "c1", "tok", tok);
	free(tok);
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(f->b.accepted, 1);
	if (level == 5)
		broker_send(f, CONNACK_OK_5, sizeof(CONNACK_OK_5));
	else
		broker_send(f, CONNACK_OK_311, sizeof(CONNACK_OK_311));
	pump(f);
	c->got.len = 0;
	return c;
}

static void test_token_expiry_sends_disconnect_0xa0_to_a_v5_client(void **state)
{
	static const uint8_t disconnect[] = { 0xe0, 0x01, 0xa0 };
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_JWT });
	c = token_client(f, 5, 60);
	/* exp is a whole second of wall-clock time: up to a second early. */
	advance(f, 58000);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	advance(f, 3000);
	assert_gone(f, c);
	assert_client_answered(c, disconnect, sizeof(disconnect));
	assert_close_line(f, c, "forwarding", "token_expired");
	assert_true(f->b.eof);
}

static void test_token_expiry_closes_a_311_client_without_disconnect(void **state)
{
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_JWT });
	c = token_client(f, 4, 60);
	advance(f, 58000);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	advance(f, 3000);
	assert_gone(f, c);
	assert_client_answered(c, "", 0);
	assert_close_line(f, c, "forwarding", "token_expired");
	assert_true(f->b.eof);
}

/* FORWARDING's other timer: a clean cut waits at most 2 s for the packet
 * the client has the start of, then goes ahead without the DISCONNECT. */
static void test_clean_cut_gives_up_on_a_packet_that_never_ends_after_its_grace(void **state)
{
	struct fx *f = FX(state);
	struct bytes pub = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 5);
	mk_publish(&pub, "t/grace", 100, 1);
	broker_send(f, pub.p, 10);
	pump(f);
	assert_client_got(c, pub.p, 10);
	worker_shutdown(f, c);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	advance(f, 1999);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	advance(f, 1);
	assert_gone(f, c);
	assert_client_answered(c, pub.p, 10);
	assert_close_line(f, c, "forwarding", "shutdown");
	bytes_free(&pub);
}

/* CLOSING: the peers get --linger to take the rest, then it is dropped. */
static void test_linger_drops_what_a_client_never_reads(void **state)
{
	struct fx *f = FX(state);
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 65536, .linger_ms = 1000 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	c->paused = 1;
	for (unsigned i = 0; i < 10; i++)
		mk_publish(&pubs, "t/linger", 4000, i);
	broker_send(f, pubs.p, pubs.len);
	pump(f);
	close(f->b.fd);
	f->b.fd = -1;
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 999);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 1);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "broker_closed");
	/* What the client can still read is at most a prefix of what the broker
	 * sent, and no close_notify follows it. */
	c->paused = 0;
	pump(f);
	assert_true(c->eof);
	assert_false(c->notify);
	assert_true(c->got.len < pubs.len);
	assert_memory_equal(c->got.p, pubs.p, c->got.len);
	bytes_free(&pubs);
}

static void test_linger_drops_what_a_broker_never_reads(void **state)
{
	struct fx *f = FX(state);
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 4 << 20, .linger_ms = 1000 });
	c = forwarding_client(f, 4);
	f->b.paused = 1;
	for (unsigned i = 0; i < 40; i++)
		mk_publish(&pubs, "t/linger", 16000, i);
	client_send(c, pubs.p, pubs.len);
	client_close_notify(c);
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 999);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 1);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "client_closed");
	f->b.paused = 0;
	pump(f);
	assert_true(f->b.eof);
	assert_true(f->b.got.len < pubs.len);
	assert_memory_equal(f->b.got.p, pubs.p, f->b.got.len);
	bytes_free(&pubs);
}

/* ---- each refusal ------------------------------------------------------------------ */

/* Sends |p| as the first packet and expects |want| (n = 0: no CONNACK),
 * then close_notify, the close line and the broker untouched. */
static void refused(void **state, const struct fx_opts *o, const struct pkt *p, const void *want,
                    size_t n, const char *refuse, const char *reason)
{
	struct fx *f = FX(state);
	struct client *c;

	fx_start(f, o);
	c = client_new(f);
	client_handshake(f, c);
	client_send_pkt(c, p);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_refuse_line(f, c, refuse);
	assert_close_line(f, c, "await_connect", reason);
	assert_broker_untouched(f);
}

static void test_first_packet_that_is_not_connect_is_closed_without_connack(void **state)
{
	struct pkt pub = { .n = 0 };
	struct bytes b = { 0 };

	mk_publish(&b, "t", 4, 0);
	memcpy(pub.b, b.p, b.len);
	pub.n = b.len;
	bytes_free(&b);
	refused(state, &(struct fx_opts){ 0 }, &pub, "", 0, "mqtt=0 reason=not_connect", "not_connect");
}

/* [MQTT-3.1.2-3] the reserved connect flag must be 0. */
static void reserved_flag_connect(struct pkt *out, unsigned level)
{
	struct pkt body = { .n = 0 };

	p_connect_header(&body, "MQTT", level, 0x03, 60);
	if (level == 5)
		p_u8(&body, 0);
	p_str(&body, "c1");
	p_frame(out, 0x10, &body);
}

static void test_malformed_311_connect_is_closed_without_connack(void **state)
{
	struct pkt p;

	reserved_flag_connect(&p, 4);
	refused(state, &(struct fx_opts){ 0 }, &p, "", 0,
	        "mqtt=4 reason=malformed_connect detail=\"[MQTT-3.1.2-3] reserved connect flag set\"",
	        "malformed_connect");
}

static void test_malformed_v5_connect_gets_connack_0x81(void **state)
{
	uint8_t want[5];
	struct pkt p;

	connack5(want, 0x81);
	reserved_flag_connect(&p, 5);
	refused(state, &(struct fx_opts){ 0 }, &p, want, 5,
	        "mqtt=5 reason=malformed_connect detail=\"[MQTT-3.1.2-3] reserved connect flag set\"",
	        "malformed_connect");
}

/* [MQTT-3.1.2-2] an unsupported level gets "unacceptable protocol version". */
static void test_unsupported_protocol_level_gets_connack_1(void **state)
{
	struct pkt p;

	mk_connect(&p, 6, "c1", NULL, NULL);
	refused(state, &(struct fx_opts){ 0 }, &p, CONNACK_311[1], 4, "mqtt=4 reason=bad_protocol",
	        "bad_protocol");
}

static void test_v5_level_under_the_31_protocol_name_gets_connack_0x84(void **state)
{
	struct pkt body = { .n = 0 }, p;
	uint8_t want[5];

	p_connect_header(&body, "MQIsdp", 5, 0x02, 60);
	p_u8(&body, 0);
	p_str(&body, "c1");
	p_frame(&p, 0x10, &body);
	connack5(want, 0x84);
	refused(state, &(struct fx_opts){ 0 }, &p, want, 5, "mqtt=5 reason=bad_protocol", "bad_protocol");
}

static void oversized_connect(struct pkt *p, unsigned level)
{
	char id[401];

	memset(id, 'x', 400);
	id[400] = '\0';
	mk_connect(p, level, id, NULL, NULL);
}

static void test_oversized_v5_connect_gets_connack_0x95(void **state)
{
	uint8_t want[5];
	struct pkt p;

	oversized_connect(&p, 5);
	connack5(want, 0x95);
	refused(state, &(struct fx_opts){ .max_connect_size = 256 }, &p, want, 5,
	        "mqtt=5 reason=connect_too_large", "connect_too_large");
}

static void test_oversized_311_connect_is_closed_without_connack(void **state)
{
	struct pkt p;

	oversized_connect(&p, 4);
	refused(state, &(struct fx_opts){ .max_connect_size = 256 }, &p, "", 0,
	        "mqtt=4 reason=connect_too_large", "connect_too_large");
}

static void broker_unreachable(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .up = FX_UP_NOWHERE });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_true(log_has(f, "nobody.sock error=\"No such file or directory\""));
	/* The broker is tried inside the CONNECT's turn, before the state
	 * becomes upstream_connecting. */
	assert_close_line(f, c, "authenticating", "broker_unreachable");
}

static void test_unreachable_broker_gets_connack_3(void **state)
{
	broker_unreachable(state, 4, CONNACK_311[3], 4);
}

static void test_unreachable_broker_gets_connack_0x88(void **state)
{
	uint8_t want[5];

	connack5(want, 0x88);
	broker_unreachable(state, 5, want, 5);
}

static void bad_credentials(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", "carol", "wrong");
	client_send_pkt(c, &p);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_refuse_line(f, c, level == 5 ? "mqtt=5 auth=password reason=bad_credentials delay_ms=0"
	                                    : "mqtt=4 auth=password reason=bad_credentials delay_ms=0");
	assert_close_line(f, c, "authenticating", "bad_credentials");
	assert_broker_untouched(f);
}

static void test_wrong_password_gets_connack_4(void **state)
{
	bad_credentials(state, 4, CONNACK_311[4], 4);
}

static void test_wrong_password_gets_connack_0x86(void **state)
{
	uint8_t want[5];

	connack5(want, 0x86);
	bad_credentials(state, 5, want, 5);
}

/* No credentials, and --allow-anonymous is off: "not authorized". */
static void anonymous_refused(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, level, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, want, n);
	assert_refuse_line(f, c, level == 5 ? "mqtt=5 auth=anonymous reason=not_authorized"
	                                    : "mqtt=4 auth=anonymous reason=not_authorized");
	assert_close_line(f, c, "authenticating", "not_authorized");
	assert_broker_untouched(f);
}

static void test_anonymous_client_gets_connack_5(void **state)
{
	anonymous_refused(state, 4, CONNACK_311[5], 4);
}

static void test_anonymous_client_gets_connack_0x87(void **state)
{
	uint8_t want[5];

	connack5(want, 0x87);
	anonymous_refused(state, 5, want, 5);
}

/* 5.0 enhanced authentication (an Authentication Method property) is not
 * supported: refused with 0x8C at once, the failure delay does not apply. */
static void test_v5_enhanced_authentication_gets_connack_0x8c_without_the_failure_delay(void **state)
{
	struct fx *f = FX(state);
	struct pkt body = { .n = 0 }, props = { .n = 0 }, p;
	struct client *c;
	uint8_t want[5];

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .fail_delay_ms = 1000 });
	c = client_new(f);
	client_handshake(f, c);
	p_u8(&props, 0x15);    /* Authentication Method */
	p_str(&props, "SCRAM-SHA-256");
	p_connect_header(&body, "MQTT", 5, 0xc2, 60);
	p_props(&body, &props);
	p_str(&body, "c1");
	p_str(&body, "carol");
	p_str(&body, "secret");
	p_frame(&p, 0x10, &body);
	client_send_pkt(c, &p);
	pump(f);
	connack5(want, 0x8c);
	assert_gone(f, c);
	assert_client_answered(c, want, 5);
	assert_refuse_line(f, c, "mqtt=5 auth=password reason=bad_auth_method delay_ms=0");
	assert_close_line(f, c, "authenticating", "bad_auth_method");
	assert_broker_untouched(f);
}

/* With --max-auth-queue 1 and one check already out, the next client is
 * told "server busy" at once; the first is served once its check is done. */
static void auth_queue_full(void **state, unsigned level, const void *want, size_t n)
{
	struct fx *f = FX(state);
	struct client *a, *b;
	struct pkt p, rewritten;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .pool_threads = 1, .max_auth_queue = 1 });
	block_pool(f);
	a = client_new(f);
	client_handshake(f, a);
	b = client_new(f);
	client_handshake(f, b);
	mk_connect(&p, level, "a", "dave", "secret");
	client_send_pkt(a, &p);
	pump(f);
	assert_int_equal(state_of(f, a), S_AUTHENTICATING);
	assert_int_equal(f->w.auth_jobs, 1);
	mk_connect(&p, level, "b", "dave", "secret");
	client_send_pkt(b, &p);
	pump(f);
	assert_int_equal(state_of(f, b), -1);
	assert_client_answered(b, want, n);
	assert_refuse_line(f, b, level == 5 ? "mqtt=5 auth=password reason=server_busy"
	                                    : "mqtt=4 auth=password reason=server_busy");
	assert_close_line(f, b, "authenticating", "server_busy");
	assert_broker_untouched(f);
	/* The first client's check runs once the pool is free. */
	assert_int_equal(state_of(f, a), S_AUTHENTICATING);
	unblock_pool(f);
	wait_auth_jobs_home(f);
	assert_int_equal(state_of(f, a), S_FORWARDING);
	mk_connect(&rewritten, level, "a", "dave", NULL);
	assert_broker_got(&f->b, rewritten.b, rewritten.n);
}

static void test_full_auth_queue_answers_connack_3_at_once(void **state)
{
	auth_queue_full(state, 4, CONNACK_311[3], 4);
}

static void test_full_auth_queue_answers_connack_0x89_at_once(void **state)
{
	uint8_t want[5];

	connack5(want, 0x89);
	auth_queue_full(state, 5, want, 5);
}

/* ---- a close from every state ------------------------------------------------------ */

enum where { IN_HANDSHAKE, IN_AWAIT_CONNECT, IN_REFUSAL_HOLD, IN_POOL_CHECK, IN_UPSTREAM_CONNECTING,
             IN_FORWARDING };

static const char *const where_names[] = { "handshake", "await_connect", "authenticating",
                                           "authenticating", "upstream_connecting", "forwarding" };

/* Starts the fixture and one client, and brings its session to |w|. */
static struct client *client_in_state(struct fx *f, enum where w)
{
	struct fx_opts o = { 0 };
	struct client *c;
	struct pkt p;

	if (w == IN_REFUSAL_HOLD) {
		o.auth = FX_AUTH_PASSWORD;
		o.fail_delay_ms = 3000;
	} else if (w == IN_POOL_CHECK) {
		o.auth = FX_AUTH_PASSWORD;
		o.pool_threads = 1;
	} else if (w == IN_UPSTREAM_CONNECTING) {
		o.up = FX_UP_BLACKHOLE;
	}
	fx_start(f, &o);
	if (w == IN_POOL_CHECK)
		block_pool(f);
	if (w == IN_FORWARDING)
		return forwarding_client(f, 4);
	c = client_new(f);
	if (w == IN_HANDSHAKE) {
		client_hello(f, c);
		pump(f);
		assert_int_equal(state_of(f, c), S_HANDSHAKE);
		return c;
	}
	client_handshake(f, c);
	if (w == IN_AWAIT_CONNECT)
		return c;
	if (w == IN_REFUSAL_HOLD)
		mk_connect(&p, 4, "c1", "carol", "wrong");
	else if (w == IN_POOL_CHECK)
		mk_connect(&p, 4, "c1", "dave", "secret");
	else
		mk_connect(&p, 4, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), w == IN_UPSTREAM_CONNECTING ? S_UPSTREAM_CONNECTING : S_AUTHENTICATING);
	return c;
}

/* After a session ended early: no answer was ever sent, and time passing
 * (a held refusal, a check coming home) changes nothing. */
static void assert_stays_ended(struct fx *f, struct client *c, enum where w)
{
	if (w == IN_POOL_CHECK) {
		uint64_t ip = counts_key_addr(f->w.counts, COUNT_AUTH_IP,
		                              (const struct sockaddr *)peer_addr(c->port));

		/* The check had not started (the pool's thread is held): it left
		 * the queue with the client, and gave back the address's count
		 * and its queue place at once. */
		assert_int_equal(counts_get(f->w.counts, ip), 0);
		assert_int_equal(f->w.auth_jobs, 0);
		unblock_pool_and_wait(f);
	}
	advance(f, 6000);
	assert_int_equal(c->got.len, 0);
	if (w != IN_FORWARDING)
		assert_broker_untouched(f);
	assert_gone(f, c);
}

static void client_closes_in(void **state, enum where w)
{
	struct fx *f = FX(state);
	struct client *c = client_in_state(f, w);

	client_close(c);
	pump(f);
	assert_gone(f, c);
	assert_close_line(f, c, where_names[w], w == IN_HANDSHAKE ? "handshake_failed" : "client_closed");
	if (w == IN_FORWARDING)
		assert_true(f->b.eof);
	assert_stays_ended(f, c, w);
}

static void test_client_closing_during_the_handshake_frees_the_session(void **state)
{
	client_closes_in(state, IN_HANDSHAKE);
}

static void test_client_closing_while_awaiting_connect_frees_the_session(void **state)
{
	client_closes_in(state, IN_AWAIT_CONNECT);
}

static void test_client_closing_while_its_refusal_is_held_frees_the_session(void **state)
{
	client_closes_in(state, IN_REFUSAL_HOLD);
}

static void test_client_closing_while_its_check_is_on_the_pool_frees_the_session_and_its_counts(void **state)
{
	client_closes_in(state, IN_POOL_CHECK);
}

static void test_client_closing_while_the_broker_connects_frees_the_session(void **state)
{
	client_closes_in(state, IN_UPSTREAM_CONNECTING);
}

static void test_client_closing_while_forwarding_frees_the_session(void **state)
{
	client_closes_in(state, IN_FORWARDING);
}

static void test_client_close_notify_while_awaiting_connect_ends_the_session(void **state)
{
	struct fx *f = FX(state);
	struct client *c = client_in_state(f, IN_AWAIT_CONNECT);

	client_close_notify(c);
	pump(f);
	assert_gone(f, c);
	assert_true(c->notify);
	assert_close_line(f, c, "await_connect", "client_closed");
}

/* A client that vanishes with bytes unread resets the connection. */
static void test_client_reset_while_forwarding_is_a_client_error(void **state)
{
	struct fx *f = FX(state);
	struct client *c = client_in_state(f, IN_FORWARDING);
	struct bytes pub = { 0 };

	c->paused = 1;
	mk_publish(&pub, "t/unread", 64, 0);
	broker_send(f, pub.p, pub.len);
	pump(f);
	client_close(c);
	pump(f);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "client_error");
	assert_true(f->b.eof);
	bytes_free(&pub);
}

static void worker_closes_in(void **state, enum where w)
{
	struct fx *f = FX(state);
	struct client *c = client_in_state(f, w);

	worker_close_now(f, c, "test_close");
	pump(f);
	assert_gone(f, c);
	assert_close_line(f, c, where_names[w], "test_close");
	/* Past the handshake, the client is told with close_notify. */
	assert_true(c->eof);
	assert_int_equal(c->notify, w != IN_HANDSHAKE);
	if (w == IN_FORWARDING)
		assert_true(f->b.eof);
	assert_stays_ended(f, c, w);
}

static void test_close_now_during_the_handshake_frees_the_session(void **state)
{
	worker_closes_in(state, IN_HANDSHAKE);
}

static void test_close_now_while_awaiting_connect_frees_the_session(void **state)
{
	worker_closes_in(state, IN_AWAIT_CONNECT);
}

static void test_close_now_while_a_refusal_is_held_frees_the_session(void **state)
{
	worker_closes_in(state, IN_REFUSAL_HOLD);
}

static void test_close_now_while_a_check_is_on_the_pool_frees_the_session(void **state)
{
	worker_closes_in(state, IN_POOL_CHECK);
}

static void test_close_now_while_the_broker_connects_frees_the_session(void **state)
{
	worker_closes_in(state, IN_UPSTREAM_CONNECTING);
}

static void test_close_now_while_forwarding_frees_the_session(void **state)
{
	worker_closes_in(state, IN_FORWARDING);
}

static void worker_shuts_down_in(void **state, enum where w)
{
	struct fx *f = FX(state);
	struct client *c = client_in_state(f, w);

	worker_shutdown(f, c);
	pump(f);
	assert_gone(f, c);
	assert_close_line(f, c, where_names[w], "shutdown");
	assert_true(c->eof);
	assert_int_equal(c->notify, w != IN_HANDSHAKE);
	if (w == IN_FORWARDING)
		assert_true(f->b.eof);
	assert_stays_ended(f, c, w);
}

static void test_shutdown_during_the_handshake_closes_the_session(void **state)
{
	worker_shuts_down_in(state, IN_HANDSHAKE);
}

static void test_shutdown_while_awaiting_connect_closes_the_session(void **state)
{
	worker_shuts_down_in(state, IN_AWAIT_CONNECT);
}

static void test_shutdown_while_a_refusal_is_held_closes_the_session(void **state)
{
	worker_shuts_down_in(state, IN_REFUSAL_HOLD);
}

static void test_shutdown_while_a_check_is_on_the_pool_closes_the_session(void **state)
{
	worker_shuts_down_in(state, IN_POOL_CHECK);
}

static void test_shutdown_while_the_broker_connects_closes_the_session(void **state)
{
	worker_shuts_down_in(state, IN_UPSTREAM_CONNECTING);
}

static void test_shutdown_closes_a_forwarding_311_client_without_disconnect(void **state)
{
	worker_shuts_down_in(state, IN_FORWARDING);
}

/* CLOSING is a state too: a session that waits for a client to take what
 * the broker sent before it closed. */
static struct client *client_in_closing(struct fx *f)
{
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 65536, .linger_ms = 1000 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	c->paused = 1;
	mk_publish(&pubs, "t/owed", 30000, 1);
	broker_send(f, pubs.p, pubs.len);
	broker_io(&f->b);
	close(f->b.fd);
	f->b.fd = -1;
	pump(f);
	bytes_free(&pubs);
	assert_int_equal(state_of(f, c), S_CLOSING);
	return c;
}

static void test_close_now_while_closing_keeps_the_first_reason_and_the_linger(void **state)
{
	struct fx *f = FX(state);
	struct client *c = client_in_closing(f);

	worker_close_now(f, c, "test_close");
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 1050);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "broker_closed");
}

static void test_shutdown_while_closing_keeps_the_first_reason_and_the_linger(void **state)
{
	struct fx *f = FX(state);
	struct client *c = client_in_closing(f);

	worker_shutdown(f, c);
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	advance(f, 1050);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "broker_closed");
}

static void test_client_leaving_during_the_linger_ends_the_session_at_once(void **state)
{
	struct fx *f = FX(state);
	struct client *c = client_in_closing(f);

	client_close(c);
	pump(f);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "broker_closed");
}

/* The worker's close flushes what the client is owed before the end. */
static void test_close_now_while_forwarding_still_delivers_what_the_client_is_owed(void **state)
{
	struct fx *f = FX(state);
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 65536 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	c->paused = 1;
	mk_publish(&pubs, "t/owed", 30000, 1);
	broker_send(f, pubs.p, pubs.len);
	pump(f);
	assert_int_equal(bytes_left(&f->b.out), 0);
	worker_close_now(f, c, "test_close");
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	c->paused = 0;
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, pubs.p, pubs.len);
	assert_close_line(f, c, "forwarding", "test_close");
	assert_true(f->b.eof);
	bytes_free(&pubs);
}

/* ---- pipelining --------------------------------------------------------------------- */

/* CONNECT, then two PUBLISHes (sizes 30 and 3000), as one byte string. */
static void connect_and_two_publishes(struct bytes *out, struct pkt *connect, const char *user,
                                      const char *pass)
{
	mk_connect(connect, 4, "pipe", user, pass);
	bytes_add(out, connect->b, connect->n);
	mk_publish(out, "t/one", 30, 1);
	mk_publish(out, "t/two", 3000, 2);
}

static void test_connect_and_two_publishes_in_one_record_reach_the_broker_in_order(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 };
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ 0 });
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, NULL, NULL);
	client_send(c, all.p, all.len);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, all.p, all.len);
	broker_send(f, CONNACK_OK_311, 4);
	pump(f);
	assert_client_got(c, CONNACK_OK_311, 4);
	bytes_free(&all);
}

static void test_connect_and_publishes_split_across_records_and_writes_arrive_in_order(void **state)
{
	static const size_t cuts[] = { 1, 2, 5, 9, 14, 40, 41, 700, 2000 };
	struct fx *f = FX(state);
	struct bytes all = { 0 }, ct = { 0 };
	struct client *c;
	struct pkt p;
	size_t at = 0;

	fx_start(f, &(struct fx_opts){ 0 });
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, NULL, NULL);
	/* Records cut inside the fixed header, the CONNECT, and between packets. */
	for (size_t i = 0; i <= sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t end = i < sizeof(cuts) / sizeof(cuts[0]) ? cuts[i] : all.len;

		client_seal(c, all.p + at, end - at, &ct);
		at = end;
	}
	/* ... and the ciphertext in 7-byte writes, the loop running between. */
	for (size_t off = 0; off < ct.len; off += 7) {
		bytes_add(&c->out, ct.p + off, ct.len - off < 7 ? ct.len - off : 7);
		pump(f);
	}
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, all.p, all.len);
	bytes_free(&all);
	bytes_free(&ct);
}

static void test_connect_riding_with_the_client_finished_is_forwarded(void **state)
{
	struct fx *f = FX(state);
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ 0 });
	c = client_new(f);
	mk_connect(&p, 4, "rider", NULL, NULL);
	client_handshake_with(f, c, p.b, p.n);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, p.b, p.n);
}

static void test_nothing_reaches_the_broker_before_the_connect_is_complete(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 };
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ 0 });
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, NULL, NULL);
	client_send(c, all.p, p.n - 1);
	pump(f);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
	assert_broker_untouched(f);
	client_send(c, all.p + p.n - 1, all.len - (p.n - 1));
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, all.p, all.len);
	bytes_free(&all);
}

static void test_publishes_behind_a_pending_check_wait_for_its_answer(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 }, want = { 0 };
	struct client *c;
	struct pkt p, rewritten;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .pool_threads = 1 });
	block_pool(f);
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, "dave", "secret");
	client_send(c, all.p, all.len);
	pump(f);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_broker_untouched(f);
	unblock_pool(f);
	wait_auth_jobs_home(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	/* The CONNECT re-emitted with the identity and without the password,
	 * then the client's PUBLISHes as they were. */
	mk_connect(&rewritten, 4, "pipe", "dave", NULL);
	bytes_add(&want, rewritten.b, rewritten.n);
	bytes_add(&want, all.p + p.n, all.len - p.n);
	assert_broker_got(&f->b, want.p, want.len);
	bytes_free(&all);
	bytes_free(&want);
}

static void test_publishes_behind_an_inline_allowed_connect_follow_the_rewritten_connect(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 }, want = { 0 };
	struct client *c;
	struct pkt p, rewritten;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD });
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, "carol", "secret");
	client_send(c, all.p, all.len);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	mk_connect(&rewritten, 4, "pipe", "carol", NULL);
	bytes_add(&want, rewritten.b, rewritten.n);
	bytes_add(&want, all.p + p.n, all.len - p.n);
	assert_broker_got(&f->b, want.p, want.len);
	bytes_free(&all);
	bytes_free(&want);
}

static void test_publishes_behind_a_refused_connect_never_reach_the_broker(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 };
	struct client *c;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD });
	c = client_new(f);
	client_handshake(f, c);
	connect_and_two_publishes(&all, &p, "carol", "wrong");
	client_send(c, all.p, all.len);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, CONNACK_311[4], 4);
	assert_broker_untouched(f);
	bytes_free(&all);
}

/* ---- backpressure ------------------------------------------------------------------- */

/* Runs |n| loop passes with no peer I/O and asserts that the session
 * neither read |c|'s socket nor the broker's, and no event was ready. */
static void assert_idle_loop(struct fx *f, const struct client *c, int n)
{
	long recvs = spy.recvs[c->pfd], readvs = spy.readvs, ready = spy.epoll_ready;

	for (int i = 0; i < n; i++)
		loop_once(f);
	assert_int_equal(spy.recvs[c->pfd], recvs);
	assert_int_equal(spy.readvs, readvs);
	assert_int_equal(spy.epoll_ready, ready);
}

static void test_broker_that_stops_reading_stops_the_proxy_reading_the_client(void **state)
{
	struct fx *f = FX(state);
	struct bytes sent = { 0 }, chunk = { 0 };
	struct client *c;
	unsigned seed = 0;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	f->b.paused = 1;
	/* The client writes until its own socket is full. */
	while (bytes_left(&c->out) == 0) {
		assert_true(sent.len < (16u << 20));
		chunk.len = 0;
		mk_publish(&chunk, "t/up", 8000, seed++);
		bytes_add(&sent, chunk.p, chunk.len);
		client_send(c, chunk.p, chunk.len);
		pump(f);
	}
	/* The broker has less than was sent, the client cannot write more,
	 * and the proxy no longer reads the client: nothing moves. */
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_true(f->b.got.len + f->p.max_buffer < sent.len);
	assert_int_equal(c->s->armed & ARM_CLIENT_READ, 0);
	assert_idle_loop(f, c, 200);
	/* The broker reads again: everything arrives, in order. */
	f->b.paused = 0;
	pump(f);
	assert_int_equal(bytes_left(&c->out), 0);
	assert_broker_got(&f->b, sent.p, sent.len);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(c->s->armed & ARM_CLIENT_READ, ARM_CLIENT_READ);
	bytes_free(&sent);
	bytes_free(&chunk);
}

static void test_client_that_stops_reading_stops_the_proxy_reading_the_broker(void **state)
{
	struct fx *f = FX(state);
	struct bytes sent = { 0 }, chunk = { 0 };
	struct client *c;
	unsigned seed = 0;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	f->b.sndbuf = 4096;
	assert_int_equal(setsockopt(f->b.fd, SOL_SOCKET, SO_SNDBUF, &f->b.sndbuf, sizeof(f->b.sndbuf)), 0);
	c->paused = 1;
	while (bytes_left(&f->b.out) == 0) {
		assert_true(sent.len < (16u << 20));
		chunk.len = 0;
		mk_publish(&chunk, "t/down", 8000, seed++);
		bytes_add(&sent, chunk.p, chunk.len);
		broker_send(f, chunk.p, chunk.len);
		pump(f);
	}
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_true(c->got.len + f->p.max_buffer < sent.len);
	assert_int_equal(c->s->armed & ARM_UP_READ, 0);
	assert_idle_loop(f, c, 200);
	c->paused = 0;
	pump(f);
	assert_int_equal(bytes_left(&f->b.out), 0);
	assert_client_got(c, sent.p, sent.len);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(c->s->armed & ARM_UP_READ, ARM_UP_READ);
	bytes_free(&sent);
	bytes_free(&chunk);
}

/* Before authentication a client gets room for its CONNECT and a little
 * pipelining (--max-connect-size), not the forwarding buffers. */
static void test_pipelining_past_the_connect_limit_waits_for_a_pending_check(void **state)
{
	struct fx *f = FX(state);
	struct bytes all = { 0 }, want = { 0 };
	struct client *c;
	struct pkt p, rewritten;

	fx_start(f, &(struct fx_opts){ .auth = FX_AUTH_PASSWORD, .pool_threads = 1 });
	block_pool(f);
	c = client_new(f);
	client_small_buffers(c, 4096);
	client_handshake(f, c);
	mk_connect(&p, 4, "pipe", "dave", "secret");
	bytes_add(&all, p.b, p.n);
	for (unsigned i = 0; i < 20; i++)
		mk_publish(&all, "t/early", 3000, i);
	for (size_t off = 0; off < all.len; off += 2000)
		client_send(c, all.p + off, all.len - off < 2000 ? all.len - off : 2000);
	pump(f);
	assert_int_equal(state_of(f, c), S_AUTHENTICATING);
	assert_true(bytes_left(&c->out) > 0);
	assert_int_equal(c->s->armed & ARM_CLIENT_READ, 0);
	assert_idle_loop(f, c, 200);
	assert_broker_untouched(f);
	unblock_pool(f);
	wait_auth_jobs_home(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(bytes_left(&c->out), 0);
	mk_connect(&rewritten, 4, "pipe", "dave", NULL);
	bytes_add(&want, rewritten.b, rewritten.n);
	bytes_add(&want, all.p + p.n, all.len - p.n);
	assert_broker_got(&f->b, want.p, want.len);
	bytes_free(&all);
	bytes_free(&want);
}

/* A TLS 1.3 KeyUpdate the proxy must answer while it cannot write to the
 * client (its socket is full): reading must neither stop for good nor spin,
 * and both directions go on once the client reads again. */
static void test_key_update_while_the_client_socket_is_full_neither_spins_nor_stalls(void **state)
{
	struct fx *f = FX(state);
	struct bytes down = { 0 }, up = { 0 }, more = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 65536 });
	c = forwarding_client(f, 4);
	client_small_buffers(c, 4096);
	c->paused = 1;
	mk_publish(&down, "t/down", 30000, 1);
	broker_send(f, down.p, down.len);
	pump(f);
	assert_int_equal(bytes_left(&f->b.out), 0);
	assert_int_equal(SSL_key_update(c->ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	mk_publish(&up, "t/up", 200, 2);
	client_send(c, up.p, up.len);
	pump(f);
	assert_idle_loop(f, c, 200);
	c->paused = 0;
	pump(f);
	assert_broker_got(&f->b, up.p, up.len);
	assert_client_got(c, down.p, down.len);
	/* The new keys work both ways. */
	mk_publish(&more, "t/after", 500, 3);
	broker_send(f, more.p, more.len);
	client_send(c, more.p, more.len);
	pump(f);
	bytes_add(&down, more.p, more.len);
	bytes_add(&up, more.p, more.len);
	assert_client_got(c, down.p, down.len);
	assert_broker_got(&f->b, up.p, up.len);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	bytes_free(&down);
	bytes_free(&up);
	bytes_free(&more);
}

/* ---- half-close --------------------------------------------------------------------- */

static void client_ends_after_a_burst(void **state, int with_close_notify)
{
	struct fx *f = FX(state);
	struct bytes sent = { 0 };
	struct client *c;

	/* Room for the whole burst in the proxy, more than the broker's socket
	 * takes: the rest waits in the proxy when the client's end arrives. */
	fx_start(f, &(struct fx_opts){ .max_buffer = 1 << 20 });
	c = forwarding_client(f, 4);
	f->b.paused = 1;
	for (unsigned i = 0; i < 60; i++)
		mk_publish(&sent, "t/burst", 10000, i);
	client_send(c, sent.p, sent.len);
	if (with_close_notify)
		client_close_notify(c);
	pump(f);
	client_shut_wr(f, c);
	pump(f);
	assert_int_equal(state_of(f, c), S_CLOSING);
	assert_true(f->b.got.len < sent.len);
	/* The broker reads again only now: nothing was dropped meanwhile. */
	f->b.paused = 0;
	pump(f);
	assert_broker_got(&f->b, sent.p, sent.len);
	assert_true(f->b.eof);
	assert_gone(f, c);
	assert_close_line(f, c, "forwarding", "client_closed");
	bytes_free(&sent);
}

static void test_client_close_notify_behind_a_burst_still_delivers_the_burst(void **state)
{
	client_ends_after_a_burst(state, 1);
}

static void test_client_half_close_behind_a_burst_still_delivers_the_burst(void **state)
{
	client_ends_after_a_burst(state, 0);
}

static void test_broker_half_close_delivers_its_last_packets_then_close_notify(void **state)
{
	struct fx *f = FX(state);
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 4);
	mk_publish(&pubs, "t/last", 100, 1);
	mk_publish(&pubs, "t/last", 5000, 2);
	broker_send(f, pubs.p, pubs.len);
	broker_io(&f->b);
	assert_int_equal(shutdown(f->b.fd, SHUT_WR), 0);
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, pubs.p, pubs.len);
	assert_close_line(f, c, "forwarding", "broker_closed");
	assert_true(f->b.eof);
	bytes_free(&pubs);
}

/* ---- the broker's EOF mid-packet, and the clean cut ---------------------------------- */

static void broker_closes_mid_packet(void **state, unsigned level)
{
	struct fx *f = FX(state);
	struct bytes pubs = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, level);
	mk_publish(&pubs, "t/whole", 50, 1);
	mk_publish(&pubs, "t/cut", 500, 2);
	broker_send(f, pubs.p, pubs.len - 200);
	broker_io(&f->b);
	close(f->b.fd);
	f->b.fd = -1;
	pump(f);
	assert_gone(f, c);
	/* What the broker sent, as it was: no DISCONNECT after half a packet. */
	assert_client_answered(c, pubs.p, pubs.len - 200);
	assert_close_line(f, c, "forwarding", "broker_closed");
	bytes_free(&pubs);
}

static void test_broker_closing_mid_packet_gives_a_v5_client_no_disconnect(void **state)
{
	broker_closes_mid_packet(state, 5);
}

static void test_broker_closing_mid_packet_closes_a_311_client(void **state)
{
	broker_closes_mid_packet(state, 4);
}

static void test_shutdown_sends_disconnect_0x8b_to_a_v5_client_between_packets(void **state)
{
	static const uint8_t disconnect[] = { 0xe0, 0x01, 0x8b };
	struct fx *f = FX(state);
	struct bytes want = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 5);
	mk_publish(&want, "t/done", 200, 1);
	broker_send(f, want.p, want.len);
	pump(f);
	worker_shutdown(f, c);
	pump(f);
	bytes_add(&want, disconnect, sizeof(disconnect));
	assert_gone(f, c);
	assert_client_answered(c, want.p, want.len);
	assert_close_line(f, c, "forwarding", "shutdown");
	assert_true(f->b.eof);
	bytes_free(&want);
}

static void test_shutdown_waits_for_the_packet_in_progress_then_sends_disconnect(void **state)
{
	static const uint8_t disconnect[] = { 0xe0, 0x01, 0x8b };
	struct fx *f = FX(state);
	struct bytes p1 = { 0 }, p2 = { 0 }, want = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 5);
	mk_publish(&p1, "t/first", 300, 1);
	mk_publish(&p2, "t/second", 300, 2);
	broker_send(f, p1.p, 20);
	pump(f);
	assert_client_got(c, p1.p, 20);
	worker_shutdown(f, c);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	/* The rest of the packet and a whole next one arrive together: the
	 * client gets the first to its end, then the DISCONNECT. */
	broker_send(f, p1.p + 20, p1.len - 20);
	broker_send(f, p2.p, p2.len);
	pump(f);
	bytes_add(&want, p1.p, p1.len);
	bytes_add(&want, disconnect, sizeof(disconnect));
	assert_gone(f, c);
	assert_client_answered(c, want.p, want.len);
	assert_close_line(f, c, "forwarding", "shutdown");
	bytes_free(&p1);
	bytes_free(&p2);
	bytes_free(&want);
}

static void test_shutdown_drops_a_partial_packet_the_client_has_not_started(void **state)
{
	static const uint8_t disconnect[] = { 0xe0, 0x01, 0x8b };
	struct fx *f = FX(state);
	struct bytes p1 = { 0 }, p2 = { 0 }, want = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ .max_buffer = 65536 });
	c = forwarding_client(f, 5);
	client_small_buffers(c, 4096);
	c->paused = 1;
	mk_publish(&p1, "t/whole", 30000, 1);
	mk_publish(&p2, "t/partial", 30000, 2);
	broker_send(f, p1.p, p1.len);
	broker_send(f, p2.p, 10000);
	pump(f);
	/* The proxy has taken everything from the broker; the client (4 KiB
	 * of socket buffer) holds the start of the first packet, the proxy
	 * the rest of it and the start of the second. */
	assert_int_equal(bytes_left(&f->b.out), 0);
	assert_int_equal(c->got.len, 0);
	worker_shutdown(f, c);
	c->paused = 0;
	pump(f);
	bytes_add(&want, p1.p, p1.len);
	bytes_add(&want, disconnect, sizeof(disconnect));
	assert_gone(f, c);
	assert_client_answered(c, want.p, want.len);
	assert_close_line(f, c, "forwarding", "shutdown");
	bytes_free(&p1);
	bytes_free(&p2);
	bytes_free(&want);
}

static void test_broker_closing_while_a_clean_cut_waits_ends_without_disconnect(void **state)
{
	struct fx *f = FX(state);
	struct bytes p1 = { 0 };
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 5);
	mk_publish(&p1, "t/first", 300, 1);
	broker_send(f, p1.p, 20);
	pump(f);
	worker_shutdown(f, c);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	close(f->b.fd);
	f->b.fd = -1;
	pump(f);
	assert_gone(f, c);
	assert_client_answered(c, p1.p, 20);
	assert_close_line(f, c, "forwarding", "broker_closed");
	bytes_free(&p1);
}

/* ---- the partial TLS record ----------------------------------------------------------- */

/* Three bytes of the record that carries |p| reach the proxy, and nothing
 * more: the loop must go quiet (no read turn that schedules itself). */
static struct bytes three_bytes_of(struct fx *f, struct client *c, const void *p, size_t n)
{
	struct bytes ct = { 0 };

	client_seal(c, p, n, &ct);
	bytes_add(&c->out, ct.p, 3);
	pump(f);
	assert_idle_loop(f, c, 500);
	return ct;
}

static void test_three_bytes_of_a_record_do_not_spin_and_the_connect_deadline_still_fires(void **state)
{
	struct fx *f = FX(state);
	struct client *c;
	struct bytes ct;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ .connect_ms = 2000 });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 4, "slow", NULL, NULL);
	ct = three_bytes_of(f, c, p.b, p.n);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
	advance(f, 2100);
	assert_gone(f, c);
	assert_close_line(f, c, "await_connect", "connect_timeout");
	bytes_free(&ct);
}

static void test_three_bytes_of_a_record_then_the_rest_complete_the_connect(void **state)
{
	struct fx *f = FX(state);
	struct client *c;
	struct bytes ct;
	struct pkt p;

	fx_start(f, &(struct fx_opts){ 0 });
	c = client_new(f);
	client_handshake(f, c);
	mk_connect(&p, 4, "slow", NULL, NULL);
	ct = three_bytes_of(f, c, p.b, p.n);
	bytes_add(&c->out, ct.p + 3, ct.len - 3);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_broker_got(&f->b, p.b, p.n);
	bytes_free(&ct);
}

static void test_three_bytes_of_a_record_while_forwarding_do_not_spin(void **state)
{
	struct fx *f = FX(state);
	struct bytes pub = { 0 }, ct;
	struct client *c;

	fx_start(f, &(struct fx_opts){ 0 });
	c = forwarding_client(f, 4);
	mk_publish(&pub, "t/slow", 100, 3);
	ct = three_bytes_of(f, c, pub.p, pub.len);
	assert_int_equal(f->b.got.len, 0);
	bytes_add(&c->out, ct.p + 3, ct.len - 3);
	pump(f);
	assert_broker_got(&f->b, pub.p, pub.len);
	bytes_free(&ct);
	bytes_free(&pub);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* each state's timeout */
		T(test_hello_timeout_closes_a_client_that_sends_nothing),
		T(test_hello_timeout_holds_a_client_hello_cut_short),
		T(test_handshake_timeout_follows_a_complete_client_hello),
		T(test_connect_timeout_closes_a_client_that_sends_no_connect),
		T(test_connect_timeout_closes_a_client_whose_connect_stays_partial),
		T(test_refusal_waits_out_the_failure_delay_then_sends_connack_4),
		T(test_refusal_waits_out_the_failure_delay_then_sends_connack_0x86),
		T(test_check_stuck_in_the_queue_gets_connack_3_at_the_connect_deadline),
		T(test_check_stuck_in_the_queue_gets_connack_0x89_at_the_connect_deadline),
		T(test_broker_that_never_answers_gets_connack_3_at_the_upstream_deadline),
		T(test_broker_that_never_answers_gets_connack_0x88_at_the_upstream_deadline),
		T(test_token_expiry_sends_disconnect_0xa0_to_a_v5_client),
		T(test_token_expiry_closes_a_311_client_without_disconnect),
		T(test_clean_cut_gives_up_on_a_packet_that_never_ends_after_its_grace),
		T(test_linger_drops_what_a_client_never_reads),
		T(test_linger_drops_what_a_broker_never_reads),
		/* each refusal */
		T(test_first_packet_that_is_not_connect_is_closed_without_connack),
		T(test_malformed_311_connect_is_closed_without_connack),
		T(test_malformed_v5_connect_gets_connack_0x81),
		T(test_unsupported_protocol_level_gets_connack_1),
		T(test_v5_level_under_the_31_protocol_name_gets_connack_0x84),
		T(test_oversized_v5_connect_gets_connack_0x95),
		T(test_oversized_311_connect_is_closed_without_connack),
		T(test_unreachable_broker_gets_connack_3),
		T(test_unreachable_broker_gets_connack_0x88),
		T(test_wrong_password_gets_connack_4),
		T(test_wrong_password_gets_connack_0x86),
		T(test_anonymous_client_gets_connack_5),
		T(test_anonymous_client_gets_connack_0x87),
		T(test_v5_enhanced_authentication_gets_connack_0x8c_without_the_failure_delay),
		T(test_full_auth_queue_answers_connack_3_at_once),
		T(test_full_auth_queue_answers_connack_0x89_at_once),
		/* a close from every state */
		T(test_client_closing_during_the_handshake_frees_the_session),
		T(test_client_closing_while_awaiting_connect_frees_the_session),
		T(test_client_closing_while_its_refusal_is_held_frees_the_session),
		T(test_client_closing_while_its_check_is_on_the_pool_frees_the_session_and_its_counts),
		T(test_client_closing_while_the_broker_connects_frees_the_session),
		T(test_client_closing_while_forwarding_frees_the_session),
		T(test_client_close_notify_while_awaiting_connect_ends_the_session),
		T(test_client_reset_while_forwarding_is_a_client_error),
		T(test_close_now_during_the_handshake_frees_the_session),
		T(test_close_now_while_awaiting_connect_frees_the_session),
		T(test_close_now_while_a_refusal_is_held_frees_the_session),
		T(test_close_now_while_a_check_is_on_the_pool_frees_the_session),
		T(test_close_now_while_the_broker_connects_frees_the_session),
		T(test_close_now_while_forwarding_frees_the_session),
		T(test_shutdown_during_the_handshake_closes_the_session),
		T(test_shutdown_while_awaiting_connect_closes_the_session),
		T(test_shutdown_while_a_refusal_is_held_closes_the_session),
		T(test_shutdown_while_a_check_is_on_the_pool_closes_the_session),
		T(test_shutdown_while_the_broker_connects_closes_the_session),
		T(test_shutdown_closes_a_forwarding_311_client_without_disconnect),
		T(test_close_now_while_closing_keeps_the_first_reason_and_the_linger),
		T(test_shutdown_while_closing_keeps_the_first_reason_and_the_linger),
		T(test_client_leaving_during_the_linger_ends_the_session_at_once),
		T(test_close_now_while_forwarding_still_delivers_what_the_client_is_owed),
		/* pipelining */
		T(test_connect_and_two_publishes_in_one_record_reach_the_broker_in_order),
		T(test_connect_and_publishes_split_across_records_and_writes_arrive_in_order),
		T(test_connect_riding_with_the_client_finished_is_forwarded),
		T(test_nothing_reaches_the_broker_before_the_connect_is_complete),
		T(test_publishes_behind_a_pending_check_wait_for_its_answer),
		T(test_publishes_behind_an_inline_allowed_connect_follow_the_rewritten_connect),
		T(test_publishes_behind_a_refused_connect_never_reach_the_broker),
		/* backpressure */
		T(test_broker_that_stops_reading_stops_the_proxy_reading_the_client),
		T(test_client_that_stops_reading_stops_the_proxy_reading_the_broker),
		T(test_pipelining_past_the_connect_limit_waits_for_a_pending_check),
		T(test_key_update_while_the_client_socket_is_full_neither_spins_nor_stalls),
		/* half-close */
		T(test_client_close_notify_behind_a_burst_still_delivers_the_burst),
		T(test_client_half_close_behind_a_burst_still_delivers_the_burst),
		T(test_broker_half_close_delivers_its_last_packets_then_close_notify),
		/* the broker's EOF mid-packet, and the clean cut */
		T(test_broker_closing_mid_packet_gives_a_v5_client_no_disconnect),
		T(test_broker_closing_mid_packet_closes_a_311_client),
		T(test_shutdown_sends_disconnect_0x8b_to_a_v5_client_between_packets),
		T(test_shutdown_waits_for_the_packet_in_progress_then_sends_disconnect),
		T(test_shutdown_drops_a_partial_packet_the_client_has_not_started),
		T(test_broker_closing_while_a_clean_cut_waits_ends_without_disconnect),
		/* the partial TLS record */
		T(test_three_bytes_of_a_record_do_not_spin_and_the_connect_deadline_still_fires),
		T(test_three_bytes_of_a_record_then_the_rest_complete_the_connect),
		T(test_three_bytes_of_a_record_while_forwarding_do_not_spin),
	};
	int rc;

	session_tests_init();
	if (env_setup(&g_env) != 0) {
		fprintf(stderr, "session tests: cannot set up the environment\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	env_teardown(&g_env);
	return rc;
}
