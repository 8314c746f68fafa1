/* proxy/proxyproto.c: PROXY protocol v1/v2 headers (HAProxy proxy-protocol.txt). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "proxy/proxyproto.h"

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

static void assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
	char buf[32];

	assert_int_equal(a->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(a->sin_port), port);
}

/* Every prefix of a valid header asks for more, never fails or succeeds. */
static void assert_prefixes_need_more(const uint8_t *p, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct proxy_addr a;
		size_t len;

		assert_int_equal(proxy_header_parse(p, i, &len, &a), PROXY_NEED_MORE);
		assert_true(len > i);
	}
}

/* 2.1: "PROXY TCP4 SRC DST SPORT DPORT\r\n", followed by the client's bytes. */
static void test_v1_tcp4_gives_the_client_address_and_the_header_length(void **state)
{
	static const char h[] = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 8883\r\n\x16\x03\x01";
	struct proxy_addr a;
	size_t len;

	assert_int_equal(proxy_header_parse((const uint8_t *)h, sizeof(h) - 1, &len, &a), PROXY_OK);
	assert_int_equal(len, sizeof(h) - 1 - 3);
	assert_int_equal(a.local, 0);
	assert_v4(&a.src, "192.0.2.7", 56324);
	assert_v4(&a.dst, "198.51.100.1", 8883);
	assert_prefixes_need_more((const uint8_t *)h, len);
}

static void test_v1_tcp6_is_parsed(void **state)
{
	static const char h[] = "PROXY TCP6 2001:db8::7 2001:db8::1 4000 8883\r\n";
	const struct sockaddr_in6 *s;
	struct proxy_addr a;
	size_t len;

	assert_int_equal(proxy_header_parse((const uint8_t *)h, sizeof(h) - 1, &len, &a), PROXY_OK);
	s = (const struct sockaddr_in6 *)&a.src;
	assert_int_equal(s->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s->sin6_port), 4000);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
}

/* 2.1: UNKNOWN means "use the connection's own addresses", rest ignored. */
static void test_v1_unknown_keeps_the_socket_addresses(void **state)
{
	static const char h[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	struct proxy_addr a;
	size_t len;

	assert_int_equal(proxy_header_parse((const uint8_t *)h, sizeof(h) - 1, &len, &a), PROXY_OK);
	assert_int_equal(a.local, 1);
	assert_int_equal(len, sizeof(h) - 1);
}

static void test_v1_malformed_lines_are_invalid(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",            /* a field missing */
		"PROXY TCP4 192.0.2.7 198.51.100.1 56324 8883 x\r\n",     /* one too many */
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 8883\r\n",       /* port out of range */
		"PROXY TCP4 192.0.2.7 198.51.100.1 0123 8883\r\n",        /* leading zero */
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",            /* family mismatch */
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",             /* two spaces */
		"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",                /* LF without CR */
		"GET / HTTP/1.1\r\n",
		"\x16\x03\x01\x00\x05hello",                                /* a TLS ClientHello */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proxy_addr a;
		size_t len;

		assert_int_equal(proxy_header_parse((const uint8_t *)bad[i], strlen(bad[i]), &len, &a), PROXY_INVALID);
	}
}

/* 2.1: a line longer than 107 bytes is not a header. */
static void test_v1_line_without_end_within_107_bytes_is_invalid(void **state)
{
	char h[200];
	struct proxy_addr a;
	size_t len;

	memset(h, 'a', sizeof(h));
	memcpy(h, "PROXY TCP4 ", 11);
	assert_int_equal(proxy_header_parse((const uint8_t *)h, 105, &len, &a), PROXY_NEED_MORE);
	assert_int_equal(proxy_header_parse((const uint8_t *)h, 106, &len, &a), PROXY_INVALID);
	assert_int_equal(proxy_header_parse((const uint8_t *)h, sizeof(h), &len, &a), PROXY_INVALID);
}

static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, uint16_t n)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
	if (n > 0)
		memcpy(out + 16, body, n);
	return 16u + n;
}

