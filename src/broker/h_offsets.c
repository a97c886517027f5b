/* h_offsets.c - ListOffsets v0-8 (earliest, latest, max timestamp, by
 * time) and OffsetForLeaderEpoch v0-4. */
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/partition_txn.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"

/* The storage layer's batch scan returns 0 unless the batch is unreadable;
 * records_find_timestamp returns 1 when it found a record. */
static int find_timestamp_in_batch(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                                   int64_t *timestamp, void *ctx) {
    return records_find_timestamp(batch, len, ts, offset, timestamp, ctx) < 0 ? -1 : 0;
}

static int16_t check_epoch(const partition *p, int32_t current_leader_epoch) {
    if (current_leader_epoch < 0 || current_leader_epoch == p->leader_epoch) return KERR_NONE;
    return current_leader_epoch > p->leader_epoch ? KERR_UNKNOWN_LEADER_EPOCH : KERR_FENCED_LEADER_EPOCH;
}

static void list_partition(broker *b, kreq *req, topic_rt *t, const ListOffsetsRequest_ListOffsetsPartition *in,
                           int32_t replica_id, bool read_committed,
                           ListOffsetsResponse_ListOffsetsPartitionResponse *o) {
    (void)b;
    int16_t v = req->api_version;
    o->partition_index = in->partition_index;
    o->timestamp = -1;
    o->offset = -1;
    o->leader_epoch = -1;
    int16_t perr;
    partition *p = broker_partition_led(b, t, in->partition_index, &perr);
    if (!p) {
        o->error_code = perr;
        return;
    }
    o->error_code = check_epoch(p, in->current_leader_epoch);
    if (o->error_code) return;
    int64_t ts = in->timestamp;
    /* Partition.fetchOffsetForTimestamp's lastFetchableOffset: consumers
     * see up to the LSO (read_committed) or the HW; a follower (or a
     * debugging client) up to the log end */
    int64_t fetchable = replica_id != -1 ? plog_end_offset(p->log)
                        : read_committed ? part_txn_lso(p) : p->high_watermark;
    if (ts == PLOG_TS_EARLIEST || ts == PLOG_TS_EARLIEST_LOCAL) {
        o->offset = plog_start_offset(p->log);
    } else if (ts == PLOG_TS_LATEST) {
        o->offset = fetchable;
    } else if (ts == PLOG_TS_MAX_TIMESTAMP) {
        int64_t off = -1, found = -1;
        if (plog_max_timestamp(p->log, find_timestamp_in_batch, NULL, &off, &found) != 0) {
            o->error_code = KERR_KAFKA_STORAGE_ERROR;
            return;
        }
        o->offset = off;
        o->timestamp = found;
    } else if (ts >= 0) {
        int64_t off = -1, found = -1;
        if (plog_offset_for_timestamp(p->log, ts, find_timestamp_in_batch, NULL, &off, &found) != 0) {
            o->error_code = KERR_KAFKA_STORAGE_ERROR;
            return;
        }
        /* a consumer is not told of records it may not read yet */
        if (off >= fetchable) off = found = -1;
        o->offset = off;
        o->timestamp = found;
    } else {
        o->error_code = v == 0 ? KERR_UNKNOWN_SERVER_ERROR : KERR_INVALID_REQUEST;
        return;
    }
    if (o->offset >= 0) {
        o->leader_epoch = ts == PLOG_TS_LATEST ? p->leader_epoch : plog_epoch_for_offset(p->log, o->offset);
    }
    if (v == 0) {
        /* v0 answers a list of offsets */
        o->old_style_offsets = karena_alloc(&req->arena, sizeof(int64_t));
        if (o->old_style_offsets) {
            o->old_style_offsets[0] = o->offset;
            o->old_style_offsets_count = o->offset >= 0 ? 1 : 0;
        }
    }
}

/* ListOffsetsRequest.duplicatePartitions: a partition named more than once
 * (under the same topic name) is answered INVALID_REQUEST every time. */
typedef struct lo_ref {
    kstr name;
    int32_t partition;
    bool *dup;
} lo_ref;

