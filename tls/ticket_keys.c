#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/aes.h>
#include <openssl/base64.h>
#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <time.h>

#include "tls/ticket_keys.h"

#define MAX_KEYS 64
#define LINE_MAX_LEN 256

struct ticket_key {
	uint8_t name[16];
	uint8_t aes[32];
	uint8_t hmac[32];
	size_t key_len;          /* 16 or 32: AES-128 or AES-256, HMAC key as long */
};

struct ticket_keys {
	size_t n;
	struct ticket_key key[MAX_KEYS];
};

static int keys_idx = -1;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void free_keys(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl, void *argp)
{
	if (ptr) {
		OPENSSL_cleanse(ptr, sizeof(struct ticket_keys));
		free(ptr);
	}
}

static void index_alloc(void)
{
	keys_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_keys);
}

static const struct ticket_keys *keys_of(SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_idx);
}

static const EVP_CIPHER *cipher_of(const struct ticket_key *k)
{
	return k->key_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
}

/* BoringSSL's ticket callback: seal with the first key; open with the one
 * the ticket names (2: valid, but issue a fresh ticket with the first). */
static int ticket_cb(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cctx, HMAC_CTX *hctx, int encrypt)
{
	const struct ticket_keys *ks = keys_of(ssl);
	const struct ticket_key *k = NULL;
	size_t i;

	if (ks == NULL || ks->n == 0)
		return encrypt ? -1 : 0;
	if (encrypt) {
		k = &ks->key[0];
		memcpy(name, k->name, 16);
		if (!RAND_bytes(iv, EVP_CIPHER_iv_length(cipher_of(k))) ||
		    !EVP_EncryptInit_ex(cctx, cipher_of(k), NULL, k->aes, iv) ||
		    !HMAC_Init_ex(hctx, k->hmac, k->key_len, EVP_sha256(), NULL))
			return -1;
		return 1;
	}
	for (i = 0; i < ks->n; i++) {
		if (CRYPTO_memcmp(ks->key[i].name, name, 16) == 0) {
			k = &ks->key[i];
			break;
		}
	}
	if (k == NULL)
		return 0;    /* not ours (or retired): a full handshake */
	if (!HMAC_Init_ex(hctx, k->hmac, k->key_len, EVP_sha256(), NULL) ||
	    !EVP_DecryptInit_ex(cctx, cipher_of(k), NULL, k->aes, iv))
		return -1;
	return i == 0 ? 1 : 2;
}

/* One line: base64 of 48 or 80 bytes, spaces around allowed. */
static int parse_line(const char *s, struct ticket_key *k)
{
	uint8_t raw[96];
	size_t n = 0, len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strcspn(s, " \t\r\n");
	if (!EVP_DecodeBase64(raw, &n, sizeof(raw), (const uint8_t *)s, len) || (n != 48 && n != 80))
		return 0;
	k->key_len = n == 48 ? 16 : 32;
	memcpy(k->name, raw, 16);
	memcpy(k->aes, raw + 16, k->key_len);
	memcpy(k->hmac, raw + 16 + k->key_len, k->key_len);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 1;
}

int tls_ticket_keys_install(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
	struct ticket_keys *ks = NULL;
	char line[LINE_MAX_LEN];
	int lineno = 0, ok = 0;
	FILE *f;

	pthread_once(&keys_once, index_alloc);
	if (keys_idx < 0) {
		snprintf(err, errlen, "--ticket-keys %s: out of memory", path);
		return 0;
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "--ticket-keys %s: cannot open it", path);
		return 0;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL) {
		snprintf(err, errlen, "--ticket-keys %s: out of memory", path);
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		const char *s = line;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#')
			continue;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "--ticket-keys %s:%d: line too long", path, lineno);
			goto out;
		}
		if (ks->n == MAX_KEYS) {
			snprintf(err, errlen, "--ticket-keys %s:%d: more than %d keys", path, lineno, MAX_KEYS);
			goto out;
		}
		if (!parse_line(s, &ks->key[ks->n])) {
			snprintf(err, errlen, "--ticket-keys %s:%d: not base64 of a 48- or 80-byte key", path, lineno);
			goto out;
		}
		ks->n++;
	}
	if (ks->n == 0) {
		snprintf(err, errlen, "--ticket-keys %s: no keys", path);
		goto out;
	}
	if (!SSL_CTX_set_ex_data(ctx, keys_idx, ks)) {
		snprintf(err, errlen, "--ticket-keys %s: out of memory", path);
		goto out;
	}
	ks = NULL;    /* the context owns it now */
	SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb);
	ok = 1;
out:
	if (ks) {
		OPENSSL_cleanse(ks, sizeof(*ks));
		free(ks);
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return ok;
}

/*
 * This process's own keys, for contexts without --ticket-keys that seal
 * tickets themselves (tls_ticket_seal): they outlive reloads, which build
 * new contexts, and rotate like BoringSSL's (a new one every 48 hours, the
 * one before still opens tickets).
 */
#define OWN_KEY_SECONDS (2 * 24 * 60 * 60)

static struct {
	pthread_mutex_t lock;
	time_t made;             /* when key[0] was made; 0: none yet */
	struct ticket_keys ks;   /* key[0] seals, key[0..n-1] open */
} own = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int make_key(struct ticket_key *k)
{
	k->key_len = 32;
	return RAND_bytes(k->name, sizeof(k->name)) && RAND_bytes(k->aes, sizeof(k->aes)) &&
	       RAND_bytes(k->hmac, sizeof(k->hmac));
}

