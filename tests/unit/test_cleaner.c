/* test_cleaner.c - the log cleaner's core (storage/cleaner.c) and its offset
 * map (storage/offset_map.c) on real segment files in mkdtemp directories:
 * latest value per key at its original offset, tombstones and the delete
 * horizon, keyless records, compressed batches, aborted transactions and
 * markers, empty batches kept for producer state, a map too small for the
 * dirty range, the .cleaned/.swap/.deleted protocol interrupted at every
 * step (and recovery itself interrupted), cleaner-offset-checkpoint and the
 * cleanable-range decision. Prints "cleaner: N passed, M failed". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/records.h"
#include "storage/cleaner.h"
#include "storage/fileio.h"
#include "storage/index.h"
#include "storage/log.h"
#include "storage/offset_map.h"
#include "util/crc32c.h"
#include "unit_check.h"

#define T0 1700000000000LL
#define RETENTION 1000LL

/* ---- building a partition directory ---- */

typedef struct in_rec {
    int64_t offset;
    char key[24];   /* "" with has_key false: no key */
    bool has_key;
    char value[24];
    bool has_value;
    bool aborted;   /* part of an aborted transaction */
} in_rec;

typedef struct plog_builder {
    char dir[128];
    int64_t next;       /* next offset */
    int64_t seg_base;   /* current (last) segment */
    int fd;
    in_rec *recs;
    int nrecs, cap;
} plog_builder;

static void pb_file(plog_builder *p, int64_t base, const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "%s/%020" PRId64 "%s", p->dir, base, suffix);
}

static void pb_roll(plog_builder *p) {
    if (p->fd >= 0) close(p->fd);
    p->seg_base = p->next;
    char path[256];
    static const char *idx[] = {".index", ".timeindex"};
    for (int i = 0; i < 2; i++) {
        pb_file(p, p->seg_base, idx[i], path, sizeof path);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) close(fd);
    }
    pb_file(p, p->seg_base, ".log", path, sizeof path);
    p->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
}

static void pb_init(plog_builder *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/test_cleaner.XXXXXX");
    if (!mkdtemp(p->dir)) abort();
    p->fd = -1;
    pb_roll(p);
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void pb_free(plog_builder *p) {
    if (p->fd >= 0) close(p->fd);
    rm_dir(p->dir);
    free(p->recs);
}

typedef struct rec_spec {
    const char *key;   /* NULL: no key */
    const char *value; /* NULL: tombstone */
} rec_spec;

static kbytes kb(const char *s) { return s ? (kbytes){(const uint8_t *)s, (int32_t)strlen(s)} : (kbytes){NULL, -1}; }

/* Appends one batch; returns its base offset. */
static int64_t pb_batch(plog_builder *p, int codec, int64_t pid, int16_t epoch, int32_t seq, bool txn,
                        const rec_spec *r, int n, int64_t ts) {
    rec_builder b;
    rec_builder_init(&b, codec, p->next, pid, epoch, seq, txn, false);
    for (int i = 0; i < n; i++) {
        rec_builder_add(&b, ts + i, kb(r[i].key), kb(r[i].value), NULL, 0);
        if (p->nrecs == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 1024;
            p->recs = realloc(p->recs, (size_t)p->cap * sizeof *p->recs);
        }
        in_rec *x = &p->recs[p->nrecs++];
        memset(x, 0, sizeof *x);
        x->offset = p->next + i;
        x->has_key = r[i].key != NULL;
        if (r[i].key) snprintf(x->key, sizeof x->key, "%s", r[i].key);
        x->has_value = r[i].value != NULL;
        if (r[i].value) snprintf(x->value, sizeof x->value, "%s", r[i].value);
    }
    kwriter w;
    kw_init(&w);
    if (rec_builder_finish(&b, &w) != 0) abort();
    if (write(p->fd, w.buf, w.len) != (ssize_t)w.len) abort();
    kw_free(&w);
    rec_builder_free(&b);
    int64_t base = p->next;
    p->next += n;
    return base;
}

/* A transaction marker (type 0 abort, 1 commit); returns its offset. */
static int64_t pb_marker(plog_builder *p, int64_t pid, int16_t epoch, int type, int64_t ts) {
    rec_builder b;
    rec_builder_init(&b, 0, p->next, pid, epoch, -1, true, true);
    uint8_t key[4] = {0, 0, 0, (uint8_t)type}, val[6] = {0, 0, 0, 0, 0, 5};
    rec_builder_add(&b, ts, (kbytes){key, 4}, (kbytes){val, 6}, NULL, 0);
    kwriter w;
    kw_init(&w);
    if (rec_builder_finish(&b, &w) != 0) abort();
    if (write(p->fd, w.buf, w.len) != (ssize_t)w.len) abort();
    kw_free(&w);
    rec_builder_free(&b);
    return p->next++;
}

/* ---- reading a directory back ---- */

typedef struct out_rec {
    int64_t offset;
    char key[24];
    bool has_key;
    char value[24];
    bool has_value;
    int16_t batch_attrs;
    int64_t batch_base_ts;
    int64_t batch_pid;
} out_rec;

typedef struct dir_view {
    out_rec *r;
    int n, cap;
    int batches, empty_batches, control_batches;
    int leftovers;   /* *.cleaned, *.swap, *.deleted */
    int bad;         /* malformed batch, CRC, offsets not increasing, index invalid */
    int segments;
    int64_t last_offset;
    int64_t empty_base[16], empty_last[16];
} dir_view;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void view_free(dir_view *v) { free(v->r); }

static void read_segment(dir_view *v, const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        v->bad++;
        return;
    }
    struct stat st;
    fstat(fd, &st);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (read(fd, buf, (size_t)st.st_size) != st.st_size) v->bad++;
    close(fd);
    int64_t base = strtoll(name, NULL, 10);
    size_t pos = 0;
    karena a;
    karena_init(&a, 0);
    while (pos < (size_t)st.st_size) {
        batch_header h;
        if ((size_t)st.st_size - pos < BATCH_HEADER_SIZE) {
            v->bad++;
            break;
        }
        batch_header_parse(buf + pos, &h);
        size_t total = batch_total_size(&h);
        if (h.batch_length < 49 || total > (size_t)st.st_size - pos ||
            crc32c(0, buf + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES) != h.crc ||
            h.base_offset <= v->last_offset || h.base_offset < base) {
            v->bad++;
            break;
        }
        v->last_offset = batch_last_offset(&h);
        v->batches++;
        if (h.attributes & BATCH_ATTR_CONTROL) v->control_batches++;
        if (h.record_count == 0 && v->empty_batches < 16) {
            v->empty_base[v->empty_batches] = h.base_offset;
            v->empty_last[v->empty_batches] = batch_last_offset(&h);
        }
        if (h.record_count == 0) v->empty_batches++;
        rec_iter it;
        rec_record rec;
        karena_reset(&a);
        if (rec_iter_init(&it, buf + pos, total, &a) != 0) {
            v->bad++;
            break;
        }
        int rc;
        while ((rc = rec_iter_next(&it, &rec)) == 1) {
            if (v->n == v->cap) {
                v->cap = v->cap ? v->cap * 2 : 1024;
                v->r = realloc(v->r, (size_t)v->cap * sizeof *v->r);
            }
            out_rec *o = &v->r[v->n++];
            memset(o, 0, sizeof *o);
            o->offset = rec.offset;
            o->has_key = rec.key.len >= 0;
            if (o->has_key) snprintf(o->key, sizeof o->key, "%.*s", rec.key.len, (const char *)rec.key.p);
            o->has_value = rec.value.len >= 0;
            if (o->has_value) snprintf(o->value, sizeof o->value, "%.*s", rec.value.len, (const char *)rec.value.p);
            o->batch_attrs = h.attributes;
            o->batch_base_ts = h.base_timestamp;
            o->batch_pid = h.producer_id;
            if (rec.offset < h.base_offset || rec.offset > batch_last_offset(&h)) v->bad++;
        }
        if (rc < 0) v->bad++;
        pos += total;
    }
    karena_free(&a);
    /* the offset index must load as valid */
    offset_index oi;
    oidx_init(&oi, dir, base, 10 << 20);
    if (oidx_load(&oi, st.st_size, INT32_MAX) != 0) v->bad++;
    oidx_close(&oi);
    time_index ti;
    tidx_init(&ti, dir, base, 10 << 20);
    if (tidx_load(&ti, INT32_MAX) != 0) v->bad++;
    tidx_close(&ti);
    free(buf);
}

