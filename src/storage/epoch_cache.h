/* epoch_cache.h - a partition's leader epoch cache (leader-epoch-checkpoint).
 *
 * An ordered list of (epoch, start offset): the first offset written in each
 * leader epoch. It answers OffsetForLeaderEpoch and is kept consistent with
 * the log by truncation at both ends. Every change is written through to
 * the checkpoint file atomically before it becomes visible; when the write
 * fails the in-memory list is left as it was. Semantics follow Kafka 3.6.1's
 * LeaderEpochFileCache.
 */
#ifndef SAMSA_STORAGE_EPOCH_CACHE_H
#define SAMSA_STORAGE_EPOCH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/checkpoint.h"

typedef struct epoch_cache {
    char *path;           /* owned */
    epoch_entry *v;       /* owned; ascending in both fields */
    size_t n, cap;
    bool lazy;            /* write without fsync (a partition being created) */
} epoch_cache;

/* Loads path (absent = empty). Malformed files are treated as empty, as the
 * log recovery refills the cache from batch headers. */
int ec_open(epoch_cache *c, const char *path);
/* The cache of a checkpoint file known to hold exactly v[0..n) (one just
 * written, ascending): as ec_open of it, without reading it back. */
int ec_open_known(epoch_cache *c, const char *path, const epoch_entry *v, size_t n);
void ec_close(epoch_cache *c);

/* Records that `epoch` starts at `start_offset`, dropping conflicting later
 * entries; a no-op when it is already the latest with that start. */
int ec_assign(epoch_cache *c, int32_t epoch, int64_t start_offset);
/* Drops entries starting at or after end_offset (log truncated). */
int ec_truncate_from_end(epoch_cache *c, int64_t end_offset);
/* Log start moved to start_offset: entries starting at or before it
 * collapse into the latest of them, rewritten to start there. */
int ec_truncate_from_start(epoch_cache *c, int64_t start_offset);
/* Removes every entry and the file's contents. */
int ec_clear(epoch_cache *c);

int32_t ec_latest_epoch(const epoch_cache *c); /* -1 when empty */
/* Kafka's endOffsetFor; (-1, -1) for an undefined answer. */
void ec_end_offset_for(const epoch_cache *c, int32_t epoch, int64_t log_end_offset, int32_t *epoch_out,
                       int64_t *end_offset);
/* Epoch of the entry covering offset, -1 when none (Kafka's epochForOffset). */
int32_t ec_epoch_for_offset(const epoch_cache *c, int64_t offset);

#endif
