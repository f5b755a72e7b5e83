/*
 * The tds probe on libuv. Each check gets its own connection object: it
 * resolves the host when it is a name, connects, writes the PRELOGIN packet
 * from tds_codec, feeds what comes back into a tds_reader and turns the end
 * of that story into one probe result. A check that the runner abandons
 * (timeout, close) is detached at once — it will never report — but its
 * socket closes asynchronously and its resolver request may still be in the
 * thread pool, so the connection frees itself when the last of those is
 * done, while the probe may already run its next check. The probe counts its
 * live connections and tells the runner it is closed only when none is left,
 * so no callback of a check ever runs after probe_close() has finished.
 */
#include "tds.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tds_codec.h"

/* The client VERSION a PRELOGIN announces is informational for the server;
 * edgewarden announces its own release (0.1). */
static const struct tds_version client_version = {.major = 0, .minor = 1};

struct tds_probe {
    struct probe probe;
    char *host; /* owned */
    uint16_t port;
    bool have_addr; /* host is a literal, parsed once into addr */
    struct sockaddr_storage addr;
    struct tds_conn *conn; /* the check in flight, NULL when none */
    unsigned live_conns;   /* connections not yet freed, in flight or closing */
    bool closing;
};

struct tds_conn {
    struct tds_probe *owner; /* outlives the connection: see live_conns */
    bool active;             /* still the check in flight; false once it ended */
    bool resolving;          /* resolve is in the thread pool */
    bool tcp_open;           /* tcp is initialised and not yet closed */
    uv_getaddrinfo_t resolve;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uint64_t started_ns;
    size_t received_bytes;
    uint8_t request[TDS_PRELOGIN_MAX_BYTES];
    struct tds_reader reader;
    char read_buf[4096];
};

static void conn_maybe_free(struct tds_conn *c) {
    if (c->active || c->resolving || c->tcp_open)
        return;
    struct tds_probe *tp = c->owner;
    tds_reader_free(&c->reader);
    free(c);
    tp->live_conns--;
    if (tp->closing && tp->live_conns == 0)
        probe_closed(&tp->probe);
}

static void on_tcp_closed(uv_handle_t *h) {
    struct tds_conn *c = container_of((uv_tcp_t *)h, struct tds_conn, tcp);
    c->tcp_open = false;
    conn_maybe_free(c);
}

/* End the connection's part in the probe: from here on none of its
 * callbacks reports anything, and it frees itself once idle. */
static void conn_detach(struct tds_conn *c) {
    c->active = false;
    if (c->owner->conn == c)
        c->owner->conn = NULL;
    /* Fails when the lookup already runs; on_resolved then comes later. */
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolve);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    conn_maybe_free(c);
}

/* Report r as the check's result. The connection is detached first, so the
 * result callback may close the probe or start the next check. */
static void finish(struct tds_conn *c, struct probe_result *r) {
    struct tds_probe *tp = c->owner;
    r->latency_us = (uv_hrtime() - c->started_ns) / 1000;
    if (r->latency_us == 0)
        r->latency_us = 1; /* 0 would ask the runner to measure again */
    conn_detach(c);
    probe_complete(&tp->probe, r);
}

__attribute__((format(printf, 4, 5))) static void
finish_with(struct tds_conn *c, enum probe_outcome outcome, int error, const char *fmt, ...) {
    struct probe_result r;
    probe_result_init(&r);
    r.outcome = outcome;
    r.error = error;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
    va_end(ap);
    finish(c, &r);
}

/* A socket error as an outcome. libuv's codes are -errno on Unix. */
static enum probe_outcome outcome_of_error(int err) {
    switch (err) {
    case UV_ECONNREFUSED:
    /* Nothing answers at the address: as good as refused for health, with
     * the errno kept so an operator can tell them apart. */
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_EADDRNOTAVAIL:
    case UV_EHOSTDOWN:
        return PROBE_REFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
        return PROBE_RESET;
    case UV_ETIMEDOUT: /* the kernel gave up first (SYN or keepalive) */
        return PROBE_TIMEOUT;
    default:
        return PROBE_ERROR;
    }
}

static void finish_errno(struct tds_conn *c, const char *what, int err) {
    finish_with(c, outcome_of_error(err), err, "%s %s port %u: %s", what, c->owner->host,
                c->owner->port, uv_strerror(err));
}

