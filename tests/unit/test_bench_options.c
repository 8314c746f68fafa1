/*
 * Unit tests for bench/options.c: the message scenarios' options, their
 * cross-checks, and --source-ips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "bench/options.h"

/* Parses a NULL-terminated argument list (argv[0] supplied here). */
static enum options_result parse(struct bench_options *o, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"mqtls-bench";
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return bench_options_parse(o, argc, argv);
}

static void test_pubsub_defaults_give_a_per_pair_topic_and_qos_0(void **state)
{
	static const char *const args[] = { "pubsub", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_OK);
	assert_int_equal(o.scenario, SCENARIO_PUBSUB);
	assert_string_equal(o.topic, "bench/%i");
	assert_int_equal(o.qos, 0);
	assert_int_equal(o.payload, 64);
	assert_int_equal(o.messages, 1000);
	assert_int_equal(o.tls_resume, 0);
	assert_true(bench_scenario_messages(o.scenario));
	assert_string_equal(bench_scenario_name(o.scenario), "pubsub");
}

static void test_message_options_are_read(void **state)
{
	static const char *const args[] = { "pub", "--qos", "2", "-s", "1024", "-m", "50", "--msg-rate",
	                                    "12.5", "--inflight", "8", "--tls-resume", "--topic", "a/%i/b", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_OK);
	assert_int_equal(o.scenario, SCENARIO_PUB);
	assert_int_equal(o.qos, 2);
	assert_int_equal(o.payload, 1024);
	assert_int_equal(o.messages, 50);
	assert_true(o.msg_rate == 12.5);
	assert_int_equal(o.inflight, 8);
	assert_int_equal(o.tls_resume, 1);
	assert_string_equal(o.topic, "a/%i/b");
}

static void test_qos_3_is_refused(void **state)
{
	static const char *const args[] = { "pub", "--qos", "3", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_ERROR);
}

static void test_payload_above_the_bound_is_refused(void **state)
{
	static const char *const args[] = { "pub", "--payload", "1048577", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_ERROR);
}

static void test_pubsub_payload_must_hold_the_stamp(void **state)
{
	static const char *const small[] = { "pubsub", "--payload", "15", NULL };
	static const char *const enough[] = { "pubsub", "--payload", "16", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, small), OPTIONS_ERROR);
	assert_int_equal(parse(&o, enough), OPTIONS_OK);
}

static void test_pubsub_topic_without_pair_index_is_refused(void **state)
{
	static const char *const args[] = { "pubsub", "--topic", "one/topic", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_ERROR);
}

static void test_source_ips_range_is_parsed(void **state)
{
	static const char *const args[] = { "conn", "--source-ips", "127.0.0.2-127.0.0.50", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_OK);
	assert_int_equal(o.src_first, 0x7f000002u);
	assert_int_equal(o.src_count, 49);
}

static void test_source_ips_single_address_is_a_range_of_one(void **state)
{
	static const char *const args[] = { "conn", "--source-ips", "10.1.2.3", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_OK);
	assert_int_equal(o.src_first, 0x0a010203u);
	assert_int_equal(o.src_count, 1);
}

static void test_source_ips_reversed_or_malformed_are_refused(void **state)
{
	static const char *const reversed[] = { "conn", "--source-ips", "127.0.0.9-127.0.0.2", NULL };
	static const char *const v6[] = { "conn", "--source-ips", "::1-::2", NULL };
	static const char *const junk[] = { "conn", "--source-ips", "127.0.0.1-", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, reversed), OPTIONS_ERROR);
	assert_int_equal(parse(&o, v6), OPTIONS_ERROR);
	assert_int_equal(parse(&o, junk), OPTIONS_ERROR);
}

static void test_unknown_scenario_is_refused(void **state)
{
	static const char *const args[] = { "publish", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_ERROR);
}

static void test_jwt_key_defaults_the_username_and_the_claims(void **state)
{
	static const char *const args[] = { "conn", "--jwt-key", "k.pem", "--jwt-kid", "a", NULL };
	static const char *const with_user[] = { "conn", "--jwt-key", "k.pem", "-u", "dev", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, args), OPTIONS_OK);
	assert_string_equal(o.username, "token");
	assert_string_equal(o.jwt_claims, "{\"sub\":\"bench-%i\"}");
	assert_int_equal(o.jwt_ttl, 3600);
	assert_string_equal(o.jwt_kid, "a");
	assert_null(o.jwt_alg);
	assert_int_equal(parse(&o, with_user), OPTIONS_OK);
	assert_string_equal(o.username, "dev");
}

static void test_jwt_key_with_a_password_or_zero_ttl_is_refused(void **state)
{
	static const char *const pw[] = { "conn", "--jwt-key", "k", "-u", "a", "-P", "b", NULL };
	static const char *const ttl[] = { "conn", "--jwt-key", "k", "--jwt-ttl", "0", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, pw), OPTIONS_ERROR);
	assert_int_equal(parse(&o, ttl), OPTIONS_ERROR);
}

static void test_cert_directory_needs_a_key_directory_and_no_resumption(void **state)
{
	static const char *const mixed[] = { "conn", "--cert", "/tmp", "--key", "/dev/null", NULL };
	static const char *const dirs[] = { "conn", "--cert", "/tmp", "--key", "/tmp", NULL };
	static const char *const resume[] = { "conn", "--cert", "/tmp", "--key", "/tmp", "--tls-resume", NULL };
	struct bench_options o;

	(void)state;
	assert_int_equal(parse(&o, mixed), OPTIONS_ERROR);
	assert_int_equal(parse(&o, dirs), OPTIONS_OK);
	assert_int_equal(parse(&o, resume), OPTIONS_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pubsub_defaults_give_a_per_pair_topic_and_qos_0),
		cmocka_unit_test(test_message_options_are_read),
		cmocka_unit_test(test_qos_3_is_refused),
		cmocka_unit_test(test_payload_above_the_bound_is_refused),
		cmocka_unit_test(test_pubsub_payload_must_hold_the_stamp),
		cmocka_unit_test(test_pubsub_topic_without_pair_index_is_refused),
		cmocka_unit_test(test_source_ips_range_is_parsed),
		cmocka_unit_test(test_source_ips_single_address_is_a_range_of_one),
		cmocka_unit_test(test_source_ips_reversed_or_malformed_are_refused),
		cmocka_unit_test(test_unknown_scenario_is_refused),
		cmocka_unit_test(test_jwt_key_defaults_the_username_and_the_claims),
		cmocka_unit_test(test_jwt_key_with_a_password_or_zero_ttl_is_refused),
		cmocka_unit_test(test_cert_directory_needs_a_key_directory_and_no_resumption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
