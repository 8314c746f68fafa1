/*
 * Bounds-checked readers and writers for the MQTT byte formats (cursor.h).
 * This is the only file that moves pointers over packet bytes; everything
 * else asks a cursor for the next field and stops at the first 0.
 */
#include <stdlib.h>
#include <string.h>

#include "mqtt/cursor.h"

/* The largest value a Variable Byte Integer can carry (1.5.5). */
#define VARINT_MAX 268435455u

char *slice_dup(struct slice s)
{
	char *p = malloc(s.len + 1);

	/* An absent field is a NULL slice: nothing to copy. */
	if (p) {
		if (s.len > 0)
			memcpy(p, s.ptr, s.len);
		p[s.len] = '\0';
	}
	return p;
}

void cursor_init(struct cursor *c, const uint8_t *ptr, size_t len)
{
	c->ptr = ptr;
	c->len = ptr != NULL ? len : 0;
}

size_t cursor_left(const struct cursor *c)
{
	return c->len;
}

int cursor_u8(struct cursor *c, uint8_t *out)
{
	if (c->len < 1)
		return 0;
	*out = c->ptr[0];
	c->ptr++;
	c->len--;
	return 1;
}

int cursor_u16(struct cursor *c, uint16_t *out)
{
	if (c->len < 2)
		return 0;
	*out = (uint16_t)((c->ptr[0] << 8) | c->ptr[1]);
	c->ptr += 2;
	c->len -= 2;
	return 1;
}

int cursor_u32(struct cursor *c, uint32_t *out)
{
	if (c->len < 4)
		return 0;
	*out = ((uint32_t)c->ptr[0] << 24) | ((uint32_t)c->ptr[1] << 16) |
	       ((uint32_t)c->ptr[2] << 8) | (uint32_t)c->ptr[3];
	c->ptr += 4;
	c->len -= 4;
	return 1;
}

int cursor_take(struct cursor *c, size_t n, struct slice *out)
{
	if (c->len < n)
		return 0;
	out->ptr = c->ptr;
	out->len = n;
	c->ptr += n;
	c->len -= n;
	return 1;
}

int cursor_varint(struct cursor *c, uint32_t *out)
{
	uint32_t value = 0;
	uint8_t b;
	int i;

	/* Seven bits per byte, least significant group first; the high bit
	 * says another byte follows. Four bytes at most (1.5.5). */
	for (i = 0; i < 4; i++) {
		if (!cursor_u8(c, &b))
			return 0;
		value |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			/* [MQTT-1.5.5-1] a final zero group after the first byte
			 * means a shorter encoding existed. */
			if (i > 0 && b == 0)
				return 0;
			*out = value;
			return 1;
		}
	}
	return 0;   /* a fifth byte would be needed: malformed */
}

int cursor_binary(struct cursor *c, struct slice *out)
{
	uint16_t len;

	return cursor_u16(c, &len) && cursor_take(c, len, out);
}

int cursor_utf8(struct cursor *c, struct slice *out)
{
	return cursor_binary(c, out) && mqtt_utf8_valid(out->ptr, out->len);
}

/*
 * Checks well-formed UTF-8 (RFC 3629: shortest form only, nothing above
 * U+10FFFF, no surrogates) [MQTT-1.5.4-1], and, unless |allow_nul|, no
 * U+0000 [MQTT-1.5.4-2]. The ranges of the second byte after E0, ED, F0
 * and F4 are what rule out overlongs, surrogates and code points beyond
 * U+10FFFF.
 */
static int utf8_scan(const uint8_t *p, size_t len, int allow_nul)
{
	size_t i = 0;

	while (i < len) {
		uint8_t b = p[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t need, k;

		if (b == 0x00 && !allow_nul)
			return 0;                   /* [MQTT-1.5.4-2] */
		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			need = 1;
		} else if (b >= 0xe0 && b <= 0xef) {
			need = 2;
			if (b == 0xe0)
				lo = 0xa0;          /* overlong below U+0800 */
			else if (b == 0xed)
				hi = 0x9f;          /* U+D800..U+DFFF surrogates */
		} else if (b >= 0xf0 && b <= 0xf4) {
			need = 3;
			if (b == 0xf0)
				lo = 0x90;          /* overlong below U+10000 */
			else if (b == 0xf4)
				hi = 0x8f;          /* above U+10FFFF */
		} else {
			return 0;   /* continuation byte, C0/C1 overlong, F5..FF */
		}
		if (len - i - 1 < need)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (k = 2; k <= need; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return 0;
		i += need + 1;
	}
	return 1;
}

int mqtt_utf8_valid(const uint8_t *p, size_t len)
{
	return utf8_scan(p, len, 0);
}

int mqtt_utf8_valid_printable(const uint8_t *p, size_t len)
{
	if (len > 65535 || !mqtt_utf8_valid(p, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		/* U+0080..U+009F are C2 80..C2 9F; the scan above proved that a
		 * C2 here leads a two-byte sequence. */
		if (p[i] == 0xc2 && p[i + 1] <= 0x9f)
			return 0;
	}
	return 1;
}

int mqtt_utf8_valid_data(const uint8_t *p, size_t len)
{
	return utf8_scan(p, len, 1);
}

void outbuf_init(struct outbuf *o, uint8_t *buf, size_t cap)
{
	o->ptr = buf;
	o->cap = buf != NULL ? cap : 0;
	o->len = 0;
	o->failed = 0;
}

int outbuf_bytes(struct outbuf *o, const void *p, size_t n)
{
	if (o->failed || o->cap - o->len < n) {
		o->failed = 1;
		return 0;
	}
	if (n > 0)
		memcpy(o->ptr + o->len, p, n);
	o->len += n;
	return 1;
}

int outbuf_u8(struct outbuf *o, uint8_t v)
{
	return outbuf_bytes(o, &v, 1);
}

int outbuf_u16(struct outbuf *o, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return outbuf_bytes(o, b, sizeof(b));
}

int outbuf_u32(struct outbuf *o, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
	                 (uint8_t)(v >> 8), (uint8_t)v };

	return outbuf_bytes(o, b, sizeof(b));
}

size_t mqtt_varint_size(uint32_t v)
{
	if (v < 128u)
		return 1;
	if (v < 16384u)
		return 2;
	if (v < 2097152u)
		return 3;
	if (v <= VARINT_MAX)
		return 4;
	return 0;
}

int outbuf_varint(struct outbuf *o, uint32_t v)
{
	uint8_t b[4];
	size_t n = mqtt_varint_size(v), i;

	if (n == 0) {
		o->failed = 1;
		return 0;
	}
	for (i = 0; i < n; i++) {
		b[i] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (i + 1 < n)
			b[i] |= 0x80;
	}
	return outbuf_bytes(o, b, n);
}

int outbuf_binary(struct outbuf *o, struct slice s)
{
	if (s.len > 0xffff) {
		o->failed = 1;
		return 0;
	}
	return outbuf_u16(o, (uint16_t)s.len) && outbuf_bytes(o, s.ptr, s.len);
}