static void read_dir(const char *dir, dir_view *v) {
    memset(v, 0, sizeof *v);
    v->last_offset = -1;
    DIR *d = opendir(dir);
    if (!d) {
        v->bad++;
        return;
    }
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        const char *s = e->d_name;
        size_t len = strlen(s);
        if (strstr(s, ".cleaned") || strstr(s, ".swap") || strstr(s, ".deleted")) v->leftovers++;
        else if (len == 24 && strcmp(s + 20, ".log") == 0) names[n++] = strdup(s);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    v->segments = n;
    for (int i = 0; i < n; i++) {
        read_segment(v, dir, names[i]);
        free(names[i]);
    }
}

static const out_rec *find_offset(const dir_view *v, int64_t off) {
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v->r[mid].offset == off) return &v->r[mid];
        if (v->r[mid].offset < off) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* The input's latest non-aborted record for each key below `end`: each
 * must be present with its value at its offset (tombstones_too: also the
 * latest tombstones). Every output record must be an input record (same
 * offset, key, value), never an aborted one. Returns failures. */
static int check_latest(const plog_builder *p, const dir_view *v, int64_t end, bool tombstones_too) {
    int bad = 0;
    for (int i = 0; i < p->nrecs; i++) {
        const in_rec *x = &p->recs[i];
        if (!x->has_key || x->aborted || x->offset >= end) continue;
        bool latest = true;
        for (int j = i + 1; j < p->nrecs && latest; j++)
            if (p->recs[j].has_key && !p->recs[j].aborted && strcmp(p->recs[j].key, x->key) == 0) latest = false;
        if (!latest || (!x->has_value && !tombstones_too)) continue;
        const out_rec *o = find_offset(v, x->offset);
        if (!o || strcmp(o->key, x->key) != 0 || o->has_value != x->has_value ||
            (x->has_value && strcmp(o->value, x->value) != 0)) {
            if (bad < 5) fprintf(stderr, "  latest of key %s at %" PRId64 " missing\n", x->key, x->offset);
            bad++;
        }
    }
    int j = 0;
    for (int i = 0; i < v->n; i++) {
        const out_rec *o = &v->r[i];
        if (o->batch_attrs & BATCH_ATTR_CONTROL) continue;
        while (j < p->nrecs && p->recs[j].offset < o->offset) j++;
        const in_rec *x = j < p->nrecs ? &p->recs[j] : NULL;
        if (!x || x->offset != o->offset || x->aborted || x->has_key != o->has_key || strcmp(x->key, o->key) != 0 ||
            x->has_value != o->has_value || strcmp(x->value, o->value) != 0) {
            if (bad < 5) fprintf(stderr, "  output record at %" PRId64 " is not an input record\n", o->offset);
            bad++;
        }
    }
    return bad;
}

/* Records for key in the view. */
static int count_key(const dir_view *v, const char *key) {
    int n = 0;
    for (int i = 0; i < v->n; i++)
        if (v->r[i].has_key && strcmp(v->r[i].key, key) == 0) n++;
    return n;
}

static cleaner_config small_cfg(void) {
    cleaner_config c;
    cleaner_config_defaults(&c);
    c.delete_retention_ms = RETENTION;
    c.index_interval_bytes = 256;
    return c;
}

static int run_clean(plog_builder *p, const cleaner_config *cfg, offset_map *m, int64_t dirty, int64_t now,
                     const aborted_txn *ab, int nab, const cleaner_producer *prod, int nprod, cleaner_stats *st) {
    cleaner_input in = {.dir = p->dir,
                        .first_dirty_offset = dirty,
                        .first_uncleanable_offset = p->seg_base,
                        .aborted = ab,
                        .naborted = nab,
                        .producers = prod,
                        .nproducers = nprod,
                        .now_ms = now};
    char err[256] = "";
    int rc = cleaner_clean(cfg, &in, m, st, err, sizeof err);
    if (rc != 0) fprintf(stderr, "  clean: rc %d: %s (%s)\n", rc, err, strerror(errno));
    return rc;
}

/* ---- tests ---- */

static void test_offset_map(void) {
    offset_map m;
    CHECK(omap_init(&m, 24, 0.9) != 0, "a one-slot map is refused");
    CHECK(omap_init(&m, 24 * 100, 0.9) == 0, "init");
    CHECK(m.slots == 100 && m.max_entries == 90, "slots %d max %d", m.slots, m.max_entries);
    CHECK(omap_get(&m, (const uint8_t *)"a", 1) == -1, "absent key");
    CHECK(m.latest_offset == -1, "latest empty");
    omap_put(&m, (const uint8_t *)"a", 1, 5);
    omap_put(&m, (const uint8_t *)"b", 1, 6);
    omap_put(&m, (const uint8_t *)"a", 1, 7);
    CHECK(m.entries == 2, "entries %d", m.entries);
    CHECK(omap_get(&m, (const uint8_t *)"a", 1) == 7 && omap_get(&m, (const uint8_t *)"b", 1) == 6, "latest per key");
    CHECK(omap_get(&m, (const uint8_t *)"", 0) == -1, "empty key is a key of its own");
    omap_put(&m, (const uint8_t *)"", 0, 8);
    CHECK(omap_get(&m, (const uint8_t *)"", 0) == 8, "empty key");
    CHECK(m.latest_offset == 8, "latest %" PRId64, m.latest_offset);
    char k[16];
    int i = 0;
    while (!omap_full(&m)) {
        snprintf(k, sizeof k, "key%d", i);
        omap_put(&m, (const uint8_t *)k, strlen(k), 100 + i);
        i++;
    }
    CHECK(m.entries == 90, "full at load factor: %d", m.entries);
    int ok = 0;
    for (int j = 0; j < i; j++) {
        snprintf(k, sizeof k, "key%d", j);
        ok += omap_get(&m, (const uint8_t *)k, strlen(k)) == 100 + j;
    }
    CHECK(ok == i, "every key found after probing: %d/%d", ok, i);
    /* past the load factor the map still takes keys until every slot is used */
    while (m.entries < m.slots) {
        snprintf(k, sizeof k, "more%d", i++);
        CHECK(omap_put(&m, (const uint8_t *)k, strlen(k), 1) == 0, "put until all slots");
    }
    CHECK(omap_put(&m, (const uint8_t *)"new!", 4, 1) != 0 && errno == ENOSPC, "no slot left");
    CHECK(omap_put(&m, (const uint8_t *)"a", 1, 9) == 0, "overwrite in a full map");
    omap_clear(&m);
    CHECK(m.entries == 0 && m.latest_offset == -1 && omap_get(&m, (const uint8_t *)"a", 1) == -1, "clear");
    /* Kafka's MD5 of "a" */
    uint8_t h[16];
    omap_hash((const uint8_t *)"a", 1, h);
    CHECK(h[0] == 0x0c && h[1] == 0xc1 && h[15] == 0x61, "md5(a) = 0cc175b9...61");
    omap_free(&m);
}

