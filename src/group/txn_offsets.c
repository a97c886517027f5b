/* txn_offsets.c - transactional offset commits (TxnOffsetCommit) and their
 * completion by COMMIT/ABORT markers in __consumer_offsets.
 *
 * Kafka 3.6.1's GroupCoordinator.handleTxnCommitOffsets and
 * GroupMetadataManager.storeOffsets with a producer id: the offsets are
 * written as one TRANSACTIONAL batch of the producer, held pending in the
 * group per producer (invisible to OffsetFetch), and committed or dropped
 * when the transaction coordinator's marker reaches the group's
 * __consumer_offsets partition (group_txn_marker_written).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "group/gcoord.h"
#include "group/grecords.h"
#include "group/group.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define LOGC "kafka.coordinator.group.GroupMetadataManager"

static group_coord *coord(broker *b) { return (group_coord *)b->groups; }

void group_txn_marker_written(struct group_coord *gc, int32_t offsets_partition, int64_t producer_id,
                              bool commit) {
    if (!gc || offsets_partition < 0) return;
    if (gc->nparts > 0 && offsets_partition < gc->nparts && gc->parts[offsets_partition].state == GC_PART_LOADING) {
        /* the load stops at the end it saw when it started: make it read on
         * to this marker, or the offsets it completes would stay pending */
        topic_rt *t = broker_topic(gc->b, KSTR_LIT(OFFSETS_TOPIC));
        partition *p = t && offsets_partition < t->nparts ? t->parts[offsets_partition] : NULL;
        if (p && p->log && plog_end_offset(p->log) > gc->parts[offsets_partition].load_end)
            gc->parts[offsets_partition].load_end = plog_end_offset(p->log);
        return;
    }
    /* a partition not led here: its groups are not in memory (whoever loads
     * it replays this marker from the log) */
    if (gc->nparts > 0 && (offsets_partition >= gc->nparts || gc->parts[offsets_partition].state != GC_PART_LOADED))
        return;
    int n = grec_txn_marker(&gc->mgr, producer_id, commit, offsets_partition, gc->nparts);
    log_debug(LOGC, "Transaction of producer %lld %s in %s-%d: %d offsets committed", (long long)producer_id,
              commit ? "committed" : "aborted", OFFSETS_TOPIC, offsets_partition, n);
}

/* A TxnOffsetCommit whose batch is being written; lives in the request arena. */
typedef struct txn_commit_wait {
    kreq *req;
    TxnOffsetCommitResponse *resp;
    char *group_id;
    int64_t producer_id;
    goffset *offs; /* the offsets written */
    int nrec;
} txn_commit_wait;

/* Fill every partition still undecided (-2) with e and answer; before v2 a
 * loading coordinator is reported as not available (Kafka's KAFKA-7296
 * compatibility in KafkaApis). */
static void txn_commit_answer(kreq *req, TxnOffsetCommitResponse *resp, int16_t e) {
    for (int i = 0; i < resp->topics_count; i++) {
        for (int k = 0; k < resp->topics[i].partitions_count; k++) {
            TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition *p = &resp->topics[i].partitions[k];
            if (p->error_code == -2) p->error_code = e;
            if (req->api_version < 2 && p->error_code == KERR_COORDINATOR_LOAD_IN_PROGRESS)
                p->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
        }
    }
    KREQ_REPLY(req, TxnOffsetCommitResponse, resp);
}

/* Kafka's putCacheCallback for a transactional commit: the pending entries
 * learn their batch's offset (onTxnOffsetCommitAppend), or are dropped when
 * the write failed (failPendingTxnOffsetCommit). */
static void txn_commit_written(group_coord *gc, void *arg, int16_t error, int64_t first_offset, bool same) {
    txn_commit_wait *w = arg;
    int16_t e = gc_offset_commit_error(error);
    /* after a reload (!same) the log's record is what the group holds */
    kgroup *g = e || same ? gmgr_get(&gc->mgr, w->group_id) : NULL;
    if (g && g->state != GROUP_DEAD) {
        for (int i = 0; i < w->nrec; i++) {
            const goffset *o = &w->offs[i];
            size_t len = strlen(o->topic);
            goffset *cur = group_txn_offset(g, w->producer_id, o->topic, len, o->partition);
            if (!cur) continue; /* completed or removed meanwhile */
            bool ours = cur->log_offset < 0 && cur->offset == o->offset && cur->leader_epoch == o->leader_epoch &&
                        strcmp(cur->metadata, o->metadata) == 0 && cur->commit_ts == o->commit_ts;
            if (!ours) continue;
            if (e) group_txn_offset_remove(g, w->producer_id, o->topic, len, o->partition);
            else cur->log_offset = first_offset;
        }
    }
    txn_commit_answer(w->req, w->resp, e);
}

static bool partition_known(broker *b, kstr topic, int32_t index, bool *topic_known) {
    topic_rt *t = broker_topic(b, topic);
    *topic_known = t != NULL;
    return t && index >= 0 && index < t->nparts;
}

/* Encode one offset's record into the arena; false when out of memory. */
static bool encode_record(karena *a, const char *gid, const goffset *o, kbytes *key, kbytes *val) {
    kwriter kw, vw;
    kw_init(&kw);
    kw_init(&vw);
    grec_offset_key(&kw, gid, o->topic, o->partition);
    grec_offset_value(&vw, o);
    uint8_t *kb = karena_alloc(a, kw.len + 1), *vb = karena_alloc(a, vw.len + 1);
    bool ok = kb && vb && !kw.err && !vw.err;
    if (ok) {
        memcpy(kb, kw.buf, kw.len);
        memcpy(vb, vw.buf, vw.len);
        *key = (kbytes){kb, (int32_t)kw.len};
        *val = (kbytes){vb, (int32_t)vw.len};
    }
    kw_free(&kw);
    kw_free(&vw);
    return ok;
}

