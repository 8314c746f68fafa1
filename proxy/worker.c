#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/counts.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "proxy/worker.h"

#define ACCEPT_BATCH 64
#define SHUTDOWN_GRACE_S 5
/* Handshake callbacks run per pass over the loop's active events before it
 * looks again for live-session events: bounds what a storm of new clients
 * adds to the latency of connected ones (a full handshake is ~0.4 ms). */
#define HANDSHAKE_BUDGET 8
/* At the handshake cap, a new client takes the slot of the oldest handshake
 * that has not even completed its ClientHello after EVICT_SILENT_MS (a real
 * client sends it right after connecting). A handshake past its ClientHello
 * is never evicted: when those fill the slots, mqtls itself is the
 * bottleneck (a reconnect storm), and dropping work it has started only
 * makes the clients come back for more; accepting waits instead, and
 * --handshake-timeout ends any that stall. */
#define EVICT_SILENT_MS 100

static void set_accepting(struct worker *w, int on)
{
	if (w->accepting == on || (on && (w->stopping || w->draining)))
		return;
	for (int i = 0; i < w->n_listen; i++) {
		if (on)
			event_add(&w->ev_listen[i], NULL);
		else
			event_del(&w->ev_listen[i]);
	}
	w->accepting = on;
}

/* Milliseconds until the oldest handshake may be evicted, or 0 if it may
 * be now (or there is none). */
/* The handshake to drop for a new one (see EVICT_SILENT_MS), or NULL; then
 * *wait_ms says when one may be (0: none in sight). The list is ordered by
 * age, so the scan stops at the first silent one. */
static struct session *eviction_candidate(const struct worker *w, uint64_t *wait_ms)
{
	uint64_t now = session_now_ms(), wait = 0;
	struct session *s;

	for (s = w->handshaking.tail; s; s = session_list_prev(s)) {
		uint64_t age = now - session_started_ms(s);

		if (!session_in_hello(s))
			continue;
		if (age >= EVICT_SILENT_MS)
			return s;
		wait = EVICT_SILENT_MS - age;
		break;
	}
	*wait_ms = wait;
	return NULL;
}

/* Milliseconds until a handshake may be evicted, or 0 if one may be now
 * (or there is none). */
static uint64_t eviction_wait_ms(const struct worker *w)
{
	uint64_t wait = 0;

	return eviction_candidate(w, &wait) ? 0 : wait;
}

/*
 * Makes room for one more handshake. Each holds 8-10 KB, so their number is
 * capped; but a cap that only pauses accepting lets a few hundred sockets
 * that never finish their ClientHello lock everyone out. At the cap, the
 * oldest handshake makes room if it has had a second already: a real client
 * finishes in a few round trips, a staller is the one that is oldest.
 * Returns 1 if there is a slot.
 */
static int handshake_slot(struct worker *w)
{
	const struct config *c = w->proxy->cfg;

	struct session *victim;
	uint64_t wait;

	if (w->n_handshakes < c->max_handshakes)
		return 1;
	if ((victim = eviction_candidate(w, &wait)) == NULL)
		return 0;
	session_close_now(victim, "handshake_evicted");
	return w->n_handshakes < c->max_handshakes;
}

/* Above --max-connections, clients still get an answer (CONNACK "server
 * busy" after their CONNECT, session.c) while at most --max-handshakes more
 * are in flight; only beyond that does accepting pause. */
static long hard_cap(const struct worker *w)
{
	const struct config *c = w->proxy->cfg;

	return c->max_connections + c->max_handshakes;
}

/* Accepting pauses at the hard cap, or while every handshake slot is held
 * by one too young to evict. */
static int over_limits(const struct worker *w)
{
	const struct config *c = w->proxy->cfg;

	return w->n_sessions >= hard_cap(w) ||
	       (w->n_handshakes >= c->max_handshakes && eviction_wait_ms(w) > 0);
}

/* Stops accepting; when only young handshakes hold the slots, comes back
 * (on_resume) as soon as the oldest of them may be evicted. */
static void pause_accepting(struct worker *w)
{
	uint64_t ms = eviction_wait_ms(w);

	set_accepting(w, 0);
	if (w->n_sessions < hard_cap(w) && ms > 0) {
		struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

		event_add(&w->ev_resume, &tv);
	}
}