static int lo_ref_cmp(const void *x, const void *y) {
    const lo_ref *a = x, *b = y;
    int n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = n > 0 ? memcmp(a->name.p, b->name.p, (size_t)n) : 0;
    if (c) return c;
    if (a->name.len != b->name.len) return a->name.len < b->name.len ? -1 : 1;
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

/* dups[i][j] for topic i, partition j; NULL on allocation failure. */
static bool **mark_duplicates(const ListOffsetsRequest *r, karena *a) {
    int32_t nt = r->topics_count > 0 ? r->topics_count : 0;
    bool **dups = karena_calloc(a, (size_t)(nt ? nt : 1), sizeof *dups);
    if (!dups) return NULL;
    size_t total = 0;
    for (int i = 0; i < nt; i++) {
        int32_t np = r->topics[i].partitions_count > 0 ? r->topics[i].partitions_count : 0;
        dups[i] = karena_calloc(a, (size_t)(np ? np : 1), sizeof **dups);
        if (!dups[i]) return NULL;
        total += (size_t)np;
    }
    lo_ref *refs = karena_calloc(a, total ? total : 1, sizeof *refs);
    if (!refs) return NULL;
    size_t k = 0;
    for (int i = 0; i < nt; i++)
        for (int j = 0; j < r->topics[i].partitions_count; j++)
            refs[k++] = (lo_ref){r->topics[i].name, r->topics[i].partitions[j].partition_index, &dups[i][j]};
    qsort(refs, total, sizeof *refs, lo_ref_cmp);
    for (size_t x = 1; x < total; x++)
        if (lo_ref_cmp(&refs[x - 1], &refs[x]) == 0) *refs[x - 1].dup = *refs[x].dup = true;
    return dups;
}

void h_list_offsets(broker *b, kreq *req) {
    ListOffsetsRequest r;
    if (KREQ_DECODE(req, ListOffsetsRequest, &r) < 0) return;
    karena *a = &req->arena;
    ListOffsetsResponse resp;
    ListOffsetsResponse_init(&resp);
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    resp.topics = karena_calloc(a, (size_t)(nt ? nt : 1), sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.topics_count = nt;
    /* v0 goes through Kafka's legacy path, which does not look for duplicates */
    bool **dups = req->api_version >= 1 ? mark_duplicates(&r, a) : NULL;
    if (req->api_version >= 1 && !dups) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < nt; i++) {
        const ListOffsetsRequest_ListOffsetsTopic *it = &r.topics[i];
        ListOffsetsResponse_ListOffsetsTopicResponse *ot = &resp.topics[i];
        ListOffsetsResponse_ListOffsetsTopicResponse_init(ot);
        ot->name = it->name;
        int32_t np = it->partitions_count > 0 ? it->partitions_count : 0;
        ot->partitions = karena_calloc(a, (size_t)(np ? np : 1), sizeof *ot->partitions);
        if (!ot->partitions) {
            kreq_fail(req, "out of memory");
            return;
        }
        ot->partitions_count = np;
        topic_rt *t = broker_topic(b, it->name);
        bool topic_ok = authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, it->name); /* KafkaApis */
        for (int j = 0; j < np; j++) {
            ListOffsetsResponse_ListOffsetsPartitionResponse *o = &ot->partitions[j];
            ListOffsetsResponse_ListOffsetsPartitionResponse_init(o);
            if (!topic_ok || (dups && dups[i][j])) {
                o->partition_index = it->partitions[j].partition_index;
                o->error_code = topic_ok ? KERR_INVALID_REQUEST : KERR_TOPIC_AUTHORIZATION_FAILED;
                o->timestamp = -1;
                o->offset = -1;
                o->leader_epoch = -1;
                continue;
            }
            list_partition(b, req, t, &it->partitions[j], r.replica_id, r.isolation_level == 1, o);
        }
    }
    KREQ_REPLY(req, ListOffsetsResponse, &resp);
}

void h_offset_for_leader_epoch(broker *b, kreq *req) {
    OffsetForLeaderEpochRequest r;
    if (KREQ_DECODE(req, OffsetForLeaderEpochRequest, &r) < 0) return;
    karena *a = &req->arena;
    OffsetForLeaderEpochResponse resp;
    OffsetForLeaderEpochResponse_init(&resp);
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    resp.topics = karena_calloc(a, (size_t)(nt ? nt : 1), sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.topics_count = nt;
    /* KafkaApis: CLUSTER_ACTION (a follower) or DESCRIBE on each topic */
    bool cluster_ok = authz_enabled(b) && authz_allowed_quiet(req, AZ_OP_CLUSTER_ACTION, AZ_RES_CLUSTER,
                                                              KSTR_LIT(AZ_CLUSTER_NAME));
    for (int i = 0; i < nt; i++) {
        const OffsetForLeaderEpochRequest_OffsetForLeaderTopic *it = &r.topics[i];
        bool topic_ok = cluster_ok || authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, it->topic);
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *ot = &resp.topics[i];
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_init(ot);
        ot->topic = it->topic;
        int32_t np = it->partitions_count > 0 ? it->partitions_count : 0;
        ot->partitions = karena_calloc(a, (size_t)(np ? np : 1), sizeof *ot->partitions);
        if (!ot->partitions) {
            kreq_fail(req, "out of memory");
            return;
        }
        ot->partitions_count = np;
        topic_rt *t = broker_topic(b, it->topic);
        for (int j = 0; j < np; j++) {
            const OffsetForLeaderEpochRequest_OffsetForLeaderPartition *ip = &it->partitions[j];
            OffsetForLeaderEpochResponse_EpochEndOffset *op = &ot->partitions[j];
            OffsetForLeaderEpochResponse_EpochEndOffset_init(op);
            op->partition = ip->partition;
            op->leader_epoch = -1;
            op->end_offset = -1;
            int16_t perr = KERR_TOPIC_AUTHORIZATION_FAILED;
            partition *p = topic_ok ? broker_partition_led(b, t, ip->partition, &perr) : NULL;
            if (!p) {
                op->error_code = perr;
                continue;
            }
            op->error_code = check_epoch(p, ip->current_leader_epoch);
            if (op->error_code) continue;
            int32_t epoch_out = -1;
            int64_t end = -1;
            plog_end_offset_for_epoch(p->log, ip->leader_epoch, &epoch_out, &end);
            op->leader_epoch = epoch_out;
            op->end_offset = end;
        }
    }
    KREQ_REPLY(req, OffsetForLeaderEpochResponse, &resp);
}
