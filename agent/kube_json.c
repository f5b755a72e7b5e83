/*
 * Kubernetes JSON in and out (see kube_json.h). The parsers walk jansson
 * trees that came from the network and check every value's type before they
 * read it; a field the agent needs is copied into a fixed buffer or refused,
 * never cut, because a cut name or resourceVersion would silently address a
 * different object. Only reasons and messages, which are read by people, are
 * cut at a UTF-8 boundary. Arrays are capped before any allocation, so a huge
 * array costs nothing but the parse jansson already did; jansson itself
 * refuses nesting deeper than 2048, invalid UTF-8 and NUL in strings. The
 * builders go through jansson with sorted keys so their output is byte for
 * byte stable, which the golden tests and docs/kubernetes-api.md rely on.
 * Nothing here logs, reads a clock or touches the network.
 */
#include "kube_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/* RFC 3339 times from 1970-01-01 to 9999-12-31T23:59:59. */
#define UNIX_MAX_SECONDS INT64_C(253402300799)

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

static int fail(struct kube_json_error *err, const char *field, const char *problem) {
    if (err) {
        err->field = field;
        err->problem = problem;
    }
    return -EBADMSG;
}

enum str_flags {
    STR_OPTIONAL = 0,
    STR_REQUIRED = 1, /* absent or null is an error */
    STR_CUT = 2,      /* too long: cut at a UTF-8 boundary instead of an error */
    STR_NONEMPTY = 4, /* "" is an error */
};

/* obj[key] into out; absent (or null, for optional fields) leaves "". */
static int get_str(const json_t *obj, const char *key, const char *field, char *out, size_t size,
                   unsigned flags, struct kube_json_error *err) {
    const json_t *v = json_object_get(obj, key);
    size_t len;

    out[0] = '\0';
    if (!v || json_is_null(v))
        return flags & STR_REQUIRED ? fail(err, field, "missing") : 0;
    if (!json_is_string(v))
        return fail(err, field, "not a string");
    len = json_string_length(v);
    if (len >= size) {
        if (!(flags & STR_CUT))
            return fail(err, field, "too long");
        memcpy(out, json_string_value(v), size - 1);
        out[size - 1] = '\0';
        text_utf8_trim_tail(out, size - 1);
        return 0;
    }
    memcpy(out, json_string_value(v), len + 1);
    if ((flags & STR_NONEMPTY) && len == 0)
        return fail(err, field, "empty");
    return 0;
}

/* obj[key] as an object; absent or null gives NULL and 0 unless required. */
static int get_object(const json_t *obj, const char *key, const char *field, bool required,
                      const json_t **out, struct kube_json_error *err) {
    const json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return required ? fail(err, field, "missing") : 0;
    if (!json_is_object(v))
        return fail(err, field, "not an object");
    *out = v;
    return 0;
}

/* obj[key] as an array of at most cap elements; absent or null is empty. */
static int get_array(const json_t *obj, const char *key, const char *field, size_t cap,
                     const json_t **out, struct kube_json_error *err) {
    const json_t *v = obj ? json_object_get(obj, key) : NULL;

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(err, field, "not an array");
    if (json_array_size(v) > cap)
        return fail(err, field, "too many entries");
    *out = v;
    return 0;
}

