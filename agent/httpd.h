/*
 * The agent's small HTTP/1.1 server for /metrics, /healthz, /readyz and
 * /status, running on the agent's libuv loop. It serves GET and HEAD from
 * handlers registered per exact path; a handler runs synchronously on the
 * loop and fills in a response, which the server frames (Content-Length,
 * Content-Type, Connection) and writes. Connections are kept alive and
 * pipelined requests are answered one at a time, in order. Defences for a
 * port that anything on the node can reach: a capped read buffer (the
 * parser's limits), an idle timeout from accept or from the last request
 * that also ends slowloris clients, and a cap on concurrent connections
 * (connections beyond it are accepted and closed at once, and counted). The
 * server never logs; it reports through return codes and httpd_get_stats().
 * It owns its memory and frees it once every handle it holds has closed. The
 * process must ignore SIGPIPE (main does), as libuv writes with writev().
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "http_parse.h"

#define HTTPD_IDLE_TIMEOUT_MS_DEFAULT 10000
#define HTTPD_MAX_CONNECTIONS_DEFAULT 128

struct httpd;

/* What a handler fills in. The server initialises it to status 0,
 * content_type NULL and an empty body before the call. Leaving status 0 (or
 * setting one outside 200..599) makes the server answer 500. content_type is
 * borrowed and must outlive the handler call (a literal, usually); NULL means
 * "text/plain; charset=utf-8". The body belongs to the server: append to it
 * and do not free it. For HEAD the handler runs as for GET and the server
 * sends only the headers. */
struct httpd_response {
    int status;
    const char *content_type;
    struct buf body;
};

/* req and its slices are borrowed for the duration of the call. */
typedef void (*httpd_handler)(const struct http_request *req, struct httpd_response *resp,
                              void *data);

/*
 * Listen on listen: "HOST:PORT" with an IPv4 literal, "[V6]:PORT" with an
 * IPv6 literal (a scope, "[fe80::1%eth0]:9090", is allowed), or ":PORT" for
 * every IPv4 address; "[::]:PORT" takes IPv6 and, unless the host set
 * bindv6only, IPv4 too. No name lookup. PORT 0 picks a free port (see
 * httpd_port()). The socket is CLOEXEC|NONBLOCK with SO_REUSEADDR. Returns 0
 * and a new server in *out, or -errno: -EINVAL for a malformed address,
 * -EADDRINUSE, -EADDRNOTAVAIL, -EAFNOSUPPORT, -EACCES, -ENOMEM. On failure
 * the caller owns nothing (if libuv refused the bound socket after taking
 * its handle, that handle closes and is freed on the next loop turn).
 */
int httpd_new(uv_loop_t *loop, const char *listen, struct httpd **out);

/* Serve path (exact match on the request's path, query ignored; not
 * percent-decoded) with h(req, resp, data). path is copied; data is
 * borrowed and must outlive the server. Paths without a route get 404.
 * Returns 0, -EINVAL (path not starting with '/'), -EEXIST or -ENOMEM. */
int httpd_route(struct httpd *s, const char *path, httpd_handler h, void *data);

/* The bound port (the one picked when listening on port 0). */
int httpd_port(const struct httpd *s);

struct httpd_stats {
    uint64_t requests;             /* responses begun, error responses included */
    uint64_t errors_4xx;           /* of which had a 4xx status (parse errors, 404s, handlers') */
    uint64_t rejected_connections; /* accepted and closed at once: over the cap, or no memory */
    unsigned open_connections;     /* accepted and not yet closed */
};

void httpd_get_stats(const struct httpd *s, struct httpd_stats *out);

/* Tunables, for the config and for tests. A connection with no complete
 * request for idle_timeout_ms after accept or after its last request (or
 * whose response has not drained within it) is closed without an answer.
 * They apply to connections accepted and requests completed afterwards. */
void httpd_set_idle_timeout_ms(struct httpd *s, uint64_t idle_timeout_ms);
void httpd_set_max_connections(struct httpd *s, unsigned max_connections);

/*
 * Stop listening and close every connection at once, abandoning responses in
 * flight. cb(data) runs from the loop once every handle is closed; then the
 * server is freed, so s must not be used after cb returns. Call it once; cb
 * may be NULL.
 */
void httpd_close(struct httpd *s, void (*cb)(void *data), void *data);
