/*
 * Unit tests for proxy/acl_file.c: mosquitto's acl_file syntax (comments,
 * blank lines, user sections, topic and pattern lines, access words, the
 * limits) with a "file:line: reason" for every bad line. The decisions
 * are tested in test_acl.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
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

static void expect_error(const char *text, const char *want)
{
	char err[256] = "";
	struct acl *a = acl_parse(text, strlen(text), "acl.conf", err, sizeof(err));

	assert_null(a);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
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

/* --- syntax ------------------------------------------------------------- */

static void test_acl_skips_comments_and_blank_lines(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("# a comment\n\n   \n\t# an indented comment\r\ntopic a\r\n\n# end");
	assert_int_equal(acl_rule_count(a), 1);
	assert_true(can_pub(a, NULL, "c", "a"));
	acl_free(a);
}

static void test_acl_reads_a_last_line_without_newline(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read x\ntopic write y");
	assert_int_equal(acl_rule_count(a), 2);
	assert_true(can_pub(a, NULL, "c", "y"));
	acl_free(a);
}

static void test_acl_access_defaults_to_readwrite(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic a/b\n");
	assert_true(can_pub(a, NULL, "c", "a/b"));
	assert_true(can_sub(a, NULL, "c", "a/b"));
	acl_free(a);
}

static void test_acl_read_allows_subscribe_only_and_write_publish_only(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read r\ntopic write w\ntopic readwrite rw\n");
	assert_true(can_sub(a, NULL, "c", "r"));
	assert_false(can_pub(a, NULL, "c", "r"));
	assert_true(can_pub(a, NULL, "c", "w"));
	assert_false(can_sub(a, NULL, "c", "w"));
	assert_true(can_pub(a, NULL, "c", "rw"));
	assert_true(can_sub(a, NULL, "c", "rw"));
	acl_free(a);
}

static void test_acl_topic_may_contain_blanks_after_the_access_word(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic read  room 1/temp  \n");
	assert_true(can_sub(a, NULL, "c", "room 1/temp"));
	assert_false(can_sub(a, NULL, "c", "room"));
	acl_free(a);
}

static void test_acl_accepts_tabs_and_repeated_blanks_between_words(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("topic\tread\t\tx\n  user  bob\n");
	assert_true(can_sub(a, NULL, "c", "x"));
	acl_free(a);
}

static void test_acl_refuses_an_unknown_access_word_with_its_line(void **state)
{
	(void)state;
	expect_error("topic a\ntopic foo bar\n", "acl.conf:2: unknown access type \"foo\"");
	expect_error("topic READ x\n", "acl.conf:1: unknown access type \"READ\"");
}

static void test_acl_refuses_an_access_word_without_a_topic(void **state)
{
	(void)state;
	expect_error("\n\ntopic read\n", "acl.conf:3: access type \"read\" without a topic");
	expect_error("pattern deny   \n", "acl.conf:1: access type \"deny\" without a topic");
}

static void test_acl_refuses_a_topic_line_without_a_topic(void **state)
{
	(void)state;
	expect_error("topic\n", "acl.conf:1: topic line without a topic");
	expect_error("pattern \t\n", "acl.conf:1: pattern line without a topic");
}

static void test_acl_refuses_an_invalid_topic_filter_mqtt_4_7_1_2(void **state)
{
	(void)state;
	expect_error("topic a/#/b\n", "acl.conf:1: invalid topic filter \"a/#/b\"");
	expect_error("topic read a+\n", "invalid topic filter");
	expect_error("pattern write x/%c#\n", "invalid topic filter");
}

static void test_acl_refuses_a_topic_that_is_not_utf8(void **state)
{
	(void)state;
	expect_error("topic a\xff\n", "acl.conf:1: invalid topic filter \"a?\"");
}

static void test_acl_refuses_an_unknown_keyword(void **state)
{
	(void)state;
	expect_error("topic a\nusers bob\n", "acl.conf:2: unknown keyword \"users\"");
	/* There are no trailing comments: "a" is read as an access word. */
	expect_error("topic a # comment?\n", "acl.conf:1: unknown access type \"a\"");
}

static void test_acl_refuses_a_user_line_without_a_name(void **state)
{
	(void)state;
	expect_error("user\n", "acl.conf:1: user line without a name");
	expect_error("user   \r\n", "acl.conf:1: user line without a name");
}

