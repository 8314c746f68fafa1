/*
 * Certificate pairs chosen by SNI (tls/sni_match.c, tls/sni.c): the name
 * rules, what a ClientHello says the client can verify, the choice among
 * pairs, and real handshakes in memory against a set of contexts built from
 * certificates made here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/sni.h"
#include "tls/sni_match.h"

/* ---- names ------------------------------------------------------------------ */

static void test_exact_names_match_without_regard_to_case(void **state)
{
	(void)state;
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "mqtt.example.com"), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("MQTT.Example.COM", "mqtt.example.com"), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "MQTT.EXAMPLE.com"), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("localhost", "localhost"), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "mqtt.example.org"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "mqtt.example.co"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("mqtt.example.co", "mqtt.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a.mqtt.example.com", "mqtt.example.com"), TLS_SNI_NONE);
}

static void test_a_wildcard_covers_exactly_one_left_most_label(void **state)
{
	(void)state;
	assert_int_equal(tls_sni_name_match("*.example.com", "a.example.com"), TLS_SNI_WILDCARD);
	assert_int_equal(tls_sni_name_match("*.example.com", "Device-7.EXAMPLE.com"), TLS_SNI_WILDCARD);
	assert_int_equal(tls_sni_name_match("*.Example.Com", "x_1.example.com"), TLS_SNI_WILDCARD);
	/* Not the bare domain, not two labels, not an empty one. */
	assert_int_equal(tls_sni_name_match("*.example.com", "example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.example.com", "a.b.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.example.com", ".example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.example.com", "a.example.org"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.example.com", "aexample.com"), TLS_SNI_NONE);
	/* Only a whole left-most "*" label over at least two more labels. */
	assert_int_equal(tls_sni_name_match("*.com", "example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*", "localhost"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("f*.example.com", "foo.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a.*.example.com", "a.b.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("**.example.com", "a.example.com"), TLS_SNI_NONE);
	/* A client cannot send a wildcard to match one. */
	assert_int_equal(tls_sni_name_match("*.example.com", "*.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a.example.com", "*.example.com"), TLS_SNI_NONE);
}

static void test_one_trailing_dot_is_ignored_on_either_side(void **state)
{
	(void)state;
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "mqtt.example.com."), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("mqtt.example.com.", "mqtt.example.com"), TLS_SNI_EXACT);
	assert_int_equal(tls_sni_name_match("*.example.com", "a.example.com."), TLS_SNI_WILDCARD);
	assert_int_equal(tls_sni_name_match("*.example.com.", "a.example.com"), TLS_SNI_WILDCARD);
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "mqtt.example.com.."), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("mqtt.example.com", "."), TLS_SNI_NONE);
}

static void test_names_that_are_not_host_names_match_nothing(void **state)
{
	char longest[TLS_SNI_NAME_MAX + 2], label64[80];

	(void)state;
	/* Raw UTF-8 (an IDN not in its xn-- form), even against itself. */
	assert_int_equal(tls_sni_name_match("\xc3\xa9xample.com", "\xc3\xa9xample.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.example.com", "\xc3\xa9.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("*.\xc3\xa9xample.com", "a.\xc3\xa9xample.com"), TLS_SNI_NONE);
	/* The A-label form is an ordinary name. */
	assert_int_equal(tls_sni_name_match("xn--xample-9ua.com", "XN--XAMPLE-9UA.com"), TLS_SNI_EXACT);
	/* Empty labels, spaces, control bytes, other punctuation. */
	assert_int_equal(tls_sni_name_match("a..example.com", "a..example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match(".example.com", ".example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a example.com", "a example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a\x01.example.com", "a\x01.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("a/b.example.com", "a/b.example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("", ""), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("example.com", ""), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match(NULL, "example.com"), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match("example.com", NULL), TLS_SNI_NONE);
	/* Longer than a host name may be, or a label over 63 bytes. */
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	for (size_t i = 50; i < sizeof(longest) - 1; i += 50)
		longest[i] = '.';
	assert_int_equal(tls_sni_name_match(longest, longest), TLS_SNI_NONE);
	longest[TLS_SNI_NAME_MAX] = '\0';
	assert_int_equal(tls_sni_name_match(longest, longest), TLS_SNI_EXACT);
	memset(label64, 'b', 64);
	strcpy(label64 + 64, ".example.com");
	assert_int_equal(tls_sni_name_match(label64, label64), TLS_SNI_NONE);
	assert_int_equal(tls_sni_name_match(label64 + 1, label64 + 1), TLS_SNI_EXACT);
}

/* ---- what the client can verify ------------------------------------------ */

/* Extension bodies as a ClientHello carries them. */
static const uint8_t v13[] = { 4, 0x03, 0x04, 0x03, 0x03 };
static const uint8_t v12[] = { 2, 0x03, 0x03 };
static const uint8_t algs_all[] = { 0, 10, 0x04, 0x03, 0x08, 0x04, 0x05, 0x03, 0x04, 0x01, 0x08, 0x07 };
static const uint8_t algs_pss[] = { 0, 2, 0x08, 0x04 };
static const uint8_t algs_p384[] = { 0, 2, 0x05, 0x03 };
static const uint8_t algs_pkcs1[] = { 0, 4, 0x04, 0x01, 0x05, 0x01 };
static const uint8_t suites_all[] = { 0x13, 0x01, 0xc0, 0x2b, 0xc0, 0x2f, 0xcc, 0xa9, 0xcc, 0xa8 };
static const uint8_t suites_rsa[] = { 0xc0, 0x2f, 0xc0, 0x30 };
static const uint8_t suites_ecdsa[] = { 0xcc, 0xa9 };

static unsigned caps(const uint8_t *suites, size_t sl, const uint8_t *vers, size_t vl, const uint8_t *algs,
                     size_t al)
{
	struct tls_hello_algs h = { suites, sl, vers, vl, algs, al };

	return tls_hello_caps(&h);
}

#define CAPS(s, v, a) caps((s), sizeof(s), (v), sizeof(v), (a), sizeof(a))

static void test_tls13_capabilities_come_from_the_signature_schemes(void **state)
{
	(void)state;
	assert_int_equal(CAPS(suites_all, v13, algs_all), TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384 | TLS_CAN_RSA);
	assert_int_equal(CAPS(suites_all, v13, algs_pss), TLS_CAN_RSA);
	assert_int_equal(CAPS(suites_all, v13, algs_p384), TLS_CAN_ECDSA_P384);
	/* PKCS#1 signatures are not allowed in TLS 1.3 handshakes. */
	assert_int_equal(CAPS(suites_all, v13, algs_pkcs1), 0);
	/* TLS 1.3 without the extension cannot succeed at all. */
	assert_int_equal(caps(suites_all, sizeof(suites_all), v13, sizeof(v13), NULL, 0), 0);
}

static void test_tls12_capabilities_need_a_suite_of_the_type(void **state)
{
	(void)state;
	assert_int_equal(CAPS(suites_rsa, v12, algs_all), TLS_CAN_RSA);
	assert_int_equal(CAPS(suites_ecdsa, v12, algs_all),
	                 TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384 | TLS_CAN_ECDSA_P521);
	assert_int_equal(CAPS(suites_all, v12, algs_pkcs1), TLS_CAN_RSA);
	assert_int_equal(CAPS(suites_all, v12, algs_pss), TLS_CAN_RSA);
	/* No supported_versions extension at all: a TLS 1.2 client. */
	assert_int_equal(caps(suites_rsa, sizeof(suites_rsa), NULL, 0, algs_all, sizeof(algs_all)), TLS_CAN_RSA);
	/* No signature_algorithms: SHA-1 of either type (RFC 5246 7.4.1.4.1). */
	assert_int_equal(caps(suites_all, sizeof(suites_all), v12, sizeof(v12), NULL, 0),
	                 TLS_CAN_RSA | TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384 | TLS_CAN_ECDSA_P521);
}

static void test_malformed_extensions_offer_nothing(void **state)
{
	static const uint8_t short_algs[] = { 0, 9, 0x04, 0x03 };
	static const uint8_t odd_algs[] = { 0, 3, 0x04, 0x03, 0x08 };
	static const uint8_t trailing_algs[] = { 0, 2, 0x04, 0x03, 0x00 };
	static const uint8_t short_vers[] = { 6, 0x03, 0x04 };
	static const uint8_t empty[] = { 0 };

	(void)state;
	assert_int_equal(CAPS(suites_all, v13, short_algs), 0);
	assert_int_equal(CAPS(suites_all, v13, odd_algs), 0);
	assert_int_equal(CAPS(suites_all, v13, trailing_algs), 0);
	/* Unreadable versions: TLS 1.2 rules, where suites and schemes still count. */
	assert_int_equal(CAPS(suites_rsa, short_vers, algs_pss), TLS_CAN_RSA);
	assert_int_equal(caps(suites_all, sizeof(suites_all), empty, 0, empty, 0), 0);
	assert_int_equal(caps(suites_all, 3, NULL, 0, NULL, 0), 0);   /* half a suite */
}

/* ---- the choice ------------------------------------------------------------ */

static const char *const n_default[] = { "mqtt.example.com", "broker.example.com" };
static const char *const n_default_again[] = { "BROKER.example.com", "mqtt.example.com." };
static const char *const n_devices[] = { "*.devices.example.com" };
static const char *const n_one_device[] = { "a.devices.example.com" };

/* 0: ECDSA default; 1: RSA with the same names; 2: ECDSA wildcard;
 * 3: RSA exact name under the wildcard; 4: RSA wildcard. */
static struct tls_sni_cert pairs[] = {
	{ n_default, 2, TLS_KEY_ECDSA_P256, 1 },
	{ n_default_again, 2, TLS_KEY_RSA, 0 },
	{ n_devices, 1, TLS_KEY_ECDSA_P384, 0 },
	{ n_one_device, 1, TLS_KEY_RSA, 0 },
	{ n_devices, 1, TLS_KEY_RSA, 0 },
};
#define N_PAIRS (sizeof(pairs) / sizeof(pairs[0]))

static const unsigned both = TLS_CAN_RSA | TLS_CAN_ECDSA_P256 | TLS_CAN_ECDSA_P384;

static void test_same_names_are_a_set_in_any_case(void **state)
{
	(void)state;
	/* A trailing dot makes a different string: the set compare is exact
	 * but for case. */
	assert_int_equal(tls_sni_same_names(&pairs[0], &pairs[1]), 0);
	{
		static const char *const reordered[] = { "Broker.Example.com", "MQTT.example.com" };
		struct tls_sni_cert c = { reordered, 2, TLS_KEY_RSA, 0 };

		assert_int_equal(tls_sni_same_names(&pairs[0], &c), 1);
		c.n_names = 1;
		assert_int_equal(tls_sni_same_names(&pairs[0], &c), 0);
	}
	assert_int_equal(tls_sni_same_names(&pairs[2], &pairs[4]), 1);
}

static void test_choice_by_name_exact_before_wildcard(void **state)
{
	(void)state;
	pairs[1].serves_default = 1;
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "mqtt.example.com", both), 0);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "x.devices.example.com", both), 2);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "X.Devices.Example.Com.", both), 2);
	/* An exact name beats a wildcard even when the wildcard is ECDSA. */
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "a.devices.example.com", both), 3);
}

