/*
 * libFuzzer target for choosing a certificate pair (tls/sni_match.c): the
 * ClientHello lists and host names come from the client, so arbitrary bytes
 * there must be read within bounds, and the answers must agree with
 * themselves: known capability bits only, an index in range, a match that
 * does not depend on case, and an exact match that holds both ways round.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/sni_match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALL_CAPS (TLS_CAN_RSA | TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384 | TLS_CAN_ECDSA_P521)

/* The next |n| bytes of the input as a NUL-terminated string (in |buf|). */
static const char *take_string(const uint8_t **p, size_t *left, size_t n, char *buf, size_t cap)
{
	if (n > *left)
		n = *left;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p += n;
	*left -= n;
	return buf;
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello_algs h;
	char host[300], pattern[300], host_up[300], names_buf[2][300];
	const char *names[2];
	struct tls_sni_cert certs[2];
	const uint8_t *p = data;
	size_t left = size, ls, lv, la, lh, lp;
	enum tls_sni_match m;
	unsigned caps;

	if (size < 5)
		return 0;
	ls = p[0] % 64, lv = p[1] % 16, la = p[2] % 64, lh = p[3] % 128, lp = p[4] % 128;
	p += 5, left -= 5;
	/* The lists are views of the input (the bytes after each are not
	 * theirs), so a read past a length is an ASan report. */
	h.suites = p, h.suites_len = ls < left ? ls : left;
	p += h.suites_len, left -= h.suites_len;
	h.versions = lv ? p : NULL, h.versions_len = lv < left ? lv : left;
	p += h.versions_len, left -= h.versions_len;
	h.sigalgs = la ? p : NULL, h.sigalgs_len = la < left ? la : left;
	p += h.sigalgs_len, left -= h.sigalgs_len;
	caps = tls_hello_caps(&h);
	if (caps & ~ALL_CAPS)
		abort();

	take_string(&p, &left, lh, host, sizeof(host));
	take_string(&p, &left, lp, pattern, sizeof(pattern));
	m = tls_sni_name_match(pattern, host);
	strcpy(host_up, host);
	upper(host_up);
	if (tls_sni_name_match(pattern, host_up) != m)
		abort();
	if (m == TLS_SNI_EXACT && tls_sni_name_match(host, pattern) != TLS_SNI_EXACT)
		abort();

	/* Two pairs named by the input; the choice stays in range. */
	strcpy(names_buf[0], pattern);
	strcpy(names_buf[1], host);
	names[0] = names_buf[0];
	names[1] = names_buf[1];
	certs[0] = (struct tls_sni_cert){ &names[0], 1, (enum tls_key_kind)(size % 5), 1 };
	certs[1] = (struct tls_sni_cert){ &names[1], 1, (enum tls_key_kind)(lh % 5), 0 };
	certs[1].serves_default = (unsigned char)tls_sni_same_names(&certs[0], &certs[1]);
	if (tls_sni_choose(certs, 2, host, caps) >= 2 || tls_sni_choose(certs, 2, NULL, caps) >= 2 ||
	    tls_sni_choose(certs, 1, pattern, caps) != 0)
		abort();
	return 0;
}
