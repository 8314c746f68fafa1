#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/auth/jwks_fetch.h"
#include "proxy/config.h"
#include "proxy/log.h"

enum opt_type { OPT_STR, OPT_LIST, OPT_LONG, OPT_CHOICE, OPT_FLAG };

struct option_def {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;          /* default as text, NULL for none */
	long min, max;            /* OPT_LONG range */
	const char *choices;      /* OPT_CHOICE: '|'-separated */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

/* Each option is documented here, next to its parser entry; --help prints it. */
static const struct option_def options[] = {
	{ "listen", OPT_LIST, OFF(listen), "0.0.0.0:8883", 0, 0, NULL,
	  "ADDR:PORT to accept TLS on; repeat for more ([::]:8883 for IPv6, port 0 = any)" },
	{ "ws-listen", OPT_LIST, OFF(ws_listen), NULL, 0, 0, NULL,
	  "ADDR:PORT to accept MQTT over secure WebSockets (wss://) on; repeat for more [none]" },
	{ "ws-path", OPT_STR, OFF(ws_path), "/mqtt", 0, 0, NULL,
	  "the HTTP path WebSocket clients upgrade on (others get 404)" },
	{ "cert", OPT_LIST, OFF(cert), NULL, 0, 0, NULL,
	  "server certificate chain, PEM, leaf first (e.g. Let's Encrypt fullchain.pem); repeat with --key "
	  "for more names or an RSA and an ECDSA one: chosen by the client's SNI, the first is the default" },
	{ "key", OPT_LIST, OFF(key), NULL, 0, 0, NULL,
	  "server private key, PEM (PKCS#8, SEC1 or PKCS#1); the n-th --key belongs to the n-th --cert" },
	{ "upstream", OPT_LIST, OFF(upstream), NULL, 0, 0, NULL,
	  "the plain MQTT broker: HOST:PORT, [V6]:PORT or unix:/path; repeat for several (failover, "
	  "--upstream-balance); restart to change" },
	{ "upstream-balance", OPT_CHOICE, OFF(upstream_balance), "first", 0, 0, "first|clientid-hash",
	  "with several --upstream: first (the first one up, in order) or clientid-hash (a client id stays "
	  "on one broker); restart to change" },
	{ "resolve-interval", OPT_LONG, OFF(resolve_interval), "30", 0, 86400, NULL,
	  "seconds between resolutions of --upstream host names (off the event loops); 0 = at start only; "
	  "restart to change" },
	{ "client-ca", OPT_STR, OFF(client_ca), NULL, 0, 0, NULL,
	  "CA certificates (PEM) trusted for client certificates" },
	{ "client-cert", OPT_CHOICE, OFF(client_cert), "none", 0, 0, "none|optional|required",
	  "ask clients for a certificate: none, optional or required" },
	{ "crl", OPT_STR, OFF(crl), NULL, 0, 0, NULL,
	  "certificate revocation list(s), PEM, checked for client certificates" },
	{ "workers", OPT_LONG, OFF(workers), "0", 0, 256, NULL,
	  "event loop threads; 0 = one per core" },
	{ "handshake-timeout", OPT_LONG, OFF(handshake_timeout), "10", 1, 3600, NULL,
	  "seconds allowed for the TLS handshake" },
	{ "connect-timeout", OPT_LONG, OFF(connect_timeout), "10", 1, 3600, NULL,
	  "seconds allowed, after TLS, for the client's complete CONNECT" },
	{ "upstream-timeout", OPT_LONG, OFF(upstream_timeout), "5", 1, 3600, NULL,
	  "seconds allowed to connect to the broker (with several, to each one tried)" },
	{ "max-connect-size", OPT_LONG, OFF(max_connect_size), "65536", 64, 16777216, NULL,
	  "largest CONNECT packet accepted, bytes" },
	{ "max-buffer", OPT_LONG, OFF(max_buffer), "262144", 16384, 1073741824, NULL,
	  "bytes buffered per direction per connection before reading pauses" },
	{ "max-handshakes", OPT_LONG, OFF(max_handshakes), "512", 1, 1000000, NULL,
	  "concurrent TLS handshakes per worker; above it the oldest stalled one is dropped" },
	{ "hello-timeout", OPT_LONG, OFF(hello_timeout), "3", 1, 3600, NULL,
	  "seconds allowed from accept to a complete TLS ClientHello" },
	{ "max-handshakes-per-ip", OPT_LONG, OFF(max_handshakes_per_ip), "128", 0, 1000000, NULL,
	  "concurrent TLS handshakes per client address per worker; 0 = no cap" },
	{ "max-connections", OPT_LONG, OFF(max_connections), "100000", 1, 10000000, NULL,
	  "connections per worker; accepting pauses above it" },
	{ "log-level", OPT_CHOICE, OFF(log_level), "info", 0, 0, "error|warn|info|debug",
	  "error, warn, info (one line per connection) or debug" },
	{ "log-format", OPT_CHOICE, OFF(log_format), "text", 0, 0, "text|json",
	  "text (key=value) or json (one object per line), the same fields either way" },
	{ "metrics", OPT_STR, OFF(metrics), NULL, 0, 0, NULL,
	  "ADDR:PORT for /metrics (Prometheus), /healthz and /readyz over plain HTTP [off]" },
	{ "drain-timeout", OPT_LONG, OFF(drain_timeout), "30", 0, 3600, NULL,
	  "seconds live sessions may go on after SIGTERM before they are closed" },
	{ "ticket-keys", OPT_STR, OFF(ticket_keys), NULL, 0, 0, NULL,
	  "TLS session ticket keys shared by replicas (HAProxy tls-ticket-keys format; first line encrypts) [own keys]" },
	{ "accept-proxy", OPT_FLAG, OFF(accept_proxy), "off", 0, 0, NULL,
	  "every client connection starts with a PROXY protocol v1 or v2 header (behind a load balancer)" },
	{ "send-proxy-v2", OPT_FLAG, OFF(send_proxy_v2), "off", 0, 0, NULL,
	  "send the broker a PROXY v2 header with the client's address and TLS details" },
	{ "upstream-tls", OPT_FLAG, OFF(upstream_tls), "off", 0, 0, NULL,
	  "TLS to the broker, its certificate verified (chain to --upstream-ca, name or address checked)" },
	{ "upstream-ca", OPT_STR, OFF(upstream_ca), NULL, 0, 0, NULL,
	  "CA certificates (PEM) the broker's certificate must chain to [the system's, /etc/ssl/certs]" },
	{ "upstream-sni", OPT_STR, OFF(upstream_sni), NULL, 0, 0, NULL,
	  "name sent to the broker (SNI) and required in its certificate [--upstream's host name; an IP is checked against the IP SANs]" },
	{ "upstream-cert", OPT_STR, OFF(upstream_cert), NULL, 0, 0, NULL,
	  "client certificate chain (PEM) presented to the broker, with --upstream-key (mutual TLS)" },
	{ "upstream-key", OPT_STR, OFF(upstream_key), NULL, 0, 0, NULL,
	  "private key (PEM) of --upstream-cert" },
	{ "max-conn-per-ip", OPT_LONG, OFF(max_conn_per_ip), "0", 0, 10000000, NULL,
	  "connections per client address (all workers); 0 = no cap" },
	{ "conn-rate-per-ip", OPT_LONG, OFF(conn_rate_per_ip), "0", 0, 10000000, NULL,
	  "new connections per second per client address (all workers); 0 = no cap" },
	{ "max-conn-per-identity", OPT_LONG, OFF(max_conn_per_identity), "0", 0, 10000000, NULL,
	  "authenticated connections per identity (all workers); the newest is refused; 0 = no cap" },
	{ "ready-file", OPT_STR, OFF(ready_file), NULL, 0, 0, NULL,
	  "write the bound listen addresses here once accepting (for supervisors/tests)" },
	{ "config", OPT_STR, OFF(config_file), NULL, 0, 0, NULL,
	  "read options from FILE: `key value` per line, # comments; flags override it" },
	{ "users", OPT_STR, OFF(users), NULL, 0, 0, NULL,
	  "password file in mosquitto_passwd format ($7$, $6$, $argon2id$); enables password auth" },
	{ "auth", OPT_STR, OFF(auth), NULL, 0, 0, NULL,
	  "accepted methods in order of precedence, from cert,jwt,password [what is configured]" },
	{ "allow-anonymous", OPT_FLAG, OFF(allow_anonymous), "off", 0, 0, NULL,
	  "admit clients that use no configured method" },
	{ "identity-as-username", OPT_CHOICE, OFF(identity_as_username), NULL, 0, 0,
	  "cn|san-dns|san-email|san-uri", "client certificate field that names the user; enables cert auth" },
	{ "require-clientid-match", OPT_FLAG, OFF(require_clientid_match), "off", 0, 0, NULL,
	  "refuse a CONNECT whose client id is not the authenticated identity" },
	{ "jwt-keys", OPT_STR, OFF(jwt_keys), NULL, 0, 0, NULL,
	  "PEM public keys, a JWKS file or an HMAC secret file; enables JWT auth (token as password)" },
	{ "jwt-jwks-url", OPT_STR, OFF(jwt_jwks_url), NULL, 0, 0, NULL,
	  "https URL of the identity provider's JWK Set, fetched and refreshed while running; enables JWT auth" },
	{ "jwt-discovery", OPT_FLAG, OFF(jwt_discovery), "off", 0, 0, NULL,
	  "find the JWK Set URL in --jwt-issuer's /.well-known/openid-configuration (OpenID discovery)" },
	{ "jwt-jwks-ca", OPT_STR, OFF(jwt_jwks_ca), NULL, 0, 0, NULL,
	  "CA certificates (PEM) the identity provider's server is verified with [the system's]" },
	{ "jwt-jwks-refresh", OPT_STR, OFF(jwt_jwks_refresh), "300..3600", 0, 0, NULL,
	  "MIN..MAX seconds between key fetches; Cache-Control max-age is followed within them" },
	{ "jwt-issuer", OPT_STR, OFF(jwt_issuer), NULL, 0, 0, NULL, "required `iss` of tokens" },
	{ "jwt-audience", OPT_STR, OFF(jwt_audience), NULL, 0, 0, NULL, "required `aud` of tokens" },
	{ "jwt-username-claim", OPT_STR, OFF(jwt_username_claim), "sub", 0, 0, NULL,
	  "claim that names the user" },
	{ "jwt-leeway", OPT_LONG, OFF(jwt_leeway), "30", 0, 3600, NULL,
	  "seconds of clock skew allowed on exp, nbf and iat" },
	{ "jwt-require-exp", OPT_FLAG, OFF(jwt_require_exp), "on", 0, 0, NULL,
	  "refuse tokens without `exp`" },
	{ "jwt-expiry-disconnect", OPT_FLAG, OFF(jwt_expiry_disconnect), "on", 0, 0, NULL,
	  "end a token-authenticated connection when its token expires" },
	{ "upstream-username", OPT_STR, OFF(upstream_username), NULL, 0, 0, NULL,
	  "username sent to the broker instead of the client's identity (a service account)" },
	{ "upstream-password-file", OPT_STR, OFF(upstream_password_file), NULL, 0, 0, NULL,
	  "file whose contents are the password sent to the broker [none]" },
	{ "auth-threads", OPT_LONG, OFF(auth_threads), "2", 1, 64, NULL,
	  "threads for slow checks (password hashing, signatures) off the event loops" },
	{ "max-auth-queue", OPT_LONG, OFF(max_auth_queue), "64", 1, 100000, NULL,
	  "slow auth checks queued or running per worker; beyond it CONNACK server busy" },
	{ "max-auth-per-ip", OPT_LONG, OFF(max_auth_per_ip), "2", 0, 100000, NULL,
	  "password hashes at once per client address per worker; 0 = no cap" },
	{ "max-auth-per-user", OPT_LONG, OFF(max_auth_per_user), "8", 0, 100000, NULL,
	  "password hashes at once per user name per worker; 0 = no cap" },
	{ "acl-file", OPT_STR, OFF(acl_file), NULL, 0, 0, NULL,
	  "topic ACL in mosquitto's acl_file syntax, checked on every PUBLISH and SUBSCRIBE [none]" },
	{ "acl-deny", OPT_CHOICE, OFF(acl_deny), "drop", 0, 0, "drop|disconnect",
	  "what a denied PUBLISH/SUBSCRIBE costs: drop (answered 0x87/0x80) or disconnect" },
	{ "auth-fail-delay", OPT_LONG, OFF(auth_fail_delay), "100", 0, 60000, NULL,
	  "ms before refusing a failed login; doubles per recent failure from that address, to 5 s" },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const struct option_def *find_option(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
			return &options[i];
	}
	return NULL;
}

/* Where the loaders write their one-line error (no "mqtls: ", no newline);
 * config_load prints it, a reload logs it. */
struct errbuf {
	char *s;
	size_t len;
};

static int fail(struct errbuf *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the error and returns 0, so callers can `return fail(...)`. */
static int fail(struct errbuf *e, const char *fmt, ...)
{
	va_list ap;

	if (e->len == 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(e->s, e->len, fmt, ap);
	va_end(ap);
	return 0;
}

/* The words a flag accepts, on the command line and in a config file alike. */
static const struct {
	const char *word;
	long value;
} flag_words[] = {
	{ "on", 1 }, { "off", 0 }, { "true", 1 }, { "false", 0 },
	{ "yes", 1 }, { "no", 0 }, { "1", 1 }, { "0", 0 },
};

/* Sets *out to the value of flag word |s|; returns 1, or 0 if it is none. */
static int flag_word(const char *s, long *out)
{
	for (size_t k = 0; k < sizeof(flag_words) / sizeof(flag_words[0]); k++) {
		if (strcmp(s, flag_words[k].word) == 0) {
			*out = flag_words[k].value;
			return 1;
		}
	}
	return 0;
}

static int choice_ok(const char *choices, const char *value)
{
	size_t vlen = strlen(value);
	const char *p = choices;

	while (*p) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);

		if (n == vlen && memcmp(p, value, n) == 0)
			return 1;
		p += n + (bar ? 1 : 0);
	}
	return 0;
}

/* Every OPT_LIST option: its array of CONFIG_MAX_LIST strings (at the
 * option's offset) and where its int count is. */
static const struct {
	size_t items, count;
} list_options[] = {
	{ OFF(listen), OFF(n_listen) },
	{ OFF(upstream), OFF(n_upstream) },
	{ OFF(ws_listen), OFF(n_ws_listen) },
	{ OFF(cert), OFF(n_cert) },
	{ OFF(key), OFF(n_key) },
};

/* The array of an OPT_LIST option, and its count. */
static char **list_items(struct config *cfg, const struct option_def *o)
{
	return (char **)((char *)cfg + o->offset);
}

static size_t list_count_offset(const struct option_def *o)
{
	for (size_t i = 0; i < sizeof(list_options) / sizeof(list_options[0]); i++) {
		if (list_options[i].items == o->offset)
			return list_options[i].count;
	}
	abort();    /* an OPT_LIST option missing from list_options */
}

static int *list_count(struct config *cfg, const struct option_def *o)
{
	return (int *)((char *)cfg + list_count_offset(o));
}

/* |where| is "--name", "file:line" or "MQTLS_NAME" for the error message. */
static int set_option(struct config *cfg, const struct option_def *o, const char *value,
                      const char *where, struct errbuf *e)
{
	char *base = (char *)cfg;
	char *end;
	long v;

	switch (o->type) {
	case OPT_STR:
	case OPT_CHOICE: {
		char **slot = (char **)(base + o->offset);

		if (o->type == OPT_CHOICE && !choice_ok(o->choices, value))
			return fail(e, "%s: expected one of %s, got '%s'", where, o->choices, value);
		if (*value == '\0')
			return fail(e, "%s: value must not be empty", where);
		free(*slot);
		*slot = strdup(value);
		return *slot != NULL;
	}
	case OPT_LIST: {
		char **items = list_items(cfg, o);
		int *n = list_count(cfg, o);

		if (*n >= CONFIG_MAX_LIST)
			return fail(e, "%s: at most %d values", where, CONFIG_MAX_LIST);
		if (*value == '\0')
			return fail(e, "%s: value must not be empty", where);
		if ((items[*n] = strdup(value)) == NULL)
			return 0;
		(*n)++;
		return 1;
	}
	case OPT_FLAG:
		if (!flag_word(value, (long *)(base + o->offset)))
			return fail(e, "%s: expected on or off, got '%s'", where, value);
		return 1;
	case OPT_LONG:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0' || v < o->min || v > o->max)
			return fail(e, "%s: expected an integer from %ld to %ld, got '%s'", where, o->min,
			            o->max, value);
		*(long *)(base + o->offset) = v;
		return 1;
	}
	return 0;
}

static void clear_list(struct config *cfg, const struct option_def *o)
{
	char **items = list_items(cfg, o);
	int *n = list_count(cfg, o);

	for (int i = 0; i < *n; i++) {
		free(items[i]);
		items[i] = NULL;
	}
	*n = 0;
}

/* A list option given in a source (file, environment, argv) replaces what
 * an earlier source (or the default) gave, and accumulates within it:
 * |seen| has a bit per option, set at its first value in this source. */
static void list_first_in_source(struct config *cfg, const struct option_def *o, uint8_t *seen)
{
	size_t i = (size_t)(o - options);

	if (seen[i / 8] & (1u << (i % 8)))
		return;
	seen[i / 8] |= (uint8_t)(1u << (i % 8));
	clear_list(cfg, o);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int load_file(struct config *cfg, const char *path, struct errbuf *e)
{
	char line[4096], where[512];
	int lineno = 0, ok = 0;
	uint8_t seen[(N_OPTIONS + 7) / 8] = { 0 };
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return fail(e, "--config %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *s, *key, *value;
		const struct option_def *o;
		size_t klen, len = strlen(line);

		lineno++;
		s = trim(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			int ch;

			if (*s != '#') {
				fail(e, "%s:%d: line longer than %zu bytes", path, lineno, sizeof(line) - 2);
				goto err;
			}
			/* A long comment is still a comment: skip to its end. */
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		if (*s == '\0' || *s == '#')
			continue;
		key = s;
		klen = strcspn(s, " \t");
		value = trim(s + klen);
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		o = find_option(key, klen);
		if (o == NULL || o->offset == OFF(config_file)) {
			fail(e, "%s: unknown key '%.*s'", where, (int)klen, key);
			goto err;
		}
		if (o->type == OPT_FLAG && *value == '\0')
			value = "on";
		if (o->type == OPT_LIST)
			list_first_in_source(cfg, o, seen);
		if (!set_option(cfg, o, value, where, e))
			goto err;
	}
	ok = 1;
err:
	fclose(f);
	return ok;
}

static void print_help(void)
{
	printf("usage: mqtls --listen ADDR:PORT --cert FULLCHAIN --key KEY --upstream HOST:PORT [options]\n"
	       "       mqtls passwd [-c] [-b] FILE USER [PASSWORD]\n\n"
	       "A TLS front door for a plain MQTT broker.\n\noptions (also valid as `key value` lines in --config FILE):\n"
	       "precedence: --flag, then environment MQTLS_<NAME> (--max-buffer: MQTLS_MAX_BUFFER), then --config FILE, then the [default]\n");
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];

		printf("  --%-20s %s", o->name, o->help);
		if (o->def)
			printf(" [%s]", o->def);
		printf("\n");
	}
	printf("  --%-20s %s\n  --%-20s %s\n", "help", "print this and exit", "version",
	       "print the version and exit");
}

/* Splits "--name=value" or "--name value"; returns the option or NULL. */
static const struct option_def *arg_option(int argc, char **argv, int *i, const char **value,
                                           struct errbuf *e)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const struct option_def *o = find_option(a, len);

