/*
 * HTTPS URLs; see https_url.h.
 */
#include "proxy/auth/https_url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bytestring.h>

#include "proxy/auth/cbs_text.h"
#include "proxy/auth/errmsg.h"

static int host_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.';
}

/* A path and query may hold what RFC 3986 3.3 and 3.4 allow, percent-
 * encoded or not; nothing a log line would have to escape. */
static int path_ok(const CBS *p)
{
	for (size_t i = 0; i < CBS_len(p); i++) {
		uint8_t ch = CBS_data(p)[i];

		if (ch == 0 || (!host_char(ch) && strchr("_~%!$&'()*+,;=:@/?", ch) == NULL))
			return 0;
	}
	return 1;
}

/* Reads the port digits after ':' (1 to 65535). */
static int parse_port(CBS *c, uint16_t *out)
{
	unsigned long v = 0;
	size_t n = 0;
	uint8_t d;

	while (CBS_len(c) > 0 && n < 6) {
		if (!CBS_get_u8(c, &d) || d < '0' || d > '9')
			return 0;
		v = v * 10 + (d - '0');
		n++;
	}
	if (n == 0 || CBS_len(c) != 0 || v == 0 || v > 65535)
		return 0;
	*out = (uint16_t)v;
	return 1;
}

/* host [":" port], where host is a name, an IPv4 address or [IPv6]. */
static int parse_authority(CBS auth, struct https_url *out, char *err, size_t errlen)
{
	CBS host;
	uint8_t buf[16];

	if (CBS_len(&auth) == 0)
		return err_fail(err, errlen, "no host in the URL");
	if (memchr(CBS_data(&auth), '@', CBS_len(&auth)) != NULL)
		return err_fail(err, errlen, "user info in the URL is not accepted");
	out->port = 443;
	if (CBS_data(&auth)[0] == '[') {
		if (!CBS_skip(&auth, 1) || !CBS_get_until_first(&auth, &host, ']') || !CBS_skip(&auth, 1) ||
		    CBS_len(&host) == 0 || CBS_len(&host) > 45)
			return err_fail(err, errlen, "malformed IPv6 address in the URL");
		memcpy(out->host, CBS_data(&host), CBS_len(&host));
		out->host[CBS_len(&host)] = '\0';
		if (inet_pton(AF_INET6, out->host, buf) != 1)
			return err_fail(err, errlen, "malformed IPv6 address in the URL");
		out->is_ip = 1;
		if (CBS_len(&auth) > 0 &&
		    (CBS_data(&auth)[0] != ':' || !CBS_skip(&auth, 1) || !parse_port(&auth, &out->port)))
			return err_fail(err, errlen, "malformed port in the URL");
	} else {
		if (!CBS_get_until_first(&auth, &host, ':'))
			host = auth, CBS_init(&auth, NULL, 0);
		if (CBS_len(&host) == 0 || CBS_len(&host) > HTTPS_MAX_HOST)
			return err_fail(err, errlen, "no host, or a host name over %d characters", HTTPS_MAX_HOST);
		for (size_t i = 0; i < CBS_len(&host); i++) {
			if (!host_char(CBS_data(&host)[i]))
				return err_fail(err, errlen, "the host name has a character other than letters, "
				            "digits, '-' and '.'");
			out->host[i] = (char)ascii_lower(CBS_data(&host)[i]);
		}
		out->host[CBS_len(&host)] = '\0';
		out->is_ip = inet_pton(AF_INET, out->host, buf) == 1;
		if (CBS_len(&auth) > 0 && (!CBS_skip(&auth, 1) || !parse_port(&auth, &out->port)))
			return err_fail(err, errlen, "malformed port in the URL");
	}
	return 1;
}

/* The path and query after the authority (the fragment is dropped). */
static int parse_path(CBS rest, struct https_url *out, char *err, size_t errlen)
{
	CBS path;
	size_t off = 0;

	cbs_take_until_any(&rest, "#", &path);
	if (CBS_len(&path) > 0 && CBS_data(&path)[0] == '?')
		out->path[off++] = '/';
	else if (CBS_len(&path) == 0)
		out->path[off++] = '/';
	if (!path_ok(&path))
		return err_fail(err, errlen, "the URL path has a character RFC 3986 does not allow there");
	if (off + CBS_len(&path) > HTTPS_MAX_PATH)
		return err_fail(err, errlen, "URL path over %d characters", HTTPS_MAX_PATH);
	memcpy(out->path + off, CBS_data(&path), CBS_len(&path));
	out->path[off + CBS_len(&path)] = '\0';
	return 1;
}

int https_url_parse(const char *s, size_t len, struct https_url *out, char *err, size_t errlen)
{
	CBS c, auth;

	memset(out, 0, sizeof(*out));
	CBS_init(&c, (const uint8_t *)s, len);
	if (cbs_skip_prefix_ci(&c, "http://"))
		return err_fail(err, errlen, "an http:// URL is refused: keys must come over https://");
	if (!cbs_skip_prefix_ci(&c, "https://"))
		return err_fail(err, errlen, "not an https:// URL");
	cbs_take_until_any(&c, "/?#", &auth);
	return parse_authority(auth, out, err, errlen) && parse_path(c, out, err, errlen);
}

int https_url_resolve(const struct https_url *base, const uint8_t *loc, size_t len,
                      struct https_url *out, char *err, size_t errlen)
{
	char buf[HTTPS_MAX_URL + 8];
	CBS c;

	CBS_init(&c, loc, len);
	if (CBS_len(&c) >= 2 && CBS_data(&c)[0] == '/' && CBS_data(&c)[1] == '/') {
		/* Scheme-relative: the scheme of the base, https. */
		if (len + 6 >= sizeof(buf))
			return err_fail(err, errlen, "Location too long");
		memcpy(buf, "https:", 6);
		memcpy(buf + 6, loc, len);
		return https_url_parse(buf, len + 6, out, err, errlen);
	}
	if (CBS_len(&c) >= 1 && CBS_data(&c)[0] == '/') {
		memset(out, 0, sizeof(*out));
		memcpy(out->host, base->host, sizeof(out->host));
		out->is_ip = base->is_ip;
		out->port = base->port;
		return parse_path(c, out, err, errlen);
	}
	if (memchr(loc, ':', len) == NULL)
		return err_fail(err, errlen, "a relative Location is not followed");
	return https_url_parse((const char *)loc, len, out, err, errlen);
}

void https_url_format(const struct https_url *u, char *out, size_t cap)
{
	char port[8] = "";

	if (u->port != 443)
		snprintf(port, sizeof(port), ":%u", u->port);
	if (strchr(u->host, ':') != NULL)
		snprintf(out, cap, "https://[%s]%s%s", u->host, port, u->path);
	else
		snprintf(out, cap, "https://%s%s%s", u->host, port, u->path);
}
