/*
 * A list-then-watch of one collection (informer.h). States: stopped; due to
 * list (or continue the list's next page) at due_ms; listing; due to watch at
 * due_ms; watching. Every request goes through the reporter's client, whose
 * answers are counted by kube_observe_answer().
 */
#include "informer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "kube.h"
#include "log.h"

#define PAGE_SIZE            500
#define BACKOFF_MIN_MS       250
#define BACKOFF_MAX_MS       5000
#define WATCH_TIMEOUT_MIN    600 /* seconds: the server ends a watch after 10..20 min */
#define WATCH_TIMEOUT_SPREAD 600

enum phase { PH_STOPPED, PH_LIST_DUE, PH_LISTING, PH_WATCH_DUE, PH_WATCHING };

struct informer {
    struct kube *k;
    struct informer_options o;
    enum phase phase;
    uint64_t due_ms;
    bool synced;
    bool relist; /* the next list starts over (reset) */
    char rv[KUBE_JSON_RV_SIZE];
    char cont[KUBE_JSON_CONTINUE_SIZE]; /* the list's next page */
    uint64_t backoff_ms;
    struct httpc_call *call;
    uint64_t start_ns;
    uint64_t events, restarts;
};

static void wake(struct informer *inf) {
    if (inf->o.ops.wake)
        inf->o.ops.wake(inf->o.data);
}

static uint64_t backoff(struct informer *inf) {
    inf->backoff_ms = inf->backoff_ms ? inf->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (inf->backoff_ms > BACKOFF_MAX_MS)
        inf->backoff_ms = BACKOFF_MAX_MS;
    return inf->backoff_ms / 2 + (uint64_t)rand() % (inf->backoff_ms / 2 + 1);
}

/* The list or watch ended; reason for the metric ("closed", "expired",
 * "error"); relist: start the next list from scratch. */
static void restart(struct informer *inf, const char *reason, bool relist) {
    uint64_t now = kube_now_ms(inf->k);

    inf->call = NULL;
    inf->restarts++;
    kube_count_watch_restart(inf->k, inf->o.resource, reason);
    if (relist) {
        inf->relist = true;
        inf->cont[0] = '\0';
    }
    if (!strcmp(reason, "closed")) {
        inf->backoff_ms = 0;
        inf->due_ms = now;
    } else {
        inf->due_ms = now + backoff(inf);
    }
    inf->phase = inf->relist || !inf->synced ? PH_LIST_DUE : PH_WATCH_DUE;
    wake(inf);
}

static void on_list_done(int result, struct httpc_response *resp, void *data) {
    struct informer *inf = data;
    struct kube_json_list list;
    struct kube_json_error err = {0};
    int r;

    inf->call = NULL;
    kube_observe_answer(inf->k, "list", inf->o.resource, result, resp, inf->start_ns);
    if (result < 0 || resp->status != 200) {
        if (result == 0 && resp->status == 410)
            log_info("list %s: continue token expired; listing again", inf->o.what);
        else
            log_warn("list %s: %s%s HTTP %ld; retrying", inf->o.what, result < 0 ? resp->error : "",
                     result < 0 ? ";" : "", result < 0 ? 0L : resp->status);
        restart(inf, result == 0 && resp->status == 410 ? "expired" : "error", true);
        return;
    }
    if ((r = kube_json_list_parse(resp->body.data, resp->body.len, &list, &err)) < 0) {
        log_warn("list %s: unusable response (%s: %s); listing again later", inf->o.what,
                 err.field ? err.field : "", err.problem ? err.problem : strerror(-r));
        restart(inf, "error", true);
        return;
    }
    if (inf->relist) {
        inf->relist = false;
        inf->synced = false;
        if (inf->o.ops.reset)
            inf->o.ops.reset(inf->o.data);
    }
    for (size_t i = 0; i < list.n_items; i++)
        inf->o.ops.object(KUBE_JSON_ADDED, json_array_get(list.items, i), inf->o.data);
    if (list.continue_token[0]) {
        /* The next page at once; the list's version is the first page's. */
        snprintf(inf->cont, sizeof(inf->cont), "%s", list.continue_token);
        if (!inf->rv[0] || !inf->synced)
            snprintf(inf->rv, sizeof(inf->rv), "%s", list.resource_version);
        kube_json_list_free(&list);
        inf->phase = PH_LIST_DUE;
        inf->due_ms = kube_now_ms(inf->k);
        wake(inf);
        return;
    }
    snprintf(inf->rv, sizeof(inf->rv), "%s", list.resource_version);
    kube_json_list_free(&list);
    inf->cont[0] = '\0';
    inf->synced = true;
    inf->backoff_ms = 0;
    inf->phase = PH_WATCH_DUE;
    inf->due_ms = kube_now_ms(inf->k);
    if (inf->o.ops.synced)
        inf->o.ops.synced(inf->o.data);
    wake(inf);
}

