/* test_storage.c - the partition log storage engine against real files.
 *
 * Every test works in its own mkdtemp directory with real v2 batches built
 * here (uncompressed, correct CRC-32C). Faults are injected through the
 * storage_fio table. Prints "storage: N passed, M failed".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/wire.h"
#include "storage/checkpoint.h"
#include "storage/fdcache.h"
#include "storage/fileio.h"
#include "storage/log.h"
#include "storage/page_trim.h"
#include "storage/syncer.h"
#include "storage/write_pool.h"
#include "util/crc32c.h"

static int g_pass, g_fail;
static const char *g_test;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            g_pass++;                                                                    \
        } else {                                                                         \
            g_fail++;                                                                    \
            fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, g_test, #cond); \
        }                                                                                \
    } while (0)

static const uint8_t TOPIC_ID[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                     0x0f, 0xed, 0xcb, 0xa9, 0x87, 0x65, 0x43, 0x21};

/* ---- batch builder ---- */

/* An uncompressed v2 batch of n records, value_size bytes each; record i
 * has timestamp ts0 + i * ts_step. baseOffset and epoch are left 0. */
static uint8_t *make_batch(int n, int value_size, int64_t ts0, int64_t ts_step, size_t *len) {
    kwriter recs;
    kw_init(&recs);
    uint8_t *value = malloc((size_t)value_size + 1);
    for (int i = 0; i < value_size; i++) value[i] = (uint8_t)('a' + i % 26);
    for (int i = 0; i < n; i++) {
        kwriter body;
        kw_init(&body);
        kw_i8(&body, 0);                       /* attributes */
        kw_varlong(&body, (int64_t)i * ts_step); /* timestamp delta */
        kw_varint(&body, i);                   /* offset delta */
        kw_varint(&body, -1);                  /* null key */
        kw_varint(&body, value_size);
        kw_raw(&body, value, (size_t)value_size);
        kw_varint(&body, 0);                   /* no headers */
        kw_varint(&recs, (int32_t)body.len);
        kw_raw(&recs, body.buf, body.len);
        kw_free(&body);
    }
    free(value);
    size_t total = BATCH_HEADER_SIZE + recs.len;
    uint8_t *b = calloc(1, total);
    bh_put_u64(b + BATCH_OFF_BASE_OFFSET, 0);
    bh_put_u32(b + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    bh_put_u32(b + BATCH_OFF_LEADER_EPOCH, 0);
    b[BATCH_OFF_MAGIC] = 2;
    bh_put_u16(b + BATCH_OFF_ATTRIBUTES, 0);
    bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1));
    bh_put_u64(b + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)ts0);
    bh_put_u64(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(ts0 + (int64_t)(n - 1) * ts_step));
    bh_put_u64(b + BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
    bh_put_u16(b + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)-1);
    bh_put_u32(b + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    bh_put_u32(b + BATCH_OFF_RECORD_COUNT, (uint32_t)n);
    memcpy(b + BATCH_HEADER_SIZE, recs.buf, recs.len);
    kw_free(&recs);
    bh_put_u32(b + BATCH_OFF_CRC, crc32c(0, b + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
    *len = total;
    return b;
}

/* Appends one fresh batch; returns its first offset (-1 on failure). */
static int64_t append_batch(plog *l, int n, int value_size, int64_t ts0, int64_t ts_step, int32_t epoch) {
    size_t len;
    uint8_t *b = make_batch(n, value_size, ts0, ts_step, &len);
    int64_t first = -1, last = -1;
    int rc = plog_append(l, b, len, epoch, &first, &last);
    free(b);
    if (rc != 0) return -1;
    return first;
}

/* The records-module stand-in for timestamp lookups: uncompressed only. */
static int scan_uncompressed(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset, int64_t *timestamp,
                             void *ctx) {
    (void)ctx;
    *offset = -1;
    batch_header h;
    if (len < BATCH_HEADER_SIZE) return -1;
    batch_header_parse(batch, &h);
    kreader r;
    kr_init(&r, batch + BATCH_HEADER_SIZE, len - BATCH_HEADER_SIZE);
    for (int i = 0; i < h.record_count; i++) {
        int32_t rlen = kr_varint(&r);
        size_t start = r.pos;
        kr_i8(&r);
        int64_t tsd = kr_varlong(&r);
        int32_t od = kr_varint(&r);
        if (r.err || rlen < 0) return -1;
        if (h.base_timestamp + tsd >= ts) {
            *offset = h.base_offset + od;
            *timestamp = h.base_timestamp + tsd;
            return 0;
        }
        kr_skip(&r, (size_t)rlen - (r.pos - start));
    }
    return r.err ? -1 : 0;
}

/* ---- file helpers ---- */

static char g_root[128];

static void make_root(void) {
    snprintf(g_root, sizeof g_root, "/tmp/samsa-storage-XXXXXX");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        exit(2);
    }
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void part_dir(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_root, name); }

static void seg_file(char *buf, size_t cap, const char *dir, int64_t base, const char *suffix) {
    snprintf(buf, cap, "%s/%020" PRId64 "%s", dir, base, suffix);
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[*len] = 0;
    return b;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int count_suffix(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t a = strlen(e->d_name), b = strlen(suffix);
        if (a >= b && !strcmp(e->d_name + a - b, suffix)) n++;
    }
    if (d) closedir(d);
    return n;
}

static log_config small_config(void) {
    log_config c;
    log_config_defaults(&c);
    c.segment_bytes = 2048;
    c.index_interval_bytes = 200;
    return c;
}

static plog *open_log(const char *dir, const log_config *c, int64_t rp, int64_t lso) {
    plog *l = NULL;
    char err[256] = "";
    if (plog_open(dir, "t", 0, TOPIC_ID, c, rp, lso, false, &l, err, sizeof err) != 0) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return NULL;
    }
    return l;
}

/* Reads the batch header at a slice's start. */
static int slice_header(const plog_slice *s, batch_header *h) {
    uint8_t buf[BATCH_HEADER_SIZE];
    if (s->len < BATCH_HEADER_SIZE || pread(s->fd, buf, sizeof buf, s->file_pos) != BATCH_HEADER_SIZE) return -1;
    batch_header_parse(buf, h);
    return 0;
}

/* Walks a slice: every batch whole, offsets ascending; returns the batch
 * count and the last offset seen. */
static int slice_batches(const plog_slice *s, int64_t *last_offset) {
    int n = 0;
    int64_t p = s->file_pos, end = s->file_pos + s->len;
    while (p < end) {
        uint8_t buf[BATCH_HEADER_SIZE];
        if (pread(s->fd, buf, sizeof buf, p) != BATCH_HEADER_SIZE) return -1;
        batch_header h;
        batch_header_parse(buf, &h);
        if (p + (int64_t)batch_total_size(&h) > end) return -1;
        *last_offset = batch_last_offset(&h);
        p += (int64_t)batch_total_size(&h);
        n++;
    }
    return n;
}

/* Fills a log with `batches` batches of 3 records (~100 bytes each). */
static void fill(plog *l, int batches, int64_t ts0, int32_t epoch) {
    for (int i = 0; i < batches; i++) append_batch(l, 3, 100, ts0 + i * 30, 10, epoch);
}

/* Checks the .index and .timeindex of one segment against its .log. */
static void check_indexes(const char *dir, int64_t base) {
    char p[512];
    size_t ilen, tlen, llen;
    seg_file(p, sizeof p, dir, base, ".index");
    uint8_t *idx = read_file(p, &ilen);
    seg_file(p, sizeof p, dir, base, ".timeindex");
    uint8_t *tim = read_file(p, &tlen);
    seg_file(p, sizeof p, dir, base, ".log");
    uint8_t *log = read_file(p, &llen);
    CHECK(idx && tim && log);
    if (!idx || !tim || !log) goto out;
    CHECK(ilen % 8 == 0);
    CHECK(tlen % 12 == 0);
    int64_t prev_rel = -1, prev_pos = -1;
    bool ok = true;
    for (size_t i = 0; i + 8 <= ilen; i += 8) {
        int64_t rel = (int32_t)bh_get_u32(idx + i), pos = (int32_t)bh_get_u32(idx + i + 4);
        ok &= rel > prev_rel && pos > prev_pos && pos + BATCH_HEADER_SIZE <= (int64_t)llen;
        if (!ok) break;
        batch_header h;
        batch_header_parse(log + pos, &h);
        ok &= batch_last_offset(&h) == base + rel; /* entries name the batch's last offset */
        prev_rel = rel;
        prev_pos = pos;
    }
    CHECK(ok);
    int64_t prev_ts = -1;
    ok = true;
    for (size_t i = 0; i + 12 <= tlen; i += 12) {
        int64_t ts = (int64_t)bh_get_u64(tim + i);
        ok &= ts > prev_ts;
        prev_ts = ts;
    }
    CHECK(ok);
out:
    free(idx);
    free(tim);
    free(log);
}

/* ---- tests ---- */

