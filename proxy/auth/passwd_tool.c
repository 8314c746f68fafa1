/*
 * `mqtls passwd`; see passwd_tool.h.
 */
#include "proxy/auth/passwd_tool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/mem.h>

#include "proxy/auth/passwd.h"
#include "proxy/auth/pwhash.h"

/* MQTT passwords are binary data with a 16-bit length (MQTT 3.1.3.5). */
#define MAX_PASSWORD 65535
/* Leaves room on a PASSWD_MAX_LINE line for the longest hash we write. */
#define MAX_USER 1024

struct tool_args {
	int create;
	int batch;
	int delete;
	enum pwhash_scheme scheme;
	const char *file;
	const char *user;
	const char *password;   /* only with -b; borrowed from argv */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: mqtls passwd [-c] [--argon2id|--pbkdf2|--sha512] FILE USER\n"
		"       mqtls passwd [-c] [--argon2id|--pbkdf2|--sha512] -b FILE USER PASSWORD\n"
		"       mqtls passwd -D FILE USER\n");
}

static int parse_args(int argc, char **argv, struct tool_args *a)
{
	int i, npos = 0;
	const char *pos[3] = { NULL, NULL, NULL };

	memset(a, 0, sizeof(*a));
	a->scheme = PWHASH_ARGON2ID;
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "-c") == 0)
			a->create = 1;
		else if (strcmp(s, "-b") == 0)
			a->batch = 1;
		else if (strcmp(s, "-D") == 0)
			a->delete = 1;
		else if (strcmp(s, "--argon2id") == 0)
			a->scheme = PWHASH_ARGON2ID;
		else if (strcmp(s, "--pbkdf2") == 0)
			a->scheme = PWHASH_PBKDF2_SHA512;
		else if (strcmp(s, "--sha512") == 0)
			a->scheme = PWHASH_SHA512;
		else if (strcmp(s, "--") == 0 || s[0] != '-' || s[1] == '\0')
			break;
		else
			return 0;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	for (; i < argc; i++) {
		if (npos == 3)
			return 0;
		pos[npos++] = argv[i];
	}
	if (npos != (a->batch ? 3 : 2) || (a->delete && (a->batch || a->create)))
		return 0;
	a->file = pos[0];
	a->user = pos[1];
	a->password = pos[2];
	return 1;
}

/* A user name must survive the file format: no ':' (the separator), no
 * line breaks or other control characters, and not empty. */
static int user_is_valid(const char *u)
{
	const unsigned char *p = (const unsigned char *)u;

	if (*p == '\0' || *p == '#' || strlen(u) > MAX_USER)
		return 0;
	for (; *p != '\0'; p++)
		if (*p == ':' || *p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* Reads one line into `buf` (capacity `cap`), without its newline. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len)
{
	size_t n;

	if (fgets(buf, (int)cap, f) == NULL)
		return 0;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return 0;   /* longer than the limit */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	*len = n;
	return 1;
}

/* Prompts on the terminal with echo off. */
static int prompt(FILE *tty, const char *what, char *buf, size_t cap, size_t *len)
{
	struct termios old, quiet;
	int fd = fileno(tty), ok;

	if (tcgetattr(fd, &old) != 0)
		return 0;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	fprintf(stderr, "%s", what);
	fflush(stderr);
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		return 0;
	ok = read_line(tty, buf, cap, len);
	tcsetattr(fd, TCSAFLUSH, &old);
	fprintf(stderr, "\n");
	return ok;
}

/* Fills `buf` (capacity MAX_PASSWORD + 2) with the password. */
static int get_password(const struct tool_args *a, char *buf, size_t cap, size_t *len)
{
	char *again;
	size_t alen;
	FILE *tty;
	int ok = 0;

	if (a->batch) {
		*len = strlen(a->password);
		if (*len > MAX_PASSWORD)
			return 0;
		memcpy(buf, a->password, *len);
		return 1;
	}
	if (!isatty(STDIN_FILENO))
		return read_line(stdin, buf, cap, len) && *len <= MAX_PASSWORD;
	tty = fopen("/dev/tty", "r+e");
	if (tty == NULL)
		tty = stdin;
	again = malloc(cap);
	if (again == NULL)
		goto err;
	if (!prompt(tty, "Password: ", buf, cap, len) ||
	    !prompt(tty, "Reenter password: ", again, cap, &alen))
		goto err;
	if (*len != alen || memcmp(buf, again, alen) != 0) {
		fprintf(stderr, "mqtls passwd: passwords do not match\n");
		goto err;
	}
	ok = *len <= MAX_PASSWORD;
err:
	if (again != NULL)
		OPENSSL_cleanse(again, cap);
	free(again);
	if (tty != stdin)
		fclose(tty);
	return ok;
}

/* Returns 1 if `line` is an entry for `user`. */
static int line_is_for(const char *line, const char *user)
{
	size_t n = strlen(user);

	return strncmp(line, user, n) == 0 && line[n] == ':';
}

/* Copies the old file's lines into `out`, putting `entry` (NULL to delete)
 * in place of the user's first line and dropping any later ones. Returns
 * 1 if the user was found. */
static int copy_lines(FILE *in, FILE *out, const char *user, const char *entry)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int found = 0;

	while ((n = getline(&line, &cap, in)) >= 0) {
		if (line_is_for(line, user)) {
			if (!found && entry != NULL)
				fprintf(out, "%s\n", entry);
			found = 1;
			continue;
		}
		fwrite(line, 1, (size_t)n, out);
		if (n > 0 && line[n - 1] != '\n')
			fputc('\n', out);
	}
	free(line);
	return found;
}

