/*
 * Password hashes and the password file (proxy/auth/pwhash.c, passwd.c).
 *
 * Fixed vectors were computed independently of this code: the $7$ and $6$
 * ones with Python's hashlib (pbkdf2_hmac('sha512', ...) and
 * sha512(password + salt)) or taken from files mosquitto_passwd 2.0.11
 * wrote; the argon2id ones with libargon2's own encoder
 * (argon2id_hash_encoded), the first being its reference test vector.
 * Files written by the real mosquitto_passwd are also made at test time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/auth/passwd.h"
#include "proxy/auth/pwhash.h"

/* mosquitto_passwd 2.0.11 -b: alice/secret, bob/"p w"; -H sha512: carol/secret. */
#define MOSQ_ALICE "$7$101$7JJupy0FCRiI/fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="
#define MOSQ_BOB "$7$101$ginaBY7OQZxySk+g$RXXxlAqKmlARqjZN2hbxFXh6baqlfaJP3+6f72NiWlpK1JrZJEBIt+lPQ08HwXQYSn5Ic5Vrp//WvYJorEzEAg=="
#define MOSQ_CAROL "$6$e0CGA8zB+3zfkHs8$ZgQmsSFsrGsU5MPpvvo49p979jXsbFYiq5mlxRJWfPu5ClY54OCtfGmLbnKqCmuTx+3MOJxDLdFLqSjerPlHiQ=="
/* hashlib, password "hunter2", salt = bytes 0..63. */
#define SALT64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
#define PBKDF2_1000 "$7$1000$" SALT64 "$zrx3yb37jNWrgMrLhkvR/xQAL9tKKXAajZE1dlM2KsSFc2s98IDxfPmhhZpbUVKUzJOCOELwBv1BrIDEMp2jNg=="
#define PBKDF2_210000 "$7$210000$" SALT64 "$cesvSPT9AreXkbNqbr9PV3ZS73gpznU+N+s8PpVkn0NcE74PZIvf8WBcLSZ+Q7n3BHMO9lagIpZmpot95fAUXg=="
/* hashlib: "correct horse" with salt "0123456789ab"; "" with 12 zero bytes. */
#define SHA512_HORSE "$6$MDEyMzQ1Njc4OWFi$vMblpzgCS5oj2lUbBcEO+PGDOv2Ychcm2aCJlOM/97en/aLeFXM5JAedC3UgjydjvghOxFalEDxmI0OHi3Vlsg=="
#define SHA512_EMPTY "$6$AAAAAAAAAAAAAAAA$ZmqaGnVC6JWp9EfRw+D/1nm79jRuDEP1x6czxG9eVsL2Xmnf1HaanK0rebMdKC8coqopbvQb2YM5R62hlPRpQA=="
/* libargon2: "password"/"somesalt"; "secret"; "p4ss:word" with 4 lanes. */
#define ARGON2_REF "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
#define ARGON2_SMALL "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$pbviq+1UUgwZCmLIr4Hgk7mEMsxnRLuOb2HfvIaBwGY"
#define ARGON2_LANES "$argon2id$v=19$m=256,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$u78+Qq4+5Q4ZRULNOfZVSQ"

struct fixture {
	char dir[64];
	char path[128];
};

/* What the log callback saw. */
struct log_record {
	unsigned lines[16];
	char reasons[16][128];
	size_t n;
};

