/* txn_marker.h - the end-transaction marker batch, byte for byte as Kafka
 * 3.6.1's MemoryRecords.withEndTransactionMarker builds it: one control
 * record (key: version 0, type 0 ABORT / 1 COMMIT; value
 * EndTransactionMarker: version 0, coordinator epoch) in an uncompressed v2
 * batch with the control and transactional attributes, the producer's id
 * and epoch, base sequence -1, base offset 0 and partition leader epoch -1
 * (the log append assigns both), create-time timestamps = now. */
#ifndef SAMSA_TXN_MARKER_H
#define SAMSA_TXN_MARKER_H

#include <stdbool.h>
#include <stdint.h>

/* 61 bytes of batch header + one 17-byte record. */
#define TXN_MARKER_BATCH_SIZE 78

void txn_marker_build(uint8_t out[TXN_MARKER_BATCH_SIZE], int64_t producer_id, int16_t producer_epoch, bool commit,
                      int32_t coordinator_epoch, int64_t timestamp_ms);

#endif
