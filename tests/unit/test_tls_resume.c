/*
 * What a ticket carries with client certificates (tls/resume.c: chain list
 * and blob) and how tickets are sealed and opened (tls/ticket_keys.c: the
 * process's own keys, --ticket-keys files, damaged or foreign tickets).
 * Handshakes that resume are tested against real clients in
 * tests/integration/test_resume.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "tls/resume.h"
#include "tls/ticket_keys.h"

static const uint8_t sid[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t session[] = "a serialized SSL_SESSION stand-in";

static void test_chain_list_round_trips_through_the_blob(void **state)
{
	static const uint8_t leaf[] = "leaf DER", inter[] = "intermediate DER";
	const uint8_t *der[2] = { leaf, inter };
	size_t len[2] = { sizeof(leaf), sizeof(inter) }, chain_size, n;
	uint8_t blob[256];
	struct tls_resume_blob b;

	(void)state;
	chain_size = tls_resume_chain_size(len, 2);
	assert_int_equal(chain_size, 2 + sizeof(leaf) + 2 + sizeof(inter));
	n = tls_resume_blob_write(blob, sizeof(blob), 1, sid, sizeof(sid), der, len, 2, session,
	                          sizeof(session));
	assert_int_equal(n, tls_resume_blob_size(sizeof(sid), chain_size, sizeof(session)));
	assert_true(tls_resume_blob_parse(blob, n, &b));
	assert_true(b.had_cert);
	assert_int_equal(b.sid_ctx_len, sizeof(sid));
	assert_memory_equal(b.sid_ctx, sid, sizeof(sid));
	assert_int_equal(b.n_certs, 2);
	assert_int_equal(b.cert_len[0], sizeof(leaf));
	assert_memory_equal(b.cert[0], leaf, sizeof(leaf));
	assert_int_equal(b.cert_len[1], sizeof(inter));
	assert_memory_equal(b.cert[1], inter, sizeof(inter));
	assert_int_equal(b.session_len, sizeof(session));
	assert_memory_equal(b.session, session, sizeof(session));
}

static void test_a_client_without_certificate_has_an_empty_chain(void **state)
{
	uint8_t blob[128];
	struct tls_resume_blob b;
	size_t n;

	(void)state;
	n = tls_resume_blob_write(blob, sizeof(blob), 0, sid, sizeof(sid), NULL, NULL, 0, session,
	                          sizeof(session));
	assert_true(n > 0);
	assert_true(tls_resume_blob_parse(blob, n, &b));
	assert_false(b.had_cert);
	assert_int_equal(b.n_certs, 0);
	assert_int_equal(b.session_len, sizeof(session));
}

/* A leaf that does not fit leaves the list empty (the ticket then says a
 * certificate was presented but carries none: it cannot resume); the list
 * stops at four certificates and at TLS_RESUME_MAX_CHAIN bytes. */
static void test_chain_list_bounds(void **state)
{
	size_t six[6] = { 5, 5, 5, 5, 5, 5 };
	size_t big[2] = { TLS_RESUME_MAX_CHAIN - 1, 5 };
	size_t half[2] = { TLS_RESUME_MAX_CHAIN / 2, TLS_RESUME_MAX_CHAIN / 2 };
	size_t fits[2] = { TLS_RESUME_MAX_CHAIN / 2 - 2, TLS_RESUME_MAX_CHAIN / 2 - 2 };
	size_t empty_first[2] = { 0, 5 };

	(void)state;
	assert_int_equal(tls_resume_chain_size(big, 2), 0);
	assert_int_equal(tls_resume_chain_size(six, 6), 4 * (2 + 5));
	assert_int_equal(tls_resume_chain_size(half, 2), 2 + TLS_RESUME_MAX_CHAIN / 2);
	assert_int_equal(tls_resume_chain_size(fits, 2), TLS_RESUME_MAX_CHAIN);
	assert_int_equal(tls_resume_chain_size(empty_first, 2), 0);
}

static void test_a_leaf_too_large_gives_a_ticket_that_cannot_carry_it(void **state)
{
	uint8_t *big = calloc(1, TLS_RESUME_MAX_CHAIN), blob[256];
	const uint8_t *der[1] = { big };
	size_t len[1] = { TLS_RESUME_MAX_CHAIN }, n;
	struct tls_resume_blob b;

	(void)state;
	assert_non_null(big);
	n = tls_resume_blob_write(blob, sizeof(blob), 1, sid, sizeof(sid), der, len, 1, session,
	                          sizeof(session));
	assert_true(n > 0);
	assert_true(tls_resume_blob_parse(blob, n, &b));
	assert_true(b.had_cert);
	assert_int_equal(b.n_certs, 0);
	free(big);
}

