/* coordinator.c - the group coordinator bound to the broker: timers on the
 * event loop, persistence to __consumer_offsets, replay at start-up, and
 * the periodic expiry of old offsets and dead groups.
 *
 * The protocol itself lives in gstate.c; this file implements its genv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/topics.h"
#include "group/gcoord.h"
#include "group/grecords.h"
#include "group/group.h"
#include "mstore/mstore.h"
#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "util/log.h"

#define LOGC "kafka.coordinator.group.GroupMetadataManager"

/* ---- partitioning ---- */

/* Java's String.hashCode over UTF-16 code units of the UTF-8 input. */
static int32_t java_string_hash(const char *s) {
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint32_t cp;
        int n;
        if (p[0] < 0x80) { cp = p[0]; n = 1; }
        else if ((p[0] & 0xe0) == 0xc0 && p[1]) { cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f); n = 2; }
        else if ((p[0] & 0xf0) == 0xe0 && p[1] && p[2]) {
            cp = ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
            n = 3;
        } else if ((p[0] & 0xf8) == 0xf0 && p[1] && p[2] && p[3]) {
            cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
                 ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
            n = 4;
        } else { cp = 0xfffd; n = 1; } /* Java decodes bad bytes as U+FFFD */
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = h * 31 + (0xd800 + (cp >> 10));
            h = h * 31 + (0xdc00 + (cp & 0x3ff));
        } else {
            h = h * 31 + cp;
        }
        p += n;
    }
    return (int32_t)h;
}

int32_t group_partition_for(const char *group_id, int32_t num_partitions) {
    int32_t h = java_string_hash(group_id);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h); /* Kafka's Utils.abs */
    return num_partitions > 0 ? a % num_partitions : 0;
}

/* ---- timers ---- */

typedef struct gc_timer {
    group_coord *gc;
    loop_timer_id id;
    gtimer_kind kind;
    char *group_id;
    char *member_id;
    int32_t generation;
    struct gc_timer *prev, *next;
} gc_timer;

static void timer_unlink_free(gc_timer *t) {
    if (t->prev) t->prev->next = t->next;
    else t->gc->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    free(t->group_id);
    free(t->member_id);
    free(t);
}

static void timer_fire(kloop *l, void *arg) {
    (void)l;
    gc_timer *t = arg;
    group_coord *gc = t->gc;
    gtimer_kind kind = t->kind;
    int32_t gen = t->generation;
    char *gid = t->group_id, *mid = t->member_id;
    t->group_id = t->member_id = NULL;
    timer_unlink_free(t);
    gmgr_timer_fired(&gc->mgr, kind, gid, mid, gen);
    free(gid);
    free(mid);
}

static void *env_timer_arm(void *ctx, gtimer_kind kind, const char *group_id, const char *member_id,
                           int32_t generation, int64_t delay_ms) {
    group_coord *gc = ctx;
    gc_timer *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->gc = gc;
    t->kind = kind;
    t->group_id = strdup(group_id);
    t->member_id = member_id ? strdup(member_id) : NULL;
    t->generation = generation;
    t->next = gc->timers;
    if (gc->timers) gc->timers->prev = t;
    gc->timers = t;
    t->id = loop_timer_add(gc->b->loop, delay_ms < 0 ? 0 : delay_ms, timer_fire, t);
    return t;
}

static void env_timer_cancel(void *ctx, void *handle) {
    (void)ctx;
    gc_timer *t = handle;
    loop_timer_cancel(t->gc->b->loop, t->id);
    timer_unlink_free(t);
}

static int64_t env_now(void *ctx) {
    (void)ctx;
    return wall_clock_ms();
}

static bool env_owns_group(void *ctx, const char *group_id);

/* ---- answers to parked requests (handlers.c) ---- */

void gc_join_done(void *ctx, void *waiter, const gjoin_result *r);
void gc_sync_done(void *ctx, void *waiter, const gsync_result *r);

/* ---- persistence ---- */

