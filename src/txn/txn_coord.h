/* txn_coord.h - the transaction coordinator's decisions (Kafka 3.6.1's
 * TransactionCoordinator, the pure parts of TransactionStateManager and of
 * the marker channel's completion handling).
 *
 * Pure: no I/O, no clock, no globals. The caller looks the transactional id
 * up in its own table (answering NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS
 * itself when it does not own or has not loaded the id's __transaction_state
 * partition), passes the metadata (NULL: unknown) and now_ms, and gets a
 * txn_decision back:
 *   - !append: answer the client with err (and, for InitProducerId, the
 *     producer id and epoch) at once;
 *   - append: write d->transit to __transaction_state (txn_log.h; a
 *     tombstone for TXN_OP_EXPIRE) with acks=all, then call
 *     txn_append_done() with the write's error; its outcome says what to
 *     answer and what to do next (send markers, retry the write, drop the id).
 * While the write is in flight the id has a pending transition and every
 * other request for it gets CONCURRENT_TRANSACTIONS (or is answered as Kafka
 * does). If the caller's coordinator epoch for the partition changed while a
 * write was in flight, it answers NOT_COORDINATOR and drops its metadata
 * (Kafka reloads it) instead of calling txn_append_done.
 *
 * Markers: after an EndTxn write, m->markers_pending is set and m->partitions
 * lists the partitions still owed a COMMIT/ABORT marker. The caller sends
 * WriteTxnMarkers, reports each partition with txn_marker_written(), and
 * once txn_markers_ready() says so writes the completion (TXN_OP_COMPLETE).
 *
 * KafkaApis' parts stay with the caller: a null transactional id (plain
 * idempotent producer), InitProducerId's INVALID_REQUEST when exactly one of
 * producer id / epoch is -1, and PRODUCER_FENCED answered as
 * INVALID_PRODUCER_EPOCH to InitProducerId < v4, EndTxn, AddPartitionsToTxn
 * and AddOffsetsToTxn < v2.
 */
#ifndef SAMSA_TXN_TXN_COORD_H
#define SAMSA_TXN_TXN_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txn/txn_state.h"

typedef struct txn_config {
    int32_t max_timeout_ms;   /* transaction.max.timeout.ms (default 900000) */
    int64_t id_expiration_ms; /* transactional.id.expiration.ms (default 7 days) */
} txn_config;

/* Kafka's TransactionResult; WriteTxnMarkers' TransactionResult bool. */
typedef enum txn_result { TXN_RESULT_ABORT = 0, TXN_RESULT_COMMIT = 1 } txn_result;

typedef enum txn_op {
    TXN_OP_NONE,
    TXN_OP_INIT_PID,       /* InitProducerId's epoch bump or new producer id */
    TXN_OP_ADD_PARTITIONS, /* AddPartitionsToTxn / AddOffsetsToTxn */
    TXN_OP_END_TXN,        /* PrepareCommit / PrepareAbort (client, fence or timeout) */
    TXN_OP_COMPLETE,       /* CompleteCommit / CompleteAbort after the markers */
    TXN_OP_EXPIRE,         /* the tombstone of an expired transactional id */
} txn_op;

typedef struct txn_decision {
    bool append;
    int16_t err;              /* !append: the answer */
    int64_t producer_id;      /* InitProducerId's answer (-1 on error) */
    int16_t producer_epoch;
    txn_op op;
    txn_result result;        /* END_TXN, COMPLETE */
    bool epoch_fence;         /* END_TXN: an abort that fenced the producer's epoch */
    int16_t reply_on_success; /* END_TXN: NONE, or CONCURRENT_TRANSACTIONS when InitProducerId started it */
    txn_transit transit;      /* append: what to write */
} txn_decision;

void txn_decision_free(txn_decision *d);

/* Source of new producer ids (the broker's producer-id block). Returns
 * KERR_NONE with *out set, or an error code for the client. */
typedef struct txn_pid_source {
    int16_t (*next)(void *ctx, int64_t *out);
    void *ctx;
} txn_pid_source;

/* InitProducerId for a non-null transactional id. *m is the id's metadata
 * or NULL; for an unknown id a new one (state Empty, epoch -1) is created
 * into *m and the caller keeps it in its table even if the write fails, as
 * Kafka does. has_expected: the request's producer id/epoch were not -1. */
