/* snapshot.c - __cluster_metadata snapshots (see snapshot.h). */
#include "metadata/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata/mlog.h"
#include "metadata/topic_records.h"
#include "protocol/batch_header.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "util/crc32c.h"

#define CHECKPOINT_SUFFIX ".checkpoint"
#define PARTIAL_SUFFIX ".checkpoint.part"
#define DELETED_SUFFIX ".checkpoint.deleted"
#define OFFSET_WIDTH 20
#define EPOCH_WIDTH 10
/* KafkaRaftClient.MAX_BATCH_SIZE_BYTES: a snapshot's batches stay below it. */
#define MAX_BATCH_BYTES (8 * 1024 * 1024)
#define CONTROL_SNAPSHOT_HEADER 3
#define CONTROL_SNAPSHOT_FOOTER 4
/* MetadataVersion 3.4-IV0 (level 8) and later write the ZK migration state. */
#define MV_MIGRATION_SUPPORTED 8
/* RegisterBrokerRecord version for 3.4-IV0 and later (registerBrokerRecordVersion). */
#define REGISTER_BROKER_VERSION 2

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool all_digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

msnap_file_kind msnap_parse_name(const char *name, msnap_id *id) {
    msnap_file_kind kind;
    if (ends_with(name, PARTIAL_SUFFIX)) kind = MSNAP_FILE_PARTIAL;
    else if (ends_with(name, DELETED_SUFFIX)) kind = MSNAP_FILE_DELETED;
    else if (ends_with(name, CHECKPOINT_SUFFIX)) kind = MSNAP_FILE_CHECKPOINT;
    else return MSNAP_FILE_NONE;
    /* Kafka parses the fixed-width fields and throws on anything else: such
     * a file is not a snapshot here, and is left alone. */
    if (strlen(name) < OFFSET_WIDTH + 1 + EPOCH_WIDTH || !all_digits(name, OFFSET_WIDTH) ||
        name[OFFSET_WIDTH] != '-' || !all_digits(name + OFFSET_WIDTH + 1, EPOCH_WIDTH))
        return MSNAP_FILE_NONE;
    if (kind == MSNAP_FILE_CHECKPOINT && strlen(name) != OFFSET_WIDTH + 1 + EPOCH_WIDTH + strlen(CHECKPOINT_SUFFIX))
        return MSNAP_FILE_NONE;
    char buf[OFFSET_WIDTH + 1];
    memcpy(buf, name, OFFSET_WIDTH);
    buf[OFFSET_WIDTH] = 0;
    unsigned long long off = strtoull(buf, NULL, 10);
    memcpy(buf, name + OFFSET_WIDTH + 1, EPOCH_WIDTH);
    buf[EPOCH_WIDTH] = 0;
    unsigned long long ep = strtoull(buf, NULL, 10);
    if (off > INT64_MAX || ep > INT32_MAX) return MSNAP_FILE_NONE;
    if (id) {
        id->end_offset = (int64_t)off;
        id->epoch = (int32_t)ep;
    }
    return kind;
}

void msnap_file_name(char *buf, size_t len, msnap_id id) {
    snprintf(buf, len, "%020" PRId64 "-%010" PRId32 CHECKPOINT_SUFFIX, id.end_offset, id.epoch);
}

/* ---- the image as records (MetadataImage.write's order) ---- */

static int emit(msnap_record_fn fn, void *ctx, int16_t type, int16_t version, const void *data) {
    mrecord r = {type, version, data};
    return fn(&r, ctx);
}

static int emit_configs(msnap_record_fn fn, void *ctx, int8_t type, const char *resource, const mconfig_set *s) {
    for (int32_t i = 0; i < s->count; i++) {
        ConfigRecord c;
        ConfigRecord_init(&c);
        c.resource_type = type;
        c.resource_name = kstr_from(resource);
        c.name = kstr_from(s->items[i].key);
        c.value = kstr_from(s->items[i].value);
        int rc = emit(fn, ctx, KMETA_CONFIG_RECORD, 0, &c);
        if (rc) return rc;
    }
    return 0;
}

