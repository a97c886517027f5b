/* index.c - offset and time indexes on files (see index.h). */
#include "storage/index.h"

#include <errno.h>
#include <stdlib.h>

#include "protocol/batch_header.h"
#include "storage/fdcache.h"
#include "storage/fileio.h"
#include "storage/segment.h"

#define VALIDATE_CHUNK_ENTRIES 4096

static int32_t entries_for(int32_t max_bytes, int entry) {
    int32_t n = max_bytes / entry;
    return n > 0 ? n : 1;
}

void oidx_set_max_bytes(offset_index *x, int32_t max_bytes) {
    x->max_entries = entries_for(max_bytes, OFFSET_INDEX_ENTRY);
}
void tidx_set_max_bytes(time_index *x, int32_t max_bytes) {
    x->max_entries = entries_for(max_bytes, TIME_INDEX_ENTRY);
}

static int ofd(const offset_index *x) { return fdc_get(x->dir, x->base, SEG_INDEX_SUFFIX); }
static int tfd(const time_index *x) { return fdc_get(x->dir, x->base, SEG_TIMEINDEX_SUFFIX); }

static void oidx_empty(offset_index *x) {
    x->entries = 0;
    x->last_rel = -1;
    x->last_pos = -1;
}

static void tidx_empty(time_index *x) {
    x->entries = 0;
    x->last_ts = -1;
    x->last_offset = x->base;
}

void oidx_init(offset_index *x, const char *dir, int64_t base, int32_t max_bytes) {
    x->dir = dir;
    x->base = base;
    x->dirty = false;
    oidx_empty(x);
    oidx_set_max_bytes(x, max_bytes);
}

void tidx_init(time_index *x, const char *dir, int64_t base, int32_t max_bytes) {
    x->dir = dir;
    x->base = base;
    x->dirty = false;
    tidx_empty(x);
    tidx_set_max_bytes(x, max_bytes);
}

/* Sets the file's length (truncation, rollback). */
static int resize(int fd, int64_t len, bool *dirty) {
    if (fd < 0) return -1;
    *dirty = true;
    return storage_fio.ftruncate(fd, (off_t)len);
}

int oidx_reset(offset_index *x) {
    oidx_empty(x);
    return resize(ofd(x), 0, &x->dirty);
}

int tidx_reset(time_index *x) {
    tidx_empty(x);
    return resize(tfd(x), 0, &x->dirty);
}

int oidx_set_entries(offset_index *x, int32_t n) {
    return resize(ofd(x), (int64_t)n * OFFSET_INDEX_ENTRY, &x->dirty);
}

int tidx_set_entries(time_index *x, int32_t n) {
    return resize(tfd(x), (int64_t)n * TIME_INDEX_ENTRY, &x->dirty);
}

static int flush_fd(int fd, bool *dirty) {
    if (fd < 0 || storage_fio.fsync(fd) != 0) return -1;
    *dirty = false;
    return 0;
}

int oidx_flush(offset_index *x) { return x->dirty ? flush_fd(ofd(x), &x->dirty) : 0; }
int tidx_flush(time_index *x) { return x->dirty ? flush_fd(tfd(x), &x->dirty) : 0; }
void oidx_close(offset_index *x) { fdc_forget(x->dir, x->base, SEG_INDEX_SUFFIX); }
void tidx_close(time_index *x) { fdc_forget(x->dir, x->base, SEG_TIMEINDEX_SUFFIX); }

int oidx_entry(const offset_index *x, int32_t i, int64_t *offset, int32_t *pos) {
    uint8_t e[OFFSET_INDEX_ENTRY];
    int fd = ofd(x);
    if (fd < 0 || fio_pread_full(fd, e, sizeof e, (int64_t)i * OFFSET_INDEX_ENTRY) != 0) return -1;
    *offset = x->base + (int32_t)bh_get_u32(e);
    *pos = (int32_t)bh_get_u32(e + 4);
    return 0;
}

int tidx_entry(const time_index *x, int32_t i, int64_t *ts, int64_t *offset) {
    uint8_t e[TIME_INDEX_ENTRY];
    int fd = tfd(x);
    if (fd < 0 || fio_pread_full(fd, e, sizeof e, (int64_t)i * TIME_INDEX_ENTRY) != 0) return -1;
    *ts = (int64_t)bh_get_u64(e);
    *offset = x->base + (int32_t)bh_get_u32(e + 8);
    return 0;
}