/* 100k updates over 1k keys in 10 segments: exactly the last value per key
 * at its original offset, in one cleaned segment; the active segment untouched. */
static void test_latest_per_key(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec r[100];
    char keys[100][16], vals[100][24];
    uint32_t x = 12345;
    for (int seg = 0; seg < 10; seg++) {
        for (int b = 0; b < 100; b++) {
            for (int i = 0; i < 100; i++) {
                x = x * 1103515245u + 12345u;
                snprintf(keys[i], sizeof keys[i], "k%u", (x >> 8) % 1000);
                snprintf(vals[i], sizeof vals[i], "v%" PRId64, p.next + i);
                r[i] = (rec_spec){keys[i], vals[i]};
            }
            pb_batch(&p, b % 10 == 3 ? KCODEC_ZSTD : (b % 10 == 7 ? KCODEC_GZIP : 0), -1, -1, -1, false, r, 100,
                     T0 + p.next);
        }
        pb_roll(&p);
    }
    int64_t active = p.seg_base;
    r[0] = (rec_spec){"k1", "active"};
    pb_batch(&p, 0, -1, -1, -1, false, r, 1, T0 + p.next);
    offset_map m;
    omap_init(&m, 1 << 20, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    CHECK(run_clean(&p, &cfg, &m, 0, T0, NULL, 0, NULL, 0, &st) == 0, "clean");
    CHECK(st.end_offset == active, "end offset %" PRId64 " = active base %" PRId64, st.end_offset, active);
    CHECK(st.groups == 1 && st.segments_replaced == 10, "one group of 10: %d %d", st.groups, st.segments_replaced);
    CHECK(st.records_read == 100000, "read %" PRId64, st.records_read);
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && v.leftovers == 0, "valid dir: bad %d leftovers %d", v.bad, v.leftovers);
    CHECK(v.segments == 2, "cleaned + active: %d", v.segments);
    CHECK(check_latest(&p, &v, active, true) == 0, "latest values");
    int distinct = 0;
    for (int i = 0; i < v.n; i++) distinct += v.r[i].offset < active;
    CHECK(distinct == 1000, "exactly one record per key: %d", distinct);
    CHECK(count_key(&v, "k1") == 2, "k1 cleaned once + active");
    int zstd = 0, gzip = 0;
    for (int i = 0; i < v.n; i++) {
        zstd += (v.r[i].batch_attrs & BATCH_ATTR_COMPRESSION_MASK) == KCODEC_ZSTD;
        gzip += (v.r[i].batch_attrs & BATCH_ATTR_COMPRESSION_MASK) == KCODEC_GZIP;
    }
    CHECK(zstd > 0 && gzip > 0, "partly kept compressed batches keep their codec: zstd %d gzip %d", zstd, gzip);
    view_free(&v);

    /* the broker's log loader takes the cleaned directory as it is: indexes
     * accepted (not rewritten), every batch valid, every offset readable */
    char ipath[256];
    snprintf(ipath, sizeof ipath, "%s/%020d.index", p.dir, 0);
    struct timespec old[2] = {{1000000, 0}, {1000000, 0}};
    CHECK(utimensat(AT_FDCWD, ipath, old, 0) == 0, "age the index");
    log_config lc;
    log_config_defaults(&lc);
    lc.index_interval_bytes = cfg.index_interval_bytes;
    for (int pass = 0; pass < 2; pass++) {
        plog *l = NULL;
        char err[256] = "";
        /* pass 0 trusts the segments (only indexes checked), pass 1 scans them all */
        int64_t rp = pass == 0 ? p.next : 0;
        CHECK(plog_open(p.dir, "t", 0, NULL, &lc, rp, 0, false, &l, err, sizeof err) == 0, "plog_open: %s", err);
        if (!l) break;
        CHECK(plog_end_offset(l) == p.next, "LEO %" PRId64, plog_end_offset(l));
        struct stat ist;
        if (pass == 0)
            CHECK(stat(ipath, &ist) == 0 && ist.st_mtim.tv_sec == 1000000, "cleaned offset index accepted as is");
        int found = 0, asked = 0;
        for (int i = 0; i < p.nrecs; i += 97) {
            int64_t off = p.recs[i].offset;
            const in_rec *x = &p.recs[i];
            bool latest = true;
            for (int j = i + 1; j < p.nrecs && latest; j++) latest = strcmp(p.recs[j].key, x->key) != 0;
            if (!latest || off >= active) continue;
            asked++;
            plog_slice sl;
            if (plog_read(l, off, 1 << 16, true, p.next, &sl) != 0 || sl.len < BATCH_HEADER_SIZE) continue;
            uint8_t *buf = malloc((size_t)sl.len);
            if (pread(sl.fd, buf, (size_t)sl.len, sl.file_pos) == sl.len) {
                batch_header h;
                batch_header_parse(buf, &h);
                found += h.base_offset <= off && off <= batch_last_offset(&h);
            }
            free(buf);
        }
        CHECK(asked > 0 && found == asked, "pass %d: plog_read finds latest records: %d/%d", pass, found, asked);
        plog_close(l);
    }

    /* cleaning again with nothing dirty keeps everything */
    CHECK(run_clean(&p, &cfg, &m, active, T0, NULL, 0, NULL, 0, &st) == 0, "clean again");
    read_dir(p.dir, &v);
    CHECK(v.n == 1001 && v.bad == 0, "idempotent: %d", v.n);
    view_free(&v);
    omap_free(&m);
    pb_free(&p);
}

/* A map too small for the dirty range: each clean covers part of it; the
 * checkpoint advances until the end; the result is the same. Small
 * segment.bytes makes several groups. */
