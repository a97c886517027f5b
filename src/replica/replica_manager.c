/* replica_manager.c - leaders, followers, fetchers and acks=all waiters
 * (see replica_manager.h). Kafka 3.6.1: ReplicaManager, Partition,
 * ReplicaFetcherThread / AbstractFetcherThread, DelayedProduce. */
#include "replica/replica_manager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/partition_txn.h"
#include "broker/producer_state.h"
#include "broker/topics.h"
#include "mstore/mstore.h"
#include "net/kafka_client.h"
#include "net/server.h"
#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "storage/write_pool.h"
#include "util/array.h"
#include "util/log.h"
#include "util/props.h"

#define COMPONENT "kafka.server.ReplicaManager"
#define FETCHER_COMPONENT "kafka.server.ReplicaFetcherThread"
#define TICK_MS 250

/* One acks=all completion waiting for a partition's high watermark. */
typedef struct rm_waiter {
    partition *p;
    int64_t required;
    broker_replicated_fn cb;
    void *arg;
    loop_timer_id timer;
    struct rm_waiter *next;
} rm_waiter;

/* The fetcher of one source broker: one connection, one Fetch in flight
 * carrying every partition this node follows there. */
typedef struct rm_fetcher {
    int32_t leader_id;
    kc_conn *conn;
    char host[256];
    int port;
    bool inflight;
    bool failing;            /* the last fetch failed (log once per failure run) */
    loop_timer_id retry;     /* a fetch is scheduled */
    partition **parts;
    int nparts, cap;
} rm_fetcher;

/* A replication quota (Kafka's ReplicationQuotaManager): bytes of throttled
 * replicas over a window of QUOTA_SAMPLES one-second samples, compared with
 * {leader,follower}.replication.throttled.rate. */
#define QUOTA_SAMPLES 11
typedef struct repl_quota {
    const char *rate_key;
    int64_t bytes[QUOTA_SAMPLES];
    int64_t second[QUOTA_SAMPLES]; /* which second each sample counts */
} repl_quota;

static struct {
    broker *b;
    repl_quota leader_quota, follower_quota;
    rm_fetcher **fetchers;
    int nfetchers;
    loop_timer_id tick;
    struct alter_ctx *retries; /* ISR changes waiting to be sent again */
    struct alter_ctx *inflight; /* ISR changes the store has not answered (freed at shutdown: a
                                   closed store answers nothing) */
    /* replica.* settings */
    int64_t lag_max_ms, fetch_max_bytes, fetch_wait_max_ms, fetch_min_bytes, fetch_response_max_bytes,
        fetch_backoff_ms, socket_timeout_ms, hw_checkpoint_interval_ms;
} rm;

static int64_t cfg_i64(broker *b, const char *key) {
    const char *v = props_get(&b->cfg.raw, key);
    if (!v) {
        const config_def *d = broker_config_def(key);
        v = d ? config_def_default(d) : NULL;
    }
    return v ? strtoll(v, NULL, 10) : 0;
}

static int64_t local_broker_epoch(broker *b) {
    const mbroker *br = mimage_broker(b->image, b->cfg.node_id);
    return br ? br->epoch : -1;
}

/* ---- replication throttles ---- */

/* A broker setting: this node's dynamic value, the cluster default, the file. */
static int64_t broker_setting(broker *b, const char *key, int64_t dflt) {
    const char *v = mconfig_get(&b->image->broker_configs, key);
    if (!v) v = mconfig_get(&b->image->default_broker_configs, key);
    if (!v) v = props_get(&b->cfg.raw, key);
    if (!v || !*v) return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end ? dflt : x;
}

/* ConfigHandler.parseThrottledPartitions: "*" or "partition:broker,..." in
 * the topic's {leader,follower}.replication.throttled.replicas. */
static bool replica_throttled(const partition *p, const char *key, int32_t broker_id) {
    const mtopic *mt = p->topic->meta;
    const char *v = mt ? mconfig_get(&mt->configs, key) : NULL;
    if (!v) return false;
    while (*v == ' ') v++;
    if (strcmp(v, "*") == 0) return true;
    while (*v) {
        char *end;
        long part = strtol(v, &end, 10);
        if (*end != ':') return false;
        long id = strtol(end + 1, &end, 10);
        if (part == p->index && id == broker_id) return true;
        v = end;
        while (*v == ',' || *v == ' ') v++;
    }
    return false;
}

static void quota_record(repl_quota *q, int64_t bytes) {
    int64_t sec = monotonic_ms() / 1000;
    int i = (int)(sec % QUOTA_SAMPLES);
    if (q->second[i] != sec) {
        q->second[i] = sec;
        q->bytes[i] = 0;
    }
    q->bytes[i] += bytes;
}

/* Rate.measure over the samples still in the window, against the bound. */
static bool quota_exceeded(broker *b, repl_quota *q) {
    int64_t bound = broker_setting(b, q->rate_key, INT64_MAX);
    if (bound == INT64_MAX) return false;
    int64_t sec = monotonic_ms() / 1000, total = 0, oldest = sec;
    for (int i = 0; i < QUOTA_SAMPLES; i++)
        if (q->second[i] > sec - QUOTA_SAMPLES && q->bytes[i] > 0) {
            total += q->bytes[i];
            if (q->second[i] < oldest) oldest = q->second[i];
        }
    int64_t elapsed_ms = (sec - oldest) * 1000 + monotonic_ms() % 1000;
    if (elapsed_ms < 1000) elapsed_ms = 1000;
    return total * 1000 / elapsed_ms > bound;
}

bool rm_leader_throttled(broker *b, partition *p, int32_t replica_id) {
    /* ReplicaManager.shouldLeaderThrottle: not for replicas in the ISR */
    return !pr_in_isr(&p->repl, replica_id) && replica_throttled(p, "leader.replication.throttled.replicas",
                                                                  b->cfg.node_id) &&
           quota_exceeded(b, &rm.leader_quota);
}

