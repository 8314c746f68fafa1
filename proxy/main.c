/*
 * mqtls: a TLS front door for plain MQTT brokers.
 *
 * main() reads the configuration, builds the shared state (TLS context,
 * auth snapshot and pool, broker address), starts one worker thread per
 * event loop and then only waits for signals: SIGTERM/SIGINT stop the
 * workers gracefully, SIGHUP rebuilds the TLS context and the auth snapshot
 * from the same files without touching live connections.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "proxy/address.h"
#include "proxy/auth/faildelay.h"
#include "proxy/auth/policy.h"
#include "proxy/pool.h"
#include "proxy/auth/passwd_tool.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "tls/context.h"
#include "tls/peer.h"

static SSL_CTX *build_ssl_ctx(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_server_opts o = {
		.cert_file = cfg->cert,
		.key_file = cfg->key,
		.client_ca_file = cfg->client_ca,
		.crl_file = cfg->crl,
		.client_cert = cfg->cert_mode == CLIENT_CERT_REQUIRED ? TLS_CLIENT_CERT_REQUIRED
		             : cfg->cert_mode == CLIENT_CERT_OPTIONAL ? TLS_CLIENT_CERT_OPTIONAL
		                                                      : TLS_CLIENT_CERT_NONE,
	};

	return tls_server_ctx_new(&o, err, errlen);
}

static void seconds(struct timeval *tv, long s)
{
	tv->tv_sec = s;
	tv->tv_usec = 0;
}

/* Written to a temporary name and renamed, so a watcher never sees half. */
static int write_ready_file(const char *path, const struct address *bound, int n)
{
	char tmp[4096], addr[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return 0;
	for (int i = 0; i < n; i++) {
		address_format((const struct sockaddr *)&bound[i].sa, bound[i].len, addr, sizeof(addr));
		fprintf(f, "%s\n", addr);
	}
	if (fclose(f) != 0)
		return 0;
	return rename(tmp, path) == 0;
}

/* Each client needs two descriptors here (client and broker side); take
 * the whole hard limit rather than fail at the soft one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static long default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

/* SIGHUP: each part is rebuilt completely off to the side and swapped in
 * only if it loaded without error; live connections keep what they have. */
static void reload(struct proxy *p, struct config *cfg)
{
	char err[512];
	SSL_CTX *ctx = build_ssl_ctx(cfg, err, sizeof(err));
	struct auth_material *m;

	if (ctx == NULL) {
		log_error("reload failed, keeping the previous certificates: %s", err);
	} else {
		proxy_swap_ssl_ctx(p, ctx);
		log_info("reloaded certificates, keys, CAs and CRLs; live connections keep theirs");
	}
	cfg->users_strict = 1;
	m = auth_material_load(cfg, err, sizeof(err));
	if (m == NULL) {
		log_error("reload failed, keeping the previous users and JWT keys: %s", err);
		return;
	}
	proxy_swap_auth(p, m);
	log_info("reloaded users and JWT keys");
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct proxy p;
	struct address bound[CONFIG_MAX_LISTEN];
	struct worker *workers = NULL;
	enum log_level level = LOG_INFO;
	char err[512], addr[160];
	sigset_t sigs;
	long n_workers = 0, started = 0;
	int rc = 2, sig;

	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return passwd_tool_main(argc - 1, argv + 1);

	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.lock, NULL);
	switch (config_load(&cfg, argc, argv)) {
	case CONFIG_EXIT_OK:
		rc = 0;
		goto out;
	case CONFIG_ERROR:
		goto out;
	case CONFIG_OK:
		break;
	}
	(void)log_level_parse(cfg.log_level, &level);
	log_set_level(level);
	p.cfg = &cfg;
	if (!address_parse(cfg.upstream, 1, &p.upstream, err, sizeof(err))) {
		fprintf(stderr, "mqtls: --upstream %s\n", err);
		goto out;
	}
	for (int i = 0; i < cfg.n_listen; i++) {
		if (!address_parse(cfg.listen[i], 0, &bound[i], err, sizeof(err))) {
			fprintf(stderr, "mqtls: --listen %s\n", err);
			goto out;
		}
	}
	p.max_buffer = (size_t)cfg.max_buffer;
	p.max_connect_size = (size_t)cfg.max_connect_size;
	seconds(&p.handshake_timeout, cfg.handshake_timeout);
	seconds(&p.hello_timeout, cfg.hello_timeout < cfg.handshake_timeout ? cfg.hello_timeout
	                                                                    : cfg.handshake_timeout);
	seconds(&p.connect_timeout, cfg.connect_timeout);
	seconds(&p.upstream_timeout, cfg.upstream_timeout);
	seconds(&p.linger_timeout, 5);
	p.ssl_ctx = build_ssl_ctx(&cfg, err, sizeof(err));
	if (p.ssl_ctx == NULL) {
		fprintf(stderr, "mqtls: %s\n", err);
		goto out;
	}
	if (cfg.identity_as_username) {
		enum tls_identity_kind kind = TLS_ID_NONE;

		(void)tls_identity_kind_parse(cfg.identity_as_username, &kind);
		p.identity_kind = (uint8_t)kind;
	}
	p.auth = auth_material_load(&cfg, err, sizeof(err));
	if (p.auth == NULL) {
		fprintf(stderr, "mqtls: %s\n", err);
		goto out;
	}
	if (p.auth->n_order > 0 && (p.pool = pool_new((int)cfg.auth_threads)) == NULL) {
		fprintf(stderr, "mqtls: cannot start the auth threads\n");
		goto out;
	}
	if ((p.faildelay = faildelay_new()) == NULL)
		goto out;

	/* Workers get no signals; this thread takes them with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "mqtls: libevent has no thread support\n");
		goto out;
	}

	n_workers = cfg.workers > 0 ? cfg.workers : default_workers();
	workers = calloc((size_t)n_workers, sizeof(*workers));
	if (workers == NULL)
		goto out;
	for (long i = 0; i < n_workers; i++) {
		if (!worker_init(&workers[i], (int)i, &p, bound, err, sizeof(err))) {
			fprintf(stderr, "mqtls: %s\n", err);
			worker_cleanup(&workers[i]);
			goto stop;
		}
	}
	for (long i = 0; i < n_workers; i++, started++) {
		if (!worker_start(&workers[i])) {
			fprintf(stderr, "mqtls: cannot start worker thread\n");
			goto stop;
		}
	}
	for (int i = 0; i < cfg.n_listen; i++) {
		address_format((struct sockaddr *)&bound[i].sa, bound[i].len, addr, sizeof(addr));
		log_info("listening on %s, upstream %s, %ld workers", addr, cfg.upstream, n_workers);
	}
	if (cfg.ready_file && !write_ready_file(cfg.ready_file, bound, cfg.n_listen))
		log_error("cannot write --ready-file %s: %s", cfg.ready_file, strerror(errno));

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&p, &cfg);
			continue;
		}
		log_info("signal %d: closing connections and exiting", sig);
		break;
	}
	rc = 0;
stop:
	for (long i = 0; i < started; i++)
		worker_request_stop(&workers[i]);
	for (long i = 0; i < started; i++)
		worker_join(&workers[i]);
	/* Every job comes home before the sessions it belongs to are freed. */
	pool_free(p.pool);
	p.pool = NULL;
	for (long i = 0; i < n_workers && workers; i++)
		worker_cleanup(&workers[i]);
	if (rc == 0 && cfg.ready_file)
		unlink(cfg.ready_file);
	if (rc != 0)
		rc = 2;
out:
	free(workers);
	pool_free(p.pool);
	faildelay_free(p.faildelay);
	auth_material_unref(p.auth);
	SSL_CTX_free(p.ssl_ctx);
	config_cleanup(&cfg);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
