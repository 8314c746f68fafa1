/*
 * Server TLS contexts (tls/context.c, tls/peer.c): loading certificates, keys,
 * client CAs and CRLs, and the policy the context enforces, checked by real
 * handshakes against a BoringSSL client over a socketpair.
 *
 * The test PKI is made once per run with the openssl command line tool in a
 * temporary directory, which is also the working directory of the tests, so
 * file names below are relative to it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/context.h"
#include "tls/io.h"
#include "tls/peer.h"

/* Runs one shell command inside the PKI directory; its output goes to a log
 * that is printed if the command fails. */
static int run(const char *fmt, ...)
{
	char cmd[1024], full[1200];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "(%s) >>pki.log 2>&1", cmd);
	rc = system(full);
	if (rc != 0) {
		fprintf(stderr, "# PKI command failed (%d): %s\n", rc, cmd);
		if (system("sed 's/^/# /' pki.log | tail -20 >&2") != 0)
			fprintf(stderr, "# (no log)\n");
		return 0;
	}
	return 1;
}

/* A minimal `openssl ca` setup in directory |name| for the CA whose
 * certificate and key are |name|.pem and |name|.key. */
static int make_ca_dir(const char *name)
{
	char path[128];
	FILE *f;

	if (!run("mkdir -p %s/new && : > %s/index.txt && echo 1000 > %s/serial && echo 1000 > %s/crlnumber",
	         name, name, name, name))
		return 0;
	snprintf(path, sizeof(path), "%s/ca.cnf", name);
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fprintf(f,
		"[ ca ]\ndefault_ca = ca_section\n"
		"[ ca_section ]\ndir = %s\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/new\n"
		"serial = $dir/serial\ncrlnumber = $dir/crlnumber\ndefault_md = sha256\n"
		"default_crl_days = 30\npolicy = policy_any\nunique_subject = no\nemail_in_dn = no\n"
		"[ policy_any ]\ncommonName = supplied\n"
		"[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = unused\n"
		"[ v3_ca ]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
		"subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
		"[ v3_server ]\nbasicConstraints = critical,CA:FALSE\n"
		"keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n"
		"subjectAltName = DNS:localhost\n"
		"[ v3_client ]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
		"extendedKeyUsage = clientAuth\n",
		name);
	return fclose(f) == 0;
}

static int ec_key(const char *name)
{
	return run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s.key", name);
}

static int self_signed_ca(const char *name, const char *cn)
{
	return make_ca_dir(name) && ec_key(name) &&
	       run("openssl req -x509 -new -config %s/ca.cnf -key %s.key -subj '/CN=%s' -days 30 "
	           "-extensions v3_ca -out %s.pem", name, name, cn, name);
}

/* Signs |subject|.csr (made from |key|.key) by CA |ca| into |out|.pem with the
 * extension section |ext|; |validity| is "-days N" or explicit dates. */
static int sign(const char *ca, const char *key, const char *cn, const char *out, const char *ext,
                const char *validity)
{
	return run("openssl req -new -config %s/ca.cnf -key %s.key -subj '/CN=%s' -out %s.csr", ca, key, cn, out) &&
	       run("openssl ca -batch -notext -config %s/ca.cnf -cert %s.pem -keyfile %s.key -extensions %s "
	           "-in %s.csr -out %s.pem %s", ca, ca, ca, ext, out, out, validity);
}

#define PAST "-startdate 20200101000000Z -enddate 20200201000000Z"
#define FUTURE "-startdate 20900101000000Z -enddate 20910101000000Z"

