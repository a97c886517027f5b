/* test_follower_log.c - the storage side of a follower (storage/log.c's
 * plog_append_as_follower, plog_truncate_to, plog_truncate_fully_and_start_at,
 * and checkpoint.c's replication-offset-checkpoint) against real files.
 *
 * A leader log A is written with plog_append (offsets and epochs assigned as
 * the broker does); its bytes are read back with plog_read, in fetch-sized
 * pieces that may end mid-batch, and appended to a follower log B. B must
 * then hold the same bytes in the same segments, the same indexes and the
 * same leader-epoch-checkpoint. Crash safety: a child process runs a
 * follower script and exits at the k-th file system call that changes
 * something (a write torn in half first), for every k; the parent reopens
 * the log and checks it holds a prefix of whole batches of the leader's log
 * with matching epochs, then finishes the replication.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/wire.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/log.h"
#include "unit_check.h"
#include "util/crc32c.h"

static const uint8_t TOPIC_ID[16] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18,
                                     0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90};
static char g_root[128];

/* ---- batches and logs ---- */

/* An uncompressed v2 batch of n records of value_size bytes (values vary
 * with seed), timestamps ts0, ts0+1, ...; baseOffset 0, epoch 0. */
/* The follower appends of every test go through here: plog_append_as_follower,
 * or with g_split its three steps (begin, the write, end) as the replica
 * manager takes them when it writes a fetch answer's partitions at once,
 * falling back to plog_append_as_follower when begin leaves it (w.len 0)
 * and for the rest after a roll inside the input.
 * The whole suite runs both ways and must see the same logs. */
static bool g_split;
static int g_splits, g_fallbacks, g_rests;

static int follower_append(plog *l, const uint8_t *batches, size_t len, int64_t *last, size_t *used, char *err,
                           size_t errlen) {
    if (!g_split) return plog_append_as_follower(l, batches, len, last, used, err, errlen);
    plog_write w;
    *last = -1;
    *used = 0;
    int rc = plog_append_as_follower_begin(l, batches, len, &w, err, errlen);
    if (rc != 0) {
        CHECK(!plog_append_in_flight(l), "a refused begin leaves nothing open");
        return rc;
    }
    if (w.len == 0) {
        g_fallbacks++;
        return plog_append_as_follower(l, batches, len, last, used, err, errlen);
    }
    g_splits++;
    CHECK(plog_append_in_flight(l), "begun");
    plog_write wx;
    char ex[64];
    errno = 0;
    CHECK(plog_append_as_follower_begin(l, batches, len, &wx, ex, sizeof ex) == -1 && errno == EBUSY,
          "one append at a time");
    plog_write_run(&w);
    rc = plog_append_as_follower_end(l, &w, last, used, err, errlen);
    if (rc != 0 || w.len == len) return rc;
    /* a roll inside: the rest after the end, as the replica manager does */
    CHECK(*used == w.len, "the end took what begin wrote");
    int64_t rest_last = -1;
    size_t rest_used = 0;
    rc = plog_append_as_follower(l, batches + w.len, len - w.len, &rest_last, &rest_used, err, errlen);
    if (rest_used > 0) {
        g_rests++;
        *last = rest_last;
        *used += rest_used;
    }
    return rc;
}

static uint8_t *make_batch(int n, int value_size, int64_t ts0, int seed, size_t *len) {
    kwriter recs;
    kw_init(&recs);
    uint8_t *value = malloc((size_t)value_size + 1);
    for (int i = 0; i < value_size; i++) value[i] = (uint8_t)('a' + (i + seed) % 26);
    for (int i = 0; i < n; i++) {
        kwriter body;
        kw_init(&body);
        kw_i8(&body, 0);
        kw_varlong(&body, i);
        kw_varint(&body, i);
        kw_varint(&body, -1);
        kw_varint(&body, value_size);
        kw_raw(&body, value, (size_t)value_size);
        kw_varint(&body, 0);
        kw_varint(&recs, (int32_t)body.len);
        kw_raw(&recs, body.buf, body.len);
        kw_free(&body);
    }
    free(value);
    size_t total = BATCH_HEADER_SIZE + recs.len;
    uint8_t *b = calloc(1, total);
    bh_put_u32(b + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    b[BATCH_OFF_MAGIC] = 2;
    bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1));
    bh_put_u64(b + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)ts0);
    bh_put_u64(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)(ts0 + n - 1));
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

/* A batch as a leader would send it: offsets from base, the given epoch. */
static uint8_t *leader_batch(int64_t base, int32_t epoch, int n, int value_size, int seed, size_t *len) {
    uint8_t *b = make_batch(n, value_size, 1000 + base, seed, len);
    bh_put_u64(b + BATCH_OFF_BASE_OFFSET, (uint64_t)base);
    bh_put_u32(b + BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
    return b;
}

static log_config small_config(void) {
    log_config c;
    log_config_defaults(&c);
    c.segment_bytes = 2048;
    c.index_interval_bytes = 200;
    return c;
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_root, name); }

static plog *open_log(const char *dir, int64_t rp, int64_t lso) {
    log_config c = small_config();
    plog *l = NULL;
    char err[256] = "";
    if (plog_open(dir, "t", 0, TOPIC_ID, &c, rp, lso, false, &l, err, sizeof err) != 0) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return NULL;
    }
    return l;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static uint8_t *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
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

