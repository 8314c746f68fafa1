/*
 * Strict base64 for credentials: the standard alphabet (password files,
 * PHC strings) and the URL-safe one (JWT).
 *
 * Decoding accepts only the canonical encoding: no whitespace, no character
 * outside the alphabet, padding exactly as the flags ask, and the unused low
 * bits of the last character zero. So every byte string has exactly one
 * accepted spelling, and a token cannot be altered without changing what it
 * decodes to.
 */
#ifndef PROXY_AUTH_B64_H
#define PROXY_AUTH_B64_H

#include <stddef.h>
#include <stdint.h>

enum {
	B64_URL = 1 << 0,          /* '-' and '_' instead of '+' and '/' */
	B64_PAD = 1 << 1,          /* decode: '=' padding required; encode: written */
	B64_PAD_OPTIONAL = 1 << 2, /* decode: padding may be present or absent */
};

/* The most bytes that `inlen` characters can decode to. */
size_t b64_decoded_max(size_t inlen);

/* The characters b64_encode writes for `len` bytes, without the NUL. */
size_t b64_encoded_len(size_t len, int flags);

/* Decodes `inlen` characters at `in` into `out` (capacity `outcap`, owned by
 * the caller) and stores the byte count in `*outlen`. Returns 1 on success,
 * 0 if the input is not canonical base64 under `flags` or does not fit. */
int b64_decode(const char *in, size_t inlen, int flags, uint8_t *out, size_t outcap,
	       size_t *outlen);

/* Encodes `len` bytes into `out` (capacity `outcap`, owned by the caller)
 * and NUL-terminates it. Returns 1 on success, 0 if it does not fit. */
int b64_encode(const uint8_t *in, size_t len, int flags, char *out, size_t outcap);

#endif
