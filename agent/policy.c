/*
 * The escalation ladder (see policy.h for the model and docs/policy.md for
 * operators). Every entry point runs the same frame: reset the output, apply
 * the time-driven steps already due, apply the input, and apply the due steps
 * again (a delay of 0 fires in the same call). The steps change the desired
 * state through a few helpers, each of which emits the action for the change
 * it makes and nothing when there is none, so a repeated input is silent.
 * Only a failed target escalates and only a healthy one (or a target that has
 * left the node) clears; starting, suspect and unknown hold what is there, and
 * end the failed spell, so every escalation clock measures unbroken failure.
 */
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

/* Event reasons of the ladder's own steps (a failure Event uses the health
 * reason). */
static const char EV_FAILING_OVER[] = "FailingOver";
static const char EV_WAITING_BUDGET[] = "WaitingForFailoverBudget";
static const char EV_EVICTING[] = "Evicting";
static const char EV_CORDONED[] = "Cordoned";
static const char EV_RECOVERED[] = "Recovered";
static const char EV_QUARANTINED[] = "Quarantined";
static const char EV_QUARANTINE_LIFTED[] = "QuarantineLifted";
static const char EV_UNCORDONED[] = "Uncordoned";
static const char REASON_TARGET_GONE[] = "TargetGone";
static const char REASON_NOT_NEEDED[] = "NotNeeded";

static const char *const kind_names[POLICY_ACTION_KIND_COUNT] = {
    [POLICY_ACTION_SET_POD_READY] = "set_pod_ready",
    [POLICY_ACTION_SET_NODE_CONDITION] = "set_node_condition",
    [POLICY_ACTION_EVENT] = "event",
    [POLICY_ACTION_ACQUIRE_BUDGET] = "acquire_budget",
    [POLICY_ACTION_RELEASE_BUDGET] = "release_budget",
    [POLICY_ACTION_TAINT_NOEXECUTE] = "taint_noexecute",
    [POLICY_ACTION_TAINT_NOSCHEDULE] = "taint_noschedule",
    [POLICY_ACTION_REMOVE_TAINT] = "remove_taint",
    [POLICY_ACTION_EVICT_POD] = "evict_pod",
    [POLICY_ACTION_CORDON] = "cordon",
    [POLICY_ACTION_UNCORDON] = "uncordon",
};

const char *policy_action_kind_name(enum policy_action_kind k) {
    if ((unsigned)k >= POLICY_ACTION_KIND_COUNT)
        return "invalid";
    return kind_names[k];
}

const char *policy_status_name(enum policy_status s) {
    switch (s) {
    case POLICY_STATUS_UNSET:
        return "unset";
    case POLICY_STATUS_TRUE:
        return "True";
    case POLICY_STATUS_FALSE:
        return "False";
    }
    return "invalid";
}

const char *policy_taint_name(enum policy_taint t) {
    switch (t) {
    case POLICY_TAINT_NONE:
        return "none";
    case POLICY_TAINT_NOSCHEDULE:
        return "NoSchedule";
    case POLICY_TAINT_NOEXECUTE:
        return "NoExecute";
    }
    return "invalid";
}

const char *policy_event_type_name(enum policy_event_type t) {
    switch (t) {
    case POLICY_EVENT_NORMAL:
        return "Normal";
    case POLICY_EVENT_WARNING:
        return "Warning";
    }
    return "invalid";
}

const char *policy_budget_name(enum policy_budget b) {
    switch (b) {
    case POLICY_BUDGET_NONE:
        return "none";
    case POLICY_BUDGET_REQUESTED:
        return "requested";
    case POLICY_BUDGET_WAITING:
        return "waiting";
    case POLICY_BUDGET_HELD:
        return "held";
    }
    return "invalid";
}

void policy_config_default(struct policy_config *c) {
    *c = (struct policy_config){
        .relocate_after_ms = 30000,
        .restart_allowance_ms = 20000,
        .budget_retry_ms = 5000,
        .quarantine_ms = 300000,
        .event_dedup_window_ms = 60000,
        .evict_enabled = false,
        .evict_after_ms = 60000,
        .cordon_enabled = false,
        .cordon_after_ms = 30000,
    };
}

