/*
 * mqtls-bench: load generator for MQTT over TLS (or plain TCP).
 *
 *   mqtls-bench conn --count 1000 --rate 200 --cafile ca.pem
 *   mqtls-bench idle --count 5000 --duration 60 --keepalive 30 --no-tls
 *   mqtls-bench pubsub --count 10 --qos 1 --messages 10000 --payload 256
 *
 * One event loop per thread, each with its share of the connections and of
 * the rate; their measurements are merged for the report at the end.
 */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/certdir.h"
#include "bench/client.h"
#include "bench/jwt_mint.h"
#include "bench/mqtt_codec.h"
#include "bench/options.h"
#include "bench/report.h"
#include "bench/tls_client.h"
#include "bench/worker.h"

static int resolve(const struct bench_options *o, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%ld", o->port);
	rc = getaddrinfo(o->host, port, &hints, &res);
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
		fprintf(stderr, "mqtls-bench: cannot resolve %s: %s\n", o->host,
		        rc ? gai_strerror(rc) : "no address");
		if (res != NULL)
			freeaddrinfo(res);
		return 0;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 1;
}

/* The CONNECT must fit a client's output buffer; check the longest once
 * here (with the last client's token) rather than failing every client
 * later. */
static int connect_fits(const struct bench_options *o, const struct jwt_minter *minter)
{
	uint8_t buf[CLIENT_OUT_MAX];
	char token[JWT_MINT_MAX];
	size_t token_len = 0;
	char id[128];
	struct outbuf out;
	struct mqttc_connect m = { 0 };
	int n = snprintf(id, sizeof(id), "%s%ld", o->client_id, o->count);

	if (n < 0 || (size_t)n >= sizeof(id)) {
		fprintf(stderr, "mqtls-bench: --client-id is too long\n");
		return 0;
	}
	outbuf_init(&out, buf, sizeof(buf));
	m.version = o->mqtt_version;
	m.client_id = (struct slice){ (const uint8_t *)id, (size_t)n };
	m.has_username = o->username != NULL;
	m.username = (struct slice){ (const uint8_t *)o->username, o->username ? strlen(o->username) : 0 };
	m.has_password = o->password != NULL;
	m.password = (struct slice){ (const uint8_t *)o->password, o->password ? strlen(o->password) : 0 };
	if (minter != NULL) {
		if (!jwt_minter_mint(minter, (uint32_t)o->count, (int64_t)time(NULL), token, sizeof(token),
		                     &token_len)) {
			fprintf(stderr, "mqtls-bench: cannot mint a JWT with --jwt-key (too long?)\n");
			return 0;
		}
		m.has_password = 1;
		m.password = (struct slice){ (const uint8_t *)token, token_len };
	}
	if (!mqttc_encode_connect(&out, &m)) {
		fprintf(stderr, "mqtls-bench: user name and password (or JWT) are too long\n");
		return 0;
	}
	return 1;
}

static struct jwt_minter *load_minter(const struct bench_options *o)
{
	struct jwt_mint_config cfg = { o->jwt_alg, o->jwt_claims, o->jwt_ttl, o->jwt_kid };
	struct jwt_minter *m;
	char err[256];

	m = jwt_minter_load(o->jwt_key, &cfg, err, sizeof(err));
	if (m == NULL)
		fprintf(stderr, "mqtls-bench: --jwt-key: %s\n", err);
	return m;
}

/* One SSL_CTX, or one per certificate of a --cert directory. Returns the
 * count (0 on error, after one line on stderr); *ctxs is owned by the caller. */
static size_t make_contexts(const struct bench_options *o, SSL_CTX ***ctxs)
{
	struct bench_cert_pair *pairs = NULL;
	size_t n = 1, i, made = 0;
	char err[512];

	if (o->cert != NULL && bench_is_dir(o->cert) &&
	    !bench_cert_pairs_list(o->cert, o->key, &pairs, &n, err, sizeof(err))) {
		fprintf(stderr, "mqtls-bench: %s\n", err);
		return 0;
	}
	*ctxs = calloc(n, sizeof(**ctxs));
	for (i = 0; *ctxs != NULL && i < n; i++, made++) {
		(*ctxs)[i] = pairs != NULL ? bench_tls_ctx_new(o, pairs[i].cert, pairs[i].key) :
		                             bench_tls_ctx_new(o, o->cert, o->key);
		if ((*ctxs)[i] == NULL)
			break;
	}
	bench_cert_pairs_free(pairs, pairs != NULL ? n : 0);
	if (made == n)
		return n;
	for (i = 0; *ctxs != NULL && i < made; i++)
		SSL_CTX_free((*ctxs)[i]);
	free(*ctxs);
	*ctxs = NULL;
	return 0;
}

