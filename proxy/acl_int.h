/*
 * How a table is built (acl.c owns its representation; acl_file.c reads
 * the text format through these calls). Not for use outside proxy/acl*.c.
 */
#ifndef PROXY_ACL_INT_H
#define PROXY_ACL_INT_H

#include <stddef.h>

struct acl;

/* An empty table being built, or NULL when memory runs out. */
struct acl *acl_new(void);

/* Makes the following topic rules belong to the user |name| (|len|
 * bytes, copied); before the first call they form the general section.
 * Returns 1, or 0 when memory runs out. */
int acl_begin_user(struct acl *a, const char *name, size_t len);

/* Adds a rule: |pattern| 1 for a pattern (for everyone), 0 for a topic
 * rule of the current section; |access| ACL_READ | ACL_WRITE, or 0 for
 * deny; |topic| is copied. Returns 1, or 0 when memory runs out or the
 * table already holds ACL_MAX_RULES rules. */
int acl_add_rule(struct acl *a, int pattern, unsigned access, const char *topic, size_t len);

/* Sorts the rules into their sections once all are added. Returns 1, or 0
 * when memory runs out. */
int acl_finish(struct acl *a);

/* Whether |len| bytes at |t| are a valid UTF-8 Topic Filter. */
int acl_topic_ok(const char *t, size_t len);

#endif
