/* reassign_partitions.c - kafka-reassign-partitions: move partition replicas
 * between brokers (Kafka 3.6.1's kafka.admin.ReassignPartitionsCommand).
 *
 * Actions (exactly one): --generate (a proposal from --topics-to-move-json-file
 * and --broker-list, AdminUtils.assignReplicasToBrokers), --execute
 * (--reassignment-json-file; --throttle sets the leader/follower replication
 * throttles on the brokers and topics involved, --additional allows it while
 * other reassignments run), --verify (states; once nothing is reassigning
 * the throttles are cleared unless --preserve-throttles), --cancel, --list.
 * Output lines and JSON are Kafka's. Failures print as the Scala tool's
 * main does: a TerseReassignmentFailureException's message alone, anything
 * else as "Error: <message>" and the exception (its first stack line),
 * exit code 1.
 *
 * Log directory moves ("log_dirs" other than "any") are refused: Samsa
 * cannot move a replica between the log dirs of one broker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/java_compat.h"
#include "tools/json_mini.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define ADMIN_CMD_FAILED "org.apache.kafka.server.common.AdminCommandFailedException"
#define ADMIN_OP_EXC "org.apache.kafka.server.common.AdminOperationException"
#define JSON_MAPPING "com.fasterxml.jackson.databind.JsonMappingException"
#define EXC_PREFIX "Exception in thread \"main\" "

#define LEADER_RATE "leader.replication.throttled.rate"
#define FOLLOWER_RATE "follower.replication.throttled.rate"
#define LOGDIR_RATE "replica.alter.log.dirs.io.max.bytes.per.second"
#define LEADER_REPLICAS "leader.replication.throttled.replicas"
#define FOLLOWER_REPLICAS "follower.replication.throttled.replicas"

static const char *const CANNOT_EXECUTE =
    "Cannot execute because there is an existing partition assignment.  Use --additional to override this and "
    "create a new partition assignment in addition to the existing one. The --additional flag can also be used to "
    "change the throttle by resubmitting the current reassignment.";
static const char *const RUN_VERIFY =
    "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is "
    "removed.";

static const opt_spec specs[] = {
    {"additional", OPT_FLAG, NULL,
     "Execute this reassignment in addition to any other ongoing ones. This option can also be used to change the "
     "throttle of an ongoing reassignment.",
     NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: Server(s) to use for bootstrapping",
     "REQUIRED: the server(s) to use for bootstrapping.", NULL, 0},
    {"broker-list", OPT_ARG, "String: brokerlist",
     "The list of brokers to which the partitions need to be reassigned in the form \"0,1,2\". This is required "
     "if --topics-to-move-json-file is used to generate reassignment configuration",
     NULL, 0},
    {"cancel", OPT_FLAG, NULL, "Cancel an active reassignment.", NULL, 0},
    {"command-config", OPT_ARG, "String: Admin client property file",
     "Property file containing configs to be passed to Admin Client.", NULL, 0},
    {"disable-rack-aware", OPT_FLAG, NULL, "Disable rack aware replica assignment", NULL, 0},
    {"execute", OPT_FLAG, NULL, "Kick off the reassignment as specified by the --reassignment-json-file option.",
     NULL, 0},
    {"generate", OPT_FLAG, NULL,
     "Generate a candidate partition reassignment configuration. Note that this only generates a candidate "
     "assignment, it does not execute it.",
     NULL, 0},
    {"list", OPT_FLAG, NULL, "List all active partition reassignments.", NULL, 0},
    {"preserve-throttles", OPT_FLAG, NULL, "Do not modify broker or topic throttles.", NULL, 0},
    {"reassignment-json-file", OPT_ARG, "String: manual assignment json file path",
     "The JSON file with the partition reassignment configurationThe format to use is - \n"
     "{\"partitions\":\n\t[{\"topic\": \"foo\",\n\t  \"partition\": 1,\n\t  \"replicas\": [1,2,3],\n\t  "
     "\"log_dirs\": [\"dir1\",\"dir2\",\"dir3\"] }],\n\"version\":1\n}\nNote that \"log_dirs\" is optional. When "
     "it is specified, its length must equal the length of the replicas list. The value in this list can be either "
     "\"any\" or the absolution path of the log directory on the broker. If absolute log directory path is "
     "specified, the replica will be moved to the specified log directory on the broker.",
     NULL, 0},
    {"replica-alter-log-dirs-throttle", OPT_ARG, "Long: replicaAlterLogDirsThrottle",
     "The movement of replicas between log directories on the same broker will be throttled to this value "
     "(bytes/sec). This option can be included with --execute when a reassignment is started, and it can be "
     "altered by resubmitting the current reassignment along with the --additional flag. The throttle rate should "
     "be at least 1 KB/s.",
     "-1", 0},
    {"throttle", OPT_ARG, "Long: throttle",
     "The movement of partitions between brokers will be throttled to this value (bytes/sec). This option can be "
     "included with --execute when a reassignment is started, and it can be altered by resubmitting the current "
     "reassignment along with the --additional flag. The throttle rate should be at least 1 KB/s.",
     "-1", 0},
    {"timeout", OPT_ARG, "Long: timeout",
     "The maximum time in ms to wait for log directory replica assignment to begin.", "10000", 0},
    {"topics-to-move-json-file", OPT_ARG, "String: topics to reassign json file path",
     "Generate a reassignment configuration to move the partitions of the specified topics to the list of brokers "
     "specified by the --broker-list option. The format to use is - \n{\"topics\":\n\t[{\"topic\": \"foo\"},"
     "{\"topic\": \"foo1\"}],\n\"version\":1\n}",
     NULL, 0},
    {"verify", OPT_FLAG, NULL,
     "Verify if the reassignment completed as specified by the --reassignment-json-file option. If there is a "
     "throttle engaged for the replicas specified, and the rebalance has completed, the throttle will be removed",
     NULL, 0},
};

/* ---- failures ---- */

/* The Scala main's catch-all: "Error: " + message, then the stack trace
 * (here its first line). */
static int fail_exc(const char *klass, const char *msg) {
    printf("Error: %s\n%s: %s\n", msg, klass, msg);
    return 1;
}

/* TerseReassignmentFailureException: the message alone. */
static int fail_terse(const char *msg) {
    printf("%s\n", msg);
    return 1;
}

/* An error answered by the broker, as the admin client's exception. */
static int fail_kafka(int16_t code, kstr broker_msg, karena *a) {
    const char *text = admin_error_text(code, broker_msg, a);
    const char *klass = java_error_class(code);
    printf("Error: %s: %s\njava.util.concurrent.ExecutionException: %s: %s\n", klass, text, klass, text);
    return 1;
}

static int fail_client(const kclient *c) {
    printf("Error: %s\njava.util.concurrent.ExecutionException: %s\n", c->err, c->err);
    return 1;
}

/* ---- data ---- */

typedef struct tpart {
    const char *topic;
    int32_t partition;
    int32_t *replicas;
    int32_t nreplicas;
} tpart;

typedef struct tparts {
    tpart *v;
    size_t n, cap;
} tparts;

static tpart *tparts_add(tparts *l, const char *topic, int32_t partition, karena *a) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        tpart *nv = karena_calloc(a, nc, sizeof *nv);
        if (!nv) return NULL;
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    tpart *p = &l->v[l->n++];
    *p = (tpart){topic, partition, NULL, 0};
    return p;
}

