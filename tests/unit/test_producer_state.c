/* test_producer_state.c - idempotent producer rules, transactions (first
 * unstable offset, LSO, markers) and producer snapshots in Kafka's format
 * (producer_state.c, storage/producer_snapshot.c), including a real log
 * reopened from its snapshots. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/producer_state.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "storage/log.h"
#include "storage/producer_snapshot.h"
#include "util/crc32c.h"
#include "util/log.h"

static uint32_t crc32c_for_test(const uint8_t *p, size_t n) { return crc32c(0, p, n); }

static int passed, failed;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else {                                                                   \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t count, int64_t base_offset) {
    batch_header h;
    memset(&h, 0, sizeof h);
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.last_offset_delta = count - 1;
    h.record_count = count;
    h.base_offset = base_offset;
    h.magic = 2;
    return h;
}

/* Check and, if to be appended, record at offset *next. */
static int16_t append(pstate *s, batch_header h, int64_t *next, bool *dup, int64_t *dup_offset) {
    int16_t ec = pstate_check(s, &h, dup, dup_offset);
    if (ec == KERR_NONE && !*dup) {
        h.base_offset = *next;
        pstate_record(s, &h);
        *next += h.last_offset_delta + 1;
    }
    return ec;
}


/* ---- snapshot file format ---- */

/* Two entries encoded by hand from Kafka's schema (see producer_snapshot.h)
 * with an independently computed CRC-32C. */
static const uint8_t KAFKA_SNAPSHOT[] = {
    0x00, 0x01, 0x65, 0x07, 0x86, 0xad, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x03, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00,
    0x00, 0x04, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff, 0xfe, 0x7f, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60};
static const psnap_entry KAFKA_ENTRIES[2] = {
    {7, 3, 41, 100, 4, 1700000000123LL, -1, -1},
    {0x0102030405060708LL, -2, INT32_MAX, -1, 0, -1, 12, 96},
};

/* Field by field: the structs have padding, which a decoder need not zero. */
static bool same_entry(const psnap_entry *a, const psnap_entry *b) {
    return a->producer_id == b->producer_id && a->epoch == b->epoch && a->last_sequence == b->last_sequence &&
           a->last_offset == b->last_offset && a->offset_delta == b->offset_delta && a->timestamp == b->timestamp &&
           a->coordinator_epoch == b->coordinator_epoch && a->current_txn_first_offset == b->current_txn_first_offset;
}

