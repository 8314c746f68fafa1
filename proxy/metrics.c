/*
 * The Prometheus text exposition (version 0.0.4) of what the workers count.
 * Runs on the HTTP thread; reads the workers' counters without stopping
 * them (metrics.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "proxy/auth/jwks_fetch.h"
#include "proxy/auth/policy.h"
#include "proxy/brokers.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "tls/resume.h"
#include "tls/sni.h"

/* Bucket bounds in microseconds; the text prints them in seconds. */
static const uint64_t bucket_us[HIST_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

static const char *const close_reasons[CLOSE_REASONS] = {
	"other", "client_closed", "client_error", "broker_closed", "broker_error", "broker_unreachable",
	"broker_timeout", "handshake_failed", "hello_timeout", "handshake_timeout", "handshake_evicted",
	"connect_timeout", "not_connect", "malformed_connect", "bad_protocol", "bad_client_id",
	"connect_too_large", "bad_credentials", "not_authorized", "bad_auth_method", "bad_identity",
	"server_busy", "auth_timeout", "token_expired", "shutdown", "out_of_memory", "conn_per_ip",
	"conn_rate_per_ip", "max_connections", "identity_limit", "proxy_header_invalid",
	"proxy_header_timeout", "handshakes_per_ip",
	"ws_bad_path", "ws_bad_request", "ws_bad_version", "ws_header_too_large", "ws_upgrade_timeout",
	"ws_closed", "ws_protocol_error", "ws_text_frame", "ws_frame_too_big",
	"jwks_unavailable", "broker_tls", "acl_denied", "protocol_error",
};

static const char *const ws_upgrade_results[WSU_COUNT] = { "ok", "bad_path", "bad_request",
	                                                       "bad_version", "too_large", "timeout",
	                                                       "aborted" };
static const char *const tls_versions[TLSV_COUNT] = { "1.2", "1.3", "none" };
static const char *const hs_results[HS_RESULT_COUNT] = { "ok", "verify_failed", "failed", "timeout",
	                                                  "evicted" };
static const char *const mqtt_versions[MQTTV_COUNT] = { "3.1", "3.1.1", "5.0" };
static const char *const byte_dirs[BYTES_DIR_COUNT] = { "client_to_broker", "broker_to_client" };
static const char *const broker_errors[BROKER_ERROR_COUNT] = { "unreachable", "timeout", "tls" };
static const char *const refusals[REFUSED_COUNT] = { "handshakes_per_ip", "conn_per_ip",
	                                          "conn_rate_per_ip", "max_connections" };
static const char *const auth_results[AUTHR_COUNT] = { "ok", "bad_credentials", "not_authorized",
	                                                "bad_auth_method", "bad_identity", "busy",
	                                                "identity_limit", "unavailable" };

static counter_t reloads[2];       /* [0] failed, [1] ok */

void metrics_reload_result(int ok)
{
	atomic_fetch_add_explicit(&reloads[ok ? 1 : 0], 1, memory_order_relaxed);
}

void histogram_observe(struct histogram *h, uint64_t us)
{
	size_t i = 0;

	while (i < HIST_BUCKETS && us > bucket_us[i])
		i++;
	counter_add(&h->bucket[i], 1);
	counter_add(&h->count, 1);
	counter_add(&h->sum_us, us);
}

size_t metrics_close_reason(const char *reason)
{
	for (size_t i = 1; reason && i < CLOSE_REASONS && close_reasons[i]; i++) {
		if (strcmp(reason, close_reasons[i]) == 0)
			return i;
	}
	return 0;
}

/* The sum over workers of the counter at byte offset |off| in struct metrics. */
static uint64_t sum(struct worker *const *w, int n, size_t off)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		total += counter_get((const counter_t *)((const char *)&w[i]->metrics + off));
	return total;
}

#define SUM(field) sum(w, n, offsetof(struct metrics, field))

