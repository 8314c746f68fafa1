/*
 * Reserved space is not linked into the queue until it is committed: the
 * new blocks wait on the cache's |pending| list, which is safe because a
 * worker is one thread and every reserve is followed by its commit before
 * anything else touches a queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/bufq.h"

/* The most iovecs one writev gets: 16 blocks are 512 KB, more than any
 * socket takes at once. */
#define WRITE_IOV 16

/* A block of at least |min| bytes: a cached small or standard one when it
 * fits. */
static struct blk *blk_get(struct blk_cache *c, size_t min)
{
	size_t cap = min <= BLK_SMALL ? BLK_SMALL : min <= BLK_SIZE ? BLK_SIZE : min;
	struct blk *b;

	if (cap == BLK_SIZE && c->free) {
		b = c->free;
		c->free = b->next;
		c->n--;
	} else if (cap == BLK_SMALL && c->small) {
		b = c->small;
		c->small = b->next;
		c->n_small--;
	} else {
		if (cap > UINT32_MAX || (b = malloc(sizeof(*b) + cap)) == NULL)
			return NULL;
		b->cap = (uint32_t)cap;
	}
	b->next = NULL;
	b->off = b->len = 0;
	return b;
}

static void blk_put(struct blk_cache *c, struct blk *b)
{
	if (b->cap == BLK_SIZE && c->n < c->max) {
		b->next = c->free;
		c->free = b;
		c->n++;
	} else if (b->cap == BLK_SMALL && c->n_small < 4 * c->max) {
		b->next = c->small;
		c->small = b;
		c->n_small++;
	} else {
		free(b);
	}
}

void blk_cache_init(struct blk_cache *c, uint32_t max)
{
	c->free = c->pending = c->small = NULL;
	c->tail_reserved = 0;
	c->n = c->n_small = 0;
	c->max = max;
}

void blk_cache_cleanup(struct blk_cache *c)
{
	while (c->free) {
		struct blk *b = c->free;

		c->free = b->next;
		free(b);
	}
	while (c->small) {
		struct blk *b = c->small;

		c->small = b->next;
		free(b);
	}
	c->n = c->n_small = 0;
}

static size_t tail_free(const struct bufq *q)
{
	const struct blk *t = q->tail;

	return t ? t->cap - t->off - t->len : 0;
}

static void append(struct bufq *q, struct blk *b)
{
	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	q->len += b->len;
}

int bufq_reserve(struct bufq *q, struct blk_cache *c, size_t want, struct iovec *iov, int max)
{
	return bufq_reserve_headroom(q, c, want, 0, iov, max);
}

int bufq_reserve_headroom(struct bufq *q, struct blk_cache *c, size_t want, size_t headroom,
                          struct iovec *iov, int max)
{
	size_t have = 0, room = tail_free(q);
	struct blk **link = &c->pending;
	int n = 0;

	/* The tail's free space serves when it is enough, or as the first
	 * of several pieces; a sliver alone would cut a record in two. */
	c->tail_reserved = room > 0 && max > 0 && (room >= want || max > 1);
	if (c->tail_reserved) {
		iov[n].iov_base = q->tail->data + q->tail->off + q->tail->len;
		iov[n].iov_len = room;
		have += room;
		n++;
	}
	while (have < want && n < max) {
		struct blk *b = blk_get(c, want <= BLK_SMALL ? BLK_SMALL : BLK_SIZE);

		if (b == NULL)
			break;
		*link = b;
		link = &b->next;
		b->off = headroom < b->cap / 2 ? (uint32_t)headroom : 0;
		iov[n].iov_base = b->data + b->off;
		iov[n].iov_len = b->cap - b->off;
		have += iov[n].iov_len;
		n++;
	}
	return n;
}

void bufq_commit(struct bufq *q, struct blk_cache *c, size_t n)
{
	size_t room = c->tail_reserved ? tail_free(q) : 0;

	/* The reservation began in the tail's free space only if it said so. */
	c->tail_reserved = 0;
	if (room > 0 && n > 0) {
		size_t take = n < room ? n : room;

		q->tail->len += (uint32_t)take;
		q->len += take;
		n -= take;
	}
	while (c->pending) {
		struct blk *b = c->pending;

		c->pending = b->next;
		if (n > 0) {
			b->len = (uint32_t)(n < b->cap - b->off ? n : b->cap - b->off);
			n -= b->len;
			append(q, b);
		} else {
			blk_put(c, b);
		}
	}
}

