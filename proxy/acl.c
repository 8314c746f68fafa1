/*
 * The ACL table (acl.h): its representation, how it is built (acl_int.h;
 * the text format is read by acl_file.c), and the decision for one topic
 * or filter.
 *
 * All text (topics and user names) lives in one pool. Rules are grouped
 * once all are added: the general section, then each user's section
 * (users sorted by name for a binary search), then the patterns; within a
 * group rules keep file order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/topic.h"
#include "proxy/acl.h"
#include "proxy/acl_int.h"

/* Longest expansion of a pattern: two topics' worth. Beyond it a grant
 * grants nothing and a deny denies everything. */
#define EXPAND_MAX (2u * 65536u)

enum owner { OWN_GENERAL, OWN_USER, OWN_PATTERN };

struct acl_rule {
	uint32_t off, len;       /* topic text in the pool */
	uint32_t owner_off;      /* OWN_USER: the user's name in the pool */
	uint32_t owner_len;
	uint32_t order;          /* line order, to keep it after sorting */
	uint8_t owner;           /* enum owner */
	uint8_t access;          /* ACL_READ | ACL_WRITE; 0 for deny */
	uint8_t uses_user;       /* pattern holds %u */
	uint8_t uses_client;     /* pattern holds %c */
};

struct acl_user {
	uint32_t name_off, name_len;
	size_t first, count;     /* its rules */
};

struct acl {
	int refs;                /* atomic: sessions share a table with a reload */
	char *pool;              /* owned */
	size_t pool_len, pool_cap;
	struct acl_rule *rules;  /* owned; grouped as described above */
	size_t nrules, rules_cap;
	struct acl_user *users;  /* owned; sorted by name */
	size_t nusers;
	size_t general_first, general_count;
	size_t pattern_first, pattern_count;
	int have_user;           /* while building: the current section */
	uint32_t user_off, user_len;
};

/* --- building ---------------------------------------------------------- */

static int pool_add(struct acl *a, const char *s, size_t n, uint32_t *off)
{
	if (a->pool_len + n > a->pool_cap) {
		size_t cap = a->pool_cap ? a->pool_cap : 256;
		char *p;

		while (cap < a->pool_len + n)
			cap *= 2;
		if (cap > UINT32_MAX || (p = realloc(a->pool, cap)) == NULL)
			return 0;
		a->pool = p;
		a->pool_cap = cap;
	}
	if (n > 0)
		memcpy(a->pool + a->pool_len, s, n);
	*off = (uint32_t)a->pool_len;
	a->pool_len += n;
	return 1;
}

static int has_seq(const char *s, size_t n, char c)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '%' && s[i + 1] == c)
			return 1;
	return 0;
}

/* Appends a rule; |owner_off|/|owner_len| name the user for OWN_USER. */
static int rule_add_owned(struct acl *a, enum owner owner, uint32_t owner_off, uint32_t owner_len,
                    unsigned access, const char *topic, size_t tlen)
{
	struct acl_rule *r;

	if (a->nrules >= ACL_MAX_RULES)
		return 0;
	if (a->nrules == a->rules_cap) {
		size_t cap = a->rules_cap ? a->rules_cap * 2 : 16;
		struct acl_rule *p = realloc(a->rules, cap * sizeof(*p));

		if (p == NULL)
			return 0;
		a->rules = p;
		a->rules_cap = cap;
	}
	r = &a->rules[a->nrules];
	memset(r, 0, sizeof(*r));
	if (!pool_add(a, topic, tlen, &r->off))
		return 0;
	r->len = (uint32_t)tlen;
	r->owner = (uint8_t)owner;
	r->owner_off = owner_off;
	r->owner_len = owner_len;
	r->access = (uint8_t)access;
	r->order = (uint32_t)a->nrules;
	if (owner == OWN_PATTERN) {
		r->uses_user = (uint8_t)has_seq(topic, tlen, 'u');
		r->uses_client = (uint8_t)has_seq(topic, tlen, 'c');
	}
	a->nrules++;
	return 1;
}

