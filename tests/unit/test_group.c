/* test_group.c - the group coordinator's state machine and its records,
 * without sockets: a fake genv records answers and timers, and the tests
 * fire timers by hand.
 *
 * Run: make build/tests/test_group && build/tests/test_group
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group/grecords.h"
#include "group/gstate.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "util/log.h"

#include "unit_check.h"

/* ---- fake environment ---- */

typedef struct answer {
    bool done;
    bool is_sync;
    int16_t error;
    char member_id[128];
    int32_t generation;
    char leader[128];
    char protocol[32];
    int nmembers;
    bool skip;
    uint8_t assignment[64];
    int32_t assignment_len;
} answer;

typedef struct ftimer {
    bool live;
    gtimer_kind kind;
    char group[64], member[128];
    int32_t generation;
    int64_t delay;
} ftimer;

static ftimer timers[1024];
static int ntimers;
static int64_t clock_ms = 1000000;
static int stores;
static int16_t store_error;

static int64_t f_now(void *ctx) { (void)ctx; return clock_ms; }

static void f_join(void *ctx, void *waiter, const gjoin_result *r) {
    (void)ctx;
    answer *a = waiter;
    a->done = true;
    a->error = r->error;
    snprintf(a->member_id, sizeof a->member_id, "%s", r->member_id);
    a->generation = r->generation;
    snprintf(a->leader, sizeof a->leader, "%s", r->leader_id);
    snprintf(a->protocol, sizeof a->protocol, "%s", r->protocol_name ? r->protocol_name : "");
    a->nmembers = r->nmembers;
    a->skip = r->skip_assignment;
}

static void f_sync(void *ctx, void *waiter, const gsync_result *r) {
    (void)ctx;
    answer *a = waiter;
    a->done = true;
    a->is_sync = true;
    a->error = r->error;
    a->assignment_len = r->assignment_len;
    if (r->assignment_len > 0) memcpy(a->assignment, r->assignment, (size_t)r->assignment_len);
}

/* With defer_stores, writes wait (as for replication) until complete_stores. */
static bool defer_stores;
static struct { void (*done)(void *, int16_t); void *arg; } deferred[16];
static int ndeferred;

static void f_store(void *ctx, kgroup *g, void (*done)(void *, int16_t), void *arg) {
    (void)ctx;
    (void)g;
    stores++;
    if (defer_stores && ndeferred < 16) {
        deferred[ndeferred].done = done;
        deferred[ndeferred++].arg = arg;
        return;
    }
    done(arg, store_error);
}

static void complete_stores(int16_t error) {
    int n = ndeferred;
    ndeferred = 0;
    for (int i = 0; i < n; i++) deferred[i].done(deferred[i].arg, error);
}

/* The loading set and the partitions owned, as the coordinator answers them. */
static const char *loading_group, *foreign_group;
static bool f_loading(void *ctx, const char *group_id) {
    (void)ctx;
    return loading_group && strcmp(group_id, loading_group) == 0;
}
static bool f_owns(void *ctx, const char *group_id) {
    (void)ctx;
    return !foreign_group || strcmp(group_id, foreign_group) != 0;
}

static void *f_arm(void *ctx, gtimer_kind kind, const char *group, const char *member, int32_t gen,
                   int64_t delay) {
    (void)ctx;
    if (ntimers == 1024) abort();
    ftimer *t = &timers[ntimers++];
    t->live = true;
    t->kind = kind;
    snprintf(t->group, sizeof t->group, "%s", group);
    snprintf(t->member, sizeof t->member, "%s", member ? member : "");
    t->generation = gen;
    t->delay = delay;
    return t;
}

static void f_cancel(void *ctx, void *h) {
    (void)ctx;
    ((ftimer *)h)->live = false;
}

