/*
 * The JSON the agent exchanges with the Kubernetes API server, and the URLs
 * it sends it to. Parsers read watch event lines, list responses, Pods, Nodes
 * and Statuses into caller-owned structs with bounded strings; builders turn
 * the policy's actions (policy.h) into the exact bodies the reporter sends:
 * condition patches, the taint list edit, Events and the heartbeat Lease.
 * Everything from the server is treated as hostile: a wrong type, a missing
 * required field, an over-long identifier or an array over its cap fails the
 * whole object with -EBADMSG and a static reason, never a crash and never a
 * silently shortened name. The module is pure: no I/O, no logging, no clock
 * (every time is passed in, as unix seconds or microseconds). The caller owns
 * every struct; parsed structs that hold arrays or JSON are released with
 * their _free(), builders return new references or malloc'd strings.
 * docs/kubernetes-api.md shows the requests with bodies from the tests.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Bounds. A string field longer than its buffer is refused (-EBADMSG),
 * except reasons and messages, which are cut at a UTF-8 boundary. */
#define KUBE_JSON_MAX_INPUT_BYTES (64u * 1024 * 1024) /* one watch line or list response */
#define KUBE_JSON_MAX_ITEMS       8192                /* items[] of a list */
#define KUBE_JSON_MAX_ENTRIES     256 /* taints, conditions, containers, labels, gates */
#define KUBE_JSON_MAX_SELECTOR    32  /* requirements in a label selector */

#define KUBE_JSON_NAME_SIZE      254  /* DNS subdomain: 253 bytes */
#define KUBE_JSON_NAMESPACE_SIZE 64   /* DNS label: 63 bytes */
#define KUBE_JSON_UID_SIZE       64   /* a UUID is 36 */
#define KUBE_JSON_RV_SIZE        64   /* resourceVersion: opaque, etcd's is a uint64 */
#define KUBE_JSON_CONTINUE_SIZE  2048 /* list continue token */
#define KUBE_JSON_KEY_SIZE       318  /* qualified name: 253 prefix + '/' + 63 */
#define KUBE_JSON_VALUE_SIZE     64   /* label value, taint value: 63 bytes */
#define KUBE_JSON_WORD_SIZE      32   /* status "True", effect, phase, event type */
#define KUBE_JSON_TIME_SIZE      40   /* RFC 3339, with microseconds at most 27 */
#define KUBE_JSON_IP_SIZE        48   /* an IPv6 address is at most 45 */
#define KUBE_JSON_REASON_SIZE    129  /* cut: CamelCase reason */
#define KUBE_JSON_MESSAGE_SIZE   257  /* cut: human message */
#define KUBE_JSON_NOTE_MAX_BYTES 1024 /* Event note, cut at a UTF-8 boundary */
#define KUBE_JSON_URL_SIZE       2048 /* a buffer that fits every URL built here */

#define KUBE_JSON_REPORTING_CONTROLLER "edgewarden.io/agent"
#define KUBE_JSON_INSTANCE_PREFIX      "edgewarden-" /* + node: Lease name, reportingInstance */

/* Why a parse failed: both strings are static, never NULL after a failure
 * ("spec.taints[].key", "not a string"). Every parser takes a pointer to one,
 * or NULL when the caller does not care. */
struct kube_json_error {
    const char *field;
    const char *problem;
};

/* ------------------------------------------------------------------------ */
/* Parsed objects                                                           */

struct kube_json_meta {
    char name[KUBE_JSON_NAME_SIZE];
    char namespace[KUBE_JSON_NAMESPACE_SIZE]; /* "" for cluster-scoped objects */
    char uid[KUBE_JSON_UID_SIZE];
    char resource_version[KUBE_JSON_RV_SIZE];
    bool deleting; /* metadata.deletionTimestamp is set */
};

struct kube_json_label {
    char key[KUBE_JSON_KEY_SIZE];
    char value[KUBE_JSON_VALUE_SIZE];
};

/* A label map in the server's key order; items owned, n <= MAX_ENTRIES. */
struct kube_json_labels {
    struct kube_json_label *items;
    size_t n;
};

