/* topics.c - kafka-topics: create, list, describe, alter and delete topics.
 *
 * Mirrors Kafka's TopicCommand over the admin protocol: Metadata for lists
 * and descriptions, DescribeConfigs for the "Configs:" column, CreateTopics,
 * CreatePartitions and DeleteTopics for changes. Argument checks, output
 * lines and error texts follow TopicCommand; failures while talking to the
 * cluster print "Error while executing topic command : <message>" and exit 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/java_compat.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

static const opt_spec topics_specs[] = {
    {"alter", OPT_FLAG, NULL,
     "Change the partition count and replica assignment of a topic (topic configs are changed "
     "with kafka-configs).", NULL, 0},
    {"at-min-isr-partitions", OPT_FLAG, NULL,
     "With --describe, show only partitions whose ISR size equals the configured minimum.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to",
     "REQUIRED: The Kafka broker(s) to connect to.", NULL, 0},
    {"command-config", OPT_ARG, "String: command config property file",
     "A properties file with settings for the admin client.", NULL, 0},
    {"config", OPT_ARG, "String: name=value",
     "A config override for the topic being created (repeatable).", NULL, 1},
    {"create", OPT_FLAG, NULL, "Create a new topic.", NULL, 0},
    {"delete", OPT_FLAG, NULL, "Delete a topic.", NULL, 0},
    {"delete-config", OPT_ARG, "String: name",
     "A config override to remove from an existing topic (not supported with --bootstrap-server).", NULL, 1},
    {"describe", OPT_FLAG, NULL, "Show details of the given topics.", NULL, 0},
    {"exclude-internal", OPT_FLAG, NULL,
     "Leave internal topics out of --list and --describe (they are shown by default).", NULL, 0},
    {"if-exists", OPT_FLAG, NULL,
     "With --alter, --delete or --describe, act only if the topic exists.", NULL, 0},
    {"if-not-exists", OPT_FLAG, NULL,
     "With --create, do nothing if the topic already exists.", NULL, 0},
    {"list", OPT_FLAG, NULL, "List the available topics.", NULL, 0},
    {"partitions", OPT_ARG, "Integer: # of partitions",
     "Partition count for the topic being created or altered. Adding partitions changes which "
     "partition a key maps to. Defaults to the cluster's setting on create.", NULL, 0},
    {"replica-assignment", OPT_ARG,
     "String: broker_id_for_part1_replica1 : broker_id_for_part1_replica2 , "
     "broker_id_for_part2_replica1 : broker_id_for_part2_replica2 , ...",
     "Explicit partition-to-broker assignment for the topic being created or altered.", NULL, 0},
    {"replication-factor", OPT_ARG, "Integer: replication factor",
     "Replication factor of each partition of the topic being created. Defaults to the cluster's setting.",
     NULL, 0},
    {"topic", OPT_ARG, "String: topic",
     "The topic to create, alter, describe or delete. Except with --create it is a regular expression; "
     "escape regex characters with '\\', e.g. \"test\\.topic\".", NULL, 0},
    {"topic-id", OPT_ARG, "String: topic-id", "The id of the topic to describe.", NULL, 0},
    {"topics-with-overrides", OPT_FLAG, NULL,
     "With --describe, show only topics that override some config.", NULL, 0},
    {"unavailable-partitions", OPT_FLAG, NULL,
     "With --describe, show only partitions whose leader is not available.", NULL, 0},
    {"under-min-isr-partitions", OPT_FLAG, NULL,
     "With --describe, show only partitions whose ISR is smaller than the configured minimum.", NULL, 0},
    {"under-replicated-partitions", OPT_FLAG, NULL,
     "With --describe, show only under-replicated partitions.", NULL, 0},
};

#define ERR_PREFIX "Error while executing topic command : "

typedef struct topics_ctx {
    opts *o;
    kclient c;
    karena a;
    const char *bootstrap;
} topics_ctx;

/* KafkaAdminClient's retryOnQuotaViolation (on by default for
 * TopicCommand's calls): a topic refused with THROTTLING_QUOTA_EXCEEDED
 * (controller_mutation_rate) is asked for again once the response's
 * throttle time is over, until the call's deadline (default.api.timeout.ms);
 * then the refusal stands. */