static void offsets_topic_created(broker *b, void *arg, int16_t error) {
    (void)b;
    group_coord *gc = arg;
    gc->offsets_creating = false;
    if (error && error != KERR_TOPIC_ALREADY_EXISTS)
        log_warn("kafka.server.DefaultAutoTopicCreationManager", "Cannot create %s (error %s)", OFFSETS_TOPIC,
                 kerr_name(error));
    else if (!error)
        log_info("kafka.server.DefaultAutoTopicCreationManager", "Created internal topic %s with %d partitions",
                 OFFSETS_TOPIC, gc->b->cfg.offsets_topic_num_partitions);
}

/* Creates __consumer_offsets on first use, as Kafka's FindCoordinator asks
 * the controller to (AutoTopicCreationManager with the group coordinator's
 * offsetsTopicConfigs: no min.insync.replicas of its own, the broker's
 * applies). In a cluster the creation completes later, and the controller
 * refuses it while fewer brokers are registered than
 * offsets.topic.replication.factor: COORDINATOR_NOT_AVAILABLE (retriable)
 * until then, the creation tried again at every FindCoordinator. */
int16_t gc_ensure_offsets_topic(group_coord *gc) {
    broker *b = gc->b;
    if (broker_topic(b, KSTR_LIT(OFFSETS_TOPIC))) return KERR_NONE;
    if (gc->offsets_creating) return KERR_COORDINATOR_NOT_AVAILABLE;
    char seg[32];
    snprintf(seg, sizeof seg, "%lld", (long long)b->cfg.offsets_topic_segment_bytes);
    kstr keys[3] = {KSTR_LIT("cleanup.policy"), KSTR_LIT("compression.type"), KSTR_LIT("segment.bytes")};
    kstr vals[3] = {KSTR_LIT("compact"), KSTR_LIT("producer"), kstr_from(seg)};
    karena a;
    karena_init(&a, 0);
    const char *msg = NULL;
    gc->offsets_creating = true;
    int16_t e = broker_create_topic(b, KSTR_LIT(OFFSETS_TOPIC), b->cfg.offsets_topic_num_partitions,
                                    b->cfg.offsets_topic_replication_factor, NULL, keys, vals, 3, false, &msg, &a,
                                    offsets_topic_created, gc);
    if (e) {
        gc->offsets_creating = false;
        if (e != KERR_TOPIC_ALREADY_EXISTS)
            log_warn("kafka.server.DefaultAutoTopicCreationManager", "Cannot create %s (error %s: %s)",
                     OFFSETS_TOPIC, kerr_name(e), msg ? msg : "");
    }
    karena_free(&a);
    return broker_topic(b, KSTR_LIT(OFFSETS_TOPIC)) ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
}

partition *gc_offsets_partition(group_coord *gc, const char *group_id, int16_t *err) {
    *err = KERR_NONE;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    if (!t) {
        *err = gc_ensure_offsets_topic(gc);
        if (*err) return NULL;
        t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    }
    if (!t || t->nparts <= 0) {
        *err = KERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    int32_t p = group_partition_for(group_id, t->nparts);
    /* A client that skipped FindCoordinator (which waits for it) on a single node, whose groups
     * work before the topic exists: its partition is opened now, as it was when the topic was
     * made on the loop. */
    if (broker_partition_making(t, p) && !mstore_is_cluster(gc->b->store)) topics_settle(gc->b);
    partition *part = broker_partition_led(gc->b, t, p, err);
    if (!part) *err = KERR_NOT_COORDINATOR;
    return part;
}

bool gc_coordinator_node(group_coord *gc, const char *group_id, broker_node *out, int16_t *err) {
    *err = gc_ensure_offsets_topic(gc);
    if (*err) return false;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    const mpartition *mp = t ? broker_mpartition(gc->b, t, group_partition_for(group_id, t->nparts)) : NULL;
    /* a partition of this node still being made (topics.h) leads nothing yet, as Kafka answers
     * while its new __consumer_offsets is created */
    if (!mp || mp->leader < 0 || !broker_node_lookup(gc->b, mp->leader, out) ||
        (mp->leader == broker_node_id(gc->b) && broker_partition_making(t, mp->partition_id))) {
        *err = KERR_COORDINATOR_NOT_AVAILABLE;
        return false;
    }
    return true;
}

int16_t gc_offset_commit_error(int16_t e) {
    switch (e) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND: return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR: return KERR_NOT_COORDINATOR;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_INVALID_FETCH_SIZE: return KERR_INVALID_COMMIT_OFFSET_SIZE;
    default: return e; /* REQUEST_TIMED_OUT among them, as storeOffsets */
    }
}