void rm_leader_sent(broker *b, partition *p, int32_t replica_id, int64_t bytes) {
    if (bytes > 0 && !pr_in_isr(&p->repl, replica_id) &&
        replica_throttled(p, "leader.replication.throttled.replicas", b->cfg.node_id))
        quota_record(&rm.leader_quota, bytes);
}

/* ReplicaFetcherThread.shouldFollowerThrottle: a follower out of the ISR
 * whose partition is throttled here waits while the quota is used up. */
static bool follower_throttled(broker *b, partition *p) {
    const mpartition *mp = broker_mpartition(b, p->topic, p->index);
    bool in_sync = false;
    for (int i = 0; mp && i < mp->nisr; i++)
        if (mp->isr[i] == b->cfg.node_id) in_sync = true;
    return !in_sync && replica_throttled(p, "follower.replication.throttled.replicas", b->cfg.node_id);
}

/* ---- high watermark and waiters ---- */

static void fire(broker *b, rm_waiter *w, int16_t err) {
    if (w->timer) loop_timer_cancel(b->loop, w->timer);
    broker_replicated_fn cb = w->cb;
    void *arg = w->arg;
    free(w);
    cb(b, arg, err);
}

/* DelayedProduce.tryComplete for every waiter of p: those whose offset the
 * HW passed, or that can no longer complete here, are answered. */
static void complete_waiters(broker *b, partition *p) {
    rm_waiter *ready = NULL, **tail = &ready;
    for (rm_waiter **pp = &p->waiters; *pp;) {
        rm_waiter *w = *pp;
        bool done = false;
        int16_t err = KERR_NOT_LEADER_OR_FOLLOWER;
        if (p->is_leader && !b->fenced) err = (int16_t)pr_check_enough_replicas(&p->repl, w->required, &done);
        if (done || err != KERR_NONE) {
            *pp = w->next;
            w->next = NULL;
            w->required = err; /* carried to the callback below */
            *tail = w;
            tail = &w->next;
            continue;
        }
        pp = &w->next;
    }
    while (ready) {
        rm_waiter *w = ready;
        ready = w->next;
        fire(b, w, (int16_t)w->required);
    }
}

static void fail_waiters(broker *b, partition *p, int16_t err) {
    while (p->waiters) {
        rm_waiter *w = p->waiters;
        p->waiters = w->next;
        fire(b, w, err);
    }
}

/* The partition's HW as partition_repl computed it becomes visible. */
static void publish_hw(broker *b, partition *p) {
    if (p->high_watermark != p->repl.hw) {
        p->high_watermark = p->repl.hw;
        plog_set_high_watermark(p->log, p->high_watermark);
        part_txn_hw_moved(p); /* the last stable offset follows */
        broker_partition_appended(b, p); /* consumers read up to the HW */
    }
    if (p->waiters) complete_waiters(b, p);
}

static void waiter_expired(kloop *l, void *arg) {
    (void)l;
    rm_waiter *w = arg;
    partition *p = w->p;
    w->timer = 0;
    for (rm_waiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    fire(rm.b, w, KERR_REQUEST_TIMED_OUT);
}

void broker_await_replication(broker *b, partition *p, int64_t required_offset, int32_t timeout_ms,
                              broker_replicated_fn cb, void *arg) {
    bool done = false;
    int16_t err = KERR_NOT_LEADER_OR_FOLLOWER;
    if (p->is_leader && !b->fenced) err = (int16_t)pr_check_enough_replicas(&p->repl, required_offset, &done);
    if (done || err != KERR_NONE) {
        cb(b, arg, err);
        return;
    }
    rm_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        cb(b, arg, KERR_REQUEST_TIMED_OUT);
        return;
    }
    w->p = p;
    w->required = required_offset;
    w->cb = cb;
    w->arg = arg;
    w->next = p->waiters;
    p->waiters = w;
    w->timer = loop_timer_add(b->loop, timeout_ms > 0 ? timeout_ms : 0, waiter_expired, w);
}

/* ---- ISR changes (AlterPartition as a compare-and-set in the store) ---- */

typedef struct alter_ctx {
    kuuid topic_id;
    int32_t partition;
    uint64_t seq;
    int32_t leader_epoch;
    loop_timer_id retry;      /* while waiting to be sent again */
    struct alter_ctx *next;   /* in rm.retries or rm.inflight */
} alter_ctx;

static void unlink_ctx(alter_ctx **head, alter_ctx *c) {
    for (alter_ctx **pp = head; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static partition *find_partition(broker *b, const kuuid *topic_id, int32_t index) {
    topic_rt *t = broker_topic_by_id(b, topic_id);
    if (!t || index < 0 || index >= t->nparts) return NULL;
    return t->parts[index];
}

static void propose_isr(broker *b, partition *p, const pr_alter *a, const char *what);

static void alter_retry(kloop *l, void *arg) {
    (void)l;
    alter_ctx *c = arg;
    broker *b = rm.b;
    unlink_ctx(&rm.retries, c);
    partition *p = b->topics ? find_partition(b, &c->topic_id, c->partition) : NULL;
    /* Still the same proposal in flight, on the same partition state: send
     * it again (the metadata that arrived meanwhile reset it otherwise). */
    if (p && p->is_leader && p->repl.state != PR_COMMITTED && p->repl.pending.seq == c->seq)
        propose_isr(b, p, &p->repl.pending, "Retrying to change");
    free(c);
}

static void alter_done(broker *b, void *arg, mstore_status st) {
    alter_ctx *c = arg;
    unlink_ctx(&rm.inflight, c);
    partition *p = b->topics ? find_partition(b, &c->topic_id, c->partition) : NULL;
    if (p && st != MSTORE_OK && p->repl.state != PR_COMMITTED && p->repl.pending.seq == c->seq) {
        /* Not applied by this transaction: the topic's key moved (perhaps
         * for another partition), or the store did not answer (then it may
         * yet have been applied). Never fall back to the committed ISR here:
         * a change that did apply would leave a HW computed without its new
         * member. Keep the proposal pending and send it again once the watch
         * had time to deliver what moved; new metadata for this partition
         * replaces it anyway. */
        log_info(COMPONENT, "[Partition %s-%d broker=%d] ISR change not applied (%s); retrying", p->topic->name,
                 p->index, b->cfg.node_id, st == MSTORE_CONFLICT ? "the topic changed meanwhile" : "store unavailable");
        /* a conflict: another change to the topic (often another leader's ISR
         * change) is a few ms from being applied here; retry soon, jittered so
         * two leaders do not collide again */
        int64_t delay = st == MSTORE_CONFLICT ? 20 + (int64_t)(monotonic_ms() % 31) : rm.fetch_backoff_ms;
        c->retry = loop_timer_add(b->loop, delay, alter_retry, c);
        if (c->retry) {
            c->next = rm.retries;
            rm.retries = c;
            return;
        }
    }
    free(c);
}

static void fmt_ids(char *out, size_t cap, const int32_t *v, int n) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len + 12 < cap; i++) len += (size_t)snprintf(out + len, cap - len, i ? ",%d" : "%d", v[i]);
}

