/* mlog.c - the cluster metadata log (see mlog.h). */
#include "metadata/mlog.h"

#include "metadata/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "util/log.h"

#define COMPONENT "kafka.raft.KafkaMetadataLog"
#define FRAME_VERSION 1
/* The leader epoch of this single-voter quorum. */
#define QUORUM_EPOCH 1
/* How often retention may delete snapshots and segments (KafkaRaftClient's snapshot cleaner). */
#define CLEAN_INTERVAL_MS 60000

/* A snapshot on disk: its id, size and the append time of its last record. */
typedef struct snap_entry {
    msnap_id id;
    int64_t size;
    int64_t timestamp;
} snap_entry;

struct mlog {
    plog *log;
    mimage *img;
    mlog_options opts;
    char dir[1100];
    snap_entry *snaps;           /* ascending by id */
    int nsnaps, capsnaps;
    int64_t bytes_since_snapshot; /* batch bytes appended or replayed since the last snapshot */
    int64_t last_snapshot_ms;    /* monotonic: when the counters were last reset */
    int64_t last_append_ts;      /* append time of the last record (the next snapshot's header) */
    int64_t last_clean_ms;       /* monotonic: the last maybe_clean */
};

/* One entry per metadata record type this node reads or writes. */
typedef struct mrec_codec {
    int16_t type;
    size_t size;
    void (*init)(void *m);
    int (*decode)(void *m, kreader *r, int16_t version, karena *a);
    int (*encode)(const void *m, kwriter *w, int16_t version);
} mrec_codec;

#define CODEC(KEY, T)                                                                \
    static void T##_init_v(void *m) { T##_init(m); }                                \
    static int T##_decode_v(void *m, kreader *r, int16_t v, karena *a) {             \
        return T##_decode(m, r, v, a);                                               \
    }                                                                                \
    static int T##_encode_v(const void *m, kwriter *w, int16_t v) { return T##_encode(m, w, v); }
CODEC(KMETA_TOPIC_RECORD, TopicRecord)
CODEC(KMETA_PARTITION_RECORD, PartitionRecord)
CODEC(KMETA_CONFIG_RECORD, ConfigRecord)
CODEC(KMETA_PARTITION_CHANGE_RECORD, PartitionChangeRecord)
CODEC(KMETA_REMOVE_TOPIC_RECORD, RemoveTopicRecord)
CODEC(KMETA_FEATURE_LEVEL_RECORD, FeatureLevelRecord)
CODEC(KMETA_PRODUCER_IDS_RECORD, ProducerIdsRecord)
CODEC(KMETA_REGISTER_BROKER_RECORD, RegisterBrokerRecord)
CODEC(KMETA_UNREGISTER_BROKER_RECORD, UnregisterBrokerRecord)
CODEC(KMETA_FENCE_BROKER_RECORD, FenceBrokerRecord)
CODEC(KMETA_UNFENCE_BROKER_RECORD, UnfenceBrokerRecord)
CODEC(KMETA_BROKER_REGISTRATION_CHANGE_RECORD, BrokerRegistrationChangeRecord)
CODEC(KMETA_USER_SCRAM_CREDENTIAL_RECORD, UserScramCredentialRecord)
CODEC(KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD, RemoveUserScramCredentialRecord)
CODEC(KMETA_CLIENT_QUOTA_RECORD, ClientQuotaRecord)
CODEC(KMETA_ACCESS_CONTROL_ENTRY_RECORD, AccessControlEntryRecord)
CODEC(KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD, RemoveAccessControlEntryRecord)
CODEC(KMETA_ZK_MIGRATION_STATE_RECORD, ZkMigrationStateRecord)
#undef CODEC

