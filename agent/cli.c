/*
 * The command line: `run` (the default), `probe tds|process`, `check-config`,
 * `status` and `version`, each with --help. Exit codes are part of the
 * interface: 0 success / probe ok, 1 probe not ok or a runtime failure, 2 a
 * usage or configuration error. The one-shot commands run their own small
 * loop (probe) or block (status, which is a client, not the agent), and print
 * a short aligned table for people or one JSON object with --json.
 */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "process.h"
#include "tds.h"
#include "version.h"

#define EXIT_USAGE 2

static const char main_usage[] = "Usage: edgewarden [COMMAND] [OPTIONS]\n"
                                 "\n"
                                 "Node-local supervisor for a SQL Server / Azure SQL Edge engine.\n"
                                 "\n"
                                 "Commands:\n"
                                 "  run                     run the agent (default)\n"
                                 "  probe tds HOST:PORT     one TDS PRELOGIN check\n"
                                 "  probe process           one check of the sqlservr process\n"
                                 "  check-config FILE       validate a configuration file\n"
                                 "  status                  show a running agent's targets\n"
                                 "  version                 print the version\n"
                                 "\n"
                                 "Run 'edgewarden COMMAND --help' for a command's options.\n";

static const char run_usage[] =
    "Usage: edgewarden run [OPTIONS]\n"
    "\n"
    "Run the agent until SIGTERM or SIGINT; SIGHUP reloads the configuration.\n"
    "\n"
    "  -c, --config FILE       configuration file (default: the embedded default;\n"
    "                          packaged installs pass /etc/edgewarden/config.yaml)\n"
    "      --listen HOST:PORT  serve /metrics /healthz /readyz /status here ('' disables)\n"
    "      --log-level LEVEL   debug, info, warn or error\n"
    "      --log-format FMT    auto, json, journal or text\n"
    "      --node-name NAME    this node's name (default: $NODE_NAME, then the hostname)\n"
    "      --kubeconfig FILE   API server credentials (default: $KUBECONFIG, then the\n"
    "                          pod's service account); sets kubernetes.kubeconfig\n"
    "      --context NAME      kubeconfig context (default: its current-context)\n"
    "  -h, --help              show this help\n"
    "\n"
    "Environment: NODE_NAME, EDGEWARDEN_LOG_LEVEL, EDGEWARDEN_LOG_FORMAT, EDGEWARDEN_LISTEN.\n"
    "Flags override the environment, which overrides the file.\n";

static const char probe_usage[] =
    "Usage: edgewarden probe tds HOST:PORT [--timeout-ms N] [--json]\n"
    "       edgewarden probe process [--name NAME] [--cgroup FRAGMENT] [--unit UNIT] [--json]\n"
    "\n"
    "Run one check and print its outcome. Exit 0 when ok, 1 when not, 2 on usage error.\n"
    "tds outcomes: ok, refused, timeout, reset, protocol_error, tls_required (counts as ok).\n"
    "process outcomes: ok, absent, zombie, stuck.\n"
    "\n"
    "      --timeout-ms N      give up after N ms (default 2000)\n"
    "      --name NAME         process name to find (default sqlservr)\n"
    "      --cgroup FRAGMENT   only processes whose cgroup path contains this (a pod UID)\n"
    "      --unit UNIT         only processes of this systemd unit\n"
    "      --json              print one JSON object\n"
    "  -h, --help              show this help\n";

static const char check_usage[] =
    "Usage: edgewarden check-config [--kubeconfig FILE] [--context NAME] FILE\n"
    "\n"
    "Validate FILE (YAML or JSON, kind AgentConfig) and the flags given with it,\n"
    "as run would apply them. Prints every error as 'path: message' and exits 2\n"
    "when there is one; exits 0 when valid. The kubeconfig itself is not read.\n"
    "\n"
    "      --kubeconfig FILE   as for run: sets kubernetes.kubeconfig\n"
    "      --context NAME      as for run: sets kubernetes.context\n"
    "  -h, --help              show this help\n";

static const char status_usage[] =
    "Usage: edgewarden status [--url URL] [--json]\n"
    "\n"
    "Fetch a running agent's /status and print its targets.\n"
    "\n"
    "      --url URL           default http://127.0.0.1:9808/status\n"
    "      --json              print the JSON as served\n"
    "  -h, --help              show this help\n";

static const char version_usage[] = "Usage: edgewarden version [--json]\n";

