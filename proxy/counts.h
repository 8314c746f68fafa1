/*
 * Small counts of things in flight, keyed by who they belong to: concurrent
 * handshakes per client address, slow auth checks per address and per user
 * name. One table per worker (no lock); its size is fixed when it is made
 * and an entry exists only while its count is above zero, so the table is
 * bounded by what is in flight, never by how many clients ever came.
 *
 * Keys are SipHash-2-4 of the bytes under a per-table random key, so a client
 * cannot choose names that collide on purpose.
 */
#ifndef PROXY_COUNTS_H
#define PROXY_COUNTS_H

#include <stddef.h>
#include <stdint.h>

struct counts;
struct sockaddr;

/* What a key counts; part of the hash, so equal bytes of different kinds
 * never share a count. */
enum counts_kind {
	COUNT_HANDSHAKE_IP = 1,
	COUNT_AUTH_IP,
	COUNT_AUTH_USER,
};

/* A table holding at most |entries| distinct keys. Returns NULL on failure. */
struct counts *counts_new(size_t entries);
/* counts_free(NULL) is a no-op. */
void counts_free(struct counts *t);

/* The key of |len| bytes at |p| as |kind|; never 0. */
uint64_t counts_key(const struct counts *t, enum counts_kind kind, const void *p, size_t len);
/* The key of a client address (its IP only, not the port) as |kind|. */
uint64_t counts_key_addr(const struct counts *t, enum counts_kind kind, const struct sockaddr *sa);

/* Adds one to |key|'s count if it is below |limit| (0: no limit) and the
 * table has room. Returns 1 if it did, 0 if the caller is over the limit. */
int counts_take(struct counts *t, uint64_t key, uint32_t limit);
/* Gives back one taken by counts_take; the entry goes when it reaches 0. */
void counts_give(struct counts *t, uint64_t key);
/* The current count of |key| (0 when absent). */
uint32_t counts_get(const struct counts *t, uint64_t key);

#endif
