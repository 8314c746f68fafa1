/*
 * The `mqtls passwd` sub-command (proxy/auth/passwd_tool.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/auth/passwd.h"
#include "proxy/auth/passwd_tool.h"

#define MOSQ_ALICE "$7$101$7JJupy0FCRiI/fkr$+QphYGsdUsmIgIjlq6N3jhrCh+iBv5+0vaLCvlWMmr+Aqq4l2JI0nKUi1ziM/wbMJZC2UFWwOjhqTVX4KYvd5w=="

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/mqtls-test-passwd-tool-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/users", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	int left;

	unlink(f->path);
	left = rmdir(f->dir);   /* fails if the tool left a temporary file */
	free(f);
	return left == 0 ? 0 : -1;
}

/* Runs the tool with a NULL-terminated list of arguments after "passwd". */
static int run(const char *first, ...)
{
	char *argv[16];
	int argc = 0;
	const char *a;
	va_list ap;

	argv[argc++] = (char *)"passwd";
	va_start(ap, first);
	for (a = first; a != NULL && argc < 15; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return passwd_tool_main(argc, argv);
}

static char *slurp(const char *path)
{
	static char buf[8192];
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static enum passwd_result check(const char *path, const char *user, const char *pw)
{
	char err[256];
	struct passwd_db *db = passwd_db_load(path, NULL, NULL, err, sizeof(err));
	enum passwd_result r;

	assert_non_null(db);
	assert_int_equal(passwd_db_bad_lines(db), 0);
	r = passwd_db_check(db, user, strlen(user), (const uint8_t *)pw, strlen(pw));
	passwd_db_free(db);
	return r;
}

static void test_create_writes_an_argon2id_entry_by_default_with_mode_0600(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(run("-c", "-b", f->path, "alice", "s3cret", NULL), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_non_null(strstr(slurp(f->path), "alice:$argon2id$v=19$m=19456,t=2,p=1$"));
	assert_int_equal(check(f->path, "alice", "s3cret"), PASSWD_OK);
	assert_int_equal(check(f->path, "alice", "s3cre"), PASSWD_BAD_PASSWORD);
}

static void test_pbkdf2_option_writes_210000_iterations_and_a_12_byte_salt(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run("-c", "--pbkdf2", "-b", f->path, "bob", "pw", NULL), 0);
	/* 12 salt bytes are 16 base64 characters; mosquitto 2.0 reads no other size. */
	assert_int_equal(strncmp(slurp(f->path), "bob:$7$210000$", 14), 0);
	assert_int_equal(strchr(slurp(f->path) + 14, '$') - (slurp(f->path) + 14), 16);
	assert_int_equal(check(f->path, "bob", "pw"), PASSWD_OK);
}

static void test_update_replaces_one_entry_and_keeps_every_other_line(void **state)
{
	struct fixture *f = *state;
	FILE *fp = fopen(f->path, "w");
	char *text;

	assert_non_null(fp);
	fputs("# managed by hand\nalice:" MOSQ_ALICE "\nbob:$6$x$y\n", fp);
	fclose(fp);
	assert_int_equal(run("--sha512", "-b", f->path, "bob", "new", NULL), 0);
	text = slurp(f->path);
	assert_int_equal(strncmp(text, "# managed by hand\nalice:" MOSQ_ALICE "\nbob:$6$", 24 + strlen(MOSQ_ALICE) + 8), 0);
	assert_int_equal(check(f->path, "bob", "new"), PASSWD_OK);
	assert_int_equal(check(f->path, "alice", "secret"), PASSWD_OK);
	assert_int_equal(run("-b", f->path, "carol", "c", NULL), 0);
	assert_int_equal(check(f->path, "carol", "c"), PASSWD_OK);
	assert_int_equal(check(f->path, "alice", "secret"), PASSWD_OK);
}

static void test_update_of_a_missing_file_fails_without_minus_c(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run("-b", f->path, "alice", "pw", NULL), 1);
	assert_int_equal(access(f->path, F_OK), -1);
}

static void test_delete_removes_the_user(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run("-c", "--sha512", "-b", f->path, "alice", "a", NULL), 0);
	assert_int_equal(run("--sha512", "-b", f->path, "bob", "b", NULL), 0);
	assert_int_equal(run("-D", f->path, "alice", NULL), 0);
	assert_int_equal(check(f->path, "alice", "a"), PASSWD_UNKNOWN_USER);
	assert_int_equal(check(f->path, "bob", "b"), PASSWD_OK);
	assert_int_equal(run("-D", f->path, "alice", NULL), 1);
}

static void test_password_is_read_from_stdin_when_it_is_not_a_terminal(void **state)
{
	struct fixture *f = *state;
	int fds[2], saved = dup(STDIN_FILENO);

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "from stdin\n", 11), 11);
	close(fds[1]);
	assert_int_equal(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
	close(fds[0]);
	assert_int_equal(run("-c", "--sha512", f->path, "dave", NULL), 0);
	dup2(saved, STDIN_FILENO);
	close(saved);
	clearerr(stdin);
	assert_int_equal(check(f->path, "dave", "from stdin"), PASSWD_OK);
}

static void test_usage_errors_and_bad_user_names_exit_with_2(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(NULL), 2);
	assert_int_equal(run("-b", f->path, "alice", NULL), 2);
	assert_int_equal(run("--md5", "-b", f->path, "alice", "pw", NULL), 2);
	assert_int_equal(run("-c", "-b", f->path, "al:ice", "pw", NULL), 2);
	assert_int_equal(run("-c", "-b", f->path, "al\nice", "pw", NULL), 2);
	assert_int_equal(run("-c", "-b", f->path, "", "pw", NULL), 2);
	assert_int_equal(access(f->path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_writes_an_argon2id_entry_by_default_with_mode_0600, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pbkdf2_option_writes_210000_iterations_and_a_12_byte_salt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_replaces_one_entry_and_keeps_every_other_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_of_a_missing_file_fails_without_minus_c, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_removes_the_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_password_is_read_from_stdin_when_it_is_not_a_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors_and_bad_user_names_exit_with_2, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
