/*
 * The process probe. A check is synchronous — a handful of small procfs
 * reads, which never wait on a disk — so it completes before returning and
 * there is nothing to cancel. Once an engine is known, a check only re-reads
 * its stat and compares (pid, starttime); the full /proc scan runs only while
 * no engine is known, or while the one known has no same-named parent (it may
 * be a watchdog about to fork its engine child, which a scan would find).
 *
 * Between checks a pidfd on the engine, polled on the loop, becomes readable
 * the moment the engine exits: that is reported at once as "absent", and the
 * next check is pulled forward so a restarted engine is found quickly. An
 * exited process is a zombie until its parent reaps it, so the exit itself is
 * reported as absent; a zombie that lingers is what the pulled-forward check
 * reports as "zombie". Each pidfd lives in its own small exit_watch, freed in
 * its close callback, so a watch still closing never blocks the next one.
 * Without pidfds (kernel < 5.3, a seccomp profile that denies the call, a
 * foreign proc root) a timer polls the engine's stat instead.
 */
#include "process.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "procfs.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture that has it */
#endif

#define DEFAULT_COMM           "sqlservr"
#define DEFAULT_STUCK_AFTER_MS 30000
#define RECHECK_AFTER_EXIT_MS  250 /* capped by the interval */
/* After an exit, keep looking at that pace for this long: a watchdog parent
 * or a service manager usually restarts the engine within seconds, and the
 * restart must be seen as soon as it happens, not one interval later. */
#define FAST_RESCAN_WINDOW_MS 60000
/* A lone process taken for the engine may be a watchdog about to fork it:
 * look for the child at the fast pace this long, so that an engine which
 * crashes and restarts soon after its start is not mistaken for the first
 * child (a "refinement") and its crash missed. */
#define LONE_RESCAN_WINDOW_MS 10000
#define FALLBACK_POLL_MS      100 /* capped by the interval */

struct process_probe;

struct exit_watch {
    uv_poll_t poll;
    int pidfd;
    struct process_probe *owner;
};

struct process_probe {
    struct probe probe;
    /* owned copies of the match */
    char *comm;
    char *cgroup;
    char *unit;
    char *proc_root;
    uint64_t stuck_after_ms;

    /* The engine: the last one found. `known` while it has not been seen to
     * vanish; `exited` once its exit was seen (it may linger as a zombie). */
    struct procfs_stat engine;
    bool known;
    bool exited;
    bool ever_known;
    bool engine_is_child; /* its parent is a same-named candidate */
    int watchdog_pid;     /* that parent, 0 when none: alone, it is no engine */
    bool in_d;
    uint64_t d_since_ms; /* loop time the engine was first seen in D */
    uint64_t restarts;
    uint64_t fast_until_ms; /* loop time until which a missing engine is looked for quickly */
    uint64_t lone_until_ms; /* loop time until which a lone engine's child is looked for quickly */

    bool pidfd_usable;    /* false: foreign proc root, or the kernel said no */
    int pidfd_fail_error; /* test hook; 0 = call the kernel */
    bool fallback_warned;
    struct exit_watch *watch; /* the current pidfd watch, or NULL */
    uv_timer_t poll_timer;    /* the fallback; always initialised */
    int open_handles;         /* poll_timer plus every watch not yet closed */
    bool kind_closing;
};

static struct process_probe *from_probe(struct probe *p) {
    return container_of(p, struct process_probe, probe);
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
    return a < b ? a : b;
}

static void handle_closed(struct process_probe *pp) {
    pp->open_handles--;
    if (pp->kind_closing && pp->open_handles == 0)
        probe_closed(&pp->probe);
}

static void on_watch_closed(uv_handle_t *h) {
    struct exit_watch *w = container_of((uv_poll_t *)h, struct exit_watch, poll);
    struct process_probe *pp = w->owner;
    close(w->pidfd);
    free(w);
    handle_closed(pp);
}

static void on_poll_timer_closed(uv_handle_t *h) {
    handle_closed(container_of((uv_timer_t *)h, struct process_probe, poll_timer));
}

/* Stop watching the engine for its exit: close the pidfd watch (the fd goes
 * in the close callback) and stop the fallback timer. */
static void drop_watch(struct process_probe *pp) {
    if (pp->watch) {
        uv_poll_stop(&pp->watch->poll);
        uv_close((uv_handle_t *)&pp->watch->poll, on_watch_closed);
        pp->watch = NULL;
    }
    uv_timer_stop(&pp->poll_timer);
}

/* The engine exited (seen through the pidfd or the fallback poll): report it
 * at once and look again soon, when a restarted engine may be there. */
