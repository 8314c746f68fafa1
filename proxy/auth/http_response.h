/*
 * HTTP/1.1 responses (RFC 9110, RFC 9112) as the JWKS fetcher reads them:
 * status, framing (Content-Length, chunked, or until the close), Cache-
 * Control freshness and Location. Pure functions on bytes, fed what an
 * identity provider (or whoever answers in its place) sent: every length
 * is bounded, and anything unexpected is refused rather than guessed at.
 */
#ifndef PROXY_AUTH_HTTP_RESPONSE_H
#define PROXY_AUTH_HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/auth/https_url.h"

/* The status line and all headers together. */
#define HTTP_MAX_HEADER_BYTES 32768
#define HTTP_MAX_HEADERS 100

enum http_parse {
	HTTP_PARSE_DONE,        /* *out describes the response */
	HTTP_PARSE_MORE,        /* the response is not complete yet: read on */
	HTTP_PARSE_BAD,         /* malformed, or truncated at the end of input */
	HTTP_PARSE_TOO_LARGE,   /* headers or body over their limits */
};

struct http_response {
	int status;             /* the final (non-1xx) status code */
	int64_t fresh_s;        /* Cache-Control max-age less Age, 0 for no-store or
	                           no-cache, -1 when the response says nothing */
	int has_location;
	char location[HTTPS_MAX_URL];   /* raw value, NUL-terminated */
	uint8_t *body;          /* owned (malloc), the decoded body of a 200; NULL otherwise */
	size_t body_len;
};
/*
 * Parses the |len| bytes at |buf|, all that was read of one response so
 * far; |eof| says the server closed the connection after them. A 200's
 * body is framed by Content-Length, chunked transfer coding, or the end
 * of the connection, and may hold at most |max_body| bytes (a larger
 * Content-Length is refused at once). Other statuses are DONE as soon as
 * their headers are complete, without a body. 1xx interim responses are
 * skipped. On DONE, *out is filled and owned by the caller
 * (http_response_cleanup); otherwise it holds nothing to free. On BAD and
 * TOO_LARGE a short reason is written to |err|.
 */
enum http_parse http_response_parse(const uint8_t *buf, size_t len, int eof, size_t max_body,
                                    struct http_response *out, char *err, size_t errlen);

void http_response_cleanup(struct http_response *r);

#endif
