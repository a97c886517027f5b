/* truncation.c - epoch cache and truncation decisions (see truncation.h). */
#include "replica/truncation.h"

/* LeaderEpochFileCache.isUpdateNeeded / assign / maybeTruncateNonMonotonicEntries */
int tr_assign(epoch_entry *v, size_t *n, size_t cap, int32_t epoch, int64_t start_offset) {
    if (epoch < 0 || start_offset < 0) return -1;
    size_t k = *n;
    if (k > 0 && v[k - 1].epoch == epoch && start_offset >= v[k - 1].start_offset) return 0;
    while (k > 0 && (v[k - 1].epoch >= epoch || v[k - 1].start_offset >= start_offset)) k--;
    if (k >= cap) return -1;
    v[k].epoch = epoch;
    v[k].start_offset = start_offset;
    *n = k + 1;
    return 1;
}

/* LeaderEpochFileCache.truncateFromEnd */
bool tr_truncate_from_end(epoch_entry *v, size_t *n, int64_t end_offset) {
    (void)v;
    size_t k = *n;
    if (end_offset < 0 || k == 0 || v[k - 1].start_offset < end_offset) return false;
    while (k > 0 && v[k - 1].start_offset >= end_offset) k--;
    *n = k;
    return true;
}

/* LeaderEpochFileCache.truncateFromStart */
bool tr_truncate_from_start(epoch_entry *v, size_t *n, int64_t start_offset) {
    size_t drop = 0;
    while (drop < *n && v[drop].start_offset <= start_offset) drop++;
    if (drop == 0) return false;
    epoch_entry first = {v[drop - 1].epoch, start_offset};
    bool changed = drop > 1 || v[0].start_offset != start_offset;
    size_t keep = *n - drop;
    for (size_t i = 0; i < keep; i++) v[1 + i] = v[drop + i];
    v[0] = first;
    *n = keep + 1;
    return changed;
}

int32_t tr_latest_epoch(const epoch_entry *v, size_t n) { return n ? v[n - 1].epoch : TR_UNDEFINED_EPOCH; }

/* LeaderEpochFileCache.endOffsetFor */
void tr_end_offset_for(const epoch_entry *v, size_t n, int32_t requested, int64_t leo, int32_t *epoch_out,
                       int64_t *end_offset_out) {
    *epoch_out = TR_UNDEFINED_EPOCH;
    *end_offset_out = TR_UNDEFINED_OFFSET;
    if (requested == TR_UNDEFINED_EPOCH || n == 0) return;
    if (v[n - 1].epoch == requested) { /* the epoch being written: ends at the LEO */
        *epoch_out = requested;
        *end_offset_out = leo;
        return;
    }
    size_t hi = 0; /* higherEntry: first entry with epoch > requested */
    while (hi < n && v[hi].epoch <= requested) hi++;
    if (hi == n) return;
    *end_offset_out = v[hi].start_offset;
    *epoch_out = hi == 0 ? requested : v[hi - 1].epoch; /* floorEntry, or the requested one */
}

/* LeaderEpochFileCache.epochForOffset */
int32_t tr_epoch_for_offset(const epoch_entry *v, size_t n, int64_t offset) {
    int32_t prev = TR_UNDEFINED_EPOCH;
    for (size_t i = 0; i < n; i++) {
        if (v[i].start_offset == offset) return v[i].epoch;
        if (v[i].start_offset > offset) return prev;
        prev = v[i].epoch;
    }
    return prev;
}

/* Partition.readRecords: the lastFetchedEpoch check before reading. */
tr_read_check tr_leader_check_fetch(const epoch_entry *v, size_t n, int64_t leo, int64_t log_start_offset,
                                    int64_t fetch_offset, int32_t last_fetched_epoch, int32_t *div_epoch,
                                    int64_t *div_end_offset) {
    *div_epoch = TR_UNDEFINED_EPOCH;
    *div_end_offset = TR_UNDEFINED_OFFSET;
    if (last_fetched_epoch >= 0) {
        int32_t e;
        int64_t end;
        tr_end_offset_for(v, n, last_fetched_epoch, leo, &e, &end);
        if (end == TR_UNDEFINED_OFFSET || e == TR_UNDEFINED_EPOCH) return TR_READ_OUT_OF_RANGE;
        if (fetch_offset < log_start_offset) return TR_READ_OUT_OF_RANGE;
        if (e < last_fetched_epoch || end < fetch_offset) {
            *div_epoch = e;
            *div_end_offset = end;
            return TR_READ_DIVERGING;
        }
    }
    /* UnifiedLog.read: an offset outside [log start, LEO] is out of range. */
    if (fetch_offset < log_start_offset || fetch_offset > leo) return TR_READ_OUT_OF_RANGE;
    return TR_READ_OK;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* AbstractFetcherThread.getOffsetTruncationState */
tr_decision tr_offset_to_truncate(const epoch_entry *v, size_t n, int64_t leo, int64_t fetch_offset,
                                  int32_t leader_epoch, int64_t leader_end_offset) {
    tr_decision d;
    if (leader_end_offset == TR_UNDEFINED_OFFSET) {
        d.offset = fetch_offset;
        d.completed = true;
    } else if (leader_epoch == TR_UNDEFINED_EPOCH) {
        d.offset = min64(leader_end_offset, leo);
        d.completed = true;
    } else {
        int32_t fe;
        int64_t fend;
        tr_end_offset_for(v, n, leader_epoch, leo, &fe, &fend);
        if (fend == TR_UNDEFINED_OFFSET) { /* endOffsetForEpoch gave None */
            d.offset = min64(leader_end_offset, leo);
            d.completed = true;
        } else if (fe != leader_epoch) {
            d.offset = min64(fend, leo);
            d.completed = false;
        } else {
            d.offset = min64(min64(fend, leader_end_offset), leo);
            d.completed = true;
        }
    }
    return d;
}

/* UnifiedLog.truncateTo (the epoch cache and LEO part) */
int64_t tr_apply_truncation(epoch_entry *v, size_t *n, int64_t leo, int64_t offset) {
    int64_t target = offset < leo ? offset : leo;
    if (target < 0) target = 0;
    tr_truncate_from_end(v, n, target);
    return target;
}
