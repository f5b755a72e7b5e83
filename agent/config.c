/*
 * Configuration loading. A document goes through two passes. The reader
 * (agent/yaml_tree.c) turns libyaml's events into a jansson tree: plain
 * scalars are typed as the YAML
 * 1.2 core schema types them (null, true/false, integers, floats), quoted
 * scalars stay strings, and what would make one file mean two things —
 * anchors and aliases, tags, duplicate keys, a second document — is refused.
 * JSON is YAML's flow style, so the same reader takes it and both formats
 * give the same errors. The validator then walks the tree against the schema
 * into a struct config, collecting every error with its document path rather
 * than stopping at the first. Omitted and null keys take their defaults; the
 * defaults section fills in every probe field a probe leaves out. Checks
 * between two keys (a probe's timeout ≤ its interval, the Lease's renewal
 * shorter than its duration) report on the later key's path; those between
 * sections (fencing.peerTimeout against the heartbeat Lease,
 * remediation.assumeDeadAfter against its duration) run once every section
 * is read, and only on values that were valid themselves. The module
 * is pure (no logging, no getenv); the tree and every partial config are
 * freed before a load returns, so the caller owns exactly what it is handed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "kube_json.h"
#include "yaml_tree.h"

#define MAX_SUGGEST_KEY_BYTES 64 /* longer unknown keys get no did-you-mean */
#define MAX_SHOWN_KEY_BYTES   64 /* longer keys are cut short in paths */

/* Built-in probe defaults, before the document's defaults section. */
struct probe_fields {
    struct probe_timing timing;
    uint64_t stuck_after_ms;
};

static const struct probe_fields builtin_tds = {
    .timing = {.interval_ms = 2000, .timeout_ms = 1000, .jitter_ms = 1000, .rise = 2, .fall = 3},
    .stuck_after_ms = 0,
};
static const struct probe_fields builtin_process = {
    .timing = {.interval_ms = 5000, .timeout_ms = 1000, .jitter_ms = 1000, .rise = 1, .fall = 1},
    .stuck_after_ms = 30000,
};

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_ERROR] = "error",
};
static const char *const format_names[] = {
    [LOG_FORMAT_AUTO] = "auto",
    [LOG_FORMAT_JSON] = "json",
    [LOG_FORMAT_JOURNAL] = "journal",
    [LOG_FORMAT_TEXT] = "text",
};

/* ------------------------------------------------------------------------ */
/* Error collection                                                         */

/* Shared by both passes: where errors go, how many were found (also when the
 * caller passed no list), and whether memory ran out on the way. */
struct ctx {
    struct config_errors *errs;
    size_t count;
    bool oom;
};

static void errors_push(struct ctx *x, const char *path, char *message) {
    struct config_error *items;
    char *path_copy = NULL;

    if (path) {
        path_copy = strdup(path);
        if (!path_copy)
            goto fail;
    }
    items = realloc(x->errs->items, (x->errs->n + 1) * sizeof(*items));
    if (!items)
        goto fail;
    x->errs->items = items;
    items[x->errs->n].path = path_copy;
    items[x->errs->n].message = message;
    x->errs->n++;
    return;
fail:
    free(path_copy);
    free(message);
    x->oom = true;
}

/* Record one error. path NULL: the document as a whole. */
__attribute__((format(printf, 3, 4))) static void fail(struct ctx *x, const char *path,
                                                       const char *fmt, ...) {
    char *message;
    va_list ap;
    int r;

    x->count++;
    if (!x->errs || x->count > CONFIG_MAX_ERRORS + 1)
        return;
    if (x->count == CONFIG_MAX_ERRORS + 1) {
        message = strdup("too many errors; stopping here");
        if (!message) {
            x->oom = true;
            return;
        }
        errors_push(x, NULL, message);
        return;
    }
    va_start(ap, fmt);
    r = vasprintf(&message, fmt, ap);
    va_end(ap);
    if (r < 0) {
        x->oom = true;
        return;
    }
    errors_push(x, path, message);
}

void config_errors_free(struct config_errors *errs) {
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->items[i].path);
        free(errs->items[i].message);
    }
    free(errs->items);
    errs->items = NULL;
    errs->n = 0;
}

int config_errors_print(const struct config_errors *errs, FILE *f) {
    for (size_t i = 0; errs && i < errs->n; i++) {
        const struct config_error *e = &errs->items[i];
        if (e->path)
            fprintf(f, "%s: %s\n", e->path, e->message);
        else
            fprintf(f, "%s\n", e->message);
    }
    return ferror(f) ? -EIO : 0;
}

/* ------------------------------------------------------------------------ */
/* Paths: one buffer, extended on the way down and cut back on the way up.  */

