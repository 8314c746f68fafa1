/*
 * mqtls-bench over WebSockets (ws_client.h).
 */
#include "bench/ws_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/base64.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

size_t bench_ws_frame(uint8_t *dst, size_t cap, const uint8_t *p, size_t n, const uint8_t mask[4])
{
	uint64_t m8, w;
	size_t h, i;

	h = n < 126 ? 6 : n <= 0xffff ? 8 : 14;
	if (cap < h || cap - h < n)
		return 0;
	dst[0] = 0x82;                               /* FIN, binary */
	if (n < 126) {
		dst[1] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		dst[1] = 0x80 | 126;
		dst[2] = (uint8_t)(n >> 8);
		dst[3] = (uint8_t)n;
	} else {
		dst[1] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			dst[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(&dst[h - 4], mask, 4);
	/* Eight bytes at a time: the mask repeats every four, so a word of it
	 * twice lines up at every multiple of eight. */
	memcpy(&m8, mask, 4);
	memcpy((uint8_t *)&m8 + 4, mask, 4);
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, &p[i], 8);
		w ^= m8;
		memcpy(&dst[h + i], &w, 8);
	}
	for (; i < n; i++)
		dst[h + i] = p[i] ^ mask[i & 3];
	return h + n;
}

/* The header's length once its first two bytes are in. */
static size_t header_need(const uint8_t *hdr)
{
	uint8_t len7 = hdr[1] & 0x7f;

	return len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
}

enum bench_ws_rx_result bench_ws_decode(struct bench_ws_rx *d, uint8_t *buf, size_t len, size_t *out)
{
	size_t i = 0, o = 0, k;
	unsigned j;

	*out = 0;
	if (d->closed)
		return BENCH_WS_RX_CLOSED;
	while (i < len) {
		if (d->hdr_len == 0 && d->left > 0) {
			k = len - i < d->left ? len - i : (size_t)d->left;
			if (d->opcode == 0x0 || d->opcode == 0x2) {
				memmove(&buf[o], &buf[i], k);
				o += k;
			}
			i += k;
			d->left -= k;
			continue;
		}
		d->hdr[d->hdr_len++] = buf[i++];
		if (d->hdr_len < 2 || d->hdr_len < header_need(d->hdr))
			continue;
		/* A whole header: no reserved bits, no mask from a server (5.1). */
		if ((d->hdr[0] & 0x70) != 0 || (d->hdr[1] & 0x80) != 0)
			return BENCH_WS_RX_BAD;
		d->opcode = d->hdr[0] & 0x0f;
		if (d->opcode != 0x0 && d->opcode != 0x2 && d->opcode != 0x8 && d->opcode != 0x9 && d->opcode != 0xa)
			return BENCH_WS_RX_BAD;
		if (d->hdr_len == 2) {
			d->left = d->hdr[1] & 0x7f;
		} else {
			d->left = 0;
			for (j = 2; j < d->hdr_len; j++)
				d->left = d->left << 8 | d->hdr[j];
		}
		d->hdr_len = 0;
		if (d->opcode == 0x8) {
			d->closed = 1;
			*out = o;
			return BENCH_WS_RX_CLOSED;
		}
	}
	*out = o;
	return BENCH_WS_RX_OK;
}

size_t bench_ws_request(char *dst, size_t cap, const char *host, const char *path, const char *key)
{
	int n = snprintf(dst, cap,
	                 "GET %s HTTP/1.1\r\n"
	                 "Host: %s\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n"
	                 "Sec-WebSocket-Protocol: mqtt\r\n"
	                 "\r\n", path, host, key);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Whether header line |line| (|n| bytes) is |name|: value, with the value
 * trimmed into *v / *vn. */
static int header_is(const char *line, size_t n, const char *name, const char **v, size_t *vn)
{
	size_t nl = strlen(name);

	if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return 0;
	*v = line + nl + 1;
	*vn = n - nl - 1;
	while (*vn > 0 && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*vn)--;
	}
	while (*vn > 0 && ((*v)[*vn - 1] == ' ' || (*v)[*vn - 1] == '\t'))
		(*vn)--;
	return 1;
}