static void test_append_read_roll(void) {
    g_test = "append_read_roll";
    char dir[256];
    part_dir(dir, sizeof dir, "t-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == 0 && plog_start_offset(l) == 0 && plog_segment_count(l) == 1);
    for (int i = 0; i < 40; i++) {
        size_t len;
        uint8_t *b = make_batch(3, 100, 1000 + i * 30, 10, &len);
        int64_t first, last;
        CHECK(plog_append(l, b, len, 0, &first, &last) == 0);
        CHECK(first == i * 3 && last == i * 3 + 2);
        free(b);
    }
    CHECK(plog_end_offset(l) == 120);
    CHECK(plog_segment_count(l) > 3);
    CHECK(count_suffix(dir, ".log") == plog_segment_count(l));
    /* Each offset reads back as the batch holding it. */
    bool ok = true;
    for (int64_t o = 0; o < 120; o++) {
        plog_slice s;
        batch_header h;
        ok &= plog_read(l, o, 1 << 20, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 &&
              h.base_offset <= o && batch_last_offset(&h) >= o && h.base_offset == o - o % 3;
    }
    CHECK(ok);
    /* Reading through the slices visits every offset once, in order. */
    int64_t next = 0;
    int reads = 0;
    while (next < 120 && reads < 1000) {
        plog_slice s;
        int64_t last = -1;
        if (plog_read(l, next, 1 << 20, true, INT64_MAX, &s) != 0 || s.len == 0) break;
        if (slice_batches(&s, &last) <= 0) break;
        next = last + 1;
        reads++;
    }
    CHECK(next == 120);
    CHECK(reads == plog_segment_count(l)); /* one segment per read, like Kafka */
    /* At the LEO: nothing yet; past it: out of range. */
    plog_slice s;
    CHECK(plog_read(l, 120, 1000, true, INT64_MAX, &s) == 0 && s.len == 0);
    CHECK(plog_read(l, 121, 1000, true, INT64_MAX, &s) == PLOG_OFFSET_OUT_OF_RANGE);
    CHECK(plog_read(l, -1, 1000, true, INT64_MAX, &s) == PLOG_OFFSET_OUT_OF_RANGE);
    CHECK(plog_size(l) == 40 * (int64_t)(BATCH_HEADER_SIZE + 3 * 109));
    plog_close(l);
    /* Index sanity on every segment, closed and trimmed. */
    DIR *d = opendir(dir);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n == 24 && !strcmp(e->d_name + 20, ".log")) {
            check_indexes(dir, strtoll(e->d_name, NULL, 10));
            checked++;
        }
    }
    closedir(d);
    CHECK(checked > 3);
    /* partition.metadata is Kafka's format. */
    char p[512];
    size_t len;
    snprintf(p, sizeof p, "%s/partition.metadata", dir);
    uint8_t *meta = read_file(p, &len);
    CHECK(meta && !strcmp((char *)meta, "version: 0\ntopic_id: EjRWeJq83vAP7cuph2VDIQ\n"));
    free(meta);
}

static void test_max_bytes_min_one_hw(void) {
    g_test = "max_bytes_min_one_hw";
    char dir[256];
    part_dir(dir, sizeof dir, "mb-0");
    log_config c;
    log_config_defaults(&c);
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 10, 1000, 0); /* 10 batches of 388 bytes, offsets 0..29 */
    const int bsz = BATCH_HEADER_SIZE + 3 * 109;
    plog_slice s;
    int64_t last;
    CHECK(plog_read(l, 4, 10, true, INT64_MAX, &s) == 0 && s.len == bsz);
    CHECK(plog_read(l, 4, 10, false, INT64_MAX, &s) == 0 && s.len == 0);
    CHECK(plog_read(l, 4, bsz * 2 + bsz / 2, false, INT64_MAX, &s) == 0 && s.len == 2 * bsz);
    CHECK(slice_batches(&s, &last) == 2 && last == 8);
    CHECK(plog_read(l, 3, 1 << 20, false, INT64_MAX, &s) == 0 && s.len == 9 * bsz && s.file_pos == bsz);
    /* High watermark 13: batches up to offset 11 only. */
    CHECK(plog_read(l, 3, 1 << 20, false, 13, &s) == 0 && slice_batches(&s, &last) == 3 && last == 11);
    CHECK(plog_read(l, 3, 1 << 20, false, 12, &s) == 0 && slice_batches(&s, &last) == 3 && last == 11);
    CHECK(plog_read(l, 13, 1 << 20, true, 13, &s) == 0 && s.len == 0);
    CHECK(plog_read(l, 12, 1 << 20, true, 13, &s) == 0 && s.len == 0); /* batch 12..14 straddles the HW */
    plog_close(l);
}

static void test_reopen(void) {
    g_test = "reopen";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "ro-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 30, 5000, 3);
    int64_t leo = plog_end_offset(l);
    int segs = plog_segment_count(l);
    plog_close(l);
    size_t a_len, b_len;
    seg_file(p, sizeof p, dir, 0, ".index");
    uint8_t *before = read_file(p, &a_len);
    struct stat st0;
    stat(p, &st0);
    l = open_log(dir, &c, leo, 0);
    CHECK(l != NULL);
    if (!l) {
        free(before);
        return;
    }
    CHECK(plog_end_offset(l) == leo);
    CHECK(plog_segment_count(l) == segs);
    CHECK(plog_latest_epoch(l) == 3);
    struct stat st1;
    stat(p, &st1);
    uint8_t *after = read_file(p, &b_len);
    CHECK(a_len == b_len && a_len > 0 && !memcmp(before, after, a_len));
    CHECK(st0.st_mtim.tv_sec == st1.st_mtim.tv_sec && st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec); /* reused */
    free(before);
    free(after);
    CHECK(append_batch(l, 2, 10, 9000, 1, 3) == leo);
    plog_slice s;
    batch_header h;
    CHECK(plog_read(l, 7, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 && h.base_offset == 6);
    plog_close(l);
}

/* A flush by another thread (the metadata log's): the handle covers the
 * active segment up to the LEO once what lies before it is durable, and
 * plog_synced_to moves the recovery point; a log whose sealed segments are
 * not all durable, or whose directory is not, gives none (flush instead). */
static void test_sync_handle(void) {
    g_test = "sync handle";
    char dir[256];
    part_dir(dir, sizeof dir, "sh-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    int64_t upto = -1;
    int fd = plog_sync_handle(l, &upto);
    if (fd >= 0) close(fd);
    CHECK(fd < 0); /* a new directory: its first flush makes it durable */
    CHECK(plog_flush(l) == 0);
    fill(l, 3, 100, 1);
    int64_t leo = plog_end_offset(l);
    CHECK(plog_recovery_point(l) < leo);
    fd = plog_sync_handle(l, &upto);
    CHECK(fd >= 0 && upto == leo);
    if (fd >= 0) {
        CHECK(fdatasync(fd) == 0);
        close(fd);
    }
    plog_synced_to(l, upto);
    CHECK(plog_recovery_point(l) == leo);
    fill(l, 40, 5000, 1); /* rolls: the roll flushes what it seals */
    CHECK(plog_segment_count(l) > 1);
    fd = plog_sync_handle(l, &upto);
    CHECK(fd >= 0 && upto == plog_end_offset(l));
    if (fd >= 0) close(fd);
    plog_synced_to(l, upto + 100); /* never past the LEO */
    CHECK(plog_recovery_point(l) == plog_end_offset(l));
    plog_close(l);
}

/* Reopened after a clean shutdown (Kafka's .kafka_cleanshutdown): nothing
 * is recovered, the active segment's indexes are not rebuilt (its files stay
 * as they are), and the log answers as before; a tail that does not add up
 * with the index is recovered after all. */
static plog *open_clean(const char *dir, const log_config *c, int64_t rp) {
    plog *l = NULL;
    char err[256] = "";
    if (plog_open(dir, "t", 0, TOPIC_ID, c, rp, -1, true, &l, err, sizeof err) != 0) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return NULL;
    }
    return l;
}

static void test_clean_shutdown_reopen(void) {
    g_test = "clean_shutdown_reopen";
    char dir[256], idx[512], logp[512];
    part_dir(dir, sizeof dir, "clean-0");
    log_config c = small_config();
    c.segment_bytes = 20000; /* two segments, ~50 batches in the active one */
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 100, 1000, 2);
    append_batch(l, 4, 10, 90000, 100, 2); /* the max timestamp, 90300, in the last batch */
    int64_t leo = plog_end_offset(l), off, ts;
    int segs = plog_segment_count(l);
    int64_t active_base = plog_segment_base(l, segs - 1);
    CHECK(segs == 2 && active_base > 0);
    plog_close(l);
    seg_file(idx, sizeof idx, dir, active_base, ".index");
    seg_file(logp, sizeof logp, dir, active_base, ".log");
    struct stat st0, st1;
    CHECK(stat(idx, &st0) == 0 && st0.st_size > 8 * 10);
    int64_t log_size = file_size(logp);

    /* recovery point 0: without the marker everything would be scanned */
    l = open_clean(dir, &c, 0);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo && plog_segment_count(l) == segs);
    CHECK(plog_recovery_point(l) == leo);
    CHECK(stat(idx, &st1) == 0 && st1.st_mtim.tv_sec == st0.st_mtim.tv_sec &&
          st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec); /* the active index was not rewritten */
    CHECK(plog_max_timestamp(l, scan_uncompressed, NULL, &off, &ts) == 0 && off == leo - 1 && ts == 90300);
    CHECK(plog_offset_for_timestamp(l, 1000 + 80 * 30, scan_uncompressed, NULL, &off, &ts) == 0 && off == 240);
    plog_slice sl;
    batch_header h;
    CHECK(plog_read(l, leo - 60, 100, true, INT64_MAX, &sl) == 0 && slice_header(&sl, &h) == 0 &&
          h.base_offset == leo - 61);
    CHECK(append_batch(l, 2, 10, 95000, 1, 2) == leo); /* appends go on densely */
    leo += 2;
    plog_close(l);
    check_indexes(dir, active_base);

    /* bytes after the last batch (as a torn append would leave, though a
     * clean close never does): the tail check sees them and recovers */
    log_size = file_size(logp);
    FILE *f = fopen(logp, "ab");
    fwrite("garbage after the last batch", 1, 28, f);
    fclose(f);
    l = open_clean(dir, &c, 0);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo && file_size(logp) == log_size);
    plog_close(l);

    /* a flipped byte in the last batch (after the last index entry): recovered from there */
    int64_t last_pos = -1, pos = 0;
    size_t n;
    uint8_t *data = read_file(logp, &n);
    while (data && pos + 12 <= (int64_t)n) {
        last_pos = pos;
        pos += 12 + (int64_t)((uint32_t)data[pos + 8] << 24 | (uint32_t)data[pos + 9] << 16 |
                              (uint32_t)data[pos + 10] << 8 | data[pos + 11]);
    }
    free(data);
    CHECK(last_pos > 0);
    f = fopen(logp, "r+b");
    fseek(f, (long)log_size - 3, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, (long)log_size - 3, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    l = open_clean(dir, &c, 0);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo - 2 && file_size(logp) == last_pos);
    plog_close(l);
    check_indexes(dir, active_base);
}

