/*
 * Tests for the HTTPS client against a real peer: tests/fixtures/httpc_peer.py
 * (Python's http.server behind ssl, with a PKI made by openssl for each
 * run) is started for every test on 127.0.0.1:0 and told to stop when the
 * test ends. Each test runs a fresh libuv loop on the main thread until the
 * client has closed; uv_loop_close() returning 0 proves every handle was
 * closed and valgrind (the "valgrind" test setup) proves it was freed.
 * Timings are asserted only as lower bounds (a wait that must have
 * happened) or generous upper bounds.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"

#define MAX_RESULTS 16
#define WATCHDOG_MS 20000

struct peer {
    pid_t pid;
    int stdin_fd;
    int port;
    char ca[512], other_ca[512], cert[512], key[512];
};

struct result {
    int calls;
    int result;
    long status;
    unsigned attempts;
    int curl_error;
    uint64_t duration_us;
    uint64_t at_ns; /* when the callback ran */
    bool had_retry_after;
    char body[2048];
    char error[256];
};

/* One peer for the whole run (a Python start costs about a second here);
 * tests that count hits use keys of their own. */
static struct peer PEER;

static struct fixture {
    struct peer peer; /* a copy of PEER */
    char base[128];
    uv_loop_t loop;
    uv_timer_t watchdog;
    bool timed_out;
    struct httpc *c;
    bool close_called;
    int closed;
    uint64_t t0;
    int expect; /* close the client after this many completions */
    int done;
    struct result res[MAX_RESULTS];
    /* streams */
    int lines;
    char line[8][256];
    uint64_t line_at_ns[8];
    int cancel_after_lines;
    struct httpc_call *stream_call;
    /* on_complete */
    int observed;
    long observed_status[MAX_RESULTS];
    /* token rotation */
    const char *next_token;
    struct httpc_call *calls[MAX_RESULTS];
} F;

/* ---- the peer ---- */

static int peer_start(struct peer *p, const char *host) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execlp("python3", "python3", FIXTURES "/httpc_peer.py", host, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->stdin_fd = in[1];
    char line[4096];
    size_t len = 0;
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 15000) <= 0)
            break;
        ssize_t n = read(out[0], line + len, sizeof(line) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(out[0]);
    line[len] = '\0';
    if (sscanf(line, "%d %511s %511s %511s %511s", &p->port, p->ca, p->other_ca, p->cert, p->key) !=
        5)
        return -EIO;
    return 0;
}

static void peer_stop(struct peer *p) {
    if (p->pid <= 0)
        return;
    close(p->stdin_fd);
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

static void setup(void) {
    memset(&F, 0, sizeof(F));
    F.peer = PEER;
    snprintf(F.base, sizeof(F.base), "https://127.0.0.1:%d", F.peer.port);
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
}

/* ---- the loop ---- */

static void on_closed(void *data) {
    F.closed++;
}

static void close_client(void) {
    if (F.c && !F.close_called) {
        F.close_called = true;
        httpc_close(F.c, on_closed, NULL);
    }
}

static void on_watchdog(uv_timer_t *t) {
    F.timed_out = true;
    close_client();
}

static void client_new(struct httpc_options *o) {
    o->base_url = o->base_url ? o->base_url : F.base;
    if (!o->ca_file && !o->ca_pem)
        o->ca_file = F.peer.ca;
    ck_assert_int_eq(httpc_new(&F.loop, o, &F.c), 0);
}

static void client_default(void) {
    struct httpc_options o = {0};
    client_new(&o);
}

/* Run until the client has closed and every handle is gone. */
static void run(void) {
    uv_timer_init(&F.loop, &F.watchdog);
    uv_timer_start(&F.watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&F.watchdog);
    F.t0 = F.t0 ? F.t0 : uv_hrtime();
    uv_run(&F.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&F.watchdog, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    ck_assert_msg(!F.timed_out, "watchdog fired");
    ck_assert_int_eq(F.closed, F.close_called ? 1 : 0);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
}

static void record(struct result *r, int result, struct httpc_response *resp) {
    r->calls++;
    r->result = result;
    r->status = resp->status;
    r->attempts = resp->attempts;
    r->curl_error = resp->curl_error;
    r->duration_us = resp->duration_us;
    r->at_ns = uv_hrtime();
    r->had_retry_after = resp->retry_after_raw != NULL;
    snprintf(r->body, sizeof(r->body), "%s", resp->body.len ? resp->body.data : "");
    snprintf(r->error, sizeof(r->error), "%s", resp->error);
}

static void on_done(int result, struct httpc_response *resp, void *data) {
    record(data, result, resp);
    if (++F.done == F.expect)
        close_client();
}

static void on_observe(const char *method, long status, uint64_t duration_us, void *data) {
    if (F.observed < MAX_RESULTS)
        F.observed_status[F.observed] = status;
    F.observed++;
}

static void get(const char *path, struct result *r) {
    struct httpc_request req = {.method = "GET", .path = path};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, r, NULL), 0);
}

