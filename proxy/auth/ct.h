/*
 * Constant-time comparison of secrets.
 *
 * Comparing a guess against a secret with memcmp() lets an attacker learn,
 * from the time the answer takes, how many leading bytes were right. These
 * helpers take the same time whatever the contents, so a password hash or a
 * token signature can be compared without telling anything but "equal" or
 * "not equal".
 */
#ifndef PROXY_AUTH_CT_H
#define PROXY_AUTH_CT_H

#include <stddef.h>
#include <stdint.h>

/* Returns 1 if the `len` bytes at `a` and `b` are equal, 0 otherwise. The
 * time depends on `len` only. Both buffers are borrowed. */
int ct_equal(const void *a, const void *b, size_t len);

/* Returns 1 if the `secret_len` bytes of `secret` equal the `guess_len`
 * bytes of `guess`, 0 otherwise. The time depends on `guess_len` only (the
 * length the caller was sent, which the sender already knows), so neither
 * the secret's contents nor its length leak. Both buffers are borrowed;
 * either may be NULL when its length is 0. */
int ct_equal_secret(const void *secret, size_t secret_len, const void *guess, size_t guess_len);

#endif
