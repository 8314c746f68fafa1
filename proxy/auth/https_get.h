/*
 * A minimal HTTPS client for the JWKS fetcher: one GET per connection
 * (Connection: close), BoringSSL as the TLS client, the server's
 * certificate verified against a CA bundle and the URL's host name (or IP
 * address), bounded in time, size and redirects.
 *
 * Blocking: plain sockets with poll() timeouts, for a thread of its own
 * (never an event loop). A readable |cancel_fd| ends a request at once.
 */
#ifndef PROXY_AUTH_HTTPS_GET_H
#define PROXY_AUTH_HTTPS_GET_H

#include <stddef.h>

#include "proxy/auth/http_response.h"

/* Where certificates are trusted from when no CA file is given. */
#define HTTPS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

enum https_result {
	HTTPS_OK,
	HTTPS_UNREACHABLE,      /* name resolution or TCP connection failed */
	HTTPS_TLS,              /* handshake failed or the certificate did not verify */
	HTTPS_TIMEOUT,
	HTTPS_HTTP_STATUS,      /* a final status other than 200 */
	HTTPS_TOO_LARGE,
	HTTPS_MALFORMED,        /* not a well-formed HTTP/1.1 response */
	HTTPS_REDIRECTS,        /* too many, or to somewhere we do not follow */
	HTTPS_CANCELLED,
	HTTPS_RESULT_COUNT,
};

struct https_get_opts {
	const char *ca_file;        /* PEM bundle; NULL: HTTPS_SYSTEM_CA */
	size_t max_body;
	int connect_timeout_ms;     /* per address tried */
	int total_timeout_ms;       /* the whole request, redirects included */
	int max_redirects;
	int cancel_fd;              /* -1, or a descriptor that becomes readable to cancel */
};

/*
 * GETs |url|, following up to max_redirects redirects (301, 302, 303, 307,
 * 308) to https URLs. On HTTPS_OK, *out holds the 200 response (the caller
 * frees it with http_response_cleanup) and |final| (if not NULL) the URL
 * that answered. Otherwise *out holds nothing and |err| says what went
 * wrong in one line (never more than a status code of what the server sent).
 */
enum https_result https_get(const struct https_url *url, const struct https_get_opts *o,
                            struct http_response *out, struct https_url *final, char *err,
                            size_t errlen);

/* A short fixed name for |r| ("tls", "timeout", ...), for logs and metrics. */
const char *https_result_name(enum https_result r);

/* Checks that |ca_file| (NULL: the system's) loads as trusted certificates.
 * Returns 1, or 0 with the reason in |err|. */
int https_ca_check(const char *ca_file, char *err, size_t errlen);

#endif
