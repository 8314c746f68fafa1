/*
 * libFuzzer target for the session state machine (proxy/session*.c,
 * forward.c, worker.c and the TLS glue under them): one real session per
 * input, on a real worker loop, between a scripted TLS client and a
 * scripted broker.
 *
 * Set up once, the way main() does it: the configuration from config_load()
 * (four variants, one per auth mode), a self-signed P-256 server certificate
 * and a client CA in a temp dir and the daemon's server contexts for them
 * (tls_server_ctx_new), the shared struct proxy, the auth snapshots
 * (auth_material_load), and unix and TCP listeners that are the proxy's
 * broker. The client context
 * resumes sessions, so most inputs pay for an abbreviated handshake only.
 *
 * Per input: a fresh worker (worker_init), a client socket handed to it
 * (one end of a socketpair given to worker_adopt, or a TCP connection to the
 * worker's listener on 127.0.0.1 through the real accept path), the TLS
 * handshake driven from here (the client SSL works on memory BIOs, so the
 * harness decides how its ciphertext is cut into socket writes), then the
 * script, stepping the loop with EVLOOP_NONBLOCK after each operation and
 * reading whatever the proxy sends to either peer (unless that peer is
 * paused: that is how the backpressure paths run). Time is the harness's: CLOCK_MONOTONIC is
 * offset by the ADVANCE operation, so timers (hello, handshake, connect,
 * failure delay, linger, shutdown grace) fire when the script says so. At the
 * end both peers leave, time passes, and the session must be gone.
 *
 * Input format (every length is clamped to what is left):
 *   input := opts:u8 opts2:u8 op*
 *   opts  bits 0-1: auth (0 none; 1 password + anonymous, the broker sees
 *                   the service account "svc"; 2 client certificate (CN) +
 *                   JWT + password, the broker sees the identity with the
 *                   broker password; 3 password with a 100 ms failure delay
 *                   and slow hashes on the auth pool)
 *         bit 2: TLS 1.2 (else 1.3)
 *         bit 3: no handshake up front (the first TLS operation does it)
 *         bit 4: broker unreachable
 *         bit 5: default socket buffers (else small ones: backpressure is cheap)
 *         bit 6: the client connects over TCP (else a unix socketpair)
 *         bit 7: the broker listens on TCP (else a unix socket): the
 *                proxy's connect is then still in progress when it returns
 *   opts2 bits 0-1: the client's certificate, sent when the server asks
 *                (mode 2): none, CN "device-1", CN "dev\001ice\"1" (not a
 *                printable MQTT string), CN "device-1" from an unknown CA
 *         bit 2: the daemon's default limits (--max-connect-size and
 *                --max-buffer; else 512 and 16384 bytes)
 *         bit 3: the broker's accept queue is full: the proxy's connect
 *                stays in progress (until --upstream-timeout)
 *         bit 4: several brokers (--upstream twice, first): an
 *                unreachable one, then the one the other bits chose; the
 *                hub fails over from the first (unless opts bit 4 made
 *                the only broker unreachable)
 *         bit 5: the client comes in on the --ws-listen listener (over
 *                TCP whatever opts bit 6 says): its bytes are an HTTP
 *                upgrade and WebSocket frames, and the stream checks
 *                decode both directions first
 *   op    := code:u8 body; code & 0x10: do not step the loop after it
 *   len   := u8, or 0xff then u16 big-endian
 *   code & 15:
 *     0 C_SEND    len data   client TLS record(s) carrying data, sent
 *     1 C_HOLD    len data   the same, ciphertext held back
 *     2 C_RELEASE len        that many held ciphertext bytes go out (0: all)
 *     3 C_RAW     len data   raw bytes on the client socket (not TLS)
 *     4 B_SEND    len data   broker bytes
 *     5 C_BULK    n:u8 len data   client sends data repeated to (n+1)*256 B
 *     6 B_BULK    n:u8 len data   the same from the broker
 *     7 C_PAUSE   client stops/resumes reading
 *     8 B_PAUSE   broker stops/resumes reading
 *     9 C_NOTIFY  client sends close_notify
 *    10 C_SHUT    client half-closes (shutdown SHUT_WR)
 *    11 C_CLOSE   client closes its socket (a reset if data was unread)
 *    12 B_SHUT    broker half-closes
 *    13 B_CLOSE   broker closes
 *    14 ADVANCE n:u8  time passes: 1 ms, 1 s, 2.1 s, 5.1 s, 10.1 s, 31 s,
 *                 61 s or 100 years (n % 8)
 *    15 CTRL n:u8 n%4: 0 client KeyUpdate (TLS 1.3), 1 worker stop
 *                 (the SIGTERM path), 2 more loop steps, 3 C_SEND of a
 *                 minimal 3.1.1 CONNECT (on the WebSocket listener: an
 *                 upgrade request and the CONNECT in a masked frame)
 *
 * Users: "u" with password "p" (one round of salted SHA-512, checked on the
 * loop) and "slow" with password "slowpw" (PBKDF2, 400 rounds: over the
 * cost that sends a check to the pool in mode 3). JWT: HS256 with the secret
 * in make_session_corpus.py. An auth check on the pool is waited for before
 * the next operation, so that inputs replay the same way.
 *
 * Checks besides the sanitizers: what the broker receives is a prefix of
 * what the client sent (with credentials injected: its first packet parses
 * as a CONNECT and the rest is a prefix of what followed the client's
 * CONNECT); what the client receives is a prefix of what the broker sent,
 * possibly followed by one CONNACK or DISCONNECT of mqtls's own; once both
 * peers have left and the timers have had their time, the worker holds no
 * session and no handshake, and the connection limits (--max-conn-per-ip 1,
 * --max-conn-per-identity 1, a table per input) count nothing for the
 * client's address or any identity; no descriptor is left open.
 *
 * MQTLS_FUZZ_LOG=info|debug turns the proxy's log on (stderr).
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mqtt/connect.h"
#include "mqtt/packet.h"
#include "proxy/address.h"
#include "proxy/auth/faildelay.h"
#include "proxy/auth/policy.h"
#include "proxy/brokers.h"
#include "proxy/config.h"
#include "proxy/limits.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "proxy/ws_frame.h"
#include "tls/context.h"
#include "tls/peer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour stops the run like a crash (the Makefile compiles fuzz
 * targets with recoverable UBSan, which would only print it). UBSAN_OPTIONS
 * still overrides this. */
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

