/*
 * The remediator's per-node decision (remedy.h): a table of conditions, in
 * the order of docs/node-loss.md.
 */
#include "remedy.h"

#include <stddef.h>

static uint64_t earliest(uint64_t a, uint64_t b) {
    return a < b ? a : b;
}

void remedy_decide(const struct remedy_config *c, const struct remedy_view *v, uint64_t now_ms,
                   struct remedy_decision *d) {
    uint64_t agent_gone_at, kubelet_stale_at, deadline;
    bool agent_gone, node_gone, fenced;

    *d = (struct remedy_decision){.verdict = REMEDY_NONE, .next_ms = UINT64_MAX, .reason = ""};
    agent_gone_at = v->agent_seen_ms + v->agent_duration_ms;
    agent_gone = v->has_agent_lease && now_ms >= agent_gone_at;
    kubelet_stale_at = v->kubelet_seen_ms + c->node_lease_stale_ms;
    node_gone =
        !v->node_exists || !v->node_ready || (v->has_kubelet_lease && now_ms >= kubelet_stale_at);

    if (v->out_of_service) {
        if (v->node_exists && v->node_ready && v->has_agent_lease && !agent_gone &&
            v->agent_renewed_since) {
            d->verdict = REMEDY_LIFT;
            d->reason = "NodeBack";
        } else {
            d->verdict = REMEDY_KEEP;
            d->reason = "NodeStillDown";
            d->force_delete = !v->node_exists || !v->node_ready || agent_gone;
            if (v->has_agent_lease && !agent_gone)
                d->next_ms = agent_gone_at;
        }
        return;
    }
    if (!v->hosts_sql || !v->has_agent_lease)
        return; /* nothing to move, or a node edgewarden does not run on */
    if (!agent_gone) {
        d->next_ms = agent_gone_at;
        return;
    }
    if (!node_gone) {
        d->verdict = REMEDY_WATCH;
        d->reason = "AgentGoneNodeAlive";
        if (v->has_kubelet_lease)
            d->next_ms = kubelet_stale_at;
        return;
    }
    if (!v->quorum) {
        d->verdict = REMEDY_NO_QUORUM;
        d->reason = "RemediationPausedNoQuorum";
        return;
    }
    /* A fenced node keeps feeding its watchdog on an outage verdict of the
     * peers it asks; a remediator it does not ask cannot tell whether the
     * node is still feeding (docs/model/README.md, finding 1). */
    fenced = v->fenced && v->asks_remediator;
    if (fenced) {
        deadline = agent_gone_at + v->watchdog_timeout_ms + c->fence_margin_ms;
        if (now_ms >= deadline) {
            d->verdict = REMEDY_OUT_OF_SERVICE;
            d->force_delete = true;
            d->reason = "NodeFenced";
            return;
        }
    }
    if (c->assume_dead_after_ms && now_ms >= v->agent_seen_ms + c->assume_dead_after_ms) {
        d->verdict = REMEDY_OUT_OF_SERVICE;
        d->assumed_dead = true;
        d->force_delete = true;
        d->reason = "NodeAssumedDead";
        return;
    }
    if (fenced) {
        d->verdict = REMEDY_FENCE_WAIT;
        d->reason = "WaitingForFencingDeadline";
        d->deadline_ms = deadline;
        d->next_ms = deadline;
    } else {
        d->verdict = REMEDY_UNFENCED;
        d->reason = v->fenced ? "RemediatorNotAskedByNode" : "NodeNotFenced";
    }
    if (c->assume_dead_after_ms)
        d->next_ms = earliest(d->next_ms, v->agent_seen_ms + c->assume_dead_after_ms);
}

const char *remedy_verdict_name(enum remedy_verdict v) {
    static const char *const names[] = {
        [REMEDY_NONE] = "none",
        [REMEDY_WATCH] = "watch",
        [REMEDY_NO_QUORUM] = "no_quorum",
        [REMEDY_FENCE_WAIT] = "fence_wait",
        [REMEDY_OUT_OF_SERVICE] = "out_of_service",
        [REMEDY_UNFENCED] = "unfenced",
        [REMEDY_LIFT] = "lift",
        [REMEDY_KEEP] = "keep",
    };
    if ((unsigned)v >= sizeof(names) / sizeof(names[0]) || !names[v])
        return "invalid";
    return names[v];
}
