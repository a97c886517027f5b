/* h_topics.c - CreateTopics v0-7, DeleteTopics v0-6, CreatePartitions v0-3.
 * Validation and messages follow Kafka 3.6.1's controller; every change goes
 * through the metadata log (topics.c). */
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/topics.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* ---- answering after the changes complete ---- */

struct req_changes {
    kreq *req;
    int pending;
    req_changes_reply_fn reply;
    void *ctx;
};

req_changes *req_changes_begin(kreq *req, req_changes_reply_fn reply, void *ctx) {
    req_changes *rc = karena_alloc(&req->arena, sizeof *rc);
    if (rc) *rc = (req_changes){req, 1, reply, ctx};
    return rc;
}

void req_changes_add(req_changes *rc) { rc->pending++; }

void req_changes_done(broker *b, req_changes *rc) {
    if (--rc->pending == 0) rc->reply(b, rc->req, rc->ctx);
}

static void partitions_made(broker *b, void *arg) { req_changes_done(b, arg); }

/* The answer also waits until the topic's new partitions are open on this
 * node (made off the loop, topics.h), so a client's first produce finds them. */
static void wait_until_made(broker *b, req_changes *rc, const topic_rt *t) {
    if (!t) return;
    req_changes_add(rc);
    topics_when_made(b, t, partitions_made, rc);
}

/* Is name listed more than once in the request? */
static bool duplicated(const CreateTopicsRequest *r, kstr name) {
    int count = 0;
    for (int i = 0; i < r->topics_count && count < 2; i++)
        if (kstr_eq(r->topics[i].name, name)) count++;
    return count > 1;
}

/* Is topic i's name listed earlier in the request? */
static bool seen_before(const CreateTopicsRequest *r, int i) {
    for (int k = 0; k < i; k++)
        if (kstr_eq(r->topics[k].name, r->topics[i].name)) return true;
    return false;
}

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return a < b ? -1 : a > b;
}

/* ReplicationControlManager.validateManualPartitionAssignment: the broker
 * ids in ascending order, each registered and once; the
 * same count as the earlier partitions (rf > 0). */
