/*
 * Session ticket keys shared by replicas (--ticket-keys FILE), in HAProxy's
 * tls-ticket-keys format: one base64 key a line, 48 bytes (16 name, 16
 * AES-128 key, 16 HMAC key) or 80 bytes (16 name, 32 AES-256 key, 32 HMAC
 * key). The first line encrypts new tickets, every line decrypts, so
 * rotation is adding a line at the top and dropping the last one later.
 * Replicas that read the same file resume each other's sessions.
 */
#ifndef TLS_TICKET_KEYS_H
#define TLS_TICKET_KEYS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Reads |path| and makes |ctx| seal and open tickets with its keys (the
 * keys live as long as |ctx|). Returns 1, or 0 with a one-line reason
 * naming the file and line in |err|. */
int tls_ticket_keys_install(SSL_CTX *ctx, const char *path, char *err, size_t errlen);

/* Bytes a sealed ticket adds to its plaintext at most: key name, IV, up to
 * a block of padding, HMAC-SHA256. */
#define TLS_TICKET_OVERHEAD (16 + 16 + 16 + 32)
/* The largest plaintext sealed or opened (a ticket fits in 16 bits). */
#define TLS_TICKET_MAX_PLAIN (65535 - TLS_TICKET_OVERHEAD)

/* Seals |in| into |out| as key name, IV, AES-CBC ciphertext and HMAC-SHA256
 * of all three, with the first key of |ctx|'s --ticket-keys or, without
 * them, with this process's own keys (random, kept across reloads, rotated
 * every 48 hours). Returns the ticket's length, or 0 on failure (|max_out|
 * smaller than |in_len| + TLS_TICKET_OVERHEAD, no randomness). */
size_t tls_ticket_seal(SSL_CTX *ctx, uint8_t *out, size_t max_out, const uint8_t *in, size_t in_len);

/* Opens a ticket made by tls_ticket_seal with the same keys: returns 1 with
 * the plaintext in |out| (|max_out| must be at least |in_len|), or 0 when
 * no key of |ctx| names it, its MAC is wrong or it is malformed. */
int tls_ticket_open(SSL_CTX *ctx, uint8_t *out, size_t *out_len, size_t max_out, const uint8_t *in,
                    size_t in_len);

#endif
