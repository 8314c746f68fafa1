/*
 * Configuration loading (proxy/config.c): defaults, flags in both forms, the
 * --config file, MQTLS_* environment variables, precedence, every kind of
 * refusal, and what a reload keeps (config_keep_running).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ctype.h>

#include "proxy/config.h"

struct fixture {
	char dir[64];
	char path[128];        /* the last file written by write_file */
	char out[16384];       /* what config_load printed on stdout */
	char err[4096];        /* ... and on stderr */
	struct config cfg;
};

/* The tests own the MQTLS_* part of the environment: whatever the shell
 * that runs them exported (MQTLS_TEST_LOG, say) is removed first. */
static void clear_mqtls_env(void)
{
	extern char **environ;
	char name[128];

	for (;;) {
		char **v = environ;

		while (*v && strncmp(*v, "MQTLS_", 6) != 0)
			v++;
		if (*v == NULL)
			return;
		snprintf(name, sizeof(name), "%.*s", (int)(strchr(*v, '=') - *v), *v);
		assert_int_equal(unsetenv(name), 0);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	clear_mqtls_env();

	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/mqtls-test-config-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];
	static const char *const names[] = { "a.conf", "b.conf", "long.conf" };

	config_cleanup(&f->cfg);
	clear_mqtls_env();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char *write_file(struct fixture *f, const char *name, const char *text)
{
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	return f->path;
}

static void slurp(FILE *fp, char *buf, size_t cap)
{
	size_t n;

	rewind(fp);
	n = fread(buf, 1, cap - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

/* Runs config_load on argv (NULL-terminated, without the program name) with
 * stdout and stderr captured into the fixture. Cleans up any previous run. */
static enum config_result load_argv(struct fixture *f, char **args)
{
	char *argv[64];
	int argc = 0, saved_out, saved_err;
	FILE *out = tmpfile(), *err = tmpfile();
	enum config_result r;

	assert_non_null(out);
	assert_non_null(err);
	argv[argc++] = (char *)"mqtls";
	for (; *args != NULL && argc < 63; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;

	config_cleanup(&f->cfg);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(STDOUT_FILENO);
	saved_err = dup(STDERR_FILENO);
	assert_true(saved_out >= 0 && saved_err >= 0);
	dup2(fileno(out), STDOUT_FILENO);
	dup2(fileno(err), STDERR_FILENO);
	r = config_load(&f->cfg, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	slurp(out, f->out, sizeof(f->out));
	slurp(err, f->err, sizeof(f->err));
	return r;
}

#define load(f, ...) load_argv((f), (char *[]){ __VA_ARGS__, NULL })

/* The three options without a default. */
#define REQUIRED "--cert", "/b/cert.pem", "--key", "/b/key.pem", "--upstream", "127.0.0.1:1883"

static void assert_error_mentions(struct fixture *f, const char *what)
{
	if (strstr(f->err, what) == NULL)
		fail_msg("stderr \"%s\" does not mention \"%s\"", f->err, what);
	/* One line, as config.h promises. */
	assert_non_null(strchr(f->err, '\n'));
	assert_int_equal(strchr(f->err, '\n')[1], '\0');
}

static void test_defaults_apply_when_only_required_options_are_given(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->cfg;

	assert_int_equal(load(f, REQUIRED), CONFIG_OK);
	assert_string_equal(f->err, "");
	assert_int_equal(c->n_listen, 1);
	assert_string_equal(c->listen[0], "0.0.0.0:8883");
	assert_null(c->listen[1]);
	assert_int_equal(c->n_cert, 1);
	assert_int_equal(c->n_key, 1);
	assert_string_equal(c->cert[0], "/b/cert.pem");
	assert_string_equal(c->key[0], "/b/key.pem");
	assert_int_equal(c->n_upstream, 1);
	assert_string_equal(c->upstream[0], "127.0.0.1:1883");
	assert_string_equal(c->upstream_balance, "first");
	assert_int_equal(c->resolve_interval, 30);
	assert_null(c->client_ca);
	assert_string_equal(c->client_cert, "none");
	assert_int_equal(c->cert_mode, CLIENT_CERT_NONE);
	assert_null(c->crl);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->handshake_timeout, 10);
	assert_int_equal(c->connect_timeout, 10);
	assert_int_equal(c->upstream_timeout, 5);
	assert_int_equal(c->max_connect_size, 65536);
	assert_int_equal(c->max_buffer, 262144);
	assert_int_equal(c->max_handshakes, 512);
	assert_int_equal(c->max_connections, 100000);
	assert_string_equal(c->log_level, "info");
	assert_null(c->ready_file);
	assert_null(c->config_file);
}

enum kind { STR, LONG, LIST, PAIR };

struct option_case {
	const char *name;
	const char *value;
	enum kind kind;
	size_t offset;
	long number;
};

#define S(n, v, field) { n, v, STR, offsetof(struct config, field), 0 }

static const struct option_case option_cases[] = {
	{ "listen", "127.0.0.1:9883", LIST, offsetof(struct config, listen), 0 },
	{ "cert", "/etc/mqtls/fullchain.pem", PAIR, offsetof(struct config, cert), 0 },
	{ "key", "/etc/mqtls/privkey.pem", PAIR, offsetof(struct config, key), 0 },
	{ "upstream", "unix:/run/mosquitto.sock", LIST, offsetof(struct config, upstream), 0 },
	S("upstream-balance", "clientid-hash", upstream_balance),
	{ "resolve-interval", "0", LONG, offsetof(struct config, resolve_interval), 0 },
	S("client-ca", "/etc/mqtls/clients.pem", client_ca),
	S("client-cert", "required", client_cert),
	S("crl", "/etc/mqtls/crl.pem", crl),
	{ "workers", "7", LONG, offsetof(struct config, workers), 7 },
	{ "handshake-timeout", "30", LONG, offsetof(struct config, handshake_timeout), 30 },
	{ "connect-timeout", "20", LONG, offsetof(struct config, connect_timeout), 20 },
	{ "upstream-timeout", "2", LONG, offsetof(struct config, upstream_timeout), 2 },
	{ "max-connect-size", "1024", LONG, offsetof(struct config, max_connect_size), 1024 },
	{ "max-buffer", "65536", LONG, offsetof(struct config, max_buffer), 65536 },
	{ "max-handshakes", "64", LONG, offsetof(struct config, max_handshakes), 64 },
	{ "max-connections", "5000", LONG, offsetof(struct config, max_connections), 5000 },
	S("log-level", "debug", log_level),
	S("ready-file", "/tmp/mqtls.ready", ready_file),
};

static void check_option(struct fixture *f, const struct option_case *oc, const char *form)
{
	const char *base = (const char *)&f->cfg;

	switch (oc->kind) {
	case STR:
		if (*(char *const *)(base + oc->offset) == NULL ||
		    strcmp(*(char *const *)(base + oc->offset), oc->value) != 0)
			fail_msg("%s (%s form) was not applied", oc->name, form);
		break;
	case LONG:
		if (*(const long *)(base + oc->offset) != oc->number)
			fail_msg("%s (%s form) was not applied", oc->name, form);
		break;
	case LIST: {
		char *const *items = (char *const *)(base + oc->offset);
		size_t n = 0;

		while (n < CONFIG_MAX_LIST && items[n])
			n++;
		/* The flag's value comes last: after REQUIRED's --upstream, and
		 * in place of --listen's default. */
		if (n == 0 || strcmp(items[n - 1], oc->value) != 0)
			fail_msg("%s (%s form) was not applied", oc->name, form);
		if (oc->offset == offsetof(struct config, listen))
			assert_int_equal(f->cfg.n_listen, 1);
		break;
	}
	case PAIR: {
		/* The value given last is the last of its list. */
		int n = strcmp(oc->name, "cert") == 0 ? f->cfg.n_cert : f->cfg.n_key;

		assert_true(n >= 1);
		assert_string_equal(((char *const *)(base + oc->offset))[n - 1], oc->value);
		break;
	}
	}
}

static void test_every_option_is_set_by_flag_and_by_flag_equals_value(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(option_cases) / sizeof(option_cases[0]); i++) {
		const struct option_case *oc = &option_cases[i];
		char flag[64], joined[128];
		/* A second --cert needs its --key, and the other way round. */
		char *partner = strcmp(oc->name, "cert") == 0 ? "--key=/b/other.key"
		              : strcmp(oc->name, "key") == 0  ? "--cert=/b/other.pem"
		                                              : "--client-ca=/b/ca.pem";

		snprintf(flag, sizeof(flag), "--%s", oc->name);
		/* A client CA is given so that client-cert and crl are consistent. */
		if (load(f, REQUIRED, "--client-ca", "/b/ca.pem", partner, flag, (char *)oc->value) != CONFIG_OK)
			fail_msg("--%s %s refused: %s", oc->name, oc->value, f->err);
		check_option(f, oc, "--name value");

		snprintf(joined, sizeof(joined), "--%s=%s", oc->name, oc->value);
		if (load(f, REQUIRED, "--client-ca", "/b/ca.pem", partner, joined) != CONFIG_OK)
			fail_msg("%s refused: %s", joined, f->err);
		check_option(f, oc, "--name=value");
	}
}

static void test_value_after_equals_may_itself_contain_equals(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--ready-file=/tmp/a=b"), CONFIG_OK);
	assert_string_equal(f->cfg.ready_file, "/tmp/a=b");
}

static void test_client_cert_choice_sets_the_matching_mode(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--client-ca", "/b/ca.pem", "--client-cert", "required"), CONFIG_OK);
	assert_int_equal(f->cfg.cert_mode, CLIENT_CERT_REQUIRED);
	assert_int_equal(load(f, REQUIRED, "--client-ca", "/b/ca.pem", "--client-cert", "optional"), CONFIG_OK);
	assert_int_equal(f->cfg.cert_mode, CLIENT_CERT_OPTIONAL);
	assert_int_equal(load(f, REQUIRED, "--client-ca", "/b/ca.pem", "--client-cert", "none"), CONFIG_OK);
	/* A client CA on its own asks for certificates without requiring them. */
	assert_int_equal(f->cfg.cert_mode, CLIENT_CERT_OPTIONAL);
	assert_int_equal(load(f, REQUIRED, "--client-ca", "/b/ca.pem"), CONFIG_OK);
	assert_int_equal(f->cfg.cert_mode, CLIENT_CERT_OPTIONAL);
}

static void test_config_file_with_comments_blank_lines_and_whitespace_is_read(void **state)
{
	struct fixture *f = *state;
	const char *path = write_file(f, "a.conf",
		"# mqtls configuration\n"
		"\n"
		"cert /etc/mqtls/fullchain.pem\n"
		"   \t\n"
		"  key\t/etc/mqtls/privkey.pem  \n"
		"\t# an indented comment\n"
		"upstream    unix:/run/mosquitto.sock\r\n"
		"listen 127.0.0.1:18883\n"
		"listen [::1]:18883\n"
		"workers 3\n"
		"client-ca /etc/mqtls/ca.pem\n"
		"client-cert required\n"
		"log-level warn\n"
		"max-buffer 1048576");   /* the last line has no newline */

	assert_int_equal(load(f, "--config", (char *)path), CONFIG_OK);
	assert_string_equal(f->err, "");
	assert_string_equal(f->cfg.cert[0], "/etc/mqtls/fullchain.pem");
	assert_string_equal(f->cfg.key[0], "/etc/mqtls/privkey.pem");
	assert_string_equal(f->cfg.upstream[0], "unix:/run/mosquitto.sock");
	assert_int_equal(f->cfg.n_listen, 2);
	assert_string_equal(f->cfg.listen[0], "127.0.0.1:18883");
	assert_string_equal(f->cfg.listen[1], "[::1]:18883");
	assert_int_equal(f->cfg.workers, 3);
	assert_string_equal(f->cfg.client_ca, "/etc/mqtls/ca.pem");
	assert_int_equal(f->cfg.cert_mode, CLIENT_CERT_REQUIRED);
	assert_string_equal(f->cfg.log_level, "warn");
	assert_int_equal(f->cfg.max_buffer, 1048576);
	assert_string_equal(f->cfg.config_file, path);
	/* Untouched options keep their defaults. */
	assert_int_equal(f->cfg.handshake_timeout, 10);
}

static const char base_file[] =
	"cert /file/cert.pem\n"
	"key /file/key.pem\n"
	"upstream 127.0.0.1:1883\n"
	"workers 3\n"
	"log-level warn\n"
	"listen 127.0.0.1:1001\n"
	"listen 127.0.0.1:1002\n";

static void test_flags_override_file_values_wherever_config_appears(void **state)
{
	struct fixture *f = *state;
	char *path = (char *)write_file(f, "a.conf", base_file);

	assert_int_equal(load(f, "--config", path, "--workers", "5", "--cert=/flag/cert.pem"), CONFIG_OK);
	assert_int_equal(f->cfg.workers, 5);
	/* The flag's --cert replaces the file's; the file's --key stays. */
	assert_int_equal(f->cfg.n_cert, 1);
	assert_string_equal(f->cfg.cert[0], "/flag/cert.pem");
	assert_string_equal(f->cfg.key[0], "/file/key.pem");
	assert_string_equal(f->cfg.log_level, "warn");

	/* A flag before --config still wins: the file is read first. */
	assert_int_equal(load(f, "--workers", "5", "--log-level", "error", "--config", path), CONFIG_OK);
	assert_int_equal(f->cfg.workers, 5);
	assert_string_equal(f->cfg.log_level, "error");
}

/* A flag takes the same words on the command line and in a file. */
static void test_flag_words_are_the_same_on_the_command_line_and_in_a_file(void **state)
{
	struct fixture *f = *state;
	static char *on[] = { "on", "true", "yes", "1" };
	static char *off[] = { "off", "false", "no", "0" };
	char line[64];

	for (size_t k = 0; k < 4; k++) {
		assert_int_equal(load(f, REQUIRED, "--allow-anonymous", on[k]), CONFIG_OK);
		assert_int_equal(f->cfg.allow_anonymous, 1);
		snprintf(line, sizeof(line), "allow-anonymous %s\n", on[k]);
		assert_int_equal(load(f, REQUIRED, "--config", (char *)write_file(f, "f.conf", line)), CONFIG_OK);
		assert_int_equal(f->cfg.allow_anonymous, 1);
		assert_int_equal(load(f, REQUIRED, "--jwt-require-exp", off[k]), CONFIG_OK);
		assert_int_equal(f->cfg.jwt_require_exp, 0);
		snprintf(line, sizeof(line), "jwt-require-exp %s\n", off[k]);
		assert_int_equal(load(f, REQUIRED, "--config", (char *)write_file(f, "f.conf", line)), CONFIG_OK);
		assert_int_equal(f->cfg.jwt_require_exp, 0);
	}
}

static void test_file_listen_lines_replace_the_default_listener(void **state)
{
	struct fixture *f = *state;
	char *path = (char *)write_file(f, "a.conf", base_file);

	assert_int_equal(load(f, "--config", path), CONFIG_OK);
	assert_int_equal(f->cfg.n_listen, 2);
	assert_string_equal(f->cfg.listen[0], "127.0.0.1:1001");
	assert_string_equal(f->cfg.listen[1], "127.0.0.1:1002");
}

static void test_repeated_listen_flags_replace_the_files_list(void **state)
{
	struct fixture *f = *state;
	char *path = (char *)write_file(f, "a.conf", base_file);

	assert_int_equal(load(f, "--config", path, "--listen", "[::]:2001", "--listen=0.0.0.0:2002"),
	                 CONFIG_OK);
	assert_int_equal(f->cfg.n_listen, 2);
	assert_string_equal(f->cfg.listen[0], "[::]:2001");
	assert_string_equal(f->cfg.listen[1], "0.0.0.0:2002");
	assert_null(f->cfg.listen[2]);
}

static void test_more_listeners_than_the_maximum_is_an_error(void **state)
{
	struct fixture *f = *state;
	char *args[2 * CONFIG_MAX_LISTEN + 16];
	char specs[CONFIG_MAX_LISTEN + 1][32];
	int n = 0;

	args[n++] = (char *)"--cert";
	args[n++] = (char *)"c";
	args[n++] = (char *)"--key";
	args[n++] = (char *)"k";
	args[n++] = (char *)"--upstream";
	args[n++] = (char *)"127.0.0.1:1883";
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++) {
		snprintf(specs[i], sizeof(specs[i]), "127.0.0.1:%d", 3000 + i);
		args[n++] = (char *)"--listen";
		args[n++] = specs[i];
	}
	args[n] = NULL;
	assert_int_equal(load_argv(f, args), CONFIG_OK);
	assert_int_equal(f->cfg.n_listen, CONFIG_MAX_LISTEN);

	snprintf(specs[CONFIG_MAX_LISTEN], sizeof(specs[0]), "127.0.0.1:4000");
	args[n++] = (char *)"--listen";
	args[n++] = specs[CONFIG_MAX_LISTEN];
	args[n] = NULL;
	assert_int_equal(load_argv(f, args), CONFIG_ERROR);
	assert_error_mentions(f, "--listen: at most 8 values");
}

static void test_unknown_flag_is_an_error_naming_it(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--listne", "0.0.0.0:1"), CONFIG_ERROR);
	assert_error_mentions(f, "unknown option '--listne'");
	assert_int_equal(load(f, REQUIRED, "--verbose=1"), CONFIG_ERROR);
	assert_error_mentions(f, "--verbose");
}

static void test_argument_without_dashes_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "extra"), CONFIG_ERROR);
	assert_error_mentions(f, "unexpected argument 'extra'");
	assert_int_equal(load(f, REQUIRED, "-w", "3"), CONFIG_ERROR);
	assert_error_mentions(f, "'-w'");
}

