/*
 * Loading JWT verification keys; see jwt_keys.h.
 */
#include "proxy/auth/jwt_keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "proxy/auth/b64.h"

struct jwt_keyset {
	size_t count;
	struct jwt_key keys[JWT_KEYS_MAX_KEYS];
};

static void key_cleanup(struct jwt_key *k)
{
	free(k->kid);
	free(k->alg);
	EVP_PKEY_free(k->pkey);
	if (k->secret != NULL)
		OPENSSL_cleanse(k->secret, k->secret_len);
	free(k->secret);
	memset(k, 0, sizeof(*k));
}

void jwt_keyset_free(struct jwt_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->count; i++)
		key_cleanup(&ks->keys[i]);
	free(ks);
}

size_t jwt_keyset_count(const struct jwt_keyset *ks)
{
	return ks->count;
}

const struct jwt_key *jwt_keyset_get0(const struct jwt_keyset *ks, size_t i)
{
	return i < ks->count ? &ks->keys[i] : NULL;
}

/* Reserves the next slot, or reports that the set is full. */
static struct jwt_key *next_slot(struct jwt_keyset *ks, char *err, size_t errlen)
{
	if (ks->count == JWT_KEYS_MAX_KEYS) {
		snprintf(err, errlen, "more than %d keys", JWT_KEYS_MAX_KEYS);
		return NULL;
	}
	memset(&ks->keys[ks->count], 0, sizeof(ks->keys[0]));
	return &ks->keys[ks->count];
}

/* Classifies `pkey` and stores it in the next slot. Takes ownership of
 * `pkey` whatever the outcome. `what` names the key in messages. */
static int add_pkey(struct jwt_keyset *ks, EVP_PKEY *pkey, const char *what, char *err,
		    size_t errlen)
{
	struct jwt_key *k = next_slot(ks, err, errlen);
	enum jwt_key_type type;

	if (k == NULL)
		goto err;
	switch (EVP_PKEY_id(pkey)) {
	case EVP_PKEY_RSA:
		if (RSA_bits(EVP_PKEY_get0_RSA(pkey)) < JWT_MIN_RSA_BITS) {
			snprintf(err, errlen, "%s: RSA key shorter than %d bits", what,
				 JWT_MIN_RSA_BITS);
			goto err;
		}
		type = JWT_KEY_RSA;
		break;
	case EVP_PKEY_EC:
		switch (EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pkey)))) {
		case NID_X9_62_prime256v1:
			type = JWT_KEY_EC_P256;
			break;
		case NID_secp384r1:
			type = JWT_KEY_EC_P384;
			break;
		default:
			snprintf(err, errlen, "%s: EC curve other than P-256 or P-384", what);
			goto err;
		}
		break;
	case EVP_PKEY_ED25519:
		type = JWT_KEY_ED25519;
		break;
	default:
		snprintf(err, errlen, "%s: unsupported key type", what);
		goto err;
	}
	k->type = type;
	k->pkey = pkey;
	ks->count++;
	return 1;
err:
	EVP_PKEY_free(pkey);
	return 0;
}

/* Turns one PEM block into a public key, or NULL. */
static EVP_PKEY *pem_block_key(const char *name, const uint8_t *data, long len,
			       const char **why)
{
	EVP_PKEY *pkey = NULL;
	const uint8_t *p = data;
	X509 *cert;
	RSA *rsa;
	CBS cbs;

	CBS_init(&cbs, data, (size_t)len);
	*why = "malformed key";
	if (strcmp(name, "PUBLIC KEY") == 0) {
		pkey = EVP_parse_public_key(&cbs);
		if (pkey != NULL && CBS_len(&cbs) != 0) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	} else if (strcmp(name, "RSA PUBLIC KEY") == 0) {
		rsa = RSA_parse_public_key(&cbs);
		if (rsa != NULL && CBS_len(&cbs) == 0 && (pkey = EVP_PKEY_new()) != NULL &&
		    EVP_PKEY_assign_RSA(pkey, rsa))
			rsa = NULL;
		RSA_free(rsa);
	} else if (strcmp(name, "CERTIFICATE") == 0) {
		cert = d2i_X509(NULL, &p, len);
		if (cert != NULL)
			pkey = X509_get_pubkey(cert);
		X509_free(cert);
	} else if (strstr(name, "PRIVATE KEY") != NULL) {
		*why = "private key (give the public key only)";
	} else {
		*why = "unsupported PEM block";
	}
	return pkey;
}

