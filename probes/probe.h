/*
 * The probe interface: every probe kind (tds, process, ...) is a small ops
 * table plus a timing policy held in data, as keepalived's checkers are. The
 * runner in probe.c owns scheduling — a random start jitter, one check at a
 * time, the per-check timeout, and re-arming only after a check completes
 * (interval_ms after its start), so checks never overlap. A kind only knows how to run one check and how to
 * abandon it. Results flow to one callback per probe; the health engine
 * turns them into target state. A kind embeds struct probe in its own struct
 * and finds itself again with container_of.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

enum probe_outcome {
    PROBE_OK = 0,
    /* tds */
    PROBE_REFUSED,
    PROBE_TIMEOUT,
    PROBE_RESET,
    PROBE_PROTOCOL_ERROR,
    PROBE_TLS_REQUIRED, /* TDS 8 strict server; alive, not a failure by itself */
    /* process */
    PROBE_ABSENT,
    PROBE_ZOMBIE,
    PROBE_STUCK,
    /* the agent could not measure (local failure, e.g. no permission) */
    PROBE_ERROR,
    PROBE_OUTCOME_COUNT
};

struct probe_result {
    enum probe_outcome outcome;
    uint64_t latency_us; /* check start -> outcome; set by the runner when 0 */
    int error;           /* -errno behind the outcome, 0 when none */
    char detail[128];    /* short human text, NUL-terminated, may be empty */
    /* tds */
    char server_version[24]; /* "16.0.4135.4", empty when unknown */
    int encryption;          /* PRELOGIN ENCRYPTION byte, -1 when unknown */
    /* process */
    int pid;          /* engine PID, 0 when none */
    bool restarted;   /* a new engine PID replaced one this probe knew */
    bool unsolicited; /* reported by an event (exit), not a scheduled check */
};

struct probe_timing {
    uint64_t interval_ms; /* start of one check -> start of the next (never overlapping) */
    uint64_t timeout_ms;  /* a check still running after this is a timeout */
    uint64_t jitter_ms;   /* first check after a random delay in [0, jitter_ms] */
    unsigned rise;        /* consecutive successes that make the probe pass */
    unsigned fall;        /* consecutive failures that make the probe fail */
};

struct probe;
typedef void (*probe_result_cb)(struct probe *p, const struct probe_result *r);
typedef void (*probe_close_cb)(struct probe *p);

struct probe_ops {
    const char *kind; /* "tds", "process" */
    /* Begin one check. Finish it later (or before returning) with
     * probe_complete(). On error return -errno and do not complete: the runner
     * reports PROBE_ERROR. */
    int (*check)(struct probe *p);
    /* Abandon the check in flight (timeout or close); no probe_complete() for
     * it may follow. */
    void (*cancel)(struct probe *p);
    /* Release the kind's resources; call probe_closed() once its last handle
     * is closed (may be before returning). */
    void (*close)(struct probe *p);
    /* Free the containing struct; called last. */
    void (*free)(struct probe *p);
};

struct probe {
    const struct probe_ops *ops;
    uv_loop_t *loop;
    struct probe_timing timing;
    char *name; /* owned */
    probe_result_cb on_result;
    void *data; /* the owner's */
    uv_timer_t schedule;
    uv_timer_t deadline;
    uint64_t check_started_ns;
    uint64_t checks;
    bool in_flight;
    bool running; /* re-arms after each check */
    bool closing;
    bool kind_closed;
    int open_handles;
    probe_close_cb on_closed;
};

/* For kinds: set up the runner part. Does not allocate beyond a copy of name.
 * Returns 0 or -errno. */
int probe_init(struct probe *p, uv_loop_t *loop, const struct probe_ops *ops, const char *name,
               const struct probe_timing *timing);

/* Start checking: the first check after a random delay in [0, jitter_ms], then
 * every interval_ms counted from the previous check's start, never before the
 * previous check completed. */
int probe_start(struct probe *p, probe_result_cb cb, void *data);
/* Run one check now and do not re-arm (CLI "probe"). */
int probe_check_once(struct probe *p, probe_result_cb cb, void *data);
/* Move the next scheduled check to delay_ms from now (no-op while a check is
 * in flight or the probe is not running). */
void probe_reschedule(struct probe *p, uint64_t delay_ms);

/* For kinds: the check in flight ended. r is borrowed. */
void probe_complete(struct probe *p, struct probe_result *r);
/* For kinds: an event outside a check (an exit seen through a pidfd). */
void probe_report(struct probe *p, struct probe_result *r);
/* For kinds: every handle of the kind is closed. */
void probe_closed(struct probe *p);

/* Stop, cancel what is in flight, close all handles; cb (may be NULL) runs
 * once everything is closed, then the kind's free(). */
void probe_close(struct probe *p, probe_close_cb cb);

void probe_result_init(struct probe_result *r);
const char *probe_outcome_name(enum probe_outcome o);
/* Parse an outcome word; returns -EINVAL when unknown. */
int probe_outcome_from_name(const char *s);
/* ok and tls_required count as success for health. */
bool probe_outcome_is_success(enum probe_outcome o);
