#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>

#include "proxy/acl.h"
#include "proxy/auth/policy.h"
#include "proxy/log.h"

/* Above this a check leaves the event loop (a PBKDF2 hash with many
 * iterations, argon2id, ECDSA on P-384). */

const char *auth_method_name(enum auth_method m)
{
	switch (m) {
	case AUTH_CERT:
		return "cert";
	case AUTH_JWT:
		return "jwt";
	case AUTH_PASSWORD:
		return "password";
	case AUTH_ANONYMOUS:
		return "anonymous";
	default:
		return "none";
	}
}

static void log_bad_line(void *arg, const char *path, unsigned line, const char *reason)
{
	int *strict = arg;

	if (*strict)
		log_error("--users %s:%u: %s", path, line, reason);
	else
		log_warn("--users %s:%u: %s; line skipped", path, line, reason);
}

/* Reads a whole small file (a password), without its trailing newline. */
static int read_secret_file(const char *path, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	uint8_t buf[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		snprintf(err, errlen, "--upstream-password-file %s: %s", path, strerror(errno));
		return 0;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (!feof(f) || ferror(f)) {
		fclose(f);
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "--upstream-password-file %s: unreadable or over %zu bytes", path,
		         sizeof(buf) - 1);
		return 0;
	}
	fclose(f);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*out = malloc(n ? n : 1);
	if (*out)
		memcpy(*out, buf, n);
	*outlen = n;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (*out == NULL)
		snprintf(err, errlen, "out of memory");
	return *out != NULL;
}

static int add_method(struct auth_material *m, enum auth_method meth, char *err, size_t errlen)
{
	for (int i = 0; i < m->n_order; i++) {
		if (m->order[i] == meth) {
			snprintf(err, errlen, "--auth: %s listed twice", auth_method_name(meth));
			return 0;
		}
	}
	m->order[m->n_order++] = meth;
	return 1;
}

/* Parses --auth, or derives the order from what is configured. */
static int build_order(struct auth_material *m, const struct config *cfg, char *err, size_t errlen)
{
	const char *p = cfg->auth;

	if (p == NULL) {
		if (cfg->identity_as_username && !add_method(m, AUTH_CERT, err, errlen))
			return 0;
		if ((cfg->jwt_keys || jwks_configured(cfg)) && !add_method(m, AUTH_JWT, err, errlen))
			return 0;
		if (cfg->users && !add_method(m, AUTH_PASSWORD, err, errlen))
			return 0;
		return 1;
	}
	while (*p) {
		size_t n = strcspn(p, ",");
		enum auth_method meth;

		if (n == 4 && strncmp(p, "cert", 4) == 0) {
			meth = AUTH_CERT;
			if (!cfg->identity_as_username) {
				snprintf(err, errlen, "--auth cert needs --identity-as-username");
				return 0;
			}
		} else if (n == 3 && strncmp(p, "jwt", 3) == 0) {
			meth = AUTH_JWT;
			if (!cfg->jwt_keys && !jwks_configured(cfg)) {
				snprintf(err, errlen, "--auth jwt needs --jwt-keys FILE, --jwt-jwks-url URL or "
				         "--jwt-discovery");
				return 0;
			}
		} else if (n == 8 && strncmp(p, "password", 8) == 0) {
			meth = AUTH_PASSWORD;
			if (!cfg->users) {
				snprintf(err, errlen, "--auth password needs --users FILE");
				return 0;
			}
		} else {
			snprintf(err, errlen, "--auth: unknown method '%.*s' (cert, jwt, password)", (int)n, p);
			return 0;
		}
		/* Three methods exist, so a fourth entry is always a repeat. */
		if (!add_method(m, meth, err, errlen))
			return 0;
		p += n;
		if (*p == ',')
			p++;
	}
	return 1;
}

