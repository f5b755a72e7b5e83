/*
 * Tests for agent/config.c. Every invalid input is checked against the exact
 * error list an operator would read ("path: message" lines), so a changed
 * message is a deliberate act. The fixtures in tests/fixtures/config, the
 * YAML examples in docs/configuration.md and the shipped
 * packaging/config.yaml are all loaded here, so the documentation and the
 * code cannot drift apart. No test depends on the process environment:
 * config_apply_env() is fed from a table.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"

#define HEAD       "apiVersion: edgewarden.io/v1alpha1\nkind: AgentConfig\n"
#define CONFIG_DIR FIXTURES "/config"
#define DOCS_MD    FIXTURES "/../../docs/configuration.md"
#define PACKAGED   FIXTURES "/../../packaging/config.yaml"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

struct loaded {
    int r;
    struct config *c;
    char *errors; /* config_errors_print() output */
};

static char *print_errors(const struct config_errors *errs) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(config_errors_print(errs, f), 0);
    fclose(f);
    return text;
}

static struct loaded loadn(const char *text, size_t len) {
    struct config_errors errs = {0};
    struct loaded l;

    l.r = config_load_string(text, len, &l.c, &errs);
    l.errors = print_errors(&errs);
    config_errors_free(&errs);
    return l;
}

static struct loaded load(const char *text) {
    return loadn(text, strlen(text));
}

static struct loaded load_file(const char *path) {
    struct config_errors errs = {0};
    struct loaded l;

    l.r = config_load_file(path, &l.c, &errs);
    l.errors = print_errors(&errs);
    config_errors_free(&errs);
    return l;
}

static void loaded_free(struct loaded *l) {
    config_free(l->c);
    free(l->errors);
}

/* A document must load; returns the new config. */
static struct config *must_load(const char *text) {
    struct loaded l = load(text);
    struct config *c = l.c;

    ck_assert_msg(l.r == 0, "load failed (%d):\n%s", l.r, l.errors);
    ck_assert_str_eq(l.errors, "");
    free(l.errors);
    return c;
}

/* A document must fail with exactly these error lines. */
#define ck_assert_fails_n(text, len, expected)                                                     \
    do {                                                                                           \
        struct loaded l_ = loadn(text, len);                                                       \
        ck_assert_int_eq(l_.r, -EINVAL);                                                           \
        ck_assert_ptr_null(l_.c);                                                                  \
        ck_assert_str_eq(l_.errors, expected);                                                     \
        loaded_free(&l_);                                                                          \
    } while (0)
#define ck_assert_fails(text, expected) ck_assert_fails_n(text, strlen(text), expected)

static void assert_probe_eq(const struct config_probe *a, const struct config_probe *b) {
    ck_assert_int_eq(a->kind, b->kind);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_uint_eq(a->timing.interval_ms, b->timing.interval_ms);
    ck_assert_uint_eq(a->timing.timeout_ms, b->timing.timeout_ms);
    ck_assert_uint_eq(a->timing.jitter_ms, b->timing.jitter_ms);
    ck_assert_uint_eq(a->timing.rise, b->timing.rise);
    ck_assert_uint_eq(a->timing.fall, b->timing.fall);
    ck_assert_uint_eq(a->stuck_after_ms, b->stuck_after_ms);
}

static void assert_policy_eq(const struct config_policy *a, const struct config_policy *b) {
    ck_assert_uint_eq(a->relocate_after_ms, b->relocate_after_ms);
    ck_assert_uint_eq(a->restart_allowance_ms, b->restart_allowance_ms);
    ck_assert_uint_eq(a->quarantine_ms, b->quarantine_ms);
    ck_assert_uint_eq(a->event_dedup_window_ms, b->event_dedup_window_ms);
    ck_assert_uint_eq(a->budget_retry_ms, b->budget_retry_ms);
    ck_assert_int_eq(a->evict_enabled, b->evict_enabled);
    ck_assert_uint_eq(a->evict_after_ms, b->evict_after_ms);
    ck_assert_int_eq(a->cordon_enabled, b->cordon_enabled);
    ck_assert_uint_eq(a->cordon_after_ms, b->cordon_after_ms);
    ck_assert_uint_eq(a->max_concurrent_failovers, b->max_concurrent_failovers);
    ck_assert_uint_eq(a->failover_timeout_ms, b->failover_timeout_ms);
}

static void assert_kubernetes_eq(const struct config_kubernetes *a,
                                 const struct config_kubernetes *b) {
    ck_assert_int_eq(a->enabled, b->enabled);
    ck_assert_str_eq(a->kubeconfig, b->kubeconfig);
    ck_assert_str_eq(a->context, b->context);
    ck_assert_int_eq(a->allow_insecure, b->allow_insecure);
    ck_assert_str_eq(a->namespace, b->namespace);
    ck_assert_double_eq(a->qps, b->qps);
    ck_assert_uint_eq(a->burst, b->burst);
    ck_assert_uint_eq(a->request_timeout_ms, b->request_timeout_ms);
    ck_assert_uint_eq(a->lease_duration_ms, b->lease_duration_ms);
    ck_assert_uint_eq(a->lease_renew_ms, b->lease_renew_ms);
    ck_assert_str_eq(a->pod_selector, b->pod_selector);
}

static void assert_remediation_eq(const struct config_remediation *a,
                                  const struct config_remediation *b) {
    ck_assert_int_eq(a->enabled, b->enabled);
    ck_assert_uint_eq(a->election_lease_duration_ms, b->election_lease_duration_ms);
    ck_assert_uint_eq(a->election_renew_deadline_ms, b->election_renew_deadline_ms);
    ck_assert_uint_eq(a->election_retry_period_ms, b->election_retry_period_ms);
    ck_assert_uint_eq(a->node_lease_stale_after_ms, b->node_lease_stale_after_ms);
    ck_assert_uint_eq(a->fence_margin_ms, b->fence_margin_ms);
    ck_assert_uint_eq(a->assume_dead_after_ms, b->assume_dead_after_ms);
}

static void assert_fencing_eq(const struct config_fencing *a, const struct config_fencing *b) {
    ck_assert_str_eq(a->watchdog_device, b->watchdog_device);
    ck_assert_uint_eq(a->watchdog_timeout_ms, b->watchdog_timeout_ms);
    ck_assert_uint_eq(a->peer_timeout_ms, b->peer_timeout_ms);
}

static void assert_config_eq(const struct config *a, const struct config *b) {
    ck_assert_str_eq(a->node_name, b->node_name);
    ck_assert_int_eq(a->log_level, b->log_level);
    ck_assert_int_eq(a->log_format, b->log_format);
    ck_assert_str_eq(a->listen, b->listen);
    ck_assert_uint_eq(a->startup_grace_ms, b->startup_grace_ms);
    ck_assert_uint_eq(a->crash_loop_restarts, b->crash_loop_restarts);
    ck_assert_uint_eq(a->crash_loop_window_ms, b->crash_loop_window_ms);
    ck_assert_uint_eq(a->n_targets, b->n_targets);
    for (size_t i = 0; i < a->n_targets; i++) {
        const struct config_target *s = &a->targets[i], *t = &b->targets[i];
        ck_assert_str_eq(s->name, t->name);
        ck_assert_str_eq(s->address, t->address);
        ck_assert_uint_eq(s->port, t->port);
        ck_assert_str_eq(s->process_comm, t->process_comm);
        ck_assert_str_eq(s->process_cgroup, t->process_cgroup);
        ck_assert_str_eq(s->process_unit, t->process_unit);
        ck_assert_uint_eq(s->n_probes, t->n_probes);
        for (size_t j = 0; j < s->n_probes; j++)
            assert_probe_eq(&s->probes[j], &t->probes[j]);
    }
    assert_policy_eq(&a->policy, &b->policy);
    assert_kubernetes_eq(&a->kubernetes, &b->kubernetes);
    assert_remediation_eq(&a->remediation, &b->remediation);
    assert_fencing_eq(&a->fencing, &b->fencing);
}

static char *read_all(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            text = realloc(text, cap + 1);
            ck_assert_ptr_nonnull(text);
        }
        n = fread(text + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    text[len] = '\0';
    if (len_out)
        *len_out = len;
    return text;
}

/* The leading "# expect: " lines of a document, joined as printed errors. */
static char *expected_errors(const char *text) {
    static const char prefix[] = "# expect: ";
    char *out = calloc(1, strlen(text) + 1);
    const char *line = text;

    ck_assert_ptr_nonnull(out);
    while (!strncmp(line, prefix, strlen(prefix))) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        strncat(out, line + strlen(prefix), n - strlen(prefix));
        strcat(out, "\n");
        if (!end)
            break;
        line = end + 1;
    }
    return out;
}

/* Check one example: valid unless it starts with "# expect:" lines. */
static void check_example(const char *name, const char *text, size_t len) {
    char *expected = expected_errors(text);
    struct loaded l = loadn(text, len);

    if (*expected) {
        ck_assert_msg(l.r == -EINVAL, "%s: expected a failure, got %d", name, l.r);
        ck_assert_msg(!strcmp(l.errors, expected), "%s: expected\n%sgot\n%s", name, expected,
                      l.errors);
    } else {
        ck_assert_msg(l.r == 0, "%s: expected success, got %d:\n%s", name, l.r, l.errors);
    }
    free(expected);
    loaded_free(&l);
}

/* ------------------------------------------------------------------------ */
/* Valid documents                                                          */

