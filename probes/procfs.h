/*
 * Reading /proc to find the SQL Server engine. This module parses
 * /proc/<pid>/stat and /proc/<pid>/cgroup, scans for processes by name and
 * cgroup, and picks the engine among them. It is pure apart from bounded
 * reads of small procfs files: it never logs, never blocks on anything but
 * procfs, and keeps no state. Every function takes the proc root directory
 * ("/proc" in production, a fake tree under a temp dir in tests, or a host's
 * /proc mounted elsewhere). The caller owns every buffer and struct passed
 * in; nothing returned points into module storage.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel truncates comm to 15 bytes (TASK_COMM_LEN 16), except for
 * workqueue kthreads, whose stat comm carries up to 63 bytes. */
#define PROCFS_COMM_MATCH_LEN 15
#define PROCFS_COMM_MAX       64
/* No stat file the kernel writes comes close (52 fields of at most 20 digits
 * plus comm); a larger file is not a stat file and is refused. */
#define PROCFS_STAT_MAX_BYTES 4096
/* /proc/<pid>/cgroup: one line per v1 hierarchy plus the v2 line. */
#define PROCFS_CGROUP_MAX_BYTES 16384

struct procfs_stat {
    int pid;
    char comm[PROCFS_COMM_MAX]; /* NUL-terminated; silently cut at 63 bytes */
    char state;                 /* 'R', 'S', 'D', 'Z', 'T', ... */
    int ppid;
    uint64_t starttime_ticks; /* field 22: clock ticks after boot */
};

/* Which processes are candidates. Strings are borrowed; NULL or "" means
 * "any" for cgroup and unit. */
struct procfs_match {
    const char *comm;   /* compared with stat's comm on its first 15 bytes */
    const char *cgroup; /* a fragment of a cgroup path, e.g. a pod UID */
    const char *unit;   /* a systemd unit, e.g. "mssql-server.service" */
};

struct procfs_engine {
    struct procfs_stat stat;
    bool parent_is_candidate; /* the engine child of a same-named watchdog */
    size_t candidates;        /* how many processes matched */
};

/* Parse the text of a stat file (len bytes, need not be NUL-terminated).
 * comm is taken between the first '(' and the LAST ')', so names holding
 * spaces or parentheses parse. Returns 0, or -EINVAL when malformed or
 * truncated before field 22. */
int procfs_parse_stat(const char *text, size_t len, struct procfs_stat *out);

/* Read and parse <proc_root>/<pid>/stat. Returns 0; -ENOENT or -ESRCH when
 * the process is gone; -EFBIG when the file exceeds PROCFS_STAT_MAX_BYTES;
 * -EINVAL when malformed; other -errno from open/read. */
int procfs_read_stat(const char *proc_root, int pid, struct procfs_stat *out);

/* Read <proc_root>/<pid>/cgroup into buf (size bytes, NUL-terminated).
 * Returns the length, or -EFBIG when it does not fit, or -errno. */
int procfs_read_cgroup(const char *proc_root, int pid, char *buf, size_t size);

/* Does a stat comm name the wanted process? want is cut at 15 bytes, as the
 * kernel cuts comm, and the rest must match exactly. */
bool procfs_comm_matches(const char *stat_comm, const char *want);

/* Does the text of a cgroup file (v1 "id:controllers:/path" and v2
 * "0::/path" lines) satisfy both filters? fragment (NULL/"" = any) must occur
 * in some line's path, '-' and '_' comparing equal: the systemd cgroup driver
 * writes pod UIDs with underscores ("kubepods-besteffort-pod1b2c_3d4e.slice"),
 * cgroupfs with dashes. unit (NULL/"" = any) must equal one whole '/'-separated
 * component of some line's path. */
bool procfs_cgroup_matches(const char *cgroup_text, const char *fragment, const char *unit);

/*
 * Pick the engine among n candidates; returns its index, or -ESRCH when n is
 * 0. SQL Server runs a watchdog parent and an engine child with the same
 * name, so only leaves are eligible: a candidate that is the parent of another
 * candidate is a watchdog. Among eligible candidates, in order:
 *   1. one whose parent is a candidate (an engine child) beats a lone process;
 *   2. one that is not a zombie beats a zombie;
 *   3. the earliest starttime wins (the established engine, not a newcomer);
 *   4. the lowest pid wins.
 * If no candidate is a leaf (a parent cycle, only in fake trees) all are
 * eligible. *parent_is_candidate (may be NULL) says whether rule 1 held.
 */
int procfs_choose(const struct procfs_stat *candidates, size_t n, bool *parent_is_candidate);

/* Scan proc_root for candidates matching m (m->comm required) and choose the
 * engine with procfs_choose(). Processes that vanish or whose files cannot be
 * read during the scan are skipped. Returns 0 with *out set, -ESRCH when no
 * process matches, -EINVAL for an empty comm, -ENOMEM, or -errno when
 * proc_root itself cannot be read. */
int procfs_find_engine(const char *proc_root, const struct procfs_match *m,
                       struct procfs_engine *out);
