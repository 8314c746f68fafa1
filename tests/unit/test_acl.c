/*
 * Unit tests for proxy/acl.c: the decision rules documented in acl.h
 * (which sections apply, deny wins, coverage of a SUBSCRIBE filter, %u/%c
 * substitution and the names it refuses) and the table built from JWT
 * claim lists. Tables are written in the acl_file syntax (acl_file.c,
 * tested in test_acl_file.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/acl.h"

static struct acl *parse(const char *text)
{
	char err[256] = "";
	struct acl *a = acl_parse(text, strlen(text), "acl.conf", err, sizeof(err));

	if (a == NULL)
		fail_msg("unexpected error: %s", err);
	return a;
}

/* Checks with a username (NULL: none) and a client id. */
static int can(const struct acl *a, const char *user, const char *cid, const char *topic,
               enum acl_access acc)
{
	return acl_check(a, user, user != NULL ? strlen(user) : 0, cid, strlen(cid),
	                 (const uint8_t *)topic, strlen(topic), acc);
}

static int can_pub(const struct acl *a, const char *user, const char *cid, const char *topic)
{
	return can(a, user, cid, topic, ACL_WRITE);
}

static int can_sub(const struct acl *a, const char *user, const char *cid, const char *filter)
{
	return can(a, user, cid, filter, ACL_READ);
}

/* --- which rules apply ------------------------------------------------ */

static void test_acl_empty_file_denies_everything(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("# nothing\n");
	assert_false(can_pub(a, NULL, "c", "a"));
	assert_false(can_sub(a, "u", "c", "a"));
	acl_free(a);
}

static void test_acl_general_section_applies_to_clients_without_a_username(void **state)
{
	struct acl *a;

	(void)state;
	/* mosquitto: "The first set of topics are applied to anonymous
	 * clients"; a client with a username gets its own section only. */
	a = parse("topic public/#\nuser bob\ntopic bob/#\n");
	assert_true(can_pub(a, NULL, "c", "public/x"));
	assert_false(can_pub(a, NULL, "c", "bob/x"));
	assert_true(can_pub(a, "bob", "c", "bob/x"));
	assert_false(can_pub(a, "bob", "c", "public/x"));
	assert_false(can_pub(a, "carol", "c", "public/x"));
	acl_free(a);
}

static void test_acl_an_empty_username_is_not_an_absent_one(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic public/#\n");
	assert_true(can_pub(a, NULL, "c", "public/x"));
	assert_false(can_pub(a, "", "c", "public/x"));
	acl_free(a);
}

static void test_acl_user_sections_find_their_user_among_many(void **state)
{
	char *text = malloc(1000 * 40), *p = text, user[16], topic[16];
	struct acl *a;
	int i;

	(void)state;
	assert_non_null(text);
	for (i = 999; i >= 0; i--)
		p += sprintf(p, "user u%d\ntopic t/%d\n", i, i);
	a = parse(text);
	free(text);
	assert_int_equal(acl_user_count(a), 1000);
	for (i = 0; i < 1000; i += 37) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(topic, sizeof(topic), "t/%d", i);
		assert_true(can_pub(a, user, "c", topic));
		snprintf(topic, sizeof(topic), "t/%d", (i + 1) % 1000);
		assert_false(can_pub(a, user, "c", topic));
	}
	acl_free(a);
}

static void test_acl_patterns_apply_to_everyone_wherever_written(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("user bob\ntopic bob/#\npattern devices/%c/#\n");
	assert_true(can_pub(a, "bob", "d1", "devices/d1/x"));
	assert_true(can_pub(a, "carol", "d2", "devices/d2/x"));
	assert_true(can_pub(a, NULL, "d3", "devices/d3/x"));
	assert_false(can_pub(a, "carol", "d2", "devices/d1/x"));
	acl_free(a);
}

static void test_acl_pattern_substitutes_username_and_client_id(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("pattern write users/%u/%c/out\npattern read users/%u/in/#\n");
	assert_true(can_pub(a, "alice", "phone", "users/alice/phone/out"));
	assert_false(can_pub(a, "alice", "phone", "users/bob/phone/out"));
	assert_false(can_pub(a, "alice", "tablet", "users/alice/phone/out"));
	assert_true(can_sub(a, "alice", "phone", "users/alice/in/+"));
	assert_false(can_sub(a, "alice", "phone", "users/+/in/#"));
	acl_free(a);
}

