/* h_admin.c - the cluster and log administration APIs of a single node:
 * DescribeCluster, DescribeQuorum, DescribeLogDirs, DeleteRecords,
 * UpdateFeatures, InitProducerId (idempotent producers),
 * AlterReplicaLogDirs, UnregisterBroker (reassignments: h_reassign.c),
 * DescribeProducers. */
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/partition_txn.h"
#include "broker/producer_state.h"
#include "broker/storage_cmd.h"
#include "broker/topics.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "txn/txn_manager.h"

#define CLUSTER_ALL_OPERATIONS 8096

void h_describe_cluster(broker *b, kreq *req) {
    DescribeClusterRequest r;
    if (KREQ_DECODE(req, DescribeClusterRequest, &r) < 0) return;
    DescribeClusterResponse resp;
    DescribeClusterResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    resp.cluster_id = kstr_from(b->cluster_id);
    resp.controller_id = broker_controller_id(b);
    int nb = broker_live_nodes(b, NULL, 0);
    broker_node *nodes = karena_calloc(&req->arena, (size_t)(nb ? nb : 1), sizeof *nodes);
    if (!nodes || !KREQ_ALLOC_ARRAY(req, nb, resp.brokers)) return kreq_fail(req, "out of memory");
    nb = broker_live_nodes(b, nodes, nb);
    resp.brokers_count = nb;
    for (int i = 0; i < nb; i++) {
        DescribeClusterResponse_DescribeClusterBroker_init(&resp.brokers[i]);
        resp.brokers[i].broker_id = nodes[i].id;
        resp.brokers[i].host = kstr_from(nodes[i].host);
        resp.brokers[i].port = nodes[i].port;
        resp.brokers[i].rack = nodes[i].rack ? kstr_from(nodes[i].rack) : KSTR_NULL;
    }
    /* KafkaApis: DESCRIBE on the cluster (a denial is logged), then each operation */
    resp.cluster_authorized_operations =
        !r.include_cluster_authorized_operations ? INT32_MIN
        : !authz_enabled(b)                      ? CLUSTER_ALL_OPERATIONS
        : authz_cluster(req, AZ_OP_DESCRIBE)     ? authz_operations(req, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME))
                                                 : 0;
    KREQ_REPLY(req, DescribeClusterResponse, &resp);
}

void h_describe_quorum(broker *b, kreq *req) {
    DescribeQuorumRequest r;
    if (KREQ_DECODE(req, DescribeQuorumRequest, &r) < 0) return;
    DescribeQuorumResponse resp;
    DescribeQuorumResponse_init(&resp);
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, nt, resp.topics)) return kreq_fail(req, "out of memory");
    resp.topics_count = nt;
    int64_t leo = mstore_end_offset(b->store);
    int64_t now = wall_clock_ms();
    for (int i = 0; i < nt; i++) {
        DescribeQuorumResponse_TopicData *t = &resp.topics[i];
        DescribeQuorumResponse_TopicData_init(t);
        t->topic_name = r.topics[i].topic_name;
        int32_t np = r.topics[i].partitions_count > 0 ? r.topics[i].partitions_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, np, t->partitions)) return kreq_fail(req, "out of memory");
        t->partitions_count = np;
        for (int j = 0; j < np; j++) {
            DescribeQuorumResponse_PartitionData *p = &t->partitions[j];
            DescribeQuorumResponse_PartitionData_init(p);
            p->partition_index = r.topics[i].partitions[j].partition_index;
            if (!kstr_eq_c(t->topic_name, "__cluster_metadata") || p->partition_index != 0) {
                p->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            p->leader_id = broker_controller_id(b);
            p->leader_epoch = mstore_epoch(b->store);
            p->high_watermark = leo;
            if (!KREQ_ALLOC_ARRAY(req, 1, p->current_voters)) return kreq_fail(req, "out of memory");
            DescribeQuorumResponse_ReplicaState_init(p->current_voters);
            p->current_voters_count = 1;
            p->current_voters[0].replica_id = broker_controller_id(b);
            bool voter_is_self = broker_controller_id(b) == broker_node_id(b);
            p->current_voters[0].log_end_offset = voter_is_self ? leo : -1;
            p->current_voters[0].last_fetch_timestamp = voter_is_self ? now : -1;
            p->current_voters[0].last_caught_up_timestamp = voter_is_self ? now : -1;
            p->observers = NULL;
            p->observers_count = 0;
            if (!mstore_is_cluster(b->store)) continue;
            /* In a cluster the other brokers observe the metadata, as KRaft's
             * brokers do: how far each has applied is known only for this
             * node (-1 for the others, Kafka's "unknown"). */
            int nb = broker_live_nodes(b, NULL, 0);
            broker_node *nodes = karena_calloc(&req->arena, (size_t)(nb ? nb : 1), sizeof *nodes);
            if (!nodes || !KREQ_ALLOC_ARRAY(req, nb, p->observers)) return kreq_fail(req, "out of memory");
            nb = broker_live_nodes(b, nodes, nb);
            for (int k = 0; k < nb; k++) {
                if (nodes[k].id == p->leader_id) continue;
                DescribeQuorumResponse_ReplicaState *o = &p->observers[p->observers_count++];
                DescribeQuorumResponse_ReplicaState_init(o);
                bool self = nodes[k].id == broker_node_id(b);
                o->replica_id = nodes[k].id;
                o->log_end_offset = self ? leo : -1;
                o->last_fetch_timestamp = self ? now : -1;
                o->last_caught_up_timestamp = self ? now : -1;
            }
        }
    }
    KREQ_REPLY(req, DescribeQuorumResponse, &resp);
}

