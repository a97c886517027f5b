/* log.h - a partition's log: Kafka's on-disk layout, appends, fetches,
 * timestamp and epoch lookups, retention, recovery.
 *
 * A partition lives in <log.dir>/<topic>-<partition>/ as Kafka 3.6.1 lays it
 * out: <base>.log / .index / .timeindex segments, partition.metadata and
 * leader-epoch-checkpoint, so kafka-dump-log.sh reads our files. The
 * dir-level checkpoints are in checkpoint.h; the broker writes them.
 *
 * Callers are single-threaded (the broker's event loop); a plog has no
 * locks. All file system calls go through storage_fio (fileio.h).
 * Functions return 0 on success and -1 with errno on I/O failure unless
 * noted. After an fsync failure (or a failed rollback) the log is marked
 * failed and every later append fails with EIO: like Kafka, the broker should
 * take the log dir offline.
 */
#ifndef SAMSA_STORAGE_LOG_H
#define SAMSA_STORAGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/batch_header.h"
#include "storage/txn_index.h"

typedef struct log_config {
    int64_t segment_bytes;          /* segment.bytes (default 1073741824) */
    int64_t segment_ms;             /* segment.ms (default 604800000) */
    int32_t index_interval_bytes;   /* index.interval.bytes (4096) */
    int32_t segment_index_bytes;    /* segment.index.bytes (10485760) */
    int64_t flush_messages;         /* flush.messages (INT64_MAX = only on roll/close) */
    int64_t flush_ms;               /* flush.ms (INT64_MAX) */
    int64_t retention_bytes;        /* retention.bytes (-1 = unlimited) */
    int64_t retention_ms;           /* retention.ms (604800000; -1 = unlimited) */
    int64_t file_delete_delay_ms;   /* file.delete.delay.ms (60000) */
    bool retention_delete;          /* cleanup.policy has delete (true): retention.ms/bytes apply */
    /* Disk space reserved ahead of the active segment's appends, this much
     * at a time (fallocate KEEP_SIZE: file sizes and the format unchanged;
     * released at roll and close). preallocate=true (Kafka's whole segment)
     * is segment_bytes; 0 = none. */
    int64_t prealloc_chunk_bytes;
    /* The page cache of the log kept to this many bytes behind its end:
     * older appended ranges are written back and dropped (page_trim.h);
     * 0 = all kept, as Kafka leaves it to the kernel. */
    int64_t page_cache_window_bytes;
} log_config;
void log_config_defaults(log_config *c);

typedef struct plog plog;

/* Producer-state hook: called after every roll with the new segment's base
 * (the producer state takes a snapshot there; see plog_set_roll_hook). */
typedef void (*plog_roll_fn)(void *ctx, int64_t new_base);

/* Opens or creates the partition dir <dir> (the full "<log.dir>/<topic>-<p>"
 * path), loads segments and recovers from recovery_point: every segment from
 * the one holding recovery_point on is scanned batch by batch (magic 2,
 * sizes, CRC-32C, increasing offsets); the first bad batch and everything
 * after it is truncated (one line on stderr says what was cut) and those
 * segments' indexes are rebuilt. Unusable or missing index files of other
 * segments are rebuilt too. clean_shutdown (the log's directory holds
 * Kafka's .kafka_cleanshutdown marker: every log was flushed and sealed at
 * the last stop) skips that recovery, as Kafka's LogLoader does: only the
 * active segment's batches after its last index entry are read and checked;
 * if they do not add up with its indexes it is recovered after all. The
 * recovery point is then the LEO. log_start_offset (-1 if unknown) is clamped to
 * the first segment. topic_id (16 bytes, NULL to skip) is written to
 * partition.metadata if absent and must match if present. On failure
 * returns -1 with a message in err. A directory it creates is written
 * without fsync; see plog_created. */
int plog_open(const char *dir, const char *topic, int32_t partition, const uint8_t topic_id[16],
              const log_config *cfg, int64_t recovery_point, int64_t log_start_offset, bool clean_shutdown,
              plog **out, char *err, size_t errlen);
/* Seals, flushes, frees. -1 when the log could not be flushed (or had failed
 * before): then its directory must not be marked as cleanly closed. */
