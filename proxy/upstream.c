/*
 * The broker connection stage: open a non-blocking connection to
 * --upstream and learn when it is up. Nothing here decides what happens
 * next; the hub does.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"

void upstream_close(struct session *s)
{
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

/*
 * Whether a connecting broker socket is up, learnt by writing the CONNECT:
 * on loopback the TCP handshake has usually finished inside connect()
 * already, and the write then saves a loop turn and a getsockopt.
 */
enum up_step upstream_check(struct session *s, int *err)
{
	socklen_t elen = sizeof(*err);

	*err = 0;
	if (bufq_len(&s->to_up) > 0) {
		if (bufq_write(&s->to_up, session_blocks(s), s->ufd) > 0)
			return UP_CONNECTED;
		*err = errno;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return UP_PENDING;
	} else {
		if (getsockopt(s->ufd, SOL_SOCKET, SO_ERROR, err, &elen) != 0)
			*err = errno;
		if (*err == 0)
			return UP_CONNECTED;
		if (*err == EINPROGRESS)
			return UP_PENDING;
	}
	upstream_close(s);
	return UP_FAILED;
}

enum up_step upstream_open(struct session *s, int *err)
{
	int in_progress = 0;

	*err = 0;
	s->ufd = address_connect(&s->w->proxy->upstream, &in_progress);
	if (s->ufd < 0) {
		*err = errno;
		return UP_FAILED;
	}
	if (!in_progress)
		return UP_CONNECTED;
	return upstream_check(s, err);
}

void upstream_log_failure(const struct session *s, int err)
{
	char addr[160];
	const struct address *u = &s->w->proxy->upstream;

	if (!log_enabled(LOG_WARN))
		return;
	address_format((const struct sockaddr *)&u->sa, u->len, addr, sizeof(addr));
	log_msg(LOG_WARN, "broker %s unreachable: %s", addr, strerror(err));
}