static int make_pki(void)
{
	return
		/* Server side: root -> intermediate -> leaf, in EC and RSA. */
		self_signed_ca("root", "Test Root") &&
		make_ca_dir("inter") && ec_key("inter") && sign("root", "inter", "Test Intermediate", "inter", "v3_ca", "-days 30") &&
		ec_key("leaf") && sign("inter", "leaf", "localhost", "leaf", "v3_server", "-days 30") &&
		run("cat leaf.pem inter.pem > fullchain.pem") &&
		run("openssl ec -in leaf.key -out leaf-sec1.key") &&
		run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key") &&
		run("openssl rsa -in rsa.key -traditional -out rsa-pkcs1.key") &&
		sign("inter", "rsa", "localhost", "rsa", "v3_server", "-days 30") &&
		run("cat rsa.pem inter.pem > rsa-fullchain.pem") &&
		ec_key("other") &&
		sign("inter", "leaf", "localhost", "expired", "v3_server", PAST) &&
		run("cat expired.pem inter.pem > expired-fullchain.pem") &&
		sign("inter", "leaf", "localhost", "future", "v3_server", FUTURE) &&
		run("cat future.pem inter.pem > future-fullchain.pem") &&
		run("cat inter.pem leaf.pem > reversed-chain.pem") &&
		run("echo 'this is not a certificate' > garbage.pem && : > empty.pem") &&
		/* Client side: a CA of its own; device-2 is revoked, device-3 expired. */
		self_signed_ca("clients", "Test Client CA") &&
		ec_key("device-1") && sign("clients", "device-1", "device-1", "device-1", "v3_client", "-days 30") &&
		ec_key("device-2") && sign("clients", "device-2", "device-2", "device-2", "v3_client", "-days 30") &&
		ec_key("device-3") && sign("clients", "device-3", "device-3", "device-3", "v3_client", PAST) &&
		run("openssl ca -batch -config clients/ca.cnf -cert clients.pem -keyfile clients.key -revoke device-2.pem") &&
		run("openssl ca -batch -config clients/ca.cnf -cert clients.pem -keyfile clients.key -gencrl -out crl.pem") &&
		/* A client certificate from a CA the server does not trust. */
		self_signed_ca("rogue", "Rogue CA") &&
		ec_key("rogue-1") && sign("rogue", "rogue-1", "rogue-1", "rogue-1", "v3_client", "-days 30");
}

