/*
 * Where an identity provider's keys come from, and one fetch of them: the
 * options (--jwt-jwks-url, or --jwt-discovery with --jwt-issuer;
 * --jwt-jwks-ca; --jwt-jwks-refresh), OpenID discovery, and the JWK Set
 * over HTTPS made into a key set. Blocking: for the fetcher's thread
 * (jwks_fetch.h), which owns the schedule.
 */
#ifndef PROXY_AUTH_JWKS_SOURCE_H
#define PROXY_AUTH_JWKS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/https_url.h"
#include "proxy/auth/jwt_keys.h"
#include "proxy/config.h"

/* Bounds of one fetch (discovery and JWKS each). */
#define JWKS_MAX_DOCUMENT (1u << 20)
#define JWKS_CONNECT_TIMEOUT_MS 5000
#define JWKS_TOTAL_TIMEOUT_MS 10000
#define JWKS_MAX_REDIRECTS 3
/* --jwt-jwks-refresh, in seconds. */
#define JWKS_REFRESH_DEFAULT "300..3600"
#define JWKS_REFRESH_LIMIT (7 * 86400)

enum jwks_result {
	JWKS_OK,
	JWKS_UNREACHABLE,
	JWKS_TLS,
	JWKS_TIMEOUT,
	JWKS_HTTP_STATUS,
	JWKS_TOO_LARGE,
	JWKS_MALFORMED,         /* the HTTP response or the JSON */
	JWKS_REDIRECTS,
	JWKS_DISCOVERY,         /* the discovery document is unusable */
	JWKS_NO_KEYS,           /* a JWK Set without one usable key */
	JWKS_CANCELLED,         /* stopped; not counted */
	JWKS_RESULT_COUNT,
};

/* A short fixed name for |r| ("ok", "tls", ...), for logs and metrics. */
const char *jwks_result_name(enum jwks_result r);

struct jwks_source {
	struct https_url jwks_url;
	int have_jwks_url;              /* given, or found by discovery */
	int rediscover;                 /* the last JWK Set fetch failed: ask discovery again */
	struct https_url discovery_url;
	char *issuer;                   /* owned; discovery only */
	char *ca_file;                  /* owned, or NULL: the system's trusted certificates */
	int cancel_fd;                  /* borrowed: readable once the request must be abandoned */
};

/* Sets up |src| for the JWK Set at |url|, or (|url| NULL) for discovery
 * from |issuer|; checks that |ca_file| (NULL: the system's) loads. Returns
 * 1, or 0 with the reason in |err| (then jwks_source_cleanup still applies). */
int jwks_source_init(struct jwks_source *src, const char *url, const char *issuer,
                     const char *ca_file, int cancel_fd, char *err, size_t errlen);
void jwks_source_cleanup(struct jwks_source *src);

/* One fetch: discovery when it is needed, then the JWK Set. On JWKS_OK,
 * *out is a new key set (the caller owns it) and *fresh_s the response's
 * freshness (-1: it said nothing). Otherwise |why| says what went wrong. */
enum jwks_result jwks_source_fetch(struct jwks_source *src, struct jwt_keyset **out,
                                   int64_t *fresh_s, char *why, size_t whylen);

/* The JWK Set's URL as text into |out| ("" until discovery found it). */
void jwks_source_url(const struct jwks_source *src, char *out, size_t cap);

/*
 * Checks the JWKS options of |cfg| (for config_read): --jwt-jwks-refresh
 * syntax, an https --jwt-jwks-url, --jwt-discovery with an https
 * --jwt-issuer and without --jwt-jwks-url, --jwt-jwks-ca with one of them.
 * Returns 1, or 0 with the reason in |err|.
 */
int jwks_config_check(const struct config *cfg, char *err, size_t errlen);

/* 1 if |cfg| asks for keys from an identity provider. */
int jwks_configured(const struct config *cfg);

/* Parses "MIN..MAX" (seconds, 1 <= MIN <= MAX <= JWKS_REFRESH_LIMIT). */
int jwks_refresh_parse(const char *s, uint32_t *min_s, uint32_t *max_s, char *err, size_t errlen);

/*
 * Reads an OpenID Provider Configuration document (OpenID Connect
 * Discovery 1.0, section 3): a JSON object whose "issuer" is |issuer|
 * exactly (section 4.3) and whose "jwks_uri" is an https URL, which goes
 * to *out. Returns 1, or 0 with the reason in |err|.
 */
int jwks_discovery_parse(const uint8_t *doc, size_t len, const char *issuer, struct https_url *out,
                         char *err, size_t errlen);

#endif
