/*
 * The read-ahead socket BIO (tls/sock.c) over AF_UNIX socketpairs: first on
 * its own, then as the BIO of a BoringSSL server whose client is a plain
 * SSL_set_fd SSL driven by the test. Whether a call made a recv(2) that got
 * bytes is seen from outside: the socket's receive queue (FIONREAD) shrank.
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/context.h"
#include "tests/unit/tls_test_util.h"
#include "tls/io.h"
#include "tls/sock.h"

/* What tls/sock.c reads ahead: a record header, 16 KiB of plaintext and 256
 * bytes of AEAD overhead. Reads of at least this much bypass the buffer. */
#define READAHEAD (5 + 16384 + 256)

struct env {
	char dir[64];
	SSL_CTX *server_ctx;
};

/* The BIO alone, over one end of a pair; the test plays the peer. */
struct raw {
	struct tls_sock t;
	BIO *b;
	int peer;
};

/* A TLS connection. The server reads and writes through the sock BIO; with
 * a relay the test carries the bytes: client <-> cfd ~ relay_c ... relay_s ~
 * sfd <-> server. */
struct conn {
	SSL *s, *c;
	struct tls_sock t;
	int sfd, cfd;
	int relay_s, relay_c;   /* -1 without a relay */
};

/* SIGPIPE keeps its default action on purpose: a write to a closed peer
 * without MSG_NOSIGNAL would kill the test program. */
static int group_setup(void **state)
{
	static struct env env;

	strcpy(env.dir, "/tmp/mqtls-test-tlssock-XXXXXX");
	if (mkdtemp(env.dir) == NULL)
		return -1;
	*state = &env;
	env.server_ctx = make_server_ctx(env.dir, "server", 0);
	return env.server_ctx ? 0 : -1;
}

static int group_teardown(void **state)
{
	struct env *env = *state;
	char cmd[128];

	SSL_CTX_free(env->server_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Bytes waiting in |fd|'s receive queue. */
static int queued(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static void send_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 31 + seed) ^ (i >> 8));
}

static void raw_open(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	socket_pair(&r->t.fd, &r->peer);
	r->b = tls_sock_bio_new(&r->t);
	assert_non_null(r->b);
}

static void raw_close(struct raw *r)
{
	BIO_free(r->b);
	tls_sock_cleanup(&r->t);
	close(r->t.fd);
	if (r->peer >= 0)
		close(r->peer);
}

static void assert_buffer_freed(const struct tls_sock *t)
{
	assert_false(tls_sock_buffered(t));
	assert_null(t->buf);
	assert_int_equal(t->off, 0);
	assert_int_equal(t->len, 0);
}

/* ---- the BIO alone: reads ------------------------------------------------ */

static void test_small_reads_are_served_in_order_from_one_recv(void **state)
{
	struct raw r;
	char out[64];

	raw_open(&r);
	send_all(r.peer, "hello", 5);
	send_all(r.peer, " wor", 4);
	send_all(r.peer, "ld!", 3);
	assert_int_equal(BIO_read(r.b, out, 5), 5);
	assert_memory_equal(out, "hello", 5);
	/* The one recv took all three sends; the rest waits in the BIO. */
	assert_int_equal(queued(r.t.fd), 0);
	assert_true(tls_sock_buffered(&r.t));
	assert_non_null(r.t.buf);
	assert_int_equal(BIO_read(r.b, out, 2), 2);
	assert_memory_equal(out, " w", 2);
	assert_true(tls_sock_buffered(&r.t));
	/* Asking for more than is buffered gets what is buffered. */
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 5);
	assert_memory_equal(out, "orld!", 5);
	assert_buffer_freed(&r.t);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), -1);
	assert_true(BIO_should_retry(r.b));
	raw_close(&r);
}

