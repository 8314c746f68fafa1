/* proxy/counts.c: bounded in-flight counts per address / user name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "proxy/counts.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void test_take_stops_at_the_limit_and_give_makes_room(void **state)
{
	struct counts *t = counts_new(8);
	uint64_t k = counts_key(t, COUNT_AUTH_USER, "alice", 5);

	assert_non_null(t);
	for (int i = 0; i < 3; i++)
		assert_int_equal(counts_take(t, k, 3), 1);
	assert_int_equal(counts_take(t, k, 3), 0);
	assert_int_equal(counts_get(t, k), 3);
	counts_give(t, k);
	assert_int_equal(counts_take(t, k, 3), 1);
	for (int i = 0; i < 3; i++)
		counts_give(t, k);
	assert_int_equal(counts_get(t, k), 0);
	counts_free(t);
}

static void test_limit_zero_means_no_cap(void **state)
{
	struct counts *t = counts_new(4);
	uint64_t k = counts_key(t, COUNT_AUTH_USER, "bob", 3);

	for (int i = 0; i < 1000; i++)
		assert_int_equal(counts_take(t, k, 0), 1);
	assert_int_equal(counts_get(t, k), 1000);
	counts_free(t);
}

static void test_address_key_ignores_the_port_but_not_the_ip(void **state)
{
	struct counts *t = counts_new(4);
	struct sockaddr_in a = v4("192.0.2.1", 1000), b = v4("192.0.2.1", 2000), c = v4("192.0.2.2", 1000);

	assert_true(counts_key_addr(t, COUNT_HANDSHAKE_IP, (struct sockaddr *)&a) ==
	            counts_key_addr(t, COUNT_HANDSHAKE_IP, (struct sockaddr *)&b));
	assert_true(counts_key_addr(t, COUNT_HANDSHAKE_IP, (struct sockaddr *)&a) !=
	            counts_key_addr(t, COUNT_HANDSHAKE_IP, (struct sockaddr *)&c));
	counts_free(t);
}

static void test_kinds_do_not_share_a_count(void **state)
{
	struct counts *t = counts_new(4);
	struct sockaddr_in a = v4("192.0.2.1", 1);

	assert_true(counts_key_addr(t, COUNT_HANDSHAKE_IP, (struct sockaddr *)&a) !=
	            counts_key_addr(t, COUNT_AUTH_IP, (struct sockaddr *)&a));
	counts_free(t);
}

static void test_a_full_table_refuses_new_keys_but_serves_known_ones(void **state)
{
	struct counts *t = counts_new(4);
	uint64_t k[5];

	for (int i = 0; i < 5; i++)
		k[i] = counts_key(t, COUNT_AUTH_USER, &i, sizeof(i));
	for (int i = 0; i < 4; i++)
		assert_int_equal(counts_take(t, k[i], 10), 1);
	assert_int_equal(counts_take(t, k[4], 10), 0);
	assert_int_equal(counts_take(t, k[0], 10), 1);
	counts_give(t, k[1]);
	assert_int_equal(counts_take(t, k[4], 10), 1);
	counts_free(t);
}

/* Many keys coming and going: removal must keep every remaining key
 * findable (backward-shift deletion), and the table must never fill up with
 * leftovers. */
static void test_churn_keeps_every_live_key_findable(void **state)
{
	enum { N = 64 };
	struct counts *t = counts_new(N);
	uint64_t k[N];
	uint32_t want[N] = { 0 };
	uint32_t rnd = 12345;

	for (int i = 0; i < N; i++)
		k[i] = counts_key(t, COUNT_AUTH_IP, &i, sizeof(i));
	for (int step = 0; step < 100000; step++) {
		int i;

		rnd = rnd * 1103515245u + 12345u;
		i = (int)((rnd >> 8) % N);
		if ((rnd >> 20) & 1) {
			assert_int_equal(counts_take(t, k[i], 0), 1);
			want[i]++;
		} else if (want[i] > 0) {
			counts_give(t, k[i]);
			want[i]--;
		}
		if (step % 997 == 0) {
			for (int j = 0; j < N; j++)
				assert_int_equal(counts_get(t, k[j]), want[j]);
		}
	}
	counts_free(t);
}

static void test_give_of_an_unknown_key_is_harmless(void **state)
{
	struct counts *t = counts_new(4);

	counts_give(t, 42);
	assert_int_equal(counts_get(t, 42), 0);
	counts_free(t);
	counts_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_stops_at_the_limit_and_give_makes_room),
		cmocka_unit_test(test_limit_zero_means_no_cap),
		cmocka_unit_test(test_address_key_ignores_the_port_but_not_the_ip),
		cmocka_unit_test(test_kinds_do_not_share_a_count),
		cmocka_unit_test(test_a_full_table_refuses_new_keys_but_serves_known_ones),
		cmocka_unit_test(test_churn_keeps_every_live_key_findable),
		cmocka_unit_test(test_give_of_an_unknown_key_is_harmless),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
