/*
 * The Kubernetes reporter (kube.h). One struct kube per agent: an HTTPS
 * client, the node and pod watches with their caches, the slots (one policy
 * per target), the node-level write channels, the heartbeat Lease and the
 * token re-read.
 *
 * Writing is level-triggered. A policy action only marks its channel dirty
 * (and remembers when, for edgewarden_detection_to_action_seconds); sync()
 * then compares what the slots want with what the watch caches show and
 * writes the difference, one request per channel at a time. A write's
 * response (the whole object) updates the cache, so the next sync() sees the
 * write without waiting for the watch; a failed write is retried with
 * backoff. Whatever happens in between — a lost response, a 409, another
 * writer, kwok rewriting the node status — the next comparison catches it.
 */
#include "kube.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "http.h"
#include "kube_json.h"
#include "log.h"

#define BACKOFF_MIN_MS        500
#define BACKOFF_MAX_MS        10000 /* writes: converge soon after the API is back */
#define WATCH_BACKOFF_MAX_MS  5000  /* watches: a restarted API server answers 403 for a while */
#define TOKEN_REREAD_MS       60000
#define WATCH_TIMEOUT_MIN_S   600 /* a watch is re-opened after 10..20 minutes */
#define WATCH_TIMEOUT_SPREAD  600
#define CONFLICTS_BEFORE_WAIT 5
#define MAX_TAINTS            (KUBE_JSON_MAX_ENTRIES + 1)

enum chan { CH_NODE_CONDITION, CH_TAINT, CH_CORDON, CH_COUNT };

/* One kind of write towards one object: at most one request in flight, a
 * retry time after a failure, and when the policy last changed its mind. */
struct channel {
    bool in_flight;
    struct req *req;      /* the write in flight, when in_flight */
    int value;            /* what it writes */
    uint64_t retry_at_ms; /* 0: no retry pending */
    uint64_t backoff_ms;
    uint64_t dirty_since_ns; /* 0: nothing decided since the last acknowledged write */
    unsigned conflicts;
};

struct kube_slot {
    struct kube *k;
    struct kube_slot *next;
    uint64_t id;        /* names it to the budget hook */
    bool budget_held;   /* the budget hook granted a slot */
    bool budget_evicts; /* NoExecute wanted while the budget was held */
    /* An eviction that got no answer (or a 5xx/429) is sent again, with
     * backoff, while the pod is still here: the taint manager's own
     * eviction can be lost with an API server restart, and this is the
     * backstop (scenario f). */
    uint64_t evict_retry_at_ms; /* 0: none pending */
    uint64_t evict_backoff_ms;
    char *key;
    bool has_pod;
    char pod_ns[KUBE_JSON_NAMESPACE_SIZE];
    char pod_name[KUBE_JSON_NAME_SIZE];
    char pod_uid[KUBE_JSON_UID_SIZE];
    bool has_ready_gate;
    struct policy policy;
    struct channel ready;
    bool gone;
    bool reconciled;
    unsigned refs; /* requests in flight that point here */
};

struct pod_entry {
    struct pod_entry *next;
    struct kube_json_pod pod;
    bool target; /* handed to the agent through pod_added */
    char target_ip[KUBE_JSON_IP_SIZE];
};

struct watch {
    struct kube *k;
    const char *resource; /* "nodes", "pods" */
    bool pods;
    char rv[KUBE_JSON_RV_SIZE];
    struct httpc_call *call;
    bool relist;
    bool synced; /* listed at least once */
    uint64_t backoff_ms;
    uv_timer_t timer;
    uint64_t restarts;
    uint64_t events;
    char last_error[320];
};

enum req_kind {
    REQ_LIST,
    REQ_NODE_CONDITION,
    REQ_TAINT,
    REQ_GET_NODE,
    REQ_CORDON,
    REQ_POD_READY,
    REQ_EVENT,
    REQ_EVICT,
    REQ_LEASE_GET,
    REQ_LEASE_CREATE,
    REQ_LEASE_UPDATE,
};

struct req {
    struct kube *k;
    struct req *prev, *next;
    enum req_kind kind;
    const char *verb;     /* static: get, list, patch, create, update */
    const char *resource; /* static */
    struct kube_slot *slot;
    struct watch *watch;
    struct httpc_call *call;
    uint64_t start_ns;
    int value; /* what the write set: a status, a taint, a cordon flag */
    char *body;
};

struct kube_metrics {
    struct metric_family *requests;
    struct metric_family *retries;
    struct metric_family *duration;
    struct metric_family *watch_restarts;
    struct metric_family *actions;
    struct metric_family *detection;
    struct metric_family *reachable;
};

struct kube {
    uv_loop_t *loop;
    struct httpc *http;
    char *node;
    char *ns;
    bool pod_mode;
    struct kube_json_selector selector;
    struct policy_config pcfg;
    struct kube_options o;
    uint64_t request_timeout_ms;
    uint64_t lease_duration_ms;
    uint64_t lease_renew_ms;

    struct watch node_watch;
    struct watch pod_watch;
    struct kube_json_node nd; /* this node, as last seen */
    bool have_node;
    bool node_missing_logged;
    struct pod_entry *pods;

    struct kube_slot *slots;
    struct channel ch[CH_COUNT];
    bool we_cordoned;
    bool reconciled;

    /* heartbeat Lease */
    char lease_rv[KUBE_JSON_RV_SIZE];
    bool lease_need_get; /* read it before writing: at start and after a 409 */
    bool lease_in_flight;
    uint64_t lease_due_ms;
    uint64_t lease_backoff_ms;
    int64_t lease_acquire_us;
    uint64_t lease_renewals;
    bool lease_again; /* renew again as soon as the renewal in flight ends */

    /* service-account token re-read, off the loop */
    struct kube_auth token_auth; /* token and token_file only */
    uv_work_t token_work;
    bool token_reading;
    int token_result;
    char *token_error;
    uint64_t token_due_ms;

    bool api_ok;
    uint64_t api_ok_ms;
    const char *api_why;
    char api_error[200];

    struct kube_hooks hooks;
    uint64_t next_slot_id;
    uint64_t lease_sent_ms;

    struct req *reqs;
    uv_timer_t timer;
    struct kube_metrics m;

    bool closing;
    unsigned open_handles;
    void (*close_cb)(void *data);
    void *close_data;
};

static const double api_buckets_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10,   30};

static void sync_all(struct kube *k);
static void arm_timer(struct kube *k);
static void watch_list(struct watch *w);
static const char *what_for(enum req_kind kind);
static void kube_maybe_free(struct kube *k);

/* ---- time and small helpers ------------------------------------------- */

static uint64_t now_ms(const struct kube *k) {
    return uv_now(k->loop);
}

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t jitter(uint64_t ms) {
    /* Full jitter over the upper half: [ms/2, ms]. Not for security. */
    return ms / 2 + (uint64_t)(rand() % (int)(ms / 2 + 1));
}

static uint64_t next_backoff_max(uint64_t *backoff_ms, uint64_t max_ms) {
    uint64_t b = *backoff_ms ? *backoff_ms * 2 : BACKOFF_MIN_MS;
    if (b > max_ms)
        b = max_ms;
    *backoff_ms = b;
    return jitter(b);
}

static uint64_t next_backoff(uint64_t *backoff_ms) {
    return next_backoff_max(backoff_ms, BACKOFF_MAX_MS);
}

/* "2026-11-29T08:28:35Z" (fractions ignored) as unix seconds; 0 when not
 * parseable, which the builders read as "now" never: callers pass now then. */
static int64_t parse_time(const char *s) {
    struct tm tm = {0};
    if (!s || !s[0])
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (int64_t)t;
}

/* resourceVersions are opaque, but etcd's are decimal counters: when both
 * are, an older one never replaces a newer cache entry. */
static bool rv_older(const char *candidate, const char *current) {
    char *e1, *e2;
    if (!candidate[0] || !current[0])
        return false;
    errno = 0;
    unsigned long long a = strtoull(candidate, &e1, 10);
    unsigned long long b = strtoull(current, &e2, 10);
    if (errno || *e1 || *e2)
        return false;
    return a < b;
}

static enum policy_status status_of(const char *s) {
    if (strcmp(s, "True") == 0)
        return POLICY_STATUS_TRUE;
    if (strcmp(s, "False") == 0)
        return POLICY_STATUS_FALSE;
    return POLICY_STATUS_UNSET;
}

/* ---- metrics and reachability ---------------------------------------- */

