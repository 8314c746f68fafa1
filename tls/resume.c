#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "tls/peer.h"
#include "tls/resume.h"
#include "tls/ticket_keys.h"

#define BLOB_VERSION 1
#define FLAG_CERT 0x01
#define MAX_SID_CTX 32

const char *tls_resume_refusal_name(unsigned r)
{
	static const char *const names[TLS_RESUME_REFUSAL_COUNT] = {
		"accepted", "ca_changed", "revoked", "expired", "unverified", "malformed",
	};

	return r < TLS_RESUME_REFUSAL_COUNT ? names[r] : "unknown";
}

/* How many of the certificates the chain list takes (see the header). */
static size_t chain_count(const size_t *len, size_t n, size_t *bytes)
{
	size_t i, used = 0;

	for (i = 0; i < n && i < TLS_RESUME_MAX_CERTS; i++) {
		if (len[i] == 0 || len[i] > TLS_RESUME_MAX_CHAIN - 2 - used)
			break;
		used += 2 + len[i];
	}
	*bytes = used;
	return i;
}

size_t tls_resume_chain_size(const size_t *len, size_t n)
{
	size_t bytes;

	chain_count(len, n, &bytes);
	return bytes;
}

size_t tls_resume_blob_size(size_t sid_ctx_len, size_t chain_size, size_t session_len)
{
	return 2 + 1 + sid_ctx_len + 2 + chain_size + session_len;
}

size_t tls_resume_blob_write(uint8_t *out, size_t max, int had_cert, const uint8_t *sid_ctx,
                             size_t sid_ctx_len, const uint8_t *const *der, const size_t *len,
                             size_t n, const uint8_t *session, size_t session_len)
{
	CBB cbb, list, child;
	size_t chain_bytes, count = chain_count(len, n, &chain_bytes), out_len = 0;

	if (sid_ctx_len > MAX_SID_CTX || session_len == 0 || session_len > TLS_TICKET_MAX_PLAIN ||
	    max < tls_resume_blob_size(sid_ctx_len, chain_bytes, session_len) ||
	    !CBB_init_fixed(&cbb, out, max))
		return 0;
	if (!CBB_add_u8(&cbb, BLOB_VERSION) || !CBB_add_u8(&cbb, had_cert ? FLAG_CERT : 0) ||
	    !CBB_add_u8_length_prefixed(&cbb, &child) || !CBB_add_bytes(&child, sid_ctx, sid_ctx_len) ||
	    !CBB_add_u16_length_prefixed(&cbb, &list))
		goto err;
	for (size_t i = 0; i < count; i++) {
		if (!CBB_add_u16_length_prefixed(&list, &child) || !CBB_add_bytes(&child, der[i], len[i]))
			goto err;
	}
	if (!CBB_add_bytes(&cbb, session, session_len) || !CBB_finish(&cbb, NULL, &out_len))
		goto err;
	return out_len;
err:
	CBB_cleanup(&cbb);
	return 0;
}

int tls_resume_blob_parse(const uint8_t *in, size_t len, struct tls_resume_blob *out)
{
	CBS cbs, sid, chain, cert;
	uint8_t version, flags;

	memset(out, 0, sizeof(*out));
	CBS_init(&cbs, in, len);
	if (!CBS_get_u8(&cbs, &version) || version != BLOB_VERSION || !CBS_get_u8(&cbs, &flags) ||
	    (flags & ~FLAG_CERT) != 0 || !CBS_get_u8_length_prefixed(&cbs, &sid) ||
	    CBS_len(&sid) > MAX_SID_CTX || !CBS_get_u16_length_prefixed(&cbs, &chain) ||
	    CBS_len(&chain) > TLS_RESUME_MAX_CHAIN || CBS_len(&cbs) == 0)
		return 0;
	out->had_cert = (flags & FLAG_CERT) != 0;
	out->sid_ctx = CBS_data(&sid);
	out->sid_ctx_len = CBS_len(&sid);
	while (CBS_len(&chain) > 0) {
		if (out->n_certs == TLS_RESUME_MAX_CERTS || !CBS_get_u16_length_prefixed(&chain, &cert) ||
		    CBS_len(&cert) == 0)
			return 0;
		out->cert[out->n_certs] = CBS_data(&cert);
		out->cert_len[out->n_certs] = CBS_len(&cert);
		out->n_certs++;
	}
	/* Certificates without the flag would be a writer's bug: refuse. */
	if (!out->had_cert && out->n_certs > 0)
		return 0;
	out->session = CBS_data(&cbs);
	out->session_len = CBS_len(&cbs);
	return 1;
}

