/*
 * The HTTPS client: libcurl's multi interface on the agent's libuv loop, as
 * curl's docs/examples/multi-uv.c does it. libcurl tells us which sockets to
 * watch (on_curl_socket: one uv_poll_t per socket, closed when libcurl stops
 * watching it) and when to call it back (on_curl_timer: one uv_timer_t);
 * after every curl_multi_socket_action() we drain curl_multi_info_read() and
 * finish or retry the transfers that completed.
 *
 * Each struct httpc_call owns one easy handle, reused for every attempt, and
 * one uv_timer_t for its backoff waits; it is freed in that timer's close
 * callback. A call is queued, active (in the multi handle), waiting to retry,
 * or done. Calls start only from on_kick, a zero-delay (or token-bucket
 * delay) timer of the client, never from inside the caller's function or a
 * libcurl callback, because libcurl refuses multi calls from its own
 * callbacks and because a function that takes a callback must not call it.
 *
 * Re-entrancy: user callbacks run from inside our loop callbacks, and may
 * cancel, start requests or close the client. `busy` counts our frames that
 * will still touch the multi handle; httpc_close() inside one only marks the
 * client and the outermost frame tears down. `in_curl_cb` marks a user
 * callback running inside a libcurl callback (on_line, from the write
 * callback), where a transfer cannot be removed: cancel then only marks the
 * call, its write callback fails it, and on_kick or the drain frees it.
 */
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define USER_AGENT "edgewarden/" EDGEWARDEN_VERSION

enum call_state { CALL_QUEUED, CALL_ACTIVE, CALL_BACKOFF, CALL_DONE };

struct httpc_call {
    struct httpc *client;
    struct httpc_call *prev, *next;   /* in client->calls while alive */
    struct httpc_call *qprev, *qnext; /* in client->queue while queued */
    enum call_state state;
    bool stream;
    bool cancelled; /* inside a libcurl callback or a last line: free later, do not report */
    bool reporting; /* on_done is running */
    int fail;       /* -errno decided outside libcurl (socket setup), reported by on_kick */
    int write_error;
    CURL *easy;
    struct curl_slist *headers;
    uv_timer_t timer; /* backoff and Retry-After waits */
    char *method;
    char *content_type;
    char *body;
    size_t body_len;
    unsigned max_attempts;
    uint64_t start_ns;
    struct buf line; /* streams: the partial line */
    struct httpc_response resp;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    httpc_done_cb on_done;
    httpc_line_cb on_line;
    void *data;
};

/* A socket libcurl asked us to watch. */
struct sock {
    struct httpc *client;
    struct sock *prev, *next;
    uv_poll_t poll;
    curl_socket_t fd;
};

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer; /* libcurl's timeout */
    uv_timer_t kick;       /* start queued calls, now or when the bucket has a token */
    unsigned open_handles;
    struct sock *socks;
    struct httpc_call *calls;
    struct httpc_call *queue_head, *queue_tail;
    unsigned active_requests; /* streams excluded */

    char *base_url; /* without a trailing '/' */
    char *ca_file, *ca_pem;
    char *cert_file, *key_file, *cert_pem, *key_pem;
    char *token;
    bool insecure;
    unsigned max_concurrent;
    double qps;
    double burst;
    double tokens;
    uint64_t bucket_ns; /* when tokens was last refilled */
    uint64_t timeout_ms, connect_timeout_ms, stream_idle_timeout_ms;
    size_t max_body_bytes, max_line_bytes;
    uint64_t backoff_base_ms, backoff_cap_ms, retry_after_cap_ms;
    void (*on_complete)(const char *method, long status, uint64_t duration_us, void *data);
    void *on_complete_data;
    uint64_t rng;

    unsigned busy;
    bool in_curl_cb;
    bool closing;
    bool torn_down;
    void (*close_cb)(void *data);
    void *close_data;
};

static void teardown(struct httpc *c);
static void drain(struct httpc *c);

/* ---- small helpers ---- */

