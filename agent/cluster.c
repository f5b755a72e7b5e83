/*
 * The cluster-wide part (cluster.h). One struct cluster per agent, with one
 * libuv timer that ticks every TICK_MS while anything is alive and is kicked
 * at once after every answer and watch event. Each tick: election, informers,
 * fencing (feed or not, roll call), budget requests, and, while leading, a
 * sweep of the nodes that matter (those hosting a SQL pod or carrying
 * out-of-service). Decisions are pure (election.h, fence.h, remedy.h); this
 * file does the requests and keeps the caches.
 */
#include "cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "election.h"
#include "fence.h"
#include "informer.h"
#include "kube_json.h"
#include "log.h"
#include "peer.h"
#include "policy.h"
#include "remedy.h"
#include "watchdog.h"

#define TICK_MS          100
#define BUCKETS          1024
#define MAX_PEERS        256
#define REMEDIATOR_LEASE "edgewarden-remediator"
#define SLOT_PREFIX      "edgewarden-failover-"
#define NODE_LEASE_NS    "kube-node-lease"
#define OOS_KEY          "node.kubernetes.io/out-of-service"
#define OOS_VALUE        "nodeshutdown"
#define OOS_EFFECT       "NoExecute"
#define RETRY_MIN_MS     500
#define RETRY_MAX_MS     10000

/* ---- a table of records by name ------------------------------------------ */

struct entry {
    struct entry *next;
    char name[KUBE_JSON_NAME_SIZE];
    unsigned gen; /* the list generation that last saw it */
};

struct table {
    struct entry *b[BUCKETS];
    size_t n;
};

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