static bool is_simple_key(const char *key) {
    if (!*key)
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Append a key: ".name" for plain keys, ["odd key"] (escaped, cut short) for others. */
static size_t path_push_key(struct ctx *x, struct buf *path, const char *key) {
    size_t saved = path->len;
    int r;

    if (is_simple_key(key) && strlen(key) <= MAX_SHOWN_KEY_BYTES) {
        r = buf_printf(path, "%s%s", path->len ? "." : "", key);
    } else {
        r = buf_puts(path, "[\"");
        for (size_t i = 0; r >= 0 && key[i]; i++) {
            unsigned char c = (unsigned char)key[i];
            if (i >= MAX_SHOWN_KEY_BYTES && (c & 0xc0) != 0x80) { /* cut at a character */
                r = buf_puts(path, "...");
                break;
            }
            if (c == '"' || c == '\\')
                r = buf_printf(path, "\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                r = buf_printf(path, "\\x%02x", c);
            else
                r = buf_append(path, &key[i], 1);
        }
        if (r >= 0)
            r = buf_puts(path, "\"]");
    }
    if (r < 0)
        x->oom = true;
    return saved;
}

static size_t path_push_index(struct ctx *x, struct buf *path, size_t i) {
    size_t saved = path->len;
    if (buf_printf(path, "[%zu]", i) < 0)
        x->oom = true;
    return saved;
}

static void path_pop(struct buf *path, size_t saved) {
    path->len = saved;
    if (path->data)
        path->data[saved] = '\0';
}

static const char *path_str(const struct buf *path) {
    return path->len ? path->data : NULL;
}

/* ------------------------------------------------------------------------ */
/* Pass one: YAML events -> jansson tree (agent/yaml_tree.c)                */

/* Read text into a tree. A new reference, or NULL for an empty document or
 * after an error (then recorded in x). Problems the reader went on past are
 * reported with their path, the rest with their line:column. */
static json_t *read_tree(struct ctx *x, const char *text, size_t len) {
    static const struct yaml_tree_options opts = {
        .max_bytes = CONFIG_MAX_FILE_BYTES,
        .max_depth = CONFIG_MAX_DEPTH,
        .max_string_bytes = CONFIG_MAX_STRING_BYTES,
        .max_errors = CONFIG_MAX_ERRORS + 1, /* one more makes fail() say "too many" */
        .scalars = YAML_TREE_SCALARS_TYPED,
        .report = YAML_TREE_ALL_ERRORS,
        .document_name = "config",
    };
    struct yaml_tree_errors errs = {0};
    json_t *root;
    struct buf path;
    int r;

    buf_init(&path, 0);
    r = yaml_tree_read(text, len, &opts, &root, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        const struct yaml_tree_error *e = &errs.items[i];
        if (e->recovered) {
            path_pop(&path, 0);
            for (size_t k = 0; k < e->path_len; k++) {
                if (e->path[k].key)
                    path_push_key(x, &path, e->path[k].key);
                else
                    path_push_index(x, &path, e->path[k].index);
            }
            fail(x, path_str(&path), "%s", e->message);
        } else if (e->line) {
            fail(x, NULL, "%zu:%zu: %s", e->line, e->column, e->message);
        } else {
            fail(x, NULL, "%s", e->message);
        }
    }
    if (r == -ENOMEM)
        x->oom = true;
    yaml_tree_errors_free(&errs);
    buf_free(&path);
    return root;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

/* Go style without the zero parts: "500ms", "2s", "1m30s", "1.5s", "24h". */
static void format_duration(uint64_t ms, char *out, size_t size) {
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    size_t n = 0;

    out[0] = '\0';
    if (ms < 1000) {
        snprintf(out, size, "%llums", (unsigned long long)ms);
        return;
    }
    if (h)
        n += (size_t)snprintf(out + n, size - n, "%lluh", (unsigned long long)h);
    if (m && n < size)
        n += (size_t)snprintf(out + n, size - n, "%llum", (unsigned long long)m);
    if ((s || frac) && n < size) {
        char secs[32];
        snprintf(secs, sizeof(secs), "%llu.%03llu", (unsigned long long)s,
                 (unsigned long long)frac);
        for (size_t i = strlen(secs); secs[i - 1] == '0' || secs[i - 1] == '.'; i--) {
            bool dot = secs[i - 1] == '.';
            secs[i - 1] = '\0';
            if (dot)
                break;
        }
        snprintf(out + n, size - n, "%ss", secs);
    }
}

/* Parse a Go-style duration into whole milliseconds. Returns 0, -EINVAL
 * (message in *why), or -ERANGE (past CONFIG_MAX_DURATION_MS). */
static int parse_duration(const char *s, uint64_t *out_ms, char *why, size_t why_size) {
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ULL},
        {"us", 1000ULL},
        {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
        {"ms", 1000000ULL},
        {"s", 1000000000ULL},
        {"m", 60ULL * 1000000000ULL},
        {"h", 3600ULL * 1000000000ULL},
    };
    const uint64_t max_ns = CONFIG_MAX_DURATION_MS * 1000000ULL;
    uint64_t total_ns = 0;
    const char *p = s;
    bool negative = false;

    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    if (!strcmp(p, "0")) {
        *out_ms = 0;
        return 0;
    }
    if (!*p)
        goto syntax;
    while (*p) {
        uint64_t whole = 0, frac = 0, frac_scale = 1, unit_ns = 0;
        bool digits = false, overflow = false;
        const char *unit;
        size_t unit_len;

        for (; *p >= '0' && *p <= '9'; p++, digits = true) {
            if (whole > (UINT64_MAX - 9) / 10)
                overflow = true;
            else
                whole = whole * 10 + (uint64_t)(*p - '0');
        }
        if (*p == '.') {
            for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
                if (frac_scale < 1000000000000000000ULL) { /* 18 digits are plenty */
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    frac_scale *= 10;
                }
            }
        }
        if (!digits)
            goto syntax;
        unit = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (unsigned char)*p >= 0x80)
            p++;
        unit_len = (size_t)(p - unit);
        if (unit_len == 0) {
            if (*p)
                goto syntax;
            if (s[strspn(s, "0123456789")] == '\0')
                snprintf(why, why_size, "missing unit in duration (write \"%sms\")", s);
            else
                snprintf(why, why_size, "missing unit in duration");
            return -EINVAL;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].name) == unit_len && !memcmp(unit, units[i].name, unit_len))
                unit_ns = units[i].ns;
        if (!unit_ns) {
            if (unit_len > 16)
                snprintf(why, why_size, "unknown unit in duration (use ms, s, m or h)");
            else
                snprintf(why, why_size, "unknown unit \"%.*s\" in duration (use ms, s, m or h)",
                         (int)unit_len, unit);
            return -EINVAL;
        }
        if (overflow || whole > max_ns / unit_ns)
            return -ERANGE;
        /* frac / frac_scale of a unit, in ns. The product can pass 64 bits
         * (frac < 1e18, unit_ns <= 3.6e12), so it is taken in long double;
         * the quotient is below unit_ns and converts back exactly enough. */
        {
            long double part = (long double)frac * (long double)unit_ns / (long double)frac_scale;
            uint64_t frac_ns = (uint64_t)part;
            total_ns += whole * unit_ns + frac_ns;
        }
        if (total_ns > max_ns)
            return -ERANGE;
    }
    if (negative && total_ns) {
        snprintf(why, why_size, "must not be negative");
        return -EINVAL;
    }
    if (total_ns % 1000000) {
        snprintf(why, why_size, "must be a whole number of milliseconds");
        return -EINVAL;
    }
    *out_ms = total_ns / 1000000;
    return 0;
syntax:
    snprintf(why, why_size, "not a duration (like \"500ms\", \"2s\" or \"1m30s\")");
    return -EINVAL;
}

/* A duration: a Go-style string or an integer number of milliseconds, in
 * min_ms..max_ms (max_ms ≤ CONFIG_MAX_DURATION_MS). */
static bool want_duration_range(struct ctx *x, const struct buf *path, const json_t *v,
                                uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms) {
    char why[128], shown[32];
    uint64_t ms;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0) {
            fail(x, path_str(path), "must not be negative");
            return false;
        }
        ms = (uint64_t)i;
    } else if (json_is_string(v)) {
        int r = parse_duration(json_string_value(v), &ms, why, sizeof(why));
        if (r == -ERANGE)
            goto too_large;
        if (r < 0) {
            fail(x, path_str(path), "%s", why);
            return false;
        }
    } else {
        fail(x, path_str(path), "must be a duration (like \"2s\") or integer milliseconds, not %s",
             yaml_tree_type_name(v));
        return false;
    }
    if (ms > max_ms)
        goto too_large;
    if (ms < min_ms) {
        if (min_ms <= 1) {
            fail(x, path_str(path), "must be > 0");
        } else {
            format_duration(min_ms, shown, sizeof(shown));
            fail(x, path_str(path), "must be at least %s", shown);
        }
        return false;
    }
    *out_ms = ms;
    return true;
too_large:
    format_duration(max_ms, shown, sizeof(shown));
    fail(x, path_str(path), "must be at most %s", shown);
    return false;
}

static bool want_duration(struct ctx *x, const struct buf *path, const json_t *v, uint64_t min_ms,
                          uint64_t *out_ms) {
    return want_duration_range(x, path, v, min_ms, CONFIG_MAX_DURATION_MS, out_ms);
}

/* A duration the API takes in whole seconds (a Lease's leaseDurationSeconds,
 * a watchdog's timeout), in min_ms..max_ms. */
static bool want_seconds_range(struct ctx *x, const struct buf *path, const json_t *v,
                               uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms) {
    uint64_t ms;

    if (!want_duration_range(x, path, v, min_ms, max_ms, &ms))
        return false;
    if (ms % 1000) {
        fail(x, path_str(path), "must be a whole number of seconds");
        return false;
    }
    *out_ms = ms;
    return true;
}

/* Report that the key at path + key must be shorter than its sibling other
 * (other_ms). */
static void fail_not_shorter(struct ctx *x, struct buf *path, const char *key, const char *other,
                             uint64_t other_ms) {
    size_t saved = path_push_key(x, path, key);
    char shown[32];

    format_duration(other_ms, shown, sizeof(shown));
    fail(x, path_str(path), "must be shorter than %.*s%s%s (%s)", (int)saved,
         path->data ? path->data : "", saved ? "." : "", other, shown);
    path_pop(path, saved);
}

static bool want_uint(struct ctx *x, const struct buf *path, const json_t *v, long long min,
                      long long max, unsigned long long *out) {
    json_int_t i;

    if (!json_is_integer(v)) {
        fail(x, path_str(path), "must be an integer, not %s", yaml_tree_type_name(v));
        return false;
    }
    i = json_integer_value(v);
    if (i < min) {
        if (min == 0)
            fail(x, path_str(path), "must not be negative");
        else
            fail(x, path_str(path), "must be >= %lld", min);
        return false;
    }
    if (i > max) {
        fail(x, path_str(path), "must be <= %lld", max);
        return false;
    }
    *out = (unsigned long long)i;
    return true;
}