/* Fire every live timer of a kind (for a member, if given). */
static int fire(gmgr *m, gtimer_kind kind, const char *member) {
    int n = 0;
    int upto = ntimers;
    for (int i = 0; i < upto; i++) {
        ftimer *t = &timers[i];
        if (!t->live || t->kind != kind) continue;
        if (member && strcmp(member, t->member) != 0) continue;
        t->live = false;
        gmgr_timer_fired(m, kind, t->group, t->member[0] ? t->member : NULL, t->generation);
        n++;
    }
    return n;
}

static void setup(gmgr *m) {
    gconfig c;
    gconfig_defaults(&c);
    c.initial_rebalance_delay_ms = 3000;
    c.max_size = 3;
    genv e = {.ctx = NULL, .now_ms = f_now, .join_done = f_join, .sync_done = f_sync,
              .store_group = f_store, .timer_arm = f_arm, .timer_cancel = f_cancel,
              .owns_group = f_owns, .group_loading = f_loading};
    gmgr_init(m, &c, &e);
    ntimers = 0;
    stores = 0;
    store_error = 0;
    defer_stores = false;
    ndeferred = 0;
    loading_group = foreign_group = NULL;
}

/* consumer-protocol subscription v0 for one topic */
static gprotocol range_proto(const char *topic, uint8_t *buf) {
    size_t tl = strlen(topic);
    size_t n = 0;
    buf[n++] = 0; buf[n++] = 0;              /* version */
    buf[n++] = 0; buf[n++] = 0; buf[n++] = 0; buf[n++] = 1; /* 1 topic */
    buf[n++] = 0; buf[n++] = (uint8_t)tl;
    memcpy(buf + n, topic, tl); n += tl;
    buf[n++] = 0xff; buf[n++] = 0xff; buf[n++] = 0xff; buf[n++] = 0xff; /* null user data */
    return (gprotocol){.name = "range", .metadata = buf, .metadata_len = (int32_t)n};
}

static void join(gmgr *m, const char *group, const char *member, const char *instance, bool require_id,
                 answer *a) {
    static uint8_t buf[128];
    gprotocol p = range_proto("t", buf);
    memset(a, 0, sizeof *a);
    gjoin_req r = {.group_id = group, .member_id = member, .instance_id = instance,
                   .client_id = "client", .client_host = "/127.0.0.1",
                   .session_timeout_ms = 10000, .rebalance_timeout_ms = 30000,
                   .protocol_type = "consumer", .protocols = &p, .nprotocols = 1,
                   .require_known_member_id = require_id, .support_skip_assignment = false};
    gmgr_join(m, &r, a);
}

static void sync_(gmgr *m, const char *group, int32_t gen, const char *member, const gassignment *as,
                  int n, answer *a) {
    memset(a, 0, sizeof *a);
    gsync_req r = {.group_id = group, .generation = gen, .member_id = member, .assignments = as,
                   .nassignments = n};
    gmgr_sync(m, &r, a);
}

/* ---- tests ---- */

