/*
 * The JWKS fetcher's HTTPS client (proxy/auth/https_get.c) against a TLS
 * server in a thread of this test that answers each connection with a
 * scripted response: framing through a real TLS stream, redirects and their
 * limit, statuses, size and time limits, cancellation, and the checks of the
 * server's certificate (its CA, its name).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/auth/https_get.h"
#include "tests/unit/tls_test_util.h"

#define MAX_SCRIPT 8

/* One connection's answer: |resp| is written after the request, then the
 * server waits up to |stall_ms| (to let a deadline pass) before closing. */
struct answer {
	const char *resp;
	int stall_ms;
};

struct server {
	SSL_CTX *ctx;
	int lfd;
	uint16_t port;
	pthread_t thread;
	struct answer script[MAX_SCRIPT];
	int n_script;
	int served;
	char last_request[2048];
};

static char dir[64];
static SSL_CTX *server_ctx;
static char ca[128];

static void serve_one(struct server *sv, int fd, const struct answer *a)
{
	SSL *ssl = SSL_new(sv->ctx);
	char buf[2048];
	size_t got = 0;
	int n;

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	while (got < sizeof(buf) - 1 && (n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got))) > 0) {
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[got] = '\0';
	memcpy(sv->last_request, buf, got + 1);
	if (a->resp)
		SSL_write(ssl, a->resp, (int)strlen(a->resp));
	if (a->stall_ms) {
		/* Until the deadline would have passed, or the client hangs up. */
		struct pollfd p = { fd, POLLIN, 0 };

		(void)poll(&p, 1, a->stall_ms);
	}
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
}

static void *server_main(void *arg)
{
	struct server *sv = arg;

	for (int i = 0; i < sv->n_script; i++) {
		int fd = accept(sv->lfd, NULL, NULL);

		if (fd < 0)
			break;
		serve_one(sv, fd, &sv->script[i]);
		sv->served++;
	}
	return NULL;
}

static void server_start(struct server *sv)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	sv->ctx = server_ctx;
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->lfd, 8), 0);
	getsockname(sv->lfd, (struct sockaddr *)&a, &len);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->thread, NULL, server_main, sv), 0);
}

static void server_stop(struct server *sv)
{
	shutdown(sv->lfd, SHUT_RDWR);
	pthread_join(sv->thread, NULL);
	close(sv->lfd);
}

static struct https_get_opts opts(int total_ms)
{
	struct https_get_opts o = { ca, 1024, 2000, total_ms, 3, -1 };

	return o;
}

static struct https_url url_of(const char *host, uint16_t port, const char *path)
{
	char s[256], err[200];
	struct https_url u;

	snprintf(s, sizeof(s), "https://%s:%u%s", host, port, path);
	if (!https_url_parse(s, strlen(s), &u, err, sizeof(err)))
		fail_msg("%s: %s", s, err);
	return u;
}

static enum https_result get(struct server *sv, const char *host, const char *path,
                             const struct https_get_opts *o, struct http_response *r,
                             struct https_url *final, char *err, size_t errlen)
{
	struct https_url u = url_of(host, sv->port, path);

	return https_get(&u, o, r, final, err, errlen);
}

