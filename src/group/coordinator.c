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

/* Creates __consumer_offsets on first use. In a cluster the creation
 * completes later: COORDINATOR_NOT_AVAILABLE (retriable) until then. */
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
    partition *part = broker_partition_led(gc->b, t, p, err);
    if (!part) *err = KERR_NOT_COORDINATOR;
    return part;
}

bool gc_coordinator_node(group_coord *gc, const char *group_id, broker_node *out, int16_t *err) {
    *err = gc_ensure_offsets_topic(gc);
    if (*err) return false;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    const mpartition *mp = t ? broker_mpartition(gc->b, t, group_partition_for(group_id, t->nparts)) : NULL;
    if (!mp || mp->leader < 0 || !broker_node_lookup(gc->b, mp->leader, out)) {
        *err = KERR_COORDINATOR_NOT_AVAILABLE;
        return false;
    }
    return true;
}

/* Kafka's translation of append errors for coordinator writes. */
static int16_t map_append_error(int16_t e) {
    switch (e) {
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_ENOUGH_REPLICAS:
    case KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND: return KERR_COORDINATOR_NOT_AVAILABLE;
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_KAFKA_STORAGE_ERROR: return KERR_NOT_COORDINATOR;
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_INVALID_FETCH_SIZE: return KERR_INVALID_COMMIT_OFFSET_SIZE;
    default: return e;
    }
}

int16_t gc_append(group_coord *gc, const char *group_id, int n, const kbytes *keys, const kbytes *values) {
    if (n <= 0) return KERR_NONE;
    int16_t e;
    partition *p = gc_offsets_partition(gc, group_id, &e);
    if (!p) return e;
    rec_builder rb;
    rec_builder_init(&rb, 0, 0, -1, -1, -1, false, false);
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
    int64_t first = 0;
    e = broker_append_batch(gc->b, p, w.buf, w.len, &first);
    kw_free(&w);
    return map_append_error(e);
}

static int16_t env_store_group(void *ctx, kgroup *g) {
    group_coord *gc = ctx;
    kwriter k, v;
    kw_init(&k);
    kw_init(&v);
    grec_group_key(&k, g->id);
    grec_group_value(&v, g);
    int16_t e = KERR_UNKNOWN_SERVER_ERROR;
    if (!k.err && !v.err) {
        kbytes kb = {k.buf, (int32_t)k.len}, vb = {v.buf, (int32_t)v.len};
        e = gc_append(gc, g->id, 1, &kb, &vb);
    }
    kw_free(&k);
    kw_free(&v);
    if (e) log_warn(LOGC, "Failed to persist metadata of group %s: %s", g->id, kerr_name(e));
    return e;
}

int16_t gc_write_tombstones(group_coord *gc, const char *group_id, int n, const goffset *const *offs,
                            bool group_too) {
    int total = n + (group_too ? 1 : 0);
    if (!total) return KERR_NONE;
    kwriter *ws = calloc((size_t)total, sizeof *ws);
    kbytes *keys = calloc((size_t)total, sizeof *keys);
    kbytes *vals = calloc((size_t)total, sizeof *vals);
    int16_t e = KERR_UNKNOWN_SERVER_ERROR;
    if (ws && keys && vals) {
        for (int i = 0; i < total; i++) {
            kw_init(&ws[i]);
            if (i < n) grec_offset_key(&ws[i], group_id, offs[i]->topic, offs[i]->partition);
            else grec_group_key(&ws[i], group_id);
            keys[i] = (kbytes){ws[i].buf, (int32_t)ws[i].len};
            vals[i] = (kbytes){NULL, -1};
        }
        e = gc_append(gc, group_id, total, keys, vals);
        for (int i = 0; i < total; i++) kw_free(&ws[i]);
    }
    free(ws);
    free(keys);
    free(vals);
    return e;
}

/* ---- offsets retention ---- */

static void retention_tick(kloop *l, void *arg);

