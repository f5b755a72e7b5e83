/*
 * Tests for agent/notify.c against a real datagram socket bound by the test
 * and named in NOTIFY_SOCKET, as systemd does: READY/STATUS, RELOADING with
 * MONOTONIC_USEC, STOPPING, and WATCHDOG=1 pings at half of WATCHDOG_USEC.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

struct peer {
    int fd;
    char path[108];
};

static void peer_open(struct peer *p) {
    snprintf(p->path, sizeof(p->path), "/tmp/ew-notify-%d.sock", getpid());
    unlink(p->path);
    p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(p->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, p->path);
    ck_assert_int_eq(bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("NOTIFY_SOCKET", p->path, 1);
}

static void peer_close(struct peer *p) {
    close(p->fd);
    unlink(p->path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* Next datagram or "" when none is queued. */
static const char *peer_recv(struct peer *p) {
    static char msg[1024];
    ssize_t n = recv(p->fd, msg, sizeof(msg) - 1, 0);
    msg[n > 0 ? n : 0] = '\0';
    return msg;
}

static void on_stop(uv_timer_t *t) {
    uv_stop(t->loop);
}

START_TEST(test_messages) {
    struct peer peer;
    peer_open(&peer);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct notify n;
    ck_assert_int_eq(notify_init(&n, &loop), 0);
    ck_assert(n.enabled);
    ck_assert_uint_eq(n.watchdog_usec, 0);
    notify_ready(&n, "supervising");
    ck_assert_str_eq(peer_recv(&peer), "READY=1\nSTATUS=supervising");
    notify_status(&n, "sqlserver: failed");
    ck_assert_str_eq(peer_recv(&peer), "STATUS=sqlserver: failed");
    notify_reloading(&n);
    const char *m = peer_recv(&peer);
    ck_assert_msg(strncmp(m, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "got %s", m);
    ck_assert_uint_gt(strtoull(m + 27, NULL, 10), 0);
    notify_stopping(&n);
    ck_assert_str_eq(peer_recv(&peer), "STOPPING=1\nSTATUS=stopping");
    notify_close(&n, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    peer_close(&peer);
}
END_TEST

START_TEST(test_watchdog_pings) {
    struct peer peer;
    peer_open(&peer);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", getpid());
    setenv("WATCHDOG_USEC", "100000", 1); /* 100 ms: ping every 50 ms */
    setenv("WATCHDOG_PID", pid, 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct notify n;
    ck_assert_int_eq(notify_init(&n, &loop), 0);
    ck_assert_uint_eq(n.watchdog_usec, 100000);
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    uv_timer_start(&stop, on_stop, 420, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    int pings = 0;
    for (;;) {
        const char *m = peer_recv(&peer);
        if (!m[0])
            break;
        ck_assert_str_eq(m, "WATCHDOG=1");
        pings++;
    }
    /* 420 ms / 50 ms = 8 on an idle machine; a loaded one may lose a few. */
    ck_assert_int_ge(pings, 4);
    ck_assert_int_le(pings, 9);
    ck_assert_int_eq(pings, (int)n.pings);
    uv_close((uv_handle_t *)&stop, NULL);
    notify_close(&n, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    peer_close(&peer);
}
END_TEST

START_TEST(test_disabled_without_socket) {
    unsetenv("NOTIFY_SOCKET");
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct notify n;
    ck_assert_int_eq(notify_init(&n, &loop), 0);
    ck_assert(!n.enabled);
    notify_ready(&n, "x"); /* no-op, must not crash */
    notify_close(&n, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_watchdog_for_other_pid_ignored) {
    struct peer peer;
    peer_open(&peer);
    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct notify n;
    ck_assert_int_eq(notify_init(&n, &loop), 0);
    ck_assert_uint_eq(n.watchdog_usec, 0);
    notify_close(&n, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    peer_close(&peer);
}
END_TEST

int main(void) {
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("sd_notify");
    tcase_add_test(tc, test_messages);
    tcase_add_test(tc, test_watchdog_pings);
    tcase_add_test(tc, test_disabled_without_socket);
    tcase_add_test(tc, test_watchdog_for_other_pid_ignored);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