static void head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct evbuffer *o, const char *name, const char *help, struct worker *const *w,
                      int n, size_t off)
{
	uint64_t cum = 0;

	head(o, name, "histogram", help);
	for (size_t b = 0; b <= HIST_BUCKETS; b++) {
		cum += sum(w, n, off + offsetof(struct histogram, bucket) + b * sizeof(counter_t));
		if (b < HIST_BUCKETS)
			evbuffer_add_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[b] / 1e6,
			                    (unsigned long long)cum);
		else
			evbuffer_add_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	evbuffer_add_printf(o, "%s_sum %.6f\n%s_count %llu\n", name,
	                    (double)sum(w, n, off + offsetof(struct histogram, sum_us)) / 1e6, name,
	                    (unsigned long long)sum(w, n, off + offsetof(struct histogram, count)));
}

/* A label value: quotes, backslashes and newlines escaped as the format asks. */
static void label_value(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	for (; *in && o + 3 < cap; in++) {
		if (*in == '"' || *in == '\\') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static void certificate(struct evbuffer *o, const char *file, X509 *x)
{
	char subject[256], file_l[512], subject_l[600];
	int days = 0, secs = 0;
	time_t now = time(NULL);

	if (x == NULL || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
		return;
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	label_value(file_l, sizeof(file_l), file ? file : "");
	label_value(subject_l, sizeof(subject_l), subject);
	evbuffer_add_printf(o, "mqtls_certificate_expiry_timestamp_seconds{file=\"%s\",subject=\"%s\"} %lld\n",
	                    file_l, subject_l, (long long)now + (long long)days * 86400 + secs);
}

static void process(struct evbuffer *o, struct proxy *p)
{
	struct rlimit rl;
	long fds = 0;
	DIR *d = opendir("/proc/self/fd");
	SSL_CTX *ctx;

	if (d) {
		while (readdir(d))
			fds++;
		closedir(d);
		fds -= 3;    /* ".", ".." and the directory's own descriptor */
	}
	head(o, "process_open_fds", "gauge", "Open file descriptors.");
	evbuffer_add_printf(o, "process_open_fds %ld\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		head(o, "process_max_fds", "gauge", "Limit of open file descriptors.");
		evbuffer_add_printf(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	head(o, "mqtls_reloads_total", "counter", "Configuration reloads by result.");
	evbuffer_add_printf(o, "mqtls_reloads_total{result=\"ok\"} %llu\nmqtls_reloads_total{result=\"failed\"} %llu\n",
	                    (unsigned long long)counter_get(&reloads[1]),
	                    (unsigned long long)counter_get(&reloads[0]));
	head(o, "mqtls_certificate_expiry_timestamp_seconds", "gauge",
	     "notAfter of each certificate mqtls serves, Unix seconds.");
	ctx = proxy_get_ssl_ctx(p);
	if (ctx) {
		/* Every --cert pair, each labelled with its file. */
		for (size_t k = 0; k < tls_server_ctx_pairs(ctx); k++) {
			const char *file;
			SSL_CTX *pair = tls_server_ctx_pair(ctx, k, &file);
			STACK_OF(X509) *chain = NULL;

			if (file == NULL)
				file = p->cfg->cert[0];
			certificate(o, file, SSL_CTX_get0_certificate(pair));
			if (SSL_CTX_get0_chain_certs(pair, &chain) && chain) {
				for (size_t i = 0; i < sk_X509_num(chain); i++)
					certificate(o, file, sk_X509_value(chain, i));
			}
		}
		SSL_CTX_free(ctx);
	}
	jwks_fetch_metrics(o, p->jwks);
}

/* Per --upstream broker (a label set the operator wrote, so bounded). */
static void brokers(struct evbuffer *o, const struct brokers *b)
{
	char spec[600];

	if (b == NULL)
		return;
	head(o, "mqtls_broker_up", "gauge",
	     "1 while the broker is taken as up, 0 while it is marked down and probed, by --upstream.");
	for (int i = 0; i < brokers_count(b); i++) {
		label_value(spec, sizeof(spec), brokers_spec(b, i));
		evbuffer_add_printf(o, "mqtls_broker_up{upstream=\"%s\"} %d\n", spec, brokers_is_up(b, i));
	}
	head(o, "mqtls_broker_connect_failures_total", "counter",
	     "Connects to the broker that failed or timed out (clients' and health probes'), by --upstream.");
	for (int i = 0; i < brokers_count(b); i++) {
		label_value(spec, sizeof(spec), brokers_spec(b, i));
		evbuffer_add_printf(o, "mqtls_broker_connect_failures_total{upstream=\"%s\"} %llu\n", spec,
		                    (unsigned long long)brokers_failures(b, i));
	}
}

void metrics_render(struct evbuffer *o, struct proxy *p, struct worker *const *w, int n)
{
	const struct config *c = p->cfg;

	head(o, "mqtls_connections_active", "gauge", "Client connections open, by listener.");
	/* A WebSocket listener is labelled wss://ADDR:PORT: its series stay
	 * apart from a TLS listener's on the same spec (port 0 in tests). */
	for (int l = 0; l < config_n_listeners(c); l++)
		evbuffer_add_printf(o, "mqtls_connections_active{listener=\"%s%s\"} %llu\n",
		                    config_listener_is_ws(c, l) ? "wss://" : "", config_listener(c, l),
		                    (unsigned long long)SUM(connections_active[l]));
	head(o, "mqtls_connections_total", "counter", "Client connections accepted, by listener.");
	for (int l = 0; l < config_n_listeners(c); l++)
		evbuffer_add_printf(o, "mqtls_connections_total{listener=\"%s%s\"} %llu\n",
		                    config_listener_is_ws(c, l) ? "wss://" : "", config_listener(c, l),
		                    (unsigned long long)SUM(connections_total[l]));
	if (c->n_ws_listen > 0) {
		head(o, "mqtls_ws_upgrades_total", "counter",
		     "WebSocket upgrade requests on --ws-listen, by outcome (all but ok are answered 4xx or closed before the broker).");
		for (int r = 0; r < WSU_COUNT; r++)
			evbuffer_add_printf(o, "mqtls_ws_upgrades_total{result=\"%s\"} %llu\n", ws_upgrade_results[r],
			                    (unsigned long long)SUM(ws_upgrades[r]));
	}
	head(o, "mqtls_acl_decisions_total", "counter",
	     "ACL decisions on client PUBLISH topics and SUBSCRIBE filters (one per filter).");
	for (int k = 0; k < ACLP_COUNT; k++)
		for (int r = 0; r < 2; r++)
			evbuffer_add_printf(o, "mqtls_acl_decisions_total{packet=\"%s\",result=\"%s\"} %llu\n",
			                    k == ACLP_PUBLISH ? "publish" : "subscribe", r ? "denied" : "allowed",
			                    (unsigned long long)SUM(acl_decisions[k][r]));
	head(o, "mqtls_acl_ack_untracked_total", "counter",
	     "Allowed QoS 1/2 PUBLISHes sent up while the ACL already awaited 64 broker acks: an answer of mqtls's may overtake the broker's ack for them.");
	evbuffer_add_printf(o, "mqtls_acl_ack_untracked_total %llu\n", (unsigned long long)SUM(acl_ack_untracked));
	head(o, "mqtls_connections_refused_total", "counter",
	     "Connections over a limit at accept: handshakes_per_ip is closed before TLS, the others get a CONNACK refusal.");
	for (int r = 0; r < REFUSED_COUNT; r++)
		evbuffer_add_printf(o, "mqtls_connections_refused_total{reason=\"%s\"} %llu\n", refusals[r],
		                    (unsigned long long)SUM(accept_refused[r]));
	head(o, "mqtls_handshakes_total", "counter", "TLS handshakes by version and result.");
	for (int v = 0; v < TLSV_COUNT; v++) {
		for (int r = 0; r < HS_RESULT_COUNT; r++) {
			if ((v == TLSV_NONE) == (r == HS_OK))
				continue;   /* a successful handshake has a version; a failed one none */
			evbuffer_add_printf(o, "mqtls_handshakes_total{version=\"%s\",result=\"%s\"} %llu\n",
			                    tls_versions[v], hs_results[r], (unsigned long long)SUM(handshakes[v][r]));
		}
	}
	head(o, "mqtls_handshakes_resumed_total", "counter", "TLS handshakes that resumed a session.");
	evbuffer_add_printf(o, "mqtls_handshakes_resumed_total %llu\n", (unsigned long long)SUM(handshakes_resumed));
	head(o, "mqtls_resumptions_refused_total", "counter",
	     "Session tickets of client-certificate sessions turned down (a full handshake follows), by reason.");
	for (int r = 1; r < RESUME_REFUSAL_LABELS; r++)
		evbuffer_add_printf(o, "mqtls_resumptions_refused_total{reason=\"%s\"} %llu\n",
		                    tls_resume_refusal_name((unsigned)r), (unsigned long long)SUM(resume_refused[r]));
	histogram(o, "mqtls_handshake_duration_seconds", "Time from accept to a completed TLS handshake.", w, n,
	          offsetof(struct metrics, handshake_seconds));
	histogram(o, "mqtls_connack_duration_seconds", "Time from TCP accept to the CONNACK reaching the client.",
	          w, n, offsetof(struct metrics, connack_seconds));
	head(o, "mqtls_mqtt_connects_total", "counter", "CONNECT packets parsed, by protocol version.");
	for (int v = 0; v < MQTTV_COUNT; v++)
		evbuffer_add_printf(o, "mqtls_mqtt_connects_total{version=\"%s\"} %llu\n", mqtt_versions[v],
		                    (unsigned long long)SUM(mqtt_connects[v]));
	head(o, "mqtls_auth_total", "counter", "Authentication decisions by method and result.");
	for (int m = 0; m < AUTH_METHOD_LABELS; m++) {
		for (int r = 0; r < AUTHR_COUNT; r++)
			evbuffer_add_printf(o, "mqtls_auth_total{method=\"%s\",result=\"%s\"} %llu\n",
			                    auth_method_name((enum auth_method)m), auth_results[r],
			                    (unsigned long long)SUM(auth[m][r]));
	}
	head(o, "mqtls_connack_sent_total", "counter", "CONNACK refusals mqtls sent itself, by code.");
	for (int code = 0; code < CONNACK_CODES; code++) {
		uint64_t v = SUM(connack[code]);

		if (v > 0)
			evbuffer_add_printf(o, "mqtls_connack_sent_total{code=\"%d\"} %llu\n", code, (unsigned long long)v);
	}
	head(o, "mqtls_closed_total", "counter", "Connections ended, by reason.");
	for (int r = 0; r < CLOSE_REASONS && close_reasons[r]; r++)
		evbuffer_add_printf(o, "mqtls_closed_total{reason=\"%s\"} %llu\n", close_reasons[r],
		                    (unsigned long long)SUM(closed[r]));
	head(o, "mqtls_bytes_total", "counter", "Plaintext MQTT bytes forwarded, by direction.");
	for (int d = 0; d < BYTES_DIR_COUNT; d++)
		evbuffer_add_printf(o, "mqtls_bytes_total{direction=\"%s\"} %llu\n", byte_dirs[d],
		                    (unsigned long long)SUM(bytes[d]));
	head(o, "mqtls_broker_connect_errors_total", "counter", "Failed connections to the broker, by reason.");
	for (int e = 0; e < BROKER_ERROR_COUNT; e++)
		evbuffer_add_printf(o, "mqtls_broker_connect_errors_total{reason=\"%s\"} %llu\n", broker_errors[e],
		                    (unsigned long long)SUM(broker_errors[e]));
	brokers(o, p->brokers);
	head(o, "mqtls_auth_queue_depth", "gauge", "Slow authentication checks queued or running.");
	evbuffer_add_printf(o, "mqtls_auth_queue_depth %llu\n", (unsigned long long)SUM(auth_queue));
	process(o, p);
}
