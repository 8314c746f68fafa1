/*
 * The harness of test_session.c: one real worker (worker_init with no
 * listener), sessions handed to it with worker_adopt() over socketpairs, a
 * real BoringSSL client on the other end of each pair, and a broker the
 * test scripts on a unix socket (or a TCP listener whose backlog is full,
 * for a broker that never answers). Everything runs on the test's thread:
 * pump() alternates one non-blocking pass of the worker's loop with the
 * peers' socket I/O until nothing moves any more.
 *
 * Four system calls are interposed (this program's definitions take the
 * place of libc's, for libevent too):
 *   clock_gettime  the monotonic clocks stand still but for advance(), so
 *                  every timer of the session (hello, handshake, connect,
 *                  failure delay, broker, token, grace, linger) fires when
 *                  a test says so, and never because the machine was slow;
 *   recv           counted per client socket: a session that reads the
 *                  same socket thousands of times in one loop pass is
 *                  spinning, and the pass is broken off so the test can
 *                  fail instead of hanging;
 *   readv          counted: the proxy's reads of the broker socket;
 *   epoll_wait     the ready events it returns are counted: a loop that
 *                  keeps reporting a ready socket nobody serves never goes
 *                  quiet, and pump() fails.
 *
 * The proxy's log (stderr) is captured per test while the loop runs, so a
 * test can assert the exact close line ("state=X reason=Y"). Set
 * MQTLS_TEST_LOG=1 to see it, MQTLS_TEST_TIMING=1 to print each test's
 * real time. Include after <cmocka.h>.
 */
#ifndef TESTS_UNIT_SESSION_TEST_UTIL_H
#define TESTS_UNIT_SESSION_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/address.h"
#include "proxy/auth/faildelay.h"
#include "proxy/auth/policy.h"
#include "proxy/auth/pwhash.h"
#include "proxy/config.h"
#include "proxy/counts.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/session_int.h"
#include "proxy/worker.h"
#include "tests/unit/mqtt_bytes.h"
#include "tests/unit/tls_test_util.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

/* ---- interposed system calls ------------------------------------------- */

#define SPY_MAX_FD 4096
/* recv calls on one client socket within one loop pass that mean a spin. */
#define SPIN_RECVS 2000

static struct {
	int64_t offset_ns;                 /* how far advance() moved the monotonic clocks */
	long recvs[SPY_MAX_FD];            /* per descriptor, since it was watched */
	long pass_recvs;                   /* on watched descriptors, this pass */
	unsigned char watched[SPY_MAX_FD];
	long readvs;
	long epoll_ready;                  /* events epoll_wait returned, in all */
	struct event_base *base;           /* broken off when a pass spins */
	int spun;
} spy;

/* The monotonic clocks stand still at their value of the first call plus
 * the offset: real time, however slow the machine, never moves them. */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int64_t base_ns = -1;
	int64_t ns;

	if (id != CLOCK_MONOTONIC && id != CLOCK_MONOTONIC_COARSE && id != CLOCK_MONOTONIC_RAW &&
	    id != CLOCK_BOOTTIME)
		return (int)syscall(SYS_clock_gettime, id, ts);
	if (base_ns < 0) {
		struct timespec now;

		if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now) != 0)
			return -1;
		base_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	}
	ns = base_ns + spy.offset_ns;
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = (ssize_t)syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	int saved = errno;

	if (fd >= 0 && fd < SPY_MAX_FD && spy.watched[fd]) {
		spy.recvs[fd]++;
		if (++spy.pass_recvs > SPIN_RECVS && !spy.spun) {
			spy.spun = 1;
			if (spy.base)
				event_base_loopbreak(spy.base);
		}
	}
	errno = saved;
	return n;
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t n = (ssize_t)syscall(SYS_readv, fd, iov, iovcnt);
	int saved = errno;

	spy.readvs++;
	errno = saved;
	return n;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	int n = (int)syscall(SYS_epoll_wait, epfd, events, maxevents, timeout);

	if (n > 0)
		spy.epoll_ready += n;
	return n;
}

/* ---- bytes ----------------------------------------------------------------- */

/* A growable byte string; as a queue, [off, len) is not consumed yet. */
struct bytes {
	uint8_t *p;
	size_t off, len, cap;
};

static void bytes_add(struct bytes *b, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static size_t bytes_left(const struct bytes *b)
{
	return b->len - b->off;
}

static void bytes_take(struct bytes *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Deterministic filler for payloads. */
static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7) ^ (i >> 9));
}

/* ---- MQTT packets, spelled out here ------------------------------------------ */

/* A CONNECT of protocol |level| (4: 3.1.1, 5: 5.0): clean start, keep alive
 * 60, client id |id|, and a user name and password when not NULL. */
