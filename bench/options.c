/*
 * Command line of mqtls-bench (options.h). The table below is the single
 * list of options: parsing, range checks and --help all read it.
 */
#include "bench/options.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_LONG, OPT_DOUBLE, OPT_FLAG };

struct opt_def {
	const char *name;        /* long name, without the dashes */
	char short_name;         /* 0 if none */
	enum opt_type type;
	size_t offset;           /* into struct bench_options */
	double min, max;         /* for numbers */
	const char *def;         /* default, as it would be typed; NULL: unset */
	const char *help;
};

#define OFF(f) offsetof(struct bench_options, f)

static const struct opt_def table[] = {
	{ "host", 0, OPT_STR, OFF(host), 0, 0, "127.0.0.1", "address to connect to (IPv4 or IPv6 literal)" },
	{ "port", 0, OPT_LONG, OFF(port), 0, 65535, "0", "port; 0 means 8883 with TLS, 1883 without" },
	{ "count", 'c', OPT_LONG, OFF(count), 1, 1000000, "100", "connections to open" },
	{ "rate", 'r', OPT_DOUBLE, OFF(rate), 0, 1e7, "0", "new connections per second over all threads; 0: unlimited" },
	{ "concurrency", 0, OPT_LONG, OFF(concurrency), 1, 1000000, "200", "connection attempts in flight at once" },
	{ "threads", 't', OPT_LONG, OFF(threads), 1, 256, "1", "event loop threads" },
	{ "cafile", 0, OPT_STR, OFF(cafile), 0, 0, NULL, "verify the server against these CA certificates (PEM)" },
	{ "cert", 0, OPT_STR, OFF(cert), 0, 0, NULL, "client certificate chain (PEM)" },
	{ "key", 0, OPT_STR, OFF(key), 0, 0, NULL, "client private key (PEM)" },
	{ "sni", 0, OPT_STR, OFF(sni), 0, 0, NULL, "server name to send, and to verify with --cafile" },
	{ "username", 'u', OPT_STR, OFF(username), 0, 0, NULL, "MQTT user name" },
	{ "password", 'P', OPT_STR, OFF(password), 0, 0, NULL, "MQTT password" },
	{ "client-id", 'i', OPT_STR, OFF(client_id), 0, 0, "bench-", "client id prefix; the client index is appended" },
	{ "mqtt", 0, OPT_STR, OFF(mqtt), 0, 0, "3.1.1", "protocol version: 3.1.1 or 5" },
	{ "tls", 0, OPT_FLAG, OFF(tls), 0, 0, NULL, "use TLS (the default)" },
	{ "no-tls", 0, OPT_FLAG, OFF(no_tls), 0, 0, NULL, "plain TCP" },
	{ "tls-version", 0, OPT_STR, OFF(tls_version), 0, 0, NULL, "force TLS 1.2 or 1.3" },
	{ "hold", 0, OPT_DOUBLE, OFF(hold), 0, 86400, "0", "conn: seconds to stay connected after CONNACK; 0: until all are in" },
	{ "churn", 0, OPT_FLAG, OFF(churn), 0, 0, NULL, "conn: disconnect right after CONNACK" },
	{ "duration", 'd', OPT_DOUBLE, OFF(duration), 0, 86400, "10", "idle: seconds to hold the clients once all are connected" },
	{ "keepalive", 'k', OPT_LONG, OFF(keepalive), 0, 65535, "60", "keepalive in CONNECT, seconds; idle sends PINGREQ at this period" },
	{ "timeout", 0, OPT_DOUBLE, OFF(timeout), 0.001, 3600, "10", "seconds allowed per stage (TCP, TLS, CONNACK, PINGRESP)" },
	{ "json", 0, OPT_STR, OFF(json), 0, 0, NULL, "also write every figure as JSON to this file" },
	{ "quiet", 'q', OPT_FLAG, OFF(quiet), 0, 0, NULL, "no live progress line" },
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mqtls-bench conn|idle [options]\n"
	           "  conn  connect storm: TCP, TLS, CONNECT/CONNACK latencies\n"
	           "  idle  hold --count clients with keepalive pings for --duration\n\n");
	for (i = 0; i < TABLE_LEN; i++) {
		const struct opt_def *d = &table[i];
		char names[48];

		if (d->short_name)
			snprintf(names, sizeof(names), "-%c, --%s", d->short_name, d->name);
		else
			snprintf(names, sizeof(names), "    --%s", d->name);
		fprintf(f, "  %-20s %s%s%s%s\n", names, d->help, d->def ? " [" : "",
		        d->def ? d->def : "", d->def ? "]" : "");
	}
}

