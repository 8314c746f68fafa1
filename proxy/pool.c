#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define POOL_NICE 10

#include "proxy/pool.h"

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *head, *tail;
	int stopping;
	int n_threads;
	pthread_t threads[];
};

static void push(struct pool_job **head, struct pool_job **tail, struct pool_job *job)
{
	job->next = NULL;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

static void go_home(struct pool_job *job)
{
	struct pool_home *h = job->home;
	int was_empty;

	pthread_mutex_lock(&h->lock);
	was_empty = h->head == NULL;
	push(&h->head, &h->tail, job);
	pthread_mutex_unlock(&h->lock);
	/* One wake-up per batch; event_active is thread-safe with evthread. */
	if (was_empty)
		event_active(&h->ev, EV_READ, 0);
}

static void *pool_main(void *arg)
{
	struct pool *p = arg;

	/* Slow checks yield the CPU to the event loops: on a small machine a
	 * login storm must not add scheduling delay to forwarded traffic. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), POOL_NICE);

	for (;;) {
		struct pool_job *job;
		int stopping;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		job = p->head;
		if (job) {
			p->head = job->next;
			if (p->head == NULL)
				p->tail = NULL;
		}
		stopping = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (job == NULL)
			return NULL;
		/* At shutdown the queue is emptied without running it: its
		 * clients are being closed, and a backlog of slow hashes must
		 * not hold the process past its stop deadline. */
		if (!stopping)
			job->run(job);
		go_home(job);
	}
}

struct pool *pool_new(int threads)
{
	struct pool *p = calloc(1, sizeof(*p) + (size_t)threads * sizeof(pthread_t));

	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0)
			break;
		p->n_threads++;
	}
	if (p->n_threads == 0) {
		pool_free(p);
		return NULL;
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void pool_submit(struct pool *p, struct pool_job *job)
{
	pthread_mutex_lock(&p->lock);
	push(&p->head, &p->tail, job);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int pool_cancel(struct pool *p, struct pool_job *job)
{
	struct pool_job **link, *prev = NULL;
	int found = 0;

	pthread_mutex_lock(&p->lock);
	for (link = &p->head; *link; prev = *link, link = &(*link)->next) {
		if (*link == job) {
			*link = job->next;
			if (p->tail == job)
				p->tail = prev;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return found;
}

void pool_home_drain(struct pool_home *h)
{
	struct pool_job *job;

	pthread_mutex_lock(&h->lock);
	job = h->head;
	h->head = h->tail = NULL;
	pthread_mutex_unlock(&h->lock);
	while (job) {
		struct pool_job *next = job->next;

		job->done(job);
		job = next;
	}
}

static void on_home(evutil_socket_t fd, short what, void *arg)
{
	pool_home_drain(arg);
}

int pool_home_init(struct pool_home *h, struct event_base *base)
{
	h->head = h->tail = NULL;
	if (pthread_mutex_init(&h->lock, NULL) != 0)
		return 0;
	return event_assign(&h->ev, base, -1, 0, on_home, h) == 0;
}

void pool_home_cleanup(struct pool_home *h)
{
	pool_home_drain(h);
	pthread_mutex_destroy(&h->lock);
}