static void test_acl_pattern_with_u_does_not_apply_without_a_username(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("pattern users/%u/#\npattern deny users/%u/secret\n");
	assert_false(can_pub(a, NULL, "c", "users//x"));
	assert_false(can_pub(a, NULL, "c", "users/%u/x"));
	acl_free(a);
}

static void test_acl_pattern_grant_with_an_empty_value_grants_nothing(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("pattern devices/%c/#\npattern users/%u/#\n");
	assert_false(can_pub(a, NULL, "", "devices//x"));
	assert_false(can_pub(a, "", "c", "users//x"));
	acl_free(a);
}

static void test_acl_pattern_deny_with_an_empty_value_still_denies(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic #\npattern deny devices/%c/secret\n");
	assert_true(can_pub(a, NULL, "", "devices/x/secret"));
	assert_false(can_pub(a, NULL, "", "devices//secret"));
	acl_free(a);
}

static void test_acl_substitutes_a_slash_in_a_value_verbatim(void **state)
{
	struct acl *a;

	(void)state;
	/* As in mosquitto: the value may add levels. */
	a = parse("pattern devices/%c/#\n");
	assert_true(can_pub(a, NULL, "site/7", "devices/site/7/temp"));
	assert_false(can_pub(a, NULL, "site/7", "devices/site/8/temp"));
	acl_free(a);
}

static void test_acl_denies_a_username_with_wildcards_when_patterns_exist(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("user a+b\ntopic x\npattern devices/%u/#\n");
	/* mosquitto: "ACL denying access to client with dangerous username".
	 * mqtls refuses the user-section grant too. */
	assert_false(can_pub(a, "a+b", "c", "devices/a+b/x"));
	assert_false(can_pub(a, "a+b", "c", "devices/anything/x"));
	assert_false(can_pub(a, "a+b", "c", "x"));
	assert_false(can_pub(a, "#", "c", "devices/x"));
	acl_free(a);
}

static void test_acl_denies_a_client_id_with_wildcards_when_patterns_exist(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic x\npattern devices/%c/#\n");
	assert_false(can_pub(a, NULL, "+", "devices/d/x"));
	assert_false(can_pub(a, NULL, "d#", "x"));
	assert_true(can_pub(a, NULL, "d", "x"));
	acl_free(a);
}

static void test_acl_keeps_wildcard_names_for_topic_rules_without_patterns(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("user a+b\ntopic x\n");
	assert_true(can_pub(a, "a+b", "c#", "x"));
	acl_free(a);
}

/* --- deciding ----------------------------------------------------------- */

static void test_acl_denies_when_nothing_matches(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic a/b\n");
	assert_false(can_pub(a, NULL, "c", "a/c"));
	assert_false(can_pub(a, NULL, "c", "a/b/c"));
	acl_free(a);
}

static void test_acl_deny_wins_over_a_broader_grant_in_the_same_section(void **state)
{
	struct acl *a;

	(void)state;
	/* Order does not matter: the deny comes after the grant here. */
	a = parse("topic readwrite a/#\ntopic deny a/secret\n");
	assert_true(can_pub(a, NULL, "c", "a/public"));
	assert_false(can_pub(a, NULL, "c", "a/secret"));
	assert_false(can_sub(a, NULL, "c", "a/secret"));
	acl_free(a);
}

static void test_acl_deny_pattern_wins_over_a_user_grant(void **state)
{
	struct acl *a;

	(void)state;
	/* mosquitto would grant here (its user list is read before the
	 * patterns); mqtls applies every deny first. */
	a = parse("user bob\ntopic readwrite #\npattern deny private/%c/#\n");
	assert_true(can_pub(a, "bob", "d1", "private/d2/x"));
	assert_false(can_pub(a, "bob", "d1", "private/d1/x"));
	acl_free(a);
}

static void test_acl_wildcard_rules_match_per_section_4_7(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read sensors/+/temp\ntopic write cmd/#\n");
	assert_true(can_sub(a, NULL, "c", "sensors/k1/temp"));
	assert_false(can_sub(a, NULL, "c", "sensors/k1/hum"));
	assert_true(can_pub(a, NULL, "c", "cmd"));
	assert_true(can_pub(a, NULL, "c", "cmd/a/b"));
	acl_free(a);
}

