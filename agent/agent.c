/*
 * The agent's main job. main() builds one struct agent; everything else hangs
 * off it. Each configured target gets its probes (tds, process) and a health
 * state machine; probe results arrive in on_probe_result(), go through the
 * pure health engine, and every state change is fanned out once, in
 * on_transition(): a log line, metrics and sd_notify STATUS (the Kubernetes
 * reporter joins there). The HTTP server
 * reads the same state for /metrics, /healthz, /readyz and /status.
 *
 * Ownership: the agent owns its config (replaced whole on reload), its
 * targets (a list; each owns its probes, which close asynchronously), the
 * metrics registry and the server. Shutdown closes every handle and lets the
 * loop run dry, so valgrind sees nothing left behind.
 */
#include "agent.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cluster.h"
#include "httpd.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "metrics.h"
#include "process.h"
#include "tds.h"
#include "version.h"

#define AGENT_MAX_PROBES 8
/* Housekeeping: loop lag, startup-grace and crash-loop window expiry. Probe
 * timing does not depend on it; one wakeup a second keeps an idle agent at
 * well under 0.1 % of a core. */
#define TICK_INTERVAL_MS 1000
#define HEALTHZ_STALE_MS 5000

struct agent_probe {
    struct agent_target *target;
    struct probe *probe;
    const char *kind; /* static: "tds" / "process" */
    char *name;
    size_t health_index;
    struct probe_result last;
    bool have_last;
    uint64_t last_wall_ms;
    uint64_t results;
};

struct agent_target {
    struct agent *agent;
    struct agent_target *next;
    char *name;
    struct config_target *cfg;     /* borrowed from agent->config, or own_cfg */
    struct config_target *own_cfg; /* pod mode: built from the template, owned */
    char *pod_uid;                 /* pod mode: the pod this target is */
    struct kube_slot *slot;        /* the reporter's slot; NULL without Kubernetes */
    struct health_target health;
    struct agent_probe probes[AGENT_MAX_PROBES];
    size_t n_probes;
    size_t open_probes;
    uint64_t since_wall_ms;
    bool removing;
};

struct agent_metrics {
    struct metric_family *build_info;
    struct metric_family *start_time;
    struct metric_family *probe_success;
    struct metric_family *probe_duration;
    struct metric_family *probe_results;
    struct metric_family *target_state;
    struct metric_family *transitions;
    struct metric_family *restarts;
    struct metric_family *loop_lag;
    struct metric_family *reloads;
    struct metric_family *reload_ok;
    struct metric_family *http_requests;
    struct metric_family *targets;
    uint64_t http_requests_seen;
};

struct agent {
    uv_loop_t *loop;
    const struct agent_options *opts;
    struct config *config;
    struct agent_target *targets;
    struct metrics *metrics;
    struct agent_metrics m;
    struct httpd *httpd;
    struct kube *kube;
    struct cluster *cluster;
    struct kube_auth auth;
    struct notify notify;
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t tick;
    uint64_t tick_expected_ms;
    uint64_t last_tick_ms;
    uint64_t start_wall_ms;
    uint64_t start_mono_ms;
    bool handles_open; /* signals and tick initialised */
    bool notify_open;
    bool ready;
    bool stopping;
    int exit_code;
};

static const double probe_buckets_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double lag_buckets_s[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1};

static uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_ms(const struct agent *a) {
    return uv_now(a->loop);
}

/* Wall-clock time for a loop timestamp, for humans and /status. */
static uint64_t to_wall_ms(const struct agent *a, uint64_t mono_ms) {
    return a->start_wall_ms + (mono_ms - a->start_mono_ms);
}

static void format_time(uint64_t ms, char *out, size_t size) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* ---- configuration ---------------------------------------------------- */

static int replace_string(char **slot, const char *value) {
    char *copy = strdup(value);
    if (!copy)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

static const char *env_get(const char *name) {
    return getenv(name);
}

/* Flags go through the same checks as the file, with the flag as the path. */
static int apply_flags(const struct agent_options *o, struct config *c,
                       struct config_errors *errs) {
    const struct {
        const char *key, *value, *flag;
    } flags[] = {
        {"server.listen", o->listen, "--listen"},
        {"nodeName", o->node_name, "--node-name"},
        {"log.level", o->log_level, "--log-level"},
        {"log.format", o->log_format, "--log-format"},
        {"kubernetes.kubeconfig", o->kubeconfig, "--kubeconfig"},
        {"kubernetes.context", o->context, "--context"},
    };
    int ret = 0;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (!flags[i].value)
            continue;
        int r = config_set_option(c, flags[i].key, flags[i].value, flags[i].flag, errs);
        if (r == -ENOMEM)
            return r;
        if (r < 0)
            ret = r;
    }
    return ret;
}

