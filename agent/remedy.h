/*
 * The remediator's decision for one node (docs/node-loss.md, "Remediation"):
 * from what the elected agent sees of a node — its agent's heartbeat Lease,
 * its Ready condition and kubelet Lease, whether it hosts a SQL pod, whether
 * the out-of-service taint is on it — what to do now and when to look again.
 *
 * Every time is the leader's own monotonic clock. A record's "seen" time is
 * when the leader first saw that record (the holder's renewTime value), or
 * when it became leader, whichever is later: a Lease is never judged expired
 * by comparing its renewTime with this node's wall clock, and a new leader
 * waits a whole duration before it trusts an expiry.
 *
 * Pure: no I/O, no clock, no allocation.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct remedy_config {
    uint64_t fence_margin_ms;      /* remediation.fenceMargin */
    uint64_t node_lease_stale_ms;  /* remediation.nodeLeaseStaleAfter, > 0 */
    uint64_t assume_dead_after_ms; /* remediation.assumeDeadAfter; 0: never */
};

struct remedy_view {
    bool hosts_sql;         /* a SQL pod is bound to the node and not yet gone */
    bool has_agent_lease;   /* its agent's heartbeat Lease exists */
    uint64_t agent_seen_ms; /* that Lease's current record first seen */
    uint64_t agent_duration_ms;
    bool fenced;                  /* the Lease says its watchdog is armed */
    uint64_t watchdog_timeout_ms; /* and its timeout */
    bool asks_remediator;         /* the Lease names this remediator among the peers its roll call
                             asks: only then does its fencing deadline bind */
    bool node_exists;
    bool node_ready;          /* the Ready condition is True */
    bool has_kubelet_lease;   /* kube-node-lease/<node> exists */
    uint64_t kubelet_seen_ms; /* its current record first seen */
    bool out_of_service;      /* node.kubernetes.io/out-of-service is on the node */
    bool agent_renewed_since; /* the agent's record changed after out-of-service went on */
    bool quorum;              /* at least half of the agents known are live */
};

enum remedy_verdict {
    REMEDY_NONE,           /* nothing to do */
    REMEDY_WATCH,          /* its agent is gone but the node is not (yet): wait */
    REMEDY_NO_QUORUM,      /* it looks dead, but so do too many others: do nothing */
    REMEDY_FENCE_WAIT,     /* dead and fenced: wait for the fencing deadline */
    REMEDY_OUT_OF_SERVICE, /* dead, and fenced past its deadline (or assumed dead) */
    REMEDY_UNFENCED,       /* dead but not fenced (or fenced, but its roll call does not ask
                              this remediator): only the safe NoExecute taint */
    REMEDY_LIFT,           /* back: Ready with a live agent; remove out-of-service */
    REMEDY_KEEP,           /* out-of-service stays: the node is not back yet */
};

struct remedy_decision {
    enum remedy_verdict verdict;
    bool assumed_dead;    /* OUT_OF_SERVICE because assumeDeadAfter passed, not fencing */
    bool force_delete;    /* OUT_OF_SERVICE, or KEEP on a node still down: force-delete its SQL
                           pods (what the pod GC does for a NotReady out-of-service node) */
    uint64_t deadline_ms; /* FENCE_WAIT: when the fencing deadline passes */
    uint64_t next_ms;     /* when the verdict can change by time alone; UINT64_MAX: never */
    const char *reason;   /* CamelCase, static */
};

void remedy_decide(const struct remedy_config *c, const struct remedy_view *v, uint64_t now_ms,
                   struct remedy_decision *d);
/* "none", "watch", "no_quorum", "fence_wait", "out_of_service", "unfenced",
 * "lift", "keep"; "invalid" otherwise. */
const char *remedy_verdict_name(enum remedy_verdict v);
