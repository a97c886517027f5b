/* segment.c - one log segment and its indexes (see segment.h). */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/fdcache.h"
#include "storage/fileio.h"
#include "util/crc32c.h"

/* Smallest batchLength a v2 batch can have: header minus the 12-byte
 * offset+length prefix, with zero records. */
#define MIN_BATCH_LENGTH (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD)
#define SCAN_WINDOW (1u << 20)

int seg_path(char *buf, size_t cap, const char *dir, int64_t base, const char *suffix) {
    int n = snprintf(buf, cap, "%s/%020" PRId64 "%s", dir, base, suffix);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Makes sure an index file exists (*created tells whether it had to be
 * made) and leaves its descriptor in the pool for the first use. */
static int open_index(const char *dir, int64_t base, const char *suffix, bool *created) {
    char path[PATH_MAX];
    if (seg_path(path, sizeof path, dir, base, suffix) != 0) return -1;
    int fd = storage_fio.open(path, O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        *created = true;
        fd = storage_fio.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) return -1;
    fdc_adopt(dir, base, suffix, fd);
    return 0;
}

/* An index of an empty log indexes nothing: emptied (or made) by path, so a
 * start-up opening thousands of empty partitions takes no descriptors. */
static int empty_index(const char *dir, int64_t base, const char *suffix) {
    char path[PATH_MAX];
    if (seg_path(path, sizeof path, dir, base, suffix) != 0) return -1;
    /* a descriptor pooled for an earlier file at this path (a cleaned
     * segment replacing one at the same base) must not be used for this one */
    fdc_forget(dir, base, suffix);
    /* Already empty (a partition made off the loop, or never indexed): left alone. A truncate to
     * zero makes ext4 start writeback when the file is next closed (auto_da_alloc), on the loop,
     * e.g. for every index of a topic being deleted. */
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == 0) return 0;
    if (storage_fio.truncate(path, 0) == 0) return 0;
    if (errno != ENOENT) return -1;
    bool created;
    return open_index(dir, base, suffix, &created);
}

int seg_open(segment *s, const char *dir, int64_t base, int32_t index_max_bytes, bool create, int64_t now_ms) {
    memset(s, 0, sizeof *s);
    s->base = base;
    s->log_fd = -1;
    oidx_init(&s->oidx, dir, base, index_max_bytes);
    tidx_init(&s->tidx, dir, base, index_max_bytes);
    s->max_ts = s->rolling_ts = -1;
    s->max_ts_offset = base;
    s->created_ms = now_ms;
    char path[PATH_MAX];
    if (seg_path(path, sizeof path, dir, base, SEG_LOG_SUFFIX) != 0) return -1;
    s->log_fd = storage_fio.open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (s->log_fd < 0) return -1;
    bool created = false;
    int64_t size = fio_file_size(s->log_fd);
    s->opened_empty = size == 0 && !create;
    int rc = -1;
    if (size >= 0 && s->opened_empty)
        rc = empty_index(dir, base, SEG_INDEX_SUFFIX) != 0 || empty_index(dir, base, SEG_TIMEINDEX_SUFFIX) != 0;
    else if (size >= 0)
        rc = open_index(dir, base, SEG_INDEX_SUFFIX, &created) != 0 ||
             open_index(dir, base, SEG_TIMEINDEX_SUFFIX, &created) != 0;
    if (rc != 0) {
        int saved = errno;
        seg_close(s);
        errno = saved;
        return -1;
    }
    s->size = size;
    /* A freshly created index says nothing about existing data. */
    if (created && size > 0) s->bytes_since_index = -1;
    return 0;
}

int seg_load_indexes(segment *s, int64_t next_offset) {
    if (s->bytes_since_index < 0) return 1; /* an index file was missing */
    int64_t max_rel = next_offset > s->base ? next_offset - 1 - s->base : INT32_MAX;
    if (max_rel > INT32_MAX) max_rel = INT32_MAX;
    int rc = oidx_load(&s->oidx, s->size, max_rel);
    if (rc != 0) return rc;
    rc = tidx_load(&s->tidx, max_rel);
    if (rc != 0) return rc;
    s->max_ts = s->tidx.last_ts;
    s->max_ts_offset = s->tidx.last_offset;
    /* Only the active segment appends; it is always rebuilt on open. */
    s->bytes_since_index = s->oidx.entries ? s->size - s->oidx.last_pos : s->size;
    return 0;
}

