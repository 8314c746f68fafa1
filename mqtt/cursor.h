/*
 * Bounds-checked reading and writing of MQTT byte formats.
 *
 * A cursor is a view of bytes that can only shrink from the front. Every
 * read checks the remaining length first and returns 1 on success, 0 when
 * the input is too short or invalid; on failure the cursor is left in an
 * unspecified position and the caller stops at the first 0. Nothing here
 * allocates, and no other file does pointer arithmetic on packet bytes.
 *
 * An outbuf is the writing twin: a fixed-capacity buffer owned by the
 * caller. A write that does not fit sets `failed` and writes nothing more,
 * so a serializer can do all its writes and check once at the end.
 */
#ifndef MQTT_CURSOR_H
#define MQTT_CURSOR_H

#include <stddef.h>
#include <stdint.h>

/* A borrowed view of bytes; it never owns memory. */
struct slice {
	const uint8_t *ptr;
	size_t len;
};

struct cursor {
	const uint8_t *ptr;
	size_t len;
};

/* A NUL-terminated malloc'd copy of |s| (an absent, NULL slice gives ""),
 * or NULL without memory; the caller frees it. */
char *slice_dup(struct slice s);

void cursor_init(struct cursor *c, const uint8_t *ptr, size_t len);
size_t cursor_left(const struct cursor *c);
int cursor_u8(struct cursor *c, uint8_t *out);
int cursor_u16(struct cursor *c, uint16_t *out);      /* big-endian */
int cursor_u32(struct cursor *c, uint32_t *out);      /* big-endian */
int cursor_take(struct cursor *c, size_t n, struct slice *out);
/* MQTT "Variable Byte Integer" (1.5.5): at most 4 bytes, and the encoding
 * must be minimal (a non-minimal encoding is malformed). */
int cursor_varint(struct cursor *c, uint32_t *out);
/* A 16-bit length then that many bytes ("Binary Data", 1.5.6). */
int cursor_binary(struct cursor *c, struct slice *out);
/* Binary data that must also be well-formed MQTT UTF-8 (1.5.4):
 * valid UTF-8, no U+0000, no surrogates [MQTT-1.5.4-1], [MQTT-1.5.4-2]. */
int cursor_utf8(struct cursor *c, struct slice *out);

/* Returns 1 if the bytes are well-formed MQTT UTF-8 as described above. */
int mqtt_utf8_valid(const uint8_t *p, size_t len);
/* Returns 1 if the bytes are an MQTT string (well-formed, at most 65,535
 * bytes) without the control characters U+0001..U+001F and U+007F..U+009F
 * that a string SHOULD NOT hold (1.5.4) and a broker MAY drop a client for:
 * the test for names mqtls itself puts into a CONNECT. */
int mqtt_utf8_valid_printable(const uint8_t *p, size_t len);
/* Returns 1 if the bytes are well-formed UTF-8 but allows U+0000: the rule
 * for "UTF-8 Encoded Character Data" payloads (5.0 3.3.2.3.2), which are
 * not MQTT strings. */
int mqtt_utf8_valid_data(const uint8_t *p, size_t len);

struct outbuf {
	uint8_t *ptr;        /* borrowed from the caller */
	size_t cap;
	size_t len;
	int failed;
};

void outbuf_init(struct outbuf *o, uint8_t *buf, size_t cap);
int outbuf_u8(struct outbuf *o, uint8_t v);
int outbuf_u16(struct outbuf *o, uint16_t v);
int outbuf_u32(struct outbuf *o, uint32_t v);
int outbuf_varint(struct outbuf *o, uint32_t v);      /* fails above 268,435,455 */
int outbuf_bytes(struct outbuf *o, const void *p, size_t n);
int outbuf_binary(struct outbuf *o, struct slice s);  /* 16-bit length + bytes */

/* Number of bytes outbuf_varint would write for v (1..4), or 0 if too big. */
size_t mqtt_varint_size(uint32_t v);

#endif