static int metrics_setup(struct kube *k, struct metrics *reg) {
    static const char *const vrc[] = {"verb", "resource", "code"};
    static const char *const vr[] = {"verb", "resource"};
    static const char *const rr[] = {"resource", "reason"};
    static const char *const ac[] = {"action"};
    struct kube_metrics *m = &k->m;
    if (!reg)
        return 0;
    m->requests = metrics_counter(reg, "edgewarden_kube_requests_total",
                                  "Kubernetes API requests by verb, resource and HTTP status code "
                                  "(\"error\": no response).",
                                  3, vrc);
    m->retries = metrics_counter(reg, "edgewarden_kube_request_retries_total",
                                 "Kubernetes API request attempts beyond the first (connection "
                                 "errors, 429 and 5xx answers), by verb and resource.",
                                 2, vr);
    m->duration = metrics_histogram(
        reg, "edgewarden_kube_request_duration_seconds",
        "Kubernetes API request latency, retries and rate-limit waits included, in seconds.", 2, vr,
        api_buckets_s, sizeof(api_buckets_s) / sizeof(api_buckets_s[0]));
    m->watch_restarts = metrics_counter(
        reg, "edgewarden_kube_watch_restarts_total",
        "Watches re-opened, by resource and reason (closed, error, expired).", 2, rr);
    m->actions =
        metrics_counter(reg, "edgewarden_kube_actions_total",
                        "Escalation-ladder actions decided by the policy, by kind.", 1, ac);
    m->detection = metrics_histogram(
        reg, "edgewarden_detection_to_action_seconds",
        "From the moment the policy decided a change (a failure seen, a recovery) to the API "
        "server acknowledging the write that shows it, by action, in seconds.",
        1, ac, api_buckets_s, sizeof(api_buckets_s) / sizeof(api_buckets_s[0]));
    m->reachable = metrics_gauge(reg, "edgewarden_kube_api_reachable",
                                 "Whether the last Kubernetes API request got a usable answer (1) "
                                 "or not (0).",
                                 0, NULL);
    if (!m->requests || !m->retries || !m->duration || !m->watch_restarts || !m->actions ||
        !m->detection || !m->reachable)
        return -ENOMEM;
    metric_set(m->reachable, NULL, 0);
    return 0;
}

static void set_api_ok(struct kube *k, bool ok, const char *why, const char *detail) {
    if (ok != k->api_ok) {
        if (ok)
            log_info("kubernetes API server reachable again");
        else
            log_warn("kubernetes API server not usable: %s%s%s; probing goes on, writes are "
                     "retried",
                     why, detail && detail[0] ? ": " : "", detail ? detail : "");
    }
    k->api_ok = ok;
    k->api_why = ok ? NULL : why;
    snprintf(k->api_error, sizeof(k->api_error), "%.*s", (int)sizeof(k->api_error) - 1,
             ok || !detail ? "" : detail);
    if (k->m.reachable)
        metric_set(k->m.reachable, NULL, ok ? 1 : 0);
}

static void count_request(struct kube *k, const char *verb, const char *resource, int result,
                          const struct httpc_response *resp, uint64_t start_ns) {
    long status = result < 0 || !resp ? 0 : resp->status;
    if (!k->m.requests)
        return;
    char code[16];
    if (result < 0 || status == 0)
        snprintf(code, sizeof(code), "error");
    else
        snprintf(code, sizeof(code), "%ld", status);
    const char *l3[] = {verb, resource, code};
    const char *l2[] = {verb, resource};
    metric_add(k->m.requests, l3, 1);
    if (resp && resp->attempts > 1)
        metric_add(k->m.retries, l2, (double)(resp->attempts - 1));
    metric_observe(k->m.duration, l2, (double)(uv_hrtime() - start_ns) / 1e9);
}

static void observe_detection(struct kube *k, struct channel *ch, const char *action,
                              const char *what) {
    if (!ch->dirty_since_ns)
        return;
    double s = (double)(uv_hrtime() - ch->dirty_since_ns) / 1e9;
    ch->dirty_since_ns = 0;
    if (k->m.detection) {
        const char *l[] = {action};
        metric_observe(k->m.detection, l, s);
    }
    struct log_field f[] = {{"node", k->node}, {"action", action}};
    log_fields(LOG_LEVEL_INFO, 0, f, 2,
               "%s acknowledged by the API server %.1f ms after the "
               "decision",
               what, s * 1000.0);
}

/* ---- requests ---------------------------------------------------------- */

static void req_free(struct req *r) {
    struct kube *k = r->k;
    if (r->prev)
        r->prev->next = r->next;
    else
        k->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->slot)
        r->slot->refs--;
    free(r->body);
    free(r);
}

static void on_req_done(int result, struct httpc_response *resp, void *data);

/* Send one request; body is taken over (freed). Returns 0 or -errno; on
 * failure nothing is pending. */
static int send_req(struct kube *k, enum req_kind kind, const char *method, const char *verb,
                    const char *resource, const char *path, const char *content_type, char *body,
                    struct kube_slot *slot, int value) {
    struct req *r = calloc(1, sizeof(*r));
    if (!r) {
        free(body);
        return -ENOMEM;
    }
    r->k = k;
    r->kind = kind;
    r->verb = verb;
    r->resource = resource;
    r->slot = slot;
    r->value = value;
    r->body = body;
    r->start_ns = uv_hrtime();
    struct httpc_request hr = {
        .method = method,
        .path = path,
        .content_type = content_type,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = k->request_timeout_ms,
    };
    int ret = httpc_request(k->http, &hr, on_req_done, r, &r->call);
    if (ret < 0) {
        free(body);
        free(r);
        return ret;
    }
    if (slot)
        slot->refs++;
    if (log_enabled(LOG_LEVEL_DEBUG))
        log_debug("kubernetes: %s %s%s%s", method, path, body ? " " : "", body ? body : "");
    r->next = k->reqs;
    if (k->reqs)
        k->reqs->prev = r;
    k->reqs = r;
    return 0;
}

static void log_http_failure(struct kube *k, const char *what, int result,
                             const struct httpc_response *resp) {
    if (result < 0) {
        log_warn("%s: %s (%s); retrying", what, resp && resp->error[0] ? resp->error : "failed",
                 strerror(-result));
        return;
    }
    struct kube_json_status st;
    if (resp->body.len && kube_json_status_parse(resp->body.data, resp->body.len, &st, NULL) == 0)
        log_warn("%s: HTTP %ld %s: %s", what, resp->status, st.reason, st.message);
    else
        log_warn("%s: HTTP %ld", what, resp->status);
    if (resp->status == 403)
        log_warn("the agent's identity lacks a permission: apply the RBAC in k8s/base "
                 "(docs/rbac.md)");
}

/* Update the reachability from an answer. */
static void note_answer(struct kube *k, int result, const struct httpc_response *resp) {
    if (result < 0) {
        set_api_ok(k, false, "no answer from the API server", resp ? resp->error : NULL);
        return;
    }
    long s = resp->status;
    if (s >= 500)
        set_api_ok(k, false, "the API server answers with errors", NULL);
    else if (s == 401)
        set_api_ok(k, false, "unauthorized (401): the token or certificate is not accepted", NULL);
    else if (s == 403)
        set_api_ok(k, false, "forbidden (403): RBAC denies a request the agent needs", NULL);
    else {
        set_api_ok(k, true, NULL, NULL);
        k->api_ok_ms = now_ms(k);
    }
}

/* ---- caches ------------------------------------------------------------ */

static void node_replace(struct kube *k, struct kube_json_node *n) {
    if (k->have_node && rv_older(n->meta.resource_version, k->nd.meta.resource_version)) {
        kube_json_node_free(n);
        return;
    }
    kube_json_node_free(&k->nd);
    k->nd = *n;
    memset(n, 0, sizeof(*n));
    k->have_node = true;
}

static struct pod_entry *pod_find(struct kube *k, const char *uid) {
    for (struct pod_entry *e = k->pods; e; e = e->next)
        if (strcmp(e->pod.meta.uid, uid) == 0)
            return e;
    return NULL;
}

static bool pod_eligible(const struct kube *k, const struct kube_json_pod *p) {
    return !p->meta.deleting && p->pod_ip[0] && strcmp(p->phase, "Running") == 0 &&
           strcmp(p->node_name, k->node) == 0;
}

static void pod_info(const struct kube_json_pod *p, struct kube_pod_info *out) {
    out->namespace = p->meta.namespace;
    out->name = p->meta.name;
    out->uid = p->meta.uid;
    out->ip = p->pod_ip;
    out->has_ready_gate = p->has_ready_gate;
}

/* Tell the agent when a pod starts or stops being a target. */
static void pod_update_target(struct kube *k, struct pod_entry *e) {
    bool want = pod_eligible(k, &e->pod);
    if (e->target && (!want || strcmp(e->target_ip, e->pod.pod_ip) != 0)) {
        e->target = false;
        if (k->o.pod_removed)
            k->o.pod_removed(e->pod.meta.uid, k->o.data);
    }
    if (!e->target && want) {
        e->target = true;
        snprintf(e->target_ip, sizeof(e->target_ip), "%s", e->pod.pod_ip);
        struct kube_pod_info pi;
        pod_info(&e->pod, &pi);
        if (k->o.pod_added)
            k->o.pod_added(&pi, k->o.data);
    }
}