int16_t gc_group_store_error(int16_t e) {
    switch (e) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND: return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR: return KERR_NOT_COORDINATOR;
    case KERR_REQUEST_TIMED_OUT: return KERR_REBALANCE_IN_PROGRESS;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_INVALID_FETCH_SIZE: return KERR_UNKNOWN_SERVER_ERROR;
    default: return e;
    }
}

/* Kafka's offsets.commit.timeout.ms: how long a coordinator write waits for
 * the ISR before REQUEST_TIMED_OUT. */
static int32_t commit_timeout_ms(group_coord *gc) {
    const char *v = props_get(&gc->b->cfg.raw, "offsets.commit.timeout.ms");
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 && n <= INT32_MAX ? (int32_t)n : 5000;
}

/* One write waiting for its high watermark. */
typedef struct gc_write {
    group_coord *gc;
    gc_written_fn done;        /* NULL once answered at shutdown */
    void *arg;
    int64_t first_offset;
    int32_t partition;
    uint32_t incarnation;      /* of the partition when appended */
    struct gc_write *prev, *next; /* gc->writes */
} gc_write;

static void write_unlink(gc_write *w) {
    if (w->prev) w->prev->next = w->next;
    else w->gc->writes = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static uint32_t part_incarnation(group_coord *gc, int32_t i) {
    return i >= 0 && i < gc->nparts && gc->parts[i].state != GC_PART_NONE ? gc->parts[i].incarnation : 0;
}

static void write_replicated(broker *b, void *arg, int16_t error) {
    (void)b;
    gc_write *w = arg;
    if (!w->done) { /* answered when the coordinator shut down */
        free(w);
        return;
    }
    write_unlink(w);
    /* the partition was dropped (and maybe loaded again, reading this very
     * record) meanwhile: the write is no longer this cache's to apply */
    bool same = w->incarnation && part_incarnation(w->gc, w->partition) == w->incarnation;
    w->done(w->gc, w->arg, error, error ? -1 : w->first_offset, same);
    free(w);
}

/* The one place coordinator writes wait for replication: Kafka appends
 * them with requiredAcks=-1 and offsets.commit.timeout.ms. */
static void await_replication(group_coord *gc, partition *p, int64_t required_offset, gc_write *w) {
    broker_await_replication(gc->b, p, required_offset, commit_timeout_ms(gc), write_replicated, w);
}

/* Build and append one batch; returns the append error and the first offset. */
static int16_t append_batch(group_coord *gc, partition *p, int n, const kbytes *keys, const kbytes *values,
                            int64_t producer_id, int16_t producer_epoch, int64_t *first) {
    rec_builder rb;
    /* a transactional commit is the producer's batch (Kafka's storeOffsets:
     * base sequence 0, isTransactional), completed by its marker */
    bool txn = producer_id >= 0;
    rec_builder_init(&rb, 0, 0, producer_id, txn ? producer_epoch : -1, txn ? 0 : -1, txn, false);
    int64_t now = wall_clock_ms();
    for (int i = 0; i < n; i++) rec_builder_add(&rb, now, keys[i], values[i], NULL, 0);
    kwriter w;
    kw_init(&w);
    if (rec_builder_finish(&rb, &w) != 0 || w.err) {
        rec_builder_free(&rb);
        kw_free(&w);
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    rec_builder_free(&rb);
    *first = 0;
    int16_t e = broker_append_batch(gc->b, p, w.buf, w.len, first);
    kw_free(&w);
    return e;
}

static int16_t append_records(group_coord *gc, partition *p, int n, const kbytes *keys, const kbytes *values,
                              int64_t *first) {
    return append_batch(gc, p, n, keys, values, -1, -1, first);
}

void gc_append(group_coord *gc, const char *group_id, int n, const kbytes *keys, const kbytes *values,
               gc_written_fn done, void *arg) {
    gc_append_txn(gc, group_id, n, keys, values, -1, -1, done, arg);
}

void gc_append_txn(group_coord *gc, const char *group_id, int n, const kbytes *keys, const kbytes *values,
                   int64_t producer_id, int16_t producer_epoch, gc_written_fn done, void *arg) {
    int16_t e = KERR_NONE;
    partition *p = n > 0 ? gc_offsets_partition(gc, group_id, &e) : NULL;
    int64_t first = -1;
    if (p) e = append_batch(gc, p, n, keys, values, producer_id, producer_epoch, &first);
    if (!p || e) {
        done(gc, arg, e, -1, false);
        return;
    }
    gc_write *w = malloc(sizeof *w);
    if (!w) abort();
    *w = (gc_write){gc, done, arg, first, p->index, part_incarnation(gc, p->index), NULL, gc->writes};
    if (gc->writes) gc->writes->prev = w;
    gc->writes = w;
    await_replication(gc, p, first + n, w);
}

typedef struct group_store {
    void (*done)(void *, int16_t);
    void *arg;
    char *group_id;
} group_store;

static void group_written(group_coord *gc, void *arg, int16_t error, int64_t first_offset, bool same) {
    (void)gc;
    (void)first_offset;
    (void)same; /* the state machine checks the group's generation itself */
    group_store *st = arg;
    int16_t e = gc_group_store_error(error);
    if (e) log_warn(LOGC, "Failed to persist metadata of group %s: %s", st->group_id, kerr_name(e));
    st->done(st->arg, e);
    free(st->group_id);
    free(st);
}

static void env_store_group(void *ctx, kgroup *g, void (*done)(void *, int16_t), void *done_arg) {
    group_coord *gc = ctx;
    kwriter k, v;
    kw_init(&k);
    kw_init(&v);
    grec_group_key(&k, g->id);
    grec_group_value(&v, g);
    group_store *st = malloc(sizeof *st);
    if (!st || !(st->group_id = strdup(g->id))) abort();
    st->done = done;
    st->arg = done_arg;
    if (!k.err && !v.err) {
        kbytes kb = {k.buf, (int32_t)k.len}, vb = {v.buf, (int32_t)v.len};
        gc_append(gc, g->id, 1, &kb, &vb, group_written, st);
    } else {
        group_written(gc, st, KERR_UNKNOWN_SERVER_ERROR, -1, false);
    }
    kw_free(&k);
    kw_free(&v);
}

int16_t gc_write_tombstones(group_coord *gc, const char *group_id, int n, const goffset *const *offs,
                            bool group_too) {
    int total = n + (group_too ? 1 : 0);
    if (!total) return KERR_NONE;
    int16_t e;
    partition *p = gc_offsets_partition(gc, group_id, &e);
    if (!p) return e;
    kwriter *ws = calloc((size_t)total, sizeof *ws);
    kbytes *keys = calloc((size_t)total, sizeof *keys);
    kbytes *vals = calloc((size_t)total, sizeof *vals);
    e = KERR_UNKNOWN_SERVER_ERROR;
    if (ws && keys && vals) {
        for (int i = 0; i < total; i++) {
            kw_init(&ws[i]);
            if (i < n) grec_offset_key(&ws[i], group_id, offs[i]->topic, offs[i]->partition);
            else grec_group_key(&ws[i], group_id);
            keys[i] = (kbytes){ws[i].buf, (int32_t)ws[i].len};
            vals[i] = (kbytes){NULL, -1};
        }
        int64_t first;
        e = gc_offset_commit_error(append_records(gc, p, total, keys, vals, &first));
        for (int i = 0; i < total; i++) kw_free(&ws[i]);
    }
    free(ws);
    free(keys);
    free(vals);
    return e;
}

/* ---- partitions this coordinator leads ---- */

static gc_part *group_part(group_coord *gc, const char *group_id) {
    if (gc->nparts <= 0) return NULL;
    return &gc->parts[group_partition_for(group_id, gc->nparts)];
}

bool gc_any_loading(group_coord *gc) {
    for (int32_t i = 0; i < gc->nparts; i++)
        if (gc->parts[i].state == GC_PART_LOADING) return true;
    return false;
}

bool gc_group_loaded(group_coord *gc, const char *group_id) {
    gc_part *gp = group_part(gc, group_id);
    /* before __consumer_offsets exists a single node holds every group */
    return gp ? gp->state == GC_PART_LOADED : !mstore_is_cluster(gc->b->store);
}

static bool env_group_loading(void *ctx, const char *group_id) {
    gc_part *gp = group_part(ctx, group_id);
    return gp && gp->state == GC_PART_LOADING;
}

/* ---- offsets retention ---- */

static void retention_tick(kloop *l, void *arg);

static void cleanup_group_metadata(group_coord *gc) {
    int64_t now = wall_clock_ms();
    int bucket = 0;
    kgroup *cur = NULL;
    /* collect first: removing while iterating would break the cursor */
    int cap = 16, n = 0;
    kgroup **all = malloc((size_t)cap * sizeof *all);
    if (!all) return;
    for (kgroup *g; (g = gmgr_iter(&gc->mgr, &bucket, &cur));) {
        if (!gc_group_loaded(gc, g->id)) continue; /* a partition still loading */
        if (n == cap) {
            kgroup **na = realloc(all, (size_t)(cap *= 2) * sizeof *na);
            if (!na) break;
            all = na;
        }
        all[n++] = g;
    }
    for (int i = 0; i < n; i++) {
        kgroup *g = all[i];
        int ne = 0;
        goffset **ex = group_expire_offsets(g, now, gc->mgr.cfg.offsets_retention_ms, &ne);
        bool dead = false;
        if (g->state == GROUP_EMPTY && g->noffsets == 0 && !g->txn) {
            g->state = GROUP_DEAD;
            dead = true;
        }
        if (ne || dead) {
            log_info(LOGC, "[GroupMetadataManager brokerId=%d] Removed %d expired offsets for group %s%s",
                     broker_node_id(gc->b), ne, g->id, dead ? "; group transitioned to Dead" : "");
            gc_write_tombstones(gc, g->id, ne, (const goffset *const *)ex, dead && g->generation > 0);
        }
        for (int k = 0; k < ne; k++) goffset_free(ex[k]);
        free(ex);
        if (dead) gmgr_remove(&gc->mgr, g);
    }
    free(all);
}

static void retention_tick(kloop *l, void *arg) {
    (void)l;
    group_coord *gc = arg;
    cleanup_group_metadata(gc);
    int64_t iv = gc->b->cfg.offsets_retention_check_interval_ms;
    gc->retention_timer = loop_timer_add(gc->b->loop, iv > 0 ? iv : 600000, retention_tick, gc);
}

/* ---- lifecycle ---- */

group_coord *group_coord_new(broker *b) {
    group_coord *gc = calloc(1, sizeof *gc);
    if (!gc) return NULL;
    gc->b = b;
    gconfig cfg;
    gconfig_defaults(&cfg);
    cfg.min_session_timeout_ms = b->cfg.group_min_session_timeout_ms;
    cfg.max_session_timeout_ms = b->cfg.group_max_session_timeout_ms;
    cfg.max_size = b->cfg.group_max_size;
    cfg.initial_rebalance_delay_ms = b->cfg.group_initial_rebalance_delay_ms;
    cfg.offset_metadata_max_bytes = b->cfg.offset_metadata_max_bytes;
    cfg.offsets_retention_ms = b->cfg.offsets_retention_minutes * 60 * 1000;
    cfg.node_id = b->cfg.node_id;
    genv env = {.ctx = gc,
                .now_ms = env_now,
                .join_done = gc_join_done,
                .sync_done = gc_sync_done,
                .store_group = env_store_group,
                .timer_arm = env_timer_arm,
                .timer_cancel = env_timer_cancel,
                .owns_group = env_owns_group,
                .group_loading = env_group_loading};
    if (gmgr_init(&gc->mgr, &cfg, &env) != 0) {
        free(gc);
        return NULL;
    }
    gc->next_incarnation = 1;
    return gc;
}

/* A group belongs to this coordinator while it leads the group's
 * __consumer_offsets partition and has loaded it (Kafka's ownedPartitions).
 * While the topic does not exist yet, a single node takes every group (the
 * topic is created on first use, as FindCoordinator does). */
static bool env_owns_group(void *ctx, const char *group_id) {
    group_coord *gc = ctx;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    if (!t || t->nparts <= 0) return !mstore_is_cluster(gc->b->store);
    int16_t e;
    if (!broker_partition_led(gc->b, t, group_partition_for(group_id, t->nparts), &e)) return false;
    gc_part *gp = group_part(gc, group_id);
    /* led, but leadership_changed has not run since (the topic just created) */
    if (!gp || t->nparts != gc->nparts) return !mstore_is_cluster(gc->b->store);
    return gp->state == GC_PART_LOADED;
}

/* Replay part of one partition's log, from gp->load_next, reading at most
 * budget bytes (<= 0: all). Returns 1 when the partition is fully loaded,
 * 0 when more is left. */
static int load_some(group_coord *gc, partition *p, gc_part *gp, int64_t budget) {
    int64_t end = gp->load_end;
    int64_t read_total = 0;
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) return 1;
    if (gp->load_next < plog_start_offset(p->log)) gp->load_next = plog_start_offset(p->log);
    while (gp->load_next < end && (budget <= 0 || read_total < budget)) {
        int64_t off = gp->load_next;
        plog_slice s;
        int rc = plog_read(p->log, off, 1 << 20, true, end, &s);
        ssize_t got = -1;
        if (rc == 0 && s.len > 0 && (size_t)s.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)s.len);
            if (nb) buf = nb, cap = (size_t)s.len;
        }
        if (rc == 0 && s.len > 0 && (size_t)s.len <= cap) got = pread(s.fd, buf, (size_t)s.len, s.file_pos);
        if (got <= 0) { /* unreadable: what was read is what there is */
            if (rc != 0 || s.len > 0)
                log_warn(LOGC, "Cannot read %s-%d at offset %lld while loading", OFFSETS_TOPIC, p->index,
                         (long long)off);
            gp->load_next = end;
            break;
        }
        read_total += got;
        if (grec_replay_partition(&gc->mgr, buf, (size_t)got, p->index, gc->nparts) < 0)
            log_warn(LOGC, "Corrupt batch while loading %s-%d", OFFSETS_TOPIC, p->index);
        /* advance past the last whole batch read */
        size_t pos = 0;
        int64_t next = off;
        while ((size_t)got - pos >= BATCH_HEADER_SIZE) {
            batch_header h;
            batch_header_parse(buf + pos, &h);
            size_t whole = (size_t)h.batch_length + BATCH_LOG_OVERHEAD;
            if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || whole > (size_t)got - pos) break;
            next = h.base_offset + h.last_offset_delta + 1;
            pos += whole;
        }
        if (next <= off) { /* no progress: stop rather than spin */
            gp->load_next = end;
            break;
        }
        gp->load_next = next;
    }
    free(buf);
    return gp->load_next >= end || budget <= 0;
}

