/*
 * Who may connect: the authentication policy and the material it uses.
 *
 * An auth_material is an immutable, reference-counted snapshot of the
 * password file, the JWT keys and the options, built from the
 * configuration at startup and again on SIGHUP; a session holds the snapshot
 * it started with until its decision is made.
 *
 * Precedence: the methods that *apply* to a CONNECT are
 *   cert      the client presented a verified certificate carrying the
 *             configured identity (--identity-as-username);
 *   jwt       the password looks like a JWT (three base64url parts, the
 *             first starting with "eyJ");
 *   password  both a username and a password are present.
 * The first applicable method in --auth order decides, and its failure
 * refuses the client: there is no fallback to the next method. When none
 * applies the client is anonymous, admitted only with --allow-anonymous.
 */
#ifndef PROXY_AUTH_POLICY_H
#define PROXY_AUTH_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/jwks_fetch.h"
#include "proxy/auth/jwt.h"
#include "proxy/auth/passwd.h"
#include "proxy/config.h"

struct acl;

enum auth_method {
	AUTH_NONE = 0,      /* no policy: pure TLS termination */
	AUTH_CERT,
	AUTH_JWT,
	AUTH_PASSWORD,
	AUTH_ANONYMOUS,
};

enum auth_verdict {
	AUTH_OK,
	AUTH_BAD_CREDENTIALS,   /* 3.1.1 code 4, 5.0 0x86 */
	AUTH_NOT_AUTHORIZED,    /* 3.1.1 code 5, 5.0 0x87 */
	AUTH_BAD_METHOD,        /* 5.0 0x8C: enhanced authentication */
	AUTH_UNAVAILABLE,       /* 3.1.1 code 3, 5.0 0x88: no keys from the identity provider yet */
};

#define AUTH_MAX_METHODS 3
/* Longest password that is hashed; a longer one is refused unhashed. Real
 * passwords are far shorter, and a 60 KB one queued for a slow hash was
 * an easy way to make a login storm cost memory. */
#define AUTH_MAX_PASSWORD 1024

struct auth_material {
	int refs;                          /* atomic */
	enum auth_method order[AUTH_MAX_METHODS];
	int n_order;                       /* 0: no policy */
	int allow_anonymous;
	int require_clientid_match;
	int inject;                        /* rewrite credentials towards the broker */
	struct passwd_db *users;           /* owned, or NULL */
	struct jwt_keyset *jwt;            /* owned, or NULL: the static keys (--jwt-keys) */
	int jwks;                          /* keys also come from the identity provider
	                                      (the request carries them: auth_request.jwks) */
	struct jwt_options jwt_opts;       /* strings owned below */
	char *jwt_issuer, *jwt_audience, *jwt_claim;
	int jwt_expiry_disconnect;
	uint32_t jwt_leeway;
	char *upstream_username;           /* owned, or NULL */
	uint8_t *upstream_password;        /* owned, or NULL: send none */
	size_t upstream_password_len;
	uint32_t fail_delay_ms;
	struct acl *acl;                   /* owned reference: --acl-file, or NULL */
	int acl_disconnect;                /* --acl-deny disconnect */
};

/*
 * Builds a snapshot from |cfg| (reading --users, --jwt-keys and
 * --upstream-password-file). With --jwt-jwks-url or --jwt-discovery the
 * JWT method is on, and the fetched keys come with each request. Returns NULL with a one-line reason in |err|
 * when a file cannot be read or has errors. The caller owns the reference.
 */
struct auth_material *auth_material_load(const struct config *cfg, char *err, size_t errlen);
struct auth_material *auth_material_ref(struct auth_material *m);
void auth_material_unref(struct auth_material *m);

/* Everything a decision needs, copied out of the CONNECT and the TLS layer
 * so that it can run on another thread. Owns all its buffers. */
struct auth_request {
	uint8_t version;
	char *client_id;
	size_t client_id_len;
	int has_username;
	char *username;
	size_t username_len;
	int has_password;
	uint8_t *password;           /* wiped by auth_request_cleanup */
	size_t password_len;
	char *cert_identity;         /* the configured certificate field, or NULL */
	int has_auth_method;         /* 5.0 enhanced authentication requested */
	struct jwks_keys *jwks;      /* reference to the fetched keys a JWT check uses, or NULL */
};

void auth_request_cleanup(struct auth_request *r);

struct auth_result {
	enum auth_verdict verdict;
	enum auth_method method;
	char *identity;              /* owned; the user the broker will see */
	int64_t expires;             /* token exp, 0 when none */
	struct acl *acl;             /* owned: the token's `acl` claim, or NULL */
	int refetch;                 /* refused for a kid the fetched keys lack: newer ones may have it */
	char detail[256];            /* for the log; never a secret */
};

void auth_result_cleanup(struct auth_result *r);

/* Picks the method that decides this request (cheap; no secret is checked).
 * AUTH_ANONYMOUS when none applies; AUTH_NONE without a policy. */
enum auth_method auth_select(const struct auth_material *m, const struct auth_request *r);

/* Checks estimated above this many microseconds run on the pool, not on
 * an event loop. */
#define AUTH_CHEAP_US 150
/* Checks estimated above this hold a pool thread long enough (password
 * hashes) to be limited per client address and per user name. */
#define AUTH_EXPENSIVE_US 2000

/* Estimated CPU time of auth_run for this request, in microseconds, so the
 * caller can move slow checks off its event loop. */
uint32_t auth_cost_us(const struct auth_material *m, enum auth_method method,
                      const struct auth_request *r);

/* Decides. Thread-safe; may take milliseconds for slow password hashes. */
void auth_run(const struct auth_material *m, enum auth_method method,
              const struct auth_request *r, int64_t now, struct auth_result *out);

const char *auth_method_name(enum auth_method m);

#endif