static void propose_isr(broker *b, partition *p, const pr_alter *a, const char *what) {
    const mpartition *mp = broker_mpartition(b, p->topic, p->index);
    if (!mp || mp->leader != b->cfg.node_id || mp->leader_epoch != a->leader_epoch ||
        mp->partition_epoch != a->partition_epoch)
        return; /* the image moved on: rm_partition_follow replaces the proposal */
    char from[128], to[128];
    fmt_ids(from, sizeof from, mp->isr, mp->nisr);
    fmt_ids(to, sizeof to, a->isr, a->nisr);
    log_info("kafka.cluster.Partition", "[Partition %s-%d broker=%d] %s ISR from %s to %s. Leader: (highWatermark: %lld, "
             "endOffset: %lld).", p->topic->name, p->index, b->cfg.node_id, what, from, to,
             (long long)p->repl.hw, (long long)p->repl.leo);
    alter_ctx *c = malloc(sizeof *c);
    if (!c) return; /* stays pending; the next metadata change replaces it */
    *c = (alter_ctx){p->topic->id, p->index, a->seq, a->leader_epoch, 0, NULL};
    PartitionChangeRecord r;
    PartitionChangeRecord_init(&r);
    r.topic_id = p->topic->id;
    r.partition_id = p->index;
    r.isr = (int32_t *)a->isr;
    r.isr_count = a->nisr;
    mrecord rec = {KMETA_PARTITION_CHANGE_RECORD, 0, &r};
    c->next = rm.inflight;
    rm.inflight = c;
    mstore_commit(b->store, &rec, 1, 0, alter_done, c);
}

/* ---- leader side ---- */

void rm_leader_appended(broker *b, partition *p) {
    if (pr_leader_appended(&p->repl, plog_end_offset(p->log), monotonic_ms())) publish_hw(b, p);
    else if (p->waiters) complete_waiters(b, p);
}

int16_t rm_follower_fetched(broker *b, partition *p, int32_t replica_id, int64_t replica_epoch, int64_t fetch_offset,
                            int64_t log_start_offset) {
    pr_alter a;
    pr_fetch_result r = pr_follower_fetched(&p->repl, replica_id, fetch_offset, log_start_offset, replica_epoch,
                                            monotonic_ms(), &a);
    if (r.error != KERR_NONE) return (int16_t)r.error;
    if (r.hw_advanced) publish_hw(b, p);
    if (r.propose) propose_isr(b, p, &a, "Expanding");
    return KERR_NONE;
}

int64_t rm_replica_leo(const partition *p, int32_t replica_id) {
    if (replica_id == p->repl.local_id) return p->repl.leo;
    for (int i = 0; i < p->repl.nremote; i++)
        if (p->repl.r[i].id == replica_id) return p->repl.r[i].leo;
    return -1;
}

/* ---- follower side: fetchers ---- */

static void fetcher_schedule(rm_fetcher *f, int64_t delay_ms);

static rm_fetcher *fetcher_of(int32_t leader_id, bool create) {
    for (int i = 0; i < rm.nfetchers; i++)
        if (rm.fetchers[i]->leader_id == leader_id) return rm.fetchers[i];
    if (!create) return NULL;
    rm_fetcher **nv = realloc(rm.fetchers, sizeof(*nv) * (size_t)(rm.nfetchers + 1));
    if (!nv) return NULL;
    rm.fetchers = nv;
    rm_fetcher *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->leader_id = leader_id;
    rm.fetchers[rm.nfetchers++] = f;
    return f;
}

static void fetcher_remove(partition *p) {
    if (p->fetch_from < 0) return;
    rm_fetcher *f = fetcher_of(p->fetch_from, false);
    p->fetch_from = -1;
    p->fetch_busy = false;
    if (!f) return;
    for (int i = 0; i < f->nparts; i++)
        if (f->parts[i] == p) {
            f->parts[i] = f->parts[--f->nparts];
            break;
        }
}

static void fetcher_add(partition *p, int32_t leader_id) {
    if (p->fetch_from == leader_id) return;
    fetcher_remove(p);
    rm_fetcher *f = fetcher_of(leader_id, true);
    if (!f) return;
    if (f->nparts == f->cap) {
        int nc = f->cap ? f->cap * 2 : 16;
        partition **nv = realloc(f->parts, sizeof(*nv) * (size_t)nc);
        if (!nv) return;
        f->parts = nv;
        f->cap = nc;
    }
    f->parts[f->nparts++] = p;
    p->fetch_from = leader_id;
    p->fetch_retry_ms = 0;
    p->fetch_errors = 0;
    p->fetch_busy = false;
    fetcher_schedule(f, 0);
}

/* Kafka's truncateAndReload: snapshots past the new end are dropped, the
 * state reloaded from the latest one left and the log after it */
static void rebuild_producer_state(partition *p) { part_txn_load(p); }

