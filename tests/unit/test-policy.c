/*
 * Tests for agent/policy.c. Most cases are timelines: a config and a list of
 * steps (a health input, a tick, an action result, a start-up reconciliation
 * or the target leaving), each at a given time, with the exact list of
 * actions it must emit and the next deadline it must leave. One loop test
 * runs them all; a failure names the timeline and the step and prints the
 * actions it got. Smaller tests cover the desired state, the argument checks
 * and the names.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

enum step_kind { STEP_END, STEP_HEALTH, STEP_TICK, STEP_RESULT, STEP_RECONCILE, STEP_GONE };

/* One expected action; the list ends at the first with a NULL reason. */
struct expect {
    enum policy_action_kind kind;
    enum policy_status status;
    enum policy_event_type type;
    const char *reason;
    const char *message_has; /* substring of the message; NULL: not checked */
};

struct step {
    enum step_kind kind;
    uint64_t at_ms;
    /* STEP_HEALTH */
    enum health_state state;
    const char *reason;
    const char *message;
    /* STEP_RESULT */
    enum policy_action_kind result_kind;
    int result;
    /* STEP_RECONCILE */
    struct policy_observed observed;
    /* after the step */
    uint64_t deadline_ms;
    struct expect expect[POLICY_MAX_ACTIONS];
};

struct timeline {
    const char *name;
    const struct policy_config *config; /* NULL: defaults */
    struct step steps[12];
};

#define NEVER   UINT64_MAX
#define T       POLICY_STATUS_TRUE
#define F       POLICY_STATUS_FALSE
#define NORMAL  POLICY_EVENT_NORMAL
#define WARNING POLICY_EVENT_WARNING

#define NO_ACTIONS                                                                                 \
    { .reason = NULL }
#define READY(st, rs)                                                                              \
    { POLICY_ACTION_SET_POD_READY, st, NORMAL, rs, "because " rs }
#define COND(st, rs)                                                                               \
    { POLICY_ACTION_SET_NODE_CONDITION, st, NORMAL, rs, "because " rs }
#define EVENT(type, rs, msg)                                                                       \
    { POLICY_ACTION_EVENT, POLICY_STATUS_UNSET, type, rs, msg }
