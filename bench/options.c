/*
 * Command line of mqtls-bench (options.h). The table below is the single
 * list of options: parsing, range checks and --help all read it.
 */
#include "bench/options.h"

#include "bench/certdir.h"

#include <arpa/inet.h>
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
	{ "cert", 0, OPT_STR, OFF(cert), 0, 0, NULL, "client certificate chain (PEM), or a directory: every NAME.pem, used round-robin" },
	{ "key", 0, OPT_STR, OFF(key), 0, 0, NULL, "client private key (PEM), or a directory: NAME.key, else NAME.pem, per certificate" },
	{ "sni", 0, OPT_STR, OFF(sni), 0, 0, NULL, "server name to send, and to verify with --cafile" },
	{ "username", 'u', OPT_STR, OFF(username), 0, 0, NULL, "MQTT user name" },
	{ "password", 'P', OPT_STR, OFF(password), 0, 0, NULL, "MQTT password" },
	{ "jwt-key", 0, OPT_STR, OFF(jwt_key), 0, 0, NULL, "mint a JWT per client as password: PEM private key (EC, Ed25519, RSA) or HMAC secret file" },
	{ "jwt-alg", 0, OPT_STR, OFF(jwt_alg), 0, 0, NULL, "JWS alg the key fits (HS384, RS512, ...); default from the key: HS256, ES256, EdDSA, RS256" },
	{ "jwt-claims", 0, OPT_STR, OFF(jwt_claims), 0, 0, "{\"sub\":\"bench-%i\"}", "JWT claims, a JSON object; %i becomes the client index" },
	{ "jwt-ttl", 0, OPT_LONG, OFF(jwt_ttl), 1, 1e9, "3600", "JWT exp = now + this many seconds, iat = now (unless in --jwt-claims)" },
	{ "jwt-kid", 0, OPT_STR, OFF(jwt_kid), 0, 0, NULL, "JWT header kid" },
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
	{ "topic", 0, OPT_STR, OFF(topic), 0, 0, "bench/%i", "pub/sub: topic; %i becomes the client index (pubsub: the pair index)" },
	{ "qos", 0, OPT_LONG, OFF(qos), 0, 2, "0", "pub/sub: QoS of PUBLISH and SUBSCRIBE" },
	{ "payload", 's', OPT_LONG, OFF(payload), 0, BENCH_PAYLOAD_MAX, "64", "pub: payload bytes (pubsub: at least 16)" },
	{ "messages", 'm', OPT_LONG, OFF(messages), 0, 100000000, "1000", "pub: messages per publisher; 0: publish until --duration ends" },
	{ "msg-rate", 0, OPT_DOUBLE, OFF(msg_rate), 0, 1e7, "0", "pub: messages per second per publisher; 0: unlimited" },
	{ "inflight", 0, OPT_LONG, OFF(inflight), 1, 1024, "32", "pub: unacknowledged QoS 1/2 messages per publisher" },
	{ "window", 0, OPT_LONG, OFF(window), 0, 1024, "0", "pubsub, QoS 0: messages published but not yet received per pair (pairs on one thread); 0: no limit" },
	{ "tls-resume", 0, OPT_FLAG, OFF(tls_resume), 0, 0, NULL, "resume TLS sessions (tickets) after each thread's first handshake" },
	{ "nagle", 0, OPT_FLAG, OFF(nagle), 0, 0, NULL, "leave Nagle's algorithm on (no TCP_NODELAY), like many embedded stacks and default sockets" },
	{ "source-ips", 0, OPT_STR, OFF(source_ips), 0, 0, NULL, "A-B: bind clients round-robin to IPv4 addresses A..B" },
	{ "ws", 0, OPT_STR, OFF(ws), 0, 0, NULL, "MQTT over WebSockets: upgrade to PATH (e.g. /mqtt) after TLS, subprotocol mqtt" },
	{ "json", 0, OPT_STR, OFF(json), 0, 0, NULL, "also write every figure as JSON to this file" },
	{ "quiet", 'q', OPT_FLAG, OFF(quiet), 0, 0, NULL, "no live progress line" },
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

