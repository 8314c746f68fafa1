#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/context.h"
#include "tls/load_errors.h"
#include "tls/peer.h"
#include "tls/resume.h"
#include "tls/ticket_keys.h"

/*
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher,
 * nothing else. TLS 1.3 suites are all AEAD and not configurable in BoringSSL.
 */
static const char tls12_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Refuses to start with a leaf that is expired or not yet valid: a proxy
 * that starts anyway only fails later, on every client. */
static int check_validity(X509 *leaf, const char *path, char *err, size_t errlen)
{
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
		snprintf(err, errlen, "--cert %s: certificate has expired", path);
		return 0;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
		snprintf(err, errlen, "--cert %s: certificate is not yet valid", path);
		return 0;
	}
	return 1;
}

static int load_crls(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *bio = BIO_new_file(path, "r");
	X509_CRL *crl;
	int n = 0, ok = 0;

	if (bio == NULL) {
		snprintf(err, errlen, "--crl %s: %s", path, strerror(errno));
		goto err;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		int added = X509_STORE_add_crl(store, crl);

		X509_CRL_free(crl);
		if (!added) {
			snprintf(err, errlen, "--crl %s: cannot add CRL %d", path, n + 1);
			goto err;
		}
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		snprintf(err, errlen, "--crl %s: no PEM CRL found", path);
		goto err;
	}
	/* Check the leaf against its issuer's CRL. */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	ok = 1;
err:
	BIO_free(bio);
	return ok;
}

static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen,
                       const uint8_t *in, unsigned inlen, void *arg)
{
	unsigned i = 0;

	/* The client's list is length-prefixed protocol names. */
	while (i < inlen) {
		unsigned n = in[i];

		if (n > inlen - i - 1)
			break;
		if (n == 4 && memcmp(in + i + 1, "mqtt", 4) == 0) {
			*out = in + i + 1;
			*outlen = 4;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n + 1;
	}
	/* Clients that offer only other protocols still get MQTT without ALPN. */
	return SSL_TLSEXT_ERR_NOACK;
}

static int setup_client_certs(SSL_CTX *ctx, const struct tls_server_opts *o, char *err,
                              size_t errlen)
{
	STACK_OF(X509_NAME) *names;
	int mode = SSL_VERIFY_PEER;

	if (!tls_file_readable("--client-ca", o->client_ca_file, err, errlen))
		return 0;
	if (!SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL)) {
		char e[160];

		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "--client-ca %s: no usable CA certificate (%s)", o->client_ca_file, e);
		return 0;
	}
	names = SSL_load_client_CA_file(o->client_ca_file);
	if (names == NULL) {
		snprintf(err, errlen, "--client-ca %s: no usable CA certificate", o->client_ca_file);
		return 0;
	}
	SSL_CTX_set_client_CA_list(ctx, names);   /* takes ownership */
	if (o->crl_file && !load_crls(ctx, o->crl_file, err, errlen))
		return 0;
	if (o->client_cert == TLS_CLIENT_CERT_REQUIRED)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, tls_peer_verify_cb);
	/* Keep only a hash of the client's chain after the handshake; the
	 * identity is copied out during verification (tls/peer.c). */
	SSL_CTX_set_retain_only_sha256_of_client_certs(ctx, 1);
	/* A resumed session skips verification: its ticket carries the chain,
	 * checked again against this CA file and these CRLs (tls/resume.c). */
	return tls_resume_install(ctx, o->client_ca_file, o->client_cert == TLS_CLIENT_CERT_REQUIRED,
	                          o->crl_file != NULL, err, errlen);
}

SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "mqtls";
	SSL_CTX *ctx = NULL;
	char e[160];

	if (!tls_file_readable("--cert", o->cert_file, err, errlen) ||
	    !tls_file_readable("--key", o->key_file, err, errlen))
		goto err;
	if (!tls_peer_init()) {
		snprintf(err, errlen, "cannot allocate TLS ex_data index");
		goto err;
	}
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create TLS context");
		goto err;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_strict_cipher_list(ctx, tls12_ciphers) ||
	    !SSL_CTX_set1_curves_list(ctx, "X25519:P-256")) {
		snprintf(err, errlen, "cannot apply TLS version/cipher/group policy");
		goto err;
	}
	if (!SSL_CTX_use_certificate_chain_file(ctx, o->cert_file)) {
		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "--cert %s: not a PEM certificate chain (%s)", o->cert_file, e);
		goto err;
	}
	if (!check_validity(SSL_CTX_get0_certificate(ctx), o->cert_file, err, errlen))
		goto err;
	if (!SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM)) {
		unsigned long code = ERR_peek_last_error();
		int mismatch = ERR_GET_LIB(code) == ERR_LIB_X509 &&
		               (ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH ||
		                ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH);

		tls_take_error(e, sizeof(e));
		if (mismatch)
			snprintf(err, errlen, "--key %s: does not match the certificate in %s",
			         o->key_file, o->cert_file);
		else
			snprintf(err, errlen, "--key %s: not a usable PEM private key (%s)", o->key_file, e);
		goto err;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		snprintf(err, errlen, "--key %s: does not match the certificate in %s", o->key_file,
		         o->cert_file);
		goto err;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Resumption uses stateless tickets; a server-side cache would grow
	 * with the number of clients. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* One TLS 1.3 ticket is enough for a device that resumes; the default
	 * two cost a second encryption on every full handshake. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* Tells the session when the ClientHello is complete: a client gets a
	 * short deadline for it, the rest of the handshake a longer one. */
	SSL_CTX_set_select_certificate_cb(ctx, tls_peer_hello_cb);
	if (o->ticket_keys_file && !tls_ticket_keys_install(ctx, o->ticket_keys_file, err, errlen))
		goto err;
	if (o->client_ca_file && o->client_cert != TLS_CLIENT_CERT_NONE &&
	    !setup_client_certs(ctx, o, err, errlen))
		goto err;
	return ctx;
err:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* notAfter as Unix seconds: its distance from the epoch, which avoids
 * timegm and the local time zone. */
static int asn1_time_posix(const ASN1_TIME *t, int64_t *out)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int days, secs, ok;

	if (epoch == NULL)
		return 0;
	ok = ASN1_TIME_diff(&days, &secs, epoch, t);
	ASN1_TIME_free(epoch);
	if (ok)
		*out = (int64_t)days * 86400 + secs;
	return ok;
}

int tls_server_ctx_cert_info(const SSL_CTX *ctx, struct tls_cert_info *out)
{
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	BIGNUM *bn = NULL;
	char *hex = NULL;
	BIO *mem = NULL;
	const uint8_t *name;
	size_t len;
	time_t when;
	struct tm tm;
	int ok = 0;

	memset(out, 0, sizeof(*out));
	if (leaf == NULL)
		goto err;
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    X509_NAME_print_ex(mem, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253) < 0 ||
	    !BIO_mem_contents(mem, &name, &len))
		goto err;
	snprintf(out->subject, sizeof(out->subject), "%.*s", (int)len, (const char *)name);
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL)
		goto err;
	snprintf(out->serial, sizeof(out->serial), "%s", hex);
	if (!asn1_time_posix(X509_get0_notAfter(leaf), &out->not_after))
		goto err;
	when = (time_t)out->not_after;
	if (gmtime_r(&when, &tm) == NULL)
		goto err;
	strftime(out->not_after_text, sizeof(out->not_after_text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ok = 1;
err:
	OPENSSL_free(hex);
	BN_free(bn);
	BIO_free(mem);
	ERR_clear_error();
	return ok;
}
