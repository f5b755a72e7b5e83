/*
 * Tests for agent/log.c. The JSON sink is read back from a pipe standing in
 * for stderr and parsed with jansson. The journal sink is proven against the
 * native protocol: the test binds journald's socket path itself (when no
 * journald owns it), receives the datagram and checks its KEY=value fields.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define JOURNAL_DIR    "/run/systemd/journal"
#define JOURNAL_SOCKET JOURNAL_DIR "/socket"

/* Run fn with stderr redirected into a pipe; return what it wrote. */
static char *capture_stderr(void (*fn)(void)) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    static char out[65536];
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void write_json_lines(void) {
    log_setup(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    struct log_field f[] = {{"target", "sqlserver"}, {"state", "failed"}};
    log_fields(LOG_LEVEL_WARN, 0, f, 2, "target %s went %s \"quoted\"\n", "sqlserver", "failed");
    log_debug("suppressed at info");
    log_error_errno(-ECONNREFUSED, "connect %s", "127.0.0.1:1433");
}

START_TEST(test_json_lines) {
    char *out = capture_stderr(write_json_lines);
    char *nl = strchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    json_error_t err;
    json_t *first = json_loads(out, 0, &err);
    ck_assert_msg(first != NULL, "line 1 is not JSON: %s (%s)", out, err.text);
    ck_assert_str_eq(json_string_value(json_object_get(first, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(first, "msg")),
                     "target sqlserver went failed \"quoted\"\n");
    ck_assert_str_eq(json_string_value(json_object_get(first, "target")), "sqlserver");
    ck_assert_str_eq(json_string_value(json_object_get(first, "state")), "failed");
    const char *ts = json_string_value(json_object_get(first, "ts"));
    ck_assert_ptr_nonnull(ts);
    ck_assert_uint_eq(strlen(ts), strlen("2026-11-29T06:00:00.000000Z"));
    json_decref(first);
    char *second_line = nl + 1;
    nl = strchr(second_line, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    ck_assert_str_eq(nl + 1, ""); /* the debug line was suppressed */
    json_t *second = json_loads(second_line, 0, &err);
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(json_string_value(json_object_get(second, "level")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(second, "msg")),
                     "connect 127.0.0.1:1433: Connection refused");
    ck_assert_int_eq(json_integer_value(json_object_get(second, "errno")), ECONNREFUSED);
    json_decref(second);
}
END_TEST

static void write_text(void) {
    log_setup(LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
    struct log_field f[] = {{"target", "a"}};
    log_fields(LOG_LEVEL_DEBUG, 0, f, 1, "hello");
}

static void write_invalid_utf8(void) {
    log_setup(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    struct log_field f[] = {{"path", "/tmp/\xff.yaml"}};
    log_fields(LOG_LEVEL_ERROR, 0, f, 1, "cannot load /tmp/%s", "\xff\xfe.yaml");
}

START_TEST(test_invalid_utf8_is_not_lost) {
    char *out = capture_stderr(write_invalid_utf8);
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    ck_assert_msg(o != NULL, "no JSON line for invalid UTF-8: '%s'", out);
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "cannot load /tmp/??.yaml");
    ck_assert_str_eq(json_string_value(json_object_get(o, "path")), "/tmp/?.yaml");
    json_decref(o);
}
END_TEST

START_TEST(test_text_line) {
    char *out = capture_stderr(write_text);
    ck_assert_ptr_nonnull(strstr(out, " debug hello target=a\n"));
}
END_TEST

START_TEST(test_names) {
    ck_assert_int_eq(log_level_from_name("debug"), LOG_LEVEL_DEBUG);
    ck_assert_int_eq(log_level_from_name("warning"), LOG_LEVEL_WARN);
    ck_assert_int_eq(log_level_from_name("loud"), -EINVAL);
    ck_assert_int_eq(log_format_from_name("journal"), LOG_FORMAT_JOURNAL);
    ck_assert_int_eq(log_format_from_name("xml"), -EINVAL);
    ck_assert_str_eq(log_level_name(LOG_LEVEL_ERROR), "error");
}
END_TEST

START_TEST(test_auto_picks_json_without_journal_stream) {
    unsetenv("JOURNAL_STREAM");
    char *out = capture_stderr(write_json_lines);
    ck_assert_int_eq(out[0], '{');
}
END_TEST

static bool has_field(const char *msg, size_t len, const char *field) {
    size_t fl = strlen(field);
    for (const char *p = msg; p < msg + len;) {
        const char *e = memchr(p, '\n', (size_t)(msg + len - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(msg + len - p);
        if (l == fl && memcmp(p, field, fl) == 0)
            return true;
        p += l + 1;
    }
    return false;
}

START_TEST(test_journal_native_protocol) {
    struct stat st;
    if (stat(JOURNAL_SOCKET, &st) == 0) {
        /* A real journald owns the socket here; the field mapping is the same
         * code path, proven on machines without one (CI). */
        ck_assert_msg(S_ISSOCK(st.st_mode), "%s exists and is not a socket", JOURNAL_SOCKET);
        return;
    }
    mkdir("/run/systemd", 0755);
    bool made_dir = mkdir(JOURNAL_DIR, 0755) == 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, JOURNAL_SOCKET);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    log_setup(LOG_LEVEL_INFO, LOG_FORMAT_JOURNAL);
    struct log_field f[] = {{"target", "sqlserver"}, {"from_state", "healthy"}};
    log_fields(LOG_LEVEL_WARN, -ETIMEDOUT, f, 2, "target %s failed", "sqlserver");
    char msg[4096];
    ssize_t n = recv(fd, msg, sizeof(msg), 0);
    close(fd);
    unlink(JOURNAL_SOCKET);
    if (made_dir)
        rmdir(JOURNAL_DIR);
    ck_assert_int_gt(n, 0);
    ck_assert(has_field(msg, (size_t)n, "MESSAGE=target sqlserver failed: Connection timed out"));
    ck_assert(has_field(msg, (size_t)n, "PRIORITY=4"));
    ck_assert(has_field(msg, (size_t)n, "SYSLOG_IDENTIFIER=edgewarden"));
    ck_assert(has_field(msg, (size_t)n, "TARGET=sqlserver"));
    ck_assert(has_field(msg, (size_t)n, "FROM_STATE=healthy"));
    ck_assert(has_field(msg, (size_t)n, "ERRNO=110"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("sinks");
    tcase_add_test(tc, test_json_lines);
    tcase_add_test(tc, test_text_line);
    tcase_add_test(tc, test_invalid_utf8_is_not_lost);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_auto_picks_json_without_journal_stream);
    tcase_add_test(tc, test_journal_native_protocol);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
