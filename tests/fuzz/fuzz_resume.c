/*
 * libFuzzer target for what a client-certificate ticket holds (tls/resume.c)
 * and how tickets are opened (tls/ticket_keys.c). A blob that parses must
 * be written back byte for byte from what was parsed; any input given to
 * the ticket opener must be refused or opened without reading past it; and
 * the input sealed as a ticket must open to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "tls/resume.h"
#include "tls/ticket_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_resume_blob b;
	uint8_t *out = malloc(size + TLS_TICKET_OVERHEAD), *back = malloc(size + TLS_TICKET_OVERHEAD);
	size_t n, m = 0;

	if (out == NULL || back == NULL)
		abort();
	if (ctx == NULL && (ctx = SSL_CTX_new(TLS_method())) == NULL)
		abort();
	if (tls_resume_blob_parse(data, size, &b)) {
		if (b.n_certs > TLS_RESUME_MAX_CERTS || b.session + b.session_len != data + size ||
		    (b.n_certs > 0 && !b.had_cert))
			abort();
		n = tls_resume_blob_write(out, size, b.had_cert, b.sid_ctx, b.sid_ctx_len, b.cert, b.cert_len,
		                          b.n_certs, b.session, b.session_len);
		if (n != size || memcmp(out, data, size) != 0)
			abort();
	}
	/* Foreign bytes as a ticket: almost always refused, never a crash. */
	if (tls_ticket_open(ctx, out, &m, size, data, size) && m > size)
		abort();
	n = tls_ticket_seal(ctx, out, size + TLS_TICKET_OVERHEAD, data, size);
	if (size <= TLS_TICKET_MAX_PLAIN) {
		if (n == 0 || !tls_ticket_open(ctx, back, &m, n, out, n) || m != size ||
		    memcmp(back, data, size) != 0)
			abort();
	}
	free(out);
	free(back);
	return 0;
}