int oidx_load(offset_index *x, int64_t log_size, int64_t max_rel) {
    oidx_empty(x);
    int fd = ofd(x);
    if (fd < 0) return -1;
    int64_t size = fio_file_size(fd);
    if (size < 0) return -1;
    if (size % OFFSET_INDEX_ENTRY) return 1;
    if (size / OFFSET_INDEX_ENTRY > INT32_MAX) return 1;
    int32_t n = (int32_t)(size / OFFSET_INDEX_ENTRY);
    uint8_t *buf = malloc(VALIDATE_CHUNK_ENTRIES * OFFSET_INDEX_ENTRY);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int64_t prev_rel = -1, prev_pos = -1;
    for (int32_t i = 0; i < n; i += VALIDATE_CHUNK_ENTRIES) {
        int32_t k = n - i < VALIDATE_CHUNK_ENTRIES ? n - i : VALIDATE_CHUNK_ENTRIES;
        if (fio_pread_full(fd, buf, (size_t)k * OFFSET_INDEX_ENTRY, (int64_t)i * OFFSET_INDEX_ENTRY) != 0) {
            free(buf);
            return -1;
        }
        for (int32_t j = 0; j < k; j++) {
            int64_t rel = (int32_t)bh_get_u32(buf + j * OFFSET_INDEX_ENTRY);
            int64_t pos = (int32_t)bh_get_u32(buf + j * OFFSET_INDEX_ENTRY + 4);
            if (rel <= prev_rel || pos <= prev_pos || rel > max_rel || pos >= log_size) {
                free(buf);
                return 1;
            }
            prev_rel = rel;
            prev_pos = pos;
        }
    }
    free(buf);
    x->entries = n;
    x->last_rel = (int32_t)prev_rel;
    x->last_pos = (int32_t)prev_pos;
    return 0;
}

int tidx_load(time_index *x, int64_t max_rel) {
    tidx_empty(x);
    int fd = tfd(x);
    if (fd < 0) return -1;
    int64_t size = fio_file_size(fd);
    if (size < 0) return -1;
    if (size % TIME_INDEX_ENTRY) return 1;
    if (size / TIME_INDEX_ENTRY > INT32_MAX) return 1;
    int32_t n = (int32_t)(size / TIME_INDEX_ENTRY);
    uint8_t *buf = malloc(VALIDATE_CHUNK_ENTRIES * TIME_INDEX_ENTRY);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int64_t prev_ts = -1, prev_rel = -1;
    for (int32_t i = 0; i < n; i += VALIDATE_CHUNK_ENTRIES) {
        int32_t k = n - i < VALIDATE_CHUNK_ENTRIES ? n - i : VALIDATE_CHUNK_ENTRIES;
        if (fio_pread_full(fd, buf, (size_t)k * TIME_INDEX_ENTRY, (int64_t)i * TIME_INDEX_ENTRY) != 0) {
            free(buf);
            return -1;
        }
        for (int32_t j = 0; j < k; j++) {
            int64_t ts = (int64_t)bh_get_u64(buf + j * TIME_INDEX_ENTRY);
            int64_t rel = (int32_t)bh_get_u32(buf + j * TIME_INDEX_ENTRY + 8);
            /* Offsets may repeat (the closing entry can reuse the last
             * offset with a larger timestamp) but never go back. */
            if (ts <= prev_ts || rel < prev_rel || rel < 0 || rel > max_rel) {
                free(buf);
                return 1;
            }
            prev_ts = ts;
            prev_rel = rel;
        }
    }
    free(buf);
    x->entries = n;
    if (n > 0) {
        x->last_ts = prev_ts;
        x->last_offset = x->base + prev_rel;
    }
    return 0;
}

int oidx_append(offset_index *x, int64_t offset, int32_t pos) {
    int64_t rel = offset - x->base;
    if (rel < 0 || rel > INT32_MAX || (x->entries > 0 && (rel <= x->last_rel || pos <= x->last_pos))) {
        errno = EINVAL;
        return -1;
    }
    uint8_t e[OFFSET_INDEX_ENTRY];
    bh_put_u32(e, (uint32_t)rel);
    bh_put_u32(e + 4, (uint32_t)pos);
    int fd = ofd(x);
    if (fd < 0 || fio_pwrite_full(fd, e, sizeof e, (int64_t)x->entries * OFFSET_INDEX_ENTRY) != 0) return -1;
    x->dirty = true;
    x->entries++;
    x->last_rel = (int32_t)rel;
    x->last_pos = pos;
    return 0;
}