static void test_flag_without_a_value_at_the_end_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--workers"), CONFIG_ERROR);
	assert_error_mentions(f, "--workers needs a value");
}

static void test_unknown_key_in_file_is_an_error_with_file_and_line(void **state)
{
	struct fixture *f = *state;
	char where[160];
	char *path = (char *)write_file(f, "a.conf",
		"# comment\n"
		"cert /c.pem\n"
		"\n"
		"wrokers 4\n");

	snprintf(where, sizeof(where), "%s:4: unknown key 'wrokers'", path);
	assert_int_equal(load(f, "--config", path, "--key", "k", "--upstream", "127.0.0.1:1"), CONFIG_ERROR);
	assert_error_mentions(f, where);
}

static void test_config_key_inside_a_config_file_is_refused(void **state)
{
	struct fixture *f = *state;
	char where[160];
	char *path = (char *)write_file(f, "a.conf", "config /etc/other.conf\n");

	snprintf(where, sizeof(where), "%s:1: unknown key 'config'", path);
	assert_int_equal(load(f, REQUIRED, "--config", path), CONFIG_ERROR);
	assert_error_mentions(f, where);
}

static void test_bad_value_in_file_is_reported_with_file_and_line(void **state)
{
	struct fixture *f = *state;
	char where[160];
	char *path = (char *)write_file(f, "a.conf", "workers 2\nhandshake-timeout 0\n");

	snprintf(where, sizeof(where), "%s:2: expected an integer from 1 to 3600, got '0'", path);
	assert_int_equal(load(f, REQUIRED, "--config", path), CONFIG_ERROR);
	assert_error_mentions(f, where);
}