#define ACT(kind, rs, msg)                                                                         \
    { POLICY_ACTION_##kind, POLICY_STATUS_UNSET, NORMAL, rs, msg }
#define FAILURE(rs) READY(F, rs), COND(T, rs), EVENT(WARNING, rs, "because " rs)
#define HEALED      READY(T, "ProbesPassing"), COND(F, "ProbesPassing")
#define RECOVERED   HEALED, EVENT(NORMAL, "Recovered", "because ProbesPassing")
#define TAINTED(rs)                                                                                \
    ACT(TAINT_NOEXECUTE, rs, NULL),                                                                \
        EVENT(WARNING, "FailingOver", "tainted edgewarden.io/sqledge-unhealthy:NoExecute")
#define QUARANTINED(after)                                                                         \
    ACT(TAINT_NOSCHEDULE, "Quarantined", "quarantine for 300 s " after),                           \
        EVENT(NORMAL, "Quarantined", "turned to NoSchedule for 300 s " after),                     \
        ACT(RELEASE_BUDGET, "Quarantined", NULL)
#define LIFTED                                                                                     \
    ACT(REMOVE_TAINT, "QuarantineLifted", "quarantine of 300 s over"),                             \
        EVENT(NORMAL, "QuarantineLifted", "removed taint edgewarden.io/sqledge-unhealthy")
#define GONE_COND                                                                                  \
    { POLICY_ACTION_SET_NODE_CONDITION, F, NORMAL, "TargetGone", "the SQL pod left this node" }
#define WAITING_EVENT EVENT(WARNING, "WaitingForFailoverBudget", "waiting for failover budget")

#define HEALTH(at, st, rs, dl, ...)                                                                \
    {                                                                                              \
        .kind = STEP_HEALTH, .at_ms = at, .state = HEALTH_##st, .reason = rs,                      \
        .message = "because " rs, .deadline_ms = dl, .expect = {                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define TICK(at, dl, ...)                                                                          \
    {                                                                                              \
        .kind = STEP_TICK, .at_ms = at, .deadline_ms = dl, .expect = { __VA_ARGS__ }               \
    }
#define RESULT(at, k, r, dl, ...)                                                                  \
    {                                                                                              \
        .kind = STEP_RESULT, .at_ms = at, .result_kind = POLICY_ACTION_##k, .result = r,           \
        .deadline_ms = dl, .expect = {                                                             \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define RECONCILE(at, obs, dl, ...)                                                                \
    {                                                                                              \
        .kind = STEP_RECONCILE, .at_ms = at, .observed = obs, .deadline_ms = dl, .expect = {       \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define GONE(at, dl, ...)                                                                          \
    {                                                                                              \
        .kind = STEP_GONE, .at_ms = at, .deadline_ms = dl, .expect = { __VA_ARGS__ }               \
    }

#define OBSERVED(ready, cond, taint_, cordoned_, held)                                             \
    {                                                                                              \
        .pod_ready = ready, .node_condition = cond, .taint = POLICY_TAINT_##taint_,                \
        .cordoned = cordoned_, .budget_held = held                                                 \
    }
#define U POLICY_STATUS_UNSET

/* The common start: a healthy target, both conditions written once. */
#define START_HEALTHY HEALTH(0, HEALTHY, "ProbesPassing", NEVER, HEALED)
/* Healthy, then a crash loop at 1 s, granted at once: tainted NoExecute. */
#define FAILED_OVER                                                                                \
    START_HEALTHY,                                                                                 \
        HEALTH(1000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),                             \
               ACT(ACQUIRE_BUDGET, "CrashLoop", "crash loop: because CrashLoop")),                 \
        RESULT(1000, ACQUIRE_BUDGET, 0, NEVER, TAINTED("CrashLoop"))

static const struct policy_config optional_steps = {
    .relocate_after_ms = 30000,
    .restart_allowance_ms = 20000,
    .budget_retry_ms = 5000,
    .quarantine_ms = 300000,
    .event_dedup_window_ms = 60000,
    .evict_enabled = true,
    .evict_after_ms = 60000,
    .cordon_enabled = true,
    .cordon_after_ms = 10000,
};

static const struct policy_config evict_early = {
    .relocate_after_ms = 30000,
    .restart_allowance_ms = 20000,
    .budget_retry_ms = 5000,
    .quarantine_ms = 300000,
    .event_dedup_window_ms = 60000,
    .evict_enabled = true,
    .evict_after_ms = 10000,
};

static const struct policy_config no_quarantine = {
    .relocate_after_ms = 30000,
    .restart_allowance_ms = 20000,
    .budget_retry_ms = 5000,
    .quarantine_ms = 0,
    .event_dedup_window_ms = 60000,
};

static const struct policy_config zero_delays = {
    .relocate_after_ms = 0,
    .restart_allowance_ms = 0,
    .budget_retry_ms = 1,
    .quarantine_ms = 300000,
    .event_dedup_window_ms = 0,
};

static const struct policy_config everything_at_once = {
    .relocate_after_ms = 30000,
    .restart_allowance_ms = 20000,
    .budget_retry_ms = 5000,
    .quarantine_ms = 0,
    .event_dedup_window_ms = 60000,
    .evict_enabled = true,
    .evict_after_ms = 10000,
    .cordon_enabled = true,
    .cordon_after_ms = 10000,
};

static const struct timeline timelines[] = {
    {"failure: unready, condition and Event at once; relocation at relocate_after, not before",
     NULL,
     {
         START_HEALTHY, HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         HEALTH(2000, FAILED, "ListenerHung", 31000, NO_ACTIONS), /* same input: silent */
         TICK(30999, 31000, NO_ACTIONS),
         TICK(31000, NEVER,
              ACT(ACQUIRE_BUDGET, "ListenerHung", "failed for 30 s: because ListenerHung")),
         RESULT(31010, ACQUIRE_BUDGET, 0, NEVER, TAINTED("ListenerHung")),
         TICK(200000, NEVER, NO_ACTIONS), /* optional steps are off by default */
     }},
    {"crash loop relocates at once",
     NULL,
     {
         FAILED_OVER,
         HEALTH(2000, FAILED, "CrashLoop", NEVER, NO_ACTIONS),
     }},
    {"crash loop as a new reason within failed relocates at once",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "EngineExited", 21000, FAILURE("EngineExited")),
         HEALTH(3000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),
                ACT(ACQUIRE_BUDGET, "CrashLoop", "crash loop")),
     }},
    {"engine gone, back within the restart allowance: no taint",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "EngineExited", 21000, FAILURE("EngineExited")),
         /* the engine runs again; the listener is not up yet */
         HEALTH(6000, FAILED, "ListenerRefused", 31000, FAILURE("ListenerRefused")),
         TICK(21000, 31000, NO_ACTIONS),
         HEALTH(22000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         TICK(40000, NEVER, NO_ACTIONS),
     }},
    {"engine gone and not back: taint at the restart allowance",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "EngineExited", 21000, FAILURE("EngineExited")),
         /* still gone: the clock keeps running */
         HEALTH(5000, FAILED, "EngineZombie", 21000, FAILURE("EngineZombie")),
         TICK(20999, 21000, NO_ACTIONS),
         TICK(21000, NEVER,
              ACT(ACQUIRE_BUDGET, "EngineZombie",
                  "engine gone, not back within the 20 s restart allowance")),
         RESULT(21000, ACQUIRE_BUDGET, 0, NEVER, TAINTED("EngineZombie")),
     }},
    {"budget refused: one Event, retry every budget_retry, taint once granted",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),
                ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         RESULT(1100, ACQUIRE_BUDGET, -EBUSY, 6100, WAITING_EVENT), TICK(6099, 6100, NO_ACTIONS),
         TICK(6100, NEVER, ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         RESULT(6200, ACQUIRE_BUDGET, -EBUSY, 11200, NO_ACTIONS), /* announced once */
         RESULT(6300, ACQUIRE_BUDGET, -EBUSY, 11200, NO_ACTIONS), /* not requested: ignored */
         TICK(11200, NEVER, ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         RESULT(11300, ACQUIRE_BUDGET, 0, NEVER, TAINTED("CrashLoop")),
         RESULT(11400, ACQUIRE_BUDGET, 0, NEVER, NO_ACTIONS), /* duplicate grant */
     }},
    {"recovery after failover: NoSchedule quarantine, then removal",
     NULL,
     {
         FAILED_OVER,
         HEALTH(50000, HEALTHY, "ProbesPassing", 350000, RECOVERED, QUARANTINED("after recovery")),
         HEALTH(60000, HEALTHY, "ProbesPassing", 350000, NO_ACTIONS),
         TICK(349999, 350000, NO_ACTIONS),
         TICK(350000, NEVER, LIFTED),
     }},
    {"quarantine waits for a healthy target before it is lifted",
     NULL,
     {
         FAILED_OVER,
         HEALTH(50000, HEALTHY, "ProbesPassing", 350000, RECOVERED, QUARANTINED("after recovery")),
         HEALTH(340000, SUSPECT, "ProbeFailing", NEVER, NO_ACTIONS),
         TICK(360000, NEVER, NO_ACTIONS),
         HEALTH(370000, HEALTHY, "ProbesPassing", NEVER, LIFTED),
     }},
    {"flapping in the quarantine: NoExecute again at once, after a new budget slot",
     NULL,
     {
         FAILED_OVER,
         HEALTH(50000, HEALTHY, "ProbesPassing", 350000, RECOVERED, QUARANTINED("after recovery")),
         HEALTH(100000, FAILED, "ListenerHung", NEVER, FAILURE("ListenerHung"),
                ACT(ACQUIRE_BUDGET, "ListenerHung",
                    "failed again during the quarantine: because ListenerHung")),
         RESULT(100010, ACQUIRE_BUDGET, 0, NEVER, TAINTED("ListenerHung")),
         HEALTH(200000, HEALTHY, "ProbesPassing", 500000, RECOVERED, QUARANTINED("after recovery")),
         TICK(500000, NEVER, LIFTED),
     }},
    {"flapping in the quarantine, budget refused: NoSchedule kept, cooldown restarts on recovery",
     NULL,
     {
         FAILED_OVER,
         HEALTH(50000, HEALTHY, "ProbesPassing", 350000, RECOVERED, QUARANTINED("after recovery")),
         HEALTH(100000, FAILED, "ListenerHung", NEVER, FAILURE("ListenerHung"),
                ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(100010, ACQUIRE_BUDGET, -EBUSY, 105010, WAITING_EVENT),
         TICK(105010, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(105100, ACQUIRE_BUDGET, -EBUSY, 110100, NO_ACTIONS),
         HEALTH(110000, HEALTHY, "ProbesPassing", 410000, RECOVERED),
         TICK(350000, 410000, NO_ACTIONS),
         TICK(410000, NEVER, LIFTED),
     }},
    {"healed before the grant: the slot goes back at once",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         TICK(31000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         HEALTH(31500, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         RESULT(32000, ACQUIRE_BUDGET, 0, NEVER,
                ACT(RELEASE_BUDGET, "NotNeeded", "after the target stopped failing")),
     }},
    {"healed while waiting for the budget: no more retries",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),
                ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         RESULT(1000, ACQUIRE_BUDGET, -EIO, 6000, WAITING_EVENT),
         HEALTH(3000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         TICK(6000, NEVER, NO_ACTIONS),
     }},
    {"healed while the request is out: a refusal afterwards is dropped",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),
                ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         HEALTH(3000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         RESULT(3100, ACQUIRE_BUDGET, -EBUSY, NEVER, NO_ACTIONS),
         RESULT(3200, ACQUIRE_BUDGET, 0, NEVER,
                ACT(RELEASE_BUDGET, "NotNeeded", "granted but is not needed")),
     }},
    {"a late timer: the relocation due before the recovery still happens",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         HEALTH(40000, HEALTHY, "ProbesPassing", NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL),
                RECOVERED),
         RESULT(40100, ACQUIRE_BUDGET, 0, NEVER, ACT(RELEASE_BUDGET, "NotNeeded", NULL)),
     }},
    {"Event dedup: the same reason not again within the window, another reason is",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         HEALTH(5000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         HEALTH(10000, FAILED, "ListenerHung", 40000, READY(F, "ListenerHung"),
                COND(T, "ListenerHung")),
         HEALTH(11000, FAILED, "ListenerRefused", 40000, FAILURE("ListenerRefused")),
         HEALTH(20000, HEALTHY, "ProbesPassing", NEVER, HEALED),
         HEALTH(61000, FAILED, "ListenerHung", 91000, FAILURE("ListenerHung")),
         HEALTH(65000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
     }},
    {"unknown holds the desired state and stops the escalation clock",
     NULL,
     {
         START_HEALTHY, HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         HEALTH(2000, UNKNOWN, "NotMeasurable", NEVER, NO_ACTIONS), TICK(40000, NEVER, NO_ACTIONS),
         /* failed again: a new spell; same status and reason, Event deduplicated */
         HEALTH(41000, FAILED, "ListenerHung", 71000, NO_ACTIONS),
         HEALTH(42000, SUSPECT, "ProbeFailing", NEVER, NO_ACTIONS),
         HEALTH(43000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
         HEALTH(44000, UNKNOWN, "NotMeasurable", NEVER, NO_ACTIONS), /* not unready */
     }},
    {"starting after a restart keeps readiness False until healthy",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "EngineExited", 21000, FAILURE("EngineExited")),
         HEALTH(3000, STARTING, "StartupGrace", NEVER, NO_ACTIONS),
         TICK(30000, NEVER, NO_ACTIONS),
         HEALTH(40000, HEALTHY, "ProbesPassing", NEVER, RECOVERED),
     }},
    {"no verdict yet: nothing written",
     NULL,
     {
         HEALTH(0, STARTING, "StartupGrace", NEVER, NO_ACTIONS),
         HEALTH(30000, UNKNOWN, "NoVerdict", NEVER, NO_ACTIONS),
         HEALTH(31000, SUSPECT, "ProbeFailing", NEVER, NO_ACTIONS),
         HEALTH(32000, FAILED, "ListenerHung", 62000, FAILURE("ListenerHung")),
     }},
    {"optional steps when configured: cordon, then taint, then evict; undone after quarantine",
     &optional_steps,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 11000, FAILURE("ListenerHung")),
         TICK(11000, 31000, ACT(CORDON, "ListenerHung", "failed for 10 s"),
              EVENT(WARNING, "Cordoned", "cordoned the node: failed for 10 s")),
         TICK(31000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(31000, ACQUIRE_BUDGET, 0, 61000, TAINTED("ListenerHung")),
         TICK(60999, 61000, NO_ACTIONS),
         TICK(61000, NEVER, ACT(EVICT_POD, "ListenerHung", "failed for 60 s"),
              EVENT(WARNING, "Evicting", "evicting the pod: failed for 60 s")),
         HEALTH(90000, HEALTHY, "ProbesPassing", 390000, RECOVERED, QUARANTINED("after recovery")),
         TICK(390000, NEVER, LIFTED, ACT(UNCORDON, "QuarantineLifted", NULL),
              EVENT(NORMAL, "Uncordoned", "uncordoned the node")),
     }},
    {"cordoned, healed before the taint: uncordoned at once",
     &optional_steps,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 11000, FAILURE("ListenerHung")),
         TICK(11000, 31000, ACT(CORDON, "ListenerHung", NULL), EVENT(WARNING, "Cordoned", NULL)),
         HEALTH(20000, HEALTHY, "ProbesPassing", NEVER, RECOVERED, ACT(UNCORDON, "Recovered", NULL),
                EVENT(NORMAL, "Uncordoned", NULL)),
     }},
    {"eviction waits for the taint (and so for the budget)",
     &evict_early,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         TICK(31000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(31000, ACQUIRE_BUDGET, -EBUSY, 36000, WAITING_EVENT),
         TICK(36000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(36500, ACQUIRE_BUDGET, 0, NEVER, TAINTED("ListenerHung"),
                ACT(EVICT_POD, "ListenerHung", "failed for 10 s"),
                EVENT(WARNING, "Evicting", NULL)),
     }},
    {"no quarantine configured: recovery removes the taint at once",
     &no_quarantine,
     {
         FAILED_OVER,
         HEALTH(50000, HEALTHY, "ProbesPassing", NEVER, RECOVERED,
                ACT(REMOVE_TAINT, "QuarantineLifted", "no quarantine configured"),
                EVENT(NORMAL, "QuarantineLifted", NULL), ACT(RELEASE_BUDGET, "Quarantined", NULL)),
     }},
    {"zero delays fire in the same call",
     &zero_delays,
     {
         HEALTH(0, FAILED, "ListenerHung", NEVER, FAILURE("ListenerHung"),
                ACT(ACQUIRE_BUDGET, "ListenerHung", "failed for 0 s")),
         RESULT(0, ACQUIRE_BUDGET, -EBUSY, 1, WAITING_EVENT),
         TICK(1, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
         RESULT(1, ACQUIRE_BUDGET, 0, NEVER, TAINTED("ListenerHung")),
     }},
    {"target gone after failover: condition False, quarantine, removal without a target",
     NULL,
     {
         FAILED_OVER,
         GONE(50000, 350000, GONE_COND, QUARANTINED("after the pod left")),
         TICK(350000, NEVER, LIFTED),
         /* a new pod in the slot */
         HEALTH(400000, STARTING, "StartupGrace", NEVER, NO_ACTIONS),
         HEALTH(410000, HEALTHY, "ProbesPassing", NEVER, HEALED),
     }},
    {"target gone while waiting for the budget: no taint, no retry",
     NULL,
     {
         START_HEALTHY,
         HEALTH(1000, FAILED, "CrashLoop", NEVER, FAILURE("CrashLoop"),
                ACT(ACQUIRE_BUDGET, "CrashLoop", NULL)),
         RESULT(1000, ACQUIRE_BUDGET, -EBUSY, 6000, WAITING_EVENT),
         GONE(2000, NEVER, GONE_COND),
         TICK(6000, NEVER, NO_ACTIONS),
     }},
    {"reconcile: our NoExecute and no verdict yet: kept until the verdict",
     NULL,
     {
         RECONCILE(0, OBSERVED(F, T, NOEXECUTE, false, true), NEVER, NO_ACTIONS),
         HEALTH(1000, STARTING, "StartupGrace", NEVER, NO_ACTIONS),
         HEALTH(31000, UNKNOWN, "NoVerdict", NEVER, NO_ACTIONS),
         /* failed: the reason is refreshed; already failed over, no new budget */
         HEALTH(32000, FAILED, "ListenerHung", NEVER, FAILURE("ListenerHung")),
         HEALTH(40000, HEALTHY, "ProbesPassing", 340000, RECOVERED, QUARANTINED("after recovery")),
     }},
    {"reconcile: our NoExecute and a healthy target: quarantine, not removal",
     NULL,
     {
         RECONCILE(0, OBSERVED(F, T, NOEXECUTE, false, true), NEVER, NO_ACTIONS),
         HEALTH(2000, HEALTHY, "ProbesPassing", 302000, RECOVERED, QUARANTINED("after recovery")),
         TICK(302000, NEVER, LIFTED),
     }},
    {"reconcile after a healthy verdict: only differences, no budget to release",
     NULL,
     {
         START_HEALTHY,
         RECONCILE(100, OBSERVED(T, T, NOEXECUTE, false, false), 300100, COND(F, "ProbesPassing"),
                   EVENT(NORMAL, "Recovered", NULL), ACT(TAINT_NOSCHEDULE, "Quarantined", NULL),
                   EVENT(NORMAL, "Quarantined", NULL)),
     }},
    {"reconcile: nothing in the API and a failed target: the full actions",
     NULL,
     {
         RECONCILE(0, OBSERVED(U, U, NONE, false, false), NEVER, NO_ACTIONS),
         HEALTH(1000, FAILED, "ListenerHung", 31000, FAILURE("ListenerHung")),
         TICK(31000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
     }},
    {"reconcile after a failed verdict: the API converges, the spell keeps its start",
     NULL,
     {
         HEALTH(0, FAILED, "ListenerHung", 30000, FAILURE("ListenerHung")),
         RECONCILE(500, OBSERVED(T, F, NONE, false, false), 30000, READY(F, "ListenerHung"),
                   COND(T, "ListenerHung")), /* the Event went out at 0 */
         TICK(30000, NEVER, ACT(ACQUIRE_BUDGET, "ListenerHung", NULL)),
     }},
    {"reconcile: already as measured: silent",
     NULL,
     {
         START_HEALTHY,
         RECONCILE(100, OBSERVED(T, F, NONE, false, false), NEVER, NO_ACTIONS),
     }},
    {"reconcile: NoSchedule quarantine kept, cooldown from now",
     NULL,
     {
         RECONCILE(1000, OBSERVED(T, F, NOSCHEDULE, false, false), NEVER, NO_ACTIONS),
         HEALTH(2000, HEALTHY, "ProbesPassing", 301000, HEALED), /* reason refreshed */
         TICK(301000, NEVER, LIFTED),
     }},
    {"reconcile: NoSchedule quarantine and a failed target: NoExecute after the budget",
     NULL,
     {
         HEALTH(0, FAILED, "ListenerHung", 30000, FAILURE("ListenerHung")),
         RECONCILE(1000, OBSERVED(F, T, NOSCHEDULE, false, false), NEVER,
                   ACT(ACQUIRE_BUDGET, "ListenerHung", "failed again during the quarantine")),
         RESULT(1100, ACQUIRE_BUDGET, 0, NEVER, TAINTED("ListenerHung")),
     }},
    {"reconcile: our cordon and a healthy target: uncordoned",
     NULL,
     {
         START_HEALTHY,
         RECONCILE(100, OBSERVED(T, F, NONE, true, false), NEVER, ACT(UNCORDON, "Recovered", NULL),
                   EVENT(NORMAL, "Uncordoned", NULL)),
     }},
    {"reconcile: a slot held without a taint and a healthy target: released",
     NULL,
     {
         START_HEALTHY,
         RECONCILE(100, OBSERVED(T, F, NONE, false, true), NEVER,
                   ACT(RELEASE_BUDGET, "Recovered", NULL)),
     }},
    {"the longest call: a late recovery after every step fell due (14 actions)",
     &everything_at_once,
     {
         RECONCILE(0, OBSERVED(T, F, NONE, false, true), NEVER, NO_ACTIONS),
         HEALTH(1000, FAILED, "ListenerHung", 11000, FAILURE("ListenerHung")),
         HEALTH(100000, HEALTHY, "ProbesPassing", NEVER, TAINTED("ListenerHung"),
                ACT(CORDON, "ListenerHung", NULL), EVENT(WARNING, "Cordoned", NULL),
                ACT(EVICT_POD, "ListenerHung", NULL), EVENT(WARNING, "Evicting", NULL), RECOVERED,
                ACT(REMOVE_TAINT, "QuarantineLifted", "no quarantine configured"),
                EVENT(NORMAL, "QuarantineLifted", NULL), ACT(UNCORDON, "QuarantineLifted", NULL),
                EVENT(NORMAL, "Uncordoned", NULL), ACT(RELEASE_BUDGET, "Quarantined", NULL)),
     }},
};

static void describe(char *buf, size_t size, const struct policy_actions *got) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < got->n && len < size; i++) {
        const struct policy_action *a = &got->items[i];
        int n = snprintf(buf + len, size - len, "\n  %s %s %s %s \"%s\"",
                         policy_action_kind_name(a->kind), policy_status_name(a->status),
                         policy_event_type_name(a->event_type), a->reason, a->message);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

static void check_actions(const char *name, size_t step, const struct expect *want,
                          const struct policy_actions *got) {
    char dump[4096];
    describe(dump, sizeof(dump), got);
    size_t n_want = 0;
    while (n_want < POLICY_MAX_ACTIONS && want[n_want].reason)
        n_want++;
    ck_assert_msg(got->n == n_want, "%s, step %zu: %zu actions, want %zu:%s", name, step, got->n,
                  n_want, dump);
    for (size_t i = 0; i < n_want; i++) {
        const struct policy_action *a = &got->items[i];
        const struct expect *w = &want[i];
        ck_assert_msg(a->kind == w->kind && a->status == w->status && a->event_type == w->type &&
                          strcmp(a->reason, w->reason) == 0,
                      "%s, step %zu, action %zu: want %s %s %s %s, got:%s", name, step, i,
                      policy_action_kind_name(w->kind), policy_status_name(w->status),
                      policy_event_type_name(w->type), w->reason, dump);
        ck_assert_msg(!w->message_has || strstr(a->message, w->message_has),
                      "%s, step %zu, action %zu: message lacks \"%s\":%s", name, step, i,
                      w->message_has, dump);
    }
}

START_TEST(test_timeline) {
    const struct timeline *tl = &timelines[_i];
    struct policy p;
    ck_assert_int_eq(policy_init(&p, tl->config, 0), 0);
    for (size_t i = 0; i < sizeof(tl->steps) / sizeof(tl->steps[0]); i++) {
        const struct step *s = &tl->steps[i];
        struct policy_actions out;
        int r = 0;
        switch (s->kind) {
        case STEP_END:
            return;
        case STEP_HEALTH:
            r = policy_on_health(&p, s->state, s->reason, s->message, s->at_ms, &out);
            break;
        case STEP_TICK:
            r = policy_tick(&p, s->at_ms, &out);
            break;
        case STEP_RESULT:
            r = policy_on_action_result(&p, s->result_kind, s->result, s->at_ms, &out);
            break;
        case STEP_RECONCILE:
            r = policy_reconcile_start(&p, &s->observed, s->at_ms, &out);
            break;
        case STEP_GONE:
            r = policy_on_target_gone(&p, s->at_ms, &out);
            break;
        }
        ck_assert_msg(r == 0, "%s, step %zu: returned %d", tl->name, i, r);
        check_actions(tl->name, i, s->expect, &out);
        uint64_t next = policy_next_deadline_ms(&p);
        ck_assert_msg(next == s->deadline_ms, "%s, step %zu: next deadline %llu, want %llu",
                      tl->name, i, (unsigned long long)next, (unsigned long long)s->deadline_ms);
    }
}
END_TEST

static struct policy_actions out;

START_TEST(test_desired_state) {
    struct policy p;
    ck_assert_int_eq(policy_init(&p, NULL, 0), 0);
    const struct policy_desired *d = policy_desired(&p);
    ck_assert_int_eq(d->pod_ready, POLICY_STATUS_UNSET);
    ck_assert_int_eq(d->node_condition, POLICY_STATUS_UNSET);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NONE);
    ck_assert_int_eq(d->budget, POLICY_BUDGET_NONE);

    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, "CrashLoop", "3 restarts", 1000, &out), 0);
    ck_assert_int_eq(d->pod_ready, POLICY_STATUS_FALSE);
    ck_assert_int_eq(d->node_condition, POLICY_STATUS_TRUE);
    ck_assert_str_eq(d->reason, "CrashLoop");
    ck_assert_str_eq(d->message, "3 restarts");
    ck_assert_int_eq(d->budget, POLICY_BUDGET_REQUESTED);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NONE);

    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, -EBUSY, 1000, &out),
                     0);
    ck_assert_int_eq(d->budget, POLICY_BUDGET_WAITING);
    ck_assert_int_eq(policy_tick(&p, 6000, &out), 0);
    ck_assert_int_eq(d->budget, POLICY_BUDGET_REQUESTED);
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, 0, 6000, &out), 0);
    ck_assert_int_eq(d->budget, POLICY_BUDGET_HELD);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOEXECUTE);

    /* a failed write changes nothing here; the reporter retries */
    ck_assert_int_eq(
        policy_on_action_result(&p, POLICY_ACTION_TAINT_NOEXECUTE, -ECONNREFUSED, 6100, &out), 0);
    ck_assert_uint_eq(out.n, 0);
    ck_assert_int_eq(policy_last_result(&p, POLICY_ACTION_TAINT_NOEXECUTE), -ECONNREFUSED);
    ck_assert_int_eq(policy_last_result(&p, POLICY_ACTION_ACQUIRE_BUDGET), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOEXECUTE);

    ck_assert_int_eq(policy_on_health(&p, HEALTH_HEALTHY, "ProbesPassing", "ok", 9000, &out), 0);
    ck_assert_int_eq(d->pod_ready, POLICY_STATUS_TRUE);
    ck_assert_int_eq(d->node_condition, POLICY_STATUS_FALSE);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOSCHEDULE);
    ck_assert_int_eq(d->budget, POLICY_BUDGET_NONE);
    ck_assert_int_eq(policy_tick(&p, 309000, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NONE);
    ck_assert_uint_eq(policy_next_deadline_ms(&p), UINT64_MAX);

    ck_assert_int_eq(policy_on_target_gone(&p, 310000, &out), 0);
    ck_assert_int_eq(d->pod_ready, POLICY_STATUS_UNSET);
    ck_assert_int_eq(d->node_condition, POLICY_STATUS_FALSE);
    ck_assert_str_eq(d->reason, "TargetGone");
}
END_TEST