static tpart *tparts_find(const tparts *l, const char *topic, int32_t partition) {
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].partition == partition && strcmp(l->v[i].topic, topic) == 0) return &l->v[i];
    return NULL;
}

static int cmp_tpart(const void *x, const void *y) {
    const tpart *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

static void print_ids(FILE *f, const int32_t *v, int32_t n) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", v[i]);
}

static bool has_id(const int32_t *v, int32_t n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

/* formatAsReassignmentJson with every log dir "any", partitions sorted. */
static void print_reassignment_json(tparts *l) {
    qsort(l->v, l->n, sizeof *l->v, cmp_tpart);
    printf("{\"version\":1,\"partitions\":[");
    for (size_t i = 0; i < l->n; i++) {
        const tpart *p = &l->v[i];
        printf("%s{\"topic\":", i ? "," : "");
        json_write_string(stdout, p->topic, strlen(p->topic));
        printf(",\"partition\":%d,\"replicas\":[", p->partition);
        print_ids(stdout, p->replicas, p->nreplicas);
        printf("],\"log_dirs\":[");
        for (int k = 0; k < p->nreplicas; k++) printf("%s\"any\"", k ? "," : "");
        printf("]}");
    }
    printf("]}");
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* Utils.readFileAsString; NULL after printing the failure. */
static char *read_input(const char *path, size_t *len) {
    char *text = read_file(path, len);
    if (!text) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s", path);
        fail_exc("java.nio.file.NoSuchFileException", msg);
    }
    return text;
}

static int mapping_error(const char *what, karena *a) { return fail_exc(JSON_MAPPING, karena_sprintf(a, "%s", what)); }

/* JSON "version" (default 1); only 1 is supported. */
static int check_version(const json_value *root, karena *a) {
    const json_value *v = json_get(root, "version");
    if (v && !json_is_int32(v)) return mapping_error("Expected `Integer` value", a);
    int64_t ver = v ? v->integer : 1;
    if (ver != 1)
        return fail_exc(ADMIN_OP_EXC, karena_sprintf(a, "Not supported version field value %lld", (long long)ver));
    return 0;
}

/* parsePartitionReassignmentData; 0, or 1 after printing the failure.
 * *moves is set when a log dir other than "any" is named. */
static int parse_reassignment(const char *text, size_t len, tparts *out, bool *moves, karena *a) {
    char err[256];
    *moves = false;
    json_value *root = json_parse(text, len, a, err, sizeof err);
    if (!root) return fail_exc(ADMIN_OP_EXC, karena_sprintf(a, "com.fasterxml.jackson.core.JsonParseException: %s", err));
    if (root->type != JSON_OBJECT) return mapping_error("Expected JSON object", a);
    if (check_version(root, a)) return 1;
    const json_value *parts = json_get(root, "partitions");
    if (!parts) return 0;
    if (parts->type != JSON_ARRAY) return mapping_error("Expected JSON array", a);
    for (size_t i = 0; i < parts->count; i++) {
        const json_value *p = parts->items[i];
        if (p->type != JSON_OBJECT) return mapping_error("Expected JSON object", a);
        const json_value *t = json_get(p, "topic"), *pa = json_get(p, "partition"), *r = json_get(p, "replicas");
        if (!t) return mapping_error("No such field exists: `topic`", a);
        if (t->type != JSON_STRING) return mapping_error("Expected `String` value", a);
        if (!pa) return mapping_error("No such field exists: `partition`", a);
        if (!json_is_int32(pa)) return mapping_error("Expected `Int` value", a);
        if (!r) return mapping_error("No such field exists: `replicas`", a);
        if (r->type != JSON_ARRAY) return mapping_error("Expected JSON array", a);
        tpart *tp = tparts_add(out, t->text, (int32_t)pa->integer, a);
        tp->replicas = karena_calloc(a, r->count ? r->count : 1, sizeof(int32_t));
        if (!tp || !tp->replicas) return fail_exc("java.lang.OutOfMemoryError", "out of memory");
        for (size_t k = 0; k < r->count; k++) {
            if (!json_is_int32(r->items[k])) return mapping_error("Expected `Int` value", a);
            tp->replicas[tp->nreplicas++] = (int32_t)r->items[k]->integer;
        }
        const json_value *dirs = json_get(p, "log_dirs");
        if (!dirs) continue;
        if (dirs->type != JSON_ARRAY) return mapping_error("Expected JSON array", a);
        if ((int32_t)dirs->count != tp->nreplicas) {
            printf("Error: Size of replicas list List(");
            print_ids(stdout, tp->replicas, tp->nreplicas);
            printf(") is different from size of log dirs list List(");
            for (size_t k = 0; k < dirs->count; k++)
                printf("%s%s", k ? ", " : "", dirs->items[k]->type == JSON_STRING ? dirs->items[k]->text : "?");
            printf(") for partition %s-%d\n" ADMIN_CMD_FAILED ": Size of replicas list differs\n", tp->topic,
                   tp->partition);
            return 1;
        }
        for (size_t k = 0; k < dirs->count; k++) {
            if (dirs->items[k]->type != JSON_STRING) return mapping_error("Expected `String` value", a);
            if (strcmp(dirs->items[k]->text, "any") != 0) *moves = true;
        }
    }
    return 0;
}

/* ---- requests ---- */

typedef struct ctx {
    kclient *c;
    admin_pool pool;
    karena *a;
    MetadataResponse md;     /* brokers (describeCluster) */
    bool have_md;
} ctx;

static int load_cluster(ctx *x) {
    if (x->have_md) return 0;
    if (kclient_metadata(x->c, NULL, 0, &x->md, NULL, x->a) != 0) return fail_client(x->c);
    x->have_md = true;
    return 0;
}

/* ListPartitionReassignments (all, or the partitions of l). */
static int list_reassignments(ctx *x, const tparts *only, ListPartitionReassignmentsResponse *resp) {
    ListPartitionReassignmentsRequest req;
    ListPartitionReassignmentsRequest_init(&req);
    req.timeout_ms = 60000;
    req.topics = NULL;
    req.topics_count = -1;
    if (only) {
        req.topics = karena_calloc(x->a, only->n ? only->n : 1, sizeof *req.topics);
        if (!req.topics) return fail_exc("java.lang.OutOfMemoryError", "out of memory");
        req.topics_count = 0;
        for (size_t i = 0; i < only->n; i++) {
            ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *t = NULL;
            for (int k = 0; k < req.topics_count; k++)
                if (kstr_eq_c(req.topics[k].name, only->v[i].topic)) t = &req.topics[k];
            if (!t) {
                t = &req.topics[req.topics_count++];
                ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics_init(t);
                t->name = kstr_from(only->v[i].topic);
                t->partition_indexes = karena_calloc(x->a, only->n, sizeof(int32_t));
                t->partition_indexes_count = 0;
                if (!t->partition_indexes) return fail_exc("java.lang.OutOfMemoryError", "out of memory");
            }
            t->partition_indexes[t->partition_indexes_count++] = only->v[i].partition;
        }
    }
    int16_t v = kclient_pick_version(x->c, KAPI_LIST_PARTITION_REASSIGNMENTS);
    if (v < 0)
        return fail_exc("org.apache.kafka.common.errors.UnsupportedVersionException",
                        "The broker does not support LIST_PARTITION_REASSIGNMENTS");
    if (kclient_request(x->c, KAPI_LIST_PARTITION_REASSIGNMENTS, v, &req, resp, x->a) != 0) return fail_client(x->c);
    if (resp->error_code != KERR_NONE) return fail_kafka(resp->error_code, resp->error_message, x->a);
    return 0;
}

/* The ongoing reassignments as tparts (replicas = all replicas), with
 * their adding/removing lists alongside. */
typedef struct ongoing {
    tpart tp;
    int32_t *adding, nadding, *removing, nremoving;
} ongoing;

static int ongoing_of(const ListPartitionReassignmentsResponse *r, ongoing **out, size_t *n, karena *a) {
    size_t total = 0;
    for (int i = 0; i < r->topics_count; i++) total += (size_t)(r->topics[i].partitions_count > 0 ? r->topics[i].partitions_count : 0);
    *out = karena_calloc(a, total ? total : 1, sizeof **out);
    if (!*out) return -1;
    *n = 0;
    for (int i = 0; i < r->topics_count; i++) {
        char *topic = kstr_dup(r->topics[i].name, a);
        for (int j = 0; j < r->topics[i].partitions_count; j++) {
            const ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p = &r->topics[i].partitions[j];
            ongoing *o = &(*out)[(*n)++];
            o->tp = (tpart){topic ? topic : "", p->partition_index, p->replicas, p->replicas_count > 0 ? p->replicas_count : 0};
            o->adding = p->adding_replicas;
            o->nadding = p->adding_replicas_count > 0 ? p->adding_replicas_count : 0;
            o->removing = p->removing_replicas;
            o->nremoving = p->removing_replicas_count > 0 ? p->removing_replicas_count : 0;
        }
    }
    return 0;
}

static const ongoing *ongoing_find(const ongoing *o, size_t n, const char *topic, int32_t partition) {
    for (size_t i = 0; i < n; i++)
        if (o[i].tp.partition == partition && strcmp(o[i].tp.topic, topic) == 0) return &o[i];
    return NULL;
}

/* Metadata for the topics of l; *md set. Unknown topics: -1 after the
 * describeTopics failure was printed when strict, else left out. */
static int describe_topics(ctx *x, const char *const *topics, int n, MetadataResponse *md) {
    if (kclient_metadata(x->c, topics, n, md, NULL, x->a) != 0) return fail_client(x->c);
    return 0;
}

static const MetadataResponse_MetadataResponseTopic *md_topic(const MetadataResponse *md, const char *name) {
    for (int i = 0; i < md->topics_count; i++)
        if (kstr_eq_c(md->topics[i].name, name)) return &md->topics[i];
    return NULL;
}

/* Distinct topic names of l, in first-seen order. */
static const char **topic_names(const tparts *l, int *n, karena *a) {
    const char **v = karena_calloc(a, l->n ? l->n : 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < l->n; i++) {
        bool seen = false;
        for (int k = 0; k < *n; k++)
            if (strcmp(v[k], l->v[i].topic) == 0) seen = true;
        if (!seen) v[(*n)++] = l->v[i].topic;
    }
    return v;
}

/* describeTopics for the partitions' topics: an unknown one fails as
 * Kafka's tool does ("Topic t not found."). Fills current replicas. */
static int current_replicas(ctx *x, const tparts *want, tparts *out, bool every_partition) {
    int nt;
    const char **names = topic_names(want, &nt, x->a);
    MetadataResponse md;
    if (describe_topics(x, names, nt, &md)) return 1;
    for (int i = 0; i < nt; i++) {
        const MetadataResponse_MetadataResponseTopic *t = md_topic(&md, names[i]);
        if (!t || t->error_code == KERR_UNKNOWN_TOPIC_OR_PARTITION)
            return fail_exc("java.util.concurrent.ExecutionException",
                            karena_sprintf(x->a, "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: "
                                                 "Topic %s not found.", names[i]));
        if (t->error_code != KERR_NONE) return fail_kafka(t->error_code, KSTR_NULL, x->a);
        for (int j = 0; j < t->partitions_count; j++) {
            const MetadataResponse_MetadataResponsePartition *p = &t->partitions[j];
            if (!every_partition && !tparts_find(want, names[i], p->partition_index)) continue;
            tpart *tp = tparts_add(out, names[i], p->partition_index, x->a);
            if (!tp) return 1;
            tp->replicas = p->replica_nodes;
            tp->nreplicas = p->replica_nodes_count > 0 ? p->replica_nodes_count : 0;
        }
    }
    return 0;
}

/* IncrementalAlterConfigs of one resource: keys set to value (NULL: delete). */
static int alter_configs(ctx *x, kclient *c, int8_t type, const char *name, const char *const *keys,
                         const char *const *values, int n) {
    IncrementalAlterConfigsRequest req;
    IncrementalAlterConfigsRequest_init(&req);
    IncrementalAlterConfigsRequest_AlterConfigsResource res;
    IncrementalAlterConfigsRequest_AlterConfigsResource_init(&res);
    res.resource_type = type;
    res.resource_name = kstr_from(name);
    IncrementalAlterConfigsRequest_AlterableConfig cfg[4];
    for (int i = 0; i < n; i++) {
        IncrementalAlterConfigsRequest_AlterableConfig_init(&cfg[i]);
        cfg[i].name = kstr_from(keys[i]);
        cfg[i].config_operation = values[i] ? 0 : 1; /* SET, DELETE */
        cfg[i].value = values[i] ? kstr_from(values[i]) : KSTR_NULL;
    }
    res.configs = cfg;
    res.configs_count = n;
    req.resources = &res;
    req.resources_count = 1;
    int16_t v = kclient_pick_version(c, KAPI_INCREMENTAL_ALTER_CONFIGS);
    IncrementalAlterConfigsResponse resp;
    if (v < 0 || kclient_request(c, KAPI_INCREMENTAL_ALTER_CONFIGS, v, &req, &resp, x->a) != 0) return fail_client(c);
    for (int i = 0; i < resp.responses_count; i++)
        if (resp.responses[i].error_code != KERR_NONE)
            return fail_kafka(resp.responses[i].error_code, resp.responses[i].error_message, x->a);
    return 0;
}

/* A broker resource goes to that broker (as the admin client sends it). */
static int alter_broker_configs(ctx *x, int32_t id, const char *const *keys, const char *const *values, int n) {
    if (load_cluster(x)) return 1;
    kclient *c = admin_pool_node(&x->pool, &x->md, id);
    if (!c) return fail_client(x->c);
    char name[16];
    snprintf(name, sizeof name, "%d", id);
    return alter_configs(x, c, CONFIG_RESOURCE_BROKER, name, keys, values, n);
}

/* ---- --list ---- */

static int action_list(ctx *x) {
    ListPartitionReassignmentsResponse r;
    if (list_reassignments(x, NULL, &r)) return 1;
    ongoing *o;
    size_t n;
    if (ongoing_of(&r, &o, &n, x->a) != 0) return 1;
    if (n == 0) {
        printf("No partition reassignments found.\n");
        return 0;
    }
    qsort(o, n, sizeof *o, cmp_tpart); /* tp is the first member */
    printf("Current partition reassignments:\n");
    for (size_t i = 0; i < n; i++) {
        printf("%s-%d: replicas: ", o[i].tp.topic, o[i].tp.partition);
        print_ids(stdout, o[i].tp.replicas, o[i].tp.nreplicas);
        printf(".");
        if (o[i].nadding) {
            printf(" adding: ");
            print_ids(stdout, o[i].adding, o[i].nadding);
            printf(".");
        }
        if (o[i].nremoving) {
            printf(" removing: ");
            print_ids(stdout, o[i].removing, o[i].nremoving);
            printf(".");
        }
        printf("\n");
    }
    return 0;
}

/* ---- throttles ---- */

/* clearAllThrottles: every live broker and every broker of the targets,
 * every topic of the targets. Sets print in insertion order (Scala's small
 * sets; larger ones hash, here ascending). */
static int clear_throttles(ctx *x, const tparts *targets) {
    if (load_cluster(x)) return 1;
    size_t cap = (size_t)x->md.brokers_count;
    for (size_t i = 0; i < targets->n; i++) cap += (size_t)targets->v[i].nreplicas;
    int32_t *ids = karena_calloc(x->a, cap ? cap : 1, sizeof *ids);
    int32_t n = 0;
    if (!ids) return 1;
    for (int i = 0; i < x->md.brokers_count; i++)
        if (!has_id(ids, n, x->md.brokers[i].node_id)) ids[n++] = x->md.brokers[i].node_id;
    for (size_t i = 0; i < targets->n; i++)
        for (int k = 0; k < targets->v[i].nreplicas; k++)
            if (!has_id(ids, n, targets->v[i].replicas[k])) ids[n++] = targets->v[i].replicas[k];
    printf("Clearing broker-level throttles on broker%s ", n == 1 ? "" : "s");
    print_ids(stdout, ids, n);
    printf("\n");
    static const char *const bkeys[] = {LEADER_RATE, FOLLOWER_RATE, LOGDIR_RATE};
    static const char *const nulls[] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        bool live = false;
        for (int k = 0; k < x->md.brokers_count; k++)
            if (x->md.brokers[k].node_id == ids[i]) live = true;
        if (!live) continue; /* nobody to tell */
        if (alter_broker_configs(x, ids[i], bkeys, nulls, 3)) return 1;
    }
    int nt;
    const char **topics = topic_names(targets, &nt, x->a);
    printf("Clearing topic-level throttles on topic%s ", nt == 1 ? "" : "s");
    for (int i = 0; i < nt; i++) printf("%s%s", i ? "," : "", topics[i]);
    printf("\n");
    static const char *const tkeys[] = {LEADER_REPLICAS, FOLLOWER_REPLICAS};
    for (int i = 0; i < nt; i++)
        if (alter_configs(x, x->c, CONFIG_RESOURCE_TOPIC, topics[i], tkeys, nulls, 2)) return 1;
    return 0;
}

