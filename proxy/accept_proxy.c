/*
 * The PROXY header stage (--accept-proxy): the balancer's header is read
 * without taking a byte of the TLS that follows. Bytes of an incomplete
 * header are moved into to_up (unused before TLS), so that the socket does
 * not stay readable with nothing to do; once the header is complete,
 * exactly its rest is read. The hub decides what the outcome means.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxyproto.h"
#include "proxy/session_int.h"

enum header_step proxy_header_read(struct session *s)
{
	uint8_t buf[PROXY_HEADER_MAX];
	struct proxy_addr a;
	size_t have = bufq_len(&s->to_up), len = 0;
	ssize_t n;
	struct iovec v[4];
	int k = bufq_peek(&s->to_up, 0, v, 4);

	for (int i = 0, off = 0; i < k; off += (int)v[i].iov_len, i++)
		memcpy(buf + off, v[i].iov_base, v[i].iov_len);
	n = recv(s->cfd, buf + have, sizeof(buf) - have, MSG_PEEK);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return HEADER_WAIT;
		return n == 0 ? HEADER_CLOSED : HEADER_ERROR;
	}
	switch (proxy_header_parse(buf, have + (size_t)n, &len, &a)) {
	case PROXY_INVALID:
		return HEADER_INVALID;
	case PROXY_NEED_MORE:
		if (recv(s->cfd, buf + have, (size_t)n, 0) != n ||
		    !bufq_add(&s->to_up, session_blocks(s), buf + have, (size_t)n))
			return HEADER_ERROR;
		return HEADER_WAIT;
	case PROXY_OK:
		break;
	}
	if (recv(s->cfd, buf + have, len - have, 0) != (ssize_t)(len - have))
		return HEADER_ERROR;
	bufq_clear(&s->to_up, session_blocks(s));
	if (!a.local)
		memcpy(&s->addr, &a.src, a.len);
	return HEADER_DONE;
}

