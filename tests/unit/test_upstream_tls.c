/*
 * --upstream-tls below the session: the name a broker's certificate must
 * carry (proxy/upstream_tls.c), the client context and its errors, the
 * verification of names and addresses, the failure text, and resumption
 * to the same name only (tls/client_ctx.c), over socketpairs against a
 * BoringSSL server. The configuration rules of the five flags, too.
 *
 * The certificates are made once per run with the openssl command line
 * tool in a temporary directory: a self-signed server certificate for
 * DNS:localhost and IP:127.0.0.1 (its own CA), and an unrelated key.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/config.h"
#include "proxy/upstream_tls.h"
#include "tls/client_ctx.h"

static char dir[] = "/tmp/mqtls-upstream-tls-XXXXXX";
static char server_pem[128], server_key[128], other_key[128], missing[128];

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0;
}

static int setup_pki(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(server_pem, sizeof(server_pem), "%s/server.pem", dir);
	snprintf(server_key, sizeof(server_key), "%s/server.key", dir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
	snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
	return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s "
	           "-out %s -subj /CN=localhost -days 2 -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
	           "-addext basicConstraints=critical,CA:TRUE 2>/dev/null", server_key, server_pem) &&
	       run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
	           other_key) ? 0 : -1;
}

static int teardown_pki(void **state)
{
	run("rm -rf %s", dir);
	return 0;
}

/* ---- the name to verify ---------------------------------------------------- */

static void assert_name(const char *spec, const char *sni, const char *want, int want_ip)
{
	char out[UPSTREAM_NAME_MAX], err[256] = "";
	int is_ip = -1;

	if (!upstream_tls_name(spec, sni, out, sizeof(out), &is_ip, err, sizeof(err)))
		fail_msg("%s: %s", spec, err);
	assert_string_equal(out, want);
	assert_int_equal(is_ip, want_ip);
}

static void test_name_of_a_host_name_is_sent_as_sni(void **state)
{
	assert_name("broker.example.com:8883", NULL, "broker.example.com", 0);
	assert_name("localhost:1883", NULL, "localhost", 0);
}

static void test_name_of_an_ip_literal_is_checked_as_an_address(void **state)
{
	assert_name("127.0.0.1:8883", NULL, "127.0.0.1", 1);
	assert_name("[::1]:8883", NULL, "::1", 1);
	assert_name("[2001:db8::7]:8883", NULL, "2001:db8::7", 1);
}

static void test_upstream_sni_overrides_the_host(void **state)
{
	assert_name("10.0.0.5:8883", "mqtt.internal", "mqtt.internal", 0);
	assert_name("unix:/run/mosquitto.sock", "mqtt.internal", "mqtt.internal", 0);
	/* An address given as the name is still an address. */
	assert_name("broker:8883", "10.1.2.3", "10.1.2.3", 1);
}

static void test_unix_socket_without_upstream_sni_is_an_error_naming_the_flag(void **state)
{
	char out[UPSTREAM_NAME_MAX], err[256] = "";
	int is_ip;

	assert_false(upstream_tls_name("unix:/run/mosquitto.sock", NULL, out, sizeof(out), &is_ip, err,
	                               sizeof(err)));
	assert_non_null(strstr(err, "--upstream-sni"));
}

static void test_name_that_does_not_fit_is_an_error(void **state)
{
	char out[8], err[256] = "";
	int is_ip;

	assert_false(upstream_tls_name("a-rather-long-name.example:1", NULL, out, sizeof(out), &is_ip, err,
	                               sizeof(err)));
	assert_non_null(strstr(err, "--upstream-sni"));
}

/* ---- the client context -------------------------------------------------------- */

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key, char *err, size_t len)
{
	struct tls_client_opts o = { ca, cert, key, "--upstream" };

	err[0] = '\0';
	return tls_client_ctx_new(&o, err, len);
}

static void test_ctx_with_a_missing_ca_file_names_the_flag_and_file(void **state)
{
	char err[512];

	assert_null(client_ctx(missing, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "--upstream-ca"));
	assert_non_null(strstr(err, missing));
}

static void test_ctx_with_a_ca_file_without_certificates_is_refused(void **state)
{
	char err[512];

	assert_null(client_ctx(server_key, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "--upstream-ca"));
}

static void test_ctx_with_a_key_not_matching_the_certificate_is_refused(void **state)
{
	char err[512];

	assert_null(client_ctx(server_pem, server_pem, other_key, err, sizeof(err)));
	assert_non_null(strstr(err, "--upstream-key"));
	assert_non_null(strstr(err, "does not match"));
}

static void test_ctx_with_a_client_certificate_file_without_certificates_is_refused(void **state)
{
	char err[512];

	assert_null(client_ctx(server_pem, server_key, server_key, err, sizeof(err)));
	assert_non_null(strstr(err, "--upstream-cert"));
	assert_non_null(strstr(err, "not a PEM certificate chain"));
}

