/*
 * Tests for probes/procfs.c: the stat parser on the shapes comm can take and
 * on broken files, cgroup matching on v1 and v2 lines as the cgroupfs and
 * systemd drivers write them, engine choice among candidates, and the scan
 * over a fake proc tree built in a fresh temp dir per test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procfs.h"

/* A stat line as the kernel writes it, with the fields this module reads set. */
static void stat_line(char *buf, size_t size, int pid, const char *comm, char state, int ppid,
                      unsigned long long starttime) {
    snprintf(buf, size,
             "%d (%s) %c %d %d %d 0 -1 4194560 1234 0 0 0 10 5 0 0 20 0 57 0 %llu "
             "2217472000 123456 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 "
             "0 0 0 0 0 0 0 0 0 0\n",
             pid, comm, state, ppid, pid, pid, starttime);
}

static int parse(const char *s, struct procfs_stat *st) {
    return procfs_parse_stat(s, strlen(s), st);
}

START_TEST(stat_plain) {
    char line[512];
    struct procfs_stat st;
    stat_line(line, sizeof(line), 4321, "sqlservr", 'S', 4300, 987654);
    ck_assert_int_eq(parse(line, &st), 0);
    ck_assert_int_eq(st.pid, 4321);
    ck_assert_str_eq(st.comm, "sqlservr");
    ck_assert_int_eq(st.state, 'S');
    ck_assert_int_eq(st.ppid, 4300);
    ck_assert_uint_eq(st.starttime_ticks, 987654);
}
END_TEST

START_TEST(stat_comm_with_spaces_and_parens) {
    char line[512];
    struct procfs_stat st;
    stat_line(line, sizeof(line), 42, "a) b (c) D 1", 'R', 7, 11);
    ck_assert_int_eq(parse(line, &st), 0);
    ck_assert_str_eq(st.comm, "a) b (c) D 1");
    ck_assert_int_eq(st.state, 'R');
    ck_assert_int_eq(st.ppid, 7);
    ck_assert_uint_eq(st.starttime_ticks, 11);

    stat_line(line, sizeof(line), 5, ")", 'Z', 1, 3);
    ck_assert_int_eq(parse(line, &st), 0);
    ck_assert_str_eq(st.comm, ")");
    ck_assert_int_eq(st.state, 'Z');

    stat_line(line, sizeof(line), 6, "", 'S', 0, 0);
    ck_assert_int_eq(parse(line, &st), 0);
    ck_assert_str_eq(st.comm, "");
    ck_assert_int_eq(st.ppid, 0);
}
END_TEST

START_TEST(stat_long_comm_is_cut) {
    char comm[200], line[1024];
    struct procfs_stat st;
    memset(comm, 'k', sizeof(comm) - 1);
    comm[sizeof(comm) - 1] = '\0';
    stat_line(line, sizeof(line), 77, comm, 'I', 2, 5);
    ck_assert_int_eq(parse(line, &st), 0);
    ck_assert_uint_eq(strlen(st.comm), PROCFS_COMM_MAX - 1);
    ck_assert_uint_eq(st.starttime_ticks, 5);
}
END_TEST

