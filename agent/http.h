/*
 * The HTTPS client the Kubernetes reporter talks through: libcurl's multi
 * interface driven by the agent's libuv loop, so no call here ever blocks.
 * One struct httpc holds the connection pool, the TLS settings, the bearer
 * token, a cap on concurrent transfers (excess requests queue FIFO) and a
 * token bucket that paces request starts. A request is retried on its own
 * (connection errors, 429, 500, 502, 503, 504) with full-jitter exponential
 * backoff or the server's Retry-After, waiting on libuv timers; a stream (a
 * watch) is never retried and hands its body over one line at a time. The
 * client owns everything it allocates and frees it only once every libuv
 * handle it opened has closed. It never logs: results carry -errno, the
 * HTTP status and libcurl's own error text. The process must have called
 * curl_global_init() (main does) and must ignore SIGPIPE.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "buf.h"

#define HTTPC_MAX_CONCURRENT_DEFAULT         8
#define HTTPC_QPS_DEFAULT                    20.0
#define HTTPC_BURST_DEFAULT                  40
#define HTTPC_TIMEOUT_MS_DEFAULT             10000
#define HTTPC_CONNECT_TIMEOUT_MS_DEFAULT     10000
#define HTTPC_STREAM_IDLE_TIMEOUT_MS_DEFAULT 300000
#define HTTPC_MAX_BODY_BYTES_DEFAULT         (16u << 20)
#define HTTPC_MAX_LINE_BYTES_DEFAULT         (4u << 20)
#define HTTPC_MAX_ATTEMPTS_DEFAULT           5 /* idempotent methods; POST and others: 1 */
#define HTTPC_BACKOFF_BASE_MS_DEFAULT        200
#define HTTPC_BACKOFF_CAP_MS_DEFAULT         30000
#define HTTPC_RETRY_AFTER_CAP_MS_DEFAULT     60000

struct httpc;
struct httpc_call;

/*
 * Every string and PEM blob is copied by httpc_new(); the caller keeps its
 * own. A zero numeric field means its default.
 */
struct httpc_options {
    const char *base_url; /* "https://host:port[/prefix]"; an IPv6 host in brackets */

    /* Trust: exactly one of these, or neither for the system store. When
     * one is given only it is trusted (the system store is not consulted). */
    const char *ca_file;
    const char *ca_pem;
    /* Client certificate and key, as files or as PEM data (not both). */
    const char *client_cert_file;
    const char *client_key_file;
    const char *client_cert_pem;
    const char *client_key_pem;
    /* Switch off certificate and host name verification. Off unless the
     * caller sets it: the agent passes it only from an explicit kubeconfig
     * insecure-skip-tls-verify: true. */
    bool insecure_skip_tls_verify;

    const char *token; /* bearer token, NULL or "" for none; see httpc_set_token() */

    unsigned max_concurrent; /* requests in flight; streams do not count */
    double qps;              /* request starts per second; < 0: unlimited */
    unsigned burst;          /* bucket size */
    uint64_t timeout_ms;     /* whole attempt, for requests whose own is 0 */
    uint64_t connect_timeout_ms;
    uint64_t stream_idle_timeout_ms; /* a stream with no byte for this long ends, -ETIMEDOUT */
    size_t max_body_bytes;           /* a longer response body fails with -EMSGSIZE */
    size_t max_line_bytes;           /* a longer stream line fails with -EMSGSIZE */
    uint64_t backoff_base_ms;
    uint64_t backoff_cap_ms;
    uint64_t retry_after_cap_ms;

    /* Called once per HTTP exchange of a request (each attempt; streams are
     * not reported, their duration is their lifetime): status is 0 when no
     * complete response arrived; duration_us is that attempt's transfer
     * time. method is borrowed for the call. May be NULL. */
    void (*on_complete)(const char *method, long status, uint64_t duration_us, void *data);
    void *on_complete_data;
};

/* All fields borrowed for the duration of httpc_request()/httpc_stream(). */
struct httpc_request {
    const char *method;       /* "GET", "PUT", "PATCH", "POST", "DELETE", "HEAD", ... */
    const char *path;         /* "/api/v1/nodes/n1?x=y", appended to the base URL; encoded */
    const char *content_type; /* of the body; NULL for none */
    const void *body;         /* copied; NULL for none */
    size_t body_len;
    /* Attempts in all; 0: HTTPC_MAX_ATTEMPTS_DEFAULT for GET, HEAD, PUT,
     * PATCH and DELETE, 1 otherwise. Ignored by httpc_stream() (always 1). */
    unsigned max_attempts;
    /* Per attempt; 0: the client's timeout_ms for a request, none for a
     * stream (which still ends after stream_idle_timeout_ms of silence). */
    uint64_t timeout_ms;
};