/* One line a second at most, however many connections are refused: an
 * attacker must not be able to fill the log. */
static void log_refused_at_accept(struct worker *w, const struct sockaddr *sa)
{
	uint64_t now = session_now_ms();
	char peer[80];

	if (now - w->refused_log_ms < 1000 && w->refused_log_ms != 0) {
		w->refused_quiet++;
		return;
	}
	address_format(sa, sizeof(struct sockaddr_storage), peer, sizeof(peer));
	log_warn("refuse peer=%s reason=handshakes_per_ip limit=%ld (and %ld more refusals in the last second)",
	         peer, w->proxy->cfg->max_handshakes_per_ip, w->refused_quiet);
	w->refused_log_ms = now;
	w->refused_quiet = 0;
}

int worker_take_handshake_ip(struct worker *w, const struct sockaddr *sa)
{
	/* One address may not hold many handshake slots at once. */
	uint64_t key = counts_key_addr(w->counts, COUNT_HANDSHAKE_IP, sa);

	if (counts_take(w->counts, key, (uint32_t)w->proxy->cfg->max_handshakes_per_ip))
		return 1;
	counter_add(&w->metrics.accept_refused[REFUSED_HANDSHAKES_PER_IP], 1);
	log_refused_at_accept(w, sa);
	return 0;
}

static struct session *adopt(struct worker *w, unsigned listener, int fd, const struct sockaddr *sa,
                             socklen_t len)
{
	struct session *s;
	/* Behind a load balancer (--accept-proxy) every socket comes from the
	 * balancer: the session counts the client's address once its PROXY
	 * header has told it (worker_take_handshake_ip). */
	int proxied = w->proxy->cfg->accept_proxy != 0;

	if (!proxied && !worker_take_handshake_ip(w, sa)) {
		close(fd);
		return NULL;
	}
	s = session_new(w, listener, fd, sa, len);
	if (s == NULL) {
		if (!proxied)
			counts_give(w->counts, counts_key_addr(w->counts, COUNT_HANDSHAKE_IP, sa));
		log_warn("cannot create a session: out of memory");
		return NULL;
	}
	session_list_push(&w->handshaking, s);
	w->n_sessions++;
	w->n_handshakes++;
	return s;
}

struct session *worker_adopt(struct worker *w, int fd, const struct sockaddr *sa, socklen_t len)
{
	return adopt(w, 0, fd, sa, len);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct worker *w = arg;
	unsigned listener = 0;

	while (listener + 1 < (unsigned)w->n_listen && w->lfd[listener] != lfd)
		listener++;
	for (int i = 0; i < ACCEPT_BATCH && w->n_sessions < hard_cap(w) && handshake_slot(w); i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
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
		(void)adopt(w, listener, fd, (struct sockaddr *)&ss, len);
	}
	if (over_limits(w))
		pause_accepting(w);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (!over_limits(w))
		set_accepting(w, 1);
	else
		pause_accepting(w);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	struct session *s;

	while ((s = w->dead.head) != NULL) {
		session_list_unlink(&w->dead, s);
		session_free(s);
	}
	if (w->stopping && w->sessions.head == NULL && w->handshaking.head == NULL)
		event_base_loopbreak(w->base);
}

void worker_session_finished(struct worker *w, struct session *s)
{
	/* worker_handshake_done ran first (session_finish), so |s| is past
	 * the handshake list. */
	session_list_unlink(&w->sessions, s);
	session_list_push(&w->dead, s);
	w->n_sessions--;
	event_active(&w->ev_reap, EV_READ, 0);
	if (!w->accepting && !w->stopping && !over_limits(w))
		set_accepting(w, 1);
}

void worker_handshake_done(struct worker *w, struct session *s, int ip_counted)
{
	session_list_unlink(&w->handshaking, s);
	session_list_push(&w->sessions, s);
	w->n_handshakes--;
	if (ip_counted)
		counts_give(w->counts, counts_key_addr(w->counts, COUNT_HANDSHAKE_IP, session_peer(s)));
	if (!w->accepting && !w->stopping && !over_limits(w))
		set_accepting(w, 1);
}

static void close_listeners(struct worker *w)
{
	set_accepting(w, 0);
	for (int i = 0; i < w->n_listen; i++) {
		if (w->lfd[i] >= 0)
			close(w->lfd[i]);
		w->lfd[i] = -1;
	}
}