/* One partition's move: sources and destinations. */
typedef struct pmove {
    const char *topic;
    int32_t partition;
    int32_t *src, nsrc, *dst, ndst;
} pmove;

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* "p:broker" components of one topic as a sorted set, joined by ",". */
static char *throttle_value(const pmove *m, size_t n, const char *topic, bool leader, karena *a) {
    char **parts = karena_calloc(a, 1 + n * 64, sizeof *parts);
    size_t np = 0;
    for (size_t i = 0; parts && i < n; i++) {
        if (strcmp(m[i].topic, topic) != 0) continue;
        const int32_t *v = leader ? m[i].src : m[i].dst;
        int32_t nv = leader ? m[i].nsrc : m[i].ndst;
        for (int k = 0; k < nv && np < 1 + n * 64; k++) {
            if (!leader && has_id(m[i].src, m[i].nsrc, v[k])) continue;
            char *s = karena_sprintf(a, "%d:%d", m[i].partition, v[k]);
            bool dup = false;
            for (size_t j = 0; j < np; j++)
                if (strcmp(parts[j], s) == 0) dup = true;
            if (!dup) parts[np++] = s;
        }
    }
    if (!parts) return NULL;
    qsort(parts, np, sizeof *parts, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < np; i++) len += strlen(parts[i]) + 1;
    char *out = karena_alloc(a, len);
    if (!out) return NULL;
    out[0] = 0;
    for (size_t i = 0; i < np; i++) {
        if (i) strcat(out, ",");
        strcat(out, parts[i]);
    }
    return out;
}

