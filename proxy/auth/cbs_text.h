/*
 * Small helpers for reading text (URLs, HTTP) with BoringSSL's CBS
 * cursors: case-insensitive ASCII comparisons and splitting.
 */
#ifndef PROXY_AUTH_CBS_TEXT_H
#define PROXY_AUTH_CBS_TEXT_H

#include <string.h>

#include <openssl/bytestring.h>

static inline int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether |c| begins with |prefix| (lower case) in any case; skips it if so. */
static inline int cbs_skip_prefix_ci(CBS *c, const char *prefix)
{
	size_t n = strlen(prefix);

	if (CBS_len(c) < n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (ascii_lower(CBS_data(c)[i]) != prefix[i])
			return 0;
	}
	return CBS_skip(c, n);
}

/* Whether all of |c| equals |s| (lower case) in any case. */
static inline int cbs_equals_ci(const CBS *c, const char *s)
{
	size_t n = strlen(s);

	if (CBS_len(c) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (ascii_lower(CBS_data(c)[i]) != s[i])
			return 0;
	}
	return 1;
}

/* Takes the bytes before the first of |stops| (or all of them) into |out|. */
static inline void cbs_take_until_any(CBS *c, const char *stops, CBS *out)
{
	size_t i = 0;

	/* strchr would find a NUL byte: it is never a stop. */
	while (i < CBS_len(c) && (CBS_data(c)[i] == 0 || strchr(stops, CBS_data(c)[i]) == NULL))
		i++;
	(void)CBS_get_bytes(c, out, i);
}

#endif