static void test_key_without_value_in_file_is_an_error(void **state)
{
	struct fixture *f = *state;
	char where[160];
	char *path = (char *)write_file(f, "a.conf", "ready-file   \n");

	snprintf(where, sizeof(where), "%s:1: value must not be empty", path);
	assert_int_equal(load(f, REQUIRED, "--config", path), CONFIG_ERROR);
	assert_error_mentions(f, where);
}

static void test_missing_config_file_is_an_error_naming_it(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--config", "/nonexistent/mqtls.conf"), CONFIG_ERROR);
	assert_error_mentions(f, "/nonexistent/mqtls.conf: No such file");
}

/* A comment is a comment however long it is; the part past the line buffer
 * must not come back as a key of its own. */
static void test_a_comment_longer_than_the_line_buffer_is_ignored(void **state)
{
	struct fixture *f = *state;
	size_t n = 6000;
	char *text = malloc(n + 64);
	char *path;

	assert_non_null(text);
	text[0] = '#';
	memset(text + 1, 'x', n - 1);
	strcpy(text + n, "\nworkers 4\n");
	path = (char *)write_file(f, "long.conf", text);
	free(text);
	if (load(f, REQUIRED, "--config", path) != CONFIG_OK)
		fail_msg("refused: %.200s", f->err);
	assert_int_equal(f->cfg.workers, 4);
}