static void test_blob_writer_refuses_what_does_not_fit(void **state)
{
	uint8_t blob[128], sid33[33] = { 0 };
	size_t need = tls_resume_blob_size(sizeof(sid), 0, sizeof(session));

	(void)state;
	assert_int_equal(tls_resume_blob_write(blob, need - 1, 0, sid, sizeof(sid), NULL, NULL, 0, session,
	                                       sizeof(session)), 0);
	assert_int_equal(tls_resume_blob_write(blob, sizeof(blob), 0, sid33, sizeof(sid33), NULL, NULL, 0,
	                                       session, sizeof(session)), 0);
	assert_int_equal(tls_resume_blob_write(blob, sizeof(blob), 0, sid, sizeof(sid), NULL, NULL, 0,
	                                       session, 0), 0);
}

/* Every shorter prefix of a valid blob, and each field made wrong, is
 * refused rather than read past its end. */
static void test_blob_parser_refuses_truncated_or_altered_blobs(void **state)
{
	static const uint8_t leaf[] = "leaf";
	const uint8_t *der[1] = { leaf };
	size_t len[1] = { sizeof(leaf) }, n, i;
	uint8_t blob[128], copy[128];
	struct tls_resume_blob b;

	(void)state;
	n = tls_resume_blob_write(blob, sizeof(blob), 1, sid, sizeof(sid), der, len, 1, session,
	                          sizeof(session));
	assert_true(n > 0);
	/* Up to the end of the chain list nothing is left for the session. */
	for (i = 0; i <= n - sizeof(session); i++)
		assert_false(tls_resume_blob_parse(blob, i, &b));
	assert_true(tls_resume_blob_parse(blob, n, &b));
	memcpy(copy, blob, n);
	copy[0] = 2;                            /* another version */
	assert_false(tls_resume_blob_parse(copy, n, &b));
	memcpy(copy, blob, n);
	copy[1] = 0x03;                         /* an unknown flag */
	assert_false(tls_resume_blob_parse(copy, n, &b));
	memcpy(copy, blob, n);
	copy[1] = 0;                            /* certificates without the flag */
	assert_false(tls_resume_blob_parse(copy, n, &b));
	memcpy(copy, blob, n);
	copy[2] = 33;                           /* a session id context too long */
	assert_false(tls_resume_blob_parse(copy, n, &b));
	memcpy(copy, blob, n);
	copy[2 + 1 + 32 + 2] = 0xff;            /* a certificate longer than its list */
	assert_false(tls_resume_blob_parse(copy, n, &b));
	memcpy(copy, blob, n);
	copy[2 + 1 + 32 + 2 + 1] = 0;           /* an empty certificate */
	copy[2 + 1 + 32 + 2 + 2] = 0;
	assert_false(tls_resume_blob_parse(copy, n, &b));
}

static void test_more_than_four_certificates_are_refused(void **state)
{
	/* Written by hand: the writer never puts more than four. */
	uint8_t blob[2 + 1 + 32 + 2 + 5 * 3 + sizeof(session)], *p = blob;
	struct tls_resume_blob b;

	(void)state;
	*p++ = 1;
	*p++ = 1;
	*p++ = 32;
	memcpy(p, sid, 32);
	p += 32;
	*p++ = 0;
	*p++ = 5 * 3;
	for (int i = 0; i < 5; i++) {
		*p++ = 0;
		*p++ = 1;
		*p++ = 'x';
	}
	memcpy(p, session, sizeof(session));
	assert_false(tls_resume_blob_parse(blob, sizeof(blob), &b));
	/* The same with four is fine: the hand-made layout is the real one. */
	blob[2 + 1 + 32 + 1] = 4 * 3;
	memmove(blob + 2 + 1 + 32 + 2 + 4 * 3, blob + 2 + 1 + 32 + 2 + 5 * 3, sizeof(session));
	assert_true(tls_resume_blob_parse(blob, sizeof(blob) - 3, &b));
	assert_int_equal(b.n_certs, 4);
}

static void test_refusal_names(void **state)
{
	(void)state;
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_REVOKED), "revoked");
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_CA_CHANGED), "ca_changed");
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_EXPIRED), "expired");
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_UNVERIFIED), "unverified");
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_MALFORMED), "malformed");
	assert_string_equal(tls_resume_refusal_name(TLS_RESUME_REFUSAL_COUNT), "unknown");
}

