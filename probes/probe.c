/*
 * The probe runner. Each probe owns two timers: `schedule` fires the next
 * check, `deadline` ends a check that runs too long. A check is started only
 * when none is in flight and the next is armed only from its completion —
 * interval_ms after the previous start — so a slow engine cannot pile up
 * connections and the detection time stays bounded by fall x interval + timeout. The runner measures latency itself
 * when the kind did not, and is the one place that turns a timeout into a
 * result. Closing is two-sided: the runner's timers and the kind's handles
 * close independently and the probe is freed when both sides are done.
 */
#include "probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[PROBE_OUTCOME_COUNT] = {
    [PROBE_OK] = "ok",
    [PROBE_REFUSED] = "refused",
    [PROBE_TIMEOUT] = "timeout",
    [PROBE_RESET] = "reset",
    [PROBE_PROTOCOL_ERROR] = "protocol_error",
    [PROBE_TLS_REQUIRED] = "tls_required",
    [PROBE_ABSENT] = "absent",
    [PROBE_ZOMBIE] = "zombie",
    [PROBE_STUCK] = "stuck",
    [PROBE_ERROR] = "error",
};

const char *probe_outcome_name(enum probe_outcome o) {
    if ((unsigned)o >= PROBE_OUTCOME_COUNT)
        return "invalid";
    return outcome_names[o];
}

int probe_outcome_from_name(const char *s) {
    for (int i = 0; i < PROBE_OUTCOME_COUNT; i++)
        if (strcmp(outcome_names[i], s) == 0)
            return i;
    return -EINVAL;
}

bool probe_outcome_is_success(enum probe_outcome o) {
    return o == PROBE_OK || o == PROBE_TLS_REQUIRED;
}

void probe_result_init(struct probe_result *r) {
    *r = (struct probe_result){.outcome = PROBE_ERROR, .encryption = -1};
}

/* A small, per-call mixed value for start jitter; quality is irrelevant, only
 * that agents started together do not probe in lockstep. */
static uint64_t jitter_draw(struct probe *p, uint64_t max_ms) {
    if (max_ms == 0)
        return 0;
    uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x % (max_ms + 1);
}

static void on_handle_closed(uv_handle_t *h) {
    struct probe *p = h->data;
    p->open_handles--;
    if (p->open_handles == 0 && p->kind_closed) {
        if (p->on_closed)
            p->on_closed(p);
        free(p->name);
        p->name = NULL;
        p->ops->free(p);
    }
}

static void deliver(struct probe *p, struct probe_result *r) {
    if (p->on_result)
        p->on_result(p, r);
}

static void on_deadline(uv_timer_t *t);

static void run_check(struct probe *p) {
    if (p->in_flight || p->closing)
        return;
    p->in_flight = true;
    p->checks++;
    /* Timers are armed against the loop's cached clock; refresh it so a busy
     * loop turn does not make the timeout fire early. */
    uv_update_time(p->loop);
    p->check_started_ns = uv_hrtime();
    if (p->timing.timeout_ms)
        uv_timer_start(&p->deadline, on_deadline, p->timing.timeout_ms, 0);
    int r = p->ops->check(p);
    if (r < 0 && p->in_flight) {
        struct probe_result res;
        probe_result_init(&res);
        res.outcome = PROBE_ERROR;
        res.error = r;
        snprintf(res.detail, sizeof(res.detail), "cannot start check: %s", strerror(-r));
        probe_complete(p, &res);
    }
}

static void on_schedule(uv_timer_t *t) {
    run_check(container_of(t, struct probe, schedule));
}

static void on_deadline(uv_timer_t *t) {
    struct probe *p = container_of(t, struct probe, deadline);
    if (!p->in_flight)
        return;
    p->ops->cancel(p);
    struct probe_result res;
    probe_result_init(&res);
    res.outcome = PROBE_TIMEOUT;
    res.error = -ETIMEDOUT;
    snprintf(res.detail, sizeof(res.detail), "no answer within %llu ms",
             (unsigned long long)p->timing.timeout_ms);
    probe_complete(p, &res);
}