#define QUOTA_RETRY_DEADLINE_MS 60000
#define RETRY_BACKOFF_MS 100

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits out a quota's throttle time; 0 when the deadline would pass first. */
static int wait_for_quota(int64_t deadline, int32_t throttle_ms) {
    int64_t wait = throttle_ms > RETRY_BACKOFF_MS ? throttle_ms : RETRY_BACKOFF_MS;
    if (mono_ms() + wait >= deadline) return 0;
    struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* Kafka's admin client gives up on an unreachable cluster with this. */
static int fail_call(topics_ctx *t, const char *call) {
    if (t->c.fd < 0 && !t->c.auth_failed)
        printf(ERR_PREFIX "Timed out waiting for a node assignment. Call: %s\n", call);
    else
        printf(ERR_PREFIX "%s\n", t->c.err);
    return 1;
}

static int connect_cluster(topics_ctx *t) {
    return kclient_connect(&t->c, t->bootstrap);
}

/* ---- argument checks (TopicCommandOptions.checkArgs) ---- */

static const char *const actions[] = {"alter", "create", "describe", "list", "delete"};

/* Option "[used]" can't be used with any action in `allowed_mask` complement. */
static int check_invalid_with_actions(const opts *o, const char *used, unsigned allowed_mask) {
    for (int i = 0; i < 5; i++)
        if (!(allowed_mask & (1u << i)) && opts_check_invalid(o, used, actions[i])) return 1;
    return 0;
}
#define A_ALTER 1u
#define A_CREATE 2u
#define A_DESCRIBE 4u
#define A_LIST 8u
#define A_DELETE 16u

static const char *const report_opts[] = {"under-replicated-partitions", "under-min-isr-partitions",
                                          "at-min-isr-partitions", "unavailable-partitions"};

static int check_args(const opts *o) {
    int n = 0;
    for (int i = 0; i < 5; i++) n += opts_has(o, actions[i]) ? 1 : 0;
    if (n != 1)
        return opts_usage_error(o, "Command must include exactly one action: --list, --describe, --create, --alter or --delete");
    if (!opts_has(o, "bootstrap-server")) {
        fprintf(stderr, "Exception in thread \"main\" java.lang.IllegalArgumentException: --bootstrap-server must be specified\n");
        return 1;
    }
    if (opts_has(o, "describe") && opts_has(o, "if-exists")) {
        if (!opts_has(o, "topic") && !opts_has(o, "topic-id"))
            return opts_usage_error(o, "--topic or --topic-id is required to describe a topic");
        if (opts_has(o, "topic") && opts_has(o, "topic-id"))
            printf("Only topic id will be used when both --topic and --topic-id are specified and topicId is not Uuid.ZERO_UUID\n");
    }
    if (!opts_has(o, "list") && !opts_has(o, "describe") && opts_require(o, "topic")) return 1;
    if (opts_has(o, "alter")) {
        if (opts_has(o, "bootstrap-server") && opts_has(o, "config") && opts_has(o, "alter"))
            return opts_usage_error(o, "Option combination \"[bootstrap-server, config]\" can't be used with option \"[alter]\""
                                       " (the kafka-configs CLI supports altering topic configs with a --bootstrap-server option)");
        if (opts_require(o, "partitions")) return 1;
    }
    if (check_invalid_with_actions(o, "config", A_ALTER | A_CREATE)) return 1;
    if (check_invalid_with_actions(o, "delete-config", A_ALTER) || opts_check_invalid(o, "delete-config", "bootstrap-server"))
        return 1;
    if (check_invalid_with_actions(o, "partitions", A_ALTER | A_CREATE)) return 1;
    if (check_invalid_with_actions(o, "replication-factor", A_CREATE)) return 1;
    if (check_invalid_with_actions(o, "replica-assignment", A_CREATE | A_ALTER)) return 1;
    if (opts_has(o, "create") &&
        (opts_check_invalid(o, "replica-assignment", "partitions") ||
         opts_check_invalid(o, "replica-assignment", "replication-factor")))
        return 1;
    for (int i = 0; i < 4; i++) {
        if (check_invalid_with_actions(o, report_opts[i], A_DESCRIBE)) return 1;
        for (int j = 0; j < 4; j++)
            if (j != i && opts_check_invalid(o, report_opts[i], report_opts[j])) return 1;
        if (opts_check_invalid(o, report_opts[i], "topics-with-overrides")) return 1;
    }
    if (check_invalid_with_actions(o, "topics-with-overrides", A_DESCRIBE)) return 1;
    for (int j = 0; j < 4; j++)
        if (opts_check_invalid(o, "topics-with-overrides", report_opts[j])) return 1;
    if (check_invalid_with_actions(o, "if-exists", A_ALTER | A_DELETE | A_DESCRIBE)) return 1;
    if (check_invalid_with_actions(o, "if-not-exists", A_CREATE)) return 1;
    if (check_invalid_with_actions(o, "exclude-internal", A_LIST | A_DESCRIBE)) return 1;
    return 0;
}

/* ---- listing ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of the topics matching --topic (all if absent), in the arena. */
static int get_topics(topics_ctx *t, MetadataResponse *md, const char ***names_out, int *n_out) {
    if (kclient_metadata(&t->c, NULL, 0, md, NULL, &t->a) != 0) return -1;
    const char **names = karena_calloc(&t->a, (size_t)(md->topics_count > 0 ? md->topics_count : 1), sizeof *names);
    if (!names) return -1;
    int n = 0;
    int exclude = opts_has(t->o, "exclude-internal");
    include_list inc;
    const char *pattern = opts_get(t->o, "topic", NULL);
    if (pattern && include_list_init(&inc, pattern) != 0) {
        snprintf(t->c.err, sizeof t->c.err, "Invalid regular expression: %s", pattern);
        return -1;
    }
    for (int32_t i = 0; i < md->topics_count; i++) {
        const MetadataResponse_MetadataResponseTopic *tp = &md->topics[i];
        if (tp->error_code != 0 || tp->name.len < 0) continue;
        char *name = kstr_dup(tp->name, &t->a);
        int internal = tp->is_internal || admin_topic_is_internal(name);
        if (exclude && internal) continue;
        if (pattern && !include_list_matches(&inc, name)) continue;
        names[n++] = name;
    }
    if (pattern) include_list_free(&inc);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *names_out = names;
    *n_out = n;
    return 0;
}

static int ensure_topic_exists(topics_ctx *t, int found) {
    const char *requested = opts_get(t->o, "topic", NULL);
    if (requested && !opts_has(t->o, "if-exists") && found == 0) {
        printf(ERR_PREFIX "Topic '%s' does not exist as expected\n", requested);
        return 1;
    }
    return 0;
}

static int cmd_list(topics_ctx *t) {
    if (connect_cluster(t) != 0) return fail_call(t, "listTopics");
    MetadataResponse md;
    const char **names;
    int n;
    if (get_topics(t, &md, &names, &n) != 0) return fail_call(t, "listTopics");
    /* Kafka prints the names joined by newlines, then a newline: an empty
     * list still prints one empty line. */
    for (int i = 0; i < n; i++) printf("%s%s", i ? "\n" : "", names[i]);
    printf("\n");
    return 0;
}

/* ---- create ---- */

static int parse_replica_assignment(topics_ctx *t, const char *spec, int32_t ***parts, int32_t **counts, int *nparts) {
    int np = 1;
    for (const char *p = spec; *p; p++) np += *p == ',';
    *parts = karena_calloc(&t->a, (size_t)np, sizeof **parts);
    *counts = karena_calloc(&t->a, (size_t)np, sizeof **counts);
    if (!*parts || !*counts) return -1;
    char *copy = karena_strndup(&t->a, spec, strlen(spec));
    char *save = NULL;
    int i = 0;
    for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save), i++) {
        int nb = 1;
        for (const char *p = part; *p; p++) nb += *p == ':';
        int32_t *ids = karena_calloc(&t->a, (size_t)nb, sizeof *ids);
        char *s2 = NULL;
        int k = 0;
        for (char *b = strtok_r(part, ":", &s2); b; b = strtok_r(NULL, ":", &s2)) {
            while (*b == ' ') b++;
            char *e = b + strlen(b);
            while (e > b && e[-1] == ' ') *--e = 0;
            if (admin_parse_int(b, &ids[k]) != 0) {
                printf(ERR_PREFIX "For input string: \"%s\"\n", b);
                return 1;
            }
            for (int j = 0; j < k; j++)
                if (ids[j] == ids[k]) {
                    printf(ERR_PREFIX "Partition replica lists may not contain duplicate entries: %d\n", ids[k]);
                    return 1;
                }
            k++;
        }
        (*parts)[i] = ids;
        (*counts)[i] = k;
        if (k != (*counts)[0]) {
            printf(ERR_PREFIX "Partition %d has different replication factor: [I@%x\n", i, (unsigned)(uintptr_t)ids & 0xfffffff);
            return 1;
        }
    }
    *nparts = i;
    return 0;
}

