/* txn_coord.c - see txn_coord.h. */
#include "txn/txn_coord.h"

#include <string.h>

#include "protocol/errors.h"
#include "txn/txn_log.h"

static void reply(txn_decision *d, int16_t err) {
    memset(d, 0, sizeof *d);
    d->err = err;
    d->producer_id = TXN_NO_PRODUCER_ID;
    d->producer_epoch = TXN_NO_PRODUCER_EPOCH;
}

static void append(txn_decision *d, txn_op op) {
    d->append = true;
    d->err = KERR_NONE;
    d->op = op;
}

void txn_decision_free(txn_decision *d) { txn_transit_free(&d->transit); }

/* ---- InitProducerId ---- */

static bool valid_expected_pid(const txn_meta *m, int64_t pid, int16_t epoch) {
    /* a just-created id (epoch -1), the current producer id, or the previous
     * one after an exhausted epoch (a retry of a rotation) */
    return m->producer_epoch == TXN_NO_PRODUCER_EPOCH || pid == m->producer_id ||
           (pid == m->last_producer_id && txn_epoch_exhausted(epoch));
}

static void end_transaction(txn_meta *m, size_t tid_len, int64_t producer_id,
                            int16_t producer_epoch, txn_result result, bool from_client,
                            int64_t now_ms, txn_decision *d);