static void test_ctx_with_a_missing_client_key_names_the_flag_and_file(void **state)
{
	char err[512];

	assert_null(client_ctx(server_pem, server_pem, missing, err, sizeof(err)));
	assert_non_null(strstr(err, "--upstream-key"));
	assert_non_null(strstr(err, missing));
}

static void test_ctx_with_a_matching_client_certificate_is_built(void **state)
{
	char err[512];
	SSL_CTX *ctx = client_ctx(server_pem, server_pem, server_key, err, sizeof(err));

	if (ctx == NULL)
		fail_msg("%s", err);
	SSL_CTX_free(ctx);
}

/* ---- handshakes over a socketpair --------------------------------------------- */

static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, server_pem), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, server_key, SSL_FILETYPE_PEM), 1);
	return ctx;
}

/* Runs both handshakes to the end (non-blocking sockets, turn by turn);
 * then, on success, one message from the server, which carries TLS 1.3's
 * session ticket to the client. Returns 1 if the client's handshake
 * succeeded. */
static int handshake(SSL *client, SSL *server)
{
	int c = 0, s = 0;

	for (int i = 0; i < 100 && (c != 1 || s != 1); i++) {
		if (c != 1) {
			c = SSL_do_handshake(client);
			if (c != 1 && SSL_get_error(client, c) != SSL_ERROR_WANT_READ)
				return 0;
		}
		if (s != 1) {
			s = SSL_do_handshake(server);
			if (s != 1 && SSL_get_error(server, s) != SSL_ERROR_WANT_READ)
				s = 1;   /* the server gave up: the client sees it next turn */
		}
	}
	if (c == 1) {
		char buf[8];

		assert_int_equal(SSL_write(server, "hi", 2), 2);
		assert_int_equal(SSL_read(client, buf, sizeof(buf)), 2);
	}
	return c == 1;
}

struct pair {
	SSL *client, *server;
};

static void pair_open(struct pair *p, SSL_CTX *cctx, SSL_CTX *sctx, const char *name, int is_ip)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	p->client = tls_client_ssl_new(cctx, name, is_ip);
	p->server = SSL_new(sctx);
	assert_non_null(p->client);
	assert_non_null(p->server);
	SSL_set_fd(p->client, sv[0]);
	SSL_set_fd(p->server, sv[1]);
	SSL_set_accept_state(p->server);
}

static void pair_close(struct pair *p)
{
	close(SSL_get_fd(p->client));
	close(SSL_get_fd(p->server));
	SSL_free(p->client);
	SSL_free(p->server);
}

/* Connects to |name|; returns 1 on success, else the failure text in |why|. */
static int connect_to(SSL_CTX *cctx, SSL_CTX *sctx, const char *name, int is_ip, char *why, size_t len,
                      int *resumed)
{
	struct pair p;
	int ok;

	pair_open(&p, cctx, sctx, name, is_ip);
	ok = handshake(p.client, p.server);
	if (!ok) {
		unsigned long e = ERR_peek_last_error();
		long v = X509_V_OK;

		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
			v = tls_client_verify_result(p.client);
		tls_client_failure(v, e, 0, why, len);
	}
	if (resumed)
		*resumed = SSL_session_reused(p.client);
	ERR_clear_error();
	pair_close(&p);
	return ok;
}

