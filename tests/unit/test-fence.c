/*
 * Tests for agent/fence.c. The verdict table and the feed rule are tables,
 * one row per case of docs/node-loss.md "Self-fencing"; the roll-call
 * schedule is a timeline; the deadlines are checked on fixed cases and then
 * against the rule itself on random states: nothing may change strictly
 * between now and fence_next_deadline_ms(), and something must change at it.
 * The timing is the defaults': D = 15 s, R = 5 s, W = 10 s.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fence.h"

#define D     15000
#define R     5000
#define W     10000
#define NEVER UINT64_MAX

static const struct fence_config config = {
    .lease_duration_ms = D, .renew_interval_ms = R, .watchdog_timeout_ms = W};

static struct fence make(void) {
    struct fence f;

    ck_assert_int_eq(fence_init(&f, &config), 0);
    return f;
}

/* ------------------------------------------------------------------------ */
/* The verdict of a roll call                                               */

#define YES                                                                                        \
    { true, true } /* answered, reaches the API server */
#define NO                                                                                         \
    { true, false } /* answered, does not */
#define MUTE                                                                                       \
    { false, false } /* did not answer */
#define MUTE_CLAIMS                                                                                \
    { false, true } /* did not answer; api_reachable means nothing */

static const struct {
    const char *name;
    size_t n;
    struct fence_peer_answer answers[4];
    enum fence_verdict verdict;
} verdicts[] = {
    {"no peer known", 0, {{0}}, FENCE_VERDICT_ISOLATED},
    {"one peer reaches the API", 1, {YES}, FENCE_VERDICT_CUT_OFF},
    {"one peer, no API", 1, {NO}, FENCE_VERDICT_OUTAGE},
    {"one peer silent", 1, {MUTE}, FENCE_VERDICT_ISOLATED},
    {"silent peer's flag ignored", 1, {MUTE_CLAIMS}, FENCE_VERDICT_ISOLATED},
    {"all answer, none reaches the API", 3, {NO, NO, NO}, FENCE_VERDICT_OUTAGE},
    {"one of three reaches the API", 3, {NO, YES, NO}, FENCE_VERDICT_CUT_OFF},
    {"a reachable peer beats a silent one", 3, {MUTE, NO, YES}, FENCE_VERDICT_CUT_OFF},
    {"one silent among outage answers", 3, {NO, NO, MUTE}, FENCE_VERDICT_ISOLATED},
    {"all silent", 4, {MUTE, MUTE, MUTE_CLAIMS, MUTE}, FENCE_VERDICT_ISOLATED},
    {"the last answer reaches the API", 4, {NO, NO, NO, YES}, FENCE_VERDICT_CUT_OFF},
};

