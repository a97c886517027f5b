/* test_replication.c - the replication logic (replica/partition_repl.c,
 * replica/truncation.c): direct cases ported from Kafka 3.6.1's
 * PartitionTest, LeaderEpochFileCacheTest and AbstractFetcherThreadTest, and
 * a seeded deterministic simulation of one partition on 3 brokers.
 *
 * The simulation: a controller stub (leader/ISR/epochs, AlterPartition
 * validation as ReplicationControlManager: leader epoch, partition epoch,
 * KIP-903 broker epochs, random OPERATION_NOT_ATTEMPTED and lost answers
 * that the leader retries), a network that delays, drops and reorders
 * fetch requests and responses (metadata reaches each broker in order, late),
 * a clock the test moves, producers with acks=all and min.insync.replicas=2
 * sent to the believed leader or a random broker (zombie leaders included),
 * broker crashes (the controller fences the broker after a session timeout,
 * removes it from the ISR unless it is the last member, elects a new leader
 * from the ISR, unclean election off; at that point the crashed broker's
 * unflushed tail is lost: its last k records are dropped), restarts with a
 * new broker epoch, and controller-initiated leader moves. After every step:
 *   I1 one leader per leader epoch (over every broker that believes it leads);
 *   I2 per broker incarnation: leader and partition epochs never decrease;
 *      a leader's HW never decreases within its term; HW <= LEO everywhere;
 *   I3 the committed log (the union of every leader's [0, HW)) is never
 *      rewritten: each leader's [0, HW) agrees with it;
 *   I4 every replica's [0, HW) is a prefix of the committed log;
 *   I5 the current leader's HW <= the LEO of every member of the
 *      controller's ISR;
 *   I6 every acknowledged (acks=all) record is, with its epoch and value,
 *      in the log of every member of the controller's ISR - so in any leader
 *      an election can pick;
 *   I7 a follower's truncation never goes below its own HW (Kafka warns
 *      "Truncating ... below high watermark"; with clean elections and the
 *      KIP-966 window below closed it cannot happen);
 *   I8 epoch caches agree with the logs (epochForOffset == the record's epoch)
 *      and a leader's latest cached epoch is its leader epoch;
 *   I9 (liveness, after 600 fault-free steps that restart every broker) a
 *      leader, a full ISR, HW == LEO and every log identical to the leader's.
 * Known Kafka 3.6.1 limitation kept out of the simulation: when the last ISR
 * member crashes and loses its unflushed tail it comes back as leader with
 * acknowledged records missing (fixed by KIP-966 Eligible Leader Replicas);
 * the simulation loses no tail in that case and counts it (a direct test
 * shows the loss).
 *
 * Run: make build/tests/test_replication && build/tests/test_replication [seeds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "replica/partition_repl.h"
#include "replica/truncation.h"

#include "unit_check.h"

/* ======================= direct cases ======================= */

static pr_meta meta(int32_t leader, int32_t le, int32_t pe, const int32_t *reps, int nr, const int32_t *isr, int ni) {
    pr_meta m;
    memset(&m, 0, sizeof m);
    m.leader = leader;
    m.leader_epoch = le;
    m.partition_epoch = pe;
    m.nreplicas = nr;
    memcpy(m.replicas, reps, sizeof(int32_t) * (size_t)nr);
    m.nisr = ni;
    memcpy(m.isr, isr, sizeof(int32_t) * (size_t)ni);
    return m;
}

static bool set_is(const int32_t *v, int n, const int32_t *want, int nw) {
    if (n != nw) return false;
    for (int i = 0; i < nw; i++) {
        bool f = false;
        for (int j = 0; j < n; j++)
            if (v[j] == want[i]) f = true;
        if (!f) return false;
    }
    return true;
}

static const pr_replica *rep(const partition_repl *p, int32_t id) {
    for (int i = 0; i < p->nremote; i++)
        if (p->r[i].id == id) return &p->r[i];
    return NULL;
}

#define LAG 30000 /* replica.lag.time.max.ms default */
#define SIM_LAG_DIRECT 400
#define T0 1000000

/* LeaderEpochFileCacheTest */
static void test_epoch_cache(void) {
    epoch_entry v[16];
    size_t n = 0;
    int32_t e;
    int64_t o;

    /* shouldAddEpochAndMessageOffsetToCache */
    CHECK(tr_assign(v, &n, 16, 2, 10) == 1 && n == 1, "assign");
    tr_end_offset_for(v, n, 2, 11, &e, &o);
    CHECK(tr_latest_epoch(v, n) == 2 && e == 2 && o == 11, "latest epoch ends at LEO");

    /* shouldReturnUndefinedOffsetIfUndefinedEpochRequested */
    tr_end_offset_for(v, n, -1, 11, &e, &o);
    CHECK(e == -1 && o == -1, "undefined epoch");

    /* shouldNotOverwriteLogEndOffsetForALeaderEpochOnceItHasBeenAssigned */
    CHECK(tr_assign(v, &n, 16, 2, 11) == 0 && n == 1 && v[0].start_offset == 10, "same epoch later start: no-op");

    /* shouldReturnInvalidOffsetIfEpochIsRequestedWhichIsNotCurrentlyTracked */
    tr_end_offset_for(v, n, 3, 100, &e, &o);
    CHECK(e == -1 && o == -1, "epoch above all known");

    /* shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch */
    n = 0;
    tr_assign(v, &n, 16, 5, 11);
    tr_assign(v, &n, 16, 6, 12);
    tr_end_offset_for(v, n, 4, 20, &e, &o);
    CHECK(e == 4 && o == 11, "older than all: (requested, first start) got (%d,%lld)", e, (long long)o);

    /* shouldTruncateIfMatchingEpochButEarlierStartingOffset */
    tr_assign(v, &n, 16, 7, 13);
    CHECK(tr_assign(v, &n, 16, 7, 12) == 1 && n == 2 && v[1].epoch == 7 && v[1].start_offset == 12 && v[0].epoch == 5,
          "earlier start for the latest epoch replaces conflicting entries");

    /* shouldGetFirstOffsetOfSubsequentEpochWhenOffsetRequestedForPreviousEpoch */
    n = 0;
    tr_assign(v, &n, 16, 1, 5);
    tr_assign(v, &n, 16, 1, 6);
    tr_assign(v, &n, 16, 1, 7);
    tr_assign(v, &n, 16, 2, 8);
    tr_assign(v, &n, 16, 2, 9);
    tr_end_offset_for(v, n, 1, 11, &e, &o);
    CHECK(n == 2 && e == 1 && o == 8, "previous epoch ends where the next starts");

    /* shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested */
    n = 0;
    tr_assign(v, &n, 16, 0, 10);
    tr_assign(v, &n, 16, 2, 13);
    tr_assign(v, &n, 16, 4, 17);
    tr_end_offset_for(v, n, 0, 20, &e, &o);
    CHECK(e == 0 && o == 13, "epoch 0");
    tr_end_offset_for(v, n, 1, 20, &e, &o);
    CHECK(e == 0 && o == 13, "epoch 1 -> floor 0");
    tr_end_offset_for(v, n, 2, 20, &e, &o);
    CHECK(e == 2 && o == 17, "epoch 2");
    tr_end_offset_for(v, n, 3, 20, &e, &o);
    CHECK(e == 2 && o == 17, "epoch 3 -> floor 2");
    tr_end_offset_for(v, n, 4, 20, &e, &o);
    CHECK(e == 4 && o == 20, "epoch 4 -> LEO");

    /* shouldEnforceMonotonicallyIncreasingStartOffsets / Epochs */
    n = 0;
    tr_assign(v, &n, 16, 2, 1);
    tr_assign(v, &n, 16, 3, 0);
    CHECK(n == 1 && v[0].epoch == 3 && v[0].start_offset == 0, "lower start drops the entry");
    n = 0;
    tr_assign(v, &n, 16, 3, 1);
    tr_assign(v, &n, 16, 2, 2);
    CHECK(n == 1 && v[0].epoch == 2 && v[0].start_offset == 2, "lower epoch drops the entry");
    CHECK(tr_assign(v, &n, 16, -1, 2) == -1 && tr_assign(v, &n, 16, 1, -1) == -1, "invalid entries refused");

    /* shouldDropEntriesOnEpochBoundaryWhenRemovingLatestEntries */
    n = 0;
    tr_assign(v, &n, 16, 2, 6);
    tr_assign(v, &n, 16, 3, 8);
    tr_assign(v, &n, 16, 4, 11);
    epoch_entry keep[16];
    memcpy(keep, v, sizeof v);
    size_t nk = n;
    CHECK(tr_truncate_from_end(v, &n, 11) && n == 2 && v[1].epoch == 3, "truncateFromEnd(11)");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(tr_truncate_from_end(v, &n, 9) && n == 2, "truncateFromEnd(9) keeps epoch 3 (starts at 8)");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(!tr_truncate_from_end(v, &n, 12) && n == 3, "truncateFromEnd past the last start: nothing");
    CHECK(!tr_truncate_from_end(v, &n, -1) && n == 3, "truncateFromEnd(UNDEFINED): nothing");
    CHECK(tr_truncate_from_end(v, &n, 0) && n == 0, "truncateFromEnd(0) clears");

    /* shouldPreserveResetOffsetOnClearEarliestIfOneExists and friends */
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(tr_truncate_from_start(v, &n, 8) && n == 2 && v[0].epoch == 3 && v[0].start_offset == 8,
          "truncateFromStart(8)");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(tr_truncate_from_start(v, &n, 9) && n == 2 && v[0].epoch == 3 && v[0].start_offset == 9,
          "truncateFromStart(9) moves epoch 3 to 9");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(!tr_truncate_from_start(v, &n, 1) && n == 3, "truncateFromStart before the first entry");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(tr_truncate_from_start(v, &n, 15) && n == 1 && v[0].epoch == 4 && v[0].start_offset == 15,
          "truncateFromStart past all keeps the latest epoch");
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(!tr_truncate_from_start(v, &n, 6) && n == 3, "truncateFromStart at the first start");

    /* testEpochForOffset */
    memcpy(v, keep, sizeof v);
    n = nk;
    CHECK(tr_epoch_for_offset(v, n, 5) == -1 && tr_epoch_for_offset(v, n, 6) == 2 && tr_epoch_for_offset(v, n, 7) == 2 &&
              tr_epoch_for_offset(v, n, 8) == 3 && tr_epoch_for_offset(v, n, 100) == 4,
          "epochForOffset");

    /* capacity */
    n = 0;
    epoch_entry small[1];
    CHECK(tr_assign(small, &n, 1, 1, 0) == 1 && tr_assign(small, &n, 1, 2, 5) == -1 && n == 1, "full cache refuses");

    /* UnifiedLog.truncateTo past the LEO drops an empty trailing epoch */
    n = 0;
    tr_assign(v, &n, 16, 1, 0);
    tr_assign(v, &n, 16, 5, 10); /* leader epoch 5 assigned at LEO 10, nothing written */
    CHECK(tr_apply_truncation(v, &n, 10, 10) == 10 && n == 1 && v[0].epoch == 1, "empty epoch dropped at LEO");
}