static void test_buffered_bytes_come_before_newer_socket_bytes(void **state)
{
	struct raw r;
	char out[64];

	raw_open(&r);
	send_all(r.peer, "abcdef", 6);
	assert_int_equal(BIO_read(r.b, out, 2), 2);
	assert_memory_equal(out, "ab", 2);
	send_all(r.peer, "XYZ", 3);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 4);
	assert_memory_equal(out, "cdef", 4);
	assert_int_equal(queued(r.t.fd), 3);
	assert_buffer_freed(&r.t);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 3);
	assert_memory_equal(out, "XYZ", 3);
	assert_buffer_freed(&r.t);
	raw_close(&r);
}

static void test_read_of_the_readahead_size_goes_straight_to_the_caller(void **state)
{
	const size_t len = 20000;
	unsigned char *data = malloc(len), *out = malloc(len);
	struct raw r;

	assert_true(data && out);
	fill_pattern(data, len, 1);
	raw_open(&r);
	send_all(r.peer, data, len);
	assert_int_equal(BIO_read(r.b, out, READAHEAD), READAHEAD);
	assert_buffer_freed(&r.t);
	assert_int_equal(queued(r.t.fd), len - READAHEAD);
	assert_int_equal(BIO_read(r.b, out + READAHEAD, (int)len), len - READAHEAD);
	assert_buffer_freed(&r.t);
	assert_memory_equal(out, data, len);
	raw_close(&r);
	free(data);
	free(out);
}

static void test_read_one_byte_short_of_the_readahead_size_is_read_ahead(void **state)
{
	const size_t len = 20000;
	unsigned char *data = malloc(len), *out = malloc(len);
	struct raw r;

	assert_true(data && out);
	fill_pattern(data, len, 2);
	raw_open(&r);
	send_all(r.peer, data, len);
	assert_int_equal(BIO_read(r.b, out, READAHEAD - 1), READAHEAD - 1);
	assert_true(tls_sock_buffered(&r.t));
	assert_int_equal(r.t.len - r.t.off, 1);
	assert_int_equal(queued(r.t.fd), len - READAHEAD);
	assert_int_equal(BIO_read(r.b, out + READAHEAD - 1, 100), 1);
	assert_buffer_freed(&r.t);
	assert_int_equal(BIO_read(r.b, out + READAHEAD, (int)len), len - READAHEAD);
	assert_memory_equal(out, data, len);
	raw_close(&r);
	free(data);
	free(out);
}

static void test_idle_socket_is_retry_read_and_holds_no_buffer(void **state)
{
	struct raw r;
	char out[16];

	raw_open(&r);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), -1);
	assert_true(BIO_should_retry(r.b));
	assert_true(BIO_should_read(r.b));
	assert_false(BIO_should_write(r.b));
	assert_buffer_freed(&r.t);
	/* Once data comes the flags from the failed read are gone. */
	send_all(r.peer, "a", 1);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 1);
	assert_false(BIO_should_retry(r.b));
	assert_int_equal(BIO_read(r.b, out, 0), 0);
	raw_close(&r);
}

static void test_peer_close_is_eof_after_the_buffered_bytes(void **state)
{
	struct raw r;
	char out[16];

	raw_open(&r);
	send_all(r.peer, "abc", 3);
	close(r.peer);
	r.peer = -1;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(BIO_read(r.b, out, 1), 1);
		assert_int_equal(out[0], "abc"[i]);
	}
	assert_buffer_freed(&r.t);
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 0);
	assert_false(BIO_should_retry(r.b));
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), 0);
	assert_false(BIO_should_retry(r.b));
	assert_buffer_freed(&r.t);
	raw_close(&r);
}

/* A peer that closes with our data unread makes the kernel report a reset. */
static void test_peer_reset_is_an_error_without_retry(void **state)
{
	struct raw r;
	char out[16];

	raw_open(&r);
	assert_int_equal(BIO_write(r.b, "unread", 6), 6);
	close(r.peer);
	r.peer = -1;
	errno = 0;
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), -1);
	assert_int_equal(errno, ECONNRESET);
	assert_false(BIO_should_retry(r.b));
	assert_buffer_freed(&r.t);
	raw_close(&r);
}