/* quarantine_from_ack (the Kubernetes reporter's setting): the quarantine
 * counts from the moment the reporter says its NoSchedule taint is on the
 * node, and cannot end before. An API outage longer than the quarantine
 * must not lift a quarantine the API server never showed (the replacement
 * would be free to land on the failed node again). */
START_TEST(test_quarantine_from_ack) {
    struct policy_config c;
    struct policy p;
    const struct policy_desired *d;

    policy_config_default(&c);
    c.quarantine_from_ack = true;
    ck_assert_int_eq(policy_init(&p, &c, 0), 0);
    d = policy_desired(&p);
    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, "CrashLoop", "3 restarts", 1000, &out), 0);
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, 0, 1000, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOEXECUTE);
    ck_assert(!policy_quarantine_awaits_taint(&p));
    /* an acknowledgement of NoSchedule before any quarantine means nothing */
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_TAINT_NOSCHEDULE, 0, 1500, &out), 0);

    ck_assert_int_eq(policy_on_health(&p, HEALTH_HEALTHY, "ProbesPassing", "ok", 9000, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOSCHEDULE);
    ck_assert(policy_quarantine_awaits_taint(&p));
    /* The API server is down: far past quarantine_ms, nothing is lifted
     * and no deadline is due. */
    ck_assert_int_eq(policy_tick(&p, 9000 + c.quarantine_ms + 60000, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOSCHEDULE);
    ck_assert_uint_eq(policy_next_deadline_ms(&p), UINT64_MAX);
    /* A failed write is not an acknowledgement. */
    ck_assert_int_eq(
        policy_on_action_result(&p, POLICY_ACTION_TAINT_NOSCHEDULE, -ECONNREFUSED, 400000, &out),
        0);
    ck_assert(policy_quarantine_awaits_taint(&p));
    /* The taint lands at 500000: the whole quarantine from there. */
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_TAINT_NOSCHEDULE, 0, 500000, &out),
                     0);
    ck_assert(!policy_quarantine_awaits_taint(&p));
    ck_assert_uint_eq(policy_next_deadline_ms(&p), 500000 + c.quarantine_ms);
    /* A second acknowledgement does not move it. */
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_TAINT_NOSCHEDULE, 0, 600000, &out),
                     0);
    ck_assert_uint_eq(policy_next_deadline_ms(&p), 500000 + c.quarantine_ms);
    ck_assert_int_eq(policy_tick(&p, 500000 + c.quarantine_ms - 1, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NOSCHEDULE);
    ck_assert_int_eq(policy_tick(&p, 500000 + c.quarantine_ms, &out), 0);
    ck_assert_int_eq(d->taint, POLICY_TAINT_NONE);

    /* A quarantine found on the node at start is on the node: its clock
     * runs from the reconciliation without an acknowledgement. */
    {
        struct policy q;
        struct policy_observed obs = {.pod_ready = POLICY_STATUS_TRUE,
                                      .node_condition = POLICY_STATUS_FALSE,
                                      .taint = POLICY_TAINT_NOSCHEDULE};
        ck_assert_int_eq(policy_init(&q, &c, 0), 0);
        ck_assert_int_eq(policy_on_health(&q, HEALTH_HEALTHY, "ProbesPassing", "ok", 1000, &out),
                         0);
        ck_assert_int_eq(policy_reconcile_start(&q, &obs, 1000, &out), 0);
        ck_assert(!policy_quarantine_awaits_taint(&q));
        ck_assert_int_eq(policy_tick(&q, 1000 + c.quarantine_ms, &out), 0);
        ck_assert_int_eq(policy_desired(&q)->taint, POLICY_TAINT_NONE);
    }
}
END_TEST