/* obj[key] as an integer in [lo, hi]; absent or null leaves *out alone. */
static int get_int(const json_t *obj, const char *key, const char *field, json_int_t lo,
                   json_int_t hi, bool required, json_int_t *out, struct kube_json_error *err) {
    const json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return required ? fail(err, field, "missing") : 0;
    if (!json_is_integer(v))
        return fail(err, field, "not an integer");
    if (json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(err, field, "out of range");
    *out = json_integer_value(v);
    return 0;
}

static json_t *decode(const char *text, size_t len, int *r, struct kube_json_error *err) {
    json_error_t jerr;
    json_t *root;

    if (len > KUBE_JSON_MAX_INPUT_BYTES) {
        *r = -EFBIG;
        fail(err, "(document)", "too large");
        return NULL;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            *r = -ENOMEM;
        else
            *r = fail(err, "(document)",
                      json_error_code(&jerr) == json_error_duplicate_key ? "duplicate key"
                                                                         : "not valid JSON");
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        *r = fail(err, "(document)", "not an object");
        return NULL;
    }
    *r = 0;
    return root;
}

static bool dns_subdomain(const char *s);

static int parse_meta(const json_t *obj, struct kube_json_meta *m, struct kube_json_error *err) {
    const json_t *md, *del;
    int r;

    if ((r = get_object(obj, "metadata", "metadata", true, &md, err)) < 0 ||
        (r = get_str(md, "name", "metadata.name", m->name, sizeof(m->name),
                     STR_REQUIRED | STR_NONEMPTY, err)) < 0 ||
        (r = get_str(md, "namespace", "metadata.namespace", m->namespace, sizeof(m->namespace), 0,
                     err)) < 0 ||
        (r = get_str(md, "uid", "metadata.uid", m->uid, sizeof(m->uid), 0, err)) < 0 ||
        (r = get_str(md, "resourceVersion", "metadata.resourceVersion", m->resource_version,
                     sizeof(m->resource_version), 0, err)) < 0)
        return r;
    del = json_object_get(md, "deletionTimestamp");
    if (del && !json_is_null(del) && !json_is_string(del))
        return fail(err, "metadata.deletionTimestamp", "not a string");
    m->deleting = del && json_is_string(del);
    return 0;
}

static int parse_labels(const json_t *obj, struct kube_json_labels *l,
                        struct kube_json_error *err) {
    const json_t *md, *labels, *v;
    const char *key;
    size_t n;
    int r;

    if ((r = get_object(obj, "metadata", "metadata", true, &md, err)) < 0 ||
        (r = get_object(md, "labels", "metadata.labels", false, &labels, err)) < 0)
        return r;
    if (!labels || json_object_size(labels) == 0)
        return 0;
    n = json_object_size(labels);
    if (n > KUBE_JSON_MAX_ENTRIES)
        return fail(err, "metadata.labels", "too many entries");
    l->items = calloc(n, sizeof(*l->items));
    if (!l->items)
        return -ENOMEM;
    json_object_foreach((json_t *)labels, key, v) {
        struct kube_json_label *it = &l->items[l->n];
        size_t klen = strlen(key);

        if (!json_is_string(v))
            return fail(err, "metadata.labels[]", "not a string");
        if (klen == 0)
            return fail(err, "metadata.labels[]", "empty key");
        if (klen >= sizeof(it->key) || json_string_length(v) >= sizeof(it->value))
            return fail(err, "metadata.labels[]", "too long");
        memcpy(it->key, key, klen + 1);
        memcpy(it->value, json_string_value(v), json_string_length(v) + 1);
        l->n++;
    }
    return 0;
}

static int parse_conditions(const json_t *status, struct kube_json_condition **out, size_t *n_out,
                            const char *field, struct kube_json_error *err) {
    const json_t *arr, *c;
    size_t i;
    int r;

    if ((r = get_array(status, "conditions", field, KUBE_JSON_MAX_ENTRIES, &arr, err)) < 0)
        return r;
    if (!arr || json_array_size(arr) == 0)
        return 0;
    *out = calloc(json_array_size(arr), sizeof(**out));
    if (!*out)
        return -ENOMEM;
    json_array_foreach(arr, i, c) {
        struct kube_json_condition *it = &(*out)[i];

        if (!json_is_object(c))
            return fail(err, field, "entry not an object");
        if ((r = get_str(c, "type", field, it->type, sizeof(it->type), STR_REQUIRED | STR_NONEMPTY,
                         err)) < 0 ||
            (r = get_str(c, "status", field, it->status, sizeof(it->status), STR_REQUIRED, err)) <
                0 ||
            (r = get_str(c, "reason", field, it->reason, sizeof(it->reason), STR_CUT, err)) < 0 ||
            (r = get_str(c, "message", field, it->message, sizeof(it->message), STR_CUT, err)) <
                0 ||
            (r = get_str(c, "lastHeartbeatTime", field, it->last_heartbeat_time,
                         sizeof(it->last_heartbeat_time), 0, err)) < 0 ||
            (r = get_str(c, "lastTransitionTime", field, it->last_transition_time,
                         sizeof(it->last_transition_time), 0, err)) < 0)
            return r;
        (*n_out)++;
    }
    return 0;
}

/* metadata.ownerReferences[]: the uid of the one with controller: true. */
static int parse_owner(const json_t *obj, char *uid, size_t size, struct kube_json_error *err) {
    const json_t *md = json_object_get(obj, "metadata"), *arr, *v;
    size_t i;
    int r;

    uid[0] = '\0';
    if ((r = get_array(md, "ownerReferences", "metadata.ownerReferences", KUBE_JSON_MAX_ENTRIES,
                       &arr, err)) < 0)
        return r;
    json_array_foreach(arr, i, v) {
        if (!json_is_object(v))
            return fail(err, "metadata.ownerReferences[]", "not an object");
        if (!json_is_true(json_object_get(v, "controller")))
            continue;
        return get_str(v, "uid", "metadata.ownerReferences[].uid", uid, size, STR_REQUIRED, err);
    }
    return 0;
}

static int parse_pod(const json_t *obj, struct kube_json_pod *p, struct kube_json_error *err) {
    const json_t *spec, *status, *arr, *v;
    size_t i;
    int r;

    if (!json_is_object(obj))
        return fail(err, "(object)", "not an object");
    if ((r = parse_meta(obj, &p->meta, err)) < 0 || (r = parse_labels(obj, &p->labels, err)) < 0 ||
        (r = get_object(obj, "spec", "spec", false, &spec, err)) < 0 ||
        (r = get_object(obj, "status", "status", false, &status, err)) < 0)
        return r;
    if ((r = parse_owner(obj, p->owner_uid, sizeof(p->owner_uid), err)) < 0)
        return r;
    if (spec) {
        if ((r = get_str(spec, "nodeName", "spec.nodeName", p->node_name, sizeof(p->node_name), 0,
                         err)) < 0 ||
            (r = get_array(spec, "readinessGates", "spec.readinessGates", KUBE_JSON_MAX_ENTRIES,
                           &arr, err)) < 0)
            return r;
        json_array_foreach(arr, i, v) {
            const json_t *t = json_is_object(v) ? json_object_get(v, "conditionType") : NULL;

            if (!json_is_string(t))
                return fail(err, "spec.readinessGates[].conditionType", "not a string");
            if (!strcmp(json_string_value(t), POLICY_POD_CONDITION))
                p->has_ready_gate = true;
        }
    }
    if (!status)
        return 0;
    if ((r = get_str(status, "phase", "status.phase", p->phase, sizeof(p->phase), 0, err)) < 0 ||
        (r = get_str(status, "podIP", "status.podIP", p->pod_ip, sizeof(p->pod_ip), 0, err)) < 0 ||
        (r = get_array(status, "podIPs", "status.podIPs", KUBE_JSON_MAX_ENTRIES, &arr, err)) < 0)
        return r;
    json_array_foreach(arr, i, v) {
        char ip[KUBE_JSON_IP_SIZE];

        if (!json_is_object(v))
            return fail(err, "status.podIPs[]", "not an object");
        if ((r = get_str(v, "ip", "status.podIPs[].ip", ip, sizeof(ip), STR_REQUIRED, err)) < 0)
            return r;
        if (i == 0 && !p->pod_ip[0])
            memcpy(p->pod_ip, ip, sizeof(ip));
    }
    if ((r = parse_conditions(status, &p->conditions, &p->n_conditions, "status.conditions[]",
                              err)) < 0 ||
        (r = get_array(status, "containerStatuses", "status.containerStatuses",
                       KUBE_JSON_MAX_ENTRIES, &arr, err)) < 0)
        return r;
    json_array_foreach(arr, i, v) {
        json_int_t restarts = 0;

        if (!json_is_object(v))
            return fail(err, "status.containerStatuses[]", "not an object");
        if ((r = get_int(v, "restartCount", "status.containerStatuses[].restartCount", 0, INT32_MAX,
                         false, &restarts, err)) < 0)
            return r;
        p->restart_count += (uint64_t)restarts;
    }
    return 0;
}

static int parse_node(const json_t *obj, struct kube_json_node *nd, struct kube_json_error *err) {
    const json_t *spec, *status, *arr, *v, *u;
    size_t i;
    int r;

    if (!json_is_object(obj))
        return fail(err, "(object)", "not an object");
    if ((r = parse_meta(obj, &nd->meta, err)) < 0 ||
        (r = get_object(obj, "spec", "spec", false, &spec, err)) < 0 ||
        (r = get_object(obj, "status", "status", false, &status, err)) < 0 ||
        (r = get_array(spec, "taints", "spec.taints", KUBE_JSON_MAX_ENTRIES, &arr, err)) < 0)
        return r;
    if (arr && json_array_size(arr) > 0) {
        nd->taints = calloc(json_array_size(arr), sizeof(*nd->taints));
        if (!nd->taints)
            return -ENOMEM;
    }
    json_array_foreach(arr, i, v) {
        struct kube_json_taint *t = &nd->taints[i];

        if (!json_is_object(v))
            return fail(err, "spec.taints[]", "not an object");
        if ((r = get_str(v, "key", "spec.taints[].key", t->key, sizeof(t->key),
                         STR_REQUIRED | STR_NONEMPTY, err)) < 0 ||
            (r = get_str(v, "value", "spec.taints[].value", t->value, sizeof(t->value), 0, err)) <
                0 ||
            (r = get_str(v, "effect", "spec.taints[].effect", t->effect, sizeof(t->effect),
                         STR_REQUIRED | STR_NONEMPTY, err)) < 0 ||
            (r = get_str(v, "timeAdded", "spec.taints[].timeAdded", t->time_added,
                         sizeof(t->time_added), 0, err)) < 0)
            return r;
        nd->n_taints++;
    }
    u = spec ? json_object_get(spec, "unschedulable") : NULL;
    if (u && !json_is_null(u) && !json_is_boolean(u))
        return fail(err, "spec.unschedulable", "not a boolean");
    nd->unschedulable = u && json_is_true(u);
    if (status && (r = parse_conditions(status, &nd->conditions, &nd->n_conditions,
                                        "status.conditions[]", err)) < 0)
        return r;
    return 0;
}

static int parse_status(const json_t *obj, struct kube_json_status *s,
                        struct kube_json_error *err) {
    char kind[KUBE_JSON_WORD_SIZE];
    const json_t *details;
    json_int_t code = 0, retry = 0;
    int r;

    if (!json_is_object(obj))
        return fail(err, "(object)", "not an object");
    if ((r = get_str(obj, "kind", "kind", kind, sizeof(kind), 0, err)) < 0)
        return r;
    if (kind[0] && strcmp(kind, "Status"))
        return fail(err, "kind", "not Status");
    if ((r = get_int(obj, "code", "code", 0, 999, true, &code, err)) < 0 ||
        (r = get_str(obj, "reason", "reason", s->reason, sizeof(s->reason), STR_CUT, err)) < 0 ||
        (r = get_str(obj, "message", "message", s->message, sizeof(s->message), STR_CUT, err)) <
            0 ||
        (r = get_object(obj, "details", "details", false, &details, err)) < 0)
        return r;
    if (details && (r = get_int(details, "retryAfterSeconds", "details.retryAfterSeconds", 0,
                                INT32_MAX, false, &retry, err)) < 0)
        return r;
    s->code = (int)code;
    s->retry_after_seconds = (int)retry;
    return 0;
}

static int parse_watch_event(const json_t *root, struct kube_json_watch_event *ev,
                             struct kube_json_error *err) {
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    char type[KUBE_JSON_WORD_SIZE];
    const json_t *obj, *md;
    size_t i;
    int r;

    if ((r = get_str(root, "type", "type", type, sizeof(type), STR_REQUIRED, err)) < 0 ||
        (r = get_object(root, "object", "object", true, &obj, err)) < 0)
        return r;
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(type, types[i]))
            break;
    if (i == sizeof(types) / sizeof(types[0]))
        return fail(err, "type", "unknown event type");
    ev->type = (enum kube_json_event_type)i;
    if (ev->type == KUBE_JSON_ERROR) {
        if ((r = parse_status(obj, &ev->status, err)) < 0)
            return r;
        ev->relist = ev->status.code == 410;
    } else {
        if ((r = get_object(obj, "metadata", "object.metadata", ev->type == KUBE_JSON_BOOKMARK, &md,
                            err)) < 0)
            return r;
        if (md && (r = get_str(md, "resourceVersion", "object.metadata.resourceVersion",
                               ev->resource_version, sizeof(ev->resource_version),
                               ev->type == KUBE_JSON_BOOKMARK ? STR_REQUIRED | STR_NONEMPTY : 0,
                               err)) < 0)
            return r;
    }
    ev->object = json_incref((json_t *)obj);
    return 0;
}

