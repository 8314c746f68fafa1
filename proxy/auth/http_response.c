/*
 * HTTP/1.1 responses for the JWKS fetcher; see http_response.h.
 */
#include "proxy/auth/http_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bytestring.h>

#include "proxy/auth/cbs_text.h"
#include "proxy/auth/errmsg.h"

/* Longest chunk-size line (with extensions) of a chunked body. */
#define CHUNK_LINE_MAX 4096
/* Interim (1xx) responses skipped before the final one. */
#define MAX_INTERIM 8
/* RFC 9111 1.2.2: a delta-seconds too large to represent is 2^31. */
#define DELTA_SECONDS_MAX 2147483648LL

/* What the headers of one response say about framing and caching. */
struct head {
	int status;
	int64_t content_length;     /* -1: none */
	int chunked;
	int64_t max_age;            /* -1: none */
	int no_cache;               /* no-store or no-cache */
	int64_t age;
	int has_location;
	char location[HTTPS_MAX_URL];
};

/* RFC 9110 5.6.2: tchar. */
static int tchar(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static void trim_ows(CBS *c)
{
	while (CBS_len(c) > 0 && (CBS_data(c)[0] == ' ' || CBS_data(c)[0] == '\t'))
		(void)CBS_skip(c, 1);
	while (CBS_len(c) > 0 &&
	       (CBS_data(c)[CBS_len(c) - 1] == ' ' || CBS_data(c)[CBS_len(c) - 1] == '\t'))
		CBS_init(c, CBS_data(c), CBS_len(c) - 1);
}

/* Reads 1*DIGIT making up all of |c| into |out|, saturating at |cap|. */
static int digits(const CBS *c, int64_t cap, int64_t *out)
{
	int64_t v = 0;

	if (CBS_len(c) == 0)
		return 0;
	for (size_t i = 0; i < CBS_len(c); i++) {
		uint8_t d = CBS_data(c)[i];

		if (d < '0' || d > '9')
			return 0;
		v = v > (cap - (d - '0')) / 10 ? cap : v * 10 + (d - '0');
	}
	*out = v;
	return 1;
}

/* One line ending in CRLF; a bare CR or LF inside it is malformed. */
static int get_line(CBS *c, CBS *line)
{
	if (!CBS_get_until_first(c, line, '\r') || !CBS_skip(c, 1))
		return 0;
	if (CBS_len(c) == 0 || CBS_data(c)[0] != '\n' || !CBS_skip(c, 1))
		return 0;
	return memchr(CBS_data(line), '\n', CBS_len(line)) == NULL;
}

/* HTTP-version SP status-code [SP reason-phrase] (RFC 9112 4). */
static int status_line(CBS line, int *status)
{
	int64_t code;
	CBS num;

	if (!cbs_skip_prefix_ci(&line, "http/1.") || CBS_len(&line) < 5 ||
	    (CBS_data(&line)[0] != '0' && CBS_data(&line)[0] != '1') || CBS_data(&line)[1] != ' ')
		return 0;
	(void)CBS_skip(&line, 2);
	if (!CBS_get_bytes(&line, &num, 3) || !digits(&num, 999, &code) || code < 100)
		return 0;
	if (CBS_len(&line) > 0 && CBS_data(&line)[0] != ' ')
		return 0;
	for (size_t i = 0; i < CBS_len(&line); i++) {
		if (CBS_data(&line)[i] < 0x20 && CBS_data(&line)[i] != '\t')
			return 0;
	}
	*status = (int)code;
	return 1;
}

/* Cache-Control directives (RFC 9111 5.2): max-age, no-store, no-cache;
 * anything else is ignored, and so is the rest of a malformed header. */
static void cache_control(CBS v, struct head *h)
{
	while (CBS_len(&v) > 0) {
		CBS item, name, arg;
		int64_t n;

		cbs_take_until_any(&v, ",", &item);
		(void)CBS_skip(&v, 1);
		trim_ows(&item);
		if (!CBS_get_until_first(&item, &name, '='))
			name = item, CBS_init(&item, NULL, 0);
		else
			(void)CBS_skip(&item, 1);
		arg = item;
		if (CBS_len(&arg) >= 2 && CBS_data(&arg)[0] == '"' && CBS_data(&arg)[CBS_len(&arg) - 1] == '"')
			CBS_init(&arg, CBS_data(&arg) + 1, CBS_len(&arg) - 2);
		if (cbs_equals_ci(&name, "no-store") || cbs_equals_ci(&name, "no-cache")) {
			h->no_cache = 1;
		} else if (cbs_equals_ci(&name, "max-age")) {
			if (!digits(&arg, DELTA_SECONDS_MAX, &n))
				return;
			/* Two max-ages: the shorter is the safer reading. */
			if (h->max_age < 0 || n < h->max_age)
				h->max_age = n;
		}
	}
}

static int header_field(CBS name, CBS value, struct head *h, char *err, size_t errlen)
{
	int64_t n;

	if (cbs_equals_ci(&name, "content-length")) {
		if (!digits(&value, INT64_MAX / 4, &n))
			return err_fail(err, errlen, "malformed Content-Length");
		if (h->content_length >= 0 && h->content_length != n)
			return err_fail(err, errlen, "two different Content-Length values");
		h->content_length = n;
	} else if (cbs_equals_ci(&name, "transfer-encoding")) {
		/* We ask for no compression; chunked is the one coding expected. */
		if (h->chunked || !cbs_equals_ci(&value, "chunked"))
			return err_fail(err, errlen, "unsupported Transfer-Encoding");
		h->chunked = 1;
	} else if (cbs_equals_ci(&name, "cache-control")) {
		cache_control(value, h);
	} else if (cbs_equals_ci(&name, "age")) {
		if (digits(&value, DELTA_SECONDS_MAX, &n))
			h->age = n;
	} else if (cbs_equals_ci(&name, "location")) {
		if (CBS_len(&value) >= sizeof(h->location))
			return err_fail(err, errlen, "Location header too long");
		memcpy(h->location, CBS_data(&value), CBS_len(&value));
		h->location[CBS_len(&value)] = '\0';
		h->has_location = 1;
	}
	return 1;
}

/* The status line and header fields of |block| (which ends with the CRLF
 * of its last line; the empty line is not part of it). */
static int parse_head(CBS block, struct head *h, char *err, size_t errlen)
{
	CBS line;
	int n = 0;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	h->max_age = -1;
	if (!get_line(&block, &line) || !status_line(line, &h->status))
		return err_fail(err, errlen, "malformed status line");
	while (CBS_len(&block) > 0) {
		CBS name, value;

		if (!get_line(&block, &line))
			return err_fail(err, errlen, "a header line is not terminated by CRLF");
		if (++n > HTTP_MAX_HEADERS)
			return err_fail(err, errlen, "more than %d header fields", HTTP_MAX_HEADERS);
		/* RFC 9112 5.2: obsolete line folding is refused; 5.1: no white
		 * space between the name and the colon. */
		if (!CBS_get_until_first(&line, &name, ':') || CBS_len(&name) == 0 || !CBS_skip(&line, 1))
			return err_fail(err, errlen, "malformed header field");
		for (size_t i = 0; i < CBS_len(&name); i++) {
			if (!tchar(CBS_data(&name)[i]))
				return err_fail(err, errlen, "malformed header field name");
		}
		value = line;
		for (size_t i = 0; i < CBS_len(&value); i++) {
			uint8_t ch = CBS_data(&value)[i];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return err_fail(err, errlen, "control character in a header field");
		}
		trim_ows(&value);
		if (!header_field(name, value, h, err, errlen))
			return 0;
	}
	if (h->chunked && h->content_length >= 0)
		return err_fail(err, errlen, "both Transfer-Encoding and Content-Length");
	return 1;
}

static int hex_value(uint8_t d)
{
	if (d >= '0' && d <= '9')
		return d - '0';
	if (ascii_lower(d) >= 'a' && ascii_lower(d) <= 'f')
		return ascii_lower(d) - 'a' + 10;
	return -1;
}

/*
 * Walks a chunked body (RFC 9112 7.1) at the front of |in|. With |out|
 * NULL it only checks and measures; then copies into |out|, which has room
 * for the total. Returns DONE with the decoded size in *total, MORE, BAD
 * or TOO_LARGE.
 */
static enum http_parse chunked(CBS in, int eof, size_t max_body, uint8_t *out, size_t *total,
                               char *err, size_t errlen)
{
	enum http_parse more = eof ? HTTP_PARSE_BAD : HTTP_PARSE_MORE;
	size_t sum = 0;

	if (eof)
		err_fail(err, errlen, "chunked body cut short");
	for (;;) {
		CBS line, hex, data;
		uint64_t size = 0;

		if (!CBS_get_until_first(&in, &line, '\n')) {
			if (CBS_len(&in) > CHUNK_LINE_MAX) {
				err_fail(err, errlen, "chunk size line too long");
				return HTTP_PARSE_BAD;
			}
			return more;
		}
		(void)CBS_skip(&in, 1);
		if (CBS_len(&line) > CHUNK_LINE_MAX || CBS_len(&line) == 0 ||
		    CBS_data(&line)[CBS_len(&line) - 1] != '\r') {
			err_fail(err, errlen, "malformed chunk size line");
			return HTTP_PARSE_BAD;
		}
		CBS_init(&line, CBS_data(&line), CBS_len(&line) - 1);
		/* chunk-size [ chunk-ext ]; extensions are ignored. */
		cbs_take_until_any(&line, "; \t", &hex);
		if (CBS_len(&hex) == 0 || CBS_len(&hex) > 8) {
			err_fail(err, errlen, "malformed chunk size");
			return HTTP_PARSE_BAD;
		}
		for (size_t i = 0; i < CBS_len(&hex); i++) {
			int v = hex_value(CBS_data(&hex)[i]);

			if (v < 0) {
				err_fail(err, errlen, "malformed chunk size");
				return HTTP_PARSE_BAD;
			}
			size = size * 16 + (uint64_t)v;
		}
		if (size == 0)
			break;
		if (size > max_body - sum) {
			err_fail(err, errlen, "chunked body over %zu bytes", max_body);
			return HTTP_PARSE_TOO_LARGE;
		}
		if (!CBS_get_bytes(&in, &data, (size_t)size))
			return more;
		if (out)
			memcpy(out + sum, CBS_data(&data), CBS_len(&data));
		sum += (size_t)size;
		if (CBS_len(&in) < 2)
			return more;
		if (CBS_data(&in)[0] != '\r' || CBS_data(&in)[1] != '\n') {
			err_fail(err, errlen, "chunk data not followed by CRLF");
			return HTTP_PARSE_BAD;
		}
		(void)CBS_skip(&in, 2);
	}
	/* The trailer section, ignored, up to the empty line. */
	for (;;) {
		CBS line;

		if (!CBS_get_until_first(&in, &line, '\n')) {
			if (CBS_len(&in) > HTTP_MAX_HEADER_BYTES) {
				err_fail(err, errlen, "trailer section too long");
				return HTTP_PARSE_TOO_LARGE;
			}
			return more;
		}
		(void)CBS_skip(&in, 1);
		if (CBS_len(&line) == 0 || CBS_data(&line)[CBS_len(&line) - 1] != '\r') {
			err_fail(err, errlen, "malformed trailer line");
			return HTTP_PARSE_BAD;
		}
		if (CBS_len(&line) == 1)
			break;
	}
	*total = sum;
	return HTTP_PARSE_DONE;
}

/* Copies |n| bytes into a new body (at least one byte is allocated). */
static int set_body(struct http_response *out, const uint8_t *p, size_t n, char *err, size_t errlen)
{
	out->body = malloc(n ? n : 1);
	if (out->body == NULL)
		return err_fail(err, errlen, "out of memory");
	if (n)
		memcpy(out->body, p, n);
	out->body_len = n;
	return 1;
}

/* Finds the empty line that ends a header block within its size limit:
 * *off is where its CRLFCRLF starts. */
static int find_blank_line(const CBS *c, size_t *off)
{
	size_t window = CBS_len(c) < HTTP_MAX_HEADER_BYTES ? CBS_len(c) : HTTP_MAX_HEADER_BYTES;
	const uint8_t *p = CBS_data(c);

	for (size_t i = 0; i + 4 <= window; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
			*off = i;
			return 1;
		}
	}
	return 0;
}

