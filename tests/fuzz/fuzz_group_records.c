/* fuzz_group_records.c - libFuzzer target for the replay of
 * __consumer_offsets (src/group/grecords.c, gstate's offsets): regular and
 * transactional offset commits, group metadata, COMMIT/ABORT markers.
 *
 * The input is [u8 partition][u8 partition count][log bytes]. The log is
 * replayed whole into one group manager and batch by batch into another
 * (the coordinator loads a partition in chunks, and transactional offsets
 * must stay pending across them): both must end with the same committed and
 * pending offsets. Then markers for every pending producer commit or drop
 * them, and none may stay pending. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_group_records tests/fuzz/corpus/group_records
 */
#include <stdlib.h>
#include <string.h>

#include "group/grecords.h"
#include "group/group.h"
#include "group/gstate.h"
#include "protocol/batch_header.h"
#include "util/log.h"

static int64_t f_now(void *ctx) { (void)ctx; return 1000; }
static void f_store(void *ctx, kgroup *g, void (*done)(void *, int16_t), void *arg) {
    (void)ctx, (void)g;
    done(arg, 0);
}
static int handle;
static void *f_arm(void *ctx, gtimer_kind kind, const char *group, const char *member, int32_t gen, int64_t delay) {
    (void)ctx, (void)kind, (void)group, (void)member, (void)gen, (void)delay;
    return &handle;
}
static void f_cancel(void *ctx, void *h) { (void)ctx, (void)h; }

static void setup(gmgr *m) {
    gconfig c;
    gconfig_defaults(&c);
    genv e = {0};
    e.now_ms = f_now;
    e.store_group = f_store;
    e.timer_arm = f_arm;
    e.timer_cancel = f_cancel;
    if (gmgr_init(m, &c, &e) != 0) abort();
}

static bool same_offset(const goffset *a, const goffset *b) {
    return a && b && a->offset == b->offset && a->leader_epoch == b->leader_epoch &&
           strcmp(a->metadata, b->metadata) == 0 && a->commit_ts == b->commit_ts && a->expire_ts == b->expire_ts &&
           a->log_offset == b->log_offset;
}

static size_t count_pending(const kgroup *g) {
    size_t n = 0;
    for (const gtxn_offsets *t = g->txn; t; t = t->next)
        for (const goffset *o = t->offsets; o; o = o->next) n++;
    return n;
}

/* Every offset and pending offset of a is in b with the same fields. */
static void check_included(gmgr *a, gmgr *b) {
    int bucket = 0;
    kgroup *cur = NULL;
    for (kgroup *g; (g = gmgr_iter(a, &bucket, &cur));) {
        kgroup *h = gmgr_get(b, g->id);
        if (!h || h->noffsets != g->noffsets || count_pending(h) != count_pending(g)) __builtin_trap();
        int n = 0;
        goffset **all = group_offsets_sorted(g, &n);
        for (int i = 0; all && i < n; i++)
            if (!same_offset(all[i], group_offset(h, all[i]->topic, strlen(all[i]->topic), all[i]->partition)))
                __builtin_trap();
        free(all);
        for (const gtxn_offsets *t = g->txn; t; t = t->next)
            for (const goffset *o = t->offsets; o; o = o->next)
                if (!same_offset(o, group_txn_offset(h, t->producer_id, o->topic, strlen(o->topic), o->partition)))
                    __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = true;
    if (size < 2) return 0;
    int32_t nparts = data[1] % 8; /* 0: markers reach every group */
    int32_t partition = nparts ? data[0] % nparts : 0;
    size_t len = size - 2;
    uint8_t *log = malloc(len ? len : 1);
    if (!log) return 0;
    memcpy(log, data + 2, len);

    gmgr whole, chunked;
    setup(&whole);
    setup(&chunked);
    grec_replay_partition(&whole, log, len, partition, nparts);
    /* the same log a batch at a time, as the loader cuts it */
    size_t pos = 0;
    while (len - pos >= BATCH_HEADER_SIZE) {
        batch_header h;
        batch_header_parse(log + pos, &h);
        if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) break;
        size_t n = (size_t)h.batch_length + BATCH_LOG_OVERHEAD;
        if (n > len - pos) break;
        uint8_t *one = malloc(n); /* its own copy: ASan sees reads past the batch */
        if (!one) break;
        memcpy(one, log + pos, n);
        grec_replay_partition(&chunked, one, n, partition, nparts);
        free(one);
        pos += n;
    }
    check_included(&whole, &chunked);
    check_included(&chunked, &whole);

    /* markers for every pending producer: nothing stays pending */
    for (int round = 0; round < 2; round++) {
        int bucket = 0;
        kgroup *cur = NULL;
        for (kgroup *g; (g = gmgr_iter(&whole, &bucket, &cur));) {
            while (g->txn) {
                int64_t pid = g->txn->producer_id;
                grec_txn_marker(&whole, pid, round == 0, group_partition_for(g->id, nparts), nparts);
                if (group_txn_has_producer(g, pid)) __builtin_trap();
            }
        }
    }
    gmgr_shutdown(&whole);
    gmgr_free(&whole);
    gmgr_shutdown(&chunked);
    gmgr_free(&chunked);
    free(log);
    return 0;
}
