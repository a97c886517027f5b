/* test_txn_state.c - the transaction coordinator's pure logic (src/txn/):
 * Kafka's state machine, every handler's answers, the marker and timeout
 * paths, __transaction_state records byte for byte, and a seeded random run
 * checking the invariants. */
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "txn/txn_coord.h"
#include "txn/txn_log.h"
#include "unit_check.h"

static const txn_config cfg = {.max_timeout_ms = 900000, .id_expiration_ms = 604800000LL};

static int64_t next_pid = 1000;
static int16_t pid_err = KERR_NONE;
static int16_t pid_next(void *ctx, int64_t *out) {
    (void)ctx;
    if (pid_err != KERR_NONE) return pid_err;
    *out = next_pid++;
    return KERR_NONE;
}
static const txn_pid_source pids = {pid_next, NULL};

#define TID "txn-1"
#define TIDL (sizeof TID - 1)

/* InitProducerId then write it: returns the answer's error. */
static int16_t init_pid(txn_meta **m, int32_t timeout, bool has_exp, int64_t epid, int16_t eep,
                        int64_t now, int64_t *pid, int16_t *epoch) {
    txn_decision d;
    txn_init_producer_id(&cfg, m, TID, TIDL, timeout, has_exp, epid, eep, &pids, now, &d);
    int16_t err = d.err;
    if (d.append) {
        txn_append_outcome o;
        txn_append_done(*m, &d, KERR_NONE, 0, now, &o);
        err = o.err;
        if (d.op == TXN_OP_INIT_PID) {
            *pid = o.producer_id;
            *epoch = o.producer_epoch;
        }
    }
    txn_decision_free(&d);
    return err;
}

static void tpset_of(txn_tpset *s, const char *topic, int32_t p) {
    txn_tpset_init(s);
    txn_tpset_add(s, topic, strlen(topic), p);
}

static int16_t add_one(txn_meta *m, const char *topic, int32_t p, int64_t now) {
    txn_tpset s;
    tpset_of(&s, topic, p);
    txn_decision d;
    txn_add_partitions(m, TIDL, m->producer_id, m->producer_epoch, &s, now, &d);
    int16_t err = d.err;
    if (d.append) {
        txn_append_outcome o;
        txn_append_done(m, &d, KERR_NONE, 0, now, &o);
        err = o.err;
    }
    txn_decision_free(&d);
    txn_tpset_free(&s);
    return err;
}

/* Write every marker and the completion. */
static void finish_markers(txn_meta *m, int64_t now) {
    while (m->partitions.n) {
        txn_marker_action a = txn_marker_written(m, m->partitions.v[0].topic,
                                                 strlen(m->partitions.v[0].topic),
                                                 m->partitions.v[0].partition, KERR_NONE);
        CHECK(a == TXN_MARKER_DONE, "marker done %d", a);
    }
    txn_decision d;
    CHECK(txn_markers_ready(m, &d), "markers ready");
    txn_append_outcome o;
    txn_append_done(m, &d, KERR_NONE, 0, now, &o);
    CHECK(o.err == KERR_NONE, "completion written");
    txn_decision_free(&d);
}

static void test_state_table(void) {
    /* Kafka's validPreviousStates, row by row */
    static const char *const rows[TXN_NSTATES] = {
        [TXN_EMPTY] = "Empty CompleteCommit CompleteAbort",
        [TXN_ONGOING] = "Ongoing Empty CompleteCommit CompleteAbort",
        [TXN_PREPARE_COMMIT] = "Ongoing",
        [TXN_PREPARE_ABORT] = "Ongoing PrepareEpochFence",
        [TXN_COMPLETE_COMMIT] = "PrepareCommit",
        [TXN_COMPLETE_ABORT] = "PrepareAbort",
        [TXN_DEAD] = "Empty CompleteAbort CompleteCommit",
        [TXN_PREPARE_EPOCH_FENCE] = "Ongoing",
    };
    for (int to = 0; to < TXN_NSTATES; to++)
        for (int from = 0; from < TXN_NSTATES; from++) {
            char word[32];
            snprintf(word, sizeof word, "%s", txn_state_name(from));
            const char *hit = strstr(rows[to], word);
            bool want = false;
            while (hit) { /* whole word only: "Ongoing" vs nothing longer */
                size_t l = strlen(word);
                if ((hit == rows[to] || hit[-1] == ' ') && (hit[l] == 0 || hit[l] == ' ')) want = true;
                hit = strstr(hit + 1, word);
            }
            CHECK(txn_state_valid_previous(to, from) == want, "%s -> %s", txn_state_name(from),
                  txn_state_name(to));
        }
    CHECK(txn_state_from_name("PrepareEpochFence", 17) == TXN_PREPARE_EPOCH_FENCE, "name");
    CHECK(txn_state_from_name("ongoing", 7) == -1, "names are exact");
    CHECK(txn_state_name(8) == NULL, "out of range");
    CHECK(txn_state_expiration_allowed(TXN_EMPTY) && txn_state_expiration_allowed(TXN_COMPLETE_ABORT) &&
              !txn_state_expiration_allowed(TXN_ONGOING) && !txn_state_expiration_allowed(TXN_DEAD),
          "expiration allowed");
}

