/* h_offsets.c - ListOffsets v0-8 (earliest, latest, max timestamp, by
 * time) and OffsetForLeaderEpoch v0-4. */
#include "broker/handlers.h"
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
                           ListOffsetsResponse_ListOffsetsPartitionResponse *o) {
    (void)b;
    int16_t v = req->api_version;
    o->partition_index = in->partition_index;
    o->timestamp = -1;
    o->offset = -1;
    o->leader_epoch = -1;
    partition *p = (t && in->partition_index >= 0 && in->partition_index < t->nparts) ? t->parts[in->partition_index]
                                                                                        : NULL;
    if (!p) {
        o->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    o->error_code = check_epoch(p, in->current_leader_epoch);
    if (o->error_code) return;
    int64_t ts = in->timestamp;
    if (ts == PLOG_TS_EARLIEST || ts == PLOG_TS_EARLIEST_LOCAL) {
        o->offset = plog_start_offset(p->log);
    } else if (ts == PLOG_TS_LATEST) {
        o->offset = p->high_watermark;
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
        for (int j = 0; j < np; j++) {
            ListOffsetsResponse_ListOffsetsPartitionResponse_init(&ot->partitions[j]);
            list_partition(b, req, t, &it->partitions[j], &ot->partitions[j]);
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
    for (int i = 0; i < nt; i++) {
        const OffsetForLeaderEpochRequest_OffsetForLeaderTopic *it = &r.topics[i];
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
            partition *p = (t && ip->partition >= 0 && ip->partition < t->nparts) ? t->parts[ip->partition] : NULL;
            if (!p) {
                op->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
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