/* The partition's groups, collected (callers may remove them). */
static kgroup **groups_of(group_coord *gc, const bool *which, int *n) {
    int cap = 16;
    *n = 0;
    kgroup **v = malloc((size_t)cap * sizeof *v);
    if (!v) abort();
    int bucket = 0;
    kgroup *cur = NULL;
    for (kgroup *g; (g = gmgr_iter(&gc->mgr, &bucket, &cur));) {
        if (!which[group_partition_for(g->id, gc->nparts)]) continue;
        if (*n == cap) {
            kgroup **nv = realloc(v, (size_t)(cap *= 2) * sizeof *nv);
            if (!nv) abort();
            v = nv;
        }
        v[(*n)++] = g;
    }
    return v;
}

/* Kafka's onGroupLoaded for every group of partition i. An empty log
 * loaded nothing: groups of the partition then are a single node's, made
 * before __consumer_offsets existed, and already live. */
static void finish_load(group_coord *gc, int32_t i, bool replayed) {
    gc_part *gp = &gc->parts[i];
    gp->state = GC_PART_LOADED;
    if (!replayed) return;
    bool *which = calloc((size_t)gc->nparts, sizeof *which);
    if (!which) abort();
    which[i] = true;
    int n;
    kgroup **gs = groups_of(gc, which, &n);
    for (int k = 0; k < n; k++) gmgr_group_loaded(&gc->mgr, gs[k]);
    free(gs);
    free(which);
    log_info(LOGC, "[GroupMetadataManager brokerId=%d] Finished loading offsets and group metadata from "
                   "%s-%d in %lld milliseconds for epoch %d (%d groups)",
             broker_node_id(gc->b), OFFSETS_TOPIC, i, (long long)(monotonic_ms() - gp->load_started_ms),
             gp->epoch, n);
}

