/*
 * libFuzzer target for the request-head parser, the one parser here that
 * anyone on the node can feed. Besides memory safety (ASan/UBSan), it checks
 * the contract the server relies on: verdicts are a known set; DONE ends on
 * a LF inside the input with every slice inside the head; a prefix never
 * contradicts the whole (NEED_MORE or the same verdict); and given
 * HTTP_MAX_HEAD_BYTES bytes there is always a verdict. Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok) {
    if (!ok)
        abort();
}

static bool known(int r) {
    switch (r) {
    case HTTP_PARSE_NEED_MORE:
    case HTTP_PARSE_DONE:
    case 400:
    case 405:
    case 413:
    case 414:
    case 431:
    case 505:
        return true;
    default:
        return false;
    }
}

static bool inside(const char *s, size_t n, const char *base, size_t len) {
    return s >= base && s + n <= base + len;
}

/* A prefix of n bytes: its own allocation, so ASan sees a read past n. */
static int parse_prefix(const uint8_t *data, size_t n, struct http_request *req, size_t *consumed) {
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    int r = http_parse_request(copy, n, req, consumed);
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    struct http_request req;
    size_t consumed = 0;
    int r = http_parse_request(in, size, &req, &consumed);
    require(known(r));
    if (size >= HTTP_MAX_HEAD_BYTES)
        require(r != HTTP_PARSE_NEED_MORE);

    if (r == HTTP_PARSE_DONE) {
        require(consumed >= 4 && consumed <= size && consumed <= HTTP_MAX_HEAD_BYTES);
        require(in[consumed - 1] == '\n' && in[consumed - 2] == '\r');
        require(req.method == HTTP_METHOD_GET || req.method == HTTP_METHOD_HEAD);
        require(req.version_minor <= 1);
        require(req.path_len >= 1 && req.path_len <= HTTP_MAX_TARGET_BYTES);
        require(inside(req.path, req.path_len, in, consumed) && req.path[0] == '/');
        require(!memchr(req.path, '?', req.path_len));
        if (req.query)
            require(inside(req.query, req.query_len, in, consumed) && req.query[-1] == '?');
        if (req.accept)
            require(inside(req.accept, req.accept_len, in, consumed));

        /* The head alone parses the same; one byte less is not enough. */
        struct http_request again;
        size_t again_consumed = 0;
        require(parse_prefix(data, consumed, &again, &again_consumed) == HTTP_PARSE_DONE);
        require(again_consumed == consumed && again.path_len == req.path_len &&
                again.keep_alive == req.keep_alive && again.query_len == req.query_len &&
                again.accept_len == req.accept_len);
        require(parse_prefix(data, consumed - 1, &again, &again_consumed) == HTTP_PARSE_NEED_MORE);
        return 0;
    }

    /* No prefix contradicts the whole: try a few. */
    size_t cuts[] = {size / 2, size > 0 ? size - 1 : 0, size / 3};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t c = 0;
        int p = parse_prefix(data, cuts[i], &req, &c);
        require(p == HTTP_PARSE_NEED_MORE || p == r);
    }
    return 0;
}
