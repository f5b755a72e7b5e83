/*
 * Tests for agent/election.c. The cases follow docs/node-loss.md
 * "Election": acquire an absent Lease, renew our own, wait while another
 * holder keeps renewing, take over only after a record has stayed unchanged
 * for its whole duration by our own clock from the moment we first saw it
 * (never by its renewTime), lapse renew_deadline after the SEND time of the
 * last successful write. A simulation then runs three candidates with
 * unrelated clocks against a Lease server with resourceVersions, slow and
 * lost requests, and checks on every tick that no two believe they lead.
 * The timing is the defaults': lease 15 s, renew deadline 10 s, retry 2 s.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "election.h"

#define LEASE    15000
#define DEADLINE 10000
#define RETRY    2000
#define US       "node-a"
#define THEM     "node-b"

static const struct election_config config = {
    .lease_duration_ms = LEASE, .renew_deadline_ms = DEADLINE, .retry_period_ms = RETRY};

static struct election make(const char *identity) {
    struct election e;

    ck_assert_int_eq(election_init(&e, &config, identity), 0);
    return e;
}

static struct election_record record(const char *holder, const char *renew_time,
                                     unsigned transitions, const char *rv) {
    struct election_record r = {.present = true, .duration_ms = LEASE, .transitions = transitions};

    snprintf(r.holder, sizeof(r.holder), "%s", holder);
    snprintf(r.renew_time, sizeof(r.renew_time), "%s", renew_time);
    snprintf(r.acquire_time, sizeof(r.acquire_time), "2024-05-01T10:00:00.000000Z");
    snprintf(r.rv, sizeof(r.rv), "%s", rv);
    return r;
}

static const struct election_record absent = {.present = false};

static void assert_record_eq(const struct election_record *a, const struct election_record *b) {
    ck_assert_int_eq(a->present, b->present);
    ck_assert_str_eq(a->holder, b->holder);
    ck_assert_uint_eq(a->duration_ms, b->duration_ms);
    ck_assert_str_eq(a->renew_time, b->renew_time);
    ck_assert_str_eq(a->acquire_time, b->acquire_time);
    ck_assert_uint_eq(a->transitions, b->transitions);
    ck_assert_str_eq(a->rv, b->rv);
}

static struct election_write decide(const struct election *e, uint64_t now_ms) {
    struct election_write w;

    memset(&w, 0xa5, sizeof(w)); /* every field must be set */
    election_decide(e, now_ms, &w);
    return w;
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */

START_TEST(test_init) {
    static const struct election_config bad[] = {
        {0, DEADLINE, RETRY},     {LEASE, 0, RETRY},         {LEASE, DEADLINE, 0},
        {LEASE, LEASE, RETRY},    {LEASE, LEASE + 1, RETRY}, {LEASE, DEADLINE, DEADLINE},
        {LEASE, DEADLINE, LEASE},
    };
    char name[ELECTION_HOLDER_SIZE + 1];
    struct election e, sentinel;

    e = make(US);
    ck_assert_str_eq(e.identity, US);
    ck_assert(!e.observed_any);
    ck_assert(!e.leader);
    ck_assert_uint_eq(e.next_try_ms, 0); /* read at once */
    ck_assert(!election_is_leader(&e, 0));
    ck_assert_int_eq(election_init(&e, &(struct election_config){3, 2, 1}, US), 0);

    /* A node name of 253 characters fits; 254 do not. */
    memset(name, 'a', sizeof(name));
    name[ELECTION_HOLDER_SIZE - 1] = '\0';
    ck_assert_int_eq(election_init(&e, &config, name), 0);
    ck_assert_uint_eq(strlen(e.identity), ELECTION_HOLDER_SIZE - 1);
    name[ELECTION_HOLDER_SIZE - 1] = 'a';
    name[ELECTION_HOLDER_SIZE] = '\0';

    memset(&sentinel, 0xa5, sizeof(sentinel));
    e = sentinel;
    ck_assert_int_eq(election_init(&e, &config, name), -EINVAL);
    ck_assert_int_eq(election_init(&e, &config, ""), -EINVAL);
    ck_assert_int_eq(election_init(&e, &config, NULL), -EINVAL);
    ck_assert_int_eq(election_init(&e, NULL, US), -EINVAL);
    ck_assert_int_eq(election_init(NULL, &config, US), -EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(election_init(&e, &bad[i], US) == -EINVAL, "bad[%zu] accepted", i);
    ck_assert(!memcmp(&e, &sentinel, sizeof(e)));
}
END_TEST

START_TEST(test_nothing_observed_waits) {
    struct election e = make(US);
    struct election_write w = decide(&e, 100000);

    ck_assert_int_eq(w.action, ELECTION_WAIT);
    ck_assert(!w.take_over);
    ck_assert_str_eq(w.rv, "");
    ck_assert_uint_eq(w.duration_ms, LEASE);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Acquire, renew                                                           */

START_TEST(test_acquire_absent_then_renew) {
    struct election e = make(US);
    struct election_record written = record(US, "2024-05-01T10:00:00.100000Z", 0, "41");
    struct election_write w;

    election_observe(&e, &absent, 100);
    ck_assert(e.observed_any);
    ck_assert_uint_eq(e.next_try_ms, 100 + RETRY);
    w = decide(&e, 100);
    ck_assert_int_eq(w.action, ELECTION_CREATE);
    ck_assert(w.take_over);
    ck_assert_uint_eq(w.transitions, 0);
    ck_assert_str_eq(w.rv, "");
    ck_assert_str_eq(w.acquire_time, "");
    ck_assert_uint_eq(w.duration_ms, LEASE);

    election_write_done(&e, true, &written, 100, 180);
    ck_assert(e.leader);
    ck_assert_uint_eq(e.renewed_at_ms, 100);
    ck_assert_uint_eq(e.observed_at_ms, 180);
    ck_assert_str_eq(e.observed.rv, "41");
    ck_assert_uint_eq(e.next_try_ms, 180 + RETRY);
    ck_assert(election_is_leader(&e, 180));

    /* Renew: our own record, acquire time and transitions kept. */
    election_observe(&e, &written, 2180);
    w = decide(&e, 2180);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert(!w.take_over);
    ck_assert_uint_eq(w.transitions, 0);
    ck_assert_str_eq(w.rv, "41");
    ck_assert_str_eq(w.acquire_time, "2024-05-01T10:00:00.000000Z");
    written = record(US, "2024-05-01T10:00:02.200000Z", 0, "42");
    election_write_done(&e, true, &written, 2200, 2250);
    ck_assert_uint_eq(e.renewed_at_ms, 2200);
    ck_assert(election_is_leader(&e, 2200 + DEADLINE - 1));
    ck_assert(!election_is_leader(&e, 2200 + DEADLINE));

    /* Renewing needs no fresh read: the written record is the observed one. */
    w = decide(&e, 4250);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert(!w.take_over);
    ck_assert_str_eq(w.rv, "42");
}
END_TEST

START_TEST(test_our_record_after_restart) {
    /* An agent restarted while its record still names it: it renews (keeps
     * the transitions) but does not lead until that write succeeds. */
    struct election e = make(US);
    struct election_record r = record(US, "2024-05-01T10:00:00Z", 7, "9");
    struct election_write w;

    election_observe(&e, &r, 0);
    ck_assert(!election_is_leader(&e, 0));
    w = decide(&e, 0);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert(!w.take_over);
    ck_assert_uint_eq(w.transitions, 7);
    ck_assert_str_eq(w.rv, "9");
    election_write_done(&e, false, NULL, 0, 50); /* 409: someone took it meanwhile */
    ck_assert(!election_is_leader(&e, 50));
    ck_assert_uint_eq(e.next_try_ms, 50 + RETRY);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Waiting and taking over                                                  */

START_TEST(test_wait_while_holder_renews) {
    struct election e = make(US);
    char renew[40], rv[16];
    uint64_t t;
    struct election_write w;

    /* The holder renews every 2 s for a minute: never ours. */
    for (t = 0; t <= 60000; t += RETRY) {
        struct election_record r;
        snprintf(renew, sizeof(renew), "2024-05-01T10:%02u:%02u.000000Z", (unsigned)(t / 60000),
                 (unsigned)(t / 1000 % 60));
        snprintf(rv, sizeof(rv), "%u", (unsigned)(100 + t / RETRY));
        r = record(THEM, renew, 3, rv);
        election_observe(&e, &r, t);
        ck_assert_uint_eq(e.observed_at_ms, t);
        w = decide(&e, t);
        ck_assert_msg(w.action == ELECTION_WAIT, "t=%" PRIu64, t);
        ck_assert_str_eq(w.rv, rv);
        ck_assert(!election_is_leader(&e, t));
    }
    /* It stops: the last record stays the same, and ages by our clock. */
    t -= RETRY;
    for (uint64_t u = t + RETRY; u < t + LEASE; u += RETRY) {
        struct election_record same = e.observed;
        election_observe(&e, &same, u);
        ck_assert_uint_eq(e.observed_at_ms, t);
        ck_assert_int_eq(decide(&e, u).action, ELECTION_WAIT);
    }
    ck_assert_int_eq(decide(&e, t + LEASE - 1).action, ELECTION_WAIT);
    w = decide(&e, t + LEASE);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert(w.take_over);
    ck_assert_uint_eq(w.transitions, 4);
    ck_assert_str_eq(w.acquire_time, "");
    ck_assert_str_eq(w.rv, rv);
    ck_assert_uint_eq(w.duration_ms, LEASE);
}
END_TEST

START_TEST(test_takeover_from_first_observation) {
    /* A renewTime from long ago means nothing: what counts is how long WE
     * have seen the record unchanged. */
    struct election e = make(US);
    struct election_record r = record(THEM, "2001-01-01T00:00:00Z", 0, "5");

    election_observe(&e, &r, 50000);
    ck_assert_int_eq(decide(&e, 50000).action, ELECTION_WAIT);
    election_observe(&e, &r, 60000); /* seen again: the clock keeps running */
    ck_assert_uint_eq(e.observed_at_ms, 50000);
    ck_assert_int_eq(decide(&e, 50000 + LEASE - 1).action, ELECTION_WAIT);
    ck_assert_int_eq(decide(&e, 50000 + LEASE).action, ELECTION_UPDATE);
    ck_assert(decide(&e, 50000 + LEASE).take_over);

    /* Each of holder, renewTime, transitions and resourceVersion restarts it. */
    {
        struct election_record changed[4] = {r, r, r, r};
        snprintf(changed[0].holder, sizeof(changed[0].holder), "node-c");
        snprintf(changed[1].renew_time, sizeof(changed[1].renew_time), "2001-01-01T00:00:01Z");
        changed[2].transitions = 1;
        snprintf(changed[3].rv, sizeof(changed[3].rv), "6");
        for (int i = 0; i < 4; i++) {
            struct election f = make(US);
            election_observe(&f, &r, 0);
            election_observe(&f, &changed[i], 10000);
            ck_assert_msg(f.observed_at_ms == 10000, "change %d did not restart the clock", i);
            ck_assert_int_eq(decide(&f, LEASE).action, ELECTION_WAIT);
            ck_assert_int_eq(decide(&f, 10000 + LEASE).action, ELECTION_UPDATE);
        }
    }
    /* The duration and acquire time alone do not. */
    {
        struct election f = make(US);
        struct election_record d = r;
        d.duration_ms = LEASE + 1000;
        snprintf(d.acquire_time, sizeof(d.acquire_time), "2001-01-01T00:00:02Z");
        election_observe(&f, &r, 0);
        election_observe(&f, &d, 10000);
        ck_assert_uint_eq(f.observed_at_ms, 0);
    }
    /* Absence and presence are changes too. */
    {
        struct election f = make(US);
        election_observe(&f, &absent, 0);
        election_observe(&f, &absent, 5000);
        ck_assert_uint_eq(f.observed_at_ms, 0);
        election_observe(&f, &r, 6000);
        ck_assert_uint_eq(f.observed_at_ms, 6000);
        election_observe(&f, &absent, 7000);
        ck_assert_uint_eq(f.observed_at_ms, 7000);
        ck_assert_int_eq(decide(&f, 7000).action, ELECTION_CREATE);
    }
}
END_TEST

START_TEST(test_takeover_uses_record_duration) {
    struct election e = make(US);
    struct election_record r = record(THEM, "t", 2, "8");

    /* The holder's own duration counts, longer or shorter than ours. */
    r.duration_ms = 40000;
    election_observe(&e, &r, 0);
    ck_assert_int_eq(decide(&e, 39999).action, ELECTION_WAIT);
    ck_assert_int_eq(decide(&e, 40000).action, ELECTION_UPDATE);
    e = make(US);
    r.duration_ms = 5000;
    election_observe(&e, &r, 0);
    ck_assert_int_eq(decide(&e, 4999).action, ELECTION_WAIT);
    ck_assert_int_eq(decide(&e, 5000).action, ELECTION_UPDATE);
    /* None at all: ours, not "free at once". */
    e = make(US);
    r.duration_ms = 0;
    election_observe(&e, &r, 0);
    ck_assert_int_eq(decide(&e, LEASE - 1).action, ELECTION_WAIT);
    ck_assert_int_eq(decide(&e, LEASE).action, ELECTION_UPDATE);
    /* What we write is always our own duration. */
    ck_assert_uint_eq(decide(&e, LEASE).duration_ms, LEASE);
}
END_TEST

START_TEST(test_empty_holder_taken_at_once) {
    /* A released Lease (holderIdentity emptied by a clean shutdown). */
    struct election e = make(US);
    struct election_record r = record("", "t", 5, "77");
    struct election_write w;

    election_observe(&e, &r, 1000);
    w = decide(&e, 1000);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert(w.take_over);
    ck_assert_uint_eq(w.transitions, 6);
    ck_assert_str_eq(w.rv, "77");
    ck_assert_str_eq(w.acquire_time, "");
    /* The count does not pass the API's int32. */
    r.transitions = INT32_MAX;
    election_observe(&e, &r, 2000);
    ck_assert_uint_eq(decide(&e, 2000).transitions, INT32_MAX);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Losing it                                                                */

START_TEST(test_lapse_without_renewal) {
    struct election e = make(US);
    struct election_record mine = record(US, "t0", 0, "1");
    struct election_record snapshot;

    election_observe(&e, &absent, 0);
    election_write_done(&e, true, &mine, 0, 40);
    ck_assert(election_is_leader(&e, 40));
    snapshot = e.observed;
    /* Every renewal fails from here (timeouts, 5xx): nothing changes but the
     * next try, and leadership ends renew_deadline after the last send. */
    for (uint64_t t = 2040; t < 20000; t += RETRY) {
        election_write_done(&e, false, NULL, t, t + 100);
        ck_assert_uint_eq(e.next_try_ms, t + 100 + RETRY);
        ck_assert_uint_eq(e.renewed_at_ms, 0);
        assert_record_eq(&e.observed, &snapshot);
        ck_assert_msg(election_is_leader(&e, t + 100) == (t + 100 < DEADLINE), "t=%" PRIu64, t);
    }
    ck_assert(election_is_leader(&e, DEADLINE - 1));
    ck_assert(!election_is_leader(&e, DEADLINE));
    /* A failure with a record passed changes nothing either. */
    {
        struct election_record other = record(THEM, "t9", 1, "99");
        election_write_done(&e, false, &other, 30000, 30001);
        ck_assert_str_eq(e.observed.holder, US);
    }
    /* The record still names us: the next read renews it, and a success
     * makes us lead again from that send. */
    election_observe(&e, &mine, 40000);
    ck_assert_int_eq(decide(&e, 40000).action, ELECTION_UPDATE);
    ck_assert(!decide(&e, 40000).take_over);
    election_write_done(&e, true, &mine, 40000, 40300);
    ck_assert(election_is_leader(&e, 40300));
    ck_assert(!election_is_leader(&e, 40000 + DEADLINE));
}
END_TEST

START_TEST(test_send_time_counts) {
    /* A slow answer does not extend leadership: it counts from the send. */
    struct election e = make(US);
    struct election_record mine = record(US, "t", 0, "1");

    election_observe(&e, &absent, 1000);
    election_write_done(&e, true, &mine, 1000, 9000);
    ck_assert_uint_eq(e.renewed_at_ms, 1000);
    ck_assert_uint_eq(e.observed_at_ms, 9000);
    ck_assert_uint_eq(e.next_try_ms, 9000 + RETRY);
    ck_assert(election_is_leader(&e, 9000));
    ck_assert(election_is_leader(&e, 1000 + DEADLINE - 1));
    ck_assert(!election_is_leader(&e, 1000 + DEADLINE));
    /* An answer later than renew_deadline: never a leader at all. */
    e = make(US);
    election_observe(&e, &absent, 0);
    election_write_done(&e, true, &mine, 0, DEADLINE + 1);
    ck_assert(!election_is_leader(&e, DEADLINE + 1));
}
END_TEST

START_TEST(test_other_holder_ends_leadership) {
    struct election e = make(US);
    struct election_record mine = record(US, "t", 0, "1");
    struct election_record theirs = record(THEM, "t2", 1, "2");

    election_observe(&e, &absent, 0);
    election_write_done(&e, true, &mine, 0, 10);
    ck_assert(election_is_leader(&e, 10));
    /* Someone else holds it (an operator edited it): we stop at once. */
    election_observe(&e, &theirs, 2000);
    ck_assert(!election_is_leader(&e, 2000));
    ck_assert_int_eq(decide(&e, 2000).action, ELECTION_WAIT);
    /* So does a deleted Lease. */
    election_observe(&e, &absent, 4000);
    election_write_done(&e, true, &mine, 4000, 4010);
    ck_assert(election_is_leader(&e, 4010));
    election_observe(&e, &absent, 6000);
    ck_assert(!election_is_leader(&e, 6000));
    /* A write whose answer names someone else does not make us lead. */
    election_write_done(&e, true, &theirs, 8000, 8010);
    ck_assert(!election_is_leader(&e, 8010));
    ck_assert_str_eq(e.observed.holder, THEM);
}
END_TEST

START_TEST(test_resign) {
    struct election e = make(US);
    struct election_record mine = record(US, "t", 0, "1");

    election_observe(&e, &absent, 0);
    election_write_done(&e, true, &mine, 0, 10);
    ck_assert(election_is_leader(&e, 10));
    election_resign(&e);
    ck_assert(!election_is_leader(&e, 10));
    ck_assert(!e.leader);
    election_resign(&e); /* twice is fine */
    /* The record still names us: a later renewal is a new leadership. */
    ck_assert_int_eq(decide(&e, 2010).action, ELECTION_UPDATE);
    election_write_done(&e, true, &mine, 2010, 2020);
    ck_assert(election_is_leader(&e, 2020));
}
END_TEST

START_TEST(test_conflict_one_winner) {
    /* Two candidates see the same dead holder's record and both take over
     * with its resourceVersion: the server takes the first, refuses the
     * second (409), and only the first leads. */
    struct election a = make(US), b = make("node-c");
    struct election_record dead = record(THEM, "t", 4, "300");
    struct election_record won = record(US, "t+15", 5, "301");
    struct election_write wa, wb;

    election_observe(&a, &dead, 0);
    election_observe(&b, &dead, 123456); /* a different clock */
    wa = decide(&a, LEASE);
    wb = decide(&b, 123456 + LEASE);
    ck_assert(wa.take_over && wb.take_over);
    ck_assert_str_eq(wa.rv, wb.rv);
    election_write_done(&a, true, &won, LEASE, LEASE + 20);
    election_write_done(&b, false, NULL, 123456 + LEASE, 123456 + LEASE + 30);
    ck_assert(election_is_leader(&a, LEASE + 20));
    ck_assert(!election_is_leader(&b, 123456 + LEASE + 30));
    /* b reads the winner's record and waits its full duration again. */
    election_observe(&b, &won, 123456 + LEASE + 2030);
    ck_assert_int_eq(decide(&b, 123456 + LEASE + 2030).action, ELECTION_WAIT);
    ck_assert_int_eq(decide(&b, 123456 + 2 * LEASE + 2029).action, ELECTION_WAIT);
}
END_TEST

START_TEST(test_next_deadline_and_read_failed) {
    struct election e = make(US);
    struct election_record mine = record(US, "t", 0, "1");

    ck_assert_uint_eq(election_next_deadline_ms(&e, 500), 0); /* a read is due */
    election_read_failed(&e, 500);
    ck_assert_uint_eq(e.next_try_ms, 500 + RETRY);
    ck_assert_uint_eq(election_next_deadline_ms(&e, 500), 500 + RETRY);
    election_observe(&e, &absent, 3000);
    ck_assert_uint_eq(election_next_deadline_ms(&e, 3000), 3000 + RETRY);
    election_write_done(&e, true, &mine, 3000, 3100);
    ck_assert_uint_eq(election_next_deadline_ms(&e, 3100), 3100 + RETRY);
    /* Renewals keep failing, and slowly: the lapse comes before the next read. */
    election_write_done(&e, false, NULL, 5100, 12000);
    ck_assert_uint_eq(election_next_deadline_ms(&e, 12000), 3000 + DEADLINE);
    /* After the lapse only the next read is left. */
    ck_assert_uint_eq(election_next_deadline_ms(&e, 3000 + DEADLINE), 12000 + RETRY);
}
END_TEST

START_TEST(test_long_strings_cut) {
    /* A record whose strings fill their buffers without a NUL is copied cut
     * and terminated, never read past. */
    struct election e = make(US);
    struct election_record r;
    struct election_write w;

    memset(&r, 'x', sizeof(r));
    r.present = true;
    r.duration_ms = LEASE;
    r.transitions = 1;
    election_observe(&e, &r, 0);
    ck_assert_uint_eq(strlen(e.observed.holder), ELECTION_HOLDER_SIZE - 1);
    ck_assert_uint_eq(strlen(e.observed.rv), ELECTION_RV_SIZE - 1);
    ck_assert_uint_eq(strlen(e.observed.acquire_time), ELECTION_TIME_SIZE - 1);
    w = decide(&e, LEASE);
    ck_assert_int_eq(w.action, ELECTION_UPDATE);
    ck_assert_uint_eq(strlen(w.rv), ELECTION_RV_SIZE - 1);
    /* Seen again, it is the same record. */
    election_observe(&e, &r, 1000);
    ck_assert_uint_eq(e.observed_at_ms, 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Simulation: three candidates, one Lease server, never two leaders        */

#define NODES 3

static uint64_t rng_state;

static uint64_t rnd(uint64_t n) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng_state >> 33) % n;
}

enum op { OP_IDLE, OP_GET, OP_WRITE };

struct node {
    struct election e;
    uint64_t clock_offset_ms; /* this node's monotonic clock = t + offset */
    enum op op;
    uint64_t sent_t, apply_t, answer_t; /* global times */
    bool lost;                          /* the answer never comes (timeout at answer_t) */
    bool applied, ok;
    struct election_write w;
    struct election_record result; /* GET: the snapshot; WRITE: the written record */
};

struct server {
    struct election_record r;
    unsigned next_rv;
};

static void apply(struct server *s, struct node *n, const char *identity, uint64_t t) {
    if (n->op == OP_GET) {
        n->result = s->r;
    } else if ((n->w.action == ELECTION_CREATE && !s->r.present) ||
               (n->w.action == ELECTION_UPDATE && s->r.present && !strcmp(s->r.rv, n->w.rv))) {
        struct election_record r = {.present = true, .duration_ms = n->w.duration_ms};
        snprintf(r.holder, sizeof(r.holder), "%s", identity);
        snprintf(r.renew_time, sizeof(r.renew_time), "T%" PRIu64, t);
        if (n->w.acquire_time[0])
            snprintf(r.acquire_time, sizeof(r.acquire_time), "%s", n->w.acquire_time);
        else
            snprintf(r.acquire_time, sizeof(r.acquire_time), "T%" PRIu64, t);
        r.transitions = n->w.transitions;
        snprintf(r.rv, sizeof(r.rv), "%u", s->next_rv++);
        s->r = r;
        n->result = r;
        n->ok = true;
    } else {
        n->ok = false; /* 409 */
    }
    n->applied = true;
}

/* Mostly quick, sometimes very slow: a slow answer is where send time and
 * answer time differ most. */
static uint64_t latency(void) {
    return rnd(6) ? rnd(300) : rnd(9000);
}

static void send_op(struct node *n, enum op op, uint64_t t, bool partitioned) {
    n->op = op;
    n->sent_t = t;
    n->apply_t = t + latency();
    n->answer_t = n->apply_t + latency();
    n->applied = false;
    n->ok = false;
    /* A partitioned node's requests may still reach the server; its answers do not. */
    n->lost = partitioned || rnd(10) == 0;
    if (partitioned && rnd(2))
        n->apply_t = UINT64_MAX; /* never arrives */
}

START_TEST(test_simulation_one_leader) {
    static const char *const names[NODES] = {"node-a", "node-b", "node-c"};
    /* Fewer histories under valgrind, which checks memory, not more cases. */
    const uint64_t seeds = getenv("EDGEWARDEN_UNDER_VALGRIND") ? 8 : 60;
    unsigned leader_ticks = 0, takeovers = 0;

    for (uint64_t seed = 1; seed <= seeds; seed++) {
        struct server s = {.r = {.present = false}, .next_rv = 1};
        struct node nodes[NODES];
        uint64_t partition_until[NODES] = {0};
        const char *last_leader = NULL;

        rng_state = seed;
        for (int i = 0; i < NODES; i++) {
            memset(&nodes[i], 0, sizeof(nodes[i]));
            nodes[i].e = make(names[i]);
            nodes[i].clock_offset_ms = rnd(1000000000);
            nodes[i].e.next_try_ms = nodes[i].clock_offset_ms + rnd(RETRY);
        }
        for (uint64_t t = 0; t < 300000; t += 50) {
            int leaders = 0;

            for (int i = 0; i < NODES; i++) {
                struct node *n = &nodes[i];
                uint64_t now = t + n->clock_offset_ms;
                bool partitioned = t < partition_until[i];

                if (!partitioned && rnd(1500) == 0)
                    partition_until[i] = t + 5000 + rnd(30000);
                if (n->op != OP_IDLE && !n->applied && t >= n->apply_t)
                    apply(&s, n, names[i], t);
                if (n->op == OP_GET && t >= n->answer_t) {
                    n->op = OP_IDLE;
                    if (n->lost) {
                        election_read_failed(&n->e, now);
                        continue;
                    }
                    election_observe(&n->e, &n->result, now);
                    election_decide(&n->e, now, &n->w);
                    if (n->w.action != ELECTION_WAIT)
                        send_op(n, OP_WRITE, t, partitioned);
                } else if (n->op == OP_WRITE && t >= n->answer_t) {
                    uint64_t sent = n->sent_t + n->clock_offset_ms;
                    n->op = OP_IDLE;
                    if (n->lost)
                        election_write_done(&n->e, false, NULL, sent, now);
                    else
                        election_write_done(&n->e, n->ok, n->ok ? &n->result : NULL, sent, now);
                    /* The worst moment to lose the API: right after a renewal. */
                    if (n->ok && !n->lost && rnd(4) == 0)
                        partition_until[i] = t + 15000 + rnd(20000);
                } else if (n->op == OP_IDLE && now >= n->e.next_try_ms) {
                    send_op(n, OP_GET, t, partitioned);
                }
                if (rnd(20000) == 0)
                    election_resign(&n->e);
            }
            for (int i = 0; i < NODES; i++) {
                if (election_is_leader(&nodes[i].e, t + nodes[i].clock_offset_ms)) {
                    leaders++;
                    if (last_leader && strcmp(last_leader, names[i]))
                        takeovers++;
                    last_leader = names[i];
                }
            }
            ck_assert_msg(leaders <= 1, "seed %" PRIu64 " t=%" PRIu64 ": %d leaders", seed, t,
                          leaders);
            leader_ticks += leaders;
        }
    }
    /* Not vacuous: there were leaders, and leadership changed hands. */
    ck_assert_uint_gt(leader_ticks, seeds * 300000 / 50 / 4);
    ck_assert_uint_gt(takeovers, 2 * seeds);
}
END_TEST

int main(void) {
    Suite *s = suite_create("election");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_nothing_observed_waits);
    tcase_add_test(tc, test_acquire_absent_then_renew);
    tcase_add_test(tc, test_our_record_after_restart);
    tcase_add_test(tc, test_wait_while_holder_renews);
    tcase_add_test(tc, test_takeover_from_first_observation);
    tcase_add_test(tc, test_takeover_uses_record_duration);
    tcase_add_test(tc, test_empty_holder_taken_at_once);
    tcase_add_test(tc, test_lapse_without_renewal);
    tcase_add_test(tc, test_send_time_counts);
    tcase_add_test(tc, test_other_holder_ends_leadership);
    tcase_add_test(tc, test_resign);
    tcase_add_test(tc, test_conflict_one_winner);
    tcase_add_test(tc, test_next_deadline_and_read_failed);
    tcase_add_test(tc, test_long_strings_cut);
    tcase_add_test(tc, test_simulation_one_leader);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
