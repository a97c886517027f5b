/* txn_verify.h - transaction verification before a transactional append
 * (KIP-890 part 1, Kafka 3.6.1's AddPartitionsToTxnManager and
 * ReplicaManager.appendRecords with transaction.partition.verification.enable).
 *
 * When a producer with a transactional id writes a transactional batch to a
 * partition where it has no transaction open, the leader first asks the
 * transaction coordinator (the leader of the id's __transaction_state
 * partition, maybe this node) with AddPartitionsToTxn v4 verify-only whether
 * the partition is in the producer's ongoing transaction; a late batch of a
 * transaction already ended is then refused instead of opening a hanging
 * transaction. One connection per coordinator node, on the event loop.
 */
#ifndef SAMSA_TXN_VERIFY_H
#define SAMSA_TXN_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"

/* transaction.partition.verification.enable (default true). */
bool txn_verify_enabled(broker *b);

/* The answer: KERR_NONE (the partition is in the transaction) or the
 * error as AddPartitionsToTxnManager passes it on (NETWORK_EXCEPTION when
 * the coordinator could not be reached, INVALID_PRODUCER_EPOCH for a fenced
 * producer, INVALID_TXN_STATE when the partition is not in the transaction,
 * COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS, ...). */
typedef void (*txn_verify_fn)(broker *b, void *arg, int16_t error);

/* Asks the coordinator; cb is called exactly once, maybe before this
 * returns (no coordinator known). */
void txn_verify_partition(broker *b, kstr transactional_id, int64_t producer_id, int16_t producer_epoch, kstr topic,
                          int32_t partition, txn_verify_fn cb, void *arg);

/* Closes the connections (their pending callbacks get NETWORK_EXCEPTION). */
void txn_verify_shutdown(void);

#endif