static int parse_list(json_t *root, struct kube_json_list *l, struct kube_json_error *err) {
    const json_t *md, *items, *v;
    size_t i;
    int r;

    if ((r = get_object(root, "metadata", "metadata", false, &md, err)) < 0 ||
        (md && (r = get_str(md, "resourceVersion", "metadata.resourceVersion", l->resource_version,
                            sizeof(l->resource_version), 0, err)) < 0) ||
        (md && (r = get_str(md, "continue", "metadata.continue", l->continue_token,
                            sizeof(l->continue_token), 0, err)) < 0) ||
        (r = get_array(root, "items", "items", KUBE_JSON_MAX_ITEMS, &items, err)) < 0)
        return r;
    if (!json_object_get(root, "items"))
        return fail(err, "items", "missing");
    json_array_foreach(items, i, v) {
        if (!json_is_object(v))
            return fail(err, "items[]", "not an object");
    }
    l->root = root;
    l->items = (json_t *)items;
    l->n_items = items ? json_array_size(items) : 0;
    return 0;
}

int kube_json_watch_event_parse(const char *text, size_t len, struct kube_json_watch_event *out,
                                struct kube_json_error *err) {
    json_t *root;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    root = decode(text, len, &r, err);
    if (!root)
        return r;
    r = parse_watch_event(root, out, err);
    json_decref(root);
    if (r < 0)
        kube_json_watch_event_free(out);
    return r;
}

void kube_json_watch_event_free(struct kube_json_watch_event *ev) {
    if (!ev)
        return;
    json_decref(ev->object);
    memset(ev, 0, sizeof(*ev));
}

int kube_json_list_parse(const char *text, size_t len, struct kube_json_list *out,
                         struct kube_json_error *err) {
    json_t *root;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    root = decode(text, len, &r, err);
    if (!root)
        return r;
    r = parse_list(root, out, err);
    if (r < 0) {
        json_decref(root);
        memset(out, 0, sizeof(*out));
    }
    return r;
}

void kube_json_list_free(struct kube_json_list *list) {
    if (!list)
        return;
    json_decref(list->root);
    memset(list, 0, sizeof(*list));
}

int kube_json_pod_from_json(const json_t *pod, struct kube_json_pod *out,
                            struct kube_json_error *err) {
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!pod)
        return -EINVAL;
    r = parse_pod(pod, out, err);
    if (r < 0)
        kube_json_pod_free(out);
    return r;
}

int kube_json_pod_parse(const char *text, size_t len, struct kube_json_pod *out,
                        struct kube_json_error *err) {
    json_t *root;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    root = decode(text, len, &r, err);
    if (!root)
        return r;
    r = kube_json_pod_from_json(root, out, err);
    json_decref(root);
    return r;
}

void kube_json_pod_free(struct kube_json_pod *pod) {
    if (!pod)
        return;
    free(pod->labels.items);
    free(pod->conditions);
    memset(pod, 0, sizeof(*pod));
}

int kube_json_node_from_json(const json_t *node, struct kube_json_node *out,
                             struct kube_json_error *err) {
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!node)
        return -EINVAL;
    r = parse_node(node, out, err);
    if (r < 0)
        kube_json_node_free(out);
    return r;
}

int kube_json_node_parse(const char *text, size_t len, struct kube_json_node *out,
                         struct kube_json_error *err) {
    json_t *root;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    root = decode(text, len, &r, err);
    if (!root)
        return r;
    r = kube_json_node_from_json(root, out, err);
    json_decref(root);
    return r;
}

/* An annotation's value, or NULL. */
static const char *annotation(const json_t *obj, const char *key) {
    const json_t *md = json_object_get(obj, "metadata");
    const json_t *ann = json_is_object(md) ? json_object_get(md, "annotations") : NULL;
    const json_t *v = json_is_object(ann) ? json_object_get(ann, key) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* IPV4:PORT or [IPV6]:PORT: what a peer query can use (no name to
 * resolve). */
static bool address_ok(const char *s) {
    const char *colon = strrchr(s, ':');
    char host[INET6_ADDRSTRLEN + 2];
    unsigned char bin[sizeof(struct in6_addr)];
    size_t hlen;
    long port = 0;

    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *d = colon + 1; *d; d++) {
        if (*d < '0' || *d > '9')
            return false;
        port = port * 10 + (*d - '0');
    }
    if (port <= 0 || port > 65535)
        return false;
    hlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']' || hlen - 2 >= sizeof(host))
            return false;
        memcpy(host, s + 1, hlen - 2);
        host[hlen - 2] = '\0';
        return inet_pton(AF_INET6, host, bin) == 1;
    }
    if (hlen >= sizeof(host))
        return false;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    return inet_pton(AF_INET, host, bin) == 1;
}