/* The local log was cut to offset: LEO, HW and producer state follow. */
static int truncate_log(broker *b, partition *p, int64_t offset, const char *why) {
    int64_t leo = plog_end_offset(p->log);
    log_info("kafka.log.UnifiedLog", "[UnifiedLog partition=%s-%d] Truncating to offset %lld (log end offset %lld): %s",
             p->topic->name, p->index, (long long)offset, (long long)leo, why);
    if (plog_truncate_to(p->log, offset) != 0) {
        log_error(COMPONENT, "Truncating %s-%d to %lld failed: %s", p->topic->name, p->index, (long long)offset,
                  strerror(errno));
        return -1;
    }
    pr_set_local_log(&p->repl, plog_end_offset(p->log));
    if (offset < leo) rebuild_producer_state(p);
    publish_hw(b, p);
    return 0;
}

/* AbstractFetcherThread.getOffsetTruncationState for a DivergingEpoch
 * answer (leader_epoch, leader_end): truncate by epoch, never to the HW. */
static void truncate_diverging(broker *b, partition *p, int32_t leader_epoch, int64_t leader_end) {
    int64_t leo = plog_end_offset(p->log);
    int64_t target;
    if (leader_end < 0) {
        target = p->repl.hw;
    } else {
        int32_t fe = -1;
        int64_t fend = -1;
        plog_end_offset_for_epoch(p->log, leader_epoch, &fe, &fend);
        if (fe < 0 || fend < 0) target = leader_end < leo ? leader_end : leo;
        else if (fe == leader_epoch) {
            target = leader_end < fend ? leader_end : fend;
            if (leo < target) target = leo;
        } else {
            target = fend < leo ? fend : leo; /* not done: the next fetch carries our new latest epoch */
        }
    }
    char why[128];
    snprintf(why, sizeof why, "the leader's log diverges (epoch %d ends at %lld)", leader_epoch, (long long)leader_end);
    truncate_log(b, p, target, why);
}

/* What an append of a fetch answer's records came to: the quota, an error
 * logged with a retry later, the LEO the replication state knows. */
static void follower_appended(broker *b, partition *p, int rc, size_t used, const char *err) {
    int saved = errno;
    if (used > 0 && follower_throttled(b, p)) quota_record(&rm.follower_quota, (int64_t)used);
    if (rc == PLOG_UNEXPECTED_APPEND_OFFSET) {
        /* an answer to an older fetch offset: the next fetch asks again */
    } else if (rc != 0) {
        log_error(FETCHER_COMPONENT, "[ReplicaFetcher replicaId=%d, leaderId=%d] Error appending to %s-%d: %s",
                  b->cfg.node_id, p->fetch_from, p->topic->name, p->index, rc < 0 ? strerror(saved) : err);
        p->fetch_retry_ms = monotonic_ms() + rm.fetch_backoff_ms;
    }
    pr_set_local_log(&p->repl, plog_end_offset(p->log));
}

/* ReplicaFetcherThread.processPartitionData. done: the bytes of the records
 * already appended, or given up on, with the others of the answer
 * (follower_appends_run); the rest are appended here. */
static void follower_append(broker *b, partition *p, const FetchResponse_PartitionData *pd, size_t done) {
    size_t len = pd->records.p && pd->records.len > 0 ? (size_t)pd->records.len : 0;
    if (done < len) {
        size_t used = 0;
        int64_t last = -1;
        char err[256] = "";
        /* the producer state follows every batch appended (partition_txn.h) */
        int rc = part_txn_append_as_follower(p, pd->records.p + done, len - done, &last, &used, err, sizeof err);
        follower_appended(b, p, rc, used, err);
    }
    pr_follower_update_hw(&p->repl, pd->high_watermark);
    /* UnifiedLog.maybeIncrementLogStartOffset: follow the leader's log start */
    if (pd->log_start_offset > plog_start_offset(p->log) && pd->log_start_offset <= p->repl.hw &&
        plog_delete_records(p->log, pd->log_start_offset) == 0)
        part_txn_log_start_moved(p);
    publish_hw(b, p);
}

/* ---- the appends of one fetch answer, written at once ----
 *
 * As a produce request's partitions (broker/h_produce.c), the partitions
 * of a fetch answer are appended in three steps when the broker has a
 * write pool: each begun on the loop (checks, roll), their data writes run
 * together on the pool, then each ended on the loop. Nothing else runs on
 * the loop in between; the rest of each partition's handling (high
 * watermark, log start, waiting requests) comes after, in answer order. */

typedef struct follower_write {
    partition *p;
    int k;          /* its place in the answer */
    size_t records; /* the bytes of its records in the answer */
    plog_write w;
} follower_write;

static struct {
    follower_write *v;
    plog_write **writes;
    size_t *done; /* per partition of the answer, in answer order: the bytes follower_append skips */
    int v_cap, writes_cap, done_cap;
} fa; /* arrays kept for the next answer */

/* Would handle_partition append this partition's records? */
static bool follower_appends_here(rm_fetcher *f, const partition *p, const FetchResponse_PartitionData *pd) {
    return p && !p->is_leader && p->fetch_from == f->leader_id && !p->fetch_busy && pd->error_code == KERR_NONE &&
           pd->diverging_epoch.epoch < 0 && pd->diverging_epoch.end_offset < 0 && pd->records.len > 0 &&
           pd->records.p;
}

static partition *answer_partition(broker *b, const FetchResponse_FetchableTopicResponse *tr,
                                   const FetchResponse_PartitionData *pd, int16_t version) {
    topic_rt *t = version >= 13 ? broker_topic_by_id(b, &tr->topic_id) : broker_topic(b, tr->topic);
    if (!t || pd->partition_index < 0 || pd->partition_index >= t->nparts) return NULL;
    return t->parts[pd->partition_index];
}

/* Appends the records of every partition of the answer, each up to its
 * first roll inside them, and sets fa.done (n entries): what
 * follower_append then skips. False when there is no pool or no room: all
 * is left to follower_append. */