START_TEST(test_verdict_of) {
    const struct fence_peer_answer *a = verdicts[_i].n ? verdicts[_i].answers : NULL;

    ck_assert_msg(fence_verdict_of(a, verdicts[_i].n) == verdicts[_i].verdict, "%s: got %s",
                  verdicts[_i].name, fence_verdict_name(fence_verdict_of(a, verdicts[_i].n)));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */

START_TEST(test_init) {
    static const struct fence_config bad[] = {
        {0, R, W}, {D, 0, W}, {D, R, 0}, {D, D, W}, {D, D + 1, W}, {0, 0, 0},
    };
    struct fence f, sentinel;

    f = make();
    ck_assert(!f.lease_ok_known);
    ck_assert_int_eq(f.verdict, FENCE_VERDICT_NONE);
    ck_assert(!f.round_running);
    ck_assert(!f.rounds_started);
    ck_assert_uint_eq(f.c.lease_duration_ms, D);
    ck_assert_uint_eq(f.c.renew_interval_ms, R);
    ck_assert_uint_eq(f.c.watchdog_timeout_ms, W);
    /* The smallest legal pair. */
    ck_assert_int_eq(fence_init(&f, &(struct fence_config){2, 1, 1}), 0);

    memset(&sentinel, 0xa5, sizeof(sentinel));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = sentinel;
        ck_assert_int_eq(fence_init(&f, &bad[i]), -EINVAL);
        ck_assert_msg(!memcmp(&f, &sentinel, sizeof(f)), "bad[%zu] changed the fence", i);
    }
    ck_assert_int_eq(fence_init(NULL, &config), -EINVAL);
    ck_assert_int_eq(fence_init(&f, NULL), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The feed rule                                                            */

static const struct {
    const char *name;
    bool lease_ok; /* fence_lease_ok(ok_ms) was called */
    uint64_t ok_ms;
    enum fence_verdict verdict; /* NONE: no roll call finished */
    uint64_t verdict_at_ms;
    uint64_t now_ms;
    bool feed;
} feeds[] = {
    {"nothing renewed yet", false, 0, FENCE_VERDICT_NONE, 0, 0, false},
    {"nothing renewed, an outage verdict", false, 0, FENCE_VERDICT_OUTAGE, 1000, 1000, false},
    {"rule 1: at the renewal", true, 1000, FENCE_VERDICT_NONE, 0, 1000, true},
    {"rule 1: before the renewal's send time", true, 1000, FENCE_VERDICT_NONE, 0, 500, true},
    {"rule 1: last ms of ok + D", true, 1000, FENCE_VERDICT_NONE, 0, 1000 + D - 1, true},
    {"rule 1: at ok + D", true, 1000, FENCE_VERDICT_NONE, 0, 1000 + D, false},
    {"rule 1: long after", true, 1000, FENCE_VERDICT_NONE, 0, 1000000, false},
    {"rule 1 holds whatever the verdict", true, 1000, FENCE_VERDICT_CUT_OFF, 2000, 3000, true},
    {"rule 1 holds when isolated", true, 1000, FENCE_VERDICT_ISOLATED, 2000, 3000, true},
    {"rule 2: fresh outage", true, 0, FENCE_VERDICT_OUTAGE, 20000, 20000, true},
    {"rule 2: outage R - 1 old", true, 0, FENCE_VERDICT_OUTAGE, 20000, 20000 + R - 1, true},
    {"rule 2: outage R old", true, 0, FENCE_VERDICT_OUTAGE, 20000, 20000 + R, false},
    {"rule 2: outage from before ok + D", true, 0, FENCE_VERDICT_OUTAGE, D - 1, D, true},
    {"rule 2: stale outage", true, 0, FENCE_VERDICT_OUTAGE, 10000, D, false},
    {"rule 3: cut off", true, 0, FENCE_VERDICT_CUT_OFF, 20000, 20000, false},
    {"rule 3: isolated", true, 0, FENCE_VERDICT_ISOLATED, 20000, 20000, false},
    {"no verdict after ok + D", true, 0, FENCE_VERDICT_NONE, 0, D, false},
};

START_TEST(test_feed_rule) {
    struct fence f = make();

    if (feeds[_i].lease_ok)
        fence_lease_ok(&f, feeds[_i].ok_ms);
    if (feeds[_i].verdict != FENCE_VERDICT_NONE) {
        fence_round_start(&f, feeds[_i].verdict_at_ms);
        fence_round_done(&f, feeds[_i].verdict, feeds[_i].verdict_at_ms);
    }
    ck_assert_msg(fence_should_feed(&f, feeds[_i].now_ms) == feeds[_i].feed, "%s: expected %s",
                  feeds[_i].name, feeds[_i].feed ? "feed" : "no feed");
}
END_TEST

START_TEST(test_lease_ok_only_forward) {
    struct fence f = make();

    fence_lease_ok(&f, 0); /* 0 is a time like any other */
    ck_assert(f.lease_ok_known);
    ck_assert_uint_eq(f.lease_ok_ms, 0);
    ck_assert(fence_should_feed(&f, D - 1));
    fence_lease_ok(&f, 10000);
    ck_assert_uint_eq(f.lease_ok_ms, 10000);
    /* A late answer to an older renewal does not move it back. */
    fence_lease_ok(&f, 9000);
    ck_assert_uint_eq(f.lease_ok_ms, 10000);
    ck_assert(fence_should_feed(&f, 10000 + D - 1));
    ck_assert(!fence_should_feed(&f, 10000 + D));

    /* The same time again does not restart the roll calls; a later one does. */
    fence_round_start(&f, 20000);
    fence_round_done(&f, FENCE_VERDICT_ISOLATED, 20100);
    fence_lease_ok(&f, 10000);
    ck_assert(f.rounds_started);
    fence_lease_ok(&f, 21000);
    ck_assert(!f.rounds_started);
    ck_assert_uint_eq(f.lease_ok_ms, 21000);
    /* The verdict stays: it is a real roll call's, and ages out by itself. */
    ck_assert_int_eq(f.verdict, FENCE_VERDICT_ISOLATED);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Roll calls                                                               */

START_TEST(test_round_schedule) {
    struct fence f = make();

    /* Never before a first renewal. */
    ck_assert(!fence_round_due(&f, 0));
    ck_assert(!fence_round_due(&f, UINT64_MAX));

    fence_lease_ok(&f, 1000);
    ck_assert(!fence_round_due(&f, 1000));
    ck_assert(!fence_round_due(&f, 1000 + 2 * R - 1)); /* one renewal may be late */
    ck_assert(fence_round_due(&f, 1000 + 2 * R));      /* ok + 2R: one was missed */
    ck_assert(fence_round_due(&f, 1000 + 2 * R + 1));

    /* A late start: the next is R after this start, not after the due time. */
    fence_round_start(&f, 12000);
    ck_assert(f.round_running);
    ck_assert_uint_eq(f.round_started_ms, 12000);
    ck_assert_uint_eq(f.last_round_ms, 12000);
    /* Never two at once, however long the first takes. */
    ck_assert(!fence_round_due(&f, 12000 + R));
    ck_assert(!fence_round_due(&f, 100000));
    fence_round_done(&f, FENCE_VERDICT_ISOLATED, 13000);
    ck_assert(!f.round_running);
    ck_assert_int_eq(f.verdict, FENCE_VERDICT_ISOLATED);
    ck_assert_uint_eq(f.verdict_at_ms, 13000);
    ck_assert(!fence_round_due(&f, 12000 + R - 1));
    ck_assert(fence_round_due(&f, 12000 + R));

    /* A round that took longer than R: due as soon as it is done. */
    fence_round_start(&f, 17000);
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, 17000 + R + 500);
    ck_assert(fence_round_due(&f, 17000 + R + 500));

    /* A renewal succeeds: the schedule restarts from it. */
    fence_lease_ok(&f, 20000);
    ck_assert(!fence_round_due(&f, 20000 + 2 * R - 1));
    ck_assert(fence_round_due(&f, 20000 + 2 * R));
    /* Even when the last round started less than R before that: a renewal
     * sent at 22000 answers after the round of 30000. */
    fence_round_start(&f, 30000);
    fence_round_done(&f, FENCE_VERDICT_CUT_OFF, 30200);
    fence_lease_ok(&f, 22000);
    ck_assert(!fence_round_due(&f, 22000 + 2 * R - 1));
    ck_assert(fence_round_due(&f, 22000 + 2 * R)); /* before 30000 + R */
    /* An older renewal answered late changes nothing. */
    fence_lease_ok(&f, 21000);
    ck_assert_uint_eq(f.lease_ok_ms, 22000);

    /* A verdict without a running round is recorded all the same. */
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, 31000);
    ck_assert_int_eq(f.verdict, FENCE_VERDICT_OUTAGE);
    ck_assert_uint_eq(f.verdict_at_ms, 31000);
}
END_TEST

/* The whole spell of an outage: the roll calls keep the feeding going, and a
 * cut-off or an incomplete roll call ends it within R. */
START_TEST(test_outage_spell) {
    struct fence f = make();
    uint64_t t;

    fence_lease_ok(&f, 0);
    /* Renewals fail from here on. Roll calls every R from 2R, each an outage. */
    for (t = 2 * R; t < 10 * R; t += R) {
        ck_assert(fence_round_due(&f, t));
        fence_round_start(&f, t);
        ck_assert(!fence_round_due(&f, t));
        fence_round_done(&f, FENCE_VERDICT_OUTAGE, t + 100);
        ck_assert_msg(fence_should_feed(&f, t + 100), "t=%" PRIu64, t);
        ck_assert_msg(fence_should_feed(&f, t + R - 1), "t=%" PRIu64, t);
    }
    /* Now a peer reaches the API server again: stop at once. */
    fence_round_start(&f, t);
    fence_round_done(&f, FENCE_VERDICT_CUT_OFF, t + 100);
    ck_assert(!fence_should_feed(&f, t + 100));
    /* Between the start of a round and its verdict the old outage still
     * counts, but only for R after it was reached. */
    fence_round_start(&f, t + R);
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, t + R + 100);
    fence_round_start(&f, t + 2 * R);
    ck_assert(fence_should_feed(&f, t + 2 * R + 99));
    ck_assert(!fence_should_feed(&f, t + 2 * R + 100));
    fence_round_done(&f, FENCE_VERDICT_ISOLATED, t + 2 * R + 900);
    ck_assert(!fence_should_feed(&f, t + 2 * R + 900));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Deadlines                                                                */

START_TEST(test_deadlines) {
    struct fence f = make();

    ck_assert_uint_eq(fence_next_deadline_ms(&f, 0), NEVER);
    fence_lease_ok(&f, 0);
    /* The first roll call (2R) comes before the end of feeding (D). */
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 0), 2 * R);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 2 * R - 1), 2 * R);
    /* A due round stays due until started: only the feeding's end is left. */
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 2 * R), D);
    fence_round_start(&f, 2 * R);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 2 * R), D);
    /* Running past D: nothing changes until the verdict. */
    ck_assert_uint_eq(fence_next_deadline_ms(&f, D), NEVER);
    /* An outage extends feeding to verdict + R; the next round is due already. */
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, D + 500);
    ck_assert(fence_round_due(&f, D + 500));
    ck_assert_uint_eq(fence_next_deadline_ms(&f, D + 500), D + 500 + R);
    fence_round_start(&f, D + 600);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, D + 600), D + 500 + R);
    fence_round_done(&f, FENCE_VERDICT_CUT_OFF, D + 700);
    /* Not fed any more; the next round at last start + R. */
    ck_assert_uint_eq(fence_next_deadline_ms(&f, D + 700), D + 600 + R);

    /* A renewal moves both. */
    fence_lease_ok(&f, 30000);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 30000), 30000 + 2 * R);
    /* An outage verdict that ends before ok + D is no deadline of its own. */
    fence_round_start(&f, 30001);
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, 30002);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 30002), 30000 + 2 * R);
    ck_assert_uint_eq(fence_next_deadline_ms(&f, 30000 + 2 * R), 30000 + D);
}
END_TEST