static bool want_string(struct ctx *x, const struct buf *path, const json_t *v, const char **out) {
    if (!json_is_string(v)) {
        fail(x, path_str(path), "must be a string, not %s", yaml_tree_type_name(v));
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool want_bool(struct ctx *x, const struct buf *path, const json_t *v, bool *out) {
    if (!json_is_boolean(v)) {
        fail(x, path_str(path), "must be true or false, not %s", yaml_tree_type_name(v));
        return false;
    }
    *out = json_is_true(v);
    return true;
}

/* A number, integer or not, with min < value ≤ max. */
static bool want_number(struct ctx *x, const struct buf *path, const json_t *v, double min,
                        double max, double *out) {
    double d;

    if (!json_is_number(v)) {
        fail(x, path_str(path), "must be a number, not %s", yaml_tree_type_name(v));
        return false;
    }
    d = json_number_value(v);
    if (!(d > min)) {
        fail(x, path_str(path), "must be > %g", min);
        return false;
    }
    if (d > max) {
        fail(x, path_str(path), "must be <= %g", max);
        return false;
    }
    *out = d;
    return true;
}

static bool want_object(struct ctx *x, const struct buf *path, const json_t *v) {
    if (!json_is_object(v)) {
        fail(x, path_str(path), "must be a mapping, not %s", yaml_tree_type_name(v));
        return false;
    }
    return true;
}

/* Replace *slot with a copy of s. */
static void set_string(struct ctx *x, char **slot, const char *s) {
    char *copy = strdup(s);
    if (!copy) {
        x->oom = true;
        return;
    }
    free(*slot);
    *slot = copy;
}

/* ------------------------------------------------------------------------ */
/* Names and addresses                                                      */

static bool is_alnum_lower(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label as Kubernetes checks it: [a-z0-9]([-a-z0-9]*[a-z0-9])?, ≤ 63. */
static bool is_dns_label(const char *s, size_t len) {
    if (len == 0 || len > 63 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* RFC 1123 subdomain (a Kubernetes node name): dot-separated labels, ≤ 253. */
static bool is_dns_subdomain(const char *s) {
    size_t len = strlen(s);
    const char *label = s;

    if (len == 0 || len > 253)
        return false;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (!is_dns_label(label, (size_t)(p - label)))
                return false;
            if (!*p)
                return true;
            label = p + 1;
        }
    }
}

/* A host name as resolvers take it: letters of either case, digits, '-', in
 * dot-separated labels; the last label not all digits, so a mistyped IPv4
 * address ("10.0.0.256") is not taken for a name. */
static bool is_host_name(const char *s, size_t len) {
    size_t start = 0;
    bool all_digits_label = true;

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            size_t n = i - start;
            if (n == 0 || n > 63 || s[start] == '-' || s[i - 1] == '-')
                return false;
            if (i == len && all_digits_label)
                return false;
            start = i + 1;
            all_digits_label = true;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-') {
            all_digits_label = false;
        } else if (!(c >= '0' && c <= '9')) {
            return false;
        }
    }
    return true;
}

static bool is_ip(int family, const char *s, size_t len) {
    char copy[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];

    if (len >= sizeof(copy))
        return false;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return inet_pton(family, copy, addr) == 1;
}

static bool is_address(const char *s) {
    size_t len = strlen(s);
    return is_ip(AF_INET, s, len) || is_ip(AF_INET6, s, len) || is_host_name(s, len);
}

int config_parse_listen(const char *s, char *host, size_t host_size, uint16_t *port) {
    const char *colon, *h = s, *p;
    size_t host_len;
    unsigned long v = 0;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        host_len = (size_t)(close - h);
        if (!is_ip(AF_INET6, h, host_len))
            return -EINVAL;
        colon = close + 1;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -EINVAL;
        host_len = (size_t)(colon - s);
        /* The server binds what it is given and resolves no names. */
        if (!is_ip(AF_INET, h, host_len))
            return -EINVAL;
    }
    p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    if (host_len + 1 > host_size)
        return -ENAMETOOLONG;
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    *port = (uint16_t)v;
    return 0;
}

static int name_index(const char *const *names, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -EINVAL;
}

const char *config_probe_kind_name(enum config_probe_kind kind) {
    return kind == CONFIG_PROBE_PROCESS ? "process" : "tds";
}

/* ------------------------------------------------------------------------ */
/* Unknown keys                                                             */

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t row[MAX_SUGGEST_KEY_BYTES + 1];

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Every key of obj not in known (NULL-terminated) is an error. */
static void check_keys(struct ctx *x, struct buf *path, const json_t *obj,
                       const char *const *known) {
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        const char *best = NULL;
        size_t best_distance = SIZE_MAX, saved;
        bool found = false;

        for (const char *const *k = known; *k; k++)
            if (!strcmp(*k, key))
                found = true;
        if (found)
            continue;
        if (strlen(key) <= MAX_SUGGEST_KEY_BYTES) {
            for (const char *const *k = known; *k; k++) {
                size_t d = edit_distance(key, *k), limit = strlen(*k) >= 8 ? 3 : 2;
                if (d <= limit && d * 2 < strlen(*k) && d < best_distance) {
                    best = *k;
                    best_distance = d;
                }
            }
        }
        saved = path_push_key(x, path, key);
        if (best)
            fail(x, path_str(path), "unknown key (did you mean \"%s\"?)", best);
        else
            fail(x, path_str(path), "unknown key");
        path_pop(path, saved);
    }
}

/* A member, or NULL when absent or null: null means "use the default". */
static json_t *member(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* ------------------------------------------------------------------------ */
/* Pass two: tree -> struct config                                          */

/* Read the timing keys present in obj over *f. The timeout ≤ interval check
 * runs on the merged result, so a probe that shortens its interval below an
 * inherited timeout is caught too. */
static void read_probe_fields(struct ctx *x, struct buf *path, const json_t *obj,
                              bool stuck_allowed, bool stuck_known, struct probe_fields *f) {
    const json_t *v;
    unsigned long long u;
    size_t saved;

    if ((v = member(obj, "interval"))) {
        saved = path_push_key(x, path, "interval");
        want_duration(x, path, v, 1, &f->timing.interval_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "timeout"))) {
        saved = path_push_key(x, path, "timeout");
        want_duration(x, path, v, 1, &f->timing.timeout_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "jitter"))) {
        saved = path_push_key(x, path, "jitter");
        want_duration(x, path, v, 0, &f->timing.jitter_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "rise"))) {
        saved = path_push_key(x, path, "rise");
        if (want_uint(x, path, v, 1, CONFIG_MAX_RISE_FALL, &u))
            f->timing.rise = (unsigned)u;
        path_pop(path, saved);
    }
    if ((v = member(obj, "fall"))) {
        saved = path_push_key(x, path, "fall");
        if (want_uint(x, path, v, 1, CONFIG_MAX_RISE_FALL, &u))
            f->timing.fall = (unsigned)u;
        path_pop(path, saved);
    }
    if (json_object_get(obj, "stuckAfter")) {
        saved = path_push_key(x, path, "stuckAfter");
        if (!stuck_allowed && stuck_known)
            fail(x, path_str(path), "only valid for process probes");
        else if ((v = member(obj, "stuckAfter")))
            want_duration(x, path, v, 0, &f->stuck_after_ms);
        path_pop(path, saved);
    }
    if (f->timing.timeout_ms > f->timing.interval_ms) {
        char timeout[32], interval[32];
        format_duration(f->timing.timeout_ms, timeout, sizeof(timeout));
        format_duration(f->timing.interval_ms, interval, sizeof(interval));
        saved = path_push_key(x, path, "timeout");
        fail(x, path_str(path), "must be <= interval (%s > %s)", timeout, interval);
        path_pop(path, saved);
    }
}

static const char *const timing_keys[] = {"interval", "timeout",    "jitter", "rise",
                                          "fall",     "stuckAfter", NULL};

static void read_defaults(struct ctx *x, struct buf *path, const json_t *obj,
                          struct probe_fields *tds, struct probe_fields *process) {
    static const char *const keys[] = {"tds", "process", NULL};
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "tds"))) {
        saved = path_push_key(x, path, "tds");
        if (want_object(x, path, v)) {
            check_keys(x, path, v, timing_keys);
            read_probe_fields(x, path, v, false, true, tds);
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "process"))) {
        saved = path_push_key(x, path, "process");
        if (want_object(x, path, v)) {
            check_keys(x, path, v, timing_keys);
            read_probe_fields(x, path, v, true, true, process);
        }
        path_pop(path, saved);
    }
}

