/*
 * Constant-time comparison of secrets; see ct.h.
 */
#include "proxy/auth/ct.h"

#include <openssl/mem.h>

int ct_equal(const void *a, const void *b, size_t len)
{
	if (len == 0)
		return 1;
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* All ones if a < b, else all zeros, without a branch the compiler could
 * turn into a data-dependent jump. */
static size_t ct_lt_mask(size_t a, size_t b)
{
	size_t borrow = ((~a & b) | ((~a | b) & (a - b))) >> (sizeof(size_t) * 8 - 1);

	return (size_t)0 - borrow;
}

int ct_equal_secret(const void *secret, size_t secret_len, const void *guess, size_t guess_len)
{
	const volatile uint8_t *s = secret;
	const volatile uint8_t *g = guess;
	/* A zero-length secret still needs a byte to read from, so every index
	 * past the secret's end reads this one instead of branching. */
	static const uint8_t filler = 0;
	size_t diff = secret_len ^ guess_len;
	size_t i;

	if (secret_len == 0)
		s = &filler;
	for (i = 0; i < guess_len; i++) {
		size_t in = ct_lt_mask(i, secret_len);
		size_t idx = i & in;            /* index 0 once past the end */
		uint8_t sb = s[idx];

		diff |= (size_t)(sb ^ g[i]) & in;
	}
	/* Fold every bit of diff into bit 0 without branching on it. */
	diff = (diff | ((size_t)0 - diff)) >> (sizeof(size_t) * 8 - 1);
	return (int)(1 ^ diff);
}