static char *dup_opt(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct auth_material *auth_material_load(const struct config *cfg, char *err, size_t errlen)
{
	struct auth_material *m = calloc(1, sizeof(*m));
	int strict = 1;

	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->refs = 1;
	if (!build_order(m, cfg, err, errlen))
		goto err;
	m->allow_anonymous = cfg->allow_anonymous != 0;
	m->require_clientid_match = cfg->require_clientid_match != 0;
	m->fail_delay_ms = (uint32_t)cfg->auth_fail_delay;
	if (cfg->users) {
		/* A bad line is skipped at startup but refuses a reload, where
		 * the previous file can stay in force instead. */
		strict = cfg->users_strict;
		m->users = passwd_db_load(cfg->users, log_bad_line, &strict, err, errlen);
		if (m->users == NULL)
			goto err;
		if (strict && passwd_db_bad_lines(m->users) > 0) {
			snprintf(err, errlen, "--users %s: %zu malformed line(s)", cfg->users,
			         passwd_db_bad_lines(m->users));
			goto err;
		}
	}
	if (cfg->jwt_keys) {
		char e[300];

		m->jwt = jwt_keyset_load(cfg->jwt_keys, e, sizeof(e));
		if (m->jwt == NULL) {
			snprintf(err, errlen, "--jwt-keys %s: %s", cfg->jwt_keys, e);
			goto err;
		}
	}
	m->jwks = jwks_configured(cfg);
	m->jwt_issuer = dup_opt(cfg->jwt_issuer);
	m->jwt_audience = dup_opt(cfg->jwt_audience);
	m->jwt_claim = dup_opt(cfg->jwt_username_claim);
	m->jwt_opts.issuer = m->jwt_issuer;
	m->jwt_opts.audience = m->jwt_audience;
	m->jwt_opts.username_claim = m->jwt_claim;
	m->jwt_opts.leeway_s = (uint32_t)cfg->jwt_leeway;
	m->jwt_opts.allow_missing_exp = cfg->jwt_require_exp == 0;
	m->jwt_leeway = (uint32_t)cfg->jwt_leeway;
	m->jwt_expiry_disconnect = cfg->jwt_expiry_disconnect != 0;
	m->upstream_username = dup_opt(cfg->upstream_username);
	if (cfg->upstream_password_file &&
	    !read_secret_file(cfg->upstream_password_file, &m->upstream_password,
	                      &m->upstream_password_len, err, errlen))
		goto err;
	m->inject = m->n_order > 0 || m->upstream_username || m->upstream_password;
	m->acl_disconnect = cfg->acl_deny && strcmp(cfg->acl_deny, "disconnect") == 0;
	if (cfg->acl_file) {
		char e[400];

		if ((m->acl = acl_load(cfg->acl_file, e, sizeof(e))) == NULL) {
			snprintf(err, errlen, "--acl-file %s", e);
			goto err;
		}
	}
	return m;
err:
	auth_material_unref(m);
	return NULL;
}

struct auth_material *auth_material_ref(struct auth_material *m)
{
	if (m)
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return m;
}

void auth_material_unref(struct auth_material *m)
{
	if (m == NULL || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	passwd_db_free(m->users);
	jwt_keyset_free(m->jwt);
	free(m->jwt_issuer);
	free(m->jwt_audience);
	free(m->jwt_claim);
	free(m->upstream_username);
	acl_free(m->acl);
	if (m->upstream_password) {
		OPENSSL_cleanse(m->upstream_password, m->upstream_password_len);
		free(m->upstream_password);
	}
	free(m);
}

void auth_request_cleanup(struct auth_request *r)
{
	if (r->password) {
		OPENSSL_cleanse(r->password, r->password_len);
		free(r->password);
	}
	free(r->client_id);
	free(r->username);
	free(r->cert_identity);
	jwks_keys_unref(r->jwks);
	memset(r, 0, sizeof(*r));
}

void auth_result_cleanup(struct auth_result *r)
{
	free(r->identity);
	acl_free(r->acl);
	memset(r, 0, sizeof(*r));
}

/* A JWS compact token: three base64url parts, the header being a JSON
 * object ("eyJ" is the encoding of `{"`). The signature part may be empty
 * so that an unsecured `alg: none` token is judged (and refused) as a
 * token, not mistaken for a password. */
static int looks_like_jwt(const uint8_t *p, size_t len)
{
	int dots = 0;

	if (len < 5 || memcmp(p, "eyJ", 3) != 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (c == '.') {
			if (p[i - 1] == '.' || ++dots > 2)
				return 0;
		} else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		             (c >= '0' && c <= '9') || c == '-' || c == '_')) {
			return 0;
		}
	}
	return dots == 2;
}

static int applies(const struct auth_material *m, enum auth_method meth, const struct auth_request *r)
{
	switch (meth) {
	case AUTH_CERT:
		return r->cert_identity != NULL;
	case AUTH_JWT:
		return (m->jwt || m->jwks) && r->has_password && looks_like_jwt(r->password, r->password_len);
	case AUTH_PASSWORD:
		return m->users && r->has_username && r->has_password;
	default:
		return 0;
	}
}

enum auth_method auth_select(const struct auth_material *m, const struct auth_request *r)
{
	if (m == NULL || m->n_order == 0)
		return AUTH_NONE;
	for (int i = 0; i < m->n_order; i++) {
		if (applies(m, m->order[i], r))
			return m->order[i];
	}
	return AUTH_ANONYMOUS;
}

uint32_t auth_cost_us(const struct auth_material *m, enum auth_method method,
                      const struct auth_request *r)
{
	switch (method) {
	case AUTH_PASSWORD:
		if (r->password_len > AUTH_MAX_PASSWORD)
			return 0;
		return passwd_db_cost_us(m->users, r->username, r->username_len);
	case AUTH_JWT:
		/* Signature checks cost 4 µs (HMAC) to 600 µs (ES384); the
		 * header is not parsed here, so treat every token as slow. */
		return AUTH_CHEAP_US + 1;
	default:
		return 0;
	}
}