/* How much one turn of the event loop replays before letting requests in. */
#define LOAD_BYTES_PER_TURN (4 << 20)

static void load_tick(kloop *l, void *arg);

static void schedule_loading(group_coord *gc) {
    if (!gc->load_timer && gc_any_loading(gc)) gc->load_timer = loop_timer_add(gc->b->loop, 0, load_tick, gc);
}

static void load_tick(kloop *l, void *arg) {
    (void)l;
    group_coord *gc = arg;
    gc->load_timer = 0;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    for (int32_t i = 0; t && i < gc->nparts && i < t->nparts; i++) {
        gc_part *gp = &gc->parts[i];
        if (gp->state != GC_PART_LOADING || !t->parts[i] || !t->parts[i]->log) continue;
        if (load_some(gc, t->parts[i], gp, LOAD_BYTES_PER_TURN)) finish_load(gc, i, true);
        break; /* one partition's share per turn */
    }
    schedule_loading(gc);
}

/* Kafka's onElection: replay the partition's log up to its end now, into
 * groups served once it is whole. A small log is replayed at once; a big
 * one a share per event-loop turn (COORDINATOR_LOAD_IN_PROGRESS meanwhile). */
static void start_load(group_coord *gc, int32_t i, partition *p, bool all_now) {
    gc_part *gp = &gc->parts[i];
    log_info("kafka.coordinator.group.GroupCoordinator",
             "[GroupCoordinator %d]: Elected as the group coordinator for partition %d in epoch %d",
             broker_node_id(gc->b), i, p->leader_epoch);
    gp->state = GC_PART_LOADING;
    gp->epoch = p->leader_epoch;
    gp->incarnation = gc->next_incarnation++;
    gp->load_next = plog_start_offset(p->log);
    gp->load_end = plog_end_offset(p->log);
    gp->load_started_ms = monotonic_ms();
    if (gp->load_next >= gp->load_end) finish_load(gc, i, false);
    else if (load_some(gc, p, gp, all_now ? 0 : LOAD_BYTES_PER_TURN)) finish_load(gc, i, true);
}