/* Builds a log, closes it, returns its LEO and segment count. */
static int64_t build_closed(const char *dir, const log_config *c, int batches, int *segs) {
    plog *l = open_log(dir, c, 0, -1);
    if (!l) return -1;
    fill(l, batches, 1000, 0);
    int64_t leo = plog_end_offset(l);
    if (segs) *segs = plog_segment_count(l);
    plog_close(l);
    return leo;
}

static int64_t last_base(const char *dir) {
    int64_t best = -1;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n == 24 && !strcmp(e->d_name + 20, ".log")) {
            int64_t b = strtoll(e->d_name, NULL, 10);
            if (b > best) best = b;
        }
    }
    closedir(d);
    return best;
}

static void test_recovery_torn_tail(void) {
    g_test = "recovery_torn_tail";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "torn-0");
    log_config c = small_config();
    int64_t leo = build_closed(dir, &c, 12, NULL);
    int64_t base = last_base(dir);
    seg_file(p, sizeof p, dir, base, ".log");
    int64_t size = file_size(p);
    CHECK(size > 388);
    CHECK(truncate(p, size - 100) == 0); /* cut the last batch */
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo - 3);
    CHECK(file_size(p) == size - 388);
    CHECK(append_batch(l, 3, 50, 7000, 1, 0) == leo - 3);
    CHECK(plog_end_offset(l) == leo);
    plog_close(l);
    check_indexes(dir, base);
}

/* A segment file as Kafka leaves it with preallocate=true after a crash:
 * the data, then zeros up to the preallocated size. Recovery cuts the zeros
 * (the first "batch" has length 0), as Kafka's does, whatever the recovery
 * point, and appends continue at the same offsets. */
static void test_recovery_zero_tail(void) {
    g_test = "recovery_zero_tail";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "zeros-0");
    log_config c = small_config();
    int64_t leo = build_closed(dir, &c, 12, NULL);
    int64_t base = last_base(dir);
    seg_file(p, sizeof p, dir, base, ".log");
    int64_t size = file_size(p);
    CHECK(size > 0);
    /* A whole preallocated tail, then one shorter than a batch header. */
    int64_t tails[2] = {1 << 20, 30};
    for (int i = 0; i < 2; i++) {
        CHECK(truncate(p, size + tails[i]) == 0);
        plog *l = open_log(dir, &c, leo, -1); /* even a recovery point at the LEO rescans the active segment */
        CHECK(l != NULL);
        if (!l) return;
        CHECK(plog_end_offset(l) == leo);
        CHECK(file_size(p) == size);
        plog_close(l);
    }
    plog *l = open_log(dir, &c, leo, -1);
    CHECK(l && append_batch(l, 3, 50, 7000, 1, 0) == leo);
    if (l) plog_close(l);
    check_indexes(dir, base);
}

/* Allocated bytes of a file (its blocks), or -1. */
static int64_t file_blocks(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

/* preallocate: disk space is reserved ahead of the active segment's appends
 * (fallocate KEEP_SIZE) while every file keeps exactly the data's size; a
 * roll and a close give the reservation back; a crash (a child that exits
 * without closing) leaves a reservation that recovery does not mistake for
 * data and the next close releases. */
static void test_preallocate(void) {
    g_test = "preallocate";
    char dir[256], p0[512], p[512];
    part_dir(dir, sizeof dir, "prealloc-0");
    log_config c = small_config();
    c.segment_bytes = 1 << 20;
    c.prealloc_chunk_bytes = c.segment_bytes; /* preallocate=true: the whole segment */
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    fill(l, 10, 1000, 0);
    seg_file(p0, sizeof p0, dir, 0, ".log");
    int64_t size = file_size(p0);
    CHECK(size == plog_size(l));
    bool reserved = file_blocks(p0) >= c.segment_bytes;
    if (!reserved) fprintf(stderr, "note: no fallocate here; preallocation checks skipped\n");
    /* Fill past segment.bytes: the first segment rolls and gives its reservation back. */
    while (plog_segment_count(l) < 2) fill(l, 50, 2000, 0);
    CHECK(file_blocks(p0) <= (file_size(p0) + 4095) / 4096 * 4096 + (64 << 10));
    int64_t base = last_base(dir);
    seg_file(p, sizeof p, dir, base, ".log");
    CHECK(!reserved || file_blocks(p) >= c.segment_bytes / 2);
    int64_t leo = plog_end_offset(l);
    plog_close(l);
    CHECK(file_blocks(p) <= (file_size(p) + 4095) / 4096 * 4096 + (64 << 10));
    /* A crash with a reservation in place: the child appends and exits at once. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        plog *cl = open_log(dir, &c, leo, -1);
        if (!cl) _exit(3);
        fill(cl, 3, 9000, 0);
        _exit(plog_end_offset(cl) == leo + 9 ? 0 : 4);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!reserved || file_blocks(p) >= c.segment_bytes / 2);
    int64_t crashed_size = file_size(p);
    l = open_log(dir, &c, leo, -1);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo + 9);
    CHECK(file_size(p) == crashed_size);
    CHECK(append_batch(l, 3, 50, 9500, 1, 0) == leo + 9);
    plog_slice s;
    int64_t last = -1;
    CHECK(plog_read(l, leo, 1 << 20, true, INT64_MAX, &s) == 0 && slice_batches(&s, &last) == 4 && last == leo + 11);
    plog_close(l);
    CHECK(file_blocks(p) <= (file_size(p) + 4095) / 4096 * 4096 + (64 << 10));
    check_indexes(dir, base);
}

/* Reservation in steps smaller than the segment (the broker's default for
 * segments of the usual sizes): a segment reserves nothing until it holds a
 * step's worth, then keeps about a step reserved ahead of its appends. */
static void test_preallocate_steps(void) {
    g_test = "preallocate_steps";
    char dir[256], p0[512];
    part_dir(dir, sizeof dir, "prealloc-steps-0");
    log_config c = small_config();
    c.segment_bytes = 4 << 20;
    c.prealloc_chunk_bytes = 256 << 10;
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    seg_file(p0, sizeof p0, dir, 0, ".log");
    while (plog_size(l) < (200 << 10)) fill(l, 10, 1000, 0);
    /* below a step: the file holds its data's blocks only */
    CHECK(file_blocks(p0) <= (file_size(p0) + 4095) / 4096 * 4096 + (64 << 10));
    while (plog_size(l) < (300 << 10)) fill(l, 10, 1000, 0);
    CHECK(file_size(p0) == plog_size(l));
    int64_t blocks = file_blocks(p0);
    int fd = open(p0, O_RDWR);
    bool can_reserve = fd >= 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) == 0; /* a no-op probe */
    if (fd >= 0) close(fd);
    if (!can_reserve) fprintf(stderr, "note: no fallocate here; the step reservation check is skipped\n");
    CHECK(!can_reserve || blocks >= file_size(p0) + (128 << 10));
    /* past a step: at most a step (and the extent tree's blocks) beyond the data */
    CHECK(blocks <= file_size(p0) + (256 << 10) + (64 << 10) + 4096);
    plog_close(l);
    CHECK(file_blocks(p0) <= (file_size(p0) + 4095) / 4096 * 4096 + (64 << 10));
}

/* Bytes of [off, off + len) of a file that are in the page cache (mincore). */
static int64_t resident_bytes(const char *path, int64_t off, int64_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int64_t size = file_size(path), end = off + len < size ? off + len : size, n = 0;
    long page = sysconf(_SC_PAGESIZE);
    void *m = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    close(fd);
    if (m == MAP_FAILED) return -1;
    size_t pages = ((size_t)size + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    if (vec && mincore(m, (size_t)size, vec) == 0)
        for (int64_t p = off / page; p * page < end; p++) {
            int64_t from = p * page > off ? p * page : off, to = (p + 1) * page < end ? (p + 1) * page : end;
            n += (vec[p] & 1) ? to - from : 0;
        }
    else n = -1;
    free(vec);
    munmap(m, (size_t)size);
    return n;
}

/* log_config.page_cache_window_bytes: what lies a window behind the end is
 * written back and dropped from the page cache (here inline: no worker),
 * across rolls; the newest bytes stay cached; the data reads back whole. */
static void test_page_cache_window(void) {
    g_test = "page_cache_window";
    char dir[256], p0[512], pa[512], pp[512];
    part_dir(dir, sizeof dir, "page-window-0");
    log_config c = small_config();
    c.segment_bytes = 1 << 20;
    c.index_interval_bytes = 4096;
    c.page_cache_window_bytes = 512 << 10; /* ranges of 64 KiB */
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    uint64_t trimmed0 = ptrim_bytes_trimmed();
    while (plog_size(l) < (3 << 20)) fill(l, 10, 1000, 0);
    int64_t size = plog_size(l);
    CHECK(plog_segment_count(l) >= 3);
    uint64_t trimmed = ptrim_bytes_trimmed() - trimmed0;
    /* everything but the window and the range being filled, give or take a range */
    CHECK(trimmed >= (uint64_t)(size - (512 << 10) - 2 * (64 << 10)));
    CHECK(trimmed <= (uint64_t)(size - (512 << 10)));
    seg_file(p0, sizeof p0, dir, 0, ".log");
    seg_file(pa, sizeof pa, dir, plog_segment_base(l, plog_segment_count(l) - 1), ".log");
    seg_file(pp, sizeof pp, dir, plog_segment_base(l, plog_segment_count(l) - 2), ".log");
    struct statfs fs;
    bool droppable = statfs(dir, &fs) == 0 && fs.f_type != TMPFS_MAGIC;
    if (!droppable) fprintf(stderr, "note: %s is on tmpfs, whose pages cannot be dropped; residency not checked\n", dir);
    int64_t old_resident = resident_bytes(p0, 0, file_size(p0));
    CHECK(old_resident >= 0);
    CHECK(!droppable || old_resident <= 4096); /* a range's last partial page may stay */
    /* the newest bytes: the active segment and the end of the one before */
    CHECK(resident_bytes(pa, 0, file_size(pa)) == file_size(pa));
    CHECK(file_size(pa) < (256 << 10));
    CHECK(resident_bytes(pp, file_size(pp) - (128 << 10), 128 << 10) == 128 << 10);
    /* the first batch reads back as written */
    plog_slice sl;
    CHECK(plog_read(l, 0, 1 << 20, true, plog_end_offset(l), &sl) == 0);
    uint8_t head[BATCH_HEADER_SIZE];
    CHECK(sl.len >= (int32_t)sizeof head && pread(sl.fd, head, sizeof head, sl.file_pos) == (ssize_t)sizeof head);
    batch_header h;
    batch_header_parse(head, &h);
    CHECK(h.base_offset == 0 && h.magic == 2);
    plog_close(l);
}

static void test_recovery_bit_flip(void) {
    g_test = "recovery_bit_flip";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "flip-0");
    log_config c = small_config();
    int segs = 0;
    build_closed(dir, &c, 20, &segs);
    CHECK(segs >= 3);
    /* Flip a byte inside the 2nd batch of the first segment: everything from
     * there on, later segments included, goes. */
    seg_file(p, sizeof p, dir, 0, ".log");
    size_t len;
    uint8_t *data = read_file(p, &len);
    data[388 + 200] ^= 0x40;
    write_file(p, data, len);
    free(data);
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_end_offset(l) == 3);
    CHECK(plog_segment_count(l) == 1);
    CHECK(file_size(p) == 388);
    CHECK(count_suffix(dir, ".log") == 1);
    plog_slice s;
    CHECK(plog_read(l, 0, 1 << 20, true, INT64_MAX, &s) == 0 && s.len == 388);
    CHECK(append_batch(l, 1, 10, 1, 1, 0) == 3);
    plog_close(l);
}

