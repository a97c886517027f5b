/* offset_map.c - Kafka's SkimpyOffsetMap (see offset_map.h). */
#include "storage/offset_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "protocol/batch_header.h"

int omap_init(offset_map *m, int64_t memory_bytes, double load_factor) {
    memset(m, 0, sizeof *m);
    if (memory_bytes > INT32_MAX) memory_bytes = INT32_MAX;
    int64_t slots = memory_bytes > 0 ? memory_bytes / OMAP_ENTRY_SIZE : 0;
    if (!(load_factor > 0 && load_factor <= 1) || (double)slots * load_factor <= 1) {
        errno = EINVAL;
        return -1;
    }
    m->slots_mem = calloc((size_t)slots, OMAP_ENTRY_SIZE);
    if (!m->slots_mem) return -1;
    m->slots = (int32_t)slots;
    m->max_entries = (int32_t)((double)slots * load_factor);
    m->latest_offset = -1;
    return 0;
}

void omap_free(offset_map *m) {
    free(m->slots_mem);
    memset(m, 0, sizeof *m);
}

void omap_clear(offset_map *m) {
    if (m->slots_mem) memset(m->slots_mem, 0, (size_t)m->slots * OMAP_ENTRY_SIZE);
    m->entries = 0;
    m->lookups = m->probes = 0;
    m->latest_offset = -1;
}

void omap_hash(const uint8_t *key, size_t len, uint8_t out[OMAP_HASH_SIZE]) {
    unsigned int n = 0;
    static const uint8_t empty[1];
    if (!EVP_Digest(key ? key : empty, len, out, &n, EVP_md5(), NULL) || n != OMAP_HASH_SIZE)
        abort(); /* MD5 is always available in libcrypto */
}

static bool slot_empty(const uint8_t *e) {
    for (int i = 0; i < OMAP_ENTRY_SIZE; i++)
        if (e[i]) return false;
    return true;
}

/* Kafka's positionOf: probe = readIntBE(hash, min(attempt, 12)) +
 * max(0, attempt - 12); slot = Utils.abs(probe) % slots. */
static uint8_t *slot_of(offset_map *m, const uint8_t *hash, int attempt) {
    int lim = OMAP_HASH_SIZE - 4;
    int32_t probe = (int32_t)(bh_get_u32(hash + (attempt < lim ? attempt : lim)) +
                              (uint32_t)(attempt > lim ? attempt - lim : 0));
    /* Utils.abs: Integer.MIN_VALUE maps to 0 */
    int64_t pos = probe == INT32_MIN ? 0 : (probe < 0 ? -(int64_t)probe : probe);
    m->probes++;
    return m->slots_mem + (size_t)(pos % m->slots) * OMAP_ENTRY_SIZE;
}

int omap_put(offset_map *m, const uint8_t *key, size_t len, int64_t offset) {
    uint8_t hash[OMAP_HASH_SIZE];
    omap_hash(key, len, hash);
    m->lookups++;
    for (int attempt = 0; attempt <= m->slots + OMAP_HASH_SIZE; attempt++) {
        uint8_t *e = slot_of(m, hash, attempt);
        if (slot_empty(e)) {
            if (m->entries >= m->slots) break;
            memcpy(e, hash, OMAP_HASH_SIZE);
            bh_put_u64(e + OMAP_HASH_SIZE, (uint64_t)offset);
            m->entries++;
            m->latest_offset = offset;
            return 0;
        }
        if (memcmp(e, hash, OMAP_HASH_SIZE) == 0) {
            bh_put_u64(e + OMAP_HASH_SIZE, (uint64_t)offset);
            m->latest_offset = offset;
            return 0;
        }
    }
    errno = ENOSPC;
    return -1;
}

int64_t omap_get(offset_map *m, const uint8_t *key, size_t len) {
    uint8_t hash[OMAP_HASH_SIZE];
    omap_hash(key, len, hash);
    m->lookups++;
    /* Kafka probes until an empty slot; the bound only guards a full map. */
    for (int attempt = 0; attempt <= m->slots + OMAP_HASH_SIZE; attempt++) {
        uint8_t *e = slot_of(m, hash, attempt);
        if (slot_empty(e)) return -1;
        if (memcmp(e, hash, OMAP_HASH_SIZE) == 0) return (int64_t)bh_get_u64(e + OMAP_HASH_SIZE);
    }
    return -1;
}
