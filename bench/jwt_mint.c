/*
 * Minting JWTs for mqtls-bench (jwt_mint.h): JWS compact serialization
 * (RFC 7515) signed with BoringSSL, base64url without padding.
 */
#include "bench/jwt_mint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "proxy/auth/b64.h"

#define KEY_FILE_MAX (1u << 20)
#define TEMPLATE_MAX 1024
#define HMAC_MIN 32
#define RSA_MIN_BITS 2048
#define SIG_MAX 1024            /* RSA up to 8192 bits */
#define DEFAULT_CLAIMS "{\"sub\":\"bench-%i\"}"

enum mint_kind { KIND_HMAC, KIND_ECDSA, KIND_EDDSA, KIND_RSA };
enum mint_key { KEY_HMAC, KEY_P256, KEY_P384, KEY_ED25519, KEY_RSA };

struct alg_def {
	const char *name;
	enum mint_kind kind;
	enum mint_key key;
	const EVP_MD *(*md)(void);
	int nid;                /* RSA_sign's digest NID */
	size_t half;            /* ECDSA: bytes of r and of s */
};

/* The first row for each key type is its default. */
static const struct alg_def algs[] = {
	{ "HS256", KIND_HMAC, KEY_HMAC, EVP_sha256, 0, 0 },
	{ "HS384", KIND_HMAC, KEY_HMAC, EVP_sha384, 0, 0 },
	{ "HS512", KIND_HMAC, KEY_HMAC, EVP_sha512, 0, 0 },
	{ "ES256", KIND_ECDSA, KEY_P256, EVP_sha256, 0, 32 },
	{ "ES384", KIND_ECDSA, KEY_P384, EVP_sha384, 0, 48 },
	{ "EdDSA", KIND_EDDSA, KEY_ED25519, NULL, 0, 0 },
	{ "RS256", KIND_RSA, KEY_RSA, EVP_sha256, NID_sha256, 0 },
	{ "RS384", KIND_RSA, KEY_RSA, EVP_sha384, NID_sha384, 0 },
	{ "RS512", KIND_RSA, KEY_RSA, EVP_sha512, NID_sha512, 0 },
};

#define ALGS_LEN (sizeof(algs) / sizeof(algs[0]))

struct jwt_minter {
	const struct alg_def *alg;
	EVP_PKEY *pkey;             /* owned; ECDSA and RSA */
	uint8_t ed_priv[64];        /* EdDSA: seed and public key */
	uint8_t *secret;            /* owned; HMAC */
	size_t secret_len;
	char *claims;               /* owned: the template */
	int add_iat, add_exp;
	int64_t ttl_s;
	char *header;               /* owned: base64url of the header JSON */
	size_t header_len;
};

static const struct alg_def *pick_alg(enum mint_key key, const char *name, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < ALGS_LEN; i++) {
		if (algs[i].key != key)
			continue;
		if (name == NULL || strcmp(name, algs[i].name) == 0)
			return &algs[i];
	}
	snprintf(err, errlen, "--jwt-alg %s does not fit the key", name);
	return NULL;
}

/* Reads a PEM private key into |m|; returns the key type or -1. */
static int load_pem(struct jwt_minter *m, const uint8_t *key, size_t len, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(key, len);
	uint8_t seed[32], pub[32];
	size_t seed_len = sizeof(seed);
	int type = -1, nid;

	m->pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (m->pkey == NULL) {
		snprintf(err, errlen, "the key file holds no PEM private key");
		return -1;
	}
	switch (EVP_PKEY_id(m->pkey)) {
	case EVP_PKEY_EC:
		nid = EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(m->pkey)));
		type = nid == NID_X9_62_prime256v1 ? KEY_P256 : nid == NID_secp384r1 ? KEY_P384 : -1;
		break;
	case EVP_PKEY_ED25519:
		if (EVP_PKEY_get_raw_private_key(m->pkey, seed, &seed_len) && seed_len == sizeof(seed)) {
			ED25519_keypair_from_seed(pub, m->ed_priv, seed);
			type = KEY_ED25519;
		}
		OPENSSL_cleanse(seed, sizeof(seed));
		break;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_bits(m->pkey) < RSA_MIN_BITS || RSA_size(EVP_PKEY_get0_RSA(m->pkey)) > SIG_MAX) {
			snprintf(err, errlen, "RSA keys must have 2048 to 8192 bits");
			return -1;
		}
		type = KEY_RSA;
		break;
	}
	if (type < 0)
		snprintf(err, errlen, "the private key is not EC P-256/P-384, Ed25519 or RSA");
	return type;
}