static void pod_remove_entry(struct kube *k, struct pod_entry *e) {
    for (struct pod_entry **pp = &k->pods; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    if (e->target && k->o.pod_removed)
        k->o.pod_removed(e->pod.meta.uid, k->o.data);
    kube_json_pod_free(&e->pod);
    free(e);
}

/* Take p (moved out) as the newest state of its pod. */
static void pod_upsert(struct kube *k, struct kube_json_pod *p) {
    struct pod_entry *e = pod_find(k, p->meta.uid);
    if (e) {
        if (rv_older(p->meta.resource_version, e->pod.meta.resource_version)) {
            kube_json_pod_free(p);
            return;
        }
        kube_json_pod_free(&e->pod);
    } else {
        e = calloc(1, sizeof(*e));
        if (!e) {
            kube_json_pod_free(p);
            log_error("out of memory caching a pod");
            return;
        }
        e->next = k->pods;
        k->pods = e;
    }
    e->pod = *p;
    memset(p, 0, sizeof(*p));
    pod_update_target(k, e);
}

/* ---- reconciliation ---------------------------------------------------- */

static enum policy_taint observed_taint(const struct kube *k) {
    enum policy_taint t = POLICY_TAINT_NONE;
    for (size_t i = 0; k->have_node && i < k->nd.n_taints; i++) {
        const struct kube_json_taint *x = &k->nd.taints[i];
        if (strcmp(x->key, POLICY_TAINT_KEY) != 0)
            continue;
        if (strcmp(x->effect, "NoExecute") == 0)
            t = POLICY_TAINT_NOEXECUTE;
        else if (strcmp(x->effect, "NoSchedule") == 0 && t == POLICY_TAINT_NONE)
            t = POLICY_TAINT_NOSCHEDULE;
    }
    return t;
}

static const struct kube_json_condition *observed_node_condition(const struct kube *k) {
    if (!k->have_node)
        return NULL;
    return kube_json_condition_find(k->nd.conditions, k->nd.n_conditions, POLICY_NODE_CONDITION);
}

static const struct kube_json_condition *observed_pod_ready(const struct kube *k,
                                                            const struct kube_slot *s,
                                                            const struct pod_entry **entry) {
    *entry = NULL;
    if (!s->has_pod)
        return NULL;
    const struct pod_entry *e = pod_find((struct kube *)k, s->pod_uid);
    *entry = e;
    if (!e)
        return NULL;
    return kube_json_condition_find(e->pod.conditions, e->pod.n_conditions, POLICY_POD_CONDITION);
}

static void handle_actions(struct kube_slot *s, const struct policy_actions *acts);

static void slot_reconcile(struct kube_slot *s, bool node_level) {
    struct kube *k = s->k;
    struct policy_observed obs = {0};
    const struct pod_entry *e;
    const struct kube_json_condition *c = observed_pod_ready(k, s, &e);
    obs.pod_ready = c ? status_of(c->status) : POLICY_STATUS_UNSET;
    if (node_level) {
        const struct kube_json_condition *nc = observed_node_condition(k);
        obs.node_condition = nc ? status_of(nc->status) : POLICY_STATUS_UNSET;
        obs.taint = observed_taint(k);
    }
    struct policy_actions acts;
    if (policy_reconcile_start(&s->policy, &obs, now_ms(k), &acts) == 0)
        handle_actions(s, &acts);
    s->reconciled = true;
}

/* The first time the node (and in pod mode the pods) are known: adopt what
 * the API shows, then start writing. */
static void maybe_reconcile(struct kube *k) {
    if (k->reconciled || !k->have_node || (k->pod_mode && !k->pod_watch.synced))
        return;
    bool any = k->slots != NULL;
    /* Our taint or condition with no target left to own it (the agent
     * restarted during a quarantine, after its pod had gone): an orphan slot
     * adopts it and winds it down the normal way. Made before reconciled is
     * set, so it is reconciled once, with the others. */
    const struct kube_json_condition *nc = observed_node_condition(k);
    struct kube_slot *orphan = NULL;
    if (!any && (observed_taint(k) != POLICY_TAINT_NONE ||
                 (nc && status_of(nc->status) == POLICY_STATUS_TRUE)))
        orphan = kube_slot_new(k, "(node)", NULL);
    k->reconciled = true;
    for (struct kube_slot *s = k->slots; s; s = s->next)
        slot_reconcile(s, true);
    if (orphan)
        kube_slot_gone(orphan);
    log_info("kubernetes: node %s listed (condition %s %s, taint %s); reconciled %s", k->node,
             POLICY_NODE_CONDITION, nc ? nc->status : "absent",
             policy_taint_name(observed_taint(k)),
             any      ? "with the targets"
             : orphan ? "(no targets; winding down what is there)"
                      : "(no targets)");
}

/* ---- writes ------------------------------------------------------------ */

struct aggregate {
    enum policy_status condition;
    const char *reason, *message;
    enum policy_taint taint;
    bool cordon;
};

static void aggregate(const struct kube *k, struct aggregate *a) {
    memset(a, 0, sizeof(*a));
    a->reason = a->message = "";
    for (const struct kube_slot *s = k->slots; s; s = s->next) {
        const struct policy_desired *d = policy_desired(&s->policy);
        if (d->node_condition == POLICY_STATUS_TRUE && a->condition != POLICY_STATUS_TRUE) {
            a->condition = POLICY_STATUS_TRUE;
            a->reason = d->reason;
            a->message = d->message;
        } else if (d->node_condition == POLICY_STATUS_FALSE &&
                   a->condition == POLICY_STATUS_UNSET) {
            a->condition = POLICY_STATUS_FALSE;
            a->reason = d->reason;
            a->message = d->message;
        }
        if (d->taint > a->taint)
            a->taint = d->taint;
        a->cordon |= d->cordon;
    }
}

/* A write in flight that no longer matches what is wanted is abandoned: its
 * retries (the client's own, up to seconds apart) would land a stale value
 * after the new one. A read after a conflict is left to finish. */
static void channel_supersede(struct channel *ch, int value) {
    if (!ch->in_flight || !ch->req || ch->value == value || ch->req->kind == REQ_GET_NODE)
        return;
    httpc_cancel(ch->req->call);
    req_free(ch->req);
    ch->req = NULL;
    ch->in_flight = false;
    ch->retry_at_ms = 0;
}

/* The API already shows what is wanted. Without a write of ours in flight,
 * nothing of ours made it so (another writer, or it was there at start): no
 * detection-to-action sample. With one in flight (the watch reported the
 * write before its answer arrived), the answer takes the sample. */
static void channel_converged(struct channel *ch) {
    if (!ch->in_flight)
        ch->dirty_since_ns = 0;
}

/* The write send_req() just queued (it puts a request first in k->reqs) is
 * now ch's request in flight. */
static void channel_started(struct kube *k, struct channel *ch) {
    ch->in_flight = true;
    ch->req = k->reqs;
    ch->value = ch->req->value;
    ch->retry_at_ms = 0;
}

static bool channel_ready(const struct kube *k, const struct channel *ch) {
    return !ch->in_flight && (!ch->retry_at_ms || ch->retry_at_ms <= now_ms(k));
}

static void channel_failed(struct kube *k, struct channel *ch) {
    ch->retry_at_ms = now_ms(k) + next_backoff(&ch->backoff_ms);
}

static void channel_ok(struct channel *ch) {
    ch->retry_at_ms = 0;
    ch->backoff_ms = 0;
    ch->conflicts = 0;
}

static void sync_node_condition(struct kube *k, const struct aggregate *a) {
    struct channel *ch = &k->ch[CH_NODE_CONDITION];
    if (a->condition == POLICY_STATUS_UNSET || !k->have_node) {
        channel_converged(ch);
        return;
    }
    const struct kube_json_condition *c = observed_node_condition(k);
    bool same_status = c && status_of(c->status) == a->condition;
    if (same_status && strcmp(c->reason, a->reason) == 0 && strcmp(c->message, a->message) == 0) {
        channel_converged(ch);
        return;
    }
    channel_supersede(ch, (int)a->condition);
    if (!channel_ready(k, ch))
        return;
    int64_t now_s = wall_us() / 1000000;
    int64_t transition = same_status ? parse_time(c->last_transition_time) : 0;
    char *body = NULL;
    char url[KUBE_JSON_URL_SIZE];
    int r = kube_json_node_condition_patch(a->condition, a->reason, a->message, now_s,
                                           transition ? transition : now_s, &body);
    if (r == 0)
        r = kube_json_url_node_status(url, sizeof(url), k->node);
    if (r == 0)
        r = send_req(k, REQ_NODE_CONDITION, "PATCH", "patch", "nodes/status", url,
                     "application/strategic-merge-patch+json", body, NULL, (int)a->condition);
    else
        free(body);
    if (r < 0) {
        log_error_errno(r, "node condition patch");
        channel_failed(k, ch);
        return;
    }
    channel_started(k, ch);
}

/* The node shows the NoSchedule quarantine: a policy whose quarantine waits
 * for it starts its clock now. */
static void quarantine_on_node(struct kube *k) {
    bool started = false;

    for (struct kube_slot *s = k->slots; s; s = s->next) {
        struct policy_actions more;

        /* Gone slots too: an orphan slot winds a quarantine down. */
        if (!policy_quarantine_awaits_taint(&s->policy))
            continue;
        if (policy_on_action_result(&s->policy, POLICY_ACTION_TAINT_NOSCHEDULE, 0, now_ms(k),
                                    &more) == 0)
            handle_actions(s, &more);
        started = true;
    }
    if (started)
        arm_timer(k); /* its end is a new deadline */
}

static void sync_taint(struct kube *k, const struct aggregate *a) {
    struct channel *ch = &k->ch[CH_TAINT];
    if (!k->have_node)
        return;
    struct kube_json_taint out[MAX_TAINTS];
    size_t n_out = 0;
    bool changed = false;
    int r = kube_json_taints_edit(k->nd.taints, k->nd.n_taints, a->taint, wall_us() / 1000000, out,
                                  MAX_TAINTS, &n_out, &changed);
    if (r < 0) {
        log_error_errno(r, "taint edit on node %s (%zu taints)", k->node, k->nd.n_taints);
        return;
    }
    if (!changed) {
        channel_converged(ch);
        if (a->taint == POLICY_TAINT_NOSCHEDULE)
            quarantine_on_node(k);
        return;
    }
    channel_supersede(ch, (int)a->taint);
    if (!channel_ready(k, ch))
        return;
    char *body = NULL;
    char url[KUBE_JSON_URL_SIZE];
    r = kube_json_taints_patch(out, n_out, k->nd.meta.resource_version, &body);
    if (r == 0)
        r = kube_json_url_node(url, sizeof(url), k->node);
    if (r == 0)
        r = send_req(k, REQ_TAINT, "PATCH", "patch", "nodes", url, "application/merge-patch+json",
                     body, NULL, (int)a->taint);
    else
        free(body);
    if (r < 0) {
        log_error_errno(r, "taint patch");
        channel_failed(k, ch);
        return;
    }
    channel_started(k, ch);
}

static void sync_cordon(struct kube *k, const struct aggregate *a) {
    struct channel *ch = &k->ch[CH_CORDON];
    if (!k->have_node)
        return;
    bool want;
    if (a->cordon && !k->nd.unschedulable)
        want = true;
    else if (!a->cordon && k->we_cordoned && k->nd.unschedulable)
        want = false;
    else {
        if (!k->nd.unschedulable)
            k->we_cordoned = false;
        channel_converged(ch);
        return;
    }
    channel_supersede(ch, want);
    if (!channel_ready(k, ch))
        return;
    char url[KUBE_JSON_URL_SIZE];
    char *body = strdup(want ? "{\"spec\":{\"unschedulable\":true}}"
                             : "{\"spec\":{\"unschedulable\":null}}");
    int r = body ? kube_json_url_node(url, sizeof(url), k->node) : -ENOMEM;
    if (r == 0)
        r = send_req(k, REQ_CORDON, "PATCH", "patch", "nodes", url, "application/merge-patch+json",
                     body, NULL, want);
    else
        free(body);
    if (r < 0) {
        channel_failed(k, ch);
        return;
    }
    channel_started(k, ch);
}

static void sync_pod_ready(struct kube *k, struct kube_slot *s) {
    struct channel *ch = &s->ready;
    const struct policy_desired *d = policy_desired(&s->policy);
    const struct pod_entry *e;
    const struct kube_json_condition *c = observed_pod_ready(k, s, &e);
    if (!s->has_pod || d->pod_ready == POLICY_STATUS_UNSET || !e || e->pod.meta.deleting) {
        channel_converged(ch);
        return;
    }
    bool same_status = c && status_of(c->status) == d->pod_ready;
    if (same_status && strcmp(c->reason, d->reason) == 0) {
        channel_converged(ch);
        return;
    }
    channel_supersede(ch, (int)d->pod_ready);
    if (!channel_ready(k, ch))
        return;
    int64_t now_s = wall_us() / 1000000;
    int64_t transition = same_status ? parse_time(c->last_transition_time) : 0;
    char *body = NULL;
    char url[KUBE_JSON_URL_SIZE];
    int r = kube_json_pod_ready_patch(d->pod_ready, d->reason, d->message,
                                      transition ? transition : now_s, &body);
    if (r == 0)
        r = kube_json_url_pod_status(url, sizeof(url), s->pod_ns, s->pod_name);
    if (r == 0)
        r = send_req(k, REQ_POD_READY, "PATCH", "patch", "pods/status", url,
                     "application/strategic-merge-patch+json", body, s, (int)d->pod_ready);
    else
        free(body);
    if (r < 0) {
        log_error_errno(r, "pod readiness patch for %s/%s", s->pod_ns, s->pod_name);
        channel_failed(k, ch);
        return;
    }
    channel_started(k, ch);
}

/* Free slots whose target left and whose ladder has nothing more to do. */
static void gc_slots(struct kube *k) {
    for (struct kube_slot **pp = &k->slots; *pp;) {
        struct kube_slot *s = *pp;
        const struct policy_desired *d = policy_desired(&s->policy);
        if (!s->gone || s->refs || policy_next_deadline_ms(&s->policy) != UINT64_MAX ||
            d->taint != POLICY_TAINT_NONE || d->cordon) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        free(s->key);
        free(s);
    }
}

static void sync_all(struct kube *k) {
    if (k->closing || !k->reconciled)
        return;
    struct aggregate a;
    aggregate(k, &a);
    /* The taint first: its patch is conditional on the node's
     * resourceVersion, which the condition patch (not conditional) would
     * move, turning a concurrent taint write into a 409 and a second round
     * trip. */
    sync_taint(k, &a);
    sync_node_condition(k, &a);
    sync_cordon(k, &a);
    for (struct kube_slot *s = k->slots; s; s = s->next)
        sync_pod_ready(k, s);
    arm_timer(k);
}

/* ---- actions ----------------------------------------------------------- */

static const char *event_action(const char *reason) {
    static const struct {
        const char *reason, *action;
    } map[] = {
        {"FailingOver", "Taint"},        {"Quarantined", "Taint"},
        {"QuarantineLifted", "Untaint"}, {"Cordoned", "Cordon"},
        {"Uncordoned", "Uncordon"},      {"Evicting", "Evict"},
        {"Recovered", "MarkReady"},      {"WaitingForFailoverBudget", "Wait"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].reason, reason) == 0)
            return map[i].action;
    return "MarkUnready";
}

