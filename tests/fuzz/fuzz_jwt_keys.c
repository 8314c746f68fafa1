/*
 * Feeds arbitrary files to jwt_keyset_parse(): PEM, JWKS and HMAC secrets
 * are all told apart by content, so one target covers the three loaders.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth/jwt_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct jwt_keyset *ks = jwt_keyset_parse(data, size, err, sizeof(err));

	if (ks != NULL) {
		if (jwt_keyset_count(ks) == 0)
			abort();
		jwt_keyset_free(ks);
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	return 0;
}