static uint64_t add_saturating(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Format into a fixed field, cut so that it does not end inside a UTF-8
 * sequence: texts end up in JSON and Events. */
__attribute__((format(printf, 3, 0))) static void bounded_vformat(char *dst, size_t size,
                                                                  const char *fmt, va_list ap) {
    int n = vsnprintf(dst, size, fmt, ap);
    if (n < 0)
        dst[0] = '\0';
    else if ((size_t)n >= size)
        text_utf8_trim_tail(dst, strlen(dst));
}

__attribute__((format(printf, 3, 4))) static void bounded_format(char *dst, size_t size,
                                                                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bounded_vformat(dst, size, fmt, ap);
    va_end(ap);
}

static void bounded_copy(char *dst, size_t size, const char *src) {
    bounded_format(dst, size, "%s", src ? src : "");
}

/* Milliseconds as seconds, "300" or "1.500". */
static void format_seconds(char *out, size_t size, uint64_t ms) {
    if (ms % 1000 == 0)
        snprintf(out, size, "%" PRIu64, ms / 1000);
    else
        snprintf(out, size, "%" PRIu64 ".%03u", ms / 1000, (unsigned)(ms % 1000));
}

__attribute__((format(printf, 6, 7))) static void push(struct policy *p, struct policy_actions *out,
                                                       enum policy_action_kind kind,
                                                       enum policy_status status,
                                                       const char *reason, const char *fmt, ...) {
    if (out->n >= POLICY_MAX_ACTIONS) {
        p->overflow = true;
        return;
    }
    struct policy_action *a = &out->items[out->n++];
    *a = (struct policy_action){.kind = kind, .status = status};
    bounded_copy(a->reason, sizeof(a->reason), reason);
    va_list ap;
    va_start(ap, fmt);
    bounded_vformat(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
}

/* True when an Event with this reason may go out now; records it. */
static bool event_due(struct policy *p, const char *reason, uint64_t now_ms) {
    struct policy_event_seen *slot = NULL;
    for (size_t i = 0; i < p->n_events_seen; i++) {
        struct policy_event_seen *e = &p->events_seen[i];
        if (strcmp(e->reason, reason) != 0)
            continue;
        if (now_ms >= e->at_ms && now_ms - e->at_ms < p->config.event_dedup_window_ms)
            return false;
        slot = e;
        break;
    }
    if (!slot && p->n_events_seen < POLICY_EVENT_HISTORY) {
        slot = &p->events_seen[p->n_events_seen++];
    } else if (!slot) {
        slot = &p->events_seen[0];
        for (size_t i = 1; i < p->n_events_seen; i++)
            if (p->events_seen[i].at_ms < slot->at_ms)
                slot = &p->events_seen[i];
    }
    bounded_copy(slot->reason, sizeof(slot->reason), reason);
    slot->at_ms = now_ms;
    return true;
}

__attribute__((format(printf, 6, 7))) static void event(struct policy *p,
                                                        struct policy_actions *out, uint64_t now_ms,
                                                        enum policy_event_type type,
                                                        const char *reason, const char *fmt, ...) {
    if (!event_due(p, reason, now_ms))
        return;
    if (out->n >= POLICY_MAX_ACTIONS) {
        p->overflow = true;
        return;
    }
    struct policy_action *a = &out->items[out->n++];
    *a = (struct policy_action){.kind = POLICY_ACTION_EVENT, .event_type = type};
    bounded_copy(a->reason, sizeof(a->reason), reason);
    va_list ap;
    va_start(ap, fmt);
    bounded_vformat(a->message, sizeof(a->message), fmt, ap);
    va_end(ap);
}

static bool is_engine_reason(const char *reason) {
    return strcmp(reason, "EngineExited") == 0 || strcmp(reason, "EngineZombie") == 0;
}

/* Both conditions to ready/cond with reason and message; an action for each
 * whose status or reason changed. UNSET readiness is never written. */
static void set_conditions(struct policy *p, struct policy_actions *out, enum policy_status ready,
                           enum policy_status cond, const char *reason, const char *message) {
    struct policy_desired *d = &p->desired;
    bool reason_changed = strcmp(d->reason, reason) != 0;
    bounded_copy(d->reason, sizeof(d->reason), reason);
    bounded_copy(d->message, sizeof(d->message), message);
    if (ready != POLICY_STATUS_UNSET && (ready != d->pod_ready || reason_changed))
        push(p, out, POLICY_ACTION_SET_POD_READY, ready, d->reason, "%s", d->message);
    d->pod_ready = ready;
    if (cond != POLICY_STATUS_UNSET && (cond != d->node_condition || reason_changed))
        push(p, out, POLICY_ACTION_SET_NODE_CONDITION, cond, d->reason, "%s", d->message);
    d->node_condition = cond;
}

static void release_budget(struct policy *p, struct policy_actions *out, const char *reason,
                           const char *why) {
    if (p->desired.budget == POLICY_BUDGET_HELD)
        push(p, out, POLICY_ACTION_RELEASE_BUDGET, POLICY_STATUS_UNSET, reason, "%s", why);
    /* A request in flight is given back when its grant arrives. */
    if (p->desired.budget != POLICY_BUDGET_REQUESTED)
        p->desired.budget = POLICY_BUDGET_NONE;
}

static void ask_budget(struct policy *p, struct policy_actions *out) {
    p->desired.budget = POLICY_BUDGET_REQUESTED;
    push(p, out, POLICY_ACTION_ACQUIRE_BUDGET, POLICY_STATUS_UNSET, p->relocation_reason, "%s",
         p->relocation_message);
}

static void taint_noexecute(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    p->desired.taint = POLICY_TAINT_NOEXECUTE;
    p->quarantine_running = false;
    push(p, out, POLICY_ACTION_TAINT_NOEXECUTE, POLICY_STATUS_UNSET, p->relocation_reason, "%s",
         p->relocation_message);
    event(p, out, now_ms, POLICY_EVENT_WARNING, EV_FAILING_OVER, "tainted %s:NoExecute: %s",
          POLICY_TAINT_KEY, p->relocation_message);
}

/* A NoExecute trigger fired: taint once a budget slot is held. */
__attribute__((format(printf, 4, 5))) static void
relocate(struct policy *p, struct policy_actions *out, uint64_t now_ms, const char *fmt, ...) {
    p->relocation_wanted = true;
    bounded_copy(p->relocation_reason, sizeof(p->relocation_reason), p->health_reason);
    va_list ap;
    va_start(ap, fmt);
    bounded_vformat(p->relocation_message, sizeof(p->relocation_message), fmt, ap);
    va_end(ap);
    if (p->desired.taint == POLICY_TAINT_NOEXECUTE)
        return;
    switch (p->desired.budget) {
    case POLICY_BUDGET_HELD:
        taint_noexecute(p, out, now_ms);
        break;
    case POLICY_BUDGET_NONE:
        ask_budget(p, out);
        break;
    case POLICY_BUDGET_REQUESTED: /* the grant taints */
    case POLICY_BUDGET_WAITING:   /* the retry asks again */
        break;
    }
}

static void uncordon(struct policy *p, struct policy_actions *out, uint64_t now_ms,
                     const char *reason) {
    if (!p->desired.cordon)
        return;
    p->desired.cordon = false;
    push(p, out, POLICY_ACTION_UNCORDON, POLICY_STATUS_UNSET, reason, "node schedulable again");
    event(p, out, now_ms, POLICY_EVENT_NORMAL, EV_UNCORDONED, "uncordoned the node (%s)", reason);
}

static void lift_quarantine(struct policy *p, struct policy_actions *out, uint64_t now_ms,
                            const char *why) {
    p->desired.taint = POLICY_TAINT_NONE;
    p->quarantine_running = false;
    push(p, out, POLICY_ACTION_REMOVE_TAINT, POLICY_STATUS_UNSET, EV_QUARANTINE_LIFTED, "%s", why);
    event(p, out, now_ms, POLICY_EVENT_NORMAL, EV_QUARANTINE_LIFTED, "removed taint %s: %s",
          POLICY_TAINT_KEY, why);
    uncordon(p, out, now_ms, EV_QUARANTINE_LIFTED);
}

/* After a recovery (or the target leaving): NoExecute becomes the NoSchedule
 * quarantine and the budget slot goes back; a NoSchedule quarantine held
 * through a failure starts its cooldown again. */
static void enter_quarantine(struct policy *p, struct policy_actions *out, uint64_t now_ms,
                             const char *after) {
    char seconds[32];
    format_seconds(seconds, sizeof(seconds), p->config.quarantine_ms);
    if (p->desired.taint == POLICY_TAINT_NOEXECUTE) {
        if (p->config.quarantine_ms == 0) {
            lift_quarantine(p, out, now_ms, "no quarantine configured");
        } else {
            p->desired.taint = POLICY_TAINT_NOSCHEDULE;
            p->quarantine_running = true;
            p->quarantine_on_node = false;
            p->quarantine_until_ms = add_saturating(now_ms, p->config.quarantine_ms);
            push(p, out, POLICY_ACTION_TAINT_NOSCHEDULE, POLICY_STATUS_UNSET, EV_QUARANTINED,
                 "quarantine for %s s %s", seconds, after);
            event(p, out, now_ms, POLICY_EVENT_NORMAL, EV_QUARANTINED,
                  "taint %s turned to NoSchedule for %s s %s", POLICY_TAINT_KEY, seconds, after);
        }
        release_budget(p, out, EV_QUARANTINED, "the taint is NoSchedule");
    } else if (p->desired.taint == POLICY_TAINT_NOSCHEDULE && !p->quarantine_running) {
        p->quarantine_running = true;
        p->quarantine_until_ms = add_saturating(now_ms, p->config.quarantine_ms);
    }
}

static bool quarantine_may_lift(const struct policy *p) {
    return p->desired.taint == POLICY_TAINT_NOSCHEDULE && p->quarantine_running &&
           (!p->config.quarantine_from_ack || p->quarantine_on_node) &&
           (!p->target_present || p->health == HEALTH_HEALTHY);
}

bool policy_quarantine_awaits_taint(const struct policy *p) {
    return p->config.quarantine_from_ack && p->desired.taint == POLICY_TAINT_NOSCHEDULE &&
           p->quarantine_running && !p->quarantine_on_node;
}

/* The failed spell is over: pending escalation is dropped. */
static void end_spell(struct policy *p) {
    p->failing = false;
    p->engine_gone = false;
    p->relocation_wanted = false;
    p->budget_wait_announced = false;
    p->desired.evict_pod = false;
    if (p->desired.budget == POLICY_BUDGET_WAITING)
        p->desired.budget = POLICY_BUDGET_NONE;
}

static void apply_due(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    const struct policy_config *c = &p->config;
    char seconds[32];

    if (p->failing && !p->relocation_wanted) {
        uint64_t relocate_at = add_saturating(p->failed_since_ms, c->relocate_after_ms);
        uint64_t gone_at = p->engine_gone
                               ? add_saturating(p->engine_gone_since_ms, c->restart_allowance_ms)
                               : UINT64_MAX;
        if (gone_at <= now_ms && gone_at <= relocate_at) {
            format_seconds(seconds, sizeof(seconds), c->restart_allowance_ms);
            relocate(p, out, now_ms, "engine gone, not back within the %s s restart allowance",
                     seconds);
        } else if (relocate_at <= now_ms) {
            format_seconds(seconds, sizeof(seconds), c->relocate_after_ms);
            relocate(p, out, now_ms, "failed for %s s: %s", seconds, p->health_message);
        }
    }
    if (p->desired.budget == POLICY_BUDGET_WAITING && p->budget_retry_at_ms <= now_ms)
        ask_budget(p, out);
    if (c->cordon_enabled && p->failing && !p->desired.cordon &&
        add_saturating(p->failed_since_ms, c->cordon_after_ms) <= now_ms) {
        p->desired.cordon = true;
        format_seconds(seconds, sizeof(seconds), c->cordon_after_ms);
        push(p, out, POLICY_ACTION_CORDON, POLICY_STATUS_UNSET, p->health_reason, "failed for %s s",
             seconds);
        event(p, out, now_ms, POLICY_EVENT_WARNING, EV_CORDONED,
              "cordoned the node: failed for %s s", seconds);
    }
    if (c->evict_enabled && p->failing && p->desired.taint == POLICY_TAINT_NOEXECUTE &&
        !p->desired.evict_pod && add_saturating(p->failed_since_ms, c->evict_after_ms) <= now_ms) {
        p->desired.evict_pod = true;
        format_seconds(seconds, sizeof(seconds), c->evict_after_ms);
        push(p, out, POLICY_ACTION_EVICT_POD, POLICY_STATUS_UNSET, p->health_reason,
             "failed for %s s", seconds);
        event(p, out, now_ms, POLICY_EVENT_WARNING, EV_EVICTING,
              "evicting the pod: failed for %s s", seconds);
    }
    if (quarantine_may_lift(p) && p->quarantine_until_ms <= now_ms) {
        format_seconds(seconds, sizeof(seconds), c->quarantine_ms);
        char why[64];
        bounded_format(why, sizeof(why), "quarantine of %s s over", seconds);
        lift_quarantine(p, out, now_ms, why);
    }
}

static void apply_failed(struct policy *p, struct policy_actions *out, uint64_t now_ms,
                         bool reason_changed) {
    bool new_spell = !p->failing;
    if (new_spell) {
        p->failing = true;
        p->failed_since_ms = now_ms;
        /* Already failed over (a failure after a suspect spell, or an
         * adopted taint): nothing left to trigger. */
        p->relocation_wanted = p->desired.taint == POLICY_TAINT_NOEXECUTE;
    }
    bool was_unhealthy = p->desired.node_condition == POLICY_STATUS_TRUE;
    set_conditions(p, out, POLICY_STATUS_FALSE, POLICY_STATUS_TRUE, p->health_reason,
                   p->health_message);
    if (new_spell || reason_changed || !was_unhealthy)
        event(p, out, now_ms, POLICY_EVENT_WARNING, p->health_reason, "%s", p->health_message);

    if (!is_engine_reason(p->health_reason)) {
        p->engine_gone = false;
    } else if (!p->engine_gone) {
        p->engine_gone = true;
        p->engine_gone_since_ms = now_ms;
    }

    /* A failure stops the quarantine's cooldown; it starts again on recovery. */
    if (p->desired.taint == POLICY_TAINT_NOSCHEDULE)
        p->quarantine_running = false;
    if (p->relocation_wanted)
        return;
    if (strcmp(p->health_reason, "CrashLoop") == 0)
        relocate(p, out, now_ms, "crash loop: %s", p->health_message);
    else if (p->desired.taint == POLICY_TAINT_NOSCHEDULE)
        relocate(p, out, now_ms, "failed again during the quarantine: %s", p->health_message);
}

static void apply_healthy(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    end_spell(p);
    bool recovering = p->desired.node_condition == POLICY_STATUS_TRUE ||
                      p->desired.pod_ready == POLICY_STATUS_FALSE;
    set_conditions(p, out, POLICY_STATUS_TRUE, POLICY_STATUS_FALSE, p->health_reason,
                   p->health_message);
    if (recovering)
        event(p, out, now_ms, POLICY_EVENT_NORMAL, EV_RECOVERED, "%s", p->health_message);
    enter_quarantine(p, out, now_ms, "after recovery");
    release_budget(p, out, EV_RECOVERED, "the target recovered");
    if (p->desired.taint == POLICY_TAINT_NONE)
        uncordon(p, out, now_ms, EV_RECOVERED);
}

static void apply_gone(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    static const char message[] = "the SQL pod left this node";
    end_spell(p);
    bounded_copy(p->health_reason, sizeof(p->health_reason), REASON_TARGET_GONE);
    bounded_copy(p->health_message, sizeof(p->health_message), message);
    enum policy_status cond = p->desired.node_condition == POLICY_STATUS_UNSET
                                  ? POLICY_STATUS_UNSET
                                  : POLICY_STATUS_FALSE;
    set_conditions(p, out, POLICY_STATUS_UNSET, cond, REASON_TARGET_GONE, message);
    enter_quarantine(p, out, now_ms, "after the pod left");
    release_budget(p, out, REASON_TARGET_GONE, message);
    if (p->desired.taint == POLICY_TAINT_NONE)
        uncordon(p, out, now_ms, REASON_TARGET_GONE);
}

static void begin(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    out->n = 0;
    p->overflow = false;
    apply_due(p, out, now_ms);
}

static int finish(struct policy *p, struct policy_actions *out, uint64_t now_ms) {
    apply_due(p, out, now_ms);
    return p->overflow ? -ENOBUFS : 0;
}

int policy_init(struct policy *p, const struct policy_config *c, uint64_t now_ms) {
    struct policy_config defaults;
    if (!c) {
        policy_config_default(&defaults);
        c = &defaults;
    }
    if (c->budget_retry_ms == 0)
        return -EINVAL;
    *p = (struct policy){
        .config = *c,
        .health = HEALTH_STARTING,
        .target_present = true,
    };
    (void)now_ms; /* nothing is timed before the first input */
    return 0;
}

int policy_on_health(struct policy *p, enum health_state state, const char *reason,
                     const char *message, uint64_t now_ms, struct policy_actions *out) {
    if ((unsigned)state >= HEALTH_STATE_COUNT)
        return -EINVAL;
    begin(p, out, now_ms);
    char new_reason[POLICY_REASON_MAX];
    bounded_copy(new_reason, sizeof(new_reason), reason);
    bool reason_changed =
        !p->target_present || state != p->health || strcmp(new_reason, p->health_reason) != 0;
    p->target_present = true;
    p->health = state;
    bounded_copy(p->health_reason, sizeof(p->health_reason), new_reason);
    bounded_copy(p->health_message, sizeof(p->health_message), message);
    switch (state) {
    case HEALTH_FAILED:
        apply_failed(p, out, now_ms, reason_changed);
        break;
    case HEALTH_HEALTHY:
        apply_healthy(p, out, now_ms);
        break;
    default: /* starting, suspect, unknown: hold what is there */
        end_spell(p);
        break;
    }
    return finish(p, out, now_ms);
}

int policy_on_transition(struct policy *p, const struct health_transition *tr, uint64_t now_ms,
                         struct policy_actions *out) {
    if (!tr)
        return -EINVAL;
    return policy_on_health(p, tr->to, tr->reason, tr->message, now_ms, out);
}

int policy_on_target_gone(struct policy *p, uint64_t now_ms, struct policy_actions *out) {
    begin(p, out, now_ms);
    p->target_present = false;
    apply_gone(p, out, now_ms);
    return finish(p, out, now_ms);
}

int policy_tick(struct policy *p, uint64_t now_ms, struct policy_actions *out) {
    begin(p, out, now_ms);
    return finish(p, out, now_ms);
}

int policy_on_action_result(struct policy *p, enum policy_action_kind kind, int result,
                            uint64_t now_ms, struct policy_actions *out) {
    if ((unsigned)kind >= POLICY_ACTION_KIND_COUNT || result > 0)
        return -EINVAL;
    begin(p, out, now_ms);
    p->last_result[kind] = result;
    if (kind == POLICY_ACTION_TAINT_NOSCHEDULE && result == 0 &&
        policy_quarantine_awaits_taint(p)) {
        p->quarantine_on_node = true;
        p->quarantine_until_ms = add_saturating(now_ms, p->config.quarantine_ms);
    }
    if (kind != POLICY_ACTION_ACQUIRE_BUDGET)
        return finish(p, out, now_ms);

    enum policy_budget b = p->desired.budget;
    if (result == 0) {
        if (b == POLICY_BUDGET_NONE) {
            /* A grant nobody waits for: never keep a slot by accident. */
            push(p, out, POLICY_ACTION_RELEASE_BUDGET, POLICY_STATUS_UNSET, REASON_NOT_NEEDED,
                 "a budget slot was granted but is not needed");
        } else if (b != POLICY_BUDGET_HELD) {
            p->desired.budget = POLICY_BUDGET_HELD;
            if (!p->relocation_wanted)
                release_budget(p, out, REASON_NOT_NEEDED,
                               "the budget slot came after the target stopped failing");
            else if (p->desired.taint != POLICY_TAINT_NOEXECUTE)
                taint_noexecute(p, out, now_ms);
        }
    } else if (b == POLICY_BUDGET_REQUESTED) {
        if (!p->relocation_wanted) {
            p->desired.budget = POLICY_BUDGET_NONE;
        } else {
            p->desired.budget = POLICY_BUDGET_WAITING;
            p->budget_retry_at_ms = add_saturating(now_ms, p->config.budget_retry_ms);
            if (!p->budget_wait_announced) {
                p->budget_wait_announced = true;
                char seconds[32];
                format_seconds(seconds, sizeof(seconds), p->config.budget_retry_ms);
                event(p, out, now_ms, POLICY_EVENT_WARNING, EV_WAITING_BUDGET,
                      "waiting for failover budget before tainting %s:NoExecute; asking again "
                      "every %s s",
                      POLICY_TAINT_KEY, seconds);
            }
        }
    }
    return finish(p, out, now_ms);
}

int policy_reconcile_start(struct policy *p, const struct policy_observed *obs, uint64_t now_ms,
                           struct policy_actions *out) {
    if (!obs)
        return -EINVAL;
    begin(p, out, now_ms);
    struct policy_desired *d = &p->desired;
    d->pod_ready = obs->pod_ready;
    d->node_condition = obs->node_condition;
    d->taint = obs->taint;
    d->cordon = obs->cordoned;
    if (d->budget != POLICY_BUDGET_REQUESTED && d->budget != POLICY_BUDGET_WAITING)
        d->budget = obs->budget_held ? POLICY_BUDGET_HELD : POLICY_BUDGET_NONE;
    /* Only status differences are written now; the reason goes with the next
     * write. */
    bounded_copy(d->reason, sizeof(d->reason), p->health_reason);
    bounded_copy(d->message, sizeof(d->message), p->health_message);
    p->quarantine_running = false;
    if (d->taint == POLICY_TAINT_NOSCHEDULE) {
        /* When the quarantine began is unknown: the cooldown restarts. */
        p->quarantine_running = true;
        p->quarantine_on_node = true; /* observed there */
        p->quarantine_until_ms = add_saturating(now_ms, p->config.quarantine_ms);
    }
    if (p->failing && d->taint == POLICY_TAINT_NOEXECUTE)
        p->relocation_wanted = true;

    if (!p->target_present)
        apply_gone(p, out, now_ms);
    else if (p->health == HEALTH_FAILED)
        apply_failed(p, out, now_ms, false);
    else if (p->health == HEALTH_HEALTHY)
        apply_healthy(p, out, now_ms);
    return finish(p, out, now_ms);
}

uint64_t policy_next_deadline_ms(const struct policy *p) {
    const struct policy_config *c = &p->config;
    uint64_t next = UINT64_MAX;
#define CONSIDER(t)                                                                                \
    do {                                                                                           \
        uint64_t t_ = (t);                                                                         \
        if (t_ < next)                                                                             \
            next = t_;                                                                             \
    } while (0)
    if (p->failing && !p->relocation_wanted) {
        CONSIDER(add_saturating(p->failed_since_ms, c->relocate_after_ms));
        if (p->engine_gone)
            CONSIDER(add_saturating(p->engine_gone_since_ms, c->restart_allowance_ms));
    }
    if (p->desired.budget == POLICY_BUDGET_WAITING)
        CONSIDER(p->budget_retry_at_ms);
    if (c->cordon_enabled && p->failing && !p->desired.cordon)
        CONSIDER(add_saturating(p->failed_since_ms, c->cordon_after_ms));
    if (c->evict_enabled && p->failing && p->desired.taint == POLICY_TAINT_NOEXECUTE &&
        !p->desired.evict_pod)
        CONSIDER(add_saturating(p->failed_since_ms, c->evict_after_ms));
    if (quarantine_may_lift(p))
        CONSIDER(p->quarantine_until_ms);
#undef CONSIDER
    return next;
}

const struct policy_desired *policy_desired(const struct policy *p) {
    return &p->desired;
}

int policy_last_result(const struct policy *p, enum policy_action_kind kind) {
    if ((unsigned)kind >= POLICY_ACTION_KIND_COUNT)
        return -EINVAL;
    return p->last_result[kind];
}