START_TEST(test_default) {
    struct config *c = config_new_default();

    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->node_name, "");
    ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_AUTO);
    ck_assert_str_eq(c->listen, "0.0.0.0:9808");
    ck_assert_uint_eq(c->startup_grace_ms, 60000);
    ck_assert_uint_eq(c->crash_loop_restarts, 3);
    ck_assert_uint_eq(c->crash_loop_window_ms, 300000);
    ck_assert_uint_eq(c->n_targets, 1);
    ck_assert_str_eq(c->targets[0].name, "sqlserver");
    ck_assert_str_eq(c->targets[0].address, "127.0.0.1");
    ck_assert_uint_eq(c->targets[0].port, 1433);
    ck_assert_str_eq(c->targets[0].process_comm, "sqlservr");
    ck_assert_str_eq(c->targets[0].process_cgroup, "");
    ck_assert_str_eq(c->targets[0].process_unit, "");
    ck_assert_uint_eq(c->targets[0].n_probes, 2);
    assert_probe_eq(&c->targets[0].probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {2000, 1000, 1000, 2, 3}, 0});
    assert_probe_eq(
        &c->targets[0].probes[1],
        &(struct config_probe){CONFIG_PROBE_PROCESS, "process", {5000, 1000, 1000, 1, 1}, 30000});
    assert_policy_eq(&c->policy, &(struct config_policy){
                                     .relocate_after_ms = 30000,
                                     .restart_allowance_ms = 20000,
                                     .quarantine_ms = 300000,
                                     .event_dedup_window_ms = 60000,
                                     .budget_retry_ms = 5000,
                                     .evict_enabled = false,
                                     .evict_after_ms = 60000,
                                     .cordon_enabled = false,
                                     .cordon_after_ms = 30000,
                                     .max_concurrent_failovers = 1,
                                     .failover_timeout_ms = 300000,
                                 });
    assert_kubernetes_eq(&c->kubernetes, &(struct config_kubernetes){
                                             .enabled = false,
                                             .kubeconfig = "",
                                             .context = "",
                                             .allow_insecure = false,
                                             .namespace = "",
                                             .qps = 20,
                                             .burst = 40,
                                             .request_timeout_ms = 10000,
                                             .lease_duration_ms = 15000,
                                             .lease_renew_ms = 5000,
                                             .pod_selector = "",
                                         });
    assert_remediation_eq(&c->remediation, &(struct config_remediation){
                                               .enabled = true,
                                               .election_lease_duration_ms = 15000,
                                               .election_renew_deadline_ms = 10000,
                                               .election_retry_period_ms = 2000,
                                               .node_lease_stale_after_ms = 20000,
                                               .fence_margin_ms = 2000,
                                               .assume_dead_after_ms = 0,
                                           });
    assert_fencing_eq(&c->fencing, &(struct config_fencing){
                                       .watchdog_device = "",
                                       .watchdog_timeout_ms = 10000,
                                       .peer_timeout_ms = 1000,
                                   });
    /* The node-loss budget holds with the defaults: renewInterval +
     * peerTimeout < lease duration. */
    ck_assert_uint_lt(c->kubernetes.lease_renew_ms + c->fencing.peer_timeout_ms,
                      c->kubernetes.lease_duration_ms);
    config_free(c);
    config_free(NULL);
}
END_TEST

START_TEST(test_default_policy_matches_engine) {
    /* The file's defaults are the policy engine's own: one ladder, one set of numbers. */
    struct config *c = config_new_default();
    struct policy_config p;

    ck_assert_ptr_nonnull(c);
    policy_config_default(&p);
    assert_policy_eq(&c->policy, &(struct config_policy){
                                     .relocate_after_ms = p.relocate_after_ms,
                                     .restart_allowance_ms = p.restart_allowance_ms,
                                     .quarantine_ms = p.quarantine_ms,
                                     .event_dedup_window_ms = p.event_dedup_window_ms,
                                     .budget_retry_ms = p.budget_retry_ms,
                                     .evict_enabled = p.evict_enabled,
                                     .evict_after_ms = p.evict_after_ms,
                                     .cordon_enabled = p.cordon_enabled,
                                     .cordon_after_ms = p.cordon_after_ms,
                                     /* the budget's size is the Lease code's, not the ladder's */
                                     .max_concurrent_failovers = c->policy.max_concurrent_failovers,
                                     .failover_timeout_ms = c->policy.failover_timeout_ms,
                                 });
    config_free(c);
}
END_TEST

START_TEST(test_minimal_is_default) {
    struct config *d = config_new_default(), *c = must_load(HEAD);

    assert_config_eq(c, d);
    config_free(c);
    config_free(d);
}
END_TEST

START_TEST(test_full) {
    struct loaded l = load_file(CONFIG_DIR "/valid-full.yaml");
    const struct config *c = l.c;

    ck_assert_msg(l.r == 0, "%s", l.errors);
    ck_assert_str_eq(c->node_name, "edge-node-1");
    ck_assert_int_eq(c->log_level, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_JSON);
    ck_assert_str_eq(c->listen, "[::]:9808");
    ck_assert_uint_eq(c->startup_grace_ms, 90000);
    ck_assert_uint_eq(c->crash_loop_restarts, 5);
    ck_assert_uint_eq(c->crash_loop_window_ms, 600000);
    ck_assert_uint_eq(c->n_targets, 2);
    ck_assert_str_eq(c->targets[0].process_unit, "mssql-server.service");
    assert_probe_eq(&c->targets[0].probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {2000, 1000, 1000, 2, 3}, 0});
    assert_probe_eq(
        &c->targets[0].probes[1],
        &(struct config_probe){CONFIG_PROBE_PROCESS, "process", {5000, 1000, 1000, 1, 1}, 60000});
    ck_assert_str_eq(c->targets[1].name, "sqledge-2");
    ck_assert_str_eq(c->targets[1].address, "sql2.example.internal");
    ck_assert_uint_eq(c->targets[1].port, 14330);
    ck_assert_str_eq(c->targets[1].process_cgroup, "0a1b2c3d-4e5f-6789-abcd-ef0123456789");
    /* Omitted probes: [tds, process] with the defaults section applied. */
    ck_assert_uint_eq(c->targets[1].n_probes, 2);
    assert_probe_eq(&c->targets[1].probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {1000, 500, 250, 2, 3}, 0});
    assert_policy_eq(&c->policy, &(struct config_policy){
                                     .relocate_after_ms = 45000,
                                     .restart_allowance_ms = 30000,
                                     .quarantine_ms = 600000,
                                     .event_dedup_window_ms = 120000,
                                     .budget_retry_ms = 10000,
                                     .evict_enabled = true,
                                     .evict_after_ms = 90000,
                                     .cordon_enabled = true,
                                     .cordon_after_ms = 60000,
                                     .max_concurrent_failovers = 2,
                                     .failover_timeout_ms = 600000,
                                 });
    assert_kubernetes_eq(&c->kubernetes, &(struct config_kubernetes){
                                             .enabled = true,
                                             .kubeconfig = "/etc/edgewarden/kubeconfig",
                                             .context = "edge",
                                             .allow_insecure = false,
                                             .namespace = "sql-ops",
                                             .qps = 5.5,
                                             .burst = 10,
                                             .request_timeout_ms = 15000,
                                             .lease_duration_ms = 60000,
                                             .lease_renew_ms = 15000,
                                             .pod_selector = "",
                                         });
    assert_remediation_eq(&c->remediation, &(struct config_remediation){
                                               .enabled = false,
                                               .election_lease_duration_ms = 20000,
                                               .election_renew_deadline_ms = 12000,
                                               .election_retry_period_ms = 3000,
                                               .node_lease_stale_after_ms = 30000,
                                               .fence_margin_ms = 5000,
                                               .assume_dead_after_ms = 600000,
                                           });
    assert_fencing_eq(&c->fencing, &(struct config_fencing){
                                       .watchdog_device = "/dev/watchdog",
                                       .watchdog_timeout_ms = 20000,
                                       .peer_timeout_ms = 2000,
                                   });
    loaded_free(&l);
}
END_TEST

START_TEST(test_pod_mode) {
    struct loaded l = load_file(CONFIG_DIR "/valid-kubernetes.yaml");
    const struct config *c = l.c;

    ck_assert_msg(l.r == 0, "%s", l.errors);
    ck_assert(c->kubernetes.enabled);
    ck_assert_str_eq(c->kubernetes.namespace, "edgewarden");
    /* Kept as written: the reporter parses it again for its queries. */
    ck_assert_str_eq(c->kubernetes.pod_selector, "app=sqledge,edgewarden.io/supervised!=false");
    ck_assert_str_eq(c->kubernetes.kubeconfig, "");
    ck_assert_str_eq(c->kubernetes.context, "");
    ck_assert_double_eq(c->kubernetes.qps, 20);
    ck_assert_uint_eq(c->kubernetes.lease_duration_ms, 15000);
    ck_assert_uint_eq(c->policy.relocate_after_ms, 20000);
    ck_assert(c->policy.evict_enabled);
    ck_assert_uint_eq(c->policy.evict_after_ms, 60000); /* enabled, after omitted */
    ck_assert(!c->policy.cordon_enabled);
    /* targets[0] is the template for each pod. */
    ck_assert_uint_eq(c->n_targets, 1);
    ck_assert_str_eq(c->targets[0].name, "sqledge");
    ck_assert_uint_eq(c->targets[0].port, 1433);
    assert_probe_eq(&c->targets[0].probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {1000, 500, 1000, 2, 3}, 0});
    loaded_free(&l);
}
END_TEST

START_TEST(test_kubernetes_values) {
    struct config *c;

    /* Limits are inclusive where the schema says so; qps takes integers and fractions. */
    c = must_load(HEAD
                  "kubernetes:\n"
                  "  qps: 10000\n"
                  "  burst: 10000\n"
                  "  requestTimeout: 5m\n"
                  "  lease: {duration: 1h, renewInterval: 59m59.998s}\n"
                  "  namespace: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
                  "  pods: {selector: \" app = sqledge , tier!=test, canary, !legacy \"}\n"
                  "fencing: {peerTimeout: 1ms}\n");
    ck_assert_double_eq(c->kubernetes.qps, 10000);
    ck_assert_uint_eq(c->kubernetes.burst, 10000);
    ck_assert_uint_eq(c->kubernetes.request_timeout_ms, 300000);
    ck_assert_uint_eq(c->kubernetes.lease_duration_ms, 3600000);
    ck_assert_uint_eq(c->kubernetes.lease_renew_ms, 3599998);
    ck_assert_uint_eq(strlen(c->kubernetes.namespace), 63);
    ck_assert_str_eq(c->kubernetes.pod_selector, " app = sqledge , tier!=test, canary, !legacy ");
    config_free(c);

    c = must_load(HEAD "kubernetes: {qps: 0.25, burst: 1, requestTimeout: 1, "
                       "lease: {duration: 1s, renewInterval: 998ms}, allowInsecure: true}\n"
                       "remediation: {enabled: false}\n"
                       "fencing: {peerTimeout: 1}\n"
                       "policy: {relocateAfter: 0, restartAllowance: 0, quarantine: 0, "
                       "eventDedupWindow: 0, budgetRetry: 1, evict: {after: 0}, "
                       "cordon: {enabled: true, after: 24h}}\n");
    ck_assert_double_eq(c->kubernetes.qps, 0.25);
    ck_assert_uint_eq(c->kubernetes.burst, 1);
    ck_assert_uint_eq(c->kubernetes.request_timeout_ms, 1);
    ck_assert_uint_eq(c->kubernetes.lease_duration_ms, 1000);
    ck_assert_uint_eq(c->kubernetes.lease_renew_ms, 998);
    ck_assert(c->kubernetes.allow_insecure);
    ck_assert_uint_eq(c->policy.relocate_after_ms, 0);
    ck_assert_uint_eq(c->policy.quarantine_ms, 0);
    ck_assert_uint_eq(c->policy.budget_retry_ms, 1);
    ck_assert(!c->policy.evict_enabled);
    ck_assert_uint_eq(c->policy.evict_after_ms, 0);
    ck_assert(c->policy.cordon_enabled);
    ck_assert_uint_eq(c->policy.cordon_after_ms, 86400000);
    config_free(c);

    /* null and empty sections keep the defaults; a shorter lease takes the
     * default renewal when that still fits. */
    c = must_load(HEAD "policy: {}\nkubernetes:\n  enabled: ~\n  namespace: \"\"\n"
                       "  lease: {duration: 7s}\n  pods: {selector: \"\"}\n");
    ck_assert(!c->kubernetes.enabled);
    ck_assert_str_eq(c->kubernetes.namespace, "");
    ck_assert_str_eq(c->kubernetes.pod_selector, "");
    ck_assert_uint_eq(c->kubernetes.lease_duration_ms, 7000);
    ck_assert_uint_eq(c->kubernetes.lease_renew_ms, 5000);
    ck_assert_uint_eq(c->policy.quarantine_ms, 300000);
    config_free(c);
}
END_TEST