static bool follower_appends_run(broker *b, rm_fetcher *f, const FetchResponse *r, int16_t version, int n) {
    if (!b->appends || n < 2) return false;
    if (array_reserve((void **)&fa.done, &fa.done_cap, n, sizeof *fa.done) != 0 ||
        array_reserve((void **)&fa.v, &fa.v_cap, n, sizeof *fa.v) != 0 ||
        array_reserve((void **)&fa.writes, &fa.writes_cap, n, sizeof *fa.writes) != 0)
        return false;
    int k = 0, begun = 0;
    for (int i = 0; i < r->responses_count; i++) {
        const FetchResponse_FetchableTopicResponse *tr = &r->responses[i];
        for (int j = 0; j < tr->partitions_count; j++, k++) {
            const FetchResponse_PartitionData *pd = &tr->partitions[j];
            partition *p = answer_partition(b, tr, pd, version);
            fa.done[k] = 0;
            if (!follower_appends_here(f, p, pd) || plog_append_in_flight(p->log)) continue;
            follower_write *fw = &fa.v[begun];
            char err[256] = "";
            int rc = part_txn_append_as_follower_begin(p, pd->records.p, (size_t)pd->records.len, &fw->w, err,
                                                       sizeof err);
            if (rc == 0 && fw->w.len == 0) continue; /* not begun: follower_append appends it all */
            if (rc != 0) { /* refused, nothing written */
                fa.done[k] = (size_t)pd->records.len;
                follower_appended(b, p, rc, 0, err);
                continue;
            }
            fw->p = p;
            fw->k = k;
            fw->records = (size_t)pd->records.len;
            fa.writes[begun++] = &fw->w;
        }
    }
    wpool_run(b->appends, fa.writes, begun, WPOOL_PARALLEL_MIN_BYTES);
    /* every append ends before any partition's waiting requests are answered */
    for (int i = 0; i < begun; i++) {
        follower_write *fw = &fa.v[i];
        size_t used = 0;
        int64_t last = -1;
        char err[256] = "";
        int rc = part_txn_append_as_follower_end(fw->p, &fw->w, &last, &used, err, sizeof err);
        follower_appended(b, fw->p, rc, used, err);
        /* the rest after a roll inside, unless this failed: the next fetch asks again */
        fa.done[fw->k] = rc == 0 ? fw->w.len : fw->records;
    }
    return true;
}

/* ---- out of range: ask the leader where its log is (ListOffsets) ---- */

typedef struct oor_ctx {
    kuuid topic_id;
    int32_t partition;
    int32_t leader_id;
    int64_t timestamp; /* -1 latest, -2 earliest */
} oor_ctx;

static void oor_send(rm_fetcher *f, partition *p, int64_t timestamp);

static void oor_answered(kc_status st, kc_resp *resp, void *arg) {
    oor_ctx *c = arg;
    broker *b = rm.b;
    partition *p = b->topics ? find_partition(b, &c->topic_id, c->partition) : NULL;
    if (p && p->fetch_from == c->leader_id) p->fetch_busy = false;
    rm_fetcher *f = p ? fetcher_of(c->leader_id, false) : NULL;
    if (st == KC_CANCELLED || !p || !f || p->fetch_from != c->leader_id) {
        free(c);
        return;
    }
    int64_t off = -1;
    int16_t err = kc_status_error_code(st);
    if (st == KC_OK) {
        ListOffsetsResponse r;
        if (kc_resp_decode(resp, &r) == 0 && r.topics_count == 1 && r.topics[0].partitions_count == 1) {
            err = r.topics[0].partitions[0].error_code;
            off = r.topics[0].partitions[0].offset;
        } else {
            err = KERR_UNKNOWN_SERVER_ERROR;
        }
    }
    int64_t ts = c->timestamp;
    free(c);
    if (err != KERR_NONE || off < 0) {
        p->fetch_retry_ms = monotonic_ms() + rm.fetch_backoff_ms;
        fetcher_schedule(f, rm.fetch_backoff_ms);
        return;
    }
    int64_t leo = plog_end_offset(p->log);
    if (ts == -1) {
        /* fetchOffsetAndTruncate: the leader's end is below ours: cut to it */
        if (off < leo) truncate_log(b, p, off, "the fetch offset is past the leader's log end");
        else {
            oor_send(f, p, -2);
            return;
        }
    } else if (off > leo) {
        log_info("kafka.log.UnifiedLog", "[UnifiedLog partition=%s-%d] Truncating fully and starting at the leader's "
                 "log start offset %lld", p->topic->name, p->index, (long long)off);
        if (plog_truncate_fully_and_start_at(p->log, off) == 0) {
            pr_set_local_log(&p->repl, plog_end_offset(p->log));
            rebuild_producer_state(p);
            publish_hw(b, p);
        }
    }
    fetcher_schedule(f, 0);
}

static void oor_send(rm_fetcher *f, partition *p, int64_t timestamp) {
    oor_ctx *c = malloc(sizeof *c);
    if (!c) return;
    *c = (oor_ctx){p->topic->id, p->index, f->leader_id, timestamp};
    ListOffsetsRequest r;
    ListOffsetsRequest_init(&r);
    ListOffsetsRequest_ListOffsetsTopic t;
    ListOffsetsRequest_ListOffsetsTopic_init(&t);
    ListOffsetsRequest_ListOffsetsPartition lp;
    ListOffsetsRequest_ListOffsetsPartition_init(&lp);
    lp.partition_index = p->index;
    lp.current_leader_epoch = p->repl.leader_epoch;
    lp.timestamp = timestamp;
    t.name = kstr_from(p->topic->name);
    t.partitions = &lp;
    t.partitions_count = 1;
    r.replica_id = rm.b->cfg.node_id;
    r.topics = &t;
    r.topics_count = 1;
    int16_t v = kc_pick_version(f->conn, KAPI_LIST_OFFSETS, 7);
    if (v < 1) v = 7;
    p->fetch_busy = true;
    if (kc_send_msg(f->conn, KAPI_LIST_OFFSETS, v, &r, (int)rm.socket_timeout_ms, oor_answered, c) != 0) {
        p->fetch_busy = false;
        p->fetch_retry_ms = monotonic_ms() + rm.fetch_backoff_ms;
        free(c);
    }
}

