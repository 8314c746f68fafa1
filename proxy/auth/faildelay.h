/*
 * Slowing down password guessing: every failed login from an address makes
 * the next refusal to that address wait longer (base, 2x, 4x ... up to a
 * cap), so guessing at line rate is not possible. Shared by all workers.
 * The table is fixed-size; a colliding address simply takes the slot over,
 * which an attacker cannot use to get faster answers for its own address.
 */
#ifndef PROXY_AUTH_FAILDELAY_H
#define PROXY_AUTH_FAILDELAY_H

#include <stddef.h>
#include <stdint.h>

#define FAILDELAY_MAX_MS 5000
#define FAILDELAY_FORGET_MS 60000

struct faildelay;

/* One table for the whole process (an address reaches every worker); owned
 * by the caller, freed with faildelay_free. Thread-safe. */
struct faildelay *faildelay_new(void);
void faildelay_free(struct faildelay *fd);

/* Records one failure of |addr| (|len| <= 16 bytes, borrowed) at |now_ms|
 * and returns how long to wait before answering it, in ms. */
uint32_t faildelay_record(struct faildelay *fd, const void *addr, size_t len, uint64_t now_ms,
                          uint32_t base_ms);

#endif
