/* producer_state.h - idempotent and transactional producers per partition
 * (Kafka 3.6.1's ProducerStateManager, ProducerStateEntry,
 * ProducerAppendInfo).
 *
 * Per producer id: epoch, coordinator epoch, last timestamp, the last five
 * batches' sequence ranges (a retried batch is recognised and answered with
 * its first offset instead of being written twice; a gap or an old epoch is
 * refused) and the first offset of its ongoing transaction. Per partition:
 * the ongoing transactions by first offset, the completed ones whose marker
 * is not yet under the high watermark, hence the first unstable offset and
 * the last stable offset (LSO); completed transactions are handed back with
 * the LSO at completion so the caller writes aborted ones to the segment's
 * .txnindex (storage/txn_index.h).
 *
 * Persistence: `<offset>.snapshot` files in Kafka's format
 * (storage/producer_snapshot.h). pstate_load reads the latest usable
 * snapshot and replays the batches after it; without one it replays the last
 * two segments (Kafka replays the whole log: a producer silent since before
 * them is then unknown, which accepts any sequence). The owner takes
 * snapshots at roll (plog_set_roll_hook + pstate_roll_hook) and at clean
 * shutdown (pstate_take_snapshot), and deletes those below the log start
 * after retention (pstate_snapshots_delete_below).
 */
#ifndef SAMSA_PRODUCER_STATE_H
#define SAMSA_PRODUCER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/batch_header.h"

/* Batches per producer remembered for duplicate detection (Kafka's
 * ProducerStateEntry.NUM_BATCHES_TO_RETAIN). */
#define PSTATE_BATCHES 5

typedef struct pstate pstate;
struct plog;

pstate *pstate_new(void);
void pstate_free(pstate *s);

/* May the batch (header as sent, baseOffset not yet assigned) be appended?
 * Returns KERR_NONE with *duplicate false (append it), KERR_NONE with
 * *duplicate true and *dup_offset its first offset (already in the log:
 * answer that), or OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH /
 * INVALID_TXN_STATE (a non-transactional batch while the producer has a
 * transaction open). */
int16_t pstate_check(const pstate *s, const batch_header *h, bool *duplicate, int64_t *dup_offset);

/* Has the producer a transaction open on this partition? */
bool pstate_txn_ongoing(const pstate *s, int64_t producer_id);
/* Changes with every marker and epoch change of the producer (0 when
 * unknown): a transaction verification (KIP-890) started before a change
 * no longer holds after it, as Kafka's VerificationGuard. */
uint32_t pstate_txn_generation(const pstate *s, int64_t producer_id);

/* A data batch written by a coordinator (Kafka's AppendOrigin.Coordinator:
 * transactional offset commits): no sequence checks, only the epoch
 * (ProducerAppendInfo.checkProducerEpoch). KERR_NONE or
 * INVALID_PRODUCER_EPOCH. */
int16_t pstate_check_epoch(const pstate *s, const batch_header *h);

/* May a COMMIT/ABORT marker (WriteTxnMarkers) be written for the producer?
 * KERR_NONE, INVALID_PRODUCER_EPOCH (an older epoch) or
 * TRANSACTION_COORDINATOR_FENCED (an older coordinator epoch). */
int16_t pstate_check_marker(const pstate *s, int64_t producer_id, int16_t producer_epoch,
                            int32_t coordinator_epoch);

/* A transaction completed by a marker. last_stable_offset is the LSO at
 * completion (the first offset of the oldest other ongoing transaction, or
 * last_offset + 1): what Kafka writes in the .txnindex entry. */
typedef struct pstate_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;        /* the marker's offset */
    int64_t last_stable_offset;
    bool aborted;
} pstate_txn;

/* Apply an appended batch (header with its assigned base offset). batch and
 * len are the whole batch's bytes, needed for a control batch (the marker's
 * type and coordinator epoch are in its record); a control batch given
 * without them (NULL) completes the transaction as committed. Returns 1 when
 * a transaction completed (*done filled: write it to the .txnindex when
 * aborted), 0 otherwise, -1 for a control batch whose record cannot be read
 * (ignored). Also advances the map end offset past the batch. */
int pstate_apply(pstate *s, const batch_header *h, const uint8_t *batch, size_t len, pstate_txn *done);

/* Remember an appended batch from its header only (pstate_apply without
 * the bytes). */
void pstate_record(pstate *s, const batch_header *h);

/* plog_scan_tail_headers callback: ctx is the pstate. */
int pstate_load_header(const batch_header *h, void *ctx);

/* Parses an end-transaction marker batch (control, uncompressed): *commit
 * and *coordinator_epoch. 0, 1 when the batch has no record or its control
 * type is neither COMMIT nor ABORT, -1 when malformed. */
int pstate_parse_marker(const uint8_t *batch, size_t len, bool *commit, int32_t *coordinator_epoch,
                        int64_t *timestamp);

