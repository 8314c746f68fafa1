/*
 * The thread pool for slow checks and its way home (proxy/pool.c).
 *
 * Every wait on the event loop is bounded by a deadline timer, so a job
 * that never comes home fails the test instead of hanging it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "proxy/pool.h"

#define DEADLINE_S 10

struct test_job {
	struct pool_job base;      /* first: the pool hands this pointer back */
	pthread_t run_thread;
	pthread_t done_thread;
	int runs;                  /* written on a pool thread */
	int dones;                 /* written on the loop thread */
	int *done_counter;         /* borrowed: counted on the home's loop */
	int free_in_done;          /* heap job that frees itself when done */
	unsigned sleep_us;
};

#define THREADS 3

static int runs_total;         /* updated atomically by pool threads */
static int starts_total;       /* the same, when a run begins */

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void job_run(struct pool_job *pj)
{
	struct test_job *j = (struct test_job *)pj;

	__atomic_add_fetch(&starts_total, 1, __ATOMIC_RELEASE);
	if (j->sleep_us)
		sleep_us(j->sleep_us);
	j->run_thread = pthread_self();
	__atomic_add_fetch(&j->runs, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&runs_total, 1, __ATOMIC_RELEASE);
}

static void job_done(struct pool_job *pj)
{
	struct test_job *j = (struct test_job *)pj;

	j->done_thread = pthread_self();
	j->dones++;
	(*j->done_counter)++;
	if (j->free_in_done) {
		/* As a session's auth job does: the completion owns the job. */
		assert_int_equal(j->runs, 1);
		assert_int_equal(j->dones, 1);
		free(j);
	}
}

static void job_init(struct test_job *j, struct pool_home *home, int *counter)
{
	memset(j, 0, sizeof(*j));
	j->base.run = job_run;
	j->base.done = job_done;
	j->base.home = home;
	j->done_counter = counter;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs |base| until |*counter| reaches |target| or the deadline passes;
 * returns 1 if the target was reached. Asserts nothing, so that a loop on
 * another thread may use it too. */
static int loop_until(struct event_base *base, const int *counter, int target)
{
	int timed_out = 0, ok;
	struct timeval tv = { DEADLINE_S, 0 };
	struct event *deadline = evtimer_new(base, on_deadline, &timed_out);

	if (deadline == NULL || evtimer_add(deadline, &tv) != 0) {
		event_free(deadline);
		return 0;
	}
	while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < target && !timed_out) {
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			break;
	}
	event_free(deadline);
	ok = __atomic_load_n(counter, __ATOMIC_ACQUIRE) >= target;
	return ok;
}

/* Waits, off the loop, until |*counter| reaches |target|; 1 if it did. */
static int spin_until(const int *counter, int target)
{
	for (int i = 0; i < DEADLINE_S * 1000; i++) {
		if (__atomic_load_n(counter, __ATOMIC_ACQUIRE) >= target)
			return 1;
		sleep_us(1000);
	}
	return 0;
}

struct fixture {
	struct event_base *base;
	struct pool_home home;
	int home_cleaned;
	struct pool *pool;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->base = event_base_new()) == NULL || !pool_home_init(&f->home, f->base) ||
	    (f->pool = pool_new(THREADS)) == NULL)
		return -1;
	__atomic_store_n(&runs_total, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&starts_total, 0, __ATOMIC_RELEASE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pool_free(f->pool);
	if (!f->home_cleaned)
		pool_home_cleanup(&f->home);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void test_pool_runs_a_job_on_a_pool_thread_and_completes_it_on_the_loop(void **state)
{
	struct fixture *f = *state;
	struct test_job j;
	int done = 0;

	job_init(&j, &f->home, &done);
	pool_submit(f->pool, &j.base);
	assert_true(spin_until(&j.runs, 1));
	/* The job ran, but its completion waits for the loop. */
	assert_int_equal(done, 0);
	assert_true(loop_until(f->base, &done, 1));
	assert_int_equal(j.runs, 1);
	assert_int_equal(j.dones, 1);
	assert_false(pthread_equal(j.run_thread, pthread_self()));
	assert_true(pthread_equal(j.done_thread, pthread_self()));
}

#define SUBMITTERS 3
#define PER_SUBMITTER 300

struct submitter {
	struct pool *pool;
	struct pool_home *home;
	int *done;
	int failed;
};

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;

	for (int i = 0; i < PER_SUBMITTER; i++) {
		struct test_job *j = malloc(sizeof(*j));

		if (j == NULL) {
			s->failed = 1;
			return NULL;
		}
		job_init(j, s->home, s->done);
		j->free_in_done = 1;
		j->sleep_us = i % 50 == 0 ? 200 : 0;
		pool_submit(s->pool, &j->base);
	}
	return NULL;
}

