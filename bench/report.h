/*
 * The end-of-run report of mqtls-bench: a human summary and a JSON file
 * with every figure.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdio.h>

#include "bench/options.h"
#include "bench/stats.h"

struct bench_run {
	const struct bench_options *opt;  /* borrowed */
	const struct bench_stats *stats;  /* borrowed: every worker merged */
	double elapsed_s;                 /* wall clock, whole run */
	double connect_s;                 /* wall clock, start to the last CONNACK */
	double cpu_user_s, cpu_sys_s;     /* the bench's own CPU time */
	double publish_s;                 /* wall clock of the publishing phase (pub, pubsub) */
	int interrupted;                  /* SIGINT ended the run early */
};

/* Prints the summary: counts, rates, errors by kind, latency percentiles. */
void bench_report_print(FILE *f, const struct bench_run *r);

/* Writes the JSON report to |path|. Returns 0 (after printing one line to
 * stderr) if it cannot. The password is never written. */
int bench_report_write_json(const char *path, const struct bench_run *r);

#endif
