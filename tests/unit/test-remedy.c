/*
 * Tests for agent/remedy.c, the remediator's per-node decision. One table:
 * each row is a node as the leader sees it (a set of facts, the
 * configuration's assumeDeadAfter and the time of the look) and the whole
 * decision it must get, verdict, flags, deadline, next look and reason.
 * Every time in the table derives from one set of constants, so each
 * boundary (the agent's Lease running out at seen + duration, the kubelet
 * Lease going stale at seen + nodeLeaseStaleAfter, the fencing deadline at
 * seen + duration + watchdog + margin, assumeDeadAfter) is checked one
 * millisecond before and exactly at the instant. Two sweeps follow: a walk
 * through time that checks next_ms announces exactly the next change, and
 * every combination of facts without quorum, which must take no action.
 * docs/node-loss.md, "Remediation", is the specification the rows quote.
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remedy.h"

/* The node's agent Lease was first seen at SEEN and lasts DURATION; its
 * kubelet Lease record was seen at the same time. */
#define SEEN        UINT64_C(100000)
#define DURATION    UINT64_C(15000)
#define WATCHDOG    UINT64_C(10000)
#define MARGIN      UINT64_C(2000)
#define STALE       UINT64_C(20000)
#define AGENT_GONE  (SEEN + DURATION)                     /* 115000 */
#define KUBELET_OLD (SEEN + STALE)                        /* 120000 */
#define DEADLINE    (SEEN + DURATION + WATCHDOG + MARGIN) /* 127000 */
#define NEVER       UINT64_MAX

/* What the leader knows of the node, one bit each. */
enum fact {
    SQL = 1 << 0,     /* hosts_sql */
    AGENT = 1 << 1,   /* has_agent_lease */
    FENCED = 1 << 2,  /* fenced */
    NODE = 1 << 3,    /* node_exists */
    READY = 1 << 4,   /* node_ready */
    KUBELET = 1 << 5, /* has_kubelet_lease */
    OOS = 1 << 6,     /* out_of_service */
    RENEWED = 1 << 7, /* agent_renewed_since */
    QUORUM = 1 << 8,  /* quorum */
    ASKED = 1 << 9,   /* asks_remediator: its roll call asks this remediator */
};

/* A healthy fenced SQL node, and the same node once it went dark. */
#define ALIVE (SQL | AGENT | FENCED | NODE | READY | KUBELET | QUORUM | ASKED)
#define DOWN  (ALIVE & ~READY)

struct row {
    const char *name;
    unsigned facts;
    uint64_t assume_dead_ms; /* remediation.assumeDeadAfter; 0: never */
    uint64_t now_ms;
    /* the decision */
    enum remedy_verdict verdict;
    bool assumed_dead;
    bool force_delete;
    uint64_t deadline_ms;
    uint64_t next_ms;
    const char *reason;
};

#define NONE           REMEDY_NONE
#define WATCH          REMEDY_WATCH
#define NO_QUORUM      REMEDY_NO_QUORUM
#define FENCE_WAIT     REMEDY_FENCE_WAIT
#define OUT_OF_SERVICE REMEDY_OUT_OF_SERVICE
#define UNFENCED       REMEDY_UNFENCED
#define LIFT           REMEDY_LIFT
#define KEEP           REMEDY_KEEP

