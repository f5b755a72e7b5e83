/*
 * The HTTP server. One struct httpd owns the listening handle, the routes
 * and a list of struct conn, one per accepted connection; each conn embeds
 * its TCP handle, its timer, its write and shutdown requests and its buffers,
 * and is freed only when both of its handles have closed. The server itself
 * is freed once the listener and every conn are gone, which is how
 * httpd_close() can be called with writes in flight.
 *
 * A connection alternates between reading and answering. While reading, it
 * parses only when a LF arrives or the buffer is full (the parser's contract
 * allows that), which keeps a byte-at-a-time client from costing quadratic
 * work. A complete head stops reading, runs the handler and writes the
 * response; when the write completes, bytes already buffered (pipelined
 * requests) are parsed before reading resumes. After a response that closes
 * the connection the server shuts down its side and drains what the client
 * still sends until EOF or a short linger, so the client reads the answer
 * instead of a reset caused by its unread request bytes.
 */
#include "httpd.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

/* How long a closing connection may keep sending before we close anyway. */
#define LINGER_MS      2000
#define READ_CHUNK     4096
#define LISTEN_BACKLOG 511

struct route {
    char *path;
    size_t path_len;
    httpd_handler handler;
    void *data;
};

struct conn {
    struct httpd *server;
    struct conn *prev, *next; /* in server->conns while open */
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle timeout, then linger */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    struct buf in;   /* received, not yet consumed; capped at HTTP_MAX_HEAD_BYTES */
    struct buf head; /* status line and fields of the response being written */
    struct buf body; /* its body, moved from the handler's response */
    unsigned open_handles;
    bool reading;
    bool writing;
    bool close_after_write;
    bool lingering;
    bool closing;
};

/* A connection over the cap: accepted only to be closed. */
struct reject {
    struct httpd *server;
    uv_tcp_t tcp;
};

struct httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    int port;
    struct route *routes;
    size_t n_routes;
    struct conn *conns;
    unsigned closing_rejects;
    uv_tcp_t spare; /* for rejecting when even a struct reject cannot be allocated */
    bool spare_busy;
    bool accept_pending;
    uint64_t idle_timeout_ms;
    unsigned max_connections;
    struct httpd_stats stats;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void conn_process(struct conn *c);

/* The last handle is gone: tell the owner, then free everything. */
static void server_maybe_free(struct httpd *s) {
    if (!s->closing || s->listener_open || s->stats.open_connections || s->closing_rejects ||
        s->spare_busy)
        return;
    if (s->close_cb)
        s->close_cb(s->close_data);
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
}

static void on_listener_closed(uv_handle_t *h) {
    struct httpd *s = container_of((uv_tcp_t *)h, struct httpd, listener);
    s->listener_open = false;
    server_maybe_free(s);
}

static void on_reject_closed(uv_handle_t *h) {
    struct reject *rj = container_of((uv_tcp_t *)h, struct reject, tcp);
    struct httpd *s = rj->server;
    free(rj);
    s->closing_rejects--;
    server_maybe_free(s);
}

static void conn_handle_closed(struct conn *c) {
    if (--c->open_handles)
        return;
    struct httpd *s = c->server;
    buf_free(&c->in);
    buf_free(&c->head);
    buf_free(&c->body);
    free(c);
    s->stats.open_connections--;
    server_maybe_free(s);
}

static void on_tcp_closed(uv_handle_t *h) {
    conn_handle_closed(container_of((uv_tcp_t *)h, struct conn, tcp));
}

static void on_timer_closed(uv_handle_t *h) {
    conn_handle_closed(container_of((uv_timer_t *)h, struct conn, timer));
}

/* Close at once. A write or shutdown in flight gets its callback with
 * UV_ECANCELED before the handles' close callbacks; the conn outlives it. */