static void test_index_rebuild(void) {
    g_test = "index_rebuild";
    char dir[256], p[512], tp[512];
    part_dir(dir, sizeof dir, "idx-0");
    log_config c = small_config();
    int64_t leo = build_closed(dir, &c, 20, NULL);
    size_t good_len, tgood_len, len;
    seg_file(p, sizeof p, dir, 0, ".index");
    seg_file(tp, sizeof tp, dir, 0, ".timeindex");
    uint8_t *good = read_file(p, &good_len);
    uint8_t *tgood = read_file(tp, &tgood_len);
    CHECK(good_len >= 16);
    /* Garbage of a valid length. */
    uint8_t junk[24];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 77 + 5);
    write_file(p, junk, sizeof junk);
    plog *l = open_log(dir, &c, leo, -1);
    CHECK(l != NULL);
    if (l) plog_close(l);
    uint8_t *now = read_file(p, &len);
    CHECK(now && len == good_len && !memcmp(now, good, len));
    free(now);
    /* Missing index and time index. */
    unlink(p);
    unlink(tp);
    l = open_log(dir, &c, leo, -1);
    CHECK(l != NULL);
    if (l) {
        plog_slice s;
        batch_header h;
        CHECK(plog_read(l, 5, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 && h.base_offset == 3);
        plog_close(l);
    }
    now = read_file(p, &len);
    CHECK(now && len == good_len && !memcmp(now, good, len));
    free(now);
    now = read_file(tp, &len);
    CHECK(now && len == tgood_len && !memcmp(now, tgood, len));
    free(now);
    /* Short (torn) index file. */
    CHECK(truncate(p, (off_t)good_len - 3) == 0);
    l = open_log(dir, &c, leo, -1);
    if (l) plog_close(l);
    now = read_file(p, &len);
    CHECK(now && len == good_len && !memcmp(now, good, len));
    free(now);
    free(good);
    free(tgood);
    /* Orphan index without a log is removed. */
    seg_file(p, sizeof p, dir, 999999, ".index");
    write_file(p, "", 0);
    l = open_log(dir, &c, leo, -1);
    if (l) plog_close(l);
    CHECK(file_size(p) == -1);
}