START_TEST(stat_malformed) {
    char line[512];
    struct procfs_stat st = {.pid = -1};
    stat_line(line, sizeof(line), 4321, "sqlservr", 'S', 4300, 987654);

    /* Truncated anywhere before the end of field 22: refused. */
    const char *f22 = strstr(line, " 987654");
    ck_assert_ptr_nonnull(f22);
    size_t full = (size_t)(f22 - line) + strlen(" 987654");
    for (size_t len = 0; len <= (size_t)(f22 - line); len++)
        ck_assert_msg(procfs_parse_stat(line, len, &st) == -EINVAL, "len %zu accepted", len);
    /* Exactly up to field 22, no newline: accepted. */
    ck_assert_int_eq(procfs_parse_stat(line, full, &st), 0);
    ck_assert_uint_eq(st.starttime_ticks, 987654);

    ck_assert_int_eq(parse("12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st), 0);
    ck_assert_uint_eq(st.starttime_ticks, 5);
    st.pid = 4321;
    ck_assert_int_eq(parse("", &st), -EINVAL);
    ck_assert_int_eq(parse("(sqlservr) S 1", &st), -EINVAL);
    ck_assert_int_eq(parse("12 sqlservr S 1 2 3", &st), -EINVAL);
    ck_assert_int_eq(parse("12 (sqlservr S 1 2 3", &st), -EINVAL);
    ck_assert_int_eq(parse("0 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st), -EINVAL);
    ck_assert_int_eq(parse("99999999999 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st),
                     -EINVAL);
    ck_assert_int_eq(parse("12 (x) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st), -EINVAL);
    ck_assert_int_eq(parse("12 (x) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st), -EINVAL);
    ck_assert_int_eq(parse("12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 abc\n", &st), -EINVAL);
    ck_assert_int_eq(
        parse("12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999\n", &st),
        -EINVAL);
    ck_assert_int_eq(parse("12 (x) S 1  1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5\n", &st), -EINVAL);
    /* Nothing was written on failure. */
    ck_assert_int_eq(st.pid, 4321);
}
END_TEST

START_TEST(stat_not_nul_terminated) {
    char line[512];
    struct procfs_stat st;
    stat_line(line, sizeof(line), 9, "x", 'S', 1, 4);
    size_t len = strlen(line);
    char *exact = malloc(len); /* no room for a NUL: ASan catches any overread */
    ck_assert_ptr_nonnull(exact);
    memcpy(exact, line, len);
    ck_assert_int_eq(procfs_parse_stat(exact, len, &st), 0);
    ck_assert_uint_eq(st.starttime_ticks, 4);
    free(exact);
}
END_TEST

/* ---- a fake proc tree ---- */

static char root[PATH_MAX];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static void tree_setup(void) {
    snprintf(root, sizeof(root), "%s/procfs-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void tree_teardown(void) {
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_file(int pid, const char *name, const char *text, size_t len) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%d", root, pid);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%d/%s", root, pid, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void put_proc(int pid, const char *comm, char state, int ppid, unsigned long long start,
                     const char *cgroup) {
    char line[512];
    stat_line(line, sizeof(line), pid, comm, state, ppid, start);
    put_file(pid, "stat", line, strlen(line));
    put_file(pid, "cgroup", cgroup ? cgroup : "0::/\n", strlen(cgroup ? cgroup : "0::/\n"));
}

START_TEST(read_stat_files) {
    struct procfs_stat st;
    put_proc(100, "sqlservr", 'S', 1, 500, NULL);
    ck_assert_int_eq(procfs_read_stat(root, 100, &st), 0);
    ck_assert_int_eq(st.pid, 100);
    ck_assert_uint_eq(st.starttime_ticks, 500);

    ck_assert_int_eq(procfs_read_stat(root, 101, &st), -ENOENT);
    ck_assert_int_eq(procfs_read_stat(root, 0, &st), -EINVAL);
    ck_assert_int_eq(procfs_read_stat(root, -3, &st), -EINVAL);

    /* A file larger than any stat the kernel writes is refused, not read. */
    size_t huge = 1 << 20;
    char *big = malloc(huge);
    ck_assert_ptr_nonnull(big);
    char line[512];
    stat_line(line, sizeof(line), 102, "sqlservr", 'S', 1, 5);
    memset(big, ' ', huge);
    memcpy(big, line, strlen(line));
    put_file(102, "stat", big, huge);
    ck_assert_int_eq(procfs_read_stat(root, 102, &st), -EFBIG);

    /* Exactly at the bound (4095 bytes) still fits; one more does not. */
    memset(big, '0', huge);
    size_t prefix = strlen(line) - 1; /* keep everything but the newline */
    memcpy(big, line, prefix);
    big[prefix] = ' ';
    put_file(103, "stat", big, PROCFS_STAT_MAX_BYTES - 1);
    ck_assert_int_eq(procfs_read_stat(root, 103, &st), 0);
    ck_assert_int_eq(st.pid, 102); /* the text's pid, not the directory's */
    put_file(104, "stat", big, PROCFS_STAT_MAX_BYTES);
    ck_assert_int_eq(procfs_read_stat(root, 104, &st), -EFBIG);

    /* Truncated file. */
    put_file(105, "stat", line, 40);
    ck_assert_int_eq(procfs_read_stat(root, 105, &st), -EINVAL);
    put_file(106, "stat", "", 0);
    ck_assert_int_eq(procfs_read_stat(root, 106, &st), -EINVAL);

    char cg[64];
    put_file(107, "cgroup", "0::/a/b\n", 8);
    ck_assert_int_eq(procfs_read_cgroup(root, 107, cg, sizeof(cg)), 8);
    ck_assert_str_eq(cg, "0::/a/b\n");
    put_file(108, "cgroup", big, 64);
    ck_assert_int_eq(procfs_read_cgroup(root, 108, cg, sizeof(cg)), -EFBIG);
    put_file(109, "cgroup", big, 63);
    ck_assert_int_eq(procfs_read_cgroup(root, 109, cg, sizeof(cg)), 63);
    free(big);
}
END_TEST

START_TEST(comm_match) {
    ck_assert(procfs_comm_matches("sqlservr", "sqlservr"));
    ck_assert(!procfs_comm_matches("sqlservr2", "sqlservr"));
    ck_assert(!procfs_comm_matches("sqlserv", "sqlservr"));
    ck_assert(!procfs_comm_matches("SQLSERVR", "sqlservr"));
    /* The kernel keeps 15 bytes of a longer name. */
    ck_assert(procfs_comm_matches("averyverylongco", "averyverylongcommand"));
    ck_assert(procfs_comm_matches("averyverylongco", "averyverylongco"));
    ck_assert(!procfs_comm_matches("averyverylongc", "averyverylongcommand"));
    ck_assert(!procfs_comm_matches("", ""));
}
END_TEST

static const char v1_cgroupfs[] =
    "12:pids:/kubepods/burstable/pod1b2c3d4e-aaaa-bbbb-cccc-0123456789ab/"
    "0f1e2d3c4b5a\n"
    "11:memory:/kubepods/burstable/pod1b2c3d4e-aaaa-bbbb-cccc-0123456789ab/0f1e2d3c4b5a\n"
    "1:name=systemd:/kubepods/burstable/pod1b2c3d4e-aaaa-bbbb-cccc-0123456789ab/0f1e2d3c4b5a\n";
static const char v2_systemd_driver[] =
    "0::/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod1b2c3d4e_aaaa_bbbb_cccc_0123456789ab.slice/"
    "cri-containerd-0f1e2d3c4b5a.scope\n";
static const char v1_unit[] = "4:memory:/system.slice/mssql-server.service\n"
                              "1:name=systemd:/system.slice/mssql-server.service\n"
                              "0::/system.slice/mssql-server.service";
static const char v2_unit[] = "0::/system.slice/mssql-server.service/payload\n";

START_TEST(cgroup_pod_uid) {
    const char *uid = "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab";
    const char *uid_us = "1b2c3d4e_aaaa_bbbb_cccc_0123456789ab";
    ck_assert(procfs_cgroup_matches(v1_cgroupfs, uid, NULL));
    ck_assert(procfs_cgroup_matches(v2_systemd_driver, uid, NULL));
    ck_assert(procfs_cgroup_matches(v1_cgroupfs, uid_us, NULL));
    ck_assert(procfs_cgroup_matches(v2_systemd_driver, uid_us, NULL));
    ck_assert(procfs_cgroup_matches(v2_systemd_driver, "pod1b2c3d4e-aaaa", ""));
    ck_assert(
        !procfs_cgroup_matches(v2_systemd_driver, "1b2c3d4e-aaaa-bbbb-cccc-0123456789ac", NULL));
    ck_assert(!procfs_cgroup_matches(v1_unit, uid, NULL));
    /* Only the path counts, not the controller list. */
    ck_assert(!procfs_cgroup_matches("11:memory:/\n", "memory", NULL));
    ck_assert(procfs_cgroup_matches("11:memory:/\n", NULL, NULL));
    ck_assert(procfs_cgroup_matches("", NULL, NULL));
    ck_assert(!procfs_cgroup_matches("", uid, NULL));
    /* Garbage lines without a path are ignored. */
    ck_assert(!procfs_cgroup_matches("1b2c3d4e-aaaa-bbbb-cccc-0123456789ab\n", uid, NULL));
    /* A path may hold ':'. */
    ck_assert(procfs_cgroup_matches("0::/x:pod1b2c3d4e-aaaa-bbbb-cccc-0123456789ab\n", uid, NULL));
}
END_TEST

START_TEST(cgroup_unit) {
    const char *unit = "mssql-server.service";
    ck_assert(procfs_cgroup_matches(v1_unit, NULL, unit));
    ck_assert(procfs_cgroup_matches(v2_unit, NULL, unit));
    ck_assert(!procfs_cgroup_matches(v2_unit, NULL, "mssql-server"));
    ck_assert(!procfs_cgroup_matches(v2_unit, NULL, "server.service"));
    ck_assert(!procfs_cgroup_matches("0::/system.slice/mssql-server.service.d\n", NULL, unit));
    ck_assert(!procfs_cgroup_matches("0::/system.slice/xmssql-server.service\n", NULL, unit));
    ck_assert(!procfs_cgroup_matches(v2_systemd_driver, NULL, unit));
    /* Both filters must hold. */
    ck_assert(procfs_cgroup_matches(v2_unit, "system.slice", unit));
    ck_assert(!procfs_cgroup_matches(v2_unit, "kubepods", unit));
}
END_TEST

static struct procfs_stat cand(int pid, int ppid, char state, uint64_t start) {
    return (struct procfs_stat){
        .pid = pid, .ppid = ppid, .state = state, .starttime_ticks = start, .comm = "sqlservr"};
}

START_TEST(choose_rules) {
    bool child = true;
    ck_assert_int_eq(procfs_choose(NULL, 0, &child), -ESRCH);

    /* Lone process: it is the engine, without a candidate parent. */
    struct procfs_stat one[] = {cand(10, 1, 'S', 5)};
    ck_assert_int_eq(procfs_choose(one, 1, &child), 0);
    ck_assert(!child);

    /* Watchdog and engine: the child, listed in either order. */
    struct procfs_stat pair[] = {cand(10, 1, 'S', 5), cand(11, 10, 'S', 6)};
    ck_assert_int_eq(procfs_choose(pair, 2, &child), 1);
    ck_assert(child);
    struct procfs_stat rpair[] = {cand(11, 10, 'S', 6), cand(10, 1, 'S', 5)};
    ck_assert_int_eq(procfs_choose(rpair, 2, &child), 0);
    ck_assert(child);

    /* A zombie engine child is still the engine: the watchdog is not. */
    struct procfs_stat zpair[] = {cand(10, 1, 'S', 5), cand(11, 10, 'Z', 6)};
    ck_assert_int_eq(procfs_choose(zpair, 2, &child), 1);

    /* An engine child beats an older lone instance (rule 1). */
    struct procfs_stat mixed[] = {cand(5, 1, 'S', 1), cand(10, 1, 'S', 5), cand(11, 10, 'S', 6)};
    ck_assert_int_eq(procfs_choose(mixed, 3, &child), 2);

    /* Two children of one watchdog: a live one beats a zombie (rule 2). */
    struct procfs_stat two[] = {cand(10, 1, 'S', 5), cand(11, 10, 'Z', 6), cand(12, 10, 'S', 9)};
    ck_assert_int_eq(procfs_choose(two, 3, &child), 2);

    /* Two instances: the earliest start (rule 3), then the lowest pid (rule 4),
     * whatever the order they were listed in. */
    struct procfs_stat inst[] = {cand(30, 1, 'S', 50), cand(31, 30, 'S', 51), cand(20, 1, 'S', 60),
                                 cand(21, 20, 'S', 61)};
    ck_assert_int_eq(procfs_choose(inst, 4, &child), 1);
    struct procfs_stat tie[] = {cand(30, 1, 'S', 50), cand(41, 30, 'S', 51), cand(20, 1, 'S', 50),
                                cand(40, 20, 'S', 51)};
    ck_assert_int_eq(procfs_choose(tie, 4, &child), 3);
    struct procfs_stat lone_tie[] = {cand(9, 1, 'S', 7), cand(8, 1, 'S', 7)};
    ck_assert_int_eq(procfs_choose(lone_tie, 2, &child), 1);
    ck_assert(!child);

    /* A chain picks the leaf. */
    struct procfs_stat chain[] = {cand(10, 1, 'S', 5), cand(11, 10, 'S', 6), cand(12, 11, 'S', 7)};
    ck_assert_int_eq(procfs_choose(chain, 3, &child), 2);

    /* A cycle (only a fake tree can hold one) still yields an answer. */
    struct procfs_stat cycle[] = {cand(10, 11, 'S', 5), cand(11, 10, 'S', 6)};
    ck_assert_int_eq(procfs_choose(cycle, 2, &child), 0);
    ck_assert(child);
}
END_TEST

START_TEST(scan_tree) {
    struct procfs_engine e;
    struct procfs_match m = {.comm = "sqlservr"};
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), -ESRCH);

    put_proc(1, "systemd", 'S', 0, 1, NULL);
    put_proc(200, "sqlservr2", 'S', 1, 10, NULL);
    put_proc(201, "sqlserv", 'S', 1, 10, NULL);
    put_proc(300, "sqlservr", 'S', 1, 100, v2_unit);
    put_proc(301, "sqlservr", 'S', 300, 101, v2_unit);
    put_proc(400, "sqlservr", 'S', 1, 200, v2_systemd_driver);
    put_proc(401, "sqlservr", 'S', 400, 201, v2_systemd_driver);
    put_file(402, "stat", "garbage", 7); /* skipped */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/self", root);
    mkdir(path, 0755); /* not a pid */
    snprintf(path, sizeof(path), "%s/500", root);
    mkdir(path, 0755); /* a process that vanished: no files */

    /* No filter: the oldest engine child. */
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), 0);
    ck_assert_int_eq(e.stat.pid, 301);
    ck_assert(e.parent_is_candidate);
    ck_assert_uint_eq(e.candidates, 4);

    /* By pod UID as the API gives it (dashes) though the path has underscores. */
    m.cgroup = "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab";
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), 0);
    ck_assert_int_eq(e.stat.pid, 401);
    ck_assert_uint_eq(e.candidates, 2);

    /* By unit. */
    m.cgroup = NULL;
    m.unit = "mssql-server.service";
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), 0);
    ck_assert_int_eq(e.stat.pid, 301);
    m.unit = "other.service";
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), -ESRCH);

    /* A process whose cgroup file cannot be read is skipped, not matched. */
    m.unit = NULL;
    m.cgroup = "1b2c3d4e";
    snprintf(path, sizeof(path), "%s/401/cgroup", root);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), 0);
    ck_assert_int_eq(e.stat.pid, 400);
    ck_assert(!e.parent_is_candidate);

    /* Long names are matched on the 15 bytes the kernel keeps. */
    put_proc(600, "averyverylongco", 'S', 1, 5, NULL);
    struct procfs_match lm = {.comm = "averyverylongcommand"};
    ck_assert_int_eq(procfs_find_engine(root, &lm, &e), 0);
    ck_assert_int_eq(e.stat.pid, 600);

    struct procfs_match empty = {.comm = ""};
    ck_assert_int_eq(procfs_find_engine(root, &empty, &e), -EINVAL);
    snprintf(path, sizeof(path), "%s/nonexistent", root);
    ck_assert_int_eq(procfs_find_engine(path, &m, &e), -ENOENT);
}
END_TEST