static int parse_lease(const json_t *obj, struct kube_json_lease *l, struct kube_json_error *err) {
    const json_t *spec;
    const char *a;
    json_int_t duration = 0, transitions = 0;
    int r;

    if (!json_is_object(obj))
        return fail(err, "(object)", "not an object");
    if ((r = parse_meta(obj, &l->meta, err)) < 0 ||
        (r = get_object(obj, "spec", "spec", false, &spec, err)) < 0)
        return r;
    if (spec && ((r = get_str(spec, "holderIdentity", "spec.holderIdentity", l->holder,
                              sizeof(l->holder), 0, err)) < 0 ||
                 (r = get_int(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", 0,
                              INT32_MAX, false, &duration, err)) < 0 ||
                 (r = get_int(spec, "leaseTransitions", "spec.leaseTransitions", 0, INT32_MAX,
                              false, &transitions, err)) < 0 ||
                 (r = get_str(spec, "acquireTime", "spec.acquireTime", l->acquire_time,
                              sizeof(l->acquire_time), 0, err)) < 0 ||
                 (r = get_str(spec, "renewTime", "spec.renewTime", l->renew_time,
                              sizeof(l->renew_time), 0, err)) < 0))
        return r;
    l->duration_s = duration;
    l->transitions = transitions;
    if ((a = annotation(obj, KUBE_JSON_ANN_PEER_ADDRESS)) && address_ok(a))
        snprintf(l->peer_address, sizeof(l->peer_address), "%s", a);
    l->fenced = (a = annotation(obj, KUBE_JSON_ANN_FENCED)) && !strcmp(a, "true");
    if ((a = annotation(obj, KUBE_JSON_ANN_WATCHDOG_TIMEOUT))) {
        char *end;
        long v;

        errno = 0;
        v = strtol(a, &end, 10);
        if (!errno && end != a && *end == '\0' && v >= 1 && v <= 86400)
            l->watchdog_timeout_s = v;
    }
    if ((a = annotation(obj, KUBE_JSON_ANN_FAILOVER_NODE)) && dns_subdomain(a))
        snprintf(l->failover_node, sizeof(l->failover_node), "%s", a);
    if ((a = annotation(obj, KUBE_JSON_ANN_FAILOVER_PODS))) {
        /* Cut when longer: the entries cut off are never matched, and the
         * slot is then freed by its timeout. */
        size_t len = strlen(a);
        if (len >= sizeof(l->failover_pods))
            len = sizeof(l->failover_pods) - 1;
        memcpy(l->failover_pods, a, len);
        l->failover_pods[len] = '\0';
        text_utf8_trim_tail(l->failover_pods, len);
    }
    return 0;
}

int kube_json_lease_from_json(const json_t *lease, struct kube_json_lease *out,
                              struct kube_json_error *err) {
    struct kube_json_error ignored;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!lease)
        return -EINVAL;
    r = parse_lease(lease, out, err ? err : &ignored);
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int kube_json_lease_parse(const char *text, size_t len, struct kube_json_lease *out,
                          struct kube_json_error *err) {
    struct kube_json_error ignored;
    json_t *root;
    int r;

    if (!out || (!text && len))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!(root = decode(text, len, &r, err ? err : &ignored)))
        return r;
    r = kube_json_lease_from_json(root, out, err);
    json_decref(root);
    return r;
}

/* An RFC 3339 UTC time ("Z") with an optional fraction, as unix
 * microseconds; 0 when it does not parse. */
static int64_t micro_time(const char *s) {
    struct tm tm;
    const char *p;
    long usec = 0;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (!s[0] || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
        return 0;
    if (*p == '.') {
        long scale = 100000;

        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            usec += (*p - '0') * scale;
    }
    if (strcmp(p, "Z") || (t = timegm(&tm)) == (time_t)-1 || t < 0)
        return 0;
    return (int64_t)t * 1000000 + usec;
}

bool kube_json_peers_has(const char *list, const char *peer) {
    size_t n;

    if (!list || !peer || !(n = strlen(peer)))
        return false;
    for (const char *p = list;; p++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len == n && !memcmp(p, peer, n))
            return true;
        if (!end)
            return false;
        p = end;
    }
}

int kube_json_lease_names_peer(const json_t *lease, const char *peer) {
    const char *list;

    if (!lease || !peer || !peer[0])
        return -EINVAL;
    if (!(list = annotation(lease, KUBE_JSON_ANN_PEERS)))
        return -ENOENT;
    return kube_json_peers_has(list, peer) ? 1 : 0;
}

int64_t kube_json_lease_renew_us(const struct kube_json_lease *l) {
    int64_t t;

    if (!l)
        return 0;
    return (t = micro_time(l->renew_time)) ? t : micro_time(l->acquire_time);
}

void kube_json_node_free(struct kube_json_node *node) {
    if (!node)
        return;
    free(node->taints);
    free(node->conditions);
    memset(node, 0, sizeof(*node));
}

int kube_json_status_from_json(const json_t *status, struct kube_json_status *out,
                               struct kube_json_error *err) {
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!status)
        return -EINVAL;
    r = parse_status(status, out, err);
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int kube_json_status_parse(const char *text, size_t len, struct kube_json_status *out,
                           struct kube_json_error *err) {
    json_t *root;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    root = decode(text, len, &r, err);
    if (!root)
        return r;
    r = kube_json_status_from_json(root, out, err);
    json_decref(root);
    return r;
}

const struct kube_json_condition *kube_json_condition_find(const struct kube_json_condition *c,
                                                           size_t n, const char *type) {
    if (!c || !type)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(c[i].type, type))
            return &c[i];
    return NULL;
}

const char *kube_json_event_type_name(enum kube_json_event_type t) {
    switch (t) {
    case KUBE_JSON_ADDED:
        return "ADDED";
    case KUBE_JSON_MODIFIED:
        return "MODIFIED";
    case KUBE_JSON_DELETED:
        return "DELETED";
    case KUBE_JSON_BOOKMARK:
        return "BOOKMARK";
    case KUBE_JSON_ERROR:
        return "ERROR";
    }
    return "invalid";
}

/* ------------------------------------------------------------------------ */
/* Names and label selectors                                                */

static bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label (max 63) or, with dots allowed, subdomain (max 253). */
static bool dns_name(const char *s, size_t len, size_t max, bool dots) {
    if (len == 0 || len > max || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' && dots && s[i + 1] != '.' && s[i + 1] != '-' && s[i - 1] != '-')
            continue;
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    }
    return true;
}

static bool dns_subdomain(const char *s) {
    return s && dns_name(s, strlen(s), 253, true);
}

static bool dns_label(const char *s) {
    return s && dns_name(s, strlen(s), 63, false);
}