enum bench_ws_reply bench_ws_reply(const uint8_t *buf, size_t len, const char *key, size_t *head_len)
{
	uint8_t digest[SHA_DIGEST_LENGTH];
	char want[64], joined[BENCH_WS_KEY_LEN + sizeof(WS_GUID)];
	const char *s = (const char *)buf, *v;
	size_t end = 0, at, eol, vn;
	int accept_ok = 0, proto_ok = 0;

	while (end + 4 <= len && memcmp(&buf[end], "\r\n\r\n", 4) != 0)
		end++;
	if (end + 4 > len)
		return BENCH_WS_REPLY_NEED_MORE;
	if (end < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
		return BENCH_WS_REPLY_BAD;
	if (snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID) >= (int)sizeof(joined))
		return BENCH_WS_REPLY_BAD;
	SHA1((const uint8_t *)joined, strlen(joined), digest);
	EVP_EncodeBlock((uint8_t *)want, digest, sizeof(digest));
	for (at = 0; at < end; at = eol + 2) {
		for (eol = at; eol < end && !(s[eol] == '\r' && s[eol + 1] == '\n'); eol++)
			;
		if (header_is(&s[at], eol - at, "Sec-WebSocket-Accept", &v, &vn))
			accept_ok = vn == strlen(want) && memcmp(v, want, vn) == 0;
		else if (header_is(&s[at], eol - at, "Sec-WebSocket-Protocol", &v, &vn))
			proto_ok = vn == 4 && memcmp(v, "mqtt", 4) == 0;
	}
	*head_len = end + 4;
	return accept_ok && proto_ok ? BENCH_WS_REPLY_OK : BENCH_WS_REPLY_BAD;
}

int bench_ws_attach(struct bench_client *c)
{
	struct bench_ws *ws = calloc(1, sizeof(*ws));
	uint8_t nonce[16];

	if (ws == NULL)
		return 0;
	ws->frame_cap = c->out_cap + BENCH_WS_HDR_MAX;
	ws->frame = malloc(ws->frame_cap);
	if (ws->frame == NULL) {
		free(ws);
		return 0;
	}
	RAND_bytes(nonce, sizeof(nonce));
	EVP_EncodeBlock((uint8_t *)ws->key, nonce, sizeof(nonce));
	RAND_bytes((uint8_t *)&ws->mask_state, sizeof(ws->mask_state));
	ws->mask_state |= 1;                         /* xorshift must not start at 0 */
	c->ws = ws;
	return 1;
}

void bench_ws_free(struct bench_ws *ws)
{
	if (ws == NULL)
		return;
	free(ws->frame);
	free(ws);
}

int bench_ws_start(struct bench_client *c)
{
	const struct bench_options *o = c->w->opt;
	char host[300];
	size_t n;
	const char *name = o->sni != NULL ? o->sni : o->host;

	/* An IPv6 literal goes in brackets (RFC 7230 5.4 via RFC 3986). */
	snprintf(host, sizeof(host), strchr(name, ':') != NULL ? "[%s]:%ld" : "%s:%ld", name, o->port);
	n = bench_ws_request((char *)&c->out[c->out_len], c->out_cap - c->out_len, host, o->ws, c->ws->key);
	if (n == 0) {
		bench_client_fail(c, BERR_PROTOCOL);      /* --ws length is checked at startup */
		return 0;
	}
	c->out_len += (uint32_t)n;
	c->state = CLIENT_WS_UPGRADE;
	c->t_stage = bench_now_ns();
	bench_client_set_timer(c, o->timeout);
	return bench_client_flush(c);
}

