/*
 * The broker set's thread: the active half of health and re-resolution.
 * It probes each broker marked down once per back-off period (one TCP
 * connect, all due brokers at once, bounded by --upstream-timeout), and
 * resolves host names again every --resolve-interval seconds. Both block
 * (connect, getaddrinfo), which is why they run here and never on a
 * worker loop; workers only ever copy an address out under the set's lock.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/brokers_int.h"
#include "proxy/log.h"

/* The longest sleep when nothing is due: a session marking a broker down
 * wakes the thread anyway; this only bounds the damage of a lost wake-up. */
#define WATCH_IDLE_MS 60000

static int same_address(const struct address *a, const struct address *b)
{
	return a->len == b->len && memcmp(&a->sa, &b->sa, a->len) == 0;
}

/* Resolves every host name again; a failure keeps the address it had. */
static void resolve_all(struct brokers *b)
{
	for (int i = 0; i < b->n; i++) {
		struct broker *k = &b->b[i];
		struct address fresh, old;
		char why[512], was[160], now[160], esc[600];
		int changed;

		if (!k->by_name)
			continue;
		if (!address_parse(k->spec, 1, &fresh, why, sizeof(why))) {
			/* The last address it had stays in use. */
			brokers_address(b, i, &old);
			address_format((const struct sockaddr *)&old.sa, old.len, was, sizeof(was));
			log_escape(esc, sizeof(esc), why, strlen(why));
			log_warn("upstream broker=%s resolve=failed addr=%s error=\"%s\"", k->spec, was, esc);
			continue;
		}
		pthread_mutex_lock(&b->lock);
		old = k->addr;
		changed = !same_address(&old, &fresh);
		if (changed)
			k->addr = fresh;
		pthread_mutex_unlock(&b->lock);
		if (changed) {
			address_format((const struct sockaddr *)&old.sa, old.len, was, sizeof(was));
			address_format((const struct sockaddr *)&fresh.sa, fresh.len, now, sizeof(now));
			log_info("upstream broker=%s addr=%s was=%s", k->spec, now, was);
		}
	}
}

/* Probes every broker whose back-off has run out, all at once. */
static void probe_due(struct brokers *b)
{
	struct pollfd pfd[CONFIG_MAX_LIST];
	int idx[CONFIG_MAX_LIST], n = 0, open = 0;
	uint64_t now = brokers_now_ms(), deadline;

	for (int i = 0; i < b->n; i++) {
		uint64_t due = atomic_load(&b->b[i].down_until);
		struct address a;
		int in_progress = 0, fd;

		if (due == 0 || due > now)
			continue;
		brokers_address(b, i, &a);
		fd = address_connect(&a, &in_progress);
		if (fd < 0) {
			brokers_probe_failed(b, i, brokers_now_ms());
		} else if (!in_progress) {
			close(fd);
			brokers_mark_up(b, i, "probe");
		} else {
			pfd[n] = (struct pollfd){ .fd = fd, .events = POLLOUT };
			idx[n++] = i;
			open++;
		}
	}
	deadline = now + (uint64_t)b->probe_timeout_ms;
	while (open > 0) {
		uint64_t t = brokers_now_ms();
		int r;

		if (t >= deadline)
			break;
		r = poll(pfd, (nfds_t)n, (int)(deadline - t));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (int k = 0; k < n; k++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (pfd[k].fd < 0 || pfd[k].revents == 0)
				continue;
			if (getsockopt(pfd[k].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
				err = errno;
			close(pfd[k].fd);
			pfd[k].fd = -1;
			open--;
			if (err == 0)
				brokers_mark_up(b, idx[k], "probe");
			else
				brokers_probe_failed(b, idx[k], brokers_now_ms());
		}
	}
	/* What is still open did not answer within the timeout. */
	for (int k = 0; k < n; k++) {
		if (pfd[k].fd >= 0) {
			close(pfd[k].fd);
			brokers_probe_failed(b, idx[k], brokers_now_ms());
		}
	}
}

/* When the thread has something to do next: the earliest probe due, the
 * next resolution, or WATCH_IDLE_MS from now. */
static uint64_t next_wake(const struct brokers *b, uint64_t now, uint64_t next_resolve)
{
	uint64_t wake = now + WATCH_IDLE_MS;

	for (int i = 0; i < b->n; i++) {
		uint64_t due = atomic_load(&b->b[i].down_until);

		if (due != 0 && due < wake)
			wake = due;
	}
	return next_resolve < wake ? next_resolve : wake;
}

void *brokers_watch_main(void *arg)
{
	struct brokers *b = arg;
	uint64_t next_resolve = UINT64_MAX;

	for (int i = 0; i < b->n; i++) {
		if (b->b[i].by_name && b->resolve_interval_ms > 0)
			next_resolve = brokers_now_ms() + (uint64_t)b->resolve_interval_ms;
	}
	pthread_mutex_lock(&b->wake_lock);
	while (!b->stop) {
		uint64_t wake;
		struct timespec ts;

		pthread_mutex_unlock(&b->wake_lock);
		if (brokers_now_ms() >= next_resolve) {
			resolve_all(b);
			next_resolve = brokers_now_ms() + (uint64_t)b->resolve_interval_ms;
		}
		probe_due(b);
		pthread_mutex_lock(&b->wake_lock);
		/* Under the lock: a session marks a broker down before it takes
		 * this lock to signal, so a new deadline is either seen here or
		 * its signal comes while we wait. */
		wake = next_wake(b, brokers_now_ms(), next_resolve);
		ts.tv_sec = (time_t)(wake / 1000);
		ts.tv_nsec = (long)(wake % 1000) * 1000000;
		if (!b->stop)
			pthread_cond_timedwait(&b->wake, &b->wake_lock, &ts);
	}
	pthread_mutex_unlock(&b->wake_lock);
	return NULL;
}