static void test_server_is_verified_by_name_and_by_address(void **state)
{
	char err[512], why[200] = "";
	SSL_CTX *cctx = client_ctx(server_pem, NULL, NULL, err, sizeof(err)), *sctx = server_ctx();

	assert_non_null(cctx);
	assert_true(connect_to(cctx, sctx, "localhost", 0, why, sizeof(why), NULL));
	assert_true(connect_to(cctx, sctx, "127.0.0.1", 1, why, sizeof(why), NULL));
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_wrong_name_fails_with_hostname_mismatch(void **state)
{
	char err[512], why[200] = "";
	SSL_CTX *cctx = client_ctx(server_pem, NULL, NULL, err, sizeof(err)), *sctx = server_ctx();

	assert_false(connect_to(cctx, sctx, "broker.example.com", 0, why, sizeof(why), NULL));
	assert_string_equal(why, "certificate verify failed: Hostname mismatch");
	assert_false(connect_to(cctx, sctx, "10.9.8.7", 1, why, sizeof(why), NULL));
	assert_string_equal(why, "certificate verify failed: IP address mismatch");
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_untrusted_server_fails_with_unable_to_get_local_issuer(void **state)
{
	char err[512], why[200] = "";
	SSL_CTX *cctx, *sctx = server_ctx();

	/* The system's CAs do not know the test certificate. */
	cctx = client_ctx(NULL, NULL, NULL, err, sizeof(err));
	if (cctx == NULL)
		skip();    /* no system bundle on this machine */
	assert_false(connect_to(cctx, sctx, "localhost", 0, why, sizeof(why), NULL));
	assert_non_null(strstr(why, "certificate verify failed: "));
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_session_is_resumed_for_the_same_name_only(void **state)
{
	char err[512], why[200] = "";
	SSL_CTX *cctx = client_ctx(server_pem, NULL, NULL, err, sizeof(err)), *sctx = server_ctx();
	int resumed = -1;

	assert_true(connect_to(cctx, sctx, "localhost", 0, why, sizeof(why), &resumed));
	assert_int_equal(resumed, 0);
	assert_true(connect_to(cctx, sctx, "localhost", 0, why, sizeof(why), &resumed));
	assert_int_equal(resumed, 1);
	/* Another name: a full handshake, its certificate checked for it. */
	assert_true(connect_to(cctx, sctx, "127.0.0.1", 1, why, sizeof(why), &resumed));
	assert_int_equal(resumed, 0);
	/* Each name keeps its own (several brokers, one after the other). */
	assert_true(connect_to(cctx, sctx, "localhost", 0, why, sizeof(why), &resumed));
	assert_int_equal(resumed, 1);
	assert_true(connect_to(cctx, sctx, "127.0.0.1", 1, why, sizeof(why), &resumed));
	assert_int_equal(resumed, 1);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_failure_text_without_verification_error(void **state)
{
	char why[200];

	assert_string_equal(tls_client_failure(X509_V_OK, 0, 0, why, sizeof(why)), "connection closed");
	assert_string_equal(tls_client_failure(X509_V_OK, 0, ECONNRESET, why, sizeof(why)),
	                    "Connection reset by peer");
}

/* ---- the flags ------------------------------------------------------------------ */

static enum config_result load(struct config *cfg, char *err, size_t len, ...)
{
	char *argv[32] = { "mqtls", "--cert", "/a/cert.pem", "--key", "/a/key.pem", "--upstream",
	                   "127.0.0.1:1883" };
	char *envp[] = { NULL };
	int argc = 7;
	va_list ap;
	char *a;

	va_start(ap, len);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	return config_read(cfg, argc, argv, envp, err, len);
}

static void test_flags_are_read_and_checked(void **state)
{
	struct config cfg;
	char err[512];

	assert_int_equal(load(&cfg, err, sizeof(err), "--upstream-tls", "--upstream-ca", "/a/ca.pem",
	                      "--upstream-sni", "mqtt.internal", "--upstream-cert", "/a/c.pem",
	                      "--upstream-key", "/a/c.key", NULL), CONFIG_OK);
	assert_int_equal(cfg.upstream_tls, 1);
	assert_string_equal(cfg.upstream_ca, "/a/ca.pem");
	assert_string_equal(cfg.upstream_sni, "mqtt.internal");
	assert_string_equal(cfg.upstream_cert, "/a/c.pem");
	assert_string_equal(cfg.upstream_key, "/a/c.key");
	config_cleanup(&cfg);

	assert_int_equal(load(&cfg, err, sizeof(err), "--upstream-tls", "--upstream-cert", "/a/c.pem", NULL),
	                 CONFIG_ERROR);
	assert_non_null(strstr(err, "--upstream-cert and --upstream-key"));
	config_cleanup(&cfg);
	assert_int_equal(load(&cfg, err, sizeof(err), "--upstream-tls", "--upstream-key", "/a/c.key", NULL),
	                 CONFIG_ERROR);
	assert_non_null(strstr(err, "--upstream-cert and --upstream-key"));
	config_cleanup(&cfg);
	assert_int_equal(load(&cfg, err, sizeof(err), "--upstream-sni", "x", NULL), CONFIG_ERROR);
	assert_non_null(strstr(err, "--upstream-sni needs --upstream-tls"));
	config_cleanup(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_of_a_host_name_is_sent_as_sni),
		cmocka_unit_test(test_name_of_an_ip_literal_is_checked_as_an_address),
		cmocka_unit_test(test_upstream_sni_overrides_the_host),
		cmocka_unit_test(test_unix_socket_without_upstream_sni_is_an_error_naming_the_flag),
		cmocka_unit_test(test_name_that_does_not_fit_is_an_error),
		cmocka_unit_test(test_ctx_with_a_missing_ca_file_names_the_flag_and_file),
		cmocka_unit_test(test_ctx_with_a_ca_file_without_certificates_is_refused),
		cmocka_unit_test(test_ctx_with_a_key_not_matching_the_certificate_is_refused),
		cmocka_unit_test(test_ctx_with_a_client_certificate_file_without_certificates_is_refused),
		cmocka_unit_test(test_ctx_with_a_missing_client_key_names_the_flag_and_file),
		cmocka_unit_test(test_ctx_with_a_matching_client_certificate_is_built),
		cmocka_unit_test(test_server_is_verified_by_name_and_by_address),
		cmocka_unit_test(test_wrong_name_fails_with_hostname_mismatch),
		cmocka_unit_test(test_untrusted_server_fails_with_unable_to_get_local_issuer),
		cmocka_unit_test(test_session_is_resumed_for_the_same_name_only),
		cmocka_unit_test(test_failure_text_without_verification_error),
		cmocka_unit_test(test_flags_are_read_and_checked),
	};

	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
