/* local_store.c - the local metadata store: __cluster_metadata-0 on this
 * node's disk (mlog), for a node that is its own cluster.
 *
 * A commit appends one batch and applies it to the image at once, so the
 * next request is validated against it (as Kafka's controller validates
 * against its uncommitted state), and the node follows it
 * (broker_metadata_applied). The commit completes (the caller's done: the
 * answer to CreateTopics, AlterConfigs, ...) only once the batch is
 * durable. Until mstore_start that is before local_commit returns (an
 * fsync on the caller's thread); from then on the fsync runs on a thread of
 * its own ("metadata-sync", started by the first commit): on the loop it
 * held every client 0.3-4.5 ms per CreateTopics, DeleteTopics or
 * AlterConfigs. Commits made while one fsync runs share the next. A failed
 * fsync stops the process, as a fault in Kafka's
 * raft IO thread does: the image already holds what the disk may not. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/bootstrap.h"
#include "broker/broker.h"
#include "broker/storage_cmd.h"
#include "metadata/mlog.h"
#include "mstore/mstore.h"
#include "net/loop.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "storage/log.h"
#include "util/log.h"
#include "util/log_files.h"

/* A commit applied to the image and waiting for its fsync. */
typedef struct pending_commit {
    mstore_done_fn done;
    void *arg;
    int64_t upto; /* the log's end once its batch was written */
    struct pending_commit *next;
} pending_commit;

typedef enum { SYNC_IDLE, SYNC_QUEUED, SYNC_DONE } sync_state;

typedef struct local_store {
    mstore base;
    mlog *log;
    /* The fsync thread: started by the first commit after local_start (an
     * idle node keeps its memory), stopped by local_settle. */
    bool serving;      /* between local_start and local_settle */
    bool worker_tried; /* it was started, or could not be */
    bool off_loop;     /* it runs: commits complete when their fsync does */
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int efd;          /* the worker tells the loop a sync is done */
    sync_state state; /* under mu */
    int job_fd;       /* under mu: the descriptor to fdatasync */
    int job_errno;    /* under mu: 0, or the failed fdatasync's errno */
    bool stopping;    /* under mu */
    /* The loop's side. */
    bool in_flight;       /* a sync was handed to the worker and has not come back */
    int in_flight_fd;     /* its descriptor (a duplicate, closed here) */
    int64_t in_flight_upto;
    pending_commit *head, *tail; /* in log order */
} local_store;

static void *sync_main(void *arg) {
    local_store *ls = arg;
    pthread_mutex_lock(&ls->mu);
    for (;;) {
        while (ls->state != SYNC_QUEUED && !ls->stopping) pthread_cond_wait(&ls->wake, &ls->mu);
        if (ls->state != SYNC_QUEUED) break; /* stopping, nothing queued */
        int fd = ls->job_fd;
        pthread_mutex_unlock(&ls->mu);
        int err = fdatasync(fd) == 0 ? 0 : errno;
        pthread_mutex_lock(&ls->mu);
        ls->job_errno = err;
        ls->state = SYNC_DONE;
        uint64_t one = 1;
        ssize_t w = write(ls->efd, &one, sizeof one);
        (void)w; /* a counter that cannot overflow here: the loop reads it every time */
    }
    pthread_mutex_unlock(&ls->mu);
    return NULL;
}

static _Noreturn void fatal_sync_failure(int err) {
    log_error("org.apache.kafka.server.fault.ProcessTerminatingFaultHandler",
              "Encountered fatal fault: Unexpected error in raft IO thread: the metadata log could not be flushed: %s",
              strerror(err));
    log_files_close();
    _exit(1); /* Kafka's Exit.halt: nothing else runs on a log the disk refused */
}

/* Completes, in order, the commits the log is durable for. */
static void complete_upto(local_store *ls, int64_t upto) {
    pending_commit *done = ls->head, **cut = &done;
    while (*cut && (*cut)->upto <= upto) cut = &(*cut)->next;
    if (cut == &done) return;
    ls->head = *cut;
    if (!ls->head) ls->tail = NULL;
    *cut = NULL;
    while (done) {
        pending_commit *c = done;
        done = c->next;
        if (c->done) c->done(ls->base.b, c->arg, MSTORE_OK); /* may commit again */
        free(c);
    }
}

/* Makes the pending commits durable: hands the active segment to the worker,
 * or (after a roll left older segments to flush, or without a descriptor)
 * flushes here. */