static void mk_connect(struct pkt *out, unsigned level, const char *id, const char *user,
                       const char *pass)
{
	struct pkt body = { .n = 0 };
	unsigned flags = 0x02 | (user ? 0x80 : 0) | (pass ? 0x40 : 0);

	p_connect_header(&body, "MQTT", level, flags, 60);
	if (level == 5)
		p_u8(&body, 0);    /* no properties */
	p_str(&body, id);
	if (user)
		p_str(&body, user);
	if (pass)
		p_str(&body, pass);
	p_frame(out, 0x10, &body);
}

/* A QoS 0 PUBLISH of |n| pattern bytes (seed |seed|) to |topic|, appended to |out|. */
static void mk_publish(struct bytes *out, const char *topic, size_t n, unsigned seed)
{
	size_t tlen = strlen(topic), rem = 2 + tlen + n;
	uint8_t hdr[8];
	size_t h = 0;
	uint8_t *payload = malloc(n ? n : 1);

	assert_non_null(payload);
	hdr[h++] = 0x30;
	do {
		uint8_t b = (uint8_t)(rem % 128);

		rem /= 128;
		hdr[h++] = (uint8_t)(b | (rem ? 0x80 : 0));
	} while (rem);
	hdr[h++] = (uint8_t)(tlen >> 8);
	hdr[h++] = (uint8_t)tlen;
	bytes_add(out, hdr, h);
	bytes_add(out, topic, tlen);
	fill_pattern(payload, n, seed);
	bytes_add(out, payload, n);
	free(payload);
}

static const uint8_t CONNACK_OK_311[] = { 0x20, 0x02, 0x00, 0x00 };
static const uint8_t CONNACK_OK_5[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };

/* ---- the fixture ------------------------------------------------------------------ */

/* Set up once per run. */
struct env {
	char dir[64];
	char cert[96], key[96], users[96], jwt_key[96];
	SSL_CTX *server_ctx;    /* the daemon's context for the test certificate */
	SSL_CTX *client_ctx;
};

enum fx_auth {
	FX_AUTH_OFF,            /* pure TLS termination */
	FX_AUTH_PASSWORD,       /* --users: carol (cheap $6$) and dave (slow $7$), password "secret" */
	FX_AUTH_JWT,            /* --jwt-keys with an HMAC secret, --jwt-leeway 0 */
};

enum fx_upstream {
	FX_UP_BROKER,           /* the scripted broker on a unix socket */
	FX_UP_NOWHERE,          /* a unix path nobody listens on */
	FX_UP_BLACKHOLE,        /* a TCP listener whose backlog is full: connect never completes */
};

struct fx_opts {
	enum fx_auth auth;
	enum fx_upstream up;
	int pool_threads;       /* 0: no pool, every check inline */
	long fail_delay_ms;     /* --auth-fail-delay */
	long max_auth_queue;    /* 0: the default */
	size_t max_buffer;      /* 0: 16384 */
	size_t max_connect_size;   /* 0: 4096 */
	long hello_ms, handshake_ms, connect_ms, upstream_ms, linger_ms;   /* 0: defaults */
};

struct client {
	int fd;                 /* the test's end, -1 once closed */
	int pfd;                /* the proxy's end: owned by the session, number kept for the spy */
	uint16_t port;          /* of 192.0.2.1, the address the session is told */
	struct session *s;      /* borrowed; look only while session_alive() */
	SSL *ssl;
	BIO *rbio, *wbio;       /* owned by ssl */
	struct bytes out;       /* bytes for the socket (ciphertext or raw) */
	struct bytes got;       /* plaintext from the proxy */
	int paused;             /* the test does not read the socket */
	int hs_done;
	int notify;             /* close_notify received */
	int eof;                /* the socket reached EOF (or was reset) */
	int reset;              /* ECONNRESET */
	int tls_error;
};

struct broker {
	int lfd;                /* listener, -1 if none */
	int fd;                 /* the accepted connection, -1 if none */
	int hole, filler;       /* FX_UP_BLACKHOLE: its listener and the connection holding the backlog */
	char path[108];
	int accepted;           /* connections taken */
	int paused;
	int eof, reset;
	int sndbuf;             /* SO_SNDBUF for the accepted socket, 0: default */
	struct bytes out, got;
};

/* A pool job that holds the pool's only thread until released: the
 * session's own check then waits behind it, as under a login storm. */
struct blocker {
	struct pool_job base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int released;
	int home;               /* its done callback ran (on the loop) */
};

#define MAX_CLIENTS 4