/* A sliding read buffer over the log file for sequential scans. */
typedef struct scan_window {
    int fd;
    uint8_t *buf;
    size_t cap;
    int64_t start;
    size_t len;
} scan_window;

/* n bytes at pos (n <= cap, pos+n within the file) or NULL on I/O error. */
static const uint8_t *win_get(scan_window *w, int64_t pos, size_t n, int64_t file_size) {
    if (pos >= w->start && pos + (int64_t)n <= w->start + (int64_t)w->len) return w->buf + (pos - w->start);
    int64_t want = file_size - pos;
    if (want > (int64_t)w->cap) want = (int64_t)w->cap;
    if (want < (int64_t)n) {
        errno = ENODATA;
        return NULL;
    }
    if (fio_pread_full(w->fd, w->buf, (size_t)want, pos) != 0) return NULL;
    w->start = pos;
    w->len = (size_t)want;
    return w->buf;
}

int seg_reset_indexes(segment *s) {
    if (oidx_reset(&s->oidx) != 0) return -1;
    return tidx_reset(&s->tidx);
}

/* Checks the batch at pos of a segment file of size bytes: framing, magic,
 * offsets after prev_last (and within the segment), and with validate its
 * CRC. 0 with *h filled, 1 when it is not a good batch (why says what is
 * wrong), -1 on an I/O error. */
static int check_batch(scan_window *w, const segment *s, int64_t pos, int64_t prev_last, bool validate,
                       batch_header *h, char *why, size_t whylen) {
    int64_t left = s->size - pos;
    if (left < BATCH_HEADER_SIZE) {
        snprintf(why, whylen, "partial batch header (%" PRId64 " bytes)", left);
        return 1;
    }
    const uint8_t *p = win_get(w, pos, BATCH_HEADER_SIZE, s->size);
    if (!p) return -1;
    batch_header_parse(p, h);
    int64_t total = (int64_t)h->batch_length + BATCH_LOG_OVERHEAD;
    if (h->batch_length < MIN_BATCH_LENGTH) {
        snprintf(why, whylen, "batch length %" PRId32 " too small", h->batch_length);
        return 1;
    }
    if (total > left) {
        snprintf(why, whylen, "batch of %" PRId64 " bytes runs past the end (torn write)", total);
        return 1;
    }
    if (h->magic != 2) {
        snprintf(why, whylen, "magic %d is not 2", h->magic);
        return 1;
    }
    /* prev_last >= s->base - 1, so once base_offset passes it the
     * subtraction below cannot overflow. */
    int64_t last = batch_last_offset(h);
    if (h->last_offset_delta < 0 || h->base_offset <= prev_last ||
        h->base_offset - s->base > (int64_t)INT32_MAX - h->last_offset_delta) {
        snprintf(why, whylen, "offsets %" PRId64 "..%" PRId64 " out of order after %" PRId64, h->base_offset, last,
                 prev_last);
        return 1;
    }
    if (!validate) return 0;
    uint32_t crc = 0;
    int64_t at = pos + BATCH_OFF_ATTRIBUTES, end = pos + total;
    while (at < end) {
        size_t n = end - at < (int64_t)w->cap ? (size_t)(end - at) : w->cap;
        const uint8_t *q = win_get(w, at, n, s->size);
        if (!q) return -1;
        crc = crc32c(crc, q, n);
        at += (int64_t)n;
    }
    if (crc != h->crc) {
        snprintf(why, whylen, "CRC mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")", h->crc, crc);
        return 1;
    }
    return 0;
}