static int cmp_id(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* calculateProposedMoveMap, then modifyTopicThrottles and
 * modifyInterBrokerThrottle. */
static int set_reassignment_throttle(ctx *x, const ongoing *cur, size_t ncur, const tparts *proposed,
                                     const tparts *current, long long rate) {
    size_t cap = ncur + proposed->n;
    pmove *m = karena_calloc(x->a, cap ? cap : 1, sizeof *m);
    size_t n = 0;
    if (!m) return 1;
    for (size_t i = 0; i < ncur; i++) {
        pmove *p = &m[n++];
        p->topic = cur[i].tp.topic;
        p->partition = cur[i].tp.partition;
        p->src = karena_calloc(x->a, (size_t)cur[i].tp.nreplicas + 1, sizeof(int32_t));
        if (!p->src) return 1;
        for (int k = 0; k < cur[i].tp.nreplicas; k++)
            if (!has_id(cur[i].adding, cur[i].nadding, cur[i].tp.replicas[k])) p->src[p->nsrc++] = cur[i].tp.replicas[k];
        p->dst = cur[i].adding;
        p->ndst = cur[i].nadding;
    }
    for (size_t i = 0; i < proposed->n; i++) {
        const tpart *tp = &proposed->v[i];
        pmove *p = NULL;
        for (size_t k = 0; k < n; k++)
            if (m[k].partition == tp->partition && strcmp(m[k].topic, tp->topic) == 0) p = &m[k];
        if (!p) {
            const tpart *c = tparts_find(current, tp->topic, tp->partition);
            p = &m[n++];
            p->topic = tp->topic;
            p->partition = tp->partition;
            p->src = c ? c->replicas : NULL;
            p->nsrc = c ? c->nreplicas : 0;
        }
        p->dst = karena_calloc(x->a, (size_t)tp->nreplicas + 1, sizeof(int32_t));
        p->ndst = 0;
        if (!p->dst) return 1;
        for (int k = 0; k < tp->nreplicas; k++)
            if (!has_id(p->src, p->nsrc, tp->replicas[k])) p->dst[p->ndst++] = tp->replicas[k];
    }
    /* topics */
    for (size_t i = 0; i < n; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++)
            if (strcmp(m[k].topic, m[i].topic) == 0) first = false;
        if (!first) continue;
        const char *keys[] = {LEADER_REPLICAS, FOLLOWER_REPLICAS};
        const char *vals[] = {throttle_value(m, n, m[i].topic, true, x->a),
                              throttle_value(m, n, m[i].topic, false, x->a)};
        if (!vals[0] || !vals[1]) return 1;
        if (alter_configs(x, x->c, CONFIG_RESOURCE_TOPIC, m[i].topic, keys, vals, 2)) return 1;
    }
    /* brokers: every source and destination, ascending */
    size_t nb = 0, bcap = 1;
    for (size_t i = 0; i < n; i++) bcap += (size_t)(m[i].nsrc + m[i].ndst);
    int32_t *ids = karena_calloc(x->a, bcap, sizeof *ids);
    if (!ids) return 1;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < m[i].nsrc; k++)
            if (!has_id(ids, (int32_t)nb, m[i].src[k])) ids[nb++] = m[i].src[k];
        for (int k = 0; k < m[i].ndst; k++)
            if (!has_id(ids, (int32_t)nb, m[i].dst[k])) ids[nb++] = m[i].dst[k];
    }
    qsort(ids, nb, sizeof *ids, cmp_id);
    char rate_s[32];
    snprintf(rate_s, sizeof rate_s, "%lld", rate);
    const char *keys[] = {LEADER_RATE, FOLLOWER_RATE};
    const char *vals[] = {rate_s, rate_s};
    for (size_t i = 0; i < nb; i++)
        if (alter_broker_configs(x, ids[i], keys, vals, 2)) return 1;
    printf("The inter-broker throttle limit was set to %lld B/s\n", rate);
    return 0;
}