static int emit_broker(msnap_record_fn fn, void *ctx, const mimage *img, const mbroker *br) {
    RegisterBrokerRecord r;
    RegisterBrokerRecord_init(&r);
    RegisterBrokerRecord_BrokerEndpoint eps[br->nendpoints > 0 ? br->nendpoints : 1];
    for (int32_t i = 0; i < br->nendpoints; i++) {
        RegisterBrokerRecord_BrokerEndpoint_init(&eps[i]);
        eps[i].name = kstr_from(br->endpoints[i].name);
        eps[i].host = kstr_from(br->endpoints[i].host);
        eps[i].port = (uint16_t)br->endpoints[i].port;
        eps[i].security_protocol = br->endpoints[i].security_protocol;
    }
    RegisterBrokerRecord_BrokerFeature mv;
    RegisterBrokerRecord_BrokerFeature_init(&mv);
    mv.name = KSTR_LIT("metadata.version");
    mv.min_supported_version = 1;
    mv.max_supported_version = img->metadata_version > 0 ? img->metadata_version : 1;
    r.broker_id = br->id;
    r.incarnation_id = br->incarnation_id;
    r.broker_epoch = br->epoch;
    r.end_points = eps;
    r.end_points_count = br->nendpoints;
    r.features = &mv;
    r.features_count = 1;
    r.rack = br->rack ? kstr_from(br->rack) : (kstr){NULL, -1};
    r.fenced = br->fenced;
    r.in_controlled_shutdown = br->in_controlled_shutdown;
    return emit(fn, ctx, KMETA_REGISTER_BROKER_RECORD, REGISTER_BROKER_VERSION, &r);
}

static int emit_topic(msnap_record_fn fn, void *ctx, const mtopic *t) {
    TopicRecord tr;
    mtopic_to_record(t, &tr);
    int rc = emit(fn, ctx, KMETA_TOPIC_RECORD, 0, &tr);
    for (int32_t i = 0; rc == 0 && i < t->nparts; i++) {
        PartitionRecord pr;
        mpartition_to_record(t, &t->parts[i], &pr);
        rc = emit(fn, ctx, KMETA_PARTITION_RECORD, 0, &pr);
    }
    return rc;
}

