/*
 * The agent's configuration: /etc/edgewarden/config.yaml (YAML or JSON, one
 * schema) turned into a plain struct config the rest of the agent reads.
 * Loading is two passes. libyaml's events become a jansson tree (plain
 * scalars typed as YAML 1.2 core does, quoted scalars always strings;
 * anchors, tags, duplicate keys and more than one document rejected; depth,
 * size and string length bounded), then a validator walks the tree against
 * the schema and collects every error with its path, such as
 * "targets[0].probes[1].interval: must be > 0", so an operator fixes a file
 * in one round. Unknown keys are errors, with a did-you-mean hint.
 * Overrides stack file < environment < flags: config_apply_env() and
 * config_set_option() apply the later layers. The module is pure: it never
 * logs and never reads the environment on its own; the caller prints the
 * errors it returns. The caller owns every struct config it is handed.
 * docs/configuration.md is the reference for the schema.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "probe.h"

#define CONFIG_API_VERSION    "edgewarden.io/v1alpha1"
#define CONFIG_KIND           "AgentConfig"
#define CONFIG_DEFAULT_PATH   "/etc/edgewarden/config.yaml"
#define CONFIG_DEFAULT_LISTEN "0.0.0.0:9808"

/* Limits on the input; past them the load fails with an error that says so. */
#define CONFIG_MAX_FILE_BYTES   (1024 * 1024)
#define CONFIG_MAX_DEPTH        32
#define CONFIG_MAX_STRING_BYTES 4096
#define CONFIG_MAX_TARGETS      64
#define CONFIG_MAX_PROBES       8
#define CONFIG_MAX_DURATION_MS  (24ULL * 60 * 60 * 1000) /* every duration is ≤ 24h */
#define CONFIG_MAX_RISE_FALL    1000
#define CONFIG_MAX_RESTARTS     32 /* the health engine's restart ring, HEALTH_MAX_RESTARTS */
#define CONFIG_MAX_ERRORS       64 /* after this many, one "too many errors" entry ends the list */

/* Bounds of the kubernetes section (struct config_kubernetes). */
#define CONFIG_MAX_QPS                10000
#define CONFIG_MAX_BURST              10000
#define CONFIG_MAX_REQUEST_TIMEOUT_MS (5ULL * 60 * 1000)  /* requestTimeout ≤ 5m */
#define CONFIG_MAX_LEASE_DURATION_MS  (60ULL * 60 * 1000) /* lease.duration ≤ 1h */

/* Bounds of the node-loss keys (docs/node-loss.md): the failover budget in
 * the policy section, and the remediation and fencing sections. */
#define CONFIG_MAX_CONCURRENT_FAILOVERS 100
#define CONFIG_MIN_FAILOVER_TIMEOUT_MS  (10ULL * 1000)      /* policy.failoverTimeout ≥ 10s */
#define CONFIG_MIN_ELECTION_LEASE_MS    (2ULL * 1000)       /* election.leaseDuration ≥ 2s */
#define CONFIG_MAX_ELECTION_LEASE_MS    (60ULL * 60 * 1000) /* election.leaseDuration ≤ 1h */
#define CONFIG_MIN_NODE_LEASE_STALE_MS  (1ULL * 1000)       /* nodeLeaseStaleAfter ≥ 1s */
#define CONFIG_MAX_NODE_LEASE_STALE_MS  (60ULL * 60 * 1000) /* nodeLeaseStaleAfter ≤ 1h */
#define CONFIG_MAX_FENCE_MARGIN_MS      (5ULL * 60 * 1000)  /* fenceMargin ≤ 5m */
#define CONFIG_MIN_WATCHDOG_TIMEOUT_MS  (1ULL * 1000)       /* watchdog.timeout ≥ 1s */
#define CONFIG_MAX_WATCHDOG_TIMEOUT_MS  (600ULL * 1000)     /* watchdog.timeout ≤ 600s */

enum config_probe_kind { CONFIG_PROBE_TDS, CONFIG_PROBE_PROCESS };

/* One probe of a target. Every field is filled: what the file omits comes from
 * the defaults section, and what that omits from the built-in defaults. */
struct config_probe {
    enum config_probe_kind kind;
    char *name;                 /* owned; unique within its target; DNS label */
    struct probe_timing timing; /* interval_ms > 0, 0 < timeout_ms ≤ interval_ms, rise, fall ≥ 1 */
    /* process: D state for longer than this is a failure, 0 = never; tds: 0 */
    uint64_t stuck_after_ms;
};

