/*
 * mqtls: a TLS front door for plain MQTT brokers.
 *
 * main() reads the configuration, builds the shared state (TLS context,
 * auth snapshot and pool, broker address), starts one worker thread per
 * event loop and then only waits for signals: SIGTERM/SIGINT stop the
 * workers gracefully, SIGHUP (also raised by the watcher of the loaded
 * files) reads the whole configuration again and swaps in what a running
 * process can change, without touching live connections.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "proxy/address.h"
#include "proxy/auth/faildelay.h"
#include "proxy/brokers.h"
#include "proxy/auth/jwks_fetch.h"
#include "proxy/auth/policy.h"
#include "proxy/pool.h"
#include "proxy/auth/passwd_tool.h"
#include "proxy/config.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/watch.h"
#include "proxy/http.h"
#include "proxy/limits.h"
#include "proxy/session.h"
#include "proxy/upstream_tls.h"
#include "proxy/worker.h"
#include "tls/context.h"
#include "tls/peer.h"
#include "tls/sni.h"

_Static_assert(CONFIG_MAX_LIST <= TLS_SNI_MAX_PAIRS, "every --cert/--key pair fits one context set");

static SSL_CTX *build_ssl_ctx(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_server_opts o = {   /* cert_file, key_file: the pairs, below */
		.client_ca_file = cfg->client_ca,
		.crl_file = cfg->crl,
		.client_cert = cfg->cert_mode == CLIENT_CERT_REQUIRED ? TLS_CLIENT_CERT_REQUIRED
		             : cfg->cert_mode == CLIENT_CERT_OPTIONAL ? TLS_CLIENT_CERT_OPTIONAL
		                                                      : TLS_CLIENT_CERT_NONE,
		.ticket_keys_file = cfg->ticket_keys,
	};

	return tls_server_ctx_set_new(&o, (const char *const *)cfg->cert, (const char *const *)cfg->key,
	                              (size_t)cfg->n_cert, err, errlen);
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

/* How often the main thread returns free memory to the system. */
#define TRIM_EVERY_S 10

static void reload(struct proxy *p);

/* All connections the workers hold, as they last counted them. */
static uint64_t open_connections(struct worker *workers, long n)
{
	uint64_t total = 0;

	for (long i = 0; i < n; i++)
		total += worker_connections(&workers[i]);
	return total;
}

/*
 * The first phase of a stop (--drain-timeout): /readyz says 503 at once, the
 * listeners close, and live sessions go on until they end by themselves or
 * the timeout passes; a second SIGTERM or SIGINT ends the wait. SIGHUP
 * still reloads meanwhile. The caller then closes what is left (MQTT 5
 * clients get DISCONNECT 0x8B at a packet boundary).
 */
static void drain(struct proxy *p, struct config *cfg, struct worker *workers, long n, const sigset_t *sigs,
                  int sig)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	uint64_t deadline = session_now_ms() + (uint64_t)cfg->drain_timeout * 1000;

	atomic_store(&p->draining, 1);
	if (cfg->drain_timeout == 0)
		return;
	log_info("signal %d: draining: no new connections, %llu open ones may go on for up to %ld s "
	         "(a second SIGTERM ends the wait)", sig, (unsigned long long)open_connections(workers, n),
	         cfg->drain_timeout);
	for (long i = 0; i < n; i++)
		worker_request_drain(&workers[i]);
	while (session_now_ms() < deadline && open_connections(workers, n) > 0) {
		int got = sigtimedwait(sigs, NULL, &tick);

		if (got == SIGHUP) {
			reload(p);
		} else if (got == SIGTERM || got == SIGINT) {
			log_info("signal %d: ending the drain now", got);
			return;
		}
	}
	if (open_connections(workers, n) > 0)
		log_info("drain timeout: closing %llu connections", (unsigned long long)open_connections(workers, n));
}

static long default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

/* The certificate new connections get: what an operator checks after a
 * renewal, and what expires. */
static void log_certificate(const SSL_CTX *ctx, const char *file, const char *names, const char *key)
{
	struct tls_cert_info ci;
	char subject[320], path[320], names_esc[640];

	log_escape(path, sizeof(path), file, strlen(file));
	if (!tls_server_ctx_cert_info(ctx, &ci)) {
		log_warn("certificate file=\"%s\": cannot read its subject, serial or expiry", path);
		return;
	}
	log_escape(subject, sizeof(subject), ci.subject, strlen(ci.subject));
	log_escape(names_esc, sizeof(names_esc), names, strlen(names));
	log_info("certificate file=\"%s\" subject=\"%s\" serial=%s not_after=%s days_left=%lld names=\"%s\" "
	         "key=%s", path, subject, ci.serial, ci.not_after_text,
	         (long long)(ci.not_after - (int64_t)time(NULL)) / 86400, names_esc, key);
}

