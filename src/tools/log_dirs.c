/* log_dirs.c - kafka-log-dirs: which log directories hold which partitions.
 *
 * Follows Kafka's LogDirsCommand: learns the brokers (DescribeCluster),
 * checks --broker-list against them, asks each chosen broker for its log
 * directories (DescribeLogDirs with all topics) and prints the result as one
 * JSON line, with Java HashMap key and entry order, filtered to --topic-list.
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

static const opt_spec log_dirs_specs[] = {
    {"bootstrap-server", OPT_ARG, "String: The server(s) to use for bootstrapping",
     "REQUIRED: the Kafka broker(s) to connect to, as host:port[,host:port].", NULL, 0},
    {"broker-list", OPT_ARG, "String: Broker list",
     "Comma-separated ids of the brokers to query, e.g. \"0,1,2\". Without it every broker in the cluster "
     "is queried.", "", 0},
    {"command-config", OPT_ARG, "String: Admin client property file",
     "A properties file with settings for the admin client.", NULL, 0},
    {"describe", OPT_FLAG, NULL, "Show the log directories of the chosen brokers.", NULL, 0},
    {"topic-list", OPT_ARG, "String: Topic list",
     "Comma-separated topics to report, e.g. \"topic1,topic2,topic3\". Without it every topic is reported.",
     "", 0},
};

/* A broker to query, with what it answered. */
typedef struct dir_broker {
    int32_t id;
    char host[256];
    int port;
    DescribeLogDirsResponse resp;
} dir_broker;

/* Splits on commas, dropping empty pieces (Kafka's splitAtCommasAndFilterOutEmpty). */
static size_t split_list(const char *s, char *copy, const char **out, size_t max) {
    size_t n = 0;
    strcpy(copy, s);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) out[n++] = t;
    return n;
}

/* Prints the ids in java.util.HashSet<Integer> order, comma-separated. */
static void print_id_set(FILE *f, const int32_t *ids, size_t n) {
    size_t *order = calloc(n ? n : 1, sizeof *order);
    int32_t *h = calloc(n ? n : 1, sizeof *h);
    for (size_t i = 0; i < n && h; i++) h[i] = java_int_hash(ids[i]);
    int ok = order && h && java_hashmap_order(h, n, java_hashmap_capacity(n, 0), order) == 0;
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? "," : "", ids[ok ? order[i] : i]);
    free(order);
    free(h);
}

static int contains_id(const int32_t *ids, size_t n, int32_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

/* The cluster's brokers, via DescribeCluster (or Metadata on old brokers). */
static int list_brokers(kclient *c, dir_broker **out, size_t *n, karena *a) {
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_CLUSTER);
    if (v >= 0) {
        DescribeClusterRequest req;
        DescribeClusterRequest_init(&req);
        DescribeClusterResponse resp;
        if (kclient_request(c, KAPI_DESCRIBE_CLUSTER, v, &req, &resp, a) != 0) return -1;
        if (resp.error_code != 0) {
            snprintf(c->err, sizeof c->err, "%s: %s", java_error_class(resp.error_code),
                     admin_error_text(resp.error_code, resp.error_message, a));
            return -1;
        }
        *out = karena_calloc(a, (size_t)resp.brokers_count + 1, sizeof **out);
        for (int32_t i = 0; i < resp.brokers_count; i++) {
            (*out)[i].id = resp.brokers[i].broker_id;
            snprintf((*out)[i].host, sizeof (*out)[i].host, "%.*s", (int)resp.brokers[i].host.len, resp.brokers[i].host.p);
            (*out)[i].port = resp.brokers[i].port;
        }
        *n = (size_t)resp.brokers_count;
        return 0;
    }
    MetadataResponse md;
    if (kclient_metadata(c, NULL, 0, &md, NULL, a) != 0) return -1;
    *out = karena_calloc(a, (size_t)md.brokers_count + 1, sizeof **out);
    for (int32_t i = 0; i < md.brokers_count; i++) {
        (*out)[i].id = md.brokers[i].node_id;
        snprintf((*out)[i].host, sizeof (*out)[i].host, "%.*s", (int)md.brokers[i].host.len, md.brokers[i].host.p);
        (*out)[i].port = md.brokers[i].port;
    }
    *n = (size_t)md.brokers_count;
    return 0;
}

