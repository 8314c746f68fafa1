/*
 * A small thread pool for work that must not stall an event loop (slow
 * password hashes, signature checks). A job runs on a pool thread and then
 * comes home: its `done` callback runs on the event loop that submitted it,
 * through that loop's pool_home.
 */
#ifndef PROXY_POOL_H
#define PROXY_POOL_H

#include <pthread.h>

#include <event2/event.h>
#include <event2/event_struct.h>

struct pool_home;

struct pool_job {
	void (*run)(struct pool_job *job);    /* on a pool thread */
	void (*done)(struct pool_job *job);   /* on the submitting loop */
	struct pool_home *home;               /* borrowed */
	struct pool_job *next;
};

/* The completion queue of one event loop; embedded in the worker. */
struct pool_home {
	pthread_mutex_t lock;
	struct pool_job *head, *tail;
	struct event ev;
};

struct pool;

/* Starts |threads| threads. Returns NULL on failure. */
struct pool *pool_new(int threads);
/* Stops the threads once the jobs that are running finish; queued jobs are
 * not run. Every job's `done` callback is queued to its home but not run.
 * pool_free(NULL) is a no-op. */
void pool_free(struct pool *p);
/* Queues |job| (borrowed until its `done` ran); job->home must be set. */
void pool_submit(struct pool *p, struct pool_job *job);
/* Takes |job| back if no thread has started it: returns 1 and the job is
 * the caller's again (its `done` will not run); 0 if it is running or
 * done, and comes home as usual. */
int pool_cancel(struct pool *p, struct pool_job *job);

int pool_home_init(struct pool_home *h, struct event_base *base);
/* Runs the `done` callbacks of jobs that came home; for shutdown. */
void pool_home_drain(struct pool_home *h);
void pool_home_cleanup(struct pool_home *h);

#endif
