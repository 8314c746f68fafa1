#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tls/load_errors.h"

int tls_file_readable(const char *flag, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s %s: %s", flag, path, strerror(errno));
		return 0;
	}
	fclose(f);
	return 1;
}

void tls_take_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}
