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

static size_t histograms(const struct bench_stats *s, struct named_histogram out[5])
{
	out[0] = (struct named_histogram){ "tcp_connect", s->tcp_connect };
	out[1] = (struct named_histogram){ "tls_handshake", s->tls_handshake };
	out[2] = (struct named_histogram){ "connack", s->connack };
	out[3] = (struct named_histogram){ "connect_total", s->total };
	out[4] = (struct named_histogram){ "ping", s->ping };
	return 5;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double per_second(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0.0;
}

void bench_report_print(FILE *f, const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;
	struct named_histogram hs[5];
	struct histogram_summary sum;
	uint64_t connected = atomic_load(&s->connected);
	double cpu = r->cpu_user_s + r->cpu_sys_s;
	size_t i, n = histograms(s, hs);
	int e;

	fprintf(f, "%s: %llu attempted, %llu connected, %llu failed in %.2f s\n",
	        r->opt->scenario == SCENARIO_CONN ? "conn" : "idle",
	        (unsigned long long)atomic_load(&s->started), (unsigned long long)connected,
	        (unsigned long long)atomic_load(&s->failed), r->elapsed_s);
	fprintf(f, "connects/s: %.1f (until the last CONNACK, %.2f s)\n",
	        per_second(connected, r->connect_s), r->connect_s);
	fprintf(f, "bench CPU: %.3f s user + %.3f s sys = %.1f us per connection\n",
	        r->cpu_user_s, r->cpu_sys_s,
	        connected ? cpu * 1e6 / (double)connected : 0.0);
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

static json_t *options_json(const struct bench_options *o)
{
	/* The password is a secret: only whether one was given. */
	return json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:s, s:b, s:s?, s:b, s:b,"
	                 " s:b, s:f, s:b, s:f, s:I, s:f}",
	                 "scenario", o->scenario == SCENARIO_CONN ? "conn" : "idle",
	                 "host", o->host, "port", (json_int_t)o->port,
	                 "count", (json_int_t)o->count, "rate", o->rate,
	                 "concurrency", (json_int_t)o->concurrency,
	                 "threads", (json_int_t)o->threads, "mqtt", o->mqtt,
	                 "tls", o->tls, "tls_version", o->tls_version,
	                 "client_cert", o->cert != NULL, "username", o->username != NULL,
	                 "password", o->password != NULL, "hold_s", o->hold,
	                 "churn", o->churn, "duration_s", o->duration,
	                 "keepalive_s", (json_int_t)o->keepalive, "timeout_s", o->timeout);
}

int bench_report_write_json(const char *path, const struct bench_run *r)
{
	const struct bench_stats *s = r->stats;
	struct named_histogram hs[5];
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
