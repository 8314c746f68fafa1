#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/client_ctx.h"

/*
 * Resumption: each context keeps the newest session it was given for each
 * of a few names (one per broker: --upstream repeats at most 8 times) and
 * offers it to the next connection to that name. A session is never
 * offered to another name, because a resumed session skips the
 * certificate check that the name depends on.
 */
#define SLOT_NAMES 8

struct session_slot {
	pthread_mutex_t lock;
	unsigned next;              /* the entry a new name takes */
	struct {
		char name[256];
		SSL_SESSION *session;   /* owned, or NULL */
	} e[SLOT_NAMES];
};

/* The entry of |name|, or NULL. Called with the lock held. */
static int slot_find(const struct session_slot *slot, const char *name)
{
	for (int i = 0; i < SLOT_NAMES; i++) {
		if (slot->e[i].session && strcmp(slot->e[i].name, name) == 0)
			return i;
	}
	return -1;
}

static int ctx_index = -1, ssl_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void slot_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	struct session_slot *slot = ptr;

	if (slot == NULL)
		return;
	for (int i = 0; i < SLOT_NAMES; i++)
		SSL_SESSION_free(slot->e[i].session);
	pthread_mutex_destroy(&slot->lock);
	free(slot);
}

static void index_init(void)
{
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, slot_free);
	/* The SSL's peer name, borrowed (tls_client_ssl_new's contract). */
	ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Called by BoringSSL with a new or renewed session; takes it (returns 1). */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct session_slot *slot = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	const char *name = SSL_get_ex_data(ssl, ssl_index);
	SSL_SESSION *old;
	int i;

	if (slot == NULL || name == NULL || strlen(name) >= sizeof(slot->e[0].name))
		return 0;
	pthread_mutex_lock(&slot->lock);
	if ((i = slot_find(slot, name)) < 0)
		i = (int)(slot->next++ % SLOT_NAMES);
	old = slot->e[i].session;
	slot->e[i].session = session;
	snprintf(slot->e[i].name, sizeof(slot->e[i].name), "%s", name);
	pthread_mutex_unlock(&slot->lock);
	SSL_SESSION_free(old);
	return 1;
}

static void last_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		snprintf(buf, len, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "unknown error");
	ERR_clear_error();
}

static int readable(const char *flag, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
		return 0;
	}
	fclose(f);
	return 1;
}

static int load_client_cert(SSL_CTX *ctx, const struct tls_client_opts *o, char *err, size_t errlen)
{
	const char *p = o->flag_prefix;
	char e[160], cflag[64], kflag[64];

	snprintf(cflag, sizeof(cflag), "%s-cert", p);
	snprintf(kflag, sizeof(kflag), "%s-key", p);
	if (!readable(cflag, o->cert_file, err, errlen) || !readable(kflag, o->key_file, err, errlen))
		return 0;
	if (!SSL_CTX_use_certificate_chain_file(ctx, o->cert_file)) {
		last_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: not a PEM certificate chain (%s)", cflag, o->cert_file, e);
		return 0;
	}
	if (!SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM)) {
		unsigned long code = ERR_peek_last_error();
		int mismatch = ERR_GET_LIB(code) == ERR_LIB_X509 &&
		               (ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH ||
		                ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH);

		last_error(e, sizeof(e));
		if (mismatch)
			snprintf(err, errlen, "%s %s: does not match the certificate in %s", kflag, o->key_file,
			         o->cert_file);
		else
			snprintf(err, errlen, "%s %s: not a usable PEM private key (%s)", kflag, o->key_file, e);
		return 0;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		snprintf(err, errlen, "%s %s: does not match the certificate in %s", kflag, o->key_file,
		         o->cert_file);
		return 0;
	}
	return 1;
}

SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, char *err, size_t errlen)
{
	const char *ca = o->ca_file ? o->ca_file : TLS_SYSTEM_CA_FILE;
	struct session_slot *slot = NULL;
	SSL_CTX *ctx = NULL;
	char e[160], caflag[64];

	snprintf(caflag, sizeof(caflag), "%s-ca", o->flag_prefix);
	pthread_once(&index_once, index_init);
	if (ctx_index < 0 || ssl_index < 0) {
		snprintf(err, errlen, "cannot allocate TLS ex_data index");
		goto err;
	}
	if (!readable(o->ca_file ? caflag : "system CA bundle", ca, err, errlen))
		goto err;
	ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "cannot create a client TLS context");
		goto err;
	}
	if (!SSL_CTX_load_verify_locations(ctx, ca, NULL)) {
		last_error(e, sizeof(e));
		snprintf(err, errlen, "%s %s: no usable CA certificate (%s)",
		         o->ca_file ? caflag : "system CA bundle", ca, e);
		goto err;
	}
	if (o->cert_file && !load_client_cert(ctx, o, err, errlen))
		goto err;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if ((slot = calloc(1, sizeof(*slot))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	pthread_mutex_init(&slot->lock, NULL);
	if (!SSL_CTX_set_ex_data(ctx, ctx_index, slot)) {
		pthread_mutex_destroy(&slot->lock);
		free(slot);
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	/* From here the context frees the slot. Sessions reach us through the
	 * callback only; BoringSSL keeps no client cache of its own. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	return ctx;
err:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/* Offers the session kept for |name|, if any. */
static int offer_session(SSL *ssl, SSL_CTX *ctx, const char *name)
{
	struct session_slot *slot = SSL_CTX_get_ex_data(ctx, ctx_index);
	int ok = 1, i;

	if (slot == NULL)
		return 1;
	pthread_mutex_lock(&slot->lock);
	if ((i = slot_find(slot, name)) >= 0 && SSL_SESSION_is_resumable(slot->e[i].session))
		ok = SSL_set_session(ssl, slot->e[i].session);
	pthread_mutex_unlock(&slot->lock);
	return ok;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *name, int is_ip)
{
	SSL *ssl = SSL_new(ctx);
	int ok;

	if (ssl == NULL)
		return NULL;
	SSL_set_connect_state(ssl);
	if (is_ip)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
	else
		ok = SSL_set_tlsext_host_name(ssl, name) && SSL_set1_host(ssl, name);
	ok = ok && SSL_set_ex_data(ssl, ssl_index, (void *)name) && offer_session(ssl, ctx, name);
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
