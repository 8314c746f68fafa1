/*
 * The JWKS fetcher's thread, its key sets and its waiting checks; see
 * jwks_fetch.h.
 */
#include "proxy/auth/jwks_fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "proxy/log.h"

/* How much of the kid list a log line shows. */
#define KIDS_LOG_MAX 400

struct jwks_fetch {
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* CLOCK_MONOTONIC: work to do, or a fetch ended */
	pthread_t thread;
	int started;                    /* the thread runs (until joined) */
	int cancel_fd;                  /* eventfd: readable once stopping */

	/* Under the lock. */
	int stopping;
	int want;                       /* an unknown kid asked for a fetch */
	int fetching;
	uint64_t attempts;              /* fetches that ended and were logged */
	uint64_t next_due_ms;           /* monotonic */
	int kid_fetched;                /* last_kid_ms is set */
	uint64_t last_kid_ms;
	uint32_t retry_s;               /* the last failure's retry delay, 0 after a success */
	struct jwks_keys *keys;         /* owned reference, or NULL */
	uint64_t gen;                   /* of |keys|; 0 before the first */
	struct jwks_waiter *waiters;    /* borrowed: parked checks, until woken or taken back */
	char url_text[HTTPS_MAX_URL];   /* the JWK Set's, for logs */

	/* The fetcher thread's own. */
	struct jwks_source src;
	uint32_t refresh_min_s, refresh_max_s, kid_refetch_s;
	enum jwks_result (*fetch)(void *arg, struct jwt_keyset **out, int64_t *fresh_s, char *why,
	                          size_t whylen);
	void *fetch_arg;

	/* Metrics: read by the metrics thread. */
	_Atomic uint64_t fetch_total[JWKS_RESULT_COUNT];
	_Atomic uint64_t refetch_limited;
	_Atomic uint64_t n_keys;
	_Atomic int64_t fetched_at;     /* 0 before the first success */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- key sets -------------------------------------------------------------- */

struct jwks_keys *jwks_keys_ref(struct jwks_keys *k)
{
	if (k)
		__atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

void jwks_keys_unref(struct jwks_keys *k)
{
	if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	jwt_keyset_free(k->set);
	free(k);
}

/* ---- the thread ------------------------------------------------------------ */

/* The fetch the thread runs unless a test replaced it; the URL for the
 * log lines may change with discovery. */
static enum jwks_result source_fetch(void *arg, struct jwt_keyset **out, int64_t *fresh_s,
                                     char *why, size_t whylen)
{
	struct jwks_fetch *f = arg;
	enum jwks_result r = jwks_source_fetch(&f->src, out, fresh_s, why, whylen);
	char url[sizeof(f->url_text)];

	jwks_source_url(&f->src, url, sizeof(url));
	pthread_mutex_lock(&f->lock);
	memcpy(f->url_text, url, sizeof(url));
	pthread_mutex_unlock(&f->lock);
	return r;
}

/* "k1,k2,..." for the log, each kid escaped; "-" for a key without one. */
static void kid_list(const struct jwt_keyset *ks, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < jwt_keyset_count(ks) && o + 4 < cap; i++) {
		const char *kid = jwt_keyset_get0(ks, i)->kid;
		char one[80];

		log_escape(one, sizeof(one), kid ? kid : "-", kid ? strlen(kid) : 1);
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", one);
	}
	if (o >= cap)
		out[cap - 1] = '\0';
}

static uint32_t clamp_fresh(const struct jwks_fetch *f, int64_t fresh_s)
{
	if (fresh_s < (int64_t)f->refresh_min_s)
		return f->refresh_min_s;
	if (fresh_s > (int64_t)f->refresh_max_s)
		return f->refresh_max_s;
	return (uint32_t)fresh_s;
}

/* Installs |k| (a new set, owned) after a success; under the lock.
 * Returns the set it replaces, for the caller to drop outside the lock. */
static struct jwks_keys *install(struct jwks_fetch *f, struct jwks_keys *k)
{
	struct jwks_keys *old = f->keys;