#define MAX_OPS 512
#define MAX_ROUNDS 32            /* loop steps per pump */
#define MAX_TRAFFIC (1 << 20)    /* bytes generated per input */
#define MAX_RECORD 16384
#define RECORD_LOG_CAP (4 << 20) /* bytes kept for the stream checks */
#define SMALL_BUF 4096

/* --- the clock ------------------------------------------------------- */

/*
 * The monotonic clocks (libevent's timers, session_now_ms) run ahead of the
 * real one by |clock_offset_ns|, which grows during an input and starts at 0
 * with the next one (whose worker and failure-delay table are new, so
 * nothing that remembers a monotonic time survives). This definition takes
 * the place of libc's for the whole process, libevent included; the wall
 * clock is left alone, and libFuzzer's own timing uses that one.
 */
#define CLOCK_OFFSET_MAX (250LL * 366 * 86400 * 1000000000)   /* 250 years, in ns */
static int64_t clock_offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = real_clock_gettime ? real_clock_gettime(id, ts)
	                            : (int)syscall(SYS_clock_gettime, id, ts);

	if (rc == 0 && clock_offset_ns > 0 &&
	    (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE || id == CLOCK_MONOTONIC_RAW ||
	     id == CLOCK_BOOTTIME)) {
		int64_t ns = (int64_t)ts->tv_nsec + clock_offset_ns % 1000000000;

		ts->tv_sec += (time_t)(clock_offset_ns / 1000000000 + ns / 1000000000);
		ts->tv_nsec = (long)(ns % 1000000000);
	}
	return rc;
}

/* --- byte strings ---------------------------------------------------- */

/* A growable byte string; [off, len) not consumed yet when used as a queue. */
struct bytes {
	uint8_t *p;
	size_t len, cap, off;
};