const char *bench_scenario_name(enum bench_scenario s)
{
	static const char *const names[] = { "conn", "idle", "pub", "sub", "pubsub" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

int bench_scenario_messages(enum bench_scenario s)
{
	return s == SCENARIO_PUB || s == SCENARIO_SUB || s == SCENARIO_PUBSUB;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mqtls-bench conn|idle|pub|sub|pubsub [options]\n"
	           "  conn    connect storm: TCP, TLS, CONNECT/CONNACK latencies\n"
	           "  idle    hold --count clients with keepalive pings for --duration\n"
	           "  pub     --count publishers send --messages each to --topic\n"
	           "  sub     --count subscribers count what arrives on --topic for --duration\n"
	           "  pubsub  --count pairs of subscriber and publisher on topic %%i = pair;\n"
	           "          end-to-end latency, loss, duplicates and reordering\n"
	           "SIGINT ends the run early and still prints the summary.\n\n");
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

/* Reads "A-B" (or a single "A") of IPv4 addresses into src_first/src_count. */
static int parse_source_ips(struct bench_options *o)
{
	char lo[INET_ADDRSTRLEN], hi[INET_ADDRSTRLEN];
	const char *dash = strchr(o->source_ips, '-');
	struct in_addr a, b;
	size_t n = dash ? (size_t)(dash - o->source_ips) : strlen(o->source_ips);

	if (n >= sizeof(lo) || (dash && strlen(dash + 1) >= sizeof(hi)))
		goto err;
	memcpy(lo, o->source_ips, n);
	lo[n] = '\0';
	snprintf(hi, sizeof(hi), "%s", dash ? dash + 1 : lo);
	if (inet_pton(AF_INET, lo, &a) != 1 || inet_pton(AF_INET, hi, &b) != 1 ||
	    ntohl(b.s_addr) < ntohl(a.s_addr))
		goto err;
	o->src_first = ntohl(a.s_addr);
	o->src_count = ntohl(b.s_addr) - ntohl(a.s_addr) + 1;
	return 1;
err:
	fprintf(stderr, "mqtls-bench: --source-ips must be A-B with IPv4 addresses, A <= B\n");
	return 0;
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
	if (o->cert != NULL && bench_is_dir(o->cert) != bench_is_dir(o->key)) {
		fprintf(stderr, "mqtls-bench: --cert and --key must both be files or both directories\n");
		return 0;
	}
	if (o->cert != NULL && bench_is_dir(o->cert) && o->tls_resume) {
		fprintf(stderr, "mqtls-bench: --tls-resume does not work with a --cert directory\n");
		return 0;
	}
	if (o->jwt_key != NULL && o->password != NULL) {
		fprintf(stderr, "mqtls-bench: --jwt-key and -P exclude each other\n");
		return 0;
	}
	if (o->jwt_key != NULL && o->username == NULL)
		o->username = "token";
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
	if (o->scenario == SCENARIO_PUBSUB && o->payload < BENCH_STAMP_LEN) {
		fprintf(stderr, "mqtls-bench: pubsub needs --payload of at least %d\n", BENCH_STAMP_LEN);
		return 0;
	}
	if (o->scenario == SCENARIO_PUBSUB && strstr(o->topic, "%i") == NULL) {
		fprintf(stderr, "mqtls-bench: pubsub needs %%i in --topic (one topic per pair)\n");
		return 0;
	}
	if (strlen(o->topic) == 0 || strlen(o->topic) > 200) {
		fprintf(stderr, "mqtls-bench: --topic must have 1 to 200 characters\n");
		return 0;
	}
	if (o->ws != NULL && (o->ws[0] != '/' || strlen(o->ws) > 200 || strpbrk(o->ws, " \t\r\n") != NULL)) {
		fprintf(stderr, "mqtls-bench: --ws must be a path starting with / (at most 200 characters, no spaces)\n");
		return 0;
	}
	return o->source_ips == NULL || parse_source_ips(o);
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
	} else if (strcmp(argv[1], "pub") == 0) {
		o->scenario = SCENARIO_PUB;
	} else if (strcmp(argv[1], "sub") == 0) {
		o->scenario = SCENARIO_SUB;
	} else if (strcmp(argv[1], "pubsub") == 0) {
		o->scenario = SCENARIO_PUBSUB;
	} else {
		fprintf(stderr, "mqtls-bench: unknown scenario '%s' (conn, idle, pub, sub, pubsub)\n", argv[1]);
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