static int16_t check_manual_assignment(broker *b, const int32_t *ids, int32_t n, int32_t rf, const char **msg,
                                       karena *a) {
    if (n <= 0) {
        *msg = "The manual partition assignment includes an empty replica list.";
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    int32_t *sorted = karena_alloc(a, sizeof(int32_t) * (size_t)n);
    if (!sorted) {
        *msg = NULL;
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    memcpy(sorted, ids, sizeof(int32_t) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_i32);
    for (int32_t k = 0; k < n; k++) {
        if (!mimage_broker(b->image, sorted[k])) {
            *msg = karena_sprintf(a, "The manual partition assignment includes broker %d, but no such broker is "
                                     "registered.", sorted[k]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (k > 0 && sorted[k] == sorted[k - 1]) {
            *msg = karena_sprintf(a, "The manual partition assignment includes the broker %d more than once.",
                                  sorted[k]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    if (rf > 0 && n != rf) {
        *msg = karena_sprintf(a, "The manual partition assignment includes a partition with %d replica(s), but this "
                                 "is not consistent with previous partitions, which have %d replica(s).", n, rf);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    return KERR_NONE;
}

/* A manual replica assignment (ReplicationControlManager.createTopic):
 * replication factor and partition count unset, each partition once, valid
 * replica lists, partitions 0..n-1. Returns an error code and message. */
static int16_t check_assignment(broker *b, const CreateTopicsRequest_CreatableTopic *t, int32_t *partitions,
                                int16_t *rf, int32_t **out, const char **msg, karena *a) {
    if (t->replication_factor != -1) {
        *msg = "A manual partition assignment was specified, but replication factor was not set to -1.";
        return KERR_INVALID_REQUEST;
    }
    if (t->num_partitions != -1) {
        *msg = "A manual partition assignment was specified, but numPartitions was not set to -1.";
        return KERR_INVALID_REQUEST;
    }
    int32_t n = t->assignments_count;
    int32_t want_rf = -1;
    for (int i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableReplicaAssignment *as = &t->assignments[i];
        for (int j = 0; j < i; j++)
            if (t->assignments[j].partition_index == as->partition_index) {
                *msg = karena_sprintf(a, "Found multiple manual partition assignments for partition %d",
                                      as->partition_index);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
        int16_t ec = check_manual_assignment(b, as->broker_ids, as->broker_ids_count, want_rf, msg, a);
        if (ec != KERR_NONE) return ec;
        want_rf = as->broker_ids_count;
    }
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++)
            if (t->assignments[j].partition_index == i) found = true;
        if (!found) {
            *msg = "partitions should be a consecutive 0-based integer sequence";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    /* as nparts * rf ids, partition by partition */
    int32_t *ids = karena_calloc(a, (size_t)(n ? n : 1) * (size_t)(want_rf > 0 ? want_rf : 1), sizeof(int32_t));
    if (!ids) {
        *msg = NULL;
        return KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int j = 0; j < n; j++)
        memcpy(&ids[(size_t)t->assignments[j].partition_index * (size_t)want_rf], t->assignments[j].broker_ids,
               sizeof(int32_t) * (size_t)want_rf);
    *partitions = n;
    *rf = (int16_t)want_rf;
    *out = ids;
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

/* One topic of a CreateTopics request, until its change completes. */
typedef struct create_item {
    req_changes *rc;
    CreateTopicsResponse_CreatableTopicResult *o;
    const kstr *keys, *vals;
    int nc;
    bool describable; /* DESCRIBE_CONFIGS on the topic: its layout and configs are answered */
} create_item;

/* ReplicationControlManager.createTopic without DESCRIBE_CONFIGS on the
 * topic: no partitions, replication factor or configs, and
 * TOPIC_AUTHORIZATION_FAILED as the config error. */
static void hide_new_topic(CreateTopicsResponse_CreatableTopicResult *o) {
    o->num_partitions = -1;
    o->replication_factor = -1;
    o->configs = NULL;
    o->configs_count = 0;
    o->topic_config_error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
}

REQ_CHANGES_REPLY(reply_create_topics, CreateTopicsResponse)

/* A created topic's result (v5+: with its configs), from the image. */
static void topic_created(broker *b, void *arg, int16_t error) {
    create_item *it = arg;
    kreq *req = it->rc->req;
    CreateTopicsResponse_CreatableTopicResult *o = it->o;
    o->error_code = error;
    if (error == KERR_TOPIC_ALREADY_EXISTS && req->api_version >= 1)
        o->error_message = kstr_from(karena_sprintf(&req->arena, "Topic '%.*s' already exists.", o->name.len,
                                                    o->name.p));
    else if (error != KERR_NONE && req->api_version >= 1)
        o->error_message = kstr_from(kerr_message(error));
    topic_rt *rt = error == KERR_NONE ? broker_topic(b, o->name) : NULL;
    if (rt && !it->describable) {
        o->topic_id = rt->id;
        hide_new_topic(o);
    } else if (rt) {
        o->topic_id = rt->id;
        o->num_partitions = rt->nparts;
        const mpartition *mp = broker_mpartition(b, rt, 0);
        if (mp) o->replication_factor = (int16_t)mp->nreplicas;
        if (req->api_version >= 5) describe_new_topic(b, o, it->keys, it->vals, it->nc, &req->arena);
    }
    wait_until_made(b, it->rc, rt);
    req_changes_done(b, it->rc);
}

void h_create_topics(broker *b, kreq *req) {
    CreateTopicsRequest r;
    if (KREQ_DECODE(req, CreateTopicsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    CreateTopicsResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_create_topics, respp) : NULL;
    if (!rc) {
        kreq_fail(req, "out of memory");
        return;
    }
#define resp (*respp)
    CreateTopicsResponse_init(&resp);
    int32_t n = r.topics_count > 0 ? r.topics_count : 0;
    resp.topics = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.topics);
    if (!resp.topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    /* ControllerApis.createTopics: duplicated names are taken out of the
     * request and answered after the others, once each; __cluster_metadata
     * is dropped without an answer. */
    int nout = 0;
    bool cluster_create = authz_allowed_quiet(req, AZ_OP_CREATE, AZ_RES_CLUSTER, KSTR_LIT(AZ_CLUSTER_NAME));
    qmutation mq; /* ControllerApis: strict from v6 */
    quota_mutation_begin(b, req, 6, &mq);
    for (int i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableTopic *t = &r.topics[i];
        if (duplicated(&r, t->name) || kstr_eq_c(t->name, "__cluster_metadata")) continue;
        CreateTopicsResponse_CreatableTopicResult *o = &resp.topics[nout++];
        CreateTopicsResponse_CreatableTopicResult_init(o);
        o->name = t->name;
        o->error_message = KSTR_NULL;
        o->num_partitions = -1;
        o->replication_factor = -1;
        o->configs = NULL;
        o->configs_count = -1;
        const char *msg = NULL;
        int32_t partitions = t->num_partitions;
        int16_t rf = t->replication_factor;
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
        /* Kafka's order: name, existence, configs, then the layout */
        int32_t *assignment = NULL;
        create_item *it = karena_alloc(a, sizeof *it);
        if (!it) {
            kreq_fail(req, "out of memory");
            return;
        }
        *it = (create_item){rc, o, keys, vals, nc,
                            authz_allowed_quiet(req, AZ_OP_DESCRIBE_CONFIGS, AZ_RES_TOPIC, t->name)};
        /* KafkaApis/ControllerApis: CREATE on the cluster or on the topic */
        int16_t ec = KERR_TOPIC_AUTHORIZATION_FAILED;
        if (!cluster_create && !authz_allowed_k(req, AZ_OP_CREATE, AZ_RES_TOPIC, t->name))
            msg = "Authorization failed.";
        else
            ec = broker_create_topic_precheck(b, t->name, keys, vals, nc, &msg, a);
        if (ec == KERR_NONE && t->assignments_count > 0)
            ec = check_assignment(b, t, &partitions, &rf, &assignment, &msg, a);
        if (ec == KERR_NONE &&
            !quota_mutation_record(b, &mq, partitions == -1 ? b->cfg.num_partitions : partitions)) {
            ec = KERR_THROTTLING_QUOTA_EXCEEDED;
            msg = kerr_message(ec);
        }
        if (ec == KERR_NONE) {
            req_changes_add(rc); /* until topic_created */
            ec = broker_create_topic(b, t->name, partitions, rf, assignment, keys, vals, nc, r.validate_only, &msg,
                                     a, topic_created, it);
            if (ec != KERR_NONE || r.validate_only) req_changes_done(b, rc); /* no change was started */
        }
        if (ec != KERR_NONE) {
            o->error_code = ec;
            if (v >= 1 && msg) o->error_message = kstr_from(msg);
            continue;
        }
        if (r.validate_only && !it->describable) {
            o->error_code = KERR_NONE;
            hide_new_topic(o);
        } else if (r.validate_only) {
            /* v5+: the topic as it would be */
            o->error_code = KERR_NONE;
            o->num_partitions = partitions == -1 ? b->cfg.num_partitions : partitions;
            o->replication_factor = rf == -1 ? b->cfg.default_replication_factor : rf;
            if (v >= 5) describe_new_topic(b, o, keys, vals, nc, a);
        }
    }
    for (int i = 0; i < n; i++) {
        const CreateTopicsRequest_CreatableTopic *t = &r.topics[i];
        if (!duplicated(&r, t->name) || seen_before(&r, i)) continue;
        CreateTopicsResponse_CreatableTopicResult *o = &resp.topics[nout++];
        CreateTopicsResponse_CreatableTopicResult_init(o);
        o->name = t->name;
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = v >= 1 ? KSTR_LIT("Duplicate topic name.") : KSTR_NULL;
        o->num_partitions = -1;
        o->replication_factor = -1;
        o->configs = NULL;
        o->configs_count = -1;
    }
    resp.topics_count = nout;
    resp.throttle_time_ms = quota_mutation_end(&mq, req);
#undef resp
    req_changes_done(b, rc);
}

static bool uuid_zero(const kuuid *id) {
    for (int i = 0; i < 16; i++)
        if (id->b[i]) return false;
    return true;
}

typedef struct delete_item {
    req_changes *rc;
    DeleteTopicsResponse_DeletableTopicResult *o;
} delete_item;

REQ_CHANGES_REPLY(reply_delete_topics, DeleteTopicsResponse)

static void topic_deleted(broker *b, void *arg, int16_t error) {
    delete_item *it = arg;
    it->o->error_code = error;
    req_changes_done(b, it->rc);
}

void h_delete_topics(broker *b, kreq *req) {
    DeleteTopicsRequest r;
    if (KREQ_DECODE(req, DeleteTopicsRequest, &r) < 0) return;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    DeleteTopicsResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_delete_topics, respp) : NULL;
    if (!rc) {
        kreq_fail(req, "out of memory");
        return;
    }
#define resp (*respp)
    DeleteTopicsResponse_init(&resp);
    int32_t n = v >= 6 ? r.topics_count : r.topic_names_count;
    if (n < 0) n = 0;
    resp.responses = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.responses);
    /* per entry: its name (NULL-len when by id), id, and the topic */
    kstr *names = karena_calloc(a, (size_t)(n ? n : 1), sizeof *names);
    kuuid *ids = karena_calloc(a, (size_t)(n ? n : 1), sizeof *ids);
    topic_rt **topics = karena_calloc(a, (size_t)(n ? n : 1), sizeof *topics);
    if (!resp.responses || !names || !ids || !topics) {
        kreq_fail(req, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (v >= 6) {
            names[i] = r.topics[i].name;
            ids[i] = r.topics[i].topic_id;
        } else {
            names[i] = r.topic_names[i];
        }
    }
    qmutation mq; /* ControllerApis: strict from v5 */
    quota_mutation_begin(b, req, 5, &mq);
    int nout = 0;
    for (int i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *o = &resp.responses[nout];
        DeleteTopicsResponse_DeletableTopicResult_init(o);
        o->error_message = KSTR_NULL;
        o->name = names[i];
        o->topic_id = ids[i];
        /* ControllerApis.deleteTopics: deletion disabled fails the whole
         * request (INVALID_REQUEST before v3), no messages */
        if (!b->cfg.delete_topic_enable) {
            o->error_code = v < 3 ? KERR_INVALID_REQUEST : KERR_TOPIC_DELETION_DISABLED;
            nout++;
            continue;
        }
        bool by_id = names[i].len < 0;
        if (by_id && uuid_zero(&ids[i])) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from("Neither topic name nor id were specified.");
            nout++;
            continue;
        }
        if (!by_id && !uuid_zero(&ids[i])) {
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from("You may not specify both topic name and topic id.");
            nout++;
            continue;
        }
        /* a name or id given more than once: one answer for all of them */
        bool dup = false, earlier = false;
        for (int k = 0; k < n; k++) {
            if (k == i) continue;
            bool same = by_id ? names[k].len < 0 && memcmp(ids[k].b, ids[i].b, 16) == 0
                              : names[k].len >= 0 && uuid_zero(&ids[k]) && kstr_eq(names[k], names[i]);
            if (same) {
                dup = true;
                if (k < i) earlier = true;
            }
        }
        if (dup) {
            if (earlier) continue;
            o->error_code = KERR_INVALID_REQUEST;
            o->error_message = kstr_from(by_id ? "Duplicate topic id." : "Duplicate topic name.");
            if (by_id) o->name = KSTR_NULL;
            else memset(&o->topic_id, 0, sizeof o->topic_id);
            nout++;
            continue;
        }
        topic_rt *t = by_id ? broker_topic_by_id(b, &ids[i]) : broker_topic(b, names[i]);
        if ((t || !by_id) && !authz_allowed_k(req, AZ_OP_DELETE, AZ_RES_TOPIC, t ? kstr_from(t->name) : names[i])) {
            o->error_code = KERR_TOPIC_AUTHORIZATION_FAILED; /* KafkaApis: DELETE on the topic */
            nout++;
            continue;
        }
        if (!t) {
            o->error_code = by_id ? KERR_UNKNOWN_TOPIC_ID : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (v >= 5) o->error_message = kstr_from(by_id ? "This server does not host this topic ID."
                                                           : "This server does not host this topic-partition.");
            nout++;
            continue;
        }
        topics[i] = t;
        if (!by_id) {
            /* a name whose topic was also given by its id: the name is
             * refused and the id left unanswered */
            bool id_given = false;
            for (int k = 0; k < n; k++)
                if (names[k].len < 0 && memcmp(ids[k].b, t->id.b, 16) == 0) id_given = true;
            if (id_given) {
                o->error_code = KERR_INVALID_REQUEST;
                o->error_message = kstr_from("The provided topic name maps to an ID that was already supplied.");
                o->topic_id = t->id;
                nout++;
                continue;
            }
        } else {
            bool name_given = false;
            for (int k = 0; k < n; k++)
                if (names[k].len >= 0 && uuid_zero(&ids[k]) && kstr_eq_c(names[k], t->name)) name_given = true;
            if (name_given) continue;
        }
        o->name = kstr_from(karena_strndup(a, t->name, strlen(t->name)));
        o->topic_id = t->id;
        nout++;
        if (!quota_mutation_record(b, &mq, t->nparts)) {
            o->error_code = KERR_THROTTLING_QUOTA_EXCEEDED;
            if (v >= 5) o->error_message = kstr_from(kerr_message(KERR_THROTTLING_QUOTA_EXCEEDED));
            continue;
        }
        delete_item *it = karena_alloc(a, sizeof *it);
        if (!it) {
            o->error_code = KERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        *it = (delete_item){rc, o};
        req_changes_add(rc);
        broker_delete_topic(b, t, topic_deleted, it);
    }
    resp.responses_count = nout;
    resp.throttle_time_ms = quota_mutation_end(&mq, req);
#undef resp
    req_changes_done(b, rc);
}

typedef struct grow_item {
    req_changes *rc;
    CreatePartitionsResponse_CreatePartitionsTopicResult *o;
    kuuid topic_id;
} grow_item;

REQ_CHANGES_REPLY(reply_create_partitions, CreatePartitionsResponse)

static void partitions_added(broker *b, void *arg, int16_t error) {
    grow_item *it = arg;
    it->o->error_code = error;
    if (error == KERR_NONE) wait_until_made(b, it->rc, broker_topic_by_id(b, &it->topic_id));
    req_changes_done(b, it->rc);
}

void h_create_partitions(broker *b, kreq *req) {
    CreatePartitionsRequest r;
    if (KREQ_DECODE(req, CreatePartitionsRequest, &r) < 0) return;
    karena *a = &req->arena;
    CreatePartitionsResponse *respp = karena_alloc(a, sizeof *respp);
    req_changes *rc = respp ? req_changes_begin(req, reply_create_partitions, respp) : NULL;
    if (!rc) {
        kreq_fail(req, "out of memory");
        return;
    }
#define resp (*respp)
    CreatePartitionsResponse_init(&resp);
    int32_t n = r.topics_count > 0 ? r.topics_count : 0;
    resp.results = karena_calloc(a, (size_t)(n ? n : 1), sizeof *resp.results);
    bool *dup = karena_calloc(a, (size_t)(n ? n : 1), sizeof *dup);
    if (!resp.results || !dup) {
        kreq_fail(req, "out of memory");
        return;
    }
    qmutation mq; /* ControllerApis: strict from v3 */
    quota_mutation_begin(b, req, 3, &mq);
    int nout = 0;
    /* ControllerApis.createPartitions: each duplicated name answered once,
     * before the others */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
            if (k != i && kstr_eq(r.topics[k].name, r.topics[i].name)) dup[i] = true;
    for (int i = 0; i < n; i++) {
        if (!dup[i]) continue;
        bool earlier = false;
        for (int k = 0; k < i && !earlier; k++)
            if (kstr_eq(r.topics[k].name, r.topics[i].name)) earlier = true;
        if (earlier) continue;
        CreatePartitionsResponse_CreatePartitionsTopicResult *o = &resp.results[nout++];
        CreatePartitionsResponse_CreatePartitionsTopicResult_init(o);
        o->name = r.topics[i].name;
        o->error_code = KERR_INVALID_REQUEST;
        o->error_message = kstr_from("Duplicate topic name.");
    }
    for (int i = 0; i < n; i++) {
        if (dup[i]) continue;
        const CreatePartitionsRequest_CreatePartitionsTopic *t = &r.topics[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult *o = &resp.results[nout++];
        CreatePartitionsResponse_CreatePartitionsTopicResult_init(o);
        o->name = t->name;
        o->error_message = KSTR_NULL;
        topic_rt *rt = broker_topic(b, t->name);
        if (!authz_allowed_k(req, AZ_OP_ALTER, AZ_RES_TOPIC, t->name)) {
            o->error_code = KERR_TOPIC_AUTHORIZATION_FAILED; /* KafkaApis: ALTER on the topic */
            o->error_message = kstr_from("Authorization failed.");
            continue;
        }
        if (!rt) {
            /* new UnknownTopicOrPartitionException(): no message */
            o->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        const char *msg = NULL;
        /* ReplicationControlManager.createPartitions: the count first */
        if (t->count <= rt->nparts) {
            o->error_code = broker_add_partitions(b, rt, t->count, NULL, true, &msg, a, NULL, NULL);
            if (msg) o->error_message = kstr_from(msg);
            continue;
        }
        /* the new partitions get as many replicas as partition 0 has */
        const mpartition *p0 = broker_mpartition(b, rt, 0);
        int32_t prf = p0 && p0->nreplicas > 0 ? p0->nreplicas : 1;
        if (t->assignments_count >= 0 && t->assignments_count != t->count - rt->nparts) {
            o->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
            o->error_message = kstr_from(karena_sprintf(a,
                "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.",
                t->count - rt->nparts, t->assignments_count));
            continue;
        }
        int16_t ec = KERR_NONE;
        if (!quota_mutation_record(b, &mq, t->count - rt->nparts)) {
            ec = KERR_THROTTLING_QUOTA_EXCEEDED;
            msg = kerr_message(ec);
        }
        for (int k = 0; k < t->assignments_count && ec == KERR_NONE; k++)
            ec = check_manual_assignment(b, t->assignments[k].broker_ids, t->assignments[k].broker_ids_count, prf,
                                         &msg, a);
        int32_t *assignment = NULL;
        if (ec == KERR_NONE && t->assignments_count > 0) {
            assignment = karena_calloc(a, (size_t)t->assignments_count * (size_t)prf, sizeof(int32_t));
            if (!assignment) ec = KERR_UNKNOWN_SERVER_ERROR;
            for (int k = 0; assignment && k < t->assignments_count; k++)
                memcpy(&assignment[(size_t)k * (size_t)prf], t->assignments[k].broker_ids, sizeof(int32_t) * (size_t)prf);
        }
        grow_item *it = karena_alloc(a, sizeof *it);
        if (ec == KERR_NONE && !it) ec = KERR_UNKNOWN_SERVER_ERROR;
        if (ec != KERR_NONE) {
            o->error_code = ec;
            if (msg) o->error_message = kstr_from(msg);
            continue;
        }
        *it = (grow_item){rc, o, rt->id};
        req_changes_add(rc); /* until partitions_added */
        o->error_code = broker_add_partitions(b, rt, t->count, assignment, r.validate_only, &msg, a, partitions_added,
                                              it);
        if (o->error_code != KERR_NONE || r.validate_only) req_changes_done(b, rc);
        if (msg) o->error_message = kstr_from(msg);
    }
    resp.results_count = nout;
    resp.throttle_time_ms = quota_mutation_end(&mq, req);
#undef resp
    req_changes_done(b, rc);
}
