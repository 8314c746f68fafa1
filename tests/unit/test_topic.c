/*
 * Unit tests for mqtt/topic.c: Topic Name and Topic Filter validity
 * (3.1.1 / 5.0 section 4.7), matching with '+', '#' and the '$' rule
 * [MQTT-4.7.2-1], filter coverage and overlap (what the ACL asks of a
 * SUBSCRIBE), and shared subscriptions (5.0 4.8.2).
 *
 * Coverage and overlap are also checked against their definitions by brute
 * force: a small reference matcher written here, independent of the code
 * under test, over every name of up to four levels from a small alphabet.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/topic.h"

static struct slice S(const char *s)
{
	struct slice sl = { (const uint8_t *)s, strlen(s) };

	return sl;
}

static int valid(const char *f)
{
	return mqtt_topic_filter_valid(S(f));
}

static int matches(const char *f, const char *t)
{
	return mqtt_topic_matches(S(f), S(t));
}

static int covers(const char *o, const char *i)
{
	return mqtt_topic_filter_covers(S(o), S(i));
}

static int overlap(const char *a, const char *b)
{
	return mqtt_topic_filters_overlap(S(a), S(b));
}

static void test_topic_name_rejects_empty_names_mqtt_4_7_3_1(void **state)
{
	(void)state;
	assert_false(mqtt_topic_name_valid(S("")));
	assert_true(mqtt_topic_name_valid(S("/")));
}

static void test_topic_name_rejects_wildcards_mqtt_4_7_0_1(void **state)
{
	(void)state;
	assert_false(mqtt_topic_name_valid(S("a/+")));
	assert_false(mqtt_topic_name_valid(S("a/#")));
	assert_false(mqtt_topic_name_valid(S("a+b")));
	assert_true(mqtt_topic_name_valid(S("a/b c/$d")));
}

static void test_topic_filter_rejects_empty_filters_mqtt_4_7_3_1(void **state)
{
	(void)state;
	assert_false(valid(""));
}

static void test_topic_filter_rejects_filters_over_65535_bytes_mqtt_4_7_3_3(void **state)
{
	static char big[65537];

	(void)state;
	memset(big, 'a', 65535);
	big[65535] = '\0';
	assert_true(valid(big));
	big[65535] = 'a';
	big[65536] = '\0';
	assert_false(valid(big));
}

static void test_topic_filter_allows_hash_only_as_the_whole_last_level_mqtt_4_7_1_2(void **state)
{
	(void)state;
	assert_true(valid("#"));
	assert_true(valid("a/#"));
	assert_true(valid("/#"));
	assert_false(valid("a/#/b"));
	assert_false(valid("#/"));
	assert_false(valid("a#"));
	assert_false(valid("a/b#"));
	assert_false(valid("##"));
}

static void test_topic_filter_allows_plus_only_as_a_whole_level_mqtt_4_7_1_3(void **state)
{
	(void)state;
	assert_true(valid("+"));
	assert_true(valid("+/+"));
	assert_true(valid("a/+/b"));
	assert_true(valid("+/#"));
	assert_true(valid("//"));
	assert_false(valid("a+"));
	assert_false(valid("a/+b"));
	assert_false(valid("++"));
}

static void test_topic_matching_follows_the_examples_of_section_4_7_1(void **state)
{
	(void)state;
	/* 4.7.1.2 multi-level wildcard */
	assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1"));
	assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
	assert_true(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
	assert_true(matches("sport/#", "sport"));
	assert_true(matches("#", "a/b/c"));
	/* 4.7.1.3 single-level wildcard */
	assert_true(matches("sport/tennis/+", "sport/tennis/player1"));
	assert_true(matches("sport/tennis/+", "sport/tennis/player2"));
	assert_false(matches("sport/tennis/+", "sport/tennis/player1/ranking"));
	assert_false(matches("sport/+", "sport"));
	assert_true(matches("sport/+", "sport/"));
	assert_true(matches("+/+", "/finance"));
	assert_true(matches("/+", "/finance"));
	assert_false(matches("+", "/finance"));
	/* exact comparison, no normalization [MQTT-4.7.3-4] */
	assert_false(matches("Sport", "sport"));
	assert_false(matches("sport/", "sport"));
	assert_true(matches("a//b", "a//b"));
}

