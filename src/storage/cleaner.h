/* cleaner.h - the log cleaner's core (Kafka 3.6.1's LogCleaner.Cleaner and
 * the cleanable-range rules of LogCleanerManager), at file level.
 *
 * NOT WIRED YET: nothing in the broker calls this. It works on one partition
 * directory of closed segments (<20-digit base>.log with .index, .timeindex,
 * .txnindex) and never touches the active segment: the caller passes the end
 * of the cleanable range, a segment base at or below the active segment's.
 *
 * One clean (cleaner_clean), as Kafka's doClean:
 *   1. offset map: MD5(key) -> latest offset over the dirty range
 *      [first_dirty, first_uncleanable), segment by segment, skipping aborted
 *      transactions' batches, stopping when the map is full (the new
 *      checkpoint is then the map's latest offset + 1, so the rest of the
 *      dirty range is cleaned next time);
 *   2. the segments below that end are grouped by size (segment.bytes,
 *      segment.index.bytes, relative offsets within 2^31) and each group is
 *      rewritten into <first base>.log.cleaned (+ .index/.timeindex/.txnindex
 *      .cleaned) keeping, as Kafka's cleanInto/filterTo: the latest record
 *      per key, tombstones until their batch's delete horizon (set to
 *      now + delete.retention.ms the first time a batch with a tombstone is
 *      cleaned), no keyless records, no aborted data, control batches until
 *      their transaction's data is gone and their delete horizon passed, and
 *      an empty batch where a batch holds an active producer's last sequence.
 *      Offsets never change: a batch that keeps all records is copied byte
 *      for byte, one that loses some is rebuilt (same base offset, same last
 *      offset delta, producer fields, leader epoch, codec; new CRC);
 *   3. the swap, crash-safe with cleaner_recover_dir():
 *        write+fsync *.cleaned -> rename index files .cleaned->.swap, then
 *        the .log (its <base>.log.swap is the commit point) -> rename every
 *        old segment's files to .deleted (.log first) -> rename .log.swap,
 *        then index .swap, to the real names -> unlink the .deleted files.
 * cleaner_recover_dir() must run before the log is opened (plog_open's
 * listing deletes *.swap files, which would lose a committed clean).
 *
 * Only v2 batches are handled (Samsa stores nothing else); a malformed batch
 * (sizes, magic, CRC, offsets not increasing or outside the segment) fails
 * the clean with EINVAL and leaves the directory as it was.
 */
#ifndef SAMSA_STORAGE_CLEANER_H
#define SAMSA_STORAGE_CLEANER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/checkpoint.h"
#include "storage/offset_map.h"
#include "storage/txn_index.h"

#define CLEANER_CLEANED_SUFFIX ".cleaned"
#define CLEANER_SWAP_SUFFIX ".swap"
#define CLEANER_CHECKPOINT_FILE "cleaner-offset-checkpoint"

/* Returned by cleaner_clean when the test fault hook stopped it (a crash). */
#define CLEANER_CRASHED (-2)
/* Returned when the progress callback asked to stop (Kafka's checkDone:
 * LogCleaningAbortedException); the group being written is dropped, groups
 * already swapped in stay (each is a complete clean of its segments). */
#define CLEANER_ABORTED (-3)

typedef struct cleaner_config {
    int64_t segment_bytes;        /* segment.bytes: a cleaned group's .log limit */
    int32_t max_index_bytes;      /* segment.index.bytes */
    int32_t index_interval_bytes; /* index.interval.bytes */
    int64_t delete_retention_ms;  /* delete.retention.ms */
} cleaner_config;

/* Kafka's defaults: 1 GiB, 10 MiB, 4096, 1 day. */
void cleaner_config_defaults(cleaner_config *c);

/* ProducerStateManager's last record of an active producer (Kafka's
 * lastRecordsOfActiveProducers): the batch ending at last_data_offset (or,
 * when that is -1, a control batch of producer_epoch) is kept, emptied if
 * need be, so producer state survives the clean. */
typedef struct cleaner_producer {
    int64_t producer_id;
    int64_t last_data_offset; /* -1: none, the producer's last entry is a marker */
    int16_t producer_epoch;
} cleaner_producer;

typedef struct cleaner_input {
    const char *dir;                  /* the partition directory */
    int64_t first_dirty_offset;       /* from cleaner-offset-checkpoint (or log start) */
    int64_t first_uncleanable_offset; /* a segment base <= the active segment's base */
    /* Every aborted transaction of the log (its .txnindex entries: only
     * producer_id, first_offset and last_offset are used; entries are copied
     * into the cleaned .txnindex while their ABORT marker is kept). */
    const aborted_txn *aborted;
    int naborted;
    const cleaner_producer *producers;
    int nproducers;
    int64_t now_ms;
    /* Optional: called after each batch read or written with its size, for
     * log.cleaner.io.max.bytes.per.second throttling (it may sleep) and to
     * abort (non-zero: the partition is being deleted or truncated). */
    int (*progress)(void *ctx, int64_t bytes);
    void *progress_ctx;
    /* Tests: called before each step that changes the directory; a non-zero
     * answer stops the clean there, as a kill -9 would (CLEANER_CRASHED). */
    int (*fault)(void *ctx, const char *step);
    void *fault_ctx;
    /* Optional: does the swap of one cleaned group instead of the cleaner
     * (the broker runs it on its event loop, where the live log is swapped
     * too): it calls cleaner_swap_group(in, base, old, nold) and returns
     * its result, or CLEANER_ABORTED to refuse (the .cleaned files are then
     * removed and the clean stops). */
    int (*swap)(void *ctx, const struct cleaner_input *in, int64_t base, const int64_t *old, int nold);
    void *swap_ctx;
} cleaner_input;