START_TEST(test_kubernetes_invalid) {
    /* Bad durations, in each section, with the section's own bounds. */
    ck_assert_fails(HEAD "policy:\n  relocateAfter: 30\n  restartAllowance: \"20\"\n"
                         "  quarantine: 5 m\n  eventDedupWindow: -1s\n  budgetRetry: 0s\n",
                    "policy.restartAllowance: missing unit in duration (write \"20ms\")\n"
                    "policy.quarantine: not a duration (like \"500ms\", \"2s\" or \"1m30s\")\n"
                    "policy.eventDedupWindow: must not be negative\n"
                    "policy.budgetRetry: must be > 0\n");
    ck_assert_fails(HEAD "policy: {relocateAfter: 25h, evict: {enabled: 1, after: 1.5}, "
                         "cordon: {enabled: \"true\", after: 2x}}\n",
                    "policy.relocateAfter: must be at most 24h\n"
                    "policy.evict.enabled: must be true or false, not an integer\n"
                    "policy.evict.after: must be a duration (like \"2s\") or integer "
                    "milliseconds, not a number\n"
                    "policy.cordon.enabled: must be true or false, not a string\n"
                    "policy.cordon.after: unknown unit \"x\" in duration (use ms, s, m or h)\n");
    ck_assert_fails(HEAD "kubernetes: {requestTimeout: 0}\n",
                    "kubernetes.requestTimeout: must be > 0\n");
    ck_assert_fails(HEAD "kubernetes: {requestTimeout: 301s}\n",
                    "kubernetes.requestTimeout: must be at most 5m\n");
    ck_assert_fails(HEAD "kubernetes: {requestTimeout: 48h}\n",
                    "kubernetes.requestTimeout: must be at most 5m\n");
    /* qps and burst. */
    ck_assert_fails(HEAD "kubernetes: {qps: 0, burst: 0}\n",
                    "kubernetes.qps: must be > 0\nkubernetes.burst: must be >= 1\n");
    ck_assert_fails(HEAD "kubernetes: {qps: -0.5, burst: -1}\n",
                    "kubernetes.qps: must be > 0\nkubernetes.burst: must be >= 1\n");
    ck_assert_fails(HEAD "kubernetes: {qps: 10000.5, burst: 10001}\n",
                    "kubernetes.qps: must be <= 10000\nkubernetes.burst: must be <= 10000\n");
    ck_assert_fails(HEAD "kubernetes: {qps: \"20\", burst: 2.5}\n",
                    "kubernetes.qps: must be a number, not a string\n"
                    "kubernetes.burst: must be an integer, not a number\n");
    /* The Lease. */
    ck_assert_fails(HEAD "kubernetes: {lease: {renewInterval: 40s}}\n",
                    "kubernetes.lease.renewInterval: must be shorter than "
                    "kubernetes.lease.duration (15s)\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 5s}}\n",
                    "kubernetes.lease.renewInterval: must be shorter than "
                    "kubernetes.lease.duration (5s)\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 1m30s, renewInterval: 2m}}\n",
                    "kubernetes.lease.renewInterval: must be shorter than "
                    "kubernetes.lease.duration (1m30s)\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 40500, renewInterval: 10s}}\n",
                    "kubernetes.lease.duration: must be a whole number of seconds\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 500ms, renewInterval: 100ms}}\n",
                    "kubernetes.lease.duration: must be a whole number of seconds\n");
    /* A bad duration is reported once, not again as a bad pair. */
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 0, renewInterval: 1h}}\n",
                    "kubernetes.lease.duration: must be > 0\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 2h, renewInterval: 0}}\n",
                    "kubernetes.lease.duration: must be at most 1h\n"
                    "kubernetes.lease.renewInterval: must be > 0\n");
    ck_assert_fails(HEAD "kubernetes: {lease: 40s}\n",
                    "kubernetes.lease: must be a mapping, not a string\n");
    /* Names and strings. */
    ck_assert_fails(HEAD "kubernetes: {namespace: Kube_System, kubeconfig: 5, context: [a], "
                         "enabled: \"yes\", allowInsecure: no}\n",
                    "kubernetes.enabled: must be true or false, not a string\n"
                    "kubernetes.kubeconfig: must be a string, not an integer\n"
                    "kubernetes.context: must be a string, not a list\n"
                    "kubernetes.allowInsecure: must be true or false, not a string\n"
                    "kubernetes.namespace: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n");
    ck_assert_fails(HEAD "kubernetes: {namespace: "
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n",
                    "kubernetes.namespace: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n");
    ck_assert_fails(HEAD "kubernetes: {namespace: kube.system}\n",
                    "kubernetes.namespace: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n");
    /* Selectors: equality-based only, as the reporter sends them. */
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: \"app in (sqledge)\"}}\n",
                    "kubernetes.pods.selector: not a valid labelSelector: set-based selectors "
                    "are not supported\n");
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: \"app notin (a,b)\"}}\n",
                    "kubernetes.pods.selector: not a valid labelSelector: set-based selectors "
                    "are not supported\n");
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: \"app=a,,b=c\"}}\n",
                    "kubernetes.pods.selector: not a valid labelSelector: empty term\n");
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: \"App_=x\"}}\n",
                    "kubernetes.pods.selector: not a valid labelSelector: invalid key\n");
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: \"app=a b\"}}\n",
                    "kubernetes.pods.selector: not a valid labelSelector: invalid value\n");
    ck_assert_fails(HEAD "kubernetes: {pods: {selector: [app=a]}}\n",
                    "kubernetes.pods.selector: must be a string, not a list\n");
    /* Unknown keys, with hints, at every level of both sections. */
    ck_assert_fails(HEAD "kubernets: {}\npolcy: {}\n",
                    "kubernets: unknown key (did you mean \"kubernetes\"?)\n"
                    "polcy: unknown key (did you mean \"policy\"?)\n");
    ck_assert_fails(HEAD "policy: {relocate: 1s, evict: {enable: true}, cordon: {afterr: 1s}}\n"
                         "kubernetes: {kubeConfig: x, QPS: 1, lease: {renew: 1s}, "
                         "pods: {labelSelector: a}, requestTimout: 1s}\n",
                    "policy.relocate: unknown key\n"
                    "policy.evict.enable: unknown key (did you mean \"enabled\"?)\n"
                    "policy.cordon.afterr: unknown key (did you mean \"after\"?)\n"
                    "kubernetes.kubeConfig: unknown key (did you mean \"kubeconfig\"?)\n"
                    "kubernetes.QPS: unknown key (did you mean \"qps\"?)\n"
                    "kubernetes.requestTimout: unknown key (did you mean \"requestTimeout\"?)\n"
                    "kubernetes.lease.renew: unknown key\n"
                    "kubernetes.pods.labelSelector: unknown key\n");
    ck_assert_fails(HEAD "policy: 5\nkubernetes: [a]\n",
                    "policy: must be a mapping, not an integer\n"
                    "kubernetes: must be a mapping, not a list\n");
}
END_TEST

START_TEST(test_node_loss_values) {
    struct config *c;

    /* The low ends, inclusive. */
    c = must_load(HEAD "policy: {maxConcurrentFailovers: 1, failoverTimeout: 10s}\n"
                       "kubernetes: {lease: {duration: 2s, renewInterval: 1s}}\n"
                       "remediation:\n"
                       "  enabled: false\n"
                       "  election: {leaseDuration: 2s, renewDeadline: 1s, retryPeriod: 999ms}\n"
                       "  nodeLeaseStaleAfter: 1s\n"
                       "  fenceMargin: 0\n"
                       "  assumeDeadAfter: 2s\n"
                       "fencing:\n"
                       "  watchdog: {device: \"\", timeout: 1s}\n"
                       "  peerTimeout: 999ms\n");
    ck_assert_uint_eq(c->policy.max_concurrent_failovers, 1);
    ck_assert_uint_eq(c->policy.failover_timeout_ms, 10000);
    ck_assert(!c->remediation.enabled);
    ck_assert_uint_eq(c->remediation.election_lease_duration_ms, 2000);
    ck_assert_uint_eq(c->remediation.election_renew_deadline_ms, 1000);
    ck_assert_uint_eq(c->remediation.election_retry_period_ms, 999);
    ck_assert_uint_eq(c->remediation.node_lease_stale_after_ms, 1000);
    ck_assert_uint_eq(c->remediation.fence_margin_ms, 0);
    ck_assert_uint_eq(c->remediation.assume_dead_after_ms, 2000); /* = lease.duration */
    ck_assert_str_eq(c->fencing.watchdog_device, "");
    ck_assert_uint_eq(c->fencing.watchdog_timeout_ms, 1000);
    ck_assert_uint_eq(c->fencing.peer_timeout_ms, 999); /* 1s + 999ms < 2s */
    config_free(c);

    /* The high ends, inclusive. */
    c = must_load(HEAD "policy: {maxConcurrentFailovers: 100, failoverTimeout: 24h}\n"
                       "kubernetes: {lease: {duration: 1h, renewInterval: 1m}}\n"
                       "remediation:\n"
                       "  election: {leaseDuration: 1h, renewDeadline: 59m59.999s, "
                       "retryPeriod: 59m59.998s}\n"
                       "  nodeLeaseStaleAfter: 1h\n"
                       "  fenceMargin: 5m\n"
                       "  assumeDeadAfter: 24h\n"
                       "fencing:\n"
                       "  watchdog: {device: /dev/watchdog1, timeout: 10m}\n"
                       "  peerTimeout: 9999ms\n");
    ck_assert_uint_eq(c->policy.max_concurrent_failovers, 100);
    ck_assert_uint_eq(c->policy.failover_timeout_ms, 86400000);
    ck_assert(c->remediation.enabled);
    ck_assert_uint_eq(c->remediation.election_lease_duration_ms, 3600000);
    ck_assert_uint_eq(c->remediation.election_renew_deadline_ms, 3599999);
    ck_assert_uint_eq(c->remediation.election_retry_period_ms, 3599998);
    ck_assert_uint_eq(c->remediation.node_lease_stale_after_ms, 3600000);
    ck_assert_uint_eq(c->remediation.fence_margin_ms, 300000);
    ck_assert_uint_eq(c->remediation.assume_dead_after_ms, 86400000);
    ck_assert_str_eq(c->fencing.watchdog_device, "/dev/watchdog1");
    ck_assert_uint_eq(c->fencing.watchdog_timeout_ms, 600000);
    ck_assert_uint_eq(c->fencing.peer_timeout_ms, 9999); /* 5s + 9.999s < 15s */
    config_free(c);

    /* A shorter election lease keeps the default renewDeadline and
     * retryPeriod when they still fit; null and empty keep the defaults. */
    c = must_load(HEAD "remediation: {election: {leaseDuration: 11s}, assumeDeadAfter: ~}\n"
                       "fencing: {watchdog: {}, peerTimeout: null}\n");
    ck_assert_uint_eq(c->remediation.election_lease_duration_ms, 11000);
    ck_assert_uint_eq(c->remediation.election_renew_deadline_ms, 10000);
    ck_assert_uint_eq(c->remediation.election_retry_period_ms, 2000);
    ck_assert_uint_eq(c->remediation.assume_dead_after_ms, 0);
    ck_assert_uint_eq(c->fencing.peer_timeout_ms, 1000);
    ck_assert_uint_eq(c->fencing.watchdog_timeout_ms, 10000);
    config_free(c);
}
END_TEST