static uint64_t rng_next(struct httpc *c) {
    /* splitmix64: jitter only, not secrets */
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool header_safe(const char *s, bool allow_space) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || (!allow_space && ch == ' '))
            return false;
    }
    return true;
}

static int dup_opt(const char *in, char **out) {
    *out = NULL;
    if (!in)
        return 0;
    *out = strdup(in);
    return *out ? 0 : -ENOMEM;
}

static bool idempotent(const char *method) {
    static const char *const m[] = {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(method, m[i]) == 0)
            return true;
    return false;
}

static void enter(struct httpc *c) {
    c->busy++;
}

static void leave(struct httpc *c) {
    if (--c->busy == 0 && c->closing && !c->torn_down)
        teardown(c);
}

static void maybe_free(struct httpc *c) {
    if (!c->torn_down || c->open_handles)
        return;
    if (c->close_cb)
        c->close_cb(c->close_data);
    free(c->base_url);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->token);
    free(c);
}

static void on_kick(uv_timer_t *t);

static void kick_in(struct httpc *c, uint64_t ms) {
    if (c->closing)
        return;
    if (uv_is_active((uv_handle_t *)&c->kick) && uv_timer_get_due_in(&c->kick) <= ms)
        return;
    uv_timer_start(&c->kick, on_kick, ms, 0);
}

/* ---- call lifetime ---- */

static void queue_remove(struct httpc *c, struct httpc_call *call) {
    if (call->qprev)
        call->qprev->qnext = call->qnext;
    else
        c->queue_head = call->qnext;
    if (call->qnext)
        call->qnext->qprev = call->qprev;
    else
        c->queue_tail = call->qprev;
    call->qprev = call->qnext = NULL;
}

static void queue_push(struct httpc *c, struct httpc_call *call) {
    call->state = CALL_QUEUED;
    call->qnext = NULL;
    call->qprev = c->queue_tail;
    if (c->queue_tail)
        c->queue_tail->qnext = call;
    else
        c->queue_head = call;
    c->queue_tail = call;
}

static void on_call_closed(uv_handle_t *h) {
    struct httpc_call *call = container_of((uv_timer_t *)h, struct httpc_call, timer);
    struct httpc *c = call->client;
    free(call);
    c->open_handles--;
    maybe_free(c);
}

/* Take the transfer out of the multi handle. Never from a libcurl callback. */
static void call_deactivate(struct httpc_call *call) {
    struct httpc *c = call->client;
    if (call->state != CALL_ACTIVE)
        return;
    curl_multi_remove_handle(c->multi, call->easy);
    if (!call->stream)
        c->active_requests--;
    call->state = CALL_DONE;
}

/* Release everything; the struct goes in its timer's close callback. */
static void call_free(struct httpc_call *call) {
    struct httpc *c = call->client;
    if (call->state == CALL_QUEUED)
        queue_remove(c, call);
    call_deactivate(call);
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    free(call->method);
    free(call->content_type);
    free(call->body);
    buf_free(&call->line);
    buf_free(&call->resp.body);
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, on_call_closed);
}

/* ---- libcurl callbacks ---- */

static size_t on_header(char *ptr, size_t size, size_t n, void *userdata) {
    struct httpc_call *call = userdata;
    size_t len = size * n;
    if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { /* a new response head (1xx, then final) */
        call->retry_after[0] = '\0';
        return len;
    }
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
        const char *v = ptr + sizeof(name) - 1;
        const char *end = ptr + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t vlen = (size_t)(end - v);
        if (vlen >= sizeof(call->retry_after))
            vlen = sizeof(call->retry_after) - 1;
        memcpy(call->retry_after, v, vlen);
        call->retry_after[vlen] = '\0';
    }
    return len;
}

