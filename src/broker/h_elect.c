/* h_elect.c - ElectLeaders v0-2 (kafka-leader-election.sh, the admin
 * client's electLeaders), as Kafka 3.6.1's KRaft controller answers it
 * (ReplicationControlManager.electLeaders): per partition a preferred or an
 * unclean election (controller/controller.c: ctl_elect_leader), the
 * resulting PartitionChangeRecords committed through the metadata store,
 * and the answer sent once they are applied.
 *
 * Any node may commit: the store's compare-and-set on the topic refuses a
 * change computed from an image that has moved on; such a conflict is
 * recomputed from the newer image a few times before it is reported.
 */
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "controller/controller.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#define TOPICS_PER_COMMIT 50   /* two etcd operations per topic, 128 per transaction */
#define RECORDS_PER_COMMIT 1000
#define CONFLICT_RETRIES 3

/* One partition whose election produced a change, until it is committed. */
typedef struct elect_item {
    kstr topic;
    int32_t partition;
    ElectLeadersResponse_PartitionResult *result;
} elect_item;

/* One commit of up to TOPICS_PER_COMMIT topics' changes. */
typedef struct elect_commit {
    broker *b;
    kreq *req;
    req_changes *rc;
    int8_t election_type;
    elect_item *items;
    int nitems;
    int attempts;
} elect_commit;

REQ_CHANGES_REPLY(reply_elect_leaders, ElectLeadersResponse)

static void commit_items(elect_commit *c);

/* Kafka's messages: ApiError(error) carries the error's default message,
 * ApiError.NONE none. */
static void set_result(ElectLeadersResponse_PartitionResult *pr, int16_t code, const char *msg) {
    pr->error_code = code;
    pr->error_message = code == KERR_NONE ? KSTR_NULL : kstr_from(msg ? msg : kerr_message(code));
}

/* ReplicationControlManager.electLeader; *rec set when a change is needed. */
static int16_t elect_one(broker *b, kstr topic, int32_t partition, int8_t type, PartitionChangeRecord **rec,
                         const char **msg, karena *a) {
    *rec = NULL;
    *msg = NULL;
    const mtopic *t = mimage_topic(b->image, topic);
    if (!t) {
        *msg = karena_sprintf(a, "No such topic as %.*s", topic.len, topic.p);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (partition < 0 || partition >= t->nparts) {
        *msg = karena_sprintf(a, "No such partition as %.*s-%d", topic.len, topic.p, partition);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    return ctl_elect_leader(b->image, t, &t->parts[partition], type, rec, a);
}

static void elect_committed(broker *b, void *arg, mstore_status st) {
    elect_commit *c = arg;
    if (st == MSTORE_CONFLICT && ++c->attempts < CONFLICT_RETRIES) {
        commit_items(c); /* the image has moved on: decide again from it */
        return;
    }
    if (st != MSTORE_OK)
        for (int i = 0; i < c->nitems; i++)
            if (c->items[i].result->error_code == KERR_NONE)
                set_result(c->items[i].result, mstore_status_error(st), NULL);
    req_changes_done(b, c->rc);
}

/* A partition named twice in a request is changed once. */
static bool named_before(const elect_commit *c, int i) {
    for (int k = 0; k < i; k++)
        if (c->items[k].partition == c->items[i].partition && kstr_eq(c->items[k].topic, c->items[i].topic))
            return true;
    return false;
}

/* Decide each item's election on the current image and commit the changes
 * in one go; items that need none by now get that answer instead. */
static void commit_items(elect_commit *c) {
    karena *a = &c->req->arena;
    mrecord *recs = karena_calloc(a, (size_t)(c->nitems ? c->nitems : 1), sizeof *recs);
    if (!recs) {
        elect_committed(c->b, c, MSTORE_IO);
        return;
    }
    int n = 0;
    for (int i = 0; i < c->nitems; i++) {
        PartitionChangeRecord *r;
        const char *msg;
        int16_t ec = elect_one(c->b, c->items[i].topic, c->items[i].partition, c->election_type, &r, &msg, a);
        set_result(c->items[i].result, ec, msg);
        if (r && !named_before(c, i)) recs[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
    }
    if (n == 0) {
        req_changes_done(c->b, c->rc);
        return;
    }
    mstore_commit(c->b->store, recs, n, 0, elect_committed, c);
}

/* Kafka's ElectLeadersRequest.getErrorResponse: the error at the top
 * (v1+) and on every partition named. */
static void reply_error(kreq *req, const ElectLeadersRequest *r, int16_t code, const char *msg) {
    ElectLeadersResponse resp;
    ElectLeadersResponse_init(&resp);
    resp.error_code = code;
    int n = r->topic_partitions_count > 0 ? r->topic_partitions_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, n, resp.replica_election_results)) return kreq_fail(req, "out of memory");
    resp.replica_election_results_count = n;
    for (int i = 0; i < n; i++) {
        ElectLeadersResponse_ReplicaElectionResult *o = &resp.replica_election_results[i];
        ElectLeadersResponse_ReplicaElectionResult_init(o);
        o->topic = r->topic_partitions[i].topic;
        int np = r->topic_partitions[i].partitions_count > 0 ? r->topic_partitions[i].partitions_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, np, o->partition_result)) return kreq_fail(req, "out of memory");
        o->partition_result_count = np;
        for (int j = 0; j < np; j++) {
            ElectLeadersResponse_PartitionResult_init(&o->partition_result[j]);
            o->partition_result[j].partition_id = r->topic_partitions[i].partitions[j];
            set_result(&o->partition_result[j], code, msg);
        }
    }
    KREQ_REPLY(req, ElectLeadersResponse, &resp);
}