static void post_event(struct kube_slot *s, const struct policy_action *a) {
    struct kube *k = s->k;
    struct kube_json_event ev = {
        .node = k->node,
        .action = event_action(a->reason),
        .reason = a->reason,
        .note = a->message,
        .type = a->event_type,
        .event_time_us = wall_us(),
    };
    if (s->has_pod) {
        ev.regarding =
            (struct kube_json_object_ref){"v1", "Pod", s->pod_name, s->pod_ns, s->pod_uid};
    } else {
        ev.regarding = (struct kube_json_object_ref){"v1", "Node", k->node, "",
                                                     k->have_node ? k->nd.meta.uid : ""};
    }
    char *body = NULL;
    char url[KUBE_JSON_URL_SIZE];
    int r = kube_json_event_body(&ev, &body);
    if (r == 0)
        r = kube_json_url_events(url, sizeof(url), kube_json_event_namespace(&ev));
    if (r == 0)
        r = send_req(k, REQ_EVENT, "POST", "create", "events", url, "application/json", body, NULL,
                     0);
    else
        free(body);
    if (r < 0)
        log_error_errno(r, "event %s", a->reason);
}

static void post_eviction(struct kube_slot *s) {
    struct kube *k = s->k;
    char url[KUBE_JSON_URL_SIZE];
    if (!s->has_pod || kube_json_url_pod_status(url, sizeof(url), s->pod_ns, s->pod_name) < 0)
        return;
    size_t n = strlen(url);
    if (n < 7 || n + 2 > sizeof(url))
        return;
    snprintf(url + n - 7, sizeof(url) - (n - 7), "/eviction"); /* ".../status" -> ".../eviction" */
    json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "apiVersion", "policy/v1", "kind", "Eviction",
                          "metadata", "name", s->pod_name, "namespace", s->pod_ns);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body || send_req(k, REQ_EVICT, "POST", "create", "pods/eviction", url, "application/json",
                          body, s, 0) < 0)
        log_error("cannot request the eviction of %s/%s", s->pod_ns, s->pod_name);
}

static void mark_dirty(struct channel *ch) {
    if (!ch->dirty_since_ns)
        ch->dirty_since_ns = uv_hrtime();
}

static void budget_ask(struct kube_slot *s) {
    struct kube *k = s->k;
    struct kube_pod_info pod = {
        .namespace = s->pod_ns, .name = s->pod_name, .uid = s->pod_uid, .ip = ""};
    struct pod_entry *e = s->has_pod ? pod_find(k, s->pod_uid) : NULL;
    struct kube_budget_request req = {
        .slot_id = s->id,
        .key = s->key,
        .pod = s->has_pod ? &pod : NULL,
        .owner_uid = e ? e->pod.owner_uid : "",
    };
    k->hooks.budget_acquire(&req, k->hooks.data);
}

static void handle_actions(struct kube_slot *s, const struct policy_actions *acts) {
    struct kube *k = s->k;
    bool granted = false;
    for (size_t i = 0; i < acts->n; i++) {
        const struct policy_action *a = &acts->items[i];
        if (k->m.actions) {
            const char *l[] = {policy_action_kind_name(a->kind)};
            metric_add(k->m.actions, l, 1);
        }
        switch (a->kind) {
        case POLICY_ACTION_SET_POD_READY:
            mark_dirty(&s->ready);
            break;
        case POLICY_ACTION_SET_NODE_CONDITION:
            mark_dirty(&k->ch[CH_NODE_CONDITION]);
            break;
        case POLICY_ACTION_TAINT_NOEXECUTE:
        case POLICY_ACTION_TAINT_NOSCHEDULE:
        case POLICY_ACTION_REMOVE_TAINT:
            mark_dirty(&k->ch[CH_TAINT]);
            break;
        case POLICY_ACTION_CORDON:
        case POLICY_ACTION_UNCORDON:
            mark_dirty(&k->ch[CH_CORDON]);
            if (a->kind == POLICY_ACTION_CORDON)
                k->we_cordoned = true;
            break;
        case POLICY_ACTION_EVENT:
            post_event(s, a);
            break;
        case POLICY_ACTION_EVICT_POD:
            post_eviction(s);
            break;
        case POLICY_ACTION_ACQUIRE_BUDGET:
            /* The cluster-wide failover budget (cluster.h: a Lease per
             * slot); without the hook every request is granted. */
            if (k->hooks.budget_acquire)
                budget_ask(s);
            else
                granted = true;
            break;
        case POLICY_ACTION_RELEASE_BUDGET:
            if (s->budget_held && k->hooks.budget_release)
                k->hooks.budget_release(s->id, s->budget_evicts, k->hooks.data);
            s->budget_held = s->budget_evicts = false;
            break;
        case POLICY_ACTION_KIND_COUNT:
            break;
        }
        if (a->kind == POLICY_ACTION_TAINT_NOEXECUTE && s->budget_held)
            s->budget_evicts = true;
        if (a->kind != POLICY_ACTION_EVENT && a->kind != POLICY_ACTION_ACQUIRE_BUDGET &&
            a->kind != POLICY_ACTION_RELEASE_BUDGET) {
            struct log_field f[] = {{"target", s->key},
                                    {"action", policy_action_kind_name(a->kind)},
                                    {"node", k->node}};
            log_fields(LOG_LEVEL_INFO, 0, f, 3, "policy: %s: %s%s%s%s%s", s->key,
                       policy_action_kind_name(a->kind),
                       a->status != POLICY_STATUS_UNSET ? " " : "",
                       a->status != POLICY_STATUS_UNSET ? policy_status_name(a->status) : "",
                       a->reason[0] ? " " : "", a->reason);
        }
    }
    if (granted) {
        struct policy_actions more;
        if (policy_on_action_result(&s->policy, POLICY_ACTION_ACQUIRE_BUDGET, 0, now_ms(k),
                                    &more) == 0)
            handle_actions(s, &more);
    }
}