/*
 * Between a ticket's opening and the end of that handshake, the connection
 * keeps the chain the ticket carried: its leaf gives the identity once the
 * resumption is certain, and its certificates go into the TLS 1.3 ticket
 * the resumed handshake issues. Freed when the handshake ends (or with the
 * SSL).
 */
struct stash {
	X509 *leaf;
	size_t n;
	const uint8_t *der[TLS_RESUME_MAX_CERTS];   /* into bytes[] */
	size_t len[TLS_RESUME_MAX_CERTS];
	uint8_t bytes[];
};

static int stash_idx = -1;
static pthread_once_t stash_once = PTHREAD_ONCE_INIT;

static void stash_release(struct stash *st)
{
	if (st) {
		X509_free(st->leaf);
		free(st);
	}
}

static void stash_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	(void)parent, (void)ad, (void)index, (void)argl, (void)argp;
	stash_release(ptr);
}

/* Contexts built with --crl carry a mark (no allocation: a non-NULL
 * pointer value) so that a resumption knows a CRL of the issuer is
 * required, as verification requires one in a full handshake. */
static int crl_mark_idx = -1;

static void stash_index_alloc(void)
{
	stash_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, stash_free);
	crl_mark_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct stash *stash_get(const SSL *ssl)
{
	return stash_idx >= 0 ? SSL_get_ex_data(ssl, stash_idx) : NULL;
}

/* Takes |leaf|'s reference on success. */
static int stash_put(SSL *ssl, X509 *leaf, const struct tls_resume_blob *b)
{
	size_t total = 0, i;
	struct stash *st;

	for (i = 0; i < b->n_certs; i++)
		total += b->cert_len[i];
	if ((st = malloc(sizeof(*st) + total)) == NULL)
		return 0;
	st->leaf = leaf;
	st->n = b->n_certs;
	for (i = 0, total = 0; i < b->n_certs; i++) {
		memcpy(st->bytes + total, b->cert[i], b->cert_len[i]);
		st->der[i] = st->bytes + total;
		st->len[i] = b->cert_len[i];
		total += b->cert_len[i];
	}
	stash_release(stash_get(ssl));    /* a second PSK tried on the same hello */
	if (!SSL_set_ex_data(ssl, stash_idx, st)) {
		st->leaf = NULL;
		stash_release(st);
		return 0;
	}
	return 1;
}

/* The chain a ticket issued now carries: the one a resumed handshake
 * brought, or the one the client sent in this full handshake (BoringSSL
 * drops it only when the handshake ends, after the tickets are sealed).
 * Returns the number of certificates; |der| and |len| point into |ssl|. */
static size_t chain_now(SSL *ssl, const uint8_t **der, size_t *len)
{
	const STACK_OF(CRYPTO_BUFFER) *certs;
	size_t n = 0;

	if (SSL_session_reused(ssl)) {
		struct stash *st = stash_get(ssl);

		for (; st && n < st->n; n++) {
			der[n] = st->der[n];
			len[n] = st->len[n];
		}
		return n;
	}
	certs = SSL_get0_peer_certificates(ssl);
	for (; certs && n < sk_CRYPTO_BUFFER_num(certs) && n < TLS_RESUME_MAX_CERTS; n++) {
		der[n] = CRYPTO_BUFFER_data(sk_CRYPTO_BUFFER_value(certs, n));
		len[n] = CRYPTO_BUFFER_len(sk_CRYPTO_BUFFER_value(certs, n));
	}
	return n;
}

/* Exact, so that BoringSSL reserves no more than the ticket takes. */
static size_t max_overhead(SSL *ssl)
{
	const uint8_t *der[TLS_RESUME_MAX_CERTS];
	size_t len[TLS_RESUME_MAX_CERTS], n = chain_now(ssl, der, len), sid_len;

	SSL_get0_session_id_context(ssl, &sid_len);
	return TLS_TICKET_OVERHEAD + tls_resume_blob_size(sid_len, tls_resume_chain_size(len, n), 0);
}

/* The plaintext usually fits on the stack: a transient heap block of
 * every full handshake would fragment the heap idle connections live in. */
#define PLAIN_ON_STACK 4096

