/*
 * The password file (`--users FILE`): a Mosquitto-compatible list of
 * `user:hash` lines (see pwhash.h for the hash formats), loaded once into an
 * immutable table that any number of threads may query at the same time.
 *
 * Blank lines and lines starting with '#' are ignored, as mosquitto does. A
 * line that cannot be used (no ':', empty user, unknown hash type, bad
 * base64, a user listed twice) is reported through the log callback with
 * its line number and a reason -- never the hash -- and skipped; the count
 * of such lines is kept, so a reload can refuse a damaged file.
 */
#ifndef PROXY_AUTH_PASSWD_H
#define PROXY_AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

struct passwd_db;

enum passwd_result {
	PASSWD_OK,
	PASSWD_UNKNOWN_USER,
	PASSWD_BAD_PASSWORD,
};

/* Called once per skipped line. `path` and `reason` are borrowed for the
 * duration of the call. */
typedef void passwd_log_fn(void *arg, const char *path, unsigned line, const char *reason);

/* Longest line accepted, newline excluded. */
#define PASSWD_MAX_LINE 4096

/* Reads the password file at `path`. Returns a new table owned by the
 * caller (free it with passwd_db_free), or NULL if the file cannot be read
 * or memory runs out, with a message in `err` (capacity `errlen`). Bad
 * lines do not make it fail: each is passed to `log` (which may be NULL)
 * and counted by passwd_db_bad_lines(). */
struct passwd_db *passwd_db_load(const char *path, passwd_log_fn *log, void *log_arg,
				 char *err, size_t errlen);

/* Frees `db` and wipes the hashes it held. passwd_db_free(NULL) is a no-op. */
void passwd_db_free(struct passwd_db *db);

/* The number of usable entries, and of skipped lines. */
size_t passwd_db_count(const struct passwd_db *db);
size_t passwd_db_bad_lines(const struct passwd_db *db);

/* Checks `pw` for the user named by the `ulen` bytes at `user`. An unknown
 * user is checked against a dummy entry with the parameters most entries in
 * the file use, so it takes as long as a wrong password. May take
 * milliseconds (see passwd_db_cost_us) and is safe to call from any thread.
 * All buffers are borrowed. */
enum passwd_result passwd_db_check(const struct passwd_db *db, const char *user, size_t ulen,
				   const uint8_t *pw, size_t pwlen);

/* The estimated CPU time of passwd_db_check() for this user, in
 * microseconds; for an unknown user, that of the dummy entry, so the
 * decision to move the check off an event loop does not reveal which
 * users exist. */
uint32_t passwd_db_cost_us(const struct passwd_db *db, const char *user, size_t ulen);

#endif