/* ---- --execute ---- */

/* parseExecuteAssignmentArgs' checks. */
static int check_execute_args(const tparts *l, karena *a) {
    if (l->n == 0) return fail_exc(ADMIN_CMD_FAILED, "Partition reassignment list cannot be empty");
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].nreplicas == 0) return fail_exc(ADMIN_CMD_FAILED, "Partition replica list cannot be empty");
    char *dups = NULL;
    for (size_t i = 0; i < l->n; i++) {
        bool earlier = false, later = false;
        for (size_t j = 0; j < l->n; j++) {
            bool same = l->v[j].partition == l->v[i].partition && strcmp(l->v[j].topic, l->v[i].topic) == 0;
            if (same && j < i) earlier = true;
            if (same && j > i) later = true;
        }
        if (!earlier && later)
            dups = karena_sprintf(a, "%s%s%s-%d", dups ? dups : "", dups ? "," : "", l->v[i].topic, l->v[i].partition);
    }
    if (dups)
        return fail_exc(ADMIN_CMD_FAILED,
                        karena_sprintf(a, "Partition reassignment contains duplicate topic partitions: %s", dups));
    char *msg = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const tpart *p = &l->v[i];
        char *ids = NULL;
        for (int k = 0; k < p->nreplicas; k++) {
            bool earlier = false, later = false;
            for (int j = 0; j < p->nreplicas; j++) {
                if (p->replicas[j] != p->replicas[k]) continue;
                if (j < k) earlier = true;
                if (j > k) later = true;
            }
            if (!earlier && later) ids = karena_sprintf(a, "%s%s%d", ids ? ids : "", ids ? "," : "", p->replicas[k]);
        }
        if (ids)
            msg = karena_sprintf(a, "%s%s%s-%d contains multiple entries for %s", msg ? msg : "", msg ? ". " : "",
                                 p->topic, p->partition, ids);
    }
    if (msg)
        return fail_exc(ADMIN_CMD_FAILED,
                        karena_sprintf(a, "Partition replica lists may not contain duplicate entries: %s", msg));
    return 0;
}

/* AlterPartitionReassignments: targets (replicas NULL = cancel). Failed
 * partitions are copied to errs with their messages. */
typedef struct perr {
    tpart tp;
    const char *text;
} perr;

static int alter_reassignments(ctx *x, const tparts *l, bool cancel, perr **errs, size_t *nerr) {
    AlterPartitionReassignmentsRequest req;
    AlterPartitionReassignmentsRequest_init(&req);
    req.timeout_ms = 60000;
    req.topics = karena_calloc(x->a, l->n ? l->n : 1, sizeof *req.topics);
    if (!req.topics) return 1;
    req.topics_count = 0;
    for (size_t i = 0; i < l->n; i++) {
        AlterPartitionReassignmentsRequest_ReassignableTopic *t = NULL;
        for (int k = 0; k < req.topics_count; k++)
            if (kstr_eq_c(req.topics[k].name, l->v[i].topic)) t = &req.topics[k];
        if (!t) {
            t = &req.topics[req.topics_count++];
            AlterPartitionReassignmentsRequest_ReassignableTopic_init(t);
            t->name = kstr_from(l->v[i].topic);
            t->partitions = karena_calloc(x->a, l->n, sizeof *t->partitions);
            t->partitions_count = 0;
            if (!t->partitions) return 1;
        }
        AlterPartitionReassignmentsRequest_ReassignablePartition *p = &t->partitions[t->partitions_count++];
        AlterPartitionReassignmentsRequest_ReassignablePartition_init(p);
        p->partition_index = l->v[i].partition;
        p->replicas = cancel ? NULL : l->v[i].replicas;
        p->replicas_count = cancel ? -1 : l->v[i].nreplicas;
    }
    int16_t v = kclient_pick_version(x->c, KAPI_ALTER_PARTITION_REASSIGNMENTS);
    AlterPartitionReassignmentsResponse resp;
    if (v < 0 || kclient_request(x->c, KAPI_ALTER_PARTITION_REASSIGNMENTS, v, &req, &resp, x->a) != 0)
        return fail_client(x->c);
    *errs = karena_calloc(x->a, l->n ? l->n : 1, sizeof **errs);
    *nerr = 0;
    if (!*errs) return 1;
    for (size_t i = 0; i < l->n; i++) {
        const char *text = NULL;
        if (resp.error_code != KERR_NONE) {
            text = admin_error_text(resp.error_code, resp.error_message, x->a);
        } else {
            for (int k = 0; k < resp.responses_count && !text; k++) {
                if (!kstr_eq_c(resp.responses[k].name, l->v[i].topic)) continue;
                for (int j = 0; j < resp.responses[k].partitions_count; j++) {
                    const AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *pr =
                        &resp.responses[k].partitions[j];
                    if (pr->partition_index == l->v[i].partition && pr->error_code != KERR_NONE)
                        text = admin_error_text(pr->error_code, pr->error_message, x->a);
                }
            }
        }
        if (text) (*errs)[(*nerr)++] = (perr){l->v[i], text};
    }
    return 0;
}

static void print_tp_list(const tparts *l) {
    tpart *v = calloc(l->n ? l->n : 1, sizeof *v);
    if (!v) return;
    memcpy(v, l->v, l->n * sizeof *v);
    qsort(v, l->n, sizeof *v, cmp_tpart);
    for (size_t i = 0; i < l->n; i++) printf("%s%s-%d", i ? "," : "", v[i].topic, v[i].partition);
    free(v);
}

static int print_errors(const char *head, perr *errs, size_t n) {
    qsort(errs, n, sizeof *errs, cmp_tpart); /* tp is the first member */
    printf("%s\n", head);
    for (size_t i = 0; i < n; i++) printf("%s%s-%d: %s", i ? "\n" : "", errs[i].tp.topic, errs[i].tp.partition, errs[i].text);
    printf("\n");
    return 1;
}