static void test_single_member_lifecycle(void) {
    gmgr m;
    setup(&m);
    answer a;
    /* v4+: first join gets MEMBER_ID_REQUIRED with an id */
    join(&m, "g1", "", NULL, true, &a);
    CHECK(a.done && a.error == KERR_MEMBER_ID_REQUIRED, "member id required: %d", a.error);
    CHECK(strncmp(a.member_id, "client-", 7) == 0, "member id prefix: %s", a.member_id);
    char mid[128];
    snprintf(mid, sizeof mid, "%s", a.member_id);
    kgroup *g = gmgr_get(&m, "g1");
    CHECK(g && g->state == GROUP_EMPTY && g->npending == 1, "pending member recorded");

    join(&m, "g1", mid, NULL, true, &a);
    CHECK(!a.done, "join parks during the initial delay");
    CHECK(g->state == GROUP_PREPARING_REBALANCE, "preparing: %s", group_state_name(g->state));
    CHECK(fire(&m, GTIMER_JOIN, NULL) == 1, "initial delay timer");
    CHECK(a.done && a.error == 0 && a.generation == 1, "join answered gen %d err %d", a.generation,
          a.error);
    CHECK(strcmp(a.leader, mid) == 0 && a.nmembers == 1 && strcmp(a.protocol, "range") == 0,
          "leader gets members");
    CHECK(g->state == GROUP_COMPLETING_REBALANCE, "completing");

    /* heartbeat during CompletingRebalance is fine; wrong generation is not */
    CHECK(gmgr_heartbeat(&m, "g1", mid, NULL, 1) == 0, "heartbeat ok");
    CHECK(gmgr_heartbeat(&m, "g1", mid, NULL, 7) == KERR_ILLEGAL_GENERATION, "bad gen");
    CHECK(gmgr_heartbeat(&m, "g1", "nobody", NULL, 1) == KERR_UNKNOWN_MEMBER_ID, "unknown member");

    gassignment as = {.member_id = mid, .assignment = (const uint8_t *)"\x00\x01xyz", .assignment_len = 5};
    sync_(&m, "g1", 1, mid, &as, 1, &a);
    CHECK(a.done && a.error == 0 && a.assignment_len == 5, "sync answered");
    CHECK(g->state == GROUP_STABLE && stores == 1, "stable and stored");

    /* commits: member with the right generation */
    kgroup *cg;
    CHECK(gmgr_commit_check(&m, "g1", mid, NULL, 1, &cg) == 0 && cg == g, "commit allowed");
    CHECK(gmgr_commit_check(&m, "g1", mid, NULL, 2, &cg) == KERR_ILLEGAL_GENERATION, "commit bad gen");
    CHECK(gmgr_commit_check(&m, "g1", "", NULL, -1, &cg) == KERR_UNKNOWN_MEMBER_ID,
          "simple commit rejected on a non-empty group");
    kgroup *dg;
    CHECK(gmgr_delete_check(&m, "g1", &dg) == KERR_NON_EMPTY_GROUP, "non empty delete");

    /* leave -> rebalance -> empty */
    const char *ids[1] = {mid};
    int16_t errs[1];
    CHECK(gmgr_leave(&m, "g1", 1, ids, NULL, errs) == 0 && errs[0] == 0, "leave");
    CHECK(g->state == GROUP_EMPTY && g->generation == 2, "empty after leave: %s gen %d",
          group_state_name(g->state), g->generation);
    CHECK(gmgr_commit_check(&m, "g1", "", NULL, -1, &cg) == 0, "simple commit on empty group");
    CHECK(gmgr_delete_check(&m, "g1", &dg) == 0 && dg->state == GROUP_DEAD, "delete");
    gmgr_remove(&m, dg);
    CHECK(gmgr_get(&m, "g1") == NULL, "removed");
    gmgr_free(&m);
}