static const struct row rows[] = {
    /* Nothing to do: no SQL pod, no agent Lease (edgewarden does not run
     * there), or an agent whose Lease is still live. */
    {"no SQL pod: nothing to move", DOWN & ~SQL, 0, DEADLINE + 1, NONE, false, false, 0, NEVER, ""},
    {"no SQL pod, unfenced, assumed dead: still nothing", DOWN & ~SQL & ~FENCED, 1000, 500000, NONE,
     false, false, 0, NEVER, ""},
    {"no agent Lease: unmanaged node", DOWN & ~AGENT, 0, DEADLINE + 1, NONE, false, false, 0, NEVER,
     ""},
    {"no agent Lease, no node, no quorum", SQL, 1000, 500000, NONE, false, false, 0, NEVER, ""},
    {"agent live at seen + duration - 1", ALIVE, 0, AGENT_GONE - 1, NONE, false, false, 0,
     AGENT_GONE, ""},
    {"agent live, node NotReady: the live agent wins", DOWN, 0, AGENT_GONE - 1, NONE, false, false,
     0, AGENT_GONE, ""},
    {"agent live, no quorum", ALIVE & ~QUORUM, 0, SEEN, NONE, false, false, 0, AGENT_GONE, ""},
    {"agent live, assumeDeadAfter already reached", DOWN, 1000, AGENT_GONE - 1, NONE, false, false,
     0, AGENT_GONE, ""},

    /* Agent gone, node not: watch, until the kubelet Lease goes stale. */
    {"agent gone at seen + duration, node Ready, kubelet fresh", ALIVE, 0, AGENT_GONE, WATCH, false,
     false, 0, KUBELET_OLD, "AgentGoneNodeAlive"},
    {"kubelet Lease at seen + stale - 1: still fresh", ALIVE, 0, KUBELET_OLD - 1, WATCH, false,
     false, 0, KUBELET_OLD, "AgentGoneNodeAlive"},
    {"Ready, no kubelet Lease: only the Ready condition counts", ALIVE & ~KUBELET, 0, 500000, WATCH,
     false, false, 0, NEVER, "AgentGoneNodeAlive"},
    {"node alive, no quorum: watch, not paused", ALIVE & ~QUORUM, 0, AGENT_GONE, WATCH, false,
     false, 0, KUBELET_OLD, "AgentGoneNodeAlive"},
    {"node alive, assumeDeadAfter reached: watch", ALIVE & ~FENCED, 1000, AGENT_GONE, WATCH, false,
     false, 0, KUBELET_OLD, "AgentGoneNodeAlive"},

    /* Agent gone and node gone (NotReady, kubelet Lease stale, or no Node). */
    {"kubelet Lease stale exactly at seen + stale", ALIVE, 0, KUBELET_OLD, FENCE_WAIT, false, false,
     DEADLINE, DEADLINE, "WaitingForFencingDeadline"},
    {"NotReady, agent gone exactly at seen + duration", DOWN, 0, AGENT_GONE, FENCE_WAIT, false,
     false, DEADLINE, DEADLINE, "WaitingForFencingDeadline"},
    {"NotReady, no kubelet Lease", DOWN & ~KUBELET, 0, AGENT_GONE, FENCE_WAIT, false, false,
     DEADLINE, DEADLINE, "WaitingForFencingDeadline"},
    {"no Node object", ALIVE & ~NODE & ~READY, 0, AGENT_GONE, FENCE_WAIT, false, false, DEADLINE,
     DEADLINE, "WaitingForFencingDeadline"},
    {"no Node object, Ready flag left set", ALIVE & ~NODE, 0, AGENT_GONE, FENCE_WAIT, false, false,
     DEADLINE, DEADLINE, "WaitingForFencingDeadline"},

    /* Quorum guard: it looks dead, but so do too many others. */
    {"no quorum, fenced past its deadline", DOWN & ~QUORUM, 0, DEADLINE, NO_QUORUM, false, false, 0,
     NEVER, "RemediationPausedNoQuorum"},
    {"no quorum, unfenced", DOWN & ~QUORUM & ~FENCED, 0, AGENT_GONE, NO_QUORUM, false, false, 0,
     NEVER, "RemediationPausedNoQuorum"},
    {"no quorum, assumed dead", DOWN & ~QUORUM & ~FENCED, 1000, 500000, NO_QUORUM, false, false, 0,
     NEVER, "RemediationPausedNoQuorum"},

    /* Fenced: wait for seen + duration + watchdog + margin. */
    {"fenced, deadline - 1", DOWN, 0, DEADLINE - 1, FENCE_WAIT, false, false, DEADLINE, DEADLINE,
     "WaitingForFencingDeadline"},
    {"fenced, exactly at the deadline", DOWN, 0, DEADLINE, OUT_OF_SERVICE, false, true, 0, NEVER,
     "NodeFenced"},
    {"fenced, long after the deadline", DOWN, 0, 10 * DEADLINE, OUT_OF_SERVICE, false, true, 0,
     NEVER, "NodeFenced"},
    {"fenced, kubelet stale only, at the deadline", ALIVE, 0, DEADLINE, OUT_OF_SERVICE, false, true,
     0, NEVER, "NodeFenced"},

    /* Unfenced: only the safe NoExecute taint, unless assumed dead. */
    {"unfenced", DOWN & ~FENCED, 0, AGENT_GONE, UNFENCED, false, false, 0, NEVER, "NodeNotFenced"},
    {"unfenced, long after any fencing deadline", DOWN & ~FENCED, 0, 10 * DEADLINE, UNFENCED, false,
     false, 0, NEVER, "NodeNotFenced"},
    {"unfenced, assumeDeadAfter 60 s: next look at seen + 60 s", DOWN & ~FENCED, 60000,
     SEEN + 60000 - 1, UNFENCED, false, false, 0, SEEN + 60000, "NodeNotFenced"},
    {"unfenced, assumeDeadAfter 60 s reached", DOWN & ~FENCED, 60000, SEEN + 60000, OUT_OF_SERVICE,
     true, true, 0, NEVER, "NodeAssumedDead"},

    /* Fenced and assumeDeadAfter: whichever comes first. */
    {"fenced, assumeDeadAfter before the deadline: next look at it", DOWN, 20000, AGENT_GONE,
     FENCE_WAIT, false, false, DEADLINE, SEEN + 20000, "WaitingForFencingDeadline"},
    {"fenced, assumeDeadAfter reached before the deadline", DOWN, 20000, SEEN + 20000,
     OUT_OF_SERVICE, true, true, 0, NEVER, "NodeAssumedDead"},
    {"fenced, assumeDeadAfter after the deadline: next look at the deadline", DOWN, 60000,
     DEADLINE - 1, FENCE_WAIT, false, false, DEADLINE, DEADLINE, "WaitingForFencingDeadline"},
    {"fenced, deadline first: fenced, not assumed", DOWN, 60000, DEADLINE, OUT_OF_SERVICE, false,
     true, 0, NEVER, "NodeFenced"},
    {"fenced, both passed: fenced, not assumed", DOWN, 20000, DEADLINE, OUT_OF_SERVICE, false, true,
     0, NEVER, "NodeFenced"},
    {"assumeDeadAfter shorter than the Lease: agent gone is still required", DOWN & ~FENCED, 5000,
     AGENT_GONE, OUT_OF_SERVICE, true, true, 0, NEVER, "NodeAssumedDead"},

    /* Fenced, but its roll call does not ask this remediator (a remediator
     * elected after the node last renewed, or an agent that does not say
     * whom it asks): the node may still feed its watchdog on its peers'
     * outage verdict, so its deadline does not bind; only the safe taint,
     * or assumeDeadAfter. */
    {"fenced, remediator not asked, at the agent's expiry", DOWN & ~ASKED, 0, AGENT_GONE, UNFENCED,
     false, false, 0, NEVER, "RemediatorNotAskedByNode"},
    {"fenced, remediator not asked, long after the deadline", DOWN & ~ASKED, 0, 10 * DEADLINE,
     UNFENCED, false, false, 0, NEVER, "RemediatorNotAskedByNode"},
    {"fenced, remediator not asked, assumeDeadAfter 60 s: next look at it", DOWN & ~ASKED, 60000,
     DEADLINE, UNFENCED, false, false, 0, SEEN + 60000, "RemediatorNotAskedByNode"},
    {"fenced, remediator not asked, assumeDeadAfter 60 s reached", DOWN & ~ASKED, 60000,
     SEEN + 60000, OUT_OF_SERVICE, true, true, 0, NEVER, "NodeAssumedDead"},
    {"asked but unfenced: asking changes nothing", DOWN & ~FENCED, 0, DEADLINE, UNFENCED, false,
     false, 0, NEVER, "NodeNotFenced"},

    /* Out-of-service is on: lift it only for a Ready node whose agent is
     * live again and renewed since; keep it otherwise, force-deleting the SQL
     * pods while the node is down. (Without quorum: test_no_action_without_quorum.) */
    {"out-of-service, back: Ready, agent live, renewed since", ALIVE | OOS | RENEWED, 0,
     AGENT_GONE - 1, LIFT, false, false, 0, NEVER, "NodeBack"},
    {"out-of-service, back, no SQL pod any more", (ALIVE & ~SQL) | OOS | RENEWED, 0, SEEN, LIFT,
     false, false, 0, NEVER, "NodeBack"},
    {"out-of-service, back, unfenced", (ALIVE & ~FENCED) | OOS | RENEWED, 0, SEEN, LIFT, false,
     false, 0, NEVER, "NodeBack"},
    {"out-of-service, Ready, agent live, not renewed since", ALIVE | OOS, 0, SEEN, KEEP, false,
     false, 0, AGENT_GONE, "NodeStillDown"},
    {"out-of-service, NotReady, agent live, renewed", DOWN | OOS | RENEWED, 0, SEEN, KEEP, false,
     true, 0, AGENT_GONE, "NodeStillDown"},
    {"out-of-service, no Node object, agent live, renewed", (ALIVE & ~NODE) | OOS | RENEWED, 0,
     SEEN, KEEP, false, true, 0, AGENT_GONE, "NodeStillDown"},
    {"out-of-service, Ready, renewed, agent gone at seen + duration", ALIVE | OOS | RENEWED, 0,
     AGENT_GONE, KEEP, false, true, 0, NEVER, "NodeStillDown"},
    {"out-of-service, NotReady, agent gone", DOWN | OOS, 0, DEADLINE, KEEP, false, true, 0, NEVER,
     "NodeStillDown"},
    {"out-of-service, Ready, no agent Lease", (ALIVE & ~AGENT) | OOS | RENEWED, 0, SEEN, KEEP,
     false, false, 0, NEVER, "NodeStillDown"},
    {"out-of-service, NotReady, no agent Lease", (DOWN & ~AGENT) | OOS, 0, SEEN, KEEP, false, true,
     0, NEVER, "NodeStillDown"},
    {"out-of-service, no SQL pod, NotReady", (DOWN & ~SQL) | OOS, 0, DEADLINE, KEEP, false, true, 0,
     NEVER, "NodeStillDown"},
};