static void test_acl_hash_rule_does_not_reach_dollar_topics_mqtt_4_7_2_1(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic readwrite #\n");
	assert_false(can_pub(a, NULL, "c", "$SYS/x"));
	assert_false(can_sub(a, NULL, "c", "$SYS/#"));
	acl_free(a);
	a = parse("topic read $SYS/#\n");
	assert_true(can_sub(a, NULL, "c", "$SYS/broker/+"));
	acl_free(a);
}

static void test_acl_subscribe_filter_is_allowed_only_if_a_read_rule_covers_it(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read a/#\ntopic read b/+\n");
	assert_true(can_sub(a, NULL, "c", "a/#"));
	assert_true(can_sub(a, NULL, "c", "a/+/x"));
	assert_true(can_sub(a, NULL, "c", "b/+"));
	assert_true(can_sub(a, NULL, "c", "b/x"));
	assert_false(can_sub(a, NULL, "c", "b/#"));
	assert_false(can_sub(a, NULL, "c", "#"));
	assert_false(can_sub(a, NULL, "c", "+/x"));
	acl_free(a);
}

static void test_acl_subscribe_filter_is_denied_if_it_can_match_a_denied_topic(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read a/#\ntopic deny a/secret\n");
	assert_false(can_sub(a, NULL, "c", "a/#"));
	assert_false(can_sub(a, NULL, "c", "a/+"));
	assert_true(can_sub(a, NULL, "c", "a/public/+"));
	assert_true(can_sub(a, NULL, "c", "a/other"));
	acl_free(a);
}

static void test_acl_deny_blocks_both_read_and_write(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic x/#\ntopic deny x/y\n");
	assert_false(can_pub(a, NULL, "c", "x/y"));
	assert_false(can_sub(a, NULL, "c", "x/y"));
	acl_free(a);
}

static void test_acl_refuses_null_acl_invalid_topics_and_unknown_access(void **state)
{
	struct acl *a;

	(void)state;
	assert_false(can_pub(NULL, NULL, "c", "a"));
	a = parse("topic #\n");
	assert_false(can_pub(a, NULL, "c", ""));
	assert_false(can_sub(a, NULL, "c", "a/#/b"));
	assert_false(can(a, NULL, "c", "a", (enum acl_access)3));
	assert_false(acl_check(a, NULL, 0, "c", 1, NULL, 0, ACL_WRITE));
	assert_true(acl_check(a, NULL, 0, NULL, 0, (const uint8_t *)"a", 1, ACL_WRITE));
	acl_free(a);
}

static void test_acl_expands_long_values_beyond_the_stack_buffer(void **state)
{
	static char cid[2000], topic[2100];
	struct acl *a;

	(void)state;
	memset(cid, 'k', sizeof(cid) - 1);
	snprintf(topic, sizeof(topic), "devices/%s/x", cid);
	a = parse("pattern devices/%c/#\n");
	assert_true(can_pub(a, NULL, cid, topic));
	topic[10] = 'j';
	assert_false(can_pub(a, NULL, cid, topic));
	acl_free(a);
}

static void test_acl_fails_closed_when_an_expansion_is_too_long(void **state)
{
	static char user[65536];
	struct acl *a;

	(void)state;
	memset(user, 'u', sizeof(user) - 1);
	/* Three copies of a 65,535-byte name exceed the expansion bound: the
	 * grant grants nothing, the deny denies everything. */
	a = parse("topic ok\npattern %u/%u/%u\n");
	assert_false(can_pub(a, user, "c", "ok"));   /* no section for this user */
	acl_free(a);
	a = parse("pattern x/#\npattern deny %u/%u/%u\n");
	assert_false(can_pub(a, user, "c", "x/y"));
	assert_true(can_pub(a, "short", "c", "x/y"));
	acl_free(a);
}

