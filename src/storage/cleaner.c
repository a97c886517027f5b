/* cleaner.c - Kafka 3.6.1's log cleaner core at file level (see cleaner.h). */
#include "storage/cleaner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "protocol/wire.h"
#include "storage/fileio.h"
#include "storage/index.h"
#include "storage/segment.h"
#include "util/arena.h"
#include "util/array.h"
#include "util/crc32c.h"

#define NAME_DIGITS 20
#define OUT_FLUSH_BYTES (1 << 20)

void cleaner_config_defaults(cleaner_config *c) {
    c->segment_bytes = 1LL << 30;
    c->max_index_bytes = 10 * 1024 * 1024;
    c->index_interval_bytes = 4096;
    c->delete_retention_ms = 86400000LL;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- file names ---- */

/* The four files of a segment; the .log comes first. */
static const char *const seg_kinds[] = {SEG_LOG_SUFFIX, SEG_INDEX_SUFFIX, SEG_TIMEINDEX_SUFFIX, TXN_INDEX_SUFFIX};
#define NKINDS 4

/* "<20 digits><kind><extra>" -> base, kind index, extra ("" or a suffix). */
static int parse_name(const char *name, int64_t *base, int *kind, const char **extra) {
    int64_t b = 0;
    for (int i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        if (b > (INT64_MAX - 9) / 10) return -1;
        b = b * 10 + (name[i] - '0');
    }
    const char *rest = name + NAME_DIGITS;
    for (int k = 0; k < NKINDS; k++) {
        size_t n = strlen(seg_kinds[k]);
        if (strncmp(rest, seg_kinds[k], n) == 0) {
            *base = b;
            *kind = k;
            *extra = rest + n;
            return 0;
        }
    }
    return -1;
}

static int file_path(char *buf, size_t cap, const char *dir, int64_t base, int kind, const char *extra) {
    int n = snprintf(buf, cap, "%s/%020" PRId64 "%s%s", dir, base, seg_kinds[kind], extra);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static bool file_exists(const char *dir, int64_t base, int kind, const char *extra) {
    char p[PATH_MAX];
    struct stat st;
    return file_path(p, sizeof p, dir, base, kind, extra) == 0 && stat(p, &st) == 0;
}

/* Renames <base><kind><from> to <base><kind><to>; a missing source is fine
 * unless required. */
static int rename_kind(const char *dir, int64_t base, int kind, const char *from, const char *to, bool required) {
    char a[PATH_MAX], b[PATH_MAX];
    if (file_path(a, sizeof a, dir, base, kind, from) != 0 || file_path(b, sizeof b, dir, base, kind, to) != 0)
        return -1;
    if (storage_fio.rename(a, b) != 0) {
        if (errno == ENOENT && !required) return 0;
        return -1;
    }
    return 0;
}

static int unlink_kind(const char *dir, int64_t base, int kind, const char *extra) {
    char p[PATH_MAX];
    if (file_path(p, sizeof p, dir, base, kind, extra) != 0) return -1;
    if (storage_fio.unlink(p) != 0 && errno != ENOENT) return -1;
    return 0;
}

/* ---- the closed segments of a directory ---- */

typedef struct seg_file {
    int64_t base;
    int64_t size;
    struct timespec mtime;
    int64_t index_bytes, timeindex_bytes;
} seg_file;

static int cmp_seg(const void *a, const void *b) {
    int64_t x = ((const seg_file *)a)->base, y = ((const seg_file *)b)->base;
    return (x > y) - (x < y);
}

static int64_t stat_size(const char *dir, int64_t base, int kind) {
    char p[PATH_MAX];
    struct stat st;
    if (file_path(p, sizeof p, dir, base, kind, "") != 0 || stat(p, &st) != 0) return 0;
    return st.st_size;
}

/* Every <base>.log of dir, ascending. */
static int list_segments(const char *dir, seg_file **out, int *nout) {
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    seg_file *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t base;
        int kind;
        const char *extra;
        if (parse_name(e->d_name, &base, &kind, &extra) != 0 || kind != 0 || *extra) continue;
        char p[PATH_MAX];
        struct stat st;
        if (file_path(p, sizeof p, dir, base, 0, "") != 0 || stat(p, &st) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            seg_file *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
        }
        v[n] = (seg_file){base, st.st_size, st.st_mtim, stat_size(dir, base, 1), stat_size(dir, base, 2)};
        n++;
    }
    closedir(d);
    if (rc) {
        free(v);
        return -1;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_seg);
    *out = v;
    *nout = n;
    return 0;
}

/* ---- reading batches of a segment ---- */

typedef struct seg_reader {
    int fd;
    int64_t size, pos;
    int64_t base;          /* the segment's base offset */
    int64_t limit;         /* the next segment's base: every offset is below it */
    int64_t prev_last;     /* last offset of the previous batch */
    uint8_t *buf;
    size_t cap;
    const char *dir;
} seg_reader;

static int reader_open(seg_reader *r, const char *dir, int64_t base, int64_t limit) {
    memset(r, 0, sizeof *r);
    char p[PATH_MAX];
    if (file_path(p, sizeof p, dir, base, 0, "") != 0) return -1;
    r->fd = storage_fio.open(p, O_RDONLY | O_CLOEXEC, 0);
    if (r->fd < 0) return -1;
    r->size = fio_file_size(r->fd);
    if (r->size < 0) {
        storage_fio.close(r->fd);
        return -1;
    }
    r->base = base;
    r->limit = limit;
    r->prev_last = base - 1;
    r->dir = dir;
    return 0;
}

static void reader_close(seg_reader *r) {
    if (r->fd >= 0) storage_fio.close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* Next whole, checked batch. 1 = got one, 0 = end, -1 = error (EINVAL:
 * malformed, err set). */
static int reader_next(seg_reader *r, const uint8_t **batch, batch_header *h, char *err, size_t errlen) {
    if (r->pos >= r->size) return 0;
    int64_t left = r->size - r->pos;
    uint8_t hdr[BATCH_HEADER_SIZE];
    const char *why = NULL;
    if (left < BATCH_HEADER_SIZE) {
        why = "partial batch at the end";
        goto bad;
    }
    if (fio_pread_full(r->fd, hdr, sizeof hdr, r->pos) != 0) return -1;
    batch_header_parse(hdr, h);
    if (h->batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || (int64_t)batch_total_size(h) > left) {
        why = "bad batch length";
        goto bad;
    }
    if (h->magic != 2) {
        why = "not a v2 batch";
        goto bad;
    }
    if ((h->attributes & BATCH_ATTR_COMPRESSION_MASK) > KCODEC_ZSTD || h->record_count < 0 ||
        h->last_offset_delta < 0) {
        why = "bad batch header";
        goto bad;
    }
    if (h->base_offset <= r->prev_last || h->base_offset > INT64_MAX - h->last_offset_delta ||
        batch_last_offset(h) >= r->limit) {
        why = "offsets out of order or outside the segment";
        goto bad;
    }
    size_t total = batch_total_size(h);
    if (total > r->cap) {
        uint8_t *nb = realloc(r->buf, total);
        if (!nb) return -1;
        r->buf = nb;
        r->cap = total;
    }
    if (fio_pread_full(r->fd, r->buf, total, r->pos) != 0) return -1;
    if (crc32c(0, r->buf + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES) != h->crc) {
        why = "CRC mismatch";
        goto bad;
    }
    r->prev_last = batch_last_offset(h);
    r->pos += (int64_t)total;
    *batch = r->buf;
    return 1;
bad:
    set_err(err, errlen, "%s/%020" PRId64 ".log position %" PRId64 ": %s", r->dir, r->base, r->pos, why);
    errno = EINVAL;
    return -1;
}

/* ---- CleanedTransactionMetadata ---- */

typedef struct ongoing_abort {
    aborted_txn txn;
    int64_t last_batch_offset; /* -1: no batch of the transaction seen */
} ongoing_abort;

typedef struct txn_meta {
    aborted_txn *pending;  /* Kafka's min-heap by first offset (small: a scan finds the least) */
    int npending, cappending;
    ongoing_abort *aborts;
    int naborts, capaborts;
    int64_t *committed;    /* producers with an ongoing committed transaction */
    int ncommitted, capcommitted;
    kwriter *cleaned_index;/* retained aborted transactions, or NULL */
} txn_meta;

static void tm_free(txn_meta *t) {
    free(t->pending);
    free(t->aborts);
    free(t->committed);
    memset(t, 0, sizeof *t);
}

/* log.collectAbortedTransactions(start, upper): last >= start, first < upper. */
static int tm_add_range(txn_meta *t, const aborted_txn *v, int n, int64_t start, int64_t upper) {
    for (int i = 0; i < n; i++) {
        if (v[i].last_offset < start || v[i].first_offset >= upper) continue;
        if (array_reserve((void **)&t->pending, &t->cappending, t->npending + 1, sizeof *t->pending) != 0) return -1;
        t->pending[t->npending++] = v[i];
    }
    return 0;
}

static ongoing_abort *tm_find_abort(txn_meta *t, int64_t pid) {
    for (int i = 0; i < t->naborts; i++)
        if (t->aborts[i].txn.producer_id == pid) return &t->aborts[i];
    return NULL;
}

static int tm_consume_up_to(txn_meta *t, int64_t offset) {
    for (;;) {
        int best = -1;
        for (int i = 0; i < t->npending; i++)
            if (t->pending[i].first_offset <= offset &&
                (best < 0 || t->pending[i].first_offset < t->pending[best].first_offset))
                best = i;
        if (best < 0) return 0;
        aborted_txn a = t->pending[best];
        t->pending[best] = t->pending[--t->npending];
        if (!tm_find_abort(t, a.producer_id)) { /* getOrElseUpdate */
            if (array_reserve((void **)&t->aborts, &t->capaborts, t->naborts + 1, sizeof *t->aborts) != 0) return -1;
            t->aborts[t->naborts++] = (ongoing_abort){a, -1};
        }
    }
}

static int committed_index(const txn_meta *t, int64_t pid) {
    for (int i = 0; i < t->ncommitted; i++)
        if (t->committed[i] == pid) return i;
    return -1;
}

/* onBatchRead: true when the batch belongs to an aborted transaction. */
static int tm_on_batch(txn_meta *t, const batch_header *h, bool *aborted) {
    *aborted = false;
    if (tm_consume_up_to(t, batch_last_offset(h)) != 0) return -1;
    if (!(h->attributes & BATCH_ATTR_TRANSACTIONAL)) return 0;
    ongoing_abort *a = tm_find_abort(t, h->producer_id);
    if (a) {
        a->last_batch_offset = batch_last_offset(h);
        *aborted = true;
    } else if (committed_index(t, h->producer_id) < 0) {
        if (array_reserve((void **)&t->committed, &t->capcommitted, t->ncommitted + 1, sizeof *t->committed) != 0) return -1;
        t->committed[t->ncommitted++] = h->producer_id;
    }
    return 0;
}

#define CONTROL_ABORT 0
#define CONTROL_COMMIT 1

/* onControlBatchRead: true when the marker may be discarded. control_type is
 * the first record's type, -1 when the batch has no record. */
static int tm_on_control(txn_meta *t, const batch_header *h, int control_type, bool *discard) {
    if (tm_consume_up_to(t, batch_last_offset(h)) != 0) return -1;
    if (control_type < 0) { /* an empty control batch was already cleaned */
        *discard = true;
        return 0;
    }
    *discard = false;
    if (control_type == CONTROL_ABORT) {
        ongoing_abort *a = tm_find_abort(t, h->producer_id);
        if (a) {
            bool data_left = a->last_batch_offset >= 0;
            if (data_left && t->cleaned_index) {
                uint8_t e[ABORTED_TXN_SIZE];
                aborted_txn_encode(&a->txn, e);
                kw_raw(t->cleaned_index, e, sizeof e);
            }
            *a = t->aborts[--t->naborts];
            /* keep the marker until the transaction's batches are removed */
            *discard = !data_left;
        } else {
            *discard = true;
        }
    } else if (control_type == CONTROL_COMMIT) {
        int i = committed_index(t, h->producer_id);
        if (i >= 0) t->committed[i] = t->committed[--t->ncommitted];
        *discard = i < 0; /* no batch of the transaction was traversed */
    }
    return 0;
}

/* Type of a control batch's first record (its key: version i16, type i16),
 * -1 when the batch is empty; -2 when unreadable. */
static int control_type_of(const uint8_t *batch, size_t len, karena *a) {
    rec_iter it;
    rec_record rec;
    if (rec_iter_init(&it, batch, len, a) != 0) return -2;
    int rc = rec_iter_next(&it, &rec);
    if (rc == 0) return -1;
    if (rc < 0) return -2;
    if (rec.key.len < 4) return -2;
    return (int16_t)bh_get_u16(rec.key.p + 2);
}

/* ---- building the offset map (buildOffsetMap) ---- */

/* Index of the first segment of LocalLog.logSegments(from, to): the floor of from. */
static int floor_index(const seg_file *s, int n, int64_t from) {
    int f = 0;
    for (int i = 0; i < n; i++)
        if (s[i].base <= from) f = i;
    return f;
}

static int64_t next_base(const seg_file *s, int n, int i) { return i + 1 < n ? s[i + 1].base : INT64_MAX; }

typedef struct clean_ctx {
    const cleaner_config *cfg;
    const cleaner_input *in;
    offset_map *map;
    cleaner_stats *st;
    char *err;
    size_t errlen;
    karena arena;
    seg_file *segs;
    int nsegs;
} clean_ctx;

/* Returns 1 when the map filled up, 0 when the segment was mapped, -1. */
static int map_segment(clean_ctx *c, int i, int64_t start, int64_t next_start, txn_meta *tm) {
    seg_reader r;
    if (reader_open(&r, c->in->dir, c->segs[i].base, next_base(c->segs, c->nsegs, i)) != 0) return -1;
    const uint8_t *b;
    batch_header h;
    int rc;
    while ((rc = reader_next(&r, &b, &h, c->err, c->errlen)) == 1) {
        size_t len = batch_total_size(&h);
        karena_reset(&c->arena);
        if (h.attributes & BATCH_ATTR_CONTROL) {
            bool discard;
            int type = control_type_of(b, len, &c->arena);
            if (type == -2) goto corrupt;
            if (tm_on_control(tm, &h, type, &discard) != 0) goto fail;
        } else {
            bool aborted;
            if (tm_on_batch(tm, &h, &aborted) != 0) goto fail;
            if (!aborted) {
                rec_iter it;
                rec_record rec;
                if (rec_iter_init(&it, b, len, &c->arena) != 0) goto corrupt;
                int n;
                while ((n = rec_iter_next(&it, &rec)) == 1) {
                    if (rec.offset < h.base_offset || rec.offset > batch_last_offset(&h)) goto corrupt;
                    if (rec.key.len >= 0 && rec.offset >= start) {
                        if (omap_full(c->map)) {
                            reader_close(&r);
                            return 1;
                        }
                        if (omap_put(c->map, rec.key.p, (size_t)rec.key.len, rec.offset) != 0) goto fail;
                    }
                }
                if (n < 0) goto corrupt;
            }
        }
        if (batch_last_offset(&h) >= start) omap_set_latest(c->map, batch_last_offset(&h));
        c->st->bytes_read += (int64_t)len;
        if (c->in->progress && c->in->progress(c->in->progress_ctx, (int64_t)len) != 0) {
            reader_close(&r);
            return CLEANER_ABORTED;
        }
    }
    reader_close(&r);
    if (rc < 0) return -1;
    /* offsets gap: fast forward to the last offset this segment may hold */
    omap_set_latest(c->map, next_start - 1);
    return 0;
corrupt:
    set_err(c->err, c->errlen, "%s/%020" PRId64 ".log: undecodable records in the batch at offset %" PRId64,
            c->in->dir, c->segs[i].base, h.base_offset);
    errno = EINVAL;
fail:
    reader_close(&r);
    return -1;
}

static int build_offset_map(clean_ctx *c, int64_t start, int64_t end) {
    omap_clear(c->map);
    txn_meta tm = {0};
    int rc = tm_add_range(&tm, c->in->aborted, c->in->naborted, start, end);
    int first = floor_index(c->segs, c->nsegs, start);
    for (int i = first; rc == 0 && i < c->nsegs && c->segs[i].base < end; i++) {
        int64_t next_start = i + 1 < c->nsegs && c->segs[i + 1].base < end ? c->segs[i + 1].base : end;
        int full = map_segment(c, i, start, next_start, &tm);
        if (full < 0) rc = full == CLEANER_ABORTED ? CLEANER_ABORTED : -1;
        if (full) break;
    }
    tm_free(&tm);
    return rc;
}

/* ---- writing a cleaned segment ---- */

typedef struct out_seg {
    int fd[NKINDS];
    int64_t base;
    int64_t pos;              /* bytes of .log written (incl. buffered) */
    kwriter log, oidx, tidx, txi;
    int32_t oidx_n, oidx_max, tidx_n, tidx_max;
    int64_t bytes_since_index;
    int64_t max_ts, max_ts_offset;
    int64_t tidx_last_ts;
    int32_t index_interval;
} out_seg;

static void out_close(out_seg *o) {
    for (int k = 0; k < NKINDS; k++)
        if (o->fd[k] >= 0) storage_fio.close(o->fd[k]);
    kw_free(&o->log);
    kw_free(&o->oidx);
    kw_free(&o->tidx);
    kw_free(&o->txi);
    for (int k = 0; k < NKINDS; k++) o->fd[k] = -1;
}

static int out_open(out_seg *o, const char *dir, int64_t base, const cleaner_config *cfg) {
    memset(o, 0, sizeof *o);
    for (int k = 0; k < NKINDS; k++) o->fd[k] = -1;
    kw_init(&o->log);
    kw_init(&o->oidx);
    kw_init(&o->tidx);
    kw_init(&o->txi);
    o->base = base;
    o->oidx_max = cfg->max_index_bytes / OFFSET_INDEX_ENTRY;
    o->tidx_max = cfg->max_index_bytes / TIME_INDEX_ENTRY;
    o->max_ts = -1;
    o->tidx_last_ts = -1;
    o->index_interval = cfg->index_interval_bytes;
    for (int k = 0; k < NKINDS; k++) {
        char p[PATH_MAX];
        if (file_path(p, sizeof p, dir, base, k, CLEANER_CLEANED_SUFFIX) != 0) goto fail;
        o->fd[k] = storage_fio.open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o->fd[k] < 0) goto fail;
    }
    return 0;
fail:
    out_close(o);
    return -1;
}

static int out_flush_log(out_seg *o) {
    if (o->log.err) {
        errno = ENOMEM;
        return -1;
    }
    if (o->log.len && fio_write_full(o->fd[0], o->log.buf, o->log.len) != 0) return -1;
    kw_reset(&o->log);
    return 0;
}

static void tidx_entry_add(out_seg *o, int64_t ts, int64_t offset) {
    kw_i64(&o->tidx, ts);
    kw_i32(&o->tidx, (int32_t)(offset - o->base));
    o->tidx_n++;
    o->tidx_last_ts = ts;
}

/* Appends one whole batch, indexing it as segment.c's seg_append does. */
static int out_append(out_seg *o, const uint8_t *b, size_t len) {
    batch_header h;
    batch_header_parse(b, &h);
    int64_t last = batch_last_offset(&h);
    if (h.max_timestamp > o->max_ts) {
        o->max_ts = h.max_timestamp;
        o->max_ts_offset = last;
    }
    if (o->bytes_since_index > o->index_interval && o->oidx_n < o->oidx_max) {
        kw_i32(&o->oidx, (int32_t)(last - o->base));
        kw_i32(&o->oidx, (int32_t)o->pos);
        o->oidx_n++;
        if (o->max_ts > o->tidx_last_ts && o->tidx_n < o->tidx_max) tidx_entry_add(o, o->max_ts, o->max_ts_offset);
        o->bytes_since_index = 0;
    }
    o->bytes_since_index += (int64_t)len;
    kw_raw(&o->log, b, len);
    o->pos += (int64_t)len;
    if (o->log.len >= OUT_FLUSH_BYTES) return out_flush_log(o);
    return 0;
}

/* Writes the indexes, fsyncs all four files, sets the .log's mtime. */
static int out_finish(out_seg *o, const struct timespec *mtime) {
    if (out_flush_log(o) != 0) return -1;
    /* a closed segment always ends with its largest timestamp indexed */
    if (o->max_ts > o->tidx_last_ts) tidx_entry_add(o, o->max_ts, o->max_ts_offset);
    kwriter *w[NKINDS] = {NULL, &o->oidx, &o->tidx, &o->txi};
    for (int k = 1; k < NKINDS; k++) {
        if (w[k]->err) {
            errno = ENOMEM;
            return -1;
        }
        if (w[k]->len && fio_write_full(o->fd[k], w[k]->buf, w[k]->len) != 0) return -1;
    }
    for (int k = 0; k < NKINDS; k++)
        if (storage_fio.fsync(o->fd[k]) != 0) return -1;
    /* Kafka: cleaned.lastModified = segments.last.lastModified (retention and
     * the legacy delete horizon read it) */
    struct timespec ts[2] = {*mtime, *mtime};
    if (futimens(o->fd[0], ts) != 0) return -1;
    return 0;
}

/* ---- filtering one batch (MemoryRecords.filterTo with the cleaner's filter) ---- */

typedef struct kept_record {
    rec_record r;
} kept_record;

static bool has_delete_horizon(const batch_header *h) { return (h->attributes & BATCH_ATTR_DELETE_HORIZON) != 0; }

static bool is_last_of_producer(const cleaner_input *in, const batch_header *h) {
    for (int i = 0; i < in->nproducers; i++) {
        const cleaner_producer *p = &in->producers[i];
        if (p->producer_id != h->producer_id) continue;
        if (p->last_data_offset >= 0) return batch_last_offset(h) == p->last_data_offset;
        return (h->attributes & BATCH_ATTR_CONTROL) && h->producer_epoch == p->producer_epoch;
    }
    return false;
}

static void encode_record(kwriter *w, kwriter *tmp, const rec_record *r, int64_t base_offset, int64_t base_ts) {
    kw_reset(tmp);
    kw_i8(tmp, 0); /* DefaultRecord writes attributes 0 */
    /* wrapping differences: a delta that overflows wraps back on reading */
    kw_varlong(tmp, (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts));
    kw_varint(tmp, (int32_t)(uint32_t)((uint64_t)r->offset - (uint64_t)base_offset));
    kw_varint(tmp, r->key.len);
    if (r->key.len > 0) kw_raw(tmp, r->key.p, (size_t)r->key.len);
    kw_varint(tmp, r->value.len);
    if (r->value.len > 0) kw_raw(tmp, r->value.p, (size_t)r->value.len);
    kw_varint(tmp, r->header_count);
    for (int32_t i = 0; i < r->header_count && r->headers; i++) {
        kw_varint(tmp, r->headers[i].key.len);
        if (r->headers[i].key.len > 0) kw_raw(tmp, r->headers[i].key.p, (size_t)r->headers[i].key.len);
        kw_varint(tmp, r->headers[i].value.len);
        if (r->headers[i].value.len > 0) kw_raw(tmp, r->headers[i].value.p, (size_t)r->headers[i].value.len);
    }
    kw_varint(w, (int32_t)tmp->len);
    kw_raw(w, tmp->buf, tmp->len);
}

/* Header fields + CRC of a batch whose records area is already in w after a
 * reserved BATCH_HEADER_SIZE. */
static void finish_header(kwriter *w, size_t at, const batch_header *orig, int16_t attributes, int64_t base_ts,
                          int64_t max_ts, int32_t count) {
    uint8_t *p = w->buf + at;
    size_t total = w->len - at;
    bh_put_u64(p + BATCH_OFF_BASE_OFFSET, (uint64_t)orig->base_offset);
    bh_put_u32(p + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    bh_put_u32(p + BATCH_OFF_LEADER_EPOCH, (uint32_t)orig->partition_leader_epoch);
    p[BATCH_OFF_MAGIC] = 2;
    bh_put_u16(p + BATCH_OFF_ATTRIBUTES, (uint16_t)attributes);
    bh_put_u32(p + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)orig->last_offset_delta);
    bh_put_u64(p + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    bh_put_u64(p + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    bh_put_u64(p + BATCH_OFF_PRODUCER_ID, (uint64_t)orig->producer_id);
    bh_put_u16(p + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)orig->producer_epoch);
    bh_put_u32(p + BATCH_OFF_BASE_SEQUENCE, (uint32_t)orig->base_sequence);
    bh_put_u32(p + BATCH_OFF_RECORD_COUNT, (uint32_t)count);
    bh_put_u32(p + BATCH_OFF_CRC, crc32c(0, p + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
}

/* buildRetainedRecordsInto: same base offset, last offset delta, producer
 * fields, leader epoch, codec and timestamp type; delete_horizon >= 0 sets
 * the attribute and becomes the base timestamp. */
static int build_retained(kwriter *w, const batch_header *h, const kept_record *kept, int n, int64_t delete_horizon) {
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    bool log_append = (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) != 0;
    int64_t base_ts = delete_horizon >= 0 ? delete_horizon : kept[0].r.timestamp;
    int64_t max_ts = -1;
    for (int i = 0; i < n; i++)
        if (kept[i].r.timestamp > max_ts) max_ts = kept[i].r.timestamp;
    if (log_append) max_ts = h->max_timestamp;
    kwriter recs, tmp;
    kw_init(&recs);
    kw_init(&tmp);
    for (int i = 0; i < n; i++) encode_record(&recs, &tmp, &kept[i].r, h->base_offset, base_ts);
    int rc = recs.err || tmp.err ? -1 : 0;
    size_t at = w->len;
    if (rc == 0) {
        kw_reserve(w, BATCH_HEADER_SIZE);
        if (codec == KCODEC_NONE) kw_raw(w, recs.buf, recs.len);
        else if (kcompress(codec, recs.buf ? recs.buf : (const uint8_t *)"", recs.len, w, 0) != 0) rc = -1;
    }
    if (rc == 0 && w->err) rc = -1;
    if (rc == 0) {
        int16_t attrs = (int16_t)(h->attributes & (BATCH_ATTR_COMPRESSION_MASK | BATCH_ATTR_TIMESTAMP_LOG_APPEND |
                                                   BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL));
        if (delete_horizon >= 0) attrs |= BATCH_ATTR_DELETE_HORIZON;
        finish_header(w, at, h, attrs, base_ts, max_ts, n);
    }
    kw_free(&recs);
    kw_free(&tmp);
    if (rc) errno = ENOMEM;
    return rc;
}

/* DefaultRecordBatch.writeEmptyHeader: no records, no compression. */
static int build_empty(kwriter *w, const batch_header *h) {
    size_t at = w->len;
    kw_reserve(w, BATCH_HEADER_SIZE);
    if (w->err) {
        errno = ENOMEM;
        return -1;
    }
    int16_t attrs = (int16_t)(h->attributes & (BATCH_ATTR_TIMESTAMP_LOG_APPEND | BATCH_ATTR_TRANSACTIONAL |
                                               BATCH_ATTR_CONTROL));
    finish_header(w, at, h, attrs, h->max_timestamp, h->max_timestamp, 0);
    return 0;
}

enum { RETAIN_EMPTY, DELETE, DELETE_EMPTY };

/* Filters one source batch into o. */
static int clean_batch(clean_ctx *c, out_seg *o, txn_meta *tm, const uint8_t *b, const batch_header *h,
                       kept_record **kept, int *kept_cap, kwriter *scratch) {
    const cleaner_input *in = c->in;
    size_t len = batch_total_size(h);
    bool control = (h->attributes & BATCH_ATTR_CONTROL) != 0;
    karena_reset(&c->arena);

    /* checkBatchRetention */
    bool can_discard, discard_records;
    if (control) {
        int type = control_type_of(b, len, &c->arena);
        if (type == -2) goto corrupt;
        if (tm_on_control(tm, h, type, &can_discard) != 0) return -1;
        discard_records = can_discard && has_delete_horizon(h) && h->base_timestamp <= in->now_ms;
    } else {
        if (tm_on_batch(tm, h, &can_discard) != 0) return -1;
        discard_records = can_discard;
    }
    int retention;
    if (h->producer_id >= 0 && is_last_of_producer(in, h)) retention = RETAIN_EMPTY;
    else if (discard_records) retention = DELETE;
    else retention = DELETE_EMPTY;
    bool marker_for_empty_txn = can_discard && control;
    c->st->bytes_read += (int64_t)len;
    if (retention == DELETE) return 0;

    /* filterBatch with shouldRetainRecord */
    rec_iter it;
    rec_record rec;
    if (rec_iter_init(&it, b, len, &c->arena) != 0) goto corrupt;
    int n = 0, rc;
    bool all_kept = true, tombstones = false;
    while ((rc = rec_iter_next(&it, &rec)) == 1) {
        c->st->records_read++;
        if (rec.offset < h->base_offset || rec.offset > batch_last_offset(h)) goto corrupt;
        bool keep;
        if (discard_records) keep = false;
        else if (control) keep = true;
        else if (rec.offset > c->map->latest_offset) keep = true;
        else if (rec.key.len < 0) {
            c->st->invalid_records++;
            keep = false;
        } else {
            int64_t found = omap_get(c->map, rec.key.p, (size_t)rec.key.len);
            bool retain_deletes = !has_delete_horizon(h) || in->now_ms < h->base_timestamp;
            keep = rec.offset >= found && (rec.value.len >= 0 || retain_deletes);
        }
        if (!keep) {
            all_kept = false;
            continue;
        }
        if (rec.value.len < 0) tombstones = true;
        if (n == *kept_cap) {
            int nc = *kept_cap ? *kept_cap * 2 : 64;
            kept_record *nk = realloc(*kept, (size_t)nc * sizeof *nk);
            if (!nk) return -1;
            *kept = nk;
            *kept_cap = nc;
        }
        (*kept)[n++].r = rec;
    }
    if (rc < 0) goto corrupt;
    c->st->records_retained += n;

    if (n > 0) {
        bool need_horizon = (tombstones || marker_for_empty_txn) && !has_delete_horizon(h);
        if (all_kept && !need_horizon) return out_append(o, b, len);
        int64_t horizon = need_horizon ? in->now_ms + c->cfg->delete_retention_ms
                                       : (has_delete_horizon(h) ? h->base_timestamp : -1);
        kw_reset(scratch);
        if (build_retained(scratch, h, *kept, n, horizon) != 0) return -1;
        return out_append(o, scratch->buf, scratch->len);
    }
    if (retention == RETAIN_EMPTY) {
        kw_reset(scratch);
        if (build_empty(scratch, h) != 0) return -1;
        return out_append(o, scratch->buf, scratch->len);
    }
    return 0;
corrupt:
    set_err(c->err, c->errlen, "%s: undecodable records in the batch at offset %" PRId64, in->dir, h->base_offset);
    errno = EINVAL;
    return -1;
}

/* ---- the swap ---- */

static int fault(const cleaner_input *in, const char *step) {
    return in->fault && in->fault(in->fault_ctx, step) != 0;
}

#define FAULT(step)                      \
    do {                                 \
        if (fault(in, step)) goto crash; \
    } while (0)

/* Steps after the cleaned files are written: see cleaner.h. */
static int swap_in(const cleaner_input *in, int64_t base, const int64_t *old, int nold) {
    const char *dir = in->dir;
    for (int k = 1; k < NKINDS; k++) {
        FAULT("cleaned->swap index");
        if (rename_kind(dir, base, k, CLEANER_CLEANED_SUFFIX, CLEANER_SWAP_SUFFIX, true) != 0) return -1;
    }
    FAULT("cleaned->swap log");
    if (rename_kind(dir, base, 0, CLEANER_CLEANED_SUFFIX, CLEANER_SWAP_SUFFIX, true) != 0) return -1;
    FAULT("fsync dir (commit)");
    if (fio_fsync_dir(dir) != 0) return -1;
    for (int i = 0; i < nold; i++)
        for (int k = 0; k < NKINDS; k++) {
            FAULT("old->deleted");
            if (rename_kind(dir, old[i], k, "", SEG_DELETED_SUFFIX, k == 0) != 0) return -1;
        }
    FAULT("fsync dir (deleted)");
    if (fio_fsync_dir(dir) != 0) return -1;
    for (int k = 0; k < NKINDS; k++) {
        FAULT("swap->real");
        if (rename_kind(dir, base, k, CLEANER_SWAP_SUFFIX, "", true) != 0) return -1;
    }
    FAULT("fsync dir (swapped)");
    if (fio_fsync_dir(dir) != 0) return -1;
    for (int i = 0; i < nold; i++)
        for (int k = 0; k < NKINDS; k++) {
            FAULT("unlink deleted");
            if (unlink_kind(dir, old[i], k, SEG_DELETED_SUFFIX) != 0) return -1;
        }
    return 0;
crash:
    return CLEANER_CRASHED;
}

static void remove_cleaned(const char *dir, int64_t base) {
    for (int k = NKINDS - 1; k >= 0; k--) unlink_kind(dir, base, k, CLEANER_CLEANED_SUFFIX);
}

int cleaner_swap_group(const cleaner_input *in, int64_t base, const int64_t *old, int nold) {
    int rc = swap_in(in, base, old, nold);
    if (rc == -1) {
        /* an I/O error mid-swap: finish or undo it now, as a restart would */
        int saved = errno;
        cleaner_recover_dir(in->dir);
        errno = saved;
    }
    return rc;
}

/* cleanSegments: segs[first, first+n) into one cleaned segment, then swap. */
static int clean_group(clean_ctx *c, int first, int n, txn_meta *tm) {
    const cleaner_input *in = c->in;
    int64_t base = c->segs[first].base;
    out_seg o;
    if (out_open(&o, in->dir, base, c->cfg) != 0) return -1;
    tm->cleaned_index = &o.txi;
    kept_record *kept = NULL;
    int kept_cap = 0, rc = 0;
    kwriter scratch;
    kw_init(&scratch);
    for (int i = first; rc == 0 && i < first + n; i++) {
        int64_t limit = next_base(c->segs, c->nsegs, i);
        if (tm_add_range(tm, in->aborted, in->naborted, c->segs[i].base, limit) != 0) {
            rc = -1;
            break;
        }
        seg_reader r;
        if (reader_open(&r, in->dir, c->segs[i].base, limit) != 0) {
            rc = -1;
            break;
        }
        const uint8_t *b;
        batch_header h;
        int got;
        while ((got = reader_next(&r, &b, &h, c->err, c->errlen)) == 1) {
            if ((rc = clean_batch(c, &o, tm, b, &h, &kept, &kept_cap, &scratch)) != 0) break;
            if (in->progress && in->progress(in->progress_ctx, (int64_t)batch_total_size(&h)) != 0) {
                rc = CLEANER_ABORTED;
                break;
            }
        }
        if (got < 0) rc = -1;
        reader_close(&r);
        if (rc == 0 && fault(in, "writing cleaned")) rc = CLEANER_CRASHED;
    }
    tm->cleaned_index = NULL;
    free(kept);
    kw_free(&scratch);
    if (rc == 0) rc = out_finish(&o, &c->segs[first + n - 1].mtime);
    int64_t written = o.pos;
    out_close(&o);
    if (rc == 0 && fault(in, "cleaned written")) rc = CLEANER_CRASHED;
    if (rc == 0 && fio_fsync_dir(in->dir) != 0) rc = -1;
    if (rc == CLEANER_CRASHED) return rc;
    if (rc != 0) { /* failed or aborted before the commit: as if never started */
        int saved = errno;
        remove_cleaned(in->dir, base);
        errno = saved;
        return rc == CLEANER_ABORTED ? rc : -1;
    }
    int64_t *old = malloc((size_t)n * sizeof *old);
    if (!old) {
        remove_cleaned(in->dir, base);
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < n; i++) old[i] = c->segs[first + i].base;
    if (in->swap) {
        rc = in->swap(in->swap_ctx, in, base, old, n);
        if (rc == CLEANER_ABORTED) remove_cleaned(in->dir, base);
    } else {
        rc = cleaner_swap_group(in, base, old, n);
    }
    free(old);
    if (rc == 0) {
        c->st->groups++;
        c->st->segments_replaced += n;
        c->st->bytes_written += written;
    }
    return rc;
}

/* groupSegmentsBySize over segs[0, n): counts per group into groups. */
static int group_segments(const clean_ctx *c, int n, int64_t first_uncleanable, int *groups) {
    const cleaner_config *cfg = c->cfg;
    int ng = 0, i = 0;
    while (i < n) {
        int start = i;
        int64_t log_size = c->segs[i].size, idx = c->segs[i].index_bytes, tidx = c->segs[i].timeindex_bytes;
        i++;
        while (i < n) {
            const seg_file *s = &c->segs[i];
            int64_t last_offset = i + 1 < n ? c->segs[i + 1].base - 1 : first_uncleanable - 1;
            if (!(log_size + s->size <= cfg->segment_bytes && idx + s->index_bytes <= cfg->max_index_bytes &&
                  tidx + s->timeindex_bytes <= cfg->max_index_bytes &&
                  (s->size == 0 || last_offset - c->segs[start].base <= INT32_MAX)))
                break;
            log_size += s->size;
            idx += s->index_bytes;
            tidx += s->timeindex_bytes;
            i++;
        }
        groups[ng++] = i - start;
    }
    return ng;
}

static int check_no_swap(const char *dir, char *err, size_t errlen);

int cleaner_clean(const cleaner_config *cfg, const cleaner_input *in, offset_map *map, cleaner_stats *stats,
                  char *err, size_t errlen) {
    memset(stats, 0, sizeof *stats);
    if (err && errlen) err[0] = 0;
    if (in->first_uncleanable_offset < in->first_dirty_offset || cfg->max_index_bytes <= 0 ||
        cfg->segment_bytes <= 0) {
        set_err(err, errlen, "bad cleaner input");
        errno = EINVAL;
        return -1;
    }
    clean_ctx c = {.cfg = cfg, .in = in, .map = map, .st = stats, .err = err, .errlen = errlen};
    karena_init(&c.arena, 0);
    int rc = list_segments(in->dir, &c.segs, &c.nsegs);
    int *groups = NULL;
    txn_meta tm = {0};
    if (rc != 0) goto out;
    if ((rc = check_no_swap(in->dir, err, errlen)) != 0) goto out;
    if ((rc = build_offset_map(&c, in->first_dirty_offset, in->first_uncleanable_offset)) != 0) goto out;
    int64_t end = map->latest_offset + 1;
    if (end < in->first_dirty_offset) end = in->first_dirty_offset;
    stats->end_offset = end;
    /* log.logSegments(0, endOffset): every segment below the end */
    int n = 0;
    while (n < c.nsegs && c.segs[n].base < end) n++;
    groups = malloc(((size_t)n + 1) * sizeof *groups);
    if (!groups) {
        rc = -1;
        goto out;
    }
    int ng = group_segments(&c, n, in->first_uncleanable_offset, groups);
    for (int g = 0, first = 0; rc == 0 && g < ng; first += groups[g], g++)
        rc = clean_group(&c, first, groups[g], &tm);
    stats->map_utilization = omap_utilization(map);
out:
    tm_free(&tm);
    free(groups);
    free(c.segs);
    karena_free(&c.arena);
    return rc;
}

/* ---- recovery (LogLoader's handling of .cleaned / .swap / .deleted) ---- */

typedef struct dir_entry {
    int64_t base;
    int kind;
    char extra[16];
} dir_entry;

static int list_entries(const char *dir, dir_entry **out, int *nout) {
    *out = NULL;
    *nout = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    dir_entry *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t base;
        int kind;
        const char *extra;
        if (parse_name(e->d_name, &base, &kind, &extra) != 0 || strlen(extra) >= sizeof v->extra) continue;
        if (*extra && strcmp(extra, CLEANER_CLEANED_SUFFIX) != 0 && strcmp(extra, CLEANER_SWAP_SUFFIX) != 0 &&
            strcmp(extra, SEG_DELETED_SUFFIX) != 0)
            continue;
        if (array_reserve((void **)&v, &cap, n + 1, sizeof *v) != 0) {
            rc = -1;
            break;
        }
        v[n].base = base;
        v[n].kind = kind;
        snprintf(v[n].extra, sizeof v[n].extra, "%s", extra);
        n++;
    }
    closedir(d);
    if (rc) {
        free(v);
        return -1;
    }
    *out = v;
    *nout = n;
    return 0;
}


/* A *.swap file is a clean that recovery has not completed: cleaning again
 * before cleaner_recover_dir would mix two swaps. */
static int check_no_swap(const char *dir, char *err, size_t errlen) {
    dir_entry *v;
    int n;
    if (list_entries(dir, &v, &n) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if (strcmp(v[i].extra, CLEANER_SWAP_SUFFIX) == 0) {
            set_err(err, errlen, "%s: %020" PRId64 "%s%s left by an unfinished clean: run cleaner_recover_dir", dir,
                    v[i].base, seg_kinds[v[i].kind], v[i].extra);
            errno = EBUSY;
            rc = -1;
        }
    free(v);
    return rc;
}

/* The offset after the last whole batch of a (swap) log file; base if none. */
static int64_t log_next_offset(const char *path, int64_t base) {
    int fd = storage_fio.open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return base;
    int64_t size = fio_file_size(fd), pos = 0, next = base;
    uint8_t hdr[BATCH_HEADER_SIZE];
    while (size > 0 && pos + BATCH_HEADER_SIZE <= size && fio_pread_full(fd, hdr, sizeof hdr, pos) == 0) {
        batch_header h;
        batch_header_parse(hdr, &h);
        if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || pos + (int64_t)batch_total_size(&h) > size ||
            h.last_offset_delta < 0 || h.base_offset > INT64_MAX - h.last_offset_delta - 1)
            break;
        next = batch_next_offset(&h);
        pos += (int64_t)batch_total_size(&h);
    }
    storage_fio.close(fd);
    return next;
}

int cleaner_recover_dir(const char *dir) {
    dir_entry *v;
    int n;
    if (list_entries(dir, &v, &n) != 0) return -1;
    /* nothing left by a clean or a deletion: no fsync (opening thousands of
     * partitions at start-up must not pay one each) */
    bool leftovers = false;
    for (int i = 0; i < n && !leftovers; i++) leftovers = v[i].extra[0] != 0;
    if (!leftovers) {
        free(v);
        return 0;
    }
    int rc = 0;
    /* 1. an uncommitted clean (its .log is still .cleaned): index .swap
     *    files first, then every .cleaned file, the .log last */
    for (int i = 0; i < n && rc == 0; i++)
        if (v[i].kind == 0 && strcmp(v[i].extra, CLEANER_CLEANED_SUFFIX) == 0)
            for (int k = 1; k < NKINDS && rc == 0; k++) rc = unlink_kind(dir, v[i].base, k, CLEANER_SWAP_SUFFIX);
    for (int i = 0; i < n && rc == 0; i++)
        if (v[i].kind != 0 && strcmp(v[i].extra, CLEANER_CLEANED_SUFFIX) == 0)
            rc = unlink_kind(dir, v[i].base, v[i].kind, CLEANER_CLEANED_SUFFIX);
    for (int i = 0; i < n && rc == 0; i++)
        if (v[i].kind == 0 && strcmp(v[i].extra, CLEANER_CLEANED_SUFFIX) == 0)
            rc = unlink_kind(dir, v[i].base, 0, CLEANER_CLEANED_SUFFIX);
    if (rc == 0) rc = fio_fsync_dir(dir);
    /* 2. a committed clean: the old segments' files in [base, next) go, then
     *    the .log.swap becomes the segment (before its indexes: once it is
     *    renamed, a re-run must not delete them as old files) */
    for (int i = 0; i < n && rc == 0; i++) {
        if (v[i].kind != 0 || strcmp(v[i].extra, CLEANER_SWAP_SUFFIX) != 0) continue;
        char p[PATH_MAX];
        if (file_path(p, sizeof p, dir, v[i].base, 0, CLEANER_SWAP_SUFFIX) != 0) {
            rc = -1;
            break;
        }
        int64_t next = log_next_offset(p, v[i].base);
        dir_entry *cur;
        int ncur;
        if (list_entries(dir, &cur, &ncur) != 0) {
            rc = -1;
            break;
        }
        for (int j = 0; j < ncur && rc == 0; j++)
            if (!cur[j].extra[0] && cur[j].base >= v[i].base && cur[j].base < next)
                rc = unlink_kind(dir, cur[j].base, cur[j].kind, "");
        free(cur);
        if (rc == 0) rc = fio_fsync_dir(dir);
        if (rc == 0) rc = rename_kind(dir, v[i].base, 0, CLEANER_SWAP_SUFFIX, "", true);
    }
    /* 3. index .swap files left are committed: rename them */
    for (int i = 0; i < n && rc == 0; i++)
        if (v[i].kind != 0 && strcmp(v[i].extra, CLEANER_SWAP_SUFFIX) == 0)
            rc = rename_kind(dir, v[i].base, v[i].kind, CLEANER_SWAP_SUFFIX, "", false);
    if (rc == 0) rc = fio_fsync_dir(dir);
    /* 4. segments renamed (.log first) to .deleted: their remaining real
     *    index files, then every .deleted file */
    for (int i = 0; i < n && rc == 0; i++) {
        if (v[i].kind != 0 || strcmp(v[i].extra, SEG_DELETED_SUFFIX) != 0) continue;
        if (file_exists(dir, v[i].base, 0, "")) continue;
        for (int k = 1; k < NKINDS && rc == 0; k++) rc = unlink_kind(dir, v[i].base, k, "");
    }
    for (int i = 0; i < n && rc == 0; i++)
        if (strcmp(v[i].extra, SEG_DELETED_SUFFIX) == 0) rc = unlink_kind(dir, v[i].base, v[i].kind, SEG_DELETED_SUFFIX);
    if (rc == 0) rc = fio_fsync_dir(dir);
    free(v);
    return rc;
}

/* ---- cleaner-offset-checkpoint ---- */

static int ckpt_path(char *buf, size_t cap, const char *log_dir) {
    int n = snprintf(buf, cap, "%s/%s", log_dir, CLEANER_CHECKPOINT_FILE);
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int cleaner_checkpoint_read(const char *log_dir, ckpt_offsets *out, char *err, size_t errlen) {
    char p[PATH_MAX];
    out->v = NULL;
    out->n = 0;
    if (ckpt_path(p, sizeof p, log_dir) != 0) return -1;
    return ckpt_offsets_read(p, out, err, errlen);
}

int cleaner_checkpoint_update(const char *log_dir, const char *topic, int32_t partition, int64_t offset) {
    char p[PATH_MAX];
    if (ckpt_path(p, sizeof p, log_dir) != 0) return -1;
    ckpt_offsets cur;
    if (ckpt_offsets_read(p, &cur, NULL, 0) != 0) return -1;
    ckpt_offset_entry *v = malloc((cur.n + 1) * sizeof *v);
    if (!v) {
        ckpt_offsets_free(&cur);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < cur.n; i++)
        if (!(cur.v[i].partition == partition && strcmp(cur.v[i].topic, topic) == 0)) v[n++] = cur.v[i];
    if (offset >= 0) v[n++] = (ckpt_offset_entry){(char *)topic, partition, offset};
    int rc = ckpt_offsets_write(p, v, n);
    int saved = errno;
    free(v);
    ckpt_offsets_free(&cur);
    errno = saved;
    return rc;
}

/* ---- LogCleanerManager's choice ---- */

/* logSegments(from, to): segments whose base is in [floor(from), to). */
static int64_t bytes_between(const cleaner_log_view *v, int64_t from, int64_t to) {
    if (to <= from) return 0;
    int64_t floor = INT64_MIN;
    for (int i = 0; i < v->nsegs; i++)
        if (v->segs[i].base <= from) floor = v->segs[i].base;
    int64_t sum = 0;
    for (int i = 0; i < v->nsegs; i++)
        if (v->segs[i].base >= floor && v->segs[i].base < to) sum += v->segs[i].size;
    return sum;
}

/* Index of the first segment of nonActiveLogSegmentsFrom(from), or nsegs-1
 * (the active one) when there is none. */
static int first_non_active_from(const cleaner_log_view *v, int64_t from) {
    int f = 0; /* the floor segment of from, over all segments */
    for (int i = 0; i < v->nsegs; i++)
        if (v->segs[i].base <= from) f = i;
    return f;
}

void cleaner_decide(const cleaner_log_view *v, int64_t now_ms, cleaner_decision *out) {
    memset(out, 0, sizeof *out);
    int active = v->nsegs - 1;
    int64_t active_base = v->segs[active].base;
    /* cleanableOffsets */
    int64_t dirty = v->checkpoint_offset >= 0 ? v->checkpoint_offset : v->log_start_offset;
    if (dirty < v->log_start_offset || dirty > v->log_end_offset) {
        dirty = v->log_start_offset;
        out->force_checkpoint_update = true;
    }
    out->first_dirty_offset = dirty;
    int64_t uncleanable = v->last_stable_offset < active_base ? v->last_stable_offset : active_base;
    int64_t min_lag = v->min_compaction_lag_ms > 0 ? v->min_compaction_lag_ms : 0;
    if (min_lag > 0) {
        for (int i = first_non_active_from(v, dirty); i < active; i++)
            if (v->segs[i].largest_timestamp > now_ms - min_lag) {
                if (v->segs[i].base < uncleanable) uncleanable = v->segs[i].base;
                break;
            }
    }
    out->uncleanable_offset = uncleanable > dirty ? uncleanable : dirty;
    /* maxCompactionDelay */
    int64_t earliest = INT64_MAX;
    for (int i = first_non_active_from(v, dirty); i < active; i++) {
        int64_t t = v->segs[i].first_batch_timestamp;
        if (t > 0 && t < earliest) earliest = t;
    }
    int64_t max_lag = v->max_compaction_lag_ms > 0 ? v->max_compaction_lag_ms : 0;
    int64_t clean_until = now_ms - max_lag;
    out->max_compaction_delay_ms = earliest < clean_until ? clean_until - earliest : 0;
    /* LogToClean + calculateCleanableBytes */
    int64_t first_uncleanable = v->segs[first_non_active_from(v, out->uncleanable_offset)].base;
    out->first_uncleanable_offset = first_uncleanable;
    out->clean_bytes = bytes_between(v, -1, dirty);
    int64_t from = dirty < first_uncleanable ? dirty : first_uncleanable;
    out->cleanable_bytes = bytes_between(v, from, first_uncleanable);
    out->total_bytes = out->clean_bytes + out->cleanable_bytes;
    out->cleanable_ratio = out->total_bytes > 0 ? (double)out->cleanable_bytes / (double)out->total_bytes : 0;
    /* grabFilthiestCompactedLog's filters */
    out->should_clean = out->total_bytes > 0 &&
                        ((out->max_compaction_delay_ms > 0 && out->cleanable_bytes > 0) ||
                         out->cleanable_ratio > v->min_cleanable_ratio);
}
