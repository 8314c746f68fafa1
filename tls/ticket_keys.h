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

#endif
