/*
 * edgewarden's node-loss protocol (docs/node-loss.md) as a Promela model for
 * spin. The property: never two nodes running SQL on the same volume.
 *
 * Three agents. Node 0 runs SQL on the volume at the start; its agent renews
 * its heartbeat Lease, feeds a watchdog under the fencing rule and holds roll
 * calls of its peers. Node 1 is the failover target; its agent and node 2's
 * are candidates for the remediator Lease, renew heartbeat Leases of their
 * own and answer node 0's roll calls. The API server holds every Lease, the
 * out-of-service taint and, through it, the volume. Time is a discrete clock
 * of ticks; every clock in the model is an age in ticks that stops growing
 * once no rule can tell larger values apart, which keeps the state space
 * finite.
 *
 * Everything happens in one process: each branch of the loop is one atomic
 * event (a tick, a request with its answer, a feed, a roll call), so spin
 * explores every order of events, every schedule the rules allow and every
 * loss. Any request or answer may be lost: an agent may always skip a step,
 * and every request that reaches the API server has a twin whose answer is
 * lost. A partition is a run of losses on one link, so this covers every
 * partition; -DLINKS adds explicit link state (node-API, node 0-peer) that
 * goes down and up, for the same behaviours in many more states.
 *
 * Build flags (spin -D...):
 *   NO_FENCE_WAIT        the remediator acts as soon as the Lease expired,
 *                        without waiting for the fencing deadline: unsafe
 *   CLAIM_NO_FAILOVER    assert that failover never happens; spin must refute
 *                        it (the model is not safe by never failing over)
 * Assumptions the documented protocol needs, each dropped by a flag that
 * shows a counterexample (docs/model/README.md, "Findings"):
 *   STALE_PEERS          node 0 asks only the peers that were live when it
 *                        last reached the API (the default: every agent)
 *   WATCH_LAG            the remediator's watch of node 0's Lease may lag
 *                        the API server (the default: the remediator sees
 *                        the records as they are, which covers a watch plus
 *                        the fresh read before acting)
 *   REBOOT               a fired watchdog reboots node 0 and the node comes
 *                        back (the default: it stays down)
 *   AGENT_RESTART        node 0's agent stops cleanly (disarms the watchdog)
 *                        and starts again while SQL runs
 *   VM_PAUSE             node 0 is a VM that can be paused; its watchdog
 *                        does not count while it is (the default: no pause)
 *   RD > D, e.g. -DRD=5 -DLE=6: a leader acts longer than its /peer answer
 *                        says it reaches the API server
 * and the fixes the README proposes, which spin verifies:
 *   LEADER_IN_PEERS      with STALE_PEERS: node 0 advertises its roll-call
 *                        set in its Lease, and a remediator not in it does not
 *                        act on node 0
 *   REREAD_BEFORE_ACT    with WATCH_LAG: the remediator reads node 0's Lease
 *                        fresh before the taint and acts only if unchanged
 *   SQL_WAITS_FOR_AGENT  with REBOOT: SQL starts on a booted node only after
 *                        its agent has renewed its Lease
 *   FENCED_FALSE_FIRST   with AGENT_RESTART: a clean stop writes fenced:
 *                        "false" (acknowledged) before it disarms
 */

/* Timing, in ticks. One tick is the heartbeat renew interval R, 5 s with the
 * defaults (docs/configuration.md), whose ratios the defaults here keep:
 * D = 15 s = 3 ticks; W = 10 s = 2 ticks; fenceMargin 2 s, rounded up to 1
 * tick; election leaseDuration 15 s = 3 ticks, renewDeadline 10 s = 2 ticks.
 * Any of them can be changed with -D, e.g. spin -a -DD=5 -DW=3. */
#ifndef R
#define R 1   /* heartbeat renew interval; roll calls from ok + 2R; verdicts fresh for R */
#endif
#ifndef D
#define D 3   /* heartbeat leaseDuration */
#endif
#ifndef W
#define W 2   /* watchdog timeout */
#endif
#ifndef M
#define M 1   /* remediation.fenceMargin */
#endif
#ifndef LE
#define LE 3  /* remediation.election.leaseDuration */
#endif
#ifndef RD
#define RD 2  /* remediation.election.renewDeadline */
#endif