static void conn_close(struct conn *c) {
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->server->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_timeout(uv_timer_t *t) {
    conn_close(container_of(t, struct conn, timer));
}

static void conn_arm_timer(struct conn *c, uint64_t ms) {
    if (uv_timer_start(&c->timer, on_timeout, ms, 0) < 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
    struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);
    /* While lingering, read into the start of the (emptied) buffer and drop it. */
    size_t room = c->in.max_bytes - c->in.len;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (room == 0 || buf_reserve(&c->in, room) < 0) {
        *out = uv_buf_init(NULL, 0); /* the read callback gets UV_ENOBUFS */
        return;
    }
    /* buf_reserve may have given more; keep the byte for the NUL. */
    room = c->in.cap - c->in.len - 1;
    if (room > c->in.max_bytes - c->in.len)
        room = c->in.max_bytes - c->in.len;
    *out = uv_buf_init(c->in.data + c->in.len, (unsigned)room);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b) {
    struct conn *c = container_of((uv_tcp_t *)stream, struct conn, tcp);
    if (nread == 0)
        return;
    if (nread < 0) { /* EOF, reset, or no buffer */
        conn_close(c);
        return;
    }
    if (c->lingering)
        return;
    size_t old = c->in.len;
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    if (memchr(c->in.data + old, '\n', (size_t)nread) || c->in.len >= c->in.max_bytes)
        conn_process(c);
}

static void conn_read(struct conn *c) {
    if (c->reading)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void conn_stop_reading(struct conn *c) {
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    struct conn *c = container_of(req, struct conn, shutdown_req);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_read(c); /* drain until EOF, which closes */
}

/* Half-close after the last response and drain the client's leftovers. */
static void conn_linger(struct conn *c) {
    c->lingering = true;
    buf_reset(&c->in);
    uint64_t ms = c->server->idle_timeout_ms < LINGER_MS ? c->server->idle_timeout_ms : LINGER_MS;
    conn_arm_timer(c, ms);
    if (c->closing)
        return;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status) {
    struct conn *c = container_of(req, struct conn, write_req);
    c->writing = false;
    buf_reset(&c->head);
    buf_free(&c->body);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    conn_arm_timer(c, c->server->idle_timeout_ms);
    conn_process(c);
}

static bool valid_content_type(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Frame and write a response; takes the body. The status is valid here. */
static void conn_respond(struct conn *c, int status, const char *content_type, struct buf *body,
                         bool head_only, bool keep_alive, unsigned version_minor) {
    struct httpd *s = c->server;
    s->stats.requests++;
    if (status >= 400 && status < 500)
        s->stats.errors_4xx++;
    /* 204 and 304 carry no body; 204 not even a Content-Length. */
    bool no_body = status == 204 || status == 304;
    c->close_after_write = !keep_alive || s->closing;

    buf_reset(&c->head);
    /* RFC 9110 6.6.1: a server with a clock sends Date (IMF-fixdate, GMT).
     * strftime's %a/%b are English: the agent never calls setlocale(). */
    char date[40];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int r = buf_printf(&c->head, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n", status,
                       http_status_reason(status), date,
                       content_type ? content_type : "text/plain; charset=utf-8");
    if (r == 0 && status != 204)
        r = buf_printf(&c->head, "Content-Length: %zu\r\n", no_body ? 0 : body->len);
    if (r == 0 && status == 405)
        r = buf_puts(&c->head, "Allow: GET, HEAD\r\n");
    if (r == 0 && c->close_after_write)
        r = buf_puts(&c->head, "Connection: close\r\n");
    else if (r == 0 && version_minor == 0)
        r = buf_puts(&c->head, "Connection: keep-alive\r\n");
    if (r == 0)
        r = buf_puts(&c->head, "\r\n");
    if (r < 0) {
        buf_free(body);
        conn_close(c);
        return;
    }

    buf_free(&c->body);
    if (head_only || no_body)
        buf_free(body);
    c->body = *body; /* moved */
    buf_init(body, 0);

    uv_buf_t bufs[2] = {uv_buf_init(c->head.data, (unsigned)c->head.len)};
    unsigned n = 1;
    if (c->body.len)
        bufs[n++] = uv_buf_init(c->body.data, (unsigned)c->body.len);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_write) < 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
}

static void conn_respond_text(struct conn *c, int status, const char *text, bool head_only,
                              bool keep_alive, unsigned version_minor) {
    struct buf body; /* built for HEAD too: its length is the Content-Length */
    buf_init(&body, 0);
    if (buf_puts(&body, text) < 0) {
        conn_close(c);
        return;
    }
    conn_respond(c, status, NULL, &body, head_only, keep_alive, version_minor);
}

static const struct route *find_route(const struct httpd *s, const char *path, size_t len) {
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].path_len == len && memcmp(s->routes[i].path, path, len) == 0)
            return &s->routes[i];
    return NULL;
}

