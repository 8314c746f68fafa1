/*
 * Non-blocking TLS on a socket: the SSL writes ciphertext straight to the
 * fd and reads it through tls/sock.c's read-ahead BIO (ciphertext is held
 * only while a record is incomplete or several arrived in one recv). These
 * wrappers turn SSL_get_error into the few outcomes the event loop acts on.
 */
#ifndef TLS_IO_H
#define TLS_IO_H

#include <stddef.h>
#include <openssl/ssl.h>

enum tls_io {
	TLS_IO_OK,
	TLS_IO_WANT_READ,    /* wait until the socket is readable, then retry */
	TLS_IO_WANT_WRITE,   /* wait until the socket is writable, then retry */
	TLS_IO_CLOSED,       /* the peer sent close_notify */
	TLS_IO_EOF,          /* the peer closed the socket without close_notify */
	TLS_IO_ERROR,        /* protocol or socket error: give up on this peer */
};

enum tls_io tls_handshake(SSL *ssl);
/* On TLS_IO_OK, *n > 0 bytes were decrypted into buf. */
enum tls_io tls_read(SSL *ssl, void *buf, size_t cap, size_t *n);
/* On TLS_IO_OK, *n > 0 bytes of buf were accepted (partial writes are on).
 * After WANT_*, retry with the same bytes (they may have moved). */
enum tls_io tls_write(SSL *ssl, const void *buf, size_t len, size_t *n);
/* Sends close_notify once, without waiting for the peer's. */
void tls_close_notify(SSL *ssl);
/* A short description of the last TLS error for logs ("" if none). */
const char *tls_last_error(char *buf, size_t len);

#endif