static void write_whole(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* The leader's log: 60 batches of 1-4 records, epochs 1, 3 and 7, ~4
 * segments. */
static plog *build_leader(const char *dir) {
    plog *a = open_log(dir, 0, -1);
    if (!a) return NULL;
    for (int i = 0; i < 60; i++) {
        int32_t epoch = i < 20 ? 1 : i < 45 ? 3 : 7;
        size_t len;
        uint8_t *b = make_batch(1 + i % 4, 20 + (i * 37) % 90, 1000 + i * 10, i, &len);
        int64_t first, last;
        CHECK(plog_append(a, b, len, epoch, &first, &last) == 0, "leader append %d", i);
        free(b);
    }
    return a;
}

/* Reads up to max bytes of the leader's log from offset as a fetch would
 * (whole batches from plog_read) plus `extra` bytes of what follows in the
 * file, which may cut a batch: a response that ended mid-batch. */
static uint8_t *fetch(plog *a, int64_t offset, int32_t max, size_t extra, size_t *len, size_t *whole) {
    plog_slice s;
    *len = *whole = 0;
    if (plog_read(a, offset, max, true, INT64_MAX, &s) != 0 || s.len == 0) return NULL;
    struct stat st;
    fstat(s.fd, &st);
    size_t n = (size_t)s.len + extra;
    if ((int64_t)n > st.st_size - s.file_pos) n = (size_t)(st.st_size - s.file_pos);
    uint8_t *buf = malloc(n ? n : 1);
    if (pread(s.fd, buf, n, s.file_pos) != (ssize_t)n) {
        free(buf);
        return NULL;
    }
    *len = n;
    *whole = (size_t)s.len;
    return buf;
}

/* Replicates a's log into b from b's LEO up to `until` (or a's LEO) in
 * fetches of max bytes, each with `extra` trailing bytes. Returns the
 * number of appends, -1 on a refusal. */
static int replicate(plog *a, plog *b, int64_t until, int32_t max, size_t extra) {
    int n = 0;
    if (until < 0) until = plog_end_offset(a);
    while (plog_end_offset(b) < until) {
        size_t len, whole;
        uint8_t *buf = fetch(a, plog_end_offset(b), max, extra, &len, &whole);
        if (!buf) return -1;
        /* Never past until: cut at the last whole batch below it. */
        size_t cut = 0;
        while (cut < whole) {
            batch_header h;
            batch_header_parse(buf + cut, &h);
            if (batch_last_offset(&h) >= until) break;
            cut += batch_total_size(&h);
        }
        if (cut < whole) len = whole = cut;
        if (len == 0) {
            free(buf);
            return n;
        }
        int64_t last;
        size_t used;
        char err[256] = "";
        int rc = follower_append(b, buf, len, &last, &used, err, sizeof err);
        free(buf);
        if (rc != 0) {
            fprintf(stderr, "replicate: rc %d: %s\n", rc, err);
            return -1;
        }
        if (used != whole) {
            fprintf(stderr, "replicate: used %zu of %zu whole bytes\n", used, whole);
            return -1;
        }
        CHECK(last == plog_end_offset(b) - 1, "last offset %" PRId64 " vs LEO %" PRId64, last, plog_end_offset(b));
        n++;
    }
    return n;
}

/* Names of the segment files and leader-epoch-checkpoint in dir, sorted,
 * newline separated (*.deleted and others left out). */
static void list_files(const char *dir, char *out, size_t cap) {
    char *names[256];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        bool seg = (l > 4 && !strcmp(e->d_name + l - 4, ".log")) || (l > 6 && !strcmp(e->d_name + l - 6, ".index")) ||
                   (l > 10 && !strcmp(e->d_name + l - 10, ".timeindex"));
        if (seg || !strcmp(e->d_name, CKPT_LEADER_EPOCH_FILE)) names[n++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], cap - strlen(out) - 2);
        strcat(out, "\n");
        free(names[i]);
    }
}

/* Both dirs hold the same segment files and epoch checkpoint, byte for byte. */
static bool same_files(const char *da, const char *db) {
    char la[8192], lb[8192];
    list_files(da, la, sizeof la);
    list_files(db, lb, sizeof lb);
    if (strcmp(la, lb) != 0) {
        fprintf(stderr, "files differ:\n%s--\n%s", la, lb);
        return false;
    }
    bool same = true;
    for (char *p = la, *nl; same && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = 0;
        char pa[PATH_MAX + 300], pb[PATH_MAX + 300];
        snprintf(pa, sizeof pa, "%.255s/%.255s", da, p);
        snprintf(pb, sizeof pb, "%.255s/%.255s", db, p);
        size_t na, nb;
        uint8_t *a = read_whole(pa, &na), *b = read_whole(pb, &nb);
        same = a && b && na == nb && memcmp(a, b, na) == 0;
        if (!same) fprintf(stderr, "%s differs (%zu vs %zu bytes)\n", p, na, nb);
        free(a);
        free(b);
    }
    return same;
}

/* The same answers from both logs: LEO, start, epochs, reads, timestamps. */
static void same_answers(plog *a, plog *b) {
    CHECK(plog_end_offset(a) == plog_end_offset(b), "LEO %" PRId64 " vs %" PRId64, plog_end_offset(a),
          plog_end_offset(b));
    CHECK(plog_start_offset(a) == plog_start_offset(b), "log start");
    CHECK(plog_segment_count(a) == plog_segment_count(b), "segments %d vs %d", plog_segment_count(a),
          plog_segment_count(b));
    CHECK(plog_size(a) == plog_size(b), "size");
    CHECK(plog_latest_epoch(a) == plog_latest_epoch(b), "latest epoch");
    for (int32_t e = -1; e <= 9; e++) {
        int32_t ea, eb;
        int64_t oa, ob;
        plog_end_offset_for_epoch(a, e, &ea, &oa);
        plog_end_offset_for_epoch(b, e, &eb, &ob);
        CHECK(ea == eb && oa == ob, "end offset for epoch %d: %d/%" PRId64 " vs %d/%" PRId64, e, ea, oa, eb, ob);
    }
    bool reads = true, times = true;
    for (int64_t o = plog_start_offset(a); o < plog_end_offset(a); o += 3) {
        plog_slice sa, sb;
        int ra = plog_read(a, o, 500, true, INT64_MAX, &sa), rb = plog_read(b, o, 500, true, INT64_MAX, &sb);
        reads &= ra == rb && sa.file_pos == sb.file_pos && sa.len == sb.len;
        int64_t oa, ta, ob, tb;
        plog_offset_for_timestamp(a, 1000 + o * 4, NULL, NULL, &oa, &ta);
        plog_offset_for_timestamp(b, 1000 + o * 4, NULL, NULL, &ob, &tb);
        times &= oa == ob && ta == tb;
        reads &= plog_epoch_for_offset(a, o) == plog_epoch_for_offset(b, o);
    }
    CHECK(reads, "reads and epochs by offset agree");
    CHECK(times, "timestamp lookups agree");
}

static char *epoch_file(const char *dir) {
    char p[600];
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, CKPT_LEADER_EPOCH_FILE);
    return (char *)read_whole(p, &n);
}

static uint8_t *log_bytes(plog *l, size_t *len);

/* ---- tests ---- */