static int cmd_create(topics_ctx *t) {
    const char *name = opts_get(t->o, "topic", "");
    int32_t partitions = -1, rf = -1;
    if (strchr(name, '.') || strchr(name, '_'))
        printf("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could "
               "collide. To avoid issues it is best to use either, but not both.\n");
    if (opts_has(t->o, "partitions") && admin_parse_int(opts_get(t->o, "partitions", ""), &partitions) != 0) {
        printf(ERR_PREFIX "Cannot parse argument '%s' of option partitions\n", opts_get(t->o, "partitions", ""));
        return 1;
    }
    if (opts_has(t->o, "replication-factor") &&
        admin_parse_int(opts_get(t->o, "replication-factor", ""), &rf) != 0) {
        printf(ERR_PREFIX "Cannot parse argument '%s' of option replication-factor\n",
               opts_get(t->o, "replication-factor", ""));
        return 1;
    }
    CreateTopicsRequest_CreatableTopic topic;
    CreateTopicsRequest_CreatableTopic_init(&topic);
    topic.name = kstr_from(name);
    topic.num_partitions = -1;
    topic.replication_factor = -1;
    topic.assignments_count = 0;
    topic.configs_count = 0;
    size_t nconf = opts_count(t->o, "config");
    if (nconf > 0) {
        topic.configs = karena_calloc(&t->a, nconf, sizeof *topic.configs);
        if (!topic.configs) return 1;
        for (size_t i = 0; i < nconf; i++) {
            const char *kv = opts_get_at(t->o, "config", i);
            const char *eq = strchr(kv, '=');
            if (!eq || strchr(eq + 1, '=')) {
                printf(ERR_PREFIX "requirement failed: Invalid topic config: all configs to be added must be in the format \"key=val\".\n");
                return 1;
            }
            /* Kafka splits on \s*=\s* and trims both sides. */
            const char *ks = kv, *ke = eq;
            while (*ks == ' ') ks++;
            while (ke > ks && ke[-1] == ' ') ke--;
            const char *vs = eq + 1, *ve = eq + strlen(eq);
            while (*vs == ' ') vs++;
            while (ve > vs && ve[-1] == ' ') ve--;
            CreateTopicsRequest_CreateableTopicConfig_init(&topic.configs[i]);
            topic.configs[i].name = (kstr){karena_strndup(&t->a, ks, (size_t)(ke - ks)), (int32_t)(ke - ks)};
            topic.configs[i].value = (kstr){karena_strndup(&t->a, vs, (size_t)(ve - vs)), (int32_t)(ve - vs)};
        }
        topic.configs_count = (int32_t)nconf;
    }
    const char *ra = opts_get(t->o, "replica-assignment", NULL);
    if (ra && *ra) {
        int32_t **parts, *counts;
        int nparts;
        int rc = parse_replica_assignment(t, ra, &parts, &counts, &nparts);
        if (rc) return rc;
        topic.assignments = karena_calloc(&t->a, (size_t)nparts, sizeof *topic.assignments);
        for (int i = 0; i < nparts; i++) {
            CreateTopicsRequest_CreatableReplicaAssignment_init(&topic.assignments[i]);
            topic.assignments[i].partition_index = i;
            topic.assignments[i].broker_ids = parts[i];
            topic.assignments[i].broker_ids_count = counts[i];
        }
        topic.assignments_count = nparts;
    } else {
        if (opts_has(t->o, "replication-factor") && (rf > 32767 || rf < 1)) {
            printf(ERR_PREFIX "The replication factor must be between 1 and 32767 inclusive\n");
            return 1;
        }
        if (opts_has(t->o, "partitions") && partitions < 1) {
            printf(ERR_PREFIX "The partitions must be greater than 0\n");
            return 1;
        }
        topic.num_partitions = partitions;
        topic.replication_factor = (int16_t)rf;
    }
    if (connect_cluster(t) != 0) return fail_call(t, "createTopics");
    int16_t v = kclient_pick_version(&t->c, KAPI_CREATE_TOPICS);
    if (v < 0) {
        printf(ERR_PREFIX "The broker does not support CREATE_TOPICS\n");
        return 1;
    }
    CreateTopicsRequest req;
    CreateTopicsRequest_init(&req);
    req.topics = &topic;
    req.topics_count = 1;
    req.timeout_ms = t->c.request_timeout_ms;
    CreateTopicsResponse resp;
    int64_t deadline = mono_ms() + QUOTA_RETRY_DEADLINE_MS;
    do {
        if (kclient_request(&t->c, KAPI_CREATE_TOPICS, v, &req, &resp, &t->a) != 0)
            return fail_call(t, "createTopics");
    } while (resp.topics_count == 1 && resp.topics[0].error_code == KERR_THROTTLING_QUOTA_EXCEEDED &&
             wait_for_quota(deadline, resp.throttle_time_ms));
    for (int32_t i = 0; i < resp.topics_count; i++) {
        const CreateTopicsResponse_CreatableTopicResult *r = &resp.topics[i];
        if (r->error_code == KERR_TOPIC_ALREADY_EXISTS && opts_has(t->o, "if-not-exists")) return 0;
        if (r->error_code != 0) {
            printf(ERR_PREFIX "%s\n", admin_error_text(r->error_code, r->error_message, &t->a));
            return 1;
        }
    }
    printf("Created topic %s.\n", name);
    return 0;
}