static void probe_from_fields(struct ctx *x, struct config_probe *p, enum config_probe_kind kind,
                              const struct probe_fields *f) {
    p->kind = kind;
    p->timing = f->timing;
    p->stuck_after_ms = kind == CONFIG_PROBE_PROCESS ? f->stuck_after_ms : 0;
    set_string(x, &p->name, config_probe_kind_name(kind));
}

static void read_probe(struct ctx *x, struct buf *path, const json_t *obj, struct config_target *t,
                       const struct probe_fields *tds, const struct probe_fields *process) {
    static const char *const keys[] = {"kind", "name", "interval",   "timeout", "jitter",
                                       "rise", "fall", "stuckAfter", NULL};
    static const char *const kinds[] = {"tds", "process"};
    struct config_probe *p = &t->probes[t->n_probes++];
    struct probe_fields f = *tds;
    bool kind_known = false;
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);

    saved = path_push_key(x, path, "kind");
    if (!(v = member(obj, "kind"))) {
        fail(x, path_str(path), "is required");
    } else if (want_string(x, path, v, &s)) {
        int k = name_index(kinds, 2, s);
        if (k < 0) {
            fail(x, path_str(path), "must be one of tds, process");
        } else {
            p->kind = (enum config_probe_kind)k;
            kind_known = true;
            if (p->kind == CONFIG_PROBE_PROCESS)
                f = *process;
        }
    }
    path_pop(path, saved);

    read_probe_fields(x, path, obj, p->kind == CONFIG_PROBE_PROCESS, kind_known, &f);
    probe_from_fields(x, p, p->kind, &f);

    /* The name defaults to the kind; a name that is wrong, or a kind that is,
     * leaves it unset so it cannot also clash with a sibling's. */
    free(p->name);
    p->name = NULL;
    saved = path_push_key(x, path, "name");
    if (!(v = member(obj, "name"))) {
        if (kind_known)
            set_string(x, &p->name, config_probe_kind_name(p->kind));
    } else if (want_string(x, path, v, &s)) {
        if (!is_dns_label(s, strlen(s)))
            fail(x, path_str(path),
                 "must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)");
        else
            set_string(x, &p->name, s);
    }
    for (size_t i = 0; p->name && i + 1 < t->n_probes; i++) {
        if (t->probes[i].name && !strcmp(t->probes[i].name, p->name)) {
            fail(x, path_str(path), "duplicate name \"%s\" (also probes[%zu])", p->name, i);
            break;
        }
    }
    path_pop(path, saved);
}

static void default_probes(struct ctx *x, struct config_target *t, const struct probe_fields *tds,
                           const struct probe_fields *process) {
    t->probes = calloc(2, sizeof(*t->probes));
    if (!t->probes) {
        x->oom = true;
        return;
    }
    t->n_probes = 2;
    probe_from_fields(x, &t->probes[0], CONFIG_PROBE_TDS, tds);
    probe_from_fields(x, &t->probes[1], CONFIG_PROBE_PROCESS, process);
}

/* Everything but the name, which has no default inside a list. */
static void default_target(struct ctx *x, struct config_target *t) {
    set_string(x, &t->address, "127.0.0.1");
    t->port = 1433;
    set_string(x, &t->process_comm, "sqlservr");
    set_string(x, &t->process_cgroup, "");
    set_string(x, &t->process_unit, "");
}

static bool is_unit_name(const char *s) {
    size_t len = strlen(s);
    const char *dot = strrchr(s, '.');

    if (len > 255 || !dot || dot == s || (strcmp(dot, ".service") && strcmp(dot, ".scope")))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(":-_.\\@", *p)))
            return false;
    return true;
}

static void read_process(struct ctx *x, struct buf *path, const json_t *obj,
                         struct config_target *t) {
    static const char *const keys[] = {"comm", "cgroup", "unit", NULL};
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "comm"))) {
        saved = path_push_key(x, path, "comm");
        if (want_string(x, path, v, &s)) {
            if (!*s)
                fail(x, path_str(path), "must not be empty");
            else if (strlen(s) > 15)
                fail(x, path_str(path), "must be at most 15 bytes (the kernel's comm length)");
            else
                set_string(x, &t->process_comm, s);
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "cgroup"))) {
        saved = path_push_key(x, path, "cgroup");
        if (want_string(x, path, v, &s))
            set_string(x, &t->process_cgroup, s);
        path_pop(path, saved);
    }
    if ((v = member(obj, "unit"))) {
        saved = path_push_key(x, path, "unit");
        if (want_string(x, path, v, &s)) {
            if (*s && !is_unit_name(s))
                fail(x, path_str(path), "must be a systemd unit name ending in .service or .scope");
            else
                set_string(x, &t->process_unit, s);
        }
        path_pop(path, saved);
    }
}

static void read_target(struct ctx *x, struct buf *path, const json_t *obj, struct config *c,
                        const struct probe_fields *tds, const struct probe_fields *process) {
    static const char *const keys[] = {"name", "address", "port", "process", "probes", NULL};
    struct config_target *t = &c->targets[c->n_targets++];
    unsigned long long u;
    const json_t *v;
    const char *s;
    size_t saved;

    default_target(x, t);
    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);

    saved = path_push_key(x, path, "name");
    if (!(v = member(obj, "name"))) {
        fail(x, path_str(path), "is required");
    } else if (want_string(x, path, v, &s)) {
        if (!is_dns_label(s, strlen(s))) {
            fail(x, path_str(path),
                 "must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)");
        } else {
            set_string(x, &t->name, s);
            for (size_t i = 0; i + 1 < c->n_targets; i++) {
                if (c->targets[i].name && !strcmp(c->targets[i].name, s)) {
                    fail(x, path_str(path), "duplicate name \"%s\" (also targets[%zu])", s, i);
                    break;
                }
            }
        }
    }
    path_pop(path, saved);

    if ((v = member(obj, "address"))) {
        saved = path_push_key(x, path, "address");
        if (want_string(x, path, v, &s)) {
            if (!is_address(s))
                fail(x, path_str(path), "not a host name or IP address");
            else
                set_string(x, &t->address, s);
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "port"))) {
        saved = path_push_key(x, path, "port");
        if (want_uint(x, path, v, 1, 65535, &u))
            t->port = (uint16_t)u;
        path_pop(path, saved);
    }
    if ((v = member(obj, "process"))) {
        saved = path_push_key(x, path, "process");
        read_process(x, path, v, t);
        path_pop(path, saved);
    }

    saved = path_push_key(x, path, "probes");
    if (!(v = member(obj, "probes"))) {
        default_probes(x, t, tds, process);
    } else if (!json_is_array(v)) {
        fail(x, path_str(path), "must be a list, not %s", yaml_tree_type_name(v));
    } else if (json_array_size(v) == 0) {
        fail(x, path_str(path), "must not be empty (omit it for a tds and a process probe)");
    } else if (json_array_size(v) > CONFIG_MAX_PROBES) {
        fail(x, path_str(path), "must have at most %d items", CONFIG_MAX_PROBES);
    } else {
        t->probes = calloc(json_array_size(v), sizeof(*t->probes));
        if (!t->probes) {
            x->oom = true;
        } else {
            for (size_t i = 0; i < json_array_size(v); i++) {
                size_t saved_item = path_push_index(x, path, i);
                read_probe(x, path, json_array_get(v, i), t, tds, process);
                path_pop(path, saved_item);
            }
        }
    }
    path_pop(path, saved);
}

static void read_targets(struct ctx *x, struct buf *path, const json_t *v, struct config *c,
                         const struct probe_fields *tds, const struct probe_fields *process) {
    size_t n = 1;

    if (v) {
        if (!json_is_array(v)) {
            fail(x, path_str(path), "must be a list, not %s", yaml_tree_type_name(v));
            return;
        }
        n = json_array_size(v);
        if (n == 0) {
            fail(x, path_str(path), "must not be empty (omit it for the default target)");
            return;
        }
        if (n > CONFIG_MAX_TARGETS) {
            fail(x, path_str(path), "must have at most %d items", CONFIG_MAX_TARGETS);
            return;
        }
    }
    c->targets = calloc(n, sizeof(*c->targets));
    if (!c->targets) {
        x->oom = true;
        return;
    }
    if (!v) {
        c->n_targets = 1;
        set_string(x, &c->targets[0].name, "sqlserver");
        default_target(x, &c->targets[0]);
        default_probes(x, &c->targets[0], tds, process);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t saved = path_push_index(x, path, i);
        read_target(x, path, json_array_get(v, i), c, tds, process);
        path_pop(path, saved);
    }
}