static bool stream_ok(struct httpc_call *call) {
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

/* Hand each complete line to the caller. Returns false to fail the transfer. */
static bool stream_feed(struct httpc_call *call, const char *p, size_t len) {
    struct httpc *c = call->client;
    while (len && !call->cancelled && !c->closing) {
        const char *nl = memchr(p, '\n', len);
        size_t take = nl ? (size_t)(nl - p) : len;
        int r = buf_append(&call->line, p, take);
        if (r < 0) {
            call->write_error = r == -E2BIG ? -EMSGSIZE : r;
            return false;
        }
        if (!nl)
            return true;
        p += take + 1;
        len -= take + 1;
        size_t l = call->line.len;
        if (l && call->line.data[l - 1] == '\r')
            call->line.data[--l] = '\0';
        if (l) {
            bool outer = c->in_curl_cb;
            c->in_curl_cb = true;
            call->on_line(call->line.data, l, call->data);
            c->in_curl_cb = outer;
        }
        buf_reset(&call->line);
    }
    return !call->cancelled && !c->closing;
}

static size_t on_write(char *ptr, size_t size, size_t n, void *userdata) {
    struct httpc_call *call = userdata;
    size_t len = size * n;
    if (call->cancelled)
        return 0;
    if (call->stream && stream_ok(call))
        return stream_feed(call, ptr, len) ? len : 0;
    int r = buf_append(&call->resp.body, ptr, len);
    if (r < 0) {
        call->write_error = r == -E2BIG ? -EMSGSIZE : r;
        return 0;
    }
    return len;
}

static void on_poll(uv_poll_t *p, int status, int events) {
    struct sock *sk = container_of(p, struct sock, poll);
    struct httpc *c = sk->client;
    curl_socket_t fd = sk->fd; /* sk may be closed by the action below */
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    if (c->torn_down)
        return;
    int running;
    enter(c);
    curl_multi_socket_action(c->multi, fd, flags, &running);
    drain(c);
    leave(c);
}

static void on_sock_closed(uv_handle_t *h) {
    struct sock *sk = container_of((uv_poll_t *)h, struct sock, poll);
    struct httpc *c = sk->client;
    free(sk);
    c->open_handles--;
    maybe_free(c);
}

/* Stop watching and close: libcurl may close the fd and reuse its number for
 * a new socket right after, which must get a fresh uv_poll_t. */
static void sock_close(struct sock *sk) {
    struct httpc *c = sk->client;
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        c->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

/* Fail one transfer from outside libcurl, since returning -1 here would
 * abort every transfer in the multi handle. */
static void fail_later(CURL *easy, int error) {
    struct httpc_call *call = NULL;
    if (easy)
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
    if (!call || call->fail)
        return;
    call->fail = error;
    kick_in(call->client, 0);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    struct httpc *c = userp;
    struct sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk)
            sock_close(sk);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    if (!sk) {
        sk = calloc(1, sizeof(*sk));
        if (!sk) {
            fail_later(easy, -ENOMEM);
            return 0;
        }
        int r = uv_poll_init_socket(c->loop, &sk->poll, s);
        if (r < 0) {
            free(sk);
            fail_later(easy, r);
            return 0;
        }
        c->open_handles++;
        sk->client = c;
        sk->fd = s;
        sk->next = c->socks;
        if (c->socks)
            c->socks->prev = sk;
        c->socks = sk;
        curl_multi_assign(c->multi, s, sk);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    int r = uv_poll_start(&sk->poll, events, on_poll);
    if (r < 0)
        fail_later(easy, r);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t) {
    struct httpc *c = container_of(t, struct httpc, curl_timer);
    if (c->torn_down)
        return;
    int running;
    enter(c);
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
    leave(c);
}

/* libcurl wants to be called after timeout_ms, or not at all (-1). Never
 * call back into libcurl from here: a zero delay runs on the next turn. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    struct httpc *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->curl_timer);
    else if (!c->torn_down)
        uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- results and retries ---- */

static int error_from_curl(struct httpc_call *call, CURLcode rc) {
    long os_errno = 0;
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_WRITE_ERROR:
        return call->write_error ? call->write_error : -EIO;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
        return -EPROTO;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        curl_easy_getinfo(call->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == EPIPE) /* the peer reset while we were still sending */
            return -ECONNRESET;
        if (os_errno > 0)
            return -(int)os_errno;
        return rc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -ECONNRESET;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return -ECONNRESET;
    default:
        return -EIO;
    }
}

/* Worth another attempt: the connection broke, or the server said "later".
 * Timeouts are not retried: the attempt used its budget and the caller, who
 * chose it, decides. TLS verification failures never get better. */
static bool retryable(CURLcode rc, long status) {
    switch (rc) {
    case CURLE_OK:
        return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static uint64_t retry_delay_ms(struct httpc_call *call, long status) {
    struct httpc *c = call->client;
    uint64_t ms;
    if ((status == 429 || status == 503) && call->retry_after[0] &&
        httpc_parse_retry_after(call->retry_after, time(NULL), &ms) == 0)
        return ms < c->retry_after_cap_ms ? ms : c->retry_after_cap_ms;
    /* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
    uint64_t ceiling = c->backoff_base_ms;
    for (unsigned i = 1; i < call->resp.attempts && ceiling < c->backoff_cap_ms; i++)
        ceiling *= 2;
    if (ceiling > c->backoff_cap_ms)
        ceiling = c->backoff_cap_ms;
    return rng_next(c) % (ceiling + 1);
}

static void on_backoff(uv_timer_t *t) {
    struct httpc_call *call = container_of(t, struct httpc_call, timer);
    queue_push(call->client, call);
    kick_in(call->client, 0);
}

/* Report and free. The state is DONE, so cancel from the callback is a no-op. */
static void call_finish(struct httpc_call *call, int result) {
    struct httpc_response *resp = &call->resp;
    resp->duration_us = (uv_hrtime() - call->start_ns) / 1000;
    resp->retry_after_raw = call->retry_after[0] ? call->retry_after : NULL;
    if (result < 0 && !resp->error[0]) {
        const char *text = call->errbuf[0]                ? call->errbuf
                           : result == -EMSGSIZE          ? "response over its size cap"
                           : resp->curl_error != CURLE_OK ? curl_easy_strerror(resp->curl_error)
                                                          : strerror(-result);
        snprintf(resp->error, sizeof(resp->error), "%s", text);
    }
    call->state = CALL_DONE;
    if (!call->client->closing) { /* closed from a callback: nobody is listening */
        call->reporting = true;
        call->on_done(result, resp, call->data);
    }
    call_free(call);
}

/* A transfer completed: report it, or wait and queue it again. */
static void transfer_done(struct httpc_call *call, CURLcode rc) {
    struct httpc *c = call->client;
    call_deactivate(call);
    if (call->cancelled) {
        call_free(call);
        return;
    }
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    call->resp.status = status;
    call->resp.curl_error = rc;
    int result = error_from_curl(call, rc);
    if (!call->stream && c->on_complete) {
        curl_off_t us = 0;
        curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME_T, &us);
        c->on_complete(call->method, rc == CURLE_OK ? status : 0, (uint64_t)us,
                       c->on_complete_data);
    }
    if (call->cancelled) { /* by on_complete */
        call_free(call);
        return;
    }
    if (call->stream && result == 0 && call->line.len && stream_ok(call)) {
        /* A last line without its newline, before a clean end. */
        call->on_line(call->line.data, call->line.len, call->data);
        if (call->cancelled || c->closing) {
            call_free(call);
            return;
        }
    }
    if (!c->closing && call->resp.attempts < call->max_attempts && retryable(rc, status)) {
        call->state = CALL_BACKOFF;
        uv_timer_start(&call->timer, on_backoff, retry_delay_ms(call, status), 0);
        return;
    }
    call_finish(call, result);
}

/* After every action: every completed transfer, until none is left. */
static void drain(struct httpc *c) {
    CURLMsg *m;
    int left;
    while (!c->closing && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct httpc_call *call = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        if (call)
            transfer_done(call, rc);
    }
    if (c->queue_head)
        kick_in(c, 0);
}

/* ---- starting transfers ---- */

static int add_header(struct curl_slist **list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_header(struct curl_slist **list, const char *fmt, ...) {
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    struct curl_slist *l = curl_slist_append(*list, line);
    free(line);
    if (!l)
        return -ENOMEM;
    *list = l;
    return 0;
}

/* Reset the per-attempt state; the headers are rebuilt so that a token set
 * since the last attempt is the one sent. */
static int call_prepare_attempt(struct httpc_call *call) {
    struct httpc *c = call->client;
    struct curl_slist *h = NULL;
    int r = add_header(&h, "Accept: application/json");
    if (r == 0)
        r = add_header(&h, "Expect:"); /* no 100-continue round trip for large bodies */
    if (r == 0 && c->token)
        r = add_header(&h, "Authorization: Bearer %s", c->token);
    if (r == 0 && call->content_type)
        r = add_header(&h, "Content-Type: %s", call->content_type);
    if (r < 0) {
        curl_slist_free_all(h);
        return r;
    }
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, h);
    curl_slist_free_all(call->headers); /* after the easy handle stopped pointing at it */
    call->headers = h;
    buf_reset(&call->resp.body);
    buf_reset(&call->line);
    call->retry_after[0] = '\0';
    call->errbuf[0] = '\0';
    call->resp.error[0] = '\0';
    call->write_error = 0;
    call->fail = 0;
    return 0;
}

static void call_start(struct httpc_call *call) {
    struct httpc *c = call->client;
    int r = call_prepare_attempt(call);
    if (r == 0) {
        CURLMcode mc = curl_multi_add_handle(c->multi, call->easy);
        r = mc == CURLM_OK ? 0 : mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    }
    call->resp.attempts++;
    if (r < 0) {
        call->state = CALL_DONE;
        call_finish(call, r);
        return;
    }
    call->state = CALL_ACTIVE;
    if (!call->stream)
        c->active_requests++;
}

/* 0 when a token was taken, else the milliseconds until one is due. */
static uint64_t bucket_take(struct httpc *c) {
    if (c->qps < 0)
        return 0;
    uint64_t now = uv_hrtime();
    c->tokens += (double)(now - c->bucket_ns) * c->qps / 1e9;
    if (c->tokens > c->burst)
        c->tokens = c->burst;
    c->bucket_ns = now;
    if (c->tokens >= 1.0) {
        c->tokens -= 1.0;
        return 0;
    }
    uint64_t ms = (uint64_t)((1.0 - c->tokens) * 1000.0 / c->qps) + 1;
    return ms;
}

static void dispatch(struct httpc *c) {
    while (c->queue_head && !c->closing) {
        struct httpc_call *call = c->queue_head;
        if (!call->stream && c->active_requests >= c->max_concurrent)
            return;
        uint64_t wait_ms = bucket_take(c);
        if (wait_ms) {
            kick_in(c, wait_ms);
            return;
        }
        queue_remove(c, call);
        call_start(call);
    }
}

/* Outside libcurl's callbacks: reap what they could not, then start calls. */
static void on_kick(uv_timer_t *t) {
    struct httpc *c = container_of(t, struct httpc, kick);
    enter(c);
    for (;;) {
        struct httpc_call *call = c->calls;
        while (call && !(call->state == CALL_ACTIVE && (call->cancelled || call->fail)))
            call = call->next;
        if (!call || c->closing)
            break;
        if (call->cancelled) {
            call_free(call);
            continue;
        }
        call_deactivate(call);
        call->resp.curl_error = CURLE_OK;
        call_finish(call, call->fail);
    }
    dispatch(c);
    leave(c);
}

/* ---- the easy handle ---- */

static CURL *easy_new(struct httpc_call *call, const char *path, uint64_t timeout_ms) {
    struct httpc *c = call->client;
    CURL *e = curl_easy_init();
    char *url = NULL;
    if (!e)
        return NULL;
    if (asprintf(&url, "%s%s", c->base_url, path) < 0)
        goto fail;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PRIVATE, (char *)call);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would carry the token elsewhere */
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_ERRORBUFFER, call->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, call);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, call);
    SET(CURLOPT_ACCEPT_ENCODING, ""); /* caps apply to the decoded body */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 10L);
    uint64_t connect_ms = c->connect_timeout_ms;
    if (timeout_ms && timeout_ms < connect_ms)
        connect_ms = timeout_ms;
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (call->stream) {
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, (long)((c->stream_idle_timeout_ms + 999) / 1000));
    }

    if (strcmp(call->method, "GET") == 0 && !call->body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(call->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        if (call->body || strcmp(call->method, "POST") == 0 || strcmp(call->method, "PUT") == 0 ||
            strcmp(call->method, "PATCH") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
            SET(CURLOPT_POSTFIELDS, call->body ? call->body : "");
        }
        SET(CURLOPT_CUSTOMREQUEST, call->method);
    }

    /* Trust exactly what was configured: without these NULLs a CA blob
     * would be added to the built-in bundle instead of replacing it. */
    if (c->ca_file || c->ca_pem) {
        SET(CURLOPT_CAPATH, NULL);
        SET(CURLOPT_CAINFO, c->ca_file);
    }
    if (c->ca_pem) {
        struct curl_blob blob = {c->ca_pem, strlen(c->ca_pem), CURL_BLOB_COPY};
        SET(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (c->cert_file)
        SET(CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file)
        SET(CURLOPT_SSLKEY, c->key_file);
    if (c->cert_pem) {
        struct curl_blob blob = {c->cert_pem, strlen(c->cert_pem), CURL_BLOB_COPY};
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLCERT_BLOB, &blob);
    }
    if (c->key_pem) {
        struct curl_blob blob = {c->key_pem, strlen(c->key_pem), CURL_BLOB_COPY};
        SET(CURLOPT_SSLKEYTYPE, "PEM");
        SET(CURLOPT_SSLKEY_BLOB, &blob);
    }
    SET(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
#undef SET
    free(url); /* libcurl copies string options */
    if (rc != CURLE_OK)
        goto fail;
    return e;
fail:
    free(url);
    curl_easy_cleanup(e);
    return NULL;
}

static bool valid_method(const char *m) {
    size_t n = m ? strlen(m) : 0;
    return n > 0 && n <= 16 && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

static int call_new(struct httpc *c, const struct httpc_request *req, bool stream,
                    httpc_line_cb on_line, httpc_done_cb on_done, void *data,
                    struct httpc_call **out) {
    if (!req || !on_done || (stream && !on_line) || !valid_method(req->method) || !req->path ||
        req->path[0] != '/' || !header_safe(req->path, false) ||
        (req->content_type && !header_safe(req->content_type, true)) ||
        (req->body_len && !req->body))
        return -EINVAL;
    if (c->closing)
        return -ESHUTDOWN;
    struct httpc_call *call = calloc(1, sizeof(*call));
    if (!call)
        return -ENOMEM;
    call->client = c;
    call->stream = stream;
    call->on_line = on_line;
    call->on_done = on_done;
    call->data = data;
    call->start_ns = uv_hrtime();
    buf_init(&call->resp.body, stream ? c->max_line_bytes : c->max_body_bytes);
    buf_init(&call->line, c->max_line_bytes);
    if (stream)
        call->max_attempts = 1;
    else if (req->max_attempts)
        call->max_attempts = req->max_attempts;
    else
        call->max_attempts = idempotent(req->method) ? HTTPC_MAX_ATTEMPTS_DEFAULT : 1;
    if (dup_opt(req->method, &call->method) < 0 ||
        dup_opt(req->content_type, &call->content_type) < 0)
        goto nomem;
    if (req->body) {
        call->body = malloc(req->body_len ? req->body_len : 1);
        if (!call->body)
            goto nomem;
        memcpy(call->body, req->body, req->body_len);
        call->body_len = req->body_len;
    }
    uint64_t timeout_ms = req->timeout_ms ? req->timeout_ms : stream ? 0 : c->timeout_ms;
    call->easy = easy_new(call, req->path, timeout_ms);
    if (!call->easy)
        goto nomem;
    uv_timer_init(c->loop, &call->timer); /* cannot fail for a valid loop */
    c->open_handles++;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    queue_push(c, call);
    kick_in(c, 0);
    if (out)
        *out = call;
    return 0;
nomem:
    free(call->method);
    free(call->content_type);
    free(call->body);
    free(call);
    return -ENOMEM;
}

int httpc_request(struct httpc *c, const struct httpc_request *req, httpc_done_cb cb, void *data,
                  struct httpc_call **out) {
    return call_new(c, req, false, NULL, cb, data, out);
}

int httpc_stream(struct httpc *c, const struct httpc_request *req, httpc_line_cb on_line,
                 httpc_done_cb on_done, void *data, struct httpc_call **out) {
    return call_new(c, req, true, on_line, on_done, data, out);
}

void httpc_cancel(struct httpc_call *call) {
    if (!call || call->cancelled || call->reporting)
        return;
    if (call->state == CALL_QUEUED || call->state == CALL_BACKOFF ||
        (call->state == CALL_ACTIVE && !call->client->in_curl_cb)) {
        call_free(call);
        return;
    }
    /* In flight inside a libcurl callback (its transfer cannot be removed
     * there), or its last line or on_complete running from transfer_done(). */
    call->cancelled = true;
    kick_in(call->client, 0);
}

/* ---- the client ---- */

int httpc_set_token(struct httpc *c, const char *token) {
    if (token && !header_safe(token, false))
        return -EINVAL;
    char *copy = NULL;
    if (token && token[0] && !(copy = strdup(token)))
        return -ENOMEM;
    free(c->token);
    c->token = copy;
    return 0;
}

/* https only, a host, no credentials, query or fragment. */
static int check_base_url(const char *base, bool *host_is_literal) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *extra = NULL;
    int r = -EINVAL;
    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        strcasecmp(scheme, "https") != 0 || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    static const CURLUPart absent[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_QUERY,
                                       CURLUPART_FRAGMENT};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        if (curl_url_get(u, absent[i], &extra, 0) == CURLUE_OK) {
            curl_free(extra);
            goto out;
        }
    }
    struct in_addr a4;
    *host_is_literal = host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1;
    r = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

static void on_handle_closed(uv_handle_t *h) {
    struct httpc *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

int httpc_new(uv_loop_t *loop, const struct httpc_options *o, struct httpc **out) {
    bool literal = false;
    if (!o || !o->base_url || (o->ca_file && o->ca_pem) ||
        (o->client_cert_file && o->client_cert_pem) || (o->client_key_file && o->client_key_pem) ||
        (o->token && !header_safe(o->token, false)) || o->qps != o->qps)
        return -EINVAL;
    int r = check_base_url(o->base_url, &literal);
    if (r < 0)
        return r;
    if (!literal && !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS))
        return -EOPNOTSUPP;

    struct httpc *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    if (dup_opt(o->base_url, &c->base_url) < 0 || dup_opt(o->ca_file, &c->ca_file) < 0 ||
        dup_opt(o->ca_pem, &c->ca_pem) < 0 || dup_opt(o->client_cert_file, &c->cert_file) < 0 ||
        dup_opt(o->client_key_file, &c->key_file) < 0 ||
        dup_opt(o->client_cert_pem, &c->cert_pem) < 0 ||
        dup_opt(o->client_key_pem, &c->key_pem) < 0 || httpc_set_token(c, o->token) < 0)
        goto nomem;
    size_t n = strlen(c->base_url);
    while (n && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    c->insecure = o->insecure_skip_tls_verify;
    c->max_concurrent = o->max_concurrent ? o->max_concurrent : HTTPC_MAX_CONCURRENT_DEFAULT;
    c->qps = o->qps != 0 ? o->qps : HTTPC_QPS_DEFAULT;
    c->burst = o->burst ? o->burst : HTTPC_BURST_DEFAULT;
    c->tokens = c->burst;
    c->bucket_ns = uv_hrtime();
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : HTTPC_TIMEOUT_MS_DEFAULT;
    c->connect_timeout_ms =
        o->connect_timeout_ms ? o->connect_timeout_ms : HTTPC_CONNECT_TIMEOUT_MS_DEFAULT;
    c->stream_idle_timeout_ms = o->stream_idle_timeout_ms ? o->stream_idle_timeout_ms
                                                          : HTTPC_STREAM_IDLE_TIMEOUT_MS_DEFAULT;
    c->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : HTTPC_MAX_BODY_BYTES_DEFAULT;
    c->max_line_bytes = o->max_line_bytes ? o->max_line_bytes : HTTPC_MAX_LINE_BYTES_DEFAULT;
    c->backoff_base_ms = o->backoff_base_ms ? o->backoff_base_ms : HTTPC_BACKOFF_BASE_MS_DEFAULT;
    c->backoff_cap_ms = o->backoff_cap_ms ? o->backoff_cap_ms : HTTPC_BACKOFF_CAP_MS_DEFAULT;
    c->retry_after_cap_ms =
        o->retry_after_cap_ms ? o->retry_after_cap_ms : HTTPC_RETRY_AFTER_CAP_MS_DEFAULT;
    c->on_complete = o->on_complete;
    c->on_complete_data = o->on_complete_data;
    if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != sizeof(c->rng))
        c->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)c;

    c->multi = curl_multi_init();
    if (!c->multi)
        goto nomem;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->curl_timer);
    uv_timer_init(loop, &c->kick);
    c->curl_timer.data = c->kick.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
nomem:
    free(c->base_url);
    free(c->ca_file);
    free(c->ca_pem);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->token);
    free(c);
    return -ENOMEM;
}