#define DEADLINE (D + W + M) /* seen + D + W + margin */
#define STALE    (R + 1)     /* a verdict age meaning "no fresh outage verdict" */
#define NOBODY   3           /* holder of an empty remediator Lease */
#define PEERS    6           /* a set of agents: bit j for agent j (1 and 2) */

#if defined(REBOOT) || defined(AGENT_RESTART)
#define ARMING /* node 0's watchdog can be disarmed, and its Lease say so */
#endif

/* ---- what the property is about ------------------------------------- */
bit sql0 = 1;  /* SQL runs on node 0 */
bit sql1 = 0;  /* SQL runs on node 1 */
bit up0 = 1;   /* node 0 is running (a fired watchdog stops it) */
bit oos = 0;   /* out-of-service on node 0: pod force-deleted, volume to node 1 */

/* ---- links ------------------------------------------------------------ */
#ifdef LINKS
bit api_link[3] = 1;  /* node j <-> API server */
bit peer_link[3] = 1; /* node 0 <-> node j (j = 1, 2) */
#define API(j)  api_link[j]
#define PEER(j) peer_link[j]
#else
#define API(j)  1
#define PEER(j) 1
#endif

/* ---- API server -------------------------------------------------------- */
byte hb_age[3] = 0;   /* ticks since node j's heartbeat Lease last changed */
byte holder = NOBODY; /* the remediator Lease's holderIdentity */

/* ---- node 0's agent: fencing (agent/fence.c, agent/cluster.c) --------- */
byte ok_age = 0;          /* ticks since the last successful renewal was sent */
byte wd_age = 0;          /* ticks since the last feed */
byte verdict_age = STALE; /* age of the last roll call, if its verdict was outage */
byte known0 = PEERS;      /* the peers it asks */

/* ---- agents 1 and 2: /peer and the election (agent/election.c) -------- */
byte api_ok[3] = 0;   /* ticks since its last successful API answer: /peer's apiReachable */
bit e_dirty[3] = 1;   /* the remediator Lease changed since it last read it */
byte e_obs[3] = 0;    /* ticks since it first saw the Lease's current record */
bit leading[3] = 0;   /* it believes it is the remediator */
byte e_renew[3] = 0;  /* ticks since its last successful renewal was sent */
byte lead_age[3] = 0; /* ticks since it became leader: its observation clock */

#if defined(STALE_PEERS) && defined(LEADER_IN_PEERS)
byte adv0 = PEERS;         /* roll-call set in node 0's current Lease record */
byte known0_acked = PEERS; /* the set sent with its last acknowledged renewal */
#endif
#ifdef WATCH_LAG
bit view_dirty[3] = 0; /* node 0's Lease changed and the leader's watch has not shown it */
byte view_age[3] = 0;  /* ticks since its watch showed node 0's current record */
#endif
#ifdef ARMING
bit armed0 = 1;     /* node 0's watchdog is armed */
bit hb_fenced0 = 1; /* node 0's Lease record says fenced: "true" */
#endif
#ifdef REBOOT
bit ready0 = 0;     /* node 0's kubelet posted Ready since it booted */
#endif
#ifdef VM_PAUSE
bit paused0 = 0;    /* node 0's VM is paused: nothing on it runs, its watchdog stands still */
#endif

#define MIN(a, b) ((a) < (b) -> (a) : (b))
#define HAS(set, j) (((set) >> (j)) & 1)

inline grow(x, cap) {
    if
    :: x < cap -> x++
    :: else -> skip
    fi
}

/* ---- node 0's agent ---------------------------------------------------- */

#ifdef ARMING
#define ARMED armed0
#else
#define ARMED 1
#endif
#ifdef VM_PAUSE
#define RUNS0 (up0 && !paused0)
#else
#define RUNS0 up0
#endif

/* The peers node 0 asks in a roll call. */
#if defined(STALE_PEERS) && defined(LEADER_IN_PEERS)
#define ROLL_CALL (known0 | known0_acked)
#else
#define ROLL_CALL known0
#endif

/* Every peer asked answers and none reaches the API server: the only
 * outcome that is an outage verdict. */
#define ANSWERS_NO(j) (!HAS(ROLL_CALL, j) || (PEER(j) && api_ok[j] >= D))
#define OUTAGE_POSSIBLE (ROLL_CALL != 0 && ANSWERS_NO(1) && ANSWERS_NO(2))