/* The framing of a 200's body (RFC 9112 6.3): chunked, Content-Length, or
 * the rest of the connection. */
static enum http_parse body(CBS rest, const struct head *h, int eof, size_t max_body,
                            struct http_response *out, char *err, size_t errlen)
{
	enum http_parse r;
	size_t total = 0;

	if (h->chunked) {
		r = chunked(rest, eof, max_body, NULL, &total, err, errlen);
		if (r != HTTP_PARSE_DONE)
			return r;
		out->body = malloc(total ? total : 1);
		if (out->body == NULL) {
			err_fail(err, errlen, "out of memory");
			return HTTP_PARSE_BAD;
		}
		(void)chunked(rest, eof, max_body, out->body, &total, NULL, 0);
		out->body_len = total;
		return HTTP_PARSE_DONE;
	}
	if (h->content_length >= 0) {
		if ((uint64_t)h->content_length > max_body) {
			err_fail(err, errlen, "Content-Length %lld is over the limit of %zu bytes",
			     (long long)h->content_length, max_body);
			return HTTP_PARSE_TOO_LARGE;
		}
		if (CBS_len(&rest) < (size_t)h->content_length) {
			err_fail(err, errlen, "body cut short: %zu of %lld bytes", CBS_len(&rest),
			     (long long)h->content_length);
			return eof ? HTTP_PARSE_BAD : HTTP_PARSE_MORE;
		}
		return set_body(out, CBS_data(&rest), (size_t)h->content_length, err, errlen)
		       ? HTTP_PARSE_DONE : HTTP_PARSE_BAD;
	}
	if (CBS_len(&rest) > max_body) {
		err_fail(err, errlen, "body over the limit of %zu bytes", max_body);
		return HTTP_PARSE_TOO_LARGE;
	}
	if (!eof)
		return HTTP_PARSE_MORE;
	return set_body(out, CBS_data(&rest), CBS_len(&rest), err, errlen) ? HTTP_PARSE_DONE
	                                                                    : HTTP_PARSE_BAD;
}

