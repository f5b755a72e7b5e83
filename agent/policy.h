/*
 * The escalation policy: one pure state machine per node slot (the SQL pod on
 * this node, or the engine named in static mode) that turns the health
 * engine's verdicts, the passing of time and the reporter's answers into the
 * state the cluster should show — pod readiness, the SQLEdgeUnhealthy node
 * condition, the edgewarden.io/sqledge-unhealthy taint, an optional cordon and
 * eviction — plus the Events and failover-budget requests that go with it.
 *
 * The model is "desired state + edges". The policy holds the desired state
 * (policy_desired()) and, on every call, reports what changed as actions; the
 * reporter executes them and, for every write that carries state, keeps
 * retrying with its own backoff towards the latest policy_desired() until the
 * API shows it, so a lost write is never lost state. Only two things are
 * request/response: a failover-budget slot (ACQUIRE_BUDGET, answered through
 * policy_on_action_result; the taint waits for the grant) and Events, which
 * are fire-and-forget and deduplicated here.
 *
 * Pure: no I/O, no clock (now_ms comes in, any monotonic millisecond clock),
 * no logging, no allocation. The caller owns and embeds struct policy; every
 * call resets *out and fills it. Each call first applies the time-driven steps
 * that fell due up to now_ms, so a late timer changes nothing but the delay.
 * docs/policy.md explains the ladder for operators, with a timeline.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health.h"

/* The names the policy writes (DESIGN.md, "Names"). */
#define POLICY_POD_CONDITION  "edgewarden.io/sqledge-ready"
#define POLICY_NODE_CONDITION "SQLEdgeUnhealthy"
#define POLICY_TAINT_KEY      "edgewarden.io/sqledge-unhealthy"

/* One call emits at most 14 actions: the longest is a recovery arriving after
 * the taint, cordon and eviction all fell due, with a quarantine of 0 ms that
 * lifts the taint and the cordon at once (tests/unit/test-policy.c has it). */
#define POLICY_MAX_ACTIONS 16
#define POLICY_REASON_MAX  64
#define POLICY_MESSAGE_MAX 192
/* Event reasons remembered for deduplication; the oldest is forgotten. */
#define POLICY_EVENT_HISTORY 16

enum policy_action_kind {
    POLICY_ACTION_SET_POD_READY,      /* pod condition edgewarden.io/sqledge-ready := status */
    POLICY_ACTION_SET_NODE_CONDITION, /* node condition SQLEdgeUnhealthy := status */
    POLICY_ACTION_EVENT,              /* an Event: event_type, reason, message (note) */
    POLICY_ACTION_ACQUIRE_BUDGET,     /* ask for a failover-budget slot; answer expected */
    POLICY_ACTION_RELEASE_BUDGET,     /* give the slot back */
    POLICY_ACTION_TAINT_NOEXECUTE,    /* taint := edgewarden.io/sqledge-unhealthy:NoExecute */
    POLICY_ACTION_TAINT_NOSCHEDULE,   /* taint := edgewarden.io/sqledge-unhealthy:NoSchedule */
    POLICY_ACTION_REMOVE_TAINT,       /* our taint removed, whatever its effect */
    POLICY_ACTION_EVICT_POD,          /* POST pods/<pod>/eviction */
    POLICY_ACTION_CORDON,             /* spec.unschedulable := true */
    POLICY_ACTION_UNCORDON,           /* spec.unschedulable := false (only if we cordoned) */
    POLICY_ACTION_KIND_COUNT
};

/* A Kubernetes condition status as the policy wants it; UNSET: no opinion,
 * leave the API as it is (before a verdict, or no pod to write). */
enum policy_status { POLICY_STATUS_UNSET, POLICY_STATUS_TRUE, POLICY_STATUS_FALSE };

enum policy_taint { POLICY_TAINT_NONE, POLICY_TAINT_NOSCHEDULE, POLICY_TAINT_NOEXECUTE };

enum policy_event_type { POLICY_EVENT_NORMAL, POLICY_EVENT_WARNING };

/* The failover-budget slot, as far as the policy knows. */
enum policy_budget {
    POLICY_BUDGET_NONE,      /* not held, not wanted */
    POLICY_BUDGET_REQUESTED, /* ACQUIRE_BUDGET emitted, answer pending */
    POLICY_BUDGET_WAITING,   /* refused; ACQUIRE_BUDGET again at the retry time */
    POLICY_BUDGET_HELD,
};

