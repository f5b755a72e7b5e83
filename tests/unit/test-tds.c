/*
 * Tests for probes/tds.c against a real loopback peer. The peer is a thread
 * with blocking sockets that plays one scripted server per connection: a
 * healthy engine, one that hangs, resets, closes, answers garbage or TLS,
 * answers slowly or one byte at a time. Each test runs a fresh uv loop until
 * the probe is closed and the loop is empty, so a handle or request the
 * probe forgot shows up as a hang or a failed uv_loop_close(), and a leak
 * under valgrind or ASan.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"
#include "tds.h"
#include "tds_codec.h"

/* SQL Server 2022 (16.0.4135.4), encryption off. */
static const uint8_t sql2022_reply[] = {
    0x04, 0x01, 0x00, 0x2b, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x06, 0x01, 0x00,
    0x20, 0x00, 0x01, 0x02, 0x00, 0x21, 0x00, 0x01, 0x03, 0x00, 0x22, 0x00, 0x00, 0x04, 0x00,
    0x22, 0x00, 0x01, 0xff, 0x10, 0x00, 0x10, 0x27, 0x04, 0x00, 0x00, 0x00, 0x00,
};

/* The same reply in two packets, the first without EOM. */
static const uint8_t sql2022_reply_two_packets[] =
    {
        0x04, 0x00, 0x00, 0x14, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a,
        0x00, 0x06, 0x01, 0x00, 0x20, 0x00, 0x01, 0x02, 0x00, /* 12 payload bytes */
        0x04, 0x01, 0x00, 0x1f, 0x00, 0x00, 0x02, 0x00, 0x21, 0x00, 0x01,
        0x03, 0x00, 0x22, 0x00, 0x00, 0x04, 0x00, 0x22, 0x00, 0x01, 0xff,
        0x10, 0x00, 0x10, 0x27, 0x04, 0x00, 0x00, 0x00, 0x00, /* the other 23 */
};

/* What a TDS 8 strict server does with plain bytes: a TLS alert. */
static const uint8_t tls_alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};

enum peer_mode {
    PEER_OK,      /* read PRELOGIN, answer */
    PEER_HANG,    /* read PRELOGIN, never answer */
    PEER_RESET,   /* read PRELOGIN, close with SO_LINGER 0 */
    PEER_EOF,     /* read PRELOGIN, close cleanly */
    PEER_GARBAGE, /* read PRELOGIN, answer HTTP */
    PEER_TLS,     /* read PRELOGIN, answer a TLS alert */
    PEER_SLOW,    /* read PRELOGIN, wait delay_ms, answer */
    PEER_SPLIT,   /* read PRELOGIN, answer in two packets, one byte per write */
};

struct peer {
    int listen_fd;
    uint16_t port;
    enum peer_mode mode;
    unsigned delay_ms;
    unsigned connections; /* to serve, one after the other */
    pthread_t thread;
    /* Filled by the thread, read after join. */
    unsigned served;
    uint8_t request[256];
    size_t request_len;
    bool request_complete;
};

static void sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool read_exact(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r <= 0)
            return;
        p += r;
        n -= (size_t)r;
    }
}

/* Until the client closes (or 5 s pass, so a broken probe cannot hang the
 * test forever). */
static void wait_for_close(int fd) {
    uint8_t b[256];
    while (recv(fd, b, sizeof(b), 0) > 0)
        ;
}

static void serve(struct peer *pr, int fd) {
    uint8_t req[256];
    if (!read_exact(fd, req, TDS_HEADER_BYTES))
        return;
    size_t len = (size_t)req[2] << 8 | req[3];
    if (len < TDS_HEADER_BYTES || len > sizeof(req) ||
        !read_exact(fd, req + TDS_HEADER_BYTES, len - TDS_HEADER_BYTES))
        return;
    if (pr->served == 0) {
        memcpy(pr->request, req, len);
        pr->request_len = len;
        pr->request_complete = true;
    }
    switch (pr->mode) {
    case PEER_OK:
        write_all(fd, sql2022_reply, sizeof(sql2022_reply));
        break;
    case PEER_HANG:
        break;
    case PEER_RESET: {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        return;
    }
    case PEER_EOF:
        return;
    case PEER_GARBAGE:
        write_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
        break;
    case PEER_TLS:
        write_all(fd, tls_alert, sizeof(tls_alert));
        break;
    case PEER_SLOW:
        sleep_ms(pr->delay_ms);
        write_all(fd, sql2022_reply, sizeof(sql2022_reply));
        break;
    case PEER_SPLIT:
        for (size_t i = 0; i < sizeof(sql2022_reply_two_packets); i++) {
            write_all(fd, sql2022_reply_two_packets + i, 1);
            sleep_ms(1);
        }
        break;
    }
    wait_for_close(fd);
}