static bool is_help(const char *s) {
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

static int usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "edgewarden: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n%s", usage);
    va_end(ap);
    return EXIT_USAGE;
}

/* A JSON string member, or a fallback when absent or not a string. */
static const char *member_string(json_t *o, const char *key, const char *fallback) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : fallback;
}

/* ---- run --------------------------------------------------------------- */

static int cmd_run(int argc, char **argv) {
    enum { OPT_LISTEN = 256, OPT_LEVEL, OPT_FORMAT, OPT_NODE, OPT_KUBECONFIG, OPT_CONTEXT };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"log-format", required_argument, NULL, OPT_FORMAT},
        {"node-name", required_argument, NULL, OPT_NODE},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct agent_options o = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o.config_path = optarg;
            break;
        case OPT_LISTEN:
            o.listen = optarg;
            break;
        case OPT_LEVEL:
            o.log_level = optarg;
            break;
        case OPT_FORMAT:
            o.log_format = optarg;
            break;
        case OPT_NODE:
            o.node_name = optarg;
            break;
        case OPT_KUBECONFIG:
            o.kubeconfig = optarg;
            break;
        case OPT_CONTEXT:
            o.context = optarg;
            break;
        case 'h':
            fputs(run_usage, stdout);
            return 0;
        default:
            return usage_error(run_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(run_usage, "unexpected argument '%s'", argv[optind]);
    return agent_main(&o);
}

/* ---- probe ------------------------------------------------------------- */

struct probe_cli {
    struct probe_result result;
    bool done;
};

static void on_cli_result(struct probe *p, const struct probe_result *r) {
    struct probe_cli *pc = p->data;
    if (r->unsolicited && pc->done)
        return;
    pc->result = *r;
    pc->done = true;
    probe_close(p, NULL);
}

static void print_row(const char *key, const char *value) {
    printf("%-12s %s\n", key, value);
}

static int print_probe(const char *kind, const char *target, const struct probe_result *r,
                       bool as_json) {
    char latency[32];
    snprintf(latency, sizeof(latency), "%.3f", (double)r->latency_us / 1000.0);
    if (as_json) {
        json_t *o = json_object();
        json_object_set_new(o, "probe", json_string(kind));
        json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, "outcome", json_string(probe_outcome_name(r->outcome)));
        json_object_set_new(o, "latency_ms", json_real((double)r->latency_us / 1000.0));
        if (r->server_version[0])
            json_object_set_new(o, "server_version", json_string(r->server_version));
        if (r->encryption >= 0)
            json_object_set_new(o, "encryption", json_string(tds_encryption_name(r->encryption)));
        if (r->pid > 0)
            json_object_set_new(o, "pid", json_integer(r->pid));
        json_object_set_new(o, "detail", json_string(r->detail));
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        char pid[16];
        print_row("probe", kind);
        print_row("target", target);
        print_row("outcome", probe_outcome_name(r->outcome));
        snprintf(latency + strlen(latency), sizeof(latency) - strlen(latency), " ms");
        print_row("latency", latency);
        if (r->server_version[0])
            print_row("server", r->server_version);
        if (r->encryption >= 0)
            print_row("encryption", tds_encryption_name(r->encryption));
        if (r->pid > 0) {
            snprintf(pid, sizeof(pid), "%d", r->pid);
            print_row("pid", pid);
        }
        if (r->detail[0])
            print_row("detail", r->detail);
    }
    fflush(stdout);
    return probe_outcome_is_success(r->outcome) ? 0 : 1;
}