/* ---- alter ---- */

static int cmd_alter(topics_ctx *t) {
    int32_t partitions;
    if (admin_parse_int(opts_get(t->o, "partitions", ""), &partitions) != 0) {
        printf(ERR_PREFIX "Cannot parse argument '%s' of option partitions\n", opts_get(t->o, "partitions", ""));
        return 1;
    }
    if (connect_cluster(t) != 0) return fail_call(t, "listTopics");
    MetadataResponse md;
    const char **names;
    int n;
    if (get_topics(t, &md, &names, &n) != 0) return fail_call(t, "listTopics");
    if (ensure_topic_exists(t, n)) return 1;
    if (n == 0) return 0;
    int32_t **parts = NULL, *counts = NULL;
    int nparts = 0;
    const char *ra = opts_get(t->o, "replica-assignment", NULL);
    if (ra && *ra) {
        int rc = parse_replica_assignment(t, ra, &parts, &counts, &nparts);
        if (rc) return rc;
    }
    CreatePartitionsRequest req;
    CreatePartitionsRequest_init(&req);
    req.topics = karena_calloc(&t->a, (size_t)n, sizeof *req.topics);
    if (!req.topics) return 1;
    for (int i = 0; i < n; i++) {
        CreatePartitionsRequest_CreatePartitionsTopic *tp = &req.topics[i];
        CreatePartitionsRequest_CreatePartitionsTopic_init(tp);
        tp->name = kstr_from(names[i]);
        tp->count = partitions;
        tp->assignments_count = -1;
        if (parts) {
            /* Only the assignments of the new partitions are sent. */
            int32_t existing = 0;
            for (int32_t k = 0; k < md.topics_count; k++)
                if (kstr_eq_c(md.topics[k].name, names[i])) existing = md.topics[k].partitions_count;
            int extra = nparts > existing ? nparts - existing : 0;
            tp->assignments = karena_calloc(&t->a, (size_t)(extra ? extra : 1), sizeof *tp->assignments);
            for (int k = 0; k < extra; k++) {
                CreatePartitionsRequest_CreatePartitionsAssignment_init(&tp->assignments[k]);
                tp->assignments[k].broker_ids = parts[existing + k];
                tp->assignments[k].broker_ids_count = counts[existing + k];
            }
            tp->assignments_count = extra;
        }
    }
    req.topics_count = n;
    req.timeout_ms = t->c.request_timeout_ms;
    int16_t v = kclient_pick_version(&t->c, KAPI_CREATE_PARTITIONS);
    if (v < 0) {
        printf(ERR_PREFIX "The broker does not support CREATE_PARTITIONS\n");
        return 1;
    }
    CreatePartitionsResponse resp;
    int64_t deadline = mono_ms() + QUOTA_RETRY_DEADLINE_MS;
    for (;;) {
        if (kclient_request(&t->c, KAPI_CREATE_PARTITIONS, v, &req, &resp, &t->a) != 0)
            return fail_call(t, "createPartitions");
        /* again with the throttled topics only, while every other one went through */
        int32_t nretry = 0, nfailed = 0;
        for (int32_t i = 0; i < resp.results_count; i++) {
            if (resp.results[i].error_code == KERR_THROTTLING_QUOTA_EXCEEDED) {
                for (int32_t k = nretry; k < req.topics_count; k++)
                    if (kstr_eq(req.topics[k].name, resp.results[i].name)) {
                        CreatePartitionsRequest_CreatePartitionsTopic tmp = req.topics[nretry];
                        req.topics[nretry++] = req.topics[k];
                        req.topics[k] = tmp;
                        break;
                    }
            } else if (resp.results[i].error_code != 0) {
                nfailed++;
            }
        }
        if (nretry == 0 || nfailed > 0 || !wait_for_quota(deadline, resp.throttle_time_ms)) break;
        req.topics_count = nretry;
    }
    for (int32_t i = 0; i < resp.results_count; i++) {
        if (resp.results[i].error_code != 0) {
            printf(ERR_PREFIX "%s\n",
                   admin_error_text(resp.results[i].error_code, resp.results[i].error_message, &t->a));
            return 1;
        }
    }
    return 0;
}

/* ---- delete ---- */