/* One line per --cert pair, with the names SNI chooses it by. */
static void log_certificates(const SSL_CTX *ctx, const struct config *cfg)
{
	for (size_t i = 0; i < tls_server_ctx_pairs(ctx); i++) {
		const char *file, *key;
		SSL_CTX *pair = tls_server_ctx_pair(ctx, i, &file);
		char names[300];

		tls_server_ctx_pair_names(ctx, i, names, sizeof(names), &key);
		log_certificate(pair, file ? file : cfg->cert[0], names, key);
	}
}

/* Quiet time after the last change to a loaded file before the reload: a
 * renewal writes the certificate and the key one after the other. */
#define WATCH_QUIET_MS 1000

/* On the watcher's thread. The reload runs on the main thread, which takes
 * this SIGHUP with sigwait like one sent from outside. */
static void file_changed(void *arg, const char *path)
{
	char p[320];

	log_escape(p, sizeof(p), path, strlen(path));
	log_info("file changed: \"%s\"; reading the configuration again", p);
	kill(getpid(), SIGHUP);
}

/* Watches the files |cfg| loads, replacing the previous watcher: where a
 * file's symlinks lead changes with each Kubernetes update, and the set of
 * files with the configuration. The new one is armed before the old one
 * stops, and the old one reports a change it still held, so none is lost. */
static void watch_files(struct proxy *p, const struct config *cfg)
{
	const char *files[40];
	size_t n = config_files(cfg, files, sizeof(files) / sizeof(files[0]));
	struct watch *old = p->watch;
	char err[256];

	p->watch = NULL;
	if (n > 0 && (p->watch = watch_new(files, n, WATCH_QUIET_MS, file_changed, NULL, err,
	                                   sizeof(err))) == NULL)
		log_warn("cannot watch the configured files (only SIGHUP reloads): %s", err);
	watch_free(old);
}

static void free_config(struct config *cfg)
{
	if (cfg) {
		config_cleanup(cfg);
		free(cfg);
	}
}

/*
 * SIGHUP, or a loaded file changed. The configuration is read again exactly
 * as at startup (the same argv, the environment, the --config file) into a
 * new struct config, and a TLS context and an auth snapshot are built from
 * it off to the side; only when all of it has loaded does it go live, in
 * one step (proxy_install). Otherwise nothing changes and the log names the
 * file and the reason. Options a running process cannot change keep their
 * running values and are named in one "needs restart" line. Live
 * connections keep their TLS context and auth snapshot; the limits read at
 * each use (max-buffer, max-connections, max-auth-per-ip, ...) apply to
 * them from their next use.
 */
