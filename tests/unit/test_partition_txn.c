/* test_partition_txn.c - the partition side of transactions
 * (broker/partition_txn.c, broker/txn_marker.c, storage/log.c's transaction
 * indexes): the marker batch's bytes, leader and follower appends keeping
 * the producer state and the .txnindex in step, snapshots at rolls inside a
 * follower append, the LSO, truncation, retention and reopening. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/partition_txn.h"
#include "broker/producer_state.h"
#include "broker/txn_marker.h"
#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "storage/producer_snapshot.h"
#include "storage/txn_index.h"
#include "util/crc32c.h"

static int passed, failed;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else {                                                                   \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static char g_dir[64];

/* ---- the marker batch ---- */

static void test_marker_bytes(void) {
    uint8_t m[TXN_MARKER_BATCH_SIZE];
    txn_marker_build(m, 0x0102030405060708LL, 7, true, 0x0a0b0c0d, 1700000000123LL);
    batch_header h;
    batch_header_parse(m, &h);
    CHECK(h.base_offset == 0 && h.batch_length == TXN_MARKER_BATCH_SIZE - 12 && h.partition_leader_epoch == -1);
    CHECK(h.magic == 2 && h.attributes == (BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL));
    CHECK(h.last_offset_delta == 0 && h.base_timestamp == 1700000000123LL && h.max_timestamp == 1700000000123LL);
    CHECK(h.producer_id == 0x0102030405060708LL && h.producer_epoch == 7 && h.base_sequence == -1);
    CHECK(h.record_count == 1);
    CHECK(h.crc == crc32c(0, m + BATCH_OFF_ATTRIBUTES, sizeof m - BATCH_OFF_ATTRIBUTES));
    /* the record as Kafka's EndTransactionMarker writes it */
    static const uint8_t record[17] = {32, 0, 0, 0, 8, 0, 0, 0, 1, 12, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0};
    CHECK(memcmp(m + BATCH_HEADER_SIZE, record, sizeof record) == 0);
    bool commit = false;
    int32_t ce = 0;
    int64_t ts = 0;
    CHECK(pstate_parse_marker(m, sizeof m, &commit, &ce, &ts) == 0 && commit && ce == 0x0a0b0c0d &&
          ts == 1700000000123LL);
    txn_marker_build(m, 5, 0, false, 3, 1);
    CHECK(pstate_parse_marker(m, sizeof m, &commit, &ce, &ts) == 0 && !commit && ce == 3);
}

/* ---- a partition ---- */

typedef struct fixture {
    topic_rt t;
    partition p;
    char dir[128];
} fixture;

static int open_partition(fixture *f, const char *name, int64_t segment_bytes) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/%s-0", g_dir, name);
    f->t.name = (char *)name;
    f->p.topic = &f->t;
    log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = segment_bytes;
    char err[256];
    if (plog_open(f->dir, name, 0, NULL, &cfg, 0, -1, false, &f->p.log, err, sizeof err) != 0) return -1;
    part_txn_load(&f->p);
    return f->p.producers ? 0 : -1;
}

static void close_partition(fixture *f) {
    plog_close(f->p.log);
    pstate_free(f->p.producers);
    f->p.log = NULL;
    f->p.producers = NULL;
}

/* A data batch of nrec 100-byte records (offsets assigned by the append). */
static size_t data_batch(kwriter *w, int64_t pid, int16_t epoch, int32_t seq, bool txn, int nrec, int64_t base) {
    rec_builder b;
    rec_builder_init(&b, 0, base, pid, epoch, seq, txn, false);
    char val[100];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < nrec; i++)
        rec_builder_add(&b, 1700000000000LL + i, (kbytes){NULL, -1}, (kbytes){(const uint8_t *)val, sizeof val},
                        NULL, 0);
    size_t before = w->len;
    rec_builder_finish(&b, w);
    rec_builder_free(&b);
    return w->len - before;
}

static int64_t append_data(fixture *f, int64_t pid, int16_t epoch, int32_t seq, bool txn, int nrec) {
    kwriter w;
    kw_init(&w);
    data_batch(&w, pid, epoch, seq, txn, nrec, 0);
    int64_t first = -1, last = -1;
    int rc = part_txn_append(&f->p, w.buf, w.len, &first, &last);
    kw_free(&w);
    return rc == 0 ? first : -1;
}

static int64_t append_marker(fixture *f, int64_t pid, int16_t epoch, bool commit) {
    uint8_t m[TXN_MARKER_BATCH_SIZE];
    txn_marker_build(m, pid, epoch, commit, 1, 1700000000000LL);
    int64_t first = -1, last = -1;
    return part_txn_append(&f->p, m, sizeof m, &first, &last) == 0 ? first : -1;
}