int seg_rebuild(segment *s, int32_t index_interval, bool validate, seg_batch_fn fn, void *ctx,
                seg_scan_result *res) {
    memset(res, 0, sizeof *res);
    if (seg_reset_indexes(s) != 0) return -1;
    scan_window w = {s->log_fd, malloc(SCAN_WINDOW), SCAN_WINDOW, 0, 0};
    if (!w.buf) {
        errno = ENOMEM;
        return -1;
    }
    s->max_ts = s->rolling_ts = -1;
    s->max_ts_offset = s->base;
    int64_t pos = 0, last_index_pos = 0, prev_last = s->base - 1;
    int rc = 0;
    while (pos < s->size) {
        batch_header h;
        int bad = check_batch(&w, s, pos, prev_last, validate, &h, res->why, sizeof res->why);
        if (bad < 0) rc = -1;
        if (bad) break;
        int64_t last = batch_last_offset(&h);
        if (s->rolling_ts < 0 && pos == 0) s->rolling_ts = h.max_timestamp;
        if (h.max_timestamp > s->max_ts) {
            s->max_ts = h.max_timestamp;
            s->max_ts_offset = last;
        }
        if (pos - last_index_pos > index_interval && !oidx_full(&s->oidx)) {
            if (oidx_append(&s->oidx, last, (int32_t)pos) != 0 ||
                tidx_maybe_append(&s->tidx, s->max_ts, s->max_ts_offset, false) != 0) {
                rc = -1;
                break;
            }
            last_index_pos = pos;
        }
        if (fn && fn(&h, ctx) != 0) {
            rc = -1;
            break;
        }
        prev_last = last;
        pos += (int64_t)h.batch_length + BATCH_LOG_OVERHEAD;
    }
    free(w.buf);
    if (rc) return -1;
    res->valid_bytes = pos;
    res->next_offset = prev_last + 1;
    res->truncated_bytes = s->size - pos;
    if (pos < s->size) {
        if (storage_fio.ftruncate(s->log_fd, pos) != 0) return -1;
        s->size = pos;
        s->alloc_end = 0; /* the shrink released what was reserved */
    }
    s->bytes_since_index = pos - last_index_pos;
    /* A closed segment always ends with its largest timestamp indexed. */
    return tidx_maybe_append(&s->tidx, s->max_ts, s->max_ts_offset, true);
}

int seg_load_tail(segment *s, int64_t *next_offset, char *why, size_t whylen) {
    why[0] = 0;
    int rc = seg_load_indexes(s, s->base); /* the end is not known yet: any offset in range */
    if (rc != 0) {
        if (rc == 1) snprintf(why, whylen, "its indexes are unusable");
        return rc;
    }
    *next_offset = s->base;
    if (s->size == 0) return s->oidx.entries ? (snprintf(why, whylen, "an index of an empty log"), 1) : 0;
    scan_window w = {s->log_fd, malloc(SCAN_WINDOW), SCAN_WINDOW, 0, 0};
    if (!w.buf) {
        errno = ENOMEM;
        return -1;
    }
    batch_header h;
    rc = 0;
    /* The first batch's timestamp decides time-based rolls (segment.ms). */
    if (s->oidx.entries > 0) {
        rc = check_batch(&w, s, 0, s->base - 1, false, &h, why, whylen);
        if (rc == 0) s->rolling_ts = h.max_timestamp;
    }
    /* The last indexed batch maps its last offset to its position. */
    int64_t pos = s->oidx.entries ? s->oidx.last_pos : 0;
    int64_t expect_last = s->oidx.entries ? s->base + s->oidx.last_rel : -1;
    int64_t prev_last = s->base - 1;
    while (rc == 0 && pos < s->size) {
        rc = check_batch(&w, s, pos, prev_last, true, &h, why, whylen);
        if (rc != 0) break;
        int64_t last = batch_last_offset(&h);
        if (expect_last >= 0) {
            if (last != expect_last) {
                snprintf(why, whylen, "its last index entry names offset %" PRId64 ", the batch there ends at %" PRId64,
                         expect_last, last);
                rc = 1;
                break;
            }
            expect_last = -1;
        }
        if (pos == 0) s->rolling_ts = h.max_timestamp;
        if (h.max_timestamp > s->max_ts) {
            s->max_ts = h.max_timestamp;
            s->max_ts_offset = last;
        }
        prev_last = last;
        pos += (int64_t)h.batch_length + BATCH_LOG_OVERHEAD;
    }
    free(w.buf);
    if (rc != 0) return rc;
    if (s->tidx.entries > 0 && s->tidx.last_offset > prev_last) {
        snprintf(why, whylen, "its time index names offset %" PRId64 ", past the last batch", s->tidx.last_offset);
        return 1;
    }
    *next_offset = prev_last + 1;
    return 0;
}