	if (o == NULL) {
		fail(e, "unknown option '%s' (see --help)", argv[*i]);
		return NULL;
	}
	if (eq) {
		*value = eq + 1;
	} else if (o->type == OPT_FLAG) {
		/* "--flag" alone means on; "--flag WORD" takes any flag word. */
		long ignored;

		*value = "on";
		if (*i + 1 < argc && flag_word(argv[*i + 1], &ignored))
			*value = argv[++*i];
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		fail(e, "--%s needs a value", o->name);
		return NULL;
	}
	return o;
}

/* ---- the environment ------------------------------------------------------ */

/*
 * MQTLS_<NAME> sets option <name>: upper case, '_' for '-'
 * (MQTLS_MAX_BUFFER is --max-buffer). An unknown MQTLS_* variable is an
 * error like an unknown key in a file, so that a typo (MQTLS_MAX_BUFER) does
 * not silently leave the default in place; except these, which are not
 * options: the project's own scripts and tests read them (tests/, deploy/,
 * the certbot hook), and they reach mqtls through inherited environments.
 */
#define ENV_PREFIX "MQTLS_"
#define ENV_PREFIX_LEN (sizeof(ENV_PREFIX) - 1)

static const char *const env_not_options[] = {
	"BIN", "REFERENCE", "STRESS", "TEST_LOG", "TEST_TIMING", "FUZZ_LOG",   /* tests */
	"PID", "PIDFILE", "UNIT",                                               /* certbot hook */
	"IMAGE", "BASE_IMAGE", "NOFILE", "NPROC", "PODMAN_DIR",                 /* deploy/podman */
};