struct bad_value {
	const char *flag;
	const char *value;
	const char *message;
};

static void test_out_of_range_or_malformed_integers_are_errors(void **state)
{
	static const struct bad_value bad[] = {
		{ "--workers", "257", "--workers: expected an integer from 0 to 256, got '257'" },
		{ "--workers", "-1", "from 0 to 256, got '-1'" },
		{ "--workers", "3x", "got '3x'" },
		{ "--workers", "0x10", "got '0x10'" },
		{ "--workers", "", "got ''" },
		{ "--workers", "99999999999999999999999", "got '99999999999999999999999'" },
		{ "--handshake-timeout", "0", "from 1 to 3600" },
		{ "--handshake-timeout", "3601", "from 1 to 3600" },
		{ "--connect-timeout", "0", "from 1 to 3600" },
		{ "--upstream-timeout", "3601", "from 1 to 3600" },
		{ "--max-connect-size", "63", "from 64 to 16777216" },
		{ "--max-buffer", "16383", "from 16384 to 1073741824" },
		{ "--max-handshakes", "0", "from 1 to 1000000" },
		{ "--max-connections", "10000001", "from 1 to 10000000" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load(f, REQUIRED, (char *)bad[i].flag, (char *)bad[i].value) != CONFIG_ERROR)
			fail_msg("%s '%s' accepted", bad[i].flag, bad[i].value);
		assert_error_mentions(f, bad[i].message);
	}
}

static void test_range_limits_themselves_are_accepted(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--workers", "256", "--handshake-timeout", "1",
	                      "--max-connect-size", "64", "--max-buffer", "1073741824",
	                      "--max-connections", "10000000"), CONFIG_OK);
	assert_int_equal(f->cfg.workers, 256);
	assert_int_equal(f->cfg.handshake_timeout, 1);
	assert_int_equal(f->cfg.max_connect_size, 64);
	assert_int_equal(f->cfg.max_buffer, 1073741824);
	assert_int_equal(f->cfg.max_connections, 10000000);
}

static void test_value_outside_the_choices_is_an_error_listing_them(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--client-ca", "ca", "--client-cert", "maybe"), CONFIG_ERROR);
	assert_error_mentions(f, "--client-cert: expected one of none|optional|required, got 'maybe'");
	assert_int_equal(load(f, REQUIRED, "--log-level=verbose"), CONFIG_ERROR);
	assert_error_mentions(f, "expected one of error|warn|info|debug, got 'verbose'");
	/* Choices are exact: no prefixes, no case folding. */
	assert_int_equal(load(f, REQUIRED, "--log-level", "INFO"), CONFIG_ERROR);
	assert_int_equal(load(f, REQUIRED, "--log-level", "inf"), CONFIG_ERROR);
}

static void test_empty_string_value_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--ready-file="), CONFIG_ERROR);
	assert_error_mentions(f, "--ready-file: value must not be empty");
}

static void test_missing_cert_key_or_upstream_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "--key", "k", "--upstream", "127.0.0.1:1883"), CONFIG_ERROR);
	assert_error_mentions(f, "--cert, --key and --upstream are required");
	assert_int_equal(load(f, "--cert", "c", "--upstream", "127.0.0.1:1883"), CONFIG_ERROR);
	assert_error_mentions(f, "are required");
	assert_int_equal(load(f, "--cert", "c", "--key", "k"), CONFIG_ERROR);
	assert_error_mentions(f, "are required");
}

static void test_client_cert_mode_without_client_ca_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--client-cert", "required"), CONFIG_ERROR);
	assert_error_mentions(f, "--client-cert required needs --client-ca FILE");
	assert_int_equal(load(f, REQUIRED, "--client-cert", "optional"), CONFIG_ERROR);
	assert_error_mentions(f, "--client-cert optional needs --client-ca FILE");
}

static void test_crl_without_client_ca_is_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--crl", "/etc/crl.pem"), CONFIG_ERROR);
	assert_error_mentions(f, "--crl needs --client-ca FILE");
}