/* A Pod or Node condition. Times are the server's text, "" when absent. */
struct kube_json_condition {
    char type[KUBE_JSON_KEY_SIZE];
    char status[KUBE_JSON_WORD_SIZE]; /* "True", "False", "Unknown" */
    char reason[KUBE_JSON_REASON_SIZE];
    char message[KUBE_JSON_MESSAGE_SIZE];
    char last_heartbeat_time[KUBE_JSON_TIME_SIZE];
    char last_transition_time[KUBE_JSON_TIME_SIZE];
};

struct kube_json_taint {
    char key[KUBE_JSON_KEY_SIZE];
    char value[KUBE_JSON_VALUE_SIZE];     /* "" when absent */
    char effect[KUBE_JSON_WORD_SIZE];     /* NoSchedule, PreferNoSchedule, NoExecute */
    char time_added[KUBE_JSON_TIME_SIZE]; /* "" when absent */
};

struct kube_json_pod {
    struct kube_json_meta meta;
    struct kube_json_labels labels;
    char node_name[KUBE_JSON_NAME_SIZE]; /* spec.nodeName; "" before scheduling */
    bool has_ready_gate;                 /* spec.readinessGates names edgewarden.io/sqledge-ready */
    char phase[KUBE_JSON_WORD_SIZE];
    char pod_ip[KUBE_JSON_IP_SIZE];         /* status.podIP, else status.podIPs[0].ip; "" */
    struct kube_json_condition *conditions; /* owned; n_conditions <= MAX_ENTRIES */
    size_t n_conditions;
    uint64_t restart_count;             /* sum of status.containerStatuses[].restartCount */
    char owner_uid[KUBE_JSON_UID_SIZE]; /* the controller ownerReference's uid; "" */
};

struct kube_json_node {
    struct kube_json_meta meta;
    struct kube_json_taint *taints; /* owned, the server's order; n_taints <= MAX_ENTRIES */
    size_t n_taints;
    bool unschedulable;
    struct kube_json_condition *conditions; /* owned */
    size_t n_conditions;
};

/* A meta/v1 Status. retry_after_seconds is 0 when absent. */
/* The annotations and label edgewarden writes on its Leases
 * (docs/node-loss.md). */
#define KUBE_JSON_LEASE_LABEL          "edgewarden.io/lease" /* heartbeat, failover */
#define KUBE_JSON_ANN_PEER_ADDRESS     "edgewarden.io/peer-address"
#define KUBE_JSON_ANN_FENCED           "edgewarden.io/fenced"
#define KUBE_JSON_ANN_WATCHDOG_TIMEOUT "edgewarden.io/watchdog-timeout"
#define KUBE_JSON_ANN_FENCED_UNTIL     "edgewarden.io/fenced-until"
#define KUBE_JSON_ANN_PEERS            "edgewarden.io/peers" /* node,node,...: its roll call */
#define KUBE_JSON_ANN_FAILOVER_NODE    "edgewarden.io/failover-node"
#define KUBE_JSON_ANN_FAILOVER_PODS    "edgewarden.io/failover-pods"
#define KUBE_JSON_ADDRESS_SIZE         262  /* HOST:PORT, a DNS name of 253 at most */
#define KUBE_JSON_PODS_SIZE            1024 /* failover-pods: ns/name/uid,... */
/* The longest annotation value a Lease write takes: edgewarden.io/peers, 256
 * node names of up to 253 bytes with their commas. */
#define KUBE_JSON_ANNOTATION_MAX_BYTES 65536

/* A coordination.k8s.io/v1 Lease: the spec, and edgewarden's annotations
 * (absent or malformed annotations read as not set: they are advice from
 * another agent, never a reason to drop the Lease). */