static int env_is_not_an_option(const char *key, size_t len)
{
	for (size_t i = 0; i < sizeof(env_not_options) / sizeof(env_not_options[0]); i++) {
		if (strlen(env_not_options[i]) == len && memcmp(env_not_options[i], key, len) == 0)
			return 1;
	}
	/* Kubernetes puts MQTLS_PORT, MQTLS_PORT_8883_TCP_ADDR, ... and
	 * MQTLS_SERVICE_HOST/PORT into every pod of a namespace that has a
	 * Service named "mqtls". */
	return (len == 4 && memcmp(key, "PORT", 4) == 0) || (len > 5 && memcmp(key, "PORT_", 5) == 0) ||
	       (len >= 12 && (memcmp(key, "SERVICE_HOST", 12) == 0 ||
	                      memcmp(key, "SERVICE_PORT", 12) == 0));
}

/* "MAX_BUFFER" -> "max-buffer" in |out|; returns 0 if |key| has characters
 * other than upper-case letters, digits and '_' (then |out| still holds a
 * lower-cased guess, for a suggestion) or does not fit. */
static int env_to_name(const char *key, size_t len, char *out, size_t cap)
{
	int ok = len > 0;

	if (len >= cap) {
		out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		char c = key[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (c == '_')
			c = '-';
		else if (!(c >= '0' && c <= '9'))
			ok = 0;
		out[i] = c;
	}
	out[len] = '\0';
	return ok;
}

/* Levenshtein distance of two option-sized strings (capped when longer). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= 64 || lb >= 64)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static void env_name_of(const struct option_def *o, char *out, size_t cap)
{
	size_t n = snprintf(out, cap, ENV_PREFIX "%s", o->name);

	for (size_t i = ENV_PREFIX_LEN; i < n && i < cap; i++)
		out[i] = out[i] == '-' ? '_' : (char)(out[i] >= 'a' && out[i] <= 'z' ? out[i] - 'a' + 'A' : out[i]);
}

static int env_unknown(const char *var, size_t len, struct errbuf *e)
{
	char name[64], env[96];
	const struct option_def *best = NULL;
	size_t best_d = 3;   /* suggest only within two edits */

	(void)env_to_name(var + ENV_PREFIX_LEN, len - ENV_PREFIX_LEN, name, sizeof(name));
	for (size_t i = 0; i < N_OPTIONS; i++) {
		size_t d = edit_distance(name, options[i].name);

		if (d < best_d) {
			best = &options[i];
			best_d = d;
		}
	}
	if (best == NULL)
		return fail(e, "%.*s: no such option (MQTLS_<NAME> sets --<name>, see --help)", (int)len, var);
	env_name_of(best, env, sizeof(env));
	return fail(e, "%.*s: no such option (did you mean %s?)", (int)len, var, env);
}

