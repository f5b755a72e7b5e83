/*
 * libFuzzer target for the Kubernetes JSON codec: the same bytes are read as
 * a watch event line, a list, a Node, a Pod and a Status, and as a label
 * selector. Whatever parses is used the way the reporter would: a watch
 * event's object and a list's items are parsed as Pods and Nodes, a Node's
 * taints go through the taint edit with an effect taken from the input and
 * the result is written as a merge patch, twice, to check that the second
 * edit reports no change; the out-of-service edit (kube_json_taint_set) runs
 * on the same taints, on or off by the input, also twice. The bytes are read
 * as a Lease too: its renew time is computed, and a Lease that parses is
 * written back with kube_json_lease_write_body() and must read back the same.
 * Every outcome must be consistent (a failure leaves nothing allocated and
 * says why; a success has the fields its contract promises) and everything
 * is freed. The input is copied into its own allocation so ASan catches a
 * read past its end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int r, const struct kube_json_error *err) {
    if (r == -EBADMSG && (!err->field || !err->problem))
        abort();
    if (r != 0 && r != -EBADMSG && r != -ENOMEM)
        abort();
}

static void taints_round_trip(const struct kube_json_node *n, unsigned pick) {
    static const enum policy_taint effects[] = {POLICY_TAINT_NONE, POLICY_TAINT_NOSCHEDULE,
                                                POLICY_TAINT_NOEXECUTE};
    enum policy_taint desired = effects[pick % 3];
    struct kube_json_taint *out = calloc(n->n_taints + 1, sizeof(*out));
    struct kube_json_taint *again = calloc(n->n_taints + 1, sizeof(*again));
    size_t n_out = 0, n_again = 0, ours = 0;
    bool changed, changed_again;
    char *patch = NULL;
    int r;

    if (!out || !again)
        goto done;
    r = kube_json_taints_edit(n->taints, n->n_taints, desired, 1714644000, out, n->n_taints + 1,
                              &n_out, &changed);
    if (r < 0)
        abort();
    for (size_t i = 0; i < n_out; i++)
        ours += !strcmp(out[i].key, POLICY_TAINT_KEY);
    if (ours != (desired != POLICY_TAINT_NONE))
        abort();
    if (n_out + ours < n->n_taints && !changed)
        abort();
    r = kube_json_taints_edit(out, n_out, desired, 1714644001, again, n_out + 1, &n_again,
                              &changed_again);
    if (r < 0 || changed_again || n_again != n_out)
        abort();
    r = kube_json_taints_patch(out, n_out, "1", &patch);
    if (r != 0 && r != -ENOMEM) {
        /* Only a string the parser accepted but the builder refuses: never. */
        abort();
    }
    free(patch);
done:
    free(out);
    free(again);
}

#define OUT_OF_SERVICE "node.kubernetes.io/out-of-service"

/* The remediator's edit: out-of-service on (or off), then the same again,
 * which must find nothing to do. */
static void out_of_service_round_trip(const struct kube_json_node *n, bool present) {
    struct kube_json_taint *out = calloc(n->n_taints + 1, sizeof(*out));
    struct kube_json_taint *again = calloc(n->n_taints + 1, sizeof(*again));
    size_t n_out = 0, n_again = 0, ours = 0, ours_before = 0;
    bool changed, changed_again;
    char *patch = NULL;
    int r;

    if (!out || !again)
        goto done;
    r = kube_json_taint_set(n->taints, n->n_taints, OUT_OF_SERVICE, "nodeshutdown", "NoExecute",
                            present, 1714644000, out, n->n_taints + 1, &n_out, &changed);
    if (r < 0)
        abort();
    for (size_t i = 0; i < n->n_taints; i++)
        ours_before += !strcmp(n->taints[i].key, OUT_OF_SERVICE);
    for (size_t i = 0; i < n_out; i++)
        ours += !strcmp(out[i].key, OUT_OF_SERVICE);
    /* Exactly one of ours, or none; every foreign taint kept. */
    if (ours != (size_t)present || n_out - ours != n->n_taints - ours_before)
        abort();
    if ((n_out != n->n_taints || ours_before != ours) && !changed)
        abort();
    r = kube_json_taint_set(out, n_out, OUT_OF_SERVICE, "nodeshutdown", "NoExecute", present,
                            1714644001, again, n_out + 1, &n_again, &changed_again);
    if (r < 0 || changed_again || n_again != n_out)
        abort();
    r = kube_json_taints_patch(out, n_out, "1", &patch);
    if (r != 0 && r != -ENOMEM)
        abort();
    free(patch);
done:
    free(out);
    free(again);
}