static int cmd_delete(topics_ctx *t) {
    if (connect_cluster(t) != 0) return fail_call(t, "listTopics");
    MetadataResponse md;
    const char **names;
    int n;
    if (get_topics(t, &md, &names, &n) != 0) return fail_call(t, "listTopics");
    if (ensure_topic_exists(t, n)) return 1;
    if (n == 0) return 0;
    int16_t v = kclient_pick_version(&t->c, KAPI_DELETE_TOPICS);
    if (v < 0) {
        printf(ERR_PREFIX "The broker does not support DELETE_TOPICS\n");
        return 1;
    }
    DeleteTopicsRequest req;
    DeleteTopicsRequest_init(&req);
    if (v >= 6) {
        req.topics = karena_calloc(&t->a, (size_t)n, sizeof *req.topics);
        for (int i = 0; i < n; i++) {
            DeleteTopicsRequest_DeleteTopicState_init(&req.topics[i]);
            req.topics[i].name = kstr_from(names[i]);
        }
        req.topics_count = n;
    } else {
        req.topic_names = karena_calloc(&t->a, (size_t)n, sizeof *req.topic_names);
        for (int i = 0; i < n; i++) req.topic_names[i] = kstr_from(names[i]);
        req.topic_names_count = n;
    }
    req.timeout_ms = t->c.request_timeout_ms;
    DeleteTopicsResponse resp;
    int64_t deadline = mono_ms() + QUOTA_RETRY_DEADLINE_MS;
    for (;;) {
        if (kclient_request(&t->c, KAPI_DELETE_TOPICS, v, &req, &resp, &t->a) != 0)
            return fail_call(t, "deleteTopics");
        /* again with the throttled topics only, while every other one went through */
        int32_t nretry = 0, nfailed = 0;
        for (int32_t i = 0; i < resp.responses_count; i++) {
            const DeleteTopicsResponse_DeletableTopicResult *r = &resp.responses[i];
            if (r->error_code != KERR_THROTTLING_QUOTA_EXCEEDED) {
                nfailed += r->error_code != 0;
                continue;
            }
            if (v >= 6) req.topics[nretry++].name = r->name;
            else req.topic_names[nretry++] = r->name;
        }
        if (nretry == 0 || nfailed > 0 || !wait_for_quota(deadline, resp.throttle_time_ms)) break;
        if (v >= 6) req.topics_count = nretry;
        else req.topic_names_count = nretry;
    }
    for (int32_t i = 0; i < resp.responses_count; i++) {
        if (resp.responses[i].error_code != 0) {
            printf(ERR_PREFIX "%s\n",
                   admin_error_text(resp.responses[i].error_code, resp.responses[i].error_message, &t->a));
            return 1;
        }
    }
    return 0;
}

/* ---- describe ---- */