static int action_execute(ctx *x, const tparts *proposed, bool additional, long long throttle,
                          long long logdir_throttle) {
    if (check_execute_args(proposed, x->a)) return 1;
    ListPartitionReassignmentsResponse lr;
    if (list_reassignments(x, NULL, &lr)) return 1;
    ongoing *cur;
    size_t ncur;
    if (ongoing_of(&lr, &cur, &ncur, x->a) != 0) return 1;
    if (!additional && ncur > 0) return fail_terse(CANNOT_EXECUTE);
    if (load_cluster(x)) return 1;
    for (size_t i = 0; i < proposed->n; i++)
        for (int k = 0; k < proposed->v[i].nreplicas; k++) {
            bool known = false;
            for (int b = 0; b < x->md.brokers_count; b++)
                if (x->md.brokers[b].node_id == proposed->v[i].replicas[k]) known = true;
            if (!known)
                return fail_exc(ADMIN_CMD_FAILED, karena_sprintf(x->a, "Unknown broker id %d", proposed->v[i].replicas[k]));
        }
    tparts current = {0};
    if (current_replicas(x, proposed, &current, false)) return 1;
    printf("Current partition replica assignment\n\n");
    print_reassignment_json(&current);
    printf("\n\nSave this to use as the --reassignment-json-file option during rollback\n");
    if (throttle >= 0 || logdir_throttle >= 0) {
        printf("%s\n", RUN_VERIFY);
        if (throttle >= 0 && set_reassignment_throttle(x, cur, ncur, proposed, &current, throttle)) return 1;
        if (logdir_throttle >= 0) /* no replica moves between log dirs: no broker to throttle */
            printf("The replica-alter-dir throttle limit was set to %lld B/s\n", logdir_throttle);
    }
    perr *errs;
    size_t nerr;
    if (alter_reassignments(x, proposed, false, &errs, &nerr)) return 1;
    if (nerr) return print_errors("Error reassigning partition(s):", errs, nerr);
    printf("Successfully started partition reassignment%s for ", proposed->n == 1 ? "" : "s");
    print_tp_list(proposed);
    printf("\n");
    return 0;
}

/* ---- --verify ---- */

static int action_verify(ctx *x, const tparts *targets, bool preserve) {
    ListPartitionReassignmentsResponse lr;
    if (list_reassignments(x, NULL, &lr)) return 1;
    ongoing *cur;
    size_t ncur;
    if (ongoing_of(&lr, &cur, &ncur, x->a) != 0) return 1;
    /* topics of the partitions not reassigning: their replicas now */
    tparts lookup = {0};
    for (size_t i = 0; i < targets->n; i++)
        if (!ongoing_find(cur, ncur, targets->v[i].topic, targets->v[i].partition))
            tparts_add(&lookup, targets->v[i].topic, targets->v[i].partition, x->a);
    MetadataResponse md;
    memset(&md, 0, sizeof md);
    int nt = 0;
    const char **names = topic_names(&lookup, &nt, x->a);
    if (nt > 0 && describe_topics(x, names, nt, &md)) return 1;
    tparts sorted = {0};
    for (size_t i = 0; i < targets->n; i++) {
        /* a partition named twice: the later entry (a Map) */
        tpart *tp = tparts_find(&sorted, targets->v[i].topic, targets->v[i].partition);
        if (!tp) tp = tparts_add(&sorted, targets->v[i].topic, targets->v[i].partition, x->a);
        if (!tp) return 1;
        tp->replicas = targets->v[i].replicas;
        tp->nreplicas = targets->v[i].nreplicas;
    }
    qsort(sorted.v, sorted.n, sizeof *sorted.v, cmp_tpart);
    printf("Status of partition reassignment:\n");
    for (size_t i = 0; i < sorted.n; i++) {
        const tpart *tp = &sorted.v[i];
        if (ongoing_find(cur, ncur, tp->topic, tp->partition)) {
            printf("Reassignment of partition %s-%d is still in progress.\n", tp->topic, tp->partition);
            continue;
        }
        const int32_t *now = NULL;
        int32_t nnow = 0;
        const MetadataResponse_MetadataResponseTopic *t = md_topic(&md, tp->topic);
        if (t && t->error_code == KERR_NONE)
            for (int j = 0; j < t->partitions_count; j++)
                if (t->partitions[j].partition_index == tp->partition) {
                    now = t->partitions[j].replica_nodes;
                    nnow = t->partitions[j].replica_nodes_count > 0 ? t->partitions[j].replica_nodes_count : 0;
                }
        if (nnow == tp->nreplicas && (nnow == 0 || memcmp(now, tp->replicas, sizeof(int32_t) * (size_t)nnow) == 0)) {
            printf("Reassignment of partition %s-%d is completed.\n", tp->topic, tp->partition);
        } else {
            printf("There is no active reassignment of partition %s-%d, but replica set is ", tp->topic, tp->partition);
            print_ids(stdout, now, nnow);
            printf(" rather than ");
            print_ids(stdout, tp->replicas, tp->nreplicas);
            printf(".\n");
        }
    }
    printf("\n"); /* the (empty) replica move states */
    if (ncur == 0 && !preserve) return clear_throttles(x, targets);
    return 0;
}

/* ---- --cancel ---- */

static int action_cancel(ctx *x, const tparts *targets, bool preserve) {
    ListPartitionReassignmentsResponse lr;
    if (list_reassignments(x, targets, &lr)) return 1;
    ongoing *cur;
    size_t ncur;
    if (ongoing_of(&lr, &cur, &ncur, x->a) != 0) return 1;
    tparts active = {0};
    for (size_t i = 0; i < ncur; i++)
        if (cur[i].nadding || cur[i].nremoving) tparts_add(&active, cur[i].tp.topic, cur[i].tp.partition, x->a);
    if (active.n) {
        perr *errs;
        size_t nerr;
        if (alter_reassignments(x, &active, true, &errs, &nerr)) return 1;
        if (nerr)
            return print_errors(nerr == 1 ? "Error cancelling partition reassignment for:"
                                          : "Error cancelling partition reassignments for:",
                                errs, nerr);
        printf("Successfully cancelled partition reassignment%s for: ", active.n == 1 ? "" : "s");
        print_tp_list(&active);
        printf("\n");
    } else {
        printf("None of the specified partition reassignments are active.\n");
    }
    printf("None of the specified partition moves are active.\n");
    if (!preserve) return clear_throttles(x, targets);
    return 0;
}

/* ---- --generate ---- */

static uint32_t rand_below(uint32_t n) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint32_t)rand();
    return n ? r % n : 0;
}

static int replica_index(int first, int shift, int k, int n) {
    long s = 1 + (shift + k) % (n - 1);
    return (int)((first + s) % n);
}

/* AdminUtils.assignReplicasToBrokers for one topic (rack-aware when racks
 * are known): out[p * rf + r]. */