/* Each client needs a descriptor; ask for as many as the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* SIGINT ends the run cleanly: the main loop tells every worker to stop,
 * and the summary is printed as usual. A second SIGINT kills. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
	signal(sig, SIG_DFL);
}

static double seconds_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e9;
}

static void progress(const struct bench_worker *w, long n, uint64_t t0, int tty)
{
	uint64_t started = 0, connected = 0, active = 0, failed = 0;
	long i;

	for (i = 0; i < n; i++) {
		started += atomic_load(&w[i].stats.started);
		connected += atomic_load(&w[i].stats.connected);
		active += atomic_load(&w[i].stats.active);
		failed += atomic_load(&w[i].stats.failed);
	}
	fprintf(stderr, "%s%7.1f s  started %llu  connected %llu  active %llu  errors %llu%s",
	        tty ? "\r" : "", seconds_since(t0), (unsigned long long)started,
	        (unsigned long long)connected, (unsigned long long)active,
	        (unsigned long long)failed, tty ? "   " : "\n");
}

static int all_done(const struct bench_worker *w, long n)
{
	long i;

	for (i = 0; i < n; i++)
		if (!atomic_load(&w[i].done))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	struct bench_options o;
	struct sockaddr_storage addr;
	socklen_t addr_len = 0;
	struct bench_worker *w = NULL;
	struct bench_stats total;
	struct bench_run run;
	struct rusage ru;
	SSL_CTX **ctxs = NULL;
	size_t n_ctx = 0;
	struct jwt_minter *minter = NULL;
	uint64_t t0, last_connack = 0, msg_start = 0, msg_end = 0;
	uint32_t first = 0;
	long units, per_unit;
	int tty, ticks = 0, rc = 1;
	long i;

	memset(&total, 0, sizeof(total));
	switch (bench_options_parse(&o, argc, argv)) {
	case OPTIONS_OK:
		break;
	case OPTIONS_EXIT_OK:
		return 0;
	default:
		return 2;
	}
	if (!resolve(&o, &addr, &addr_len))
		return 2;
	if (o.jwt_key != NULL && (minter = load_minter(&o)) == NULL)
		return 2;
	if (!connect_fits(&o, minter)) {
		jwt_minter_free(minter);
		return 2;
	}
	/* SSL_write writes the socket itself: a reset peer must be an error
	 * code, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (o.tls && (n_ctx = make_contexts(&o, &ctxs)) == 0) {
		jwt_minter_free(minter);
		return 2;
	}
	/* pubsub counts pairs, and a pair stays on one thread so that the
	 * subscriber can be ready before its publisher starts. */
	per_unit = o.scenario == SCENARIO_PUBSUB ? 2 : 1;
	units = o.count;
	if (o.threads > units)
		o.threads = units;
	w = calloc((size_t)o.threads, sizeof(*w));
	if (w == NULL || !bench_stats_init(&total))
		goto err;
	for (i = 0; i < o.threads; i++) {
		uint32_t share = (uint32_t)((units / o.threads + (i < units % o.threads)) * per_unit);
		uint32_t conc = (uint32_t)(o.concurrency / o.threads + (i < o.concurrency % o.threads));

		if (!bench_worker_init(&w[i], (int)i, &o, ctxs, n_ctx, minter, &addr, addr_len, first, share,
		                 o.rate / (double)o.threads, conc))
			goto err;
		first += share;
	}
	tty = isatty(STDERR_FILENO) && !o.quiet;
	signal(SIGINT, on_sigint);
	t0 = bench_now_ns();
	for (i = 0; i < o.threads; i++)
		if (!bench_worker_start(&w[i]))
			goto err;
	while (!all_done(w, o.threads)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		if (interrupted == 1) {
			interrupted = 2;
			for (i = 0; i < o.threads; i++)
				bench_worker_stop(&w[i]);
		}
		if (++ticks % 10 == 0 && !o.quiet)
			progress(w, o.threads, t0, tty);
	}
	if (tty)
		fputc('\n', stderr);
	for (i = 0; i < o.threads; i++) {
		bench_worker_join(&w[i]);
		if (!bench_stats_merge(&total, &w[i].stats))
			goto err;
		if (w[i].t_last_connack_ns > last_connack)
			last_connack = w[i].t_last_connack_ns;
		if (w[i].t_msg_start_ns != 0 && (msg_start == 0 || w[i].t_msg_start_ns < msg_start))
			msg_start = w[i].t_msg_start_ns;
		if (w[i].t_msg_end_ns > msg_end)
			msg_end = w[i].t_msg_end_ns;
	}
	getrusage(RUSAGE_SELF, &ru);
	run.opt = &o;
	run.stats = &total;
	run.elapsed_s = seconds_since(t0);
	run.connect_s = last_connack > t0 ? (double)(last_connack - t0) / 1e9 : 0.0;
	run.publish_s = msg_end > msg_start ? (double)(msg_end - msg_start) / 1e9 : 0.0;
	run.interrupted = interrupted != 0;
	run.cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	run.cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	bench_report_print(stdout, &run);
	rc = 0;
	if (o.json != NULL && !bench_report_write_json(o.json, &run))
		rc = 1;
	/* Exit status 3 tells scripts that some connection failed. */
	if (rc == 0 && atomic_load(&total.failed) > 0)
		rc = 3;
err:
	if (w != NULL) {
		for (i = 0; i < o.threads; i++) {
			bench_worker_join(&w[i]);
			bench_worker_cleanup(&w[i]);
		}
	}
	free(w);
	bench_stats_cleanup(&total);
	for (i = 0; i < (long)n_ctx; i++)
		SSL_CTX_free(ctxs[i]);
	free(ctxs);
	jwt_minter_free(minter);
	return rc;
}
