/* h_txn_markers.c - WriteTxnMarkers v0-1 (Kafka 3.6.1's
 * KafkaApis.handleWriteTxnMarkersRequest): a transaction coordinator ends a
 * producer's transaction on the partitions it touched by writing a COMMIT
 * or ABORT control batch to each, on their leaders.
 *
 * Per marker and partition: a partition this node holds no replica of is
 * UNKNOWN_TOPIC_OR_PARTITION, a follower NOT_LEADER_OR_FOLLOWER; the
 * producer state refuses an older producer epoch (INVALID_PRODUCER_EPOCH)
 * or coordinator epoch (TRANSACTION_COORDINATOR_FENCED). The marker is
 * appended as a coordinator append (no sequence checks) and answered once
 * replicated (Kafka appends markers with acks=-1 and request.timeout.ms).
 * A marker written to a __consumer_offsets partition then tells the group
 * coordinator, which makes that producer's pending offsets visible or drops
 * them (GroupCoordinator.onTransactionCompleted).
 */
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/producer_state.h"
#include "broker/txn_marker.h"
#include "group/group.h"
#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"
#include "util/props.h"

#define COMPONENT "kafka.server.KafkaApis"
#define GROUP_METADATA_TOPIC "__consumer_offsets"

/* The answer, sent when every appended marker is replicated or failed.
 * Lives in the request's arena. */
typedef struct markers_wait {
    kreq *req;
    WriteTxnMarkersResponse resp;
    int holds; /* markers waiting + 1 while the handler runs */
} markers_wait;

typedef struct marker_wait {
    markers_wait *w;
    WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult *out;
    partition *p;
    int64_t producer_id;
    bool commit;
    int64_t required; /* the marker's offset + 1 */
    struct marker_wait *next;
} marker_wait;

static void release(markers_wait *w) {
    if (--w->holds == 0) KREQ_REPLY(w->req, WriteTxnMarkersResponse, &w->resp);
}

static void marker_replicated(broker *b, void *arg, int16_t error) {
    marker_wait *mw = arg;
    mw->out->error_code = error;
    if (error == KERR_NONE && strcmp(mw->p->topic->name, GROUP_METADATA_TOPIC) == 0 && b->groups)
        group_txn_marker_written(b->groups, mw->p->index, mw->producer_id, mw->commit);
    release(mw->w);
}

/* The partition as WriteTxnMarkers sees it: ReplicaManager.getMagic (a
 * replica here, else UNKNOWN_TOPIC_OR_PARTITION), then the append's
 * leadership check. */
static partition *marker_partition(broker *b, kstr topic, int32_t index, int16_t *err) {
    topic_rt *t = broker_topic(b, topic);
    if (!t || index < 0 || index >= t->nparts || !t->parts[index]) {
        *err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    return broker_partition_led(b, t, index, err);
}

/* Write one marker; KERR_NONE with *required set, or the error. */
static int16_t write_marker(broker *b, kreq *req, partition *p, const WriteTxnMarkersRequest_WritableTxnMarker *m,
                            int64_t *required) {
    if (pr_check_append(&p->repl, -1) == KERR_NOT_ENOUGH_REPLICAS) return KERR_NOT_ENOUGH_REPLICAS;
    int16_t ec = pstate_check_marker(p->producers, m->producer_id, m->producer_epoch, m->coordinator_epoch);
    if (ec != KERR_NONE) {
        log_info(COMPONENT, "Refusing the %s marker of producer %lld (epoch %d, coordinator epoch %d) on %s-%d: %s",
                 m->transaction_result ? "COMMIT" : "ABORT", (long long)m->producer_id, m->producer_epoch,
                 m->coordinator_epoch, p->topic->name, p->index, kerr_name(ec));
        return ec;
    }
    uint8_t *batch = karena_alloc(&req->arena, TXN_MARKER_BATCH_SIZE);
    if (!batch) return KERR_UNKNOWN_SERVER_ERROR;
    txn_marker_build(batch, m->producer_id, m->producer_epoch, m->transaction_result, m->coordinator_epoch,
                     wall_clock_ms());
    int64_t first = -1;
    ec = broker_append_batch(b, p, batch, TXN_MARKER_BATCH_SIZE, &first);
    if (ec != KERR_NONE) return ec;
    *required = first + 1;
    return KERR_NONE;
}

void h_write_txn_markers(broker *b, kreq *req) {
    WriteTxnMarkersRequest r;
    if (KREQ_DECODE(req, WriteTxnMarkersRequest, &r) < 0) return;
    markers_wait *w = karena_calloc(&req->arena, 1, sizeof *w);
    if (!w) return kreq_fail(req, "out of memory");
    w->req = req;
    w->holds = 1;
    WriteTxnMarkersResponse *resp = &w->resp;
    WriteTxnMarkersResponse_init(resp);
    int nm = r.markers_count > 0 ? r.markers_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, nm, resp->markers)) return kreq_fail(req, "out of memory");
    resp->markers_count = nm;
    marker_wait *waits = NULL;
    const char *timeout = props_get(&b->cfg.raw, "request.timeout.ms");
    int32_t timeout_ms = timeout ? atoi(timeout) : 30000;
    bool allowed = authz_cluster(req, AZ_OP_CLUSTER_ACTION); /* brokers only (KafkaApis) */
    for (int i = 0; i < nm; i++) {
        const WriteTxnMarkersRequest_WritableTxnMarker *m = &r.markers[i];
        WriteTxnMarkersResponse_WritableTxnMarkerResult *o = &resp->markers[i];
        WriteTxnMarkersResponse_WritableTxnMarkerResult_init(o);
        o->producer_id = m->producer_id;
        int nt = m->topics_count > 0 ? m->topics_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, nt, o->topics)) return kreq_fail(req, "out of memory");
        o->topics_count = nt;
        for (int j = 0; j < nt; j++) {
            const WriteTxnMarkersRequest_WritableTxnMarkerTopic *mt = &m->topics[j];
            WriteTxnMarkersResponse_WritableTxnMarkerTopicResult *ot = &o->topics[j];
            WriteTxnMarkersResponse_WritableTxnMarkerTopicResult_init(ot);
            ot->name = mt->name;
            int np = mt->partition_indexes_count > 0 ? mt->partition_indexes_count : 0;
            if (!KREQ_ALLOC_ARRAY(req, np, ot->partitions)) return kreq_fail(req, "out of memory");
            ot->partitions_count = np;
            for (int k = 0; k < np; k++) {
                WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult *op = &ot->partitions[k];
                WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult_init(op);
                op->partition_index = mt->partition_indexes[k];
                int16_t err = KERR_NONE;
                partition *p = allowed ? marker_partition(b, mt->name, op->partition_index, &err) : NULL;
                if (!allowed) err = KERR_CLUSTER_AUTHORIZATION_FAILED;
                int64_t required = -1;
                if (p) err = write_marker(b, req, p, m, &required);
                op->error_code = err;
                if (err != KERR_NONE) continue;
                marker_wait *mw = karena_calloc(&req->arena, 1, sizeof *mw);
                if (!mw) return kreq_fail(req, "out of memory");
                *mw = (marker_wait){w, op, p, m->producer_id, m->transaction_result, required, waits};
                waits = mw;
            }
        }
    }
    /* acks=-1: each marker answers once the HW passes it */
    for (marker_wait *mw = waits; mw; mw = mw->next) w->holds++;
    for (marker_wait *mw = waits; mw; mw = mw->next)
        broker_await_replication(b, mw->p, mw->required, timeout_ms, marker_replicated, mw);
    release(w);
}