static double elapsed_s(const struct result *r) {
    return (double)(r->at_ns - F.t0) / 1e9;
}

/* A separate loop and client, for asking the peer after a test's loop ended. */
struct fetch {
    struct result r;
    struct httpc *c;
};

static void on_fetched(int result, struct httpc_response *resp, void *data) {
    struct fetch *f = data;
    record(&f->r, result, resp);
    httpc_close(f->c, NULL, NULL);
}

static long fetch_number(const char *path, const char *field) {
    uv_loop_t loop;
    struct fetch f = {0};
    struct httpc_options o = {.base_url = F.base, .ca_file = F.peer.ca};
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(httpc_new(&loop, &o, &f.c), 0);
    struct httpc_request req = {.method = "GET", .path = path};
    ck_assert_int_eq(httpc_request(f.c, &req, on_fetched, &f, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_int_eq(f.r.status, 200);
    char key[64];
    snprintf(key, sizeof(key), "\"%s\": ", field);
    const char *p = strstr(f.r.body, key);
    ck_assert_ptr_nonnull(p);
    return strtol(p + strlen(key), NULL, 10);
}

/* ---- plain requests ---- */

START_TEST(test_get_and_patch) {
    struct httpc_options o = {.token = "tok-1", .on_complete = on_observe};
    client_new(&o);
    get("/echo?x=1", &F.res[0]);
    static const char patch[] = "{\"status\":{\"conditions\":[]}}";
    struct httpc_request req = {.method = "PATCH",
                                .path = "/echo",
                                .content_type = "application/strategic-merge-patch+json",
                                .body = patch,
                                .body_len = strlen(patch)};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[1], NULL), 0);
    struct httpc_request head = {.method = "HEAD", .path = "/echo"};
    ck_assert_int_eq(httpc_request(F.c, &head, on_done, &F.res[2], NULL), 0);
    F.expect = 3;
    run();
    struct result *g = &F.res[0], *p = &F.res[1], *h = &F.res[2];
    ck_assert_int_eq(g->calls, 1);
    ck_assert_int_eq(g->result, 0);
    ck_assert_int_eq(g->status, 200);
    ck_assert_uint_eq(g->attempts, 1);
    ck_assert_ptr_nonnull(strstr(g->body, "\"method\": \"GET\""));
    ck_assert_ptr_nonnull(strstr(g->body, "\"path\": \"/echo?x=1\""));
    ck_assert_ptr_nonnull(strstr(g->body, "\"authorization\": \"Bearer tok-1\""));
    ck_assert_ptr_nonnull(strstr(g->body, "\"user_agent\": \"edgewarden/"));
    ck_assert_str_eq(g->error, "");
    ck_assert_int_eq(p->status, 200);
    ck_assert_ptr_nonnull(strstr(p->body, "\"method\": \"PATCH\""));
    ck_assert_ptr_nonnull(
        strstr(p->body, "\"content_type\": \"application/strategic-merge-patch+json\""));
    ck_assert_ptr_nonnull(strstr(p->body, "\"body\": \"{\\\"status\\\""));
    ck_assert_int_eq(h->status, 200);
    ck_assert_str_eq(h->body, "");
    ck_assert_int_eq(F.observed, 3);
    ck_assert_int_eq(F.observed_status[0], 200);
}
END_TEST

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char data[3][8192];
    static int next;
    char *d = data[next++ % 3];
    size_t n = fread(d, 1, sizeof(data[0]) - 1, f);
    d[n] = '\0';
    fclose(f);
    return d;
}