static void conn_serve(struct conn *c, const struct http_request *req) {
    struct httpd *s = c->server;
    bool head_only = req->method == HTTP_METHOD_HEAD;
    const struct route *route = find_route(s, req->path, req->path_len);
    if (!route) {
        conn_respond_text(c, 404, "not found\n", head_only, req->keep_alive, req->version_minor);
        return;
    }
    struct httpd_response resp = {0};
    buf_init(&resp.body, 0);
    route->handler(req, &resp, route->data);
    if (c->closing) { /* the handler closed the server */
        buf_free(&resp.body);
        return;
    }
    if (resp.status < 200 || resp.status > 599 ||
        (resp.content_type && !valid_content_type(resp.content_type))) {
        buf_free(&resp.body);
        conn_respond_text(c, 500, "internal server error\n", head_only, req->keep_alive,
                          req->version_minor);
        return;
    }
    conn_respond(c, resp.status, resp.content_type, &resp.body, head_only, req->keep_alive,
                 req->version_minor);
}

static const char *error_text(int status) {
    switch (status) {
    case 405:
        return "method not allowed: only GET and HEAD\n";
    case 413:
        return "request bodies are not accepted\n";
    case 414:
        return "request target too long\n";
    case 431:
        return "request header fields too large\n";
    case 505:
        return "HTTP version not supported: use HTTP/1.1 or HTTP/1.0\n";
    default:
        return "bad request\n";
    }
}

/* Parse what is buffered: answer one request, or wait for more bytes. */
static void conn_process(struct conn *c) {
    if (c->closing || c->writing || c->lingering)
        return;
    struct http_request req;
    size_t consumed = 0;
    int r = HTTP_PARSE_NEED_MORE;
    if (c->in.len)
        r = http_parse_request(c->in.data, c->in.len, &req, &consumed);
    if (r == HTTP_PARSE_NEED_MORE) {
        if (c->in.len < c->in.max_bytes) {
            conn_read(c);
            return;
        }
        r = 431; /* the parser promises this cannot happen */
    }
    conn_stop_reading(c);
    /* The request (or the error) gets a whole timeout for its response. */
    conn_arm_timer(c, c->server->idle_timeout_ms);
    if (c->closing)
        return;
    if (r == HTTP_PARSE_DONE) {
        conn_serve(c, &req);
        buf_consume(&c->in, consumed); /* after the handler: req borrowed from it */
    } else {
        buf_reset(&c->in);
        conn_respond_text(c, r, error_text(r), false, false, 1);
    }
}

static void on_spare_closed(uv_handle_t *h);

/* Accept into the server's spare handle and close it. */
static void reject_into_spare(struct httpd *s) {
    s->spare_busy = true;
    uv_tcp_init(s->loop, &s->spare);
    uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->spare);
    uv_close((uv_handle_t *)&s->spare, on_spare_closed);
}

static void on_spare_closed(uv_handle_t *h) {
    struct httpd *s = container_of((uv_tcp_t *)h, struct httpd, spare);
    s->spare_busy = false;
    if (s->accept_pending && !s->closing) {
        s->accept_pending = false;
        reject_into_spare(s);
        return;
    }
    server_maybe_free(s);
}

/* Accept only to close. libuv stops watching the listener until a pending
 * connection is accepted, so one must be accepted even without memory: the
 * spare handle embedded in the server covers that, late if it is busy. */
