/*
 * Topic access control at the edge (`--acl-file FILE`), in mosquitto's
 * `acl_file` syntax:
 *
 *   # a comment (also after leading blanks); blank lines are ignored
 *   topic [read|write|readwrite|deny] TOPIC     general section: clients
 *                                               without a username
 *   user NAME                                   starts NAME's section
 *   topic [read|write|readwrite|deny] TOPIC     a rule for NAME only
 *   pattern [read|write|readwrite|deny] TOPIC   for every client, wherever
 *                                               it is written; %u is the
 *                                               username, %c the client id
 *
 * The access word is optional (default readwrite) unless the topic holds a
 * blank; a TOPIC is a Topic Filter and may use + and #. `user` sections
 * with the same name are merged.
 *
 * Which rules apply (as mosquitto's acl_file does): a client with a
 * username gets its user's section (none if the file has no section for
 * it) and the patterns; a client without a username gets the general
 * section and the patterns.
 *
 * The decision for a topic (PUBLISH, access WRITE) or a filter (SUBSCRIBE,
 * access READ):
 *   1. A client whose username or client id holds '+' or '#' is denied
 *      everything when the file has patterns (mosquitto refuses such
 *      clients all pattern matches; mqtls refuses them altogether).
 *   2. Deny wins: if any applicable `deny` rule can match a topic the
 *      subject can match (overlap), access is denied.
 *   3. Otherwise access is granted if an applicable rule with that access
 *      covers the subject: for a topic, matches it; for a SUBSCRIBE filter,
 *      matches every topic the filter can match ("a/#" allows subscribing
 *      to "a/+/b"; "a/+" does not allow "a/#"). mosquitto checks read
 *      rights per delivered message; mqtls leaves the broker->client
 *      stream untouched, so it decides at SUBSCRIBE and must be sure of
 *      the whole filter.
 *   4. Nothing matched: denied.
 * Pattern substitution is verbatim ('/' in a value adds levels, as in
 * mosquitto). A pattern that uses %u does not apply to a client without a
 * username; a granting pattern whose %u or %c would be empty grants
 * nothing (an empty client id is the broker's to assign).
 *
 * The table is immutable once built and may be shared by any number of
 * threads; a reload builds a new one and swaps the pointer.
 */
#ifndef PROXY_ACL_H
#define PROXY_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt/cursor.h"

enum acl_access {
	ACL_READ = 1,    /* SUBSCRIBE (and so receiving) */
	ACL_WRITE = 2,   /* PUBLISH */
};

#define ACL_MAX_LINE 8192            /* bytes per line, newline excluded */
#define ACL_MAX_RULES 100000         /* topic + pattern lines */
#define ACL_MAX_FILE (16u << 20)     /* bytes */

struct acl;

/*
 * Reads the ACL file at |path|. Returns a new table owned by the caller
 * (free with acl_free), or NULL with one line "PATH:LINE: reason" (or
 * "PATH: reason") in |err| (capacity |errlen|). Any bad line fails the
 * whole file: a half-read ACL would deny or allow the wrong things.
 */
struct acl *acl_load(const char *path, char *err, size_t errlen);

/*
 * The same for |len| bytes of file text at |text| (borrowed); |name| is
 * used in error messages.
 */
struct acl *acl_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);

/*
 * Builds a table from lists of Topic Filters, as a JWT `acl` claim carries
 * them (EMQX style {"pub": [...], "sub": [...]}): each |pub| entry becomes
 * `pattern write F`, each |sub| entry `pattern read F`, so %u and %c work.
 * The slices are borrowed. Returns NULL with a reason in |err| if an entry
 * is not a valid UTF-8 filter or there are too many.
 */
struct acl *acl_from_lists(const struct slice *pub, size_t npub, const struct slice *sub,
                           size_t nsub, char *err, size_t errlen);

/* Takes one more reference to |acl| (NULL is returned as is): a session
 * keeps the table it started with across a reload. */
struct acl *acl_ref(struct acl *acl);

/* Drops a reference to |acl| and frees it with the last; acl_free(NULL) is
 * a no-op. */
void acl_free(struct acl *acl);

/* The number of topic and pattern rules, and of user sections. */
size_t acl_rule_count(const struct acl *acl);
size_t acl_user_count(const struct acl *acl);

/*
 * Decides |access| to the |tlen| bytes at |topic| (a Topic Name for
 * ACL_WRITE, a Topic Filter for ACL_READ; for a shared subscription the
 * filter after "$share/NAME/") for the client with username |user|
 * (|ulen| bytes; NULL when the client sent none) and client id
 * |client_id| (|clen| bytes). Returns 1 if allowed, 0 if denied (also for
 * a NULL |acl|, an invalid topic, or memory exhaustion). All buffers are
 * borrowed; safe to call from any thread.
 */
int acl_check(const struct acl *acl, const char *user, size_t ulen, const char *client_id,
              size_t clen, const uint8_t *topic, size_t tlen, enum acl_access access);

#endif
