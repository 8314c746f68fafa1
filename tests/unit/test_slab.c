/* proxy/slab.c: fixed-size objects carved from blocks (the sessions' memory). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/slab.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FREED_IS_POISONED(p) assert_true(__asan_address_is_poisoned(p))
#else
#define FREED_IS_POISONED(p) ((void)(p))
#endif

/* An odd size, like a struct that is not a multiple of the alignment. */
#define SIZE 651
#define MANY (3 * SLAB_OBJECTS + 5)

static void fill(void *p, unsigned tag)
{
	memset(p, (int)(tag & 0xff), SIZE);
}

static void check(const void *p, unsigned tag)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < SIZE; i++)
		assert_int_equal(b[i], tag & 0xff);
}

static void test_objects_are_zeroed_aligned_and_disjoint(void **state)
{
	struct slab_cache c;
	void *p[MANY];

	(void)state;
	slab_cache_init(&c, SIZE);
	for (unsigned i = 0; i < MANY; i++) {
		p[i] = slab_alloc(&c);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % alignof(max_align_t), 0);
		check(p[i], 0);
		fill(p[i], i + 1);
		/* One block per SLAB_OBJECTS objects, allocated when needed. */
		assert_int_equal(c.n_slabs, i / SLAB_OBJECTS + 1);
	}
	assert_int_equal(c.n_used, MANY);
	/* Writing every byte of each object left the others intact. */
	for (unsigned i = 0; i < MANY; i++)
		check(p[i], i + 1);
	for (unsigned i = 0; i < MANY; i++)
		slab_free(&c, p[i]);
	slab_cache_cleanup(&c);
}

static void test_empty_blocks_are_released_but_one_spare(void **state)
{
	struct slab_cache c;
	void *p[MANY], *again;

	(void)state;
	slab_cache_init(&c, SIZE);
	for (unsigned i = 0; i < MANY; i++)
		p[i] = slab_alloc(&c);
	assert_int_equal(c.n_slabs, 4);
	for (unsigned i = 0; i < MANY; i++) {
		slab_free(&c, p[i]);
		FREED_IS_POISONED(p[i]);
	}
	assert_int_equal(c.n_used, 0);
	assert_int_equal(c.n_slabs, 1);
	/* One connection coming and going reuses the spare. */
	for (int round = 0; round < 3; round++) {
		again = slab_alloc(&c);
		assert_non_null(again);
		assert_int_equal(c.n_slabs, 1);
		slab_free(&c, again);
		assert_int_equal(c.n_slabs, 1);
	}
	slab_cache_cleanup(&c);
	assert_int_equal(c.n_slabs, 0);
}

static void test_a_freed_slot_of_a_full_block_is_reused_zeroed(void **state)
{
	struct slab_cache c;
	void *p[2 * SLAB_OBJECTS], *q;

	(void)state;
	slab_cache_init(&c, SIZE);
	for (unsigned i = 0; i < 2 * SLAB_OBJECTS; i++) {
		p[i] = slab_alloc(&c);
		fill(p[i], 0xa5);
	}
	assert_int_equal(c.n_slabs, 2);     /* both full */
	slab_free(&c, p[3]);
	q = slab_alloc(&c);
	assert_ptr_equal(q, p[3]);          /* no third block */
	assert_int_equal(c.n_slabs, 2);
	check(q, 0);
	for (unsigned i = 0; i < 2 * SLAB_OBJECTS; i++)
		slab_free(&c, p[i]);
	slab_cache_cleanup(&c);
}

/* Random churn against a record of what is live: contents survive, the
 * counts agree, and everything freed leaves only the spare. */
static void test_churn_keeps_contents_and_counts(void **state)
{
	enum { LIVE = 200, STEPS = 20000 };
	struct slab_cache c;
	void *p[LIVE] = { 0 };
	unsigned tag[LIVE] = { 0 }, used = 0, seed = 12345;

	(void)state;
	slab_cache_init(&c, SIZE);
	for (unsigned step = 0; step < STEPS; step++) {
		unsigned i;

		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % LIVE;
		if (p[i] == NULL) {
			p[i] = slab_alloc(&c);
			assert_non_null(p[i]);
			check(p[i], 0);
			tag[i] = step;
			fill(p[i], tag[i]);
			used++;
		} else {
			check(p[i], tag[i]);
			slab_free(&c, p[i]);
			p[i] = NULL;
			used--;
		}
		assert_int_equal(c.n_used, used);
		/* Never more blocks than the live objects need, plus the spare,
		 * plus the partly used ones: at worst one block per object. */
		assert_true(c.n_slabs <= used + 1);
	}
	for (unsigned i = 0; i < LIVE; i++) {
		if (p[i] != NULL) {
			check(p[i], tag[i]);
			slab_free(&c, p[i]);
		}
	}
	assert_int_equal(c.n_used, 0);
	assert_int_equal(c.n_slabs, 1);
	slab_cache_cleanup(&c);
}

static void test_unusable_sizes_and_null(void **state)
{
	struct slab_cache zero, huge, fresh;

	(void)state;
	slab_cache_init(&zero, 0);
	assert_null(slab_alloc(&zero));
	slab_cache_init(&huge, SIZE_MAX / 2);
	assert_null(slab_alloc(&huge));
	assert_int_equal(huge.n_slabs, 0);
	/* All-zero, as a worker that failed before its init leaves it. */
	memset(&fresh, 0, sizeof(fresh));
	assert_null(slab_alloc(&fresh));
	slab_free(&fresh, NULL);
	slab_cache_cleanup(&fresh);
	slab_cache_cleanup(&zero);
	slab_cache_cleanup(&huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objects_are_zeroed_aligned_and_disjoint),
		cmocka_unit_test(test_empty_blocks_are_released_but_one_spare),
		cmocka_unit_test(test_a_freed_slot_of_a_full_block_is_reused_zeroed),
		cmocka_unit_test(test_churn_keeps_contents_and_counts),
		cmocka_unit_test(test_unusable_sizes_and_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
