/* test_group_txn.c - transactional offset commits in the group state:
 * pending per producer until a marker, Kafka's commit/abort rules, the
 * TxnOffsetCommit member checks, and the replay of __consumer_offsets
 * holding transactional batches and COMMIT/ABORT markers (in chunks, per
 * partition).
 *
 * Run: make build/tests/test_group_txn && build/tests/test_group_txn
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/grecords.h"
#include "group/group.h"
#include "group/gstate.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "util/log.h"

#include "unit_check.h"

static int64_t f_now(void *ctx) { (void)ctx; return 1000; }
static void f_store(void *ctx, kgroup *g, void (*done)(void *, int16_t), void *arg) {
    (void)ctx;
    (void)g;
    done(arg, KERR_NONE);
}
static int timer_handle;
static void *f_arm(void *ctx, gtimer_kind kind, const char *group, const char *member, int32_t gen, int64_t delay) {
    (void)ctx, (void)kind, (void)group, (void)member, (void)gen, (void)delay;
    return &timer_handle;
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
    gmgr_init(m, &c, &e);
}

static void put_pending(kgroup *g, int64_t pid, const char *topic, int32_t part, int64_t offset, int64_t log_offset) {
    group_txn_offset_put(g, pid, topic, strlen(topic), part, offset, -1, "m", 1, 1000, -1, log_offset);
}

static void test_pending_commit_abort(void) {
    gmgr m;
    setup(&m);
    kgroup *g = gmgr_get_or_create(&m, "g");
    put_pending(g, 7, "t", 0, 10, 100);
    put_pending(g, 7, "t", 1, 11, 100);
    put_pending(g, 8, "t", 0, 20, 101);
    CHECK(!group_offset(g, "t", 1, 0), "pending offsets are not committed offsets");
    CHECK(group_txn_pending_for(g, "t", 1, 0) && group_txn_pending_for(g, "t", 1, 1), "pending for t-0, t-1");
    CHECK(!group_txn_pending_for(g, "t", 1, 2) && !group_txn_pending_for(g, "u", 1, 0), "nothing for t-2, u-0");
    CHECK(group_txn_has_producer(g, 7) && group_txn_has_producer(g, 8) && !group_txn_has_producer(g, 9), "producers");

    CHECK(group_txn_complete(g, 7, true) == 2, "producer 7 commits two offsets");
    goffset *o = group_offset(g, "t", 1, 0);
    CHECK(o && o->offset == 10 && o->log_offset == 100 && strcmp(o->metadata, "m") == 0, "t-0 committed at 10");
    CHECK(!group_txn_has_producer(g, 7), "producer 7 no longer pending");
    CHECK(group_txn_pending_for(g, "t", 1, 0), "producer 8 still pending on t-0");

    CHECK(group_txn_complete(g, 8, false) == 0, "abort commits nothing");
    o = group_offset(g, "t", 1, 0);
    CHECK(o && o->offset == 10, "abort leaves the committed offset");
    CHECK(!g->txn && !group_txn_pending_for(g, "t", 1, 0), "no pending left");
    CHECK(group_txn_complete(g, 8, true) == 0, "a second marker finds nothing");

    /* a commit older (in the log) than the committed offset does not replace it */
    put_pending(g, 9, "t", 0, 5, 50);
    CHECK(group_txn_complete(g, 9, true) == 0 && group_offset(g, "t", 1, 0)->offset == 10, "older record loses");
    /* never appended (the write is still in flight or failed): not committed */
    put_pending(g, 9, "t", 3, 5, -1);
    CHECK(group_txn_complete(g, 9, true) == 0 && !group_offset(g, "t", 1, 3), "unappended offset not committed");
    /* replace and remove */
    put_pending(g, 10, "t", 4, 1, 200);
    put_pending(g, 10, "t", 4, 2, 201);
    o = group_txn_offset(g, 10, "t", 1, 4);
    CHECK(o && o->offset == 2 && o->log_offset == 201, "a second commit replaces the pending one");
    group_txn_offset_remove(g, 10, "t", 1, 4);
    CHECK(!group_txn_has_producer(g, 10), "removing the last pending offset forgets the producer");
    put_pending(g, 11, "t", 5, 1, 300); /* freed with the group */
    put_pending(g, 12, "t", 6, 1, 301);
    put_pending(g, 13, "t", 6, 2, 302);
    put_pending(g, 13, "t", 7, 2, 302);
    group_txn_remove_partition(g, "t", 1, 6);
    CHECK(!group_txn_pending_for(g, "t", 1, 6) && !group_txn_has_producer(g, 12) && group_txn_has_producer(g, 13) &&
              group_txn_pending_for(g, "t", 1, 7),
          "OffsetDelete drops every producer's pending offset of the partition");
    gmgr_shutdown(&m);
    gmgr_free(&m);
}

