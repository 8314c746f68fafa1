#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/log.h"

static enum log_level current_level = LOG_INFO;
static int json_lines;

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

void log_set_json(int on)
{
	json_lines = on;
}

/* Appends |n| bytes at |p| to line[*o] if they fit (keeping room for the
 * closing "}\n"); returns 1/0. */
static int put(char *line, size_t cap, size_t *o, const char *p, size_t n)
{
	if (*o + n + 3 > cap)
		return 0;
	memcpy(line + *o, p, n);
	*o += n;
	return 1;
}

/* Writes |n| bytes of text as the inside of a JSON string. Our log text is
 * printable ASCII in which quoted values carry log_escape's \" \\ \xNN;
 * |quoted| says the text is such a value. */
static int put_json_text(char *line, size_t cap, size_t *o, const char *p, size_t n, int quoted)
{
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		char esc[8];

		if (quoted && ch == '\\' && i + 1 < n) {
			if (p[i + 1] == 'x' && i + 3 < n) {
				snprintf(esc, sizeof(esc), "\\u00%c%c", p[i + 2], p[i + 3]);
				if (!put(line, cap, o, esc, 6))
					return 0;
				i += 3;
				continue;
			}
			if (!put(line, cap, o, p + i, 2))
				return 0;
			i++;
			continue;
		}
		if (ch == '"' || ch == '\\' || (unsigned char)ch < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char)ch);
			if (!put(line, cap, o, esc, 6))
				return 0;
			continue;
		}
		if (!put(line, cap, o, &ch, 1))
			return 0;
	}
	return 1;
}

/* The key=value fields of |msg| after its first word, as JSON members.
 * Returns 0 (nothing usable) when the text is not of that shape. */
static int put_json_fields(char *line, size_t cap, size_t *o, const char *msg)
{
	const char *p = msg, *word_end = msg;

	while (*word_end >= 'a' && *word_end <= 'z')
		word_end++;
	if (word_end == msg || (*word_end != ' ' && *word_end != '\0'))
		return 0;
	if (!put(line, cap, o, ",\"event\":\"", 10) || !put(line, cap, o, msg, (size_t)(word_end - msg)) ||
	    !put(line, cap, o, "\"", 1))
		return 0;
	p = word_end;
	while (*p == ' ') {
		const char *k = ++p, *v, *end;
		int quoted;

		while ((*p >= 'a' && *p <= 'z') || *p == '_' || (*p >= '0' && *p <= '9'))
			p++;
		if (p == k || *p != '=')
			return 0;
		v = ++p;
		quoted = *v == '"';
		if (quoted) {
			for (p = v + 1; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
			}
			if (*p != '"')
				return 0;
			end = ++p;
		} else {
			while (*p && *p != ' ')
				p++;
			end = p;
		}
		if (!put(line, cap, o, ",\"", 2) || !put(line, cap, o, k, (size_t)(v - 1 - k)) ||
		    !put(line, cap, o, "\":\"", 3) ||
		    !put_json_text(line, cap, o, quoted ? v + 1 : v, (size_t)(end - v) - (quoted ? 2 : 0), quoted) ||
		    !put(line, cap, o, "\"", 1))
			return 0;
	}
	return *p == '\0';
}

static size_t format_json(char *line, size_t cap, const char *ts, enum log_level level, const char *msg)
{
	size_t o = 0, mark;

	put(line, cap, &o, "{\"ts\":\"", 7);
	put(line, cap, &o, ts, strlen(ts));
	put(line, cap, &o, "\",\"level\":\"", 11);
	put(line, cap, &o, level_names[level], strlen(level_names[level]));
	put(line, cap, &o, "\"", 1);
	mark = o;
	if (!put_json_fields(line, cap, &o, msg)) {
		o = mark;
		put(line, cap, &o, ",\"msg\":\"", 8);
		put_json_text(line, cap, &o, msg, strlen(msg), 0);
		put(line, cap, &o, "\"", 1);
	}
	line[o++] = '}';
	line[o++] = '\n';
	return o;
}

/* Repeats of one call site per thread: a few a second, then counted. */
#define REPEAT_SITES 8
#define REPEAT_BURST 5

struct repeat_site {
	const char *fmt;
	uint64_t window_ms;     /* start of the current one-second window */
	uint32_t in_window, suppressed;
};

static __thread struct repeat_site repeat_sites[REPEAT_SITES];
static __thread unsigned repeat_next;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether this warning or error is written; *repeated is set to how many
 * of its site's were left out before it. */
static int repeat_allows(const char *fmt, uint32_t *repeated)
{
	struct repeat_site *r = NULL;
	uint64_t now = mono_ms();

	*repeated = 0;
	for (unsigned i = 0; i < REPEAT_SITES; i++) {
		if (repeat_sites[i].fmt == fmt)
			r = &repeat_sites[i];
	}
	if (r == NULL) {
		r = &repeat_sites[repeat_next++ % REPEAT_SITES];
		*r = (struct repeat_site){ fmt, now, 0, 0 };
	}
	if (now - r->window_ms >= 1000) {
		*repeated = r->suppressed;
		r->window_ms = now;
		r->in_window = 0;
		r->suppressed = 0;
	}
	if (r->in_window >= REPEAT_BURST) {
		r->suppressed++;
		return 0;
	}
	r->in_window++;
	return 1;
}

static void emit(enum log_level level, const char *msg)
{
	char line[4096], ts[40];
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	if (json_lines) {
		n = format_json(line, sizeof(line), ts, level, msg);
	} else {
		int r = snprintf(line, sizeof(line) - 1, "%s %s %s", ts, level_names[level], msg);

		n = r < 0 ? 0 : ((size_t)r < sizeof(line) - 1 ? (size_t)r : sizeof(line) - 2);
		line[n++] = '\n';
	}
	/* One write per line: atomic for lines under PIPE_BUF on pipes. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report a logging failure. */
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[2048];
	uint32_t repeated = 0;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (level <= LOG_WARN && !repeat_allows(fmt, &repeated))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (repeated > 0) {
		char note[160];
		size_t w = strcspn(msg, " ");

		snprintf(note, sizeof(note), "repeated count=%u event=%.*s", repeated, (int)(w < 40 ? w : 40), msg);
		emit(level, note);
	}
	emit(level, msg);
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