void txn_init_producer_id(const txn_config *c, txn_meta **m, const char *tid, size_t tid_len,
                          int32_t timeout_ms, bool has_expected, int64_t expected_pid,
                          int16_t expected_epoch, const txn_pid_source *pids, int64_t now_ms,
                          txn_decision *d);

/* AddPartitionsToTxn (v0-3, and v4's non-verify transactions). */
void txn_add_partitions(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                        const txn_tpset *parts, int64_t now_ms, txn_decision *d);

/* AddOffsetsToTxn: adds __consumer_offsets-<partition of group_id>. */
void txn_add_offsets(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                     const char *group_id, size_t group_len, int32_t offsets_partitions,
                     int64_t now_ms, txn_decision *d);

/* AddPartitionsToTxn v4 verifyOnly (handleVerifyPartitionsInTransaction):
 * errs[i] for parts->v[i]: NONE when in the transaction, else
 * INVALID_TXN_STATE; or one error for all. Never writes. */
void txn_verify_partitions(const txn_meta *m, size_t tid_len, int64_t producer_id,
                           int16_t producer_epoch, const txn_tpset *parts, int16_t *errs);

/* EndTxn from a client. */
void txn_end_txn(txn_meta *m, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                 txn_result result, int64_t now_ms, txn_decision *d);

/* An Ongoing transaction past its timeout (timedOutTransactions). */
bool txn_timed_out(const txn_meta *m, int64_t now_ms);
/* Abort a timed-out transaction with an epoch fence. Returns 0 with *d an
 * append, or -1 when there is nothing to do now (pending transition). */
int txn_abort_timed_out(txn_meta *m, int64_t now_ms, txn_decision *d);

/* transactional.id expiration: Empty/Complete*, nothing pending, not
 * updated for id_expiration_ms. */
bool txn_should_expire(const txn_config *c, const txn_meta *m, int64_t now_ms);
/* Prepare the tombstone (pending Dead). 0, or -1 if not expirable now. */
int txn_expire(const txn_config *c, txn_meta *m, int64_t now_ms, txn_decision *d);

/* The __transaction_state produce error as the coordinator reports it
 * (UNKNOWN_TOPIC_OR_PARTITION etc. -> COORDINATOR_NOT_AVAILABLE, ...). */
int16_t txn_map_append_error(int16_t log_err);

typedef struct txn_append_outcome {
    int16_t err;            /* the answer for the request that started the write */
    int64_t producer_id;    /* INIT_PID: the answer's producer id and epoch */
    int16_t producer_epoch;
    bool send_markers;      /* END_TXN written: markers owed to m->partitions */
    bool retry;             /* COMPLETE failed retriably: write d->transit again, pending kept */
    bool remove;            /* EXPIRE written: drop m from the table (caller frees it) */
} txn_append_outcome;

/* The write of d (for m) finished with log_err (a produce error code).
 * coordinator_epoch is the partition's epoch the write was made under. */
void txn_append_done(txn_meta *m, const txn_decision *d, int16_t log_err,
                     int32_t coordinator_epoch, int64_t now_ms, txn_append_outcome *o);

typedef enum txn_marker_action {
    TXN_MARKER_DONE,   /* partition removed from the ones owed a marker */
    TXN_MARKER_RETRY,  /* send the marker again (leader may have moved) */
    TXN_MARKER_CANCEL, /* stop sending markers for this id (fenced) */
    TXN_MARKER_FATAL,  /* an error Kafka treats as a bug */
} txn_marker_action;

/* One partition's WriteTxnMarkers answer. */
txn_marker_action txn_marker_written(txn_meta *m, const char *topic, size_t topic_len,
                                     int32_t partition, int16_t err);
/* Every marker written: *d becomes the completion write and markers stop
 * being pending. false while markers are still owed. */
bool txn_markers_ready(txn_meta *m, txn_decision *d);
/* Stop sending markers (coordinator moved, fenced): forget the completion. */
void txn_markers_cancel(txn_meta *m);

/* After loading a partition of __transaction_state: a transaction in
 * Prepare* has its markers sent again. Returns true when markers are owed
 * (m->markers_pending set). */
bool txn_on_load(txn_meta *m, int32_t coordinator_epoch, int64_t now_ms);

#endif