/* AbstractFetcherThreadTest / ReplicaFetcherThreadTest truncation decisions */
static void test_truncation(void) {
    epoch_entry v[16];
    size_t n = 0;
    /* follower: epochs 1@0, 3@5, 5@8, LEO 12 */
    tr_assign(v, &n, 16, 1, 0);
    tr_assign(v, &n, 16, 3, 5);
    tr_assign(v, &n, 16, 5, 8);
    tr_decision d;

    /* leader knows epoch 5 and ends it at 10: min(leader end, ours, LEO) */
    d = tr_offset_to_truncate(v, n, 12, 12, 5, 10);
    CHECK(d.offset == 10 && d.completed, "same epoch: leader's end");
    d = tr_offset_to_truncate(v, n, 12, 12, 5, 20);
    CHECK(d.offset == 12 && d.completed, "leader ahead: nothing to truncate");
    /* leader answers epoch 3 ending at 7 (it never saw epoch 5) */
    d = tr_offset_to_truncate(v, n, 12, 12, 3, 7);
    CHECK(d.offset == 7 && d.completed, "diverged inside epoch 3");
    /* testTruncateToEpochEndOffsetsDivergence-like: leader answers epoch 4, unknown to us:
     * truncate to the end of our largest epoch below 4 (3 ends at 8), not completed */
    d = tr_offset_to_truncate(v, n, 12, 12, 4, 9);
    CHECK(d.offset == 8 && !d.completed, "unknown leader epoch: end of our epoch 3, continue (%lld)",
          (long long)d.offset);
    /* leader answers epoch 0, below all ours */
    d = tr_offset_to_truncate(v, n, 12, 12, 0, 0);
    CHECK(d.offset == 0 && d.completed, "below our epochs: leader's offset");
    /* undefined offset: the fetch offset (legacy high watermark path) */
    d = tr_offset_to_truncate(v, n, 12, 9, 5, -1);
    CHECK(d.offset == 9 && d.completed, "undefined offset: fetch offset");
    /* undefined epoch (v0 OffsetsForLeaderEpoch) */
    d = tr_offset_to_truncate(v, n, 12, 12, -1, 11);
    CHECK(d.offset == 11 && d.completed, "undefined epoch: min(leader end, LEO)");

    /* leader side (Partition.readRecords): leader epochs 1@0, 2@5, LEO 9 */
    epoch_entry l[8];
    size_t ln = 0;
    tr_assign(l, &ln, 8, 1, 0);
    tr_assign(l, &ln, 8, 2, 5);
    int32_t de;
    int64_t doff;
    CHECK(tr_leader_check_fetch(l, ln, 9, 0, 7, 2, &de, &doff) == TR_READ_OK, "same epoch, in range");
    CHECK(tr_leader_check_fetch(l, ln, 9, 0, 6, 1, &de, &doff) == TR_READ_DIVERGING && de == 1 && doff == 5,
          "epoch 1 ended at 5, follower at 6: diverging {1,5}");
    CHECK(tr_leader_check_fetch(l, ln, 9, 0, 5, 1, &de, &doff) == TR_READ_OK, "epoch 1 end == fetch offset: fine");
    CHECK(tr_leader_check_fetch(l, ln, 9, 0, 12, 3, &de, &doff) == TR_READ_OUT_OF_RANGE, "epoch above leader's");
    /* follower had epoch 3 unknown to a leader at epoch 4: leader's cache 1@0, 2@5, 4@9, LEO 11 */
    tr_assign(l, &ln, 8, 4, 9);
    CHECK(tr_leader_check_fetch(l, ln, 11, 0, 10, 3, &de, &doff) == TR_READ_DIVERGING && de == 2 && doff == 9,
          "unknown epoch 3 answers floor epoch 2 ending at 9");
    CHECK(tr_leader_check_fetch(l, ln, 11, 0, 12, -1, &de, &doff) == TR_READ_OUT_OF_RANGE, "past LEO");
    CHECK(tr_leader_check_fetch(l, ln, 11, 3, 2, -1, &de, &doff) == TR_READ_OUT_OF_RANGE, "before log start");
}

/* PartitionTest.testUpdateFollowerFetchState */
static void test_update_follower_fetch_state(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 1, 6, 0);
    int32_t reps[] = {1, 2};
    pr_meta m = meta(1, 5, 1, reps, 2, reps, 2);
    bool adv;
    CHECK(pr_make_leader(&p, &m, T0, &adv) == 1, "becomes leader");
    CHECK(p.leader_epoch_start_offset == 6, "epoch start at LEO");
    const pr_replica *r = rep(&p, 2);
    CHECK(r && r->last_caught_up_ms == T0 && r->leo == -1 && r->log_start_offset == -1, "reset for a new leader");
    pr_set_broker(&p, 2, true, false, 200);
    pr_follower_fetched(&p, 2, 3, 0, 200, T0 + 500, NULL);
    CHECK(r->last_caught_up_ms == T0 && r->leo == 3 && r->log_start_offset == 0, "behind: caught-up time kept");
    pr_follower_fetched(&p, 2, 6, 0, 200, T0 + 1000, NULL);
    CHECK(r->last_caught_up_ms == T0 + 1000 && r->leo == 6, "caught up now");
    CHECK(p.hw == 6, "HW follows the ISR (%lld)", (long long)p.hw);
}

/* PartitionTest.testIsrExpansion, testIsrNotExpandedIfUpdateFails,
 * testIsrCanExpandedIfBrokerEpochsMatchWithKraftMetadataCache,
 * testIsrNotExpandedIfReplicaIsFencedOrShutdown */
