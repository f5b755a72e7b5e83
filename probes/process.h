/*
 * The `process` probe: is the SQL Server engine process there, and alive?
 * A check finds the engine through procfs (the child when a watchdog parent
 * and an engine child share the name) and reports ok, absent, zombie, stuck
 * (D state held for stuck_after_ms, measured on the loop clock across checks)
 * or error (/proc unreadable). Between checks the engine is watched through a
 * pidfd, so its exit is reported at once as an unsolicited result instead of
 * at the next check; where pidfds are unavailable it polls /proc instead. A
 * new engine replacing a known one is a restart: counted, and flagged on the
 * first result that carries the new pid. The probe owns copies of the match
 * strings and all its handles; it is freed through probe_close().
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "probe.h"

struct process_match {
    const char *comm;        /* default "sqlservr" when NULL */
    const char *cgroup;      /* cgroup path fragment (pod UID) or NULL */
    const char *unit;        /* systemd unit or NULL */
    uint64_t stuck_after_ms; /* D state held this long is "stuck"; 0 = default 30000 */
    const char *proc_root;   /* NULL = "/proc" (tests) */
};

/*
 * A new process probe; m (may be NULL for all defaults) and its strings are
 * borrowed and copied. Returns NULL on ENOMEM. Start it with probe_start() or
 * probe_check_once(); release it with probe_close().
 *
 * With a proc_root other than "/proc" (a fake tree, or a host /proc mounted
 * elsewhere, whose pids belong to another pid namespace) a pidfd could name
 * the wrong process, so the engine is watched by polling instead, silently.
 */
struct probe *process_probe_new(uv_loop_t *loop, const char *name, const struct process_match *m,
                                const struct probe_timing *timing);

/* New engine PIDs seen that replaced a known engine (the first one found is
 * not a restart). */
uint64_t process_probe_restarts(const struct probe *p);

/* Test hook: make this probe's pidfd_open() calls fail with error (-ENOSYS,
 * -EPERM, -EINVAL: as on a kernel or seccomp profile without pidfds) so the
 * polling fallback can be exercised on a kernel that has them. 0 restores. */
void process_probe_fail_pidfd(struct probe *p, int error);