struct policy_action {
    enum policy_action_kind kind;
    enum policy_status status;         /* SET_POD_READY, SET_NODE_CONDITION; else UNSET */
    enum policy_event_type event_type; /* EVENT; else NORMAL */
    char reason[POLICY_REASON_MAX];    /* CamelCase word: condition or Event reason */
    char message[POLICY_MESSAGE_MAX];  /* condition message or Event note, UTF-8 safe */
};

struct policy_actions {
    struct policy_action items[POLICY_MAX_ACTIONS];
    size_t n;
};

/* Every delay counts from the start of an unbroken failed spell, except
 * quarantine_ms (from recovery) and budget_retry_ms (from the refusal). */
struct policy_config {
    uint64_t relocate_after_ms;    /* failed this long -> NoExecute; default 30000 */
    uint64_t restart_allowance_ms; /* engine gone this long -> NoExecute; default 20000 */
    uint64_t budget_retry_ms;      /* refused budget asked again after; default 5000, > 0 */
    uint64_t quarantine_ms;        /* NoSchedule after a NoExecute recovery; default 300000 */
    /* The quarantine's clock starts when the reporter says the NoSchedule
     * taint is on the node (policy_on_action_result(TAINT_NOSCHEDULE, 0)),
     * not at the decision, and it cannot end before: an API outage longer
     * than the quarantine must not lift a quarantine that never was. The
     * Kubernetes reporter sets it; default false (the clock starts at once). */
    bool quarantine_from_ack;
    uint64_t event_dedup_window_ms; /* same Event reason not re-emitted within; default 60000 */
    bool evict_enabled;             /* default false */
    uint64_t evict_after_ms;        /* failed this long and tainted -> EVICT_POD; default 60000 */
    bool cordon_enabled;            /* default false */
    uint64_t cordon_after_ms;       /* failed this long -> CORDON; default 30000 */
};

/* What the cluster should show. Read it for /status and for the reporter's
 * reconciliation; reason and message go with both conditions. */
struct policy_desired {
    enum policy_status pod_ready;      /* edgewarden.io/sqledge-ready */
    enum policy_status node_condition; /* SQLEdgeUnhealthy: TRUE means unhealthy */
    char reason[POLICY_REASON_MAX];
    char message[POLICY_MESSAGE_MAX];
    enum policy_taint taint;
    bool cordon;    /* spec.unschedulable, set by us */
    bool evict_pod; /* an eviction of the pod is wanted (this failed spell) */
    enum policy_budget budget;
};

/* What the API showed at start, for policy_reconcile_start(). */
struct policy_observed {
    enum policy_status pod_ready;      /* UNSET: the condition is absent */
    enum policy_status node_condition; /* UNSET: the condition is absent */
    enum policy_taint taint;           /* our taint key's effect, NONE when absent */
    bool cordoned;                     /* unschedulable, and set by edgewarden */
    bool budget_held;                  /* a budget slot's Lease is ours */
};

/* Read it through the functions below; the fields are here only so that the
 * caller can embed the struct. */
struct policy_event_seen {
    char reason[POLICY_REASON_MAX];
    uint64_t at_ms;
};

struct policy {
    struct policy_config config;
    struct policy_desired desired;
    /* the input */
    enum health_state health;
    bool target_present;
    char health_reason[POLICY_REASON_MAX];
    char health_message[POLICY_MESSAGE_MAX];
    /* the ladder */
    bool failing; /* in a failed spell */
    uint64_t failed_since_ms;
    bool engine_gone; /* failed with EngineExited or EngineZombie */
    uint64_t engine_gone_since_ms;
    bool relocation_wanted; /* a NoExecute trigger fired in this spell */
    char relocation_reason[POLICY_REASON_MAX];
    char relocation_message[POLICY_MESSAGE_MAX];
    uint64_t budget_retry_at_ms;
    bool budget_wait_announced;
    bool quarantine_running;
    bool quarantine_on_node; /* the NoSchedule taint was acknowledged (quarantine_from_ack) */
    uint64_t quarantine_until_ms;
    /* bookkeeping */
    struct policy_event_seen events_seen[POLICY_EVENT_HISTORY];
    size_t n_events_seen;
    int last_result[POLICY_ACTION_KIND_COUNT];
    bool overflow;
};

/* Fill c with the defaults above. */
void policy_config_default(struct policy_config *c);

/* Set up p: no opinion on anything (all UNSET, no taint), target present and
 * starting. c is borrowed and copied; NULL means the defaults. -EINVAL when
 * budget_retry_ms is 0. */
int policy_init(struct policy *p, const struct policy_config *c, uint64_t now_ms);