static struct remedy_view view_of(unsigned facts) {
    return (struct remedy_view){
        .hosts_sql = facts & SQL,
        .has_agent_lease = facts & AGENT,
        .agent_seen_ms = SEEN,
        .agent_duration_ms = DURATION,
        .fenced = facts & FENCED,
        .watchdog_timeout_ms = WATCHDOG,
        .node_exists = facts & NODE,
        .node_ready = facts & READY,
        .has_kubelet_lease = facts & KUBELET,
        .kubelet_seen_ms = SEEN,
        .out_of_service = facts & OOS,
        .agent_renewed_since = facts & RENEWED,
        .quorum = facts & QUORUM,
        .asks_remediator = facts & ASKED,
    };
}

/* "SQL|AGENT|..." for a failure message; one static buffer. */
static const char *facts_text(unsigned facts) {
    static const char *const names[] = {"SQL",     "AGENT", "FENCED",  "NODE",   "READY",
                                        "KUBELET", "OOS",   "RENEWED", "QUORUM", "ASKED"};
    static char buf[96];
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (facts & (1u << i))
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? "|" : "", names[i]);
    return buf;
}

static const char *next_text(uint64_t t, char *buf, size_t size) {
    if (t == NEVER)
        return "never";
    snprintf(buf, size, "%" PRIu64, t);
    return buf;
}