/* Writes the new file next to the old one and renames it into place. */
static int write_file(const struct tool_args *a, const char *entry)
{
	char *tmp = NULL;
	FILE *in = NULL, *out = NULL;
	int fd = -1, found = 0, ok = 0;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", a->file) < 0) {
		tmp = NULL;
		goto err;
	}
	if (!a->create) {
		in = fopen(a->file, "re");
		if (in == NULL) {
			fprintf(stderr, "mqtls passwd: %s: %s (use -c to create it)\n", a->file,
				strerror(errno));
			goto err;
		}
	}
	fd = mkostemp(tmp, O_CLOEXEC);   /* mode 0600 */
	if (fd < 0 || fchmod(fd, 0600) != 0 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "mqtls passwd: %s: %s\n", tmp, strerror(errno));
		goto err;
	}
	fd = -1;
	if (in != NULL)
		found = copy_lines(in, out, a->user, entry);
	if (a->delete && !found) {
		fprintf(stderr, "mqtls passwd: user not found in %s\n", a->file);
		goto err;
	}
	if (!found && entry != NULL)
		fprintf(out, "%s\n", entry);
	if (fflush(out) != 0 || fsync(fileno(out)) != 0 || ferror(out)) {
		fprintf(stderr, "mqtls passwd: %s: write failed\n", tmp);
		goto err;
	}
	if (fclose(out) != 0) {
		out = NULL;
		goto err;
	}
	out = NULL;
	if (rename(tmp, a->file) != 0) {
		fprintf(stderr, "mqtls passwd: %s: %s\n", a->file, strerror(errno));
		goto err;
	}
	ok = 1;
err:
	if (out != NULL)
		fclose(out);
	if (fd >= 0)
		close(fd);
	if (!ok && tmp != NULL)
		unlink(tmp);
	if (in != NULL)
		fclose(in);
	free(tmp);
	return ok;
}

int passwd_tool_main(int argc, char **argv)
{
	struct tool_args a;
	struct pwhash h;
	char *pw = NULL, entry[PASSWD_MAX_LINE];
	size_t pwlen = 0, cap = MAX_PASSWORD + 2;
	int status = 1;

	if (!parse_args(argc, argv, &a)) {
		usage();
		return 2;
	}
	if (!user_is_valid(a.user)) {
		fprintf(stderr, "mqtls passwd: user names must be 1-%d bytes, not start with '#', "
				"and hold no ':' or control characters\n", MAX_USER);
		return 2;
	}
	if (a.delete)
		return write_file(&a, NULL) ? 0 : 1;
	pw = malloc(cap);
	if (pw == NULL)
		goto err;
	if (!get_password(&a, pw, cap, &pwlen)) {
		fprintf(stderr, "mqtls passwd: could not read a password (at most %d bytes)\n",
			MAX_PASSWORD);
		goto err;
	}
	if (!pwhash_create(&h, a.scheme, (const uint8_t *)pw, pwlen)) {
		fprintf(stderr, "mqtls passwd: hashing failed\n");
		goto err;
	}
	memcpy(entry, a.user, strlen(a.user));
	entry[strlen(a.user)] = ':';
	if (!pwhash_format(&h, entry + strlen(a.user) + 1, sizeof(entry) - strlen(a.user) - 1)) {
		fprintf(stderr, "mqtls passwd: entry too long\n");
		goto err;
	}
	if (write_file(&a, entry))
		status = 0;
err:
	if (pw != NULL)
		OPENSSL_cleanse(pw, cap);
	free(pw);
	OPENSSL_cleanse(&h, sizeof(h));
	OPENSSL_cleanse(entry, sizeof(entry));
	return status;
}