/* Order matters: transfers out of the multi handle, the multi handle
 * cleaned up (it may still call on_curl_socket to drop sockets), and only
 * then the libuv handles closed. */
static void teardown(struct httpc *c) {
    c->torn_down = true;
    while (c->calls)
        call_free(c->calls);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_timer_stop(&c->curl_timer);
    uv_timer_stop(&c->kick);
    uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_handle_closed);
}

void httpc_close(struct httpc *c, void (*cb)(void *data), void *data) {
    if (!c || c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    if (!c->busy)
        teardown(c);
}

/* ---- Retry-After ---- */

int httpc_parse_retry_after(const char *value, time_t now, uint64_t *out_ms) {
    if (!value)
        return -EINVAL;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t digits = strspn(value, "0123456789");
    if (digits > 0) {
        if (value[digits] != '\0' && strspn(value + digits, " \t") != strlen(value + digits))
            return -EINVAL;
        if (digits > 9) { /* beyond any cap; avoid overflow */
            *out_ms = UINT64_MAX;
            return 0;
        }
        *out_ms = strtoull(value, NULL, 10) * 1000;
        return 0;
    }
    /* IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", parsed without locale. */
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char wday[4], mon[4], zone[4];
    int day, year, hh, mm, ss, used = 0;
    if (sscanf(value, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3s%n", wday, &day, mon, &year,
               &hh, &mm, &ss, zone, &used) != 8 ||
        strcmp(zone, "GMT") != 0 || strspn(value + used, " \t") != strlen(value + used))
        return -EINVAL;
    int m = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, months[i]) == 0)
            m = i;
    if (m < 0 || day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60 || hh < 0 ||
        mm < 0 || ss < 0)
        return -EINVAL;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = m,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out_ms = t > now ? (uint64_t)(t - now) * 1000 : 0;
    return 0;
}