START_TEST(test_decide) {
    const struct row *w = &rows[_i];
    const struct remedy_config c = {.fence_margin_ms = MARGIN,
                                    .node_lease_stale_ms = STALE,
                                    .assume_dead_after_ms = w->assume_dead_ms};
    struct remedy_view v = view_of(w->facts);
    struct remedy_decision d;
    char got[24], want[24];

    memset(&d, 0xa5, sizeof(d)); /* every field is written */
    remedy_decide(&c, &v, w->now_ms, &d);
    ck_assert_msg(d.verdict == w->verdict, "%s: verdict %s, want %s", w->name,
                  remedy_verdict_name(d.verdict), remedy_verdict_name(w->verdict));
    ck_assert_msg(d.assumed_dead == w->assumed_dead, "%s: assumed_dead %d", w->name,
                  d.assumed_dead);
    ck_assert_msg(d.force_delete == w->force_delete, "%s: force_delete %d", w->name,
                  d.force_delete);
    if (w->verdict == FENCE_WAIT)
        ck_assert_msg(d.deadline_ms == w->deadline_ms, "%s: deadline %" PRIu64, w->name,
                      d.deadline_ms);
    ck_assert_msg(d.next_ms == w->next_ms, "%s: next %s, want %s", w->name,
                  next_text(d.next_ms, got, sizeof(got)),
                  next_text(w->next_ms, want, sizeof(want)));
    ck_assert_msg(d.reason && !strcmp(d.reason, w->reason), "%s: reason \"%s\", want \"%s\"",
                  w->name, d.reason ? d.reason : "(null)", w->reason);
    /* A verdict that can change by time alone says when, and that is later. */
    ck_assert_msg(d.next_ms > w->now_ms, "%s: next look not in the future", w->name);
}
END_TEST

