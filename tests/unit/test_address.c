/*
 * Command-line socket addresses (proxy/address.c): address_parse and
 * address_format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "proxy/address.h"

static int parse(const char *spec, int allow_unix, struct address *a, char *err, size_t errlen)
{
	err[0] = '\0';
	return address_parse(spec, allow_unix, a, err, errlen);
}

/* Parses |spec|, expecting failure with |reason| in the message. */
static void assert_refused(const char *spec, int allow_unix, const char *reason)
{
	struct address a;
	char err[256];

	if (parse(spec, allow_unix, &a, err, sizeof(err)) != 0)
		fail_msg("'%s' was accepted", spec);
	assert_true(err[0] != '\0');
	if (strstr(err, reason) == NULL)
		fail_msg("error for '%s' is \"%s\", expected it to contain \"%s\"", spec, err, reason);
}

static const char *format(const struct address *a)
{
	static char out[256];

	address_format((const struct sockaddr *)&a->sa, a->len, out, sizeof(out));
	return out;
}

static void test_ipv4_host_and_port_are_parsed(void **state)
{
	struct address a;
	struct sockaddr_in *in = (struct sockaddr_in *)&a.sa;
	char err[256];

	assert_int_equal(parse("127.0.0.1:8883", 0, &a, err, sizeof(err)), 1);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(in->sin_port), 8883);
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
}

static void test_any_address_and_port_zero_are_accepted(void **state)
{
	struct address a;
	struct sockaddr_in *in = (struct sockaddr_in *)&a.sa;
	char err[256];

	assert_int_equal(parse("0.0.0.0:0", 0, &a, err, sizeof(err)), 1);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(in->sin_port, 0);
	assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));
}

static void test_highest_port_65535_is_accepted(void **state)
{
	struct address a;
	char err[256];

	assert_int_equal(parse("10.1.2.3:65535", 0, &a, err, sizeof(err)), 1);
	assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 65535);
}

static void test_bracketed_ipv6_address_and_port_are_parsed(void **state)
{
	struct address a;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.sa;
	char err[256];

	assert_int_equal(parse("[::1]:1883", 0, &a, err, sizeof(err)), 1);
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(in6->sin6_port), 1883);
	assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback));

	assert_int_equal(parse("[::]:8883", 0, &a, err, sizeof(err)), 1);
	assert_memory_equal(&in6->sin6_addr, &in6addr_any, sizeof(in6addr_any));
}

static void test_host_name_from_hosts_file_is_resolved(void **state)
{
	struct address a;
	char err[256];

	assert_int_equal(parse("localhost:1883", 0, &a, err, sizeof(err)), 1);
	assert_true(a.sa.ss_family == AF_INET || a.sa.ss_family == AF_INET6);
	if (a.sa.ss_family == AF_INET)
		assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 1883);
	else
		assert_int_equal(ntohs(((struct sockaddr_in6 *)&a.sa)->sin6_port), 1883);
}

static void test_unix_path_is_parsed_when_allowed(void **state)
{
	struct address a;
	struct sockaddr_un *un = (struct sockaddr_un *)&a.sa;
	char err[256];

	assert_int_equal(parse("unix:/run/mosquitto/mqtt.sock", 1, &a, err, sizeof(err)), 1);
	assert_int_equal(un->sun_family, AF_UNIX);
	assert_string_equal(un->sun_path, "/run/mosquitto/mqtt.sock");
	assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/mosquitto/mqtt.sock") + 1);
}

static void test_unix_path_is_refused_where_not_allowed(void **state)
{
	assert_refused("unix:/run/mosquitto/mqtt.sock", 0, "not allowed");
}

static void test_empty_unix_path_is_refused(void **state)
{
	assert_refused("unix:", 1, "empty or too long");
}

static void test_unix_path_longest_that_fits_sun_path_is_accepted_one_more_refused(void **state)
{
	struct sockaddr_un un;
	char spec[sizeof(un.sun_path) + 16];
	struct address a;
	char err[256];

	/* sun_path holds the path and its NUL. */
	strcpy(spec, "unix:/");
	memset(spec + 6, 'p', sizeof(un.sun_path) - 2);
	spec[6 + sizeof(un.sun_path) - 2] = '\0';
	assert_int_equal(strlen(spec + 5), sizeof(un.sun_path) - 1);
	assert_int_equal(parse(spec, 1, &a, err, sizeof(err)), 1);
	assert_string_equal(((struct sockaddr_un *)&a.sa)->sun_path, spec + 5);

	strcat(spec, "p");
	assert_refused(spec, 1, "too long");
}

static void test_missing_port_is_refused(void **state)
{
	assert_refused("127.0.0.1", 0, "expected HOST:PORT");
	assert_refused("127.0.0.1:", 0, "port from 0 to 65535");
	assert_refused("[::1]", 0, "expected [IPV6]:PORT");
	assert_refused("[::1]:", 0, "port from 0 to 65535");
	assert_refused("[::1]8883", 0, "expected [IPV6]:PORT");
	assert_refused("[::1", 0, "expected [IPV6]:PORT");
}

static void test_port_above_65535_is_refused(void **state)
{
	assert_refused("127.0.0.1:65536", 0, "port from 0 to 65535");
	assert_refused("[::1]:70000", 0, "port from 0 to 65535");
	assert_refused("127.0.0.1:99999999999999999999999", 0, "port from 0 to 65535");
}

