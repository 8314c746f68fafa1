/*
 * The file watcher (proxy/watch.c) on a real directory with real inotify:
 * a file replaced by rename, written in place, through certbot-style and
 * Kubernetes-style symlinks, bursts that must give one call, other files
 * that must give none, and a change still pending when the watcher stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/watch.h"

#define QUIET_MS 100

struct fixture {
	char dir[64];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	uint64_t call_ms[8];
	char path[8][256];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_change(void *arg, const char *path)
{
	struct fixture *f = arg;

	pthread_mutex_lock(&f->lock);
	if (f->calls < 8) {
		f->call_ms[f->calls] = now_ms();
		snprintf(f->path[f->calls], sizeof(f->path[0]), "%s", path);
	}
	f->calls++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Waits (at most 5 s) until there have been |n| calls; returns the count. */
static int wait_calls(struct fixture *f, int n)
{
	uint64_t deadline = now_ms() + 5000;
	int calls;

	pthread_mutex_lock(&f->lock);
	while (f->calls < n && now_ms() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	}
	calls = f->calls;
	pthread_mutex_unlock(&f->lock);
	return calls;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/mqtls-test-watch-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
	return 0;
}

/* |dir|/|name|, in a static buffer per call site's copy. */
static void join(char *out, size_t cap, const struct fixture *f, const char *name)
{
	snprintf(out, cap, "%s/%s", f->dir, name);
}