/* Kafka's ReplicaManager.getLogEndOffsetLag for a current (not future)
 * replica: how far its log end is behind its own high watermark, never
 * negative. A follower's high watermark comes from its leader, so it can
 * only exceed the log end offset briefly (after truncation). */
static int64_t replica_offset_lag(const partition *p) {
    int64_t lag = p->high_watermark - plog_end_offset(p->log);
    return lag > 0 ? lag : 0;
}

static bool partition_in_dir(const partition *p, const char *dir, size_t dl) {
    const char *pd = plog_dir(p->log);
    return strncmp(pd, dir, dl) == 0 && pd[dl] == '/';
}

static bool partition_requested(const DescribeLogDirsRequest_DescribableLogDirTopic *want, int32_t index) {
    for (int k = 0; k < want->partitions_count; k++)
        if (want->partitions[k] == index) return true;
    return false;
}

/* Describe the replicas (led or followed) this node holds in one log dir.
 * As Kafka's describeLogDirs, every topic with a replica in the dir is
 * listed, its partitions filtered to those the request asks about (all
 * when the request's topics are null). */
static int describe_dir(broker *b, const DescribeLogDirsRequest *r, const char *dir,
                        DescribeLogDirsResponse_DescribeLogDirsResult *o, karena *a) {
    int n = broker_topic_count(b);
    topic_rt **ts = karena_calloc(a, (size_t)(n ? n : 1), sizeof *ts);
    if (!ts || !(o->topics = karena_calloc(a, (size_t)(n > 0 ? n : 1), sizeof *o->topics))) return -1;
    broker_topics_list(b, ts, n);
    o->topics_count = 0;
    size_t dl = strlen(dir);
    for (int i = 0; i < n; i++) {
        topic_rt *t = ts[i];
        const DescribeLogDirsRequest_DescribableLogDirTopic *want = NULL;
        for (int k = 0; k < r->topics_count; k++)
            if (kstr_eq_c(r->topics[k].topic, t->name)) want = &r->topics[k];
        int held = 0;
        for (int p = 0; p < t->nparts; p++)
            if (t->parts[p] && partition_in_dir(t->parts[p], dir, dl)) held++;
        if (held == 0) continue;
        DescribeLogDirsResponse_DescribeLogDirsTopic *ot = &o->topics[o->topics_count++];
        DescribeLogDirsResponse_DescribeLogDirsTopic_init(ot);
        ot->name = kstr_from(t->name);
        if (!(ot->partitions = karena_calloc(a, (size_t)held, sizeof *ot->partitions))) return -1;
        ot->partitions_count = 0;
        for (int p = 0; p < t->nparts; p++) {
            partition *part = t->parts[p];
            if (!part || !partition_in_dir(part, dir, dl)) continue;
            if (r->topics_count >= 0 && (!want || !partition_requested(want, p))) continue;
            DescribeLogDirsResponse_DescribeLogDirsPartition *op = &ot->partitions[ot->partitions_count++];
            DescribeLogDirsResponse_DescribeLogDirsPartition_init(op);
            op->partition_index = p;
            op->partition_size = plog_size(part->log);
            op->offset_lag = replica_offset_lag(part);
            op->is_future_key = false;
        }
    }
    return 0;
}