static void test_transitions(void) {
    txn_meta *m = txn_meta_new(TID, TIDL, 7, -1, 3, -1, 60000, TXN_EMPTY, 100);
    txn_transit t, t2;
    txn_tpset s;
    tpset_of(&s, "a", 0);
    CHECK(txn_prepare_add_partitions(m, &s, 200, &t) == 0 && m->pending == TXN_ONGOING, "prepare Ongoing");
    CHECK(t.start_ms == 200 && t.last_update_ms == 200 && t.partitions.n == 1 && t.last_producer_id == 7,
          "transit fields");
    CHECK(txn_prepare_add_partitions(m, &s, 200, &t2) == -1, "one pending transition at a time");
    CHECK(m->state == TXN_EMPTY && m->partitions.n == 0, "nothing applied before the write");
    txn_transit bad = t;
    bad.state = TXN_PREPARE_COMMIT;
    CHECK(txn_complete_transition(m, &bad) == -1, "complete must match the pending state");
    bad = t;
    bad.producer_epoch = 9;
    CHECK(txn_complete_transition(m, &bad) == -1, "Ongoing keeps the epoch");
    CHECK(txn_complete_transition(m, &t) == 0 && m->state == TXN_ONGOING && m->start_ms == 200 &&
              m->partitions.n == 1 && !txn_pending(m),
          "Ongoing completed");
    txn_transit_free(&t);
    CHECK(txn_prepare_complete(m, 300, &t) == -1, "Ongoing cannot complete");
    CHECK(txn_prepare_dead(m, &t) == -1, "Ongoing cannot die");
    CHECK(txn_remove_partition(m, "a", 1, 0) == -1, "no marker removal while Ongoing");
    CHECK(txn_prepare_abort_or_commit(m, TXN_PREPARE_COMMIT, 300, &t) == 0, "PrepareCommit");
    CHECK(txn_complete_transition(m, &t) == 0 && m->state == TXN_PREPARE_COMMIT && m->last_update_ms == 300,
          "PrepareCommit completed");
    txn_transit_free(&t);
    CHECK(txn_remove_partition(m, "a", 1, 0) == 0 && m->partitions.n == 0, "marker removes");
    CHECK(txn_prepare_complete(m, 400, &t) == 0 && t.state == TXN_COMPLETE_COMMIT && t.partitions.n == 0,
          "CompleteCommit prepared");
    CHECK(txn_complete_transition(m, &t) == 0 && m->state == TXN_COMPLETE_COMMIT && m->start_ms == 200, "CompleteCommit");
    txn_transit_free(&t);
    /* Empty by epoch bump, then Dead never completes */
    CHECK(txn_prepare_increment_epoch(m, 5000, false, 0, 500, &t) == 0 && t.producer_epoch == 4 &&
              t.last_producer_epoch == -1 && t.start_ms == -1,
          "bump");
    CHECK(txn_complete_transition(m, &t) == 0 && m->timeout_ms == 5000 && m->producer_epoch == 4, "Empty");
    txn_transit_free(&t);
    CHECK(txn_prepare_dead(m, &t) == 0 && m->pending == TXN_DEAD, "Dead prepared");
    CHECK(txn_complete_transition(m, &t) == -1, "Dead is never completed");
    txn_transit_free(&t);
    m->pending = TXN_NO_STATE;
    /* PrepareEpochFence never completes; fence from Ongoing only */
    CHECK(txn_prepare_fence_epoch(m, &t) == -1, "fence needs Ongoing");
    CHECK(txn_prepare_add_partitions(m, &s, 600, &t) == 0 && txn_complete_transition(m, &t) == 0, "Ongoing again");
    txn_transit_free(&t);
    CHECK(txn_prepare_fence_epoch(m, &t) == 0 && t.producer_epoch == 5 && t.partitions.n == 1, "fence bumps");
    CHECK(txn_complete_transition(m, &t) == -1, "a fence is never completed");
    txn_transit_free(&t);
    m->pending = TXN_NO_STATE;
    m->has_failed_epoch_fence = true;
    CHECK(txn_prepare_fence_epoch(m, &t) == 0 && t.producer_epoch == 4, "after a failed fence: no second bump");
    txn_transit_free(&t);
    m->pending = TXN_NO_STATE;
    CHECK(txn_prepare_rotate_producer_id(m, 99, 1, 1, false, &t) == -1, "no rotation mid-transaction");
    txn_tpset_free(&s);
    txn_meta_free(m);
}

