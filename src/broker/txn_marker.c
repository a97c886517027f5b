/* txn_marker.c - end-transaction marker batches (see txn_marker.h). */
#include "broker/txn_marker.h"

#include <string.h>

#include "protocol/batch_header.h"
#include "util/crc32c.h"

#define RECORD_BODY 16 /* attributes .. headers count, as below */

void txn_marker_build(uint8_t out[TXN_MARKER_BATCH_SIZE], int64_t producer_id, int16_t producer_epoch, bool commit,
                      int32_t coordinator_epoch, int64_t timestamp_ms) {
    memset(out, 0, TXN_MARKER_BATCH_SIZE);
    bh_put_u64(out + BATCH_OFF_BASE_OFFSET, 0);
    bh_put_u32(out + BATCH_OFF_LENGTH, TXN_MARKER_BATCH_SIZE - BATCH_LOG_OVERHEAD);
    bh_put_u32(out + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
    out[BATCH_OFF_MAGIC] = 2;
    bh_put_u16(out + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    bh_put_u32(out + BATCH_OFF_LAST_OFFSET_DELTA, 0);
    bh_put_u64(out + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)timestamp_ms);
    bh_put_u64(out + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)timestamp_ms);
    bh_put_u64(out + BATCH_OFF_PRODUCER_ID, (uint64_t)producer_id);
    bh_put_u16(out + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
    bh_put_u32(out + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    bh_put_u32(out + BATCH_OFF_RECORD_COUNT, 1);
    uint8_t *r = out + BATCH_HEADER_SIZE;
    *r++ = RECORD_BODY << 1; /* length, zigzag varint */
    *r++ = 0;                /* record attributes */
    *r++ = 0;                /* timestamp delta */
    *r++ = 0;                /* offset delta */
    *r++ = 4 << 1;           /* key length */
    bh_put_u16(r, 0);        /* ControlRecordType key version */
    bh_put_u16(r + 2, commit ? 1 : 0);
    r += 4;
    *r++ = 6 << 1; /* value length */
    bh_put_u16(r, 0); /* EndTransactionMarker version */
    bh_put_u32(r + 2, (uint32_t)coordinator_epoch);
    r += 6;
    *r++ = 0; /* headers */
    uint32_t crc = crc32c(0, out + BATCH_OFF_ATTRIBUTES, TXN_MARKER_BATCH_SIZE - BATCH_OFF_ATTRIBUTES);
    bh_put_u32(out + BATCH_OFF_CRC, crc);
}