/* Kafka's onResignation for the partitions marked in which. */
static void unload_partitions(group_coord *gc, const bool *which) {
    int n;
    kgroup **gs = groups_of(gc, which, &n);
    for (int k = 0; k < n; k++) gmgr_unload_group(&gc->mgr, gs[k]);
    free(gs);
    for (int32_t i = 0; i < gc->nparts; i++) {
        if (!which[i]) continue;
        log_info("kafka.coordinator.group.GroupCoordinator",
                 "[GroupCoordinator %d]: Resigned as the group coordinator for partition %d in epoch %d",
                 broker_node_id(gc->b), i, gc->parts[i].epoch);
        gc->parts[i].state = GC_PART_NONE;
        gc->parts[i].incarnation = 0;
    }
}

/* Compare what this node leads with what it has loaded; load and drop the
 * difference. Runs after every metadata change: without a change it is one
 * pass over the partitions. */
static void sync_leadership(group_coord *gc, bool all_now) {
    broker *b = gc->b;
    topic_rt *t = broker_topic(b, KSTR_LIT(OFFSETS_TOPIC));
    int32_t n = t ? t->nparts : 0;
    /* a new topic incarnation (deleted and created again): forget the old one */
    if (gc->nparts && (!t || memcmp(&t->id, &gc->parts_topic_id, sizeof t->id) != 0)) {
        bool *all = malloc((size_t)gc->nparts * sizeof *all);
        if (!all) abort();
        for (int32_t i = 0; i < gc->nparts; i++) all[i] = gc->parts[i].state != GC_PART_NONE;
        unload_partitions(gc, all);
        free(all);
        free(gc->parts);
        gc->parts = NULL;
        gc->nparts = 0;
    }
    if (!t || n <= 0) return;
    if (n != gc->nparts) {
        /* groups map to partitions by count: a changed count remaps them all */
        if (gc->nparts) {
            bool *all = malloc((size_t)gc->nparts * sizeof *all);
            if (!all) abort();
            for (int32_t i = 0; i < gc->nparts; i++) all[i] = gc->parts[i].state != GC_PART_NONE;
            unload_partitions(gc, all);
            free(all);
        }
        gc_part *np = calloc((size_t)n, sizeof *np);
        if (!np) abort();
        free(gc->parts);
        gc->parts = np;
        gc->nparts = n;
        gc->parts_topic_id = t->id;
        /* groups made before the topic existed (one node) stay: they map
         * to partitions this node leads */
    }
    bool *lost = NULL;
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[i];
        bool led = p && p->log && p->is_leader && !b->fenced;
        gc_part *gp = &gc->parts[i];
        bool stale = gp->state != GC_PART_NONE && (!led || gp->epoch != p->leader_epoch);
        if (stale) {
            if (!lost && !(lost = calloc((size_t)n, sizeof *lost))) abort();
            lost[i] = true;
        }
    }
    if (lost) {
        unload_partitions(gc, lost);
        free(lost);
    }
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[i];
        bool led = p && p->log && p->is_leader && !b->fenced;
        if (led && gc->parts[i].state == GC_PART_NONE) start_load(gc, i, p, all_now);
    }
    schedule_loading(gc);
}