static void test_replicate_identical(void) {
    char da[256], db[256];
    path_of(da, sizeof da, "id-a");
    path_of(db, sizeof db, "id-b");
    plog *a = build_leader(da), *b = open_log(db, 0, -1);
    if (!a || !b) return;
    CHECK(plog_segment_count(a) >= 4, "leader has %d segments", plog_segment_count(a));
    /* Fetches of ~700 bytes that end mid-batch (37 bytes of the next). */
    CHECK(replicate(a, b, -1, 700, 37) > 5, "replicated in several fetches");
    same_answers(a, b);
    char *ea = epoch_file(da), *eb = epoch_file(db);
    CHECK(ea && eb && !strcmp(ea, eb) && !strncmp(ea, "0\n3\n1 0\n3 ", 10), "epoch checkpoints: %s vs %s", ea, eb);
    free(ea);
    free(eb);
    plog_close(a);
    plog_close(b);
    CHECK(same_files(da, db), "segments, indexes and epoch checkpoint byte-identical");
    /* Reopened, both still agree. */
    a = open_log(da, 0, -1);
    b = open_log(db, 0, -1);
    if (!a || !b) return;
    same_answers(a, b);
    plog_close(a);
    plog_close(b);

    /* One big fetch per segment: the follower rolls where the leader did. */
    char dc[256];
    path_of(dc, sizeof dc, "id-c");
    a = open_log(da, INT64_MAX, -1);
    plog *c = open_log(dc, 0, -1);
    if (!a || !c) return;
    CHECK(replicate(a, c, -1, 1 << 20, 0) == plog_segment_count(a), "one append per leader segment");
    same_answers(a, c);
    plog_close(a);
    plog_close(c);
    CHECK(same_files(da, dc), "identical after whole-segment appends");

    /* The whole leader log in one append: the follower rolls inside it
     * where the leader did (with g_split: begin takes the first segment's
     * batches, the rest goes in after the end). */
    char dd[256];
    path_of(dd, sizeof dd, "id-d");
    a = open_log(da, INT64_MAX, -1);
    plog *d = open_log(dd, 0, -1);
    if (!a || !d) return;
    size_t all;
    uint8_t *everything = log_bytes(a, &all);
    int64_t last = -1;
    size_t used = 0;
    char err[256] = "";
    int rests = g_rests;
    CHECK(follower_append(d, everything, all, &last, &used, err, sizeof err) == 0 && used == all &&
              last == plog_end_offset(a) - 1,
          "one append of %zu bytes: used %zu, last %" PRId64 " (%s)", all, used, last, err);
    CHECK(!g_split || g_rests == rests + 1, "the rest after the first segment appended after the end");
    free(everything);
    same_answers(a, d);
    plog_close(a);
    plog_close(d);
    CHECK(same_files(da, dd), "identical after one append of the whole log");
}

