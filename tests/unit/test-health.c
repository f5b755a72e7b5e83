/*
 * Tests for agent/health.c. Most cases are scenarios: a policy, a set of
 * probes and a list of steps (an observation, a restart or a tick at a given
 * time), each with the state, reason and message words expected after it and
 * whether it must report a transition. One loop test runs them all; a
 * scenario's name is in every failure message.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"

enum step_kind { STEP_END, STEP_OBSERVE, STEP_RESTART, STEP_TICK };

struct step {
    enum step_kind kind;
    size_t probe;
    enum probe_outcome outcome;
    const char *detail;
    uint64_t at_ms;
    bool changed;
    enum health_state state;
    const char *reason;
    const char *message_has; /* substring of the message, NULL: not checked */
};

struct probe_spec {
    const char *name;
    unsigned rise, fall;
};

struct scenario {
    const char *name;
    struct health_policy policy;
    struct probe_spec probes[3];
    struct step steps[20];
};

#define OBS(p, o, d, at, ch, st, rs, msg)                                                          \
    { STEP_OBSERVE, p, o, d, at, ch, st, rs, msg }
#define RESTART(at, ch, st, rs, msg)                                                               \
    { STEP_RESTART, 0, PROBE_OK, NULL, at, ch, st, rs, msg }
#define TICK(at, ch, st, rs, msg)                                                                  \
    { STEP_TICK, 0, PROBE_OK, NULL, at, ch, st, rs, msg }

#define S HEALTH_STARTING
#define H HEALTH_HEALTHY
#define U HEALTH_UNKNOWN
#define X HEALTH_SUSPECT
#define F HEALTH_FAILED

static const struct health_policy grace_30s = {.startup_grace_ms = 30000};