static void *peer_main(void *arg) {
    struct peer *pr = arg;
    for (unsigned i = 0; i < pr->connections; i++) {
        struct pollfd pfd = {.fd = pr->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        int fd = accept4(pr->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        serve(pr, fd);
        pr->served++;
        close(fd);
    }
    return NULL;
}

/* A listener on an ephemeral port of addr (127.0.0.1 or ::1). Returns false
 * when the address family is not available here. */
static bool peer_listen(struct peer *pr, int family, const char *addr) {
    memset(pr, 0, sizeof(*pr));
    pr->connections = 1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
        sl = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
        sl = sizeof(*sin6);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 8) < 0) {
        close(fd);
        return false;
    }
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    pr->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
    pr->listen_fd = fd;
    return true;
}

static void peer_start(struct peer *pr, enum peer_mode mode) {
    pr->mode = mode;
    ck_assert_int_eq(pthread_create(&pr->thread, NULL, peer_main, pr), 0);
}

static void peer_join(struct peer *pr) {
    pthread_join(pr->thread, NULL);
    close(pr->listen_fd);
}

/* The PRELOGIN the peer received is the one the codec builds. */
static void assert_request_valid(const struct peer *pr) {
    ck_assert(pr->request_complete);
    ck_assert_uint_eq(pr->request[0], TDS_PACKET_PRELOGIN);
    ck_assert_uint_eq(pr->request[1], TDS_STATUS_EOM);
    ck_assert_uint_eq((size_t)pr->request[2] << 8 | pr->request[3], pr->request_len);
    struct tds_prelogin_reply pre;
    ck_assert_int_eq(tds_prelogin_parse(pr->request + TDS_HEADER_BYTES,
                                        pr->request_len - TDS_HEADER_BYTES, &pre, NULL),
                     0);
    ck_assert_int_eq(pre.encryption, TDS_ENCRYPT_NOT_SUP);
    ck_assert_uint_eq(pr->request[TDS_HEADER_BYTES], TDS_PL_VERSION); /* VERSION first */
}

/* ---- the probe side ----------------------------------------------------- */

#define MAX_RESULTS 8

struct run {
    uv_loop_t loop;
    struct probe *probe;
    unsigned results;
    unsigned close_after; /* close the probe from the n-th result */
    struct probe_result r[MAX_RESULTS];
    uint64_t at_ns[MAX_RESULTS];         /* when each result arrived */
    uint64_t started_at_ns[MAX_RESULTS]; /* when the runner started that check */
    uint64_t started_loop_ms;            /* uv_now() when the test started the check */
    uint64_t at_loop_ms[MAX_RESULTS];
    bool closed;
    uv_timer_t close_timer;
};

static void on_closed(struct probe *p) {
    struct run *run = p->data;
    ck_assert(!run->closed);
    run->closed = true;
}

static void on_result(struct probe *p, const struct probe_result *r) {
    struct run *run = p->data;
    ck_assert(!run->closed);
    ck_assert_uint_lt(run->results, MAX_RESULTS);
    run->at_ns[run->results] = uv_hrtime();
    run->started_at_ns[run->results] = p->check_started_ns;
    uv_update_time(p->loop);
    run->at_loop_ms[run->results] = uv_now(p->loop);
    run->r[run->results++] = *r;
    if (run->results == run->close_after)
        probe_close(p, on_closed);
}