static void test_refusals(void) {
    char db[256];
    path_of(db, sizeof db, "ref-b");
    plog *b = open_log(db, 0, -1);
    if (!b) return;
    char err[256];
    int64_t last;
    size_t used, len;
    /* 10 offsets in. */
    uint8_t *x = leader_batch(0, 2, 10, 30, 0, &len);
    CHECK(follower_append(b, x, len, &last, &used, err, sizeof err) == 0 && last == 9 && used == len,
          "first append");
    free(x);
    int64_t size = plog_size(b);
    /* Base offset below and above the LEO. */
    x = leader_batch(7, 2, 3, 30, 1, &len);
    err[0] = 0;
    CHECK(follower_append(b, x, len, &last, &used, err, sizeof err) == PLOG_UNEXPECTED_APPEND_OFFSET &&
              used == 0 && last == -1 && strstr(err, "log end offset 10"),
          "base 7 refused: %s", err);
    free(x);

    /* Three contiguous batches; each kind of damage in the third refuses
     * all three. */
    size_t l1, l2, l3;
    uint8_t *b1 = leader_batch(10, 2, 2, 30, 2, &l1), *b2 = leader_batch(12, 2, 2, 30, 3, &l2),
            *b3 = leader_batch(14, 2, 2, 30, 4, &l3);
    size_t all = l1 + l2 + l3;
    uint8_t *buf = malloc(all), *work = malloc(all);
    memcpy(buf, b1, l1);
    memcpy(buf + l1, b2, l2);
    memcpy(buf + l1 + l2, b3, l3);
    struct {
        const char *what;
        size_t at;
        int width; /* 1: xor a byte; 4: put_u32; 8: put_u64 */
        uint64_t v;
        int rc;
    } cases[] = {
        {"record byte flipped", l1 + l2 + BATCH_HEADER_SIZE + 5, 1, 0x40, PLOG_CORRUPT_RECORD},
        {"crc", l1 + l2 + BATCH_OFF_CRC, 1, 0x01, PLOG_CORRUPT_RECORD},
        {"magic 1", l1 + l2 + BATCH_OFF_MAGIC, 1, 3, PLOG_CORRUPT_RECORD},
        {"length 10", l1 + l2 + BATCH_OFF_LENGTH, 4, 10, PLOG_CORRUPT_RECORD},
        {"length negative", l1 + l2 + BATCH_OFF_LENGTH, 4, 0x80000000u, PLOG_CORRUPT_RECORD},
        {"back", l1 + l2 + BATCH_OFF_BASE_OFFSET, 8, 11, PLOG_OFFSETS_OUT_OF_ORDER},
        {"overlap", l1 + l2 + BATCH_OFF_BASE_OFFSET, 8, 13, PLOG_OFFSETS_OUT_OF_ORDER},
        {"offset overflow", l1 + l2 + BATCH_OFF_BASE_OFFSET, 8, (uint64_t)INT64_MAX, PLOG_CORRUPT_RECORD},
        {"negative offset delta", l1 + l2 + BATCH_OFF_LAST_OFFSET_DELTA, 4, 0xffffffffu, PLOG_CORRUPT_RECORD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(work, buf, all);
        uint8_t *p = work + cases[i].at;
        if (cases[i].width == 1) *p ^= (uint8_t)cases[i].v;
        else if (cases[i].width == 4) bh_put_u32(p, (uint32_t)cases[i].v);
        else bh_put_u64(p, cases[i].v);
        err[0] = 0;
        int rc = follower_append(b, work, all, &last, &used, err, sizeof err);
        CHECK(rc == cases[i].rc && used == 0 && err[0], "%s: rc %d (%s)", cases[i].what, rc, err);
        CHECK(plog_end_offset(b) == 10 && plog_size(b) == size, "%s: nothing appended", cases[i].what);
    }
    /* Too large for a segment (2048 bytes). */
    x = leader_batch(10, 2, 30, 100, 5, &len);
    CHECK(follower_append(b, x, len, &last, &used, err, sizeof err) == PLOG_BATCH_TOO_LARGE,
          "bigger than segment.bytes: %s", err);
    free(x);
    /* A mere header fragment and a first batch cut short: nothing used. */
    CHECK(follower_append(b, buf, 11, &last, &used, err, sizeof err) == 0 && used == 0 && last == -1,
          "11 bytes");
    CHECK(follower_append(b, buf, l1 - 1, &last, &used, err, sizeof err) == 0 && used == 0, "cut first");
    CHECK(follower_append(b, buf, 0, &last, &used, err, sizeof err) == 0 && used == 0, "empty");
    CHECK(plog_end_offset(b) == 10 && plog_size(b) == size, "still nothing");
    /* Two whole batches and half the third: the two go in. */
    CHECK(follower_append(b, buf, l1 + l2 + l3 / 2, &last, &used, err, sizeof err) == 0 &&
              used == l1 + l2 && last == 13 && plog_end_offset(b) == 14,
          "partial trailing batch left out");
    CHECK(follower_append(b, buf + l1 + l2, l3, &last, &used, err, sizeof err) == 0 && used == l3 &&
              last == 15,
          "the rest");
    free(buf);
    free(work);
    free(b1);
    free(b2);
    free(b3);
    plog_close(b);
    b = open_log(db, 0, -1);
    if (!b) return;
    CHECK(plog_end_offset(b) == 16 && plog_latest_epoch(b) == 2, "reopened");
    plog_close(b);
}

static int append_one(plog *b, int64_t base, int32_t epoch, int n, char *err) {
    size_t len, used;
    int64_t last;
    uint8_t *x = leader_batch(base, epoch, n, 25, (int)base, &len);
    int rc = follower_append(b, x, len, &last, &used, err, 256);
    free(x);
    return rc;
}

/* A compacted leader's log has offset gaps: the follower takes batches
 * above its LEO as they are (Kafka: only a first offset below the LEO or
 * offsets going back are refused), and reads find the next batch. */
static void test_offset_gaps(void) {
    char db[256];
    path_of(db, sizeof db, "gaps");
    plog *b = open_log(db, 0, -1);
    if (!b) return;
    char err[256] = "";
    int64_t last;
    size_t used, len, l2, l3;
    uint8_t *x = leader_batch(0, 2, 10, 30, 0, &len);
    CHECK(follower_append(b, x, len, &last, &used, err, sizeof err) == 0 && last == 9, "first");
    free(x);
    x = leader_batch(15, 2, 3, 30, 1, &len);
    CHECK(follower_append(b, x, len, &last, &used, err, sizeof err) == 0 && last == 17 &&
              plog_end_offset(b) == 18, "a batch past the LEO: %s", err);
    free(x);
    uint8_t *b2 = leader_batch(20, 2, 2, 30, 2, &l2), *b3 = leader_batch(40, 2, 2, 30, 3, &l3);
    uint8_t *buf = malloc(l2 + l3);
    memcpy(buf, b2, l2);
    memcpy(buf + l2, b3, l3);
    CHECK(follower_append(b, buf, l2 + l3, &last, &used, err, sizeof err) == 0 && last == 41 &&
              used == l2 + l3 && plog_end_offset(b) == 42, "gaps inside one response: %s", err);
    plog_slice s;
    uint8_t hdr[BATCH_HEADER_SIZE];
    batch_header h;
    CHECK(plog_read(b, 12, 1 << 16, true, INT64_MAX, &s) == 0 && s.len > 0 &&
              pread(s.fd, hdr, sizeof hdr, s.file_pos) == (ssize_t)sizeof hdr,
          "read in a gap");
    batch_header_parse(hdr, &h);
    CHECK(h.base_offset == 15, "the next batch: %" PRId64, h.base_offset);
    free(buf);
    free(b2);
    free(b3);
    plog_close(b);
    remove_tree(db);
}

static void test_epochs(void) {
    char db[256];
    path_of(db, sizeof db, "ep-b");
    plog *b = open_log(db, 0, -1);
    if (!b) return;
    char err[256], *ck;
    CHECK(append_one(b, 0, 2, 3, err) == 0 && append_one(b, 3, 2, 3, err) == 0, "epoch 2");
    CHECK(append_one(b, 6, 5, 2, err) == 0, "epoch 5");
    CHECK(append_one(b, 8, -1, 2, err) == 0, "no epoch: nothing assigned");
    ck = epoch_file(db);
    CHECK(ck && !strcmp(ck, "0\n2\n2 0\n5 6\n"), "checkpoint %s", ck);
    free(ck);
    /* An older epoch than one with records: refused. */
    err[0] = 0;
    CHECK(append_one(b, 10, 3, 2, err) == PLOG_EPOCH_REGRESSION && strstr(err, "epoch 3"), "epoch 3: %s", err);
    /* Regression inside one input: refused too. */
    size_t l1, l2, used;
    int64_t last;
    uint8_t *x1 = leader_batch(10, 7, 1, 20, 1, &l1), *x2 = leader_batch(11, 6, 1, 20, 2, &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, x1, l1);
    memcpy(both + l1, x2, l2);
    CHECK(follower_append(b, both, l1 + l2, &last, &used, err, sizeof err) == PLOG_EPOCH_REGRESSION &&
              plog_end_offset(b) == 10 && plog_latest_epoch(b) == 5,
          "7 then 6 refused, nothing assigned");
    /* Newer epochs inside one input each start where their batch does. */
    bh_put_u32(both + l1 + BATCH_OFF_LEADER_EPOCH, 8); /* not under the CRC */
    CHECK(follower_append(b, both, l1 + l2, &last, &used, err, sizeof err) == 0 && last == 11, "7, 8");
    ck = epoch_file(db);
    CHECK(ck && !strcmp(ck, "0\n4\n2 0\n5 6\n7 10\n8 11\n"), "checkpoint %s", ck);
    free(ck);
    free(x1);
    free(x2);
    free(both);
    /* This node led epoch 9 without writing; the new leader's epoch 8
     * records supersede it (and 8 keeps its start). */
    CHECK(plog_assign_epoch(b, 9) == 0 && plog_latest_epoch(b) == 9, "led epoch 9");
    CHECK(append_one(b, 12, 8, 2, err) == 0 && plog_latest_epoch(b) == 8, "epoch 8 after an empty 9: %s", err);
    ck = epoch_file(db);
    CHECK(ck && !strcmp(ck, "0\n4\n2 0\n5 6\n7 10\n8 11\n"), "checkpoint %s", ck);
    free(ck);
    /* The same epoch again: nothing new. */
    CHECK(append_one(b, 14, 8, 1, err) == 0 && plog_end_offset(b) == 15, "epoch 8 again");
    plog_close(b);
    b = open_log(db, 0, -1);
    if (!b) return;
    int32_t e;
    int64_t end;
    plog_end_offset_for_epoch(b, 7, &e, &end);
    CHECK(plog_end_offset(b) == 15 && plog_latest_epoch(b) == 8 && e == 7 && end == 11, "reopened");
    /* Truncation past the LEO still drops an epoch started at the LEO. */
    CHECK(plog_assign_epoch(b, 10) == 0 && plog_truncate_to(b, 20) == 0 && plog_latest_epoch(b) == 8 &&
              plog_end_offset(b) == 15,
          "epoch at the LEO dropped by a no-op truncation");
    plog_close(b);
}

/* Byte stream of a log's batches from its start (for prefix checks). */
static uint8_t *log_bytes(plog *l, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    uint8_t *out = malloc(cap);
    for (int64_t o = plog_start_offset(l); o < plog_end_offset(l);) {
        plog_slice s;
        if (plog_read(l, o, 1 << 20, true, INT64_MAX, &s) != 0 || s.len == 0) break;
        if (n + (size_t)s.len > cap) {
            while (n + (size_t)s.len > cap) cap *= 2;
            out = realloc(out, cap);
        }
        if (pread(s.fd, out + n, (size_t)s.len, s.file_pos) != s.len) break;
        batch_header h;
        int64_t p = 0;
        while (p < s.len) {
            batch_header_parse(out + n + p, &h);
            p += (int64_t)batch_total_size(&h);
        }
        n += (size_t)s.len;
        o = batch_last_offset(&h) + 1;
    }
    *len = n;
    return out;
}

/* b's log is exactly a's first offsets up to b's LEO. */
static bool is_prefix(plog *a, plog *b) {
    size_t na, nb;
    uint8_t *x = log_bytes(a, &na), *y = log_bytes(b, &nb);
    bool ok = nb <= na && memcmp(x, y, nb) == 0;
    if (ok && nb < na) {
        batch_header h;
        batch_header_parse(x + nb, &h);
        ok = h.base_offset == plog_end_offset(b);
    } else if (ok) {
        ok = plog_end_offset(a) == plog_end_offset(b);
    }
    free(x);
    free(y);
    return ok;
}

static void reopen(plog **b, const char *dir, int64_t rp) {
    int64_t leo = plog_end_offset(*b), lso = plog_start_offset(*b);
    int32_t ep = plog_latest_epoch(*b);
    char *before = epoch_file(dir);
    plog_close(*b);
    *b = open_log(dir, rp, lso);
    if (!*b) return;
    char *after = epoch_file(dir);
    CHECK(plog_end_offset(*b) == leo && plog_start_offset(*b) == lso && plog_latest_epoch(*b) == ep,
          "reopen keeps LEO %" PRId64 "/%" PRId64 ", epoch %d/%d", leo, plog_end_offset(*b), ep,
          plog_latest_epoch(*b));
    CHECK(before && after && !strcmp(before, after), "reopen keeps the epoch checkpoint");
    free(before);
    free(after);
}

static void test_truncate_and_reappend(void) {
    char da[256], db[256];
    path_of(da, sizeof da, "tr-a");
    path_of(db, sizeof db, "tr-b");
    plog *a = build_leader(da), *b = open_log(db, 0, -1);
    if (!a || !b) return;
    CHECK(replicate(a, b, -1, 900, 0) > 0, "replicated");
    int segs = plog_segment_count(b);
    /* A diverging tail: epoch 8 records the leader never had. */
    char err[256];
    int64_t leo = plog_end_offset(b);
    CHECK(append_one(b, leo, 8, 3, err) == 0 && append_one(b, leo + 3, 8, 2, err) == 0, "divergent tail");
    plog_set_high_watermark(b, leo + 4);
    /* Truncate to the divergence point (end of epoch 7 on the leader). */
    CHECK(plog_truncate_to(b, leo) == 0 && plog_end_offset(b) == leo && plog_latest_epoch(b) == 7, "tail cut");
    CHECK(plog_high_watermark(b) == leo, "HW capped at the LEO: %" PRId64, plog_high_watermark(b));
    CHECK(is_prefix(a, b), "same as the leader again");
    reopen(&b, db, 0);
    if (!b) return;

    /* Middle of the active segment, at a batch boundary, then re-append. */
    plog_slice s;
    batch_header h;
    uint8_t hb[BATCH_HEADER_SIZE];
    int64_t mid = plog_end_offset(a) - 7;
    CHECK(plog_read(a, mid, 1, true, INT64_MAX, &s) == 0 && pread(s.fd, hb, sizeof hb, s.file_pos) == sizeof hb,
          "read");
    batch_header_parse(hb, &h);
    mid = h.base_offset;
    CHECK(plog_truncate_to(b, mid) == 0 && plog_end_offset(b) == mid && plog_segment_count(b) == segs, "mid-segment");
    CHECK(is_prefix(a, b), "prefix after mid-segment truncation");
    reopen(&b, db, 0);
    if (!b) return;
    CHECK(replicate(a, b, -1, 500, 11) > 0, "re-appended");
    same_answers(a, b);

    /* Across segments, in the middle of a batch: the batch goes whole. */
    int64_t across = 30; /* inside a batch of an early segment */
    for (;; across++) {
        CHECK(plog_read(a, across, 1, true, INT64_MAX, &s) == 0 &&
                  pread(s.fd, hb, sizeof hb, s.file_pos) == sizeof hb,
              "read");
        batch_header_parse(hb, &h);
        if (h.base_offset < across || across > 60) break;
    }
    CHECK(h.base_offset < across, "offset %d is inside batch %" PRId64 "..%" PRId64, (int)across, h.base_offset,
          batch_last_offset(&h));
    plog_set_high_watermark(b, 100);
    CHECK(plog_truncate_to(b, across) == 0 && plog_end_offset(b) == h.base_offset, "LEO at the cut batch's base");
    CHECK(plog_segment_count(b) < segs && plog_recovery_point(b) <= h.base_offset &&
              plog_high_watermark(b) == h.base_offset,
          "segments %d, recovery point %" PRId64 ", HW %" PRId64, plog_segment_count(b), plog_recovery_point(b),
          plog_high_watermark(b));
    CHECK(plog_latest_epoch(b) == plog_epoch_for_offset(a, h.base_offset - 1), "epochs cut with the log");
    CHECK(is_prefix(a, b), "prefix after truncation across segments");
    reopen(&b, db, 0);
    if (!b) return;
    reopen(&b, db, INT64_MAX);
    if (!b) return;
    CHECK(replicate(a, b, -1, 700, 5) > 0, "re-appended across segments");
    same_answers(a, b);
    plog_set_high_watermark(b, -1);

    /* To the first segment's base: one empty segment stays. */
    CHECK(plog_truncate_to(b, 0) == 0 && plog_end_offset(b) == 0 && plog_segment_count(b) == 1 &&
              plog_size(b) == 0 && plog_latest_epoch(b) == -1,
          "truncated to 0");
    reopen(&b, db, 0);
    if (!b) return;
    CHECK(replicate(a, b, -1, 1 << 20, 0) > 0, "replicated again from 0");
    same_answers(a, b);
    plog_close(a);
    plog_close(b);
    CHECK(same_files(da, db), "byte-identical to the leader again");
}

static int count_logs(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        n += l > 4 && !strcmp(e->d_name + l - 4, ".log");
    }
    if (d) closedir(d);
    return n;
}