static void cleanup_group_metadata(group_coord *gc) {
    int64_t now = wall_clock_ms();
    int removed = 0;
    int bucket = 0;
    kgroup *cur = NULL;
    /* collect first: removing while iterating would break the cursor */
    int cap = 16, n = 0;
    kgroup **all = malloc((size_t)cap * sizeof *all);
    if (!all) return;
    for (kgroup *g; (g = gmgr_iter(&gc->mgr, &bucket, &cur));) {
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
        if (g->state == GROUP_EMPTY && g->noffsets == 0) {
            g->state = GROUP_DEAD;
            dead = true;
        }
        if (ne || dead) {
            log_info(LOGC, "[GroupMetadataManager brokerId=%d] Removed %d expired offsets for group %s%s",
                     broker_node_id(gc->b), ne, g->id, dead ? "; group transitioned to Dead" : "");
            gc_write_tombstones(gc, g->id, ne, (const goffset *const *)ex, dead && g->generation > 0);
        }
        removed += ne;
        for (int k = 0; k < ne; k++) goffset_free(ex[k]);
        free(ex);
        if (dead) gmgr_remove(&gc->mgr, g);
    }
    free(all);
    (void)removed;
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
                .owns_group = env_owns_group};
    if (gmgr_init(&gc->mgr, &cfg, &env) != 0) {
        free(gc);
        return NULL;
    }
    return gc;
}

/* A group belongs to the coordinator that leads its __consumer_offsets
 * partition. While the topic does not exist yet, this node takes it (the
 * topic is created on first use, as FindCoordinator does). */
static bool env_owns_group(void *ctx, const char *group_id) {
    group_coord *gc = ctx;
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    if (!t || t->nparts <= 0) return !mstore_is_cluster(gc->b->store);
    int16_t e;
    return broker_partition_led(gc->b, t, group_partition_for(group_id, t->nparts), &e) != NULL;
}

void group_coord_leadership_changed(group_coord *gc) {
    /* One replica per partition: a node leads its __consumer_offsets
     * partitions whenever it is alive, and loaded them at start-up; moving
     * coordinators between replicas comes with replication. */
    (void)gc;
}

/* Replay one partition of __consumer_offsets from its start. */
static int load_partition(group_coord *gc, partition *p) {
    int64_t off = plog_start_offset(p->log);
    int64_t end = plog_end_offset(p->log);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) return -1;
    while (off < end) {
        plog_slice s;
        int rc = plog_read(p->log, off, 1 << 20, true, end, &s);
        if (rc != 0 || s.len <= 0) break;
        if ((size_t)s.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)s.len);
            if (!nb) break;
            buf = nb;
            cap = (size_t)s.len;
        }
        ssize_t got = pread(s.fd, buf, (size_t)s.len, s.file_pos);
        if (got <= 0) break;
        if (grec_replay(&gc->mgr, buf, (size_t)got) < 0)
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
        if (next <= off) break; /* no progress: stop rather than spin */
        off = next;
    }
    free(buf);
    return 0;
}

int group_coord_load(group_coord *gc) {
    int64_t t0 = monotonic_ms();
    topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
    gc->mgr.loading = true;
    if (t)
        for (int32_t i = 0; i < t->nparts; i++)
            if (t->parts[i] && t->parts[i]->log) load_partition(gc, t->parts[i]);
    gc->mgr.loading = false;
    int bucket = 0;
    kgroup *cur = NULL;
    for (kgroup *g; (g = gmgr_iter(&gc->mgr, &bucket, &cur));) gmgr_group_loaded(&gc->mgr, g);
    if (t)
        log_info(LOGC, "[GroupMetadataManager brokerId=%d] Finished loading offsets and group metadata "
                       "from %s in %lld milliseconds (%d groups)",
                 broker_node_id(gc->b), OFFSETS_TOPIC, (long long)(monotonic_ms() - t0), gc->mgr.ngroups);
    int64_t iv = gc->b->cfg.offsets_retention_check_interval_ms;
    gc->retention_timer = loop_timer_add(gc->b->loop, iv > 0 ? iv : 600000, retention_tick, gc);
    return 0;
}

void group_coord_shutdown(group_coord *gc) {
    if (!gc) return;
    gmgr_shutdown(&gc->mgr);
    if (gc->retention_timer) loop_timer_cancel(gc->b->loop, gc->retention_timer);
    gc->retention_timer = 0;
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
    free(gc);
}
