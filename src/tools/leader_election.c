/* leader_election.c - kafka-leader-election: elect preferred or unclean
 * leaders (Kafka 3.6.1's LeaderElectionCommand).
 *
 * --election-type PREFERRED|UNCLEAN with one of --topic/--partition,
 * --all-topic-partitions or --path-to-json-file
 * ({"partitions":[{"topic":"t","partition":0}]}); sends one ElectLeaders
 * request (all partitions: a null topic list) and prints Kafka's lines:
 *   Successfully completed leader election (PREFERRED) for partitions t-0, t-1
 *   Valid replica already elected for partitions t-2
 *   Error completing leader election (PREFERRED) for partition: t-3: <exception>
 * Failures end as the Java tool's uncaught exceptions do: the exception's
 * line on stderr, exit code 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/java_compat.h"
#include "tools/json_mini.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define EXC_PREFIX "Exception in thread \"main\" "
#define CMD_FAILED "org.apache.kafka.server.common.AdminCommandFailedException: "
#define ADMIN_OP "org.apache.kafka.server.common.AdminOperationException: "
#define JSON_MAPPING "com.fasterxml.jackson.databind.JsonMappingException: "

static const opt_spec election_specs[] = {
    {"admin.config", OPT_ARG, "String: config file", "Configuration properties files to pass to the admin client",
     NULL, 0},
    {"all-topic-partitions", OPT_FLAG, NULL,
     "Perform election on all of the eligible topic partitions based on the type of election (see the "
     "--election-type flag). Not allowed if --topic or --path-to-json-file is specified.",
     NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: host:port",
     "A hostname and port for the broker to connect to, in the form host:port. Multiple comma separated URLs can "
     "be given. REQUIRED.",
     NULL, 0},
    {"election-type", OPT_ARG, "[PREFERRED,UNCLEAN]: election type",
     "Type of election to attempt. Possible values are \"preferred\" for preferred leader election or \"unclean\" "
     "for unclean leader election. If preferred election is selection, the election is only performed if the "
     "current leader is not the preferred leader for the topic partition. If unclean election is selected, the "
     "election is only performed if there are no leader for the topic partition. REQUIRED.",
     NULL, 0},
    {"partition", OPT_ARG, "Integer: partition id",
     "Partition id for which to perform an election. REQUIRED if --topic is specified.", NULL, 0},
    {"path-to-json-file", OPT_ARG, "String: Path to JSON file",
     "The JSON file with the list  of partition for which leader elections should be performed. This is an "
     "example format. \n{\"partitions\":\n\t[{\"topic\": \"foo\", \"partition\": 1},\n\t {\"topic\": \"foobar\", "
     "\"partition\": 2}]\n}\nNot allowed if --all-topic-partitions or --topic flags are specified.",
     NULL, 0},
    {"topic", OPT_ARG, "String: topic name",
     "Name of topic for which to perform an election. Not allowed if --path-to-json-file or --all-topic-partitions "
     "is specified.",
     NULL, 0},
};

/* One partition of the request and what became of it. */
typedef struct elect_target {
    const char *topic;
    int32_t partition;
} elect_target;

typedef struct elect_outcome {
    elect_target tp;
    int16_t error;
    const char *text; /* the exception's toString when failed */
} elect_outcome;

