/*
 * WebSocket frame decoding in place and frame header encoding
 * (ws_frame.h). Rule references are to RFC 6455.
 */
#include <string.h>

#include "mqtt/cursor.h"
#include "proxy/ws_frame.h"

enum { ST_HEADER, ST_PAYLOAD, ST_CLOSED, ST_FAILED };

void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
	d->state = ST_HEADER;
}

static enum ws_event fail(struct ws_decoder *d, struct ws_control *ctl, uint16_t code,
                          const char *why)
{
	d->state = ST_FAILED;
	d->fail_code = code;
	d->fail_why = why;
	ctl->code = code;
	ctl->why = why;
	return WS_EV_ERROR;
}

static int is_control(uint8_t opcode)
{
	return (opcode & 0x8) != 0;
}

/* The checks the first two header bytes allow, so that a bad frame is
 * refused as soon as it can be. */
static enum ws_event check_start(struct ws_decoder *d, struct ws_control *ctl)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	uint8_t opcode = b0 & 0x0f, len7 = b1 & 0x7f;

	/* 5.2: RSV1-3 are 0 unless an extension says otherwise; none is
	 * negotiated. */
	if ((b0 & 0x70) != 0)
		return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] reserved bits set");
	/* 5.1: "The server MUST close the connection upon receiving a frame
	 * that is not masked." */
	if ((b1 & 0x80) == 0)
		return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.1] unmasked client frame");
	switch (opcode) {
	case WS_OP_CONTINUATION:
		/* 5.4: a continuation belongs to an open message. */
		if (!d->in_message)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.4] continuation without a message");
		break;
	case WS_OP_BINARY:
		if (d->in_message)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.4] new message inside a fragmented one");
		break;
	case WS_OP_TEXT:
		/* [MQTT-6.0.0-1] MQTT is carried in binary frames only. */
		return fail(d, ctl, WS_CLOSE_UNSUPPORTED, "[MQTT-6.0.0-1] text frame");
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		/* 5.5: "All control frames MUST have a payload length of 125
		 * bytes or less and MUST NOT be fragmented." */
		if ((b0 & 0x80) == 0)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.5] fragmented control frame");
		if (len7 > WS_CONTROL_MAX)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.5] control frame over 125 bytes");
		break;
	default:
		return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] reserved opcode");
	}
	return WS_EV_DRAINED;
}

/* The header length the first two bytes announce. */
static uint8_t header_len(const struct ws_decoder *d)
{
	uint8_t len7 = d->hdr[1] & 0x7f;

	return (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
}

/* The header is complete: read its length and mask. */
static enum ws_event start_payload(struct ws_decoder *d, struct ws_control *ctl)
{
	struct cursor c;
	uint8_t len7 = d->hdr[1] & 0x7f, b0, b1;
	uint64_t len = len7;

	cursor_init(&c, d->hdr, d->hdr_len);
	(void)cursor_u8(&c, &b0);
	(void)cursor_u8(&c, &b1);
	if (len7 == 126) {
		uint16_t v;

		(void)cursor_u16(&c, &v);
		/* 5.2: "the minimal number of bytes MUST be used". */
		if (v < 126)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] length not in its shortest form");
		len = v;
	} else if (len7 == 127) {
		uint32_t hi, lo;

		(void)cursor_u32(&c, &hi);
		(void)cursor_u32(&c, &lo);
		len = ((uint64_t)hi << 32) | lo;
		/* 5.2: "the most significant bit MUST be 0". */
		if (hi & 0x80000000u)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] 64-bit length with the top bit set");
		if (len < 65536)
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.2] length not in its shortest form");
	}
	d->opcode = b0 & 0x0f;
	d->fin = (b0 & 0x80) != 0;
	if (!is_control(d->opcode)) {
		/* 7.4.1: 1009 "a message that is too big for it to process". */
		if (len > d->max_frame)
			return fail(d, ctl, WS_CLOSE_TOO_BIG, "[RFC 6455 7.4.1] frame larger than the limit");
		d->in_message = !d->fin;
	}
	for (int i = 0; i < 4; i++)
		(void)cursor_u8(&c, &d->mask[i]);
	d->mask_pos = 0;
	d->left = len;
	d->ctl_len = 0;
	d->state = ST_PAYLOAD;
	return WS_EV_DRAINED;
}

/*
 * XORs |n| bytes from |src| with the mask (starting at mask byte |pos|)
 * into |dst|, where dst <= src: each load happens before the store that
 * could overlap it, so the move is safe in place. Eight bytes at a time
 * once the mask is aligned.
 */
static void unmask_move(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                        unsigned pos)
{
	uint8_t m8[8];
	uint64_t m;
	size_t i = 0;

	while (i < n && ((pos + i) & 3) != 0) {
		dst[i] = src[i] ^ mask[(pos + i) & 3];
		i++;
	}
	for (int k = 0; k < 8; k++)
		m8[k] = mask[k & 3];
	memcpy(&m, m8, sizeof(m));
	for (; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, src + i, sizeof(v));
		v ^= m;
		memcpy(dst + i, &v, sizeof(v));
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ mask[(pos + i) & 3];
}

/* 7.4.1 and 7.4.2: the codes an endpoint may send (1012-1014 were
 * registered with IANA after the RFC). */
