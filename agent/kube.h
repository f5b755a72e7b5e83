/*
 * The Kubernetes reporter: everything the agent says to and hears from the API
 * server, on the agent's libuv loop through the HTTPS client (http.h).
 *
 * - Watches: this node (list, then watch from the list's resourceVersion with
 *   bookmarks; resume after a dropped stream; relist on 410) and, in pod mode,
 *   the SQL pods on this node (field selector spec.nodeName plus the label
 *   selector). Pod mode hands pods to the agent through callbacks, which make
 *   and drop targets.
 * - Slots: one per target (static mode: a configured engine; pod mode: a
 *   pod). Each holds a policy (policy.h) fed with the target's health. The
 *   reporter writes the union of the slots' desired states — level-triggered:
 *   it compares what the policy wants with what the watches show and writes
 *   the difference, retrying with backoff until the API shows it, so a lost
 *   write, a restart or another writer never leaves the cluster wrong.
 *   Taints are a read-modify-write with resourceVersion, retried on 409;
 *   conditions are strategic-merge patches; Events are posted once.
 * - Start-up reconciliation: nothing is written until the node (and in pod
 *   mode the pods) have been listed; then each slot adopts what the API shows
 *   (policy_reconcile_start), so an agent restart flaps nothing.
 * - A heartbeat Lease edgewarden-<node>, renewed every lease_renew_ms.
 * - Metrics: API requests by verb, resource and code with their latency,
 *   watch restarts, actions, detection-to-action latency, reachability.
 *
 * The reporter owns its HTTPS client, caches and slots; struct kube is freed
 * by kube_close() once every handle has closed. docs/kubernetes.md is the
 * operator's page.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "health.h"
#include "http.h"
#include "kube_json.h"
#include "kubeconfig.h"
#include "metrics.h"
#include "policy.h"

struct kube;
struct kube_slot;

/* A SQL pod on this node that is running and has an IP: a target to make. */
struct kube_pod_info {
    const char *namespace;
    const char *name;
    const char *uid;
    const char *ip;
    bool has_ready_gate;
};

struct kube_options {
    const char *node_name;
    const char *namespace;        /* of the heartbeat Lease */
    const struct kube_auth *auth; /* borrowed for kube_new(), copied */
    double qps;
    unsigned burst;
    uint64_t request_timeout_ms;
    uint64_t lease_duration_ms;
    uint64_t lease_renew_ms;
    const char *pod_selector; /* NULL or "": static mode */
    struct policy_config policy;
    struct metrics *metrics; /* borrowed; families are registered in it */
    /* Pod mode: a pod became a target (pod_added) or stopped being one
     * (pod_removed: deleted, being deleted, moved, lost its IP, no longer
     * matches). The agent makes or stops the target and its slot. Strings
     * are borrowed for the call. */
    void (*pod_added)(const struct kube_pod_info *pod, void *data);
    void (*pod_removed)(const char *uid, void *data);
    void *data;
};

/* A new reporter; it starts listing and watching at once. 0, -EINVAL (bad
 * options: *error says why, caller frees), -ENOMEM, or an httpc_new() error. */
int kube_new(uv_loop_t *loop, const struct kube_options *o, struct kube **out, char **error);

/* Stop everything; cb(data) after the last handle closed; k is freed then.
 * Slots are freed with it. Writes in flight are abandoned: what the policy
 * wanted is still in the API or written by the next agent's reconciliation. */
void kube_close(struct kube *k, void (*cb)(void *data), void *data);

/* A slot for a target. key names it in logs and /status (the target name);
 * pod (may be NULL in static mode) is the pod whose readiness it writes,
 * copied. The slot starts "starting" with no opinion. NULL on ENOMEM. */
struct kube_slot *kube_slot_new(struct kube *k, const char *key, const struct kube_pod_info *pod);
/* The target's health: call it with every transition and every reason change
 * within a state (level-triggered; repeats change nothing). */