int plog_close(plog *l);
int plog_delete(plog *l);              /* closes and removes the dir; l is freed even on error */
/* Frees l without flushing or touching its files: a log whose directory is
 * about to be retired (plog_retire_dir, maybe on another thread). */
void plog_discard(plog *l);
/* A deleted log's directory name for the partition directory dir
 * (<topic>-<partition>.<32 hex digits>-delete beside it) into gone. 0, or -1
 * with errno (EINVAL: dir does not end in <topic>-<partition>). */
int plog_retired_name(const char *dir, char *gone, size_t cap);
/* Renames the partition directory dir (no log open on it) to its retired
 * name, as Kafka does for a deleted log, writing the new path to gone: the
 * name is free at once, and plog_remove_dir removes the files later (a
 * start-up removes such directories left by a crash). Safe on any thread.
 * 0 or -1 with errno. */
int plog_retire_dir(const char *dir, char *gone, size_t cap);
/* Removes dir and every file in it. Safe on any thread (no log). 0 or -1
 * with errno (what could be removed is). */
int plog_remove_dir(const char *dir);
/* Kafka's suffix of a deleted log's directory (LocalLog.DeleteDirSuffix). */
#define PLOG_DELETE_DIR_SUFFIX "-delete"
void plog_set_config(plog *l, const log_config *cfg);

/* Appends len bytes of consecutive, already validated v2 batches (the buffer
 * is modified: baseOffset and partitionLeaderEpoch are patched, neither is
 * under the CRC). Offsets are assigned from the LEO. Rolls first when the
 * active segment would pass segment_bytes, is older than segment_ms, has a
 * full index, or the offsets would not fit its relative offsets. A new
 * leader_epoch (>= 0, above the latest) starts an epoch at the first offset.
 * Errors: EINVAL (malformed framing), EMSGSIZE (a batch bigger than
 * segment_bytes), or the I/O errno (e.g. ENOSPC) after which nothing of the
 * append is visible and the files are truncated back. */
int plog_append(plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t *first_offset,
                int64_t *last_offset);

/* plog_append in three steps, so that the data writes of several logs can
 * run at once on other threads (write_pool.h): begin does everything before
 * the write (checks, roll, offsets, disk reserved ahead) and fills *w; the
 * write (plog_write_run) touches nothing but w, its file and its bytes, so
 * it may run on any thread; end, on the log's own thread again, commits
 * (index entries, epoch, LEO, flush.messages) or, when the write failed,
 * undoes the append as plog_append does and returns -1 with its errno. The
 * log must not be used between begin and end (another begin: EBUSY), and
 * the batches stay untouched until the write is done. */
typedef struct plog_write {
    int fd;
    const uint8_t *data;
    size_t len;
    int64_t pos;
    int err; /* 0, or the errno of the failed write */
} plog_write;
int plog_append_begin(plog *l, uint8_t *batches, size_t len, int32_t leader_epoch, plog_write *w);
void plog_write_run(plog_write *w);
int plog_append_end(plog *l, const plog_write *w, int64_t *first_offset, int64_t *last_offset);
/* Between plog_append_begin and plog_append_end. */
bool plog_append_in_flight(const plog *l);

int64_t plog_start_offset(const plog *l);
int64_t plog_end_offset(const plog *l);       /* next offset to assign (LEO) */
int64_t plog_size(const plog *l);             /* bytes in all segments */
int64_t plog_recovery_point(const plog *l);   /* everything below is fsynced */
int plog_segment_count(const plog *l);
const char *plog_dir(const plog *l);
const char *plog_topic(const plog *l);
int32_t plog_partition(const plog *l);

/* The high watermark, which bounds retention like Kafka's (segments at or
 * past it are never deleted). Until set (or when set to -1) it follows the
 * LEO, which is right for a single replica. */
void plog_set_high_watermark(plog *l, int64_t hw);