START_TEST(test_pem_data_and_client_cert) {
    struct httpc_options o = {.ca_pem = slurp(F.peer.ca),
                              .client_cert_pem = slurp(F.peer.cert),
                              .client_key_pem = slurp(F.peer.key)};
    client_new(&o);
    get("/client-cert", &F.res[0]);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.res[0].status, 200);
    ck_assert_str_eq(F.res[0].body, "{\"cn\": \"edgewarden-test-client\"}");
}
END_TEST

START_TEST(test_client_cert_files) {
    struct httpc_options o = {.client_cert_file = F.peer.cert, .client_key_file = F.peer.key};
    client_new(&o);
    get("/client-cert", &F.res[0]);
    F.expect = 1;
    run();
    ck_assert_str_eq(F.res[0].body, "{\"cn\": \"edgewarden-test-client\"}");
}
END_TEST

START_TEST(test_wrong_ca_fails) {
    struct httpc_options o = {.ca_file = F.peer.other_ca};
    client_new(&o);
    get("/echo", &F.res[0]);
    F.expect = 1;
    run();
    struct result *r = &F.res[0];
    ck_assert_int_eq(r->calls, 1);
    ck_assert_int_eq(r->result, -EPROTO);
    ck_assert_int_eq(r->curl_error, CURLE_PEER_FAILED_VERIFICATION);
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->attempts, 1); /* never retried */
    ck_assert_str_ne(r->error, "");
}
END_TEST

START_TEST(test_wrong_ca_pem_fails) {
    struct httpc_options o = {.ca_pem = slurp(F.peer.other_ca)};
    client_new(&o);
    get("/echo", &F.res[0]);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.res[0].result, -EPROTO);
    ck_assert_int_eq(F.res[0].status, 0);
}
END_TEST

START_TEST(test_insecure_only_when_asked) {
    struct httpc_options o = {.ca_file = F.peer.other_ca, .insecure_skip_tls_verify = true};
    client_new(&o);
    get("/echo", &F.res[0]);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.res[0].result, 0);
    ck_assert_int_eq(F.res[0].status, 200);
}
END_TEST

/* Each completion rotates the token and sends the next request. */
static void on_rotate(int result, struct httpc_response *resp, void *data) {
    struct result *r = data;
    record(r, result, resp);
    int i = (int)(r - F.res);
    if (i == 0) {
        ck_assert_int_eq(httpc_set_token(F.c, "tok-2"), 0);
    } else if (i == 1) {
        ck_assert_int_eq(httpc_set_token(F.c, NULL), 0);
    } else {
        close_client();
        return;
    }
    struct httpc_request req = {.method = "GET", .path = "/echo"};
    ck_assert_int_eq(httpc_request(F.c, &req, on_rotate, &F.res[i + 1], NULL), 0);
}

START_TEST(test_token_rotation) {
    struct httpc_options o = {.token = "tok-1"};
    client_new(&o);
    ck_assert_int_eq(httpc_set_token(F.c, "bad\r\nX-Injected: 1"), -EINVAL);
    struct httpc_request req = {.method = "GET", .path = "/echo"};
    ck_assert_int_eq(httpc_request(F.c, &req, on_rotate, &F.res[0], NULL), 0);
    run();
    ck_assert_ptr_nonnull(strstr(F.res[0].body, "\"authorization\": \"Bearer tok-1\""));
    ck_assert_ptr_nonnull(strstr(F.res[1].body, "\"authorization\": \"Bearer tok-2\""));
    ck_assert_ptr_nonnull(strstr(F.res[2].body, "\"authorization\": null"));
}
END_TEST

/* ---- retries ---- */

static const long retry_after_statuses[] = {503, 429};

