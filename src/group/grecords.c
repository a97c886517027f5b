/* grecords.c - __consumer_offsets keys and values, and replaying them
 * (see grecords.h). The structs are encoded with the generated codecs;
 * this file adds the version prefix and the meaning. */
#include "group/grecords.h"
#include "group/group.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/gen/group_metadata_key.h"
#include "protocol/gen/group_metadata_value.h"
#include "protocol/gen/offset_commit_key.h"
#include "protocol/gen/offset_commit_value.h"
#include "protocol/records.h"
#include "util/log.h"

#define LOGC "kafka.coordinator.group.GroupMetadataManager"

int grec_parse_key(const uint8_t *p, size_t n, grec_key *out, karena *a) {
    memset(out, 0, sizeof *out);
    kreader r;
    kr_init(&r, p, n);
    int16_t v = kr_i16(&r);
    if (r.err) return -1;
    if (v == 0 || v == 1) {
        OffsetCommitKey k;
        if (OffsetCommitKey_decode(&k, &r, v, a) != 0) return -1;
        out->kind = GREC_KEY_OFFSET;
        out->group = k.group;
        out->topic = k.topic;
        out->partition = k.partition;
    } else if (v == 2) {
        GroupMetadataKey k;
        if (GroupMetadataKey_decode(&k, &r, v, a) != 0) return -1;
        out->kind = GREC_KEY_GROUP;
        out->group = k.group;
    }
    return 0;
}

void grec_offset_key(kwriter *w, const char *group, const char *topic, int32_t partition) {
    OffsetCommitKey k;
    OffsetCommitKey_init(&k);
    k.group = kstr_from(group);
    k.topic = kstr_from(topic);
    k.partition = partition;
    kw_i16(w, 1);
    OffsetCommitKey_encode(&k, w, 1);
}

void grec_offset_value(kwriter *w, const goffset *o) {
    OffsetCommitValue v;
    OffsetCommitValue_init(&v);
    v.offset = o->offset;
    v.leader_epoch = o->leader_epoch;
    v.metadata = kstr_from(o->metadata ? o->metadata : "");
    v.commit_timestamp = o->commit_ts;
    v.expire_timestamp = o->expire_ts;
    int16_t version = o->expire_ts >= 0 ? 1 : 3;
    kw_i16(w, version);
    OffsetCommitValue_encode(&v, w, version);
}

void grec_group_key(kwriter *w, const char *group) {
    GroupMetadataKey k;
    GroupMetadataKey_init(&k);
    k.group = kstr_from(group);
    kw_i16(w, 2);
    GroupMetadataKey_encode(&k, w, 2);
}

void grec_group_value(kwriter *w, const kgroup *g) {
    GroupMetadataValue v;
    GroupMetadataValue_init(&v);
    GroupMetadataValue_MemberMetadata one, *mm = g->nmembers > 1
                                                     ? calloc((size_t)g->nmembers, sizeof *mm)
                                                     : &one;
    if (!mm) {
        w->err = 1;
        return;
    }
    v.protocol_type = kstr_from(g->protocol_type ? g->protocol_type : "");
    v.generation = g->generation;
    v.protocol = g->protocol_name ? kstr_from(g->protocol_name) : KSTR_NULL;
    v.leader = g->leader_id ? kstr_from(g->leader_id) : KSTR_NULL;
    v.current_state_timestamp = g->state_ts;
    for (int i = 0; i < g->nmembers; i++) {
        const gmember *mb = g->members[i];
        const gprotocol *p = gmember_protocol(mb, g->protocol_name);
        GroupMetadataValue_MemberMetadata_init(&mm[i]);
        mm[i].member_id = kstr_from(mb->member_id);
        mm[i].group_instance_id = mb->instance_id ? kstr_from(mb->instance_id) : KSTR_NULL;
        mm[i].client_id = kstr_from(mb->client_id);
        mm[i].client_host = kstr_from(mb->client_host);
        mm[i].rebalance_timeout = mb->rebalance_timeout_ms;
        mm[i].session_timeout = mb->session_timeout_ms;
        mm[i].subscription = (kbytes){p ? p->metadata : (const uint8_t *)"", p ? p->metadata_len : 0};
        mm[i].assignment = (kbytes){mb->assignment ? mb->assignment : (const uint8_t *)"",
                                    mb->assignment_len};
    }
    v.members = mm;
    v.members_count = g->nmembers;
    kw_i16(w, 3);
    GroupMetadataValue_encode(&v, w, 3);
    if (mm != &one) free(mm);
}

