#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "tls/peer.h"

#include <pthread.h>

/* The ex_data slot is allocated once, before any worker runs a handshake;
 * pthread_once makes concurrent first calls agree on one index. */
static int peer_idx = -1;
static pthread_once_t peer_once = PTHREAD_ONCE_INIT;

static void peer_index_alloc(void)
{
	peer_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int tls_peer_init(void)
{
	pthread_once(&peer_once, peer_index_alloc);
	return peer_idx >= 0;
}

static int peer_index(void)
{
	tls_peer_init();
	return peer_idx;
}

int tls_peer_attach(SSL *ssl, struct tls_peer *peer)
{
	int idx = peer_index();

	return idx >= 0 && SSL_set_ex_data(ssl, idx, peer);
}

void tls_peer_cleanup(struct tls_peer *peer)
{
	free(peer->subject_cn);
	memset(peer, 0, sizeof(*peer));
}

static char *copy_cn(X509 *cert)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	ASN1_STRING *data;
	unsigned char *utf8 = NULL;
	char *out = NULL;
	int n;

	if (i < 0)
		return NULL;
	data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	n = ASN1_STRING_to_UTF8(&utf8, data);
	/* An embedded NUL would let "a\0b" pass as "a": refuse such names. */
	if (n > 0 && memchr(utf8, 0, (size_t)n) == NULL)
		out = strndup((const char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return out;
}

int tls_peer_verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_peer *peer = ssl ? SSL_get_ex_data(ssl, peer_index()) : NULL;
	int depth = X509_STORE_CTX_get_error_depth(store);

	if (peer == NULL)
		return ok;
	if (!ok) {
		if (peer->verify_error == NULL) {
			peer->verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
			peer->verify_depth = depth;
		}
		return 0;
	}
	/* The callback runs once per chain element, leaf last; copy the identity
	 * now because only a hash of the chain is kept after the handshake. */
	if (depth == 0 && peer->subject_cn == NULL)
		peer->subject_cn = copy_cn(X509_STORE_CTX_get_current_cert(store));
	return ok;
}
