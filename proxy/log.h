/*
 * Logging: one line per event on stderr, written with a single write(2) so
 * lines from different worker threads never interleave.
 */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once at startup, before any worker starts; read-only afterwards. */
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
/* Parses "error", "warn", "info" or "debug"; returns 1 on success. */
int log_level_parse(const char *s, enum log_level *out);
/* Set once at startup: 1 for one JSON object per line, 0 for text. Both
 * carry the same fields: an event's `word key=value ...` becomes
 * {"ts","level","event":word,key:value...}; other text becomes "msg". */
void log_set_json(int on);

/* Logs one event. Warnings and errors from one call site (one format
 * string) are limited to a few a second per thread; the rest are counted
 * and reported as one "repeated" line when that site logs again. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  do { if (log_enabled(LOG_WARN)) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * Copies |len| bytes of untrusted text (a client id, say) into |out| for a
 * log line: printable ASCII is kept, anything else becomes \xNN, quotes and
 * backslashes are escaped, and the result is cut at |cap|-1 with "..." so a
 * client cannot forge log lines or flood the log.
 */
void log_escape(char *out, size_t cap, const void *data, size_t len);

#endif
