/*
 * Topic Name and Topic Filter checks and matching (topic.h).
 *
 * Filters are walked one level at a time by a small iterator over the
 * slice; a level is the bytes between two '/' (possibly none). Matching
 * never allocates and never looks past a slice's length.
 */
#include <string.h>

#include "mqtt/topic.h"

#define TOPIC_MAX 65535u

/* Walks the levels of a topic or filter: "a//b" has levels "a", "" and
 * "b"; "" has one empty level. */
struct levels {
	struct slice s;
	size_t pos;
	int done;
};

static void levels_init(struct levels *it, struct slice s)
{
	it->s = s;
	it->pos = 0;
	it->done = s.ptr == NULL && s.len != 0;
}

/* Sets |out| to the next level and returns 1, or returns 0 after the last. */
static int levels_next(struct levels *it, struct slice *out)
{
	size_t i;

	if (it->done)
		return 0;
	for (i = it->pos; i < it->s.len && it->s.ptr[i] != '/'; i++)
		;
	out->ptr = it->s.len > 0 ? it->s.ptr + it->pos : it->s.ptr;
	out->len = i - it->pos;
	if (i >= it->s.len)
		it->done = 1;
	else
		it->pos = i + 1;
	return 1;
}

static int level_is(struct slice l, char c)
{
	return l.len == 1 && l.ptr[0] == (uint8_t)c;
}

static int level_equal(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Whether the first level of |s| is a wildcard: such a filter matches no
 * name starting with '$' [MQTT-4.7.2-1]. */
static int starts_wild(struct slice s)
{
	return s.len >= 1 && (s.ptr[0] == '+' || s.ptr[0] == '#') &&
	       (s.len == 1 || s.ptr[1] == '/');
}

/* Whether every name |s| matches starts with '$': its first level is a
 * literal starting with '$'. */
static int starts_dollar(struct slice s)
{
	return s.len >= 1 && s.ptr[0] == '$';
}

int mqtt_topic_name_valid(struct slice topic)
{
	if (topic.len == 0)
		return 0;
	/* '#' and '+' are single bytes that never occur inside a multi-byte
	 * UTF-8 sequence, so a byte search is exact. */
	return memchr(topic.ptr, '#', topic.len) == NULL &&
	       memchr(topic.ptr, '+', topic.len) == NULL;
}

int mqtt_topic_filter_valid(struct slice filter)
{
	struct levels it;
	struct slice l;

	/* [MQTT-4.7.3-1] at least one character; [MQTT-4.7.3-3] at most
	 * 65,535 bytes. */
	if (filter.len == 0 || filter.len > TOPIC_MAX)
		return 0;
	levels_init(&it, filter);
	while (levels_next(&it, &l)) {
		if (level_is(l, '#')) {
			/* [MQTT-4.7.1-2] '#' is the last character. */
			if (!it.done)
				return 0;
			continue;
		}
		if (level_is(l, '+'))
			continue;
		/* [MQTT-4.7.1-2] [MQTT-4.7.1-3] a wildcard occupies a whole
		 * level: inside a longer level it is invalid. */
		if (l.len > 0 && (memchr(l.ptr, '#', l.len) != NULL ||
		                  memchr(l.ptr, '+', l.len) != NULL))
			return 0;
	}
	return 1;
}

int mqtt_topic_filter_covers(struct slice outer, struct slice inner)
{
	struct levels o, i;
	struct slice ol, il;

	/* [MQTT-4.7.2-1] names starting with '$' escape an outer filter that
	 * starts with a wildcard; an inner filter that starts with a wildcard
	 * matches no such names, one starting with "$..." matches only such. */
	if (starts_dollar(inner) && starts_wild(outer))
		return 0;
	levels_init(&o, outer);
	levels_init(&i, inner);
	for (size_t depth = 0;; depth++) {
		int have_o = levels_next(&o, &ol);
		int have_i = levels_next(&i, &il);

		if (!have_o)
			return !have_i;
		/* '#' matches this level and everything below, and also the
		 * parent: "a/#" matches "a" (4.7.1.2). */
		if (level_is(ol, '#'))
			return 1;
		if (!have_i)
			return 0;   /* outer needs one more level than inner gives */
		if (level_is(il, '#')) {
			/* Inner reaches any depth from here, and the parent
			 * too, so only '#' covers it. One exception: a first-
			 * level "#" has no parent name (a name has at least
			 * one level), so "+/#" covers it as well. */
			struct slice next;

			return depth == 0 && level_is(ol, '+') && levels_next(&o, &next) &&
			       level_is(next, '#') && o.done;
		}
		if (level_is(ol, '+'))
			continue;   /* inner's level is one level: '+' or a literal */
		if (level_is(il, '+') || !level_equal(ol, il))
			return 0;
	}
}

int mqtt_topic_matches(struct slice filter, struct slice topic)
{
	/* A name is a filter without wildcards that matches only itself. */
	return mqtt_topic_filter_covers(filter, topic);
}

int mqtt_topic_filters_overlap(struct slice a, struct slice b)
{
	struct levels ia, ib;
	struct slice la, lb;

	/* [MQTT-4.7.2-1] a filter starting with a wildcard and one whose names
	 * all start with '$' share no name. Two wildcard-first filters share
	 * names without '$'. */
	if ((starts_wild(a) && starts_dollar(b)) || (starts_wild(b) && starts_dollar(a)))
		return 0;
	levels_init(&ia, a);
	levels_init(&ib, b);
	for (;;) {
		int have_a = levels_next(&ia, &la);
		int have_b = levels_next(&ib, &lb);

		if (!have_a && !have_b)
			return 1;
		/* '#' absorbs whatever the other has left, zero levels too. */
		if ((have_a && level_is(la, '#')) || (have_b && level_is(lb, '#')))
			return 1;
		if (!have_a || !have_b)
			return 0;
		if (level_is(la, '+') || level_is(lb, '+'))
			continue;
		if (!level_equal(la, lb))
			return 0;
	}
}

enum mqtt_share_result mqtt_topic_shared_split(struct slice full, struct slice *share,
                                               struct slice *filter)
{
	static const char prefix[] = "$share/";
	const size_t plen = sizeof(prefix) - 1;
	struct levels it;
	struct slice first, name;
	size_t rest;

	if (full.len < plen || memcmp(full.ptr, prefix, plen) != 0)
		return MQTT_SHARE_NONE;
	/* The ShareName is the second level. */
	levels_init(&it, full);
	if (!levels_next(&it, &first) || !levels_next(&it, &name))
		return MQTT_SHARE_INVALID;
	/* [MQTT-4.8.2-1] at least one character. */
	if (name.len == 0)
		return MQTT_SHARE_INVALID;
	/* [MQTT-4.8.2-2] no '+' or '#' ('/' ends the level by construction). */
	if (memchr(name.ptr, '+', name.len) != NULL || memchr(name.ptr, '#', name.len) != NULL)
		return MQTT_SHARE_INVALID;
	/* [MQTT-4.8.2-2] followed by '/' and a Topic Filter. */
	if (it.done)
		return MQTT_SHARE_INVALID;
	rest = full.len - it.pos;
	if (rest == 0)
		return MQTT_SHARE_INVALID;
	*share = name;
	filter->ptr = full.ptr + it.pos;
	filter->len = rest;
	return MQTT_SHARE_OK;
}