static void test_timestamps(void) {
    g_test = "timestamps";
    char dir[256];
    part_dir(dir, sizeof dir, "ts-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    /* Batch i: offsets 3i..3i+2, timestamps 1000+30i + {0,10,20}. */
    fill(l, 30, 1000, 0);
    int64_t off, ts;
    CHECK(plog_offset_for_timestamp(l, 1000, scan_uncompressed, NULL, &off, &ts) == 0 && off == 0 && ts == 1000);
    CHECK(plog_offset_for_timestamp(l, 1305, scan_uncompressed, NULL, &off, &ts) == 0 && off == 31 && ts == 1310);
    CHECK(plog_offset_for_timestamp(l, 1310, scan_uncompressed, NULL, &off, &ts) == 0 && off == 31 && ts == 1310);
    CHECK(plog_offset_for_timestamp(l, 1321, scan_uncompressed, NULL, &off, &ts) == 0 && off == 33 && ts == 1330);
    CHECK(plog_offset_for_timestamp(l, 1000 + 29 * 30 + 20, scan_uncompressed, NULL, &off, &ts) == 0 && off == 89);
    CHECK(plog_offset_for_timestamp(l, 999999, scan_uncompressed, NULL, &off, &ts) == 0 && off == -1 && ts == -1);
    CHECK(plog_offset_for_timestamp(l, 0, scan_uncompressed, NULL, &off, &ts) == 0 && off == 0);
    CHECK(plog_offset_for_timestamp(l, 1305, NULL, NULL, &off, &ts) == 0 && off == 30 && ts == 1320);
    CHECK(plog_offset_for_timestamp(l, PLOG_TS_EARLIEST, NULL, NULL, &off, &ts) == 0 && off == 0 && ts == -1);
    CHECK(plog_offset_for_timestamp(l, PLOG_TS_LATEST, NULL, NULL, &off, &ts) == 0 && off == 90);
    CHECK(plog_max_timestamp(l, scan_uncompressed, NULL, &off, &ts) == 0 && off == 89 && ts == 1890);
    /* A batch with an older max timestamp does not change the max. */
    append_batch(l, 2, 10, 5, 1, 0);
    CHECK(plog_offset_for_timestamp(l, PLOG_TS_MAX_TIMESTAMP, scan_uncompressed, NULL, &off, &ts) == 0 &&
          off == 89 && ts == 1890);
    append_batch(l, 4, 10, 5000, 100, 0); /* 92..95, max 5300 at 95 */
    CHECK(plog_max_timestamp(l, scan_uncompressed, NULL, &off, &ts) == 0 && off == 95 && ts == 5300);
    /* Same answers after a reopen (time indexes loaded from disk). */
    int64_t leo = plog_end_offset(l);
    plog_close(l);
    l = open_log(dir, &c, leo, -1);
    if (!l) return;
    CHECK(plog_offset_for_timestamp(l, 1305, scan_uncompressed, NULL, &off, &ts) == 0 && off == 31 && ts == 1310);
    CHECK(plog_max_timestamp(l, scan_uncompressed, NULL, &off, &ts) == 0 && off == 95 && ts == 5300);
    plog_close(l);
}

static void test_epochs(void) {
    g_test = "epochs";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "ep-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    int32_t e;
    int64_t end;
    CHECK(plog_latest_epoch(l) == -1);
    int64_t mo, mt;
    CHECK(plog_max_timestamp(l, scan_uncompressed, NULL, &mo, &mt) == 0 && mo == 0 && mt == -1);
    CHECK(plog_end_offset_for_epoch(l, 0, &e, &end) == 0 && e == -1 && end == -1);
    fill(l, 2, 1000, 1); /* 0..5 epoch 1 */
    fill(l, 2, 2000, 3); /* 6..11 epoch 3 */
    fill(l, 1, 3000, 3);
    fill(l, 2, 4000, 7); /* 15..20 epoch 7 */
    CHECK(plog_latest_epoch(l) == 7);
    CHECK(plog_end_offset_for_epoch(l, 7, &e, &end) == 0 && e == 7 && end == 21);
    CHECK(plog_end_offset_for_epoch(l, 3, &e, &end) == 0 && e == 3 && end == 15);
    CHECK(plog_end_offset_for_epoch(l, 5, &e, &end) == 0 && e == 3 && end == 15);
    CHECK(plog_end_offset_for_epoch(l, 1, &e, &end) == 0 && e == 1 && end == 6);
    CHECK(plog_end_offset_for_epoch(l, 0, &e, &end) == 0 && e == 0 && end == 0); /* Kafka 3.6.1 */
    CHECK(plog_end_offset_for_epoch(l, 9, &e, &end) == 0 && e == -1 && end == -1);
    CHECK(plog_end_offset_for_epoch(l, -1, &e, &end) == 0 && e == -1 && end == -1);
    CHECK(plog_epoch_for_offset(l, 0) == 1 && plog_epoch_for_offset(l, 10) == 3 && plog_epoch_for_offset(l, 20) == 7);
    /* The batches carry the epoch. */
    plog_slice s;
    batch_header h;
    CHECK(plog_read(l, 16, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 &&
          h.partition_leader_epoch == 7);
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", dir);
    size_t len;
    uint8_t *ck = read_file(p, &len);
    CHECK(ck && !strcmp((char *)ck, "0\n3\n1 0\n3 6\n7 15\n"));
    free(ck);
    /* Truncation drops the epoch that started past the new end. */
    CHECK(plog_truncate_to(l, 15) == 0);
    CHECK(plog_end_offset(l) == 15 && plog_latest_epoch(l) == 3);
    CHECK(plog_end_offset_for_epoch(l, 3, &e, &end) == 0 && e == 3 && end == 15);
    CHECK(plog_assign_epoch(l, 9) == 0 && plog_latest_epoch(l) == 9);
    CHECK(plog_end_offset_for_epoch(l, 3, &e, &end) == 0 && e == 3 && end == 15);
    plog_close(l);
    /* Losing the checkpoint: recovery rebuilds it from batch headers. */
    unlink(p);
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    CHECK(plog_latest_epoch(l) == 3);
    CHECK(plog_end_offset_for_epoch(l, 1, &e, &end) == 0 && e == 1 && end == 6);
    plog_close(l);
}

static void test_retention_bytes(void) {
    g_test = "retention_bytes";
    char dir[256];
    part_dir(dir, sizeof dir, "rb-0");
    log_config c = small_config();
    c.retention_bytes = 3000;
    c.retention_ms = -1;
    c.file_delete_delay_ms = 1000;
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    int64_t now = 1700000000000;
    fill(l, 30, now, 2); /* 30 * 388 = 11640 bytes, 5 batches per segment */
    int segs = plog_segment_count(l);
    CHECK(segs == 6);
    plog_tick(l, now);
    CHECK(plog_size(l) <= 3000 + 2048);
    CHECK(plog_size(l) >= 3000 - 2048);
    CHECK(plog_segment_count(l) < segs);
    int64_t start = plog_start_offset(l);
    CHECK(start > 0 && start % 15 == 0);
    plog_slice s;
    CHECK(plog_read(l, 0, 100, true, INT64_MAX, &s) == PLOG_OFFSET_OUT_OF_RANGE);
    CHECK(plog_read(l, start, 100, true, INT64_MAX, &s) == 0 && s.len > 0);
    CHECK(count_suffix(dir, ".deleted") > 0);
    /* The fd of a deleted segment stays readable until the delay passes. */
    plog_tick(l, now + 10);
    CHECK(count_suffix(dir, ".deleted") > 0);
    plog_tick(l, now + 10000000);
    CHECK(count_suffix(dir, ".deleted") == 0);
    CHECK(plog_end_offset(l) == 90);
    plog_close(l);
}

static void test_retention_time(void) {
    g_test = "retention_time";
    char dir[256];
    part_dir(dir, sizeof dir, "rt-0");
    log_config c = small_config();
    c.retention_ms = 60000;
    c.file_delete_delay_ms = 0;
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    int64_t now = 1700000000000;
    fill(l, 10, now - 3600000, 0); /* an hour old */
    fill(l, 10, now - 1000, 0);    /* fresh */
    int segs = plog_segment_count(l);
    plog_tick(l, now);
    CHECK(plog_segment_count(l) < segs);
    CHECK(plog_start_offset(l) >= 30 - 3 && plog_start_offset(l) <= 30);
    int64_t off, ts;
    CHECK(plog_offset_for_timestamp(l, 0, scan_uncompressed, NULL, &off, &ts) == 0 && off >= plog_start_offset(l));
    /* The high watermark protects unreplicated data. */
    plog_set_high_watermark(l, 45);
    plog_tick(l, now + 7200000);
    CHECK(plog_start_offset(l) <= 45);
    CHECK(plog_end_offset(l) == 60);
    /* Everything expired: even the active segment goes (rolled first). */
    plog_set_high_watermark(l, -1);
    plog_tick(l, now + 7200000);
    CHECK(plog_start_offset(l) == 60 && plog_end_offset(l) == 60);
    CHECK(plog_segment_count(l) == 1 && plog_size(l) == 0);
    CHECK(append_batch(l, 1, 1, now, 0, 0) == 60);
    plog_close(l);
}

static void test_delete_records(void) {
    g_test = "delete_records";
    char dir[256];
    part_dir(dir, sizeof dir, "dr-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 30, 1000, 4);
    int segs = plog_segment_count(l);
    CHECK(plog_delete_records(l, 40) == 0);
    CHECK(plog_start_offset(l) == 40);
    CHECK(plog_segment_count(l) == segs - 2); /* segments 0..14, 15..29 gone; 30.. holds 40 */
    plog_slice s;
    batch_header h;
    CHECK(plog_read(l, 39, 100, true, INT64_MAX, &s) == PLOG_OFFSET_OUT_OF_RANGE);
    CHECK(plog_read(l, 40, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 && h.base_offset == 39);
    CHECK(plog_delete_records(l, 1000) == -1 && errno == EINVAL);
    CHECK(plog_delete_records(l, 90) == 0 && plog_start_offset(l) == 90 && plog_segment_count(l) == 1);
    CHECK(plog_read(l, 90, 100, true, INT64_MAX, &s) == 0 && s.len == 0);
    int64_t off, ts;
    CHECK(plog_offset_for_timestamp(l, PLOG_TS_EARLIEST, NULL, NULL, &off, &ts) == 0 && off == 90);
    plog_close(l);
    /* The log start survives a reopen through the checkpoint the broker keeps. */
    l = open_log(dir, &c, 90, 90);
    if (!l) return;
    CHECK(plog_start_offset(l) == 90 && plog_end_offset(l) == 90);
    plog_close(l);
}

static void test_truncate_to(void) {
    g_test = "truncate_to";
    char dir[256];
    part_dir(dir, sizeof dir, "tr-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 20, 1000, 0);
    CHECK(plog_truncate_to(l, 33) == 0);
    CHECK(plog_end_offset(l) == 33);
    plog_slice s;
    int64_t last = -1;
    CHECK(plog_read(l, 30, 1 << 20, true, INT64_MAX, &s) == 0 && slice_batches(&s, &last) == 1 && last == 32);
    CHECK(append_batch(l, 3, 10, 1, 1, 0) == 33);
    CHECK(plog_truncate_to(l, 6) == 0 && plog_end_offset(l) == 6 && plog_segment_count(l) == 1);
    plog_close(l);
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    CHECK(plog_end_offset(l) == 6);
    plog_close(l);
}

/* ---- fault injection ---- */

static int g_fail_after; /* pwrites allowed before failing */
static int g_fail_errno;
static ssize_t faulty_pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (g_fail_after-- > 0) return pwrite(fd, buf, n, off);
    errno = g_fail_errno;
    return -1;
}
static ssize_t short_pwrite(int fd, const void *buf, size_t n, off_t off) {
    return pwrite(fd, buf, n > 7 ? n / 2 : n, off); /* always short, never failing */
}

static void test_enospc(void) {
    g_test = "enospc";
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "nospc-0");
    log_config c = small_config();
    c.segment_bytes = 1 << 20;
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 3, 1000, 0);
    seg_file(p, sizeof p, dir, 0, ".log");
    int64_t size = file_size(p), leo = plog_end_offset(l);
    /* The log write fails. */
    storage_fio.pwrite = faulty_pwrite;
    g_fail_after = 0;
    g_fail_errno = ENOSPC;
    size_t len;
    uint8_t *b = make_batch(3, 100, 2000, 1, &len);
    int64_t first, last;
    errno = 0;
    CHECK(plog_append(l, b, len, 0, &first, &last) == -1 && errno == ENOSPC);
    CHECK(plog_end_offset(l) == leo && file_size(p) == size);
    /* The index write (after the log write succeeded) fails: undone too. */
    g_fail_after = 1;
    free(b);
    b = make_batch(3, 100, 2000, 1, &len);
    CHECK(plog_append(l, b, len, 0, &first, &last) == -1 && errno == ENOSPC);
    CHECK(plog_end_offset(l) == leo && file_size(p) == size);
    /* Short writes are completed, not errors. */
    storage_fio.pwrite = short_pwrite;
    free(b);
    b = make_batch(3, 100, 2000, 1, &len);
    CHECK(plog_append(l, b, len, 0, &first, &last) == 0 && first == leo);
    storage_fio_reset();
    free(b);
    b = make_batch(3, 100, 2000, 1, &len);
    CHECK(plog_append(l, b, len, 0, &first, &last) == 0 && first == leo + 3);
    free(b);
    /* EIO on the epoch checkpoint rollback path. */
    storage_fio.pwrite = faulty_pwrite;
    g_fail_after = 0;
    g_fail_errno = EIO;
    CHECK(append_batch(l, 1, 1, 1, 1, 0) == -1);
    storage_fio_reset();
    CHECK(append_batch(l, 1, 1, 1, 1, 0) == leo + 6);
    plog_close(l);
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    CHECK(plog_end_offset(l) == leo + 7);
    plog_close(l);
}

static ssize_t nospace_write(int fd, const void *buf, size_t n) {
    (void)fd, (void)buf, (void)n;
    errno = ENOSPC;
    return -1;
}

static void test_checkpoints(void) {
    g_test = "checkpoints";
    char p[512];
    snprintf(p, sizeof p, "%s/recovery-point-offset-checkpoint", g_root);
    ckpt_offset_entry e[3] = {{"orders", 0, 100}, {"orders", 1, 0}, {"__consumer_offsets", 49, 12345678901}};
    CHECK(ckpt_offsets_write(p, e, 3) == 0);
    size_t len;
    uint8_t *text = read_file(p, &len);
    CHECK(text && !strcmp((char *)text, "0\n3\norders 0 100\norders 1 0\n__consumer_offsets 49 12345678901\n"));
    free(text);
    ckpt_offsets c;
    char err[200];
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == 0 && c.n == 3);
    CHECK(ckpt_offsets_find(&c, "__consumer_offsets", 49) == 12345678901);
    CHECK(ckpt_offsets_find(&c, "orders", 1) == 0 && ckpt_offsets_find(&c, "orders", 2) == -1);
    ckpt_offsets_free(&c);
    /* A failed write leaves the old file whole. */
    storage_fio.write = nospace_write;
    CHECK(ckpt_offsets_write(p, e, 1) == -1 && errno == ENOSPC);
    storage_fio_reset();
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == 0 && c.n == 3);
    ckpt_offsets_free(&c);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(file_size(tmp) == -1);
    /* Missing = empty; malformed = error. */
    snprintf(p, sizeof p, "%s/log-start-offset-checkpoint", g_root);
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == 0 && c.n == 0);
    write_file(p, "0\n2\norders 0 5\n", 15);
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == -1 && errno == EINVAL);
    write_file(p, "1\n0\n", 4);
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == -1);
    write_file(p, "0\n999999999\n", 12);
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == -1);
    write_file(p, "0\n1\norders x 5\n", 15);
    CHECK(ckpt_offsets_read(p, &c, err, sizeof err) == -1);
    /* Topic ids: Kafka's base64url without padding. */
    char s[23];
    uint8_t id[16];
    kafka_uuid_to_string(TOPIC_ID, s);
    CHECK(!strcmp(s, "EjRWeJq83vAP7cuph2VDIQ"));
    CHECK(kafka_uuid_from_string(s, 22, id) == 0 && !memcmp(id, TOPIC_ID, 16));
    CHECK(kafka_uuid_from_string("EjRWeJq83vAP7cuph2VDI=", 22, id) == -1);
    CHECK(kafka_uuid_from_string("EjRWeJq83vAP7cuph2VDIR", 22, id) == -1); /* non-zero pad bits */
    /* A partition dir that belongs to another topic id is refused. */
    char dir[256];
    part_dir(dir, sizeof dir, "t-0");
    uint8_t other[16] = {1};
    log_config cfg;
    log_config_defaults(&cfg);
    plog *l = NULL;
    CHECK(plog_open(dir, "t", 0, other, &cfg, 0, -1, false, &l, err, sizeof err) == -1 && l == NULL);
    CHECK(strstr(err, "does not match") != NULL);
}