/* Asks one broker for all its log directories. Returns 0, or -1 with the
 * failure (as Java's ExecutionException message) in err. */
static int query_broker(dir_broker *b, const kclient *proto, karena *a, char *err, size_t errlen) {
    kclient c;
    kclient_init_like(&c, proto); /* --command-config's security settings too */
    int rc = -1;
    int16_t v;
    if (kclient_connect_to(&c, b->host, b->port) != 0) {
        snprintf(err, errlen, "org.apache.kafka.common.errors.TimeoutException: "
                              "Timed out waiting to send the call. Call: describeLogDirs");
    } else if ((v = kclient_pick_version(&c, KAPI_DESCRIBE_LOG_DIRS)) < 0) {
        snprintf(err, errlen, "org.apache.kafka.common.errors.UnsupportedVersionException: "
                              "The broker does not support DESCRIBE_LOG_DIRS");
    } else {
        DescribeLogDirsRequest req;
        DescribeLogDirsRequest_init(&req);
        req.topics = NULL;
        req.topics_count = -1; /* all topics */
        if (kclient_request(&c, KAPI_DESCRIBE_LOG_DIRS, v, &req, &b->resp, a) != 0) {
            snprintf(err, errlen, "org.apache.kafka.common.errors.TimeoutException: %s", c.err);
        } else if (b->resp.results_count <= 0) {
            /* Brokers before v3 had no error code: an empty answer meant "not authorized". */
            int16_t code = b->resp.error_code ? b->resp.error_code : KERR_CLUSTER_AUTHORIZATION_FAILED;
            snprintf(err, errlen, "%s: %s", java_error_class(code), kerr_message(code));
        } else {
            rc = 0;
        }
    }
    kclient_close(&c);
    return rc;
}

typedef struct part_ref {
    const char *topic;
    const DescribeLogDirsResponse_DescribeLogDirsPartition *p;
} part_ref;

static int topic_wanted(const char *const *topics, size_t ntopics, const char *t) {
    if (ntopics == 0) return 1;
    for (size_t i = 0; i < ntopics; i++)
        if (strcmp(topics[i], t) == 0) return 1;
    return 0;
}

static void print_log_dir(const DescribeLogDirsResponse_DescribeLogDirsResult *r, const char *const *topics,
                          size_t ntopics, karena *a) {
    size_t total = 0;
    for (int32_t t = 0; t < r->topics_count; t++) total += (size_t)(r->topics[t].partitions_count > 0 ? r->topics[t].partitions_count : 0);
    part_ref *refs = karena_calloc(a, total + 1, sizeof *refs);
    int32_t *hashes = karena_calloc(a, total + 1, sizeof *hashes);
    size_t *order = karena_calloc(a, total + 1, sizeof *order);
    size_t n = 0;
    for (int32_t t = 0; t < r->topics_count; t++) {
        char *name = kstr_dup(r->topics[t].name, a);
        if (!topic_wanted(topics, ntopics, name)) continue;
        for (int32_t p = 0; p < r->topics[t].partitions_count; p++) {
            refs[n].topic = name;
            refs[n].p = &r->topics[t].partitions[p];
            hashes[n] = java_topic_partition_hash(name, refs[n].p->partition_index);
            n++;
        }
    }
    int ok = java_hashmap_order(hashes, n, java_hashmap_capacity(n, 0), order) == 0;
    printf("{\"partitions\":[");
    for (size_t i = 0; i < n; i++) {
        const part_ref *pr = &refs[ok ? order[i] : i];
        char tp[512];
        int len = snprintf(tp, sizeof tp, "%s-%d", pr->topic, pr->p->partition_index);
        printf("%s{\"partition\":", i ? "," : "");
        json_write_string(stdout, tp, (size_t)(len < (int)sizeof tp ? len : (int)sizeof tp - 1));
        printf(",\"size\":%lld,\"offsetLag\":%lld,\"isFuture\":%s}", (long long)pr->p->partition_size,
               (long long)pr->p->offset_lag, pr->p->is_future_key ? "true" : "false");
    }
    printf("],\"error\":");
    if (r->error_code) json_write_string(stdout, java_error_class(r->error_code), strlen(java_error_class(r->error_code)));
    else printf("null");
    printf(",\"logDir\":");
    json_write_string(stdout, r->log_dir.p ? r->log_dir.p : "", r->log_dir.len > 0 ? (size_t)r->log_dir.len : 0);
    printf("}");
}