static void engine_exited(struct process_probe *pp) {
    drop_watch(pp);
    pp->exited = true;
    pp->in_d = false;
    struct probe_result r;
    probe_result_init(&r);
    r.outcome = PROBE_ABSENT;
    r.pid = 0;
    snprintf(r.detail, sizeof(r.detail), "engine pid %d exited", pp->engine.pid);
    pp->fast_until_ms = uv_now(pp->probe.loop) + FAST_RESCAN_WINDOW_MS;
    probe_report(&pp->probe, &r);
    probe_reschedule(&pp->probe, min_u64(pp->probe.timing.interval_ms, RECHECK_AFTER_EXIT_MS));
}

static void start_polling(struct process_probe *pp);

static void on_engine_exit(uv_poll_t *h, int status, int events) {
    struct exit_watch *w = container_of(h, struct exit_watch, poll);
    struct process_probe *pp = w->owner;
    if (w != pp->watch)
        return;
    if (status < 0) {
        /* Not seen for a pidfd in practice; keep watching by polling. */
        drop_watch(pp);
        start_polling(pp);
        return;
    }
    engine_exited(pp);
}

static void on_poll_tick(uv_timer_t *t) {
    struct process_probe *pp = container_of(t, struct process_probe, poll_timer);
    if (!pp->known || pp->exited) {
        uv_timer_stop(t);
        return;
    }
    struct procfs_stat st;
    int r = procfs_read_stat(pp->proc_root, pp->engine.pid, &st);
    if (r == 0 && st.starttime_ticks == pp->engine.starttime_ticks && st.state != 'Z' &&
        st.state != 'X')
        return;
    if (r < 0 && r != -ENOENT && r != -ESRCH)
        return; /* cannot tell now; the next check reports the error */
    engine_exited(pp);
}

static void start_polling(struct process_probe *pp) {
    uint64_t period_ms = min_u64(pp->probe.timing.interval_ms, FALLBACK_POLL_MS);
    if (period_ms == 0)
        period_ms = 1;
    uv_timer_start(&pp->poll_timer, on_poll_tick, period_ms, period_ms);
}

/* One line per probe, the first time it has to poll instead of watching. */
static void warn_fallback(struct process_probe *pp, int error, bool for_good) {
    if (pp->fallback_warned)
        return;
    pp->fallback_warned = true;
    struct log_field f[] = {{"probe", pp->probe.name}};
    unsigned long long period_ms = min_u64(pp->probe.timing.interval_ms, FALLBACK_POLL_MS);
    if (for_good)
        log_fields(LOG_LEVEL_WARN, error, f, 1,
                   "pidfd_open() unavailable, engine exits are seen by polling /proc every %llu "
                   "ms instead of at once; pidfds need Linux >= 5.3 and a seccomp profile that "
                   "allows pidfd_open",
                   period_ms);
    else
        log_fields(LOG_LEVEL_WARN, error, f, 1,
                   "pidfd_open() failed, this engine's exit is seen by polling /proc every %llu ms "
                   "instead of at once",
                   period_ms);
}

static int open_pidfd(struct process_probe *pp, int pid) {
    if (pp->pidfd_fail_error)
        return pp->pidfd_fail_error;
    /* A pidfd is always close-on-exec; PIDFD_NONBLOCK (5.10) only matters to
     * waitid(), which is never called on it, and would fail on 5.3..5.9. */
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    return (int)fd;
}

/* Watch the engine for its exit. Returns 0, or -ESRCH when it is already
 * gone. Anything else falls back to polling. */
static int watch_engine(struct process_probe *pp) {
    if (!pp->pidfd_usable) {
        start_polling(pp);
        return 0;
    }
    int fd = open_pidfd(pp, pp->engine.pid);
    if (fd == -ESRCH)
        return fd;
    if (fd < 0) {
        /* These say "never on this host"; others (EMFILE, ENOMEM) are
         * passing, so the next engine tries again. */
        bool for_good = fd == -ENOSYS || fd == -EPERM || fd == -EINVAL;
        if (for_good)
            pp->pidfd_usable = false;
        warn_fallback(pp, fd, for_good);
        start_polling(pp);
        return 0;
    }
    struct exit_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        start_polling(pp);
        return 0;
    }
    w->pidfd = fd;
    w->owner = pp;
    if (uv_poll_init(pp->probe.loop, &w->poll, fd) < 0) {
        close(fd);
        free(w);
        start_polling(pp);
        return 0;
    }
    pp->open_handles++;
    pp->watch = w;
    if (uv_poll_start(&w->poll, UV_READABLE, on_engine_exit) < 0) {
        drop_watch(pp);
        start_polling(pp);
    }
    return 0;
}

static void forget_engine(struct process_probe *pp) {
    drop_watch(pp);
    pp->known = false;
    pp->in_d = false;
}

