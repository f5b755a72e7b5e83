/*
 * Kubernetes credentials: the in-cluster service account, or one context of
 * a kubeconfig, turned into a struct kube_auth. A kubeconfig is read in two
 * passes, like agent/config.c reads the agent's own file: the shared reader
 * (agent/yaml_tree.c) turns libyaml's events into a jansson tree (bounded in size and depth; anchors, aliases, tags,
 * duplicate keys and a second document refused, so no input can expand
 * beyond its own size), then the selected context, its cluster and its user
 * are checked field by field. Only the entries the context names are checked
 * strictly, so a workstation kubeconfig whose other users run exec plugins
 * still works for a context with a plain token. Every error names its field
 * ("users[0].user.exec: ..."), and the first one ends the load. The module
 * reads files (the kubeconfig, token, and whether CA and key files can be
 * opened) but never logs, never touches the network and never calls getenv;
 * partial results are freed before a load returns.
 */
#include "kubeconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"
#include "yaml_tree.h"
/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* Set *error to the formatted message (when error is non-NULL and no error
 * is set yet) and return r. */
__attribute__((format(printf, 3, 4))) static int fail(char **error, int r, const char *fmt, ...) {
    va_list ap;
    char *message;

    if (!error || *error)
        return r;
    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    *error = message;
    return message ? r : -ENOMEM;
}

/* Put "prefix: " in front of an error already set. Without memory the
 * unprefixed message is kept; it still says what is wrong. */
static void prefix_error(char **error, const char *prefix) {
    char *longer;

    if (!error || !*error)
        return;
    if (asprintf(&longer, "%s: %s", prefix, *error) < 0)
        return;
    free(*error);
    *error = longer;
}

static const char *errno_text(int r, char *buf, size_t size) {
    if (r == -EFBIG)
        return "file too large";
    if (r == -ENOTSUP)
        return "not a regular file";
    return strerror_r(-r, buf, size);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                    */

/* Open path for reading as a regular file. A device or FIFO named by
 * mistake is refused before it is opened (opening some devices has effects,
 * /dev/watchdog for one), and the open is non-blocking and checked again,
 * so a file swapped in between cannot hang the caller either. Returns the
 * fd, or -errno (-ENOTSUP when it is not a regular file). */
static int open_regular(const char *path) {
    struct stat st;
    int fd;

    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -ENOTSUP;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -ENOTSUP;
    }
    return fd;
}

/* Read a whole regular file of at most max_bytes into a new NUL-terminated
 * buffer. Returns 0, -EFBIG past max_bytes, -ENOTSUP, -ENOMEM or -errno. */
static int read_file(const char *path, size_t max_bytes, char **text_out, size_t *len_out) {
    size_t len = 0, cap = 4096;
    char *text;
    int fd, r = 0;

    *text_out = NULL;
    fd = open_regular(path);
    if (fd < 0)
        return fd;
    text = malloc(cap + 1);
    if (!text) {
        close(fd);
        return -ENOMEM;
    }
    /* Read one byte past the limit, to tell "at the limit" from "over it". */
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *bigger;
            if (cap > max_bytes) {
                r = -EFBIG;
                break;
            }
            cap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            bigger = realloc(text, cap + 1);
            if (!bigger) {
                r = -ENOMEM;
                break;
            }
            text = bigger;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (r == 0 && len > max_bytes)
        r = -EFBIG;
    if (r < 0) {
        free(text);
        return r;
    }
    text[len] = '\0';
    *text_out = text;
    *len_out = len;
    return 0;
}

