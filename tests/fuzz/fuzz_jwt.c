/*
 * Feeds arbitrary tokens to jwt_verify() against a fixed key set: an EC
 * P-256 key, an Ed25519 key and an HMAC secret, each with a kid, plus
 * issuer and audience checks, so that every stage after the signature is
 * reachable from the seed corpus (tests/fuzz/corpus/jwt/, tokens signed
 * with these keys and valid at the fixed time below).
 *
 * Random changes to a token almost always break its signature, which
 * would leave the claims parser unexplored; so the input, less its last
 * part when it has three, is also tried with a correct HS256 signature
 * appended here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/digest.h>
#include <openssl/hmac.h>

#include "proxy/auth/b64.h"
#include "proxy/auth/jwt.h"
#include "proxy/auth/jwt_keys.h"

#define FUZZ_NOW 1700000000

static const char jwks[] =
	"{\"keys\":["
	"{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
	"\"x\":\"8XSInK4ieB7CPRPxtfqZKFOiD4P5PjpqUyk0YDuXcpk\","
	"\"y\":\"W5Zav6vT6va3ERZZGBaW9c3tJ5bbn4YQAUmsrFoy4NA\"},"
	"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
	"\"x\":\"CY-fOQi0B9ssv7Yd8CisxS1fjadKnX4Dq5wvhlb2qfA\"},"
	/* "abcdefghijklmnopqrstuvwxyzabcdef" */
	"{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY\"}"
	"]}";

static const char secret[] = "abcdefghijklmnopqrstuvwxyzabcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct jwt_keyset *keys, const char *token, size_t size)
{
	struct jwt_options opts = { .issuer = "fuzz-issuer", .audience = "mqtt", .leeway_s = 60 };
	struct jwt_claims claims;
	char why[256];
	enum jwt_result r;

	r = jwt_verify(keys, token, size, FUZZ_NOW, &opts, &claims, why, sizeof(why));
	if (strlen(why) >= sizeof(why))
		abort();
	if (r == JWT_OK) {
		if (claims.username == NULL || strlen(claims.username) != claims.username_len)
			abort();
	} else if (claims.username != NULL) {
		abort();
	}
	jwt_claims_cleanup(&claims);
	/* Without issuer and audience the same token exercises other paths. */
	(void)jwt_verify(keys, token, size, FUZZ_NOW, NULL, &claims, NULL, 0);
	jwt_claims_cleanup(&claims);
}

/* Replaces the signature with a valid HS256 one, as a signer would. */
static void check_signed(const struct jwt_keyset *keys, const uint8_t *data, size_t size)
{
	static char token[JWT_MAX_LEN + 128];
	const uint8_t *last = memrchr(data, '.', size);
	uint8_t tag[EVP_MAX_MD_SIZE];
	unsigned taglen;

	if (last != NULL && memchr(data, '.', (size_t)(last - data)) != NULL)
		size = (size_t)(last - data);
	if (size > JWT_MAX_LEN)
		return;
	memcpy(token, data, size);
	token[size] = '.';
	if (!HMAC(EVP_sha256(), secret, strlen(secret), data, size, tag, &taglen) ||
	    !b64_encode(tag, taglen, B64_URL, token + size + 1, sizeof(token) - size - 1))
		abort();
	check(keys, token, strlen(token + size + 1) + size + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jwt_keyset *keys;
	char err[256];

	if (keys == NULL) {
		keys = jwt_keyset_parse((const uint8_t *)jwks, strlen(jwks), err, sizeof(err));
		if (keys == NULL)
			abort();
	}
	check(keys, (const char *)data, size);
	check_signed(keys, data, size);
	return 0;
}
