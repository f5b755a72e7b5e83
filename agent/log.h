/*
 * Logging. One sink for the whole process, chosen at start-up: journald's
 * native protocol with structured fields when stderr is connected to the
 * journal (JOURNAL_STREAM matches stderr), JSON lines on stderr otherwise.
 * The sink is process-wide state — the one exception to "no mutable globals",
 * because every layer may log and threading a logger through pure modules
 * would invite them to log. Pure modules do not log (STYLE.md rule 4).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_AUTO = 0, LOG_FORMAT_JSON, LOG_FORMAT_JOURNAL, LOG_FORMAT_TEXT };

/* A structured field: key in lower_snake_case ("target", "probe"); journald
 * gets it upper-cased (TARGET=...). Both strings are borrowed. */
struct log_field {
    const char *key;
    const char *value;
};

void log_setup(enum log_level level, enum log_format format);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);
/* Parse "debug|info|warn|error" / "auto|json|journal|text"; -EINVAL when unknown. */
int log_level_from_name(const char *s);
int log_format_from_name(const char *s);
const char *log_level_name(enum log_level level);

/* error: -errno or 0; when set, its text is appended (": Connection refused")
 * and an "errno" field is added. */
void log_fields(enum log_level level, int error, const struct log_field *fields, size_t n_fields,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void log_fieldsv(enum log_level level, int error, const struct log_field *fields, size_t n_fields,
                 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#define log_debug(...) log_fields(LOG_LEVEL_DEBUG, 0, NULL, 0, __VA_ARGS__)
#define log_info(...)  log_fields(LOG_LEVEL_INFO, 0, NULL, 0, __VA_ARGS__)
#define log_warn(...)  log_fields(LOG_LEVEL_WARN, 0, NULL, 0, __VA_ARGS__)
#define log_error(...) log_fields(LOG_LEVEL_ERROR, 0, NULL, 0, __VA_ARGS__)

/* Log with the error's text and return r, so "return log_error_errno(r, ...)" works. */
int log_error_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_warn_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