static void test_acl_refuses_a_nul_byte(void **state)
{
	char text[] = "topic a\0b\n";
	char err[128];

	(void)state;
	assert_null(acl_parse(text, sizeof(text) - 1, "f", err, sizeof(err)));
	assert_non_null(strstr(err, "f:1: NUL byte"));
}

static void test_acl_refuses_a_line_over_the_limit(void **state)
{
	size_t n = ACL_MAX_LINE + 20;
	char *text = malloc(n + 1), err[128];

	(void)state;
	assert_non_null(text);
	memcpy(text, "topic ", 6);
	memset(text + 6, 'a', n - 6);
	text[n] = '\0';
	assert_null(acl_parse(text, n, "f", err, sizeof(err)));
	assert_non_null(strstr(err, "f:1: line longer than 8192 bytes"));
	/* At the limit it is fine. */
	assert_non_null(text);
	{
		struct acl *a = acl_parse(text, ACL_MAX_LINE, "f", err, sizeof(err));

		assert_non_null(a);
		acl_free(a);
	}
	free(text);
}

static void test_acl_refuses_more_rules_than_the_limit(void **state)
{
	size_t lines = ACL_MAX_RULES + 1, i;
	char *text = malloc(lines * 8 + 1), err[128];
	char *p = text;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < lines; i++) {
		memcpy(p, "topic a\n", 8);
		p += 8;
	}
	assert_null(acl_parse(text, (size_t)(p - text), "f", err, sizeof(err)));
	assert_non_null(strstr(err, "f:100001: more than 100000 rules"));
	free(text);
}

static void test_acl_load_reads_a_file_and_names_it_in_errors(void **state)
{
	char path[] = "/tmp/mqtls-acl-XXXXXX", err[512];
	const char good[] = "user alice\ntopic write a/#\n";
	const char bad[] = "user alice\ntopic write a/#\ntopic nope x\n";
	struct acl *a;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, sizeof(good) - 1), (ssize_t)(sizeof(good) - 1));
	close(fd);
	a = acl_load(path, err, sizeof(err));
	assert_non_null(a);
	assert_true(can_pub(a, "alice", "c", "a/x"));
	acl_free(a);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
	close(fd);
	assert_null(acl_load(path, err, sizeof(err)));
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:3: unknown access type \"nope\" (read, write, readwrite or deny)",
		         path);
		assert_string_equal(err, want);
	}
	unlink(path);
	assert_null(acl_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

static void test_acl_counts_rules_and_merges_repeated_user_sections(void **state)
{
	struct acl *a;

	(void)state;
	a = parse("user a\ntopic x\nuser b\ntopic y\nuser a\ntopic z\npattern p/%u\n");
	assert_int_equal(acl_rule_count(a), 4);
	assert_int_equal(acl_user_count(a), 2);
	assert_true(can_pub(a, "a", "c", "x"));
	assert_true(can_pub(a, "a", "c", "z"));
	assert_false(can_pub(a, "a", "c", "y"));
	assert_true(can_pub(a, "b", "c", "y"));
	acl_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acl_skips_comments_and_blank_lines),
		cmocka_unit_test(test_acl_reads_a_last_line_without_newline),
		cmocka_unit_test(test_acl_access_defaults_to_readwrite),
		cmocka_unit_test(test_acl_read_allows_subscribe_only_and_write_publish_only),
		cmocka_unit_test(test_acl_topic_may_contain_blanks_after_the_access_word),
		cmocka_unit_test(test_acl_accepts_tabs_and_repeated_blanks_between_words),
		cmocka_unit_test(test_acl_refuses_an_unknown_access_word_with_its_line),
		cmocka_unit_test(test_acl_refuses_an_access_word_without_a_topic),
		cmocka_unit_test(test_acl_refuses_a_topic_line_without_a_topic),
		cmocka_unit_test(test_acl_refuses_an_invalid_topic_filter_mqtt_4_7_1_2),
		cmocka_unit_test(test_acl_refuses_a_topic_that_is_not_utf8),
		cmocka_unit_test(test_acl_refuses_an_unknown_keyword),
		cmocka_unit_test(test_acl_refuses_a_user_line_without_a_name),
		cmocka_unit_test(test_acl_refuses_a_nul_byte),
		cmocka_unit_test(test_acl_refuses_a_line_over_the_limit),
		cmocka_unit_test(test_acl_refuses_more_rules_than_the_limit),
		cmocka_unit_test(test_acl_load_reads_a_file_and_names_it_in_errors),
		cmocka_unit_test(test_acl_counts_rules_and_merges_repeated_user_sections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
