/*
 * The fencing roll call's client (docs/node-loss.md, "Self-fencing"): ask
 * another agent's HTTP server `GET /peer` and read whether it reaches the
 * API server. Plain HTTP/1.1 over a libuv TCP handle, one connection per
 * question, "Connection: close", a whole-exchange timeout; the answer is at
 * most PEER_MAX_REPLY bytes. Peer addresses are IP literals with a port, as
 * the heartbeat Leases advertise them (no name resolution: no DNS lookup may
 * stand between a partitioned node and its decision).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PEER_MAX_REPLY 8192
#define PEER_NODE_SIZE 254

struct peer_answer {
    bool answered;      /* a well-formed 200 answer arrived in time */
    bool api_reachable; /* its "apiReachable" */
    char node[PEER_NODE_SIZE];
};

/* Parse a whole HTTP response to GET /peer: status line, headers, then a
 * JSON object body of Content-Length bytes (or up to the end when there is
 * none and complete is true). 0 and *out filled (answered true) for a 200
 * with a boolean "apiReachable"; -EAGAIN when more bytes are needed (not
 * complete); -EBADMSG for anything else. Pure. */
int peer_reply_parse(const char *data, size_t len, bool complete, struct peer_answer *out);

/* Split "1.2.3.4:9090" or "[::1]:9090" into a sockaddr. 0 or -EINVAL. */
int peer_address_parse(const char *addr, struct sockaddr_storage *out);

struct peer_query;
/* The answer (answered false on any failure: refused, timeout, garbage). */
typedef void (*peer_cb)(const struct peer_answer *a, void *data);

/* Ask addr within timeout_ms. 0: cb runs exactly once, later, from the loop
 * (unless peer_cancel() first); *out (may be NULL) is valid until then.
 * -EINVAL (a bad address), -ENOMEM, or a libuv error: cb never runs. */
int peer_ask(uv_loop_t *loop, const char *addr, uint64_t timeout_ms, peer_cb cb, void *data,
             struct peer_query **out);
/* No callback after this; the query frees itself once its handles closed. */
void peer_cancel(struct peer_query *q);
