#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	{ "cert", OPT_STR, OFF(cert), NULL, 0, 0, NULL,
	  "server certificate chain, PEM, leaf first (e.g. Let's Encrypt fullchain.pem)" },
	{ "key", OPT_STR, OFF(key), NULL, 0, 0, NULL,
	  "server private key, PEM (PKCS#8, SEC1 or PKCS#1)" },
	{ "upstream", OPT_STR, OFF(upstream), NULL, 0, 0, NULL,
	  "the plain MQTT broker: HOST:PORT, [V6]:PORT or unix:/path" },
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
	  "seconds allowed to connect to the broker" },
	{ "max-connect-size", OPT_LONG, OFF(max_connect_size), "65536", 64, 16777216, NULL,
	  "largest CONNECT packet accepted, bytes" },
	{ "max-buffer", OPT_LONG, OFF(max_buffer), "262144", 16384, 1073741824, NULL,
	  "bytes buffered per direction per connection before reading pauses" },
	{ "max-handshakes", OPT_LONG, OFF(max_handshakes), "512", 1, 1000000, NULL,
	  "concurrent TLS handshakes per worker; above it the oldest stalled one is dropped" },
	{ "hello-timeout", OPT_LONG, OFF(hello_timeout), "3", 1, 3600, NULL,
	  "seconds allowed from accept to a complete TLS ClientHello" },
	{ "max-handshakes-per-ip", OPT_LONG, OFF(max_handshakes_per_ip), "32", 0, 1000000, NULL,
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
	  "slow auth checks at once per client address per worker; 0 = no cap" },
	{ "max-auth-per-user", OPT_LONG, OFF(max_auth_per_user), "8", 0, 100000, NULL,
	  "slow auth checks at once per user name per worker; 0 = no cap" },
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

/* |where| is "--name" or "file:line" for the error message. */
static int set_option(struct config *cfg, const struct option_def *o, const char *value,
                      const char *where)
{
	char *base = (char *)cfg;
	char *end;
	long v;

	switch (o->type) {
	case OPT_STR:
	case OPT_CHOICE: {
		char **slot = (char **)(base + o->offset);

		if (o->type == OPT_CHOICE && !choice_ok(o->choices, value)) {
			fprintf(stderr, "mqtls: %s: expected one of %s, got '%s'\n", where, o->choices, value);
			return 0;
		}
		if (*value == '\0') {
			fprintf(stderr, "mqtls: %s: value must not be empty\n", where);
			return 0;
		}
		free(*slot);
		*slot = strdup(value);
		return *slot != NULL;
	}
	case OPT_LIST:
		if (cfg->n_listen >= CONFIG_MAX_LISTEN) {
			fprintf(stderr, "mqtls: %s: at most %d listeners\n", where, CONFIG_MAX_LISTEN);
			return 0;
		}
		cfg->listen[cfg->n_listen] = strdup(value);
		if (cfg->listen[cfg->n_listen] == NULL)
			return 0;
		cfg->n_listen++;
		return 1;
	case OPT_FLAG:
		if (!flag_word(value, (long *)(base + o->offset))) {
			fprintf(stderr, "mqtls: %s: expected on or off, got '%s'\n", where, value);
			return 0;
		}
		return 1;
	case OPT_LONG:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
			fprintf(stderr, "mqtls: %s: expected an integer from %ld to %ld, got '%s'\n",
			        where, o->min, o->max, value);
			return 0;
		}
		*(long *)(base + o->offset) = v;
		return 1;
	}
	return 0;
}