START_TEST(test_transition_input) {
    struct policy p;
    ck_assert_int_eq(policy_init(&p, NULL, 0), 0);
    struct health_transition tr = {
        .from = HEALTH_HEALTHY, .to = HEALTH_FAILED, .reason = "ListenerHung", .at_ms = 500};
    snprintf(tr.message, sizeof(tr.message), "tds: timeout 3 times in a row");
    ck_assert_int_eq(policy_on_transition(&p, &tr, 500, &out), 0);
    ck_assert_uint_eq(out.n, 3);
    ck_assert_int_eq(out.items[0].kind, POLICY_ACTION_SET_POD_READY);
    ck_assert_int_eq(out.items[0].status, POLICY_STATUS_FALSE);
    ck_assert_str_eq(out.items[0].reason, "ListenerHung");
    ck_assert_str_eq(out.items[0].message, "tds: timeout 3 times in a row");
    ck_assert_int_eq(out.items[2].kind, POLICY_ACTION_EVENT);
    ck_assert_int_eq(out.items[2].event_type, POLICY_EVENT_WARNING);
    ck_assert_str_eq(out.items[2].message, "tds: timeout 3 times in a row");
    /* a reason update within failed, passed as from == to */
    tr.from = HEALTH_FAILED;
    tr.reason = "CrashLoop";
    ck_assert_int_eq(policy_on_transition(&p, &tr, 600, &out), 0);
    ck_assert_uint_eq(out.n, 4);
    ck_assert_int_eq(out.items[3].kind, POLICY_ACTION_ACQUIRE_BUDGET);
    ck_assert_int_eq(policy_on_transition(&p, NULL, 700, &out), -EINVAL);
}
END_TEST

