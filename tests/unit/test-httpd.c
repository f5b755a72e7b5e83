/*
 * Tests for the HTTP server: each test builds a fresh loop with a server on
 * 127.0.0.1:0 and runs it on the main thread, while a client on a pthread
 * speaks HTTP over blocking sockets with timeouts. The client records what
 * it saw; when it is done it wakes the loop through a uv_async_t, which
 * snapshots the server's counters and closes it, and the test asserts on
 * the main thread once the loop has run dry. uv_loop_close() returning 0 at
 * the end proves every handle was closed; valgrind proves it was freed.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "httpd.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define MAX_RESPONSES  8
#define BIG_BODY_BYTES (32u << 20)

struct response {
    int status;
    char head[4096];
    char body[4096];
    size_t body_len;
    long content_length;
};

struct fixture {
    uv_loop_t loop;
    struct httpd *server;
    uv_async_t done;
    bool done_sent;
    bool closed;
    pthread_t thread;
    const char *host;
    int port;
    void (*client)(struct fixture *f);
    struct httpd_stats stats; /* snapshot taken when the client finished */

    /* what the client saw */
    struct response resp[MAX_RESPONSES];
    int n_resp;
    int got_eof;     /* connections that ended without further bytes */
    int got_extra;   /* bytes that arrived where none should */
    long elapsed_ms; /* per test */
    size_t big_read;
    int other_status; /* a second connection's status */
    char note[256];   /* first client-side failure, empty when none */
};

/* ---- the client side (runs on the pthread) ---- */

struct client {
    int fd;
    char buf[16384];
    size_t len;
};