static int fail(const char *klass_and_message) {
    fprintf(stderr, EXC_PREFIX "%s\n", klass_and_message);
    return 1;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
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

static int mapping_error(const char *expected, const json_value *v) {
    fprintf(stderr, EXC_PREFIX JSON_MAPPING "Expected %s, received ", expected);
    json_write(stderr, v);
    fputc('\n', stderr);
    return 1;
}

static int32_t target_hash(const elect_target *t) { return java_topic_partition_hash(t->topic, t->partition); }

/* Iteration order of a Java/Scala hash set of these partitions (n entries,
 * stride bytes apart); insertion order if memory runs out. */
static size_t *hash_order(const elect_target *t, size_t n, size_t stride) {
    size_t *order = calloc(n ? n : 1, sizeof *order);
    int32_t *h = calloc(n ? n : 1, sizeof *h);
    if (!order) {
        free(h);
        return NULL;
    }
    int ok = -1;
    if (h) {
        for (size_t i = 0; i < n; i++) h[i] = target_hash((const elect_target *)((const char *)t + i * stride));
        ok = java_hashmap_order(h, n, java_hashmap_capacity(n, 0), order);
    }
    if (ok != 0)
        for (size_t i = 0; i < n; i++) order[i] = i;
    free(h);
    return order;
}

/* LeaderElectionCommand.parseReplicaElectionData; 0, or 1 after printing
 * the exception. */
static int parse_election_data(const char *text, size_t len, karena *a, elect_target **out, size_t *n) {
    char err[256];
    json_value *root = json_parse(text, len, a, err, sizeof err);
    if (!root) return fail(ADMIN_OP "Replica election data is empty");
    if (root->type != JSON_OBJECT) return mapping_error("JSON object", root);
    const json_value *parts = json_get(root, "partitions");
    if (!parts) return fail(ADMIN_OP "Replica election data is missing \"partitions\" field");
    if (parts->type != JSON_ARRAY) return mapping_error("JSON array", parts);
    *out = karena_calloc(a, parts->count ? parts->count : 1, sizeof **out);
    if (!*out) return 1;
    *n = 0;
    for (size_t i = 0; i < parts->count; i++) {
        const json_value *p = parts->items[i];
        if (p->type != JSON_OBJECT) return mapping_error("JSON object", p);
        const json_value *t = json_get(p, "topic"), *pa = json_get(p, "partition");
        if (!t) return fail(JSON_MAPPING "No such field exists: `topic`");
        if (t->type != JSON_STRING) return mapping_error("`String` value", t);
        if (!pa) return fail(JSON_MAPPING "No such field exists: `partition`");
        if (!json_is_int32(pa)) return mapping_error("`Integer` value", pa);
        (*out)[(*n)++] = (elect_target){t->text, (int32_t)pa->integer};
    }
    /* CoreUtils.duplicates: each partition named more than once, listed once */
    elect_target *dups = karena_calloc(a, *n ? *n : 1, sizeof *dups);
    size_t nd = 0;
    for (size_t i = 0; dups && i < *n; i++) {
        bool earlier = false, later = false;
        for (size_t j = 0; j < *n; j++) {
            bool same = (*out)[j].partition == (*out)[i].partition && strcmp((*out)[j].topic, (*out)[i].topic) == 0;
            if (same && j < i) earlier = true;
            if (same && j > i) later = true;
        }
        if (!earlier && later) dups[nd++] = (*out)[i];
    }
    if (nd > 0) {
        fprintf(stderr, EXC_PREFIX ADMIN_OP "Replica election data contains duplicate partitions: ");
        for (size_t i = 0; i < nd; i++) fprintf(stderr, "%s%s-%d", i ? "," : "", dups[i].topic, dups[i].partition);
        fputc('\n', stderr);
        return 1;
    }
    return 0;
}

/* LeaderElectionCommand.validate; 0, or 1 after printing the exception. */
static int validate(const opts *o) {
    const char *missing[2];
    int nm = 0;
    /* Kafka prepends each missing option to its list */
    if (!opts_has(o, "election-type")) missing[nm++] = "election-type";
    if (!opts_has(o, "bootstrap-server")) missing[nm++] = "bootstrap-server";
    if (nm) {
        fprintf(stderr, EXC_PREFIX CMD_FAILED "Missing required option(s): %s%s%s\n", missing[0], nm > 1 ? ", " : "",
                nm > 1 ? missing[1] : "");
        return 1;
    }
    int exclusive = opts_has(o, "topic") + opts_has(o, "all-topic-partitions") + opts_has(o, "path-to-json-file");
    if (exclusive != 1)
        return fail(CMD_FAILED "One and only one of the following options is required: topic, all-topic-partitions, "
                               "path-to-json-file");
    if (opts_has(o, "topic") && !opts_has(o, "partition"))
        return fail(CMD_FAILED "Missing required option(s): partition");
    if (!opts_has(o, "topic") && opts_has(o, "partition"))
        return fail(CMD_FAILED "Option partition is only allowed if topic is used");
    return 0;
}

/* The request: partitions grouped by topic (null for all partitions). */
static int build_request(ElectLeadersRequest *req, int8_t type, const elect_target *t, size_t n, bool all,
                         karena *a) {
    ElectLeadersRequest_init(req);
    req->election_type = type;
    req->timeout_ms = 30000;
    if (all) {
        req->topic_partitions = NULL;
        req->topic_partitions_count = -1;
        return 0;
    }
    req->topic_partitions = karena_calloc(a, n ? n : 1, sizeof *req->topic_partitions);
    if (!req->topic_partitions) return -1;
    req->topic_partitions_count = 0;
    for (size_t i = 0; i < n; i++) {
        ElectLeadersRequest_TopicPartitions *tp = NULL;
        for (int k = 0; k < req->topic_partitions_count; k++)
            if (kstr_eq_c(req->topic_partitions[k].topic, t[i].topic)) tp = &req->topic_partitions[k];
        if (!tp) {
            tp = &req->topic_partitions[req->topic_partitions_count++];
            ElectLeadersRequest_TopicPartitions_init(tp);
            tp->topic = kstr_from(t[i].topic);
            tp->partitions = karena_calloc(a, n, sizeof(int32_t));
            if (!tp->partitions) return -1;
            tp->partitions_count = 0;
        }
        tp->partitions[tp->partitions_count++] = t[i].partition;
    }
    return 0;
}

/* Prints "<prefix>t-0, t-1" over the outcomes selected, in hash-set order. */
static void print_set(const char *prefix, const elect_outcome *all, size_t n, int16_t which, bool failed_ones,
                      const char *type_name) {
    elect_outcome *sel = calloc(n ? n : 1, sizeof *sel);
    if (!sel) return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool failed = all[i].error != KERR_NONE && all[i].error != KERR_ELECTION_NOT_NEEDED;
        if (failed_ones ? failed : all[i].error == which) sel[m++] = all[i];
    }
    size_t *order = m ? hash_order(&sel[0].tp, m, sizeof *sel) : NULL;
    if (m && !failed_ones) {
        printf("%s", prefix);
        for (size_t i = 0; i < m; i++) {
            const elect_outcome *e = &sel[order ? order[i] : i];
            printf("%s%s-%d", i ? ", " : "", e->tp.topic, e->tp.partition);
        }
        printf("\n");
    }
    for (size_t i = 0; failed_ones && i < m; i++) {
        const elect_outcome *e = &sel[order ? order[i] : i];
        printf("Error completing leader election (%s) for partition: %s-%d: %s\n", type_name, e->tp.topic,
               e->tp.partition, e->text);
    }
    free(order);
    free(sel);
}

