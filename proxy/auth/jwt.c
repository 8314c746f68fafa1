/*
 * JWT verification; see jwt.h.
 */
#include "proxy/auth/jwt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bytestring.h>

#include "proxy/acl.h"
#include "proxy/auth/b64.h"
#include "proxy/auth/jwt_sig.h"
#include "proxy/log.h"

/* Times beyond this are not dates; rejecting them keeps sums from
 * overflowing. */
#define MAX_ABS_TIME ((int64_t)1 << 52)
/* MQTT user names are UTF-8 strings with a 16-bit length. */
#define MAX_USERNAME 65535
/* How many characters of an untrusted value a `why` may quote. */
#define QUOTE_MAX 48

/* The three parts of a compact JWS, as slices of the token. */
struct jws_parts {
	CBS header, payload, signature;
	size_t signing_input_len;   /* header "." payload */
};

static void set_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Escapes a JSON string value for quoting in a `why`. */
static const char *quote(json_t *v, char *buf, size_t cap)
{
	log_escape(buf, cap, json_string_value(v), json_string_length(v));
	return buf;
}

static int split(const char *token, size_t len, struct jws_parts *out)
{
	CBS all;

	CBS_init(&all, (const uint8_t *)token, len);
	if (!CBS_get_until_first(&all, &out->header, '.') || !CBS_skip(&all, 1) ||
	    !CBS_get_until_first(&all, &out->payload, '.') || !CBS_skip(&all, 1))
		return 0;
	out->signature = all;
	out->signing_input_len = CBS_len(&out->header) + 1 + CBS_len(&out->payload);
	/* A fourth part (JWE has five) shows up as a '.' in the signature. */
	return CBS_len(&out->header) > 0 && CBS_len(&out->payload) > 0 &&
	       CBS_len(&out->signature) > 0 &&
	       memchr(CBS_data(&out->signature), '.', CBS_len(&out->signature)) == NULL;
}

/* Decodes one part into the front of `*buf` and advances it. */
static int decode_part(const CBS *part, uint8_t **buf, size_t *left, CBS *out)
{
	size_t n;

	if (!b64_decode((const char *)CBS_data(part), CBS_len(part), B64_URL, *buf, *left, &n))
		return 0;
	CBS_init(out, *buf, n);
	*buf += n;
	*left -= n;
	return 1;
}

static json_t *parse_object(const CBS *json)
{
	json_t *v = json_loadb((const char *)CBS_data(json), CBS_len(json),
			       JSON_REJECT_DUPLICATES, NULL);

	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static int string_is(json_t *v, const char *s)
{
	size_t n = strlen(s);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), s, n) == 0;
}

/* Reads a NumericDate claim (RFC 7519 2: a JSON number of seconds, which
 * may have a fraction). Returns 1 if absent or valid, 0 if malformed. */
static int get_time(json_t *claims, const char *name, int *present, int64_t *out)
{
	json_t *v = json_object_get(claims, name);
	double d;

	*present = v != NULL;
	if (v == NULL)
		return 1;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i > MAX_ABS_TIME || i < -MAX_ABS_TIME)
			return 0;
		*out = (int64_t)i;
		return 1;
	}
	if (!json_is_real(v))
		return 0;
	d = json_real_value(v);
	if (!isfinite(d) || d > (double)MAX_ABS_TIME || d < -(double)MAX_ABS_TIME)
		return 0;
	*out = (int64_t)floor(d);
	return 1;
}

/* Whether any key of the sets has the kid `kid` (a JSON string). */
static int kid_known(const struct jwt_keyset *const *sets, size_t nsets, json_t *kid)
{
	for (size_t s = 0; s < nsets; s++) {
		for (size_t i = 0; sets[s] != NULL && i < jwt_keyset_count(sets[s]); i++) {
			const struct jwt_key *k = jwt_keyset_get0(sets[s], i);

			if (k->kid != NULL && string_is(kid, k->kid))
				return 1;
		}
	}
	return 0;
}

/* Tries each key of each set that fits `alg` and, when the token names a
 * `kid`, has that kid or none. A kid that no key has is reported as such
 * even when keys without a kid were tried: with keys fetched from an
 * identity provider, it means the key may be newer than our copy. */