static int load_secret(struct jwt_minter *m, const uint8_t *key, size_t len, char *err, size_t errlen)
{
	if (len > 0 && key[len - 1] == '\n')
		len--;
	if (len > 0 && key[len - 1] == '\r')
		len--;
	if (len < HMAC_MIN) {
		snprintf(err, errlen, "an HMAC secret needs at least %d bytes", HMAC_MIN);
		return 0;
	}
	m->secret = malloc(len);
	if (m->secret == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	memcpy(m->secret, key, len);
	m->secret_len = len;
	return 1;
}

/* Writes the template with %i replaced by |index| into |out| (capacity
 * |cap|); returns the length, or 0 if it does not fit. */
static size_t substitute(const char *tmpl, uint32_t index, char *out, size_t cap)
{
	char num[16];
	size_t n = 0, k, numlen = (size_t)snprintf(num, sizeof(num), "%" PRIu32, index);
	const char *p;

	for (p = tmpl; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 'i') {
			if (cap - n <= numlen)
				return 0;
			memcpy(out + n, num, numlen);
			n += numlen;
			p++;
			continue;
		}
		if (cap - n <= 1)
			return 0;
		out[n++] = *p;
	}
	out[n] = '\0';
	for (k = n; k > 0 && strchr(" \t\r\n", out[k - 1]) != NULL; k--)
		;
	return k;
}

/* Checks the template is one JSON object and notes which times it sets. */
static int check_template(struct jwt_minter *m, char *err, size_t errlen)
{
	char text[TEMPLATE_MAX + 16];
	size_t n = substitute(m->claims, 0, text, sizeof(text));
	json_t *obj = n > 0 ? json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
	int ok = obj != NULL && json_is_object(obj) && text[n - 1] == '}';

	if (ok) {
		m->add_iat = json_object_get(obj, "iat") == NULL;
		m->add_exp = json_object_get(obj, "exp") == NULL;
	} else {
		snprintf(err, errlen, "--jwt-claims must be a JSON object of at most %d bytes", TEMPLATE_MAX);
	}
	json_decref(obj);
	return ok;
}

static int make_header(struct jwt_minter *m, const char *kid, char *err, size_t errlen)
{
	json_t *h = json_pack("{s:s,s:s}", "alg", m->alg->name, "typ", "JWT");
	char *text = NULL;
	size_t cap;
	int ok = 0;

	if (h != NULL && kid != NULL && json_object_set_new(h, "kid", json_string(kid)) != 0)
		goto err;
	text = h != NULL ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text == NULL)
		goto err;
	cap = b64_encoded_len(strlen(text), B64_URL) + 1;
	m->header = malloc(cap);
	if (m->header == NULL || !b64_encode((const uint8_t *)text, strlen(text), B64_URL, m->header, cap))
		goto err;
	m->header_len = cap - 1;
	ok = 1;
err:
	if (!ok)
		snprintf(err, errlen, "--jwt-kid must be valid UTF-8");
	free(text);
	json_decref(h);
	return ok;
}

struct jwt_minter *jwt_minter_new(const uint8_t *key, size_t len, const struct jwt_mint_config *cfg,
                                  char *err, size_t errlen)
{
	struct jwt_minter *m = calloc(1, sizeof(*m));
	const char *claims = cfg->claims != NULL ? cfg->claims : DEFAULT_CLAIMS;
	int type;

	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (len >= 10 && memmem(key, len, "-----BEGIN", 10) != NULL)
		type = load_pem(m, key, len, err, errlen);
	else
		type = load_secret(m, key, len, err, errlen) ? KEY_HMAC : -1;
	if (type < 0 || (m->alg = pick_alg((enum mint_key)type, cfg->alg, err, errlen)) == NULL)
		goto err;
	/* RFC 7518 3.2: a key at least as long as the hash, as the proxy checks. */
	if (m->alg->kind == KIND_HMAC && m->secret_len < EVP_MD_size(m->alg->md())) {
		snprintf(err, errlen, "%s needs an HMAC secret of at least %zu bytes", m->alg->name,
		         EVP_MD_size(m->alg->md()));
		goto err;
	}
	m->ttl_s = cfg->ttl_s;
	if (strlen(claims) > TEMPLATE_MAX || (m->claims = strdup(claims)) == NULL) {
		snprintf(err, errlen, "--jwt-claims is longer than %d bytes", TEMPLATE_MAX);
		goto err;
	}
	if (!check_template(m, err, errlen) || !make_header(m, cfg->kid, err, errlen))
		goto err;
	return m;
err:
	jwt_minter_free(m);
	return NULL;
}