int msnap_image_records(const mimage *img, msnap_record_fn fn, void *ctx) {
    int rc = 0;
    if (img->metadata_version > 0) {
        FeatureLevelRecord f;
        FeatureLevelRecord_init(&f);
        f.name = KSTR_LIT("metadata.version");
        f.feature_level = img->metadata_version;
        rc = emit(fn, ctx, KMETA_FEATURE_LEVEL_RECORD, 0, &f);
        if (rc == 0 && img->metadata_version >= MV_MIGRATION_SUPPORTED) {
            ZkMigrationStateRecord z;
            ZkMigrationStateRecord_init(&z);
            z.zk_migration_state = 0; /* NONE */
            rc = emit(fn, ctx, KMETA_ZK_MIGRATION_STATE_RECORD, 0, &z);
        }
    }
    for (int32_t i = 0; rc == 0 && i < img->nbrokers; i++) rc = emit_broker(fn, ctx, img, &img->brokers[i]);
    for (int32_t i = 0; rc == 0 && i < img->ntopics; i++) rc = emit_topic(fn, ctx, img->topics[i]);
    for (int32_t i = 0; rc == 0 && i < img->ntopics; i++)
        rc = emit_configs(fn, ctx, MRES_TOPIC, img->topics[i]->name, &img->topics[i]->configs);
    if (rc == 0 && img->broker_configs.count > 0) {
        char id[16];
        snprintf(id, sizeof id, "%" PRId32, img->node_id);
        rc = emit_configs(fn, ctx, MRES_BROKER, id, &img->broker_configs);
    }
    if (rc == 0) rc = emit_configs(fn, ctx, MRES_BROKER, "", &img->default_broker_configs);
    /* ClientQuotasImage: one ClientQuotaRecord per entity and key */
    for (int32_t i = 0; rc == 0 && i < img->nquotas; i++) {
        const mquota *q = &img->quotas[i];
        ClientQuotaRecord_EntityData ents[MQE_NTYPES];
        int32_t ne = 0;
        for (int t = 0; t < MQE_NTYPES; t++) {
            if (!(q->has & (1u << t))) continue;
            ClientQuotaRecord_EntityData_init(&ents[ne]);
            ents[ne].entity_type = kstr_from(mquota_type_name(t));
            ents[ne++].entity_name = q->name[t] ? kstr_from(q->name[t]) : KSTR_NULL;
        }
        for (int k = 0; rc == 0 && k < MQ_NKEYS; k++) {
            if (!(q->set & (1u << k))) continue;
            ClientQuotaRecord c;
            ClientQuotaRecord_init(&c);
            c.entity = ents;
            c.entity_count = ne;
            c.key = kstr_from(mquota_key_name(k));
            c.value = q->value[k];
            rc = emit(fn, ctx, KMETA_CLIENT_QUOTA_RECORD, 0, &c);
        }
    }
    if (rc == 0 && img->next_producer_id > 0) {
        ProducerIdsRecord p;
        ProducerIdsRecord_init(&p);
        p.broker_id = -1;
        p.broker_epoch = -1;
        p.next_producer_id = img->next_producer_id;
        rc = emit(fn, ctx, KMETA_PRODUCER_IDS_RECORD, 0, &p);
    }
    /* AclsImage, then ScramImage: mechanism by mechanism */
    for (int32_t i = 0; rc == 0 && i < img->nacls; i++) {
        const az_acl *a = &img->acls[i];
        AccessControlEntryRecord r;
        AccessControlEntryRecord_init(&r);
        memcpy(r.id.b, a->id, 16);
        r.resource_type = a->resource_type;
        r.resource_name = kstr_from(a->resource_name);
        r.pattern_type = a->pattern_type;
        r.principal = kstr_from(a->principal);
        r.host = kstr_from(a->host);
        r.operation = a->operation;
        r.permission_type = a->permission;
        rc = emit(fn, ctx, KMETA_ACCESS_CONTROL_ENTRY_RECORD, 0, &r);
    }
    for (int8_t mech = 1; mech <= 2; mech++) {
        for (int32_t i = 0; rc == 0 && i < img->nscram; i++) {
            const mscram *c = &img->scram[i];
            if (c->mechanism != mech) continue;
            UserScramCredentialRecord u;
            UserScramCredentialRecord_init(&u);
            u.name = kstr_from(c->name);
            u.mechanism = c->mechanism;
            u.salt = (kbytes){c->salt, c->salt_len};
            u.stored_key = (kbytes){c->stored_key, c->key_len};
            u.server_key = (kbytes){c->server_key, c->key_len};
            u.iterations = c->iterations;
            rc = emit(fn, ctx, KMETA_USER_SCRAM_CREDENTIAL_RECORD, 0, &u);
        }
    }
    return rc;
}

/* ---- writing ---- */