static int load_pem(struct jwt_keyset *ks, const uint8_t *data, size_t len, char *err,
		    size_t errlen)
{
	/* The file size limit keeps len far below INT_MAX. */
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	char *name = NULL, *header = NULL, what[32];
	uint8_t *der = NULL;
	long derlen = 0;
	const char *why;
	EVP_PKEY *pkey;
	int ok = 0;
	unsigned n = 0;

	if (bio == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	ERR_clear_error();   /* so that the check after the loop sees only ours */
	while (PEM_read_bio(bio, &name, &header, &der, &derlen)) {
		n++;
		snprintf(what, sizeof(what), "PEM block %u", n);
		pkey = pem_block_key(name, der, derlen, &why);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
		if (pkey == NULL) {
			snprintf(err, errlen, "%s: %s", what, why);
			goto err;
		}
		if (!add_pkey(ks, pkey, what, err, errlen))
			goto err;
	}
	/* PEM_read_bio fails at the end of the input with "no start line";
	 * any other failure is a damaged block. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		snprintf(err, errlen, "PEM block %u: malformed", n + 1);
		goto err;
	}
	ok = 1;
err:
	ERR_clear_error();
	BIO_free(bio);
	return ok;
}

/* A JWK member holding base64url; `exact` > 0 demands that many bytes. */
static int jwk_bytes(json_t *jwk, const char *member, size_t exact, uint8_t **out,
		     size_t *outlen)
{
	const char *s = json_string_value(json_object_get(jwk, member));
	size_t slen;

	*out = NULL;
	if (s == NULL)
		return 0;
	slen = json_string_length(json_object_get(jwk, member));
	*out = malloc(b64_decoded_max(slen));
	if (*out == NULL)
		return 0;
	if (!b64_decode(s, slen, B64_URL | B64_PAD_OPTIONAL, *out, b64_decoded_max(slen),
			outlen) ||
	    *outlen == 0 || (exact > 0 && *outlen != exact)) {
		free(*out);
		*out = NULL;
		return 0;
	}
	return 1;
}

static EVP_PKEY *jwk_rsa(json_t *jwk)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nlen, elen;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	RSA *rsa = NULL;
	EVP_PKEY *pkey = NULL;

	if (!jwk_bytes(jwk, "n", 0, &n, &nlen) || !jwk_bytes(jwk, "e", 0, &e, &elen))
		goto err;
	bn_n = BN_bin2bn(n, nlen, NULL);
	bn_e = BN_bin2bn(e, elen, NULL);
	rsa = RSA_new();
	if (bn_n == NULL || bn_e == NULL || rsa == NULL || !RSA_set0_key(rsa, bn_n, bn_e, NULL))
		goto err;
	bn_n = bn_e = NULL;
	if (!RSA_check_key(rsa) || (pkey = EVP_PKEY_new()) == NULL ||
	    !EVP_PKEY_assign_RSA(pkey, rsa))
		goto err;
	rsa = NULL;
	free(n);
	free(e);
	return pkey;
err:
	EVP_PKEY_free(pkey);
	RSA_free(rsa);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return NULL;
}

static EVP_PKEY *jwk_ec(json_t *jwk, int nid, size_t coord_len)
{
	uint8_t *x = NULL, *y = NULL;
	size_t xlen, ylen;
	BIGNUM *bx = NULL, *by = NULL;
	EC_KEY *ec = NULL;
	EVP_PKEY *pkey = NULL;

	if (!jwk_bytes(jwk, "x", coord_len, &x, &xlen) || !jwk_bytes(jwk, "y", coord_len, &y, &ylen))
		goto err;
	bx = BN_bin2bn(x, xlen, NULL);
	by = BN_bin2bn(y, ylen, NULL);
	ec = EC_KEY_new_by_curve_name(nid);
	/* This also checks that the point is on the curve. */
	if (bx == NULL || by == NULL || ec == NULL ||
	    !EC_KEY_set_public_key_affine_coordinates(ec, bx, by))
		goto err;
	if ((pkey = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_EC_KEY(pkey, ec))
		goto err;
	ec = NULL;
err:
	if (ec != NULL) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EC_KEY_free(ec);
	BN_free(bx);
	BN_free(by);
	free(x);
	free(y);
	return pkey;
}

static EVP_PKEY *jwk_ed25519(json_t *jwk)
{
	uint8_t *x = NULL;
	size_t xlen;
	EVP_PKEY *pkey = NULL;

	if (jwk_bytes(jwk, "x", 32, &x, &xlen))
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
	free(x);
	return pkey;
}

static int str_eq(json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* Copies an optional string member; 0 only if present but not a string
 * or out of memory. */
static int jwk_opt_string(json_t *jwk, const char *member, char **out)
{
	json_t *v = json_object_get(jwk, member);

	*out = NULL;
	if (v == NULL)
		return 1;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)))
		return 0;
	*out = strdup(json_string_value(v));
	return *out != NULL;
}

