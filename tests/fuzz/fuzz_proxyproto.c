/*
 * libFuzzer target for PROXY protocol headers (proxy/proxyproto.c): the
 * parser on every prefix of the input must agree with itself (a prefix
 * never succeeds with a longer header than it holds, NEED_MORE always asks
 * for more than it has), and a parsed address must build back into a
 * version 2 header that parses to the same client.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_addr a, b;
	struct proxy_tls tls = { 1, 1, "TLSv1.3", "fuzz" };
	uint8_t out[PROXY_HEADER_MAX];
	size_t len = 0, n, len2;
	enum proxy_parse r;

	if (size == 0)
		return 0;
	r = proxy_header_parse(data, size, &len, &a);
	if (r == PROXY_OK && (len == 0 || len > size || len > PROXY_HEADER_MAX))
		abort();
	if (r == PROXY_NEED_MORE && len <= size)
		abort();
	if (r != PROXY_OK || a.local)
		return 0;
	n = proxy_header_v2_build((struct sockaddr *)&a.src, (struct sockaddr *)&a.dst, &tls, out, sizeof(out));
	if (n == 0)
		abort();
	if (proxy_header_parse(out, n, &len2, &b) != PROXY_OK || len2 != n || b.local || b.len != a.len ||
	    memcmp(&a.src, &b.src, a.len) != 0)
		abort();
	return 0;
}
