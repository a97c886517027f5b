/* h_metadata.c - Metadata v0-12: brokers, cluster id, controller, topics
 * and partitions, with auto topic creation as Kafka's default allows. */
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/topics.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* Without an authorizer Kafka reports every operation as allowed. */
#define TOPIC_ALL_OPERATIONS 3576   /* READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS */
#define CLUSTER_ALL_OPERATIONS 8096 /* CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE */

bool topic_is_internal(const char *name) {
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

/* Replicas of ids that are not alive, for offline_replicas. */
static int32_t *offline_of(broker *b, const int32_t *ids, int32_t n, int32_t *count, karena *a) {
    int32_t *out = karena_calloc(a, (size_t)(n ? n : 1), sizeof(int32_t));
    *count = 0;
    for (int i = 0; out && i < n; i++)
        if (!mimage_broker_alive(b->image, ids[i])) out[(*count)++] = ids[i];
    return out;
}

static void fill_topic(broker *b, kreq *req, topic_rt *t, MetadataResponse_MetadataResponseTopic *o, bool want_ops,
                       karena *a) {
    o->error_code = KERR_NONE;
    o->name = kstr_from(t->name);
    o->topic_id = t->id;
    o->is_internal = topic_is_internal(t->name);
    o->topic_authorized_operations = !want_ops              ? INT32_MIN
                                     : authz_enabled(b)     ? authz_operations(req, AZ_RES_TOPIC, o->name)
                                                            : TOPIC_ALL_OPERATIONS;
    o->partitions = karena_calloc(a, (size_t)(t->nparts ? t->nparts : 1), sizeof *o->partitions);
    if (!o->partitions) return;
    o->partitions_count = t->nparts;
    for (int i = 0; i < t->nparts; i++) {
        MetadataResponse_MetadataResponsePartition *p = &o->partitions[i];
        MetadataResponse_MetadataResponsePartition_init(p);
        const mpartition *mp = broker_mpartition(b, t, i);
        p->partition_index = i;
        if (!mp) {
            p->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        /* A partition without a live leader: LEADER_NOT_AVAILABLE, leader -1. */
        bool led = mp->leader >= 0 && mimage_broker_alive(b->image, mp->leader);
        p->error_code = led ? KERR_NONE : KERR_LEADER_NOT_AVAILABLE;
        p->leader_id = led ? mp->leader : -1;
        p->leader_epoch = mp->leader_epoch;
        p->replica_nodes = mp->replicas;
        p->replica_nodes_count = mp->nreplicas;
        p->isr_nodes = mp->isr;
        p->isr_nodes_count = mp->nisr;
        p->offline_replicas = offline_of(b, mp->replicas, mp->nreplicas, &p->offline_replicas_count, a);
    }
}

void h_metadata(broker *b, kreq *req) {
    MetadataRequest r;
    if (KREQ_DECODE(req, MetadataRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    MetadataResponse resp;
    MetadataResponse_init(&resp);
    int nb = broker_live_nodes(b, NULL, 0);
    broker_node *nodes = karena_calloc(a, (size_t)(nb ? nb : 1), sizeof *nodes);
    resp.brokers = karena_calloc(a, (size_t)(nb ? nb : 1), sizeof *resp.brokers);
    if (!resp.brokers || !nodes) {
        kreq_fail(req, "out of memory");
        return;
    }
    nb = broker_live_nodes(b, nodes, nb);
    resp.brokers_count = nb;
    for (int i = 0; i < nb; i++) {
        MetadataResponse_MetadataResponseBroker_init(&resp.brokers[i]);
        resp.brokers[i].node_id = nodes[i].id;
        resp.brokers[i].host = kstr_from(nodes[i].host);
        resp.brokers[i].port = nodes[i].port;
        resp.brokers[i].rack = nodes[i].rack ? kstr_from(nodes[i].rack) : KSTR_NULL;
    }
    resp.cluster_id = kstr_from(b->cluster_id);
    resp.controller_id = broker_controller_id(b);
    resp.cluster_authorized_operations =
        !r.include_cluster_authorized_operations ? INT32_MIN
        : !authz_enabled(b)                      ? CLUSTER_ALL_OPERATIONS
        : authz_cluster(req, AZ_OP_DESCRIBE)     ? authz_operations(req, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME))
                                                 : 0; /* KafkaApis: DESCRIBE on the cluster first (logged) */
    bool want_ops = r.include_topic_authorized_operations;

    bool all = r.topics_count < 0 || (v == 0 && r.topics_count == 0);
    if (all) {
        int n = broker_topic_count(b);
        topic_rt **ts = karena_calloc(a, (size_t)(n ? n : 1), sizeof *ts);
        resp.topics = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.topics);
        if (!ts || !resp.topics) {
            kreq_fail(req, "out of memory");
            return;
        }
        broker_topics_list(b, ts, n);
        /* topics one may not DESCRIBE are left out, without a log line */
        int shown = 0;
        for (int i = 0; i < n; i++)
            if (authz_allowed_quiet(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, kstr_from(ts[i]->name))) ts[shown++] = ts[i];
        resp.topics_count = shown;
        for (int i = 0; i < shown; i++) {
            MetadataResponse_MetadataResponseTopic_init(&resp.topics[i]);
            fill_topic(b, req, ts[i], &resp.topics[i], want_ops, a);
        }
        KREQ_REPLY(req, MetadataResponse, &resp);
        return;
    }
    /* v0-3 always allow auto-creation; later versions ask. */
    bool allow_create = (v < 4 || r.allow_auto_topic_creation) && b->cfg.auto_create_topics_enable;
    resp.topics = karena_calloc(a, (size_t)(r.topics_count ? r.topics_count : 1), sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.topics_count = r.topics_count;
    for (int i = 0; i < r.topics_count; i++) {
        const MetadataRequest_MetadataRequestTopic *rt = &r.topics[i];
        MetadataResponse_MetadataResponseTopic *o = &resp.topics[i];
        MetadataResponse_MetadataResponseTopic_init(o);
        o->name = rt->name;
        o->topic_id = rt->topic_id;
        /* KafkaApis: computed for the topics answered after the DESCRIBE
         * check (errors included); unknown ids and refused topics keep the
         * default */
        o->topic_authorized_operations = INT32_MIN;
        topic_rt *t = NULL;
        if (rt->name.len < 0) {
            /* by id (v10+) */
            t = broker_topic_by_id(b, &rt->topic_id);
            if (!t) {
                o->error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
        } else {
            t = broker_topic(b, rt->name);
        }
        /* KafkaApis: DESCRIBE first, so the answer does not tell whether
         * the topic exists (by id: the id is not secret, the name is) */
        if (!authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TOPIC, t ? kstr_from(t->name) : rt->name)) {
            o->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        if (want_ops && !t) /* fill_topic sets an existing topic's */
            o->topic_authorized_operations = authz_enabled(b) ? authz_operations(req, AZ_RES_TOPIC, o->name)
                                                              : TOPIC_ALL_OPERATIONS;
        if (!t && rt->name.len >= 0) {
            if (topic_name_invalid(rt->name, a)) {
                o->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            char *nm = kstr_dup(rt->name, a);
            if (allow_create && nm && !topic_is_internal(nm) &&
                !authz_allowed_quiet(req, AZ_OP_CREATE, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME)) &&
                !authz_allowed_k(req, AZ_OP_CREATE, AZ_RES_TOPIC, rt->name)) {
                o->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                o->topic_authorized_operations = INT32_MIN;
                continue;
            }
            if (allow_create && nm && !topic_is_internal(nm)) {
                const char *errmsg;
                int16_t ec = broker_create_topic(b, rt->name, -1, -1, NULL, NULL, NULL, 0, false, &errmsg, a, NULL, NULL);
                /* A KRaft broker forwards auto-creation to the controller and
                 * answers UNKNOWN_TOPIC_OR_PARTITION now; the client's next
                 * metadata request sees the topic. */
                o->error_code = ec == KERR_NONE ? KERR_UNKNOWN_TOPIC_OR_PARTITION : ec;
                continue;
            }
        }
        if (!t) {
            o->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        fill_topic(b, req, t, o, want_ops, a);
    }
    KREQ_REPLY(req, MetadataResponse, &resp);
}
