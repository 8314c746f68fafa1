#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include "tls/client_ctx.h"
#include "tls/load_errors.h"

/*
 * Certificates are kept as the server sent them (TLS_with_buffers_method):
 * the chain is parsed only while the verification callback below runs, not
 * for as long as the connection lives: 7.5 KiB less for each connection
 * that did a full handshake with mosquitto (bench/idle_memory.py). The checks are BoringSSL's own
 * (X509_verify_cert against the context's trust store, with the purpose of
 * a TLS server and the name or address required).
 *
 * Resumption: each context keeps the newest session it was given for each
 * of a few names (one per broker: --upstream repeats at most 8 times) and
 * offers it to the next connection to that name. A session is never
 * offered to another name, because a resumed session skips the
 * certificate check that the name depends on.
 */
#define SLOT_NAMES 8
/* Certificates in a --upstream-cert chain, leaf included. */
#define CHAIN_MAX 10

struct ctx_state {
	X509_STORE *store;          /* owned: what the server must chain to */
	pthread_mutex_t lock;       /* guards what follows */
	unsigned next;              /* the entry a new name takes */
	struct {
		char name[256];
		SSL_SESSION *session;   /* owned, or NULL */
	} e[SLOT_NAMES];
};

/* The entry of |name|, or -1. Called with the lock held. */
static int slot_find(const struct ctx_state *st, const char *name)
{
	for (int i = 0; i < SLOT_NAMES; i++) {
		if (st->e[i].session && strcmp(st->e[i].name, name) == 0)
			return i;
	}
	return -1;
}

/* ex_data: the context's state; an SSL's peer name (borrowed, as
 * tls_client_ssl_new's contract says), whether it is an address, and its
 * verification result. */
static int ctx_index = -1, name_index = -1, ip_index = -1, verify_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void state_free(struct ctx_state *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < SLOT_NAMES; i++)
		SSL_SESSION_free(st->e[i].session);
	X509_STORE_free(st->store);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

static void state_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	state_free(ptr);
}

static void index_init(void)
{
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, state_free_cb);
	name_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ip_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	verify_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Called by BoringSSL with a new or renewed session; takes it (returns 1). */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct ctx_state *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	const char *name = SSL_get_ex_data(ssl, name_index);
	SSL_SESSION *old;
	int i;

	if (st == NULL || name == NULL || strlen(name) >= sizeof(st->e[0].name))
		return 0;
	pthread_mutex_lock(&st->lock);
	if ((i = slot_find(st, name)) < 0)
		i = (int)(st->next++ % SLOT_NAMES);
	old = st->e[i].session;
	st->e[i].session = session;
	snprintf(st->e[i].name, sizeof(st->e[i].name), "%s", name);
	pthread_mutex_unlock(&st->lock);
	SSL_SESSION_free(old);
	return 1;
}

/* The server's chain, parsed for the time of the check: leaf first, then
 * what it sent to build the path with. Returns 1, or 0 when one does not
 * parse or memory is short. */
static int parse_chain(const STACK_OF(CRYPTO_BUFFER) *certs, X509 **leaf, STACK_OF(X509) *rest)
{
	for (size_t i = 0; i < sk_CRYPTO_BUFFER_num(certs); i++) {
		X509 *x = X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(certs, i));

		if (x == NULL)
			return 0;
		if (i == 0) {
			*leaf = x;
		} else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			return 0;
		}
	}
	return *leaf != NULL;
}

/* The certificate check of a full handshake (resumptions skip it). */
static enum ssl_verify_result_t verify_server(SSL *ssl, uint8_t *out_alert)
{
	const struct ctx_state *st = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	const STACK_OF(CRYPTO_BUFFER) *certs = SSL_get0_peer_certificates(ssl);
	const char *name = SSL_get_ex_data(ssl, name_index);
	STACK_OF(X509) *rest = sk_X509_new_null();
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	X509 *leaf = NULL;
	long result = X509_V_ERR_UNSPECIFIED;

