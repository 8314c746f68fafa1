#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/worker.h"

#define ACCEPT_BATCH 64
#define SHUTDOWN_GRACE_S 5

static void set_accepting(struct worker *w, int on)
{
	if (w->accepting == on || (on && w->stopping))
		return;
	for (int i = 0; i < w->n_listen; i++) {
		if (on)
			event_add(&w->ev_listen[i], NULL);
		else
			event_del(&w->ev_listen[i]);
	}
	w->accepting = on;
}

/* Accepting pauses while too many handshakes are in flight (each holds
 * 8-10 KB) or the connection cap is reached; it resumes as they finish. */
static int over_limits(const struct worker *w)
{
	const struct config *c = w->proxy->cfg;

	return w->n_handshakes >= c->max_handshakes || w->n_sessions >= c->max_connections;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < ACCEPT_BATCH && !over_limits(w); i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct session *s;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Out of descriptors: stop accepting for a moment rather
				 * than spin on a listen socket that stays readable. */
				static const struct timeval pause = { 0, 200000 };

				log_warn("accept: %s; pausing accepts for 200 ms", strerror(errno));
				set_accepting(w, 0);
				event_add(&w->ev_resume, &pause);
			}
			break;
		}
		s = session_new(w, fd, (struct sockaddr *)&ss, len);
		if (s == NULL) {
			log_warn("cannot create a session: out of memory");
			continue;
		}
		s->next = w->sessions;
		if (w->sessions)
			w->sessions->prev = s;
		w->sessions = s;
		w->n_sessions++;
		w->n_handshakes++;
	}
	if (over_limits(w))
		set_accepting(w, 0);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (!over_limits(w))
		set_accepting(w, 1);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	while (w->dead) {
		struct session *s = w->dead;

		w->dead = s->next;
		session_free(s);
	}
	if (w->stopping && w->sessions == NULL)
		event_base_loopbreak(w->base);
}

void worker_session_finished(struct worker *w, struct session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = NULL;
	s->next = w->dead;
	w->dead = s;
	w->n_sessions--;
	event_active(&w->ev_reap, EV_READ, 0);
	if (!w->accepting && !w->stopping && !over_limits(w))
		set_accepting(w, 1);
}

void worker_handshake_done(struct worker *w)
{
	w->n_handshakes--;
	if (!w->accepting && !w->stopping && !over_limits(w))
		set_accepting(w, 1);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	log_warn("worker %d: %ld connections still open after %d s; stopping anyway", w->id,
	         w->n_sessions, SHUTDOWN_GRACE_S);
	event_base_loopbreak(w->base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval grace = { SHUTDOWN_GRACE_S, 0 };
	struct worker *w = arg;
	struct session *s, *next;

	set_accepting(w, 0);
	w->stopping = 1;
	for (int i = 0; i < w->n_listen; i++) {
		close(w->lfd[i]);
		w->lfd[i] = -1;
	}
	/* Each session flushes what it holds and sends close_notify; MQTT 5
	 * clients first get DISCONNECT 0x8B "server shutting down". */
	for (s = w->sessions; s; s = next) {
		next = s->next;
		if (s->state == S_FORWARDING) {
			session_end_v5(s, 0x8B, "shutdown");
			session_settle_external(s);
		} else {
			session_close_now(s, "shutdown");
		}
	}
	if (w->sessions == NULL)
		event_base_loopbreak(w->base);
	else
		event_add(&w->ev_deadline, &grace);
}

static int open_listener(const struct address *a, char *err, size_t errlen)
{
	int one = 1, fd;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	/* Accepted sockets inherit TCP_NODELAY on Linux: one setsockopt here
	 * instead of one per connection. MQTT packets are small and latency
	 * matters more than segment count. */
	if (a->sa.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* "[::]:8883" and "0.0.0.0:8883" are separate listeners. */
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0 || listen(fd, 4096) != 0)
		goto fail;
	return fd;
fail:
	{
		char addr[80];

		address_format((const struct sockaddr *)&a->sa, a->len, addr, sizeof(addr));
		snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

int worker_init(struct worker *w, int id, struct proxy *p, struct address *bound,
                char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->proxy = p;
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		w->lfd[i] = -1;
	{
		/* The changelist folds the del+add of a re-armed event into one
		 * epoll_ctl at dispatch time (session_rearm re-assigns events). */
		struct event_config *ec = event_config_new();

		if (ec) {
			event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
			w->base = event_base_new_with_config(ec);
			event_config_free(ec);
		}
	}
	if (w->base == NULL) {
		snprintf(err, errlen, "cannot create an event loop");
		return 0;
	}
	for (int i = 0; i < p->cfg->n_listen; i++) {
		w->lfd[i] = open_listener(&bound[i], err, errlen);
		if (w->lfd[i] < 0)
			return 0;
		w->n_listen++;
		/* Port 0 becomes a real port once; the other workers join it. */
		if (id == 0) {
			bound[i].len = sizeof(bound[i].sa);
			getsockname(w->lfd[i], (struct sockaddr *)&bound[i].sa, &bound[i].len);
		}
		event_assign(&w->ev_listen[i], w->base, w->lfd[i], EV_READ | EV_PERSIST, on_accept, w);
	}
	if (!pool_home_init(&w->home, w->base)) {
		snprintf(err, errlen, "cannot set up the auth completion queue");
		return 0;
	}
	w->home_ok = 1;
	event_assign(&w->ev_reap, w->base, -1, 0, on_reap, w);
	event_assign(&w->ev_stop, w->base, -1, 0, on_stop, w);
	evtimer_assign(&w->ev_resume, w->base, on_resume, w);
	evtimer_assign(&w->ev_deadline, w->base, on_deadline, w);
	set_accepting(w, 1);
	return 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0;
}

void worker_request_stop(struct worker *w)
{
	/* event_active is safe across threads once evthread_use_pthreads ran. */
	event_active(&w->ev_stop, EV_READ, 0);
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_cleanup(struct worker *w)
{
	struct session *s;

	if (w->base == NULL)
		return;
	/* After a forced stop, release whatever is left without flushing. */
	while ((s = w->sessions) != NULL) {
		s->flags |= F_CLIENT_DEAD | F_UP_DEAD;
		session_close_now(s, "shutdown");
		if (w->sessions == s) {
			/* session_close_now always finishes a session with nothing
			 * to flush; this cannot loop. */
			break;
		}
	}
	if (w->home_ok)
		pool_home_cleanup(&w->home);   /* jobs of closed sessions are freed */
	on_reap(-1, 0, w);
	for (int i = 0; i < w->n_listen; i++) {
		if (w->lfd[i] >= 0)
			close(w->lfd[i]);
	}
	event_base_free(w->base);
	w->base = NULL;
}