static int seal(SSL *ssl, uint8_t *out, size_t *out_len, size_t max_out, const uint8_t *in, size_t in_len)
{
	uint8_t stack_buf[PLAIN_ON_STACK], *plain = stack_buf;
	const uint8_t *der[TLS_RESUME_MAX_CERTS], *sid;
	size_t len[TLS_RESUME_MAX_CERTS], n = chain_now(ssl, der, len), sid_len, plain_len, sealed = 0;

	sid = SSL_get0_session_id_context(ssl, &sid_len);
	plain_len = tls_resume_blob_size(sid_len, tls_resume_chain_size(len, n), in_len);
	if (plain_len > sizeof(stack_buf) && (plain = malloc(plain_len)) == NULL)
		goto out;
	/* A client whose leaf is too large to carry gets a ticket that says
	 * it had a certificate but carries none: it will not resume. */
	if (tls_resume_blob_write(plain, plain_len, n > 0, sid, sid_len, der, len, n, in, in_len) == 0)
		goto out;
	sealed = tls_ticket_seal(SSL_get_SSL_CTX(ssl), out, max_out, plain, plain_len);
out:
	if (plain) {
		OPENSSL_cleanse(plain, plain_len);   /* it holds the session's secret */
		if (plain != stack_buf)
			free(plain);
	}
	*out_len = sealed;
	return sealed > 0;
}

static X509 *parse_cert(const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

static int wants_crl(SSL *ssl)
{
	return crl_mark_idx >= 0 && SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), crl_mark_idx) != NULL;
}

static int time_valid(const X509 *x)
{
	return X509_cmp_current_time(X509_get0_notBefore(x)) <= 0 &&
	       X509_cmp_current_time(X509_get0_notAfter(x)) >= 0;
}

/* Revoked or not by the current CRLs of |leaf|'s issuer in |store|. A CRL
 * past its nextUpdate (or before its lastUpdate) does not count, and with
 * no CRL in force the answer is "unverified", as a full handshake fails
 * then too. The CRLs' signatures were checked by full handshakes; the
 * file is the operator's. */
static unsigned crl_check(X509_STORE *store, X509 *leaf)
{
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	STACK_OF(X509_CRL) *crls = NULL;
	unsigned r = TLS_RESUME_UNVERIFIED;
	int current = 0;

	if (sctx == NULL || !X509_STORE_CTX_init(sctx, store, NULL, NULL) ||
	    (crls = X509_STORE_get1_crls(sctx, X509_get_issuer_name(leaf))) == NULL)
		goto out;
	for (size_t i = 0; i < sk_X509_CRL_num(crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(crls, i);
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
		X509_REVOKED *rev = NULL;

		if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0 ||
		    (next != NULL && X509_cmp_current_time(next) < 0))
			continue;
		current = 1;
		/* 1: listed; 2: listed as removeFromCRL (no longer revoked). */
		if (X509_CRL_get0_by_serial(crl, &rev, (ASN1_INTEGER *)X509_get0_serialNumber(leaf)) == 1) {
			r = TLS_RESUME_REVOKED;
			goto out;
		}
	}
	if (current)
		r = TLS_RESUME_ACCEPTED;
out:
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	X509_STORE_CTX_free(sctx);
	return r;
}

/*
 * What can have changed since the ticket was issued, given that its session
 * id context matches (so the --client-ca file is byte for byte the one that
 * verified this chain and its signatures): the certificates' validity
 * periods and the CRLs. On success the leaf is stashed for
 * tls_peer_take_leaf.
 */
static unsigned check_chain(SSL *ssl, const struct tls_resume_blob *b)
{
	X509 *leaf = NULL;
	unsigned r = TLS_RESUME_UNVERIFIED;   /* also: a chain too large to carry */

	if (b->n_certs == 0)
		goto out;
	for (size_t i = 0; i < b->n_certs; i++) {
		X509 *x = parse_cert(b->cert[i], b->cert_len[i]);
		int valid = x != NULL && time_valid(x);

		if (x == NULL)
			r = TLS_RESUME_MALFORMED;
		else if (!valid)
			r = TLS_RESUME_EXPIRED;
		if (i == 0 && valid)
			leaf = x;
		else
			X509_free(x);
		if (!valid)
			goto out;
	}
	if (wants_crl(ssl) &&
	    (r = crl_check(SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), leaf)) != TLS_RESUME_ACCEPTED)
		goto out;
	r = TLS_RESUME_UNVERIFIED;
	if (!stash_put(ssl, leaf, b))
		goto out;
	leaf = NULL;
	r = TLS_RESUME_ACCEPTED;