static void test_choice_by_what_the_client_can_verify(void **state)
{
	(void)state;
	pairs[1].serves_default = 1;
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "broker.example.com", TLS_CAN_RSA), 1);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "x.devices.example.com", TLS_CAN_RSA), 4);
	/* ECDSA on P-384 needs the P-384 scheme in TLS 1.3. */
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "x.devices.example.com", TLS_CAN_ECDSA_P256), 2);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "x.devices.example.com",
	                                TLS_CAN_ECDSA_P256 | TLS_CAN_RSA), 4);
	/* Nothing it can verify: the first candidate, and the handshake fails. */
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "x.devices.example.com", 0), 2);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, NULL, 0), 0);
}

static void test_no_sni_or_an_unknown_name_gets_the_default_group(void **state)
{
	(void)state;
	pairs[1].serves_default = 1;
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, NULL, both), 0);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, NULL, TLS_CAN_RSA), 1);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "other.example.org", both), 0);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "other.example.org", TLS_CAN_RSA), 1);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "devices.example.com", TLS_CAN_RSA), 1);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "\xc3\xa9.devices.example.com", both), 0);
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, "", both), 0);
	/* Without another pair for its names, the default is the first pair
	 * even for a client that cannot verify it. */
	pairs[1].serves_default = 0;
	assert_int_equal(tls_sni_choose(pairs, N_PAIRS, NULL, TLS_CAN_RSA), 0);
	assert_int_equal(tls_sni_choose(pairs, 1, "x.devices.example.com", TLS_CAN_RSA), 0);
}

