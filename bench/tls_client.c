/*
 * mqtls-bench's TLS client setup (tls_client.h).
 */
#include "bench/tls_client.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "bench/client.h"

static void print_error(const char *what, const char *file)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	fprintf(stderr, "mqtls-bench: %s %s: %s\n", what, file, buf);
	ERR_clear_error();
}

/* A new ticket (after the handshake in TLS 1.3) becomes the session the
 * worker's next connections resume. Takes ownership of |sess|. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct bench_client *c = SSL_get_app_data(ssl);

	if (c == NULL || c->magic != CLIENT_MAGIC)
		return 0;
	SSL_SESSION_free(c->w->session);
	c->w->session = sess;
	return 1;
}

SSL_CTX *bench_tls_ctx_new(const struct bench_options *o, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	uint16_t lo = TLS1_2_VERSION, hi = TLS1_3_VERSION;

	if (ctx == NULL) {
		fprintf(stderr, "mqtls-bench: out of memory\n");
		return NULL;
	}
	if (o->tls_version != NULL)
		lo = hi = strcmp(o->tls_version, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	if (!SSL_CTX_set_min_proto_version(ctx, lo) || !SSL_CTX_set_max_proto_version(ctx, hi))
		goto err;
	if (o->cafile != NULL) {
		if (!SSL_CTX_load_verify_locations(ctx, o->cafile, NULL)) {
			print_error("cannot load CA file", o->cafile);
			goto err;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* A load generator against a test PKI: verification is opt-in. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (cert != NULL) {
		if (!SSL_CTX_use_certificate_chain_file(ctx, cert)) {
			print_error("cannot load certificate", cert);
			goto err;
		}
		if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) ||
		    !SSL_CTX_check_private_key(ctx)) {
			print_error("cannot load key", key);
			goto err;
		}
	}
	/* Resumption is a separate measurement: a full handshake every time
	 * unless --tls-resume asks for it. */
	if (o->tls_resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
		SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *bench_tls_new(SSL_CTX *ctx, int fd, const char *sni)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	/* The bench holds thousands of these; keep each as small as the proxy's. */
	SSL_set_shed_handshake_config(ssl, 1);
	if (!SSL_set_fd(ssl, fd))
		goto err;
	if (sni != NULL) {
		if (!SSL_set_tlsext_host_name(ssl, sni) ||
		    !X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), sni, strlen(sni)))
			goto err;
	}
	SSL_set_connect_state(ssl);
	return ssl;
err:
	SSL_free(ssl);
	return NULL;
}