out:
	X509_free(leaf);
	ERR_clear_error();
	return r;
}

static enum ssl_ticket_aead_result_t open_ticket(SSL *ssl, uint8_t *out, size_t *out_len,
                                                 size_t max_out, const uint8_t *in, size_t in_len)
{
	struct tls_peer *peer = tls_peer_of(ssl);
	struct tls_resume_blob b;
	const uint8_t *sid;
	size_t sid_len, plain_len = 0;
	unsigned r = TLS_RESUME_ACCEPTED;

	/* Another key's ticket, or a damaged one: quietly a full handshake. */
	if (!tls_ticket_open(SSL_get_SSL_CTX(ssl), out, &plain_len, max_out, in, in_len))
		return ssl_ticket_aead_ignore_ticket;
	sid = SSL_get0_session_id_context(ssl, &sid_len);
	if (!tls_resume_blob_parse(out, plain_len, &b))
		r = TLS_RESUME_MALFORMED;
	else if (b.sid_ctx_len != sid_len || CRYPTO_memcmp(b.sid_ctx, sid, sid_len) != 0)
		r = TLS_RESUME_CA_CHANGED;
	else if (b.had_cert)
		r = check_chain(ssl, &b);
	if (r != TLS_RESUME_ACCEPTED) {
		if (peer)
			peer->resume_refused = (uint8_t)r;
		OPENSSL_cleanse(out, plain_len);
		return ssl_ticket_aead_ignore_ticket;
	}
	memmove(out, b.session, b.session_len);
	*out_len = b.session_len;
	return ssl_ticket_aead_success;
}

static const SSL_TICKET_AEAD_METHOD ticket_method = {
	.max_overhead = max_overhead,
	.seal = seal,
	.open = open_ticket,
};

/*
 * The identity is taken only now that the resumption is certain: BoringSSL
 * may still turn down a session we opened (another version or cipher), and
 * then the full handshake's certificate is the one that counts.
 */
static void handshake_done(const SSL *cssl, int type, int value)
{
	/* BoringSSL hands the connection it is running as const; its ex_data
	 * slot is ours to clear. */
	SSL *ssl = (SSL *)cssl;
	struct stash *st;
	struct tls_peer *peer;

	(void)value;
	if (type != SSL_CB_HANDSHAKE_DONE || (st = stash_get(ssl)) == NULL)
		return;
	if (SSL_session_reused(ssl) && (peer = tls_peer_of(ssl)) != NULL)
		tls_peer_take_leaf(peer, st->leaf);
	SSL_set_ex_data(ssl, stash_idx, NULL);
	stash_release(st);
}

/* SHA-256 of the mode and the file: any change to either gives another
 * session id context, and BoringSSL then resumes no older session. */
static int hash_ca_file(const char *path, int required, uint8_t out[SHA256_DIGEST_LENGTH])
{
	static const char label[] = "mqtls client-ca v1";
	uint8_t chunk[4096], mode = required ? 'r' : 'o';
	SHA256_CTX h;
	FILE *f = fopen(path, "rb");
	size_t n;
	int ok;

	if (f == NULL)
		return 0;
	SHA256_Init(&h);
	SHA256_Update(&h, label, sizeof(label));
	SHA256_Update(&h, &mode, 1);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		SHA256_Update(&h, chunk, n);
	ok = !ferror(f);
	fclose(f);
	SHA256_Final(out, &h);
	return ok;
}

int tls_resume_install(SSL_CTX *ctx, const char *ca_file, int required, int crl, char *err,
                       size_t errlen)
{
	uint8_t sid[SHA256_DIGEST_LENGTH];

	pthread_once(&stash_once, stash_index_alloc);
	if (!hash_ca_file(ca_file, required, sid)) {
		snprintf(err, errlen, "--client-ca %s: %s", ca_file, strerror(errno));
		return 0;
	}
	if (stash_idx < 0 || crl_mark_idx < 0 || !SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) ||
	    (crl && !SSL_CTX_set_ex_data(ctx, crl_mark_idx, ctx))) {
		snprintf(err, errlen, "--client-ca %s: cannot set up session resumption", ca_file);
		return 0;
	}
	SSL_CTX_set_ticket_aead_method(ctx, &ticket_method);
	SSL_CTX_set_info_callback(ctx, handshake_done);
	return 1;
}