static void read_log(struct ctx *x, struct buf *path, const json_t *obj, struct config *c) {
    static const char *const keys[] = {"level", "format", NULL};
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "level"))) {
        saved = path_push_key(x, path, "level");
        if (want_string(x, path, v, &s)) {
            int i = name_index(level_names, 4, s);
            if (i < 0)
                fail(x, path_str(path), "must be one of debug, info, warn, error");
            else
                c->log_level = (enum log_level)i;
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "format"))) {
        saved = path_push_key(x, path, "format");
        if (want_string(x, path, v, &s)) {
            int i = name_index(format_names, 4, s);
            if (i < 0)
                fail(x, path_str(path), "must be one of auto, json, journal, text");
            else
                c->log_format = (enum log_format)i;
        }
        path_pop(path, saved);
    }
}

static bool valid_listen(const char *s) {
    char host[256];
    uint16_t port;
    return !*s || config_parse_listen(s, host, sizeof(host), &port) == 0;
}

static void read_server(struct ctx *x, struct buf *path, const json_t *obj, struct config *c) {
    static const char *const keys[] = {"listen", NULL};
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "listen"))) {
        saved = path_push_key(x, path, "listen");
        if (want_string(x, path, v, &s)) {
            if (!valid_listen(s))
                fail(x, path_str(path), "not a HOST:PORT");
            else
                set_string(x, &c->listen, s);
        }
        path_pop(path, saved);
    }
}

static void read_health(struct ctx *x, struct buf *path, const json_t *obj, struct config *c) {
    static const char *const keys[] = {"startupGrace", "crashLoop", NULL};
    static const char *const crash_keys[] = {"restarts", "window", NULL};
    unsigned long long u;
    const json_t *v, *w;
    size_t saved, saved_inner;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "startupGrace"))) {
        saved = path_push_key(x, path, "startupGrace");
        want_duration(x, path, v, 0, &c->startup_grace_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "crashLoop"))) {
        saved = path_push_key(x, path, "crashLoop");
        if (want_object(x, path, v)) {
            check_keys(x, path, v, crash_keys);
            if ((w = member(v, "restarts"))) {
                saved_inner = path_push_key(x, path, "restarts");
                if (want_uint(x, path, w, 0, CONFIG_MAX_RESTARTS, &u))
                    c->crash_loop_restarts = (unsigned)u;
                path_pop(path, saved_inner);
            }
            if ((w = member(v, "window"))) {
                saved_inner = path_push_key(x, path, "window");
                want_duration(x, path, w, 1, &c->crash_loop_window_ms);
                path_pop(path, saved_inner);
            }
        }
        path_pop(path, saved);
    }
}

/* evict: and cordon: — an optional ladder step, off unless enabled. */
static void read_step(struct ctx *x, struct buf *path, const json_t *obj, bool *enabled,
                      uint64_t *after_ms) {
    static const char *const keys[] = {"enabled", "after", NULL};
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "enabled"))) {
        saved = path_push_key(x, path, "enabled");
        want_bool(x, path, v, enabled);
        path_pop(path, saved);
    }
    if ((v = member(obj, "after"))) {
        saved = path_push_key(x, path, "after");
        want_duration(x, path, v, 0, after_ms);
        path_pop(path, saved);
    }
}

static void read_policy(struct ctx *x, struct buf *path, const json_t *obj,
                        struct config_policy *p) {
    static const char *const keys[] = {"relocateAfter",   "restartAllowance",
                                       "quarantine",      "eventDedupWindow",
                                       "budgetRetry",     "evict",
                                       "cordon",          "maxConcurrentFailovers",
                                       "failoverTimeout", NULL};
    unsigned long long u;
    /* The plain durations, in the order errors are reported. */
    const struct {
        const char *key;
        uint64_t min_ms;
        uint64_t *out_ms;
    } durations[] = {
        {"relocateAfter", 0, &p->relocate_after_ms},
        {"restartAllowance", 0, &p->restart_allowance_ms},
        {"quarantine", 0, &p->quarantine_ms},
        {"eventDedupWindow", 0, &p->event_dedup_window_ms},
        {"budgetRetry", 1, &p->budget_retry_ms}, /* 0 would ask again in a busy loop */
    };
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (!(v = member(obj, durations[i].key)))
            continue;
        saved = path_push_key(x, path, durations[i].key);
        want_duration(x, path, v, durations[i].min_ms, durations[i].out_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "evict"))) {
        saved = path_push_key(x, path, "evict");
        read_step(x, path, v, &p->evict_enabled, &p->evict_after_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "cordon"))) {
        saved = path_push_key(x, path, "cordon");
        read_step(x, path, v, &p->cordon_enabled, &p->cordon_after_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "maxConcurrentFailovers"))) {
        saved = path_push_key(x, path, "maxConcurrentFailovers");
        if (want_uint(x, path, v, 1, CONFIG_MAX_CONCURRENT_FAILOVERS, &u))
            p->max_concurrent_failovers = (unsigned)u;
        path_pop(path, saved);
    }
    if ((v = member(obj, "failoverTimeout"))) {
        /* leaseDurationSeconds of a budget slot. */
        saved = path_push_key(x, path, "failoverTimeout");
        want_seconds_range(x, path, v, CONFIG_MIN_FAILOVER_TIMEOUT_MS, CONFIG_MAX_DURATION_MS,
                           &p->failover_timeout_ms);
        path_pop(path, saved);
    }
}

/* lease: the heartbeat Lease's timing. Its duration goes into the Lease's
 * spec.leaseDurationSeconds, hence whole seconds; renewInterval must leave
 * room for at least one more renewal before the Lease runs out. */
static void read_lease(struct ctx *x, struct buf *path, const json_t *obj,
                       struct config_kubernetes *k, bool *lease_ok) {
    static const char *const keys[] = {"duration", "renewInterval", NULL};
    bool duration_ok = true, renew_ok = true;
    const json_t *v;
    size_t saved;

    *lease_ok = false;
    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "duration"))) {
        saved = path_push_key(x, path, "duration");
        duration_ok =
            want_seconds_range(x, path, v, 1, CONFIG_MAX_LEASE_DURATION_MS, &k->lease_duration_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "renewInterval"))) {
        saved = path_push_key(x, path, "renewInterval");
        renew_ok = want_duration(x, path, v, 1, &k->lease_renew_ms);
        path_pop(path, saved);
    }
    /* Only between two good values: a bad duration has been reported already. */
    if (duration_ok && renew_ok && k->lease_renew_ms >= k->lease_duration_ms) {
        fail_not_shorter(x, path, "renewInterval", "duration", k->lease_duration_ms);
        return;
    }
    *lease_ok = duration_ok && renew_ok;
}

static void read_pods(struct ctx *x, struct buf *path, const json_t *obj,
                      struct config_kubernetes *k) {
    static const char *const keys[] = {"selector", NULL};
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "selector"))) {
        saved = path_push_key(x, path, "selector");
        if (want_string(x, path, v, &s)) {
            struct kube_json_selector sel;
            struct kube_json_error err = {0};
            if (kube_json_selector_parse(s, &sel, &err) < 0)
                fail(x, path_str(path), "not a valid %s: %s",
                     err.field ? err.field : "labelSelector",
                     err.problem ? err.problem : "cannot be parsed");
            else
                set_string(x, &k->pod_selector, s);
        }
        path_pop(path, saved);
    }
}

