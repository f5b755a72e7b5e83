/*
 * Leader election on one Lease (edgewarden-remediator), with client-go's
 * semantics (docs/node-loss.md, "Election"). A candidate reads the Lease
 * every retry period and tells this module what it saw; the module says what
 * to write: create the Lease when it is absent, renew it when we hold it,
 * take it over when it is empty or has not changed for its whole duration as
 * measured by OUR monotonic clock from the moment we first saw that record —
 * never by comparing its renewTime with our wall clock, so clock skew between
 * nodes cannot make two leaders. Writes carry the observed resourceVersion,
 * so of two candidates that decide to take over at once only one succeeds.
 * A leader stops believing it leads renew_deadline after the SEND time of its
 * last successful renewal, which is before any other candidate can have
 * seen the record unchanged for lease_duration.
 *
 * Pure: no I/O, no clock (now_ms is the caller's monotonic milliseconds; the
 * wall-clock renewTime and acquireTime are the writer's to fill in), no
 * logging, no allocation. The caller owns and embeds struct election.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELECTION_HOLDER_SIZE 254 /* a node name (≤ 253) and its NUL */
#define ELECTION_TIME_SIZE   40  /* an RFC 3339 MicroTime and its NUL */
#define ELECTION_RV_SIZE     64  /* a resourceVersion and its NUL */

/* The Lease as a GET (or a write's answer) showed it. Strings are
 * NUL-terminated; a longer value does not fit and the reader must refuse it. */
struct election_record {
    bool present;                          /* false: 404, there is no Lease */
    char holder[ELECTION_HOLDER_SIZE];     /* spec.holderIdentity; "" = nobody */
    uint64_t duration_ms;                  /* spec.leaseDurationSeconds x 1000 */
    char renew_time[ELECTION_TIME_SIZE];   /* spec.renewTime, as written */
    char acquire_time[ELECTION_TIME_SIZE]; /* spec.acquireTime, as written */
    unsigned transitions;                  /* spec.leaseTransitions */
    char rv[ELECTION_RV_SIZE];             /* metadata.resourceVersion */
};

struct election_config {
    uint64_t lease_duration_ms; /* remediation.election.leaseDuration, > renew_deadline_ms */
    uint64_t renew_deadline_ms; /* remediation.election.renewDeadline, > retry_period_ms */
    uint64_t retry_period_ms;   /* remediation.election.retryPeriod, > 0 */
};

enum election_action {
    ELECTION_WAIT,   /* write nothing; read again at next_try_ms */
    ELECTION_CREATE, /* POST the Lease */
    ELECTION_UPDATE, /* PUT the Lease with resourceVersion rv */
};

/* What to write. The writer sets holderIdentity to our identity,
 * leaseDurationSeconds to duration_ms / 1000 and renewTime to its wall clock
 * now. */
struct election_write {
    enum election_action action;
    bool take_over;                        /* we become the holder (CREATE, or a takeover) */
    unsigned transitions;                  /* spec.leaseTransitions to write */
    char rv[ELECTION_RV_SIZE];             /* resourceVersion to send; "" for CREATE */
    char acquire_time[ELECTION_TIME_SIZE]; /* spec.acquireTime to write; "" = now */
    uint64_t duration_ms;                  /* c.lease_duration_ms */
};

/* The state, public for /status; change it only through the functions below. */
struct election {
    struct election_config c;
    char identity[ELECTION_HOLDER_SIZE]; /* our holderIdentity: the node name */
    bool observed_any;                   /* a record (or its absence) has been observed */
    struct election_record observed;     /* the last record observed or written */
    uint64_t observed_at_ms;             /* when that record was first seen unchanged */
    bool leader;                         /* the last write succeeded and we hold the Lease */
    uint64_t renewed_at_ms;              /* SEND time of the last successful write */
    uint64_t next_try_ms;                /* when to read the Lease next; 0 = at once */
};

/* Set e up: not leader, nothing observed, read at once. c is copied and
 * identity (borrowed) too. -EINVAL, e untouched, when identity is NULL, empty
 * or longer than ELECTION_HOLDER_SIZE - 1, a value is 0,
 * renew_deadline_ms >= lease_duration_ms or retry_period_ms >=
 * renew_deadline_ms. */
int election_init(struct election *e, const struct election_config *c, const char *identity);

/* What a GET returned (r->present false: 404); r is borrowed. observed_at =
 * now_ms when the holder, renew_time, transitions or rv differ from the last
 * observed record, when presence changed, or when nothing was observed
 * before; otherwise it stays, so an unchanged record ages. A record held by
 * someone else (or none) ends our leadership at once. next_try = now_ms +
 * retry_period (the next read, when election_decide() says WAIT). */
void election_observe(struct election *e, const struct election_record *r, uint64_t now_ms);

/* A GET failed (the API server is unreachable, a 5xx): read again at now_ms +
 * retry_period. Leadership lapses by itself. */
void election_read_failed(struct election *e, uint64_t now_ms);

/* After election_observe() (or a successful write, whose record becomes the
 * observed one): what to write now, into *w (reset first).
 * - Nothing observed yet: WAIT.
 * - Not present: CREATE, take_over, transitions 0.
 * - Held by our identity: UPDATE to renew, keeping acquire_time and transitions.
 * - Holder empty, or now_ms >= observed_at + observed.duration_ms (the record
 *   unchanged for its whole duration by our clock; a record without a
 *   duration counts as c.lease_duration_ms): UPDATE, take_over,
 *   transitions + 1 (at most INT32_MAX, the API's int32), acquire_time ""
 *   (now).
 * - Otherwise WAIT.
 * rv is the observed record's; duration_ms is c.lease_duration_ms. */
void election_decide(const struct election *e, uint64_t now_ms, struct election_write *w);

/* The write's outcome; sent_at_ms is when the request was SENT (never the
 * answer's time: the server may have applied it at once). ok: written
 * (borrowed, required) is the server's answer and becomes the observed record
 * (present, observed_at = now_ms); we lead when its holder is our identity,
 * with renewed_at = sent_at_ms. !ok (a conflict, an error, no answer):
 * nothing changes, and leadership lapses by itself renew_deadline after the
 * last success; written may be NULL. next_try = now_ms + retry_period either
 * way. */
void election_write_done(struct election *e, bool ok, const struct election_record *written,
                         uint64_t sent_at_ms, uint64_t now_ms);

/* We lead: the last write succeeded and was sent less than renew_deadline
 * ago (leader && now_ms < renewed_at + renew_deadline). */
bool election_is_leader(const struct election *e, uint64_t now_ms);

/* Give leadership up at once (the API server is lost, shutting down). The
 * next election_decide() may renew our own record again: that is a new
 * leadership, which the caller treats as such. */
void election_resign(struct election *e);

/* When the caller next has something to do: the next read (next_try_ms,
 * which may be at or before now_ms: a read is due) or, while we lead, the end
 * of our leadership, whichever comes first. */
uint64_t election_next_deadline_ms(const struct election *e, uint64_t now_ms);