/* Adds one JWK. Returns 1 if it was added or deliberately skipped: an
 * encryption key, a type we cannot verify with, or (with |no_secrets|) an
 * HMAC secret. */
static int add_jwk(struct jwt_keyset *ks, json_t *jwk, size_t index, int no_secrets, char *err,
		   size_t errlen)
{
	json_t *kty = json_object_get(jwk, "kty"), *crv = json_object_get(jwk, "crv");
	json_t *use = json_object_get(jwk, "use");
	char what[32], *kid = NULL, *alg = NULL;
	EVP_PKEY *pkey = NULL;
	struct jwt_key *k;
	size_t before = ks->count;

	snprintf(what, sizeof(what), "key %zu", index);
	if (!json_is_object(jwk) || !json_is_string(kty)) {
		snprintf(err, errlen, "%s: not a JWK (no \"kty\")", what);
		return 0;
	}
	if (use != NULL && !str_eq(use, "sig"))
		return 1;   /* an encryption key, not ours to use */
	if (!jwk_opt_string(jwk, "kid", &kid) || !jwk_opt_string(jwk, "alg", &alg)) {
		snprintf(err, errlen, "%s: \"kid\" or \"alg\" is not a string", what);
		goto err;
	}
	if (!str_eq(kty, "oct") && json_object_get(jwk, "d") != NULL) {
		snprintf(err, errlen, "%s: private key (give the public key only)", what);
		goto err;
	}
	if (str_eq(kty, "oct") && no_secrets) {
		goto skip;
	} else if (str_eq(kty, "oct")) {
		if ((k = next_slot(ks, err, errlen)) == NULL)
			goto err;
		if (!jwk_bytes(jwk, "k", 0, &k->secret, &k->secret_len) ||
		    k->secret_len < JWT_MIN_HMAC_SECRET) {
			key_cleanup(k);
			snprintf(err, errlen, "%s: \"k\" missing, malformed or shorter than %d bytes",
				 what, JWT_MIN_HMAC_SECRET);
			goto err;
		}
		k->type = JWT_KEY_HMAC;
		ks->count++;
	} else {
		if (str_eq(kty, "RSA"))
			pkey = jwk_rsa(jwk);
		else if (str_eq(kty, "EC") && str_eq(crv, "P-256"))
			pkey = jwk_ec(jwk, NID_X9_62_prime256v1, 32);
		else if (str_eq(kty, "EC") && str_eq(crv, "P-384"))
			pkey = jwk_ec(jwk, NID_secp384r1, 48);
		else if (str_eq(kty, "OKP") && str_eq(crv, "Ed25519"))
			pkey = jwk_ed25519(jwk);
		else
			goto skip;   /* a type we cannot verify with */
		ERR_clear_error();
		if (pkey == NULL) {
			snprintf(err, errlen, "%s: malformed or invalid public key", what);
			goto err;
		}
		if (!add_pkey(ks, pkey, what, err, errlen))
			goto err;
	}
	ks->keys[before].kid = kid;
	ks->keys[before].alg = alg;
	return 1;
skip:
	free(kid);
	free(alg);
	return 1;
err:
	free(kid);
	free(alg);
	return 0;
}