START_TEST(test_saturation) {
    struct fence f = make();

    /* Times near the end of the clock saturate instead of wrapping. */
    fence_lease_ok(&f, UINT64_MAX - 100);
    ck_assert(fence_should_feed(&f, UINT64_MAX - 1));
    ck_assert(!fence_round_due(&f, UINT64_MAX - 1));
    ck_assert_uint_eq(fence_next_deadline_ms(&f, UINT64_MAX - 100), NEVER);
    fence_round_start(&f, UINT64_MAX - 50);
    fence_round_done(&f, FENCE_VERDICT_OUTAGE, UINT64_MAX - 10);
    ck_assert(fence_should_feed(&f, UINT64_MAX - 1));
    ck_assert(!fence_round_due(&f, UINT64_MAX - 1));
}
END_TEST

static uint64_t rng_state;

static uint64_t rnd(uint64_t n) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng_state >> 33) % n;
}

/* Random histories: between now and the deadline nothing changes; at the
 * deadline something does. */
START_TEST(test_deadline_is_exact) {
    /* Fewer histories under valgrind, which checks memory, not more cases. */
    const uint64_t seeds = getenv("EDGEWARDEN_UNDER_VALGRIND") ? 30 : 300;

    for (uint64_t seed = 1; seed <= seeds; seed++) {
        struct fence f = make();
        uint64_t now = 0;

        rng_state = seed;
        for (int step = 0; step < 40; step++) {
            uint64_t next, probe;
            bool feed, due;

            now += rnd(3 * R);
            switch (rnd(4)) {
            case 0:
                fence_lease_ok(&f, now >= 2000 ? now - rnd(2000) : now);
                break;
            case 1:
                if (fence_round_due(&f, now))
                    fence_round_start(&f, now);
                break;
            case 2:
                if (f.round_running)
                    fence_round_done(&f, (enum fence_verdict)(1 + rnd(3)), now);
                break;
            default:
                break;
            }
            feed = fence_should_feed(&f, now);
            due = fence_round_due(&f, now);
            next = fence_next_deadline_ms(&f, now);
            ck_assert_uint_gt(next, now);
            for (int k = 0; k < 8; k++) {
                probe = next == NEVER ? now + rnd(10 * D) : now + rnd(next - now);
                ck_assert_msg(fence_should_feed(&f, probe) == feed &&
                                  fence_round_due(&f, probe) == due,
                              "seed %" PRIu64 " step %d: changed at %" PRIu64 " before %" PRIu64,
                              seed, step, probe, next);
            }
            if (next != NEVER)
                ck_assert_msg(
                    fence_should_feed(&f, next) != feed || fence_round_due(&f, next) != due,
                    "seed %" PRIu64 " step %d: nothing changed at %" PRIu64, seed, step, next);
        }
    }
}
END_TEST

