/*
 * The client socket as BoringSSL sees it: a BIO that writes straight to the
 * fd and reads ahead.
 *
 * BoringSSL reads a record in two calls, its 5-byte header and then its
 * body, so a plain socket BIO costs two recv(2) per record. This BIO answers
 * a short read with one recv of up to a full record and keeps the rest for
 * the calls that follow: one syscall for a record, or for several small
 * records (chatty MQTT traffic), at the price of copying that ciphertext once
 * from our buffer into BoringSSL's. A read as large as a record goes
 * straight into BoringSSL's buffer. The read-ahead buffer exists only while
 * it holds bytes, so an idle connection owns none.
 */
#ifndef TLS_SOCK_H
#define TLS_SOCK_H

#include <stdint.h>

#include <openssl/bio.h>

struct tls_sock {
	int fd;                 /* borrowed: the session owns and closes it */
	uint16_t off, len;      /* unread bytes are buf[off, len) */
	uint8_t *buf;           /* owned, NULL when empty */
};

/* A new BIO over |t| (borrowed; must outlive the BIO), which must be zeroed
 * apart from |fd|. Returns NULL on failure. Hand it to SSL_set_bio, which
 * takes ownership; freeing the SSL does not free |t|'s buffer, call
 * tls_sock_cleanup for that. SSL_get_fd does not see through this BIO. */
BIO *tls_sock_bio_new(struct tls_sock *t);

/* 1 if bytes were read from the socket that the SSL has not consumed yet:
 * the socket may be quiet while a record waits here. */
int tls_sock_buffered(const struct tls_sock *t);

void tls_sock_cleanup(struct tls_sock *t);

#endif
