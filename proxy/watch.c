#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "proxy/watch.h"

#define WATCH_MAGIC 0x77617463u
#define MAX_ENTRIES 64
/* Everything that replaces, rewrites or removes a name in a directory, and
 * the directory itself going away. */
#define DIR_EVENTS (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
                    IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* One watched name in one watched directory. */
struct entry {
	int wd;
	char *name;        /* owned: the file's name in that directory */
	char *path;        /* owned: the path as given, for the caller */
};

struct watch {
	uint32_t magic;
	int fd;            /* owned: inotify */
	int stop_fd;       /* owned: eventfd, written by watch_free */
	pthread_t thread;
	unsigned quiet_ms;
	watch_fn fire;
	void *arg;
	struct entry e[MAX_ENTRIES];
	size_t n;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Watches directory |dir| for |name|; 1 if it is watched (now or before). */
static int add_entry(struct watch *w, const char *dir, const char *name, const char *path)
{
	int wd;

	if (w->n == MAX_ENTRIES)
		return 0;
	wd = inotify_add_watch(w->fd, dir, DIR_EVENTS);
	if (wd < 0)
		return 0;
	for (size_t i = 0; i < w->n; i++) {
		if (w->e[i].wd == wd && strcmp(w->e[i].name, name) == 0)
			return 1;
	}
	w->e[w->n].name = strdup(name);
	w->e[w->n].path = strdup(path);
	if (w->e[w->n].name == NULL || w->e[w->n].path == NULL) {
		free(w->e[w->n].name);
		free(w->e[w->n].path);
		return 0;
	}
	w->e[w->n++].wd = wd;
	return 1;
}

/* Watches the directory of |file| for its name; |path| is what to report. */
static int add_file(struct watch *w, const char *file, const char *path)
{
	char d[PATH_MAX], b[PATH_MAX];

	if (snprintf(d, sizeof(d), "%s", file) >= (int)sizeof(d))
		return 0;
	snprintf(b, sizeof(b), "%s", file);
	return add_entry(w, dirname(d), basename(b), path);
}

/* The path to report if event |ev| concerns a watched file, else NULL. */
static const char *matches(const struct watch *w, const struct inotify_event *ev)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->e[i].wd != ev->wd)
			continue;
		/* The directory itself was removed or renamed. */
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
			return w->e[i].path;
		/* Kubernetes' atomic writer swaps "..data" (and writes
		 * "..data_tmp", "..2024_01_31_..."); the files are symlinks
		 * through it. */
		if (ev->len > 0 && (strcmp(ev->name, w->e[i].name) == 0 || strncmp(ev->name, "..", 2) == 0))
			return w->e[i].path;
	}
	return NULL;
}

/* Reads every pending event; returns the first watched path among them, or
 * NULL. */
static const char *read_events(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *hit = NULL;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			const char *m = (ev->mask & IN_Q_OVERFLOW) && w->n > 0 ? w->e[0].path : matches(w, ev);

			if (hit == NULL)
				hit = m;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct pollfd fds[2] = { { w->fd, POLLIN, 0 }, { w->stop_fd, POLLIN, 0 } };
	uint64_t first = 0, last = 0;
	char changed[PATH_MAX] = "";
	int pending = 0;
	sigset_t all;

	/* Signals are for the thread that waits for them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	for (;;) {
		int timeout = -1;
		uint64_t now = now_ms();

		if (pending) {
			uint64_t due = last + w->quiet_ms, cap = first + 10 * (uint64_t)w->quiet_ms;

			if (cap < due)
				due = cap;
			timeout = due > now ? (int)(due - now) : 0;
		}
		fds[0].revents = fds[1].revents = 0;
		if (poll(fds, 2, timeout) < 0 && errno != EINTR)
			break;
		if (fds[0].revents || fds[1].revents) {
			const char *hit = read_events(w);

			if (hit) {
				if (!pending)
					snprintf(changed, sizeof(changed), "%s", hit);
				now = now_ms();
				first = pending ? first : now;
				last = now;
				pending = 1;
			}
		}
		now = now_ms();
		/* Stopping: a change seen and not yet reported is reported now,
		 * so that replacing a watcher (after each reload) loses none. */
		if (pending && (fds[1].revents || now >= last + w->quiet_ms ||
		                now >= first + 10 * (uint64_t)w->quiet_ms)) {
			pending = 0;
			w->fire(w->arg, changed);
		}
		if (fds[1].revents)
			break;
	}
	return NULL;
}

struct watch *watch_new(const char *const *paths, size_t n, unsigned quiet_ms, watch_fn fire,
                        void *arg, char *err, size_t errlen)
{
	struct watch *w = calloc(1, sizeof(*w));
	size_t watched = 0;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->magic = WATCH_MAGIC;
	w->stop_fd = -1;
	w->quiet_ms = quiet_ms;
	w->fire = fire;
	w->arg = arg;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || (w->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		goto err;
	}
	for (size_t i = 0; i < n; i++) {
		char real[PATH_MAX];

		if (add_file(w, paths[i], paths[i]))
			watched++;
		/* Where a symlink leads (certbot's live/ -> archive/, a
		 * Kubernetes mount's ..data/), for a file rewritten in place. */
		if (realpath(paths[i], real) && strcmp(real, paths[i]) != 0)
			(void)add_file(w, real, paths[i]);
	}
	if (watched == 0) {
		snprintf(err, errlen, "cannot watch the directory of any of %zu file(s): %s", n,
		         n ? strerror(errno) : "none given");
		goto err;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		snprintf(err, errlen, "cannot start the watcher thread");
		goto err;
	}
	return w;
err:
	for (size_t i = 0; i < w->n; i++) {
		free(w->e[i].name);
		free(w->e[i].path);
	}
	if (w->fd >= 0)
		close(w->fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	free(w);
	return NULL;
}

void watch_free(struct watch *w)
{
	uint64_t one = 1;

	if (w == NULL)
		return;
	if (w->magic != WATCH_MAGIC)
		abort();
	if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
		abort();   /* an eventfd write of 1 cannot fail short of a bug */
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n; i++) {
		free(w->e[i].name);
		free(w->e[i].path);
	}
	close(w->fd);
	close(w->stop_fd);
	w->magic = 0;
	free(w);
}
