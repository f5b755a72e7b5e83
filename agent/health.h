/*
 * The health engine: one pure state machine per target (one SQL engine) that
 * turns probe outcomes, engine restarts and the passing of time into a target
 * state — starting, healthy, suspect, failed or unknown — with a reason word
 * and a sentence for operators. It does no I/O, reads no clock and never logs:
 * the caller passes the time in (now_ms, any monotonic millisecond clock) and
 * logs or reports the transitions it gets back. The caller owns struct
 * health_target and embeds it; nothing here allocates. docs/health.md explains
 * the rules for operators, with a state diagram.
 *
 * Rules, in the order they are applied when the state is derived:
 *  1. Crash loop: crash_loop_restarts engine restarts within
 *     crash_loop_window_ms -> failed "CrashLoop", until the window holds fewer.
 *  2. Startup grace: until the target has been healthy once (or crash-looped),
 *     and while now_ms < init time + startup_grace_ms, every state except
 *     healthy reads as starting "StartupGrace"; the message says why.
 *  3. A probe whose verdict is failing -> failed, the reason named after the
 *     probe's last failed outcome (EngineExited, EngineZombie, EngineStuck,
 *     ListenerHung, ListenerRefused, ProtocolError, ConnectionReset,
 *     ProbeFailed). The first such probe in add order names it.
 *  4. A measurable probe with a run of failures shorter than fall -> suspect
 *     "ProbeFailing".
 *  5. Every probe passing (at least one probe) -> healthy "ProbesPassing".
 *  6. A probe that cannot be measured -> unknown "NotMeasurable".
 *  7. Otherwise (verdicts still missing): starting within the grace; after it
 *     a healthy target stays healthy (a probe added later must not flap it),
 *     anything else becomes unknown "NoVerdict".
 *
 * Per probe, hysteresis: rise consecutive successes (probe_outcome_is_success)
 * make it passing, fall consecutive failures make it failing; between the two
 * it keeps its verdict. PROBE_ERROR (the agent could not measure) is a gap, not
 * a break: the runs are left as they were, the probe reads unmeasurable until
 * its next real outcome.
 *
 * Transitions are state changes only. A new reason or message within the same
 * state is updated in place and is not a transition.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe.h"

#define HEALTH_MAX_PROBES 8
/* Probe names are at most HEALTH_PROBE_NAME_MAX - 1 bytes. */
#define HEALTH_PROBE_NAME_MAX 64 /* a DNS label (63) fits, as config allows */
/* The ring of restart times; crash_loop_restarts above it is clamped. */
#define HEALTH_MAX_RESTARTS 32
#define HEALTH_MESSAGE_MAX  192
#define HEALTH_DETAIL_MAX   128

enum health_state {
    HEALTH_STARTING,
    HEALTH_HEALTHY,
    HEALTH_SUSPECT,
    HEALTH_FAILED,
    HEALTH_UNKNOWN,
    HEALTH_STATE_COUNT
};

/* A probe's own verdict, as hysteresis leaves it. */
enum health_verdict {
    HEALTH_VERDICT_NONE, /* not yet rise successes nor fall failures */
    HEALTH_VERDICT_PASSING,
    HEALTH_VERDICT_FAILING,
    HEALTH_VERDICT_UNMEASURABLE, /* last outcome was PROBE_ERROR */
    HEALTH_VERDICT_COUNT
};

struct health_policy {
    uint64_t startup_grace_ms;    /* 0: no grace */
    unsigned crash_loop_restarts; /* 0: crash-loop detection off */
    uint64_t crash_loop_window_ms;
};

struct health_transition {
    enum health_state from, to;
    const char *reason; /* static CamelCase word */
    char message[HEALTH_MESSAGE_MAX];
    uint64_t at_ms;
};

/* Read it through the accessors below; the fields are here only so that the
 * caller can embed the struct. */
struct health_probe {
    char name[HEALTH_PROBE_NAME_MAX];
    unsigned rise, fall;
    unsigned consecutive_successes, consecutive_failures; /* saturating */
    enum health_verdict verdict;                          /* NONE, PASSING or FAILING */
    bool unmeasurable;                                    /* last outcome was PROBE_ERROR */
    bool observed;                                        /* at least one outcome seen */
    enum probe_outcome last_outcome;
    enum probe_outcome last_failure_outcome; /* valid once a failure was seen */
    uint64_t last_observed_ms;
    char detail[HEALTH_DETAIL_MAX]; /* of the last outcome, UTF-8 safe */
};