static void test_txn_commit_check(void) {
    gmgr m;
    setup(&m);
    kgroup *g = NULL;
    CHECK(gmgr_txn_commit_check(&m, "", "", NULL, -1, &g) == KERR_INVALID_GROUP_ID, "empty group id");
    CHECK(gmgr_txn_commit_check(&m, "g", "", NULL, -1, &g) == KERR_NONE && g && g->state == GROUP_EMPTY,
          "a producer without a member id may commit; the group is created Empty");
    CHECK(gmgr_txn_commit_check(&m, "g", "nobody", NULL, 3, &g) == KERR_UNKNOWN_MEMBER_ID, "unknown member");
    CHECK(gmgr_txn_commit_check(&m, "g", "", NULL, 0, &g) == KERR_UNKNOWN_MEMBER_ID,
          "a generation without a member is an unknown member");
    CHECK(gmgr_txn_commit_check(&m, "g", "", "inst", 0, &g) == KERR_UNKNOWN_MEMBER_ID, "unknown static member");
    CHECK(gmgr_txn_commit_check(&m, "g", "x", "inst", -1, &g) == KERR_NONE,
          "generation -1 on an Empty group is not checked (Kafka's validateOffsetCommit)");
    gmgr_shutdown(&m);
    gmgr_free(&m);
}

/* ---- replay ---- */

static void add_offset_record(rec_builder *b, const char *group, const char *topic, int32_t part, int64_t offset) {
    kwriter k, v;
    kw_init(&k);
    kw_init(&v);
    goffset o = {.topic = (char *)topic, .partition = part, .offset = offset, .leader_epoch = -1,
                 .metadata = "", .commit_ts = 1000, .expire_ts = -1};
    grec_offset_key(&k, group, topic, part);
    grec_offset_value(&v, &o);
    rec_builder_add(b, 1000, (kbytes){k.buf, (int32_t)k.len}, (kbytes){v.buf, (int32_t)v.len}, NULL, 0);
    kw_free(&k);
    kw_free(&v);
}

/* One batch at base_offset into out: transactional of pid when pid >= 0. */
static void offsets_batch(kwriter *out, int64_t base_offset, int64_t pid, const char *group, const char *topic,
                          int32_t part, int64_t offset) {
    rec_builder b;
    rec_builder_init(&b, 0, base_offset, pid, pid >= 0 ? 0 : -1, pid >= 0 ? 0 : -1, pid >= 0, false);
    add_offset_record(&b, group, topic, part, offset);
    rec_builder_finish(&b, out);
    rec_builder_free(&b);
}

static void marker_batch(kwriter *out, int64_t base_offset, int64_t pid, bool commit) {
    rec_builder b;
    rec_builder_init(&b, 0, base_offset, pid, 0, -1, true, true);
    uint8_t key[4] = {0, 0, 0, commit ? 1 : 0};
    uint8_t val[6] = {0, 0, 0, 0, 0, 0};
    rec_builder_add(&b, 1000, (kbytes){key, 4}, (kbytes){val, 6}, NULL, 0);
    rec_builder_finish(&b, out);
    rec_builder_free(&b);
}