static void test_two_members_rebalance(void) {
    gmgr m;
    setup(&m);
    answer a1, a2, a3;
    join(&m, "g", "", NULL, false, &a1);
    fire(&m, GTIMER_JOIN, NULL);
    CHECK(a1.done && a1.generation == 1, "first member gen 1");
    char m1[128];
    snprintf(m1, sizeof m1, "%s", a1.member_id);
    sync_(&m, "g", 1, m1, NULL, 0, &a1);
    kgroup *g = gmgr_get(&m, "g");
    CHECK(g->state == GROUP_STABLE, "stable");

    /* a second member: rebalance; the first learns through its heartbeat */
    join(&m, "g", "", NULL, false, &a2);
    CHECK(!a2.done && g->state == GROUP_PREPARING_REBALANCE, "second parks");
    CHECK(gmgr_heartbeat(&m, "g", m1, NULL, 1) == KERR_REBALANCE_IN_PROGRESS, "rebalance signalled");
    join(&m, "g", m1, NULL, false, &a1);
    CHECK(a1.done && a2.done, "both answered once all joined");
    CHECK(a1.generation == 2 && a2.generation == 2, "gen 2");
    CHECK(strcmp(a1.leader, m1) == 0 && a1.nmembers == 2 && a2.nmembers == 0,
          "member list only to the leader");
    char m2[128];
    snprintf(m2, sizeof m2, "%s", a2.member_id);

    /* follower syncs first and waits for the leader */
    sync_(&m, "g", 2, m2, NULL, 0, &a2);
    CHECK(!a2.done, "follower waits");
    gassignment as[2] = {{m1, (const uint8_t *)"A", 1}, {m2, (const uint8_t *)"BB", 2}};
    sync_(&m, "g", 2, m1, as, 2, &a1);
    CHECK(a1.done && a2.done && a1.assignment_len == 1 && a2.assignment_len == 2, "assignments");
    CHECK(a2.assignment[0] == 'B', "follower's bytes");

    /* a third member; everyone rejoins so the rebalance completes at once */
    join(&m, "g", "", NULL, false, &a3);
    CHECK(!a3.done, "third parks");
    join(&m, "g", m1, NULL, false, &a1);
    join(&m, "g", m2, NULL, false, &a2);
    CHECK(a1.done && a2.done && a3.done && a3.generation == 3, "gen 3 with three members");
    char m3[128];
    snprintf(m3, sizeof m3, "%s", a3.member_id);
    /* max size 3: a fourth member is refused */
    answer a4;
    join(&m, "g", "", NULL, false, &a4);
    CHECK(a4.done && a4.error == KERR_GROUP_MAX_SIZE_REACHED, "max size: %d", a4.error);
    /* m3 never syncs: the sync timer removes it and a rebalance starts */
    sync_(&m, "g", 3, m1, NULL, 0, &a1);
    sync_(&m, "g", 3, m2, NULL, 0, &a2);
    CHECK(a1.done && a2.done && g->state == GROUP_STABLE, "stable with empty assignments");
    CHECK(fire(&m, GTIMER_SYNC, NULL) == 1, "sync timer");
    CHECK(!group_find_member(g, m3) && g->state == GROUP_PREPARING_REBALANCE, "m3 removed, rebalance");
    /* the rebalance timeout drops members that did not rejoin (m2) */
    join(&m, "g", m1, NULL, false, &a1);
    CHECK(!a1.done, "m1 waits for m2");
    CHECK(fire(&m, GTIMER_JOIN, NULL) == 1, "rebalance timer");
    CHECK(a1.done && a1.generation == 4, "gen 4 after timeout: %d", a1.generation);
    CHECK(g->nmembers == 1 && !group_find_member(g, m2), "m2 dropped");
    gmgr_shutdown(&m);
    gmgr_free(&m);
}

static void test_errors(void) {
    gmgr m;
    setup(&m);
    answer a;
    join(&m, "", "", NULL, false, &a);
    CHECK(a.error == KERR_INVALID_GROUP_ID, "invalid group id");
    memset(&a, 0, sizeof a);
    gjoin_req r = {.group_id = "g", .member_id = "", .client_id = "c", .client_host = "h",
                   .session_timeout_ms = 10, .rebalance_timeout_ms = 10, .protocol_type = "consumer"};
    gmgr_join(&m, &r, &a);
    CHECK(a.error == KERR_INVALID_SESSION_TIMEOUT, "session timeout");
    r.session_timeout_ms = 10000;
    gmgr_join(&m, &r, &a);
    CHECK(a.error == KERR_INCONSISTENT_GROUP_PROTOCOL, "empty protocols");
    join(&m, "g", "who", NULL, false, &a);
    CHECK(a.error == KERR_UNKNOWN_MEMBER_ID, "unknown member on empty group: %d", a.error);
    join(&m, "nogroup", "who", NULL, false, &a);
    CHECK(a.error == KERR_UNKNOWN_MEMBER_ID, "unknown group with member id");
    sync_(&m, "nogroup", 1, "x", NULL, 0, &a);
    CHECK(a.error == KERR_UNKNOWN_MEMBER_ID, "sync unknown group");
    kgroup *g;
    CHECK(gmgr_commit_check(&m, "nogroup", "x", NULL, 3, &g) == KERR_ILLEGAL_GENERATION,
          "commit to unknown group with generation");
    CHECK(gmgr_delete_check(&m, "nogroup2", &g) == KERR_GROUP_ID_NOT_FOUND, "delete unknown");

    /* protocol type mismatch against a live group */
    join(&m, "g2", "", NULL, false, &a);
    fire(&m, GTIMER_JOIN, NULL);
    gprotocol p = {.name = "other", .metadata = (uint8_t *)"", .metadata_len = 0};
    gjoin_req r2 = {.group_id = "g2", .member_id = "", .client_id = "c", .client_host = "h",
                    .session_timeout_ms = 10000, .rebalance_timeout_ms = 10000,
                    .protocol_type = "consumer", .protocols = &p, .nprotocols = 1};
    answer b;
    memset(&b, 0, sizeof b);
    gmgr_join(&m, &r2, &b);
    CHECK(b.error == KERR_INCONSISTENT_GROUP_PROTOCOL, "no common protocol: %d", b.error);
    gmgr_free(&m);
}

