#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

struct tls_peer *tls_peer_of(const SSL *ssl)
{
	int idx = peer_index();

	return idx >= 0 ? SSL_get_ex_data(ssl, idx) : NULL;
}

int tls_identity_kind_parse(const char *s, enum tls_identity_kind *out)
{
	static const struct {
		const char *name;
		enum tls_identity_kind kind;
	} kinds[] = {
		{ "cn", TLS_ID_CN }, { "san-dns", TLS_ID_SAN_DNS },
		{ "san-email", TLS_ID_SAN_EMAIL }, { "san-uri", TLS_ID_SAN_URI },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(s, kinds[i].name) == 0) {
			*out = kinds[i].kind;
			return 1;
		}
	}
	return 0;
}

void tls_peer_cleanup(struct tls_peer *peer)
{
	free(peer->identity);
	free(peer->cn);
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

/* The first subjectAltName entry of |type| (GEN_DNS, GEN_EMAIL, GEN_URI). */
static char *copy_san(X509 *cert, int type)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char *out = NULL;

	for (size_t i = 0; names && i < sk_GENERAL_NAME_num(names) && out == NULL; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const ASN1_STRING *str;
		int len;

		if (gn->type != type)
			continue;
		str = gn->d.ia5;
		len = ASN1_STRING_length(str);
		/* IA5 names are ASCII; an embedded NUL would truncate the identity. */
		if (len > 0 && memchr(ASN1_STRING_get0_data(str), 0, (size_t)len) == NULL)
			out = strndup((const char *)ASN1_STRING_get0_data(str), (size_t)len);
	}
	GENERAL_NAMES_free(names);
	return out;
}

static char *copy_identity(X509 *cert, uint8_t kind)
{
	switch (kind) {
	case TLS_ID_CN:
		return copy_cn(cert);
	case TLS_ID_SAN_DNS:
		return copy_san(cert, GEN_DNS);
	case TLS_ID_SAN_EMAIL:
		return copy_san(cert, GEN_EMAIL);
	case TLS_ID_SAN_URI:
		return copy_san(cert, GEN_URI);
	default:
		return NULL;
	}
}

void tls_peer_take_leaf(struct tls_peer *peer, X509 *leaf)
{
	if (peer->want_identity != TLS_ID_NONE && peer->identity == NULL)
		peer->identity = copy_identity(leaf, peer->want_identity);
	if (peer->want_cn && peer->cn == NULL)
		peer->cn = copy_cn(leaf);
}

enum ssl_select_cert_result_t tls_peer_hello_cb(const SSL_CLIENT_HELLO *hello)
{
	struct tls_peer *peer = SSL_get_ex_data(hello->ssl, peer_index());

	if (peer)
		peer->hello_seen = 1;
	return ssl_select_cert_success;
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
	if (depth == 0)
		tls_peer_take_leaf(peer, X509_STORE_CTX_get_current_cert(store));
	return ok;
}