static int set_value(struct bench_options *o, const struct opt_def *d, const char *arg)
{
	char *field = (char *)o + d->offset;
	char *end;
	double v;

	switch (d->type) {
	case OPT_STR:
		*(const char **)field = arg;
		return 1;
	case OPT_FLAG:
		*(int *)field = 1;
		return 1;
	case OPT_LONG:
	case OPT_DOUBLE:
		errno = 0;
		v = strtod(arg, &end);
		if (errno || end == arg || *end != '\0' || !isfinite(v) || v < d->min || v > d->max)
			goto err;
		if (d->type == OPT_DOUBLE) {
			*(double *)field = v;
			return 1;
		}
		if (v != floor(v))
			goto err;
		*(long *)field = (long)v;
		return 1;
	}
err:
	fprintf(stderr, "mqtls-bench: --%s: '%s' is not a number in [%g, %g]\n",
	        d->name, arg, d->min, d->max);
	return 0;
}

static const struct opt_def *find(const char *arg)
{
	size_t i;

	for (i = 0; i < TABLE_LEN; i++) {
		if (arg[0] == '-' && arg[1] == '-' && strcmp(arg + 2, table[i].name) == 0)
			return &table[i];
		if (arg[0] == '-' && arg[1] == table[i].short_name && arg[1] && arg[2] == '\0')
			return &table[i];
	}
	return NULL;
}

/* Cross-option rules and derived fields, once every option is read. */
static int finish(struct bench_options *o)
{
	if (o->tls && o->no_tls) {
		fprintf(stderr, "mqtls-bench: --tls and --no-tls exclude each other\n");
		return 0;
	}
	o->tls = !o->no_tls;
	if (o->port == 0)
		o->port = o->tls ? 8883 : 1883;
	if (strcmp(o->mqtt, "3.1.1") == 0) {
		o->mqtt_version = 4;
	} else if (strcmp(o->mqtt, "5") == 0 || strcmp(o->mqtt, "5.0") == 0) {
		o->mqtt_version = 5;
	} else {
		fprintf(stderr, "mqtls-bench: --mqtt must be 3.1.1 or 5\n");
		return 0;
	}
	if (o->tls_version != NULL && strcmp(o->tls_version, "1.2") != 0 &&
	    strcmp(o->tls_version, "1.3") != 0) {
		fprintf(stderr, "mqtls-bench: --tls-version must be 1.2 or 1.3\n");
		return 0;
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		fprintf(stderr, "mqtls-bench: --cert and --key go together\n");
		return 0;
	}
	if (o->churn && o->hold > 0) {
		fprintf(stderr, "mqtls-bench: --churn and --hold exclude each other\n");
		return 0;
	}
	if (o->mqtt_version == 4 && o->password != NULL && o->username == NULL) {
		fprintf(stderr, "mqtls-bench: MQTT 3.1.1 needs -u with -P\n");
		return 0;
	}
	if (o->scenario == SCENARIO_IDLE && o->keepalive == 0) {
		fprintf(stderr, "mqtls-bench: idle needs a keepalive above 0\n");
		return 0;
	}
	return 1;
}

enum options_result bench_options_parse(struct bench_options *o, int argc, char **argv)
{
	const struct opt_def *d;
	size_t i;
	int a;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < TABLE_LEN; i++)
		if (table[i].def != NULL && !set_value(o, &table[i], table[i].def))
			return OPTIONS_ERROR;
	if (argc < 2) {
		usage(stderr);
		return OPTIONS_ERROR;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return OPTIONS_EXIT_OK;
	}
	if (strcmp(argv[1], "conn") == 0) {
		o->scenario = SCENARIO_CONN;
	} else if (strcmp(argv[1], "idle") == 0) {
		o->scenario = SCENARIO_IDLE;
	} else {
		fprintf(stderr, "mqtls-bench: unknown scenario '%s' (conn, idle)\n", argv[1]);
		return OPTIONS_ERROR;
	}
	for (a = 2; a < argc; a++) {
		if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			usage(stdout);
			return OPTIONS_EXIT_OK;
		}
		d = find(argv[a]);
		if (d == NULL) {
			fprintf(stderr, "mqtls-bench: unknown option '%s'\n", argv[a]);
			return OPTIONS_ERROR;
		}
		if (d->type == OPT_FLAG) {
			set_value(o, d, "1");
			continue;
		}
		if (a + 1 >= argc) {
			fprintf(stderr, "mqtls-bench: --%s needs a value\n", d->name);
			return OPTIONS_ERROR;
		}
		if (!set_value(o, d, argv[++a]))
			return OPTIONS_ERROR;
	}
	return finish(o) ? OPTIONS_OK : OPTIONS_ERROR;
}