/* One engine to watch (static mode). Strings are owned and never NULL. */
struct config_target {
    char *name;                  /* unique; DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, ≤ 63) */
    char *address;               /* host name or IP literal (no brackets) for the tds probe */
    uint16_t port;               /* 1..65535 */
    char *process_comm;          /* /proc/<pid>/comm of the engine, ≤ 15 bytes, never "" */
    char *process_cgroup;        /* cgroup path fragment that must match, "" = any */
    char *process_unit;          /* systemd unit that must own the process, "" = any */
    struct config_probe *probes; /* owned array, 1..CONFIG_MAX_PROBES */
    size_t n_probes;
};

/* The failover ladder's timings (policy.h, docs/policy.md): the `policy:`
 * section. Durations in ms, each ≤ CONFIG_MAX_DURATION_MS. */
struct config_policy {
    uint64_t relocate_after_ms;     /* relocateAfter, default 30s */
    uint64_t restart_allowance_ms;  /* restartAllowance, default 20s */
    uint64_t quarantine_ms;         /* quarantine, default 5m */
    uint64_t event_dedup_window_ms; /* eventDedupWindow, default 60s */
    uint64_t budget_retry_ms;       /* budgetRetry, default 5s, > 0 */
    bool evict_enabled;             /* evict.enabled, default false */
    uint64_t evict_after_ms;        /* evict.after, default 60s */
    bool cordon_enabled;            /* cordon.enabled, default false */
    uint64_t cordon_after_ms;       /* cordon.after, default 30s */
    /* The failover budget (docs/node-loss.md): Leases edgewarden-failover-<i>,
     * i < max_concurrent_failovers, each held for at most failover_timeout_ms. */
    unsigned max_concurrent_failovers; /* maxConcurrentFailovers, default 1, 1..100 */
    uint64_t failover_timeout_ms;      /* failoverTimeout, default 5m, whole seconds, 10s..24h */
};

/* The `kubernetes:` section: whether and how the agent reports to the API
 * server. Strings are owned and never NULL; "" means "not set" (for namespace:
 * the credentials' namespace, from the kubeconfig context or the service
 * account, else "edgewarden"). */
struct config_kubernetes {
    bool enabled;                /* enabled, default false (the local demo has no cluster) */
    char *kubeconfig;            /* kubeconfig: path; "" = $KUBECONFIG, then in-cluster */
    char *context;               /* context: kubeconfig context; "" = its current-context */
    bool allow_insecure;         /* allowInsecure: accept insecure-skip-tls-verify; false */
    char *namespace;             /* namespace: of the heartbeat Lease; "" or a DNS label */
    double qps;                  /* qps: API request starts per second, 20, 0 < qps ≤ 10000 */
    unsigned burst;              /* burst: token bucket size, default 40, 1..10000 */
    uint64_t request_timeout_ms; /* requestTimeout: per attempt, default 10s, 0 < t ≤ 5m */
    uint64_t lease_duration_ms;  /* lease.duration: default 15s, whole seconds, 1s..1h */
    uint64_t lease_renew_ms;     /* lease.renewInterval: default 5s, 0 < r < lease.duration */
    /* pods.selector: an equality-based label selector as
     * kube_json_selector_parse() reads it, kept as written; "" = static mode
     * (the config's targets). Set: pod mode, targets[0] is the template. */
    char *pod_selector;
};

/* The `remediation:` section: taking part in the remediator election, and
 * how the elected agent judges a node lost (docs/node-loss.md). Durations in
 * ms. */
struct config_remediation {
    bool enabled; /* enabled, default true: a candidate when kubernetes.enabled */
    /* election: the Lease edgewarden-remediator, client-go's three timings,
     * retry_period < renew_deadline < lease_duration. */
    uint64_t election_lease_duration_ms; /* election.leaseDuration: 15s, whole seconds, 2s..1h */
    uint64_t election_renew_deadline_ms; /* election.renewDeadline: 10s, > 0 */
    uint64_t election_retry_period_ms;   /* election.retryPeriod: 2s, > 0 */
    uint64_t node_lease_stale_after_ms;  /* nodeLeaseStaleAfter: 20s, 1s..1h */
    uint64_t fence_margin_ms;            /* fenceMargin: 2s, 0..5m */
    /* assumeDeadAfter: 0 (default) = never; else ≥ kubernetes.lease.duration */
    uint64_t assume_dead_after_ms;
};

/* The `fencing:` section: the watchdog this node feeds while it reaches the
 * API server (or a roll call of its peers proves an outage). */
struct config_fencing {
    /* watchdog.device: an absolute path, owned, never NULL; "" = no
     * watchdog: the node advertises itself unfenced. */
    char *watchdog_device;
    uint64_t watchdog_timeout_ms; /* watchdog.timeout: 10s, whole seconds, 1s..600s */
    /* peerTimeout: 1s, > 0; kubernetes.lease.renewInterval + peerTimeout <
     * kubernetes.lease.duration */
    uint64_t peer_timeout_ms;
};