static void start_sync(local_store *ls) {
    while (!ls->in_flight && ls->head) {
        plog *l = mlog_plog(ls->log);
        int64_t upto;
        int fd = ls->off_loop ? plog_sync_handle(l, &upto) : -1;
        if (fd < 0) {
            if (plog_flush(l) != 0) fatal_sync_failure(errno);
            complete_upto(ls, mlog_end_offset(ls->log));
            continue;
        }
        ls->in_flight = true;
        ls->in_flight_fd = fd;
        ls->in_flight_upto = upto;
        pthread_mutex_lock(&ls->mu);
        ls->job_fd = fd;
        ls->state = SYNC_QUEUED;
        pthread_cond_signal(&ls->wake);
        pthread_mutex_unlock(&ls->mu);
    }
}

/* The worker's sync came back (the caller holds no lock). */
static void finish_sync(local_store *ls, int err) {
    close(ls->in_flight_fd);
    ls->in_flight = false;
    if (err) fatal_sync_failure(err);
    plog_synced_to(mlog_plog(ls->log), ls->in_flight_upto);
    complete_upto(ls, ls->in_flight_upto);
}

static void on_synced(kloop *l, int fd, int events, void *arg) {
    (void)l;
    (void)events;
    local_store *ls = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    pthread_mutex_lock(&ls->mu);
    bool done = ls->state == SYNC_DONE;
    int err = ls->job_errno;
    if (done) ls->state = SYNC_IDLE;
    pthread_mutex_unlock(&ls->mu);
    if (!done) return;
    finish_sync(ls, err);
    start_sync(ls);
}

/* Starts the worker. Without it (no thread, no eventfd) commits stay
 * synchronous: slower, not wrong. */
static void start_worker(local_store *ls) {
    kloop *loop = ls->base.b->loop;
    ls->worker_tried = true;
    ls->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ls->efd < 0) goto sync_only;
    if (pthread_mutex_init(&ls->mu, NULL) != 0) goto close_efd;
    if (pthread_cond_init(&ls->wake, NULL) != 0) goto free_mu;
    if (loop_watch(loop, ls->efd, LOOP_READ, on_synced, ls) != 0) goto free_cond;
    if (pthread_create(&ls->worker, NULL, sync_main, ls) != 0) goto unwatch;
    pthread_setname_np(ls->worker, "metadata-sync");
    ls->off_loop = true;
    return;
unwatch:
    loop_unwatch(loop, ls->efd);
free_cond:
    pthread_cond_destroy(&ls->wake);
free_mu:
    pthread_mutex_destroy(&ls->mu);
close_efd:
    close(ls->efd);
sync_only:
    log_warn("kafka.raft.KafkaRaftManager", "The metadata log is flushed on the request thread: %s", strerror(errno));
}

/* The node serves: from its next commit on, the fsync runs on the worker. */
static int local_start(mstore *s, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    ((local_store *)s)->serving = true;
    return 0;
}

static void local_commit(mstore *s, const mrecord *recs, int n, unsigned flags, mstore_done_fn done, void *arg) {
    (void)flags;
    local_store *ls = (local_store *)s;
    if (ls->serving && !ls->worker_tried) start_worker(ls);
    if (!ls->off_loop) {
        mstore_status st = mlog_append(ls->log, recs, n) == 0 ? MSTORE_OK : MSTORE_IO;
        if (st == MSTORE_OK) broker_metadata_applied(s->b);
        if (done) done(s->b, arg, st);
        return;
    }
    pending_commit *c = malloc(sizeof *c);
    if (!c || mlog_append_unsynced(ls->log, recs, n) != 0) {
        free(c);
        if (done) done(s->b, arg, MSTORE_IO);
        return;
    }
    *c = (pending_commit){done, arg, mlog_end_offset(ls->log), NULL};
    if (ls->tail) ls->tail->next = c;
    else ls->head = c;
    ls->tail = c;
    /* The node follows its image at once, as when the fsync was here: the
     * partitions of a new topic are made meanwhile (a power loss before the
     * fsync leaves them stray, and the next start removes them). */
    broker_metadata_applied(s->b);
    start_sync(ls);
}

/* Stops the worker after its last sync and completes every pending commit;
 * later commits are synchronous again. */
static void local_settle(mstore *s) {
    local_store *ls = (local_store *)s;
    ls->serving = false;
    if (!ls->off_loop) return;
    pthread_mutex_lock(&ls->mu);
    ls->stopping = true;
    pthread_cond_signal(&ls->wake);
    pthread_mutex_unlock(&ls->mu);
    pthread_join(ls->worker, NULL); /* it finishes a queued sync first */
    ls->off_loop = false;
    loop_unwatch(s->b->loop, ls->efd);
    close(ls->efd);
    pthread_cond_destroy(&ls->wake);
    pthread_mutex_destroy(&ls->mu);
    if (ls->in_flight) finish_sync(ls, ls->job_errno);
    start_sync(ls); /* the rest, flushed here */
}

