#include <string.h>

#include "mqtt/cursor.h"
#include "tls/sni_match.h"

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return 0;
	}
	return 1;
}

static int label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/*
 * The length of |s| without one trailing dot if it is a host name made of
 * non-empty labels of at most 63 label characters, or 0. Nothing is read
 * past TLS_SNI_NAME_MAX + 2 bytes.
 */
static size_t host_len(const char *s)
{
	size_t len = strnlen(s, TLS_SNI_NAME_MAX + 2), label = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_SNI_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (label_char(s[i])) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 ? len : 0;
}

/* 1 if |pattern| is |s| (|len| bytes) but for case, then its end or one
 * trailing dot. Stops at the first difference, which is where most of a
 * certificate's names part from the host asked for. */
static int same_name(const char *pattern, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (pattern[i] == '\0' || ascii_lower(pattern[i]) != ascii_lower(s[i]))
			return 0;
	}
	return pattern[len] == '\0' || (pattern[len] == '.' && pattern[len + 1] == '\0');
}

/*
 * The match of |pattern| against |host| (|hlen| bytes, already checked by
 * host_len). A pattern equal to a valid host, or "*." and a valid host's
 * remainder, is valid itself, so patterns need no check of their own: this
 * runs for every name of every pair on each handshake.
 */
static enum tls_sni_match match_checked(const char *pattern, const char *host, size_t hlen)
{
	const char *dot = memchr(host, '.', hlen);
	size_t rest_len = dot ? (size_t)(host + hlen - dot - 1) : 0;

	if (pattern[0] != '*')
		return same_name(pattern, host, hlen) ? TLS_SNI_EXACT : TLS_SNI_NONE;
	/* "*.example.com": the part after "*." must itself hold a dot, so that
	 * "*.com" covers nothing. */
	if (dot == NULL || pattern[1] != '.' || memchr(dot + 1, '.', rest_len) == NULL ||
	    !same_name(pattern + 2, dot + 1, rest_len))
		return TLS_SNI_NONE;
	return TLS_SNI_WILDCARD;
}

enum tls_sni_match tls_sni_name_match(const char *pattern, const char *host)
{
	size_t hlen;

	if (pattern == NULL || host == NULL || (hlen = host_len(host)) == 0)
		return TLS_SNI_NONE;
	return match_checked(pattern, host, hlen);
}

int tls_sni_same_names(const struct tls_sni_cert *a, const struct tls_sni_cert *b)
{
	/* Every name of each is one of the other's; a few names, at startup. */
	for (int pass = 0; pass < 2; pass++) {
		const struct tls_sni_cert *x = pass ? b : a, *y = pass ? a : b;

		for (size_t i = 0; i < x->n_names; i++) {
			size_t len = strlen(x->names[i]), j;

			for (j = 0; j < y->n_names; j++) {
				if (strlen(y->names[j]) == len && ascii_ieq(x->names[i], y->names[j], len))
					break;
			}
			if (j == y->n_names)
				return 0;
		}
	}
	return 1;
}

/* ---- what the client can verify ------------------------------------------ */

/* 1 if the list of big-endian u16 in |p| (|len| bytes) holds |want|. */
static int has_u16(const uint8_t *p, size_t len, uint16_t want)
{
	struct cursor c;
	uint16_t v;

	cursor_init(&c, p, len);
	while (cursor_left(&c) >= 2) {
		if (!cursor_u16(&c, &v))
			return 0;
		if (v == want)
			return 1;
	}
	return 0;
}

/* The u16 list inside a length-prefixed extension body (|prefix| 1 or 2
 * bytes), or an empty one if malformed. */
static struct slice u16_list(const uint8_t *body, size_t len, int prefix)
{
	struct slice list = { NULL, 0 }, none = { NULL, 0 };
	struct cursor c;
	uint8_t n8;
	uint16_t n16;

	if (body == NULL)
		return none;
	cursor_init(&c, body, len);
	if (prefix == 1 ? !cursor_u8(&c, &n8) : !cursor_u16(&c, &n16))
		return none;
	if (!cursor_take(&c, prefix == 1 ? n8 : n16, &list) || cursor_left(&c) != 0 || list.len % 2 != 0)
		return none;
	return list;
}

/* The ECDHE suites the server allows (tls/context.c), by certificate type. */
static const uint16_t ecdsa_suites[] = { 0xc02b, 0xc02c, 0xcca9 };
static const uint16_t rsa_suites[] = { 0xc02f, 0xc030, 0xcca8 };

static int any_suite(const struct tls_hello_algs *h, const uint16_t *s, size_t n)
{
	if (h->suites_len % 2 != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (has_u16(h->suites, h->suites_len, s[i]))
			return 1;
	}
	return 0;
}

