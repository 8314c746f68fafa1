/*
 * The WebSocket opening handshake (ws_upgrade.h).
 *
 * The request head is read line by line; a line is refused as soon as it
 * is complete and wrong, so the verdict for any prefix of a request is
 * either "need more" or the verdict for the whole request. What needs the
 * whole head (a missing header) is decided at the blank line.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "proxy/auth/b64.h"
#include "proxy/ws_upgrade.h"

#define MAX_HEADERS 100

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* What the headers said, gathered as lines are read. */
struct seen {
	int host, key, version, version_ok, upgrade_ok, connection_ok;
	int mqtt, mqttv31;
	int headers;
	struct slice key_value;
};

static enum ws_upgrade_result refuse(struct ws_upgrade *out, int status, const char *why)
{
	out->status = status;
	out->why = why;
	return WS_UPGRADE_REFUSE;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive comparison of |s| with the lowercase ASCII |word|. */
static int equal_ci(struct slice s, const char *word)
{
	size_t n = strlen(word);

	if (s.len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower(s.ptr[i]) != word[i])
			return 0;
	return 1;
}

static int equal_exact(struct slice s, const char *word)
{
	return s.len == strlen(word) && memcmp(s.ptr, word, s.len) == 0;
}

static int is_tchar(uint8_t c)
{
	/* RFC 7230 3.2.6 token characters. */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static struct slice trim(struct slice s)
{
	while (s.len > 0 && is_ows(s.ptr[0])) {
		s.ptr++;
		s.len--;
	}
	while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
		s.len--;
	return s;
}

/*
 * Calls |fn| for every element of a comma-separated list (RFC 7230 7,
 * "#rule"), trimmed; empty elements are skipped. Returns 1 if |fn| returned
 * 1 for any.
 */
static int list_any(struct slice v, int (*fn)(struct slice, void *), void *arg)
{
	int any = 0;

	while (v.len > 0) {
		const uint8_t *comma = memchr(v.ptr, ',', v.len);
		size_t n = comma != NULL ? (size_t)(comma - v.ptr) : v.len;
		struct slice el = { v.ptr, n };

		el = trim(el);
		if (el.len > 0 && fn(el, arg))
			any = 1;
		if (comma == NULL)
			break;
		v.ptr = comma + 1;
		v.len -= n + 1;
	}
	return any;
}

static int is_websocket(struct slice el, void *arg)
{
	(void)arg;
	/* RFC 6455 4.2.1 item 3: "websocket", ASCII case-insensitive. */
	return equal_ci(el, "websocket");
}

static int is_upgrade(struct slice el, void *arg)
{
	(void)arg;
	/* RFC 6455 4.2.1 item 4: the "Upgrade" token, case-insensitive. */
	return equal_ci(el, "upgrade");
}

static int note_protocol(struct slice el, void *arg)
{
	struct seen *s = arg;

	/* Subprotocol names are compared as sent (RFC 6455 4.1, 11.5). */
	if (equal_exact(el, "mqtt"))
		s->mqtt = 1;
	else if (equal_exact(el, "mqttv3.1"))
		s->mqttv31 = 1;
	return 0;
}

/* Takes the next line, CRLF included, into |line| (without the CRLF).
 * Returns 1, 0 if no LF is in the cursor yet, -1 for a bare LF or CR. */
static int take_line(struct cursor *c, struct slice *line)
{
	const uint8_t *lf = cursor_left(c) > 0 ? memchr(c->ptr, '\n', cursor_left(c)) : NULL;
	struct slice all;
	size_t n;

	if (lf == NULL)
		return 0;
	n = (size_t)(lf - c->ptr) + 1;
	(void)cursor_take(c, n, &all);
	if (n < 2 || all.ptr[n - 2] != '\r')
		return -1;
	line->ptr = all.ptr;
	line->len = n - 2;
	/* A CR anywhere else is not HTTP/1.1 (RFC 7230 3.5). */
	if (line->len > 0 && memchr(line->ptr, '\r', line->len) != NULL)
		return -1;
	return 1;
}

/* "GET <request-target> HTTP/1.1" (RFC 7230 3.1.1, RFC 6455 4.2.1 item 1). */
static enum ws_upgrade_result request_line(struct slice line, const char *path, struct ws_upgrade *out)
{
	const uint8_t *sp1, *sp2;
	struct slice method, target, version;
	size_t i;

	sp1 = line.len > 0 ? memchr(line.ptr, ' ', line.len) : NULL;
	if (sp1 == NULL)
		return refuse(out, 400, "[RFC 7230 3.1.1] malformed request line");
	method.ptr = line.ptr;
	method.len = (size_t)(sp1 - line.ptr);
	target.ptr = sp1 + 1;
	target.len = line.len - method.len - 1;
	sp2 = target.len > 0 ? memchr(target.ptr, ' ', target.len) : NULL;
	if (sp2 == NULL)
		return refuse(out, 400, "[RFC 7230 3.1.1] malformed request line");
	version.ptr = sp2 + 1;
	version.len = target.len - (size_t)(sp2 - target.ptr) - 1;
	target.len = (size_t)(sp2 - target.ptr);

	if (!equal_exact(method, "GET"))
		return refuse(out, 400, "[RFC 6455 4.2.1] method is not GET");
	if (!equal_exact(version, "HTTP/1.1"))
		return refuse(out, 400, "[RFC 6455 4.2.1] not HTTP/1.1");
	/* origin-form only: "/" then visible characters. */
	if (target.len == 0 || target.ptr[0] != '/')
		return refuse(out, 400, "[RFC 7230 5.3] request target is not a path");
	for (i = 0; i < target.len; i++)
		if (target.ptr[i] <= 0x20 || target.ptr[i] >= 0x7f)
			return refuse(out, 400, "[RFC 7230 5.3] bad character in request target");
	out->path.ptr = target.ptr;
	out->path.len = target.len;
	for (i = 0; i < target.len; i++)
		if (target.ptr[i] == '?') {
			out->path.len = i;
			break;
		}
	if (out->path.len != strlen(path) || memcmp(out->path.ptr, path, out->path.len) != 0)
		return refuse(out, 404, "request path is not the WebSocket path");
	return WS_UPGRADE_OK;
}

/* One "name: value" line (RFC 7230 3.2). */
static enum ws_upgrade_result header_line(struct slice line, struct seen *s, struct ws_upgrade *out)
{
	const uint8_t *colon;
	struct slice name, value;
	size_t i;

	if (++s->headers > MAX_HEADERS)
		return refuse(out, 431, "more than 100 header fields");
	/* obs-fold: a continuation line (RFC 7230 3.2.4). */
	if (line.len > 0 && is_ows(line.ptr[0]))
		return refuse(out, 400, "[RFC 7230 3.2.4] obsolete line folding");
	colon = line.len > 0 ? memchr(line.ptr, ':', line.len) : NULL;
	if (colon == NULL || colon == line.ptr)
		return refuse(out, 400, "[RFC 7230 3.2] header line without a name and colon");
	name.ptr = line.ptr;
	name.len = (size_t)(colon - line.ptr);
	for (i = 0; i < name.len; i++)
		if (!is_tchar(name.ptr[i]))   /* also no blank before the colon */
			return refuse(out, 400, "[RFC 7230 3.2.4] bad character in header name");
	value.ptr = colon + 1;
	value.len = line.len - name.len - 1;
	for (i = 0; i < value.len; i++)
		if ((value.ptr[i] < 0x20 && value.ptr[i] != '\t') || value.ptr[i] == 0x7f)
			return refuse(out, 400, "[RFC 7230 3.2] control character in header value");
	value = trim(value);

	if (equal_ci(name, "host")) {
		s->host++;
		out->host = value;
	} else if (equal_ci(name, "upgrade")) {
		s->upgrade_ok |= list_any(value, is_websocket, NULL);
	} else if (equal_ci(name, "connection")) {
		s->connection_ok |= list_any(value, is_upgrade, NULL);
	} else if (equal_ci(name, "sec-websocket-key")) {
		s->key++;
		s->key_value = value;
	} else if (equal_ci(name, "sec-websocket-version")) {
		s->version++;
		s->version_ok = equal_exact(value, "13");
	} else if (equal_ci(name, "sec-websocket-protocol")) {
		(void)list_any(value, note_protocol, s);
	} else if (equal_ci(name, "origin")) {
		if (!out->has_origin) {
			out->has_origin = 1;
			out->origin = value;
		}
	} else if (equal_ci(name, "content-length")) {
		if (!equal_exact(value, "0"))
			return refuse(out, 400, "an upgrade request with a body");
	} else if (equal_ci(name, "transfer-encoding")) {
		return refuse(out, 400, "an upgrade request with a body");
	}
	return WS_UPGRADE_OK;
}

/* The checks that need every header (RFC 6455 4.2.1). */
static enum ws_upgrade_result whole_head(const struct seen *s, struct ws_upgrade *out)
{
	uint8_t raw[18];
	size_t rawlen;

	/* Item 2 and RFC 7230 5.4: exactly one Host. */
	if (s->host != 1)
		return refuse(out, 400, "[RFC 7230 5.4] missing or repeated Host");
	if (!s->upgrade_ok)
		return refuse(out, 400, "[RFC 6455 4.2.1] Upgrade does not name websocket");
	if (!s->connection_ok)
		return refuse(out, 400, "[RFC 6455 4.2.1] Connection does not include Upgrade");
	/* Item 6, and 4.4: answer with the version this server speaks. */
	if (s->version != 1 || !s->version_ok) {
		out->want_version = 1;
		return refuse(out, 400, "[RFC 6455 4.4] Sec-WebSocket-Version is not 13");
	}
	/* Item 5: base64 of a 16-byte value, exactly once (11.3.1). */
	if (s->key != 1 || s->key_value.len != WS_KEY_LEN ||
	    !b64_decode((const char *)s->key_value.ptr, s->key_value.len, B64_PAD, raw, sizeof(raw),
	                &rawlen) || rawlen != 16)
		return refuse(out, 400, "[RFC 6455 4.2.1] Sec-WebSocket-Key is not the base64 of 16 bytes");
	/* [MQTT-6.0.0-3]: the client offers "mqtt"; "mqttv3.1" for old ones. */
	if (s->mqtt)
		out->protocol = WS_PROTO_MQTT;
	else if (s->mqttv31)
		out->protocol = WS_PROTO_MQTTV31;
	else
		return refuse(out, 400, "[MQTT-6.0.0-3] no mqtt subprotocol offered");
	memcpy(out->key, s->key_value.ptr, WS_KEY_LEN);
	out->key[WS_KEY_LEN] = '\0';
	return WS_UPGRADE_OK;
}

enum ws_upgrade_result ws_upgrade_parse(const uint8_t *buf, size_t len, const char *path, size_t max,
                                        struct ws_upgrade *out)
{
	struct seen s;
	struct cursor c;
	struct slice line;
	enum ws_upgrade_result r;
	int first = 1, got;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	if (max == 0)
		max = WS_UPGRADE_MAX;
	if (buf == NULL)
		len = 0;
	cursor_init(&c, buf, len < max ? len : max);
	while ((got = take_line(&c, &line)) != 0) {
		if (got < 0)
			return refuse(out, 400, "[RFC 7230 3.5] line not ended by CRLF");
		if (first) {
			if ((r = request_line(line, path != NULL ? path : "", out)) != WS_UPGRADE_OK)
				return r;
			first = 0;
			continue;
		}
		if (line.len == 0) {
			if ((r = whole_head(&s, out)) != WS_UPGRADE_OK)
				return r;
			out->request_len = (len < max ? len : max) - cursor_left(&c);
			return WS_UPGRADE_OK;
		}
		if ((r = header_line(line, &s, out)) != WS_UPGRADE_OK)
			return r;
	}
	if (len >= max)
		return refuse(out, 431, "request head larger than the limit");
	return WS_UPGRADE_NEED_MORE;
}

int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1])
{
	SHA_CTX ctx;
	uint8_t digest[SHA_DIGEST_LENGTH];

	if (key == NULL)
		return 0;
	SHA1_Init(&ctx);
	SHA1_Update(&ctx, key, len);
	SHA1_Update(&ctx, ws_guid, sizeof(ws_guid) - 1);
	SHA1_Final(digest, &ctx);
	return b64_encode(digest, sizeof(digest), B64_PAD, out, WS_ACCEPT_LEN + 1);
}