struct fx {
	struct env *env;
	struct fx_opts o;
	struct config cfg;      /* from config_load */
	struct config run;      /* the copy the proxy sees: no listeners */
	struct proxy p;
	struct worker w;
	int started;
	struct client c[MAX_CLIENTS];
	int n_clients;
	struct broker b;
	struct blocker blk;
	int blk_used;
	int log_fd;             /* memfd holding the proxy's log */
	int fd_mark;            /* lowest free descriptor before the test */
	struct timespec t0;
};

static struct fx *current_fx;   /* for the death callback */
static int real_stderr = -1;    /* stderr while the log is captured */

static void log_dump(struct fx *f, int to)
{
	char buf[4096];
	off_t at = 0;
	ssize_t n;

	if (f == NULL || f->log_fd < 0)
		return;
	while ((n = pread(f->log_fd, buf, sizeof(buf), at)) > 0) {
		if (write(to, buf, (size_t)n) < 0)
			break;
		at += n;
	}
}

/* A sanitizer report or an abort() while the log is captured: show it. */
static void on_death(void)
{
	if (current_fx && real_stderr >= 0) {
		static const char hdr[] = "# --- proxy log of the dying test ---\n";

		if (write(real_stderr, hdr, sizeof(hdr) - 1) < 0)
			return;
		log_dump(current_fx, real_stderr);
	}
}

static void on_abort(int sig)
{
	on_death();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void capture_on(struct fx *f)
{
	dup2(f->log_fd, STDERR_FILENO);
}

static void capture_off(struct fx *f)
{
	dup2(real_stderr, STDERR_FILENO);
}

/* The whole captured log, NUL-terminated; the caller frees it. */
static char *log_text(struct fx *f)
{
	off_t size = lseek(f->log_fd, 0, SEEK_END);
	char *t = malloc((size_t)size + 1);

	assert_non_null(t);
	assert_int_equal(pread(f->log_fd, t, (size_t)size, 0), size);
	t[size] = '\0';
	return t;
}

static int log_has(struct fx *f, const char *needle)
{
	char *t = log_text(f);
	int found = strstr(t, needle) != NULL;

	free(t);
	return found;
}

/* Asserts the one line the session of |c| logged when it ended. */
static void assert_close_line(struct fx *f, const struct client *c, const char *state, const char *reason)
{
	char head[64], tail[96];
	char *t = log_text(f), *line, *save = NULL;
	int found = 0, n = 0;

	snprintf(head, sizeof(head), "close peer=192.0.2.1:%u ", c->port);
	snprintf(tail, sizeof(tail), " state=%s reason=%s", state, reason);
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *h = strstr(line, head);
		size_t ll = strlen(line), tl = strlen(tail);

		if (h == NULL)
			continue;
		n++;
		if (ll >= tl && strcmp(line + ll - tl, tail) == 0)
			found = 1;
		else
			print_message("# close line: %s\n", h);
	}
	free(t);
	if (!found)
		fail_msg("no close line for port %u with%s (%d close lines for it)", c->port, tail, n);
	assert_int_equal(n, 1);
}

/* Asserts the refusal line of |c|'s session. */
static void assert_refuse_line(struct fx *f, const struct client *c, const char *what)
{
	char needle[160];

	snprintf(needle, sizeof(needle), "refuse peer=192.0.2.1:%u %s", c->port, what);
	if (!log_has(f, needle))
		fail_msg("log has no \"%s\"", needle);
}

/* ---- the proxy's side -------------------------------------------------------------- */

static int session_alive(struct fx *f, const struct client *c)
{
	const struct session *s;

	if (c->s == NULL)
		return 0;
	for (s = f->w.handshaking.head; s; s = session_list_next(s))
		if (s == c->s)
			return 1;
	for (s = f->w.sessions.head; s; s = session_list_next(s))
		if (s == c->s)
			return 1;
	return 0;
}

/* The state of |c|'s session, or -1 once it is freed (or finished). */
static int state_of(struct fx *f, const struct client *c)
{
	return session_alive(f, c) ? c->s->state : -1;
}