static void test_init_producer_id(void) {
    txn_meta *m = NULL;
    int64_t pid = -1;
    int16_t ep = -1;
    txn_decision d;
    next_pid = 1000;
    txn_init_producer_id(&cfg, &m, TID, 0, 60000, false, -1, -1, &pids, 1, &d);
    CHECK(d.err == KERR_INVALID_REQUEST && !m, "empty id: INVALID_REQUEST");
    txn_init_producer_id(&cfg, &m, TID, TIDL, 900001, false, -1, -1, &pids, 1, &d);
    CHECK(d.err == KERR_INVALID_TRANSACTION_TIMEOUT && !m, "timeout over the max");
    txn_init_producer_id(&cfg, &m, TID, TIDL, 0, false, -1, -1, &pids, 1, &d);
    CHECK(d.err == KERR_INVALID_TRANSACTION_TIMEOUT, "timeout 0");
    pid_err = KERR_COORDINATOR_LOAD_IN_PROGRESS;
    txn_init_producer_id(&cfg, &m, TID, TIDL, 60000, false, -1, -1, &pids, 1, &d);
    CHECK(d.err == KERR_COORDINATOR_LOAD_IN_PROGRESS && !m, "producer id block error passed on");
    pid_err = KERR_NONE;

    CHECK(init_pid(&m, 60000, false, -1, -1, 10, &pid, &ep) == KERR_NONE && pid == 1000 && ep == 0,
          "new id: producer 1000 epoch 0 (%lld %d)", (long long)pid, ep);
    CHECK(m && m->state == TXN_EMPTY && m->last_producer_id == 1000 && m->timeout_ms == 60000, "metadata");
    CHECK(init_pid(&m, 30000, false, -1, -1, 20, &pid, &ep) == KERR_NONE && pid == 1000 && ep == 1,
          "second init bumps");
    CHECK(m->timeout_ms == 30000 && m->last_producer_epoch == -1, "new timeout, no last epoch");

    /* a pending write answers CONCURRENT_TRANSACTIONS */
    txn_init_producer_id(&cfg, &m, TID, TIDL, 60000, false, -1, -1, &pids, 30, &d);
    CHECK(d.append && m->pending == TXN_EMPTY, "pending");
    txn_decision d2;
    txn_init_producer_id(&cfg, &m, TID, TIDL, 60000, false, -1, -1, &pids, 30, &d2);
    CHECK(!d2.append && d2.err == KERR_CONCURRENT_TRANSACTIONS, "CONCURRENT_TRANSACTIONS while written");
    txn_append_outcome o;
    txn_append_done(m, &d, KERR_NOT_ENOUGH_REPLICAS, 0, 30, &o);
    CHECK(o.err == KERR_COORDINATOR_NOT_AVAILABLE && !txn_pending(m) && m->producer_epoch == 1,
          "failed write: COORDINATOR_NOT_AVAILABLE, nothing changed");
    txn_decision_free(&d);

    /* KIP-360 */
    CHECK(init_pid(&m, 60000, true, 1000, 1, 40, &pid, &ep) == KERR_NONE && ep == 2 && m->last_producer_epoch == 1,
          "expected epoch matches: bump, last epoch kept");
    CHECK(init_pid(&m, 60000, true, 1000, 1, 41, &pid, &ep) == KERR_NONE && ep == 2,
          "retry with the last epoch: same epoch");
    CHECK(init_pid(&m, 60000, true, 1000, 0, 42, &pid, &ep) == KERR_PRODUCER_FENCED, "stale epoch fenced");
    CHECK(init_pid(&m, 60000, true, 555, 2, 42, &pid, &ep) == KERR_PRODUCER_FENCED, "other producer id fenced");

    /* Ongoing: fence and abort, CONCURRENT_TRANSACTIONS */
    CHECK(add_one(m, "t", 0, 50) == KERR_NONE && m->state == TXN_ONGOING, "ongoing");
    txn_init_producer_id(&cfg, &m, TID, TIDL, 60000, false, -1, -1, &pids, 60, &d);
    CHECK(d.append && d.op == TXN_OP_END_TXN && d.epoch_fence && d.result == TXN_RESULT_ABORT &&
              d.transit.state == TXN_PREPARE_ABORT && d.transit.producer_epoch == 3 && m->producer_epoch == 3 &&
              m->pending == TXN_PREPARE_ABORT,
          "fence: PrepareAbort with epoch 3");
    txn_append_done(m, &d, KERR_NONE, 4, 60, &o);
    CHECK(o.err == KERR_CONCURRENT_TRANSACTIONS && o.send_markers && m->markers_pending &&
              m->markers_coordinator_epoch == 4 && m->pending == TXN_COMPLETE_ABORT,
          "client told CONCURRENT_TRANSACTIONS, markers owed");
    txn_decision_free(&d);
    CHECK(init_pid(&m, 60000, false, -1, -1, 61, &pid, &ep) == KERR_CONCURRENT_TRANSACTIONS,
          "while completing: CONCURRENT_TRANSACTIONS");
    finish_markers(m, 70);
    CHECK(m->state == TXN_COMPLETE_ABORT && m->partitions.n == 0, "aborted");
    CHECK(init_pid(&m, 60000, false, -1, -1, 80, &pid, &ep) == KERR_NONE && ep == 4, "retry bumps again");

    /* epoch exhaustion: a new producer id */
    m->producer_epoch = INT16_MAX - 1;
    CHECK(init_pid(&m, 60000, false, -1, -1, 90, &pid, &ep) == KERR_NONE && pid == 1001 && ep == 0 &&
              m->last_producer_id == 1000 && m->last_producer_epoch == -1,
          "exhausted: producer 1001 epoch 0");
    m->producer_epoch = INT16_MAX - 1;
    CHECK(init_pid(&m, 60000, true, 1001, INT16_MAX - 1, 91, &pid, &ep) == KERR_NONE && pid == 1002 &&
              ep == 0 && m->last_producer_epoch == INT16_MAX - 1,
          "exhausted with expected epoch: rotation records the last epoch");
    CHECK(init_pid(&m, 60000, true, 1001, INT16_MAX - 1, 92, &pid, &ep) == KERR_NONE && pid == 1002 && ep == 0,
          "retry of the rotation with the old id: answered again, not fenced");
    txn_meta_free(m);
}