static char *dupk(kstr s, karena *a) { return kstr_dup(s, a); }

/* One record: a regular one (producer_id < 0) or one of a transactional
 * batch, whose offsets stay pending for the producer until its marker.
 * log_offset is the record batch's base offset (Kafka's
 * CommitRecordMetadataAndOffset.appendedBatchOffset). */
static int apply_record(gmgr *m, const uint8_t *key, int32_t key_len, const uint8_t *value,
                        int32_t value_len, int64_t producer_id, int64_t log_offset, karena *a) {
    grec_key k;
    if (key_len < 0 || grec_parse_key(key, (size_t)key_len, &k, a) != 0) return -1;
    if (k.kind == 0) return 0;
    char *gid = dupk(k.group, a);
    if (!gid) return -1;
    bool tombstone = value == NULL || value_len < 0;
    if (k.kind == GREC_KEY_OFFSET) {
        /* no topic holds a NUL: such a key is malformed (offsets are kept by
         * C string, and would not be found again) */
        if (k.topic.len < 0 || (k.topic.len > 0 && memchr(k.topic.p, 0, (size_t)k.topic.len))) return -1;
        kgroup *g = gmgr_get(m, gid);
        if (tombstone) {
            if (g && producer_id >= 0) group_txn_offset_remove(g, producer_id, k.topic.p, (size_t)k.topic.len, k.partition);
            else if (g) group_offset_remove(g, k.topic.p, (size_t)k.topic.len, k.partition);
            return 0;
        }
        kreader r;
        kr_init(&r, value, (size_t)value_len);
        int16_t v = kr_i16(&r);
        OffsetCommitValue ov;
        if (r.err || v < 0 || v > 4 || OffsetCommitValue_decode(&ov, &r, v, a) != 0) return -1;
        if (!g) g = gmgr_get_or_create(m, gid);
        if (!g) return -1;
        size_t mlen = ov.metadata.len > 0 ? (size_t)ov.metadata.len : 0;
        if (producer_id >= 0) {
            group_txn_offset_put(g, producer_id, k.topic.p, (size_t)k.topic.len, k.partition, ov.offset,
                                 ov.leader_epoch, ov.metadata.p, mlen, ov.commit_timestamp,
                                 ov.expire_timestamp, log_offset);
            return 0;
        }
        goffset *o = group_offset_put(g, k.topic.p, (size_t)k.topic.len, k.partition, ov.offset,
                                      ov.leader_epoch, ov.metadata.p, mlen, ov.commit_timestamp,
                                      ov.expire_timestamp);
        if (o) o->log_offset = log_offset;
        return 0;
    }
    /* group metadata */
    kgroup *g = gmgr_get(m, gid);
    if (tombstone) {
        /* the group is gone; offsets written after the tombstone would be
         * replayed later and recreate it */
        if (g) gmgr_remove(m, g);
        return 0;
    }
    kreader r;
    kr_init(&r, value, (size_t)value_len);
    int16_t v = kr_i16(&r);
    GroupMetadataValue gv;
    if (r.err || v < 0 || v > 4 || GroupMetadataValue_decode(&gv, &r, v, a) != 0) return -1;
    if (!g) g = gmgr_get_or_create(m, gid);
    if (!g) return -1;
    char *ptype = dupk(gv.protocol_type, a);
    char *pname = gv.protocol.len >= 0 ? dupk(gv.protocol, a) : NULL;
    char *leader = gv.leader.len >= 0 ? dupk(gv.leader, a) : NULL;
    group_load_reset(g, ptype, gv.generation, pname, leader, v >= 2 ? gv.current_state_timestamp : -1);
    for (int32_t i = 0; i < gv.members_count; i++) {
        GroupMetadataValue_MemberMetadata *mm = &gv.members[i];
        char *iid = mm->group_instance_id.len >= 0 ? dupk(mm->group_instance_id, a) : NULL;
        int32_t rt = v >= 1 ? mm->rebalance_timeout : mm->session_timeout;
        group_load_member(g, dupk(mm->member_id, a), iid, dupk(mm->client_id, a),
                          dupk(mm->client_host, a), rt, mm->session_timeout, pname,
                          mm->subscription.p, mm->subscription.len, mm->assignment.p,
                          mm->assignment.len);
    }
    return 0;
}