static void test_small_map_and_groups(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec r[50];
    char keys[50][16], vals[50][24];
    for (int seg = 0; seg < 6; seg++) {
        for (int b = 0; b < 10; b++) {
            for (int i = 0; i < 50; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", (int)(((p.next + i) * 7) % 400));
                snprintf(vals[i], sizeof vals[i], "v%" PRId64, p.next + i);
                r[i] = (rec_spec){keys[i], vals[i]};
            }
            pb_batch(&p, 0, -1, -1, -1, false, r, 50, T0);
        }
        pb_roll(&p);
    }
    offset_map m;
    omap_init(&m, 24 * 200, 0.9); /* 180 keys per clean, 400 keys in all */
    cleaner_config cfg = small_cfg();
    cfg.segment_bytes = 60000;
    cleaner_stats st;
    int64_t dirty = 0;
    int rounds = 0;
    while (dirty < p.seg_base && rounds < 50) {
        if (run_clean(&p, &cfg, &m, dirty, T0, NULL, 0, NULL, 0, &st) != 0) break;
        CHECK(st.end_offset > dirty, "progress %" PRId64 " -> %" PRId64, dirty, st.end_offset);
        if (st.end_offset <= dirty) break;
        dirty = st.end_offset;
        rounds++;
    }
    CHECK(dirty == p.seg_base, "dirty range consumed: %" PRId64 " of %" PRId64, dirty, p.seg_base);
    CHECK(rounds > 1, "the map filled up: %d rounds", rounds);
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && v.leftovers == 0, "valid");
    CHECK(check_latest(&p, &v, p.seg_base, true) == 0, "latest values");
    CHECK(v.segments >= 2, "several cleaned segments: %d", v.segments);
    view_free(&v);
    omap_free(&m);
    pb_free(&p);
}

static void test_tombstones_and_keyless(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec a[] = {{"a", "1"}, {"b", "1"}, {NULL, "nokey"}, {"c", "1"}};
    pb_batch(&p, 0, -1, -1, -1, false, a, 4, T0);
    rec_spec b[] = {{"a", NULL}, {"b", "2"}, {NULL, "nokey2"}};
    pb_batch(&p, KCODEC_LZ4, -1, -1, -1, false, b, 3, T0);
    pb_roll(&p);
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    CHECK(run_clean(&p, &cfg, &m, 0, T0, NULL, 0, NULL, 0, &st) == 0, "clean 1");
    CHECK(st.invalid_records == 2, "keyless dropped: %" PRId64, st.invalid_records);
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0, "valid");
    CHECK(v.n == 3, "a tombstone, b=2, c=1: %d", v.n);
    const out_rec *t = find_offset(&v, 4);
    CHECK(t && !t->has_value && (t->batch_attrs & BATCH_ATTR_DELETE_HORIZON) &&
              t->batch_base_ts == T0 + RETENTION && (t->batch_attrs & BATCH_ATTR_COMPRESSION_MASK) == KCODEC_LZ4,
          "tombstone kept, its batch gets the delete horizon, same codec");
    view_free(&v);
    int64_t dirty = st.end_offset;

    /* new dirty data (other keys) before the horizon: the tombstone stays */
    rec_spec d[] = {{"x", "1"}};
    pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
    pb_roll(&p);
    CHECK(run_clean(&p, &cfg, &m, dirty, T0 + RETENTION - 1, NULL, 0, NULL, 0, &st) == 0, "clean 2");
    dirty = st.end_offset;
    read_dir(p.dir, &v);
    CHECK(find_offset(&v, 4) != NULL, "tombstone kept before the horizon");
    view_free(&v);

    /* past the horizon it goes */
    pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
    pb_roll(&p);
    CHECK(run_clean(&p, &cfg, &m, dirty, T0 + RETENTION, NULL, 0, NULL, 0, &st) == 0, "clean 3");
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && find_offset(&v, 4) == NULL, "tombstone removed after the horizon");
    CHECK(count_key(&v, "a") == 0 && count_key(&v, "b") == 1 && count_key(&v, "c") == 1, "others kept");
    CHECK(count_key(&v, "x") == 1, "x once");
    view_free(&v);
    omap_free(&m);
    pb_free(&p);
}

/* Aborted data removed, the abort marker kept while its data is in the
 * log, then given a delete horizon, then removed; a commit marker kept while
 * its data is; an active producer's last batch kept empty. */
static void test_transactions(void) {
    plog_builder p;
    pb_init(&p);
    /* producer 7: aborted transaction over keys t1,t2 */
    rec_spec ab[] = {{"t1", "aborted"}, {"t2", "aborted"}};
    int64_t ab_first = pb_batch(&p, 0, 7, 0, 0, true, ab, 2, T0);
    for (int i = 0; i < 2; i++) p.recs[p.nrecs - 1 - i].aborted = true;
    /* producer 8: committed transaction */
    rec_spec cm[] = {{"c1", "committed"}};
    pb_batch(&p, 0, 8, 0, 0, true, cm, 1, T0);
    int64_t abort_at = pb_marker(&p, 7, 0, 0, T0);
    int64_t commit_at = pb_marker(&p, 8, 0, 1, T0);
    /* producer 9 (idempotent): its last batch is superseded by a later write */
    rec_spec p9[] = {{"s", "old"}};
    int64_t p9_at = pb_batch(&p, 0, 9, 0, 0, false, p9, 1, T0);
    rec_spec later[] = {{"s", "new"}, {"c1", "newer"}};
    pb_batch(&p, 0, -1, -1, -1, false, later, 2, T0);
    pb_roll(&p);
    aborted_txn aborted[] = {{0, 7, ab_first, abort_at, abort_at}};
    cleaner_producer prod[] = {{9, p9_at, 0}};
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    CHECK(run_clean(&p, &cfg, &m, 0, T0, aborted, 1, prod, 1, &st) == 0, "clean 1");
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0, "valid");
    CHECK(count_key(&v, "t1") == 0 && count_key(&v, "t2") == 0, "aborted data removed");
    CHECK(find_offset(&v, abort_at) != NULL, "abort marker kept while its data was in the cleaned range");
    CHECK(find_offset(&v, commit_at) != NULL, "commit marker kept");
    CHECK(v.empty_batches == 1 && v.empty_base[0] == p9_at && v.empty_last[0] == p9_at,
          "producer 9's last batch kept empty (%d)", v.empty_batches);
    CHECK(check_latest(&p, &v, p.seg_base, true) == 0, "latest values");
    view_free(&v);
    /* the cleaned .txnindex holds the aborted transaction */
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.txnindex", p.dir, 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size == ABORTED_TXN_SIZE, "aborted txn kept in the cleaned .txnindex");
    int64_t dirty = st.end_offset;

    /* clean 2: the abort marker's data is gone: it gets a delete horizon */
    rec_spec d[] = {{"x", "1"}};
    pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
    pb_roll(&p);
    CHECK(run_clean(&p, &cfg, &m, dirty, T0, aborted, 1, prod, 1, &st) == 0, "clean 2");
    dirty = st.end_offset;
    read_dir(p.dir, &v);
    const out_rec *mk = find_offset(&v, abort_at);
    CHECK(mk && (mk->batch_attrs & BATCH_ATTR_DELETE_HORIZON) && mk->batch_base_ts == T0 + RETENTION,
          "abort marker: delete horizon set");
    CHECK(stat(path, &sb) == 0 && sb.st_size == 0, "no aborted data left: .txnindex empty");
    const out_rec *cmk = find_offset(&v, commit_at);
    CHECK(cmk != NULL, "commit marker still there (its batch was read this clean)");
    view_free(&v);

    /* clean 3 past the horizon: the abort marker goes; the commit marker
     * (its data batch vanished in clean 2... c1's batch was removed then)
     * gets its horizon or goes */
    pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
    pb_roll(&p);
    CHECK(run_clean(&p, &cfg, &m, dirty, T0 + RETENTION, aborted, 1, prod, 1, &st) == 0, "clean 3");
    dirty = st.end_offset;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && find_offset(&v, abort_at) == NULL, "abort marker removed after its horizon");
    view_free(&v);
    pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
    pb_roll(&p);
    CHECK(run_clean(&p, &cfg, &m, dirty, T0 + 3 * RETENTION, aborted, 1, prod, 1, &st) == 0, "clean 4");
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && v.control_batches == 0, "every marker gone in the end: %d", v.control_batches);
    CHECK(v.empty_batches == 1, "producer 9's empty batch stays while it is active");
    CHECK(count_key(&v, "s") == 1 && count_key(&v, "c1") == 1 && count_key(&v, "x") == 1, "values");
    view_free(&v);

    omap_free(&m);
    pb_free(&p);
}