/* ---- real contexts and handshakes ------------------------------------------- */

struct certs {
	char dir[64];
};

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	return system(cmd) == 0;
}

/* Self-signed |name|.pem / |name|.key in |dir| with subject CN |cn| and the
 * SAN |san| (NULL: none). */
static int make_cert(const char *dir, const char *name, const char *newkey, const char *cn, const char *san)
{
	char ext[300] = "";

	if (san)
		snprintf(ext, sizeof(ext), "-addext 'subjectAltName=%s'", san);
	return run("openssl req -x509 -newkey %s -nodes -keyout %s/%s.key -out %s/%s.pem -subj '/CN=%s' "
	           "-days 30 %s", newkey, dir, name, dir, name, cn, ext);
}

#define EC "ec -pkeyopt ec_paramgen_curve:P-256"
#define RSA "rsa:2048"

static int setup_certs(void **state)
{
	struct certs *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/mqtls-test-sni-XXXXXX");
	if (mkdtemp(c->dir) == NULL ||
	    !make_cert(c->dir, "ec", EC, "default-ec", "DNS:mqtt.example.com,DNS:broker.example.com") ||
	    !make_cert(c->dir, "rsa", RSA, "default-rsa", "DNS:broker.example.com,DNS:MQTT.example.com") ||
	    !make_cert(c->dir, "wild", EC, "wild", "DNS:*.devices.example.com,IP:127.0.0.1") ||
	    !make_cert(c->dir, "cn", EC, "cn-only.example.com", NULL) ||
	    !make_cert(c->dir, "cn-and-san", EC, "cn-ignored.example.com", "DNS:san.example.com")) {
		fprintf(stderr, "# openssl failed in %s\n", c->dir);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown_certs(void **state)
{
	struct certs *c = *state;

	run("rm -rf %s", c->dir);
	free(c);
	return 0;
}

static SSL_CTX *build(const struct certs *c, const char *const *names, size_t n, char *err, size_t errlen)
{
	struct tls_server_opts o = { 0 };
	char certs[TLS_SNI_MAX_PAIRS][128], keys[TLS_SNI_MAX_PAIRS][128];
	const char *cp[TLS_SNI_MAX_PAIRS], *kp[TLS_SNI_MAX_PAIRS];

	for (size_t i = 0; i < n; i++) {
		snprintf(certs[i], sizeof(certs[i]), "%s/%s.pem", c->dir, names[i]);
		snprintf(keys[i], sizeof(keys[i]), "%s/%s.key", c->dir, names[i]);
		cp[i] = certs[i];
		kp[i] = keys[i];
	}
	return tls_server_ctx_set_new(&o, cp, kp, n, err, errlen);
}

/* One handshake in memory; returns the CN of the leaf the client got
 * (static), or "" when the handshake failed. */
static const char *handshake(SSL_CTX *server_ctx, const char *sni, const uint16_t *verify_algs, size_t n_algs,
                             int tls12_only)
{
	static char cn[128];
	SSL_CTX *cctx = SSL_CTX_new(TLS_method());
	SSL *client = SSL_new(cctx), *server = SSL_new(server_ctx);
	BIO *cb, *sb;
	X509 *leaf = NULL;
	int c_done = 0, s_done = 0;

	assert_non_null(client);
	assert_non_null(server);
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(client, cb, cb);
	SSL_set_bio(server, sb, sb);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	SSL_set_shed_handshake_config(server, 1);
	if (sni)
		assert_int_equal(SSL_set_tlsext_host_name(client, sni), 1);
	if (verify_algs)
		assert_int_equal(SSL_set_verify_algorithm_prefs(client, verify_algs, n_algs), 1);
	if (tls12_only)
		assert_int_equal(SSL_set_max_proto_version(client, TLS1_2_VERSION), 1);
	for (int round = 0; round < 20 && !(c_done && s_done); round++) {
		int rc = SSL_do_handshake(client), rs;

		if (rc == 1)
			c_done = 1;
		else if (SSL_get_error(client, rc) != SSL_ERROR_WANT_READ)
			break;
		rs = SSL_do_handshake(server);
		if (rs == 1)
			s_done = 1;
		else if (SSL_get_error(server, rs) != SSL_ERROR_WANT_READ)
			break;
	}
	cn[0] = '\0';
	if (c_done && s_done && (leaf = SSL_get_peer_certificate(client)) != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
	X509_free(leaf);
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	return cn;
}

static const uint16_t only_pss[] = { SSL_SIGN_RSA_PSS_RSAE_SHA256 };
static const uint16_t only_pkcs1[] = { SSL_SIGN_RSA_PKCS1_SHA256 };
static const uint16_t only_ecdsa[] = { SSL_SIGN_ECDSA_SECP256R1_SHA256 };

static void test_handshakes_get_the_pair_for_their_name_and_algorithms(void **state)
{
	static const char *const names[] = { "ec", "rsa", "wild", "cn", "cn-and-san" };
	char err[256];
	SSL_CTX *ctx = build(*state, names, 5, err, sizeof(err));

	if (ctx == NULL)
		fail_msg("%s", err);
	assert_string_equal(handshake(ctx, NULL, NULL, 0, 0), "default-ec");
	assert_string_equal(handshake(ctx, "unknown.example.org", NULL, 0, 0), "default-ec");
	assert_string_equal(handshake(ctx, "mqtt.example.com", NULL, 0, 0), "default-ec");
	assert_string_equal(handshake(ctx, "d1.devices.example.com", NULL, 0, 0), "wild");
	assert_string_equal(handshake(ctx, "a.b.devices.example.com", NULL, 0, 0), "default-ec");
	/* The CN counts only for a certificate without DNS names. */
	assert_string_equal(handshake(ctx, "cn-only.example.com", NULL, 0, 0), "cn-only.example.com");
	assert_string_equal(handshake(ctx, "cn-ignored.example.com", NULL, 0, 0), "default-ec");
	assert_string_equal(handshake(ctx, "san.example.com", NULL, 0, 0), "cn-ignored.example.com");
	/* RSA for a client that verifies only RSA, in 1.3 and in 1.2. */
	assert_string_equal(handshake(ctx, "broker.example.com", only_pss, 1, 0), "default-rsa");
	assert_string_equal(handshake(ctx, NULL, only_pss, 1, 0), "default-rsa");
	assert_string_equal(handshake(ctx, "mqtt.example.com", only_pkcs1, 1, 1), "default-rsa");
	assert_string_equal(handshake(ctx, "mqtt.example.com", only_ecdsa, 1, 1), "default-ec");
	/* The wildcard has no RSA twin: an RSA-only client gets it and fails. */
	assert_string_equal(handshake(ctx, "d1.devices.example.com", only_pss, 1, 0), "");
	SSL_CTX_free(ctx);
}

static void test_a_set_knows_its_pairs_and_files(void **state)
{
	static const char *const names[] = { "ec", "rsa" };
	const struct certs *c = *state;
	char err[256], want[128];
	const char *file;
	SSL_CTX *ctx = build(c, names, 2, err, sizeof(err)), *pair;

	if (ctx == NULL)
		fail_msg("%s", err);
	assert_int_equal(tls_server_ctx_pairs(ctx), 2);
	assert_ptr_equal(tls_server_ctx_pair(ctx, 0, &file), ctx);
	snprintf(want, sizeof(want), "%s/ec.pem", c->dir);
	assert_string_equal(file, want);
	pair = tls_server_ctx_pair(ctx, 1, &file);
	assert_ptr_not_equal(pair, ctx);
	assert_non_null(SSL_CTX_get0_certificate(pair));
	snprintf(want, sizeof(want), "%s/rsa.pem", c->dir);
	assert_string_equal(file, want);
	SSL_CTX_free(ctx);
}

static void test_a_set_describes_each_pair_for_the_log(void **state)
{
	static const char *const names[] = { "ec", "rsa", "cn" };
	char err[256], out[64], tiny[30];
	const char *key;
	SSL_CTX *ctx = build(*state, names, 3, err, sizeof(err)), *alone;

	if (ctx == NULL)
		fail_msg("%s", err);
	assert_string_equal(tls_server_ctx_pair_names(ctx, 0, out, sizeof(out), &key),
	                    "mqtt.example.com,broker.example.com");
	assert_string_equal(key, "ecdsa-p256");
	assert_string_equal(tls_server_ctx_pair_names(ctx, 1, out, sizeof(out), &key),
	                    "broker.example.com,MQTT.example.com");
	assert_string_equal(key, "rsa");
	assert_string_equal(tls_server_ctx_pair_names(ctx, 2, out, sizeof(out), &key), "cn-only.example.com");
	/* Cut where the next name does not fit, and said so. */
	assert_string_equal(tls_server_ctx_pair_names(ctx, 0, tiny, sizeof(tiny), &key), "mqtt.example.com,...");
	assert_string_equal(tls_server_ctx_pair_names(ctx, 0, tiny, 4, &key), "...");
	/* A context on its own: no names known. */
	alone = tls_server_ctx_pair(ctx, 1, &(const char *){ NULL });
	assert_string_equal(tls_server_ctx_pair_names(alone, 0, out, sizeof(out), &key), "");
	assert_string_equal(key, "unknown");
	SSL_CTX_free(ctx);
}

static void test_a_key_that_does_not_match_its_certificate_is_refused(void **state)
{
	const struct certs *c = *state;
	struct tls_server_opts o = { 0 };
	char ec[128], rsa[128], ec_key[128], rsa_key[128], err[512], want[512];
	const char *certs[2] = { ec, rsa }, *keys[2] = { ec_key, ec_key };

	snprintf(ec, sizeof(ec), "%s/ec.pem", c->dir);
	snprintf(rsa, sizeof(rsa), "%s/rsa.pem", c->dir);
	snprintf(ec_key, sizeof(ec_key), "%s/ec.key", c->dir);
	snprintf(rsa_key, sizeof(rsa_key), "%s/rsa.key", c->dir);
	assert_null(tls_server_ctx_set_new(&o, certs, keys, 2, err, sizeof(err)));
	snprintf(want, sizeof(want), "--key %s: does not match the certificate in %s", ec_key, rsa);
	assert_string_equal(err, want);
	assert_null(strchr(err, '\n'));
	keys[1] = rsa_key;
	assert_null(tls_server_ctx_set_new(&o, certs, keys, 0, err, sizeof(err)));
	assert_null(tls_server_ctx_set_new(&o, certs, keys, TLS_SNI_MAX_PAIRS + 1, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_names_match_without_regard_to_case),
		cmocka_unit_test(test_a_wildcard_covers_exactly_one_left_most_label),
		cmocka_unit_test(test_one_trailing_dot_is_ignored_on_either_side),
		cmocka_unit_test(test_names_that_are_not_host_names_match_nothing),
		cmocka_unit_test(test_tls13_capabilities_come_from_the_signature_schemes),
		cmocka_unit_test(test_tls12_capabilities_need_a_suite_of_the_type),
		cmocka_unit_test(test_malformed_extensions_offer_nothing),
		cmocka_unit_test(test_same_names_are_a_set_in_any_case),
		cmocka_unit_test(test_choice_by_name_exact_before_wildcard),
		cmocka_unit_test(test_choice_by_what_the_client_can_verify),
		cmocka_unit_test(test_no_sni_or_an_unknown_name_gets_the_default_group),
	};
	const struct CMUnitTest handshakes[] = {
		cmocka_unit_test(test_handshakes_get_the_pair_for_their_name_and_algorithms),
		cmocka_unit_test(test_a_set_knows_its_pairs_and_files),
		cmocka_unit_test(test_a_set_describes_each_pair_for_the_log),
		cmocka_unit_test(test_a_key_that_does_not_match_its_certificate_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL) |
	       cmocka_run_group_tests(handshakes, setup_certs, teardown_certs);
}