static void read_kubernetes(struct ctx *x, struct buf *path, const json_t *obj,
                            struct config_kubernetes *k, bool *lease_ok) {
    static const char *const keys[] = {"enabled",   "kubeconfig", "context", "allowInsecure",
                                       "namespace", "qps",        "burst",   "requestTimeout",
                                       "lease",     "pods",       NULL};
    unsigned long long u;
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "enabled"))) {
        saved = path_push_key(x, path, "enabled");
        want_bool(x, path, v, &k->enabled);
        path_pop(path, saved);
    }
    if ((v = member(obj, "kubeconfig"))) {
        saved = path_push_key(x, path, "kubeconfig");
        if (want_string(x, path, v, &s))
            set_string(x, &k->kubeconfig, s);
        path_pop(path, saved);
    }
    if ((v = member(obj, "context"))) {
        saved = path_push_key(x, path, "context");
        if (want_string(x, path, v, &s))
            set_string(x, &k->context, s);
        path_pop(path, saved);
    }
    if ((v = member(obj, "allowInsecure"))) {
        saved = path_push_key(x, path, "allowInsecure");
        want_bool(x, path, v, &k->allow_insecure);
        path_pop(path, saved);
    }
    if ((v = member(obj, "namespace"))) {
        saved = path_push_key(x, path, "namespace");
        if (want_string(x, path, v, &s)) {
            if (*s && !is_dns_label(s, strlen(s)))
                fail(x, path_str(path),
                     "must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters)");
            else
                set_string(x, &k->namespace, s);
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "qps"))) {
        saved = path_push_key(x, path, "qps");
        want_number(x, path, v, 0, CONFIG_MAX_QPS, &k->qps);
        path_pop(path, saved);
    }
    if ((v = member(obj, "burst"))) {
        saved = path_push_key(x, path, "burst");
        if (want_uint(x, path, v, 1, CONFIG_MAX_BURST, &u))
            k->burst = (unsigned)u;
        path_pop(path, saved);
    }
    if ((v = member(obj, "requestTimeout"))) {
        saved = path_push_key(x, path, "requestTimeout");
        want_duration_range(x, path, v, 1, CONFIG_MAX_REQUEST_TIMEOUT_MS, &k->request_timeout_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "lease"))) {
        saved = path_push_key(x, path, "lease");
        read_lease(x, path, v, k, lease_ok);
        path_pop(path, saved);
    }
    if ((v = member(obj, "pods"))) {
        saved = path_push_key(x, path, "pods");
        read_pods(x, path, v, k);
        path_pop(path, saved);
    }
}

/* election: the remediator Lease's timings, retryPeriod < renewDeadline <
 * leaseDuration as client-go requires. */
static void read_election(struct ctx *x, struct buf *path, const json_t *obj,
                          struct config_remediation *m) {
    static const char *const keys[] = {"leaseDuration", "renewDeadline", "retryPeriod", NULL};
    bool lease_ok = true, renew_ok = true, retry_ok = true;
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "leaseDuration"))) {
        saved = path_push_key(x, path, "leaseDuration");
        lease_ok = want_seconds_range(x, path, v, CONFIG_MIN_ELECTION_LEASE_MS,
                                      CONFIG_MAX_ELECTION_LEASE_MS, &m->election_lease_duration_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "renewDeadline"))) {
        saved = path_push_key(x, path, "renewDeadline");
        renew_ok = want_duration(x, path, v, 1, &m->election_renew_deadline_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "retryPeriod"))) {
        saved = path_push_key(x, path, "retryPeriod");
        retry_ok = want_duration(x, path, v, 1, &m->election_retry_period_ms);
        path_pop(path, saved);
    }
    if (lease_ok && renew_ok && m->election_renew_deadline_ms >= m->election_lease_duration_ms) {
        fail_not_shorter(x, path, "renewDeadline", "leaseDuration", m->election_lease_duration_ms);
        renew_ok = false;
    }
    if (renew_ok && retry_ok && m->election_retry_period_ms >= m->election_renew_deadline_ms)
        fail_not_shorter(x, path, "retryPeriod", "renewDeadline", m->election_renew_deadline_ms);
}

static void read_remediation(struct ctx *x, struct buf *path, const json_t *obj,
                             struct config_remediation *m, bool *assume_dead_ok) {
    static const char *const keys[] = {"enabled",     "election",        "nodeLeaseStaleAfter",
                                       "fenceMargin", "assumeDeadAfter", NULL};
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "enabled"))) {
        saved = path_push_key(x, path, "enabled");
        want_bool(x, path, v, &m->enabled);
        path_pop(path, saved);
    }
    if ((v = member(obj, "election"))) {
        saved = path_push_key(x, path, "election");
        read_election(x, path, v, m);
        path_pop(path, saved);
    }
    if ((v = member(obj, "nodeLeaseStaleAfter"))) {
        saved = path_push_key(x, path, "nodeLeaseStaleAfter");
        want_duration_range(x, path, v, CONFIG_MIN_NODE_LEASE_STALE_MS,
                            CONFIG_MAX_NODE_LEASE_STALE_MS, &m->node_lease_stale_after_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "fenceMargin"))) {
        saved = path_push_key(x, path, "fenceMargin");
        want_duration_range(x, path, v, 0, CONFIG_MAX_FENCE_MARGIN_MS, &m->fence_margin_ms);
        path_pop(path, saved);
    }
    if ((v = member(obj, "assumeDeadAfter"))) {
        saved = path_push_key(x, path, "assumeDeadAfter");
        *assume_dead_ok = want_duration(x, path, v, 0, &m->assume_dead_after_ms);
        path_pop(path, saved);
    }
}

static void read_watchdog(struct ctx *x, struct buf *path, const json_t *obj,
                          struct config_fencing *f) {
    static const char *const keys[] = {"device", "timeout", NULL};
    const json_t *v;
    const char *s;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "device"))) {
        saved = path_push_key(x, path, "device");
        if (want_string(x, path, v, &s)) {
            if (*s && *s != '/')
                fail(x, path_str(path), "must be an absolute path (like /dev/watchdog) or \"\"");
            else
                set_string(x, &f->watchdog_device, s);
        }
        path_pop(path, saved);
    }
    if ((v = member(obj, "timeout"))) {
        saved = path_push_key(x, path, "timeout");
        want_seconds_range(x, path, v, CONFIG_MIN_WATCHDOG_TIMEOUT_MS,
                           CONFIG_MAX_WATCHDOG_TIMEOUT_MS, &f->watchdog_timeout_ms);
        path_pop(path, saved);
    }
}

static void read_fencing(struct ctx *x, struct buf *path, const json_t *obj,
                         struct config_fencing *f, bool *peer_timeout_ok) {
    static const char *const keys[] = {"watchdog", "peerTimeout", NULL};
    const json_t *v;
    size_t saved;

    if (!want_object(x, path, obj))
        return;
    check_keys(x, path, obj, keys);
    if ((v = member(obj, "watchdog"))) {
        saved = path_push_key(x, path, "watchdog");
        read_watchdog(x, path, v, f);
        path_pop(path, saved);
    }
    if ((v = member(obj, "peerTimeout"))) {
        saved = path_push_key(x, path, "peerTimeout");
        *peer_timeout_ok = want_duration(x, path, v, 1, &f->peer_timeout_ms);
        path_pop(path, saved);
    }
}

/* Which values the checks between sections may use: a key reported bad
 * already is not reported again as half of a bad pair. */
struct valid_keys {
    bool lease;          /* kubernetes.lease.duration and renewInterval, and their pair */
    bool assume_dead;    /* remediation.assumeDeadAfter */
    bool peer_timeout;   /* fencing.peerTimeout */
    bool renew_deadline; /* remediation.election.renewDeadline */
};