/* Whether path names a regular file this process can open for reading. */
static int check_file(const char *path) {
    int fd = open_regular(path);

    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* A bearer token goes into an HTTP header: visible ASCII only, so no byte
 * can end the header or smuggle another one. */
static bool header_safe(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Read a token file: trimmed, non-empty, header-safe. what prefixes the
 * errors ("users[0].user.tokenFile: " or ""). *token_out is new. */
static int read_token_file(const char *path, const char *what, char **token_out, char **error) {
    char why[128], *text, *start, *end;
    size_t len;
    int r;

    *token_out = NULL;
    r = read_file(path, KUBE_AUTH_MAX_TOKEN_BYTES, &text, &len);
    if (r == -EFBIG)
        return fail(error, r, "%s%s: larger than %d bytes", what, path, KUBE_AUTH_MAX_TOKEN_BYTES);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return fail(error, r, "%s%s: %s", what, path, errno_text(r, why, sizeof(why)));
    start = text;
    end = text + len;
    while (start < end && is_space(*start))
        start++;
    while (end > start && is_space(end[-1]))
        end--;
    if (start == end) {
        free(text);
        return fail(error, -EINVAL, "%s%s: the token is empty", what, path);
    }
    if (!header_safe(start, (size_t)(end - start))) {
        free(text);
        return fail(error, -EINVAL,
                    "%s%s: the token contains bytes that cannot go in an HTTP header", what, path);
    }
    *token_out = strndup(start, (size_t)(end - start));
    free(text);
    return *token_out ? 0 : -ENOMEM;
}

/* "<dir>/<name>", or name itself when absolute. -EINVAL when it is relative
 * and there is no dir. */
static int resolve_path(const char *dir, const char *name, char **out) {
    *out = NULL;
    if (name[0] == '/')
        *out = strdup(name);
    else if (!dir)
        return -EINVAL;
    else if (asprintf(out, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name) <
             0)
        *out = NULL;
    return *out ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Pass one: YAML events -> jansson tree (agent/yaml_tree.c)                */

/* Read text into a tree. Returns 0 with *root a new reference (NULL for a
 * stream without a document), or an error. Numbers are not typed because
 * every kubeconfig field that could look like one (a token, a name) is a
 * string; the first problem ends the read. */
static int read_tree(const char *text, size_t len, json_t **root, char **error) {
    static const struct yaml_tree_options opts = {
        .max_bytes = KUBECONFIG_MAX_FILE_BYTES,
        .max_depth = KUBECONFIG_MAX_DEPTH,
        .scalars = YAML_TREE_SCALARS_STRINGS,
        .report = YAML_TREE_FIRST_ERROR,
        .document_name = "kubeconfig",
    };
    struct yaml_tree_errors errs = {0};
    int r = yaml_tree_read(text, len, &opts, root, &errs);

    if (r == -EFBIG)
        r = fail(error, r, "the kubeconfig is larger than %d bytes", KUBECONFIG_MAX_FILE_BYTES);
    else if (r == -EINVAL && errs.n)
        r = fail(error, r, "%zu:%zu: %s", errs.items[0].line, errs.items[0].column,
                 errs.items[0].message);
    yaml_tree_errors_free(&errs);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

/* A member of a mapping; null counts as absent, as it does for kubectl. */
static const json_t *member(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* One entry of a top-level list and its body: contexts[0] and its
 * "context" mapping, clusters[2] and its "cluster" mapping. */
struct entry {
    const char *list;    /* "contexts", "clusters", "users" */
    const char *section; /* "context", "cluster", "user" */
    size_t index;
    const json_t *body; /* borrowed from the tree */
};

/* Fail with "<list>[i].<section>[.<key>]: <message>". key may be NULL. */
__attribute__((format(printf, 5, 6))) static int
fail_field(char **error, const struct entry *e, const char *key, int r, const char *fmt, ...) {
    char *message;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&message, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    r = fail(error, r, "%s[%zu].%s%s%s: %s", e->list, e->index, e->section, key ? "." : "",
             key ? key : "", message);
    free(message);
    return r;
}

/* A string field: 0 with *s borrowed (NULL when absent, null or ""), or
 * -EINVAL when it is not a string. */
static int field_string(char **error, const struct entry *e, const char *key, const char **s) {
    const json_t *v = member(e->body, key);

    *s = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail_field(error, e, key, -EINVAL, "must be a string, not %s",
                          yaml_tree_type_name(v));
    if (json_string_length(v) > 0)
        *s = json_string_value(v);
    return 0;
}

/* Whether a field is set: present, not null and not "", as kubectl's
 * omitempty fields count it. */
static bool has_value(const struct entry *e, const char *key) {
    const json_t *v = member(e->body, key);
    return v && !(json_is_string(v) && json_string_length(v) == 0);
}

/* Fields the agent cannot honour are refused when they hold anything. */
static int refuse_field(char **error, const struct entry *e, const char *key, const char *why) {
    if (!has_value(e, key))
        return 0;
    return fail_field(error, e, key, -EINVAL, "%s", why);
}

/* Find the entry named name in the top-level list (e->list, bodies under
 * e->section). Every entry is checked to be a mapping with a string name,
 * and the name must be unique. Returns 0 with e filled, -ENOENT without an
 * error set (the caller says where the name came from), or -EINVAL. */
static int find_entry(char **error, const json_t *root, const char *name, struct entry *e) {
    const json_t *list = member(root, e->list), *found = NULL, *item;
    char s[TEXT_SHOWN_SIZE];
    size_t i, found_at = 0;

    if (list && !json_is_array(list))
        return fail(error, -EINVAL, "%s: must be a list, not %s", e->list,
                    yaml_tree_type_name(list));
    json_array_foreach(list, i, item) {
        const json_t *v;
        if (!json_is_object(item))
            return fail(error, -EINVAL, "%s[%zu]: must be a mapping, not %s", e->list, i,
                        yaml_tree_type_name(item));
        v = member(item, "name");
        if (!v)
            return fail(error, -EINVAL, "%s[%zu].name: is required", e->list, i);
        if (!json_is_string(v))
            return fail(error, -EINVAL, "%s[%zu].name: must be a string, not %s", e->list, i,
                        yaml_tree_type_name(v));
        if (strcmp(json_string_value(v), name))
            continue;
        if (found)
            return fail(error, -EINVAL, "%s[%zu].name: duplicate name \"%s\" (also %s[%zu])",
                        e->list, i, text_shown(name, s, sizeof(s)), e->list, found_at);
        found = item;
        found_at = i;
    }
    if (!found)
        return -ENOENT;
    e->index = found_at;
    e->body = member(found, e->section);
    if (!e->body)
        return fail(error, -EINVAL, "%s[%zu].%s: is required", e->list, found_at, e->section);
    if (!json_is_object(e->body))
        return fail(error, -EINVAL, "%s[%zu].%s: must be a mapping, not %s", e->list, found_at,
                    e->section, yaml_tree_type_name(e->body));
    return 0;
}

static int base64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode standard, padded base64 (RFC 4648 section 4), skipping whitespace
 * as Go's decoder skips line breaks. Returns 0 with *out new and
 * NUL-terminated, -EINVAL with *bad_at the 1-based position of the first bad
 * character (0: the input ends inside a group), or -ENOMEM. */
static int base64_decode(const char *s, size_t len, char **out, size_t *out_len, size_t *bad_at) {
    unsigned char *data = malloc(len / 4 * 3 + 4);
    int group[4];
    size_t n = 0, q = 0;
    bool ended = false;

    *out = NULL;
    *bad_at = 0;
    if (!data)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        int v;
        if (is_space(s[i]))
            continue;
        if (ended)
            goto bad; /* data after the padding */
        if (s[i] == '=') {
            if (q < 2)
                goto bad;
            v = -1;
        } else {
            v = base64_value(s[i]);
            if (v < 0 || (q > 0 && group[q - 1] < 0))
                goto bad;
        }
        group[q++] = v;
        if (q < 4)
            continue;
        data[n++] = (unsigned char)(group[0] << 2 | group[1] >> 4);
        if (group[2] >= 0)
            data[n++] = (unsigned char)((group[1] & 0xf) << 4 | group[2] >> 2);
        if (group[3] >= 0)
            data[n++] = (unsigned char)((group[2] & 0x3) << 6 | group[3]);
        else
            ended = true;
        q = 0;
        continue;
    bad:
        *bad_at = i + 1;
        free(data);
        return -EINVAL;
    }
    if (q) {
        free(data);
        return -EINVAL;
    }
    data[n] = '\0';
    *out = (char *)data;
    *out_len = n;
    return 0;
}

/* A *-data field: base64 of PEM. 0 with *data new (NULL when absent). */
static int field_pem_data(char **error, const struct entry *e, const char *key, char **data,
                          size_t *data_len) {
    const char *s;
    size_t bad_at;
    int r;

    *data = NULL;
    *data_len = 0;
    r = field_string(error, e, key, &s);
    if (r < 0 || !s)
        return r;
    r = base64_decode(s, strlen(s), data, data_len, &bad_at);
    if (r == -EINVAL && bad_at)
        return fail_field(error, e, key, r, "not valid base64 (bad character at position %zu)",
                          bad_at);
    if (r == -EINVAL)
        return fail_field(error, e, key, r,
                          "not valid base64 (truncated: the length is not a multiple of 4)");
    if (r < 0)
        return r;
    if (!memmem(*data, *data_len, "-----BEGIN ", 11)) {
        free(*data);
        *data = NULL;
        return fail_field(error, e, key, -EINVAL,
                          "does not decode to PEM (no \"-----BEGIN\" line)");
    }
    return 0;
}

/* A file name field: resolved against base_dir and checked to be a readable
 * regular file. 0 with *path new (NULL when absent). */
static int field_file(char **error, const struct entry *e, const char *key, const char *base_dir,
                      char **path) {
    char s[TEXT_SHOWN_SIZE], why[128];
    const char *name;
    int r;

    *path = NULL;
    r = field_string(error, e, key, &name);
    if (r < 0 || !name)
        return r;
    r = resolve_path(base_dir, name, path);
    if (r == -EINVAL)
        return fail_field(error, e, key, r,
                          "\"%s\" is a relative path, and there is no kubeconfig directory to "
                          "resolve it against",
                          text_shown(name, s, sizeof(s)));
    if (r < 0)
        return r;
    r = check_file(*path);
    if (r == 0)
        return 0;
    if (r != -ENOMEM)
        r = fail_field(error, e, key, r, "%s: %s", *path, errno_text(r, why, sizeof(why)));
    free(*path);
    *path = NULL;
    return r;
}

/* ------------------------------------------------------------------------ */
/* Names and addresses                                                      */

/* A Kubernetes namespace name: an RFC 1123 label. */
static bool is_dns_label(const char *s) {
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool is_hostname(const char *s, size_t n) {
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static bool is_ipv6(const char *s, size_t n) {
    char copy[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (n == 0 || n >= sizeof(copy))
        return false;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return inet_pton(AF_INET6, copy, &a) == 1;
}

static bool is_port(const char *s, size_t n) {
    unsigned long port = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* Check a cluster's server URL and return it with a lowercase scheme and
 * without trailing slashes.
 * Returns 0 with *out new, -EINVAL with *why set, or -ENOMEM. */
static int parse_server(const char *s, char **out, const char **why) {
    const char *authority, *end, *host, *port = NULL;
    size_t host_len, n = strlen(s);

    *out = NULL;
    if (strncasecmp(s, "https://", 8)) {
        *why = "is not an https:// URL";
        return -EINVAL;
    }
    if (!header_safe(s, n) || strpbrk(s, "?#@")) {
        *why = "has spaces, user info, a query or a fragment";
        return -EINVAL;
    }
    authority = s + 8;
    end = strchr(authority, '/');
    if (!end)
        end = s + n;
    host = authority;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || !is_ipv6(host + 1, (size_t)(close - host - 1)) ||
            (close + 1 < end && close[1] != ':')) {
            *why = "has a bad IPv6 address (write it as https://[fd00::1]:443)";
            return -EINVAL;
        }
        host_len = (size_t)(close + 1 - host);
        if (close + 1 < end)
            port = close + 2;
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            *why = "has an IPv6 address without brackets (write it as https://[fd00::1]:443)";
            return -EINVAL;
        }
        host_len = (size_t)((colon ? colon : end) - host);
        if (colon)
            port = colon + 1;
        if (!is_hostname(host, host_len)) {
            *why = host_len ? "has a bad host name" : "has no host";
            return -EINVAL;
        }
    }
    if (port && !is_port(port, (size_t)(end - port))) {
        *why = "has a bad port (must be 1-65535)";
        return -EINVAL;
    }
    while (n > (size_t)(end - s) && s[n - 1] == '/')
        n--;
    *out = strndup(s, n);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, "https://", 8); /* the scheme is case-insensitive; callers compare it */
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Pass two: the selected context                                           */

struct load {
    char **error;
    const char *base_dir; /* NULL: relative file names are refused */
    bool allow_insecure;
};

/* Fields the agent cannot honour exactly. Each is refused rather than
 * ignored: ignoring one would mean another identity, another route or
 * another trust than the file asks for. docs/kubernetes-auth.md says why
 * each one is out. */
struct refused {
    const char *key;
    const char *why;
};

static const struct refused refused_cluster[] = {
    {"proxy-url", "proxies are not supported; the agent connects to the API server directly"},
    {"tls-server-name", "not supported; the certificate must match the host in server"},
};

static const struct refused refused_user[] = {
    {"exec", "exec credential plugins are not supported; use a token or client certificate"},
    {"auth-provider", "auth provider plugins are not supported; use a token or client certificate"},
    {"username", "basic authentication is not supported; use a token or client certificate"},
    {"password", "basic authentication is not supported; use a token or client certificate"},
    {"as", "impersonation is not supported"},
    {"as-uid", "impersonation is not supported"},
    {"as-groups", "impersonation is not supported"},
    {"as-user-extra", "impersonation is not supported"},
};

/* Both spellings of one credential set at once is ambiguous; refuse it. */
static int refuse_both(struct load *l, const struct entry *e, const char *key, const char *other) {
    if (has_value(e, key) && has_value(e, other))
        return fail_field(l->error, e, NULL, -EINVAL, "%s and %s are both set; keep one", key,
                          other);
    return 0;
}

static int read_cluster(struct load *l, const struct entry *e, struct kube_auth *a) {
    const json_t *insecure;
    const char *server, *why;
    char s[TEXT_SHOWN_SIZE];
    int r;

    for (size_t i = 0; i < sizeof(refused_cluster) / sizeof(refused_cluster[0]); i++)
        if ((r = refuse_field(l->error, e, refused_cluster[i].key, refused_cluster[i].why)) < 0)
            return r;

    if ((r = field_string(l->error, e, "server", &server)) < 0)
        return r;
    if (!server)
        return fail_field(l->error, e, "server", -EINVAL, "is required");
    r = parse_server(server, &a->server, &why);
    if (r == -EINVAL)
        return fail_field(l->error, e, "server", r, "\"%s\" %s", text_shown(server, s, sizeof(s)),
                          why);
    if (r < 0)
        return r;

    insecure = member(e->body, "insecure-skip-tls-verify");
    if (insecure && !json_is_boolean(insecure))
        return fail_field(l->error, e, "insecure-skip-tls-verify", -EINVAL,
                          "must be true or false, not %s", yaml_tree_type_name(insecure));
    if (json_is_true(insecure)) {
        if (!l->allow_insecure)
            return fail_field(l->error, e, "insecure-skip-tls-verify", -EPERM,
                              "refusing to turn off verification of the API server's "
                              "certificate");
        a->insecure_skip_tls_verify = true;
    }

    if ((r = refuse_both(l, e, "certificate-authority", "certificate-authority-data")) < 0)
        return r;
    if ((r = field_pem_data(l->error, e, "certificate-authority-data", &a->ca_data,
                            &a->ca_data_len)) < 0 ||
        (r = field_file(l->error, e, "certificate-authority", l->base_dir, &a->ca_file)) < 0)
        return r;
    if (a->insecure_skip_tls_verify && (a->ca_data || a->ca_file))
        return fail_field(l->error, e, NULL, -EINVAL,
                          "insecure-skip-tls-verify is true and a certificate authority is set; "
                          "keep one");
    return 0;
}

static int read_user(struct load *l, const struct entry *e, struct kube_auth *a) {
    const char *token, *token_file, *cert = NULL, *key = NULL;
    char s[TEXT_SHOWN_SIZE], *prefix;
    int r;

    for (size_t i = 0; i < sizeof(refused_user) / sizeof(refused_user[0]); i++)
        if ((r = refuse_field(l->error, e, refused_user[i].key, refused_user[i].why)) < 0)
            return r;
    if ((r = refuse_both(l, e, "token", "tokenFile")) < 0 ||
        (r = refuse_both(l, e, "client-certificate", "client-certificate-data")) < 0 ||
        (r = refuse_both(l, e, "client-key", "client-key-data")) < 0)
        return r;

    if ((r = field_string(l->error, e, "token", &token)) < 0 ||
        (r = field_string(l->error, e, "tokenFile", &token_file)) < 0)
        return r;
    if (has_value(e, "client-certificate-data"))
        cert = "client-certificate-data";
    else if (has_value(e, "client-certificate"))
        cert = "client-certificate";
    if (has_value(e, "client-key-data"))
        key = "client-key-data";
    else if (has_value(e, "client-key"))
        key = "client-key";
    if (cert && !key)
        return fail_field(l->error, e, NULL, -EINVAL,
                          "%s is set without client-key or client-key-data", cert);
    if (key && !cert)
        return fail_field(l->error, e, NULL, -EINVAL,
                          "%s is set without client-certificate or client-certificate-data", key);

    if (token) {
        if (!header_safe(token, strlen(token)))
            return fail_field(l->error, e, "token", -EINVAL,
                              "contains bytes that cannot go in an HTTP header");
        a->token = strdup(token);
        if (!a->token)
            return -ENOMEM;
    }
    if (token_file) {
        r = resolve_path(l->base_dir, token_file, &a->token_file);
        if (r == -EINVAL)
            return fail_field(l->error, e, "tokenFile", r,
                              "\"%s\" is a relative path, and there is no kubeconfig directory "
                              "to resolve it against",
                              text_shown(token_file, s, sizeof(s)));
        if (r < 0)
            return r;
        if (asprintf(&prefix, "%s[%zu].%s.tokenFile: ", e->list, e->index, e->section) < 0)
            return -ENOMEM;
        r = read_token_file(a->token_file, prefix, &a->token, l->error);
        free(prefix);
        if (r < 0)
            return r;
    }
    if ((r = field_pem_data(l->error, e, "client-certificate-data", &a->client_cert_data,
                            &a->client_cert_data_len)) < 0 ||
        (r = field_file(l->error, e, "client-certificate", l->base_dir, &a->client_cert_file)) <
            0 ||
        (r = field_pem_data(l->error, e, "client-key-data", &a->client_key_data,
                            &a->client_key_data_len)) < 0 ||
        (r = field_file(l->error, e, "client-key", l->base_dir, &a->client_key_file)) < 0)
        return r;
    if (!a->token && !cert)
        return fail_field(l->error, e, NULL, -EINVAL,
                          "no credentials; set token, tokenFile, or client-certificate and "
                          "client-key");
    return 0;
}

/* Select the context and read its cluster and user into a. */
static int read_kubeconfig(struct load *l, const json_t *root, const char *context,
                           const char *origin_file, struct kube_auth *a) {
    struct entry ctx = {.list = "contexts", .section = "context"};
    struct entry cluster = {.list = "clusters", .section = "cluster"};
    struct entry user = {.list = "users", .section = "user"};
    const char *cluster_name, *user_name, *ns;
    const json_t *v;
    char s[TEXT_SHOWN_SIZE];
    int r;

    if (!root || json_is_null(root))
        return fail(l->error, -EINVAL, "the kubeconfig is empty");
    if (!json_is_object(root))
        return fail(l->error, -EINVAL, "the kubeconfig must be a mapping, not %s",
                    yaml_tree_type_name(root));
    if ((v = member(root, "kind")) &&
        (!json_is_string(v) || strcmp(json_string_value(v), "Config")))
        return fail(l->error, -EINVAL, "kind: must be Config; is this a kubeconfig?");
    if ((v = member(root, "apiVersion")) &&
        (!json_is_string(v) || strcmp(json_string_value(v), "v1")))
        return fail(l->error, -EINVAL, "apiVersion: must be v1");

    if (!context || !*context) {
        v = member(root, "current-context");
        if (v && !json_is_string(v))
            return fail(l->error, -EINVAL, "current-context: must be a string, not %s",
                        yaml_tree_type_name(v));
        if (!v || json_string_length(v) == 0)
            return fail(l->error, -ENOENT,
                        "current-context: not set, and no context was asked for");
        context = json_string_value(v);
        r = find_entry(l->error, root, context, &ctx);
        if (r == -ENOENT)
            return fail(l->error, r, "current-context: no context named \"%s\" in contexts",
                        text_shown(context, s, sizeof(s)));
    } else {
        r = find_entry(l->error, root, context, &ctx);
        if (r == -ENOENT)
            return fail(l->error, r, "contexts: no context named \"%s\"",
                        text_shown(context, s, sizeof(s)));
    }
    if (r < 0)
        return r;

    if ((r = field_string(l->error, &ctx, "cluster", &cluster_name)) < 0 ||
        (r = field_string(l->error, &ctx, "user", &user_name)) < 0 ||
        (r = field_string(l->error, &ctx, "namespace", &ns)) < 0)
        return r;
    if (!cluster_name)
        return fail_field(l->error, &ctx, "cluster", -EINVAL, "is required");
    if (!user_name)
        return fail_field(l->error, &ctx, "user", -EINVAL,
                          "is required (the agent does not connect anonymously)");
    if (ns && !is_dns_label(ns))
        return fail_field(l->error, &ctx, "namespace", -EINVAL,
                          "\"%s\" is not a namespace name (a lowercase RFC 1123 label)",
                          text_shown(ns, s, sizeof(s)));

    r = find_entry(l->error, root, cluster_name, &cluster);
    if (r == -ENOENT)
        return fail_field(l->error, &ctx, "cluster", r, "no cluster named \"%s\" in clusters",
                          text_shown(cluster_name, s, sizeof(s)));
    if (r < 0 || (r = read_cluster(l, &cluster, a)) < 0)
        return r;
    r = find_entry(l->error, root, user_name, &user);
    if (r == -ENOENT)
        return fail_field(l->error, &ctx, "user", r, "no user named \"%s\" in users",
                          text_shown(user_name, s, sizeof(s)));
    if (r < 0 || (r = read_user(l, &user, a)) < 0)
        return r;

    if (ns && !(a->namespace = strdup(ns)))
        return -ENOMEM;
    if (asprintf(&a->origin, "%s#%s", origin_file, context) < 0) {
        a->origin = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int load(const char *text, size_t len, const char *base_dir, const char *origin_file,
                const char *context, bool allow_insecure, struct kube_auth *out, char **error) {
    struct load l = {.error = error, .base_dir = base_dir, .allow_insecure = allow_insecure};
    struct kube_auth a = {0};
    json_t *root = NULL;
    int r;

    r = read_tree(text, len, &root, error);
    if (r == 0)
        r = read_kubeconfig(&l, root, context, origin_file, &a);
    json_decref(root);
    if (r < 0) {
        kube_auth_free(&a);
        return r;
    }
    *out = a;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

/* Every entry point starts the same way: no error yet, nothing in out. */
static void start(struct kube_auth *out, char **error) {
    if (error)
        *error = NULL;
    memset(out, 0, sizeof(*out));
}

int kubeconfig_load_string(const char *text, size_t len, const char *base_dir, const char *context,
                           bool allow_insecure, struct kube_auth *out, char **error) {
    start(out, error);
    return load(text, len, base_dir, "(string)", context, allow_insecure, out, error);
}

int kubeconfig_load(const char *path, const char *context, bool allow_insecure,
                    struct kube_auth *out, char **error) {
    char why[128], *absolute = NULL, *slash, *text = NULL;
    size_t len = 0;
    int r;

    start(out, error);
    r = read_file(path, KUBECONFIG_MAX_FILE_BYTES, &text, &len);
    if (r == -EFBIG)
        return fail(error, r, "%s: larger than %d bytes", path, KUBECONFIG_MAX_FILE_BYTES);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return fail(error, r, "%s: %s", path, errno_text(r, why, sizeof(why)));
    /* Relative names inside are relative to the file's directory, made
     * absolute now so a later chdir cannot change what they mean. */
    if (path[0] == '/') {
        absolute = strdup(path);
    } else {
        char *cwd = getcwd(NULL, 0);
        if (!cwd) {
            r = fail(error, -errno, "%s: cannot resolve the working directory: %s", path,
                     strerror_r(errno, why, sizeof(why)));
            goto out;
        }
        if (asprintf(&absolute, "%s/%s", cwd, path) < 0)
            absolute = NULL;
        free(cwd);
    }
    if (!absolute) {
        r = -ENOMEM;
        goto out;
    }
    slash = strrchr(absolute, '/');
    slash[slash == absolute ? 1 : 0] = '\0';
    r = load(text, len, absolute, path, context, allow_insecure, out, error);
    prefix_error(error, path);
out:
    free(absolute);
    free(text);
    return r;
}

int kube_auth_in_cluster(const char *(*getenv_fn)(const char *name), const char *sa_dir,
                         struct kube_auth *out, char **error) {
    struct kube_auth a = {0};
    const char *host, *port;
    char s[TEXT_SHOWN_SIZE], why[128], *ns_path = NULL, *text = NULL;
    size_t host_len, len;
    int r;

    start(out, error);
    if (!getenv_fn)
        return fail(error, -EINVAL, "no environment to read");
    if (!sa_dir)
        sa_dir = KUBE_AUTH_DEFAULT_SA_DIR;
    host = getenv_fn("KUBERNETES_SERVICE_HOST");
    if (!host || !*host)
        return fail(error, -ENOENT, "KUBERNETES_SERVICE_HOST is not set; not running in a pod");
    port = getenv_fn("KUBERNETES_SERVICE_PORT");
    if (!port || !*port)
        return fail(error, -ENOENT, "KUBERNETES_SERVICE_PORT is not set");
    if (!is_port(port, strlen(port)))
        return fail(error, -EINVAL, "KUBERNETES_SERVICE_PORT: \"%s\" is not a port (1-65535)",
                    text_shown(port, s, sizeof(s)));
    /* An IPv6 host comes bare ("fd00::1"); a URL needs it in brackets. */
    host_len = strlen(host);
    if (host[0] == '[' && host[host_len - 1] == ']' && is_ipv6(host + 1, host_len - 2))
        r = asprintf(&a.server, "https://%s:%s", host, port);
    else if (is_ipv6(host, host_len))
        r = asprintf(&a.server, "https://[%s]:%s", host, port);
    else if (is_hostname(host, host_len))
        r = asprintf(&a.server, "https://%s:%s", host, port);
    else
        return fail(error, -EINVAL,
                    "KUBERNETES_SERVICE_HOST: \"%s\" is not a host name or IP address",
                    text_shown(host, s, sizeof(s)));
    if (r < 0) {
        a.server = NULL;
        r = -ENOMEM;
        goto out;
    }

    if ((r = resolve_path(sa_dir, "token", &a.token_file)) < 0 ||
        (r = read_token_file(a.token_file, "", &a.token, error)) < 0)
        goto out;
    if ((r = resolve_path(sa_dir, "ca.crt", &a.ca_file)) < 0)
        goto out;
    if ((r = check_file(a.ca_file)) < 0) {
        if (r != -ENOMEM)
            r = fail(error, r, "%s: %s", a.ca_file, errno_text(r, why, sizeof(why)));
        goto out;
    }
    /* The namespace file is optional: without it the caller picks one. */
    if ((r = resolve_path(sa_dir, "namespace", &ns_path)) < 0)
        goto out;
    r = read_file(ns_path, KUBE_AUTH_MAX_SMALL_BYTES, &text, &len);
    if (r == 0) {
        char *start_at = text, *end = text + len;
        while (start_at < end && is_space(*start_at))
            start_at++;
        while (end > start_at && is_space(end[-1]))
            end--;
        *end = '\0';
        if (*start_at && !is_dns_label(start_at)) {
            r = fail(error, -EINVAL,
                     "%s: \"%s\" is not a namespace name (a lowercase RFC 1123 label)", ns_path,
                     text_shown(start_at, s, sizeof(s)));
            goto out;
        }
        if (*start_at && !(a.namespace = strdup(start_at))) {
            r = -ENOMEM;
            goto out;
        }
    } else if (r == -EFBIG) {
        r = fail(error, r, "%s: larger than %d bytes", ns_path, KUBE_AUTH_MAX_SMALL_BYTES);
        goto out;
    } else if (r != -ENOENT) {
        if (r != -ENOMEM)
            r = fail(error, r, "%s: %s", ns_path, errno_text(r, why, sizeof(why)));
        goto out;
    }
    a.origin = strdup("in-cluster");
    r = a.origin ? 0 : -ENOMEM;
out:
    free(ns_path);
    free(text);
    if (r < 0) {
        kube_auth_free(&a);
        return r;
    }
    *out = a;
    return 0;
}

int kube_auth_resolve(const struct kube_auth_options *opts, struct kube_auth *out, char **error) {
    const char *list, *host;
    char s[TEXT_SHOWN_SIZE];

    start(out, error);
    if (!opts || !opts->getenv_fn)
        return fail(error, -EINVAL, "no environment to read");
    if (opts->kubeconfig_path && *opts->kubeconfig_path)
        return kubeconfig_load(opts->kubeconfig_path, opts->context, opts->allow_insecure, out,
                               error);
    list = opts->getenv_fn("KUBECONFIG");
    /* The first non-empty entry only; kubectl's merging of several files
     * is deliberately not reproduced (one file, one answer). */
    while (list && *list == ':')
        list++;
    if (list && *list) {
        char *path = strndup(list, strcspn(list, ":"));
        int r;
        if (!path)
            return -ENOMEM;
        r = kubeconfig_load(path, opts->context, opts->allow_insecure, out, error);
        free(path);
        return r;
    }
    host = opts->getenv_fn("KUBERNETES_SERVICE_HOST");
    if (host && *host) {
        if (opts->context && *opts->context)
            return fail(error, -EINVAL,
                        "a context (\"%s\") was given, but there is no kubeconfig to take it "
                        "from",
                        text_shown(opts->context, s, sizeof(s)));
        return kube_auth_in_cluster(opts->getenv_fn, opts->sa_dir, out, error);
    }
    return fail(error, -ENOENT, "no Kubernetes credentials: set --kubeconfig or run in a pod");
}

int kube_auth_read_token(struct kube_auth *a, char **error) {
    char *token;
    int r;

    if (error)
        *error = NULL;
    if (!a->token_file)
        return fail(error, -EINVAL, "no token file to re-read");
    r = read_token_file(a->token_file, "", &token, error);
    if (r < 0)
        return r;
    if (a->token && !strcmp(a->token, token)) {
        free(token);
        return 0;
    }
    free(a->token);
    a->token = token;
    return 1;
}

void kube_auth_free(struct kube_auth *a) {
    if (!a)
        return;
    free(a->server);
    free(a->ca_file);
    free(a->ca_data);
    free(a->client_cert_file);
    free(a->client_cert_data);
    free(a->client_key_file);
    free(a->client_key_data);
    free(a->token);
    free(a->token_file);
    free(a->namespace);
    free(a->origin);
    memset(a, 0, sizeof(*a));
}