START_TEST(test_bad_input_changes_nothing) {
    struct policy p;
    struct policy_config c;
    policy_config_default(&c);
    c.budget_retry_ms = 0;
    ck_assert_int_eq(policy_init(&p, &c, 0), -EINVAL);
    ck_assert_int_eq(policy_init(&p, NULL, 0), 0);
    out.n = 7;
    ck_assert_int_eq(policy_on_health(&p, HEALTH_STATE_COUNT, "x", "y", 0, &out), -EINVAL);
    ck_assert_int_eq(policy_on_health(&p, (enum health_state) - 1, "x", "y", 0, &out), -EINVAL);
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_KIND_COUNT, 0, 0, &out), -EINVAL);
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, 1, 0, &out),
                     -EINVAL);
    ck_assert_int_eq(policy_reconcile_start(&p, NULL, 0, &out), -EINVAL);
    ck_assert_int_eq(policy_last_result(&p, POLICY_ACTION_KIND_COUNT), -EINVAL);
    ck_assert_uint_eq(out.n, 7);
    ck_assert_int_eq(policy_desired(&p)->pod_ready, POLICY_STATUS_UNSET);
    /* NULL texts read as "" */
    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, NULL, NULL, 0, &out), 0);
    ck_assert_uint_eq(out.n, 3);
    ck_assert_str_eq(out.items[0].reason, "");
    /* a grant nobody asked for goes back */
    ck_assert_int_eq(policy_init(&p, NULL, 0), 0);
    ck_assert_int_eq(policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, 0, 0, &out), 0);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_int_eq(out.items[0].kind, POLICY_ACTION_RELEASE_BUDGET);
}
END_TEST

