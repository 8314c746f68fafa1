/*
 * Section numbers refer to HAProxy's doc/proxy-protocol.txt (2.1: the
 * human-readable header, 2.2: the binary header, 2.2.5: TLVs).
 */
#include <arpa/inet.h>
#include <string.h>

#include "mqtt/cursor.h"
#include "proxy/proxyproto.h"

static const uint8_t v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

#define V1_MAX 107          /* 2.1: the longest line, CRLF included */
#define PP2_VERSION 0x20
#define PP2_CMD_LOCAL 0x00
#define PP2_CMD_PROXY 0x01
#define PP2_AF_INET 0x10
#define PP2_AF_INET6 0x20
#define PP2_AF_UNIX 0x30
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN 0x22
#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02

/* A decimal port of 1 to 5 digits, 0..65535, no leading zero (2.1). */
static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return 0;
	*out = (uint16_t)v;
	return 1;
}

/* One space-separated field of the v1 line, into a NUL-terminated copy. */
static int field(const char **p, const char *end, char *out, size_t cap)
{
	const char *s = *p, *e = s;

	while (e < end && *e != ' ')
		e++;
	if (e == s || (size_t)(e - s) >= cap)
		return 0;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	*p = e < end ? e + 1 : e;
	return 1;
}

static int set_addr(struct sockaddr_storage *ss, int family, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
	}
	{
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		return inet_pton(AF_INET6, ip, &a->sin6_addr) == 1;
	}
}

/* 2.1: "PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT\r\n". */
static enum proxy_parse parse_v1(const uint8_t *p, size_t n, size_t *len, struct proxy_addr *out)
{
	const char *s = (const char *)p, *end, *cur;
	char proto[8], src[48], dst[48], sport[8], dport[8];
	uint16_t sp, dp;
	int family;
	size_t i;

	/* The line ends at the first CR, which must be followed by LF. */
	for (i = 0; i < n && i + 1 < V1_MAX; i++) {
		if (p[i] == '\n' || p[i] == '\0')
			return PROXY_INVALID;
		if (p[i] == '\r')
			break;
	}
	if (i + 1 >= V1_MAX)
		return PROXY_INVALID;
	if (i + 1 >= n) {
		*len = i + 2;
		return PROXY_NEED_MORE;
	}
	if (p[i + 1] != '\n')
		return PROXY_INVALID;
	*len = i + 2;
	end = s + i;
	cur = s + 6;    /* after "PROXY " */
	if (!field(&cur, end, proto, sizeof(proto)))
		return PROXY_INVALID;
	if (strcmp(proto, "UNKNOWN") == 0) {
		/* 2.1: the rest of the line is to be ignored. */
		out->local = 1;
		return PROXY_OK;
	}
	if (strcmp(proto, "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		family = AF_INET6;
	else
		return PROXY_INVALID;
	if (!field(&cur, end, src, sizeof(src)) || !field(&cur, end, dst, sizeof(dst)) ||
	    !field(&cur, end, sport, sizeof(sport)) || !field(&cur, end, dport, sizeof(dport)) || cur != end)
		return PROXY_INVALID;
	if (!parse_port(sport, strlen(sport), &sp) || !parse_port(dport, strlen(dport), &dp) ||
	    !set_addr(&out->src, family, src, sp) || !set_addr(&out->dst, family, dst, dp))
		return PROXY_INVALID;
	out->local = 0;
	out->len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	return PROXY_OK;
}

/* 2.2: signature, version/command, family/protocol, length, addresses, TLVs. */
static enum proxy_parse parse_v2(const uint8_t *p, size_t n, size_t *len, struct proxy_addr *out)
{
	struct cursor c;
	struct slice sig, body;
	uint8_t ver_cmd, fam;
	uint16_t blen;

	if (n < 16) {
		*len = 16;
		return PROXY_NEED_MORE;
	}
	cursor_init(&c, p, n);
	if (!cursor_take(&c, sizeof(v2_sig), &sig) || !cursor_u8(&c, &ver_cmd) || !cursor_u8(&c, &fam) ||
	    !cursor_u16(&c, &blen))
		return PROXY_INVALID;
	if ((ver_cmd & 0xf0) != PP2_VERSION || (ver_cmd & 0x0f) > PP2_CMD_PROXY)
		return PROXY_INVALID;
	if (16 + (size_t)blen > PROXY_HEADER_MAX)
		return PROXY_INVALID;
	if (n < 16 + (size_t)blen) {
		*len = 16 + (size_t)blen;
		return PROXY_NEED_MORE;
	}
	*len = 16 + (size_t)blen;
	if (!cursor_take(&c, blen, &body))
		return PROXY_INVALID;
	/* 2.2: LOCAL (a health check from the balancer itself) carries no
	 * client; an unspecified family or an unknown one is kept local too. */
	out->local = 1;
	if ((ver_cmd & 0x0f) == PP2_CMD_LOCAL)
		return PROXY_OK;
	cursor_init(&c, body.ptr, body.len);
	if ((fam & 0xf0) == PP2_AF_INET && (fam & 0x0f) == 0x1) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src, *d = (struct sockaddr_in *)&out->dst;
		struct slice sa, da;
		uint16_t sp, dp;

		if (!cursor_take(&c, 4, &sa) || !cursor_take(&c, 4, &da) || !cursor_u16(&c, &sp) || !cursor_u16(&c, &dp))
			return PROXY_INVALID;
		memset(&out->src, 0, sizeof(out->src));
		memset(&out->dst, 0, sizeof(out->dst));
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, sa.ptr, 4);
		memcpy(&d->sin_addr, da.ptr, 4);
		s->sin_port = htons(sp);
		d->sin_port = htons(dp);
		out->len = sizeof(struct sockaddr_in);
		out->local = 0;
	} else if ((fam & 0xf0) == PP2_AF_INET6 && (fam & 0x0f) == 0x1) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src, *d = (struct sockaddr_in6 *)&out->dst;
		struct slice sa, da;
		uint16_t sp, dp;