static int32_t local_controller_id(const mstore *s) { return broker_node_id(s->b); }

static int64_t local_end_offset(const mstore *s) { return mlog_end_offset(((const local_store *)s)->log); }
static int32_t local_epoch(const mstore *s) { return mlog_leader_epoch(((const local_store *)s)->log); }

static void local_close(mstore *s) {
    local_store *ls = (local_store *)s;
    local_settle(s);
    mlog_close(ls->log);
    free(ls);
}

static const mstore_ops local_ops = {"local",     local_commit, local_controller_id, local_end_offset, local_epoch,
                                     local_start, local_close,  local_settle};

/* A metadata.* setting as a number (validated by the config loader), or fallback. */
static int64_t raw_long(const broker *b, const char *key, int64_t fallback) {
    const char *v = props_get(&b->cfg.raw, key);
    if (!v || !*v) return fallback;
    char *end;
    long long n = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    return *end ? fallback : (int64_t)n;
}

/* KafkaMetadataLog's settings from the node's configuration. */
static int metadata_log_options(const broker *b, mlog_options *o, char *err, size_t errlen) {
    mlog_options_defaults(o);
    o->segment_bytes = raw_long(b, "metadata.log.segment.bytes", o->segment_bytes);
    o->segment_ms = raw_long(b, "metadata.log.segment.ms", o->segment_ms);
    o->max_bytes_between_snapshots =
        raw_long(b, "metadata.log.max.record.bytes.between.snapshots", o->max_bytes_between_snapshots);
    o->max_snapshot_interval_ms = raw_long(b, "metadata.log.max.snapshot.interval.ms", o->max_snapshot_interval_ms);
    o->retention_bytes = raw_long(b, "metadata.max.retention.bytes", o->retention_bytes);
    o->retention_ms = raw_long(b, "metadata.max.retention.ms", o->retention_ms);
    /* Kafka's internal metadata.log.segment.min.bytes (8 MiB) bounds segment.bytes */
    int64_t min_bytes = raw_long(b, "metadata.log.segment.min.bytes", 8 * 1024 * 1024);
    if (o->segment_bytes < min_bytes) {
        snprintf(err, errlen, "Cannot set metadata.log.segment.bytes below %lld: %lld", (long long)min_bytes,
                 (long long)o->segment_bytes);
        return -1;
    }
    return 0;
}

/* One bootstrap record into the fresh log. */
static int append_bootstrap(const mrecord *rec, void *ctx) { return mlog_append(ctx, rec, 1); }

mstore *mstore_local_open(broker *b, const char *dir, char *err, size_t errlen) {
    mlog_options o;
    if (metadata_log_options(b, &o, err, errlen) != 0) return NULL;
    local_store *ls = calloc(1, sizeof *ls);
    if (!ls) return NULL;
    ls->base.ops = &local_ops;
    ls->base.b = b;
    if (mlog_open_with(dir, b->image, &o, &ls->log, err, errlen) != 0) {
        free(ls);
        return NULL;
    }
    /* A fresh log starts with the records of bootstrap.checkpoint (kafka-storage
     * format: metadata.version, --add-scram credentials), as Kafka's does. */
    bool bootstrapped = false;
    if (b->image->metadata_version <= 0 &&
        bootstrap_read(dir, append_bootstrap, ls->log, &bootstrapped, err, errlen) != 0) {
        mlog_close(ls->log);
        free(ls);
        return NULL;
    }
    /* without one (or without metadata.version in it): the feature level alone */
    if (b->image->metadata_version <= 0) {
        FeatureLevelRecord r;
        FeatureLevelRecord_init(&r);
        r.name = KSTR_LIT("metadata.version");
        r.feature_level = METADATA_VERSION_LEVEL;
        mrecord rec = {KMETA_FEATURE_LEVEL_RECORD, 0, &r};
        if (mlog_append(ls->log, &rec, 1) != 0) {
            mlog_close(ls->log);
            free(ls);
            return NULL;
        }
    }
    return &ls->base;
}

struct mlog *mstore_local_log(mstore *s) {
    return s && s->ops == &local_ops ? ((local_store *)s)->log : NULL;
}

int16_t mstore_status_error(mstore_status st) {
    switch (st) {
    case MSTORE_OK: return KERR_NONE;
    case MSTORE_UNAVAILABLE: return KERR_REQUEST_TIMED_OUT;
    case MSTORE_CONFLICT: return KERR_NOT_CONTROLLER;
    case MSTORE_IO: default: return KERR_KAFKA_STORAGE_ERROR;
    }
}