START_TEST(scan_many) {
    /* Enough candidates to grow the array several times. */
    for (int i = 0; i < 100; i++)
        put_proc(1000 + i, "sqlservr", 'S', 1, (unsigned long long)(5000 - i), NULL);
    struct procfs_engine e;
    struct procfs_match m = {.comm = "sqlservr"};
    ck_assert_int_eq(procfs_find_engine(root, &m, &e), 0);
    ck_assert_int_eq(e.stat.pid, 1099);
    ck_assert_uint_eq(e.candidates, 100);
}
END_TEST

START_TEST(scan_real_proc) {
    /* This test process is in the real /proc under its own name. */
    struct procfs_stat self;
    ck_assert_int_eq(procfs_read_stat("/proc", getpid(), &self), 0);
    ck_assert_int_eq(self.pid, getpid());
    ck_assert_int_eq(self.ppid, getppid());
    struct procfs_engine e;
    struct procfs_match m = {.comm = self.comm};
    ck_assert_int_eq(procfs_find_engine("/proc", &m, &e), 0);
    ck_assert_uint_ge(e.candidates, 1);
    char cg[PROCFS_CGROUP_MAX_BYTES];
    ck_assert_int_gt(procfs_read_cgroup("/proc", getpid(), cg, sizeof(cg)), 0);
    ck_assert(procfs_cgroup_matches(cg, NULL, NULL));
}
END_TEST

static Suite *procfs_suite(void) {
    Suite *s = suite_create("procfs");
    TCase *parse_tc = tcase_create("parse");
    tcase_add_test(parse_tc, stat_plain);
    tcase_add_test(parse_tc, stat_comm_with_spaces_and_parens);
    tcase_add_test(parse_tc, stat_long_comm_is_cut);
    tcase_add_test(parse_tc, stat_malformed);
    tcase_add_test(parse_tc, stat_not_nul_terminated);
    tcase_add_test(parse_tc, comm_match);
    tcase_add_test(parse_tc, cgroup_pod_uid);
    tcase_add_test(parse_tc, cgroup_unit);
    tcase_add_test(parse_tc, choose_rules);
    suite_add_tcase(s, parse_tc);

    TCase *tree_tc = tcase_create("tree");
    tcase_add_checked_fixture(tree_tc, tree_setup, tree_teardown);
    tcase_add_test(tree_tc, read_stat_files);
    tcase_add_test(tree_tc, scan_tree);
    tcase_add_test(tree_tc, scan_many);
    tcase_add_test(tree_tc, scan_real_proc);
    suite_add_tcase(s, tree_tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(procfs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