START_TEST(test_retry_after) {
    struct httpc_options o = {.on_complete = on_observe};
    client_new(&o);
    char path[128];
    snprintf(path, sizeof(path), "/flaky?key=ra%d&fail=1&status=%ld&retry_after=1", _i,
             retry_after_statuses[_i]);
    get(path, &F.res[0]);
    F.expect = 1;
    run();
    struct result *r = &F.res[0];
    ck_assert_int_eq(r->result, 0);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->attempts, 2);
    ck_assert_msg(elapsed_s(r) >= 1.0, "answered after %.3f s", elapsed_s(r));
    ck_assert_msg(elapsed_s(r) < 3.0, "answered after %.3f s", elapsed_s(r));
    ck_assert_uint_ge(r->duration_us, 1000000);
    ck_assert_int_eq(F.observed, 2);
    ck_assert_int_eq(F.observed_status[0], retry_after_statuses[_i]);
    ck_assert_int_eq(F.observed_status[1], 200);
}
END_TEST

static const long give_up_statuses[] = {500, 502, 503, 504, 429};

START_TEST(test_gives_up) {
    struct httpc_options o = {.backoff_base_ms = 100};
    client_new(&o);
    char path[128];
    snprintf(path, sizeof(path), "/flaky?key=g%d&fail=100&status=%ld", _i, give_up_statuses[_i]);
    struct httpc_request req = {.method = "GET", .path = path, .max_attempts = 3};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[0], NULL), 0);
    F.expect = 1;
    run();
    struct result *r = &F.res[0];
    ck_assert_int_eq(r->calls, 1);
    ck_assert_int_eq(r->result, 0); /* a response, just not a good one */
    ck_assert_int_eq(r->status, give_up_statuses[_i]);
    ck_assert_uint_eq(r->attempts, 3);
    ck_assert_str_eq(r->body, "{\"try\":\"later\"}");
    snprintf(path, sizeof(path), "/hits?key=g%d", _i);
    ck_assert_int_eq(fetch_number(path, "hits"), 3);
}
END_TEST

START_TEST(test_default_attempts) {
    /* GET: 5 attempts by default (backoff kept short); POST: 1. */
    struct httpc_options o = {.backoff_base_ms = 10, .backoff_cap_ms = 40};
    client_new(&o);
    get("/flaky?key=d&fail=100&status=502", &F.res[0]);
    struct httpc_request post = {
        .method = "POST", .path = "/flaky?key=p&fail=100&status=503", .body = "{}", .body_len = 2};
    ck_assert_int_eq(httpc_request(F.c, &post, on_done, &F.res[1], NULL), 0);
    F.expect = 2;
    run();
    ck_assert_uint_eq(F.res[0].attempts, HTTPC_MAX_ATTEMPTS_DEFAULT);
    ck_assert_int_eq(F.res[0].status, 502);
    ck_assert_uint_eq(F.res[1].attempts, 1);
    ck_assert_int_eq(F.res[1].status, 503);
    ck_assert_int_eq(fetch_number("/hits?key=p", "hits"), 1);
}
END_TEST

START_TEST(test_4xx_not_retried) {
    client_default();
    get("/status/404", &F.res[0]);
    get("/status/409", &F.res[1]);
    get("/status/403", &F.res[2]);
    F.expect = 3;
    run();
    ck_assert_int_eq(F.res[0].status, 404);
    ck_assert_int_eq(F.res[1].status, 409);
    ck_assert_int_eq(F.res[2].status, 403);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(F.res[i].result, 0);
        ck_assert_uint_eq(F.res[i].attempts, 1);
    }
    ck_assert_str_eq(F.res[1].body, "{\"kind\": \"Status\", \"code\": 409}");
}
END_TEST

START_TEST(test_reset_retried) {
    client_default();
    get("/reset?key=r1&fail=1", &F.res[0]);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.res[0].result, 0);
    ck_assert_int_eq(F.res[0].status, 200);
    ck_assert_uint_eq(F.res[0].attempts, 2);
    ck_assert_ptr_nonnull(strstr(F.res[0].body, "\"hits\": 2"));
}
END_TEST

START_TEST(test_reset_not_retried_for_post) {
    client_default();
    struct httpc_request req = {.method = "POST", .path = "/reset?key=r2&fail=1"};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[0], NULL), 0);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.res[0].result, -ECONNRESET);
    ck_assert_uint_eq(F.res[0].attempts, 1);
}
END_TEST