/* The addresses of a list option, separated by commas or white space;
 * they replace the file's. */
static int set_env_list(struct config *cfg, const struct option_def *o, const char *value,
                        const char *where, struct errbuf *e)
{
	char item[512];

	clear_list(cfg, o);
	value += strspn(value, ", \t");
	while (*value) {
		size_t n = strcspn(value, ", \t");

		if (n >= sizeof(item))
			return fail(e, "%s: address '%.40s...' too long", where, value);
		memcpy(item, value, n);
		item[n] = '\0';
		if (!set_option(cfg, o, item, where, e))
			return 0;
		value += n;
		value += strspn(value, ", \t");
	}
	return 1;
}

/* The value of |name| in |envp|, or NULL; set but empty counts as unset. */
static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (char **v = envp; v && *v; v++) {
		if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
			return (*v)[n + 1] ? *v + n + 1 : NULL;
	}
	return NULL;
}

/*
 * Applies every MQTLS_* variable of |envp|. An empty variable counts as
 * unset: container templates often leave one empty ("MQTLS_CRL=").
 */
static int load_env(struct config *cfg, char **envp, struct errbuf *e)
{
	for (char **v = envp; v && *v; v++) {
		const struct option_def *o;
		const char *key, *eq, *value;
		char name[64], where[80];
		size_t klen;

		if (strncmp(*v, ENV_PREFIX, ENV_PREFIX_LEN) != 0 || (eq = strchr(*v, '=')) == NULL)
			continue;
		key = *v + ENV_PREFIX_LEN;
		klen = (size_t)(eq - key);
		value = eq + 1;
		o = env_to_name(key, klen, name, sizeof(name)) ? find_option(name, klen) : NULL;
		if (o == NULL) {
			if (env_is_not_an_option(key, klen))
				continue;
			return env_unknown(*v, (size_t)(eq - *v), e);
		}
		if (*value == '\0')
			continue;
		snprintf(where, sizeof(where), "%.*s", (int)(eq - *v), *v);
		if (o->type == OPT_LIST ? !set_env_list(cfg, o, value, where, e)
		                        : !set_option(cfg, o, value, where, e))
			return 0;
	}
	return 1;
}