static enum jwt_result check_signature(const struct jwt_keyset *const *sets, size_t nsets,
				       json_t *header, const char *token,
				       const struct jws_parts *parts, const CBS *sig,
				       int *kid_absent, char *why, size_t whylen)
{
	json_t *alg_v = json_object_get(header, "alg"), *kid = json_object_get(header, "kid");
	const struct jwt_alg *alg;
	int any_fit = 0, tried = 0;
	char q[QUOTE_MAX];

	if (!json_is_string(alg_v)) {
		set_why(why, whylen, "header has no \"alg\"");
		return JWT_MALFORMED;
	}
	alg = jwt_alg_find(json_string_value(alg_v), json_string_length(alg_v));
	if (alg == NULL) {
		set_why(why, whylen, "alg \"%s\" is not accepted", quote(alg_v, q, sizeof(q)));
		return JWT_BAD_ALG;
	}
	if (kid != NULL && !json_is_string(kid)) {
		set_why(why, whylen, "\"kid\" is not a string");
		return JWT_MALFORMED;
	}
	for (size_t s = 0; s < nsets; s++) {
		for (size_t i = 0; sets[s] != NULL && i < jwt_keyset_count(sets[s]); i++) {
			const struct jwt_key *k = jwt_keyset_get0(sets[s], i);

			if (!jwt_key_fits(k, alg))
				continue;
			any_fit = 1;
			if (kid != NULL && k->kid != NULL && !string_is(kid, k->kid))
				continue;
			tried = 1;
			if (jwt_sig_verify(k, alg, (const uint8_t *)token, parts->signing_input_len,
					   CBS_data(sig), CBS_len(sig)))
				return JWT_OK;
		}
	}
	if (kid != NULL && !kid_known(sets, nsets, kid)) {
		*kid_absent = 1;
		set_why(why, whylen, "no key with kid \"%s\"", quote(kid, q, sizeof(q)));
		return JWT_UNKNOWN_KID;
	}
	if (!any_fit) {
		set_why(why, whylen, "no configured key can verify alg %s", jwt_alg_name(alg));
		return JWT_BAD_ALG;
	}
	if (!tried) {
		set_why(why, whylen, "no %s key with kid \"%s\"", jwt_alg_name(alg),
			quote(kid, q, sizeof(q)));
		return JWT_UNKNOWN_KID;
	}
	set_why(why, whylen, "%s signature does not verify", jwt_alg_name(alg));
	return JWT_BAD_SIGNATURE;
}

static enum jwt_result check_times(json_t *claims, int64_t now, const struct jwt_options *o,
				   struct jwt_claims *out, char *why, size_t whylen)
{
	int64_t exp = 0, nbf = 0, iat = 0, leeway = o->leeway_s;
	int has_exp, has_nbf, has_iat;

	if (!get_time(claims, "exp", &has_exp, &exp) || !get_time(claims, "nbf", &has_nbf, &nbf) ||
	    !get_time(claims, "iat", &has_iat, &iat)) {
		set_why(why, whylen, "exp, nbf or iat is not a number of seconds");
		return JWT_MALFORMED;
	}
	if (now > MAX_ABS_TIME || now < -MAX_ABS_TIME)
		now = now > 0 ? MAX_ABS_TIME : -MAX_ABS_TIME;
	/* RFC 7519 4.1.4: the token must not be accepted on or after exp. */
	if (has_exp && now >= exp + leeway) {
		set_why(why, whylen, "expired: exp %lld is %lld s ago", (long long)exp,
			(long long)(now - exp));
		return JWT_EXPIRED;
	}
	if (!has_exp && !o->allow_missing_exp) {
		set_why(why, whylen, "token has no exp");
		return JWT_MISSING_EXP;
	}
	if (has_nbf && now + leeway < nbf) {
		set_why(why, whylen, "not valid before nbf %lld, %lld s from now", (long long)nbf,
			(long long)(nbf - now));
		return JWT_NOT_YET_VALID;
	}
	if (has_iat && now + leeway < iat) {
		set_why(why, whylen, "issued in the future: iat %lld, %lld s from now",
			(long long)iat, (long long)(iat - now));
		return JWT_NOT_YET_VALID;
	}
	out->has_exp = has_exp;
	out->exp = exp;
	return JWT_OK;
}