struct kube_json_lease {
    struct kube_json_meta meta;
    char holder[KUBE_JSON_NAME_SIZE]; /* spec.holderIdentity; "" when absent */
    int64_t duration_s;               /* spec.leaseDurationSeconds; 0 when absent */
    char acquire_time[KUBE_JSON_TIME_SIZE];
    char renew_time[KUBE_JSON_TIME_SIZE];
    int64_t transitions;                       /* spec.leaseTransitions; 0 when absent */
    char peer_address[KUBE_JSON_ADDRESS_SIZE]; /* "" when absent or unusable */
    bool fenced;                               /* "true" exactly */
    int64_t watchdog_timeout_s;                /* 0 when absent or not 1..86400 */
    char failover_node[KUBE_JSON_NAME_SIZE];
    char failover_pods[KUBE_JSON_PODS_SIZE]; /* cut when longer */
};

struct kube_json_status {
    int code;
    char reason[KUBE_JSON_REASON_SIZE]; /* "Conflict", "Expired", "TooManyRequests" */
    char message[KUBE_JSON_MESSAGE_SIZE];
    int retry_after_seconds;
};

enum kube_json_event_type {
    KUBE_JSON_ADDED,
    KUBE_JSON_MODIFIED,
    KUBE_JSON_DELETED,
    KUBE_JSON_BOOKMARK,
    KUBE_JSON_ERROR,
};

/* One line of a watch stream. object is a new reference owned by the event
 * (released by kube_json_watch_event_free); parse it with
 * kube_json_pod_from_json() or kube_json_node_from_json(). */
struct kube_json_watch_event {
    enum kube_json_event_type type;
    json_t *object;
    /* object.metadata.resourceVersion when it has one; always for BOOKMARK,
     * the point to resume the watch from. */
    char resource_version[KUBE_JSON_RV_SIZE];
    struct kube_json_status status; /* ERROR only */
    /* ERROR with code 410 (Gone / Expired): the resourceVersion is too old;
     * list again and watch from the list's resourceVersion. */
    bool relist;
};

/* A list response. root is a new reference held by the list; items is
 * borrowed from root (a JSON array, n_items <= MAX_ITEMS, every item an
 * object). */
struct kube_json_list {
    json_t *root;
    json_t *items;
    size_t n_items;
    char resource_version[KUBE_JSON_RV_SIZE];
    char continue_token[KUBE_JSON_CONTINUE_SIZE]; /* "" on the last page */
};

/* The parsers. From bytes: text is borrowed, need not be NUL-terminated, and
 * at most KUBE_JSON_MAX_INPUT_BYTES (-EFBIG). From JSON: the value is
 * borrowed. All return 0, -EBADMSG (err says why; *out is left empty), -EINVAL
 * for a NULL argument, or -ENOMEM. On success *out is owned by the caller and
 * released with the matching _free(), which is a no-op on an empty struct;
 * after a failure calling it is harmless. */
int kube_json_watch_event_parse(const char *text, size_t len, struct kube_json_watch_event *out,
                                struct kube_json_error *err);
void kube_json_watch_event_free(struct kube_json_watch_event *ev);

int kube_json_list_parse(const char *text, size_t len, struct kube_json_list *out,
                         struct kube_json_error *err);
void kube_json_list_free(struct kube_json_list *list);

int kube_json_pod_parse(const char *text, size_t len, struct kube_json_pod *out,
                        struct kube_json_error *err);
int kube_json_pod_from_json(const json_t *pod, struct kube_json_pod *out,
                            struct kube_json_error *err);
void kube_json_pod_free(struct kube_json_pod *pod);

int kube_json_node_parse(const char *text, size_t len, struct kube_json_node *out,
                         struct kube_json_error *err);
int kube_json_node_from_json(const json_t *node, struct kube_json_node *out,
                             struct kube_json_error *err);
void kube_json_node_free(struct kube_json_node *node);
/* A Lease; nothing to free. Same contract as the Node parser. */
int kube_json_lease_parse(const char *text, size_t len, struct kube_json_lease *out,
                          struct kube_json_error *err);
int kube_json_lease_from_json(const json_t *lease, struct kube_json_lease *out,
                              struct kube_json_error *err);
/* Its renewTime (else acquireTime) as unix microseconds; 0 when neither
 * parses. */
