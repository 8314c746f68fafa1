/*
 * Configuration: one option table drives the command line, the config file
 * (`key value` per line, the same names as the long flags), the MQTLS_<NAME>
 * environment variables, --help and reload (which options a running process
 * can change).
 */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_LIST 8       /* values of any repeatable option (OPT_LIST in config.c) */

enum client_cert_mode { CLIENT_CERT_NONE, CLIENT_CERT_OPTIONAL, CLIENT_CERT_REQUIRED };

/* Every string is owned by the struct and freed by config_cleanup. */
struct config {
	char *listen[CONFIG_MAX_LISTEN];
	int n_listen;
	char *ws_listen[CONFIG_MAX_LIST];   /* MQTT over WebSockets after TLS */
	int n_ws_listen;
	char *ws_path;            /* where WebSocket clients upgrade, "/mqtt" */
	char *cert[CONFIG_MAX_LIST];   /* pairs: key[i] belongs to cert[i]; the first is the default */
	int n_cert;
	char *key[CONFIG_MAX_LIST];
	int n_key;
	char *upstream[CONFIG_MAX_LIST];   /* the brokers (proxy/brokers.h) */
	int n_upstream;
	char *upstream_balance;   /* first|clientid-hash */
	long resolve_interval;    /* seconds between resolutions of broker host names; 0: at start only */
	char *client_ca;
	char *client_cert;        /* none|optional|required, see cert_mode */
	enum client_cert_mode cert_mode;
	char *crl;
	long workers;             /* 0: one per core */
	long handshake_timeout;   /* seconds */
	long connect_timeout;     /* seconds, TLS done -> full CONNECT */
	long upstream_timeout;    /* seconds, TCP connect to the broker */
	long max_connect_size;    /* bytes */
	long max_buffer;          /* bytes buffered per direction per connection */
	long max_handshakes;      /* concurrent TLS handshakes per worker */
	long max_connections;     /* per worker */
	long hello_timeout;       /* seconds, accept -> complete ClientHello */
	long max_handshakes_per_ip;   /* per worker; 0: no cap */
	char *log_level;
	char *log_format;         /* text|json */
	char *metrics;            /* ADDR:PORT of the HTTP endpoint, or NULL */
	long drain_timeout;       /* seconds after SIGTERM */
	long max_conn_per_ip;     /* 0: no cap */
	long accept_proxy;        /* flag: PROXY header before TLS */
	char *ticket_keys;        /* file, or NULL */
	long send_proxy_v2;       /* flag: PROXY v2 header to the broker */
	long upstream_tls;        /* flag: TLS to the broker (proxy/upstream_tls.c) */
	char *upstream_ca;        /* CAs the broker must chain to; NULL: the system's */
	char *upstream_sni;       /* name sent and verified; NULL: --upstream's host */
	char *upstream_cert;      /* client certificate for the broker, with upstream_key */
	char *upstream_key;
	long conn_rate_per_ip;    /* per second; 0: no cap */
	long max_conn_per_identity;   /* 0: no cap */
	char *ready_file;
	char *config_file;

	/* Authentication (see proxy/auth/policy.h). */
	char *users;                  /* password file */
	char *auth;                   /* "cert,jwt,password" order; NULL: what is configured */
	long allow_anonymous;         /* flag */
	char *identity_as_username;   /* cn|san-dns|san-email|san-uri */
	long require_clientid_match;  /* flag */
	char *jwt_keys;
	char *jwt_jwks_url;           /* the identity provider's JWK Set (https), or NULL */
	char *jwt_jwks_ca;            /* CA file to verify it with; NULL: the system's */
	long jwt_discovery;           /* flag: the JWKS URL from --jwt-issuer's discovery document */
	char *jwt_jwks_refresh;       /* "MIN..MAX" seconds between fetches */
	char *jwt_issuer;
	char *jwt_audience;
	char *jwt_username_claim;
	long jwt_leeway;
	long jwt_require_exp;         /* flag */
	long jwt_expiry_disconnect;   /* flag */
	char *upstream_username;
	char *upstream_password_file;
	long auth_threads;
	long auth_fail_delay;         /* ms */
	long max_auth_queue;          /* slow checks queued or running, per worker */
	long max_auth_per_ip;         /* per worker; 0: no cap */
	long max_auth_per_user;       /* per worker; 0: no cap */
	int users_strict;             /* not an option: a reload refuses bad lines */

	/* Topic access control (proxy/acl.h, proxy/acl_filter.h). */
	char *acl_file;               /* mosquitto acl_file syntax, or NULL: no ACL */
	char *acl_deny;               /* drop|disconnect */
};

/* Listeners are numbered the --listen ones first, then the --ws-listen
 * ones: the index a session keeps and the metrics label by. */
static inline int config_n_listeners(const struct config *c)
{
	return c->n_listen + c->n_ws_listen;
}

static inline int config_listener_is_ws(const struct config *c, int i)
{
	return i >= c->n_listen && i < c->n_listen + c->n_ws_listen;
}

/* The ADDR:PORT listener |i| was given as (borrowed). */
static inline const char *config_listener(const struct config *c, int i)
{
	return i < c->n_listen ? c->listen[i] : c->ws_listen[i - c->n_listen];
}

enum config_result {
	CONFIG_OK,
	CONFIG_EXIT_OK,      /* --help or --version printed: exit 0 */
	CONFIG_ERROR,        /* one-line error printed: exit 2 */
};

/*
 * Fills |cfg| from defaults, then the file named by --config (or by
 * MQTLS_CONFIG), then the MQTLS_<NAME> variables of the environment, then
 * argv: a flag beats the environment, which beats the file. An unknown
 * MQTLS_* variable is an error, except the few the project's scripts use
 * (see config.c). On error prints one line to stderr. The caller calls
 * config_cleanup in every case.
 */
enum config_result config_load(struct config *cfg, int argc, char **argv);

/* config_load with the environment |envp| (NULL-terminated "NAME=value"
 * strings), writing the one-line error (no "mqtls: " prefix, no newline)
 * to |err| instead of printing it: what a reload calls. --help and
 * --version still print to stdout. */
enum config_result config_read(struct config *cfg, int argc, char **argv, char **envp, char *err,
                               size_t errlen);

void config_cleanup(struct config *cfg);

/* 1 if |a| and |b| hold the same value for every option. */
int config_same(const struct config *a, const struct config *b);

/*
 * For a reload: every option a running process cannot change (listen
 * addresses, workers, timeouts copied into struct proxy, ...; the list of
 * those it can is in config.c) takes |running|'s value in |next| again.
 * Writes the names of those that differed, ", "-separated, to |names| and
 * returns how many; returns -1 with the reason in |err| if |next| is not
 * consistent afterwards, or out of memory.
 */
int config_keep_running(struct config *next, const struct config *running, char *names,
                        size_t len, char *err, size_t errlen);

/* The files |cfg| loads (config file, certificate, key, client CA, CRL,
 * users, JWT keys, upstream password): up to |cap| pointers borrowed from
 * |cfg| into |out|. Returns how many. */
size_t config_files(const struct config *cfg, const char **out, size_t cap);

#endif