#define ENTRY(KEY, T) {KEY, sizeof(T), T##_init_v, T##_decode_v, T##_encode_v}
static const mrec_codec codecs[] = {
    ENTRY(KMETA_TOPIC_RECORD, TopicRecord),
    ENTRY(KMETA_PARTITION_RECORD, PartitionRecord),
    ENTRY(KMETA_CONFIG_RECORD, ConfigRecord),
    ENTRY(KMETA_PARTITION_CHANGE_RECORD, PartitionChangeRecord),
    ENTRY(KMETA_REMOVE_TOPIC_RECORD, RemoveTopicRecord),
    ENTRY(KMETA_FEATURE_LEVEL_RECORD, FeatureLevelRecord),
    ENTRY(KMETA_PRODUCER_IDS_RECORD, ProducerIdsRecord),
    ENTRY(KMETA_REGISTER_BROKER_RECORD, RegisterBrokerRecord),
    ENTRY(KMETA_UNREGISTER_BROKER_RECORD, UnregisterBrokerRecord),
    ENTRY(KMETA_FENCE_BROKER_RECORD, FenceBrokerRecord),
    ENTRY(KMETA_UNFENCE_BROKER_RECORD, UnfenceBrokerRecord),
    ENTRY(KMETA_BROKER_REGISTRATION_CHANGE_RECORD, BrokerRegistrationChangeRecord),
    ENTRY(KMETA_USER_SCRAM_CREDENTIAL_RECORD, UserScramCredentialRecord),
    ENTRY(KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD, RemoveUserScramCredentialRecord),
    ENTRY(KMETA_CLIENT_QUOTA_RECORD, ClientQuotaRecord),
    ENTRY(KMETA_ACCESS_CONTROL_ENTRY_RECORD, AccessControlEntryRecord),
    ENTRY(KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD, RemoveAccessControlEntryRecord),
    ENTRY(KMETA_ZK_MIGRATION_STATE_RECORD, ZkMigrationStateRecord),
};
#undef ENTRY

static const mrec_codec *codec_for(int16_t type) {
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i].type == type) return &codecs[i];
    return NULL;
}

int mrecord_encode(const mrecord *rec, kwriter *w) {
    const mrec_codec *c = codec_for(rec->type);
    if (!c) return -1;
    kw_uvarint(w, FRAME_VERSION);
    kw_uvarint(w, (uint32_t)rec->type);
    kw_uvarint(w, (uint32_t)rec->version);
    return c->encode(rec->data, w, rec->version);
}

int mrecord_decode(const uint8_t *p, size_t len, karena *a, mrecord *out) {
    kreader r;
    kr_init(&r, p, len);
    uint32_t frame = kr_uvarint(&r);
    uint32_t type = kr_uvarint(&r);
    uint32_t version = kr_uvarint(&r);
    if (r.err || frame != FRAME_VERSION || type > 0x7fff || version > 0x7fff) return -1;
    out->type = (int16_t)type;
    out->version = (int16_t)version;
    out->data = NULL;
    const mrec_codec *c = codec_for((int16_t)type);
    if (!c) return 0; /* a record kind this node ignores */
    void *m = karena_alloc(a, c->size);
    if (!m) return -1;
    c->init(m);
    if (c->decode(m, &r, (int16_t)version, a) < 0) return -1;
    out->data = m;
    return 0;
}

/* Read every batch of the log from offset `from` on and apply its records
 * (those below `from` are in the snapshot already). The bytes of the
 * batches read count toward the next snapshot, as Kafka's loader counts
 * them. */
