/*
 * Self-fencing decisions (docs/node-loss.md, "Self-fencing"): whether the
 * agent on a SQL node feeds its watchdog now, and when it holds a roll call of
 * its peers to tell a control-plane outage from being cut off. The rule is
 * the protocol's safety argument in code: a node keeps feeding only while its
 * last successful heartbeat renewal is younger than the Lease duration D, or
 * while a complete roll call, at most one renew interval R old, said that no
 * peer reaches the API server either (an outage). Anything else — no peer
 * answered, some did not, one reaches the API — stops the feeding, and the
 * watchdog then reboots the node before the deadline the Lease advertised.
 *
 * Pure: no I/O, no clock (every now_ms is the caller's monotonic
 * milliseconds), no logging, no allocation. The caller owns and embeds
 * struct fence, gathers the peers' answers, and feeds the watchdog
 * (agent/watchdog.h) when fence_should_feed() says so.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the last roll call of the peers concluded. */
enum fence_verdict {
    FENCE_VERDICT_NONE,     /* no roll call has finished yet */
    FENCE_VERDICT_CUT_OFF,  /* a peer reaches the API server and we do not: stop feeding */
    FENCE_VERDICT_OUTAGE,   /* every peer answered, none reaches the API server: keep feeding */
    FENCE_VERDICT_ISOLATED, /* no peer known, or some did not answer: stop feeding */
};

/* One peer's answer to GET /peer. answered: it answered within
 * fencing.peerTimeout with a well-formed body; api_reachable: its
 * "apiReachable" (meaningless when !answered). */
struct fence_peer_answer {
    bool answered;
    bool api_reachable;
};

/* The verdict of one roll call over n answers (answers may be NULL when n is
 * 0): any peer answered and reaches the API -> CUT_OFF; n > 0 and all
 * answered, none reaching it -> OUTAGE; otherwise ISOLATED (n == 0 too: with
 * no peer to ask, nothing proves an outage). */
enum fence_verdict fence_verdict_of(const struct fence_peer_answer *answers, size_t n);

struct fence_config {
    uint64_t lease_duration_ms;   /* D: kubernetes.lease.duration */
    uint64_t renew_interval_ms;   /* R: kubernetes.lease.renewInterval, < D */
    uint64_t watchdog_timeout_ms; /* W: the watchdog's effective timeout (for /status) */
};

/* The state, public so that /status can show it; change it only through the
 * functions below. Times are the caller's monotonic milliseconds. */
struct fence {
    struct fence_config c;
    bool lease_ok_known;        /* a successful heartbeat renewal has been recorded */
    uint64_t lease_ok_ms;       /* when the last successful renewal was SENT */
    enum fence_verdict verdict; /* the last finished roll call's verdict; NONE before any */
    uint64_t verdict_at_ms;     /* when that roll call finished */
    bool round_running;         /* a roll call is in flight */
    uint64_t round_started_ms;  /* when the running (or last) roll call started */
    bool rounds_started;        /* one started since fence_lease_ok() last advanced */
    uint64_t last_round_ms;     /* when the last one started (with rounds_started) */
};

/* Set f up from c (copied): nothing known, no verdict, never feed. -EINVAL,
 * f untouched, when a value is 0 or renew_interval_ms >= lease_duration_ms. */
int fence_init(struct fence *f, const struct fence_config *c);

/* A heartbeat renewal succeeded; it was SENT at sent_at_ms (the send time, not
 * the answer's: the server may have taken the request at once). Only moves
 * forward: an older or equal time changes nothing. An advance starts a new
 * spell for the roll calls (the first is due at sent_at_ms + 2R). */
void fence_lease_ok(struct fence *f, uint64_t sent_at_ms);

/* Feed the watchdog now? !lease_ok_known: false (the watchdog is armed only
 * after a first renewal). now < lease_ok + D: true. Otherwise only on an
 * OUTAGE verdict younger than R (now < verdict_at + R). Else false. */
bool fence_should_feed(const struct fence *f, uint64_t now_ms);

/* A roll call is due: lease_ok_known, now >= lease_ok + 2R (a renewal was
 * missed), none running, and either none has started since the last
 * fence_lease_ok() advance or the last one started at least R ago. */
bool fence_round_due(const struct fence *f, uint64_t now_ms);
/* The caller asked every peer it knows (or found none to ask; then call
 * fence_round_done() with fence_verdict_of(NULL, 0) at once). */
void fence_round_start(struct fence *f, uint64_t now_ms);
/* The roll call ended with verdict v (fence_verdict_of() of the answers):
 * verdict = v, verdict_at = now_ms, no round running. Accepted also without a
 * running round. */
void fence_round_done(struct fence *f, enum fence_verdict v, uint64_t now_ms);

/* The earliest time after now_ms at which fence_should_feed() or
 * fence_round_due() changes without an input; UINT64_MAX when none will.
 * What holds at now_ms holds until an input: a round already due stays due
 * until fence_round_start(). */
uint64_t fence_next_deadline_ms(const struct fence *f, uint64_t now_ms);

/* "none", "cut_off", "outage", "isolated"; "invalid" otherwise. */
const char *fence_verdict_name(enum fence_verdict v);