static void run_init(struct run *run, const char *host, uint16_t port, uint64_t timeout_ms) {
    memset(run, 0, sizeof(*run));
    ck_assert_int_eq(uv_loop_init(&run->loop), 0);
    struct probe_timing t = {.interval_ms = 20, .timeout_ms = timeout_ms, .rise = 1, .fall = 1};
    run->probe = tds_probe_new(&run->loop, "sql", host, port, &t);
    ck_assert_ptr_nonnull(run->probe);
    ck_assert_str_eq(run->probe->ops->kind, "tds");
    run->close_after = 1;
}

/* Run the loop until everything is closed; the loop must be empty then. */
static void run_finish(struct run *run) {
    ck_assert_int_eq(uv_run(&run->loop, UV_RUN_DEFAULT), 0);
    ck_assert(run->closed);
    ck_assert_int_eq(uv_loop_close(&run->loop), 0);
}

/* One check against a peer in mode; returns its result. elapsed_ms is
 * measured on the loop's clock, the one libuv arms timers against: the
 * cached time can lag the real one by a few ms on a busy machine, so only
 * this clock gives "never before the timeout" exactly. */
static struct probe_result check_once(struct peer *pr, enum peer_mode mode, uint64_t timeout_ms,
                                      uint64_t *elapsed_ms) {
    struct run run;
    peer_start(pr, mode);
    run_init(&run, "127.0.0.1", pr->port, timeout_ms);
    uv_update_time(&run.loop);
    run.started_loop_ms = uv_now(&run.loop);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    ck_assert_int_eq(uv_run(&run.loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(run.results, 1);
    if (elapsed_ms)
        *elapsed_ms = run.at_loop_ms[0] - run.started_loop_ms;
    ck_assert(run.closed);
    ck_assert_int_eq(uv_loop_close(&run.loop), 0);
    peer_join(pr);
    return run.r[0];
}

START_TEST(test_ok) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_OK, 2000, NULL);
    ck_assert_str_eq(probe_outcome_name(r.outcome), "ok");
    ck_assert_str_eq(r.server_version, "16.0.4135.4");
    ck_assert_int_eq(r.encryption, TDS_ENCRYPT_OFF);
    ck_assert_int_eq(r.error, 0);
    ck_assert_uint_gt(r.latency_us, 0);
    ck_assert_uint_lt(r.latency_us, 2000000);
    ck_assert_ptr_nonnull(strstr(r.detail, "16.0.4135.4"));
    ck_assert_ptr_nonnull(strstr(r.detail, "off"));
    ck_assert_uint_eq(pr.served, 1);
    assert_request_valid(&pr);
}
END_TEST

START_TEST(test_ok_ipv6_literal) {
    struct peer pr;
    if (!peer_listen(&pr, AF_INET6, "::1")) {
        fprintf(stderr, "test_ok_ipv6_literal: no IPv6 loopback here, skipped\n");
        return;
    }
    peer_start(&pr, PEER_OK);
    struct run run;
    run_init(&run, "::1", pr.port, 2000);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    run_finish(&run);
    peer_join(&pr);
    ck_assert_uint_eq(run.results, 1);
    ck_assert_int_eq(run.r[0].outcome, PROBE_OK);
    ck_assert_str_eq(run.r[0].server_version, "16.0.4135.4");
}
END_TEST

/* A name goes through uv_getaddrinfo; "localhost" resolves without DNS. */
START_TEST(test_ok_resolved_name) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    /* Where localhost is ::1 first, that address is refused: accept both,
     * but only an ok proves the path end to end, so require it when
     * localhost maps to 127.0.0.1 alone (the common container setup). */
    peer_start(&pr, PEER_OK);
    struct run run;
    run_init(&run, "localhost", pr.port, 2000);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    run_finish(&run);
    ck_assert_uint_eq(run.results, 1);
    ck_assert_msg(run.r[0].outcome == PROBE_OK || run.r[0].outcome == PROBE_REFUSED,
                  "outcome %s: %s", probe_outcome_name(run.r[0].outcome), run.r[0].detail);
    if (run.r[0].outcome == PROBE_REFUSED) {
        /* Let the peer thread give up on its accept. */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(pr.port)};
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        close(fd);
    } else {
        ck_assert_str_eq(run.r[0].server_version, "16.0.4135.4");
    }
    peer_join(&pr);
}
END_TEST

