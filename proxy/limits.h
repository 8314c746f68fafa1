/*
 * Connection limits shared by every worker: connections and new connections
 * per second per client address, and connections per authenticated
 * identity (--max-conn-per-ip, --conn-rate-per-ip, --max-conn-per-identity).
 *
 * The tables are bounded: an address or identity has an entry only while it
 * has connections, up to a fixed number of them, and the rate buckets are a
 * fixed array where an address that collides with another takes its slot
 * over. An attacker cycling through source addresses therefore cannot make
 * them grow. They are taken at accept and after authentication, never per
 * byte, under one mutex.
 */
#ifndef PROXY_LIMITS_H
#define PROXY_LIMITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/config.h"

struct limits;

enum limit_verdict {
	LIMIT_OK,
	LIMIT_CONN_PER_IP,      /* the address has --max-conn-per-ip connections */
	LIMIT_CONN_RATE,        /* the address opened --conn-rate-per-ip this second */
};

/* The limits |cfg| asks for, or NULL when it sets none (or on failure:
 * *err is set then). */
struct limits *limits_new(const struct config *cfg, int *err);
/* limits_free(NULL) is a no-op. */
void limits_free(struct limits *l);

/* A new connection from |sa| at monotonic |now_ms|: counts it and returns
 * LIMIT_OK, or returns the limit it is over (then nothing is counted). */
enum limit_verdict limits_conn_begin(struct limits *l, const struct sockaddr *sa, uint64_t now_ms);
/* Gives back what limits_conn_begin counted for |sa|. */
void limits_conn_end(struct limits *l, const struct sockaddr *sa);
/* Counts one more connection for |id| (|len| bytes) and returns 1, or
 * returns 0 (nothing counted) when |id| is at --max-conn-per-identity.
 * Without that limit it counts nothing and returns 1. */
int limits_identity_take(struct limits *l, const char *id, size_t len);
/* Gives back one limits_identity_take. */
void limits_identity_give(struct limits *l, const char *id, size_t len);

#endif
