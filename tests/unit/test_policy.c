/*
 * The authentication policy (proxy/auth/policy.c): building the material
 * from a configuration, choosing the method that decides a CONNECT, and the
 * verdicts. Password files, the JWT secret and the upstream password are
 * written at test time into a fresh directory; the hashes are the fixed
 * vectors of test_passwd.c and tokens are signed by jwt_test_util.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/auth/policy.h"

/* The helpers serve several tests; this one signs only HMAC tokens. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tests/unit/jwt_test_util.h"
#pragma GCC diagnostic pop

/* mosquitto_passwd 2.0.11 -b alice secret; -H sha512 carol secret. */
#define MOSQ_ALICE "$7$101$7JJupy0FCRiI/fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="
#define MOSQ_CAROL "$6$e0CGA8zB+3zfkHs8$ZgQmsSFsrGsU5MPpvvo49p979jXsbFYiq5mlxRJWfPu5ClY54OCtfGmLbnKqCmuTx+3MOJxDLdFLqSjerPlHiQ=="
#define USERS "alice:" MOSQ_ALICE "\ncarol:" MOSQ_CAROL "\n"
#define WRONG_PW "Wr0ng-Pa55word!"
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* 40 bytes: RFC 7518 3.2 asks for at least 32 for HS256. */
#define SECRET "policy-test-hmac-secret-of-forty-bytes!!"
#define SECRET_LEN (sizeof(SECRET) - 1)

struct fixture {
	char dir[64];
	char users[128], keys[128], uppw[128];
	struct config cfg;
	struct auth_material *m;
	struct auth_request req;
	struct auth_result res;
};