/* A context with --ticket-keys |lines| (written to |path|, then removed). */
static SSL_CTX *ctx_with_keys(const char *path, const char *lines)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	char err[256];
	FILE *f = fopen(path, "w");

	assert_non_null(ctx);
	assert_non_null(f);
	fputs(lines, f);
	fclose(f);
	if (!tls_ticket_keys_install(ctx, path, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	return ctx;
}

/* base64 of 80-byte keys: name 'A' x16, AES 'B' x32, HMAC 'C' x32; all 'D'. */
#define KEY_A "QUFBQUFBQUFBQUFBQUFBQUJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M=\n"
#define KEY_D "REREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREQ=\n"

static size_t seal(SSL_CTX *ctx, uint8_t *out, size_t max)
{
	return tls_ticket_seal(ctx, out, max, session, sizeof(session));
}

static void test_tickets_open_with_the_keys_that_sealed_them_only(void **state)
{
	SSL_CTX *own = SSL_CTX_new(TLS_method()), *own2 = SSL_CTX_new(TLS_method());
	SSL_CTX *a = ctx_with_keys("keys-a", KEY_A), *a2 = ctx_with_keys("keys-a2", KEY_A);
	SSL_CTX *rotated = ctx_with_keys("keys-da", KEY_D KEY_A), *d = ctx_with_keys("keys-d", KEY_D);
	uint8_t ticket[256], plain[256];
	size_t n, m = 0;

	(void)state;
	assert_non_null(own);
	assert_non_null(own2);
	/* The process's own keys: any context of this process, after a reload too. */
	n = seal(own, ticket, sizeof(ticket));
	assert_true(n >= sizeof(session) + 64 && n <= sizeof(session) + TLS_TICKET_OVERHEAD);
	assert_true(tls_ticket_open(own2, plain, &m, sizeof(plain), ticket, n));
	assert_int_equal(m, sizeof(session));
	assert_memory_equal(plain, session, sizeof(session));
	assert_false(tls_ticket_open(a, plain, &m, sizeof(plain), ticket, n));
	/* A shared file: another replica opens it, and so does a rotated file
	 * that still lists the key; a file without it does not. */
	n = seal(a, ticket, sizeof(ticket));
	assert_true(tls_ticket_open(a2, plain, &m, sizeof(plain), ticket, n));
	assert_memory_equal(plain, session, sizeof(session));
	assert_true(tls_ticket_open(rotated, plain, &m, sizeof(plain), ticket, n));
	assert_false(tls_ticket_open(d, plain, &m, sizeof(plain), ticket, n));
	assert_false(tls_ticket_open(own, plain, &m, sizeof(plain), ticket, n));
	/* The rotated file seals with its first key, which the old file lacks. */
	n = seal(rotated, ticket, sizeof(ticket));
	assert_true(tls_ticket_open(d, plain, &m, sizeof(plain), ticket, n));
	assert_false(tls_ticket_open(a, plain, &m, sizeof(plain), ticket, n));
	SSL_CTX_free(own);
	SSL_CTX_free(own2);
	SSL_CTX_free(a);
	SSL_CTX_free(a2);
	SSL_CTX_free(rotated);
	SSL_CTX_free(d);
}

/* Any changed byte, a cut, or an output buffer too small: refused. */
static void test_damaged_tickets_do_not_open(void **state)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	uint8_t ticket[256], copy[256], plain[256];
	size_t n, m, i;

	(void)state;
	n = seal(ctx, ticket, sizeof(ticket));
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		memcpy(copy, ticket, n);
		copy[i] ^= 0x01;
		assert_false(tls_ticket_open(ctx, plain, &m, sizeof(plain), copy, n));
	}
	for (i = 0; i < n; i++)
		assert_false(tls_ticket_open(ctx, plain, &m, sizeof(plain), ticket, i));
	assert_false(tls_ticket_open(ctx, plain, &m, n - 65, ticket, n));
	assert_true(tls_ticket_open(ctx, plain, &m, n - 64, ticket, n));
	/* Sealing needs room for the overhead. */
	assert_int_equal(tls_ticket_seal(ctx, ticket, sizeof(session) + TLS_TICKET_OVERHEAD - 1, session,
	                                 sizeof(session)), 0);
	SSL_CTX_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_list_round_trips_through_the_blob),
		cmocka_unit_test(test_a_client_without_certificate_has_an_empty_chain),
		cmocka_unit_test(test_chain_list_bounds),
		cmocka_unit_test(test_a_leaf_too_large_gives_a_ticket_that_cannot_carry_it),
		cmocka_unit_test(test_blob_writer_refuses_what_does_not_fit),
		cmocka_unit_test(test_blob_parser_refuses_truncated_or_altered_blobs),
		cmocka_unit_test(test_more_than_four_certificates_are_refused),
		cmocka_unit_test(test_refusal_names),
		cmocka_unit_test(test_tickets_open_with_the_keys_that_sealed_them_only),
		cmocka_unit_test(test_damaged_tickets_do_not_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
