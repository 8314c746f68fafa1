/*
 * The password file table; see passwd.h.
 */
#include "proxy/auth/passwd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>
#include <openssl/rand.h>

#include "proxy/auth/pwhash.h"

struct passwd_entry {
	char *user;             /* owned; not NUL-terminated for lookups */
	size_t ulen;
	unsigned line;
	struct pwhash hash;
};

struct passwd_db {
	struct passwd_entry *entries;   /* owned, sorted by user */
	size_t count;
	size_t cap;
	size_t bad_lines;
	struct pwhash dummy;            /* what unknown users are checked against */
};

/* The parameter sets counted to choose the dummy; a file with more
 * distinct sets than this is unusual, and the first ones seen still win. */
#define MAX_PARAM_SETS 16

struct param_count {
	struct pwhash params;   /* salt and hash unused */
	size_t count;
};

static int same_params(const struct pwhash *a, const struct pwhash *b)
{
	return a->scheme == b->scheme && a->iterations == b->iterations &&
	       a->mem_kib == b->mem_kib && a->lanes == b->lanes && a->version == b->version &&
	       a->salt_len == b->salt_len && a->hash_len == b->hash_len;
}

/* Builds the dummy entry from the most common parameter set, with a random
 * salt and hash no password can be expected to match. */
static int choose_dummy(struct passwd_db *db)
{
	struct param_count sets[MAX_PARAM_SETS];
	size_t nsets = 0, i, j, best = 0;

	for (i = 0; i < db->count; i++) {
		for (j = 0; j < nsets; j++)
			if (same_params(&sets[j].params, &db->entries[i].hash))
				break;
		if (j < nsets) {
			sets[j].count++;
		} else if (nsets < MAX_PARAM_SETS) {
			sets[nsets].params = db->entries[i].hash;
			sets[nsets].count = 1;
			nsets++;
		}
	}
	for (j = 1; j < nsets; j++)
		if (sets[j].count > sets[best].count)
			best = j;
	if (nsets == 0) {
		/* Nobody can log in, so there is no timing to match. */
		memset(&db->dummy, 0, sizeof(db->dummy));
		db->dummy.scheme = PWHASH_SHA512;
		db->dummy.salt_len = 12;
		db->dummy.hash_len = 64;
	} else {
		db->dummy = sets[best].params;
		OPENSSL_cleanse(sets, sizeof(sets));
	}
	return RAND_bytes(db->dummy.salt, db->dummy.salt_len) &&
	       RAND_bytes(db->dummy.hash, db->dummy.hash_len);
}

static int user_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n > 0 ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* Sorts by user, then by line, so the first of duplicates comes first. */
static int entry_cmp(const void *pa, const void *pb)
{
	const struct passwd_entry *a = pa, *b = pb;
	int c = user_cmp(a->user, a->ulen, b->user, b->ulen);

	if (c != 0)
		return c;
	return (a->line > b->line) - (a->line < b->line);
}

static void report(passwd_log_fn *log, void *arg, const char *path, unsigned line,
		   const char *reason, struct passwd_db *db)
{
	db->bad_lines++;
	if (log != NULL)
		log(arg, path, line, reason);
}

/* Removes the trailing newline and white space from the `*len` bytes. */
static void trim_end(const char *s, size_t *len)
{
	while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' ||
			    s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
}

static int is_blank_or_comment(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == len || s[i] == '#';
}

/* Parses one line into a new entry at the end of the table. Returns 1 if
 * it was added, 0 with `*why` set if the line is unusable, -1 on out of
 * memory. */