		if (!cursor_take(&c, 16, &sa) || !cursor_take(&c, 16, &da) || !cursor_u16(&c, &sp) ||
		    !cursor_u16(&c, &dp))
			return PROXY_INVALID;
		memset(&out->src, 0, sizeof(out->src));
		memset(&out->dst, 0, sizeof(out->dst));
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, sa.ptr, 16);
		memcpy(&d->sin6_addr, da.ptr, 16);
		s->sin6_port = htons(sp);
		d->sin6_port = htons(dp);
		out->len = sizeof(struct sockaddr_in6);
		out->local = 0;
	}
	/* TLVs (2.2.5) follow; mqtls needs none of them, but a malformed
	 * list still makes the header invalid. */
	while (cursor_left(&c) > 0) {
		uint8_t type;
		uint16_t tlen;
		struct slice v;

		if (!cursor_u8(&c, &type) || !cursor_u16(&c, &tlen) || !cursor_take(&c, tlen, &v))
			return out->local ? PROXY_OK : PROXY_INVALID;
	}
	return PROXY_OK;
}

enum proxy_parse proxy_header_parse(const uint8_t *p, size_t n, size_t *len, struct proxy_addr *out)
{
	static const char v1_sig[] = "PROXY ";
	size_t k = n < sizeof(v2_sig) ? n : sizeof(v2_sig);

	memset(out, 0, sizeof(*out));
	*len = 0;
	/* Decide on the bytes there are: a prefix of a signature needs more. */
	if (memcmp(p, v2_sig, k) == 0)
		return k < sizeof(v2_sig) ? (*len = 16, PROXY_NEED_MORE) : parse_v2(p, n, len, out);
	k = n < 6 ? n : 6;
	if (memcmp(p, v1_sig, k) == 0)
		return k < 6 ? (*len = 8, PROXY_NEED_MORE) : parse_v1(p, n, len, out);
	return PROXY_INVALID;
}

static int put_tlv(struct outbuf *o, uint8_t type, const void *v, size_t n)
{
	return n <= 0xffff && outbuf_u8(o, type) && outbuf_u16(o, (uint16_t)n) && outbuf_bytes(o, v, n);
}

size_t proxy_header_v2_build(const struct sockaddr *src, const struct sockaddr *dst, const struct proxy_tls *tls,
                             uint8_t *out, size_t cap)
{
	uint8_t body[PROXY_HEADER_MAX];
	struct outbuf o, b;
	uint8_t fam;

	outbuf_init(&b, body, sizeof(body));
	if (src->sa_family != dst->sa_family)
		return 0;
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		fam = PP2_AF_INET | 0x1;
		outbuf_bytes(&b, &s->sin_addr, 4);
		outbuf_bytes(&b, &d->sin_addr, 4);
		outbuf_u16(&b, ntohs(s->sin_port));
		outbuf_u16(&b, ntohs(d->sin_port));
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		fam = PP2_AF_INET6 | 0x1;
		outbuf_bytes(&b, &s->sin6_addr, 16);
		outbuf_bytes(&b, &d->sin6_addr, 16);
		outbuf_u16(&b, ntohs(s->sin6_port));
		outbuf_u16(&b, ntohs(d->sin6_port));
	} else {
		return 0;
	}
	if (tls && tls->present) {
		/* 2.2.6 PP2_TYPE_SSL: client flags, verify (0: verified), sub-TLVs. */
		uint8_t ssl[512];
		struct outbuf t;
		uint8_t client = PP2_CLIENT_SSL | (tls->cert ? PP2_CLIENT_CERT_CONN : 0);

		outbuf_init(&t, ssl, sizeof(ssl));
		outbuf_u8(&t, client);
		outbuf_u32(&t, 0);
		if (tls->version)
			put_tlv(&t, PP2_SUBTYPE_SSL_VERSION, tls->version, strlen(tls->version));
		if (tls->cert && tls->cn)
			put_tlv(&t, PP2_SUBTYPE_SSL_CN, tls->cn, strlen(tls->cn));
		if (t.failed || !put_tlv(&b, PP2_TYPE_SSL, ssl, t.len))
			return 0;
	}
	if (b.failed)
		return 0;
	outbuf_init(&o, out, cap);
	outbuf_bytes(&o, v2_sig, sizeof(v2_sig));
	outbuf_u8(&o, PP2_VERSION | PP2_CMD_PROXY);
	outbuf_u8(&o, fam);
	outbuf_u16(&o, (uint16_t)b.len);
	outbuf_bytes(&o, body, b.len);
	return o.failed ? 0 : o.len;
}