static void print_ids(const int32_t *ids, int32_t n) {
    for (int32_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
}

static int has_id(const int32_t *ids, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static int cmp_partition(const void *a, const void *b) {
    const MetadataResponse_MetadataResponsePartition *x = a, *y = b;
    return (x->partition_index > y->partition_index) - (x->partition_index < y->partition_index);
}

typedef MetadataResponse_MetadataResponseTopic md_topic;
typedef MetadataResponse_MetadataResponsePartition md_partition;
typedef ListPartitionReassignmentsResponse_OngoingPartitionReassignment ongoing_reassignment;

/* What describeTopic learns besides the topics: the live brokers
 * (describeCluster) and the reassignments in progress. */
typedef struct describe_view {
    const MetadataResponse *md;
    int32_t *live;
    int32_t nlive;
    ListPartitionReassignmentsResponse reassignments;
} describe_view;

/* Kafka's describeCluster().nodes(): DescribeCluster, or the Metadata
 * brokers from a broker without it. */
static int live_brokers(topics_ctx *t, describe_view *v) {
    int16_t ver = kclient_pick_version(&t->c, KAPI_DESCRIBE_CLUSTER);
    if (ver < 0) {
        v->live = karena_calloc(&t->a, (size_t)v->md->brokers_count + 1, sizeof *v->live);
        if (!v->live) return -1;
        for (int32_t i = 0; i < v->md->brokers_count; i++) v->live[v->nlive++] = v->md->brokers[i].node_id;
        return 0;
    }
    DescribeClusterRequest req;
    DescribeClusterRequest_init(&req);
    DescribeClusterResponse resp;
    if (kclient_request(&t->c, KAPI_DESCRIBE_CLUSTER, ver, &req, &resp, &t->a) != 0) return -1;
    if (resp.error_code != 0) {
        snprintf(t->c.err, sizeof t->c.err, "%s", admin_error_text(resp.error_code, resp.error_message, &t->a));
        return -1;
    }
    v->live = karena_calloc(&t->a, (size_t)(resp.brokers_count > 0 ? resp.brokers_count : 0) + 1, sizeof *v->live);
    if (!v->live) return -1;
    for (int32_t i = 0; i < resp.brokers_count; i++) v->live[v->nlive++] = resp.brokers[i].broker_id;
    return 0;
}

/* Kafka's listAllReassignments for the described partitions. A broker that
 * does not support it or refuses it means "no reassignments"; any other
 * error fails the command. Returns 0, or -1 with t->c.err set. */
static int list_reassignments(topics_ctx *t, describe_view *v, md_topic *const *topics, int n) {
    ListPartitionReassignmentsResponse_init(&v->reassignments);
    v->reassignments.topics_count = 0;
    int16_t ver = kclient_pick_version(&t->c, KAPI_LIST_PARTITION_REASSIGNMENTS);
    if (ver < 0) return 0;
    ListPartitionReassignmentsRequest req;
    ListPartitionReassignmentsRequest_init(&req);
    req.timeout_ms = t->c.request_timeout_ms;
    req.topics = karena_calloc(&t->a, (size_t)n + 1, sizeof *req.topics);
    if (!req.topics) return -1;
    req.topics_count = n;
    for (int i = 0; i < n; i++) {
        ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *rt = &req.topics[i];
        ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics_init(rt);
        rt->name = topics[i]->name;
        int32_t np = topics[i]->partitions_count > 0 ? topics[i]->partitions_count : 0;
        rt->partition_indexes = karena_calloc(&t->a, (size_t)np + 1, sizeof *rt->partition_indexes);
        if (!rt->partition_indexes) return -1;
        for (int32_t p = 0; p < np; p++) rt->partition_indexes[p] = topics[i]->partitions[p].partition_index;
        rt->partition_indexes_count = np;
    }
    ListPartitionReassignmentsResponse resp;
    if (kclient_request(&t->c, KAPI_LIST_PARTITION_REASSIGNMENTS, ver, &req, &resp, &t->a) != 0) return -1;
    if (resp.error_code == KERR_UNSUPPORTED_VERSION || resp.error_code == KERR_CLUSTER_AUTHORIZATION_FAILED) return 0;
    if (resp.error_code != 0) {
        snprintf(t->c.err, sizeof t->c.err, "%s", admin_error_text(resp.error_code, resp.error_message, &t->a));
        return -1;
    }
    v->reassignments = resp;
    return 0;
}

static const ongoing_reassignment *find_reassignment(const describe_view *v, kstr topic, int32_t partition) {
    for (int32_t i = 0; i < v->reassignments.topics_count; i++) {
        const ListPartitionReassignmentsResponse_OngoingTopicReassignment *rt = &v->reassignments.topics[i];
        if (rt->name.len != topic.len || memcmp(rt->name.p, topic.p, (size_t)topic.len) != 0) continue;
        for (int32_t p = 0; p < rt->partitions_count; p++)
            if (rt->partitions[p].partition_index == partition) return &rt->partitions[p];
    }
    return NULL;
}

/* Kafka's getReplicationFactor: a reassignment counts while one of the
 * partition's replicas is still being added or removed; then the
 * replication factor is its target replicas without the ones being added. */
static int32_t replication_factor(const md_partition *pt, const ongoing_reassignment *ra) {
    if (!ra) return pt->replica_nodes_count;
    int in_progress = 0;
    for (int32_t i = 0; i < pt->replica_nodes_count; i++) {
        int32_t id = pt->replica_nodes[i];
        if (has_id(ra->adding_replicas, ra->adding_replicas_count, id) ||
            has_id(ra->removing_replicas, ra->removing_replicas_count, id))
            in_progress = 1;
    }
    if (!in_progress) return pt->replica_nodes_count;
    int32_t rf = 0;
    for (int32_t i = 0; i < ra->replicas_count; i++)
        if (!has_id(ra->adding_replicas, ra->adding_replicas_count, ra->replicas[i])) rf++;
    return rf;
}

/* The admin client knows a leader only if the Metadata answer lists its
 * broker (MetadataResponse.toPartitionInfo); otherwise "Leader: none". */
static int partition_has_leader(const MetadataResponse *md, const md_partition *pt) {
    if (pt->leader_id < 0) return 0;
    for (int32_t b = 0; b < md->brokers_count; b++)
        if (md->brokers[b].node_id == pt->leader_id) return 1;
    return 0;
}

/* Which partitions the report options select (TopicCommand's
 * PartitionDescription and DescribeOptions). min_isr < 0: unknown. */
typedef struct partition_filter {
    int urp, unavailable, under_min, at_min;
} partition_filter;

static int should_print_partition(const describe_view *v, const partition_filter *r, const md_partition *pt,
                                  const ongoing_reassignment *ra, int min_isr) {
    if (!r->urp && !r->unavailable && !r->under_min && !r->at_min) return 1;
    int has_leader = partition_has_leader(v->md, pt);
    int32_t isr = pt->isr_nodes_count > 0 ? pt->isr_nodes_count : 0;
    if (r->urp && replication_factor(pt, ra) - isr > 0) return 1;
    if (r->unavailable && (!has_leader || !has_id(v->live, v->nlive, pt->leader_id))) return 1;
    if (r->under_min && (!has_leader || (min_isr >= 0 && isr < min_isr))) return 1;
    if (r->at_min && min_isr >= 0 && isr == min_isr) return 1;
    return 0;
}

static void print_partition(const describe_view *v, const char *name, const md_partition *pt,
                            const ongoing_reassignment *ra) {
    printf("\tTopic: %s\tPartition: %d\tLeader: ", name, pt->partition_index);
    if (partition_has_leader(v->md, pt)) printf("%d", pt->leader_id);
    else printf("none");
    printf("\tReplicas: ");
    print_ids(pt->replica_nodes, pt->replica_nodes_count);
    printf("\tIsr: ");
    print_ids(pt->isr_nodes, pt->isr_nodes_count);
    if (ra) {
        printf("\tAdding Replicas: ");
        print_ids(ra->adding_replicas, ra->adding_replicas_count);
        printf("\tRemoving Replicas: ");
        print_ids(ra->removing_replicas, ra->removing_replicas_count);
    }
    printf("\n");
}

/* The topics to describe, in the order Kafka prints them: describeTopics'
 * allTopicNames() is a java.util.HashMap sized for the topics, filled in
 * name order, and TopicCommand walks its values(). */
static int select_topics(topics_ctx *t, const MetadataResponse *md, const char *const *names, int n,
                         md_topic ***out, int *nout) {
    md_topic **sorted = karena_calloc(&t->a, (size_t)n + 1, sizeof *sorted);
    int32_t *hashes = karena_calloc(&t->a, (size_t)n + 1, sizeof *hashes);
    size_t *order = karena_calloc(&t->a, (size_t)n + 1, sizeof *order);
    md_topic **res = karena_calloc(&t->a, (size_t)n + 1, sizeof *res);
    if (!sorted || !hashes || !order || !res) return -1;
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int32_t j = 0; j < md->topics_count; j++)
            if (kstr_eq_c(md->topics[j].name, names[i])) {
                sorted[k] = &md->topics[j];
                hashes[k++] = java_string_hash(names[i], strlen(names[i]));
                break;
            }
    if (java_hashmap_order(hashes, (size_t)k, java_hashmap_capacity((size_t)k, (size_t)k), order) != 0) return -1;
    for (int i = 0; i < k; i++) res[i] = sorted[order[i]];
    *out = res;
    *nout = k;
    return 0;
}

/* The topic named by --topic-id, as getTopicIds finds it (internal topics
 * left out with --exclude-internal). */
static md_topic *topic_by_id(topics_ctx *t, MetadataResponse *md, const kuuid *id) {
    for (int32_t k = 0; k < md->topics_count; k++) {
        md_topic *tp = &md->topics[k];
        if (tp->error_code != 0 || memcmp(tp->topic_id.b, id->b, 16) != 0) continue;
        if (opts_has(t->o, "exclude-internal") && (tp->is_internal || admin_topic_is_internal(kstr_dup(tp->name, &t->a))))
            continue;
        return tp;
    }
    return NULL;
}

/* Prints one topic's header line and the partitions the options select.
 * Returns 0, or 1 after printing the failure. */
static int describe_topic(topics_ctx *t, const describe_view *v, const partition_filter *r, md_topic *tp) {
    int overrides_only = opts_has(t->o, "topics-with-overrides");
    int describe_configs = !r->urp && !r->unavailable && !r->under_min && !r->at_min;
    char *name = kstr_dup(tp->name, &t->a);
    DescribeConfigsResponse_DescribeConfigsResult *cfg = NULL;
    int16_t cv = 0;
    if (admin_describe_configs(&t->c, CONFIG_RESOURCE_TOPIC, name, &cfg, &cv, &t->a) != 0)
        return fail_call(t, "describeConfigs");
    if (cfg->error_code != 0) {
        printf(ERR_PREFIX "%s\n", admin_error_text(cfg->error_code, cfg->error_message, &t->a));
        return 1;
    }
    int min_isr = -1;
    int has_override = 0;
    for (int32_t c = 0; c < cfg->configs_count; c++) {
        const DescribeConfigsResponse_DescribeConfigsResourceResult *e = &cfg->configs[c];
        int is_default = cv == 0 ? e->is_default : e->config_source == CONFIG_SOURCE_DEFAULT;
        if (!is_default) has_override = 1;
        if (kstr_eq_c(e->name, "min.insync.replicas") && e->value.len > 0)
            min_isr = atoi(kstr_dup(e->value, &t->a));
    }
    qsort(tp->partitions, (size_t)tp->partitions_count, sizeof *tp->partitions, cmp_partition);
    if (describe_configs && (!overrides_only || has_override)) {
        printf("Topic: %s", name);
        if (!kuuid_is_zero(&tp->topic_id)) {
            char id[23];
            admin_uuid_str(&tp->topic_id, id);
            printf("\tTopicId: %s", id);
        }
        const ongoing_reassignment *ra0 = find_reassignment(v, tp->name, tp->partitions[0].partition_index);
        printf("\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ", tp->partitions_count,
               replication_factor(&tp->partitions[0], ra0));
        const char *sep = "";
        for (int32_t c = 0; c < cfg->configs_count; c++) {
            const DescribeConfigsResponse_DescribeConfigsResourceResult *e = &cfg->configs[c];
            int is_default = cv == 0 ? e->is_default : e->config_source == CONFIG_SOURCE_DEFAULT;
            if (is_default) continue;
            printf("%s%.*s=%s", sep, (int)e->name.len, e->name.p,
                   e->value.len >= 0 ? kstr_dup(e->value, &t->a) : "null");
            sep = ",";
        }
        printf("\n");
    }
    if (overrides_only) return 0;
    for (int32_t p = 0; p < tp->partitions_count; p++) {
        const md_partition *pt = &tp->partitions[p];
        const ongoing_reassignment *ra = find_reassignment(v, tp->name, pt->partition_index);
        if (should_print_partition(v, r, pt, ra, min_isr)) print_partition(v, name, pt, ra);
    }
    return 0;
}

/* Java's Base64 URL decoder value of a byte: 0..63, -2 for '=', -1 else. */
static int b64url_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return c == '=' ? -2 : -1;
}