/* Submitters on other threads, completions on this loop: every job runs
 * once and comes home once (job_done checks each one as it frees it). */
static void test_pool_brings_every_job_from_several_submitters_home_exactly_once(void **state)
{
	struct fixture *f = *state;
	struct submitter s[SUBMITTERS];
	pthread_t t[SUBMITTERS];
	int done = 0;

	for (int i = 0; i < SUBMITTERS; i++) {
		s[i] = (struct submitter){ f->pool, &f->home, &done, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, submitter_main, &s[i]), 0);
	}
	assert_true(loop_until(f->base, &done, SUBMITTERS * PER_SUBMITTER));
	for (int i = 0; i < SUBMITTERS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(s[i].failed, 0);
	}
	assert_int_equal(done, SUBMITTERS * PER_SUBMITTER);
	assert_int_equal(__atomic_load_n(&runs_total, __ATOMIC_ACQUIRE), SUBMITTERS * PER_SUBMITTER);
	/* Nothing more arrives afterwards. */
	pool_home_drain(&f->home);
	assert_int_equal(done, SUBMITTERS * PER_SUBMITTER);
}

#define TWO_LOOP_JOBS 200

struct other_loop {
	struct event_base *base;
	struct pool_home home;
	int done;
	int reached;
	pthread_t thread;
};

static void *other_loop_main(void *arg)
{
	struct other_loop *o = arg;

	o->thread = pthread_self();
	o->reached = loop_until(o->base, &o->done, TWO_LOOP_JOBS);
	return NULL;
}

/* Two workers share one pool: each job comes back to its own loop. */
static void test_pool_brings_each_job_home_to_its_own_loop(void **state)
{
	struct fixture *f = *state;
	struct other_loop o = { 0 };
	struct test_job *jobs = calloc(2 * TWO_LOOP_JOBS, sizeof(*jobs));
	pthread_t t;
	int done = 0;

	assert_non_null(jobs);
	assert_non_null(o.base = event_base_new());
	assert_true(pool_home_init(&o.home, o.base));
	assert_int_equal(pthread_create(&t, NULL, other_loop_main, &o), 0);
	for (int i = 0; i < 2 * TWO_LOOP_JOBS; i++) {
		if (i % 2)
			job_init(&jobs[i], &o.home, &o.done);
		else
			job_init(&jobs[i], &f->home, &done);
		pool_submit(f->pool, &jobs[i].base);
	}
	assert_true(loop_until(f->base, &done, TWO_LOOP_JOBS));
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(o.reached);
	for (int i = 0; i < 2 * TWO_LOOP_JOBS; i++) {
		assert_int_equal(jobs[i].runs, 1);
		assert_int_equal(jobs[i].dones, 1);
		assert_true(pthread_equal(jobs[i].done_thread, i % 2 ? o.thread : pthread_self()));
	}
	pool_home_cleanup(&o.home);
	event_base_free(o.base);
	free(jobs);
}

/* Shutdown: pool_free waits for the jobs that are running but does not run
 * the queued ones (a backlog of slow hashes must not hold the process past
 * its stop deadline); every job still comes home exactly once, and the
 * completions wait in the home until it is drained. */