static bool utf8_complete(const char *s) {
    size_t i = 0, len = strlen(s);
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + need > len)
            return false;
        i += need;
    }
    return true;
}

START_TEST(test_texts_bounded_and_utf8_safe) {
    struct policy p;
    struct policy_config c;
    policy_config_default(&c);
    c.relocate_after_ms = 0;
    ck_assert_int_eq(policy_init(&p, &c, 0), 0);
    char message[300] = "";
    for (int i = 0; i < 140; i++)
        strcat(message, "\xc3\xa9"); /* é */
    char reason[100];
    memset(reason, 'R', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, reason, message, 0, &out), 0);
    ck_assert_uint_eq(out.n, 4); /* unready, condition, Event, budget */
    for (size_t i = 0; i < out.n; i++) {
        ck_assert_uint_eq(strlen(out.items[i].reason), POLICY_REASON_MAX - 1);
        ck_assert_uint_le(strlen(out.items[i].message), POLICY_MESSAGE_MAX - 1);
        ck_assert(utf8_complete(out.items[i].message));
    }
    ck_assert_uint_ge(strlen(out.items[3].message), POLICY_MESSAGE_MAX - 2);
    ck_assert(strncmp(out.items[3].message, "failed for 0 s: \xc3\xa9", 18) == 0);
}
END_TEST

