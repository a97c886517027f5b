/* topics.c - the topics this node serves: a registry of topic_rt by name
 * and id, kept in step with the metadata image.
 *
 * Every change (create, delete, add partitions, config change) is written to
 * the metadata log first as Kafka's records, applied to the image, and only
 * then reflected here by topics_sync(): the image is the truth, the runtime
 * follows it. That keeps a future replicated controller a drop-in change.
 */
#include "broker/topics.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config_internal.h"
#include "broker/partition_dirs.h"
#include "cleaner/log_cleaner.h"
#include "broker/partition_txn.h"
#include "broker/producer_state.h"
#include "controller/placement.h"
#include "group/group.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "replica/replica_manager.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "txn/txn_manager.h"
#include "util/log.h"

/* QuorumController.MAX_RECORDS_PER_USER_OP: the most records one CreateTopics
 * or CreatePartitions may produce. */
#define MAX_RECORDS_PER_USER_OP 10000
/* The reservation step ahead of a busy segment's appends without preallocate (see resolve_topic_config). */
#define PREALLOC_STEP_BYTES ((int64_t)16 << 20)

#define COMPONENT "kafka.log.LogManager"

/* Someone to tell when a topic's partitions are all made (topics_when_made). */
typedef struct made_waiter {
    kuuid topic_id;
    void (*fn)(broker *b, void *arg);
    void *arg;
} made_waiter;

struct broker_topics {
    topic_rt **v;
    int n, cap;
    int *slots;   /* open-addressing hash of name -> index in v (-1 empty) */
    int nslots;
    pdirs *dirs;           /* makes and removes partition directories (partition_dirs.h); NULL until needed */
    bool dirs_failed;      /* its thread could not start: directories are made and removed on the loop */
    bool settling;         /* topics_sync or shutdown drains it: no coordinator calls from partition_made */
    int64_t made_count;    /* partitions partition_made has taken (topics_settle: did it open any?) */
    made_waiter *waiters;
    int nwaiters, capwaiters;
};

