#include <errno.h>
#include <limits.h>

#include <openssl/err.h>

#include "tls/io.h"

/* SSL_get_error needs an empty error queue; clearing it costs a loop over
 * all slots, so only do it when something is there. */
static void clear_errors(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

static enum tls_io classify(SSL *ssl, int ret)
{
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_IO_CLOSED;
	case SSL_ERROR_SYSCALL:
		/* ret 0 with an empty error queue: the socket hit EOF. */
		if (ERR_peek_error() == 0 && (ret == 0 || errno == 0))
			return TLS_IO_EOF;
		return TLS_IO_ERROR;
	default:
		return TLS_IO_ERROR;
	}
}

enum tls_io tls_handshake(SSL *ssl)
{
	int r;

	clear_errors();
	r = SSL_do_handshake(ssl);
	return r == 1 ? TLS_IO_OK : classify(ssl, r);
}

enum tls_io tls_read(SSL *ssl, void *buf, size_t cap, size_t *n)
{
	int r;

	if (cap > INT_MAX)
		cap = INT_MAX;
	clear_errors();
	errno = 0;
	r = SSL_read(ssl, buf, (int)cap);
	if (r > 0) {
		*n = (size_t)r;
		return TLS_IO_OK;
	}
	*n = 0;
	return classify(ssl, r);
}

enum tls_io tls_write(SSL *ssl, const void *buf, size_t len, size_t *n)
{
	int r;

	if (len > INT_MAX)
		len = INT_MAX;
	clear_errors();
	errno = 0;
	r = SSL_write(ssl, buf, (int)len);
	if (r > 0) {
		*n = (size_t)r;
		return TLS_IO_OK;
	}
	*n = 0;
	return classify(ssl, r);
}

void tls_close_notify(SSL *ssl)
{
	/* A peer that stopped reading must not hold us here: one attempt only. */
	ERR_clear_error();
	(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

const char *tls_last_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (len == 0)
		return "";
	buf[0] = '\0';
	if (e != 0)
		ERR_error_string_n(e, buf, len);
	return buf;
}