static int name_cmp(const char *pool, uint32_t ao, uint32_t al, uint32_t bo, uint32_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n > 0 ? memcmp(pool + ao, pool + bo, n) : 0;

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static int rule_cmp(const void *x, const void *y, void *arg)
{
	const struct acl_rule *a = x, *b = y;
	const char *pool = arg;
	int c;

	if (a->owner != b->owner)
		return a->owner < b->owner ? -1 : 1;
	if (a->owner == OWN_USER &&
	    (c = name_cmp(pool, a->owner_off, a->owner_len, b->owner_off, b->owner_len)) != 0)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

int acl_begin_user(struct acl *a, const char *name, size_t len)
{
	if (len > UINT32_MAX || !pool_add(a, name, len, &a->user_off))
		return 0;
	a->user_len = (uint32_t)len;
	a->have_user = 1;
	return 1;
}

int acl_add_rule(struct acl *a, int pattern, unsigned access, const char *topic, size_t len)
{
	enum owner owner = pattern ? OWN_PATTERN : a->have_user ? OWN_USER : OWN_GENERAL;

	return rule_add_owned(a, owner, a->user_off, a->user_len, access, topic, len);
}

int acl_topic_ok(const char *t, size_t len)
{
	struct slice s = { (const uint8_t *)t, len };

	return t != NULL && mqtt_utf8_valid(s.ptr, s.len) && mqtt_topic_filter_valid(s);
}

/* Sorts the rules into their groups and indexes the user sections. */
int acl_finish(struct acl *a)
{
	size_t i;

	if (a->nrules > 1)
		qsort_r(a->rules, a->nrules, sizeof(a->rules[0]), rule_cmp, a->pool);
	a->users = calloc(a->nrules > 0 ? a->nrules : 1, sizeof(a->users[0]));
	if (a->users == NULL)
		return 0;
	for (i = 0; i < a->nrules; i++) {
		const struct acl_rule *r = &a->rules[i];
		struct acl_user *u;

		if (r->owner == OWN_GENERAL) {
			if (a->general_count++ == 0)
				a->general_first = i;
		} else if (r->owner == OWN_PATTERN) {
			if (a->pattern_count++ == 0)
				a->pattern_first = i;
		} else {
			u = a->nusers > 0 ? &a->users[a->nusers - 1] : NULL;
			if (u == NULL || name_cmp(a->pool, u->name_off, u->name_len, r->owner_off,
			                          r->owner_len) != 0) {
				u = &a->users[a->nusers++];
				u->name_off = r->owner_off;
				u->name_len = r->owner_len;
				u->first = i;
			}
			u->count++;
		}
	}
	return 1;
}

struct acl *acl_new(void)
{
	struct acl *a = calloc(1, sizeof(struct acl));

	if (a)
		a->refs = 1;
	return a;
}

struct acl *acl_ref(struct acl *acl)
{
	if (acl)
		__atomic_add_fetch(&acl->refs, 1, __ATOMIC_RELAXED);
	return acl;
}

void acl_free(struct acl *acl)
{
	if (acl == NULL || __atomic_sub_fetch(&acl->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(acl->pool);
	free(acl->rules);
	free(acl->users);
	free(acl);
}

size_t acl_rule_count(const struct acl *acl)
{
	return acl != NULL ? acl->nrules : 0;
}

size_t acl_user_count(const struct acl *acl)
{
	return acl != NULL ? acl->nusers : 0;
}

/* --- JWT claims --------------------------------------------------------- */

struct acl *acl_from_lists(const struct slice *pub, size_t npub, const struct slice *sub,
                           size_t nsub, char *err, size_t errlen)
{
	struct acl *a = acl_new();
	size_t i, k;

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (k = 0; k < 2; k++) {
		const struct slice *list = k == 0 ? pub : sub;
		size_t n = k == 0 ? npub : nsub;

		for (i = 0; i < n; i++) {
			const char *t = (const char *)list[i].ptr;

			if (!acl_topic_ok(t, list[i].len)) {
				snprintf(err, errlen, "%s[%zu]: invalid topic filter", k == 0 ? "pub" : "sub", i);
				goto err;
			}
			if (!acl_add_rule(a, 1, k == 0 ? ACL_WRITE : ACL_READ, t, list[i].len)) {
				snprintf(err, errlen, "%s", a->nrules >= ACL_MAX_RULES ? "too many topic filters"
				                                                       : "out of memory");
				goto err;
			}
		}
	}
	if (!acl_finish(a)) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	return a;
err:
	acl_free(a);
	return NULL;
}

/* --- the decision ------------------------------------------------------ */

/* Who is asking. */
struct who {
	const char *user;       /* NULL: no username */
	size_t ulen;
	const char *client;
	size_t clen;
};

static const struct acl_user *find_user(const struct acl *a, const char *name, size_t len)
{
	size_t lo = 0, hi = a->nusers;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct acl_user *u = &a->users[mid];
		size_t n = u->name_len < len ? u->name_len : len;
		int c = n > 0 ? memcmp(a->pool + u->name_off, name, n) : 0;

		if (c == 0)
			c = u->name_len < len ? -1 : u->name_len > len;
		if (c == 0)
			return u;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct slice rule_text(const struct acl *a, const struct acl_rule *r)
{
	struct slice s = { (const uint8_t *)a->pool + r->off, r->len };

	return s;
}

enum expand_result { EXPAND_OK, EXPAND_SKIP, EXPAND_FAIL };

/*
 * Writes pattern |r| with %u and %c replaced into |buf| (|cap| bytes) or,
 * when longer, into a heap buffer returned in *heap for the caller to free.
 * SKIP: the pattern uses %u and there is no username. Sets *empty when a
 * value substituted was empty.
 */
static enum expand_result expand(const struct acl *a, const struct acl_rule *r, const struct who *w,
                                 uint8_t *buf, size_t cap, uint8_t **heap, struct slice *out,
                                 int *empty)
{
	const char *t = a->pool + r->off;
	size_t n = 0, i, need = 0;
	uint8_t *dst;

	*heap = NULL;
	*empty = 0;
	if (r->uses_user && w->user == NULL)
		return EXPAND_SKIP;
	/* First pass: the length, bounded. */
	for (i = 0; i < r->len; i++) {
		if (t[i] == '%' && i + 1 < r->len && (t[i + 1] == 'u' || t[i + 1] == 'c')) {
			size_t v = t[i + 1] == 'u' ? w->ulen : w->clen;

			*empty |= v == 0;
			need += v;
			i++;
		} else {
			need++;
		}
		if (need > EXPAND_MAX)
			return EXPAND_FAIL;
	}
	dst = buf;
	if (need > cap) {
		if ((*heap = malloc(need)) == NULL)
			return EXPAND_FAIL;
		dst = *heap;
	}
	for (i = 0; i < r->len; i++) {
		if (t[i] == '%' && i + 1 < r->len && (t[i + 1] == 'u' || t[i + 1] == 'c')) {
			const char *v = t[i + 1] == 'u' ? w->user : w->client;
			size_t vl = t[i + 1] == 'u' ? w->ulen : w->clen;

			if (vl > 0)
				memcpy(dst + n, v, vl);
			n += vl;
			i++;
		} else {
			dst[n++] = (uint8_t)t[i];
		}
	}
	out->ptr = dst;
	out->len = n;
	return EXPAND_OK;
}

/*
 * Runs one pass over |count| rules from |first|: the deny pass asks
 * whether a deny rule overlaps |subject|, the grant pass whether a rule
 * with |access| covers it. Returns 1 if one does; a pattern that cannot be
 * expanded counts as a match in the deny pass (fail closed) and as none in
 * the grant pass.
 */
static int any_rule(const struct acl *a, size_t first, size_t count, const struct who *w,
                    struct slice subject, int deny_pass, unsigned access)
{
	uint8_t buf[512];

	for (size_t i = first; i < first + count; i++) {
		const struct acl_rule *r = &a->rules[i];
		struct slice text;
		uint8_t *heap = NULL;
		int hit, empty = 0;

		if (deny_pass ? r->access != 0 : (r->access & access) == 0)
			continue;
		if (r->owner != OWN_PATTERN) {
			text = rule_text(a, r);
		} else {
			switch (expand(a, r, w, buf, sizeof(buf), &heap, &text, &empty)) {
			case EXPAND_SKIP:
				continue;
			case EXPAND_FAIL:
				if (deny_pass)
					return 1;
				continue;
			case EXPAND_OK:
				break;
			}
			/* A grant to "devices//#" for an empty client id would
			 * be shared by every such client. */
			if (!deny_pass && empty) {
				free(heap);
				continue;
			}
		}
		hit = deny_pass ? mqtt_topic_filters_overlap(text, subject)
		                : mqtt_topic_filter_covers(text, subject);
		free(heap);
		if (hit)
			return 1;
	}
	return 0;
}

static int has_wildcard(const char *s, size_t n)
{
	return n > 0 && (memchr(s, '+', n) != NULL || memchr(s, '#', n) != NULL);
}

int acl_check(const struct acl *acl, const char *user, size_t ulen, const char *client_id,
              size_t clen, const uint8_t *topic, size_t tlen, enum acl_access access)
{
	struct who w = { user, user != NULL ? ulen : 0, client_id != NULL ? client_id : "",
	                 client_id != NULL ? clen : 0 };
	struct slice subject = { topic, tlen };
	size_t sec_first = 0, sec_count = 0;

	if (acl == NULL || topic == NULL || !mqtt_topic_filter_valid(subject))
		return 0;
	if (access != ACL_READ && access != ACL_WRITE)
		return 0;
	/* Rule 1: names that would turn a pattern into a wildcard. */
	if (acl->pattern_count > 0 &&
	    ((w.user != NULL && has_wildcard(w.user, w.ulen)) || has_wildcard(w.client, w.clen)))
		return 0;
	if (user != NULL) {
		const struct acl_user *u = find_user(acl, user, ulen);

		if (u != NULL) {
			sec_first = u->first;
			sec_count = u->count;
		}
	} else {
		sec_first = acl->general_first;
		sec_count = acl->general_count;
	}
	/* Rule 2: deny wins. */
	if (any_rule(acl, sec_first, sec_count, &w, subject, 1, 0) ||
	    any_rule(acl, acl->pattern_first, acl->pattern_count, &w, subject, 1, 0))
		return 0;
	/* Rule 3: a grant that covers the subject. */
	return any_rule(acl, sec_first, sec_count, &w, subject, 0, access) ||
	       any_rule(acl, acl->pattern_first, acl->pattern_count, &w, subject, 0, access);
}