/* ---- loading ------------------------------------------------------------------ */

/* An origin-form path, as the upgrade request's target is compared with
 * it (proxy/ws_upgrade.c): '/', then visible ASCII, no query. */
static int ws_path_ok(const char *p)
{
	if (p == NULL || p[0] != '/')
		return 0;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '?')
			return 0;
	return 1;
}

/* The rules between options, checked once everything is read; derives
 * cert_mode. Run again by config_keep_running on a mixed configuration. */
static int check_config(struct config *cfg, struct errbuf *e)
{
	cfg->cert_mode = CLIENT_CERT_NONE;
	if (cfg->n_cert == 0 || cfg->n_key == 0 || cfg->n_upstream == 0)
		return fail(e, "--cert, --key and --upstream are required (see --help)");
	if (cfg->n_cert != cfg->n_key)
		return fail(e, "--cert and --key come in pairs: %d --cert but %d --key", cfg->n_cert,
		            cfg->n_key);
	if (cfg->client_cert && strcmp(cfg->client_cert, "none") != 0) {
		cfg->cert_mode = strcmp(cfg->client_cert, "required") == 0 ? CLIENT_CERT_REQUIRED
		                                                            : CLIENT_CERT_OPTIONAL;
		if (cfg->client_ca == NULL)
			return fail(e, "--client-cert %s needs --client-ca FILE", cfg->client_cert);
	} else if (cfg->client_ca) {
		/* A client CA on its own means the operator wants certificates checked when sent. */
		cfg->cert_mode = CLIENT_CERT_OPTIONAL;
	}
	if (cfg->identity_as_username && cfg->cert_mode == CLIENT_CERT_NONE)
		return fail(e, "--identity-as-username needs --client-ca FILE");
	if (cfg->crl && cfg->client_ca == NULL)
		return fail(e, "--crl needs --client-ca FILE");
	if (cfg->n_listen + cfg->n_ws_listen > CONFIG_MAX_LISTEN)
		return fail(e, "--listen and --ws-listen: at most %d listeners in all", CONFIG_MAX_LISTEN);
	if (!ws_path_ok(cfg->ws_path))
		return fail(e, "--ws-path %s: expected a path starting with '/', without '?', spaces or control characters",
		            cfg->ws_path);
	if (!jwks_config_check(cfg, e->s, e->len))
		return 0;
	if ((cfg->upstream_cert == NULL) != (cfg->upstream_key == NULL))
		return fail(e, "--upstream-cert and --upstream-key go together (both or neither)");
	if (!cfg->upstream_tls && (cfg->upstream_ca || cfg->upstream_sni || cfg->upstream_cert))
		return fail(e, "--%s needs --upstream-tls", cfg->upstream_ca ? "upstream-ca" :
		            cfg->upstream_sni ? "upstream-sni" : "upstream-cert");
	return 1;
}

