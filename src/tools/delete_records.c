/* delete_records.c - kafka-delete-records: move partitions' log start offsets forward.
 *
 * Follows Kafka's DeleteRecordsCommand: reads the --offset-json-file
 * ({"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}),
 * finds each partition's leader with Metadata, sends DeleteRecords to the
 * leaders and prints one "partition: t-0\tlow_watermark: N" (or
 * "\terror: <exception>") line per partition, in the order Java's HashMap
 * of results iterates them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/java_compat.h"
#include "tools/json_mini.h"
#include "tools/kclient.h"
#include "tools/opts.h"
#include "tools/tools.h"

static const opt_spec delete_records_specs[] = {
    {"bootstrap-server", OPT_ARG, "String: server(s) to use for bootstrapping",
     "REQUIRED: The Kafka broker(s) to connect to, as host:port[,host:port].", NULL, 0},
    {"command-config", OPT_ARG, "String: command config property file path",
     "A properties file with settings for the admin client.", NULL, 0},
    {"offset-json-file", OPT_ARG, "String: Offset json file path",
     "REQUIRED: A JSON file naming, for each partition, the offset below which records are deleted:\n"
     "{\"partitions\":\n  [{\"topic\": \"foo\", \"partition\": 1, \"offset\": 1}],\n \"version\":1\n}",
     NULL, 0},
};

#define EXC_PREFIX "Exception in thread \"main\" "
#define JSON_MAPPING "com.fasterxml.jackson.databind.JsonMappingException: "
#define ADMIN_OP "org.apache.kafka.server.common.AdminOperationException: "

/* One partition to trim, and what became of it. */
typedef struct trim_target {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader;      /* from Metadata, -1 until known */
    int done;            /* result known */
    int64_t low_watermark;
    const char *error;   /* exception text when failed */
} trim_target;

/* Prints Jackson's "Expected `T` value, received <node>" error; returns 1. */
static int mapping_error(const char *expected, const json_value *v) {
    fprintf(stderr, EXC_PREFIX JSON_MAPPING "Expected %s, received ", expected);
    json_write(stderr, v);
    fputc('\n', stderr);
    return 1;
}

static int missing_field(const char *name) {
    fprintf(stderr, EXC_PREFIX JSON_MAPPING "No such field exists: `%s`\n", name);
    return 1;
}

/* Decodes the offset file like DeleteRecordsCommand.parseOffsetJsonStringWithoutDedup.
 * Returns 0, or 1 after printing the exception. */
static int parse_offsets(const char *text, size_t len, karena *a, trim_target **out, size_t *n) {
    char err[256];
    json_value *root = json_parse(text, len, a, err, sizeof err);
    if (!root) {
        fprintf(stderr, EXC_PREFIX ADMIN_OP "The input string is not a valid JSON\n");
        return 1;
    }
    if (root->type != JSON_OBJECT) return mapping_error("JSON object", root);
    const json_value *version = json_get(root, "version");
    if (version) {
        if (!json_is_int32(version)) return mapping_error("`Integer` value", version);
        if (version->integer != 1) {
            fprintf(stderr, EXC_PREFIX ADMIN_OP "Not supported version field value %lld\n",
                    (long long)version->integer);
            return 1;
        }
    }
    const json_value *parts = json_get(root, "partitions");
    if (!parts) {
        fprintf(stderr, EXC_PREFIX ADMIN_OP "Missing partitions field\n");
        return 1;
    }
    if (parts->type != JSON_ARRAY) return mapping_error("JSON array", parts);
    *out = karena_calloc(a, parts->count ? parts->count : 1, sizeof **out);
    if (!*out) return 1;
    *n = 0;
    for (size_t i = 0; i < parts->count; i++) {
        const json_value *p = parts->items[i];
        if (p->type != JSON_OBJECT) return mapping_error("JSON object", p);
        const json_value *t = json_get(p, "topic"), *pa = json_get(p, "partition"), *o = json_get(p, "offset");
        if (!t) return missing_field("topic");
        if (t->type != JSON_STRING) return mapping_error("`String` value", t);
        if (!pa) return missing_field("partition");
        if (!json_is_int32(pa)) return mapping_error("`Integer` value", pa);
        if (!o) return missing_field("offset");
        if (o->type != JSON_INT) return mapping_error("`Long` value", o);
        trim_target *tt = &(*out)[(*n)++];
        tt->topic = t->text;
        tt->partition = (int32_t)pa->integer;
        tt->offset = o->integer;
    }
    return 0;
}

static int32_t target_hash(const trim_target *t) { return java_topic_partition_hash(t->topic, t->partition); }

/* Orders targets as a java.util.HashMap<TopicPartition, ...> iterates them. */
static size_t *hash_order(const trim_target *t, size_t n) {
    int32_t *h = calloc(n ? n : 1, sizeof *h);
    size_t *order = calloc(n ? n : 1, sizeof *order);
    if (!h || !order) goto fail;
    for (size_t i = 0; i < n; i++) h[i] = target_hash(&t[i]);
    if (java_hashmap_order(h, n, java_hashmap_capacity(n, 0), order) != 0) goto fail;
    free(h);
    return order;
fail:
    free(h);
    free(order);
    return NULL;
}