static void test_snapshot_format(void) {
    uint8_t buf[sizeof KAFKA_SNAPSHOT];
    CHECK(psnap_encoded_size(2) == sizeof KAFKA_SNAPSHOT);
    psnap_encode(KAFKA_ENTRIES, 2, buf);
    CHECK(memcmp(buf, KAFKA_SNAPSHOT, sizeof buf) == 0);
    psnap_entry *e;
    int n;
    char why[200];
    CHECK(psnap_decode(KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT, &e, &n, why, sizeof why) == 0 && n == 2);
    CHECK(n == 2 && same_entry(&e[0], &KAFKA_ENTRIES[0]) && same_entry(&e[1], &KAFKA_ENTRIES[1]));
    free(e);
    /* an empty snapshot: version, CRC of the count, count 0 */
    uint8_t empty[PSNAP_HEADER_SIZE];
    psnap_encode(NULL, 0, empty);
    CHECK(psnap_decode(empty, sizeof empty, &e, &n, why, sizeof why) == 0 && n == 0 && e == NULL);
    /* corruption of every kind is refused */
    uint8_t bad[sizeof KAFKA_SNAPSHOT + 4];
    memcpy(bad, KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT);
    bad[50] ^= 1;
    CHECK(psnap_decode(bad, sizeof KAFKA_SNAPSHOT, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    CHECK(strstr(why, "CRC is no longer valid") != NULL);
    memcpy(bad, KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT);
    bad[1] = 2;
    CHECK(psnap_decode(bad, sizeof KAFKA_SNAPSHOT, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    CHECK(strstr(why, "unknown file version 2") != NULL);
    CHECK(psnap_decode(KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT - 1, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    CHECK(psnap_decode(KAFKA_SNAPSHOT, 5, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    memcpy(bad, KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT);
    bad[6] = 0x80; /* negative count */
    CHECK(psnap_decode(bad, sizeof KAFKA_SNAPSHOT, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    /* bytes after the entries pass when the CRC covers them, as in Kafka */
    uint8_t longer[sizeof KAFKA_SNAPSHOT + 3];
    memcpy(longer, KAFKA_SNAPSHOT, sizeof KAFKA_SNAPSHOT);
    memset(longer + sizeof KAFKA_SNAPSHOT, 0xab, 3);
    CHECK(psnap_decode(longer, sizeof longer, &e, &n, why, sizeof why) == PSNAP_CORRUPT);
    bh_put_u32(longer + 2, crc32c_for_test(longer + 6, sizeof longer - 6));
    CHECK(psnap_decode(longer, sizeof longer, &e, &n, why, sizeof why) == 0 && n == 2);
    free(e);
}

/* ---- transactions ---- */

/* A COMMIT/ABORT marker batch as Kafka writes it (78 bytes, uncompressed). */
static size_t marker(uint8_t *out, int64_t pid, int16_t epoch, int64_t offset, bool commit, int32_t coord_epoch,
                     int64_t ts) {
    memset(out, 0, 78);
    bh_put_u64(out, (uint64_t)offset);
    bh_put_u32(out + BATCH_OFF_LENGTH, 78 - 12);
    out[BATCH_OFF_MAGIC] = 2;
    bh_put_u16(out + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL);
    bh_put_u64(out + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)ts);
    bh_put_u64(out + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    bh_put_u64(out + BATCH_OFF_PRODUCER_ID, (uint64_t)pid);
    bh_put_u16(out + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)epoch);
    bh_put_u32(out + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    bh_put_u32(out + BATCH_OFF_RECORD_COUNT, 1);
    uint8_t *r = out + 61;
    r[0] = 32; /* record length 16, zigzag */
    r[1] = 0;  /* attributes */
    r[2] = 0;  /* timestamp delta */
    r[3] = 0;  /* offset delta */
    r[4] = 8;  /* key length 4 */
    r[8] = commit ? 1 : 0;
    r[9] = 12; /* value length 6 */
    bh_put_u32(r + 12, (uint32_t)coord_epoch);
    r[16] = 0; /* no headers */
    return 78;
}

static batch_header txn_hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t count, int64_t base_offset) {
    batch_header h = hdr(pid, epoch, seq, count, base_offset);
    h.attributes = BATCH_ATTR_TRANSACTIONAL;
    return h;
}

static void test_transactions(void) {
    pstate *s = pstate_new();
    pstate_txn done;
    bool dup;
    int64_t dupo;
    CHECK(pstate_first_unstable_offset(s) == -1 && pstate_last_stable_offset(s, 0, 0) == 0);
    batch_header a = txn_hdr(10, 0, 0, 3, 0);
    CHECK(pstate_apply(s, &a, NULL, 0, &done) == 0);
    batch_header b = txn_hdr(11, 0, 0, 1, 3);
    CHECK(pstate_apply(s, &b, NULL, 0, &done) == 0);
    CHECK(pstate_ongoing_count(s) == 2 && pstate_first_unstable_offset(s) == 0);
    CHECK(pstate_last_stable_offset(s, 4, 0) == 0);
    CHECK(pstate_last_stable_offset(s, 4, 2) == 2); /* never below the log start */
    /* a non-transactional write while the transaction is open */
    batch_header plain = hdr(10, 0, 3, 1, 0);
    CHECK(pstate_check(s, &plain, &dup, &dupo) == KERR_INVALID_TXN_STATE);
    batch_header more = txn_hdr(10, 0, 3, 1, 0);
    CHECK(pstate_check(s, &more, &dup, &dupo) == KERR_NONE && !dup);
    /* markers: the older coordinator epoch is fenced, an old producer epoch refused */
    uint8_t m[78];
    size_t ml = marker(m, 10, 0, 4, false, 5, 1000);
    bool commit = true;
    int32_t ce = 0;
    int64_t ts = 0;
    CHECK(pstate_parse_marker(m, ml, &commit, &ce, &ts) == 0 && !commit && ce == 5 && ts == 1000);
    CHECK(pstate_parse_marker(m, 70, &commit, &ce, &ts) == -1);
    batch_header mh;
    batch_header_parse(m, &mh);
    CHECK(pstate_apply(s, &mh, m, ml, &done) == 1);
    CHECK(done.producer_id == 10 && done.first_offset == 0 && done.last_offset == 4 && done.aborted);
    CHECK(done.last_stable_offset == 3); /* producer 11's transaction is still open */
    CHECK(pstate_check_marker(s, 10, 0, 4) == KERR_TRANSACTION_COORDINATOR_FENCED);
    CHECK(pstate_check_marker(s, 10, 0, 5) == KERR_NONE);
    pstate_info pi;
    CHECK(pstate_producer_at(s, 0, &pi) == 0 && pi.producer_id == 10 && pi.coordinator_epoch == 5 &&
          pi.current_txn_start_offset == -1 && pi.last_timestamp == 1000);
    /* decided but the marker is above the HW: still unstable */
    CHECK(pstate_first_unstable_offset(s) == 0 && pstate_first_undecided_offset(s) == 3);
    pstate_on_high_watermark(s, 5);
    CHECK(pstate_first_unstable_offset(s) == 3 && pstate_last_stable_offset(s, 5, 0) == 3);
    /* producer 11 commits at 5 */
    ml = marker(m, 11, 0, 5, true, 5, 1001);
    batch_header_parse(m, &mh);
    CHECK(pstate_apply(s, &mh, m, ml, &done) == 1 && !done.aborted && done.last_stable_offset == 6);
    CHECK(pstate_first_unstable_offset(s) == 3 && pstate_last_stable_offset(s, 6, 0) == 3);
    pstate_on_high_watermark(s, 6);
    CHECK(pstate_first_unstable_offset(s) == -1 && pstate_last_stable_offset(s, 6, 0) == 6);
    /* a marker for a producer without an open transaction completes nothing */
    ml = marker(m, 11, 1, 6, false, 6, 1002);
    batch_header_parse(m, &mh);
    CHECK(pstate_apply(s, &mh, m, ml, &done) == 0);
    CHECK(pstate_check_marker(s, 11, 0, 6) == KERR_INVALID_PRODUCER_EPOCH);
    /* the marker bumped the epoch: the next batch starts over at 0 */
    batch_header next = hdr(11, 1, 0, 1, 7);
    CHECK(pstate_check(s, &next, &dup, &dupo) == KERR_NONE);
    next.base_sequence = 4;
    CHECK(pstate_check(s, &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(pstate_map_end_offset(s) == 7);
    /* a control type that is neither COMMIT nor ABORT is no marker */
    m[61 + 8] = 3;
    CHECK(pstate_parse_marker(m, ml, &commit, &ce, &ts) == 1);
    /* expiry spares producers with an open transaction */
    batch_header c = txn_hdr(12, 0, 0, 1, 8);
    c.max_timestamp = 10;
    pstate_apply(s, &c, NULL, 0, &done);
    pstate_remove_expired(s, 1000000, 1000);
    CHECK(pstate_producer_count(s) == 1 && pstate_producer_at(s, 0, &pi) == 0 && pi.producer_id == 12);
    pstate_free(s);
}

/* ---- snapshots on disk and a real log ---- */

static char g_dir[64];

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            rm_dir(path);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static bool file_exists(const char *dir, int64_t offset) {
    char path[512];
    psnap_path(path, sizeof path, dir, offset);
    return access(path, F_OK) == 0;
}

static void test_snapshot_roundtrip(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/rt", g_dir);
    mkdir(dir, 0755);
    pstate *s = pstate_new();
    pstate_txn done;
    for (int i = 0; i < 7; i++) {
        batch_header h = hdr(1, 2, i * 2, 2, i * 2);
        h.max_timestamp = 5000 + i;
        pstate_apply(s, &h, NULL, 0, &done);
    }
    batch_header t = txn_hdr(2, 0, 0, 3, 14);
    t.max_timestamp = 6000;
    pstate_apply(s, &t, NULL, 0, &done);
    uint8_t m[78];
    marker(m, 3, 4, 17, true, 9, 7000);
    batch_header mh;
    batch_header_parse(m, &mh);
    pstate_apply(s, &mh, m, 78, &done);
    CHECK(pstate_map_end_offset(s) == 18);
    CHECK(pstate_take_snapshot(s, dir) == 0 && file_exists(dir, 18));
    CHECK(pstate_take_snapshot(s, dir) == 0); /* nothing new: no second file */
    /* the file holds exactly Kafka's entries, by producer id */
    psnap_entry *e;
    int n;
    char why[200];
    CHECK(psnap_read(dir, 18, &e, &n, why, sizeof why) == 0 && n == 3);
    if (n == 3) {
        CHECK(e[0].producer_id == 1 && e[0].epoch == 2 && e[0].last_sequence == 13 && e[0].last_offset == 13 &&
              e[0].offset_delta == 1 && e[0].timestamp == 5006 && e[0].coordinator_epoch == -1 &&
              e[0].current_txn_first_offset == -1);
        CHECK(e[1].producer_id == 2 && e[1].last_sequence == 2 && e[1].last_offset == 16 && e[1].offset_delta == 2 &&
              e[1].current_txn_first_offset == 14);
        CHECK(e[2].producer_id == 3 && e[2].epoch == 4 && e[2].last_sequence == -1 && e[2].last_offset == -1 &&
              e[2].offset_delta == 0 && e[2].timestamp == 7000 && e[2].coordinator_epoch == 9);
    }
    free(e);
    /* loaded back: the last batch is a duplicate, the next sequence fits, the
     * open transaction is unstable again */
    pstate *r = pstate_new();
    CHECK(pstate_snapshot_load(r, dir, 0, 18, 0, 0) == 18);
    CHECK(pstate_producer_count(r) == 3 && pstate_map_end_offset(r) == 18);
    CHECK(pstate_first_unstable_offset(r) == 14);
    bool dup;
    int64_t dupo;
    batch_header again = hdr(1, 2, 12, 2, 0);
    CHECK(pstate_check(r, &again, &dup, &dupo) == KERR_NONE && dup && dupo == 12);
    batch_header next = hdr(1, 2, 14, 1, 0);
    CHECK(pstate_check(r, &next, &dup, &dupo) == KERR_NONE && !dup);
    batch_header gap = hdr(1, 2, 15, 1, 0);
    CHECK(pstate_check(r, &gap, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(pstate_check_marker(r, 3, 4, 8) == KERR_TRANSACTION_COORDINATOR_FENCED);
    /* expired producers are left out (not the one in a transaction) */
    CHECK(pstate_snapshot_load(r, dir, 0, 18, 1000000, 1000) == 18);
    CHECK(pstate_producer_count(r) == 1);
    /* a snapshot above the log end describes a truncated log: deleted */
    CHECK(pstate_snapshot_load(r, dir, 0, 17, 0, 0) == -1 && !file_exists(dir, 18));
    /* a corrupt latest snapshot is deleted and the older one used */
    CHECK(pstate_snapshot_write(s, dir, 18) == 0 && !file_exists(dir, 18)); /* 18 was taken already */
    CHECK(pstate_snapshot_write(s, dir, 19) == 0 && file_exists(dir, 19));
    CHECK(psnap_write(dir, 30, NULL, 0) == 0);
    char path[512];
    psnap_path(path, sizeof path, dir, 30);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    close(fd);
    CHECK(pstate_snapshot_load(r, dir, 0, 40, 0, 0) == 19 && !file_exists(dir, 30));
    CHECK(pstate_producer_count(r) == 3);
    CHECK(pstate_snapshots_delete_below(dir, 20) == 0 && !file_exists(dir, 19));
    pstate_free(r);
    pstate_free(s);
}

/* Appends one batch built by rec_builder; returns its base offset. */
static int64_t log_batch(plog *l, pstate *s, int64_t pid, int16_t epoch, int32_t seq, bool txn, int nrec) {
    rec_builder b;
    rec_builder_init(&b, 0, 0, pid, epoch, seq, txn, false);
    char val[200];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < nrec; i++)
        rec_builder_add(&b, 1700000000000LL + i, (kbytes){NULL, -1}, (kbytes){(const uint8_t *)val, sizeof val},
                        NULL, 0);
    kwriter w;
    kw_init(&w);
    int64_t first = -1, last = -1;
    if (rec_builder_finish(&b, &w) == 0 && plog_append(l, w.buf, w.len, 0, &first, &last) == 0) {
        batch_header h;
        batch_header_parse(w.buf, &h);
        pstate_txn done;
        pstate_apply(s, &h, w.buf, w.len, &done);
    }
    kw_free(&w);
    rec_builder_free(&b);
    return first;
}

static int64_t log_marker(plog *l, pstate *s, int64_t pid, int16_t epoch, bool commit, pstate_txn *done) {
    uint8_t m[78];
    marker(m, pid, epoch, 0, commit, 1, 1700000000000LL);
    bh_put_u32(m + BATCH_OFF_CRC, crc32c_for_test(m + BATCH_OFF_ATTRIBUTES, sizeof m - BATCH_OFF_ATTRIBUTES));
    int64_t first = -1, last = -1;
    done->producer_id = -1;
    if (plog_append(l, m, sizeof m, 0, &first, &last) == 0) {
        batch_header h;
        batch_header_parse(m, &h);
        pstate_apply(s, &h, m, sizeof m, done);
    }
    return first;
}

typedef struct aborted_seen {
    int n;
    pstate_txn last;
} aborted_seen;

static void on_aborted(const pstate_txn *t, void *ctx) {
    aborted_seen *a = ctx;
    a->n++;
    a->last = *t;
}

static void test_log_reload(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/t-0", g_dir);
    log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = 4096;
    plog *l = NULL;
    char err[256];
    CHECK(plog_open(dir, "t", 0, NULL, &cfg, 0, -1, false, &l, err, sizeof err) == 0);
    if (!l) return;
    pstate *s = pstate_new();
    pstate_roll_ctx rc = {s, plog_dir(l)};
    plog_set_roll_hook(l, pstate_roll_hook, &rc);
    /* producer 100 writes once, then producer 200 fills many segments */
    log_batch(l, s, 100, 0, 0, false, 2);
    int32_t seq = 0;
    for (int i = 0; i < 60; i++, seq += 3) log_batch(l, s, 200, 1, seq, false, 3);
    CHECK(plog_segment_count(l) > 4);
    /* producer 300 aborts a transaction, producer 400 leaves one open */
    int64_t t_first = log_batch(l, s, 300, 0, 0, true, 1);
    log_batch(l, s, 300, 0, 1, true, 1);
    pstate_txn done;
    int64_t t_marker = log_marker(l, s, 300, 0, false, &done);
    CHECK(done.producer_id == 300 && done.aborted && done.first_offset == t_first && done.last_offset == t_marker);
    int64_t open_first = log_batch(l, s, 400, 0, 0, true, 1);
    int64_t leo = plog_end_offset(l);
    CHECK(pstate_map_end_offset(s) == leo);
    /* snapshots were taken at the rolls; a clean shutdown takes the last */
    int64_t *offs;
    int n;
    CHECK(psnap_list(dir, &offs, &n) == 0 && n == plog_segment_count(l) - 1);
    free(offs);
    CHECK(pstate_take_snapshot(s, dir) == 0 && file_exists(dir, leo));
    plog_close(l);
    pstate_free(s);

    /* reopen: producer 100, silent for many segments, is still known */
    l = NULL;
    CHECK(plog_open(dir, "t", 0, NULL, &cfg, leo, -1, false, &l, err, sizeof err) == 0);
    if (!l) return;
    s = pstate_new();
    CHECK(pstate_load(s, l, 0, 0, NULL, NULL) == 0);
    CHECK(pstate_producer_count(s) == 4 && pstate_map_end_offset(s) == leo);
    bool dup;
    int64_t dupo;
    batch_header h100 = hdr(100, 0, 0, 2, 0);
    CHECK(pstate_check(s, &h100, &dup, &dupo) == KERR_NONE && dup && dupo == 0);
    batch_header h100gap = hdr(100, 0, 5, 1, 0);
    CHECK(pstate_check(s, &h100gap, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(pstate_first_unstable_offset(s) == open_first);
    pstate_free(s);

    /* without the snapshots after the transaction began: the latest roll
     * snapshot before it, then the log replayed after it (the aborted
     * transaction is seen again) */
    CHECK(psnap_list(dir, &offs, &n) == 0);
    for (int i = 0; i < n; i++)
        if (offs[i] > t_first) CHECK(psnap_delete(dir, offs[i]) == 0);
    free(offs);
    s = pstate_new();
    aborted_seen seen = {0, {0}};
    CHECK(pstate_load(s, l, 0, 0, on_aborted, &seen) == 0);
    CHECK(pstate_producer_count(s) == 4 && pstate_map_end_offset(s) == leo);
    CHECK(pstate_check(s, &h100, &dup, &dupo) == KERR_NONE && dup && dupo == 0);
    CHECK(seen.n == 1 && seen.last.producer_id == 300 && seen.last.first_offset == t_first &&
          seen.last.last_offset == t_marker && seen.last.last_stable_offset == t_marker + 1);
    CHECK(pstate_first_unstable_offset(s) == t_first); /* decided, but the HW is not known yet */
    pstate_on_high_watermark(s, leo);
    CHECK(pstate_first_unstable_offset(s) == open_first);
    pstate_free(s);

    /* a stray snapshot (not at a segment base, below the last base) goes */
    CHECK(psnap_write(dir, 1, NULL, 0) == 0);
    s = pstate_new();
    CHECK(pstate_load(s, l, 0, 0, NULL, NULL) == 0 && !file_exists(dir, 1));
    pstate_free(s);

    /* no snapshot at all: the last two segments only (producer 100 is gone) */
    CHECK(pstate_snapshots_delete_below(dir, INT64_MAX) == 0);
    s = pstate_new();
    CHECK(pstate_load(s, l, 0, 0, NULL, NULL) == 0);
    CHECK(pstate_check(s, &h100gap, &dup, &dupo) == KERR_NONE && !dup);
    pstate_on_high_watermark(s, leo);
    CHECK(pstate_first_unstable_offset(s) == open_first);
    pstate_free(s);
    plog_close(l);
}

int main(void) {
    log_set_level(LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/test_pstate.XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_snapshot_format();
    test_transactions();
    test_snapshot_roundtrip();
    test_log_reload();
    rm_dir(g_dir);
    pstate *s = pstate_new();
    int64_t next = 0, dupo = -1;
    bool dup = false;
    /* unknown producer: any first sequence is taken */
    CHECK(append(s, hdr(1, 0, 10, 2, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 12, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    /* the last five batches are recognised, older ones are not */
    for (int i = 0; i < 5; i++) CHECK(append(s, hdr(1, 0, 13 + i, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 17, 1, 0), &next, &dup, &dupo) == KERR_NONE && dup && dupo == 7);
    CHECK(append(s, hdr(1, 0, 13, 1, 0), &next, &dup, &dupo) == KERR_NONE && dup && dupo == 3);
    CHECK(append(s, hdr(1, 0, 12, 1, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* a duplicate must match the whole range */
    CHECK(append(s, hdr(1, 0, 16, 2, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* epochs */
    CHECK(append(s, hdr(1, 1, 5, 1, 0), &next, &dup, &dupo) == KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CHECK(append(s, hdr(1, 1, 0, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(1, 0, 18, 1, 0), &next, &dup, &dupo) == KERR_INVALID_PRODUCER_EPOCH);
    /* sequence numbers wrap from INT32_MAX to 0 */
    CHECK(append(s, hdr(2, 0, INT32_MAX - 1, 2, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(2, 0, 0, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(append(s, hdr(2, 0, 1, 1, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    /* non-idempotent batches are not tracked; a control batch (a marker)
     * sets its producer's epoch, as Kafka's appendEndTxnMarker does */
    CHECK(append(s, hdr(-1, -1, -1, 3, 0), &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(pstate_producer_count(s) == 2);
    batch_header ctl = hdr(3, 0, 9, 1, 0);
    ctl.attributes = BATCH_ATTR_CONTROL;
    CHECK(append(s, ctl, &next, &dup, &dupo) == KERR_NONE && !dup);
    CHECK(pstate_producer_count(s) == 3);
    /* many producers stay ordered for look-up */
    for (int64_t pid = 1000; pid > 100; pid -= 7) pstate_record(s, &(batch_header){.producer_id = pid, .base_sequence = 0});
    bool all = true;
    for (int64_t pid = 1000; pid > 100; pid -= 7) {
        batch_header h = hdr(pid, 0, 0, 1, 0);
        all = all && pstate_check(s, &h, &dup, &dupo) == KERR_NONE && dup;
    }
    CHECK(all);
    pstate_free(s);
    printf("producer_state: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