int tidx_maybe_append(time_index *x, int64_t ts, int64_t offset, bool skip_full_check) {
    if (!skip_full_check && tidx_full(x)) return 0;
    if (ts <= x->last_ts) return 0;
    int64_t rel = offset - x->base;
    if (rel < 0 || rel > INT32_MAX || (x->entries > 0 && offset < x->last_offset)) {
        errno = EINVAL;
        return -1;
    }
    uint8_t e[TIME_INDEX_ENTRY];
    bh_put_u64(e, (uint64_t)ts);
    bh_put_u32(e + 8, (uint32_t)rel);
    int fd = tfd(x);
    if (fd < 0 || fio_pwrite_full(fd, e, sizeof e, (int64_t)x->entries * TIME_INDEX_ENTRY) != 0) return -1;
    x->dirty = true;
    x->entries++;
    x->last_ts = ts;
    x->last_offset = offset;
    return 0;
}

int oidx_lookup(const offset_index *x, int64_t target, int64_t *offset, int32_t *pos) {
    *offset = x->base;
    *pos = 0;
    if (x->entries == 0 || target < x->base) return 0;
    if (target >= x->base + x->last_rel) { /* the common tail case, no I/O */
        *offset = x->base + x->last_rel;
        *pos = x->last_pos;
        return 0;
    }
    int32_t lo = 0, hi = x->entries - 1, found = -1; /* invariant: answer in [lo, hi] or none */
    int64_t found_off = 0;
    int32_t found_pos = 0;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int64_t o;
        int32_t p;
        if (oidx_entry(x, mid, &o, &p) != 0) return -1;
        if (o <= target) {
            found = mid;
            found_off = o;
            found_pos = p;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (found >= 0) {
        *offset = found_off;
        *pos = found_pos;
    }
    return 0;
}

int oidx_lookup_pos(const offset_index *x, int64_t pos, int32_t *found_pos) {
    *found_pos = 0;
    int32_t lo = 0, hi = x->entries - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int64_t o;
        int32_t p;
        if (oidx_entry(x, mid, &o, &p) != 0) return -1;
        if (p <= pos) {
            *found_pos = p;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return 0;
}

int tidx_lookup(const time_index *x, int64_t target, int64_t *ts, int64_t *offset) {
    *ts = -1;
    *offset = x->base;
    int32_t lo = 0, hi = x->entries - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int64_t t, o;
        if (tidx_entry(x, mid, &t, &o) != 0) return -1;
        if (t <= target) {
            *ts = t;
            *offset = o;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return 0;
}

int oidx_truncate_to(offset_index *x, int64_t offset) {
    /* Keep the entries whose offset is below `offset`. */
    int32_t keep = 0;
    int32_t lo = 0, hi = x->entries - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int64_t o;
        int32_t p;
        if (oidx_entry(x, mid, &o, &p) != 0) return -1;
        if (o < offset) {
            keep = mid + 1;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (keep == x->entries) return 0;
    if (oidx_set_entries(x, keep) != 0) return -1;
    x->entries = keep;
    x->last_rel = -1;
    x->last_pos = -1;
    if (keep > 0) {
        int64_t o;
        if (oidx_entry(x, keep - 1, &o, &x->last_pos) != 0) return -1;
        x->last_rel = (int32_t)(o - x->base);
    }
    return 0;
}

int tidx_truncate_to(time_index *x, int64_t offset) {
    int32_t keep = 0;
    int32_t lo = 0, hi = x->entries - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int64_t t, o;
        if (tidx_entry(x, mid, &t, &o) != 0) return -1;
        if (o < offset) {
            keep = mid + 1;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (keep == x->entries) return 0;
    if (tidx_set_entries(x, keep) != 0) return -1;
    x->entries = keep;
    x->last_ts = -1;
    x->last_offset = x->base;
    if (keep > 0 && tidx_entry(x, keep - 1, &x->last_ts, &x->last_offset) != 0) return -1;
    return 0;
}
