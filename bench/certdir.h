/*
 * Client certificates from directories (`--cert DIR --key DIR`): every
 * regular file NAME.pem in the certificate directory is one client
 * certificate (chain); its key is NAME.key in the key directory or, if there
 * is none, NAME.pem there (so one directory may hold NAME.pem with both
 * certificate and key). Pairs are ordered by NAME in version order
 * (dev-2 before dev-10), and client i uses pair i modulo their number.
 */
#ifndef BENCH_CERTDIR_H
#define BENCH_CERTDIR_H

#include <stddef.h>

struct bench_cert_pair {
	char *cert;     /* owned path */
	char *key;      /* owned path */
};

/* Whether |path| names a directory. */
int bench_is_dir(const char *path);

/* Lists the pairs of |cert_dir| and |key_dir| into a new array *pairs of *n
 * (owned by the caller: bench_cert_pairs_free). Returns 0 with a one-line
 * reason in |err| (capacity |errlen|) for an unreadable or empty directory
 * or a certificate without a key. */
int bench_cert_pairs_list(const char *cert_dir, const char *key_dir, struct bench_cert_pair **pairs,
                          size_t *n, char *err, size_t errlen);

void bench_cert_pairs_free(struct bench_cert_pair *pairs, size_t n);

#endif