/* The fencing rule: feed while now < ok + D, else only on a fresh outage. */
#define MAY_FEED (ARMED && (ok_age < D || verdict_age <= R))

/* A renewal of node 0's Lease reaches the API server. */
inline hb0_lands() {
    hb_age[0] = 0;
#ifdef WATCH_LAG
    view_dirty[1] = leading[1];
    view_dirty[2] = leading[2];
#endif
#ifdef ARMING
    hb_fenced0 = armed0;
#endif
#if defined(STALE_PEERS) && defined(LEADER_IN_PEERS)
    adv0 = known0;
#endif
}

/* Its answer comes back: ok moves to the send time (now: the step is
 * atomic); the agent arms the watchdog if it had not yet, and its list of
 * heartbeat Leases is as fresh as this answer. */
inline hb0_answered() {
    ok_age = 0;
#ifdef ARMING
    if
    :: !armed0 -> armed0 = 1; wd_age = 0
    :: else -> skip
    fi;
#endif
#ifdef STALE_PEERS
#ifdef LEADER_IN_PEERS
    known0_acked = known0;
#endif
    known0 = ((hb_age[1] < D) << 1) | ((hb_age[2] < D) << 2);
#endif
}

/* ---- the remediator ----------------------------------------------------- */

/* seen: when the leader first saw node 0's current record, or became
 * leader, whichever is later; as an age. */
#ifdef WATCH_LAG
#define SEEN0(c) MIN(view_age[c], lead_age[c])
#else
#define SEEN0(c) MIN(hb_age[0], lead_age[c])
#endif

#define LIVE(c, j) (MIN(hb_age[j], lead_age[c]) < D)
#define QUORUM(c) (2 * ((SEEN0(c) < D) + LIVE(c, 1) + LIVE(c, 2)) >= 3)

#ifdef NO_FENCE_WAIT
#define WAITED(c) (SEEN0(c) >= D)
#else
#define WAITED(c) (SEEN0(c) >= DEADLINE)
#endif

#ifdef ARMING
#define FENCED hb_fenced0
#else
#define FENCED 1
#endif
/* "node gone" is taken as true (more behaviours than the real check),
 * except that a booted node whose kubelet posted Ready is not gone. */
#ifdef REBOOT
#define NODE_GONE (!ready0)
#else
#define NODE_GONE 1
#endif
#if defined(STALE_PEERS) && defined(LEADER_IN_PEERS)
#define KNOWN_TO_NODE0(c) HAS(adv0, c)
#else
#define KNOWN_TO_NODE0(c) 1
#endif
#if defined(WATCH_LAG) && defined(REREAD_BEFORE_ACT)
#define FRESH_READ(c) (!view_dirty[c])
#else
#define FRESH_READ(c) 1
#endif

#define MAY_REMEDIATE(c) \
    (leading[c] && API(c) && WAITED(c) && QUORUM(c) && FENCED && NODE_GONE && \
     KNOWN_TO_NODE0(c) && FRESH_READ(c))

/* client-go: take or renew the Lease when it is ours, empty, or unchanged
 * for LE of our own clock since we first saw its record. */
#define MAY_TAKE(c) \
    (holder == c || holder == NOBODY || (!e_dirty[c] && e_obs[c] >= LE))

/* A GET of the remediator Lease answered. */
inline e_read(c) {
    api_ok[c] = 0;
    if
    :: e_dirty[c] -> e_dirty[c] = 0; e_obs[c] = 0
    :: else -> skip
    fi
}

/* A PUT landed (its resourceVersion matched: the read and the write are one
 * step): the record is ours, the other candidate's view is out of date. */
inline e_write(c, other) {
    holder = c;
    e_dirty[c] = 0;
    e_obs[c] = 0;
    e_dirty[other] = 1;
    e_obs[other] = 0
}

/* Its answer came back: renewed at its send time; a candidate that was not
 * leading becomes leader, restarts its observation clock and lists. */
inline e_won(c) {
    e_renew[c] = 0;
    if
    :: !leading[c] ->
        leading[c] = 1;
        lead_age[c] = 0;
#ifdef WATCH_LAG
        view_dirty[c] = 0;
        view_age[c] = 0;
#endif
    :: else -> skip
    fi
}