static void set_hw(fixture *f, int64_t hw) {
    f->p.high_watermark = hw;
    plog_set_high_watermark(f->p.log, hw);
    part_txn_hw_moved(&f->p);
}

static int index_entries(const char *dir, int64_t base, aborted_txn **out) {
    txn_index x;
    int n = -1;
    *out = NULL;
    if (txi_open(&x, dir, base) != 0) return -1;
    if (txi_read_all(&x, out, &n) != 0) n = -1;
    txi_close(&x);
    return n;
}

static bool file_exists(const char *dir, int64_t base, const char *suffix) {
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%020lld%s", dir, (long long)base, suffix);
    return stat(path, &st) == 0;
}

static void test_leader_appends(void) {
    fixture f;
    CHECK(open_partition(&f, "lead", 1 << 20) == 0);
    if (!f.p.log) return;
    CHECK(append_data(&f, 10, 0, 0, true, 2) == 0);      /* 0-1: transaction of 10 */
    CHECK(append_data(&f, 20, 0, 0, false, 1) == 2);     /* 2: plain */
    CHECK(append_data(&f, 30, 0, 0, true, 1) == 3);      /* 3: transaction of 30 */
    set_hw(&f, 4);
    CHECK(part_txn_lso(&f.p) == 0);
    CHECK(!file_exists(f.dir, 0, TXN_INDEX_SUFFIX)); /* created lazily */
    CHECK(append_marker(&f, 10, 0, false) == 4);         /* ABORT 10 while 30 is open */
    set_hw(&f, 4);
    CHECK(part_txn_lso(&f.p) == 0);                      /* 10's marker is not yet under the HW */
    set_hw(&f, 5);
    CHECK(part_txn_lso(&f.p) == 3);
    aborted_txn *e;
    int n = index_entries(f.dir, 0, &e);
    /* the LSO at completion is 30's first offset */
    CHECK(n == 1 && e[0].producer_id == 10 && e[0].first_offset == 0 && e[0].last_offset == 4 &&
          e[0].last_stable_offset == 3);
    free(e);
    CHECK(append_marker(&f, 30, 0, true) == 5);
    set_hw(&f, 6);
    CHECK(part_txn_lso(&f.p) == 6);
    /* a read_committed fetch from 0 sees 10's abort; from 5 on nothing */
    aborted_list l = {0};
    CHECK(plog_collect_aborted_txns(f.p.log, 0, 6, &l) == 0 && l.n == 1 && l.v[0].producer_id == 10);
    aborted_list_free(&l);
    CHECK(plog_collect_aborted_txns(f.p.log, 5, 6, &l) == 0 && l.n == 0);
    aborted_list_free(&l);
    /* the same aborted transaction again (a replay) is written once */
    aborted_txn again = {0, 10, 0, 4, 3};
    CHECK(plog_add_aborted_txn(f.p.log, &again) == 0);
    CHECK(index_entries(f.dir, 0, &e) == 1);
    free(e);
    /* a coordinator append of an older epoch is refused, as is a marker */
    CHECK(pstate_check_marker(f.p.producers, 10, -1, 1) == KERR_INVALID_PRODUCER_EPOCH);
    CHECK(pstate_check_marker(f.p.producers, 10, 0, 0) == KERR_TRANSACTION_COORDINATOR_FENCED);
    pstate_info pi;
    CHECK(pstate_producer_at(f.p.producers, 0, &pi) == 0 && pi.producer_id == 10 && pi.coordinator_epoch == 1 &&
          pi.current_txn_start_offset == -1);
    close_partition(&f);

    /* reopen: the state comes back (10's abort known, nothing open) and the
     * index is rebuilt by the replay when lost */
    char path[256];
    snprintf(path, sizeof path, "%s/%020d%s", f.dir, 0, TXN_INDEX_SUFFIX);
    CHECK(unlink(path) == 0);
    fixture g;
    CHECK(open_partition(&g, "lead", 1 << 20) == 0);
    if (!g.p.log) return;
    set_hw(&g, 6);
    CHECK(part_txn_lso(&g.p) == 6);
    n = index_entries(g.dir, 0, &e);
    CHECK(n == 1 && e[0].producer_id == 10 && e[0].last_offset == 4 && e[0].last_stable_offset == 3);
    free(e);
    /* follower truncation below the marker drops the entry */
    CHECK(plog_truncate_to(g.p.log, 4) == 0);
    part_txn_load(&g.p);
    CHECK(index_entries(g.dir, 0, &e) == 0);
    free(e);
    set_hw(&g, 4);
    CHECK(part_txn_lso(&g.p) == 0); /* 10's transaction is open again */
    close_partition(&g);
}

static int count_snapshots(const char *dir, int64_t **offs) {
    int n = 0;
    if (psnap_list(dir, offs, &n) != 0) return -1;
    return n;
}