static void test_acl_from_lists_builds_pub_and_sub_patterns(void **state)
{
	struct slice pub[] = { { (const uint8_t *)"dev/%c/out", 10 } };
	struct slice sub[] = { { (const uint8_t *)"dev/%c/in/#", 11 }, { (const uint8_t *)"news/+", 6 } };
	struct slice bad[] = { { (const uint8_t *)"a/#/b", 5 } };
	char err[128];
	struct acl *a;

	(void)state;
	a = acl_from_lists(pub, 1, sub, 2, err, sizeof(err));
	assert_non_null(a);
	assert_true(can_pub(a, "u", "d1", "dev/d1/out"));
	assert_false(can_sub(a, "u", "d1", "dev/d1/out"));
	assert_true(can_sub(a, "u", "d1", "dev/d1/in/+"));
	assert_true(can_sub(a, NULL, "d1", "news/today"));
	assert_false(can_pub(a, "u", "d1", "news/today"));
	acl_free(a);
	assert_null(acl_from_lists(pub, 1, bad, 1, err, sizeof(err)));
	assert_string_equal(err, "sub[0]: invalid topic filter");
	a = acl_from_lists(NULL, 0, NULL, 0, err, sizeof(err));
	assert_non_null(a);
	assert_false(can_pub(a, "u", "d", "x"));
	acl_free(a);
}

static void test_acl_reads_the_mosquitto_documentation_example(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("# This affects access control for clients with no username.\n"
	          "topic read $SYS/#\n"
	          "\n"
	          "# This only affects clients with username \"roger\".\n"
	          "user roger\n"
	          "topic foo/bar\n"
	          "\n"
	          "# This affects all clients.\n"
	          "pattern write $SYS/broker/connection/%c/state\n");
	assert_true(can_sub(a, NULL, "c", "$SYS/broker/load/#"));
	assert_false(can_sub(a, "roger", "c", "$SYS/broker/load/#"));
	assert_true(can_pub(a, "roger", "c", "foo/bar"));
	assert_true(can_sub(a, "roger", "c", "foo/bar"));
	assert_false(can_pub(a, NULL, "c", "foo/bar"));
	assert_true(can_pub(a, "roger", "bridge1", "$SYS/broker/connection/bridge1/state"));
	assert_false(can_pub(a, "roger", "bridge1", "$SYS/broker/connection/bridge2/state"));
	acl_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acl_empty_file_denies_everything),
		cmocka_unit_test(test_acl_general_section_applies_to_clients_without_a_username),
		cmocka_unit_test(test_acl_an_empty_username_is_not_an_absent_one),
		cmocka_unit_test(test_acl_user_sections_find_their_user_among_many),
		cmocka_unit_test(test_acl_patterns_apply_to_everyone_wherever_written),
		cmocka_unit_test(test_acl_pattern_substitutes_username_and_client_id),
		cmocka_unit_test(test_acl_pattern_with_u_does_not_apply_without_a_username),
		cmocka_unit_test(test_acl_pattern_grant_with_an_empty_value_grants_nothing),
		cmocka_unit_test(test_acl_pattern_deny_with_an_empty_value_still_denies),
		cmocka_unit_test(test_acl_substitutes_a_slash_in_a_value_verbatim),
		cmocka_unit_test(test_acl_denies_a_username_with_wildcards_when_patterns_exist),
		cmocka_unit_test(test_acl_denies_a_client_id_with_wildcards_when_patterns_exist),
		cmocka_unit_test(test_acl_keeps_wildcard_names_for_topic_rules_without_patterns),
		cmocka_unit_test(test_acl_denies_when_nothing_matches),
		cmocka_unit_test(test_acl_deny_wins_over_a_broader_grant_in_the_same_section),
		cmocka_unit_test(test_acl_deny_pattern_wins_over_a_user_grant),
		cmocka_unit_test(test_acl_wildcard_rules_match_per_section_4_7),
		cmocka_unit_test(test_acl_hash_rule_does_not_reach_dollar_topics_mqtt_4_7_2_1),
		cmocka_unit_test(test_acl_subscribe_filter_is_allowed_only_if_a_read_rule_covers_it),
		cmocka_unit_test(test_acl_subscribe_filter_is_denied_if_it_can_match_a_denied_topic),
		cmocka_unit_test(test_acl_deny_blocks_both_read_and_write),
		cmocka_unit_test(test_acl_refuses_null_acl_invalid_topics_and_unknown_access),
		cmocka_unit_test(test_acl_expands_long_values_beyond_the_stack_buffer),
		cmocka_unit_test(test_acl_fails_closed_when_an_expansion_is_too_long),
		cmocka_unit_test(test_acl_from_lists_builds_pub_and_sub_patterns),
		cmocka_unit_test(test_acl_reads_the_mosquitto_documentation_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