static int group_setup(void **state)
{
	static char dir[64];

	signal(SIGPIPE, SIG_IGN);
	strcpy(dir, "/tmp/mqtls-test-tls-XXXXXX");
	if (mkdtemp(dir) == NULL || chdir(dir) != 0)
		return -1;
	*state = dir;
	return make_pki() ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	if (chdir("/") != 0 || *state == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (const char *)*state);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- loading ---------------------------------------------------------- */

static SSL_CTX *load(const char *cert, const char *key, const char *client_ca, const char *crl,
                     enum tls_client_cert mode, char *err, size_t errlen)
{
	struct tls_server_opts o = { cert, key, client_ca, crl, mode, NULL };

	err[0] = '\0';
	return tls_server_ctx_new(&o, err, errlen);
}

static void assert_load_fails(const char *cert, const char *key, const char *client_ca, const char *crl,
                              enum tls_client_cert mode, const char *want1, const char *want2)
{
	char err[512];
	SSL_CTX *ctx = load(cert, key, client_ca, crl, mode, err, sizeof(err));

	if (ctx != NULL) {
		SSL_CTX_free(ctx);
		fail_msg("loading %s / %s succeeded", cert, key);
	}
	if (strstr(err, want1) == NULL || (want2 && strstr(err, want2) == NULL))
		fail_msg("error \"%s\" should contain \"%s\"%s%s", err, want1, want2 ? " and " : "", want2 ? want2 : "");
	assert_null(strchr(err, '\n'));
	/* Nothing is left behind for the next caller to misreport. */
	assert_int_equal(ERR_peek_error(), 0);
}

static void assert_loads(const char *cert, const char *key, const char *client_ca, const char *crl,
                         enum tls_client_cert mode)
{
	char err[512];
	SSL_CTX *ctx = load(cert, key, client_ca, crl, mode, err, sizeof(err));

	if (ctx == NULL)
		fail_msg("loading %s / %s failed: %s", cert, key, err);
	SSL_CTX_free(ctx);
}

static void test_fullchain_with_intermediate_and_pkcs8_key_loads(void **state)
{
	assert_loads("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	assert_loads("leaf.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
}

static void test_sec1_ec_key_loads(void **state)
{
	assert_loads("fullchain.pem", "leaf-sec1.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
}

static void test_rsa_keys_in_pkcs8_and_pkcs1_load(void **state)
{
	assert_loads("rsa-fullchain.pem", "rsa.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	assert_loads("rsa-fullchain.pem", "rsa-pkcs1.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
}

static void test_missing_cert_file_is_refused_naming_the_file(void **state)
{
	assert_load_fails("no-such-cert.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert no-such-cert.pem", "No such file");
}

static void test_missing_key_file_is_refused_naming_the_file(void **state)
{
	assert_load_fails("fullchain.pem", "no-such-key.pem", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key no-such-key.pem", "No such file");
}

static void test_key_of_another_ec_key_pair_does_not_match(void **state)
{
	assert_load_fails("fullchain.pem", "other.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key other.key", "does not match");
}

static void test_key_of_another_type_does_not_match(void **state)
{
	assert_load_fails("fullchain.pem", "rsa.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key rsa.key", "does not match");
	assert_load_fails("rsa-fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key leaf.key", "does not match");
}

static void test_chain_with_intermediate_first_is_refused(void **state)
{
	/* The first certificate is taken as the leaf; BoringSSL already refuses
	 * a CA certificate there (its key usage does not allow signing). */
	assert_load_fails("reversed-chain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert reversed-chain.pem", NULL);
}

static void test_expired_leaf_is_refused(void **state)
{
	assert_load_fails("expired-fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert expired-fullchain.pem", "expired");
}

static void test_leaf_not_yet_valid_is_refused(void **state)
{
	assert_load_fails("future-fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert future-fullchain.pem", "not yet valid");
}

static void test_garbage_or_empty_cert_file_is_refused(void **state)
{
	assert_load_fails("garbage.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert garbage.pem", "not a PEM certificate chain");
	assert_load_fails("empty.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--cert empty.pem", "not a PEM certificate chain");
}

static void test_garbage_key_or_certificate_as_key_is_refused(void **state)
{
	assert_load_fails("fullchain.pem", "garbage.pem", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key garbage.pem", "not a usable PEM private key");
	assert_load_fails("fullchain.pem", "leaf.pem", NULL, NULL, TLS_CLIENT_CERT_NONE,
	                  "--key leaf.pem", "not a usable PEM private key");
}

static void test_client_ca_and_crl_load(void **state)
{
	assert_loads("fullchain.pem", "leaf.key", "clients.pem", NULL, TLS_CLIENT_CERT_REQUIRED);
	assert_loads("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_REQUIRED);
	assert_loads("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_OPTIONAL);
}

static void test_missing_or_garbage_client_ca_is_refused(void **state)
{
	assert_load_fails("fullchain.pem", "leaf.key", "no-such-ca.pem", NULL, TLS_CLIENT_CERT_REQUIRED,
	                  "--client-ca no-such-ca.pem", "No such file");
	assert_load_fails("fullchain.pem", "leaf.key", "garbage.pem", NULL, TLS_CLIENT_CERT_REQUIRED,
	                  "--client-ca garbage.pem", "no usable CA certificate");
}

static void test_crl_file_without_a_crl_is_refused(void **state)
{
	assert_load_fails("fullchain.pem", "leaf.key", "clients.pem", "clients.pem", TLS_CLIENT_CERT_REQUIRED,
	                  "--crl clients.pem", "no PEM CRL");
	assert_load_fails("fullchain.pem", "leaf.key", "clients.pem", "garbage.pem", TLS_CLIENT_CERT_REQUIRED,
	                  "--crl garbage.pem", "no PEM CRL");
}

static void test_missing_crl_file_is_refused_naming_the_file(void **state)
{
	assert_load_fails("fullchain.pem", "leaf.key", "clients.pem", "no-such-crl.pem", TLS_CLIENT_CERT_REQUIRED,
	                  "--crl no-such-crl.pem", NULL);
}

/* What the "certificate" log line says, against openssl's own reading. */
static void test_cert_info_gives_the_leaf_subject_serial_and_expiry(void **state)
{
	struct tls_cert_info ci;
	char err[512], serial[128] = "", end[64] = "";
	SSL_CTX *ctx = load("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE, err, sizeof(err));
	FILE *f;

	assert_non_null(ctx);
	assert_true(run("openssl x509 -noout -serial -in leaf.pem | cut -d= -f2 > leaf.serial"));
	assert_true(run("date -u -d \"$(openssl x509 -noout -enddate -in leaf.pem | cut -d= -f2)\" "
	                "+%%s > leaf.end"));
	assert_non_null(f = fopen("leaf.serial", "r"));
	assert_non_null(fgets(serial, sizeof(serial), f));
	fclose(f);
	serial[strcspn(serial, "\n")] = '\0';
	assert_non_null(f = fopen("leaf.end", "r"));
	assert_non_null(fgets(end, sizeof(end), f));
	fclose(f);

	assert_int_equal(tls_server_ctx_cert_info(ctx, &ci), 1);
	assert_string_equal(ci.subject, "CN=localhost");
	assert_string_equal(ci.serial, serial);
	assert_int_equal(ci.not_after, strtoll(end, NULL, 10));
	assert_int_equal(strlen(ci.not_after_text), 20);
	assert_int_equal(ci.not_after_text[19], 'Z');
	SSL_CTX_free(ctx);
}

static void test_error_is_truncated_to_the_buffer_given(void **state)
{
	char err[16];
	SSL_CTX *ctx;

	memset(err, 'Z', sizeof(err));
	ctx = load("no-such-cert.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE, err, 12);
	assert_null(ctx);
	assert_int_equal(strlen(err), 11);
	assert_int_equal(err[12], 'Z');
}

/* ---- policy, by handshake ------------------------------------------------ */

struct client_opts {
	uint16_t min_version, max_version;   /* 0: BoringSSL's defaults */
	const char *ciphers;                 /* TLS 1.2 cipher list; NULL: default */
	const char *curves;                  /* NULL: default */
	const char *alpn;                    /* comma-separated protocol names; NULL: none */
	const char *cert;                    /* name of a client cert/key pair; NULL: none */
};

struct outcome {
	enum tls_io server;        /* the last tls_handshake result */
	int client_ok;
	uint16_t version;
	char cipher[64];
	char alpn[32];             /* what the server selected, "" for none */
	char error[256];           /* the server's TLS error when it failed */
	struct tls_peer peer;      /* filled by the server's verify callback */
};

static void set_alpn(SSL_CTX *ctx, const char *list)
{
	uint8_t wire[64];
	size_t n = 0;
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");

		assert_true(n + 1 + len <= sizeof(wire));
		wire[n++] = (uint8_t)len;
		memcpy(wire + n, p, len);
		n += len;
		p += len + (p[len] == ',');
	}
	assert_int_equal(SSL_CTX_set_alpn_protos(ctx, wire, n), 0);   /* 0 is success here */
}

static SSL_CTX *client_ctx(const struct client_opts *co)
{
	SSL_CTX *c = SSL_CTX_new(TLS_method());
	char name[64];

	assert_non_null(c);
	if (co->min_version)
		assert_int_equal(SSL_CTX_set_min_proto_version(c, co->min_version), 1);
	if (co->max_version)
		assert_int_equal(SSL_CTX_set_max_proto_version(c, co->max_version), 1);
	if (co->ciphers)
		assert_int_equal(SSL_CTX_set_strict_cipher_list(c, co->ciphers), 1);
	if (co->curves)
		assert_int_equal(SSL_CTX_set1_curves_list(c, co->curves), 1);
	if (co->alpn)
		set_alpn(c, co->alpn);
	if (co->cert) {
		snprintf(name, sizeof(name), "%s.pem", co->cert);
		assert_int_equal(SSL_CTX_use_certificate_file(c, name, SSL_FILETYPE_PEM), 1);
		snprintf(name, sizeof(name), "%s.key", co->cert);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(c, name, SSL_FILETYPE_PEM), 1);
	}
	/* The client trusts only the root: the server must send its intermediate. */
	assert_int_equal(SSL_CTX_load_verify_locations(c, "root.pem", NULL), 1);
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return c;
}

static int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/* Runs a handshake between a server SSL from |sctx| and a client configured
 * by |co|, stepping both sides in turn until each has finished or failed. */
static void handshake(SSL_CTX *sctx, const struct client_opts *co, struct outcome *out)
{
	SSL_CTX *cctx = client_ctx(co);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	int sv[2], cdone = 0, sdone = 0;

	memset(out, 0, sizeof(*out));
	out->server = TLS_IO_WANT_READ;
	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_true(set_nonblocking(sv[0]) && set_nonblocking(sv[1]));
	assert_int_equal(SSL_set_fd(s, sv[0]), 1);
	assert_int_equal(SSL_set_fd(c, sv[1]), 1);
	out->peer.want_identity = TLS_ID_CN;
	assert_int_equal(tls_peer_attach(s, &out->peer), 1);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set_tlsext_host_name(c, "localhost"), 1);

	for (int i = 0; i < 64 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(c);

			if (r == 1) {
				cdone = 1;
				out->client_ok = 1;
			} else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
			           SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE) {
				cdone = 1;
			}
		}
		ERR_clear_error();
		if (!sdone) {
			out->server = tls_handshake(s);
			sdone = out->server != TLS_IO_WANT_READ && out->server != TLS_IO_WANT_WRITE;
			if (out->server != TLS_IO_OK && sdone)
				tls_last_error(out->error, sizeof(out->error));
		}
	}
	if (out->server == TLS_IO_OK) {
		const uint8_t *p;
		unsigned len;

		out->version = (uint16_t)SSL_version(s);
		snprintf(out->cipher, sizeof(out->cipher), "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(s)));
		SSL_get0_alpn_selected(s, &p, &len);
		snprintf(out->alpn, sizeof(out->alpn), "%.*s", (int)len, (const char *)p);
	}
	ERR_clear_error();
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
}

static SSL_CTX *server(const char *cert, const char *key, const char *client_ca, const char *crl,
                       enum tls_client_cert mode)
{
	char err[512];
	SSL_CTX *ctx = load(cert, key, client_ca, crl, mode, err, sizeof(err));

	if (ctx == NULL)
		fail_msg("server context: %s", err);
	return ctx;
}

static void assert_handshake_ok(struct outcome *o)
{
	if (o->server != TLS_IO_OK || !o->client_ok)
		fail_msg("handshake failed: server %d, client %d, verify error %s", o->server, o->client_ok,
		         o->peer.verify_error ? o->peer.verify_error : "none");
}

/* The server gives up with a TLS error that names |reason|. */
static void assert_handshake_refused(struct outcome *o, const char *reason)
{
	if (o->server != TLS_IO_ERROR)
		fail_msg("server handshake ended with %d, expected TLS_IO_ERROR (%d)", o->server, TLS_IO_ERROR);
	if (strstr(o->error, reason) == NULL)
		fail_msg("server error \"%s\", expected \"%s\"", o->error, reason);
}

static void test_tls13_is_negotiated_by_default(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts co = { 0 };
	struct outcome o;

	handshake(ctx, &co, &o);
	assert_handshake_ok(&o);
	assert_int_equal(o.version, TLS1_3_VERSION);
	SSL_CTX_free(ctx);
}

static void test_tls12_client_gets_an_ecdhe_aead_suite(void **state)
{
	static const char *const certs[][2] = { { "fullchain.pem", "leaf.key" },
	                                        { "rsa-fullchain.pem", "rsa-pkcs1.key" } };

	for (size_t i = 0; i < 2; i++) {
		SSL_CTX *ctx = server(certs[i][0], certs[i][1], NULL, NULL, TLS_CLIENT_CERT_NONE);
		struct client_opts co = { .max_version = TLS1_2_VERSION };
		struct outcome o;

		handshake(ctx, &co, &o);
		assert_handshake_ok(&o);
		assert_int_equal(o.version, TLS1_2_VERSION);
		assert_non_null(strstr(o.cipher, "ECDHE-"));
		assert_true(strstr(o.cipher, "GCM") != NULL || strstr(o.cipher, "CHACHA20-POLY1305") != NULL);
		SSL_CTX_free(ctx);
	}
}

static void test_tls13_with_rsa_certificate_works(void **state)
{
	SSL_CTX *ctx = server("rsa-fullchain.pem", "rsa.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts co = { 0 };
	struct outcome o;

	handshake(ctx, &co, &o);
	assert_handshake_ok(&o);
	assert_int_equal(o.version, TLS1_3_VERSION);
	SSL_CTX_free(ctx);
}

static void test_tls11_client_is_refused(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts co = { .min_version = TLS1_VERSION, .max_version = TLS1_1_VERSION };
	struct outcome o;

	handshake(ctx, &co, &o);
	assert_handshake_refused(&o, "UNSUPPORTED_PROTOCOL");
	assert_false(o.client_ok);
	SSL_CTX_free(ctx);
}

static void test_tls12_client_offering_only_suites_without_forward_secrecy_is_refused(void **state)
{
	static const char *const suites[] = { "AES128-GCM-SHA256", "AES256-GCM-SHA384" };
	SSL_CTX *ctx = server("rsa-fullchain.pem", "rsa.key", NULL, NULL, TLS_CLIENT_CERT_NONE);

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		struct client_opts co = { .max_version = TLS1_2_VERSION, .ciphers = suites[i] };
		struct outcome o;

		handshake(ctx, &co, &o);
		assert_handshake_refused(&o, "NO_SHARED_CIPHER");
		assert_false(o.client_ok);
	}
	SSL_CTX_free(ctx);
}

static void test_tls12_client_offering_only_cbc_suites_is_refused(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts co = { .max_version = TLS1_2_VERSION, .ciphers = "ECDHE-ECDSA-AES128-SHA" };
	struct outcome o;

	handshake(ctx, &co, &o);
	assert_handshake_refused(&o, "NO_SHARED_CIPHER");
	SSL_CTX_free(ctx);
}

static void test_x25519_and_p256_are_accepted_other_groups_refused(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts x = { .curves = "X25519" }, p = { .curves = "P-256" }, q = { .curves = "P-384" };
	struct outcome o;

	handshake(ctx, &x, &o);
	assert_handshake_ok(&o);
	handshake(ctx, &p, &o);
	assert_handshake_ok(&o);
	handshake(ctx, &q, &o);
	assert_handshake_refused(&o, "NO_SHARED_GROUP");
	SSL_CTX_free(ctx);
}

static void test_alpn_mqtt_is_selected_when_offered(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts only = { .alpn = "mqtt" }, among = { .alpn = "h2,http/1.1,mqtt" };
	struct client_opts v12 = { .max_version = TLS1_2_VERSION, .alpn = "x-other,mqtt" };
	struct outcome o;

	handshake(ctx, &only, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "mqtt");
	handshake(ctx, &among, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "mqtt");
	handshake(ctx, &v12, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "mqtt");
	SSL_CTX_free(ctx);
}

static void test_alpn_is_absent_when_client_offers_only_http(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", NULL, NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts http = { .alpn = "http/1.1" }, none = { 0 }, near = { .alpn = "mqt,mqttt" };
	struct outcome o;

	handshake(ctx, &http, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "");
	handshake(ctx, &none, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "");
	handshake(ctx, &near, &o);
	assert_handshake_ok(&o);
	assert_string_equal(o.alpn, "");
	SSL_CTX_free(ctx);
}

/* ---- client certificates ------------------------------------------------ */

static const uint16_t versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };

static void test_required_client_cert_refuses_a_client_without_one(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_REQUIRED);

	for (size_t i = 0; i < 2; i++) {
		struct client_opts co = { .max_version = versions[i] };
		struct outcome o;

		handshake(ctx, &co, &o);
		assert_handshake_refused(&o, "PEER_DID_NOT_RETURN_A_CERTIFICATE");
		assert_null(o.peer.identity);
		tls_peer_cleanup(&o.peer);
	}
	SSL_CTX_free(ctx);
}

static void test_required_client_cert_accepts_a_good_one_and_copies_its_cn(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_REQUIRED);

	for (size_t i = 0; i < 2; i++) {
		struct client_opts co = { .max_version = versions[i], .cert = "device-1" };
		struct outcome o;

		handshake(ctx, &co, &o);
		assert_handshake_ok(&o);
		assert_int_equal(o.version, versions[i]);
		assert_null(o.peer.verify_error);
		assert_non_null(o.peer.identity);
		assert_string_equal(o.peer.identity, "device-1");
		tls_peer_cleanup(&o.peer);
		assert_null(o.peer.identity);
	}
	SSL_CTX_free(ctx);
}

static void test_optional_client_cert_accepts_a_client_without_one(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", NULL, TLS_CLIENT_CERT_OPTIONAL);
	struct client_opts without = { 0 }, with = { .cert = "device-1" };
	struct outcome o;

	handshake(ctx, &without, &o);
	assert_handshake_ok(&o);
	assert_null(o.peer.identity);
	assert_null(o.peer.verify_error);
	tls_peer_cleanup(&o.peer);

	handshake(ctx, &with, &o);
	assert_handshake_ok(&o);
	assert_non_null(o.peer.identity);
	assert_string_equal(o.peer.identity, "device-1");
	tls_peer_cleanup(&o.peer);
	SSL_CTX_free(ctx);
}

static void assert_client_cert_refused(SSL_CTX *ctx, const char *cert, const char *reason)
{
	for (size_t i = 0; i < 2; i++) {
		struct client_opts co = { .max_version = versions[i], .cert = cert };
		struct outcome o;

		handshake(ctx, &co, &o);
		assert_handshake_refused(&o, "CERTIFICATE_VERIFY_FAILED");
		if (o.peer.verify_error == NULL || strstr(o.peer.verify_error, reason) == NULL)
			fail_msg("%s over %04x: verify error \"%s\", expected \"%s\"", cert, versions[i],
			         o.peer.verify_error ? o.peer.verify_error : "(none)", reason);
		assert_int_equal(o.peer.verify_depth, 0);
		assert_null(o.peer.identity);
		tls_peer_cleanup(&o.peer);
	}
}

static void test_revoked_client_cert_is_refused_as_revoked(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_REQUIRED);

	assert_client_cert_refused(ctx, "device-2", "revoked");
	SSL_CTX_free(ctx);
}

static void test_expired_client_cert_is_refused_as_expired(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_REQUIRED);

	assert_client_cert_refused(ctx, "device-3", "expired");
	SSL_CTX_free(ctx);
}

static void test_client_cert_from_an_untrusted_ca_is_refused(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", NULL, TLS_CLIENT_CERT_REQUIRED);

	assert_client_cert_refused(ctx, "rogue-1", "issuer");
	SSL_CTX_free(ctx);
}

static void test_optional_mode_still_refuses_a_bad_certificate_that_is_sent(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", "crl.pem", TLS_CLIENT_CERT_OPTIONAL);

	assert_client_cert_refused(ctx, "device-2", "revoked");
	assert_client_cert_refused(ctx, "device-3", "expired");
	SSL_CTX_free(ctx);
}

static void test_no_client_cert_mode_does_not_ask_for_one(void **state)
{
	SSL_CTX *ctx = server("fullchain.pem", "leaf.key", "clients.pem", NULL, TLS_CLIENT_CERT_NONE);
	struct client_opts co = { .cert = "device-3" };
	struct outcome o;

	/* Even an expired certificate does not matter when none is requested. */
	handshake(ctx, &co, &o);
	assert_handshake_ok(&o);
	assert_null(o.peer.identity);
	assert_null(o.peer.verify_error);
	SSL_CTX_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fullchain_with_intermediate_and_pkcs8_key_loads),
		cmocka_unit_test(test_sec1_ec_key_loads),
		cmocka_unit_test(test_rsa_keys_in_pkcs8_and_pkcs1_load),
		cmocka_unit_test(test_missing_cert_file_is_refused_naming_the_file),
		cmocka_unit_test(test_missing_key_file_is_refused_naming_the_file),
		cmocka_unit_test(test_key_of_another_ec_key_pair_does_not_match),
		cmocka_unit_test(test_key_of_another_type_does_not_match),
		cmocka_unit_test(test_chain_with_intermediate_first_is_refused),
		cmocka_unit_test(test_expired_leaf_is_refused),
		cmocka_unit_test(test_leaf_not_yet_valid_is_refused),
		cmocka_unit_test(test_garbage_or_empty_cert_file_is_refused),
		cmocka_unit_test(test_garbage_key_or_certificate_as_key_is_refused),
		cmocka_unit_test(test_client_ca_and_crl_load),
		cmocka_unit_test(test_missing_or_garbage_client_ca_is_refused),
		cmocka_unit_test(test_crl_file_without_a_crl_is_refused),
		cmocka_unit_test(test_missing_crl_file_is_refused_naming_the_file),
		cmocka_unit_test(test_error_is_truncated_to_the_buffer_given),
		cmocka_unit_test(test_cert_info_gives_the_leaf_subject_serial_and_expiry),
		cmocka_unit_test(test_tls13_is_negotiated_by_default),
		cmocka_unit_test(test_tls12_client_gets_an_ecdhe_aead_suite),
		cmocka_unit_test(test_tls13_with_rsa_certificate_works),
		cmocka_unit_test(test_tls11_client_is_refused),
		cmocka_unit_test(test_tls12_client_offering_only_suites_without_forward_secrecy_is_refused),
		cmocka_unit_test(test_tls12_client_offering_only_cbc_suites_is_refused),
		cmocka_unit_test(test_x25519_and_p256_are_accepted_other_groups_refused),
		cmocka_unit_test(test_alpn_mqtt_is_selected_when_offered),
		cmocka_unit_test(test_alpn_is_absent_when_client_offers_only_http),
		cmocka_unit_test(test_required_client_cert_refuses_a_client_without_one),
		cmocka_unit_test(test_required_client_cert_accepts_a_good_one_and_copies_its_cn),
		cmocka_unit_test(test_optional_client_cert_accepts_a_client_without_one),
		cmocka_unit_test(test_revoked_client_cert_is_refused_as_revoked),
		cmocka_unit_test(test_expired_client_cert_is_refused_as_expired),
		cmocka_unit_test(test_client_cert_from_an_untrusted_ca_is_refused),
		cmocka_unit_test(test_optional_mode_still_refuses_a_bad_certificate_that_is_sent),
		cmocka_unit_test(test_no_client_cert_mode_does_not_ask_for_one),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