START_TEST(test_event_history_bounded) {
    struct policy p;
    ck_assert_int_eq(policy_init(&p, NULL, 0), 0);
    char reason[16];
    /* More distinct reasons than the history holds: each still goes out once. */
    for (int i = 0; i < POLICY_EVENT_HISTORY + 4; i++) {
        snprintf(reason, sizeof(reason), "Reason%d", i);
        ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, reason, "m", 1000 + (uint64_t)i, &out),
                         0);
        ck_assert_uint_eq(out.n, 3);
        ck_assert_int_eq(out.items[2].kind, POLICY_ACTION_EVENT);
        ck_assert_str_eq(out.items[2].reason, reason);
    }
    ck_assert_uint_eq(p.n_events_seen, POLICY_EVENT_HISTORY);
    /* the newest is remembered: not again */
    ck_assert_int_eq(policy_on_health(&p, HEALTH_HEALTHY, "ProbesPassing", "m", 2000, &out), 0);
    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, reason, "m", 2100, &out), 0);
    ck_assert_uint_eq(out.n, 2);
    /* the oldest was forgotten: out again */
    ck_assert_int_eq(policy_on_health(&p, HEALTH_FAILED, "Reason0", "m", 2200, &out), 0);
    ck_assert_uint_eq(out.n, 3);
}
END_TEST

/* Check reports every assertion to its parent process; in loops of many
 * thousand steps that costs seconds, so the property test only calls it on a
 * failure. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

/* A reporter stand-in for the property test: it applies every action to a
 * model of the API and holds at most one budget slot. */
struct model {
    enum policy_status pod_ready, node_condition;
    enum policy_taint taint;
    bool cordon;
    unsigned slots;
    bool request_out;
};

static void model_apply(struct model *m, const struct policy_actions *got, uint64_t seed,
                        size_t step) {
    for (size_t i = 0; i < got->n; i++) {
        const struct policy_action *a = &got->items[i];
        switch (a->kind) {
        case POLICY_ACTION_SET_POD_READY:
            m->pod_ready = a->status;
            break;
        case POLICY_ACTION_SET_NODE_CONDITION:
            m->node_condition = a->status;
            break;
        case POLICY_ACTION_EVENT:
            break;
        case POLICY_ACTION_ACQUIRE_BUDGET:
            REQUIRE(!m->request_out, "seed %" PRIu64 " step %zu: two requests", seed, step);
            m->request_out = true;
            break;
        case POLICY_ACTION_RELEASE_BUDGET:
            REQUIRE(m->slots == 1, "seed %" PRIu64 " step %zu: release without a slot", seed, step);
            m->slots--;
            break;
        case POLICY_ACTION_TAINT_NOEXECUTE:
            REQUIRE(m->slots == 1, "seed %" PRIu64 " step %zu: NoExecute without a slot", seed,
                    step);
            m->taint = POLICY_TAINT_NOEXECUTE;
            break;
        case POLICY_ACTION_TAINT_NOSCHEDULE:
            REQUIRE(m->taint == POLICY_TAINT_NOEXECUTE,
                    "seed %" PRIu64 " step %zu: m->taint == POLICY_TAINT_NOEXECUTE", seed, step);
            m->taint = POLICY_TAINT_NOSCHEDULE;
            break;
        case POLICY_ACTION_REMOVE_TAINT:
            REQUIRE(m->taint != POLICY_TAINT_NONE,
                    "seed %" PRIu64 " step %zu: m->taint != POLICY_TAINT_NONE", seed, step);
            m->taint = POLICY_TAINT_NONE;
            break;
        case POLICY_ACTION_EVICT_POD:
            REQUIRE(m->taint == POLICY_TAINT_NOEXECUTE,
                    "seed %" PRIu64 " step %zu: m->taint == POLICY_TAINT_NOEXECUTE", seed, step);
            break;
        case POLICY_ACTION_CORDON:
            REQUIRE(!m->cordon, "seed %" PRIu64 " step %zu: !m->cordon", seed, step);
            m->cordon = true;
            break;
        case POLICY_ACTION_UNCORDON:
            REQUIRE(m->cordon, "seed %" PRIu64 " step %zu: m->cordon", seed, step);
            m->cordon = false;
            break;
        case POLICY_ACTION_KIND_COUNT:
            ck_abort_msg("bad kind");
        }
    }
}