struct health_target {
    struct health_policy policy;
    uint64_t started_ms; /* health_target_init's now_ms */
    bool grace_over;     /* healthy once, crash-looped, or grace expired */
    enum health_state state;
    const char *reason;
    char message[HEALTH_MESSAGE_MAX];
    uint64_t since_ms; /* last transition (or init) */
    uint64_t transitions;
    struct health_probe probes[HEALTH_MAX_PROBES];
    size_t n_probes;
    uint64_t restart_at_ms[HEALTH_MAX_RESTARTS]; /* ring, oldest first from restart_head */
    size_t restart_head, restart_len;
    uint64_t restarts_total;
};

/* Set up t in state starting ("StartupGrace"). p is borrowed and copied. */
void health_target_init(struct health_target *t, const struct health_policy *p, uint64_t now_ms);

/* Add a probe; call after init, before the first observation. probe_name is
 * borrowed and copied. Returns its index (>= 0), -ENOSPC when
 * HEALTH_MAX_PROBES are there, -ENAMETOOLONG, -EEXIST for a name already
 * used, -EINVAL for an empty name or a zero rise or fall. */
int health_add_probe(struct health_target *t, const char *probe_name, unsigned rise, unsigned fall);

/*
 * Each of these re-derives the state at now_ms; when the state changed it
 * returns true and fills *tr (tr may be NULL). Reason and message are always
 * brought up to date. detail is borrowed, may be NULL, and is kept truncated
 * to HEALTH_DETAIL_MAX - 1 bytes. An unknown probe_index or outcome changes
 * nothing and returns false.
 */
bool health_observe(struct health_target *t, size_t probe_index, enum probe_outcome outcome,
                    const char *detail, uint64_t now_ms, struct health_transition *tr);
/* An engine restart was seen (a new engine PID). */
bool health_restart(struct health_target *t, uint64_t now_ms, struct health_transition *tr);
/* Time passed: startup grace or a crash-loop window may have expired. */
bool health_tick(struct health_target *t, uint64_t now_ms, struct health_transition *tr);
/* When health_tick may next change something on its own: the end of the
 * startup grace or of an active crash loop; UINT64_MAX when nothing is due. */
uint64_t health_next_tick_ms(const struct health_target *t);

/* "starting", "healthy", "suspect", "failed", "unknown"; "invalid" otherwise. */
const char *health_state_name(enum health_state s);
/* "none", "passing", "failing", "unmeasurable"; "invalid" otherwise. */
const char *health_verdict_name(enum health_verdict v);

/* Accessors. Strings returned are borrowed from t (reason: static). */
enum health_state health_target_state(const struct health_target *t);
const char *health_target_reason(const struct health_target *t);
const char *health_target_message(const struct health_target *t);
uint64_t health_target_since_ms(const struct health_target *t);
uint64_t health_target_transitions(const struct health_target *t);
uint64_t health_target_restarts_total(const struct health_target *t);
/* Restarts with now_ms - at < crash_loop_window_ms, at most HEALTH_MAX_RESTARTS. */
unsigned health_restarts_in_window(const struct health_target *t, uint64_t now_ms);

size_t health_probe_count(const struct health_target *t);
/* NULL for an unknown index. */
const char *health_probe_name(const struct health_target *t, size_t probe_index);
/* HEALTH_VERDICT_UNMEASURABLE while the last outcome is PROBE_ERROR, else the
 * hysteresis verdict; HEALTH_VERDICT_NONE for an unknown index. */
enum health_verdict health_probe_verdict(const struct health_target *t, size_t probe_index);
/* The last outcome (>= 0), -ENODATA before the first, -EINVAL for an unknown index. */
int health_probe_last_outcome(const struct health_target *t, size_t probe_index);
/* health_probe_verdict() == HEALTH_VERDICT_PASSING. */
bool health_probe_passing(const struct health_target *t, size_t probe_index);
/* The current runs of consecutive successes and failures; 0 for an unknown index. */
unsigned health_probe_successes(const struct health_target *t, size_t probe_index);
unsigned health_probe_failures(const struct health_target *t, size_t probe_index);