/* Kafka's Uuid.fromString (java.util.Base64's URL decoder, its checks and
 * messages). Returns 0, or -1 with Java's IllegalArgumentException message
 * in err. */
static int java_uuid_from_string(const char *str, kuuid *out, char *err, size_t errlen) {
    /* String.getBytes(ISO_8859_1): a character above U+00FF becomes '?'. */
    uint8_t src[64];
    size_t sl = 0, chars = 0;
    for (const uint8_t *p = (const uint8_t *)str; *p && sl < sizeof src; chars++) {
        uint32_t cp = *p++;
        int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
        if (more) cp &= 0x3f >> more;
        for (; more > 0 && (*p & 0xc0) == 0x80; more--) cp = cp << 6 | (*p++ & 0x3f);
        src[sl++] = cp > 0xff ? '?' : (uint8_t)cp;
    }
    if (chars > 24) {
        snprintf(err, errlen, "Input string with prefix `%.*s` is too long to be decoded as a base64 UUID", 24, str);
        return -1;
    }
    if (sl == 1) {
        snprintf(err, errlen, "Input byte[] should at least have 2 bytes for base64 bytes");
        return -1;
    }
    uint8_t dst[32];
    size_t dp = 0, sp = 0;
    uint32_t bits = 0;
    int shiftto = 18;
    while (sp < sl) {
        int b = b64url_value(src[sp++]);
        if (b == -2) {
            if ((shiftto == 6 && (sp == sl || src[sp++] != '=')) || shiftto == 18) {
                snprintf(err, errlen, "Input byte array has wrong 4-byte ending unit");
                return -1;
            }
            break;
        }
        if (b < 0) {
            int8_t sb = (int8_t)src[sp - 1];
            snprintf(err, errlen, "Illegal base64 character %s%x", sb < 0 ? "-" : "", sb < 0 ? -sb : sb);
            return -1;
        }
        bits |= (uint32_t)b << shiftto;
        shiftto -= 6;
        if (shiftto < 0) {
            dst[dp++] = (uint8_t)(bits >> 16);
            dst[dp++] = (uint8_t)(bits >> 8);
            dst[dp++] = (uint8_t)bits;
            shiftto = 18;
            bits = 0;
        }
    }
    if (shiftto == 6) {
        dst[dp++] = (uint8_t)(bits >> 16);
    } else if (shiftto == 0) {
        dst[dp++] = (uint8_t)(bits >> 16);
        dst[dp++] = (uint8_t)(bits >> 8);
    } else if (shiftto == 12) {
        snprintf(err, errlen, "Last unit does not have enough valid bits");
        return -1;
    }
    if (sp < sl) {
        snprintf(err, errlen, "Input byte array has incorrect ending byte at %zu", sp);
        return -1;
    }
    if (dp != 16) {
        snprintf(err, errlen,
                 "Input string `%s` decoded as %zu bytes, which is not equal to the expected 16 bytes of a "
                 "base64-encoded UUID", str, dp);
        return -1;
    }
    memcpy(out->b, dst, 16);
    return 0;
}