/* Kafka names a log dir by Paths.get(dir).toAbsolutePath(): a relative
 * one resolved against the working directory, without a trailing '/'. */
static const char *absolute_path(const char *dir, karena *a) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    char cwd[4096];
    const char *abs;
    if (dir[0] == '/' || !getcwd(cwd, sizeof cwd)) abs = karena_strndup(a, dir, len);
    else abs = karena_sprintf(a, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd, (int)len, dir);
    return abs ? abs : dir;
}

void h_describe_log_dirs(broker *b, kreq *req) {
    DescribeLogDirsRequest r;
    if (KREQ_DECODE(req, DescribeLogDirsRequest, &r) < 0) return;
    karena *a = &req->arena;
    DescribeLogDirsResponse resp;
    DescribeLogDirsResponse_init(&resp);
    int nd = b->cfg.nlog_dirs;
    if (!authz_cluster(req, AZ_OP_DESCRIBE)) { /* KafkaApis: nothing without DESCRIBE on the cluster */
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.results_count = 0;
        KREQ_REPLY(req, DescribeLogDirsResponse, &resp);
        return;
    }
    if (!KREQ_ALLOC_ARRAY(req, nd, resp.results)) return kreq_fail(req, "out of memory");
    resp.results_count = nd;
    for (int d = 0; d < nd; d++) {
        DescribeLogDirsResponse_DescribeLogDirsResult *o = &resp.results[d];
        DescribeLogDirsResponse_DescribeLogDirsResult_init(o);
        o->log_dir = kstr_from(absolute_path(b->cfg.log_dirs[d], a));
        struct statvfs sv;
        if (statvfs(b->cfg.log_dirs[d], &sv) != 0) {
            /* An unreadable dir answers as Kafka's offline dir: the error, no replicas. */
            o->error_code = KERR_KAFKA_STORAGE_ERROR;
            o->total_bytes = o->usable_bytes = -1;
            continue;
        }
        o->total_bytes = (int64_t)sv.f_blocks * (int64_t)sv.f_frsize;
        o->usable_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
        if (describe_dir(b, &r, b->cfg.log_dirs[d], o, a) < 0) return kreq_fail(req, "out of memory");
    }
    KREQ_REPLY(req, DescribeLogDirsResponse, &resp);
}

