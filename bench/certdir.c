/*
 * Pairing client certificates with keys from two directories (certdir.h).
 */
#include "bench/certdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAIRS_MAX 100000

int bench_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int by_version(const void *a, const void *b)
{
	return strverscmp(((const struct bench_cert_pair *)a)->cert,
	                  ((const struct bench_cert_pair *)b)->cert);
}

static char *join(const char *dir, const char *name, size_t name_len, const char *ext)
{
	size_t n = strlen(dir) + 1 + name_len + strlen(ext) + 1;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%.*s%s", dir, (int)name_len, name, ext);
	return p;
}

/* Fills |p| for certificate NAME.pem (|name_len| bytes of NAME). Returns
 * 1, 0 on error, or 2 if NAME.pem is not a regular file (to be skipped). */
static int add_pair(struct bench_cert_pair *p, const char *cert_dir, const char *key_dir,
                    const char *name, size_t name_len, char *err, size_t errlen)
{
	p->cert = join(cert_dir, name, name_len, ".pem");
	p->key = join(key_dir, name, name_len, ".key");
	if (p->cert == NULL || p->key == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	if (!is_file(p->cert))
		return 2;
	if (!is_file(p->key)) {
		free(p->key);
		p->key = join(key_dir, name, name_len, ".pem");
		if (p->key == NULL || !is_file(p->key)) {
			snprintf(err, errlen, "certificate %s has no key %.*s.key or %.*s.pem in %s",
			         p->cert, (int)name_len, name, (int)name_len, name, key_dir);
			return 0;
		}
	}
	return 1;
}

int bench_cert_pairs_list(const char *cert_dir, const char *key_dir, struct bench_cert_pair **pairs,
                          size_t *n, char *err, size_t errlen)
{
	DIR *d = opendir(cert_dir);
	struct bench_cert_pair *v = NULL, *grown;
	struct dirent *e;
	size_t cap = 0, len;
	int rc;

	*pairs = NULL;
	*n = 0;
	if (d == NULL) {
		snprintf(err, errlen, "cannot open the certificate directory %s", cert_dir);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len <= 4 || strcmp(e->d_name + len - 4, ".pem") != 0 || e->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = cap <= PAIRS_MAX ? realloc(v, cap * sizeof(*v)) : NULL;
			if (grown == NULL) {
				snprintf(err, errlen, "too many certificates in %s", cert_dir);
				goto err;
			}
			v = grown;
		}
		memset(&v[*n], 0, sizeof(v[*n]));
		(*n)++;
		rc = add_pair(&v[*n - 1], cert_dir, key_dir, e->d_name, len - 4, err, errlen);
		if (rc == 0)
			goto err;
		if (rc == 2) {          /* e.g. a directory named x.pem */
			(*n)--;
			free(v[*n].cert);
			free(v[*n].key);
		}
	}
	closedir(d);
	d = NULL;
	if (*n == 0) {
		snprintf(err, errlen, "no *.pem certificate in %s", cert_dir);
		goto err;
	}
	qsort(v, *n, sizeof(*v), by_version);
	*pairs = v;
	return 1;
err:
	if (d != NULL)
		closedir(d);
	bench_cert_pairs_free(v, *n);
	*n = 0;
	return 0;
}

void bench_cert_pairs_free(struct bench_cert_pair *pairs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(pairs[i].cert);
		free(pairs[i].key);
	}
	free(pairs);
}
