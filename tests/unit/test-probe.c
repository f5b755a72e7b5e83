/*
 * Tests for the probe runner (probes/probe.c) with a fake probe kind whose
 * checks complete after a programmable delay on a timer: re-arm only after
 * completion, no overlap, the runner's timeout, unsolicited reports, jitter
 * bounds, and closing with a check in flight.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

struct fake {
    struct probe probe;
    uv_timer_t work;
    uint64_t delay_ms; /* how long a check takes */
    enum probe_outcome outcome;
    int fail_start; /* check() returns this when < 0 */
    int checks, cancels, in_flight, max_in_flight;
    bool freed_flag;
    bool *freed;
};

struct observed {
    int results;
    int timeouts;
    int unsolicited;
    int errors;
    uint64_t first_ms;
    uint64_t last_ms;
    uint64_t last_latency_us;
    int stop_after;
};

static void on_work(uv_timer_t *t) {
    struct fake *f = t->data;
    f->in_flight--;
    struct probe_result r;
    probe_result_init(&r);
    r.outcome = f->outcome;
    probe_complete(&f->probe, &r);
}

static int fake_check(struct probe *p) {
    struct fake *f = container_of(p, struct fake, probe);
    if (f->fail_start < 0)
        return f->fail_start;
    f->checks++;
    f->in_flight++;
    if (f->in_flight > f->max_in_flight)
        f->max_in_flight = f->in_flight;
    uv_timer_start(&f->work, on_work, f->delay_ms, 0);
    return 0;
}

static void fake_cancel(struct probe *p) {
    struct fake *f = container_of(p, struct fake, probe);
    f->cancels++;
    f->in_flight--;
    uv_timer_stop(&f->work);
}

static void on_work_closed(uv_handle_t *h) {
    struct fake *f = h->data;
    probe_closed(&f->probe);
}

static void fake_close(struct probe *p) {
    struct fake *f = container_of(p, struct fake, probe);
    uv_close((uv_handle_t *)&f->work, on_work_closed);
}

static void fake_free(struct probe *p) {
    struct fake *f = container_of(p, struct fake, probe);
    if (f->freed)
        *f->freed = true;
    free(f);
}

static const struct probe_ops fake_ops = {
    .kind = "fake",
    .check = fake_check,
    .cancel = fake_cancel,
    .close = fake_close,
    .free = fake_free,
};

static struct fake *fake_new(uv_loop_t *loop, const struct probe_timing *t, uint64_t delay_ms,
                             bool *freed) {
    struct fake *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(probe_init(&f->probe, loop, &fake_ops, "fake", t), 0);
    uv_timer_init(loop, &f->work);
    f->work.data = f;
    f->delay_ms = delay_ms;
    f->outcome = PROBE_OK;
    f->freed = freed;
    return f;
}

static void on_result(struct probe *p, const struct probe_result *r) {
    struct observed *o = p->data;
    uint64_t now = uv_now(p->loop);
    if (o->results + o->unsolicited == 0)
        o->first_ms = now;
    o->last_ms = now;
    if (r->unsolicited) {
        o->unsolicited++;
        return;
    }
    o->results++;
    o->last_latency_us = r->latency_us;
    if (r->outcome == PROBE_TIMEOUT)
        o->timeouts++;
    if (r->outcome == PROBE_ERROR)
        o->errors++;
    if (o->stop_after && o->results >= o->stop_after)
        probe_close(p, NULL);
}