/* Take found as the engine; a new identity replacing a known one is a
 * restart, unless it is the child of the lone process taken for the engine
 * so far (that was its watchdog, caught before it forked the engine). */
static void adopt_engine(struct process_probe *pp, const struct procfs_engine *found,
                         struct probe_result *r) {
    const struct procfs_stat *st = &found->stat;
    pp->engine_is_child = found->parent_is_candidate;
    pp->watchdog_pid = found->parent_is_candidate ? st->ppid : 0;
    if (pp->known && st->pid == pp->engine.pid &&
        st->starttime_ticks == pp->engine.starttime_ticks) {
        pp->engine = *st;
        return;
    }
    bool refinement = pp->known && !pp->exited && st->ppid == pp->engine.pid;
    if (pp->ever_known && !refinement) {
        pp->restarts++;
        r->restarted = true;
        r->pid = st->pid; /* even when it is gone again before the result is assessed */
    }
    drop_watch(pp);
    if (!found->parent_is_candidate)
        pp->lone_until_ms = uv_now(pp->probe.loop) + LONE_RESCAN_WINDOW_MS;
    pp->engine = *st;
    pp->known = true;
    pp->ever_known = true;
    pp->in_d = false;
    pp->exited = st->state == 'Z' || st->state == 'X';
    if (!pp->exited && watch_engine(pp) == -ESRCH)
        pp->exited = true; /* reaped between the scan and pidfd_open */
}

/* Turn the engine's current stat into the result. */
static void assess(struct process_probe *pp, const struct procfs_stat *st, struct probe_result *r) {
    r->pid = st->pid;
    switch (st->state) {
    case 'Z':
        /* Already reported here; the exit watch need not say it again. */
        pp->in_d = false;
        pp->exited = true;
        drop_watch(pp);
        r->outcome = PROBE_ZOMBIE;
        snprintf(r->detail, sizeof(r->detail),
                 "engine pid %d is a zombie; parent %d does not reap it", st->pid, st->ppid);
        return;
    case 'X':
        pp->in_d = false;
        pp->exited = true;
        drop_watch(pp);
        r->outcome = PROBE_ABSENT;
        r->pid = 0;
        snprintf(r->detail, sizeof(r->detail), "engine pid %d is dead", st->pid);
        return;
    case 'D': {
        uint64_t now_ms = uv_now(pp->probe.loop);
        if (!pp->in_d) {
            pp->in_d = true;
            pp->d_since_ms = now_ms;
        }
        uint64_t held_ms = now_ms - pp->d_since_ms;
        if (held_ms >= pp->stuck_after_ms) {
            r->outcome = PROBE_STUCK;
            snprintf(r->detail, sizeof(r->detail),
                     "engine pid %d in uninterruptible sleep (D) for %llu ms", st->pid,
                     (unsigned long long)held_ms);
            return;
        }
        r->outcome = PROBE_OK;
        snprintf(r->detail, sizeof(r->detail), "engine pid %d state D for %llu ms", st->pid,
                 (unsigned long long)held_ms);
        return;
    }
    default:
        pp->in_d = false;
        r->outcome = PROBE_OK;
        snprintf(r->detail, sizeof(r->detail), "engine pid %d state %c", st->pid, st->state);
        return;
    }
}

static void set_error(struct probe_result *r, int error, const char *what, const char *path) {
    r->outcome = PROBE_ERROR;
    r->error = error;
    snprintf(r->detail, sizeof(r->detail), "cannot read %s %s: %s", what, path, strerror(-error));
}

/* One look at the engine. Returns true when it was seen to be gone, so the
 * caller pulls the next check forward. */
static bool observe(struct process_probe *pp, struct probe_result *r) {
    /* Gone without the exit watch having said so already. */
    bool was_alive = pp->known && !pp->exited;
    if (pp->known && pp->engine_is_child) {
        struct procfs_stat st;
        int e = procfs_read_stat(pp->proc_root, pp->engine.pid, &st);
        if (e == 0 && st.starttime_ticks == pp->engine.starttime_ticks) {
            assess(pp, &st, r);
            return false;
        }
        if (e < 0 && e != -ENOENT && e != -ESRCH) {
            set_error(r, e, "stat of engine in", pp->proc_root);
            return false;
        }
        forget_engine(pp); /* gone, or its pid reused */
    }

    struct procfs_match m = {.comm = pp->comm, .cgroup = pp->cgroup, .unit = pp->unit};
    struct procfs_engine found;
    int e = procfs_find_engine(pp->proc_root, &m, &found);
    if (e == -ESRCH) {
        forget_engine(pp);
        r->outcome = PROBE_ABSENT;
        snprintf(r->detail, sizeof(r->detail), "no process named %s%s%s%s%s", pp->comm,
                 pp->cgroup ? " in cgroup *" : "", pp->cgroup ? pp->cgroup : "",
                 pp->unit ? " in unit " : "", pp->unit ? pp->unit : "");
        return was_alive;
    }
    if (e < 0) {
        set_error(r, e, "processes in", pp->proc_root);
        return false;
    }
    if (!found.parent_is_candidate && pp->watchdog_pid && found.stat.pid == pp->watchdog_pid) {
        /* The engine's watchdog is there, the engine is not. */
        forget_engine(pp);
        r->outcome = PROBE_ABSENT;
        snprintf(r->detail, sizeof(r->detail), "engine gone; its watchdog pid %d is alive",
                 pp->watchdog_pid);
        return was_alive;
    }
    adopt_engine(pp, &found, r);
    if (pp->exited && found.stat.state != 'Z' && found.stat.state != 'X') {
        r->outcome = PROBE_ABSENT;
        snprintf(r->detail, sizeof(r->detail), "engine pid %d exited", found.stat.pid);
        return true;
    }
    assess(pp, &found.stat, r);
    return false;
}

