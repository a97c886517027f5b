/* index.h - a segment's sparse offset index (.index) and time index (.timeindex).
 *
 * On-disk formats are Kafka's, big-endian, no header:
 *   .index      8-byte entries: relative offset i32, file position i32
 *   .timeindex 12-byte entries: timestamp i64, relative offset i32
 * Entries are strictly increasing in every field. Instead of preallocating
 * and mmapping like Kafka, the files grow by one pwrite per entry and are
 * searched with pread (the pages stay in the page cache), so they never need
 * trimming and cost no memory per segment. Their descriptors come from the
 * LRU pool in fdcache.h, opened on use: an idle index holds no descriptor.
 * Kafka's segment.index.bytes still bounds them: an index is "full" at
 * max_bytes / entry size entries, which makes the log roll.
 */
#ifndef SAMSA_STORAGE_INDEX_H
#define SAMSA_STORAGE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#define OFFSET_INDEX_ENTRY 8
#define TIME_INDEX_ENTRY 12

typedef struct offset_index {
    const char *dir;      /* <dir>/<base>.index; the log owns dir */
    int64_t base;         /* segment base offset */
    bool dirty;           /* written since the last flush */
    int32_t entries;
    int32_t max_entries;
    int32_t last_rel;     /* last entry (valid when entries > 0) */
    int32_t last_pos;
} offset_index;

typedef struct time_index {
    const char *dir;      /* <dir>/<base>.timeindex */
    int64_t base;
    bool dirty;
    int32_t entries;
    int32_t max_entries;
    int64_t last_ts;      /* last entry; -1 / base when empty */
    int64_t last_offset;
} time_index;

/* Names the index file of the segment at base in dir, empty in memory. The
 * file must exist (seg_open creates it). */
void oidx_init(offset_index *x, const char *dir, int64_t base, int32_t max_bytes);
void tidx_init(time_index *x, const char *dir, int64_t base, int32_t max_bytes);
/* Check the file: every entry must be in order, relative offsets below
 * max_rel and positions below log_size. Returns 0 (valid, loaded), 1
 * (garbage: caller rebuilds), -1 on I/O error. */
int oidx_load(offset_index *x, int64_t log_size, int64_t max_rel);
int tidx_load(time_index *x, int64_t max_rel);
/* Truncate the file to empty. */
int oidx_reset(offset_index *x);
int tidx_reset(time_index *x);
/* Cut the file to its first n entries (rollback; in-memory state is the
 * caller's to restore). */
int oidx_set_entries(offset_index *x, int32_t n);
int tidx_set_entries(time_index *x, int32_t n);
/* fsync the file if written since the last flush. */
int oidx_flush(offset_index *x);
int tidx_flush(time_index *x);
/* The file is about to be renamed, deleted or left: release its descriptor. */
void oidx_close(offset_index *x);
void tidx_close(time_index *x);

static inline bool oidx_full(const offset_index *x) { return x->entries >= x->max_entries; }
static inline bool tidx_full(const time_index *x) { return x->entries >= x->max_entries; }
void oidx_set_max_bytes(offset_index *x, int32_t max_bytes);
void tidx_set_max_bytes(time_index *x, int32_t max_bytes);

/* Append (offset, pos); offset must exceed the last entry's. */
int oidx_append(offset_index *x, int64_t offset, int32_t pos);
/* Kafka's maybeAppend: adds (ts, offset) only if ts is larger than the last
 * entry's timestamp; honours fullness unless skip_full_check. */
int tidx_maybe_append(time_index *x, int64_t ts, int64_t offset, bool skip_full_check);

/* Largest entry with offset <= target; (base, 0) when none. */
int oidx_lookup(const offset_index *x, int64_t target, int64_t *offset, int32_t *pos);
/* Largest entry with file position <= pos; *found_pos = 0 when none. */
int oidx_lookup_pos(const offset_index *x, int64_t pos, int32_t *found_pos);
/* Largest entry with timestamp <= target; (-1, base) when none. */
int tidx_lookup(const time_index *x, int64_t target, int64_t *ts, int64_t *offset);

/* Drop entries whose offset is >= offset. */
int oidx_truncate_to(offset_index *x, int64_t offset);
int tidx_truncate_to(time_index *x, int64_t offset);

/* Read entry i (0 <= i < entries). */
int oidx_entry(const offset_index *x, int32_t i, int64_t *offset, int32_t *pos);
int tidx_entry(const time_index *x, int32_t i, int64_t *ts, int64_t *offset);

#endif
