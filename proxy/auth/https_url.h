/*
 * HTTPS URLs for the JWKS fetcher, from the configuration, a discovery
 * document or a Location header: https://host[:port][/path][?query], no
 * user info; the fragment is dropped. Parsed with cursors that cannot
 * overrun; anything unexpected is refused rather than guessed at.
 */
#ifndef PROXY_AUTH_HTTPS_URL_H
#define PROXY_AUTH_HTTPS_URL_H

#include <stddef.h>
#include <stdint.h>

#define HTTPS_MAX_HOST 253
#define HTTPS_MAX_PATH 2048
/* The longest URL, as text. */
#define HTTPS_MAX_URL (HTTPS_MAX_PATH + HTTPS_MAX_HOST + 16)

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

#endif
