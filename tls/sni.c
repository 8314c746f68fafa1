#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/peer.h"
#include "tls/sni.h"
#include "tls/sni_match.h"

/* What the first context of a set holds (ex_data), for the callback and
 * for logs and metrics. */
struct sni_set {
	size_t n;
	struct tls_sni_cert certs[TLS_SNI_MAX_PAIRS];   /* names point into |names| */
	SSL_CTX *ctx[TLS_SNI_MAX_PAIRS];    /* owned references; [0] is NULL: the holder itself */
	char *file[TLS_SNI_MAX_PAIRS];      /* owned */
	char **names[TLS_SNI_MAX_PAIRS];    /* owned, with their strings */
};

static int set_idx = -1;
static pthread_once_t set_once = PTHREAD_ONCE_INIT;

static void set_free(struct sni_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		for (size_t k = 0; k < s->certs[i].n_names; k++)
			free(s->names[i][k]);
		free(s->names[i]);
		free(s->file[i]);
		SSL_CTX_free(s->ctx[i]);
	}
	free(s);
}

static void set_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	set_free(ptr);
}

static void set_index_alloc(void)
{
	set_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, set_free_cb);
}

static const struct sni_set *set_of(const SSL_CTX *ctx)
{
	pthread_once(&set_once, set_index_alloc);
	return set_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, set_idx);
}

/* ---- what a certificate serves ------------------------------------------- */

/* A copy of a name from the certificate, or NULL when it cannot be a host
 * name (a NUL inside, or too long) and so would never match. */
static char *name_copy(const ASN1_STRING *s)
{
	const unsigned char *p = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);
	char *out;

	if (p == NULL || len <= 0 || len > TLS_SNI_NAME_MAX + 1 || memchr(p, '\0', (size_t)len))
		return NULL;
	if ((out = malloc((size_t)len + 1)) == NULL)
		return NULL;
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	return out;
}

/* Appends |name| (taken) to |*names|; 0 when out of memory. */
static int add_name(char ***names, size_t *n, char *name)
{
	char **grown = realloc(*names, (*n + 1) * sizeof(**names));

	if (grown == NULL) {
		free(name);
		return 0;
	}
	grown[(*n)++] = name;
	*names = grown;
	return 1;
}

/* The DNS SANs of |leaf|, or its last CN when it has no DNS SAN (RFC 6125
 * 6.4.4), into |s|'s pair |i|. */
static int read_names(struct sni_set *s, size_t i, X509 *leaf, const char *file, char *err, size_t errlen)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	size_t n = 0, dns = 0;
	int ok = 0;

	for (size_t k = 0; sans && k < sk_GENERAL_NAME_num(sans); k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
		char *name;

		if (g->type != GEN_DNS)
			continue;
		if (++dns > TLS_SNI_MAX_NAMES) {
			snprintf(err, errlen, "--cert %s: more than %d DNS names", file, TLS_SNI_MAX_NAMES);
			goto out;
		}
		if ((name = name_copy(g->d.dNSName)) != NULL && !add_name(&s->names[i], &n, name))
			goto oom;
	}
	if (dns == 0) {
		X509_NAME *subject = X509_get_subject_name(leaf);
		int last = -1, at;
		char *name;

		while ((at = X509_NAME_get_index_by_NID(subject, NID_commonName, last)) >= 0)
			last = at;
		if (last >= 0 &&
		    (name = name_copy(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last)))) != NULL &&
		    !add_name(&s->names[i], &n, name))
			goto oom;
	}
	ok = 1;
	goto out;
oom:
	snprintf(err, errlen, "--cert %s: out of memory", file);
out:
	s->certs[i].names = (const char *const *)s->names[i];
	s->certs[i].n_names = n;
	GENERAL_NAMES_free(sans);
	return ok;
}

static enum tls_key_kind key_kind(X509 *leaf)
{
	EVP_PKEY *pk = X509_get_pubkey(leaf);
	enum tls_key_kind k = TLS_KEY_OTHER;

	if (pk && EVP_PKEY_id(pk) == EVP_PKEY_RSA) {
		k = TLS_KEY_RSA;
	} else if (pk && EVP_PKEY_id(pk) == EVP_PKEY_EC) {
		const EC_GROUP *g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pk));
		int nid = g ? EC_GROUP_get_curve_name(g) : NID_undef;

		k = nid == NID_X9_62_prime256v1 ? TLS_KEY_ECDSA_P256
		  : nid == NID_secp384r1        ? TLS_KEY_ECDSA_P384
		  : nid == NID_secp521r1        ? TLS_KEY_ECDSA_P521
		                                : TLS_KEY_OTHER;
	}
	EVP_PKEY_free(pk);
	return k;
}

/* ---- the ClientHello callback -------------------------------------------- */

/* Runs before the server has chosen anything (version, suite, resumption),
 * so switching contexts here is as if the connection had started on the
 * chosen one. It replaces the callback tls_server_ctx_new installed on the
 * first context (BoringSSL keeps one), so it runs that one first: anything
 * added there must stay reachable through tls_peer_hello_cb. */
