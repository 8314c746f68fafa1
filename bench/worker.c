/*
 * One mqtls-bench thread (worker.h): paces new connections, frees closed
 * clients, and decides when its part of the scenario is over.
 */
#include "bench/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/client.h"
#include "bench/client_msg.h"

/* How often the pacing timer runs while connections remain to be opened,
 * and afterwards, when it only frees closed clients. */
#define TICK_PACING_US 1000
#define TICK_IDLE_US 100000

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct bench_worker *worker_from_arg(void *arg)
{
	struct bench_worker *w = arg;

	if (w->magic != WORKER_MAGIC)
		abort();
	return w;
}

static void free_dead(struct bench_worker *w)
{
	struct bench_client *c = w->dead, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		bench_client_free(c);
	}
	w->dead = NULL;
}

/* Ends the run of this worker: everyone still connected disconnects. */
static void finish(struct bench_worker *w)
{
	struct bench_client *c, *next;

	if (w->ending)
		return;
	w->ending = 1;
	if (w->publishing && w->t_msg_end_ns == 0)
		w->t_msg_end_ns = bench_now_ns();
	for (c = w->live; c != NULL; c = next) {
		next = c->next;
		bench_client_disconnect(c);
	}
	event_base_loopbreak(w->base);
}

static void add_timer(struct event *ev, double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	event_add(ev, &tv);
}

/* Every client is connected (and subscribed): publishers may begin. They
 * are counted before any starts, since a short run can end inside a start. */
static void start_publishing(struct bench_worker *w)
{
	struct bench_client *c, *next;

	w->publishing = 1;
	w->t_msg_start_ns = bench_now_ns();
	for (c = w->live; c != NULL; c = c->next)
		if (c->msg != NULL && c->msg->role == ROLE_PUB && c->state == CLIENT_CONNECTED)
			w->pubs_running++;
	if (w->opt->duration > 0) {
		w->holding = 1;
		add_timer(&w->end_timer, w->opt->duration);
	}
	for (c = w->live; c != NULL; c = next) {
		next = c->next;
		bench_msg_start(c);
	}
}

/* End of --duration. A pubsub run stops its publishers and still waits
 * (--timeout at most) for what is on its way to the subscribers. */
static void on_end_timer(evutil_socket_t fd, short what, void *arg)
{
	struct bench_worker *w = worker_from_arg(arg);
	struct bench_client *c, *next;

	if (w->opt->scenario == SCENARIO_PUBSUB && w->publishing && !w->draining) {
		for (c = w->live; c != NULL; c = next) {
			next = c->next;
			bench_msg_stop(c);
		}
		if (!w->draining) {
			w->draining = 1;
			add_timer(&w->end_timer, w->opt->timeout);
		}
		return;
	}
	finish(w);
}

/* The publishing phase of pub and pubsub: start it once everyone is ready,
 * end it once every publisher is done. */
static void check_messages(struct bench_worker *w)
{
	if (!w->publishing)
		start_publishing(w);
	if (w->ending || w->pubs_running > 0)
		return;
	if (w->t_msg_end_ns == 0)
		w->t_msg_end_ns = bench_now_ns();
	if (w->opt->scenario == SCENARIO_PUB || w->stats.unique >= w->stats.published) {
		finish(w);
		return;
	}
	if (!w->draining) {
		w->draining = 1;
		add_timer(&w->end_timer, w->opt->timeout);
	}
}

/* Looks whether the scenario is over for this worker, or (idle, sub)
 * whether the hold period can start. */
static void check_end(struct bench_worker *w)
{
	const struct bench_options *o = w->opt;

	if (w->ending)
		return;
	if (w->finished == w->count) {
		finish(w);
		return;
	}
	if (w->started < w->count || w->in_flight > 0)
		return;
	/* Everyone has reached CONNACK (and SUBACK) or failed. */
	switch (o->scenario) {
	case SCENARIO_IDLE:
	case SCENARIO_SUB:
		if (!w->holding) {
			w->holding = 1;
			add_timer(&w->end_timer, o->duration);
		}
		return;
	case SCENARIO_PUB:
	case SCENARIO_PUBSUB:
		check_messages(w);
		return;
	case SCENARIO_CONN:
		if (!o->churn && o->hold <= 0)
			finish(w);
		return;
	}
}

void bench_worker_publisher_done(struct bench_worker *w)
{
	if (w->pubs_running > 0)
		w->pubs_running--;
	if (w->pubs_running == 0)
		check_end(w);
}

void bench_worker_message_received(struct bench_worker *w)
{
	if (w->draining && !w->ending && w->stats.unique >= w->stats.published)
		finish(w);
}

void bench_worker_stop(struct bench_worker *w)
{
	atomic_store(&w->stop, 1);
}