/* In TLS 1.2 a signature scheme is a hash byte and a signature byte
 * (RFC 5246 7.4.1.4.1), plus the RSA-PSS codes of RFC 8446. */
static int tls12_sig(struct slice algs, int rsa)
{
	struct cursor c;
	uint16_t v;

	cursor_init(&c, algs.ptr, algs.len);
	while (cursor_u16(&c, &v)) {
		uint8_t hash = (uint8_t)(v >> 8), sig = (uint8_t)v;

		if (rsa ? (sig == 0x01 && hash >= 0x02 && hash <= 0x06) || (v >= 0x0804 && v <= 0x0806)
		        : sig == 0x03 && hash >= 0x02 && hash <= 0x06)
			return 1;
	}
	return 0;
}

unsigned tls_hello_caps(const struct tls_hello_algs *h)
{
	struct slice versions = u16_list(h->versions, h->versions_len, 1);
	struct slice algs = u16_list(h->sigalgs, h->sigalgs_len, 2);
	unsigned caps = 0;

	if (has_u16(versions.ptr, versions.len, 0x0304)) {
		/* TLS 1.3 is chosen: the curve is in the scheme, RSA means PSS. */
		if (has_u16(algs.ptr, algs.len, 0x0403))
			caps |= TLS_CAN_ECDSA_P256;
		if (has_u16(algs.ptr, algs.len, 0x0503))
			caps |= TLS_CAN_ECDSA_P384;
		if (has_u16(algs.ptr, algs.len, 0x0603))
			caps |= TLS_CAN_ECDSA_P521;
		if (has_u16(algs.ptr, algs.len, 0x0804) || has_u16(algs.ptr, algs.len, 0x0805) ||
		    has_u16(algs.ptr, algs.len, 0x0806))
			caps |= TLS_CAN_RSA;
		return caps;
	}
	/* TLS 1.2: the suite names the certificate type; without the extension
	 * the client accepts SHA-1 signatures of either type (RFC 5246). */
	if (any_suite(h, ecdsa_suites, sizeof(ecdsa_suites) / sizeof(ecdsa_suites[0])) &&
	    (h->sigalgs == NULL || tls12_sig(algs, 0)))
		caps |= TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384 | TLS_CAN_ECDSA_P521;
	if (any_suite(h, rsa_suites, sizeof(rsa_suites) / sizeof(rsa_suites[0])) &&
	    (h->sigalgs == NULL || tls12_sig(algs, 1)))
		caps |= TLS_CAN_RSA;
	return caps;
}

/* ---- the choice ------------------------------------------------------------ */

static enum tls_sni_match cert_match(const struct tls_sni_cert *c, const char *host, size_t hlen)
{
	enum tls_sni_match best = TLS_SNI_NONE;

	for (size_t i = 0; i < c->n_names && best != TLS_SNI_EXACT; i++) {
		enum tls_sni_match m = match_checked(c->names[i], host, hlen);

		if (m > best)
			best = m;
	}
	return best;
}

static int can_use(enum tls_key_kind k, unsigned caps)
{
	switch (k) {
	case TLS_KEY_RSA:
		return (caps & TLS_CAN_RSA) != 0;
	case TLS_KEY_ECDSA_P256:
		return (caps & TLS_CAN_ECDSA_P256) != 0;
	case TLS_KEY_ECDSA_P384:
		return (caps & TLS_CAN_ECDSA_P384) != 0;
	case TLS_KEY_ECDSA_P521:
		return (caps & TLS_CAN_ECDSA_P521) != 0;
	case TLS_KEY_OTHER:
		break;
	}
	return 0;
}

size_t tls_sni_choose(const struct tls_sni_cert *certs, size_t n, const char *host, unsigned caps)
{
	enum tls_sni_match level = TLS_SNI_NONE;
	size_t hlen = host ? host_len(host) : 0, first = n, ecdsa = n, rsa = n;

	for (size_t i = 0; hlen > 0 && i < n; i++) {
		enum tls_sni_match m = cert_match(&certs[i], host, hlen);

		if (m > level)
			level = m;
	}
	for (size_t i = 0; i < n; i++) {
		int candidate = level == TLS_SNI_NONE ? i == 0 || certs[i].serves_default
		                                      : cert_match(&certs[i], host, hlen) == level;

		if (!candidate)
			continue;
		if (first == n)
			first = i;
		if (certs[i].key == TLS_KEY_RSA) {
			if (rsa == n && can_use(certs[i].key, caps))
				rsa = i;
		} else if (certs[i].key != TLS_KEY_OTHER) {
			if (ecdsa == n && can_use(certs[i].key, caps))
				ecdsa = i;
		}
	}
	if (ecdsa < n)
		return ecdsa;
	if (rsa < n)
		return rsa;
	return first < n ? first : 0;
}