/* ---- responses --------------------------------------------------------- */

static void watch_restart_later(struct watch *w, const char *reason);

static void on_list_done(struct req *r, int result, struct httpc_response *resp) {
    struct kube *k = r->k;
    struct watch *w = r->watch;
    w->call = NULL;
    if (result < 0 || resp->status != 200) {
        snprintf(w->last_error, sizeof(w->last_error), "list %s: %s", w->resource,
                 result < 0 ? resp->error : "HTTP error");
        log_http_failure(k, w->pods ? "list pods on this node" : "get this node", result, resp);
        watch_restart_later(w, "error");
        return;
    }
    struct kube_json_list list;
    struct kube_json_error err = {0};
    int pr = kube_json_list_parse(resp->body.data, resp->body.len, &list, &err);
    if (pr < 0) {
        log_warn("list %s: unusable response (%s: %s); listing again later", w->resource,
                 err.field ? err.field : "", err.problem ? err.problem : strerror(-pr));
        watch_restart_later(w, "error");
        return;
    }
    if (w->pods) {
        /* Pods absent from the list are gone. */
        struct pod_entry *e = k->pods;
        while (e) {
            struct pod_entry *next = e->next;
            bool listed = false;
            for (size_t i = 0; i < list.n_items && !listed; i++) {
                const json_t *uid = json_object_get(
                    json_object_get(json_array_get(list.items, i), "metadata"), "uid");
                listed =
                    json_is_string(uid) && strcmp(json_string_value(uid), e->pod.meta.uid) == 0;
            }
            if (!listed)
                pod_remove_entry(k, e);
            e = next;
        }
        for (size_t i = 0; i < list.n_items; i++) {
            struct kube_json_pod p;
            if (kube_json_pod_from_json(json_array_get(list.items, i), &p, &err) == 0)
                pod_upsert(k, &p);
            else
                log_warn("pods list item %zu unusable (%s: %s); skipped", i, err.field,
                         err.problem);
        }
    } else {
        struct kube_json_node n;
        if (list.n_items == 0) {
            if (!k->node_missing_logged)
                log_error("kubernetes: node %s does not exist; check nodeName / NODE_NAME "
                          "(watching for it)",
                          k->node);
            k->node_missing_logged = true;
            kube_json_node_free(&k->nd);
            k->have_node = false;
        } else if (kube_json_node_from_json(json_array_get(list.items, 0), &n, &err) == 0) {
            k->node_missing_logged = false;
            kube_json_node_free(&k->nd);
            k->have_node = false;
            node_replace(k, &n);
        } else {
            log_warn("node %s unusable (%s: %s)", k->node, err.field, err.problem);
        }
    }
    snprintf(w->rv, sizeof(w->rv), "%s", list.resource_version);
    kube_json_list_free(&list);
    w->synced = true;
    w->relist = false;
    w->backoff_ms = 0;
    maybe_reconcile(k);
    sync_all(k);
    if (!k->closing)
        watch_restart_later(w, NULL); /* open the watch now */
}

static bool update_node_from_body(struct kube *k, const struct httpc_response *resp) {
    struct kube_json_node n;
    if (!resp->body.len || kube_json_node_parse(resp->body.data, resp->body.len, &n, NULL) < 0)
        return false;
    if (strcmp(n.meta.name, k->node) != 0) {
        kube_json_node_free(&n);
        return false;
    }
    node_replace(k, &n);
    return true;
}

static void on_write_done(struct req *r, int result, struct httpc_response *resp) {
    struct kube *k = r->k;
    struct channel *ch = NULL;
    const char *action = "";
    switch (r->kind) {
    case REQ_NODE_CONDITION:
        ch = &k->ch[CH_NODE_CONDITION];
        action = "set_node_condition";
        break;
    case REQ_TAINT:
        ch = &k->ch[CH_TAINT];
        action = r->value == POLICY_TAINT_NOEXECUTE    ? "taint_noexecute"
                 : r->value == POLICY_TAINT_NOSCHEDULE ? "taint_noschedule"
                                                       : "remove_taint";
        break;
    case REQ_CORDON:
        ch = &k->ch[CH_CORDON];
        action = r->value ? "cordon" : "uncordon";
        break;
    case REQ_POD_READY:
        ch = &r->slot->ready;
        action = "set_pod_ready";
        break;
    default:
        return;
    }
    ch->in_flight = false;
    ch->req = NULL;
    long st = result < 0 ? 0 : resp->status;
    if (st >= 200 && st < 300) {
        char what[512];
        switch (r->kind) {
        case REQ_NODE_CONDITION:
            update_node_from_body(k, resp);
            snprintf(what, sizeof(what), "node condition %s=%s", POLICY_NODE_CONDITION,
                     policy_status_name((enum policy_status)r->value));
            break;
        case REQ_TAINT:
            update_node_from_body(k, resp);
            snprintf(what, sizeof(what), "taint %s %s", POLICY_TAINT_KEY,
                     r->value == POLICY_TAINT_NONE
                         ? "removed"
                         : policy_taint_name((enum policy_taint)r->value));
            break;
        case REQ_CORDON:
            update_node_from_body(k, resp);
            snprintf(what, sizeof(what), "%s", r->value ? "cordon" : "uncordon");
            if (!r->value)
                k->we_cordoned = false;
            break;
        default: {
            struct kube_json_pod p;
            if (resp->body.len &&
                kube_json_pod_parse(resp->body.data, resp->body.len, &p, NULL) == 0)
                pod_upsert(k, &p);
            snprintf(what, sizeof(what), "pod %s/%s condition %s=%s", r->slot->pod_ns,
                     r->slot->pod_name, POLICY_POD_CONDITION,
                     policy_status_name((enum policy_status)r->value));
            break;
        }
        }
        channel_ok(ch);
        observe_detection(k, ch, action, what);
        return;
    }
    if (st == 409 && r->kind == REQ_TAINT) {
        /* Someone wrote the node since we read it: read it again and redo
         * the edit on what is there now. */
        ch->conflicts++;
        char url[KUBE_JSON_URL_SIZE];
        if (ch->conflicts > CONFLICTS_BEFORE_WAIT)
            channel_failed(k, ch);
        if (kube_json_url_node(url, sizeof(url), k->node) == 0 &&
            send_req(k, REQ_GET_NODE, "GET", "get", "nodes", url, NULL, NULL, NULL, 0) == 0) {
            ch->in_flight = true; /* released by the GET's answer */
            ch->req = k->reqs;
        }
        return;
    }
    if (st == 404 && r->kind == REQ_POD_READY) {
        /* The pod is gone; the pod watch will say so. */
        channel_ok(ch);
        return;
    }
    log_http_failure(k, what_for(r->kind), result, resp);
    channel_failed(k, ch);
}

static void on_get_node_done(struct req *r, int result, struct httpc_response *resp) {
    struct kube *k = r->k;
    struct channel *ch = &k->ch[CH_TAINT];
    ch->in_flight = false;
    ch->req = NULL;
    if (result < 0 || resp->status != 200 || !update_node_from_body(k, resp)) {
        log_http_failure(k, "read this node after a conflict", result, resp);
        channel_failed(k, ch);
    }
}

/* ---- heartbeat Lease --------------------------------------------------- */

static void lease_send(struct kube *k);

static void lease_failed(struct kube *k) {
    uint64_t wait = next_backoff(&k->lease_backoff_ms);
    if (wait > k->lease_renew_ms)
        wait = k->lease_renew_ms;
    k->lease_due_ms = now_ms(k) + wait;
}

static void lease_take_rv(struct kube *k, const struct httpc_response *resp) {
    json_t *o = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    const json_t *rv = json_object_get(json_object_get(o, "metadata"), "resourceVersion");
    if (json_is_string(rv) && json_string_length(rv) < sizeof(k->lease_rv))
        snprintf(k->lease_rv, sizeof(k->lease_rv), "%s", json_string_value(rv));
    else
        k->lease_rv[0] = '\0';
    json_decref(o);
}