void h_delete_records(broker *b, kreq *req) {
    DeleteRecordsRequest r;
    if (KREQ_DECODE(req, DeleteRecordsRequest, &r) < 0) return;
    DeleteRecordsResponse resp;
    DeleteRecordsResponse_init(&resp);
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, nt, resp.topics)) return kreq_fail(req, "out of memory");
    resp.topics_count = nt;
    for (int i = 0; i < nt; i++) {
        DeleteRecordsResponse_DeleteRecordsTopicResult *ot = &resp.topics[i];
        DeleteRecordsResponse_DeleteRecordsTopicResult_init(ot);
        ot->name = r.topics[i].name;
        topic_rt *t = broker_topic(b, r.topics[i].name);
        bool topic_ok = authz_allowed_k(req, AZ_OP_DELETE, AZ_RES_TOPIC, r.topics[i].name); /* KafkaApis */
        int32_t np = r.topics[i].partitions_count > 0 ? r.topics[i].partitions_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, np, ot->partitions)) return kreq_fail(req, "out of memory");
        ot->partitions_count = np;
        for (int j = 0; j < np; j++) {
            const DeleteRecordsRequest_DeleteRecordsPartition *ip = &r.topics[i].partitions[j];
            DeleteRecordsResponse_DeleteRecordsPartitionResult *op = &ot->partitions[j];
            DeleteRecordsResponse_DeleteRecordsPartitionResult_init(op);
            op->partition_index = ip->partition_index;
            op->low_watermark = -1;
            int16_t perr = KERR_TOPIC_AUTHORIZATION_FAILED;
            partition *p = topic_ok ? broker_partition_led(b, t, ip->partition_index, &perr) : NULL;
            if (!p) {
                op->error_code = perr;
                continue;
            }
            /* ReplicaManager.deleteRecordsOnLocalLog: "Cannot delete records of internal topic" */
            if (topic_is_internal(t->name)) {
                op->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            if (strstr(t->cfg.cleanup_policy, "delete") == NULL) {
                op->error_code = KERR_POLICY_VIOLATION;
                continue;
            }
            int64_t off = ip->offset == -1 ? p->high_watermark : ip->offset;
            if (off < 0 || off > p->high_watermark) {
                op->error_code = KERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (off > plog_start_offset(p->log) && plog_delete_records(p->log, off) != 0) {
                op->error_code = KERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            part_txn_log_start_moved(p); /* producer state and snapshots follow */
            op->low_watermark = plog_start_offset(p->log);
        }
    }
    topics_write_checkpoints(b);
    KREQ_REPLY(req, DeleteRecordsResponse, &resp);
}

void h_update_features(broker *b, kreq *req) {
    UpdateFeaturesRequest r;
    if (KREQ_DECODE(req, UpdateFeaturesRequest, &r) < 0) return;
    karena *a = &req->arena;
    UpdateFeaturesResponse resp;
    UpdateFeaturesResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    if (!authz_cluster(req, AZ_OP_ALTER)) { /* KafkaApis: ALTER on the cluster, no per-feature results */
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
        resp.results_count = 0;
        KREQ_REPLY(req, UpdateFeaturesResponse, &resp);
        return;
    }
    int32_t n = r.feature_updates_count > 0 ? r.feature_updates_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, n, resp.results)) return kreq_fail(req, "out of memory");
    resp.results_count = n;
    for (int i = 0; i < n; i++) {
        const UpdateFeaturesRequest_FeatureUpdateKey *u = &r.feature_updates[i];
        UpdateFeaturesResponse_UpdatableFeatureResult *o = &resp.results[i];
        UpdateFeaturesResponse_UpdatableFeatureResult_init(o);
        o->feature = u->feature;
        o->error_message = KSTR_NULL;
        if (!kstr_eq_c(u->feature, "metadata.version")) {
            o->error_code = KERR_INVALID_UPDATE_VERSION;
            o->error_message = kstr_from(karena_sprintf(a, "Invalid update version %d for feature %.*s. The controller "
                "does not support the given feature.", u->max_version_level, u->feature.len, u->feature.p));
            continue;
        }
        if (u->max_version_level == b->image->metadata_version) continue; /* no change */
        if (u->max_version_level > METADATA_VERSION_LEVEL || u->max_version_level < 1) {
            o->error_code = KERR_INVALID_UPDATE_VERSION;
            o->error_message = kstr_from(karena_sprintf(a, "Invalid update version %d for feature metadata.version. "
                "Local controller %d only supports versions 1-%d", u->max_version_level, b->cfg.node_id,
                METADATA_VERSION_LEVEL));
            continue;
        }
        /* Downgrades of metadata.version need a metadata rewrite Kafka 3.6 does not do either. */
        o->error_code = KERR_INVALID_UPDATE_VERSION;
        o->error_message = kstr_from(karena_sprintf(a, "Invalid metadata.version %d. Refusing to perform the "
            "requested downgrade because it might delete metadata information.", u->max_version_level));
    }
    KREQ_REPLY(req, UpdateFeaturesResponse, &resp);
}

/* Producer ids are handed out in blocks recorded in the metadata log
 * (ProducerIdsRecord), so ids never repeat across restarts. */