/* The leader's bytes of the follower tests: a transaction, many plain
 * batches crossing several 600-byte segments, the abort (offsets 0-13). */
static void leader_bytes(kwriter *w) {
    kw_init(w);
    int64_t off = 0;
    data_batch(w, 1, 0, 0, true, 1, off++);
    for (int i = 0; i < 12; i++) data_batch(w, 2, 0, i, false, 1, off++);
    uint8_t m[TXN_MARKER_BATCH_SIZE];
    txn_marker_build(m, 1, 0, false, 0, 1700000000000LL);
    bh_put_u64(m, (uint64_t)off);
    kw_raw(w, m, sizeof m);
}

/* After leader_bytes were appended as follower: one snapshot at each new
 * segment's base, describing exactly the batches below it (the roll hook
 * applied them first), and the marker in the last segment with the aborted
 * transaction. Returns the active segment's base. */
static int64_t check_follower_segments(fixture *f) {
    int nsegs = plog_segment_count(f->p.log);
    CHECK(nsegs >= 3);
    int64_t *offs = NULL;
    int n = count_snapshots(f->dir, &offs);
    CHECK(n == nsegs - 1);
    for (int i = 0; i < n && i + 1 < nsegs; i++) CHECK(offs[i] == plog_segment_base(f->p.log, i + 1));
    free(offs);
    int64_t active = plog_segment_base(f->p.log, nsegs - 1);
    aborted_txn *e;
    CHECK(index_entries(f->dir, active, &e) == 1 && e[0].producer_id == 1 && e[0].first_offset == 0 &&
          e[0].last_offset == 13);
    free(e);
    return active;
}

static void test_follower_append_rolls(void) {
    kwriter w;
    leader_bytes(&w);
    fixture f;
    CHECK(open_partition(&f, "follow", 600) == 0);
    if (!f.p.log) {
        kw_free(&w);
        return;
    }
    int64_t last = -1;
    size_t used = 0;
    char err[128];
    CHECK(part_txn_append_as_follower(&f.p, w.buf, w.len, &last, &used, err, sizeof err) == 0);
    CHECK(used == w.len && last == 13);
    kw_free(&w);
    int64_t active = check_follower_segments(&f);
    set_hw(&f, 14);
    CHECK(part_txn_lso(&f.p) == 14);
    /* a fetch at 0 finds it in a later segment's index */
    aborted_list l = {0};
    CHECK(plog_collect_aborted_txns(f.p.log, 0, 14, &l) == 0 && l.n == 1);
    aborted_list_free(&l);
    /* retention up to the active segment: the old snapshots go with their
     * segments; the index moves to .deleted with its segment */
    CHECK(plog_delete_records(f.p.log, active) == 0);
    part_txn_log_start_moved(&f.p);
    int64_t *offs = NULL;
    int n = count_snapshots(f.dir, &offs);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++) CHECK(offs[i] >= active);
    free(offs);
    close_partition(&f);
}

/* The same bytes appended one fetch answer per batch, in the three steps
 * the replica manager takes when it writes an answer's partitions at once
 * (begin, the write, end): a roll due before a batch is taken at its begin,
 * and the snapshot there still describes exactly the batches below it. */
static void test_follower_append_in_steps(void) {
    kwriter w;
    leader_bytes(&w);
    fixture f;
    CHECK(open_partition(&f, "steps", 600) == 0);
    if (!f.p.log) {
        kw_free(&w);
        return;
    }
    int steps = 0;
    for (size_t pos = 0; pos < w.len;) {
        batch_header h;
        batch_header_parse(w.buf + pos, &h);
        size_t size = batch_total_size(&h);
        plog_write pw;
        char err[128];
        int64_t last = -1;
        size_t used = 0;
        CHECK(part_txn_append_as_follower_begin(&f.p, w.buf + pos, size, &pw, err, sizeof err) == 0);
        if (pw.len > 0) {
            plog_write_run(&pw);
            CHECK(part_txn_append_as_follower_end(&f.p, &pw, &last, &used, err, sizeof err) == 0);
            steps++;
        } else {
            CHECK(part_txn_append_as_follower(&f.p, w.buf + pos, size, &last, &used, err, sizeof err) == 0);
        }
        CHECK(used == size && last == batch_last_offset(&h));
        pos += size;
    }
    CHECK(steps == 14); /* one batch always fits one segment */
    kw_free(&w);
    check_follower_segments(&f);
    set_hw(&f, 13);
    CHECK(part_txn_lso(&f.p) == 0); /* the transaction is open below the marker */
    set_hw(&f, 14);
    CHECK(part_txn_lso(&f.p) == 14);
    close_partition(&f);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_partition_txn.XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_marker_bytes();
    test_leader_appends();
    test_follower_append_rolls();
    test_follower_append_in_steps();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    printf("partition_txn: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