static int close_code_valid(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/* A complete control frame is in d->ctl. */
static enum ws_event control_done(struct ws_decoder *d, struct ws_control *ctl)
{
	ctl->payload = d->ctl;
	ctl->len = d->ctl_len;
	if (d->opcode == WS_OP_PING)
		return WS_EV_PING;
	if (d->opcode == WS_OP_PONG)
		return WS_EV_PONG;
	/* Close (5.5.1): an optional 2-byte code, then a UTF-8 reason. */
	if (d->ctl_len == 1)
		return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 5.5.1] close body of one byte");
	if (d->ctl_len == 0) {
		ctl->code = WS_CLOSE_NO_STATUS;
	} else {
		ctl->code = (uint16_t)((d->ctl[0] << 8) | d->ctl[1]);
		if (!close_code_valid(ctl->code))
			return fail(d, ctl, WS_CLOSE_PROTOCOL, "[RFC 6455 7.4] close code that may not be sent");
		/* 5.5.1: the reason is UTF-8; 8.1: else fail with 1007. */
		if (!mqtt_utf8_valid_data(d->ctl + 2, d->ctl_len - 2u))
			return fail(d, ctl, WS_CLOSE_INVALID_DATA, "[RFC 6455 5.5.1] close reason is not UTF-8");
		ctl->payload = d->ctl + 2;
		ctl->len = d->ctl_len - 2u;
	}
	d->state = ST_CLOSED;
	d->fail_code = ctl->code;
	return WS_EV_CLOSE;
}

enum ws_event ws_decode(struct ws_decoder *d, struct ws_region *r, struct ws_control *ctl)
{
	enum ws_event ev;

	memset(ctl, 0, sizeof(*ctl));
	if (d->state == ST_FAILED) {
		ctl->code = d->fail_code;
		ctl->why = d->fail_why;
		return WS_EV_ERROR;
	}
	if (d->state == ST_CLOSED) {
		ctl->code = d->fail_code;
		return WS_EV_CLOSE;
	}
	if (r->ptr == NULL || r->in > r->len || r->out > r->in)
		return WS_EV_DRAINED;
	for (;;) {
		if (d->state == ST_HEADER) {
			uint8_t need = d->hdr_len < 2 ? 2 : header_len(d);

			while (d->hdr_len < need && r->in < r->len) {
				d->hdr[d->hdr_len++] = r->ptr[r->in++];
				if (d->hdr_len == 2) {
					if ((ev = check_start(d, ctl)) != WS_EV_DRAINED)
						return ev;
					need = header_len(d);
				}
			}
			if (d->hdr_len < need)
				return WS_EV_DRAINED;
			if ((ev = start_payload(d, ctl)) != WS_EV_DRAINED)
				return ev;
		}
		/* ST_PAYLOAD */
		{
			size_t avail = r->len - r->in;
			size_t n = d->left < avail ? (size_t)d->left : avail;

			if (is_control(d->opcode)) {
				for (size_t i = 0; i < n; i++)
					d->ctl[d->ctl_len + i] = r->ptr[r->in + i] ^ d->mask[(d->mask_pos + i) & 3];
				d->ctl_len = (uint8_t)(d->ctl_len + n);
			} else if (n > 0) {
				unmask_move(r->ptr + r->out, r->ptr + r->in, n, d->mask, d->mask_pos);
				r->out += n;
			}
			r->in += n;
			d->left -= n;
			d->mask_pos = (uint8_t)((d->mask_pos + n) & 3);
			if (d->left > 0)
				return WS_EV_DRAINED;
			d->state = ST_HEADER;
			d->hdr_len = 0;
			if (is_control(d->opcode))
				return control_done(d, ctl);
		}
	}
}

size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], enum ws_opcode opcode, int fin, uint64_t len)
{
	struct outbuf o;

	outbuf_init(&o, out, WS_HEADER_MAX);
	outbuf_u8(&o, (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f)));
	if (len < 126) {
		outbuf_u8(&o, (uint8_t)len);
	} else if (len <= 0xffff) {
		outbuf_u8(&o, 126);
		outbuf_u16(&o, (uint16_t)len);
	} else {
		outbuf_u8(&o, 127);
		outbuf_u32(&o, (uint32_t)(len >> 32) & 0x7fffffffu);
		outbuf_u32(&o, (uint32_t)len);
	}
	return o.len;
}

size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code)
{
	struct outbuf o;

	outbuf_init(&o, out, WS_CLOSE_FRAME_MAX);
	outbuf_u8(&o, 0x80 | WS_OP_CLOSE);
	if (code == WS_CLOSE_NO_STATUS) {
		outbuf_u8(&o, 0);
	} else {
		outbuf_u8(&o, 2);
		outbuf_u16(&o, code);
	}
	return o.len;
}

size_t ws_pong_frame(uint8_t out[WS_PONG_FRAME_MAX], const uint8_t *payload, size_t len)
{
	struct outbuf o;

	if (len > WS_CONTROL_MAX)
		return 0;
	outbuf_init(&o, out, WS_PONG_FRAME_MAX);
	outbuf_u8(&o, 0x80 | WS_OP_PONG);
	outbuf_u8(&o, (uint8_t)len);
	outbuf_bytes(&o, payload, len);
	return o.failed ? 0 : o.len;
}
