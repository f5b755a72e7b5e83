/*
 * Tests for agent/kube_json.c. Every builder is checked byte for byte against
 * a golden string; docs/kubernetes-api.md quotes the same strings, so a
 * change here is a change to the wire and to the docs. The fixtures in
 * tests/fixtures/kube are real API objects (a Node with kubelet conditions
 * and foreign taints, a Pod with readiness gates, a watch stream, Statuses)
 * and are parsed field by field. Hostile inputs come from a table: each names
 * the field and the problem the parser must report. The taint edit has its
 * own table, one row per case the reporter meets.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_json.h"

#define KUBE_DIR FIXTURES "/kube"

/* 2024-05-02T10:00:00Z */
#define T0 INT64_C(1714644000)

static char *slurp(const char *name, size_t *len) {
    char path[512];
    FILE *f;
    char *buf;
    long size;

    snprintf(path, sizeof(path), "%s/%s", KUBE_DIR, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static char *repeat(char c, size_t n, const char *tail) {
    char *s = malloc(n + strlen(tail) + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    strcpy(s + n, tail);
    return s;
}

#define ASSERT_BUILT(call, golden)                                                                 \
    do {                                                                                           \
        char *out_ = NULL;                                                                         \
        ck_assert_int_eq((call), 0);                                                               \
        ck_assert_str_eq(out_, golden);                                                            \
        free(out_);                                                                                \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Builders: golden output                                                  */

START_TEST(test_pod_ready_patch) {
    ASSERT_BUILT(kube_json_pod_ready_patch(POLICY_STATUS_FALSE, "EngineExited",
                                           "sqlservr exited with status 1", T0, &out_),
                 "{\"status\":{\"conditions\":[{\"lastProbeTime\":null,\"lastTransitionTime\":"
                 "\"2024-05-02T10:00:00Z\",\"message\":\"sqlservr exited with status 1\","
                 "\"reason\":\"EngineExited\",\"status\":\"False\",\"type\":"
                 "\"edgewarden.io/sqledge-ready\"}]}}");
    ASSERT_BUILT(
        kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "Healthy", "all probes pass", T0, &out_),
        "{\"status\":{\"conditions\":[{\"lastProbeTime\":null,\"lastTransitionTime\":"
        "\"2024-05-02T10:00:00Z\",\"message\":\"all probes pass\",\"reason\":"
        "\"Healthy\",\"status\":\"True\",\"type\":\"edgewarden.io/sqledge-ready\"}]}}");
    /* Quotes and control characters are JSON-escaped, not dropped. */
    ASSERT_BUILT(kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "Healthy", "a \"b\"\n", 0, &out_),
                 "{\"status\":{\"conditions\":[{\"lastProbeTime\":null,\"lastTransitionTime\":"
                 "\"1970-01-01T00:00:00Z\",\"message\":\"a \\\"b\\\"\\n\",\"reason\":"
                 "\"Healthy\",\"status\":\"True\",\"type\":\"edgewarden.io/sqledge-ready\"}]}}");
}
END_TEST

START_TEST(test_node_condition_patch) {
    ASSERT_BUILT(kube_json_node_condition_patch(POLICY_STATUS_TRUE, "EngineExited",
                                                "sqlservr exited with status 1", T0 + 62, T0 - 30,
                                                &out_),
                 "{\"status\":{\"conditions\":[{\"lastHeartbeatTime\":\"2024-05-02T10:01:02Z\","
                 "\"lastTransitionTime\":\"2024-05-02T09:59:30Z\",\"message\":"
                 "\"sqlservr exited with status 1\",\"reason\":\"EngineExited\",\"status\":"
                 "\"True\",\"type\":\"SQLEdgeUnhealthy\"}]}}");
}
END_TEST

START_TEST(test_condition_patch_args) {
    char *out = (char *)"untouched";
    char *long_reason = repeat('a', 127, "\xc3\xa9tail"); /* é straddles the cut */
    char *long_message = repeat('m', 300, "");
    char *expect;

    ck_assert_int_eq(kube_json_pod_ready_patch(POLICY_STATUS_UNSET, "R", "m", T0, &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_ready_patch(POLICY_STATUS_TRUE, NULL, "m", T0, &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "R", "\xff", T0, &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "R", "m", -1, &out), -EINVAL);
    ck_assert_int_eq(
        kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "R", "m", INT64_C(253402300800), &out),
        -EINVAL);
    ck_assert_int_eq(kube_json_node_condition_patch((enum policy_status)7, "R", "m", T0, T0, &out),
                     -EINVAL);
    ck_assert_int_eq(kube_json_node_condition_patch(POLICY_STATUS_TRUE, "R", "m", -5, T0, &out),
                     -EINVAL);
    ck_assert_str_eq(out, "untouched");
    ck_assert_int_eq(kube_json_pod_ready_patch(POLICY_STATUS_TRUE, "R", "m", T0, NULL), -EINVAL);

    /* Cut: reason to 128 bytes (the é's lead byte goes too), message to 256. */
    ck_assert_int_eq(
        kube_json_pod_ready_patch(POLICY_STATUS_TRUE, long_reason, long_message, T0, &out), 0);
    long_reason[127] = '\0';
    long_message[256] = '\0';
    ck_assert_int_ne(asprintf(&expect,
                              "{\"status\":{\"conditions\":[{\"lastProbeTime\":null,"
                              "\"lastTransitionTime\":\"2024-05-02T10:00:00Z\",\"message\":\"%s\","
                              "\"reason\":\"%s\",\"status\":\"True\",\"type\":"
                              "\"edgewarden.io/sqledge-ready\"}]}}",
                              long_message, long_reason),
                     -1);
    ck_assert_str_eq(out, expect);
    free(out);
    free(expect);
    free(long_reason);
    free(long_message);
}
END_TEST

static const struct kube_json_event node_event = {
    .node = "edge-01",
    .action = "Taint",
    .reason = "RelocationStarted",
    .note = "SQL engine failed for 30s: tainting edge-01 NoExecute",
    .type = POLICY_EVENT_WARNING,
    .regarding = {"v1", "Node", "edge-01", "", "6f1c2a7e-3b9d-4d8e-9a51-0c7d2e4f8b13"},
    .event_time_us = T0 * 1000000 + 123456,
};

START_TEST(test_event_body) {
    struct kube_json_event pod_event = {
        .node = "edge-01",
        .action = "Probe",
        .reason = "Healthy",
        .note = "engine answered",
        .type = POLICY_EVENT_NORMAL,
        .regarding = {"v1", "Pod", "sqledge-0", "data", "0b8f5a52-91c4-4bd4-8f0e-6a2d1c3e7f90"},
        .event_time_us = T0 * 1000000 + 1,
    };

    ASSERT_BUILT(kube_json_event_body(&node_event, &out_),
                 "{\"action\":\"Taint\",\"apiVersion\":\"events.k8s.io/v1\",\"eventTime\":"
                 "\"2024-05-02T10:00:00.123456Z\",\"kind\":\"Event\",\"metadata\":{"
                 "\"generateName\":\"edgewarden-edge-01-\",\"namespace\":\"default\"},\"note\":"
                 "\"SQL engine failed for 30s: tainting edge-01 NoExecute\",\"reason\":"
                 "\"RelocationStarted\",\"regarding\":{\"apiVersion\":\"v1\",\"kind\":\"Node\","
                 "\"name\":\"edge-01\",\"uid\":\"6f1c2a7e-3b9d-4d8e-9a51-0c7d2e4f8b13\"},"
                 "\"reportingController\":\"edgewarden.io/agent\",\"reportingInstance\":"
                 "\"edgewarden-edge-01\",\"type\":\"Warning\"}");
    ck_assert_str_eq(kube_json_event_namespace(&node_event), "default");
    ASSERT_BUILT(kube_json_event_body(&pod_event, &out_),
                 "{\"action\":\"Probe\",\"apiVersion\":\"events.k8s.io/v1\",\"eventTime\":"
                 "\"2024-05-02T10:00:00.000001Z\",\"kind\":\"Event\",\"metadata\":{"
                 "\"generateName\":\"edgewarden-edge-01-\",\"namespace\":\"data\"},\"note\":"
                 "\"engine answered\",\"reason\":\"Healthy\",\"regarding\":{\"apiVersion\":"
                 "\"v1\",\"kind\":\"Pod\",\"name\":\"sqledge-0\",\"namespace\":\"data\",\"uid\":"
                 "\"0b8f5a52-91c4-4bd4-8f0e-6a2d1c3e7f90\"},\"reportingController\":"
                 "\"edgewarden.io/agent\",\"reportingInstance\":\"edgewarden-edge-01\",\"type\":"
                 "\"Normal\"}");
    ck_assert_str_eq(kube_json_event_namespace(&pod_event), "data");
}
END_TEST

START_TEST(test_event_note_cut) {
    struct kube_json_event ev = node_event;
    char *note = repeat('x', 1023, "\xe2\x82\xac and more"); /* € straddles byte 1024 */
    char *out = NULL;
    json_t *root;

    ev.note = note;
    ck_assert_int_eq(kube_json_event_body(&ev, &out), 0);
    root = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(root);
    note[1023] = '\0';
    ck_assert_str_eq(json_string_value(json_object_get(root, "note")), note);
    json_decref(root);
    free(out);
    free(note);
}
END_TEST

START_TEST(test_event_args) {
    struct kube_json_event ev;
    char *out = (char *)"untouched";
    char *long_node = repeat('n', 118, ""); /* edgewarden- + 118 = 129 > 128 */
    char *long_reason = repeat('R', 129, "");

    ck_assert_int_eq(kube_json_event_body(NULL, &out), -EINVAL);
    ck_assert_int_eq(kube_json_event_body(&node_event, NULL), -EINVAL);
#define BAD_EVENT(field, value)                                                                    \
    do {                                                                                           \
        ev = node_event;                                                                           \
        ev.field = value;                                                                          \
        ck_assert_int_eq(kube_json_event_body(&ev, &out), -EINVAL);                                \
    } while (0)
    BAD_EVENT(node, NULL);
    BAD_EVENT(node, "Edge_01");
    BAD_EVENT(node, long_node);
    BAD_EVENT(action, "");
    BAD_EVENT(reason, NULL);
    BAD_EVENT(reason, long_reason);
    BAD_EVENT(note, NULL);
    BAD_EVENT(note, "bad \xc0\x80 utf8");
    BAD_EVENT(type, (enum policy_event_type)9);
    BAD_EVENT(regarding.kind, "");
    BAD_EVENT(regarding.name, "no/slash");
    BAD_EVENT(regarding.namespace, "Not-A-Label");
    BAD_EVENT(event_time_us, -1);
#undef BAD_EVENT
    ck_assert_str_eq(out, "untouched");
    long_node[117] = '\0'; /* 128 exactly is allowed */
    ev = node_event;
    ev.node = long_node;
    ck_assert_int_eq(kube_json_event_body(&ev, &out), 0);
    free(out);
    free(long_node);
    free(long_reason);
}
END_TEST

START_TEST(test_lease_body) {
    const int64_t acquire = (T0 - 4000) * 1000000, renew = T0 * 1000000 + 500000;
    char *out = (char *)"untouched";
    struct kube_json_lease_write w = {
        .namespace = "edgewarden",
        .name = "edgewarden-edge-01",
        .holder = "edge-01",
        .duration_s = 40,
        .acquire_time_us = acquire,
        .renew_time_us = renew,
        .transitions = -1,
    };

    ASSERT_BUILT(kube_json_lease_write_body(&w, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"name\":\"edgewarden-edge-01\",\"namespace\":\"edgewarden\"},\"spec\":{"
                 "\"acquireTime\":\"2024-05-02T08:53:20.000000Z\",\"holderIdentity\":"
                 "\"edge-01\",\"leaseDurationSeconds\":40,\"renewTime\":"
                 "\"2024-05-02T10:00:00.500000Z\"}}");
    w.renew_time_us = renew + 10000000;
    w.resource_version = "184777";
    ASSERT_BUILT(kube_json_lease_write_body(&w, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"name\":\"edgewarden-edge-01\",\"namespace\":\"edgewarden\","
                 "\"resourceVersion\":\"184777\"},\"spec\":{\"acquireTime\":"
                 "\"2024-05-02T08:53:20.000000Z\",\"holderIdentity\":\"edge-01\","
                 "\"leaseDurationSeconds\":40,\"renewTime\":\"2024-05-02T10:00:10.500000Z\"}}");
#define BAD_LEASE(field, value)                                                                    \
    do {                                                                                           \
        struct kube_json_lease_write b = w;                                                        \
        b.field = value;                                                                           \
        ck_assert_int_eq(kube_json_lease_write_body(&b, &out), -EINVAL);                           \
    } while (0)
    BAD_LEASE(namespace, "Bad");
    BAD_LEASE(duration_s, 0);
    BAD_LEASE(acquire_time_us, -1);
    BAD_LEASE(resource_version, "");
    BAD_LEASE(name, "-bad");
#undef BAD_LEASE
    ck_assert_str_eq(out, "untouched");
}
END_TEST

/* The Leases edgewarden writes (docs/node-loss.md): a heartbeat with every
 * annotation, a failover slot taken and given back. */
START_TEST(test_lease_write_body) {
    const struct kube_json_annotation heartbeat_ann[] = {
        {KUBE_JSON_ANN_PEER_ADDRESS, "10.244.1.17:9090"},
        {KUBE_JSON_ANN_FENCED, "true"},
        {KUBE_JSON_ANN_WATCHDOG_TIMEOUT, "10"},
        {KUBE_JSON_ANN_FENCED_UNTIL, "2024-05-02T10:00:50Z"},
    };
    const struct kube_json_annotation slot_ann[] = {
        {KUBE_JSON_ANN_FAILOVER_NODE, "edge-01"},
        {KUBE_JSON_ANN_FAILOVER_PODS, "data/sqledge-0/a3c1e0f2-5d6b-4c7a-8e9f-1b2c3d4e5f60"},
    };
    struct kube_json_lease_write heartbeat = {
        .namespace = "edgewarden",
        .name = "edgewarden-edge-01",
        .holder = "edge-01",
        .duration_s = 40,
        .acquire_time_us = (T0 - 4000) * 1000000,
        .renew_time_us = T0 * 1000000 + 500000,
        .transitions = 0,
        .resource_version = "184777",
        .label = "heartbeat",
        .annotations = heartbeat_ann,
        .n_annotations = 4,
    };
    struct kube_json_lease_write slot = {
        .namespace = "edgewarden",
        .name = "edgewarden-failover-0",
        .holder = "edge-02",
        .duration_s = 300,
        .acquire_time_us = T0 * 1000000,
        .renew_time_us = T0 * 1000000,
        .transitions = 2,
        .label = "failover",
        .annotations = slot_ann,
        .n_annotations = 2,
    };

    ASSERT_BUILT(
        kube_json_lease_write_body(&heartbeat, &out_),
        "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
        "\"annotations\":{\"edgewarden.io/fenced\":\"true\",\"edgewarden.io/fenced-until\":"
        "\"2024-05-02T10:00:50Z\",\"edgewarden.io/peer-address\":\"10.244.1.17:9090\","
        "\"edgewarden.io/watchdog-timeout\":\"10\"},\"labels\":{\"edgewarden.io/lease\":"
        "\"heartbeat\"},\"name\":\"edgewarden-edge-01\",\"namespace\":\"edgewarden\","
        "\"resourceVersion\":\"184777\"},\"spec\":{\"acquireTime\":"
        "\"2024-05-02T08:53:20.000000Z\",\"holderIdentity\":\"edge-01\","
        "\"leaseDurationSeconds\":40,\"leaseTransitions\":0,\"renewTime\":"
        "\"2024-05-02T10:00:00.500000Z\"}}");
    /* A slot taken: POST, no resourceVersion. */
    ASSERT_BUILT(kube_json_lease_write_body(&slot, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"annotations\":{\"edgewarden.io/failover-node\":\"edge-01\","
                 "\"edgewarden.io/failover-pods\":"
                 "\"data/sqledge-0/a3c1e0f2-5d6b-4c7a-8e9f-1b2c3d4e5f60\"},\"labels\":{"
                 "\"edgewarden.io/lease\":\"failover\"},\"name\":\"edgewarden-failover-0\","
                 "\"namespace\":\"edgewarden\"},\"spec\":{\"acquireTime\":"
                 "\"2024-05-02T10:00:00.000000Z\",\"holderIdentity\":\"edge-02\","
                 "\"leaseDurationSeconds\":300,\"leaseTransitions\":2,\"renewTime\":"
                 "\"2024-05-02T10:00:00.000000Z\"}}");
    /* Given back: no holder (NULL), no annotations, PUT with the version. */
    slot.holder = NULL;
    slot.annotations = NULL;
    slot.n_annotations = 0;
    slot.resource_version = "190001";
    slot.renew_time_us = (T0 + 300) * 1000000;
    ASSERT_BUILT(kube_json_lease_write_body(&slot, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"labels\":{\"edgewarden.io/lease\":\"failover\"},\"name\":"
                 "\"edgewarden-failover-0\",\"namespace\":\"edgewarden\",\"resourceVersion\":"
                 "\"190001\"},\"spec\":{\"acquireTime\":\"2024-05-02T10:00:00.000000Z\","
                 "\"leaseDurationSeconds\":300,\"leaseTransitions\":2,\"renewTime\":"
                 "\"2024-05-02T10:05:00.000000Z\"}}");
    /* The election Lease: no label, no annotations, transitions not written. */
    slot.name = "edgewarden-remediator";
    slot.holder = "edge-01";
    slot.label = NULL;
    slot.duration_s = 15;
    slot.transitions = -1;
    slot.resource_version = NULL;
    ASSERT_BUILT(kube_json_lease_write_body(&slot, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"name\":\"edgewarden-remediator\",\"namespace\":\"edgewarden\"},\"spec\":{"
                 "\"acquireTime\":\"2024-05-02T10:00:00.000000Z\",\"holderIdentity\":\"edge-01\","
                 "\"leaseDurationSeconds\":15,\"renewTime\":\"2024-05-02T10:05:00.000000Z\"}}");
    /* Annotation values are JSON-escaped, not refused. */
    heartbeat.n_annotations = 1;
    heartbeat.annotations = (const struct kube_json_annotation[]){{"example.com/note", "a \"b\""}};
    heartbeat.label = NULL;
    heartbeat.resource_version = NULL;
    ASSERT_BUILT(kube_json_lease_write_body(&heartbeat, &out_),
                 "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
                 "\"annotations\":{\"example.com/note\":\"a \\\"b\\\"\"},\"name\":"
                 "\"edgewarden-edge-01\",\"namespace\":\"edgewarden\"},\"spec\":{\"acquireTime\":"
                 "\"2024-05-02T08:53:20.000000Z\",\"holderIdentity\":\"edge-01\","
                 "\"leaseDurationSeconds\":40,\"leaseTransitions\":0,\"renewTime\":"
                 "\"2024-05-02T10:00:00.500000Z\"}}");
}
END_TEST

START_TEST(test_lease_write_args) {
    const struct kube_json_annotation good[] = {{KUBE_JSON_ANN_FENCED, "false"}};
    struct kube_json_lease_write w = {
        .namespace = "edgewarden",
        .name = "edgewarden-edge-01",
        .holder = "edge-01",
        .duration_s = 40,
        .acquire_time_us = T0 * 1000000,
        .renew_time_us = T0 * 1000000,
        .transitions = -1,
        .label = "heartbeat",
        .annotations = good,
        .n_annotations = 1,
    };
    char *out = (char *)"untouched";

    ck_assert_int_eq(kube_json_lease_write_body(&w, &out), 0);
    free(out);
    out = (char *)"untouched";
#define BAD_WRITE(field, value)                                                                    \
    do {                                                                                           \
        struct kube_json_lease_write b = w;                                                        \
        b.field = value;                                                                           \
        ck_assert_int_eq(kube_json_lease_write_body(&b, &out), -EINVAL);                           \
    } while (0)
#define BAD_ANNOTATION(k, v)                                                                       \
    do {                                                                                           \
        const struct kube_json_annotation a[] = {{KUBE_JSON_ANN_FENCED, "true"}, {k, v}};          \
        struct kube_json_lease_write b = w;                                                        \
        b.annotations = a;                                                                         \
        b.n_annotations = 2;                                                                       \
        ck_assert_int_eq(kube_json_lease_write_body(&b, &out), -EINVAL);                           \
    } while (0)
    BAD_WRITE(namespace, NULL);
    BAD_WRITE(namespace, "edge.warden");
    BAD_WRITE(name, NULL);
    BAD_WRITE(name, "Edgewarden-edge-01");
    BAD_WRITE(duration_s, -40);
    BAD_WRITE(renew_time_us, -1);
    BAD_WRITE(label, "");
    BAD_WRITE(label, "heart beat");
    BAD_WRITE(label, "-heartbeat");
    BAD_WRITE(annotations, NULL); /* with n_annotations 1 */
    BAD_ANNOTATION("Bad Key", "v");
    BAD_ANNOTATION("", "v");
    BAD_ANNOTATION(NULL, "v");
    BAD_ANNOTATION("edgewarden.io/", "v");
    BAD_ANNOTATION("Edgewarden.IO/fenced", "v");
    BAD_ANNOTATION("a/b/c", "v");
    BAD_ANNOTATION(KUBE_JSON_ANN_FENCED_UNTIL, NULL);
    BAD_ANNOTATION(KUBE_JSON_ANN_FENCED_UNTIL, "bad \xc0\x80 utf8");
    /* edgewarden.io/peers of 256 longest node names fits; a byte more does not. */
    {
        char *peers = repeat('n', KUBE_JSON_ANNOTATION_MAX_BYTES, "");
        char *too_long = repeat('n', KUBE_JSON_ANNOTATION_MAX_BYTES + 1, "");
        const struct kube_json_annotation fits[] = {{KUBE_JSON_ANN_PEERS, peers}};
        struct kube_json_lease_write big = w;
        struct kube_json_lease back;
        char *body = NULL;

        ck_assert_uint_ge(KUBE_JSON_ANNOTATION_MAX_BYTES, 256 * 253 + 255);
        big.annotations = fits;
        big.n_annotations = 1;
        ck_assert_int_eq(kube_json_lease_write_body(&big, &body), 0);
        ck_assert_int_eq(kube_json_lease_parse(body, strlen(body), &back, NULL), 0);
        free(body);
        BAD_ANNOTATION(KUBE_JSON_ANN_PEERS, too_long);
        free(too_long);
        free(peers);
    }
#undef BAD_ANNOTATION
#undef BAD_WRITE
    ck_assert_int_eq(kube_json_lease_write_body(NULL, &out), -EINVAL);
    ck_assert_int_eq(kube_json_lease_write_body(&w, NULL), -EINVAL);
    ck_assert_str_eq(out, "untouched");
}
END_TEST

/* CONTRACT (kube_json.h: holder "" or NULL: no holder, a free failover
 * slot). Reported: kube_json_lease_write_body() refuses holder "" with
 * -EINVAL; NULL works. */
START_TEST(test_lease_write_empty_holder) {
    struct kube_json_lease_write w = {
        .namespace = "edgewarden",
        .name = "edgewarden-failover-0",
        .holder = "",
        .duration_s = 300,
        .acquire_time_us = T0 * 1000000,
        .renew_time_us = T0 * 1000000,
        .transitions = -1,
    };
    const char *golden =
        "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
        "\"metadata\":{\"name\":\"edgewarden-failover-0\",\"namespace\":"
        "\"edgewarden\"},\"spec\":{\"acquireTime\":\"2024-05-02T10:00:00.000000Z\","
        "\"leaseDurationSeconds\":300,\"renewTime\":"
        "\"2024-05-02T10:00:00.000000Z\"}}";

    w.holder = NULL;
    ASSERT_BUILT(kube_json_lease_write_body(&w, &out_), golden);
    w.holder = "";
    ASSERT_BUILT(kube_json_lease_write_body(&w, &out_), golden);
}
END_TEST

START_TEST(test_pod_force_delete_body) {
    char *out = (char *)"untouched";
    char *long_uid = repeat('u', KUBE_JSON_UID_SIZE, "");

    ASSERT_BUILT(kube_json_pod_force_delete_body("0b8f5a52-91c4-4bd4-8f0e-6a2d1c3e7f90", &out_),
                 "{\"apiVersion\":\"v1\",\"gracePeriodSeconds\":0,\"kind\":\"DeleteOptions\","
                 "\"preconditions\":{\"uid\":\"0b8f5a52-91c4-4bd4-8f0e-6a2d1c3e7f90\"}}");
    ck_assert_int_eq(kube_json_pod_force_delete_body(NULL, &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_force_delete_body("", &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_force_delete_body(long_uid, &out), -EINVAL);
    ck_assert_int_eq(kube_json_pod_force_delete_body("uid", NULL), -EINVAL);
    ck_assert_str_eq(out, "untouched");
    long_uid[KUBE_JSON_UID_SIZE - 1] = '\0'; /* 63 bytes fit */
    ck_assert_int_eq(kube_json_pod_force_delete_body(long_uid, &out), 0);
    free(out);
    free(long_uid);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Taint edit                                                               */

#define OURS POLICY_TAINT_KEY

struct taint_case {
    const char *name;
    struct kube_json_taint in[4];
    size_t n_in;
    enum policy_taint desired;
    bool changed;
    const char *patch; /* the merge patch of the result, resourceVersion "7" */
};

static const struct taint_case taint_cases[] = {
    {"no taints, none wanted",
     {{"", "", "", ""}},
     0,
     POLICY_TAINT_NONE,
     false,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[]}}"},
    {"no taints, NoExecute added with timeAdded",
     {{"", "", "", ""}},
     0,
     POLICY_TAINT_NOEXECUTE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoExecute\","
     "\"key\":\"edgewarden.io/sqledge-unhealthy\",\"timeAdded\":\"2024-05-02T10:00:00Z\"}]}}"},
    {"only foreign, kept exactly, ours appended",
     {{"dedicated", "sql", "NoSchedule", ""},
      {"node.kubernetes.io/unreachable", "", "NoExecute", "2024-05-02T09:59:30Z"}},
     2,
     POLICY_TAINT_NOSCHEDULE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"dedicated\",\"value\":\"sql\"},{\"effect\":\"NoExecute\",\"key\":"
     "\"node.kubernetes.io/unreachable\",\"timeAdded\":\"2024-05-02T09:59:30Z\"},{\"effect\":"
     "\"NoSchedule\",\"key\":\"edgewarden.io/sqledge-unhealthy\"}]}}"},
    {"only foreign, none wanted: no change",
     {{"dedicated", "sql", "NoSchedule", ""}},
     1,
     POLICY_TAINT_NONE,
     false,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"dedicated\",\"value\":\"sql\"}]}}"},
    {"ours NoExecute -> NoSchedule in place, foreign order kept",
     {{"a", "1", "NoSchedule", ""},
      {OURS, "", "NoExecute", "2024-05-02T09:00:00Z"},
      {"b", "", "PreferNoSchedule", ""}},
     3,
     POLICY_TAINT_NOSCHEDULE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"a\",\"value\":\"1\"},{\"effect\":\"NoSchedule\",\"key\":"
     "\"edgewarden.io/sqledge-unhealthy\"},{\"effect\":\"PreferNoSchedule\",\"key\":\"b\"}]}}"},
    {"remove ours, foreign kept",
     {{OURS, "", "NoSchedule", ""}, {"a", "1", "NoExecute", "2024-05-02T09:00:00Z"}},
     2,
     POLICY_TAINT_NONE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoExecute\","
     "\"key\":\"a\",\"timeAdded\":\"2024-05-02T09:00:00Z\",\"value\":\"1\"}]}}"},
    {"remove ours, nothing left: []",
     {{OURS, "", "NoExecute", "2024-05-02T09:00:00Z"}},
     1,
     POLICY_TAINT_NONE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[]}}"},
    {"already NoExecute: no change, timeAdded kept",
     {{"a", "", "NoSchedule", ""}, {OURS, "", "NoExecute", "2024-05-02T09:00:00Z"}},
     2,
     POLICY_TAINT_NOEXECUTE,
     false,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"a\"},{\"effect\":\"NoExecute\",\"key\":\"edgewarden.io/sqledge-unhealthy\","
     "\"timeAdded\":\"2024-05-02T09:00:00Z\"}]}}"},
    {"already NoSchedule: no change",
     {{OURS, "", "NoSchedule", ""}},
     1,
     POLICY_TAINT_NOSCHEDULE,
     false,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"edgewarden.io/sqledge-unhealthy\"}]}}"},
    {"duplicate of ours, two effects: one, the desired one's timeAdded, first place",
     {{OURS, "", "NoSchedule", ""},
      {"a", "", "NoSchedule", ""},
      {OURS, "", "NoExecute", "2024-05-02T09:00:00Z"}},
     3,
     POLICY_TAINT_NOEXECUTE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoExecute\","
     "\"key\":\"edgewarden.io/sqledge-unhealthy\",\"timeAdded\":\"2024-05-02T09:00:00Z\"},"
     "{\"effect\":\"NoSchedule\",\"key\":\"a\"}]}}"},
    {"duplicate of ours, neither desired: one new",
     {{OURS, "", "NoSchedule", ""}, {OURS, "", "PreferNoSchedule", ""}},
     2,
     POLICY_TAINT_NOEXECUTE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoExecute\","
     "\"key\":\"edgewarden.io/sqledge-unhealthy\",\"timeAdded\":\"2024-05-02T10:00:00Z\"}]}}"},
    {"duplicate of ours, none wanted: all removed",
     {{OURS, "", "NoSchedule", ""}, {OURS, "", "NoExecute", "2024-05-02T09:00:00Z"}},
     2,
     POLICY_TAINT_NONE,
     true,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[]}}"},
    {"ours with a stray value and the desired effect: kept as it is",
     {{OURS, "x", "NoSchedule", ""}},
     1,
     POLICY_TAINT_NOSCHEDULE,
     false,
     "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\","
     "\"key\":\"edgewarden.io/sqledge-unhealthy\",\"value\":\"x\"}]}}"},
};

START_TEST(test_taint_edit) {
    const struct taint_case *c = &taint_cases[_i];
    struct kube_json_taint out[5];
    size_t n = 99;
    bool changed = !c->changed;
    char *patch = NULL;

    ck_assert_msg(kube_json_taints_edit(c->in, c->n_in, c->desired, T0, out, 5, &n, &changed) == 0,
                  "%s", c->name);
    ck_assert_msg(changed == c->changed, "%s: changed %d", c->name, changed);
    ck_assert_int_eq(kube_json_taints_patch(out, n, "7", &patch), 0);
    ck_assert_msg(!strcmp(patch, c->patch), "%s:\n got %s\nwant %s", c->name, patch, c->patch);
    free(patch);
}
END_TEST

START_TEST(test_taint_edit_args) {
    struct kube_json_taint in[2] = {{"a", "", "NoSchedule", ""}, {"b", "", "NoSchedule", ""}};
    struct kube_json_taint out[3];
    size_t n;
    bool changed;
    char *patch = (char *)"untouched";

    ck_assert_int_eq(kube_json_taints_edit(NULL, 1, POLICY_TAINT_NONE, T0, out, 3, &n, &changed),
                     -EINVAL);
    ck_assert_int_eq(kube_json_taints_edit(in, 2, (enum policy_taint)5, T0, out, 3, &n, &changed),
                     -EINVAL);
    ck_assert_int_eq(kube_json_taints_edit(in, 2, POLICY_TAINT_NOEXECUTE, -1, out, 3, &n, &changed),
                     -EINVAL);
    ck_assert_int_eq(kube_json_taints_edit(in, 2, POLICY_TAINT_NOEXECUTE, T0, out, 2, &n, &changed),
                     -ENOBUFS);
    ck_assert_int_eq(kube_json_taints_edit(in, 2, POLICY_TAINT_NONE, T0, out, 1, &n, &changed),
                     -ENOBUFS);
    ck_assert_int_eq(kube_json_taints_edit(in, 2, POLICY_TAINT_NONE, T0, out, 3, NULL, &changed),
                     -EINVAL);
    ck_assert_int_eq(kube_json_taints_patch(in, 2, NULL, &patch), -EINVAL);
    ck_assert_int_eq(kube_json_taints_patch(in, 2, "", &patch), -EINVAL);
    in[1].key[0] = '\0';
    ck_assert_int_eq(kube_json_taints_patch(in, 2, "7", &patch), -EINVAL);
    memset(in[0].value, 'v', sizeof(in[0].value)); /* unterminated */
    ck_assert_int_eq(kube_json_taints_patch(in, 1, "7", &patch), -EINVAL);
    ck_assert_str_eq(patch, "untouched");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Taint set (out-of-service)                                               */

#define OOS "node.kubernetes.io/out-of-service"
#define OOS_NEW                                                                                    \
    "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/out-of-service\",\"timeAdded\":"       \
    "\"2024-05-02T10:00:00Z\",\"value\":\"nodeshutdown\"}"
#define OOS_OLD                                                                                    \
    "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/out-of-service\",\"timeAdded\":"       \
    "\"2024-05-02T09:00:00Z\",\"value\":\"nodeshutdown\"}"
#define TAINTS_PATCH(list)                                                                         \
    "{\"metadata\":{\"resourceVersion\":\"7\"},\"spec\":{\"taints\":[" list "]}}"

struct taint_set_case {
    const char *name;
    struct kube_json_taint in[4];
    size_t n_in;
    bool present;
    bool changed;
    const char *patch; /* the merge patch of the result, resourceVersion "7" */
};

/* The edit is always to OOS=nodeshutdown:NoExecute at T0 (present) or to no
 * OOS taint at all. */
static const struct taint_set_case taint_set_cases[] = {
    {"no taints: added, timeAdded now", {{"", "", "", ""}}, 0, true, true, TAINTS_PATCH(OOS_NEW)},
    {"foreign kept exactly and in order, ours appended",
     {{"dedicated", "sql", "NoSchedule", ""},
      {"node.kubernetes.io/unreachable", "", "NoExecute", "2024-05-02T09:59:30Z"},
      {POLICY_TAINT_KEY, "", "NoExecute", "2024-05-02T09:30:00Z"}},
     3,
     true,
     true,
     TAINTS_PATCH(
         "{\"effect\":\"NoSchedule\",\"key\":\"dedicated\",\"value\":\"sql\"},{\"effect\":"
         "\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\",\"timeAdded\":"
         "\"2024-05-02T09:59:30Z\"},{\"effect\":\"NoExecute\",\"key\":"
         "\"edgewarden.io/sqledge-unhealthy\",\"timeAdded\":\"2024-05-02T09:30:00Z\"}," OOS_NEW)},
    {"identical: kept with its timeAdded, no change",
     {{"a", "", "NoSchedule", ""},
      {OOS, "nodeshutdown", "NoExecute", "2024-05-02T09:00:00Z"},
      {"b", "1", "PreferNoSchedule", ""}},
     3,
     true,
     false,
     TAINTS_PATCH("{\"effect\":\"NoSchedule\",\"key\":\"a\"}," OOS_OLD
                  ",{\"effect\":\"PreferNoSchedule\",\"key\":\"b\",\"value\":\"1\"}")},
    {"another value: replaced in place, timeAdded now",
     {{"a", "", "NoSchedule", ""},
      {OOS, "x", "NoExecute", "2024-05-02T09:00:00Z"},
      {"b", "", "NoSchedule", ""}},
     3,
     true,
     true,
     TAINTS_PATCH("{\"effect\":\"NoSchedule\",\"key\":\"a\"}," OOS_NEW
                  ",{\"effect\":\"NoSchedule\",\"key\":\"b\"}")},
    {"another effect: replaced in place",
     {{OOS, "nodeshutdown", "NoSchedule", ""}, {"a", "", "NoSchedule", ""}},
     2,
     true,
     true,
     TAINTS_PATCH(OOS_NEW ",{\"effect\":\"NoSchedule\",\"key\":\"a\"}")},
    {"duplicates: one, the identical one's timeAdded, first place",
     {{OOS, "x", "NoExecute", "2024-05-02T08:00:00Z"},
      {"a", "", "NoSchedule", ""},
      {OOS, "nodeshutdown", "NoExecute", "2024-05-02T09:00:00Z"}},
     3,
     true,
     true,
     TAINTS_PATCH(OOS_OLD ",{\"effect\":\"NoSchedule\",\"key\":\"a\"}")},
    {"a longer key is foreign",
     {{OOS "x", "", "NoSchedule", ""}},
     1,
     true,
     true,
     TAINTS_PATCH(
         "{\"effect\":\"NoSchedule\",\"key\":\"node.kubernetes.io/out-of-servicex\"}," OOS_NEW)},
    {"removed, foreign kept",
     {{"a", "", "NoSchedule", ""},
      {OOS, "nodeshutdown", "NoExecute", "2024-05-02T09:00:00Z"},
      {"b", "", "NoSchedule", ""}},
     3,
     false,
     true,
     TAINTS_PATCH("{\"effect\":\"NoSchedule\",\"key\":\"a\"},{\"effect\":\"NoSchedule\",\"key\":"
                  "\"b\"}")},
    {"removed whatever its value and effect, duplicates too",
     {{OOS, "x", "NoSchedule", ""}, {OOS, "nodeshutdown", "NoExecute", "2024-05-02T09:00:00Z"}},
     2,
     false,
     true,
     TAINTS_PATCH("")},
    {"absent, not wanted: no change",
     {{"a", "", "NoSchedule", ""}},
     1,
     false,
     false,
     TAINTS_PATCH("{\"effect\":\"NoSchedule\",\"key\":\"a\"}")},
    {"no taints, not wanted: no change", {{"", "", "", ""}}, 0, false, false, TAINTS_PATCH("")},
};

START_TEST(test_taint_set) {
    const struct taint_set_case *c = &taint_set_cases[_i];
    struct kube_json_taint out[5], again[5];
    size_t n = 99, n_again = 99;
    bool changed = !c->changed, changed_again = true;
    char *patch = NULL;

    ck_assert_msg(kube_json_taint_set(c->in, c->n_in, OOS, "nodeshutdown", "NoExecute", c->present,
                                      T0, out, 5, &n, &changed) == 0,
                  "%s", c->name);
    ck_assert_msg(changed == c->changed, "%s: changed %d", c->name, changed);
    ck_assert_int_eq(kube_json_taints_patch(out, n, "7", &patch), 0);
    ck_assert_msg(!strcmp(patch, c->patch), "%s:\n got %s\nwant %s", c->name, patch, c->patch);
    free(patch);
    /* The same edit again, later: nothing more to do. */
    ck_assert_int_eq(kube_json_taint_set(out, n, OOS, "nodeshutdown", "NoExecute", c->present,
                                         T0 + 60, again, 5, &n_again, &changed_again),
                     0);
    ck_assert_msg(!changed_again, "%s: second edit changed", c->name);
    ck_assert_uint_eq(n_again, n);
}
END_TEST

START_TEST(test_taint_set_args) {
    struct kube_json_taint in[2] = {{"a", "", "NoSchedule", ""},
                                    {OOS, "nodeshutdown", "NoExecute", "2024-05-02T09:00:00Z"}};
    struct kube_json_taint out[3], *many;
    char *value63 = repeat('v', 63, ""), *value64 = repeat('v', 64, "");
    char *effect32 = repeat('E', 32, "");
    size_t n;
    bool changed;

#define SET(cur, count, key, value, effect, present, now, o, cap, n_out, ch)                       \
    kube_json_taint_set(cur, count, key, value, effect, present, now, o, cap, n_out, ch)
    /* Room: n + 1 suffices; less fails with -ENOBUFS, never a short list. */
    ck_assert_int_eq(SET(in, 1, OOS, "nodeshutdown", "NoExecute", true, T0, out, 1, &n, &changed),
                     -ENOBUFS);
    ck_assert_int_eq(SET(in, 2, OOS, "nodeshutdown", "NoExecute", true, T0, out, 1, &n, &changed),
                     -ENOBUFS);
    ck_assert_int_eq(SET(in, 2, OOS, "nodeshutdown", "NoExecute", true, T0, out, 2, &n, &changed),
                     0);
    ck_assert(!changed);
    ck_assert_int_eq(SET(in, 2, OOS, "", "NoExecute", false, T0, out, 0, &n, &changed), -ENOBUFS);
    ck_assert_int_eq(SET(in, 2, OOS, "", "NoExecute", false, T0, out, 1, &n, &changed), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(changed);
    ck_assert_int_eq(SET(NULL, 0, OOS, "nodeshutdown", "NoExecute", true, T0, out, 1, &n, &changed),
                     0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(SET(in, 1, OOS, value63, "NoExecute", true, T0, out, 3, &n, &changed), 0);
    ck_assert_str_eq(out[1].value, value63);

    ck_assert_int_eq(SET(NULL, 1, OOS, "v", "NoExecute", true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, NULL, "v", "NoExecute", true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, "", "v", "NoExecute", true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, "Bad Key", "v", "NoExecute", true, T0, out, 3, &n, &changed),
                     -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, NULL, "NoExecute", true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, value64, "NoExecute", true, T0, out, 3, &n, &changed),
                     -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", NULL, true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", "", true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", effect32, true, T0, out, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", "NoExecute", true, T0, NULL, 3, &n, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", "NoExecute", true, T0, out, 3, NULL, &changed), -EINVAL);
    ck_assert_int_eq(SET(in, 2, OOS, "v", "NoExecute", true, T0, out, 3, &n, NULL), -EINVAL);
    /* A new taint needs a time it can write. */
    ck_assert_int_eq(SET(in, 2, OOS, "v", "NoExecute", true, -1, out, 3, &n, &changed), -EINVAL);
    /* More taints than a Node may carry. */
    many = calloc(KUBE_JSON_MAX_ENTRIES + 1, sizeof(*many));
    ck_assert_ptr_nonnull(many);
    for (size_t i = 0; i <= KUBE_JSON_MAX_ENTRIES; i++) {
        snprintf(many[i].key, sizeof(many[i].key), "k%zu", i);
        strcpy(many[i].effect, "NoSchedule");
    }
    ck_assert_int_eq(SET(many, KUBE_JSON_MAX_ENTRIES + 1, OOS, "v", "NoExecute", false, T0, many, 0,
                         &n, &changed),
                     -EINVAL);
#undef SET
    free(many);
    free(value63);
    free(value64);
    free(effect32);
}
END_TEST

/* CONTRACT (kube_json.h: "an identical one kept as it is, timeAdded
 * included"). Reported: an identical taint without timeAdded (a PATCH by
 * hand, or a NoSchedule one) gets timeAdded now and *changed true. */
START_TEST(test_taint_set_identical_untimed) {
    struct kube_json_taint in[2] = {{"a", "", "NoSchedule", ""},
                                    {OOS, "nodeshutdown", "NoExecute", ""}};
    struct kube_json_taint out[3];
    size_t n;
    bool changed;

    ck_assert_int_eq(kube_json_taint_set(in, 2, OOS, "nodeshutdown", "NoExecute", true, T0, out, 3,
                                         &n, &changed),
                     0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(out[1].time_added, "");
    ck_assert(!changed);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */

START_TEST(test_fixture_node) {
    struct kube_json_node n;
    struct kube_json_error err = {0};
    const struct kube_json_condition *ready, *ours;
    size_t len;
    char *text = slurp("node.json", &len);
    struct kube_json_taint out[4];
    size_t n_out;
    bool changed;
    char *patch;

    ck_assert_int_eq(kube_json_node_parse(text, len, &n, &err), 0);
    ck_assert_str_eq(n.meta.name, "edge-01");
    ck_assert_str_eq(n.meta.namespace, "");
    ck_assert_str_eq(n.meta.uid, "6f1c2a7e-3b9d-4d8e-9a51-0c7d2e4f8b13");
    ck_assert_str_eq(n.meta.resource_version, "184467");
    ck_assert(!n.meta.deleting);
    ck_assert(!n.unschedulable);
    ck_assert_uint_eq(n.n_taints, 3);
    ck_assert_str_eq(n.taints[0].key, "dedicated");
    ck_assert_str_eq(n.taints[0].value, "sql");
    ck_assert_str_eq(n.taints[0].effect, "NoSchedule");
    ck_assert_str_eq(n.taints[0].time_added, "");
    ck_assert_str_eq(n.taints[1].key, POLICY_TAINT_KEY);
    ck_assert_str_eq(n.taints[1].time_added, "2024-05-02T10:00:00Z");
    ck_assert_str_eq(n.taints[2].key, "node.kubernetes.io/unreachable");
    ck_assert_uint_eq(n.n_conditions, 5);
    ready = kube_json_condition_find(n.conditions, n.n_conditions, "Ready");
    ck_assert_ptr_nonnull(ready);
    ck_assert_str_eq(ready->status, "True");
    ck_assert_str_eq(ready->reason, "KubeletReady");
    ck_assert_str_eq(ready->last_heartbeat_time, "2024-05-02T10:01:02Z");
    ours = kube_json_condition_find(n.conditions, n.n_conditions, POLICY_NODE_CONDITION);
    ck_assert_ptr_nonnull(ours);
    ck_assert_str_eq(ours->status, "True");
    ck_assert_str_eq(ours->reason, "EngineExited");
    ck_assert_str_eq(ours->message, "sqlservr exited with status 1");
    ck_assert_str_eq(ours->last_transition_time, "2024-05-02T09:59:30Z");
    ck_assert_ptr_null(
        kube_json_condition_find(n.conditions, n.n_conditions, "NetworkUnavailable"));

    /* The edit the reporter makes on this node: quarantine. */
    ck_assert_int_eq(kube_json_taints_edit(n.taints, n.n_taints, POLICY_TAINT_NOSCHEDULE, T0 + 100,
                                           out, 4, &n_out, &changed),
                     0);
    ck_assert(changed);
    ck_assert_int_eq(kube_json_taints_patch(out, n_out, n.meta.resource_version, &patch), 0);
    ck_assert_str_eq(patch,
                     "{\"metadata\":{\"resourceVersion\":\"184467\"},\"spec\":{\"taints\":["
                     "{\"effect\":\"NoSchedule\",\"key\":\"dedicated\",\"value\":\"sql\"},"
                     "{\"effect\":\"NoSchedule\",\"key\":\"edgewarden.io/sqledge-unhealthy\"},"
                     "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\","
                     "\"timeAdded\":\"2024-05-02T09:59:30Z\"}]}}");
    free(patch);
    kube_json_node_free(&n);
    kube_json_node_free(&n); /* twice is harmless */
    kube_json_node_free(NULL);
    free(text);
}
END_TEST

static void check_fixture_pod(const struct kube_json_pod *p) {
    const struct kube_json_condition *c;

    ck_assert_str_eq(p->meta.name, "sqledge-0");
    ck_assert_str_eq(p->meta.namespace, "data");
    ck_assert_str_eq(p->meta.uid, "0b8f5a52-91c4-4bd4-8f0e-6a2d1c3e7f90");
    ck_assert_uint_eq(p->labels.n, 3);
    ck_assert_str_eq(p->labels.items[0].key, "app.kubernetes.io/name");
    ck_assert_str_eq(p->labels.items[0].value, "sqledge");
    ck_assert_str_eq(p->node_name, "edge-01");
    ck_assert(p->has_ready_gate);
    ck_assert_str_eq(p->phase, "Running");
    ck_assert_str_eq(p->pod_ip, "10.244.1.17");
    ck_assert_uint_eq(p->n_conditions, 6);
    ck_assert_uint_eq(p->restart_count, 3);
    c = kube_json_condition_find(p->conditions, p->n_conditions, POLICY_POD_CONDITION);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->status, "False");
    ck_assert_str_eq(c->reason, "EngineExited");
    c = kube_json_condition_find(p->conditions, p->n_conditions, "Ready");
    ck_assert_str_eq(c->reason, "ReadinessGatesNotReady");
    c = kube_json_condition_find(p->conditions, p->n_conditions, "Initialized");
    ck_assert_str_eq(c->reason, "");
}

START_TEST(test_fixture_pod) {
    struct kube_json_pod p;
    size_t len;
    char *text = slurp("pod.json", &len);

    ck_assert_int_eq(kube_json_pod_parse(text, len, &p, NULL), 0);
    check_fixture_pod(&p);
    ck_assert_str_eq(p.meta.resource_version, "184502");
    ck_assert(!p.meta.deleting);
    kube_json_pod_free(&p);
    free(text);
}
END_TEST

START_TEST(test_fixture_statuses) {
    struct kube_json_status s;
    size_t len;
    char *text;

    text = slurp("status-409-conflict.json", &len);
    ck_assert_int_eq(kube_json_status_parse(text, len, &s, NULL), 0);
    ck_assert_int_eq(s.code, 409);
    ck_assert_str_eq(s.reason, "Conflict");
    ck_assert_int_eq(s.retry_after_seconds, 0);
    ck_assert_ptr_nonnull(strstr(s.message, "the object has been modified"));
    free(text);

    text = slurp("status-410-gone.json", &len);
    ck_assert_int_eq(kube_json_status_parse(text, len, &s, NULL), 0);
    ck_assert_int_eq(s.code, 410);
    ck_assert_str_eq(s.reason, "Expired");
    ck_assert_str_eq(s.message, "too old resource version: 184000 (184467)");
    free(text);

    text = slurp("status-429.json", &len);
    ck_assert_int_eq(kube_json_status_parse(text, len, &s, NULL), 0);
    ck_assert_int_eq(s.code, 429);
    ck_assert_str_eq(s.reason, "TooManyRequests");
    ck_assert_int_eq(s.retry_after_seconds, 1);
    free(text);
}
END_TEST

START_TEST(test_fixture_watch) {
    static const enum kube_json_event_type types[] = {KUBE_JSON_ADDED, KUBE_JSON_MODIFIED,
                                                      KUBE_JSON_BOOKMARK, KUBE_JSON_DELETED,
                                                      KUBE_JSON_ERROR};
    static const char *const rvs[] = {"184502", "184530", "184600", "184611", ""};
    size_t len, i = 0;
    char *text = slurp("watch-pods.jsonl", &len);

    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1, i++) {
        struct kube_json_watch_event ev;
        struct kube_json_pod p;

        ck_assert_uint_lt(i, 5);
        ck_assert_int_eq(kube_json_watch_event_parse(line, (size_t)(nl - line), &ev, NULL), 0);
        ck_assert_int_eq(ev.type, types[i]);
        ck_assert_str_eq(ev.resource_version, rvs[i]);
        ck_assert_ptr_nonnull(ev.object);
        if (ev.type == KUBE_JSON_ADDED || ev.type == KUBE_JSON_MODIFIED ||
            ev.type == KUBE_JSON_DELETED) {
            ck_assert_int_eq(kube_json_pod_from_json(ev.object, &p, NULL), 0);
            check_fixture_pod(&p);
            ck_assert(p.meta.deleting == (ev.type == KUBE_JSON_DELETED));
            kube_json_pod_free(&p);
            ck_assert(!ev.relist);
        } else if (ev.type == KUBE_JSON_ERROR) {
            ck_assert_int_eq(ev.status.code, 410);
            ck_assert_str_eq(ev.status.reason, "Expired");
            ck_assert(ev.relist);
        }
        kube_json_watch_event_free(&ev);
        kube_json_watch_event_free(&ev);
    }
    ck_assert_uint_eq(i, 5);
    free(text);
}
END_TEST

START_TEST(test_fixture_lists) {
    struct kube_json_list l;
    struct kube_json_pod p;
    struct kube_json_node n;
    size_t len;
    char *text = slurp("list-pods.json", &len);

    ck_assert_int_eq(kube_json_list_parse(text, len, &l, NULL), 0);
    ck_assert_str_eq(l.resource_version, "184467");
    ck_assert_str_eq(l.continue_token, "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTg0NDY3LCJzdGFydCI6ImR"
                                       "hdGEvc3FsZWRnZS0wXHUwMDAwIn0");
    ck_assert_uint_eq(l.n_items, 1);
    ck_assert_int_eq(kube_json_pod_from_json(json_array_get(l.items, 0), &p, NULL), 0);
    check_fixture_pod(&p);
    kube_json_pod_free(&p);
    kube_json_list_free(&l);
    kube_json_list_free(&l);
    free(text);

    text = slurp("list-nodes.json", &len);
    ck_assert_int_eq(kube_json_list_parse(text, len, &l, NULL), 0);
    ck_assert_str_eq(l.continue_token, "");
    ck_assert_uint_eq(l.n_items, 1);
    ck_assert_int_eq(kube_json_node_from_json(json_array_get(l.items, 0), &n, NULL), 0);
    ck_assert_str_eq(n.meta.name, "edge-01");
    ck_assert_uint_eq(n.n_taints, 3);
    kube_json_node_free(&n);
    kube_json_list_free(&l);
    free(text);

    /* The remediator's list of heartbeat Leases: one fenced agent naming its
     * peers, one unfenced that names none. */
    text = slurp("list-leases.json", &len);
    ck_assert_int_eq(kube_json_list_parse(text, len, &l, NULL), 0);
    ck_assert_uint_eq(l.n_items, 2);
    {
        struct kube_json_lease a, b;
        ck_assert_int_eq(kube_json_lease_from_json(json_array_get(l.items, 0), &a, NULL), 0);
        ck_assert_int_eq(kube_json_lease_from_json(json_array_get(l.items, 1), &b, NULL), 0);
        ck_assert_str_eq(a.holder, "edge-01");
        ck_assert(a.fenced && !b.fenced);
        ck_assert_str_eq(a.peer_address, "10.0.0.5:9808");
    }
    ck_assert_int_eq(kube_json_lease_names_peer(json_array_get(l.items, 0), "edge-02"), 1);
    ck_assert_int_eq(kube_json_lease_names_peer(json_array_get(l.items, 0), "edge-03"), 1);
    ck_assert_int_eq(kube_json_lease_names_peer(json_array_get(l.items, 0), "edge-04"), 0);
    ck_assert_int_eq(kube_json_lease_names_peer(json_array_get(l.items, 1), "edge-01"), -ENOENT);
    kube_json_list_free(&l);
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Leases                                                                   */

/* A heartbeat Lease as the API server returns it. */
static const char heartbeat_lease[] =
    "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{"
    "\"name\":\"edgewarden-edge-02\",\"namespace\":\"edgewarden\","
    "\"uid\":\"7d3c9e1a-2b4f-4a6c-9d8e-5f1a2b3c4d5e\",\"resourceVersion\":\"184777\","
    "\"creationTimestamp\":\"2024-05-02T08:53:20Z\","
    "\"labels\":{\"edgewarden.io/lease\":\"heartbeat\"},"
    "\"annotations\":{\"edgewarden.io/peer-address\":\"10.244.1.17:9090\","
    "\"edgewarden.io/fenced\":\"true\",\"edgewarden.io/watchdog-timeout\":\"10\","
    "\"edgewarden.io/fenced-until\":\"2024-05-02T10:00:50Z\"}},"
    "\"spec\":{\"holderIdentity\":\"edge-02\",\"leaseDurationSeconds\":40,"
    "\"acquireTime\":\"2024-05-02T08:53:20.000000Z\","
    "\"renewTime\":\"2024-05-02T10:00:00.500000Z\",\"leaseTransitions\":3}}";

static void check_heartbeat_lease(const struct kube_json_lease *l) {
    ck_assert_str_eq(l->meta.name, "edgewarden-edge-02");
    ck_assert_str_eq(l->meta.namespace, "edgewarden");
    ck_assert_str_eq(l->meta.uid, "7d3c9e1a-2b4f-4a6c-9d8e-5f1a2b3c4d5e");
    ck_assert_str_eq(l->meta.resource_version, "184777");
    ck_assert(!l->meta.deleting);
    ck_assert_str_eq(l->holder, "edge-02");
    ck_assert_int_eq(l->duration_s, 40);
    ck_assert_str_eq(l->acquire_time, "2024-05-02T08:53:20.000000Z");
    ck_assert_str_eq(l->renew_time, "2024-05-02T10:00:00.500000Z");
    ck_assert_int_eq(l->transitions, 3);
    ck_assert_str_eq(l->peer_address, "10.244.1.17:9090");
    ck_assert(l->fenced);
    ck_assert_int_eq(l->watchdog_timeout_s, 10);
    ck_assert_str_eq(l->failover_node, "");
    ck_assert_str_eq(l->failover_pods, "");
    ck_assert_int_eq(kube_json_lease_renew_us(l), T0 * 1000000 + 500000);
}

START_TEST(test_lease_parse) {
    static const char slot[] =
        "{\"metadata\":{\"name\":\"edgewarden-failover-0\",\"namespace\":\"edgewarden\","
        "\"annotations\":{\"edgewarden.io/failover-node\":\"edge-01\","
        "\"edgewarden.io/failover-pods\":\"data/sqledge-0/a3c1,data/sqledge-1/b4d2\"}},"
        "\"spec\":{\"holderIdentity\":\"edge-02\",\"leaseDurationSeconds\":300,"
        "\"acquireTime\":\"2024-05-02T10:00:00.000000Z\"}}";
    struct kube_json_lease l;
    struct kube_json_error err = {0};
    json_t *root;

    ck_assert_int_eq(kube_json_lease_parse(heartbeat_lease, strlen(heartbeat_lease), &l, &err), 0);
    check_heartbeat_lease(&l);
    root = json_loads(heartbeat_lease, 0, NULL);
    ck_assert_ptr_nonnull(root);
    memset(&l, 0xa5, sizeof(l));
    ck_assert_int_eq(kube_json_lease_from_json(root, &l, NULL), 0);
    check_heartbeat_lease(&l);
    json_decref(root);

    /* A failover slot: no renewTime yet, unfenced. */
    ck_assert_int_eq(kube_json_lease_parse(slot, strlen(slot), &l, &err), 0);
    ck_assert_str_eq(l.holder, "edge-02");
    ck_assert_int_eq(l.duration_s, 300);
    ck_assert_str_eq(l.renew_time, "");
    ck_assert_int_eq(l.transitions, 0);
    ck_assert_str_eq(l.peer_address, "");
    ck_assert(!l.fenced);
    ck_assert_int_eq(l.watchdog_timeout_s, 0);
    ck_assert_str_eq(l.failover_node, "edge-01");
    ck_assert_str_eq(l.failover_pods, "data/sqledge-0/a3c1,data/sqledge-1/b4d2");
    ck_assert_int_eq(kube_json_lease_renew_us(&l), T0 * 1000000); /* acquireTime */

    /* The bodies edgewarden writes read back as written. */
    {
        const struct kube_json_annotation ann[] = {
            {KUBE_JSON_ANN_PEER_ADDRESS, "[fd00:10:244::17]:9090"},
            {KUBE_JSON_ANN_FENCED, "true"},
            {KUBE_JSON_ANN_WATCHDOG_TIMEOUT, "60"},
        };
        struct kube_json_lease_write w = {
            .namespace = "edgewarden",
            .name = "edgewarden-edge-03",
            .holder = "edge-03",
            .duration_s = 40,
            .acquire_time_us = T0 * 1000000,
            .renew_time_us = T0 * 1000000 + 250000,
            .transitions = 7,
            .resource_version = "5",
            .label = "heartbeat",
            .annotations = ann,
            .n_annotations = 3,
        };
        char *body = NULL;

        ck_assert_int_eq(kube_json_lease_write_body(&w, &body), 0);
        ck_assert_int_eq(kube_json_lease_parse(body, strlen(body), &l, &err), 0);
        free(body);
        ck_assert_str_eq(l.meta.name, "edgewarden-edge-03");
        ck_assert_str_eq(l.meta.resource_version, "5");
        ck_assert_str_eq(l.holder, "edge-03");
        ck_assert_int_eq(l.duration_s, 40);
        ck_assert_int_eq(l.transitions, 7);
        ck_assert_str_eq(l.peer_address, "[fd00:10:244::17]:9090");
        ck_assert(l.fenced);
        ck_assert_int_eq(l.watchdog_timeout_s, 60);
        ck_assert_int_eq(kube_json_lease_renew_us(&l), T0 * 1000000 + 250000);
    }
}
END_TEST

START_TEST(test_lease_minimal) {
    static const char *const minimal[] = {
        "{\"metadata\":{\"name\":\"x\"}}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":null}",
        "{\"metadata\":{\"name\":\"x\"},\"spec\":{}}",
        "{\"metadata\":{\"name\":\"x\",\"annotations\":null},\"spec\":{\"holderIdentity\":null,"
        "\"leaseDurationSeconds\":null,\"renewTime\":null}}",
        "{\"metadata\":{\"name\":\"x\",\"annotations\":[\"edgewarden.io/fenced\"]}}",
    };

    for (size_t i = 0; i < sizeof(minimal) / sizeof(minimal[0]); i++) {
        struct kube_json_lease l;

        memset(&l, 0xa5, sizeof(l));
        ck_assert_msg(kube_json_lease_parse(minimal[i], strlen(minimal[i]), &l, NULL) == 0, "%s",
                      minimal[i]);
        ck_assert_str_eq(l.meta.name, "x");
        ck_assert_str_eq(l.holder, "");
        ck_assert_int_eq(l.duration_s, 0);
        ck_assert_str_eq(l.acquire_time, "");
        ck_assert_str_eq(l.renew_time, "");
        ck_assert_int_eq(l.transitions, 0);
        ck_assert_str_eq(l.peer_address, "");
        ck_assert(!l.fenced);
        ck_assert_int_eq(l.watchdog_timeout_s, 0);
        ck_assert_str_eq(l.failover_node, "");
        ck_assert_str_eq(l.failover_pods, "");
        ck_assert_int_eq(kube_json_lease_renew_us(&l), 0);
    }
}
END_TEST

/* Annotations are advice from another agent: a bad one reads as not set and
 * never fails the Lease. */
START_TEST(test_lease_annotations) {
    enum which { PEER, FENCED, WATCHDOG, NODE, PODS };
    static const struct {
        enum which which;
        const char *json_value; /* the annotation's value as JSON */
        const char *text;       /* PEER, NODE, PODS: the field read */
        int64_t number;         /* FENCED (0/1), WATCHDOG */
    } cases[] = {
        {PEER, "\"10.244.1.17:9090\"", "10.244.1.17:9090", 0},
        {PEER, "\"[fd00::17]:9090\"", "[fd00::17]:9090", 0},
        {PEER, "\"127.0.0.1:1\"", "127.0.0.1:1", 0},
        {PEER, "\"127.0.0.1:65535\"", "127.0.0.1:65535", 0},
        /* A DNS name fits the field (KUBE_JSON_ADDRESS_SIZE); peer_ask()
         * refuses it later (no name resolution). */
        /* A host name is dropped: the roll call resolves no names (peer.h). */
        {PEER, "\"edge-02.example.com:9090\"", "", 0},
        {PEER, "\"10.244.1.17\"", "", 0},
        {PEER, "\"10.244.1.17:\"", "", 0},
        {PEER, "\":9090\"", "", 0},
        {PEER, "\"10.244.1.17:0\"", "", 0},
        {PEER, "\"10.244.1.17:65536\"", "", 0},
        {PEER, "\"10.244.1.17:90x\"", "", 0},
        {PEER, "\"10.244.1.17:90 90\"", "", 0},
        {PEER, "\"10.244.1.17 :9090\"", "", 0},
        {PEER, "\"http://10.244.1.17:9090\"", "", 0},
        {PEER, "\"user@10.244.1.17:9090\"", "", 0},
        {PEER, "\"10.244.1.17:9090?x=1\"", "", 0},
        {PEER, "\"10.244.1.17:9090#x\"", "", 0},
        {PEER, "\"h\\u00e9te:9090\"", "", 0},
        {PEER, "\"a\\tb:9090\"", "", 0},
        {PEER, "\"\"", "", 0},
        {PEER, "9090", "", 0},
        {PEER, "null", "", 0},
        {FENCED, "\"true\"", NULL, 1},
        {FENCED, "\"false\"", NULL, 0},
        {FENCED, "\"True\"", NULL, 0},
        {FENCED, "\"1\"", NULL, 0},
        {FENCED, "\"true \"", NULL, 0},
        {FENCED, "\"\"", NULL, 0},
        {FENCED, "true", NULL, 0},
        {WATCHDOG, "\"10\"", NULL, 10},
        {WATCHDOG, "\"1\"", NULL, 1},
        {WATCHDOG, "\"86400\"", NULL, 86400},
        {WATCHDOG, "\"0\"", NULL, 0},
        {WATCHDOG, "\"86401\"", NULL, 0},
        {WATCHDOG, "\"-10\"", NULL, 0},
        {WATCHDOG, "\"10s\"", NULL, 0},
        {WATCHDOG, "\"1e3\"", NULL, 0},
        {WATCHDOG, "\"\"", NULL, 0},
        {WATCHDOG, "\"99999999999999999999\"", NULL, 0},
        {WATCHDOG, "10", NULL, 0},
        {NODE, "\"edge-01\"", "edge-01", 0},
        {NODE, "\"edge-01.example.com\"", "edge-01.example.com", 0},
        {NODE, "\"Edge_01\"", "", 0},
        {NODE, "\"\"", "", 0},
        {NODE, "[]", "", 0},
        {PODS, "\"data/sqledge-0/a3c1e0f2\"", "data/sqledge-0/a3c1e0f2", 0},
        {PODS, "\"\"", "", 0},
        {PODS, "{}", "", 0},
    };
    static const char *const keys[] = {
        [PEER] = KUBE_JSON_ANN_PEER_ADDRESS,         [FENCED] = KUBE_JSON_ANN_FENCED,
        [WATCHDOG] = KUBE_JSON_ANN_WATCHDOG_TIMEOUT, [NODE] = KUBE_JSON_ANN_FAILOVER_NODE,
        [PODS] = KUBE_JSON_ANN_FAILOVER_PODS,
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_json_lease l;
        struct kube_json_error err = {0};
        char *s;
        int r;

        ck_assert_int_ne(asprintf(&s,
                                  "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"%s\":%s}},"
                                  "\"spec\":{\"holderIdentity\":\"h\"}}",
                                  keys[cases[i].which], cases[i].json_value),
                         -1);
        r = kube_json_lease_parse(s, strlen(s), &l, &err);
        ck_assert_msg(r == 0, "%s: %d %s %s", s, r, err.field, err.problem);
        ck_assert_str_eq(l.holder, "h");
        switch (cases[i].which) {
        case PEER:
            ck_assert_msg(!strcmp(l.peer_address, cases[i].text), "%s: \"%s\"", s, l.peer_address);
            break;
        case FENCED:
            ck_assert_msg(l.fenced == (cases[i].number == 1), "%s", s);
            break;
        case WATCHDOG:
            ck_assert_msg(l.watchdog_timeout_s == cases[i].number, "%s: %lld", s,
                          (long long)l.watchdog_timeout_s);
            break;
        case NODE:
            ck_assert_msg(!strcmp(l.failover_node, cases[i].text), "%s: \"%s\"", s,
                          l.failover_node);
            break;
        case PODS:
            ck_assert_msg(!strcmp(l.failover_pods, cases[i].text), "%s: \"%s\"", s,
                          l.failover_pods);
            break;
        }
        free(s);
    }
}
END_TEST

START_TEST(test_lease_long_fields) {
    struct kube_json_lease l;
    struct kube_json_error err = {0};
    char *holder = repeat('h', KUBE_JSON_NAME_SIZE - 1, "");
    /* The longest usable address: a full IPv6 literal in brackets. */
    char *address = strdup("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535");
    char *pods = repeat('p', KUBE_JSON_PODS_SIZE - 1, "");
    char *s;

    ck_assert_int_ne(asprintf(&s,
                              "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"%s\":\"%s\","
                              "\"%s\":\"%s\"}},\"spec\":{\"holderIdentity\":\"%s\"}}",
                              KUBE_JSON_ANN_PEER_ADDRESS, address, KUBE_JSON_ANN_FAILOVER_PODS,
                              pods, holder),
                     -1);
    ck_assert_int_eq(kube_json_lease_parse(s, strlen(s), &l, &err), 0);
    ck_assert_str_eq(l.holder, holder);
    ck_assert_str_eq(l.peer_address, address);
    ck_assert_str_eq(l.failover_pods, pods);
    free(s);
    free(address);
    /* One byte more: the holder fails the Lease, the address is dropped. */
    address = repeat('a', KUBE_JSON_ADDRESS_SIZE - 5, ":9090");
    ck_assert_int_ne(asprintf(&s, "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"%s\":\"%s\"}}}",
                              KUBE_JSON_ANN_PEER_ADDRESS, address),
                     -1);
    ck_assert_int_eq(kube_json_lease_parse(s, strlen(s), &l, &err), 0);
    ck_assert_str_eq(l.peer_address, "");
    free(s);
    ck_assert_int_ne(
        asprintf(&s, "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"holderIdentity\":\"%sh\"}}",
                 holder),
        -1);
    ck_assert_int_eq(kube_json_lease_parse(s, strlen(s), &l, &err), -EBADMSG);
    ck_assert_str_eq(err.field, "spec.holderIdentity");
    ck_assert_str_eq(err.problem, "too long");
    ck_assert_str_eq(l.meta.name, ""); /* *out left empty */
    free(s);
    free(address);
    free(holder);
    free(pods);
}
END_TEST

/* CONTRACT (kube_json.h: failover_pods "cut when longer"). Reported: a
 * failover-pods annotation of KUBE_JSON_PODS_SIZE bytes or more reads as
 * "" instead of being cut. */
START_TEST(test_lease_failover_pods_cut) {
    /* Static buffers: this test may fail, and a failure must not leak. */
    static char pods[KUBE_JSON_PODS_SIZE + 100], s[sizeof(pods) + 128];
    struct kube_json_lease l;

    memset(pods, 'p', sizeof(pods) - 1);
    snprintf(s, sizeof(s), "{\"metadata\":{\"name\":\"x\",\"annotations\":{\"%s\":\"%s\"}}}",
             KUBE_JSON_ANN_FAILOVER_PODS, pods);
    ck_assert_int_eq(kube_json_lease_parse(s, strlen(s), &l, NULL), 0);
    ck_assert_uint_eq(strlen(l.failover_pods), KUBE_JSON_PODS_SIZE - 1);
    ck_assert(!memcmp(l.failover_pods, pods, KUBE_JSON_PODS_SIZE - 1));
}
END_TEST

/* edgewarden.io/peers: whom a fencing agent's roll call asks; the
 * remediator looks for its own node name in it, exactly. */
START_TEST(test_lease_names_peer) {
    static const struct {
        const char *annotations; /* the metadata.annotations object, or NULL */
        const char *peer;
        int want;
    } cases[] = {
        {"{\"edgewarden.io/peers\": \"node-a,node-b,node-c\"}", "node-a", 1},
        {"{\"edgewarden.io/peers\": \"node-a,node-b,node-c\"}", "node-b", 1},
        {"{\"edgewarden.io/peers\": \"node-a,node-b,node-c\"}", "node-c", 1},
        {"{\"edgewarden.io/peers\": \"node-a\"}", "node-a", 1},
        /* Exact names only: no prefix, suffix or substring. */
        {"{\"edgewarden.io/peers\": \"node-a,node-b\"}", "node", 0},
        {"{\"edgewarden.io/peers\": \"node-a,node-b\"}", "node-a,node-b", 0},
        {"{\"edgewarden.io/peers\": \"node-ab\"}", "node-a", 0},
        {"{\"edgewarden.io/peers\": \"xnode-a\"}", "node-a", 0},
        {"{\"edgewarden.io/peers\": \"node-a \"}", "node-a", 0},
        /* Empty: present, names nobody (a node that knew no live peer). */
        {"{\"edgewarden.io/peers\": \"\"}", "node-a", 0},
        {"{\"edgewarden.io/peers\": \",,\"}", "node-a", 0},
        {"{\"edgewarden.io/peers\": \",node-a,\"}", "node-a", 1},
        /* Absent or not a string: an agent that does not say. */
        {"{}", "node-a", -ENOENT},
        {"{\"edgewarden.io/peers\": [\"node-a\"]}", "node-a", -ENOENT},
        {"{\"edgewarden.io/peers\": null}", "node-a", -ENOENT},
        {"[]", "node-a", -ENOENT},
        {NULL, "node-a", -ENOENT},
        {"{\"edgewarden.io/peers\": \"node-a\"}", "", -EINVAL},
    };
    char text[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *lease;
        int n = cases[i].annotations
                    ? snprintf(text, sizeof(text), "{\"metadata\": {\"annotations\": %s}}",
                               cases[i].annotations)
                    : snprintf(text, sizeof(text), "{\"metadata\": {}}");

        ck_assert_int_lt(n, (int)sizeof(text));
        lease = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(lease);
        ck_assert_msg(kube_json_lease_names_peer(lease, cases[i].peer) == cases[i].want,
                      "case %zu (%s, %s): got %d, want %d", i, text, cases[i].peer,
                      kube_json_lease_names_peer(lease, cases[i].peer), cases[i].want);
        json_decref(lease);
    }
    ck_assert_int_eq(kube_json_lease_names_peer(NULL, "node-a"), -EINVAL);
}
END_TEST

START_TEST(test_lease_renew_us) {
    static const struct {
        const char *renew, *acquire;
        int64_t us;
    } cases[] = {
        {"2024-05-02T10:00:00.500000Z", "", T0 * 1000000 + 500000},
        {"2024-05-02T10:00:00.000001Z", "", T0 * 1000000 + 1},
        {"2024-05-02T10:00:00Z", "", T0 * 1000000},
        {"2024-05-02T10:00:00.5Z", "", T0 * 1000000 + 500000},
        {"2024-05-02T10:00:00.123456789Z", "", T0 * 1000000 + 123456}, /* ns: cut to us */
        {"1970-01-01T00:00:01Z", "", 1000000},
        {"9999-12-31T23:59:59.999999Z", "", INT64_C(253402300799999999)},
        /* renewTime wins over acquireTime; without it acquireTime counts. */
        {"2024-05-02T10:00:00Z", "2024-05-02T08:53:20.000000Z", T0 * 1000000},
        {"", "2024-05-02T08:53:20.000000Z", (T0 - 4000) * 1000000},
        {"", "2024-05-02T08:53:20Z", (T0 - 4000) * 1000000},
        /* Garbage: 0. */
        {"", "", 0},
        {"garbage", "", 0},
        {"2024-05-02T10:00:00", "", 0},
        {"2024-05-02T10:00:00+02:00", "", 0},
        {"2024-05-02T10:00:00.5", "", 0},
        {"2024-05-02T10:00:00ZZ", "", 0},
        {"2024-05-02 10:00:00Z", "", 0},
        {"2024-13-02T10:00:00Z", "", 0},
        {"1969-12-31T23:59:59Z", "", 0},
        {"", "garbage", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_json_lease l = {0};

        snprintf(l.renew_time, sizeof(l.renew_time), "%s", cases[i].renew);
        snprintf(l.acquire_time, sizeof(l.acquire_time), "%s", cases[i].acquire);
        ck_assert_msg(kube_json_lease_renew_us(&l) == cases[i].us, "\"%s\" / \"%s\": %lld",
                      cases[i].renew, cases[i].acquire, (long long)kube_json_lease_renew_us(&l));
    }
    ck_assert_int_eq(kube_json_lease_renew_us(NULL), 0);
}
END_TEST

START_TEST(test_lease_args) {
    struct kube_json_lease l;
    json_t *obj;

    ck_assert_int_eq(kube_json_lease_parse(NULL, 2, &l, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_lease_parse("{}", 2, NULL, NULL), -EINVAL);
    obj = json_object();
    ck_assert_int_eq(kube_json_lease_from_json(obj, NULL, NULL), -EINVAL);
    json_decref(obj);
    ck_assert_int_eq(kube_json_lease_parse("{}", (size_t)KUBE_JSON_MAX_INPUT_BYTES + 1, &l, NULL),
                     -EFBIG);
    /* Not NUL-terminated: only len bytes count. */
    ck_assert_int_eq(kube_json_lease_parse("{\"metadata\":{\"name\":\"x\"}}garbage", 25, &l, NULL),
                     0);
}
END_TEST

/* CONTRACT (kube_json.h: "-EINVAL for a NULL argument", and the Lease has
 * "the same contract as the Node parser"). Reported: a NULL json_t gives
 * -EBADMSG, where kube_json_node_from_json() gives -EINVAL. */
START_TEST(test_lease_from_json_null) {
    struct kube_json_lease l;
    struct kube_json_node n;

    ck_assert_int_eq(kube_json_node_from_json(NULL, &n, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_lease_from_json(NULL, &l, NULL), -EINVAL);
}
END_TEST

/* The pod's controller: only the ownerReference with controller true. */
START_TEST(test_pod_owner) {
    static const struct {
        const char *refs, *uid;
    } cases[] = {
        {"[]", ""},
        {"null", ""},
        {"[{\"kind\":\"ReplicaSet\",\"uid\":\"rs-1\",\"controller\":true}]", "rs-1"},
        {"[{\"kind\":\"Node\",\"uid\":\"n-1\"},{\"kind\":\"StatefulSet\",\"uid\":\"ss-1\","
         "\"controller\":true}]",
         "ss-1"},
        {"[{\"uid\":\"a\",\"controller\":false},{\"uid\":\"b\",\"controller\":\"true\"}]", ""},
        {"[{\"kind\":\"Foo\"},{\"uid\":\"c\",\"controller\":true}]", "c"},
    };
    struct kube_json_pod p;
    size_t len;
    char *text = slurp("pod.json", &len);

    ck_assert_int_eq(kube_json_pod_parse(text, len, &p, NULL), 0);
    ck_assert_str_eq(p.owner_uid, "a3c1e0f2-5d6b-4c7a-8e9f-1b2c3d4e5f60");
    kube_json_pod_free(&p);
    free(text);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s;

        ck_assert_int_ne(
            asprintf(&s, "{\"metadata\":{\"name\":\"p\",\"ownerReferences\":%s}}", cases[i].refs),
            -1);
        ck_assert_msg(kube_json_pod_parse(s, strlen(s), &p, NULL) == 0, "%s", s);
        ck_assert_msg(!strcmp(p.owner_uid, cases[i].uid), "%s: \"%s\"", s, p.owner_uid);
        kube_json_pod_free(&p);
        free(s);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hostile input                                                            */

enum target { POD, NODE, STATUS, WATCH, LIST, LEASE };

struct hostile {
    enum target target;
    const char *text;
    const char *field, *problem;
};

#define MD "\"metadata\":{\"name\":\"x\"}"

static const struct hostile hostile[] = {
    {POD, "", "(document)", "not valid JSON"},
    {POD, "[]", "(document)", "not an object"},
    {POD, "{\"a\":1,\"a\":2}", "(document)", "duplicate key"},
    {POD, "{\"s\":\"\\u0000\"}", "(document)", "not valid JSON"},
    {POD, "{}", "metadata", "missing"},
    {POD, "{\"metadata\":[]}", "metadata", "not an object"},
    {POD, "{\"metadata\":{}}", "metadata.name", "missing"},
    {POD, "{\"metadata\":{\"name\":\"\"}}", "metadata.name", "empty"},
    {POD, "{\"metadata\":{\"name\":7}}", "metadata.name", "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"namespace\":true}}", "metadata.namespace",
     "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"uid\":{}}}", "metadata.uid", "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":12}}", "metadata.resourceVersion",
     "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"deletionTimestamp\":1}}", "metadata.deletionTimestamp",
     "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"labels\":[]}}", "metadata.labels", "not an object"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":1}}}", "metadata.labels[]",
     "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"labels\":{\"\":\"v\"}}}", "metadata.labels[]",
     "empty key"},
    {POD, "{" MD ",\"spec\":3}", "spec", "not an object"},
    {POD, "{" MD ",\"spec\":{\"nodeName\":[]}}", "spec.nodeName", "not a string"},
    {POD, "{" MD ",\"spec\":{\"readinessGates\":{}}}", "spec.readinessGates", "not an array"},
    {POD, "{" MD ",\"spec\":{\"readinessGates\":[1]}}", "spec.readinessGates[].conditionType",
     "not a string"},
    {POD, "{" MD ",\"status\":\"x\"}", "status", "not an object"},
    {POD, "{" MD ",\"status\":{\"phase\":1}}", "status.phase", "not a string"},
    {POD, "{" MD ",\"status\":{\"podIP\":1}}", "status.podIP", "not a string"},
    {POD, "{" MD ",\"status\":{\"podIPs\":[\"1.2.3.4\"]}}", "status.podIPs[]", "not an object"},
    {POD, "{" MD ",\"status\":{\"podIPs\":[{}]}}", "status.podIPs[].ip", "missing"},
    {POD, "{" MD ",\"status\":{\"conditions\":{}}}", "status.conditions[]", "not an array"},
    {POD, "{" MD ",\"status\":{\"conditions\":[[]]}}", "status.conditions[]",
     "entry not an object"},
    {POD, "{" MD ",\"status\":{\"conditions\":[{\"status\":\"True\"}]}}", "status.conditions[]",
     "missing"},
    {POD, "{" MD ",\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":true}]}}",
     "status.conditions[]", "not a string"},
    {POD,
     "{" MD ",\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":\"True\",\"reason\":5}]}}",
     "status.conditions[]", "not a string"},
    {POD, "{" MD ",\"status\":{\"containerStatuses\":[{\"restartCount\":\"3\"}]}}",
     "status.containerStatuses[].restartCount", "not an integer"},
    {POD, "{" MD ",\"status\":{\"containerStatuses\":[{\"restartCount\":-1}]}}",
     "status.containerStatuses[].restartCount", "out of range"},
    {POD, "{" MD ",\"status\":{\"containerStatuses\":[{\"restartCount\":1.5}]}}",
     "status.containerStatuses[].restartCount", "not an integer"},
    {POD, "{" MD ",\"status\":{\"containerStatuses\":[null]}}", "status.containerStatuses[]",
     "not an object"},
    {NODE, "{\"metadata\":null}", "metadata", "missing"},
    {NODE, "{" MD ",\"spec\":{\"taints\":{}}}", "spec.taints", "not an array"},
    {NODE, "{" MD ",\"spec\":{\"taints\":[7]}}", "spec.taints[]", "not an object"},
    {NODE, "{" MD ",\"spec\":{\"taints\":[{\"effect\":\"NoSchedule\"}]}}", "spec.taints[].key",
     "missing"},
    {NODE, "{" MD ",\"spec\":{\"taints\":[{\"key\":\"a\"}]}}", "spec.taints[].effect", "missing"},
    {NODE, "{" MD ",\"spec\":{\"taints\":[{\"key\":\"a\",\"effect\":\"NoSchedule\",\"value\":1}]}}",
     "spec.taints[].value", "not a string"},
    {NODE,
     "{" MD ",\"spec\":{\"taints\":[{\"key\":\"a\",\"effect\":\"NoSchedule\",\"timeAdded\":1}]}}",
     "spec.taints[].timeAdded", "not a string"},
    {NODE,
     "{" MD ",\"spec\":{\"taints\":[{\"key\":\"a\",\"effect\":\"NoSchedule\",\"value\":"
     "\"0123456789012345678901234567890123456789012345678901234567890123\"}]}}",
     "spec.taints[].value", "too long"},
    {NODE, "{" MD ",\"spec\":{\"unschedulable\":\"true\"}}", "spec.unschedulable", "not a boolean"},
    {NODE, "{" MD ",\"status\":{\"conditions\":[{\"type\":\"Ready\"}]}}", "status.conditions[]",
     "missing"},
    {NODE,
     "{" MD ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
     "\"lastHeartbeatTime\":5}]}}",
     "status.conditions[]", "not a string"},
    {STATUS, "{\"kind\":\"Pod\",\"code\":200}", "kind", "not Status"},
    {STATUS, "{\"kind\":\"Status\"}", "code", "missing"},
    {STATUS, "{\"code\":\"409\"}", "code", "not an integer"},
    {STATUS, "{\"code\":4090}", "code", "out of range"},
    {STATUS, "{\"code\":409,\"reason\":[]}", "reason", "not a string"},
    {STATUS, "{\"code\":409,\"details\":1}", "details", "not an object"},
    {STATUS, "{\"code\":429,\"details\":{\"retryAfterSeconds\":-1}}", "details.retryAfterSeconds",
     "out of range"},
    {WATCH, "{\"object\":{}}", "type", "missing"},
    {WATCH, "{\"type\":1,\"object\":{}}", "type", "not a string"},
    {WATCH, "{\"type\":\"added\",\"object\":{}}", "type", "unknown event type"},
    {WATCH, "{\"type\":\"ADDED\"}", "object", "missing"},
    {WATCH, "{\"type\":\"ADDED\",\"object\":[]}", "object", "not an object"},
    {WATCH, "{\"type\":\"ADDED\",\"object\":{\"metadata\":1}}", "object.metadata", "not an object"},
    {WATCH, "{\"type\":\"BOOKMARK\",\"object\":{}}", "object.metadata", "missing"},
    {WATCH, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
     "object.metadata.resourceVersion", "missing"},
    {WATCH, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"\"}}}",
     "object.metadata.resourceVersion", "empty"},
    {WATCH, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\"}}", "code", "missing"},
    {LIST, "{}", "items", "missing"},
    {LIST, "{\"items\":{}}", "items", "not an array"},
    {LIST, "{\"items\":[1]}", "items[]", "not an object"},
    {LIST, "{\"items\":[],\"metadata\":[]}", "metadata", "not an object"},
    {LIST, "{\"items\":[],\"metadata\":{\"resourceVersion\":1}}", "metadata.resourceVersion",
     "not a string"},
    {LIST, "{\"items\":[],\"metadata\":{\"continue\":false}}", "metadata.continue", "not a string"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"ownerReferences\":{}}}", "metadata.ownerReferences",
     "not an array"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"ownerReferences\":[1]}}", "metadata.ownerReferences[]",
     "not an object"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"ownerReferences\":[{\"controller\":true}]}}",
     "metadata.ownerReferences[].uid", "missing"},
    {POD, "{\"metadata\":{\"name\":\"x\",\"ownerReferences\":[{\"controller\":true,\"uid\":5}]}}",
     "metadata.ownerReferences[].uid", "not a string"},
    {LEASE, "", "(document)", "not valid JSON"},
    {LEASE, "[]", "(document)", "not an object"},
    {LEASE, "{}", "metadata", "missing"},
    {LEASE, "{\"metadata\":{}}", "metadata.name", "missing"},
    {LEASE, "{\"metadata\":{\"name\":\"x\",\"uid\":1}}", "metadata.uid", "not a string"},
    {LEASE, "{" MD ",\"spec\":[]}", "spec", "not an object"},
    {LEASE, "{" MD ",\"spec\":{\"holderIdentity\":5}}", "spec.holderIdentity", "not a string"},
    {LEASE, "{" MD ",\"spec\":{\"leaseDurationSeconds\":\"40\"}}", "spec.leaseDurationSeconds",
     "not an integer"},
    {LEASE, "{" MD ",\"spec\":{\"leaseDurationSeconds\":1.5}}", "spec.leaseDurationSeconds",
     "not an integer"},
    {LEASE, "{" MD ",\"spec\":{\"leaseDurationSeconds\":-1}}", "spec.leaseDurationSeconds",
     "out of range"},
    {LEASE, "{" MD ",\"spec\":{\"leaseDurationSeconds\":2147483648}}", "spec.leaseDurationSeconds",
     "out of range"},
    {LEASE, "{" MD ",\"spec\":{\"leaseTransitions\":\"3\"}}", "spec.leaseTransitions",
     "not an integer"},
    {LEASE, "{" MD ",\"spec\":{\"leaseTransitions\":-1}}", "spec.leaseTransitions", "out of range"},
    {LEASE, "{" MD ",\"spec\":{\"acquireTime\":5}}", "spec.acquireTime", "not a string"},
    {LEASE, "{" MD ",\"spec\":{\"renewTime\":[]}}", "spec.renewTime", "not a string"},
    {LEASE, "{" MD ",\"spec\":{\"renewTime\":\"2024-05-02T10:00:00.00000000000000000000Z\"}}",
     "spec.renewTime", "too long"},
};

static int parse_as(enum target t, const char *text, size_t len, struct kube_json_error *err) {
    struct kube_json_pod p;
    struct kube_json_node n;
    struct kube_json_status s;
    struct kube_json_watch_event ev;
    struct kube_json_list l;
    struct kube_json_lease ls;
    int r = -1;

    switch (t) {
    case POD:
        r = kube_json_pod_parse(text, len, &p, err);
        if (r < 0) {
            ck_assert_ptr_null(p.labels.items);
            ck_assert_ptr_null(p.conditions);
        }
        kube_json_pod_free(&p);
        break;
    case NODE:
        r = kube_json_node_parse(text, len, &n, err);
        if (r < 0)
            ck_assert_ptr_null(n.taints);
        kube_json_node_free(&n);
        break;
    case STATUS:
        r = kube_json_status_parse(text, len, &s, err);
        break;
    case WATCH:
        r = kube_json_watch_event_parse(text, len, &ev, err);
        if (r < 0)
            ck_assert_ptr_null(ev.object);
        kube_json_watch_event_free(&ev);
        break;
    case LIST:
        r = kube_json_list_parse(text, len, &l, err);
        if (r < 0)
            ck_assert_ptr_null(l.root);
        kube_json_list_free(&l);
        break;
    case LEASE:
        r = kube_json_lease_parse(text, len, &ls, err);
        if (r < 0)
            ck_assert_str_eq(ls.meta.name, "");
        break;
    }
    return r;
}

START_TEST(test_hostile) {
    const struct hostile *h = &hostile[_i];
    struct kube_json_error err = {NULL, NULL};
    int r = parse_as(h->target, h->text, strlen(h->text), &err);

    ck_assert_msg(r == -EBADMSG, "%s: %d", h->text, r);
    ck_assert_msg(err.field && !strcmp(err.field, h->field) && !strcmp(err.problem, h->problem),
                  "%s: got %s: %s, want %s: %s", h->text, err.field, err.problem, h->field,
                  h->problem);
}
END_TEST

/* An array of n copies of item under prefix ... suffix. */
static char *big_array(const char *prefix, const char *item, size_t n, const char *suffix) {
    size_t size = strlen(prefix) + n * (strlen(item) + 1) + strlen(suffix) + 1;
    char *s = malloc(size), *p = s;

    ck_assert_ptr_nonnull(s);
    p += sprintf(p, "%s", prefix);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? "," : "", item);
    sprintf(p, "%s", suffix);
    return s;
}

START_TEST(test_caps) {
    struct kube_json_error err;
    char *s;

    s = big_array("{" MD ",\"spec\":{\"taints\":[", "{\"key\":\"a\",\"effect\":\"NoSchedule\"}",
                  KUBE_JSON_MAX_ENTRIES, "]}}");
    ck_assert_int_eq(parse_as(NODE, s, strlen(s), &err), 0);
    free(s);
    s = big_array("{" MD ",\"spec\":{\"taints\":[", "{\"key\":\"a\",\"effect\":\"NoSchedule\"}",
                  KUBE_JSON_MAX_ENTRIES + 1, "]}}");
    ck_assert_int_eq(parse_as(NODE, s, strlen(s), &err), -EBADMSG);
    ck_assert_str_eq(err.field, "spec.taints");
    ck_assert_str_eq(err.problem, "too many entries");
    free(s);
    s = big_array("{" MD ",\"status\":{\"conditions\":[", "{\"type\":\"A\",\"status\":\"True\"}",
                  KUBE_JSON_MAX_ENTRIES + 1, "]}}");
    ck_assert_int_eq(parse_as(NODE, s, strlen(s), &err), -EBADMSG);
    ck_assert_str_eq(err.problem, "too many entries");
    free(s);
    s = big_array("{" MD ",\"status\":{\"containerStatuses\":[", "{\"restartCount\":2147483647}",
                  KUBE_JSON_MAX_ENTRIES, "]}}");
    {
        struct kube_json_pod p;

        ck_assert_int_eq(kube_json_pod_parse(s, strlen(s), &p, &err), 0);
        ck_assert_uint_eq(p.restart_count, (uint64_t)2147483647 * KUBE_JSON_MAX_ENTRIES);
        kube_json_pod_free(&p);
    }
    free(s);
    s = big_array("{" MD ",\"status\":{\"containerStatuses\":[", "{}", KUBE_JSON_MAX_ENTRIES + 1,
                  "]}}");
    ck_assert_int_eq(parse_as(POD, s, strlen(s), &err), -EBADMSG);
    ck_assert_str_eq(err.field, "status.containerStatuses");
    free(s);
    s = big_array("{\"items\":[", "{}", KUBE_JSON_MAX_ITEMS + 1, "]}");
    ck_assert_int_eq(parse_as(LIST, s, strlen(s), &err), -EBADMSG);
    ck_assert_str_eq(err.field, "items");
    free(s);
    {
        /* Labels: a map of 257 distinct keys. */
        char *p;

        s = malloc(64 + (KUBE_JSON_MAX_ENTRIES + 1) * 16);
        p = s + sprintf(s, "{\"metadata\":{\"name\":\"x\",\"labels\":{");
        for (int i = 0; i <= KUBE_JSON_MAX_ENTRIES; i++)
            p += sprintf(p, "%s\"k%d\":\"v\"", i ? "," : "", i);
        sprintf(p, "}}}");
        ck_assert_int_eq(parse_as(POD, s, strlen(s), &err), -EBADMSG);
        ck_assert_str_eq(err.field, "metadata.labels");
        free(s);
    }
}
END_TEST

START_TEST(test_deep_and_big) {
    struct kube_json_error err;
    size_t depth = 100000;
    char *s = malloc(depth * 2 + 64), *p = s;

    p += sprintf(p, "{" MD ",\"x\":");
    memset(p, '[', depth);
    memset(p + depth, ']', depth);
    strcpy(p + 2 * depth, "}");
    ck_assert_int_eq(parse_as(POD, s, strlen(s), &err), -EBADMSG);
    ck_assert_str_eq(err.problem, "not valid JSON");
    ck_assert_int_eq(parse_as(WATCH, s, strlen(s), &err), -EBADMSG);
    free(s);
    /* The length is checked before a byte is read. */
    ck_assert_int_eq(parse_as(LIST, "{}", (size_t)KUBE_JSON_MAX_INPUT_BYTES + 1, &err), -EFBIG);
    /* Not NUL-terminated: only len bytes count. */
    ck_assert_int_eq(parse_as(STATUS, "{\"code\":409}garbage", 12, &err), 0);
    /* Invalid UTF-8 is refused by jansson. */
    ck_assert_int_eq(parse_as(POD, "{\"metadata\":{\"name\":\"\xff\"}}", 25, &err), -EBADMSG);
}
END_TEST

START_TEST(test_long_fields) {
    struct kube_json_pod p;
    struct kube_json_error err;
    char *name = repeat('n', 253, "");
    char *s;

    /* A name of 253 bytes fits; 254 is refused, never cut. */
    ck_assert_int_ne(asprintf(&s, "{\"metadata\":{\"name\":\"%s\"}}", name), -1);
    ck_assert_int_eq(kube_json_pod_parse(s, strlen(s), &p, &err), 0);
    ck_assert_str_eq(p.meta.name, name);
    kube_json_pod_free(&p);
    free(s);
    ck_assert_int_ne(asprintf(&s, "{\"metadata\":{\"name\":\"%sn\"}}", name), -1);
    ck_assert_int_eq(kube_json_pod_parse(s, strlen(s), &p, &err), -EBADMSG);
    ck_assert_str_eq(err.field, "metadata.name");
    ck_assert_str_eq(err.problem, "too long");
    free(s);
    free(name);

    /* A long condition reason is cut at a UTF-8 boundary. */
    name = repeat('r', 127, "\xc3\xa9xyz");
    ck_assert_int_ne(asprintf(&s,
                              "{" MD ",\"status\":{\"conditions\":[{\"type\":\"A\",\"status\":"
                              "\"True\",\"reason\":\"%s\"}]}}",
                              name),
                     -1);
    ck_assert_int_eq(kube_json_pod_parse(s, strlen(s), &p, &err), 0);
    name[127] = '\0';
    ck_assert_str_eq(p.conditions[0].reason, name);
    kube_json_pod_free(&p);
    free(s);
    free(name);
}
END_TEST

START_TEST(test_parse_args) {
    struct kube_json_pod p;
    struct kube_json_node n;
    struct kube_json_status st;

    ck_assert_int_eq(kube_json_pod_parse(NULL, 0, &p, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_pod_parse("{}", 2, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_pod_from_json(NULL, &p, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_node_from_json(NULL, &n, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_status_from_json(NULL, &st, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_watch_event_parse(NULL, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_list_parse(NULL, 0, NULL, NULL), -EINVAL);
    ck_assert_str_eq(kube_json_event_type_name(KUBE_JSON_BOOKMARK), "BOOKMARK");
    ck_assert_str_eq(kube_json_event_type_name((enum kube_json_event_type)42), "invalid");
    ck_assert_ptr_null(kube_json_condition_find(NULL, 0, "Ready"));
}
END_TEST

START_TEST(test_minimal_objects) {
    struct kube_json_pod p;
    struct kube_json_node n;
    struct kube_json_watch_event ev;
    const char *pod = "{\"metadata\":{\"name\":\"p\",\"deletionTimestamp\":null},\"status\":{"
                      "\"podIPs\":[{\"ip\":\"fd00::1\"}],\"conditions\":null}}";
    const char *node = "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"unschedulable\":true}}";
    const char *err410 = "{\"type\":\"ERROR\",\"object\":{\"code\":410}}";
    const char *err500 = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500}}";

    ck_assert_int_eq(kube_json_pod_parse(pod, strlen(pod), &p, NULL), 0);
    ck_assert_str_eq(p.pod_ip, "fd00::1"); /* podIPs[0] when podIP is absent */
    ck_assert(!p.meta.deleting);
    ck_assert(!p.has_ready_gate);
    ck_assert_uint_eq(p.n_conditions, 0);
    kube_json_pod_free(&p);
    ck_assert_int_eq(kube_json_node_parse(node, strlen(node), &n, NULL), 0);
    ck_assert(n.unschedulable);
    ck_assert_uint_eq(n.n_taints, 0);
    kube_json_node_free(&n);
    ck_assert_int_eq(kube_json_watch_event_parse(err410, strlen(err410), &ev, NULL), 0);
    ck_assert(ev.relist);
    kube_json_watch_event_free(&ev);
    ck_assert_int_eq(kube_json_watch_event_parse(err500, strlen(err500), &ev, NULL), 0);
    ck_assert(!ev.relist);
    ck_assert_int_eq(ev.status.code, 500);
    kube_json_watch_event_free(&ev);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Label selectors                                                          */

static struct kube_json_labels labels_of(struct kube_json_label *items, size_t n) {
    return (struct kube_json_labels){.items = items, .n = n};
}

START_TEST(test_selector_parse_format) {
    static const struct {
        const char *in, *canonical, *encoded;
    } cases[] = {
        {"", "", ""},
        {"   ", "", ""},
        {"app=sqledge", "app=sqledge", "app%3Dsqledge"},
        {"app==sqledge", "app=sqledge", "app%3Dsqledge"},
        {" app.kubernetes.io/name = sqledge , tier!=test,edgewarden.io/managed, ! canary ",
         "app.kubernetes.io/name=sqledge,tier!=test,edgewarden.io/managed,!canary",
         "app.kubernetes.io%2Fname%3Dsqledge%2Ctier%21%3Dtest%2Cedgewarden.io%2Fmanaged%2C%"
         "21canary"},
        {"a=", "a=", "a%3D"},
        {"a!=", "a!=", "a%21%3D"},
        {"A_b.c-D=X_y.z-9", "A_b.c-D=X_y.z-9", "A_b.c-D%3DX_y.z-9"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_json_selector sel;
        char out[512];

        ck_assert_msg(kube_json_selector_parse(cases[i].in, &sel, NULL) == 0, "%s", cases[i].in);
        ck_assert_int_eq(kube_json_selector_format(&sel, false, out, sizeof(out)), 0);
        ck_assert_str_eq(out, cases[i].canonical);
        ck_assert_int_eq(kube_json_selector_format(&sel, true, out, sizeof(out)), 0);
        ck_assert_str_eq(out, cases[i].encoded);
    }
}
END_TEST

START_TEST(test_selector_invalid) {
    static const struct {
        const char *in, *problem;
    } cases[] = {
        {",", "empty term"},
        {"a=b,", "empty term"},
        {"a=b,,c", "empty term"},
        {"env in (prod)", "set-based selectors are not supported"},
        {"env notin (a,b)", "set-based selectors are not supported"},
        {"a b", "set-based selectors are not supported"},
        {"a>1", "set-based selectors are not supported"},
        {"=b", "invalid key"},
        {"-a=b", "invalid key"},
        {"a/b/c=d", "invalid key"},
        {"Bad.Prefix/a=b", "invalid key"},
        {"!", "invalid key"},
        {"!=x", "invalid key"},
        {"a=b=c", "invalid value"},
        {"a=-b", "invalid value"},
        {"a=b c", "invalid value"},
        {"a=0123456789012345678901234567890123456789012345678901234567890123", "invalid value"},
        {"0123456789012345678901234567890123456789012345678901234567890123=a", "invalid key"},
    };
    struct kube_json_selector sel;
    struct kube_json_error err;
    char many[256];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.problem = NULL;
        ck_assert_msg(kube_json_selector_parse(cases[i].in, &sel, &err) == -EINVAL, "%s",
                      cases[i].in);
        ck_assert_msg(err.problem && !strcmp(err.problem, cases[i].problem), "%s: %s", cases[i].in,
                      err.problem);
        ck_assert_str_eq(err.field, "labelSelector");
        ck_assert_uint_eq(sel.n, 0);
    }
    for (int i = 0; i <= KUBE_JSON_MAX_SELECTOR; i++)
        n += (size_t)sprintf(many + n, "%sk%d", i ? "," : "", i);
    ck_assert_int_eq(kube_json_selector_parse(many, &sel, &err), -EINVAL);
    ck_assert_str_eq(err.problem, "too many terms");
    *strrchr(many, ',') = '\0';
    ck_assert_int_eq(kube_json_selector_parse(many, &sel, &err), 0);
    ck_assert_uint_eq(sel.n, KUBE_JSON_MAX_SELECTOR);
    ck_assert_int_eq(kube_json_selector_format(&sel, false, many, 8), -ENOSPC);
    ck_assert_str_eq(many, "");
    ck_assert_int_eq(kube_json_selector_parse(NULL, &sel, &err), -EINVAL);
}
END_TEST

START_TEST(test_selector_match) {
    struct kube_json_label items[] = {
        {"app.kubernetes.io/name", "sqledge"}, {"tier", "prod"}, {"empty", ""}};
    struct kube_json_labels l = labels_of(items, 3), none = labels_of(NULL, 0);
    static const struct {
        const char *sel;
        bool on_labels, on_none;
    } cases[] = {
        {"", true, true},
        {"app.kubernetes.io/name=sqledge", true, false},
        {"app.kubernetes.io/name=other", false, false},
        {"tier!=test", true, true},
        {"tier!=prod", false, true},
        {"tier", true, false},
        {"!tier", false, true},
        {"!canary", true, true},
        {"empty=", true, false},
        {"empty", true, false},
        {"missing=", false, false},
        {"app.kubernetes.io/name=sqledge,tier=prod,!canary", true, false},
        {"app.kubernetes.io/name=sqledge,tier=dev", false, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kube_json_selector sel;

        ck_assert_int_eq(kube_json_selector_parse(cases[i].sel, &sel, NULL), 0);
        ck_assert_msg(kube_json_labels_match(&l, &sel) == cases[i].on_labels, "%s", cases[i].sel);
        ck_assert_msg(kube_json_labels_match(&none, &sel) == cases[i].on_none, "%s", cases[i].sel);
        ck_assert(kube_json_labels_match(NULL, &sel) == cases[i].on_none);
    }
    ck_assert(kube_json_labels_match(&l, NULL));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

START_TEST(test_urls) {
    char u[KUBE_JSON_URL_SIZE];
    struct kube_json_selector sel;
    struct kube_json_query watch = {
        .watch = true, .resource_version = "184600", .timeout_seconds = 290};
    struct kube_json_query list = {.limit = 500, .continue_token = "eyJ2Ij+/="};
    struct kube_json_query bad = {.watch = true, .continue_token = "x"};

    ck_assert_int_eq(
        kube_json_selector_parse("app.kubernetes.io/name=sqledge,tier!=test", &sel, NULL), 0);
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "edge-01", &sel, &watch), 0);
    ck_assert_str_eq(u, "/api/v1/pods?fieldSelector=spec.nodeName%3Dedge-01&labelSelector="
                        "app.kubernetes.io%2Fname%3Dsqledge%2Ctier%21%3Dtest&watch=1&"
                        "allowWatchBookmarks=true&resourceVersion=184600&timeoutSeconds=290");
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "edge-01", NULL, &list), 0);
    ck_assert_str_eq(u, "/api/v1/pods?fieldSelector=spec.nodeName%3Dedge-01&limit=500&continue="
                        "eyJ2Ij%2B%2F%3D");
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "edge-01", NULL, NULL), 0);
    ck_assert_str_eq(u, "/api/v1/pods?fieldSelector=spec.nodeName%3Dedge-01");
    ck_assert_int_eq(kube_json_url_own_node(u, sizeof(u), "edge-01", &watch), 0);
    ck_assert_str_eq(u, "/api/v1/nodes?fieldSelector=metadata.name%3Dedge-01&watch=1&"
                        "allowWatchBookmarks=true&resourceVersion=184600&timeoutSeconds=290");
    ck_assert_int_eq(kube_json_url_own_node(u, sizeof(u), "edge-01", NULL), 0);
    ck_assert_str_eq(u, "/api/v1/nodes?fieldSelector=metadata.name%3Dedge-01");
    ck_assert_int_eq(kube_json_url_node(u, sizeof(u), "edge-01.example.com"), 0);
    ck_assert_str_eq(u, "/api/v1/nodes/edge-01.example.com");
    ck_assert_int_eq(kube_json_url_node_status(u, sizeof(u), "edge-01"), 0);
    ck_assert_str_eq(u, "/api/v1/nodes/edge-01/status");
    ck_assert_int_eq(kube_json_url_pod_status(u, sizeof(u), "data", "sqledge-0"), 0);
    ck_assert_str_eq(u, "/api/v1/namespaces/data/pods/sqledge-0/status");
    ck_assert_int_eq(kube_json_url_events(u, sizeof(u), "default"), 0);
    ck_assert_str_eq(u, "/apis/events.k8s.io/v1/namespaces/default/events");
    ck_assert_int_eq(kube_json_url_lease(u, sizeof(u), "edgewarden", NULL), 0);
    ck_assert_str_eq(u, "/apis/coordination.k8s.io/v1/namespaces/edgewarden/leases");
    ck_assert_int_eq(kube_json_url_lease(u, sizeof(u), "edgewarden", "edge-01"), 0);
    ck_assert_str_eq(u, "/apis/coordination.k8s.io/v1/namespaces/edgewarden/leases/"
                        "edgewarden-edge-01");

    /* Refused: names that are not DNS names (they would need escaping in a
     * field selector), a continue token in a watch, a buffer too small. */
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "edge,01", NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "a=b", NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "", NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pods(u, sizeof(u), "edge-01", NULL, &bad), -EINVAL);
    ck_assert_int_eq(kube_json_url_own_node(u, sizeof(u), "Edge", NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_node(u, sizeof(u), "a..b"), -EINVAL);
    ck_assert_int_eq(kube_json_url_node(u, sizeof(u), "-a"), -EINVAL);
    ck_assert_int_eq(kube_json_url_node(u, sizeof(u), NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod_status(u, sizeof(u), "a.b", "p"), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod_status(u, sizeof(u), "ns", "p/q"), -EINVAL);
    ck_assert_int_eq(kube_json_url_events(u, sizeof(u), ""), -EINVAL);
    ck_assert_int_eq(kube_json_url_lease(u, sizeof(u), "ns", "x_y"), -EINVAL);
    ck_assert_int_eq(kube_json_url_node(u, 10, "edge-01"), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_pods(u, 60, "edge-01", &sel, NULL), -ENOSPC);
    ck_assert_int_eq(kube_json_url_node(NULL, 10, "edge-01"), -EINVAL);
    ck_assert_int_eq(kube_json_url_node(u, 0, "edge-01"), -EINVAL);
}
END_TEST

/* The remediator's collections: '?' starts the query, '&' joins the rest. */
START_TEST(test_urls_collections) {
    char u[KUBE_JSON_URL_SIZE];
    struct kube_json_selector heartbeat, sql, none = {.n = 0};
    struct kube_json_query watch = {
        .watch = true, .resource_version = "184600", .timeout_seconds = 290};
    struct kube_json_query list = {.limit = 500, .continue_token = "eyJ2Ij+/="};
    struct kube_json_query empty = {0};
    struct kube_json_query timeout_only = {.timeout_seconds = 30};
    struct kube_json_query rv_only = {.resource_version = "5"};
    struct kube_json_query bad = {.watch = true, .continue_token = "x"};

#define LEASES  "/apis/coordination.k8s.io/v1/namespaces/edgewarden/leases"
#define WATCH_Q "watch=1&allowWatchBookmarks=true&resourceVersion=184600&timeoutSeconds=290"
#define LIST_Q  "limit=500&continue=eyJ2Ij%2B%2F%3D"
    ck_assert_int_eq(kube_json_selector_parse("edgewarden.io/lease=heartbeat", &heartbeat, NULL),
                     0);
    ck_assert_int_eq(
        kube_json_selector_parse("app.kubernetes.io/name=sqledge,tier!=test", &sql, NULL), 0);

    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, NULL, NULL), 0);
    ck_assert_str_eq(u, LEASES);
    ck_assert_int_eq(
        kube_json_url_leases(u, sizeof(u), "edgewarden", "edgewarden-remediator", NULL, NULL), 0);
    ck_assert_str_eq(u, LEASES "/edgewarden-remediator");
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &heartbeat, NULL), 0);
    ck_assert_str_eq(u, LEASES "?labelSelector=edgewarden.io%2Flease%3Dheartbeat");
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &heartbeat, &watch), 0);
    ck_assert_str_eq(u, LEASES "?labelSelector=edgewarden.io%2Flease%3Dheartbeat&" WATCH_Q);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &heartbeat, &list), 0);
    ck_assert_str_eq(u, LEASES "?labelSelector=edgewarden.io%2Flease%3Dheartbeat&" LIST_Q);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, NULL, &watch), 0);
    ck_assert_str_eq(u, LEASES "?" WATCH_Q);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &none, &list), 0);
    ck_assert_str_eq(u, LEASES "?" LIST_Q);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &none, &empty), 0);
    ck_assert_str_eq(u, LEASES);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, NULL, &timeout_only),
                     0);
    ck_assert_str_eq(u, LEASES "?timeoutSeconds=30");
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &heartbeat, &rv_only),
                     0);
    ck_assert_str_eq(u,
                     LEASES "?labelSelector=edgewarden.io%2Flease%3Dheartbeat&resourceVersion=5");

    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), NULL), 0);
    ck_assert_str_eq(u, "/api/v1/nodes");
    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), &watch), 0);
    ck_assert_str_eq(u, "/api/v1/nodes?" WATCH_Q);
    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), &list), 0);
    ck_assert_str_eq(u, "/api/v1/nodes?" LIST_Q);
    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), &empty), 0);
    ck_assert_str_eq(u, "/api/v1/nodes");
    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), &rv_only), 0);
    ck_assert_str_eq(u, "/api/v1/nodes?resourceVersion=5");

    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), NULL, NULL), 0);
    ck_assert_str_eq(u, "/api/v1/pods");
    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), &sql, NULL), 0);
    ck_assert_str_eq(u, "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dsqledge%2Ctier%21%"
                        "3Dtest");
    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), &sql, &watch), 0);
    ck_assert_str_eq(u, "/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Dsqledge%2Ctier%21%"
                        "3Dtest&" WATCH_Q);
    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), NULL, &list), 0);
    ck_assert_str_eq(u, "/api/v1/pods?" LIST_Q);
    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), &none, &timeout_only), 0);
    ck_assert_str_eq(u, "/api/v1/pods?timeoutSeconds=30");

    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), "data", "sqledge-0"), 0);
    ck_assert_str_eq(u, "/api/v1/namespaces/data/pods/sqledge-0");
    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), "data", "sqledge-0.example"), 0);
    ck_assert_str_eq(u, "/api/v1/namespaces/data/pods/sqledge-0.example");

    /* Refused: a name with a query, bad names, a continue token in a watch,
     * a buffer too small (always left ""). */
    ck_assert_int_eq(
        kube_json_url_leases(u, sizeof(u), "edgewarden", "edgewarden-remediator", &heartbeat, NULL),
        -EINVAL);
    ck_assert_int_eq(
        kube_json_url_leases(u, sizeof(u), "edgewarden", "edgewarden-remediator", NULL, &watch),
        -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "Edgewarden", NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", "x_y", NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", "", NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(u, sizeof(u), "edgewarden", NULL, &heartbeat, &bad),
                     -EINVAL);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_nodes(u, sizeof(u), &bad), -EINVAL);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_pods_all(u, sizeof(u), &sql, &bad), -EINVAL);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), "a.b", "p"), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), "data", "p/q"), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), "data", NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod(u, sizeof(u), NULL, "p"), -EINVAL);
    ck_assert_int_eq(kube_json_url_nodes(u, 13, NULL), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_nodes(u, 14, NULL), 0); /* "/api/v1/nodes" + NUL */
    ck_assert_int_eq(kube_json_url_nodes(u, 20, &watch), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_leases(u, 40, "edgewarden", NULL, NULL, NULL), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(
        kube_json_url_leases(u, sizeof(LEASES) + 5, "edgewarden", NULL, &heartbeat, NULL), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_pods_all(u, 30, &sql, NULL), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_pod(u, 20, "data", "sqledge-0"), -ENOSPC);
    ck_assert_str_eq(u, "");
    ck_assert_int_eq(kube_json_url_nodes(NULL, 10, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pods_all(u, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_leases(NULL, 10, "edgewarden", NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(kube_json_url_pod(NULL, 10, "data", "p"), -EINVAL);
#undef LEASES
#undef WATCH_Q
#undef LIST_Q
}
END_TEST

int main(void) {
    Suite *s = suite_create("kube_json");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_pod_ready_patch);
    tcase_add_test(tc, test_node_condition_patch);
    tcase_add_test(tc, test_condition_patch_args);
    tcase_add_test(tc, test_event_body);
    tcase_add_test(tc, test_event_note_cut);
    tcase_add_test(tc, test_event_args);
    tcase_add_test(tc, test_lease_body);
    tcase_add_test(tc, test_lease_write_body);
    tcase_add_test(tc, test_lease_write_args);
    tcase_add_test(tc, test_lease_write_empty_holder);
    tcase_add_test(tc, test_pod_force_delete_body);
    tcase_add_loop_test(tc, test_taint_edit, 0, sizeof(taint_cases) / sizeof(taint_cases[0]));
    tcase_add_test(tc, test_taint_edit_args);
    tcase_add_loop_test(tc, test_taint_set, 0,
                        sizeof(taint_set_cases) / sizeof(taint_set_cases[0]));
    tcase_add_test(tc, test_taint_set_args);
    tcase_add_test(tc, test_taint_set_identical_untimed);
    tcase_add_test(tc, test_fixture_node);
    tcase_add_test(tc, test_fixture_pod);
    tcase_add_test(tc, test_fixture_statuses);
    tcase_add_test(tc, test_fixture_watch);
    tcase_add_test(tc, test_fixture_lists);
    tcase_add_test(tc, test_lease_parse);
    tcase_add_test(tc, test_lease_minimal);
    tcase_add_test(tc, test_lease_annotations);
    tcase_add_test(tc, test_lease_long_fields);
    tcase_add_test(tc, test_lease_failover_pods_cut);
    tcase_add_test(tc, test_lease_renew_us);
    tcase_add_test(tc, test_lease_names_peer);
    tcase_add_test(tc, test_lease_args);
    tcase_add_test(tc, test_lease_from_json_null);
    tcase_add_test(tc, test_pod_owner);
    tcase_add_loop_test(tc, test_hostile, 0, sizeof(hostile) / sizeof(hostile[0]));
    tcase_add_test(tc, test_caps);
    tcase_add_test(tc, test_deep_and_big);
    tcase_add_test(tc, test_long_fields);
    tcase_add_test(tc, test_parse_args);
    tcase_add_test(tc, test_minimal_objects);
    tcase_add_test(tc, test_selector_parse_format);
    tcase_add_test(tc, test_selector_invalid);
    tcase_add_test(tc, test_selector_match);
    tcase_add_test(tc, test_urls);
    tcase_add_test(tc, test_urls_collections);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