int64_t kube_json_lease_renew_us(const struct kube_json_lease *l);
/* Whether the Lease's edgewarden.io/peers annotation (the peers its agent's
 * roll call asks: node names separated by commas) names peer exactly: 1 or
 * 0; -ENOENT when the annotation is absent or not a string, -EINVAL for a
 * NULL or empty argument. */
int kube_json_lease_names_peer(const json_t *lease, const char *peer);
/* The same test on the annotation's value: whether the comma-separated list
 * holds peer as one of its items. False for a NULL or empty peer. */
bool kube_json_peers_has(const char *list, const char *peer);

/* Status needs no _free(): it holds no allocation. */
int kube_json_status_parse(const char *text, size_t len, struct kube_json_status *out,
                           struct kube_json_error *err);
int kube_json_status_from_json(const json_t *status, struct kube_json_status *out,
                               struct kube_json_error *err);

/* The condition of that type in c[0..n), borrowed from c; NULL when absent. */
const struct kube_json_condition *kube_json_condition_find(const struct kube_json_condition *c,
                                                           size_t n, const char *type);
/* "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"; "invalid" otherwise. */
const char *kube_json_event_type_name(enum kube_json_event_type t);

/* ------------------------------------------------------------------------ */
/* Label selectors                                                          */

enum kube_json_selector_op {
    KUBE_JSON_SEL_EQUALS,     /* key=value, key==value */
    KUBE_JSON_SEL_NOT_EQUALS, /* key!=value: also true when key is absent */
    KUBE_JSON_SEL_EXISTS,     /* key */
    KUBE_JSON_SEL_NOT_EXISTS, /* !key */
};

struct kube_json_requirement {
    enum kube_json_selector_op op;
    char key[KUBE_JSON_KEY_SIZE];
    char value[KUBE_JSON_VALUE_SIZE];
};

/* An equality-based selector: all requirements must hold. Embeddable, no
 * allocation; n == 0 matches everything. */
struct kube_json_selector {
    struct kube_json_requirement items[KUBE_JSON_MAX_SELECTOR];
    size_t n;
};

/* Parse "a=b,c!=d,e,!f" (spaces around terms and operators allowed; "" is the
 * empty selector). Keys are qualified names, values label values. 0, or
 * -EINVAL with err saying why (set-based "in"/"notin", a bad key or value,
 * an empty term, more than KUBE_JSON_MAX_SELECTOR terms). text is borrowed. */
int kube_json_selector_parse(const char *text, struct kube_json_selector *out,
                             struct kube_json_error *err);
/* Whether labels (borrowed; NULL reads as no labels) satisfy sel (borrowed). */
bool kube_json_labels_match(const struct kube_json_labels *labels,
                            const struct kube_json_selector *sel);
/* The canonical text ("a=b,c!=d,e,!f") or, when encoded, its percent-encoded
 * form for a query ("a%3Db%2Cc%21%3Dd%2Ce%2C%21f"). 0 or -ENOSPC. */
int kube_json_selector_format(const struct kube_json_selector *sel, bool encoded, char *out,
                              size_t size);

/* ------------------------------------------------------------------------ */
/* Builders                                                                 */

/* Every builder returns 0 and a malloc'd, NUL-terminated compact JSON string
 * in *out (keys sorted: JSON_COMPACT | JSON_SORT_KEYS), owned by the caller
 * (free()); -EINVAL for a bad argument (*out untouched), -ENOMEM. Strings are
 * borrowed; reason and message are cut to KUBE_JSON_REASON_SIZE - 1 and
 * KUBE_JSON_MESSAGE_SIZE - 1 bytes at a UTF-8 boundary and must be valid
 * UTF-8. Times are unix seconds (Time) or microseconds (MicroTime) from
 * 1970 to 9999. */

/* PATCH pods/<pod>/status, application/strategic-merge-patch+json: condition
 * edgewarden.io/sqledge-ready := status (TRUE or FALSE), lastProbeTime null.
 * transition_unix is when the status last changed: pass the old
 * lastTransitionTime when only the reason or message moves. */