#define PRODUCER_ID_BLOCK 1000
#define PRODUCER_ID_TRIES 10
/* This node's current block of producer ids, taken from the metadata store
 * (ProducerIdsRecord) so ids never repeat across restarts or nodes. */
static int64_t next_pid = -1, block_end = -1;
/* Requests waiting for a block (linked through kreq.next_waiting). */
static kreq *pid_waiters;
static bool pid_allocating;
static int64_t pid_block_start;
static int pid_tries;

static void answer_init_producer_id(kreq *req, int16_t error) {
    InitProducerIdResponse resp;
    InitProducerIdResponse_init(&resp);
    resp.error_code = error;
    resp.producer_id = error ? -1 : next_pid++;
    resp.producer_epoch = error ? -1 : 0;
    KREQ_REPLY(req, InitProducerIdResponse, &resp);
}

static void allocate_pid_block(broker *b);

/* Serve waiters from the block, oldest first; a new block when it runs out. */
static void serve_pid_waiters(broker *b, int16_t error) {
    while (pid_waiters && (error || next_pid < block_end)) {
        kreq *req = pid_waiters;
        pid_waiters = req->next_waiting;
        answer_init_producer_id(req, error);
    }
    if (pid_waiters) allocate_pid_block(b);
}

static void pid_block_committed(broker *b, void *arg, mstore_status st) {
    (void)arg;
    pid_allocating = false;
    if (st == MSTORE_OK) {
        next_pid = pid_block_start;
        block_end = pid_block_start + PRODUCER_ID_BLOCK;
        pid_tries = 0;
        serve_pid_waiters(b, KERR_NONE);
    } else if (st == MSTORE_CONFLICT && ++pid_tries < PRODUCER_ID_TRIES) {
        allocate_pid_block(b); /* another node took that block: the image now shows the next one */
    } else {
        pid_tries = 0;
        serve_pid_waiters(b, st == MSTORE_CONFLICT ? KERR_COORDINATOR_LOAD_IN_PROGRESS : mstore_status_error(st));
    }
}

static void allocate_pid_block(broker *b) {
    if (pid_allocating) return;
    pid_allocating = true;
    pid_block_start = b->image->next_producer_id;
    ProducerIdsRecord pr;
    ProducerIdsRecord_init(&pr);
    pr.broker_id = b->cfg.node_id;
    pr.broker_epoch = 1;
    pr.next_producer_id = pid_block_start + PRODUCER_ID_BLOCK;
    mrecord rec = {KMETA_PRODUCER_IDS_RECORD, 0, &pr};
    mstore_commit(b->store, &rec, 1, 0, pid_block_committed, NULL);
}

int16_t broker_take_producer_id(broker *b, int64_t *out) {
    if (next_pid >= 0 && next_pid < block_end) {
        *out = next_pid++;
        return KERR_NONE;
    }
    allocate_pid_block(b); /* the client retries once it is there */
    return KERR_COORDINATOR_LOAD_IN_PROGRESS;
}

void broker_prefetch_producer_ids(broker *b) {
    if (!(next_pid >= 0 && next_pid < block_end)) allocate_pid_block(b);
}

/* The transaction coordinator's answer (KafkaApis' sendResponseCallback). */
static void txn_init_answered(void *arg, int16_t err, int64_t producer_id, int16_t producer_epoch) {
    kreq *req = arg;
    InitProducerIdResponse resp;
    InitProducerIdResponse_init(&resp);
    /* clients before v4 do not know PRODUCER_FENCED */
    resp.error_code = req->api_version < 4 && err == KERR_PRODUCER_FENCED ? KERR_INVALID_PRODUCER_EPOCH : err;
    resp.producer_id = producer_id;
    resp.producer_epoch = producer_epoch;
    KREQ_REPLY(req, InitProducerIdResponse, &resp);
}