START_TEST(test_timeout) {
    client_default();
    struct httpc_request req = {.method = "GET", .path = "/slow?ms=3000", .timeout_ms = 300};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[0], NULL), 0);
    F.expect = 1;
    run();
    struct result *r = &F.res[0];
    ck_assert_int_eq(r->result, -ETIMEDOUT);
    ck_assert_int_eq(r->curl_error, CURLE_OPERATION_TIMEDOUT);
    ck_assert_uint_eq(r->attempts, 1);
    ck_assert_msg(elapsed_s(r) >= 0.29 && elapsed_s(r) < 2.5, "took %.3f s", elapsed_s(r));
}
END_TEST

START_TEST(test_refused) {
    /* A port nothing listens on: retried (connection error), then -ECONNREFUSED. */
    struct httpc_options o = {.backoff_base_ms = 10};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    char base[64];
    snprintf(base, sizeof(base), "https://127.0.0.1:%d/", ntohs(sin.sin_port));
    o.base_url = base;
    client_new(&o);
    struct httpc_request req = {.method = "GET", .path = "/x", .max_attempts = 2};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[0], NULL), 0);
    F.expect = 1;
    run();
    close(fd);
    ck_assert_int_eq(F.res[0].result, -ECONNREFUSED);
    ck_assert_uint_eq(F.res[0].attempts, 2);
}
END_TEST

/* ---- pacing ---- */

START_TEST(test_concurrency_limit) {
    struct httpc_options o = {.max_concurrent = 2};
    client_new(&o);
    for (int i = 0; i < 6; i++)
        get("/concurrent?ms=300", &F.res[i]);
    F.expect = 6;
    run();
    uint64_t last = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(F.res[i].status, 200);
        last = F.res[i].at_ns > last ? F.res[i].at_ns : last;
    }
    ck_assert_int_eq(fetch_number("/stats", "max_concurrent"), 2);
    ck_assert_msg((double)(last - F.t0) / 1e9 >= 0.9, "6 x 300 ms in pairs took %.3f s",
                  (double)(last - F.t0) / 1e9);
}
END_TEST

START_TEST(test_token_bucket) {
    struct httpc_options o = {.qps = 5, .burst = 1};
    client_new(&o);
    F.t0 = uv_hrtime();
    for (int i = 0; i < 6; i++)
        get("/echo", &F.res[i]);
    F.expect = 6;
    run();
    uint64_t last = 0;
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(F.res[i].status, 200);
        last = F.res[i].at_ns > last ? F.res[i].at_ns : last;
        if (i)
            ck_assert_uint_ge(F.res[i].at_ns, F.res[i - 1].at_ns); /* FIFO */
    }
    double s = (double)(last - F.t0) / 1e9;
    ck_assert_msg(s >= 1.0 && s < 3.0, "6 requests at 5 QPS, burst 1, took %.3f s", s);
}
END_TEST

/* ---- streams ---- */

static void on_line(const char *line, size_t len, void *data) {
    ck_assert_uint_eq(strlen(line), len);
    if (F.lines < 8) {
        snprintf(F.line[F.lines], sizeof(F.line[0]), "%s", line);
        F.line_at_ns[F.lines] = uv_hrtime();
    }
    F.lines++;
    if (F.cancel_after_lines && F.lines == F.cancel_after_lines)
        httpc_cancel(F.stream_call);
}

static void stream(const char *path, struct result *r, struct httpc_call **out) {
    struct httpc_request req = {.method = "GET", .path = path};
    ck_assert_int_eq(httpc_stream(F.c, &req, on_line, on_done, r, out), 0);
}

START_TEST(test_stream_lines) {
    client_default();
    stream("/stream?lines=3&delay_ms=200", &F.res[0], NULL);
    F.expect = 1;
    run();
    struct result *r = &F.res[0];
    ck_assert_int_eq(F.lines, 3);
    for (int i = 0; i < 3; i++) {
        char want[128];
        snprintf(want, sizeof(want), "{\"type\": \"ADDED\", \"object\": {\"n\": %d}}", i);
        ck_assert_str_eq(F.line[i], want);
    }
    /* Delivered as they came, not at the end. */
    ck_assert_msg(r->at_ns - F.line_at_ns[0] >= 300000000ull, "first line came late");
    ck_assert_int_eq(r->calls, 1);
    ck_assert_int_eq(r->result, 0);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "");
}
END_TEST