static void test_isr_expansion(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    int32_t reps[] = {1, 2}, isr[] = {1};
    pr_meta m = meta(1, 5, 1, reps, 2, isr, 1);
    bool adv;
    pr_make_leader(&p, &m, T0, &adv);
    CHECK(adv && p.hw == 10, "ISR {leader}: HW at LEO");
    CHECK(rep(&p, 2)->last_caught_up_ms == 0, "out-of-ISR follower starts not caught up");
    pr_set_broker(&p, 2, true, false, 200);
    pr_alter a;
    pr_fetch_result fr = pr_follower_fetched(&p, 2, 3, 0, 200, T0, &a);
    CHECK(!fr.propose && p.nisr == 1, "below HW: no expansion");
    fr = pr_follower_fetched(&p, 2, 10, 0, 200, T0, &a);
    CHECK(fr.propose && p.state == PR_PENDING_EXPAND, "reached HW and epoch start: expand");
    int32_t want[] = {1, 2};
    CHECK(set_is(a.isr, a.nisr, want, 2) && a.partition_epoch == 1 && a.leader_epoch == 5, "AlterPartition body");
    CHECK(a.isr_broker_epochs[0] == 100 && a.isr_broker_epochs[1] == 200, "broker epochs sent (KIP-903)");
    int32_t mx[PR_MAX_REPLICAS];
    CHECK(set_is(p.isr, p.nisr, isr, 1) && set_is(mx, pr_maximal_isr(&p, mx), want, 2), "maximal ISR grows first");
    /* testSingleInFlightAlterIsr: nothing else while pending */
    CHECK(!pr_maybe_shrink(&p, T0 + 10 * LAG, &a), "no shrink while in flight");
    pr_alter res = a;
    res.partition_epoch = 2;
    bool applied;
    pr_alter_committed(&p, &res, T0, &applied);
    CHECK(applied && p.nisr == 2 && p.partition_epoch == 2 && p.state == PR_COMMITTED, "expansion committed");

    /* testIsrNotExpandedIfUpdateFails: INELIGIBLE_REPLICA reverts the maximal ISR */
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m, T0, &adv);
    pr_set_broker(&p, 2, true, false, 200);
    fr = pr_follower_fetched(&p, 2, 10, 0, 200, T0, &a);
    CHECK(fr.propose, "proposed");
    CHECK(!pr_alter_failed(&p, a.seq, KERR_INELIGIBLE_REPLICA) && p.state == PR_COMMITTED && p.nisr == 1 &&
              pr_maximal_isr(&p, mx) == 1,
          "rejected: back to the committed ISR");
    /* testAlterIsrUnknownTopic / InvalidVersion / NewLeaderElected: stay pending; unexpected: retry */
    fr = pr_follower_fetched(&p, 2, 10, 0, 200, T0 + 1, &a);
    CHECK(fr.propose, "proposed again on the next fetch");
    CHECK(!pr_alter_failed(&p, a.seq, KERR_INVALID_UPDATE_VERSION) && p.state == PR_PENDING_EXPAND,
          "INVALID_UPDATE_VERSION stays pending");
    CHECK(pr_alter_failed(&p, a.seq, KERR_REQUEST_TIMED_OUT) && p.state == PR_PENDING_EXPAND, "transport error: retry");
    CHECK(!pr_alter_failed(&p, a.seq + 7, KERR_OPERATION_NOT_ATTEMPTED) && p.state == PR_PENDING_EXPAND,
          "answer to another proposal ignored");
    /* a stale leader epoch in the answer is ignored (stays pending) */
    pr_alter res2 = a;
    res2.leader_epoch = 4;
    res2.partition_epoch = 3;
    pr_alter_committed(&p, &res2, T0, &applied);
    CHECK(!applied && p.state == PR_PENDING_EXPAND, "stale leader epoch answer ignored");
    /* testAlterIsrLeaderAndIsrRace: new metadata replaces the pending state */
    pr_meta m2 = meta(1, 5, 2, reps, 2, isr, 1);
    pr_make_leader(&p, &m2, T0, &adv);
    CHECK(p.state == PR_COMMITTED && p.partition_epoch == 2, "metadata wins over a pending change");
    CHECK(!pr_alter_failed(&p, a.seq, KERR_OPERATION_NOT_ATTEMPTED), "late answer ignored");

    /* KIP-903: a fetch with a stale broker epoch does not join; -1 bypasses */
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m, T0, &adv);
    pr_set_broker(&p, 2, true, false, 201);
    fr = pr_follower_fetched(&p, 2, 10, 0, 200, T0, &a);
    CHECK(!fr.propose, "stale broker epoch: not eligible");
    fr = pr_follower_fetched(&p, 2, 10, 0, -1, T0, &a);
    CHECK(fr.propose, "broker epoch -1 bypasses the check");
    /* fenced / shutting down: not eligible */
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m, T0, &adv);
    pr_set_broker(&p, 2, false, false, 200);
    CHECK(!pr_follower_fetched(&p, 2, 10, 0, 200, T0, &a).propose, "fenced: not eligible");
    pr_set_broker(&p, 2, true, true, 200);
    CHECK(!pr_follower_fetched(&p, 2, 10, 0, 200, T0, &a).propose, "shutting down: not eligible");
    /* unknown replica */
    CHECK(pr_follower_fetched(&p, 9, 10, 0, 200, T0, &a).error == KERR_UNKNOWN_LEADER_EPOCH, "not a replica");
}

/* PartitionTest.testFollowerDoesNotJoinISRUntilCaughtUpToOffsetWithinCurrentLeaderEpoch */
static void test_join_only_within_epoch(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 1, 0, 0);
    int32_t reps[] = {1, 2, 3}, isr[] = {1, 3};
    pr_meta m = meta(1, 8, 1, reps, 3, isr, 2);
    bool adv;
    pr_make_leader(&p, &m, T0, &adv);
    pr_set_broker(&p, 2, true, false, 200);
    pr_set_broker(&p, 3, true, false, 300);
    pr_leader_appended(&p, 2, T0);
    pr_leader_appended(&p, 5, T0);
    CHECK(p.hw == 0, "HW held by follower 3");
    pr_follower_fetched(&p, 3, 0, 0, 300, T0, NULL);
    pr_follower_fetched(&p, 3, 1, 0, 300, T0, NULL);
    CHECK(p.hw == 1, "HW moves with follower 3 (%lld)", (long long)p.hw);
    pr_meta f = meta(3, 9, 1, reps, 3, isr, 2);
    CHECK(pr_make_follower(&p, &f) == 1 && !p.is_leader && p.nremote == 0, "follower keeps no replica states");
    pr_meta l = meta(1, 10, 1, reps, 3, isr, 2);
    CHECK(pr_make_leader(&p, &l, T0, &adv) == 1, "leader again");
    int64_t start = p.leader_epoch_start_offset;
    CHECK(start == 5, "epoch 10 starts at 5");
    pr_leader_appended(&p, 7, T0);
    pr_alter a;
    CHECK(!pr_follower_fetched(&p, 2, 0, 0, 200, T0, &a).propose, "from 0: no");
    CHECK(!pr_follower_fetched(&p, 2, 1, 0, 200, T0, &a).propose, "at the HW but before the epoch start: no");
    CHECK(pr_follower_fetched(&p, 2, start, 0, 200, T0, &a).propose, "at the epoch start: expand");
    int32_t want[] = {1, 2, 3};
    CHECK(set_is(a.isr, a.nisr, want, 3), "proposed {1,2,3}");
}

/* PartitionTest.testMaybeShrinkIsr, testShouldNotShrinkIsrIfPreviousFetchIsCaughtUp,
 * testShouldNotShrinkIsrIfFollowerCaughtUpToLogEnd, testIsrNotShrunkIfUpdateFails */
static void test_shrink(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    int32_t reps[] = {1, 2, 3};
    pr_meta m = meta(1, 5, 1, reps, 3, reps, 3);
    bool adv;
    pr_make_leader(&p, &m, T0, &adv);
    for (int b = 2; b <= 3; b++) pr_set_broker(&p, b, true, false, 100 * b);
    CHECK(p.hw == 0, "HW 0");
    pr_follower_fetched(&p, 2, 10, 0, 200, T0, NULL);
    pr_alter a;
    CHECK(!pr_maybe_shrink(&p, T0, &a), "on initialization replicas count as caught up");
    CHECK(pr_maybe_shrink(&p, T0 + LAG + 1, &a), "after the lag: shrink");
    int32_t want[] = {1, 2};
    CHECK(set_is(a.isr, a.nisr, want, 2) && a.isr_broker_epochs[0] == 100, "proposed {1,2}");
    int32_t mx[PR_MAX_REPLICAS];
    CHECK(pr_maximal_isr(&p, mx) == 3 && p.hw == 0, "a pending shrink keeps the maximal ISR, HW held");
    pr_alter res = a;
    res.partition_epoch = 2;
    bool applied;
    bool hwadv = pr_alter_committed(&p, &res, T0 + LAG + 1, &applied);
    CHECK(applied && hwadv && p.hw == 10 && p.nisr == 2 && p.partition_epoch == 2, "committed: HW to 10");

    /* testIsrNotShrunkIfUpdateFails */
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m, T0, &adv);
    CHECK(pr_maybe_shrink(&p, T0 + LAG + 1, &a), "shrink both");
    CHECK(!pr_alter_failed(&p, a.seq, KERR_OPERATION_NOT_ATTEMPTED) && p.nisr == 3 && p.hw == 0, "refused: ISR kept");

    /* testShouldNotShrinkIsrIfPreviousFetchIsCaughtUp */
    int32_t r2[] = {1, 2};
    pr_meta m2 = meta(1, 5, 1, r2, 2, r2, 2);
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m2, T0, &adv);
    pr_set_broker(&p, 2, true, false, 200);
    pr_follower_fetched(&p, 2, 5, 0, 200, T0 + 5000, NULL);
    CHECK(rep(&p, 2)->last_caught_up_ms == T0 && p.hw == 5, "first fetch behind");
    pr_leader_appended(&p, 15, T0 + 10001);
    pr_follower_fetched(&p, 2, 10, 0, 200, T0 + 10001, NULL);
    CHECK(rep(&p, 2)->last_caught_up_ms == T0 + 5000 && p.hw == 10, "reached the LEO of its previous fetch");
    CHECK(!pr_maybe_shrink(&p, T0 + 10001, &a), "not shrunk");

    /* testShouldNotShrinkIsrIfFollowerCaughtUpToLogEnd */
    pr_init(&p, 1, 100, LAG, 1, 10, 0);
    pr_make_leader(&p, &m2, T0, &adv);
    pr_set_broker(&p, 2, true, false, 200);
    pr_follower_fetched(&p, 2, 10, 0, 200, T0, NULL);
    CHECK(!pr_maybe_shrink(&p, T0 + LAG + 1, &a), "at the leader's LEO: never out of sync");
}