size_t ws_upgrade_accept(const struct ws_upgrade *u, char *out, size_t cap)
{
	char accept[WS_ACCEPT_LEN + 1];
	int n;

	if (u->protocol == WS_PROTO_NONE || !ws_accept_key(u->key, strlen(u->key), accept))
		return 0;
	n = snprintf(out, cap,
	             "HTTP/1.1 101 Switching Protocols\r\n"
	             "Upgrade: websocket\r\n"
	             "Connection: Upgrade\r\n"
	             "Sec-WebSocket-Accept: %s\r\n"
	             "Sec-WebSocket-Protocol: %s\r\n"
	             "\r\n",
	             accept, u->protocol == WS_PROTO_MQTT ? "mqtt" : "mqttv3.1");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t ws_upgrade_refuse(const struct ws_upgrade *u, char *out, size_t cap)
{
	const char *reason;
	int n;

	switch (u->status) {
	case 404:
		reason = "Not Found";
		break;
	case 431:
		reason = "Request Header Fields Too Large";
		break;
	default:
		reason = "Bad Request";
		break;
	}
	n = snprintf(out, cap,
	             "HTTP/1.1 %d %s\r\n"
	             "Connection: close\r\n"
	             "Content-Length: 0\r\n"
	             "%s"
	             "\r\n",
	             u->status == 404 || u->status == 431 ? u->status : 400, reason,
	             u->want_version ? "Sec-WebSocket-Version: 13\r\n" : "");
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