/* A label value or a qualified name's name part: [A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])? */
static bool label_word(const char *s, size_t len) {
    if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool qualified_name(const char *s, size_t len) {
    const char *slash = memchr(s, '/', len);

    if (!slash)
        return label_word(s, len);
    return dns_name(s, (size_t)(slash - s), 253, true) &&
           label_word(slash + 1, len - (size_t)(slash - s) - 1);
}

static const char *skip_space(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *trim_end(const char *s, const char *end) {
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

static int sel_fail(struct kube_json_error *err, const char *problem) {
    if (err) {
        err->field = "labelSelector";
        err->problem = problem;
    }
    return -EINVAL;
}

static int parse_term(const char *s, const char *end, struct kube_json_requirement *req,
                      struct kube_json_error *err) {
    const char *op, *key_end, *val;

    s = skip_space(s, end);
    end = trim_end(s, end);
    if (s == end)
        return sel_fail(err, "empty term");
    for (const char *p = s; p < end; p++)
        if (*p == '(' || *p == ')' || *p == '<' || *p == '>')
            return sel_fail(err, "set-based selectors are not supported");
    op = memchr(s, '=', (size_t)(end - s));
    if (!op) {
        bool negated = *s == '!';

        if (negated)
            s = skip_space(s + 1, end);
        if (memchr(s, ' ', (size_t)(end - s)) || memchr(s, '\t', (size_t)(end - s)))
            return sel_fail(err, "set-based selectors are not supported");
        if (!qualified_name(s, (size_t)(end - s)))
            return sel_fail(err, "invalid key");
        req->op = negated ? KUBE_JSON_SEL_NOT_EXISTS : KUBE_JSON_SEL_EXISTS;
        memcpy(req->key, s, (size_t)(end - s));
        req->key[end - s] = '\0';
        return 0;
    }
    key_end = op;
    val = op + 1;
    if (op > s && op[-1] == '!') {
        req->op = KUBE_JSON_SEL_NOT_EQUALS;
        key_end = op - 1;
    } else {
        req->op = KUBE_JSON_SEL_EQUALS;
        if (val < end && *val == '=')
            val++;
    }
    val = skip_space(val, end);
    key_end = trim_end(s, key_end);
    if (!qualified_name(s, (size_t)(key_end - s)))
        return sel_fail(err, "invalid key");
    if (val < end && !label_word(val, (size_t)(end - val)))
        return sel_fail(err, "invalid value");
    memcpy(req->key, s, (size_t)(key_end - s));
    req->key[key_end - s] = '\0';
    memcpy(req->value, val, (size_t)(end - val));
    req->value[end - val] = '\0';
    return 0;
}

int kube_json_selector_parse(const char *text, struct kube_json_selector *out,
                             struct kube_json_error *err) {
    const char *s, *end;
    int r;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!text)
        return -EINVAL;
    end = text + strlen(text);
    if (skip_space(text, end) == end)
        return 0;
    for (s = text;; s++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *term_end = comma ? comma : end;

        if (out->n == KUBE_JSON_MAX_SELECTOR) {
            memset(out, 0, sizeof(*out));
            return sel_fail(err, "too many terms");
        }
        if ((r = parse_term(s, term_end, &out->items[out->n], err)) < 0) {
            memset(out, 0, sizeof(*out));
            return r;
        }
        out->n++;
        if (!comma)
            return 0;
        s = comma;
    }
}

static const char *label_get(const struct kube_json_labels *labels, const char *key) {
    if (!labels)
        return NULL;
    for (size_t i = 0; i < labels->n; i++)
        if (!strcmp(labels->items[i].key, key))
            return labels->items[i].value;
    return NULL;
}

bool kube_json_labels_match(const struct kube_json_labels *labels,
                            const struct kube_json_selector *sel) {
    if (!sel)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const struct kube_json_requirement *req = &sel->items[i];
        const char *v = label_get(labels, req->key);
        bool ok = false;

        switch (req->op) {
        case KUBE_JSON_SEL_EQUALS:
            ok = v && !strcmp(v, req->value);
            break;
        case KUBE_JSON_SEL_NOT_EQUALS:
            ok = !v || strcmp(v, req->value);
            break;
        case KUBE_JSON_SEL_EXISTS:
            ok = v != NULL;
            break;
        case KUBE_JSON_SEL_NOT_EXISTS:
            ok = v == NULL;
            break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* An output buffer that remembers running out of room. */
struct sink {
    char *out;
    size_t size, n;
    bool full;
};

static void put_raw(struct sink *k, const char *s) {
    size_t len = strlen(s);

    if (k->full || k->n + len >= k->size) {
        k->full = true;
        return;
    }
    memcpy(k->out + k->n, s, len + 1);
    k->n += len;
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static void put_enc(struct sink *k, const char *s) {
    static const char hex[] = "0123456789ABCDEF";

    for (; *s && !k->full; s++) {
        unsigned char c = (unsigned char)*s;
        char buf[4];

        if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~') {
            buf[0] = (char)c;
            buf[1] = '\0';
        } else {
            buf[0] = '%';
            buf[1] = hex[c >> 4];
            buf[2] = hex[c & 15];
            buf[3] = '\0';
        }
        put_raw(k, buf);
    }
}

static void put(struct sink *k, const char *s, bool encoded) {
    if (encoded)
        put_enc(k, s);
    else
        put_raw(k, s);
}

static int sink_done(struct sink *k) {
    if (k->full) {
        if (k->size)
            k->out[0] = '\0';
        return -ENOSPC;
    }
    return 0;
}

int kube_json_selector_format(const struct kube_json_selector *sel, bool encoded, char *out,
                              size_t size) {
    struct sink k = {.out = out, .size = size};

    if (!sel || !out || !size)
        return -EINVAL;
    out[0] = '\0';
    for (size_t i = 0; i < sel->n; i++) {
        const struct kube_json_requirement *req = &sel->items[i];

        if (i)
            put(&k, ",", encoded);
        if (req->op == KUBE_JSON_SEL_NOT_EXISTS)
            put(&k, "!", encoded);
        put(&k, req->key, encoded);
        if (req->op == KUBE_JSON_SEL_EQUALS)
            put(&k, "=", encoded);
        else if (req->op == KUBE_JSON_SEL_NOT_EQUALS)
            put(&k, "!=", encoded);
        if (req->op == KUBE_JSON_SEL_EQUALS || req->op == KUBE_JSON_SEL_NOT_EQUALS)
            put(&k, req->value, encoded);
    }
    return sink_done(&k);
}

/* ------------------------------------------------------------------------ */
/* Building                                                                 */

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t need;
        uint32_t cp;

        if (*p < 0x80) {
            p++;
            continue;
        } else if ((*p & 0xE0) == 0xC0) {
            need = 1;
            cp = *p & 0x1F;
        } else if ((*p & 0xF0) == 0xE0) {
            need = 2;
            cp = *p & 0x0F;
        } else if ((*p & 0xF8) == 0xF0) {
            need = 3;
            cp = *p & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= need; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += need + 1;
    }
    return true;
}

/* s cut to size - 1 bytes at a UTF-8 boundary, into buf. */
static const char *cut(const char *s, char *buf, size_t size) {
    size_t len = strnlen(s, size);

    if (len < size)
        return s;
    memcpy(buf, s, size - 1);
    buf[size - 1] = '\0';
    text_utf8_trim_tail(buf, size - 1);
    return buf;
}

/* RFC 3339 in UTC; with microseconds when usec >= 0 (a MicroTime). */
static int format_time(int64_t unix_s, long usec, char out[KUBE_JSON_TIME_SIZE]) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    size_t n;

    if (unix_s < 0 || unix_s > UNIX_MAX_SECONDS || !gmtime_r(&t, &tm))
        return -EINVAL;
    /* Years 1970..9999 keep this within 20 bytes, the fraction within 9. */
    n = strftime(out, KUBE_JSON_TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return -EINVAL;
    if (usec >= 0)
        snprintf(out + n, KUBE_JSON_TIME_SIZE - n, ".%06uZ", (unsigned)(usec % 1000000));
    else
        snprintf(out + n, KUBE_JSON_TIME_SIZE - n, "Z");
    return 0;
}

static int format_micro(int64_t unix_us, char out[KUBE_JSON_TIME_SIZE]) {
    if (unix_us < 0)
        return -EINVAL;
    return format_time(unix_us / 1000000, (long)(unix_us % 1000000), out);
}

/* Dump and release root (stolen); NULL root means allocation failed. */
static int dump(json_t *root, char **out) {
    char *s = root ? json_dumps(root, DUMP_FLAGS) : NULL;

    json_decref(root);
    if (!s)
        return -ENOMEM;
    *out = s;
    return 0;
}

static bool text_ok(const char *s) {
    return s && utf8_valid(s);
}

static int condition_patch(const char *type, enum policy_status status, const char *reason,
                           const char *message, const char *heartbeat, const char *transition,
                           bool probe_null, char **out) {
    char rbuf[KUBE_JSON_REASON_SIZE], mbuf[KUBE_JSON_MESSAGE_SIZE];
    json_t *cond, *root;

    cond = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status",
                     policy_status_name(status), "reason", cut(reason, rbuf, sizeof(rbuf)),
                     "message", cut(message, mbuf, sizeof(mbuf)), "lastTransitionTime", transition);
    if (cond && heartbeat && json_object_set_new(cond, "lastHeartbeatTime", json_string(heartbeat)))
        goto fail;
    if (cond && probe_null && json_object_set_new(cond, "lastProbeTime", json_null()))
        goto fail;
    root = cond ? json_pack("{s:{s:[o]}}", "status", "conditions", cond) : NULL;
    return dump(root, out);
fail:
    json_decref(cond);
    return -ENOMEM;
}

int kube_json_pod_ready_patch(enum policy_status status, const char *reason, const char *message,
                              int64_t transition_unix, char **out) {
    char transition[KUBE_JSON_TIME_SIZE];

    if (!out || (status != POLICY_STATUS_TRUE && status != POLICY_STATUS_FALSE) ||
        !text_ok(reason) || !text_ok(message) || format_time(transition_unix, -1, transition))
        return -EINVAL;
    return condition_patch(POLICY_POD_CONDITION, status, reason, message, NULL, transition, true,
                           out);
}

int kube_json_node_condition_patch(enum policy_status status, const char *reason,
                                   const char *message, int64_t heartbeat_unix,
                                   int64_t transition_unix, char **out) {
    char heartbeat[KUBE_JSON_TIME_SIZE], transition[KUBE_JSON_TIME_SIZE];

    if (!out || (status != POLICY_STATUS_TRUE && status != POLICY_STATUS_FALSE) ||
        !text_ok(reason) || !text_ok(message) || format_time(heartbeat_unix, -1, heartbeat) ||
        format_time(transition_unix, -1, transition))
        return -EINVAL;
    return condition_patch(POLICY_NODE_CONDITION, status, reason, message, heartbeat, transition,
                           false, out);
}

static bool taint_equal(const struct kube_json_taint *a, const struct kube_json_taint *b) {
    return !strcmp(a->key, b->key) && !strcmp(a->value, b->value) &&
           !strcmp(a->effect, b->effect) && !strcmp(a->time_added, b->time_added);
}

/* The list with every taint of key replaced by one (at the place of the
 * first, appended when there was none) or, with one NULL, removed; the other
 * taints kept exactly and in order. *changed: the list differs. */
static int splice_taints(const struct kube_json_taint *current, size_t n, const char *key,
                         const struct kube_json_taint *one, struct kube_json_taint *out, size_t cap,
                         size_t *n_out, bool *changed) {
    bool placed = false;
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(current[i].key, key)) {
            if (m == cap)
                return -ENOBUFS;
            out[m++] = current[i];
        } else if (one && !placed) {
            if (m == cap)
                return -ENOBUFS;
            out[m++] = *one;
            placed = true;
        }
    }
    if (one && !placed) {
        if (m == cap)
            return -ENOBUFS;
        out[m++] = *one;
    }
    *n_out = m;
    *changed = m != n;
    for (size_t i = 0; i < m && !*changed; i++)
        *changed = !taint_equal(&out[i], &current[i]);
    return 0;
}