static void print_json(dir_broker *const *brokers, size_t n, const char *const *topics, size_t ntopics, karena *a) {
    int32_t *h = karena_calloc(a, n + 1, sizeof *h);
    size_t *order = karena_calloc(a, n + 1, sizeof *order);
    for (size_t i = 0; i < n; i++) h[i] = java_int_hash(brokers[i]->id);
    int ok = java_hashmap_order(h, n, java_hashmap_capacity(n, n), order) == 0;
    printf("{\"brokers\":[");
    for (size_t i = 0; i < n; i++) {
        const dir_broker *b = brokers[ok ? order[i] : i];
        printf("%s{\"broker\":%d,\"logDirs\":[", i ? "," : "", b->id);
        /* Log directories: a HashMap<String, ...> sized for the answer. */
        size_t nd = (size_t)b->resp.results_count;
        int32_t *dh = karena_calloc(a, nd + 1, sizeof *dh);
        size_t *dorder = karena_calloc(a, nd + 1, sizeof *dorder);
        for (size_t d = 0; d < nd; d++) dh[d] = java_string_hash(b->resp.results[d].log_dir.p, (size_t)b->resp.results[d].log_dir.len);
        int dok = java_hashmap_order(dh, nd, java_hashmap_capacity(nd, nd), dorder) == 0;
        for (size_t d = 0; d < nd; d++) {
            if (d) printf(",");
            print_log_dir(&b->resp.results[dok ? dorder[d] : d], topics, ntopics, a);
        }
        printf("]}");
    }
    printf("],\"version\":1}\n");
}

