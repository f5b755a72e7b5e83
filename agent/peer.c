/*
 * The roll call's HTTP client (peer.h). A query owns a TCP handle and a timer;
 * it finishes once (answer, failure or timeout), closes both and frees itself
 * when the second close callback ran.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct peer_query {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    char request[128];
    char reply[PEER_MAX_REPLY];
    size_t len;
    peer_cb cb;
    void *data;
    bool finished;
    bool cancelled;
    int open_handles;
};

int peer_address_parse(const char *addr, struct sockaddr_storage *out) {
    char host[64];
    const char *colon;
    char *end;
    long port;
    size_t hlen;

    if (!addr || !out || !(colon = strrchr(addr, ':')))
        return -EINVAL;
    /* Digits only: no sign, no space, nothing a Host header could carry. */
    for (const char *d = colon + 1; *d; d++)
        if (*d < '0' || *d > '9')
            return -EINVAL;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || end - (colon + 1) > 5 || port <= 0 || port > 65535)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (addr[0] == '[') {
        hlen = (size_t)(colon - addr);
        if (hlen < 3 || addr[hlen - 1] != ']' || hlen - 2 >= sizeof(host))
            return -EINVAL;
        memcpy(host, addr + 1, hlen - 2);
        host[hlen - 2] = '\0';
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) ? -EINVAL : 0;
    }
    hlen = (size_t)(colon - addr);
    if (hlen == 0 || hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) ? -EINVAL : 0;
}

/* The end of the head ("\r\n\r\n") within data[0..len), or NULL. */
static const char *head_end(const char *data, size_t len) {
    for (size_t i = 0; i + 3 < len; i++)
        if (!memcmp(data + i, "\r\n\r\n", 4))
            return data + i + 4;
    return NULL;
}

int peer_reply_parse(const char *data, size_t len, bool complete, struct peer_answer *out) {
    const char *body, *line, *eol, *head_stop;
    long content_length = -1;
    size_t body_len;
    json_t *root, *v, *node;
    int status;

    if (!data || !out)
        return -EBADMSG;
    memset(out, 0, sizeof(*out));
    if (!(body = head_end(data, len)))
        return complete || len >= PEER_MAX_REPLY ? -EBADMSG : -EAGAIN;
    head_stop = body - 4;
    /* Status line: HTTP/1.x 200 ... */
    if (len < 13 || memcmp(data, "HTTP/1.", 7) || (data[7] != '0' && data[7] != '1') ||
        data[8] != ' ')
        return -EBADMSG;
    if (data[9] < '1' || data[9] > '5' || data[10] < '0' || data[10] > '9' || data[11] < '0' ||
        data[11] > '9' || (data[12] != ' ' && data[12] != '\r'))
        return -EBADMSG;
    status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
    /* Headers: only Content-Length matters. */
    for (line = memchr(data, '\n', (size_t)(head_stop - data)); line && line < head_stop;
         line = eol) {
        const char *start = line + 1;
        eol = memchr(start, '\n', (size_t)(body - start));
        if (!eol)
            break;
        if ((size_t)(eol - start) > 15 && !strncasecmp(start, "content-length:", 15)) {
            char num[24];
            size_t n = (size_t)(eol - start) - 15;
            char *end;

            if (n >= sizeof(num))
                return -EBADMSG;
            memcpy(num, start + 15, n);
            num[n] = '\0';
            errno = 0;
            content_length = strtol(num, &end, 10);
            while (*end == ' ' || *end == '\t' || *end == '\r')
                end++;
            if (errno || *end || content_length < 0 || content_length > PEER_MAX_REPLY)
                return -EBADMSG;
        }
    }
    body_len = len - (size_t)(body - data);
    if (content_length >= 0) {
        if (body_len < (size_t)content_length)
            return complete ? -EBADMSG : -EAGAIN;
        body_len = (size_t)content_length;
    } else if (!complete) {
        return -EAGAIN;
    }
    if (status != 200)
        return -EBADMSG;
    if (!(root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, NULL)))
        return -EBADMSG;
    v = json_object_get(root, "apiReachable");
    node = json_object_get(root, "node");
    if (!json_is_object(root) || !json_is_boolean(v)) {
        json_decref(root);
        return -EBADMSG;
    }
    out->answered = true;
    out->api_reachable = json_is_true(v);
    if (json_is_string(node) && json_string_length(node) < sizeof(out->node))
        snprintf(out->node, sizeof(out->node), "%s", json_string_value(node));
    json_decref(root);
    return 0;
}

