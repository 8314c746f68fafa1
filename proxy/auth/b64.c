/*
 * Strict base64; see b64.h.
 */
#include "proxy/auth/b64.h"

static const char std_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Returns the 6-bit value of `c` in the chosen alphabet, or -1. */
static int b64_value(char c, int flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (flags & B64_URL) {
		if (c == '-')
			return 62;
		if (c == '_')
			return 63;
	} else {
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
	}
	return -1;
}

size_t b64_decoded_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

size_t b64_encoded_len(size_t len, int flags)
{
	if (flags & B64_PAD)
		return (len + 2) / 3 * 4;
	return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

/* Strips the '=' padding, checking that it is present or absent as `flags`
 * demand and that it is exactly what the data length calls for. */
static int strip_padding(const char *in, size_t *inlen, int flags)
{
	size_t len = *inlen, pad = 0;

	while (pad < 2 && len > 0 && in[len - 1] == '=') {
		len--;
		pad++;
	}
	if (pad == 0) {
		if ((flags & B64_PAD) && !(flags & B64_PAD_OPTIONAL) && len % 4 != 0)
			return 0;
	} else {
		if (!(flags & (B64_PAD | B64_PAD_OPTIONAL)))
			return 0;
		if ((len + pad) % 4 != 0)
			return 0;
	}
	*inlen = len;
	return 1;
}

int b64_decode(const char *in, size_t inlen, int flags, uint8_t *out, size_t outcap,
	       size_t *outlen)
{
	size_t i, n = 0, rem;
	uint32_t acc = 0;
	int v;

	if (!strip_padding(in, &inlen, flags))
		return 0;
	rem = inlen % 4;
	if (rem == 1)
		return 0;
	if (inlen / 4 * 3 + (rem ? rem - 1 : 0) > outcap)
		return 0;
	for (i = 0; i < inlen; i++) {
		v = b64_value(in[i], flags);
		if (v < 0)
			return 0;
		acc = (acc << 6) | (uint32_t)v;
		if (i % 4 == 3) {
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* A partial group: its unused low bits must be zero (canonical). */
	if (rem == 2) {
		if (acc & 0xf)
			return 0;
		out[n++] = (uint8_t)(acc >> 4);
	} else if (rem == 3) {
		if (acc & 0x3)
			return 0;
		out[n++] = (uint8_t)(acc >> 10);
		out[n++] = (uint8_t)(acc >> 2);
	}
	*outlen = n;
	return 1;
}

int b64_encode(const uint8_t *in, size_t len, int flags, char *out, size_t outcap)
{
	const char *abc = (flags & B64_URL) ? url_alphabet : std_alphabet;
	size_t need = b64_encoded_len(len, flags), i, o = 0;
	uint32_t acc;

	if (need >= outcap)
		return 0;
	for (i = 0; i + 3 <= len; i += 3) {
		acc = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = abc[acc >> 18];
		out[o++] = abc[(acc >> 12) & 63];
		out[o++] = abc[(acc >> 6) & 63];
		out[o++] = abc[acc & 63];
	}
	if (len - i == 1) {
		acc = (uint32_t)in[i] << 16;
		out[o++] = abc[acc >> 18];
		out[o++] = abc[(acc >> 12) & 63];
		if (flags & B64_PAD) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (len - i == 2) {
		acc = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = abc[acc >> 18];
		out[o++] = abc[(acc >> 12) & 63];
		out[o++] = abc[(acc >> 6) & 63];
		if (flags & B64_PAD)
			out[o++] = '=';
	}
	out[o] = '\0';
	return 1;
}
