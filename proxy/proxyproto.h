/*
 * The PROXY protocol (HAProxy's "proxy-protocol.txt", versions 1 and 2): the
 * header a load balancer puts in front of a connection to say whom it
 * carries, and the version 2 header mqtls sends to a broker.
 *
 * Pure functions on bytes, in the manner of mqtt/: no sockets.
 */
#ifndef PROXY_PROXYPROTO_H
#define PROXY_PROXYPROTO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header accepted: version 1 is at most 107 bytes; version 2
 * allows 64 KiB of TLVs, which no load balancer needs. */
#define PROXY_HEADER_MAX 1024

enum proxy_parse {
	PROXY_NEED_MORE,    /* a valid start; read more (at least *need bytes in all) */
	PROXY_OK,           /* *len bytes form the header; the rest is the client's */
	PROXY_INVALID,      /* not a PROXY header, malformed, or over PROXY_HEADER_MAX */
};

struct proxy_addr {
	int local;                      /* v2 LOCAL or v1 UNKNOWN: keep the socket's addresses */
	struct sockaddr_storage src;    /* the client, when !local */
	struct sockaddr_storage dst;    /* the address it connected to, when !local */
	socklen_t len;                  /* of src and dst */
};

/*
 * Parses the header at the start of the |n| bytes at |p| (what has arrived
 * so far). On PROXY_OK sets *len to the header's length and fills *out; on
 * PROXY_NEED_MORE sets *len to how many bytes are needed at least.
 */
enum proxy_parse proxy_header_parse(const uint8_t *p, size_t n, size_t *len, struct proxy_addr *out);

/* What a version 2 header to the broker says about the client's TLS. */
struct proxy_tls {
	int present;                    /* the client came over TLS */
	int cert;                       /* and presented a verified certificate */
	const char *version;            /* "TLSv1.3", or NULL */
	const char *cn;                 /* the certificate's CN, or NULL */
};

/*
 * Writes a version 2 PROXY header (command PROXY, TCP over the family of
 * |src|) for a client at |src| that connected to |dst|, with a PP2_TYPE_SSL
 * TLV when |tls| says so. Returns its length, or 0 if it does not fit |cap|
 * or the addresses are not both IPv4 or both IPv6.
 */
size_t proxy_header_v2_build(const struct sockaddr *src, const struct sockaddr *dst, const struct proxy_tls *tls,
                             uint8_t *out, size_t cap);

#endif