static void test_delete(void) {
    g_test = "delete";
    char dir[256];
    part_dir(dir, sizeof dir, "del-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 12, 1000, 0);
    plog_delete_records(l, 20);
    CHECK(plog_delete(l) == 0);
    struct stat st;
    CHECK(stat(dir, &st) == -1 && errno == ENOENT);
}

/* A deleted log's directory renamed as Kafka names it, its files removed later. */
static void test_retire(void) {
    g_test = "retire";
    char dir[256], gone[PATH_MAX];
    part_dir(dir, sizeof dir, "ret-7");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 12, 1000, 0);
    plog_discard(l);
    CHECK(plog_retire_dir(dir, gone, sizeof gone) == 0);
    struct stat st;
    CHECK(stat(dir, &st) == -1 && errno == ENOENT);
    const char *base = strrchr(gone, '/') + 1;
    CHECK(strncmp(gone, g_root, strlen(g_root)) == 0 && strncmp(base, "ret-7.", 6) == 0);
    CHECK(strlen(base) == 6 + 32 + strlen(PLOG_DELETE_DIR_SUFFIX) &&
          strcmp(base + strlen(base) - 7, "-delete") == 0);
    CHECK(stat(gone, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(plog_remove_dir(gone) == 0);
    CHECK(stat(gone, &st) == -1 && errno == ENOENT);

    /* the name alone (what the partition-dirs thread renames to): Kafka's, the topic cut to 255 bytes */
    CHECK(plog_retired_name("/d/my.topic-12", gone, sizeof gone) == 0);
    CHECK(strncmp(gone, "/d/my.topic-12.", 15) == 0 && strlen(gone) == 15 + 32 + 7);
    char longdir[400] = "/d/";
    memset(longdir + 3, 'x', 249);
    strcpy(longdir + 3 + 249, "-1234");
    CHECK(plog_retired_name(longdir, gone, sizeof gone) == 0 && strlen(strrchr(gone, '/') + 1) == 255);
    CHECK(plog_retired_name("/d/nopartition", gone, sizeof gone) == -1 && errno == EINVAL);
    CHECK(plog_retired_name("/d/t-", gone, sizeof gone) == -1 && errno == EINVAL);
    /* a directory renamed by path, as a deleted partition's is on the thread */
    part_dir(dir, sizeof dir, "ret-8");
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    plog_discard(l);
    CHECK(plog_retire_dir(dir, gone, sizeof gone) == 0);
    CHECK(stat(dir, &st) == -1 && errno == ENOENT && stat(gone, &st) == 0);
    CHECK(plog_remove_dir(gone) == 0);
}

/* A directory made off the loop opens as an empty log, as one plog_open made. */
static void test_make_dir(void) {
    g_test = "make_dir";
    char dir[256];
    part_dir(dir, sizeof dir, "made-0");
    CHECK(plog_make_dir(dir, TOPIC_ID, -1) == 0);
    CHECK(plog_make_dir(dir, TOPIC_ID, -1) == 1); /* there already: untouched */
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    plog_mark_new(l);
    CHECK(plog_dir_was_created(l) && plog_end_offset(l) == 0);
    fill(l, 5, 100, 0);
    CHECK(plog_end_offset(l) == 15); /* 5 batches of 3 */
    CHECK(plog_close(l) == 0);
    uint8_t other[16] = {7};
    char err[256];
    CHECK(plog_open(dir, "t", 0, other, &c, 0, -1, false, &l, err, sizeof err) == -1); /* its topic id was written */

    /* A leader's partition: its first epoch is written with it, and the leader
     * starting that epoch finds it there (the file is not written again). */
    part_dir(dir, sizeof dir, "made-1");
    CHECK(plog_make_dir(dir, TOPIC_ID, 0) == 0);
    char ckpt[320];
    snprintf(ckpt, sizeof ckpt, "%s/leader-epoch-checkpoint", dir);
    struct stat before, after;
    CHECK(stat(ckpt, &before) == 0);
    size_t clen = 0;
    uint8_t *text = read_file(ckpt, &clen);
    CHECK(text && strcmp((const char *)text, "0\n1\n0 0\n") == 0); /* Kafka's format, epoch 0 at offset 0 */
    free(text);
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    plog_mark_new(l);
    CHECK(plog_latest_epoch(l) == 0);
    CHECK(plog_assign_epoch(l, 0) == 0);
    CHECK(stat(ckpt, &after) == 0 && after.st_ino == before.st_ino);
    CHECK(plog_assign_epoch(l, 1) == 0 && plog_latest_epoch(l) == 1); /* a later epoch replaces it */
    CHECK(plog_close(l) == 0);
}

/* plog_open_made gives the log plog_open loads from a directory just made
 * (without reading it back), for a leader's partition and a follower's, and
 * what it then writes opens again the same way after a restart. */
static void test_open_made(void) {
    g_test = "open_made";
    log_config c = small_config();
    char err[256];
    for (int32_t first_epoch = -1; first_epoch <= 3; first_epoch += 4) {
        char dir[256], ref_dir[256];
        part_dir(dir, sizeof dir, first_epoch < 0 ? "om-f" : "om-l");
        part_dir(ref_dir, sizeof ref_dir, first_epoch < 0 ? "omr-f" : "omr-l");
        CHECK(plog_make_dir(dir, TOPIC_ID, first_epoch) == 0);
        CHECK(plog_make_dir(ref_dir, TOPIC_ID, first_epoch) == 0);
        plog *l = NULL, *ref = open_log(ref_dir, &c, 0, -1);
        char arg[256]; /* the caller's buffer: the log must not keep it */
        snprintf(arg, sizeof arg, "%s", dir);
        CHECK(plog_open_made(arg, "t", 0, &c, first_epoch, &l, err, sizeof err) == 0);
        memset(arg, 'x', sizeof arg - 1);
        if (!l || !ref) return;
        plog_mark_new(ref);
        CHECK(plog_dir_was_created(l) && plog_end_offset(l) == plog_end_offset(ref));
        CHECK(plog_start_offset(l) == plog_start_offset(ref));
        CHECK(plog_latest_epoch(l) == plog_latest_epoch(ref) && plog_latest_epoch(l) == first_epoch);
        CHECK(plog_recovery_point(l) == plog_recovery_point(ref));
        int64_t *snaps = NULL;
        int nsnaps = -1;
        CHECK(plog_take_open_snapshots(l, &snaps, &nsnaps) == 0 && nsnaps == 0);
        free(snaps);
        plog_created(l);
        plog_created(ref);
        CHECK(plog_assign_epoch(l, 5) == 0 && plog_assign_epoch(ref, 5) == 0);
        fill(l, 4, 100, 0);
        fill(ref, 4, 100, 0);
        CHECK(plog_end_offset(l) == 12 && plog_end_offset(ref) == 12);
        CHECK(plog_close(l) == 0 && plog_close(ref) == 0);
        /* The same files: the same log when opened again. */
        l = open_log(dir, &c, 0, -1);
        ref = open_log(ref_dir, &c, 0, -1);
        if (!l || !ref) return;
        CHECK(plog_end_offset(l) == 12 && plog_end_offset(ref) == 12);
        int32_t e1, e2;
        int64_t o1, o2;
        plog_end_offset_for_epoch(l, first_epoch, &e1, &o1);
        plog_end_offset_for_epoch(ref, first_epoch, &e2, &o2);
        CHECK(e1 == e2 && o1 == o2);
        CHECK(plog_latest_epoch(l) == 5 && plog_latest_epoch(ref) == 5);
        CHECK(plog_close(l) == 0 && plog_close(ref) == 0);
    }
}

static void test_bad_append(void) {
    g_test = "bad_append";
    char dir[256];
    part_dir(dir, sizeof dir, "bad-0");
    log_config c = small_config();
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    size_t len;
    uint8_t *b = make_batch(2, 10, 1, 1, &len);
    int64_t f, la;
    CHECK(plog_append(l, b, len - 1, 0, &f, &la) == -1 && errno == EINVAL);
    bh_put_u32(b + BATCH_OFF_LENGTH, 10);
    CHECK(plog_append(l, b, len, 0, &f, &la) == -1 && errno == EINVAL);
    free(b);
    b = make_batch(30, 100, 1, 1, &len); /* bigger than segment_bytes */
    CHECK(plog_append(l, b, len, 0, &f, &la) == -1 && errno == EMSGSIZE);
    free(b);
    /* Two batches in one append get consecutive offsets. */
    size_t l1, l2;
    uint8_t *b1 = make_batch(2, 10, 1, 1, &l1), *b2 = make_batch(5, 10, 1, 1, &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, b1, l1);
    memcpy(both + l1, b2, l2);
    CHECK(plog_append(l, both, l1 + l2, 2, &f, &la) == 0 && f == 0 && la == 6);
    CHECK(bh_get_u64(both + l1) == 2);
    free(b1);
    free(b2);
    free(both);
    CHECK(plog_end_offset(l) == 7);
    plog_close(l);
}


static void test_roll_triggers_and_flush(void) {
    g_test = "roll_triggers_and_flush";
    char dir[256];
    part_dir(dir, sizeof dir, "roll-0");
    log_config c;
    log_config_defaults(&c);
    c.index_interval_bytes = 1;
    c.segment_index_bytes = 24; /* 3 offset entries, 2 time entries */
    c.flush_messages = 6;
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 3, 1000, 0);
    CHECK(plog_segment_count(l) == 1);
    /* Batches 1 and 2 filled the time index (2 entries): the next rolls. */
    fill(l, 2, 2000, 0);
    CHECK(plog_segment_count(l) == 2);
    /* flush.messages: everything below the LEO is fsynced every 6 offsets. */
    CHECK(plog_recovery_point(l) == 15);
    fill(l, 1, 2000, 0);
    CHECK(plog_recovery_point(l) == 15);
    fill(l, 1, 2000, 0);
    CHECK(plog_recovery_point(l) == 21 && plog_end_offset(l) == 21);
    /* segment.ms by record timestamps: a batch an hour after the segment's
     * first one rolls with segment.ms = 1 minute. */
    c.segment_ms = 60000;
    c.flush_messages = INT64_MAX;
    c.segment_index_bytes = 10485760;
    plog_set_config(l, &c);
    int segs = plog_segment_count(l);
    fill(l, 1, 2000 + 3600000, 0);
    CHECK(plog_segment_count(l) == segs + 1);
    fill(l, 1, 2000 + 3600000, 0);
    CHECK(plog_segment_count(l) == segs + 1);
    /* ... and by wall clock in plog_tick. */
    plog_tick(l, 2000 + 3600000 + 20 + 60001);
    CHECK(plog_segment_count(l) == segs + 2);
    CHECK(plog_recovery_point(l) == plog_end_offset(l)); /* a roll flushes */
    plog_tick(l, 2000 + 3600000 + 20 + 60001); /* empty active: no roll */
    CHECK(plog_segment_count(l) == segs + 2);
    /* flush.ms */
    fill(l, 1, 2000 + 3600000 + 70000, 0);
    c.flush_ms = 1000;
    c.segment_ms = INT64_MAX;
    plog_set_config(l, &c);
    CHECK(plog_recovery_point(l) < plog_end_offset(l));
    plog_tick(l, INT64_MAX / 2);
    CHECK(plog_recovery_point(l) == plog_end_offset(l));
    plog_close(l);
}

static int fsync_fails(int fd) {
    (void)fd;
    errno = EIO;
    return -1;
}

static void test_deleted_fd_and_fsync_failure(void) {
    g_test = "deleted_fd_and_fsync_failure";
    char dir[256];
    part_dir(dir, sizeof dir, "fd-0");
    log_config c = small_config();
    c.file_delete_delay_ms = 5000;
    plog *l = open_log(dir, &c, 0, -1);
    if (!l) return;
    fill(l, 12, 1000, 0);
    plog_slice s;
    CHECK(plog_read(l, 0, 1 << 20, true, INT64_MAX, &s) == 0 && s.len > 0);
    CHECK(plog_delete_records(l, 20) == 0);
    /* The slice handed out before the deletion still reads. */
    uint8_t buf[BATCH_HEADER_SIZE];
    batch_header h;
    CHECK(pread(s.fd, buf, sizeof buf, s.file_pos) == BATCH_HEADER_SIZE);
    batch_header_parse(buf, &h);
    CHECK(h.base_offset == 0 && h.magic == 2);
    /* An fsync failure poisons the log: appends fail until reopened. */
    storage_fio.fsync = fsync_fails;
    CHECK(plog_flush(l) == -1);
    storage_fio_reset();
    CHECK(append_batch(l, 1, 1, 1, 1, 0) == -1 && errno == EIO);
    plog_close(l);
    l = open_log(dir, &c, 0, 20);
    if (!l) return;
    CHECK(plog_start_offset(l) == 20 && plog_end_offset(l) == 36);
    CHECK(count_suffix(dir, ".deleted") == 0); /* leftovers removed at load */
    CHECK(append_batch(l, 1, 1, 1, 1, 0) == 36);
    plog_close(l);
}

/* A new log in "<prefix>-<i>"; its path is left in dir (256 bytes). */
static plog *open_numbered_log(char *dir, const char *prefix, int i, const log_config *c) {
    char name[64];
    snprintf(name, sizeof name, "%s-%d", prefix, i);
    part_dir(dir, 256, name);
    plog *l = open_log(dir, c, 0, -1);
    CHECK(l != NULL);
    return l;
}

static int open_fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

/* Many logs, each with several segments, through an index descriptor pool
 * far smaller than the number of index files: descriptors stay bounded
 * (one per segment plus the pool) while appends, index lookups by offset
 * and time, truncation and reopening all keep working. */
static void test_index_fd_pool(void) {
    g_test = "index_fd_pool";
    enum { LOGS = 24, POOL = 16 };
    log_config c = small_config();
    fdc_set_capacity(POOL);
    int before = open_fd_count();
    plog *logs[LOGS];
    char dirs[LOGS][256];
    for (int i = 0; i < LOGS; i++)
        if (!(logs[i] = open_numbered_log(dirs[i], "pool", i, &c))) return;
    /* Round-robin appends: every log rolls a few times (2 KiB segments). */
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < LOGS; i++) append_batch(logs[i], 3, 100, 1000 + round * 30, 10, 0);
    int segs = 0;
    for (int i = 0; i < LOGS; i++) segs += count_suffix(dirs[i], ".log");
    CHECK(segs > 2 * LOGS);
    CHECK(fdc_open_count() <= POOL);
    CHECK(open_fd_count() - before <= segs + POOL);
    /* Reads that need the offset index of an evicted, sealed segment. */
    bool reads_ok = true, times_ok = true;
    for (int i = 0; i < LOGS; i++) {
        plog_slice s;
        batch_header h;
        reads_ok &= plog_read(logs[i], 31, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 &&
                    h.base_offset == 30;
        int64_t off = -1, ts = -1;
        times_ok &= plog_offset_for_timestamp(logs[i], 1000 + 10 * 30 + 5, NULL, NULL, &off, &ts) == 0 &&
                    off == 30;
    }
    CHECK(reads_ok);
    CHECK(times_ok);
    CHECK(plog_truncate_to(logs[3], 39) == 0 && plog_end_offset(logs[3]) == 39);
    for (int i = 0; i < LOGS; i++) plog_close(logs[i]);
    CHECK(fdc_open_count() == 0);
    CHECK(open_fd_count() == before);
    for (int i = 0; i < LOGS; i++) check_indexes(dirs[i], 0);
    /* Reopened from the files the pool wrote. */
    plog *l = open_log(dirs[5], &c, 60, -1);
    CHECK(l != NULL);
    if (l) {
        plog_slice s;
        batch_header h;
        CHECK(plog_end_offset(l) == 60);
        CHECK(plog_read(l, 13, 100, true, INT64_MAX, &s) == 0 && slice_header(&s, &h) == 0 && h.base_offset == 12);
        plog_close(l);
    }
    fdc_set_capacity(FDC_DEFAULT_CAPACITY);
}

static int g_fsyncs;
static int fsync_counted(int fd) {
    g_fsyncs++;
    return fsync(fd);
}

/* Becoming leader of an existing partition (a new leader epoch) costs no
 * fsync on the caller's thread either: the checkpoint is written at once and
 * synced by the worker, or by the next flush. */
static void test_new_epoch_synced_in_background(void) {
    g_test = "new_epoch_synced_in_background";
    log_config c = small_config();
    char dir[256];
    part_dir(dir, sizeof dir, "epoch-bg-0");
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    plog_created(l);
    CHECK(plog_flush(l) == 0); /* durable before the test */
    storage_fio.fsync = fsync_counted;
    CHECK(syncer_start() == 0);
    g_fsyncs = 0;
    CHECK(plog_assign_epoch(l, 5) == 0);
    CHECK(g_fsyncs == 0);
    syncer_stop(); /* the worker synced it, with the real calls */
    CHECK(plog_flush(l) == 0 && g_fsyncs == 0);
    /* without a worker, a later epoch is synced at once or by the flush */
    CHECK(plog_assign_epoch(l, 7) == 0);
    CHECK(plog_flush(l) == 0);
    storage_fio_reset();
    plog_close(l);
    l = open_log(dir, &c, 0, -1);
    CHECK(l && plog_latest_epoch(l) == 7);
    if (l) plog_close(l);
}

/* A new partition costs no fsync on the caller's thread: its directory and
 * small files are synced by the background syncer, or by the first flush;
 * what a crash before that leaves (empty files) opens cleanly. */
static void test_lazy_creation_sync(void) {
    g_test = "lazy_creation_sync";
    log_config c = small_config();
    char dir[256], p[512];
    part_dir(dir, sizeof dir, "lazy-0");
    storage_fio.fsync = fsync_counted;
    g_fsyncs = 0;
    plog *l = open_log(dir, &c, 0, -1);
    CHECK(l != NULL);
    if (!l) return;
    CHECK(plog_assign_epoch(l, 3) == 0);
    CHECK(g_fsyncs == 0);
    /* First flush makes the directory durable before anything else. */
    CHECK(plog_flush(l) == 0);
    CHECK(g_fsyncs >= 4); /* partition.metadata, epoch checkpoint, dir, parent */
    int after_first = g_fsyncs;
    CHECK(plog_flush(l) == 0 && g_fsyncs == after_first); /* nothing new to sync */
    plog_close(l);
    /* Through the worker thread: many logs, then stop waits for them all. */
    CHECK(syncer_start() == 0);
    enum { N = 20 };
    plog *logs[N];
    char dirs[N][256];
    g_fsyncs = 0;
    for (int i = 0; i < N; i++) {
        if (!(logs[i] = open_numbered_log(dirs[i], "lazy-w", i, &c))) return;
        plog_assign_epoch(logs[i], 1);
        plog_created(logs[i]);
    }
    syncer_stop();
    CHECK(g_fsyncs == 0); /* the worker syncs with the real calls */
    for (int i = 0; i < N; i++) CHECK(plog_flush(logs[i]) == 0);
    CHECK(g_fsyncs == 0); /* every directory was already durable */
    for (int i = 0; i < N; i++) plog_close(logs[i]);
    storage_fio_reset();
    /* A crash before any sync can leave empty files: they read as absent. */
    snprintf(p, sizeof p, "%s/partition.metadata", dirs[0]);
    write_file(p, "", 0);
    snprintf(p, sizeof p, "%s/leader-epoch-checkpoint", dirs[0]);
    write_file(p, "", 0);
    l = open_log(dirs[0], &c, 0, -1);
    CHECK(l != NULL);
    if (l) {
        CHECK(plog_latest_epoch(l) == -1);
        plog_close(l);
    }
    snprintf(p, sizeof p, "%s/partition.metadata", dirs[0]);
    CHECK(file_size(p) > 0); /* written again */
    /* A failing sync on the first flush poisons the log like any fsync failure. */
    part_dir(dir, sizeof dir, "lazy-fail");
    l = open_log(dir, &c, 0, -1);
    if (!l) return;
    storage_fio.fsync = fsync_fails;
    CHECK(plog_flush(l) == -1);
    storage_fio_reset();
    CHECK(append_batch(l, 1, 1, 1, 1, 0) == -1);
    plog_close(l);
}

/* plog_append in three steps, several logs' writes run by the write pool on
 * other threads at once, then each ended: the logs hold exactly the bytes,
 * offsets and indexes of plain appends; a log is refused a second begin; a
 * failed write undoes its own append only. */
/* A wpool_run_each job: counts its index. */
static void count_job(void *ctx, int i) { ((int *)ctx)[i]++; }

static void test_append_steps_on_pool(void) {
    g_test = "append_steps_on_pool";
    enum { NLOGS = 4 };
    log_config c = small_config();
    c.segment_bytes = 1 << 20;
    plog *logs[NLOGS];
    char dirs[NLOGS][256];
    for (int i = 0; i < NLOGS; i++) {
        char name[32];
        snprintf(name, sizeof name, "steps-%d", i);
        part_dir(dirs[i], sizeof dirs[i], name);
        logs[i] = open_log(dirs[i], &c, 0, -1);
        if (!logs[i]) return;
        CHECK(append_batch(logs[i], 2, 10, 1000, 1, 0) == 0);
    }
    wpool *pool = wpool_new(2);
    CHECK(pool && wpool_threads(pool) == 0); /* none until a run needs them */
    uint8_t *b[NLOGS];
    size_t len[NLOGS];
    plog_write w[NLOGS], *wp[NLOGS];
    for (int i = 0; i < NLOGS; i++) {
        b[i] = make_batch(40 + i, 1000, 2000, 1, &len[i]);
        CHECK(plog_append_begin(logs[i], b[i], len[i], 3, &w[i]) == 0 && plog_append_in_flight(logs[i]));
        wp[i] = &w[i];
    }
    uint8_t *extra;
    size_t extra_len;
    plog_write wx;
    extra = make_batch(1, 10, 3000, 1, &extra_len);
    errno = 0;
    CHECK(plog_append_begin(logs[0], extra, extra_len, 3, &wx) == -1 && errno == EBUSY);
    CHECK(plog_end_offset(logs[0]) == 2); /* nothing visible before the end */
    wpool_run(pool, wp, NLOGS, 0);
    CHECK(wpool_threads(pool) == 2);
    for (int i = 0; i < NLOGS; i++) {
        int64_t first = -1, last = -1;
        CHECK(w[i].err == 0);
        CHECK(plog_append_end(logs[i], &w[i], &first, &last) == 0 && first == 2 && last == 2 + 40 + i - 1);
        CHECK(!plog_append_in_flight(logs[i]) && plog_end_offset(logs[i]) == 2 + 40 + i);
        /* the batch is in the file as written, offsets patched */
        plog_slice sl;
        CHECK(plog_read(logs[i], 2, 1 << 20, true, INT64_MAX, &sl) == 0 && sl.len == (int64_t)len[i]);
        uint8_t *back = malloc(len[i]);
        CHECK(back && pread(sl.fd, back, len[i], sl.file_pos) == (ssize_t)len[i] && memcmp(back, b[i], len[i]) == 0);
        batch_header h;
        CHECK(slice_header(&sl, &h) == 0 && h.base_offset == 2 && h.partition_leader_epoch == 3);
        free(back);
        free(b[i]);
    }
    /* a second run reuses the helpers */
    for (int i = 0; i < NLOGS; i++) {
        b[i] = make_batch(5, 1000, 4000, 1, &len[i]);
        CHECK(plog_append_begin(logs[i], b[i], len[i], 3, &w[i]) == 0);
    }
    wpool_run(pool, wp, NLOGS, 0);
    for (int i = 0; i < NLOGS; i++) {
        int64_t first = -1, last = -1;
        CHECK(plog_append_end(logs[i], &w[i], &first, &last) == 0 && first == 2 + 40 + i && last == first + 4);
        free(b[i]);
    }
    CHECK(wpool_threads(pool) == 2);
    /* one write fails (on the caller: min_parallel above the bytes), the other lands */
    char p0[512];
    seg_file(p0, sizeof p0, dirs[0], 0, ".log");
    int64_t size0 = file_size(p0), leo0 = plog_end_offset(logs[0]), leo1 = plog_end_offset(logs[1]);
    for (int i = 0; i < 2; i++) {
        b[i] = make_batch(3, 100, 5000, 1, &len[i]);
        CHECK(plog_append_begin(logs[i], b[i], len[i], 3, &w[i]) == 0);
    }
    storage_fio.pwrite = faulty_pwrite;
    g_fail_after = 0;
    g_fail_errno = ENOSPC;
    plog_write_run(&w[0]);
    storage_fio_reset();
    wpool_run(pool, &wp[1], 1, 0);
    int64_t first = -1, last = -1;
    errno = 0;
    CHECK(w[0].err == ENOSPC && plog_append_end(logs[0], &w[0], &first, &last) == -1 && errno == ENOSPC);
    CHECK(plog_end_offset(logs[0]) == leo0 && file_size(p0) == size0 && !plog_append_in_flight(logs[0]));
    CHECK(plog_append_end(logs[1], &w[1], &first, &last) == 0 && first == leo1);
    CHECK(append_batch(logs[0], 1, 10, 6000, 1, 3) == leo0); /* the log goes on */
    free(b[0]);
    free(b[1]);
    free(extra);
    /* any jobs: each index once, on the caller and the helpers (TSan sees the slots) */
    int slots[64] = {0};
    wpool_run_each(pool, count_job, slots, 64);
    bool once = true;
    for (int i = 0; i < 64; i++) once &= slots[i] == 1;
    CHECK(once);
    wpool_run_each(pool, count_job, slots, 1); /* one job: on the caller */
    CHECK(slots[0] == 2 && slots[1] == 1);
    wpool_free(pool);
    /* reopened, each log recovers to what was appended */
    for (int i = 0; i < NLOGS; i++) {
        int64_t leo = plog_end_offset(logs[i]);
        plog_close(logs[i]);
        plog *l = open_log(dirs[i], &c, 0, -1);
        CHECK(l && plog_end_offset(l) == leo);
        if (l) plog_close(l);
    }
}

int main(void) {
    make_root();
    test_append_read_roll();
    test_max_bytes_min_one_hw();
    test_reopen();
    test_sync_handle();
    test_clean_shutdown_reopen();
    test_recovery_torn_tail();
    test_recovery_bit_flip();
    test_recovery_zero_tail();
    test_preallocate();
    test_preallocate_steps();
    test_page_cache_window();
    test_index_rebuild();
    test_timestamps();
    test_epochs();
    test_retention_bytes();
    test_retention_time();
    test_delete_records();
    test_truncate_to();
    test_enospc();
    test_checkpoints();
    test_delete();
    test_retire();
    test_make_dir();
    test_open_made();
    test_bad_append();
    test_roll_triggers_and_flush();
    test_deleted_fd_and_fsync_failure();
    test_index_fd_pool();
    test_lazy_creation_sync();
    test_new_epoch_synced_in_background();
    test_append_steps_on_pool();
    remove_tree(g_root);
    printf("storage: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
