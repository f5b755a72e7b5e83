/*
 * The watchdog device (watchdog.h). Opening a real watchdog arms it, so
 * every failure after the open of a device known to be a watchdog ends with
 * the magic close: a refused configuration must not reboot the node. A
 * character device that does not answer WDIOC_GETSUPPORT is closed without a
 * byte written, since it is not a watchdog and the byte could mean anything
 * to it. The errors are sentences for the operator, built here because only
 * this module knows which step failed; the caller logs them once.
 */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TIMEOUT_MS (24ULL * 60 * 60 * 1000) /* as the fenced-until annotation reads it */

struct watchdog {
    int fd;
    bool device;
    uint64_t timeout_ms;
    char identity[sizeof(((struct watchdog_info *)0)->identity) + 1];
    char path[]; /* NUL-terminated */
};

/* Set *error to a new sentence and return r. */
__attribute__((format(printf, 3, 4))) static int fail(char **error, int r, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(error, fmt, ap) < 0)
        *error = NULL;
    va_end(ap);
    return r;
}

/* Write one byte, again after a signal. 0 or -errno. */
static int write_byte(int fd, char c) {
    for (;;) {
        ssize_t n = write(fd, &c, 1);
        if (n == 1)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : -EIO;
    }
}

/* The open's errno, explained. */
static int fail_open(char **error, const char *path, int r) {
    char why[128];
    const char *what = strerror_r(-r, why, sizeof(why));

    switch (r) {
    case -ENOENT:
        return fail(error, r,
                    "open %s: %s: no watchdog there; load a driver (modprobe softdog, or the "
                    "board's), or set fencing.watchdog.device to its path, or to \"\" to run "
                    "unfenced",
                    path, what);
    case -EACCES:
    case -EPERM:
        return fail(error, r,
                    "open %s: %s: the agent needs write access to the watchdog (run it as root, "
                    "or give its user the device)",
                    path, what);
    case -EBUSY:
        return fail(error, r,
                    "open %s: %s: another process holds the watchdog open (a watchdog daemon, "
                    "systemd's RuntimeWatchdogSec=, or another agent); only one can feed it",
                    path, what);
    case -ENXIO:
        return fail(error, r,
                    "open %s: %s: a FIFO with no reader (a test stand-in); start its reader first",
                    path, what);
    default:
        return fail(error, r, "open %s: %s", path, what);
    }
}

/* Identify the device at fd as a watchdog and set its timeout. On an error
 * after it is known to be one, it is disarmed (the caller closes fd). */
static int setup_device(struct watchdog *w, uint64_t timeout_ms, char **error) {
    struct watchdog_info info;
    char why[128];
    int secs, r;

    memset(&info, 0, sizeof(info));
    if (ioctl(w->fd, WDIOC_GETSUPPORT, &info) < 0) {
        r = -errno;
        return fail(error, r == -ENOTTY || r == -EINVAL ? -ENOTTY : r,
                    "%s: not a watchdog device (WDIOC_GETSUPPORT: %s); set "
                    "fencing.watchdog.device to a watchdog such as /dev/watchdog",
                    w->path, strerror_r(-r, why, sizeof(why)));
    }
    memcpy(w->identity, info.identity, sizeof(info.identity));
    w->identity[sizeof(info.identity)] = '\0';
    if (!(info.options & WDIOF_MAGICCLOSE)) {
        /* Such a driver stops counting on any close, and so when the agent
         * dies: no fencing. Nothing to disarm either. */
        return fail(error, -EOPNOTSUPP,
                    "%s (%s): the driver has no magic close, so it would stop counting when the "
                    "agent exits or crashes and the node would run on unfenced; use a driver "
                    "with magic close (softdog has it)",
                    w->path, w->identity);
    }
    if (info.options & WDIOF_SETTIMEOUT) {
        secs = (int)((timeout_ms + 999) / 1000);
        if (ioctl(w->fd, WDIOC_SETTIMEOUT, &secs) < 0) {
            r = -errno;
            write_byte(w->fd, 'V');
            return fail(error, r,
                        "%s (%s): WDIOC_SETTIMEOUT %d s: %s; pick a fencing.watchdog.timeout "
                        "the driver accepts",
                        w->path, w->identity, (int)((timeout_ms + 999) / 1000),
                        strerror_r(-r, why, sizeof(why)));
        }
    }
    secs = 0;
    r = ioctl(w->fd, WDIOC_GETTIMEOUT, &secs) < 0 ? -errno : secs <= 0 ? -EIO : 0;
    if (r < 0) {
        write_byte(w->fd, 'V');
        return fail(error, r,
                    "%s (%s): WDIOC_GETTIMEOUT: %s; the effective timeout must be known to "
                    "advertise a fencing deadline",
                    w->path, w->identity, strerror_r(-r, why, sizeof(why)));
    }
    w->timeout_ms = (uint64_t)secs * 1000;
    return 0;
}

int watchdog_open(const char *path, uint64_t timeout_ms, struct watchdog **out, char **error) {
    struct watchdog *w = NULL;
    struct stat st;
    size_t len;
    int r;

    *out = NULL;
    *error = NULL;
    if (!path || !*path)
        return fail(error, -EINVAL, "no watchdog device given");
    if (timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS)
        return fail(error, -EINVAL, "%s: watchdog timeout %llu ms is not in 1 ms..24 h", path,
                    (unsigned long long)timeout_ms);
    len = strlen(path);
    w = calloc(1, sizeof(*w) + len + 1);
    if (!w)
        return -ENOMEM;
    memcpy(w->path, path, len + 1);
    w->fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (w->fd < 0) {
        r = fail_open(error, path, -errno);
        free(w);
        return r;
    }
    if (fstat(w->fd, &st) < 0) {
        r = -errno;
        /* Not known to be a watchdog: nothing is written to it. */
        fail(error, r, "fstat %s: %s", path, strerror(-r));
        goto fail;
    }
    if (S_ISCHR(st.st_mode)) {
        w->device = true;
        r = setup_device(w, timeout_ms, error);
        if (r < 0)
            goto fail;
    } else if (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode)) {
        w->timeout_ms = timeout_ms;
    } else {
        r = fail(error, -EINVAL,
                 "%s: neither a watchdog (a character device) nor a test stand-in (a FIFO or a "
                 "regular file); refusing to write to it",
                 path);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    close(w->fd);
    free(w);
    return r;
}

int watchdog_feed(struct watchdog *w) {
    if (!w)
        return -EINVAL;
    return write_byte(w->fd, '1');
}

uint64_t watchdog_timeout_ms(const struct watchdog *w) {
    return w->timeout_ms;
}

bool watchdog_is_device(const struct watchdog *w) {
    return w->device;
}

const char *watchdog_path(const struct watchdog *w) {
    return w->path;
}

const char *watchdog_identity(const struct watchdog *w) {
    return w->identity;
}

void watchdog_close(struct watchdog *w, bool disarm) {
    if (!w)
        return;
    if (disarm)
        write_byte(w->fd, 'V');
    close(w->fd);
    free(w);
}