static void test_static_member(void) {
    gmgr m;
    setup(&m);
    answer a;
    join(&m, "s", "", "inst-1", true, &a);
    CHECK(!a.done, "static member joins directly (no MEMBER_ID_REQUIRED)");
    fire(&m, GTIMER_JOIN, NULL);
    CHECK(a.done && a.error == 0 && strncmp(a.member_id, "inst-1-", 7) == 0, "static id %s",
          a.member_id);
    char old[128];
    snprintf(old, sizeof old, "%s", a.member_id);
    gassignment as = {old, (const uint8_t *)"Z", 1};
    sync_(&m, "s", 1, old, &as, 1, &a);
    kgroup *g = gmgr_get(&m, "s");
    CHECK(g->state == GROUP_STABLE, "stable");
    /* rejoin with unknown id and the same instance id: replaced without a rebalance */
    join(&m, "s", "", "inst-1", false, &a);
    CHECK(a.done && a.error == 0 && strcmp(a.member_id, old) != 0, "replaced");
    CHECK(strcmp(a.leader, old) == 0, "pre-v9 answer keeps the old leader id");
    CHECK(g->state == GROUP_STABLE && g->generation == 1, "no rebalance");
    /* the old id is fenced */
    CHECK(gmgr_heartbeat(&m, "s", old, "inst-1", 1) == KERR_FENCED_INSTANCE_ID, "fenced");
    /* admin removal by instance id */
    const char *ids[1] = {""};
    const char *iids[1] = {"inst-1"};
    int16_t errs[1];
    gmgr_leave(&m, "s", 1, ids, iids, errs);
    CHECK(errs[0] == 0 && g->state == GROUP_EMPTY, "removed by instance id");
    gmgr_free(&m);
}

static void test_session_expiry(void) {
    gmgr m;
    setup(&m);
    answer a;
    join(&m, "e", "", NULL, false, &a);
    fire(&m, GTIMER_JOIN, NULL);
    char mid[128];
    snprintf(mid, sizeof mid, "%s", a.member_id);
    sync_(&m, "e", 1, mid, NULL, 0, &a);
    kgroup *g = gmgr_get(&m, "e");
    CHECK(fire(&m, GTIMER_MEMBER, mid) == 1, "session timer fires");
    CHECK(g->nmembers == 0 && g->state == GROUP_EMPTY, "expired member removed: %s",
          group_state_name(g->state));
    /* pending member expiry */
    join(&m, "e", "", NULL, true, &a);
    CHECK(g->npending == 1, "pending");
    fire(&m, GTIMER_PENDING, NULL);
    CHECK(g->npending == 0, "pending expired");
    gmgr_free(&m);
}