int bufq_peek(const struct bufq *q, size_t from, struct iovec *iov, int max)
{
	const struct blk *b = q->head;
	int n = 0;

	while (b && from >= b->len) {
		from -= b->len;
		b = b->next;
	}
	for (; b && n < max; b = b->next) {
		iov[n].iov_base = (void *)(b->data + b->off + from);
		iov[n].iov_len = b->len - from;
		from = 0;
		n++;
	}
	return n;
}

void bufq_drain(struct bufq *q, struct blk_cache *c, size_t n)
{
	while (n > 0 && q->head) {
		struct blk *b = q->head;
		size_t take = n < b->len ? n : b->len;

		b->off += (uint32_t)take;
		b->len -= (uint32_t)take;
		q->len -= take;
		n -= take;
		if (b->len > 0)
			break;
		q->head = b->next;
		if (q->head == NULL)
			q->tail = NULL;
		blk_put(c, b);
	}
}

void bufq_truncate(struct bufq *q, struct blk_cache *c, size_t keep)
{
	struct blk *b = q->head, *rest;
	size_t seen = 0;

	if (keep >= q->len)
		return;
	if (keep == 0) {
		bufq_clear(q, c);
		return;
	}
	while (seen + b->len < keep) {
		seen += b->len;
		b = b->next;
	}
	b->len = (uint32_t)(keep - seen);
	rest = b->next;
	b->next = NULL;
	q->tail = b;
	q->len = keep;
	while (rest) {
		struct blk *next = rest->next;

		blk_put(c, rest);
		rest = next;
	}
}

void bufq_clear(struct bufq *q, struct blk_cache *c)
{
	while (q->head) {
		struct blk *b = q->head;

		q->head = b->next;
		blk_put(c, b);
	}
	q->tail = NULL;
	q->len = 0;
}

int bufq_add(struct bufq *q, struct blk_cache *c, const void *p, size_t n)
{
	struct iovec iov[8];
	const uint8_t *src = p;
	size_t left = n;
	int k = bufq_reserve(q, c, n, iov, 8);
	size_t have = 0;

	for (int i = 0; i < k; i++)
		have += iov[i].iov_len;
	if (k == 0 || have < n) {
		bufq_commit(q, c, 0);
		return 0;
	}
	for (int i = 0; i < k && left > 0; i++) {
		size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;

		memcpy(iov[i].iov_base, src, take);
		src += take;
		left -= take;
	}
	bufq_commit(q, c, n);
	return 1;
}

/* Puts |b|, holding |n| bytes, in front of the queue. */
static void push_head(struct bufq *q, struct blk *b, size_t n)
{
	b->len = (uint32_t)n;
	b->next = q->head;
	q->head = b;
	if (q->tail == NULL)
		q->tail = b;
	q->len += n;
}

int bufq_prepend(struct bufq *q, struct blk_cache *c, const void *p, size_t n)
{
	struct blk *b;

	if (n == 0)
		return 1;
	if ((b = blk_get(c, n)) == NULL)
		return 0;
	memcpy(b->data, p, n);
	push_head(q, b, n);
	return 1;
}

size_t bufq_headroom(const struct bufq *q)
{
	return q->head ? q->head->off : 0;
}

const uint8_t *bufq_pullup(struct bufq *q, struct blk_cache *c, size_t n)
{
	struct blk *b;
	size_t done = 0;

	if (n > q->len)
		return NULL;
	if (q->head && q->head->len >= n)
		return q->head->data + q->head->off;
	/* Room for more than |n|, so that what arrives next can join it. */
	if ((b = blk_get(c, n)) == NULL)
		return NULL;
	while (done < n) {
		const struct blk *h = q->head;
		size_t take = n - done < h->len ? n - done : h->len;

		memcpy(b->data + done, h->data + h->off, take);
		done += take;
		bufq_drain(q, c, take);
	}
	push_head(q, b, n);
	return b->data;
}

ssize_t bufq_write(struct bufq *q, struct blk_cache *c, int fd)
{
	struct iovec iov[WRITE_IOV];
	int n = bufq_peek(q, 0, iov, WRITE_IOV);
	ssize_t w;

	if (n == 0)
		return 0;
	w = writev(fd, iov, n);
	if (w > 0)
		bufq_drain(q, c, (size_t)w);
	return w;
}

/* ---- editing inside a queue (the ACL filter) ------------------------------ */

/* The block holding offset |at| (< q->len), the offset inside it in *k,
 * the link that points at it in *link and the block before it in *prev
 * (NULL at the head). */
static struct blk *locate(struct bufq *q, size_t at, size_t *k, struct blk ***link,
                          struct blk **prev)
{
	struct blk **l = &q->head;