static void on_lease_done(struct req *r, int result, struct httpc_response *resp) {
    struct kube *k = r->k;
    long st = result < 0 ? 0 : resp->status;
    k->lease_in_flight = false;
    if (r->kind == REQ_LEASE_GET) {
        if (st == 200) {
            k->lease_need_get = false;
            lease_take_rv(k, resp);
            lease_send(k);
        } else if (st == 404) {
            k->lease_need_get = false;
            k->lease_rv[0] = '\0';
            lease_send(k);
        } else {
            log_http_failure(k, "read the heartbeat Lease", result, resp);
            lease_failed(k);
        }
        return;
    }
    if (st == 200 || st == 201) {
        lease_take_rv(k, resp);
        k->lease_backoff_ms = 0;
        k->lease_renewals++;
        k->lease_due_ms = now_ms(k) + k->lease_renew_ms;
        if (k->hooks.heartbeat_ok)
            k->hooks.heartbeat_ok(k->lease_sent_ms, k->hooks.data);
        if (k->lease_again) {
            k->lease_again = false;
            k->lease_due_ms = now_ms(k);
        }
        if (r->kind == REQ_LEASE_CREATE)
            log_info("kubernetes: heartbeat Lease %s%s created in namespace %s",
                     KUBE_JSON_INSTANCE_PREFIX, k->node, k->ns);
        return;
    }
    if (st == 409) {
        /* Written by someone else (or our own lost answer): read it again. */
        k->lease_rv[0] = '\0';
        k->lease_need_get = true;
        k->lease_due_ms = now_ms(k);
        return;
    }
    log_http_failure(k, "renew the heartbeat Lease", result, resp);
    if (st == 404)
        k->lease_rv[0] = '\0';
    lease_failed(k);
}

/* The heartbeat Lease's body: label edgewarden.io/lease=heartbeat and the
 * fencing annotations from the hook (docs/node-loss.md). */
static int lease_body(struct kube *k, int64_t now_us, const char *rv, char **body) {
    struct kube_json_annotation ann[8];
    char name[KUBE_JSON_NAME_SIZE];
    size_t n = 0;

    if (k->hooks.heartbeat_annotations)
        n = k->hooks.heartbeat_annotations(ann, 8, now_us, k->hooks.data);
    snprintf(name, sizeof(name), "%s%s", KUBE_JSON_INSTANCE_PREFIX, k->node);
    struct kube_json_lease_write w = {
        .namespace = k->ns,
        .name = name,
        .holder = k->node,
        .duration_s = (int)(k->lease_duration_ms / 1000),
        .acquire_time_us = k->lease_acquire_us,
        .renew_time_us = now_us,
        .transitions = -1,
        .resource_version = rv,
        .label = "heartbeat",
        .annotations = ann,
        .n_annotations = n,
    };
    return kube_json_lease_write_body(&w, body);
}

/* Renew: PUT with the last resourceVersion, or read it first. */
static void lease_send(struct kube *k) {
    char url[KUBE_JSON_URL_SIZE];
    char *body = NULL;
    int r;
    if (k->lease_in_flight || k->closing)
        return;
    int64_t now = wall_us();
    if (!k->lease_acquire_us)
        k->lease_acquire_us = now;
    k->lease_sent_ms = now_ms(k);
    if (k->lease_need_get) {
        /* First time: does it exist? */
        r = kube_json_url_lease(url, sizeof(url), k->ns, k->node);
        if (r == 0)
            r = send_req(k, REQ_LEASE_GET, "GET", "get", "leases", url, NULL, NULL, NULL, 0);
    } else {
        bool create = k->lease_rv[0] == '\0';
        r = lease_body(k, now, create ? NULL : k->lease_rv, &body);
        if (r == 0)
            r = kube_json_url_lease(url, sizeof(url), k->ns, create ? NULL : k->node);
        if (r == 0)
            r = send_req(k, create ? REQ_LEASE_CREATE : REQ_LEASE_UPDATE, create ? "POST" : "PUT",
                         create ? "create" : "update", "leases", url, "application/json", body,
                         NULL, 0);
        else
            free(body);
    }
    if (r < 0) {
        log_error_errno(r, "heartbeat Lease");
        lease_failed(k);
        return;
    }
    k->lease_in_flight = true;
    k->lease_due_ms = UINT64_MAX;
}

/* ---- token re-read ----------------------------------------------------- */

static void token_work(uv_work_t *w) {
    struct kube *k = w->data;
    free(k->token_error);
    k->token_error = NULL;
    k->token_result = kube_auth_read_token(&k->token_auth, &k->token_error);
}

static void token_after(uv_work_t *w, int status) {
    struct kube *k = w->data;
    k->token_reading = false;
    k->open_handles--;
    if (k->closing) {
        /* nothing to update */
    } else if (status == 0 && k->token_result == 1) {
        int r = httpc_set_token(k->http, k->token_auth.token);
        if (r < 0)
            log_error_errno(r, "cannot use the new token from %s", k->token_auth.token_file);
        else
            log_info("kubernetes: token re-read from %s (changed)", k->token_auth.token_file);
    } else if (status == 0 && k->token_result < 0) {
        log_warn("kubernetes: cannot re-read the token: %s; keeping the old one",
                 k->token_error ? k->token_error : strerror(-k->token_result));
    }
    kube_maybe_free(k);
}

static void token_reread(struct kube *k) {
    if (!k->token_auth.token_file || k->token_reading || k->closing)
        return;
    k->token_work.data = k;
    if (uv_queue_work(k->loop, &k->token_work, token_work, token_after) == 0) {
        k->token_reading = true;
        k->open_handles++;
    }
    k->token_due_ms = now_ms(k) + TOKEN_REREAD_MS;
}

/* ---- dispatch ----------------------------------------------------------- */

static const char *what_for(enum req_kind kind) {
    switch (kind) {
    case REQ_NODE_CONDITION:
        return "patch the node condition " POLICY_NODE_CONDITION;
    case REQ_TAINT:
        return "patch the node's taints";
    case REQ_CORDON:
        return "cordon or uncordon the node";
    case REQ_POD_READY:
        return "patch the pod condition " POLICY_POD_CONDITION;
    case REQ_EVENT:
        return "post an Event";
    case REQ_EVICT:
        return "evict the pod";
    default:
        return "request";
    }
}

static void on_req_done(int result, struct httpc_response *resp, void *data) {
    struct req *r = data;
    struct kube *k = r->k;
    r->call = NULL;
    count_request(k, r->verb, r->resource, result, resp, r->start_ns);
    if (log_enabled(LOG_LEVEL_DEBUG))
        log_debug("kubernetes: %s %s -> %ld%s%s in %.1f ms (%u attempts)", r->verb, r->resource,
                  result < 0 ? 0L : resp->status, result < 0 ? " " : "",
                  result < 0 ? resp->error : "", (double)(uv_hrtime() - r->start_ns) / 1e6,
                  resp ? resp->attempts : 0);
    note_answer(k, result, resp);
    if (result == 0 && resp->status == 401)
        token_reread(k);
    switch (r->kind) {
    case REQ_LIST:
        on_list_done(r, result, resp);
        break;
    case REQ_NODE_CONDITION:
    case REQ_TAINT:
    case REQ_CORDON:
    case REQ_POD_READY:
        on_write_done(r, result, resp);
        break;
    case REQ_GET_NODE:
        on_get_node_done(r, result, resp);
        break;
    case REQ_EVENT:
        if (result < 0 || resp->status < 200 || resp->status >= 300)
            log_http_failure(k, what_for(r->kind), result, resp);
        break;
    case REQ_EVICT:
        if (result < 0 || resp->status < 200 || resp->status >= 300)
            log_http_failure(k, what_for(r->kind), result, resp);
        if (r->slot && !r->slot->gone && (result < 0 || resp->status >= 500 || resp->status == 429))
            r->slot->evict_retry_at_ms = now_ms(k) + next_backoff(&r->slot->evict_backoff_ms);
        else if (r->slot)
            r->slot->evict_retry_at_ms = 0;
        break;
    case REQ_LEASE_GET:
    case REQ_LEASE_CREATE:
    case REQ_LEASE_UPDATE:
        on_lease_done(r, result, resp);
        break;
    }
    req_free(r);
    sync_all(k);
    arm_timer(k);
}

/* ---- watches ------------------------------------------------------------ */

static int watch_url(struct watch *w, char *url, size_t size, const struct kube_json_query *q) {
    struct kube *k = w->k;
    if (w->pods)
        return kube_json_url_pods(url, size, k->node, &k->selector, q);
    return kube_json_url_own_node(url, size, k->node, q);
}

static void watch_list(struct watch *w) {
    struct kube *k = w->k;
    char url[KUBE_JSON_URL_SIZE];
    if (k->closing)
        return;
    int r = watch_url(w, url, sizeof(url), NULL);
    struct req *rq = NULL;
    if (r == 0)
        r = send_req(k, REQ_LIST, "GET", "list", w->resource, url, NULL, NULL, NULL, 0);
    if (r == 0) {
        rq = k->reqs;
        rq->watch = w;
        w->call = rq->call;
        return;
    }
    log_error_errno(r, "list %s", w->resource);
    watch_restart_later(w, "error");
}