START_TEST(test_resolve_failure) {
    struct run run;
    /* Not a valid name at all: getaddrinfo fails without asking DNS. */
    run_init(&run, "bad..name..", 1433, 5000);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    run_finish(&run);
    ck_assert_uint_eq(run.results, 1);
    ck_assert_int_eq(run.r[0].outcome, PROBE_ERROR);
    ck_assert_int_lt(run.r[0].error, 0);
    ck_assert_ptr_nonnull(strstr(run.r[0].detail, "resolve"));
}
END_TEST

/* No file descriptor left for the socket: a local failure, "error". */
START_TEST(test_socket_failure) {
    if (getenv("EDGEWARDEN_UNDER_VALGRIND")) {
        /* valgrind keeps its own descriptors under the limit. */
        fprintf(stderr, "test_socket_failure: skipped under valgrind\n");
        return;
    }
    struct run run;
    run_init(&run, "127.0.0.1", 1433, 2000);
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int next_fd = dup(0);
    ck_assert_int_ge(next_fd, 0);
    close(next_fd);
    struct rlimit tight = {.rlim_cur = (rlim_t)next_fd, .rlim_max = old.rlim_max};
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int r = probe_check_once(run.probe, on_result, &run);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(r, 0);
    /* Completed inside the check, before the loop ran. */
    ck_assert_uint_eq(run.results, 1);
    run_finish(&run);
    ck_assert_str_eq(probe_outcome_name(run.r[0].outcome), "error");
    ck_assert_int_eq(run.r[0].error, -EMFILE);
    ck_assert_ptr_nonnull(strstr(run.r[0].detail, "cannot create socket"));
}
END_TEST

START_TEST(test_refused) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    close(pr.listen_fd); /* the port is now closed */
    struct run run;
    run_init(&run, "127.0.0.1", pr.port, 2000);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    run_finish(&run);
    ck_assert_uint_eq(run.results, 1);
    ck_assert_str_eq(probe_outcome_name(run.r[0].outcome), "refused");
    ck_assert_int_eq(run.r[0].error, -ECONNREFUSED);
    ck_assert_str_eq(run.r[0].server_version, "");
    ck_assert_int_eq(run.r[0].encryption, -1);
    ck_assert_ptr_nonnull(strstr(run.r[0].detail, "refused"));
}
END_TEST

START_TEST(test_timeout) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    uint64_t elapsed_ms = 0;
    struct probe_result r = check_once(&pr, PEER_HANG, 150, &elapsed_ms);
    ck_assert_str_eq(probe_outcome_name(r.outcome), "timeout");
    ck_assert_int_eq(r.error, -ETIMEDOUT);
    ck_assert_uint_ge(elapsed_ms, 150);
    ck_assert_uint_lt(elapsed_ms, 150 + 3000);
    /* The runner's latency uses the real clock: allow for the loop's lag. */
    ck_assert_uint_ge(r.latency_us, 140000);
    /* The peer saw the probe's PRELOGIN, then the probe close the socket. */
    assert_request_valid(&pr);
    ck_assert_uint_eq(pr.served, 1);
}
END_TEST

START_TEST(test_reset) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_RESET, 2000, NULL);
    ck_assert_str_eq(probe_outcome_name(r.outcome), "reset");
    ck_assert_int_eq(r.error, -ECONNRESET);
}
END_TEST

START_TEST(test_eof_before_reply) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_EOF, 2000, NULL);
    ck_assert_int_eq(r.outcome, PROBE_RESET);
    ck_assert_ptr_nonnull(strstr(r.detail, "after 0 bytes"));
}
END_TEST

START_TEST(test_garbage) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_GARBAGE, 2000, NULL);
    ck_assert_str_eq(probe_outcome_name(r.outcome), "protocol_error");
    ck_assert_int_eq(r.error, -EPROTO);
    ck_assert_ptr_nonnull(strstr(r.detail, "0x48")); /* 'H' is not a packet type */
    ck_assert_str_eq(r.server_version, "");
}
END_TEST