/* An active producer whose last entry is a marker keeps it, emptied once
 * its delete horizon passed (it carries the producer epoch for fencing). */
static void test_last_marker_kept(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec r[] = {{"k", "txn"}};
    pb_batch(&p, 0, 11, 3, 0, true, r, 1, T0);
    int64_t marker_at = pb_marker(&p, 11, 3, 1, T0);
    rec_spec later[] = {{"k", "plain"}};
    pb_batch(&p, 0, -1, -1, -1, false, later, 1, T0);
    pb_roll(&p);
    cleaner_producer prod[] = {{11, -1, 3}};
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    int64_t dirty = 0, now = T0;
    rec_spec d[] = {{"x", "1"}};
    for (int round = 0; round < 3; round++) {
        CHECK(run_clean(&p, &cfg, &m, dirty, now, NULL, 0, prod, 1, &st) == 0, "clean %d", round);
        dirty = st.end_offset;
        pb_batch(&p, 0, -1, -1, -1, false, d, 1, T0);
        pb_roll(&p);
        now += RETENTION;
    }
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.bad == 0 && v.control_batches == 1 && v.empty_batches == 1 && v.empty_base[0] == marker_at,
          "the marker stays as an empty control batch (%d control, %d empty)", v.control_batches, v.empty_batches);
    CHECK(count_key(&v, "k") == 1, "only the latest k");
    view_free(&v);
    omap_free(&m);
    pb_free(&p);
}

/* ---- crash at every step of the swap ---- */

static int g_fault_at, g_fault_n;
static int fault_hook(void *ctx, const char *step) {
    (void)ctx;
    (void)step;
    return ++g_fault_n == g_fault_at;
}

static int g_fio_fail_at, g_fio_n;
static int failing_rename(const char *a, const char *b) {
    if (++g_fio_n == g_fio_fail_at) {
        errno = EIO;
        return -1;
    }
    return rename(a, b);
}
static int failing_unlink(const char *a) {
    if (++g_fio_n == g_fio_fail_at) {
        errno = EIO;
        return -1;
    }
    return unlink(a);
}

static void build_crash_log(plog_builder *p) {
    pb_init(p);
    rec_spec r[20];
    char keys[20][16], vals[20][24];
    for (int seg = 0; seg < 4; seg++) {
        for (int b = 0; b < 5; b++) {
            for (int i = 0; i < 20; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", (int)((p->next + i) * 13 % 37));
                snprintf(vals[i], sizeof vals[i], "v%" PRId64, p->next + i);
                r[i] = (rec_spec){keys[i], vals[i]};
            }
            pb_batch(p, 0, -1, -1, -1, false, r, 20, T0);
        }
        pb_roll(p);
    }
    r[0] = (rec_spec){"k1", "active"};
    pb_batch(p, 0, -1, -1, -1, false, r, 1, T0);
}

static void test_crash_every_step(void) {
    cleaner_config cfg = small_cfg();
    cfg.segment_bytes = 5000; /* two groups of two segments */
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    int crashes = 0, recover_crashes = 0;
    bool completed = false;
    for (int k = 1; k < 200 && !completed; k++) {
        plog_builder p;
        build_crash_log(&p);
        int64_t active = p.seg_base;
        g_fault_at = k;
        g_fault_n = 0;
        cleaner_input in = {.dir = p.dir, .first_dirty_offset = 0, .first_uncleanable_offset = active, .now_ms = T0,
                            .fault = fault_hook};
        cleaner_stats st;
        int rc = cleaner_clean(&cfg, &in, &m, &st, NULL, 0);
        if (rc == CLEANER_CRASHED) {
            /* before recovery, a new clean refuses to mix with the unfinished swap */
            bool swap_left = false;
            DIR *d = opendir(p.dir);
            struct dirent *e;
            while (d && (e = readdir(d))) swap_left |= strstr(e->d_name, ".swap") != NULL;
            if (d) closedir(d);
            cleaner_input again = in;
            again.fault = NULL;
            if (swap_left)
                CHECK(cleaner_clean(&cfg, &again, &m, &st, NULL, 0) == -1 && errno == EBUSY, "k %d: EBUSY", k);
        }
        if (rc == 0) {
            completed = true;
            CHECK(st.groups == 2, "two groups: %d", st.groups);
        } else {
            CHECK(rc == CLEANER_CRASHED, "crash %d: rc %d", k, rc);
            crashes++;
            /* recovery itself interrupted at its j-th rename/unlink, then re-run */
            for (int j = 1; j < 40; j++) {
                plog_builder q;
                build_crash_log(&q);
                g_fault_at = k;
                g_fault_n = 0;
                cleaner_input in2 = in;
                in2.dir = q.dir;
                cleaner_clean(&cfg, &in2, &m, &st, NULL, 0);
                g_fio_fail_at = j;
                g_fio_n = 0;
                storage_fio.rename = failing_rename;
                storage_fio.unlink = failing_unlink;
                int rrc = cleaner_recover_dir(q.dir);
                storage_fio.rename = rename;
                storage_fio.unlink = unlink;
                bool interrupted = g_fio_n >= j;
                if (rrc != 0) recover_crashes++;
                CHECK(cleaner_recover_dir(q.dir) == 0, "recovery after a failed recovery");
                dir_view v;
                read_dir(q.dir, &v);
                CHECK(v.bad == 0 && v.leftovers == 0, "k %d j %d: consistent (bad %d leftovers %d)", k, j, v.bad,
                      v.leftovers);
                CHECK(check_latest(&q, &v, active, true) == 0, "k %d j %d: every latest value, nothing foreign", k, j);
                view_free(&v);
                pb_free(&q);
                if (!interrupted) break;
            }
        }
        CHECK(cleaner_recover_dir(p.dir) == 0, "recover");
        dir_view v;
        read_dir(p.dir, &v);
        CHECK(v.bad == 0 && v.leftovers == 0, "k %d: consistent after recovery (bad %d leftovers %d)", k, v.bad,
              v.leftovers);
        CHECK(check_latest(&p, &v, active, true) == 0, "k %d: every latest value, nothing foreign", k);
        CHECK(count_key(&v, "k1") >= 2, "active segment intact");
        view_free(&v);
        /* a later clean from the start finishes the job exactly */
        in.fault = NULL;
        CHECK(cleaner_clean(&cfg, &in, &m, &st, NULL, 0) == 0, "k %d: clean after recovery", k);
        read_dir(p.dir, &v);
        int below = 0;
        for (int i = 0; i < v.n; i++) below += v.r[i].offset < active;
        CHECK(v.bad == 0 && below == 37 && check_latest(&p, &v, active, true) == 0,
              "k %d: exactly one record per key after the re-clean (%d)", k, below);
        view_free(&v);
        pb_free(&p);
    }
    CHECK(completed, "the clean completes once the faults are past");
    CHECK(crashes > 20, "crashed at %d steps", crashes);
    CHECK(recover_crashes > 0, "recovery interrupted %d times", recover_crashes);
    omap_free(&m);
}