/* Opens the connections that are due by the rate, within the concurrency. */
static void fill(struct bench_worker *w)
{
	uint64_t due = w->count;
	double elapsed;

	/* A client that fails at once calls back into here; the outer call's
	 * loop carries on, so recursion never grows with the count. */
	if (w->ending || w->filling)
		return;
	w->filling = 1;
	if (w->rate > 0) {
		elapsed = (double)(bench_now_ns() - w->t_start_ns) / 1e9;
		due = (uint64_t)(elapsed * w->rate) + 1;
		if (due > w->count)
			due = w->count;
	}
	while (w->started < due && w->in_flight < w->concurrency && !w->ending) {
		uint32_t index = w->first_index + w->started;

		w->started++;
		w->in_flight++;
		if (!bench_client_start(w, index)) {
			/* Out of memory: count it and give up on this one. */
			w->in_flight--;
			w->finished++;
			bench_stats_error(&w->stats, BERR_TCP_OTHER);
		}
	}
	w->filling = 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bench_worker *w = worker_from_arg(arg);
	struct timeval tv = { 0, TICK_IDLE_US };

	free_dead(w);
	if (atomic_load(&w->stop))
		finish(w);
	fill(w);
	check_end(w);
	if (w->ending)
		return;
	if (w->started < w->count)
		tv.tv_usec = TICK_PACING_US;
	event_add(&w->tick, &tv);
}

void bench_worker_client_connected(struct bench_worker *w)
{
	w->in_flight--;
	fill(w);
	check_end(w);
}

void bench_worker_client_closed(struct bench_worker *w, struct bench_client *c, int was_pending)
{
	/* Move from the live list to the dead one; freed on the next tick. */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = w->dead;
	w->dead = c;

	if (was_pending)
		w->in_flight--;
	w->finished++;
	fill(w);
	check_end(w);
}

int bench_worker_init(struct bench_worker *w, int id, const struct bench_options *o,
                SSL_CTX *const *ctxs, size_t n_ctx, const struct jwt_minter *minter,
                const struct sockaddr_storage *addr, socklen_t addr_len,
                uint32_t first_index, uint32_t count, double rate, uint32_t concurrency)
{
	memset(w, 0, sizeof(*w));
	w->magic = WORKER_MAGIC;
	w->id = id;
	w->opt = o;
	w->ssl_ctxs = ctxs;
	w->n_ssl_ctxs = n_ctx;
	w->minter = minter;
	memcpy(&w->addr, addr, sizeof(w->addr));
	w->addr_len = addr_len;
	w->first_index = first_index;
	w->count = count;
	w->rate = rate;
	w->concurrency = concurrency > 0 ? concurrency : 1;
	if (!bench_stats_init(&w->stats))
		return 0;
	w->base = event_base_new();
	if (w->base == NULL)
		return 0;
	if (bench_scenario_messages(o->scenario)) {
		w->payload = malloc(o->payload > 0 ? (size_t)o->payload : 1);
		if (w->payload == NULL)
			return 0;
		memset(w->payload, 'x', o->payload > 0 ? (size_t)o->payload : 1);
	}
	if (o->scenario == SCENARIO_PUBSUB && o->window > 0) {
		w->first_pair = first_index / 2;
		w->n_pairs = (first_index + count + 1) / 2 - w->first_pair + 1;
		w->pair_rx = calloc(w->n_pairs, sizeof(*w->pair_rx));
		w->pair_pub = calloc(w->n_pairs, sizeof(*w->pair_pub));
		if (w->pair_rx == NULL || w->pair_pub == NULL)
			return 0;
	}
	event_assign(&w->tick, w->base, -1, 0, on_tick, w);
	event_assign(&w->end_timer, w->base, -1, 0, on_end_timer, w);
	return 1;
}

static void *worker_main(void *arg)
{
	struct bench_worker *w = worker_from_arg(arg);
	struct timeval now = { 0, 0 };

	w->t_start_ns = bench_now_ns();
	if (w->count > 0) {
		event_add(&w->tick, &now);
		event_base_dispatch(w->base);
		free_dead(w);
	}
	atomic_store(&w->done, 1);
	return NULL;
}

int bench_worker_start(struct bench_worker *w)
{
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return 0;
	w->thread_started = 1;
	return 1;
}

void bench_worker_join(struct bench_worker *w)
{
	if (w->thread_started)
		pthread_join(w->thread, NULL);
	w->thread_started = 0;
}

void bench_worker_cleanup(struct bench_worker *w)
{
	struct bench_client *c, *next;

	if (w->magic != WORKER_MAGIC)
		return;
	for (c = w->live; c != NULL; c = next) {
		next = c->next;
		bench_client_disconnect(c);
	}
	free_dead(w);
	if (w->base != NULL) {
		event_del(&w->tick);
		event_del(&w->end_timer);
		event_base_free(w->base);
	}
	bench_stats_cleanup(&w->stats);
	free(w->payload);
	free(w->pair_rx);
	free(w->pair_pub);
	SSL_SESSION_free(w->session);
	w->magic = 0;
}