/* Fetch. Finds the batch holding `offset` (offset index, then batch headers)
 * and returns a file range of whole batches from there, stopping before the
 * batch that holds max_offset (exclusive; the high watermark) and within
 * max_bytes, except that with min_one the first batch comes whole even if
 * bigger (KIP-74). Reads within one segment, like Kafka. Returns 0 (out->len
 * may be 0), PLOG_OFFSET_OUT_OF_RANGE when offset < log start or > LEO, or
 * -1. out->fd stays open at least file_delete_delay_ms after the segment is
 * deleted (deleted segments become *.deleted and are closed and unlinked by
 * plog_tick), so it may be sendfile()d later; never close it. */
typedef struct plog_slice {
    int fd;
    int64_t file_pos;
    int32_t len;
} plog_slice;
#define PLOG_OFFSET_OUT_OF_RANGE 1
int plog_read(plog *l, int64_t offset, int32_t max_bytes, bool min_one, int64_t max_offset, plog_slice *out);

/* Finds, inside one whole batch in memory, the first record with timestamp
 * >= ts: sets *offset and *timestamp (or *offset = -1 when none) and returns
 * 0; nonzero means the batch could not be read (the lookup then fails). The
 * records module supplies it (it can decompress). */
typedef int (*plog_batch_scan_fn)(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                                  int64_t *timestamp, void *ctx);

#define PLOG_TS_LATEST (-1)
#define PLOG_TS_EARLIEST (-2)
#define PLOG_TS_MAX_TIMESTAMP (-3)
#define PLOG_TS_EARLIEST_LOCAL (-4)

/* ListOffsets by timestamp (Kafka's fetchOffsetByTimestamp): the first
 * segment whose largest timestamp >= ts, its time index, then batches from
 * there; the first batch with max timestamp >= ts is handed to scan for the
 * exact record. With scan == NULL the batch's base offset and max timestamp
 * are returned. Sets *offset = -1, *timestamp = -1 when no record qualifies.
 * The special ts values above are answered too (EARLIEST/EARLIEST_LOCAL: log
 * start; LATEST: LEO; both with timestamp -1; MAX_TIMESTAMP as below). */
int plog_offset_for_timestamp(plog *l, int64_t ts, plog_batch_scan_fn scan, void *ctx, int64_t *offset,
                              int64_t *timestamp);
/* ListOffsets MAX_TIMESTAMP (-3): the record with the largest timestamp (the
 * first batch holding it, then scan for the record). When no batch has a
 * timestamp (e.g. an empty log) the answer is, as in Kafka 3.6.1, offset =
 * the first segment's base offset with timestamp -1. */
int plog_max_timestamp(plog *l, plog_batch_scan_fn scan, void *ctx, int64_t *offset, int64_t *timestamp);

/* OffsetForLeaderEpoch, as Kafka 3.6.1: the latest epoch ends at the LEO;
 * an older known epoch ends where the next higher epoch starts (and
 * *epoch_out is the largest known epoch <= the requested one); an epoch
 * below every known one answers (epoch, start of the first higher epoch);
 * -1 or an epoch above all known, or an empty cache, gives -1/-1. */
int plog_end_offset_for_epoch(plog *l, int32_t epoch, int32_t *epoch_out, int64_t *end_offset);
int32_t plog_latest_epoch(const plog *l);

/* Visit the header of every batch of the last max_segments segments, oldest
 * first (rebuilding producer state at start-up). fn returns nonzero to stop.
 * Returns 0, or -1 on I/O error. */
typedef int (*plog_header_fn)(const batch_header *h, void *ctx);
int plog_scan_tail_headers(plog *l, int max_segments, plog_header_fn fn, void *ctx);
/* ---- producer-state hooks (broker/producer_state.c) ----
 * Base offset of the i-th segment (0 = oldest), -1 out of range. */
int64_t plog_segment_base(const plog *l, int i);
/* Visit every batch whose last offset >= from_offset, oldest first, with
 * the segment's .log descriptor and the batch's position in it, so fn can
 * pread the records of the few batches it needs (control batches). fn
 * returns nonzero to stop. Returns 0, or -1 on I/O error. */