/* A Lease that parses, written back the way edgewarden writes one, reads
 * back the same. The builder may refuse what the parser accepts (a name or
 * namespace the API would not have, a duration of 0): only then is there
 * nothing to compare. */
static void lease_round_trip(const struct kube_json_lease *l) {
    struct kube_json_annotation ann[5];
    struct kube_json_lease back;
    char watchdog[24], *body = NULL;
    size_t n = 0;
    int64_t renew_us = kube_json_lease_renew_us(l);
    int r;

    if (l->peer_address[0])
        ann[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_PEER_ADDRESS, l->peer_address};
    ann[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_FENCED, l->fenced ? "true" : "false"};
    if (l->watchdog_timeout_s) {
        snprintf(watchdog, sizeof(watchdog), "%lld", (long long)l->watchdog_timeout_s);
        ann[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_WATCHDOG_TIMEOUT, watchdog};
    }
    if (l->failover_node[0])
        ann[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_FAILOVER_NODE, l->failover_node};
    if (l->failover_pods[0])
        ann[n++] = (struct kube_json_annotation){KUBE_JSON_ANN_FAILOVER_PODS, l->failover_pods};
    struct kube_json_lease_write w = {
        .namespace = l->meta.namespace[0] ? l->meta.namespace : "edgewarden",
        .name = l->meta.name,
        .holder = l->holder[0] ? l->holder : NULL,
        .duration_s = (int)l->duration_s,
        .acquire_time_us = renew_us,
        .renew_time_us = renew_us,
        .transitions = (int)l->transitions,
        .resource_version = l->meta.resource_version[0] ? l->meta.resource_version : NULL,
        .label = "heartbeat",
        .annotations = ann,
        .n_annotations = n,
    };

    r = kube_json_lease_write_body(&w, &body);
    if (r == -EINVAL || r == -ENOMEM)
        return;
    if (r != 0 || kube_json_lease_parse(body, strlen(body), &back, NULL) != 0)
        abort();
    free(body);
    if (strcmp(back.meta.name, l->meta.name) || strcmp(back.holder, l->holder) ||
        back.duration_s != l->duration_s || back.transitions != l->transitions ||
        strcmp(back.peer_address, l->peer_address) || back.fenced != l->fenced ||
        back.watchdog_timeout_s != l->watchdog_timeout_s ||
        strcmp(back.failover_node, l->failover_node) ||
        strcmp(back.failover_pods, l->failover_pods) || kube_json_lease_renew_us(&back) != renew_us)
        abort();
}

static void check_lease(int r, const struct kube_json_lease *l, const struct kube_json_error *err) {
    check_error(r, err);
    if (r < 0) {
        if (l->meta.name[0] || l->holder[0])
            abort();
        return;
    }
    if (!l->meta.name[0] || l->duration_s < 0 || l->duration_s > INT32_MAX || l->transitions < 0 ||
        l->transitions > INT32_MAX || l->watchdog_timeout_s < 0 || l->watchdog_timeout_s > 86400 ||
        kube_json_lease_renew_us(l) < 0)
        abort();
    if (l->peer_address[0] && !strrchr(l->peer_address, ':'))
        abort();
    lease_round_trip(l);
}

/* edgewarden.io/peers: every item of the list is named, a name with a
 * comma never is, and an absent list is -ENOENT. */
static void check_names_peer(const json_t *obj) {
    const json_t *md = json_is_object(obj) ? json_object_get(obj, "metadata") : NULL;
    const json_t *ann = json_is_object(md) ? json_object_get(md, "annotations") : NULL;
    const json_t *v = json_is_object(ann) ? json_object_get(ann, KUBE_JSON_ANN_PEERS) : NULL;
    const char *list = json_is_string(v) ? json_string_value(v) : NULL;
    int r = kube_json_lease_names_peer(obj, "node-a");

    if (list ? r != 0 && r != 1 : r != (obj ? -ENOENT : -EINVAL))
        abort();
    if (!list || kube_json_lease_names_peer(obj, "node-a,node-b") != 0)
        return;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len && len < 256) {
            char *name = strndup(p, len);
            if (name && kube_json_lease_names_peer(obj, name) != 1)
                abort();
            free(name);
        }
        p += len;
        if (*p)
            p++;
    }
}

