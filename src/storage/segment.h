/* segment.h - one log segment: <base>.log with its .index and .timeindex.
 *
 * A segment owns its open .log file, the names of its two index files
 * (whose descriptors come and go through fdcache.h) and the in-memory summary the log needs
 * (size, largest timestamp, bytes since the last index entry). It appends
 * whole batches, scans batch headers from a position, rebuilds its indexes
 * (validating every batch when asked: recovery), and truncates. It knows
 * nothing about other segments, retention or leader epochs.
 */
#ifndef SAMSA_STORAGE_SEGMENT_H
#define SAMSA_STORAGE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/batch_header.h"
#include "storage/index.h"

#define SEG_LOG_SUFFIX ".log"
#define SEG_INDEX_SUFFIX ".index"
#define SEG_TIMEINDEX_SUFFIX ".timeindex"
#define SEG_DELETED_SUFFIX ".deleted"

typedef struct segment {
    int64_t base;
    int log_fd;
    int64_t size;              /* bytes in .log */
    offset_index oidx;
    time_index tidx;
    int64_t max_ts;            /* largest batch max timestamp, -1 if none */
    int64_t max_ts_offset;     /* last offset of the batch that holds it */
    int64_t rolling_ts;        /* max timestamp of the first batch, -1 if none */
    int64_t created_ms;        /* when opened/created (wall clock) */
    int64_t bytes_since_index;
    /* Disk space reserved ahead of the appends (fallocate FALLOC_FL_KEEP_SIZE:
     * the file size stays the data's, so the on-disk format and recovery are
     * unchanged). prealloc_chunk 0 = off. */
    int64_t prealloc_chunk;    /* grow the reservation by this much */
    int64_t prealloc_limit;    /* never reserve past this (segment.bytes) */
    int64_t alloc_end;         /* reserved up to here (0 = unknown/none) */
    bool prealloc_off;         /* a reservation failed: none more for this segment */
    /* seg_open found the log empty and emptied both index files by path (no
     * descriptors taken): nothing to load or rebuild. Read by the log's load. */
    bool opened_empty;
} segment;

/* State to roll an append back to. */
typedef struct seg_mark {
    int64_t size, max_ts, max_ts_offset, rolling_ts, bytes_since_index;
    offset_index oidx;
    time_index tidx;
} seg_mark;

/* What a scan found wrong, for the one-line recovery log. */
typedef struct seg_scan_result {
    int64_t valid_bytes;       /* bytes of good batches from position 0 */
    int64_t next_offset;       /* last good offset + 1, or base if none */
    int64_t truncated_bytes;
    char why[128];             /* empty when nothing was cut */
} seg_scan_result;

/* Called for each good batch during a rebuild (leader epoch cache). */
typedef int (*seg_batch_fn)(const batch_header *h, void *ctx);

/* "<dir>/<20-digit base><suffix>" into buf. */
int seg_path(char *buf, size_t cap, const char *dir, int64_t base, const char *suffix);

/* Opens (creating when create is true) the three files. Indexes are not
 * validated; call seg_load_indexes or seg_rebuild next. dir must outlive the
 * segment (it names the index files). */
int seg_open(segment *s, const char *dir, int64_t base, int32_t index_max_bytes, bool create, int64_t now_ms);
/* Validates and adopts existing index files. Returns 0, 1 when they are
 * unusable (call seg_rebuild), -1 on I/O error. next_offset bounds the
 * relative offsets (the next segment's base, or -1 if unknown). */
int seg_load_indexes(segment *s, int64_t next_offset);
/* Scans every batch from position 0, rebuilding both indexes and the
 * timestamp summary. With validate, checks each batch (magic, sizes, CRC,
 * increasing offsets) and truncates the file at the first bad one. */
int seg_rebuild(segment *s, int32_t index_interval, bool validate, seg_batch_fn fn, void *ctx,
                seg_scan_result *res);
/* The active segment of a log closed cleanly (Kafka's clean-shutdown marker):
 * its indexes are loaded as a sealed segment's, and only the batches from the
 * last indexed one on are read and checked (CRC included), for the next
 * offset, the largest timestamp and the first batch's (Kafka's
 * readNextOffset and loadLargestTimestamp). 0 with *next_offset; 1 when the
 * indexes or the tail do not add up (why says what; call seg_rebuild), -1
 * on an I/O error. */
int seg_load_tail(segment *s, int64_t *next_offset, char *why, size_t whylen);

/* Truncates both index files to empty. */
int seg_reset_indexes(segment *s);

void seg_mark_save(const segment *s, seg_mark *m);
/* Truncate files and summary back to the mark (undo a failed append). */
int seg_mark_restore(segment *s, const seg_mark *m);

/* Appends len bytes of batches whose offsets are already assigned. Adds
 * index entries per index_interval. On failure the segment is rolled back
 * and -1 returned with errno. */
int seg_append(segment *s, const uint8_t *data, size_t len, int32_t index_interval);
/* seg_append in the three steps an append whose data write runs elsewhere
 * takes (plog_append_begin): prepare saves the mark in m and reserves disk
 * ahead; then the caller writes the len bytes at m->size into log_fd (or
 * fails and calls seg_mark_restore); commit adds the index entries and the
 * size (on failure the segment is rolled back to m, -1 with errno). */
void seg_append_prepare(segment *s, size_t len, seg_mark *m);
int seg_append_commit(segment *s, const uint8_t *data, size_t len, int32_t index_interval, const seg_mark *m);

/* Reads a batch header at pos. Returns 0, 1 when no whole, sane batch
 * starts there (end of data), -1 on I/O error. */
int seg_read_header(const segment *s, int64_t pos, batch_header *h);
/* From `from_pos` (a batch boundary), finds the first batch whose last
 * offset >= offset. Returns 0 (pos, h set), 1 if none in the segment, -1. */
int seg_find_batch(const segment *s, int64_t from_pos, int64_t offset, int64_t *pos, batch_header *h);
/* Same, starting from the offset index entry for offset. */
int seg_translate_offset(const segment *s, int64_t offset, int64_t *pos, batch_header *h);

/* Drops every batch with last offset >= offset (whole batches) and the index
 * entries past it; recomputes the summary. */
int seg_truncate_to(segment *s, int64_t offset, int32_t index_interval);

/* Reserve disk space ahead of appends, chunk bytes at a time, up to limit
 * (the segment's size bound); chunk 0 turns it off. */
void seg_set_prealloc(segment *s, int64_t chunk, int64_t limit);
/* Returns space reserved past the data to the file system (roll, close). */
int seg_release_prealloc(segment *s);

/* Becoming inactive (roll) or closing: write the final time index entry and
 * release the reserved space past the data. */
int seg_seal(segment *s);
int seg_flush(segment *s);
void seg_close(segment *s);
/* Releases the index descriptors only (before renaming or deleting the files). */
void seg_close_indexes(segment *s);
/* Largest timestamp for retention: max_ts, or the file mtime when none. */
int64_t seg_largest_timestamp(const segment *s);

#endif