typedef int (*plog_batch_at_fn)(const batch_header *h, int fd, int64_t file_pos, void *ctx);
int plog_scan_batches_from(plog *l, int64_t from_offset, plog_batch_at_fn fn, void *ctx);
/* ---- transaction indexes (storage/txn_index.h) ----
 * Records an aborted transaction in the .txnindex of the segment holding
 * its marker (t->last_offset, below the LEO), creating the file on first
 * use. An entry at or below the index's last one is skipped (replaying the
 * log after a restart writes each once). fsynced with the segment (flush,
 * roll); renamed, truncated and deleted with it. 0 or -1 with errno. */
int plog_add_aborted_txn(plog *l, const aborted_txn *t);
/* A read_committed fetch at fetch_offset reading below upper_bound (the
 * LSO): appends the aborted transactions overlapping the read, from the
 * indexes of the segment holding fetch_offset on (Kafka's
 * collectAbortedTransactions; the bound is cut at the next segment's base
 * since a read stays within one segment). 0 or -1 with errno. */
int plog_collect_aborted_txns(plog *l, int64_t fetch_offset, int64_t upper_bound, aborted_list *out);
/* Every aborted transaction in the log's .txnindex files, oldest segment
 * first (the log cleaner's input: Kafka's collectAbortedTransactions over
 * the whole log, no per-read bound). 0 or -1 with errno. */
int plog_collect_all_aborted_txns(plog *l, aborted_list *out);
/* fn(ctx, new_base) after each successful roll (NULL: none). */
void plog_set_roll_hook(plog *l, plog_roll_fn fn, void *ctx);
/* Epoch of the entry covering offset (-1 if none): ListOffsets' leaderEpoch. */
int32_t plog_epoch_for_offset(const plog *l, int64_t offset);
/* Becoming leader: start `epoch` at the LEO (no-op if not newer). */
int plog_assign_epoch(plog *l, int32_t epoch);

/* Makes what plog_open would create for a new, empty log at dir: the
 * directory, its partition.metadata naming topic_id, and the empty files of
 * the segment at offset 0, none of them synced. first_epoch >= 0 also writes
 * the leader-epoch-checkpoint its leader writes when it starts that epoch
 * at offset 0 (plog_assign_epoch then finds it there): creating that file on
 * the loop was half of the loop's time per new partition, ext4's inode
 * allocation. -1: none (a follower's starts empty, as Kafka's). Safe on any thread (it
 * touches no log, only the file system), so a broker can make new partitions
 * off its event loop: creating files costs 0.3-0.5 ms a partition on ext4,
 * a stall of tens of milliseconds for a topic of 50 partitions. Returns 0
 * when it made the directory, 1 when the directory was there already (then
 * nothing is touched), 2 when the directory there named another topic id
 * (it was retired and removed, and the directory made anew), -1 with errno. The caller then
 * opens the log with plog_open and, for 0 and 2, calls plog_mark_new before
 * plog_created. */
int plog_make_dir(const char *dir, const uint8_t topic_id[16], int32_t first_epoch);
/* Opens the log plog_make_dir made at dir just now (it returned 0 or 2)
 * with first_epoch: the log plog_open would load from it with no recovery
 * point and no log start (empty, its segment at offset 0, that one epoch
 * entry, not yet durable, as after plog_mark_new), without listing the
 * directory or reading back the files just written: half of the request
 * loop's time per partition created. Then plog_created, as after plog_open.
 * 0, or -1 with a message in err. */
int plog_open_made(const char *dir, const char *topic, int32_t partition, const log_config *cfg, int32_t first_epoch,
                   plog **out, char *err, size_t errlen);
/* The log was just opened from a directory plog_make_dir made: treated as
 * one plog_open created (its files are synced by plog_created's syncer, or
 * at the first flush). */
void plog_mark_new(plog *l);
/* A log that plog_open created is set up (its first leader epoch written):
 * its directory and small files are made durable by the background syncer
 * (syncer.h). Without this call the first flush (or close) syncs them. */
void plog_created(plog *l);
/* Whether plog_open had to make the log's directory. */
bool plog_dir_was_created(const plog *l);
/* The producer snapshot offsets plog_open's one listing of the directory
 * found (ascending, *offsets malloc'd, NULL when none), handed over once
 * so that loading the producer state right after the open lists nothing
 * again. -1 when already taken or forgotten: list the directory. */