static int assign_replicas(const int32_t *brokers, const char *const *racks, int nb, int nparts, int rf,
                           int32_t *out, karena *a) {
    if (rf > nb)
        return fail_exc("org.apache.kafka.common.errors.InvalidReplicationFactorException",
                        karena_sprintf(a, "Replication factor: %d larger than available brokers: %d.", rf, nb));
    int32_t *list = karena_calloc(a, (size_t)nb, sizeof *list);
    if (!list) return 1;
    int nracks = 0;
    const char **rk = karena_calloc(a, (size_t)nb, sizeof *rk);
    if (!rk) return 1;
    if (racks) { /* getRackAlternatedBrokerList: racks sorted, brokers per rack ascending */
        for (int i = 0; i < nb; i++) {
            bool seen = false;
            for (int k = 0; k < nracks; k++)
                if (strcmp(rk[k], racks[i]) == 0) seen = true;
            if (!seen) rk[nracks++] = racks[i];
        }
        qsort(rk, (size_t)nracks, sizeof *rk, cmp_str);
        int32_t *sorted = karena_calloc(a, (size_t)nb, sizeof *sorted);
        int *next = karena_calloc(a, (size_t)nracks, sizeof *next);
        if (!sorted || !next) return 1;
        memcpy(sorted, brokers, sizeof(int32_t) * (size_t)nb);
        qsort(sorted, (size_t)nb, sizeof *sorted, cmp_id);
        int m = 0, ri = 0;
        while (m < nb) {
            /* next broker of rack rk[ri] after next[ri] in ascending order */
            int found = -1, seen = 0;
            for (int i = 0; i < nb && found < 0; i++) {
                int bi = -1;
                for (int k = 0; k < nb; k++)
                    if (brokers[k] == sorted[i]) bi = k;
                if (strcmp(racks[bi], rk[ri]) != 0) continue;
                if (seen++ == next[ri]) found = sorted[i];
            }
            if (found >= 0) {
                list[m++] = found;
                next[ri]++;
            }
            ri = (ri + 1) % nracks;
        }
    } else {
        memcpy(list, brokers, sizeof(int32_t) * (size_t)nb);
    }
    int start = (int)rand_below((uint32_t)nb), shift = (int)rand_below((uint32_t)nb);
    for (int p = 0; p < nparts; p++) {
        if (p > 0 && p % nb == 0) shift++;
        int first = (p + start) % nb;
        int32_t *r = &out[p * rf];
        r[0] = list[first];
        if (!racks) {
            for (int j = 0; j < rf - 1; j++) r[j + 1] = list[replica_index(first, shift, j, nb)];
            continue;
        }
        int n = 1, k = 0;
        while (n < rf) {
            int32_t b = list[replica_index(first, shift * nracks, k, nb)];
            const char *rack = NULL;
            for (int i = 0; i < nb; i++)
                if (brokers[i] == b) rack = racks[i];
            int racks_used = 0;
            bool rack_used = false, broker_used = false;
            for (int i = 0; i < n; i++) {
                const char *ri = NULL;
                for (int q = 0; q < nb; q++)
                    if (brokers[q] == r[i]) ri = racks[q];
                bool first_of_rack = true;
                for (int q = 0; q < i; q++) {
                    const char *rq = NULL;
                    for (int z = 0; z < nb; z++)
                        if (brokers[z] == r[q]) rq = racks[z];
                    if (strcmp(rq, ri) == 0) first_of_rack = false;
                }
                if (first_of_rack) racks_used++;
                if (strcmp(ri, rack) == 0) rack_used = true;
                if (r[i] == b) broker_used = true;
            }
            if ((!rack_used || racks_used == nracks) && (!broker_used || n == nb)) r[n++] = b;
            k++;
        }
    }
    return 0;
}

static int action_generate(ctx *x, const char *topics_json, size_t len, const char *broker_list, bool rack_aware) {
    /* parseGenerateAssignmentArgs: the broker list, then the topics */
    size_t nb = 0;
    int32_t *brokers = karena_calloc(x->a, strlen(broker_list) + 1, sizeof *brokers);
    if (!brokers) return 1;
    for (const char *p = broker_list;;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        char *s = karena_strndup(x->a, p, l);
        int32_t id;
        if (!s || admin_parse_int(s, &id) != 0)
            return fail_exc("java.lang.NumberFormatException", karena_sprintf(x->a, "For input string: \"%s\"", s ? s : ""));
        brokers[nb++] = id;
        if (!comma) break;
        p = comma + 1;
    }
    char *dups = NULL;
    for (size_t i = 0; i < nb; i++) {
        bool earlier = false, later = false;
        for (size_t j = 0; j < nb; j++) {
            if (brokers[j] != brokers[i]) continue;
            if (j < i) earlier = true;
            if (j > i) later = true;
        }
        if (!earlier && later) dups = karena_sprintf(x->a, "%s%s%d", dups ? dups : "", dups ? "," : "", brokers[i]);
    }
    if (dups) return fail_exc(ADMIN_CMD_FAILED, karena_sprintf(x->a, "Broker list contains duplicate entries: %s", dups));
    char err[256];
    json_value *root = json_parse(topics_json, len, x->a, err, sizeof err);
    if (!root) return fail_exc(ADMIN_OP_EXC, "The input string is not a valid JSON");
    if (root->type != JSON_OBJECT) return mapping_error("Expected JSON object", x->a);
    if (check_version(root, x->a)) return 1;
    const json_value *tl = json_get(root, "topics");
    size_t ntopics = 0;
    const char **topics = karena_calloc(x->a, tl && tl->type == JSON_ARRAY ? tl->count + 1 : 1, sizeof *topics);
    if (!topics) return 1;
    if (tl && tl->type != JSON_ARRAY) return mapping_error("Expected JSON array", x->a);
    for (size_t i = 0; tl && i < tl->count; i++) {
        const json_value *t = tl->items[i]->type == JSON_OBJECT ? json_get(tl->items[i], "topic") : NULL;
        if (tl->items[i]->type != JSON_OBJECT) return mapping_error("Expected JSON object", x->a);
        if (!t) return mapping_error("No such field exists: `topic`", x->a);
        if (t->type != JSON_STRING) return mapping_error("Expected `String` value", x->a);
        topics[ntopics++] = t->text;
    }
    dups = NULL;
    for (size_t i = 0; i < ntopics; i++) {
        bool earlier = false, later = false;
        for (size_t j = 0; j < ntopics; j++) {
            if (strcmp(topics[j], topics[i]) != 0) continue;
            if (j < i) earlier = true;
            if (j > i) later = true;
        }
        if (!earlier && later) dups = karena_sprintf(x->a, "%s%s%s", dups ? dups : "", dups ? "," : "", topics[i]);
    }
    if (dups)
        return fail_exc(ADMIN_CMD_FAILED,
                        karena_sprintf(x->a, "List of topics to reassign contains duplicate entries: %s", dups));
    tparts want = {0}, current = {0};
    for (size_t i = 0; i < ntopics; i++) tparts_add(&want, topics[i], -1, x->a);
    if (current_replicas(x, &want, &current, true)) return 1;
    /* getBrokerMetadata: the listed brokers the cluster knows, in its order */
    if (load_cluster(x)) return 1;
    int32_t *ids = karena_calloc(x->a, (size_t)x->md.brokers_count + 1, sizeof *ids);
    const char **racks = karena_calloc(x->a, (size_t)x->md.brokers_count + 1, sizeof *racks);
    if (!ids || !racks) return 1;
    int n = 0, rackless = 0;
    for (int i = 0; i < x->md.brokers_count; i++) {
        if (!has_id(brokers, (int32_t)nb, x->md.brokers[i].node_id)) continue;
        ids[n] = x->md.brokers[i].node_id;
        racks[n] = rack_aware && x->md.brokers[i].rack.len >= 0 ? kstr_dup(x->md.brokers[i].rack, x->a) : NULL;
        if (!racks[n]) rackless++;
        n++;
    }
    if (rack_aware && rackless != 0 && rackless != n)
        return fail_exc(ADMIN_OP_EXC, "Not all brokers have rack information. Add --disable-rack-aware in command "
                                      "line to make replica assignment without rack information.");
    tparts proposed = {0};
    for (size_t i = 0; i < ntopics; i++) {
        int np = 0, rf = 0;
        for (size_t k = 0; k < current.n; k++)
            if (strcmp(current.v[k].topic, topics[i]) == 0) {
                if (np == 0) rf = current.v[k].nreplicas;
                np++;
            }
        if (np == 0) continue;
        int32_t *out = karena_calloc(x->a, (size_t)(np * (rf ? rf : 1)), sizeof *out);
        if (!out) return 1;
        if (assign_replicas(ids, rackless ? NULL : racks, n, np, rf, out, x->a)) return 1;
        for (int p = 0; p < np; p++) {
            tpart *tp = tparts_add(&proposed, topics[i], p, x->a);
            if (!tp) return 1;
            tp->replicas = &out[p * rf];
            tp->nreplicas = rf;
        }
    }
    printf("Current partition replica assignment\n");
    print_reassignment_json(&current);
    printf("\n\nProposed partition reassignment configuration\n");
    print_reassignment_json(&proposed);
    printf("\n");
    return 0;
}