static void loop_once(struct fx *f)
{
	spy.pass_recvs = 0;
	capture_on(f);
	event_base_loop(f->w.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	capture_off(f);
	if (spy.spun)
		fail_msg("the worker loop spun: over %d reads of a client socket in one pass", SPIN_RECVS);
}

/* Calls into the session from outside the loop, as the worker does. */
static void worker_close_now(struct fx *f, struct client *c, const char *reason)
{
	assert_true(session_alive(f, c));
	capture_on(f);
	session_close_now(c->s, reason);
	capture_off(f);
}

static void worker_shutdown(struct fx *f, struct client *c)
{
	assert_true(session_alive(f, c));
	capture_on(f);
	session_shutdown(c->s);
	capture_off(f);
}

/* ---- the peers --------------------------------------------------------------------- */

static void take_tls_output(struct client *c, struct bytes *into)
{
	uint8_t buf[16384];
	int n;

	while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
		bytes_add(into, buf, (size_t)n);
}

static size_t client_io(struct client *c)
{
	uint8_t buf[65536];
	size_t moved = 0;
	ssize_t n;

	if (c->fd < 0)
		return 0;
	while (bytes_left(&c->out) > 0) {
		n = send(c->fd, c->out.p + c->out.off, bytes_left(&c->out), MSG_NOSIGNAL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				bytes_take(&c->out, bytes_left(&c->out));   /* the proxy is gone */
			break;
		}
		bytes_take(&c->out, (size_t)n);
		moved += (size_t)n;
	}
	if (c->paused || c->eof)
		return moved;
	while ((n = read(c->fd, buf, sizeof(buf))) > 0) {
		BIO_write(c->rbio, buf, (int)n);
		moved += (size_t)n;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		c->eof = 1;
		c->reset = n < 0 && errno == ECONNRESET;
		BIO_set_mem_eof_return(c->rbio, 0);
		moved++;
	}
	while (c->hs_done && !c->notify && !c->tls_error) {
		int r = SSL_read(c->ssl, buf, sizeof(buf));

		if (r > 0) {
			bytes_add(&c->got, buf, (size_t)r);
			moved += (size_t)r;
			continue;
		}
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_ZERO_RETURN:
			c->notify = 1;
			moved++;
			break;
		default:
			c->tls_error = 1;
			moved++;
			break;
		}
		ERR_clear_error();
		break;
	}
	take_tls_output(c, &c->out);    /* e.g. a KeyUpdate reply */
	return moved;
}

static size_t broker_io(struct broker *b)
{
	uint8_t buf[65536];
	size_t moved = 0;
	ssize_t n;

	if (b->fd < 0 && b->lfd >= 0) {
		b->fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (b->fd >= 0) {
			b->accepted++;
			moved++;
			if (b->sndbuf)
				setsockopt(b->fd, SOL_SOCKET, SO_SNDBUF, &b->sndbuf, sizeof(b->sndbuf));
		}
	}
	if (b->fd < 0)
		return moved;
	while (bytes_left(&b->out) > 0) {
		n = send(b->fd, b->out.p + b->out.off, bytes_left(&b->out), MSG_NOSIGNAL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				bytes_take(&b->out, bytes_left(&b->out));
			break;
		}
		bytes_take(&b->out, (size_t)n);
		moved += (size_t)n;
	}
	if (b->paused || b->eof)
		return moved;
	while ((n = read(b->fd, buf, sizeof(buf))) > 0) {
		bytes_add(&b->got, buf, (size_t)n);
		moved += (size_t)n;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		b->eof = 1;
		b->reset = n < 0 && errno == ECONNRESET;
		moved++;
	}
	return moved;
}

static size_t peers_io(struct fx *f)
{
	size_t moved = broker_io(&f->b);

	for (int i = 0; i < f->n_clients; i++)
		moved += client_io(&f->c[i]);
	return moved;
}

#define PUMP_MAX 20000

/* Runs the loop and the peers until two passes in a row move nothing:
 * no byte between sockets, no ready event, no callback left active.
 * Fails the test if that never happens (a spin). Returns the passes. */
static int pump(struct fx *f)
{
	int quiet = 0;

	for (int i = 0; i < PUMP_MAX; i++) {
		long ready = spy.epoll_ready;
		size_t moved;

		loop_once(f);
		moved = peers_io(f);
		if (moved == 0 && spy.epoll_ready == ready &&
		    event_base_get_num_events(f->w.base, EVENT_BASE_COUNT_ACTIVE) == 0)
			quiet++;
		else
			quiet = 0;
		if (quiet >= 2)
			return i + 1;
	}
	fail_msg("the worker loop never went quiet in %d passes (a spin?)", PUMP_MAX);
	return PUMP_MAX;
}

/* Time passes for the proxy: |ms| milliseconds of its monotonic clock. */
static void advance(struct fx *f, long ms)
{
	spy.offset_ns += (int64_t)ms * 1000000;
	pump(f);
}

/* Runs the loop until |done| says so, for what comes home from a pool
 * thread: a pass, then 1 ms of real time, at most 10 s in all. Returns
 * done's last answer. */
static int wait_until(struct fx *f, int (*done)(struct fx *))
{
	for (int i = 0; i < 10000 && !done(f); i++) {
		loop_once(f);
		peers_io(f);
		if (!done(f))
			(void)poll(NULL, 0, 1);
	}
	pump(f);
	return done(f);
}