static void list(struct informer *inf) {
    char url[KUBE_JSON_URL_SIZE];
    struct kube_json_query q = {.limit = PAGE_SIZE, .continue_token = inf->cont};
    int r;

    if (!inf->cont[0])
        inf->relist = true; /* a first page always starts over */
    r = inf->o.url(url, sizeof(url), &q, inf->o.data);
    if (r == 0) {
        struct httpc_request hr = {
            .method = "GET", .path = url, .timeout_ms = kube_request_timeout_ms(inf->k)};
        inf->start_ns = uv_hrtime();
        r = httpc_request(kube_http(inf->k), &hr, on_list_done, inf, &inf->call);
    }
    if (r < 0) {
        log_error_errno(r, "list %s", inf->o.what);
        inf->call = NULL;
        inf->phase = PH_LIST_DUE;
        inf->due_ms = kube_now_ms(inf->k) + backoff(inf);
        return;
    }
    inf->phase = PH_LISTING;
}

static void on_watch_line(const char *line, size_t len, void *data) {
    struct informer *inf = data;
    struct kube_json_watch_event ev;
    struct kube_json_error err = {0};
    int r = kube_json_watch_event_parse(line, len, &ev, &err);

    if (r < 0) {
        log_warn("watch %s: unusable event (%s: %s); listing again", inf->o.what,
                 err.field ? err.field : "", err.problem ? err.problem : strerror(-r));
        httpc_cancel(inf->call);
        restart(inf, "error", true);
        return;
    }
    inf->events++;
    if (ev.type == KUBE_JSON_ERROR) {
        bool expired = ev.relist;

        log_info("watch %s: the server ended it (%d %s); listing again", inf->o.what,
                 ev.status.code, ev.status.reason);
        kube_json_watch_event_free(&ev);
        httpc_cancel(inf->call);
        restart(inf, expired ? "expired" : "error", true);
        return;
    }
    if (ev.resource_version[0])
        snprintf(inf->rv, sizeof(inf->rv), "%s", ev.resource_version);
    if (ev.type != KUBE_JSON_BOOKMARK)
        inf->o.ops.object(ev.type, ev.object, inf->o.data);
    kube_json_watch_event_free(&ev);
}

static void on_watch_done(int result, struct httpc_response *resp, void *data) {
    struct informer *inf = data;
    long st = result < 0 ? 0 : resp->status;

    inf->call = NULL;
    if (result < 0 || st >= 300)
        kube_observe_answer(inf->k, "watch", inf->o.resource, result, resp, inf->start_ns);
    if (result < 0 || (st != 200 && st != 410))
        log_warn("watch %s: %s HTTP %ld; resuming", inf->o.what, result < 0 ? resp->error : "", st);
    restart(inf, result == 0 && st == 200 ? "closed" : st == 410 ? "expired" : "error", st == 410);
}

static void watch(struct informer *inf) {
    char url[KUBE_JSON_URL_SIZE];
    struct kube_json_query q = {
        .watch = true,
        .resource_version = inf->rv,
        .timeout_seconds = WATCH_TIMEOUT_MIN + (unsigned)(rand() % WATCH_TIMEOUT_SPREAD),
    };
    int r = inf->o.url(url, sizeof(url), &q, inf->o.data);

    if (r == 0) {
        struct httpc_request hr = {.method = "GET", .path = url};
        inf->start_ns = uv_hrtime();
        r = httpc_stream(kube_http(inf->k), &hr, on_watch_line, on_watch_done, inf, &inf->call);
    }
    if (r < 0) {
        log_error_errno(r, "watch %s", inf->o.what);
        inf->call = NULL;
        inf->phase = PH_WATCH_DUE;
        inf->due_ms = kube_now_ms(inf->k) + backoff(inf);
        return;
    }
    inf->phase = PH_WATCHING;
}

int informer_new(struct kube *k, const struct informer_options *o, struct informer **out) {
    struct informer *inf;

    if (!k || !o || !o->url || !o->ops.object || !o->resource || !o->what || !out)
        return -EINVAL;
    if (!(inf = calloc(1, sizeof(*inf))))
        return -ENOMEM;
    inf->k = k;
    inf->o = *o;
    *out = inf;
    return 0;
}

void informer_start(struct informer *inf, uint64_t now_ms) {
    if (inf->phase != PH_STOPPED)
        return;
    inf->synced = false;
    inf->relist = true;
    inf->rv[0] = inf->cont[0] = '\0';
    inf->backoff_ms = 0;
    inf->phase = PH_LIST_DUE;
    inf->due_ms = now_ms;
}

void informer_stop(struct informer *inf) {
    if (!inf)
        return;
    if (inf->call)
        httpc_cancel(inf->call);
    inf->call = NULL;
    inf->phase = PH_STOPPED;
    inf->synced = false;
}

void informer_free(struct informer *inf) {
    informer_stop(inf);
    free(inf);
}

bool informer_running(const struct informer *inf) {
    return inf && inf->phase != PH_STOPPED;
}

bool informer_synced(const struct informer *inf) {
    return inf && inf->synced;
}

uint64_t informer_next_due_ms(const struct informer *inf) {
    if (!inf || (inf->phase != PH_LIST_DUE && inf->phase != PH_WATCH_DUE))
        return UINT64_MAX;
    return inf->due_ms;
}

void informer_tick(struct informer *inf, uint64_t now_ms) {
    if (!inf || now_ms < inf->due_ms)
        return;
    if (inf->phase == PH_LIST_DUE)
        list(inf);
    else if (inf->phase == PH_WATCH_DUE)
        watch(inf);
}

uint64_t informer_events(const struct informer *inf) {
    return inf ? inf->events : 0;
}

uint64_t informer_restarts(const struct informer *inf) {
    return inf ? inf->restarts : 0;
}
