/*
 * Tests for agent/metrics.c: exact exposition text for small registries
 * (golden strings), escaping, number spelling, histogram buckets, series
 * removal, the name rules, and — the one place this suite runs a program —
 * `promtool check metrics` over a registry with every type, escaped labels
 * and the +Inf bucket, which must print nothing. promtool is part of the
 * build environment; the test fails, not skips, without it.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

static char *render(const struct metrics *m) {
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(metrics_render(m, &b), 0);
    return b.data ? buf_steal(&b) : strdup("");
}

static void assert_renders(const struct metrics *m, const char *want) {
    char *got = render(m);
    ck_assert_msg(strcmp(got, want) == 0, "rendered:\n%s\nwanted:\n%s", got, want);
    free(got);
}

/* Run promtool check metrics over text; returns its exit status, output in *out. */
static int promtool_check(const char *text, char **out) {
    char path[] = "/tmp/edgewarden-test-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);

    const char *tool = access("/usr/bin/promtool", X_OK) == 0 ? "/usr/bin/promtool" : "promtool";
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", tool, path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    struct buf b;
    buf_init(&b, 0);
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        ck_assert_int_eq(buf_append(&b, chunk, n), 0);
    int status = pclose(p);
    unlink(path);
    ck_assert_msg(WIFEXITED(status), "promtool did not exit normally");
    int code = WEXITSTATUS(status);
    ck_assert_msg(code != 127, "promtool not found (expected at /usr/bin/promtool): %s",
                  b.data ? b.data : "");
    *out = b.data ? buf_steal(&b) : strdup("");
    return code;
}