static void on_watch_line(const char *line, size_t len, void *data) {
    struct watch *w = data;
    struct kube *k = w->k;
    struct kube_json_watch_event ev;
    struct kube_json_error err = {0};
    int r = kube_json_watch_event_parse(line, len, &ev, &err);
    if (r < 0) {
        log_warn("watch %s: unusable event (%s: %s); re-listing", w->resource,
                 err.field ? err.field : "", err.problem ? err.problem : strerror(-r));
        w->relist = true;
        httpc_cancel(w->call);
        w->call = NULL;
        watch_restart_later(w, "error");
        return;
    }
    w->events++;
    if (ev.type == KUBE_JSON_ERROR) {
        bool expired = ev.relist;
        log_info("watch %s: server ended it (%d %s: %s); re-listing", w->resource, ev.status.code,
                 ev.status.reason, ev.status.message);
        w->relist = true;
        kube_json_watch_event_free(&ev);
        httpc_cancel(w->call);
        w->call = NULL;
        watch_restart_later(w, expired ? "expired" : "error");
        return;
    }
    if (ev.resource_version[0])
        snprintf(w->rv, sizeof(w->rv), "%s", ev.resource_version);
    if (ev.type != KUBE_JSON_BOOKMARK) {
        if (w->pods) {
            struct kube_json_pod p;
            if (kube_json_pod_from_json(ev.object, &p, &err) < 0) {
                log_warn("watch pods: unusable pod (%s: %s); skipped", err.field, err.problem);
            } else if (ev.type == KUBE_JSON_DELETED) {
                struct pod_entry *e = pod_find(k, p.meta.uid);
                if (e)
                    pod_remove_entry(k, e);
                kube_json_pod_free(&p);
            } else {
                pod_upsert(k, &p);
            }
        } else {
            struct kube_json_node n;
            if (kube_json_node_from_json(ev.object, &n, &err) < 0) {
                log_warn("watch nodes: unusable node (%s: %s); skipped", err.field, err.problem);
            } else if (ev.type == KUBE_JSON_DELETED) {
                log_error("kubernetes: node %s was deleted", k->node);
                kube_json_node_free(&n);
                kube_json_node_free(&k->nd);
                k->have_node = false;
            } else {
                node_replace(k, &n);
            }
        }
        maybe_reconcile(k);
        sync_all(k);
    }
    kube_json_watch_event_free(&ev);
}

static void on_watch_done(int result, struct httpc_response *resp, void *data) {
    struct watch *w = data;
    struct kube *k = w->k;
    w->call = NULL;
    long st = result < 0 ? 0 : resp->status;
    if (result < 0 || st >= 300) {
        note_answer(k, result, resp);
        if (st == 401)
            token_reread(k);
    }
    if (st == 410)
        w->relist = true;
    const char *reason = result == 0 && st == 200 ? "closed" : st == 410 ? "expired" : "error";
    if (result < 0 || st != 200) {
        snprintf(w->last_error, sizeof(w->last_error), "watch %s: %s", w->resource,
                 result < 0 ? resp->error : "HTTP error");
        log_http_failure(k, w->pods ? "watch pods on this node" : "watch this node", result, resp);
    }
    watch_restart_later(w, reason);
}

static void watch_open(struct watch *w) {
    struct kube *k = w->k;
    char url[KUBE_JSON_URL_SIZE];
    if (k->closing)
        return;
    if (w->relist || !w->rv[0] || !w->synced) {
        watch_list(w);
        return;
    }
    struct kube_json_query q = {
        .watch = true,
        .resource_version = w->rv,
        .timeout_seconds = WATCH_TIMEOUT_MIN_S + (unsigned)(rand() % WATCH_TIMEOUT_SPREAD),
    };
    int r = watch_url(w, url, sizeof(url), &q);
    struct httpc_request hr = {.method = "GET", .path = url};
    if (r == 0)
        r = httpc_stream(k->http, &hr, on_watch_line, on_watch_done, w, &w->call);
    if (r < 0) {
        log_error_errno(r, "watch %s", w->resource);
        w->call = NULL;
        watch_restart_later(w, "error");
    }
}

static void on_watch_timer(uv_timer_t *t) {
    watch_open(t->data);
}

/* reason NULL: open at once (after a list). Otherwise count a restart and
 * wait: nothing after a clean end, backoff after an error. */
static void watch_restart_later(struct watch *w, const char *reason) {
    struct kube *k = w->k;
    uint64_t wait = 0;
    if (k->closing)
        return;
    if (reason) {
        w->restarts++;
        if (k->m.watch_restarts) {
            const char *l[] = {w->resource, reason};
            metric_add(k->m.watch_restarts, l, 1);
        }
        if (strcmp(reason, "closed") != 0)
            wait = next_backoff_max(&w->backoff_ms, WATCH_BACKOFF_MAX_MS);
        else
            w->backoff_ms = 0;
    }
    uv_timer_start(&w->timer, on_watch_timer, wait, 0);
}

/* ---- the timer ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
    struct kube *k = t->data;
    uint64_t now = now_ms(k);
    for (struct kube_slot *s = k->slots; s; s = s->next) {
        if (policy_next_deadline_ms(&s->policy) <= now) {
            struct policy_actions acts;
            if (policy_tick(&s->policy, now, &acts) == 0)
                handle_actions(s, &acts);
        }
    }
    for (struct kube_slot *s = k->slots; s; s = s->next)
        if (s->evict_retry_at_ms && s->evict_retry_at_ms <= now) {
            s->evict_retry_at_ms = 0;
            if (!s->gone && s->has_pod && pod_find(k, s->pod_uid))
                post_eviction(s);
        }
    gc_slots(k);
    if (k->lease_due_ms <= now)
        lease_send(k);
    if (k->token_due_ms <= now)
        token_reread(k);
    sync_all(k);
    arm_timer(k);
}

static void arm_timer(struct kube *k) {
    if (k->closing)
        return;
    uint64_t now = now_ms(k);
    uint64_t due = k->lease_due_ms;
    if (k->token_auth.token_file && k->token_due_ms < due)
        due = k->token_due_ms;
    for (struct kube_slot *s = k->slots; s; s = s->next) {
        uint64_t d = policy_next_deadline_ms(&s->policy);
        if (d < due)
            due = d;
        if (!s->ready.in_flight && s->ready.retry_at_ms && s->ready.retry_at_ms < due)
            due = s->ready.retry_at_ms;
        if (s->evict_retry_at_ms && s->evict_retry_at_ms < due)
            due = s->evict_retry_at_ms;
        if (s->gone && !s->refs && due > now + 1000)
            due = now + 1000; /* collect it */
    }
    for (int i = 0; i < CH_COUNT; i++)
        if (!k->ch[i].in_flight && k->ch[i].retry_at_ms && k->ch[i].retry_at_ms < due)
            due = k->ch[i].retry_at_ms;
    if (due == UINT64_MAX)
        due = now + 60000;
    /* Never 0: a timer re-armed from its own callback with timeout 0 would
     * run again in the same loop turn, for ever (libuv < 1.45). */
    uv_timer_start(&k->timer, on_timer, due > now ? due - now : 1, 0);
}

/* ---- slots ---------------------------------------------------------------- */

struct kube_slot *kube_slot_new(struct kube *k, const char *key, const struct kube_pod_info *pod) {
    struct kube_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->k = k;
    s->id = ++k->next_slot_id;
    s->key = strdup(key);
    if (!s->key || policy_init(&s->policy, &k->pcfg, now_ms(k)) < 0) {
        free(s->key);
        free(s);
        return NULL;
    }
    if (pod) {
        s->has_pod = true;
        snprintf(s->pod_ns, sizeof(s->pod_ns), "%s", pod->namespace);
        snprintf(s->pod_name, sizeof(s->pod_name), "%s", pod->name);
        snprintf(s->pod_uid, sizeof(s->pod_uid), "%s", pod->uid);
        s->has_ready_gate = pod->has_ready_gate;
        if (!pod->has_ready_gate)
            log_warn("pod %s/%s has no readinessGates entry %s: the agent's verdict will not "
                     "change its readiness (see docs/kubernetes.md)",
                     pod->namespace, pod->name, POLICY_POD_CONDITION);
    }
    s->next = k->slots;
    k->slots = s;
    /* After the start-up reconciliation a new target adopts only its own
     * pod's condition: the node-level state belongs to the slots that set
     * it. */
    if (k->reconciled)
        slot_reconcile(s, false);
    arm_timer(k);
    return s;
}

void kube_slot_health(struct kube_slot *s, enum health_state state, const char *reason,
                      const char *message) {
    struct policy_actions acts;
    if (!s || s->gone)
        return;
    if (policy_on_health(&s->policy, state, reason, message, now_ms(s->k), &acts) == 0)
        handle_actions(s, &acts);
    sync_all(s->k);
}

void kube_slot_gone(struct kube_slot *s) {
    struct policy_actions acts;
    if (!s || s->gone)
        return;
    s->gone = true;
    if (policy_on_target_gone(&s->policy, now_ms(s->k), &acts) == 0)
        handle_actions(s, &acts);
    sync_all(s->k);
    arm_timer(s->k);
}

bool kube_api_ok(const struct kube *k, const char **why) {
    const char *w = NULL;
    if (!k->api_ok)
        w = k->api_why ? k->api_why : "no answer from the API server yet";
    else if (!k->have_node)
        w = "this node is not known to the API server (yet)";
    if (why)
        *why = w;
    return w == NULL;
}