	k->gen = ++f->gen;
	f->keys = k;
	atomic_store(&f->n_keys, jwt_keyset_count(k->set));
	atomic_store(&f->fetched_at, k->fetched_at);
	return old;
}

/* Logs the outcome of one fetch, outside the lock. */
static void log_outcome(struct jwks_fetch *f, enum jwks_result r, const struct jwt_keyset *set,
                        const char *why, uint32_t next_s, size_t kept, int64_t kept_at)
{
	char url[sizeof(f->url_text)], kids[KIDS_LOG_MAX], detail[400];

	jwks_fetch_url(f, url, sizeof(url));
	if (r == JWKS_OK) {
		kid_list(set, kids, sizeof(kids));
		log_info("jwks status=loaded keys=%zu kids=\"%s\" url=\"%s\" next_refresh_s=%u",
		         jwt_keyset_count(set), kids, url, next_s);
		return;
	}
	log_escape(detail, sizeof(detail), why, strlen(why));
	if (kept > 0)
		log_warn("jwks status=failed result=%s url=\"%s\" detail=\"%s\" next_try_s=%u "
		         "keeping_keys=%zu keys_age_s=%lld", jwks_result_name(r), url, detail, next_s, kept,
		         (long long)((int64_t)time(NULL) - kept_at));
	else
		log_warn("jwks status=failed result=%s url=\"%s\" detail=\"%s\" next_try_s=%u keys=0 "
		         "logins=\"token logins are refused with server unavailable until keys arrive\"",
		         jwks_result_name(r), url, detail, next_s);
}

static void wake_all(struct jwks_waiter *w)
{
	while (w) {
		/* The waiter may be gone as soon as it is woken. */
		struct jwks_waiter *next = w->next;

		w->wake(w);
		w = next;
	}
}

/* Runs one fetch (the lock held on entry and on return). */
static void fetch_once(struct jwks_fetch *f)
{
	struct jwt_keyset *set = NULL;
	struct jwks_keys *old = NULL, *fresh = NULL;
	struct jwks_waiter *woken;
	enum jwks_result r;
	int64_t fresh_s = -1, kept_at = 0;
	uint32_t next_s;
	size_t kept = 0;
	char why[400] = "";

	f->want = 0;
	f->fetching = 1;
	pthread_mutex_unlock(&f->lock);
	r = f->fetch(f->fetch_arg, &set, &fresh_s, why, sizeof(why));
	if (r == JWKS_OK) {
		fresh = calloc(1, sizeof(*fresh));
		if (fresh == NULL) {
			jwt_keyset_free(set);
			set = NULL;
			r = JWKS_MALFORMED;
			snprintf(why, sizeof(why), "out of memory");
		} else {
			fresh->refs = 1;
			fresh->set = set;
			fresh->fetched_at = (int64_t)time(NULL);
		}
	}
	pthread_mutex_lock(&f->lock);
	f->fetching = 0;
	if (r == JWKS_OK) {
		next_s = clamp_fresh(f, fresh_s);
		f->retry_s = 0;
	} else {
		uint32_t cap = f->refresh_min_s < JWKS_RETRY_MAX_S ? f->refresh_min_s : JWKS_RETRY_MAX_S;

		next_s = f->retry_s == 0 ? 1 : f->retry_s * 2;
		if (next_s > cap)
			next_s = cap;
		f->retry_s = next_s;
	}
	f->next_due_ms = mono_ms() + (uint64_t)next_s * 1000;
	if (r != JWKS_CANCELLED)
		atomic_fetch_add(&f->fetch_total[r], 1);
	if (r == JWKS_OK)
		old = install(f, fresh);
	if (f->keys) {
		kept = jwt_keyset_count(f->keys->set);
		kept_at = f->keys->fetched_at;
	}
	woken = f->waiters;
	f->waiters = NULL;
	pthread_mutex_unlock(&f->lock);
	/* Logged before anyone hears of it: the log reads in order. */
	if (r != JWKS_CANCELLED)
		log_outcome(f, r, set, why, next_s, kept, kept_at);
	jwks_keys_unref(old);
	wake_all(woken);
	pthread_mutex_lock(&f->lock);
	f->attempts++;
	pthread_cond_broadcast(&f->cond);
}

static void *fetch_main(void *arg)
{
	struct jwks_fetch *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		uint64_t now = mono_ms();

		if (f->want || now >= f->next_due_ms) {
			fetch_once(f);
		} else {
			struct timespec ts = { (time_t)(f->next_due_ms / 1000),
			                       (long)(f->next_due_ms % 1000) * 1000000 };

			pthread_cond_timedwait(&f->cond, &f->lock, &ts);
		}
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* ---- the fetcher --------------------------------------------------------- */

struct jwks_fetch *jwks_fetch_new(const struct jwks_opts *o, char *err, size_t errlen)
{
	struct jwks_fetch *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;
	sigset_t all, old;

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->cancel_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	f->refresh_min_s = o->refresh_min_s;
	f->refresh_max_s = o->refresh_max_s;
	f->kid_refetch_s = o->kid_refetch_s ? o->kid_refetch_s : JWKS_KID_REFETCH_S;
	f->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->cancel_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto err;
	}
	f->fetch = o->fetch ? o->fetch : source_fetch;
	f->fetch_arg = o->fetch ? o->fetch_arg : f;
	if (o->fetch == NULL) {
		if (!jwks_source_init(&f->src, o->url, o->issuer, o->ca_file, f->cancel_fd, err, errlen))
			goto err;
		jwks_source_url(&f->src, f->url_text, sizeof(f->url_text));
	}
	/* The fetcher takes no signal: SIGPIPE from a peer that hung up is an
	 * EPIPE here, and SIGTERM/SIGHUP belong to main's sigwait. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	f->started = pthread_create(&f->thread, NULL, fetch_main, f) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!f->started) {
		snprintf(err, errlen, "cannot start the JWKS fetcher thread");
		goto err;
	}
	return f;
err:
	jwks_fetch_free(f);
	return NULL;
}

int jwks_fetch_start(const struct config *cfg, struct jwks_fetch **out, char *err, size_t errlen)
{
	struct jwks_opts o;

	*out = NULL;
	if (!jwks_configured(cfg))
		return 1;
	memset(&o, 0, sizeof(o));
	if (!jwks_refresh_parse(cfg->jwt_jwks_refresh ? cfg->jwt_jwks_refresh : JWKS_REFRESH_DEFAULT,
	                        &o.refresh_min_s, &o.refresh_max_s, err, errlen))
		return 0;
	o.url = cfg->jwt_jwks_url;
	o.issuer = cfg->jwt_discovery ? cfg->jwt_issuer : NULL;
	o.ca_file = cfg->jwt_jwks_ca;
	*out = jwks_fetch_new(&o, err, errlen);
	if (*out) {
		char url[sizeof((*out)->url_text)];

		jwks_fetch_url(*out, url, sizeof(url));
		log_info("jwks status=starting url=\"%s\" discovery=%s refresh=\"%u..%u\"", url,
		         cfg->jwt_discovery ? "on" : "off", o.refresh_min_s, o.refresh_max_s);
	}
	return *out != NULL;
}

int jwks_fetch_wait_first(struct jwks_fetch *f, int timeout_ms)
{
	struct timespec ts;
	uint64_t deadline;
	int ok, pending;

	if (f == NULL)
		return 1;
	deadline = mono_ms() + (uint64_t)timeout_ms;
	ts.tv_sec = (time_t)(deadline / 1000);
	ts.tv_nsec = (long)(deadline % 1000) * 1000000;
	pthread_mutex_lock(&f->lock);
	while (f->attempts == 0 && !f->stopping && mono_ms() < deadline)
		pthread_cond_timedwait(&f->cond, &f->lock, &ts);
	ok = f->keys != NULL;
	pending = f->attempts == 0;
	pthread_mutex_unlock(&f->lock);
	if (pending) {
		char url[sizeof(f->url_text)];

		jwks_fetch_url(f, url, sizeof(url));
		log_warn("jwks status=pending url=\"%s\" waited_ms=%d logins=\"token logins are refused "
		         "with server unavailable until keys arrive\"", url, timeout_ms);
	}
	return ok;
}

struct jwks_keys *jwks_fetch_current(struct jwks_fetch *f)
{
	struct jwks_keys *k;

	if (f == NULL)
		return NULL;
	pthread_mutex_lock(&f->lock);
	k = jwks_keys_ref(f->keys);
	pthread_mutex_unlock(&f->lock);
	return k;
}

enum jwks_park jwks_fetch_park(struct jwks_fetch *f, uint64_t seen_gen, struct jwks_waiter *w)
{
	enum jwks_park r = JWKS_NOT_PARKED;
	uint64_t now = mono_ms();

	if (f == NULL)
		return r;
	pthread_mutex_lock(&f->lock);
	if (f->stopping || f->gen == 0) {
		r = JWKS_NOT_PARKED;
	} else if (f->gen != seen_gen) {
		r = JWKS_RETRY;
	} else if (f->fetching || f->want) {
		r = JWKS_PARKED;
	} else if (f->kid_fetched && now - f->last_kid_ms < (uint64_t)f->kid_refetch_s * 1000) {
		atomic_fetch_add(&f->refetch_limited, 1);
		r = JWKS_NOT_PARKED;
	} else {
		f->kid_fetched = 1;
		f->last_kid_ms = now;
		f->want = 1;
		pthread_cond_broadcast(&f->cond);
		r = JWKS_PARKED;
	}
	if (r == JWKS_PARKED) {
		w->next = f->waiters;
		f->waiters = w;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

int jwks_fetch_unpark(struct jwks_fetch *f, struct jwks_waiter *w)
{
	struct jwks_waiter **link;
	int found = 0;

	if (f == NULL)
		return 0;
	pthread_mutex_lock(&f->lock);
	for (link = &f->waiters; *link; link = &(*link)->next) {
		if (*link == w) {
			*link = w->next;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return found;
}

void jwks_fetch_url(struct jwks_fetch *f, char *out, size_t cap)
{
	pthread_mutex_lock(&f->lock);
	snprintf(out, cap, "%s", f->url_text);
	pthread_mutex_unlock(&f->lock);
}

void jwks_fetch_stop(struct jwks_fetch *f)
{
	struct jwks_waiter *woken;
	uint64_t one = 1;
	int join;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	join = f->started;
	f->started = 0;
	f->stopping = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->cancel_fd >= 0 && write(f->cancel_fd, &one, sizeof(one)) < 0)
		log_debug("jwks: cannot signal the fetcher: %s", strerror(errno));
	if (join)
		pthread_join(f->thread, NULL);
	pthread_mutex_lock(&f->lock);
	woken = f->waiters;
	f->waiters = NULL;
	pthread_mutex_unlock(&f->lock);
	wake_all(woken);
}

void jwks_fetch_free(struct jwks_fetch *f)
{
	if (f == NULL)
		return;
	jwks_fetch_stop(f);
	jwks_keys_unref(f->keys);
	if (f->cancel_fd >= 0)
		close(f->cancel_fd);
	jwks_source_cleanup(&f->src);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void jwks_fetch_metrics(struct evbuffer *o, struct jwks_fetch *f)
{
	int64_t at;

	if (f == NULL)
		return;
	evbuffer_add_printf(o, "# HELP mqtls_jwks_fetch_total JWKS fetches from the identity provider, by result.\n"
	                       "# TYPE mqtls_jwks_fetch_total counter\n");
	for (int r = 0; r < JWKS_CANCELLED; r++)
		evbuffer_add_printf(o, "mqtls_jwks_fetch_total{result=\"%s\"} %llu\n", jwks_result_name((enum jwks_result)r),
		                    (unsigned long long)atomic_load(&f->fetch_total[r]));
	evbuffer_add_printf(o, "# HELP mqtls_jwks_refetch_limited_total Unknown-kid refetches refused by the rate limit.\n"
	                       "# TYPE mqtls_jwks_refetch_limited_total counter\n"
	                       "mqtls_jwks_refetch_limited_total %llu\n",
	                    (unsigned long long)atomic_load(&f->refetch_limited));
	evbuffer_add_printf(o, "# HELP mqtls_jwks_keys Keys in the key set fetched from the identity provider.\n"
	                       "# TYPE mqtls_jwks_keys gauge\nmqtls_jwks_keys %llu\n",
	                    (unsigned long long)atomic_load(&f->n_keys));
	at = atomic_load(&f->fetched_at);
	evbuffer_add_printf(o, "# HELP mqtls_jwks_age_seconds Seconds since the key set in use was fetched (-1: none yet).\n"
	                       "# TYPE mqtls_jwks_age_seconds gauge\nmqtls_jwks_age_seconds %lld\n",
	                    at ? (long long)((int64_t)time(NULL) - at) : -1LL);
}
