#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/sock.h"

/* A whole TLS record: 5-byte header, up to 16 KiB of plaintext and the AEAD
 * overhead. Reads asking for at least this much go straight to the caller. */
#define READAHEAD (5 + 16384 + 256)

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

/* Read-ahead buffers are held only between two reads of one SSL call, so a
 * thread needs very few at a time; keeping them per thread takes a malloc
 * and free of 16 KB off every record, which in a handshake storm scattered
 * holes between the long-lived allocations of connections. */
#define SPARE_MAX 4

struct spares {
	int n;
	uint8_t *buf[SPARE_MAX];
};

static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static void spares_free(void *p)
{
	struct spares *s = p;

	for (int i = 0; i < s->n; i++)
		free(s->buf[i]);
	free(s);
}

static void spares_init(void)
{
	(void)pthread_key_create(&spares_key, spares_free);
}

static struct spares *spares_get(void)
{
	struct spares *s;

	pthread_once(&spares_once, spares_init);
	s = pthread_getspecific(spares_key);
	if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL && pthread_setspecific(spares_key, s) != 0) {
		free(s);
		s = NULL;
	}
	return s;
}

static uint8_t *buf_take(void)
{
	struct spares *s = spares_get();

	if (s && s->n > 0)
		return s->buf[--s->n];
	return malloc(READAHEAD);
}

static void buf_give(uint8_t *b)
{
	struct spares *s;

	if (b == NULL)
		return;
	s = spares_get();
	if (s && s->n < SPARE_MAX)
		s->buf[s->n++] = b;
	else
		free(b);
}

static int would_block(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int sock_read(BIO *b, char *out, int outl)
{
	struct tls_sock *t = BIO_get_data(b);
	size_t want = outl > 0 ? (size_t)outl : 0;
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (want == 0)
		return 0;
	if (t->buf) {
		size_t have = (size_t)(t->len - t->off);

		if (want > have)
			want = have;
		memcpy(out, t->buf + t->off, want);
		t->off = (uint16_t)(t->off + want);
		if (t->off == t->len)
			tls_sock_cleanup(t);
		return (int)want;
	}
	if (want >= READAHEAD) {
		n = recv(t->fd, out, want, 0);
	} else {
		uint8_t *buf = buf_take();

		if (buf == NULL) {
			n = recv(t->fd, out, want, 0);
		} else {
			n = recv(t->fd, buf, READAHEAD, 0);
			if (n > 0) {
				size_t give = (size_t)n < want ? (size_t)n : want;

				memcpy(out, buf, give);
				if ((size_t)n > give) {
					t->buf = buf;
					t->off = (uint16_t)give;
					t->len = (uint16_t)n;
					buf = NULL;
				}
				n = (ssize_t)give;
			}
			buf_give(buf);
		}
	}
	if (n < 0 && would_block())
		BIO_set_retry_read(b);
	return (int)n;
}

static int sock_write(BIO *b, const char *in, int inl)
{
	struct tls_sock *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(t->fd, in, inl > 0 ? (size_t)inl : 0, MSG_NOSIGNAL);
	if (n < 0 && would_block())
		BIO_set_retry_write(b);
	return (int)n;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	/* Writes are not buffered, so a flush has nothing to do. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void method_init(void)
{
	method = BIO_meth_new(BIO_TYPE_SOCKET, "mqtls socket");
	if (method && (!BIO_meth_set_read(method, sock_read) || !BIO_meth_set_write(method, sock_write) ||
	               !BIO_meth_set_ctrl(method, sock_ctrl))) {
		BIO_meth_free(method);
		method = NULL;
	}
}

BIO *tls_sock_bio_new(struct tls_sock *t)
{
	BIO *b;

	pthread_once(&method_once, method_init);
	if (method == NULL || (b = BIO_new(method)) == NULL)
		return NULL;
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	return b;
}

int tls_sock_buffered(const struct tls_sock *t)
{
	return t->buf != NULL;
}

void tls_sock_cleanup(struct tls_sock *t)
{
	buf_give(t->buf);
	t->buf = NULL;
	t->off = t->len = 0;
}
