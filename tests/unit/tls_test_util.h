/*
 * Shared by the TLS unit tests (test_tls_io.c, test_tls_sock.c): a server
 * context for a freshly made self-signed certificate, non-blocking
 * socketpairs, and a relay that carries bytes between two of them so a test
 * can cut the stream wherever it likes. Include after <cmocka.h>.
 */
#ifndef TESTS_UNIT_TLS_TEST_UTIL_H
#define TESTS_UNIT_TLS_TEST_UTIL_H

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tls/context.h"

static inline int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/* Makes a self-signed P-256 certificate |name|.pem with key |name|.key in
 * |dir|, padded with a comment of |pad| bytes (0: none), and a server
 * context for it. Returns NULL (and says why on stderr) on failure. */
static inline SSL_CTX *make_server_ctx(const char *dir, const char *name, size_t pad)
{
	struct tls_server_opts o = { 0 };
	char cert[96], key[96], err[256], *cmd, *comment;
	size_t cap = 1024 + pad;
	SSL_CTX *ctx = NULL;

	cmd = malloc(cap);
	comment = malloc(pad + 1);
	if (cmd == NULL || comment == NULL)
		goto err;
	memset(comment, 'A', pad);
	comment[pad] = '\0';
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(cmd, cap,
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
	         "-out %s -subj /CN=localhost -days 30 %s%s >/dev/null 2>&1", key, cert,
	         pad ? "-addext nsComment=" : "", comment);
	if (system(cmd) != 0) {
		fprintf(stderr, "# openssl failed making %s\n", cert);
		goto err;
	}
	o.cert_file = cert;
	o.key_file = key;
	ctx = tls_server_ctx_new(&o, err, sizeof(err));
	if (ctx == NULL)
		fprintf(stderr, "# server context: %s\n", err);
err:
	free(cmd);
	free(comment);
	return ctx;
}

static inline void socket_pair(int *a, int *b)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_true(set_nonblocking(sv[0]) && set_nonblocking(sv[1]));
	*a = sv[0];
	*b = sv[1];
}

/* Moves whatever is readable from |from| to |to|; returns the byte count. */
static inline size_t relay_once(int from, int to)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = read(from, buf, sizeof(buf))) > 0) {
		assert_int_equal(write(to, buf, (size_t)n), n);
		total += (size_t)n;
	}
	return total;
}

/* Relays both ways until neither side has anything more; a no-op without
 * a relay (relay_s < 0). */
static inline void relay_pump(int relay_s, int relay_c)
{
	if (relay_s < 0)
		return;
	while (relay_once(relay_c, relay_s) + relay_once(relay_s, relay_c) > 0)
		;
}

static inline int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

#endif