/* Builds the answer and the list of partitions needing a change. */
typedef struct elect_plan {
    elect_item *items;
    int nitems, cap;
} elect_plan;

static int plan_add(elect_plan *pl, kstr topic, int32_t partition, ElectLeadersResponse_PartitionResult *pr,
                    karena *a) {
    if (pl->nitems == pl->cap) {
        int nc = pl->cap ? pl->cap * 2 : 64;
        elect_item *ni = karena_calloc(a, (size_t)nc, sizeof *ni);
        if (!ni) return -1;
        if (pl->nitems) memcpy(ni, pl->items, sizeof *ni * (size_t)pl->nitems);
        pl->items = ni;
        pl->cap = nc;
    }
    pl->items[pl->nitems++] = (elect_item){topic, partition, pr};
    return 0;
}

/* Topic-sized groups of items, each its own commit. */
static void start_commits(broker *b, kreq *req, req_changes *rc, int8_t type, const elect_plan *pl) {
    int i = 0;
    while (i < pl->nitems) {
        int start = i, topics = 0;
        for (; i < pl->nitems && i - start < RECORDS_PER_COMMIT; i++) {
            bool new_topic = i == start || !kstr_eq(pl->items[i].topic, pl->items[i - 1].topic);
            if (new_topic && topics == TOPICS_PER_COMMIT) break;
            if (new_topic) topics++;
        }
        elect_commit *c = karena_alloc(&req->arena, sizeof *c);
        if (!c) {
            for (int k = start; k < pl->nitems; k++) set_result(pl->items[k].result, KERR_UNKNOWN_SERVER_ERROR, NULL);
            return;
        }
        *c = (elect_commit){b, req, rc, type, &pl->items[start], i - start, 0};
        req_changes_add(rc);
        commit_items(c);
    }
}

void h_elect_leaders(broker *b, kreq *req) {
    ElectLeadersRequest r;
    if (KREQ_DECODE(req, ElectLeadersRequest, &r) < 0) return;
    karena *a = &req->arena;
    int8_t type = req->api_version >= 1 ? r.election_type : CTL_ELECTION_PREFERRED;
    if (!authz_cluster(req, AZ_OP_ALTER)) /* KafkaApis: ALTER on the cluster */
        return reply_error(req, &r, KERR_CLUSTER_AUTHORIZATION_FAILED, kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
    if (type != CTL_ELECTION_PREFERRED && type != CTL_ELECTION_UNCLEAN)
        return reply_error(req, &r, KERR_INVALID_REQUEST, karena_sprintf(a, "Unknown election type %d", type));
    ElectLeadersResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_elect_leaders, respp) : NULL;
    if (!rc) return kreq_fail(req, "out of memory");
    ElectLeadersResponse_init(respp);
    elect_plan pl = {0};
    bool all = r.topic_partitions_count < 0;
    const mimage *img = b->image;
    int nt = all ? img->ntopics : r.topic_partitions_count;
    if (!KREQ_ALLOC_ARRAY(req, nt, respp->replica_election_results)) return kreq_fail(req, "out of memory");
    respp->replica_election_results_count = nt;
    for (int i = 0; i < nt; i++) {
        ElectLeadersResponse_ReplicaElectionResult *o = &respp->replica_election_results[i];
        ElectLeadersResponse_ReplicaElectionResult_init(o);
        /* null topics: every partition, leaving out those that need no election */
        /* names copied: a conflict is retried after the image may have changed */
        const char *name = all ? karena_strndup(a, img->topics[i]->name, strlen(img->topics[i]->name)) : NULL;
        if (all && !name) return kreq_fail(req, "out of memory");
        o->topic = all ? kstr_from(name) : r.topic_partitions[i].topic;
        int np = all ? img->topics[i]->nparts : r.topic_partitions[i].partitions_count;
        if (np < 0) np = 0;
        if (!KREQ_ALLOC_ARRAY(req, np, o->partition_result)) return kreq_fail(req, "out of memory");
        int kept = 0;
        for (int j = 0; j < np; j++) {
            ElectLeadersResponse_PartitionResult *pr = &o->partition_result[kept];
            ElectLeadersResponse_PartitionResult_init(pr);
            pr->partition_id = all ? img->topics[i]->parts[j].partition_id : r.topic_partitions[i].partitions[j];
            PartitionChangeRecord *rec;
            const char *msg;
            int16_t ec = elect_one(b, o->topic, pr->partition_id, type, &rec, &msg, a);
            if (all && ec == KERR_ELECTION_NOT_NEEDED) continue;
            set_result(pr, ec, msg);
            kept++;
            if (rec && plan_add(&pl, o->topic, pr->partition_id, pr, a) != 0) return kreq_fail(req, "out of memory");
        }
        o->partition_result_count = kept;
    }
    start_commits(b, req, rc, type, &pl);
    req_changes_done(b, rc);
}