enum config_result config_read(struct config *cfg, int argc, char **argv, char **envp, char *err,
                               size_t errlen)
{
	struct errbuf e = { err, errlen };
	const char *config_path = NULL;
	uint8_t seen[(N_OPTIONS + 7) / 8] = { 0 };

	memset(cfg, 0, sizeof(*cfg));
	if (errlen > 0)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_help();
			return CONFIG_EXIT_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("mqtls %s\n", MQTLS_VERSION);
			return CONFIG_EXIT_OK;
		}
	}
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].def && !set_option(cfg, &options[i], options[i].def, "default", &e))
			return CONFIG_ERROR;
	}
	/* First pass finds --config and validates the shape of argv. */
	for (int i = 1; i < argc; i++) {
		const struct option_def *o;
		const char *value;

		if (strncmp(argv[i], "--", 2) != 0) {
			fail(&e, "unexpected argument '%s' (see --help)", argv[i]);
			return CONFIG_ERROR;
		}
		if ((o = arg_option(argc, argv, &i, &value, &e)) == NULL)
			return CONFIG_ERROR;
		if (o->offset == OFF(config_file))
			config_path = value;
	}
	/* Precedence, lowest first: defaults, the file, the environment, flags. */
	if (config_path == NULL)
		config_path = env_get(envp, ENV_PREFIX "CONFIG");
	if (config_path && !load_file(cfg, config_path, &e))
		return CONFIG_ERROR;
	if (!load_env(cfg, envp, &e))
		return CONFIG_ERROR;
	for (int i = 1; i < argc; i++) {
		char where[64];
		const struct option_def *o;
		const char *value;

		o = arg_option(argc, argv, &i, &value, &e);
		if (o == NULL)
			return CONFIG_ERROR;
		if (o->type == OPT_LIST)
			list_first_in_source(cfg, o, seen);
		snprintf(where, sizeof(where), "--%s", o->name);
		if (!set_option(cfg, o, value, where, &e))
			return CONFIG_ERROR;
	}
	return check_config(cfg, &e) ? CONFIG_OK : CONFIG_ERROR;
}

