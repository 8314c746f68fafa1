/*
 * Keys from an identity provider: the JWK Set at --jwt-jwks-url, or at the
 * `jwks_uri` of --jwt-issuer's OpenID discovery document (--jwt-discovery),
 * fetched over HTTPS on a thread of its own and refreshed without a
 * restart.
 *
 * Key sets: each successful fetch installs a new immutable, reference-
 * counted struct jwks_keys (one pointer swapped under the lock); a check
 * takes a reference to the current one and keeps it while it runs. A failed
 * fetch keeps the last good set. Static keys (--jwt-keys) live in the auth
 * snapshot; a check uses both (jwt_verify_sets).
 *
 * Refresh: after a success, when Cache-Control max-age says (clamped to
 * --jwt-jwks-refresh MIN..MAX; MIN when the response says nothing or
 * no-cache); after a failure, after 1, 2, 4 ... seconds, at most
 * min(MIN, 30 s).
 *
 * Unknown kid: a check that finds no key with its token's `kid` may park
 * (jwks_fetch_park). That asks for one fetch, at most one per
 * JWKS_KID_REFETCH_S seconds per process whatever the number of tokens,
 * and the parked checks are woken when it ends (with new keys or not).
 * A flood of random kids therefore costs the identity provider one request
 * per JWKS_KID_REFETCH_S.
 *
 * One fetcher per process, created by main and shared by every auth
 * snapshot; its counters are shown by metrics (mqtls_jwks_*).
 */
#ifndef PROXY_AUTH_JWKS_FETCH_H
#define PROXY_AUTH_JWKS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/jwks_source.h"
#include "proxy/auth/jwt_keys.h"
#include "proxy/config.h"

/* At most one fetch for unknown kids per this many seconds. */
#define JWKS_KID_REFETCH_S 30
/* How long main waits for the first fetch before it starts anyway. */
#define JWKS_STARTUP_WAIT_MS 2000
/* Longest wait for a failed fetch to be retried. */
#define JWKS_RETRY_MAX_S 30

/* One fetched key set: immutable once installed. */
struct jwks_keys {
	int refs;                   /* atomic */
	struct jwt_keyset *set;     /* owned */
	uint64_t gen;               /* 1 for the first set installed, then 2, ... */
	int64_t fetched_at;         /* seconds since the epoch */
};

/* Takes a reference (NULL-safe) and returns |k|. */
struct jwks_keys *jwks_keys_ref(struct jwks_keys *k);
/* Drops one; the last frees the set. NULL is a no-op. */
void jwks_keys_unref(struct jwks_keys *k);

/* Something waiting for a fetch to end: a check parked on an unknown kid.
 * Embedded in its owner, which stays alive until woken or taken back. */
struct jwks_waiter {
	/* Called once the fetch ended, on the fetcher's thread (or in
	 * jwks_fetch_stop), without the fetcher's lock held. */
	void (*wake)(struct jwks_waiter *w);
	void *arg;                  /* the owner's */
	struct jwks_waiter *next;   /* the fetcher's list */
};

/* How to fetch; every string is borrowed for the call to jwks_fetch_new. */
struct jwks_opts {
	const char *url;            /* the JWK Set, or NULL for discovery */
	const char *issuer;         /* discovery: <issuer>/.well-known/openid-configuration */
	const char *ca_file;        /* NULL: the system's trusted certificates */
	uint32_t refresh_min_s, refresh_max_s;
	uint32_t kid_refetch_s;     /* 0: JWKS_KID_REFETCH_S */
	/* For tests: replaces discovery and HTTPS. Returns the result and, on
	 * JWKS_OK, a new key set in *out and the freshness in *fresh_s (-1: none). */
	enum jwks_result (*fetch)(void *arg, struct jwt_keyset **out, int64_t *fresh_s, char *why,
	                          size_t whylen);
	void *fetch_arg;
};

struct jwks_fetch;

/* Creates the fetcher and starts its thread, which fetches at once.
 * Returns NULL with the reason in |err| (bad options, a CA file that does
 * not load, no thread). */
struct jwks_fetch *jwks_fetch_new(const struct jwks_opts *o, char *err, size_t errlen);

/* jwks_fetch_new from the configuration: *out is NULL when |cfg| asks for
 * no identity provider. Returns 1, or 0 with the reason in |err|. */
int jwks_fetch_start(const struct config *cfg, struct jwks_fetch **out, char *err, size_t errlen);

/* Waits up to |timeout_ms| for the first fetch to end; 1 if keys are
 * loaded (a fetch still running by then is logged). NULL: returns 1 at
 * once. */
int jwks_fetch_wait_first(struct jwks_fetch *f, int timeout_ms);

/* The current key set with a new reference, or NULL before the first
 * success (and for f == NULL). Thread-safe. */
struct jwks_keys *jwks_fetch_current(struct jwks_fetch *f);

enum jwks_park {
	JWKS_PARKED,        /* |w| will be woken when the fetch in progress ends */
	JWKS_RETRY,         /* keys newer than |seen_gen| are already installed */
	JWKS_NOT_PARKED,    /* no fetch now: the rate limit, no keys yet, or stopped */
};

/*
 * A check found no key for its token's kid in key set |seen_gen| (0: it
 * had none). Parks |w| on the fetch in progress, or on a new one when the
 * rate limit allows and keys were loaded before (before the first success
 * the retry schedule alone decides). Thread-safe.
 */
enum jwks_park jwks_fetch_park(struct jwks_fetch *f, uint64_t seen_gen, struct jwks_waiter *w);

/* Takes |w| back if it is still parked: 1 if it was (it will not be
 * woken), 0 if it was woken or never parked. */
int jwks_fetch_unpark(struct jwks_fetch *f, struct jwks_waiter *w);

/* The URL keys are fetched from, for log lines ("" until discovery found
 * it); written into |out| (capacity |cap|). */
void jwks_fetch_url(struct jwks_fetch *f, char *out, size_t cap);

/* Stops the thread (an HTTPS request in progress is abandoned) and wakes
 * every parked waiter. The keys stay readable. NULL is a no-op. */
void jwks_fetch_stop(struct jwks_fetch *f);

/* Stops if needed and frees. NULL is a no-op. */
void jwks_fetch_free(struct jwks_fetch *f);

struct evbuffer;
/* Appends the mqtls_jwks_* metrics (Prometheus text); nothing for NULL. */
void jwks_fetch_metrics(struct evbuffer *out, struct jwks_fetch *f);

#endif
