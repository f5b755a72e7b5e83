/*
 * The health engine's rules (see health.h for the list and docs/health.md for
 * operators). Every entry point records its input, then derive() computes the
 * state, reason and message afresh from the probes, the restart ring and
 * now_ms, and apply() stores them and reports a transition when the state
 * changed. Deriving from scratch each time, instead of coding each edge,
 * keeps the rules in one place and makes the order of inputs irrelevant.
 * Messages are built with snprintf into fixed fields and trimmed so that they
 * never end inside a UTF-8 sequence: they end up in JSON and Events.
 */
#include "health.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static const char *const state_names[HEALTH_STATE_COUNT] = {
    [HEALTH_STARTING] = "starting", [HEALTH_HEALTHY] = "healthy", [HEALTH_SUSPECT] = "suspect",
    [HEALTH_FAILED] = "failed",     [HEALTH_UNKNOWN] = "unknown",
};

static const char *const verdict_names[HEALTH_VERDICT_COUNT] = {
    [HEALTH_VERDICT_NONE] = "none",
    [HEALTH_VERDICT_PASSING] = "passing",
    [HEALTH_VERDICT_FAILING] = "failing",
    [HEALTH_VERDICT_UNMEASURABLE] = "unmeasurable",
};

/* Reason words; compared by pointer inside this file. */
static const char REASON_STARTUP_GRACE[] = "StartupGrace";
static const char REASON_CRASH_LOOP[] = "CrashLoop";
static const char REASON_PROBE_FAILING[] = "ProbeFailing";
static const char REASON_PROBES_PASSING[] = "ProbesPassing";
static const char REASON_NOT_MEASURABLE[] = "NotMeasurable";
static const char REASON_NO_VERDICT[] = "NoVerdict";

const char *health_state_name(enum health_state s) {
    if ((unsigned)s >= HEALTH_STATE_COUNT)
        return "invalid";
    return state_names[s];
}

const char *health_verdict_name(enum health_verdict v) {
    if ((unsigned)v >= HEALTH_VERDICT_COUNT)
        return "invalid";
    return verdict_names[v];
}

/* The reason a failing probe gives the target, from its last failed outcome. */
static const char *failure_reason(enum probe_outcome o) {
    switch (o) {
    case PROBE_ABSENT:
        return "EngineExited";
    case PROBE_ZOMBIE:
        return "EngineZombie";
    case PROBE_STUCK:
        return "EngineStuck";
    case PROBE_TIMEOUT:
        return "ListenerHung";
    case PROBE_REFUSED:
        return "ListenerRefused";
    case PROBE_PROTOCOL_ERROR:
        return "ProtocolError";
    case PROBE_RESET:
        return "ConnectionReset";
    default:
        return "ProbeFailed";
    }
}

