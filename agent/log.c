/*
 * The log sink. At setup the format is fixed once: "auto" means journald's
 * native protocol when stderr is the journal stream (systemd sets
 * JOURNAL_STREAM to the device:inode of the stream it gave us), JSON lines on
 * stderr otherwise. Journald gets MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and
 * every structured field upper-cased, so `journalctl TARGET=sqlserver` works.
 * JSON lines carry a UTC timestamp with microseconds, level, msg and the
 * fields. A line is built whole and written with one write(2), so lines from
 * a crash mid-way are never interleaved.
 */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "buf.h"

/* Process-wide sink; see log.h for why this one state is global. */
static struct {
    enum log_level level;
    enum log_format format;
} sink = {LOG_LEVEL_INFO, LOG_FORMAT_JSON};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"auto", "json", "journal", "text"};

static bool stderr_is_journal(void) {
    const char *e = getenv("JOURNAL_STREAM");
    if (!e)
        return false;
    unsigned long long dev, ino;
    if (sscanf(e, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level level, enum log_format format) {
    sink.level = level;
    if (format == LOG_FORMAT_AUTO)
        format = stderr_is_journal() ? LOG_FORMAT_JOURNAL : LOG_FORMAT_JSON;
    sink.format = format;
}

enum log_level log_get_level(void) {
    return sink.level;
}

bool log_enabled(enum log_level level) {
    return level >= sink.level;
}

int log_level_from_name(const char *s) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    if (strcmp(s, "warning") == 0)
        return LOG_LEVEL_WARN;
    return -EINVAL;
}

int log_format_from_name(const char *s) {
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
        if (strcmp(s, format_names[i]) == 0)
            return (int)i;
    return -EINVAL;
}

const char *log_level_name(enum log_level level) {
    if ((unsigned)level > LOG_LEVEL_ERROR)
        return "info";
    return level_names[level];
}

static int syslog_priority(enum log_level level) {
    switch (level) {
    case LOG_LEVEL_DEBUG:
        return LOG_DEBUG;
    case LOG_LEVEL_INFO:
        return LOG_INFO;
    case LOG_LEVEL_WARN:
        return LOG_WARNING;
    case LOG_LEVEL_ERROR:
        return LOG_ERR;
    }
    return LOG_INFO;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a failing stderr */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void timestamp(char *out, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static void emit_journal(enum log_level level, int error, const struct log_field *fields,
                         size_t n_fields, const char *msg) {
    struct buf b;
    buf_init(&b, 0);
    /* Field strings live back to back in one buffer; offsets become iovecs. */
    size_t n_iov = 3 + n_fields + (error ? 1 : 0);
    struct iovec *iov = calloc(n_iov, sizeof(*iov));
    size_t *offs = calloc(n_iov + 1, sizeof(*offs));
    if (!iov || !offs)
        goto out;
    size_t k = 0;
    offs[k++] = b.len;
    if (buf_printf(&b, "MESSAGE=%s", msg) < 0)
        goto out;
    offs[k++] = b.len;
    if (buf_printf(&b, "PRIORITY=%d", syslog_priority(level)) < 0)
        goto out;
    offs[k++] = b.len;
    if (buf_puts(&b, "SYSLOG_IDENTIFIER=edgewarden") < 0)
        goto out;
    for (size_t i = 0; i < n_fields; i++) {
        offs[k++] = b.len;
        for (const char *c = fields[i].key; *c; c++) {
            char u = (char)toupper((unsigned char)*c);
            if (buf_append(&b, &u, 1) < 0)
                goto out;
        }
        if (buf_printf(&b, "=%s", fields[i].value ? fields[i].value : "") < 0)
            goto out;
    }
    if (error) {
        offs[k++] = b.len;
        if (buf_printf(&b, "ERRNO=%d", -error) < 0)
            goto out;
    }
    offs[k] = b.len;
    for (size_t i = 0; i < k; i++)
        iov[i] = (struct iovec){.iov_base = b.data + offs[i], .iov_len = offs[i + 1] - offs[i]};
    if (sd_journal_sendv(iov, (int)k) < 0) {
        /* journald gone (restart): fall back to stderr for this line. */
        write_all(STDERR_FILENO, msg, strlen(msg));
        write_all(STDERR_FILENO, "\n", 1);
    }
out:
    free(iov);
    free(offs);
    buf_free(&b);
}

/* A JSON string of text that may come from outside (a path, a peer's bytes):
 * when it is not valid UTF-8, bytes above 0x7f become '?', so the line is
 * never lost. */
static json_t *json_text(const char *s) {
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static void emit_json(enum log_level level, int error, const struct log_field *fields,
                      size_t n_fields, const char *msg) {
    char ts[48];
    timestamp(ts, sizeof(ts));
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(log_level_name(level)));
    json_object_set_new(o, "msg", json_text(msg));
    for (size_t i = 0; i < n_fields; i++)
        json_object_set_new(o, fields[i].key, json_text(fields[i].value ? fields[i].value : ""));
    if (error)
        json_object_set_new(o, "errno", json_integer(-error));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    char *withnl = realloc(line, n + 2);
    if (!withnl) {
        free(line);
        return;
    }
    withnl[n] = '\n';
    write_all(STDERR_FILENO, withnl, n + 1);
    free(withnl);
}

static void emit_text(enum log_level level, const struct log_field *fields, size_t n_fields,
                      const char *msg) {
    struct buf b;
    buf_init(&b, 0);
    char ts[48];
    timestamp(ts, sizeof(ts));
    int r = buf_printf(&b, "%s %-5s %s", ts, log_level_name(level), msg);
    for (size_t i = 0; r == 0 && i < n_fields; i++)
        r = buf_printf(&b, " %s=%s", fields[i].key, fields[i].value ? fields[i].value : "");
    if (r == 0 && buf_puts(&b, "\n") == 0)
        write_all(STDERR_FILENO, b.data, b.len);
    buf_free(&b);
}

void log_fieldsv(enum log_level level, int error, const struct log_field *fields, size_t n_fields,
                 const char *fmt, va_list ap) {
    if (!log_enabled(level))
        return;
    struct buf msg;
    buf_init(&msg, 0);
    if (buf_vprintf(&msg, fmt, ap) < 0)
        goto out;
    if (error && buf_printf(&msg, ": %s", strerror(-error)) < 0)
        goto out;
    switch (sink.format) {
    case LOG_FORMAT_JOURNAL:
        emit_journal(level, error, fields, n_fields, msg.data ? msg.data : "");
        break;
    case LOG_FORMAT_TEXT:
        emit_text(level, fields, n_fields, msg.data ? msg.data : "");
        break;
    case LOG_FORMAT_AUTO:
    case LOG_FORMAT_JSON:
        emit_json(level, error, fields, n_fields, msg.data ? msg.data : "");
        break;
    }
out:
    buf_free(&msg);
}

void log_fields(enum log_level level, int error, const struct log_field *fields, size_t n_fields,
                const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_fieldsv(level, error, fields, n_fields, fmt, ap);
    va_end(ap);
}

int log_error_errno(int r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_fieldsv(LOG_LEVEL_ERROR, r, NULL, 0, fmt, ap);
    va_end(ap);
    return r;
}

int log_warn_errno(int r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_fieldsv(LOG_LEVEL_WARN, r, NULL, 0, fmt, ap);
    va_end(ap);
    return r;
}
