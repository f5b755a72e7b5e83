/*
 * The request-head parser. It scans left to right once and decides every
 * error at the first byte that proves it, using only the bytes before it, so
 * parsing a prefix gives either NEED_MORE or the same verdict as parsing the
 * whole request: feeding a byte at a time equals parsing in one go. Field
 * semantics (Host, Connection, Content-Length, Transfer-Encoding, Accept) are
 * checked as each field line completes. Nothing is copied; the request holds
 * slices of the input. Decisions a lenient server would make differently are
 * written down in http_parse.h.
 */
#include "http_parse.h"

#include <string.h>

/* Internal verdicts while scanning; the public ones are status codes. */
#define NEED_MORE HTTP_PARSE_NEED_MORE

/* RFC 9110 tchar: the characters of a token (method, field name). */
static bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte allowed inside a field value: HTAB, SP, VCHAR, obs-text. */
static bool is_field_char(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(unsigned char c) {
    return c == ' ' || c == '\t';
}

static unsigned char ascii_lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of a slice with a lower-case literal. */
static bool token_is(const unsigned char *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

/* What the field lines told us so far. */
struct fields {
    unsigned hosts;
    unsigned content_lengths;
    bool conn_close;
    bool conn_keep_alive;
    const unsigned char *accept;
    size_t accept_len;
};

/* Connection is a comma-separated list of options; only two matter here. */
static void scan_connection(struct fields *f, const unsigned char *v, size_t n) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (token_is(v + start, end - start, "close"))
            f->conn_close = true;
        else if (token_is(v + start, end - start, "keep-alive"))
            f->conn_keep_alive = true;
    }
}

/* One complete field line; returns 0 or the status to answer with. */
static int on_field(struct fields *f, const unsigned char *name, size_t name_len,
                    const unsigned char *value, size_t value_len) {
    if (token_is(name, name_len, "host")) {
        if (++f->hosts > 1)
            return 400;
    } else if (token_is(name, name_len, "connection")) {
        scan_connection(f, value, value_len);
    } else if (token_is(name, name_len, "accept")) {
        /* Several Accept lines would have to be joined with commas, which
         * needs a copy; the first one is enough to choose a format. */
        if (!f->accept) {
            f->accept = value;
            f->accept_len = value_len;
        }
    } else if (token_is(name, name_len, "transfer-encoding")) {
        /* A body framed by a transfer coding: never valid here, and the
         * classic request-smuggling vector, so refuse instead of guessing. */
        return 400;
    } else if (token_is(name, name_len, "content-length")) {
        if (++f->content_lengths > 1 || value_len == 0)
            return 400;
        bool zero = true;
        for (size_t i = 0; i < value_len; i++) {
            if (value[i] < '0' || value[i] > '9')
                return 400;
            if (value[i] != '0')
                zero = false;
        }
        if (!zero)
            return 413;
    }
    return 0;
}

/* Byte i of the input must be c: 1 when it is, 0 when it has not arrived,
 * -1 when it is something else. */
static int expect(const unsigned char *p, size_t len, size_t i, unsigned char c) {
    if (i >= len)
        return 0;
    return p[i] == c ? 1 : -1;
}

/* Scan "HTTP/d.d" CRLF starting at *i; on success *i is past the LF. */
static int parse_version(const unsigned char *p, size_t len, size_t *i, unsigned *minor) {
    static const char proto[] = "HTTP/";
    size_t k = *i;
    for (size_t j = 0; j < sizeof(proto) - 1; j++, k++) {
        int e = expect(p, len, k, (unsigned char)proto[j]);
        if (e <= 0)
            return e == 0 ? NEED_MORE : 400;
    }
    unsigned char digits[2];
    for (size_t j = 0; j < 2; j++) {
        if (j == 1) {
            int e = expect(p, len, k++, '.');
            if (e <= 0)
                return e == 0 ? NEED_MORE : 400;
        }
        if (k >= len)
            return NEED_MORE;
        if (p[k] < '0' || p[k] > '9')
            return 400;
        digits[j] = p[k++];
    }
    for (const char *end = "\r\n"; *end; end++, k++) {
        int e = expect(p, len, k, (unsigned char)*end);
        if (e <= 0)
            return e == 0 ? NEED_MORE : 400;
    }
    if (digits[0] != '1' || digits[1] > '1')
        return 505;
    *minor = (unsigned)(digits[1] - '0');
    *i = k;
    return HTTP_PARSE_DONE;
}

