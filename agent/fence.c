/*
 * The self-fencing rule (fence.h; docs/node-loss.md, "Self-fencing"). Every
 * decision is a comparison of now_ms with a sum of a recorded time and D or
 * R, taken saturating so that a time near UINT64_MAX cannot wrap into the
 * past and turn "never" into "feed". The roll-call schedule starts two renew
 * intervals after the last successful renewal (one renewal has then been
 * missed) and repeats every R while the renewals keep failing.
 */
#include "fence.h"

#include <errno.h>

/* a + b, or UINT64_MAX when that does not fit. */
static uint64_t add_sat(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

enum fence_verdict fence_verdict_of(const struct fence_peer_answer *answers, size_t n) {
    bool all_answered = n > 0;

    for (size_t i = 0; i < n; i++) {
        if (answers[i].answered && answers[i].api_reachable)
            return FENCE_VERDICT_CUT_OFF;
        if (!answers[i].answered)
            all_answered = false;
    }
    return all_answered ? FENCE_VERDICT_OUTAGE : FENCE_VERDICT_ISOLATED;
}

int fence_init(struct fence *f, const struct fence_config *c) {
    if (!f || !c || !c->lease_duration_ms || !c->renew_interval_ms || !c->watchdog_timeout_ms ||
        c->renew_interval_ms >= c->lease_duration_ms)
        return -EINVAL;
    *f = (struct fence){.c = *c, .verdict = FENCE_VERDICT_NONE};
    return 0;
}

void fence_lease_ok(struct fence *f, uint64_t sent_at_ms) {
    if (f->lease_ok_known && sent_at_ms <= f->lease_ok_ms)
        return;
    f->lease_ok_known = true;
    f->lease_ok_ms = sent_at_ms;
    f->rounds_started = false;
}

/* The end of the feeding: should_feed() is true before it and false from it on. */
static uint64_t feed_until_ms(const struct fence *f) {
    uint64_t until = add_sat(f->lease_ok_ms, f->c.lease_duration_ms);

    if (f->verdict == FENCE_VERDICT_OUTAGE) {
        uint64_t outage_until = add_sat(f->verdict_at_ms, f->c.renew_interval_ms);
        if (outage_until > until)
            until = outage_until;
    }
    return until;
}

bool fence_should_feed(const struct fence *f, uint64_t now_ms) {
    if (!f->lease_ok_known)
        return false;
    if (now_ms < add_sat(f->lease_ok_ms, f->c.lease_duration_ms))
        return true;
    return f->verdict == FENCE_VERDICT_OUTAGE &&
           now_ms < add_sat(f->verdict_at_ms, f->c.renew_interval_ms);
}

/* When the next roll call falls due (only meaningful when none is running). */
static uint64_t round_due_ms(const struct fence *f) {
    uint64_t due = add_sat(add_sat(f->lease_ok_ms, f->c.renew_interval_ms), f->c.renew_interval_ms);

    if (f->rounds_started) {
        uint64_t again = add_sat(f->last_round_ms, f->c.renew_interval_ms);
        if (again > due)
            due = again;
    }
    return due;
}

bool fence_round_due(const struct fence *f, uint64_t now_ms) {
    return f->lease_ok_known && !f->round_running && now_ms >= round_due_ms(f);
}

void fence_round_start(struct fence *f, uint64_t now_ms) {
    f->round_running = true;
    f->round_started_ms = now_ms;
    f->rounds_started = true;
    f->last_round_ms = now_ms;
}

void fence_round_done(struct fence *f, enum fence_verdict v, uint64_t now_ms) {
    f->round_running = false;
    f->verdict = v;
    f->verdict_at_ms = now_ms;
}

uint64_t fence_next_deadline_ms(const struct fence *f, uint64_t now_ms) {
    uint64_t next = UINT64_MAX, t;

    if (!f->lease_ok_known)
        return UINT64_MAX;
    t = feed_until_ms(f);
    if (t > now_ms && t < next)
        next = t;
    if (!f->round_running) {
        t = round_due_ms(f);
        if (t > now_ms && t < next)
            next = t;
    }
    return next;
}

const char *fence_verdict_name(enum fence_verdict v) {
    switch (v) {
    case FENCE_VERDICT_NONE:
        return "none";
    case FENCE_VERDICT_CUT_OFF:
        return "cut_off";
    case FENCE_VERDICT_OUTAGE:
        return "outage";
    case FENCE_VERDICT_ISOLATED:
        return "isolated";
    }
    return "invalid";
}