START_TEST(test_counter_and_gauge_golden) {
    struct metrics *m = metrics_new();
    ck_assert_ptr_nonnull(m);
    static const char *const tp[] = {"target", "probe"};
    struct metric_family *c =
        metrics_counter(m, "edgewarden_probe_results_total", "Probe results by outcome.", 2, tp);
    struct metric_family *g = metrics_gauge(m, "edgewarden_targets", "Number of targets.", 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(g);
    const char *tds[] = {"sql-0", "tds"}, *process[] = {"sql-0", "process"};
    ck_assert_int_eq(metric_add(c, tds, 1), 0);
    ck_assert_int_eq(metric_add(c, process, 2), 0);
    ck_assert_int_eq(metric_add(c, tds, 2.5), 0);
    ck_assert_int_eq(metric_set(g, NULL, 3), 0);
    ck_assert_uint_eq(metric_series_count(c), 2);
    assert_renders(m, "# HELP edgewarden_probe_results_total Probe results by outcome.\n"
                      "# TYPE edgewarden_probe_results_total counter\n"
                      "edgewarden_probe_results_total{target=\"sql-0\",probe=\"tds\"} 3.5\n"
                      "edgewarden_probe_results_total{target=\"sql-0\",probe=\"process\"} 2\n"
                      "# HELP edgewarden_targets Number of targets.\n"
                      "# TYPE edgewarden_targets gauge\n"
                      "edgewarden_targets 3\n");
    ck_assert_int_eq(metric_set(g, NULL, -7), 0);
    ck_assert_int_eq(metric_set(c, tds, 10), 0); /* mirror a count kept elsewhere */
    assert_renders(m, "# HELP edgewarden_probe_results_total Probe results by outcome.\n"
                      "# TYPE edgewarden_probe_results_total counter\n"
                      "edgewarden_probe_results_total{target=\"sql-0\",probe=\"tds\"} 10\n"
                      "edgewarden_probe_results_total{target=\"sql-0\",probe=\"process\"} 2\n"
                      "# HELP edgewarden_targets Number of targets.\n"
                      "# TYPE edgewarden_targets gauge\n"
                      "edgewarden_targets -7\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_histogram_golden) {
    struct metrics *m = metrics_new();
    static const char *const t[] = {"target"};
    static const double bounds[] = {0.5, 1, 2.5};
    struct metric_family *h = metrics_histogram(m, "edgewarden_probe_duration_seconds",
                                                "Duration of probe checks.", 1, t, bounds, 3);
    ck_assert_ptr_nonnull(h);
    const char *a[] = {"a"}, *b[] = {"b"};
    /* 0.5 and 1 sit on bounds: le is inclusive. 4 only reaches +Inf. */
    static const double seen[] = {0.25, 0.5, 1, 2, 4};
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(metric_observe(h, a, seen[i]), 0);
    ck_assert_int_eq(metric_observe(h, b, -1), 0);
    assert_renders(m, "# HELP edgewarden_probe_duration_seconds Duration of probe checks.\n"
                      "# TYPE edgewarden_probe_duration_seconds histogram\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"a\",le=\"0.5\"} 2\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"a\",le=\"1\"} 3\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"a\",le=\"2.5\"} 4\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"a\",le=\"+Inf\"} 5\n"
                      "edgewarden_probe_duration_seconds_sum{target=\"a\"} 7.75\n"
                      "edgewarden_probe_duration_seconds_count{target=\"a\"} 5\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"b\",le=\"0.5\"} 1\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"b\",le=\"1\"} 1\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"b\",le=\"2.5\"} 1\n"
                      "edgewarden_probe_duration_seconds_bucket{target=\"b\",le=\"+Inf\"} 1\n"
                      "edgewarden_probe_duration_seconds_sum{target=\"b\"} -1\n"
                      "edgewarden_probe_duration_seconds_count{target=\"b\"} 1\n");
    metrics_free(m);

    /* No labels and no bounds: only the +Inf bucket. */
    m = metrics_new();
    h = metrics_histogram(m, "lag_seconds", "Loop lag.", 0, NULL, NULL, 0);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(metric_observe(h, NULL, 0.125), 0);
    assert_renders(m, "# HELP lag_seconds Loop lag.\n"
                      "# TYPE lag_seconds histogram\n"
                      "lag_seconds_bucket{le=\"+Inf\"} 1\n"
                      "lag_seconds_sum 0.125\n"
                      "lag_seconds_count 1\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_escaping) {
    struct metrics *m = metrics_new();
    static const char *const l[] = {"pod"};
    struct metric_family *g =
        metrics_gauge(m, "esc", "Back\\slash, new\nline and \"quotes\" stay.", 1, l);
    ck_assert_ptr_nonnull(g);
    const char *v[] = {"a\\b\"c\nd"};
    const char *plain[] = {"caf\xc3\xa9"};
    ck_assert_int_eq(metric_set(g, v, 1), 0);
    ck_assert_int_eq(metric_set(g, plain, 2), 0);
    assert_renders(m, "# HELP esc Back\\\\slash, new\\nline and \"quotes\" stay.\n"
                      "# TYPE esc gauge\n"
                      "esc{pod=\"a\\\\b\\\"c\\nd\"} 1\n"
                      "esc{pod=\"caf\xc3\xa9\"} 2\n");
    /* The escaped value is still the same series. */
    ck_assert_int_eq(metric_set(g, v, 5), 0);
    ck_assert_uint_eq(metric_series_count(g), 2);
    metrics_free(m);
}
END_TEST

START_TEST(test_number_spelling) {
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {1e6, "1000000"},
        {123456789012.0, "123456789012"},
        {9007199254740993.0, "9007199254740992"},
        {1.5, "1.5"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {1e-7, "1e-07"},
        {1e20, "1e+20"},
        {-2.5e-3, "-0.0025"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct metrics *m = metrics_new();
        struct metric_family *g = metrics_gauge(m, "n", "N.", 0, NULL);
        ck_assert_int_eq(metric_set(g, NULL, cases[i].v), 0);
        char want[128];
        snprintf(want, sizeof(want), "# HELP n N.\n# TYPE n gauge\nn %s\n", cases[i].text);
        assert_renders(m, want);
        metrics_free(m);
    }
}
END_TEST

START_TEST(test_remove) {
    struct metrics *m = metrics_new();
    static const char *const tp[] = {"target", "probe"};
    struct metric_family *g = metrics_gauge(m, "up", "Up.", 2, tp);
    const char *s[][2] = {{"a", "tds"}, {"b", "tds"}, {"a", "process"}, {"c", "tds"}};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(metric_set(g, s[i], (double)i), 0);

    ck_assert_int_eq(metric_remove(g, s[1]), 0);
    ck_assert_int_eq(metric_remove(g, s[1]), -ENOENT);
    ck_assert_uint_eq(metric_series_count(g), 3);
    assert_renders(m, "# HELP up Up.\n# TYPE up gauge\n"
                      "up{target=\"a\",probe=\"tds\"} 0\n"
                      "up{target=\"a\",probe=\"process\"} 2\n"
                      "up{target=\"c\",probe=\"tds\"} 3\n");

    ck_assert_int_eq(metric_remove_matching(g, 0, "a"), 2);
    ck_assert_int_eq(metric_remove_matching(g, 0, "a"), 0);
    ck_assert_int_eq(metric_remove_matching(g, 2, "a"), -EINVAL);
    ck_assert_int_eq(metric_remove_matching(g, 0, NULL), -EINVAL);
    assert_renders(m, "# HELP up Up.\n# TYPE up gauge\nup{target=\"c\",probe=\"tds\"} 3\n");

    /* A removed series comes back at zero, at the end. */
    ck_assert_int_eq(metric_set(g, s[0], 9), 0);
    ck_assert_int_eq(metric_remove_matching(g, 1, "tds"), 2);
    ck_assert_uint_eq(metric_series_count(g), 0);
    assert_renders(m, "# HELP up Up.\n# TYPE up gauge\n");
    metrics_free(m);
}
END_TEST

START_TEST(test_invalid_names) {
    struct metrics *m = metrics_new();
    static const char *const ok_labels[] = {"target"};
    static const char *const bad_label_sets[][2] = {
        {"__name", "x"}, {"le", "x"},      {"a-b", "x"}, {"1a", "x"},
        {"", "x"},       {"podName", "x"}, {"a", "a"},
    };
    static const char *const bad_counters[] = {
        "requests",  "requests_total_x", "1_total",           "a-b_total", "",
        "a:b_total", "fooBar_total",     "x_count_total_sum", "x_sum",
    };
    for (size_t i = 0; i < sizeof(bad_counters) / sizeof(bad_counters[0]); i++)
        ck_assert_msg(!metrics_counter(m, bad_counters[i], "H.", 0, NULL), "%s", bad_counters[i]);
    static const char *const bad_gauges[] = {"g_total", "g_count", "g_sum", "g_bucket", "g:x",
                                             "g x",     "9g",      "gX_y",  "é"};
    for (size_t i = 0; i < sizeof(bad_gauges) / sizeof(bad_gauges[0]); i++)
        ck_assert_msg(!metrics_gauge(m, bad_gauges[i], "H.", 0, NULL), "%s", bad_gauges[i]);
    ck_assert_ptr_null(metrics_gauge(m, NULL, "H.", 0, NULL));
    ck_assert_ptr_null(metrics_histogram(m, "h_total", "H.", 0, NULL, NULL, 0));
    for (size_t i = 0; i < sizeof(bad_label_sets) / sizeof(bad_label_sets[0]); i++)
        ck_assert_msg(!metrics_gauge(m, "g", "H.", 2, bad_label_sets[i]), "%s,%s",
                      bad_label_sets[i][0], bad_label_sets[i][1]);
    ck_assert_ptr_null(metrics_gauge(m, "g", "H.", 1, NULL));
    /* help: required, UTF-8 */
    ck_assert_ptr_null(metrics_gauge(m, "g", NULL, 0, NULL));
    ck_assert_ptr_null(metrics_gauge(m, "g", "", 0, NULL));
    ck_assert_ptr_null(metrics_gauge(m, "g", "bad \xff byte", 0, NULL));
    /* bounds: finite, strictly increasing */
    static const double unsorted[] = {1, 0.5}, repeated[] = {1, 1}, inf[] = {1, INFINITY},
                        nan_[] = {NAN};
    ck_assert_ptr_null(metrics_histogram(m, "h", "H.", 0, NULL, unsorted, 2));
    ck_assert_ptr_null(metrics_histogram(m, "h", "H.", 0, NULL, repeated, 2));
    ck_assert_ptr_null(metrics_histogram(m, "h", "H.", 0, NULL, inf, 2));
    ck_assert_ptr_null(metrics_histogram(m, "h", "H.", 0, NULL, nan_, 1));
    ck_assert_ptr_null(metrics_histogram(m, "h", "H.", 0, NULL, NULL, 1));
    /* Nothing rejected was registered. */
    assert_renders(m, "");

    /* Valid ones, and a taken name. */
    ck_assert_ptr_nonnull(metrics_gauge(m, "g", "H.", 1, ok_labels));
    ck_assert_ptr_nonnull(metrics_counter(m, "HTTP_requests_total", "H.", 0, NULL));
    ck_assert_ptr_nonnull(metrics_gauge(m, "_private", "H.", 0, NULL));
    ck_assert_ptr_null(metrics_gauge(m, "g", "Again.", 0, NULL));
    ck_assert_ptr_null(metrics_counter(m, "HTTP_requests_total", "H.", 0, NULL));
    metrics_free(m);
}
END_TEST

START_TEST(test_type_rules) {
    struct metrics *m = metrics_new();
    static const char *const l[] = {"target"};
    static const double bounds[] = {1};
    struct metric_family *c = metrics_counter(m, "c_total", "C.", 1, l);
    struct metric_family *g = metrics_gauge(m, "g", "G.", 1, l);
    struct metric_family *h = metrics_histogram(m, "h_seconds", "H.", 1, l, bounds, 1);
    const char *a[] = {"a"}, *null_value[] = {NULL}, *bad_utf8[] = {"\xc3("};

    ck_assert_int_eq(metric_add(c, a, -1), -EINVAL);
    ck_assert_int_eq(metric_add(c, a, NAN), -EINVAL);
    ck_assert_int_eq(metric_add(g, a, 1), -EINVAL);
    ck_assert_int_eq(metric_add(h, a, 1), -EINVAL);
    ck_assert_int_eq(metric_set(h, a, 1), -EINVAL);
    ck_assert_int_eq(metric_observe(c, a, 1), -EINVAL);
    ck_assert_int_eq(metric_observe(g, a, 1), -EINVAL);
    ck_assert_int_eq(metric_observe(h, a, NAN), -EINVAL);
    ck_assert_int_eq(metric_set(g, NULL, 1), -EINVAL);
    ck_assert_int_eq(metric_set(g, null_value, 1), -EINVAL);
    ck_assert_int_eq(metric_set(g, bad_utf8, 1), -EINVAL);
    ck_assert_int_eq(metric_remove(g, null_value), -EINVAL);
    ck_assert_int_eq(metric_add(NULL, a, 1), -EINVAL);
    ck_assert_uint_eq(metric_series_count(c) + metric_series_count(g) + metric_series_count(h), 0);

    /* A counter never goes down; a rejected set leaves no trace. */
    ck_assert_int_eq(metric_add(c, a, 5), 0);
    ck_assert_int_eq(metric_set(c, a, 4), -EINVAL);
    ck_assert_int_eq(metric_set(c, a, -1), -EINVAL);
    ck_assert_int_eq(metric_set(c, a, 5), 0);
    ck_assert_int_eq(metric_add(c, a, 0), 0);
    /* Gauges may be anything, histograms take negatives and infinities. */
    ck_assert_int_eq(metric_set(g, a, -INFINITY), 0);
    ck_assert_int_eq(metric_observe(h, a, INFINITY), 0);
    assert_renders(m, "# HELP c_total C.\n# TYPE c_total counter\nc_total{target=\"a\"} 5\n"
                      "# HELP g G.\n# TYPE g gauge\ng{target=\"a\"} -Inf\n"
                      "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                      "h_seconds_bucket{target=\"a\",le=\"1\"} 0\n"
                      "h_seconds_bucket{target=\"a\",le=\"+Inf\"} 1\n"
                      "h_seconds_sum{target=\"a\"} +Inf\n"
                      "h_seconds_count{target=\"a\"} 1\n");
    metrics_free(m);
    metrics_free(NULL);
}
END_TEST

START_TEST(test_render_appends_or_leaves_untouched) {
    struct metrics *m = metrics_new();
    struct metric_family *g = metrics_gauge(m, "g", "A gauge with a long help text.", 0, NULL);
    ck_assert_int_eq(metric_set(g, NULL, 1), 0);

    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_puts(&b, "before\n"), 0);
    ck_assert_int_eq(metrics_render(m, &b), 0);
    ck_assert_str_eq(b.data, "before\n# HELP g A gauge with a long help text.\n"
                             "# TYPE g gauge\ng 1\n");
    buf_free(&b);

    /* Room for the HELP line but not for the rest: nothing is left behind. */
    buf_init(&b, 50);
    ck_assert_int_eq(buf_puts(&b, "before\n"), 0);
    ck_assert_int_eq(metrics_render(m, &b), -E2BIG);
    ck_assert_str_eq(b.data, "before\n");
    ck_assert_uint_eq(b.len, 7);
    buf_free(&b);

    ck_assert_int_eq(metrics_render(NULL, &b), -EINVAL);
    metrics_free(m);
}
END_TEST

START_TEST(test_promtool_accepts_registry) {
    struct metrics *m = metrics_new();
    static const char *const tp[] = {"target", "probe"};
    static const char *const tft[] = {"target", "from", "to"};
    static const char *const bi[] = {"version", "revision"};
    static const double buckets_s[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    struct metric_family *info =
        metrics_gauge(m, "edgewarden_build_info", "Build information; always 1.", 2, bi);
    struct metric_family *transitions = metrics_counter(
        m, "edgewarden_target_transitions_total", "Health state transitions of a target.", 3, tft);
    struct metric_family *duration =
        metrics_histogram(m, "edgewarden_probe_duration_seconds",
                          "Duration of probe checks, in seconds.\nSee docs\\health.md.", 2, tp,
                          buckets_s, sizeof(buckets_s) / sizeof(buckets_s[0]));
    struct metric_family *empty =
        metrics_counter(m, "edgewarden_http_requests_total", "HTTP requests (none yet).", 0, NULL);
    struct metric_family *nan_gauge =
        metrics_gauge(m, "edgewarden_loop_lag_max_seconds", "Worst loop lag seen.", 0, NULL);
    struct metric_family *empty_hist = metrics_histogram(
        m, "edgewarden_reload_duration_seconds", "Config reload duration.", 0, NULL, buckets_s, 3);
    ck_assert(info && transitions && duration && empty && nan_gauge && empty_hist);

    const char *bv[] = {"0.1.0", "abc\"def\\ghi\njkl"};
    ck_assert_int_eq(metric_set(info, bv, 1), 0);
    const char *t1[] = {"sql-0", "starting", "healthy"}, *t2[] = {"sql-0", "healthy", "failed"};
    ck_assert_int_eq(metric_add(transitions, t1, 1), 0);
    ck_assert_int_eq(metric_add(transitions, t2, 3), 0);
    const char *d1[] = {"sql-0", "tds"}, *d2[] = {"weird \"pod\"\\\n", "process"};
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(metric_observe(duration, d1, i * 0.0137), 0);
        ck_assert_int_eq(metric_observe(duration, d2, i * 1.1), 0);
    }
    ck_assert_int_eq(metric_set(nan_gauge, NULL, NAN), 0);

    char *text = render(m);
    ck_assert_ptr_nonnull(strstr(text, "le=\"+Inf\"} 50\n"));
    ck_assert_ptr_nonnull(strstr(text, "target=\"weird \\\"pod\\\"\\\\\\n\""));
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE edgewarden_http_requests_total counter\n# HELP edgewarden_loop"));
    char *out;
    int code = promtool_check(text, &out);
    ck_assert_msg(code == 0 && out[0] == '\0', "promtool exit %d, said:\n%s\non:\n%s", code, out,
                  text);
    free(out);
    free(text);
    metrics_free(m);

    /* The harness does see complaints: a gauge named like a counter. */
    code = promtool_check("# HELP g_total G.\n# TYPE g_total gauge\ng_total 1\n", &out);
    ck_assert_msg(strstr(out, "_total"), "promtool said: %s (exit %d)", out, code);
    free(out);
}
END_TEST

int main(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_counter_and_gauge_golden);
    tcase_add_test(tc, test_histogram_golden);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_number_spelling);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_invalid_names);
    tcase_add_test(tc, test_type_rules);
    tcase_add_test(tc, test_render_appends_or_leaves_untouched);
    tcase_add_test(tc, test_promtool_accepts_registry);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