/* PartitionTest: checkEnoughReplicasReachOffset, appendRecordsToLeader min.isr,
 * testHighWatermarkIncreasesWithFencedOrShutdownFollower */
static void test_acks_all(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 2, 0, 0);
    int32_t reps[] = {1, 2, 3}, isr1[] = {1};
    pr_meta m = meta(1, 1, 1, reps, 3, isr1, 1);
    bool adv, done;
    pr_make_leader(&p, &m, T0, &adv);
    CHECK(pr_check_append(&p, -1) == KERR_NOT_ENOUGH_REPLICAS, "ISR 1 < min.isr 2: refused before append");
    CHECK(pr_check_append(&p, 1) == KERR_NONE, "acks=1 is fine");
    int32_t isr3[] = {1, 2, 3};
    pr_meta m3 = meta(1, 1, 2, reps, 3, isr3, 3);
    pr_make_leader(&p, &m3, T0, &adv);
    for (int b = 2; b <= 3; b++) pr_set_broker(&p, b, true, false, 100 * b);
    CHECK(pr_check_append(&p, -1) == KERR_NONE, "ISR 3");
    pr_leader_appended(&p, 5, T0);
    CHECK(pr_check_enough_replicas(&p, 5, &done) == KERR_NONE && !done, "waiting");
    pr_follower_fetched(&p, 2, 5, 0, 200, T0, NULL);
    CHECK(pr_check_enough_replicas(&p, 5, &done) == KERR_NONE && !done && p.hw == 0, "still waiting for 3");
    pr_follower_fetched(&p, 3, 5, 0, 300, T0, NULL);
    CHECK(pr_check_enough_replicas(&p, 5, &done) == KERR_NONE && done, "done");
    /* shrink to {1} committed while a produce waits: AFTER_APPEND */
    pr_leader_appended(&p, 8, T0);
    pr_alter a;
    CHECK(pr_maybe_shrink(&p, T0 + LAG + 1, &a), "both lag");
    pr_alter res = a;
    res.partition_epoch = 3;
    bool applied;
    pr_alter_committed(&p, &res, T0 + LAG + 1, &applied);
    CHECK(applied && p.hw == 8, "HW to LEO with ISR {1}");
    CHECK(pr_check_enough_replicas(&p, 8, &done) == KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND && done,
          "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
    /* a caught-up eligible follower outside the ISR holds the HW (shouldWaitForReplicaToJoinIsr) */
    pr_follower_fetched(&p, 2, 8, 0, 200, T0 + LAG + 2, &a); /* proposes expansion */
    CHECK(p.state == PR_PENDING_EXPAND, "expanding");
    pr_alter_failed(&p, a.seq, KERR_OPERATION_NOT_ATTEMPTED);
    pr_leader_appended(&p, 9, T0 + LAG + 3);
    CHECK(p.hw == 8, "HW waits for a caught-up eligible replica about to join (%lld)", (long long)p.hw);
    pr_set_broker(&p, 2, false, false, 200);
    pr_leader_appended(&p, 10, T0 + LAG + 3);
    CHECK(p.hw == 10, "a fenced one does not hold it (%lld)", (long long)p.hw);
    /* not leader */
    pr_meta f = meta(2, 2, 4, reps, 3, isr3, 3);
    pr_make_follower(&p, &f);
    CHECK(pr_check_enough_replicas(&p, 1, &done) == KERR_NOT_LEADER_OR_FOLLOWER && !done, "follower");
    CHECK(pr_check_append(&p, -1) == KERR_NOT_LEADER_OR_FOLLOWER, "follower refuses appends");
    /* testIgnoreFollowerPartitionStateChangeWithOlderPartitionEpoch */
    pr_meta old = meta(2, 2, 3, reps, 3, isr3, 3);
    CHECK(pr_make_follower(&p, &old) == -1 && pr_make_leader(&p, &old, T0, &adv) == -1, "older partition epoch skipped");
    /* follower HW: capped at the local LEO, may go down */
    pr_set_local_log(&p, 6);
    CHECK(p.hw == 6 && pr_follower_update_hw(&p, 9) == 6 && pr_follower_update_hw(&p, 4) == 4, "follower HW");
}

/* testDoNotResetReplicaStateIfLeaderEpochIsNotBumped /
 * testDoNotUpdateEpochStartOffsetIfLeaderEpochIsNotBumped */
static void test_same_epoch_metadata(void) {
    partition_repl p;
    pr_init(&p, 1, 100, LAG, 1, 4, 0);
    int32_t reps[] = {1, 2}, isr[] = {1};
    pr_meta m = meta(1, 3, 1, reps, 2, isr, 1);
    bool adv;
    pr_make_leader(&p, &m, T0, &adv);
    pr_set_broker(&p, 2, true, false, 200);
    pr_follower_fetched(&p, 2, 2, 0, 200, T0 + 10, NULL);
    pr_leader_appended(&p, 8, T0 + 10);
    pr_meta m2 = meta(1, 3, 2, reps, 2, isr, 1);
    CHECK(pr_make_leader(&p, &m2, T0 + 20, &adv) == 0, "already leader");
    CHECK(p.leader_epoch_start_offset == 4 && rep(&p, 2)->leo == 2 && rep(&p, 2)->last_fetch_ms == T0 + 10,
          "same leader epoch: start offset and replica states kept");
    pr_meta m3 = meta(1, 4, 3, reps, 2, isr, 1);
    pr_make_leader(&p, &m3, T0 + 30, &adv);
    CHECK(p.leader_epoch_start_offset == 8 && rep(&p, 2)->leo == 2 && rep(&p, 2)->last_fetch_ms == 0 &&
              rep(&p, 2)->last_fetch_leader_leo == 8,
          "re-elected (new epoch, still leader): states reset keeping the LEO");
}

/* The one departure from Kafka 3.6.1's makeLeader (partition_repl.h): the
 * metadata record of a shrink whose AlterPartition answer already arrived
 * must not drop the expansion proposed since, or the HW passes the joining
 * replica while the controller commits it (simulation seed 195 found it). */
static void test_late_metadata_keeps_pending(void) {
    partition_repl p;
    pr_init(&p, 2, 200, SIM_LAG_DIRECT, 2, 0, 0);
    int32_t reps[] = {1, 2, 3}, isr12[] = {1, 2};
    pr_meta m = meta(2, 0, 1, reps, 3, isr12, 2);
    bool adv;
    pr_make_leader(&p, &m, T0, &adv);
    pr_leader_appended(&p, 13, T0);
    pr_set_broker(&p, 1, true, false, 100);
    pr_set_broker(&p, 3, true, false, 300);
    pr_follower_fetched(&p, 1, 2, 0, 100, T0, NULL);
    pr_alter a;
    /* follower 3 at 8 >= HW 2 but far from caught up by time */
    CHECK(pr_follower_fetched(&p, 3, 8, 0, 300, T0 + 5 * SIM_LAG_DIRECT, &a).propose, "expansion proposed at pe 1");
    pr_make_leader(&p, &m, T0 + 5 * SIM_LAG_DIRECT, &adv); /* the pe 1 record, late */
    CHECK(p.state == PR_PENDING_EXPAND, "the pending expansion survives a repeat of its base epoch");
    pr_follower_fetched(&p, 1, 10, 0, 100, T0 + 5 * SIM_LAG_DIRECT, NULL);
    CHECK(p.hw == 8, "HW held by the joining replica (%lld)", (long long)p.hw);
    pr_meta m2 = meta(2, 0, 2, reps, 3, isr12, 2); /* a newer epoch does replace it, as Kafka */
    pr_make_leader(&p, &m2, T0 + 5 * SIM_LAG_DIRECT, &adv);
    CHECK(p.state == PR_COMMITTED, "newer partition epoch: committed state");
}

/* The KIP-966 window Kafka 3.6.1 leaves open, stated as behaviour: the last
 * ISR member loses its unflushed tail, comes back, is elected (it is the
 * ISR) and the acknowledged records are gone; the other replica truncates
 * below its own HW to follow it. */