void seg_mark_save(const segment *s, seg_mark *m) {
    m->size = s->size;
    m->max_ts = s->max_ts;
    m->max_ts_offset = s->max_ts_offset;
    m->rolling_ts = s->rolling_ts;
    m->bytes_since_index = s->bytes_since_index;
    m->oidx = s->oidx;
    m->tidx = s->tidx;
}

int seg_mark_restore(segment *s, const seg_mark *m) {
    int rc = 0;
    if (storage_fio.ftruncate(s->log_fd, m->size) != 0) rc = -1;
    s->alloc_end = 0; /* a shrink releases what was reserved */
    bool odirty = s->oidx.dirty, tdirty = s->tidx.dirty;
    if (s->oidx.entries != m->oidx.entries && oidx_set_entries(&s->oidx, m->oidx.entries) != 0) rc = -1;
    if (s->tidx.entries != m->tidx.entries && tidx_set_entries(&s->tidx, m->tidx.entries) != 0) rc = -1;
    s->size = m->size;
    s->max_ts = m->max_ts;
    s->max_ts_offset = m->max_ts_offset;
    s->rolling_ts = m->rolling_ts;
    s->bytes_since_index = m->bytes_since_index;
    s->oidx = m->oidx;
    s->tidx = m->tidx;
    s->oidx.dirty |= odirty; /* the files changed since the mark */
    s->tidx.dirty |= tdirty;
    return rc;
}

void seg_set_prealloc(segment *s, int64_t chunk, int64_t limit) {
    s->prealloc_chunk = chunk > 0 && !s->prealloc_off ? chunk : 0;
    s->prealloc_limit = limit;
}

/* Makes sure [size, size+len) is reserved ahead (fallocate KEEP_SIZE).
 * Best effort: when the file system cannot (EOPNOTSUPP) or the disk is full
 * (ENOSPC), whatever part was reserved is given back, this segment reserves
 * no more, and the write allocates as usual (reporting ENOSPC itself). */
static void reserve_ahead(segment *s, size_t len) {
    int64_t need = s->size + (int64_t)len;
    if (s->prealloc_chunk <= 0 || need <= s->alloc_end) return;
    /* In steps smaller than the segment, only a segment already holding a
     * step's worth reserves: a quiet partition never holds disk it does not
     * use, a busy one at most a step more than its data. */
    if (s->prealloc_chunk < s->prealloc_limit && s->size < s->prealloc_chunk) return;
    int64_t from = s->alloc_end > s->size ? s->alloc_end : s->size;
    int64_t end = from + s->prealloc_chunk;
    if (end > s->prealloc_limit) end = s->prealloc_limit;
    if (end < need) end = need;
    if (storage_fio.fallocate(s->log_fd, FALLOC_FL_KEEP_SIZE, from, end - from) != 0) {
        int saved = errno;
        s->prealloc_off = true;
        s->prealloc_chunk = 0;
        (void)seg_release_prealloc(s);
        errno = saved;
        return;
    }
    s->alloc_end = end;
}

int seg_release_prealloc(segment *s) {
    if (s->log_fd < 0) return 0;
    struct stat st;
    if (storage_fio.fstat(s->log_fd, &st) != 0) return -1;
    s->alloc_end = 0;
    /* Blocks past the end of the data (with some slack for the extent tree's
     * own blocks): ours from reserve_ahead, or left by a crash. */
    int64_t data_blocks = (s->size + 4095) / 4096 * 4096;
    if ((int64_t)st.st_blocks * 512 <= data_blocks + (64 << 10)) return 0;
    /* ext4 frees blocks past EOF only when a truncate shrinks the file.
     * Should a crash fall between the two calls, the one extra zero byte is
     * a partial batch header that recovery cuts (this segment is not below
     * the recovery point yet: roll and close advance it afterwards). */
    if (storage_fio.ftruncate(s->log_fd, s->size + 1) != 0) return -1;
    return storage_fio.ftruncate(s->log_fd, s->size);
}

void seg_append_prepare(segment *s, size_t len, seg_mark *m) {
    seg_mark_save(s, m);
    if (len) reserve_ahead(s, len);
}