START_TEST(test_tls_required) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_TLS, 2000, NULL);
    ck_assert_str_eq(probe_outcome_name(r.outcome), "tls_required");
    ck_assert(probe_outcome_is_success(r.outcome));
    ck_assert_int_eq(r.error, 0);
    ck_assert_ptr_nonnull(strstr(r.detail, "TLS"));
}
END_TEST

START_TEST(test_slow_reply) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    pr.delay_ms = 200;
    struct probe_result r = check_once(&pr, PEER_SLOW, 3000, NULL);
    ck_assert_int_eq(r.outcome, PROBE_OK);
    ck_assert_uint_ge(r.latency_us, 200000);
    ck_assert_uint_lt(r.latency_us, 3000000);
    ck_assert_str_eq(r.server_version, "16.0.4135.4");
}
END_TEST

START_TEST(test_split_reply) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    struct probe_result r = check_once(&pr, PEER_SPLIT, 5000, NULL);
    ck_assert_msg(r.outcome == PROBE_OK, "%s: %s", probe_outcome_name(r.outcome), r.detail);
    ck_assert_str_eq(r.server_version, "16.0.4135.4");
    ck_assert_int_eq(r.encryption, TDS_ENCRYPT_OFF);
    /* One write per byte, at least 1 ms apart. */
    ck_assert_uint_ge(r.latency_us, sizeof(sql2022_reply_two_packets) * 1000);
}
END_TEST

/* The scheduler re-arms after each completion: three ok results, each check
 * starting only after the previous result was delivered. (How exactly the
 * interval is kept is the runner's, tested with probe.c; its timers run on
 * libuv's cached clock, which lags by milliseconds on a loaded machine.) */
START_TEST(test_scheduled_no_overlap) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    pr.connections = 3;
    peer_start(&pr, PEER_OK);
    struct run run;
    run_init(&run, "127.0.0.1", pr.port, 2000);
    run.close_after = 3;
    ck_assert_int_eq(probe_start(run.probe, on_result, &run), 0);
    run_finish(&run);
    peer_join(&pr);
    ck_assert_uint_eq(run.results, 3);
    ck_assert_uint_eq(pr.served, 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(run.r[i].outcome, PROBE_OK);
        ck_assert(!run.r[i].unsolicited);
        ck_assert_uint_lt(run.started_at_ns[i], run.at_ns[i]);
        ck_assert_uint_le(run.r[i].latency_us * 1000, run.at_ns[i] - run.started_at_ns[i]);
        if (i > 0)
            ck_assert_uint_gt(run.started_at_ns[i], run.at_ns[i - 1]);
    }
}
END_TEST

/* Timed-out checks leave their sockets closing while the next check runs:
 * each detached connection must still be freed and report nothing. */
START_TEST(test_scheduled_timeouts) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    pr.connections = 3;
    peer_start(&pr, PEER_HANG);
    struct run run;
    run_init(&run, "127.0.0.1", pr.port, 60);
    run.close_after = 3;
    ck_assert_int_eq(probe_start(run.probe, on_result, &run), 0);
    run_finish(&run);
    peer_join(&pr);
    ck_assert_uint_eq(run.results, 3);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(run.r[i].outcome, PROBE_TIMEOUT);
    ck_assert_uint_eq(pr.served, 3);
}
END_TEST

static void on_close_timer(uv_timer_t *t) {
    struct run *run = container_of(t, struct run, close_timer);
    ck_assert(run->probe->in_flight); /* the peer is still silent */
    probe_close(run->probe, on_closed);
    uv_close((uv_handle_t *)t, NULL);
}

/* probe_close while connected and waiting for the reply: no result, the
 * close callback once, every handle closed. */
START_TEST(test_close_mid_check) {
    struct peer pr;
    ck_assert(peer_listen(&pr, AF_INET, "127.0.0.1"));
    peer_start(&pr, PEER_HANG);
    struct run run;
    run_init(&run, "127.0.0.1", pr.port, 5000);
    ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
    uv_timer_init(&run.loop, &run.close_timer);
    uv_timer_start(&run.close_timer, on_close_timer, 100, 0);
    run_finish(&run);
    peer_join(&pr);
    ck_assert_uint_eq(run.results, 0);
    assert_request_valid(&pr); /* it was mid-check: the PRELOGIN had gone out */
}
END_TEST