static void clear_listen(struct config *cfg)
{
	for (int i = 0; i < cfg->n_listen; i++) {
		free(cfg->listen[i]);
		cfg->listen[i] = NULL;
	}
	cfg->n_listen = 0;
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

static int load_file(struct config *cfg, const char *path)
{
	char line[4096], where[512];
	int lineno = 0, file_listen = 0, ok = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "mqtls: --config %s: %s\n", path, strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *key, *value;
		const struct option_def *o;
		size_t klen, len = strlen(line);

		lineno++;
		s = trim(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			int ch;

			if (*s != '#') {
				fprintf(stderr, "mqtls: %s:%d: line longer than %zu bytes\n", path, lineno,
				        sizeof(line) - 2);
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
			fprintf(stderr, "mqtls: %s: unknown key '%.*s'\n", where, (int)klen, key);
			goto err;
		}
		if (o->type == OPT_FLAG && *value == '\0')
			value = "on";
		if (o->type == OPT_LIST && !file_listen) {
			clear_listen(cfg);
			file_listen = 1;
		}
		if (!set_option(cfg, o, value, where))
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
	       "A TLS front door for a plain MQTT broker.\n\noptions (also valid as `key value` lines in --config FILE):\n");
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
static const struct option_def *arg_option(int argc, char **argv, int *i, const char **value)
{
	const char *a = argv[*i] + 2, *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	const struct option_def *o = find_option(a, len);

	if (o == NULL) {
		fprintf(stderr, "mqtls: unknown option '%s' (see --help)\n", argv[*i]);
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
		fprintf(stderr, "mqtls: --%s needs a value\n", o->name);
		return NULL;
	}
	return o;
}

enum config_result config_load(struct config *cfg, int argc, char **argv)
{
	const char *config_path = NULL;
	int argv_listen = 0;

	memset(cfg, 0, sizeof(*cfg));
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
		if (options[i].def && !set_option(cfg, &options[i], options[i].def, "default"))
			return CONFIG_ERROR;
	}
	/* First pass finds --config and validates the shape of argv. */
	for (int i = 1; i < argc; i++) {
		const struct option_def *o;
		const char *value;

		if (strncmp(argv[i], "--", 2) != 0) {
			fprintf(stderr, "mqtls: unexpected argument '%s' (see --help)\n", argv[i]);
			return CONFIG_ERROR;
		}
		if ((o = arg_option(argc, argv, &i, &value)) == NULL)
			return CONFIG_ERROR;
		if (o->offset == OFF(config_file))
			config_path = value;
	}
	if (config_path && !load_file(cfg, config_path))
		return CONFIG_ERROR;
	for (int i = 1; i < argc; i++) {
		char where[64];
		const struct option_def *o;
		const char *value;

		o = arg_option(argc, argv, &i, &value);
		if (o == NULL)
			return CONFIG_ERROR;
		if (o->type == OPT_LIST && !argv_listen) {
			clear_listen(cfg);
			argv_listen = 1;
		}
		snprintf(where, sizeof(where), "--%s", o->name);
		if (!set_option(cfg, o, value, where))
			return CONFIG_ERROR;
	}
	if (cfg->cert == NULL || cfg->key == NULL || cfg->upstream == NULL) {
		fprintf(stderr, "mqtls: --cert, --key and --upstream are required (see --help)\n");
		return CONFIG_ERROR;
	}
	if (cfg->client_cert && strcmp(cfg->client_cert, "none") != 0) {
		cfg->cert_mode = strcmp(cfg->client_cert, "required") == 0 ? CLIENT_CERT_REQUIRED
		                                                            : CLIENT_CERT_OPTIONAL;
		if (cfg->client_ca == NULL) {
			fprintf(stderr, "mqtls: --client-cert %s needs --client-ca FILE\n", cfg->client_cert);
			return CONFIG_ERROR;
		}
	} else if (cfg->client_ca) {
		/* A client CA on its own means the operator wants certificates checked when sent. */
		cfg->cert_mode = CLIENT_CERT_OPTIONAL;
	}
	if (cfg->identity_as_username && cfg->cert_mode == CLIENT_CERT_NONE) {
		fprintf(stderr, "mqtls: --identity-as-username needs --client-ca FILE\n");
		return CONFIG_ERROR;
	}
	if (cfg->crl && cfg->client_ca == NULL) {
		fprintf(stderr, "mqtls: --crl needs --client-ca FILE\n");
		return CONFIG_ERROR;
	}
	return CONFIG_OK;
}

void config_cleanup(struct config *cfg)
{
	clear_listen(cfg);
	free(cfg->cert);
	free(cfg->key);
	free(cfg->upstream);
	free(cfg->client_ca);
	free(cfg->client_cert);
	free(cfg->crl);
	free(cfg->log_level);
	free(cfg->ready_file);
	free(cfg->config_file);
	free(cfg->users);
	free(cfg->auth);
	free(cfg->identity_as_username);
	free(cfg->jwt_keys);
	free(cfg->jwt_issuer);
	free(cfg->jwt_audience);
	free(cfg->jwt_username_claim);
	free(cfg->upstream_username);
	free(cfg->upstream_password_file);
	memset(cfg, 0, sizeof(*cfg));
}
