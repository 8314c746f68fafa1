/*
 * mqtls-bench's report (report.h).
 */
#include "bench/report.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

struct named_histogram {
	const char *name;
	const struct histogram *h;
};

#define NHIST 9

static size_t histograms(const struct bench_stats *s, struct named_histogram out[NHIST])
{
	out[0] = (struct named_histogram){ "tcp_connect", s->tcp_connect };
	out[1] = (struct named_histogram){ "tls_handshake", s->tls_handshake };
	out[2] = (struct named_histogram){ "connack", s->connack };
	out[3] = (struct named_histogram){ "connect_total", s->total };
	out[4] = (struct named_histogram){ "ping", s->ping };
	out[5] = (struct named_histogram){ "subscribe", s->subscribe };
	out[6] = (struct named_histogram){ "publish_ack", s->pub_ack };
	out[7] = (struct named_histogram){ "end_to_end", s->e2e };
	out[8] = (struct named_histogram){ "ws_upgrade", s->ws_upgrade };
	return NHIST;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double per_second(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0.0;
}

/* pubsub: what the publishers queued and their subscribers never saw. */
static uint64_t lost(const struct bench_stats *s)
{
	return s->published > s->unique ? s->published - s->unique : 0;
}

static void print_messages(FILE *f, const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;
	const struct bench_options *o = r->opt;

	fprintf(f, "messages (QoS %ld, %ld-byte payload): %llu published, %llu acknowledged, "
	        "%llu received\n", o->qos, o->payload, (unsigned long long)s->published,
	        (unsigned long long)s->pub_acked, (unsigned long long)s->received);
	if (s->published + s->received > 0)
		fprintf(f, "bench CPU per message sent or received: %.2f us\n",
		        (r->cpu_user_s + r->cpu_sys_s) * 1e6 / (double)(s->published + s->received));
	if (r->publish_s > 0)
		fprintf(f, "publish rate: %.0f msg/s, %.2f MB/s of payload (over %.2f s, wall clock)\n",
		        per_second(s->published, r->publish_s),
		        per_second(s->pub_bytes, r->publish_s) / 1e6, r->publish_s);
	if (o->scenario == SCENARIO_PUBSUB)
		fprintf(f, "pubsub: %llu lost, %llu duplicates, %llu reordered, %llu foreign\n",
		        (unsigned long long)lost(s), (unsigned long long)s->duplicates,
		        (unsigned long long)s->reordered, (unsigned long long)s->foreign);
	if (s->sub_refused > 0)
		fprintf(f, "subscriptions refused: %llu\n", (unsigned long long)s->sub_refused);
}

void bench_report_print(FILE *f, const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;
	struct named_histogram hs[NHIST];
	struct histogram_summary sum;
	uint64_t connected = atomic_load(&s->connected);
	double cpu = r->cpu_user_s + r->cpu_sys_s;
	size_t i, n = histograms(s, hs);
	int e;

	if (r->interrupted)
		fprintf(f, "interrupted: figures cover the run until SIGINT\n");
	fprintf(f, "%s: %llu attempted, %llu connected, %llu failed in %.2f s\n",
	        bench_scenario_name(r->opt->scenario),
	        (unsigned long long)atomic_load(&s->started), (unsigned long long)connected,
	        (unsigned long long)atomic_load(&s->failed), r->elapsed_s);
	fprintf(f, "connects/s: %.1f (until the last CONNACK, %.2f s)\n",
	        per_second(connected, r->connect_s), r->connect_s);
	fprintf(f, "bench CPU: %.3f s user + %.3f s sys = %.1f us per connection\n",
	        r->cpu_user_s, r->cpu_sys_s,
	        connected ? cpu * 1e6 / (double)connected : 0.0);
	if (s->resumed > 0)
		fprintf(f, "TLS sessions resumed: %llu\n", (unsigned long long)s->resumed);
	if (bench_scenario_messages(r->opt->scenario))
		print_messages(f, r);
	if (s->jwt_minted > 0)
		fprintf(f, "JWTs minted: %llu, %.1f us each (before connect(), not in the latencies)\n",
		        (unsigned long long)s->jwt_minted, (double)s->jwt_mint_ns / 1e3 / (double)s->jwt_minted);
	if (s->pings > 0)
		fprintf(f, "pings answered: %llu\n", (unsigned long long)s->pings);
	for (e = 0; e < BERR_COUNT; e++)
		if (s->errors[e] > 0)
			fprintf(f, "error %-16s %llu\n", bench_error_name((enum bench_error)e),
			        (unsigned long long)s->errors[e]);
	for (e = 0; e < 256; e++)
		if (s->refused_by_code[e] > 0)
			fprintf(f, "  refused with CONNACK code %d (0x%02x): %llu\n", e, e,
			        (unsigned long long)s->refused_by_code[e]);
	fprintf(f, "%-14s %8s %9s %9s %9s %9s %9s %9s %9s  (ms)\n", "latency", "count",
	        "min", "mean", "p50", "p90", "p99", "p99.9", "max");
	for (i = 0; i < n; i++) {
		histogram_summarize(hs[i].h, &sum);
		if (sum.count == 0)
			continue;
		fprintf(f, "%-14s %8llu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", hs[i].name,
		        (unsigned long long)sum.count, ms(sum.min), sum.mean / 1e6, ms(sum.p50),
		        ms(sum.p90), ms(sum.p99), ms(sum.p999), ms(sum.max));
	}
}

static json_t *histogram_json(const struct histogram *h)
{
	struct histogram_summary s;

	histogram_summarize(h, &s);
	return json_pack("{s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I}",
	                 "count", (json_int_t)s.count, "min_ns", (json_int_t)s.min,
	                 "max_ns", (json_int_t)s.max, "mean_ns", s.mean,
	                 "p50_ns", (json_int_t)s.p50, "p90_ns", (json_int_t)s.p90,
	                 "p99_ns", (json_int_t)s.p99, "p999_ns", (json_int_t)s.p999,
	                 "clamped", (json_int_t)s.clamped);
}

/* The distribution at fixed percentiles, for plotting: [[pct, ns], ...]. */
static json_t *distribution_json(const struct histogram *h)
{
	static const double pcts[] = { 0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5,
	                               99, 99.5, 99.9, 99.95, 99.99, 100 };
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		json_array_append_new(a, json_pack("[f, I]", pcts[i],
		                                   (json_int_t)histogram_percentile(h, pcts[i])));
	return a;
}

static json_t *messages_json(const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;

	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o}",
	                 "published", (json_int_t)s->published, "acknowledged", (json_int_t)s->pub_acked,
	                 "published_bytes", (json_int_t)s->pub_bytes, "received", (json_int_t)s->received,
	                 "received_bytes", (json_int_t)s->recv_bytes, "lost", (json_int_t)lost(s),
	                 "duplicates", (json_int_t)s->duplicates, "reordered", (json_int_t)s->reordered,
	                 "foreign", (json_int_t)s->foreign, "subscribe_refused", (json_int_t)s->sub_refused,
	                 "publish_s", r->publish_s,
	                 "messages_per_s", per_second(s->published, r->publish_s),
	                 "end_to_end_distribution", distribution_json(s->e2e));
}