int grec_apply(gmgr *m, const uint8_t *key, int32_t key_len, const uint8_t *value,
               int32_t value_len, karena *a) {
    return apply_record(m, key, key_len, value, value_len, -1, 0, a);
}

/* A COMMIT/ABORT marker of producer_id in partition: complete the
 * producer's pending offsets in that partition's groups. */
int grec_txn_marker(gmgr *m, int64_t producer_id, bool commit, int32_t partition, int32_t nparts) {
    int applied = 0, bucket = 0;
    kgroup *cur = NULL;
    for (kgroup *g; (g = gmgr_iter(m, &bucket, &cur));) {
        if (!g->txn || (nparts > 0 && group_partition_for(g->id, nparts) != partition)) continue;
        applied += group_txn_complete(g, producer_id, commit);
    }
    return applied;
}

int grec_replay(gmgr *m, const uint8_t *buf, size_t len) { return grec_replay_partition(m, buf, len, 0, 0); }

int grec_replay_partition(gmgr *m, const uint8_t *buf, size_t len, int32_t partition, int32_t nparts) {
    karena a;
    karena_init(&a, 0);
    int applied = 0;
    size_t pos = 0;
    while (len - pos >= BATCH_HEADER_SIZE) {
        batch_header h;
        batch_header_parse(buf + pos, &h);
        if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) {
            applied = -1;
            break;
        }
        size_t whole = (size_t)h.batch_length + BATCH_LOG_OVERHEAD;
        if (whole > len - pos) break; /* partial trailing batch */
        bool transactional = (h.attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
        bool control = (h.attributes & BATCH_ATTR_CONTROL) != 0;
        rec_iter it;
        if (h.magic != 2 || rec_iter_init(&it, buf + pos, whole, &a) != 0) {
            log_warn(LOGC, "Skipping a corrupt batch in __consumer_offsets at offset %lld",
                     (long long)h.base_offset);
            pos += whole;
            continue;
        }
        rec_record rec;
        int rc;
        while ((rc = rec_iter_next(&it, &rec)) == 1) {
            if (control) {
                /* control key: int16 version, int16 type (0 abort, 1 commit) */
                if (rec.key.len >= 4) {
                    int16_t type = (int16_t)((rec.key.p[2] << 8) | rec.key.p[3]);
                    if (type == 0 || type == 1)
                        applied += grec_txn_marker(m, h.producer_id, type == 1, partition, nparts);
                }
                break; /* a control batch holds one record */
            } else if (apply_record(m, rec.key.p, rec.key.len, rec.value.p, rec.value.len,
                                    transactional ? h.producer_id : -1, h.base_offset, &a) == 0) {
                applied++;
            }
        }
        if (rc < 0)
            log_warn(LOGC, "Corrupt records in __consumer_offsets batch at offset %lld",
                     (long long)h.base_offset);
        karena_reset(&a);
        pos += whole;
    }
    karena_free(&a);
    return applied;
}
