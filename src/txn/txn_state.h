/* txn_state.h - one transactional id's metadata and Kafka's transaction
 * state machine (TransactionMetadata.scala, Kafka 3.6.1).
 *
 * Pure: no I/O, no clock, no globals. Every change goes in two steps, as in
 * Kafka: txn_prepare_*() checks the transition against the current state,
 * records the target state as `pending` and fills a txn_transit (the record
 * to write to __transaction_state); once the write has succeeded the caller
 * applies it with txn_complete_transition(). While a transition is pending
 * a second one cannot be prepared (the coordinator answers
 * CONCURRENT_TRANSACTIONS meanwhile; see txn_coord.h).
 *
 * Where Kafka throws IllegalStateException the functions here return -1 and
 * leave the metadata as it was: that is a bug in the caller, never a client
 * error.
 *
 * Ownership: a txn_meta owns its transactional id and partition set; a
 * txn_transit owns its partition set (txn_transit_free). Topic names passed
 * in are copied.
 */
#ifndef SAMSA_TXN_TXN_STATE_H
#define SAMSA_TXN_TXN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TXN_NO_PRODUCER_ID (-1LL)
#define TXN_NO_PRODUCER_EPOCH ((int16_t)-1)

/* Kafka's TransactionState ids, as stored in TransactionLogValue.TransactionStatus. */
typedef enum txn_state_id {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,
} txn_state_id;

#define TXN_NSTATES 8
#define TXN_NO_STATE (-1) /* `pending` when no transition is in flight */

/* "Empty", "Ongoing", ... (DescribeTransactions, ListTransactions); NULL if out of range. */
const char *txn_state_name(int state);
/* The state with this exact name, or -1 (ListTransactions' unknown filters). */
int txn_state_from_name(const char *name, size_t len);
/* Kafka's validPreviousStates: may `to` follow `from`? */
bool txn_state_valid_previous(txn_state_id to, txn_state_id from);
/* Empty, CompleteCommit, CompleteAbort: states a transactional id may expire in. */
bool txn_state_expiration_allowed(txn_state_id s);

/* A set of topic partitions, kept sorted by (topic, partition) and unique.
 * Topic names are C strings: a name must not hold a NUL (none can in Kafka). */
typedef struct txn_tp {
    char *topic;
    int32_t partition;
} txn_tp;

typedef struct txn_tpset {
    txn_tp *v;
    int n, cap;
} txn_tpset;

void txn_tpset_init(txn_tpset *s);
void txn_tpset_free(txn_tpset *s);
void txn_tpset_clear(txn_tpset *s);
/* Adds (a copy of) topic/partition; 0, or -1 when out of memory. */
int txn_tpset_add(txn_tpset *s, const char *topic, size_t topic_len, int32_t partition);
bool txn_tpset_contains(const txn_tpset *s, const char *topic, size_t topic_len, int32_t partition);
bool txn_tpset_remove(txn_tpset *s, const char *topic, size_t topic_len, int32_t partition);
bool txn_tpset_subset(const txn_tpset *sub, const txn_tpset *super);
bool txn_tpset_equal(const txn_tpset *a, const txn_tpset *b);
int txn_tpset_copy(txn_tpset *dst, const txn_tpset *src); /* dst must be initialised */
int txn_tpset_union(txn_tpset *dst, const txn_tpset *src);  /* dst |= src */

/* Kafka's TxnTransitMetadata: the state a prepared transition leads to. */
typedef struct txn_transit {
    int64_t producer_id;
    int64_t last_producer_id;
    int16_t producer_epoch;
    int16_t last_producer_epoch;
    int32_t timeout_ms;
    txn_state_id state;
    txn_tpset partitions;
    int64_t start_ms;       /* txnStartTimestamp, -1 when no transaction */
    int64_t last_update_ms; /* txnLastUpdateTimestamp */
} txn_transit;

void txn_transit_free(txn_transit *t);

typedef struct txn_meta {
    char *transactional_id;
    int64_t producer_id;
    int64_t last_producer_id;
    int16_t producer_epoch;
    int16_t last_producer_epoch;
    int32_t timeout_ms;
    txn_state_id state;
    int pending;                 /* TXN_NO_STATE or the txn_state_id being written */
    bool has_failed_epoch_fence; /* a fence's bumped epoch may not be in the log: do not bump again */
    txn_tpset partitions;
    int64_t start_ms;
    int64_t last_update_ms;
    /* Set while COMMIT/ABORT markers are being written (Kafka keeps this in
     * the marker channel manager): the Complete* transition written once
     * every partition has its marker. */
    bool markers_pending;
    int32_t markers_coordinator_epoch;
    txn_transit complete;
} txn_meta;

/* A fresh metadata in `state` with no partitions and start -1 (Kafka's
 * TransactionMetadata constructors). NULL when out of memory. */
txn_meta *txn_meta_new(const char *transactional_id, size_t id_len, int64_t producer_id,
                       int64_t last_producer_id, int16_t producer_epoch,
                       int16_t last_producer_epoch, int32_t timeout_ms, txn_state_id state,
                       int64_t now_ms);
void txn_meta_free(txn_meta *m);

static inline bool txn_pending(const txn_meta *m) { return m->pending != TXN_NO_STATE; }
/* producerEpoch >= Short.MaxValue - 1: no epoch left for the client. */
static inline bool txn_epoch_exhausted(int16_t epoch) { return epoch >= INT16_MAX - 1; }

/* ---- prepare: check, set `pending`, fill *out (initialised here) ---- */

/* Bump the epoch to fence an ongoing transaction (not bumped again after a failed fence). */
int txn_prepare_fence_epoch(txn_meta *m, txn_transit *out);
/* InitProducerId's epoch bump (KIP-360: has_expected when the client sent
 * its producer id and epoch). Returns 0, KERR_PRODUCER_FENCED (nothing
 * changed) or -1. */
int txn_prepare_increment_epoch(txn_meta *m, int32_t new_timeout_ms, bool has_expected,
                                int16_t expected_epoch, int64_t now_ms, txn_transit *out);
int txn_prepare_rotate_producer_id(txn_meta *m, int64_t new_producer_id, int32_t new_timeout_ms,
                                   int64_t now_ms, bool record_last_epoch, txn_transit *out);
int txn_prepare_add_partitions(txn_meta *m, const txn_tpset *added, int64_t now_ms,
                               txn_transit *out);
int txn_prepare_abort_or_commit(txn_meta *m, txn_state_id to, int64_t now_ms, txn_transit *out);
int txn_prepare_complete(txn_meta *m, int64_t now_ms, txn_transit *out);
int txn_prepare_dead(txn_meta *m, txn_transit *out);

/* Apply a written transition (Kafka's completeTransitionTo with its
 * checks). 0, or -1 when t does not match the pending transition (nothing
 * changes). Dead is never completed: an expired id is removed instead. */
int txn_complete_transition(txn_meta *m, const txn_transit *t);

/* A marker was written for a partition: drop it (only in Prepare*). */
int txn_remove_partition(txn_meta *m, const char *topic, size_t topic_len, int32_t partition);

#endif
