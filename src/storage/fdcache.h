/* fdcache.h - a bounded pool of open descriptors for segment index files.
 *
 * Every segment has an offset index and a time index, but most of them are
 * idle most of the time: an empty partition never touches its indexes, a
 * sealed segment only when a fetch or ListOffsets lands in it. Keeping both
 * open for every segment cost two descriptors per partition, which capped a
 * node at ~6,600 partitions under a 20,000-descriptor limit. Instead the
 * index files are opened on use and kept in this least-recently-used pool;
 * an evicted descriptor is closed and reopened by path when needed again
 * (closing loses nothing: the data is in the page cache, and fsync on a new
 * descriptor flushes the same inode).
 *
 * A file is named by (dir, base, suffix), the parts of its path. dir is
 * compared by pointer: it is owned by the partition's log and outlives every
 * segment in it; suffix (one of the SEG_*_SUFFIX strings) by content.
 * Whoever renames, deletes or stops using a file calls fdc_forget first.
 * Descriptors from the pool are valid until the next fdc_* call; callers
 * never keep them. Single-threaded, like the rest of the storage engine.
 */
#ifndef SAMSA_STORAGE_FDCACHE_H
#define SAMSA_STORAGE_FDCACHE_H

#include <stdint.h>

/* Upper bound of the pool; fdc_set_capacity may lower it. */
#define FDC_MAX_CAPACITY 4096
#define FDC_DEFAULT_CAPACITY 1024

/* Descriptor for the file, opening it (O_RDWR, never creating) on a miss.
 * Returns -1 with errno when it cannot be opened. */
int fdc_get(const char *dir, int64_t base, const char *suffix);
/* Hands an already open descriptor to the pool (which closes it later). */
void fdc_adopt(const char *dir, int64_t base, const char *suffix, int fd);
/* Closes and drops the file's descriptor, if pooled. */
void fdc_forget(const char *dir, int64_t base, const char *suffix);

/* Pool size (clamped to 16..FDC_MAX_CAPACITY); evicts down to it. */
void fdc_set_capacity(int n);
/* How many descriptors the pool holds now (tests, bench). */
int fdc_open_count(void);

#endif
