/*
 * The brokers behind mqtls (--upstream, repeatable): which one a session
 * tries next, which ones are up, and their current addresses.
 *
 * Selection (--upstream-balance):
 *   first          the first broker, in the order given, that is up; the
 *                  next ones in turn when it fails.
 *   clientid-hash  rendezvous (highest random weight) hashing of the
 *                  client id over the brokers that are up, so that a
 *                  device's persistent session stays on one node and a
 *                  broker going down moves only its own clients. A
 *                  broker's weight for a client is SipHash-2-4 of the
 *                  client id under the broker's own key, itself SipHash-2-4
 *                  of the broker's --upstream text under two fixed keys:
 *                  the same on every replica and after every restart,
 *                  whatever order the brokers are listed in (as long as
 *                  each is written the same way).
 * Either way the brokers marked down come last, in the same order, so a
 * client is refused (CONNACK server unavailable) only once every broker
 * failed for it.
 *
 * Health, passive: a failed or timed-out connect marks its broker down
 * (not one that failed for want of descriptors, memory or local ports).
 * Active: while it is down, one thread (the set's own) probes it with one
 * TCP connect per back-off period, 1 s doubling to 30 s; the probe that
 * succeeds brings it back, and so does a session that reached it when
 * nothing else was left to try.
 *
 * Resolution: a host name is resolved at startup (a failure is a
 * configuration error) and again every --resolve-interval seconds on the
 * same thread, never on a worker loop. An address is copied out under a
 * lock for each connect, so no worker ever holds a pointer into something
 * a resolution replaces, and nothing piles up however often DNS changes.
 */
#ifndef PROXY_BROKERS_H
#define PROXY_BROKERS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/address.h"
#include "proxy/config.h"

enum broker_balance { BALANCE_FIRST, BALANCE_CLIENTID_HASH };

/* Back-off of a broker marked down: the first probe after 1 s, then
 * doubling, at most every 30 s. */
#define BROKER_BACKOFF_FIRST_MS 1000u
#define BROKER_BACKOFF_MAX_MS 30000u

struct brokers;

/*
 * Builds the set from cfg's --upstream values, --upstream-balance and
 * --resolve-interval, resolving each once. On failure returns NULL with a
 * one-line reason naming the flag and the value in |err|.
 */
struct brokers *brokers_new(const struct config *cfg, char *err, size_t errlen);
/* Starts the thread that probes brokers marked down and re-resolves host
 * names; each probe may take |probe_timeout_ms|. Returns 1/0. */
int brokers_start(struct brokers *b, long probe_timeout_ms);
/* Stops the thread (if started) and frees the set. NULL is a no-op. */
void brokers_free(struct brokers *b);

/* How many brokers --upstream named (1 to CONFIG_MAX_LIST). */
int brokers_count(const struct brokers *b);
/* The --upstream text of broker |i|, for logs and metric labels. */
const char *brokers_spec(const struct brokers *b, int i);
/* Copies broker |i|'s current address into |out|. */
void brokers_address(struct brokers *b, int i, struct address *out);
/* 1 while broker |i| is not marked down. */
int brokers_is_up(const struct brokers *b, int i);
/* Connects to broker |i| that failed or timed out (sessions and probes). */
uint64_t brokers_failures(const struct brokers *b, int i);
/* "a:1883, b:1883 (first)" for the startup line. */
void brokers_describe(const struct brokers *b, char *out, size_t cap);

/*
 * The broker a session tries next: of those whose bit is not set in
 * |tried|, the first by the balance rule (up ones before down ones), keyed
 * by the |keylen| bytes at |key| (the client id) for clientid-hash. Copies
 * its address into |out| and returns its index, or -1 when all were tried.
 */
int brokers_next(struct brokers *b, const void *key, size_t keylen, unsigned tried, struct address *out);
/* A session's connect to broker |i| succeeded: it is up. */
void brokers_connected(struct brokers *b, int i);
/* A session's connect to broker |i| failed or timed out: it is down (its
 * back-off starts unless it already runs). */
void brokers_failed(struct brokers *b, int i);

/* ---- pure functions (unit-tested) --------------------------------------- */

/* The wait before probing a broker that failed |fails| times in a row
 * (fails >= 1): 1 s, 2 s, 4 s, ... at most 30 s. */
uint32_t brokers_backoff_ms(uint32_t fails);
/* The rendezvous weight of broker |spec| for a client keyed by |key|. */
uint64_t brokers_weight(const char *spec, const void *key, size_t keylen);
/*
 * The index to try next among |n| brokers: not in |tried|; up ones (not in
 * |down|) before down ones; within each group the lowest index (first) or
 * the highest weight (clientid-hash, |weights| has n entries; ties go to
 * the lower index). -1 when every broker is in |tried|.
 */
int brokers_choose(int n, enum broker_balance balance, const uint64_t *weights, unsigned down,
                   unsigned tried);

#endif