enum http_parse http_response_parse(const uint8_t *buf, size_t len, int eof, size_t max_body,
                                    struct http_response *out, char *err, size_t errlen)
{
	struct head h;
	CBS all;
	enum http_parse r;

	memset(out, 0, sizeof(*out));
	out->fresh_s = -1;
	CBS_init(&all, buf, len);
	for (int interim = 0;; interim++) {
		size_t head_len;
		CBS block;

		if (!find_blank_line(&all, &head_len)) {
			if (CBS_len(&all) >= HTTP_MAX_HEADER_BYTES) {
				err_fail(err, errlen, "response headers over %d bytes", HTTP_MAX_HEADER_BYTES);
				return HTTP_PARSE_TOO_LARGE;
			}
			err_fail(err, errlen, "response headers cut short");
			return eof ? HTTP_PARSE_BAD : HTTP_PARSE_MORE;
		}
		/* The block keeps the CRLF of its last line. */
		(void)CBS_get_bytes(&all, &block, head_len + 2);
		(void)CBS_skip(&all, 2);
		if (!parse_head(block, &h, err, errlen))
			return HTTP_PARSE_BAD;
		if (h.status >= 200)
			break;
		if (h.status == 101 || interim >= MAX_INTERIM) {
			err_fail(err, errlen, "unexpected interim response %d", h.status);
			return HTTP_PARSE_BAD;
		}
	}
	out->status = h.status;
	if (h.no_cache)
		out->fresh_s = 0;
	else if (h.max_age >= 0)
		out->fresh_s = h.max_age > h.age ? h.max_age - h.age : 0;
	out->has_location = h.has_location;
	memcpy(out->location, h.location, sizeof(out->location));
	if (h.status != 200)
		return HTTP_PARSE_DONE;
	r = body(all, &h, eof, max_body, out, err, errlen);
	if (r != HTTP_PARSE_DONE)
		http_response_cleanup(out);
	return r;
}

void http_response_cleanup(struct http_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->fresh_s = -1;
}
