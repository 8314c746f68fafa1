/*
 * What the JWKS fetcher reads from the network, parsed with cursors that
 * cannot overrun: HTTPS URLs (from the configuration, a discovery document
 * or a Location header) and HTTP/1.1 responses (RFC 9110, RFC 9112).
 *
 * Pure functions on bytes: no sockets, no TLS. Everything here is fed
 * bytes an identity provider (or whoever answers in its place) chose, so
 * every length is bounded and anything unexpected is refused rather than
 * guessed at.
 */
#ifndef PROXY_AUTH_HTTP_PARSE_H
#define PROXY_AUTH_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTPS_MAX_HOST 253
#define HTTPS_MAX_PATH 2048
/* The status line and all headers together. */
#define HTTP_MAX_HEADER_BYTES 32768
#define HTTP_MAX_HEADERS 100

/* An https URL: https://host[:port][/path][?query], no user info, no
 * fragment. */
struct https_url {
	char host[HTTPS_MAX_HOST + 1];  /* lower case; an IPv6 literal without brackets */
	int is_ip;                      /* host is an IPv4 or IPv6 literal */
	uint16_t port;                  /* 443 unless given */
	char path[HTTPS_MAX_PATH + 1];  /* path and query; at least "/" */
};

/* Parses the |len| bytes at |s|. Returns 1, or 0 with the reason in |err|
 * (an http:// URL is refused: keys must come over TLS). */
int https_url_parse(const char *s, size_t len, struct https_url *out, char *err, size_t errlen);

/* Resolves a Location header value (|len| bytes at |loc|) against |base|:
 * an absolute https URL, a scheme-relative //host/path, or an absolute
 * path. Returns 1, or 0 with the reason in |err| (http:// and relative
 * paths are refused). */
int https_url_resolve(const struct https_url *base, const uint8_t *loc, size_t len,
                      struct https_url *out, char *err, size_t errlen);

/* Writes |u| as text ("https://host:port/path", the port only when not
 * 443) into |out| (capacity |cap|, cut if short). */
void https_url_format(const struct https_url *u, char *out, size_t cap);

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
	char location[HTTPS_MAX_PATH + HTTPS_MAX_HOST + 16];   /* raw value, NUL-terminated */
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