static void test_offsets_and_records(void) {
    gmgr m;
    setup(&m);
    kgroup *g = gmgr_get_or_create(&m, "og");
    group_offset_put(g, "t", 1, 0, 42, 5, "meta", 4, 1000, -1);
    group_offset_put(g, "t", 1, 1, 43, -1, NULL, 0, 1000, -1);
    group_offset_put(g, "a", 1, 0, 7, -1, "", 0, 1000, 5000);
    CHECK(g->noffsets == 3, "three offsets");
    goffset *o = group_offset(g, "t", 1, 0);
    CHECK(o && o->offset == 42 && o->leader_epoch == 5 && strcmp(o->metadata, "meta") == 0, "lookup");
    int n;
    goffset **v = group_offsets_sorted(g, &n);
    CHECK(n == 3 && strcmp(v[0]->topic, "a") == 0 && v[2]->partition == 1, "sorted");
    free(v);

    /* records: build a batch as the coordinator would and replay it */
    rec_builder b;
    rec_builder_init(&b, 0, 0, -1, -1, -1, false, false);
    kwriter k, val;
    kw_init(&k);
    kw_init(&val);
    for (int i = 0; i < 2; i++) {
        goffset *e = group_offset(g, "t", 1, i);
        kw_reset(&k);
        kw_reset(&val);
        grec_offset_key(&k, "og", "t", i);
        grec_offset_value(&val, e);
        rec_builder_add(&b, 1000, (kbytes){k.buf, (int32_t)k.len}, (kbytes){val.buf, (int32_t)val.len},
                        NULL, 0);
    }
    /* offset v1 value (expire timestamp) */
    kw_reset(&k);
    kw_reset(&val);
    grec_offset_key(&k, "og", "a", 0);
    grec_offset_value(&val, group_offset(g, "a", 1, 0));
    CHECK(val.len > 2 && val.buf[1] == 1, "expire timestamp -> value v1");
    rec_builder_add(&b, 1000, (kbytes){k.buf, (int32_t)k.len}, (kbytes){val.buf, (int32_t)val.len}, NULL, 0);
    /* a group with one stable member */
    answer a;
    join(&m, "grp", "", NULL, false, &a);
    fire(&m, GTIMER_JOIN, NULL);
    char mid[128];
    snprintf(mid, sizeof mid, "%s", a.member_id);
    gassignment as = {mid, (const uint8_t *)"ASSIGN", 6};
    sync_(&m, "grp", 1, mid, &as, 1, &a);
    kw_reset(&k);
    kw_reset(&val);
    grec_group_key(&k, "grp");
    grec_group_value(&val, gmgr_get(&m, "grp"));
    CHECK(val.len > 2 && val.buf[1] == 3, "group value v3");
    rec_builder_add(&b, 1000, (kbytes){k.buf, (int32_t)k.len}, (kbytes){val.buf, (int32_t)val.len}, NULL, 0);
    /* tombstone for t-1 */
    kw_reset(&k);
    grec_offset_key(&k, "og", "t", 1);
    rec_builder_add(&b, 1000, (kbytes){k.buf, (int32_t)k.len}, (kbytes){NULL, -1}, NULL, 0);
    kwriter batch;
    kw_init(&batch);
    CHECK(rec_builder_finish(&b, &batch) == 0, "batch built");
    rec_builder_free(&b);
    gmgr_shutdown(&m);
    gmgr_free(&m);

    gmgr m2;
    setup(&m2);
    int applied = grec_replay(&m2, batch.buf, batch.len);
    CHECK(applied == 5, "replayed %d", applied);
    kgroup *og = gmgr_get(&m2, "og");
    CHECK(og && og->noffsets == 2, "offsets restored (one tombstoned)");
    o = og ? group_offset(og, "t", 1, 0) : NULL;
    CHECK(o && o->offset == 42 && o->leader_epoch == 5 && strcmp(o->metadata, "meta") == 0 &&
              o->commit_ts == 1000 && o->expire_ts == -1,
          "offset fields");
    o = og ? group_offset(og, "a", 1, 0) : NULL;
    CHECK(o && o->expire_ts == 5000, "v1 expire timestamp");
    kgroup *gg = gmgr_get(&m2, "grp");
    CHECK(gg && gg->nmembers == 1 && gg->generation == 1, "group restored");
    if (gg) {
        gmgr_group_loaded(&m2, gg);
        CHECK(gg->state == GROUP_STABLE && strcmp(gg->leader_id, mid) == 0, "stable with leader");
        CHECK(gg->members[0]->assignment_len == 6 && memcmp(gg->members[0]->assignment, "ASSIGN", 6) == 0,
              "assignment restored");
        CHECK(gg->subscribed_known && group_is_subscribed_to(gg, "t") && !group_is_subscribed_to(gg, "x"),
              "subscriptions parsed");
        /* a restored member can heartbeat with its generation */
        CHECK(gmgr_heartbeat(&m2, "grp", mid, NULL, 1) == 0, "heartbeat after load");
    }

    /* expiry: simple group (no protocol type): by commit timestamp */
    int ne;
    goffset **ex = group_expire_offsets(og, 6000, 50, &ne);
    CHECK(ne == 2, "expired %d", ne);
    for (int i = 0; i < ne; i++) goffset_free(ex[i]);
    free(ex);
    CHECK(og->noffsets == 0, "none left");
    gmgr_shutdown(&m2);
    gmgr_free(&m2);
    kw_free(&k);
    kw_free(&val);
    kw_free(&batch);
}

