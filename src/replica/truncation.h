/* truncation.h - leader epoch cache operations and the follower's truncation
 * decisions, as pure functions on an array (Kafka 3.6.1's
 * LeaderEpochFileCache, AbstractFetcherThread.getOffsetTruncationState and
 * Partition.readRecords' DivergingEpoch check).
 *
 * The array is the one storage/epoch_cache.c keeps (epoch_entry from
 * storage/checkpoint.h: ascending in both epoch and start offset), but
 * these functions work in place on a caller-owned array of fixed capacity
 * and never touch a file: epoch_cache.c writes every change through to its
 * checkpoint before making it visible (and allocates), so it is not pure;
 * it could be rebuilt on top of these (compute on a copy, persist, swap).
 */
#ifndef SAMSA_REPLICA_TRUNCATION_H
#define SAMSA_REPLICA_TRUNCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/checkpoint.h" /* epoch_entry */

#define TR_UNDEFINED_EPOCH (-1)
#define TR_UNDEFINED_OFFSET (-1)

/* ---- epoch cache (LeaderEpochFileCache) ---- */

/* assign(epoch, startOffset): appends unless the latest entry already has
 * this epoch and a start <= start_offset; entries that would break
 * monotonicity (epoch >= epoch or start >= start_offset) are removed from
 * the end first. Returns 1 changed, 0 nothing to do, -1 invalid (negative)
 * or no room (*n == cap after the removals). */
int tr_assign(epoch_entry *v, size_t *n, size_t cap, int32_t epoch, int64_t start_offset);

/* truncateFromEnd(endOffset): removes entries starting at or after
 * end_offset (the log was truncated to end_offset). Returns whether any
 * entry was removed. */
bool tr_truncate_from_end(epoch_entry *v, size_t *n, int64_t end_offset);

/* truncateFromStart(startOffset): entries starting at or before
 * start_offset collapse into the latest of them, moved to start at
 * start_offset. Returns whether anything changed. */
bool tr_truncate_from_start(epoch_entry *v, size_t *n, int64_t start_offset);

/* latestEpoch, -1 when empty. */
int32_t tr_latest_epoch(const epoch_entry *v, size_t n);

/* endOffsetFor(requestedEpoch, logEndOffset): the largest epoch <= the
 * requested one and the start of the next epoch (the LEO for the latest
 * epoch); an epoch older than all known answers (requested, start of the
 * first); (-1, -1) for -1, an empty cache or an epoch above all known. */
void tr_end_offset_for(const epoch_entry *v, size_t n, int32_t requested, int64_t leo, int32_t *epoch_out,
                       int64_t *end_offset_out);

/* epochForOffset: the epoch of the entry covering offset, -1 if none. */
int32_t tr_epoch_for_offset(const epoch_entry *v, size_t n, int64_t offset);

/* ---- leader side: Partition.readRecords with lastFetchedEpoch (Fetch v12+) ---- */

typedef enum {
    TR_READ_OK = 0,       /* no divergence: read from fetch_offset */
    TR_READ_DIVERGING,    /* answer DivergingEpoch {*div_epoch, *div_end_offset}, no records */
    TR_READ_OUT_OF_RANGE, /* OFFSET_OUT_OF_RANGE */
} tr_read_check;

/* The leader's epoch cache (v, n), LEO and log start; the follower's fetch
 * offset and lastFetchedEpoch (-1 = absent: no check). */
tr_read_check tr_leader_check_fetch(const epoch_entry *v, size_t n, int64_t leo, int64_t log_start_offset,
                                    int64_t fetch_offset, int32_t last_fetched_epoch, int32_t *div_epoch,
                                    int64_t *div_end_offset);

/* ---- follower side: AbstractFetcherThread.getOffsetTruncationState ---- */

typedef struct tr_decision {
    int64_t offset;  /* truncate the local log to this offset (no-op when >= LEO) */
    bool completed;  /* false: the follower did not know the leader's epoch; truncation
                        continues with the next fetch/OffsetsForLeaderEpoch round */
} tr_decision;

/* The leader answered (leader_epoch, leader_end_offset) - a DivergingEpoch
 * from Fetch, or an OffsetsForLeaderEpoch result for our latest epoch.
 * (v, n, leo) is the follower's epoch cache and LEO; fetch_offset its
 * current fetch offset (used only when the leader answered an undefined end
 * offset: Kafka then truncates to it, the HW on the legacy path).
 *  - undefined end offset: fetch_offset, completed;
 *  - undefined epoch (old protocol): min(leader end, LEO), completed;
 *  - we know the leader's epoch: min(leader end, our end for it, LEO), completed;
 *  - we do not: min(our end offset for the largest epoch below it, LEO), not completed;
 *  - we know no epoch that low: min(leader end, LEO), completed.
 * Truncation is by epoch, not by the follower's HW (KIP-101/KIP-279): the
 * result may be below the local HW, which is then lowered with the log. */
tr_decision tr_offset_to_truncate(const epoch_entry *v, size_t n, int64_t leo, int64_t fetch_offset,
                                  int32_t leader_epoch, int64_t leader_end_offset);

/* UnifiedLog.truncateTo's effect on the epoch cache and the LEO: returns the
 * new LEO, min(offset, leo). The cache is truncated from the end at that
 * offset even when the log is not (offset >= LEO): an epoch this replica
 * assigned as leader without appending anything must go, or the next fetch
 * would carry it as lastFetchedEpoch again. The caller truncates its log
 * (and lowers its HW: pr_set_local_log) to the returned LEO. */
int64_t tr_apply_truncation(epoch_entry *v, size_t *n, int64_t leo, int64_t offset);

#endif