static void test_pool_free_skips_queued_jobs_and_brings_every_job_home(void **state)
{
	struct fixture *f = *state;
	struct test_job jobs[40];
	int done = 0, ran;

	for (size_t i = 0; i < 40; i++) {
		job_init(&jobs[i], &f->home, &done);
		jobs[i].sleep_us = 20000;
		pool_submit(f->pool, &jobs[i].base);
	}
	pool_free(f->pool);
	f->pool = NULL;
	ran = __atomic_load_n(&runs_total, __ATOMIC_ACQUIRE);
	/* At most what the threads had started, and at most one more each if a
	 * thread took its next job just before the stop. */
	assert_in_range(ran, 0, 2 * THREADS);
	for (size_t i = 0; i < 40; i++)
		assert_in_range(jobs[i].runs, 0, 1);
	assert_int_equal(done, 0);
	pool_home_drain(&f->home);
	assert_int_equal(done, 40);
	for (size_t i = 0; i < 40; i++) {
		assert_int_equal(jobs[i].dones, 1);
		assert_true(pthread_equal(jobs[i].done_thread, pthread_self()));
	}
}

/* A job no thread has started can be taken back: it never runs and never
 * comes home; one already running cannot, and comes home as usual. */
static void test_pool_cancel_takes_back_only_jobs_not_started(void **state)
{
	struct fixture *f = *state;
	struct test_job busy[THREADS], queued;
	int done = 0;

	for (size_t i = 0; i < THREADS; i++) {
		job_init(&busy[i], &f->home, &done);
		busy[i].sleep_us = 200000;
		pool_submit(f->pool, &busy[i].base);
	}
	/* Every thread is inside a 200 ms job now. */
	assert_true(spin_until(&starts_total, THREADS));
	job_init(&queued, &f->home, &done);
	pool_submit(f->pool, &queued.base);
	assert_int_equal(pool_cancel(f->pool, &queued.base), 1);
	assert_int_equal(pool_cancel(f->pool, &busy[0].base), 0);
	pool_free(f->pool);
	f->pool = NULL;
	pool_home_drain(&f->home);
	assert_int_equal(queued.runs, 0);
	assert_int_equal(queued.dones, 0);
	assert_int_equal(done, THREADS);
}

static void test_pool_home_drain_runs_pending_completions_once(void **state)
{
	struct fixture *f = *state;
	struct test_job jobs[5];
	int done = 0;

	for (size_t i = 0; i < 5; i++) {
		job_init(&jobs[i], &f->home, &done);
		pool_submit(f->pool, &jobs[i].base);
	}
	assert_true(spin_until(&runs_total, 5));
	/* run() counted before the job was queued home: wait for the queue. */
	for (int i = 0; i < 1000 && done < 5; i++) {
		pool_home_drain(&f->home);
		if (done < 5)
			sleep_us(1000);
	}
	assert_int_equal(done, 5);
	pool_home_drain(&f->home);
	assert_int_equal(done, 5);
	/* The wake-up already sent finds an empty queue: nothing runs twice. */
	event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(done, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(jobs[i].dones, 1);
}

static void test_pool_home_cleanup_runs_pending_completions(void **state)
{
	struct fixture *f = *state;
	struct test_job j;
	int done = 0;

	job_init(&j, &f->home, &done);
	pool_submit(f->pool, &j.base);
	pool_free(f->pool);
	f->pool = NULL;
	pool_home_cleanup(&f->home);
	f->home_cleaned = 1;
	assert_int_equal(done, 1);
	assert_int_equal(j.dones, 1);
}

static void test_pool_new_without_threads_fails(void **state)
{
	assert_null(pool_new(0));
}

static void test_pool_free_of_null_is_a_no_op(void **state)
{
	pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pool_runs_a_job_on_a_pool_thread_and_completes_it_on_the_loop,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_brings_every_job_from_several_submitters_home_exactly_once,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_brings_each_job_home_to_its_own_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_free_skips_queued_jobs_and_brings_every_job_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_cancel_takes_back_only_jobs_not_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_home_drain_runs_pending_completions_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_home_cleanup_runs_pending_completions, setup, teardown),
		cmocka_unit_test(test_pool_new_without_threads_fails),
		cmocka_unit_test(test_pool_free_of_null_is_a_no_op),
	};

	/* event_active from a pool thread must wake the loop. */
	if (evthread_use_pthreads() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