static struct entry *table_get(const struct table *t, const char *name) {
    for (struct entry *e = t->b[hash(name)]; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

/* The record for name, made with size bytes (zeroed) when absent; NULL on ENOMEM. */
static struct entry *table_upsert(struct table *t, const char *name, size_t size, bool *made) {
    struct entry *e = table_get(t, name);
    unsigned h;

    *made = false;
    if (e || strlen(name) >= sizeof(e->name))
        return e;
    if (!(e = calloc(1, size)))
        return NULL;
    snprintf(e->name, sizeof(e->name), "%s", name);
    h = hash(name);
    e->next = t->b[h];
    t->b[h] = e;
    t->n++;
    *made = true;
    return e;
}

static void table_del(struct table *t, struct entry *e, void (*fr)(struct entry *)) {
    struct entry **p = &t->b[hash(e->name)];
    while (*p && *p != e)
        p = &(*p)->next;
    if (*p) {
        *p = e->next;
        t->n--;
    }
    if (fr)
        fr(e);
    else
        free(e);
}

/* Drop every record not seen by generation gen (a relist's survivors). */
static void table_sweep(struct table *t, unsigned gen, void (*fr)(struct entry *)) {
    for (size_t i = 0; i < BUCKETS; i++) {
        struct entry **p = &t->b[i];
        while (*p) {
            struct entry *e = *p;
            if (e->gen != gen) {
                *p = e->next;
                t->n--;
                if (fr)
                    fr(e);
                else
                    free(e);
            } else {
                p = &e->next;
            }
        }
    }
}

static void table_clear(struct table *t, void (*fr)(struct entry *)) {
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = t->b[i], *next; e; e = next) {
            next = e->next;
            if (fr)
                fr(e);
            else
                free(e);
        }
    memset(t, 0, sizeof(*t));
}

#define FOREACH(t, e)                                                                              \
    for (size_t i_##e = 0; i_##e < BUCKETS; i_##e++)                                               \
        for (struct entry *e = (t)->b[i_##e]; e; e = e->next)

/* ---- records ------------------------------------------------------------- */

/* An agent's heartbeat Lease (key: its holder, the node name). */
struct hb {
    struct entry e;
    char renew_time[KUBE_JSON_TIME_SIZE];
    uint64_t duration_ms;
    bool fenced;
    uint64_t watchdog_ms;
    char peer_address[KUBE_JSON_ADDRESS_SIZE];
    bool asks_me;     /* its edgewarden.io/peers names this agent */
    uint64_t seen_ms; /* this record first seen (or leadership start) */
};

/* A kubelet Lease in kube-node-lease (key: node). */
struct kl {
    struct entry e;
    char renew_time[KUBE_JSON_TIME_SIZE];
    uint64_t seen_ms;
};

/* A node, and what the remediator does about it (key: node name). */
struct rnode {
    struct entry e;
    bool exists;
    bool ready;
    char rv[KUBE_JSON_RV_SIZE];
    struct kube_json_taint *taints;
    size_t n_taints;
    bool oos;
    /* remediation */
    enum remedy_verdict verdict;
    char hb_at_oos[KUBE_JSON_TIME_SIZE]; /* the agent's renewTime when out-of-service went on */
    bool hb_at_oos_known;
    bool write_in_flight;
    uint64_t retry_at_ms;
    uint64_t backoff_ms;
    bool has_slot; /* the remediator holds a budget slot for this node */
    /* The agent's Lease read fresh just before acting (the watch may lag). */
    bool verify_in_flight;
    uint64_t verified_ms;
    char verified_renew[KUBE_JSON_TIME_SIZE];
    bool slot_asked;
    bool announced[8]; /* by verdict: the Event for it was posted */
};

/* A SQL pod anywhere (key: uid). */
struct rpod {
    struct entry e;
    char ns[KUBE_JSON_NAMESPACE_SIZE];
    char name[KUBE_JSON_NAME_SIZE];
    char node[KUBE_JSON_NAME_SIZE];
    char owner_uid[KUBE_JSON_UID_SIZE];
    bool ready;
    bool deleting;
    bool force_sent;
    uint64_t force_retry_ms;
    uint64_t force_backoff_ms;
};

/* A failover slot Lease (key: its name). */
struct bslot {
    struct entry e;
    struct kube_json_lease lease;
    bool releasing;
};

/* A budget request: the reporter's policy's (slot_id), or the remediator's
 * for a node. */
struct breq {
    struct breq *next;
    bool for_node;
    uint64_t slot_id;
    char node[KUBE_JSON_NAME_SIZE]; /* whose pods move */
    char pods[KUBE_JSON_PODS_SIZE];
    unsigned index; /* the slot being tried */
    bool busy;      /* a request is in flight */
    bool waiting;   /* every slot was taken: retry at retry_at_ms */
    uint64_t retry_at_ms;
    bool dead; /* cancelled: drop when the request in flight ends */
};

/* A slot this agent holds for the reporter's policy. */
struct held {
    struct held *next;
    uint64_t slot_id;
    unsigned index;
    char rv[KUBE_JSON_RV_SIZE];
    bool has_pods; /* pod mode: a replacement to wait for */
};

/* What a roll call's answer callback needs to find its place. */
struct peer_slot {
    struct cluster *c;
    size_t i;
};

/* A table kept by a list+watch (struct cache_kind: how). */
struct cache {
    struct cluster *c;
    const struct cache_kind *kind;
    struct table t;
    unsigned gen; /* of the current list: an entry of an older one is swept */
    struct informer *inf;
};

struct cluster_metrics {
    struct metric_family *leader, *transitions, *actions, *quorum, *agents;
    struct metric_family *budget_waiting, *budget_requests;
    struct metric_family *wd_armed, *wd_feeding, *wd_feeds, *rounds;
};

struct cluster {
    uv_loop_t *loop;
    struct kube *k;
    struct cluster_options o;
    char *advertise;
    char *device;
    const char *node;
    const char *ns;
    uv_timer_t timer;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
    struct cluster_metrics m;

    /* election */
    struct election el;
    bool el_in_flight;
    bool el_need_read;
    uint64_t el_sent_ms;
    uint64_t el_start_ns;
    bool leading;
    uint64_t leader_since_ms;
    uint64_t leader_transitions;

    /* caches (the heartbeat Leases also while fencing) */
    struct cache hbs, kls, nodes, pods, slots;
    bool quorum;
    size_t agents_live, agents_known;
    uint64_t agents_counted_ms;

    /* fencing */
    struct fence fence;
    struct watchdog *wd;
    uint64_t wd_retry_ms;
    bool wd_failed_logged;
    bool feeding;
    uint64_t next_feed_ms;
    uint64_t feeds;
    struct peer_query *round[MAX_PEERS];
    struct peer_slot pslots[MAX_PEERS];
    struct fence_peer_answer answers[MAX_PEERS + 1];
    size_t round_n, round_pending;
    bool round_truncated;
    /* The peers advertised in edgewarden.io/peers (comma-separated names):
     * in every renewal sent since the last acknowledged one, and in those
     * up to it. The roll call asks all of them, so the record on the API
     * server never names a peer this agent does not ask. */
    struct buf peers_sent, peers_acked;
    struct buf peers_adv; /* the value of the renewal being built */

    /* clean stop: unfence first (cluster_prepare_stop) */
    bool fenced_advertised; /* a renewal said fenced: "true" since the watchdog was armed */
    bool unfencing;
    bool unfence_acked;
    uint64_t unfence_since_ms;
    void (*unfence_cb)(void *data);
    void *unfence_data;

    /* budget */
    struct breq *breqs;
    struct held *helds;
    struct call *calls; /* HTTP requests of ours outstanding */
};

/* A request of ours in flight. Every one is on cluster.calls, so closing
 * can cancel and free those the client will never answer. */
struct call {
    struct call *next, **pprev;
    struct httpc_call *h;
    struct cluster *c;
    const char *verb, *resource;
    uint64_t start_ns;
    void (*done)(struct call *call, int result, struct httpc_response *resp);
    struct breq *breq;
    char name[KUBE_JSON_NAME_SIZE]; /* the object: node, pod uid, slot */
    char pod_ns[KUBE_JSON_NAMESPACE_SIZE], pod_name[KUBE_JSON_NAME_SIZE];
    char pod_node[KUBE_JSON_NAME_SIZE];
    unsigned index;
    uint64_t slot_id;
    bool oos_present; /* a taint write: what it writes */
    char effect[16];
    char *body;
};

static void kick(struct cluster *c);
static void sweep(struct cluster *c, uint64_t now);

/* ---- small things --------------------------------------------------------- */

static uint64_t now_ms(const struct cluster *c) {
    return kube_now_ms(c->k);
}

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void format_rfc3339(int64_t unix_us, char *out, size_t size) {
    time_t t = (time_t)(unix_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t next_retry(uint64_t *backoff_ms) {
    *backoff_ms = *backoff_ms ? *backoff_ms * 2 : RETRY_MIN_MS;
    if (*backoff_ms > RETRY_MAX_MS)
        *backoff_ms = RETRY_MAX_MS;
    return *backoff_ms / 2 + (uint64_t)rand() % (*backoff_ms / 2 + 1);
}

static void count_action(struct cluster *c, const char *action) {
    if (c->m.actions) {
        const char *l[] = {action};
        metric_add(c->m.actions, l, 1);
    }
}

static bool leading_now(const struct cluster *c) {
    return c->leading && election_is_leader(&c->el, now_ms(c));
}

/* ---- requests ------------------------------------------------------------- */

static void call_unlink(struct call *call) {
    *call->pprev = call->next;
    if (call->next)
        call->next->pprev = call->pprev;
}

static void on_call_done(int result, struct httpc_response *resp, void *data) {
    struct call *call = data;
    struct cluster *c = call->c;

    call_unlink(call);
    kube_observe_answer(c->k, call->verb, call->resource, result, resp, call->start_ns);
    if (!c->closing)
        call->done(call, result, resp);
    free(call->body);
    free(call);
    if (!c->closing)
        kick(c);
}

/* Send a request; body taken (freed). call is taken too: freed after done()
 * or on failure here. */
static int send_call(struct cluster *c, struct call *call, const char *method, const char *path,
                     const char *content_type, char *body) {
    struct httpc_request hr = {
        .method = method,
        .path = path,
        .content_type = content_type,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = kube_request_timeout_ms(c->k),
    };
    int r;

    call->c = c;
    call->body = body;
    call->start_ns = uv_hrtime();
    if (log_enabled(LOG_LEVEL_DEBUG))
        log_debug("cluster: %s %s%s%s", method, path, body ? " " : "", body ? body : "");
    r = httpc_request(kube_http(c->k), &hr, on_call_done, call, &call->h);
    if (r < 0) {
        log_error_errno(r, "cluster: %s %s", method, path);
        free(call->body);
        free(call);
        return r;
    }
    call->next = c->calls;
    if (c->calls)
        c->calls->pprev = &call->next;
    call->pprev = &c->calls;
    c->calls = call;
    return 0;
}

static struct call *new_call(const char *verb, const char *resource,
                             void (*done)(struct call *, int, struct httpc_response *)) {
    struct call *call = calloc(1, sizeof(*call));
    if (call) {
        call->verb = verb;
        call->resource = resource;
        call->done = done;
    }
    return call;
}

static bool ok_status(int result, const struct httpc_response *resp) {
    return result == 0 && resp->status >= 200 && resp->status < 300;
}

static void on_event_done(struct call *call, int result, struct httpc_response *resp) {
    if (!ok_status(result, resp))
        kube_log_http_failure("post a remediation Event", result, resp);
}

/* An Event about node (or this agent's own node) from this agent. */
static void post_node_event(struct cluster *c, const char *node, enum policy_event_type type,
                            const char *action, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void post_node_event(struct cluster *c, const char *node, enum policy_event_type type,
                            const char *action, const char *reason, const char *fmt, ...) {
    char note[KUBE_JSON_NOTE_MAX_BYTES], url[KUBE_JSON_URL_SIZE];
    char *body = NULL;
    struct call *call;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    struct log_field f[] = {{"node", node}, {"reason", reason}};
    log_fields(type == POLICY_EVENT_WARNING ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, 0, f, 2,
               "remediation: %s: %s: %s", node, reason, note);
    struct kube_json_event ev = {
        .node = c->node,
        .action = action,
        .reason = reason,
        .note = note,
        .type = type,
        .regarding = {.api_version = "v1", .kind = "Node", .name = node, .namespace = ""},
        .event_time_us = wall_us(),
    };
    if (kube_json_event_body(&ev, &body) < 0 ||
        kube_json_url_events(url, sizeof(url), kube_json_event_namespace(&ev)) < 0 ||
        !(call = new_call("create", "events", on_event_done))) {
        free(body);
        return;
    }
    send_call(c, call, "POST", url, "application/json", body);
}

/* ---- election --------------------------------------------------------------- */

static void start_leading(struct cluster *c, uint64_t now);
static void stop_leading(struct cluster *c, const char *why);

static int record_from_body(const struct httpc_response *resp, struct election_record *rec) {
    struct kube_json_lease l;

    if (kube_json_lease_parse(resp->body.data, resp->body.len, &l, NULL) < 0 ||
        strlen(l.meta.resource_version) >= sizeof(rec->rv))
        return -EBADMSG;
    memset(rec, 0, sizeof(*rec));
    rec->present = true;
    snprintf(rec->holder, sizeof(rec->holder), "%s", l.holder);
    rec->duration_ms = (uint64_t)l.duration_s * 1000;
    snprintf(rec->renew_time, sizeof(rec->renew_time), "%s", l.renew_time);
    snprintf(rec->acquire_time, sizeof(rec->acquire_time), "%s", l.acquire_time);
    rec->transitions = (unsigned)l.transitions;
    snprintf(rec->rv, sizeof(rec->rv), "%s", l.meta.resource_version);
    return 0;
}

static void election_write(struct cluster *c, uint64_t now);

static void on_election_write(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct election_record rec;
    bool ok = ok_status(result, resp) && record_from_body(resp, &rec) == 0;

    c->el_in_flight = false;
    if (!ok && !(result == 0 && resp->status == 409))
        kube_log_http_failure("write the remediator Lease", result, resp);
    election_write_done(&c->el, ok, ok ? &rec : NULL, c->el_sent_ms, now_ms(c));
    c->el_need_read = !ok; /* a conflict or an error: read before writing again */
}

static void on_election_read(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct election_record rec = {0};
    uint64_t now = now_ms(c);

    c->el_in_flight = false;
    c->el_need_read = false;
    if (result == 0 && resp->status == 404) {
        election_observe(&c->el, &rec, now);
    } else if (ok_status(result, resp) && record_from_body(resp, &rec) == 0) {
        election_observe(&c->el, &rec, now);
    } else {
        if (!(result == 0 && resp->status == 200))
            kube_log_http_failure("read the remediator Lease", result, resp);
        election_read_failed(&c->el, now);
        return;
    }
    election_write(c, now);
}

/* Write what election_decide() says, if anything. */
static void election_write(struct cluster *c, uint64_t now) {
    struct election_write w;
    char url[KUBE_JSON_URL_SIZE], *body = NULL;
    int64_t now_us = wall_us();
    int64_t acquire_us = now_us;
    struct call *call;

    election_decide(&c->el, now, &w);
    if (w.action == ELECTION_WAIT)
        return;
    if (w.acquire_time[0]) {
        struct kube_json_lease tmp = {0};
        snprintf(tmp.acquire_time, sizeof(tmp.acquire_time), "%s", w.acquire_time);
        acquire_us = kube_json_lease_renew_us(&tmp);
        if (!acquire_us)
            acquire_us = now_us;
    }
    struct kube_json_lease_write lw = {
        .namespace = c->ns,
        .name = REMEDIATOR_LEASE,
        .holder = c->node,
        .duration_s = (int)(w.duration_ms / 1000),
        .acquire_time_us = acquire_us,
        .renew_time_us = now_us,
        .transitions = (int)w.transitions,
        .resource_version = w.action == ELECTION_UPDATE ? w.rv : NULL,
    };
    if (kube_json_lease_write_body(&lw, &body) < 0 ||
        kube_json_url_leases(url, sizeof(url), c->ns,
                             w.action == ELECTION_UPDATE ? REMEDIATOR_LEASE : NULL, NULL,
                             NULL) < 0 ||
        !(call = new_call(w.action == ELECTION_UPDATE ? "update" : "create", "leases",
                          on_election_write))) {
        free(body);
        election_write_done(&c->el, false, NULL, now, now);
        return;
    }
    c->el_sent_ms = now;
    if (send_call(c, call, w.action == ELECTION_UPDATE ? "PUT" : "POST", url, "application/json",
                  body) == 0)
        c->el_in_flight = true;
    else
        election_write_done(&c->el, false, NULL, now, now);
}

static void election_tick(struct cluster *c, uint64_t now) {
    bool leader;

    if (!c->o.remediation_enabled)
        return;
    if (!c->el_in_flight && now >= c->el.next_try_ms) {
        if (election_is_leader(&c->el, now) && !c->el_need_read) {
            /* Renew straight from the record we wrote; a 409 reads again. */
            election_write(c, now);
        } else {
            char url[KUBE_JSON_URL_SIZE];
            struct call *call = new_call("get", "leases", on_election_read);
            if (call &&
                kube_json_url_leases(url, sizeof(url), c->ns, REMEDIATOR_LEASE, NULL, NULL) == 0) {
                if (send_call(c, call, "GET", url, NULL, NULL) == 0)
                    c->el_in_flight = true;
                else
                    election_read_failed(&c->el, now);
            } else {
                free(call);
                election_read_failed(&c->el, now);
            }
        }
    }
    leader = election_is_leader(&c->el, now);
    if (leader && !c->leading)
        start_leading(c, now);
    else if (!leader && c->leading)
        stop_leading(c, c->el.leader ? "could not renew the remediator Lease within renewDeadline"
                                     : "another agent holds the remediator Lease");
}

/* ---- caches ------------------------------------------------------------------ */

static struct kube_json_selector label_selector(const char *value) {
    struct kube_json_selector sel = {.n = 1};
    sel.items[0].op = KUBE_JSON_SEL_EQUALS;
    snprintf(sel.items[0].key, sizeof(sel.items[0].key), "%s", KUBE_JSON_LEASE_LABEL);
    snprintf(sel.items[0].value, sizeof(sel.items[0].value), "%s", value);
    return sel;
}

/* The informers' URLs; data is the cache. */
static int url_hb(char *out, size_t size, const struct kube_json_query *q, void *data) {
    const struct cluster *c = ((struct cache *)data)->c;
    struct kube_json_selector sel = label_selector("heartbeat");
    return kube_json_url_leases(out, size, c->ns, NULL, &sel, q);
}

static int url_slots(char *out, size_t size, const struct kube_json_query *q, void *data) {
    const struct cluster *c = ((struct cache *)data)->c;
    struct kube_json_selector sel = label_selector("failover");
    return kube_json_url_leases(out, size, c->ns, NULL, &sel, q);
}

static int url_kl(char *out, size_t size, const struct kube_json_query *q, void *data) {
    (void)data;
    return kube_json_url_leases(out, size, NODE_LEASE_NS, NULL, NULL, q);
}

static int url_nodes(char *out, size_t size, const struct kube_json_query *q, void *data) {
    (void)data;
    return kube_json_url_nodes(out, size, q);
}

static int url_pods(char *out, size_t size, const struct kube_json_query *q, void *data) {
    const struct cluster *c = ((struct cache *)data)->c;
    return kube_json_url_pods_all(out, size, kube_pod_selector(c->k), q);
}

/* When a record's renewTime changes we have seen a renewal: its clock restarts. */
static uint64_t seen_time(const struct cluster *c, bool made, const char *old_renew,
                          const char *new_renew, uint64_t old_seen) {
    uint64_t now = now_ms(c);
    if (made || strcmp(old_renew, new_renew))
        return now;
    return old_seen;
}

/* ---- watch caches ---------------------------------------------------------- */

/* One object of a list or watch, parsed. */
union record {
    struct kube_json_lease lease;
    struct kube_json_node node;
    struct kube_json_pod pod;
};

/* What differs between the caches: how an object is read and kept. */
struct cache_kind {
    const char *resource, *what;
    int (*url)(char *out, size_t size, const struct kube_json_query *q, void *data);
    size_t entry_size;
    /* Parse obj into r and point *key into it; < 0 passes the object over. */
    int (*parse)(const json_t *obj, union record *r, const char **key);
    /* Fill an entry, new (made) or not, from r (parsed from obj); r is
     * freed afterwards. */
    void (*fill)(struct cluster *c, struct entry *e, bool made, union record *r, const json_t *obj);
    void (*free_record)(union record *r); /* NULL: nothing to free */
    /* NULL: a deleted object's entry is dropped. Otherwise it is kept and
     * this marks it gone (the remediator's node record outlives the Node). */
    void (*gone)(struct entry *e);
    void (*free_entry)(struct entry *e); /* NULL: free() */
};

static void cache_reset(void *data) {
    struct cache *x = data;
    x->gen++;
}

static void cache_object(enum kube_json_event_type type, const json_t *obj, void *data) {
    struct cache *x = data;
    const struct cache_kind *k = x->kind;
    union record r;
    const char *key;
    struct entry *e;
    bool made;

    if (k->parse(obj, &r, &key) < 0)
        return;
    if (type == KUBE_JSON_DELETED || !key[0]) {
        if ((e = table_get(&x->t, key))) {
            if (k->gone)
                k->gone(e);
            else
                table_del(&x->t, e, k->free_entry);
        }
    } else if ((e = table_upsert(&x->t, key, k->entry_size, &made))) {
        e->gen = x->gen;
        k->fill(x->c, e, made, &r, obj);
    }
    if (k->free_record)
        k->free_record(&r);
}

/* A relist is complete: an entry it did not list again is gone. */
static void cache_synced(void *data) {
    struct cache *x = data;

    if (!x->kind->gone) {
        table_sweep(&x->t, x->gen, x->kind->free_entry);
        return;
    }
    FOREACH(&x->t, e)
    if (e->gen != x->gen)
        x->kind->gone(e);
}

/* Stop watching and forget. */
static void cache_stop(struct cache *x) {
    informer_stop(x->inf);
    table_clear(&x->t, x->kind->free_entry);
}

static void cache_free(struct cache *x) {
    informer_free(x->inf);
    x->inf = NULL;
    if (x->kind)
        table_clear(&x->t, x->kind->free_entry);
}

static void cache_wake(void *data) {
    struct cache *x = data;
    kick(x->c);
}

static int cache_init(struct cluster *c, struct cache *x, const struct cache_kind *kind) {
    struct informer_options o = {
        .resource = kind->resource,
        .what = kind->what,
        .url = kind->url,
        .ops = {.reset = cache_reset,
                .object = cache_object,
                .synced = cache_synced,
                .wake = cache_wake},
        .data = x,
    };
    x->c = c;
    x->kind = kind;
    return informer_new(c->k, &o, &x->inf);
}

/* Leases */

static int parse_lease(const json_t *obj, union record *r, const char **key) {
    *key = r->lease.meta.name;
    return kube_json_lease_from_json(obj, &r->lease, NULL);
}

/* An agent's heartbeat Lease is keyed by its holder: the node. */
static int parse_hb(const json_t *obj, union record *r, const char **key) {
    *key = r->lease.holder;
    return kube_json_lease_from_json(obj, &r->lease, NULL) < 0 || !r->lease.holder[0] ? -1 : 0;
}

static void fill_hb(struct cluster *c, struct entry *e, bool made, union record *r,
                    const json_t *obj) {
    struct hb *h = (struct hb *)e;
    const struct kube_json_lease *l = &r->lease;

    h->seen_ms = seen_time(c, made, h->renew_time, l->renew_time, h->seen_ms);
    snprintf(h->renew_time, sizeof(h->renew_time), "%s", l->renew_time);
    h->duration_ms = (uint64_t)l->duration_s * 1000;
    h->fenced = l->fenced && l->watchdog_timeout_s > 0;
    h->watchdog_ms = (uint64_t)l->watchdog_timeout_s * 1000;
    snprintf(h->peer_address, sizeof(h->peer_address), "%s", l->peer_address);
    h->asks_me = kube_json_lease_names_peer(obj, c->node) == 1;
}

static void fill_kl(struct cluster *c, struct entry *e, bool made, union record *r,
                    const json_t *obj) {
    struct kl *x = (struct kl *)e;

    x->seen_ms = seen_time(c, made, x->renew_time, r->lease.renew_time, x->seen_ms);
    snprintf(x->renew_time, sizeof(x->renew_time), "%s", r->lease.renew_time);
}

static void fill_slot(struct cluster *c, struct entry *e, bool made, union record *r,
                      const json_t *obj) {
    struct bslot *b = (struct bslot *)e;

    if (strcmp(b->lease.meta.resource_version, r->lease.meta.resource_version))
        b->releasing = false; /* a new record: judge it afresh */
    b->lease = r->lease;
}

/* Nodes */

static void rnode_free(struct entry *e) {
    struct rnode *n = (struct rnode *)e;
    free(n->taints);
    free(n);
}

static void rnode_gone(struct entry *e) {
    struct rnode *n = (struct rnode *)e;
    n->exists = false;
    n->ready = false;
    free(n->taints);
    n->taints = NULL;
    n->n_taints = 0;
    n->oos = false;
    n->rv[0] = '\0';
}

static int parse_node(const json_t *obj, union record *r, const char **key) {
    *key = r->node.meta.name;
    return kube_json_node_from_json(obj, &r->node, NULL);
}

/* Take over the node's fields; nd's taints are moved. */
static void rnode_take(struct rnode *n, struct kube_json_node *nd) {
    const struct kube_json_condition *ready =
        kube_json_condition_find(nd->conditions, nd->n_conditions, "Ready");

    free(n->taints);
    n->exists = true;
    n->ready = ready && !strcmp(ready->status, "True");
    n->taints = nd->taints;
    n->n_taints = nd->n_taints;
    nd->taints = NULL;
    nd->n_taints = 0;
    snprintf(n->rv, sizeof(n->rv), "%s", nd->meta.resource_version);
    n->oos = false;
    for (size_t i = 0; i < n->n_taints; i++)
        if (!strcmp(n->taints[i].key, OOS_KEY))
            n->oos = true;
}

static void fill_node(struct cluster *c, struct entry *e, bool made, union record *r,
                      const json_t *obj) {
    rnode_take((struct rnode *)e, &r->node);
}

static void free_node_record(union record *r) {
    kube_json_node_free(&r->node);
}

/* Pods (key: uid; a pod without one is passed over) */

static int parse_pod(const json_t *obj, union record *r, const char **key) {
    *key = r->pod.meta.uid;
    return kube_json_pod_from_json(obj, &r->pod, NULL);
}

static void fill_pod(struct cluster *c, struct entry *e, bool made, union record *r,
                     const json_t *obj) {
    struct rpod *x = (struct rpod *)e;
    const struct kube_json_pod *p = &r->pod;
    const struct kube_json_condition *ready =
        kube_json_condition_find(p->conditions, p->n_conditions, "Ready");

    snprintf(x->ns, sizeof(x->ns), "%s", p->meta.namespace);
    snprintf(x->name, sizeof(x->name), "%s", p->meta.name);
    snprintf(x->node, sizeof(x->node), "%s", p->node_name);
    snprintf(x->owner_uid, sizeof(x->owner_uid), "%s", p->owner_uid);
    x->ready = ready && !strcmp(ready->status, "True");
    x->deleting = p->meta.deleting;
}

static void free_pod_record(union record *r) {
    kube_json_pod_free(&r->pod);
}

static const struct cache_kind KIND_HB = {.resource = "leases",
                                          .what = "agent heartbeat Leases",
                                          .url = url_hb,
                                          .entry_size = sizeof(struct hb),
                                          .parse = parse_hb,
                                          .fill = fill_hb};
static const struct cache_kind KIND_KL = {.resource = "leases",
                                          .what = "kubelet Leases",
                                          .url = url_kl,
                                          .entry_size = sizeof(struct kl),
                                          .parse = parse_lease,
                                          .fill = fill_kl};
static const struct cache_kind KIND_NODES = {.resource = "nodes",
                                             .what = "nodes",
                                             .url = url_nodes,
                                             .entry_size = sizeof(struct rnode),
                                             .parse = parse_node,
                                             .fill = fill_node,
                                             .free_record = free_node_record,
                                             .gone = rnode_gone,
                                             .free_entry = rnode_free};
static const struct cache_kind KIND_PODS = {.resource = "pods",
                                            .what = "SQL pods",
                                            .url = url_pods,
                                            .entry_size = sizeof(struct rpod),
                                            .parse = parse_pod,
                                            .fill = fill_pod,
                                            .free_record = free_pod_record};
static const struct cache_kind KIND_SLOTS = {.resource = "leases",
                                             .what = "failover slots",
                                             .url = url_slots,
                                             .entry_size = sizeof(struct bslot),
                                             .parse = parse_lease,
                                             .fill = fill_slot};

/* ---- leadership ------------------------------------------------------------ */

/* The heartbeat Leases are watched by the leader and by a fencing agent
 * (peer addresses); the rest by the leader alone. */
static void informers_for(struct cluster *c, bool leader, bool fencing, uint64_t now) {
    struct cache *leaders[] = {&c->kls, &c->nodes, &c->pods, &c->slots};

    if (leader || fencing)
        informer_start(c->hbs.inf, now);
    else if (informer_running(c->hbs.inf))
        cache_stop(&c->hbs);
    for (size_t i = 0; i < sizeof(leaders) / sizeof(leaders[0]); i++)
        if (leader)
            informer_start(leaders[i]->inf, now);
        else
            cache_stop(leaders[i]);
}

static void start_leading(struct cluster *c, uint64_t now) {
    c->leading = true;
    c->leader_since_ms = now;
    c->leader_transitions++;
    if (c->m.leader)
        metric_set(c->m.leader, NULL, 1);
    if (c->m.transitions)
        metric_add(c->m.transitions, NULL, 1);
    /* Every observation starts now: a new leader waits a whole duration
     * before it trusts any expiry. */
    FOREACH(&c->hbs.t, e)
    ((struct hb *)e)->seen_ms = now;
    post_node_event(c, c->node, POLICY_EVENT_NORMAL, "Elect", "BecameRemediator",
                    "the agent on %s is the remediator now (Lease %s/%s); it watches the agents' "
                    "heartbeat Leases and the nodes",
                    c->node, c->ns, REMEDIATOR_LEASE);
}

static void stop_leading(struct cluster *c, const char *why) {
    c->leading = false;
    if (c->m.leader)
        metric_set(c->m.leader, NULL, 0);
    log_warn("remediation: no longer the remediator: %s", why);
    /* Remediator budget requests die with the leadership. */
    for (struct breq *b = c->breqs; b; b = b->next)
        if (b->for_node)
            b->dead = true;
}

/* ---- remediation: writes ------------------------------------------------------ */

static struct rnode *rnode_of(struct cluster *c, const char *name) {
    return (struct rnode *)table_get(&c->nodes.t, name);
}

static void rnode_failed(struct cluster *c, struct rnode *n) {
    n->retry_at_ms = now_ms(c) + next_retry(&n->backoff_ms);
}

static void on_node_get(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct rnode *n = rnode_of(c, call->name);
    struct kube_json_node nd;

    if (!n)
        return;
    n->write_in_flight = false;
    if (ok_status(result, resp) &&
        kube_json_node_parse(resp->body.data, resp->body.len, &nd, NULL) == 0) {
        rnode_take(n, &nd);
        kube_json_node_free(&nd);
        n->retry_at_ms = 0;
        return;
    }
    kube_log_http_failure("read a node after a conflict", result, resp);
    rnode_failed(c, n);
}

static void on_taint_written(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct rnode *n = rnode_of(c, call->name);
    struct kube_json_node nd;

    if (!n)
        return;
    n->write_in_flight = false;
    if (result == 0 && resp->status == 409) {
        /* The node changed since we read it: read it and edit again. */
        char url[KUBE_JSON_URL_SIZE];
        struct call *get = new_call("get", "nodes", on_node_get);
        if (get && kube_json_url_node(url, sizeof(url), n->e.name) == 0) {
            snprintf(get->name, sizeof(get->name), "%s", n->e.name);
            if (send_call(c, get, "GET", url, NULL, NULL) == 0)
                n->write_in_flight = true;
        } else {
            free(get);
        }
        return;
    }
    if (!ok_status(result, resp) ||
        kube_json_node_parse(resp->body.data, resp->body.len, &nd, NULL) < 0) {
        kube_log_http_failure("write a node's taints", result, resp);
        rnode_failed(c, n);
        return;
    }
    rnode_take(n, &nd);
    kube_json_node_free(&nd);
    n->backoff_ms = 0;
    if (!strcmp(call->effect, "oos")) {
        if (call->oos_present) {
            struct hb *h = (struct hb *)table_get(&c->hbs.t, n->e.name);
            count_action(c, "out_of_service_applied");
            n->hb_at_oos_known = h != NULL;
            snprintf(n->hb_at_oos, sizeof(n->hb_at_oos), "%s", h ? h->renew_time : "");
            post_node_event(c, n->e.name, POLICY_EVENT_WARNING, "OutOfService",
                            "OutOfServiceApplied",
                            "applied %s=%s:%s: the node is dead and fenced (or assumed dead); its "
                            "pods are force-deleted and its volumes detached",
                            OOS_KEY, OOS_VALUE, OOS_EFFECT);
        } else {
            count_action(c, "out_of_service_removed");
            post_node_event(
                c, n->e.name, POLICY_EVENT_NORMAL, "OutOfService", "OutOfServiceRemoved",
                "removed %s: the node is Ready again and its agent renews its Lease", OOS_KEY);
        }
    } else {
        count_action(c, "noexecute_unfenced");
    }
}

/* Make the node's taint key present (with value:effect) or absent: a merge
 * patch of the whole list with the node's resourceVersion. */
static void write_taint(struct cluster *c, struct rnode *n, const char *key, const char *value,
                        const char *effect, bool present, const char *tag) {
    struct kube_json_taint *out;
    size_t n_out;
    bool changed;
    char url[KUBE_JSON_URL_SIZE], *body = NULL;
    struct call *call;

    if (n->write_in_flight || !n->exists || now_ms(c) < n->retry_at_ms || !n->rv[0])
        return;
    if (!(out = calloc(n->n_taints + 1, sizeof(*out))))
        return;
    if (kube_json_taint_set(n->taints, n->n_taints, key, value, effect, present,
                            (int64_t)time(NULL), out, n->n_taints + 1, &n_out, &changed) < 0 ||
        !changed) {
        free(out);
        return;
    }
    if (kube_json_taints_patch(out, n_out, n->rv, &body) < 0 ||
        kube_json_url_node(url, sizeof(url), n->e.name) < 0 ||
        !(call = new_call("patch", "nodes", on_taint_written))) {
        free(out);
        free(body);
        return;
    }
    free(out);
    snprintf(call->name, sizeof(call->name), "%s", n->e.name);
    snprintf(call->effect, sizeof(call->effect), "%s", tag);
    call->oos_present = present;
    if (send_call(c, call, "PATCH", url, "application/merge-patch+json", body) == 0)
        n->write_in_flight = true;
}

static void on_pod_deleted(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct rpod *p = (struct rpod *)table_get(&c->pods.t, call->name);

    if (ok_status(result, resp) || (result == 0 && (resp->status == 404 || resp->status == 409))) {
        /* 404: gone already; 409: the UID precondition failed (a new pod).
         * The pod's names travel with the call: the watch may have dropped
         * it from the cache before this answer arrives. */
        if (ok_status(result, resp)) {
            count_action(c, "pod_force_deleted");
            post_node_event(c, call->pod_node, POLICY_EVENT_WARNING, "ForceDelete",
                            "PodForceDeleted",
                            "force-deleted pod %s/%s (grace period 0) on the out-of-service "
                            "node, so its replacement can attach the volume elsewhere",
                            call->pod_ns, call->pod_name);
        }
        return;
    }
    kube_log_http_failure("force-delete a pod on an out-of-service node", result, resp);
    if (p) {
        p->force_sent = false;
        p->force_retry_ms = now_ms(c) + next_retry(&p->force_backoff_ms);
    }
}

static void force_delete(struct cluster *c, struct rpod *p) {
    char url[KUBE_JSON_URL_SIZE], *body = NULL;
    struct call *call;

    if (p->force_sent || now_ms(c) < p->force_retry_ms)
        return;
    if (kube_json_pod_force_delete_body(p->e.name, &body) < 0 ||
        kube_json_url_pod(url, sizeof(url), p->ns, p->name) < 0 ||
        !(call = new_call("delete", "pods", on_pod_deleted))) {
        free(body);
        return;
    }
    snprintf(call->name, sizeof(call->name), "%s", p->e.name);
    snprintf(call->pod_ns, sizeof(call->pod_ns), "%s", p->ns);
    snprintf(call->pod_name, sizeof(call->pod_name), "%s", p->name);
    snprintf(call->pod_node, sizeof(call->pod_node), "%s", p->node);
    if (send_call(c, call, "DELETE", url, "application/json", body) == 0)
        p->force_sent = true;
}

/* ---- failover budget -------------------------------------------------------------- */

static void slot_name(unsigned index, char *out, size_t size) {
    snprintf(out, size, "%s%u", SLOT_PREFIX, index);
}

static void breq_try(struct cluster *c, struct breq *b);

static void breq_free(struct cluster *c, struct breq *b) {
    for (struct breq **p = &c->breqs; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    free(b);
}

static void update_waiting_gauge(struct cluster *c) {
    size_t n = 0;
    for (struct breq *b = c->breqs; b; b = b->next)
        n += b->waiting && !b->dead;
    if (c->m.budget_waiting)
        metric_set(c->m.budget_waiting, NULL, (double)n);
}

static void count_budget(struct cluster *c, const char *result) {
    if (c->m.budget_requests) {
        const char *l[] = {result};
        metric_add(c->m.budget_requests, l, 1);
    }
}

static void release_slot(struct cluster *c, unsigned index, const char *rv, const char *why);

static void breq_granted(struct cluster *c, struct breq *b, const char *rv) {
    unsigned index = b->index;

    count_budget(c, "granted");
    log_info("failover budget: slot %s%u taken for %s (%s)", SLOT_PREFIX, index, b->node,
             b->for_node ? "remediator" : "this node's policy");
    if (b->for_node) {
        struct rnode *n = rnode_of(c, b->node);
        if (n && !b->dead) {
            n->has_slot = true;
            n->slot_asked = false;
        } else {
            release_slot(c, index, rv, "the remediation no longer needs it");
        }
    } else if (!b->dead) {
        struct held *h = calloc(1, sizeof(*h));
        if (h) {
            h->slot_id = b->slot_id;
            h->index = index;
            h->has_pods = b->pods[0] != '\0';
            snprintf(h->rv, sizeof(h->rv), "%s", rv);
            h->next = c->helds;
            c->helds = h;
        }
        if (kube_budget_answer(c->k, b->slot_id, 0) < 0 && h) {
            c->helds = h->next;
            free(h);
            release_slot(c, index, rv, "the target it was for is gone");
        }
    } else {
        release_slot(c, index, rv, "the request was withdrawn");
    }
    breq_free(c, b);
    update_waiting_gauge(c);
}

/* Every slot is taken: wait. */
static void breq_refused(struct cluster *c, struct breq *b, const char *why) {
    bool first = !b->waiting;

    count_budget(c, "refused");
    b->waiting = true;
    b->index = 0;
    b->retry_at_ms = now_ms(c) + c->o.budget_retry_ms;
    if (first) {
        if (b->for_node)
            post_node_event(c, b->node, POLICY_EVENT_WARNING, "Wait", "WaitingForFailoverBudget",
                            "every failover slot (maxConcurrentFailovers=%u) is held%s%s: this "
                            "node's SQL pods wait until one is released (the replacement of "
                            "another failover is Ready, or failoverTimeout passes)",
                            c->o.max_failovers, why ? ": " : "", why ? why : "");
        else
            log_warn("failover budget: every slot is held (maxConcurrentFailovers=%u); the "
                     "taint waits",
                     c->o.max_failovers);
    }
    if (!b->for_node && !b->dead)
        kube_budget_answer(c->k, b->slot_id, -EBUSY);
    update_waiting_gauge(c);
}

static void breq_next(struct cluster *c, struct breq *b) {
    if (++b->index >= c->o.max_failovers)
        breq_refused(c, b, NULL);
    else
        breq_try(c, b);
}

static void on_slot_written(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct breq *b = call->breq;
    struct kube_json_lease l;

    b->busy = false;
    if (ok_status(result, resp) &&
        kube_json_lease_parse(resp->body.data, resp->body.len, &l, NULL) == 0) {
        breq_granted(c, b, l.meta.resource_version);
        return;
    }
    if (result == 0 && resp->status == 409) { /* someone else took it first */
        breq_next(c, b);
        return;
    }
    kube_log_http_failure("take a failover slot", result, resp);
    breq_refused(c, b, "the API server did not answer");
}

static int slot_body(struct cluster *c, struct breq *b, const char *rv, char **body) {
    char name[KUBE_JSON_NAME_SIZE];
    int64_t now = wall_us();
    struct kube_json_annotation ann[] = {
        {KUBE_JSON_ANN_FAILOVER_NODE, b->node},
        {KUBE_JSON_ANN_FAILOVER_PODS, b->pods},
    };

    slot_name(b->index, name, sizeof(name));
    struct kube_json_lease_write w = {
        .namespace = c->ns,
        .name = name,
        .holder = c->node,
        .duration_s = (int)(c->o.failover_timeout_ms / 1000),
        .acquire_time_us = now,
        .renew_time_us = now,
        .transitions = -1,
        .resource_version = rv,
        .label = "failover",
        .annotations = ann,
        .n_annotations = 2,
    };
    return kube_json_lease_write_body(&w, body);
}

/* A slot Lease is free: no holder, or it ran out (its own duration, by the
 * wall clock: slots last minutes, far beyond any sane clock skew). */
static bool slot_free(const struct kube_json_lease *l) {
    int64_t renew = kube_json_lease_renew_us(l);
    return !l->holder[0] || !renew || wall_us() >= renew + l->duration_s * 1000000;
}

static void on_slot_read(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct breq *b = call->breq;
    struct kube_json_lease l;
    char url[KUBE_JSON_URL_SIZE], name[KUBE_JSON_NAME_SIZE], *body = NULL;
    bool create = result == 0 && resp->status == 404;
    struct call *w;

    b->busy = false;
    if (b->dead) {
        breq_free(c, b);
        return;
    }
    if (!create) {
        if (!ok_status(result, resp) ||
            kube_json_lease_parse(resp->body.data, resp->body.len, &l, NULL) < 0) {
            kube_log_http_failure("read a failover slot", result, resp);
            breq_refused(c, b, "the API server did not answer");
            return;
        }
        if (!slot_free(&l)) {
            breq_next(c, b);
            return;
        }
    }
    slot_name(b->index, name, sizeof(name));
    if (slot_body(c, b, create ? NULL : l.meta.resource_version, &body) < 0 ||
        kube_json_url_leases(url, sizeof(url), c->ns, create ? NULL : name, NULL, NULL) < 0 ||
        !(w = new_call(create ? "create" : "update", "leases", on_slot_written))) {
        free(body);
        breq_refused(c, b, "out of memory");
        return;
    }
    w->breq = b;
    if (send_call(c, w, create ? "POST" : "PUT", url, "application/json", body) == 0)
        b->busy = true;
    else
        breq_refused(c, b, "the request could not be sent");
}

static void breq_try(struct cluster *c, struct breq *b) {
    char url[KUBE_JSON_URL_SIZE], name[KUBE_JSON_NAME_SIZE];
    struct call *call;

    b->waiting = false;
    slot_name(b->index, name, sizeof(name));
    if (kube_json_url_leases(url, sizeof(url), c->ns, name, NULL, NULL) < 0 ||
        !(call = new_call("get", "leases", on_slot_read))) {
        breq_refused(c, b, "out of memory");
        return;
    }
    call->breq = b;
    if (send_call(c, call, "GET", url, NULL, NULL) == 0)
        b->busy = true;
    else
        breq_refused(c, b, "the request could not be sent");
}

static struct breq *breq_new(struct cluster *c, bool for_node, uint64_t slot_id, const char *node,
                             const char *pods) {
    struct breq *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->for_node = for_node;
    b->slot_id = slot_id;
    snprintf(b->node, sizeof(b->node), "%s", node);
    snprintf(b->pods, sizeof(b->pods), "%s", pods);
    b->next = c->breqs;
    c->breqs = b;
    return b;
}

static void budget_tick(struct cluster *c, uint64_t now) {
    for (struct breq *b = c->breqs, *next; b; b = next) {
        next = b->next;
        if (b->busy)
            continue;
        if (b->dead) {
            breq_free(c, b);
            continue;
        }
        if (b->waiting && b->for_node && now >= b->retry_at_ms)
            breq_try(c, b);
        else if (b->waiting && !b->for_node && now >= b->retry_at_ms + c->o.budget_retry_ms)
            breq_free(c, b); /* the policy stopped asking: it no longer needs a slot */
    }
    update_waiting_gauge(c);
}

static void on_slot_released(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct bslot *s = (struct bslot *)table_get(&c->slots.t, call->name);

    /* On success the slot stays "releasing" until the watch shows the new
     * record, so it is not released twice. */
    if (s && !ok_status(result, resp))
        s->releasing = false;
    if (ok_status(result, resp)) {
        count_action(c, "budget_released");
        log_info("failover budget: slot %s released", call->name);
    } else if (!(result == 0 && (resp->status == 409 || resp->status == 404))) {
        kube_log_http_failure("release a failover slot", result, resp);
    }
    /* A 409: someone wrote it since; the leader looks again at the next sweep. */
}

/* Empty the slot's holder (PUT with rv). */
static void release_slot(struct cluster *c, unsigned index, const char *rv, const char *why) {
    char url[KUBE_JSON_URL_SIZE], name[KUBE_JSON_NAME_SIZE], *body = NULL;
    struct call *call;
    int64_t now = wall_us();

    slot_name(index, name, sizeof(name));
    struct kube_json_lease_write w = {
        .namespace = c->ns,
        .name = name,
        .holder = NULL,
        .duration_s = (int)(c->o.failover_timeout_ms / 1000),
        .acquire_time_us = now,
        .renew_time_us = now,
        .transitions = -1,
        .resource_version = rv,
        .label = "failover",
    };
    if (kube_json_lease_write_body(&w, &body) < 0 ||
        kube_json_url_leases(url, sizeof(url), c->ns, name, NULL, NULL) < 0 ||
        !(call = new_call("update", "leases", on_slot_released))) {
        free(body);
        return;
    }
    log_info("failover budget: releasing slot %s: %s", name, why);
    snprintf(call->name, sizeof(call->name), "%s", name);
    send_call(c, call, "PUT", url, "application/json", body);
}

/* A workload deleted meanwhile has nothing to wait for: once the slot is
 * this old and no pod of the owner is left, the slot is given back. */
#define ORPHAN_AFTER_US (30LL * 1000000)

/* The leader: a held slot whose pods all have a Ready replacement on another
 * node is given back (or whose workload is gone). Entries are
 * namespace/name/ownerUID. */
static bool replacements_ready(struct cluster *c, const struct kube_json_lease *l) {
    char list[KUBE_JSON_PODS_SIZE], *save = NULL;
    bool any = false;
    bool old = wall_us() - kube_json_lease_renew_us(l) > ORPHAN_AFTER_US;

    snprintf(list, sizeof(list), "%s", l->failover_pods);
    for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *name = strchr(item, '/'), *owner = name ? strchr(name + 1, '/') : NULL;
        bool found = false, owner_has_pods = false;

        if (!owner || !owner[1])
            return false; /* no controller to match: the timeout frees it */
        *owner++ = '\0';
        name++;
        FOREACH(&c->pods.t, e) {
            struct rpod *p = (struct rpod *)e;
            owner_has_pods |= !strcmp(p->owner_uid, owner);
            if (!strcmp(p->owner_uid, owner) && strcmp(p->name, name) && p->ready && !p->deleting &&
                strcmp(p->node, l->failover_node)) {
                found = true;
                break;
            }
        }
        if (!found && !(old && !owner_has_pods))
            return false;
        any = true;
    }
    return any;
}

/* A slot held without pods (static mode: no replacement to wait for) is
 * over once its node carries no evicting taint any more (edgewarden's
 * NoExecute, out-of-service), and the slot is older than this: the taint
 * follows the grant within milliseconds. */
#define STATIC_SETTLE_US (10LL * 1000000)

static bool evicting_taint(const struct rnode *n) {
    for (size_t i = 0; n && i < n->n_taints; i++)
        if ((!strcmp(n->taints[i].key, POLICY_TAINT_KEY) &&
             !strcmp(n->taints[i].effect, "NoExecute")) ||
            !strcmp(n->taints[i].key, OOS_KEY))
            return true;
    return false;
}

static void slots_sweep(struct cluster *c) {
    FOREACH(&c->slots.t, e) {
        struct bslot *s = (struct bslot *)e;
        const char *why = "every pod it moved has a Ready replacement";
        unsigned index;

        if (s->releasing || slot_free(&s->lease) ||
            sscanf(s->e.name, SLOT_PREFIX "%u", &index) != 1)
            continue;
        if (!s->lease.failover_pods[0]) {
            struct rnode *n = rnode_of(c, s->lease.failover_node);
            if (!informer_synced(c->nodes.inf) || (n && n->exists && evicting_taint(n)) ||
                wall_us() - kube_json_lease_renew_us(&s->lease) < STATIC_SETTLE_US)
                continue;
            why = "no pod to wait for, and its node carries no evicting taint any more";
        } else if (!replacements_ready(c, &s->lease)) {
            continue;
        }
        s->releasing = true;
        release_slot(c, index, s->lease.meta.resource_version, why);
    }
}

/* The SQL pods on node, as failover-pods: namespace/name/ownerUID,... */
static void pods_on(struct cluster *c, const char *node, char *out, size_t size) {
    size_t len = 0;

    out[0] = '\0';
    FOREACH(&c->pods.t, e) {
        struct rpod *p = (struct rpod *)e;
        int w;
        if (strcmp(p->node, node))
            continue;
        w = snprintf(out + len, size - len, "%s%s/%s/%s", len ? "," : "", p->ns, p->name,
                     p->owner_uid);
        if (w < 0 || (size_t)w >= size - len) {
            out[len] = '\0';
            return;
        }
        len += (size_t)w;
    }
}

/* The hooks from the reporter's policy. */
static void hook_budget_acquire(const struct kube_budget_request *req, void *data) {
    struct cluster *c = data;
    char pods[KUBE_JSON_PODS_SIZE] = "";
    struct breq *b;

    for (b = c->breqs; b; b = b->next)
        if (!b->for_node && b->slot_id == req->slot_id && !b->dead)
            break;
    if (b && b->busy)
        return;
    if (req->pod)
        snprintf(pods, sizeof(pods), "%s/%s/%s", req->pod->namespace, req->pod->name,
                 req->owner_uid);
    if (!b && !(b = breq_new(c, false, req->slot_id, c->node, pods))) {
        kube_budget_answer(c->k, req->slot_id, -ENOMEM);
        return;
    }
    b->index = 0;
    breq_try(c, b);
}

static void hook_budget_release(uint64_t slot_id, bool evicted, void *data) {
    struct cluster *c = data;

    for (struct breq *b = c->breqs; b; b = b->next)
        if (!b->for_node && b->slot_id == slot_id)
            b->dead = true;
    for (struct held **p = &c->helds; *p; p = &(*p)->next) {
        struct held *h = *p;
        if (h->slot_id != slot_id)
            continue;
        *p = h->next;
        if (evicted && h->has_pods)
            log_info("failover budget: slot %s%u stays held until the replacement is Ready "
                     "(the remediator releases it) or failoverTimeout passes",
                     SLOT_PREFIX, h->index);
        else
            release_slot(c, h->index, h->rv,
                         evicted ? "static mode: no pod to wait for"
                                 : "the engine recovered before the eviction");
        free(h);
        break;
    }
    update_waiting_gauge(c);
}

/* ---- remediation: the sweep ----------------------------------------------------- */

static void count_agents(struct cluster *c, uint64_t now) {
    size_t live = 0, known = 0;

    FOREACH(&c->hbs.t, e) {
        struct hb *h = (struct hb *)e;
        struct rnode *n = rnode_of(c, h->e.name);
        if (!n || !n->exists)
            continue; /* a Lease left behind by a deleted node */
        known++;
        live += now < h->seen_ms + h->duration_ms;
    }
    c->agents_live = live;
    c->agents_known = known;
    c->quorum = known == 0 || live * 2 >= known;
    if (c->m.quorum)
        metric_set(c->m.quorum, NULL, c->quorum ? 1 : 0);
    if (c->m.agents) {
        const char *l1[] = {"live"}, *l2[] = {"expired"};
        metric_set(c->m.agents, l1, (double)live);
        metric_set(c->m.agents, l2, (double)(known - live));
    }
}

static bool hosts_sql(struct cluster *c, const char *node) {
    FOREACH(&c->pods.t, e)
    if (!strcmp(((struct rpod *)e)->node, node))
        return true;
    return false;
}

static void announce(struct cluster *c, struct rnode *n, const struct remedy_decision *d,
                     const struct hb *h, uint64_t now) {
    if ((unsigned)d->verdict >= sizeof(n->announced) || n->announced[d->verdict])
        return;
    n->announced[d->verdict] = true;
    switch (d->verdict) {
    case REMEDY_WATCH:
        post_node_event(c, n->e.name, POLICY_EVENT_NORMAL, "Watch", d->reason,
                        "the agent's heartbeat Lease expired but the node still looks alive "
                        "(Ready, kubelet Lease renewed): nothing is done");
        break;
    case REMEDY_NO_QUORUM:
        post_node_event(c, n->e.name, POLICY_EVENT_WARNING, "Wait", d->reason,
                        "the node looks dead, but only %zu of %zu agents are live: a partition "
                        "looks the same, so nothing is done until half of them are back",
                        c->agents_live, c->agents_known);
        break;
    case REMEDY_FENCE_WAIT:
        post_node_event(c, n->e.name, POLICY_EVENT_NORMAL, "Wait", d->reason,
                        "the node and its agent are gone; its watchdog (%llu s) has fenced it "
                        "by %.1f s from now, then out-of-service is applied",
                        (unsigned long long)(h ? h->watchdog_ms / 1000 : 0),
                        (double)(d->deadline_ms - now) / 1000.0);
        break;
    case REMEDY_UNFENCED:
        if (h && h->fenced) {
            post_node_event(c, n->e.name, POLICY_EVENT_WARNING, "Taint", d->reason,
                            "the node and its agent are gone; its watchdog is armed, but its "
                            "last heartbeat does not name this remediator (%s) among the peers "
                            "it asks before it keeps feeding the watchdog, so the fencing "
                            "deadline proves nothing here: only the %s:NoExecute taint is "
                            "applied and the volume stays attached. Once the node is known to "
                            "be off, apply %s=%s:%s by hand, or set remediation.assumeDeadAfter",
                            c->node, POLICY_TAINT_KEY, OOS_KEY, OOS_VALUE, OOS_EFFECT);
            break;
        }
        post_node_event(c, n->e.name, POLICY_EVENT_WARNING, "Taint", d->reason,
                        "the node and its agent are gone, but the node is not fenced (no "
                        "watchdog): it may still be running SQL, so only the %s:NoExecute taint "
                        "is applied and the volume stays attached. Once the node is known to be "
                        "off, apply %s=%s:%s by hand, or set remediation.assumeDeadAfter",
                        POLICY_TAINT_KEY, OOS_KEY, OOS_VALUE, OOS_EFFECT);
        break;
    default:
        break;
    }
}

#define VERIFIED_FOR_MS 2000

static void on_lease_verified(struct call *call, int result, struct httpc_response *resp) {
    struct cluster *c = call->c;
    struct rnode *n = rnode_of(c, call->name);
    struct hb *h = (struct hb *)table_get(&c->hbs.t, call->name);
    struct kube_json_lease l;

    if (!n)
        return;
    n->verify_in_flight = false;
    if (!ok_status(result, resp) ||
        kube_json_lease_parse(resp->body.data, resp->body.len, &l, NULL) < 0) {
        if (!(result == 0 && resp->status == 404))
            kube_log_http_failure("read a silent agent's heartbeat Lease", result, resp);
        rnode_failed(c, n);
        return;
    }
    if (h && strcmp(h->renew_time, l.renew_time)) {
        /* It renewed after all: the watch was behind. Its clock restarts. */
        log_warn("remediation: node %s: its agent renewed its Lease (%s) although the watch "
                 "showed nothing; not acting",
                 n->e.name, l.renew_time);
        snprintf(h->renew_time, sizeof(h->renew_time), "%s", l.renew_time);
        h->seen_ms = now_ms(c);
        return;
    }
    n->verified_ms = now_ms(c);
    snprintf(n->verified_renew, sizeof(n->verified_renew), "%s", l.renew_time);
}

/* Before a taint that moves the volume: the agent's Lease read fresh from the
 * API server must show the record the decision was made on (a lagging watch
 * would otherwise make a live agent look silent: docs/model, WATCH_LAG).
 * True when a fresh enough read agrees; otherwise a read is started. */
static bool lease_verified(struct cluster *c, struct rnode *n, const struct hb *h, uint64_t now) {
    char url[KUBE_JSON_URL_SIZE], name[KUBE_JSON_NAME_SIZE + sizeof(KUBE_JSON_INSTANCE_PREFIX)];
    struct call *call;

    if (!h)
        return false;
    if (now < n->verified_ms + VERIFIED_FOR_MS && !strcmp(n->verified_renew, h->renew_time))
        return true;
    if (n->verify_in_flight || now < n->retry_at_ms)
        return false;
    snprintf(name, sizeof(name), "%s%s", KUBE_JSON_INSTANCE_PREFIX, n->e.name);
    if (kube_json_url_leases(url, sizeof(url), c->ns, name, NULL, NULL) < 0 ||
        !(call = new_call("get", "leases", on_lease_verified)))
        return false;
    snprintf(call->name, sizeof(call->name), "%s", n->e.name);
    if (send_call(c, call, "GET", url, NULL, NULL) == 0)
        n->verify_in_flight = true;
    return false;
}

/* Take a budget slot for the node (async); true when one is held. */
static bool node_slot(struct cluster *c, struct rnode *n) {
    char pods[KUBE_JSON_PODS_SIZE];

    if (n->has_slot)
        return true;
    if (!n->slot_asked) {
        struct breq *b;
        pods_on(c, n->e.name, pods, sizeof(pods));
        if ((b = breq_new(c, true, 0, n->e.name, pods))) {
            n->slot_asked = true;
            breq_try(c, b);
        }
    }
    return false;
}

static void remediate(struct cluster *c, struct rnode *n, uint64_t now, uint64_t *next) {
    struct hb *h = (struct hb *)table_get(&c->hbs.t, n->e.name);
    struct kl *k = (struct kl *)table_get(&c->kls.t, n->e.name);
    struct remedy_config cfg = {
        .fence_margin_ms = c->o.fence_margin_ms,
        .node_lease_stale_ms = c->o.node_lease_stale_ms,
        .assume_dead_after_ms = c->o.assume_dead_after_ms,
    };
    struct remedy_view v = {
        .hosts_sql = hosts_sql(c, n->e.name),
        .has_agent_lease = h != NULL,
        .agent_seen_ms =
            h ? (h->seen_ms > c->leader_since_ms ? h->seen_ms : c->leader_since_ms) : 0,
        .agent_duration_ms = h ? h->duration_ms : 0,
        .fenced = h && h->fenced,
        .watchdog_timeout_ms = h ? h->watchdog_ms : 0,
        .asks_remediator = h && h->asks_me,
        .node_exists = n->exists,
        .node_ready = n->ready,
        .has_kubelet_lease = k != NULL,
        .kubelet_seen_ms =
            k ? (k->seen_ms > c->leader_since_ms ? k->seen_ms : c->leader_since_ms) : 0,
        .out_of_service = n->oos,
        .agent_renewed_since = h && (!n->hb_at_oos_known || strcmp(h->renew_time, n->hb_at_oos)),
        .quorum = c->quorum,
    };
    struct remedy_decision d;

    remedy_decide(&cfg, &v, now, &d);
    if (d.verdict != n->verdict) {
        struct log_field f[] = {{"node", n->e.name}, {"verdict", remedy_verdict_name(d.verdict)}};
        log_fields(d.verdict == REMEDY_NONE ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, 0, f, 2,
                   "remediation: node %s: %s -> %s%s%s", n->e.name, remedy_verdict_name(n->verdict),
                   remedy_verdict_name(d.verdict), d.reason[0] ? " " : "", d.reason);
        if (d.verdict == REMEDY_NONE || d.verdict == REMEDY_LIFT)
            memset(n->announced, 0, sizeof(n->announced));
        n->verdict = d.verdict;
    }
    if (d.next_ms < *next)
        *next = d.next_ms;
    announce(c, n, &d, h, now);
    switch (d.verdict) {
    case REMEDY_OUT_OF_SERVICE:
        if (node_slot(c, n) && lease_verified(c, n, h, now))
            write_taint(c, n, OOS_KEY, OOS_VALUE, OOS_EFFECT, true, "oos");
        break;
    case REMEDY_UNFENCED:
        if (node_slot(c, n) && lease_verified(c, n, h, now))
            write_taint(c, n, POLICY_TAINT_KEY, "", "NoExecute", true, "own");
        break;
    case REMEDY_LIFT:
        write_taint(c, n, OOS_KEY, OOS_VALUE, OOS_EFFECT, false, "oos");
        n->has_slot = false;
        break;
    default:
        break;
    }
    if (d.verdict == REMEDY_NONE || d.verdict == REMEDY_WATCH || d.verdict == REMEDY_LIFT) {
        /* The node is alive (or back): a slot still being asked for is not
         * needed any more (a late grant is given back at once); one held is
         * given back by the leader's sweep or runs out. */
        for (struct breq *b = c->breqs; b && n->slot_asked; b = b->next)
            if (b->for_node && !strcmp(b->node, n->e.name))
                b->dead = true;
        n->slot_asked = false;
        n->has_slot = false;
    }
    if (d.force_delete && n->oos)
        FOREACH(&c->pods.t, e) {
            struct rpod *p = (struct rpod *)e;
            if (!strcmp(p->node, n->e.name))
                force_delete(c, p);
        }
}

static void sweep(struct cluster *c, uint64_t now) {
    uint64_t next = UINT64_MAX;

    if (!leading_now(c) || !informer_synced(c->hbs.inf) || !informer_synced(c->nodes.inf) ||
        !informer_synced(c->pods.inf) || !informer_synced(c->kls.inf))
        return;
    /* The quorum walks every heartbeat Lease: once a second is enough (it
     * only gates taints whose deadlines are seconds long). */
    if (now >= c->agents_counted_ms + 1000) {
        count_agents(c, now);
        c->agents_counted_ms = now;
    }
    /* The nodes that matter: those with a SQL pod, and those with out-of-service. */
    FOREACH(&c->pods.t, e) {
        bool made;
        struct rnode *n;
        if (!((struct rpod *)e)->node[0])
            continue; /* not scheduled yet */
        n = (struct rnode *)table_upsert(&c->nodes.t, ((struct rpod *)e)->node,
                                         sizeof(struct rnode), &made);
        if (n && made)
            n->e.gen = c->nodes.gen;
    }
    FOREACH(&c->nodes.t, e) {
        struct rnode *n = (struct rnode *)e;
        if (n->oos || hosts_sql(c, n->e.name) || n->verdict != REMEDY_NONE)
            remediate(c, n, now, &next);
    }
    if (informer_synced(c->slots.inf))
        slots_sweep(c);
}

/* ---- self-fencing ----------------------------------------------------------------- */

static bool fencing_wanted(const struct cluster *c) {
    return c->device && kube_target_count(c->k) > 0;
}

static void set_feeding(struct cluster *c, bool feeding) {
    if (feeding == c->feeding)
        return;
    c->feeding = feeding;
    if (c->m.wd_feeding)
        metric_set(c->m.wd_feeding, NULL, feeding ? 1 : 0);
    if (!feeding && c->wd)
        log_error("fencing: stopped feeding the watchdog %s (last heartbeat renewal %.1f s ago, "
                  "roll call: %s): this node reboots within %llu s unless the API server answers "
                  "again",
                  watchdog_path(c->wd), (double)(now_ms(c) - c->fence.lease_ok_ms) / 1000.0,
                  fence_verdict_name(c->fence.verdict),
                  (unsigned long long)(watchdog_timeout_ms(c->wd) / 1000));
    else if (feeding && c->wd)
        log_info("fencing: feeding the watchdog %s again", watchdog_path(c->wd));
}

static void disarm(struct cluster *c, const char *why) {
    if (!c->wd)
        return;
    log_info("fencing: watchdog %s disarmed (%s)", watchdog_path(c->wd), why);
    watchdog_close(c->wd, true);
    c->wd = NULL;
    c->feeding = false;
    c->fenced_advertised = false;
    if (c->m.wd_armed)
        metric_set(c->m.wd_armed, NULL, 0);
    if (c->m.wd_feeding)
        metric_set(c->m.wd_feeding, NULL, 0);
}

static void on_peer_answer(const struct peer_answer *a, void *data);

static void round_finish(struct cluster *c, uint64_t now) {
    size_t n = c->round_n + (c->round_truncated ? 1 : 0);
    enum fence_verdict v = fence_verdict_of(c->answers, n);

    fence_round_done(&c->fence, v, now);
    if (c->m.rounds) {
        const char *l[] = {fence_verdict_name(v)};
        metric_add(c->m.rounds, l, 1);
    }
    log_warn("fencing: roll call of %zu peer%s: %s", c->round_n, c->round_n == 1 ? "" : "s",
             fence_verdict_name(v));
}

static void on_peer_answer(const struct peer_answer *a, void *data) {
    struct peer_slot *ps = data;
    struct cluster *c = ps->c;

    c->round[ps->i] = NULL;
    c->answers[ps->i].answered = a->answered;
    c->answers[ps->i].api_reachable = a->api_reachable;
    if (--c->round_pending == 0)
        round_finish(c, now_ms(c));
    kick(c);
}

/* A peer whose Lease was live at t (by this agent's clock). */
static bool peer_live_at(const struct cluster *c, const struct hb *h, uint64_t t) {
    return strcmp(h->e.name, c->node) && h->seen_ms + h->duration_ms >= t;
}

/* Add one peer to the round being built: asked at its advertised address,
 * or, with none known, a place that counts as not answering. */
static void round_add(struct cluster *c, size_t *n, const struct hb *h) {
    if (*n == MAX_PEERS) {
        c->round_truncated = true; /* a peer not asked counts as not answering */
        return;
    }
    c->answers[*n] = (struct fence_peer_answer){0};
    c->pslots[*n] = (struct peer_slot){c, *n};
    c->round[*n] = NULL;
    if (h && h->peer_address[0])
        peer_ask(c->loop, h->peer_address, c->o.peer_timeout_ms, on_peer_answer, &c->pslots[*n],
                 &c->round[*n]);
    (*n)++;
}

/* Add the peers named in list (comma-separated) that are not asked already:
 * those live at lease_ok (the first loop of round_start()) and those named in
 * skip. */
static void round_add_names(struct cluster *c, size_t *n, const char *list, const char *skip) {
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        char name[KUBE_JSON_NAME_SIZE];

        if (len && len < sizeof(name)) {
            memcpy(name, p, len);
            name[len] = '\0';
            const struct hb *h = (const struct hb *)table_get(&c->hbs.t, name);
            /* Already asked: live at lease_ok, or named by the other list. */
            if (!(h && peer_live_at(c, h, c->fence.lease_ok_ms)) &&
                !kube_json_peers_has(skip, name))
                round_add(c, n, h);
        }
        p += len + (p[len] == ',');
    }
}

/* Ask every peer known to have been live when we last reached the API, and
 * every peer a heartbeat since then may have named in edgewarden.io/peers:
 * a remediator acts on this node only if its record names it
 * (docs/model/README.md, finding 1). */
static void round_start(struct cluster *c, uint64_t now) {
    size_t n = 0;

    c->round_truncated = false;
    FOREACH(&c->hbs.t, e) {
        struct hb *h = (struct hb *)e;
        if (peer_live_at(c, h, c->fence.lease_ok_ms))
            round_add(c, &n, h);
    }
    round_add_names(c, &n, c->peers_acked.data, NULL);
    round_add_names(c, &n, c->peers_sent.data, c->peers_acked.data);
    c->answers[n] = (struct fence_peer_answer){0}; /* the truncation marker */
    c->round_n = n;
    c->round_pending = 0;
    for (size_t i = 0; i < n; i++)
        c->round_pending += c->round[i] != NULL;
    fence_round_start(&c->fence, now);
    if (c->round_pending == 0)
        round_finish(c, now);
}

static void fence_tick(struct cluster *c, uint64_t now) {
    bool want = fencing_wanted(c);

    if (!want) {
        if (c->wd)
            disarm(c, "no SQL target on this node");
        return;
    }
    /* Armed only once the heartbeat Leases are listed: the first fenced
     * renewal already names the peers the roll call asks. */
    if (!c->wd && c->fence.lease_ok_known && informer_synced(c->hbs.inf) && now >= c->wd_retry_ms) {
        char *err = NULL;
        int r = watchdog_open(c->device, c->o.watchdog_timeout_ms, &c->wd, &err);
        if (r < 0) {
            if (!c->wd_failed_logged)
                log_error("fencing: cannot arm the watchdog: %s; this node advertises itself "
                          "unfenced, so the remediator will not force its volume away "
                          "(retrying every 10 s)",
                          err ? err : strerror(-r));
            c->wd_failed_logged = true;
            c->wd = NULL;
            c->wd_retry_ms = now + 10000;
            free(err);
        } else {
            c->wd_failed_logged = false;
            c->feeding = true;
            c->next_feed_ms = now;
            log_info("fencing: watchdog %s armed (timeout %llu s, %s)", watchdog_path(c->wd),
                     (unsigned long long)(watchdog_timeout_ms(c->wd) / 1000),
                     watchdog_is_device(c->wd) ? "device" : "stand-in");
            if (c->m.wd_armed)
                metric_set(c->m.wd_armed, NULL, 1);
            if (c->m.wd_feeding)
                metric_set(c->m.wd_feeding, NULL, 1);
        }
    }
    if (!c->wd)
        return;
    if (fence_round_due(&c->fence, now))
        round_start(c, now);
    bool feed = fence_should_feed(&c->fence, now);
    set_feeding(c, feed);
    if (feed && now >= c->next_feed_ms) {
        uint64_t every = watchdog_timeout_ms(c->wd) / 4;
        if (every > 1000)
            every = 1000;
        if (watchdog_feed(c->wd) == 0) {
            c->feeds++;
            if (c->m.wd_feeds)
                metric_add(c->m.wd_feeds, NULL, 1);
        }
        c->next_feed_ms = now + every;
    }
}

/* ---- the reporter's heartbeat hooks ------------------------------------------------ */

/* The peers live now, as edgewarden.io/peers, into peers_adv; each also
 * into peers_sent. On -ENOMEM nothing is advertised: a fenced record that
 * names nobody binds no remediator. */
static int advertise_peers(struct cluster *c) {
    uint64_t now = now_ms(c);
    size_t count = 0;

    buf_reset(&c->peers_adv);
    if (buf_puts(&c->peers_adv, "") < 0)
        return -ENOMEM;
    FOREACH(&c->hbs.t, e) {
        struct hb *h = (struct hb *)e;
        if (!peer_live_at(c, h, now) || count == MAX_PEERS)
            continue;
        if (buf_printf(&c->peers_adv, "%s%s", count ? "," : "", h->e.name) < 0)
            return -ENOMEM;
        count++;
    }
    /* Usually the last renewal was acknowledged and peers_sent is empty: a
     * copy. After one that was not, the names it lacks are added. */
    if (!c->peers_sent.len)
        return buf_puts(&c->peers_sent, c->peers_adv.data) < 0 ? -ENOMEM : 0;
    for (const char *p = c->peers_adv.data; *p;) {
        int len = (int)strcspn(p, ",");
        char name[KUBE_JSON_NAME_SIZE];

        snprintf(name, sizeof(name), "%.*s", len, p);
        if (!kube_json_peers_has(c->peers_sent.data, name) &&
            buf_printf(&c->peers_sent, ",%s", name) < 0)
            return -ENOMEM;
        p += len + (p[len] == ',');
    }
    return 0;
}

static size_t hook_annotations(struct kube_json_annotation *out, size_t cap, int64_t renew_us,
                               void *data) {
    struct cluster *c = data;
    static char timeout[24], until[KUBE_JSON_TIME_SIZE];
    size_t n = 0;
    bool fenced = c->wd && c->feeding && !c->unfencing;

    c->fenced_advertised |= fenced;

    if (cap < 5)
        return 0;
    if (c->advertise)
        out[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_PEER_ADDRESS, c->advertise};
    out[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_FENCED, fenced ? "true" : "false"};
    if (fenced) {
        uint64_t w = watchdog_timeout_ms(c->wd);
        snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)((w + 999) / 1000));
        format_rfc3339(renew_us + (int64_t)(c->o.lease_duration_ms + w) * 1000, until,
                       sizeof(until));
        out[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_WATCHDOG_TIMEOUT, timeout};
        out[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_FENCED_UNTIL, until};
        if (advertise_peers(c) == 0)
            out[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_PEERS, c->peers_adv.data};
    }
    return n;
}

static void unfence_done(struct cluster *c, bool acked) {
    void (*cb)(void *) = c->unfence_cb;

    if (!cb)
        return;
    c->unfence_cb = NULL;
    c->unfence_acked = acked;
    if (acked)
        log_info("fencing: the API server shows this node unfenced; the watchdog can be disarmed");
    else
        log_error("fencing: could not tell the API server that this node stops being fenced "
                  "(no heartbeat acknowledged within 3 s): the watchdog stays armed and fires "
                  "unless a new agent feeds it in time");
    cb(c->unfence_data);
}

static void hook_heartbeat_ok(uint64_t sent_ms, void *data) {
    struct cluster *c = data;
    struct buf t = c->peers_acked;

    fence_lease_ok(&c->fence, sent_ms);
    /* The record now on the API server names peers sent up to here; later
     * renewals add to the cleared list. */
    c->peers_acked = c->peers_sent;
    c->peers_sent = t;
    buf_reset(&c->peers_sent);
    if (c->unfencing && sent_ms >= c->unfence_since_ms)
        unfence_done(c, true);
    else
        kick(c);
}

/* ---- the timer -------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
    struct cluster *c = t->data;
    uint64_t now = now_ms(c);
    struct informer *all[] = {c->hbs.inf, c->kls.inf, c->nodes.inf, c->pods.inf, c->slots.inf};

    if (c->closing)
        return;
    if (c->unfencing && c->unfence_cb && now >= c->unfence_since_ms + 3000) {
        unfence_done(c, false);
        return; /* the callback closes c */
    }
    election_tick(c, now);
    informers_for(c, leading_now(c), fencing_wanted(c), now);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        informer_tick(all[i], now);
    fence_tick(c, now);
    budget_tick(c, now);
    sweep(c, now);
    uv_timer_start(&c->timer, on_timer, TICK_MS, 0);
}

static void kick(struct cluster *c) {
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_timer, 0, 0);
    else if (!c->closing && uv_timer_get_due_in(&c->timer) > 1)
        uv_timer_start(&c->timer, on_timer, 1, 0);
}

/* ---- metrics ----------------------------------------------------------------------- */

static void metrics_setup(struct cluster *c, struct metrics *reg) {
    static const char *const action[] = {"action"};
    static const char *const state[] = {"state"};
    static const char *const result[] = {"result"};
    static const char *const verdict[] = {"verdict"};
    struct cluster_metrics *m = &c->m;

    if (!reg)
        return;
    m->leader = metrics_gauge(reg, "edgewarden_remediator_leader",
                              "1 while this agent is the elected remediator, else 0.", 0, NULL);
    m->transitions = metrics_counter(reg, "edgewarden_remediator_leader_transitions_total",
                                     "Times this agent became the remediator.", 0, NULL);
    m->actions = metrics_counter(
        reg, "edgewarden_remediation_actions_total",
        "Remediation steps taken by this agent as remediator, by action (out_of_service_applied, "
        "out_of_service_removed, pod_force_deleted, noexecute_unfenced, budget_released).",
        1, action);
    m->quorum = metrics_gauge(reg, "edgewarden_remediator_quorum",
                              "1 when at least half of the agents known to the remediator are "
                              "live (it may act), else 0. Only set on the remediator.",
                              0, NULL);
    m->agents = metrics_gauge(reg, "edgewarden_remediator_agents",
                              "Agents' heartbeat Leases seen by the remediator, by state (live, "
                              "expired).",
                              1, state);
    m->budget_waiting =
        metrics_gauge(reg, "edgewarden_failover_budget_waiting",
                      "Failovers of this agent waiting for a failover-budget slot.", 0, NULL);
    m->budget_requests = metrics_counter(reg, "edgewarden_failover_budget_requests_total",
                                         "Failover-budget slot requests, by result (granted, "
                                         "refused).",
                                         1, result);
    m->wd_armed = metrics_gauge(reg, "edgewarden_fencing_watchdog_armed",
                                "1 while this agent holds the watchdog armed, else 0.", 0, NULL);
    m->wd_feeding =
        metrics_gauge(reg, "edgewarden_fencing_watchdog_feeding",
                      "1 while the armed watchdog is fed, 0 when feeding stopped (the node "
                      "fences itself) or it is not armed.",
                      0, NULL);
    m->wd_feeds = metrics_counter(reg, "edgewarden_fencing_watchdog_feeds_total",
                                  "Keep-alives written to the watchdog.", 0, NULL);
    m->rounds = metrics_counter(reg, "edgewarden_fencing_roll_calls_total",
                                "Peer roll calls after missed heartbeat renewals, by verdict "
                                "(cut_off, outage, isolated).",
                                1, verdict);
    /* Every labelled series exists from the start, so that increase() sees
     * the first step of a counter (alerts, the dashboard). */
    static const char *const actions[] = {"out_of_service_applied", "out_of_service_removed",
                                          "pod_force_deleted", "noexecute_unfenced",
                                          "budget_released"};
    static const char *const results[] = {"granted", "refused"};
    static const char *const verdicts[] = {"cut_off", "outage", "isolated"};
    for (size_t i = 0; m->actions && i < sizeof(actions) / sizeof(actions[0]); i++)
        metric_add(m->actions, &actions[i], 0);
    for (size_t i = 0; m->budget_requests && i < 2; i++)
        metric_add(m->budget_requests, &results[i], 0);
    for (size_t i = 0; m->rounds && i < 3; i++)
        metric_add(m->rounds, &verdicts[i], 0);
    if (m->leader)
        metric_set(m->leader, NULL, 0);
    if (m->wd_armed)
        metric_set(m->wd_armed, NULL, 0);
    if (m->wd_feeding)
        metric_set(m->wd_feeding, NULL, 0);
    if (m->budget_waiting)
        metric_set(m->budget_waiting, NULL, 0);
}

/* ---- life ------------------------------------------------------------------------- */

int cluster_new(uv_loop_t *loop, struct kube *k, const struct cluster_options *o,
                struct cluster **out, char **error) {
    struct cluster *c;
    struct fence_config fc;
    struct election_config ec;
    char *msg = NULL;