/* A batch that keeps every record is copied byte for byte. */
static void test_copy_as_is(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec r[] = {{"u1", "1"}, {"u2", "2"}};
    pb_batch(&p, KCODEC_SNAPPY, 5, 1, 10, false, r, 2, T0);
    pb_roll(&p);
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.log", p.dir, 0);
    uint8_t before[512], after[512];
    int fd = open(path, O_RDONLY);
    ssize_t nb = read(fd, before, sizeof before);
    close(fd);
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    CHECK(run_clean(&p, &cfg, &m, 0, T0, NULL, 0, NULL, 0, &st) == 0 && st.groups == 1, "clean");
    fd = open(path, O_RDONLY);
    ssize_t na = read(fd, after, sizeof after);
    close(fd);
    CHECK(nb > 0 && na == nb && memcmp(before, after, (size_t)nb) == 0, "same bytes (%zd, %zd)", nb, na);
    omap_free(&m);
    pb_free(&p);
}

/* An I/O error at any rename or unlink of the swap: the clean fails, the
 * directory is completed or undone on the spot (no restart needed). */
static void test_io_error_during_swap(void) {
    cleaner_config cfg = small_cfg();
    cfg.segment_bytes = 5000;
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    int failures = 0;
    for (int j = 1; j < 60; j++) {
        plog_builder p;
        build_crash_log(&p);
        int64_t active = p.seg_base;
        cleaner_input in = {.dir = p.dir, .first_dirty_offset = 0, .first_uncleanable_offset = active, .now_ms = T0};
        cleaner_stats st;
        g_fio_fail_at = j;
        g_fio_n = 0;
        storage_fio.rename = failing_rename;
        storage_fio.unlink = failing_unlink;
        int rc = cleaner_clean(&cfg, &in, &m, &st, NULL, 0);
        storage_fio.rename = rename;
        storage_fio.unlink = unlink;
        CHECK(rc == 0 || (rc == -1 && errno == EIO), "j %d: rc %d", j, rc);
        failures += rc != 0;
        dir_view v;
        read_dir(p.dir, &v);
        CHECK(v.bad == 0 && v.leftovers == 0, "j %d: consistent (bad %d leftovers %d)", j, v.bad, v.leftovers);
        CHECK(check_latest(&p, &v, active, true) == 0, "j %d: every latest value", j);
        view_free(&v);
        pb_free(&p);
        if (g_fio_n < j) break; /* no fault reached: every step was covered */
    }
    CHECK(failures > 10, "failed at %d steps", failures);
    omap_free(&m);
}

static int64_t g_progress_bytes, g_abort_after;
static int progress_hook(void *ctx, int64_t bytes) {
    (void)ctx;
    g_progress_bytes += bytes;
    return g_abort_after >= 0 && g_progress_bytes > g_abort_after;
}

/* The progress callback sees every byte read and written, and can abort. */
static void test_progress_and_abort(void) {
    cleaner_config cfg = small_cfg();
    cfg.segment_bytes = 5000;
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    int64_t total = 0;
    for (int round = 0; round < 4; round++) {
        plog_builder p;
        build_crash_log(&p);
        int64_t active = p.seg_base;
        cleaner_input in = {.dir = p.dir, .first_dirty_offset = 0, .first_uncleanable_offset = active,
                            .now_ms = T0, .progress = progress_hook};
        g_progress_bytes = 0;
        g_abort_after = round == 0 ? -1 : total * round / 4;
        cleaner_stats st;
        int rc = cleaner_clean(&cfg, &in, &m, &st, NULL, 0);
        if (round == 0) {
            CHECK(rc == 0 && g_progress_bytes == st.bytes_read, "progress counts %" PRId64 " of %" PRId64,
                  g_progress_bytes, st.bytes_read);
            total = g_progress_bytes;
        } else {
            CHECK(rc == CLEANER_ABORTED, "round %d: aborted (%d)", round, rc);
        }
        dir_view v;
        read_dir(p.dir, &v);
        CHECK(v.bad == 0 && v.leftovers == 0 && check_latest(&p, &v, active, true) == 0, "round %d: consistent",
              round);
        view_free(&v);
        pb_free(&p);
    }
    omap_free(&m);
}

/* A malformed batch fails the clean and leaves the directory as it was. */
static void test_corrupt_input(void) {
    plog_builder p;
    pb_init(&p);
    rec_spec r[] = {{"a", "1"}, {"a", "2"}};
    pb_batch(&p, 0, -1, -1, -1, false, r, 2, T0);
    pb_batch(&p, 0, -1, -1, -1, false, r, 2, T0);
    char path[256];
    snprintf(path, sizeof path, "%s/%020d.log", p.dir, 0);
    int fd = open(path, O_RDWR);
    uint8_t byte = 0x55;
    CHECK(pwrite(fd, &byte, 1, 70) == 1, "corrupt");
    close(fd);
    pb_roll(&p);
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cleaner_stats st;
    cleaner_input in = {.dir = p.dir, .first_dirty_offset = 0, .first_uncleanable_offset = p.seg_base, .now_ms = T0};
    char err[256] = "";
    CHECK(cleaner_clean(&cfg, &in, &m, &st, err, sizeof err) == -1 && errno == EINVAL, "refused");
    CHECK(strstr(err, "CRC") != NULL, "says why: %s", err);
    dir_view v;
    read_dir(p.dir, &v);
    CHECK(v.leftovers == 0, "no cleaned files left");
    view_free(&v);
    omap_free(&m);
    pb_free(&p);
}