START_TEST(test_names) {
    ck_assert_str_eq(fence_verdict_name(FENCE_VERDICT_NONE), "none");
    ck_assert_str_eq(fence_verdict_name(FENCE_VERDICT_CUT_OFF), "cut_off");
    ck_assert_str_eq(fence_verdict_name(FENCE_VERDICT_OUTAGE), "outage");
    ck_assert_str_eq(fence_verdict_name(FENCE_VERDICT_ISOLATED), "isolated");
    ck_assert_str_eq(fence_verdict_name((enum fence_verdict)9), "invalid");
    ck_assert_str_eq(fence_verdict_name((enum fence_verdict) - 1), "invalid");
}
END_TEST

int main(void) {
    Suite *s = suite_create("fence");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_loop_test(tc, test_verdict_of, 0, (int)(sizeof(verdicts) / sizeof(verdicts[0])));
    tcase_add_test(tc, test_init);
    tcase_add_loop_test(tc, test_feed_rule, 0, (int)(sizeof(feeds) / sizeof(feeds[0])));
    tcase_add_test(tc, test_lease_ok_only_forward);
    tcase_add_test(tc, test_round_schedule);
    tcase_add_test(tc, test_outage_spell);
    tcase_add_test(tc, test_deadlines);
    tcase_add_test(tc, test_saturation);
    tcase_add_test(tc, test_deadline_is_exact);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