static int elect(kclient *c, int8_t type, const char *type_name, const elect_target *t, size_t n, bool all,
                 karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_ELECT_LEADERS);
    if (v < 0)
        return fail("java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
                    "UnsupportedVersionException: The broker does not support ELECT_LEADERS");
    ElectLeadersRequest req;
    ElectLeadersResponse resp;
    if (build_request(&req, type, t, n, all, a) != 0) return fail("java.lang.OutOfMemoryError");
    if (kclient_request(c, KAPI_ELECT_LEADERS, v, &req, &resp, a) != 0) {
        printf("Timeout waiting for election results\n");
        return fail(CMD_FAILED "Timeout waiting for election results");
    }
    if (resp.error_code == KERR_CLUSTER_AUTHORIZATION_FAILED) {
        printf("Not authorized to perform leader election\n");
        return fail(CMD_FAILED "Not authorized to perform leader election");
    }
    if (resp.error_code != KERR_NONE) {
        /* the admin client fails the whole call with the top-level error */
        fprintf(stderr, EXC_PREFIX "java.util.concurrent.ExecutionException: %s: %s\n",
                java_error_class(resp.error_code), kerr_message(resp.error_code));
        return 1;
    }
    size_t total = 0;
    for (int i = 0; i < resp.replica_election_results_count; i++)
        total += (size_t)(resp.replica_election_results[i].partition_result_count > 0
                              ? resp.replica_election_results[i].partition_result_count
                              : 0);
    elect_outcome *out = karena_calloc(a, total ? total : 1, sizeof *out);
    if (!out) return fail("java.lang.OutOfMemoryError");
    size_t m = 0;
    for (int i = 0; i < resp.replica_election_results_count; i++) {
        const ElectLeadersResponse_ReplicaElectionResult *r = &resp.replica_election_results[i];
        char *topic = kstr_dup(r->topic, a);
        for (int j = 0; j < r->partition_result_count; j++) {
            const ElectLeadersResponse_PartitionResult *pr = &r->partition_result[j];
            elect_outcome *e = &out[m++];
            e->tp = (elect_target){topic ? topic : "", pr->partition_id};
            e->error = pr->error_code;
            if (pr->error_code != KERR_NONE)
                e->text = karena_sprintf(a, "%s: %s", java_error_class(pr->error_code),
                                         admin_error_text(pr->error_code, pr->error_message, a));
        }
    }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "Successfully completed leader election (%s) for partitions ", type_name);
    print_set(prefix, out, m, KERR_NONE, false, type_name);
    print_set("Valid replica already elected for partitions ", out, m, KERR_ELECTION_NOT_NEEDED, false, type_name);
    size_t nfailed = 0;
    for (size_t i = 0; i < m; i++)
        if (out[i].error != KERR_NONE && out[i].error != KERR_ELECTION_NOT_NEEDED) nfailed++;
    if (nfailed) {
        print_set("", out, m, 0, true, type_name);
        fflush(stdout);
        fprintf(stderr, EXC_PREFIX CMD_FAILED "%zu replica(s) could not be elected\n", nfailed);
        return 1;
    }
    return 0;
}

