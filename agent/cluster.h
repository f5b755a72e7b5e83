/*
 * The cluster-wide part of the agent (docs/node-loss.md): what the agents do
 * together when a whole node dies.
 *
 * - Self-fencing: with a watchdog device configured and a SQL target on this
 *   node, the agent arms the watchdog after its first heartbeat renewal and
 *   feeds it by the rule of fence.h; when its renewals stop it asks its peers
 *   (`GET /peer`, peer.h) and stops feeding unless every peer answers and
 *   none reaches the API server. The heartbeat Lease advertises the fencing
 *   (annotations, through the reporter's hooks).
 * - Election: every agent with remediation enabled takes part in the election
 *   on Lease edgewarden-remediator (election.h).
 * - Remediation: the leader watches the heartbeat Leases, the kubelet Leases,
 *   the Nodes, the SQL pods and the failover slots (informer.h), decides per
 *   node (remedy.h) and applies node.kubernetes.io/out-of-service and
 *   force-deletes the SQL pods of a node that is dead and fenced, taints an
 *   unfenced one NoExecute only, and lifts out-of-service when the node is
 *   back. Every step is an Event and a metric.
 * - Failover budget: Leases edgewarden-failover-<i>, taken before any taint
 *   that evicts, by the reporter's policy (kube hooks) and by the
 *   remediator; the leader gives a slot back once its pods have Ready
 *   replacements.
 *
 * Runs on the agent's loop next to the reporter (kube.h), through its HTTPS
 * client. cluster_close() before kube_close().
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kube.h"
#include "metrics.h"

struct cluster;

struct cluster_options {
    /* HOST:PORT where peers reach this agent's HTTP server; NULL or "": none. */
    const char *advertise_address;
    /* the heartbeat Lease's timing (kubernetes.lease) */
    uint64_t lease_duration_ms;
    uint64_t lease_renew_ms;
    /* remediation */
    bool remediation_enabled;
    uint64_t election_lease_ms;
    uint64_t election_renew_deadline_ms;
    uint64_t election_retry_ms;
    uint64_t node_lease_stale_ms;
    uint64_t fence_margin_ms;
    uint64_t assume_dead_after_ms; /* 0: never */
    /* fencing */
    const char *watchdog_device; /* NULL or "": no watchdog */
    uint64_t watchdog_timeout_ms;
    uint64_t peer_timeout_ms;
    /* failover budget (policy) */
    unsigned max_failovers;
    uint64_t failover_timeout_ms;
    uint64_t budget_retry_ms;
    struct metrics *metrics; /* borrowed */
};

/* A new cluster part on k's loop; it installs the reporter's hooks and
 * starts at once. 0, -EINVAL (*error says why; caller frees), -ENOMEM. */
int cluster_new(uv_loop_t *loop, struct kube *k, const struct cluster_options *o,
                struct cluster **out, char **error);
/* A clean stop, first half: with the watchdog armed, advertise
 * `fenced: "false"` in a heartbeat renewal and wait (at most 3 s) for the API
 * server to acknowledge it; only then may the watchdog be disarmed (a
 * remediator must never count on a watchdog that is no longer armed:
 * docs/model, finding 4). cb(data) runs when that is settled, at once when
 * no watchdog is armed. */
void cluster_prepare_stop(struct cluster *c, void (*cb)(void *data), void *data);
/* Disarm the watchdog if cluster_prepare_stop() got the unfenced renewal
 * acknowledged (else close it armed: a real watchdog then fires unless a new
 * agent feeds it in time), give up leadership, cancel everything, remove the
 * hooks; cb(data) once the timer handle closed; c is freed then. */
void cluster_close(struct cluster *c, void (*cb)(void *data), void *data);

/* The answer to GET /peer: {"node", "apiReachable", "apiOkAgeMs", "leader",
 * "fenced"}. New reference; NULL on ENOMEM. */
json_t *cluster_peer_json(const struct cluster *c);
/* /status: election, fencing, remediation, budget. New reference. */
json_t *cluster_status_json(const struct cluster *c);
