/* h_reassign.c - AlterPartitionReassignments v0 and ListPartitionReassignments
 * v0 (kafka-reassign-partitions.sh, the admin client's
 * alterPartitionReassignments / listPartitionReassignments), as Kafka
 * 3.6.1's KRaft controller answers them (ReplicationControlManager).
 *
 * Alter: per partition a decision of controller/reassign.c (start, change
 * or cancel a reassignment, or an error with Kafka's message); the
 * PartitionChangeRecords are committed through the metadata store, up to
 * 50 topics per commit (etcd's transaction limit; Kafka's controller
 * writes one atomic batch), recomputed from the newer image on a
 * compare-and-set conflict, and the request is answered once they are
 * applied. Completion (the second record) is the controller's, once the
 * new replicas are in the ISR (etcd_store.c's run_controller).
 * List: the partitions of the image with adding or removing replicas.
 */
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "controller/reassign.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define TOPICS_PER_COMMIT 50   /* two etcd operations per topic, 128 per transaction */
#define CONFLICT_RETRIES 3
#define COMPONENT "org.apache.kafka.controller.ReplicationControlManager"

/* One partition of the request, until its change is committed. */
typedef struct reassign_item {
    kstr topic;
    const AlterPartitionReassignmentsRequest_ReassignablePartition *target;
    AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *result;
} reassign_item;

typedef struct reassign_commit {
    broker *b;
    kreq *req;
    req_changes *rc;
    reassign_item *items;
    int nitems;
    int attempts;
} reassign_commit;

REQ_CHANGES_REPLY(reply_alter, AlterPartitionReassignmentsResponse)

static void commit_items(reassign_commit *c);

/* ApiError: NONE carries no message. */
static void set_result(AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *pr, int16_t code,
                       const char *msg) {
    pr->error_code = code;
    pr->error_message = code == KERR_NONE ? KSTR_NULL : kstr_from(msg ? msg : kerr_message(code));
}

static int16_t decide(broker *b, const reassign_item *it, PartitionChangeRecord **rec, const char **msg,
                      karena *a) {
    topic_rt *t = broker_topic(b, it->topic);
    bool unclean = t ? t->cfg.unclean_leader_election_enable : false;
    const AlterPartitionReassignmentsRequest_ReassignablePartition *p = it->target;
    return rsg_alter(b->image, it->topic, p->partition_index, p->replicas_count >= 0 ? p->replicas : NULL,
                     p->replicas_count, unclean, rec, msg, a);
}

