/*
 * Objects of one size that live as long as a connection (struct session),
 * carved from blocks of SLAB_OBJECTS instead of one malloc each.
 *
 * Why: a TLS handshake ends by freeing BoringSSL's transient buffers, and
 * the next accept's allocation of the session best-fit one of them (a
 * ~1 KiB block after an mTLS handshake with a small client certificate),
 * leaving a 416-byte remainder wedged between two long-lived objects (the
 * session and the connection's SSL_SESSION, which takes the chunk that the
 * ticket's copy of it freed) that nothing of that size asked for again:
 * bench/idle_memory.py --mtls measured 3.78 KiB per idle connection, 3.52
 * with the sessions taken from blocks of their own, which no longer split
 * what the handshakes leave (BoringSSL reuses it).
 *
 * Single-threaded: one cache per worker, used on its thread only.
 */
#ifndef PROXY_SLAB_H
#define PROXY_SLAB_H

#include <stddef.h>

/* Objects per block: a block of struct session is ~21 KiB. */
#define SLAB_OBJECTS 32

struct slab;

/* All-zero plus slab_cache_init is valid. */
struct slab_cache {
	size_t size;             /* bytes of an object, as asked */
	size_t stride;           /* bytes of a slot: its header and the object, aligned */
	struct slab *open;       /* blocks with a free slot and a used one, doubly linked */
	struct slab *spare;      /* at most one block with every slot free */
	size_t n_slabs;          /* blocks allocated, the spare included */
	size_t n_used;           /* objects handed out and not freed */
};

/* Prepares |c| for objects of |size| bytes (size > 0). */
void slab_cache_init(struct slab_cache *c, size_t size);

/* A zeroed object aligned for any type, or NULL when out of memory. */
void *slab_alloc(struct slab_cache *c);

/* Gives back |p| (NULL is ignored), which slab_alloc(c) returned. A block
 * whose objects are all free is released, but for one kept as the spare. */
void slab_free(struct slab_cache *c, void *p);

/* Releases every block; the objects must all have been freed. */
void slab_cache_cleanup(struct slab_cache *c);

#endif