static void test_checkpoint(void) {
    char dir[] = "/tmp/test_cleaner_ckpt.XXXXXX";
    if (!mkdtemp(dir)) abort();
    ckpt_offsets c;
    CHECK(cleaner_checkpoint_read(dir, &c, NULL, 0) == 0 && c.n == 0, "missing file: empty");
    CHECK(cleaner_checkpoint_update(dir, "t", 0, 100) == 0, "write");
    CHECK(cleaner_checkpoint_update(dir, "u", 3, 7) == 0, "write 2");
    CHECK(cleaner_checkpoint_update(dir, "t", 0, 150) == 0, "update");
    CHECK(cleaner_checkpoint_read(dir, &c, NULL, 0) == 0 && c.n == 2, "two entries");
    CHECK(ckpt_offsets_find(&c, "t", 0) == 150 && ckpt_offsets_find(&c, "u", 3) == 7, "values");
    ckpt_offsets_free(&c);
    char path[256], buf[128] = "";
    snprintf(path, sizeof path, "%s/cleaner-offset-checkpoint", dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    CHECK(strcmp(buf, "0\n2\nu 3 7\nt 0 150\n") == 0, "Kafka's format: %s", buf);
    CHECK(cleaner_checkpoint_update(dir, "u", 3, -1) == 0, "remove");
    CHECK(cleaner_checkpoint_read(dir, &c, NULL, 0) == 0 && c.n == 1, "one left");
    ckpt_offsets_free(&c);
    rm_dir(dir);
}

static void test_decide(void) {
    cleaner_segment_info s[] = {
        {0, 1000, T0 - 100000, T0 - 200000},
        {100, 1000, T0 - 50000, T0 - 90000},
        {200, 1000, T0 - 1000, T0 - 40000},
        {300, 500, T0, T0}, /* active */
    };
    cleaner_log_view v = {.segs = s,
                          .nsegs = 4,
                          .log_start_offset = 0,
                          .log_end_offset = 350,
                          .last_stable_offset = 350,
                          .checkpoint_offset = -1,
                          .min_compaction_lag_ms = 0,
                          .max_compaction_lag_ms = INT64_MAX,
                          .min_cleanable_ratio = 0.5};
    cleaner_decision d;
    cleaner_decide(&v, T0, &d);
    CHECK(d.first_dirty_offset == 0 && d.first_uncleanable_offset == 300, "all closed segments dirty");
    CHECK(d.cleanable_bytes == 3000 && d.clean_bytes == 0 && d.should_clean, "ratio 1");
    v.checkpoint_offset = 200;
    cleaner_decide(&v, T0, &d);
    CHECK(d.first_dirty_offset == 200 && d.clean_bytes == 2000 && d.cleanable_bytes == 1000, "bytes %" PRId64
          " %" PRId64, d.clean_bytes, d.cleanable_bytes);
    CHECK(!d.should_clean && d.cleanable_ratio < 0.5, "ratio 1/3 below 0.5");
    /* max.compaction.lag.ms exceeded: clean now */
    v.max_compaction_lag_ms = 30000;
    cleaner_decide(&v, T0, &d);
    CHECK(d.max_compaction_delay_ms == 10000 && d.should_clean, "must clean: delay %" PRId64,
          d.max_compaction_delay_ms);
    v.max_compaction_lag_ms = INT64_MAX;
    /* min.compaction.lag.ms keeps young segments out */
    v.checkpoint_offset = -1;
    v.min_compaction_lag_ms = 20000;
    cleaner_decide(&v, T0, &d);
    CHECK(d.first_uncleanable_offset == 200, "segment 200 too young: %" PRId64, d.first_uncleanable_offset);
    /* the last stable offset bounds it too, rounded down to its segment */
    v.min_compaction_lag_ms = 0;
    v.last_stable_offset = 150;
    cleaner_decide(&v, T0, &d);
    CHECK(d.uncleanable_offset == 150 && d.first_uncleanable_offset == 100, "LSO: %" PRId64,
          d.first_uncleanable_offset);
    /* a checkpoint past the end is reset to the log start */
    v.last_stable_offset = 350;
    v.checkpoint_offset = 1000;
    cleaner_decide(&v, T0, &d);
    CHECK(d.first_dirty_offset == 0 && d.force_checkpoint_update, "reset checkpoint");
    v.checkpoint_offset = 300;
    cleaner_decide(&v, T0, &d);
    CHECK(d.cleanable_bytes == 0 && !d.should_clean, "nothing dirty");
}

/* The broker's live swap (cleaner/log_cleaner.c): the cleaner's swap hook
 * releases the open log's index descriptors, swaps the files and splices
 * the cleaned segment into the plog; a slice handed out before stays
 * readable; deleting segments under a running clean makes the swap refused. */
typedef struct live_ctx {
    plog *l;
    int64_t end;
    int swaps;
} live_ctx;

static int live_swap(void *ctx, const cleaner_input *in, int64_t base, const int64_t *old, int nold) {
    live_ctx *c = ctx;
    if (!plog_cleaning_ok(c->l, c->end)) return CLEANER_ABORTED;
    plog_forget_indexes(c->l, old, nold);
    int rc = cleaner_swap_group(in, base, old, nold);
    if (rc == 0) rc = plog_replace_segments(c->l, base, old, nold);
    if (rc == 0) c->swaps++;
    return rc;
}

static void build_live_dir(plog_builder *p) {
    pb_init(p);
    rec_spec r[20];
    char keys[20][16], vals[20][24];
    for (int seg = 0; seg < 5; seg++) {
        for (int b = 0; b < 10; b++) {
            for (int i = 0; i < 20; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", (int)((p->next + i) % 30));
                snprintf(vals[i], sizeof vals[i], "v%" PRId64, p->next + i);
                r[i] = (rec_spec){keys[i], vals[i]};
            }
            pb_batch(p, 0, -1, -1, -1, false, r, 20, T0);
        }
        pb_roll(p);
    }
    /* the active segment: a few records */
    for (int i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        snprintf(vals[i], sizeof vals[i], "a%d", i);
        r[i] = (rec_spec){keys[i], vals[i]};
    }
    pb_batch(p, 0, -1, -1, -1, false, r, 5, T0);
}

/* A fresh live directory, its log open and a clean begun up to the
 * active segment (what the loop does before handing the clean over). */
static plog *begin_live_clean(plog_builder *p, const log_config *lc, offset_map *m, live_ctx *c) {
    build_live_dir(p);
    plog *l = NULL;
    char err[256] = "";
    CHECK(plog_open(p->dir, "t", 0, NULL, lc, 0, 0, false, &l, err, sizeof err) == 0, "plog_open: %s", err);
    if (!l) return NULL;
    omap_init(m, 1 << 16, 0.9);
    *c = (live_ctx){l, p->seg_base, 0};
    plog_cleaning_begin(l, p->seg_base);
    return l;
}

/* The cleaner's own temporary files left in dir (.cleaned, .swap). */
static int cleaner_leftovers(const char *dir) {
    int left = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        left += strstr(e->d_name, ".cleaned") || strstr(e->d_name, ".swap");
    if (d) closedir(d);
    return left;
}

static void test_live_swap(void) {
    plog_builder p;
    build_live_dir(&p);
    log_config lc;
    log_config_defaults(&lc);
    plog *l = NULL;
    char err[256] = "";
    CHECK(plog_open(p.dir, "t", 0, NULL, &lc, 0, 0, false, &l, err, sizeof err) == 0, "plog_open: %s", err);
    if (!l) return;
    int before = plog_segment_count(l);
    plog_slice old_slice;
    CHECK(plog_read(l, 0, 4096, true, p.next, &old_slice) == 0 && old_slice.len > 0, "slice before the clean");
    offset_map m;
    omap_init(&m, 1 << 16, 0.9);
    cleaner_config cfg = small_cfg();
    cfg.segment_bytes = 1 << 20;
    live_ctx c = {l, p.seg_base, 0};
    plog_cleaning_begin(l, p.seg_base);
    cleaner_input in = {.dir = p.dir, .first_dirty_offset = 0, .first_uncleanable_offset = p.seg_base,
                        .now_ms = T0, .swap = live_swap, .swap_ctx = &c};
    cleaner_stats st;
    CHECK(cleaner_clean(&cfg, &in, &m, &st, err, sizeof err) == 0, "clean: %s", err);
    plog_cleaning_done(l);
    CHECK(c.swaps == 1 && plog_segment_count(l) == 2, "one cleaned segment and the active one: %d (was %d)",
          plog_segment_count(l), before);
    uint8_t hdr[BATCH_HEADER_SIZE];
    CHECK(pread(old_slice.fd, hdr, sizeof hdr, old_slice.file_pos) == (ssize_t)sizeof hdr,
          "the old segment's descriptor still reads (kept in the trash)");
    /* every latest record below the active segment is readable through the plog */
    int asked = 0, found = 0;
    for (int i = 0; i < p.nrecs; i++) {
        const in_rec *x = &p.recs[i];
        bool latest = true;
        for (int j = i + 1; j < p.nrecs && latest; j++) latest = strcmp(p.recs[j].key, x->key) != 0;
        if (!latest) continue;
        asked++;
        plog_slice sl;
        if (plog_read(l, x->offset, 1 << 16, true, p.next, &sl) != 0 || sl.len < BATCH_HEADER_SIZE) continue;
        batch_header h;
        uint8_t b[BATCH_HEADER_SIZE];
        if (pread(sl.fd, b, sizeof b, sl.file_pos) != (ssize_t)sizeof b) continue;
        batch_header_parse(b, &h);
        found += h.base_offset <= x->offset && x->offset <= batch_last_offset(&h);
    }
    CHECK(asked == 30 && found == asked, "latest records readable after the swap: %d/%d", found, asked);
    CHECK(plog_end_offset(l) == p.next, "LEO kept");
    /* appends go on */
    plog_close(l);
    l = NULL;
    CHECK(plog_open(p.dir, "t", 0, NULL, &lc, 0, 0, false, &l, err, sizeof err) == 0, "reopen: %s", err);
    if (l) {
        CHECK(plog_segment_count(l) == 2 && plog_end_offset(l) == p.next, "reopened as swapped");
        plog_close(l);
    }
    omap_free(&m);
    pb_free(&p);

    /* a deletion under a running clean aborts it: nothing swapped, no leftovers */
    if (!(l = begin_live_clean(&p, &lc, &m, &c))) return;
    CHECK(plog_delete_records(l, 200) == 0, "DeleteRecords under the clean");
    CHECK(!plog_cleaning_ok(l, p.seg_base), "the clean is aborted");
    int segs = plog_segment_count(l);
    in.dir = p.dir;
    in.first_uncleanable_offset = p.seg_base;
    in.first_dirty_offset = 200;
    int rc = cleaner_clean(&cfg, &in, &m, &st, err, sizeof err);
    CHECK(rc == CLEANER_ABORTED || rc == -1, "refused: %d", rc);
    plog_cleaning_done(l);
    CHECK(c.swaps == 0 && plog_segment_count(l) == segs, "nothing swapped");
    /* (the plog's own *.deleted files wait for file.delete.delay.ms) */
    int left = cleaner_leftovers(p.dir);
    CHECK(left == 0, "no .cleaned/.swap left: %d", left);
    /* truncation is remembered for the checkpoint */
    plog_take_truncation(l);
    CHECK(plog_truncate_to(l, 450) == 0 && plog_take_truncation(l) == 450, "truncation reported");
    CHECK(plog_take_truncation(l) == INT64_MAX, "once");
    plog_close(l);
    omap_free(&m);
    pb_free(&p);

    /* a follower's truncation under a running clean aborts it as well
     * (Kafka's abortAndPauseCleaning around truncateTo): no cleaned segment
     * is swapped in over the truncated data; once it is done
     * (resumeCleaning) the next clean cleans what is left */
    if (!(l = begin_live_clean(&p, &lc, &m, &c))) return;
    const int64_t cut = 700; /* inside the fourth of the five cleanable segments */
    CHECK(plog_truncate_to(l, cut) == 0, "truncation under the clean");
    CHECK(!plog_cleaning_ok(l, p.seg_base), "the clean is aborted by the truncation");
    in.dir = p.dir;
    in.first_dirty_offset = 0;
    in.first_uncleanable_offset = p.seg_base;
    rc = cleaner_clean(&cfg, &in, &m, &st, err, sizeof err);
    CHECK(rc == CLEANER_ABORTED || rc == -1, "refused after the truncation: %d", rc);
    plog_cleaning_done(l);
    CHECK(c.swaps == 0 && plog_end_offset(l) == cut, "nothing swapped, LEO %" PRId64, plog_end_offset(l));
    left = cleaner_leftovers(p.dir);
    CHECK(left == 0, "no .cleaned/.swap left after the aborted clean: %d", left);
    /* resumed: up to the new active segment */
    int64_t active_base = -1, size, largest, rolling;
    plog_segment_info(l, plog_segment_count(l) - 1, &active_base, &size, &largest, &rolling);
    CHECK(active_base > 0 && active_base < cut, "active segment after the truncation: %" PRId64, active_base);
    omap_free(&m);
    omap_init(&m, 1 << 16, 0.9);
    c = (live_ctx){l, active_base, 0};
    plog_cleaning_begin(l, active_base);
    in.first_uncleanable_offset = active_base;
    rc = cleaner_clean(&cfg, &in, &m, &st, err, sizeof err);
    plog_cleaning_done(l);
    CHECK(rc == 0 && c.swaps >= 1, "the resumed clean swaps: rc %d (%s), %d swap(s)", rc, err, c.swaps);
    CHECK(plog_end_offset(l) == cut, "LEO still the truncation point");
    plog_slice sl;
    CHECK(plog_read(l, active_base, 1 << 16, true, cut, &sl) == 0 && sl.len > 0, "the active segment reads");
    plog_close(l);
    omap_free(&m);
    pb_free(&p);
}

static int no_sync(int fd) {
    (void)fd;
    return 0;
}

int main(void) {
    /* durability is not what is tested here: fsync stubbed for speed */
    storage_fio.fsync = no_sync;
    storage_fio.fdatasync = no_sync;
    test_offset_map();
    test_latest_per_key();
    test_small_map_and_groups();
    test_tombstones_and_keyless();
    test_transactions();
    test_last_marker_kept();
    test_copy_as_is();
    test_corrupt_input();
    test_crash_every_step();
    test_io_error_during_swap();
    test_progress_and_abort();
    test_checkpoint();
    test_decide();
    test_live_swap();
    printf("cleaner: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
