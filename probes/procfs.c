/*
 * /proc parsing for the process probe. Files are read whole into bounded
 * buffers with a short-read loop (procfs hands out a file in pieces) and
 * refused when larger than the bound, so a hostile or broken tree cannot make
 * the agent allocate without limit. The stat parser walks the text by length,
 * never past it, and finds comm's end at the last ')' because comm is
 * user-controlled (prctl) and may itself hold ") ". The scan keeps going past
 * processes that vanish under it: /proc changes while we read it.
 */
#include "procfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read a whole file into buf (size bytes incl. the NUL). Returns its length,
 * -EFBIG when it holds more than size - 1 bytes, or -errno. */
static int read_bounded(const char *path, char *buf, size_t size) {
    if (size < 2 || size > INT_MAX)
        return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    int r = 0;
    for (;;) {
        ssize_t n;
        if (len < size - 1) {
            n = read(fd, buf + len, size - 1 - len);
        } else {
            /* Full: one more byte decides between "exactly fits" and "too big". */
            char extra;
            n = read(fd, &extra, 1);
            if (n > 0) {
                r = -EFBIG;
                goto out;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    r = (int)len;
out:
    close(fd);
    return r;
}

static int proc_path(char *path, size_t size, const char *proc_root, int pid, const char *file) {
    if (pid <= 0)
        return -EINVAL;
    int n = snprintf(path, size, "%s/%d/%s", proc_root, pid, file);
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return 0;
}

/* Parse decimal digits in [s, s + len) into a uint64_t; all of the span must
 * be digits. */
static int parse_u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *s, size_t len, int *out) {
    uint64_t v;
    int r = parse_u64(s, len, &v);
    if (r < 0)
        return r;
    if (v > INT_MAX)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* The next space-separated field at *p (which must point at the separating
 * space); a newline ends the last field. */
static int next_field(const char **p, const char *end, const char **field, size_t *len) {
    const char *s = *p;
    if (s >= end || *s != ' ')
        return -EINVAL;
    s++;
    const char *e = s;
    while (e < end && *e != ' ' && *e != '\n')
        e++;
    if (e == s)
        return -EINVAL;
    *field = s;
    *len = (size_t)(e - s);
    *p = e;
    return 0;
}

int procfs_parse_stat(const char *text, size_t len, struct procfs_stat *out) {
    const char *end = text + len;
    const char *p = text;
    struct procfs_stat st = {0};

    /* Field 1: pid, then " (". */
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (parse_int(text, (size_t)(p - text), &st.pid) < 0 || st.pid <= 0)
        return -EINVAL;
    if (end - p < 2 || p[0] != ' ' || p[1] != '(')
        return -EINVAL;
    const char *comm = p + 2;

    /* Field 2: comm, up to the last ')'. */
    const char *close = NULL;
    for (const char *q = end; q > comm; q--) {
        if (q[-1] == ')') {
            close = q - 1;
            break;
        }
    }
    if (!close)
        return -EINVAL;
    size_t comm_len = (size_t)(close - comm);
    if (comm_len > sizeof(st.comm) - 1)
        comm_len = sizeof(st.comm) - 1;
    memcpy(st.comm, comm, comm_len);
    st.comm[comm_len] = '\0';
    if (memchr(st.comm, '\0', comm_len))
        return -EINVAL;
    p = close + 1;

    /* Field 3: state, one character. */
    const char *f;
    size_t flen;
    if (next_field(&p, end, &f, &flen) < 0 || flen != 1)
        return -EINVAL;
    st.state = f[0];

    /* Field 4: ppid (0 for init and kthreadd). */
    if (next_field(&p, end, &f, &flen) < 0 || parse_int(f, flen, &st.ppid) < 0)
        return -EINVAL;

    /* Fields 5..21 are skipped; some may be negative. */
    for (int i = 5; i <= 21; i++)
        if (next_field(&p, end, &f, &flen) < 0)
            return -EINVAL;

    /* Field 22: starttime. */
    if (next_field(&p, end, &f, &flen) < 0 || parse_u64(f, flen, &st.starttime_ticks) < 0)
        return -EINVAL;

    *out = st;
    return 0;
}

int procfs_read_stat(const char *proc_root, int pid, struct procfs_stat *out) {
    char path[PATH_MAX];
    char text[PROCFS_STAT_MAX_BYTES];
    int r = proc_path(path, sizeof(path), proc_root, pid, "stat");
    if (r < 0)
        return r;
    r = read_bounded(path, text, sizeof(text));
    if (r < 0)
        return r;
    return procfs_parse_stat(text, (size_t)r, out);
}

int procfs_read_cgroup(const char *proc_root, int pid, char *buf, size_t size) {
    char path[PATH_MAX];
    int r = proc_path(path, sizeof(path), proc_root, pid, "cgroup");
    if (r < 0)
        return r;
    return read_bounded(path, buf, size);
}

bool procfs_comm_matches(const char *stat_comm, const char *want) {
    size_t n = strnlen(want, PROCFS_COMM_MATCH_LEN);
    return n > 0 && strlen(stat_comm) == n && memcmp(stat_comm, want, n) == 0;
}

static bool same_uid_char(char a, char b) {
    return a == b || ((a == '-' || a == '_') && (b == '-' || b == '_'));
}

/* Does needle occur in [hay, hay + hay_len), '-' and '_' comparing equal? */
static bool contains_fragment(const char *hay, size_t hay_len, const char *needle) {
    size_t n = strlen(needle);
    if (n > hay_len)
        return false;
    for (size_t i = 0; i + n <= hay_len; i++) {
        size_t j = 0;
        while (j < n && same_uid_char(hay[i + j], needle[j]))
            j++;
        if (j == n)
            return true;
    }
    return false;
}

static bool has_component(const char *path, size_t path_len, const char *unit) {
    size_t n = strlen(unit);
    const char *end = path + path_len;
    const char *s = path;
    while (s < end) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *e = slash ? slash : end;
        if ((size_t)(e - s) == n && memcmp(s, unit, n) == 0)
            return true;
        s = e + 1;
    }
    return false;
}

bool procfs_cgroup_matches(const char *cgroup_text, const char *fragment, const char *unit) {
    bool want_fragment = fragment && *fragment;
    bool want_unit = unit && *unit;
    bool fragment_found = !want_fragment;
    bool unit_found = !want_unit;

    const char *line = cgroup_text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        const char *line_end = nl ? nl : line + strlen(line);
        /* "hierarchy-id:controllers:path"; the path may itself hold ':'. */
        const char *c1 = memchr(line, ':', (size_t)(line_end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line_end - c1 - 1)) : NULL;
        if (c2) {
            const char *path = c2 + 1;
            size_t path_len = (size_t)(line_end - path);
            if (want_fragment && contains_fragment(path, path_len, fragment))
                fragment_found = true;
            if (want_unit && has_component(path, path_len, unit))
                unit_found = true;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return fragment_found && unit_found;
}

static bool is_candidate_pid(const struct procfs_stat *c, size_t n, size_t self, int pid) {
    for (size_t i = 0; i < n; i++)
        if (i != self && c[i].pid == pid)
            return true;
    return false;
}

static bool has_candidate_child(const struct procfs_stat *c, size_t n, size_t self) {
    for (size_t i = 0; i < n; i++)
        if (i != self && c[i].ppid == c[self].pid)
            return true;
    return false;
}

/* Is a better than b under the rules in procfs.h (rules 1 to 4)? */
static bool ranks_before(const struct procfs_stat *a, bool a_child, const struct procfs_stat *b,
                         bool b_child) {
    if (a_child != b_child)
        return a_child;
    bool a_zombie = a->state == 'Z';
    bool b_zombie = b->state == 'Z';
    if (a_zombie != b_zombie)
        return !a_zombie;
    if (a->starttime_ticks != b->starttime_ticks)
        return a->starttime_ticks < b->starttime_ticks;
    return a->pid < b->pid;
}

int procfs_choose(const struct procfs_stat *c, size_t n, bool *parent_is_candidate) {
    bool any_leaf = false;
    for (size_t i = 0; i < n && !any_leaf; i++)
        any_leaf = !has_candidate_child(c, n, i);

    int best = -ESRCH;
    bool best_child = false;
    for (size_t i = 0; i < n; i++) {
        if (any_leaf && has_candidate_child(c, n, i))
            continue;
        bool child = is_candidate_pid(c, n, i, c[i].ppid);
        if (best < 0 || ranks_before(&c[i], child, &c[best], best_child)) {
            best = (int)i;
            best_child = child;
        }
    }
    if (best >= 0 && parent_is_candidate)
        *parent_is_candidate = best_child;
    return best;
}

static bool all_digits(const char *s) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

int procfs_find_engine(const char *proc_root, const struct procfs_match *m,
                       struct procfs_engine *out) {
    if (!m->comm || !*m->comm)
        return -EINVAL;
    bool filtered = (m->cgroup && *m->cgroup) || (m->unit && *m->unit);
    struct procfs_stat *cand = NULL;
    size_t n = 0, cap = 0;
    char *cgroup = NULL;
    int r = 0;

    DIR *dir = opendir(proc_root);
    if (!dir)
        return -errno;
    if (filtered) {
        cgroup = malloc(PROCFS_CGROUP_MAX_BYTES);
        if (!cgroup) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno) {
                r = -errno;
                goto out;
            }
            break;
        }
        int pid;
        if (!all_digits(de->d_name) || parse_int(de->d_name, strlen(de->d_name), &pid) < 0)
            continue;
        struct procfs_stat st;
        if (procfs_read_stat(proc_root, pid, &st) < 0 || st.pid != pid)
            continue;
        if (!procfs_comm_matches(st.comm, m->comm))
            continue;
        if (filtered) {
            if (procfs_read_cgroup(proc_root, pid, cgroup, PROCFS_CGROUP_MAX_BYTES) < 0)
                continue;
            if (!procfs_cgroup_matches(cgroup, m->cgroup, m->unit))
                continue;
        }
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 8;
            struct procfs_stat *grown = realloc(cand, new_cap * sizeof(*cand));
            if (!grown) {
                r = -ENOMEM;
                goto out;
            }
            cand = grown;
            cap = new_cap;
        }
        cand[n++] = st;
    }

    bool parent_is_candidate = false;
    int i = procfs_choose(cand, n, &parent_is_candidate);
    if (i < 0) {
        r = i;
        goto out;
    }
    *out = (struct procfs_engine){
        .stat = cand[i],
        .parent_is_candidate = parent_is_candidate,
        .candidates = n,
    };
out:
    closedir(dir);
    free(cgroup);
    free(cand);
    return r;
}
