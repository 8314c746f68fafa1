/*
 * Wording for what goes wrong while a TLS context loads its files: shared by
 * the server context (tls/context.c) and the broker-side client context
 * (tls/client_ctx.c), so an operator reads the same kind of line for both.
 */
#ifndef TLS_LOAD_ERRORS_H
#define TLS_LOAD_ERRORS_H

#include <stddef.h>

/* 1 if |path| can be opened for reading; else writes "FLAG PATH: reason"
 * to |err| and returns 0 (a plain "No such file" beats a library code). */
int tls_file_readable(const char *flag, const char *path, char *err, size_t errlen);

/* Writes the text of the newest BoringSSL error (or "unknown error") to
 * |buf| and clears the thread's error queue (tls_last_error in io.h only
 * peeks, for a handshake that failed). */
void tls_take_error(char *buf, size_t len);

#endif
