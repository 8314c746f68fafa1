/*
 * The non-blocking TLS glue (tls/io.c) over AF_UNIX socketpairs: one test per
 * hard case of DESIGN.md §8. The server side always goes through tls_*; the
 * client is a plain BoringSSL SSL driven by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/context.h"
#include "tests/unit/tls_test_util.h"
#include "tls/io.h"

struct env {
	char dir[64];
	SSL_CTX *server_ctx;
	SSL_CTX *big_ctx;       /* a certificate larger than the smallest socket buffer */
};

/* One connection. With a relay, the test carries every byte between the two
 * sides itself: client <-> cfd ~ relay_c ... relay_s ~ sfd <-> server. */
struct conn {
	SSL *s, *c;
	int sfd, cfd;
	int relay_s, relay_c;   /* -1 without a relay */
};

static int group_setup(void **state)
{
	static struct env env;

	signal(SIGPIPE, SIG_IGN);
	strcpy(env.dir, "/tmp/mqtls-test-tlsio-XXXXXX");
	if (mkdtemp(env.dir) == NULL)
		return -1;
	*state = &env;
	env.server_ctx = make_server_ctx(env.dir, "small", 0);
	env.big_ctx = make_server_ctx(env.dir, "big", 12000);
	return env.server_ctx && env.big_ctx ? 0 : -1;
}

static int group_teardown(void **state)
{
	struct env *env = *state;
	char cmd[128];

	SSL_CTX_free(env->server_ctx);
	SSL_CTX_free(env->big_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void pump(struct conn *k)
{
	relay_pump(k->relay_s, k->relay_c);
}

static void conn_open(struct env *env, struct conn *k, uint16_t version, int with_relay)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	int cdone = 0;
	enum tls_io r = TLS_IO_WANT_READ;

	assert_non_null(cctx);
	if (version)
		assert_int_equal(SSL_CTX_set_max_proto_version(cctx, version), 1);
	memset(k, 0, sizeof(*k));
	k->relay_s = k->relay_c = -1;
	if (with_relay) {
		socket_pair(&k->sfd, &k->relay_s);
		socket_pair(&k->cfd, &k->relay_c);
	} else {
		socket_pair(&k->sfd, &k->cfd);
	}
	k->s = SSL_new(env->server_ctx);
	k->c = SSL_new(cctx);
	SSL_CTX_free(cctx);   /* the SSL keeps its own reference */
	assert_non_null(k->s);
	assert_non_null(k->c);
	assert_int_equal(SSL_set_fd(k->s, k->sfd), 1);
	assert_int_equal(SSL_set_fd(k->c, k->cfd), 1);
	SSL_set_accept_state(k->s);
	SSL_set_connect_state(k->c);

	for (int i = 0; i < 64 && !(cdone && r == TLS_IO_OK); i++) {
		if (!cdone) {
			int cr = SSL_do_handshake(k->c);

			if (cr == 1)
				cdone = 1;
			else
				assert_int_equal(SSL_get_error(k->c, cr), SSL_ERROR_WANT_READ);
		}
		pump(k);
		if (r != TLS_IO_OK) {
			r = tls_handshake(k->s);
			assert_true(r == TLS_IO_OK || r == TLS_IO_WANT_READ);
		}
		pump(k);
	}
	assert_int_equal(r, TLS_IO_OK);
	assert_int_equal(cdone, 1);
	if (version)
		assert_int_equal(SSL_version(k->s), version);
}

static void conn_close(struct conn *k)
{
	SSL_free(k->s);
	SSL_free(k->c);
	if (k->sfd >= 0)
		close(k->sfd);
	if (k->cfd >= 0)
		close(k->cfd);
	if (k->relay_s >= 0)
		close(k->relay_s);
	if (k->relay_c >= 0)
		close(k->relay_c);
	ERR_clear_error();
}

static void client_write_all(struct conn *k, const void *buf, size_t len)
{
	assert_int_equal(SSL_write(k->c, buf, (int)len), (int)len);
}

/* Reads what the client can get without blocking; returns the byte count. */
static size_t client_drain(struct conn *k, unsigned char *out, size_t cap)
{
	size_t got = 0;
	int r;

	while (got < cap && (r = SSL_read(k->c, out + got, (int)(cap - got))) > 0)
		got += (size_t)r;
	return got;
}

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 31 + seed) ^ (i >> 8));
}

