#include <pthread.h>
#include <stdlib.h>

#include "proxy/counts.h"
#include "proxy/limits.h"

/* Distinct addresses or identities with connections at once; beyond it a
 * new one is treated as over its limit. */
#define TABLE_ENTRIES 65536
/* Rate buckets: a fixed array, indexed by the address's key. */
#define RATE_SLOTS 16384

struct rate_slot {
	uint64_t key;           /* the address that owns the slot, 0 if none */
	uint64_t refill_ms;     /* when tokens were last topped up */
	uint32_t tokens;        /* connections still allowed, in thousandths */
};

struct limits {
	pthread_mutex_t lock;
	uint32_t per_ip, rate, per_identity;     /* 0: that limit is off */
	struct counts *ips;                      /* owned, or NULL */
	struct counts *ids;                      /* owned, or NULL */
	struct counts *keys;                     /* owned: only its keyed hash, for rate slots */
	struct rate_slot *slots;                 /* owned, or NULL */
};

struct limits *limits_new(const struct config *cfg, int *err)
{
	struct limits *l;

	*err = 0;
	if (cfg->max_conn_per_ip == 0 && cfg->conn_rate_per_ip == 0 && cfg->max_conn_per_identity == 0)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto oom;
	pthread_mutex_init(&l->lock, NULL);
	l->per_ip = (uint32_t)cfg->max_conn_per_ip;
	l->rate = (uint32_t)cfg->conn_rate_per_ip;
	l->per_identity = (uint32_t)cfg->max_conn_per_identity;
	if ((l->per_ip && (l->ips = counts_new(TABLE_ENTRIES)) == NULL) ||
	    (l->per_identity && (l->ids = counts_new(TABLE_ENTRIES)) == NULL) ||
	    (l->rate && ((l->slots = calloc(RATE_SLOTS, sizeof(*l->slots))) == NULL ||
	                 (l->keys = counts_new(1)) == NULL)))
		goto oom;
	return l;
oom:
	limits_free(l);
	*err = 1;
	return NULL;
}

void limits_free(struct limits *l)
{
	if (l == NULL)
		return;
	counts_free(l->ips);
	counts_free(l->ids);
	counts_free(l->keys);
	free(l->slots);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* A token bucket of |rate| a second and a burst of |rate|. */
static int rate_allows(struct limits *l, uint64_t key, uint64_t now)
{
	struct rate_slot *r = &l->slots[key % RATE_SLOTS];
	uint64_t full = (uint64_t)l->rate * 1000;

	if (r->key != key)
		*r = (struct rate_slot){ key, now, (uint32_t)full };
	if (now > r->refill_ms) {
		uint64_t t = r->tokens + (now - r->refill_ms) * l->rate;

		r->tokens = (uint32_t)(t < full ? t : full);
		r->refill_ms = now;
	}
	if (r->tokens < 1000)
		return 0;
	r->tokens -= 1000;
	return 1;
}

enum limit_verdict limits_conn_begin(struct limits *l, const struct sockaddr *sa, uint64_t now_ms)
{
	enum limit_verdict v = LIMIT_OK;

	if (l == NULL)
		return LIMIT_OK;
	pthread_mutex_lock(&l->lock);
	if (l->slots && !rate_allows(l, counts_key_addr(l->keys, COUNT_HANDSHAKE_IP, sa), now_ms))
		v = LIMIT_CONN_RATE;
	else if (l->ips && !counts_take(l->ips, counts_key_addr(l->ips, COUNT_HANDSHAKE_IP, sa), l->per_ip))
		v = LIMIT_CONN_PER_IP;
	pthread_mutex_unlock(&l->lock);
	return v;
}

void limits_conn_end(struct limits *l, const struct sockaddr *sa)
{
	if (l == NULL || l->ips == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	counts_give(l->ips, counts_key_addr(l->ips, COUNT_HANDSHAKE_IP, sa));
	pthread_mutex_unlock(&l->lock);
}

int limits_identity_take(struct limits *l, const char *id, size_t len)
{
	int ok;

	if (l == NULL || l->ids == NULL)
		return 1;
	pthread_mutex_lock(&l->lock);
	ok = counts_take(l->ids, counts_key(l->ids, COUNT_AUTH_USER, id, len), l->per_identity);
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void limits_identity_give(struct limits *l, const char *id, size_t len)
{
	if (l == NULL || l->ids == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	counts_give(l->ids, counts_key(l->ids, COUNT_AUTH_USER, id, len));
	pthread_mutex_unlock(&l->lock);
}
