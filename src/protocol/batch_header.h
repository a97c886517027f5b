/* batch_header.h - the fixed 61-byte header of a v2 record batch.
 *
 * Storage only needs these fields to index, recover and serve a log; full
 * validation (CRC, records, compression) lives in records.c. Layout
 * (big-endian), from Kafka's DefaultRecordBatch:
 *   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 |
 *   16 magic i8 | 17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 |
 *   27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
 *   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordCount i32 | 61 records
 * batchLength counts the bytes after the batchLength field itself, so a
 * whole batch is batchLength + 12 bytes. The CRC covers attributes..end.
 */
#ifndef SAMSA_BATCH_HEADER_H
#define SAMSA_BATCH_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_SIZE 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_OFF_BASE_OFFSET 0
#define BATCH_OFF_LENGTH 8
#define BATCH_OFF_LEADER_EPOCH 12
#define BATCH_OFF_MAGIC 16
#define BATCH_OFF_CRC 17
#define BATCH_OFF_ATTRIBUTES 21
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_BASE_TIMESTAMP 27
#define BATCH_OFF_MAX_TIMESTAMP 35
#define BATCH_OFF_PRODUCER_ID 43
#define BATCH_OFF_PRODUCER_EPOCH 51
#define BATCH_OFF_BASE_SEQUENCE 53
#define BATCH_OFF_RECORD_COUNT 57

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_TIMESTAMP_LOG_APPEND 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20
#define BATCH_ATTR_DELETE_HORIZON 0x40

typedef struct batch_header {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} batch_header;

static inline uint64_t bh_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}
static inline uint32_t bh_get_u32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t bh_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void bh_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline void bh_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void bh_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* Parse the header from at least BATCH_HEADER_SIZE bytes (no validation). */
static inline void batch_header_parse(const uint8_t *p, batch_header *h) {
    h->base_offset = (int64_t)bh_get_u64(p + BATCH_OFF_BASE_OFFSET);
    h->batch_length = (int32_t)bh_get_u32(p + BATCH_OFF_LENGTH);
    h->partition_leader_epoch = (int32_t)bh_get_u32(p + BATCH_OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[BATCH_OFF_MAGIC];
    h->crc = bh_get_u32(p + BATCH_OFF_CRC);
    h->attributes = (int16_t)bh_get_u16(p + BATCH_OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)bh_get_u32(p + BATCH_OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)bh_get_u64(p + BATCH_OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)bh_get_u64(p + BATCH_OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)bh_get_u64(p + BATCH_OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)bh_get_u16(p + BATCH_OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)bh_get_u32(p + BATCH_OFF_BASE_SEQUENCE);
    h->record_count = (int32_t)bh_get_u32(p + BATCH_OFF_RECORD_COUNT);
}

/* Wraps like Kafka's long arithmetic instead of overflowing: callers parse
 * headers straight off the disk or the wire before validating them. */
static inline int64_t batch_last_offset(const batch_header *h) {
    return (int64_t)((uint64_t)h->base_offset + (uint64_t)(int64_t)h->last_offset_delta);
}
static inline int64_t batch_next_offset(const batch_header *h) {
    return (int64_t)((uint64_t)batch_last_offset(h) + 1u);
}
static inline size_t batch_total_size(const batch_header *h) {
    return (size_t)h->batch_length + BATCH_LOG_OVERHEAD;
}

#endif
