/*
 * What the JWKS fetcher reads from the network, end to end: an HTTP/1.1
 * response (http_response_parse), its Location resolved against the
 * request's URL (https_url_resolve), and its body read both as a JWK Set
 * (jwt_keyset_parse_jwks) and as a discovery document
 * (jwks_discovery_parse). The first byte picks the options: bit 0 says the
 * connection closed after the bytes, bit 1 a 64-byte body limit instead of
 * the real one. Also parses the input as a URL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth/http_response.h"
#include "proxy/auth/jwks_source.h"
#include "proxy/auth/jwt_keys.h"

#define ISSUER "https://idp.example/realms/mqtt"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *err, size_t cap)
{
	if (memchr(err, '\0', cap) == NULL)
		abort();
}

static void check_url(const struct https_url *u)
{
	if (u->path[0] != '/' || u->host[0] == '\0' || u->port == 0 ||
	    memchr(u->host, '\0', sizeof(u->host)) == NULL || memchr(u->path, '\0', sizeof(u->path)) == NULL)
		abort();
	for (const char *p = u->path; *p; p++) {
		if (*p <= ' ' || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
			abort();   /* a log line quotes it */
	}
}

static void body(const struct http_response *r)
{
	struct jwt_keyset *ks;
	struct https_url u;
	char err[300];

	ks = jwt_keyset_parse_jwks(r->body, r->body_len, err, sizeof(err));
	if (ks != NULL) {
		if (jwt_keyset_count(ks) == 0)
			abort();
		for (size_t i = 0; i < jwt_keyset_count(ks); i++) {
			if (jwt_keyset_get0(ks, i)->type == JWT_KEY_HMAC)
				abort();   /* a published secret is never used */
		}
		jwt_keyset_free(ks);
	} else {
		check_message(err, sizeof(err));
	}
	if (jwks_discovery_parse(r->body, r->body_len, ISSUER, &u, err, sizeof(err)))
		check_url(&u);
	else
		check_message(err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response r;
	struct https_url base, u;
	size_t max_body;
	char err[300];
	int eof;

	if (size < 1)
		return 0;
	eof = data[0] & 1;
	max_body = (data[0] & 2) ? 64 : JWKS_MAX_DOCUMENT;
	data++;
	size--;
	if (https_url_parse((const char *)data, size, &u, err, sizeof(err)))
		check_url(&u);
	switch (http_response_parse(data, size, eof, max_body, &r, err, sizeof(err))) {
	case HTTP_PARSE_DONE:
		if (r.status < 200 || r.status > 999 || r.body_len > max_body ||
		    (r.status == 200) != (r.body != NULL))
			abort();
		if (r.has_location) {
			if (!https_url_parse(ISSUER, strlen(ISSUER), &base, err, sizeof(err)))
				abort();
			if (https_url_resolve(&base, (const uint8_t *)r.location, strlen(r.location), &u, err,
			                      sizeof(err)))
				check_url(&u);
			else
				check_message(err, sizeof(err));
		}
		if (r.body)
			body(&r);
		http_response_cleanup(&r);
		break;
	case HTTP_PARSE_MORE:
		if (eof)
			abort();   /* at the end of input nothing more can come */
		break;
	default:
		check_message(err, sizeof(err));
		break;
	}
	return 0;
}