static int no_auth_jobs(struct fx *f)
{
	return f->w.auth_jobs == 0;
}

/* Waits until every auth check of the worker has come home. */
static void wait_auth_jobs_home(struct fx *f)
{
	assert_true(wait_until(f, no_auth_jobs));
}

/* ---- building the fixture ----------------------------------------------------------- */

static void blocker_run(struct pool_job *job)
{
	struct blocker *b = (struct blocker *)job;

	pthread_mutex_lock(&b->mu);
	while (!b->released)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

static void blocker_done(struct pool_job *job)
{
	((struct blocker *)job)->home = 1;
}

/* Occupies the pool's thread (the fixture must have pool_threads = 1). */
static void block_pool(struct fx *f)
{
	struct blocker *b = &f->blk;

	assert_non_null(f->p.pool);
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->base.run = blocker_run;
	b->base.done = blocker_done;
	b->base.home = &f->w.home;
	f->blk_used = 1;
	pool_submit(f->p.pool, &b->base);
}

static void unblock_pool(struct fx *f)
{
	struct blocker *b = &f->blk;

	if (!f->blk_used)
		return;
	pthread_mutex_lock(&b->mu);
	b->released = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static int blocker_home(struct fx *f)
{
	return f->blk.home;
}

/* Releases the pool's thread and waits until the blocker came home. */
static void unblock_pool_and_wait(struct fx *f)
{
	unblock_pool(f);
	assert_true(wait_until(f, blocker_home));
}

static void seconds_ms(struct timeval *tv, long ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static void broker_listen_unix(struct fx *f)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct broker *b = &f->b;

	snprintf(b->path, sizeof(b->path), "%s/broker.sock", f->env->dir);
	unlink(b->path);
	strcpy(sun.sun_path, b->path);
	b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(b->lfd >= 0);
	assert_int_equal(bind(b->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(b->lfd, 16), 0);
}

/*
 * A broker that never completes a TCP connection: a loopback listener with
 * backlog 0 whose one queue slot is taken by a connection nobody accepts.
 * Linux then drops further SYNs, so the proxy's connect() stays in
 * progress (on a unix socket the same full backlog fails at once with
 * EAGAIN, which is "unreachable", not "connecting").
 */
static void broker_blackhole(struct fx *f, struct address *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	struct pollfd pfd;

	f->b.hole = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->b.hole >= 0);
	assert_int_equal(bind(f->b.hole, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->b.hole, 0), 0);
	assert_int_equal(getsockname(f->b.hole, (struct sockaddr *)&sin, &len), 0);
	f->b.filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->b.filler >= 0);
	if (connect(f->b.filler, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		assert_int_equal(errno, EINPROGRESS);
	pfd = (struct pollfd){ .fd = f->b.filler, .events = POLLOUT };
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	memset(a, 0, sizeof(*a));
	memcpy(&a->sa, &sin, sizeof(sin));
	a->len = sizeof(sin);
}

static struct env g_env;

static const struct sockaddr_in *peer_addr(uint16_t port)
{
	static struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(0xc0000201);   /* 192.0.2.1 */
	return &sin;
}

/* Starts the worker for |o|: the configuration as config_load makes it
 * from the daemon's flags, then struct proxy as main() fills it. */
static void fx_start(struct fx *f, const struct fx_opts *o)
{
	struct address bound[CONFIG_MAX_LISTEN];
	char err[512], delay[32], queue[32], spec[160];
	char *argv[32];
	int argc = 0;

	f->o = *o;
#define ARG(a) (argv[argc++] = (char *)(a))
	ARG("mqtls");
	ARG("--cert"), ARG(f->env->cert);
	ARG("--key"), ARG(f->env->key);
	ARG("--upstream"), ARG("unix:/nonexistent");
	snprintf(delay, sizeof(delay), "%ld", o->fail_delay_ms);
	ARG("--auth-fail-delay"), ARG(delay);
	ARG("--log-level"), ARG("info");
	if (o->auth == FX_AUTH_PASSWORD)
		ARG("--users"), ARG(f->env->users);
	if (o->auth == FX_AUTH_JWT) {
		ARG("--jwt-keys"), ARG(f->env->jwt_key);
		ARG("--jwt-leeway"), ARG("0");
	}
	if (o->max_auth_queue) {
		snprintf(queue, sizeof(queue), "%ld", o->max_auth_queue);
		ARG("--max-auth-queue"), ARG(queue);
	}
#undef ARG
	argv[argc] = NULL;
	assert_int_equal(config_load(&f->cfg, argc, argv), CONFIG_OK);
	f->run = f->cfg;
	f->run.n_listen = 0;

	pthread_mutex_init(&f->p.lock, NULL);
	f->p.cfg = &f->run;
	switch (o->up) {
	case FX_UP_BROKER:
		broker_listen_unix(f);
		snprintf(spec, sizeof(spec), "unix:%s", f->b.path);
		assert_true(address_parse(spec, 1, &f->p.upstream, err, sizeof(err)));
		break;
	case FX_UP_NOWHERE:
		snprintf(spec, sizeof(spec), "unix:%s/nobody.sock", f->env->dir);
		assert_true(address_parse(spec, 1, &f->p.upstream, err, sizeof(err)));
		break;
	case FX_UP_BLACKHOLE:
		broker_blackhole(f, &f->p.upstream);
		break;
	}
	f->p.max_buffer = o->max_buffer ? o->max_buffer : 16384;
	f->p.max_connect_size = o->max_connect_size ? o->max_connect_size : 4096;
	seconds_ms(&f->p.hello_timeout, o->hello_ms ? o->hello_ms : 3000);
	seconds_ms(&f->p.handshake_timeout, o->handshake_ms ? o->handshake_ms : 10000);
	seconds_ms(&f->p.connect_timeout, o->connect_ms ? o->connect_ms : 10000);
	seconds_ms(&f->p.upstream_timeout, o->upstream_ms ? o->upstream_ms : 5000);
	seconds_ms(&f->p.linger_timeout, o->linger_ms ? o->linger_ms : 5000);
	SSL_CTX_up_ref(f->env->server_ctx);
	f->p.ssl_ctx = f->env->server_ctx;
	f->p.auth = auth_material_load(&f->run, err, sizeof(err));
	if (f->p.auth == NULL)
		fail_msg("auth_material_load: %s", err);
	if (o->pool_threads)
		assert_non_null(f->p.pool = pool_new(o->pool_threads));
	assert_non_null(f->p.faildelay = faildelay_new());
	if (!worker_init(&f->w, 0, &f->p, bound, err, sizeof(err)))
		fail_msg("worker_init: %s", err);
	spy.base = f->w.base;
	f->started = 1;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->fd_mark = dup(0);
	close(f->fd_mark);
	clock_gettime(CLOCK_REALTIME, &f->t0);
	f->env = &g_env;
	f->b.lfd = f->b.fd = f->b.hole = f->b.filler = -1;
	f->log_fd = memfd_create("mqtls-log", MFD_CLOEXEC);
	if (f->log_fd < 0)
		return -1;
	spy.spun = 0;
	current_fx = f;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	struct timespec t1;
	int fd, ok;

	if (f->started) {
		unblock_pool(f);
		pool_free(f->p.pool);
		f->p.pool = NULL;
		capture_on(f);
		worker_cleanup(&f->w);
		capture_off(f);
		spy.base = NULL;
		faildelay_free(f->p.faildelay);
		auth_material_unref(f->p.auth);
		SSL_CTX_free(f->p.ssl_ctx);
		pthread_mutex_destroy(&f->p.lock);
		config_cleanup(&f->cfg);
	}
	if (f->blk_used) {
		pthread_mutex_destroy(&f->blk.mu);
		pthread_cond_destroy(&f->blk.cv);
	}
	for (int i = 0; i < f->n_clients; i++) {
		struct client *c = &f->c[i];

		SSL_free(c->ssl);
		if (c->fd >= 0)
			close(c->fd);
		if (c->pfd >= 0 && c->pfd < SPY_MAX_FD)
			spy.watched[c->pfd] = 0;
		bytes_free(&c->out);
		bytes_free(&c->got);
	}
	ERR_clear_error();
	if (f->b.fd >= 0)
		close(f->b.fd);
	if (f->b.lfd >= 0)
		close(f->b.lfd);
	if (f->b.hole >= 0)
		close(f->b.hole);
	if (f->b.filler >= 0)
		close(f->b.filler);
	if (f->b.path[0])
		unlink(f->b.path);
	bytes_free(&f->b.out);
	bytes_free(&f->b.got);
	if (getenv("MQTLS_TEST_LOG"))
		log_dump(f, real_stderr);
	clock_gettime(CLOCK_REALTIME, &t1);
	if (getenv("MQTLS_TEST_TIMING"))
		fprintf(stderr, "# %.1f ms\n",
		        (double)(t1.tv_sec - f->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - f->t0.tv_nsec) / 1e6);
	current_fx = NULL;
	close(f->log_fd);
	fd = dup(0);
	ok = fd == f->fd_mark;
	close(fd);
	if (!ok)
		fprintf(stderr, "# a descriptor was left open (lowest free %d, was %d)\n", fd, f->fd_mark);
	free(f);
	return ok ? 0 : -1;
}

/* ---- clients ----------------------------------------------------------------------- */

/* A new connection handed to the worker as accept would, from
 * 192.0.2.1:(4001 + n); its TLS client has not started yet. */
static struct client *client_new(struct fx *f)
{
	struct client *c;
	int sv[2];

	assert_true(f->n_clients < MAX_CLIENTS);
	c = &f->c[f->n_clients++];
	memset(c, 0, sizeof(*c));
	c->fd = c->pfd = -1;
	c->port = (uint16_t)(4000 + f->n_clients);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	c->fd = sv[0];
	c->pfd = sv[1];
	assert_true(c->pfd < SPY_MAX_FD);
	spy.watched[c->pfd] = 1;
	spy.recvs[c->pfd] = 0;
	c->ssl = SSL_new(f->env->client_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	assert_true(c->ssl && c->rbio && c->wbio);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	capture_on(f);
	c->s = worker_adopt(&f->w, c->pfd, (const struct sockaddr *)peer_addr(c->port),
	                    sizeof(struct sockaddr_in));
	capture_off(f);
	assert_non_null(c->s);
	pump(f);
	return c;
}

/* Socket buffers of |bytes| on both ends of |c|'s pair (for AF_UNIX the
 * sender's buffer bounds what is in flight), so backpressure comes soon. */
static void client_small_buffers(struct client *c, int bytes)
{
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)), 0);
	assert_int_equal(setsockopt(c->pfd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)), 0);
}

