/*
 * An identity provider's keys: the options, discovery and one fetch; see
 * jwks_source.h.
 */
#include "proxy/auth/jwks_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proxy/auth/errmsg.h"
#include "proxy/auth/https_get.h"
#include "proxy/log.h"

#define DISCOVERY_PATH "/.well-known/openid-configuration"

static const char *const result_names[JWKS_RESULT_COUNT] = {
	"ok", "unreachable", "tls", "timeout", "http_status", "too_large", "malformed",
	"redirects", "discovery", "no_keys", "cancelled",
};

const char *jwks_result_name(enum jwks_result r)
{
	return r < JWKS_RESULT_COUNT ? result_names[r] : "unknown";
}

/* ---- the options ----------------------------------------------------------- */

static int parse_seconds(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 7)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = (uint32_t)v;
	return 1;
}

int jwks_refresh_parse(const char *s, uint32_t *min_s, uint32_t *max_s, char *err, size_t errlen)
{
	const char *dots = s ? strstr(s, "..") : NULL;

	if (dots == NULL || !parse_seconds(s, (size_t)(dots - s), min_s) ||
	    !parse_seconds(dots + 2, strlen(dots + 2), max_s) || *min_s < 1 || *min_s > *max_s ||
	    *max_s > JWKS_REFRESH_LIMIT)
		return err_fail(err, errlen, "--jwt-jwks-refresh: expected MIN..MAX in seconds, "
		            "1 <= MIN <= MAX <= %d (e.g. " JWKS_REFRESH_DEFAULT "), got '%s'",
		            JWKS_REFRESH_LIMIT, s ? s : "");
	return 1;
}

int jwks_configured(const struct config *cfg)
{
	return cfg->jwt_jwks_url != NULL || cfg->jwt_discovery;
}

/* <issuer>/.well-known/openid-configuration (OpenID Connect Discovery 4):
 * a trailing '/' of the issuer is removed first. */
static int discovery_url(const char *issuer, struct https_url *out, char *err, size_t errlen)
{
	char buf[HTTPS_MAX_PATH + HTTPS_MAX_HOST + 64];
	size_t n = strlen(issuer);

	if (n > 0 && issuer[n - 1] == '/')
		n--;
	if (n + sizeof(DISCOVERY_PATH) > sizeof(buf))
		return err_fail(err, errlen, "--jwt-issuer too long for discovery");
	memcpy(buf, issuer, n);
	memcpy(buf + n, DISCOVERY_PATH, sizeof(DISCOVERY_PATH));
	if (!https_url_parse(buf, strlen(buf), out, err, errlen))
		return 0;
	if (strchr(issuer, '?') != NULL || strchr(issuer, '#') != NULL)
		return err_fail(err, errlen, "--jwt-issuer has a query or fragment");
	return 1;
}

int jwks_config_check(const struct config *cfg, char *err, size_t errlen)
{
	struct https_url u;
	uint32_t lo, hi;
	char why[200];

	if (!jwks_refresh_parse(cfg->jwt_jwks_refresh ? cfg->jwt_jwks_refresh : JWKS_REFRESH_DEFAULT,
	                        &lo, &hi, err, errlen))
		return 0;
	if (cfg->jwt_jwks_url && cfg->jwt_discovery)
		return err_fail(err, errlen, "--jwt-jwks-url and --jwt-discovery: give one of them");
	if (cfg->jwt_jwks_url &&
	    !https_url_parse(cfg->jwt_jwks_url, strlen(cfg->jwt_jwks_url), &u, why, sizeof(why)))
		return err_fail(err, errlen, "--jwt-jwks-url: %s", why);
	if (cfg->jwt_discovery) {
		if (cfg->jwt_issuer == NULL)
			return err_fail(err, errlen, "--jwt-discovery needs --jwt-issuer (the identity provider's URL)");
		if (!discovery_url(cfg->jwt_issuer, &u, why, sizeof(why)))
			return err_fail(err, errlen, "--jwt-discovery: --jwt-issuer: %s", why);
	}
	if (cfg->jwt_jwks_ca && !jwks_configured(cfg))
		return err_fail(err, errlen, "--jwt-jwks-ca needs --jwt-jwks-url or --jwt-discovery");
	return 1;
}

/* ---- one fetch ------------------------------------------------------------- */

int jwks_source_init(struct jwks_source *src, const char *url, const char *issuer,
                     const char *ca_file, int cancel_fd, char *err, size_t errlen)
{
	char why[300];

	memset(src, 0, sizeof(*src));
	src->cancel_fd = cancel_fd;
	if (url) {
		if (!https_url_parse(url, strlen(url), &src->jwks_url, why, sizeof(why)))
			return err_fail(err, errlen, "--jwt-jwks-url: %s", why);
		src->have_jwks_url = 1;
	} else if (issuer == NULL) {
		return err_fail(err, errlen, "--jwt-discovery needs --jwt-issuer");
	} else if (!discovery_url(issuer, &src->discovery_url, why, sizeof(why))) {
		return err_fail(err, errlen, "--jwt-discovery: %s", why);
	} else if ((src->issuer = strdup(issuer)) == NULL) {
		return err_fail(err, errlen, "out of memory");
	}
	if (ca_file && (src->ca_file = strdup(ca_file)) == NULL)
		return err_fail(err, errlen, "out of memory");
	if (!https_ca_check(src->ca_file, why, sizeof(why)))
		return err_fail(err, errlen, "%s%s", ca_file ? "--jwt-jwks-ca: " : "", why);
	return 1;
}