void bench_ws_on_upgrade_readable(struct bench_client *c)
{
	enum bench_error err = BERR_TCP_OTHER;
	size_t got, head = 0, out;

	while (c->state == CLIENT_WS_UPGRADE) {
		if (c->in_len == c->in_cap) {
			bench_client_fail(c, BERR_PROTOCOL);  /* an answer longer than any 101 */
			return;
		}
		switch (bench_client_raw_read(c, &c->in[c->in_len], c->in_cap - c->in_len, &got, &err)) {
		case IO_OK:
			break;
		case IO_WANT_READ:
			bench_client_arm(c, 1, c->out_len > c->out_off);
			return;
		case IO_WANT_WRITE:
			bench_client_arm(c, 1, 1);
			return;
		case IO_CLOSED:
			bench_client_fail(c, BERR_CLOSED);
			return;
		case IO_FAILED:
			bench_client_fail(c, err);
			return;
		}
		c->in_len += (uint32_t)got;
		switch (bench_ws_reply(c->in, c->in_len, c->ws->key, &head)) {
		case BENCH_WS_REPLY_NEED_MORE:
			continue;
		case BENCH_WS_REPLY_BAD:
			bench_client_fail(c, BERR_PROTOCOL);
			return;
		case BENCH_WS_REPLY_OK:
			break;
		}
		histogram_record(c->w->stats.ws_upgrade, bench_now_ns() - c->t_stage);
		/* Whatever followed the head is frames already. */
		memmove(c->in, &c->in[head], c->in_len - head);
		c->in_len -= (uint32_t)head;
		if (bench_ws_decode(&c->ws->rx, c->in, c->in_len, &out) != BENCH_WS_RX_OK) {
			bench_client_fail(c, BERR_PROTOCOL);
			return;
		}
		c->in_len = (uint32_t)out;
		bench_client_send_connect(c);
		return;
	}
}

static void next_mask(struct bench_ws *ws, uint8_t mask[4])
{
	uint32_t x = ws->mask_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	ws->mask_state = x;
	memcpy(mask, &x, 4);
}

/*
 * A frame, once built, is written to the end before its payload counts as
 * done: the caller keeps the same bytes queued meanwhile (out_off does not
 * move), so a partial write is finished on the next call from the frame
 * buffer whatever the caller does to its own (compaction moves it).
 */
enum io_result bench_ws_write(struct bench_client *c, const uint8_t *p, size_t n, size_t *done,
                              enum bench_error *err)
{
	struct bench_ws *ws = c->ws;
	uint8_t mask[4];
	size_t m, wrote;
	enum io_result r;

	if (ws->frame_len == 0) {
		m = n < ws->frame_cap - BENCH_WS_HDR_MAX ? n : ws->frame_cap - BENCH_WS_HDR_MAX;
		next_mask(ws, mask);
		ws->frame_len = (uint32_t)bench_ws_frame(ws->frame, ws->frame_cap, p, m, mask);
		ws->frame_off = 0;
		ws->frame_payload = (uint32_t)m;
	}
	while (ws->frame_off < ws->frame_len) {
		r = bench_client_raw_write(c, &ws->frame[ws->frame_off], ws->frame_len - ws->frame_off, &wrote, err);
		if (r != IO_OK)
			return r;
		ws->frame_off += (uint32_t)wrote;
	}
	*done = ws->frame_payload;
	ws->frame_len = ws->frame_off = ws->frame_payload = 0;
	return IO_OK;
}

enum io_result bench_ws_read(struct bench_client *c, uint8_t *p, size_t n, size_t *got,
                             enum bench_error *err)
{
	enum io_result r;
	size_t raw, out;

	for (;;) {
		r = bench_client_raw_read(c, p, n, &raw, err);
		if (r != IO_OK)
			return r;
		switch (bench_ws_decode(&c->ws->rx, p, raw, &out)) {
		case BENCH_WS_RX_OK:
			break;
		case BENCH_WS_RX_CLOSED:
			if (out > 0)
				break;          /* the close is seen again on the next read */
			return IO_CLOSED;
		case BENCH_WS_RX_BAD:
			*err = BERR_PROTOCOL;
			return IO_FAILED;
		}
		if (out > 0) {
			*got = out;
			return IO_OK;
		}
		/* Only headers or control frames: read on. */
	}
}
