/* txn_log.h - __transaction_state records (Kafka 3.6.1's TransactionLog).
 *
 * Key and value are an int16 schema version followed by the struct
 * (MessageUtil.toVersionPrefixedBytes):
 *   key   v0 TransactionLogKey   (transactional id)
 *   value v0 TransactionLogValue (producer id, epoch, timeout, status,
 *         [topic, [partition]] or null for Empty, last update, start)
 * Kafka 3.6.1 writes both at v0 (value v1 is the flexible form with tagged
 * fields; it is read, not written). A null value is the tombstone of an
 * expired id. The log does not carry the last producer id/epoch: a loaded
 * metadata has -1 there, as in Kafka. Partitions are written grouped by
 * topic in sorted order (Kafka's order is its hash set's; readers do not care).
 *
 * txn_partition_for is Kafka's Utils.abs(String.hashCode) % partitions, the
 * __transaction_state partition of a transactional id and the
 * __consumer_offsets partition of a group.
 */
#ifndef SAMSA_TXN_TXN_LOG_H
#define SAMSA_TXN_TXN_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/wire.h"
#include "txn/txn_state.h"

#define TXN_LOG_KEY_VERSION 0
#define TXN_LOG_VALUE_VERSION 0

/* Append the key / value bytes to w. txn_log_value returns -1 (nothing
 * written) for an Empty transit with partitions, as Kafka refuses. */
void txn_log_key(kwriter *w, const char *tid, size_t tid_len);
int txn_log_value(kwriter *w, const txn_transit *t);

/* Parse a key. Returns 1 with *tid pointing into p, 0 for a key version
 * this code does not know (Kafka skips it), -1 when malformed. */
int txn_log_parse_key(const uint8_t *p, size_t n, kstr *tid);

/* Parse a value into *out (initialised here; free with txn_transit_free).
 * last_producer_id/epoch are -1. Partitions are ignored for Empty. Returns
 * 0, or -1 when malformed (incl. a topic name holding a NUL), of an
 * unknown version or an unknown status. */
int txn_log_parse_value(const uint8_t *p, size_t n, txn_transit *out);

/* A metadata for a loaded record (no pending transition). NULL when out of memory. */
txn_meta *txn_log_meta(const char *tid, size_t tid_len, const txn_transit *v);

/* Java's String.hashCode of UTF-8 bytes (UTF-16 code units; malformed bytes as U+FFFD). */
int32_t txn_java_string_hash(const char *s, size_t len);
int32_t txn_partition_for(const char *id, size_t len, int32_t num_partitions);

#endif