/* ---- the BIO alone: writes ------------------------------------------------ */

static void test_writes_go_straight_to_the_socket(void **state)
{
	struct raw r;
	char out[16];

	raw_open(&r);
	assert_int_equal(BIO_write(r.b, "abc", 3), 3);
	assert_false(BIO_should_retry(r.b));
	assert_int_equal(BIO_flush(r.b), 1);
	assert_int_equal(read(r.peer, out, sizeof(out)), 3);
	assert_memory_equal(out, "abc", 3);
	assert_buffer_freed(&r.t);
	raw_close(&r);
}

static void test_write_on_a_full_socket_is_retry_write(void **state)
{
	static unsigned char chunk[4096], sink[65536];
	struct raw r;
	int small = 4096, w = 0;

	raw_open(&r);
	assert_int_equal(setsockopt(r.t.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	for (int i = 0; i < 10000 && (w = BIO_write(r.b, chunk, sizeof(chunk))) > 0; i++)
		;
	assert_int_equal(w, -1);
	assert_true(BIO_should_retry(r.b));
	assert_true(BIO_should_write(r.b));
	assert_false(BIO_should_read(r.b));
	while (read(r.peer, sink, sizeof(sink)) > 0)
		;
	assert_true(BIO_write(r.b, chunk, sizeof(chunk)) > 0);
	assert_false(BIO_should_retry(r.b));
	raw_close(&r);
}

static void test_write_to_a_closed_peer_fails_without_a_signal(void **state)
{
	struct raw r;

	raw_open(&r);
	close(r.peer);
	r.peer = -1;
	errno = 0;
	assert_int_equal(BIO_write(r.b, "late", 4), -1);
	assert_int_equal(errno, EPIPE);
	assert_false(BIO_should_retry(r.b));
	raw_close(&r);
}

static void test_cleanup_drops_a_non_empty_buffer(void **state)
{
	struct raw r;
	char out[16];

	raw_open(&r);
	send_all(r.peer, "abcdef", 6);
	assert_int_equal(BIO_read(r.b, out, 1), 1);
	assert_true(tls_sock_buffered(&r.t));
	tls_sock_cleanup(&r.t);
	assert_buffer_freed(&r.t);
	tls_sock_cleanup(&r.t);
	assert_buffer_freed(&r.t);
	/* The dropped bytes are gone for good. */
	assert_int_equal(BIO_read(r.b, out, sizeof(out)), -1);
	assert_true(BIO_should_read(r.b));
	raw_close(&r);
}

/* ---- under TLS ------------------------------------------------------------ */

static void pump(struct conn *k)
{
	relay_pump(k->relay_s, k->relay_c);
}

/* Sockets and both SSLs, no handshake yet. */
static void conn_start(struct env *env, struct conn *k, uint16_t version, int with_relay)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	BIO *b;

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
	k->t.fd = k->sfd;
	k->s = SSL_new(env->server_ctx);
	k->c = SSL_new(cctx);
	SSL_CTX_free(cctx);
	assert_non_null(k->s);
	assert_non_null(k->c);
	b = tls_sock_bio_new(&k->t);
	assert_non_null(b);
	SSL_set_bio(k->s, b, b);
	assert_int_equal(SSL_set_fd(k->c, k->cfd), 1);
	SSL_set_accept_state(k->s);
	SSL_set_connect_state(k->c);
}

static void conn_open(struct env *env, struct conn *k, uint16_t version, int with_relay)
{
	enum tls_io r = TLS_IO_WANT_READ;
	int cdone = 0;

	conn_start(env, k, version, with_relay);
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
	/* The handshake used up everything the server read. */
	assert_buffer_freed(&k->t);
}

static void conn_close(struct conn *k)
{
	SSL_free(k->s);
	SSL_free(k->c);
	tls_sock_cleanup(&k->t);
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

static size_t client_drain(struct conn *k, unsigned char *out, size_t cap)
{
	size_t got = 0;
	int r;

	while (got < cap && (r = SSL_read(k->c, out + got, (int)(cap - got))) > 0)
		got += (size_t)r;
	return got;
}

static void assert_not_want(enum tls_io r)
{
	if (r == TLS_IO_WANT_READ || r == TLS_IO_WANT_WRITE)
		fail_msg("a vanished peer gave WANT_%s: the session would wait for ever",
		         r == TLS_IO_WANT_READ ? "READ" : "WRITE");
}

static void handshake_and_echo(struct env *env, uint16_t version)
{
	unsigned char got[16];
	struct conn k;
	size_t n = 0;

	conn_open(env, &k, version, 0);
	client_write_all(&k, "ping", 4);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(got, "ping", 4);
	assert_int_equal(tls_write(k.s, "pong", 4, &n), TLS_IO_OK);
	assert_int_equal(n, 4);
	assert_int_equal(client_drain(&k, got, sizeof(got)), 4);
	assert_memory_equal(got, "pong", 4);
	assert_buffer_freed(&k.t);
	conn_close(&k);
}

static void test_handshake_and_echo_over_the_sock_bio_tls13(void **state)
{
	handshake_and_echo(*state, TLS1_3_VERSION);
}

static void test_handshake_and_echo_over_the_sock_bio_tls12(void **state)
{
	handshake_and_echo(*state, TLS1_2_VERSION);
}

/* Chatty MQTT: many small records sent at once are taken from the socket by
 * one recv and then served from the buffer while the socket is quiet. */
static void small_records_share_one_recv(struct env *env, uint16_t version)
{
	enum { RECORDS = 50, SIZE = 10 };
	unsigned char msg[RECORDS * SIZE], got[RECORDS * SIZE];
	struct conn k;
	size_t n = 0;
	int recvs = 0;

	conn_open(env, &k, version, 0);
	fill_pattern(msg, sizeof(msg), 4);
	for (int i = 0; i < RECORDS; i++)
		client_write_all(&k, msg + i * SIZE, SIZE);
	assert_true(queued(k.sfd) > (int)sizeof(msg));
	assert_true(queued(k.sfd) < READAHEAD);
	for (int i = 0; i < RECORDS; i++) {
		int before = queued(k.sfd);

		assert_int_equal(tls_read(k.s, got + i * SIZE, SIZE, &n), TLS_IO_OK);
		assert_int_equal(n, SIZE);
		if (queued(k.sfd) < before)
			recvs++;
		if (i < RECORDS - 1) {
			/* The socket is quiet, so the event loop must ask the BIO. */
			assert_true(tls_sock_buffered(&k.t));
			assert_false(readable(k.sfd));
		}
	}
	assert_int_equal(recvs, 1);
	assert_memory_equal(got, msg, sizeof(msg));
	assert_buffer_freed(&k.t);
	assert_false(SSL_has_pending(k.s));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	assert_buffer_freed(&k.t);
	conn_close(&k);
}

static void test_small_records_sent_together_share_one_recv_tls13(void **state)
{
	small_records_share_one_recv(*state, TLS1_3_VERSION);
}

static void test_small_records_sent_together_share_one_recv_tls12(void **state)
{
	small_records_share_one_recv(*state, TLS1_2_VERSION);
}

/* In TLS 1.3 the client may send data right behind its Finished: the server's
 * handshake reads both, and the data then waits in the BIO, not the socket. */
static void test_data_behind_the_client_finished_waits_in_the_buffer(void **state)
{
	unsigned char got[16];
	struct conn k;
	size_t n = 0;
	int cdone = 0;

	conn_start(*state, &k, TLS1_3_VERSION, 0);
	for (int i = 0; i < 64 && !cdone; i++) {
		int cr = SSL_do_handshake(k.c);

		if (cr == 1)
			cdone = 1;
		else
			assert_int_equal(SSL_get_error(k.c, cr), SSL_ERROR_WANT_READ);
		if (!cdone)
			assert_int_equal(tls_handshake(k.s), TLS_IO_WANT_READ);
	}
	assert_int_equal(cdone, 1);
	client_write_all(&k, "early", 5);
	assert_int_equal(tls_handshake(k.s), TLS_IO_OK);
	assert_true(tls_sock_buffered(&k.t));
	assert_false(readable(k.sfd));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(got, "early", 5);
	assert_buffer_freed(&k.t);
	conn_close(&k);
}

static void record_split_byte_by_byte(struct env *env, uint16_t version)
{
	unsigned char msg[1000], wire[2048], got[2048];
	struct conn k;
	ssize_t wire_len;
	size_t n = 0;

	conn_open(env, &k, version, 1);
	fill_pattern(msg, sizeof(msg), 7);
	client_write_all(&k, msg, sizeof(msg));
	wire_len = read(k.relay_c, wire, sizeof(wire));
	assert_true(wire_len > (ssize_t)sizeof(msg));
	for (ssize_t i = 0; i < wire_len; i++) {
		enum tls_io r;

		assert_int_equal(write(k.relay_s, wire + i, 1), 1);
		r = tls_read(k.s, got, sizeof(got), &n);
		/* Each recv got one byte and handed it on: nothing stays here. */
		assert_buffer_freed(&k.t);
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
	conn_close(&k);
}

static void test_record_split_byte_by_byte_is_reassembled_tls13(void **state)
{
	record_split_byte_by_byte(*state, TLS1_3_VERSION);
}

static void test_record_split_byte_by_byte_is_reassembled_tls12(void **state)
{
	record_split_byte_by_byte(*state, TLS1_2_VERSION);
}

/* Chunks that end inside a header or a body, so the buffer keeps a partial
 * header or the start of a body between reads. */
static void records_in_odd_chunks(struct env *env, uint16_t version)
{
	enum { RECORDS = 5, SIZE = 100 };
	unsigned char msg[RECORDS * SIZE], wire[4096], got[RECORDS * SIZE];
	struct conn k;
	ssize_t wire_len, off = 0;
	size_t n = 0, received = 0;

	conn_open(env, &k, version, 1);
	fill_pattern(msg, sizeof(msg), 8);
	for (int i = 0; i < RECORDS; i++)
		client_write_all(&k, msg + i * SIZE, SIZE);
	wire_len = read(k.relay_c, wire, sizeof(wire));
	assert_true(wire_len > (ssize_t)sizeof(msg));
	for (int i = 0; off < wire_len; i++) {
		ssize_t chunk = 1 + (i * 5) % 13;
		enum tls_io r;

		if (chunk > wire_len - off)
			chunk = wire_len - off;
		assert_int_equal(write(k.relay_s, wire + off, (size_t)chunk), chunk);
		off += chunk;
		while ((r = tls_read(k.s, got + received, sizeof(got) - received, &n)) == TLS_IO_OK)
			received += n;
		assert_int_equal(r, TLS_IO_WANT_READ);
		assert_buffer_freed(&k.t);
	}
	assert_int_equal(received, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	conn_close(&k);
}

static void test_records_in_odd_chunks_are_reassembled_tls13(void **state)
{
	records_in_odd_chunks(*state, TLS1_3_VERSION);
}

static void test_records_in_odd_chunks_are_reassembled_tls12(void **state)
{
	records_in_odd_chunks(*state, TLS1_2_VERSION);
}

/* Two full records: the read-ahead for the first takes the head of the
 * second, whose body then comes half from the buffer, half from the socket. */
static void full_size_records(struct env *env, uint16_t version)
{
	static unsigned char msg[2][16384], got[16384];
	struct conn k;
	size_t n = 0;

	conn_open(env, &k, version, 0);
	for (int i = 0; i < 2; i++) {
		fill_pattern(msg[i], sizeof(msg[i]), 20u + (unsigned)i);
		client_write_all(&k, msg[i], sizeof(msg[i]));
	}
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, sizeof(got));
	assert_memory_equal(got, msg[0], sizeof(got));
	assert_true(tls_sock_buffered(&k.t));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_int_equal(n, sizeof(got));
	assert_memory_equal(got, msg[1], sizeof(got));
	assert_buffer_freed(&k.t);
	assert_int_equal(queued(k.sfd), 0);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	conn_close(&k);
}

static void test_full_size_records_arrive_intact_tls13(void **state)
{
	full_size_records(*state, TLS1_3_VERSION);
}

static void test_full_size_records_arrive_intact_tls12(void **state)
{
	full_size_records(*state, TLS1_2_VERSION);
}

/* A mebibyte in records of mixed sizes, written while the server reads. */
static void stream_of_a_mebibyte(struct env *env, uint16_t version)
{
	static const size_t caps[] = { 1, 100, 4096, 16384, 65536 };
	const size_t len = 1 << 20;
	unsigned char *data = malloc(len), *got = malloc(len);
	struct conn k;
	size_t sent = 0, received = 0, cur = 0, n = 0;
	uint32_t seed = 12345;
	int rounds = 0;

	assert_true(data && got);
	fill_pattern(data, len, 9);
	conn_open(env, &k, version, 0);
	for (; received < len && rounds < 100000; rounds++) {
		enum tls_io r;

		while (sent < len) {
			int w;

			if (cur == 0) {
				seed = seed * 1103515245u + 12345u;
				cur = 1 + (seed >> 8) % 16384;
				if (cur > len - sent)
					cur = len - sent;
			}
			/* After WANT_WRITE the same bytes are offered again. */
			w = SSL_write(k.c, data + sent, (int)cur);
			if (w <= 0) {
				assert_int_equal(SSL_get_error(k.c, w), SSL_ERROR_WANT_WRITE);
				break;
			}
			assert_int_equal(w, (int)cur);
			sent += cur;
			cur = 0;
		}
		for (;;) {
			size_t cap = caps[rounds % 5];

			if (cap > len - received)
				cap = len - received;
			if (cap == 0)
				break;
			r = tls_read(k.s, got + received, cap, &n);
			if (r != TLS_IO_OK) {
				assert_int_equal(r, TLS_IO_WANT_READ);
				break;
			}
			received += n;
		}
	}
	assert_int_equal(received, len);
	assert_memory_equal(got, data, len);
	assert_buffer_freed(&k.t);
	conn_close(&k);
	free(data);
	free(got);
}

static void test_mebibyte_stream_of_mixed_records_arrives_intact_tls13(void **state)
{
	stream_of_a_mebibyte(*state, TLS1_3_VERSION);
}

static void test_mebibyte_stream_of_mixed_records_arrives_intact_tls12(void **state)
{
	stream_of_a_mebibyte(*state, TLS1_2_VERSION);
}

static void test_write_blocked_on_a_full_socket_is_retried(void **state)
{
	const size_t len = 256 * 1024;
	unsigned char *data = malloc(len), *sink = malloc(len);
	struct conn k;
	size_t off = 0, received = 0;
	int small = 4096, blocked = 0;

	assert_true(data && sink);
	fill_pattern(data, len, 11);
	conn_open(*state, &k, 0, 0);
	assert_int_equal(setsockopt(k.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	for (int i = 0; i < 100000 && off < len; i++) {
		size_t n = 0;
		enum tls_io r = tls_write(k.s, data + off, len - off, &n);

		if (r == TLS_IO_OK) {
			off += n;
			continue;
		}
		assert_int_equal(r, TLS_IO_WANT_WRITE);
		blocked++;
		received += client_drain(&k, sink + received, len - received);
	}
	for (int i = 0; i < 1000 && received < len; i++)
		received += client_drain(&k, sink + received, len - received);
	assert_int_equal(off, len);
	assert_int_equal(received, len);
	assert_true(blocked > 0);
	assert_memory_equal(sink, data, len);
	conn_close(&k);
	free(data);
	free(sink);
}

/* ---- endings -------------------------------------------------------------- */

static void test_close_notify_behind_buffered_records_is_closed_after_them(void **state)
{
	unsigned char got[64];
	struct conn k;
	size_t n = 0;

	conn_open(*state, &k, 0, 0);
	client_write_all(&k, "one", 3);
	client_write_all(&k, "two", 3);
	assert_true(SSL_shutdown(k.c) >= 0);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, "one", 3);
	assert_true(tls_sock_buffered(&k.t));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, "two", 3);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_CLOSED);
	assert_int_equal(n, 0);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_CLOSED);
	conn_close(&k);
}

static void test_records_read_ahead_before_the_peer_vanished_come_before_eof(void **state)
{
	unsigned char got[64];
	struct conn k;
	size_t n = 1;
	enum tls_io r;

	conn_open(*state, &k, 0, 0);
	client_write_all(&k, "one", 3);
	client_write_all(&k, "two", 3);
	close(k.cfd);
	k.cfd = -1;
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, "one", 3);
	assert_true(tls_sock_buffered(&k.t));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, "two", 3);
	r = tls_read(k.s, got, sizeof(got), &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_EOF);
	assert_int_equal(n, 0);
	conn_close(&k);
}