static int audience_matches(json_t *aud, const char *want)
{
	size_t i;

	if (json_is_string(aud))
		return string_is(aud, want);
	if (!json_is_array(aud))
		return 0;
	for (i = 0; i < json_array_size(aud); i++)
		if (string_is(json_array_get(aud, i), want))
			return 1;
	return 0;
}

/* Topic Filters one `acl` claim may carry in all: a token is not a
 * configuration file. */
#define ACL_CLAIM_MAX 256

/* Collects the strings of the array |arr| (may be NULL) into |out| from
 * *n on. Returns 0 if it is not an array of strings or too long. */
static int acl_list(json_t *arr, struct slice *out, size_t *n)
{
	size_t i;
	json_t *v;

	if (arr == NULL)
		return 1;
	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || *n >= ACL_CLAIM_MAX)
			return 0;
		out[(*n)++] = (struct slice){ (const uint8_t *)json_string_value(v), json_string_length(v) };
	}
	return 1;
}

/* The EMQX-style `acl` claim: {"pub": [filters], "sub": [filters], "all":
 * [filters]} (all: both). Absent is fine; present and wrong refuses the
 * token, since a grant read wrongly could allow too much. */
static enum jwt_result check_acl_claim(json_t *claims, struct jwt_claims *out, char *why,
				       size_t whylen)
{
	json_t *acl = json_object_get(claims, "acl");
	struct slice *pub = NULL, *sub = NULL;
	size_t npub = 0, nsub = 0;
	char e[200];
	enum jwt_result r = JWT_MALFORMED;

	if (acl == NULL)
		return JWT_OK;
	pub = calloc(ACL_CLAIM_MAX, sizeof(*pub));
	sub = calloc(ACL_CLAIM_MAX, sizeof(*sub));
	if (pub == NULL || sub == NULL) {
		set_why(why, whylen, "out of memory");
		goto done;
	}
	if (!json_is_object(acl) || !acl_list(json_object_get(acl, "pub"), pub, &npub) ||
	    !acl_list(json_object_get(acl, "sub"), sub, &nsub) ||
	    !acl_list(json_object_get(acl, "all"), pub, &npub) ||
	    !acl_list(json_object_get(acl, "all"), sub, &nsub)) {
		set_why(why, whylen, "claim \"acl\" is not {\"pub\": [..], \"sub\": [..]} of at most %d strings",
			ACL_CLAIM_MAX);
		goto done;
	}
	out->acl = acl_from_lists(pub, npub, sub, nsub, e, sizeof(e));
	if (out->acl == NULL) {
		set_why(why, whylen, "claim \"acl\": %s", e);
		goto done;
	}
	r = JWT_OK;
done:
	free(pub);
	free(sub);
	return r;
}

static enum jwt_result check_claims(json_t *claims, const struct jwt_options *o,
				    struct jwt_claims *out, char *why, size_t whylen)
{
	const char *claim = o->username_claim != NULL ? o->username_claim : "sub";
	json_t *iss = json_object_get(claims, "iss"), *user = json_object_get(claims, claim);
	char q[QUOTE_MAX];
	size_t n;

	if (o->issuer != NULL && !string_is(iss, o->issuer)) {
		if (json_is_string(iss))
			set_why(why, whylen, "untrusted issuer \"%s\"", quote(iss, q, sizeof(q)));
		else
			set_why(why, whylen, "no issuer");
		return JWT_BAD_ISSUER;
	}
	if (o->audience != NULL && !audience_matches(json_object_get(claims, "aud"), o->audience)) {
		set_why(why, whylen, "audience does not include the configured one");
		return JWT_BAD_AUDIENCE;
	}
	n = json_string_length(user);
	if (!json_is_string(user) || n == 0 || n > MAX_USERNAME) {
		set_why(why, whylen, "claim \"%s\" is missing, empty or not a string", claim);
		return JWT_NO_USERNAME_CLAIM;
	}
	out->username = malloc(n + 1);
	if (out->username == NULL) {
		set_why(why, whylen, "out of memory");
		return JWT_MALFORMED;
	}
	memcpy(out->username, json_string_value(user), n + 1);
	out->username_len = n;
	return check_acl_claim(claims, out, why, whylen);
}