int tool_leader_election(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, election_specs, OPTS_COUNT(election_specs), argc, argv) != 0) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    if (opts_maybe_help_or_version(&o,
                                   "This tool attempts to elect a new leader for a set of topic partitions. The type "
                                   "of elections supported are preferred replicas and unclean replicas.",
                                   &rc)) {
        opts_free(&o);
        return rc;
    }
    /* joptsimple converts the values while parsing, before validate() */
    const char *type_arg = opts_get(&o, "election-type", NULL);
    int8_t type = -1;
    if (type_arg && strcasecmp(type_arg, "PREFERRED") == 0) type = 0;
    else if (type_arg && strcasecmp(type_arg, "UNCLEAN") == 0) type = 1;
    if (type_arg && type < 0) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionArgumentConversionException: Cannot parse argument '%s' of "
                        "option election-type\n", type_arg);
        opts_free(&o);
        return 1;
    }
    int32_t partition = 0;
    const char *part_arg = opts_get(&o, "partition", NULL);
    if (part_arg && admin_parse_int(part_arg, &partition) != 0) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionArgumentConversionException: Cannot parse argument '%s' of "
                        "option partition\n", part_arg);
        opts_free(&o);
        return 1;
    }
    if (validate(&o) != 0) {
        opts_free(&o);
        return 1;
    }
    const char *type_name = type == 0 ? "PREFERRED" : "UNCLEAN";
    karena a;
    karena_init(&a, 0);
    kclient c;
    kclient_init(&c, "adminclient-1");
    elect_target *targets = NULL;
    size_t n = 0;
    bool all = opts_has(&o, "all-topic-partitions");
    char *text = NULL;
    if (opts_has(&o, "path-to-json-file")) {
        const char *path = opts_get(&o, "path-to-json-file", "");
        size_t len = 0;
        text = read_file(path, &len);
        if (!text) {
            rc = fail(karena_sprintf(&a, "java.nio.file.NoSuchFileException: %s", path));
            goto out;
        }
        if (parse_election_data(text, len, &a, &targets, &n) != 0) {
            rc = 1;
            goto out;
        }
    } else if (!all) {
        targets = karena_alloc(&a, sizeof *targets);
        if (!targets) {
            rc = 1;
            goto out;
        }
        targets[0] = (elect_target){opts_get(&o, "topic", ""), partition};
        n = 1;
    }
    if (opts_has(&o, "admin.config") && admin_apply_command_config(&c, opts_get(&o, "admin.config", "")) != 0) {
        rc = 1;
        goto out;
    }
    if (kclient_connect(&c, opts_get(&o, "bootstrap-server", "")) != 0) {
        printf("Timeout waiting for election results\n");
        rc = fail(CMD_FAILED "Timeout waiting for election results");
        goto out;
    }
    rc = elect(&c, type, type_name, targets, n, all, &a);
out:
    free(text);
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