/* Copies the process keys into |out| (rotated first if due); 1/0. */
static int own_keys(struct ticket_keys *out)
{
	time_t now = time(NULL);
	int ok = 1;

	pthread_mutex_lock(&own.lock);
	if (own.made == 0 || now - own.made >= OWN_KEY_SECONDS || now < own.made) {
		struct ticket_key fresh;

		if (make_key(&fresh)) {
			own.ks.key[1] = own.ks.key[0];
			own.ks.key[0] = fresh;
			own.ks.n = own.made == 0 ? 1 : 2;
			own.made = now;
		} else {
			ok = own.made != 0;   /* keep using the current one */
		}
		OPENSSL_cleanse(&fresh, sizeof(fresh));
	}
	out->n = own.ks.n;
	memcpy(out->key, own.ks.key, own.ks.n * sizeof(out->key[0]));
	pthread_mutex_unlock(&own.lock);
	return ok && out->n > 0;
}

/* The keys |ctx| seals and opens with: its --ticket-keys (read-only after
 * install, so shared without a lock) or a copy of the process's. */
static const struct ticket_keys *keys_for(SSL_CTX *ctx, struct ticket_keys *copy)
{
	const struct ticket_keys *ks = keys_idx >= 0 ? SSL_CTX_get_ex_data(ctx, keys_idx) : NULL;

	if (ks != NULL && ks->n > 0)
		return ks;
	return own_keys(copy) ? copy : NULL;
}

size_t tls_ticket_seal(SSL_CTX *ctx, uint8_t *out, size_t max_out, const uint8_t *in, size_t in_len)
{
	struct ticket_keys copy;
	const struct ticket_keys *ks;
	const struct ticket_key *k;
	EVP_CIPHER_CTX c;
	size_t total = 0;
	unsigned mac_len = 0;
	int n1 = 0, n2 = 0;

	pthread_once(&keys_once, index_alloc);
	copy.n = 0;
	EVP_CIPHER_CTX_init(&c);
	if (in_len > TLS_TICKET_MAX_PLAIN || max_out < in_len + TLS_TICKET_OVERHEAD ||
	    (ks = keys_for(ctx, &copy)) == NULL)
		goto out;
	k = &ks->key[0];
	memcpy(out, k->name, 16);
	if (!RAND_bytes(out + 16, 16) || !EVP_EncryptInit_ex(&c, cipher_of(k), NULL, k->aes, out + 16) ||
	    !EVP_EncryptUpdate(&c, out + 32, &n1, in, (int)in_len) ||
	    !EVP_EncryptFinal_ex(&c, out + 32 + n1, &n2))
		goto out;
	/* Encrypt-then-MAC over name, IV and ciphertext. */
	if (HMAC(EVP_sha256(), k->hmac, k->key_len, out, 32 + (size_t)n1 + (size_t)n2,
	         out + 32 + n1 + n2, &mac_len) == NULL || mac_len != 32)
		goto out;
	total = 32 + (size_t)n1 + (size_t)n2 + 32;
out:
	EVP_CIPHER_CTX_cleanup(&c);
	OPENSSL_cleanse(&copy, sizeof(copy.key[0]) * copy.n);
	return total;
}

int tls_ticket_open(SSL_CTX *ctx, uint8_t *out, size_t *out_len, size_t max_out, const uint8_t *in,
                    size_t in_len)
{
	struct ticket_keys copy;
	const struct ticket_keys *ks;
	const struct ticket_key *k = NULL;
	uint8_t mac[32];
	unsigned mac_len = 0;
	size_t ct_len, i;
	EVP_CIPHER_CTX c;
	int n1 = 0, n2 = 0, ok = 0;

	pthread_once(&keys_once, index_alloc);
	copy.n = 0;
	EVP_CIPHER_CTX_init(&c);
	/* Name, IV, at least one cipher block, MAC; CBC output is whole blocks. */
	if (in_len < TLS_TICKET_OVERHEAD || in_len > TLS_TICKET_MAX_PLAIN + TLS_TICKET_OVERHEAD ||
	    (in_len - 64) % 16 != 0)
		goto out;
	ct_len = in_len - 64;
	if (max_out < ct_len || (ks = keys_for(ctx, &copy)) == NULL)
		goto out;
	for (i = 0; i < ks->n && k == NULL; i++) {
		if (CRYPTO_memcmp(ks->key[i].name, in, 16) == 0)
			k = &ks->key[i];
	}
	if (k == NULL ||
	    HMAC(EVP_sha256(), k->hmac, k->key_len, in, 32 + ct_len, mac, &mac_len) == NULL ||
	    mac_len != 32 || CRYPTO_memcmp(mac, in + 32 + ct_len, 32) != 0)
		goto out;
	if (!EVP_DecryptInit_ex(&c, cipher_of(k), NULL, k->aes, in + 16) ||
	    !EVP_DecryptUpdate(&c, out, &n1, in + 32, (int)ct_len) ||
	    !EVP_DecryptFinal_ex(&c, out + n1, &n2))
		goto out;
	*out_len = (size_t)n1 + (size_t)n2;
	ok = 1;
out:
	EVP_CIPHER_CTX_cleanup(&c);
	OPENSSL_cleanse(&copy, sizeof(copy.key[0]) * copy.n);
	ERR_clear_error();
	return ok;
}