typedef struct writer {
    int fd;
    int64_t next_offset;
    int32_t epoch;
    int64_t now_ms;
    rec_builder b;
    bool open;     /* b holds records */
    size_t bytes;  /* record bytes in b */
    kwriter val;
    kwriter out;
    int err;       /* errno of a failure */
} writer;

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int flush_batch(writer *w) {
    if (!w->open) return 0;
    kw_reset(&w->out);
    int rc = rec_builder_finish(&w->b, &w->out);
    rec_builder_free(&w->b);
    w->open = false;
    if (rc != 0 || w->out.err || write_all(w->fd, w->out.buf, w->out.len) != 0) {
        w->err = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

static void start_batch(writer *w, bool control) {
    rec_builder_init(&w->b, 0, w->next_offset, -1, -1, -1, false, control);
    rec_builder_set_leader_epoch(&w->b, w->epoch);
    w->open = true;
    w->bytes = 0;
}

static int add_record(const mrecord *rec, void *ctx) {
    writer *w = ctx;
    kw_reset(&w->val);
    if (mrecord_encode(rec, &w->val) < 0 || w->val.err) {
        w->err = EINVAL;
        return -1;
    }
    /* a record's own framing is at most ~25 bytes besides its value */
    if (w->open && w->bytes + w->val.len + 32 > MAX_BATCH_BYTES - BATCH_HEADER_SIZE && flush_batch(w) != 0) return -1;
    if (!w->open) start_batch(w, false);
    rec_builder_add(&w->b, w->now_ms, (kbytes){NULL, -1}, (kbytes){w->val.buf, (int32_t)w->val.len}, NULL, 0);
    w->bytes += w->val.len + 32;
    w->next_offset++;
    return 0;
}

/* One control batch holding one control record (Kafka's appendControlMessage). */
static int add_control(writer *w, int16_t type, const uint8_t *value, size_t len) {
    if (flush_batch(w) != 0) return -1;
    start_batch(w, true);
    uint8_t key[4];
    bh_put_u16(key, 0);
    bh_put_u16(key + 2, (uint16_t)type);
    rec_builder_add(&w->b, w->now_ms, (kbytes){key, 4}, (kbytes){value, (int32_t)len}, NULL, 0);
    w->next_offset++;
    return flush_batch(w);
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int msnap_write(const char *dir, const mimage *img, msnap_id id, int64_t last_contained_ts, int64_t now_ms,
                int64_t *size_out, char *err, size_t errlen) {
    char name[64], final_path[1200], part[1200];
    msnap_file_name(name, sizeof name, id);
    snprintf(final_path, sizeof final_path, "%s/%s", dir, name);
    /* Files.createTempFile(dir, "<id>-", ".checkpoint.part") */
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint64_t)now_ms * 2654435761u;
    snprintf(name, sizeof name, "%020" PRId64 "-%010" PRId32, id.end_offset, id.epoch);
    snprintf(part, sizeof part, "%s/%s-%" PRIu64 PARTIAL_SUFFIX, dir, name, rnd);
    if (access(final_path, F_OK) == 0) {
        snprintf(err, errlen, "snapshot %s already exists", final_path);
        errno = EEXIST;
        return -1;
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.epoch = id.epoch;
    w.now_ms = now_ms;
    kw_init(&w.val);
    kw_init(&w.out);
    w.fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", part, strerror(errno));
        kw_free(&w.val);
        kw_free(&w.out);
        return -1;
    }
    SnapshotHeaderRecord h;
    SnapshotHeaderRecord_init(&h);
    h.version = 0;
    h.last_contained_log_timestamp = last_contained_ts;
    kwriter hv;
    kw_init(&hv);
    SnapshotHeaderRecord_encode(&h, &hv, 0);
    int rc = hv.err ? -1 : add_control(&w, CONTROL_SNAPSHOT_HEADER, hv.buf, hv.len);
    kw_free(&hv);
    if (rc == 0) rc = msnap_image_records(img, add_record, &w);
    if (rc == 0) rc = flush_batch(&w);
    if (rc == 0) {
        SnapshotFooterRecord f;
        SnapshotFooterRecord_init(&f);
        f.version = 0;
        kwriter fv;
        kw_init(&fv);
        SnapshotFooterRecord_encode(&f, &fv, 0);
        rc = fv.err ? -1 : add_control(&w, CONTROL_SNAPSHOT_FOOTER, fv.buf, fv.len);
        kw_free(&fv);
    }
    if (w.open) rec_builder_free(&w.b);
    kw_free(&w.val);
    kw_free(&w.out);
    struct stat st;
    /* FileRawSnapshotWriter.freeze: force, read-only, atomic move */
    if (rc == 0 && (fsync(w.fd) != 0 || fstat(w.fd, &st) != 0 || fchmod(w.fd, 0444) != 0)) rc = -1, w.err = errno;
    if (close(w.fd) != 0 && rc == 0) rc = -1, w.err = errno;
    if (rc == 0 && rename(part, final_path) != 0) rc = -1, w.err = errno;
    if (rc == 0 && fsync_dir(dir) != 0) rc = -1, w.err = errno;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write snapshot %s: %s", final_path, strerror(w.err ? w.err : EIO));
        unlink(part);
        errno = w.err ? w.err : EIO;
        return -1;
    }
    if (size_out) *size_out = st.st_size;
    return 0;
}

/* ---- reading ---- */

static int control_type(const rec_record *r) {
    if (r->key.len < 4) return -1;
    return (int16_t)bh_get_u16(r->key.p + 2);
}

int msnap_read_buf(const uint8_t *buf, size_t len, mimage *img, int64_t *last_contained_ts, char *err,
                   size_t errlen) {
    size_t pos = 0;
    bool header = false, footer = false;
    int64_t expect_offset = 0;
    karena a;
    karena_init(&a, 64u << 20);
    int rc = 0;
    while (rc == 0 && pos < len) {
        if (len - pos < BATCH_HEADER_SIZE) {
            snprintf(err, errlen, "truncated batch at position %zu", pos);
            rc = -1;
            break;
        }
        batch_header h;
        batch_header_parse(buf + pos, &h);
        if (h.magic != 2 || h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
            batch_total_size(&h) > len - pos) {
            snprintf(err, errlen, "invalid batch at position %zu", pos);
            rc = -1;
            break;
        }
        size_t total = batch_total_size(&h);
        if (crc32c(0, buf + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES) != h.crc) {
            snprintf(err, errlen, "CRC mismatch in the batch at position %zu", pos);
            rc = -1;
            break;
        }
        if (footer) {
            snprintf(err, errlen, "data after the snapshot footer at position %zu", pos);
            rc = -1;
            break;
        }
        if (h.base_offset != expect_offset) {
            snprintf(err, errlen, "batch at position %zu starts at offset %" PRId64 ", expected %" PRId64, pos,
                     h.base_offset, expect_offset);
            rc = -1;
            break;
        }
        bool control = (h.attributes & BATCH_ATTR_CONTROL) != 0;
        if (!header && !control) {
            snprintf(err, errlen, "the snapshot does not start with a header");
            rc = -1;
            break;
        }
        karena_reset(&a);
        rec_iter it;
        if (rec_iter_init(&it, buf + pos, total, &a) != 0) {
            snprintf(err, errlen, "unreadable batch at position %zu", pos);
            rc = -1;
            break;
        }
        rec_record r;
        int more;
        int64_t seen = 0;
        while (rc == 0 && (more = rec_iter_next(&it, &r)) == 1) {
            seen++;
            if (control) {
                int t = control_type(&r);
                kreader vr;
                kr_init(&vr, r.value.p, r.value.len > 0 ? (size_t)r.value.len : 0);
                if (t == CONTROL_SNAPSHOT_HEADER && !header && seen == 1 && h.base_offset == 0) {
                    SnapshotHeaderRecord hr;
                    SnapshotHeaderRecord_init(&hr);
                    if (SnapshotHeaderRecord_decode(&hr, &vr, 0, &a) != 0 || vr.err) {
                        snprintf(err, errlen, "unreadable snapshot header");
                        rc = -1;
                    } else {
                        header = true;
                        if (last_contained_ts) *last_contained_ts = hr.last_contained_log_timestamp;
                    }
                } else if (t == CONTROL_SNAPSHOT_FOOTER && header) {
                    footer = true;
                } else {
                    snprintf(err, errlen, "unexpected control record type %d at offset %" PRId64, t,
                             r.offset);
                    rc = -1;
                }
                continue;
            }
            mrecord mr;
            if (r.value.len < 0 || mrecord_decode(r.value.p, (size_t)r.value.len, &a, &mr) < 0) {
                snprintf(err, errlen, "unreadable metadata record at offset %" PRId64, r.offset);
                rc = -1;
            } else if (mr.data && mimage_apply(img, &mr) < 0) {
                snprintf(err, errlen, "metadata record at offset %" PRId64 " (type %d) does not apply",
                         r.offset, mr.type);
                rc = -1;
            }
        }
        if (rc == 0 && more < 0) {
            snprintf(err, errlen, "corrupt records in the batch at position %zu", pos);
            rc = -1;
        }
        if (rc == 0 && seen != (int64_t)h.last_offset_delta + 1) {
            snprintf(err, errlen, "batch at position %zu holds %" PRId64 " records, its header says %d", pos, seen,
                     h.last_offset_delta + 1);
            rc = -1;
        }
        expect_offset = batch_next_offset(&h);
        pos += total;
    }
    karena_free(&a);
    if (rc == 0 && !footer) {
        snprintf(err, errlen, header ? "the snapshot has no footer" : "the snapshot is empty");
        rc = -1;
    }
    return rc;
}

int msnap_read_file(const char *path, mimage *img, int64_t *last_contained_ts, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading %s", path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    int rc;
    if (got != len) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno ? errno : EIO));
        rc = -1;
    } else {
        rc = msnap_read_buf(buf, len, img, last_contained_ts, err, errlen);
    }
    free(buf);
    return rc;
}