static void test_truncate_fully(void) {
    char da[256], db[256];
    path_of(da, sizeof da, "full-a");
    path_of(db, sizeof db, "full-b");
    plog *a = build_leader(da), *b = open_log(db, 0, -1);
    if (!a || !b) return;
    CHECK(replicate(a, b, 60, 1 << 20, 0) > 0, "replicated");
    plog_set_high_watermark(b, 50);
    CHECK(plog_truncate_fully_and_start_at(b, 500) == 0, "truncate fully");
    CHECK(plog_end_offset(b) == 500 && plog_start_offset(b) == 500 && plog_recovery_point(b) == 500 &&
              plog_high_watermark(b) == 500 && plog_segment_count(b) == 1 && plog_size(b) == 0 &&
              plog_latest_epoch(b) == -1,
          "empty at 500");
    char p[600];
    snprintf(p, sizeof p, "%s/%020d.log", db, 500);
    CHECK(count_logs(db) == 1 && access(p, F_OK) == 0, "one segment file, 500");
    plog_slice s;
    CHECK(plog_read(b, 10, 100, true, INT64_MAX, &s) == PLOG_OFFSET_OUT_OF_RANGE, "old offsets out of range");
    char err[256];
    CHECK(append_one(b, 499, 9, 1, err) == PLOG_UNEXPECTED_APPEND_OFFSET, "499 refused");
    CHECK(append_one(b, 500, 9, 4, err) == 0 && plog_latest_epoch(b) == 9, "append at 500");
    plog_close(b);
    b = open_log(db, 0, -1); /* no log start checkpoint: the first segment says */
    if (!b) return;
    CHECK(plog_end_offset(b) == 504 && plog_start_offset(b) == 500 && plog_latest_epoch(b) == 9 &&
              plog_epoch_for_offset(b, 500) == 9,
          "reopened at 500..504");
    /* At the current first base: the segment is reused, emptied. */
    CHECK(plog_truncate_fully_and_start_at(b, 500) == 0 && plog_end_offset(b) == 500 && plog_size(b) == 0 &&
              count_logs(db) == 1,
          "again at 500");
    /* Below the log start through plog_truncate_to, as Kafka does. */
    CHECK(append_one(b, 500, 9, 4, err) == 0, "append");
    CHECK(plog_truncate_to(b, 100) == 0 && plog_end_offset(b) == 100 && plog_start_offset(b) == 100 &&
              plog_latest_epoch(b) == -1 && count_logs(db) == 1,
          "truncate below the first segment");
    reopen(&b, db, 0);
    if (!b) return;
    plog_close(b);
    plog_close(a);
}