static int process_check(struct probe *p) {
    struct process_probe *pp = from_probe(p);
    struct probe_result r;
    probe_result_init(&r);
    bool gone = observe(pp, &r);
    if (gone)
        pp->fast_until_ms = uv_now(p->loop) + FAST_RESCAN_WINDOW_MS;
    bool missing = r.outcome != PROBE_OK && r.outcome != PROBE_STUCK;
    probe_complete(p, &r);
    bool lone = pp->known && !pp->engine_is_child && uv_now(p->loop) < pp->lone_until_ms;
    if (gone || lone || (missing && uv_now(p->loop) < pp->fast_until_ms))
        probe_reschedule(p, min_u64(p->timing.interval_ms, RECHECK_AFTER_EXIT_MS));
    return 0;
}

static void process_cancel(struct probe *p) {
    /* Checks complete before check() returns: nothing is ever in flight. */
}

static void process_close(struct probe *p) {
    struct process_probe *pp = from_probe(p);
    pp->kind_closing = true;
    drop_watch(pp);
    uv_close((uv_handle_t *)&pp->poll_timer, on_poll_timer_closed);
}

static void process_free(struct probe *p) {
    struct process_probe *pp = from_probe(p);
    free(pp->comm);
    free(pp->cgroup);
    free(pp->unit);
    free(pp->proc_root);
    free(pp);
}

static const struct probe_ops process_ops = {
    .kind = "process",
    .check = process_check,
    .cancel = process_cancel,
    .close = process_close,
    .free = process_free,
};

/* strdup that keeps NULL, and turns "" into NULL ("no filter"). */
static int copy_optional(char **dst, const char *src) {
    *dst = NULL;
    if (!src || !*src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

/* Is root this kernel's /proc ("/proc", "/proc/", "//proc")? */
static bool is_own_proc(const char *root) {
    while (*root == '/')
        root++;
    if (strncmp(root, "proc", 4) != 0)
        return false;
    root += 4;
    while (*root == '/')
        root++;
    return *root == '\0';
}

struct probe *process_probe_new(uv_loop_t *loop, const char *name, const struct process_match *m,
                                const struct probe_timing *timing) {
    static const struct process_match defaults = {0};
    if (!m)
        m = &defaults;
    struct process_probe *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return NULL;
    pp->comm = strdup(m->comm && *m->comm ? m->comm : DEFAULT_COMM);
    pp->proc_root = strdup(m->proc_root && *m->proc_root ? m->proc_root : "/proc");
    if (!pp->comm || !pp->proc_root)
        goto fail;
    if (copy_optional(&pp->cgroup, m->cgroup) < 0 || copy_optional(&pp->unit, m->unit) < 0)
        goto fail;
    pp->stuck_after_ms = m->stuck_after_ms ? m->stuck_after_ms : DEFAULT_STUCK_AFTER_MS;
    pp->pidfd_usable = is_own_proc(pp->proc_root);
    /* probe_init allocates only the name; its timers cannot fail to init. */
    if (probe_init(&pp->probe, loop, &process_ops, name ? name : "process", timing) < 0)
        goto fail;
    uv_timer_init(loop, &pp->poll_timer);
    pp->open_handles = 1;
    return &pp->probe;
fail:
    free(pp->comm);
    free(pp->cgroup);
    free(pp->unit);
    free(pp->proc_root);
    free(pp);
    return NULL;
}

uint64_t process_probe_restarts(const struct probe *p) {
    return container_of(p, const struct process_probe, probe)->restarts;
}

void process_probe_fail_pidfd(struct probe *p, int error) {
    from_probe(p)->pidfd_fail_error = error;
}