static void on_close(uv_handle_t *h) {
    struct peer_query *q = h->data;
    if (--q->open_handles == 0)
        free(q);
}

static void finish(struct peer_query *q, const struct peer_answer *a) {
    static const struct peer_answer none;

    if (q->finished)
        return;
    q->finished = true;
    uv_timer_stop(&q->timer);
    if (!q->cancelled)
        q->cb(a ? a : &none, q->data);
    uv_close((uv_handle_t *)&q->tcp, on_close);
    uv_close((uv_handle_t *)&q->timer, on_close);
}

static void on_timeout(uv_timer_t *t) {
    finish(t->data, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct peer_query *q = h->data;
    (void)suggested;
    *buf = uv_buf_init(q->reply + q->len, (unsigned)(sizeof(q->reply) - q->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    struct peer_query *q = s->data;
    struct peer_answer a;
    int r;
    (void)buf;

    if (n > 0)
        q->len += (size_t)n;
    if (n == 0)
        return;
    r = peer_reply_parse(q->reply, q->len, n < 0 || q->len == sizeof(q->reply), &a);
    if (r == -EAGAIN)
        return;
    finish(q, r == 0 ? &a : NULL);
}

static void on_written(uv_write_t *w, int status) {
    struct peer_query *q = w->data;
    if (status < 0 && !q->finished)
        finish(q, NULL);
}

static void on_connect(uv_connect_t *c, int status) {
    struct peer_query *q = c->data;
    uv_buf_t buf = uv_buf_init(q->request, (unsigned)strlen(q->request));

    if (q->finished)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&q->tcp, on_alloc, on_read) < 0 ||
        uv_write(&q->write, (uv_stream_t *)&q->tcp, &buf, 1, on_written) < 0)
        finish(q, NULL);
}

int peer_ask(uv_loop_t *loop, const char *addr, uint64_t timeout_ms, peer_cb cb, void *data,
             struct peer_query **out) {
    struct sockaddr_storage sa;
    struct peer_query *q;
    int r;

    if (!loop || !cb || peer_address_parse(addr, &sa) < 0 || !timeout_ms)
        return -EINVAL;
    if (!(q = calloc(1, sizeof(*q))))
        return -ENOMEM;
    q->cb = cb;
    q->data = data;
    snprintf(q->request, sizeof(q->request),
             "GET /peer HTTP/1.1\r\nHost: %.64s\r\nConnection: close\r\n\r\n", addr);
    if ((r = uv_tcp_init(loop, &q->tcp)) < 0) {
        free(q);
        return r;
    }
    q->open_handles = 1;
    q->tcp.data = q;
    if ((r = uv_timer_init(loop, &q->timer)) < 0) {
        uv_close((uv_handle_t *)&q->tcp, on_close);
        return r;
    }
    q->open_handles = 2;
    q->timer.data = q;
    q->connect.data = q;
    q->write.data = q;
    uv_timer_start(&q->timer, on_timeout, timeout_ms, 0);
    if ((r = uv_tcp_connect(&q->connect, &q->tcp, (const struct sockaddr *)&sa, on_connect)) < 0) {
        q->cancelled = true;
        finish(q, NULL);
        return r;
    }
    if (out)
        *out = q;
    return 0;
}

void peer_cancel(struct peer_query *q) {
    if (!q || q->finished)
        return;
    q->cancelled = true;
    finish(q, NULL);
}