inline remediate(c) {
    printf("remediator %d: out-of-service on node 0; the volume moves to node 1, SQL starts there\n", c);
    oos = 1;
    assert(!sql0); /* never two nodes running SQL on the same volume */
    sql1 = 1;
#ifdef CLAIM_NO_FAILOVER
    assert(!sql1);
#endif
}

/* ---- the clock ------------------------------------------------------------ */

inline lead_tick(c) {
    if
    :: leading[c] ->
        grow(e_renew[c], RD);
        grow(lead_age[c], DEADLINE);
#ifdef WATCH_LAG
        grow(view_age[c], DEADLINE);
#endif
        if
        :: e_renew[c] >= RD -> /* renewDeadline passed: it stops acting */
            leading[c] = 0;
            e_renew[c] = 0;
            lead_age[c] = 0;
#ifdef WATCH_LAG
            view_dirty[c] = 0;
            view_age[c] = 0;
#endif
        :: else -> skip
        fi
    :: else -> skip
    fi;
    if
    :: holder != c && holder != NOBODY && !e_dirty[c] -> grow(e_obs[c], LE)
    :: else -> skip
    fi
}

inline tick() {
    grow(hb_age[0], DEADLINE);
    grow(hb_age[1], D);
    grow(hb_age[2], D);
    grow(api_ok[1], D);
    grow(api_ok[2], D);
    lead_tick(1);
    lead_tick(2);
    if
    :: up0 && ARMED ->
        grow(ok_age, D);
        grow(verdict_age, STALE);
#ifdef VM_PAUSE
        if
        :: paused0 -> skip /* the watchdog stands still with the VM */
        :: else -> wd_age++
        fi;
#else
        wd_age++;
#endif
        if
        :: wd_age >= W -> /* the watchdog fires: node 0 reboots, its SQL dies */
            up0 = 0;
            sql0 = 0;
            ok_age = 0;
            wd_age = 0;
            verdict_age = STALE;
#ifdef REBOOT
            ready0 = 0;
#endif
        :: else -> skip
        fi
    :: else -> skip
    fi
}