static int replay(mlog *m, int64_t from, char *err, size_t errlen) {
    int64_t offset = from > plog_start_offset(m->log) ? from : plog_start_offset(m->log);
    int64_t end = plog_end_offset(m->log);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    karena a;
    karena_init(&a, 0);
    int rc = 0, applied = 0;
    while (buf && offset < end && rc == 0) {
        plog_slice s;
        if (plog_read(m->log, offset, (int32_t)cap, true, end, &s) != 0 || s.len <= 0) break;
        if ((size_t)s.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)s.len);
            if (!nb) break;
            buf = nb;
            cap = (size_t)s.len;
        }
        if (pread(s.fd, buf, (size_t)s.len, s.file_pos) != s.len) {
            snprintf(err, errlen, "cannot read the metadata log: %s", strerror(errno));
            rc = -1;
            break;
        }
        size_t pos = 0;
        while (pos + BATCH_HEADER_SIZE <= (size_t)s.len) {
            batch_header h;
            batch_header_parse(buf + pos, &h);
            size_t total = batch_total_size(&h);
            if (total > (size_t)s.len - pos) break;
            offset = batch_next_offset(&h);
            m->bytes_since_snapshot += (int64_t)total;
            if (h.max_timestamp > m->last_append_ts) m->last_append_ts = h.max_timestamp;
            if (!(h.attributes & BATCH_ATTR_CONTROL)) {
                rec_iter it;
                rec_record r;
                karena_reset(&a);
                if (rec_iter_init(&it, buf + pos, total, &a) == 0) {
                    while (rec_iter_next(&it, &r) == 1) {
                        if (r.offset < from) continue;
                        mrecord mr;
                        if (r.value.len < 0 ||
                            mrecord_decode(r.value.p, (size_t)r.value.len, &a, &mr) < 0) {
                            log_warn(COMPONENT, "Skipping an unreadable metadata record at offset %lld",
                                     (long long)r.offset);
                            continue;
                        }
                        if (mr.data && mimage_apply(m->img, &mr) < 0)
                            log_warn(COMPONENT, "Metadata record at offset %lld (type %d) does not apply",
                                     (long long)r.offset, mr.type);
                        m->img->last_offset = r.offset;
                        applied++;
                    }
                }
            }
            pos += total;
        }
        if (pos == 0) break;
    }
    karena_free(&a);
    free(buf);
    if (rc == 0)
        log_info(COMPONENT, "Replayed %d metadata records from offset %lld up to offset %lld", applied,
                 (long long)(from > 0 ? from : 0), (long long)end);
    return rc;
}

void mlog_options_defaults(mlog_options *o) {
    o->segment_bytes = 1 << 30;
    o->segment_ms = 604800000;
    o->max_bytes_between_snapshots = 20 * 1024 * 1024;
    o->max_snapshot_interval_ms = 3600000;
    o->retention_bytes = 100 * 1024 * 1024;
    o->retention_ms = 604800000;
    o->file_delete_delay_ms = 60000;
}

static void snap_path(const mlog *m, msnap_id id, char *buf, size_t len) {
    char name[64];
    msnap_file_name(name, sizeof name, id);
    snprintf(buf, len, "%s/%s", m->dir, name);
}

static int snaps_push(mlog *m, snap_entry e) {
    if (m->nsnaps == m->capsnaps) {
        int nc = m->capsnaps ? m->capsnaps * 2 : 8;
        snap_entry *n = realloc(m->snaps, sizeof *n * (size_t)nc);
        if (!n) return -1;
        m->snaps = n;
        m->capsnaps = nc;
    }
    m->snaps[m->nsnaps++] = e;
    return 0;
}

/* Kafka's Snapshots.deleteIfExists, for a snapshot no longer needed. */
static void snap_delete_file(mlog *m, msnap_id id) {
    char p[1200];
    snap_path(m, id, p, sizeof p);
    if (unlink(p) == 0)
        log_info(COMPONENT, "Deleted snapshot files for snapshot OffsetAndEpoch(offset=%lld, epoch=%d).",
                 (long long)id.end_offset, id.epoch);
}

/* Kafka's deleteBeforeSnapshot: raise the log start to the snapshot,
 * delete the segments wholly below it and forget older snapshots. */