int probe_init(struct probe *p, uv_loop_t *loop, const struct probe_ops *ops, const char *name,
               const struct probe_timing *timing) {
    memset(p, 0, sizeof(*p));
    p->ops = ops;
    p->loop = loop;
    p->timing = *timing;
    p->name = strdup(name ? name : ops->kind);
    if (!p->name)
        return -ENOMEM;
    int r = uv_timer_init(loop, &p->schedule);
    if (r < 0)
        goto fail;
    p->schedule.data = p;
    p->open_handles++;
    r = uv_timer_init(loop, &p->deadline);
    if (r < 0)
        goto fail;
    p->deadline.data = p;
    p->open_handles++;
    return 0;
fail:
    /* Only reachable before any check ran: close what was opened. The caller
     * must still run the loop for the close callbacks; with libuv's timer init
     * this path does not fail in practice. */
    free(p->name);
    p->name = NULL;
    return r;
}

int probe_start(struct probe *p, probe_result_cb cb, void *data) {
    if (p->closing)
        return -ESHUTDOWN;
    p->on_result = cb;
    p->data = data;
    p->running = true;
    return uv_timer_start(&p->schedule, on_schedule, jitter_draw(p, p->timing.jitter_ms), 0);
}

int probe_check_once(struct probe *p, probe_result_cb cb, void *data) {
    if (p->closing)
        return -ESHUTDOWN;
    if (p->in_flight)
        return -EBUSY;
    p->on_result = cb;
    p->data = data;
    p->running = false;
    run_check(p);
    return 0;
}

void probe_reschedule(struct probe *p, uint64_t delay_ms) {
    if (!p->running || p->closing || p->in_flight)
        return;
    uv_timer_start(&p->schedule, on_schedule, delay_ms, 0);
}

void probe_complete(struct probe *p, struct probe_result *r) {
    if (!p->in_flight)
        return;
    p->in_flight = false;
    uv_timer_stop(&p->deadline);
    if (r->latency_us == 0)
        r->latency_us = (uv_hrtime() - p->check_started_ns) / 1000;
    r->unsolicited = false;
    uv_update_time(p->loop);
    if (p->running && !p->closing) {
        /* Checks start every interval_ms, counted from the previous start, so
         * detection takes at most fall x interval + timeout; a check that ran
         * past the interval (only possible with timeout > interval) is
         * followed at once — never overlapped. */
        uint64_t elapsed_ms = (uv_hrtime() - p->check_started_ns) / 1000000;
        uint64_t delay_ms =
            elapsed_ms >= p->timing.interval_ms ? 0 : p->timing.interval_ms - elapsed_ms;
        uv_timer_start(&p->schedule, on_schedule, delay_ms, 0);
    }
    deliver(p, r);
}

void probe_report(struct probe *p, struct probe_result *r) {
    if (p->closing)
        return;
    r->unsolicited = true;
    deliver(p, r);
}

void probe_closed(struct probe *p) {
    p->kind_closed = true;
    if (p->open_handles == 0) {
        if (p->on_closed)
            p->on_closed(p);
        free(p->name);
        p->name = NULL;
        p->ops->free(p);
    }
}

void probe_close(struct probe *p, probe_close_cb cb) {
    if (p->closing)
        return;
    p->closing = true;
    p->running = false;
    p->on_closed = cb;
    p->on_result = NULL;
    if (p->in_flight) {
        p->in_flight = false;
        p->ops->cancel(p);
    }
    uv_timer_stop(&p->schedule);
    uv_timer_stop(&p->deadline);
    uv_close((uv_handle_t *)&p->schedule, on_handle_closed);
    uv_close((uv_handle_t *)&p->deadline, on_handle_closed);
    p->ops->close(p);
}