/* ---- transactions: first unstable offset and LSO ---- */

/* Earliest first offset of a transaction that is ongoing or whose marker is
 * not yet under the high watermark; -1 when none. */
int64_t pstate_first_unstable_offset(const pstate *s);
/* Earliest first offset of an ongoing transaction; -1 when none. */
int64_t pstate_first_undecided_offset(const pstate *s);
/* Kafka's UnifiedLog.lastStableOffset: the first unstable offset (raised to
 * the log start) when below the high watermark, else the high watermark. */
int64_t pstate_last_stable_offset(const pstate *s, int64_t high_watermark, int64_t log_start);
/* The high watermark moved: completed transactions below it are stable. */
void pstate_on_high_watermark(pstate *s, int64_t high_watermark);
/* The log start moved (retention, DeleteRecords). */
void pstate_on_log_start(pstate *s, int64_t log_start);
/* Number of ongoing transactions. */
int pstate_ongoing_count(const pstate *s);

/* Producers idle for expiration_ms (producer.id.expiration.ms) with no
 * transaction open are forgotten (Kafka's removeExpiredProducers). */
void pstate_remove_expired(pstate *s, int64_t now_ms, int64_t expiration_ms);
/* Forget everything; the state describes an empty log ending at offset
 * (the caller removes the snapshot files: pstate_snapshots_delete_below
 * with INT64_MAX, as Kafka's truncateFullyAndStartAt does). */
void pstate_truncate_fully(pstate *s, int64_t offset);

/* The offset the state is complete up to (exclusive): every batch below it
 * has been applied. Callers that append batches without producer ids may
 * advance it (Kafka's updateMapEndOffset). */
int64_t pstate_map_end_offset(const pstate *s);
void pstate_set_map_end_offset(pstate *s, int64_t offset);

/* ---- snapshots ---- */

/* Write <map end offset>.snapshot in dir unless one at or above it was
 * written or loaded already (Kafka's takeSnapshot). 0, or -1 with errno. */
int pstate_take_snapshot(pstate *s, const char *dir);
/* Kafka's roll: updateMapEndOffset(offset) then takeSnapshot. The caller
 * vouches that every batch below offset has been applied. */
int pstate_snapshot_write(pstate *s, const char *dir, int64_t offset);
/* A plog_roll_fn: ctx is a pstate_roll_ctx. The snapshot is taken at the
 * state's own map end offset (not the new base: a follower's append applies
 * its batches only after the whole append, so the state may lag the roll). */
typedef struct pstate_roll_ctx {
    pstate *s;
    const char *dir;
} pstate_roll_ctx;
void pstate_roll_hook(void *ctx, int64_t new_base);

/* Reads the latest snapshot in dir whose offset is in (log_start, max_offset]
 * (a corrupt one is deleted and the next older tried) into s, which is
 * reset first; producers expired at now_ms (expiration_ms, <= 0: never) are
 * left out. Snapshots outside that range are deleted (above: they describe
 * a log that was truncated; at or below the log start: deleted data). Returns the snapshot's offset, -1 when none was
 * usable (s then describes an empty log at log_start), or -2 on an I/O
 * error listing dir (errno). */
int64_t pstate_snapshot_load(pstate *s, const char *dir, int64_t log_start, int64_t max_offset, int64_t now_ms,
                             int64_t expiration_ms);

/* Called during pstate_load for each aborted transaction replayed (Kafka's
 * segment recovery rebuilds .txnindex files from these); may be NULL. */
typedef void (*pstate_aborted_fn)(const pstate_txn *t, void *ctx);

/* Start-up and after truncation: Kafka's rebuildProducerState. Removes
 * stray snapshots (not at a segment base, except the latest above every
 * base: the clean shutdown one), loads the latest usable snapshot at or
 * below the LEO and replays the log from there (or the last two segments
 * when there is none). Returns 0, or -1 with errno on I/O error (the state
 * is then whatever was read). */
int pstate_load(pstate *s, struct plog *l, int64_t now_ms, int64_t expiration_ms, pstate_aborted_fn on_aborted,
                void *ctx);

/* After retention: snapshots below the log start describe deleted data. */
int pstate_snapshots_delete_below(const char *dir, int64_t log_start);

/* ---- inspection ---- */

int pstate_producer_count(const pstate *s);

/* The i-th producer (0 <= i < count), for DescribeProducers. */
typedef struct pstate_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence;
    int64_t last_timestamp;
    int32_t coordinator_epoch;
    int64_t current_txn_start_offset; /* -1: none */
    int64_t last_data_offset;         /* its last batch's last offset, -1: none (the log
                                       * cleaner's lastRecordsOfActiveProducers) */
} pstate_info;
int pstate_producer_at(const pstate *s, int i, pstate_info *out);

#endif
