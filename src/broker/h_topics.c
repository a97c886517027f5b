/* h_topics.c - CreateTopics v0-7, DeleteTopics v0-6, CreatePartitions v0-3.
 * Validation and messages follow Kafka 3.6.1's controller; every change goes
 * through the metadata log (topics.c). */
#include <string.h>

#include "broker/handlers.h"
#include "broker/topics.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* Is name listed more than once in the request? */
static bool duplicated(const CreateTopicsRequest *r, int upto_excl, kstr name) {
    int count = 0;
    for (int i = 0; i < r->topics_count; i++)
        if (kstr_eq(r->topics[i].name, name)) count++;
    (void)upto_excl;
    return count > 1;
}

/* A manual replica assignment on a one-node cluster: partitions 0..n-1,
 * each listing only this node, once. Returns an error code and message. */
static int16_t check_assignment(broker *b, const CreateTopicsRequest_CreatableTopic *t, int32_t *partitions,
                                int16_t *rf, const char **msg, karena *a) {
    if (t->num_partitions != -1 || t->replication_factor != -1) {
        *msg = "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at "
               "the same time.";
        return KERR_INVALID_REQUEST;
    }
    int32_t n = t->assignments_count;
    int32_t want_rf = -1;
    for (int i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableReplicaAssignment *as = &t->assignments[i];
        bool found = false;
        for (int j = 0; j < n; j++)
            if (t->assignments[j].partition_index == i) found = true;
        if (!found) {
            *msg = "Partitions should be a consecutive 0-based integer sequence";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (as->broker_ids_count <= 0) {
            *msg = karena_sprintf(a, "The manual partition assignment includes an empty replica list.");
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        for (int k = 0; k < as->broker_ids_count; k++) {
            if (as->broker_ids[k] != b->cfg.node_id) {
                *msg = karena_sprintf(a, "The manual partition assignment includes broker %d, but no such broker is "
                                         "registered.", as->broker_ids[k]);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
            for (int m = 0; m < k; m++)
                if (as->broker_ids[m] == as->broker_ids[k]) {
                    *msg = karena_sprintf(a, "The manual partition assignment includes the broker %d more than once.",
                                          as->broker_ids[k]);
                    return KERR_INVALID_REPLICA_ASSIGNMENT;
                }
        }
        if (want_rf < 0) want_rf = as->broker_ids_count;
        else if (want_rf != as->broker_ids_count) {
            *msg = "All partitions in the manual partition assignment must have the same number of replicas.";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    *partitions = n;
    *rf = (int16_t)want_rf;
    return KERR_NONE;
}

/* v5+: every config of the new topic with its source, as Kafka reports. */
static void describe_new_topic(broker *b, CreateTopicsResponse_CreatableTopicResult *o, const kstr *keys,
                               const kstr *vals, int nc, karena *a) {
    const char **k = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof(char *));
    const char **v = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof(char *));
    config_entry *ce = karena_calloc(a, 64, sizeof *ce);
    if (!k || !v || !ce) return;
    for (int i = 0; i < nc; i++) {
        k[i] = kstr_dup(keys[i], a);
        v[i] = kstr_dup(vals[i], a);
    }
    config_layers layers;
    broker_config_layers(b, &layers, a);
    int n = config_describe_topic(&layers, k, v, nc, ce, 64, a);
    o->configs = karena_calloc(a, (size_t)(n ? n : 1), sizeof *o->configs);
    if (!o->configs) return;
    o->configs_count = n;
    for (int i = 0; i < n; i++) {
        CreateTopicsResponse_CreatableTopicConfigs_init(&o->configs[i]);
        o->configs[i].name = kstr_from(ce[i].name);
        o->configs[i].value = ce[i].value ? kstr_from(ce[i].value) : KSTR_NULL;
        o->configs[i].read_only = ce[i].read_only;
        o->configs[i].config_source = ce[i].source;
        o->configs[i].is_sensitive = ce[i].sensitive;
    }
}

void h_create_topics(broker *b, kreq *req) {
    CreateTopicsRequest r;
    if (KREQ_DECODE(req, CreateTopicsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    CreateTopicsResponse resp;
    CreateTopicsResponse_init(&resp);
    int32_t n = r.topics_count > 0 ? r.topics_count : 0;
    resp.topics = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.topics_count = n;
    for (int i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableTopic *t = &r.topics[i];
        CreateTopicsResponse_CreatableTopicResult *o = &resp.topics[i];
        CreateTopicsResponse_CreatableTopicResult_init(o);
        o->name = t->name;
        o->error_message = KSTR_NULL;
        o->num_partitions = -1;
        o->replication_factor = -1;
        o->configs = NULL;
        o->configs_count = -1;
        const char *msg = NULL;
        if (duplicated(&r, i, t->name)) {
            o->error_code = KERR_INVALID_REQUEST;
            msg = karena_sprintf(a, "Found multiple entries for this topic.");
            o->error_message = kstr_from(msg);
            continue;
        }
        int32_t partitions = t->num_partitions;
        int16_t rf = t->replication_factor;
        int16_t ec = KERR_NONE;
        if (t->assignments_count > 0) ec = check_assignment(b, t, &partitions, &rf, &msg, a);
        int nc = t->configs_count > 0 ? t->configs_count : 0;
        kstr *keys = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof(kstr));
        kstr *vals = karena_calloc(a, (size_t)(nc ? nc : 1), sizeof(kstr));
        if (!keys || !vals) {
            kreq_fail(req, "out of memory");
            return;
        }
        for (int k = 0; k < nc; k++) {
            keys[k] = t->configs[k].name;
            vals[k] = t->configs[k].value;
        }
        if (ec == KERR_NONE)
            ec = broker_create_topic(b, t->name, partitions, rf, keys, vals, nc, r.validate_only, &msg, a);
        o->error_code = ec;
        if (ec != KERR_NONE) {
            if (v >= 1 && msg) o->error_message = kstr_from(msg);
            continue;
        }
        /* v5+: the topic as created (or as it would be, when validating) */
        o->num_partitions = partitions == -1 ? b->cfg.num_partitions : partitions;
        o->replication_factor = rf == -1 ? b->cfg.default_replication_factor : rf;
        topic_rt *rt = broker_topic(b, t->name);
        if (rt) o->topic_id = rt->id;
        if (v >= 5) describe_new_topic(b, o, keys, vals, nc, a);
    }
    KREQ_REPLY(req, CreateTopicsResponse, &resp);
}

void h_delete_topics(broker *b, kreq *req) {
    DeleteTopicsRequest r;
    if (KREQ_DECODE(req, DeleteTopicsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    DeleteTopicsResponse resp;
    DeleteTopicsResponse_init(&resp);
    int32_t n = v >= 6 ? r.topics_count : r.topic_names_count;
    if (n < 0) n = 0;
    resp.responses = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.responses);
    if (!resp.responses) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.responses_count = n;
    for (int i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *o = &resp.responses[i];
        DeleteTopicsResponse_DeletableTopicResult_init(o);
        o->error_message = KSTR_NULL;
        topic_rt *t;
        bool by_id = false;
        if (v >= 6) {
            const DeleteTopicsRequest_DeleteTopicState *s = &r.topics[i];
            o->name = s->name;
            o->topic_id = s->topic_id;
            by_id = s->name.len < 0;
            t = by_id ? broker_topic_by_id(b, &s->topic_id) : broker_topic(b, s->name);
        } else {
            o->name = r.topic_names[i];
            t = broker_topic(b, r.topic_names[i]);
        }
        if (!b->cfg.delete_topic_enable) {
            o->error_code = KERR_TOPIC_DELETION_DISABLED;
            continue;
        }
        if (!t) {
            o->error_code = by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (v >= 5) o->error_message = kstr_from(by_id ? "This server does not host this topic ID."
                                                           : "This server does not host this topic-partition.");
            continue;
        }
        o->name = kstr_from(karena_strndup(a, t->name, strlen(t->name)));
        o->topic_id = t->id;
        o->error_code = broker_delete_topic(b, t);
    }
    KREQ_REPLY(req, DeleteTopicsResponse, &resp);
}

void h_create_partitions(broker *b, kreq *req) {
    CreatePartitionsRequest r;
    if (KREQ_DECODE(req, CreatePartitionsRequest, &r) < 0) return;
    karena *a = &req->arena;
    CreatePartitionsResponse resp;
    CreatePartitionsResponse_init(&resp);
    int32_t n = r.topics_count > 0 ? r.topics_count : 0;
    resp.results = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.results);
    if (!resp.results) {
        kreq_fail(req, "out of memory");
        return;
    }
    resp.results_count = n;
    for (int i = 0; i < n; i++) {
        const CreatePartitionsRequest_CreatePartitionsTopic *t = &r.topics[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult *o = &resp.results[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult_init(o);
        o->name = t->name;
        o->error_message = KSTR_NULL;
        int dup = 0;
        for (int k = 0; k < n; k++)
            if (kstr_eq(r.topics[k].name, t->name)) dup++;
        if (dup > 1) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from("Duplicate topic in request.");
            continue;
        }
        topic_rt *rt = broker_topic(b, t->name);
        if (!rt) {
            o->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            o->error_message = kstr_from(karena_sprintf(a, "The topic '%.*s' does not exist.", t->name.len, t->name.p));
            continue;
        }
        if (t->assignments_count >= 0 && t->count > rt->nparts &&
            t->assignments_count != t->count - rt->nparts) {
            o->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
            o->error_message = kstr_from(karena_sprintf(a,
                "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.",
                t->count - rt->nparts, t->assignments_count));
            continue;
        }
        bool bad_broker = false;
        for (int k = 0; k < t->assignments_count && !bad_broker; k++)
            for (int m = 0; m < t->assignments[k].broker_ids_count; m++)
                if (t->assignments[k].broker_ids[m] != b->cfg.node_id) bad_broker = true;
        if (bad_broker) {
            o->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
            o->error_message = kstr_from("The manual partition assignment includes a broker that is not registered.");
            continue;
        }
        const char *msg = NULL;
        o->error_code = broker_add_partitions(b, rt, t->count, r.validate_only, &msg, a);
        if (msg) o->error_message = kstr_from(msg);
    }
    KREQ_REPLY(req, CreatePartitionsResponse, &resp);
}