struct httpc_response {
    long status;                 /* 0 when no complete response head arrived */
    struct buf body;             /* capped; empty for streams that succeeded */
    const char *retry_after_raw; /* the last attempt's Retry-After, or NULL */
    int curl_error;              /* CURLcode of the last attempt, CURLE_OK = 0 */
    char error[256];             /* text for the log when result < 0, else "" */
    uint64_t duration_us;        /* from httpc_request() to completion, waits included */
    unsigned attempts;
};

/*
 * result is 0 when a complete HTTP response arrived, whatever its status
 * (after retries: the last one's), else -errno: -ETIMEDOUT, -ECONNREFUSED,
 * -ECONNRESET, -EHOSTUNREACH (name not resolved), -EPROTO (TLS: handshake or
 * verification), -EMSGSIZE (body or line over its cap), -ENOMEM, -EIO.
 * resp is borrowed for the call; the callee may move resp->body out (take
 * the struct buf and buf_init() the field). The call handle is gone once
 * the callback returns.
 */
typedef void (*httpc_done_cb)(int result, struct httpc_response *resp, void *data);

/* One line of a 2xx stream body, without its "\n" (and "\r"), NUL-terminated,
 * borrowed for the call. Empty lines are skipped. httpc_cancel() may be
 * called from here, on this or any other call. */
typedef void (*httpc_line_cb)(const char *line, size_t len, void *data);

/*
 * A client for o->base_url. Returns 0 and a new client in *out, or -EINVAL
 * (malformed options, base URL not https, path, query or credentials in
 * it), -EOPNOTSUPP (a host name to resolve but a libcurl without
 * asynchronous DNS, which would block the loop), -ENOMEM.
 */
int httpc_new(uv_loop_t *loop, const struct httpc_options *o, struct httpc **out);

/* Use token (copied; NULL or "" for none) from the next attempt on, retries
 * of requests already running included. -EINVAL for characters a header
 * cannot carry, -ENOMEM; the old token stays then. */
int httpc_set_token(struct httpc *c, const char *token);

/*
 * Queue a request. Returns 0, and cb(result, resp, data) runs exactly once
 * later from the loop (never from inside this call) unless the call is
 * cancelled or the client closed first; or -EINVAL (bad method, path or
 * content type), -ESHUTDOWN (the client is closing), -ENOMEM, and cb never
 * runs. *out (may be NULL) gets a handle for httpc_cancel(), valid until cb
 * runs.
 */
int httpc_request(struct httpc *c, const struct httpc_request *req, httpc_done_cb cb, void *data,
                  struct httpc_call **out);

/*
 * Start a stream (a watch): on_line for every line of a 2xx body as it
 * arrives, then on_done once when the stream ends, with result 0 for a
 * clean end or -errno (-EMSGSIZE for a line over max_line_bytes, -ETIMEDOUT
 * for silence), and the status. A non-2xx body is not split: it arrives in
 * resp->body (capped at max_line_bytes). A last line without "\n" before a
 * clean end is delivered. It waits for a token from the bucket to start but
 * does not count against max_concurrent. Never retried. Returns as
 * httpc_request().
 */
int httpc_stream(struct httpc *c, const struct httpc_request *req, httpc_line_cb on_line,
                 httpc_done_cb on_done, void *data, struct httpc_call **out);

/* Abandon a call: its callbacks are not called again, from this moment on.
 * Queued, waiting to retry or in flight. NULL is a no-op, and so is a call
 * whose done callback is running. Never after that callback has returned. */
void httpc_cancel(struct httpc_call *call);

/*
 * Cancel every call (no callbacks) and close every handle; cb(data) runs
 * from the loop after the last close callback, then the client is freed.
 * Call once; cb may be NULL. Safe from any callback of this client.
 */
void httpc_close(struct httpc *c, void (*cb)(void *data), void *data);

/* A Retry-After value, delay-seconds or an HTTP-date, in milliseconds from
 * now (a past date is 0). -EINVAL when it is neither. Pure. */
int httpc_parse_retry_after(const char *value, time_t now, uint64_t *out_ms);