int tool_log_dirs(int argc, char **argv) {
    opts o;
    int rc = 0;
    if (opts_parse(&o, log_dirs_specs, OPTS_COUNT(log_dirs_specs), argc, argv) != 0) {
        fprintf(stderr, "%s\njoptsimple.OptionException: %s\n", o.err, o.err);
        opts_free(&o);
        return 1;
    }
    if (opts_maybe_help_or_version(&o, "This tool reports how the brokers' log directories are used.", &rc) ||
        opts_require(&o, "bootstrap-server") || opts_require(&o, "describe")) {
        opts_free(&o);
        return rc ? rc : 1;
    }
    karena a;
    karena_init(&a, 0);
    kclient c;
    kclient_init(&c, "log-dirs-tool");
    const char *topic_arg = opts_get(&o, "topic-list", ""), *broker_arg = opts_get(&o, "broker-list", "");
    char *tcopy = karena_alloc(&a, strlen(topic_arg) + 1), *bcopy = karena_alloc(&a, strlen(broker_arg) + 1);
    const char **topics = karena_calloc(&a, strlen(topic_arg) + 1, sizeof *topics);
    const char **bstr = karena_calloc(&a, strlen(broker_arg) + 1, sizeof *bstr);
    size_t ntopics = split_list(topic_arg, tcopy, topics, strlen(topic_arg) + 1);
    size_t nwant = split_list(broker_arg, bcopy, bstr, strlen(broker_arg) + 1);
    int32_t *wanted = karena_calloc(&a, nwant + 1, sizeof *wanted);
    size_t nwanted = 0;
    for (size_t i = 0; i < nwant; i++) {
        int32_t id;
        if (admin_parse_int(bstr[i], &id) != 0) {
            fprintf(stderr, "For input string: \"%s\"\njava.lang.NumberFormatException: For input string: \"%s\"\n",
                    bstr[i], bstr[i]);
            rc = 1;
            goto out;
        }
        if (!contains_id(wanted, nwanted, id)) wanted[nwanted++] = id;
    }
    if (opts_has(&o, "command-config") && admin_apply_command_config(&c, opts_get(&o, "command-config", "")) != 0) {
        rc = 1;
        goto out;
    }
    if (strcmp(c.client_id, "adminclient-1") == 0) snprintf(c.client_id, sizeof c.client_id, "log-dirs-tool");
    dir_broker *cluster = NULL;
    size_t ncluster = 0;
    if (kclient_connect(&c, opts_get(&o, "bootstrap-server", "")) != 0) {
        const char *m = "org.apache.kafka.common.errors.TimeoutException: "
                        "Timed out waiting for a node assignment. Call: describeCluster";
        fprintf(stderr, "%s\njava.util.concurrent.ExecutionException: %s\n", m, m);
        rc = 1;
        goto out;
    }
    if (list_brokers(&c, &cluster, &ncluster, &a) != 0) {
        fprintf(stderr, "%s\njava.util.concurrent.ExecutionException: %s\n", c.err, c.err);
        rc = 1;
        goto out;
    }
    kclient_close(&c);
    int32_t *cluster_ids = karena_calloc(&a, ncluster + 1, sizeof *cluster_ids);
    for (size_t i = 0; i < ncluster; i++) cluster_ids[i] = cluster[i].id;
    /* Requested ids the cluster does not have. */
    int32_t *missing = karena_calloc(&a, nwanted + 1, sizeof *missing);
    size_t nmissing = 0;
    for (size_t i = 0; i < nwanted; i++)
        if (!contains_id(cluster_ids, ncluster, wanted[i])) missing[nmissing++] = wanted[i];
    if (nmissing) {
        fprintf(stderr, "ERROR: The given brokers do not exist from --broker-list: ");
        print_id_set(stderr, missing, nmissing);
        fprintf(stderr, ". Current existent brokers: ");
        print_id_set(stderr, cluster_ids, ncluster);
        fprintf(stderr, "\n");
        rc = 1;
        goto out;
    }
    /* The brokers to query, in the order of Java's HashSet of their ids. */
    dir_broker **chosen = karena_calloc(&a, ncluster + 1, sizeof *chosen);
    int32_t *chosen_ids = karena_calloc(&a, ncluster + 1, sizeof *chosen_ids);
    size_t nchosen = 0;
    for (size_t i = 0; i < ncluster; i++)
        if ((nwanted == 0 || contains_id(wanted, nwanted, cluster[i].id)) &&
            !contains_id(chosen_ids, nchosen, cluster[i].id)) {
            chosen_ids[nchosen] = cluster[i].id;
            chosen[nchosen++] = &cluster[i];
        }
    printf("Querying brokers for log directories information\n");
    fflush(stdout);
    for (size_t i = 0; i < nchosen; i++) {
        char err[600];
        if (query_broker(chosen[i], &c, &a, err, sizeof err) != 0) {
            fprintf(stderr, "%s\njava.util.concurrent.ExecutionException: %s\n", err, err);
            rc = 1;
            goto out;
        }
    }
    printf("Received log directory information from brokers ");
    print_id_set(stdout, chosen_ids, nchosen);
    printf("\n");
    print_json(chosen, nchosen, topics, ntopics, &a);
out:
    kclient_close(&c);
    karena_free(&a);
    opts_free(&o);
    return rc;
}
