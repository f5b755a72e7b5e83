/*
 * The systemd notification protocol, driven from the loop. When NOTIFY_SOCKET
 * is set the agent says READY=1 once it is serving, STATUS= on every target
 * transition, RELOADING=1 around a SIGHUP reload and STOPPING=1 on shutdown.
 * When the unit sets WatchdogSec=, a loop timer sends WATCHDOG=1 at half of
 * WATCHDOG_USEC: since the ping comes from the loop, a wedged loop stops the
 * pings and systemd restarts the agent. Without NOTIFY_SOCKET every call is a
 * cheap no-op. sd_notify() is a datagram send to a local socket; it does not
 * wait on the peer beyond a full socket buffer, which systemd drains.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct notify {
    uv_timer_t watchdog;
    bool enabled;           /* NOTIFY_SOCKET is set */
    uint64_t watchdog_usec; /* 0 when no watchdog is requested */
    uint64_t pings;
    void (*on_closed)(struct notify *n);
};

/* Reads the environment; starts the watchdog timer when requested. 0 or -errno. */
int notify_init(struct notify *n, uv_loop_t *loop);
void notify_ready(struct notify *n, const char *status);
void notify_status(struct notify *n, const char *status);
void notify_reloading(struct notify *n);
void notify_stopping(struct notify *n);
/* Close the watchdog timer; cb (may be NULL) after it is closed. */
void notify_close(struct notify *n, void (*cb)(struct notify *n));