static int same_partition(const trim_target *a, const trim_target *b) {
    return a->partition == b->partition && strcmp(a->topic, b->topic) == 0;
}

/* Kafka rejects files naming a partition twice, listing them (a HashSet). */
static int check_duplicates(const trim_target *t, size_t n) {
    trim_target *dups = calloc(n ? n : 1, sizeof *dups);
    if (!dups) return 1;
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        int seen_before = 0, again = 0;
        for (size_t j = 0; j < i; j++) seen_before |= same_partition(&t[i], &t[j]);
        for (size_t j = i + 1; j < n; j++) again |= same_partition(&t[i], &t[j]);
        if (!seen_before && again) dups[nd++] = t[i];
    }
    if (nd == 0) {
        free(dups);
        return 0;
    }
    size_t *order = hash_order(dups, nd);
    fprintf(stderr, EXC_PREFIX "org.apache.kafka.server.common.AdminCommandFailedException: "
                    "Offset json file contains duplicate topic partitions: ");
    for (size_t i = 0; i < nd; i++) {
        const trim_target *d = &dups[order ? order[i] : i];
        fprintf(stderr, "%s%s-%d", i ? "," : "", d->topic, d->partition);
    }
    fputc('\n', stderr);
    free(order);
    free(dups);
    return 1;
}

static void fail_target(trim_target *t, karena *a, const char *exception_class, const char *msg) {
    t->done = 1;
    t->error = karena_sprintf(a, "%s: %s", exception_class, msg);
}

/* Sends one DeleteRecords to `leader` for the pending targets it leads. */
static void delete_on_leader(const MetadataResponse *md, int32_t leader, trim_target *t, size_t n,
                             const kclient *proto, karena *a) {
    const MetadataResponse_MetadataResponseBroker *b = NULL;
    for (int32_t i = 0; i < md->brokers_count; i++)
        if (md->brokers[i].node_id == leader) b = &md->brokers[i];
    kclient c;
    kclient_init_like(&c, proto); /* --command-config's security settings too */
    const char *failure = NULL;
    int16_t v = -1;
    DeleteRecordsResponse resp;
    if (!b || kclient_connect_to(&c, kstr_dup(b->host, a), b->port) != 0) {
        failure = "Timed out waiting to send the call. Call: deleteRecords(api=DELETE_RECORDS)";
    } else if ((v = kclient_pick_version(&c, KAPI_DELETE_RECORDS)) < 0) {
        failure = "";
    } else {
        DeleteRecordsRequest req;
        DeleteRecordsRequest_init(&req);
        req.timeout_ms = c.request_timeout_ms;
        req.topics = karena_calloc(a, n, sizeof *req.topics);
        req.topics_count = 0;
        for (size_t i = 0; i < n; i++) {
            if (t[i].done || t[i].leader != leader) continue;
            DeleteRecordsRequest_DeleteRecordsTopic *topic = NULL;
            for (int32_t k = 0; k < req.topics_count; k++)
                if (kstr_eq_c(req.topics[k].name, t[i].topic)) topic = &req.topics[k];
            if (!topic) {
                topic = &req.topics[req.topics_count++];
                DeleteRecordsRequest_DeleteRecordsTopic_init(topic);
                topic->name = kstr_from(t[i].topic);
                topic->partitions = karena_calloc(a, n, sizeof *topic->partitions);
                topic->partitions_count = 0;
            }
            DeleteRecordsRequest_DeleteRecordsPartition *part = &topic->partitions[topic->partitions_count++];
            DeleteRecordsRequest_DeleteRecordsPartition_init(part);
            part->partition_index = t[i].partition;
            part->offset = t[i].offset;
        }
        if (kclient_request(&c, KAPI_DELETE_RECORDS, v, &req, &resp, a) != 0)
            failure = c.err;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].done || t[i].leader != leader) continue;
        if (failure) {
            if (v < 0 && b && c.fd >= 0)
                fail_target(&t[i], a, java_error_class(KERR_UNSUPPORTED_VERSION),
                            "The broker does not support DELETE_RECORDS");
            else
                fail_target(&t[i], a, "org.apache.kafka.common.errors.TimeoutException", failure);
            continue;
        }
        int found = 0;
        for (int32_t k = 0; k < resp.topics_count && !found; k++) {
            if (!kstr_eq_c(resp.topics[k].name, t[i].topic)) continue;
            for (int32_t j = 0; j < resp.topics[k].partitions_count && !found; j++) {
                const DeleteRecordsResponse_DeleteRecordsPartitionResult *r = &resp.topics[k].partitions[j];
                if (r->partition_index != t[i].partition) continue;
                found = 1;
                if (r->error_code == 0) {
                    t[i].done = 1;
                    t[i].low_watermark = r->low_watermark;
                } else {
                    fail_target(&t[i], a, java_error_class(r->error_code), kerr_message(r->error_code));
                }
            }
        }
        if (!found)
            fail_target(&t[i], a, "org.apache.kafka.common.errors.ApiException",
                        karena_sprintf(a, "The response from broker %d did not contain a result for topic partition %s-%d",
                                       leader, t[i].topic, t[i].partition));
    }
    kclient_close(&c);
}