static void as_lease(const json_t *obj) {
    struct kube_json_lease l;
    struct kube_json_error err = {0};

    check_lease(kube_json_lease_from_json(obj, &l, &err), &l, &err);
    check_names_peer(obj);
}

static void as_pod(const json_t *obj) {
    struct kube_json_pod p;
    struct kube_json_error err = {0};
    int r = kube_json_pod_from_json(obj, &p, &err);

    check_error(r, &err);
    if (r == 0 && (!p.meta.name[0] || p.labels.n > KUBE_JSON_MAX_ENTRIES))
        abort();
    if (r < 0 && (p.labels.items || p.conditions))
        abort();
    kube_json_pod_free(&p);
}

static void as_node(const json_t *obj, unsigned pick) {
    struct kube_json_node n;
    struct kube_json_error err = {0};
    int r = kube_json_node_from_json(obj, &n, &err);

    check_error(r, &err);
    if (r == 0) {
        if (!n.meta.name[0] || n.n_taints > KUBE_JSON_MAX_ENTRIES)
            abort();
        taints_round_trip(&n, pick);
        out_of_service_round_trip(&n, pick & 1);
    } else if (n.taints || n.conditions) {
        abort();
    }
    kube_json_node_free(&n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1);
    unsigned pick = size ? data[size - 1] : 0;
    struct kube_json_error err = {0};
    struct kube_json_watch_event ev;
    struct kube_json_list list;
    struct kube_json_status st;
    struct kube_json_pod p;
    struct kube_json_node n;
    struct kube_json_lease lease;
    int r;

    if (!text)
        return 0;
    memcpy(text, data, size);

    r = kube_json_watch_event_parse(text, size, &ev, &err);
    check_error(r, &err);
    if (r == 0) {
        if (!ev.object || (ev.type == KUBE_JSON_BOOKMARK && !ev.resource_version[0]) ||
            (ev.relist && ev.status.code != 410))
            abort();
        as_pod(ev.object);
        as_node(ev.object, pick);
        as_lease(ev.object);
    } else if (ev.object) {
        abort();
    }
    kube_json_watch_event_free(&ev);

    r = kube_json_list_parse(text, size, &list, &err);
    check_error(r, &err);
    if (r == 0) {
        for (size_t i = 0; i < list.n_items && i < 16; i++) {
            as_pod(json_array_get(list.items, i));
            as_node(json_array_get(list.items, i), pick + (unsigned)i);
            as_lease(json_array_get(list.items, i));
        }
    } else if (list.root) {
        abort();
    }
    kube_json_list_free(&list);

    r = kube_json_node_parse(text, size, &n, &err);
    check_error(r, &err);
    if (r == 0) {
        taints_round_trip(&n, pick >> 2);
        out_of_service_round_trip(&n, true);
        out_of_service_round_trip(&n, false);
    }
    kube_json_node_free(&n);

    r = kube_json_pod_parse(text, size, &p, &err);
    check_error(r, &err);
    kube_json_pod_free(&p);

    r = kube_json_lease_parse(text, size, &lease, &err);
    check_lease(r, &lease, &err);

    r = kube_json_status_parse(text, size, &st, &err);
    check_error(r, &err);
    if (r == 0 && (st.code < 0 || st.code > 999 || st.retry_after_seconds < 0))
        abort();

    /* The same bytes as a selector (up to the first NUL), formatted back,
     * parsed again and applied to no labels. */
    {
        char *sel_text = strndup(text, size > 4096 ? 4096 : size);
        struct kube_json_selector sel, again;
        char canonical[KUBE_JSON_URL_SIZE * 4];

        if (sel_text && kube_json_selector_parse(sel_text, &sel, &err) == 0) {
            if (kube_json_selector_format(&sel, false, canonical, sizeof(canonical)) != 0)
                abort();
            if (kube_json_selector_parse(canonical, &again, &err) != 0 || again.n != sel.n)
                abort();
            (void)kube_json_labels_match(NULL, &sel);
        }
        free(sel_text);
    }
    free(text);
    return 0;
}
