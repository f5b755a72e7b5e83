/*
 * Tests for the request-head parser: a table of requests with the verdict
 * and fields each must produce, every one also fed a byte at a time (the
 * incremental answer must equal the one-shot answer), then the limits at
 * their exact boundaries, built programmatically.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define RAW(s) .input = (s), .len = sizeof(s) - 1

struct parse_case {
    const char *name;
    const char *input;
    size_t len;
    int want;        /* HTTP_PARSE_DONE, HTTP_PARSE_NEED_MORE, or a status */
    size_t consumed; /* for DONE; 0 means the whole input */
    enum http_method method;
    unsigned minor;
    const char *path;
    const char *query;  /* NULL: none */
    const char *accept; /* NULL: none */
    bool keep_alive;
};

#define H11 "HTTP/1.1\r\nHost: a\r\n"

static const struct parse_case cases[] = {
    /* valid */
    {"get root", RAW("GET / " H11 "\r\n"), HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/", NULL, NULL,
     true},
    {"get with query and accept",
     RAW("GET /metrics?name[]=up&x=1 " H11 "Accept: text/plain;version=0.0.4\r\n\r\n"),
     HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/metrics", "name[]=up&x=1",
     "text/plain;version=0.0.4", true},
    {"head", RAW("HEAD /healthz " H11 "\r\n"), HTTP_PARSE_DONE, 0, HTTP_METHOD_HEAD, 1, "/healthz",
     NULL, NULL, true},
    {"empty query", RAW("GET /x? " H11 "\r\n"), HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/x", "",
     NULL, true},
    {"second question mark stays in query", RAW("GET /x?a?b " H11 "\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/x", "a?b", NULL, true},
    {"path is not decoded", RAW("GET /a%2Fb " H11 "\r\n"), HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1,
     "/a%2Fb", NULL, NULL, true},
    {"1.1 connection close", RAW("GET / " H11 "Connection: close\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, NULL, false},
    {"1.1 close wins over keep-alive, any case",
     RAW("GET / " H11 "Connection: Keep-Alive , CLOSE\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, NULL, false},
    {"1.1 close in a second Connection field",
     RAW("GET / " H11 "Connection: upgrade\r\nconnection: close\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, NULL, false},
    {"1.1 close as a prefix is not close", RAW("GET / " H11 "Connection: closed\r\n\r\n"),
     HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/", NULL, NULL, true},
    {"1.0 defaults to close, Host optional", RAW("GET / HTTP/1.0\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 0, "/", NULL, NULL, false},
    {"1.0 keep-alive", RAW("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 0, "/", NULL, NULL, true},
    {"1.0 keep-alive and close", RAW("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
     HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 0, "/", NULL, NULL, false},
    {"accept trimmed", RAW("GET / " H11 "Accept: \t text/html \t\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, "text/html", true},
    {"first accept wins",
     RAW("GET / " H11 "accept: application/openmetrics-text\r\nAccept: text/plain\r\n\r\n"),
     HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/", NULL, "application/openmetrics-text", true},
    {"empty accept", RAW("GET / " H11 "Accept:\r\n\r\n"), HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1,
     "/", NULL, "", true},
    {"empty field value and odd token name", RAW("GET / " H11 "X-E!#$%&'*+-.^_`|~9:\r\n\r\n"),
     HTTP_PARSE_DONE, 0, HTTP_METHOD_GET, 1, "/", NULL, NULL, true},
    {"content-length zero", RAW("GET / " H11 "Content-Length: 000\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, NULL, true},
    {"obs-text in a value", RAW("GET / " H11 "User-Agent: caf\xc3\xa9\r\n\r\n"), HTTP_PARSE_DONE, 0,
     HTTP_METHOD_GET, 1, "/", NULL, NULL, true},
    {"pipelined: consumes only the first", RAW("GET /a " H11 "\r\nHEAD /b " H11 "\r\n"),
     HTTP_PARSE_DONE, sizeof("GET /a " H11 "\r\n") - 1, HTTP_METHOD_GET, 1, "/a", NULL, NULL, true},
    {"pipelined: garbage after the head is the next request's problem",
     RAW("GET /a " H11 "\r\n\x01\x02"), HTTP_PARSE_DONE, sizeof("GET /a " H11 "\r\n") - 1,
     HTTP_METHOD_GET, 1, "/a", NULL, NULL, true},

    /* not yet */
    {"empty", RAW(""), HTTP_PARSE_NEED_MORE},
    {"method only", RAW("GET"), HTTP_PARSE_NEED_MORE},
    {"method and space", RAW("GET "), HTTP_PARSE_NEED_MORE},
    {"target", RAW("GET /x"), HTTP_PARSE_NEED_MORE},
    {"partial version", RAW("GET / HTTP/1."), HTTP_PARSE_NEED_MORE},
    {"CR at the end of the request line", RAW("GET / HTTP/1.1\r"), HTTP_PARSE_NEED_MORE},
    {"fields without the empty line", RAW("GET / " H11), HTTP_PARSE_NEED_MORE},
    {"final CR", RAW("GET / " H11 "\r"), HTTP_PARSE_NEED_MORE},
    {"partial field name", RAW("GET / " H11 "Acc"), HTTP_PARSE_NEED_MORE},
    {"CR at the end of a field", RAW("GET / " H11 "Accept: x\r"), HTTP_PARSE_NEED_MORE},

    /* 400 */
    {"leading space", RAW(" GET / " H11 "\r\n"), 400},
    {"leading empty line", RAW("\r\nGET / " H11 "\r\n"), 400},
    {"double space", RAW("GET  / " H11 "\r\n"), 400},
    {"asterisk form", RAW("GET * " H11 "\r\n"), 400},
    {"absolute form", RAW("GET http://a/ " H11 "\r\n"), 400},
    {"control char in target",
     RAW("GET /a\x01"
         "b " H11 "\r\n"),
     400},
    {"tab in target", RAW("GET /a\tb " H11 "\r\n"), 400},
    {"high byte in target", RAW("GET /caf\xc3\xa9 " H11 "\r\n"), 400},
    {"NUL in target", RAW("GET /\0 " H11 "\r\n"), 400},
    {"NUL in method", RAW("G\0ET / " H11 "\r\n"), 400},
    {"NUL in field value", RAW("GET / " H11 "X: a\0b\r\n\r\n"), 400},
    {"NUL in field name", RAW("GET / " H11 "X\0: a\r\n\r\n"), 400},
    {"DEL in field value", RAW("GET / " H11 "X: a\x7f\r\n\r\n"), 400},
    {"ESC in field value", RAW("GET / " H11 "X: a\x1b[2J\r\n\r\n"), 400},
    {"bare LF after the request line", RAW("GET / HTTP/1.1\nHost: a\n\n"), 400},
    {"bare LF after a field", RAW("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400},
    {"bare LF as the empty line", RAW("GET / " H11 "\n"), 400},
    {"CR without LF in the request line", RAW("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400},
    {"CR without LF in a value", RAW("GET / " H11 "X: a\rb\r\n\r\n"), 400},
    {"CR without LF as the empty line", RAW("GET / " H11 "\rX"), 400},
    {"obs-fold", RAW("GET / " H11 "X: a\r\n  continued\r\n\r\n"), 400},
    {"obs-fold with tab", RAW("GET / " H11 "X: a\r\n\tcontinued\r\n\r\n"), 400},
    {"space before the first field", RAW("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400},
    {"no colon", RAW("GET / " H11 "Hosta\r\n\r\n"), 400},
    {"empty field name", RAW("GET / " H11 ": a\r\n\r\n"), 400},
    {"space after version", RAW("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {"HTTP/0.9 request line", RAW("GET /\r\n\r\n"), 400},
    {"no slash in version", RAW("GET / HTTP1.1\r\nHost: a\r\n\r\n"), 400},
    {"lower-case protocol", RAW("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {"two-digit major", RAW("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), 400},
    {"version suffix", RAW("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400},
    {"1.1 without Host", RAW("GET / HTTP/1.1\r\n\r\n"), 400},
    {"two Host fields", RAW("GET / " H11 "host: b\r\n\r\n"), 400},
    {"two Host fields on 1.0", RAW("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {"transfer-encoding", RAW("GET / " H11 "Transfer-Encoding: chunked\r\n\r\n"), 400},
    {"content-length not a number", RAW("GET / " H11 "Content-Length: 1x\r\n\r\n"), 400},
    {"content-length list", RAW("GET / " H11 "Content-Length: 0, 0\r\n\r\n"), 400},
    {"content-length empty", RAW("GET / " H11 "Content-Length:\r\n\r\n"), 400},
    {"two content-lengths", RAW("GET / " H11 "Content-Length: 0\r\nContent-Length: 0\r\n\r\n"),
     400},
    {"method of 33 bytes", RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / " H11 "\r\n"), 400},
    {"method of 33 bytes, no space yet", RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG"), 400},
    {"error decided before the head ends", RAW("GET /\x01"), 400},

    /* 405 */
    {"POST", RAW("POST / " H11 "\r\n"), 405},
    {"OPTIONS", RAW("OPTIONS * " H11 "\r\n"), 405},
    {"method is case-sensitive", RAW("get / " H11 "\r\n"), 405},
    {"GET prefix", RAW("GETS / " H11 "\r\n"), 405},
    {"method of 32 bytes", RAW("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF / " H11 "\r\n"), 405},
    {"405 decided at the space", RAW("DELETE "), 405},

    /* 413 */
    {"content-length positive", RAW("GET / " H11 "Content-Length: 5\r\n\r\nhello"), 413},
    {"content-length huge", RAW("GET / " H11 "Content-Length: 99999999999999999999999\r\n\r\n"),
     413},

    /* 505 */
    {"HTTP/2.0", RAW("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/1.2", RAW("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/0.9 spelled out", RAW("GET / HTTP/0.9\r\n\r\n"), 505},
    {"505 decided at the end of the request line", RAW("GET / HTTP/3.0\r\n"), 505},
};

static void check_slice(const char *name, const char *what, const char *buf, size_t buf_len,
                        const char *got, size_t got_len, const char *want) {
    if (!want) {
        ck_assert_msg(got == NULL, "%s: %s: expected none, got \"%.*s\"", name, what, (int)got_len,
                      got);
        return;
    }
    ck_assert_msg(got != NULL, "%s: %s: expected \"%s\", got none", name, what, want);
    ck_assert_msg(got >= buf && got + got_len <= buf + buf_len, "%s: %s: slice outside input", name,
                  what);
    ck_assert_msg(got_len == strlen(want) && memcmp(got, want, got_len) == 0,
                  "%s: %s: expected \"%s\", got \"%.*s\"", name, what, want, (int)got_len, got);
}

/* Parse a private copy so a read past len is caught by ASan/valgrind. */
static int parse_copy(const char *input, size_t len, struct http_request *req, size_t *consumed,
                      char **copy) {
    *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    memcpy(*copy, input, len);
    return http_parse_request(*copy, len, req, consumed);
}

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* One test over the whole table rather than a loop test: a fork per case is
 * slow under ASan, and every message names its case. */
static void check_table_case(const struct parse_case *c) {
    struct http_request req;
    size_t consumed = 12345;
    char *copy;
    int r = parse_copy(c->input, c->len, &req, &consumed, &copy);
    ck_assert_msg(r == c->want, "%s: got %d, want %d", c->name, r, c->want);
    if (r == HTTP_PARSE_DONE) {
        size_t want_consumed = c->consumed ? c->consumed : c->len;
        ck_assert_msg(consumed == want_consumed, "%s: consumed %zu, want %zu", c->name, consumed,
                      want_consumed);
        ck_assert_msg(req.method == c->method, "%s: method %d", c->name, req.method);
        ck_assert_msg(req.version_minor == c->minor, "%s: minor %u", c->name, req.version_minor);
        check_slice(c->name, "path", copy, consumed, req.path, req.path_len, c->path);
        check_slice(c->name, "query", copy, consumed, req.query, req.query_len, c->query);
        check_slice(c->name, "accept", copy, consumed, req.accept, req.accept_len, c->accept);
        ck_assert_msg(req.keep_alive == c->keep_alive, "%s: keep_alive %d", c->name,
                      req.keep_alive);
    }
    free(copy);
}

START_TEST(test_table) {
    for (size_t i = 0; i < N_CASES; i++)
        check_table_case(&cases[i]);
}
END_TEST

/* Feed the input one more byte at a time, as a reader would, and stop at the
 * first verdict: it must be the one-shot verdict, at the same length. */
static void check_byte_by_byte(const struct parse_case *c) {
    struct http_request whole, part;
    size_t whole_consumed = 0, part_consumed = 0;
    char *copy;
    int want = parse_copy(c->input, c->len, &whole, &whole_consumed, &copy);
    free(copy);
    int r = HTTP_PARSE_NEED_MORE;
    for (size_t n = 0; n <= c->len && r == HTTP_PARSE_NEED_MORE; n++) {
        r = parse_copy(c->input, n, &part, &part_consumed, &copy);
        if (r == HTTP_PARSE_DONE) {
            ck_assert_msg(part_consumed == n, "%s: DONE before the final byte", c->name);
            bool same = part.method == whole.method && part.path_len == whole.path_len &&
                        part.keep_alive == whole.keep_alive &&
                        (part.query == NULL) == (whole.query == NULL) &&
                        part.query_len == whole.query_len &&
                        (part.accept == NULL) == (whole.accept == NULL) &&
                        part.accept_len == whole.accept_len;
            ck_assert_msg(same, "%s: incremental request differs", c->name);
        }
        free(copy);
    }
    ck_assert_msg(r == want, "%s: incremental %d, one-shot %d", c->name, r, want);
    if (r == HTTP_PARSE_DONE)
        ck_assert_msg(part_consumed == whole_consumed, "%s: consumed differs", c->name);
}

START_TEST(test_byte_by_byte) {
    for (size_t i = 0; i < N_CASES; i++)
        check_byte_by_byte(&cases[i]);
}
END_TEST

/* "GET <target> HTTP/1.1\r\nHost: a\r\n\r\n" with a target of n bytes. */
static char *request_with_target(size_t n, size_t *len) {
    const char *tail = " HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t total = 4 + n + strlen(tail);
    char *s = malloc(total + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, "GET ", 4);
    s[4] = '/';
    memset(s + 5, 'a', n - 1);
    strcpy(s + 4 + n, tail);
    *len = total;
    return s;
}

START_TEST(test_target_boundary) {
    struct http_request req;
    size_t len, consumed;
    char *s = request_with_target(HTTP_MAX_TARGET_BYTES, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), HTTP_PARSE_DONE);
    ck_assert_uint_eq(req.path_len, HTTP_MAX_TARGET_BYTES);
    ck_assert_uint_eq(consumed, len);
    free(s);

    s = request_with_target(HTTP_MAX_TARGET_BYTES + 1, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), 414);
    /* decided as soon as the 2049th byte of the target arrives */
    ck_assert_int_eq(http_parse_request(s, 4 + HTTP_MAX_TARGET_BYTES + 1, &req, &consumed), 414);
    ck_assert_int_eq(http_parse_request(s, 4 + HTTP_MAX_TARGET_BYTES, &req, &consumed),
                     HTTP_PARSE_NEED_MORE);
    free(s);

    /* the query counts towards the target */
    s = request_with_target(HTTP_MAX_TARGET_BYTES + 1, &len);
    s[10] = '?';
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), 414);
    free(s);
}
END_TEST

/* A head whose header section (fields, their CRLFs, the empty line) is
 * exactly n bytes: "Host: a\r\n" then one filler field. */
static char *request_with_section(size_t n, size_t *len) {
    const char *line = "GET / HTTP/1.1\r\n";
    const char *host = "Host: a\r\n";
    size_t fixed = strlen(host) + strlen("X: ") + 2 + 2;
    ck_assert_uint_ge(n, fixed);
    size_t total = strlen(line) + n;
    char *s = malloc(total + 1);
    ck_assert_ptr_nonnull(s);
    char *p = s;
    p += sprintf(p, "%s%sX: ", line, host);
    memset(p, 'v', n - fixed);
    p += n - fixed;
    strcpy(p, "\r\n\r\n");
    ck_assert_uint_eq(strlen(s), total);
    *len = total;
    return s;
}

START_TEST(test_header_bytes_boundary) {
    struct http_request req;
    size_t len, consumed;
    char *s = request_with_section(HTTP_MAX_HEADER_BYTES, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), HTTP_PARSE_DONE);
    ck_assert_uint_eq(consumed, len);
    free(s);

    s = request_with_section(HTTP_MAX_HEADER_BYTES + 1, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), 431);
    /* a head that will not end within the limit is refused once the limit is
     * full, without waiting for the rest */
    ck_assert_int_eq(http_parse_request(s, len - 1, &req, &consumed), 431);
    ck_assert_int_eq(http_parse_request(s, len - 2, &req, &consumed), HTTP_PARSE_NEED_MORE);
    free(s);
}
END_TEST

static char *request_with_fields(unsigned n, size_t *len) {
    struct {
        char *data;
        size_t len;
    } b = {malloc(64 + (size_t)n * 16), 0};
    ck_assert_ptr_nonnull(b.data);
    b.len += (size_t)sprintf(b.data, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (unsigned i = 1; i < n; i++)
        b.len += (size_t)sprintf(b.data + b.len, "X-%u: %u\r\n", i, i);
    b.len += (size_t)sprintf(b.data + b.len, "\r\n");
    *len = b.len;
    return b.data;
}

START_TEST(test_field_count_boundary) {
    struct http_request req;
    size_t len, consumed;
    char *s = request_with_fields(HTTP_MAX_HEADER_FIELDS, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), HTTP_PARSE_DONE);
    free(s);
    s = request_with_fields(HTTP_MAX_HEADER_FIELDS + 1, &len);
    ck_assert_int_eq(http_parse_request(s, len, &req, &consumed), 431);
    free(s);
}
END_TEST

/* The promise a reader caps its buffer on: given HTTP_MAX_HEAD_BYTES bytes
 * the parser has a verdict, whatever the bytes are. */
START_TEST(test_max_head_has_verdict) {
    struct http_request req;
    size_t consumed;
    char *s = malloc(HTTP_MAX_HEAD_BYTES);
    ck_assert_ptr_nonnull(s);
    /* the longest request line that still parses, then an endless field */
    size_t n = (size_t)sprintf(s, "HEAD /");
    memset(s + n, 'a', HTTP_MAX_TARGET_BYTES - 1);
    n += HTTP_MAX_TARGET_BYTES - 1;
    n += (size_t)sprintf(s + n, " HTTP/1.1\r\nX: ");
    memset(s + n, 'v', HTTP_MAX_HEAD_BYTES - n);
    ck_assert_int_eq(http_parse_request(s, HTTP_MAX_HEAD_BYTES, &req, &consumed), 431);
    /* an endless method, target, and field name */
    memset(s, 'A', HTTP_MAX_HEAD_BYTES);
    ck_assert_int_eq(http_parse_request(s, HTTP_MAX_HEAD_BYTES, &req, &consumed), 400);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', HTTP_MAX_HEAD_BYTES - 5);
    ck_assert_int_eq(http_parse_request(s, HTTP_MAX_HEAD_BYTES, &req, &consumed), 414);
    n = (size_t)sprintf(s, "GET / HTTP/1.0\r\n");
    memset(s + n, 'N', HTTP_MAX_HEAD_BYTES - n);
    ck_assert_int_eq(http_parse_request(s, HTTP_MAX_HEAD_BYTES, &req, &consumed), 431);
    free(s);
}
END_TEST

START_TEST(test_reason) {
    ck_assert_str_eq(http_status_reason(200), "OK");
    ck_assert_str_eq(http_status_reason(404), "Not Found");
    ck_assert_str_eq(http_status_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_status_reason(505), "HTTP Version Not Supported");
    ck_assert_str_eq(http_status_reason(299), "Unknown");
}
END_TEST

static Suite *http_parse_suite(void) {
    Suite *s = suite_create("http_parse");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_byte_by_byte);
    tcase_add_test(tc, test_target_boundary);
    tcase_add_test(tc, test_header_bytes_boundary);
    tcase_add_test(tc, test_field_count_boundary);
    tcase_add_test(tc, test_max_head_has_verdict);
    tcase_add_test(tc, test_reason);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(http_parse_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