int http_parse_request(const char *data, size_t len, struct http_request *req, size_t *consumed) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;

    /* method SP */
    while (i < len && p[i] != ' ') {
        if (!is_tchar(p[i]))
            return 400;
        if (++i > HTTP_MAX_METHOD_BYTES)
            return 400;
    }
    if (i == len)
        return NEED_MORE;
    if (i == 0)
        return 400;
    enum http_method method;
    if (i == 3 && memcmp(p, "GET", 3) == 0)
        method = HTTP_METHOD_GET;
    else if (i == 4 && memcmp(p, "HEAD", 4) == 0)
        method = HTTP_METHOD_HEAD;
    else
        return 405;
    i++;

    /* request-target SP, origin-form only: absolute-path [ "?" query ] */
    size_t target = i, query = 0;
    if (i == len)
        return NEED_MORE;
    if (p[i] != '/')
        return 400;
    while (i < len && p[i] != ' ') {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return 400;
        if (i - target >= HTTP_MAX_TARGET_BYTES)
            return 414;
        if (p[i] == '?' && !query)
            query = i;
        i++;
    }
    if (i == len)
        return NEED_MORE;
    size_t target_end = i++;

    unsigned minor = 0;
    int r = parse_version(p, len, &i, &minor);
    if (r != HTTP_PARSE_DONE)
        return r;

    /* Field lines, within a window of HTTP_MAX_HEADER_BYTES: a head that
     * does not end inside it is 431 however it would have continued. */
    size_t section = i;
    size_t end = len - section > HTTP_MAX_HEADER_BYTES ? section + HTTP_MAX_HEADER_BYTES : len;
    int incomplete = len - section >= HTTP_MAX_HEADER_BYTES ? 431 : NEED_MORE;
    struct fields f = {0};
    unsigned n_fields = 0;
    for (;;) {
        if (i == end)
            return incomplete;
        if (p[i] == '\r') {
            if (i + 1 == end)
                return incomplete;
            if (p[i + 1] != '\n')
                return 400;
            i += 2;
            break;
        }
        /* A bare LF, or whitespace opening a line (obs-fold, or space
         * between the start line and the first field). */
        if (p[i] == '\n' || is_ows(p[i]))
            return 400;
        if (++n_fields > HTTP_MAX_HEADER_FIELDS)
            return 431;

        size_t name = i;
        while (i < end && p[i] != ':') {
            if (!is_tchar(p[i]))
                return 400;
            i++;
        }
        if (i == end)
            return incomplete;
        if (i == name)
            return 400;
        size_t name_len = i - name;
        i++;
        while (i < end && is_ows(p[i]))
            i++;
        size_t value = i;
        while (i < end && p[i] != '\r') {
            if (!is_field_char(p[i]))
                return 400;
            i++;
        }
        if (i == end || i + 1 == end)
            return incomplete;
        if (p[i + 1] != '\n')
            return 400;
        size_t value_end = i;
        while (value_end > value && is_ows(p[value_end - 1]))
            value_end--;
        i += 2;
        r = on_field(&f, p + name, name_len, p + value, value_end - value);
        if (r)
            return r;
    }

    if (minor == 1 && f.hosts == 0)
        return 400;

    *req = (struct http_request){
        .method = method,
        .version_minor = minor,
        .path = data + target,
        .path_len = (query ? query : target_end) - target,
        .query = query ? data + query + 1 : NULL,
        .query_len = query ? target_end - query - 1 : 0,
        .accept = f.accept ? (const char *)f.accept : NULL,
        .accept_len = f.accept_len,
        .keep_alive = minor == 1 ? !f.conn_close : f.conn_keep_alive && !f.conn_close,
    };
    *consumed = i;
    return HTTP_PARSE_DONE;
}

const char *http_status_reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