void h_init_producer_id(broker *b, kreq *req) {
    InitProducerIdRequest r;
    if (KREQ_DECODE(req, InitProducerIdRequest, &r) < 0) return;
    /* KafkaApis: WRITE on the transactional id; an idempotent producer needs
     * IDEMPOTENT_WRITE on the cluster or WRITE on some topic */
    if (r.transactional_id.len >= 0 && !authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, r.transactional_id))
        return txn_init_answered(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
    if (r.transactional_id.len < 0 &&
        !authz_allowed_quiet(req, AZ_OP_IDEMPOTENT_WRITE, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME)) &&
        !authz_any(req, AZ_OP_WRITE, AZ_RES_TOPIC))
        return txn_init_answered(req, KERR_CLUSTER_AUTHORIZATION_FAILED, -1, -1);
    if (r.transactional_id.len >= 0) {
        bool no_pid = r.producer_id == -1, no_epoch = r.producer_epoch == -1;
        if (no_pid != no_epoch || !b->txns)
            return txn_init_answered(req, b->txns ? KERR_INVALID_REQUEST : KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        txn_mgr_init_producer_id(b->txns, r.transactional_id.p, (size_t)r.transactional_id.len,
                                 r.transaction_timeout_ms, r.producer_id, r.producer_epoch, txn_init_answered, req);
        return;
    }
    if (next_pid >= 0 && next_pid < block_end && !pid_waiters) {
        answer_init_producer_id(req, KERR_NONE);
        return;
    }
    /* queue behind earlier waiters, keeping their order */
    req->next_waiting = NULL;
    kreq **tail = &pid_waiters;
    while (*tail) tail = &(*tail)->next_waiting;
    *tail = req;
    allocate_pid_block(b);
}

void h_alter_replica_log_dirs(broker *b, kreq *req) {
    AlterReplicaLogDirsRequest r;
    if (KREQ_DECODE(req, AlterReplicaLogDirsRequest, &r) < 0) return;
    karena *a = &req->arena;
    AlterReplicaLogDirsResponse resp;
    AlterReplicaLogDirsResponse_init(&resp);
    int total = 0;
    for (int i = 0; i < r.dirs_count; i++) total += r.dirs[i].topics_count > 0 ? r.dirs[i].topics_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, total, resp.results)) return kreq_fail(req, "out of memory");
    bool cluster_ok = authz_cluster(req, AZ_OP_ALTER); /* KafkaApis: ALTER on the cluster */
    for (int i = 0; i < r.dirs_count; i++) {
        const AlterReplicaLogDirsRequest_AlterReplicaLogDir *d = &r.dirs[i];
        char *path = kstr_dup(d->path, a);
        bool known = false;
        for (int k = 0; k < b->cfg.nlog_dirs; k++)
            if (path && strcmp(path, b->cfg.log_dirs[k]) == 0) known = true;
        for (int j = 0; j < d->topics_count; j++) {
            const AlterReplicaLogDirsRequest_AlterReplicaLogDirTopic *t = &d->topics[j];
            AlterReplicaLogDirsResponse_AlterReplicaLogDirTopicResult *o = &resp.results[resp.results_count++];
            AlterReplicaLogDirsResponse_AlterReplicaLogDirTopicResult_init(o);
            o->topic_name = t->name;
            topic_rt *rt = broker_topic(b, t->name);
            int np = t->partitions_count > 0 ? t->partitions_count : 0;
            if (!KREQ_ALLOC_ARRAY(req, np, o->partitions)) return kreq_fail(req, "out of memory");
            o->partitions_count = np;
            for (int k = 0; k < np; k++) {
                AlterReplicaLogDirsResponse_AlterReplicaLogDirPartitionResult *op = &o->partitions[k];
                AlterReplicaLogDirsResponse_AlterReplicaLogDirPartitionResult_init(op);
                op->partition_index = t->partitions[k];
                partition *p = (rt && op->partition_index >= 0 && op->partition_index < rt->nparts)
                                   ? rt->parts[op->partition_index] : NULL;
                if (!cluster_ok) op->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
                else if (!known) op->error_code = KERR_LOG_DIR_NOT_FOUND;
                else if (!p) op->error_code = KERR_REPLICA_NOT_AVAILABLE;
                else {
                    size_t pl = strlen(path);
                    const char *pd = plog_dir(p->log);
                    /* Moving a replica between dirs is not implemented: only "stay" succeeds. */
                    op->error_code = (strncmp(pd, path, pl) == 0 && pd[pl] == '/') ? KERR_NONE
                                                                                   : KERR_KAFKA_STORAGE_ERROR;
                }
            }
        }
    }
    KREQ_REPLY(req, AlterReplicaLogDirsResponse, &resp);
}