enum config_result config_load(struct config *cfg, int argc, char **argv)
{
	char err[1024];
	enum config_result r = config_read(cfg, argc, argv, environ, err, sizeof(err));

	if (r == CONFIG_ERROR)
		fprintf(stderr, "mqtls: %s\n", err);
	return r;
}

/* ---- comparing and reloading ------------------------------------------------- */

/*
 * The options a reload applies to a running process. Everything else is
 * bound when the process starts (sockets, threads, tables sized from it,
 * values copied into the workers or the logger) and is kept as it was when
 * a reload finds it changed ("needs restart"). An option added to the table
 * is restart-only until it is listed here, which is the safe default: list
 * it only once every use reads it through proxy->cfg at the time, or from
 * a snapshot the reload rebuilds (TLS context, auth material).
 */
static const char *const live_options[] = {
	/* a new TLS context */
	"cert", "key", "client-ca", "client-cert", "crl", "ticket-keys",
	/* read through proxy->cfg, or proxy fields the reload stores */
	"max-connect-size", "max-buffer", "max-connections", "max-handshakes-per-ip",
	"max-auth-per-ip", "max-auth-per-user",
	/* a new auth snapshot */
	"users", "auth", "allow-anonymous", "require-clientid-match", "jwt-keys", "jwt-issuer",
	"jwt-audience", "jwt-username-claim", "jwt-leeway", "jwt-require-exp",
	"jwt-expiry-disconnect", "upstream-username", "upstream-password-file", "auth-fail-delay",
	/* a new client TLS context for the broker (proxy/upstream_tls.c) */
	"upstream-ca", "upstream-cert", "upstream-key",
	"acl-file", "acl-deny",
	/* the same argv and environment always name the same file */
	"config",
};

