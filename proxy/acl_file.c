/*
 * Reading mosquitto's acl_file text format (acl.h) into a table built
 * through acl_int.h. Lines are split on LF (a CR before it goes with the
 * trailing white space); the first bad line fails the whole file with its
 * number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/acl.h"
#include "proxy/acl_int.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A view of part of a line. */
struct text {
	const char *p;
	size_t n;
};

static struct text skip_blanks(struct text t)
{
	while (t.n > 0 && is_blank(t.p[0])) {
		t.p++;
		t.n--;
	}
	return t;
}

/* Splits the first blank-delimited token off |t| into |tok|; |t| becomes
 * the rest with its leading blanks removed. */
static void next_token(struct text *t, struct text *tok)
{
	size_t i = 0;

	while (i < t->n && !is_blank(t->p[i]))
		i++;
	tok->p = t->p;
	tok->n = i;
	t->p += i;
	t->n -= i;
	*t = skip_blanks(*t);
}

static int text_is(struct text t, const char *s)
{
	return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

/* The access word, or -1 if |t| is not one. */
static int access_word(struct text t)
{
	if (text_is(t, "read"))
		return ACL_READ;
	if (text_is(t, "write"))
		return ACL_WRITE;
	if (text_is(t, "readwrite"))
		return ACL_READ | ACL_WRITE;
	if (text_is(t, "deny"))
		return 0;
	return -1;
}

/* Copies up to 40 bytes of |t| for an error message, non-printables as '?'. */
static void quote(struct text t, char *out, size_t cap)
{
	size_t i, n = t.n < 40 ? t.n : 40;

	if (cap == 0)
		return;
	for (i = 0; i < n && i + 1 < cap; i++)
		out[i] = t.p[i] >= 0x20 && t.p[i] < 0x7f ? t.p[i] : '?';
	out[i] = '\0';
}

struct parser {
	struct acl *a;
	const char *name;
	unsigned line;
	char *err;
	size_t errlen;
};

static int line_error(struct parser *ps, const char *fmt, const char *arg)
{
	char msg[160];

	snprintf(msg, sizeof(msg), fmt, arg);
	snprintf(ps->err, ps->errlen, "%s:%u: %s", ps->name, ps->line, msg);
	return 0;
}

/* "topic ..." and "pattern ...": |rest| follows the keyword. */
static int parse_rule(struct parser *ps, int pattern, struct text rest)
{
	struct text first, topic;
	int access = ACL_READ | ACL_WRITE;
	char q[48];

	if (rest.n == 0)
		return line_error(ps, "%s line without a topic", pattern ? "pattern" : "topic");
	next_token(&rest, &first);
	if (rest.n > 0) {
		/* Two or more words: the first is the access type and the
		 * rest, blanks and all, the topic. */
		if ((access = access_word(first)) < 0) {
			quote(first, q, sizeof(q));
			return line_error(ps, "unknown access type \"%s\" (read, write, readwrite or deny)", q);
		}
		topic = rest;
	} else {
		/* One word is the topic. mosquitto would read "topic read" as
		 * the topic "read"; here it is the mistake it almost always is. */
		if (access_word(first) >= 0) {
			quote(first, q, sizeof(q));
			return line_error(ps, "access type \"%s\" without a topic", q);
		}
		topic = first;
	}
	if (!acl_topic_ok(topic.p, topic.n)) {
		quote(topic, q, sizeof(q));
		return line_error(ps, "invalid topic filter \"%s\"", q);
	}
	if (!acl_add_rule(ps->a, pattern, (unsigned)access, topic.p, topic.n)) {
		if (acl_rule_count(ps->a) >= ACL_MAX_RULES)
			return line_error(ps, "more than %s rules", "100000");
		return line_error(ps, "%s", "out of memory");
	}
	return 1;
}

static int parse_user(struct parser *ps, struct text rest)
{
	if (rest.n == 0)
		return line_error(ps, "%s", "user line without a name");
	if (!mqtt_utf8_valid((const uint8_t *)rest.p, rest.n) || rest.n > 65535)
		return line_error(ps, "%s", "user name is not a valid MQTT string");
	if (!acl_begin_user(ps->a, rest.p, rest.n))
		return line_error(ps, "%s", "out of memory");
	return 1;
}

static int parse_line(struct parser *ps, struct text t)
{
	struct text kw;
	char q[48];

	/* Trailing white space goes (mosquitto trims it too), leading
	 * blanks are skipped. */
	while (t.n > 0 && is_space(t.p[t.n - 1]))
		t.n--;
	t = skip_blanks(t);
	if (t.n == 0 || t.p[0] == '#')
		return 1;
	if (memchr(t.p, '\0', t.n) != NULL)
		return line_error(ps, "%s", "NUL byte in line");
	next_token(&t, &kw);
	if (text_is(kw, "topic"))
		return parse_rule(ps, 0, t);
	if (text_is(kw, "pattern"))
		return parse_rule(ps, 1, t);
	if (text_is(kw, "user"))
		return parse_user(ps, t);
	quote(kw, q, sizeof(q));
	return line_error(ps, "unknown keyword \"%s\" (topic, pattern or user)", q);
}

struct acl *acl_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	struct parser ps;
	size_t pos = 0;

	memset(&ps, 0, sizeof(ps));
	ps.name = name != NULL ? name : "acl";
	ps.err = err;
	ps.errlen = errlen;
	if ((ps.a = acl_new()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", ps.name);
		return NULL;
	}
	if (text == NULL)
		len = 0;
	while (pos < len) {
		struct text line;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

		ps.line++;
		if (n > ACL_MAX_LINE) {
			line_error(&ps, "line longer than %s bytes", "8192");
			goto err;
		}
		line.p = text + pos;
		line.n = n;
		if (!parse_line(&ps, line))
			goto err;
		pos += n + (nl != NULL);
	}
	if (!acl_finish(ps.a)) {
		snprintf(err, errlen, "%s: out of memory", ps.name);
		goto err;
	}
	return ps.a;
err:
	acl_free(ps.a);
	return NULL;
}

struct acl *acl_load(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct acl *a;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			char *p;

			cap = cap ? cap * 2 : 4096;
			if ((p = realloc(buf, cap)) == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto err;
			}
			buf = p;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (len > ACL_MAX_FILE) {
			snprintf(err, errlen, "%s: larger than %u bytes", path, ACL_MAX_FILE);
			goto err;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto err;
	}
	fclose(f);
	a = acl_parse(buf, len, path, err, errlen);
	free(buf);
	return a;
err:
	fclose(f);
	free(buf);
	return NULL;
}