static int add_line(struct passwd_db *db, const char *s, size_t len, unsigned line,
		    const char **why)
{
	const char *colon = memchr(s, ':', len);
	struct passwd_entry *e;
	size_t ulen;

	*why = "no ':' between user and hash";
	if (colon == NULL)
		return 0;
	ulen = (size_t)(colon - s);
	*why = "empty user name";
	if (ulen == 0)
		return 0;
	if (db->count == db->cap) {
		size_t ncap = db->cap ? db->cap * 2 : 16;
		struct passwd_entry *n = realloc(db->entries, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		db->entries = n;
		db->cap = ncap;
	}
	e = &db->entries[db->count];
	if (!pwhash_parse(colon + 1, len - ulen - 1, &e->hash, why))
		return 0;
	e->user = malloc(ulen);
	if (e->user == NULL)
		return -1;
	memcpy(e->user, s, ulen);
	e->ulen = ulen;
	e->line = line;
	db->count++;
	return 1;
}

static int line_cmp(const void *pa, const void *pb)
{
	unsigned a = *(const unsigned *)pa, b = *(const unsigned *)pb;

	return (a > b) - (a < b);
}

/* Sorts the table and drops every later line naming an earlier user,
 * reporting the dropped ones in file order. Returns 0 on out of memory. */
static int sort_and_dedup(struct passwd_db *db, passwd_log_fn *log, void *arg, const char *path)
{
	unsigned *dups;
	size_t i, kept = 0, ndups = 0;

	if (db->count == 0)
		return 1;
	qsort(db->entries, db->count, sizeof(db->entries[0]), entry_cmp);
	dups = malloc(db->count * sizeof(*dups));
	if (dups == NULL)
		return 0;
	for (i = 0; i < db->count; i++) {
		struct passwd_entry *e = &db->entries[i];

		if (kept > 0 && user_cmp(db->entries[kept - 1].user, db->entries[kept - 1].ulen,
					 e->user, e->ulen) == 0) {
			dups[ndups++] = e->line;
			free(e->user);
			OPENSSL_cleanse(&e->hash, sizeof(e->hash));
			continue;
		}
		db->entries[kept++] = *e;
	}
	db->count = kept;
	qsort(dups, ndups, sizeof(*dups), line_cmp);
	for (i = 0; i < ndups; i++)
		report(log, arg, path, dups[i], "user already listed on an earlier line", db);
	free(dups);
	return 1;
}

struct passwd_db *passwd_db_load(const char *path, passwd_log_fn *log, void *log_arg,
				 char *err, size_t errlen)
{
	struct passwd_db *db;
	FILE *f = NULL;
	char *buf = NULL;
	size_t bufcap = 0;
	ssize_t got;
	unsigned line = 0;
	const char *why;
	int r;

	db = calloc(1, sizeof(*db));
	if (db == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto err;
	}
	while ((got = getline(&buf, &bufcap, f)) >= 0) {
		size_t len = (size_t)got;

		line++;
		trim_end(buf, &len);
		if (is_blank_or_comment(buf, len))
			continue;
		if (len > PASSWD_MAX_LINE) {
			report(log, log_arg, path, line, "line too long", db);
			continue;
		}
		if (memchr(buf, '\0', len) != NULL) {
			report(log, log_arg, path, line, "NUL byte in line", db);
			continue;
		}
		r = add_line(db, buf, len, line, &why);
		if (r < 0) {
			snprintf(err, errlen, "out of memory");
			goto err;
		}
		if (r == 0)
			report(log, log_arg, path, line, why, db);
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto err;
	}
	if (!sort_and_dedup(db, log, log_arg, path) || !choose_dummy(db)) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	if (buf != NULL)
		OPENSSL_cleanse(buf, bufcap);
	free(buf);
	fclose(f);
	return db;
err:
	if (buf != NULL)
		OPENSSL_cleanse(buf, bufcap);
	free(buf);
	if (f != NULL)
		fclose(f);
	passwd_db_free(db);
	return NULL;
}

void passwd_db_free(struct passwd_db *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->count; i++)
		free(db->entries[i].user);
	if (db->entries != NULL)
		OPENSSL_cleanse(db->entries, db->cap * sizeof(db->entries[0]));
	free(db->entries);
	OPENSSL_cleanse(db, sizeof(*db));
	free(db);
}

size_t passwd_db_count(const struct passwd_db *db)
{
	return db->count;
}

size_t passwd_db_bad_lines(const struct passwd_db *db)
{
	return db->bad_lines;
}

static const struct passwd_entry *lookup(const struct passwd_db *db, const char *user,
					 size_t ulen)
{
	size_t lo = 0, hi = db->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct passwd_entry *e = &db->entries[mid];
		int c = user_cmp(user, ulen, e->user, e->ulen);

		if (c == 0)
			return e;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

enum passwd_result passwd_db_check(const struct passwd_db *db, const char *user, size_t ulen,
				   const uint8_t *pw, size_t pwlen)
{
	const struct passwd_entry *e = lookup(db, user, ulen);

	if (e == NULL) {
		/* Do the same work as for a real entry; the result is ignored. */
		(void)pwhash_verify(&db->dummy, pw, pwlen);
		return PASSWD_UNKNOWN_USER;
	}
	return pwhash_verify(&e->hash, pw, pwlen) ? PASSWD_OK : PASSWD_BAD_PASSWORD;
}

uint32_t passwd_db_cost_us(const struct passwd_db *db, const char *user, size_t ulen)
{
	const struct passwd_entry *e = lookup(db, user, ulen);

	return pwhash_cost_us(e != NULL ? &e->hash : &db->dummy);
}