static enum ssl_select_cert_result_t select_pair(const SSL_CLIENT_HELLO *hello)
{
	enum ssl_select_cert_result_t r = tls_peer_hello_cb(hello);
	const struct sni_set *s = set_of(SSL_get_SSL_CTX(hello->ssl));
	struct tls_hello_algs algs = { hello->cipher_suites, hello->cipher_suites_len, NULL, 0, NULL, 0 };
	size_t i;

	if (r != ssl_select_cert_success || s == NULL || s->n < 2)
		return r;
	if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_supported_versions, &algs.versions,
	                                          &algs.versions_len))
		algs.versions = NULL;
	if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_signature_algorithms, &algs.sigalgs,
	                                          &algs.sigalgs_len))
		algs.sigalgs = NULL;
	i = tls_sni_choose(s->certs, s->n, SSL_get_servername(hello->ssl, TLSEXT_NAMETYPE_host_name),
	                   tls_hello_caps(&algs));
	if (i > 0 && SSL_set_SSL_CTX(hello->ssl, s->ctx[i]) == NULL)
		return ssl_select_cert_error;
	return ssl_select_cert_success;
}

/* ---- building -------------------------------------------------------------- */

SSL_CTX *tls_server_ctx_set_new(const struct tls_server_opts *o, const char *const *certs,
                                const char *const *keys, size_t n, char *err, size_t errlen)
{
	struct sni_set *s = NULL;
	SSL_CTX *first = NULL;

	pthread_once(&set_once, set_index_alloc);
	if (n == 0 || n > TLS_SNI_MAX_PAIRS) {
		snprintf(err, errlen, "--cert: between 1 and %d certificate/key pairs", TLS_SNI_MAX_PAIRS);
		return NULL;
	}
	if (set_idx < 0 || (s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "--cert: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct tls_server_opts one = *o;
		SSL_CTX *ctx;
		X509 *leaf;

		one.cert_file = certs[i];
		one.key_file = keys[i];
		if ((ctx = tls_server_ctx_new(&one, err, errlen)) == NULL)
			goto err;
		if (i == 0)
			first = ctx;
		else
			s->ctx[i] = ctx;
		s->n = i + 1;
		leaf = SSL_CTX_get0_certificate(ctx);
		if ((s->file[i] = strdup(certs[i])) == NULL) {
			snprintf(err, errlen, "--cert %s: out of memory", certs[i]);
			goto err;
		}
		if (!read_names(s, i, leaf, certs[i], err, errlen))
			goto err;
		s->certs[i].key = key_kind(leaf);
		s->certs[i].serves_default = i == 0 || tls_sni_same_names(&s->certs[i], &s->certs[0]);
	}
	if (!SSL_CTX_set_ex_data(first, set_idx, s)) {
		snprintf(err, errlen, "--cert: out of memory");
		goto err;
	}
	if (n > 1)
		SSL_CTX_set_select_certificate_cb(first, select_pair);
	return first;
err:
	set_free(s);
	SSL_CTX_free(first);
	return NULL;
}

size_t tls_server_ctx_pairs(const SSL_CTX *ctx)
{
	const struct sni_set *s = set_of(ctx);

	return s ? s->n : 1;
}

SSL_CTX *tls_server_ctx_pair(const SSL_CTX *ctx, size_t i, const char **file)
{
	const struct sni_set *s = set_of(ctx);

	*file = s && i < s->n ? s->file[i] : NULL;
	return s && i > 0 && i < s->n ? s->ctx[i] : (SSL_CTX *)ctx;
}

const char *tls_server_ctx_pair_names(const SSL_CTX *ctx, size_t i, char *out, size_t cap, const char **key)
{
	static const char *const kinds[] = {
		[TLS_KEY_OTHER] = "other", [TLS_KEY_RSA] = "rsa", [TLS_KEY_ECDSA_P256] = "ecdsa-p256",
		[TLS_KEY_ECDSA_P384] = "ecdsa-p384", [TLS_KEY_ECDSA_P521] = "ecdsa-p521",
	};
	const struct sni_set *s = set_of(ctx);
	size_t used = 0;

	out[0] = '\0';
	*key = "unknown";
	if (s == NULL || i >= s->n)
		return out;
	*key = kinds[s->certs[i].key];
	for (size_t k = 0; k < s->certs[i].n_names; k++) {
		const char *name = s->certs[i].names[k];
		size_t len = strlen(name), sep = k > 0;

		/* Room for this name, and for ",..." should a later one not fit. */
		if (used + sep + len + 5 > cap) {
			snprintf(out + used, cap - used, "%s...", used > 0 ? "," : "");
			break;
		}
		snprintf(out + used, cap - used, "%s%s", sep ? "," : "", name);
		used += sep + len;
	}
	return out;
}
