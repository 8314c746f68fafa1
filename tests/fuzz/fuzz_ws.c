/*
 * libFuzzer target for the WebSocket transport: the upgrade request parser
 * and response builders (proxy/ws_upgrade.c), then the client frame
 * decoder (proxy/ws_frame.c) over the bytes that follow the request (or
 * the whole input when it is not a request).
 *
 * Input: one options byte (the cut position and the frame limit), then the
 * bytes. Checked, beyond memory safety: a prefix of a request gives "need
 * more" or the same verdict; every verdict carries what its caller needs;
 * the decoder's region invariants hold; decoding the stream whole and cut
 * in two gives the same MQTT bytes and events.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/ws_frame.h"
#include "proxy/ws_upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 64

struct outcome {
	uint8_t *data;          /* decoded MQTT bytes */
	size_t n;
	int events[MAX_EVENTS];
	uint16_t codes[MAX_EVENTS];
	size_t lens[MAX_EVENTS];
	int nev;
	int truncated;
};

static void check_upgrade(const uint8_t *data, size_t size, size_t *frames_at)
{
	struct ws_upgrade u, p;
	enum ws_upgrade_result r, pr;
	char out[1024];
	size_t cut;

	*frames_at = 0;
	r = ws_upgrade_parse(data, size, "/mqtt", 0, &u);
	if (r == WS_UPGRADE_OK) {
		if (u.request_len == 0 || u.request_len > size || strlen(u.key) != WS_KEY_LEN ||
		    u.protocol == WS_PROTO_NONE || ws_upgrade_accept(&u, out, sizeof(out)) == 0)
			abort();
		*frames_at = u.request_len;
	} else if (r == WS_UPGRADE_REFUSE) {
		if (u.why == NULL || (u.status != 400 && u.status != 404 && u.status != 431) ||
		    ws_upgrade_refuse(&u, out, sizeof(out)) == 0)
			abort();
	}
	/* A few prefixes: need more, or the same verdict. */
	for (cut = size / 2; cut < size; cut += (size - cut + 1) / 2) {
		uint8_t *copy = malloc(cut + 1);

		if (copy == NULL)
			return;
		memcpy(copy, data, cut);
		pr = ws_upgrade_parse(copy, cut, "/mqtt", 0, &p);
		free(copy);
		if (pr != WS_UPGRADE_NEED_MORE && (pr != r || p.status != u.status))
			abort();
		if (cut == size - 1)
			break;
	}
}

/* Decodes |in| cut at |at| (two reads into exact-size buffers). */
static void decode(const uint8_t *in, size_t n, size_t at, uint64_t max, struct outcome *o)
{
	struct ws_decoder d;
	size_t start = 0;

	memset(o, 0, sizeof(*o));
	o->data = malloc(n + 1);
	if (o->data == NULL)
		abort();
	ws_decoder_init(&d, max);
	for (int piece = 0; piece < 2; piece++) {
		size_t end = piece == 0 ? at : n;
		struct ws_region r;
		uint8_t *buf = malloc(end - start + 1);
		int stop = 0;

		if (buf == NULL)
			abort();
		memcpy(buf, in + start, end - start);
		r.ptr = buf;
		r.len = end - start;
		r.in = r.out = 0;
		for (;;) {
			struct ws_control ctl;
			enum ws_event ev = ws_decode(&d, &r, &ctl);

			if (r.out > r.in || r.in > r.len)
				abort();
			if (ev == WS_EV_DRAINED) {
				if (r.in != r.len)
					abort();
				break;
			}
			if (ctl.len > WS_CONTROL_MAX || (ctl.len > 0 && ctl.payload == NULL))
				abort();
			if (ev == WS_EV_ERROR && (ctl.why == NULL || ctl.code < 1000))
				abort();
			if (o->nev == MAX_EVENTS) {
				o->truncated = 1;
				stop = 1;
				break;
			}
			o->events[o->nev] = ev;
			o->codes[o->nev] = ctl.code;
			o->lens[o->nev] = ctl.len;
			o->nev++;
			if (ev == WS_EV_CLOSE || ev == WS_EV_ERROR) {
				struct ws_control again;
				size_t in_before = r.in;

				/* Sticky, and reads nothing more. */
				if (ws_decode(&d, &r, &again) != ev || again.code != ctl.code || r.in != in_before)
					abort();
				stop = 1;
				break;
			}
			if (ev == WS_EV_PING) {
				uint8_t pong[WS_PONG_FRAME_MAX];

				if (ws_pong_frame(pong, ctl.payload, ctl.len) != 2 + ctl.len)
					abort();
			}
		}
		memcpy(o->data + o->n, buf, r.out);
		o->n += r.out;
		free(buf);
		if (stop)
			return;
		start = end;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, cut;
	size_t frames_at, n, at;
	uint64_t max;
	uint8_t opt;

	if (size < 1)
		return 0;
	opt = data[0];
	data++;
	size--;
	check_upgrade(data, size, &frames_at);

	n = size - frames_at;
	at = n > 0 ? (opt * (n + 1)) / 256 : 0;
	max = (opt & 1) ? 64 : 1u << 20;
	decode(data + frames_at, n, 0, max, &whole);
	decode(data + frames_at, n, at, max, &cut);
	if (!whole.truncated && !cut.truncated) {
		if (whole.n != cut.n || memcmp(whole.data, cut.data, whole.n) != 0 || whole.nev != cut.nev)
			abort();
		for (int i = 0; i < whole.nev; i++)
			if (whole.events[i] != cut.events[i] || whole.codes[i] != cut.codes[i] ||
			    whole.lens[i] != cut.lens[i])
				abort();
	}
	free(whole.data);
	free(cut.data);

	{
		uint8_t h[WS_HEADER_MAX], c[WS_CLOSE_FRAME_MAX];
		uint64_t len = 0;

		for (size_t i = 0; i < size && i < 8; i++)
			len = (len << 8) | data[i];
		len &= 0x7fffffffffffffffull;
		n = ws_frame_header(h, WS_OP_BINARY, opt & 1, len);
		if (n != (len < 126 ? 2u : len <= 0xffff ? 4u : 10u))
			abort();
		(void)ws_close_frame(c, (uint16_t)len);
	}
	return 0;
}