/*
 * The inputs. Each resets *out, applies what fell due up to now_ms, then the
 * input, then what fell due because of it (a delay of 0), and returns 0;
 * -EINVAL for a bad argument (nothing changed, *out untouched); -ENOBUFS if
 * the actions did not fit (a bug: POLICY_MAX_ACTIONS is above the proven
 * bound; the state is still right and policy_desired() has it all).
 */

/* The target's current health, level-triggered: call it after every health
 * call (or with every transition and whenever the reason changes within a
 * state); repeating the same input changes nothing. reason and message are
 * borrowed and copied (NULL reads as ""). A new reason within failed matters:
 * CrashLoop relocates at once, EngineExited/EngineZombie start the restart
 * allowance, any other reason means the engine is back. */
int policy_on_health(struct policy *p, enum health_state state, const char *reason,
                     const char *message, uint64_t now_ms, struct policy_actions *out);
/* policy_on_health(p, tr->to, tr->reason, tr->message, now_ms, out). Health
 * reports reason changes within a state without a transition; pass those too
 * (a struct health_transition with from == to) or use policy_on_health(). */
int policy_on_transition(struct policy *p, const struct health_transition *tr, uint64_t now_ms,
                         struct policy_actions *out);
/* The target left this node (its pod was deleted or evicted). The next
 * policy_on_health() is a new target in the same slot. No pod to write: pod
 * readiness goes UNSET; the node condition goes False "TargetGone"; a NoExecute
 * taint becomes the NoSchedule quarantine, lifted at its end without waiting
 * for a healthy target. Keep p until policy_next_deadline_ms() is UINT64_MAX
 * so no taint is left behind. */
int policy_on_target_gone(struct policy *p, uint64_t now_ms, struct policy_actions *out);
/* Time passed: apply the steps due at now_ms. */
int policy_tick(struct policy *p, uint64_t now_ms, struct policy_actions *out);
/* The reporter's answer to an action: 0 or -errno. For ACQUIRE_BUDGET, 0 is
 * the grant (then the taint) and any error a refusal (retry after
 * budget_retry_ms); a grant the policy no longer needs is given back at once.
 * For TAINT_NOSCHEDULE, 0 says the quarantine taint is on the node: with
 * quarantine_from_ack its clock starts then (a repeated one is ignored).
 * Other kinds are only recorded (policy_last_result()): the reporter retries
 * them towards policy_desired(). -EINVAL for an unknown kind or result > 0. */
int policy_on_action_result(struct policy *p, enum policy_action_kind kind, int result,
                            uint64_t now_ms, struct policy_actions *out);
/* At agent start, what the API shows (obs, borrowed). The policy adopts it as
 * its desired state and converges it with the health it has been given so far
 * (call it before or after the first policy_on_health()), emitting only the
 * differences: without a verdict (starting, unknown, suspect) everything
 * observed is kept, taints included; a NoExecute taint with a healthy target
 * becomes the NoSchedule quarantine, never a removal; an observed NoSchedule
 * quarantine restarts its full quarantine_ms from now_ms. */
int policy_reconcile_start(struct policy *p, const struct policy_observed *obs, uint64_t now_ms,
                           struct policy_actions *out);

/* When policy_tick() next has something to do; UINT64_MAX when nothing is due
 * without a new input. */
uint64_t policy_next_deadline_ms(const struct policy *p);

/* The desired state, borrowed from p. */
const struct policy_desired *policy_desired(const struct policy *p);
/* The quarantine waits for the reporter to say its taint is on the node
 * (quarantine_from_ack): the reporter reports TAINT_NOSCHEDULE once it is. */
bool policy_quarantine_awaits_taint(const struct policy *p);
/* The last result reported for kind, 0 before any; -EINVAL for an unknown kind. */
int policy_last_result(const struct policy *p, enum policy_action_kind kind);

/* "set_pod_ready", "set_node_condition", "event", "acquire_budget",
 * "release_budget", "taint_noexecute", "taint_noschedule", "remove_taint",
 * "evict_pod", "cordon", "uncordon"; "invalid" otherwise. */
const char *policy_action_kind_name(enum policy_action_kind k);
/* "unset", "True", "False" (the API's spelling); "invalid" otherwise. */
const char *policy_status_name(enum policy_status s);
/* "none", "NoSchedule", "NoExecute"; "invalid" otherwise. */
const char *policy_taint_name(enum policy_taint t);
/* "Normal", "Warning"; "invalid" otherwise. */
const char *policy_event_type_name(enum policy_event_type t);
/* "none", "requested", "waiting", "held"; "invalid" otherwise. */
const char *policy_budget_name(enum policy_budget b);