json_t *kube_status_json(const struct kube *k) {
    json_t *o = json_object();
    json_t *slots = json_array();
    if (!o || !slots) {
        json_decref(o);
        json_decref(slots);
        return NULL;
    }
    const char *why = NULL;
    json_object_set_new(o, "api_ok", json_boolean(kube_api_ok(k, &why)));
    if (why)
        json_object_set_new(o, "api_problem", json_string(why));
    if (k->api_error[0])
        json_object_set_new(o, "api_error", json_string(k->api_error));
    json_object_set_new(o, "mode", json_string(k->pod_mode ? "pods" : "static"));
    json_object_set_new(o, "reconciled", json_boolean(k->reconciled));
    json_object_set_new(o, "node_watch_restarts", json_integer((json_int_t)k->node_watch.restarts));
    json_object_set_new(o, "lease_renewals", json_integer((json_int_t)k->lease_renewals));
    json_object_set_new(o, "observed_taint", json_string(policy_taint_name(observed_taint(k))));
    for (const struct kube_slot *s = k->slots; s; s = s->next) {
        const struct policy_desired *d = policy_desired(&s->policy);
        json_t *x = json_object();
        if (!x)
            continue;
        json_object_set_new(x, "key", json_string(s->key));
        if (s->has_pod)
            json_object_set_new(x, "pod", json_sprintf("%s/%s", s->pod_ns, s->pod_name));
        json_object_set_new(x, "gone", json_boolean(s->gone));
        json_object_set_new(x, "pod_ready", json_string(policy_status_name(d->pod_ready)));
        json_object_set_new(x, "node_condition",
                            json_string(policy_status_name(d->node_condition)));
        json_object_set_new(x, "reason", json_string(d->reason));
        json_object_set_new(x, "taint", json_string(policy_taint_name(d->taint)));
        json_object_set_new(x, "cordon", json_boolean(d->cordon));
        json_array_append_new(slots, x);
    }
    json_object_set_new(o, "slots", slots);
    return o;
}

/* ---- life cycle ------------------------------------------------------------ */

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static void watch_init(struct kube *k, struct watch *w, const char *resource, bool pods) {
    w->k = k;
    w->resource = resource;
    w->pods = pods;
    uv_timer_init(k->loop, &w->timer);
    w->timer.data = w;
    k->open_handles++;
}

int kube_new(uv_loop_t *loop, const struct kube_options *o, struct kube **out, char **error) {
    struct kube *k = calloc(1, sizeof(*k));
    int r = -ENOMEM;
    *out = NULL;
    if (error)
        *error = NULL;
    if (!k)
        return -ENOMEM;
    k->loop = loop;
    k->o = *o;
    k->pcfg = o->policy;
    k->pcfg.quarantine_from_ack = true; /* the quarantine counts from its taint on the node */
    k->request_timeout_ms = o->request_timeout_ms;
    k->lease_duration_ms = o->lease_duration_ms ? o->lease_duration_ms : 40000;
    k->lease_renew_ms = o->lease_renew_ms ? o->lease_renew_ms : 10000;
    k->node = strdup(o->node_name);
    k->ns = strdup(o->namespace && o->namespace[0] ? o->namespace : "edgewarden");
    if (!k->node || !k->ns)
        goto fail;
    k->pod_mode = o->pod_selector && o->pod_selector[0];
    if (k->pod_mode) {
        struct kube_json_error err = {0};
        if (kube_json_selector_parse(o->pod_selector, &k->selector, &err) < 0) {
            if (error &&
                asprintf(error, "kubernetes.pods.selector: %s: %s", err.field, err.problem) < 0)
                *error = NULL;
            r = -EINVAL;
            goto fail;
        }
    }
    const struct kube_auth *a = o->auth;
    struct httpc_options ho = {
        .base_url = a->server,
        .ca_file = a->ca_file,
        .ca_pem = a->ca_data,
        .client_cert_file = a->client_cert_file,
        .client_key_file = a->client_key_file,
        .client_cert_pem = a->client_cert_data,
        .client_key_pem = a->client_key_data,
        .insecure_skip_tls_verify = a->insecure_skip_tls_verify,
        .token = a->token,
        .qps = o->qps,
        .burst = o->burst,
        .timeout_ms = o->request_timeout_ms,
        .connect_timeout_ms = o->request_timeout_ms,
    };
    if (a->token_file) {
        k->token_auth.token_file = strdup(a->token_file);
        k->token_auth.token = dup_or_null(a->token);
        if (!k->token_auth.token_file || (a->token && !k->token_auth.token))
            goto fail;
    }
    r = httpc_new(loop, &ho, &k->http);
    if (r < 0) {
        if (error && asprintf(error, "cannot set up the HTTPS client for %s: %s", a->server,
                              strerror(-r)) < 0)
            *error = NULL;
        goto fail;
    }
    r = metrics_setup(k, o->metrics);
    if (r < 0)
        goto fail_http;
    uv_timer_init(loop, &k->timer);
    k->timer.data = k;
    k->open_handles++;
    watch_init(k, &k->node_watch, "nodes", false);
    if (k->pod_mode)
        watch_init(k, &k->pod_watch, "pods", true);
    k->lease_due_ms = now_ms(k);
    k->lease_need_get = true;
    k->token_due_ms = now_ms(k) + TOKEN_REREAD_MS;
    watch_list(&k->node_watch);
    if (k->pod_mode)
        watch_list(&k->pod_watch);
    arm_timer(k);
    *out = k;
    return 0;
fail_http:
    httpc_close(k->http, NULL, NULL);
fail:
    kube_auth_free(&k->token_auth);
    free(k->node);
    free(k->ns);
    free(k);
    return r;
}

static void kube_maybe_free(struct kube *k) {
    if (!k->closing || k->open_handles > 0)
        return;
    while (k->reqs)
        req_free(k->reqs);
    while (k->slots) {
        struct kube_slot *s = k->slots;
        k->slots = s->next;
        free(s->key);
        free(s);
    }
    while (k->pods) {
        struct pod_entry *e = k->pods;
        k->pods = e->next;
        kube_json_pod_free(&e->pod);
        free(e);
    }
    kube_json_node_free(&k->nd);
    kube_auth_free(&k->token_auth);
    free(k->token_error);
    free(k->node);
    free(k->ns);
    void (*cb)(void *) = k->close_cb;
    void *data = k->close_data;
    free(k);
    if (cb)
        cb(data);
}

static void on_timer_closed(uv_handle_t *h) {
    struct kube *k = h->data;
    k->open_handles--;
    kube_maybe_free(k);
}

static void on_watch_timer_closed(uv_handle_t *h) {
    struct kube *k = ((struct watch *)h->data)->k;
    k->open_handles--;
    kube_maybe_free(k);
}

static void on_http_closed(void *data) {
    struct kube *k = data;
    k->open_handles--;
    kube_maybe_free(k);
}

void kube_close(struct kube *k, void (*cb)(void *data), void *data) {
    if (!k || k->closing)
        return;
    k->closing = true;
    k->close_cb = cb;
    k->close_data = data;
    k->open_handles++; /* the HTTPS client */
    httpc_close(k->http, on_http_closed, k);
    k->http = NULL;
    uv_close((uv_handle_t *)&k->timer, on_timer_closed);
    uv_close((uv_handle_t *)&k->node_watch.timer, on_watch_timer_closed);
    if (k->pod_mode)
        uv_close((uv_handle_t *)&k->pod_watch.timer, on_watch_timer_closed);
}

/* ---- for the cluster-wide part ------------------------------------------- */

void kube_set_hooks(struct kube *k, const struct kube_hooks *h) {
    if (h)
        k->hooks = *h;
    else
        memset(&k->hooks, 0, sizeof(k->hooks));
}

int kube_budget_answer(struct kube *k, uint64_t slot_id, int result) {
    struct kube_slot *s;
    struct policy_actions more;

    for (s = k->slots; s && s->id != slot_id; s = s->next)
        ;
    if (!s || s->gone)
        return -ENOENT;
    if (result == 0)
        s->budget_held = true;
    if (policy_on_action_result(&s->policy, POLICY_ACTION_ACQUIRE_BUDGET, result, now_ms(k),
                                &more) == 0)
        handle_actions(s, &more);
    /* A grant the policy no longer wanted was given back in handle_actions. */
    sync_all(k);
    arm_timer(k);
    return 0;
}

struct httpc *kube_http(struct kube *k) {
    return k->http;
}

uint64_t kube_now_ms(const struct kube *k) {
    return now_ms(k);
}

uint64_t kube_request_timeout_ms(const struct kube *k) {
    return k->request_timeout_ms;
}

void kube_observe_answer(struct kube *k, const char *verb, const char *resource, int result,
                         const struct httpc_response *resp, uint64_t start_ns) {
    count_request(k, verb, resource, result, resp, start_ns);
    note_answer(k, result, resp);
    if (result == 0 && resp->status == 401)
        token_reread(k);
}

void kube_count_watch_restart(struct kube *k, const char *resource, const char *reason) {
    if (k->m.watch_restarts) {
        const char *l[] = {resource, reason};
        metric_add(k->m.watch_restarts, l, 1);
    }
}

uint64_t kube_api_ok_ms(const struct kube *k) {
    return k->api_ok_ms;
}

size_t kube_target_count(const struct kube *k) {
    size_t n = 0;
    for (const struct kube_slot *s = k->slots; s; s = s->next)
        n += !s->gone;
    return n;
}

const char *kube_node_name(const struct kube *k) {
    return k->node;
}

const char *kube_namespace(const struct kube *k) {
    return k->ns;
}

const struct kube_json_selector *kube_pod_selector(const struct kube *k) {
    return k->pod_mode ? &k->selector : NULL;
}

void kube_log_http_failure(const char *what, int result, const struct httpc_response *resp) {
    log_http_failure(NULL, what, result, resp);
}

void kube_heartbeat_now(struct kube *k) {
    if (k->closing)
        return;
    if (!k->lease_in_flight)
        lease_send(k);
    else
        k->lease_again = true; /* the renewal in flight predates the caller's news */
}