static void test_add_partitions(void) {
    txn_meta *m = NULL;
    int64_t pid;
    int16_t ep;
    next_pid = 2000;
    init_pid(&m, 60000, false, -1, -1, 10, &pid, &ep);
    txn_tpset s;
    tpset_of(&s, "t", 1);
    txn_decision d;
    txn_add_partitions(NULL, TIDL, pid, ep, &s, 20, &d);
    CHECK(d.err == KERR_INVALID_PRODUCER_ID_MAPPING, "unknown id");
    txn_add_partitions(m, 0, pid, ep, &s, 20, &d);
    CHECK(d.err == KERR_INVALID_REQUEST, "empty id");
    txn_add_partitions(m, TIDL, pid + 1, ep, &s, 20, &d);
    CHECK(d.err == KERR_INVALID_PRODUCER_ID_MAPPING, "other producer id");
    txn_add_partitions(m, TIDL, pid, ep + 1, &s, 20, &d);
    CHECK(d.err == KERR_PRODUCER_FENCED, "other epoch");
    txn_add_partitions(m, TIDL, pid, ep, &s, 20, &d);
    CHECK(d.append && d.transit.start_ms == 20 && m->pending == TXN_ONGOING, "append");
    txn_decision d2;
    txn_add_partitions(m, TIDL, pid, ep, &s, 21, &d2);
    CHECK(d2.err == KERR_CONCURRENT_TRANSACTIONS, "pending");
    txn_append_outcome o;
    txn_append_done(m, &d, KERR_NONE, 0, 22, &o);
    txn_decision_free(&d);
    CHECK(o.err == KERR_NONE && m->state == TXN_ONGOING && m->start_ms == 20, "Ongoing");
    txn_add_partitions(m, TIDL, pid, ep, &s, 30, &d);
    CHECK(!d.append && d.err == KERR_NONE, "already added: answered without a write");
    CHECK(add_one(m, "t", 2, 40) == KERR_NONE && m->partitions.n == 2 && m->start_ms == 20,
          "second partition keeps the start time");

    /* AddOffsetsToTxn */
    txn_add_offsets(m, TIDL, pid, ep, "my-group", 8, 50, 50, &d);
    int32_t gp = txn_partition_for("my-group", 8, 50);
    CHECK(d.append && txn_tpset_contains(&d.transit.partitions, "__consumer_offsets", 18, gp), "offsets partition %d", gp);
    txn_append_done(m, &d, KERR_NONE, 0, 50, &o);
    txn_decision_free(&d);
    CHECK(m->partitions.n == 3, "three partitions");

    /* v4 verify-only */
    txn_tpset q;
    tpset_of(&q, "t", 2);
    txn_tpset_add(&q, "t", 1, 9);
    int16_t errs[2];
    txn_verify_partitions(m, TIDL, pid, ep, &q, errs);
    CHECK(errs[0] == KERR_NONE && errs[1] == KERR_INVALID_TXN_STATE, "verify: in / not in");
    txn_verify_partitions(m, TIDL, pid, ep + 1, &q, errs);
    CHECK(errs[0] == KERR_PRODUCER_FENCED && errs[1] == KERR_PRODUCER_FENCED, "verify: fenced");
    txn_verify_partitions(NULL, TIDL, pid, ep, &q, errs);
    CHECK(errs[0] == KERR_INVALID_PRODUCER_ID_MAPPING, "verify: unknown");
    txn_verify_partitions(m, 0, pid, ep, &q, errs);
    CHECK(errs[1] == KERR_INVALID_REQUEST, "verify: empty id");

    /* in PrepareCommit: CONCURRENT_TRANSACTIONS */
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 60, &d);
    txn_append_done(m, &d, KERR_NONE, 0, 60, &o);
    txn_decision_free(&d);
    txn_add_partitions(m, TIDL, pid, ep, &s, 61, &d);
    CHECK(d.err == KERR_CONCURRENT_TRANSACTIONS, "add while committing");
    txn_verify_partitions(m, TIDL, pid, ep, &q, errs);
    CHECK(errs[0] == KERR_CONCURRENT_TRANSACTIONS, "verify while committing");
    finish_markers(m, 70);
    add_one(m, "x", 0, 80);
    CHECK(m->start_ms == 80, "a new transaction after CompleteCommit starts now");
    txn_tpset_free(&s);
    txn_tpset_free(&q);
    txn_meta_free(m);
}