static int cmd_describe(topics_ctx *t) {
    /* The topic id is parsed first; the zero id means "none". */
    const char *topic_id_arg = opts_get(t->o, "topic-id", NULL);
    kuuid want_id;
    int use_id = 0;
    if (topic_id_arg) {
        char err[256];
        if (java_uuid_from_string(topic_id_arg, &want_id, err, sizeof err) != 0) {
            printf(ERR_PREFIX "%s\n", err);
            return 1;
        }
        use_id = !kuuid_is_zero(&want_id);
    }
    if (connect_cluster(t) != 0) return fail_call(t, "listTopics");
    MetadataResponse md;
    const char **names;
    int n;
    if (get_topics(t, &md, &names, &n) != 0) return fail_call(t, "listTopics");
    md_topic **topics = NULL;
    int ntopics = 0;
    if (use_id) {
        md_topic *tp = topic_by_id(t, &md, &want_id);
        if (!tp && !opts_has(t->o, "if-exists")) {
            printf(ERR_PREFIX "TopicId '%s' does not exist as expected\n", topic_id_arg);
            return 1;
        }
        topics = karena_calloc(&t->a, 1, sizeof *topics);
        if (!topics) return 1;
        if (tp) topics[ntopics++] = tp;
    } else {
        if (ensure_topic_exists(t, n)) return 1;
        if (select_topics(t, &md, names, n, &topics, &ntopics) != 0) return 1;
    }
    /* A topic without partitions has nothing Kafka could describe. */
    int k = 0;
    for (int i = 0; i < ntopics; i++)
        if (topics[i]->partitions_count > 0) topics[k++] = topics[i];
    ntopics = k;

    describe_view v;
    memset(&v, 0, sizeof v);
    v.md = &md;
    if (live_brokers(t, &v) != 0) return fail_call(t, "describeCluster");
    if (list_reassignments(t, &v, topics, ntopics) != 0) return fail_call(t, "listPartitionReassignments");
    partition_filter r = {opts_has(t->o, "under-replicated-partitions"), opts_has(t->o, "unavailable-partitions"),
                     opts_has(t->o, "under-min-isr-partitions"), opts_has(t->o, "at-min-isr-partitions")};
    for (int i = 0; i < ntopics; i++) {
        int rc = describe_topic(t, &v, &r, topics[i]);
        if (rc) return rc;
    }
    return 0;
}

int tool_topics(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, topics_specs, OPTS_COUNT(topics_specs), argc, argv) != 0) {
        fprintf(stderr, "Exception in thread \"main\" joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    if (o.argc <= 1) {
        rc = opts_usage_error(&o, "Create, delete, describe, or change a topic.");
        opts_free(&o);
        return rc;
    }
    if (opts_maybe_help_or_version(&o, "This tool helps to create, delete, describe, or change a topic.", &rc) ||
        (rc = check_args(&o)) != 0) {
        opts_free(&o);
        return rc;
    }
    topics_ctx t;
    memset(&t, 0, sizeof t);
    t.o = &o;
    kclient_init(&t.c, "adminclient-1");
    karena_init(&t.a, 0);
    t.bootstrap = opts_get(&o, "bootstrap-server", "");
    if (opts_has(&o, "command-config") && admin_apply_command_config(&t.c, opts_get(&o, "command-config", "")) != 0) {
        rc = 1;
    } else if (opts_has(&o, "create")) {
        rc = cmd_create(&t);
    } else if (opts_has(&o, "alter")) {
        rc = cmd_alter(&t);
    } else if (opts_has(&o, "list")) {
        rc = cmd_list(&t);
    } else if (opts_has(&o, "describe")) {
        rc = cmd_describe(&t);
    } else if (opts_has(&o, "delete")) {
        rc = cmd_delete(&t);
    }
    kclient_close(&t.c);
    karena_free(&t.a);
    opts_free(&o);
    return rc;
}