static void record_log(void *arg, const char *path, unsigned line, const char *reason)
{
	struct log_record *r = arg;

	if (r->n < 16) {
		r->lines[r->n] = line;
		snprintf(r->reasons[r->n], sizeof(r->reasons[0]), "%s", reason);
		r->n++;
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqtls-test-passwd-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/users", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static struct passwd_db *load(const char *path, struct log_record *rec)
{
	char err[256];
	struct passwd_db *db = passwd_db_load(path, record_log, rec, err, sizeof(err));

	if (db == NULL)
		fail_msg("load failed: %s", err);
	return db;
}

static enum passwd_result check(const struct passwd_db *db, const char *user, const char *pw)
{
	return passwd_db_check(db, user, strlen(user), (const uint8_t *)pw, strlen(pw));
}

/* Parses `s` and checks `pw` against it. */
static int verify_str(const char *s, const char *pw)
{
	struct pwhash h;
	const char *why;

	assert_int_equal(pwhash_parse(s, strlen(s), &h, &why), 1);
	return pwhash_verify(&h, (const uint8_t *)pw, strlen(pw));
}

static int parses(const char *s)
{
	struct pwhash h;
	const char *why = NULL;
	int ok = pwhash_parse(s, strlen(s), &h, &why);

	if (!ok)
		assert_non_null(why);
	return ok;
}

static void test_pbkdf2_hash_written_by_mosquitto_2_0_verifies(void **state)
{
	assert_int_equal(verify_str(MOSQ_ALICE, "secret"), 1);
	assert_int_equal(verify_str(MOSQ_BOB, "p w"), 1);
	assert_int_equal(verify_str(MOSQ_ALICE, "Secret"), 0);
}

static void test_pbkdf2_with_a_64_byte_salt_verifies_at_any_iteration_count(void **state)
{
	struct pwhash h;
	const char *why;

	assert_int_equal(pwhash_parse(PBKDF2_1000, strlen(PBKDF2_1000), &h, &why), 1);
	assert_int_equal(h.salt_len, 64);
	assert_int_equal(h.iterations, 1000);
	assert_int_equal(verify_str(PBKDF2_1000, "hunter2"), 1);
	assert_int_equal(verify_str(PBKDF2_1000, "hunter3"), 0);
	assert_int_equal(verify_str(PBKDF2_210000, "hunter2"), 1);
}

static void test_sha512_hash_verifies_as_sha512_of_password_then_salt(void **state)
{
	assert_int_equal(verify_str(MOSQ_CAROL, "secret"), 1);
	assert_int_equal(verify_str(SHA512_HORSE, "correct horse"), 1);
	assert_int_equal(verify_str(SHA512_HORSE, "correct horse "), 0);
	assert_int_equal(verify_str(SHA512_EMPTY, ""), 1);
}

static void test_argon2id_phc_strings_verify(void **state)
{
	assert_int_equal(verify_str(ARGON2_REF, "password"), 1);
	assert_int_equal(verify_str(ARGON2_REF, "passwore"), 0);
	assert_int_equal(verify_str(ARGON2_SMALL, "secret"), 1);
	assert_int_equal(verify_str(ARGON2_LANES, "p4ss:word"), 1);
	assert_int_equal(verify_str(ARGON2_LANES, "p4ss:wor"), 0);
}

static void test_parse_rejects_malformed_hashes(void **state)
{
	assert_int_equal(parses("secret"), 0);
	assert_int_equal(parses("$5$abc$def"), 0);
	assert_int_equal(parses("$7$0$" SALT64 "$zrx3"), 0);
	assert_int_equal(parses("$7$0101$7JJupy0FCRiI/fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="), 0);
	assert_int_equal(parses("$7$99999999999$7JJupy0FCRiI/fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="), 0);
	/* The hash must be exactly 64 bytes. */
	assert_int_equal(parses("$7$101$7JJupy0FCRiI/fkr$+QphYGsdUsmI"), 0);
	/* A character outside the alphabet, and a missing field. */
	assert_int_equal(parses("$7$101$7JJupy0FCRiI*fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="), 0);
	assert_int_equal(parses("$7$101$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="), 0);
	assert_int_equal(parses("$6$e0CGA8zB+3zfkHs8$ZgQm$"), 0);
	assert_int_equal(parses("$argon2id$v=19$m=65536,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	assert_int_equal(parses("$argon2id$v=18$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	assert_int_equal(parses("$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	assert_int_equal(parses("$argon2id$v=19$m=4,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	/* PHC base64 has no padding. */
	assert_int_equal(parses("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	assert_int_equal(parses("$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"), 0);
	assert_int_equal(parses(ARGON2_REF), 1);
}

static void test_argon2id_without_a_version_field_means_version_16(void **state)
{
	struct pwhash h;
	const char *why;
	const char *s = "$argon2id$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$pbviq+1UUgwZCmLIr4Hgk7mEMsxnRLuOb2HfvIaBwGY";

	assert_int_equal(pwhash_parse(s, strlen(s), &h, &why), 1);
	assert_int_equal(h.version, 0x10);
	/* The vector was made with version 19, so it must not verify as 16. */
	assert_int_equal(pwhash_verify(&h, (const uint8_t *)"secret", 6), 0);
}

static void test_format_writes_back_what_parse_read(void **state)
{
	const char *v[] = { MOSQ_ALICE, PBKDF2_1000, MOSQ_CAROL, ARGON2_REF, ARGON2_LANES };
	char out[512];
	struct pwhash h;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(pwhash_parse(v[i], strlen(v[i]), &h, &why), 1);
		assert_int_equal(pwhash_format(&h, out, sizeof(out)), 1);
		assert_string_equal(out, v[i]);
	}
	assert_int_equal(pwhash_format(&h, out, 20), 0);
}

static void test_create_makes_hashes_that_verify_and_use_fresh_salts(void **state)
{
	enum pwhash_scheme schemes[] = { PWHASH_SHA512, PWHASH_PBKDF2_SHA512, PWHASH_ARGON2ID };
	struct pwhash a, b;
	size_t i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(pwhash_create(&a, schemes[i], (const uint8_t *)"pw", 2), 1);
		assert_int_equal(pwhash_create(&b, schemes[i], (const uint8_t *)"pw", 2), 1);
		assert_int_equal(pwhash_verify(&a, (const uint8_t *)"pw", 2), 1);
		assert_int_equal(pwhash_verify(&a, (const uint8_t *)"pW", 2), 0);
		assert_memory_not_equal(a.salt, b.salt, a.salt_len);
	}
	assert_int_equal(a.mem_kib, PWHASH_DEFAULT_ARGON2_MEM_KIB);
}

static void test_file_written_by_mosquitto_passwd_loads_and_verifies(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;
	char cmd[1024];

	if (access("/usr/bin/mosquitto_passwd", X_OK) != 0)
		skip();
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/mosquitto_passwd -c -b %s alice 'alice pw' && "
		 "/usr/bin/mosquitto_passwd -b %s bob b0b && "
		 "/usr/bin/mosquitto_passwd -H sha512 -b %s carol 'c:a:r:o:l' && "
		 "/usr/bin/mosquitto_passwd -b %s empty ''",
		 f->path, f->path, f->path, f->path);
	assert_int_equal(system(cmd), 0);
	db = load(f->path, &rec);
	assert_int_equal(rec.n, 0);
	assert_int_equal(passwd_db_count(db), 4);
	assert_int_equal(check(db, "alice", "alice pw"), PASSWD_OK);
	assert_int_equal(check(db, "bob", "b0b"), PASSWD_OK);
	assert_int_equal(check(db, "carol", "c:a:r:o:l"), PASSWD_OK);
	assert_int_equal(check(db, "alice", "b0b"), PASSWD_BAD_PASSWORD);
	assert_int_equal(check(db, "mallory", "b0b"), PASSWD_UNKNOWN_USER);
	passwd_db_free(db);
}

static void test_empty_password_set_by_mosquitto_passwd_only_accepts_empty(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;
	char cmd[256];

	if (access("/usr/bin/mosquitto_passwd", X_OK) != 0)
		skip();
	snprintf(cmd, sizeof(cmd), "/usr/bin/mosquitto_passwd -c -b %s empty ''", f->path);
	assert_int_equal(system(cmd), 0);
	db = load(f->path, &rec);
	assert_int_equal(check(db, "empty", ""), PASSWD_OK);
	assert_int_equal(check(db, "empty", " "), PASSWD_BAD_PASSWORD);
	/* A CONNECT without a password reaches here as NULL and length 0. */
	assert_int_equal(passwd_db_check(db, "empty", 5, NULL, 0), PASSWD_OK);
	passwd_db_free(db);
}

static void test_malformed_lines_are_reported_by_number_without_the_hash(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;
	size_t i;

	write_file(f->path,
		   "# users\n"                                   /* 1 */
		   "alice:" MOSQ_ALICE "\n"                     /* 2 */
		   "plain:not-hashed-secret\n"                  /* 3 */
		   "nocolon\n"                                  /* 4 */
		   ":" MOSQ_BOB "\n"                            /* 5 */
		   "\n"                                         /* 6 */
		   "trunc:$7$101$7JJupy0FCRiI/fkr$+QphYGsd\n"   /* 7 */
		   "bob:" MOSQ_BOB "\n"                         /* 8 */
		   "alice:" MOSQ_BOB "\n");                     /* 9 */
	db = load(f->path, &rec);
	assert_int_equal(passwd_db_count(db), 2);
	assert_int_equal(passwd_db_bad_lines(db), 5);
	assert_int_equal(rec.n, 5);
	assert_int_equal(rec.lines[0], 3);
	assert_int_equal(rec.lines[1], 4);
	assert_int_equal(rec.lines[2], 5);
	assert_int_equal(rec.lines[3], 7);
	assert_int_equal(rec.lines[4], 9);
	for (i = 0; i < rec.n; i++) {
		assert_null(strstr(rec.reasons[i], "not-hashed-secret"));
		assert_null(strstr(rec.reasons[i], "+QphYGsd"));
		assert_null(strchr(rec.reasons[i], '$'));
	}
	/* The first of two lines for one user wins. */
	assert_int_equal(check(db, "alice", "secret"), PASSWD_OK);
	assert_int_equal(check(db, "alice", "p w"), PASSWD_BAD_PASSWORD);
	assert_int_equal(check(db, "bob", "p w"), PASSWD_OK);
	assert_int_equal(check(db, "plain", "not-hashed-secret"), PASSWD_UNKNOWN_USER);
	passwd_db_free(db);
}

static void test_crlf_line_ends_and_a_missing_final_newline_are_accepted(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;

	write_file(f->path, "alice:" MOSQ_ALICE "\r\n  # indented comment\r\nbob:" MOSQ_BOB);
	db = load(f->path, &rec);
	assert_int_equal(rec.n, 0);
	assert_int_equal(check(db, "alice", "secret"), PASSWD_OK);
	assert_int_equal(check(db, "bob", "p w"), PASSWD_OK);
	passwd_db_free(db);
}

static void test_user_names_match_exactly(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;

	write_file(f->path, "alice:" MOSQ_ALICE "\nbob:" MOSQ_BOB "\n");
	db = load(f->path, &rec);
	assert_int_equal(check(db, "Alice", "secret"), PASSWD_UNKNOWN_USER);
	assert_int_equal(check(db, "alic", "secret"), PASSWD_UNKNOWN_USER);
	assert_int_equal(check(db, "alicee", "secret"), PASSWD_UNKNOWN_USER);
	assert_int_equal(passwd_db_check(db, "alice\0", 6, (const uint8_t *)"secret", 6),
			 PASSWD_UNKNOWN_USER);
	assert_int_equal(passwd_db_check(db, NULL, 0, NULL, 0), PASSWD_UNKNOWN_USER);
	passwd_db_free(db);
}

static void test_missing_file_fails_with_a_message(void **state)
{
	char err[256] = "";

	assert_null(passwd_db_load("/nonexistent/mqtls/users", NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/mqtls/users"));
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_unknown_user_costs_as_much_as_a_wrong_password(void **state)
{
	struct fixture *f = *state;
	struct log_record rec = { .n = 0 };
	struct passwd_db *db;
	double t0, known, unknown;
	int i;

	/* Two users on 1000 iterations and one cheap $6$ entry: the dummy must
	 * take the common parameters, not the cheap odd one out. */
	write_file(f->path, "a:" PBKDF2_1000 "\nb:" PBKDF2_1000 "\nc:" SHA512_HORSE "\n");
	db = load(f->path, &rec);
	assert_int_equal(passwd_db_cost_us(db, "zz", 2), passwd_db_cost_us(db, "a", 1));
	assert_true(passwd_db_cost_us(db, "c", 1) < passwd_db_cost_us(db, "a", 1));
	/* Interleaved, so that both see the same load from other processes. */
	known = unknown = 0;
	for (i = 0; i < 50; i++) {
		t0 = cpu_seconds();
		assert_int_equal(check(db, "a", "wrong"), PASSWD_BAD_PASSWORD);
		known += cpu_seconds() - t0;
		t0 = cpu_seconds();
		assert_int_equal(check(db, "nobody", "wrong"), PASSWD_UNKNOWN_USER);
		unknown += cpu_seconds() - t0;
	}
	assert_true(unknown > known * 0.6 && unknown < known * 1.6);
	passwd_db_free(db);
}

static void test_cost_estimate_grows_with_the_work_factor(void **state)
{
	struct pwhash a, b;
	const char *why;

	assert_int_equal(pwhash_parse(PBKDF2_1000, strlen(PBKDF2_1000), &a, &why), 1);
	assert_int_equal(pwhash_parse(PBKDF2_210000, strlen(PBKDF2_210000), &b, &why), 1);
	assert_true(pwhash_cost_us(&b) > 100 * pwhash_cost_us(&a));
	assert_true(pwhash_cost_us(&a) >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pbkdf2_hash_written_by_mosquitto_2_0_verifies),
		cmocka_unit_test(test_pbkdf2_with_a_64_byte_salt_verifies_at_any_iteration_count),
		cmocka_unit_test(test_sha512_hash_verifies_as_sha512_of_password_then_salt),
		cmocka_unit_test(test_argon2id_phc_strings_verify),
		cmocka_unit_test(test_parse_rejects_malformed_hashes),
		cmocka_unit_test(test_argon2id_without_a_version_field_means_version_16),
		cmocka_unit_test(test_format_writes_back_what_parse_read),
		cmocka_unit_test(test_create_makes_hashes_that_verify_and_use_fresh_salts),
		cmocka_unit_test_setup_teardown(test_file_written_by_mosquitto_passwd_loads_and_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_password_set_by_mosquitto_passwd_only_accepts_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines_are_reported_by_number_without_the_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crlf_line_ends_and_a_missing_final_newline_are_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_names_match_exactly, setup, teardown),
		cmocka_unit_test(test_missing_file_fails_with_a_message),
		cmocka_unit_test_setup_teardown(test_unknown_user_costs_as_much_as_a_wrong_password, setup, teardown),
		cmocka_unit_test(test_cost_estimate_grows_with_the_work_factor),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
