/* test_txn_index.c - .txnindex files in Kafka 3.6.1's format
 * (storage/txn_index.c): entry bytes, append order, reopen, truncation,
 * reset, sanity check, and the aborted transactions a read_committed fetch
 * collects over consecutive segments (Kafka's TransactionIndexTest cases). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/txn_index.h"

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

static aborted_txn txn(int64_t pid, int64_t first, int64_t last, int64_t lso) {
    return (aborted_txn){0, pid, first, last, lso};
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Field by field: the struct has padding, which a decoder need not zero. */
static bool same_txn(const aborted_txn *a, const aborted_txn *b) {
    return a->version == b->version && a->producer_id == b->producer_id && a->first_offset == b->first_offset &&
           a->last_offset == b->last_offset && a->last_stable_offset == b->last_stable_offset;
}

static void test_bytes(void) {
    /* AbortedTxn(producerId=0x0102030405060708, firstOffset=16, lastOffset=32, lso=20) */
    static const uint8_t want[ABORTED_TXN_SIZE] = {
        0x00, 0x00,                                     /* version 0 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* producer id */
        0, 0, 0, 0, 0, 0, 0, 16,                        /* first offset */
        0, 0, 0, 0, 0, 0, 0, 32,                        /* last offset */
        0, 0, 0, 0, 0, 0, 0, 20};                       /* last stable offset */
    uint8_t got[ABORTED_TXN_SIZE];
    aborted_txn t = txn(0x0102030405060708LL, 16, 32, 20);
    aborted_txn_encode(&t, got);
    CHECK(memcmp(got, want, sizeof want) == 0);
    aborted_txn back;
    aborted_txn_decode(want, &back);
    CHECK(same_txn(&back, &t));
}