int kube_json_pod_ready_patch(enum policy_status status, const char *reason, const char *message,
                              int64_t transition_unix, char **out);

/* PATCH nodes/<node>/status, application/strategic-merge-patch+json:
 * condition SQLEdgeUnhealthy := status with lastHeartbeatTime heartbeat_unix
 * and lastTransitionTime transition_unix. */
int kube_json_node_condition_patch(enum policy_status status, const char *reason,
                                   const char *message, int64_t heartbeat_unix,
                                   int64_t transition_unix, char **out);

/* The taint edit. From the node's current taints (borrowed), the new full
 * list in out[0..*n_out) (out has room for cap entries, n + 1 always
 * suffices, and must not overlap current): every foreign taint kept exactly
 * and in order; every taint with key edgewarden.io/sqledge-unhealthy removed
 * for POLICY_TAINT_NONE, else replaced by one taint with the desired effect
 * at the place of the first of ours (appended when there was none). A taint
 * of ours that already has the desired effect is kept as it is (value and
 * timeAdded too); a new NoExecute taint gets timeAdded now_unix. Several of
 * ours (one key with two effects is legal in the API) become one. *changed
 * is false when the new list equals the old one: the reporter then writes
 * nothing. 0, -EINVAL, -ENOBUFS. */
int kube_json_taints_edit(const struct kube_json_taint *current, size_t n,
                          enum policy_taint desired, int64_t now_unix, struct kube_json_taint *out,
                          size_t cap, size_t *n_out, bool *changed);

/* PATCH nodes/<node>, application/merge-patch+json (NOT strategic merge: there
 * taints merge by key, so a removal would not remove and a changed effect
 * would be added next to the old one). The list replaces the node's list
 * whole; an empty list is written as [] (null would also delete it).
 * resource_version (required) makes the write conditional: 409 Conflict when
 * the node changed since it was read; read it again and redo the edit. */
int kube_json_taints_patch(const struct kube_json_taint *taints, size_t n,
                           const char *resource_version, char **out);

/* The object an Event is about. namespace "" for a cluster-scoped object
 * (a Node); uid may be "" when unknown. All borrowed. */
struct kube_json_object_ref {
    const char *api_version; /* "v1" */
    const char *kind;        /* "Pod", "Node" */
    const char *name;
    const char *namespace;
    const char *uid;
};

struct kube_json_event {
    const char *node;   /* this node: reportingInstance edgewarden-<node> */
    const char *action; /* "Relocate", "Taint": what was done, <= 128 bytes */
    const char *reason; /* CamelCase, <= 128 bytes */
    const char *note;   /* cut to KUBE_JSON_NOTE_MAX_BYTES at a UTF-8 boundary */
    enum policy_event_type type;
    struct kube_json_object_ref regarding;
    int64_t event_time_us; /* eventTime, unix microseconds */
};

/* POST /apis/events.k8s.io/v1/namespaces/<ns>/events: an events.k8s.io/v1
 * Event with metadata.generateName "edgewarden-<node>-". Its namespace is
 * regarding's, or "default" for a cluster-scoped object, as the API demands;
 * kube_json_event_namespace() says which. */
int kube_json_event_body(const struct kube_json_event *ev, char **out);
const char *kube_json_event_namespace(const struct kube_json_event *ev);

/* One annotation to write; both borrowed. */
struct kube_json_annotation {
    const char *key;
    const char *value;
};

/* Any Lease edgewarden writes (heartbeat, election, failover slot): POST to
 * create (resource_version NULL) or PUT to update (the version as read). */
struct kube_json_lease_write {
    const char *namespace;
    const char *name;   /* a DNS subdomain */
    const char *holder; /* "" or NULL: no holder (a free failover slot) */
    int duration_s;     /* > 0 */
    int64_t acquire_time_us;
    int64_t renew_time_us;
    int transitions;              /* < 0: not written */
    const char *resource_version; /* NULL: create */
    const char *label;            /* edgewarden.io/lease=<label>; NULL: none */
    const struct kube_json_annotation *annotations;
    size_t n_annotations;
};
int kube_json_lease_write_body(const struct kube_json_lease_write *w, char **out);