int seg_append_commit(segment *s, const uint8_t *data, size_t len, int32_t index_interval, const seg_mark *m) {
    int64_t append_max_ts = -1;
    for (size_t off = 0; off < len;) {
        batch_header h;
        batch_header_parse(data + off, &h);
        int64_t pos = m->size + (int64_t)off;
        int64_t last = batch_last_offset(&h);
        if (h.max_timestamp > append_max_ts) append_max_ts = h.max_timestamp;
        if (h.max_timestamp > s->max_ts) {
            s->max_ts = h.max_timestamp;
            s->max_ts_offset = last;
        }
        if (s->bytes_since_index > index_interval && !oidx_full(&s->oidx)) {
            if (oidx_append(&s->oidx, last, (int32_t)pos) != 0 ||
                tidx_maybe_append(&s->tidx, s->max_ts, s->max_ts_offset, false) != 0)
                goto fail;
            s->bytes_since_index = 0;
        }
        s->bytes_since_index += (int64_t)batch_total_size(&h);
        off += batch_total_size(&h);
    }
    if (len && m->size == 0) s->rolling_ts = append_max_ts;
    s->size = m->size + (int64_t)len;
    return 0;
fail:;
    int saved = errno;
    seg_mark_restore(s, m);
    errno = saved;
    return -1;
}

int seg_append(segment *s, const uint8_t *data, size_t len, int32_t index_interval) {
    if (len == 0) return 0;
    seg_mark m;
    seg_append_prepare(s, len, &m);
    if (fio_pwrite_full(s->log_fd, data, len, s->size) != 0) {
        int saved = errno;
        seg_mark_restore(s, &m);
        errno = saved;
        return -1;
    }
    return seg_append_commit(s, data, len, index_interval, &m);
}

int seg_read_header(const segment *s, int64_t pos, batch_header *h) {
    if (pos < 0 || s->size - pos < BATCH_HEADER_SIZE) return 1;
    uint8_t buf[BATCH_HEADER_SIZE];
    if (fio_pread_full(s->log_fd, buf, sizeof buf, pos) != 0) return -1;
    batch_header_parse(buf, h);
    if (h->batch_length < MIN_BATCH_LENGTH || (int64_t)h->batch_length + BATCH_LOG_OVERHEAD > s->size - pos)
        return 1;
    return 0;
}

int seg_find_batch(const segment *s, int64_t from_pos, int64_t offset, int64_t *pos, batch_header *h) {
    for (int64_t p = from_pos;;) {
        int rc = seg_read_header(s, p, h);
        if (rc != 0) return rc;
        if (batch_last_offset(h) >= offset) {
            *pos = p;
            return 0;
        }
        p += (int64_t)batch_total_size(h);
    }
}

int seg_translate_offset(const segment *s, int64_t offset, int64_t *pos, batch_header *h) {
    int64_t ioff;
    int32_t ipos;
    if (oidx_lookup(&s->oidx, offset, &ioff, &ipos) != 0) return -1;
    return seg_find_batch(s, ipos, offset, pos, h);
}

int seg_truncate_to(segment *s, int64_t offset, int32_t index_interval) {
    int64_t pos;
    batch_header h;
    int rc = seg_translate_offset(s, offset, &pos, &h);
    if (rc < 0) return -1;
    if (rc == 1) return 0; /* nothing at or past offset here */
    if (storage_fio.ftruncate(s->log_fd, pos) != 0) return -1;
    s->size = pos;
    s->alloc_end = 0;
    seg_scan_result res;
    return seg_rebuild(s, index_interval, false, NULL, NULL, &res);
}

int seg_seal(segment *s) {
    if (seg_release_prealloc(s) != 0) return -1;
    return tidx_maybe_append(&s->tidx, s->max_ts, s->max_ts_offset, true);
}

int seg_flush(segment *s) {
    if (storage_fio.fsync(s->log_fd) != 0) return -1;
    if (oidx_flush(&s->oidx) != 0) return -1;
    return tidx_flush(&s->tidx);
}

void seg_close(segment *s) {
    if (s->log_fd >= 0) storage_fio.close(s->log_fd);
    s->log_fd = -1;
    seg_close_indexes(s);
}

void seg_close_indexes(segment *s) {
    if (!s->oidx.dir) return; /* never opened */
    oidx_close(&s->oidx);
    tidx_close(&s->tidx);
}

int64_t seg_largest_timestamp(const segment *s) {
    if (s->max_ts >= 0) return s->max_ts;
    struct stat st;
    if (storage_fio.fstat(s->log_fd, &st) != 0) return -1;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}