static void test_port_that_is_not_plain_digits_is_refused(void **state)
{
	assert_refused("127.0.0.1:-1", 0, "port from 0 to 65535");
	assert_refused("127.0.0.1:+80", 0, "port from 0 to 65535");
	assert_refused("127.0.0.1:80a", 0, "port from 0 to 65535");
	assert_refused("127.0.0.1: 80", 0, "port from 0 to 65535");
	assert_refused("127.0.0.1:mqtt", 0, "port from 0 to 65535");
}

static void test_empty_host_is_refused(void **state)
{
	assert_refused(":8883", 0, "expected HOST:PORT");
	assert_refused("[]:8883", 0, "expected HOST:PORT");
}

static void test_format_round_trips_canonical_specs(void **state)
{
	static const char *const specs[] = {
		"127.0.0.1:8883", "0.0.0.0:0", "192.168.100.200:65535", "[::1]:1883",
		"[::]:8883", "[2001:db8::42]:1", "[fe80::1:2:3:4]:443",
	};
	struct address a;
	char err[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		assert_int_equal(parse(specs[i], 0, &a, err, sizeof(err)), 1);
		assert_string_equal(format(&a), specs[i]);
	}
	assert_int_equal(parse("unix:/tmp/broker.sock", 1, &a, err, sizeof(err)), 1);
	assert_string_equal(format(&a), "unix:/tmp/broker.sock");
}

static void test_format_writes_ipv6_in_its_shortest_form(void **state)
{
	struct address a;
	char err[256];

	assert_int_equal(parse("[2001:0db8:0000:0000:0000:0000:0000:0001]:80", 0, &a, err, sizeof(err)), 1);
	assert_string_equal(format(&a), "[2001:db8::1]:80");
}

static void test_format_truncates_to_cap_with_a_terminating_nul(void **state)
{
	struct address a;
	char err[256], out[8 + 4];

	assert_int_equal(parse("192.168.100.200:65535", 0, &a, err, sizeof(err)), 1);
	memset(out, 'Z', sizeof(out));
	address_format((const struct sockaddr *)&a.sa, a.len, out, 8);
	assert_string_equal(out, "192.168");
	assert_memory_equal(out + 8, "ZZZZ", 4);
}

static void test_format_of_unknown_family_or_unnamed_unix_socket_is_a_question_mark(void **state)
{
	struct sockaddr_storage ss;
	char out[64];

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	address_format((const struct sockaddr *)&ss, sizeof(ss), out, sizeof(out));
	assert_string_equal(out, "?");

	/* accept() on a unix listener reports an unnamed peer as just the family. */
	ss.ss_family = AF_UNIX;
	address_format((const struct sockaddr *)&ss, offsetof(struct sockaddr_un, sun_path), out,
	               sizeof(out));
	assert_string_equal(out, "?");
}

/* The kernel reports a path that fills sun_path without a NUL (len is then
 * sizeof(struct sockaddr_un)); formatting must stop at |len| and not run on
 * into whatever follows the address in memory. */
static void test_format_of_unix_path_filling_sun_path_stays_within_len(void **state)
{
	union {
		struct sockaddr_un un;
		char raw[sizeof(struct sockaddr_un) + 16];
	} u;
	char out[256], expect[256];

	memset(u.raw, 'X', sizeof(u.raw) - 1);
	u.raw[sizeof(u.raw) - 1] = '\0';
	u.un.sun_family = AF_UNIX;
	memset(u.un.sun_path, 'q', sizeof(u.un.sun_path));
	snprintf(expect, sizeof(expect), "unix:%.*s", (int)sizeof(u.un.sun_path), u.un.sun_path);
	address_format((const struct sockaddr *)&u.un, sizeof(u.un), out, sizeof(out));
	assert_string_equal(out, expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_host_and_port_are_parsed),
		cmocka_unit_test(test_any_address_and_port_zero_are_accepted),
		cmocka_unit_test(test_highest_port_65535_is_accepted),
		cmocka_unit_test(test_bracketed_ipv6_address_and_port_are_parsed),
		cmocka_unit_test(test_host_name_from_hosts_file_is_resolved),
		cmocka_unit_test(test_unix_path_is_parsed_when_allowed),
		cmocka_unit_test(test_unix_path_is_refused_where_not_allowed),
		cmocka_unit_test(test_empty_unix_path_is_refused),
		cmocka_unit_test(test_unix_path_longest_that_fits_sun_path_is_accepted_one_more_refused),
		cmocka_unit_test(test_missing_port_is_refused),
		cmocka_unit_test(test_port_above_65535_is_refused),
		cmocka_unit_test(test_port_that_is_not_plain_digits_is_refused),
		cmocka_unit_test(test_empty_host_is_refused),
		cmocka_unit_test(test_format_round_trips_canonical_specs),
		cmocka_unit_test(test_format_writes_ipv6_in_its_shortest_form),
		cmocka_unit_test(test_format_truncates_to_cap_with_a_terminating_nul),
		cmocka_unit_test(test_format_of_unknown_family_or_unnamed_unix_socket_is_a_question_mark),
		cmocka_unit_test(test_format_of_unix_path_filling_sun_path_stays_within_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