int kube_json_taints_edit(const struct kube_json_taint *current, size_t n,
                          enum policy_taint desired, int64_t now_unix, struct kube_json_taint *out,
                          size_t cap, size_t *n_out, bool *changed) {
    const char *effect = desired == POLICY_TAINT_NOEXECUTE    ? "NoExecute"
                         : desired == POLICY_TAINT_NOSCHEDULE ? "NoSchedule"
                                                              : NULL;
    struct kube_json_taint ours;

    if ((!current && n) || !out || !n_out || !changed || n > KUBE_JSON_MAX_ENTRIES ||
        (desired != POLICY_TAINT_NONE && !effect))
        return -EINVAL;
    /* The taint of ours to write: one already there with the desired effect
     * as it is, else a new one. */
    memset(&ours, 0, sizeof(ours));
    if (effect) {
        size_t i;

        for (i = 0; i < n; i++)
            if (!strcmp(current[i].key, POLICY_TAINT_KEY) && !strcmp(current[i].effect, effect))
                break;
        if (i < n) {
            ours = current[i];
        } else {
            snprintf(ours.key, sizeof(ours.key), "%s", POLICY_TAINT_KEY);
            snprintf(ours.effect, sizeof(ours.effect), "%s", effect);
            if (desired == POLICY_TAINT_NOEXECUTE && format_time(now_unix, -1, ours.time_added) < 0)
                return -EINVAL;
        }
    }
    return splice_taints(current, n, POLICY_TAINT_KEY, effect ? &ours : NULL, out, cap, n_out,
                         changed);
}

static bool taint_ok(const struct kube_json_taint *t) {
    /* The fixed arrays must be terminated: a struct from elsewhere may not be. */
    return t->key[0] && memchr(t->key, '\0', sizeof(t->key)) && t->effect[0] &&
           memchr(t->effect, '\0', sizeof(t->effect)) && memchr(t->value, '\0', sizeof(t->value)) &&
           memchr(t->time_added, '\0', sizeof(t->time_added)) && utf8_valid(t->key) &&
           utf8_valid(t->value) && utf8_valid(t->effect) && utf8_valid(t->time_added);
}

int kube_json_taints_patch(const struct kube_json_taint *taints, size_t n,
                           const char *resource_version, char **out) {
    json_t *list, *root;

    if ((!taints && n) || !out || !resource_version || !resource_version[0] ||
        !utf8_valid(resource_version) || n > KUBE_JSON_MAX_ENTRIES + 1)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!taint_ok(&taints[i]))
            return -EINVAL;
    list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        const struct kube_json_taint *t = &taints[i];
        json_t *o = json_pack("{s:s, s:s}", "key", t->key, "effect", t->effect);

        if (o && t->value[0] && json_object_set_new(o, "value", json_string(t->value)))
            json_decref(o), o = NULL;
        if (o && t->time_added[0] &&
            json_object_set_new(o, "timeAdded", json_string(t->time_added)))
            json_decref(o), o = NULL;
        if (!o || json_array_append_new(list, o)) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    root = list ? json_pack("{s:{s:s}, s:{s:o}}", "metadata", "resourceVersion", resource_version,
                            "spec", "taints", list)
                : NULL;
    return dump(root, out);
}

const char *kube_json_event_namespace(const struct kube_json_event *ev) {
    if (!ev || !ev->regarding.namespace || !ev->regarding.namespace[0])
        return "default";
    return ev->regarding.namespace;
}

/* Fits "edgewarden-<node>" within n bytes (the API's limit on the result). */
static bool instance_fits(const char *node, size_t n) {
    return strlen(KUBE_JSON_INSTANCE_PREFIX) + strlen(node) <= n;
}

