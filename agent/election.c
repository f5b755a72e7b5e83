/*
 * Leader election (election.h; docs/node-loss.md, "Election"). The one idea
 * that makes it safe across nodes is the observation clock: a record's age
 * is how long WE have seen it unchanged (observed_at_ms, our monotonic
 * clock), restarted whenever the holder, the renewal time, the transition
 * count or the resourceVersion moves. A leader that keeps renewing keeps
 * restarting every candidate's clock; one that stops is taken over only
 * after a full lease duration of silence, while it gave up leading
 * renew_deadline (< lease duration) after its last successful send. Records
 * are copied with their strings cut to size and terminated, so a reader's
 * mistake cannot run past a buffer here.
 */
#include "election.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* a + b, or UINT64_MAX when that does not fit. */
static uint64_t add_sat(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Copy a fixed-size string field, cut to fit, terminated and zero-padded
 * (so that copies compare equal byte for byte). */
static void copy_field(char *to, const char *from, size_t size) {
    size_t n = strnlen(from, size - 1);

    memcpy(to, from, n);
    memset(to + n, 0, size - n);
}

static void record_copy(struct election_record *to, const struct election_record *from) {
    to->present = from->present;
    copy_field(to->holder, from->holder, sizeof(to->holder));
    to->duration_ms = from->duration_ms;
    copy_field(to->renew_time, from->renew_time, sizeof(to->renew_time));
    copy_field(to->acquire_time, from->acquire_time, sizeof(to->acquire_time));
    to->transitions = from->transitions;
    copy_field(to->rv, from->rv, sizeof(to->rv));
}

/* Whether b is a different record from a, for the observation clock. Two
 * absent records are the same; the duration and acquire time alone do not
 * count (client-go compares the same four fields, plus the version). */
static bool record_changed(const struct election_record *a, const struct election_record *b) {
    if (a->present != b->present)
        return true;
    if (!a->present)
        return false;
    return strncmp(a->holder, b->holder, ELECTION_HOLDER_SIZE) ||
           strncmp(a->renew_time, b->renew_time, ELECTION_TIME_SIZE) ||
           a->transitions != b->transitions || strncmp(a->rv, b->rv, ELECTION_RV_SIZE);
}

static bool held_by_us(const struct election *e, const struct election_record *r) {
    return r->present && !strncmp(r->holder, e->identity, ELECTION_HOLDER_SIZE);
}

int election_init(struct election *e, const struct election_config *c, const char *identity) {
    size_t len;

    if (!e || !c || !identity)
        return -EINVAL;
    len = strnlen(identity, ELECTION_HOLDER_SIZE);
    if (len == 0 || len >= ELECTION_HOLDER_SIZE)
        return -EINVAL;
    if (!c->lease_duration_ms || !c->renew_deadline_ms || !c->retry_period_ms ||
        c->renew_deadline_ms >= c->lease_duration_ms || c->retry_period_ms >= c->renew_deadline_ms)
        return -EINVAL;
    *e = (struct election){.c = *c};
    memcpy(e->identity, identity, len + 1);
    return 0;
}

void election_observe(struct election *e, const struct election_record *r, uint64_t now_ms) {
    struct election_record seen;

    record_copy(&seen, r); /* compared as kept, cut and terminated */
    if (!e->observed_any || record_changed(&e->observed, &seen))
        e->observed_at_ms = now_ms;
    e->observed = seen;
    e->observed_any = true;
    if (!held_by_us(e, &e->observed))
        e->leader = false;
    e->next_try_ms = add_sat(now_ms, e->c.retry_period_ms);
}

void election_read_failed(struct election *e, uint64_t now_ms) {
    e->next_try_ms = add_sat(now_ms, e->c.retry_period_ms);
}

void election_decide(const struct election *e, uint64_t now_ms, struct election_write *w) {
    const struct election_record *o = &e->observed;
    uint64_t duration_ms;

    *w = (struct election_write){.action = ELECTION_WAIT, .duration_ms = e->c.lease_duration_ms};
    if (!e->observed_any)
        return;
    if (!o->present) {
        w->action = ELECTION_CREATE;
        w->take_over = true;
        return;
    }
    copy_field(w->rv, o->rv, sizeof(w->rv));
    if (held_by_us(e, o)) {
        w->action = ELECTION_UPDATE;
        w->transitions = o->transitions;
        copy_field(w->acquire_time, o->acquire_time, sizeof(w->acquire_time));
        return;
    }
    /* A record without a duration would be free at once; treat it as ours,
     * the safe side, rather than take over a live holder's Lease. */
    duration_ms = o->duration_ms ? o->duration_ms : e->c.lease_duration_ms;
    if (!o->holder[0] || now_ms >= add_sat(e->observed_at_ms, duration_ms)) {
        w->action = ELECTION_UPDATE;
        w->take_over = true;
        w->transitions = o->transitions < INT32_MAX ? o->transitions + 1 : INT32_MAX;
    }
}

void election_write_done(struct election *e, bool ok, const struct election_record *written,
                         uint64_t sent_at_ms, uint64_t now_ms) {
    e->next_try_ms = add_sat(now_ms, e->c.retry_period_ms);
    if (!ok || !written)
        return;
    record_copy(&e->observed, written);
    e->observed.present = true; /* it was just written */
    e->observed_any = true;
    e->observed_at_ms = now_ms;
    e->leader = held_by_us(e, &e->observed);
    if (e->leader)
        e->renewed_at_ms = sent_at_ms;
}

bool election_is_leader(const struct election *e, uint64_t now_ms) {
    return e->leader && now_ms < add_sat(e->renewed_at_ms, e->c.renew_deadline_ms);
}

void election_resign(struct election *e) {
    e->leader = false;
}

uint64_t election_next_deadline_ms(const struct election *e, uint64_t now_ms) {
    uint64_t next = e->next_try_ms;

    if (election_is_leader(e, now_ms)) {
        uint64_t lapse = add_sat(e->renewed_at_ms, e->c.renew_deadline_ms);
        if (lapse < next)
            next = lapse;
    }
    return next;
}