/* Files a configuration loads; a change to any of them calls for a reload. */
static const char *const file_options[] = {
	"config", "cert", "key", "client-ca", "crl", "users", "jwt-keys", "upstream-password-file",
	"ticket-keys", "upstream-ca", "upstream-cert", "upstream-key", "acl-file",
};

static int option_is_live(const struct option_def *o)
{
	for (size_t i = 0; i < sizeof(live_options) / sizeof(live_options[0]); i++) {
		if (strcmp(live_options[i], o->name) == 0)
			return 1;
	}
	return 0;
}

static int same_string(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static int option_same(const struct config *a, const struct config *b, const struct option_def *o)
{
	const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;

	switch (o->type) {
	case OPT_STR:
	case OPT_CHOICE:
		return same_string(*(char *const *)pa, *(char *const *)pb);
	case OPT_LIST: {
		int na = *(const int *)((const char *)a + list_count_offset(o));

		if (na != *(const int *)((const char *)b + list_count_offset(o)))
			return 0;
		for (int i = 0; i < na; i++) {
			if (!same_string(((char *const *)pa)[i], ((char *const *)pb)[i]))
				return 0;
		}
		return 1;
	}
	case OPT_LONG:
	case OPT_FLAG:
		return *(const long *)pa == *(const long *)pb;
	}
	return 0;
}

/* Gives |dst| a copy of |src|'s value of |o|; 0 when out of memory. */
static int option_copy(struct config *dst, const struct config *src, const struct option_def *o)
{
	char *pd = (char *)dst + o->offset;
	const char *ps = (const char *)src + o->offset;

	switch (o->type) {
	case OPT_STR:
	case OPT_CHOICE: {
		char **slot = (char **)pd;
		const char *v = *(char *const *)ps;

		free(*slot);
		*slot = v ? strdup(v) : NULL;
		return v == NULL || *slot != NULL;
	}
	case OPT_LIST: {
		char **items = list_items(dst, o);
		int *n = list_count(dst, o), ns = *(const int *)((const char *)src + list_count_offset(o));

		clear_list(dst, o);
		for (int i = 0; i < ns; i++) {
			if ((items[i] = strdup(((char *const *)ps)[i])) == NULL)
				return 0;
			(*n)++;
		}
		return 1;
	}
	case OPT_LONG:
	case OPT_FLAG:
		*(long *)pd = *(const long *)ps;
		return 1;
	}
	return 0;
}

int config_same(const struct config *a, const struct config *b)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (!option_same(a, b, &options[i]))
			return 0;
	}
	return 1;
}

int config_keep_running(struct config *next, const struct config *running, char *names,
                        size_t len, char *err, size_t errlen)
{
	struct errbuf e = { err, errlen };
	size_t used = 0;
	int n = 0;

	if (len > 0)
		names[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];

		if (option_is_live(o) || option_same(next, running, o))
			continue;
		if (!option_copy(next, running, o)) {
			fail(&e, "out of memory");
			return -1;
		}
		if (used < len) {
			int w = snprintf(names + used, len - used, "%s%s", n ? ", " : "", o->name);

			used += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
	if (!check_config(next, &e)) {
		if (n > 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", err);
			fail(&e, "%s (with the running %s, which need a restart)", why, names);
		}
		return -1;
	}
	return n;
}

size_t config_files(const struct config *cfg, const char **out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(file_options) / sizeof(file_options[0]); i++) {
		const struct option_def *o = find_option(file_options[i], strlen(file_options[i]));
		const char *path;

		if (o != NULL && o->type == OPT_LIST) {
			int items = *(const int *)((const char *)cfg + list_count_offset(o));

			for (int k = 0; k < items && n < cap; k++)
				out[n++] = ((char *const *)((const char *)cfg + o->offset))[k];
			continue;
		}
		if (o == NULL || o->type != OPT_STR)
			continue;
		path = *(char *const *)((const char *)cfg + o->offset);
		if (path && n < cap)
			out[n++] = path;
	}
	return n;
}

void config_cleanup(struct config *cfg)
{
	/* Every string the struct owns is the slot of a string option, so the
	 * table frees them all, those of options added later included. */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option_def *o = &options[i];

		if (o->type == OPT_STR || o->type == OPT_CHOICE)
			free(*(char **)((char *)cfg + o->offset));
		else if (o->type == OPT_LIST)
			clear_list(cfg, o);
	}
	memset(cfg, 0, sizeof(*cfg));
}