/* The swap of one group written as <base>.*.cleaned replacing the segments
 * old[0..nold) (step 3 above). 0, CLEANER_CRASHED (fault hook) or -1 with
 * errno (the directory then completed or undone by cleaner_recover_dir). */
int cleaner_swap_group(const struct cleaner_input *in, int64_t base, const int64_t *old, int nold);

typedef struct cleaner_stats {
    int64_t end_offset;         /* the new first dirty offset (checkpoint it) */
    int groups;                 /* cleaned segments written */
    int segments_replaced;
    int64_t bytes_read, bytes_written;
    int64_t records_read, records_retained;
    int64_t invalid_records;    /* keyless records dropped */
    double map_utilization;
} cleaner_stats;

/* One clean of dir (see above) with map (cleared first; its memory bounds
 * how much of the dirty range one clean covers). Returns 0 (stats filled),
 * CLEANER_CRASHED, CLEANER_ABORTED, or -1 with errno (EBUSY: a *.swap file
 * is there, run cleaner_recover_dir first; EINVAL: a malformed batch or input;
 * err says what). On -1 the directory is as before (no *.cleaned left) or,
 * for an I/O error during the swap, completed or undone by a call of
 * cleaner_recover_dir (if that failed too, run it again before the log is
 * used: Kafka takes the log dir offline). The caller must keep the log
 * from deleting or truncating the segments below first_uncleanable_offset
 * meanwhile (Kafka: the cleaner's abort/pause protocol), and reload its
 * segment list afterwards. */
int cleaner_clean(const cleaner_config *cfg, const cleaner_input *in, offset_map *map, cleaner_stats *stats,
                  char *err, size_t errlen);

/* Kafka's LogLoader for a directory left anywhere in the swap protocol:
 * uncommitted *.cleaned / index *.swap removed, a committed <base>.log.swap
 * completed (old segment files in [base, its next offset) removed, swap
 * files renamed), leftovers of segments renamed to .deleted removed.
 * Idempotent, safe to re-run after a crash in the middle. 0 or -1. */
int cleaner_recover_dir(const char *dir);

/* ---- cleaner-offset-checkpoint (one per log dir, Kafka's offset checkpoint
 * format: "0\n<count>\n<topic> <partition> <offset>\n...") ---- */

/* Reads <log_dir>/cleaner-offset-checkpoint (missing file: empty set). */
int cleaner_checkpoint_read(const char *log_dir, ckpt_offsets *out, char *err, size_t errlen);
/* Sets (offset >= 0) or removes (offset < 0) one partition's entry and
 * rewrites the file atomically (Kafka's updateCheckpoints). */
int cleaner_checkpoint_update(const char *log_dir, const char *topic, int32_t partition, int64_t offset);

/* ---- which logs to clean, and how far (LogCleanerManager) ---- */

typedef struct cleaner_segment_info {
    int64_t base;
    int64_t size;              /* bytes in .log */
    int64_t largest_timestamp; /* max timestamp, or the file's mtime when none */
    int64_t first_batch_timestamp; /* max timestamp of the first batch, <= 0 when none */
} cleaner_segment_info;

typedef struct cleaner_log_view {
    const cleaner_segment_info *segs; /* ascending; the last one is the active segment */
    int nsegs;
    int64_t log_start_offset, log_end_offset;
    int64_t last_stable_offset;      /* includes the high watermark bound */
    int64_t checkpoint_offset;       /* cleaner-offset-checkpoint entry, -1 when none */
    int64_t min_compaction_lag_ms;   /* min.compaction.lag.ms */
    int64_t max_compaction_lag_ms;   /* max.compaction.lag.ms */
    double min_cleanable_ratio;      /* min.cleanable.dirty.ratio */
} cleaner_log_view;

typedef struct cleaner_decision {
    int64_t first_dirty_offset;
    bool force_checkpoint_update;    /* the checkpoint was out of range: write first_dirty_offset */
    int64_t uncleanable_offset;      /* cleanableOffsets' firstUncleanableDirtyOffset */
    int64_t first_uncleanable_offset;/* rounded down to its segment's base: pass to cleaner_clean */
    int64_t clean_bytes, cleanable_bytes, total_bytes;
    double cleanable_ratio;
    int64_t max_compaction_delay_ms; /* > 0: max.compaction.lag.ms is exceeded, clean now */
    bool should_clean;               /* grabFilthiestCompactedLog would pick this log */
} cleaner_decision;

/* Kafka's cleanableOffsets + maxCompactionDelay + LogToClean + the filter of
 * grabFilthiestCompactedLog, for one log. Pure. v->nsegs must be >= 1. */
void cleaner_decide(const cleaner_log_view *v, int64_t now_ms, cleaner_decision *out);

#endif