static void reload(struct proxy *p)
{
	const struct config *cur = atomic_load(&p->cfg);
	struct config *next = calloc(1, sizeof(*next));
	struct auth_material *m = NULL;
	SSL_CTX *ctx = NULL, *up_ctx = NULL;
	char err[1024], restart[512];
	int n_restart;

	if (next == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto err;
	}
	if (config_read(next, p->argc, p->argv, environ, err, sizeof(err)) != CONFIG_OK)
		goto err;
	n_restart = config_keep_running(next, cur, restart, sizeof(restart), err, sizeof(err));
	if (n_restart < 0)
		goto err;
	next->users_strict = 1;   /* a damaged users file must not lose users */
	if ((ctx = build_ssl_ctx(next, err, sizeof(err))) == NULL ||
	    (m = auth_material_load(next, err, sizeof(err))) == NULL ||
	    (next->upstream_tls && (up_ctx = upstream_tls_ctx_new(next, err, sizeof(err))) == NULL))
		goto err;
	if (config_same(next, cur)) {
		/* New file contents under the same options: nothing to keep. */
		free_config(next);
		next = NULL;
	}
	if (!proxy_install(p, next, ctx, m)) {
		snprintf(err, sizeof(err), "out of memory");
		goto err;
	}
	/* From here on ctx and m belong to p; only this thread replaces them. */
	upstream_tls_swap(p, up_ctx);
	metrics_reload_result(1);
	if (n_restart > 0)
		log_warn("reload: needs restart: %s changed; kept as they were", restart);
	if (m->n_order > 0 && p->pool == NULL)
		log_warn("reload: authentication was off at startup, so no --auth-threads run: its slow "
		         "checks run on the event loops until a restart");
	cur = atomic_load(&p->cfg);
	log_certificates(ctx, cur);
	log_info("reloaded the configuration%s; certificates, keys, CAs, CRLs, users and JWT keys read "
	         "again; live connections keep theirs", next ? " with changed options" : "");
	watch_files(p, cur);
	return;
err:
	metrics_reload_result(0);
	log_error("reload failed, keeping the running configuration: %s", err);
	SSL_CTX_free(ctx);
	SSL_CTX_free(up_ctx);
	auth_material_unref(m);
	free_config(next);
	watch_files(p, cur);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct proxy p;
	struct address bound[CONFIG_MAX_LISTEN];
	struct worker *workers = NULL;
	struct http_server *http = NULL;
	enum log_level level = LOG_INFO;
	char err[512], addr[160], upstreams[1024];
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
	/* Only this thread takes signals, with sigwait; every thread started
	 * from here on (auth pool, workers, file watcher, metrics) inherits the
	 * mask. A thread started before it would take a SIGHUP or SIGTERM that
	 * arrives while this one is busy (in a reload, say), and its default
	 * action would end the process. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	(void)log_level_parse(cfg.log_level, &level);
	log_set_level(level);
	log_set_json(strcmp(cfg.log_format, "json") == 0);
	p.cfg = &cfg;
	p.argc = argc;
	p.argv = argv;
	if ((p.brokers = brokers_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mqtls: %s\n", err);
		goto out;
	}
	for (int i = 0; i < config_n_listeners(&cfg); i++) {
		if (!address_parse(config_listener(&cfg, i), 0, &bound[i], err, sizeof(err))) {
			fprintf(stderr, "mqtls: --%s %s\n", config_listener_is_ws(&cfg, i) ? "ws-listen" : "listen", err);
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
	if (!upstream_tls_setup(&p, &cfg, err, sizeof(err))) {
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
	{
		int lerr = 0;

		p.limits = limits_new(&cfg, &lerr);
		if (lerr) {
			fprintf(stderr, "mqtls: out of memory for the connection limits\n");
			goto out;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "mqtls: libevent has no thread support\n");
		goto out;
	}

	/* Keys from the identity provider: fetched on a thread of its own;
	 * a short wait lets the first token logins find them. */
	if (!jwks_fetch_start(&cfg, &p.jwks, err, sizeof(err))) {
		fprintf(stderr, "mqtls: %s\n", err);
		goto out;
	}
	(void)jwks_fetch_wait_first(p.jwks, JWKS_STARTUP_WAIT_MS);

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
	/* Probes of brokers marked down take at most --upstream-timeout. */
	if (!brokers_start(p.brokers, cfg.upstream_timeout * 1000)) {
		fprintf(stderr, "mqtls: cannot start the broker health thread\n");
		goto stop;
	}
	brokers_describe(p.brokers, upstreams, sizeof(upstreams));
	for (int i = 0; i < config_n_listeners(&cfg); i++) {
		address_format((struct sockaddr *)&bound[i].sa, bound[i].len, addr, sizeof(addr));
		log_info("listening on %s%s, upstream %s, %ld workers", addr,
		         config_listener_is_ws(&cfg, i) ? " (WebSocket)" : "", upstreams, n_workers);
	}
	if (cfg.metrics && (http = http_start(cfg.metrics, &p, workers, (int)n_workers, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mqtls: %s\n", err);
		goto stop;
	}
	log_certificates(p.ssl_ctx, &cfg);
	if (cfg.ready_file && !write_ready_file(cfg.ready_file, bound, config_n_listeners(&cfg)))
		log_error("cannot write --ready-file %s: %s", cfg.ready_file, strerror(errno));
	/* After the ready file, which may share a directory with them. */
	watch_files(&p, &cfg);

	for (;;) {
		struct timespec idle = { TRIM_EVERY_S, 0 };

		sig = sigtimedwait(&sigs, NULL, &idle);
		if (sig < 0) {
			/* After a reconnect storm the allocator keeps what thousands
			 * of handshakes used; give the free part back now and then. */
			if (errno == EAGAIN)
				malloc_trim(0);
			continue;
		}
		if (sig == SIGHUP) {
			reload(&p);
			continue;
		}
		break;
	}
	drain(&p, &cfg, workers, n_workers, &sigs, sig);
	log_info("closing connections and exiting");
	rc = 0;
stop:
	http_stop(http);
	for (long i = 0; i < started; i++)
		worker_request_stop(&workers[i]);
	for (long i = 0; i < started; i++)
		worker_join(&workers[i]);
	/* Checks parked on a key fetch go back to the pool, and come home with
	 * the rest. */
	jwks_fetch_stop(p.jwks);
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
	jwks_fetch_free(p.jwks);
	faildelay_free(p.faildelay);
	limits_free(p.limits);
	auth_material_unref(p.auth);
	SSL_CTX_free(p.ssl_ctx);
	upstream_tls_cleanup(&p);
	watch_free(p.watch);
	brokers_free(p.brokers);    /* no worker is left to read it */
	/* Every thread that reads p.cfg has stopped. */
	proxy_free_configs(&p);
	config_cleanup(&cfg);
	pthread_mutex_destroy(&p.lock);
	return rc;
}