void kube_slot_health(struct kube_slot *s, enum health_state state, const char *reason,
                      const char *message);
/* The target is gone (its pod left, or a reload removed it). The reporter
 * keeps the slot until its quarantine is over, then frees it; s must not be
 * used after this call. */
void kube_slot_gone(struct kube_slot *s);

/* Whether the API server answered the last request usefully (a response
 * that is not 5xx, 401 or 403) and the node has been listed; why not in
 * *why (static text or NULL). */
bool kube_api_ok(const struct kube *k, const char **why);

/* A JSON object for /status: reachability, watches, slots and their desired
 * state. New reference, NULL on ENOMEM. */
json_t *kube_status_json(const struct kube *k);

/* ---- for the cluster-wide part (cluster.h) ------------------------------ */

/* The failover-budget request of a slot's policy, as the reporter hands it
 * over: slot_id names the slot in kube_budget_answer(); pod (NULL in static
 * mode) is the pod the eviction would move. Borrowed for the call. */
struct kube_budget_request {
    uint64_t slot_id;
    const char *key;
    const struct kube_pod_info *pod;
    const char *owner_uid; /* the pod's controller; "" when unknown */
};

struct kube_hooks {
    /* Annotations for the next heartbeat renewal (up to cap); renew_us is
     * the renewTime it will carry. Strings must stay valid until the next
     * call. */
    size_t (*heartbeat_annotations)(struct kube_json_annotation *out, size_t cap, int64_t renew_us,
                                    void *data);
    /* A heartbeat renewal sent at sent_ms (kube_now_ms()) succeeded. */
    void (*heartbeat_ok)(uint64_t sent_ms, void *data);
    /* A slot's policy asks for a failover-budget slot: answer later with
     * kube_budget_answer(). Without this hook every request is granted. */
    void (*budget_acquire)(const struct kube_budget_request *req, void *data);
    /* The slot's policy gives it back; evicted: the slot's NoExecute taint
     * was wanted while it held the budget (the eviction is under way). */
    void (*budget_release)(uint64_t slot_id, bool evicted, void *data);
    void *data;
};

/* Install the hooks (copied); NULL removes them. */
void kube_set_hooks(struct kube *k, const struct kube_hooks *h);
/* The answer to budget_acquire: 0 granted, else refused (the policy asks
 * again after budgetRetry). A slot that is gone meanwhile is ignored: its
 * grant must then be given back by the caller (returns -ENOENT). */
int kube_budget_answer(struct kube *k, uint64_t slot_id, int result);

/* The reporter's HTTPS client, its clock (monotonic ms) and request timeout. */
struct httpc *kube_http(struct kube *k);
uint64_t kube_now_ms(const struct kube *k);
uint64_t kube_request_timeout_ms(const struct kube *k);
/* Count an answer to a request sent at start_ns (uv_hrtime()) in the request
 * metrics, update the API's reachability, and re-read the token after a
 * 401. */
void kube_observe_answer(struct kube *k, const char *verb, const char *resource, int result,
                         const struct httpc_response *resp, uint64_t start_ns);
void kube_count_watch_restart(struct kube *k, const char *resource, const char *reason);
/* kube_now_ms() of the last useful answer from the API server (not 5xx,
 * 401, 403, and not a transport error); 0 before any. */
uint64_t kube_api_ok_ms(const struct kube *k);
/* Renew the heartbeat Lease now (after the one in flight, if any), so that
 * changed annotations reach the API server at once. */
void kube_heartbeat_now(struct kube *k);
/* Targets (slots) this agent supervises now, gone ones not counted. */
size_t kube_target_count(const struct kube *k);
const char *kube_node_name(const struct kube *k);
const char *kube_namespace(const struct kube *k);
/* The pod selector (pod mode), or NULL. */
const struct kube_json_selector *kube_pod_selector(const struct kube *k);
/* Log a failed request: what failed and, for a 403, what to do. */
void kube_log_http_failure(const char *what, int result, const struct httpc_response *resp);