/* The printf()s narrate a trail replayed with spin -t; pan ignores them. */
active proctype world() {
    do
    /* time passes */
    :: d_step {
        tick();
        printf("tick  node0 up=%d sql0=%d ok_age=%d wd_age=%d outage_age=%d known=%d | hb_age %d %d %d | api_ok %d %d | holder %d leading %d %d lead_age %d %d\n",
               up0, sql0, ok_age, wd_age, verdict_age, known0, hb_age[0], hb_age[1], hb_age[2],
               api_ok[1], api_ok[2], holder, leading[1], leading[2], lead_age[1], lead_age[2])
       }

    /* node 0's agent: renew (the request lands; its answer may be lost) */
    :: RUNS0 && API(0) -> d_step { printf("node 0 renews its Lease\n"); hb0_lands(); hb0_answered() }
    :: RUNS0 && API(0) -> d_step { printf("node 0's renewal lands, its answer is lost\n"); hb0_lands() }
    /* feed the watchdog */
    :: RUNS0 && MAY_FEED && wd_age > 0 -> d_step { printf("node 0 feeds its watchdog\n"); wd_age = 0 }
    /* roll call: outage, or anything else (cut off, isolated) */
    :: RUNS0 && ARMED && ok_age >= 2 * R && OUTAGE_POSSIBLE ->
        d_step { printf("node 0 roll call of peers %d: outage\n", ROLL_CALL); verdict_age = 0 }
    :: RUNS0 && ARMED && ok_age >= 2 * R && verdict_age != STALE ->
        d_step { printf("node 0 roll call: cut off or isolated\n"); verdict_age = STALE }

    /* agents 1 and 2: heartbeat */
    :: API(1) -> d_step { printf("agent 1 renews its Lease\n"); hb_age[1] = 0; api_ok[1] = 0 }
    :: API(1) -> d_step { printf("agent 1's renewal lands, its answer is lost\n"); hb_age[1] = 0 }
    :: API(2) -> d_step { printf("agent 2 renews its Lease\n"); hb_age[2] = 0; api_ok[2] = 0 }
    :: API(2) -> d_step { printf("agent 2's renewal lands, its answer is lost\n"); hb_age[2] = 0 }
    /* election: read; read and write with the answer lost; read, write, answer */
    :: API(1) -> d_step { printf("agent 1 reads the remediator Lease\n"); e_read(1) }
    :: API(1) && MAY_TAKE(1) ->
        d_step { printf("agent 1 writes the remediator Lease, the answer is lost\n"); e_read(1); e_write(1, 2) }
    :: API(1) && MAY_TAKE(1) ->
        d_step { printf("agent 1 takes or renews the remediator Lease\n"); e_read(1); e_write(1, 2); e_won(1) }
    :: API(2) -> d_step { printf("agent 2 reads the remediator Lease\n"); e_read(2) }
    :: API(2) && MAY_TAKE(2) ->
        d_step { printf("agent 2 writes the remediator Lease, the answer is lost\n"); e_read(2); e_write(2, 1) }
    :: API(2) && MAY_TAKE(2) ->
        d_step { printf("agent 2 takes or renews the remediator Lease\n"); e_read(2); e_write(2, 1); e_won(2) }
#ifdef WATCH_LAG
    /* the leader's watch delivers node 0's new record */
    :: leading[1] && API(1) && view_dirty[1] ->
        d_step { printf("agent 1's watch shows node 0's new record\n"); view_dirty[1] = 0; view_age[1] = 0 }
    :: leading[2] && API(2) && view_dirty[2] ->
        d_step { printf("agent 2's watch shows node 0's new record\n"); view_dirty[2] = 0; view_age[2] = 0 }
#endif

    /* the remediator applies out-of-service: the volume detaches from node 0,
     * attaches to node 1, SQL starts there. Nothing changes afterwards: the
     * pod on node 0 is gone, so node 0 never starts SQL again. */
    :: MAY_REMEDIATE(1) -> d_step { remediate(1) }; break
    :: MAY_REMEDIATE(2) -> d_step { remediate(2) }; break

#ifdef REBOOT
    /* node 0 boots again: a fresh agent, its watchdog not armed */
    :: !up0 ->
        d_step { printf("node 0 is back from its reboot\n"); up0 = 1; armed0 = 0; ok_age = 0; wd_age = 0; verdict_age = STALE }
    /* its kubelet reaches the API server: it posts Ready, or starts the SQL
     * pod still bound to node 0, on the volume still attached there */
    :: up0 && API(0) && !ready0 -> d_step { printf("node 0's kubelet posts Ready\n"); ready0 = 1 }
#ifdef SQL_WAITS_FOR_AGENT
    :: up0 && armed0 && API(0) && !sql0 ->
#else
    :: up0 && API(0) && !sql0 ->
#endif
        d_step { printf("node 0's kubelet starts the SQL pod again\n"); assert(!sql1); sql0 = 1 }
#endif

#ifdef AGENT_RESTART
    /* the agent stops cleanly (an upgrade, a restart): magic close, the
     * watchdog stops counting; a new agent starts, SQL keeps running */
#ifdef FENCED_FALSE_FIRST
    :: RUNS0 && armed0 && API(0) ->
        d_step {
            printf("node 0's agent writes fenced: false, then stops cleanly (disarms) and starts again\n");
            hb0_lands(); hb_fenced0 = 0; ok_age = 0;
            armed0 = 0; wd_age = 0; verdict_age = STALE
        }
#else
    :: RUNS0 && armed0 ->
        d_step { printf("node 0's agent stops cleanly (disarms) and starts again\n"); armed0 = 0; ok_age = 0; wd_age = 0; verdict_age = STALE }
#endif
#endif

#ifdef VM_PAUSE
    :: up0 && !paused0 -> d_step { printf("node 0's VM is paused\n"); paused0 = 1 }
    :: paused0 -> d_step { printf("node 0's VM resumes\n"); paused0 = 0 }
#endif

#ifdef LINKS
    /* partitions */
    :: api_link[0] = 1 - api_link[0]
    :: api_link[1] = 1 - api_link[1]
    :: api_link[2] = 1 - api_link[2]
    :: peer_link[1] = 1 - peer_link[1]
    :: peer_link[2] = 1 - peer_link[2]
#endif
    od
}
