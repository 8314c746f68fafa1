/*
 * Byte queues for the forwarding path, made of blocks that a worker keeps
 * and reuses.
 *
 * A session holds two queues (client->broker and broker->client). Bytes are
 * read straight into free space at a queue's tail (SSL_read, readv) and
 * written straight from its head (SSL_write, writev): no copy between our
 * own buffers. A queue owns blocks only while it holds bytes; a drained
 * block goes back to the worker's cache, not to malloc, because freeing and
 * re-allocating a 16-64 KB buffer per read made glibc trim and re-fault the
 * arena on every cycle (DESIGN.md §4). The cache is bounded, so a worker
 * keeps at most a few megabytes however many connections it has.
 *
 * All functions run on the worker's thread; nothing here locks.
 */
#ifndef PROXY_BUFQ_H
#define PROXY_BUFQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Bytes a standard block holds: two full TLS records. */
#define BLK_SIZE (32 * 1024)
/* Bytes a small block holds: a CONNECT, a CONNACK, what a session handles
 * before it forwards. Thousands of sessions in a reconnect storm then hold
 * 1 KB each instead of 32 KB, and leave no large holes behind. */
#define BLK_SMALL 1024

struct blk {
	struct blk *next;
	uint32_t off, len;       /* unread bytes are data[off, off + len) */
	uint32_t cap;            /* bytes data holds */
	uint8_t data[];
};

/* The free blocks of one worker. All-zero plus blk_cache_init is valid. */
struct blk_cache {
	struct blk *free;        /* owned: standard blocks */
	struct blk *small;       /* owned: small blocks */
	uint32_t n_small;
	struct blk *pending;     /* owned: reserved, not yet committed */
	int tail_reserved;       /* the last reservation began in the queue's tail */
	uint32_t n, max;
};

/* A queue of bytes; all-zero is empty. Owns its blocks. */
struct bufq {
	struct blk *head, *tail;
	size_t len;              /* bytes queued */
};

/* Keeps up to |max| free standard blocks and 4 x |max| small ones in |c|. */
void blk_cache_init(struct blk_cache *c, uint32_t max);
/* Frees every cached block. */
void blk_cache_cleanup(struct blk_cache *c);

/* Bytes queued in |q|. */
static inline size_t bufq_len(const struct bufq *q)
{
	return q->len;
}

/* Makes at least |want| bytes of free space at |q|'s tail (blocks from |c|;
 * small ones when |want| is at most BLK_SMALL) and describes it in up to
 * |max| iovecs. Returns the number of iovecs, 0 when out of memory. Space
 * not committed goes back with bufq_commit. */
int bufq_reserve(struct bufq *q, struct blk_cache *c, size_t want, struct iovec *iov, int max);
/* bufq_reserve, leaving |headroom| bytes free at the front of each new
 * block (not of the tail's free space): room to write a small header in
 * front of the data later (bufq_headroom), as WebSocket framing does. */
int bufq_reserve_headroom(struct bufq *q, struct blk_cache *c, size_t want, size_t headroom,
                          struct iovec *iov, int max);
/* Appends the first |n| bytes of the space the last bufq_reserve gave, and
 * returns the blocks it did not fill to |c|. */
void bufq_commit(struct bufq *q, struct blk_cache *c, size_t n);
/* Describes the bytes at |q|'s head from offset |from| in up to |max|
 * iovecs (borrowed until |q| changes). Returns how many it filled. */
int bufq_peek(const struct bufq *q, size_t from, struct iovec *iov, int max);
/* Removes |n| (at most bufq_len) bytes from the head; empty blocks go to |c|. */
void bufq_drain(struct bufq *q, struct blk_cache *c, size_t n);
/* Keeps the first |keep| bytes and drops the rest. */
void bufq_truncate(struct bufq *q, struct blk_cache *c, size_t keep);
/* Removes every byte. */
void bufq_clear(struct bufq *q, struct blk_cache *c);
/* Appends a copy of |n| bytes at |p| (small packets of our own). Returns 1/0. */
int bufq_add(struct bufq *q, struct blk_cache *c, const void *p, size_t n);
/* Puts a copy of |n| bytes at |p| in front of what |q| holds. Returns 1/0. */
int bufq_prepend(struct bufq *q, struct blk_cache *c, const void *p, size_t n);
/* Free bytes just in front of |q|'s first byte, in the same block (bytes
 * already drained, or reserved headroom), which the caller may overwrite
 * with a header of its own before writing from there. 0 when empty. */
size_t bufq_headroom(const struct bufq *q);
/* Makes the first |n| (at most bufq_len) bytes contiguous and returns them
 * (borrowed until |q| changes), or NULL when out of memory. */
const uint8_t *bufq_pullup(struct bufq *q, struct blk_cache *c, size_t n);
/* Writes |q|'s head to |fd| with one writev and drains what was written.
 * Returns the bytes written, or -1 with errno set. */
ssize_t bufq_write(struct bufq *q, struct blk_cache *c, int fd);

/* ---- editing inside a queue (the ACL filter) ----
 * For a stage that decides about bytes already queued: copy some out,
 * cut a range, insert its own bytes at an offset. Offsets count from the
 * queue's first byte. Each copies at most one block's worth besides |n|. */

/* Copies |n| bytes from offset |from| into |out|. Returns 1, or 0 (nothing
 * copied) if the queue holds fewer. */
int bufq_copyout(const struct bufq *q, size_t from, void *out, size_t n);
/* Removes the |n| bytes at offset |from| (fewer if the queue ends first). */
void bufq_cut(struct bufq *q, struct blk_cache *c, size_t from, size_t n);
/* Puts a copy of |n| bytes at |p| at offset |at| (the end if |at| is past
 * it). Returns 1/0. */
int bufq_insert(struct bufq *q, struct blk_cache *c, size_t at, const void *p, size_t n);
/* Makes the |n| bytes at offset |at| contiguous and returns them, writable
 * and borrowed until |q| changes; NULL when out of memory or fewer are
 * queued. */
uint8_t *bufq_pullup_at(struct bufq *q, struct blk_cache *c, size_t at, size_t n);

#endif
