/*
 * The watchdog device: I/O only, no policy. A Linux watchdog
 * (/dev/watchdog, or softdog) starts counting down when it is opened and
 * reboots the machine when nobody writes to it within its timeout; the
 * magic close (a 'V' written just before closing) stops it cleanly. The
 * agent on a SQL node holds it open and feeds it while agent/fence.c says
 * so: that is how a node that has lost the cluster stops itself before the
 * deadline its heartbeat Lease advertised (docs/node-loss.md).
 *
 * A character device must be a real watchdog (WDIOC_GETSUPPORT answers) with
 * magic close: a driver without it stops counting whenever the device is
 * closed, so a crashed agent would leave its node running unfenced. Anything
 * else that can be written — a FIFO, a regular file — is a stand-in for
 * tests, written the same way and otherwise inert. Block devices and the
 * rest are refused, so a mistyped path cannot write into a disk.
 *
 * Writes on a FIFO whose reader left fail with EPIPE: the process must
 * ignore SIGPIPE (main does). The caller owns struct watchdog through
 * watchdog_open()/watchdog_close().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct watchdog;

/* Open path O_WRONLY|O_NONBLOCK|O_CLOEXEC. A character device is a real
 * watchdog: its timeout is set with WDIOC_SETTIMEOUT to timeout_ms in
 * seconds, rounded up (when the driver can set it), and the effective one is
 * read back with WDIOC_GETTIMEOUT and reported by watchdog_timeout_ms(); it
 * may differ from the request (a driver's granularity or fixed timeout).
 * Anything else (a FIFO, a regular file: the test stand-ins) is a stand-in:
 * timeout_ms is taken as given. A real device that fails a step after the
 * open is disarmed with the magic close before the error returns.
 * Returns 0 with *out a new watchdog, or -errno with *out NULL and *error a
 * new malloc'd sentence (caller frees; NULL if that allocation failed too)
 * saying what failed and what to do: -EINVAL (path empty, timeout_ms 0 or
 * over a day, not a character device, FIFO or regular file), -ENOTTY (a
 * character device that is not a watchdog), -EOPNOTSUPP (a watchdog without
 * magic close), the open's errno (-ENOENT, -EACCES, -EBUSY: another process
 * holds the device; -ENXIO: a FIFO without a reader), the ioctls' errno, or
 * -ENOMEM. */
int watchdog_open(const char *path, uint64_t timeout_ms, struct watchdog **out, char **error);

/* One keep-alive: write one byte that is not 'V' ("1"). 0, -EAGAIN (a
 * stand-in FIFO that is full: its reader is slow; nothing was written, try
 * again on the next tick — a real device never says this), -EPIPE (a FIFO
 * whose reader left), or another -errno. */
int watchdog_feed(struct watchdog *w);

/* The effective timeout: the device's, or the stand-in's as given. */
uint64_t watchdog_timeout_ms(const struct watchdog *w);
/* A real watchdog device, not a stand-in. */
bool watchdog_is_device(const struct watchdog *w);
/* The path it was opened with, borrowed from w. */
const char *watchdog_path(const struct watchdog *w);
/* The driver's identity ("Software Watchdog"), borrowed from w; "" for a
 * stand-in. */
const char *watchdog_identity(const struct watchdog *w);

/* Close and free. disarm: write the magic 'V' first (a clean stop: the
 * device stops counting). Without it a real watchdog keeps counting and
 * reboots the node unless someone opens and feeds it again. NULL-safe. */
void watchdog_close(struct watchdog *w, bool disarm);