/* probe_close in the same tick the check started (still resolving or
 * connecting). */
START_TEST(test_close_at_once) {
    const char *hosts[] = {"127.0.0.1", "localhost"};
    for (size_t i = 0; i < 2; i++) {
        struct run run;
        run_init(&run, hosts[i], 9, 5000);
        ck_assert_int_eq(probe_check_once(run.probe, on_result, &run), 0);
        probe_close(run.probe, on_closed);
        run_finish(&run);
        ck_assert_uint_eq(run.results, 0);
    }
}
END_TEST

/* ---- tds_parse_hostport ------------------------------------------------- */

static void assert_hostport(const char *s, const char *host, uint16_t port) {
    char *h = NULL;
    uint16_t p = 0;
    ck_assert_msg(tds_parse_hostport(s, 1433, &h, &p) == 0, "'%s' rejected", s);
    ck_assert_str_eq(h, host);
    ck_assert_uint_eq(p, port);
    free(h);
}

START_TEST(test_parse_hostport) {
    assert_hostport("10.1.2.3:14330", "10.1.2.3", 14330);
    assert_hostport("10.1.2.3", "10.1.2.3", 1433);
    assert_hostport("sql-0.sql.default.svc", "sql-0.sql.default.svc", 1433);
    assert_hostport("db:1", "db", 1);
    assert_hostport("[::1]:1444", "::1", 1444);
    assert_hostport("[fe80::1%eth0]:1433", "fe80::1%eth0", 1433);
    assert_hostport("[2001:db8::5]", "2001:db8::5", 1433);
    assert_hostport("2001:db8::5", "2001:db8::5", 1433);
    assert_hostport("localhost:65535", "localhost", 65535);

    const char *bad[] = {"",         ":1433",  "host:",      "host:0",   "host:65536",
                         "host:14x", "[::1",   "[::1]x",     "[]:1433",  "[nothost]:1",
                         "a:b:c",    "[::1]:", "ho st:1433", "h/x:1433", "host:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *h = (char *)0x1;
        uint16_t p = 7;
        ck_assert_msg(tds_parse_hostport(bad[i], 1433, &h, &p) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_ptr_eq(h, (char *)0x1); /* untouched */
        ck_assert_uint_eq(p, 7);
    }
    char *h = NULL;
    uint16_t p = 0;
    ck_assert_int_eq(tds_parse_hostport(NULL, 1433, &h, &p), -EINVAL);
}
END_TEST

static Suite *tds_suite(void) {
    Suite *s = suite_create("tds");
    TCase *o = tcase_create("outcomes");
    tcase_set_timeout(o, 30);
    tcase_add_test(o, test_ok);
    tcase_add_test(o, test_ok_ipv6_literal);
    tcase_add_test(o, test_ok_resolved_name);
    tcase_add_test(o, test_resolve_failure);
    tcase_add_test(o, test_socket_failure);
    tcase_add_test(o, test_refused);
    tcase_add_test(o, test_timeout);
    tcase_add_test(o, test_reset);
    tcase_add_test(o, test_eof_before_reply);
    tcase_add_test(o, test_garbage);
    tcase_add_test(o, test_tls_required);
    tcase_add_test(o, test_slow_reply);
    tcase_add_test(o, test_split_reply);
    suite_add_tcase(s, o);

    TCase *l = tcase_create("lifecycle");
    tcase_set_timeout(l, 30);
    tcase_add_test(l, test_scheduled_no_overlap);
    tcase_add_test(l, test_scheduled_timeouts);
    tcase_add_test(l, test_close_mid_check);
    tcase_add_test(l, test_close_at_once);
    suite_add_tcase(s, l);

    TCase *h = tcase_create("hostport");
    tcase_add_test(h, test_parse_hostport);
    suite_add_tcase(s, h);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tds_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