/* ---- options ---- */

static const char *const ACTIONS[] = {"generate", "execute", "verify", "cancel", "list"};

/* validateAndParseArgs' permitted options per action (besides the action
 * and its required options). */
static bool permitted(const char *action, const char *opt) {
    static const char *const verify[] = {"bootstrap-server", "command-config", "preserve-throttles",
                                         "reassignment-json-file", NULL};
    static const char *const generate[] = {"bootstrap-server", "broker-list", "command-config", "disable-rack-aware",
                                           "topics-to-move-json-file", NULL};
    static const char *const execute[] = {"additional", "bootstrap-server", "command-config", "throttle",
                                          "replica-alter-log-dirs-throttle", "timeout", "reassignment-json-file",
                                          NULL};
    static const char *const cancel[] = {"bootstrap-server", "command-config", "preserve-throttles", "timeout",
                                         "reassignment-json-file", NULL};
    static const char *const list[] = {"bootstrap-server", "command-config", NULL};
    const char *const *ok = !strcmp(action, "verify")     ? verify
                            : !strcmp(action, "generate") ? generate
                            : !strcmp(action, "execute")  ? execute
                            : !strcmp(action, "cancel")   ? cancel
                                                          : list;
    if (strcmp(opt, action) == 0) return true;
    for (int i = 0; ok[i]; i++)
        if (strcmp(ok[i], opt) == 0) return true;
    return false;
}

static int parse_long_opt(const opts *o, const char *name, long long *out) {
    const char *s = opts_get(o, name, NULL);
    if (!s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionArgumentConversionException: Cannot parse argument '%s' of "
                        "option %s\n", s, name);
        return -1;
    }
    *out = v;
    return 0;
}

int tool_reassign_partitions(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, specs, OPTS_COUNT(specs), argc, argv) != 0) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    long long throttle = -1, logdir_throttle = -1, timeout = 10000;
    if (parse_long_opt(&o, "throttle", &throttle) || parse_long_opt(&o, "replica-alter-log-dirs-throttle", &logdir_throttle) ||
        parse_long_opt(&o, "timeout", &timeout)) {
        opts_free(&o);
        return 1;
    }
    (void)timeout;
    if (opts_maybe_help_or_version(&o, "This tool helps to move topic partitions between replicas.", &rc)) {
        opts_free(&o);
        return rc;
    }
    const char *action = NULL;
    int nactions = 0;
    for (size_t i = 0; i < sizeof ACTIONS / sizeof *ACTIONS; i++)
        if (opts_has(&o, ACTIONS[i])) {
            nactions++;
            if (!action) action = ACTIONS[i];
        }
    if (nactions != 1) {
        rc = opts_usage_error(&o, "Command must include exactly one action: --generate, --execute, --verify, "
                                  "--cancel, --list");
        opts_free(&o);
        return rc;
    }
    if (!opts_has(&o, "bootstrap-server")) {
        rc = opts_usage_error(&o, "Please specify --bootstrap-server");
        opts_free(&o);
        return rc;
    }
    const char *required[2] = {NULL, NULL};
    if (!strcmp(action, "generate")) required[0] = "topics-to-move-json-file", required[1] = "broker-list";
    else if (strcmp(action, "list") != 0) required[0] = "reassignment-json-file";
    for (int i = 0; i < 2; i++)
        if (required[i] && opts_require(&o, required[i])) {
            opts_free(&o);
            return 1;
        }
    /* options in the order given on the command line */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || !argv[i][2]) continue;
        char name[128];
        snprintf(name, sizeof name, "%s", argv[i] + 2);
        char *eq = strchr(name, '=');
        if (eq) *eq = 0;
        const opt_spec *sp = NULL;
        for (size_t k = 0; k < OPTS_COUNT(specs); k++)
            if (!strcmp(specs[k].name, name)) sp = &specs[k];
        if (!sp) continue;
        if (sp->kind == OPT_ARG && !eq) i++; /* its value */
        if (!permitted(action, name)) {
            char msg[300];
            snprintf(msg, sizeof msg, "Option \"[%s]\" can't be used with action \"[%s]\"", name, action);
            rc = opts_usage_error(&o, msg);
            opts_free(&o);
            return rc;
        }
    }
    karena a;
    karena_init(&a, 0);
    kclient c;
    kclient_init(&c, "reassign-partitions-tool");
    ctx x = {.c = &c, .a = &a};
    admin_pool_init(&x.pool, &c);
    char *text = NULL;
    size_t len = 0;
    tparts targets = {0};
    bool moves = false;
    if (strcmp(action, "list") != 0) {
        const char *path = opts_get(&o, strcmp(action, "generate") ? "reassignment-json-file" : "topics-to-move-json-file", "");
        text = read_input(path, &len);
        if (!text) {
            rc = 1;
            goto out;
        }
    }
    if (opts_has(&o, "command-config") && admin_apply_command_config(&c, opts_get(&o, "command-config", "")) != 0) {
        rc = 1;
        goto out;
    }
    if (strcmp(action, "generate") != 0 && strcmp(action, "list") != 0) {
        if (parse_reassignment(text, len, &targets, &moves, &a)) {
            rc = 1;
            goto out;
        }
        if (moves) {
            rc = fail_exc(ADMIN_CMD_FAILED, "Moving replicas between log directories is not supported by Samsa: use "
                                            "\"any\" in log_dirs");
            goto out;
        }
    }
    if (kclient_connect(&c, opts_get(&o, "bootstrap-server", "")) != 0) {
        rc = fail_client(&c);
        goto out;
    }
    if (!strcmp(action, "list")) rc = action_list(&x);
    else if (!strcmp(action, "generate"))
        rc = action_generate(&x, text, len, opts_get(&o, "broker-list", ""), !opts_has(&o, "disable-rack-aware"));
    else if (!strcmp(action, "execute"))
        rc = action_execute(&x, &targets, opts_has(&o, "additional"), throttle, logdir_throttle);
    else if (!strcmp(action, "verify")) rc = action_verify(&x, &targets, opts_has(&o, "preserve-throttles"));
    else rc = action_cancel(&x, &targets, opts_has(&o, "preserve-throttles"));
out:
    free(text);
    admin_pool_close(&x.pool);
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