static void test_peer_vanishing_with_half_a_record_read_ahead_is_eof(void **state)
{
	unsigned char msg[2][100], wire[1024], got[256];
	struct conn k;
	ssize_t wire_len, first;
	size_t n = 1;
	enum tls_io r;

	conn_open(*state, &k, 0, 1);
	fill_pattern(msg[0], sizeof(msg[0]), 1);
	fill_pattern(msg[1], sizeof(msg[1]), 2);
	client_write_all(&k, msg[0], sizeof(msg[0]));
	first = read(k.relay_c, wire, sizeof(wire));
	client_write_all(&k, msg[1], sizeof(msg[1]));
	wire_len = read(k.relay_c, wire + first, sizeof(wire) - (size_t)first);
	assert_true(first > 0 && wire_len > 0);
	wire_len = first + wire_len / 2;
	assert_int_equal(write(k.relay_s, wire, (size_t)wire_len), wire_len);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, msg[0], sizeof(msg[0]));
	assert_true(tls_sock_buffered(&k.t));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_WANT_READ);
	assert_buffer_freed(&k.t);
	close(k.relay_s);
	k.relay_s = -1;
	r = tls_read(k.s, got, sizeof(got), &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_EOF);
	conn_close(&k);
}

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
	assert_int_equal(r, TLS_IO_ERROR);
	assert_int_equal(n, 0);
	/* MSG_NOSIGNAL: writing now fails instead of killing the process. */
	r = tls_write(k.s, "late", 4, &n);
	assert_not_want(r);
	assert_int_equal(r, TLS_IO_ERROR);
	conn_close(&k);
}