START_TEST(test_stream_outside_concurrency_limit) {
    struct httpc_options o = {.max_concurrent = 1};
    client_new(&o);
    stream("/stream?lines=4&delay_ms=200", &F.res[0], NULL);
    get("/echo", &F.res[1]);
    get("/echo", &F.res[2]);
    F.expect = 3;
    run();
    ck_assert_int_eq(F.res[0].status, 200);
    ck_assert_int_eq(F.lines, 4);
    ck_assert_int_eq(F.res[2].status, 200);
    ck_assert_uint_lt(F.res[2].at_ns, F.res[0].at_ns); /* did not wait for the watch */
}
END_TEST

START_TEST(test_stream_long_line) {
    client_default();
    stream("/longline?bytes=5242880&newline=1", &F.res[0], NULL);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.lines, 0);
    ck_assert_int_eq(F.res[0].result, -EMSGSIZE);
    ck_assert_int_eq(F.res[0].status, 200);
    ck_assert_str_ne(F.res[0].error, "");
}
END_TEST

static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

START_TEST(test_stream_endless_line) {
    /* A line that never ends: the stream stops at the cap, memory stays bounded. */
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5" resets the peak RSS */
    if (f) {
        fputs("5", f);
        fclose(f);
    }
    long before = peak_rss_kib();
    struct httpc_options o = {.max_line_bytes = 1 << 20};
    client_new(&o);
    stream("/longline?bytes=268435456", &F.res[0], NULL);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.lines, 0);
    ck_assert_int_eq(F.res[0].result, -EMSGSIZE);
    long grown = peak_rss_kib() - before;
    if (!getenv("EDGEWARDEN_UNDER_VALGRIND"))
        ck_assert_msg(grown < 48 * 1024, "peak RSS grew by %ld KiB", grown);
}
END_TEST

START_TEST(test_stream_error_status) {
    client_default();
    stream("/status/410", &F.res[0], NULL);
    F.expect = 1;
    run();
    ck_assert_int_eq(F.lines, 0);
    ck_assert_int_eq(F.res[0].result, 0);
    ck_assert_int_eq(F.res[0].status, 410);
    ck_assert_uint_eq(F.res[0].attempts, 1);
    ck_assert_str_eq(F.res[0].body, "{\"kind\": \"Status\", \"code\": 410}");
}
END_TEST

START_TEST(test_stream_cancel_from_on_line) {
    client_default();
    F.cancel_after_lines = 1;
    stream("/stream?lines=5&delay_ms=100", &F.res[0], &F.stream_call);
    get("/slow?ms=800", &F.res[1]); /* keeps the loop going past the stream's end */
    F.expect = 1;
    run();
    ck_assert_int_eq(F.lines, 1);
    ck_assert_int_eq(F.res[0].calls, 0);
    ck_assert_int_eq(F.res[1].calls, 1);
}
END_TEST

/* ---- cancel and close ---- */

static void on_cancel_timer(uv_timer_t *t) {
    for (int i = 0; i < MAX_RESULTS; i++)
        httpc_cancel(F.calls[i]);
    memset(F.calls, 0, sizeof(F.calls));
    uv_close((uv_handle_t *)t, NULL);
}

static void on_close_timer(uv_timer_t *t) {
    close_client();
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_cancel) {
    struct httpc_options o = {.max_concurrent = 1};
    client_new(&o);
    struct httpc_request slow = {.method = "GET", .path = "/slow?ms=2000"};
    struct httpc_request flaky = {.method = "GET",
                                  .path = "/flaky?key=c&fail=1&status=503&retry_after=5"};
    struct httpc_request st = {.method = "GET", .path = "/stream?lines=50&delay_ms=100"};
    ck_assert_int_eq(httpc_stream(F.c, &st, on_line, on_done, &F.res[0], &F.calls[0]), 0);
    ck_assert_int_eq(httpc_request(F.c, &flaky, on_done, &F.res[1], &F.calls[1]), 0);
    ck_assert_int_eq(httpc_request(F.c, &slow, on_done, &F.res[2], &F.calls[2]), 0); /* queued */
    /* cancelled before it ever started */
    struct httpc_call *queued = NULL;
    ck_assert_int_eq(httpc_request(F.c, &slow, on_done, &F.res[3], &queued), 0);
    httpc_cancel(queued);
    /* At 600 ms: the stream in flight, flaky waiting to retry (Retry-After: 5),
     * slow in flight in the slot flaky gave up while waiting. */
    uv_timer_t cancel_timer, close_timer;
    uv_timer_init(&F.loop, &cancel_timer);
    uv_timer_start(&cancel_timer, on_cancel_timer, 600, 0);
    uv_timer_init(&F.loop, &close_timer);
    uv_timer_start(&close_timer, on_close_timer, 1200, 0);
    run();
    ck_assert_int_gt(F.lines, 0);
    ck_assert_int_lt(F.lines, 10);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(F.res[i].calls, 0);
}
END_TEST