/* ---- the fetch round ---- */

static void fetch_answered(kc_status st, kc_resp *resp, void *arg);

static void fetcher_backoff_all(rm_fetcher *f) {
    int64_t at = monotonic_ms() + rm.fetch_backoff_ms;
    for (int i = 0; i < f->nparts; i++)
        if (f->parts[i]->fetch_retry_ms < at) f->parts[i]->fetch_retry_ms = at;
}

static void fetcher_send(rm_fetcher *f) {
    broker *b = rm.b;
    if (f->inflight || f->nparts == 0) return;
    broker_node bn;
    if (!broker_peer_lookup(b, f->leader_id, &bn)) {
        /* the leader is not registered (yet): wait for metadata */
        fetcher_backoff_all(f);
        fetcher_schedule(f, rm.fetch_backoff_ms);
        return;
    }
    if (f->conn && (strcmp(f->host, bn.host) != 0 || f->port != bn.port)) {
        kc_conn_free(f->conn);
        f->conn = NULL;
    }
    if (!f->conn) {
        kc_config cfg;
        kc_config_defaults(&cfg);
        char cid[64];
        snprintf(cid, sizeof cid, "broker-%d-fetcher-0", b->cfg.node_id);
        cfg.client_id = cid;
        cfg.request_timeout_ms = (int)rm.socket_timeout_ms;
        cfg.max_in_flight = 2;
        cfg.receive_buffer_bytes = (int)cfg_i64(b, "replica.socket.receive.buffer.bytes");
        snprintf(f->host, sizeof f->host, "%s", bn.host);
        f->port = bn.port;
        f->conn = kc_conn_new(b->loop, f->host, f->port, &cfg);
        if (!f->conn) {
            fetcher_schedule(f, rm.fetch_backoff_ms);
            return;
        }
    }
    int64_t now = monotonic_ms();
    karena a;
    karena_init(&a, 0);
    FetchRequest r;
    FetchRequest_init(&r);
    r.replica_id = b->cfg.node_id;
    r.replica_state.replica_id = b->cfg.node_id;
    r.replica_state.replica_epoch = local_broker_epoch(b);
    r.max_wait_ms = (int32_t)rm.fetch_wait_max_ms;
    r.min_bytes = (int32_t)rm.fetch_min_bytes;
    r.max_bytes = (int32_t)rm.fetch_response_max_bytes;
    r.isolation_level = 0;
    r.session_id = 0;
    r.session_epoch = -1; /* sessionless: every fetch names all partitions */
    r.topics = karena_calloc(&a, (size_t)f->nparts, sizeof *r.topics);
    FetchRequest_FetchPartition *fps = karena_calloc(&a, (size_t)f->nparts, sizeof *fps);
    int64_t next_retry = INT64_MAX;
    r.topics_count = 0;
    int nsent = 0;
    partition **ready = karena_calloc(&a, (size_t)f->nparts, sizeof *ready);
    int nready = 0;
    bool over_quota = quota_exceeded(b, &rm.follower_quota);
    for (int i = 0; ready && i < f->nparts; i++) {
        partition *p = f->parts[i];
        if (p->fetch_busy) continue;
        if (over_quota && follower_throttled(b, p)) {
            if (now + 100 < next_retry) next_retry = now + 100;
            continue;
        }
        if (p->fetch_retry_ms > now) {
            if (p->fetch_retry_ms < next_retry) next_retry = p->fetch_retry_ms;
            continue;
        }
        ready[nready++] = p;
    }
    /* one entry per topic, its partitions contiguous in fps */
    for (int i = 0; r.topics && fps && i < nready; i++) {
        if (!ready[i]) continue;
        topic_rt *t = ready[i]->topic;
        FetchRequest_FetchTopic *ft = &r.topics[r.topics_count++];
        FetchRequest_FetchTopic_init(ft);
        ft->topic = kstr_from(t->name);
        ft->topic_id = t->id;
        ft->partitions = &fps[nsent];
        ft->partitions_count = 0;
        for (int j = i; j < nready; j++) {
            partition *p = ready[j];
            if (!p || p->topic != t) continue;
            ready[j] = NULL;
            FetchRequest_FetchPartition *slot = &fps[nsent++];
            FetchRequest_FetchPartition_init(slot);
            slot->partition = p->index;
            slot->current_leader_epoch = p->repl.leader_epoch;
            slot->fetch_offset = plog_end_offset(p->log);
            slot->last_fetched_epoch = plog_latest_epoch(p->log);
            slot->log_start_offset = plog_start_offset(p->log);
            slot->partition_max_bytes = (int32_t)rm.fetch_max_bytes;
            ft->partitions_count++;
        }
    }
    if (nsent == 0) {
        karena_free(&a);
        if (next_retry != INT64_MAX) fetcher_schedule(f, next_retry - now);
        return;
    }
    int16_t v = kc_pick_version(f->conn, KAPI_FETCH, 15);
    if (v < 0) v = 15; /* before the first ApiVersions: the one every Samsa node serves */
    f->inflight = true;
    if (kc_send_msg(f->conn, KAPI_FETCH, v, &r, (int)(rm.fetch_wait_max_ms + rm.socket_timeout_ms), fetch_answered,
                    f) != 0) {
        f->inflight = false;
        fetcher_backoff_all(f);
        fetcher_schedule(f, rm.fetch_backoff_ms);
    }
    karena_free(&a);
}

static void fetcher_timer(kloop *l, void *arg) {
    (void)l;
    rm_fetcher *f = arg;
    f->retry = 0;
    fetcher_send(f);
}

static void fetcher_schedule(rm_fetcher *f, int64_t delay_ms) {
    if (f->inflight) return; /* the answer sends the next fetch */
    if (f->retry) {
        if (delay_ms > 0) return; /* one is already due at or before then */
        loop_timer_cancel(rm.b->loop, f->retry);
    }
    f->retry = loop_timer_add(rm.b->loop, delay_ms > 0 ? delay_ms : 0, fetcher_timer, f);
}

