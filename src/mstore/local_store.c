/* local_store.c - the local metadata store: __cluster_metadata-0 on this
 * node's disk (mlog), for a node that is its own cluster. A commit appends
 * one batch, applies it and completes before returning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bootstrap.h"
#include "broker/broker.h"
#include "broker/storage_cmd.h"
#include "metadata/mlog.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

typedef struct local_store {
    mstore base;
    mlog *log;
} local_store;

static void local_commit(mstore *s, const mrecord *recs, int n, unsigned flags, mstore_done_fn done, void *arg) {
    (void)flags;
    local_store *ls = (local_store *)s;
    mstore_status st = mlog_append(ls->log, recs, n) == 0 ? MSTORE_OK : MSTORE_IO;
    if (st == MSTORE_OK) broker_metadata_applied(s->b);
    if (done) done(s->b, arg, st);
}

static int32_t local_controller_id(const mstore *s) { return broker_node_id(s->b); }

static int64_t local_end_offset(const mstore *s) { return mlog_end_offset(((const local_store *)s)->log); }
static int32_t local_epoch(const mstore *s) { return mlog_leader_epoch(((const local_store *)s)->log); }

static void local_close(mstore *s) {
    local_store *ls = (local_store *)s;
    mlog_close(ls->log);
    free(ls);
}

static const mstore_ops local_ops = {"local", local_commit, local_controller_id, local_end_offset, local_epoch,
                                     NULL, local_close};

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
