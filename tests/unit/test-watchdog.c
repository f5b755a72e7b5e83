/*
 * Tests for agent/watchdog.c on the stand-ins the agent's tests use: a
 * regular file (the bytes can be read back) and a FIFO with a reader (what
 * the e2e stand-in watches). The failures are checked for their code and for
 * the advice in their message. No test opens a real watchdog: on a machine
 * that has one, that would arm it. /dev/null stands for a character device
 * that is not a watchdog: it must be refused without being written to.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watchdog.h"

static char dir[] = "/tmp/test-watchdog-XXXXXX";

static void make_dir(void) {
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/file", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    unlink(path);
    rmdir(dir);
    strcpy(dir, "/tmp/test-watchdog-XXXXXX");
}

static char *in_dir(const char *name) {
    static char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static char *read_file(const char *path) {
    static char text[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, text, sizeof(text) - 1);
    ck_assert_int_ge(n, 0);
    text[n] = '\0';
    close(fd);
    return text;
}

/* Open must fail with r and a message containing each of the words. */
static void assert_open_fails(const char *path, uint64_t timeout_ms, int r, const char *words[]) {
    struct watchdog *w = (struct watchdog *)1;
    char *error = (char *)1;

    ck_assert_int_eq(watchdog_open(path, timeout_ms, &w, &error), r);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(error);
    for (const char **word = words; *word; word++)
        ck_assert_msg(strstr(error, *word), "\"%s\" not in: %s", *word, error);
    free(error);
}

START_TEST(test_regular_file) {
    struct watchdog *w;
    char *error = NULL, *path;
    int fd;

    make_dir();
    path = in_dir("file");
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);

    ck_assert_int_eq(watchdog_open(path, 10000, &w, &error), 0);
    ck_assert_ptr_null(error);
    ck_assert_ptr_nonnull(w);
    ck_assert(!watchdog_is_device(w));
    ck_assert_uint_eq(watchdog_timeout_ms(w), 10000); /* a stand-in takes it as given */
    ck_assert_str_eq(watchdog_path(w), path);
    ck_assert_str_eq(watchdog_identity(w), "");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(watchdog_feed(w), 0);
    ck_assert_str_eq(read_file(path), "111");
    watchdog_close(w, true); /* the magic close */
    ck_assert_str_eq(read_file(path), "111V");

    /* Not disarmed: no 'V'. A timeout that is not whole seconds is kept. */
    ck_assert_int_eq(truncate(path, 0), 0);
    ck_assert_int_eq(watchdog_open(path, 1500, &w, &error), 0);
    ck_assert_uint_eq(watchdog_timeout_ms(w), 1500);
    ck_assert_int_eq(watchdog_feed(w), 0);
    watchdog_close(w, false);
    ck_assert_str_eq(read_file(path), "1");
    remove_dir();
}
END_TEST

START_TEST(test_fifo_with_reader) {
    struct watchdog *w;
    char *error = NULL, *path, buf[8];
    int reader, r, feeds = 0;

    make_dir();
    path = in_dir("fifo");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ck_assert_int_ge(reader, 0);

    ck_assert_int_eq(watchdog_open(path, 3000, &w, &error), 0);
    ck_assert(!watchdog_is_device(w));
    ck_assert_uint_eq(watchdog_timeout_ms(w), 3000);
    ck_assert_int_eq(watchdog_feed(w), 0);
    ck_assert_int_eq(watchdog_feed(w), 0);
    ck_assert_int_eq(read(reader, buf, sizeof(buf)), 2);
    ck_assert(!memcmp(buf, "11", 2));

    /* A reader that does not keep up: the pipe fills, feeding says EAGAIN
     * (nothing written, try again) and works again once it is drained. */
    while ((r = watchdog_feed(w)) == 0)
        feeds++;
    ck_assert_int_eq(r, -EAGAIN);
    ck_assert_int_gt(feeds, 0);
    while (read(reader, buf, sizeof(buf)) > 0)
        ;
    ck_assert_int_eq(watchdog_feed(w), 0);
    ck_assert_int_eq(read(reader, buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], '1');

    /* The magic close reaches the reader. */
    watchdog_close(w, true);
    ck_assert_int_eq(read(reader, buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], 'V');
    ck_assert_int_eq(read(reader, buf, sizeof(buf)), 0); /* the writer is gone */

    /* A reader that leaves: EPIPE (SIGPIPE is ignored, as main does). */
    ck_assert_int_eq(watchdog_open(path, 3000, &w, &error), 0);
    close(reader);
    ck_assert_int_eq(watchdog_feed(w), -EPIPE);
    watchdog_close(w, true); /* the 'V' fails too, quietly */
    remove_dir();
}
END_TEST

START_TEST(test_fifo_without_reader) {
    const char *words[] = {"fifo", "no reader", "start its reader", NULL};

    make_dir();
    ck_assert_int_eq(mkfifo(in_dir("fifo"), 0600), 0);
    assert_open_fails(in_dir("fifo"), 10000, -ENXIO, words);
    remove_dir();
}
END_TEST

START_TEST(test_missing_device) {
    const char *words[] = {"open /nonexistent/watchdog: No such file or directory",
                           "modprobe softdog", "fencing.watchdog.device", "unfenced", NULL};

    assert_open_fails("/nonexistent/watchdog", 10000, -ENOENT, words);
}
END_TEST

START_TEST(test_not_a_watchdog) {
    const char *words[] = {"/dev/null: not a watchdog device", "WDIOC_GETSUPPORT",
                           "fencing.watchdog.device", NULL};
    const char *dir_words[] = {"Is a directory", NULL};

    /* A character device that does not answer as a watchdog: refused, and
     * nothing is written to it. */
    if (access("/dev/null", W_OK) == 0)
        assert_open_fails("/dev/null", 10000, -ENOTTY, words);
    make_dir();
    assert_open_fails(dir, 10000, -EISDIR, dir_words);
    remove_dir();
}
END_TEST

START_TEST(test_bad_arguments) {
    const char *empty[] = {"no watchdog device given", NULL};
    const char *zero[] = {"/x: watchdog timeout 0 ms", NULL};
    const char *huge[] = {"/x: watchdog timeout 86400001 ms", NULL};

    assert_open_fails("", 10000, -EINVAL, empty);
    assert_open_fails(NULL, 10000, -EINVAL, empty);
    assert_open_fails("/x", 0, -EINVAL, zero);
    assert_open_fails("/x", 24ULL * 60 * 60 * 1000 + 1, -EINVAL, huge);
    ck_assert_int_eq(watchdog_feed(NULL), -EINVAL);
    watchdog_close(NULL, true);
    watchdog_close(NULL, false);
}
END_TEST

int main(void) {
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN); /* as main does */
    tcase_add_test(tc, test_regular_file);
    tcase_add_test(tc, test_fifo_with_reader);
    tcase_add_test(tc, test_fifo_without_reader);
    tcase_add_test(tc, test_missing_device);
    tcase_add_test(tc, test_not_a_watchdog);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
