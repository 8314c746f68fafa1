/*
 * mqtls-bench's --cert DIR / --key DIR pairing: names in version order,
 * NAME.key before NAME.pem in the key directory, clear refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/certdir.h"

struct dirs {
	char certs[64], keys[64];
};

static void touch(const char *dir, const char *name)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
}

static int setup(void **state)
{
	struct dirs *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->certs, sizeof(d->certs), "/tmp/bench-certdir-XXXXXX");
	snprintf(d->keys, sizeof(d->keys), "/tmp/bench-keydir-XXXXXX");
	if (mkdtemp(d->certs) == NULL || mkdtemp(d->keys) == NULL)
		return -1;
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dirs *d = *state;
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", d->certs, d->keys);
	if (system(cmd) != 0)
		return -1;
	free(d);
	return 0;
}

static void test_pairs_come_in_version_order_with_key_or_pem(void **state)
{
	struct dirs *d = *state;
	struct bench_cert_pair *p;
	char err[256], want[256];
	size_t n;

	touch(d->certs, "dev-10.pem");
	touch(d->certs, "dev-2.pem");
	touch(d->certs, "notes.txt");
	touch(d->keys, "dev-10.key");
	touch(d->keys, "dev-2.pem");
	snprintf(want, sizeof(want), "%s/x.pem", d->certs);
	assert_int_equal(mkdir(want, 0700), 0);      /* a directory is not a certificate */
	assert_true(bench_cert_pairs_list(d->certs, d->keys, &p, &n, err, sizeof(err)));
	assert_int_equal(n, 2);
	snprintf(want, sizeof(want), "%s/dev-2.pem", d->certs);
	assert_string_equal(p[0].cert, want);
	snprintf(want, sizeof(want), "%s/dev-2.pem", d->keys);
	assert_string_equal(p[0].key, want);
	snprintf(want, sizeof(want), "%s/dev-10.key", d->keys);
	assert_string_equal(p[1].key, want);
	bench_cert_pairs_free(p, n);
}

static void test_one_directory_holds_certificates_and_keys(void **state)
{
	struct dirs *d = *state;
	struct bench_cert_pair *p;
	char err[256], want[256];
	size_t n;

	touch(d->certs, "a.pem");
	touch(d->certs, "a.key");
	assert_true(bench_cert_pairs_list(d->certs, d->certs, &p, &n, err, sizeof(err)));
	assert_int_equal(n, 1);
	snprintf(want, sizeof(want), "%s/a.key", d->certs);
	assert_string_equal(p[0].key, want);
	bench_cert_pairs_free(p, n);
}

static void test_empty_directory_is_refused(void **state)
{
	struct dirs *d = *state;
	struct bench_cert_pair *p;
	char err[256];
	size_t n;

	touch(d->certs, "readme");
	assert_false(bench_cert_pairs_list(d->certs, d->keys, &p, &n, err, sizeof(err)));
	assert_non_null(strstr(err, "no *.pem certificate"));
	assert_null(p);
	assert_int_equal(n, 0);
	assert_false(bench_cert_pairs_list("/nonexistent-bench-dir", d->keys, &p, &n, err, sizeof(err)));
}

static void test_certificate_without_key_is_refused(void **state)
{
	struct dirs *d = *state;
	struct bench_cert_pair *p;
	char err[256];
	size_t n;

	touch(d->certs, "a.pem");
	touch(d->certs, "b.pem");
	touch(d->keys, "a.key");
	assert_false(bench_cert_pairs_list(d->certs, d->keys, &p, &n, err, sizeof(err)));
	assert_non_null(strstr(err, "b.pem has no key b.key or b.pem"));
	assert_null(strchr(err, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pairs_come_in_version_order_with_key_or_pem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_directory_holds_certificates_and_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_directory_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certificate_without_key_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
