#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/log.h"

static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	current_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= current_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 1;
		}
	}
	return 0;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;
	int r;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
	             level_names[level]);
	if (r > 0)
		n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';
	/* One write per line: atomic for lines under PIPE_BUF on pipes. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report a logging failure. */
	}
}

static size_t escaped_size(unsigned char ch)
{
	if (ch >= 0x20 && ch < 0x7f)
		return (ch == '"' || ch == '\\') ? 2 : 1;
	return 4;
}

void log_escape(char *out, size_t cap, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;
	size_t o = 0, total = 0, limit;

	if (cap == 0)
		return;
	for (size_t i = 0; i < len && total < cap; i++)
		total += escaped_size(p[i]);
	/* Whole text if it fits with its NUL; otherwise leave room for "...". */
	limit = total + 1 <= cap ? cap - 1 : (cap >= 4 ? cap - 4 : 0);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];
		size_t need = escaped_size(ch);

		if (o + need > limit) {
			if (cap >= 4) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)ch;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}