/* The ClientHello, and nothing after it. */
static void client_hello(struct fx *f, struct client *c)
{
	int r = SSL_do_handshake(c->ssl);

	assert_int_equal(SSL_get_error(c->ssl, r), SSL_ERROR_WANT_READ);
	take_tls_output(c, &c->out);
	assert_true(bytes_left(&c->out) > 0);
}

/* Completes the TLS handshake; with |first|, those plaintext bytes are
 * sealed right behind the client's Finished and leave in the same write. */
static void client_handshake_with(struct fx *f, struct client *c, const void *first, size_t n)
{
	for (int i = 0; i < 50 && !c->hs_done; i++) {
		int r = SSL_do_handshake(c->ssl);

		if (r == 1) {
			c->hs_done = 1;
			if (first)
				assert_int_equal(SSL_write(c->ssl, first, (int)n), (int)n);
			take_tls_output(c, &c->out);
			break;
		}
		assert_int_equal(SSL_get_error(c->ssl, r), SSL_ERROR_WANT_READ);
		take_tls_output(c, &c->out);
		pump(f);
	}
	assert_true(c->hs_done);
	pump(f);
}

static void client_handshake(struct fx *f, struct client *c)
{
	client_handshake_with(f, c, NULL, 0);
	assert_int_equal(state_of(f, c), S_AWAIT_CONNECT);
}