static void test_end_txn(void) {
    txn_meta *m = NULL;
    int64_t pid;
    int16_t ep;
    next_pid = 3000;
    init_pid(&m, 60000, false, -1, -1, 10, &pid, &ep);
    txn_decision d;
    txn_append_outcome o;
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 20, &d);
    CHECK(d.err == KERR_INVALID_TXN_STATE, "commit when Empty");
    txn_end_txn(NULL, TIDL, pid, ep, TXN_RESULT_COMMIT, 20, &d);
    CHECK(d.err == KERR_INVALID_PRODUCER_ID_MAPPING, "unknown id");
    txn_end_txn(m, 0, pid, ep, TXN_RESULT_COMMIT, 20, &d);
    CHECK(d.err == KERR_INVALID_REQUEST, "empty id");
    add_one(m, "t", 0, 30);
    txn_end_txn(m, TIDL, pid + 1, ep, TXN_RESULT_COMMIT, 40, &d);
    CHECK(d.err == KERR_INVALID_PRODUCER_ID_MAPPING, "other producer id");
    txn_end_txn(m, TIDL, pid, ep - 1, TXN_RESULT_COMMIT, 40, &d);
    CHECK(d.err == KERR_PRODUCER_FENCED, "old epoch");
    txn_end_txn(m, TIDL, pid, ep + 1, TXN_RESULT_COMMIT, 40, &d);
    CHECK(d.err == KERR_PRODUCER_FENCED, "a client's newer epoch is fenced too");
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 40, &d);
    CHECK(d.append && d.transit.state == TXN_PREPARE_COMMIT && !d.epoch_fence, "PrepareCommit");
    txn_decision d2;
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 41, &d2);
    CHECK(d2.err == KERR_CONCURRENT_TRANSACTIONS, "pending PrepareCommit: CONCURRENT_TRANSACTIONS");
    txn_append_done(m, &d, KERR_NONE, 0, 42, &o);
    txn_decision_free(&d);
    CHECK(o.err == KERR_NONE && o.send_markers && m->state == TXN_PREPARE_COMMIT, "written, markers owed");
    /* retries while the markers are written: pending Complete* */
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 43, &d);
    CHECK(d.err == KERR_CONCURRENT_TRANSACTIONS, "commit again while completing");
    /* markers: a retriable error, then success */
    CHECK(txn_marker_written(m, "t", 1, 0, KERR_NOT_LEADER_OR_FOLLOWER) == TXN_MARKER_RETRY, "retry");
    CHECK(!txn_markers_ready(m, &d), "not ready");
    CHECK(txn_marker_written(m, "t", 1, 0, KERR_CORRUPT_MESSAGE) == TXN_MARKER_FATAL, "fatal");
    CHECK(txn_marker_written(m, "t", 1, 0, KERR_NONE) == TXN_MARKER_DONE, "written");
    CHECK(txn_markers_ready(m, &d) && d.op == TXN_OP_COMPLETE && d.transit.state == TXN_COMPLETE_COMMIT, "ready");
    txn_append_done(m, &d, KERR_REQUEST_TIMED_OUT, 0, 50, &o);
    CHECK(o.retry && m->pending == TXN_COMPLETE_COMMIT, "completion retried, still pending");
    txn_append_done(m, &d, KERR_NONE, 0, 51, &o);
    txn_decision_free(&d);
    CHECK(o.err == KERR_NONE && m->state == TXN_COMPLETE_COMMIT && !txn_pending(m) && m->partitions.n == 0, "done");
    /* retried EndTxn answers */
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 60, &d);
    CHECK(!d.append && d.err == KERR_NONE, "commit when CompleteCommit: NONE");
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_ABORT, 60, &d);
    CHECK(d.err == KERR_INVALID_TXN_STATE, "abort when CompleteCommit");
    /* the abort side */
    add_one(m, "t", 0, 70);
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_ABORT, 71, &d);
    txn_append_done(m, &d, KERR_NONE, 0, 71, &o);
    txn_decision_free(&d);
    CHECK(m->state == TXN_PREPARE_ABORT, "PrepareAbort");
    txn_markers_cancel(m); /* as if the coordinator moved: no pending Complete* left behind */
    m->pending = TXN_NO_STATE;
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 72, &d);
    CHECK(d.err == KERR_INVALID_TXN_STATE, "commit when PrepareAbort");
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_ABORT, 72, &d);
    CHECK(d.err == KERR_CONCURRENT_TRANSACTIONS, "abort when PrepareAbort");
    CHECK(txn_on_load(m, 7, 73) && m->markers_pending && m->pending == TXN_COMPLETE_ABORT, "load resumes markers");
    finish_markers(m, 74);
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_ABORT, 75, &d);
    CHECK(d.err == KERR_NONE, "abort when CompleteAbort: NONE");
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 75, &d);
    CHECK(d.err == KERR_INVALID_TXN_STATE, "commit when CompleteAbort");
    /* a PrepareCommit write that fails leaves Ongoing */
    add_one(m, "t", 0, 80);
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 81, &d);
    txn_append_done(m, &d, KERR_NOT_LEADER_OR_FOLLOWER, 0, 81, &o);
    txn_decision_free(&d);
    CHECK(o.err == KERR_NOT_COORDINATOR && m->state == TXN_ONGOING && !txn_pending(m), "failed EndTxn write");
    /* a marker fenced: sending stops */
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 82, &d);
    txn_append_done(m, &d, KERR_NONE, 0, 82, &o);
    txn_decision_free(&d);
    CHECK(txn_marker_written(m, "t", 1, 0, KERR_INVALID_PRODUCER_EPOCH) == TXN_MARKER_CANCEL && !m->markers_pending,
          "fenced marker cancels");
    txn_meta_free(m);
}

