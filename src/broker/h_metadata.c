/* h_metadata.c - Metadata v0-12: brokers, cluster id, controller, topics
 * and partitions, with auto topic creation as Kafka's default allows. */
#include <string.h>

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

static void fill_topic(broker *b, topic_rt *t, MetadataResponse_MetadataResponseTopic *o, bool want_ops, karena *a) {
    o->error_code = KERR_NONE;
    o->name = kstr_from(t->name);
    o->topic_id = t->id;
    o->is_internal = topic_is_internal(t->name);
    o->topic_authorized_operations = want_ops ? TOPIC_ALL_OPERATIONS : INT32_MIN;
    o->partitions = karena_calloc(a, (size_t)(t->nparts ? t->nparts : 1), sizeof *o->partitions);
    if (!o->partitions) return;
    o->partitions_count = t->nparts;
    int32_t *node = karena_alloc(a, sizeof(int32_t));
    if (!node) return;
    *node = b->cfg.node_id;
    for (int i = 0; i < t->nparts; i++) {
        MetadataResponse_MetadataResponsePartition *p = &o->partitions[i];
        MetadataResponse_MetadataResponsePartition_init(p);
        p->error_code = KERR_NONE;
        p->partition_index = i;
        p->leader_id = b->cfg.node_id;
        p->leader_epoch = t->parts[i]->leader_epoch;
        p->replica_nodes = node;
        p->replica_nodes_count = 1;
        p->isr_nodes = node;
        p->isr_nodes_count = 1;
        p->offline_replicas = NULL;
        p->offline_replicas_count = 0;
    }
}

void h_metadata(broker *b, kreq *req) {
    MetadataRequest r;
    if (KREQ_DECODE(req, MetadataRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    MetadataResponse resp;
    MetadataResponse_init(&resp);
    resp.brokers = karena_calloc(a, 1, sizeof *resp.brokers);
    if (!resp.brokers) {
        kreq_fail(req, "out of memory");
        return;
    }
    MetadataResponse_MetadataResponseBroker_init(resp.brokers);
    resp.brokers_count = 1;
    resp.brokers[0].node_id = b->cfg.node_id;
    resp.brokers[0].host = kstr_from(broker_advertised_host(b));
    resp.brokers[0].port = broker_advertised_port(b);
    resp.brokers[0].rack = KSTR_NULL;
    resp.cluster_id = kstr_from(b->cluster_id);
    resp.controller_id = b->cfg.node_id;
    resp.cluster_authorized_operations = r.include_cluster_authorized_operations ? CLUSTER_ALL_OPERATIONS : INT32_MIN;
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
        resp.topics_count = n;
        for (int i = 0; i < n; i++) {
            MetadataResponse_MetadataResponseTopic_init(&resp.topics[i]);
            fill_topic(b, ts[i], &resp.topics[i], want_ops, a);
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
        o->topic_authorized_operations = want_ops ? TOPIC_ALL_OPERATIONS : INT32_MIN;
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
        if (!t && rt->name.len >= 0) {
            if (topic_name_invalid(rt->name, a)) {
                o->error_code = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            char *nm = kstr_dup(rt->name, a);
            if (allow_create && nm && !topic_is_internal(nm)) {
                const char *errmsg;
                int16_t ec = broker_create_topic(b, rt->name, -1, -1, NULL, NULL, 0, false, &errmsg, a);
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
        fill_topic(b, t, o, want_ops, a);
    }
    KREQ_REPLY(req, MetadataResponse, &resp);
}