static void test_topic_wildcards_at_the_first_level_do_not_match_dollar_names_mqtt_4_7_2_1(void **state)
{
	(void)state;
	assert_false(matches("#", "$SYS/broker/clients"));
	assert_false(matches("+/monitor/Clients", "$SYS/monitor/Clients"));
	assert_true(matches("$SYS/#", "$SYS/monitor/Clients"));
	assert_true(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
	/* Only the first level: '$' further down is an ordinary character. */
	assert_true(matches("a/+", "a/$b"));
	assert_true(matches("a/#", "a/$b/c"));
}

static void test_topic_covers_a_name_exactly_when_it_matches_it(void **state)
{
	(void)state;
	assert_true(covers("a/+", "a/b"));
	assert_false(covers("a/+", "a/b/c"));
	assert_false(covers("#", "$SYS/x"));
}

static void test_topic_covers_narrower_filters(void **state)
{
	(void)state;
	assert_true(covers("#", "a/+/c"));
	assert_true(covers("#", "#"));
	assert_true(covers("a/#", "a"));
	assert_true(covers("a/#", "a/#"));
	assert_true(covers("a/#", "a/+/#"));
	assert_true(covers("a/+", "a/+"));
	assert_true(covers("+/+", "a/+"));
	assert_true(covers("a/+/#", "a/b"));
	assert_false(covers("a/+", "a/#"));
	assert_false(covers("a/b", "a/+"));
	assert_false(covers("a/+", "a"));
	assert_false(covers("a/#", "#"));
	assert_false(covers("a/#", "+/b"));
	assert_false(covers("a", "a/#"));
}

static void test_topic_coverage_keeps_dollar_names_out_of_wildcard_first_filters_mqtt_4_7_2_1(void **state)
{
	(void)state;
	assert_false(covers("#", "$SYS/#"));
	assert_false(covers("+/#", "$SYS/+"));
	assert_true(covers("$SYS/#", "$SYS/+/x"));
	/* "+/x" never matches a '$' name, so "#" covers all it matches. */
	assert_true(covers("#", "+/x"));
}

static void test_topic_overlap_finds_a_shared_name_or_none(void **state)
{
	(void)state;
	assert_true(overlap("a/+", "+/b"));
	assert_true(overlap("a/#", "a"));
	assert_true(overlap("a", "a/#"));
	assert_true(overlap("#", "a/b/c"));
	assert_true(overlap("+/+/c", "a/#"));
	assert_false(overlap("a/+", "b/+"));
	assert_false(overlap("a/+", "a"));
	assert_false(overlap("a/+/c", "a/b"));
	assert_false(overlap("#", "$SYS/x"));
	assert_false(overlap("$SYS/#", "+/x"));
	assert_true(overlap("+", "#"));
	assert_true(overlap("$SYS/#", "$SYS/+"));
}

static void test_topic_shared_split_finds_the_share_name_and_filter(void **state)
{
	struct slice share, filter;

	(void)state;
	assert_int_equal(mqtt_topic_shared_split(S("$share/g1/a/+"), &share, &filter), MQTT_SHARE_OK);
	assert_int_equal(share.len, 2);
	assert_memory_equal(share.ptr, "g1", 2);
	assert_int_equal(filter.len, 3);
	assert_memory_equal(filter.ptr, "a/+", 3);
	assert_int_equal(mqtt_topic_shared_split(S("$share/g/#"), &share, &filter), MQTT_SHARE_OK);
	assert_int_equal(filter.len, 1);
	assert_int_equal(mqtt_topic_shared_split(S("$shared/g/a"), &share, &filter), MQTT_SHARE_NONE);
	assert_int_equal(mqtt_topic_shared_split(S("a/$share/g/a"), &share, &filter), MQTT_SHARE_NONE);
	assert_int_equal(mqtt_topic_shared_split(S("$share"), &share, &filter), MQTT_SHARE_NONE);
}

static void test_topic_shared_split_refuses_an_empty_share_name_mqtt_4_8_2_1(void **state)
{
	struct slice share, filter;

	(void)state;
	assert_int_equal(mqtt_topic_shared_split(S("$share//a"), &share, &filter), MQTT_SHARE_INVALID);
	assert_int_equal(mqtt_topic_shared_split(S("$share/"), &share, &filter), MQTT_SHARE_INVALID);
}

static void test_topic_shared_split_refuses_wildcards_or_no_filter_after_the_name_mqtt_4_8_2_2(void **state)
{
	struct slice share, filter;

	(void)state;
	assert_int_equal(mqtt_topic_shared_split(S("$share/+/a"), &share, &filter), MQTT_SHARE_INVALID);
	assert_int_equal(mqtt_topic_shared_split(S("$share/g#/a"), &share, &filter), MQTT_SHARE_INVALID);
	assert_int_equal(mqtt_topic_shared_split(S("$share/g"), &share, &filter), MQTT_SHARE_INVALID);
	assert_int_equal(mqtt_topic_shared_split(S("$share/g/"), &share, &filter), MQTT_SHARE_INVALID);
}

/* --- brute force against a reference matcher ------------------------- */

#define MAXL 4

struct topic_levels {
	const char *l[MAXL + 1];
	int n;
};

static void split(const char *s, struct topic_levels *out, char *buf, size_t cap)
{
	char *p;

	snprintf(buf, cap, "%s", s);
	out->n = 0;
	p = buf;
	for (;;) {
		char *slash = strchr(p, '/');

		out->l[out->n++] = p;
		if (slash == NULL)
			break;
		*slash = '\0';
		p = slash + 1;
	}
}

/* 4.7.1 matching written plainly: recursion over levels. */
static int ref_match_from(const struct topic_levels *f, int fi, const struct topic_levels *t, int ti)
{
	if (fi == f->n)
		return ti == t->n;
	if (strcmp(f->l[fi], "#") == 0)
		return 1;
	if (ti == t->n)
		return 0;
	if (strcmp(f->l[fi], "+") != 0 && strcmp(f->l[fi], t->l[ti]) != 0)
		return 0;
	return ref_match_from(f, fi + 1, t, ti + 1);
}

static int ref_match(const char *filter, const char *name)
{
	struct topic_levels f, t;
	char fb[64], tb[64];

	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return 0;
	split(filter, &f, fb, sizeof(fb));
	split(name, &t, tb, sizeof(tb));
	return ref_match_from(&f, 0, &t, 0);
}

/* Every name of 1..4 levels over "a", "b", "" and "$s". */
static size_t all_names(char names[][32], size_t cap)
{
	static const char *first[] = { "a", "b", "", "$s" };
	static const char *rest[] = { "a", "b", "", "$s" };
	size_t n = 0;
	int depth, i0, i1, i2, i3;

	for (depth = 1; depth <= 4; depth++)
		for (i0 = 0; i0 < 4; i0++)
			for (i1 = 0; i1 < (depth > 1 ? 4 : 1); i1++)
				for (i2 = 0; i2 < (depth > 2 ? 4 : 1); i2++)
					for (i3 = 0; i3 < (depth > 3 ? 4 : 1); i3++) {
						char *s = names[n++];

						assert_true(n <= cap);
						snprintf(s, 32, "%s", first[i0]);
						if (depth > 1)
							snprintf(s + strlen(s), 32 - strlen(s), "/%s", rest[i1]);
						if (depth > 2)
							snprintf(s + strlen(s), 32 - strlen(s), "/%s", rest[i2]);
						if (depth > 3)
							snprintf(s + strlen(s), 32 - strlen(s), "/%s", rest[i3]);
						if (s[0] == '\0' && depth == 1)
							n--;   /* "" is not a name */
					}
	return n;
}

/* Every valid filter of 1..3 levels over "a", "+", "#", "$s". */
static size_t all_filters(char filters[][32], size_t cap)
{
	static const char *lv[] = { "a", "+", "#", "$s" };
	size_t n = 0;
	int depth, i0, i1, i2;

	for (depth = 1; depth <= 3; depth++)
		for (i0 = 0; i0 < 4; i0++)
			for (i1 = 0; i1 < (depth > 1 ? 4 : 1); i1++)
				for (i2 = 0; i2 < (depth > 2 ? 4 : 1); i2++) {
					char *s = filters[n];

					snprintf(s, 32, "%s", lv[i0]);
					if (depth > 1)
						snprintf(s + strlen(s), 32 - strlen(s), "/%s", lv[i1]);
					if (depth > 2)
						snprintf(s + strlen(s), 32 - strlen(s), "/%s", lv[i2]);
					if (valid(s)) {
						n++;
						assert_true(n <= cap);
					}
				}
	return n;
}

static void test_topic_matching_agrees_with_a_reference_matcher_on_every_small_case(void **state)
{
	static char names[400][32], filters[100][32];
	size_t nn, nf, i, j;

	(void)state;
	nn = all_names(names, 400);
	nf = all_filters(filters, 100);
	for (i = 0; i < nf; i++)
		for (j = 0; j < nn; j++)
			if (matches(filters[i], names[j]) != ref_match(filters[i], names[j]))
				fail_msg("match(%s, %s)", filters[i], names[j]);
}

static void test_topic_coverage_and_overlap_agree_with_their_definitions(void **state)
{
	static char names[400][32], filters[100][32];
	size_t nn, nf, i, j, k;

	(void)state;
	nn = all_names(names, 400);
	nf = all_filters(filters, 100);
	for (i = 0; i < nf; i++)
		for (j = 0; j < nf; j++) {
			int all = 1, any = 0;

			for (k = 0; k < nn; k++) {
				int mi = ref_match(filters[j], names[k]);
				int mo = ref_match(filters[i], names[k]);

				if (mi && !mo)
					all = 0;
				if (mi && mo)
					any = 1;
			}
			if (covers(filters[i], filters[j]) != all)
				fail_msg("covers(%s, %s) should be %d", filters[i], filters[j], all);
			if (overlap(filters[i], filters[j]) != any)
				fail_msg("overlap(%s, %s) should be %d", filters[i], filters[j], any);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topic_name_rejects_empty_names_mqtt_4_7_3_1),
		cmocka_unit_test(test_topic_name_rejects_wildcards_mqtt_4_7_0_1),
		cmocka_unit_test(test_topic_filter_rejects_empty_filters_mqtt_4_7_3_1),
		cmocka_unit_test(test_topic_filter_rejects_filters_over_65535_bytes_mqtt_4_7_3_3),
		cmocka_unit_test(test_topic_filter_allows_hash_only_as_the_whole_last_level_mqtt_4_7_1_2),
		cmocka_unit_test(test_topic_filter_allows_plus_only_as_a_whole_level_mqtt_4_7_1_3),
		cmocka_unit_test(test_topic_matching_follows_the_examples_of_section_4_7_1),
		cmocka_unit_test(test_topic_wildcards_at_the_first_level_do_not_match_dollar_names_mqtt_4_7_2_1),
		cmocka_unit_test(test_topic_covers_a_name_exactly_when_it_matches_it),
		cmocka_unit_test(test_topic_covers_narrower_filters),
		cmocka_unit_test(test_topic_coverage_keeps_dollar_names_out_of_wildcard_first_filters_mqtt_4_7_2_1),
		cmocka_unit_test(test_topic_overlap_finds_a_shared_name_or_none),
		cmocka_unit_test(test_topic_shared_split_finds_the_share_name_and_filter),
		cmocka_unit_test(test_topic_shared_split_refuses_an_empty_share_name_mqtt_4_8_2_1),
		cmocka_unit_test(test_topic_shared_split_refuses_wildcards_or_no_filter_after_the_name_mqtt_4_8_2_2),
		cmocka_unit_test(test_topic_matching_agrees_with_a_reference_matcher_on_every_small_case),
		cmocka_unit_test(test_topic_coverage_and_overlap_agree_with_their_definitions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