/* ---- kill points ---- */

static long g_calls, g_kill_at;

static void maybe_die(void) {
    if (++g_calls == g_kill_at) _exit(0);
}
static ssize_t kp_pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (g_calls + 1 == g_kill_at && n > 1) {
        ssize_t w = pwrite(fd, buf, n / 2, off); /* torn */
        (void)w;
        _exit(0);
    }
    maybe_die();
    return pwrite(fd, buf, n, off);
}
static ssize_t kp_write(int fd, const void *buf, size_t n) {
    if (g_calls + 1 == g_kill_at && n > 1) {
        ssize_t w = write(fd, buf, n / 2);
        (void)w;
        _exit(0);
    }
    maybe_die();
    return write(fd, buf, n);
}
static int kp_fsync(int fd) {
    maybe_die();
    return fsync(fd);
}
static int kp_fdatasync(int fd) {
    maybe_die();
    return fdatasync(fd);
}
static int kp_ftruncate(int fd, off_t len) {
    maybe_die();
    return ftruncate(fd, len);
}
static int kp_rename(const char *a, const char *b) {
    maybe_die();
    return rename(a, b);
}
static int kp_unlink(const char *p) {
    maybe_die();
    return unlink(p);
}

static void install_kill_points(long at) {
    g_calls = 0;
    g_kill_at = at;
    storage_fio.pwrite = kp_pwrite;
    storage_fio.write = kp_write;
    storage_fio.fsync = kp_fsync;
    storage_fio.fdatasync = kp_fdatasync;
    storage_fio.ftruncate = kp_ftruncate;
    storage_fio.rename = kp_rename;
    storage_fio.unlink = kp_unlink;
}