void jwks_source_cleanup(struct jwks_source *src)
{
	free(src->issuer);
	free(src->ca_file);
	memset(src, 0, sizeof(*src));
}

void jwks_source_url(const struct jwks_source *src, char *out, size_t cap)
{
	if (src->have_jwks_url)
		https_url_format(&src->jwks_url, out, cap);
	else if (cap > 0)
		out[0] = '\0';
}

static enum jwks_result from_https(enum https_result r)
{
	switch (r) {
	case HTTPS_OK: return JWKS_OK;
	case HTTPS_UNREACHABLE: return JWKS_UNREACHABLE;
	case HTTPS_TLS: return JWKS_TLS;
	case HTTPS_TIMEOUT: return JWKS_TIMEOUT;
	case HTTPS_HTTP_STATUS: return JWKS_HTTP_STATUS;
	case HTTPS_TOO_LARGE: return JWKS_TOO_LARGE;
	case HTTPS_REDIRECTS: return JWKS_REDIRECTS;
	case HTTPS_CANCELLED: return JWKS_CANCELLED;
	default: return JWKS_MALFORMED;
	}
}

static void get_opts(const struct jwks_source *src, struct https_get_opts *o)
{
	o->ca_file = src->ca_file;
	o->max_body = JWKS_MAX_DOCUMENT;
	o->connect_timeout_ms = JWKS_CONNECT_TIMEOUT_MS;
	o->total_timeout_ms = JWKS_TOTAL_TIMEOUT_MS;
	o->max_redirects = JWKS_MAX_REDIRECTS;
	o->cancel_fd = src->cancel_fd;
}

int jwks_discovery_parse(const uint8_t *doc, size_t len, const char *issuer, struct https_url *out,
                         char *err, size_t errlen)
{
	json_t *root = json_loadb((const char *)doc, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *iss = json_object_get(root, "issuer"), *uri = json_object_get(root, "jwks_uri");
	char why[200];
	int ok = 0;

	if (!json_is_object(root)) {
		err_fail(err, errlen, "the discovery document is not a JSON object");
	} else if (!json_is_string(iss) || json_string_length(iss) != strlen(issuer) ||
	           memcmp(json_string_value(iss), issuer, strlen(issuer)) != 0) {
		/* OpenID Connect Discovery 4.3: it must be exactly ours, or
		 * someone else's keys would be trusted for our issuer. */
		err_fail(err, errlen, "its \"issuer\" is not --jwt-issuer");
	} else if (!json_is_string(uri)) {
		err_fail(err, errlen, "it has no \"jwks_uri\"");
	} else if (!https_url_parse(json_string_value(uri), json_string_length(uri), out, why,
	                            sizeof(why))) {
		err_fail(err, errlen, "its \"jwks_uri\": %s", why);
	} else {
		ok = 1;
	}
	json_decref(root);
	return ok;
}

static enum jwks_result discover(struct jwks_source *src, char *why, size_t whylen)
{
	struct https_get_opts o;
	struct http_response resp;
	struct https_url found;
	enum https_result r;
	char e[300], url[HTTPS_MAX_URL];

	get_opts(src, &o);
	r = https_get(&src->discovery_url, &o, &resp, NULL, e, sizeof(e));
	if (r != HTTPS_OK) {
		err_fail(why, whylen, "discovery: %s", e);
		return from_https(r);
	}
	if (!jwks_discovery_parse(resp.body, resp.body_len, src->issuer, &found, e, sizeof(e))) {
		http_response_cleanup(&resp);
		err_fail(why, whylen, "discovery: %s", e);
		return JWKS_DISCOVERY;
	}
	http_response_cleanup(&resp);
	src->jwks_url = found;
	src->have_jwks_url = 1;
	https_url_format(&found, url, sizeof(url));
	log_info("jwks status=discovered jwks_uri=\"%s\"", url);
	return JWKS_OK;
}

enum jwks_result jwks_source_fetch(struct jwks_source *src, struct jwt_keyset **out,
                                   int64_t *fresh_s, char *why, size_t whylen)
{
	struct https_get_opts o;
	struct http_response resp;
	enum https_result r;
	enum jwks_result res;
	char e[300];

	if (src->issuer && (!src->have_jwks_url || src->rediscover)) {
		res = discover(src, why, whylen);
		if (res != JWKS_OK)
			return res;
		src->rediscover = 0;
	}
	get_opts(src, &o);
	r = https_get(&src->jwks_url, &o, &resp, NULL, e, sizeof(e));
	if (r != HTTPS_OK) {
		src->rediscover = 1;
		err_fail(why, whylen, "%s", e);
		return from_https(r);
	}
	*out = jwt_keyset_parse_jwks(resp.body, resp.body_len, e, sizeof(e));
	*fresh_s = resp.fresh_s;
	http_response_cleanup(&resp);
	if (*out == NULL) {
		src->rediscover = 1;
		err_fail(why, whylen, "the JWK Set: %s", e);
		return strncmp(e, JWT_KEYS_NONE_USABLE, strlen(JWT_KEYS_NONE_USABLE)) == 0 ? JWKS_NO_KEYS
		                                                                        : JWKS_MALFORMED;
	}
	return JWKS_OK;
}