static void test_timeouts_and_expiry(void) {
    txn_meta *m = NULL;
    int64_t pid;
    int16_t ep;
    next_pid = 4000;
    init_pid(&m, 1000, false, -1, -1, 10, &pid, &ep);
    add_one(m, "t", 0, 100);
    CHECK(!txn_timed_out(m, 1100), "at the timeout: not yet");
    CHECK(txn_timed_out(m, 1101), "past the timeout");
    txn_decision d;
    CHECK(txn_abort_timed_out(m, 1101, &d) == 0 && d.epoch_fence && d.transit.state == TXN_PREPARE_ABORT &&
              d.transit.producer_epoch == ep + 1 && d.reply_on_success == KERR_NONE,
          "abort with a bumped epoch");
    CHECK(!txn_timed_out(m, 5000), "pending: not offered again");
    txn_append_outcome o;
    txn_append_done(m, &d, KERR_NOT_ENOUGH_REPLICAS, 0, 1102, &o);
    txn_decision_free(&d);
    CHECK(m->has_failed_epoch_fence && m->state == TXN_ONGOING && m->producer_epoch == ep + 1,
          "failed fence: epoch kept bumped in memory");
    txn_add_partitions(m, TIDL, pid, ep, &m->partitions, 1103, &d);
    CHECK(d.err == KERR_PRODUCER_FENCED, "the old producer is fenced");
    CHECK(txn_abort_timed_out(m, 1200, &d) == 0 && d.transit.producer_epoch == ep + 1, "no second bump");
    txn_append_done(m, &d, KERR_NONE, 0, 1200, &o);
    txn_decision_free(&d);
    CHECK(o.send_markers && !m->has_failed_epoch_fence, "fence written");
    finish_markers(m, 1300);
    CHECK(m->state == TXN_COMPLETE_ABORT, "aborted");
    txn_end_txn(m, TIDL, pid, ep, TXN_RESULT_COMMIT, 1400, &d);
    CHECK(d.err == KERR_PRODUCER_FENCED, "the timed-out producer's commit is fenced");

    /* transactional.id expiration */
    int64_t exp = cfg.id_expiration_ms;
    CHECK(m->last_update_ms == 1200, "completion stamped when the markers were started");
    CHECK(!txn_should_expire(&cfg, m, 1200 + exp - 1), "not yet");
    CHECK(txn_should_expire(&cfg, m, 1200 + exp), "expired");
    CHECK(txn_expire(&cfg, m, 1300 + exp, &d) == 0 && m->pending == TXN_DEAD && d.op == TXN_OP_EXPIRE, "tombstone");
    txn_decision d2;
    int16_t err = init_pid(&m, 1000, false, -1, -1, 1300 + exp, &pid, &ep);
    CHECK(err == KERR_CONCURRENT_TRANSACTIONS, "InitProducerId while expiring");
    (void)d2;
    txn_append_done(m, &d, KERR_NOT_ENOUGH_REPLICAS, 0, 0, &o);
    CHECK(!o.remove && !txn_pending(m), "failed tombstone: kept");
    txn_decision_free(&d);
    txn_expire(&cfg, m, 1300 + exp, &d);
    txn_append_done(m, &d, KERR_NONE, 0, 0, &o);
    txn_decision_free(&d);
    CHECK(o.remove, "tombstone written: remove");
    add_one(m, "t", 0, 1);
    CHECK(txn_expire(&cfg, m, INT64_MAX / 2, &d) == -1, "Ongoing never expires");
    txn_meta_free(m);
}

static bool bytes_eq(const kwriter *w, const uint8_t *want, size_t n) {
    return w->len == n && memcmp(w->buf, want, n) == 0;
}