static void test_kip966_window(void) {
    epoch_entry f[8], l[8];
    size_t fn = 0, ln = 0;
    tr_assign(f, &fn, 8, 1, 0); /* follower: 10 records of epoch 1, HW 10 */
    tr_assign(l, &ln, 8, 1, 0); /* leader lost records 6..9, comes back at epoch 3 */
    tr_assign(l, &ln, 8, 3, 6);
    int32_t de;
    int64_t doff;
    CHECK(tr_leader_check_fetch(l, ln, 6, 0, 10, 1, &de, &doff) == TR_READ_DIVERGING && de == 1 && doff == 6,
          "diverging at 6");
    tr_decision d = tr_offset_to_truncate(f, fn, 10, 10, de, doff);
    CHECK(d.offset == 6 && d.completed, "the follower truncates to 6, below its HW 10 (Kafka warns only)");
}

/* ======================= simulation ======================= */

#define NB 3
#define MAXLOG 2048
#define MAXEC 512
#define MAXMSG 512
#define MAXPROD 256
#define MAXEPOCH 4096
#define SIM_LAG 400
#define SIM_REQ_TIMEOUT 1500
#define SIM_SESSION 600
#define SIM_MIN_ISR 2

static uint64_t rng;
static uint32_t next_rand(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

typedef struct rec {
    int32_t epoch;
    int64_t value;
} rec;

enum { M_FETCH_REQ, M_FETCH_RESP, M_ALTER_REQ, M_ALTER_RESP, M_META };

typedef struct msg {
    int type;
    int64_t at;
    uint64_t order;
    int to;              /* node, or -1 for the controller */
    uint64_t to_inc;     /* target incarnation (connections die with a crash) */
    int from;
    uint64_t from_inc;
    /* fetch */
    uint64_t fseq;
    int32_t leader_epoch;
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t broker_epoch;
    int error;
    int32_t div_epoch;
    int64_t div_end;
    int64_t hw, leader_leo;
    int nrec;
    rec recs[8];
    /* alter / meta */
    pr_alter alter;
    pr_meta meta;
    bool alive[NB + 1];
    int64_t bepoch[NB + 1];
} msg;

typedef struct produce {
    int node;
    uint64_t inc;
    int32_t epoch;
    int64_t offset;
    int64_t value;
    int64_t deadline;
} produce;

typedef struct node {
    bool up;
    uint64_t inc;
    int64_t broker_epoch;
    rec log[MAXLOG];
    int64_t len;
    epoch_entry ec[MAXEC];
    size_t nec;
    partition_repl pr;
    int64_t saved_hw; /* the HW checkpoint a crash leaves */
    /* fetcher */
    uint64_t fseq;
    bool inflight;
    int64_t fetch_sent, next_fetch;
    /* checks */
    int64_t verified; /* log[0, verified) matches the committed log */
    int32_t seen_le, seen_pe;
    int32_t term_epoch;
    int64_t term_hw;
    /* AlterPartition retry */
    bool alter_retry;
    pr_alter retry;
    int64_t retry_at;
} node;

typedef struct ctl {
    int32_t leader, leader_epoch, partition_epoch;
    int nisr;
    int32_t isr[NB];
    bool fenced[NB + 1];
    int64_t bepoch[NB + 1];
    int64_t crashed_at[NB + 1]; /* >= 0: crashed, not yet fenced */
} ctl;

typedef struct sim {
    int64_t now;
    uint64_t order;
    node n[NB + 1];
    ctl c;
    msg q[MAXMSG];
    int nq;
    int64_t meta_last[NB + 1];
    produce prod[MAXPROD];
    int nprod;
    rec committed[MAXLOG];
    int64_t committed_len;
    int64_t acked_end; /* 1 + the largest acknowledged offset */
    int64_t next_value, next_bepoch;
    int32_t leader_of_epoch[MAXEPOCH];
    /* stats */
    long acked, nacks_refused, after_append, timeouts, not_leader, crashes, elections, truncations, kip966;
    long alters_ok, alters_rejected, diverging;
} sim;

static sim S;
static int sim_failed_seed;

#define SCHECK(cond, ...)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            failed++;                                                                       \
            fprintf(stderr, "FAIL seed %llu t=%lld: ", (unsigned long long)cur_seed, (long long)S.now); \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fprintf(stderr, "\n");                                                          \
            sim_failed_seed = 1;                                                            \
        }                                                                                   \
    } while (0)

static uint64_t cur_seed;
static int calm; /* the healing phase: no faults, no losses */
static int tracing;
#define TR(...)                                                  \
    do {                                                         \
        if (tracing) {                                           \
            fprintf(stderr, "t=%lld ", (long long)S.now);        \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                              \
        }                                                        \
    } while (0)