static bool short_text(const char *s, size_t max) {
    return s && s[0] && strlen(s) <= max && utf8_valid(s);
}

int kube_json_event_body(const struct kube_json_event *ev, char **out) {
    char time_s[KUBE_JSON_TIME_SIZE], note[KUBE_JSON_NOTE_MAX_BYTES + 1];
    char instance[KUBE_JSON_NAME_SIZE], generate[KUBE_JSON_NAME_SIZE + 1];
    const struct kube_json_object_ref *ref;
    json_t *regarding, *root;

    if (!ev || !out)
        return -EINVAL;
    ref = &ev->regarding;
    if (!dns_subdomain(ev->node) || !instance_fits(ev->node, 128) || !short_text(ev->action, 128) ||
        !short_text(ev->reason, 128) || !text_ok(ev->note) ||
        (ev->type != POLICY_EVENT_NORMAL && ev->type != POLICY_EVENT_WARNING) ||
        !short_text(ref->api_version, 253) || !short_text(ref->kind, 63) ||
        !dns_subdomain(ref->name) ||
        (ref->namespace && ref->namespace[0] && !dns_label(ref->namespace)) ||
        (ref->uid && !utf8_valid(ref->uid)) ||
        (ref->uid && strlen(ref->uid) >= KUBE_JSON_UID_SIZE) ||
        format_micro(ev->event_time_us, time_s))
        return -EINVAL;
    snprintf(instance, sizeof(instance), "%s%s", KUBE_JSON_INSTANCE_PREFIX, ev->node);
    snprintf(generate, sizeof(generate), "%s-", instance);
    regarding = json_pack("{s:s, s:s, s:s}", "apiVersion", ref->api_version, "kind", ref->kind,
                          "name", ref->name);
    if (regarding && ref->namespace && ref->namespace[0] &&
        json_object_set_new(regarding, "namespace", json_string(ref->namespace)))
        json_decref(regarding), regarding = NULL;
    if (regarding && ref->uid && ref->uid[0] &&
        json_object_set_new(regarding, "uid", json_string(ref->uid)))
        json_decref(regarding), regarding = NULL;
    root =
        regarding
            ? json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}",
                        "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata",
                        "generateName", generate, "namespace", kube_json_event_namespace(ev),
                        "eventTime", time_s, "reportingController", KUBE_JSON_REPORTING_CONTROLLER,
                        "reportingInstance", instance, "action", ev->action, "reason", ev->reason,
                        "regarding", regarding, "note", cut(ev->note, note, sizeof(note)), "type",
                        policy_event_type_name(ev->type))
            : NULL;
    return dump(root, out);
}

int kube_json_lease_write_body(const struct kube_json_lease_write *w, char **out) {
    char acquire[KUBE_JSON_TIME_SIZE], renew[KUBE_JSON_TIME_SIZE];
    json_t *root, *md, *spec, *ann = NULL;

    if (!w || !out || !dns_label(w->namespace) || !dns_subdomain(w->name) ||
        (w->holder && w->holder[0] && !short_text(w->holder, 253)) || w->duration_s <= 0 ||
        format_micro(w->acquire_time_us, acquire) || format_micro(w->renew_time_us, renew) ||
        (w->resource_version && !short_text(w->resource_version, KUBE_JSON_RV_SIZE - 1)) ||
        (w->label && (!w->label[0] || !label_word(w->label, strlen(w->label)))) ||
        (w->n_annotations && !w->annotations))
        return -EINVAL;
    for (size_t i = 0; i < w->n_annotations; i++)
        if (!w->annotations[i].key ||
            !qualified_name(w->annotations[i].key, strlen(w->annotations[i].key)) ||
            !w->annotations[i].value ||
            strlen(w->annotations[i].value) > KUBE_JSON_ANNOTATION_MAX_BYTES ||
            !utf8_valid(w->annotations[i].value))
            return -EINVAL;
    md = json_pack("{s:s, s:s}", "name", w->name, "namespace", w->namespace);
    spec = json_pack("{s:i, s:s, s:s}", "leaseDurationSeconds", w->duration_s, "acquireTime",
                     acquire, "renewTime", renew);
    root = json_object();
    if (md && w->resource_version &&
        json_object_set_new(md, "resourceVersion", json_string(w->resource_version)))
        goto nomem;
    if (md && w->label &&
        json_object_set_new(md, "labels", json_pack("{s:s}", KUBE_JSON_LEASE_LABEL, w->label)))
        goto nomem;
    if (w->n_annotations) {
        if (!(ann = json_object()))
            goto nomem;
        for (size_t i = 0; i < w->n_annotations; i++)
            if (json_object_set_new(ann, w->annotations[i].key,
                                    json_string(w->annotations[i].value)))
                goto nomem;
        if (!md)
            goto nomem;
        /* set_new takes ann whether it succeeds or not. */
        json_t *taken = ann;
        ann = NULL;
        if (json_object_set_new(md, "annotations", taken))
            goto nomem;
    }
    if (spec && w->holder && w->holder[0] &&
        json_object_set_new(spec, "holderIdentity", json_string(w->holder)))
        goto nomem;
    if (spec && w->transitions >= 0 &&
        json_object_set_new(spec, "leaseTransitions", json_integer(w->transitions)))
        goto nomem;
    if (!md || !spec || !root ||
        json_object_set_new(root, "apiVersion", json_string("coordination.k8s.io/v1")) ||
        json_object_set_new(root, "kind", json_string("Lease")))
        goto nomem;
    /* Both taken, whatever happens. */
    int bad = json_object_set_new(root, "metadata", md);
    bad |= json_object_set_new(root, "spec", spec);
    md = spec = NULL;
    if (bad)
        goto nomem;
    return dump(root, out);
nomem:
    json_decref(ann);
    json_decref(md);
    json_decref(spec);
    json_decref(root);
    return -ENOMEM;
}

int kube_json_pod_force_delete_body(const char *uid, char **out) {
    if (!out || !uid || !uid[0] || !short_text(uid, KUBE_JSON_UID_SIZE - 1))
        return -EINVAL;
    return dump(json_pack("{s:s, s:s, s:i, s:{s:s}}", "apiVersion", "v1", "kind", "DeleteOptions",
                          "gracePeriodSeconds", 0, "preconditions", "uid", uid),
                out);
}

int kube_json_taint_set(const struct kube_json_taint *current, size_t n, const char *key,
                        const char *value, const char *effect, bool present, int64_t now_unix,
                        struct kube_json_taint *out, size_t cap, size_t *n_out, bool *changed) {
    struct kube_json_taint want;

    if ((!current && n) || !out || !n_out || !changed || n > KUBE_JSON_MAX_ENTRIES || !key ||
        !qualified_name(key, strlen(key)) || !value || strlen(value) >= sizeof(want.value) ||
        !effect || !effect[0] || strlen(effect) >= sizeof(want.effect))
        return -EINVAL;
    memset(&want, 0, sizeof(want));
    snprintf(want.key, sizeof(want.key), "%s", key);
    snprintf(want.value, sizeof(want.value), "%s", value);
    snprintf(want.effect, sizeof(want.effect), "%s", effect);
    bool kept = false;
    for (size_t i = 0; present && i < n; i++)
        if (!strcmp(current[i].key, key) && !strcmp(current[i].value, value) &&
            !strcmp(current[i].effect, effect)) {
            want = current[i];
            kept = true;
            break;
        }
    /* A new taint gets its timeAdded; one kept stays exactly as it is. */
    if (present && !kept && format_time(now_unix, -1, want.time_added) < 0)
        return -EINVAL;
    return splice_taints(current, n, key, present ? &want : NULL, out, cap, n_out, changed);
}

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