static void test_log(void) {
    kwriter w;
    kw_init(&w);
    txn_log_key(&w, TID, TIDL);
    static const uint8_t key[] = {0, 0, 0, 5, 't', 'x', 'n', '-', '1'};
    CHECK(bytes_eq(&w, key, sizeof key), "key bytes");
    kstr tid;
    CHECK(txn_log_parse_key(w.buf, w.len, &tid) == 1 && kstr_eq_c(tid, TID), "key parsed");
    static const uint8_t key_v9[] = {0, 9, 0, 1, 'x'};
    CHECK(txn_log_parse_key(key_v9, sizeof key_v9, &tid) == 0, "unknown key version skipped");
    CHECK(txn_log_parse_key(key, 5, &tid) == -1, "short key");

    txn_transit t;
    memset(&t, 0, sizeof t);
    t.producer_id = 1000;
    t.producer_epoch = 5;
    t.timeout_ms = 60000;
    t.state = TXN_ONGOING;
    t.last_update_ms = 1700;
    t.start_ms = 1500;
    txn_tpset_init(&t.partitions);
    txn_tpset_add(&t.partitions, "u", 1, 1);
    txn_tpset_add(&t.partitions, "t", 1, 2);
    txn_tpset_add(&t.partitions, "t", 1, 0);
    kw_reset(&w);
    CHECK(txn_log_value(&w, &t) == 0, "value");
    static const uint8_t val[] = {
        0, 0,                               /* version 0 */
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       /* producer id 1000 */
        0, 5,                               /* epoch */
        0, 0, 0xea, 0x60,                   /* timeout 60000 */
        1,                                  /* Ongoing */
        0, 0, 0, 2,                         /* two topics */
        0, 1, 't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,
        0, 1, 'u', 0, 0, 0, 1, 0, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 0x06, 0xa4,       /* last update 1700 */
        0, 0, 0, 0, 0, 0, 0x05, 0xdc,       /* start 1500 */
    };
    CHECK(bytes_eq(&w, val, sizeof val), "value bytes (%zu)", w.len);
    txn_transit back;
    CHECK(txn_log_parse_value(w.buf, w.len, &back) == 0 && back.producer_id == 1000 && back.producer_epoch == 5 &&
              back.timeout_ms == 60000 && back.state == TXN_ONGOING && back.last_update_ms == 1700 &&
              back.start_ms == 1500 && txn_tpset_equal(&back.partitions, &t.partitions) &&
              back.last_producer_id == -1 && back.last_producer_epoch == -1,
          "value round trip");
    txn_meta *m = txn_log_meta(TID, TIDL, &back);
    CHECK(m && m->state == TXN_ONGOING && m->partitions.n == 3 && m->start_ms == 1500 && !txn_pending(m), "loaded meta");
    txn_meta_free(m);
    txn_transit_free(&back);
    for (size_t n = 0; n < sizeof val; n++) {
        int rc = txn_log_parse_value(val, n, &back);
        CHECK(rc == -1, "truncated value at %zu", n);
    }
    uint8_t badst[sizeof val];
    memcpy(badst, val, sizeof val);
    badst[16] = 8;
    CHECK(txn_log_parse_value(badst, sizeof badst, &back) == -1, "unknown status");
    badst[16] = 1;
    badst[1] = 2;
    CHECK(txn_log_parse_value(badst, sizeof badst, &back) == -1, "unknown value version");

    /* Empty: null partitions; partitions refused */
    t.state = TXN_EMPTY;
    kw_reset(&w);
    CHECK(txn_log_value(&w, &t) == -1 && w.len == 0, "Empty with partitions refused");
    txn_tpset_clear(&t.partitions);
    t.start_ms = -1;
    CHECK(txn_log_value(&w, &t) == 0 && w.len == 2 + 8 + 2 + 4 + 1 + 4 + 8 + 8, "Empty value size");
    CHECK(memcmp(w.buf + 17, "\xff\xff\xff\xff", 4) == 0, "null partitions");
    CHECK(txn_log_parse_value(w.buf, w.len, &back) == 0 && back.state == TXN_EMPTY && back.start_ms == -1 &&
              back.partitions.n == 0,
          "Empty round trip");
    txn_transit_free(&back);

    /* v1 (flexible), as a newer writer would */
    static const uint8_t v1[] = {
        0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 0, 0, 0x03, 0xe8, 2, /* pid 7 epoch 2 timeout 1000 PrepareCommit */
        2,                                                      /* one topic */
        2, 'a', 3, 0, 0, 0, 4, 0, 0, 0, 5, 0,                   /* "a" [4, 5], no tags */
        0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 8, 0,      /* times, no tags */
    };
    CHECK(txn_log_parse_value(v1, sizeof v1, &back) == 0 && back.producer_id == 7 && back.state == TXN_PREPARE_COMMIT &&
              back.partitions.n == 2 && txn_tpset_contains(&back.partitions, "a", 1, 5) && back.last_update_ms == 9 &&
              back.start_ms == 8,
          "flexible v1 read");
    txn_transit_free(&back);
    txn_transit_free(&t);
    kw_free(&w);

    /* Java's String.hashCode and Utils.abs */
    CHECK(txn_java_string_hash("", 0) == 0, "hash of empty");
    CHECK(txn_java_string_hash("hello", 5) == 99162322, "hash of hello");
    CHECK(txn_java_string_hash("polygenelubricants", 18) == INT32_MIN, "the famous MIN_VALUE hash");
    CHECK(txn_partition_for("polygenelubricants", 18, 50) == 0, "Utils.abs(MIN_VALUE) is 0");
    CHECK(txn_java_string_hash("\xc3\xa9", 2) == 0xe9, "two-byte UTF-8 counts one unit");
    CHECK(txn_java_string_hash("\xf0\x9f\x98\x80", 4) == (int32_t)(0xd83d * 31 + 0xde00), "surrogate pair");
    CHECK(txn_java_string_hash("a\0b", 3) == (97 * 31 + 0) * 31 + 98, "NUL inside the id counts");
    CHECK(txn_partition_for("hello", 5, 50) == 99162322 % 50, "partition of hello");
    int32_t h = txn_java_string_hash("my-transactional-id", 19);
    CHECK(txn_partition_for("my-transactional-id", 19, 50) == (h < 0 ? -h : h) % 50, "abs then mod");
}