static uint32_t hash_name(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static void rehash(struct broker_topics *t) {
    int ns = 64;
    while (ns < t->n * 2 + 8) ns *= 2;
    int *slots = malloc(sizeof(int) * (size_t)ns);
    if (!slots) return; /* keep the old table: lookups fall back to scanning */
    for (int i = 0; i < ns; i++) slots[i] = -1;
    for (int i = 0; i < t->n; i++) {
        uint32_t h = hash_name(t->v[i]->name, strlen(t->v[i]->name));
        int s = (int)(h & (uint32_t)(ns - 1));
        while (slots[s] >= 0) s = (s + 1) & (ns - 1);
        slots[s] = i;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
}

topic_rt *broker_topic(broker *b, kstr name) {
    struct broker_topics *t = b->topics;
    if (!t || name.len < 0) return NULL;
    if (!t->slots) {
        for (int i = 0; i < t->n; i++)
            if (kstr_eq_c(name, t->v[i]->name)) return t->v[i];
        return NULL;
    }
    uint32_t h = hash_name(name.p, (size_t)name.len);
    for (int s = (int)(h & (uint32_t)(t->nslots - 1)); t->slots[s] >= 0; s = (s + 1) & (t->nslots - 1))
        if (kstr_eq_c(name, t->v[t->slots[s]]->name)) return t->v[t->slots[s]];
    return NULL;
}

topic_rt *broker_topic_by_id(broker *b, const kuuid *id) {
    struct broker_topics *t = b->topics;
    for (int i = 0; t && i < t->n; i++)
        if (memcmp(t->v[i]->id.b, id->b, 16) == 0) return t->v[i];
    return NULL;
}

partition *broker_partition(broker *b, kstr topic, int32_t index) {
    topic_rt *t = broker_topic(b, topic);
    if (!t || index < 0 || index >= t->nparts) return NULL;
    return t->parts[index];
}

partition *broker_partition_led(broker *b, topic_rt *t, int32_t index, int16_t *err) {
    if (!t || index < 0 || index >= t->nparts) {
        *err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    partition *p = t->parts[index];
    if (!p || !p->is_leader || b->fenced) {
        *err = KERR_NOT_LEADER_OR_FOLLOWER;
        return NULL;
    }
    *err = KERR_NONE;
    return p;
}

const mpartition *broker_mpartition(broker *b, const topic_rt *t, int32_t index) {
    const mtopic *mt = t->meta ? t->meta : mimage_topic_by_id(b->image, &t->id);
    if (!mt || index < 0 || index >= mt->nparts) return NULL;
    return &mt->parts[index];
}

int broker_topics_list(broker *b, topic_rt **out, int max) {
    struct broker_topics *t = b->topics;
    int n = 0;
    for (int i = 0; t && i < t->n && n < max; i++) out[n++] = t->v[i];
    return t ? t->n : 0;
}

int broker_topic_count(broker *b) { return b->topics ? b->topics->n : 0; }

/* ---- configs ---- */

void broker_config_layers(broker *b, config_layers *l, karena *a) {
    memset(l, 0, sizeof *l);
    l->static_cfg = &b->cfg.raw;
    const mconfig_set *sets[2] = {&b->image->broker_configs, &b->image->default_broker_configs};
    for (int s = 0; s < 2; s++) {
        int n = sets[s]->count;
        const char **k = karena_calloc(a, (size_t)(n ? n : 1), sizeof(char *));
        const char **v = karena_calloc(a, (size_t)(n ? n : 1), sizeof(char *));
        if (!k || !v) return;
        for (int i = 0; i < n; i++) {
            k[i] = sets[s]->items[i].key;
            v[i] = sets[s]->items[i].value;
        }
        if (s == 0) {
            l->dyn_broker_keys = k;
            l->dyn_broker_values = v;
            l->ndyn_broker = n;
        } else {
            l->dyn_default_keys = k;
            l->dyn_default_values = v;
            l->ndyn_default = n;
        }
    }
}

const char *broker_config_value(broker *b, const char *name, karena *a) {
    config_layers l;
    broker_config_layers(b, &l, a);
    const char *v = config_layer_get(&l, name, NULL);
    if (!v) {
        const config_def *d = broker_config_def(name);
        v = d ? config_def_default(d) : NULL;
    }
    return v;
}

int64_t broker_config_i64(broker *b, const char *name, int64_t dflt) {
    karena a;
    karena_init(&a, 0);
    const char *v = broker_config_value(b, name, &a);
    int64_t x;
    if (!v || !config_parse_integer(v, INT64_MIN, INT64_MAX, &x)) x = dflt;
    karena_free(&a);
    return x;
}

static void resolve_topic_config(broker *b, topic_rt *t, const mtopic *mt) {
    const char *keys[64], *values[64];
    int n = 0;
    for (int i = 0; mt && i < mt->configs.count && n < 64; i++) {
        keys[n] = mt->configs.items[i].key;
        values[n] = mt->configs.items[i].value;
        n++;
    }
    karena a;
    karena_init(&a, 0);
    config_layers layers;
    broker_config_layers(b, &layers, &a);
    topic_config_resolve_layers(&t->cfg, &layers, keys, values, n);
    karena_free(&a);
    log_config_defaults(&t->log_cfg);
    t->log_cfg.segment_bytes = t->cfg.segment_bytes;
    t->log_cfg.segment_ms = t->cfg.segment_ms;
    /* LogConfig.maxSegmentMs: a compacted log rolls by max.compaction.lag.ms
     * too, so its records leave the active segment in time to be cleaned */
    if (t->cfg.compact && t->cfg.max_compaction_lag_ms > 0 && t->cfg.max_compaction_lag_ms < t->cfg.segment_ms)
        t->log_cfg.segment_ms = t->cfg.max_compaction_lag_ms;
    t->log_cfg.index_interval_bytes = t->cfg.index_interval_bytes;
    t->log_cfg.segment_index_bytes = t->cfg.segment_index_bytes;
    t->log_cfg.flush_messages = t->cfg.flush_messages;
    t->log_cfg.flush_ms = t->cfg.flush_ms;
    t->log_cfg.retention_bytes = t->cfg.retention_bytes;
    t->log_cfg.retention_ms = t->cfg.retention_ms;
    t->log_cfg.file_delete_delay_ms = t->cfg.file_delete_delay_ms;
    t->log_cfg.retention_delete = t->cfg.delete_;
    /* preallocate (Kafka's LogConfig.preallocate): the whole segment is reserved when it starts.
     * Without it, a segment of the usual sizes that has taken a step's worth reserves the next
     * steps ahead of its appends: ext4 then writes into reserved extents, a quarter less write
     * CPU (bench/README.md, "Write paths on this machine"). */
    if (t->cfg.preallocate) t->log_cfg.prealloc_chunk_bytes = t->cfg.segment_bytes;
    else if (t->cfg.segment_bytes >= 4 * PREALLOC_STEP_BYTES) t->log_cfg.prealloc_chunk_bytes = PREALLOC_STEP_BYTES;
    else t->log_cfg.prealloc_chunk_bytes = 0;
    t->log_cfg.page_cache_window_bytes = b->cfg.log_page_cache_window_bytes;
}

/* ---- opening partition logs ---- */

/* Which log dir holds (or should hold) a partition: the one where its
 * directory exists, else the dir with the fewest partitions. */
static const char *pick_log_dir(broker *b, const char *topic, int32_t index) {
    if (b->cfg.nlog_dirs == 1) return b->cfg.log_dirs[0]; /* no stat per partition at start-up */
    char path[2048];
    for (int i = 0; i < b->cfg.nlog_dirs; i++) {
        snprintf(path, sizeof path, "%s/%s-%d", b->cfg.log_dirs[i], topic, index);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return b->cfg.log_dirs[i];
    }
    /* new partition: spread by a stable hash so a restart finds the same dir */
    uint32_t h = hash_name(topic, strlen(topic)) + (uint32_t)index;
    return b->cfg.log_dirs[h % (uint32_t)b->cfg.nlog_dirs];
}

static int64_t checkpoint_hw(broker *b, const char *dir, const char *topic, int32_t index);
static void take_clean_shutdown_markers(broker *b);
static bool startup_clean_shutdown(broker *b, const char *dir);
static int startup_open_failures, close_failures; /* no clean-shutdown marker after either */

/* made: the partition-dirs thread's result when it made the directory
 * (NULL otherwise); made anew (0 or 2), it holds just what plog_make_dir
 * wrote, so it is opened without being read back (plog_open_made). */
static partition *open_partition(broker *b, topic_rt *t, int32_t index, const pdir_made *made) {
    partition *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->topic = t;
    p->index = index;
    p->leader_epoch = -1; /* rm_partition_follow sets it (and starts the epoch when leading) */
    p->leader = -1;
    p->fetch_from = -1;
    const char *dir = pick_log_dir(b, t->name, p->index);
    char path[2048], err[512];
    snprintf(path, sizeof path, "%s/%s-%d", dir, t->name, p->index);
    int64_t recovery = 0, start = -1;
    topics_checkpoint_lookup(b, dir, t->name, p->index, &recovery, &start);
    bool made_new = made && (made->result == 0 || made->result == 2);
    /* A checkpoint may still name an earlier log of this name (recovery
     * point, log start): plog_open applies it, as for any directory. */
    int rc = made_new && recovery == 0 && start < 0
                 ? plog_open_made(path, t->name, p->index, &t->log_cfg, made->first_epoch, &p->log, err, sizeof err)
                 : plog_open(path, t->name, p->index, t->id.b, &t->log_cfg, recovery, start,
                             startup_clean_shutdown(b, dir), &p->log, err, sizeof err);
    if (rc != 0) {
        log_error(COMPONENT, "Failed to open the log of %s-%d: %s", t->name, p->index, err);
        if (b->started_ms == 0) startup_open_failures++;
        free(p);
        return NULL;
    }
    if (made_new) plog_mark_new(p->log);
    /* Like Kafka, a partition the metadata knows but whose directory is gone
     * is recreated empty; at start-up that means lost records: say so. Not
     * for one this node never held (in a cluster it may have been placed
     * here while the node was away): its checkpoints do not name it. */
    bool held_here = start >= 0 || recovery > 0 || !mstore_is_cluster(b->store);
    if (b->started_ms == 0 && held_here && plog_dir_was_created(p->log))
        log_warn(COMPONENT, "The log directory of partition %s-%d is missing (%s): creating an empty log; "
                 "its earlier records are lost", t->name, p->index, path);
    plog_created(p->log); /* a new directory is synced in the background */
    /* Producer state: the clean shutdown's snapshot and the log after it, or
     * the batches of the last two segments (partition_txn.h). */
    part_txn_load(p);
    plog_forget_open_snapshots(p->log); /* taken by the load above, unless it had no producer state */
    rm_partition_opened(b, p, checkpoint_hw(b, dir, t->name, p->index));
    return p;
}

static bool is_replica(const mpartition *mp, int32_t node) {
    for (int i = 0; i < mp->nreplicas; i++)
        if (mp->replicas[i] == node) return true;
    return false;
}

/* Leadership as the image says (leader or follower: replica_manager.c). */
static void follow_leadership(broker *b, partition *p, const mpartition *mp) { rm_partition_follow(b, p, mp); }

static void partition_made(void *ctx, const pdir_made *m);

/* The thread that makes and removes partition directories, started on first
 * use; NULL (said once) if it cannot start. */
static pdirs *dirs_worker(broker *b) {
    struct broker_topics *reg = b->topics;
    if (reg->dirs || reg->dirs_failed || !b->loop) return reg->dirs;
    if (!(reg->dirs = pdirs_new(b->loop, partition_made, b))) {
        log_warn(COMPONENT, "Cannot start the thread that makes and removes partition directories (%s): "
                 "the request loop does it", strerror(errno));
        reg->dirs_failed = true;
    }
    return reg->dirs;
}

/* A deleted partition's directory: renamed as Kafka does and removed on the
 * partition-dirs thread, in order with the makes (Kafka renames it and
 * deletes it later too); without the thread, or memory, removed here. */
static void remove_log(broker *b, plog *log) {
    pdirs *w = dirs_worker(b);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", plog_dir(log));
    plog_discard(log);
    if (!w || pdirs_retire(w, dir) != 0) plog_remove_dir(dir);
}

/* Kafka's LogManager finds the directories of logs deleted before a crash
 * (named *-delete) at start-up and removes them; here on the thread. */
static void remove_leftover_deleted_logs(broker *b) {
    for (int i = 0; i < b->cfg.nlog_dirs; i++) {
        fio_dir d;
        if (fio_dir_open(&d, b->cfg.log_dirs[i]) != 0) continue;
        const char *name;
        size_t suffix = strlen(PLOG_DELETE_DIR_SUFFIX);
        while ((name = fio_dir_next(&d))) {
            size_t n = strlen(name);
            if (n <= suffix || strcmp(name + n - suffix, PLOG_DELETE_DIR_SUFFIX) != 0 || !strchr(name, '.')) continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", b->cfg.log_dirs[i], name);
            pdirs *w = dirs_worker(b);
            if (!w || pdirs_remove(w, path) != 0) plog_remove_dir(path);
        }
        fio_dir_close(&d);
    }
}

/* Kafka's stray logs (BrokerMetadataPublisher.findStrayPartitions, once at
 * start-up): a partition directory whose topic id the metadata does not
 * hold (a topic deleted while this node was away, or just before a crash
 * that came before the rename), or whose partition no longer lists this
 * node, is deleted as a deleted partition's is. Before the image's
 * partitions are opened, so a topic made again under the same name gets a
 * fresh directory. A directory without a readable partition.metadata is
 * left alone (Kafka refuses to start with one). */
static void remove_stray_logs(broker *b) {
    for (int i = 0; i < b->cfg.nlog_dirs; i++) {
        fio_dir d;
        if (fio_dir_open(&d, b->cfg.log_dirs[i]) != 0) continue;
        const char *name;
        while ((name = fio_dir_next(&d))) {
            const char *dash = strrchr(name, '-');
            if (!dash || dash == name || !dash[1] || strspn(dash + 1, "0123456789") != strlen(dash + 1)) continue;
            if (strcmp(name, "__cluster_metadata-0") == 0) continue;
            char path[PATH_MAX], meta[PATH_MAX + 32], gone[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", b->cfg.log_dirs[i], name);
            snprintf(meta, sizeof meta, "%s/%s", path, CKPT_PARTITION_METADATA_FILE);
            kuuid id;
            if (ckpt_partition_metadata_read(meta, id.b) != 0) continue;
            int32_t index = (int32_t)strtol(dash + 1, NULL, 10);
            const mtopic *mt = mimage_topic_by_id(b->image, &id);
            char ids[23];
            kafka_uuid_to_string(id.b, ids);
            if (mt && index < mt->nparts && is_replica(&mt->parts[index], b->cfg.node_id)) continue;
            if (!mt || index >= mt->nparts)
                log_info(COMPONENT, "Found stray log dir %s: the topicId %s does not exist in the metadata image",
                         path, ids);
            else
                log_info(COMPONENT, "Found stray log dir %s: the current replica assignment of topicId %s does not "
                         "contain the local brokerId %d.", path, ids, b->cfg.node_id);
            if (plog_retire_dir(path, gone, sizeof gone) != 0) {
                log_warn(COMPONENT, "Could not rename the stray log %s: %s", path, strerror(errno));
                continue;
            }
            pdirs *w = dirs_worker(b);
            if (!w || pdirs_remove(w, gone) != 0) plog_remove_dir(gone);
        }
        fio_dir_close(&d);
    }
}

/* Close a partition's log; delete_data removes its directory too. */
static void close_partition(broker *b, partition *p, bool delete_data) {
    rm_partition_close(b, p);
    /* Kafka's clean shutdown: the producers' state as <offset>.snapshot, so
     * the next start knows producers silent since before the last segments */
    if (!delete_data && p->producers && pstate_take_snapshot(p->producers, plog_dir(p->log)) != 0)
        log_warn(COMPONENT, "Could not write the producer state snapshot of %s-%d: %s", p->topic->name, p->index,
                 strerror(errno));
    if (delete_data) log_cleaner_forget(plog_dir(p->log), p->topic->name, p->index);
    if (delete_data) remove_log(b, p->log);
    else if (plog_close(p->log) != 0) close_failures++;
    pstate_free(p->producers);
    free(p);
}

/* Partitions created while the broker runs are made on the partition-dirs
 * thread (partition_dirs.h); at start-up, or if the thread cannot start, on
 * the loop. True when partition i of t was queued. */
static bool make_later(broker *b, topic_rt *t, int32_t i, const mpartition *mp) {
    pdirs *w = b->started_ms != 0 ? dirs_worker(b) : NULL;
    if (!w) return false;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s-%d", pick_log_dir(b, t->name, i), t->name, i);
    /* Its leader's first epoch, which it would write when it opens: on the
     * thread the file costs the loop nothing (plog_make_dir). */
    int32_t first_epoch = mp->leader == b->cfg.node_id ? mp->leader_epoch : -1;
    if (pdirs_make(w, path, &t->id, i, first_epoch) != 0) return false;
    t->making[i] = 1;
    t->nmaking++;
    return true;
}

/* Open the partitions this node holds a replica of; the others stay NULL.
 * A reassignment (controller/reassign.h) can add this node to an existing
 * partition: it opens (empty, or what an earlier stay left) and follows
 * the leader to catch up; or remove it: once the change is applied the
 * replica is closed and its log deleted, as Kafka's StopReplica with
 * deletePartition. */
static int add_partitions(broker *b, topic_rt *t, const mtopic *mt) {
    if (mt->nparts > t->nparts) {
        partition **np = realloc(t->parts, sizeof(*np) * (size_t)mt->nparts);
        if (!np) return -1;
        t->parts = np;
        uint8_t *nm = realloc(t->making, (size_t)mt->nparts);
        if (!nm) return -1;
        memset(nm + t->nparts, 0, (size_t)(mt->nparts - t->nparts));
        t->making = nm;
        for (int i = t->nparts; i < mt->nparts; i++) {
            bool replica = is_replica(&mt->parts[i], b->cfg.node_id);
            t->parts[i] = NULL;
            t->nparts = i + 1;
            if (!replica || make_later(b, t, i, &mt->parts[i])) continue;
            if (!(t->parts[i] = open_partition(b, t, i, NULL))) return -1;
        }
    }
    for (int i = 0; i < t->nparts && i < mt->nparts; i++) {
        bool replica = is_replica(&mt->parts[i], b->cfg.node_id);
        if (t->making[i]) continue; /* partition_made opens it as the image says then */
        if (!t->parts[i] && replica) {
            log_info(COMPONENT, "Opening %s-%d: this node was added to its replicas", t->name, i);
            /* on the thread when it runs: after the rename of a directory of this name it may
             * still have to do (this node left the replicas a moment ago) */
            if (make_later(b, t, i, &mt->parts[i])) continue;
            t->parts[i] = open_partition(b, t, i, NULL);
        } else if (t->parts[i] && !replica) {
            log_info(COMPONENT, "Deleting the log of %s-%d: this node left its replicas", t->name, i);
            close_partition(b, t->parts[i], true);
            t->parts[i] = NULL;
        }
        if (t->parts[i]) follow_leadership(b, t->parts[i], &mt->parts[i]);
    }
    return 0;
}

static topic_rt *open_topic(broker *b, const mtopic *mt) {
    struct broker_topics *reg = b->topics;
    topic_rt *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = strdup(mt->name);
    t->id = mt->id;
    resolve_topic_config(b, t, mt);
    if (!t->name || add_partitions(b, t, mt) < 0) {
        log_error(COMPONENT, "Could not open topic %s", mt->name);
    }
    if (reg->n == reg->cap) {
        int nc = reg->cap ? reg->cap * 2 : 16;
        topic_rt **nv = realloc(reg->v, sizeof(*nv) * (size_t)nc);
        if (!nv) return t; /* leaked into limbo only on OOM */
        reg->v = nv;
        reg->cap = nc;
    }
    reg->v[reg->n++] = t;
    rehash(reg);
    return t;
}

static void close_topic(broker *b, topic_rt *t, bool delete_data) {
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i]) close_partition(b, t->parts[i], delete_data);
    free(t->parts);
    free(t->making);
    free(t->name);
    free(t);
}

/* ---- partitions made off the loop ---- */

static void run_waiters(broker *b, const kuuid *topic_id) {
    struct broker_topics *reg = b->topics;
    for (int i = 0; i < reg->nwaiters;) {
        if (memcmp(reg->waiters[i].topic_id.b, topic_id->b, 16) != 0) {
            i++;
            continue;
        }
        made_waiter w = reg->waiters[i];
        reg->waiters[i] = reg->waiters[--reg->nwaiters]; /* order among one topic's waiters does not matter */
        w.fn(b, w.arg);
    }
}

/* The thread delivers a made directory: open the log if this node still
 * holds a replica (the image may have changed meanwhile), else delete it. */
static void partition_made(void *ctx, const pdir_made *m) {
    broker *b = ctx;
    struct broker_topics *reg = b->topics;
    topic_rt *t = broker_topic_by_id(b, &m->topic_id);
    int32_t i = m->partition;
    if (!t || i < 0 || i >= t->nparts || !t->making[i]) return; /* topics_sync drains before a topic goes */
    t->making[i] = 0;
    t->nmaking--;
    reg->made_count++;
    if (m->result < 0)
        log_warn(COMPONENT, "Could not make the log directory of %s-%d (%s): trying on the request loop", t->name,
                 i, strerror(m->err));
    if (m->result == 2)
        log_warn(COMPONENT, "The directory of %s-%d held the log of another topic id: removed it and made a new one",
                 t->name, i);
    const mtopic *mt = mimage_topic_by_id(b->image, &t->id);
    bool replica = mt && i < mt->nparts && is_replica(&mt->parts[i], b->cfg.node_id);
    if (!t->parts[i]) {
        partition *p = open_partition(b, t, i, m);
        if (p && replica) {
            t->parts[i] = p;
            follow_leadership(b, p, &mt->parts[i]);
        } else if (p) {
            close_partition(b, p, true); /* deleted, or moved off this node, while it was made */
        }
    }
    if (!reg->settling) {
        /* As broker_metadata_applied does after topics_sync: a coordinator's partition may be new.
         * At each partition: one that is open is answered as this node's by FindCoordinator, and
         * its coordinator must serve it from then on, before the topic's last partition is made. */
        if (b->groups) group_coord_leadership_changed(b->groups);
        if (b->txns) txn_manager_leadership_changed(b->txns);
    }
    if (t->nmaking > 0) return;
    run_waiters(b, &t->id);
}

/* Every queued partition made and opened now (topic deletion, shutdown). */
static void settle_made(broker *b) {
    struct broker_topics *reg = b->topics;
    if (!reg->dirs) return;
    reg->settling = true;
    pdirs_drain(reg->dirs);
    reg->settling = false;
}

void topics_when_made(broker *b, const topic_rt *t, void (*fn)(broker *b, void *arg), void *arg) {
    struct broker_topics *reg = b->topics;
    if (t->nmaking == 0) {
        fn(b, arg);
        return;
    }
    if (reg->nwaiters == reg->capwaiters) {
        int nc = reg->capwaiters ? reg->capwaiters * 2 : 8;
        made_waiter *nv = realloc(reg->waiters, sizeof(*nv) * (size_t)nc);
        if (!nv) {
            fn(b, arg); /* answered now; the partitions open a moment later */
            return;
        }
        reg->waiters = nv;
        reg->capwaiters = nc;
    }
    reg->waiters[reg->nwaiters++] = (made_waiter){t->id, fn, arg};
}

bool broker_partition_making(const topic_rt *t, int32_t index) {
    return t && t->making && index >= 0 && index < t->nparts && t->making[index];
}

void topics_settle(broker *b) {
    struct broker_topics *reg = b->topics;
    if (!reg || !reg->dirs) return;
    int64_t before = reg->made_count;
    settle_made(b);
    if (reg->made_count == before) return;
    if (b->groups) group_coord_leadership_changed(b->groups); /* as partition_made does outside topics_sync */
    if (b->txns) txn_manager_leadership_changed(b->txns);
}

/* Bring the runtime in line with the image. */
void topics_sync(broker *b) {
    struct broker_topics *reg = b->topics;
    mimage *img = b->image;
    /* First every topic's image entry as it is now (NULL: removed): the old
     * one may be freed, and partitions made below (settle_made) look at it. */
    for (int i = 0; i < reg->n; i++) reg->v[i]->meta = mimage_topic_by_id(img, &reg->v[i]->id);
    /* removed topics */
    for (int i = 0; i < reg->n;) {
        if (!reg->v[i]->meta) {
            /* its partitions still being made are opened first, then deleted with the rest */
            if (reg->v[i]->nmaking > 0) settle_made(b);
            log_info(COMPONENT, "Deleting the logs of topic %s", reg->v[i]->name);
            close_topic(b, reg->v[i], true);
            reg->v[i] = reg->v[--reg->n];
            rehash(reg);
            continue;
        }
        i++;
    }
    /* new topics, new partitions, configs */
    for (int i = 0; i < img->ntopics; i++) {
        mtopic *mt = img->topics[i];
        topic_rt *t = broker_topic_by_id(b, &mt->id);
        if (!t) {
            t = open_topic(b, mt);
            if (t) t->meta = mt;
            continue;
        }
        t->meta = mt;
        resolve_topic_config(b, t, mt);
        for (int p = 0; p < t->nparts; p++)
            if (t->parts[p]) plog_set_config(t->parts[p]->log, &t->log_cfg);
        add_partitions(b, t, mt);
    }
}

static void free_startup_checkpoints(broker *b);

int topics_init(broker *b) {
    b->topics = calloc(1, sizeof *b->topics);
    if (!b->topics) return -1;
    rm_init(b);
    take_clean_shutdown_markers(b);
    remove_leftover_deleted_logs(b);
    remove_stray_logs(b);
    topics_sync(b);
    free_startup_checkpoints(b);
    return 0;
}

void topics_close_all(broker *b) {
    struct broker_topics *reg = b->topics;
    if (!reg) return;
    /* topics_settle, before the connections and the metadata store closed, opened what was
     * being made then and answered the requests waiting for it. Anything queued since is
     * made and left for the next start to open; a request still waiting went with its
     * connection. */
    pdirs_free(reg->dirs);
    reg->dirs = NULL;
    free(reg->waiters);
    topics_write_checkpoints(b);
    rm_shutdown(b);
    for (int i = 0; i < reg->n; i++) close_topic(b, reg->v[i], false);
    free(reg->v);
    free(reg->slots);
    free(reg);
    b->topics = NULL;
}

/* ---- checkpoints ---- */

/* Per log dir, read once when the logs are opened at start-up and freed
 * after: partitions created later start fresh (recovery point 0). */
static ckpt_offsets *recovery_ckpts, *start_ckpts, *hw_ckpts;
static bool ckpts_done;
/* Per log dir: it held the clean-shutdown marker at start-up (NULL before
 * the first look, freed with the checkpoints). */
static bool *clean_dirs;

#define CLEAN_SHUTDOWN_FILE ".kafka_cleanshutdown" /* Kafka's LogLoader.CleanShutdownFile */

/* Kafka's LogManager.loadLogs: a log dir whose marker is there was closed
 * cleanly, and its logs are loaded without recovery. The marker goes at once
 * (and durably), so that a crash from here on leaves a dir that is
 * recovered at the next start. Only for the logs opened at start-up. */
static void take_clean_shutdown_markers(broker *b) {
    clean_dirs = calloc((size_t)b->cfg.nlog_dirs, sizeof *clean_dirs);
    for (int i = 0; i < b->cfg.nlog_dirs; i++) {
        const char *d = b->cfg.log_dirs[i];
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", d, CLEAN_SHUTDOWN_FILE);
        /* removed even when it cannot be used (no memory): never left behind */
        bool found = unlink(path) == 0;
        if (!found && errno != ENOENT) log_warn(COMPONENT, "Cannot remove %s: %s", path, strerror(errno));
        if (found && fio_fsync_dir(d) != 0) found = false;
        if (found && clean_dirs) {
            clean_dirs[i] = true;
            log_info(COMPONENT, "Skipping recovery of the logs in %s since clean shutdown file was found", d);
        } else {
            log_info(COMPONENT, "Recovering the logs in %s since no clean shutdown file was found", d);
        }
    }
}

static bool startup_clean_shutdown(broker *b, const char *dir) {
    if (ckpts_done || b->started_ms != 0) return false;
    for (int i = 0; clean_dirs && i < b->cfg.nlog_dirs; i++)
        if (strcmp(b->cfg.log_dirs[i], dir) == 0) return clean_dirs[i];
    return false;
}

void topics_mark_clean_shutdown(broker *b) {
    if (startup_open_failures || close_failures) {
        log_warn(COMPONENT, "Not writing the clean shutdown file: %d log(s) failed to open at start-up, %d to "
                 "close; the next start recovers them", startup_open_failures, close_failures);
        return;
    }
    for (int i = 0; i < b->cfg.nlog_dirs; i++) {
        const char *d = b->cfg.log_dirs[i];
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", d, CLEAN_SHUTDOWN_FILE);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || fsync(fd) != 0 || close(fd) != 0 || fio_fsync_dir(d) != 0)
            log_warn(COMPONENT, "Cannot write %s: %s (the next start recovers its logs)", path, strerror(errno));
    }
}

static void free_startup_checkpoints(broker *b) {
    for (int i = 0; recovery_ckpts && i < b->cfg.nlog_dirs; i++) ckpt_offsets_free(&recovery_ckpts[i]);
    for (int i = 0; start_ckpts && i < b->cfg.nlog_dirs; i++) ckpt_offsets_free(&start_ckpts[i]);
    for (int i = 0; hw_ckpts && i < b->cfg.nlog_dirs; i++) ckpt_offsets_free(&hw_ckpts[i]);
    free(recovery_ckpts);
    free(start_ckpts);
    free(hw_ckpts);
    free(clean_dirs);
    clean_dirs = NULL;
    recovery_ckpts = start_ckpts = hw_ckpts = NULL;
    ckpts_done = true;
}

/* replication-offset-checkpoint: the high watermark a replica had (-1 if
 * unknown), read at start-up only. */
static int64_t checkpoint_hw(broker *b, const char *dir, const char *topic, int32_t index) {
    if (ckpts_done) return -1;
    if (!hw_ckpts) {
        hw_ckpts = calloc((size_t)b->cfg.nlog_dirs, sizeof *hw_ckpts);
        for (int i = 0; hw_ckpts && i < b->cfg.nlog_dirs; i++) {
            char err[256];
            if (ckpt_hw_read(b->cfg.log_dirs[i], &hw_ckpts[i], err, sizeof err) != 0)
                log_warn(COMPONENT, "Ignoring %s/replication-offset-checkpoint: %s", b->cfg.log_dirs[i], err);
        }
    }
    for (int i = 0; hw_ckpts && i < b->cfg.nlog_dirs; i++)
        if (strcmp(b->cfg.log_dirs[i], dir) == 0) return ckpt_offsets_find(&hw_ckpts[i], topic, index);
    return -1;
}

void topics_checkpoint_lookup(broker *b, const char *dir, const char *topic, int32_t index,
                              int64_t *recovery, int64_t *start) {
    *recovery = 0;
    *start = -1;
    if (ckpts_done) return;
    if (!recovery_ckpts) {
        recovery_ckpts = calloc((size_t)b->cfg.nlog_dirs, sizeof *recovery_ckpts);
        start_ckpts = calloc((size_t)b->cfg.nlog_dirs, sizeof *start_ckpts);
        for (int i = 0; recovery_ckpts && start_ckpts && i < b->cfg.nlog_dirs; i++) {
            char path[2048], err[256];
            snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", b->cfg.log_dirs[i]);
            if (access(path, F_OK) == 0 && ckpt_offsets_read(path, &recovery_ckpts[i], err, sizeof err) != 0)
                log_warn(COMPONENT, "Ignoring %s: %s", path, err);
            snprintf(path, sizeof path, "%s/log-start-offset-checkpoint", b->cfg.log_dirs[i]);
            if (access(path, F_OK) == 0 && ckpt_offsets_read(path, &start_ckpts[i], err, sizeof err) != 0)
                log_warn(COMPONENT, "Ignoring %s: %s", path, err);
        }
    }
    for (int i = 0; recovery_ckpts && start_ckpts && i < b->cfg.nlog_dirs; i++) {
        if (strcmp(b->cfg.log_dirs[i], dir) != 0) continue;
        int64_t r = ckpt_offsets_find(&recovery_ckpts[i], topic, index);
        int64_t s = ckpt_offsets_find(&start_ckpts[i], topic, index);
        if (r >= 0) *recovery = r;
        if (s >= 0) *start = s;
    }
}

void topics_write_checkpoints(broker *b) {
    struct broker_topics *reg = b->topics;
    if (!reg) return;
    for (int d = 0; d < b->cfg.nlog_dirs; d++) {
        const char *dir = b->cfg.log_dirs[d];
        size_t n = 0, cap = 64;
        ckpt_offset_entry *rec = malloc(sizeof(*rec) * cap), *st = malloc(sizeof(*st) * cap),
                          *hw = malloc(sizeof(*hw) * cap);
        for (int i = 0; rec && st && hw && i < reg->n; i++) {
            topic_rt *t = reg->v[i];
            for (int p = 0; p < t->nparts; p++) {
                if (!t->parts[p]) continue;
                const char *pd = plog_dir(t->parts[p]->log);
                size_t dl = strlen(dir);
                if (strncmp(pd, dir, dl) != 0 || pd[dl] != '/') continue;
                if (n == cap) {
                    cap *= 2;
                    ckpt_offset_entry *r2 = realloc(rec, sizeof(*rec) * cap);
                    if (r2) rec = r2;
                    ckpt_offset_entry *s2 = realloc(st, sizeof(*st) * cap);
                    if (s2) st = s2;
                    ckpt_offset_entry *h2 = realloc(hw, sizeof(*hw) * cap);
                    if (h2) hw = h2;
                    if (!r2 || !s2 || !h2) break;
                }
                rec[n].topic = t->name;
                rec[n].partition = t->parts[p]->index;
                rec[n].offset = plog_recovery_point(t->parts[p]->log);
                st[n] = rec[n];
                st[n].offset = plog_start_offset(t->parts[p]->log);
                hw[n] = rec[n];
                hw[n].offset = t->parts[p]->high_watermark;
                n++;
            }
        }
        if (rec && st && hw) {
            char path[2048];
            if (ckpt_hw_write(dir, hw, n) != 0)
                log_error(COMPONENT, "Cannot write %s/replication-offset-checkpoint: %s", dir, strerror(errno));
            snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", dir);
            if (ckpt_offsets_write(path, rec, n) != 0)
                log_error(COMPONENT, "Cannot write %s: %s", path, strerror(errno));
            snprintf(path, sizeof path, "%s/log-start-offset-checkpoint", dir);
            if (ckpt_offsets_write(path, st, n) != 0)
                log_error(COMPONENT, "Cannot write %s: %s", path, strerror(errno));
        }
        free(rec);
        free(st);
        free(hw);
    }
}

/* ---- validation ---- */

bool topic_name_legal_chars(kstr name) {
    for (int i = 0; i < name.len; i++) {
        char c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Kafka's Topic.validate: returns NULL when valid, else the message. */
const char *topic_name_invalid(kstr name, karena *a) {
    if (name.len <= 0) return "Topic name is invalid: the empty string is not allowed";
    if (kstr_eq_c(name, ".")) return "Topic name is invalid: '.' is not allowed";
    if (kstr_eq_c(name, "..")) return "Topic name is invalid: '..' is not allowed";
    if (name.len > 249)
        return karena_sprintf(a, "Topic name is invalid: the length of '%.*s' is longer than the max allowed length 249",
                              name.len, name.p);
    if (!topic_name_legal_chars(name))
        return karena_sprintf(a,
                              "Topic name is invalid: '%.*s' contains one or more characters other than ASCII "
                              "alphanumerics, '.', '_' and '-'",
                              name.len, name.p);
    return NULL;
}

/* Kafka's Uuid.randomUuid: never zero, never the metadata topic's id, and its
 * string form never starts with '-'. */
void random_topic_id(kuuid *id) {
    for (;;) {
        if (getrandom(id->b, 16, 0) != 16) {
            for (int i = 0; i < 16; i++) id->b[i] = (uint8_t)rand();
        }
        char s[23];
        kafka_uuid_to_string(id->b, s);
        bool zero_or_meta = true;
        for (int i = 0; i < 15; i++)
            if (id->b[i]) zero_or_meta = false;
        if (zero_or_meta && id->b[15] <= 1) continue;
        if (s[0] == '-') continue;
        return;
    }
}

/* Does `name` collide with an existing topic when '.' and '_' are equated? */
static topic_rt *colliding_topic(broker *b, kstr name) {
    struct broker_topics *reg = b->topics;
    for (int i = 0; i < reg->n; i++) {
        const char *o = reg->v[i]->name;
        if ((int)strlen(o) != name.len) continue;
        bool same = true;
        for (int k = 0; k < name.len && same; k++) {
            char x = name.p[k] == '.' ? '_' : name.p[k];
            char y = o[k] == '.' ? '_' : o[k];
            same = x == y;
        }
        if (same) return reg->v[i];
    }
    return NULL;
}

/* ---- metadata changes ---- */

/* A commit's completion, translated for the caller: a failed precondition
 * (someone else changed the same thing first) becomes conflict_error. */
typedef struct change_wait {
    broker_change_fn done;
    void *arg;
    int16_t conflict_error;
} change_wait;

static void change_committed(broker *b, void *arg, mstore_status st) {
    change_wait *w = arg;
    int16_t e = st == MSTORE_CONFLICT ? w->conflict_error : mstore_status_error(st);
    if (w->done) w->done(b, w->arg, e);
    free(w);
}

/* Records are copied by the store before this returns. */
static void commit_change(broker *b, const mrecord *recs, int n, int16_t conflict_error, broker_change_fn done,
                          void *arg) {
    change_wait *w = malloc(sizeof *w);
    if (!w) {
        if (done) done(b, arg, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    *w = (change_wait){done, arg, conflict_error};
    mstore_commit(b->store, recs, n, 0, change_committed, w);
}

static void fill_partition_record(PartitionRecord *pr, const kuuid *topic_id, int32_t index, int32_t *replicas,
                                  int16_t rf) {
    PartitionRecord_init(pr);
    pr->partition_id = index;
    pr->topic_id = *topic_id;
    pr->replicas = replicas;
    pr->replicas_count = rf;
    pr->isr = replicas;
    pr->isr_count = rf;
    pr->leader = replicas[0];
    pr->leader_epoch = 0;
    pr->partition_epoch = 0;
}

/* Seeded once from the OS, as Kafka's controller uses one java.util.Random. */
static uint32_t placement_random(void *ctx, uint32_t bound) {
    static uint64_t state;
    static bool seeded;
    (void)ctx;
    if (!seeded) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state) state = (uint64_t)monotonic_ms();
        seeded = true;
    }
    return placement_rand_splitmix(&state, bound);
}

/* Kafka's striped, rack-aware placement over the registered brokers:
 * nparts partitions from `first`, rf replicas each, into *out (arena). */
static int16_t place_partitions(broker *b, int32_t first, int32_t nparts, int16_t rf, int32_t **out,
                                const char **errmsg, karena *a) {
    const mimage *img = b->image;
    placement_broker *pb = karena_calloc(a, (size_t)(img->nbrokers ? img->nbrokers : 1), sizeof *pb);
    int32_t *res = karena_calloc(a, (size_t)nparts * (size_t)(rf > 0 ? rf : 1), sizeof(int32_t));
    char *msg = karena_alloc(a, 512);
    if (!pb || !res || !msg) {
        *errmsg = "out of memory";
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int i = 0; i < img->nbrokers; i++)
        pb[i] = (placement_broker){img->brokers[i].id, img->brokers[i].rack, img->brokers[i].fenced};
    int16_t e = placement_place(pb, img->nbrokers, first, nparts, rf, placement_random, NULL, res, msg, 512);
    if (e == KERR_INVALID_REPLICATION_FACTOR) {
        /* ReplicationControlManager wraps the placer's message */
        *errmsg = karena_sprintf(a, "Unable to replicate the partition %d time(s): %s", rf, msg);
        return e;
    }
    if (e) {
        *errmsg = msg;
        return e;
    }
    *out = res;
    return KERR_NONE;
}

/* ReplicationControlManager.createTopics up to the partition layout: the
 * name (Topic.validate, then collisions), existence, then the configs (all
 * null values named at once, then each value). */
int16_t broker_create_topic_precheck(broker *b, kstr name, const kstr *config_keys, const kstr *config_values,
                                     int nconfigs, const char **errmsg, karena *a) {
    *errmsg = NULL;
    if (broker_topic(b, name)) {
        *errmsg = karena_sprintf(a, "Topic '%.*s' already exists.", name.len, name.p);
        return KERR_TOPIC_ALREADY_EXISTS;
    }
    topic_rt *other = colliding_topic(b, name);
    if (other) {
        *errmsg = karena_sprintf(a, "Topic '%.*s' collides with existing topic: %s", name.len, name.p,
                                 other->name);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    const char *bad = topic_name_invalid(name, a);
    if (bad) {
        *errmsg = bad;
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    const char *nulls = NULL;
    for (int i = 0; i < nconfigs; i++) {
        if (config_values[i].len >= 0) continue;
        nulls = nulls ? karena_sprintf(a, "%s,%.*s", nulls, config_keys[i].len, config_keys[i].p)
                      : karena_sprintf(a, "%.*s", config_keys[i].len, config_keys[i].p);
    }
    if (nulls) {
        *errmsg = karena_sprintf(a, "Null value not supported for topic configs: %s", nulls);
        return KERR_INVALID_CONFIG;
    }
    for (int i = 0; i < nconfigs; i++) {
        char *k = kstr_dup(config_keys[i], a);
        char *v = kstr_dup(config_values[i], a);
        char err[512];
        int16_t ec = topic_config_validate(k, v, err, sizeof err);
        if (ec) {
            *errmsg = karena_strndup(a, err, strlen(err));
            return ec;
        }
    }
    return KERR_NONE;
}

int16_t broker_create_topic(broker *b, kstr name, int32_t partitions, int16_t replication_factor,
                            const int32_t *assignment, const kstr *config_keys, const kstr *config_values,
                            int nconfigs, bool validate_only, const char **errmsg, karena *a,
                            broker_change_fn done, void *arg) {
    int16_t pec = broker_create_topic_precheck(b, name, config_keys, config_values, nconfigs, errmsg, a);
    if (pec != KERR_NONE) return pec;
    /* ReplicationControlManager.createTopic: the replication factor first */
    if (replication_factor < -1 || replication_factor == 0) {
        *errmsg = "Replication factor must be larger than 0, or -1 to use the default value.";
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (partitions < -1 || partitions == 0) {
        *errmsg = "Number of partitions was set to an invalid non-positive value.";
        return KERR_INVALID_PARTITIONS;
    }
    if (partitions == -1) partitions = b->cfg.num_partitions;
    if (replication_factor == -1) replication_factor = b->cfg.default_replication_factor;
    int32_t *replicas = NULL;
    if (!assignment) {
        if ((int64_t)1 + partitions > MAX_RECORDS_PER_USER_OP) {
            *errmsg = "Unable to perform excessively large batch operation.";
            return KERR_POLICY_VIOLATION;
        }
        int16_t pe = place_partitions(b, 0, partitions, replication_factor, &replicas, errmsg, a);
        if (pe) return pe;
    } else {
        replicas = (int32_t *)assignment;
    }
    /* Kafka's controller refuses an operation of more than 10000 records
     * (even validate-only), and a hostile count must not size allocations */
    if ((int64_t)1 + partitions + nconfigs > MAX_RECORDS_PER_USER_OP) {
        *errmsg = "Unable to perform excessively large batch operation.";
        return KERR_POLICY_VIOLATION;
    }
    if (validate_only) return KERR_NONE;

    int nrec = 1 + partitions + nconfigs;
    mrecord *recs = karena_calloc(a, (size_t)nrec, sizeof *recs);
    TopicRecord *tr = karena_alloc(a, sizeof *tr);
    PartitionRecord *prs = karena_calloc(a, (size_t)partitions, sizeof *prs);
    ConfigRecord *crs = karena_calloc(a, (size_t)(nconfigs ? nconfigs : 1), sizeof *crs);
    if (!recs || !tr || !prs || !crs) {
        *errmsg = "out of memory";
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    TopicRecord_init(tr);
    tr->name = name;
    random_topic_id(&tr->topic_id);
    int k = 0;
    recs[k++] = (mrecord){KMETA_TOPIC_RECORD, 0, tr};
    for (int i = 0; i < partitions; i++) {
        fill_partition_record(&prs[i], &tr->topic_id, i, &replicas[(size_t)i * (size_t)replication_factor],
                              replication_factor);
        recs[k++] = (mrecord){KMETA_PARTITION_RECORD, 0, &prs[i]};
    }
    for (int i = 0; i < nconfigs; i++) {
        ConfigRecord_init(&crs[i]);
        crs[i].resource_type = MRES_TOPIC;
        crs[i].resource_name = name;
        crs[i].name = config_keys[i];
        crs[i].value = config_values[i];
        recs[k++] = (mrecord){KMETA_CONFIG_RECORD, 0, &crs[i]};
    }
    char idstr[23];
    kafka_uuid_to_string(tr->topic_id.b, idstr);
    log_info("kafka.controller.ReplicationControlManager", "Created topic %.*s with topic ID %s.", name.len,
             name.p, idstr);
    commit_change(b, recs, k, KERR_TOPIC_ALREADY_EXISTS, done, arg);
    return KERR_NONE;
}

int16_t broker_delete_topic(broker *b, topic_rt *t, broker_change_fn done, void *arg) {
    RemoveTopicRecord r;
    RemoveTopicRecord_init(&r);
    r.topic_id = t->id;
    mrecord rec = {KMETA_REMOVE_TOPIC_RECORD, 0, &r};
    log_info("kafka.controller.ReplicationControlManager", "Removing topic %s.", t->name);
    commit_change(b, &rec, 1, KERR_UNKNOWN_TOPIC_OR_PARTITION, done, arg);
    return KERR_NONE;
}

int16_t broker_add_partitions(broker *b, topic_rt *t, int32_t total, const int32_t *assignment,
                              bool validate_only, const char **errmsg, karena *a, broker_change_fn done,
                              void *arg) {
    /* ReplicationControlManager.createPartitions */
    if (total == t->nparts) {
        *errmsg = karena_sprintf(a, "Topic already has %d partition(s).", t->nparts);
        return KERR_INVALID_PARTITIONS;
    }
    if (total < t->nparts) {
        *errmsg = karena_sprintf(a, "The topic %s currently has %d partition(s); %d would not be an increase.",
                                 t->name, t->nparts, total);
        return KERR_INVALID_PARTITIONS;
    }
    if ((int64_t)total - t->nparts > MAX_RECORDS_PER_USER_OP) {
        *errmsg = "Unable to perform excessively large batch operation.";
        return KERR_POLICY_VIOLATION;
    }
    int n = total - t->nparts;
    /* new partitions get the replication factor of partition 0, as Kafka */
    const mpartition *p0 = broker_mpartition(b, t, 0);
    int16_t rf = p0 && p0->nreplicas > 0 ? (int16_t)p0->nreplicas : 1;
    int32_t *replicas = (int32_t *)assignment;
    if (!replicas) {
        int16_t pe = place_partitions(b, t->nparts, n, rf, &replicas, errmsg, a);
        if (pe) return pe;
    }
    if (validate_only) return KERR_NONE;
    mrecord *recs = karena_calloc(a, (size_t)n, sizeof *recs);
    PartitionRecord *prs = karena_calloc(a, (size_t)n, sizeof *prs);
    if (!recs || !prs) return KERR_UNKNOWN_SERVER_ERROR;
    for (int i = 0; i < n; i++) {
        fill_partition_record(&prs[i], &t->id, t->nparts + i, &replicas[(size_t)i * (size_t)rf], rf);
        recs[i] = (mrecord){KMETA_PARTITION_RECORD, 0, &prs[i]};
    }
    commit_change(b, recs, n, KERR_INVALID_PARTITIONS, done, arg);
    return KERR_NONE;
}

void broker_alter_configs(broker *b, int8_t resource_type, const char *resource_name,
                          const char *const *keys, const char *const *values, int n, broker_change_fn done,
                          void *arg) {
    mrecord *recs = calloc((size_t)(n > 0 ? n : 1), sizeof *recs);
    ConfigRecord *crs = calloc((size_t)(n > 0 ? n : 1), sizeof *crs);
    if (!recs || !crs) {
        free(recs);
        free(crs);
        if (done) done(b, arg, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    for (int i = 0; i < n; i++) {
        ConfigRecord_init(&crs[i]);
        crs[i].resource_type = resource_type;
        crs[i].resource_name = kstr_from(resource_name);
        crs[i].name = kstr_from(keys[i]);
        crs[i].value = values[i] ? kstr_from(values[i]) : KSTR_NULL;
        recs[i] = (mrecord){KMETA_CONFIG_RECORD, 0, &crs[i]};
    }
    commit_change(b, recs, n, KERR_UNKNOWN_SERVER_ERROR, done, arg);
    free(recs);
    free(crs);
}