/* The query parameters; the first gets sep ('?' or '&'), the others '&'. */
static int put_query_sep(struct sink *k, const struct kube_json_query *q, char sep) {
    char num[24];
    const char *first = sep == '?' ? "?" : "&";

    if (!q)
        return 0;
    if (q->watch && ((q->continue_token && q->continue_token[0]) || q->limit))
        return -EINVAL;
    if (q->limit) {
        snprintf(num, sizeof(num), "%u", q->limit);
        put_raw(k, first);
        put_raw(k, "limit=");
        put_raw(k, num);
        first = "&";
    }
    if (q->continue_token && q->continue_token[0]) {
        put_raw(k, first);
        put_raw(k, "continue=");
        put_enc(k, q->continue_token);
        first = "&";
    }
    if (q->watch) {
        put_raw(k, first);
        put_raw(k, "watch=1&allowWatchBookmarks=true");
        first = "&";
    }
    if (q->resource_version && q->resource_version[0]) {
        put_raw(k, first);
        put_raw(k, "resourceVersion=");
        put_enc(k, q->resource_version);
        first = "&";
    }
    if (q->timeout_seconds) {
        snprintf(num, sizeof(num), "%u", q->timeout_seconds);
        put_raw(k, first);
        put_raw(k, "timeoutSeconds=");
        put_raw(k, num);
    }
    return 0;
}

static int put_query(struct sink *k, const struct kube_json_query *q) {
    return put_query_sep(k, q, '&');
}

static int url_start(struct sink *k, char *out, size_t size) {
    if (!out || !size)
        return -EINVAL;
    *k = (struct sink){.out = out, .size = size};
    out[0] = '\0';
    return 0;
}

int kube_json_url_pods(char *out, size_t size, const char *node,
                       const struct kube_json_selector *selector, const struct kube_json_query *q) {
    char sel[KUBE_JSON_URL_SIZE];
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_subdomain(node))
        return -EINVAL;
    put_raw(&k, "/api/v1/pods?fieldSelector=");
    put_enc(&k, "spec.nodeName=");
    put_enc(&k, node);
    if (selector && selector->n) {
        if (kube_json_selector_format(selector, true, sel, sizeof(sel)) < 0)
            return -ENOSPC;
        put_raw(&k, "&labelSelector=");
        put_raw(&k, sel);
    }
    if ((r = put_query(&k, q)) < 0) {
        out[0] = '\0';
        return r;
    }
    return sink_done(&k);
}

int kube_json_url_own_node(char *out, size_t size, const char *node,
                           const struct kube_json_query *q) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_subdomain(node))
        return -EINVAL;
    put_raw(&k, "/api/v1/nodes?fieldSelector=");
    put_enc(&k, "metadata.name=");
    put_enc(&k, node);
    if ((r = put_query(&k, q)) < 0) {
        out[0] = '\0';
        return r;
    }
    return sink_done(&k);
}

static int url_node(char *out, size_t size, const char *node, const char *tail) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_subdomain(node))
        return -EINVAL;
    put_raw(&k, "/api/v1/nodes/");
    put_enc(&k, node);
    put_raw(&k, tail);
    return sink_done(&k);
}

int kube_json_url_node(char *out, size_t size, const char *node) {
    return url_node(out, size, node, "");
}

int kube_json_url_node_status(char *out, size_t size, const char *node) {
    return url_node(out, size, node, "/status");
}

int kube_json_url_pod_status(char *out, size_t size, const char *namespace, const char *pod) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_label(namespace) || !dns_subdomain(pod))
        return -EINVAL;
    put_raw(&k, "/api/v1/namespaces/");
    put_enc(&k, namespace);
    put_raw(&k, "/pods/");
    put_enc(&k, pod);
    put_raw(&k, "/status");
    return sink_done(&k);
}

int kube_json_url_events(char *out, size_t size, const char *namespace) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_label(namespace))
        return -EINVAL;
    put_raw(&k, "/apis/events.k8s.io/v1/namespaces/");
    put_enc(&k, namespace);
    put_raw(&k, "/events");
    return sink_done(&k);
}

int kube_json_url_lease(char *out, size_t size, const char *namespace, const char *node) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_label(namespace) || (node && (!dns_subdomain(node) || !instance_fits(node, 253))))
        return -EINVAL;
    put_raw(&k, "/apis/coordination.k8s.io/v1/namespaces/");
    put_enc(&k, namespace);
    put_raw(&k, "/leases");
    if (node) {
        put_raw(&k, "/" KUBE_JSON_INSTANCE_PREFIX);
        put_enc(&k, node);
    }
    return sink_done(&k);
}

int kube_json_url_leases(char *out, size_t size, const char *namespace, const char *name,
                         const struct kube_json_selector *selector,
                         const struct kube_json_query *q) {
    char sel[KUBE_JSON_URL_SIZE];
    struct sink k;
    char sep = '?';
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_label(namespace) || (name && !dns_subdomain(name)) || (name && (selector || q)))
        return -EINVAL;
    put_raw(&k, "/apis/coordination.k8s.io/v1/namespaces/");
    put_enc(&k, namespace);
    put_raw(&k, "/leases");
    if (name) {
        put_raw(&k, "/");
        put_enc(&k, name);
    }
    if (selector && selector->n) {
        if (kube_json_selector_format(selector, true, sel, sizeof(sel)) < 0)
            return -ENOSPC;
        put_raw(&k, "?labelSelector=");
        put_raw(&k, sel);
        sep = '&';
    }
    if ((r = put_query_sep(&k, q, sep)) < 0) {
        out[0] = '\0';
        return r;
    }
    return sink_done(&k);
}

int kube_json_url_nodes(char *out, size_t size, const struct kube_json_query *q) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    put_raw(&k, "/api/v1/nodes");
    if ((r = put_query_sep(&k, q, '?')) < 0) {
        out[0] = '\0';
        return r;
    }
    return sink_done(&k);
}

int kube_json_url_pods_all(char *out, size_t size, const struct kube_json_selector *selector,
                           const struct kube_json_query *q) {
    char sel[KUBE_JSON_URL_SIZE];
    struct sink k;
    char sep = '?';
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    put_raw(&k, "/api/v1/pods");
    if (selector && selector->n) {
        if (kube_json_selector_format(selector, true, sel, sizeof(sel)) < 0)
            return -ENOSPC;
        put_raw(&k, "?labelSelector=");
        put_raw(&k, sel);
        sep = '&';
    }
    if ((r = put_query_sep(&k, q, sep)) < 0) {
        out[0] = '\0';
        return r;
    }
    return sink_done(&k);
}

int kube_json_url_pod(char *out, size_t size, const char *namespace, const char *pod) {
    struct sink k;
    int r;

    if ((r = url_start(&k, out, size)) < 0)
        return r;
    if (!dns_label(namespace) || !dns_subdomain(pod))
        return -EINVAL;
    put_raw(&k, "/api/v1/namespaces/");
    put_enc(&k, namespace);
    put_raw(&k, "/pods/");
    put_enc(&k, pod);
    return sink_done(&k);
}