    *error = NULL;
    if (!o->max_failovers || o->failover_timeout_ms < 1000 || !o->budget_retry_ms ||
        !o->peer_timeout_ms || !o->lease_duration_ms || !o->lease_renew_ms) {
        *error = strdup("cluster: a timing or budget option is zero");
        return -EINVAL;
    }
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    c->loop = loop;
    c->k = k;
    c->o = *o;
    c->node = kube_node_name(k);
    c->ns = kube_namespace(k);
    c->advertise =
        o->advertise_address && o->advertise_address[0] ? strdup(o->advertise_address) : NULL;
    c->device = o->watchdog_device && o->watchdog_device[0] ? strdup(o->watchdog_device) : NULL;
    fc = (struct fence_config){o->lease_duration_ms, o->lease_renew_ms,
                               o->watchdog_timeout_ms ? o->watchdog_timeout_ms : 1};
    ec = (struct election_config){o->election_lease_ms, o->election_renew_deadline_ms,
                                  o->election_retry_ms};
    if (fence_init(&c->fence, &fc) < 0)
        msg = "cluster: the heartbeat Lease's renewInterval must be below its duration";
    else if (o->remediation_enabled && election_init(&c->el, &ec, c->node) < 0)
        msg = "cluster: remediation.election needs retryPeriod < renewDeadline < leaseDuration";
    if (msg || cache_init(c, &c->hbs, &KIND_HB) < 0 || cache_init(c, &c->kls, &KIND_KL) < 0 ||
        cache_init(c, &c->nodes, &KIND_NODES) < 0 || cache_init(c, &c->pods, &KIND_PODS) < 0 ||
        cache_init(c, &c->slots, &KIND_SLOTS) < 0 || uv_timer_init(loop, &c->timer) < 0) {
        cache_free(&c->hbs);
        cache_free(&c->kls);
        cache_free(&c->nodes);
        cache_free(&c->pods);
        cache_free(&c->slots);
        free(c->advertise);
        free(c->device);
        free(c);
        if (msg) {
            *error = strdup(msg);
            return -EINVAL;
        }
        return -ENOMEM;
    }
    c->timer.data = c;
    metrics_setup(c, o->metrics);
    struct kube_hooks h = {
        .heartbeat_annotations = hook_annotations,
        .heartbeat_ok = hook_heartbeat_ok,
        .budget_acquire = hook_budget_acquire,
        .budget_release = hook_budget_release,
        .data = c,
    };
    kube_set_hooks(k, &h);
    if (c->device && !c->advertise)
        log_warn("fencing: a watchdog is configured but this agent advertises no address for "
                 "the roll call (no POD_IP, and the listen address is a wildcard or empty): "
                 "peers cannot ask it, so during a control-plane outage every fencing node "
                 "counts it as not answering and fences itself. Set POD_IP or a concrete "
                 "server.listen");
    log_info("cluster: remediation %s, watchdog %s, peers reach this agent at %s, "
             "maxConcurrentFailovers %u",
             o->remediation_enabled ? "on (candidate for the election)" : "off",
             c->device ? c->device : "none (this node advertises itself unfenced)",
             c->advertise ? c->advertise : "(nowhere: no advertise address)", o->max_failovers);
    uv_timer_start(&c->timer, on_timer, 0, 0);
    *out = c;
    return 0;
}

static void on_closed(uv_handle_t *h) {
    struct cluster *c = h->data;
    void (*cb)(void *) = c->close_cb;
    void *data = c->close_data;

    while (c->breqs)
        breq_free(c, c->breqs);
    while (c->helds) {
        struct held *next = c->helds->next;
        free(c->helds);
        c->helds = next;
    }
    buf_free(&c->peers_sent);
    buf_free(&c->peers_acked);
    buf_free(&c->peers_adv);
    free(c->advertise);
    free(c->device);
    free(c);
    if (cb)
        cb(data);
}

void cluster_close(struct cluster *c, void (*cb)(void *data), void *data) {
    if (!c || c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    kube_set_hooks(c->k, NULL);
    /* Disarm only what no remediator counts on: a watchdog never advertised,
     * or one whose unfencing the API server acknowledged. A node that stopped
     * feeding (fencing itself) must still fire. */
    if (c->wd && c->feeding && (!c->fenced_advertised || c->unfence_acked)) {
        disarm(c, "the agent stops");
    } else if (c->wd) {
        log_warn("fencing: watchdog %s left armed as the agent stops", watchdog_path(c->wd));
        watchdog_close(c->wd, false);
        c->wd = NULL;
    }
    for (size_t i = 0; i < c->round_n; i++)
        if (c->round[i])
            peer_cancel(c->round[i]);
    /* Our requests in flight: the reporter's client closes next and would
     * drop them without a word, and their bodies with them. */
    while (c->calls) {
        struct call *call = c->calls;
        httpc_cancel(call->h);
        call_unlink(call);
        free(call->body);
        free(call);
    }
    cache_free(&c->hbs);
    cache_free(&c->kls);
    cache_free(&c->nodes);
    cache_free(&c->pods);
    cache_free(&c->slots);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* ---- JSON ------------------------------------------------------------------------- */

void cluster_prepare_stop(struct cluster *c, void (*cb)(void *data), void *data) {
    if (!c || c->closing || c->unfencing) {
        if (cb)
            cb(data);
        return;
    }
    if (!c->wd || !c->feeding) {
        /* Not armed, or not fed (fencing itself: it must fire anyway). */
        cb(data);
        return;
    }
    c->unfencing = true;
    c->unfence_since_ms = now_ms(c);
    c->unfence_cb = cb;
    c->unfence_data = data;
    log_info("fencing: stopping: advertising this node unfenced before the watchdog is disarmed");
    kube_heartbeat_now(c->k);
    kick(c);
}

json_t *cluster_peer_json(const struct cluster *c) {
    uint64_t now = now_ms(c), ok = kube_api_ok_ms(c->k);
    bool reachable = ok && now - ok < c->o.lease_duration_ms;

    return json_pack("{s:s, s:b, s:I, s:b, s:b}", "node", c->node, "apiReachable", reachable,
                     "apiOkAgeMs", ok ? (json_int_t)(now - ok) : (json_int_t)-1, "leader",
                     leading_now(c), "fenced", c->wd && c->feeding);
}

json_t *cluster_status_json(const struct cluster *c) {
    uint64_t now = now_ms(c);
    json_t *nodes = json_array(), *root;

    FOREACH(&c->nodes.t, e) {
        struct rnode *n = (struct rnode *)e;
        if (n->verdict == REMEDY_NONE && !n->oos)
            continue;
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:b, s:b, s:b}", "node", n->e.name, "verdict",
                                        remedy_verdict_name(n->verdict), "ready", n->ready,
                                        "outOfService", n->oos, "budgetSlot", n->has_slot));
    }
    root = json_pack(
        "{s:{s:b, s:b, s:s, s:I}, s:{s:s?, s:b, s:b, s:s, s:I, s:I}, s:{s:b, s:I, s:I, s:o}, "
        "s:{s:I}}",
        "election", "enabled", c->o.remediation_enabled, "leader", leading_now(c), "holder",
        c->el.observed.holder, "transitions", (json_int_t)c->leader_transitions, "fencing",
        "watchdog", c->device, "armed", c->wd != NULL, "feeding", c->wd && c->feeding, "verdict",
        fence_verdict_name(c->fence.verdict), "leaseOkAgeMs",
        c->fence.lease_ok_known ? (json_int_t)(now - c->fence.lease_ok_ms) : (json_int_t)-1,
        "feeds", (json_int_t)c->feeds, "remediation", "quorum", c->quorum, "agentsLive",
        (json_int_t)c->agents_live, "agentsKnown", (json_int_t)c->agents_known, "nodes", nodes,
        "budget", "maxConcurrentFailovers", (json_int_t)c->o.max_failovers);
    return root;
}