/* A JWK Set, or (unless |set_only|) a single JWK. */
static int load_jwks(struct jwt_keyset *ks, const uint8_t *data, size_t len, int set_only,
		     int no_secrets, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *keys;
	size_t i;
	int ok = 0;

	root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "JSON error at line %d: %s", jerr.line, jerr.text);
		return 0;
	}
	keys = json_object_get(root, "keys");
	if (json_is_array(keys)) {
		for (i = 0; i < json_array_size(keys); i++)
			if (!add_jwk(ks, json_array_get(keys, i), i + 1, no_secrets, err, errlen))
				goto err;
	} else if (!set_only && json_is_object(root) && json_object_get(root, "kty") != NULL) {
		if (!add_jwk(ks, root, 1, no_secrets, err, errlen))
			goto err;
	} else if (set_only) {
		snprintf(err, errlen, "not a JWK set (no \"keys\" array)");
		goto err;
	} else {
		snprintf(err, errlen, "neither a JWK set (\"keys\" array) nor a JWK");
		goto err;
	}
	ok = 1;
err:
	json_decref(root);
	return ok;
}

static int load_secret(struct jwt_keyset *ks, const uint8_t *data, size_t len, char *err,
		       size_t errlen)
{
	struct jwt_key *k = next_slot(ks, err, errlen);

	if (k == NULL)
		return 0;
	if (len > 0 && data[len - 1] == '\n') {
		len--;
		if (len > 0 && data[len - 1] == '\r')
			len--;
	}
	if (len < JWT_MIN_HMAC_SECRET) {
		snprintf(err, errlen, "HMAC secret shorter than %d bytes", JWT_MIN_HMAC_SECRET);
		return 0;
	}
	k->secret = malloc(len);
	if (k->secret == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	memcpy(k->secret, data, len);
	k->secret_len = len;
	k->type = JWT_KEY_HMAC;
	ks->count++;
	return 1;
}

static int looks_like_json(const uint8_t *data, size_t len)
{
	size_t i = 0;

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	return i < len && data[i] == '{';
}

static int contains(const uint8_t *data, size_t len, const char *needle)
{
	return memmem(data, len, needle, strlen(needle)) != NULL;
}

struct jwt_keyset *jwt_keyset_parse(const uint8_t *data, size_t len, char *err, size_t errlen)
{
	struct jwt_keyset *ks = calloc(1, sizeof(*ks));
	int ok;

	if (ks == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (len > JWT_KEYS_MAX_FILE) {
		snprintf(err, errlen, "file too large");
		free(ks);
		return NULL;
	}
	if (contains(data, len, "-----BEGIN"))
		ok = load_pem(ks, data, len, err, errlen);
	else if (looks_like_json(data, len))
		ok = load_jwks(ks, data, len, 0, 0, err, errlen);
	else
		ok = load_secret(ks, data, len, err, errlen);
	if (ok && ks->count == 0) {
		snprintf(err, errlen, "no usable key");
		ok = 0;
	}
	if (!ok) {
		jwt_keyset_free(ks);
		return NULL;
	}
	return ks;
}

struct jwt_keyset *jwt_keyset_parse_jwks(const uint8_t *data, size_t len, char *err,
					 size_t errlen)
{
	struct jwt_keyset *ks = calloc(1, sizeof(*ks));

	if (ks == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (len > JWT_KEYS_MAX_FILE) {
		snprintf(err, errlen, "document too large");
	} else if (load_jwks(ks, data, len, 1, 1, err, errlen)) {
		if (ks->count > 0)
			return ks;
		snprintf(err, errlen, JWT_KEYS_NONE_USABLE " (signature keys of type RSA, "
			 "EC P-256/P-384 or Ed25519)");
	}
	jwt_keyset_free(ks);
	return NULL;
}

struct jwt_keyset *jwt_keyset_load(const char *path, char *err, size_t errlen)
{
	struct jwt_keyset *ks = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "rbe");
	char sub[200];

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(JWT_KEYS_MAX_FILE + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	len = fread(buf, 1, JWT_KEYS_MAX_FILE + 1, f);
	if (ferror(f) || len > JWT_KEYS_MAX_FILE) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ? "read error" : "file too large");
		goto err;
	}
	ks = jwt_keyset_parse(buf, len, sub, sizeof(sub));
	if (ks == NULL)
		snprintf(err, errlen, "%s: %s", path, sub);
err:
	if (buf != NULL)
		OPENSSL_cleanse(buf, len);
	free(buf);
	fclose(f);
	return ks;
}