static void note(struct fixture *f, const char *what) {
    if (!f->note[0])
        snprintf(f->note, sizeof(f->note), "%s (errno %d)", what, errno);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool client_connect(struct fixture *f, struct client *c) {
    c->len = 0;
    bool v6 = strchr(f->host, ':') != NULL;
    c->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_storage ss;
    int r = v6 ? uv_ip6_addr(f->host, f->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(f->host, f->port, (struct sockaddr_in *)&ss);
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (r < 0 || connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void client_close(struct client *c) {
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool send_bytes(struct client *c, const char *data, size_t len) {
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_str(struct client *c, const char *s) {
    return send_bytes(c, s, strlen(s));
}

/* 1 read some, 0 EOF or reset, -1 timeout or error */
static int fill(struct client *c) {
    if (c->len == sizeof(c->buf))
        return -1;
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->len += (size_t)n;
        return 1;
    }
    if (n == 0 || errno == ECONNRESET)
        return 0;
    return -1;
}

static void drop(struct client *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Read one response; for HEAD requests expect no body. */
static bool read_response(struct client *c, bool head_request, struct response *r) {
    memset(r, 0, sizeof(*r));
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (fill(c) <= 0)
            return false;
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof(r->head))
        return false;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    drop(c, head_len);
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        return false;
    r->content_length = -1;
    char *cl = strcasestr(r->head, "\r\nContent-Length:");
    if (cl)
        r->content_length = strtol(cl + 17, NULL, 10);
    size_t want = head_request || r->content_length < 0 ? 0 : (size_t)r->content_length;
    if (want >= sizeof(r->body))
        return false;
    while (c->len < want)
        if (fill(c) <= 0)
            return false;
    memcpy(r->body, c->buf, want);
    r->body[want] = '\0';
    r->body_len = want;
    drop(c, want);
    return true;
}

/* The server closes: true when EOF (or reset) comes with no further bytes. */
static bool expect_eof(struct fixture *f, struct client *c) {
    for (;;) {
        if (c->len) {
            f->got_extra += (int)c->len;
            return false;
        }
        int r = fill(c);
        if (r == 0) {
            f->got_eof++;
            return true;
        }
        if (r < 0)
            return false;
    }
}

static bool has_header(const struct response *r, const char *line) {
    return strcasestr(r->head, line) != NULL;
}

/* One request on a new connection, recorded as the next response. */
static bool exchange(struct fixture *f, const char *request, bool head_request) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return false;
    }
    bool ok = send_str(&c, request) && f->n_resp < MAX_RESPONSES &&
              read_response(&c, head_request, &f->resp[f->n_resp]);
    if (ok)
        f->n_resp++;
    else
        note(f, "exchange");
    client_close(&c);
    return ok;
}

static void *client_main(void *arg) {
    struct fixture *f = arg;
    f->client(f);
    if (!f->done_sent)
        uv_async_send(&f->done);
    return NULL;
}

/* Ask the loop to close the server now, from the client thread. */
static void close_server_now(struct fixture *f) {
    f->done_sent = true;
    uv_async_send(&f->done);
}

/* ---- the server side (runs on the loop) ---- */

static void on_hello(const struct http_request *req, struct httpd_response *resp, void *data) {
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    buf_puts(&resp->body, "hello world\n");
}

static void on_echo(const struct http_request *req, struct httpd_response *resp, void *data) {
    resp->status = 200;
    buf_printf(&resp->body, "path=%.*s query=%.*s accept=%.*s", (int)req->path_len, req->path,
               req->query ? (int)req->query_len : 6, req->query ? req->query : "(none)",
               req->accept ? (int)req->accept_len : 6, req->accept ? req->accept : "(none)");
}

static void on_forgetful(const struct http_request *req, struct httpd_response *resp, void *data) {
    buf_puts(&resp->body, "half-done");
}

static void on_unavailable(const struct http_request *req, struct httpd_response *resp,
                           void *data) {
    resp->status = 503;
    buf_puts(&resp->body, "not ready\n");
}

static void on_big(const struct http_request *req, struct httpd_response *resp, void *data) {
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    if (buf_reserve(&resp->body, BIG_BODY_BYTES) == 0) {
        memset(resp->body.data, 'x', BIG_BODY_BYTES);
        resp->body.len = BIG_BODY_BYTES;
        resp->body.data[resp->body.len] = '\0';
    }
}

static void on_server_closed(void *data) {
    struct fixture *f = data;
    f->closed = true;
}

static void on_server_closed_flag(void *data) {
    *(bool *)data = true;
}

static void on_client_done(uv_async_t *a) {
    struct fixture *f = container_of(a, struct fixture, done);
    httpd_get_stats(f->server, &f->stats);
    httpd_close(f->server, on_server_closed, f);
    uv_close((uv_handle_t *)&f->done, NULL);
}

static struct fixture *fixture_new_at(const char *listen, int *err) {
    struct fixture *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    *err = httpd_new(&f->loop, listen, &f->server);
    if (*err < 0) {
        ck_assert_int_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
        ck_assert_int_eq(uv_loop_close(&f->loop), 0);
        free(f);
        return NULL;
    }
    f->host = listen[0] == '[' ? "::1" : "127.0.0.1";
    f->port = httpd_port(f->server);
    ck_assert_int_gt(f->port, 0);
    ck_assert_int_eq(httpd_route(f->server, "/hello", on_hello, NULL), 0);
    ck_assert_int_eq(httpd_route(f->server, "/echo", on_echo, NULL), 0);
    ck_assert_int_eq(httpd_route(f->server, "/forgetful", on_forgetful, NULL), 0);
    ck_assert_int_eq(httpd_route(f->server, "/unavailable", on_unavailable, NULL), 0);
    ck_assert_int_eq(httpd_route(f->server, "/big", on_big, NULL), 0);
    return f;
}

static struct fixture *fixture_new(void) {
    int err;
    struct fixture *f = fixture_new_at("127.0.0.1:0", &err);
    ck_assert_msg(f, "httpd_new: %s", strerror(-err));
    return f;
}

/* Run the client against the server until it is done and the server closed. */
static void run(struct fixture *f, void (*client)(struct fixture *f)) {
    f->client = client;
    ck_assert_int_eq(uv_async_init(&f->loop, &f->done, on_client_done), 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, client_main, f), 0);
    ck_assert_int_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    pthread_join(f->thread, NULL);
    ck_assert(f->closed);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    ck_assert_msg(!f->note[0], "client: %s", f->note);
}

/* ---- tests ---- */

static void client_get(struct fixture *f) {
    exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", false);
    exchange(f, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", false);
    exchange(f, "GET /echo?a=1&b HTTP/1.1\r\nHost: t\r\nAccept: text/plain\r\n\r\n", false);
    exchange(f, "GET /hello?x=y HTTP/1.1\r\nHost: t\r\n\r\n", false);
    exchange(f, "GET /unavailable HTTP/1.1\r\nHost: t\r\n\r\n", false);
}

START_TEST(test_get_routes) {
    struct fixture *f = fixture_new();
    run(f, client_get);
    ck_assert_int_eq(f->n_resp, 5);
    struct response *r = &f->resp[0];
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "hello world\n");
    ck_assert_int_eq(r->content_length, 12);
    ck_assert(has_header(r, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
    ck_assert(!has_header(r, "Connection: close"));

    ck_assert_int_eq(f->resp[1].status, 404);
    ck_assert(has_header(&f->resp[1], "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    ck_assert_str_eq(f->resp[2].body, "path=/echo query=a=1&b accept=text/plain");
    ck_assert_int_eq(f->resp[3].status, 200); /* the query does not take part in routing */
    ck_assert_int_eq(f->resp[4].status, 503);
    ck_assert_str_eq(f->resp[4].body, "not ready\n");

    ck_assert_uint_eq(f->stats.requests, 5);
    ck_assert_uint_eq(f->stats.errors_4xx, 1);
    ck_assert_uint_eq(f->stats.rejected_connections, 0);
    free(f);
}
END_TEST

static void client_head(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    /* HEAD then GET on one connection: if HEAD sent a body, the GET's
     * response would not start where the client expects it. */
    if (!send_str(&c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&c, true, &f->resp[f->n_resp++]))
        note(f, "head");
    else if (!send_str(&c, "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n") ||
             !read_response(&c, true, &f->resp[f->n_resp++]))
        note(f, "head 404");
    else if (!send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
             !read_response(&c, false, &f->resp[f->n_resp++]))
        note(f, "get after head");
    client_close(&c);
}

START_TEST(test_head) {
    struct fixture *f = fixture_new();
    run(f, client_head);
    ck_assert_int_eq(f->n_resp, 3);
    ck_assert_int_eq(f->resp[0].status, 200);
    ck_assert_int_eq(f->resp[0].content_length, 12); /* the GET's length */
    ck_assert_int_eq(f->resp[1].status, 404);
    ck_assert_int_eq(f->resp[1].content_length, (long)strlen("not found\n"));
    ck_assert_int_eq(f->resp[2].status, 200);
    ck_assert_str_eq(f->resp[2].body, "hello world\n");
    free(f);
}
END_TEST

static void client_oversized(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    size_t n = 3 * HTTP_MAX_HEADER_BYTES;
    char *req = malloc(n + 64);
    if (!req) {
        note(f, "malloc");
        client_close(&c);
        return;
    }
    size_t len = (size_t)sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + len, 'b', n);
    len += n;
    len += (size_t)sprintf(req + len, "\r\n\r\n");
    /* the server may answer and close before it has read everything */
    send_bytes(&c, req, len);
    free(req);
    if (!read_response(&c, false, &f->resp[f->n_resp++]))
        note(f, "431 response");
    else
        expect_eof(f, &c);
    client_close(&c);
    exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", false);
}

START_TEST(test_oversized_headers) {
    struct fixture *f = fixture_new();
    run(f, client_oversized);
    ck_assert_int_eq(f->n_resp, 2);
    ck_assert_int_eq(f->resp[0].status, 431);
    ck_assert(has_header(&f->resp[0], "\r\nConnection: close\r\n"));
    ck_assert_int_gt(f->resp[0].body_len, 0);
    ck_assert_int_eq(f->got_eof, 1);
    ck_assert_int_eq(f->resp[1].status, 200);
    ck_assert_str_eq(f->resp[1].body, "hello world\n");
    ck_assert_uint_eq(f->stats.errors_4xx, 1);
    free(f);
}
END_TEST

/* Every protocol error answers with its status, closes, and leaves the
 * server serving the next connection. */
static const struct {
    const char *request;
    int status;
} bad_requests[] = {
    {"GARBAGE\x01\r\n\r\n", 400},
    {"GET /hello HTTP/1.1\r\n\r\n", 400}, /* no Host */
    {"GET /hello HTTP/1.1\nHost: t\n\n", 400},
    {"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 405},
    {"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi", 413},
    {"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505},
};

static void client_bad(struct fixture *f) {
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        struct client c;
        if (!client_connect(f, &c)) {
            note(f, "connect");
            return;
        }
        if (!send_str(&c, bad_requests[i].request) ||
            !read_response(&c, false, &f->resp[f->n_resp++]))
            note(f, "bad request response");
        else
            expect_eof(f, &c);
        client_close(&c);
    }
    exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", false);
}

START_TEST(test_bad_requests) {
    struct fixture *f = fixture_new();
    run(f, client_bad);
    size_t n = sizeof(bad_requests) / sizeof(bad_requests[0]);
    ck_assert_int_eq(f->n_resp, (int)n + 1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(f->resp[i].status, bad_requests[i].status);
        ck_assert(has_header(&f->resp[i], "\r\nConnection: close\r\n"));
        ck_assert_int_gt(f->resp[i].body_len, 0);
    }
    ck_assert(has_header(&f->resp[3], "\r\nAllow: GET, HEAD\r\n"));
    ck_assert_int_eq(f->got_eof, (int)n);
    ck_assert_int_eq(f->resp[n].status, 200);
    ck_assert_uint_eq(f->stats.requests, n + 1);
    ck_assert_uint_eq(f->stats.errors_4xx, 5);
    free(f);
}
END_TEST

static void client_keep_alive(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    if (!send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "first");
        return;
    }
    if (!send_str(&c, "GET /echo?second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "second");
        return;
    }
    expect_eof(f, &c);
    client_close(&c);

    /* HTTP/1.0: keep-alive only when asked for */
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    if (!send_str(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "1.0 keep-alive");
        return;
    }
    if (!send_str(&c, "GET /hello HTTP/1.0\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "1.0 close");
        return;
    }
    expect_eof(f, &c);
    client_close(&c);
}

START_TEST(test_keep_alive) {
    struct fixture *f = fixture_new();
    run(f, client_keep_alive);
    ck_assert_int_eq(f->n_resp, 4);
    ck_assert_str_eq(f->resp[0].body, "hello world\n");
    ck_assert(!has_header(&f->resp[0], "Connection:"));
    ck_assert_str_eq(f->resp[1].body, "path=/echo query=second accept=(none)");
    ck_assert(has_header(&f->resp[1], "\r\nConnection: close\r\n"));
    ck_assert(has_header(&f->resp[2], "\r\nConnection: keep-alive\r\n"));
    ck_assert(has_header(&f->resp[3], "\r\nConnection: close\r\n"));
    ck_assert_int_eq(f->got_eof, 2);
    ck_assert_int_eq(f->got_extra, 0);
    free(f);
}
END_TEST

static void client_pipelined(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    const char *three = "GET /echo?1 HTTP/1.1\r\nHost: t\r\n\r\n"
                        "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /echo?3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (!send_str(&c, three)) {
        note(f, "send");
        return;
    }
    for (int i = 0; i < 3; i++)
        if (!read_response(&c, i == 1, &f->resp[f->n_resp++])) {
            note(f, "pipelined response");
            return;
        }
    expect_eof(f, &c);
    client_close(&c);
}

START_TEST(test_pipelined) {
    struct fixture *f = fixture_new();
    run(f, client_pipelined);
    ck_assert_int_eq(f->n_resp, 3);
    ck_assert_str_eq(f->resp[0].body, "path=/echo query=1 accept=(none)");
    ck_assert_int_eq(f->resp[1].status, 200);
    ck_assert_int_eq(f->resp[1].content_length, 12);
    ck_assert_str_eq(f->resp[2].body, "path=/echo query=3 accept=(none)");
    ck_assert_int_eq(f->got_eof, 1);
    ck_assert_int_eq(f->got_extra, 0);
    ck_assert_uint_eq(f->stats.requests, 3);
    free(f);
}
END_TEST

static void client_slowloris(struct fixture *f) {
    struct client c;
    /* a partial head that never completes */
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    long start = now_ms();
    send_str(&c, "GET /hello HTTP/1.1\r\nHo");
    if (!expect_eof(f, &c))
        note(f, "not closed");
    f->elapsed_ms = now_ms() - start;
    client_close(&c);

    /* a byte every 50 ms: bytes do not reset the timer, requests do */
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    const char *dribble =
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for (const char *p = dribble; *p; p++) {
        if (!send_bytes(&c, p, 1))
            break; /* closed under us: that is the point */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!expect_eof(f, &c))
        note(f, "dribbler not closed");
    client_close(&c);

    /* idle after a complete keep-alive request */
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    if (!send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "keep-alive request");
        return;
    }
    if (!expect_eof(f, &c))
        note(f, "idle keep-alive not closed");
    client_close(&c);
}

START_TEST(test_slowloris) {
    struct fixture *f = fixture_new();
    httpd_set_idle_timeout_ms(f->server, 300);
    run(f, client_slowloris);
    ck_assert_int_eq(f->got_eof, 3);
    ck_assert_int_ge(f->elapsed_ms, 250);
    ck_assert_int_lt(f->elapsed_ms, 4000);
    ck_assert_int_eq(f->n_resp, 1);
    ck_assert_int_eq(f->resp[0].status, 200);
    free(f);
}
END_TEST

static void client_cap(struct fixture *f) {
    struct client a, b, c;
    if (!client_connect(f, &a) || !client_connect(f, &b)) {
        note(f, "connect");
        return;
    }
    /* a full exchange on each proves both are accepted and counted */
    if (!send_str(&a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&a, false, &f->resp[f->n_resp++]) ||
        !send_str(&b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&b, false, &f->resp[f->n_resp++])) {
        note(f, "first two");
        return;
    }
    /* the third is accepted and closed at once, without an answer */
    if (!client_connect(f, &c)) {
        note(f, "connect third");
        return;
    }
    send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    if (!expect_eof(f, &c))
        note(f, "third not closed");
    client_close(&c);
    /* once one closes, there is room again */
    client_close(&a);
    for (int attempt = 0; attempt < 50 && !f->other_status; attempt++) {
        struct response r;
        if (client_connect(f, &c) && send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") &&
            read_response(&c, false, &r))
            f->other_status = r.status;
        client_close(&c);
        if (!f->other_status) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    client_close(&b);
}

START_TEST(test_connection_cap) {
    struct fixture *f = fixture_new();
    httpd_set_max_connections(f->server, 2);
    run(f, client_cap);
    ck_assert_int_eq(f->n_resp, 2);
    ck_assert_int_eq(f->got_eof, 1);
    ck_assert_int_eq(f->other_status, 200);
    ck_assert_uint_ge(f->stats.rejected_connections, 1);
    ck_assert_uint_eq(f->stats.requests, 3);
    free(f);
}
END_TEST

static void client_status_zero(struct fixture *f) {
    exchange(f, "GET /forgetful HTTP/1.1\r\nHost: t\r\n\r\n", false);
}

START_TEST(test_handler_without_status) {
    struct fixture *f = fixture_new();
    run(f, client_status_zero);
    ck_assert_int_eq(f->n_resp, 1);
    ck_assert_int_eq(f->resp[0].status, 500);
    ck_assert(strstr(f->resp[0].body, "half-done") == NULL);
    free(f);
}
END_TEST

static void client_close_idle(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    if (!send_str(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n") ||
        !read_response(&c, false, &f->resp[f->n_resp++])) {
        note(f, "request");
        return;
    }
    /* a second connection half-way through its head */
    struct client d;
    if (!client_connect(f, &d)) {
        note(f, "connect");
        return;
    }
    send_str(&d, "GET /hello HTTP/1.1\r\n");
    close_server_now(f);
    if (!expect_eof(f, &c) || !expect_eof(f, &d))
        note(f, "not closed by httpd_close");
    client_close(&c);
    client_close(&d);
}

START_TEST(test_close_with_clients) {
    struct fixture *f = fixture_new();
    run(f, client_close_idle);
    ck_assert_int_eq(f->got_eof, 2);
    ck_assert_uint_eq(f->stats.open_connections, 2);
    free(f);
}
END_TEST

static void client_close_writing(struct fixture *f) {
    struct client c;
    if (!client_connect(f, &c)) {
        note(f, "connect");
        return;
    }
    if (!send_str(&c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n")) {
        note(f, "send");
        return;
    }
    /* the response has started and cannot fit in the socket buffers */
    if (fill(&c) <= 0) {
        note(f, "no response");
        return;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    close_server_now(f);
    f->big_read = c.len;
    for (;;) {
        c.len = 0;
        int r = fill(&c);
        f->big_read += c.len;
        if (r == 0) {
            f->got_eof++;
            break;
        }
        if (r < 0) {
            note(f, "read big");
            break;
        }
    }
    client_close(&c);
}

START_TEST(test_close_while_writing) {
    struct fixture *f = fixture_new();
    run(f, client_close_writing);
    ck_assert_int_eq(f->got_eof, 1);
    ck_assert_uint_gt(f->big_read, 0);
    ck_assert_uint_lt(f->big_read, BIG_BODY_BYTES); /* the write was cut short */
    free(f);
}
END_TEST

static void client_v6(struct fixture *f) {
    exchange(f, "GET /hello HTTP/1.1\r\nHost: [::1]\r\n\r\n", false);
}

START_TEST(test_ipv6) {
    int err;
    struct fixture *f = fixture_new_at("[::1]:0", &err);
    if (!f) {
        ck_assert_msg(err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT, "httpd_new [::1]: %s",
                      strerror(-err));
        printf("test_ipv6: skipped, no IPv6 loopback here: %s\n", strerror(-err));
        return;
    }
    run(f, client_v6);
    ck_assert_int_eq(f->n_resp, 1);
    ck_assert_int_eq(f->resp[0].status, 200);
    free(f);
}
END_TEST

START_TEST(test_listen_addresses) {
    static const char *bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:80x",
        "localhost:80",
        "::1:80",
        "[::1]80",
        "[::1]:",
        "[]:80",
        "1.2.3.4.5:80",
        "[zz]:80",
        "127.0.0.1:123456",
        "[::1]:+80",
    };
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct httpd *s = NULL;
        ck_assert_msg(httpd_new(&loop, bad[i], &s) == -EINVAL, "\"%s\" accepted", bad[i]);
        ck_assert_ptr_null(s);
    }

    struct httpd *a, *b = NULL, *any;
    ck_assert_int_eq(httpd_new(&loop, "127.0.0.1:0", &a), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpd_port(a));
    ck_assert_int_eq(httpd_new(&loop, addr, &b), -EADDRINUSE);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(httpd_new(&loop, ":0", &any), 0);
    ck_assert_int_ne(httpd_port(any), httpd_port(a));

    ck_assert_int_eq(httpd_route(a, "nope", on_hello, NULL), -EINVAL);
    ck_assert_int_eq(httpd_route(a, "/x", on_hello, NULL), 0);
    ck_assert_int_eq(httpd_route(a, "/x", on_hello, NULL), -EEXIST);

    bool closed_a = false, closed_any = false;
    httpd_close(a, on_server_closed_flag, &closed_a);
    httpd_close(any, on_server_closed_flag, &closed_any);
    ck_assert(!closed_a); /* never from inside httpd_close */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert(closed_a && closed_any);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *httpd_suite(void) {
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_get_routes);
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_oversized_headers);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_keep_alive);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_slowloris);
    tcase_add_test(tc, test_connection_cap);
    tcase_add_test(tc, test_handler_without_status);
    tcase_add_test(tc, test_close_with_clients);
    tcase_add_test(tc, test_close_while_writing);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_listen_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* as main does: libuv writes with writev() */
    SRunner *sr = srunner_create(httpd_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