/* Walk a node through time, every millisecond: the decision changes exactly
 * at the next_ms the previous look announced, and never between. */
START_TEST(test_next_is_exact) {
    static const unsigned cases[] = {DOWN,        ALIVE,        DOWN & ~FENCED, ALIVE & ~KUBELET,
                                     ALIVE | OOS, DOWN & ~ASKED};
    static const uint64_t assume[] = {0, 20000, 60000};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (size_t j = 0; j < sizeof(assume) / sizeof(assume[0]); j++) {
            struct remedy_config c = {.fence_margin_ms = MARGIN,
                                      .node_lease_stale_ms = STALE,
                                      .assume_dead_after_ms = assume[j]};
            struct remedy_view v = view_of(cases[i]);
            struct remedy_decision d, prev;

            remedy_decide(&c, &v, 0, &prev);
            /* Plain ifs: a ck_assert per millisecond would be far too slow. */
            for (uint64_t t = 1; t < 3 * DEADLINE; t++) {
                remedy_decide(&c, &v, t, &d);
                if (t < prev.next_ms) {
                    if (d.verdict != prev.verdict || d.next_ms != prev.next_ms ||
                        d.force_delete != prev.force_delete)
                        ck_abort_msg("case %zu/%zu: changed at %" PRIu64 " before %" PRIu64, i, j,
                                     t, prev.next_ms);
                    continue;
                }
                if (t != prev.next_ms)
                    ck_abort_msg("case %zu/%zu: next look %" PRIu64 " missed", i, j, prev.next_ms);
                if (d.verdict == prev.verdict && d.force_delete == prev.force_delete &&
                    d.assumed_dead == prev.assumed_dead)
                    ck_abort_msg("case %zu/%zu: nothing changed at next look %" PRIu64, i, j, t);
                prev = d;
            }
        }
}
END_TEST

/* A fenced node's deadline moves with each of its parts. */
START_TEST(test_deadline_parts) {
    struct remedy_config c = {.fence_margin_ms = 0, .node_lease_stale_ms = STALE};
    struct remedy_view v = view_of(DOWN);
    struct remedy_decision d;

    v.agent_seen_ms = 1;
    v.agent_duration_ms = 40000;
    v.watchdog_timeout_ms = 60000;
    remedy_decide(&c, &v, 40001, &d);
    ck_assert_int_eq(d.verdict, REMEDY_FENCE_WAIT);
    ck_assert_uint_eq(d.deadline_ms, 100001);
    ck_assert_uint_eq(d.next_ms, 100001);
    remedy_decide(&c, &v, 100001, &d);
    ck_assert_int_eq(d.verdict, REMEDY_OUT_OF_SERVICE);
    c.fence_margin_ms = 5000;
    remedy_decide(&c, &v, 100001, &d);
    ck_assert_int_eq(d.verdict, REMEDY_FENCE_WAIT);
    ck_assert_uint_eq(d.deadline_ms, 105001);
    /* The kubelet Lease's own seen time, not the agent's, makes it stale. */
    v = view_of(ALIVE);
    v.kubelet_seen_ms = SEEN + 8000;
    remedy_decide(&c, &v, AGENT_GONE, &d);
    ck_assert_int_eq(d.verdict, REMEDY_WATCH);
    ck_assert_uint_eq(d.next_ms, SEEN + 8000 + STALE);
    remedy_decide(&c, &v, SEEN + 8000 + STALE, &d);
    ck_assert_int_eq(d.verdict, REMEDY_FENCE_WAIT);
    ck_assert_uint_eq(d.deadline_ms, AGENT_GONE + WATCHDOG + 5000);
}
END_TEST

/* DOCUMENTED, NOT IMPLEMENTED (docs/node-loss.md, "Quorum guard": "The
 * remediator acts on no node while fewer than half of the agents it knows
 * are live"). Reported: with out-of-service on, remedy_decide() does not
 * look at quorum, so without quorum it still returns LIFT (the taint is
 * removed) and KEEP with force_delete (SQL pods are force-deleted), and
 * agent/cluster.c acts on both. Every node, every time: no action. */