static void finish_reply(struct tds_conn *c) {
    struct tds_prelogin_reply reply;
    const char *why = NULL;
    int r = tds_prelogin_parse(tds_reader_payload(&c->reader), tds_reader_payload_len(&c->reader),
                               &reply, &why);
    if (r < 0) {
        finish_with(c, PROBE_PROTOCOL_ERROR, r, "bad PRELOGIN reply: %s", why);
        return;
    }
    struct probe_result res;
    probe_result_init(&res);
    res.outcome = PROBE_OK;
    res.encryption = reply.encryption;
    /* Always fits: 255.255.65535.65535 is 19 characters. */
    (void)tds_version_format(&reply.version, res.server_version, sizeof(res.server_version));
    snprintf(res.detail, sizeof(res.detail), "server %s, encryption %s", res.server_version,
             tds_encryption_name(reply.encryption));
    finish(c, &res);
}

static void on_alloc(uv_handle_t *h, size_t suggested_bytes, uv_buf_t *buf) {
    struct tds_conn *c = container_of((uv_tcp_t *)h, struct tds_conn, tcp);
    *buf = uv_buf_init(c->read_buf, sizeof(c->read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct tds_conn *c = container_of((uv_tcp_t *)s, struct tds_conn, tcp);
    if (!c->active || nread == 0)
        return;
    if (nread == UV_EOF) {
        finish_with(c, PROBE_RESET, -ECONNRESET,
                    "connection closed by the server after %zu bytes, before a full reply",
                    c->received_bytes);
        return;
    }
    if (nread < 0) {
        finish_errno(c, "read from", (int)nread);
        return;
    }
    c->received_bytes += (size_t)nread;
    int st = tds_reader_feed(&c->reader, buf->base, (size_t)nread, NULL);
    switch (st) {
    case TDS_READ_MORE:
        return;
    case TDS_READ_DONE:
        finish_reply(c);
        return;
    case TDS_READ_TLS:
        finish_with(c, PROBE_TLS_REQUIRED, 0, "server answered with TLS (TDS 8 strict encryption)");
        return;
    default:
        finish_with(c, PROBE_PROTOCOL_ERROR, st, "bad reply: %s", c->reader.error);
        return;
    }
}

static void on_written(uv_write_t *req, int status) {
    struct tds_conn *c = container_of(req, struct tds_conn, write);
    if (!c->active || status == 0)
        return;
    finish_errno(c, "write to", status);
}

static void on_connected(uv_connect_t *req, int status) {
    struct tds_conn *c = container_of(req, struct tds_conn, connect);
    if (!c->active)
        return;
    if (status < 0) {
        finish_errno(c, "connect to", status);
        return;
    }

    struct tds_prelogin_request pre = {
        .version = client_version,
        .encryption = TDS_ENCRYPT_NOT_SUP, /* the probe never starts TLS */
        .send_threadid = true,
        .threadid = (uint32_t)uv_os_getpid(), /* ties the session to the agent in a trace */
        .send_mars = true,
    };
    int n = tds_prelogin_build(&pre, c->request, sizeof(c->request));
    if (n < 0) {
        finish_with(c, PROBE_ERROR, n, "cannot build PRELOGIN");
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->request, (unsigned)n);
    int r = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (r < 0) {
        finish_errno(c, "write to", r);
        return;
    }
    /* Read at once: a server that resets or answers early is seen whether
     * or not the write has been confirmed. */
    r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0)
        finish_errno(c, "read from", r);
}

/* libuv opens the socket SOCK_NONBLOCK|SOCK_CLOEXEC. */
static void start_connect(struct tds_conn *c, const struct sockaddr *addr) {
    int r = uv_tcp_init_ex(c->owner->probe.loop, &c->tcp, addr->sa_family);
    if (r < 0) {
        finish_with(c, PROBE_ERROR, r, "cannot create socket: %s", uv_strerror(r));
        return;
    }
    c->tcp_open = true;
    c->tcp.data = c;
    /* One small write and a wait: Nagle could only add latency. Failing to
     * set it changes nothing a check depends on. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    r = uv_tcp_connect(&c->connect, &c->tcp, addr, on_connected);
    if (r < 0)
        finish_errno(c, "connect to", r);
}

/* getaddrinfo's codes are not errnos; keep the result's error an -errno. */
static int errno_of_resolve_error(int err) {
    switch (err) {
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
        return -ENXIO;
    case UV_EAI_AGAIN:
        return -EAGAIN;
    case UV_EAI_MEMORY:
        return -ENOMEM;
    default:
        /* Other UV_EAI_* codes sit at -3000..-3099; the rest are errnos. */
        return err <= -3000 && err > -3100 ? -EIO : err;
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    struct tds_conn *c = container_of(req, struct tds_conn, resolve);
    c->resolving = false;
    if (!c->active) {
        uv_freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    const struct addrinfo *ai = res;
    while (ai && ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
        ai = ai->ai_next;
    if (status < 0 || !ai) {
        int err = status < 0 ? status : UV_EAI_NODATA;
        finish_with(c, PROBE_ERROR, errno_of_resolve_error(err), "cannot resolve %s: %s",
                    c->owner->host, uv_strerror(err));
        uv_freeaddrinfo(res);
        return;
    }
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(res);
    if (addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&addr)->sin_port = htons(c->owner->port);
    else
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons(c->owner->port);
    start_connect(c, (const struct sockaddr *)&addr);
}

static int tds_check(struct probe *p) {
    struct tds_probe *tp = container_of(p, struct tds_probe, probe);
    if (tp->conn) /* the runner cancels before a new check; never run two */
        conn_detach(tp->conn);
    struct tds_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->owner = tp;
    c->active = true;
    c->started_ns = uv_hrtime();
    tds_reader_init(&c->reader);

    if (!tp->have_addr) {
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
        int r = uv_getaddrinfo(p->loop, &c->resolve, on_resolved, tp->host, NULL, &hints);
        if (r < 0) {
            free(c); /* nothing started: the runner reports the error */
            return r;
        }
        c->resolving = true;
    }
    tp->conn = c;
    tp->live_conns++;
    if (tp->have_addr)
        start_connect(c, (const struct sockaddr *)&tp->addr); /* may finish at once */
    return 0;
}

static void tds_cancel(struct probe *p) {
    struct tds_probe *tp = container_of(p, struct tds_probe, probe);
    if (tp->conn)
        conn_detach(tp->conn);
}

static void tds_close(struct probe *p) {
    struct tds_probe *tp = container_of(p, struct tds_probe, probe);
    tp->closing = true;
    if (tp->conn)
        conn_detach(tp->conn);
    if (tp->live_conns == 0)
        probe_closed(p);
}

static void tds_free(struct probe *p) {
    struct tds_probe *tp = container_of(p, struct tds_probe, probe);
    free(tp->host);
    free(tp);
}

static const struct probe_ops tds_ops = {
    .kind = "tds",
    .check = tds_check,
    .cancel = tds_cancel,
    .close = tds_close,
    .free = tds_free,
};

struct probe *tds_probe_new(uv_loop_t *loop, const char *name, const char *host, uint16_t port,
                            const struct probe_timing *timing) {
    if (!host)
        return NULL;
    struct tds_probe *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return NULL;
    tp->host = strdup(host);
    if (!tp->host)
        goto fail;
    tp->port = port;
    struct sockaddr_in *sin = (struct sockaddr_in *)&tp->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&tp->addr;
    if (uv_ip4_addr(host, port, sin) == 0 || uv_ip6_addr(host, port, sin6) == 0)
        tp->have_addr = true;
    /* Last: once the runner's timers exist, only probe_close may undo it. Its
     * only failure is copying the name, before any timer. */
    if (probe_init(&tp->probe, loop, &tds_ops, name, timing) < 0)
        goto fail;
    return &tp->probe;
fail:
    free(tp->host);
    free(tp);
    return NULL;
}

static int parse_port(const char *s, uint16_t *port) {
    unsigned long v = 0;
    if (*s == '\0')
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -EINVAL;
    }
    if (v == 0)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

static bool is_ipv6_literal(const char *s) {
    struct sockaddr_in6 sa;
    return uv_ip6_addr(s, 0, &sa) == 0;
}

int tds_parse_hostport(const char *s, uint16_t default_port, char **host_out, uint16_t *port_out) {
    if (!s || *s == '\0')
        return -EINVAL;

    const char *host = s;
    size_t host_len;
    uint16_t port = default_port;
    const char *last_colon = strrchr(s, ':');

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return -EINVAL;
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close[1] == ':') {
            if (parse_port(close + 2, &port) < 0)
                return -EINVAL;
        } else if (close[1] != '\0') {
            return -EINVAL;
        }
    } else if (!last_colon) {
        host_len = strlen(s);
    } else if (strchr(s, ':') != last_colon) {
        /* Several colons and no brackets: a bare IPv6 literal, no port. */
        if (!is_ipv6_literal(s))
            return -EINVAL;
        host_len = strlen(s);
    } else {
        host_len = (size_t)(last_colon - s);
        if (parse_port(last_colon + 1, &port) < 0)
            return -EINVAL;
    }
    if (host_len == 0 || host_len > 255) /* the longest DNS name */
        return -EINVAL;
    for (size_t i = 0; i < host_len; i++)
        if (strchr(" \t\r\n/[]@", host[i]))
            return -EINVAL;

    char *copy = strndup(host, host_len);
    if (!copy)
        return -ENOMEM;
    if (s[0] == '[' && !is_ipv6_literal(copy)) {
        free(copy);
        return -EINVAL;
    }
    *host_out = copy;
    *port_out = port;
    return 0;
}