/* ---- a record split across reads ----------------------------------------- */

static void record_split_byte_by_byte(struct env *env, uint16_t version)
{
	unsigned char msg[1000], wire[2048], got[2048];
	struct conn k;
	ssize_t wire_len;
	size_t n = 0;

	conn_open(env, &k, version, 1);
	fill_pattern(msg, sizeof(msg), 7);
	client_write_all(&k, msg, sizeof(msg));
	/* The whole record is now in the relay; hand it over one byte at a time. */
	wire_len = read(k.relay_c, wire, sizeof(wire));
	assert_true(wire_len > (ssize_t)sizeof(msg));
	for (ssize_t i = 0; i < wire_len; i++) {
		enum tls_io r;

		assert_int_equal(write(k.relay_s, wire + i, 1), 1);
		r = tls_read(k.s, got, sizeof(got), &n);
		if (i < wire_len - 1) {
			if (r != TLS_IO_WANT_READ)
				fail_msg("after %zd of %zd bytes: tls_read gave %d", i + 1, wire_len, r);
			assert_int_equal(n, 0);
		} else {
			assert_int_equal(r, TLS_IO_OK);
		}
	}
	assert_int_equal(n, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_false(SSL_has_pending(k.s));
	conn_close(&k);
}

static void test_record_split_across_reads_is_reassembled_tls13(void **state)
{
	record_split_byte_by_byte(*state, TLS1_3_VERSION);
}

static void test_record_split_across_reads_is_reassembled_tls12(void **state)
{
	record_split_byte_by_byte(*state, TLS1_2_VERSION);
}

/* ---- data pending inside the SSL -------------------------------------------- */

static void test_decrypted_data_left_inside_ssl_is_read_after_the_socket_is_drained(void **state)
{
	unsigned char msg[100], got[200];
	struct conn k;
	size_t n = 0;

	conn_open(*state, &k, 0, 0);
	fill_pattern(msg, sizeof(msg), 3);
	client_write_all(&k, msg, sizeof(msg));
	assert_int_equal(tls_read(k.s, got, 10, &n), TLS_IO_OK);
	assert_int_equal(n, 10);
	/* The socket is empty, so an event loop would sleep; the rest of the
	 * record waits inside the SSL and only SSL_has_pending says so. */
	assert_false(readable(k.sfd));
	assert_true(SSL_has_pending(k.s));
	assert_int_equal(SSL_pending(k.s), 90);
	assert_int_equal(tls_read(k.s, got + 10, sizeof(got) - 10, &n), TLS_IO_OK);
	assert_int_equal(n, 90);
	assert_memory_equal(got, msg, sizeof(msg));
	assert_false(SSL_has_pending(k.s));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	assert_int_equal(n, 0);
	conn_close(&k);
}

/* BoringSSL reads no further than one record, so later records stay in the
 * socket and keep it readable: the loop is woken for them as usual. */
static void test_later_records_stay_in_the_socket_and_keep_it_readable(void **state)
{
	unsigned char msg[3][64], got[512];
	struct conn k;
	size_t n = 0;

	conn_open(*state, &k, 0, 0);
	for (int i = 0; i < 3; i++) {
		fill_pattern(msg[i], sizeof(msg[i]), (unsigned)i);
		client_write_all(&k, msg[i], sizeof(msg[i]));
	}
	for (int i = 0; i < 3; i++) {
		assert_true(readable(k.sfd));
		assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
		assert_int_equal(n, sizeof(msg[i]));
		assert_memory_equal(got, msg[i], sizeof(msg[i]));
	}
	assert_false(readable(k.sfd));
	assert_false(SSL_has_pending(k.s));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	conn_close(&k);
}

/* ---- a write that blocks halfway ---------------------------------------------- */

static void test_write_blocked_halfway_is_retried_from_a_moved_buffer(void **state)
{
	const size_t len = 256 * 1024;
	unsigned char *data = malloc(len), *work = malloc(len), *recv_buf = malloc(len);
	struct conn k;
	size_t off = 0, received = 0, base = 0;
	int small = 4096, blocked = 0;

	assert_true(data && work && recv_buf);
	fill_pattern(data, len, 11);
	memcpy(work, data, len);
	conn_open(*state, &k, 0, 0);
	assert_int_equal(setsockopt(k.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(k.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);

	/* |work| holds data[base..len) at offset 0 of wherever it lives now. */
	while (off < len) {
		size_t n = 0;
		enum tls_io r = tls_write(k.s, work + (off - base), len - off, &n);

		if (r == TLS_IO_OK) {
			assert_true(n > 0 && n <= len - off);
			off += n;
			continue;
		}
		assert_int_equal(r, TLS_IO_WANT_WRITE);
		assert_int_equal(n, 0);
		/* Halfway: part of a record is on the wire, the rest waits in the SSL. */
		assert_true(readable(k.cfd));
		blocked++;
		/* Retry the same bytes from a new address, the old one scribbled
		 * over, as an evbuffer that reallocated would. */
		{
			unsigned char *moved = malloc(len - off);

			assert_non_null(moved);
			memcpy(moved, work + (off - base), len - off);
			memset(work, 0xee, len - base);
			free(work);
			work = moved;
			base = off;
		}
		received += client_drain(&k, recv_buf + received, len - received);
	}
	while (received < len) {
		size_t got = client_drain(&k, recv_buf + received, len - received);

		assert_true(got > 0);
		received += got;
	}
	assert_true(blocked >= 2);
	assert_memory_equal(recv_buf, data, len);
	free(work);
	free(data);
	free(recv_buf);
	conn_close(&k);
}

/* ---- read wants write, write wants read ------------------------------------- */

/* A read that has to run the handshake writes the server's flight; with the
 * socket full, it reports WANT_WRITE and the loop must wait for writability
 * before reading again. The big certificate makes the flight outgrow the
 * smallest socket buffer. */
static void test_read_that_must_write_handshake_flight_on_a_full_socket_wants_write(void **state)
{
	struct env *env = *state;
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	struct conn k = { .relay_s = -1, .relay_c = -1 };
	unsigned char got[16];
	size_t n = 0;
	enum tls_io r = TLS_IO_ERROR;
	int small = 1, cdone = 0, saw_want_write = 0, sent = 0;

	assert_non_null(cctx);
	socket_pair(&k.sfd, &k.cfd);
	assert_int_equal(setsockopt(k.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	k.s = SSL_new(env->big_ctx);
	k.c = SSL_new(cctx);
	SSL_CTX_free(cctx);
	assert_true(k.s && k.c);
	assert_int_equal(SSL_set_fd(k.s, k.sfd), 1);
	assert_int_equal(SSL_set_fd(k.c, k.cfd), 1);
	SSL_set_accept_state(k.s);
	SSL_set_connect_state(k.c);

	for (int i = 0; i < 200; i++) {
		if (!cdone) {
			cdone = SSL_do_handshake(k.c) == 1;
		} else if (!sent) {
			client_write_all(&k, "ping", 4);
			sent = 1;
		}
		r = tls_read(k.s, got, sizeof(got), &n);
		if (r == TLS_IO_OK)
			break;
		if (r == TLS_IO_WANT_WRITE)
			saw_want_write = 1;
		else
			assert_int_equal(r, TLS_IO_WANT_READ);
	}
	assert_int_equal(r, TLS_IO_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(got, "ping", 4);
	assert_true(saw_want_write);
	conn_close(&k);
}

/* BoringSSL answers a KeyUpdate lazily, with the next write: a read on a full
 * socket still returns the data behind it, and the connection carries on
 * once the peer makes room. */
static void test_key_update_request_does_not_block_a_read_on_a_full_socket(void **state)
{
	static unsigned char chunk[16384];
	const size_t cap = 1 << 20;
	unsigned char *sink = malloc(cap), got[64];
	struct conn k;
	size_t n = 0, drained = 0, written = 0;
	enum tls_io r;
	int small = 4096;

	assert_non_null(sink);
	conn_open(*state, &k, TLS1_3_VERSION, 0);
	assert_int_equal(setsockopt(k.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	fill_pattern(chunk, sizeof(chunk), 5);
	while ((r = tls_write(k.s, chunk, sizeof(chunk), &n)) == TLS_IO_OK)
		written += n;
	assert_int_equal(r, TLS_IO_WANT_WRITE);

	assert_int_equal(SSL_key_update(k.c, SSL_KEY_UPDATE_REQUESTED), 1);
	client_write_all(&k, "x", 1);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, 1);
	assert_int_equal(got[0], 'x');

	/* The pending write, the KeyUpdate reply and more data after it all
	 * reach the client intact, the last under the new keys. */
	for (int i = 0; i < 1000 && r != TLS_IO_OK; i++) {
		drained += client_drain(&k, sink + drained, cap - drained);
		r = tls_write(k.s, chunk, sizeof(chunk), &n);
		assert_true(r == TLS_IO_OK || r == TLS_IO_WANT_WRITE);
	}
	assert_int_equal(r, TLS_IO_OK);
	written += n;
	for (int i = 0; i < 1000 && (r = tls_write(k.s, "after", 5, &n)) != TLS_IO_OK; i++) {
		assert_int_equal(r, TLS_IO_WANT_WRITE);
		drained += client_drain(&k, sink + drained, cap - drained);
	}
	assert_int_equal(r, TLS_IO_OK);
	written += n;
	for (int i = 0; i < 1000 && drained < written; i++)
		drained += client_drain(&k, sink + drained, cap - drained);
	assert_int_equal(drained, written);
	assert_memory_equal(sink + drained - 5, "after", 5);
	free(sink);
	conn_close(&k);
}

/* Writing on a connection whose handshake has not happened yet runs the
 * handshake first, which has to read the ClientHello. */
static void test_write_before_the_handshake_wants_read(void **state)
{
	struct env *env = *state;
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	struct conn k = { .relay_s = -1, .relay_c = -1 };
	char got[16];
	size_t n = 0;
	enum tls_io r = TLS_IO_ERROR;
	int cdone = 0;

	assert_non_null(cctx);
	socket_pair(&k.sfd, &k.cfd);
	k.s = SSL_new(env->server_ctx);
	k.c = SSL_new(cctx);
	SSL_CTX_free(cctx);
	assert_true(k.s && k.c);
	assert_int_equal(SSL_set_fd(k.s, k.sfd), 1);
	assert_int_equal(SSL_set_fd(k.c, k.cfd), 1);
	SSL_set_accept_state(k.s);
	SSL_set_connect_state(k.c);

	assert_int_equal(tls_write(k.s, "hello", 5, &n), TLS_IO_WANT_READ);
	assert_int_equal(n, 0);
	for (int i = 0; i < 64; i++) {
		if (!cdone)
			cdone = SSL_do_handshake(k.c) == 1;
		r = tls_write(k.s, "hello", 5, &n);
		if (r == TLS_IO_OK)
			break;
		assert_int_equal(r, TLS_IO_WANT_READ);
	}
	assert_int_equal(r, TLS_IO_OK);
	assert_int_equal(n, 5);
	assert_int_equal(SSL_read(k.c, got, sizeof(got)), 5);
	assert_memory_equal(got, "hello", 5);
	conn_close(&k);
}

/* ---- endings -------------------------------------------------------------- */

static void test_peer_close_notify_is_reported_as_closed_after_its_data(void **state)
{
	unsigned char got[64];
	struct conn k;
	size_t n = 0;

	conn_open(*state, &k, 0, 0);
	client_write_all(&k, "bye", 3);
	assert_true(SSL_shutdown(k.c) >= 0);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(got, "bye", 3);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_CLOSED);
	assert_int_equal(n, 0);
	/* Asking again gives the same answer, not a hang or an error. */
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_CLOSED);
	conn_close(&k);
}

static void test_close_notify_we_send_is_seen_by_the_peer(void **state)
{
	char got[16];
	struct conn k;

	conn_open(*state, &k, 0, 0);
	tls_close_notify(k.s);
	/* Calling it twice sends nothing more and does not fail. */
	tls_close_notify(k.s);
	assert_int_equal(SSL_read(k.c, got, sizeof(got)), 0);
	assert_int_equal(SSL_get_error(k.c, 0), SSL_ERROR_ZERO_RETURN);
	assert_int_equal(ERR_peek_error(), 0);
	conn_close(&k);
}

static void assert_not_want(enum tls_io r)
{
	if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE)
		fail_msg("a vanished peer gave WANT_%s: the session would wait for ever",
		         r == TLS_IO_WANT_READ ? "READ" : "WRITE");
}

static void test_peer_that_vanishes_is_eof_then_writes_fail(void **state)
{
	unsigned char got[64];
	struct conn k;
	size_t n = 1;
	enum tls_io r;

	conn_open(*state, &k, 0, 0);
	close(k.cfd);
	k.cfd = -1;
	r = tls_read(k.s, got, sizeof(got), &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_EOF);
	assert_int_equal(n, 0);
	r = tls_write(k.s, "late", 4, &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_ERROR);   /* EPIPE */
	assert_int_equal(n, 0);
	conn_close(&k);
}

static void test_peer_that_vanishes_in_the_middle_of_a_record_is_not_want(void **state)
{
	unsigned char msg[500], wire[1024], got[1024];
	struct conn k;
	ssize_t wire_len;
	size_t n = 1;
	enum tls_io r;

	conn_open(*state, &k, 0, 1);
	fill_pattern(msg, sizeof(msg), 9);
	client_write_all(&k, msg, sizeof(msg));
	wire_len = read(k.relay_c, wire, sizeof(wire));
	assert_true(wire_len > (ssize_t)sizeof(msg));
	assert_int_equal(write(k.relay_s, wire, (size_t)wire_len / 2), wire_len / 2);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	close(k.relay_s);
	k.relay_s = -1;
	r = tls_read(k.s, got, sizeof(got), &n);
	assert_not_want(r);
	/* BoringSSL sees a plain EOF; the half record is dropped with the session. */
	assert_int_equal(r, TLS_IO_EOF);
	assert_int_equal(n, 0);
	conn_close(&k);
}

/* A peer that closes with our data unread makes the kernel report a reset. */
static void test_peer_that_vanishes_with_data_unread_is_an_error(void **state)
{
	unsigned char got[64];
	struct conn k;
	size_t n = 1;
	enum tls_io r;

	conn_open(*state, &k, 0, 0);
	assert_int_equal(tls_write(k.s, "unread", 6, &n), TLS_IO_OK);
	close(k.cfd);
	k.cfd = -1;
	r = tls_read(k.s, got, sizeof(got), &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_ERROR);   /* ECONNRESET */
	assert_int_equal(n, 0);
	conn_close(&k);
}

/* Opens a server SSL on a fresh pair without a handshake; the test plays the
 * client on k->cfd with raw bytes or a BoringSSL client it makes itself. */
static void conn_open_raw(struct env *env, struct conn *k)
{
	memset(k, 0, sizeof(*k));
	k->relay_s = k->relay_c = -1;
	socket_pair(&k->sfd, &k->cfd);
	k->s = SSL_new(env->server_ctx);
	assert_non_null(k->s);
	assert_int_equal(SSL_set_fd(k->s, k->sfd), 1);
	SSL_set_accept_state(k->s);
}

static void test_peer_that_vanishes_during_the_handshake_is_not_want(void **state)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	struct conn k;
	enum tls_io r;

	assert_non_null(cctx);
	conn_open_raw(*state, &k);
	k.c = SSL_new(cctx);
	SSL_CTX_free(cctx);
	assert_non_null(k.c);
	assert_int_equal(SSL_set_fd(k.c, k.cfd), 1);
	SSL_set_connect_state(k.c);
	assert_int_equal(SSL_get_error(k.c, SSL_do_handshake(k.c)), SSL_ERROR_WANT_READ);
	assert_int_equal(tls_handshake(k.s), TLS_IO_WANT_READ);
	close(k.cfd);
	k.cfd = -1;
	r = tls_handshake(k.s);
	assert_not_want(r);
	assert_true(r == TLS_IO_EOF || r == TLS_IO_ERROR);
	conn_close(&k);
}

static void test_plaintext_mqtt_on_the_tls_port_fails_the_handshake(void **state)
{
	/* An MQTT 3.1.1 CONNECT: what a client configured without TLS sends. */
	static const unsigned char connect[] = { 0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	                                         0x02, 0x00, 0x3c, 0x00, 0x00 };
	char reason[256];
	struct conn k;

	conn_open_raw(*state, &k);
	assert_int_equal(write(k.cfd, connect, sizeof(connect)), (ssize_t)sizeof(connect));
	assert_int_equal(tls_handshake(k.s), TLS_IO_ERROR);
	assert_true(tls_last_error(reason, sizeof(reason))[0] != '\0');
	conn_close(&k);
}

static void test_garbage_from_the_peer_is_an_error_with_a_reason(void **state)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	unsigned char got[64];
	char reason[256];
	struct conn k;
	size_t n = 1;

	conn_open(*state, &k, 0, 0);
	assert_int_equal(write(k.cfd, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_ERROR);
	assert_int_equal(n, 0);
	assert_true(tls_last_error(reason, sizeof(reason))[0] != '\0');
	ERR_clear_error();
	assert_string_equal(tls_last_error(reason, sizeof(reason)), "");
	assert_string_equal(tls_last_error(reason, 0), "");
	conn_close(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_split_across_reads_is_reassembled_tls13),
		cmocka_unit_test(test_record_split_across_reads_is_reassembled_tls12),
		cmocka_unit_test(test_decrypted_data_left_inside_ssl_is_read_after_the_socket_is_drained),
		cmocka_unit_test(test_later_records_stay_in_the_socket_and_keep_it_readable),
		cmocka_unit_test(test_write_blocked_halfway_is_retried_from_a_moved_buffer),
		cmocka_unit_test(test_read_that_must_write_handshake_flight_on_a_full_socket_wants_write),
		cmocka_unit_test(test_key_update_request_does_not_block_a_read_on_a_full_socket),
		cmocka_unit_test(test_write_before_the_handshake_wants_read),
		cmocka_unit_test(test_peer_close_notify_is_reported_as_closed_after_its_data),
		cmocka_unit_test(test_close_notify_we_send_is_seen_by_the_peer),
		cmocka_unit_test(test_peer_that_vanishes_is_eof_then_writes_fail),
		cmocka_unit_test(test_peer_that_vanishes_in_the_middle_of_a_record_is_not_want),
		cmocka_unit_test(test_peer_that_vanishes_with_data_unread_is_an_error),
		cmocka_unit_test(test_peer_that_vanishes_during_the_handshake_is_not_want),
		cmocka_unit_test(test_plaintext_mqtt_on_the_tls_port_fails_the_handshake),
		cmocka_unit_test(test_garbage_from_the_peer_is_an_error_with_a_reason),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