/* docs/model/README.md, finding 1: a node's fencing deadline binds only the
 * remediators its roll call asks. Every combination of facts without ASKED,
 * at every boundary, without assumeDeadAfter: never a new out-of-service. */
START_TEST(test_unasked_remediator_never_fences) {
    static const uint64_t times[] = {SEEN, AGENT_GONE, KUBELET_OLD, DEADLINE, 10 * DEADLINE};
    struct remedy_config c = {.fence_margin_ms = MARGIN, .node_lease_stale_ms = STALE};

    for (unsigned facts = 0; facts < ASKED; facts++)
        for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
            struct remedy_view v = view_of(facts);
            struct remedy_decision d;

            remedy_decide(&c, &v, times[t], &d);
            if (!v.out_of_service && d.verdict == REMEDY_OUT_OF_SERVICE)
                ck_abort_msg("%s at %" PRIu64 ": out-of-service by a remediator not asked",
                             facts_text(facts), times[t]);
        }
}
END_TEST

START_TEST(test_no_action_without_quorum) {
    static const uint64_t times[] = {SEEN, AGENT_GONE - 1, AGENT_GONE, DEADLINE, 10 * DEADLINE};
    static const uint64_t assume[] = {0, 20000};
    char lift[128] = "", force[128] = "", other[128] = "";
    size_t n = 0;

    for (unsigned facts = 0; facts < 2 * ASKED; facts++) {
        if (facts & QUORUM)
            continue;
        for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++)
            for (size_t a = 0; a < sizeof(assume) / sizeof(assume[0]); a++) {
                struct remedy_config c = {.fence_margin_ms = MARGIN,
                                          .node_lease_stale_ms = STALE,
                                          .assume_dead_after_ms = assume[a]};
                struct remedy_view v = view_of(facts);
                struct remedy_decision d;
                char *example;

                remedy_decide(&c, &v, times[t], &d);
                /* docs/node-loss.md: without quorum nothing new is applied;
                 * an out-of-service taint already on is kept (its pods still
                 * force-deleted while the node is down) or lifted when the
                 * node is back, both safe. */
                if (v.out_of_service && (d.verdict == REMEDY_LIFT || d.verdict == REMEDY_KEEP))
                    continue;
                if (d.verdict == REMEDY_LIFT)
                    example = lift;
                else if (d.force_delete)
                    example = force;
                else if (d.verdict == REMEDY_OUT_OF_SERVICE || d.verdict == REMEDY_UNFENCED)
                    example = other;
                else
                    continue;
                n++;
                if (!example[0])
                    snprintf(example, sizeof(lift), " [%s at %" PRIu64 ": %s%s]", facts_text(facts),
                             times[t], remedy_verdict_name(d.verdict),
                             d.force_delete ? " force_delete" : "");
            }
    }
    ck_assert_msg(n == 0, "%zu decisions act without quorum, e.g.%s%s%s", n, lift, force, other);
}
END_TEST

START_TEST(test_names) {
    static const struct {
        enum remedy_verdict v;
        const char *name;
    } names[] = {
        {REMEDY_NONE, "none"},
        {REMEDY_WATCH, "watch"},
        {REMEDY_NO_QUORUM, "no_quorum"},
        {REMEDY_FENCE_WAIT, "fence_wait"},
        {REMEDY_OUT_OF_SERVICE, "out_of_service"},
        {REMEDY_UNFENCED, "unfenced"},
        {REMEDY_LIFT, "lift"},
        {REMEDY_KEEP, "keep"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_str_eq(remedy_verdict_name(names[i].v), names[i].name);
    ck_assert_str_eq(remedy_verdict_name((enum remedy_verdict)(REMEDY_KEEP + 1)), "invalid");
    ck_assert_str_eq(remedy_verdict_name((enum remedy_verdict) - 1), "invalid");
    ck_assert_str_eq(remedy_verdict_name((enum remedy_verdict)1000), "invalid");
}
END_TEST

int main(void) {
    Suite *s = suite_create("remedy");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_decide, 0, sizeof(rows) / sizeof(rows[0]));
    tcase_add_test(tc, test_next_is_exact);
    tcase_add_test(tc, test_deadline_parts);
    tcase_add_test(tc, test_unasked_remediator_never_fences);
    tcase_add_test(tc, test_no_action_without_quorum);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