static void assert_has(const char *s, const char *needle)
{
	if (strstr(s, needle) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", s, needle);
}

static void test_get_reads_a_chunked_body_and_sends_one_request(void **state)
{
	struct server sv = { .n_script = 1, .script = { {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=90\r\n\r\n"
		"3\r\n{\"k\r\n7\r\neys\":[]\r\n1\r\n}\r\n0\r\n\r\n", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/certs?x=1", &o, &r, NULL, err, sizeof(err)), HTTPS_OK);
	server_stop(&sv);
	assert_int_equal(r.body_len, strlen("{\"keys\":[]}"));
	assert_memory_equal(r.body, "{\"keys\":[]}", r.body_len);
	assert_int_equal(r.fresh_s, 90);
	http_response_cleanup(&r);
	assert_has(sv.last_request, "GET /certs?x=1 HTTP/1.1\r\n");
	assert_has(sv.last_request, "\r\nConnection: close\r\n");
	{
		char host[64];

		snprintf(host, sizeof(host), "\r\nHost: localhost:%u\r\n", sv.port);
		assert_has(sv.last_request, host);
	}
}

static void test_get_follows_a_redirect_to_the_final_url(void **state)
{
	struct server sv = { .n_script = 2, .script = {
		{ "HTTP/1.1 301 Moved\r\nLocation: /realms/mqtt/certs\r\nContent-Length: 0\r\n\r\n", 0 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	struct https_url final;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/old", &o, &r, &final, err, sizeof(err)), HTTPS_OK);
	server_stop(&sv);
	assert_string_equal(final.path, "/realms/mqtt/certs");
	assert_int_equal(sv.served, 2);
	http_response_cleanup(&r);
}

/* Three redirects are followed; the fourth is refused. */
static void test_get_refuses_a_fourth_redirect(void **state)
{
	static const char redir[] = "HTTP/1.1 302 Found\r\nLocation: /again\r\n\r\n";
	struct server sv = { .n_script = 4, .script = { { redir, 0 }, { redir, 0 }, { redir, 0 },
	                                                { redir, 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_REDIRECTS);
	server_stop(&sv);
	assert_has(err, "more than 3 redirects");
	assert_int_equal(sv.served, 4);
	assert_null(r.body);
}

static void test_get_refuses_a_redirect_to_http(void **state)
{
	struct server sv = { .n_script = 1, .script = {
		{ "HTTP/1.1 302 Found\r\nLocation: http://localhost/certs\r\n\r\n", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_REDIRECTS);
	server_stop(&sv);
	assert_has(err, "http://");
}

static void test_get_reports_a_status_other_than_200(void **state)
{
	struct server sv = { .n_script = 1, .script = {
		{ "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy!", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_HTTP_STATUS);
	server_stop(&sv);
	assert_has(err, "HTTP 503");
}

static void test_get_refuses_a_body_over_the_limit(void **state)
{
	struct server sv = { .n_script = 1, .script = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n{", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_TOO_LARGE);
	server_stop(&sv);
	assert_has(err, "10485760");
}

static void test_get_reports_a_malformed_response(void **state)
{
	struct server sv = { .n_script = 1, .script = { { "SSH-2.0-OpenSSH_9.2\r\n\r\n", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_MALFORMED);
	server_stop(&sv);
	assert_has(err, "status line");
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A server that sends half a response and stalls is given up on at the
 * total deadline, not waited for. */
static void test_get_gives_up_at_the_total_deadline(void **state)
{
	struct server sv = { .n_script = 1, .script = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"keys\":", 3000 } } };
	struct https_get_opts o = opts(300);
	struct http_response r;
	struct timespec t0;
	char err[300] = "";

	server_start(&sv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_TIMEOUT);
	assert_true(seconds_since(&t0) < 2.0);
	server_stop(&sv);
	assert_has(err, "timed out");
}

/* Stopping mqtls abandons a request at once. */
static void test_get_is_cancelled_by_its_descriptor(void **state)
{
	struct server sv = { .n_script = 1, .script = { { NULL, 3000 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	struct timespec t0;
	uint64_t one = 1;
	char err[300] = "";

	o.cancel_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(write(o.cancel_fd, &one, sizeof(one)) == sizeof(one));
	server_start(&sv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_CANCELLED);
	assert_true(seconds_since(&t0) < 2.0);
	server_stop(&sv);
	close(o.cancel_fd);
}

/* The certificate names localhost, not 127.0.0.1. */
static void test_get_checks_the_host_name_of_the_certificate(void **state)
{
	struct server sv = { .n_script = 1, .script = { { "HTTP/1.1 200 OK\r\n\r\n", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	server_start(&sv);
	assert_int_equal(get(&sv, "127.0.0.1", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_TLS);
	server_stop(&sv);
	assert_has(err, "does not verify");
}

static void test_get_checks_the_certificate_against_the_ca(void **state)
{
	struct server sv = { .n_script = 1, .script = { { "HTTP/1.1 200 OK\r\n\r\n", 0 } } };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";

	o.ca_file = NULL;     /* the system's CAs do not know this self-signed one */
	server_start(&sv);
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_TLS);
	server_stop(&sv);
	assert_has(err, "does not verify");
}

static void test_get_reports_a_ca_file_that_does_not_load(void **state)
{
	struct https_get_opts o = opts(5000);
	struct https_url u = url_of("localhost", 9, "/");
	struct http_response r;
	char err[300] = "";

	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(https_get(&u, &o, &r, NULL, err, sizeof(err)), HTTPS_TLS);
	assert_has(err, "/nonexistent/ca.pem");
	assert_false(https_ca_check("/nonexistent/ca.pem", err, sizeof(err)));
	assert_true(https_ca_check(ca, err, sizeof(err)));
}

static void test_get_reports_a_closed_port(void **state)
{
	struct server sv = { .n_script = 0 };
	struct https_get_opts o = opts(5000);
	struct http_response r;
	char err[300] = "";
	uint16_t port;

	server_start(&sv);
	port = sv.port;
	server_stop(&sv);     /* nothing listens there any more */
	sv.port = port;
	assert_int_equal(get(&sv, "localhost", "/", &o, &r, NULL, err, sizeof(err)), HTTPS_UNREACHABLE);
	assert_has(err, "cannot connect");
}

static int group_setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/mqtls-test-https-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	server_ctx = make_server_ctx(dir, "server", 0);
	snprintf(ca, sizeof(ca), "%s/server.pem", dir);
	return server_ctx == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
	char cmd[128];

	SSL_CTX_free(server_ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_reads_a_chunked_body_and_sends_one_request),
		cmocka_unit_test(test_get_follows_a_redirect_to_the_final_url),
		cmocka_unit_test(test_get_refuses_a_fourth_redirect),
		cmocka_unit_test(test_get_refuses_a_redirect_to_http),
		cmocka_unit_test(test_get_reports_a_status_other_than_200),
		cmocka_unit_test(test_get_refuses_a_body_over_the_limit),
		cmocka_unit_test(test_get_reports_a_malformed_response),
		cmocka_unit_test(test_get_gives_up_at_the_total_deadline),
		cmocka_unit_test(test_get_is_cancelled_by_its_descriptor),
		cmocka_unit_test(test_get_checks_the_host_name_of_the_certificate),
		cmocka_unit_test(test_get_checks_the_certificate_against_the_ca),
		cmocka_unit_test(test_get_reports_a_ca_file_that_does_not_load),
		cmocka_unit_test(test_get_reports_a_closed_port),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
