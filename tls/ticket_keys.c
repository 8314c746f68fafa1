#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/aes.h>
#include <openssl/base64.h>
#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

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