START_TEST(test_close_in_flight) {
    client_default();
    for (int i = 0; i < 3; i++)
        get("/slow?ms=2000", &F.res[i]);
    stream("/stream?lines=50&delay_ms=100", &F.res[3], NULL);
    get("/flaky?key=ci&fail=1&status=503&retry_after=5", &F.res[4]);
    uv_timer_t close_timer;
    uv_timer_init(&F.loop, &close_timer);
    uv_timer_start(&close_timer, on_close_timer, 400, 0);
    run();
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(F.res[i].calls, 0);
}
END_TEST

static void on_done_then_close(int result, struct httpc_response *resp, void *data) {
    record(data, result, resp);
    close_client();
    struct httpc_request req = {.method = "GET", .path = "/echo"};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done, &F.res[9], NULL), -ESHUTDOWN);
}

START_TEST(test_close_from_callback) {
    client_default();
    struct httpc_request req = {.method = "GET", .path = "/echo"};
    ck_assert_int_eq(httpc_request(F.c, &req, on_done_then_close, &F.res[0], NULL), 0);
    get("/slow?ms=2000", &F.res[1]);
    stream("/stream?lines=50&delay_ms=100", &F.res[2], NULL);
    run();
    ck_assert_int_eq(F.res[0].calls, 1);
    ck_assert_int_eq(F.res[1].calls, 0);
    ck_assert_int_eq(F.res[2].calls, 0);
    ck_assert_int_eq(F.res[9].calls, 0);
}
END_TEST

static void on_line_then_close(const char *line, size_t len, void *data) {
    F.lines++;
    close_client();
}

START_TEST(test_close_from_on_line) {
    client_default();
    struct httpc_request req = {.method = "GET", .path = "/stream?lines=5&delay_ms=50"};
    ck_assert_int_eq(httpc_stream(F.c, &req, on_line_then_close, on_done, &F.res[0], NULL), 0);
    run();
    ck_assert_int_eq(F.lines, 1);
    ck_assert_int_eq(F.res[0].calls, 0);
}
END_TEST

/* ---- addresses and arguments ---- */

