/*
 * Open addressing with linear probing; removal shifts the entries behind a
 * freed slot back (no tombstones), so a table that has seen millions of
 * keys probes as little as a fresh one.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>
#include <openssl/siphash.h>

#include "proxy/counts.h"

struct entry {
	uint64_t key;      /* 0: free */
	uint32_t count;
};

struct counts {
	uint64_t sip[2];
	size_t mask;       /* slots - 1; slots is a power of two */
	size_t used, max_used;
	struct entry slot[];
};

struct counts *counts_new(size_t entries)
{
	size_t slots = 16;
	struct counts *t;

	/* At most half full, so probes stay short. */
	while (slots < entries * 2)
		slots *= 2;
	t = calloc(1, sizeof(*t) + slots * sizeof(struct entry));
	if (t == NULL)
		return NULL;
	t->mask = slots - 1;
	t->max_used = entries;
	RAND_bytes((uint8_t *)t->sip, sizeof(t->sip));
	return t;
}

void counts_free(struct counts *t)
{
	free(t);
}

uint64_t counts_key(const struct counts *t, enum counts_kind kind, const void *p, size_t len)
{
	uint8_t buf[1 + 256];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
	uint64_t h;

	/* Longer names are cut: 255 bytes tell users apart well enough for a
	 * concurrency limit. */
	buf[0] = (uint8_t)kind;
	if (n > 0)
		memcpy(buf + 1, p, n);
	h = SIPHASH_24(t->sip, buf, n + 1);
	return h ? h : 1;
}

uint64_t counts_key_addr(const struct counts *t, enum counts_kind kind, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return counts_key(t, kind, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	if (sa->sa_family == AF_INET)
		return counts_key(t, kind, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	return counts_key(t, kind, "", 0);
}

static size_t find(const struct counts *t, uint64_t key)
{
	size_t i = (size_t)key & t->mask;

	while (t->slot[i].key != 0 && t->slot[i].key != key)
		i = (i + 1) & t->mask;
	return i;
}

int counts_take(struct counts *t, uint64_t key, uint32_t limit)
{
	size_t i = find(t, key);
	struct entry *e = &t->slot[i];

	if (e->key == 0) {
		if (t->used >= t->max_used)
			return 0;
		e->key = key;
		e->count = 0;
		t->used++;
	}
	if (limit > 0 && e->count >= limit)
		return 0;
	e->count++;
	return 1;
}

/* Frees slot |i| and moves later entries of the same probe run back into
 * the hole, so lookups never stop early at it. */
static void remove_at(struct counts *t, size_t i)
{
	size_t j = i;

	t->slot[i].key = 0;
	t->used--;
	for (;;) {
		size_t home;

		j = (j + 1) & t->mask;
		if (t->slot[j].key == 0)
			return;
		home = (size_t)t->slot[j].key & t->mask;
		/* The entry at j may fill the hole at i only if its home slot
		 * is not in the cyclic range (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			t->slot[i] = t->slot[j];
			t->slot[j].key = 0;
			i = j;
		}
	}
}

void counts_give(struct counts *t, uint64_t key)
{
	size_t i = find(t, key);

	if (t->slot[i].key == 0)
		return;
	if (t->slot[i].count > 1)
		t->slot[i].count--;
	else
		remove_at(t, i);
}

uint32_t counts_get(const struct counts *t, uint64_t key)
{
	size_t i = find(t, key);

	return t->slot[i].key ? t->slot[i].count : 0;
}