START_TEST(test_node_loss_invalid) {
    /* The failover budget. */
    ck_assert_fails(HEAD "policy: {maxConcurrentFailovers: 0, failoverTimeout: 9s}\n",
                    "policy.maxConcurrentFailovers: must be >= 1\n"
                    "policy.failoverTimeout: must be at least 10s\n");
    ck_assert_fails(HEAD "policy: {maxConcurrentFailovers: 101, failoverTimeout: 25h}\n",
                    "policy.maxConcurrentFailovers: must be <= 100\n"
                    "policy.failoverTimeout: must be at most 24h\n");
    ck_assert_fails(HEAD "policy: {maxConcurrentFailovers: \"2\", failoverTimeout: 10500}\n",
                    "policy.maxConcurrentFailovers: must be an integer, not a string\n"
                    "policy.failoverTimeout: must be a whole number of seconds\n");
    /* The election. */
    ck_assert_fails(HEAD "remediation: {election: {leaseDuration: 1s, renewDeadline: 0, "
                         "retryPeriod: 0}}\n",
                    "remediation.election.leaseDuration: must be at least 2s\n"
                    "remediation.election.renewDeadline: must be > 0\n"
                    "remediation.election.retryPeriod: must be > 0\n");
    ck_assert_fails(HEAD "remediation: {election: {leaseDuration: 3601s}}\n",
                    "remediation.election.leaseDuration: must be at most 1h\n");
    ck_assert_fails(HEAD "remediation: {election: {leaseDuration: 2500ms}}\n",
                    "remediation.election.leaseDuration: must be a whole number of seconds\n");
    ck_assert_fails(HEAD "remediation: {election: {leaseDuration: 10s}}\n",
                    "remediation.election.renewDeadline: must be shorter than "
                    "remediation.election.leaseDuration (10s)\n");
    ck_assert_fails(HEAD "remediation: {election: {renewDeadline: 20s}}\n",
                    "remediation.election.renewDeadline: must be shorter than "
                    "remediation.election.leaseDuration (15s)\n");
    /* docs/model/README.md, finding 6: a leader must stop acting before its
     * own heartbeat Lease runs out. Only with remediation on. */
    ck_assert_fails(HEAD "kubernetes: {enabled: true, lease: {duration: 10s, renewInterval: 2s}}\n",
                    "remediation.election.renewDeadline: must be shorter than "
                    "kubernetes.lease.duration (10s): the remediator must stop acting before its "
                    "own peers could think it cut off from the API server\n");
    config_free(must_load(HEAD
                          "kubernetes: {enabled: true, lease: {duration: 10s, renewInterval: 2s}}\n"
                          "remediation: {enabled: false}\n"));
    ck_assert_fails(HEAD "remediation: {election: {retryPeriod: 10s}}\n",
                    "remediation.election.retryPeriod: must be shorter than "
                    "remediation.election.renewDeadline (10s)\n");
    ck_assert_fails(HEAD "remediation: {election: {renewDeadline: 1500ms}}\n",
                    "remediation.election.retryPeriod: must be shorter than "
                    "remediation.election.renewDeadline (1.5s)\n");
    /* A bad value is reported once, not again as half of a bad pair. */
    ck_assert_fails(HEAD "remediation: {election: {leaseDuration: 0, renewDeadline: 1h, "
                         "retryPeriod: 30m}}\n",
                    "remediation.election.leaseDuration: must be at least 2s\n");
    ck_assert_fails(HEAD "remediation: {election: {renewDeadline: 1x, retryPeriod: 1h}}\n",
                    "remediation.election.renewDeadline: unknown unit \"x\" in duration "
                    "(use ms, s, m or h)\n");
    /* The judgement of a lost node. */
    ck_assert_fails(HEAD "remediation: {enabled: 1, nodeLeaseStaleAfter: 999ms, "
                         "fenceMargin: -1s, assumeDeadAfter: 25h}\n",
                    "remediation.enabled: must be true or false, not an integer\n"
                    "remediation.nodeLeaseStaleAfter: must be at least 1s\n"
                    "remediation.fenceMargin: must not be negative\n"
                    "remediation.assumeDeadAfter: must be at most 24h\n");
    ck_assert_fails(HEAD "remediation: {nodeLeaseStaleAfter: 3600001, fenceMargin: 300001}\n",
                    "remediation.nodeLeaseStaleAfter: must be at most 1h\n"
                    "remediation.fenceMargin: must be at most 5m\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 30s}}\n"
                         "remediation: {assumeDeadAfter: 29999}\n",
                    "remediation.assumeDeadAfter: must be 0 (never) or at least "
                    "kubernetes.lease.duration (30s)\n");
    /* A bad Lease is reported in its own place, and not again here. */
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 1.5s}}\n"
                         "remediation: {assumeDeadAfter: 1s}\n"
                         "fencing: {peerTimeout: 1h}\n",
                    "kubernetes.lease.duration: must be a whole number of seconds\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {renewInterval: 20s}}\n"
                         "fencing: {peerTimeout: 1h}\n",
                    "kubernetes.lease.renewInterval: must be shorter than "
                    "kubernetes.lease.duration (15s)\n");
    /* The watchdog. */
    ck_assert_fails(HEAD "fencing: {watchdog: {device: watchdog, timeout: 0}}\n",
                    "fencing.watchdog.device: must be an absolute path (like /dev/watchdog) "
                    "or \"\"\n"
                    "fencing.watchdog.timeout: must be at least 1s\n");
    ck_assert_fails(HEAD "fencing: {watchdog: {device: 5, timeout: 601s}}\n",
                    "fencing.watchdog.device: must be a string, not an integer\n"
                    "fencing.watchdog.timeout: must be at most 10m\n");
    ck_assert_fails(HEAD "fencing: {watchdog: {timeout: 1500ms}, peerTimeout: 0}\n",
                    "fencing.watchdog.timeout: must be a whole number of seconds\n"
                    "fencing.peerTimeout: must be > 0\n");
    /* peerTimeout against the heartbeat Lease: renewInterval + peerTimeout
     * must stay below the duration, whoever set which. */
    ck_assert_fails(HEAD "fencing: {peerTimeout: 10s}\n",
                    "fencing.peerTimeout: must be shorter than kubernetes.lease.duration - "
                    "kubernetes.lease.renewInterval (15s - 5s = 10s): a node cut off from the "
                    "API server learns it from its peers up to renewInterval + peerTimeout "
                    "after its last renewal, and must stop feeding its watchdog before its "
                    "Lease runs out\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 1s, renewInterval: 999ms}}\n",
                    "fencing.peerTimeout: must be shorter than kubernetes.lease.duration - "
                    "kubernetes.lease.renewInterval (1s - 999ms = 1ms): a node cut off from "
                    "the API server learns it from its peers up to renewInterval + "
                    "peerTimeout after its last renewal, and must stop feeding its watchdog "
                    "before its Lease runs out\n");
    ck_assert_fails(HEAD "kubernetes: {lease: {duration: 1m, renewInterval: 50s}}\n"
                         "fencing: {peerTimeout: 10s}\n",
                    "fencing.peerTimeout: must be shorter than kubernetes.lease.duration - "
                    "kubernetes.lease.renewInterval (1m - 50s = 10s): a node cut off from the "
                    "API server learns it from its peers up to renewInterval + peerTimeout "
                    "after its last renewal, and must stop feeding its watchdog before its "
                    "Lease runs out\n");
    /* Unknown keys and wrong shapes. */
    ck_assert_fails(HEAD "remediaton: {}\nfenceing: {}\n",
                    "remediaton: unknown key (did you mean \"remediation\"?)\n"
                    "fenceing: unknown key (did you mean \"fencing\"?)\n");
    ck_assert_fails(HEAD "remediation: {electon: {}, election: {lease: 1s}, fenceMargn: 1s}\n"
                         "fencing: {watchdog: {devce: /dev/watchdog}, peertimeout: 1s}\n",
                    "remediation.electon: unknown key (did you mean \"election\"?)\n"
                    "remediation.fenceMargn: unknown key (did you mean \"fenceMargin\"?)\n"
                    "remediation.election.lease: unknown key\n"
                    "fencing.peertimeout: unknown key (did you mean \"peerTimeout\"?)\n"
                    "fencing.watchdog.devce: unknown key (did you mean \"device\"?)\n");
    ck_assert_fails(HEAD "remediation: 5\nfencing: [a]\n",
                    "remediation: must be a mapping, not an integer\n"
                    "fencing: must be a mapping, not a list\n");
    ck_assert_fails(HEAD "remediation: {election: []}\nfencing: {watchdog: /dev/watchdog}\n",
                    "remediation.election: must be a mapping, not a list\n"
                    "fencing.watchdog: must be a mapping, not a string\n");
}
END_TEST