/* 2.2: TCP over IPv4, addresses then ports, then TLVs that are skipped. */
static void test_v2_proxy_inet_with_tlvs_gives_the_client_address(void **state)
{
	static const uint8_t body[] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x22, 0xb3,
	                                0x04, 0x00, 0x02, 'a', 'b' };      /* PP2_TYPE_NOOP */
	uint8_t h[64];
	size_t n = v2(h, 0x21, 0x11, body, sizeof(body)), len;
	struct proxy_addr a;

	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_OK);
	assert_int_equal(len, n);
	assert_v4(&a.src, "192.0.2.7", 56324);
	assert_v4(&a.dst, "198.51.100.1", 8883);
	assert_prefixes_need_more(h, n);
}

/* 2.2: LOCAL is the balancer's own connection (a health check). */
static void test_v2_local_keeps_the_socket_addresses(void **state)
{
	uint8_t h[32];
	size_t n = v2(h, 0x20, 0x00, NULL, 0), len;
	struct proxy_addr a;

	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_OK);
	assert_int_equal(a.local, 1);
	assert_int_equal(len, 16);
}

static void test_v2_bad_version_command_or_short_addresses_are_invalid(void **state)
{
	static const uint8_t body[12] = { 0 };
	uint8_t h[64];
	struct proxy_addr a;
	size_t len, n;

	n = v2(h, 0x11, 0x11, body, sizeof(body));        /* version 1 in a v2 header */
	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_INVALID);
	n = v2(h, 0x22, 0x11, body, sizeof(body));        /* command 2 */
	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_INVALID);
	n = v2(h, 0x21, 0x11, body, 8);                   /* IPv4 block cut short */
	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_INVALID);
	n = v2(h, 0x21, 0x11, body, sizeof(body));
	h[16 + 12 - 1] ^= 0;                             /* well formed: still OK */
	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_OK);
}

static void test_v2_longer_than_the_limit_is_invalid_before_it_arrives(void **state)
{
	uint8_t h[16];
	struct proxy_addr a;
	size_t len;

	memcpy(h, sig, 12);
	h[12] = 0x21;
	h[13] = 0x11;
	h[14] = 0x10;     /* 4096 bytes of addresses and TLVs */
	h[15] = 0x00;
	assert_int_equal(proxy_header_parse(h, sizeof(h), &len, &a), PROXY_INVALID);
}

static void test_v2_built_header_parses_back_with_its_tls_tlv(void **state)
{
	struct sockaddr_in s = { 0 }, d = { 0 };
	struct proxy_tls tls = { 1, 1, "TLSv1.3", "device-7" };
	struct proxy_addr a;
	uint8_t h[256];
	size_t n, len;

	s.sin_family = d.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &s.sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &d.sin_addr);
	s.sin_port = htons(4242);
	d.sin_port = htons(8883);
	n = proxy_header_v2_build((struct sockaddr *)&s, (struct sockaddr *)&d, &tls, h, sizeof(h));
	assert_true(n > 16 + 12);
	assert_memory_equal(h, sig, 12);
	assert_int_equal(h[12], 0x21);
	assert_int_equal(h[13], 0x11);
	/* The first TLV is PP2_TYPE_SSL with client = SSL | CERT_CONN, verify 0. */
	assert_int_equal(h[28], 0x20);
	assert_int_equal(h[31], 0x03);
	assert_memory_equal(h + 32, "\0\0\0\0", 4);
	assert_non_null(memmem(h, n, "device-7", 8));
	assert_non_null(memmem(h, n, "TLSv1.3", 7));
	assert_int_equal(proxy_header_parse(h, n, &len, &a), PROXY_OK);
	assert_int_equal(len, n);
	assert_v4(&a.src, "192.0.2.7", 4242);
	assert_int_equal(proxy_header_v2_build((struct sockaddr *)&s, (struct sockaddr *)&d, &tls, h, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4_gives_the_client_address_and_the_header_length),
		cmocka_unit_test(test_v1_tcp6_is_parsed),
		cmocka_unit_test(test_v1_unknown_keeps_the_socket_addresses),
		cmocka_unit_test(test_v1_malformed_lines_are_invalid),
		cmocka_unit_test(test_v1_line_without_end_within_107_bytes_is_invalid),
		cmocka_unit_test(test_v2_proxy_inet_with_tlvs_gives_the_client_address),
		cmocka_unit_test(test_v2_local_keeps_the_socket_addresses),
		cmocka_unit_test(test_v2_bad_version_command_or_short_addresses_are_invalid),
		cmocka_unit_test(test_v2_longer_than_the_limit_is_invalid_before_it_arrives),
		cmocka_unit_test(test_v2_built_header_parses_back_with_its_tls_tlv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