enum jwt_result jwt_verify(const struct jwt_keyset *keys, const char *token, size_t len,
			   int64_t now, const struct jwt_options *opts,
			   struct jwt_claims *claims, char *why, size_t whylen)
{
	return jwt_verify_sets(&keys, 1, token, len, now, opts, claims, NULL, why, whylen);
}

enum jwt_result jwt_verify_sets(const struct jwt_keyset *const *sets, size_t nsets,
				const char *token, size_t len, int64_t now,
				const struct jwt_options *opts, struct jwt_claims *claims,
				int *kid_absent, char *why, size_t whylen)
{
	static const struct jwt_options defaults;
	/* The decoded parts together are shorter than the token. */
	uint8_t buf[JWT_MAX_LEN], *p = buf;
	size_t left = sizeof(buf);
	struct jws_parts parts;
	CBS header, payload, sig;
	json_t *hdr = NULL, *body = NULL;
	enum jwt_result r = JWT_MALFORMED;
	int unused = 0;

	if (kid_absent)
		*kid_absent = 0;
	memset(claims, 0, sizeof(*claims));
	set_why(why, whylen, "ok");
	if (opts == NULL)
		opts = &defaults;
	if (len > JWT_MAX_LEN) {
		set_why(why, whylen, "token longer than %d bytes", JWT_MAX_LEN);
		return JWT_TOO_LONG;
	}
	if (token == NULL || !split(token, len, &parts)) {
		set_why(why, whylen, "not three non-empty dot-separated parts");
		return JWT_MALFORMED;
	}
	if (!decode_part(&parts.header, &p, &left, &header) ||
	    !decode_part(&parts.payload, &p, &left, &payload) ||
	    !decode_part(&parts.signature, &p, &left, &sig)) {
		set_why(why, whylen, "a part is not canonical unpadded base64url");
		return JWT_MALFORMED;
	}
	hdr = parse_object(&header);
	if (hdr == NULL) {
		set_why(why, whylen, "header is not a JSON object (or repeats a member)");
		goto err;
	}
	/* RFC 7515 4.1.11: extensions we do not understand must be refused,
	 * and we understand none. */
	if (json_object_get(hdr, "crit") != NULL) {
		set_why(why, whylen, "header has \"crit\"");
		goto err;
	}
	r = check_signature(sets, nsets, hdr, token, &parts, &sig, kid_absent ? kid_absent : &unused,
			    why, whylen);
	if (r != JWT_OK)
		goto err;
	body = parse_object(&payload);
	if (body == NULL) {
		set_why(why, whylen, "payload is not a JSON object (or repeats a member)");
		r = JWT_MALFORMED;
		goto err;
	}
	r = check_times(body, now, opts, claims, why, whylen);
	if (r == JWT_OK)
		r = check_claims(body, opts, claims, why, whylen);
err:
	json_decref(hdr);
	json_decref(body);
	if (r != JWT_OK)
		jwt_claims_cleanup(claims);
	return r;
}

void jwt_claims_cleanup(struct jwt_claims *claims)
{
	free(claims->username);
	acl_free(claims->acl);
	memset(claims, 0, sizeof(*claims));
}

const char *jwt_result_name(enum jwt_result r)
{
	switch (r) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed token";
	case JWT_TOO_LONG: return "token too long";
	case JWT_BAD_ALG: return "algorithm not accepted";
	case JWT_UNKNOWN_KID: return "unknown key id";
	case JWT_BAD_SIGNATURE: return "bad signature";
	case JWT_EXPIRED: return "token expired";
	case JWT_NOT_YET_VALID: return "token not yet valid";
	case JWT_MISSING_EXP: return "token has no expiry";
	case JWT_BAD_ISSUER: return "untrusted issuer";
	case JWT_BAD_AUDIENCE: return "wrong audience";
	case JWT_NO_USERNAME_CLAIM: return "no user name claim";
	}
	return "unknown";
}