START_TEST(test_rearm_after_completion) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    struct probe_timing t = {
        .interval_ms = 50, .timeout_ms = 1000, .jitter_ms = 0, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 30, &freed);
    struct observed o = {.stop_after = 5};
    uint64_t start = uv_now(&loop);
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(o.results, 5);
    ck_assert(freed);
    /* Checks of 30 ms start every 50 ms, from start to start: the fifth
     * starts at 200 ms and ends at 230 ms. Re-arming 50 ms after each
     * completion would take 5 x 30 + 4 x 50 = 350 ms; load only adds delay,
     * so the upper bound is loose. */
    ck_assert_uint_ge(o.last_ms - start, 229);
    ck_assert_uint_lt(o.last_ms - start, 340);
    ck_assert_uint_ge(o.last_latency_us, 29000);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_no_overlap) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    /* The check takes longer than the interval: still one at a time. */
    struct probe_timing t = {.interval_ms = 1, .timeout_ms = 1000, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 20, &freed);
    struct observed o = {.stop_after = 4};
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    int max_in_flight = 0;
    while (uv_run(&loop, UV_RUN_ONCE)) {
        if (!freed && f->max_in_flight > max_in_flight)
            max_in_flight = f->max_in_flight;
    }
    ck_assert_int_eq(o.results, 4);
    ck_assert_int_eq(max_in_flight, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_timeout_cancels) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    struct probe_timing t = {.interval_ms = 5, .timeout_ms = 20, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 10000, &freed);
    struct observed o = {.stop_after = 2};
    uint64_t start = uv_now(&loop);
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    int cancels_seen = 0;
    while (uv_run(&loop, UV_RUN_ONCE))
        if (!freed)
            cancels_seen = f->cancels;
    ck_assert_int_eq(o.results, 2);
    ck_assert_int_eq(o.timeouts, 2);
    ck_assert_int_ge(cancels_seen, 1);
    /* Two full timeouts; the check that overran its interval is followed at
     * once, never overlapped. */
    ck_assert_uint_ge(o.last_ms - start, 40);
    ck_assert_uint_lt(o.last_ms - start, 2000);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_check_start_error) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    struct probe_timing t = {.interval_ms = 5, .timeout_ms = 20, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 1, &freed);
    f->fail_start = -EMFILE;
    struct observed o = {.stop_after = 3};
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(o.errors, 3);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static void on_close_now(uv_timer_t *t) {
    struct fake *f = t->data;
    probe_close(&f->probe, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_close_in_flight) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    struct probe_timing t = {.interval_ms = 5, .timeout_ms = 1000, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 500, &freed);
    struct observed o = {0};
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    uv_timer_t closer;
    uv_timer_init(&loop, &closer);
    closer.data = f;
    uv_timer_start(&closer, on_close_now, 50, 0);
    uint64_t start = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert(freed);
    ck_assert_int_eq(o.results, 0); /* no callback after close */
    ck_assert_uint_lt(uv_now(&loop) - start, 400);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static void on_report(uv_timer_t *t) {
    struct fake *f = t->data;
    struct probe_result r;
    probe_result_init(&r);
    r.outcome = PROBE_ABSENT;
    probe_report(&f->probe, &r);
    probe_close(&f->probe, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_unsolicited_report) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool freed = false;
    struct probe_timing t = {.interval_ms = 10000, .timeout_ms = 1000, .rise = 1, .fall = 1};
    struct fake *f = fake_new(&loop, &t, 1, &freed);
    struct observed o = {0};
    ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
    uv_timer_t reporter;
    uv_timer_init(&loop, &reporter);
    reporter.data = f;
    uv_timer_start(&reporter, on_report, 30, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(o.results, 1);     /* the first scheduled check */
    ck_assert_int_eq(o.unsolicited, 1); /* the event, long before the next one */
    ck_assert(freed);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_jitter_bounds) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (int i = 0; i < 5; i++) {
        bool freed = false;
        struct probe_timing t = {
            .interval_ms = 10, .timeout_ms = 1000, .jitter_ms = 40, .rise = 1, .fall = 1};
        struct fake *f = fake_new(&loop, &t, 0, &freed);
        struct observed o = {.stop_after = 1};
        uv_update_time(&loop);
        uint64_t start = uv_now(&loop);
        ck_assert_int_eq(probe_start(&f->probe, on_result, &o), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_int_eq(o.results, 1);
        ck_assert_uint_le(o.first_ms - start, 40 + 30); /* jitter plus scheduling slack */
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_outcome_names) {
    for (int i = 0; i < PROBE_OUTCOME_COUNT; i++)
        ck_assert_int_eq(probe_outcome_from_name(probe_outcome_name((enum probe_outcome)i)), i);
    ck_assert_int_eq(probe_outcome_from_name("nope"), -EINVAL);
    ck_assert_str_eq(probe_outcome_name(PROBE_PROTOCOL_ERROR), "protocol_error");
    ck_assert_str_eq(probe_outcome_name((enum probe_outcome)99), "invalid");
    ck_assert(probe_outcome_is_success(PROBE_OK));
    ck_assert(probe_outcome_is_success(PROBE_TLS_REQUIRED));
    ck_assert(!probe_outcome_is_success(PROBE_TIMEOUT));
    ck_assert(!probe_outcome_is_success(PROBE_ERROR));
}
END_TEST

int main(void) {
    Suite *s = suite_create("probe");
    TCase *tc = tcase_create("runner");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rearm_after_completion);
    tcase_add_test(tc, test_no_overlap);
    tcase_add_test(tc, test_timeout_cancels);
    tcase_add_test(tc, test_check_start_error);
    tcase_add_test(tc, test_close_in_flight);
    tcase_add_test(tc, test_unsolicited_report);
    tcase_add_test(tc, test_jitter_bounds);
    tcase_add_test(tc, test_outcome_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