static void bytes_add(struct bytes *b, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static size_t bytes_pending(const struct bytes *b)
{
	return b->len - b->off;
}

static void bytes_consume(struct bytes *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void bytes_reset(struct bytes *b)
{
	b->off = b->len = 0;
	/* Keep small allocations for the next input; drop big ones. */
	if (b->cap > (1 << 20)) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

/* --- state ----------------------------------------------------------- */

/* Everything set up once. */
static struct {
	char dir[64];
	struct config cfg[4];          /* one per auth mode */
	struct auth_material *auth[4];
	struct proxy proxy;
	struct address listen[CONFIG_MAX_LISTEN];   /* port resolved by the first worker */
	struct config cfg_default;     /* without the small limits */
	struct address broker, broker_tcp, broker_full, nowhere;
	struct brokers *pair[3];       /* opts2 bit 4: nowhere, then broker / broker_tcp / broker_full */
	int lfd, lfd_tcp;              /* the broker's listening sockets */
	int lfd_full, fill_fd;         /* a listener whose queue |fill_fd| fills */
	struct pool *pool;             /* auth checks in mode 3 */
	SSL_CTX *server_ctx[2];        /* [1] asks for client certificates (mode 2) */
	X509 *client_cert[4];          /* by opts2, [0] none */
	EVP_PKEY *client_key;
	SSL_CTX *client_ctx;
	SSL_SESSION *resume[2];        /* [0] TLS 1.3, [1] TLS 1.2 */
} g;

/* Queues and logs kept from one input to the next (their memory only). */
struct logs {
	struct bytes c_out;       /* ciphertext/raw bytes waiting for the client socket */
	struct bytes c_hold;      /* ciphertext held back by C_HOLD */
	struct bytes b_out;       /* broker bytes waiting for the socket */
	/* What each side sent and received, for the stream checks. */
	struct bytes c_sent, c_got, b_sent, b_got;
};

/* One input. */
static struct {
	struct worker w;
	int auth_mode, lazy, small_bufs;
	int cfd;                  /* client socket, -1 once closed */
	int c_shut, c_paused;
	SSL *ssl;                 /* the client's, over memory BIOs */
	BIO *rbio, *wbio;         /* owned by ssl */
	int hs_tried, hs_done, c_tls_dead;
	int blfd;                 /* the broker listener of this input */
	int bfd;                  /* accepted broker socket, -1 if none */
	int b_shut, b_paused, b_closed;
	size_t traffic;
	int up_lost, down_lost;   /* a log outgrew its cap: skip that check */
	int ws;                   /* on the WebSocket listener (opts2 bit 5) */
	int fd_mark;              /* lowest free descriptor before the input */
	struct sockaddr_storage peer;   /* the client's address as the proxy sees it */
	struct logs q;
} r;

/* --- set-up ---------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_session: %s\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

static void dir_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", g.dir, name);
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	dir_path(path, sizeof(path), name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		die(path);
}

static EVP_PKEY *make_key(void)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	EVP_PKEY *pkey = EVP_PKEY_new();

	if (ec == NULL || pkey == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec))
		die("cannot make a key");
	return pkey;
}

/* A P-256 certificate for |key| named |cn|, valid from yesterday for ten
 * years, signed by |issuer_key| as |issuer| (NULL: self-signed); |ca| marks
 * it as a CA. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
	static long serial;
	X509 *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext = NULL;

	if (x == NULL)
		die("X509_new");
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650) ||
	    !X509_set_pubkey(x, key))
		die("cannot make a certificate");
	if (ca) {
		ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
		if (ext == NULL || !X509_add_ext(x, ext, -1))
			die("basicConstraints");
		X509_EXTENSION_free(ext);
	}
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		die("X509_sign");
	return x;
}

static void write_pem_cert(const char *name, X509 *x)
{
	char path[128];
	FILE *f;

	dir_path(path, sizeof(path), name);
	f = fopen(path, "w");
	if (f == NULL || !PEM_write_X509(f, x) || fclose(f) != 0)
		die(path);
}

/* The server's certificate and key, the client CA, and the certificates a
 * client may present. */
static void make_pki(void)
{
	EVP_PKEY *server_key = make_key(), *ca_key = make_key(), *other_key = make_key();
	X509 *server = make_cert(server_key, "localhost", NULL, NULL, 0);
	X509 *ca = make_cert(ca_key, "fuzz client CA", NULL, NULL, 1);
	X509 *other = make_cert(other_key, "unknown CA", NULL, NULL, 1);
	char path[128];
	FILE *f;

	write_pem_cert("cert.pem", server);
	dir_path(path, sizeof(path), "key.pem");
	f = fopen(path, "w");
	if (f == NULL || !PEM_write_PrivateKey(f, server_key, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f) != 0)
		die(path);
	write_pem_cert("ca.pem", ca);
	g.client_key = make_key();
	g.client_cert[1] = make_cert(g.client_key, "device-1", ca, ca_key, 0);
	g.client_cert[2] = make_cert(g.client_key, "dev\001ice\"1", ca, ca_key, 0);
	g.client_cert[3] = make_cert(g.client_key, "device-1", other, other_key, 0);
	X509_free(server);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(server_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
}

static void cleanup_dir(void)
{
	static const char *const names[] = { "cert.pem", "key.pem", "ca.pem", "users", "jwt.key",
	                                     "broker.pw", "broker.sock" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		dir_path(path, sizeof(path), names[i]);
		unlink(path);
	}
	rmdir(g.dir);
}

/* The configuration of auth mode |mode| (with small limits when |small|),
 * parsed by config_load from the command line the daemon would be started
 * with. */
static void load_config(struct config *cfg, int mode, int small)
{
	char cert[128], key[128], ca[128], users[128], jwt[128], pw[128], upstream[160];
	char *argv[40];
	int argc = 0;

	dir_path(cert, sizeof(cert), "cert.pem");
	dir_path(key, sizeof(key), "key.pem");
	dir_path(ca, sizeof(ca), "ca.pem");
	dir_path(users, sizeof(users), "users");
	dir_path(jwt, sizeof(jwt), "jwt.key");
	dir_path(pw, sizeof(pw), "broker.pw");
	snprintf(upstream, sizeof(upstream), "unix:%s/broker.sock", g.dir);
#define ARG(a) (argv[argc++] = (char *)(a))
	ARG("mqtls");
	ARG("--listen"), ARG("127.0.0.1:0");
	ARG("--ws-listen"), ARG("127.0.0.1:0");
	ARG("--cert"), ARG(cert);
	ARG("--key"), ARG(key);
	ARG("--upstream"), ARG(upstream);
	ARG("--workers"), ARG("1");
	if (small) {
		ARG("--max-connect-size"), ARG("512");
		ARG("--max-buffer"), ARG("16384");
	}
	ARG("--auth-fail-delay"), ARG("0");
	ARG("--max-conn-per-ip"), ARG("1");
	ARG("--max-conn-per-identity"), ARG("1");
	ARG("--log-level"), ARG("error");
	switch (mode) {
	case 1:
		ARG("--users"), ARG(users);
		ARG("--allow-anonymous");
		ARG("--upstream-username"), ARG("svc");
		break;
	case 2:
		ARG("--client-ca"), ARG(ca);
		ARG("--identity-as-username"), ARG("cn");
		ARG("--users"), ARG(users);
		ARG("--jwt-keys"), ARG(jwt);
		ARG("--auth"), ARG("cert,jwt,password");
		ARG("--upstream-password-file"), ARG(pw);
		break;
	case 3:
		ARG("--users"), ARG(users);
		ARG("--auth-fail-delay"), ARG("100");
		break;
	default:
		break;
	}
#undef ARG
	argv[argc] = NULL;
	if (config_load(cfg, argc, argv) != CONFIG_OK)
		die("config_load");
}

static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
	int i = SSL_version(ssl) == TLS1_2_VERSION;

	if (log_enabled(LOG_DEBUG))
		fprintf(stderr, "fuzz_session: new %s session, ticket %d\n", SSL_get_version(ssl),
		        SSL_SESSION_has_ticket(sess));
	/* The server keeps no session cache: only a ticket resumes. */
	if (!SSL_SESSION_has_ticket(sess))
		return 0;
	SSL_SESSION_free(g.resume[i]);
	g.resume[i] = sess;
	return 1;   /* the reference is ours now */
}

static void seconds(struct timeval *tv, long s)
{
	tv->tv_sec = s;
	tv->tv_usec = 0;
}

static void setup(void)
{
	char err[512];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct config *c = &g.cfg[0];
	struct tls_server_opts o = { 0 };
	const char *lvl = getenv("MQTLS_FUZZ_LOG");
	enum log_level level = LOG_ERROR;

	real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	signal(SIGPIPE, SIG_IGN);
	/* Pool threads hand finished checks back with event_active. */
	if (evthread_use_pthreads() != 0)
		die("evthread_use_pthreads");
	if (lvl == NULL || !log_level_parse(lvl, &level))
		level = LOG_ERROR;
	log_set_level(level);

	snprintf(g.dir, sizeof(g.dir), "/tmp/fuzz_session.XXXXXX");
	if (mkdtemp(g.dir) == NULL)
		die("mkdtemp");
	atexit(cleanup_dir);
	make_pki();
	/* User "u", password "p": one round of salted SHA-512 (mosquitto's
	 * $6$), cheap enough to check on the loop. User "slow", password
	 * "slowpw": PBKDF2-SHA512 with 400 rounds ($7$), estimated above the
	 * cost that moves a check to the pool. */
	write_file("users", "u:$6$c2FsdHNhbHQ=$REbJ9dRjjVGODpIUtSS5KegNNvxTTTntoCEixDbNPqypH18o"
	                    "kAUa6fdk6KbLV6ZjGTrGhy0yijYSyCl/EK3IuA==\n"
	                    "slow:$7$400$c2xvd3NhbHRzbG93$/0us/AMwVIsklPzPazXmC6NYfkdWI42GLYE8TdVSo2Got"
	                    "iM+USLZcieulJLdBp1sqk8LiI5IQN9b8JXVpOwZ7g==\n");
	write_file("jwt.key", "fuzz-session-hmac-secret-0123456789abcdef");
	write_file("broker.pw", "brokerpass\n");
	load_config(&g.cfg_default, 0, 0);
	for (int i = 0; i < 4; i++) {
		load_config(&g.cfg[i], i, 1);
		g.auth[i] = auth_material_load(&g.cfg[i], err, sizeof(err));
		if (g.auth[i] == NULL)
			die(err);
	}

	/* The broker: a unix socket listener we accept from ourselves. */
	dir_path(sun.sun_path, sizeof(sun.sun_path), "broker.sock");
	g.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g.lfd < 0 || bind(g.lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(g.lfd, 64) != 0)
		die("broker listener");
	if (!address_parse(c->upstream[0], 1, &g.broker, err, sizeof(err)))
		die(err);
	{
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr = { htonl(INADDR_LOOPBACK) } };
		socklen_t len = sizeof(in);

		g.lfd_tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (g.lfd_tcp < 0 || bind(g.lfd_tcp, (struct sockaddr *)&in, sizeof(in)) != 0 ||
		    listen(g.lfd_tcp, 64) != 0 ||
		    getsockname(g.lfd_tcp, (struct sockaddr *)&g.broker_tcp.sa, &len) != 0)
			die("broker TCP listener");
		g.broker_tcp.len = len;
	}
	{
		/* A broker that never accepts: one connection fills a queue of
		 * one, and the kernel drops the SYNs of the next ones. */
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr = { htonl(INADDR_LOOPBACK) } };
		socklen_t len = sizeof(in);

		g.lfd_full = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (g.lfd_full < 0 || bind(g.lfd_full, (struct sockaddr *)&in, sizeof(in)) != 0 ||
		    listen(g.lfd_full, 0) != 0 ||
		    getsockname(g.lfd_full, (struct sockaddr *)&g.broker_full.sa, &len) != 0)
			die("broker listener with a full queue");
		g.broker_full.len = len;
		g.fill_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (g.fill_fd < 0 || connect(g.fill_fd, (struct sockaddr *)&g.broker_full.sa, len) != 0)
			die("filling the broker's accept queue");
	}
	{
		char spec[160];

		snprintf(spec, sizeof(spec), "unix:%s/nobody.sock", g.dir);
		if (!address_parse(spec, 1, &g.nowhere, err, sizeof(err)))
			die(err);
	}
	for (int i = 0; i < config_n_listeners(c); i++) {
		if (!address_parse(config_listener(c, i), 0, &g.listen[i], err, sizeof(err)))
			die(err);
	}

	/* The broker sets of opts2 bit 4, as main() builds one from --upstream
	 * (its health thread is not started: no probe disturbs a replay). */
	{
		const struct address *second[3] = { &g.broker, &g.broker_tcp, &g.broker_full };
		char first[160], other[160];
		struct config two;

		address_format((const struct sockaddr *)&g.nowhere.sa, g.nowhere.len, first, sizeof(first));
		for (int i = 0; i < 3; i++) {
			address_format((const struct sockaddr *)&second[i]->sa, second[i]->len, other, sizeof(other));
			memset(&two, 0, sizeof(two));
			two.upstream[0] = first;
			two.upstream[1] = other;
			two.n_upstream = 2;
			two.upstream_balance = (char *)"first";
			if ((g.pair[i] = brokers_new(&two, err, sizeof(err))) == NULL)
				die(err);
		}
	}

	/* struct proxy as main() fills it. */
	pthread_mutex_init(&g.proxy.lock, NULL);
	g.proxy.cfg = c;
	g.proxy.upstream = g.broker;
	g.proxy.max_buffer = (size_t)c->max_buffer;
	g.proxy.max_connect_size = (size_t)c->max_connect_size;
	seconds(&g.proxy.handshake_timeout, c->handshake_timeout);
	seconds(&g.proxy.hello_timeout, c->hello_timeout < c->handshake_timeout ? c->hello_timeout
	                                                                        : c->handshake_timeout);
	seconds(&g.proxy.connect_timeout, c->connect_timeout);
	seconds(&g.proxy.upstream_timeout, c->upstream_timeout);
	seconds(&g.proxy.linger_timeout, 5);
	/* The server contexts as main()'s build_ssl_ctx makes them: without
	 * and (mode 2) with client certificates. */
	for (int i = 0; i < 2; i++) {
		const struct config *ci = &g.cfg[i ? 2 : 0];

		o.cert_file = ci->cert[0];    /* one --cert/--key pair here */
		o.key_file = ci->key[0];
		o.client_ca_file = ci->client_ca;
		o.client_cert = ci->cert_mode == CLIENT_CERT_REQUIRED ? TLS_CLIENT_CERT_REQUIRED
		              : ci->cert_mode == CLIENT_CERT_OPTIONAL ? TLS_CLIENT_CERT_OPTIONAL
		                                                      : TLS_CLIENT_CERT_NONE;
		g.server_ctx[i] = tls_server_ctx_new(&o, err, sizeof(err));
		if (g.server_ctx[i] == NULL)
			die(err);
	}
	/* One pool thread, used by mode 3 only; the failure-delay table is
	 * made per input. */
	g.pool = pool_new(1);
	if (g.pool == NULL)
		die("pool_new");

	g.client_ctx = SSL_CTX_new(TLS_method());
	if (g.client_ctx == NULL)
		die("client context");
	SSL_CTX_set_verify(g.client_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(g.client_ctx, SSL_SESS_CACHE_CLIENT);
	SSL_CTX_sess_set_new_cb(g.client_ctx, keep_session);
	{
		static const uint8_t alpn[] = { 4, 'm', 'q', 't', 't' };

		SSL_CTX_set_alpn_protos(g.client_ctx, alpn, sizeof(alpn));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setup();
	return 0;
}

/* A minimal upgrade for the WebSocket listener (opts2 bit 5). */
static const char ws_request[] = "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/* Writes the |n| (< 126) bytes at |p| as one masked binary client frame
 * (6 + |n| bytes) into |out|. */
static void ws_mask_frame(uint8_t *out, const uint8_t *p, size_t n)
{
	static const uint8_t mask[4] = { 0x3a, 0x91, 0x0c, 0xe7 };

	out[0] = 0x80 | WS_OP_BINARY;
	out[1] = (uint8_t)(0x80 | n);
	memcpy(out + 2, mask, 4);
	for (size_t i = 0; i < n; i++)
		out[6 + i] = p[i] ^ mask[i & 3];
}

/* --- the peers ------------------------------------------------------- */

static void record(struct bytes *log, int *lost, const void *data, size_t n)
{
	if (*lost || log->len + n > RECORD_LOG_CAP) {
		*lost = 1;
		return;
	}
	bytes_add(log, data, n);
}

/* Writes what the socket takes from |q|. Returns the byte count. */
static size_t send_queue(int fd, struct bytes *q)
{
	size_t total = 0;

	while (fd >= 0 && bytes_pending(q) > 0) {
		ssize_t n = send(fd, q->p + q->off, bytes_pending(q), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			break;
		bytes_consume(q, (size_t)n);
		total += (size_t)n;
	}
	return total;
}

/* Moves the client SSL's output (ciphertext) to |q|. */
static void take_tls_output(struct bytes *q)
{
	uint8_t buf[4096];
	int n;

	while ((n = BIO_read(r.wbio, buf, sizeof(buf))) > 0)
		bytes_add(q, buf, (size_t)n);
}

/* Reads what the proxy sent the client and decrypts it. */
static size_t client_read(void)
{
	uint8_t buf[16384];
	size_t total = 0;
	ssize_t n;

	if (r.cfd < 0 || r.c_paused)
		return 0;
	while ((n = recv(r.cfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		BIO_write(r.rbio, buf, (int)n);
		total += (size_t)n;
		if (total >= 256 * 1024)
			break;
	}
	if (!r.hs_done || r.c_tls_dead)
		return total;
	for (;;) {
		int got = SSL_read(r.ssl, buf, sizeof(buf));

		if (got > 0) {
			record(&r.q.c_got, &r.down_lost, buf, (size_t)got);
			continue;
		}
		if (SSL_get_error(r.ssl, got) != SSL_ERROR_WANT_READ)
			r.c_tls_dead = 1;   /* close_notify, an alert, or garbage */
		break;
	}
	ERR_clear_error();
	/* A KeyUpdate from the proxy is answered. */
	take_tls_output(&r.q.c_out);
	return total;
}

static size_t broker_accept_and_read(void)
{
	uint8_t buf[16384];
	size_t total = 0;
	ssize_t n;

	if (r.bfd < 0 && !r.b_closed && r.blfd >= 0) {
		r.bfd = accept4(r.blfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (r.bfd >= 0 && r.small_bufs) {
			int small = SMALL_BUF;

			setsockopt(r.bfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			setsockopt(r.bfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		}
	}
	if (r.bfd < 0 || r.b_paused)
		return 0;
	while ((n = recv(r.bfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		record(&r.q.b_got, &r.up_lost, buf, (size_t)n);
		total += (size_t)n;
		if (total >= 256 * 1024)
			break;
	}
	return total;
}

/* Real monotonic milliseconds, whatever the script did to the clock. */
static uint64_t real_ms(void)
{
	struct timespec ts;

	if (real_clock_gettime)
		real_clock_gettime(CLOCK_MONOTONIC, &ts);
	else
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Steps the loop until the auth checks on the pool are home. A check takes
 * about a millisecond; the bound is generous for a loaded machine. */
static void wait_auth_jobs(void)
{
	uint64_t until = real_ms() + 5000;

	while (r.w.auth_jobs > 0 && real_ms() < until) {
		usleep(50);
		event_base_loop(r.w.base, EVLOOP_NONBLOCK);
	}
	if (r.w.auth_jobs > 0) {
		fprintf(stderr, "fuzz_session: %ld auth check(s) did not come back from the pool in 5 s\n",
		        r.w.auth_jobs);
		abort();
	}
}

/* Steps the worker's loop and lets both peers move bytes until nothing
 * moves any more (bounded). */
static void pump(void)
{
	for (int i = 0; i < MAX_ROUNDS; i++) {
		size_t moved = 0;

		event_base_loop(r.w.base, EVLOOP_NONBLOCK);
		wait_auth_jobs();
		moved += send_queue(r.cfd, &r.q.c_out);
		moved += send_queue(r.bfd, &r.q.b_out);
		moved += client_read();
		moved += broker_accept_and_read();
		if (moved == 0)
			break;
	}
}

/* Time passes (saturating at CLOCK_OFFSET_MAX). */
static void advance(int64_t ms)
{
	int64_t ns = ms * 1000000;

	clock_offset_ns = ns > CLOCK_OFFSET_MAX - clock_offset_ns ? CLOCK_OFFSET_MAX
	                                                          : clock_offset_ns + ns;
}

static void client_handshake(void)
{
	if (r.hs_tried)
		return;
	r.hs_tried = 1;
	for (int i = 0; i < MAX_ROUNDS && r.cfd >= 0; i++) {
		int rc = SSL_do_handshake(r.ssl);

		take_tls_output(&r.q.c_out);
		if (rc == 1) {
			r.hs_done = 1;
			break;
		}
		if (SSL_get_error(r.ssl, rc) != SSL_ERROR_WANT_READ)
			break;
		pump();
	}
	ERR_clear_error();
	if (!r.hs_done)
		r.c_tls_dead = 1;
	if (log_enabled(LOG_DEBUG))
		fprintf(stderr, "fuzz_session: client handshake %s, %s\n", r.hs_done ? "done" : "failed",
		        SSL_session_reused(r.ssl) ? "resumed" : "full");
}

/* Encrypts |n| bytes of |data| in records of at most 16 KB onto |q|. */
static void client_tls_write(const uint8_t *data, size_t n, struct bytes *q)
{
	client_handshake();
	if (!r.hs_done || r.c_tls_dead)
		return;
	while (n > 0) {
		int chunk = n > MAX_RECORD ? MAX_RECORD : (int)n;
		int w = SSL_write(r.ssl, data, chunk);

		if (w <= 0) {
			ERR_clear_error();
			break;
		}
		record(&r.q.c_sent, &r.up_lost, data, (size_t)w);
		data += w;
		n -= (size_t)w;
	}
	take_tls_output(q);
}

static void broker_send(const uint8_t *data, size_t n)
{
	if (r.bfd < 0 || r.b_shut)
		return;
	bytes_add(&r.q.b_out, data, n);
	record(&r.q.b_sent, &r.down_lost, data, n);
}

static void client_close(void)
{
	if (r.cfd >= 0) {
		send_queue(r.cfd, &r.q.c_out);
		close(r.cfd);
		r.cfd = -1;
	}
}

static void broker_close(void)
{
	if (r.bfd >= 0) {
		send_queue(r.bfd, &r.q.b_out);
		close(r.bfd);
		r.bfd = -1;
	}
	r.b_closed = 1;   /* a later connection from the proxy is not accepted */
}

/* --- the script ------------------------------------------------------ */

struct reader {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct reader *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static size_t take_len(struct reader *in)
{
	size_t n = take_u8(in);

	if (n == 0xff) {
		n = (size_t)take_u8(in) << 8;
		n |= take_u8(in);
	}
	return n;
}

static const uint8_t *take_data(struct reader *in, size_t *n)
{
	const uint8_t *p;

	*n = take_len(in);
	p = in->p;
	if (*n > in->left)
		*n = in->left;
	in->p += *n;
	in->left -= *n;
	return p;
}

/* |data| repeated to |*total| bytes (cut to the traffic budget). */
static uint8_t *repeat(const uint8_t *data, size_t n, size_t *total)
{
	uint8_t *buf;

	if (*total > MAX_TRAFFIC - r.traffic)
		*total = MAX_TRAFFIC - r.traffic;
	if (n == 0 || *total == 0)
		return NULL;
	buf = malloc(*total);
	if (buf == NULL)
		abort();
	for (size_t i = 0; i < *total; i++)
		buf[i] = data[i % n];
	r.traffic += *total;
	return buf;
}

static void run_op(struct reader *in)
{
	static const uint8_t connect311[] = { 0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	                                      0x02, 0x00, 0x3c, 0x00, 0x02, 'c', '1' };
	static const int64_t steps_ms[] = { 1, 1000, 2100, 5100, 10100, 31000, 61000,
	                                    100LL * 366 * 86400 * 1000 };
	uint8_t code = take_u8(in);
	const uint8_t *d;
	size_t n, total;
	uint8_t *buf;

	switch (code & 15) {
	case 0:
	case 1:
		d = take_data(in, &n);
		if (n > 0 && r.traffic + n <= MAX_TRAFFIC) {
			r.traffic += n;
			client_tls_write(d, n, (code & 15) == 0 ? &r.q.c_out : &r.q.c_hold);
		}
		break;
	case 2:
		n = take_len(in);
		if (n == 0 || n > bytes_pending(&r.q.c_hold))
			n = bytes_pending(&r.q.c_hold);
		if (n > 0) {
			bytes_add(&r.q.c_out, r.q.c_hold.p + r.q.c_hold.off, n);
			bytes_consume(&r.q.c_hold, n);
		}
		break;
	case 3:
		d = take_data(in, &n);
		if (!r.c_shut)
			bytes_add(&r.q.c_out, d, n);
		break;
	case 4:
		d = take_data(in, &n);
		broker_send(d, n);
		break;
	case 5:
	case 6:
		total = ((size_t)take_u8(in) + 1) * 256;
		d = take_data(in, &n);
		buf = repeat(d, n, &total);
		if (buf && (code & 15) == 5)
			client_tls_write(buf, total, &r.q.c_out);
		else if (buf)
			broker_send(buf, total);
		free(buf);
		break;
	case 7:
		r.c_paused = !r.c_paused;
		break;
	case 8:
		r.b_paused = !r.b_paused;
		break;
	case 9:
		client_handshake();
		if (r.hs_done && !r.c_tls_dead) {
			(void)SSL_shutdown(r.ssl);
			ERR_clear_error();
			take_tls_output(&r.q.c_out);
		}
		break;
	case 10:
		if (r.cfd >= 0 && !r.c_shut) {
			send_queue(r.cfd, &r.q.c_out);
			shutdown(r.cfd, SHUT_WR);
			r.c_shut = 1;
		}
		break;
	case 11:
		client_close();
		break;
	case 12:
		if (r.bfd >= 0 && !r.b_shut) {
			send_queue(r.bfd, &r.q.b_out);
			shutdown(r.bfd, SHUT_WR);
			r.b_shut = 1;
		}
		break;
	case 13:
		broker_close();
		break;
	case 14:
		advance(steps_ms[take_u8(in) & 7]);
		break;
	default:
		switch (take_u8(in) & 3) {
		case 0:
			client_handshake();
			if (r.hs_done && !r.c_tls_dead && SSL_version(r.ssl) == TLS1_3_VERSION &&
			    SSL_key_update(r.ssl, SSL_KEY_UPDATE_REQUESTED))
				take_tls_output(&r.q.c_out);
			ERR_clear_error();
			break;
		case 1:
			worker_request_stop(&r.w);
			break;
		case 2:
			pump();
			break;
		default:
			if (r.ws) {
				uint8_t b[sizeof(ws_request) - 1 + 6 + sizeof(connect311)];

				memcpy(b, ws_request, sizeof(ws_request) - 1);
				ws_mask_frame(b + sizeof(ws_request) - 1, connect311, sizeof(connect311));
				client_tls_write(b, sizeof(b), &r.q.c_out);
			} else {
				client_tls_write(connect311, sizeof(connect311), &r.q.c_out);
			}
			break;
		}
		break;
	}
	if (!(code & 0x10))
		pump();
}

/* --- checks ---------------------------------------------------------- */

/* The MQTT bytes a WebSocket client's stream |in| carries: after the
 * request head (its first blank line), the payloads of its frames up to
 * the first close or error, as mqtls's own decoder reads them. */
static void ws_client_mqtt(const struct bytes *in, struct bytes *out)
{
	const uint8_t *end = in->len >= 4 ? memmem(in->p, in->len, "\r\n\r\n", 4) : NULL;
	struct ws_decoder d;
	struct ws_control ctl;
	struct ws_region reg;
	size_t at;

	out->len = 0;
	if (end == NULL)
		return;
	at = (size_t)(end - in->p) + 4;
	bytes_add(out, in->p + at, in->len - at);
	ws_decoder_init(&d, (uint64_t)268435455 + 5);
	reg = (struct ws_region){ out->p, out->len, 0, 0 };
	for (;;) {
		enum ws_event ev = ws_decode(&d, &reg, &ctl);

		if (ev != WS_EV_PING && ev != WS_EV_PONG)
			break;
	}
	out->len = reg.out;
}

/* The MQTT bytes the client got from a WebSocket listener: after a 101,
 * the payloads of binary frames; each frame the server sent is checked to
 * be whole-message (FIN), unmasked, binary or control. */
static void ws_server_mqtt(const struct bytes *in, struct bytes *out)
{
	static const char ok[] = "HTTP/1.1 101 ";
	const uint8_t *end = in->len >= 4 ? memmem(in->p, in->len, "\r\n\r\n", 4) : NULL;
	size_t at;

	out->len = 0;
	if (end == NULL || in->len < sizeof(ok) - 1 || memcmp(in->p, ok, sizeof(ok) - 1) != 0)
		return;
	at = (size_t)(end - in->p) + 4;
	while (in->len - at >= 2) {
		const uint8_t *f = in->p + at;
		size_t n = f[1] & 0x7f, h = 2;

		if ((f[0] & 0xf0) != 0x80 || (f[1] & 0x80) ||
		    ((f[0] & 0x0f) != WS_OP_BINARY && (f[0] & 0x0f) < WS_OP_CLOSE)) {
			fprintf(stderr, "fuzz_session: mqtls sent a frame it may not (%02x %02x)\n", f[0], f[1]);
			abort();
		}
		if (n == 127) {
			fprintf(stderr, "fuzz_session: mqtls sent a frame over 64 KiB\n");
			abort();
		}
		if (n == 126) {
			if (in->len - at < 4)
				break;
			n = (size_t)f[2] << 8 | f[3];
			h = 4;
		}
		/* One frame per TLS record (proxy/ws_forward.c). */
		if (h + n > 16384) {
			fprintf(stderr, "fuzz_session: mqtls sent a frame larger than a TLS record\n");
			abort();
		}
		if (in->len - at < h + n)
			break;
		if ((f[0] & 0x0f) == WS_OP_BINARY)
			bytes_add(out, f + h, n);
		at += h + n;
	}
}

/* A packet mqtls itself sends a client, at the end of what it got: a
 * refusing CONNACK (3.x: 20 02 00 c, 5.0: 20 03 00 c 00, as the whole
 * stream) or a 5.0 DISCONNECT (e0 01 c). Returns its length or 0. */
static size_t own_packet_tail(const struct bytes *b)
{
	const uint8_t *t;

	if (b->len >= 3) {
		t = b->p + b->len - 3;
		if (t[0] == 0xe0 && t[1] == 0x01)
			return 3;
	}
	if (b->len == 4 && b->p[0] == 0x20 && b->p[1] == 0x02 && b->p[2] == 0)
		return 4;
	if (b->len == 5 && b->p[0] == 0x20 && b->p[1] == 0x03 && b->p[2] == 0 && b->p[4] == 0)
		return 5;
	return 0;
}

static int is_prefix(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == 0 || (alen <= blen && memcmp(a, b, alen) == 0);
}

static void check_streams(void)
{
	static struct bytes ws_up, ws_down;   /* decoded WebSocket streams, reused */
	const struct bytes *sent = &r.q.c_sent, *got = &r.q.b_got;

	if (r.ws) {
		ws_client_mqtt(&r.q.c_sent, &ws_up);
		ws_server_mqtt(&r.q.c_got, &ws_down);
		sent = &ws_up;
	}

	/* Client -> broker. */
	if (!r.up_lost && got->len > 0) {
		if (r.auth_mode == 0) {
			if (!is_prefix(got->p, got->len, sent->p, sent->len)) {
				fprintf(stderr, "fuzz_session: the broker got %zu bytes the client did not send\n",
				        got->len);
				abort();
			}
		} else {
			/* The first packet is mqtls's own rewritten CONNECT; what
			 * follows is the client's stream after its CONNECT. */
			struct mqtt_frame f, cf;
			struct mqtt_connect c;

			if (mqtt_frame_parse(got->p, got->len, SIZE_MAX, &f) == MQTT_FRAME_OK &&
			    f.total_len <= got->len) {
				if (f.type != MQTT_CONNECT ||
				    mqtt_connect_parse(got->p, f.total_len, &c, NULL) != MQTT_CONNECT_OK) {
					fprintf(stderr, "fuzz_session: the broker's first packet is not a valid CONNECT\n");
					abort();
				}
				if (sent->len == 0 ||
				    mqtt_frame_parse(sent->p, sent->len, SIZE_MAX, &cf) != MQTT_FRAME_OK ||
				    cf.total_len > sent->len ||
				    !is_prefix(got->p + f.total_len, got->len - f.total_len,
				               sent->p + cf.total_len, sent->len - cf.total_len)) {
					fprintf(stderr, "fuzz_session: the broker got bytes after the CONNECT that the client did not send\n");
					abort();
				}
			}
		}
	}
	/* Broker -> client. */
	sent = &r.q.b_sent;
	got = r.ws ? &ws_down : &r.q.c_got;
	if (!r.down_lost && got->len > 0) {
		size_t tail = own_packet_tail(got);

		if (!is_prefix(got->p, got->len, sent->p, sent->len) &&
		    !(tail && is_prefix(got->p, got->len - tail, sent->p, sent->len))) {
			fprintf(stderr, "fuzz_session: the client got %zu bytes that are not the broker's (%zu sent)\n",
			        got->len, sent->len);
			abort();
		}
	}
}

/* Everything the session counted in the connection limits was given back:
 * its address and every identity it could have had are free again. */
static void check_limits(void)
{
	static const char *const ids[] = { "u", "slow", "alice", "device-1", "dev\\x01ice\\\"1" };
	struct limits *l = g.proxy.limits;
	enum limit_verdict v = limits_conn_begin(l, (const struct sockaddr *)&r.peer, 0);

	if (v != LIMIT_OK) {
		fprintf(stderr, "fuzz_session: the client's address is still counted (verdict %d)\n", v);
		abort();
	}
	limits_conn_end(l, (const struct sockaddr *)&r.peer);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (!limits_identity_take(l, ids[i], strlen(ids[i]))) {
			fprintf(stderr, "fuzz_session: identity \"%s\" is still counted\n", ids[i]);
			abort();
		}
		limits_identity_give(l, ids[i], strlen(ids[i]));
	}
}

/* --- one input ------------------------------------------------------- */

static void start(uint8_t opts, uint8_t opts2)
{
	/* The address a socketpair client is said to come from. */
	static const struct sockaddr_in peer = { .sin_family = AF_INET,
	                                         .sin_port = 0x3930,    /* 12345 */
	                                         .sin_addr = { 0x010200c0 } };   /* 192.0.2.1 */
	const struct address *a = &g.listen[(opts2 >> 5) & 1];
	char err[256];
	int one = 1, small = SMALL_BUF, sv[2];
	SSL_SESSION *resume;

	/* Taken per input: between inputs libFuzzer itself may open some
	 * (the symbolizer's pipes). */
	r.fd_mark = dup(0);
	if (r.fd_mark < 0)
		die("dup");
	close(r.fd_mark);
	r.auth_mode = opts & 3;
	r.lazy = (opts >> 3) & 1;
	r.small_bufs = !((opts >> 5) & 1);
	r.cfd = r.bfd = -1;
	r.ws = (opts2 >> 5) & 1;
	/* The proxy is shared and read-only while a worker runs; between
	 * inputs it is ours to point at this input's configuration. */
	g.proxy.cfg = &g.cfg[r.auth_mode];
	g.proxy.auth = g.auth[r.auth_mode];
	g.proxy.upstream = (opts & 0x10) ? g.nowhere : (opts2 & 8) ? g.broker_full
	                 : (opts & 0x80) ? g.broker_tcp : g.broker;
	r.blfd = (opts & 0x10) || (opts2 & 8) ? -1 : (opts & 0x80) ? g.lfd_tcp : g.lfd;
	g.proxy.brokers = NULL;
	if ((opts2 & 0x10) && !(opts & 0x10)) {
		struct brokers *b = g.pair[(opts2 & 8) ? 2 : (opts & 0x80) ? 1 : 0];

		/* Every input starts with both brokers up, as a replay must. */
		brokers_connected(b, 0);
		brokers_connected(b, 1);
		g.proxy.brokers = b;
	}
	g.proxy.max_connect_size = (size_t)((opts2 & 4) ? &g.cfg_default : &g.cfg[0])->max_connect_size;
	g.proxy.max_buffer = (size_t)((opts2 & 4) ? &g.cfg_default : &g.cfg[0])->max_buffer;
	g.proxy.pool = r.auth_mode == 3 ? g.pool : NULL;
	g.proxy.ssl_ctx = g.server_ctx[r.auth_mode == 2];
	g.proxy.identity_kind = r.auth_mode == 2 ? TLS_ID_CN : TLS_ID_NONE;
	g.proxy.faildelay = faildelay_new();
	if (g.proxy.faildelay == NULL)
		die("faildelay");
	{
		int err_limits = 0;

		g.proxy.limits = limits_new(g.proxy.cfg, &err_limits);
		if (g.proxy.limits == NULL)
			die("limits_new");
	}
	clock_offset_ns = 0;

	if (!worker_init(&r.w, 0, &g.proxy, g.listen, err, sizeof(err)))
		die(err);

	if ((opts & 0x40) || r.ws) {
		r.cfd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (r.cfd < 0)
			die("client socket");
		setsockopt(r.cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (r.small_bufs) {
			setsockopt(r.cfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			setsockopt(r.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		}
		if (connect(r.cfd, (const struct sockaddr *)&a->sa, a->len) != 0 && errno != EINPROGRESS)
			die("client connect");
		memcpy(&r.peer, &a->sa, a->len);   /* 127.0.0.1; the port does not count */
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
			die("socketpair");
		if (r.small_bufs) {
			/* A unix socket's sender alone bounds what is in flight. */
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
			setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		}
		r.cfd = sv[0];
		memcpy(&r.peer, &peer, sizeof(peer));
		if (worker_adopt(&r.w, sv[1], (const struct sockaddr *)&peer, sizeof(peer)) == NULL)
			die("worker_adopt");
	}

	r.ssl = SSL_new(g.client_ctx);
	r.rbio = BIO_new(BIO_s_mem());
	r.wbio = BIO_new(BIO_s_mem());
	if (r.ssl == NULL || r.rbio == NULL || r.wbio == NULL)
		die("client SSL");
	SSL_set_bio(r.ssl, r.rbio, r.wbio);
	SSL_set_connect_state(r.ssl);
	SSL_set_tlsext_host_name(r.ssl, "localhost");
	if ((opts >> 2) & 1)
		SSL_set_max_proto_version(r.ssl, TLS1_2_VERSION);
	resume = g.resume[(opts >> 2) & 1];
	if (resume)
		SSL_set_session(r.ssl, resume);
	if (g.client_cert[opts2 & 3] &&
	    (!SSL_use_certificate(r.ssl, g.client_cert[opts2 & 3]) ||
	     !SSL_use_PrivateKey(r.ssl, g.client_key)))
		die("client certificate");
	pump();   /* the worker accepts (TCP) */
	if (!r.lazy) {
		/* The server finishes too, and a TLS 1.3 ticket arrives for the
		 * next input to resume with. (Lazily, the first bytes ride with
		 * the client's Finished instead.) */
		client_handshake();
		pump();
	}
}

static void finish(void)
{
	static const int64_t waits_ms[] = { 0, 6000, 11000, 61000 };
	struct logs keep;
	int fd, mark = r.fd_mark;

	/* Both peers leave; with time to let every timer fire (linger,
	 * delays, timeouts), the session must be gone. */
	client_close();
	broker_close();
	for (size_t i = 0; i < sizeof(waits_ms) / sizeof(waits_ms[0]); i++) {
		advance(waits_ms[i]);
		pump();
	}
	/* Over loopback TCP the kernel may hand a FIN over later (from
	 * ksoftirqd when the machine is busy): give it real time. Unix sockets
	 * never need this. */
	for (uint64_t until = real_ms() + 3000; r.w.n_sessions != 0 && real_ms() < until;) {
		usleep(1000);
		advance(61000);
		pump();
	}
	if (r.w.n_sessions != 0 || r.w.n_handshakes != 0) {
		fprintf(stderr,
		        "fuzz_session: %ld session(s), %ld handshake(s) still counted after both peers left\n",
		        r.w.n_sessions, r.w.n_handshakes);
		abort();
	}
	check_streams();
	check_limits();

	/* Every check came home (pump waited), so the worker can go. */
	worker_cleanup(&r.w);
	faildelay_free(g.proxy.faildelay);
	g.proxy.faildelay = NULL;
	limits_free(g.proxy.limits);
	g.proxy.limits = NULL;
	/* A connection the proxy opened but nobody accepted. */
	while (r.blfd >= 0 && (fd = accept4(r.blfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	SSL_free(r.ssl);
	ERR_clear_error();

	keep = r.q;
	bytes_reset(&keep.c_out);
	bytes_reset(&keep.c_hold);
	bytes_reset(&keep.b_out);
	bytes_reset(&keep.c_sent);
	bytes_reset(&keep.c_got);
	bytes_reset(&keep.b_sent);
	bytes_reset(&keep.b_got);
	memset(&r, 0, sizeof(r));
	r.q = keep;

	fd = dup(0);
	if (fd > mark) {
		fprintf(stderr, "fuzz_session: a descriptor was left open (lowest free %d, was %d)\n", fd,
		        mark);
		abort();
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader in = { data, size };

	if (size == 0)
		return 0;
	{
		uint8_t opts = take_u8(&in);

		start(opts, take_u8(&in));
	}
	for (int i = 0; i < MAX_OPS && in.left > 0; i++)
		run_op(&in);
	finish();
	return 0;
}