static void alter_committed(broker *b, void *arg, mstore_status st) {
    reassign_commit *c = arg;
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

/* A partition named twice changes as its last entry says. */
static bool named_later(const reassign_commit *c, int i) {
    for (int k = i + 1; k < c->nitems; k++)
        if (c->items[k].target->partition_index == c->items[i].target->partition_index &&
            kstr_eq(c->items[k].topic, c->items[i].topic))
            return true;
    return false;
}

static void commit_items(reassign_commit *c) {
    karena *a = &c->req->arena;
    mrecord *recs = karena_calloc(a, (size_t)(c->nitems ? c->nitems : 1), sizeof *recs);
    if (!recs) {
        alter_committed(c->b, c, MSTORE_IO);
        return;
    }
    int n = 0, ok = 0;
    for (int i = 0; i < c->nitems; i++) {
        PartitionChangeRecord *r;
        const char *msg;
        const reassign_item *it = &c->items[i];
        int16_t ec = decide(c->b, it, &r, &msg, a);
        set_result(it->result, ec, msg);
        if (ec != KERR_NONE)
            log_info(COMPONENT, "Unable to alter partition reassignment for %.*s:%d because of an %s error: %s",
                     it->topic.len, it->topic.p, it->target->partition_index, kerr_name(ec), msg ? msg : "");
        else ok++;
        if (r && !named_later(c, i)) recs[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
    }
    if (c->attempts == 0)
        log_info(COMPONENT, "Successfully altered %d out of %d partition reassignment(s).", ok, c->nitems);
    if (n == 0) {
        req_changes_done(c->b, c->rc);
        return;
    }
    mstore_commit(c->b->store, recs, n, 0, alter_committed, c);
}

void h_alter_partition_reassignments(broker *b, kreq *req) {
    AlterPartitionReassignmentsRequest r;
    if (KREQ_DECODE(req, AlterPartitionReassignmentsRequest, &r) < 0) return;
    karena *a = &req->arena;
    AlterPartitionReassignmentsResponse *resp = karena_alloc(a, sizeof *resp);
    req_changes *rc = resp ? req_changes_begin(req, reply_alter, resp) : NULL;
    if (!rc) return kreq_fail(req, "out of memory");
    AlterPartitionReassignmentsResponse_init(resp);
    resp->error_message = KSTR_NULL;
    if (!authz_cluster(req, AZ_OP_ALTER)) { /* KafkaApis: ALTER on the cluster */
        resp->error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp->error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
        resp->responses_count = 0;
        req_changes_done(b, rc);
        return;
    }
    int32_t nt = r.topics_count > 0 ? r.topics_count : 0;
    int total = 0;
    for (int i = 0; i < nt; i++) total += r.topics[i].partitions_count > 0 ? r.topics[i].partitions_count : 0;
    reassign_item *items = karena_calloc(a, (size_t)(total ? total : 1), sizeof *items);
    if (!items || !KREQ_ALLOC_ARRAY(req, nt, resp->responses)) return kreq_fail(req, "out of memory");
    resp->responses_count = nt;
    int n = 0;
    for (int i = 0; i < nt; i++) {
        AlterPartitionReassignmentsResponse_ReassignableTopicResponse *o = &resp->responses[i];
        AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(o);
        o->name = r.topics[i].name;
        int np = r.topics[i].partitions_count > 0 ? r.topics[i].partitions_count : 0;
        if (!KREQ_ALLOC_ARRAY(req, np, o->partitions)) return kreq_fail(req, "out of memory");
        o->partitions_count = np;
        for (int j = 0; j < np; j++) {
            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *op = &o->partitions[j];
            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(op);
            op->partition_index = r.topics[i].partitions[j].partition_index;
            op->error_message = KSTR_NULL;
            items[n++] = (reassign_item){r.topics[i].name, &r.topics[i].partitions[j], op};
        }
    }
    /* commits of up to TOPICS_PER_COMMIT topics each */
    int i = 0;
    while (i < n) {
        int start = i, topics = 0;
        for (; i < n; i++) {
            bool new_topic = i == start || !kstr_eq(items[i].topic, items[i - 1].topic);
            if (new_topic && topics == TOPICS_PER_COMMIT) break;
            if (new_topic) topics++;
        }
        reassign_commit *c = karena_alloc(a, sizeof *c);
        if (!c) {
            for (int k = start; k < n; k++) set_result(items[k].result, KERR_UNKNOWN_SERVER_ERROR, NULL);
            break;
        }
        *c = (reassign_commit){b, req, rc, &items[start], i - start, 0};
        req_changes_add(rc);
        commit_items(c);
    }
    req_changes_done(b, rc);
}

/* ---- ListPartitionReassignments ---- */

static void fill_ongoing(ListPartitionReassignmentsResponse_OngoingPartitionReassignment *o, const mpartition *p) {
    ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init(o);
    o->partition_index = p->partition_id;
    o->replicas = p->replicas;
    o->replicas_count = p->nreplicas;
    o->adding_replicas = p->adding;
    o->adding_replicas_count = p->nadding;
    o->removing_replicas = p->removing;
    o->removing_replicas_count = p->nremoving;
}

/* The reassigning partitions of t among ids (NULL: all); false on no memory. */
static bool list_topic(kreq *req, ListPartitionReassignmentsResponse *resp, const mtopic *t, const int32_t *ids,
                       int nids) {
    int cap = ids ? nids : t->nparts;
    ListPartitionReassignmentsResponse_OngoingTopicReassignment *o = &resp->topics[resp->topics_count];
    ListPartitionReassignmentsResponse_OngoingTopicReassignment_init(o);
    o->name = kstr_from(t->name);
    if (!KREQ_ALLOC_ARRAY(req, cap, o->partitions)) return false;
    o->partitions_count = 0;
    for (int i = 0; i < cap; i++) {
        int32_t id = ids ? ids[i] : i;
        if (id < 0 || id >= t->nparts || !rsg_in_progress(&t->parts[id])) continue;
        fill_ongoing(&o->partitions[o->partitions_count++], &t->parts[id]);
    }
    if (o->partitions_count > 0) resp->topics_count++;
    return true;
}

void h_list_partition_reassignments(broker *b, kreq *req) {
    ListPartitionReassignmentsRequest r;
    if (KREQ_DECODE(req, ListPartitionReassignmentsRequest, &r) < 0) return;
    ListPartitionReassignmentsResponse resp;
    ListPartitionReassignmentsResponse_init(&resp);
    resp.error_message = KSTR_NULL;
    if (!authz_cluster(req, AZ_OP_DESCRIBE)) { /* KafkaApis: DESCRIBE on the cluster */
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = kstr_from(kerr_message(KERR_CLUSTER_AUTHORIZATION_FAILED));
        resp.topics_count = 0;
        KREQ_REPLY(req, ListPartitionReassignmentsResponse, &resp);
        return;
    }
    const mimage *img = b->image;
    int cap = r.topics_count >= 0 ? r.topics_count : img->ntopics;
    if (!KREQ_ALLOC_ARRAY(req, cap, resp.topics)) return kreq_fail(req, "out of memory");
    resp.topics_count = 0;
    for (int i = 0; i < cap; i++) {
        const mtopic *t = r.topics_count >= 0 ? mimage_topic(img, r.topics[i].name) : img->topics[i];
        if (!t) continue; /* unknown topics are left out */
        const int32_t *ids = r.topics_count >= 0 ? r.topics[i].partition_indexes : NULL;
        int nids = r.topics_count >= 0 ? r.topics[i].partition_indexes_count : 0;
        if (!list_topic(req, &resp, t, ids, nids > 0 ? nids : 0)) return kreq_fail(req, "out of memory");
    }
    KREQ_REPLY(req, ListPartitionReassignmentsResponse, &resp);
}