int64_t msnap_header_timestamp(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t buf[512];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    if (n < BATCH_HEADER_SIZE) {
        snprintf(err, errlen, "%s is too short", path);
        return -1;
    }
    batch_header h;
    batch_header_parse(buf, &h);
    size_t total = batch_total_size(&h);
    if (h.magic != 2 || !(h.attributes & BATCH_ATTR_CONTROL) || total > (size_t)n || total < BATCH_HEADER_SIZE) {
        snprintf(err, errlen, "%s does not start with a snapshot header", path);
        return -1;
    }
    rec_iter it;
    rec_record r;
    if (rec_iter_init(&it, buf, total, NULL) != 0 || rec_iter_next(&it, &r) != 1 ||
        control_type(&r) != CONTROL_SNAPSHOT_HEADER) {
        snprintf(err, errlen, "%s does not start with a snapshot header", path);
        return -1;
    }
    kreader vr;
    kr_init(&vr, r.value.p, r.value.len > 0 ? (size_t)r.value.len : 0);
    SnapshotHeaderRecord hr;
    SnapshotHeaderRecord_init(&hr);
    if (SnapshotHeaderRecord_decode(&hr, &vr, 0, NULL) != 0 || vr.err) {
        snprintf(err, errlen, "%s: unreadable snapshot header", path);
        return -1;
    }
    return hr.last_contained_log_timestamp;
}

static int id_cmp(const void *a, const void *b) {
    const msnap_id *x = a, *y = b;
    if (x->end_offset != y->end_offset) return x->end_offset < y->end_offset ? -1 : 1;
    return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

int msnap_list(const char *dir, bool remove_stale, msnap_id **ids) {
    *ids = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        msnap_id id;
        msnap_file_kind k = msnap_parse_name(e->d_name, &id);
        if (k == MSNAP_FILE_NONE) continue;
        if (k != MSNAP_FILE_CHECKPOINT) {
            if (remove_stale) {
                char p[1400];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
            continue;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 8;
            msnap_id *ni = realloc(*ids, sizeof *ni * (size_t)nc);
            if (!ni) {
                closedir(d);
                free(*ids);
                *ids = NULL;
                return -1;
            }
            *ids = ni;
            cap = nc;
        }
        (*ids)[n++] = id;
    }
    closedir(d);
    if (n > 1) qsort(*ids, (size_t)n, sizeof **ids, id_cmp);
    return n;
}