static void test_peer_that_vanishes_during_the_handshake_is_not_want(void **state)
{
	struct conn k;
	enum tls_io r;

	conn_start(*state, &k, 0, 0);
	assert_int_equal(SSL_get_error(k.c, SSL_do_handshake(k.c)), SSL_ERROR_WANT_READ);
	assert_int_equal(tls_handshake(k.s), TLS_IO_WANT_READ);
	close(k.cfd);
	k.cfd = -1;
	r = tls_handshake(k.s);
	assert_not_want(r);
	assert_true(r == TLS_IO_EOF || r == TLS_IO_ERROR);
	conn_close(&k);
}

/* Garbage read ahead behind a good record is still judged, not skipped. */
static void test_garbage_read_ahead_behind_a_record_is_an_error(void **state)
{
	static const char junk[] = "GET / HTTP/1.1\r\n\r\n";
	unsigned char got[64];
	char reason[256];
	struct conn k;
	size_t n = 1;

	conn_open(*state, &k, 0, 0);
	client_write_all(&k, "good", 4);
	send_all(k.cfd, junk, sizeof(junk) - 1);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_memory_equal(got, "good", 4);
	assert_true(tls_sock_buffered(&k.t));
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_ERROR);
	assert_true(tls_last_error(reason, sizeof(reason))[0] != '\0');
	conn_close(&k);
}