/* DELETE pods/<pod> with gracePeriodSeconds 0 and a UID precondition: the
 * force deletion the pod GC controller does for a pod on a node that is out
 * of service. uid (required) makes sure a new pod of the same name is never
 * touched. */
int kube_json_pod_force_delete_body(const char *uid, char **out);

/* The taint edit for one foreign key (node.kubernetes.io/out-of-service):
 * from current (borrowed), the new full list in out (room for cap, n + 1
 * suffices): every taint with another key kept exactly and in order; with
 * present, exactly one taint key=value:effect (an identical one kept as it
 * is, timeAdded included; else a new one with timeAdded now_unix, at the
 * place of the first with that key); without, none with that key. *changed
 * as in kube_json_taints_edit(). 0, -EINVAL, -ENOBUFS. */
int kube_json_taint_set(const struct kube_json_taint *current, size_t n, const char *key,
                        const char *value, const char *effect, bool present, int64_t now_unix,
                        struct kube_json_taint *out, size_t cap, size_t *n_out, bool *changed);

/* ------------------------------------------------------------------------ */
/* URLs                                                                     */

/* Query options for a list or a watch; NULL means a plain list. */
struct kube_json_query {
    bool watch;                   /* watch=1&allowWatchBookmarks=true */
    const char *resource_version; /* NULL or "": none */
    const char *continue_token;   /* lists only; NULL or "": none */
    unsigned limit;               /* lists only; 0: none */
    unsigned timeout_seconds;     /* 0: none */
};

/* Paths with query, relative to the server URL, written into out (size
 * bytes; KUBE_JSON_URL_SIZE fits any): 0, -EINVAL (a name that is not a DNS
 * subdomain, a namespace that is not a DNS label, a continue token in a
 * watch), -ENOSPC. Every part from outside is percent-encoded. */

/* /api/v1/pods?fieldSelector=spec.nodeName%3D<node>[&labelSelector=<enc>]... */
int kube_json_url_pods(char *out, size_t size, const char *node,
                       const struct kube_json_selector *selector, const struct kube_json_query *q);
/* /api/v1/nodes?fieldSelector=metadata.name%3D<node>... */
int kube_json_url_own_node(char *out, size_t size, const char *node,
                           const struct kube_json_query *q);
/* /api/v1/nodes/<node> */
int kube_json_url_node(char *out, size_t size, const char *node);
/* /api/v1/nodes/<node>/status */
int kube_json_url_node_status(char *out, size_t size, const char *node);
/* /api/v1/namespaces/<ns>/pods/<pod>/status */
int kube_json_url_pod_status(char *out, size_t size, const char *namespace, const char *pod);
/* /apis/events.k8s.io/v1/namespaces/<ns>/events */
int kube_json_url_events(char *out, size_t size, const char *namespace);
/* /apis/coordination.k8s.io/v1/namespaces/<ns>/leases (create), and with
 * node set .../leases/edgewarden-<node> (get, update). */
int kube_json_url_lease(char *out, size_t size, const char *namespace, const char *node);
/* /apis/coordination.k8s.io/v1/namespaces/<ns>/leases[/<name>]: with name a
 * Lease (get, update), without the collection (create; list and watch with
 * selector and q). */
int kube_json_url_leases(char *out, size_t size, const char *namespace, const char *name,
                         const struct kube_json_selector *selector,
                         const struct kube_json_query *q);
/* /api/v1/nodes?... : every node (list, watch). */
int kube_json_url_nodes(char *out, size_t size, const struct kube_json_query *q);
/* /api/v1/pods?labelSelector=... : the pods of every namespace. */
int kube_json_url_pods_all(char *out, size_t size, const struct kube_json_selector *selector,
                           const struct kube_json_query *q);
/* /api/v1/namespaces/<ns>/pods/<pod> (delete) */
int kube_json_url_pod(char *out, size_t size, const char *namespace, const char *pod);