static bool delete_before_snapshot(mlog *m, int idx) {
    msnap_id id = m->snaps[idx].id;
    if (plog_start_offset(m->log) >= id.end_offset || id.end_offset > plog_end_offset(m->log)) return false;
    if (plog_delete_records(m->log, id.end_offset) != 0) {
        log_error(COMPONENT, "Cannot advance the metadata log start to %lld: %s", (long long)id.end_offset,
                  strerror(errno));
        return false;
    }
    for (int i = 0; i < idx; i++) snap_delete_file(m, m->snaps[i].id);
    memmove(m->snaps, m->snaps + idx, sizeof *m->snaps * (size_t)(m->nsnaps - idx));
    m->nsnaps -= idx;
    return true;
}

/* Kafka's KafkaMetadataLog.maybeClean: while the log and the snapshots are
 * over metadata.max.retention.bytes, or the oldest snapshot is older than
 * metadata.max.retention.ms, delete up to the next snapshot. The newest
 * snapshot always stays, with the log after it. */
static void maybe_clean(mlog *m, int64_t now_wall) {
    if (m->opts.retention_bytes >= 0) {
        int64_t total = 0;
        for (int i = 0; i < m->nsnaps; i++) total += m->snaps[i].size;
        while (m->nsnaps >= 2) {
            if (plog_size(m->log) + total <= m->opts.retention_bytes) break;
            int64_t oldest = m->snaps[0].size;
            if (!delete_before_snapshot(m, 1)) break;
            total -= oldest;
        }
    }
    if (m->opts.retention_ms >= 0) {
        while (m->nsnaps >= 2 && now_wall - m->snaps[0].timestamp > m->opts.retention_ms)
            if (!delete_before_snapshot(m, 1)) break;
    }
    plog_housekeeping(m->log, now_wall);
    m->last_clean_ms = monotonic_ms();
}

