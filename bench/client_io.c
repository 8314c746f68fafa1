/*
 * Reads and writes of one benchmark client, over TLS or plain TCP, with
 * failures sorted into the error kinds of the report (client.c's helpers).
 */
#include "bench/client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "bench/client_msg.h"
#include "bench/mqtt_codec.h"
#include "bench/ws_client.h"

enum bench_error bench_client_errno_kind(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return BERR_TCP_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return BERR_RESET;
	case ETIMEDOUT:
		return BERR_TIMEOUT;
	default:
		return BERR_TCP_OTHER;
	}
}

/* Classifies a failed TLS call from its SSL_get_error code and the error
 * queue, which it then clears so the next connection starts clean. */
enum bench_error bench_client_tls_error(struct bench_client *c, int ssl_err)
{
	uint32_t e = ERR_peek_error();
	enum bench_error kind = BERR_TLS_OTHER;

	if (ssl_err == SSL_ERROR_SYSCALL)
		kind = e == 0 ? (errno == 0 ? BERR_CLOSED : bench_client_errno_kind(errno)) : BERR_TLS_OTHER;
	else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
		kind = BERR_TLS_VERIFY;     /* the verify result is only meaningful after verification */
	else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
		kind = BERR_TLS_ALERT;
	ERR_clear_error();
	return kind;
}

enum io_result bench_client_io_write(struct bench_client *c, const uint8_t *p, size_t n,
                               size_t *done, enum bench_error *err)
{
	if (c->ws != NULL && c->state != CLIENT_WS_UPGRADE)
		return bench_ws_write(c, p, n, done, err);
	return bench_client_raw_write(c, p, n, done, err);
}

enum io_result bench_client_io_read(struct bench_client *c, uint8_t *p, size_t n,
                              size_t *got, enum bench_error *err)
{
	if (c->ws != NULL && c->state != CLIENT_WS_UPGRADE)
		return bench_ws_read(c, p, n, got, err);
	return bench_client_raw_read(c, p, n, got, err);
}

enum io_result bench_client_raw_write(struct bench_client *c, const uint8_t *p, size_t n,
                                      size_t *done, enum bench_error *err)
{
	ssize_t r;
	int rc;

	if (c->ssl == NULL) {
		r = send(c->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0) {
			*done = (size_t)r;
			return IO_OK;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return IO_WANT_WRITE;
		*err = bench_client_errno_kind(errno);
		return IO_FAILED;
	}
	errno = 0;
	rc = SSL_write(c->ssl, p, (int)n);
	if (rc > 0) {
		*done = (size_t)rc;
		return IO_OK;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return IO_CLOSED;
	default:
		*err = bench_client_tls_error(c, SSL_get_error(c->ssl, rc));
		return *err == BERR_CLOSED ? IO_CLOSED : IO_FAILED;
	}
}

enum io_result bench_client_raw_read(struct bench_client *c, uint8_t *p, size_t n,
                                     size_t *got, enum bench_error *err)
{
	ssize_t r;
	int rc, ssl_err;

	if (c->ssl == NULL) {
		r = recv(c->fd, p, n, 0);
		if (r > 0) {
			*got = (size_t)r;
			return IO_OK;
		}
		if (r == 0)
			return IO_CLOSED;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return IO_WANT_READ;
		*err = bench_client_errno_kind(errno);
		return IO_FAILED;
	}
	errno = 0;
	rc = SSL_read(c->ssl, p, (int)n);
	if (rc > 0) {
		*got = (size_t)rc;
		return IO_OK;
	}
	ssl_err = SSL_get_error(c->ssl, rc);
	switch (ssl_err) {
	case SSL_ERROR_WANT_READ:
		return IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return IO_CLOSED;
	default:
		*err = bench_client_tls_error(c, ssl_err);
		return *err == BERR_CLOSED ? IO_CLOSED : IO_FAILED;
	}
}

/* Sends what reading queued (acknowledgements) and what a publisher may
 * send now. Returns 0 if the client closed. */
static int after_read(struct bench_client *c)
{
	if (c->pump_more)
		return bench_msg_pump(c);
	if (c->out_len > c->out_off)
		return bench_client_flush(c);
	return 1;
}

/* Decodes and handles every complete packet in the input buffer. Returns 0
 * if the client closed. */
static int handle_input(struct bench_client *c)
{
	struct mqttc_packet p;
	const char *why;
	size_t used = 0;

	for (;;) {
		enum mqttc_decode_result r = mqttc_decode(c->w->opt->mqtt_version, &c->in[used],
		                                          c->in_len - used, c->in_cap, &p, &why);
		if (r == MQTTC_DECODE_NEED_MORE)
			break;
		if (r == MQTTC_DECODE_MALFORMED) {
			bench_client_fail(c, BERR_PROTOCOL);
			return 0;
		}
		if (!bench_client_on_packet(c, &p))
			return 0;
		used += p.len;
	}
	if (used > 0) {
		memmove(c->in, &c->in[used], c->in_len - used);
		c->in_len -= (uint32_t)used;
	}
	return 1;
}

void bench_client_on_readable(struct bench_client *c)
{
	enum bench_error err = BERR_TCP_OTHER;
	size_t got;

	c->read_wants_write = 0;
	c->read_paused = 0;
	while (c->state == CLIENT_AWAIT_CONNACK || c->state == CLIENT_CONNECTED) {
		/* A full read may need an acknowledgement per packet: wait for
		 * room rather than drop one. */
		if (c->out_cap - c->out_len < c->in_cap / 4 + 16) {
			if (!bench_client_flush(c))
				return;
			if (c->out_cap - c->out_len < c->in_cap / 4 + 16) {
				c->read_paused = 1;
				bench_client_arm(c, 1, 1);
				return;
			}
		}
		switch (bench_client_io_read(c, &c->in[c->in_len], c->in_cap - c->in_len, &got, &err)) {
		case IO_OK:
			break;
		case IO_WANT_READ:
			after_read(c);
			return;
		case IO_WANT_WRITE:
			c->read_wants_write = 1;
			bench_client_arm(c, 1, 1);
			return;
		case IO_CLOSED:
			bench_client_fail(c, BERR_CLOSED);
			return;
		case IO_FAILED:
			bench_client_fail(c, err);
			return;
		}
		c->in_len += (uint32_t)got;
		if (!handle_input(c) || !after_read(c))
			return;
	}
}