static uint64_t next_random(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* The edges always add up to the desired state, a slot is held for every
 * NoExecute, the next deadline is always in the future, and a target that
 * ends healthy leaves no taint, no cordon and no slot behind. */
START_TEST(test_random_timelines) {
    static const struct {
        enum health_state state;
        const char *reason;
    } inputs[] = {
        {HEALTH_HEALTHY, "ProbesPassing"}, {HEALTH_HEALTHY, "ProbesPassing"},
        {HEALTH_FAILED, "ListenerHung"},   {HEALTH_FAILED, "EngineExited"},
        {HEALTH_FAILED, "EngineZombie"},   {HEALTH_FAILED, "CrashLoop"},
        {HEALTH_SUSPECT, "ProbeFailing"},  {HEALTH_STARTING, "StartupGrace"},
        {HEALTH_UNKNOWN, "NotMeasurable"},
    };
    const struct policy_config *configs[] = {NULL, &optional_steps, &evict_early, &no_quarantine,
                                             &zero_delays};
    for (uint64_t seed = 1; seed <= 300; seed++) {
        uint64_t rng = seed * 0x9E3779B97F4A7C15ull;
        struct policy p;
        struct model m = {0};
        ck_assert_int_eq(policy_init(&p, configs[seed % 5], 0), 0);
        uint64_t now_ms = 0;
        for (size_t step = 0; step < 400; step++) {
            now_ms += next_random(&rng) % 40000;
            uint64_t pick = next_random(&rng) % 20;
            int r;
            if (pick < 9) {
                r = policy_on_health(&p, inputs[pick].state, inputs[pick].reason, "m", now_ms,
                                     &out);
            } else if (pick < 14) {
                r = policy_tick(&p, now_ms, &out);
            } else if (pick < 18 && m.request_out) {
                bool grant = next_random(&rng) % 2;
                m.request_out = false;
                if (grant)
                    m.slots++;
                r = policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, grant ? 0 : -EBUSY,
                                            now_ms, &out);
            } else if (pick == 19) {
                r = policy_on_target_gone(&p, now_ms, &out);
            } else {
                r = policy_tick(&p, now_ms, &out);
            }
            REQUIRE(r == 0, "seed %" PRIu64 " step %zu: %d", seed, step, r);
            model_apply(&m, &out, seed, step);
            const struct policy_desired *d = policy_desired(&p);
            REQUIRE(m.taint == d->taint && m.cordon == d->cordon,
                    "seed %" PRIu64 " step %zu: model and desired differ", seed, step);
            if (d->pod_ready != POLICY_STATUS_UNSET)
                REQUIRE(m.pod_ready == d->pod_ready,
                        "seed %" PRIu64 " step %zu: m.pod_ready == d->pod_ready", seed, step);
            REQUIRE(m.node_condition == d->node_condition,
                    "seed %" PRIu64 " step %zu: m.node_condition == d->node_condition", seed, step);
            REQUIRE(m.slots <= 1, "seed %" PRIu64 " step %zu: m.slots <= 1", seed, step);
            REQUIRE(policy_next_deadline_ms(&p) > now_ms, "seed %" PRIu64 " step %zu", seed, step);
        }
        /* The end: healthy, every request answered, time passes. */
        ck_assert_int_eq(policy_on_health(&p, HEALTH_HEALTHY, "ProbesPassing", "m", now_ms, &out),
                         0);
        model_apply(&m, &out, seed, 400);
        if (m.request_out) {
            m.request_out = false;
            m.slots++;
            ck_assert_int_eq(
                policy_on_action_result(&p, POLICY_ACTION_ACQUIRE_BUDGET, 0, now_ms, &out), 0);
            model_apply(&m, &out, seed, 401);
        }
        uint64_t deadline = policy_next_deadline_ms(&p);
        if (deadline != UINT64_MAX) {
            ck_assert_int_eq(policy_tick(&p, deadline, &out), 0);
            model_apply(&m, &out, seed, 402);
        }
        REQUIRE(m.taint == POLICY_TAINT_NONE && !m.cordon && m.slots == 0,
                "seed %" PRIu64 ": left taint %s, cordon %d, slots %u", seed,
                policy_taint_name(m.taint), m.cordon, m.slots);
        REQUIRE(policy_next_deadline_ms(&p) == UINT64_MAX,
                "seed %" PRIu64 ": policy_next_deadline_ms(&p) == UINT64_MAX", seed);
        REQUIRE(m.pod_ready == POLICY_STATUS_TRUE,
                "seed %" PRIu64 ": m.pod_ready == POLICY_STATUS_TRUE", seed);
        REQUIRE(m.node_condition == POLICY_STATUS_FALSE,
                "seed %" PRIu64 ": m.node_condition == POLICY_STATUS_FALSE", seed);
    }
}
END_TEST

START_TEST(test_defaults_and_names) {
    struct policy_config c;
    policy_config_default(&c);
    ck_assert_uint_eq(c.relocate_after_ms, 30000);
    ck_assert_uint_eq(c.restart_allowance_ms, 20000);
    ck_assert_uint_eq(c.budget_retry_ms, 5000);
    ck_assert_uint_eq(c.quarantine_ms, 300000);
    ck_assert_uint_eq(c.event_dedup_window_ms, 60000);
    ck_assert(!c.evict_enabled);
    ck_assert(!c.cordon_enabled);

    static const char *const kinds[] = {
        "set_pod_ready",   "set_node_condition", "event",        "acquire_budget", "release_budget",
        "taint_noexecute", "taint_noschedule",   "remove_taint", "evict_pod",      "cordon",
        "uncordon",
    };
    ck_assert_uint_eq(sizeof(kinds) / sizeof(kinds[0]), POLICY_ACTION_KIND_COUNT);
    for (int k = 0; k < POLICY_ACTION_KIND_COUNT; k++)
        ck_assert_str_eq(policy_action_kind_name((enum policy_action_kind)k), kinds[k]);
    ck_assert_str_eq(policy_action_kind_name(POLICY_ACTION_KIND_COUNT), "invalid");
    ck_assert_str_eq(policy_status_name(POLICY_STATUS_TRUE), "True");
    ck_assert_str_eq(policy_status_name(POLICY_STATUS_FALSE), "False");
    ck_assert_str_eq(policy_status_name(POLICY_STATUS_UNSET), "unset");
    ck_assert_str_eq(policy_status_name((enum policy_status)9), "invalid");
    ck_assert_str_eq(policy_taint_name(POLICY_TAINT_NOEXECUTE), "NoExecute");
    ck_assert_str_eq(policy_taint_name(POLICY_TAINT_NOSCHEDULE), "NoSchedule");
    ck_assert_str_eq(policy_taint_name(POLICY_TAINT_NONE), "none");
    ck_assert_str_eq(policy_taint_name((enum policy_taint)9), "invalid");
    ck_assert_str_eq(policy_event_type_name(POLICY_EVENT_WARNING), "Warning");
    ck_assert_str_eq(policy_event_type_name(POLICY_EVENT_NORMAL), "Normal");
    ck_assert_str_eq(policy_event_type_name((enum policy_event_type)9), "invalid");
    ck_assert_str_eq(policy_budget_name(POLICY_BUDGET_WAITING), "waiting");
    ck_assert_str_eq(policy_budget_name(POLICY_BUDGET_HELD), "held");
    ck_assert_str_eq(policy_budget_name((enum policy_budget)9), "invalid");
}
END_TEST

int main(void) {
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_timeline, 0, sizeof(timelines) / sizeof(timelines[0]));
    tcase_add_test(tc, test_desired_state);
    tcase_add_test(tc, test_quarantine_from_ack);
    tcase_add_test(tc, test_transition_input);
    tcase_add_test(tc, test_bad_input_changes_nothing);
    tcase_add_test(tc, test_texts_bounded_and_utf8_safe);
    tcase_add_test(tc, test_event_history_bounded);
    tcase_add_test(tc, test_random_timelines);
    tcase_add_test(tc, test_defaults_and_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