	*prev = NULL;
	while (*l && at >= (*l)->len) {
		at -= (*l)->len;
		*prev = *l;
		l = &(*l)->next;
	}
	*k = at;
	*link = l;
	return *l;
}

/* Unlinks the block at *link (whose predecessor is |prev|, NULL at the
 * head) and gives it back. */
static void unlink_put(struct bufq *q, struct blk_cache *c, struct blk **link, struct blk *prev)
{
	struct blk *b = *link;

	*link = b->next;
	if (q->tail == b)
		q->tail = prev;
	blk_put(c, b);
}

int bufq_copyout(const struct bufq *q, size_t from, void *out, size_t n)
{
	uint8_t *dst = out;
	const struct blk *b = q->head;

	if (from > q->len || n > q->len - from)
		return 0;
	while (b && from >= b->len) {
		from -= b->len;
		b = b->next;
	}
	for (; b && n > 0; b = b->next) {
		size_t take = b->len - from < n ? b->len - from : n;

		memcpy(dst, b->data + b->off + from, take);
		dst += take;
		n -= take;
		from = 0;
	}
	return 1;
}

void bufq_cut(struct bufq *q, struct blk_cache *c, size_t from, size_t n)
{
	struct blk **link, *b, *prev = NULL;
	size_t k;

	if (from >= q->len || n == 0)
		return;
	if (n > q->len - from)
		n = q->len - from;
	b = locate(q, from, &k, &link, &prev);
	q->len -= n;
	if (k + n < b->len) {
		/* Inside one block: close the gap by moving the shorter side. */
		uint8_t *d = b->data + b->off;

		if (k < b->len - k - n) {
			memmove(d + n, d, k);
			b->off += (uint32_t)n;
		} else {
			memmove(d + k, d + k + n, b->len - k - n);
		}
		b->len -= (uint32_t)n;
		return;
	}
	/* The range runs to the end of b, and maybe on into the next blocks. */
	n -= b->len - k;
	b->len = (uint32_t)k;
	if (k == 0) {
		unlink_put(q, c, link, prev);
	} else {
		prev = b;
		link = &b->next;
	}
	while (n > 0 && *link) {
		b = *link;
		if (n >= b->len) {
			n -= b->len;
			unlink_put(q, c, link, prev);
			continue;
		}
		b->off += (uint32_t)n;
		b->len -= (uint32_t)n;
		n = 0;
	}
}

/* Links the block |nb| (holding its bytes) in at offset |at| (< q->len),
 * splitting the block there if |at| falls inside it. Returns 1/0. */
static int insert_block(struct bufq *q, struct blk_cache *c, size_t at, struct blk *nb)
{
	struct blk **link, *b, *prev;
	size_t k;

	b = locate(q, at, &k, &link, &prev);
	if (k > 0) {
		/* The part of b after |at| moves to a block of its own. */
		size_t rest = b->len - k;
		struct blk *r = blk_get(c, rest);

		if (r == NULL)
			return 0;
		memcpy(r->data, b->data + b->off + k, rest);
		r->len = (uint32_t)rest;
		b->len = (uint32_t)k;
		r->next = b->next;
		b->next = r;
		if (q->tail == b)
			q->tail = r;
		link = &b->next;
	}
	nb->next = *link;
	*link = nb;
	q->len += nb->len;
	return 1;
}

int bufq_insert(struct bufq *q, struct blk_cache *c, size_t at, const void *p, size_t n)
{
	struct blk *nb;

	if (n == 0)
		return 1;
	if (at >= q->len)
		return bufq_add(q, c, p, n);
	if ((nb = blk_get(c, n)) == NULL)
		return 0;
	memcpy(nb->data, p, n);
	nb->len = (uint32_t)n;
	if (!insert_block(q, c, at, nb)) {
		blk_put(c, nb);
		return 0;
	}
	return 1;
}

uint8_t *bufq_pullup_at(struct bufq *q, struct blk_cache *c, size_t at, size_t n)
{
	struct blk **link, *b, *nb, *prev;
	size_t k;

	if (n == 0 || at > q->len || n > q->len - at)
		return NULL;
	b = locate(q, at, &k, &link, &prev);
	if (b->len - k >= n)
		return b->data + b->off + k;
	if ((nb = blk_get(c, n)) == NULL)
		return NULL;
	(void)bufq_copyout(q, at, nb->data, n);
	nb->len = (uint32_t)n;
	bufq_cut(q, c, at, n);
	/* |at| is now at a block boundary (or the end): no split can fail. */
	if (at >= q->len) {
		append(q, nb);
	} else if (!insert_block(q, c, at, nb)) {
		blk_put(c, nb);
		return NULL;
	}
	return nb->data;
}