void h_txn_offset_commit(broker *b, kreq *req) {
    TxnOffsetCommitRequest r;
    if (KREQ_DECODE(req, TxnOffsetCommitRequest, &r) != 0) return;
    group_coord *gc = coord(b);
    karena *a = &req->arena;
    int16_t v = req->api_version;
    int64_t now = wall_clock_ms();

    TxnOffsetCommitResponse *resp = karena_calloc(a, 1, sizeof *resp);
    int nt = r.topics_count > 0 ? r.topics_count : 0;
    if (!resp || !(resp->topics = karena_calloc(a, (size_t)nt + 1, sizeof *resp->topics))) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp->topics_count = nt;
    /* KafkaApis: unknown topics and partitions answer UNKNOWN_TOPIC_OR_PARTITION
     * and never reach the coordinator */
    int nvalid = 0;
    /* KafkaApis: WRITE on the transactional id, READ on the group, READ on each topic */
    int16_t denied = !authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, r.transactional_id)
                         ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                     : !authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id) ? KERR_GROUP_AUTHORIZATION_FAILED
                                                                                  : KERR_NONE;
    for (int i = 0; i < nt; i++) {
        TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t = &r.topics[i];
        TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic *rt = &resp->topics[i];
        bool topic_ok = !denied && authz_allowed_k(req, AZ_OP_READ, AZ_RES_TOPIC, t->name);
        TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_init(rt);
        rt->name = t->name;
        int np = t->partitions_count > 0 ? t->partitions_count : 0;
        if (!(rt->partitions = karena_calloc(a, (size_t)np + 1, sizeof *rt->partitions))) {
            kreq_fail(req, "out of memory");
            return;
        }
        rt->partitions_count = np;
        for (int k = 0; k < np; k++) {
            TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition *rp = &rt->partitions[k];
            TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition_init(rp);
            rp->partition_index = t->partitions[k].partition_index;
            bool known;
            if (denied) rp->error_code = denied;
            else if (!topic_ok) rp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!partition_known(b, t->name, rp->partition_index, &known)) rp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else nvalid++, rp->error_code = -2; /* decided below */
        }
    }
    if (nvalid == 0) {
        txn_commit_answer(req, resp, KERR_NONE);
        return;
    }
    char *gid = r.group_id.len < 0 ? NULL : kstr_dup(r.group_id, a);
    kgroup *g = NULL;
    int16_t ge = gmgr_txn_commit_check(&gc->mgr, gid, v >= 3 ? kstr_dup(r.member_id, a) : "",
                                       v >= 3 && r.group_instance_id.len >= 0 ? kstr_dup(r.group_instance_id, a)
                                                                              : NULL,
                                       v >= 3 ? r.generation_id : -1, &g);
    if (ge) {
        txn_commit_answer(req, resp, ge);
        return;
    }
    kbytes *keys = karena_calloc(a, (size_t)nvalid, sizeof *keys);
    kbytes *vals = karena_calloc(a, (size_t)nvalid, sizeof *vals);
    goffset *offs = karena_calloc(a, (size_t)nvalid, sizeof *offs);
    txn_commit_wait *w = karena_calloc(a, 1, sizeof *w);
    if (!keys || !vals || !offs || !w) {
        kreq_fail(req, "out of memory");
        return;
    }
    int nrec = 0;
    for (int i = 0; i < nt; i++) {
        TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t = &r.topics[i];
        for (int k = 0; k < resp->topics[i].partitions_count; k++) {
            TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition *rp = &resp->topics[i].partitions[k];
            if (rp->error_code != -2) continue;
            TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition *p = &t->partitions[k];
            int32_t mlen = p->committed_metadata.len > 0 ? p->committed_metadata.len : 0;
            if (mlen > gc->mgr.cfg.offset_metadata_max_bytes) {
                rp->error_code = KERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            goffset *o = &offs[nrec];
            o->topic = kstr_dup(t->name, a);
            o->partition = p->partition_index;
            o->offset = p->committed_offset;
            o->leader_epoch = v >= 2 ? p->committed_leader_epoch : -1;
            o->metadata = p->committed_metadata.len >= 0 ? kstr_dup(p->committed_metadata, a) : "";
            o->commit_ts = now;
            o->expire_ts = -1;
            o->log_offset = -1;
            if (!o->topic || !o->metadata || !encode_record(a, gid, o, &keys[nrec], &vals[nrec])) {
                rp->error_code = KERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            nrec++;
        }
    }
    if (nrec == 0) {
        txn_commit_answer(req, resp, KERR_NONE);
        return;
    }
    group_warn_mixed_commits(g);
    g->received_txn_commits = true;
    /* Kafka's prepareTxnOffsetCommit: pending before the write completes */
    for (int i = 0; i < nrec; i++) {
        const goffset *o = &offs[i];
        group_txn_offset_put(g, r.producer_id, o->topic, strlen(o->topic), o->partition, o->offset, o->leader_epoch,
                             o->metadata, strlen(o->metadata), o->commit_ts, o->expire_ts, -1);
    }
    *w = (txn_commit_wait){.req = req, .resp = resp, .group_id = gid, .producer_id = r.producer_id,
                           .offs = offs, .nrec = nrec};
    gc_append_txn(gc, gid, nrec, keys, vals, r.producer_id, r.producer_epoch, txn_commit_written, w);
}