static void write_text(const struct fixture *f, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	join(path, sizeof(path), f, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

/* Writes |name|.tmp and renames it over |name|, as certificate tools do. */
static void replace(const struct fixture *f, const char *name, const char *text)
{
	char tmp[256], path[256], tmpname[128];

	snprintf(tmpname, sizeof(tmpname), "%s.tmp", name);
	write_text(f, tmpname, text);
	join(tmp, sizeof(tmp), f, tmpname);
	join(path, sizeof(path), f, name);
	assert_int_equal(rename(tmp, path), 0);
}

static struct watch *watch_one(struct fixture *f, const char *name, unsigned quiet_ms)
{
	char path[256], err[256] = "";
	const char *paths[1] = { path };
	struct watch *w;

	join(path, sizeof(path), f, name);
	w = watch_new(paths, 1, quiet_ms, on_change, f, err, sizeof(err));
	if (w == NULL)
		fail_msg("watch_new: %s", err);
	return w;
}

static void test_watch_reports_a_file_replaced_by_rename_once_after_the_quiet_time(void **state)
{
	struct fixture *f = *state;
	char want[256];
	struct watch *w;
	uint64_t t0;

	write_text(f, "cert.pem", "one");
	w = watch_one(f, "cert.pem", QUIET_MS);
	t0 = now_ms();
	replace(f, "cert.pem", "two");
	assert_int_equal(wait_calls(f, 1), 1);
	join(want, sizeof(want), f, "cert.pem");
	assert_string_equal(f->path[0], want);
	assert_true(f->call_ms[0] >= t0 + QUIET_MS - 5);
	watch_free(w);
	assert_int_equal(f->calls, 1);
}

static void test_watch_reports_a_file_written_in_place(void **state)
{
	struct fixture *f = *state;
	struct watch *w;

	write_text(f, "users", "alice:x\n");
	w = watch_one(f, "users", QUIET_MS);
	write_text(f, "users", "alice:x\ncarol:y\n");
	assert_int_equal(wait_calls(f, 1), 1);
	watch_free(w);
}

/* A renewal writes the certificate and the key one after the other: one
 * call, after the last change has been quiet for the quiet time. */
static void test_watch_reports_a_burst_of_changes_once_after_the_last(void **state)
{
	struct fixture *f = *state;
	char cert[256], key[256];
	const char *paths[2] = { cert, key };
	char err[256];
	struct watch *w;
	uint64_t last;

	write_text(f, "cert.pem", "c");
	write_text(f, "key.pem", "k");
	join(cert, sizeof(cert), f, "cert.pem");
	join(key, sizeof(key), f, "key.pem");
	w = watch_new(paths, 2, QUIET_MS, on_change, f, err, sizeof(err));
	assert_non_null(w);
	for (int i = 0; i < 4; i++) {
		replace(f, i % 2 ? "key.pem" : "cert.pem", "new");
		usleep(QUIET_MS * 1000 / 3);
	}
	last = now_ms();
	replace(f, "key.pem", "newest");
	assert_int_equal(wait_calls(f, 1), 1);
	assert_string_equal(f->path[0], cert);   /* the first change of the burst */
	assert_true(f->call_ms[0] >= last + QUIET_MS - 5);
	/* A later change is a second call, so the burst gave only one. */
	replace(f, "cert.pem", "later");
	assert_int_equal(wait_calls(f, 2), 2);
	watch_free(w);
	assert_int_equal(f->calls, 2);
}

static void test_watch_ignores_other_files_in_the_same_directory(void **state)
{
	struct fixture *f = *state;
	char want[256];
	struct watch *w;

	write_text(f, "cert.pem", "c");
	w = watch_one(f, "cert.pem", QUIET_MS);
	write_text(f, "ready", "127.0.0.1:8883\n");
	replace(f, "cert.pem.bak", "old");
	write_text(f, "mqtls.log", "line\n");
	/* Had those counted, they would be a call of their own before this one. */
	usleep(3 * QUIET_MS * 1000);
	replace(f, "cert.pem", "new");
	assert_true(wait_calls(f, 1) >= 1);
	watch_free(w);
	join(want, sizeof(want), f, "cert.pem");
	assert_int_equal(f->calls, 1);
	assert_string_equal(f->path[0], want);
}

/* A Kubernetes Secret volume: tls.crt -> ..data/tls.crt, ..data ->
 * ..<timestamp>; an update writes a new timestamped directory and renames
 * a new ..data symlink over the old one. tls.crt itself never changes. */
static void test_watch_reports_a_kubernetes_data_symlink_swap(void **state)
{
	struct fixture *f = *state;
	char p[256], q[256], want[256];
	struct watch *w;

	join(p, sizeof(p), f, "..2026_01_01");
	assert_int_equal(mkdir(p, 0700), 0);
	write_text(f, "..2026_01_01/tls.crt", "one");
	join(p, sizeof(p), f, "..data");
	assert_int_equal(symlink("..2026_01_01", p), 0);
	join(p, sizeof(p), f, "tls.crt");
	assert_int_equal(symlink("..data/tls.crt", p), 0);
	w = watch_one(f, "tls.crt", QUIET_MS);

	join(p, sizeof(p), f, "..2026_02_01");
	assert_int_equal(mkdir(p, 0700), 0);
	write_text(f, "..2026_02_01/tls.crt", "two");
	join(p, sizeof(p), f, "..data_tmp");
	assert_int_equal(symlink("..2026_02_01", p), 0);
	join(q, sizeof(q), f, "..data");
	assert_int_equal(rename(p, q), 0);
	join(p, sizeof(p), f, "..2026_01_01/tls.crt");
	assert_int_equal(unlink(p), 0);
	join(p, sizeof(p), f, "..2026_01_01");
	assert_int_equal(rmdir(p), 0);

	assert_true(wait_calls(f, 1) >= 1);
	watch_free(w);
	join(want, sizeof(want), f, "tls.crt");
	assert_string_equal(f->path[0], want);
}

/* certbot's live/ holds symlinks into archive/; a file there rewritten in
 * place changes nothing in live/, so the target's directory is watched. */
static void test_watch_follows_a_symlink_to_a_file_rewritten_in_place(void **state)
{
	struct fixture *f = *state;
	char p[256], want[256];
	struct watch *w;

	join(p, sizeof(p), f, "archive");
	assert_int_equal(mkdir(p, 0700), 0);
	join(p, sizeof(p), f, "live");
	assert_int_equal(mkdir(p, 0700), 0);
	write_text(f, "archive/fullchain1.pem", "one");
	join(p, sizeof(p), f, "live/fullchain.pem");
	assert_int_equal(symlink("../archive/fullchain1.pem", p), 0);
	w = watch_one(f, "live/fullchain.pem", QUIET_MS);
	write_text(f, "archive/fullchain1.pem", "two");
	assert_true(wait_calls(f, 1) >= 1);
	watch_free(w);
	join(want, sizeof(want), f, "live/fullchain.pem");
	assert_string_equal(f->path[0], want);
}

/* A watcher replaced right after a change (each reload replaces it) must
 * not take the change with it: watch_free reports it at once. */
static void test_watch_free_reports_a_change_still_in_its_quiet_time(void **state)
{
	struct fixture *f = *state;
	struct watch *w;
	uint64_t t0;

	write_text(f, "key.pem", "k");
	w = watch_one(f, "key.pem", 60 * 1000);
	replace(f, "key.pem", "new");
	t0 = now_ms();
	watch_free(w);
	assert_int_equal(f->calls, 1);
	assert_true(now_ms() - t0 < 1000);
}

static void test_watch_new_fails_with_a_reason_when_nothing_can_be_watched(void **state)
{
	struct fixture *f = *state;
	const char *paths[2] = { "/nonexistent-mqtls-dir/cert.pem", "/nonexistent-mqtls-dir/key.pem" };
	char err[256] = "";

	assert_null(watch_new(paths, 2, QUIET_MS, on_change, f, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot watch"));
	assert_null(watch_new(paths, 0, QUIET_MS, on_change, f, err, sizeof(err)));
	watch_free(NULL);
	assert_int_equal(f->calls, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_watch_reports_a_file_replaced_by_rename_once_after_the_quiet_time),
		T(test_watch_reports_a_file_written_in_place),
		T(test_watch_reports_a_burst_of_changes_once_after_the_last),
		T(test_watch_ignores_other_files_in_the_same_directory),
		T(test_watch_reports_a_kubernetes_data_symlink_swap),
		T(test_watch_follows_a_symlink_to_a_file_rewritten_in_place),
		T(test_watch_free_reports_a_change_still_in_its_quiet_time),
		T(test_watch_new_fails_with_a_reason_when_nothing_can_be_watched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
