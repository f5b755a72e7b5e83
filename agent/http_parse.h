/*
 * An HTTP/1.x request-head parser for the agent's metrics and health server.
 * It is pure: no I/O, no allocation, no logging, no state kept between calls.
 * The caller hands it every byte received so far on a connection and gets
 * back NEED_MORE, DONE (with the length of the head it parsed), or the HTTP
 * status to answer with before closing. Calling it again on a longer buffer
 * is the incremental interface; a partial request never yields an answer
 * that the complete one would contradict. The server only serves GET and
 * HEAD without bodies, so the parser is strict where a general server would
 * be lenient: CRLF line ends only (a bare LF, or a CR not followed by LF, is
 * 400), no obs-fold, no message body, and HTTP/1.1 requires exactly one Host
 * field as RFC 9112 section 3.2 says. The strings it reports are borrowed
 * slices of the caller's buffer, not NUL-terminated.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Limits. A request target longer than HTTP_MAX_TARGET_BYTES is 414; a header
 * section (the field lines after the request line, their CRLFs and the final
 * empty line) longer than HTTP_MAX_HEADER_BYTES, or with more than
 * HTTP_MAX_HEADER_FIELDS field lines, is 431. No method is longer than
 * HTTP_MAX_METHOD_BYTES, so a longer first token is 400. */
#define HTTP_MAX_METHOD_BYTES  32
#define HTTP_MAX_TARGET_BYTES  2048
#define HTTP_MAX_HEADER_BYTES  8192
#define HTTP_MAX_HEADER_FIELDS 64
/* The longest request line that can parse: method SP target SP HTTP/x.y CRLF. */
#define HTTP_MAX_REQUEST_LINE_BYTES (HTTP_MAX_METHOD_BYTES + 1 + HTTP_MAX_TARGET_BYTES + 1 + 8 + 2)
/* The longest head that can parse. Given at least this many bytes the parser
 * never answers NEED_MORE, so a reader may cap its buffer here. */
#define HTTP_MAX_HEAD_BYTES (HTTP_MAX_REQUEST_LINE_BYTES + HTTP_MAX_HEADER_BYTES)

enum http_method {
    HTTP_METHOD_GET = 0,
    HTTP_METHOD_HEAD,
};

/* What http_parse_request() returns besides an HTTP status (400..505). */
enum {
    HTTP_PARSE_NEED_MORE = 0,
    HTTP_PARSE_DONE = 1,
};

/*
 * A parsed request head. Every pointer is borrowed from the buffer given to
 * http_parse_request() and is valid exactly as long as those bytes stay where
 * they are, unchanged: in the server, for the duration of the handler call.
 * Copy what you keep. The slices are not NUL-terminated; use the lengths.
 */
struct http_request {
    enum http_method method;
    unsigned version_minor; /* HTTP/1.<version_minor>: 0 or 1 */
    const char *path;       /* "/metrics": the target up to '?', as sent (not decoded) */
    size_t path_len;        /* >= 1; path[0] == '/' */
    const char *query;      /* after the first '?', NULL when the target has none */
    size_t query_len;
    const char *accept; /* the first Accept field's value, trimmed; NULL when absent */
    size_t accept_len;
    /* The client wants the connection kept open after the response:
     * HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
     * "Connection: keep-alive" (and no "close"). */
    bool keep_alive;
};

/*
 * Parse the request head at the start of data[0..len). Returns
 *   HTTP_PARSE_NEED_MORE: no verdict yet; call again with more bytes;
 *   HTTP_PARSE_DONE: *req describes the head, which is the first *consumed
 *     bytes (ending in CRLF CRLF); anything after it is the next request;
 *   an HTTP status to answer with, then close the connection:
 *     400 malformed request line or field, bare LF, lone CR, control
 *         characters, obs-fold, a non-origin-form target, missing or
 *         repeated Host on HTTP/1.1, repeated Host or Content-Length,
 *         Transfer-Encoding (this server takes no bodies);
 *     405 a method other than GET or HEAD (answer with "Allow: GET, HEAD");
 *     413 Content-Length greater than zero;
 *     414 a request target longer than HTTP_MAX_TARGET_BYTES;
 *     431 header section too large or too many fields;
 *     505 a well-formed version other than HTTP/1.0 or HTTP/1.1.
 * *req and *consumed are meaningful only on HTTP_PARSE_DONE. The parser
 * reads nothing outside data[0..len) and needs no NUL terminator. A verdict
 * other than NEED_MORE on the head is final: more bytes would not change it.
 * A head is DONE only once its final LF has arrived, so a caller may skip
 * calling again until a LF arrives or its buffer reaches HTTP_MAX_HEAD_BYTES.
 */
int http_parse_request(const char *data, size_t len, struct http_request *req, size_t *consumed);

/* The reason phrase for a status ("Not Found"); "Unknown" for ones we never send. */
const char *http_status_reason(int status);