void txn_init_producer_id(const txn_config *c, txn_meta **mp, const char *tid, size_t tid_len,
                          int32_t timeout_ms, bool has_expected, int64_t expected_pid,
                          int16_t expected_epoch, const txn_pid_source *pids, int64_t now_ms,
                          txn_decision *d) {
    reply(d, KERR_NONE);
    if (tid_len == 0) {
        d->err = KERR_INVALID_REQUEST;
        return;
    }
    if (timeout_ms <= 0 || timeout_ms > c->max_timeout_ms) {
        d->err = KERR_INVALID_TRANSACTION_TIMEOUT;
        return;
    }
    if (!*mp) {
        int64_t pid;
        int16_t err = pids->next(pids->ctx, &pid);
        if (err != KERR_NONE) {
            d->err = err;
            return;
        }
        *mp = txn_meta_new(tid, tid_len, pid, TXN_NO_PRODUCER_ID, TXN_NO_PRODUCER_EPOCH,
                           TXN_NO_PRODUCER_EPOCH, timeout_ms, TXN_EMPTY, now_ms);
        if (!*mp) {
            d->err = KERR_UNKNOWN_SERVER_ERROR;
            return;
        }
    }
    txn_meta *m = *mp;
    if (txn_pending(m)) {
        d->err = KERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    if (has_expected && !valid_expected_pid(m, expected_pid, expected_epoch)) {
        d->err = KERR_PRODUCER_FENCED;
        return;
    }
    switch (m->state) {
    case TXN_PREPARE_ABORT:
    case TXN_PREPARE_COMMIT:
        d->err = KERR_CONCURRENT_TRANSACTIONS;
        return;
    case TXN_COMPLETE_ABORT:
    case TXN_COMPLETE_COMMIT:
    case TXN_EMPTY: {
        int rc;
        if (txn_epoch_exhausted(m->producer_epoch) &&
            (!has_expected || expected_epoch == m->producer_epoch)) {
            int64_t pid;
            int16_t err = pids->next(pids->ctx, &pid);
            if (err != KERR_NONE) {
                d->err = err;
                return;
            }
            rc = txn_prepare_rotate_producer_id(m, pid, timeout_ms, now_ms, has_expected, &d->transit);
        } else {
            rc = txn_prepare_increment_epoch(m, timeout_ms, has_expected, expected_epoch, now_ms,
                                             &d->transit);
        }
        if (rc != 0) {
            txn_transit_free(&d->transit);
            d->err = rc > 0 ? (int16_t)rc : KERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        append(d, TXN_OP_INIT_PID);
        return;
    }
    case TXN_ONGOING: {
        /* Fence the producer, abort its transaction, answer
         * CONCURRENT_TRANSACTIONS: the client's retry bumps the epoch again
         * (or rotates the producer id if the fence exhausted it). */
        txn_transit fence;
        if (txn_prepare_fence_epoch(m, &fence) != 0) {
            txn_transit_free(&fence);
            d->err = KERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        int16_t bumped = fence.producer_epoch;
        txn_transit_free(&fence);
        end_transaction(m, tid_len, m->producer_id, bumped, TXN_RESULT_ABORT, false, now_ms, d);
        if (d->append) {
            d->reply_on_success = KERR_CONCURRENT_TRANSACTIONS;
        } else {
            m->pending = TXN_NO_STATE; /* cannot happen from Ongoing; do not leave the fence behind */
            if (d->err == KERR_NONE) d->err = KERR_CONCURRENT_TRANSACTIONS;
        }
        return;
    }
    case TXN_DEAD:
    case TXN_PREPARE_EPOCH_FENCE:
    default:
        d->err = KERR_UNKNOWN_SERVER_ERROR; /* Kafka: IllegalStateException */
        return;
    }
}

/* ---- AddPartitionsToTxn / AddOffsetsToTxn ---- */

void txn_add_partitions(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                        const txn_tpset *parts, int64_t now_ms, txn_decision *d) {
    reply(d, KERR_NONE);
    if (tid_len == 0) d->err = KERR_INVALID_REQUEST;
    else if (!m || m->producer_id != producer_id) d->err = KERR_INVALID_PRODUCER_ID_MAPPING;
    else if (m->producer_epoch != producer_epoch) d->err = KERR_PRODUCER_FENCED;
    else if (txn_pending(m)) d->err = KERR_CONCURRENT_TRANSACTIONS;
    else if (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT)
        d->err = KERR_CONCURRENT_TRANSACTIONS;
    else if (m->state == TXN_ONGOING && txn_tpset_subset(parts, &m->partitions))
        d->err = KERR_NONE; /* already there: nothing to write */
    else if (txn_prepare_add_partitions(m, parts, now_ms, &d->transit) != 0) {
        txn_transit_free(&d->transit);
        d->err = KERR_UNKNOWN_SERVER_ERROR;
    } else {
        append(d, TXN_OP_ADD_PARTITIONS);
    }
}

void txn_add_offsets(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                     const char *group_id, size_t group_len, int32_t offsets_partitions,
                     int64_t now_ms, txn_decision *d) {
    static const char offsets_topic[] = "__consumer_offsets";
    txn_tpset one;
    txn_tpset_init(&one);
    if (txn_tpset_add(&one, offsets_topic, sizeof offsets_topic - 1,
                      txn_partition_for(group_id, group_len, offsets_partitions))) {
        reply(d, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    txn_add_partitions(m, tid_len, producer_id, producer_epoch, &one, now_ms, d);
    txn_tpset_free(&one);
}

void txn_verify_partitions(const txn_meta *m, size_t tid_len, int64_t producer_id,
                           int16_t producer_epoch, const txn_tpset *parts, int16_t *errs) {
    int16_t all = KERR_NONE;
    if (tid_len == 0) all = KERR_INVALID_REQUEST;
    else if (!m || m->producer_id != producer_id) all = KERR_INVALID_PRODUCER_ID_MAPPING;
    else if (m->producer_epoch != producer_epoch) all = KERR_PRODUCER_FENCED;
    else if (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT)
        all = KERR_CONCURRENT_TRANSACTIONS;
    /* the pending state is not checked: the partition's append validates again */
    for (int i = 0; i < parts->n; i++) {
        if (all != KERR_NONE) errs[i] = all;
        else
            errs[i] = txn_tpset_contains(&m->partitions, parts->v[i].topic,
                                         strlen(parts->v[i].topic), parts->v[i].partition)
                          ? KERR_NONE
                          : KERR_INVALID_TXN_STATE;
    }
}

/* ---- EndTxn ---- */

static void end_transaction(txn_meta *m, size_t tid_len, int64_t producer_id,
                            int16_t producer_epoch, txn_result result, bool from_client,
                            int64_t now_ms, txn_decision *d) {
    reply(d, KERR_NONE);
    bool commit = result == TXN_RESULT_COMMIT;
    if (tid_len == 0) {
        d->err = KERR_INVALID_REQUEST;
        return;
    }
    if (!m || m->producer_id != producer_id) {
        d->err = KERR_INVALID_PRODUCER_ID_MAPPING;
        return;
    }
    /* a client must match exactly; a fence comes with the bumped epoch */
    if ((from_client && producer_epoch != m->producer_epoch) || producer_epoch < m->producer_epoch) {
        d->err = KERR_PRODUCER_FENCED;
        return;
    }
    if (txn_pending(m) && m->pending != TXN_PREPARE_EPOCH_FENCE) {
        d->err = KERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    switch (m->state) {
    case TXN_ONGOING: {
        txn_state_id next = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
        bool fence = false;
        if (next == TXN_PREPARE_ABORT && m->pending == TXN_PREPARE_EPOCH_FENCE) {
            /* the fence becomes this abort, written with the bumped epoch */
            fence = true;
            m->pending = TXN_NO_STATE;
            m->producer_epoch = producer_epoch;
            m->last_producer_epoch = TXN_NO_PRODUCER_EPOCH;
        }
        if (txn_prepare_abort_or_commit(m, next, now_ms, &d->transit) != 0) {
            txn_transit_free(&d->transit);
            d->err = KERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        append(d, TXN_OP_END_TXN);
        d->result = result;
        d->epoch_fence = fence;
        return;
    }
    case TXN_COMPLETE_COMMIT:
        d->err = commit ? KERR_NONE : KERR_INVALID_TXN_STATE; /* a retried commit */
        return;
    case TXN_COMPLETE_ABORT:
        d->err = commit ? KERR_INVALID_TXN_STATE : KERR_NONE;
        return;
    case TXN_PREPARE_COMMIT:
        d->err = commit ? KERR_CONCURRENT_TRANSACTIONS : KERR_INVALID_TXN_STATE;
        return;
    case TXN_PREPARE_ABORT:
        d->err = commit ? KERR_INVALID_TXN_STATE : KERR_CONCURRENT_TRANSACTIONS;
        return;
    case TXN_EMPTY:
        d->err = KERR_INVALID_TXN_STATE;
        return;
    case TXN_DEAD:
    case TXN_PREPARE_EPOCH_FENCE:
    default:
        d->err = KERR_UNKNOWN_SERVER_ERROR; /* Kafka: IllegalStateException */
        return;
    }
}

void txn_end_txn(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                 txn_result result, int64_t now_ms, txn_decision *d) {
    end_transaction(m, tid_len, producer_id, producer_epoch, result, true, now_ms, d);
}

/* ---- timeouts and expiration ---- */

bool txn_timed_out(const txn_meta *m, int64_t now_ms) {
    return !txn_pending(m) && m->state == TXN_ONGOING && m->start_ms + m->timeout_ms < now_ms;
}

int txn_abort_timed_out(txn_meta *m, int64_t now_ms, txn_decision *d) {
    reply(d, KERR_NONE);
    if (txn_pending(m)) return -1;
    txn_transit fence;
    int rc = txn_prepare_fence_epoch(m, &fence);
    int16_t bumped = fence.producer_epoch;
    txn_transit_free(&fence);
    if (rc != 0) return -1;
    end_transaction(m, 1, m->producer_id, bumped, TXN_RESULT_ABORT, false, now_ms, d);
    if (!d->append) {
        m->pending = TXN_NO_STATE; /* not Ongoing after all: undo the fence */
        return -1;
    }
    return 0;
}

bool txn_should_expire(const txn_config *c, const txn_meta *m, int64_t now_ms) {
    return !txn_pending(m) && txn_state_expiration_allowed(m->state) &&
           m->last_update_ms <= now_ms - c->id_expiration_ms;
}

int txn_expire(const txn_config *c, txn_meta *m, int64_t now_ms, txn_decision *d) {
    reply(d, KERR_NONE);
    if (!txn_should_expire(c, m, now_ms)) return -1;
    if (txn_prepare_dead(m, &d->transit) != 0) {
        txn_transit_free(&d->transit);
        return -1;
    }
    append(d, TXN_OP_EXPIRE);
    return 0;
}

/* ---- after the write ---- */

int16_t txn_map_append_error(int16_t e) {
    switch (e) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KERR_REQUEST_TIMED_OUT:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR:
        return KERR_NOT_COORDINATOR;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
        return KERR_UNKNOWN_SERVER_ERROR;
    default:
        return e;
    }
}

void txn_append_done(txn_meta *m, const txn_decision *d, int16_t log_err,
                     int32_t coordinator_epoch, int64_t now_ms, txn_append_outcome *o) {
    memset(o, 0, sizeof *o);
    o->producer_id = TXN_NO_PRODUCER_ID;
    o->producer_epoch = TXN_NO_PRODUCER_EPOCH;
    int16_t err = txn_map_append_error(log_err);
    if (err != KERR_NONE) {
        if (d->op == TXN_OP_COMPLETE && err == KERR_COORDINATOR_NOT_AVAILABLE) {
            o->retry = true; /* the pending Complete* stays; write it again */
        } else {
            m->pending = TXN_NO_STATE;
            if (d->op == TXN_OP_END_TXN && d->epoch_fence)
                m->has_failed_epoch_fence = true; /* the bumped epoch was never returned */
        }
        o->err = err;
        return;
    }
    if (d->op == TXN_OP_EXPIRE) {
        if (m->pending == TXN_DEAD && m->producer_epoch == d->transit.producer_epoch) o->remove = true;
        else m->pending = TXN_NO_STATE;
        return;
    }
    if (txn_complete_transition(m, &d->transit) != 0) {
        m->pending = TXN_NO_STATE;
        o->err = KERR_UNKNOWN_SERVER_ERROR; /* Kafka: IllegalStateException */
        return;
    }
    switch (d->op) {
    case TXN_OP_INIT_PID:
        o->producer_id = d->transit.producer_id;
        o->producer_epoch = d->transit.producer_epoch;
        break;
    case TXN_OP_END_TXN: {
        txn_state_id want = d->result == TXN_RESULT_COMMIT ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
        if (m->producer_epoch != d->transit.producer_epoch || m->state != want) {
            o->err = KERR_INVALID_TXN_STATE;
            break;
        }
        txn_transit_free(&m->complete);
        if (txn_prepare_complete(m, now_ms, &m->complete) != 0) {
            o->err = KERR_UNKNOWN_SERVER_ERROR;
            break;
        }
        m->markers_pending = true;
        m->markers_coordinator_epoch = coordinator_epoch;
        o->send_markers = true;
        o->err = d->reply_on_success;
        break;
    }
    default:
        break;
    }
}

/* ---- markers ---- */

txn_marker_action txn_marker_written(txn_meta *m, const char *topic, size_t topic_len,
                                     int32_t partition, int16_t err) {
    switch (err) {
    case KERR_NONE:
    case KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case KERR_UNSUPPORTED_VERSION:
        /* the producer could not have written there: nothing owed */
        return txn_remove_partition(m, topic, topic_len, partition) == 0 ? TXN_MARKER_DONE
                                                                        : TXN_MARKER_FATAL;
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KERR_REQUEST_TIMED_OUT:
    case KERR_KAFKA_STORAGE_ERROR:
        return TXN_MARKER_RETRY;
    case KERR_INVALID_PRODUCER_EPOCH:
    case KERR_TRANSACTION_COORDINATOR_FENCED:
        txn_markers_cancel(m);
        return TXN_MARKER_CANCEL;
    default: /* CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_REQUIRED_ACKS, anything else */
        return TXN_MARKER_FATAL;
    }
}

bool txn_markers_ready(txn_meta *m, txn_decision *d) {
    if (!m->markers_pending || m->partitions.n != 0) return false;
    reply(d, KERR_NONE);
    append(d, TXN_OP_COMPLETE);
    d->result = m->complete.state == TXN_COMPLETE_COMMIT ? TXN_RESULT_COMMIT : TXN_RESULT_ABORT;
    d->transit = m->complete; /* moved */
    txn_tpset_init(&m->complete.partitions);
    m->markers_pending = false;
    return true;
}

void txn_markers_cancel(txn_meta *m) {
    m->markers_pending = false;
    txn_transit_free(&m->complete);
}

bool txn_on_load(txn_meta *m, int32_t coordinator_epoch, int64_t now_ms) {
    if (m->state != TXN_PREPARE_COMMIT && m->state != TXN_PREPARE_ABORT) return false;
    txn_transit_free(&m->complete);
    if (txn_prepare_complete(m, now_ms, &m->complete) != 0) return false;
    m->markers_pending = true;
    m->markers_coordinator_epoch = coordinator_epoch;
    return true;
}