START_TEST(test_json_equals_yaml) {
    struct loaded y = load_file(CONFIG_DIR "/valid-full.yaml");
    struct loaded j = load_file(CONFIG_DIR "/valid-full.json");

    ck_assert_msg(y.r == 0, "%s", y.errors);
    ck_assert_msg(j.r == 0, "%s", j.errors);
    assert_config_eq(y.c, j.c);
    loaded_free(&y);
    loaded_free(&j);
}
END_TEST

START_TEST(test_json_errors_match_yaml) {
    /* Same schema, same reader: the same mistakes give the same lines. */
    static const char yaml[] = HEAD "targets:\n  - name: a\n    port: \"1433\"\n"
                                    "    probes: [{kind: tds, interval: 0, tmeout: 1}]\n";
    static const char json[] =
        "{\"apiVersion\": \"edgewarden.io/v1alpha1\", \"kind\": \"AgentConfig\",\n"
        " \"targets\": [{\"name\": \"a\", \"port\": \"1433\",\n"
        "   \"probes\": [{\"kind\": \"tds\", \"interval\": 0, \"tmeout\": 1}]}]}\n";
    static const char expected[] =
        "targets[0].port: must be an integer, not a string\n"
        "targets[0].probes[0].tmeout: unknown key (did you mean \"timeout\"?)\n"
        "targets[0].probes[0].interval: must be > 0\n";

    ck_assert_fails(yaml, expected);
    ck_assert_fails(json, expected);
    ck_assert_fails("{\"apiVersion\": \"edgewarden.io/v1alpha1\", \"kind\": \"AgentConfig\",\n"
                    " \"log\": {\"level\": \"info\", \"level\": \"debug\"}}",
                    "log.level: duplicate key\n");
    ck_assert_fails("{\"apiVersion\": \"edgewarden.io/v1alpha1\",\n \"kind\": }}",
                    "2:11: did not find expected <document start>\n");
}
END_TEST

START_TEST(test_defaults_merged) {
    struct config *c = must_load(HEAD "defaults:\n"
                                      "  tds: {interval: 3s, rise: 4}\n"
                                      "  process: {fall: 2, stuckAfter: 45s}\n"
                                      "targets:\n"
                                      "  - name: a\n"
                                      "    probes:\n"
                                      "      - {kind: tds, fall: 5}\n"
                                      "      - {kind: process, name: proc, interval: 10s}\n"
                                      "      - {kind: tds, name: tds-2, interval: 1s}\n"
                                      "  - name: b\n");
    const struct config_target *a = &c->targets[0], *b = &c->targets[1];

    assert_probe_eq(&a->probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {3000, 1000, 1000, 4, 5}, 0});
    assert_probe_eq(
        &a->probes[1],
        &(struct config_probe){CONFIG_PROBE_PROCESS, "proc", {10000, 1000, 1000, 1, 2}, 45000});
    assert_probe_eq(&a->probes[2],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds-2", {1000, 1000, 1000, 4, 3}, 0});
    /* A target without probes gets [tds, process], defaults applied. */
    ck_assert_uint_eq(b->n_probes, 2);
    assert_probe_eq(&b->probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {3000, 1000, 1000, 4, 3}, 0});
    assert_probe_eq(
        &b->probes[1],
        &(struct config_probe){CONFIG_PROBE_PROCESS, "process", {5000, 1000, 1000, 1, 2}, 45000});
    config_free(c);

    /* The implicit default target takes the defaults section too. */
    c = must_load(HEAD "defaults: {tds: {interval: 500ms, timeout: 200ms}}\n");
    assert_probe_eq(&c->targets[0].probes[0],
                    &(struct config_probe){CONFIG_PROBE_TDS, "tds", {500, 200, 1000, 2, 3}, 0});
    config_free(c);
}
END_TEST

static const struct {
    const char *text;
    uint64_t ms;
} good_durations[] = {
    {"1m30s", 90000}, {"250ms", 250},     {"1500", 1500},         {"1.5s", 1500},
    {"\"2s\"", 2000}, {"0", 0},           {"\"0\"", 0},           {"0s", 0},
    {"1h", 3600000},  {"2m0.5s", 120500}, {"1000us", 1},          {"1000000ns", 1},
    {"+1s", 1000},    {"0.5m", 30000},    {"24h", 86400000},      {"1h2m3s4ms", 3723004},
    {"1000µs", 1},    {"-0s", 0},         {"86400000", 86400000},
};

START_TEST(test_durations) {
    char text[256];
    struct config *c;

    snprintf(text, sizeof(text), HEAD "defaults: {tds: {jitter: %s}}\n", good_durations[_i].text);
    c = must_load(text);
    ck_assert_uint_eq(c->targets[0].probes[0].timing.jitter_ms, good_durations[_i].ms);
    config_free(c);
}
END_TEST

static const struct {
    const char *text;
    const char *error;
} bad_durations[] = {
    {"2 s", "not a duration (like \"500ms\", \"2s\" or \"1m30s\")"},
    {"\"\"", "not a duration (like \"500ms\", \"2s\" or \"1m30s\")"},
    {"s", "not a duration (like \"500ms\", \"2s\" or \"1m30s\")"},
    {"1s-", "not a duration (like \"500ms\", \"2s\" or \"1m30s\")"},
    {"2x", "unknown unit \"x\" in duration (use ms, s, m or h)"},
    {"2d", "unknown unit \"d\" in duration (use ms, s, m or h)"},
    {"-1s", "must not be negative"},
    {"-5", "must not be negative"},
    {"25h", "must be at most 24h"},
    {"86400001", "must be at most 24h"},
    {"99999999999999999999ms", "must be at most 24h"},
    {"99999999999999999999", "integer out of range"},
    {"\"1500\"", "missing unit in duration (write \"1500ms\")"},
    {"1m30", "missing unit in duration"},
    {"0.5ms", "must be a whole number of milliseconds"},
    {"1.5", "must be a duration (like \"2s\") or integer milliseconds, not a number"},
    {"[]", "must be a duration (like \"2s\") or integer milliseconds, not a list"},
    {"true", "must be a duration (like \"2s\") or integer milliseconds, not a boolean"},
};