static const struct scenario scenarios[] = {
    {"rise to healthy within grace",
     grace_30s,
     {{"tds", 2, 3}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, "StartupGrace", "waiting for tds (1 of 2 successes)"),
         OBS(0, PROBE_TLS_REQUIRED, "", 2000, true, H, "ProbesPassing", "tds passing"),
     }},
    {"hysteresis: suspect below fall, failed at fall, recovery needs rise",
     grace_30s,
     {{"tds", 2, 3}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, "StartupGrace", NULL),
         OBS(0, PROBE_OK, "", 2000, true, H, "ProbesPassing", NULL),
         OBS(0, PROBE_TIMEOUT, "no answer in 2000 ms", 3000, true, X, "ProbeFailing",
             "tds: timeout, 1 of 3 failures to fail: no answer in 2000 ms"),
         OBS(0, PROBE_OK, "", 4000, true, H, "ProbesPassing", NULL),
         OBS(0, PROBE_TIMEOUT, "", 5000, true, X, "ProbeFailing", "1 of 3"),
         OBS(0, PROBE_TIMEOUT, "", 6000, false, X, "ProbeFailing", "2 of 3"),
         OBS(0, PROBE_TIMEOUT, "hung", 7000, true, F, "ListenerHung",
             "tds: timeout 3 times in a row (fall 3): hung"),
         OBS(0, PROBE_OK, "", 8000, false, F, "ListenerHung",
             "tds: failing after timeout, 1 of 2 successes to recover"),
         OBS(0, PROBE_REFUSED, "", 9000, false, F, "ListenerRefused", "refused 1 times"),
         OBS(0, PROBE_OK, "", 10000, false, F, "ListenerRefused", "1 of 2 successes"),
         OBS(0, PROBE_OK, "", 11000, true, H, "ProbesPassing", NULL),
     }},
    {"failures within grace stay starting, expiry by tick re-derives",
     {.startup_grace_ms = 10000},
     {{"tds", 1, 3}},
     {
         OBS(0, PROBE_REFUSED, "ECONNREFUSED", 1000, false, S, "StartupGrace",
             "startup grace, 9 s left; tds: refused, 1 of 3 failures"),
         OBS(0, PROBE_REFUSED, "", 2000, false, S, "StartupGrace", NULL),
         OBS(0, PROBE_REFUSED, "", 3000, false, S, "StartupGrace", "refused 3 times in a row"),
         OBS(0, PROBE_REFUSED, "", 4000, false, S, "StartupGrace", "refused 4 times"),
         TICK(9999, false, S, "StartupGrace", "1 s left"),
         TICK(10000, true, F, "ListenerRefused", "tds: refused 4 times in a row (fall 3)"),
     }},
    {"suspect is not entered within grace",
     {.startup_grace_ms = 10000},
     {{"tds", 1, 3}},
     {
         OBS(0, PROBE_RESET, "", 1000, false, S, "StartupGrace", NULL),
         TICK(10000, true, X, "ProbeFailing", "tds: reset, 1 of 3"),
         OBS(0, PROBE_RESET, "", 11000, false, X, "ProbeFailing", "2 of 3"),
         OBS(0, PROBE_RESET, "", 12000, true, F, "ConnectionReset", NULL),
     }},
    {"grace expiry by the next observation",
     {.startup_grace_ms = 5000},
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_ABSENT, "no sqlservr", 1000, false, S, "StartupGrace", NULL),
         OBS(0, PROBE_ABSENT, "no sqlservr", 6000, true, F, "EngineExited",
             "process: absent 2 times in a row (fall 1): no sqlservr"),
     }},
    {"grace expiry without a verdict is unknown NoVerdict",
     {.startup_grace_ms = 5000},
     {{"tds", 3, 3}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, "StartupGrace", "1 of 3 successes"),
         TICK(5000, true, U, "NoVerdict",
              "no verdict after startup grace; waiting for tds (1 of 3 successes)"),
         OBS(0, PROBE_OK, "", 6000, false, U, "NoVerdict", "2 of 3"),
         OBS(0, PROBE_OK, "", 7000, true, H, "ProbesPassing", NULL),
     }},
    {"no grace: the first result decides",
     {.startup_grace_ms = 0},
     {{"tds", 1, 1}},
     {
         OBS(0, PROBE_PROTOCOL_ERROR, "bad PRELOGIN", 0, true, F, "ProtocolError", "bad PRELOGIN"),
     }},
    {"grace ends once healthy",
     grace_30s,
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 1000, true, H, "ProbesPassing", NULL),
         OBS(0, PROBE_ZOMBIE, "pid 42", 2000, true, F, "EngineZombie", "process: zombie"),
     }},
    {"crash loop: entry, observations do not leave it, exit when the window passes",
     {.startup_grace_ms = 1000, .crash_loop_restarts = 3, .crash_loop_window_ms = 60000},
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 500, true, H, "ProbesPassing", NULL),
         RESTART(1000, false, H, "ProbesPassing", NULL),
         RESTART(2000, false, H, "ProbesPassing", NULL),
         RESTART(3000, true, F, "CrashLoop", "3 restarts in 60 s (limit 3)"),
         OBS(0, PROBE_OK, "", 4000, false, F, "CrashLoop", NULL),
         TICK(60999, false, F, "CrashLoop", "3 restarts in 60 s"),
         TICK(61000, true, H, "ProbesPassing", NULL),
         RESTART(62000, false, H, "ProbesPassing", NULL), /* 3000 and 62000 in window */
         RESTART(62500, true, F, "CrashLoop", "3 restarts in 60 s"),
         TICK(63000, true, H, "ProbesPassing", NULL), /* 3000 leaves the window */
     }},
    {"crash loop window in fractions of a second",
     {.startup_grace_ms = 0, .crash_loop_restarts = 2, .crash_loop_window_ms = 1500},
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 0, true, H, NULL, NULL),
         RESTART(100, false, H, NULL, NULL),
         RESTART(1599, true, F, "CrashLoop", "2 restarts in 1.500 s (limit 2)"),
         TICK(1600, true, H, "ProbesPassing", NULL),
     }},
    {"crash loop detection off",
     {.startup_grace_ms = 0, .crash_loop_restarts = 0, .crash_loop_window_ms = 60000},
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 0, true, H, NULL, NULL),
         RESTART(1, false, H, NULL, NULL),
         RESTART(2, false, H, NULL, NULL),
         RESTART(3, false, H, NULL, NULL),
         RESTART(4, false, H, NULL, NULL),
     }},
    {"crash loop overrides and ends the startup grace",
     {.startup_grace_ms = 100000, .crash_loop_restarts = 2, .crash_loop_window_ms = 10000},
     {{"process", 1, 2}},
     {
         RESTART(1000, false, S, "StartupGrace", NULL),
         RESTART(2000, true, F, "CrashLoop", "2 restarts in 10 s"),
         OBS(0, PROBE_ABSENT, "", 3000, false, F, "CrashLoop", NULL),
         TICK(11000, true, X, "ProbeFailing", "process: absent, 1 of 2"),
     }},
    {"unmeasurable: a gap, not a break",
     grace_30s,
     {{"process", 2, 2}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, NULL, NULL),
         OBS(0, PROBE_OK, "", 2000, true, H, NULL, NULL),
         OBS(0, PROBE_ERROR, "open /proc: EACCES", 3000, true, U, "NotMeasurable",
             "process cannot be measured: open /proc: EACCES"),
         OBS(0, PROBE_OK, "", 4000, true, H, "ProbesPassing", NULL),
         OBS(0, PROBE_STUCK, "D state 30 s", 5000, true, X, "ProbeFailing", "1 of 2"),
         OBS(0, PROBE_ERROR, "", 6000, true, U, "NotMeasurable", NULL),
         OBS(0, PROBE_STUCK, "D state 32 s", 7000, true, F, "EngineStuck",
             "stuck 2 times in a row (fall 2): D state 32 s"),
         OBS(0, PROBE_ERROR, "EPERM", 8000, true, U, "NotMeasurable", "EPERM"),
     }},
    {"unmeasurable within grace reads as starting",
     grace_30s,
     {{"process", 1, 1}},
     {
         OBS(0, PROBE_ERROR, "EACCES", 1000, false, S, "StartupGrace",
             "process cannot be measured: EACCES"),
         TICK(30000, true, U, "NotMeasurable", NULL),
     }},
    {"two probes: one failing wins, first in add order names it",
     grace_30s,
     {{"tds", 1, 2}, {"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, NULL, "waiting for process (0 of 1"),
         OBS(1, PROBE_OK, "", 1000, true, H, "ProbesPassing", "all 2 probes passing"),
         OBS(1, PROBE_ABSENT, "", 2000, true, F, "EngineExited", "process: absent"),
         OBS(0, PROBE_TIMEOUT, "", 3000, false, F, "EngineExited", NULL),
         OBS(0, PROBE_TIMEOUT, "", 4000, false, F, "ListenerHung",
             "tds: timeout 2 times in a row (fall 2), 1 more failing"),
         OBS(1, PROBE_OK, "", 5000, false, F, "ListenerHung", NULL),
         OBS(0, PROBE_OK, "", 6000, true, H, "ProbesPassing", NULL),
     }},
    {"two probes: suspect and unmeasurable, suspect wins; unmeasurable beats passing",
     grace_30s,
     {{"tds", 1, 3}, {"process", 1, 1}},
     {
         OBS(0, PROBE_OK, "", 1000, false, S, NULL, NULL),
         OBS(1, PROBE_OK, "", 1000, true, H, NULL, NULL),
         OBS(1, PROBE_ERROR, "", 2000, true, U, "NotMeasurable", "process cannot be measured"),
         OBS(0, PROBE_TIMEOUT, "", 3000, true, X, "ProbeFailing", "tds: timeout, 1 of 3"),
         OBS(0, PROBE_OK, "", 4000, true, U, "NotMeasurable", NULL),
     }},
};

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : 3;
        for (size_t i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

static void setup_target(struct health_target *t, const struct scenario *sc) {
    health_target_init(t, &sc->policy, 0);
    for (size_t i = 0; i < 3 && sc->probes[i].name; i++)
        ck_assert_int_eq(
            health_add_probe(t, sc->probes[i].name, sc->probes[i].rise, sc->probes[i].fall),
            (int)i);
}

START_TEST(test_scenario) {
    const struct scenario *sc = &scenarios[_i];
    struct health_target t;
    setup_target(&t, sc);
    ck_assert_int_eq(health_target_state(&t), HEALTH_STARTING);
    ck_assert_str_eq(health_target_reason(&t), "StartupGrace");

    uint64_t transitions = 0, since_ms = 0;
    for (size_t k = 0; sc->steps[k].kind != STEP_END; k++) {
        const struct step *st = &sc->steps[k];
        enum health_state before = health_target_state(&t);
        struct health_transition tr;
        memset(&tr, 0xAA, sizeof(tr));
        bool changed = false;
        switch (st->kind) {
        case STEP_OBSERVE:
            changed = health_observe(&t, st->probe, st->outcome, st->detail, st->at_ms, &tr);
            break;
        case STEP_RESTART:
            changed = health_restart(&t, st->at_ms, &tr);
            break;
        case STEP_TICK:
            changed = health_tick(&t, st->at_ms, &tr);
            break;
        case STEP_END:
            break;
        }
        const char *reason = health_target_reason(&t);
        const char *message = health_target_message(&t);
        ck_assert_msg(changed == st->changed, "%s, step %zu: changed %d, want %d (%s %s: %s)",
                      sc->name, k, changed, st->changed, health_state_name(t.state), reason,
                      message);
        ck_assert_msg(health_target_state(&t) == st->state, "%s, step %zu: state %s, want %s",
                      sc->name, k, health_state_name(t.state), health_state_name(st->state));
        if (st->reason)
            ck_assert_msg(strcmp(reason, st->reason) == 0, "%s, step %zu: reason %s, want %s",
                          sc->name, k, reason, st->reason);
        if (st->message_has)
            ck_assert_msg(strstr(message, st->message_has), "%s, step %zu: message '%s' lacks '%s'",
                          sc->name, k, message, st->message_has);
        if (changed) {
            transitions++;
            since_ms = st->at_ms;
            ck_assert_int_eq(tr.from, before);
            ck_assert_int_eq(tr.to, st->state);
            ck_assert_str_eq(tr.reason, reason);
            ck_assert_str_eq(tr.message, message);
            ck_assert_uint_eq(tr.at_ms, st->at_ms);
        }
        ck_assert_uint_eq(health_target_transitions(&t), transitions);
        ck_assert_uint_eq(health_target_since_ms(&t), since_ms);
    }
}
END_TEST

/* Every failure outcome names its reason; rise 1, fall 1, no grace. */
static const struct {
    enum probe_outcome outcome;
    const char *reason;
} failure_reasons[] = {
    {PROBE_ABSENT, "EngineExited"},     {PROBE_ZOMBIE, "EngineZombie"},
    {PROBE_STUCK, "EngineStuck"},       {PROBE_TIMEOUT, "ListenerHung"},
    {PROBE_REFUSED, "ListenerRefused"}, {PROBE_PROTOCOL_ERROR, "ProtocolError"},
    {PROBE_RESET, "ConnectionReset"},
};

START_TEST(test_failure_reason) {
    struct health_policy p = {0};
    struct health_target t;
    struct health_transition tr;
    health_target_init(&t, &p, 100);
    ck_assert_int_eq(health_add_probe(&t, "probe", 1, 1), 0);
    ck_assert(health_observe(&t, 0, PROBE_OK, NULL, 200, &tr));
    ck_assert_int_eq(tr.from, HEALTH_STARTING);
    ck_assert_int_eq(tr.to, HEALTH_HEALTHY);
    ck_assert(health_observe(&t, 0, failure_reasons[_i].outcome, "why", 300, &tr));
    ck_assert_int_eq(tr.from, HEALTH_HEALTHY);
    ck_assert_int_eq(tr.to, HEALTH_FAILED);
    ck_assert_str_eq(tr.reason, failure_reasons[_i].reason);
    char want[128];
    snprintf(want, sizeof(want), "probe: %s 1 times in a row (fall 1): why",
             probe_outcome_name(failure_reasons[_i].outcome));
    ck_assert_str_eq(tr.message, want);
    ck_assert_int_eq(health_probe_last_outcome(&t, 0), (int)failure_reasons[_i].outcome);
}
END_TEST

START_TEST(test_probe_accessors) {
    struct health_policy p = {.startup_grace_ms = 1000};
    struct health_target t;
    health_target_init(&t, &p, 0);
    ck_assert_int_eq(health_add_probe(&t, "tds", 2, 2), 0);
    ck_assert_uint_eq(health_probe_count(&t), 1);
    ck_assert_str_eq(health_probe_name(&t, 0), "tds");
    ck_assert_ptr_null(health_probe_name(&t, 1));
    ck_assert_int_eq(health_probe_last_outcome(&t, 0), -ENODATA);
    ck_assert_int_eq(health_probe_last_outcome(&t, 1), -EINVAL);
    ck_assert_int_eq(health_probe_verdict(&t, 0), HEALTH_VERDICT_NONE);

    health_observe(&t, 0, PROBE_OK, NULL, 10, NULL);
    ck_assert_uint_eq(health_probe_successes(&t, 0), 1);
    ck_assert(!health_probe_passing(&t, 0));
    health_observe(&t, 0, PROBE_OK, NULL, 20, NULL);
    ck_assert(health_probe_passing(&t, 0));
    ck_assert_int_eq(health_probe_verdict(&t, 0), HEALTH_VERDICT_PASSING);
    health_observe(&t, 0, PROBE_REFUSED, NULL, 30, NULL);
    ck_assert_uint_eq(health_probe_successes(&t, 0), 0);
    ck_assert_uint_eq(health_probe_failures(&t, 0), 1);
    ck_assert(health_probe_passing(&t, 0)); /* between thresholds: keeps its verdict */
    health_observe(&t, 0, PROBE_ERROR, NULL, 40, NULL);
    ck_assert_int_eq(health_probe_verdict(&t, 0), HEALTH_VERDICT_UNMEASURABLE);
    ck_assert_uint_eq(health_probe_failures(&t, 0), 1); /* a gap keeps the run */
    health_observe(&t, 0, PROBE_REFUSED, NULL, 50, NULL);
    ck_assert_uint_eq(health_probe_failures(&t, 0), 2);
    ck_assert_int_eq(health_probe_verdict(&t, 0), HEALTH_VERDICT_FAILING);
    ck_assert_int_eq(health_probe_last_outcome(&t, 0), PROBE_REFUSED);
    ck_assert_uint_eq(health_probe_successes(&t, 7), 0);
    ck_assert_uint_eq(health_probe_failures(&t, 7), 0);
}
END_TEST

START_TEST(test_add_probe_errors) {
    struct health_policy p = {0};
    struct health_target t;
    health_target_init(&t, &p, 0);
    ck_assert_int_eq(health_add_probe(&t, NULL, 1, 1), -EINVAL);
    ck_assert_int_eq(health_add_probe(&t, "", 1, 1), -EINVAL);
    ck_assert_int_eq(health_add_probe(&t, "tds", 0, 1), -EINVAL);
    ck_assert_int_eq(health_add_probe(&t, "tds", 1, 0), -EINVAL);
    char longest[HEALTH_PROBE_NAME_MAX];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    ck_assert_int_eq(health_add_probe(&t, longest, 1, 1), 0);
    ck_assert_str_eq(health_probe_name(&t, 0), longest);
    char too_long[HEALTH_PROBE_NAME_MAX + 1];
    memset(too_long, 'b', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    ck_assert_int_eq(health_add_probe(&t, too_long, 1, 1), -ENAMETOOLONG);
    ck_assert_int_eq(health_add_probe(&t, longest, 1, 1), -EEXIST);
    for (int i = 1; i < HEALTH_MAX_PROBES; i++) {
        char name[8];
        snprintf(name, sizeof(name), "p%d", i);
        ck_assert_int_eq(health_add_probe(&t, name, 1, 1), i);
    }
    ck_assert_int_eq(health_add_probe(&t, "extra", 1, 1), -ENOSPC);
    ck_assert_uint_eq(health_probe_count(&t), HEALTH_MAX_PROBES);
}
END_TEST

START_TEST(test_bad_input_changes_nothing) {
    struct health_policy p = {0};
    struct health_target t;
    struct health_transition tr;
    health_target_init(&t, &p, 0);
    ck_assert_int_eq(health_add_probe(&t, "tds", 1, 1), 0);
    ck_assert(health_observe(&t, 0, PROBE_OK, NULL, 1, &tr));
    struct health_target before;
    memcpy(&before, &t, sizeof(t));
    ck_assert(!health_observe(&t, 1, PROBE_REFUSED, NULL, 2, &tr));
    ck_assert(!health_observe(&t, 0, PROBE_OUTCOME_COUNT, NULL, 2, &tr));
    ck_assert(!health_observe(&t, 0, (enum probe_outcome) - 1, NULL, 2, &tr));
    ck_assert(memcmp(&before, &t, sizeof(t)) == 0);
    /* tr may be NULL */
    ck_assert(health_observe(&t, 0, PROBE_REFUSED, NULL, 3, NULL));
    ck_assert_int_eq(health_target_state(&t), HEALTH_FAILED);
}
END_TEST

START_TEST(test_message_bounds) {
    struct health_policy p = {0};
    struct health_target t;
    struct health_transition tr;
    health_target_init(&t, &p, 0);
    char name[HEALTH_PROBE_NAME_MAX];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_int_eq(health_add_probe(&t, name, 1, 1), 0);

    /* ASCII: cut at the field's end. */
    char detail[600];
    memset(detail, 'd', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    ck_assert(health_observe(&t, 0, PROBE_PROTOCOL_ERROR, detail, 1, &tr));
    ck_assert_uint_eq(strlen(tr.message), HEALTH_MESSAGE_MAX - 1);
    ck_assert_str_eq(tr.message, health_target_message(&t));
    ck_assert(strncmp(tr.message, name, strlen(name)) == 0);
    ck_assert_uint_eq(strlen(t.probes[0].detail), HEALTH_DETAIL_MAX - 1);

    /* Two-byte characters at every alignment: never cut inside one. */
    for (size_t shift = 0; shift < 4; shift++) {
        char wide[600] = "";
        memset(wide, 'x', shift);
        for (size_t i = shift; i + 3 < sizeof(wide); i += 2)
            memcpy(wide + i, "\xc3\xa9", 2); /* é */
        wide[sizeof(wide) - 1] = '\0';
        wide[sizeof(wide) - 2] = '\0';
        health_observe(&t, 0, PROBE_PROTOCOL_ERROR, wide, 2 + shift, NULL);
        ck_assert_msg(utf8_valid(health_target_message(&t)), "shift %zu", shift);
        ck_assert_msg(utf8_valid(t.probes[0].detail), "shift %zu", shift);
        ck_assert_uint_ge(strlen(health_target_message(&t)), HEALTH_MESSAGE_MAX - 3);
    }
    /* Three- and four-byte characters, shifted by ASCII so that both cuts (the
     * detail field's and the message's) fall at every offset inside them. */
    for (size_t shift = 0; shift < 7; shift++) {
        char mixed[600];
        memset(mixed, 'x', shift);
        size_t len = shift;
        while (len + 7 < sizeof(mixed)) {
            memcpy(mixed + len, "\xe2\x82\xac\xf0\x9f\x98\x80", 7); /* U+20AC U+1F600 */
            len += 7;
        }
        mixed[len] = '\0';
        health_observe(&t, 0, PROBE_PROTOCOL_ERROR, mixed, 10 + shift, NULL);
        ck_assert_msg(utf8_valid(t.probes[0].detail), "shift %zu", shift);
        ck_assert_msg(utf8_valid(health_target_message(&t)), "shift %zu", shift);
        ck_assert_uint_ge(strlen(t.probes[0].detail), HEALTH_DETAIL_MAX - 4);
    }
}
END_TEST

START_TEST(test_restarts_accounting) {
    struct health_policy p = {.crash_loop_restarts = 100, .crash_loop_window_ms = 1000};
    struct health_target t;
    health_target_init(&t, &p, 0);
    ck_assert_uint_eq(t.policy.crash_loop_restarts, HEALTH_MAX_RESTARTS); /* clamped */
    for (uint64_t i = 0; i < 40; i++)
        health_restart(&t, 10 * i, NULL);
    ck_assert_uint_eq(health_target_restarts_total(&t), 40);
    ck_assert_uint_eq(health_restarts_in_window(&t, 390), HEALTH_MAX_RESTARTS);
    ck_assert_int_eq(health_target_state(&t), HEALTH_FAILED);
    ck_assert_str_eq(health_target_reason(&t), "CrashLoop");
    /* ring times 80..390; the 32nd newest (80) leaves the window at 1080 */
    ck_assert_uint_eq(health_next_tick_ms(&t), 1080);
    ck_assert_uint_eq(health_restarts_in_window(&t, 1080), 31);
    ck_assert(health_tick(&t, 1080, NULL));
    ck_assert_int_eq(health_target_state(&t), HEALTH_UNKNOWN);
    ck_assert_str_eq(health_target_reason(&t), "NoVerdict");
    ck_assert_str_eq(health_target_message(&t), "no verdict after startup grace; no probes");
    ck_assert_uint_eq(health_next_tick_ms(&t), UINT64_MAX);
    ck_assert_uint_eq(health_restarts_in_window(&t, 5000), 0);

    /* A clock stepping back does not unsort the ring: the restart counts as
     * happening at the newest time seen. */
    health_restart(&t, 100, NULL);
    size_t newest = (t.restart_head + t.restart_len - 1) % HEALTH_MAX_RESTARTS;
    ck_assert_uint_eq(t.restart_at_ms[newest], 390);
    ck_assert_uint_eq(health_target_restarts_total(&t), 41);
}
END_TEST

START_TEST(test_next_tick) {
    struct health_policy p = {
        .startup_grace_ms = 5000, .crash_loop_restarts = 2, .crash_loop_window_ms = 3000};
    struct health_target t;
    health_target_init(&t, &p, 1000);
    ck_assert_int_eq(health_add_probe(&t, "tds", 1, 1), 0);
    ck_assert_uint_eq(health_next_tick_ms(&t), 6000);
    ck_assert(!health_tick(&t, 5999, NULL));
    ck_assert(health_tick(&t, 6000, NULL));
    ck_assert_int_eq(health_target_state(&t), HEALTH_UNKNOWN);
    ck_assert_uint_eq(health_next_tick_ms(&t), UINT64_MAX);
    health_restart(&t, 7000, NULL);
    ck_assert_uint_eq(health_next_tick_ms(&t), UINT64_MAX);
    ck_assert(health_restart(&t, 8000, NULL));
    ck_assert_uint_eq(health_next_tick_ms(&t), 10000);
    ck_assert(!health_tick(&t, 9999, NULL));
    ck_assert(health_tick(&t, 10000, NULL));
    ck_assert_str_eq(health_target_reason(&t), "NoVerdict");

    /* Healthy ends the grace: nothing left to tick for. */
    health_target_init(&t, &p, 0);
    ck_assert_int_eq(health_add_probe(&t, "tds", 1, 1), 0);
    ck_assert(health_observe(&t, 0, PROBE_OK, NULL, 10, NULL));
    ck_assert_uint_eq(health_next_tick_ms(&t), UINT64_MAX);
}
END_TEST

START_TEST(test_probe_added_to_healthy_target) {
    struct health_policy p = {.startup_grace_ms = 1000};
    struct health_target t;
    health_target_init(&t, &p, 0);
    ck_assert_int_eq(health_add_probe(&t, "tds", 1, 1), 0);
    ck_assert(health_observe(&t, 0, PROBE_OK, NULL, 10, NULL));
    ck_assert_int_eq(health_add_probe(&t, "process", 2, 1), 1);
    ck_assert(!health_tick(&t, 5000, NULL));
    ck_assert_int_eq(health_target_state(&t), HEALTH_HEALTHY);
    ck_assert_str_eq(health_target_message(&t),
                     "1 of 2 probes passing; waiting for process (0 of 2 successes)");
    ck_assert(!health_observe(&t, 1, PROBE_OK, NULL, 6000, NULL));
    ck_assert(!health_observe(&t, 1, PROBE_OK, NULL, 7000, NULL));
    ck_assert_str_eq(health_target_message(&t), "all 2 probes passing");
}
END_TEST

START_TEST(test_names) {
    static const char *const want[] = {"starting", "healthy", "suspect", "failed", "unknown"};
    for (int s = 0; s < HEALTH_STATE_COUNT; s++)
        ck_assert_str_eq(health_state_name((enum health_state)s), want[s]);
    ck_assert_str_eq(health_state_name(HEALTH_STATE_COUNT), "invalid");
    ck_assert_str_eq(health_verdict_name(HEALTH_VERDICT_UNMEASURABLE), "unmeasurable");
    ck_assert_str_eq(health_verdict_name(HEALTH_VERDICT_PASSING), "passing");
    ck_assert_str_eq(health_verdict_name(HEALTH_VERDICT_COUNT), "invalid");
}
END_TEST

int main(void) {
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_scenario, 0, sizeof(scenarios) / sizeof(scenarios[0]));
    tcase_add_loop_test(tc, test_failure_reason, 0,
                        sizeof(failure_reasons) / sizeof(failure_reasons[0]));
    tcase_add_test(tc, test_probe_accessors);
    tcase_add_test(tc, test_add_probe_errors);
    tcase_add_test(tc, test_bad_input_changes_nothing);
    tcase_add_test(tc, test_message_bounds);
    tcase_add_test(tc, test_restarts_accounting);
    tcase_add_test(tc, test_next_tick);
    tcase_add_test(tc, test_probe_added_to_healthy_target);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
