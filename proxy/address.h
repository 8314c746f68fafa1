/*
 * Socket addresses from the command line: "HOST:PORT", "[V6ADDR]:PORT" and,
 * for the broker, "unix:/path".
 */
#ifndef PROXY_ADDRESS_H
#define PROXY_ADDRESS_H

#include <stddef.h>
#include <sys/socket.h>

struct address {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* Resolves |spec| (numeric or a host name, resolved once, here). Writes a
 * one-line reason into |err| on failure. |allow_unix| permits "unix:/path". */
int address_parse(const char *spec, int allow_unix, struct address *out, char *err, size_t errlen);

/* "127.0.0.1:8883", "[::1]:8883" or "unix:/path". */
void address_format(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);

/* Starts a non-blocking connect. Returns the fd (>= 0) and sets *in_progress,
 * or -1 with errno set. */
int address_connect(const struct address *a, int *in_progress);

#endif
