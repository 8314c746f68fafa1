/*
 * Test-side packet building: tiny appenders over a fixed byte array, so
 * tests spell packets out byte by byte instead of trusting the serializer
 * under test. Everything is static inline to keep unused helpers quiet.
 */
#ifndef TEST_MQTT_BYTES_H
#define TEST_MQTT_BYTES_H

#include <stdint.h>
#include <string.h>

struct pkt {
	uint8_t b[8192];
	size_t n;
};

static inline void p_u8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}

static inline void p_u16(struct pkt *p, unsigned v)
{
	p_u8(p, (v >> 8) & 0xff);
	p_u8(p, v & 0xff);
}

static inline void p_u32(struct pkt *p, uint32_t v)
{
	p_u16(p, v >> 16);
	p_u16(p, v & 0xffff);
}

static inline void p_raw(struct pkt *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* 16-bit length, then the bytes. */
static inline void p_bin(struct pkt *p, const void *d, size_t n)
{
	p_u16(p, (unsigned)n);
	p_raw(p, d, n);
}

static inline void p_str(struct pkt *p, const char *s)
{
	p_bin(p, s, strlen(s));
}

/* Minimal Variable Byte Integer, written out independently of the code
 * under test. */
static inline void p_varint(struct pkt *p, uint32_t v)
{
	do {
		uint8_t b = v % 128;

		v /= 128;
		if (v > 0)
			b |= 0x80;
		p_u8(p, b);
	} while (v > 0);
}

/* A property block: Property Length then the bytes of |props|. */
static inline void p_props(struct pkt *p, const struct pkt *props)
{
	p_varint(p, (uint32_t)props->n);
	p_raw(p, props->b, props->n);
}

/* Protocol name, level, connect flags and keep alive. */
static inline void p_connect_header(struct pkt *p, const char *name,
                                    unsigned level, unsigned flags,
                                    unsigned keepalive)
{
	p_str(p, name);
	p_u8(p, level);
	p_u8(p, flags);
	p_u16(p, keepalive);
}

/* |out| = first byte, remaining length, |body|. */
static inline void p_frame(struct pkt *out, unsigned first, const struct pkt *body)
{
	out->n = 0;
	p_u8(out, first);
	p_varint(out, (uint32_t)body->n);
	p_raw(out, body->b, body->n);
}

#endif