static void test_file(void) {
    txn_index x;
    char path[256];
    CHECK(txi_open(&x, g_dir, 0) == 0);
    txi_path(path, sizeof path, g_dir, 0);
    CHECK(strstr(path, "/00000000000000000000.txnindex") != NULL);
    /* nothing is created until the first append */
    CHECK(access(path, F_OK) != 0);
    aborted_txn *all;
    int n;
    CHECK(txi_read_all(&x, &all, &n) == 0 && n == 0 && all == NULL);
    aborted_txn in[4] = {txn(0, 0, 10, 11), txn(1, 5, 15, 13), txn(2, 18, 35, 25), txn(3, 32, 50, 40)};
    for (int i = 0; i < 4; i++) CHECK(txi_append(&x, &in[i]) == 0);
    CHECK(file_size(path) == 4 * ABORTED_TXN_SIZE);
    /* last offsets must increase */
    aborted_txn older = txn(9, 40, 50, 51);
    errno = 0;
    CHECK(txi_append(&x, &older) == -1 && errno == EINVAL);
    CHECK(txi_read_all(&x, &all, &n) == 0 && n == 4 && same_txn(&all[0], &in[0]) && same_txn(&all[1], &in[1]) &&
          same_txn(&all[2], &in[2]) && same_txn(&all[3], &in[3]));
    free(all);
    CHECK(txi_flush(&x) == 0 && txi_sanity_check(&x) == 0);
    txi_close(&x);

    /* reopened, with a torn entry at the end: the whole ones are read */
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "\0\0\0", 3) == 3);
    close(fd);
    CHECK(txi_open(&x, g_dir, 0) == 0);
    CHECK(txi_read_all(&x, &all, &n) == 0 && n == 4);
    free(all);

    /* collect: Kafka's TransactionIndexTest.testCollectAbortedTransactions */
    aborted_list got = {0};
    bool complete = false;
    CHECK(txi_collect(&x, 0, 32, &got, &complete) == 0 && got.n == 3 && complete);
    CHECK(got.n == 3 && got.v[0].producer_id == 0 && got.v[2].producer_id == 2);
    aborted_list_free(&got);
    CHECK(txi_collect(&x, 0, 70, &got, &complete) == 0 && got.n == 4 && !complete);
    aborted_list_free(&got);
    CHECK(txi_collect(&x, 16, 32, &got, &complete) == 0 && got.n == 1 && got.v[0].producer_id == 2 && complete);
    aborted_list_free(&got);
    CHECK(txi_collect(&x, 75, 80, &got, &complete) == 0 && got.n == 0 && !complete);
    aborted_list_free(&got);

    /* truncation drops the first entry ending at or past the offset and on */
    CHECK(txi_truncate_to(&x, 35) == 0 && txi_read_all(&x, &all, &n) == 0 && n == 2);
    free(all);
    CHECK(x.size == 2 * ABORTED_TXN_SIZE);
    aborted_txn after = txn(7, 20, 16, 30); /* last offset 16 > 15 now allowed */
    CHECK(txi_append(&x, &after) == 0);
    /* sanity: an entry ending below the segment's base offset */
    txn_index y;
    CHECK(txi_open(&y, g_dir, 12) == 0);
    aborted_txn below = txn(1, 1, 11, 12);
    CHECK(txi_append(&y, &below) == 0 && txi_sanity_check(&y) == -1 && errno == EINVAL);
    CHECK(txi_reset(&y) == 0 && txi_sanity_check(&y) == 0 && y.size == 0);
    CHECK(txi_append(&y, &below) == 0); /* reset forgets the last offset too */
    CHECK(txi_delete(&y) == 0);
    txi_path(path, sizeof path, g_dir, 12);
    CHECK(access(path, F_OK) != 0);
    /* an entry of a newer version is refused, as Kafka does; Kafka reads the
     * version's first byte only, so 0x0001 passes and 0x0100 does not */
    txn_index z;
    CHECK(txi_open(&z, g_dir, 100) == 0);
    aborted_txn v1 = txn(1, 100, 101, 102), v256 = txn(1, 100, 103, 104);
    v1.version = 1;
    v256.version = 0x100;
    CHECK(txi_append(&z, &v1) == 0 && txi_read_all(&z, &all, &n) == 0 && n == 1 && all[0].version == 0);
    free(all);
    CHECK(txi_append(&z, &v256) == 0 && txi_read_all(&z, &all, &n) == TXI_BAD_VERSION);
    CHECK(txi_delete(&z) == 0);
    CHECK(txi_delete(&x) == 0);
}

/* Aborted transactions of a fetch spanning segments: the search stops at the
 * first segment whose entry's LSO reaches the upper bound. */
static void test_segments(void) {
    txn_index a, b, c;
    CHECK(txi_open(&a, g_dir, 0) == 0 && txi_open(&b, g_dir, 100) == 0 && txi_open(&c, g_dir, 200) == 0);
    aborted_txn t1 = txn(1, 10, 20, 21), t2 = txn(2, 90, 120, 121), t3 = txn(3, 150, 160, 250), t4 = txn(4, 205, 210, 300);
    CHECK(txi_append(&a, &t1) == 0 && txi_append(&b, &t2) == 0 && txi_append(&b, &t3) == 0 && txi_append(&c, &t4) == 0);
    txn_index *segs[3] = {&a, &b, &c};
    aborted_list got = {0};
    /* fetch [15, 200): t1, t2, t3 overlap; t3's LSO (250) >= 200 ends the search */
    CHECK(txi_collect_segments(segs, 3, 15, 200, &got) == 0 && got.n == 3);
    CHECK(got.n == 3 && got.v[0].producer_id == 1 && got.v[1].producer_id == 2 && got.v[2].producer_id == 3);
    aborted_list_free(&got);
    /* fetch [130, 260) from the second segment: t3 then t4 */
    CHECK(txi_collect_segments(segs + 1, 2, 130, 260, &got) == 0 && got.n == 2 && got.v[1].producer_id == 4);
    aborted_list_free(&got);
    txi_delete(&a);
    txi_delete(&b);
    txi_delete(&c);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_txn_index.XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    test_bytes();
    test_file();
    test_segments();
    rmdir(g_dir);
    printf("txn_index: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