static int run_probe_once(struct probe *p, struct probe_cli *pc, uv_loop_t *loop) {
    int r = probe_check_once(p, on_cli_result, pc);
    if (r < 0) {
        probe_close(p, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        return r;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return pc->done ? 0 : -EIO;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

static int cmd_probe(int argc, char **argv) {
    enum { OPT_TIMEOUT = 256, OPT_JSON, OPT_NAME, OPT_CGROUP, OPT_UNIT };
    static const struct option longopts[] = {
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"name", required_argument, NULL, OPT_NAME},
        {"cgroup", required_argument, NULL, OPT_CGROUP},
        {"unit", required_argument, NULL, OPT_UNIT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2)
        return usage_error(probe_usage, "%s", "probe needs a kind: tds or process");
    if (is_help(argv[1])) {
        fputs(probe_usage, stdout);
        return 0;
    }
    const char *kind = argv[1];
    if (strcmp(kind, "tds") != 0 && strcmp(kind, "process") != 0)
        return usage_error(probe_usage, "unknown probe kind '%s' (tds or process)", kind);
    uint64_t timeout_ms = 2000;
    bool as_json = false;
    const char *name = NULL, *cgroup = NULL, *unit = NULL;
    int c;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TIMEOUT:
            if (parse_u64(optarg, &timeout_ms) < 0 || timeout_ms == 0 || timeout_ms > 600000)
                return usage_error(probe_usage,
                                   "--timeout-ms: '%s' is not a number of ms in 1..600000", optarg);
            break;
        case OPT_JSON:
            as_json = true;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_CGROUP:
            cgroup = optarg;
            break;
        case OPT_UNIT:
            unit = optarg;
            break;
        case 'h':
            fputs(probe_usage, stdout);
            return 0;
        default:
            return usage_error(probe_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    struct probe_timing timing = {
        .interval_ms = timeout_ms, .timeout_ms = timeout_ms, .rise = 1, .fall = 1};
    struct probe_cli pc = {0};
    uv_loop_t loop;
    char target[300];
    struct probe *p = NULL;
    int rc = 1;
    if (uv_loop_init(&loop) < 0)
        return 1;
    if (strcmp(kind, "tds") == 0) {
        if (optind + 1 != argc) {
            rc = usage_error(probe_usage, "%s", "probe tds needs exactly one HOST:PORT");
            goto out;
        }
        char *host = NULL;
        uint16_t port = 0;
        if (tds_parse_hostport(argv[optind], 1433, &host, &port) < 0) {
            rc = usage_error(probe_usage, "'%s' is not HOST:PORT", argv[optind]);
            goto out;
        }
        snprintf(target, sizeof(target), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
        p = tds_probe_new(&loop, "tds", host, port, &timing);
        free(host);
    } else {
        if (optind != argc) {
            rc = usage_error(probe_usage, "unexpected argument '%s'", argv[optind]);
            goto out;
        }
        struct process_match m = {.comm = name, .cgroup = cgroup, .unit = unit};
        snprintf(target, sizeof(target), "%s", name ? name : "sqlservr");
        p = process_probe_new(&loop, "process", &m, &timing);
    }
    if (!p) {
        fprintf(stderr, "edgewarden: out of memory\n");
        goto out;
    }
    int r = run_probe_once(p, &pc, &loop);
    if (r < 0) {
        fprintf(stderr, "edgewarden: probe failed to run: %s\n", strerror(-r));
        goto out;
    }
    rc = print_probe(kind, target, &pc.result, as_json);
out:
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* ---- check-config ------------------------------------------------------ */

static int cmd_check_config(int argc, char **argv) {
    enum { OPT_KUBECONFIG = 256, OPT_CONTEXT };
    static const struct option longopts[] = {
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"context", required_argument, NULL, OPT_CONTEXT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* The flags as run applies them (agent.c), in the same order. */
    struct {
        const char *key, *value, *flag;
    } flags[] = {
        {"kubernetes.kubeconfig", NULL, "--kubeconfig"},
        {"kubernetes.context", NULL, "--context"},
    };
    int opt;
    if (argc == 2 && is_help(argv[1])) {
        fputs(check_usage, stdout);
        return 0;
    }
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_KUBECONFIG:
            flags[0].value = optarg;
            break;
        case OPT_CONTEXT:
            flags[1].value = optarg;
            break;
        case 'h':
            fputs(check_usage, stdout);
            return 0;
        default:
            return usage_error(check_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return usage_error(check_usage, "%s", "check-config needs exactly one FILE");
    const char *path = argv[optind];
    struct config *c = NULL;
    struct config_errors errs = {0};
    int r = config_load_file(path, &c, &errs);
    for (size_t i = 0; r >= 0 && i < sizeof(flags) / sizeof(flags[0]); i++) {
        int rf;
        if (!flags[i].value)
            continue;
        rf = config_set_option(c, flags[i].key, flags[i].value, flags[i].flag, &errs);
        if (rf == -ENOMEM || (rf < 0 && r == 0))
            r = rf;
    }
    if (r < 0) {
        if (errs.n)
            config_errors_print(&errs, stderr);
        else
            fprintf(stderr, "%s: %s\n", path, strerror(-r));
        config_free(c);
        config_errors_free(&errs);
        return EXIT_USAGE;
    }
    size_t probes = 0;
    for (size_t i = 0; i < c->n_targets; i++)
        probes += c->targets[i].n_probes;
    printf("%s: ok (%zu target%s, %zu probe%s)\n", path, c->n_targets, c->n_targets == 1 ? "" : "s",
           probes, probes == 1 ? "" : "s");
    config_free(c);
    config_errors_free(&errs);
    return 0;
}

/* ---- status ------------------------------------------------------------ */

static size_t on_curl_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct buf *b = userdata;
    return buf_append(b, ptr, size * nmemb) < 0 ? 0 : size * nmemb;
}

static void print_status_table(json_t *root) {
    printf("node %s, agent %s, %s\n", member_string(root, "node", "?"),
           member_string(root, "version", "?"),
           json_is_true(json_object_get(root, "ready")) ? "ready" : "not ready");
    printf("%-16s %-9s %-18s %-25s %s\n", "TARGET", "STATE", "REASON", "SINCE", "PROBES");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "targets"), i, t) {
        struct buf probes;
        buf_init(&probes, 0);
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(t, "probes"), k, p) {
            const char *outcome = json_string_value(json_object_get(p, "outcome"));
            buf_printf(&probes, "%s%s=%s", k ? " " : "", member_string(p, "name", "?"),
                       outcome ? outcome : "-");
            if (json_is_number(json_object_get(p, "latency_ms")) && outcome)
                buf_printf(&probes, "(%.1fms)",
                           json_number_value(json_object_get(p, "latency_ms")));
        }
        printf("%-16s %-9s %-18s %-25s %s\n", member_string(t, "name", "?"),
               member_string(t, "state", "?"), member_string(t, "reason", ""),
               member_string(t, "since", ""), probes.data ? probes.data : "");
        buf_free(&probes);
    }
}

static int cmd_status(int argc, char **argv) {
    enum { OPT_URL = 256, OPT_JSON };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:9808/status";
    bool as_json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_URL:
            url = optarg;
            break;
        case OPT_JSON:
            as_json = true;
            break;
        case 'h':
            fputs(status_usage, stdout);
            return 0;
        default:
            return usage_error(status_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error(status_usage, "unexpected argument '%s'", argv[optind]);
    struct buf body;
    buf_init(&body, 16 << 20);
    int rc = 1;
    CURL *h = curl_easy_init();
    if (!h)
        goto out;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_curl_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    CURLcode cr = curl_easy_perform(h);
    if (cr != CURLE_OK) {
        fprintf(stderr,
                "edgewarden: cannot fetch %s: %s (is the agent running with server.listen set?)\n",
                url, curl_easy_strerror(cr));
        goto out;
    }
    json_error_t err;
    json_t *root = json_loadb(body.data ? body.data : "", body.len, 0, &err);
    if (!root || !json_is_object(root)) {
        fprintf(stderr, "edgewarden: %s did not return a status object: %s\n", url, err.text);
        json_decref(root);
        goto out;
    }
    if (as_json)
        fwrite(body.data, 1, body.len, stdout);
    else
        print_status_table(root);
    json_decref(root);
    rc = 0;
out:
    curl_easy_cleanup(h);
    buf_free(&body);
    return rc;
}

/* ---- version ----------------------------------------------------------- */

static int cmd_version(int argc, char **argv) {
    if (argc == 2 && is_help(argv[1])) {
        fputs(version_usage, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--json") == 0) {
        printf("{\"version\":\"%s\",\"revision\":\"%s\",\"libuv\":\"%s\",\"libcurl\":\"%s\","
               "\"jansson\":\"%s\"}\n",
               EDGEWARDEN_VERSION, EDGEWARDEN_GIT, uv_version_string(),
               curl_version_info(CURLVERSION_NOW)->version, jansson_version_str());
        return 0;
    }
    if (argc != 1)
        return usage_error(version_usage, "unexpected argument '%s'", argv[1]);
    printf("edgewarden %s (%s)\n", EDGEWARDEN_VERSION, EDGEWARDEN_GIT);
    return 0;
}

int cli_main(int argc, char **argv) {
    if (argc < 2)
        return cmd_run(argc, argv);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0)
        return cmd_version(1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "probe") == 0)
        return cmd_probe(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cmd_run(argc, argv); /* "edgewarden --config F" means run */
    return usage_error(main_usage, "unknown command '%s'", cmd);
}
