/*
 * mqtls-bench's command line: one option table drives parsing and --help.
 */
#ifndef BENCH_OPTIONS_H
#define BENCH_OPTIONS_H

#include <stdint.h>

enum bench_scenario { SCENARIO_CONN, SCENARIO_IDLE, SCENARIO_PUB, SCENARIO_SUB, SCENARIO_PUBSUB };

/* The largest --payload accepted: bounds every client's buffers. */
#define BENCH_PAYLOAD_MAX (1024L * 1024)
/* The smallest pubsub payload: timestamp, pair index and sequence number. */
#define BENCH_STAMP_LEN 16

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
	const char *cert;         /* a file, or a directory of them (certdir.h) */
	const char *key;          /* a file, or a directory when cert is one */
	const char *jwt_key;      /* signing key: each client's password is a JWT */
	const char *jwt_alg;      /* NULL: from the key type */
	const char *jwt_claims;   /* claims template, %i = client index */
	long jwt_ttl;             /* seconds from now to exp */
	const char *jwt_kid;      /* NULL: no kid in the header */
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
	double duration;          /* idle/sub: seconds to hold everyone once connected; pub: upper bound */
	long keepalive;           /* seconds, sent in CONNECT; idle pings at this period */
	double timeout;           /* seconds allowed for each stage (TCP, TLS, CONNACK, PINGRESP) */
	const char *json;         /* file to write the JSON report to */
	const char *topic;        /* pub/sub: topic pattern, %i = client (pubsub: pair) index */
	long qos;                 /* pub/sub: 0, 1 or 2 */
	long payload;             /* pub: bytes per PUBLISH payload */
	long messages;            /* pub: messages per publisher; 0: until --duration ends */
	double msg_rate;          /* pub: messages per second per publisher; 0: unlimited */
	long inflight;            /* pub: unacknowledged QoS 1/2 messages per publisher */
	long window;              /* pubsub QoS 0: published, not yet received, per pair; 0: none */
	int tls_resume;           /* reuse a TLS session for later connections */
	int nagle;                /* leave Nagle's algorithm on, as many devices do */
	const char *source_ips;   /* "A-B": bind clients round-robin to these IPv4 addresses */
	uint32_t src_first, src_count; /* derived from source_ips, host byte order */
	int quiet;                /* no progress line */
	const char *ws;           /* MQTT over WebSockets at this path; NULL: MQTT directly */
};

/* "conn", "idle", "pub", "sub" or "pubsub". */
const char *bench_scenario_name(enum bench_scenario s);

/* Whether the scenario publishes or subscribes (pub, sub, pubsub). */
int bench_scenario_messages(enum bench_scenario s);

enum options_result { OPTIONS_OK, OPTIONS_EXIT_OK, OPTIONS_ERROR };

/*
 * Parses `mqtls-bench SCENARIO [options]` into |o|. Prints --help to stdout
 * (OPTIONS_EXIT_OK) or a one-line error to stderr (OPTIONS_ERROR).
 */
enum options_result bench_options_parse(struct bench_options *o, int argc, char **argv);

#endif
