/*
 * libFuzzer target for the ACL (proxy/acl.c): the acl_file parser on
 * arbitrary text, and decisions on what it builds.
 *
 * Input: acl file text. Optionally, after a line holding only "%%%", three
 * lines give a username (or "-" for none), a client id and a topic to
 * check; a few fixed identities and topics are always checked. Checked,
 * beyond memory safety: a refusal names the input; a decision is 0 or 1,
 * the same on a second call, and never 1 for an invalid topic; the lines
 * also go through acl_from_lists as filter lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/topic.h"
#include "proxy/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of [*p, end), without its newline. */
static int next_line(const uint8_t **p, const uint8_t *end, struct slice *line)
{
	const uint8_t *nl;

	if (*p >= end)
		return 0;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	line->ptr = *p;
	line->len = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
	*p = nl != NULL ? nl + 1 : end;
	return 1;
}

static void decide(const struct acl *a, const char *user, size_t ulen, const char *cid, size_t clen,
                   const uint8_t *topic, size_t tlen)
{
	for (int acc = ACL_READ; acc <= ACL_WRITE; acc++) {
		int r1 = acl_check(a, user, ulen, cid, clen, topic, tlen, (enum acl_access)acc);
		int r2 = acl_check(a, user, ulen, cid, clen, topic, tlen, (enum acl_access)acc);

		if (r1 != r2 || (r1 != 0 && r1 != 1))
			abort();
		/* Nothing is allowed on a topic that is not a valid filter. */
		if (r1 && !mqtt_topic_filter_valid((struct slice){ topic, tlen }))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *topics[] = { "a", "a/b", "#", "+/x", "$SYS/broker", "devices/c1/x",
	                                 "users/u1/x", "a/+/#" };
	const uint8_t *sep = NULL, *p, *end = data + size;
	struct slice line, lists[64];
	size_t text_len = size, n = 0;
	char err[256];
	struct acl *a;

	for (p = data; p + 4 <= end; p++)
		if (memcmp(p, "%%%\n", 4) == 0 && (p == data || p[-1] == '\n')) {
			sep = p;
			break;
		}
	if (sep != NULL)
		text_len = (size_t)(sep - data);

	err[0] = '\0';
	a = acl_parse((const char *)data, text_len, "fuzz", err, sizeof(err));
	if (a == NULL) {
		if (strncmp(err, "fuzz:", 5) != 0)
			abort();
	} else {
		if (sep != NULL) {
			struct slice u = { NULL, 0 }, c = { NULL, 0 }, t = { NULL, 0 };

			p = sep + 4;
			(void)(next_line(&p, end, &u) && next_line(&p, end, &c) && next_line(&p, end, &t));
			decide(a, u.len == 1 && u.ptr[0] == '-' ? NULL : (const char *)u.ptr, u.len,
			       (const char *)c.ptr, c.len, t.ptr, t.len);
		}
		for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
			const uint8_t *t = (const uint8_t *)topics[i];

			decide(a, NULL, 0, "c1", 2, t, strlen(topics[i]));
			decide(a, "u1", 2, "c1", 2, t, strlen(topics[i]));
			decide(a, "a+", 2, "c1", 2, t, strlen(topics[i]));
			decide(a, "", 0, "", 0, t, strlen(topics[i]));
		}
		acl_free(a);
	}

	/* Every line as a filter of a JWT-style list. */
	p = data;
	while (n < 64 && next_line(&p, data + text_len, &line))
		lists[n++] = line;
	a = acl_from_lists(lists, n / 2, lists + n / 2, n - n / 2, err, sizeof(err));
	if (a != NULL) {
		for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
			decide(a, "u1", 2, "c1", 2, (const uint8_t *)topics[i], strlen(topics[i]));
		acl_free(a);
	}
	return 0;
}