START_TEST(test_bad_durations) {
    char text[256], expected[256];

    snprintf(text, sizeof(text), HEAD "defaults: {tds: {jitter: %s}}\n", bad_durations[_i].text);
    snprintf(expected, sizeof(expected), "defaults.tds.jitter: %s\n", bad_durations[_i].error);
    ck_assert_fails(text, expected);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Invalid documents                                                        */

START_TEST(test_identity) {
    ck_assert_fails("nodeName: a\n", "apiVersion: is required\nkind: is required\n");
    ck_assert_fails("apiVersion: edgewarden.io/v1\nkind: AgentConfig\n",
                    "apiVersion: must be edgewarden.io/v1alpha1\n");
    ck_assert_fails("apiVersion: 1\nkind: agentconfig\n",
                    "apiVersion: must be edgewarden.io/v1alpha1\nkind: must be AgentConfig\n");
    ck_assert_fails("apiVersion: edgewarden.io/v1alpha1\nkind:\n", "kind: is required\n");
}
END_TEST

START_TEST(test_unknown_keys) {
    ck_assert_fails(HEAD "nodname: a\nlogs: {}\nzzz: 1\n",
                    "nodname: unknown key (did you mean \"nodeName\"?)\n"
                    "logs: unknown key (did you mean \"log\"?)\n"
                    "zzz: unknown key\n");
    ck_assert_fails(
        HEAD "targets:\n  - name: a\n    tmeout: 1s\n    probes:\n"
             "      - {kind: tds, tmeout: 1s, Interval: 1s, stuck_after: 1s}\n",
        "targets[0].tmeout: unknown key\n"
        "targets[0].probes[0].tmeout: unknown key (did you mean \"timeout\"?)\n"
        "targets[0].probes[0].Interval: unknown key (did you mean \"interval\"?)\n"
        "targets[0].probes[0].stuck_after: unknown key (did you mean \"stuckAfter\"?)\n");
    ck_assert_fails(HEAD "health: {crashloop: {}, startupgrace: 1s}\n"
                         "server: {listne: \"\"}\nlog: {lvl: info}\n",
                    "log.lvl: unknown key (did you mean \"level\"?)\n"
                    "server.listne: unknown key (did you mean \"listen\"?)\n"
                    "health.crashloop: unknown key (did you mean \"crashLoop\"?)\n"
                    "health.startupgrace: unknown key (did you mean \"startupGrace\"?)\n");
    ck_assert_fails(HEAD "defaults: {tcp: {}, tds: {stuckAfter: 1s, rize: 1}}\n",
                    "defaults.tcp: unknown key\n"
                    "defaults.tds.rize: unknown key (did you mean \"rise\"?)\n"
                    "defaults.tds.stuckAfter: only valid for process probes\n");
    /* Odd keys are quoted in the path. */
    ck_assert_fails(HEAD "\"a.b\": 1\n\"tab\\there\": 2\n",
                    "[\"a.b\"]: unknown key\n[\"tab\\x09here\"]: unknown key\n");
}
END_TEST

START_TEST(test_probe_numbers) {
    ck_assert_fails(HEAD "targets:\n  - name: a\n    probes:\n"
                         "      - {kind: tds, interval: 0, timeout: 0, rise: 0, fall: 0}\n"
                         "      - {kind: process, interval: -1, rise: 1001, fall: -2}\n",
                    "targets[0].probes[0].interval: must be > 0\n"
                    "targets[0].probes[0].timeout: must be > 0\n"
                    "targets[0].probes[0].rise: must be >= 1\n"
                    "targets[0].probes[0].fall: must be >= 1\n"
                    "targets[0].probes[1].interval: must not be negative\n"
                    "targets[0].probes[1].rise: must be <= 1000\n"
                    "targets[0].probes[1].fall: must be >= 1\n");
    ck_assert_fails(HEAD "defaults: {tds: {timeout: 5s}}\n",
                    "defaults.tds.timeout: must be <= interval (5s > 2s)\n");
    /* A probe that shortens its interval under an inherited timeout. */
    ck_assert_fails(HEAD "targets: [{name: a, probes: [{kind: process, interval: 1500ms, "
                         "timeout: 1m30s}]}]\n",
                    "targets[0].probes[0].timeout: must be <= interval (1m30s > 1.5s)\n");
    ck_assert_fails(HEAD "health: {startupGrace: -1s, crashLoop: {restarts: 1001, window: 0}}\n",
                    "health.startupGrace: must not be negative\n"
                    "health.crashLoop.restarts: must be <= 32\n"
                    "health.crashLoop.window: must be > 0\n");
}
END_TEST

START_TEST(test_probe_kind_and_names) {
    ck_assert_fails(HEAD "targets:\n  - name: a\n    probes:\n"
                         "      - {name: x}\n"
                         "      - {kind: tcp}\n"
                         "      - {kind: tds}\n"
                         "      - {kind: tds}\n"
                         "      - {kind: process, name: tds}\n"
                         "      - {kind: tds, name: Bad_Name}\n"
                         "      - {kind: 1}\n",
                    "targets[0].probes[0].kind: is required\n"
                    "targets[0].probes[1].kind: must be one of tds, process\n"
                    "targets[0].probes[3].name: duplicate name \"tds\" (also probes[2])\n"
                    "targets[0].probes[4].name: duplicate name \"tds\" (also probes[2])\n"
                    "targets[0].probes[5].name: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n"
                    "targets[0].probes[6].kind: must be a string, not an integer\n");
    /* Same probe names in two targets are fine. */
    config_free(must_load(HEAD "targets: [{name: a, probes: [{kind: tds}]}, "
                               "{name: b, probes: [{kind: tds}]}]\n"));
}
END_TEST

START_TEST(test_targets) {
    ck_assert_fails(HEAD
                    "targets:\n"
                    "  - {name: a, port: 0}\n"
                    "  - {name: b, port: 70000}\n"
                    "  - {name: c, port: abc}\n"
                    "  - {name: d, port: 1433.5}\n"
                    "  - {name: e, port: \"1433\"}\n"
                    "  - {port: 1}\n"
                    "  - {name: a}\n"
                    "  - {name: -a}\n"
                    "  - {name: \"\"}\n"
                    "  - {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"
                    "  - {name: f, address: \"999.1.1.1\"}\n"
                    "  - {name: g, address: \"\"}\n"
                    "  - {name: h, address: \"[::1]\"}\n"
                    "  - 5\n",
                    "targets[0].port: must be >= 1\n"
                    "targets[1].port: must be <= 65535\n"
                    "targets[2].port: must be an integer, not a string\n"
                    "targets[3].port: must be an integer, not a number\n"
                    "targets[4].port: must be an integer, not a string\n"
                    "targets[5].name: is required\n"
                    "targets[6].name: duplicate name \"a\" (also targets[0])\n"
                    "targets[7].name: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n"
                    "targets[8].name: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n"
                    "targets[9].name: must be a DNS label "
                    "([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)\n"
                    "targets[10].address: not a host name or IP address\n"
                    "targets[11].address: not a host name or IP address\n"
                    "targets[12].address: not a host name or IP address\n"
                    "targets[13]: must be a mapping, not an integer\n");
    ck_assert_fails(HEAD "targets:\n  - name: a\n    process: {comm: \"\", unit: mssql}\n"
                         "  - name: b\n    process: {comm: sqlservr-too-long, cgroup: 5}\n"
                         "  - name: c\n    process: [comm]\n",
                    "targets[0].process.comm: must not be empty\n"
                    "targets[0].process.unit: must be a systemd unit name ending in "
                    ".service or .scope\n"
                    "targets[1].process.comm: must be at most 15 bytes (the kernel's comm "
                    "length)\n"
                    "targets[1].process.cgroup: must be a string, not an integer\n"
                    "targets[2].process: must be a mapping, not a list\n");
    ck_assert_fails(HEAD "targets: []\n",
                    "targets: must not be empty (omit it for the default target)\n");
    ck_assert_fails(HEAD "targets: {name: a}\n", "targets: must be a list, not a mapping\n");
    ck_assert_fails(HEAD "targets: [{name: a, probes: []}, {name: b, probes: {kind: tds}}]\n",
                    "targets[0].probes: must not be empty (omit it for a tds and a process "
                    "probe)\n"
                    "targets[1].probes: must be a list, not a mapping\n");
    /* Addresses that are fine. */
    config_free(must_load(HEAD "targets: [{name: a, address: \"::1\"}, {name: b, address: "
                               "db.local}, {name: c, address: 10.0.0.7}, {name: d, address: "
                               "SQL-1}]\n"));
}
END_TEST

START_TEST(test_limits) {
    char *text = malloc(64 * 1024);
    size_t n;

    ck_assert_ptr_nonnull(text);
    /* 65 targets. */
    n = (size_t)sprintf(text, HEAD "targets:\n");
    for (int i = 0; i < 65; i++)
        n += (size_t)sprintf(text + n, "  - name: t%d\n", i);
    ck_assert_fails(text, "targets: must have at most 64 items\n");
    /* 64 are fine. */
    n = (size_t)sprintf(text, HEAD "targets:\n");
    for (int i = 0; i < 64; i++)
        n += (size_t)sprintf(text + n, "  - name: t%d\n", i);
    config_free(must_load(text));
    /* 9 probes. */
    n = (size_t)sprintf(text, HEAD "targets:\n  - name: a\n    probes:\n");
    for (int i = 0; i < 9; i++)
        n += (size_t)sprintf(text + n, "      - {kind: tds, name: p%d}\n", i);
    ck_assert_fails(text, "targets[0].probes: must have at most 8 items\n");
    /* A string past 4096 bytes. */
    n = (size_t)sprintf(text, HEAD "nodeName: ");
    memset(text + n, 'a', 4097);
    text[n + 4097] = '\0';
    ck_assert_fails(text, "nodeName: longer than 4096 bytes\n");
    /* Error lists stop at 64 and say so. */
    n = (size_t)sprintf(text, HEAD);
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(text + n, "unknown%d: 1\n", i);
    {
        struct config_errors errs = {0};
        struct config *c;
        ck_assert_int_eq(config_load_string(text, n, &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 65);
        ck_assert_str_eq(errs.items[0].path, "unknown0");
        ck_assert_ptr_null(errs.items[64].path);
        ck_assert_str_eq(errs.items[64].message, "too many errors; stopping here");
        config_errors_free(&errs);
        ck_assert_uint_eq(errs.n, 0);
        /* A NULL list still gets the verdict. */
        ck_assert_int_eq(config_load_string(text, n, &c, NULL), -EINVAL);
        ck_assert_ptr_null(c);
    }
    free(text);
}
END_TEST

START_TEST(test_too_deep) {
    char text[256];
    int n = sprintf(text, HEAD "x: ");

    for (int i = 0; i < 40; i++)
        text[n++] = '[';
    for (int i = 0; i < 40; i++)
        text[n++] = ']';
    text[n] = '\0';
    ck_assert_fails(text, "3:35: nested deeper than 32 levels\n");
    /* 32 levels are read; the key is then unknown. */
    n = sprintf(text, HEAD "x: ");
    for (int i = 0; i < 31; i++)
        text[n++] = '[';
    for (int i = 0; i < 31; i++)
        text[n++] = ']';
    text[n] = '\0';
    ck_assert_fails(text, "x: unknown key\n");
}
END_TEST

START_TEST(test_too_big) {
    size_t len = CONFIG_MAX_FILE_BYTES + 1;
    char *text = malloc(len);
    char path[] = "/tmp/test-config-XXXXXX";
    int fd;

    ck_assert_ptr_nonnull(text);
    memset(text, ' ', len);
    memcpy(text, HEAD, strlen(HEAD));
    ck_assert_fails_n(text, len, "the document is larger than 1048576 bytes\n");

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    {
        struct loaded l = load_file(path);
        char expected[128];
        snprintf(expected, sizeof(expected), "%s: larger than 1048576 bytes\n", path);
        ck_assert_int_eq(l.r, -EINVAL);
        ck_assert_ptr_null(l.c);
        ck_assert_str_eq(l.errors, expected);
        loaded_free(&l);
    }
    /* Exactly the limit is read (and is valid: the rest is blanks). */
    ck_assert_int_eq(truncate(path, CONFIG_MAX_FILE_BYTES), 0);
    {
        struct loaded l = load_file(path);
        ck_assert_msg(l.r == 0, "%s", l.errors);
        loaded_free(&l);
    }
    unlink(path);
    free(text);
}
END_TEST

START_TEST(test_document_shape) {
    static const char nul[] = "apiVersion: a\0b\n";

    ck_assert_fails("", "the document is empty; it needs at least apiVersion and kind\n");
    ck_assert_fails("# only a comment\n",
                    "the document is empty; it needs at least apiVersion and kind\n");
    ck_assert_fails("---\n", "the document is empty; it needs at least apiVersion and kind\n");
    ck_assert_fails("- a\n- b\n", "the document must be a mapping, not a list\n");
    ck_assert_fails("hello\n", "the document must be a mapping, not a string\n");
    ck_assert_fails(HEAD "---\n" HEAD,
                    "3:1: more than one document; a config is one YAML document\n");
    ck_assert_fails("\x80\x81garbage", "1:1: invalid leading UTF-8 octet\n");
    ck_assert_fails("apiVersion: \xc3(\n", "1:14: invalid trailing UTF-8 octet\n");
    ck_assert_fails_n(nul, sizeof(nul) - 1, "1:14: control characters are not allowed\n");
    ck_assert_fails(HEAD "log:\n  level: info\n level: debug\n",
                    "5:2: did not find expected key (while parsing a block mapping at 1:1)\n");
    ck_assert_fails(HEAD "log: {level: info\n",
                    "4:1: did not find expected ',' or '}' (while parsing a flow mapping "
                    "at 3:6)\n");
}
END_TEST

START_TEST(test_duplicate_keys) {
    ck_assert_fails(HEAD "kind: AgentConfig\n", "kind: duplicate key\n");
    ck_assert_fails(HEAD "targets:\n  - name: a\n    probes:\n      - kind: tds\n"
                         "        kind: process\n",
                    "targets[0].probes[0].kind: duplicate key\n");
    ck_assert_fails(HEAD "log: {level: info}\nlog: {level: [a, {b: 1, b: 2}]}\n",
                    "log: duplicate key\n");
}
END_TEST

START_TEST(test_yaml_features) {
    struct config *c;

    ck_assert_fails(HEAD "nodeName: &n a\nlog: {level: *n}\n",
                    "nodeName: anchors and aliases are not supported\n"
                    "log.level: anchors and aliases are not supported\n");
    ck_assert_fails(HEAD "nodeName: !!str a\n", "nodeName: tags are not supported\n");
    ck_assert_fails(HEAD "? [a]\n: b\n", "3:3: keys must be strings, not a mapping or a list\n");
    ck_assert_fails(HEAD "targets: [{name: a, port: 99999999999999999999}]\n",
                    "targets[0].port: integer out of range\n");
    /* YAML 1.2 core typing: hex and octal integers; quoted is a string; a
     * plain null takes the default; yes is a string, not a boolean. */
    c = must_load(HEAD "nodeName: null\nserver: {listen: ~}\n"
                       "targets: [{name: a, port: 0x599}, {name: b, port: 0o2632}]\n");
    ck_assert_str_eq(c->node_name, "");
    ck_assert_str_eq(c->listen, "0.0.0.0:9808");
    ck_assert_uint_eq(c->targets[0].port, 1433);
    ck_assert_uint_eq(c->targets[1].port, 1434);
    config_free(c);
    ck_assert_fails(HEAD "log: {level: yes, format: 1e3}\n",
                    "log.level: must be one of debug, info, warn, error\n"
                    "log.format: must be a string, not a number\n");
    c = must_load("{apiVersion: edgewarden.io/v1alpha1, kind: 'AgentConfig', nodeName: \"null\"}");
    ck_assert_str_eq(c->node_name, "null");
    config_free(c);
}
END_TEST

START_TEST(test_wrong_types) {
    ck_assert_fails(HEAD "log: []\nserver: info\nhealth: 5\ndefaults: {tds: []}\nnodeName: 5\n",
                    "nodeName: must be a string, not an integer\n"
                    "log: must be a mapping, not a list\n"
                    "server: must be a mapping, not a string\n"
                    "health: must be a mapping, not an integer\n"
                    "defaults.tds: must be a mapping, not a list\n");
    ck_assert_fails(HEAD "health: {crashLoop: {restarts: \"3\"}}\n",
                    "health.crashLoop.restarts: must be an integer, not a string\n");
}
END_TEST

static const struct {
    const char *listen;
    const char *host; /* NULL: invalid */
    uint16_t port;
} listens[] = {
    {"0.0.0.0:9808", "0.0.0.0", 9808},
    {"[::]:9808", "::", 9808},
    {"[::1]:1", "::1", 1},
    {"localhost:65535", NULL, 0}, /* names are refused: nothing resolves them */
    {"metrics.node-1.local:80", NULL, 0},
    {"1.2.3.4", NULL, 0},
    {":9808", NULL, 0},
    {"::1:9808", NULL, 0},
    {"[::1]9808", NULL, 0},
    {"[::1:9808", NULL, 0},
    {"[1.2.3.4]:80", NULL, 0},
    {"host:0", NULL, 0},
    {"host:65536", NULL, 0},
    {"host:", NULL, 0},
    {"host:08x", NULL, 0},
    {"host:-1", NULL, 0},
    {"a b:1", NULL, 0},
    {"300.1.1.1:80", NULL, 0},
};

START_TEST(test_listen) {
    char host[64], text[256];
    uint16_t port = 0;
    int r = config_parse_listen(listens[_i].listen, host, sizeof(host), &port);

    snprintf(text, sizeof(text), HEAD "server: {listen: \"%s\"}\n", listens[_i].listen);
    if (listens[_i].host) {
        struct config *c;
        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(host, listens[_i].host);
        ck_assert_uint_eq(port, listens[_i].port);
        c = must_load(text);
        ck_assert_str_eq(c->listen, listens[_i].listen);
        config_free(c);
    } else {
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_fails(text, "server.listen: not a HOST:PORT\n");
    }
}
END_TEST

START_TEST(test_listen_misc) {
    char host[4];
    uint16_t port;
    struct config *c;

    ck_assert_int_eq(config_parse_listen("10.1.2.3:80", host, sizeof(host), &port), -ENAMETOOLONG);
    ck_assert_int_eq(config_parse_listen("1.2:80", host, sizeof(host), &port), -EINVAL);
    /* Names are refused: the server binds what it is given and resolves none. */
    ck_assert_int_eq(config_parse_listen("abc:80", host, sizeof(host), &port), -EINVAL);
    c = must_load(HEAD "server: {listen: \"\"}\n");
    ck_assert_str_eq(c->listen, "");
    config_free(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Overrides                                                                */

/* config_apply_env() takes a getenv-like function without a context, so
 * the table it reads is file-level; each test sets it before the call. */
static const char *const *env_table;

static const char *fake_getenv(const char *name) {
    for (const char *const *e = env_table; e && e[0]; e += 2)
        if (!strcmp(e[0], name))
            return e[1];
    return NULL;
}

START_TEST(test_env) {
    static const char *const env[] = {"NODE_NAME",
                                      "node-a.example",
                                      "EDGEWARDEN_LOG_LEVEL",
                                      "debug",
                                      "EDGEWARDEN_LOG_FORMAT",
                                      "text",
                                      "EDGEWARDEN_LISTEN",
                                      "127.0.0.1:9100",
                                      "EDGEWARDEN_WATCHDOG_DEVICE",
                                      "/dev/watchdog0",
                                      "EDGEWARDEN_OTHER",
                                      "x",
                                      NULL};
    struct config_errors errs = {0};
    struct config *c = must_load(HEAD "nodeName: from-file\n");

    env_table = env;
    ck_assert_int_eq(config_apply_env(c, fake_getenv, &errs), 0);
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_str_eq(c->node_name, "node-a.example");
    ck_assert_int_eq(c->log_level, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_TEXT);
    ck_assert_str_eq(c->listen, "127.0.0.1:9100");
    ck_assert_str_eq(c->fencing.watchdog_device, "/dev/watchdog0");

    /* Flags come last. */
    ck_assert_int_eq(config_set_option(c, "log.level", "error", "--log-level", &errs), 0);
    ck_assert_int_eq(c->log_level, LOG_LEVEL_ERROR);
    ck_assert_int_eq(config_set_option(c, "nodeName", "", "--node-name", &errs), 0);
    ck_assert_str_eq(c->node_name, "");
    ck_assert_int_eq(config_set_option(c, "server.listen", "[::1]:1", "--listen", &errs), 0);
    ck_assert_str_eq(c->listen, "[::1]:1");
    ck_assert_int_eq(config_set_option(c, "log.format", "journal", "--log-format", &errs), 0);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_JOURNAL);
    ck_assert_uint_eq(errs.n, 0);
    config_free(c);
    env_table = NULL;
}
END_TEST

START_TEST(test_env_empty_and_unset) {
    static const char *const env[] = {"NODE_NAME",
                                      "",
                                      "EDGEWARDEN_LOG_LEVEL",
                                      "",
                                      "EDGEWARDEN_LISTEN",
                                      "",
                                      "EDGEWARDEN_WATCHDOG_DEVICE",
                                      "",
                                      NULL};
    struct config_errors errs = {0};
    struct config *c = must_load(HEAD "nodeName: from-file\nlog: {format: json}\n"
                                      "fencing: {watchdog: {device: /dev/watchdog}}\n");

    env_table = env;
    ck_assert_int_eq(config_apply_env(c, fake_getenv, &errs), 0);
    ck_assert_str_eq(c->node_name, "from-file"); /* empty is unset */
    ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
    ck_assert_int_eq(c->log_format, LOG_FORMAT_JSON);              /* unset */
    ck_assert_str_eq(c->listen, "");                               /* empty disables the server */
    ck_assert_str_eq(c->fencing.watchdog_device, "/dev/watchdog"); /* empty is unset */
    config_free(c);
    env_table = NULL;
}
END_TEST

START_TEST(test_env_invalid) {
    static const char *const env[] = {"NODE_NAME",
                                      "Node_A",
                                      "EDGEWARDEN_LOG_LEVEL",
                                      "loud",
                                      "EDGEWARDEN_LOG_FORMAT",
                                      "text",
                                      "EDGEWARDEN_LISTEN",
                                      "9808",
                                      "EDGEWARDEN_WATCHDOG_DEVICE",
                                      "dev/watchdog",
                                      NULL};
    struct config_errors errs = {0};
    struct config *c = config_new_default();
    char *printed;

    env_table = env;
    ck_assert_int_eq(config_apply_env(c, fake_getenv, &errs), -EINVAL);
    printed = print_errors(&errs);
    ck_assert_str_eq(printed, "NODE_NAME: not a node name (a lowercase RFC 1123 subdomain)\n"
                              "EDGEWARDEN_LOG_LEVEL: must be one of debug, info, warn, error\n"
                              "EDGEWARDEN_LISTEN: not a HOST:PORT\n"
                              "EDGEWARDEN_WATCHDOG_DEVICE: must be an absolute path (like "
                              "/dev/watchdog) or \"\"\n");
    free(printed);
    /* The valid one applied; the invalid ones changed nothing. */
    ck_assert_int_eq(c->log_format, LOG_FORMAT_TEXT);
    ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
    ck_assert_str_eq(c->node_name, "");
    ck_assert_str_eq(c->listen, "0.0.0.0:9808");
    ck_assert_str_eq(c->fencing.watchdog_device, "");
    config_errors_free(&errs);

    ck_assert_int_eq(config_set_option(c, "log.format", "xml", "--log-format", &errs), -EINVAL);
    ck_assert_int_eq(config_set_option(c, "targets", "x", "--targets", &errs), -EINVAL);
    ck_assert_int_eq(config_set_option(c, "log.level", "warn", "--log-level", NULL), 0);
    printed = print_errors(&errs);
    ck_assert_str_eq(printed, "--log-format: must be one of auto, json, journal, text\n"
                              "--targets: unknown option \"targets\"\n");
    free(printed);
    config_errors_free(&errs);
    config_free(c);
    env_table = NULL;
}
END_TEST

START_TEST(test_set_option_kubernetes) {
    struct config_errors errs = {0};
    struct config *c = must_load(HEAD "kubernetes: {kubeconfig: /etc/k, context: file-ctx}\n");
    char *long_value = malloc(CONFIG_MAX_STRING_BYTES + 2);
    char *printed;

    ck_assert_int_eq(
        config_set_option(c, "kubernetes.kubeconfig", "/root/.kube/config", "--kubeconfig", &errs),
        0);
    ck_assert_str_eq(c->kubernetes.kubeconfig, "/root/.kube/config");
    ck_assert_int_eq(config_set_option(c, "kubernetes.context", "kind-edge", "--context", &errs),
                     0);
    ck_assert_str_eq(c->kubernetes.context, "kind-edge");
    /* Any string is a context name; "" resets both to "not set". */
    ck_assert_int_eq(config_set_option(c, "kubernetes.context", "a b/c:d", "--context", &errs), 0);
    ck_assert_str_eq(c->kubernetes.context, "a b/c:d");
    ck_assert_int_eq(config_set_option(c, "kubernetes.context", "", "--context", &errs), 0);
    ck_assert_str_eq(c->kubernetes.context, "");
    ck_assert_int_eq(config_set_option(c, "kubernetes.kubeconfig", "", "--kubeconfig", &errs), 0);
    ck_assert_str_eq(c->kubernetes.kubeconfig, "");
    ck_assert_uint_eq(errs.n, 0);

    /* Bad input is named after the flag and changes nothing. */
    ck_assert_ptr_nonnull(long_value);
    memset(long_value, 'a', CONFIG_MAX_STRING_BYTES + 1);
    long_value[CONFIG_MAX_STRING_BYTES + 1] = '\0';
    ck_assert_int_eq(config_set_option(c, "kubernetes.kubeconfig", "/x", "--kubeconfig", &errs), 0);
    ck_assert_int_eq(
        config_set_option(c, "kubernetes.kubeconfig", long_value, "--kubeconfig", &errs), -EINVAL);
    ck_assert_int_eq(config_set_option(c, "kubernetes.context", long_value, "--context", &errs),
                     -EINVAL);
    ck_assert_int_eq(config_set_option(c, "kubernetes.namespace", "x", "--namespace", &errs),
                     -EINVAL);
    printed = print_errors(&errs);
    ck_assert_str_eq(printed, "--kubeconfig: longer than 4096 bytes\n"
                              "--context: longer than 4096 bytes\n"
                              "--namespace: unknown option \"kubernetes.namespace\"\n");
    free(printed);
    ck_assert_str_eq(c->kubernetes.kubeconfig, "/x");
    ck_assert_str_eq(c->kubernetes.context, "");
    /* Exactly the limit is fine. */
    long_value[CONFIG_MAX_STRING_BYTES] = '\0';
    ck_assert_int_eq(
        config_set_option(c, "kubernetes.kubeconfig", long_value, "--kubeconfig", NULL), 0);
    ck_assert_uint_eq(strlen(c->kubernetes.kubeconfig), CONFIG_MAX_STRING_BYTES);

    config_errors_free(&errs);
    /* The watchdog device: an absolute path, or "" for none. */
    ck_assert_int_eq(config_set_option(c, "fencing.watchdog.device", "/dev/watchdog", "W", NULL),
                     0);
    ck_assert_str_eq(c->fencing.watchdog_device, "/dev/watchdog");
    ck_assert_int_eq(config_set_option(c, "fencing.watchdog.device", "", "W", NULL), 0);
    ck_assert_str_eq(c->fencing.watchdog_device, "");
    long_value[0] = '/';
    ck_assert_int_eq(config_set_option(c, "fencing.watchdog.device", long_value, "W", NULL), 0);
    long_value[CONFIG_MAX_STRING_BYTES] = 'a';
    ck_assert_int_eq(config_set_option(c, "fencing.watchdog.device", long_value, "W", &errs),
                     -EINVAL);
    ck_assert_int_eq(config_set_option(c, "fencing.watchdog.device", "./wd", "W", &errs), -EINVAL);
    ck_assert_int_eq(config_set_option(c, "fencing.peerTimeout", "2s", "P", &errs), -EINVAL);
    ck_assert_uint_eq(strlen(c->fencing.watchdog_device), CONFIG_MAX_STRING_BYTES);
    printed = print_errors(&errs);
    ck_assert_str_eq(printed, "W: longer than 4096 bytes\n"
                              "W: must be an absolute path (like /dev/watchdog) or \"\"\n"
                              "P: unknown option \"fencing.peerTimeout\"\n");
    free(printed);
    free(long_value);
    config_errors_free(&errs);
    config_free(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Files, copies, fixtures and the documentation                            */

START_TEST(test_file_errors) {
    struct loaded l = load_file("/nonexistent/edgewarden.yaml");

    ck_assert_int_eq(l.r, -ENOENT);
    ck_assert_ptr_null(l.c);
    ck_assert_str_eq(l.errors, "/nonexistent/edgewarden.yaml: No such file or directory\n");
    loaded_free(&l);

    l = load_file(CONFIG_DIR);
    ck_assert_int_eq(l.r, -EISDIR);
    loaded_free(&l);
}
END_TEST

START_TEST(test_dup) {
    struct loaded l = load_file(CONFIG_DIR "/valid-full.yaml");
    struct config *d;

    ck_assert_int_eq(l.r, 0);
    d = config_dup(l.c);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_ne(d->targets, l.c->targets);
    ck_assert_ptr_ne(d->targets[0].probes[0].name, l.c->targets[0].probes[0].name);
    ck_assert_ptr_ne(d->kubernetes.kubeconfig, l.c->kubernetes.kubeconfig);
    ck_assert_ptr_ne(d->kubernetes.context, l.c->kubernetes.context);
    ck_assert_ptr_ne(d->kubernetes.namespace, l.c->kubernetes.namespace);
    ck_assert_ptr_ne(d->kubernetes.pod_selector, l.c->kubernetes.pod_selector);
    ck_assert_ptr_ne(d->fencing.watchdog_device, l.c->fencing.watchdog_device);
    ck_assert_str_eq(d->fencing.watchdog_device, "/dev/watchdog");
    assert_config_eq(d, l.c);
    config_free(d);
    /* Pod mode, and a copy that outlives its original. */
    loaded_free(&l);
    l = load_file(CONFIG_DIR "/valid-kubernetes.yaml");
    ck_assert_int_eq(l.r, 0);
    d = config_dup(l.c);
    ck_assert_ptr_nonnull(d);
    assert_config_eq(d, l.c);
    loaded_free(&l);
    l = load_file(CONFIG_DIR "/valid-kubernetes.yaml");
    assert_config_eq(d, l.c);
    config_free(d);
    ck_assert_ptr_null(config_dup(NULL));
    loaded_free(&l);
}
END_TEST

START_TEST(test_errors_print) {
    struct config_error items[] = {{NULL, "whole document"}, {"a.b[1]", "must be > 0"}};
    struct config_errors errs = {items, 2};
    char *printed = print_errors(&errs);

    ck_assert_str_eq(printed, "whole document\na.b[1]: must be > 0\n");
    free(printed);
    ck_assert_str_eq(config_probe_kind_name(CONFIG_PROBE_TDS), "tds");
    ck_assert_str_eq(config_probe_kind_name(CONFIG_PROBE_PROCESS), "process");
}
END_TEST

START_TEST(test_fixtures) {
    DIR *dir = opendir(CONFIG_DIR);
    struct dirent *e;
    unsigned valid = 0, invalid = 0;

    ck_assert_ptr_nonnull(dir);
    while ((e = readdir(dir))) {
        char path[512];
        char *text;
        size_t len;
        bool is_valid = !strncmp(e->d_name, "valid-", 6);
        bool is_invalid = !strncmp(e->d_name, "invalid-", 8);

        if (!is_valid && !is_invalid)
            continue;
        snprintf(path, sizeof(path), "%s/%s", CONFIG_DIR, e->d_name);
        text = read_all(path, &len);
        if (is_invalid)
            ck_assert_msg(!strncmp(text, "# expect: ", 10), "%s: no \"# expect:\" line", e->d_name);
        else
            ck_assert_msg(!strstr(text, "# expect:"), "%s: valid but expects errors", e->d_name);
        check_example(e->d_name, text, len);
        /* And through the file loader. */
        {
            struct loaded l = load_file(path);
            ck_assert_int_eq(l.r, is_valid ? 0 : -EINVAL);
            loaded_free(&l);
        }
        free(text);
        if (is_valid)
            valid++;
        else
            invalid++;
    }
    closedir(dir);
    ck_assert_uint_ge(valid, 5);
    ck_assert_uint_ge(invalid, 10);
}
END_TEST

/* Every ```yaml / ```json block in docs/configuration.md that holds a whole
 * document (it has apiVersion) is loaded: fine unless it starts with
 * "# expect:" lines. Each must also be one of the fixtures, byte for byte. */
START_TEST(test_docs_examples) {
    char *md = read_all(DOCS_MD, NULL);
    char *p = md;
    unsigned blocks = 0;

    while ((p = strstr(p, "\n```"))) {
        char *start, *end, *block;
        bool json;

        p += 4;
        json = !strncmp(p, "json\n", 5);
        if (strncmp(p, "yaml\n", 5) && !json)
            continue;
        start = p + 5;
        end = strstr(start, "\n```");
        ck_assert_ptr_nonnull(end);
        block = strndup(start, (size_t)(end + 1 - start));
        ck_assert_ptr_nonnull(block);
        if (strstr(block, "apiVersion")) {
            DIR *dir = opendir(CONFIG_DIR);
            struct dirent *e;
            bool found = false;
            char name[32];

            snprintf(name, sizeof(name), "docs block %u", blocks);
            check_example(name, block, strlen(block));
            ck_assert_ptr_nonnull(dir);
            while (!found && (e = readdir(dir))) {
                char path[512];
                char *text;
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", CONFIG_DIR, e->d_name);
                text = read_all(path, NULL);
                found = !strcmp(text, block);
                free(text);
            }
            closedir(dir);
            ck_assert_msg(found, "docs block %u is not a fixture in tests/fixtures/config:\n%s",
                          blocks, block);
            blocks++;
        }
        free(block);
        p = end + 4;
    }
    ck_assert_uint_ge(blocks, 4);
    free(md);
}
END_TEST

START_TEST(test_packaged_config) {
    struct loaded l = load_file(PACKAGED);
    struct config *d = config_new_default();

    ck_assert_msg(l.r == 0, "%s", l.errors);
    /* What the package ships spells out the built-in defaults. */
    assert_config_eq(l.c, d);
    config_free(d);
    loaded_free(&l);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, test_default);
    tcase_add_test(tc, test_default_policy_matches_engine);
    tcase_add_test(tc, test_minimal_is_default);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_pod_mode);
    tcase_add_test(tc, test_kubernetes_values);
    tcase_add_test(tc, test_kubernetes_invalid);
    tcase_add_test(tc, test_node_loss_values);
    tcase_add_test(tc, test_node_loss_invalid);
    tcase_add_test(tc, test_json_equals_yaml);
    tcase_add_test(tc, test_json_errors_match_yaml);
    tcase_add_test(tc, test_defaults_merged);
    tcase_add_loop_test(tc, test_durations, 0,
                        (int)(sizeof(good_durations) / sizeof(good_durations[0])));
    tcase_add_loop_test(tc, test_bad_durations, 0,
                        (int)(sizeof(bad_durations) / sizeof(bad_durations[0])));
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_unknown_keys);
    tcase_add_test(tc, test_probe_numbers);
    tcase_add_test(tc, test_probe_kind_and_names);
    tcase_add_test(tc, test_targets);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_too_deep);
    tcase_add_test(tc, test_too_big);
    tcase_add_test(tc, test_document_shape);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_yaml_features);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_loop_test(tc, test_listen, 0, (int)(sizeof(listens) / sizeof(listens[0])));
    tcase_add_test(tc, test_listen_misc);
    tcase_add_test(tc, test_env);
    tcase_add_test(tc, test_env_empty_and_unset);
    tcase_add_test(tc, test_env_invalid);
    tcase_add_test(tc, test_set_option_kubernetes);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_dup);
    tcase_add_test(tc, test_errors_print);
    tcase_add_test(tc, test_fixtures);
    tcase_add_test(tc, test_docs_examples);
    tcase_add_test(tc, test_packaged_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