/* Seals |n| plaintext bytes as TLS records into |into| (one record per
 * 16 KiB). */
static void client_seal(struct client *c, const void *data, size_t n, struct bytes *into)
{
	assert_int_equal(SSL_write(c->ssl, data, (int)n), (int)n);
	take_tls_output(c, into);
}

/* Queues |n| plaintext bytes for the proxy (sent by the next pump). */
static void client_send(struct client *c, const void *data, size_t n)
{
	client_seal(c, data, n, &c->out);
}

static void client_send_pkt(struct client *c, const struct pkt *p)
{
	client_send(c, p->b, p->n);
}

static void client_close_notify(struct client *c)
{
	(void)SSL_shutdown(c->ssl);
	take_tls_output(c, &c->out);
}

/* The client's socket goes away (a reset if it left bytes unread). */
static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Half-close: what is queued goes out first, then FIN. */
static void client_shut_wr(struct fx *f, struct client *c)
{
	client_io(c);
	assert_int_equal(bytes_left(&c->out), 0);
	assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
}

/* What the client decrypted, as a whole. */
static void assert_client_got(const struct client *c, const void *want, size_t n)
{
	if (c->got.len != n || (n > 0 && memcmp(c->got.p, want, n) != 0)) {
		print_message("# client got %zu bytes:", c->got.len);
		for (size_t i = 0; i < c->got.len && i < 16; i++)
			print_message(" %02x", c->got.p[i]);
		print_message("\n");
		fail_msg("the client did not get the %zu bytes expected", n);
	}
}

/* ---- the broker -------------------------------------------------------------------- */

static void broker_send(struct fx *f, const void *data, size_t n)
{
	bytes_add(&f->b.out, data, n);
}

static void assert_broker_got(const struct broker *b, const void *want, size_t n)
{
	if (b->got.len != n || (n > 0 && memcmp(b->got.p, want, n) != 0)) {
		size_t i = 0;

		while (i < b->got.len && i < n && b->got.p[i] == ((const uint8_t *)want)[i])
			i++;
		fail_msg("the broker got %zu bytes, %zu expected, first difference at %zu", b->got.len, n, i);
	}
}