static void handle_partition(broker *b, rm_fetcher *f, partition *p, const FetchResponse_PartitionData *pd,
                             size_t appended) {
    if (pd->error_code == KERR_NONE) p->fetch_errors = 0;
    switch (pd->error_code) {
    case KERR_NONE:
        if (pd->diverging_epoch.epoch >= 0 || pd->diverging_epoch.end_offset >= 0) {
            truncate_diverging(b, p, pd->diverging_epoch.epoch, pd->diverging_epoch.end_offset);
            return;
        }
        follower_append(b, p, pd, appended);
        return;
    case KERR_OFFSET_OUT_OF_RANGE:
        oor_send(f, p, -1);
        return;
    default: {
        /* Not (yet) leader there, an epoch we do not agree on, an unknown
         * partition: usually the leader has not applied the metadata that
         * made it leader, a few ms behind this node. Retry soon, then back
         * off up to replica.fetch.backoff.ms (a flat second after every
         * election delayed acks=all by that second). */
        int64_t delay = (int64_t)50 << (p->fetch_errors < 6 ? p->fetch_errors : 6);
        if (delay > rm.fetch_backoff_ms) delay = rm.fetch_backoff_ms;
        if (p->fetch_errors < 255) p->fetch_errors++;
        p->fetch_retry_ms = monotonic_ms() + delay;
        return;
    }
    }
}

static void fetch_answered(kc_status st, kc_resp *resp, void *arg) {
    rm_fetcher *f = arg;
    if (st == KC_CANCELLED) return; /* the fetcher is being freed */
    broker *b = rm.b;
    f->inflight = false;
    FetchResponse r;
    if (st != KC_OK || kc_resp_decode(resp, &r) != 0 || r.error_code != KERR_NONE) {
        if (!f->failing)
            log_warn(FETCHER_COMPONENT, "[ReplicaFetcher replicaId=%d, leaderId=%d, fetcherId=0] Error in response "
                     "for fetch request: %s", b->cfg.node_id, f->leader_id,
                     st != KC_OK ? kc_status_name(st) : kerr_name(r.error_code));
        f->failing = true;
        fetcher_backoff_all(f);
        fetcher_schedule(f, rm.fetch_backoff_ms);
        return;
    }
    f->failing = false;
    int n = 0;
    for (int i = 0; i < r.responses_count; i++)
        if (r.responses[i].partitions_count > 0) n += r.responses[i].partitions_count;
    /* Requests answered meanwhile (fetches waiting for a high watermark)
     * start no connection's next request before the whole answer is handled:
     * none may delete a partition still to come here. */
    net_server_hold(b->server);
    bool grouped = follower_appends_run(b, f, &r, resp->api_version, n);
    int k = 0;
    for (int i = 0; i < r.responses_count; i++) {
        const FetchResponse_FetchableTopicResponse *tr = &r.responses[i];
        for (int j = 0; j < tr->partitions_count; j++, k++) {
            const FetchResponse_PartitionData *pd = &tr->partitions[j];
            partition *p = answer_partition(b, tr, pd, resp->api_version);
            /* only for the role and leader this fetch was sent in */
            if (!p || p->is_leader || p->fetch_from != f->leader_id || p->fetch_busy) continue;
            handle_partition(b, f, p, pd, grouped ? fa.done[k] : 0);
        }
    }
    fetcher_schedule(f, 0);
    net_server_release(b->server); /* last: a request run here may stop this fetcher */
}

/* ---- roles ---- */

void rm_partition_opened(broker *b, partition *p, int64_t checkpoint_hw) {
    int64_t leo = plog_end_offset(p->log);
    int64_t hw = checkpoint_hw >= 0 ? checkpoint_hw : leo;
    const mpartition *mp = broker_mpartition(b, p->topic, p->index);
    if (checkpoint_hw < 0 && mp && mp->nreplicas > 1) hw = plog_start_offset(p->log); /* Kafka: no checkpoint, HW = log start */
    pr_init(&p->repl, b->cfg.node_id, local_broker_epoch(b), rm.lag_max_ms, p->topic->cfg.min_insync_replicas, leo,
            hw);
    p->high_watermark = p->repl.hw;
    plog_set_high_watermark(p->log, p->high_watermark);
    part_txn_hw_moved(p);
    p->fetch_from = -1;
    p->waiters = NULL;
}

static void meta_of(const mpartition *mp, pr_meta *m) {
    memset(m, 0, sizeof *m);
    m->leader = mp->leader;
    m->leader_epoch = mp->leader_epoch;
    m->partition_epoch = mp->partition_epoch;
    m->nreplicas = mp->nreplicas < PR_MAX_REPLICAS ? mp->nreplicas : PR_MAX_REPLICAS;
    memcpy(m->replicas, mp->replicas, sizeof(int32_t) * (size_t)m->nreplicas);
    m->nisr = mp->nisr < PR_MAX_REPLICAS ? mp->nisr : PR_MAX_REPLICAS;
    memcpy(m->isr, mp->isr, sizeof(int32_t) * (size_t)m->nisr);
}

