#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/slab.h"

/* Under AddressSanitizer a freed object is poisoned, so that a use after
 * free is still reported although the block stays allocated. */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN alignof(max_align_t)
#define ROUND_UP(n) (((n) + ALIGN - 1) / ALIGN * ALIGN)

/* Before each object: which block it is in (for slab_free), and the next
 * free slot while it is free. Never poisoned. */
struct slot {
	struct slab *owner;      /* NULL while free */
	struct slot *next_free;
};

struct slab {
	struct slab *prev, *next;   /* on the cache's open list */
	struct slot *free;          /* free slots, lowest address first at the start */
	unsigned used;
};

#define SLAB_HEAD ROUND_UP(sizeof(struct slab))
#define SLOT_HEAD ROUND_UP(sizeof(struct slot))

static void *object_of(struct slot *s)
{
	return (char *)s + SLOT_HEAD;
}

static struct slot *slot_of(void *p)
{
	return (struct slot *)(void *)((char *)p - SLOT_HEAD);
}

static void open_push(struct slab_cache *c, struct slab *b)
{
	b->prev = NULL;
	b->next = c->open;
	if (c->open)
		c->open->prev = b;
	c->open = b;
}

static void open_unlink(struct slab_cache *c, struct slab *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		c->open = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

void slab_cache_init(struct slab_cache *c, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->size = size;
	/* An object too large to fit SLAB_OBJECTS in a size_t leaves stride 0:
	 * slab_alloc then refuses. */
	if (size > 0 && size <= (SIZE_MAX - SLAB_HEAD) / SLAB_OBJECTS - SLOT_HEAD - ALIGN)
		c->stride = SLOT_HEAD + ROUND_UP(size);
}

static struct slab *slab_new(struct slab_cache *c)
{
	struct slab *b = malloc(SLAB_HEAD + c->stride * SLAB_OBJECTS);

	if (b == NULL)
		return NULL;
	b->prev = b->next = NULL;
	b->free = NULL;
	b->used = 0;
	/* Pushed from the last, so the block fills from its start. */
	for (size_t i = SLAB_OBJECTS; i-- > 0;) {
		struct slot *s = (struct slot *)(void *)((char *)b + SLAB_HEAD + i * c->stride);

		s->owner = NULL;
		s->next_free = b->free;
		b->free = s;
		POISON(object_of(s), c->size);
	}
	c->n_slabs++;
	return b;
}

static void slab_release(struct slab_cache *c, struct slab *b)
{
	UNPOISON((char *)b + SLAB_HEAD, c->stride * SLAB_OBJECTS);
	free(b);
	c->n_slabs--;
}

void *slab_alloc(struct slab_cache *c)
{
	struct slab *b = c->open;
	struct slot *s;
	void *p;

	if (c->stride == 0)
		return NULL;
	if (b == NULL) {
		if (c->spare != NULL) {
			b = c->spare;
			c->spare = NULL;
		} else if ((b = slab_new(c)) == NULL) {
			return NULL;
		}
		open_push(c, b);
	}
	s = b->free;
	b->free = s->next_free;
	s->next_free = NULL;
	s->owner = b;
	b->used++;
	c->n_used++;
	if (b->free == NULL)
		open_unlink(c, b);      /* full: slab_free finds it through its slots */
	p = object_of(s);
	UNPOISON(p, c->size);
	memset(p, 0, c->size);
	return p;
}

void slab_free(struct slab_cache *c, void *p)
{
	struct slot *s;
	struct slab *b;
	int was_full;

	if (p == NULL)
		return;
	s = slot_of(p);
	b = s->owner;
	/* Freed twice, or not ours: carrying on would corrupt the lists. */
	if (b == NULL)
		abort();
	was_full = b->free == NULL;
	POISON(p, c->size);
	s->owner = NULL;
	s->next_free = b->free;
	b->free = s;
	b->used--;
	c->n_used--;
	if (b->used == 0) {
		if (!was_full)
			open_unlink(c, b);
		if (c->spare == NULL)
			c->spare = b;      /* one connection coming and going reuses it */
		else
			slab_release(c, b);
	} else if (was_full) {
		open_push(c, b);
	}
}

void slab_cache_cleanup(struct slab_cache *c)
{
	struct slab *b;

	while ((b = c->open) != NULL) {
		open_unlink(c, b);
		slab_release(c, b);
	}
	if (c->spare != NULL)
		slab_release(c, c->spare);
	c->spare = NULL;
}