void h_unregister_broker(broker *b, kreq *req) {
    UnregisterBrokerRequest r;
    if (KREQ_DECODE(req, UnregisterBrokerRequest, &r) < 0) return;
    UnregisterBrokerResponse resp;
    UnregisterBrokerResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    if (r.broker_id != b->cfg.node_id) {
        resp.error_code = KERR_BROKER_ID_NOT_REGISTERED;
        resp.error_message = kstr_from(karena_sprintf(&req->arena, "Broker ID %d is not currently registered", r.broker_id));
    } else {
        resp.error_code = KERR_INVALID_REQUEST;
        resp.error_message = kstr_from("Cannot unregister the only, active broker of this cluster.");
    }
    KREQ_REPLY(req, UnregisterBrokerResponse, &resp);
}

void h_describe_producers(broker *b, kreq *req) {
    DescribeProducersRequest r;
    if (KREQ_DECODE(req, DescribeProducersRequest, &r) < 0) return;
    DescribeProducersResponse resp;
    DescribeProducersResponse_init(&resp);
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, nt, resp.topics)) return kreq_fail(req, "out of memory");
    resp.topics_count = nt;
    for (int i = 0; i < nt; i++) {
        DescribeProducersResponse_TopicResponse *o = &resp.topics[i];
        DescribeProducersResponse_TopicResponse_init(o);
        o->name = r.topics[i].name;
        topic_rt *t = broker_topic(b, r.topics[i].name);
        bool topic_ok = authz_allowed_k(req, AZ_OP_READ, AZ_RES_TOPIC, r.topics[i].name); /* KafkaApis */
        int np = r.topics[i].partition_indexes_count > 0 ? r.topics[i].partition_indexes_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, np, o->partitions)) return kreq_fail(req, "out of memory");
        o->partitions_count = np;
        for (int j = 0; j < np; j++) {
            DescribeProducersResponse_PartitionResponse *op = &o->partitions[j];
            DescribeProducersResponse_PartitionResponse_init(op);
            op->partition_index = r.topics[i].partition_indexes[j];
            op->error_message = KSTR_NULL;
            op->active_producers = NULL;
            op->active_producers_count = 0;
            /* ReplicaManager.activeProducerState: any replica hosted here
             * answers (a follower too: kafka-transactions --broker-id);
             * a partition not hosted here is NOT_LEADER_OR_FOLLOWER. */
            const partition *hosted = t && op->partition_index >= 0 && op->partition_index < t->nparts
                                          ? t->parts[op->partition_index] : NULL;
            if (!topic_ok) {
                op->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!hosted) {
                op->error_code = t && op->partition_index >= 0 && op->partition_index < t->nparts
                                     ? KERR_NOT_LEADER_OR_FOLLOWER : KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            const pstate *ps = hosted->producers;
            int n = ps ? pstate_producer_count(ps) : 0;
            if (!KREQ_ALLOC_ARRAY(req, n, op->active_producers)) return kreq_fail(req, "out of memory");
            for (int k = 0; k < n; k++) {
                pstate_info pi;
                if (pstate_producer_at(ps, k, &pi) != 0) break;
                DescribeProducersResponse_ProducerState *o2 = &op->active_producers[op->active_producers_count++];
                DescribeProducersResponse_ProducerState_init(o2);
                o2->producer_id = pi.producer_id;
                o2->producer_epoch = pi.epoch;
                o2->last_sequence = pi.last_sequence;
                o2->last_timestamp = pi.last_timestamp;
                o2->coordinator_epoch = pi.coordinator_epoch;
                o2->current_txn_start_offset = pi.current_txn_start_offset;
            }
        }
    }
    KREQ_REPLY(req, DescribeProducersResponse, &resp);
}