void group_coord_leadership_changed(group_coord *gc) {
    if (gc) sync_leadership(gc, false);
}

int group_coord_load(group_coord *gc) {
    /* at start-up nothing is served yet: load everything led at once */
    sync_leadership(gc, true);
    int64_t iv = gc->b->cfg.offsets_retention_check_interval_ms;
    gc->retention_timer = loop_timer_add(gc->b->loop, iv > 0 ? iv : 600000, retention_tick, gc);
    return 0;
}

void group_coord_shutdown(group_coord *gc) {
    if (!gc) return;
    /* writes still waiting for replication are answered now (the replica
     * manager lets them go only after this coordinator is freed); the
     * records may still reach the followers, as with any timed-out write */
    while (gc->writes) {
        gc_write *w = gc->writes;
        gc_written_fn done = w->done;
        write_unlink(w);
        w->done = NULL;
        done(gc, w->arg, KERR_NOT_LEADER_OR_FOLLOWER, -1, false);
    }
    gmgr_shutdown(&gc->mgr);
    if (gc->retention_timer) loop_timer_cancel(gc->b->loop, gc->retention_timer);
    gc->retention_timer = 0;
    if (gc->load_timer) loop_timer_cancel(gc->b->loop, gc->load_timer);
    gc->load_timer = 0;
}

void group_coord_free(group_coord *gc) {
    if (!gc) return;
    gmgr_free(&gc->mgr);
    while (gc->timers) {
        gc_timer *t = gc->timers;
        if (gc->b->loop) loop_timer_cancel(gc->b->loop, t->id);
        timer_unlink_free(t);
    }
    if (gc->retention_timer && gc->b->loop) loop_timer_cancel(gc->b->loop, gc->retention_timer);
    if (gc->load_timer && gc->b->loop) loop_timer_cancel(gc->b->loop, gc->load_timer);
    free(gc->parts);
    free(gc);
}