static void copy_dir(const char *from, const char *to) {
    remove_tree(to);
    mkdir(to, 0755);
    DIR *d = opendir(from);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char pf[600], pt[600];
        snprintf(pf, sizeof pf, "%s/%s", from, e->d_name);
        snprintf(pt, sizeof pt, "%s/%s", to, e->d_name);
        size_t n;
        uint8_t *b = read_whole(pf, &n);
        FILE *f = fopen(pt, "wb");
        if (b && f) fwrite(b, 1, n, f);
        if (f) fclose(f);
        free(b);
    }
    if (d) closedir(d);
}

/* The follower script a child runs under kill points: catch up from 20 in
 * uneven fetches, cut a tail, cut across segments, catch up again. */
static int follower_script(plog *a, const char *db) {
    plog *b = open_log(db, 0, -1);
    if (!b) return 1;
    if (replicate(a, b, -1, 600, 23) < 0) return 2;
    if (plog_truncate_to(b, plog_end_offset(b) - 9) != 0) return 3;
    if (plog_truncate_to(b, 45) != 0) return 4;
    if (replicate(a, b, -1, 1 << 20, 0) < 0) return 5;
    plog_close(b);
    return 0;
}

/* After a crash: the log opens, holds a prefix of whole leader batches,
 * its epochs match the leader's for that prefix; replication completes. */
static bool check_recovered(plog *a, const char *db, long k) {
    /* Recovery reports each torn tail on stderr: expected here. */
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    plog *b = open_log(db, 0, -1);
    dup2(saved, 2);
    close(saved);
    close(null);
    if (!b) return false;
    bool ok = is_prefix(a, b);
    if (!ok) fprintf(stderr, "kill point %ld: not a prefix of the leader (LEO %" PRId64 ")\n", k, plog_end_offset(b));
    for (int64_t o = 0; ok && o < plog_end_offset(b); o++) ok = plog_epoch_for_offset(a, o) == plog_epoch_for_offset(b, o);
    if (!ok) fprintf(stderr, "kill point %ld: epochs differ\n", k);
    int32_t ea, eb;
    int64_t oa, ob;
    plog_end_offset_for_epoch(b, plog_latest_epoch(b), &eb, &ob);
    plog_end_offset_for_epoch(a, plog_latest_epoch(b), &ea, &oa);
    ok = ok && (plog_end_offset(b) == 0 || (eb == ea && ob <= oa));
    if (replicate(a, b, -1, 1 << 20, 0) < 0) ok = false;
    ok = ok && is_prefix(a, b) && plog_end_offset(a) == plog_end_offset(b);
    plog_close(b);
    return ok;
}

static void test_kill_points(void) {
    char da[256], dbase[256], db[256];
    path_of(da, sizeof da, "kp-a");
    path_of(dbase, sizeof dbase, "kp-base");
    path_of(db, sizeof db, "kp-b");
    plog *a = build_leader(da), *b = open_log(dbase, 0, -1);
    if (!a || !b) return;
    CHECK(replicate(a, b, 20, 1 << 20, 0) >= 0 && plog_end_offset(b) == 20, "base at 20");
    plog_close(b);
    int killed = 0, bad = 0;
    long k;
    for (k = 1; k < 2000; k++) {
        copy_dir(dbase, db);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            install_kill_points(k);
            _exit(10 + follower_script(a, db));
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st)) {
            bad++;
            continue;
        }
        int code = WEXITSTATUS(st);
        if (code == 10) break; /* the script finished before call k */
        if (code != 0) {
            fprintf(stderr, "kill point %ld: script failed with %d\n", k, code - 10);
            bad++;
            continue;
        }
        killed++;
        if (!check_recovered(a, db, k)) bad++;
    }
    CHECK(killed > 50 && k < 2000, "%d kill points exercised", killed);
    printf("test_follower_log: %d kill points, each recovered and caught up\n", killed);
    CHECK(bad == 0, "%d kill points left a bad log", bad);
    plog_close(a);
}

/* Injected I/O errors (no crash): nothing half-visible, log usable or failed. */
static int g_fail_after, g_fail_errno;
static ssize_t faulty_pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (g_fail_after-- > 0) return pwrite(fd, buf, n, off);
    errno = g_fail_errno;
    return -1;
}
static ssize_t faulty_write(int fd, const void *buf, size_t n) {
    (void)fd, (void)buf, (void)n;
    errno = ENOSPC;
    return -1;
}
static int faulty_ftruncate(int fd, off_t len) {
    (void)fd, (void)len;
    errno = EIO;
    return -1;
}

static void test_io_errors(void) {
    char da[256], db[256];
    path_of(da, sizeof da, "io-a");
    path_of(db, sizeof db, "io-b");
    plog *a = build_leader(da), *b = open_log(db, 0, -1);
    if (!a || !b) return;
    CHECK(replicate(a, b, 10, 1 << 20, 0) >= 0, "base");
    int64_t leo = plog_end_offset(b), size = plog_size(b);
    size_t len, whole, used;
    int64_t last;
    char err[256];
    uint8_t *buf = fetch(a, leo, 1 << 20, 0, &len, &whole);
    /* The segment write fails: nothing in. */
    storage_fio.pwrite = faulty_pwrite;
    g_fail_after = 0;
    g_fail_errno = ENOSPC;
    CHECK(buf && follower_append(b, buf, len, &last, &used, err, sizeof err) == -1 && errno == ENOSPC &&
              used == 0 && plog_end_offset(b) == leo && plog_size(b) == size,
          "ENOSPC on the segment: %s", err);
    storage_fio_reset();
    free(buf);
    /* The epoch checkpoint write fails (epoch 3 starts in this input): the
     * batches before it stay, the rest is undone. */
    /* Offsets 40..59, across the leader's segments. */
    size_t total = 0;
    buf = NULL;
    for (int64_t o = 40; o < 60;) {
        uint8_t *part = fetch(a, o, 1 << 20, 0, &len, &whole);
        if (!part) break;
        size_t keep = 0;
        batch_header h;
        while (keep < whole && o < 60) {
            batch_header_parse(part + keep, &h);
            keep += batch_total_size(&h);
            o = batch_last_offset(&h) + 1;
        }
        buf = realloc(buf, total + keep);
        memcpy(buf + total, part, keep);
        total += keep;
        free(part);
    }
    len = whole = total;
    CHECK(replicate(a, b, 40, 1 << 20, 0) >= 0 && plog_end_offset(b) == 40, "to 40");
    leo = 40;
    size = plog_size(b);
    storage_fio.write = faulty_write;
    int rc = buf ? follower_append(b, buf, len, &last, &used, err, sizeof err) : 99;
    CHECK(rc == -1, "rc %d: %s", rc, err);
    CHECK(plog_end_offset(b) < 50 && plog_latest_epoch(b) == 1 && plog_size(b) == size + (int64_t)used &&
              (used == 0 ? last == -1 : last == plog_end_offset(b) - 1),
          "epoch write failed: LEO %" PRId64 ", used %zu, last %" PRId64 ", epoch %d, size %" PRId64 " vs %" PRId64, plog_end_offset(b), used, last, plog_latest_epoch(b), plog_size(b), size);
    storage_fio_reset();
    size_t before = used;
    CHECK(follower_append(b, buf + before, len - before, &last, &used, err, sizeof err) == 0 &&
              before + used == whole,
          "retried from where it stopped");
    free(buf);
    /* A failed truncation fails the log; reopening recovers. */
    storage_fio.ftruncate = faulty_ftruncate;
    CHECK(plog_truncate_to(b, plog_end_offset(b) - 5) == -1, "truncation fails");
    storage_fio_reset();
    CHECK(append_one(b, plog_end_offset(b), 3, 1, err) == -1 && errno == EIO, "failed log refuses appends");
    plog_close(b);
    b = open_log(db, 0, -1);
    if (!b) return;
    CHECK(is_prefix(a, b), "recovered a prefix");
    CHECK(replicate(a, b, -1, 1 << 20, 0) >= 0 && is_prefix(a, b) && plog_end_offset(b) == plog_end_offset(a),
          "caught up");
    plog_close(b);
    plog_close(a);
}