static bool in_set(const int32_t *v, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

static msg *send_msg(int type, int to, int64_t delay) {
    if (S.nq >= MAXMSG) return NULL;
    msg *m = &S.q[S.nq++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->to = to;
    m->at = S.now + delay;
    m->order = S.order++;
    m->to_inc = to > 0 ? S.n[to].inc : 0;
    return m;
}

static int64_t net_delay(void) { return 1 + (int64_t)next_rand(next_rand(10) == 0 ? 300 : 30); }

static pr_meta ctl_meta(void) {
    pr_meta m;
    memset(&m, 0, sizeof m);
    m.leader = S.c.leader;
    m.leader_epoch = S.c.leader_epoch;
    m.partition_epoch = S.c.partition_epoch;
    m.nreplicas = NB;
    for (int i = 0; i < NB; i++) m.replicas[i] = i + 1;
    m.nisr = S.c.nisr;
    memcpy(m.isr, S.c.isr, sizeof(int32_t) * (size_t)S.c.nisr);
    return m;
}

/* The controller's state reaches every broker, in order, late. */
static void broadcast(void) {
    for (int b = 1; b <= NB; b++) {
        int64_t d = net_delay();
        if (S.now + d < S.meta_last[b]) d = S.meta_last[b] - S.now;
        msg *m = send_msg(M_META, b, d);
        if (!m) continue;
        S.meta_last[b] = m->at;
        m->to_inc = 0; /* metadata is replayed to a restarted broker anyway */
        m->meta = ctl_meta();
        for (int i = 1; i <= NB; i++) {
            m->alive[i] = !S.c.fenced[i];
            m->bepoch[i] = S.c.bepoch[i];
        }
    }
}

static void fail_produces(int node, bool all) {
    for (int i = 0; i < S.nprod; i++)
        if (all || S.prod[i].node == node) {
            S.not_leader++;
            S.prod[i] = S.prod[--S.nprod];
            i--;
        }
}

static void complete_produces(void) {
    for (int i = 0; i < S.nprod; i++) {
        produce *pp = &S.prod[i];
        node *n = &S.n[pp->node];
        bool done = false;
        int err = KERR_NONE;
        if (!n->up || n->inc != pp->inc || !n->pr.is_leader || n->pr.leader_epoch != pp->epoch) {
            done = true;
            err = KERR_NOT_LEADER_OR_FOLLOWER;
        } else {
            err = pr_check_enough_replicas(&n->pr, pp->offset + 1, &done);
            if (!done && S.now >= pp->deadline) {
                done = true;
                err = KERR_REQUEST_TIMED_OUT;
            }
        }
        if (!done) continue;
        if (err == KERR_NONE) {
            S.acked++;
            TR("ack offset %lld by %d", (long long)pp->offset, pp->node);
            /* the record must be in the committed log by now */
            SCHECK(pp->offset < S.committed_len && S.committed[pp->offset].value == pp->value &&
                       S.committed[pp->offset].epoch == pp->epoch,
                   "acked record %lld (value %lld) is committed", (long long)pp->offset, (long long)pp->value);
            if (pp->offset + 1 > S.acked_end) S.acked_end = pp->offset + 1;
        } else if (err == KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND) {
            S.after_append++;
        } else if (err == KERR_REQUEST_TIMED_OUT) {
            S.timeouts++;
        } else {
            S.not_leader++;
        }
        S.prod[i] = S.prod[--S.nprod];
        i--;
    }
}

/* Leader HW moved: extend the committed log (I3 is checked in check_all). */
static void advance_verified(struct node *n);
static void note_hw(int b) {
    node *n = &S.n[b];
    if (!n->pr.is_leader) return;
    advance_verified(n);
    int64_t hw = n->pr.hw;
    while (S.committed_len < hw && n->verified >= S.committed_len) {
        S.committed[S.committed_len] = n->log[S.committed_len];
        S.committed_len++;
        n->verified = S.committed_len;
    }
}

static void advance_verified(struct node *n) {
    while (n->verified < n->len && n->verified < S.committed_len &&
           n->log[n->verified].epoch == S.committed[n->verified].epoch &&
           n->log[n->verified].value == S.committed[n->verified].value)
        n->verified++;
}

static void truncate_node(node *n, int64_t to) {
    n->len = tr_apply_truncation(n->ec, &n->nec, n->len, to);
    pr_set_local_log(&n->pr, n->len);
    if (n->verified > n->len) n->verified = n->len;
}

static void send_alter(int b, const pr_alter *a) {
    msg *m = send_msg(M_ALTER_REQ, -1, net_delay());
    if (!m) return;
    m->from = b;
    m->from_inc = S.n[b].inc;
    m->alter = *a;
}

/* ---- controller ---- */

static void ctl_elect(int32_t exclude) {
    int32_t cand[NB];
    int nc = 0;
    for (int i = 0; i < S.c.nisr; i++)
        if (!S.c.fenced[S.c.isr[i]] && S.c.isr[i] != exclude) cand[nc++] = S.c.isr[i];
    S.c.leader = nc ? cand[next_rand((uint32_t)nc)] : -1;
    S.c.leader_epoch++;
    TR("ctl: elect leader %d epoch %d", S.c.leader, S.c.leader_epoch);
    S.elections++;
}

static void ctl_fence(int b) {
    S.c.fenced[b] = true;
    S.c.crashed_at[b] = -1;
    bool last = S.c.nisr == 1 && S.c.isr[0] == b;
    if (!last) {
        int k = 0;
        for (int i = 0; i < S.c.nisr; i++)
            if (S.c.isr[i] != b) S.c.isr[k++] = S.c.isr[i];
        S.c.nisr = k;
    }
    if (S.c.leader == b) ctl_elect(b);
    S.c.partition_epoch++;
    /* the crashed broker's unflushed tail is gone (not when it is the last
     * ISR member: the KIP-966 window, see the header) */
    node *n = &S.n[b];
    int64_t k = next_rand(4) == 0 ? 0 : (int64_t)next_rand(6);
    if (last && k > 0) {
        S.kip966++;
        k = 0;
    }
    if (k > n->len) k = n->len;
    if (k > 0) {
        n->len -= k;
        tr_truncate_from_end(n->ec, &n->nec, n->len);
        if (n->verified > n->len) n->verified = n->len;
    }
    if (n->saved_hw > n->len) n->saved_hw = n->len;
    TR("ctl: fence %d (lost %lld, len %lld), isr n=%d pe %d", b, (long long)k, (long long)n->len, S.c.nisr,
       S.c.partition_epoch);
    broadcast();
}

static void ctl_alter(msg *m) {
    pr_alter *a = &m->alter;
    int err = KERR_NONE;
    if (a->leader_epoch != S.c.leader_epoch) err = KERR_FENCED_LEADER_EPOCH;
    else if (a->leader_id != S.c.leader) err = KERR_INVALID_REQUEST;
    else if (a->partition_epoch != S.c.partition_epoch) err = KERR_INVALID_UPDATE_VERSION;
    else {
        for (int i = 0; i < a->nisr; i++) {
            int32_t id = a->isr[i];
            if (id < 1 || id > NB || S.c.fenced[id] ||
                (a->isr_broker_epochs[i] != -1 && a->isr_broker_epochs[i] != S.c.bepoch[id]))
                err = KERR_INELIGIBLE_REPLICA;
        }
        if (!in_set(a->isr, a->nisr, a->leader_id)) err = KERR_INVALID_REQUEST;
    }
    if (err == KERR_NONE && !calm && next_rand(10) == 0) err = KERR_OPERATION_NOT_ATTEMPTED;
    TR("ctl: alter from %d le %d pe %d isr [%d %d %d] n=%d -> err %d", m->from, a->leader_epoch, a->partition_epoch,
       a->isr[0], a->nisr > 1 ? a->isr[1] : -1, a->nisr > 2 ? a->isr[2] : -1, a->nisr, err);
    pr_alter res = *a;
    if (err == KERR_NONE) {
        bool same = a->nisr == S.c.nisr;
        for (int i = 0; same && i < a->nisr; i++) same = in_set(S.c.isr, S.c.nisr, a->isr[i]);
        if (!same) {
            S.c.nisr = a->nisr;
            memcpy(S.c.isr, a->isr, sizeof(int32_t) * (size_t)a->nisr);
            S.c.partition_epoch++;
            broadcast();
        }
        res.partition_epoch = S.c.partition_epoch;
        res.nisr = S.c.nisr;
        memcpy(res.isr, S.c.isr, sizeof(int32_t) * (size_t)S.c.nisr);
        S.alters_ok++;
    } else {
        S.alters_rejected++;
    }
    /* the answer; sometimes lost in transit (the leader sees a transport error) */
    msg *r = send_msg(M_ALTER_RESP, m->from, net_delay());
    if (!r) return;
    r->to_inc = m->from_inc;
    r->alter = res;
    r->error = !calm && next_rand(15) == 0 ? KERR_REQUEST_TIMED_OUT : err;
}

/* ---- brokers ---- */

static void apply_meta(int b, const msg *m) {
    node *n = &S.n[b];
    if (!n->up) return;
    for (int i = 1; i <= NB; i++) pr_set_broker(&n->pr, i, m->alive[i], false, m->bepoch[i]);
    const pr_meta *pm = &m->meta;
    TR("node %d meta leader %d le %d pe %d nisr %d (len %lld hw %lld)", b, pm->leader, pm->leader_epoch,
       pm->partition_epoch, pm->nisr, (long long)n->len, (long long)n->pr.hw);
    bool was_leader = n->pr.is_leader;
    int32_t old_epoch = n->pr.leader_epoch;
    if (pm->leader == b) {
        bool adv;
        int r = pr_make_leader(&n->pr, pm, S.now, &adv);
        if (r < 0) return;
        if (n->pr.leader_epoch != old_epoch) {
            /* maybeAssignEpochStartOffset */
            SCHECK(tr_assign(n->ec, &n->nec, MAXEC, n->pr.leader_epoch, n->len) >= 0, "epoch cache room");
            fail_produces(b, false);
        }
        if (adv) note_hw(b);
    } else {
        int r = pr_make_follower(&n->pr, pm);
        if (r < 0) return;
        if (was_leader) fail_produces(b, false);
        if (r == 1 || was_leader) {
            n->inflight = false; /* restart the fetcher */
            n->fseq++;
            n->next_fetch = S.now;
        }
    }
}

static void send_fetch(int b) {
    node *n = &S.n[b];
    int32_t l = n->pr.leader_id;
    if (l < 1 || l == b) return;
    msg *m = send_msg(M_FETCH_REQ, l, net_delay());
    if (!m) return;
    n->fseq++;
    n->inflight = true;
    n->fetch_sent = S.now;
    if (!calm && next_rand(20) == 0) m->at = INT64_MAX; /* dropped */
    m->from = b;
    m->from_inc = n->inc;
    m->fseq = n->fseq;
    m->leader_epoch = n->pr.leader_epoch;
    m->fetch_offset = n->len;
    m->last_fetched_epoch = tr_latest_epoch(n->ec, n->nec);
    m->broker_epoch = n->broker_epoch;
}

static void leader_fetch(int b, msg *req) {
    node *n = &S.n[b];
    msg *r = send_msg(M_FETCH_RESP, req->from, net_delay());
    if (!r) return;
    if (!calm && next_rand(20) == 0) r->at = INT64_MAX; /* dropped */
    r->to_inc = req->from_inc;
    r->fseq = req->fseq;
    r->leader_epoch = req->leader_epoch;
    r->fetch_offset = req->fetch_offset;
    if (!n->pr.is_leader) {
        r->error = KERR_NOT_LEADER_OR_FOLLOWER;
        return;
    }
    if (req->leader_epoch != n->pr.leader_epoch) {
        r->error = req->leader_epoch < n->pr.leader_epoch ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
        return;
    }
    int64_t hw0 = n->pr.hw, leo0 = n->len;
    tr_read_check rc = tr_leader_check_fetch(n->ec, n->nec, n->len, 0, req->fetch_offset, req->last_fetched_epoch,
                                             &r->div_epoch, &r->div_end);
    r->hw = hw0;
    r->leader_leo = leo0;
    if (rc == TR_READ_OUT_OF_RANGE) {
        r->error = KERR_OFFSET_OUT_OF_RANGE;
        return;
    }
    if (rc == TR_READ_DIVERGING) {
        S.diverging++;
        return; /* no fetch state update with a diverging epoch */
    }
    r->div_epoch = -1;
    int64_t o = req->fetch_offset;
    int k = 0;
    while (k < 8 && o + k < n->len) {
        r->recs[k] = n->log[o + k];
        k++;
    }
    r->nrec = k;
    pr_alter a;
    pr_fetch_result fr = pr_follower_fetched(&n->pr, req->from, req->fetch_offset, 0, req->broker_epoch, S.now, &a);
    if (fr.error != KERR_NONE) {
        r->error = fr.error;
        r->nrec = 0;
        return;
    }
    if (fr.propose) send_alter(b, &a);
    TR("leader %d: fetch from %d at %lld -> hw %lld%s", b, req->from, (long long)req->fetch_offset,
       (long long)n->pr.hw, fr.propose ? " propose" : "");
    if (fr.hw_advanced) note_hw(b);
}

static void follower_response(int b, msg *r) {
    node *n = &S.n[b];
    if (!n->inflight || r->fseq != n->fseq) return;
    n->inflight = false;
    n->next_fetch = S.now + (r->error || r->nrec == 0 ? (int64_t)next_rand(40) : 0);
    if (n->pr.is_leader || r->leader_epoch != n->pr.leader_epoch || r->fetch_offset != n->len) return;
    if (r->error == KERR_OFFSET_OUT_OF_RANGE) {
        /* fetchOffsetAndTruncate: the leader's LEO is below ours */
        if (r->leader_leo < n->len) {
            S.truncations++;
            SCHECK(r->leader_leo >= n->pr.hw, "I7: node %d truncates (out of range) to %lld below its HW %lld", b,
                   (long long)r->leader_leo, (long long)n->pr.hw);
            truncate_node(n, r->leader_leo);
        }
        return;
    }
    if (r->error) return;
    if (r->div_epoch >= 0 || r->div_end >= 0) {
        tr_decision d = tr_offset_to_truncate(n->ec, n->nec, n->len, n->len, r->div_epoch, r->div_end);
        if (d.offset < n->len) {
            S.truncations++;
            TR("node %d truncates to %lld (div %d,%lld) len %lld", b, (long long)d.offset, r->div_epoch,
               (long long)r->div_end, (long long)n->len);
            SCHECK(d.offset >= n->pr.hw, "I7: node %d truncates to %lld below its HW %lld", b, (long long)d.offset,
                   (long long)n->pr.hw);
        }
        truncate_node(n, d.offset);
        n->next_fetch = S.now;
        return;
    }
    for (int i = 0; i < r->nrec && n->len < MAXLOG; i++) {
        n->log[n->len] = r->recs[i];
        SCHECK(tr_assign(n->ec, &n->nec, MAXEC, r->recs[i].epoch, n->len) >= 0, "epoch cache room");
        n->len++;
    }
    pr_set_local_log(&n->pr, n->len);
    pr_follower_update_hw(&n->pr, r->hw);
    advance_verified(n);
}

static void crash(int b) {
    node *n = &S.n[b];
    n->up = false;
    n->inc++;
    n->saved_hw = n->pr.hw;
    n->inflight = false;
    n->alter_retry = false;
    fail_produces(b, false);
    S.c.crashed_at[b] = S.now;
    S.crashes++;
    TR("node %d crashes (len %lld hw %lld)", b, (long long)n->len, (long long)n->saved_hw);
}

static void restart(int b) {
    node *n = &S.n[b];
    n->up = true;
    n->inc++;
    n->broker_epoch = S.next_bepoch++;
    S.c.bepoch[b] = n->broker_epoch;
    S.c.fenced[b] = false;
    pr_init(&n->pr, b, n->broker_epoch, SIM_LAG, SIM_MIN_ISR, n->len, n->saved_hw);
    /* recovery: the cache is rebuilt from the log's batches */
    n->nec = 0;
    for (int64_t o = 0; o < n->len; o++) tr_assign(n->ec, &n->nec, MAXEC, n->log[o].epoch, o);
    n->seen_le = n->seen_pe = -1;
    n->term_epoch = -1;
    n->fseq++;
    n->next_fetch = S.now;
    TR("node %d restarts epoch %lld len %lld", b, (long long)n->broker_epoch, (long long)n->len);
    if (S.c.leader == -1 && in_set(S.c.isr, S.c.nisr, b)) {
        S.c.leader = b;
        S.c.leader_epoch++;
        S.elections++;
    }
    S.c.partition_epoch++;
    broadcast();
}

static void deliver(msg *m) {
    if (m->type == M_ALTER_REQ) {
        ctl_alter(m);
        return;
    }
    int b = m->to;
    node *n = &S.n[b];
    if (m->type == M_META) {
        apply_meta(b, m);
        return;
    }
    if (!n->up || n->inc != m->to_inc) return;
    switch (m->type) {
    case M_FETCH_REQ:
        leader_fetch(b, m);
        break;
    case M_FETCH_RESP:
        follower_response(b, m);
        break;
    case M_ALTER_RESP:
        if (m->error == KERR_NONE) {
            bool applied;
            if (pr_alter_committed(&n->pr, &m->alter, S.now, &applied)) note_hw(b);
            TR("node %d alter answer seq %llu applied %d nisr %d hw %lld", b, (unsigned long long)m->alter.seq,
               applied, n->pr.nisr, (long long)n->pr.hw);
        } else if (pr_alter_failed(&n->pr, m->alter.seq, m->error)) {
            n->alter_retry = true; /* AlterPartitionManager resends */
            n->retry = n->pr.pending;
            n->retry_at = S.now + 20;
        }
        break;
    }
}

/* ---- invariants ---- */

static void check_all(void) {
    for (int b = 1; b <= NB; b++) {
        node *n = &S.n[b];
        advance_verified(n);
        /* I4: [0, HW) is committed */
        int64_t hw = n->up ? n->pr.hw : n->saved_hw;
        SCHECK(hw <= n->len, "I2: node %d HW %lld <= LEO %lld", b, (long long)hw, (long long)n->len);
        SCHECK(hw <= S.committed_len && n->verified >= hw,
               "I4: node %d [0,%lld) is committed (committed %lld, matches %lld)", b, (long long)hw,
               (long long)S.committed_len, (long long)n->verified);
        if (!n->up) continue;
        partition_repl *p = &n->pr;
        SCHECK(p->leo == n->len, "node %d pr LEO %lld == log %lld", b, (long long)p->leo, (long long)n->len);
        /* I2 */
        SCHECK(p->leader_epoch >= n->seen_le && p->partition_epoch >= n->seen_pe,
               "I2: node %d epochs monotonic (%d>=%d, %d>=%d)", b, p->leader_epoch, n->seen_le, p->partition_epoch,
               n->seen_pe);
        n->seen_le = p->leader_epoch;
        n->seen_pe = p->partition_epoch;
        if (p->is_leader) {
            /* I1 */
            if (p->leader_epoch >= 0 && p->leader_epoch < MAXEPOCH) {
                if (S.leader_of_epoch[p->leader_epoch] < 0) S.leader_of_epoch[p->leader_epoch] = b;
                SCHECK(S.leader_of_epoch[p->leader_epoch] == b, "I1: epoch %d led by %d and %d", p->leader_epoch,
                       S.leader_of_epoch[p->leader_epoch], b);
            }
            if (n->term_epoch == p->leader_epoch)
                SCHECK(p->hw >= n->term_hw, "I2: leader %d HW %lld went back from %lld", b, (long long)p->hw,
                       (long long)n->term_hw);
            n->term_epoch = p->leader_epoch;
            n->term_hw = p->hw;
            /* I3 */
            note_hw(b);
            SCHECK(n->verified >= p->hw, "I3: leader %d [0,%lld) agrees with the committed log (%lld)", b,
                   (long long)p->hw, (long long)n->verified);
            /* I8 */
            SCHECK(tr_latest_epoch(n->ec, n->nec) == p->leader_epoch, "I8: leader %d cache ends with its epoch", b);
        } else {
            n->term_epoch = -1;
        }
        /* I8: cheap part each step */
        for (size_t i = 0; i < n->nec; i++) {
            const epoch_entry *e = &n->ec[i];
            SCHECK(i == 0 || (e->epoch > n->ec[i - 1].epoch && e->start_offset > n->ec[i - 1].start_offset) ||
                       (e->epoch > n->ec[i - 1].epoch && e->start_offset >= n->ec[i - 1].start_offset && i + 1 == n->nec),
                   "I8: node %d cache ascending", b);
            if (e->start_offset < n->len)
                SCHECK(n->log[e->start_offset].epoch == e->epoch, "I8: node %d epoch %d starts at %lld", b, e->epoch,
                       (long long)e->start_offset);
        }
    }
    /* I5, I6 against the controller's ISR */
    int L = S.c.leader;
    for (int i = 0; i < S.c.nisr; i++) {
        node *m = &S.n[S.c.isr[i]];
        SCHECK(m->verified >= S.acked_end, "I6: ISR member %d has every acked record (matches %lld < %lld)",
               S.c.isr[i], (long long)m->verified, (long long)S.acked_end);
        if (L > 0 && S.n[L].up && S.n[L].pr.is_leader && S.n[L].pr.leader_epoch == S.c.leader_epoch)
            SCHECK(S.n[L].pr.hw <= m->len, "I5: leader %d HW %lld <= LEO %lld of ISR member %d", L,
                   (long long)S.n[L].pr.hw, (long long)m->len, S.c.isr[i]);
    }
}

static void check_caches_fully(void) {
    for (int b = 1; b <= NB; b++) {
        node *n = &S.n[b];
        for (int64_t o = 0; o < n->len; o++)
            if (tr_epoch_for_offset(n->ec, n->nec, o) != n->log[o].epoch) {
                SCHECK(false, "I8: node %d offset %lld epoch %d, cache says %d", b, (long long)o, n->log[o].epoch,
                       tr_epoch_for_offset(n->ec, n->nec, o));
                break;
            }
    }
}

static int msg_cmp(const msg *a, const msg *b) {
    if (a->at != b->at) return a->at < b->at ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void simulate(uint64_t seed, int steps, int calm_steps) {
    cur_seed = seed;
    sim_failed_seed = 0;
    memset(&S, 0, sizeof S);
    rng = seed * 0x9E3779B97F4A7C15ull + 7;
    S.now = 1000;
    S.next_bepoch = 100;
    for (int i = 0; i < MAXEPOCH; i++) S.leader_of_epoch[i] = -1;
    S.c.leader = 1 + (int32_t)next_rand(NB);
    S.c.leader_epoch = 0;
    S.c.partition_epoch = 0;
    S.c.nisr = NB;
    for (int b = 1; b <= NB; b++) {
        S.c.isr[b - 1] = b;
        S.c.crashed_at[b] = -1;
        node *n = &S.n[b];
        n->up = true;
        n->inc = 1;
        n->broker_epoch = S.next_bepoch++;
        S.c.bepoch[b] = n->broker_epoch;
        pr_init(&n->pr, b, n->broker_epoch, SIM_LAG, SIM_MIN_ISR, 0, 0);
        n->seen_le = n->seen_pe = -1;
        n->term_epoch = -1;
    }
    broadcast();
    int crash_odds = 150 + (int)next_rand(600);
    calm = 0;
    for (int step = 0; step < steps + calm_steps && !sim_failed_seed; step++) {
        if (step == steps) calm = 1;
        S.now += 1 + (int64_t)next_rand(15);
        /* deliver what is due, in time order */
        for (;;) {
            int best = -1;
            for (int i = 0; i < S.nq; i++)
                if (S.q[i].at <= S.now && (best < 0 || msg_cmp(&S.q[i], &S.q[best]) < 0)) best = i;
            if (best < 0) break;
            msg m = S.q[best];
            S.q[best] = S.q[--S.nq];
            deliver(&m);
        }
        for (int i = 0; i < S.nq; i++)
            if (S.q[i].at == INT64_MAX) S.q[i--] = S.q[--S.nq]; /* dropped */
        /* producers: acks=all, one record a request */
        if (!calm && next_rand(3) == 0) {
            int b = next_rand(5) == 0 ? 1 + (int)next_rand(NB) : S.c.leader;
            if (b > 0 && S.n[b].up && S.n[b].len < MAXLOG - 16 && S.nprod < MAXPROD) {
                node *n = &S.n[b];
                int err = pr_check_append(&n->pr, -1);
                if (err == KERR_NONE) {
                    int64_t off = n->len;
                    n->log[off].epoch = n->pr.leader_epoch;
                    n->log[off].value = ++S.next_value;
                    tr_assign(n->ec, &n->nec, MAXEC, n->pr.leader_epoch, off);
                    n->len++;
                    produce *pp = &S.prod[S.nprod++];
                    pp->node = b;
                    pp->inc = n->inc;
                    pp->epoch = n->pr.leader_epoch;
                    pp->offset = off;
                    pp->value = S.next_value;
                    pp->deadline = S.now + SIM_REQ_TIMEOUT;
                    if (pr_leader_appended(&n->pr, n->len, S.now)) note_hw(b);
                } else if (err == KERR_NOT_ENOUGH_REPLICAS) {
                    S.nacks_refused++;
                }
            }
        }
        /* faults */
        int down = 0;
        for (int b = 1; b <= NB; b++) down += !S.n[b].up;
        if (!calm && down < 2 && next_rand((uint32_t)crash_odds) == 0) {
            int b = next_rand(2) == 0 && S.c.leader > 0 ? S.c.leader : 1 + (int)next_rand(NB);
            if (S.n[b].up) crash(b);
        }
        for (int b = 1; b <= NB; b++) {
            if (!S.n[b].up && S.c.crashed_at[b] >= 0 && S.now - S.c.crashed_at[b] >= SIM_SESSION) ctl_fence(b);
            if (!S.n[b].up && S.c.fenced[b] && S.c.crashed_at[b] < 0 && (calm || next_rand(60) == 0)) restart(b);
        }
        if (!calm && next_rand(700) == 0 && S.c.leader > 0) { /* kafka-leader-election / controlled move */
            int others = 0;
            for (int i = 0; i < S.c.nisr; i++) others += S.c.isr[i] != S.c.leader && !S.c.fenced[S.c.isr[i]];
            if (others) {
                ctl_elect(S.c.leader);
                S.c.partition_epoch++;
                broadcast();
            }
        }
        /* brokers' periodic work */
        for (int b = 1; b <= NB; b++) {
            node *n = &S.n[b];
            if (!n->up) continue;
            if (n->pr.is_leader) {
                pr_alter a;
                if (next_rand(4) == 0 && pr_maybe_shrink(&n->pr, S.now, &a)) send_alter(b, &a);
                if (n->alter_retry && S.now >= n->retry_at) {
                    n->alter_retry = false;
                    if (n->pr.state != PR_COMMITTED && n->pr.pending.seq == n->retry.seq) send_alter(b, &n->retry);
                }
            } else if (n->pr.leader_id > 0) {
                if (n->inflight && S.now - n->fetch_sent > 300) n->inflight = false; /* request timeout */
                if (!n->inflight && S.now >= n->next_fetch) send_fetch(b);
            }
        }
        complete_produces();
        check_all();
    }
    check_caches_fully();
    /* I9 liveness: after the faults stop, every replica is back in the ISR
     * with the leader's log, and the HW is the LEO. */
    int L = S.c.leader;
    if (!sim_failed_seed && calm_steps > 0) {
        SCHECK(L > 0 && S.c.nisr == NB, "I9: healed: a leader (%d) and a full ISR (%d)", L, S.c.nisr);
        if (L > 0) {
            node *l = &S.n[L];
            SCHECK(l->pr.is_leader && l->pr.hw == l->len, "I9: leader %d HW %lld == LEO %lld", L, (long long)l->pr.hw,
                   (long long)l->len);
            for (int b = 1; b <= NB; b++) {
                node *n = &S.n[b];
                bool same = n->len == l->len;
                for (int64_t o = 0; same && o < n->len; o++)
                    same = n->log[o].epoch == l->log[o].epoch && n->log[o].value == l->log[o].value;
                SCHECK(same, "I9: replica %d log (%lld) identical to the leader's (%lld)", b, (long long)n->len,
                       (long long)l->len);
            }
        }
    }
}

int main(int argc, char **argv) {
    test_epoch_cache();
    test_truncation();
    test_update_follower_fetch_state();
    test_isr_expansion();
    test_join_only_within_epoch();
    test_shrink();
    test_acks_all();
    test_same_epoch_metadata();
    test_late_metadata_keeps_pending();
    test_kip966_window();
    int direct_failed = failed;

    if (getenv("REPL_TRACE")) {
        tracing = 1;
        simulate((uint64_t)atoll(getenv("REPL_TRACE")), argc > 2 ? atoi(argv[2]) : 1500, 600);
        return failed ? 1 : 0;
    }
    int seeds = argc > 1 ? atoi(argv[1]) : 2000;
    int steps = argc > 2 ? atoi(argv[2]) : 1500;
    int bad = 0;
    long acked = 0, crashes = 0, elections = 0, truncs = 0, kip = 0, refused = 0, aa = 0, to = 0, nl = 0, aok = 0,
         arej = 0, div = 0;
    int64_t committed = 0;
    for (int s = 1; s <= seeds && bad < 3; s++) {
        simulate((uint64_t)s, steps, 600);
        if (sim_failed_seed) bad++;
        else passed++; /* a seed whose every step kept every invariant */
        acked += S.acked;
        crashes += S.crashes;
        elections += S.elections;
        truncs += S.truncations;
        kip += S.kip966;
        refused += S.nacks_refused;
        aa += S.after_append;
        to += S.timeouts;
        nl += S.not_leader;
        aok += S.alters_ok;
        arej += S.alters_rejected;
        div += S.diverging;
        committed += S.committed_len;
    }
    printf("test_replication: simulated %d seeds x %d steps: %ld acked, %lld committed records, %ld crashes, "
           "%ld elections, %ld DivergingEpoch answers, %ld follower truncations, AlterPartition %ld ok / %ld "
           "refused, produce NOT_ENOUGH_REPLICAS %ld, AFTER_APPEND %ld, timed out %ld, not leader %ld, "
           "last-ISR-member crashes kept whole (KIP-966) %ld\n",
           seeds, steps, acked, (long long)committed, crashes, elections, div, truncs, aok, arej, refused, aa, to, nl,
           kip);
    printf("test_replication: %d passed, %d failed (direct checks and simulated seeds; %d direct failures)\n", passed,
           failed, direct_failed);
    return failed ? 1 : 0;
}