int plog_take_open_snapshots(plog *l, int64_t **offsets, int *n);
/* Drops that listing: what happens to the log from now on may change it. */
void plog_forget_open_snapshots(plog *l);
int plog_flush(plog *l);                       /* fsync everything up to the LEO */
/* A flush done by another thread: when everything before the active segment
 * is durable (the usual case: a roll flushes what it seals), a duplicate of
 * the active segment's descriptor (the caller fdatasyncs and closes it) and
 * *upto the LEO it covers; otherwise -1: call plog_flush instead. The
 * indexes are not synced: a log opened with recovery from its start (the
 * metadata log) rebuilds them. */
int plog_sync_handle(plog *l, int64_t *upto);
/* That sync succeeded: the log is durable up to upto. */
void plog_synced_to(plog *l, int64_t upto);
/* Periodic work at wall-clock now_ms: unlink *.deleted files older than
 * file_delete_delay_ms, flush per flush_ms, roll a non-empty active segment
 * older than segment_ms, and retention (Kafka's: segments whose largest
 * timestamp is older than retention_ms, the oldest segments beyond
 * retention_bytes, and segments wholly below the log start; never at or past
 * the high watermark; when every segment goes, a new empty active segment is
 * rolled first). Errors are reported on stderr; the next tick retries. */
void plog_tick(plog *l, int64_t now_ms);
/* The same without retention: `.deleted` files, flush.ms, segment.ms rolls
 * (run every second; retention runs every log.retention.check.interval.ms). */
void plog_housekeeping(plog *l, int64_t now_ms);
/* DeleteRecords: raise the log start to offset (<= high watermark, checked
 * by the caller; EINVAL past the LEO) and delete whole segments below it. */
int plog_delete_records(plog *l, int64_t offset);
/* The high watermark in effect: the one set, capped at the LEO, or the LEO. */
int64_t plog_high_watermark(const plog *l);

/* ---- follower side (replication) ----
 *
 * Follower truncation, Kafka's UnifiedLog.truncateTo: drops every offset >=
 * offset. Segments above it are deleted, the one holding it is cut at a
 * batch boundary (a batch holding offset goes whole, so the LEO becomes
 * min(offset, that batch's base offset): where the kept data ends, as
 * recovery would find it; Kafka would set the LEO to offset). The recovery
 * point, log start and high watermark are capped at the new LEO, and epoch
 * entries starting at or after it are dropped. With offset >= LEO nothing
 * is cut but epochs starting at or after the LEO (started by this node as
 * leader without a record) are dropped, as Kafka does. Below the first
 * segment it is plog_truncate_fully_and_start_at(offset). Durable before it
 * returns (the cut segment and the directory are fsynced, then the epoch
 * checkpoint written). After an I/O error part way the log is marked failed
 * (EIO from then on); reopening recovers a prefix of the old log. */
int plog_truncate_to(plog *l, int64_t offset);
/* Kafka's truncateFullyAndStartAt (the follower's fetch offset is out of
 * range below the leader's log start): the epoch cache is cleared, every
 * segment deleted and the log restarts empty at offset: LEO, log start and
 * recovery point = offset (and the high watermark, when one was set).
 * Durable before it returns; a crash part way leaves an empty epoch cache
 * and a suffix of the old log. */
int plog_truncate_fully_and_start_at(plog *l, int64_t offset);

/* Refusals of plog_append_as_follower (nothing appended; err says why). */
#define PLOG_UNEXPECTED_APPEND_OFFSET 2 /* first batch's base offset < LEO */
#define PLOG_OFFSETS_OUT_OF_ORDER 3     /* a batch starts at or before the previous one's last offset */
#define PLOG_CORRUPT_RECORD 4           /* bad length, magic != 2, bad offsets or CRC mismatch */
#define PLOG_BATCH_TOO_LARGE 5          /* a batch bigger than segment.bytes */
#define PLOG_EPOCH_REGRESSION 6         /* a leader epoch below one the log holds records of */

