/*
 * The one-line reason a parser or loader of the auth code gives back to its
 * caller (through |err|, |errlen|) when it refuses its input.
 */
#ifndef PROXY_AUTH_ERRMSG_H
#define PROXY_AUTH_ERRMSG_H

#include <stddef.h>

/* Formats the reason into |err| (nothing if it is NULL or |errlen| is 0)
 * and returns 0, so that a caller can `return err_fail(...)`. */
int err_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