	if (st == NULL || name == NULL || certs == NULL || rest == NULL || sctx == NULL ||
	    !parse_chain(certs, &leaf, rest) || !X509_STORE_CTX_init(sctx, st->store, leaf, rest) ||
	    !X509_STORE_CTX_set_default(sctx, "ssl_server"))
		goto done;
	param = X509_STORE_CTX_get0_param(sctx);
	if (!(SSL_get_ex_data(ssl, ip_index) ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
	                                      : X509_VERIFY_PARAM_set1_host(param, name, strlen(name))))
		goto done;
	result = X509_verify_cert(sctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(sctx);
done:
	X509_STORE_CTX_free(sctx);
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	(void)SSL_set_ex_data(ssl, verify_index, (void *)(intptr_t)result);
	if (result == X509_V_OK)
		return ssl_verify_ok;
	*out_alert = (uint8_t)SSL_alert_from_verify_result(result);
	return ssl_verify_invalid;
}

long tls_client_verify_result(const SSL *ssl)
{
	return (long)(intptr_t)SSL_get_ex_data(ssl, verify_index);
}

/* The chain (as buffers) and key of --upstream-cert / --upstream-key; the
 * key must be the leaf's. */
static int load_client_cert(SSL_CTX *ctx, const struct tls_client_opts *o, char *err, size_t errlen)
{
	CRYPTO_BUFFER *chain[CHAIN_MAX];
	char e[160], cflag[64], kflag[64];
	X509 *x, *leaf = NULL;
	EVP_PKEY *key = NULL;
	BIO *b = NULL;
	size_t n = 0;
	int ok = 0;

	snprintf(cflag, sizeof(cflag), "%s-cert", o->flag_prefix);
	snprintf(kflag, sizeof(kflag), "%s-key", o->flag_prefix);
	if (!tls_file_readable(cflag, o->cert_file, err, errlen) || !tls_file_readable(kflag, o->key_file, err, errlen) ||
	    (b = BIO_new_file(o->cert_file, "r")) == NULL)
		goto out;
	while (n < CHAIN_MAX && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		uint8_t *der = NULL;
		int len = i2d_X509(x, &der);

		chain[n] = len > 0 ? CRYPTO_BUFFER_new(der, (size_t)len, NULL) : NULL;
		OPENSSL_free(der);
		if (chain[n] == NULL) {
			X509_free(x);
			snprintf(err, errlen, "%s %s: out of memory", cflag, o->cert_file);
			goto out;
		}
		n++;
		if (leaf == NULL)
			leaf = x;
		else
			X509_free(x);
	}
	if (leaf == NULL) {
		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: not a PEM certificate chain (%s)", cflag, o->cert_file, e);
		goto out;
	}
	ERR_clear_error();    /* the end of the file */
	BIO_free(b);
	if ((b = BIO_new_file(o->key_file, "r")) == NULL ||
	    (key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: not a usable PEM private key (%s)", kflag, o->key_file, e);
		goto out;
	}
	if (!X509_check_private_key(leaf, key)) {
		ERR_clear_error();
		snprintf(err, errlen, "%s %s: does not match the certificate in %s", kflag, o->key_file,
		         o->cert_file);
		goto out;
	}
	if (!SSL_CTX_set_chain_and_key(ctx, chain, n, key, NULL)) {
		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: cannot use it (%s)", cflag, o->cert_file, e);
		goto out;
	}
	ok = 1;
out:
	for (size_t i = 0; i < n; i++)
		CRYPTO_BUFFER_free(chain[i]);    /* the context holds its own references */
	X509_free(leaf);
	EVP_PKEY_free(key);
	BIO_free(b);
	return ok;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *err, size_t errlen)
{
	const char *ca = o->ca_file ? o->ca_file : TLS_SYSTEM_CA_FILE;
	struct ctx_state *st = NULL;
	SSL_CTX *ctx = NULL;
	char e[160], caflag[64];

	snprintf(caflag, sizeof(caflag), "%s-ca", o->flag_prefix);
	pthread_once(&index_once, index_init);
	if (ctx_index < 0 || name_index < 0 || ip_index < 0 || verify_index < 0) {
		snprintf(err, errlen, "cannot allocate TLS ex_data index");
		goto err;
	}
	if (!tls_file_readable(o->ca_file ? caflag : "system CA bundle", ca, err, errlen))
		goto err;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	pthread_mutex_init(&st->lock, NULL);
	if ((st->store = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	if (!X509_STORE_load_locations(st->store, ca, NULL)) {
		tls_take_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: no usable CA certificate (%s)",
		         o->ca_file ? caflag : "system CA bundle", ca, e);
		goto err;
	}
	ctx = SSL_CTX_new(TLS_with_buffers_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "cannot create a client TLS context");
		goto err;
	}
	if (o->cert_file && !load_client_cert(ctx, o, err, errlen))
		goto err;
	if (!SSL_CTX_set_ex_data(ctx, ctx_index, st)) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	st = NULL;    /* the context frees it from here on */
	SSL_CTX_set_custom_verify(ctx, SSL_VERIFY_PEER, verify_server);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Sessions reach us through the callback only; BoringSSL keeps no
	 * client cache of its own. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	return ctx;
err:
	state_free(st);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Offers the session kept for |name|, if any. */
static int offer_session(SSL *ssl, SSL_CTX *ctx, const char *name)
{
	struct ctx_state *st = SSL_CTX_get_ex_data(ctx, ctx_index);
	int ok = 1, i;

	if (st == NULL)
		return 1;
	pthread_mutex_lock(&st->lock);
	if ((i = slot_find(st, name)) >= 0 && SSL_SESSION_is_resumable(st->e[i].session))
		ok = SSL_set_session(ssl, st->e[i].session);
	pthread_mutex_unlock(&st->lock);
	return ok;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *name, int is_ip)
{
	SSL *ssl = SSL_new(ctx);
	int ok;

	if (ssl == NULL)
		return NULL;
	SSL_set_connect_state(ssl);
	/* An address is checked by verify_server but never sent as SNI. */
	ok = (is_ip || SSL_set_tlsext_host_name(ssl, name)) && SSL_set_ex_data(ssl, name_index, (void *)name) &&
	     SSL_set_ex_data(ssl, ip_index, is_ip ? (void *)1 : NULL) && offer_session(ssl, ctx, name);
	if (!ok) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	return ssl;
}

const char *tls_client_failure(long verify, unsigned long err_code, int sys_errno, char *buf, size_t len)
{
	const char *r;

	if (verify != X509_V_OK)
		snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
	else if (err_code != 0 && (r = ERR_reason_error_string(err_code)) != NULL)
		snprintf(buf, len, "%s", r);
	else if (sys_errno != 0)
		snprintf(buf, len, "%s", strerror(sys_errno));
	else
		snprintf(buf, len, "connection closed");
	return buf;
}
