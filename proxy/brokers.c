/*
 * The broker set: building it from the configuration, choosing a broker
 * for a session, and the passive half of health (what sessions report).
 * The active half and re-resolution run on the set's thread
 * (brokers_watch.c). See brokers.h for the rules.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/siphash.h>

#include "proxy/brokers_int.h"
#include "proxy/log.h"

/* Fixed, so that every replica and every restart weighs a client the same
 * way. Changing it would move most clients to another broker. */
static const uint64_t weight_key[2][2] = {
	{ 0x6d71746c73206272u, 0x6f6b657273207631u },   /* "mqtls br" "okers v1" */
	{ 0x72656e64657a766fu, 0x7573206877207631u },   /* "rendezvo" "us hw v1" */
};

uint64_t brokers_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- pure functions ------------------------------------------------------ */

uint32_t brokers_backoff_ms(uint32_t fails)
{
	uint32_t ms = BROKER_BACKOFF_FIRST_MS;

	for (uint32_t i = 1; i < fails && ms < BROKER_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BROKER_BACKOFF_MAX_MS ? ms : BROKER_BACKOFF_MAX_MS;
}

/* A broker's own SipHash key, derived from its --upstream text: the
 * weight of a client is then one SipHash of the client id, with no
 * buffer to join the two. */
static void broker_key(const char *spec, uint64_t out[2])
{
	size_t len = strlen(spec);

	out[0] = SIPHASH_24(weight_key[0], (const uint8_t *)spec, len);
	out[1] = SIPHASH_24(weight_key[1], (const uint8_t *)spec, len);
}

uint64_t brokers_weight(const char *spec, const void *key, size_t keylen)
{
	uint64_t k[2];

	broker_key(spec, k);
	return SIPHASH_24(k, key, keylen);
}

int brokers_choose(int n, enum broker_balance balance, const uint64_t *weights, unsigned down,
                   unsigned tried)
{
	/* First the brokers that are up, then, as a last resort, those
	 * marked down: a client is refused only when none answered it. */
	for (unsigned want_down = 0; want_down <= 1; want_down++) {
		int best = -1;

		for (int i = 0; i < n; i++) {
			unsigned bit = 1u << i;

			if ((tried & bit) || ((down & bit) != 0) != want_down)
				continue;
			if (balance == BALANCE_FIRST)
				return i;
			if (best < 0 || weights[i] > weights[best])
				best = i;
		}
		if (best >= 0)
			return best;
	}
	return -1;
}

/* ---- the set --------------------------------------------------------------- */

/* Whether |spec| names its host (re-resolved) rather than a literal
 * address or a unix socket. */
static int spec_is_name(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	char host[256];
	struct in_addr in;
	size_t len;

	if (strncmp(spec, "unix:", 5) == 0 || spec[0] == '[' || colon == NULL)
		return 0;
	len = (size_t)(colon - spec);
	if (len >= sizeof(host))
		return 1;
	memcpy(host, spec, len);
	host[len] = '\0';
	return inet_pton(AF_INET, host, &in) != 1;
}

static void release(struct brokers *b)
{
	for (int i = 0; i < CONFIG_MAX_LIST; i++)
		free(b->b[i].spec);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->wake_lock);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

struct brokers *brokers_new(const struct config *cfg, char *err, size_t errlen)
{
	struct brokers *b;
	pthread_condattr_t ca;
	char why[512];

	if (cfg->n_upstream < 1 || cfg->n_upstream > CONFIG_MAX_LIST) {
		snprintf(err, errlen, "--upstream: from 1 to %d brokers", CONFIG_MAX_LIST);
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->wake_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->wake, &ca);
	pthread_condattr_destroy(&ca);
	b->balance = cfg->upstream_balance && strcmp(cfg->upstream_balance, "clientid-hash") == 0
	           ? BALANCE_CLIENTID_HASH : BALANCE_FIRST;
	b->resolve_interval_ms = cfg->resolve_interval * 1000;
	for (int i = 0; i < cfg->n_upstream; i++) {
		struct broker *k = &b->b[i];
		const char *spec = cfg->upstream[i];

		for (int j = 0; j < i; j++) {
			if (strcmp(cfg->upstream[j], spec) == 0) {
				snprintf(err, errlen, "--upstream %s: given twice", spec);
				goto err;
			}
		}
		if (!address_parse(spec, 1, &k->addr, why, sizeof(why))) {
			snprintf(err, errlen, "--upstream %s", why);
			goto err;
		}
		if ((k->spec = strdup(spec)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto err;
		}
		k->by_name = spec_is_name(spec);
		broker_key(spec, k->hkey);
		b->n = i + 1;
	}
	return b;
err:
	release(b);
	return NULL;
}

int brokers_start(struct brokers *b, long probe_timeout_ms)
{
	b->probe_timeout_ms = probe_timeout_ms;
	if (pthread_create(&b->thread, NULL, brokers_watch_main, b) != 0)
		return 0;
	b->started = 1;
	return 1;
}

void brokers_free(struct brokers *b)
{
	if (b == NULL)
		return;
	if (b->started) {
		pthread_mutex_lock(&b->wake_lock);
		b->stop = 1;
		pthread_cond_signal(&b->wake);
		pthread_mutex_unlock(&b->wake_lock);
		pthread_join(b->thread, NULL);
	}
	release(b);
}

int brokers_count(const struct brokers *b)
{
	return b->n;
}

const char *brokers_spec(const struct brokers *b, int i)
{
	return b->b[i].spec;
}

void brokers_address(struct brokers *b, int i, struct address *out)
{
	/* A literal address (or any, without re-resolution) never changes
	 * after brokers_new: no lock on the common path. */
	if (!b->b[i].by_name || b->resolve_interval_ms == 0) {
		*out = b->b[i].addr;
		return;
	}
	pthread_mutex_lock(&b->lock);
	*out = b->b[i].addr;
	pthread_mutex_unlock(&b->lock);
}

int brokers_is_up(const struct brokers *b, int i)
{
	return atomic_load_explicit(&b->b[i].down_until, memory_order_relaxed) == 0;
}

uint64_t brokers_failures(const struct brokers *b, int i)
{
	return atomic_load_explicit(&b->b[i].failures, memory_order_relaxed);
}

void brokers_describe(const struct brokers *b, char *out, size_t cap)
{
	size_t used = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	for (int i = 0; i < b->n && used < cap; i++) {
		int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", b->b[i].spec);

		used += w > 0 ? (size_t)w : 0;
	}
	if (b->n > 1 && used < cap)
		snprintf(out + used, cap - used, " (%s)", b->balance == BALANCE_FIRST ? "first" : "clientid-hash");
}

/* ---- selection and passive health ----------------------------------------- */

int brokers_next(struct brokers *b, const void *key, size_t keylen, unsigned tried, struct address *out)
{
	uint64_t weights[CONFIG_MAX_LIST] = { 0 };
	unsigned down = 0;
	int i;

	for (i = 0; i < b->n; i++) {
		if (!brokers_is_up(b, i))
			down |= 1u << i;
		if (b->balance == BALANCE_CLIENTID_HASH)
			weights[i] = SIPHASH_24(b->b[i].hkey, key, keylen);
	}
	i = brokers_choose(b->n, b->balance, weights, down, tried);
	if (i >= 0)
		brokers_address(b, i, out);
	return i;
}

void brokers_mark_up(struct brokers *b, int i, const char *who)
{
	struct broker *k = &b->b[i];

	/* The usual case, a broker that is up, costs one plain load. */
	if (atomic_load_explicit(&k->down_until, memory_order_relaxed) == 0)
		return;
	if (atomic_exchange(&k->down_until, 0) == 0)
		return;
	atomic_store(&k->fails, 0);
	log_info("upstream broker=%s state=up seen_by=%s", k->spec, who);
}

void brokers_connected(struct brokers *b, int i)
{
	brokers_mark_up(b, i, "session");
}

void brokers_failed(struct brokers *b, int i)
{
	struct broker *k = &b->b[i];
	uint64_t up = 0, next = brokers_now_ms() + brokers_backoff_ms(1);

	atomic_fetch_add(&k->failures, 1);
	/* Only the session that finds it up marks it down: the others that
	 * fail on it meanwhile (a burst, when a broker dies under load) must
	 * not push its back-off to the cap at once. */
	if (atomic_load(&k->down_until) != 0 || !atomic_compare_exchange_strong(&k->down_until, &up, next))
		return;
	atomic_store(&k->fails, 1);
	log_warn("upstream broker=%s state=down next_probe_ms=%u", k->spec, brokers_backoff_ms(1));
	/* Once per change of state, not per connect: the watcher learns of a
	 * new deadline without polling for it. */
	pthread_mutex_lock(&b->wake_lock);
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->wake_lock);
}

void brokers_probe_failed(struct brokers *b, int i, uint64_t now)
{
	struct broker *k = &b->b[i];
	uint64_t cur = atomic_load(&k->down_until);
	uint32_t fails = atomic_load(&k->fails);

	atomic_fetch_add(&k->failures, 1);
	if (cur == 0)
		return;    /* a session reached it meanwhile: up it stays */
	if (fails < 32)
		fails++;
	atomic_store(&k->fails, fails);
	(void)atomic_compare_exchange_strong(&k->down_until, &cur, now + brokers_backoff_ms(fails));
	log_debug("upstream broker=%s probe=failed next_probe_ms=%u", k->spec, brokers_backoff_ms(fails));
}