int agent_load_config(const struct agent_options *opts, struct config **out,
                      struct config_errors *errs) {
    struct config *c = NULL;
    int r;
    *out = NULL;
    if (opts->config_path) {
        r = config_load_file(opts->config_path, &c, errs);
        if (r < 0)
            goto fail;
    } else {
        c = config_new_default();
        if (!c)
            return -ENOMEM;
    }
    r = config_apply_env(c, env_get, errs);
    if (r < 0)
        goto fail;
    r = apply_flags(opts, c, errs);
    if (r < 0)
        goto fail;
    if (!c->node_name || !c->node_name[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        if (replace_string(&c->node_name, host) < 0) {
            r = -ENOMEM;
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    config_free(c);
    return r;
}

/* ---- metrics ----------------------------------------------------------- */

static int metrics_setup(struct agent *a) {
    static const char *const tp[] = {"target", "probe"};
    static const char *const tpo[] = {"target", "probe", "outcome"};
    static const char *const ts[] = {"target", "state"};
    static const char *const tft[] = {"target", "from", "to"};
    static const char *const t[] = {"target"};
    static const char *const res[] = {"result"};
    static const char *const bi[] = {"version", "revision"};
    struct agent_metrics *m = &a->m;
    a->metrics = metrics_new();
    if (!a->metrics)
        return -ENOMEM;
    m->build_info = metrics_gauge(a->metrics, "edgewarden_build_info",
                                  "Build information; the value is always 1.", 2, bi);
    m->start_time =
        metrics_gauge(a->metrics, "edgewarden_start_time_seconds",
                      "Start time of the agent since the Unix epoch, in seconds.", 0, NULL);
    m->targets = metrics_gauge(a->metrics, "edgewarden_targets",
                               "Number of SQL Server targets the agent supervises.", 0, NULL);
    m->target_state = metrics_gauge(
        a->metrics, "edgewarden_target_state",
        "Current health state of a target: 1 for the state it is in, 0 for the others.", 2, ts);
    m->transitions = metrics_counter(a->metrics, "edgewarden_target_transitions_total",
                                     "Health state transitions of a target.", 3, tft);
    m->probe_success =
        metrics_gauge(a->metrics, "edgewarden_probe_success",
                      "Whether the last check of a probe succeeded (1) or not (0).", 2, tp);
    m->probe_duration = metrics_histogram(
        a->metrics, "edgewarden_probe_duration_seconds", "Duration of probe checks, in seconds.", 2,
        tp, probe_buckets_s, sizeof(probe_buckets_s) / sizeof(probe_buckets_s[0]));
    m->probe_results = metrics_counter(a->metrics, "edgewarden_probe_results_total",
                                       "Probe results by outcome.", 3, tpo);
    m->restarts =
        metrics_counter(a->metrics, "edgewarden_process_restarts_total",
                        "Engine restarts seen (a new sqlservr PID replaced a known one).", 1, t);
    m->loop_lag =
        metrics_histogram(a->metrics, "edgewarden_loop_lag_seconds",
                          "Delay of the agent's event loop timers past their deadline, in seconds.",
                          0, NULL, lag_buckets_s, sizeof(lag_buckets_s) / sizeof(lag_buckets_s[0]));
    m->reloads = metrics_counter(a->metrics, "edgewarden_config_reloads_total",
                                 "Configuration reloads by result (success, failure).", 1, res);
    m->reload_ok = metrics_gauge(
        a->metrics, "edgewarden_config_last_reload_successful",
        "Whether the last configuration reload succeeded (1) or was rejected (0).", 0, NULL);
    m->http_requests =
        metrics_counter(a->metrics, "edgewarden_http_requests_total",
                        "HTTP requests served by the agent's metrics and health server.", 0, NULL);
    if (!m->build_info || !m->start_time || !m->targets || !m->target_state || !m->transitions ||
        !m->probe_success || !m->probe_duration || !m->probe_results || !m->restarts ||
        !m->loop_lag || !m->reloads || !m->reload_ok || !m->http_requests)
        return -ENOMEM;
    const char *bv[] = {EDGEWARDEN_VERSION, EDGEWARDEN_GIT};
    metric_set(m->build_info, bv, 1);
    metric_set(m->start_time, NULL, (double)a->start_wall_ms / 1000.0);
    metric_set(m->reload_ok, NULL, 1);
    const char *ok[] = {"success"};
    const char *bad[] = {"failure"};
    metric_add(m->reloads, ok, 0);
    metric_add(m->reloads, bad, 0);
    metric_add(m->http_requests, NULL, 0);
    return 0;
}

static void metrics_target_state(struct agent *a, const struct agent_target *t) {
    for (int s = 0; s < HEALTH_STATE_COUNT; s++) {
        const char *lv[] = {t->name, health_state_name((enum health_state)s)};
        metric_set(a->m.target_state, lv, t->health.state == (enum health_state)s ? 1 : 0);
    }
}

static void metrics_forget_target(struct agent *a, const char *name) {
    struct metric_family *per_target[] = {a->m.target_state,  a->m.transitions,
                                          a->m.probe_success, a->m.probe_duration,
                                          a->m.probe_results, a->m.restarts};
    for (size_t i = 0; i < sizeof(per_target) / sizeof(per_target[0]); i++)
        metric_remove_matching(per_target[i], 0, name);
}

/* ---- transitions ------------------------------------------------------- */

static void update_notify_status(struct agent *a) {
    struct buf b;
    buf_init(&b, 0);
    size_t n = 0;
    for (struct agent_target *t = a->targets; t; t = t->next) {
        if (t->removing)
            continue;
        buf_printf(&b, "%s%s: %s", n++ ? ", " : "", t->name, health_state_name(t->health.state));
    }
    notify_status(&a->notify, b.data ? b.data : "no targets");
    buf_free(&b);
}

/* Every change of a target's health goes out from here once: a new state, or
 * a new reason within the same state (from == to), such as a failed engine
 * that now crash-loops — that one changes what the cluster must do. */
static void on_transition(struct agent *a, struct agent_target *t,
                          const struct health_transition *tr) {
    const char *from = health_state_name(tr->from);
    const char *to = health_state_name(tr->to);
    kube_slot_health(t->slot, tr->to, tr->reason, tr->message);
    if (tr->from == tr->to) {
        struct log_field f[] = {
            {"target", t->name},
            {"state", to},
            {"reason", tr->reason},
            {"node", a->config->node_name},
        };
        log_fields(tr->to == HEALTH_FAILED ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, 0, f,
                   sizeof(f) / sizeof(f[0]), "target %s still %s, reason now %s: %s", t->name, to,
                   tr->reason, tr->message);
        return;
    }
    t->since_wall_ms = to_wall_ms(a, tr->at_ms);
    struct log_field fields[] = {
        {"target", t->name},
        {"from", from},
        {"state", to},
        {"reason", tr->reason},
        {"node", a->config->node_name},
    };
    enum log_level level = tr->to == HEALTH_FAILED ? LOG_LEVEL_WARN : LOG_LEVEL_INFO;
    log_fields(level, 0, fields, sizeof(fields) / sizeof(fields[0]), "target %s %s -> %s (%s): %s",
               t->name, from, to, tr->reason, tr->message);
    const char *lv[] = {t->name, from, to};
    metric_add(a->m.transitions, lv, 1);
    metrics_target_state(a, t);
    update_notify_status(a);
}

/* After a health call that reported no transition: a new reason within a
 * failed state still goes out (health reports state changes only). */
static void check_reason(struct agent *a, struct agent_target *t, const char *reason_before,
                         uint64_t now) {
    const struct health_target *h = &t->health;
    if (h->state != HEALTH_FAILED || !h->reason || !reason_before ||
        strcmp(h->reason, reason_before) == 0)
        return;
    struct health_transition tr = {
        .from = h->state, .to = h->state, .reason = h->reason, .at_ms = now};
    snprintf(tr.message, sizeof(tr.message), "%s", h->message);
    on_transition(a, t, &tr);
}

static void on_probe_result(struct probe *p, const struct probe_result *r) {
    struct agent_probe *ap = p->data;
    struct agent_target *t = ap->target;
    struct agent *a = t->agent;
    struct health_transition tr;
    uint64_t now = now_ms(a);

    ap->last = *r;
    ap->have_last = true;
    ap->last_wall_ms = wall_ms();
    ap->results++;

    const char *lv[] = {t->name, ap->name};
    const char *lvo[] = {t->name, ap->name, probe_outcome_name(r->outcome)};
    metric_set(a->m.probe_success, lv, probe_outcome_is_success(r->outcome) ? 1 : 0);
    metric_add(a->m.probe_results, lvo, 1);
    if (!r->unsolicited)
        metric_observe(a->m.probe_duration, lv, (double)r->latency_us / 1e6);

    if (log_enabled(LOG_LEVEL_DEBUG)) {
        struct log_field f[] = {
            {"target", t->name}, {"probe", ap->name}, {"outcome", probe_outcome_name(r->outcome)}};
        log_fields(LOG_LEVEL_DEBUG, 0, f, 3, "probe %s/%s: %s in %.3f ms%s%s", t->name, ap->name,
                   probe_outcome_name(r->outcome), (double)r->latency_us / 1000.0,
                   r->detail[0] ? ": " : "", r->detail);
    }

    const char *reason_before = t->health.reason;
    bool changed = false;
    if (r->restarted) {
        const char *tv[] = {t->name};
        metric_add(a->m.restarts, tv, 1);
        struct log_field f[] = {{"target", t->name}, {"probe", ap->name}};
        log_fields(LOG_LEVEL_INFO, 0, f, 2, "target %s: engine restarted, new pid %d", t->name,
                   r->pid);
        if (health_restart(&t->health, now, &tr)) {
            on_transition(a, t, &tr);
            changed = true;
        }
    }
    if (health_observe(&t->health, ap->health_index, r->outcome, r->detail, now, &tr)) {
        on_transition(a, t, &tr);
        changed = true;
    }
    if (!changed)
        check_reason(a, t, reason_before, now);
}

/* ---- targets ----------------------------------------------------------- */

static void target_config_free(struct config_target *ct) {
    if (!ct)
        return;
    for (size_t i = 0; i < ct->n_probes; i++)
        free(ct->probes[i].name);
    free(ct->probes);
    free(ct->name);
    free(ct->address);
    free(ct->process_comm);
    free(ct->process_cgroup);
    free(ct->process_unit);
    free(ct);
}

static void target_free(struct agent_target *t) {
    for (size_t i = 0; i < t->n_probes; i++)
        free(t->probes[i].name);
    target_config_free(t->own_cfg);
    free(t->pod_uid);
    free(t->name);
    free(t);
}

static void on_probe_closed(struct probe *p) {
    struct agent_probe *ap = p->data;
    struct agent_target *t = ap->target;
    ap->probe = NULL;
    if (--t->open_probes == 0 && t->removing)
        target_free(t);
}

static struct probe *make_probe(struct agent *a, const struct config_target *ct,
                                const struct config_probe *cp) {
    if (cp->kind == CONFIG_PROBE_TDS)
        return tds_probe_new(a->loop, cp->name, ct->address, ct->port, &cp->timing);
    struct process_match m = {
        .comm = ct->process_comm,
        .cgroup = ct->process_cgroup && ct->process_cgroup[0] ? ct->process_cgroup : NULL,
        .unit = ct->process_unit && ct->process_unit[0] ? ct->process_unit : NULL,
        /* 0 in the config turns the check off; the probe reads 0 as "default". */
        .stuck_after_ms = cp->stuck_after_ms ? cp->stuck_after_ms : UINT64_MAX,
    };
    return process_probe_new(a->loop, cp->name, &m, &cp->timing);
}

/* Start a target for ct (borrowed from the config, or owned when own is
 * true: then it is freed with the target, also on failure). */
static int target_start_full(struct agent *a, struct config_target *ct, bool own,
                             const struct kube_pod_info *pod) {
    struct agent_target *t = calloc(1, sizeof(*t));
    if (!t) {
        if (own)
            target_config_free(ct);
        return -ENOMEM;
    }
    t->agent = a;
    t->cfg = ct;
    t->own_cfg = own ? ct : NULL;
    if (pod && !(t->pod_uid = strdup(pod->uid)))
        goto nomem;
    t->name = strdup(ct->name);
    if (!t->name)
        goto nomem;
    struct health_policy hp = {
        .startup_grace_ms = a->config->startup_grace_ms,
        .crash_loop_restarts = a->config->crash_loop_restarts,
        .crash_loop_window_ms = a->config->crash_loop_window_ms,
    };
    health_target_init(&t->health, &hp, now_ms(a));
    t->since_wall_ms = wall_ms();
    for (size_t i = 0; i < ct->n_probes && i < AGENT_MAX_PROBES; i++) {
        const struct config_probe *cp = &ct->probes[i];
        struct agent_probe *ap = &t->probes[t->n_probes];
        ap->target = t;
        ap->kind = cp->kind == CONFIG_PROBE_TDS ? "tds" : "process";
        ap->name = strdup(cp->name);
        if (!ap->name)
            goto nomem;
        int idx = health_add_probe(&t->health, cp->name, cp->timing.rise, cp->timing.fall);
        if (idx < 0) {
            free(ap->name);
            ap->name = NULL;
            target_free(t);
            return idx;
        }
        ap->health_index = (size_t)idx;
        t->n_probes++;
    }
    /* Start the probes only once the target is fully built. */
    for (size_t i = 0; i < t->n_probes; i++) {
        struct agent_probe *ap = &t->probes[i];
        ap->probe = make_probe(a, ct, &ct->probes[i]);
        if (!ap->probe) {
            log_error("target %s: cannot create probe %s", t->name, ap->name);
            continue;
        }
        t->open_probes++;
        int r = probe_start(ap->probe, on_probe_result, ap);
        if (r < 0)
            log_error_errno(r, "target %s: start probe %s", t->name, ap->name);
    }
    if (a->kube) {
        t->slot = kube_slot_new(a->kube, t->name, pod);
        if (!t->slot)
            log_error("target %s: out of memory: not reported to Kubernetes", t->name);
    }
    t->next = a->targets;
    a->targets = t;
    metrics_target_state(a, t);
    struct log_field f[] = {{"target", t->name}};
    log_fields(LOG_LEVEL_INFO, 0, f, 1, "supervising target %s (%s:%u, process %s, %zu probes)",
               t->name, ct->address, ct->port, ct->process_comm ? ct->process_comm : "sqlservr",
               t->n_probes);
    return 0;
nomem:
    target_free(t);
    return -ENOMEM;
}

static int target_start(struct agent *a, struct config_target *ct) {
    return target_start_full(a, ct, false, NULL);
}

/* The target leaves: its slot winds down (quarantine), its probes close. */
static void target_stop(struct agent_target *t) {
    kube_slot_gone(t->slot);
    t->slot = NULL;
    t->removing = true;
    metrics_forget_target(t->agent, t->name);
    if (t->open_probes == 0) {
        target_free(t);
        return;
    }
    for (size_t i = 0; i < t->n_probes; i++) {
        struct probe *p = t->probes[i].probe;
        if (p)
            probe_close(p, on_probe_closed);
    }
}

/* ---- pod mode ------------------------------------------------------------ */

/* A target for a pod: the first configured target is the template (port,
 * process name, probes); the pod IP is the tds address and the pod UID the
 * process's cgroup match. */
static struct config_target *pod_target_config(const struct config_target *tpl,
                                               const struct kube_pod_info *pod) {
    struct config_target *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return NULL;
    ct->port = tpl->port;
    ct->n_probes = tpl->n_probes;
    ct->probes = calloc(tpl->n_probes ? tpl->n_probes : 1, sizeof(*ct->probes));
    if (asprintf(&ct->name, "%s/%s", pod->namespace, pod->name) < 0)
        ct->name = NULL;
    ct->address = strdup(pod->ip);
    ct->process_comm = strdup(tpl->process_comm);
    ct->process_cgroup = strdup(pod->uid);
    ct->process_unit = strdup("");
    bool ok = ct->probes && ct->name && ct->address && ct->process_comm && ct->process_cgroup &&
              ct->process_unit;
    for (size_t i = 0; ok && i < tpl->n_probes; i++) {
        ct->probes[i] = tpl->probes[i];
        ct->probes[i].name = strdup(tpl->probes[i].name);
        ok = ct->probes[i].name != NULL;
        if (!ok)
            ct->n_probes = i;
    }
    if (!ok) {
        target_config_free(ct);
        return NULL;
    }
    return ct;
}

static void on_pod_added(const struct kube_pod_info *pod, void *data) {
    struct agent *a = data;
    if (a->stopping || a->config->n_targets == 0)
        return;
    struct config_target *ct = pod_target_config(&a->config->targets[0], pod);
    int r = ct ? target_start_full(a, ct, true, pod) : -ENOMEM;
    if (r < 0)
        log_error_errno(r, "cannot supervise pod %s/%s", pod->namespace, pod->name);
    else
        update_notify_status(a);
}

static void on_pod_removed(const char *uid, void *data) {
    struct agent *a = data;
    for (struct agent_target **pp = &a->targets; *pp; pp = &(*pp)->next) {
        struct agent_target *t = *pp;
        if (t->removing || !t->pod_uid || strcmp(t->pod_uid, uid) != 0)
            continue;
        *pp = t->next;
        log_info("target %s: its pod left this node (or stopped running); no longer supervised",
                 t->name);
        target_stop(t);
        update_notify_status(a);
        return;
    }
}

static bool same_string(const char *x, const char *y) {
    return strcmp(x ? x : "", y ? y : "") == 0;
}

/* A target whose probing config is unchanged keeps running across a reload,
 * with its health history; anything else is replaced. */
static bool same_target(const struct config_target *x, const struct config_target *y) {
    if (!same_string(x->name, y->name) || !same_string(x->address, y->address) ||
        x->port != y->port || !same_string(x->process_comm, y->process_comm) ||
        !same_string(x->process_cgroup, y->process_cgroup) ||
        !same_string(x->process_unit, y->process_unit) || x->n_probes != y->n_probes)
        return false;
    for (size_t i = 0; i < x->n_probes; i++) {
        const struct config_probe *p = &x->probes[i], *q = &y->probes[i];
        if (p->kind != q->kind || !same_string(p->name, q->name) ||
            p->stuck_after_ms != q->stuck_after_ms ||
            memcmp(&p->timing, &q->timing, sizeof(p->timing)) != 0)
            return false;
    }
    return true;
}

static bool same_health_policy(const struct config *x, const struct config *y) {
    return x->startup_grace_ms == y->startup_grace_ms &&
           x->crash_loop_restarts == y->crash_loop_restarts &&
           x->crash_loop_window_ms == y->crash_loop_window_ms;
}

/* Sections read once at start (the reporter is not rebuilt on reload). */
static bool same_kubernetes(const struct config *x, const struct config *y) {
    const struct config_kubernetes *p = &x->kubernetes, *q = &y->kubernetes;
    return memcmp(&x->policy, &y->policy, sizeof(x->policy)) == 0 && p->enabled == q->enabled &&
           same_string(p->kubeconfig, q->kubeconfig) && same_string(p->context, q->context) &&
           p->allow_insecure == q->allow_insecure && same_string(p->namespace, q->namespace) &&
           p->qps == q->qps && p->burst == q->burst &&
           p->request_timeout_ms == q->request_timeout_ms &&
           p->lease_duration_ms == q->lease_duration_ms && p->lease_renew_ms == q->lease_renew_ms &&
           same_string(p->pod_selector, q->pod_selector);
}

/* Pod mode: targets come from the pods on this node, not from the config. */
static bool pod_mode(const struct agent *a) {
    return a->kube && a->config->kubernetes.pod_selector[0];
}

/* ---- HTTP -------------------------------------------------------------- */

static void on_get_metrics(const struct http_request *req, struct httpd_response *resp,
                           void *data) {
    struct agent *a = data;
    struct httpd_stats st;
    httpd_get_stats(a->httpd, &st);
    if (st.requests > a->m.http_requests_seen) {
        metric_add(a->m.http_requests, NULL, (double)(st.requests - a->m.http_requests_seen));
        a->m.http_requests_seen = st.requests;
    }
    size_t n = 0;
    for (struct agent_target *t = a->targets; t; t = t->next)
        n += !t->removing;
    metric_set(a->m.targets, NULL, (double)n);
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (metrics_render(a->metrics, &resp->body) < 0) {
        buf_reset(&resp->body);
        resp->status = 500;
        buf_puts(&resp->body, "cannot render metrics\n");
        return;
    }
    resp->status = 200;
}

static void on_get_healthz(const struct http_request *req, struct httpd_response *resp,
                           void *data) {
    struct agent *a = data;
    uint64_t age = now_ms(a) - a->last_tick_ms;
    resp->content_type = "text/plain; charset=utf-8";
    if (age > HEALTHZ_STALE_MS) {
        resp->status = 503;
        buf_printf(&resp->body, "event loop stalled: last tick %llu ms ago\n",
                   (unsigned long long)age);
        return;
    }
    resp->status = 200;
    buf_puts(&resp->body, "ok\n");
}

static void on_get_readyz(const struct http_request *req, struct httpd_response *resp, void *data) {
    struct agent *a = data;
    const char *why = NULL;
    resp->content_type = "text/plain; charset=utf-8";
    if (!a->ready || a->stopping)
        why = "starting or stopping";
    else if (a->kube)
        kube_api_ok(a->kube, &why);
    resp->status = why ? 503 : 200;
    if (why)
        buf_printf(&resp->body, "not ready: %s\n", why);
    else
        buf_puts(&resp->body, "ready\n");
}

static json_t *probe_json(const struct agent_probe *ap) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    const struct health_target *h = &ap->target->health;
    json_object_set_new(o, "name", json_string(ap->name));
    json_object_set_new(o, "kind", json_string(ap->kind));
    json_object_set_new(o, "passing", json_boolean(health_probe_passing(h, ap->health_index)));
    json_object_set_new(o, "consecutive_successes",
                        json_integer(health_probe_successes(h, ap->health_index)));
    json_object_set_new(o, "consecutive_failures",
                        json_integer(health_probe_failures(h, ap->health_index)));
    json_object_set_new(o, "checks", json_integer((json_int_t)ap->results));
    if (!ap->have_last) {
        json_object_set_new(o, "outcome", json_null());
        return o;
    }
    const struct probe_result *r = &ap->last;
    char at[40];
    format_time(ap->last_wall_ms, at, sizeof(at));
    json_object_set_new(o, "outcome", json_string(probe_outcome_name(r->outcome)));
    json_object_set_new(o, "latency_ms", json_real((double)r->latency_us / 1000.0));
    json_object_set_new(o, "at", json_string(at));
    json_object_set_new(o, "detail", json_string(r->detail));
    if (r->server_version[0])
        json_object_set_new(o, "server_version", json_string(r->server_version));
    if (r->encryption >= 0)
        json_object_set_new(o, "encryption", json_string(tds_encryption_name(r->encryption)));
    if (r->pid > 0)
        json_object_set_new(o, "pid", json_integer(r->pid));
    return o;
}

static json_t *status_json(struct agent *a) {
    json_t *root = json_object();
    json_t *targets = json_array();
    if (!root || !targets) {
        json_decref(root);
        json_decref(targets);
        return NULL;
    }
    char started[40];
    format_time(a->start_wall_ms, started, sizeof(started));
    json_object_set_new(root, "node", json_string(a->config->node_name));
    json_object_set_new(root, "version", json_string(EDGEWARDEN_VERSION));
    json_object_set_new(root, "started", json_string(started));
    json_object_set_new(root, "ready", json_boolean(a->ready));
    /* Targets are kept newest-first; show them in configuration order, then
     * the pods' (pod mode). */
    for (size_t i = 0; i <= a->config->n_targets; i++) {
        for (struct agent_target *t = a->targets; t; t = t->next) {
            if (t->removing)
                continue;
            if (i < a->config->n_targets
                    ? t->own_cfg || strcmp(t->name, a->config->targets[i].name) != 0
                    : !t->own_cfg)
                continue;
            json_t *o = json_object();
            json_t *probes = json_array();
            char since[40];
            format_time(t->since_wall_ms, since, sizeof(since));
            json_object_set_new(o, "name", json_string(t->name));
            json_object_set_new(o, "state", json_string(health_state_name(t->health.state)));
            json_object_set_new(o, "reason", json_string(t->health.reason ? t->health.reason : ""));
            json_object_set_new(o, "message", json_string(t->health.message));
            json_object_set_new(o, "since", json_string(since));
            json_object_set_new(o, "restarts_in_window",
                                json_integer(health_restarts_in_window(&t->health, now_ms(a))));
            json_object_set_new(o, "transitions", json_integer((json_int_t)t->health.transitions));
            for (size_t k = 0; k < t->n_probes; k++)
                json_array_append_new(probes, probe_json(&t->probes[k]));
            json_object_set_new(o, "probes", probes);
            json_array_append_new(targets, o);
        }
    }
    json_object_set_new(root, "targets", targets);
    if (a->kube)
        json_object_set_new(root, "kubernetes", kube_status_json(a->kube));
    if (a->cluster)
        json_object_set_new(root, "cluster", cluster_status_json(a->cluster));
    return root;
}

static void on_get_status(const struct http_request *req, struct httpd_response *resp, void *data) {
    struct agent *a = data;
    json_t *s = status_json(a);
    char *text = s ? json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(s);
    if (!text) {
        resp->status = 500;
        buf_puts(&resp->body, "cannot render status\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    buf_puts(&resp->body, text);
    buf_puts(&resp->body, "\n");
    free(text);
}

/* GET /peer: the fencing roll call's question (docs/node-loss.md). Without
 * the cluster part (no Kubernetes) the agent does not reach an API server. */
static void on_get_peer(const struct http_request *req, struct httpd_response *resp, void *data) {
    struct agent *a = data;
    json_t *j = a->cluster ? cluster_peer_json(a->cluster)
                           : json_pack("{s:s, s:b, s:I, s:b, s:b}", "node", a->config->node_name,
                                       "apiReachable", 0, "apiOkAgeMs", (json_int_t)-1, "leader", 0,
                                       "fenced", 0);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    (void)req;
    json_decref(j);
    if (!text) {
        resp->status = 500;
        buf_puts(&resp->body, "cannot render\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    buf_puts(&resp->body, text);
    free(text);
}

static int http_start(struct agent *a, const char *listen, struct httpd **out) {
    struct httpd *s = NULL;
    *out = NULL;
    if (!listen || !listen[0])
        return 0;
    int r = httpd_new(a->loop, listen, &s);
    if (r < 0)
        return r;
    if ((r = httpd_route(s, "/metrics", on_get_metrics, a)) < 0 ||
        (r = httpd_route(s, "/healthz", on_get_healthz, a)) < 0 ||
        (r = httpd_route(s, "/readyz", on_get_readyz, a)) < 0 ||
        (r = httpd_route(s, "/status", on_get_status, a)) < 0 ||
        (r = httpd_route(s, "/peer", on_get_peer, a)) < 0) {
        httpd_close(s, NULL, NULL);
        return r;
    }
    *out = s;
    return 0;
}

/* ---- reload and shutdown ----------------------------------------------- */

static void reload_failed(struct agent *a) {
    const char *bad[] = {"failure"};
    metric_add(a->m.reloads, bad, 1);
    metric_set(a->m.reload_ok, NULL, 0);
}

static void reload(struct agent *a) {
    struct config *c = NULL;
    struct config_errors errs = {0};
    notify_reloading(&a->notify);
    int r = agent_load_config(a->opts, &c, &errs);
    if (r < 0) {
        for (size_t i = 0; i < errs.n; i++)
            log_error("reload rejected: %s%s%s", errs.items[i].path ? errs.items[i].path : "",
                      errs.items[i].path && errs.items[i].path[0] ? ": " : "",
                      errs.items[i].message);
        if (errs.n == 0)
            log_error_errno(r, "reload rejected: cannot load %s",
                            a->opts->config_path ? a->opts->config_path : "defaults");
        log_error("keeping the running configuration; fix the file and send SIGHUP again");
        reload_failed(a);
        goto out;
    }
    struct httpd *new_httpd = NULL;
    bool listen_changed = !same_string(c->listen, a->config->listen);
    if (listen_changed) {
        r = http_start(a, c->listen, &new_httpd);
        if (r < 0) {
            log_error_errno(r, "reload rejected: cannot listen on %s; keeping %s", c->listen,
                            a->config->listen);
            reload_failed(a);
            goto out;
        }
    }
    log_setup((enum log_level)c->log_level, (enum log_format)c->log_format);
    bool policy_same = same_health_policy(c, a->config);
    /* Keep unchanged targets, re-pointed at the new config; stop the rest. */
    for (struct agent_target **pp = &a->targets; *pp;) {
        struct agent_target *t = *pp;
        struct config_target *match = NULL;
        for (size_t i = 0; !t->removing && !t->own_cfg && i < c->n_targets; i++)
            if (policy_same && same_target(t->cfg, &c->targets[i]))
                match = &c->targets[i];
        /* Pod targets follow their pods: a new template applies to new pods. */
        if (match || t->removing || t->own_cfg) {
            t->cfg = match ? match : t->cfg;
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        log_info("target %s removed or changed by reload", t->name);
        target_stop(t);
    }
    if (!same_kubernetes(c, a->config))
        log_warn("the kubernetes and policy sections changed: they take effect when the agent "
                 "restarts (systemctl restart edgewarden, or roll the DaemonSet)");
    struct config *old = a->config;
    a->config = c;
    c = NULL;
    for (size_t i = 0; !pod_mode(a) && i < a->config->n_targets; i++) {
        bool running = false;
        for (struct agent_target *t = a->targets; t; t = t->next)
            running |= t->cfg == &a->config->targets[i];
        if (!running && (r = target_start(a, &a->config->targets[i])) < 0)
            log_error_errno(r, "target %s", a->config->targets[i].name);
    }
    config_free(old);
    if (listen_changed) {
        if (a->httpd) {
            /* The counter is cumulative across servers: take the old one's
             * last requests, then count the new one from zero. */
            struct httpd_stats st;
            httpd_get_stats(a->httpd, &st);
            if (st.requests > a->m.http_requests_seen)
                metric_add(a->m.http_requests, NULL,
                           (double)(st.requests - a->m.http_requests_seen));
            httpd_close(a->httpd, NULL, NULL);
        }
        a->m.http_requests_seen = 0;
        a->httpd = new_httpd;
        log_info("serving HTTP on %s", a->config->listen[0] ? a->config->listen : "(disabled)");
    }
    const char *ok[] = {"success"};
    metric_add(a->m.reloads, ok, 1);
    metric_set(a->m.reload_ok, NULL, 1);
    log_info("configuration reloaded: %zu targets", a->config->n_targets);
out:
    config_free(c);
    config_errors_free(&errs);
    notify_ready(&a->notify, "configuration reloaded");
    update_notify_status(a);
}

static void on_closed_handle(uv_handle_t *h) {
}

/* The second half of stop(), once the cluster part has settled its watchdog. */
static void stop_finish(void *data) {
    struct agent *a = data;

    if (a->kube) {
        /* Stopping is not the targets leaving the node: what the API shows
         * stays as it is, for the next agent to reconcile with. */
        for (struct agent_target *t = a->targets; t; t = t->next)
            t->slot = NULL;
        /* The cluster part first: it disarms the watchdog (a clean stop is
         * not a partition) and uses the reporter's client. */
        cluster_close(a->cluster, NULL, NULL);
        a->cluster = NULL;
        kube_close(a->kube, NULL, NULL);
        a->kube = NULL;
    }
    while (a->targets) {
        struct agent_target *t = a->targets;
        a->targets = t->next;
        target_stop(t);
    }
    if (a->httpd) {
        httpd_close(a->httpd, NULL, NULL);
        a->httpd = NULL;
    }
    if (a->handles_open) {
        uv_close((uv_handle_t *)&a->sighup, on_closed_handle);
        uv_close((uv_handle_t *)&a->sigterm, on_closed_handle);
        uv_close((uv_handle_t *)&a->sigint, on_closed_handle);
        uv_close((uv_handle_t *)&a->tick, on_closed_handle);
    }
    if (a->notify_open)
        notify_close(&a->notify, NULL);
}

static void stop(struct agent *a) {
    if (a->stopping)
        return;
    a->stopping = true;
    notify_stopping(&a->notify);
    log_info("stopping");
    /* With an armed watchdog, first tell the API server this node is no
     * longer fenced (bounded wait); the probes and the reporter run on
     * meanwhile. */
    if (a->cluster)
        cluster_prepare_stop(a->cluster, stop_finish, a);
    else
        stop_finish(a);
}

static void on_signal(uv_signal_t *s, int signum) {
    struct agent *a = s->data;
    if (signum == SIGHUP) {
        log_info("SIGHUP: reloading %s",
                 a->opts->config_path ? a->opts->config_path : "the embedded default");
        reload(a);
        return;
    }
    log_info("%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stop(a);
}

static void on_tick(uv_timer_t *timer) {
    struct agent *a = timer->data;
    uint64_t now = now_ms(a);
    uint64_t lag = now > a->tick_expected_ms ? now - a->tick_expected_ms : 0;
    /* uv_now() is cached per loop turn; measure the lag against real time. */
    uint64_t real = uv_hrtime() / 1000000;
    uint64_t cached_age = real > now ? real - now : 0;
    metric_observe(a->m.loop_lag, NULL, (double)(lag + cached_age) / 1000.0);
    a->last_tick_ms = now;
    a->tick_expected_ms = now + TICK_INTERVAL_MS;
    struct health_transition tr;
    for (struct agent_target *t = a->targets; t; t = t->next) {
        if (t->removing)
            continue;
        const char *reason_before = t->health.reason;
        if (health_tick(&t->health, now, &tr))
            on_transition(a, t, &tr);
        else
            check_reason(a, t, reason_before, now);
    }
}

/* ---- Kubernetes --------------------------------------------------------- */

/* Where peers reach this agent: $POD_IP (the DaemonSet's downward API) with
 * the listen port, else the listen address when it names one. */
static void advertise_address(const struct agent *a, char *out, size_t size) {
    const char *listen = a->config->listen, *pod_ip = getenv("POD_IP");
    const char *colon = strrchr(listen, ':');

    out[0] = '\0';
    if (!listen[0] || !colon)
        return;
    if (pod_ip && pod_ip[0]) {
        if (strchr(pod_ip, ':'))
            snprintf(out, size, "[%s]%s", pod_ip, colon);
        else
            snprintf(out, size, "%s%s", pod_ip, colon);
        return;
    }
    if (!strncmp(listen, "0.0.0.0:", 8) || !strncmp(listen, "[::]:", 5) || listen[0] == ':')
        return;
    snprintf(out, size, "%s", listen);
}

/* The cluster-wide part: fencing, election, remediation, failover budget. */
static int cluster_start(struct agent *a) {
    const struct config *cf = a->config;
    char advertise[KUBE_JSON_ADDRESS_SIZE], *err = NULL;

    advertise_address(a, advertise, sizeof(advertise));
    struct cluster_options o = {
        .advertise_address = advertise,
        .lease_duration_ms = cf->kubernetes.lease_duration_ms,
        .lease_renew_ms = cf->kubernetes.lease_renew_ms,
        .remediation_enabled = cf->remediation.enabled,
        .election_lease_ms = cf->remediation.election_lease_duration_ms,
        .election_renew_deadline_ms = cf->remediation.election_renew_deadline_ms,
        .election_retry_ms = cf->remediation.election_retry_period_ms,
        .node_lease_stale_ms = cf->remediation.node_lease_stale_after_ms,
        .fence_margin_ms = cf->remediation.fence_margin_ms,
        .assume_dead_after_ms = cf->remediation.assume_dead_after_ms,
        .watchdog_device = cf->fencing.watchdog_device,
        .watchdog_timeout_ms = cf->fencing.watchdog_timeout_ms,
        .peer_timeout_ms = cf->fencing.peer_timeout_ms,
        .max_failovers = cf->policy.max_concurrent_failovers,
        .failover_timeout_ms = cf->policy.failover_timeout_ms,
        .budget_retry_ms = cf->policy.budget_retry_ms,
        .metrics = a->metrics,
    };
    int r = cluster_new(a->loop, a->kube, &o, &a->cluster, &err);
    if (r < 0) {
        log_error("%s", err ? err : strerror(-r));
        free(err);
        if (r == -EINVAL)
            a->exit_code = 2;
    }
    return r;
}

/* Credentials, then the reporter. A configuration that can never work (no
 * credentials, a bad kubeconfig) is exit code 2, as a bad config file is. */
static int kube_start(struct agent *a) {
    const struct config_kubernetes *kc = &a->config->kubernetes;
    struct kube_auth_options ao = {
        .kubeconfig_path = kc->kubeconfig[0] ? kc->kubeconfig : NULL,
        .context = kc->context[0] ? kc->context : NULL,
        .allow_insecure = kc->allow_insecure,
        .getenv_fn = env_get,
        .sa_dir = getenv("EDGEWARDEN_SERVICEACCOUNT_DIR"),
    };
    char *err = NULL;
    int r = kube_auth_resolve(&ao, &a->auth, &err);
    if (r < 0) {
        log_error("kubernetes: %s", err ? err : strerror(-r));
        log_error("kubernetes.enabled is true but the agent has no usable credentials: set "
                  "kubernetes.kubeconfig (or --kubeconfig, or $KUBECONFIG), or run it in a pod "
                  "with a service account (docs/kubernetes.md)");
        free(err);
        a->exit_code = 2;
        return r;
    }
    const char *ns = kc->namespace[0]                            ? kc->namespace
                     : a->auth.namespace && a->auth.namespace[0] ? a->auth.namespace
                                                                 : "edgewarden";
    const struct config_policy *cp = &a->config->policy;
    struct kube_options o = {
        .node_name = a->config->node_name,
        .namespace = ns,
        .auth = &a->auth,
        .qps = kc->qps,
        .burst = kc->burst,
        .request_timeout_ms = kc->request_timeout_ms,
        .lease_duration_ms = kc->lease_duration_ms,
        .lease_renew_ms = kc->lease_renew_ms,
        .pod_selector = kc->pod_selector,
        .policy =
            {
                .relocate_after_ms = cp->relocate_after_ms,
                .restart_allowance_ms = cp->restart_allowance_ms,
                .budget_retry_ms = cp->budget_retry_ms,
                .quarantine_ms = cp->quarantine_ms,
                .event_dedup_window_ms = cp->event_dedup_window_ms,
                .evict_enabled = cp->evict_enabled,
                .evict_after_ms = cp->evict_after_ms,
                .cordon_enabled = cp->cordon_enabled,
                .cordon_after_ms = cp->cordon_after_ms,
            },
        .metrics = a->metrics,
        .pod_added = on_pod_added,
        .pod_removed = on_pod_removed,
        .data = a,
    };
    r = kube_new(a->loop, &o, &a->kube, &err);
    if (r < 0) {
        log_error("kubernetes: %s", err ? err : strerror(-r));
        free(err);
        if (r == -EINVAL)
            a->exit_code = 2;
        return r;
    }
    if ((r = cluster_start(a)) < 0)
        return r;
    struct log_field f[] = {{"node", a->config->node_name}, {"namespace", ns}};
    log_fields(LOG_LEVEL_INFO, 0, f, 2,
               "kubernetes: reporting to %s as %s (%s mode%s%s), Lease namespace %s",
               a->auth.server, a->auth.origin, kc->pod_selector[0] ? "pod" : "static",
               kc->pod_selector[0] ? ", pods " : "", kc->pod_selector, ns);
    return 0;
}

/* ---- main -------------------------------------------------------------- */

static int agent_start(struct agent *a) {
    int r;
    a->start_wall_ms = wall_ms();
    a->start_mono_ms = now_ms(a);
    /* The loop's own handles first: stop() closes them on every exit path.
     * Initialising a signal or timer handle does not fail on Linux. */
    uv_signal_init(a->loop, &a->sighup);
    uv_signal_init(a->loop, &a->sigterm);
    uv_signal_init(a->loop, &a->sigint);
    uv_timer_init(a->loop, &a->tick);
    a->sighup.data = a->sigterm.data = a->sigint.data = a->tick.data = a;
    a->handles_open = true;
    if ((r = notify_init(&a->notify, a->loop)) < 0)
        return log_error_errno(r, "sd_notify");
    a->notify_open = true;
    if ((r = metrics_setup(a)) < 0)
        return log_error_errno(r, "metrics registry");
    uv_signal_start(&a->sighup, on_signal, SIGHUP);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    a->last_tick_ms = now_ms(a);
    a->tick_expected_ms = a->last_tick_ms + TICK_INTERVAL_MS;
    uv_timer_start(&a->tick, on_tick, TICK_INTERVAL_MS, TICK_INTERVAL_MS);

    r = http_start(a, a->config->listen, &a->httpd);
    if (r < 0) {
        log_error_errno(r,
                        "cannot serve HTTP on %s; set server.listen or --listen to a free address",
                        a->config->listen);
        return r;
    }
    if (a->httpd)
        log_info("serving /metrics /healthz /readyz /status on %s (port %d)", a->config->listen,
                 httpd_port(a->httpd));
    if (a->config->kubernetes.enabled && (r = kube_start(a)) < 0)
        return r;
    for (size_t i = 0; !pod_mode(a) && i < a->config->n_targets; i++)
        if ((r = target_start(a, &a->config->targets[i])) < 0)
            return log_error_errno(r, "target %s", a->config->targets[i].name);
    a->ready = true;
    notify_ready(&a->notify, "supervising");
    update_notify_status(a);
    struct log_field f[] = {{"node", a->config->node_name}, {"version", EDGEWARDEN_VERSION}};
    log_fields(LOG_LEVEL_INFO, 0, f, 2, "edgewarden %s running on node %s with %zu targets",
               EDGEWARDEN_VERSION, a->config->node_name, a->config->n_targets);
    return 0;
}

int agent_main(const struct agent_options *opts) {
    struct agent a = {.opts = opts};
    struct config_errors errs = {0};
    uv_loop_t loop;
    int r = agent_load_config(opts, &a.config, &errs);
    if (r < 0) {
        log_setup(LOG_LEVEL_INFO, LOG_FORMAT_AUTO);
        for (size_t i = 0; i < errs.n; i++)
            log_error("invalid configuration: %s%s%s", errs.items[i].path ? errs.items[i].path : "",
                      errs.items[i].path && errs.items[i].path[0] ? ": " : "",
                      errs.items[i].message);
        if (errs.n == 0)
            log_error_errno(r, "cannot load configuration %s",
                            opts->config_path ? opts->config_path : "");
        config_errors_free(&errs);
        return 2;
    }
    log_setup((enum log_level)a.config->log_level, (enum log_format)a.config->log_format);
    if ((r = uv_loop_init(&loop)) < 0) {
        config_free(a.config);
        return log_error_errno(r, "event loop"), 1;
    }
    a.loop = &loop;
    r = agent_start(&a);
    if (r < 0) {
        if (a.exit_code == 0)
            a.exit_code = 1;
        stop(&a);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Everything is closed; a second run drains close callbacks of handles
     * closed from the last callbacks of the first. */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) == UV_EBUSY)
        log_warn("event loop closed with handles still open");
    metrics_free(a.metrics);
    config_free(a.config);
    kube_auth_free(&a.auth);
    log_info("stopped");
    return a.exit_code;
}