/* Nobody ever connected to the broker, and nobody is waiting to. */
static void assert_broker_untouched(struct fx *f)
{
	assert_int_equal(f->b.accepted, 0);
	if (f->b.lfd >= 0) {
		int fd = accept4(f->b.lfd, NULL, NULL, SOCK_NONBLOCK);

		if (fd >= 0)
			close(fd);
		assert_true(fd < 0);
	}
}

/* The session of |c| is freed and the worker holds nothing. */
static void assert_gone(struct fx *f, const struct client *c)
{
	assert_int_equal(state_of(f, c), -1);
	assert_int_equal(f->w.n_sessions, 0);
	assert_int_equal(f->w.n_handshakes, 0);
	assert_null(f->w.dead.head);
}

/* A client past its handshake whose CONNECT (protocol |level|) the broker
 * has and whose CONNACK the client has; both byte logs are then cleared. */
static struct client *forwarding_client(struct fx *f, unsigned level)
{
	struct client *c = client_new(f);
	struct pkt p;

	client_handshake(f, c);
	mk_connect(&p, level, "c1", NULL, NULL);
	client_send_pkt(c, &p);
	pump(f);
	assert_int_equal(state_of(f, c), S_FORWARDING);
	assert_int_equal(f->b.accepted, 1);
	assert_broker_got(&f->b, p.b, p.n);
	f->b.got.len = 0;
	if (level == 5)
		broker_send(f, CONNACK_OK_5, sizeof(CONNACK_OK_5));
	else
		broker_send(f, CONNACK_OK_311, sizeof(CONNACK_OK_311));
	pump(f);
	assert_client_got(c, level == 5 ? CONNACK_OK_5 : CONNACK_OK_311, level == 5 ? 5 : 4);
	c->got.len = 0;
	return c;
}

/* ---- once per run ------------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* carol: mosquitto_passwd -H sha512 (cheap, checked on the loop);
 * dave: PBKDF2 with 2000 iterations, made here (costed over 150 µs, so it
 * goes to the pool when there is one). Both passwords are "secret". */
#define CAROL "carol:$6$e0CGA8zB+3zfkHs8$ZgQmsSFsrGsU5MPpvvo49p979jXsbFYiq5mlxRJWfPu5ClY54OCtfGmLbnKqCmuTx+3MOJxDLdFLqSjerPlHiQ=="
#define JWT_SECRET "session-test-hmac-secret-of-40-bytes!!!!"

static int env_setup(struct env *e)
{
	struct pwhash h = { .scheme = PWHASH_PBKDF2_SHA512, .iterations = 2000, .salt_len = 12,
	                    .hash_len = 64 };
	char dave[512], users[1024];
	SSL_CTX *ctx;

	snprintf(e->dir, sizeof(e->dir), "/tmp/mqtls-test-session-XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		return -1;
	snprintf(e->cert, sizeof(e->cert), "%s/server.pem", e->dir);
	snprintf(e->key, sizeof(e->key), "%s/server.key", e->dir);
	snprintf(e->users, sizeof(e->users), "%s/users", e->dir);
	snprintf(e->jwt_key, sizeof(e->jwt_key), "%s/jwt.key", e->dir);
	e->server_ctx = make_server_ctx(e->dir, "server", 0);
	if (e->server_ctx == NULL)
		return -1;
	memcpy(h.salt, "0123456789ab", 12);
	if (!pwhash_compute(&h, (const uint8_t *)"secret", 6, h.hash) ||
	    !pwhash_format(&h, dave, sizeof(dave)))
		return -1;
	snprintf(users, sizeof(users), "%s\ndave:%s\n", CAROL, dave);
	write_file(e->users, users);
	write_file(e->jwt_key, JWT_SECRET "\n");
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		return -1;
	e->client_ctx = ctx;
	return 0;
}

static void env_teardown(struct env *e)
{
	char cmd[128];

	SSL_CTX_free(e->server_ctx);
	SSL_CTX_free(e->client_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", e->dir);
}

/* Process-wide set-up for main(): threads for the pool's way home, no
 * SIGPIPE (as the daemon), and the log shown if the process dies. */
static void session_tests_init(void)
{
	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGABRT, on_abort);
	real_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
#ifdef __SANITIZE_ADDRESS__
	/* Sanitizer reports go to the real stderr even while the log is
	 * captured, followed by that log. */
	__sanitizer_set_report_fd((void *)(intptr_t)real_stderr);
	__sanitizer_set_death_callback(on_death);
#endif
}

#endif