int mlog_snapshot(mlog *m) {
    int64_t now = wall_clock_ms();
    m->bytes_since_snapshot = 0;
    m->last_snapshot_ms = monotonic_ms();
    if (m->img->last_offset < 0) return 0;
    msnap_id id = {m->img->last_offset + 1, QUORUM_EPOCH};
    if (m->nsnaps > 0 && m->snaps[m->nsnaps - 1].id.end_offset >= id.end_offset) return 0; /* nothing new */
    /* Kafka snapshots committed offsets only: a snapshot must not outlive, in
     * a power loss, the log records it covers (mlog_append_unsynced). */
    if (plog_flush(m->log) != 0) return -1;
    char name[64], err[512];
    msnap_file_name(name, sizeof name, id);
    int64_t size = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (msnap_write(m->dir, m->img, id, m->last_append_ts, now, &size, err, sizeof err) != 0) {
        log_error(COMPONENT, "Encountered error while writing %s: %s", name, err);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (snaps_push(m, (snap_entry){id, size, m->last_append_ts}) != 0) return -1;
    log_info(COMPONENT, "Successfully wrote snapshot %s (%lld bytes in %.1f ms)", name, (long long)size,
             (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    maybe_clean(m, now);
    return 0;
}

/* SnapshotGenerator.publishLogDelta: a snapshot once enough bytes were
 * appended since the last one, or enough time has passed. */
static void maybe_snapshot(mlog *m) {
    const char *why = NULL;
    if (m->bytes_since_snapshot >= m->opts.max_bytes_between_snapshots)
        why = "we have replayed at least metadata.log.max.record.bytes.between.snapshots bytes";
    else if (m->opts.max_snapshot_interval_ms > 0 &&
             monotonic_ms() - m->last_snapshot_ms >= m->opts.max_snapshot_interval_ms)
        why = "we have waited at least metadata.log.max.snapshot.interval.ms";
    if (!why) return;
    log_info(COMPONENT, "Creating new KRaft snapshot file at offset %lld because %s.",
             (long long)(m->img->last_offset + 1), why);
    mlog_snapshot(m);
}

/* Find the snapshots, drop stale ones and load the newest that reads back
 * whole (KafkaMetadataLog.recoverSnapshots, then the loader). Returns the
 * offset replay starts from (0 without a snapshot), or -1. */
static int64_t load_snapshots(mlog *m, char *err, size_t errlen) {
    msnap_id *ids = NULL;
    int n = msnap_list(m->dir, true, &ids);
    if (n < 0) {
        snprintf(err, errlen, "cannot list %s: %s", m->dir, strerror(errno));
        return -1;
    }
    int64_t log_start = plog_start_offset(m->log);
    for (int i = 0; i < n; i++) {
        if (ids[i].end_offset < log_start) {
            snap_delete_file(m, ids[i]);
            continue;
        }
        if (snaps_push(m, (snap_entry){ids[i], 0, -1}) != 0) {
            free(ids);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    free(ids);
    /* newest first; one that does not read back whole is set aside */
    for (int i = m->nsnaps - 1; i >= 0; i--) {
        char path[1200], why[512];
        snap_path(m, m->snaps[i].id, path, sizeof path);
        struct stat st;
        m->snaps[i].size = stat(path, &st) == 0 ? st.st_size : 0;
        mimage *img = mimage_new(m->img->node_id);
        int64_t ts = -1;
        if (!img) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (msnap_read_file(path, img, &ts, why, sizeof why) != 0) {
            log_error(COMPONENT, "Ignoring the unreadable snapshot %s: %s", path, why);
            mimage_free(img);
            char bad[1300];
            snprintf(bad, sizeof bad, "%s.unreadable", path);
            if (rename(path, bad) != 0) unlink(path);
            memmove(m->snaps + i, m->snaps + i + 1, sizeof *m->snaps * (size_t)(m->nsnaps - i - 1));
            m->nsnaps--;
            continue;
        }
        /* the image takes the snapshot's content; the caller's struct stays */
        mimage old = *m->img;
        *m->img = *img;
        *img = old;
        mimage_free(img);
        msnap_id id = m->snaps[i].id;
        m->img->last_offset = id.end_offset - 1;
        m->snaps[i].timestamp = ts;
        m->last_append_ts = ts;
        /* the other snapshots' header times, for metadata.max.retention.ms */
        for (int j = 0; j < i; j++) {
            char p[1200], e2[256];
            snap_path(m, m->snaps[j].id, p, sizeof p);
            m->snaps[j].size = stat(p, &st) == 0 ? st.st_size : 0;
            m->snaps[j].timestamp = msnap_header_timestamp(p, e2, sizeof e2);
        }
        log_info(COMPONENT, "Loaded snapshot %s (%lld bytes)", path, (long long)m->snaps[i].size);
        /* a snapshot past the log's end: the log restarts at it
         * (KafkaMetadataLog.truncateToLatestSnapshot) */
        if (id.end_offset > plog_end_offset(m->log) && plog_truncate_fully_and_start_at(m->log, id.end_offset) != 0) {
            snprintf(err, errlen, "cannot truncate the metadata log to snapshot %lld: %s", (long long)id.end_offset,
                     strerror(errno));
            return -1;
        }
        /* snapshots newer than the one loaded were unreadable and are gone */
        m->nsnaps = i + 1;
        return id.end_offset;
    }
    if (log_start > 0) {
        snprintf(err, errlen,
                 "Inconsistent snapshot state: there must be a snapshot at an offset larger then the current log "
                 "start offset %lld, but there is none that can be read",
                 (long long)log_start);
        return -1;
    }
    return 0;
}

int mlog_open_with(const char *dir, mimage *img, const mlog_options *opts, mlog **out, char *err, size_t errlen) {
    mlog *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->img = img;
    if (opts) m->opts = *opts;
    else mlog_options_defaults(&m->opts);
    m->last_append_ts = -1;
    snprintf(m->dir, sizeof m->dir, "%s/__cluster_metadata-0", dir);
    log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = m->opts.segment_bytes;
    cfg.segment_ms = m->opts.segment_ms;
    cfg.file_delete_delay_ms = m->opts.file_delete_delay_ms;
    /* only snapshots move the log start (maybe_clean), never time or size */
    cfg.retention_ms = -1;
    cfg.retention_bytes = -1;
    /* Kafka's fixed id of the metadata topic: Uuid(0, 1). */
    uint8_t topic_id[16] = {0};
    topic_id[15] = 1;
    if (plog_open(m->dir, "__cluster_metadata", 0, topic_id, &cfg, 0, -1, false, &m->log, err, errlen) != 0) {
        free(m);
        return -1;
    }
    int64_t from = load_snapshots(m, err, errlen);
    if (from < 0 || replay(m, from, err, errlen) != 0) {
        plog_close(m->log);
        free(m->snaps);
        free(m);
        return -1;
    }
    m->last_snapshot_ms = monotonic_ms();
    /* a log replayed past the threshold gets its snapshot now */
    if (m->bytes_since_snapshot >= m->opts.max_bytes_between_snapshots) maybe_snapshot(m);
    maybe_clean(m, wall_clock_ms());
    *out = m;
    return 0;
}

int mlog_open(const char *dir, mimage *img, mlog **out, char *err, size_t errlen) {
    return mlog_open_with(dir, img, NULL, out, err, errlen);
}

static int append_records(mlog *m, const mrecord *recs, int n, bool flush) {
    rec_builder b;
    rec_builder_init(&b, 0, 0, -1, -1, -1, false, false);
    kwriter v;
    kw_init(&v);
    int64_t now = wall_clock_ms();
    for (int i = 0; i < n; i++) {
        kw_reset(&v);
        if (mrecord_encode(&recs[i], &v) < 0 || v.err) {
            kw_free(&v);
            rec_builder_free(&b);
            return -1;
        }
        kbytes key = {NULL, -1};
        kbytes val = {v.buf, (int32_t)v.len};
        rec_builder_add(&b, now, key, val, NULL, 0);
    }
    kw_free(&v);
    kwriter w;
    kw_init(&w);
    int rc = rec_builder_finish(&b, &w);
    rec_builder_free(&b);
    int64_t first = 0, last = 0;
    plog_housekeeping(m->log, now); /* metadata.log.segment.ms rolls, deleted files */
    if (rc == 0 && !w.err)
        rc = plog_append(m->log, w.buf, w.len, QUORUM_EPOCH, &first, &last);
    else
        rc = -1;
    if (rc == 0 && flush) rc = plog_flush(m->log);
    size_t appended = w.len;
    kw_free(&w);
    if (rc != 0) {
        log_error(COMPONENT, "Failed to append to the metadata log: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (mimage_apply(m->img, &recs[i]) < 0)
            log_warn(COMPONENT, "Metadata record of type %d did not apply", recs[i].type);
    }
    m->img->last_offset = last;
    m->last_append_ts = now;
    m->bytes_since_snapshot += (int64_t)appended;
    maybe_snapshot(m);
    /* KafkaRaftClient runs maybeClean every 60 s; here on the next append after that */
    if (monotonic_ms() - m->last_clean_ms >= CLEAN_INTERVAL_MS) maybe_clean(m, now);
    return 0;
}

int mlog_append(mlog *m, const mrecord *recs, int n) { return append_records(m, recs, n, true); }
int mlog_append_unsynced(mlog *m, const mrecord *recs, int n) { return append_records(m, recs, n, false); }

int mlog_snapshot_count(const mlog *m) { return m->nsnaps; }
int64_t mlog_latest_snapshot_offset(const mlog *m) {
    return m->nsnaps > 0 ? m->snaps[m->nsnaps - 1].id.end_offset : -1;
}

int64_t mlog_end_offset(const mlog *m) { return plog_end_offset(m->log); }
int32_t mlog_leader_epoch(const mlog *m) {
    (void)m;
    return QUORUM_EPOCH;
}
plog *mlog_plog(mlog *m) { return m->log; }

void mlog_close(mlog *m) {
    if (!m) return;
    plog_close(m->log);
    free(m->snaps);
    free(m);
}
