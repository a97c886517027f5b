/* txn_manager.h - the transaction coordinator bound to the broker (Kafka
 * 3.6.1's TransactionCoordinator + TransactionStateManager +
 * TransactionMarkerChannelManager, the I/O side of txn_coord.h).
 *
 * One manager per broker owns the transactional ids whose
 * __transaction_state partition this node leads and has loaded (replayed
 * from the log when leadership is gained; dropped when it is lost, with
 * NOT_COORDINATOR for their requests). Every transition is written to the
 * partition and answered once replicated (Kafka's acks=-1), with the
 * partition's leader epoch as coordinator epoch. After a Prepare* is
 * written, WriteTxnMarkers go to the leader of every partition of the
 * transaction (this node too, over its own listener) until each is
 * written; then Complete* is written. Two timers abort transactions past
 * their timeout and expire idle transactional ids.
 *
 * Everything runs on the event-loop thread. The operations below call done
 * exactly once, possibly before they return.
 */
#ifndef SAMSA_TXN_TXN_MANAGER_H
#define SAMSA_TXN_TXN_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "txn/txn_coord.h"

#define TXN_STATE_TOPIC "__transaction_state"

struct txn_manager;
typedef struct txn_manager txn_manager;

txn_manager *txn_manager_new(broker *b);
/* At start-up: load the partitions led now and start the timers. */
void txn_manager_start(txn_manager *tm);
/* After every metadata change: load gained partitions, drop lost ones. */
void txn_manager_leadership_changed(txn_manager *tm);
/* Answer writes still waiting (NOT_COORDINATOR), stop markers and timers. */
void txn_manager_shutdown(txn_manager *tm);
void txn_manager_free(txn_manager *tm);

/* FindCoordinator key type 1: the leader of the id's __transaction_state
 * partition, creating the topic on first use. KERR_NONE with *out, or
 * COORDINATOR_NOT_AVAILABLE. */
int16_t txn_manager_coordinator(broker *b, const char *tid, size_t tid_len, broker_node *out);

/* Answers: err, and for InitProducerId the producer id and epoch. */
typedef void (*txn_done_fn)(void *arg, int16_t err, int64_t producer_id, int16_t producer_epoch);

/* tid is not NUL-terminated; everything passed in is copied. */
void txn_mgr_init_producer_id(txn_manager *tm, const char *tid, size_t tid_len, int32_t timeout_ms,
                              int64_t expected_pid, int16_t expected_epoch, txn_done_fn done, void *arg);
void txn_mgr_add_partitions(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                            int16_t producer_epoch, const txn_tpset *parts, txn_done_fn done, void *arg);
void txn_mgr_add_offsets(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                         int16_t producer_epoch, const char *group, size_t group_len, txn_done_fn done,
                         void *arg);
void txn_mgr_end_txn(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                     int16_t producer_epoch, txn_result result, txn_done_fn done, void *arg);
/* AddPartitionsToTxn v4 verify-only: errs[i] for parts->v[i]. */
void txn_mgr_verify(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                    int16_t producer_epoch, const txn_tpset *parts, int16_t *errs);

/* DescribeTransactions: KERR_NONE with *out (valid until the loop runs
 * again), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
 * TRANSACTIONAL_ID_NOT_FOUND. */
int16_t txn_mgr_describe(txn_manager *tm, const char *tid, size_t tid_len, const txn_meta **out);
/* ListTransactions: COORDINATOR_LOAD_IN_PROGRESS while a partition loads;
 * else calls fn for every loaded id (not Dead) and returns KERR_NONE. */
int16_t txn_mgr_list(txn_manager *tm, void (*fn)(void *arg, const txn_meta *m), void *arg);

#endif