static uint64_t add_saturating(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Append to a bounded message; silently stops at the bound. */
struct message {
    char text[HEALTH_MESSAGE_MAX];
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void message_add(struct message *m, const char *fmt,
                                                              ...) {
    if (m->len >= sizeof(m->text) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m->text + m->len, sizeof(m->text) - m->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    m->len += (size_t)n;
    if (m->len >= sizeof(m->text) - 1) {
        m->len = sizeof(m->text) - 1;
        text_utf8_trim_tail(m->text, m->len);
        m->len = strlen(m->text);
    }
}

/* Milliseconds as seconds, "300" or "1.500". */
static void format_seconds(char *out, size_t size, uint64_t ms) {
    if (ms % 1000 == 0)
        snprintf(out, size, "%" PRIu64, ms / 1000);
    else
        snprintf(out, size, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
}

struct derived {
    enum health_state state;
    const char *reason;
    bool pending; /* rule 7: verdicts still missing */
    struct message message;
};

unsigned health_restarts_in_window(const struct health_target *t, uint64_t now_ms) {
    unsigned n = 0;
    for (size_t k = 0; k < t->restart_len; k++) {
        uint64_t at = t->restart_at_ms[(t->restart_head + k) % HEALTH_MAX_RESTARTS];
        uint64_t elapsed = now_ms > at ? now_ms - at : 0;
        if (elapsed < t->policy.crash_loop_window_ms)
            n++;
    }
    return n;
}

static bool crash_loop_active(const struct health_target *t, unsigned in_window) {
    return t->policy.crash_loop_restarts > 0 && in_window >= t->policy.crash_loop_restarts;
}

static bool grace_active(const struct health_target *t, uint64_t now_ms) {
    return !t->grace_over && now_ms < add_saturating(t->started_ms, t->policy.startup_grace_ms);
}

static bool probe_measurable(const struct health_probe *p) {
    return !p->unmeasurable;
}

static void describe_failing(const struct health_probe *p, size_t more_failing, struct message *m) {
    const char *what = probe_outcome_name(p->last_failure_outcome);
    if (p->consecutive_failures > 0)
        message_add(m, "%s: %s %u times in a row (fall %u)", p->name, what, p->consecutive_failures,
                    p->fall);
    else
        message_add(m, "%s: failing after %s, %u of %u successes to recover", p->name, what,
                    p->consecutive_successes, p->rise);
    if (more_failing > 0)
        message_add(m, ", %zu more failing", more_failing);
    /* The detail belongs to the last outcome; only show it when that was the failure. */
    if (p->consecutive_failures > 0 && p->detail[0])
        message_add(m, ": %s", p->detail);
}

/* Rules 1 and 3-7, without the startup grace. */
static void derive_unmasked(const struct health_target *t, uint64_t now_ms, struct derived *d) {
    unsigned in_window = health_restarts_in_window(t, now_ms);
    if (crash_loop_active(t, in_window)) {
        char window[32];
        format_seconds(window, sizeof(window), t->policy.crash_loop_window_ms);
        d->state = HEALTH_FAILED;
        d->reason = REASON_CRASH_LOOP;
        message_add(&d->message, "%u restarts in %s s (limit %u)", in_window, window,
                    t->policy.crash_loop_restarts);
        return;
    }

    const struct health_probe *failing = NULL, *suspect = NULL, *unmeasurable = NULL,
                              *waiting = NULL;
    size_t n_failing = 0, n_passing = 0;
    for (size_t i = 0; i < t->n_probes; i++) {
        const struct health_probe *p = &t->probes[i];
        if (!probe_measurable(p)) {
            if (!unmeasurable)
                unmeasurable = p;
            continue;
        }
        if (p->verdict == HEALTH_VERDICT_FAILING) {
            if (!failing)
                failing = p;
            n_failing++;
        } else if (p->consecutive_failures > 0) {
            if (!suspect)
                suspect = p;
        } else if (p->verdict == HEALTH_VERDICT_PASSING) {
            n_passing++;
        } else if (!waiting) {
            waiting = p;
        }
    }

    if (failing) {
        d->state = HEALTH_FAILED;
        d->reason = failure_reason(failing->last_failure_outcome);
        describe_failing(failing, n_failing - 1, &d->message);
    } else if (suspect) {
        d->state = HEALTH_SUSPECT;
        d->reason = REASON_PROBE_FAILING;
        message_add(&d->message, "%s: %s, %u of %u failures to fail", suspect->name,
                    probe_outcome_name(suspect->last_outcome), suspect->consecutive_failures,
                    suspect->fall);
        if (suspect->detail[0])
            message_add(&d->message, ": %s", suspect->detail);
    } else if (t->n_probes > 0 && n_passing == t->n_probes) {
        d->state = HEALTH_HEALTHY;
        d->reason = REASON_PROBES_PASSING;
        if (t->n_probes == 1)
            message_add(&d->message, "%s passing", t->probes[0].name);
        else
            message_add(&d->message, "all %zu probes passing", t->n_probes);
    } else if (unmeasurable) {
        d->state = HEALTH_UNKNOWN;
        d->reason = REASON_NOT_MEASURABLE;
        message_add(&d->message, "%s cannot be measured", unmeasurable->name);
        if (unmeasurable->detail[0])
            message_add(&d->message, ": %s", unmeasurable->detail);
    } else {
        d->state = HEALTH_UNKNOWN;
        d->reason = REASON_NO_VERDICT;
        d->pending = true;
        if (waiting)
            message_add(&d->message, "waiting for %s (%u of %u successes)", waiting->name,
                        waiting->consecutive_successes, waiting->rise);
        else
            message_add(&d->message, "no probes");
    }
}

static void derive(const struct health_target *t, uint64_t now_ms, struct derived *d) {
    struct derived u = {0};
    derive_unmasked(t, now_ms, &u);
    *d = (struct derived){.state = u.state, .reason = u.reason};

    if (u.reason == REASON_CRASH_LOOP || u.state == HEALTH_HEALTHY) {
        *d = u;
    } else if (grace_active(t, now_ms)) {
        uint64_t end_ms = add_saturating(t->started_ms, t->policy.startup_grace_ms);
        uint64_t left_s = (end_ms - now_ms + 999) / 1000;
        d->state = HEALTH_STARTING;
        d->reason = REASON_STARTUP_GRACE;
        message_add(&d->message, "startup grace, %" PRIu64 " s left; %s", left_s, u.message.text);
    } else if (u.pending && t->state == HEALTH_HEALTHY) {
        /* A probe added to a healthy target must not flap it to unknown. */
        size_t n_passing = 0;
        for (size_t i = 0; i < t->n_probes; i++)
            n_passing += t->probes[i].verdict == HEALTH_VERDICT_PASSING;
        d->state = HEALTH_HEALTHY;
        d->reason = REASON_PROBES_PASSING;
        message_add(&d->message, "%zu of %zu probes passing; %s", n_passing, t->n_probes,
                    u.message.text);
    } else if (u.pending) {
        d->state = HEALTH_UNKNOWN;
        d->reason = REASON_NO_VERDICT;
        message_add(&d->message, "no verdict after startup grace; %s", u.message.text);
    } else {
        *d = u;
    }
}

static bool apply(struct health_target *t, uint64_t now_ms, struct health_transition *tr) {
    struct derived d;
    derive(t, now_ms, &d);

    if (d.state == HEALTH_HEALTHY || d.reason == REASON_CRASH_LOOP || !grace_active(t, now_ms))
        t->grace_over = true;

    enum health_state from = t->state;
    t->reason = d.reason;
    memcpy(t->message, d.message.text, sizeof(t->message));
    if (from == d.state)
        return false;

    t->state = d.state;
    t->since_ms = now_ms;
    t->transitions++;
    if (tr) {
        *tr = (struct health_transition){
            .from = from, .to = d.state, .reason = d.reason, .at_ms = now_ms};
        memcpy(tr->message, t->message, sizeof(tr->message));
    }
    return true;
}

void health_target_init(struct health_target *t, const struct health_policy *p, uint64_t now_ms) {
    *t = (struct health_target){
        .policy = *p,
        .started_ms = now_ms,
        .state = HEALTH_STARTING,
        .reason = REASON_STARTUP_GRACE,
        .since_ms = now_ms,
    };
    if (t->policy.crash_loop_restarts > HEALTH_MAX_RESTARTS)
        t->policy.crash_loop_restarts = HEALTH_MAX_RESTARTS;
    snprintf(t->message, sizeof(t->message), "waiting for the first probe results");
}

int health_add_probe(struct health_target *t, const char *probe_name, unsigned rise,
                     unsigned fall) {
    if (!probe_name || !probe_name[0] || rise == 0 || fall == 0)
        return -EINVAL;
    if (strlen(probe_name) >= HEALTH_PROBE_NAME_MAX)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < t->n_probes; i++)
        if (strcmp(t->probes[i].name, probe_name) == 0)
            return -EEXIST;
    if (t->n_probes >= HEALTH_MAX_PROBES)
        return -ENOSPC;

    struct health_probe *p = &t->probes[t->n_probes];
    *p = (struct health_probe){.rise = rise, .fall = fall, .verdict = HEALTH_VERDICT_NONE};
    memcpy(p->name, probe_name, strlen(probe_name) + 1);
    return (int)t->n_probes++;
}

static void set_detail(struct health_probe *p, const char *detail) {
    size_t len = detail ? strnlen(detail, sizeof(p->detail) - 1) : 0;
    if (len)
        memcpy(p->detail, detail, len);
    p->detail[len] = '\0';
    text_utf8_trim_tail(p->detail, len);
}

bool health_observe(struct health_target *t, size_t probe_index, enum probe_outcome outcome,
                    const char *detail, uint64_t now_ms, struct health_transition *tr) {
    if (probe_index >= t->n_probes || (unsigned)outcome >= PROBE_OUTCOME_COUNT)
        return false;

    struct health_probe *p = &t->probes[probe_index];
    p->observed = true;
    p->last_outcome = outcome;
    p->last_observed_ms = now_ms;
    set_detail(p, detail);

    if (outcome == PROBE_ERROR) {
        /* A gap, not a break: the runs stay as they were. */
        p->unmeasurable = true;
    } else if (probe_outcome_is_success(outcome)) {
        p->unmeasurable = false;
        p->consecutive_failures = 0;
        if (p->consecutive_successes < UINT_MAX)
            p->consecutive_successes++;
        if (p->consecutive_successes >= p->rise)
            p->verdict = HEALTH_VERDICT_PASSING;
    } else {
        p->unmeasurable = false;
        p->last_failure_outcome = outcome;
        p->consecutive_successes = 0;
        if (p->consecutive_failures < UINT_MAX)
            p->consecutive_failures++;
        if (p->consecutive_failures >= p->fall)
            p->verdict = HEALTH_VERDICT_FAILING;
    }
    return apply(t, now_ms, tr);
}

bool health_restart(struct health_target *t, uint64_t now_ms, struct health_transition *tr) {
    /* Keep the ring in time order even if a caller's clock steps back. */
    if (t->restart_len > 0) {
        size_t newest = (t->restart_head + t->restart_len - 1) % HEALTH_MAX_RESTARTS;
        if (now_ms < t->restart_at_ms[newest])
            now_ms = t->restart_at_ms[newest];
    }
    if (t->restart_len < HEALTH_MAX_RESTARTS) {
        t->restart_at_ms[(t->restart_head + t->restart_len) % HEALTH_MAX_RESTARTS] = now_ms;
        t->restart_len++;
    } else {
        t->restart_at_ms[t->restart_head] = now_ms;
        t->restart_head = (t->restart_head + 1) % HEALTH_MAX_RESTARTS;
    }
    t->restarts_total++;
    return apply(t, now_ms, tr);
}

bool health_tick(struct health_target *t, uint64_t now_ms, struct health_transition *tr) {
    return apply(t, now_ms, tr);
}

uint64_t health_next_tick_ms(const struct health_target *t) {
    uint64_t next_ms = UINT64_MAX;
    if (!t->grace_over && t->policy.startup_grace_ms > 0)
        next_ms = add_saturating(t->started_ms, t->policy.startup_grace_ms);
    unsigned limit = t->policy.crash_loop_restarts;
    if (t->reason == REASON_CRASH_LOOP && limit > 0 && t->restart_len >= limit) {
        /* The loop ends when the limit-th newest restart leaves the window. */
        size_t k = (t->restart_head + t->restart_len - limit) % HEALTH_MAX_RESTARTS;
        uint64_t end_ms = add_saturating(t->restart_at_ms[k], t->policy.crash_loop_window_ms);
        if (end_ms < next_ms)
            next_ms = end_ms;
    }
    return next_ms;
}

enum health_state health_target_state(const struct health_target *t) {
    return t->state;
}

const char *health_target_reason(const struct health_target *t) {
    return t->reason;
}

const char *health_target_message(const struct health_target *t) {
    return t->message;
}

uint64_t health_target_since_ms(const struct health_target *t) {
    return t->since_ms;
}

uint64_t health_target_transitions(const struct health_target *t) {
    return t->transitions;
}

uint64_t health_target_restarts_total(const struct health_target *t) {
    return t->restarts_total;
}

size_t health_probe_count(const struct health_target *t) {
    return t->n_probes;
}

const char *health_probe_name(const struct health_target *t, size_t probe_index) {
    return probe_index < t->n_probes ? t->probes[probe_index].name : NULL;
}

enum health_verdict health_probe_verdict(const struct health_target *t, size_t probe_index) {
    if (probe_index >= t->n_probes)
        return HEALTH_VERDICT_NONE;
    const struct health_probe *p = &t->probes[probe_index];
    return p->unmeasurable ? HEALTH_VERDICT_UNMEASURABLE : p->verdict;
}

int health_probe_last_outcome(const struct health_target *t, size_t probe_index) {
    if (probe_index >= t->n_probes)
        return -EINVAL;
    if (!t->probes[probe_index].observed)
        return -ENODATA;
    return (int)t->probes[probe_index].last_outcome;
}

bool health_probe_passing(const struct health_target *t, size_t probe_index) {
    return health_probe_verdict(t, probe_index) == HEALTH_VERDICT_PASSING;
}

unsigned health_probe_successes(const struct health_target *t, size_t probe_index) {
    return probe_index < t->n_probes ? t->probes[probe_index].consecutive_successes : 0;
}

unsigned health_probe_failures(const struct health_target *t, size_t probe_index) {
    return probe_index < t->n_probes ? t->probes[probe_index].consecutive_failures : 0;
}