/* Joined and synced to Stable with one member; its id in mid. */
static kgroup *stable_group(gmgr *m, const char *group, char *mid, size_t cap) {
    answer a;
    join(m, group, "", NULL, false, &a);
    fire(m, GTIMER_JOIN, NULL);
    snprintf(mid, cap, "%s", a.member_id);
    gassignment as = {mid, (const uint8_t *)"A", 1};
    sync_(m, group, 1, mid, &as, 1, &a);
    return gmgr_get(m, group);
}

static void test_stores_answered_once_written(void) {
    gmgr m;
    setup(&m);
    answer a1, a2;
    /* the leader's SyncGroup waits for its assignment to be written */
    join(&m, "w", "", NULL, false, &a1);
    fire(&m, GTIMER_JOIN, NULL);
    char m1[128];
    snprintf(m1, sizeof m1, "%s", a1.member_id);
    defer_stores = true;
    gassignment as = {m1, (const uint8_t *)"A", 1};
    sync_(&m, "w", 1, m1, &as, 1, &a1);
    kgroup *g = gmgr_get(&m, "w");
    CHECK(!a1.done && g->state == GROUP_COMPLETING_REBALANCE && ndeferred == 1, "sync waits for the write");
    complete_stores(KERR_NONE);
    CHECK(a1.done && a1.error == 0 && a1.assignment_len == 1 && g->state == GROUP_STABLE, "answered once written");

    /* a failed write (storeGroup's mapping already applied): error, assignment dropped, rebalance */
    join(&m, "w", "", NULL, false, &a2);
    join(&m, "w", m1, NULL, false, &a1);
    CHECK(a1.done && a2.done && g->generation == 2, "gen 2");
    sync_(&m, "w", 2, m1, &as, 1, &a1);
    CHECK(!a1.done, "waits again");
    complete_stores(KERR_COORDINATOR_NOT_AVAILABLE);
    CHECK(a1.done && a1.error == KERR_COORDINATOR_NOT_AVAILABLE && a1.assignment_len == 0, "error answered");
    CHECK(g->state == GROUP_PREPARING_REBALANCE, "rebalancing: %s", group_state_name(g->state));

    /* a write completing after the group moved on changes nothing */
    gmgr_free(&m);
    setup(&m);
    join(&m, "late", "", NULL, false, &a1);
    fire(&m, GTIMER_JOIN, NULL);
    snprintf(m1, sizeof m1, "%s", a1.member_id);
    defer_stores = true;
    gassignment as1 = {m1, (const uint8_t *)"A", 1};
    sync_(&m, "late", 1, m1, &as1, 1, &a1);
    g = gmgr_get(&m, "late");
    gmgr_unload_group(&m, g);
    CHECK(a1.done && a1.error == KERR_NOT_COORDINATOR, "unload answers the parked sync: %d", a1.error);
    CHECK(gmgr_get(&m, "late") == NULL, "unloaded group gone");
    complete_stores(KERR_NONE); /* must not touch the freed group */
    CHECK(gmgr_get(&m, "late") == NULL, "still gone");
    gmgr_free(&m);
}