/* Kafka's UnifiedLog.appendAsFollower: appends whole v2 batches exactly as
 * the leader wrote them (bytes, offsets and partitionLeaderEpoch kept; the
 * buffer is not modified). Every whole batch is checked before anything is
 * written: the first must start at or after the LEO and each next one after
 * its predecessor (offsets may jump: a compacted leader's log has gaps), lengths, magic 2, offsets, CRC-32C, size <= segment.bytes.
 * A trailing partial batch (a Fetch response may end mid-batch) is left
 * out: *used_out tells how many bytes were appended (0 when not even one
 * batch is whole), *last_offset_out the last offset appended (-1: none).
 * Each batch whose epoch is newer than the cache's latest starts that epoch
 * at its base offset (maybeAssignEpochStartOffset); an older epoch is
 * refused unless the newer entries hold no records (they are dropped).
 * Rolls per batch as plog_append would (segment.bytes, segment.ms, a full
 * index, relative offsets); flush.messages as plog_append. The high
 * watermark is not moved: the caller sets the leader's, capped at the LEO.
 * Returns 0; a PLOG_* refusal above; or -1 with errno on I/O failure, in
 * which case a prefix of whole batches may be in (*used_out, the LEO). */
int plog_append_as_follower(plog *l, const uint8_t *batches, size_t len, int64_t *last_offset_out,
                            size_t *used_out, char *err, size_t errlen);
/* The same in plog_append_begin's three steps, so that the data writes of
 * several partitions can run at once (storage/write_pool.h). Begin checks
 * every batch as above (a refusal or -1: nothing appended, nothing open),
 * takes a roll due before the first batch, and fills *w with the whole
 * batches from the first that go into that one segment (w->len > 0):
 * plog_write_run, then plog_append_as_follower_end, which gives what
 * plog_append_as_follower would for those bytes. When w->len is short of
 * the whole batches (a roll inside the input), the caller appends the rest,
 * batches + w->len, with plog_append_as_follower after the end. *w has len
 * 0 and nothing was done when there is no whole batch, or epochs must be
 * dropped first: the caller appends with plog_append_as_follower. */
int plog_append_as_follower_begin(plog *l, const uint8_t *batches, size_t len, plog_write *w, char *err,
                                  size_t errlen);
int plog_append_as_follower_end(plog *l, const plog_write *w, int64_t *last_offset_out, size_t *used_out, char *err,
                                size_t errlen);

/* ---- the log cleaner (storage/log_cleaner.h) ----
 * Segment i's summary for cleaner_decide: base, .log size, largest
 * timestamp (seg_largest_timestamp) and its first batch's max timestamp
 * (-1 when none). -1 when i is out of range. */
int plog_segment_info(const plog *l, int i, int64_t *base, int64_t *size, int64_t *largest_ts, int64_t *rolling_ts);
/* A clean of the segments below end runs in the background: deleting or
 * truncating any of them from now on aborts it (plog_cleaning_ok turns
 * false; Kafka's abortAndPauseCleaning). done: no clean runs. */
void plog_cleaning_begin(plog *l, int64_t end);
bool plog_cleaning_ok(const plog *l, int64_t end);
void plog_cleaning_done(plog *l);
/* Lowest offset the log was truncated to since the last call (INT64_MAX:
 * none): the cleaner lowers its checkpoint there (maybeTruncateCheckpoint). */
int64_t plog_take_truncation(plog *l);
/* The files no longer match the log (a swap failed part way): appends fail
 * with EIO from now on, as after a failed fsync; reopen the log. */
void plog_mark_failed(plog *l);
/* Before the cleaner renames these segments' files: their index (and
 * transaction index) descriptors are closed, to be reopened by name. */
void plog_forget_indexes(plog *l, const int64_t *bases, int n);
/* After the cleaner's swap (cleaner.h) replaced the consecutive segments
 * old_bases[0..nold) by the cleaned one at new_base (== old_bases[0]): the
 * old segments' .log descriptors move to the trash (kept for
 * file.delete.delay.ms: fetch slices may still send them), the new segment
 * is opened and its indexes loaded. Never the active segment. On failure
 * the log is marked failed (reopen it). */
int plog_replace_segments(plog *l, int64_t new_base, const int64_t *old_bases, int nold);

#endif
