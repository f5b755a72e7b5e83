/*
 * A list-then-watch of one Kubernetes collection, for the remediator's
 * cluster-wide view (cluster.h): list (in pages of 500), then watch from the
 * list's resourceVersion with bookmarks; a clean end re-opens the watch at
 * once, a dropped stream after a jittered backoff (0.25..5 s), and a 410, an
 * ERROR event or an unusable line relists. Objects reach the owner as
 * jansson objects through callbacks; the informer keeps no cache.
 *
 * It owns no libuv handle: the owner calls informer_tick() when
 * informer_next_due_ms() comes, and re-reads that time after every callback
 * (ops.wake says it changed). Requests go through the reporter's HTTPS client
 * and are counted in its request metrics (kube_observe_answer()).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kube_json.h"

struct kube;
struct informer;

struct informer_ops {
    /* A list begins: everything seen so far is stale until listed again. */
    void (*reset)(void *data);
    /* An object was listed or ADDED/MODIFIED (type ADDED for listed ones),
     * or DELETED. obj borrowed for the call. */
    void (*object)(enum kube_json_event_type type, const json_t *obj, void *data);
    /* The list is complete: what was not listed again since reset is gone. */
    void (*synced)(void *data);
    /* informer_next_due_ms() may have changed. */
    void (*wake)(void *data);
};

struct informer_options {
    const char *resource; /* "leases", "nodes", "pods": metrics and logs; static */
    const char *what;     /* "agent heartbeat Leases": logs; static */
    /* The collection's URL with q (list or watch) into out; as kube_json_url_*. */
    int (*url)(char *out, size_t size, const struct kube_json_query *q, void *data);
    struct informer_ops ops;
    void *data;
};

/* A new informer, stopped. -ENOMEM. */
int informer_new(struct kube *k, const struct informer_options *o, struct informer **out);
/* Start listing (no-op when running). */
void informer_start(struct informer *inf, uint64_t now_ms);
/* Cancel the list or watch; no callback after this. Start again later at will. */
void informer_stop(struct informer *inf);
/* Stop and free. NULL-safe. */
void informer_free(struct informer *inf);
bool informer_running(const struct informer *inf);
/* Listed at least once since the last start. */
bool informer_synced(const struct informer *inf);
/* UINT64_MAX when nothing is due. */
uint64_t informer_next_due_ms(const struct informer *inf);
void informer_tick(struct informer *inf, uint64_t now_ms);
/* Watch events and restarts, for /status. */
uint64_t informer_events(const struct informer *inf);
uint64_t informer_restarts(const struct informer *inf);