static void test_static_rejoin_waits_for_the_write(void) {
    gmgr m;
    setup(&m);
    answer a;
    join(&m, "s", "", "inst-1", true, &a);
    fire(&m, GTIMER_JOIN, NULL);
    char old[128];
    snprintf(old, sizeof old, "%s", a.member_id);
    gassignment as = {old, (const uint8_t *)"Z", 1};
    sync_(&m, "s", 1, old, &as, 1, &a);
    kgroup *g = gmgr_get(&m, "s");
    defer_stores = true;
    join(&m, "s", "", "inst-1", false, &a);
    CHECK(!a.done && ndeferred == 1, "the new static id waits for its write");
    complete_stores(KERR_NONE);
    CHECK(a.done && a.error == 0 && strcmp(a.member_id, old) != 0, "answered with the new id");
    char now[128];
    snprintf(now, sizeof now, "%s", a.member_id);
    /* a failed write puts the old id back */
    join(&m, "s", "", "inst-1", false, &a);
    complete_stores(KERR_NOT_COORDINATOR);
    CHECK(a.done && a.error == KERR_NOT_COORDINATOR && a.member_id[0] == 0, "error, no id");
    CHECK(group_find_static(g, "inst-1") && strcmp(group_find_static(g, "inst-1")->member_id, now) == 0,
          "the previous id is back");
    CHECK(gmgr_heartbeat(&m, "s", now, "inst-1", 1) == 0, "and it heartbeats");
    gmgr_free(&m);
}

static void test_loading_and_ownership(void) {
    gmgr m;
    setup(&m);
    char mid[128];
    kgroup *g = stable_group(&m, "own", mid, sizeof mid);
    CHECK(g && g->state == GROUP_STABLE, "stable");
    loading_group = "own";
    answer a;
    CHECK(gmgr_heartbeat(&m, "own", mid, NULL, 1) == KERR_NONE, "heartbeat while loading: NONE (Kafka)");
    join(&m, "own", mid, NULL, false, &a);
    CHECK(a.done && a.error == KERR_COORDINATOR_LOAD_IN_PROGRESS, "join: load in progress");
    sync_(&m, "own", 1, mid, NULL, 0, &a);
    CHECK(a.done && a.error == KERR_REBALANCE_IN_PROGRESS, "sync: rebalance in progress (Kafka)");
    kgroup *cg;
    CHECK(gmgr_commit_check(&m, "own", mid, NULL, 1, &cg) == KERR_COORDINATOR_LOAD_IN_PROGRESS, "commit");
    loading_group = NULL;
    foreign_group = "own";
    CHECK(gmgr_heartbeat(&m, "own", mid, NULL, 1) == KERR_NOT_COORDINATOR, "not ours: NOT_COORDINATOR");
    foreign_group = NULL;
    /* a member parked in a rebalance is answered when the group is unloaded */
    answer b;
    join(&m, "own", "", NULL, false, &b);
    CHECK(!b.done && g->state == GROUP_PREPARING_REBALANCE, "parked join");
    gmgr_unload_group(&m, g);
    CHECK(b.done && b.error == KERR_NOT_COORDINATOR, "join answered NOT_COORDINATOR: %d", b.error);
    CHECK(gmgr_get(&m, "own") == NULL && m.ngroups == 0, "group dropped");
    int live = 0;
    for (int i = 0; i < ntimers; i++) live += timers[i].live;
    CHECK(live == 0, "no timer left: %d", live);
    gmgr_free(&m);
}

int main(void) {
    log_set_level(LOG_ERROR);
    test_single_member_lifecycle();
    test_two_members_rebalance();
    test_errors();
    test_static_member();
    test_session_expiry();
    test_offsets_and_records();
    test_stores_answered_once_written();
    test_static_rejoin_waits_for_the_write();
    test_loading_and_ownership();
    printf("test_group: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