static bool have_ipv6_loopback(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

START_TEST(test_ipv6) {
    if (!have_ipv6_loopback()) {
        fprintf(stderr, "test_ipv6: no IPv6 loopback, skipped\n");
        return;
    }
    struct peer p6 = {0};
    ck_assert_int_eq(peer_start(&p6, "::1"), 0);
    char base[128];
    snprintf(base, sizeof(base), "https://[::1]:%d", p6.port);
    struct httpc_options o = {.base_url = base, .ca_file = p6.ca};
    client_new(&o);
    get("/echo", &F.res[0]);
    F.expect = 1;
    run();
    peer_stop(&p6);
    ck_assert_int_eq(F.res[0].result, 0);
    ck_assert_int_eq(F.res[0].status, 200);
}
END_TEST

static void on_never(int result, struct httpc_response *resp, void *data) {
    ck_abort_msg("callback after an error return");
}

START_TEST(test_bad_arguments) {
    struct httpc *c = NULL;
    const char *bad[] = {"http://127.0.0.1:1",
                         "https://u:p@127.0.0.1:1",
                         "https://127.0.0.1:1/?q=1",
                         "https://127.0.0.1:1/#f",
                         "127.0.0.1:1",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct httpc_options o = {.base_url = bad[i]};
        ck_assert_msg(httpc_new(&F.loop, &o, &c) == -EINVAL, "%s", bad[i]);
    }
    struct httpc_options both = {.base_url = F.base, .ca_file = "a", .ca_pem = "b"};
    ck_assert_int_eq(httpc_new(&F.loop, &both, &c), -EINVAL);
    struct httpc_options tok = {.base_url = F.base, .token = "a b"};
    ck_assert_int_eq(httpc_new(&F.loop, &tok, &c), -EINVAL);

    client_default();
    struct httpc_request reqs[] = {
        {.method = "get", .path = "/x"},
        {.method = "GET", .path = "x"},
        {.method = "GET", .path = "/x y"},
        {.method = "GET", .path = "/x\r\nHost: evil"},
        {.method = NULL, .path = "/x"},
        {.method = "POST", .path = "/x", .content_type = "a\nb"},
        {.method = "POST", .path = "/x", .body_len = 3},
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        ck_assert_int_eq(httpc_request(F.c, &reqs[i], on_never, NULL, NULL), -EINVAL);
        ck_assert_int_eq(httpc_stream(F.c, &reqs[i], on_line, on_never, NULL, NULL), -EINVAL);
    }
    close_client();
    run();
}
END_TEST

START_TEST(test_parse_retry_after) {
    uint64_t ms = 0;
    time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    ck_assert_int_eq(httpc_parse_retry_after("1", now, &ms), 0);
    ck_assert_uint_eq(ms, 1000);
    ck_assert_int_eq(httpc_parse_retry_after(" 120 ", now, &ms), 0);
    ck_assert_uint_eq(ms, 120000);
    ck_assert_int_eq(httpc_parse_retry_after("0", now, &ms), 0);
    ck_assert_uint_eq(ms, 0);
    ck_assert_int_eq(httpc_parse_retry_after("99999999999999", now, &ms), 0);
    ck_assert_uint_eq(ms, UINT64_MAX);
    ck_assert_int_eq(httpc_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now, &ms), 0);
    ck_assert_uint_eq(ms, 10000);
    ck_assert_int_eq(httpc_parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now, &ms), 0);
    ck_assert_uint_eq(ms, 0); /* in the past */
    const char *bad[] = {"",
                         "-1",
                         "1.5",
                         "soon",
                         "Sun, 06 Nov 1994 08:49:47 PST",
                         "Sun, 06 Foo 1994 08:49:47 GMT",
                         "Sun, 06 Nov 1994 25:49:47 GMT",
                         "12abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(httpc_parse_retry_after(bad[i], now, &ms) == -EINVAL, "%s", bad[i]);
    ck_assert_int_eq(httpc_parse_retry_after(NULL, now, &ms), -EINVAL);
}
END_TEST

static Suite *http_suite(void) {
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_get_and_patch);
    tcase_add_test(tc, test_pem_data_and_client_cert);
    tcase_add_test(tc, test_client_cert_files);
    tcase_add_test(tc, test_wrong_ca_fails);
    tcase_add_test(tc, test_wrong_ca_pem_fails);
    tcase_add_test(tc, test_insecure_only_when_asked);
    tcase_add_test(tc, test_token_rotation);
    tcase_add_loop_test(tc, test_retry_after, 0, 2);
    tcase_add_loop_test(tc, test_gives_up, 0, 5);
    tcase_add_test(tc, test_default_attempts);
    tcase_add_test(tc, test_4xx_not_retried);
    tcase_add_test(tc, test_reset_retried);
    tcase_add_test(tc, test_reset_not_retried_for_post);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_concurrency_limit);
    tcase_add_test(tc, test_token_bucket);
    tcase_add_test(tc, test_stream_lines);
    tcase_add_test(tc, test_stream_outside_concurrency_limit);
    tcase_add_test(tc, test_stream_long_line);
    tcase_add_test(tc, test_stream_endless_line);
    tcase_add_test(tc, test_stream_error_status);
    tcase_add_test(tc, test_stream_cancel_from_on_line);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_close_in_flight);
    tcase_add_test(tc, test_close_from_callback);
    tcase_add_test(tc, test_close_from_on_line);
    tcase_add_test(tc, test_ipv6);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_parse_retry_after);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (peer_start(&PEER, "127.0.0.1") < 0) {
        fprintf(stderr, "cannot start %s\n", FIXTURES "/httpc_peer.py");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    peer_stop(&PEER);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