/* Finds the leaders (PartitionLeaderStrategy) and trims every partition. */
static void delete_all(kclient *c, const char *bootstrap, trim_target *t, size_t n, karena *a) {
    const char **names = karena_calloc(a, n, sizeof *names);
    int nnames = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < nnames; k++) seen |= strcmp(names[k], t[i].topic) == 0;
        if (!seen) names[nnames++] = t[i].topic;
        t[i].leader = -1;
    }
    MetadataResponse md;
    if (kclient_connect(c, bootstrap) != 0 || kclient_metadata(c, names, nnames, &md, NULL, a) != 0) {
        for (size_t i = 0; i < n; i++)
            fail_target(&t[i], a, "org.apache.kafka.common.errors.TimeoutException",
                        "Timed out waiting for a node assignment. Call: deleteRecords(api=METADATA)");
        return;
    }
    kclient_close(c);
    for (size_t i = 0; i < n; i++) {
        const MetadataResponse_MetadataResponseTopic *mt = NULL;
        for (int32_t k = 0; k < md.topics_count; k++)
            if (kstr_eq_c(md.topics[k].name, t[i].topic)) mt = &md.topics[k];
        char tp[512];
        snprintf(tp, sizeof tp, "%s-%d", t[i].topic, t[i].partition);
        if (!mt || mt->error_code == KERR_UNKNOWN_TOPIC_OR_PARTITION) {
            fail_target(&t[i], a, java_error_class(KERR_UNKNOWN_TOPIC_OR_PARTITION),
                        karena_sprintf(a, "Failed to fetch metadata for partition %s because metadata for topic `%s` "
                                          "could not be found", tp, t[i].topic));
            continue;
        }
        if (mt->error_code == KERR_INVALID_TOPIC_EXCEPTION) {
            fail_target(&t[i], a, java_error_class(mt->error_code),
                        karena_sprintf(a, "Failed to fetch metadata for partition %s due to invalid topic `%s`", tp,
                                       t[i].topic));
            continue;
        }
        if (mt->error_code != 0) {
            fail_target(&t[i], a, java_error_class(mt->error_code),
                        karena_sprintf(a, "Failed to fetch metadata for partition %s due to unexpected error for "
                                          "topic `%s`", tp, t[i].topic));
            continue;
        }
        for (int32_t k = 0; k < mt->partitions_count; k++)
            if (mt->partitions[k].partition_index == t[i].partition && mt->partitions[k].error_code == 0)
                t[i].leader = mt->partitions[k].leader_id;
        /* Java keeps retrying a partition without a leader until its timeout. */
        if (t[i].leader < 0)
            fail_target(&t[i], a, "org.apache.kafka.common.errors.TimeoutException",
                        "Timed out waiting for a node assignment. Call: deleteRecords(api=METADATA)");
    }
    for (size_t i = 0; i < n; i++)
        if (!t[i].done && t[i].leader >= 0) delete_on_leader(&md, t[i].leader, t, n, c, a);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *g = cap < ((size_t)1 << 30) ? realloc(buf, cap * 2) : NULL;
            if (!g) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = g;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    *len = n;
    return buf;
}

int tool_delete_records(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, delete_records_specs, OPTS_COUNT(delete_records_specs), argc, argv) != 0) {
        fprintf(stderr, EXC_PREFIX "joptsimple.OptionException: %s\n", o.err);
        opts_free(&o);
        return 1;
    }
    if (opts_maybe_help_or_version(&o, "This tool deletes the records of partitions below given offsets.", &rc) ||
        opts_require(&o, "bootstrap-server") || opts_require(&o, "offset-json-file")) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    kclient c;
    kclient_init(&c, "adminclient-1");
    if (opts_has(&o, "command-config") && admin_apply_command_config(&c, opts_get(&o, "command-config", "")) != 0) {
        opts_free(&o);
        return 1;
    }
    const char *path = opts_get(&o, "offset-json-file", "");
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, EXC_PREFIX "java.nio.file.NoSuchFileException: %s\n", path);
        opts_free(&o);
        return 1;
    }
    karena a;
    karena_init(&a, 0);
    trim_target *targets = NULL;
    size_t n = 0;
    size_t *order = NULL;
    if (parse_offsets(text, len, &a, &targets, &n) != 0 || check_duplicates(targets, n) != 0) {
        rc = 1;
        goto out;
    }
    printf("Executing records delete operation\n");
    fflush(stdout);
    if (n > 0) delete_all(&c, opts_get(&o, "bootstrap-server", ""), targets, n, &a);
    printf("Records delete operation completed:\n");
    order = hash_order(targets, n);
    for (size_t i = 0; i < n; i++) {
        const trim_target *t = &targets[order ? order[i] : i];
        if (t->error) printf("partition: %s-%d\terror: %s\n", t->topic, t->partition, t->error);
        else printf("partition: %s-%d\tlow_watermark: %lld\n", t->topic, t->partition, (long long)t->low_watermark);
    }
out:
    free(order);
    free(text);
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
