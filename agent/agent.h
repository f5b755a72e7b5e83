/*
 * The agent: one struct built in main and passed down, owning the loop's
 * handles, the configuration, the targets with their probes and health, the
 * metrics registry and the HTTP server. Probes report into agent.c, which
 * feeds the health engine and fans each transition out — log, metrics and
 * sd_notify STATUS now, the Kubernetes reporter later.
 * SIGHUP reloads the configuration (a bad one keeps the old running);
 * SIGTERM/SIGINT stop the loop cleanly.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "health.h"
#include "notify.h"
#include "probe.h"

/* Where the configuration comes from, in override order: file (or the
 * embedded default when config_path is NULL) < environment < these flags.
 * All strings borrowed; NULL means "not given". */
struct agent_options {
    const char *config_path;
    const char *listen;
    const char *log_level;
    const char *log_format;
    const char *node_name;
    const char *kubeconfig; /* --kubeconfig: kubernetes.kubeconfig */
    const char *context;    /* --context: kubernetes.context */
};

/* Build the effective configuration for opts: load, then environment, then
 * flags, then fill nodeName from the hostname. On invalid input returns
 * -EINVAL with errs filled (caller frees both). */
int agent_load_config(const struct agent_options *opts, struct config **out,
                      struct config_errors *errs);

/* Run the agent until SIGTERM/SIGINT. Returns the process exit code. */
int agent_main(const struct agent_options *opts);