/* The whole agent configuration. Strings are owned and never NULL. */
struct config {
    /* "" = not configured: after config_apply_env() (NODE_NAME) has had its
     * turn, the agent fills in the host name. */
    char *node_name;
    enum log_level log_level;
    enum log_format log_format;
    char *listen; /* HOST:PORT or [v6]:PORT of the metrics server; "" = disabled */
    uint64_t startup_grace_ms;
    /* This many engine restarts within crash_loop_window_ms is a crash loop; 0 = off. */
    unsigned crash_loop_restarts;
    uint64_t crash_loop_window_ms;
    struct config_target *targets; /* owned array, 1..CONFIG_MAX_TARGETS */
    size_t n_targets;
    struct config_policy policy;
    struct config_kubernetes kubernetes;
    struct config_remediation remediation;
    struct config_fencing fencing;
};

/* One problem found while loading or overriding. path is NULL for problems of
 * the document as a whole (I/O, YAML syntax with "line:column: " at the start
 * of the message); otherwise a dotted path with [i] indexes into the document
 * ("targets[0].probes[1].interval"), or the environment variable or flag name
 * that carried a bad override. Both strings are owned by the list. */
struct config_error {
    char *path;
    char *message;
};

/* A list of errors. Start it zeroed ({0}); loaders append to it, so one list
 * can gather the errors of several steps. */
struct config_errors {
    struct config_error *items;
    size_t n;
};

/* Release every entry and reset the list to empty. NULL-safe. */
void config_errors_free(struct config_errors *errs);
/* Write one "path: message" line per entry (just "message" when path is NULL).
 * Returns 0 or -EIO. */
int config_errors_print(const struct config_errors *errs, FILE *f);

/* A new config holding the built-in defaults (what an empty-but-valid file,
 * "apiVersion" and "kind" only, gives): one target "sqlserver" at
 * 127.0.0.1:1433 with a tds and a process probe. NULL on allocation failure. */
struct config *config_new_default(void);

/* Parse and validate a document. On success *out is a new config and 0 is
 * returned. Otherwise *out is NULL and the result is -EINVAL with every
 * problem appended to errs (invalid content, including a document over
 * CONFIG_MAX_FILE_BYTES), or -ENOMEM. text need not be NUL-terminated; it is
 * borrowed. errs may be NULL when only the verdict matters. */
int config_load_string(const char *text, size_t len, struct config **out,
                       struct config_errors *errs);
/* As config_load_string() on the contents of the file at path. An I/O failure
 * returns its -errno and appends one path-less entry naming the file. */
int config_load_file(const char *path, struct config **out, struct config_errors *errs);

/* Apply the environment layer through get (getenv, or a stub in tests):
 * NODE_NAME, EDGEWARDEN_LOG_LEVEL, EDGEWARDEN_LOG_FORMAT, EDGEWARDEN_LISTEN,
 * EDGEWARDEN_WATCHDOG_DEVICE.
 * An unset variable changes nothing; so does an empty one, except
 * EDGEWARDEN_LISTEN="" which disables the metrics server. Valid values are
 * applied even when another is invalid. The strings get returns are
 * borrowed and not kept. Returns 0, -EINVAL with errors
 * (path = the variable's name) appended to errs, or -ENOMEM. */
int config_apply_env(struct config *c, const char *(*get)(const char *name),
                     struct config_errors *errs);
/* Apply one override by its document key: "nodeName", "log.level",
 * "log.format", "server.listen", "kubernetes.kubeconfig",
 * "kubernetes.context" — what the command-line flags set — or
 * "fencing.watchdog.device" (from the environment). The two kubernetes
 * keys take any string up to CONFIG_MAX_STRING_BYTES; "" resets them to
 * "not set". The watchdog device is "" or an absolute path. origin (e.g. "--log-level") is the error path; value is
 * borrowed. Returns 0, -EINVAL with an error appended (unknown key or bad
 * value), or -ENOMEM. */
int config_set_option(struct config *c, const char *key, const char *value, const char *origin,
                      struct config_errors *errs);

/* Split a listen address ("0.0.0.0:9808", "[::1]:9808", "localhost:9808")
 * into host (without brackets, NUL-terminated) and port (1..65535; 0 is
 * refused). Returns 0, -EINVAL when s is not HOST:PORT, or -ENAMETOOLONG when
 * host_size is too small. */
int config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port);

/* "tds" or "process". */
const char *config_probe_kind_name(enum config_probe_kind kind);

/* A new deep copy, or NULL on allocation failure (or when c is NULL). */
struct config *config_dup(const struct config *c);
/* Release c and everything it owns. NULL-safe. */
void config_free(struct config *c);