static void check_password(const struct auth_material *m, const struct auth_request *r,
                           struct auth_result *out)
{
	char user[96];

	log_escape(user, sizeof(user), r->username, r->username_len);
	if (r->password_len > AUTH_MAX_PASSWORD) {
		out->verdict = AUTH_BAD_CREDENTIALS;
		snprintf(out->detail, sizeof(out->detail), "password: longer than %d bytes for \"%s\"",
		         AUTH_MAX_PASSWORD, user);
		return;
	}
	switch (passwd_db_check(m->users, r->username, r->username_len, r->password, r->password_len)) {
	case PASSWD_OK:
		out->verdict = AUTH_OK;
		out->identity = strndup(r->username, r->username_len);
		break;
	case PASSWD_UNKNOWN_USER:
		out->verdict = AUTH_BAD_CREDENTIALS;
		snprintf(out->detail, sizeof(out->detail), "password: unknown user \"%s\"", user);
		break;
	default:
		out->verdict = AUTH_BAD_CREDENTIALS;
		snprintf(out->detail, sizeof(out->detail), "password: bad password for \"%s\"", user);
		break;
	}
}

static void check_jwt(const struct auth_material *m, const struct auth_request *r, int64_t now,
                      struct auth_result *out)
{
	const struct jwt_keyset *sets[2] = { m->jwt, r->jwks ? r->jwks->set : NULL };
	struct jwt_claims claims;
	char why[160];
	enum jwt_result res;
	int kid_absent = 0;

	res = jwt_verify_sets(sets, 2, (const char *)r->password, r->password_len, now, &m->jwt_opts,
	                      &claims, &kid_absent, why, sizeof(why));
	if (res != JWT_OK && m->jwks && r->jwks == NULL &&
	    (res == JWT_UNKNOWN_KID || res == JWT_BAD_ALG)) {
		/* The key may well be the identity provider's, which we could
		 * not fetch yet: not the client's fault, so not "bad credentials". */
		out->verdict = AUTH_UNAVAILABLE;
		snprintf(out->detail, sizeof(out->detail),
		         "jwt: no keys from the identity provider yet (%s)", why);
		return;
	}
	if (res != JWT_OK) {
		out->verdict = AUTH_BAD_CREDENTIALS;
		out->refetch = m->jwks && kid_absent;
		snprintf(out->detail, sizeof(out->detail), "jwt: %s: %s", jwt_result_name(res), why);
		return;
	}
	out->verdict = AUTH_OK;
	out->identity = claims.username;     /* ownership moves to the result */
	claims.username = NULL;
	out->expires = claims.has_exp ? claims.exp : 0;
	out->acl = claims.acl;               /* likewise */
	claims.acl = NULL;
	jwt_claims_cleanup(&claims);
}

void auth_run(const struct auth_material *m, enum auth_method method,
              const struct auth_request *r, int64_t now, struct auth_result *out)
{
	memset(out, 0, sizeof(*out));
	out->method = method;
	if (method != AUTH_NONE && r->has_auth_method) {
		out->verdict = AUTH_BAD_METHOD;
		snprintf(out->detail, sizeof(out->detail), "enhanced authentication is not supported");
		return;
	}
	switch (method) {
	case AUTH_NONE:
		out->verdict = AUTH_OK;
		return;
	case AUTH_CERT:
		out->verdict = AUTH_OK;
		out->identity = strdup(r->cert_identity);
		break;
	case AUTH_JWT:
		check_jwt(m, r, now, out);
		break;
	case AUTH_PASSWORD:
		check_password(m, r, out);
		break;
	default:
		if (!m->allow_anonymous) {
			out->verdict = AUTH_NOT_AUTHORIZED;
			snprintf(out->detail, sizeof(out->detail),
			         "anonymous: no accepted credentials and --allow-anonymous is off");
		}
		return;
	}
	if (out->verdict == AUTH_OK && out->identity == NULL) {
		out->verdict = AUTH_NOT_AUTHORIZED;
		snprintf(out->detail, sizeof(out->detail), "%s: out of memory", auth_method_name(method));
		return;
	}
	/* "A device may only be itself": the client id must be the identity. */
	if (out->verdict == AUTH_OK && m->require_clientid_match &&
	    (strlen(out->identity) != r->client_id_len ||
	     memcmp(out->identity, r->client_id, r->client_id_len) != 0)) {
		char id[96], cid[96];

		log_escape(id, sizeof(id), out->identity, strlen(out->identity));
		log_escape(cid, sizeof(cid), r->client_id, r->client_id_len);
		out->verdict = AUTH_NOT_AUTHORIZED;
		snprintf(out->detail, sizeof(out->detail),
		         "%s: client id \"%s\" is not the identity \"%s\"", auth_method_name(method),
		         cid, id);
		free(out->identity);
		out->identity = NULL;
	}
}