static void check_between_sections(struct ctx *x, struct buf *path, const struct config *c,
                                   const struct valid_keys *valid) {
    const struct config_kubernetes *k = &c->kubernetes;
    char duration[32], renew[32], room[32];

    if (!valid->lease)
        return;
    format_duration(k->lease_duration_ms, duration, sizeof(duration));
    if (valid->assume_dead && c->remediation.assume_dead_after_ms &&
        c->remediation.assume_dead_after_ms < k->lease_duration_ms) {
        /* Sooner would call a node dead while its Lease may still be live. */
        size_t saved = path_push_key(x, path, "remediation");
        path_push_key(x, path, "assumeDeadAfter");
        fail(x, path_str(path), "must be 0 (never) or at least kubernetes.lease.duration (%s)",
             duration);
        path_pop(path, saved);
    }
    if (valid->renew_deadline && c->kubernetes.enabled && c->remediation.enabled &&
        c->remediation.election_renew_deadline_ms >= k->lease_duration_ms) {
        /* docs/model/README.md, finding 6: a leader keeps acting until its
         * renewDeadline, while its /peer answer already says it cannot reach
         * the API server once its heartbeat Lease ran out; a node cut off
         * would then feed its watchdog on an "outage" verdict against the
         * very agent about to fence it away. */
        size_t saved = path_push_key(x, path, "remediation");
        path_push_key(x, path, "election");
        path_push_key(x, path, "renewDeadline");
        fail(x, path_str(path),
             "must be shorter than kubernetes.lease.duration (%s): the remediator must stop "
             "acting before its own peers could think it cut off from the API server",
             duration);
        path_pop(path, saved);
    }
    if (valid->peer_timeout &&
        k->lease_renew_ms + c->fencing.peer_timeout_ms >= k->lease_duration_ms) {
        /* docs/node-loss.md, "Safety argument": a node cut off from the API
         * server stops feeding at most renewInterval + peerTimeout after its
         * last renewal could have been seen, and that must be before its
         * Lease runs out, or a remediator could act while it still runs. */
        format_duration(k->lease_renew_ms, renew, sizeof(renew));
        format_duration(k->lease_duration_ms - k->lease_renew_ms, room, sizeof(room));
        size_t saved = path_push_key(x, path, "fencing");
        path_push_key(x, path, "peerTimeout");
        fail(x, path_str(path),
             "must be shorter than kubernetes.lease.duration - kubernetes.lease.renewInterval "
             "(%s - %s = %s): a node cut off from the API server learns it from its peers up to "
             "renewInterval + peerTimeout after its last renewal, and must stop feeding its "
             "watchdog before its Lease runs out",
             duration, renew, room);
        path_pop(path, saved);
    }
}

static void read_config(struct ctx *x, const json_t *root, struct config *c) {
    static const char *const keys[] = {
        "apiVersion", "kind",   "nodeName",   "log",         "server",  "health", "defaults",
        "targets",    "policy", "kubernetes", "remediation", "fencing", NULL};
    struct probe_fields tds = builtin_tds, process = builtin_process;
    struct valid_keys valid = {
        .lease = true, .assume_dead = true, .peer_timeout = true, .renew_deadline = true};
    struct buf path;
    const json_t *v;
    const char *s;
    size_t saved;

    buf_init(&path, 0);
    if (!json_is_object(root)) {
        fail(x, NULL, "the document must be a mapping, not %s", yaml_tree_type_name(root));
        goto out;
    }
    saved = path_push_key(x, &path, "apiVersion");
    if (!(v = member(root, "apiVersion")))
        fail(x, path_str(&path), "is required");
    else if (!json_is_string(v) || strcmp(json_string_value(v), CONFIG_API_VERSION))
        fail(x, path_str(&path), "must be " CONFIG_API_VERSION);
    path_pop(&path, saved);

    saved = path_push_key(x, &path, "kind");
    if (!(v = member(root, "kind")))
        fail(x, path_str(&path), "is required");
    else if (!json_is_string(v) || strcmp(json_string_value(v), CONFIG_KIND))
        fail(x, path_str(&path), "must be " CONFIG_KIND);
    path_pop(&path, saved);

    check_keys(x, &path, root, keys);

    if ((v = member(root, "nodeName"))) {
        saved = path_push_key(x, &path, "nodeName");
        if (want_string(x, &path, v, &s)) {
            if (*s && !is_dns_subdomain(s))
                fail(x, path_str(&path), "not a node name (a lowercase RFC 1123 subdomain)");
            else
                set_string(x, &c->node_name, s);
        }
        path_pop(&path, saved);
    }
    if ((v = member(root, "log"))) {
        saved = path_push_key(x, &path, "log");
        read_log(x, &path, v, c);
        path_pop(&path, saved);
    }
    if ((v = member(root, "server"))) {
        saved = path_push_key(x, &path, "server");
        read_server(x, &path, v, c);
        path_pop(&path, saved);
    }
    if ((v = member(root, "health"))) {
        saved = path_push_key(x, &path, "health");
        read_health(x, &path, v, c);
        path_pop(&path, saved);
    }
    if ((v = member(root, "defaults"))) {
        saved = path_push_key(x, &path, "defaults");
        read_defaults(x, &path, v, &tds, &process);
        path_pop(&path, saved);
    }
    saved = path_push_key(x, &path, "targets");
    read_targets(x, &path, member(root, "targets"), c, &tds, &process);
    path_pop(&path, saved);
    if ((v = member(root, "policy"))) {
        saved = path_push_key(x, &path, "policy");
        read_policy(x, &path, v, &c->policy);
        path_pop(&path, saved);
    }
    if ((v = member(root, "kubernetes"))) {
        saved = path_push_key(x, &path, "kubernetes");
        read_kubernetes(x, &path, v, &c->kubernetes, &valid.lease);
        path_pop(&path, saved);
    }
    if ((v = member(root, "remediation"))) {
        saved = path_push_key(x, &path, "remediation");
        size_t before = x->count;
        read_remediation(x, &path, v, &c->remediation, &valid.assume_dead);
        valid.renew_deadline = x->count == before; /* a bad election is reported once */
        path_pop(&path, saved);
    }
    if ((v = member(root, "fencing"))) {
        saved = path_push_key(x, &path, "fencing");
        read_fencing(x, &path, v, &c->fencing, &valid.peer_timeout);
        path_pop(&path, saved);
    }
    check_between_sections(x, &path, c, &valid);
out:
    buf_free(&path);
}

/* A config with the scalar defaults set; targets come from read_config(). */
static struct config *config_alloc(struct ctx *x) {
    struct config *c = calloc(1, sizeof(*c));
    if (!c) {
        x->oom = true;
        return NULL;
    }
    c->log_level = LOG_LEVEL_INFO;
    c->log_format = LOG_FORMAT_AUTO;
    c->startup_grace_ms = 60000;
    c->crash_loop_restarts = 3;
    c->crash_loop_window_ms = 300000;
    set_string(x, &c->node_name, "");
    set_string(x, &c->listen, CONFIG_DEFAULT_LISTEN);
    /* The ladder's defaults are policy_config_default()'s (docs/policy.md). */
    c->policy = (struct config_policy){
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
    };
    c->kubernetes.enabled = false;
    c->kubernetes.allow_insecure = false;
    c->kubernetes.qps = 20;
    c->kubernetes.burst = 40;
    c->kubernetes.request_timeout_ms = 10000;
    /* 15s/5s, not client-go's 40s/10s: the node-loss budget (docs/node-loss.md)
     * waits a Lease duration plus the watchdog timeout before it acts. */
    c->kubernetes.lease_duration_ms = 15000;
    c->kubernetes.lease_renew_ms = 5000;
    set_string(x, &c->kubernetes.kubeconfig, "");
    set_string(x, &c->kubernetes.context, "");
    set_string(x, &c->kubernetes.namespace, "");
    set_string(x, &c->kubernetes.pod_selector, "");
    c->remediation = (struct config_remediation){
        .enabled = true,
        .election_lease_duration_ms = 15000,
        .election_renew_deadline_ms = 10000,
        .election_retry_period_ms = 2000,
        .node_lease_stale_after_ms = 20000,
        .fence_margin_ms = 2000,
        .assume_dead_after_ms = 0,
    };
    c->fencing.watchdog_timeout_ms = 10000;
    c->fencing.peer_timeout_ms = 1000;
    set_string(x, &c->fencing.watchdog_device, "");
    return c;
}

