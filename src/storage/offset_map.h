/* offset_map.h - the log cleaner's key -> latest offset map, Kafka 3.6.1's
 * SkimpyOffsetMap.
 *
 * A fixed block of memory (log.cleaner.dedupe.buffer.size divided by
 * log.cleaner.threads, as LogCleaner sizes it) holds slots of 24 bytes: the
 * MD5 of a key (16 bytes) and the latest offset seen for it (8 bytes). Keys
 * are never stored, so two keys with the same MD5 share a slot (Kafka accepts
 * that). Collisions of slots are resolved by Kafka's probing: the first probes
 * read successive 4-byte windows of the hash, later ones step linearly. The
 * cleaner stops filling the map at slots * load factor
 * (log.cleaner.io.buffer.load.factor, 0.9) so lookups stay short: see
 * omap_full(). An all-zero slot is empty (a zero hash with offset 0 would
 * read as empty: Kafka has the same one-in-2^128 blind spot).
 */
#ifndef SAMSA_STORAGE_OFFSET_MAP_H
#define SAMSA_STORAGE_OFFSET_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OMAP_HASH_SIZE 16
#define OMAP_ENTRY_SIZE (OMAP_HASH_SIZE + 8)
#define OMAP_DEFAULT_LOAD_FACTOR 0.9

typedef struct offset_map {
    uint8_t *slots_mem;   /* slots * OMAP_ENTRY_SIZE bytes, owned */
    int32_t slots;
    int32_t entries;
    int32_t max_entries;  /* (int)(slots * load_factor): what the cleaner may fill */
    int64_t latest_offset;/* last offset put or set, -1 after clear */
    int64_t lookups, probes;
} offset_map;

/* Allocates a map over memory_bytes (Kafka: min(dedupe buffer / threads,
 * INT32_MAX)). Fails (-1, EINVAL) when slots * load_factor <= 1: Kafka's
 * "offset map is too small to fit in even a single message". */
int omap_init(offset_map *m, int64_t memory_bytes, double load_factor);
void omap_free(offset_map *m);
void omap_clear(offset_map *m);

/* Kafka's hashInto: MD5 of the key bytes. */
void omap_hash(const uint8_t *key, size_t len, uint8_t out[OMAP_HASH_SIZE]);

/* Records offset as the latest for key (overwrites an existing entry) and
 * as the map's latest offset. -1 (ENOSPC) when every slot is taken. */
int omap_put(offset_map *m, const uint8_t *key, size_t len, int64_t offset);
/* Latest offset recorded for key, or -1. */
int64_t omap_get(offset_map *m, const uint8_t *key, size_t len);
/* Kafka's updateLatestOffset. */
static inline void omap_set_latest(offset_map *m, int64_t offset) { m->latest_offset = offset; }
/* The cleaner stops adding keys once entries reach slots * load factor. */
static inline bool omap_full(const offset_map *m) { return m->entries >= m->max_entries; }
static inline double omap_utilization(const offset_map *m) {
    return m->slots ? (double)m->entries / m->slots : 0;
}

#endif