static void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqtls-test-policy-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->users, sizeof(f->users), "%s/users", f->dir);
	snprintf(f->keys, sizeof(f->keys), "%s/jwt.key", f->dir);
	snprintf(f->uppw, sizeof(f->uppw), "%s/upstream.pw", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	auth_material_unref(f->m);
	auth_request_cleanup(&f->req);
	auth_result_cleanup(&f->res);
	unlink(f->users);
	unlink(f->keys);
	unlink(f->uppw);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Configures a password file holding alice and carol. */
static void with_users(struct fixture *f)
{
	write_text(f->users, USERS);
	f->cfg.users = f->users;
}

/* Configures the HMAC secret as --jwt-keys (with a trailing newline, which
 * the key loader drops). */
static void with_jwt(struct fixture *f)
{
	write_text(f->keys, SECRET "\n");
	f->cfg.jwt_keys = f->keys;
	f->cfg.jwt_require_exp = 1;
}

static struct auth_material *load_ok(struct fixture *f)
{
	char err[256] = "";

	f->m = auth_material_load(&f->cfg, err, sizeof(err));
	if (f->m == NULL)
		fail_msg("auth_material_load failed: %s", err);
	return f->m;
}

/* Asserts that loading fails with a message containing |want|. */
static void assert_load_fails(struct fixture *f, const char *want)
{
	char err[256] = "";

	f->m = auth_material_load(&f->cfg, err, sizeof(err));
	assert_null(f->m);
	assert_true(err[0] != '\0');
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void assert_order(const struct auth_material *m, int n, enum auth_method a,
                         enum auth_method b, enum auth_method c)
{
	const enum auth_method want[3] = { a, b, c };

	assert_int_equal(m->n_order, n);
	for (int i = 0; i < n; i++)
		assert_int_equal(m->order[i], want[i]);
}

static char *dup_or_null(const char *s)
{
	char *p = s ? strdup(s) : strdup("");

	assert_non_null(p);
	return p;
}

/* Fills the request the way session_auth.c does: every buffer allocated,
 * presence in the flags. NULL means absent. */
static void request(struct fixture *f, const char *client_id, const char *user, const char *pw,
                    const char *cert_identity)
{
	struct auth_request *r = &f->req;

	auth_request_cleanup(r);
	r->version = 5;
	r->client_id = dup_or_null(client_id);
	r->client_id_len = strlen(r->client_id);
	r->has_username = user != NULL;
	r->username = dup_or_null(user);
	r->username_len = strlen(r->username);
	r->has_password = pw != NULL;
	r->password = (uint8_t *)dup_or_null(pw);
	r->password_len = strlen((char *)r->password);
	r->cert_identity = cert_identity ? dup_or_null(cert_identity) : NULL;
}

static enum auth_method select_for(struct fixture *f, const char *user, const char *pw, const char *cert)
{
	request(f, "c1", user, pw, cert);
	return auth_select(f->m, &f->req);
}

/* Runs the method auth_select picks, as the session does. */
static enum auth_verdict run(struct fixture *f, int64_t now)
{
	auth_result_cleanup(&f->res);
	auth_run(f->m, auth_select(f->m, &f->req), &f->req, now, &f->res);
	return f->res.verdict;
}

static void assert_detail_lacks(const struct fixture *f, const char *secret)
{
	if (strstr(f->res.detail, secret) != NULL)
		fail_msg("detail \"%s\" quotes a secret", f->res.detail);
}

static void assert_detail_has(const struct fixture *f, const char *want)
{
	if (strstr(f->res.detail, want) == NULL)
		fail_msg("detail \"%s\" does not mention \"%s\"", f->res.detail, want);
}

static char *token(const char *payload)
{
	return make_token("HS256", NULL, (const uint8_t *)SECRET, SECRET_LEN, HS_HDR, payload);
}

/* ---- the method order ---- */

static void test_policy_orders_cert_jwt_password_from_what_is_configured(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	with_jwt(f);
	f->cfg.identity_as_username = "cn";
	assert_order(load_ok(f), 3, AUTH_CERT, AUTH_JWT, AUTH_PASSWORD);
	assert_int_equal(f->m->inject, 1);
}

static void test_policy_orders_only_the_methods_that_are_configured(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	assert_order(load_ok(f), 1, AUTH_PASSWORD, 0, 0);
	auth_material_unref(f->m);
	with_jwt(f);
	assert_order(load_ok(f), 2, AUTH_JWT, AUTH_PASSWORD, 0);
	auth_material_unref(f->m);
	f->cfg.users = NULL;
	assert_order(load_ok(f), 1, AUTH_JWT, 0, 0);
}

static void test_policy_without_any_method_is_no_policy(void **state)
{
	struct fixture *f = *state;

	assert_order(load_ok(f), 0, 0, 0, 0);
	assert_int_equal(f->m->inject, 0);
	assert_int_equal(select_for(f, "alice", "secret", "cn-alice"), AUTH_NONE);
}

static void test_policy_follows_an_explicit_auth_order(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	with_jwt(f);
	f->cfg.identity_as_username = "cn";
	f->cfg.auth = "password,cert,jwt";
	assert_order(load_ok(f), 3, AUTH_PASSWORD, AUTH_CERT, AUTH_JWT);
	auth_material_unref(f->m);
	f->cfg.auth = "jwt";
	assert_order(load_ok(f), 1, AUTH_JWT, 0, 0);
}

static void test_policy_refuses_an_unknown_method(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.auth = "password,ldap";
	assert_load_fails(f, "unknown method 'ldap'");
}

static void test_policy_refuses_an_empty_method_between_commas(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.auth = "password,,password";
	assert_load_fails(f, "unknown method ''");
}

static void test_policy_refuses_a_method_listed_twice(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.auth = "password,password";
	assert_load_fails(f, "password listed twice");
}

/* All three methods and then one of them again: still a duplicate, and
 * still worth a message. */
static void test_policy_refuses_a_fourth_method_with_a_message(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	with_jwt(f);
	f->cfg.identity_as_username = "cn";
	f->cfg.auth = "cert,jwt,password,jwt";
	assert_load_fails(f, "jwt listed twice");
}

static void test_policy_refuses_cert_without_identity_as_username(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.auth = "cert,password";
	assert_load_fails(f, "--identity-as-username");
}

static void test_policy_refuses_a_method_whose_material_is_missing(void **state)
{
	struct fixture *f = *state;

	f->cfg.auth = "jwt";
	assert_load_fails(f, "--jwt-keys");
	f->cfg.auth = "password";
	assert_load_fails(f, "--users");
}

/* ---- loading the files ---- */

static void test_policy_names_a_missing_users_file(void **state)
{
	struct fixture *f = *state;

	f->cfg.users = f->users;
	assert_load_fails(f, f->users);
}

static void test_policy_names_a_bad_jwt_key_file(void **state)
{
	struct fixture *f = *state;

	write_text(f->keys, "too short\n");
	f->cfg.jwt_keys = f->keys;
	assert_load_fails(f, "--jwt-keys");
}

/* A reload (users_strict) keeps the old file rather than lose a user to a
 * typo; at startup the bad line is skipped. */
static void test_policy_strict_reload_refuses_a_users_file_with_a_malformed_line(void **state)
{
	struct fixture *f = *state;

	write_text(f->users, USERS "this line has no colon\n");
	f->cfg.users = f->users;
	f->cfg.users_strict = 1;
	assert_load_fails(f, "1 malformed line");
}

static void test_policy_startup_skips_a_malformed_users_line(void **state)
{
	struct fixture *f = *state;

	write_text(f->users, "this line has no colon\n" USERS);
	f->cfg.users = f->users;
	load_ok(f);
	assert_int_equal(passwd_db_count(f->m->users), 2);
	request(f, "c1", "carol", "secret", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
}

static void test_policy_reads_the_upstream_password_without_its_newline(void **state)
{
	struct fixture *f = *state;

	write_text(f->uppw, "broker pw\n");
	f->cfg.upstream_password_file = f->uppw;
	load_ok(f);
	assert_int_equal(f->m->upstream_password_len, 9);
	assert_memory_equal(f->m->upstream_password, "broker pw", 9);
	auth_material_unref(f->m);

	write_text(f->uppw, "crlf\r\n");
	load_ok(f);
	assert_int_equal(f->m->upstream_password_len, 4);
	assert_memory_equal(f->m->upstream_password, "crlf", 4);
	auth_material_unref(f->m);

	/* Only one newline goes: the rest is the password. */
	write_text(f->uppw, "two\n\n");
	load_ok(f);
	assert_int_equal(f->m->upstream_password_len, 4);
	assert_memory_equal(f->m->upstream_password, "two\n", 4);
	auth_material_unref(f->m);

	write_text(f->uppw, "no newline");
	load_ok(f);
	assert_int_equal(f->m->upstream_password_len, 10);
	assert_memory_equal(f->m->upstream_password, "no newline", 10);
}

static void test_policy_reads_an_empty_upstream_password_as_a_present_empty_one(void **state)
{
	struct fixture *f = *state;

	write_text(f->uppw, "\n");
	f->cfg.upstream_password_file = f->uppw;
	load_ok(f);
	assert_non_null(f->m->upstream_password);
	assert_int_equal(f->m->upstream_password_len, 0);
}

static void test_policy_names_a_missing_upstream_password_file(void **state)
{
	struct fixture *f = *state;

	f->cfg.upstream_password_file = f->uppw;
	assert_load_fails(f, "--upstream-password-file");
}

static void test_policy_injects_for_an_upstream_username_alone(void **state)
{
	struct fixture *f = *state;

	f->cfg.upstream_username = "proxy";
	load_ok(f);
	assert_int_equal(f->m->n_order, 0);
	assert_int_equal(f->m->inject, 1);
	assert_string_equal(f->m->upstream_username, "proxy");
	assert_null(f->m->upstream_password);
}

static void test_policy_injects_for_an_upstream_password_alone(void **state)
{
	struct fixture *f = *state;

	write_text(f->uppw, "pw\n");
	f->cfg.upstream_password_file = f->uppw;
	load_ok(f);
	assert_int_equal(f->m->n_order, 0);
	assert_int_equal(f->m->inject, 1);
	assert_null(f->m->upstream_username);
}

/* Every reference is dropped once; LeakSanitizer checks the rest. */
static void test_policy_material_lives_until_its_last_reference_is_dropped(void **state)
{
	struct fixture *f = *state;
	struct auth_material *a, *b;

	with_users(f);
	with_jwt(f);
	load_ok(f);
	a = auth_material_ref(f->m);
	b = auth_material_ref(f->m);
	assert_ptr_equal(a, f->m);
	assert_ptr_equal(b, f->m);
	assert_int_equal(f->m->refs, 3);
	auth_material_unref(a);
	auth_material_unref(b);
	assert_int_equal(f->m->refs, 1);
	/* Still usable by its last holder. */
	request(f, "c1", "alice", "secret", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_null(auth_material_ref(NULL));
	auth_material_unref(NULL);
}

/* ---- which method decides ---- */

static void test_policy_select_without_material_is_none(void **state)
{
	struct fixture *f = *state;

	request(f, "c1", "alice", "secret", NULL);
	assert_int_equal(auth_select(NULL, &f->req), AUTH_NONE);
}

static void test_policy_select_takes_cert_only_with_a_certificate_identity(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.identity_as_username = "cn";
	load_ok(f);
	assert_int_equal(select_for(f, "alice", "secret", "dev-1"), AUTH_CERT);
	assert_int_equal(select_for(f, NULL, NULL, "dev-1"), AUTH_CERT);
	assert_int_equal(select_for(f, "alice", "secret", NULL), AUTH_PASSWORD);
	assert_int_equal(select_for(f, NULL, NULL, NULL), AUTH_ANONYMOUS);
}

/* Shapes a password may have, and whether it is taken for a JWT: three
 * base64url parts, the first starting "eyJ" (`{"`); only the signature
 * may be empty (an unsecured token, refused later as a token). */
static void test_policy_select_takes_jwt_only_for_a_jwt_shaped_password(void **state)
{
	static const struct {
		const char *pw;
		int jwt;
	} shapes[] = {
		{ "eyJh.b.c", 1 },
		{ "eyJ.b.c", 1 },
		{ "eyJhbGci-_09.AZaz09-_.x", 1 },
		{ "eyJh.b", 0 },                 /* one dot */
		{ "eyJh.b.c.d", 0 },             /* three dots */
		{ "eyJh..c", 0 },                /* empty middle part */
		{ "eyJh.b.", 1 },                /* empty signature */
		{ "eyJh.b..", 0 },               /* trailing dots */
		{ ".eyJh.b.c", 0 },              /* leading dot */
		{ "eyJh.b+c.d", 0 },             /* standard base64, not url */
		{ "eyJh.b/c.d", 0 },
		{ "eyJh.bc=.d", 0 },             /* padding */
		{ "eyJh.b c.d", 0 },
		{ "eyJh.b.c\n", 0 },
		{ "eyI.b.c", 0 },                /* not a JSON object */
		{ "EYJh.b.c", 0 },
		{ "abc.def.ghi", 0 },
		{ "eyJ", 0 },
		{ "eyJ..", 0 },
		{ "", 0 },
	};
	struct fixture *f = *state;

	with_users(f);
	with_jwt(f);
	load_ok(f);
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		enum auth_method with_user = select_for(f, "alice", shapes[i].pw, NULL);
		enum auth_method alone = select_for(f, NULL, shapes[i].pw, NULL);

		if (with_user != (shapes[i].jwt ? AUTH_JWT : AUTH_PASSWORD) ||
		    alone != (shapes[i].jwt ? AUTH_JWT : AUTH_ANONYMOUS))
			fail_msg("password \"%s\": got %s / %s", shapes[i].pw, auth_method_name(with_user),
			         auth_method_name(alone));
	}
}

static void test_policy_select_takes_password_only_with_username_and_password(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	load_ok(f);
	assert_int_equal(select_for(f, "alice", "secret", NULL), AUTH_PASSWORD);
	/* Present but empty is still present. */
	assert_int_equal(select_for(f, "", "", NULL), AUTH_PASSWORD);
	assert_int_equal(select_for(f, "alice", NULL, NULL), AUTH_ANONYMOUS);
	assert_int_equal(select_for(f, NULL, "secret", NULL), AUTH_ANONYMOUS);
	assert_int_equal(select_for(f, NULL, NULL, NULL), AUTH_ANONYMOUS);
	/* No JWT keys: a token-shaped password is just a password. */
	assert_int_equal(select_for(f, "alice", "eyJh.b.c", NULL), AUTH_PASSWORD);
}

static void test_policy_select_takes_the_first_applicable_method_in_auth_order(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	with_jwt(f);
	f->cfg.auth = "password,jwt";
	load_ok(f);
	assert_int_equal(select_for(f, "alice", "eyJh.b.c", NULL), AUTH_PASSWORD);
	assert_int_equal(select_for(f, NULL, "eyJh.b.c", NULL), AUTH_JWT);
}

/* A failing method refuses: there is no fallback to the next one. */
static void test_policy_does_not_fall_back_when_the_chosen_method_fails(void **state)
{
	struct fixture *f = *state;
	char *tok;

	with_users(f);
	with_jwt(f);
	load_ok(f);
	tok = token("{\"sub\":\"alice\",\"exp\":1}");
	request(f, "c1", "alice", tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_int_equal(f->res.method, AUTH_JWT);
	free(tok);
}

/* An unsecured token (alg "none", empty signature) with a user name is
 * judged as a token and refused, not checked as a password. */
static void test_policy_refuses_an_unsecured_jwt_as_a_token(void **state)
{
	struct fixture *f = *state;
	char *h = b64url((const uint8_t *)"{\"alg\":\"none\"}", 14);
	char *p = b64url((const uint8_t *)"{\"sub\":\"alice\"}", 15);
	char tok[128];

	with_users(f);
	with_jwt(f);
	load_ok(f);
	snprintf(tok, sizeof(tok), "%s.%s.", h, p);
	request(f, "c1", "alice", tok, NULL);
	assert_int_equal(auth_select(f->m, &f->req), AUTH_JWT);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_int_equal(f->res.method, AUTH_JWT);
	assert_null(f->res.identity);
	assert_detail_has(f, "jwt: ");
	assert_detail_lacks(f, p);
	free(h);
	free(p);
}

/* ---- verdicts ---- */

static void test_policy_accepts_the_right_password(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	load_ok(f);
	request(f, "c1", "alice", "secret", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_int_equal(f->res.method, AUTH_PASSWORD);
	assert_string_equal(f->res.identity, "alice");
	assert_int_equal(f->res.expires, 0);
	request(f, "c1", "carol", "secret", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_string_equal(f->res.identity, "carol");
}

static void test_policy_refuses_a_wrong_password_without_quoting_it(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	load_ok(f);
	request(f, "c1", "alice", WRONG_PW, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_null(f->res.identity);
	assert_detail_has(f, "bad password");
	assert_detail_has(f, "alice");
	assert_detail_lacks(f, WRONG_PW);
	assert_detail_lacks(f, "Wr0ng");
}

static void test_policy_refuses_an_unknown_user_without_quoting_the_password(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	load_ok(f);
	request(f, "c1", "mallory", WRONG_PW, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_null(f->res.identity);
	assert_detail_has(f, "unknown user");
	assert_detail_has(f, "mallory");
	assert_detail_lacks(f, WRONG_PW);
}

static void test_policy_accepts_a_password_file_written_by_mosquitto_passwd(void **state)
{
	struct fixture *f = *state;
	char cmd[512];

	if (access("/usr/bin/mosquitto_passwd", X_OK) != 0)
		skip();
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/mosquitto_passwd -c -b %s dave 'd4ve pw' >/dev/null 2>&1 && "
	         "/usr/bin/mosquitto_passwd -b %s erin erin >/dev/null 2>&1",
	         f->users, f->users);
	assert_int_equal(system(cmd), 0);
	f->cfg.users = f->users;
	load_ok(f);
	request(f, "c1", "dave", "d4ve pw", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	request(f, "c1", "erin", "d4ve pw", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
}

static void test_policy_accepts_a_valid_jwt_as_its_subject_until_its_expiry(void **state)
{
	struct fixture *f = *state;
	char *tok = token("{\"sub\":\"sensor-9\",\"exp\":1700000600}");

	with_jwt(f);
	load_ok(f);
	request(f, "c1", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_int_equal(f->res.method, AUTH_JWT);
	assert_string_equal(f->res.identity, "sensor-9");
	assert_int_equal(f->res.expires, 1700000600);
	free(tok);
}

static void test_policy_takes_the_configured_username_claim(void **state)
{
	struct fixture *f = *state;
	char *tok = token("{\"sub\":\"x\",\"device\":\"pump-3\",\"exp\":1700000600}");

	with_jwt(f);
	f->cfg.jwt_username_claim = "device";
	load_ok(f);
	request(f, "c1", "ignored", tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_string_equal(f->res.identity, "pump-3");
	free(tok);
}

static void test_policy_refuses_an_expired_jwt_without_quoting_it(void **state)
{
	struct fixture *f = *state;
	char *tok = token("{\"sub\":\"sensor-9\",\"exp\":1699990000}");

	with_jwt(f);
	load_ok(f);
	request(f, "c1", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_null(f->res.identity);
	assert_detail_has(f, "expired");
	assert_detail_lacks(f, tok);
	assert_detail_lacks(f, strrchr(tok, '.') + 1);
	free(tok);
}

static void test_policy_refuses_a_jwt_with_a_bad_signature_without_quoting_it(void **state)
{
	struct fixture *f = *state;
	static const char other[] = "another-secret-that-is-also-forty-bytes!";
	char *tok = make_token("HS256", NULL, (const uint8_t *)other, strlen(other), HS_HDR,
	                       "{\"sub\":\"sensor-9\",\"exp\":1700000600}");
	char *dot;

	with_jwt(f);
	load_ok(f);
	request(f, "c1", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_null(f->res.identity);
	assert_detail_has(f, "signature");
	assert_detail_lacks(f, tok);
	assert_detail_lacks(f, strrchr(tok, '.') + 1);
	/* Nor the payload part. */
	dot = strchr(tok, '.');
	*strrchr(tok, '.') = '\0';
	assert_detail_lacks(f, dot + 1);
	free(tok);
}

static void test_policy_refuses_a_jwt_without_expiry_when_one_is_required(void **state)
{
	struct fixture *f = *state;
	char *tok = token("{\"sub\":\"sensor-9\"}");

	with_jwt(f);
	load_ok(f);
	request(f, "c1", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	auth_material_unref(f->m);
	f->cfg.jwt_require_exp = 0;
	load_ok(f);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_int_equal(f->res.expires, 0);
	free(tok);
}

static void test_policy_accepts_a_certificate_identity(void **state)
{
	struct fixture *f = *state;

	f->cfg.identity_as_username = "cn";
	load_ok(f);
	request(f, "c1", "alice", WRONG_PW, "dev-1.example");
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_int_equal(f->res.method, AUTH_CERT);
	assert_string_equal(f->res.identity, "dev-1.example");
}

static void test_policy_admits_anonymous_clients_only_when_allowed(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	load_ok(f);
	request(f, "c1", NULL, NULL, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_NOT_AUTHORIZED);
	assert_int_equal(f->res.method, AUTH_ANONYMOUS);
	assert_detail_has(f, "anonymous");
	auth_material_unref(f->m);
	f->cfg.allow_anonymous = 1;
	load_ok(f);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_int_equal(f->res.method, AUTH_ANONYMOUS);
	assert_null(f->res.identity);
}

/* MQTT 5.0 3.1.2.11.9: enhanced authentication is not offered, whatever
 * method would have decided; without a policy the broker answers it. */
static void test_policy_refuses_enhanced_authentication_with_bad_method(void **state)
{
	static const enum auth_method methods[] = { AUTH_CERT, AUTH_PASSWORD, AUTH_ANONYMOUS };
	struct fixture *f = *state;

	with_users(f);
	f->cfg.identity_as_username = "cn";
	f->cfg.allow_anonymous = 1;
	load_ok(f);
	request(f, "c1", "alice", "secret", "dev-1");
	f->req.has_auth_method = 1;
	for (size_t i = 0; i < 3; i++) {
		auth_result_cleanup(&f->res);
		auth_run(f->m, methods[i], &f->req, TEST_NOW, &f->res);
		assert_int_equal(f->res.verdict, AUTH_BAD_METHOD);
		assert_null(f->res.identity);
	}
	auth_result_cleanup(&f->res);
	auth_run(f->m, AUTH_NONE, &f->req, TEST_NOW, &f->res);
	assert_int_equal(f->res.verdict, AUTH_OK);
}

/* --require-clientid-match: a device may only be itself. */
static void test_policy_require_clientid_match_accepts_the_identity_as_client_id(void **state)
{
	struct fixture *f = *state;

	with_users(f);
	f->cfg.require_clientid_match = 1;
	load_ok(f);
	request(f, "alice", "alice", "secret", NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_string_equal(f->res.identity, "alice");
}

static void test_policy_require_clientid_match_refuses_another_client_id(void **state)
{
	static const char *const others[] = { "bob", "alic", "alice2", "", "ALICE" };
	struct fixture *f = *state;

	with_users(f);
	f->cfg.require_clientid_match = 1;
	load_ok(f);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		request(f, others[i], "alice", "secret", NULL);
		assert_int_equal(run(f, TEST_NOW), AUTH_NOT_AUTHORIZED);
		assert_null(f->res.identity);
		assert_detail_has(f, "client id");
		assert_detail_lacks(f, "secret");
	}
}

static void test_policy_require_clientid_match_applies_to_jwt_subjects(void **state)
{
	struct fixture *f = *state;
	char *tok = token("{\"sub\":\"sensor-9\",\"exp\":1700000600}");

	with_jwt(f);
	f->cfg.require_clientid_match = 1;
	load_ok(f);
	request(f, "sensor-9", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	request(f, "sensor-8", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_NOT_AUTHORIZED);
	assert_detail_lacks(f, strrchr(tok, '.') + 1);
	free(tok);
}

static void test_policy_costs_every_jwt_as_slow_and_a_certificate_as_free(void **state)
{
	struct fixture *f = *state;

	with_jwt(f);
	f->cfg.identity_as_username = "cn";
	load_ok(f);
	request(f, "c1", NULL, "eyJh.b.c", "dev-1");
	assert_true(auth_cost_us(f->m, AUTH_JWT, &f->req) > 150);
	assert_int_equal(auth_cost_us(f->m, AUTH_CERT, &f->req), 0);
	assert_int_equal(auth_cost_us(f->m, AUTH_ANONYMOUS, &f->req), 0);
}

/* ---- keys from an identity provider ---- */

#define IDP_URL "https://idp.example/realms/mqtt/protocol/openid-connect/certs"

/* A fetched key set, as the JWKS fetcher would install it: one P-256 key
 * with kid "idp". The caller drops the reference; *pkey is the signing key. */
static struct jwks_keys *fetched_keys(EVP_PKEY **pkey)
{
	struct jwks_keys *k = calloc(1, sizeof(*k));
	char *jwk, text[4096], err[200];

	assert_non_null(k);
	*pkey = gen_ec(NID_X9_62_prime256v1);
	jwk = jwk_of(*pkey, NULL, 0, "\"kid\":\"idp\"");
	snprintf(text, sizeof(text), "{\"keys\":[%s]}", jwk);
	free(jwk);
	k->set = jwt_keyset_parse_jwks((const uint8_t *)text, strlen(text), err, sizeof(err));
	assert_non_null(k->set);
	k->refs = 1;
	k->gen = 1;
	return k;
}

static char *es256_token(EVP_PKEY *pkey, const char *kid)
{
	char header[128];

	snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
	return make_token("ES256", pkey, NULL, 0, header, "{\"sub\":\"dev-9\",\"exp\":1700000600}");
}

static void test_policy_jwks_url_alone_enables_jwt(void **state)
{
	struct fixture *f = *state;

	f->cfg.jwt_jwks_url = IDP_URL;
	load_ok(f);
	assert_order(f->m, 1, AUTH_JWT, AUTH_NONE, AUTH_NONE);
	assert_true(f->m->jwks);
	assert_null(f->m->jwt);
	assert_int_equal(select_for(f, NULL, "eyJh.eyJi.c2ln", NULL), AUTH_JWT);
	auth_material_unref(f->m);
	f->cfg.auth = "jwt";
	f->cfg.jwt_jwks_url = NULL;
	f->cfg.jwt_discovery = 1;
	f->cfg.jwt_issuer = "https://idp.example/realms/mqtt";
	load_ok(f);
	assert_true(f->m->jwks);
}

/* No keys fetched yet: the token may well be good, so the client hears
 * "server unavailable" rather than "bad credentials". */
static void test_policy_without_fetched_keys_a_token_is_server_unavailable(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *pkey;
	struct jwks_keys *k = fetched_keys(&pkey);
	char *tok = es256_token(pkey, "idp");

	f->cfg.jwt_jwks_url = IDP_URL;
	load_ok(f);
	request(f, "c1", NULL, tok, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_UNAVAILABLE);
	assert_detail_has(f, "no keys from the identity provider yet");
	assert_false(f->res.refetch);
	request(f, "c1", NULL, tok, NULL);
	f->req.jwks = jwks_keys_ref(k);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_string_equal(f->res.identity, "dev-9");
	free(tok);
	jwks_keys_unref(k);
	EVP_PKEY_free(pkey);
}

/* A kid no key has asks for a refetch; a bad signature does not. */
static void test_policy_unknown_kid_of_fetched_keys_asks_for_a_refetch(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *pkey, *other = gen_ec(NID_X9_62_prime256v1);
	struct jwks_keys *k = fetched_keys(&pkey);
	char *unknown = es256_token(pkey, "rotated"), *forged = es256_token(other, "idp");

	f->cfg.jwt_jwks_url = IDP_URL;
	load_ok(f);
	request(f, "c1", NULL, unknown, NULL);
	f->req.jwks = jwks_keys_ref(k);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_true(f->res.refetch);
	assert_detail_has(f, "unknown key id");
	request(f, "c1", NULL, forged, NULL);
	f->req.jwks = jwks_keys_ref(k);
	assert_int_equal(run(f, TEST_NOW), AUTH_BAD_CREDENTIALS);
	assert_false(f->res.refetch);
	free(unknown);
	free(forged);
	jwks_keys_unref(k);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(other);
}

/* A static emergency key beside the provider's works with or without them. */
static void test_policy_static_keys_work_beside_the_fetched_ones(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *pkey;
	struct jwks_keys *k = fetched_keys(&pkey);
	char *by_static = token("{\"sub\":\"sensor-9\",\"exp\":1700000600}");
	char *by_idp = es256_token(pkey, "idp");

	with_jwt(f);
	f->cfg.jwt_jwks_url = IDP_URL;
	load_ok(f);
	assert_order(f->m, 1, AUTH_JWT, AUTH_NONE, AUTH_NONE);
	request(f, "c1", NULL, by_static, NULL);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	request(f, "c1", NULL, by_static, NULL);
	f->req.jwks = jwks_keys_ref(k);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	request(f, "c1", NULL, by_idp, NULL);
	f->req.jwks = jwks_keys_ref(k);
	assert_int_equal(run(f, TEST_NOW), AUTH_OK);
	assert_string_equal(f->res.identity, "dev-9");
	free(by_static);
	free(by_idp);
	jwks_keys_unref(k);
	EVP_PKEY_free(pkey);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_policy_orders_cert_jwt_password_from_what_is_configured),
		T(test_policy_orders_only_the_methods_that_are_configured),
		T(test_policy_without_any_method_is_no_policy),
		T(test_policy_follows_an_explicit_auth_order),
		T(test_policy_refuses_an_unknown_method),
		T(test_policy_refuses_an_empty_method_between_commas),
		T(test_policy_refuses_a_method_listed_twice),
		T(test_policy_refuses_a_fourth_method_with_a_message),
		T(test_policy_refuses_cert_without_identity_as_username),
		T(test_policy_refuses_a_method_whose_material_is_missing),
		T(test_policy_names_a_missing_users_file),
		T(test_policy_names_a_bad_jwt_key_file),
		T(test_policy_strict_reload_refuses_a_users_file_with_a_malformed_line),
		T(test_policy_startup_skips_a_malformed_users_line),
		T(test_policy_reads_the_upstream_password_without_its_newline),
		T(test_policy_reads_an_empty_upstream_password_as_a_present_empty_one),
		T(test_policy_names_a_missing_upstream_password_file),
		T(test_policy_injects_for_an_upstream_username_alone),
		T(test_policy_injects_for_an_upstream_password_alone),
		T(test_policy_material_lives_until_its_last_reference_is_dropped),
		T(test_policy_select_without_material_is_none),
		T(test_policy_select_takes_cert_only_with_a_certificate_identity),
		T(test_policy_select_takes_jwt_only_for_a_jwt_shaped_password),
		T(test_policy_select_takes_password_only_with_username_and_password),
		T(test_policy_select_takes_the_first_applicable_method_in_auth_order),
		T(test_policy_does_not_fall_back_when_the_chosen_method_fails),
		T(test_policy_refuses_an_unsecured_jwt_as_a_token),
		T(test_policy_accepts_the_right_password),
		T(test_policy_refuses_a_wrong_password_without_quoting_it),
		T(test_policy_refuses_an_unknown_user_without_quoting_the_password),
		T(test_policy_accepts_a_password_file_written_by_mosquitto_passwd),
		T(test_policy_accepts_a_valid_jwt_as_its_subject_until_its_expiry),
		T(test_policy_takes_the_configured_username_claim),
		T(test_policy_refuses_an_expired_jwt_without_quoting_it),
		T(test_policy_refuses_a_jwt_with_a_bad_signature_without_quoting_it),
		T(test_policy_refuses_a_jwt_without_expiry_when_one_is_required),
		T(test_policy_accepts_a_certificate_identity),
		T(test_policy_admits_anonymous_clients_only_when_allowed),
		T(test_policy_refuses_enhanced_authentication_with_bad_method),
		T(test_policy_require_clientid_match_accepts_the_identity_as_client_id),
		T(test_policy_require_clientid_match_refuses_another_client_id),
		T(test_policy_require_clientid_match_applies_to_jwt_subjects),
		T(test_policy_costs_every_jwt_as_slow_and_a_certificate_as_free),
		T(test_policy_jwks_url_alone_enables_jwt),
		T(test_policy_without_fetched_keys_a_token_is_server_unavailable),
		T(test_policy_unknown_kid_of_fetched_keys_asks_for_a_refetch),
		T(test_policy_static_keys_work_beside_the_fetched_ones),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