/* ---- high watermark checkpoint ---- */

static void test_hw_checkpoint(void) {
    char dir[256], p[600], err[256];
    path_of(dir, sizeof dir, "hwdir");
    mkdir(dir, 0755);
    ckpt_offsets c;
    CHECK(ckpt_hw_read(dir, &c, err, sizeof err) == 0 && c.n == 0, "missing file: empty");
    ckpt_offsets_free(&c);
    ckpt_offset_entry v[3] = {{"orders", 0, 1234}, {"orders", 7, 0}, {"__consumer_offsets", 12, 99}};
    CHECK(ckpt_hw_write(dir, v, 3) == 0, "write");
    snprintf(p, sizeof p, "%s/%s", dir, CKPT_REPLICATION_OFFSET_FILE);
    size_t n;
    char *text = (char *)read_whole(p, &n);
    CHECK(text && !strcmp(text, "0\n3\norders 0 1234\norders 7 0\n__consumer_offsets 12 99\n"), "format: %s", text);
    free(text);
    CHECK(ckpt_hw_read(dir, &c, err, sizeof err) == 0 && c.n == 3 && ckpt_offsets_find(&c, "orders", 0) == 1234 &&
              ckpt_offsets_find(&c, "orders", 7) == 0 && ckpt_offsets_find(&c, "__consumer_offsets", 12) == 99 &&
              ckpt_offsets_find(&c, "orders", 1) == -1,
          "round trip");
    ckpt_offsets_free(&c);
    CHECK(ckpt_hw_write(dir, v, 0) == 0 && ckpt_hw_read(dir, &c, err, sizeof err) == 0 && c.n == 0, "empty set");
    ckpt_offsets_free(&c);
    /* Entries no reader would take are not written. */
    ckpt_offset_entry badw[][1] = {{{"a b", 0, 1}}, {{"", 0, 1}}, {{"t", -1, 1}}, {{"t", 0, -5}}};
    for (size_t i = 0; i < 4; i++) {
        errno = 0;
        CHECK(ckpt_hw_write(dir, badw[i], 1) == -1 && errno == EINVAL, "bad entry %zu refused", i);
    }
    /* Kafka's own file reads. */
    write_whole(p, "0\n2\nfoo 0 10\nbar-baz 3 20\n");
    CHECK(ckpt_hw_read(dir, &c, err, sizeof err) == 0 && c.n == 2 && ckpt_offsets_find(&c, "bar-baz", 3) == 20,
          "Kafka's file");
    ckpt_offsets_free(&c);
    const char *garbage[] = {
        "1\n1\nt 0 5\n",         /* version */
        "0\n2\nt 0 5\n",         /* fewer entries than the count */
        "0\n1\nt 0 5\nt 1 6\n",  /* more */
        "0\n1\nt 0\n",           /* missing offset */
        "0\n1\nt x 5\n",         /* partition not a number */
        "0\n1\nt 0 5 9\n",       /* extra field */
        "0\n1\nt 0 5x\n",        /* trailing junk */
        "0\n1\nt -1 5\n",        /* negative partition */
        "0\n1\nt 0 -3\n",        /* negative high watermark */
        "0\n2\nt 0 5\nt 0 6\n",  /* a partition twice */
        "garbage\n",
        "0\n",
        "0\nx\n",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        write_whole(p, garbage[i]);
        err[0] = 0;
        errno = 0;
        CHECK(ckpt_hw_read(dir, &c, err, sizeof err) == -1 && errno == EINVAL && c.n == 0 && err[0],
              "garbage %zu refused", i);
    }
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/samsa-follower-XXXXXX");
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 2;
    }
    for (int pass = 0; pass < 2; pass++) {
        g_split = pass == 1;
        if (g_split) { /* the same again in a fresh directory, in three steps */
            remove_tree(g_root);
            snprintf(g_root, sizeof g_root, "/tmp/samsa-follower-XXXXXX");
            if (!mkdtemp(g_root)) {
                perror("mkdtemp");
                return 2;
            }
        }
        test_replicate_identical();
        test_refusals();
        test_offset_gaps();
        test_epochs();
        test_truncate_and_reappend();
        test_truncate_fully();
        test_io_errors();
        test_kill_points();
        test_hw_checkpoint();
    }
    /* every way of the split was taken: one write, a roll inside (the rest
     * appended after), and begin leaving it all */
    CHECK(g_splits > 20 && g_rests > 0 && g_fallbacks > 0, "split appends %d, rests %d, fallbacks %d", g_splits,
          g_rests, g_fallbacks);
    printf("split appends %d, rests after a roll inside %d, fallbacks %d\n", g_splits, g_rests, g_fallbacks);
    remove_tree(g_root);
    printf("test_follower_log: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
