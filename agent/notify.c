/*
 * sd_notify glue. The messages are plain sd_notify() calls; the only state is
 * the watchdog timer, embedded in struct notify and closed asynchronously.
 * RELOADING=1 carries MONOTONIC_USEC as systemd's Type=notify-reload expects,
 * so a unit may use either Type=notify or Type=notify-reload.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "probe.h" /* container_of */

static void on_watchdog(uv_timer_t *t) {
    struct notify *n = container_of(t, struct notify, watchdog);
    sd_notify(0, "WATCHDOG=1");
    n->pings++;
}

int notify_init(struct notify *n, uv_loop_t *loop) {
    *n = (struct notify){0};
    n->enabled = getenv("NOTIFY_SOCKET") != NULL;
    int r = uv_timer_init(loop, &n->watchdog);
    if (r < 0)
        return r;
    uint64_t usec = 0;
    if (n->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        n->watchdog_usec = usec;
        uint64_t period_ms = usec / 2000;
        if (period_ms == 0)
            period_ms = 1;
        uv_timer_start(&n->watchdog, on_watchdog, period_ms, period_ms);
    }
    return 0;
}

void notify_ready(struct notify *n, const char *status) {
    if (!n->enabled)
        return;
    sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "running");
    if (n->watchdog_usec)
        on_watchdog(&n->watchdog);
}

void notify_status(struct notify *n, const char *status) {
    if (n->enabled)
        sd_notifyf(0, "STATUS=%s", status);
}

void notify_reloading(struct notify *n) {
    if (!n->enabled)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading configuration", usec);
}

void notify_stopping(struct notify *n) {
    if (n->enabled)
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

static void on_timer_closed(uv_handle_t *h) {
    struct notify *n = container_of((uv_timer_t *)h, struct notify, watchdog);
    if (n->on_closed)
        n->on_closed(n);
}

void notify_close(struct notify *n, void (*cb)(struct notify *n)) {
    n->on_closed = cb;
    uv_timer_stop(&n->watchdog);
    uv_close((uv_handle_t *)&n->watchdog, on_timer_closed);
}