/* The first phase of a drain: no new clients; live ones go on. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	w->draining = 1;
	close_listeners(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	gauge_set(&w->metrics.heartbeat_ms, session_now_ms());
}

void worker_request_drain(struct worker *w)
{
	event_active(&w->ev_drain, EV_READ, 0);
}

uint64_t worker_connections(const struct worker *w)
{
	uint64_t n = 0;

	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += counter_get(&w->metrics.connections_active[i]);
	return n;
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

	w->stopping = 1;
	close_listeners(w);
	/* Each session flushes what it holds and sends close_notify; MQTT 5
	 * clients first get DISCONNECT 0x8B "server shutting down". */
	for (s = w->handshaking.head; s; s = next) {
		next = session_list_next(s);
		session_shutdown(s);    /* moves it off this list */
	}
	for (s = w->sessions.head; s; s = next) {
		next = session_list_next(s);
		session_shutdown(s);
	}
	if (w->sessions.head == NULL)
		event_base_loopbreak(w->base);
	else
		event_add(&w->ev_deadline, &grace);
}

static int open_listener(const struct address *a, const char *flag, char *err, size_t errlen)
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
		snprintf(err, errlen, "--%s %s: %s", flag, addr, strerror(errno));
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
			/* Established sessions come first: after this many callbacks
			 * of new-client priority, the loop polls again and serves
			 * live sessions before going on with handshakes. */
			event_config_set_max_dispatch_interval(ec, NULL, HANDSHAKE_BUDGET, PRI_NEW);
			w->base = event_base_new_with_config(ec);
			event_config_free(ec);
		}
	}
	if (w->base == NULL || event_base_priority_init(w->base, PRI_COUNT) != 0) {
		snprintf(err, errlen, "cannot create an event loop");
		return 0;
	}
	for (int i = 0; i < config_n_listeners(p->cfg); i++) {
		w->lfd[i] = open_listener(&bound[i], config_listener_is_ws(p->cfg, i) ? "ws-listen" : "listen",
		                          err, errlen);
		if (w->lfd[i] < 0)
			return 0;
		w->n_listen++;
		/* Port 0 becomes a real port once; the other workers join it. */
		if (id == 0) {
			bound[i].len = sizeof(bound[i].sa);
			getsockname(w->lfd[i], (struct sockaddr *)&bound[i].sa, &bound[i].len);
		}
		event_assign(&w->ev_listen[i], w->base, w->lfd[i], EV_READ | EV_PERSIST, on_accept, w);
		event_priority_set(&w->ev_listen[i], PRI_NEW);
	}
	/* 1 MB of free blocks at most: what a few busy sessions cycle through. */
	blk_cache_init(&w->blocks, 32);
	session_slots_init(&w->session_slots);
	/* Every in-flight thing a table entry: handshakes and two per auth job. */
	w->counts = counts_new((size_t)(p->cfg->max_handshakes + 2 * p->cfg->max_auth_queue + 16));
	if (w->counts == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
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
	event_assign(&w->ev_drain, w->base, -1, 0, on_drain, w);
	event_assign(&w->ev_tick, w->base, -1, EV_PERSIST, on_tick, w);
	event_priority_set(&w->ev_drain, PRI_LIVE);
	event_priority_set(&w->ev_tick, PRI_LIVE);
	gauge_set(&w->metrics.heartbeat_ms, session_now_ms());
	{
		static const struct timeval second = { 1, 0 };

		event_add(&w->ev_tick, &second);
	}
	event_priority_set(&w->ev_reap, PRI_LIVE);
	event_priority_set(&w->ev_stop, PRI_LIVE);
	event_priority_set(&w->ev_resume, PRI_LIVE);
	event_priority_set(&w->ev_deadline, PRI_LIVE);
	event_priority_set(&w->home.ev, PRI_LIVE);
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
	while ((s = w->handshaking.head ? w->handshaking.head : w->sessions.head) != NULL) {
		session_abort(s);
		if (w->sessions.head == s || w->handshaking.head == s) {
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
	counts_free(w->counts);
	w->counts = NULL;
	blk_cache_cleanup(&w->blocks);
	slab_cache_cleanup(&w->session_slots);
}
