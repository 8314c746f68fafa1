/*
 * mqtls-bench's command line: one option table drives parsing and --help.
 */
#ifndef BENCH_OPTIONS_H
#define BENCH_OPTIONS_H

#include <stdint.h>

enum bench_scenario { SCENARIO_CONN, SCENARIO_IDLE };

/* Strings point into argv (or are static defaults); nothing is owned. */
struct bench_options {
	enum bench_scenario scenario;
	const char *host;
	long port;                /* 0: 8883 with TLS, 1883 without */
	long count;               /* connections to open */
	double rate;              /* new connections per second; 0: as fast as allowed */
	long concurrency;         /* connection attempts in flight at once, all threads */
	long threads;
	const char *cafile;
	const char *cert;
	const char *key;
	const char *sni;
	const char *username;     /* NULL: absent */
	const char *password;     /* NULL: absent; never printed */
	const char *client_id;    /* prefix; the client index is appended */
	const char *mqtt;         /* "3.1.1" or "5" */
	uint8_t mqtt_version;     /* derived: 4 or 5 */
	int tls;
	int no_tls;
	const char *tls_version;  /* "1.2", "1.3" or NULL for either */
	double hold;              /* conn: seconds to stay connected after CONNACK */
	int churn;                /* conn: disconnect right after CONNACK */
	double duration;          /* idle: seconds to hold everyone once connected */
	long keepalive;           /* seconds, sent in CONNECT; idle pings at this period */
	double timeout;           /* seconds allowed for each stage (TCP, TLS, CONNACK, PINGRESP) */
	const char *json;         /* file to write the JSON report to */
	int quiet;                /* no progress line */
};

enum options_result { OPTIONS_OK, OPTIONS_EXIT_OK, OPTIONS_ERROR };

/*
 * Parses `mqtls-bench SCENARIO [options]` into |o|. Prints --help to stdout
 * (OPTIONS_EXIT_OK) or a one-line error to stderr (OPTIONS_ERROR).
 */
enum options_result bench_options_parse(struct bench_options *o, int argc, char **argv);

#endif