static void test_help_prints_usage_and_every_option_then_exits_ok(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(load(f, i == 0 ? "--help" : "-h"), CONFIG_EXIT_OK);
		assert_non_null(strstr(f->out, "usage: mqtls"));
		for (size_t k = 0; k < sizeof(option_cases) / sizeof(option_cases[0]); k++) {
			char flag[64];

			snprintf(flag, sizeof(flag), "--%s ", option_cases[k].name);
			if (strstr(f->out, flag) == NULL)
				fail_msg("--help does not list %s", flag);
		}
		assert_non_null(strstr(f->out, "--config "));
		assert_non_null(strstr(f->out, "[0.0.0.0:8883]"));
		assert_string_equal(f->err, "");
	}
	/* Help wins over an otherwise broken command line. */
	assert_int_equal(load(f, "--bogus", "--help"), CONFIG_EXIT_OK);
}

static void test_version_prints_the_version_then_exits_ok(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "--version"), CONFIG_EXIT_OK);
	assert_string_equal(f->out, "mqtls " MQTLS_VERSION "\n");
	assert_string_equal(f->err, "");
}

static void test_cleanup_is_safe_twice_and_after_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--workers", "nope"), CONFIG_ERROR);
	config_cleanup(&f->cfg);
	config_cleanup(&f->cfg);
	assert_null(f->cfg.cert[0]);
	assert_int_equal(f->cfg.n_cert, 0);
	assert_int_equal(f->cfg.n_listen, 0);
}

/* ---- the environment ------------------------------------------------------- */

static void test_every_option_is_set_by_its_environment_variable(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(option_cases) / sizeof(option_cases[0]); i++) {
		const struct option_case *oc = &option_cases[i];
		char var[64];
		size_t k = (size_t)snprintf(var, sizeof(var), "MQTLS_");

		for (const char *c = oc->name; *c; c++)
			var[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
		var[k] = '\0';
		/* The required options come from the environment too, so that no
		 * flag overrides the variable under test. */
		assert_int_equal(setenv("MQTLS_CERT", "/b/cert.pem", 1), 0);
		assert_int_equal(setenv("MQTLS_KEY", "/b/key.pem", 1), 0);
		assert_int_equal(setenv("MQTLS_UPSTREAM", "127.0.0.1:1883", 1), 0);
		assert_int_equal(setenv("MQTLS_CLIENT_CA", "/b/ca.pem", 1), 0);
		assert_int_equal(setenv(var, oc->value, 1), 0);
		if (load(f, "--log-level", "info") != CONFIG_OK)
			fail_msg("%s=%s refused: %s", var, oc->value, f->err);
		if (strcmp(oc->name, "log-level") != 0)
			check_option(f, oc, var);
		clear_mqtls_env();
	}
}

static void test_environment_beats_the_file_and_a_flag_beats_the_environment(void **state)
{
	struct fixture *f = *state;
	const char *path = write_file(f, "a.conf", "connect-timeout 5\nmax-buffer 20000\nworkers 3\n");

	assert_int_equal(setenv("MQTLS_CONNECT_TIMEOUT", "7", 1), 0);
	assert_int_equal(setenv("MQTLS_MAX_BUFFER", "30000", 1), 0);
	assert_int_equal(load(f, REQUIRED, "--config", (char *)path, "--max-buffer", "40000"), CONFIG_OK);
	assert_int_equal(f->cfg.connect_timeout, 7);     /* environment over file */
	assert_int_equal(f->cfg.max_buffer, 40000);      /* flag over environment */
	assert_int_equal(f->cfg.workers, 3);             /* file over default */
	assert_int_equal(f->cfg.upstream_timeout, 5);    /* the default */
	/* A flag wins wherever it stands relative to --config. */
	assert_int_equal(load(f, "--max-buffer", "40000", "--config", (char *)path, REQUIRED), CONFIG_OK);
	assert_int_equal(f->cfg.max_buffer, 40000);
}