static void reject(struct httpd *s) {
    s->stats.rejected_connections++;
    struct reject *rj = calloc(1, sizeof(*rj));
    if (!rj) {
        if (s->spare_busy)
            s->accept_pending = true;
        else
            reject_into_spare(s);
        return;
    }
    rj->server = s;
    uv_tcp_init(s->loop, &rj->tcp);
    uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&rj->tcp);
    s->closing_rejects++;
    uv_close((uv_handle_t *)&rj->tcp, on_reject_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
    struct httpd *s = container_of((uv_tcp_t *)listener, struct httpd, listener);
    if (status < 0 || s->closing)
        return;
    if (s->stats.open_connections >= s->max_connections) {
        reject(s);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        reject(s);
        return;
    }
    c->server = s;
    buf_init(&c->in, HTTP_MAX_HEAD_BYTES);
    buf_init(&c->head, 0);
    buf_init(&c->body, 0);
    /* uv_tcp_init and uv_timer_init cannot fail for a valid loop. */
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->open_handles = 2;
    s->stats.open_connections++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    conn_arm_timer(c, s->idle_timeout_ms);
    conn_read(c);
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN + 1 + 64];
    const char *host_start, *host_end, *port;
    bool v6 = listen[0] == '[';
    if (v6) {
        host_start = listen + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            return -EINVAL;
        port = host_end + 2;
    } else {
        host_start = listen;
        host_end = strchr(listen, ':');
        if (!host_end || strchr(host_end + 1, ':'))
            return -EINVAL;
        port = host_end + 1;
    }
    size_t host_len = (size_t)(host_end - host_start);
    if (host_len >= sizeof(host) || (v6 && host_len == 0))
        return -EINVAL;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    if (!host_len)
        strcpy(host, "0.0.0.0");

    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
        return -EINVAL;
    long p = strtol(port, NULL, 10);
    if (p > 65535)
        return -EINVAL;

    memset(ss, 0, sizeof(*ss));
    if (v6)
        return uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) < 0 ? -EINVAL : 0;
    return uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) < 0 ? -EINVAL : 0;
}

/* Bind and listen here, not through libuv, so that EADDRINUSE and friends
 * come back now rather than from a later call, and no handle exists yet. */
static int open_listener(const struct sockaddr_storage *ss, int *out_fd, int *out_port) {
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int r, on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        r = -errno;
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
        r = -errno;
        goto fail;
    }
    *out_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    *out_fd = fd;
    return 0;
fail:
    close(fd);
    return r;
}

int httpd_new(uv_loop_t *loop, const char *listen, struct httpd **out) {
    struct sockaddr_storage ss;
    int fd = -1, port = 0;
    int r = parse_listen(listen, &ss);
    if (r < 0)
        return r;
    struct httpd *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    r = open_listener(&ss, &fd, &port);
    if (r < 0) {
        free(s);
        return r;
    }
    s->loop = loop;
    s->port = port;
    s->idle_timeout_ms = HTTPD_IDLE_TIMEOUT_MS_DEFAULT;
    s->max_connections = HTTPD_MAX_CONNECTIONS_DEFAULT;
    r = uv_tcp_init(loop, &s->listener);
    if (r < 0) {
        close(fd);
        free(s);
        return r;
    }
    s->listener_open = true;
    r = uv_tcp_open(&s->listener, fd);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (r < 0) {
        /* The handle exists now (and may own fd): free from its close callback. */
        if (uv_fileno((uv_handle_t *)&s->listener, &(uv_os_fd_t){0}) < 0)
            close(fd);
        httpd_close(s, NULL, NULL);
        return r;
    }
    *out = s;
    return 0;
}

int httpd_route(struct httpd *s, const char *path, httpd_handler h, void *data) {
    if (!path || path[0] != '/' || !h)
        return -EINVAL;
    size_t len = strlen(path);
    if (find_route(s, path, len))
        return -EEXIST;
    struct route *routes = realloc(s->routes, (s->n_routes + 1) * sizeof(*routes));
    if (!routes)
        return -ENOMEM;
    s->routes = routes;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    routes[s->n_routes++] = (struct route){copy, len, h, data};
    return 0;
}

int httpd_port(const struct httpd *s) {
    return s->port;
}

void httpd_get_stats(const struct httpd *s, struct httpd_stats *out) {
    *out = s->stats;
}

void httpd_set_idle_timeout_ms(struct httpd *s, uint64_t idle_timeout_ms) {
    s->idle_timeout_ms = idle_timeout_ms;
}

void httpd_set_max_connections(struct httpd *s, unsigned max_connections) {
    s->max_connections = max_connections;
}

void httpd_close(struct httpd *s, void (*cb)(void *data), void *data) {
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_data = data;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    while (s->conns)
        conn_close(s->conns);
}
