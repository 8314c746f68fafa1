/*
 * The broker connection stage: open a non-blocking connection to the next
 * broker the set offers (proxy/brokers.h) and learn when it is up, telling
 * the set how it went. Nothing here decides what happens next, failover
 * included; the hub does.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/brokers.h"
#include "proxy/log.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"

void upstream_close(struct session *s)
{
	/* --upstream-tls: close_notify while the socket is still there. */
	upstream_tls_close(s);
	/* The events leave the loop before the fd number can be reused. */
	if (s->flags & F_UP_EVENTS) {
		event_del(&s->ev_up);
		s->armed &= (uint8_t)~ARM_UP;
		s->flags &= ~F_UP_EVENTS;
	}
	if (s->ufd >= 0)
		close(s->ufd);
	s->ufd = -1;
}

static enum up_step connected(struct session *s)
{
	if (s->w->proxy->brokers)
		brokers_connected(s->w->proxy->brokers, s->broker);
	return UP_CONNECTED;
}

/* Errors of this host, not of the broker: out of descriptors, memory or
 * local ports. They must not mark a healthy broker down. */
static int local_error(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM || err == EADDRNOTAVAIL;
}

static enum up_step failed(struct session *s, int err)
{
	if (s->w->proxy->brokers && !local_error(err))
		brokers_failed(s->w->proxy->brokers, s->broker);
	return UP_FAILED;
}

/*
 * Whether a connecting broker socket is up, learnt by writing the CONNECT:
 * on loopback the TCP handshake has usually finished inside connect()
 * already, and the write then saves a loop turn and a getsockopt.
 */
enum up_step upstream_check(struct session *s, int *err)
{
	socklen_t elen = sizeof(*err);

	*err = 0;
	/* --upstream-tls: nothing of to_up goes out before the handshake. */
	if (s->w->proxy->cfg->upstream_tls) {
		enum up_step r = upstream_tls_check(s, err);

		return r == UP_CONNECTED ? connected(s) : r == UP_FAILED ? failed(s, *err) : r;
	}
	if (bufq_len(&s->to_up) > 0) {
		if (bufq_write(&s->to_up, session_blocks(s), s->ufd) > 0)
			return connected(s);
		*err = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return UP_PENDING;
	} else {
		if (getsockopt(s->ufd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
			*err = errno;
		if (*err == 0)
			return connected(s);
		if (*err == EINPROGRESS)
			return UP_PENDING;
	}
	upstream_close(s);
	return failed(s, *err);
}

/*
 * What clientid-hash keys a client by: its client id (as logged: escaped,
 * so the same id always gives the same bytes), or, for an empty one (the
 * broker assigns it; nothing to keep together), its address, which still
 * spreads such clients over the brokers.
 */
static const void *balance_key(const struct session *s, size_t *len)
{
	if (s->client_id && s->client_id[0]) {
		*len = strlen(s->client_id);
		return s->client_id;
	}
	*len = s->addr.sa.sa_family == AF_INET6 ? sizeof(s->addr.in6.sin6_addr) : sizeof(s->addr.in.sin_addr);
	return s->addr.sa.sa_family == AF_INET6 ? (const void *)&s->addr.in6.sin6_addr
	                                         : (const void *)&s->addr.in.sin_addr;
}

/* The next broker's address; without a set (the unit fixtures), the one
 * proxy->upstream, once. Returns 0 when none is left. */
static int next_broker(struct session *s, struct address *a)
{
	struct brokers *b = s->w->proxy->brokers;
	size_t keylen = 0;
	const void *key;
	int i;

	if (b == NULL) {
		if (s->brokers_tried)
			return 0;
		s->brokers_tried = 1;
		*a = s->w->proxy->upstream;
		return 1;
	}
	key = balance_key(s, &keylen);
	i = brokers_next(b, key, keylen, s->brokers_tried, a);
	if (i < 0)
		return 0;
	s->broker = (uint8_t)i;
	s->brokers_tried |= (uint8_t)(1u << i);
	return 1;
}

enum up_step upstream_open(struct session *s, int *err)
{
	struct address a;
	int in_progress = 0;

	*err = 0;
	if (!next_broker(s, &a))
		return UP_EXHAUSTED;
	s->ufd = address_connect(&a, &in_progress);
	if (s->ufd < 0) {
		*err = errno;
		return failed(s, *err);
	}
	if (!in_progress && !s->w->proxy->cfg->upstream_tls)
		return connected(s);
	return upstream_check(s, err);
}

void upstream_abandon(struct session *s)
{
	upstream_close(s);
	(void)failed(s, ETIMEDOUT);
}

int upstream_tried_all(const struct session *s)
{
	const struct brokers *b = s->w->proxy->brokers;
	unsigned all = b ? (1u << brokers_count(b)) - 1 : 1u;

	return (s->brokers_tried & all) == all;
}

void upstream_log_failure(const struct session *s, int err)
{
	char addr[160];
	struct address u = s->w->proxy->upstream;
	struct brokers *b = s->w->proxy->brokers;

	if (!log_enabled(LOG_WARN))
		return;
	if (b)
		brokers_address(b, s->broker, &u);
	address_format((const struct sockaddr *)&u.sa, u.len, addr, sizeof(addr));
	/* The event word stays "broker" (rate-limited with its call site). */
	log_msg(LOG_WARN, "broker broker=%s addr=%s error=\"%s\"", b ? brokers_spec(b, s->broker) : addr, addr,
	        strerror(err));
}