static void test_mqtls_config_names_the_file_unless_a_flag_does(void **state)
{
	struct fixture *f = *state;
	char a[160];
	const char *b;

	snprintf(a, sizeof(a), "%s", write_file(f, "a.conf", "workers 3\n"));
	b = write_file(f, "b.conf", "workers 4\n");
	assert_int_equal(setenv("MQTLS_CONFIG", a, 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_OK);
	assert_int_equal(f->cfg.workers, 3);
	assert_string_equal(f->cfg.config_file, a);
	assert_int_equal(load(f, REQUIRED, "--config", (char *)b), CONFIG_OK);
	assert_int_equal(f->cfg.workers, 4);
	assert_string_equal(f->cfg.config_file, b);
}

static void test_environment_takes_flag_words_and_a_list_of_listeners(void **state)
{
	struct fixture *f = *state;
	const char *path = write_file(f, "a.conf", "listen 127.0.0.1:1001\n");

	assert_int_equal(setenv("MQTLS_ALLOW_ANONYMOUS", "yes", 1), 0);
	assert_int_equal(setenv("MQTLS_JWT_REQUIRE_EXP", "off", 1), 0);
	assert_int_equal(setenv("MQTLS_LISTEN", " 127.0.0.1:2001, [::1]:2002\t127.0.0.1:2003,", 1), 0);
	assert_int_equal(load(f, REQUIRED, "--config", (char *)path), CONFIG_OK);
	assert_int_equal(f->cfg.allow_anonymous, 1);
	assert_int_equal(f->cfg.jwt_require_exp, 0);
	/* The environment's list replaces the file's... */
	assert_int_equal(f->cfg.n_listen, 3);
	assert_string_equal(f->cfg.listen[0], "127.0.0.1:2001");
	assert_string_equal(f->cfg.listen[1], "[::1]:2002");
	assert_string_equal(f->cfg.listen[2], "127.0.0.1:2003");
	/* ...and --listen flags replace the environment's. */
	assert_int_equal(load(f, REQUIRED, "--listen", "127.0.0.1:3001"), CONFIG_OK);
	assert_int_equal(f->cfg.n_listen, 1);
	assert_string_equal(f->cfg.listen[0], "127.0.0.1:3001");
}

static void test_an_empty_environment_variable_counts_as_unset(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(setenv("MQTLS_CLIENT_CA", "", 1), 0);
	assert_int_equal(setenv("MQTLS_WORKERS", "", 1), 0);
	assert_int_equal(setenv("MQTLS_LISTEN", "", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_OK);
	assert_null(f->cfg.client_ca);
	assert_int_equal(f->cfg.workers, 0);
	assert_string_equal(f->cfg.listen[0], "0.0.0.0:8883");
}

static void test_bad_value_in_the_environment_is_an_error_naming_the_variable(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(setenv("MQTLS_MAX_BUFFER", "lots", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "mqtls: MQTLS_MAX_BUFFER: expected an integer from 16384 to");
	assert_int_equal(unsetenv("MQTLS_MAX_BUFFER"), 0);
	assert_int_equal(setenv("MQTLS_CLIENT_CERT", "sometimes", 1), 0);
	assert_int_equal(load(f, REQUIRED, "--client-ca", "/b/ca.pem"), CONFIG_ERROR);
	assert_error_mentions(f, "MQTLS_CLIENT_CERT: expected one of none|optional|required");
	assert_int_equal(unsetenv("MQTLS_CLIENT_CERT"), 0);
	assert_int_equal(setenv("MQTLS_ALLOW_ANONYMOUS", "maybe", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "MQTLS_ALLOW_ANONYMOUS: expected on or off, got 'maybe'");
	/* A bad variable is an error even when a flag would override it: the
	 * environment is checked like a file, whole. */
	assert_int_equal(load(f, REQUIRED, "--allow-anonymous", "on"), CONFIG_ERROR);
}

static void test_unknown_mqtls_variable_is_an_error_suggesting_the_nearest_option(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(setenv("MQTLS_MAX_BUFER", "65536", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "MQTLS_MAX_BUFER: no such option (did you mean MQTLS_MAX_BUFFER?)");
	assert_int_equal(unsetenv("MQTLS_MAX_BUFER"), 0);
	/* Lower case is not the variable's name either. */
	assert_int_equal(setenv("MQTLS_max_buffer", "65536", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "did you mean MQTLS_MAX_BUFFER?");
	assert_int_equal(unsetenv("MQTLS_max_buffer"), 0);
	assert_int_equal(setenv("MQTLS_FROBNICATE", "1", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "MQTLS_FROBNICATE: no such option");
	assert_int_equal(unsetenv("MQTLS_FROBNICATE"), 0);
	/* A name longer than any option's. */
	assert_int_equal(setenv("MQTLS_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                        "1", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_ERROR);
	assert_error_mentions(f, "no such option (MQTLS_<NAME> sets --<name>");
}

static void test_mqtls_variables_of_scripts_and_kubernetes_are_not_options(void **state)
{
	struct fixture *f = *state;
	static const char *const others[] = {
		"MQTLS_BIN", "MQTLS_STRESS", "MQTLS_REFERENCE", "MQTLS_TEST_LOG", "MQTLS_PID",
		"MQTLS_PIDFILE", "MQTLS_UNIT", "MQTLS_IMAGE", "MQTLS_PORT", "MQTLS_PORT_8883_TCP_ADDR",
		"MQTLS_SERVICE_HOST", "MQTLS_SERVICE_PORT", "MQTLS_SERVICE_PORT_MQTTS",
	};

	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_int_equal(setenv(others[i], "tcp://10.0.0.1:8883", 1), 0);
	assert_int_equal(load(f, REQUIRED), CONFIG_OK);
	assert_string_equal(f->err, "");
}

static void test_config_read_writes_its_error_instead_of_printing_it(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "mqtls", REQUIRED, "--workers", "many", NULL };
	char *envp[] = { "PATH=/bin", "MQTLS_CONNECT_TIMEOUT=3", NULL };
	char err[256];

	assert_int_equal(config_read(&f->cfg, 9, argv, envp, err, sizeof(err)), CONFIG_ERROR);
	assert_string_equal(err, "--workers: expected an integer from 0 to 256, got 'many'");
	config_cleanup(&f->cfg);
	argv[7] = NULL;
	assert_int_equal(config_read(&f->cfg, 7, argv, envp, err, sizeof(err)), CONFIG_OK);
	assert_int_equal(f->cfg.connect_timeout, 3);
	assert_string_equal(err, "");
}

static void test_help_states_the_precedence_of_flags_environment_and_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "--help"), CONFIG_EXIT_OK);
	assert_non_null(strstr(f->out, "MQTLS_<NAME>"));
	assert_non_null(strstr(f->out, "precedence: --flag, then environment MQTLS_<NAME>"));
}

/* ---- what a reload keeps -------------------------------------------------- */

static void load_into(struct config *c, char **args)
{
	char *argv[32];
	int argc = 0;
	char err[256];

	argv[argc++] = "mqtls";
	while (*args)
		argv[argc++] = *args++;
	argv[argc] = NULL;
	if (config_read(c, argc, argv, (char *[]){ NULL }, err, sizeof(err)) != CONFIG_OK)
		fail_msg("config_read: %s", err);
}

#define LOAD_INTO(c, ...) load_into((c), (char *[]){ __VA_ARGS__, NULL })

static void test_reload_keeps_options_bound_at_start_and_names_them(void **state)
{
	struct config run, next;
	char names[128], err[256];

	(void)state;
	LOAD_INTO(&run, REQUIRED, "--listen", "127.0.0.1:1001", "--workers", "2",
	          "--connect-timeout", "5", "--max-buffer", "20000", "--max-auth-per-ip", "3");
	LOAD_INTO(&next, REQUIRED, "--listen", "127.0.0.1:2002", "--listen", "[::1]:2003",
	          "--workers", "4", "--connect-timeout", "5", "--max-buffer", "30000",
	          "--max-auth-per-ip", "4", "--cert", "/new/cert.pem", "--key", "/new/key.pem");
	assert_int_equal(config_same(&run, &next), 0);
	assert_int_equal(config_keep_running(&next, &run, names, sizeof(names), err, sizeof(err)), 2);
	assert_string_equal(names, "listen, workers");
	/* Kept... */
	assert_int_equal(next.n_listen, 1);
	assert_string_equal(next.listen[0], "127.0.0.1:1001");
	assert_null(next.listen[1]);
	assert_int_equal(next.workers, 2);
	/* ...and taken. */
	assert_int_equal(next.max_buffer, 30000);
	assert_int_equal(next.max_auth_per_ip, 4);
	assert_int_equal(next.n_cert, 2);
	assert_string_equal(next.cert[1], "/new/cert.pem");
	assert_string_equal(next.key[1], "/new/key.pem");
	config_cleanup(&run);
	config_cleanup(&next);
}

static void test_reload_of_the_same_options_needs_no_restart_and_is_the_same(void **state)
{
	struct config run, next;
	char names[128], err[256];

	(void)state;
	LOAD_INTO(&run, REQUIRED, "--listen", "127.0.0.1:1001", "--users", "/etc/users");
	LOAD_INTO(&next, REQUIRED, "--listen", "127.0.0.1:1001", "--users", "/etc/users");
	assert_int_equal(config_keep_running(&next, &run, names, sizeof(names), err, sizeof(err)), 0);
	assert_string_equal(names, "");
	assert_int_equal(config_same(&run, &next), 1);
	config_cleanup(&run);
	config_cleanup(&next);
}

/* identity-as-username is bound at start (the sessions copy it), so a
 * reload that drops it with the client CA it needs is refused whole. */
static void test_reload_inconsistent_with_a_kept_option_is_refused(void **state)
{
	struct config run, next;
	char names[128], err[256];

	(void)state;
	LOAD_INTO(&run, REQUIRED, "--client-ca", "/ca.pem", "--identity-as-username", "cn");
	LOAD_INTO(&next, REQUIRED);
	assert_int_equal(config_keep_running(&next, &run, names, sizeof(names), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--identity-as-username needs --client-ca FILE"));
	assert_non_null(strstr(err, "identity-as-username, which need a restart"));
	config_cleanup(&run);
	config_cleanup(&next);
}

static void test_config_files_lists_every_file_that_is_set(void **state)
{
	struct config c;
	const char *files[16];
	size_t n;

	(void)state;
	LOAD_INTO(&c, REQUIRED, "--client-ca", "/ca.pem", "--users", "/users", "--jwt-keys", "/jwks.json");
	n = config_files(&c, files, 16);
	assert_int_equal(n, 5);
	assert_string_equal(files[0], "/b/cert.pem");
	assert_string_equal(files[1], "/b/key.pem");
	assert_string_equal(files[2], "/ca.pem");
	assert_string_equal(files[3], "/users");
	assert_string_equal(files[4], "/jwks.json");
	assert_int_equal(config_files(&c, files, 2), 2);
	config_cleanup(&c);
}

/* ---- certificate pairs (SNI) ---------------------------------------------- */

static void test_cert_and_key_repeat_as_pairs_in_order(void **state)
{
	struct fixture *f = *state;
	const char *path = write_file(f, "pairs.conf", "cert /f/a.pem\nkey /f/a.key\ncert /f/b.pem\nkey /f/b.key\n");

	assert_int_equal(load(f, "--upstream", "127.0.0.1:1883", "--cert", "/a.pem", "--key", "/a.key",
	                      "--cert=/b.pem", "--key=/b.key", "--cert", "/c.pem", "--key", "/c.key"),
	                 CONFIG_OK);
	assert_int_equal(f->cfg.n_cert, 3);
	assert_int_equal(f->cfg.n_key, 3);
	assert_string_equal(f->cfg.cert[0], "/a.pem");
	assert_string_equal(f->cfg.key[0], "/a.key");
	assert_string_equal(f->cfg.cert[2], "/c.pem");
	assert_string_equal(f->cfg.key[2], "/c.key");

	/* In a file, one line each; flags replace the file's whole list. */
	assert_int_equal(load(f, "--upstream", "127.0.0.1:1883", "--config", (char *)path), CONFIG_OK);
	assert_int_equal(f->cfg.n_cert, 2);
	assert_string_equal(f->cfg.cert[1], "/f/b.pem");
	assert_string_equal(f->cfg.key[1], "/f/b.key");
	assert_int_equal(load(f, "--upstream", "127.0.0.1:1883", "--config", (char *)path, "--cert", "/x.pem",
	                      "--key", "/x.key"), CONFIG_OK);
	assert_int_equal(f->cfg.n_cert, 1);
	assert_string_equal(f->cfg.cert[0], "/x.pem");
	assert_string_equal(f->cfg.key[0], "/x.key");

	/* In the environment, separated like --listen's. */
	assert_int_equal(setenv("MQTLS_CERT", "/e/a.pem,/e/b.pem", 1), 0);
	assert_int_equal(setenv("MQTLS_KEY", "/e/a.key /e/b.key", 1), 0);
	assert_int_equal(load(f, "--upstream", "127.0.0.1:1883"), CONFIG_OK);
	clear_mqtls_env();
	assert_int_equal(f->cfg.n_key, 2);
	assert_string_equal(f->cfg.cert[1], "/e/b.pem");
	assert_string_equal(f->cfg.key[1], "/e/b.key");
}

static void test_unequal_numbers_of_cert_and_key_are_an_error(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--cert", "/b/second.pem"), CONFIG_ERROR);
	assert_error_mentions(f, "--cert and --key come in pairs: 2 --cert but 1 --key");
	assert_int_equal(load(f, REQUIRED, "--key", "/b/second.key", "--key", "/b/third.key"), CONFIG_ERROR);
	assert_error_mentions(f, "--cert and --key come in pairs: 1 --cert but 3 --key");
}

static void test_more_pairs_than_the_maximum_is_an_error(void **state)
{
	struct fixture *f = *state;
	char *args[2 * CONFIG_MAX_LIST + 8], names[CONFIG_MAX_LIST + 1][24];
	int n = 0;

	args[n++] = "--upstream";
	args[n++] = "127.0.0.1:1883";
	for (int i = 0; i <= CONFIG_MAX_LIST; i++) {
		snprintf(names[i], sizeof(names[i]), "/c%d.pem", i);
		args[n++] = "--cert";
		args[n++] = names[i];
	}
	args[n] = NULL;
	assert_int_equal(load_argv(f, args), CONFIG_ERROR);
	assert_error_mentions(f, "--cert: at most 8 values");
}

static void test_config_files_lists_every_certificate_and_key(void **state)
{
	struct config c;
	const char *files[16];

	(void)state;
	LOAD_INTO(&c, REQUIRED, "--cert", "/b/rsa.pem", "--key", "/b/rsa.key");
	assert_int_equal(config_files(&c, files, 16), 4);
	assert_string_equal(files[0], "/b/cert.pem");
	assert_string_equal(files[1], "/b/rsa.pem");
	assert_string_equal(files[2], "/b/key.pem");
	assert_string_equal(files[3], "/b/rsa.key");
	config_cleanup(&c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* ---- several brokers ---------------------------------------------------------- */

static void test_upstream_repeats_in_every_source_and_a_later_source_replaces_the_list(void **state)
{
	struct fixture *f = *state;
	const char *path = write_file(f, "brokers.conf", "upstream mq-0.mq:1883\nupstream mq-1.mq:1883\n"
	                                                 "upstream-balance clientid-hash\n");

	assert_int_equal(load(f, "--cert", "c", "--key", "k", "--upstream", "a:1", "--upstream=b:2", "--upstream",
	                      "unix:/run/m.sock"), CONFIG_OK);
	assert_int_equal(f->cfg.n_upstream, 3);
	assert_string_equal(f->cfg.upstream[1], "b:2");
	assert_string_equal(f->cfg.upstream[2], "unix:/run/m.sock");
	assert_string_equal(f->cfg.upstream_balance, "first");

	/* In a file, one line each; a flag replaces the file's whole list. */
	assert_int_equal(load(f, "--cert", "c", "--key", "k", "--config", (char *)path), CONFIG_OK);
	assert_int_equal(f->cfg.n_upstream, 2);
	assert_string_equal(f->cfg.upstream[1], "mq-1.mq:1883");
	assert_string_equal(f->cfg.upstream_balance, "clientid-hash");
	assert_int_equal(load(f, "--cert", "c", "--key", "k", "--config", (char *)path, "--upstream", "x:1"),
	                 CONFIG_OK);
	assert_int_equal(f->cfg.n_upstream, 1);
	assert_string_equal(f->cfg.upstream[0], "x:1");

	/* In the environment, separated like --listen's. */
	assert_int_equal(setenv("MQTLS_UPSTREAM", "e0:1883, e1:1883", 1), 0);
	assert_int_equal(load(f, "--cert", "c", "--key", "k"), CONFIG_OK);
	clear_mqtls_env();
	assert_int_equal(f->cfg.n_upstream, 2);
	assert_string_equal(f->cfg.upstream[1], "e1:1883");
}

static void test_bad_balance_or_resolve_interval_is_an_error_naming_the_flag(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, REQUIRED, "--upstream-balance", "round-robin"), CONFIG_ERROR);
	assert_error_mentions(f, "--upstream-balance: expected one of first|clientid-hash, got 'round-robin'");
	assert_int_equal(load(f, REQUIRED, "--resolve-interval", "-1"), CONFIG_ERROR);
	assert_error_mentions(f, "--resolve-interval: expected an integer from 0 to 86400");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults_apply_when_only_required_options_are_given),
		T(test_every_option_is_set_by_flag_and_by_flag_equals_value),
		T(test_value_after_equals_may_itself_contain_equals),
		T(test_client_cert_choice_sets_the_matching_mode),
		T(test_config_file_with_comments_blank_lines_and_whitespace_is_read),
		T(test_flags_override_file_values_wherever_config_appears),
		T(test_flag_words_are_the_same_on_the_command_line_and_in_a_file),
		T(test_file_listen_lines_replace_the_default_listener),
		T(test_repeated_listen_flags_replace_the_files_list),
		T(test_more_listeners_than_the_maximum_is_an_error),
		T(test_unknown_flag_is_an_error_naming_it),
		T(test_argument_without_dashes_is_an_error),
		T(test_flag_without_a_value_at_the_end_is_an_error),
		T(test_unknown_key_in_file_is_an_error_with_file_and_line),
		T(test_config_key_inside_a_config_file_is_refused),
		T(test_bad_value_in_file_is_reported_with_file_and_line),
		T(test_key_without_value_in_file_is_an_error),
		T(test_missing_config_file_is_an_error_naming_it),
		T(test_a_comment_longer_than_the_line_buffer_is_ignored),
		T(test_out_of_range_or_malformed_integers_are_errors),
		T(test_range_limits_themselves_are_accepted),
		T(test_value_outside_the_choices_is_an_error_listing_them),
		T(test_empty_string_value_is_an_error),
		T(test_missing_cert_key_or_upstream_is_an_error),
		T(test_client_cert_mode_without_client_ca_is_an_error),
		T(test_crl_without_client_ca_is_an_error),
		T(test_help_prints_usage_and_every_option_then_exits_ok),
		T(test_version_prints_the_version_then_exits_ok),
		T(test_cleanup_is_safe_twice_and_after_an_error),
		T(test_every_option_is_set_by_its_environment_variable),
		T(test_environment_beats_the_file_and_a_flag_beats_the_environment),
		T(test_mqtls_config_names_the_file_unless_a_flag_does),
		T(test_environment_takes_flag_words_and_a_list_of_listeners),
		T(test_an_empty_environment_variable_counts_as_unset),
		T(test_bad_value_in_the_environment_is_an_error_naming_the_variable),
		T(test_unknown_mqtls_variable_is_an_error_suggesting_the_nearest_option),
		T(test_mqtls_variables_of_scripts_and_kubernetes_are_not_options),
		T(test_config_read_writes_its_error_instead_of_printing_it),
		T(test_help_states_the_precedence_of_flags_environment_and_file),
		T(test_reload_keeps_options_bound_at_start_and_names_them),
		T(test_reload_of_the_same_options_needs_no_restart_and_is_the_same),
		T(test_reload_inconsistent_with_a_kept_option_is_refused),
		T(test_config_files_lists_every_file_that_is_set),
		T(test_cert_and_key_repeat_as_pairs_in_order),
		T(test_upstream_repeats_in_every_source_and_a_later_source_replaces_the_list),
		T(test_bad_balance_or_resolve_interval_is_an_error_naming_the_flag),
		T(test_unequal_numbers_of_cert_and_key_are_an_error),
		T(test_more_pairs_than_the_maximum_is_an_error),
		T(test_config_files_lists_every_certificate_and_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