/* Freeing a connection whose BIO still holds records: ASan reports a leak if
 * tls_sock_cleanup misses the buffer. */
static void test_connection_freed_with_records_still_buffered_leaks_nothing(void **state)
{
	unsigned char got[16];
	struct conn k;
	size_t n = 0;

	conn_open(*state, &k, 0, 0);
	for (int i = 0; i < 5; i++)
		client_write_all(&k, "abcd", 4);
	assert_int_equal(tls_read(k.s, got, sizeof(got), &n), TLS_IO_OK);
	assert_true(tls_sock_buffered(&k.t));
	assert_non_null(k.t.buf);
	conn_close(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_reads_are_served_in_order_from_one_recv),
		cmocka_unit_test(test_buffered_bytes_come_before_newer_socket_bytes),
		cmocka_unit_test(test_read_of_the_readahead_size_goes_straight_to_the_caller),
		cmocka_unit_test(test_read_one_byte_short_of_the_readahead_size_is_read_ahead),
		cmocka_unit_test(test_idle_socket_is_retry_read_and_holds_no_buffer),
		cmocka_unit_test(test_peer_close_is_eof_after_the_buffered_bytes),
		cmocka_unit_test(test_peer_reset_is_an_error_without_retry),
		cmocka_unit_test(test_writes_go_straight_to_the_socket),
		cmocka_unit_test(test_write_on_a_full_socket_is_retry_write),
		cmocka_unit_test(test_write_to_a_closed_peer_fails_without_a_signal),
		cmocka_unit_test(test_cleanup_drops_a_non_empty_buffer),
		cmocka_unit_test(test_handshake_and_echo_over_the_sock_bio_tls13),
		cmocka_unit_test(test_handshake_and_echo_over_the_sock_bio_tls12),
		cmocka_unit_test(test_small_records_sent_together_share_one_recv_tls13),
		cmocka_unit_test(test_small_records_sent_together_share_one_recv_tls12),
		cmocka_unit_test(test_data_behind_the_client_finished_waits_in_the_buffer),
		cmocka_unit_test(test_record_split_byte_by_byte_is_reassembled_tls13),
		cmocka_unit_test(test_record_split_byte_by_byte_is_reassembled_tls12),
		cmocka_unit_test(test_records_in_odd_chunks_are_reassembled_tls13),
		cmocka_unit_test(test_records_in_odd_chunks_are_reassembled_tls12),
		cmocka_unit_test(test_full_size_records_arrive_intact_tls13),
		cmocka_unit_test(test_full_size_records_arrive_intact_tls12),
		cmocka_unit_test(test_mebibyte_stream_of_mixed_records_arrives_intact_tls13),
		cmocka_unit_test(test_mebibyte_stream_of_mixed_records_arrives_intact_tls12),
		cmocka_unit_test(test_write_blocked_on_a_full_socket_is_retried),
		cmocka_unit_test(test_close_notify_behind_buffered_records_is_closed_after_them),
		cmocka_unit_test(test_records_read_ahead_before_the_peer_vanished_come_before_eof),
		cmocka_unit_test(test_peer_vanishing_with_half_a_record_read_ahead_is_eof),
		cmocka_unit_test(test_peer_that_vanishes_with_data_unread_is_an_error),
		cmocka_unit_test(test_peer_that_vanishes_during_the_handshake_is_not_want),
		cmocka_unit_test(test_garbage_read_ahead_behind_a_record_is_an_error),
		cmocka_unit_test(test_connection_freed_with_records_still_buffered_leaks_nothing),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