/* ---- seeded random operations ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void test_random(void) {
    enum { IDS = 4, STEPS = 20000 };
    txn_meta *ms[IDS] = {0};
    txn_decision inflight[IDS];
    bool has_inflight[IDS] = {0};
    int64_t epoch_seen[8192];
    for (int i = 0; i < 8192; i++) epoch_seen[i] = -1;
    next_pid = 5000;
    int64_t now = 1000;
    int bad = 0, appends = 0;
    for (int step = 0; step < STEPS && bad < 5; step++) {
        int i = (int)rnd(IDS);
        now += rnd(400);
        txn_meta *m = ms[i];
        txn_decision d;
        bool got = false;
        switch (rnd(10)) {
        case 0:
        case 1:
            if (has_inflight[i]) {
                /* finish the write: usually ok, sometimes failed */
                txn_append_outcome o;
                int16_t err = rnd(6) == 0 ? KERR_NOT_ENOUGH_REPLICAS : KERR_NONE;
                txn_append_done(m, &inflight[i], err, 0, now, &o);
                if (o.retry) break; /* keep it in flight */
                txn_decision_free(&inflight[i]);
                has_inflight[i] = false;
                if (o.remove) {
                    txn_meta_free(m);
                    ms[i] = NULL;
                }
            }
            break;
        case 2: {
            bool exp = m && rnd(3) == 0;
            int16_t ee = m ? (int16_t)(m->producer_epoch - (int16_t)rnd(2)) : 0;
            if (m && rnd(50) == 0) m->producer_epoch = m->pending == TXN_NO_STATE ? INT16_MAX - 2 : m->producer_epoch;
            txn_init_producer_id(&cfg, &ms[i], TID, TIDL, 1 + (int32_t)rnd(5000), exp, m ? m->producer_id : -1, ee,
                                 &pids, now, &d);
            m = ms[i];
            got = true;
            break;
        }
        case 3:
        case 4:
            if (m) {
                char topic[2] = {(char)('a' + rnd(3)), 0};
                txn_tpset s;
                tpset_of(&s, topic, (int32_t)rnd(3));
                int16_t ep = (int16_t)(m->producer_epoch - (rnd(8) == 0));
                txn_add_partitions(m, TIDL, m->producer_id, ep, &s, now, &d);
                txn_tpset_free(&s);
                got = true;
            }
            break;
        case 5:
            if (m) {
                txn_end_txn(m, TIDL, m->producer_id, m->producer_epoch, rnd(2) ? TXN_RESULT_COMMIT : TXN_RESULT_ABORT,
                            now, &d);
                got = true;
            }
            break;
        case 6:
            if (m && m->markers_pending) {
                if (m->partitions.n) {
                    int k = (int)rnd((uint32_t)m->partitions.n);
                    txn_marker_written(m, m->partitions.v[k].topic, strlen(m->partitions.v[k].topic),
                                       m->partitions.v[k].partition, rnd(4) ? KERR_NONE : KERR_REQUEST_TIMED_OUT);
                } else if (!has_inflight[i] && txn_markers_ready(m, &d)) {
                    got = true;
                }
            }
            break;
        case 7:
            if (m && txn_timed_out(m, now) && txn_abort_timed_out(m, now, &d) == 0) got = true;
            break;
        case 8:
            if (m && !has_inflight[i] && txn_expire(&cfg, m, now + cfg.id_expiration_ms, &d) == 0) got = true;
            break;
        default:
            break;
        }
        if (got) {
            if (d.append) {
                if (has_inflight[i]) {
                    bad++;
                    CHECK(0, "step %d: a second write prepared while one is in flight", step);
                    txn_decision_free(&d);
                } else {
                    inflight[i] = d;
                    has_inflight[i] = true;
                    appends++;
                }
            } else {
                txn_decision_free(&d);
            }
        }
        m = ms[i];
        if (!m) continue;
        /* invariants */
        if (!has_inflight[i] && txn_pending(m) && !(m->markers_pending || m->pending == TXN_COMPLETE_COMMIT ||
                                                   m->pending == TXN_COMPLETE_ABORT)) {
            bad++;
            CHECK(0, "step %d: pending %d with no write in flight", step, m->pending);
        }
        if ((m->state == TXN_COMPLETE_COMMIT || m->state == TXN_COMPLETE_ABORT || m->state == TXN_EMPTY) &&
            m->partitions.n) {
            bad++;
            CHECK(0, "step %d: %s with partitions", step, txn_state_name(m->state));
        }
        int64_t slot = m->producer_id - 5000;
        if (slot >= 0 && slot < 8192) {
            if (m->producer_epoch < epoch_seen[slot]) {
                bad++;
                CHECK(0, "step %d: producer %lld epoch went down %d < %lld", step, (long long)m->producer_id,
                      m->producer_epoch, (long long)epoch_seen[slot]);
            }
            epoch_seen[slot] = m->producer_epoch;
        }
    }
    CHECK(bad == 0, "random run clean");
    CHECK(appends > 1000, "random run wrote %d times", appends);
    for (int i = 0; i < IDS; i++) {
        if (has_inflight[i]) txn_decision_free(&inflight[i]);
        txn_meta_free(ms[i]);
    }
}

int main(void) {
    test_state_table();
    test_transitions();
    test_init_producer_id();
    test_add_partitions();
    test_end_txn();
    test_timeouts_and_expiry();
    test_log();
    test_random();
    printf("test_txn_state: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