struct jwt_minter *jwt_minter_load(const char *path, const struct jwt_mint_config *cfg,
                                   char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(KEY_FILE_MAX + 1);
	struct jwt_minter *m = NULL;
	size_t n;

	if (f == NULL || buf == NULL) {
		snprintf(err, errlen, "cannot read %s", path);
		goto done;
	}
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f) || n > KEY_FILE_MAX)
		snprintf(err, errlen, "cannot read %s (or it exceeds 1 MiB)", path);
	else
		m = jwt_minter_new(buf, n, cfg, err, errlen);
	OPENSSL_cleanse(buf, n);
done:
	if (f != NULL)
		fclose(f);
	free(buf);
	return m;
}

void jwt_minter_free(struct jwt_minter *m)
{
	if (m == NULL)
		return;
	EVP_PKEY_free(m->pkey);
	if (m->secret != NULL)
		OPENSSL_cleanse(m->secret, m->secret_len);
	free(m->secret);
	OPENSSL_cleanse(m->ed_priv, sizeof(m->ed_priv));
	free(m->claims);
	free(m->header);
	free(m);
}

const char *jwt_minter_alg(const struct jwt_minter *m)
{
	return m->alg->name;
}

/* Signs the |n| bytes at |in| into |sig|; returns its length or 0. */
static size_t sign(const struct jwt_minter *m, const uint8_t *in, size_t n, uint8_t *sig)
{
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned dig_len = 0, sig_len = 0;
	ECDSA_SIG *es;
	size_t out = 0;

	if (m->alg->md != NULL && m->alg->kind != KIND_HMAC &&
	    !EVP_Digest(in, n, dig, &dig_len, m->alg->md(), NULL))
		return 0;
	switch (m->alg->kind) {
	case KIND_HMAC:
		if (HMAC(m->alg->md(), m->secret, m->secret_len, in, n, sig, &sig_len) != NULL)
			out = sig_len;
		break;
	case KIND_ECDSA:
		/* JWS wants r and s as fixed-size big-endian halves, not DER. */
		es = ECDSA_do_sign(dig, dig_len, EVP_PKEY_get0_EC_KEY(m->pkey));
		if (es != NULL &&
		    BN_bn2bin_padded(sig, m->alg->half, ECDSA_SIG_get0_r(es)) &&
		    BN_bn2bin_padded(sig + m->alg->half, m->alg->half, ECDSA_SIG_get0_s(es)))
			out = 2 * m->alg->half;
		ECDSA_SIG_free(es);
		break;
	case KIND_EDDSA:
		if (ED25519_sign(sig, in, n, m->ed_priv))
			out = 64;
		break;
	case KIND_RSA:
		if (RSA_sign(m->alg->nid, dig, dig_len, sig, &sig_len, EVP_PKEY_get0_RSA(m->pkey)))
			out = sig_len;
		break;
	}
	ERR_clear_error();
	return out;
}

/* Appends "." and the base64url of |len| bytes at out + *n. */
static int append_b64(char *out, size_t cap, size_t *n, const uint8_t *data, size_t len)
{
	size_t need = 1 + b64_encoded_len(len, B64_URL);

	if (cap - *n <= need)
		return 0;
	out[(*n)++] = '.';
	if (!b64_encode(data, len, B64_URL, out + *n, cap - *n))
		return 0;
	*n += need - 1;
	return 1;
}

int jwt_minter_mint(const struct jwt_minter *m, uint32_t index, int64_t now, char *out, size_t cap,
                    size_t *len)
{
	char claims[TEMPLATE_MAX + 128];
	uint8_t sig[SIG_MAX];
	size_t n = substitute(m->claims, index, claims, sizeof(claims) - 64), k, sig_len;
	int w;

	if (n == 0 || cap <= m->header_len)
		return 0;
	/* Drop the closing brace to append the times the template lacks. */
	if (m->add_iat || m->add_exp) {
		for (k = n - 1; k > 0 && strchr(" \t\r\n", claims[k - 1]) != NULL; k--)
			;
		w = snprintf(claims + n - 1, sizeof(claims) - (n - 1), "%s",
		             claims[k - 1] == '{' ? "" : ",");
		n += (size_t)w - 1;
		if (m->add_iat)
			n += (size_t)snprintf(claims + n, sizeof(claims) - n, "\"iat\":%" PRId64 "%s",
			                      now, m->add_exp ? "," : "");
		if (m->add_exp)
			n += (size_t)snprintf(claims + n, sizeof(claims) - n, "\"exp\":%" PRId64,
			                      now + m->ttl_s);
		claims[n++] = '}';
	}
	memcpy(out, m->header, m->header_len);
	*len = m->header_len;
	if (!append_b64(out, cap, len, (const uint8_t *)claims, n))
		return 0;
	sig_len = sign(m, (const uint8_t *)out, *len, sig);
	if (sig_len == 0 || !append_b64(out, cap, len, sig, sig_len))
		return 0;
	return 1;
}