void rm_partition_follow(broker *b, partition *p, const mpartition *mp) {
    partition_repl *r = &p->repl;
    r->local_broker_epoch = local_broker_epoch(b);
    r->min_isr = p->topic->cfg.min_insync_replicas;
    for (int i = 0; i < mp->nreplicas; i++) {
        const mbroker *br = mimage_broker(b->image, mp->replicas[i]);
        /* a broker in controlled shutdown is neither ISR-eligible nor counted
         * for the HW (it stops fetching): KRaftMetadataCache.isBrokerShuttingDown */
        pr_set_broker(r, mp->replicas[i], br && !br->fenced, br && br->in_controlled_shutdown, br ? br->epoch : -1);
    }
    p->leader = mp->leader;
    bool lead = mp->leader == b->cfg.node_id;
    if (lead == p->is_leader && mp->partition_epoch == r->partition_epoch && mp->leader_epoch == r->leader_epoch) {
        if (!lead && mp->leader >= 0 && p->fetch_from != mp->leader) fetcher_add(p, mp->leader);
        return; /* nothing new for this partition */
    }
    pr_meta m;
    meta_of(mp, &m);
    int64_t now = monotonic_ms();
    if (lead) {
        int32_t old_epoch = r->leader_epoch;
        bool adv = false;
        if (pr_make_leader(r, &m, now, &adv) < 0) return; /* stale */
        fetcher_remove(p);
        /* Partition.makeLeader: a new leader epoch starts at the LEO */
        int32_t epoch = mp->leader_epoch < 0 ? 0 : mp->leader_epoch;
        if ((epoch > old_epoch || !p->is_leader) && plog_latest_epoch(p->log) < epoch) plog_assign_epoch(p->log, epoch);
        if (!p->is_leader)
            log_info("kafka.cluster.Partition", "[Partition %s-%d broker=%d] %s-%d starts at leader epoch %d from "
                     "offset %lld with partition epoch %d, high watermark %lld, ISR [%d replicas]",
                     p->topic->name, p->index, b->cfg.node_id, p->topic->name, p->index, mp->leader_epoch,
                     (long long)plog_end_offset(p->log), mp->partition_epoch, (long long)r->hw, mp->nisr);
        p->is_leader = true;
        p->leader_epoch = epoch;
        publish_hw(b, p);
        return;
    }
    if (pr_make_follower(r, &m) < 0) return; /* stale */
    bool was_leader = p->is_leader;
    p->is_leader = false;
    p->leader_epoch = mp->leader_epoch;
    if (was_leader || p->waiters) fail_waiters(b, p, KERR_NOT_LEADER_OR_FOLLOWER);
    if (mp->leader < 0) {
        fetcher_remove(p);
        return;
    }
    if (was_leader || p->fetch_from != mp->leader)
        log_info("kafka.cluster.Partition", "[Partition %s-%d broker=%d] Follower %s-%d starts at leader epoch %d "
                 "from offset %lld with partition epoch %d and high watermark %lld. Current leader is %d.",
                 p->topic->name, p->index, b->cfg.node_id, p->topic->name, p->index, mp->leader_epoch,
                 (long long)plog_end_offset(p->log), mp->partition_epoch, (long long)r->hw, mp->leader);
    fetcher_add(p, mp->leader);
    p->fetch_retry_ms = 0; /* a new epoch: fetch at once (DivergingEpoch truncates if needed) */
    rm_fetcher *f = fetcher_of(mp->leader, false);
    if (f) fetcher_schedule(f, 0);
}

void rm_partition_close(broker *b, partition *p) {
    fetcher_remove(p);
    fail_waiters(b, p, KERR_NOT_LEADER_OR_FOLLOWER);
}

/* ---- periodic: ISR shrink, fenced leaders, HW checkpoints ---- */

static void tick(kloop *l, void *arg) {
    (void)arg;
    broker *b = rm.b;
    rm.tick = loop_timer_add(l, TICK_MS, tick, NULL);
    int64_t now = monotonic_ms();
    int nt = broker_topic_count(b);
    topic_rt **ts = nt ? malloc(sizeof(*ts) * (size_t)nt) : NULL;
    if (!ts) return;
    nt = broker_topics_list(b, ts, nt);
    for (int i = 0; i < nt; i++) {
        topic_rt *t = ts[i];
        for (int k = 0; k < t->nparts; k++) {
            partition *p = t->parts[k];
            if (!p || !p->is_leader) continue;
            if (b->fenced) {
                if (p->waiters) fail_waiters(b, p, KERR_NOT_LEADER_OR_FOLLOWER);
                continue;
            }
            pr_alter a;
            if (p->repl.nremote > 0 && pr_maybe_shrink(&p->repl, now, &a)) propose_isr(b, p, &a, "Shrinking");
        }
    }
    free(ts);
}

void rm_init(broker *b) {
    memset(&rm, 0, sizeof rm);
    rm.b = b;
    rm.leader_quota.rate_key = "leader.replication.throttled.rate";
    rm.follower_quota.rate_key = "follower.replication.throttled.rate";
    rm.lag_max_ms = cfg_i64(b, "replica.lag.time.max.ms");
    rm.fetch_max_bytes = cfg_i64(b, "replica.fetch.max.bytes");
    rm.fetch_wait_max_ms = cfg_i64(b, "replica.fetch.wait.max.ms");
    rm.fetch_min_bytes = cfg_i64(b, "replica.fetch.min.bytes");
    rm.fetch_response_max_bytes = cfg_i64(b, "replica.fetch.response.max.bytes");
    rm.fetch_backoff_ms = cfg_i64(b, "replica.fetch.backoff.ms");
    rm.socket_timeout_ms = cfg_i64(b, "replica.socket.timeout.ms");
    if (rm.socket_timeout_ms <= 0) rm.socket_timeout_ms = 30000;
    if (rm.fetch_min_bytes <= 0) rm.fetch_min_bytes = 1;
    rm.tick = loop_timer_add(b->loop, TICK_MS, tick, NULL);
}

void rm_shutdown(broker *b) {
    if (rm.tick) loop_timer_cancel(b->loop, rm.tick);
    rm.tick = 0;
    while (rm.retries) {
        alter_ctx *c = rm.retries;
        rm.retries = c->next;
        loop_timer_cancel(b->loop, c->retry);
        free(c);
    }
    while (rm.inflight) {
        alter_ctx *c = rm.inflight;
        rm.inflight = c->next;
        free(c);
    }
    for (int i = 0; i < rm.nfetchers; i++) {
        rm_fetcher *f = rm.fetchers[i];
        if (f->retry) loop_timer_cancel(b->loop, f->retry);
        for (int k = 0; k < f->nparts; k++) f->parts[k]->fetch_from = -1;
        kc_conn_free(f->conn);
        free(f->parts);
        free(f);
    }
    free(rm.fetchers);
    rm.fetchers = NULL;
    rm.nfetchers = 0;
    free(fa.v);
    free(fa.writes);
    free(fa.done);
    memset(&fa, 0, sizeof fa);
}