/* Finish a load: hand over c, or free it and say why not. */
static int load_result(struct ctx *x, struct config *c, struct config **out) {
    if (x->oom) {
        config_free(c);
        return -ENOMEM;
    }
    if (x->count) {
        config_free(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

int config_load_string(const char *text, size_t len, struct config **out,
                       struct config_errors *errs) {
    struct ctx x = {.errs = errs};
    struct config *c = NULL;
    json_t *root;

    *out = NULL;
    root = read_tree(&x, text, len);
    if (!root && !x.count && !x.oom)
        fail(&x, NULL, "the document is empty; it needs at least apiVersion and kind");
    if (root && json_is_null(root))
        fail(&x, NULL, "the document is empty; it needs at least apiVersion and kind");
    if (!x.count && !x.oom) {
        c = config_alloc(&x);
        if (c)
            read_config(&x, root, c);
    }
    json_decref(root);
    return load_result(&x, c, out);
}

/* Record an I/O failure on the file at path; returns r, or -ENOMEM. */
static int fail_io(struct ctx *x, const char *path, int r) {
    char why[128];

    fail(x, NULL, "%s: %s", path, strerror_r(-r, why, sizeof(why)));
    return x->oom ? -ENOMEM : r;
}

int config_load_file(const char *path, struct config **out, struct config_errors *errs) {
    struct ctx x = {.errs = errs};
    size_t len = 0, cap = 64 * 1024;
    char *text = NULL;
    int fd, r;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail_io(&x, path, -errno);
    text = malloc(cap);
    if (!text) {
        r = -ENOMEM;
        goto out;
    }
    /* Read one byte past the limit, to tell "at the limit" from "over it". */
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *bigger;
            if (cap > CONFIG_MAX_FILE_BYTES) {
                fail(&x, NULL, "%s: larger than %d bytes", path, CONFIG_MAX_FILE_BYTES);
                r = x.oom ? -ENOMEM : -EINVAL;
                goto out;
            }
            cap = cap * 2 > CONFIG_MAX_FILE_BYTES + 1 ? CONFIG_MAX_FILE_BYTES + 1 : cap * 2;
            bigger = realloc(text, cap);
            if (!bigger) {
                r = -ENOMEM;
                goto out;
            }
            text = bigger;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = fail_io(&x, path, -errno);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    r = config_load_string(text, len, out, errs);
out:
    close(fd);
    free(text);
    return r;
}

struct config *config_new_default(void) {
    struct ctx x = {0};
    struct config *c = config_alloc(&x), *out = NULL;
    json_t *root = json_pack("{s:s, s:s}", "apiVersion", CONFIG_API_VERSION, "kind", CONFIG_KIND);

    if (!root)
        x.oom = true;
    if (c && root)
        read_config(&x, root, c);
    json_decref(root);
    load_result(&x, c, &out);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Overrides                                                                */

int config_set_option(struct config *c, const char *key, const char *value, const char *origin,
                      struct config_errors *errs) {
    struct ctx x = {.errs = errs};
    int i;

    if (!strcmp(key, "nodeName")) {
        if (*value && !is_dns_subdomain(value))
            fail(&x, origin, "not a node name (a lowercase RFC 1123 subdomain)");
        else
            set_string(&x, &c->node_name, value);
    } else if (!strcmp(key, "log.level")) {
        if ((i = name_index(level_names, 4, value)) < 0)
            fail(&x, origin, "must be one of debug, info, warn, error");
        else
            c->log_level = (enum log_level)i;
    } else if (!strcmp(key, "log.format")) {
        if ((i = name_index(format_names, 4, value)) < 0)
            fail(&x, origin, "must be one of auto, json, journal, text");
        else
            c->log_format = (enum log_format)i;
    } else if (!strcmp(key, "server.listen")) {
        if (!valid_listen(value))
            fail(&x, origin, "not a HOST:PORT");
        else
            set_string(&x, &c->listen, value);
    } else if (!strcmp(key, "kubernetes.kubeconfig") || !strcmp(key, "kubernetes.context")) {
        /* Any path or context name; kube_auth_resolve() says whether it
         * exists. "" is "not set", as in the file. */
        if (strlen(value) > CONFIG_MAX_STRING_BYTES)
            fail(&x, origin, "longer than %d bytes", CONFIG_MAX_STRING_BYTES);
        else
            set_string(&x,
                       !strcmp(key, "kubernetes.context") ? &c->kubernetes.context
                                                          : &c->kubernetes.kubeconfig,
                       value);
    } else if (!strcmp(key, "fencing.watchdog.device")) {
        if (*value && *value != '/')
            fail(&x, origin, "must be an absolute path (like /dev/watchdog) or \"\"");
        else if (strlen(value) > CONFIG_MAX_STRING_BYTES)
            fail(&x, origin, "longer than %d bytes", CONFIG_MAX_STRING_BYTES);
        else
            set_string(&x, &c->fencing.watchdog_device, value);
    } else {
        fail(&x, origin, "unknown option \"%s\"", key);
    }
    return x.oom ? -ENOMEM : x.count ? -EINVAL : 0;
}

int config_apply_env(struct config *c, const char *(*get)(const char *name),
                     struct config_errors *errs) {
    static const struct {
        const char *name;
        const char *key;
        bool empty_counts; /* "" is a value, not "unset" */
    } vars[] = {
        {"NODE_NAME", "nodeName", false},
        {"EDGEWARDEN_LOG_LEVEL", "log.level", false},
        {"EDGEWARDEN_LOG_FORMAT", "log.format", false},
        {"EDGEWARDEN_LISTEN", "server.listen", true},
        {"EDGEWARDEN_WATCHDOG_DEVICE", "fencing.watchdog.device", false},
    };
    int result = 0;

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *value = get(vars[i].name);
        int r;
        if (!value || (!*value && !vars[i].empty_counts))
            continue;
        r = config_set_option(c, vars[i].key, value, vars[i].name, errs);
        if (r == -ENOMEM)
            return r;
        if (r < 0)
            result = r;
    }
    return result;
}

/* ------------------------------------------------------------------------ */
/* Copy and free                                                            */

static void target_free(struct config_target *t) {
    for (size_t i = 0; i < t->n_probes; i++)
        free(t->probes[i].name);
    free(t->probes);
    free(t->name);
    free(t->address);
    free(t->process_comm);
    free(t->process_cgroup);
    free(t->process_unit);
}

void config_free(struct config *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n_targets; i++)
        target_free(&c->targets[i]);
    free(c->targets);
    free(c->node_name);
    free(c->listen);
    free(c->kubernetes.kubeconfig);
    free(c->kubernetes.context);
    free(c->kubernetes.namespace);
    free(c->kubernetes.pod_selector);
    free(c->fencing.watchdog_device);
    free(c);
}

struct config *config_dup(const struct config *c) {
    struct ctx x = {0};
    struct config *d;

    if (!c)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    *d = *c;
    d->node_name = d->listen = NULL;
    d->targets = NULL;
    d->n_targets = 0;
    d->kubernetes.kubeconfig = d->kubernetes.context = NULL;
    d->kubernetes.namespace = d->kubernetes.pod_selector = NULL;
    d->fencing.watchdog_device = NULL;
    set_string(&x, &d->node_name, c->node_name);
    set_string(&x, &d->listen, c->listen);
    set_string(&x, &d->kubernetes.kubeconfig, c->kubernetes.kubeconfig);
    set_string(&x, &d->kubernetes.context, c->kubernetes.context);
    set_string(&x, &d->kubernetes.namespace, c->kubernetes.namespace);
    set_string(&x, &d->kubernetes.pod_selector, c->kubernetes.pod_selector);
    set_string(&x, &d->fencing.watchdog_device, c->fencing.watchdog_device);
    d->targets = calloc(c->n_targets ? c->n_targets : 1, sizeof(*d->targets));
    if (!d->targets)
        x.oom = true;
    for (size_t i = 0; d->targets && i < c->n_targets; i++) {
        const struct config_target *from = &c->targets[i];
        struct config_target *to = &d->targets[d->n_targets++];
        to->port = from->port;
        set_string(&x, &to->name, from->name);
        set_string(&x, &to->address, from->address);
        set_string(&x, &to->process_comm, from->process_comm);
        set_string(&x, &to->process_cgroup, from->process_cgroup);
        set_string(&x, &to->process_unit, from->process_unit);
        to->probes = calloc(from->n_probes ? from->n_probes : 1, sizeof(*to->probes));
        if (!to->probes) {
            x.oom = true;
            break;
        }
        for (size_t j = 0; j < from->n_probes; j++) {
            to->probes[to->n_probes] = from->probes[j];
            to->probes[to->n_probes].name = NULL;
            set_string(&x, &to->probes[to->n_probes++].name, from->probes[j].name);
        }
    }
    if (x.oom) {
        config_free(d);
        return NULL;
    }
    return d;
}