static json_t *options_json(const struct bench_options *o)
{
	/* The password is a secret: only whether one was given. */
	return json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:s, s:b, s:s?, s:b, s:b,"
	                 " s:b, s:f, s:b, s:f, s:I, s:f, s:s, s:I, s:I, s:I, s:f, s:I, s:b, s:s?, s:I, s:b}",
	                 "scenario", bench_scenario_name(o->scenario),
	                 "host", o->host, "port", (json_int_t)o->port,
	                 "count", (json_int_t)o->count, "rate", o->rate,
	                 "concurrency", (json_int_t)o->concurrency,
	                 "threads", (json_int_t)o->threads, "mqtt", o->mqtt,
	                 "tls", o->tls, "tls_version", o->tls_version,
	                 "client_cert", o->cert != NULL, "username", o->username != NULL,
	                 "password", o->password != NULL, "hold_s", o->hold,
	                 "churn", o->churn, "duration_s", o->duration,
	                 "keepalive_s", (json_int_t)o->keepalive, "timeout_s", o->timeout,
	                 "topic", o->topic, "qos", (json_int_t)o->qos, "payload", (json_int_t)o->payload,
	                 "messages", (json_int_t)o->messages, "msg_rate", o->msg_rate,
	                 "inflight", (json_int_t)o->inflight, "tls_resume", o->tls_resume,
	                 "sni", o->sni, "window", (json_int_t)o->window, "nagle", o->nagle);
}

int bench_report_write_json(const char *path, const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;
	struct named_histogram hs[NHIST];
	json_t *root, *lat, *errs, *refused;
	size_t i, n = histograms(s, hs);
	char code[12];
	int e, ok;

	root = json_object();
	lat = json_object();
	errs = json_object();
	refused = json_object();
	for (i = 0; i < n; i++)
		json_object_set_new(lat, hs[i].name, histogram_json(hs[i].h));
	for (e = 0; e < BERR_COUNT; e++)
		json_object_set_new(errs, bench_error_name((enum bench_error)e),
		                    json_integer((json_int_t)s->errors[e]));
	for (e = 0; e < 256; e++) {
		if (s->refused_by_code[e] == 0)
			continue;
		snprintf(code, sizeof(code), "%d", e);
		json_object_set_new(refused, code, json_integer((json_int_t)s->refused_by_code[e]));
	}
	json_object_set_new(errs, "connack_codes", refused);
	json_object_set_new(root, "options", options_json(r->opt));
	json_object_set_new(root, "attempted", json_integer((json_int_t)atomic_load(&s->started)));
	json_object_set_new(root, "connected", json_integer((json_int_t)atomic_load(&s->connected)));
	json_object_set_new(root, "failed", json_integer((json_int_t)atomic_load(&s->failed)));
	json_object_set_new(root, "pings", json_integer((json_int_t)s->pings));
	json_object_set_new(root, "tls_resumed", json_integer((json_int_t)s->resumed));
	json_object_set_new(root, "jwt_minted", json_integer((json_int_t)s->jwt_minted));
	json_object_set_new(root, "jwt_mint_ns_mean", json_real(s->jwt_minted > 0 ?
	                    (double)s->jwt_mint_ns / (double)s->jwt_minted : 0.0));
	json_object_set_new(root, "interrupted", json_boolean(r->interrupted));
	if (bench_scenario_messages(r->opt->scenario))
		json_object_set_new(root, "messages", messages_json(r));
	json_object_set_new(root, "elapsed_s", json_real(r->elapsed_s));
	json_object_set_new(root, "connect_phase_s", json_real(r->connect_s));
	json_object_set_new(root, "connects_per_s",
	                    json_real(per_second(atomic_load(&s->connected), r->connect_s)));
	json_object_set_new(root, "bench_cpu_user_s", json_real(r->cpu_user_s));
	json_object_set_new(root, "bench_cpu_sys_s", json_real(r->cpu_sys_s));
	json_object_set_new(root, "errors", errs);
	json_object_set_new(root, "latency", lat);
	ok = json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0;
	if (!ok)
		fprintf(stderr, "mqtls-bench: cannot write %s: %s\n", path, strerror(errno));
	json_decref(root);
	return ok;
}