static void test_replay(void) {
    const int32_t nparts = 50;
    int32_t pg = group_partition_for("g", nparts);
    gmgr m;
    setup(&m);
    /* chunk 1: a committed offset, then producer 7's transactional offsets
     * (t-0 and t-1) and producer 8's (t-2) */
    kwriter c1;
    kw_init(&c1);
    offsets_batch(&c1, 0, -1, "g", "t", 0, 5);
    offsets_batch(&c1, 1, 7, "g", "t", 0, 10);
    offsets_batch(&c1, 2, 7, "g", "t", 1, 11);
    offsets_batch(&c1, 3, 8, "g", "t", 2, 12);
    CHECK(grec_replay_partition(&m, c1.buf, c1.len, pg, nparts) == 4, "chunk 1 applied");
    kgroup *g = gmgr_get(&m, "g");
    CHECK(g && group_offset(g, "t", 1, 0)->offset == 5, "t-0 committed at 5 before the transaction ends");
    CHECK(g && group_txn_pending_for(g, "t", 1, 1) && group_txn_pending_for(g, "t", 1, 2),
          "transactional offsets kept pending across chunks");
    /* a marker for producer 7 in another partition reaches none of g's offsets */
    kwriter other;
    kw_init(&other);
    marker_batch(&other, 0, 7, true);
    grec_replay_partition(&m, other.buf, other.len, (pg + 1) % nparts, nparts);
    CHECK(g && !group_offset(g, "t", 1, 1) && group_txn_has_producer(g, 7), "another partition's marker ignored");
    /* chunk 2: producer 7 commits, producer 8 aborts, producer 9 stays open */
    kwriter c2;
    kw_init(&c2);
    marker_batch(&c2, 4, 7, true);
    marker_batch(&c2, 5, 8, false);
    offsets_batch(&c2, 6, 9, "g", "u", 0, 99);
    grec_replay_partition(&m, c2.buf, c2.len, pg, nparts);
    goffset *o = g ? group_offset(g, "t", 1, 0) : NULL;
    CHECK(o && o->offset == 10 && o->log_offset == 1, "commit marker: t-0 now 10 (its record at offset 1)");
    o = g ? group_offset(g, "t", 1, 1) : NULL;
    CHECK(o && o->offset == 11, "commit marker: t-1 committed");
    CHECK(g && !group_offset(g, "t", 1, 2) && !group_txn_has_producer(g, 8), "abort marker: t-2 dropped");
    CHECK(g && group_txn_pending_for(g, "u", 1, 0) && !group_offset(g, "u", 1, 0),
          "an open transaction stays pending after the load");
    /* a regular commit written after a transactional one wins at its marker */
    kwriter c3;
    kw_init(&c3);
    offsets_batch(&c3, 7, 9, "g", "t", 0, 30);
    offsets_batch(&c3, 8, -1, "g", "t", 0, 40);
    marker_batch(&c3, 9, 9, true);
    grec_replay_partition(&m, c3.buf, c3.len, pg, nparts);
    o = g ? group_offset(g, "t", 1, 0) : NULL;
    CHECK(o && o->offset == 40, "the later regular commit is kept (Kafka's olderThan)");
    o = g ? group_offset(g, "u", 1, 0) : NULL;
    CHECK(o && o->offset == 99, "producer 9's u-0 committed");
    /* the live path: a marker written while the partition is loaded */
    put_pending(g, 12, "v", 0, 7, 20);
    CHECK(grec_txn_marker(&m, 12, true, (pg + 1) % nparts, nparts) == 0, "marker of another partition");
    CHECK(grec_txn_marker(&m, 12, true, pg, nparts) == 1 && group_offset(g, "v", 1, 0), "marker commits");
    kw_free(&c1);
    kw_free(&c2);
    kw_free(&c3);
    kw_free(&other);
    gmgr_shutdown(&m);
    gmgr_free(&m);
}

int main(void) {
    log_set_level(LOG_ERROR);
    test_pending_commit_abort();
    test_txn_commit_check();
    test_replay();
    printf("test_group_txn: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
