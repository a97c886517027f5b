/* mlog.c - the cluster metadata log (see mlog.h). */
#include "metadata/mlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/loop.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "util/log.h"

#define COMPONENT "kafka.raft.KafkaMetadataLog"
#define FRAME_VERSION 1
/* The leader epoch of this single-voter quorum. */
#define QUORUM_EPOCH 1

struct mlog {
    plog *log;
    mimage *img;
    char dir[1100];
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

/* Read every batch of the log and apply its records. */
static int replay(mlog *m, char *err, size_t errlen) {
    int64_t offset = plog_start_offset(m->log);
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
            offset = batch_last_offset(&h) + 1;
            if (!(h.attributes & BATCH_ATTR_CONTROL)) {
                rec_iter it;
                rec_record r;
                karena_reset(&a);
                if (rec_iter_init(&it, buf + pos, total, &a) == 0) {
                    while (rec_iter_next(&it, &r) == 1) {
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
        log_info(COMPONENT, "Replayed %d metadata records up to offset %lld", applied,
                 (long long)end);
    return rc;
}

int mlog_open(const char *dir, mimage *img, mlog **out, char *err, size_t errlen) {
    mlog *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->img = img;
    snprintf(m->dir, sizeof m->dir, "%s/__cluster_metadata-0", dir);
    log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = 1 << 30;
    cfg.retention_ms = -1;
    cfg.retention_bytes = -1;
    /* Kafka's fixed id of the metadata topic: Uuid(0, 1). */
    uint8_t topic_id[16] = {0};
    topic_id[15] = 1;
    if (plog_open(m->dir, "__cluster_metadata", 0, topic_id, &cfg, 0, -1, &m->log, err, errlen) != 0) {
        free(m);
        return -1;
    }
    if (replay(m, err, errlen) != 0) {
        plog_close(m->log);
        free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int mlog_append(mlog *m, const mrecord *recs, int n) {
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
    if (rc == 0 && !w.err)
        rc = plog_append(m->log, w.buf, w.len, QUORUM_EPOCH, &first, &last);
    else
        rc = -1;
    if (rc == 0) rc = plog_flush(m->log);
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
    return 0;
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
    free(m);
}
