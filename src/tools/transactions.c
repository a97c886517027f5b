/* transactions.c - kafka-transactions: inspect transactional producers and
 * abort hanging transactions.
 *
 * Follows Kafka 3.6.1's TransactionsCommand (argparse4j command line):
 *   list                 ListTransactions on every broker
 *   describe             FindCoordinator (transaction key) + DescribeTransactions
 *   describe-producers   DescribeProducers on the partition leader (or --broker-id)
 *   abort                WriteTxnMarkers (ABORT) to the partition leader, the
 *                        producer found by DescribeProducers from --start-offset
 *                        or given with --producer-id/--producer-epoch/--coordinator-epoch
 *   find-hanging         open transactions older than --max-transaction-timeout
 *                        whose coordinator does not know them (any more)
 * Tables are ToolsUtils.prettyPrintTable's: columns padded to their widest
 * cell, each followed by a tab. Rows keep the iteration order of the Java
 * HashMaps/HashSets Kafka's admin client returns; failures print Kafka's
 * "<what>: <cause message>. Enable debug logging for additional detail."
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "tools/admin_common.h"
#include "tools/argp.h"
#include "tools/java_compat.h"
#include "tools/kclient.h"
#include "tools/tools.h"

static const argp_arg txn_main_args[] = {
    {"--version", "-v", ARGP_VERSION, ARGP_STRING, 0, "show the version of this Kafka distribution and exit", NULL},
    {"--command-config", NULL, ARGP_STORE, ARGP_STRING, 0,
     "property file containing configs to be passed to admin client", NULL},
    {"--bootstrap-server", NULL, ARGP_STORE, ARGP_STRING, 1,
     "hostname and port for the broker to connect to, in the form `host:port`  (multiple comma-separated entries "
     "can be given)",
     NULL},
};

static const char *const txn_main_metavars[] = {NULL, "FILE", "host:port"};

static const argp_arg describe_args[] = {
    {"--transactional-id", NULL, ARGP_STORE, ARGP_STRING, 1, "transactional id", NULL},
};

static const argp_arg describe_producers_args[] = {
    {"--broker-id", NULL, ARGP_STORE, ARGP_INT, 0,
     "optional broker id to describe the producer state on a specific replica", NULL},
    {"--topic", NULL, ARGP_STORE, ARGP_STRING, 1, "topic name", NULL},
    {"--partition", NULL, ARGP_STORE, ARGP_INT, 1, "partition number", NULL},
};

#define NEW_BROKERS                                                                                     \
    "Brokers on versions 3.0 and above\nFor newer brokers, only the start offset of the transaction to be " \
    "aborted is required"
#define OLD_BROKERS "Brokers on versions older than 3.0\nFor older brokers, you must provide all of these arguments"

static const argp_arg abort_args[] = {
    {"--topic", NULL, ARGP_STORE, ARGP_STRING, 1, "topic name", NULL},
    {"--partition", NULL, ARGP_STORE, ARGP_INT, 1, "partition number", NULL},
    {"--start-offset", NULL, ARGP_STORE, ARGP_LONG, 0, "start offset of the transaction to abort",
     NEW_BROKERS},
    {"--producer-id", NULL, ARGP_STORE, ARGP_LONG, 0, "producer id", OLD_BROKERS},
    {"--producer-epoch", NULL, ARGP_STORE, ARGP_SHORT, 0, "producer epoch", OLD_BROKERS},
    {"--coordinator-epoch", NULL, ARGP_STORE, ARGP_INT, 0, "coordinator epoch", OLD_BROKERS},
};

static const argp_arg find_hanging_args[] = {
    {"--broker-id", NULL, ARGP_STORE, ARGP_INT, 0, "broker id to search for hanging transactions", NULL},
    {"--max-transaction-timeout", NULL, ARGP_STORE, ARGP_INT, 0,
     "maximum transaction timeout in minutes to limit the scope of the search (15 minutes by default)", NULL},
    {"--topic", NULL, ARGP_STORE, ARGP_STRING, 0,
     "topic name to limit search to (required if --partition is specified)", NULL},
    {"--partition", NULL, ARGP_STORE, ARGP_INT, 0, "partition number", NULL},
};

static const argp_command txn_commands[] = {
    {"list", "list transactions", NULL, 0},
    {"describe", "describe the state of an active transactional-id\nDescribe the state of an active transactional-id.",
     describe_args, 1},
    {"describe-producers", "describe the states of active producers for a topic partition", describe_producers_args, 3},
    {"abort", "abort a hanging transaction (requires administrative privileges)", abort_args, 6},
    {"find-hanging", "find hanging transactions", find_hanging_args, 4},
};

static const argp_parser txn_parser = {
    "kafka-transactions.sh",
    "This tool is used to analyze the transactional state of producers in the cluster. It can be used to detect "
    "and recover from hanging transactions.",
    txn_main_args, 3, txn_commands, 5,
    "commands", "COMMAND", txn_main_metavars, 1,
};

/* ---- shared ---- */

typedef struct txn_ctx {
    kclient c;          /* bootstrap connection */
    admin_pool pool;
    karena a;
    MetadataResponse md;
    int have_md;
} txn_ctx;

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* TransactionsCommand.printErrorAndExit(message, cause). */
static int fail(const char *what, const char *cause) {
    fprintf(stderr, "%s: %s. Enable debug logging for additional detail.\n", what, cause);
    return 1;
}

static int fail_plain(const char *message) {
    fprintf(stderr, "%s\n", message);
    return 1;
}

static const char *fmt(karena *a, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(karena *a, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char buf[2048];
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return karena_strndup(a, buf, strlen(buf));
}

static const char *ks(karena *a, kstr s) { return s.len >= 0 && s.p ? karena_strndup(a, s.p, (size_t)s.len) : "null"; }

static int metadata(txn_ctx *x, const char *const *topics, int ntopics) {
    if (kclient_metadata(&x->c, topics, ntopics, &x->md, NULL, &x->a) != 0) return -1;
    x->have_md = 1;
    return 0;
}

/* The Metadata answer's partition, or NULL. */
static const MetadataResponse_MetadataResponsePartition *md_partition(const MetadataResponse *md, const char *topic,
                                                                       int32_t partition) {
    for (int32_t i = 0; i < md->topics_count; i++) {
        if (!kstr_eq_c(md->topics[i].name, topic) || md->topics[i].error_code) continue;
        for (int32_t k = 0; k < md->topics[i].partitions_count; k++)
            if (md->topics[i].partitions[k].partition_index == partition) return &md->topics[i].partitions[k];
    }
    return NULL;
}

/* ---- table ---- */

typedef struct table {
    int ncols;
    const char **headers;
    const char ***rows;
    size_t nrows, cap;
} table;

static void table_add(table *t, karena *a, const char **cells) {
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        const char ***nr = karena_calloc(a, nc, sizeof *nr);
        if (!nr) return;
        if (t->rows) memcpy(nr, t->rows, t->nrows * sizeof *nr);
        t->rows = nr;
        t->cap = nc;
    }
    const char **row = karena_calloc(a, (size_t)t->ncols, sizeof *row);
    if (!row) return;
    memcpy(row, cells, (size_t)t->ncols * sizeof *row);
    t->rows[t->nrows++] = row;
}

/* ToolsUtils.prettyPrintTable (widths in UTF-16 units; ASCII here). */
static void table_print(const table *t) {
    size_t w[16];
    for (int i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->headers[i]);
        for (size_t r = 0; r < t->nrows; r++)
            if (strlen(t->rows[r][i]) > w[i]) w[i] = strlen(t->rows[r][i]);
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        const char *const *row = r == 0 ? t->headers : t->rows[r - 1];
        for (int i = 0; i < t->ncols; i++) printf("%-*s\t", (int)w[i], row[i]);
        printf("\n");
    }
}

/* ---- requests ---- */

/* DescribeProducers for one partition on a broker. Returns the partition's
 * answer, or NULL with *cause set. */
static const DescribeProducersResponse_PartitionResponse *describe_producers_on(txn_ctx *x, kclient *k,
                                                                                 const char *topic, int32_t partition,
                                                                                 const char **cause) {
    int16_t v = kclient_pick_version(k, KAPI_DESCRIBE_PRODUCERS);
    if (v < 0) {
        *cause = "The broker does not support DESCRIBE_PRODUCERS";
        return NULL;
    }
    DescribeProducersRequest req;
    DescribeProducersRequest_init(&req);
    DescribeProducersRequest_TopicRequest tr;
    DescribeProducersRequest_TopicRequest_init(&tr);
    tr.name = kstr_from(topic);
    tr.partition_indexes = &partition;
    tr.partition_indexes_count = 1;
    req.topics = &tr;
    req.topics_count = 1;
    DescribeProducersResponse resp;
    if (kclient_request(k, KAPI_DESCRIBE_PRODUCERS, v, &req, &resp, &x->a) != 0) {
        *cause = fmt(&x->a, "%s", k->err);
        return NULL;
    }
    for (int32_t i = 0; i < resp.topics_count; i++) {
        if (!kstr_eq_c(resp.topics[i].name, topic)) continue;
        for (int32_t p = 0; p < resp.topics[i].partitions_count; p++)
            if (resp.topics[i].partitions[p].partition_index == partition) return &resp.topics[i].partitions[p];
    }
    *cause = "DescribeProducers response did not include the partition";
    return NULL;
}

/* The admin client's describeProducers for one partition: the leader (or
 * broker_id) answers; NOT_LEADER_OR_FOLLOWER and unknown partitions are
 * retried (metadata again) for a bounded time as Kafka retries them. */
static const DescribeProducersResponse_PartitionResponse *describe_producers(txn_ctx *x, const char *topic,
                                                                              int32_t partition, int broker_given,
                                                                              int32_t broker_id, const char **cause) {
    const char *tps = fmt(&x->a, "%s-%d", topic, partition);
    for (int attempt = 0; attempt < 20; attempt++) {
        if (attempt) usleep(250 * 1000);
        const char *topics[1] = {topic};
        if (metadata(x, topics, 1) != 0) {
            *cause = fmt(&x->a, "%s", x->c.err);
            return NULL;
        }
        int32_t node = broker_id;
        if (!broker_given) {
            const MetadataResponse_MetadataResponsePartition *mp = md_partition(&x->md, topic, partition);
            if (!mp || mp->leader_id < 0) continue; /* unknown or leaderless: Kafka retries */
            node = mp->leader_id;
        }
        kclient *k = admin_pool_node(&x->pool, &x->md, node);
        if (!k) {
            *cause = fmt(&x->a, "%s", x->c.err);
            return NULL;
        }
        const DescribeProducersResponse_PartitionResponse *pr = describe_producers_on(x, k, topic, partition, cause);
        if (!pr) return NULL;
        int16_t e = pr->error_code;
        if (!e) return pr;
        if (e == KERR_NOT_LEADER_OR_FOLLOWER && broker_given) {
            *cause = fmt(&x->a, "Failed to describe active producers for partition %s on brokerId %d", tps, broker_id);
            return NULL;
        }
        if (e == KERR_NOT_LEADER_OR_FOLLOWER || e == KERR_UNKNOWN_TOPIC_OR_PARTITION) continue;
        if (e == KERR_TOPIC_AUTHORIZATION_FAILED) {
            *cause = fmt(&x->a, "Failed to describe active producers for partition %s due to authorization failure "
                                "on topic `%s`", tps, topic);
            return NULL;
        }
        if (e == KERR_INVALID_TOPIC_EXCEPTION) {
            *cause = fmt(&x->a, "Failed to fetch metadata for partition %s due to invalid topic error: %s", tps,
                         admin_error_text(e, pr->error_message, &x->a));
            return NULL;
        }
        *cause = fmt(&x->a, "Failed to describe active producers for partition %s due to unexpected error", tps);
        return NULL;
    }
    *cause = "Timed out waiting for a node assignment. Call: describeProducers(api=METADATA)";
    return NULL;
}

/* The brokers of the Metadata answer in java.util.HashMap<Integer> order. */
static size_t *brokers_in_hash_order(txn_ctx *x, size_t *n) {
    *n = x->md.brokers_count > 0 ? (size_t)x->md.brokers_count : 0;
    int32_t *h = karena_calloc(&x->a, *n + 1, sizeof *h);
    size_t *order = karena_calloc(&x->a, *n + 1, sizeof *order);
    if (!h || !order) return NULL;
    for (size_t i = 0; i < *n; i++) h[i] = java_int_hash(x->md.brokers[i].node_id);
    if (java_hashmap_order(h, *n, java_hashmap_capacity(*n, 0), order) != 0)
        for (size_t i = 0; i < *n; i++) order[i] = i;
    return order;
}

typedef struct listing {
    const char *transactional_id;
    int64_t producer_id;
    const char *state;
    int32_t broker;
} listing;

/* ListTransactions on every broker (optionally filtered by producer ids).
 * Returns the listings in allByBrokerId order, or -1 with *cause. */
static int list_all(txn_ctx *x, const int64_t *pids, int npids, listing **out, size_t *nout, const char **cause) {
    *out = NULL;
    *nout = 0;
    if (!x->have_md && metadata(x, NULL, 0) != 0) {
        *cause = fmt(&x->a, "%s", x->c.err);
        return -1;
    }
    size_t nb;
    size_t *order = brokers_in_hash_order(x, &nb);
    if (!order) return -1;
    size_t cap = 16, n = 0;
    listing *v = karena_calloc(&x->a, cap, sizeof *v);
    for (size_t bi = 0; bi < nb; bi++) {
        int32_t id = x->md.brokers[order[bi]].node_id;
        ListTransactionsResponse resp;
        for (int attempt = 0;; attempt++) {
            kclient *k = admin_pool_node(&x->pool, &x->md, id);
            if (!k) {
                *cause = fmt(&x->a, "%s", x->c.err);
                return -1;
            }
            int16_t ver = kclient_pick_version(k, KAPI_LIST_TRANSACTIONS);
            if (ver < 0) {
                *cause = "The broker does not support LIST_TRANSACTIONS";
                return -1;
            }
            ListTransactionsRequest req;
            ListTransactionsRequest_init(&req);
            req.state_filters_count = 0;
            req.producer_id_filters = (int64_t *)pids;
            req.producer_id_filters_count = npids;
            if (kclient_request(k, KAPI_LIST_TRANSACTIONS, ver, &req, &resp, &x->a) != 0) {
                *cause = fmt(&x->a, "%s", k->err);
                return -1;
            }
            if (resp.error_code == KERR_COORDINATOR_LOAD_IN_PROGRESS && attempt < 40) {
                usleep(250 * 1000); /* Kafka retries after backing off */
                continue;
            }
            break;
        }
        if (resp.error_code == KERR_COORDINATOR_NOT_AVAILABLE) {
            *cause = fmt(&x->a, "ListTransactions request sent to broker %d failed because the coordinator is "
                                "shutting down", id);
            return -1;
        }
        if (resp.error_code) {
            *cause = fmt(&x->a, "ListTransactions request sent to broker %d failed with an unexpected exception", id);
            return -1;
        }
        for (int32_t i = 0; i < resp.transaction_states_count; i++) {
            if (n == cap) {
                listing *nv = karena_calloc(&x->a, cap * 2, sizeof *nv);
                if (!nv) return -1;
                memcpy(nv, v, n * sizeof *v);
                v = nv;
                cap *= 2;
            }
            const ListTransactionsResponse_TransactionState *s = &resp.transaction_states[i];
            v[n++] = (listing){ks(&x->a, s->transactional_id), s->producer_id, ks(&x->a, s->transaction_state), id};
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

/* Kafka's TransactionState.parse then toString: unknown names print "Unknown". */
static const char *state_string(const char *s) {
    static const char *known[] = {"Ongoing", "PrepareAbort", "PrepareCommit", "CompleteAbort",
                                  "CompleteCommit", "Empty", "PrepareEpochFence"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0) return s;
    return "Unknown";
}

typedef struct description {
    int32_t coordinator;
    const DescribeTransactionsResponse_TransactionState *st;
    int16_t error;
    const char *cause; /* for error */
} description;

/* FindCoordinator(transaction) + DescribeTransactions for one id. Returns 0
 * (d filled; d->error may be set with d->cause) or -1 with *cause. */
static int describe_one(txn_ctx *x, const char *tid, description *d, const char **cause) {
    memset(d, 0, sizeof *d);
    for (int attempt = 0; attempt < 40; attempt++) {
        if (attempt) usleep(250 * 1000);
        int16_t v = kclient_pick_version(&x->c, KAPI_FIND_COORDINATOR);
        if (v < 0) {
            *cause = "The broker does not support FIND_COORDINATOR";
            return -1;
        }
        FindCoordinatorRequest fr;
        FindCoordinatorRequest_init(&fr);
        kstr key = kstr_from(tid);
        fr.key = key;
        fr.key_type = 1;
        fr.coordinator_keys = &key;
        fr.coordinator_keys_count = 1;
        FindCoordinatorResponse fresp;
        if (kclient_request(&x->c, KAPI_FIND_COORDINATOR, v, &fr, &fresp, &x->a) != 0) {
            *cause = fmt(&x->a, "%s", x->c.err);
            return -1;
        }
        int16_t e = v >= 4 && fresp.coordinators_count > 0 ? fresp.coordinators[0].error_code : fresp.error_code;
        int32_t node = v >= 4 && fresp.coordinators_count > 0 ? fresp.coordinators[0].node_id : fresp.node_id;
        kstr host = v >= 4 && fresp.coordinators_count > 0 ? fresp.coordinators[0].host : fresp.host;
        int32_t port = v >= 4 && fresp.coordinators_count > 0 ? fresp.coordinators[0].port : fresp.port;
        if (e == KERR_COORDINATOR_NOT_AVAILABLE || e == KERR_COORDINATOR_LOAD_IN_PROGRESS || e == KERR_NOT_COORDINATOR)
            continue;
        if (e) {
            *cause = fmt(&x->a, "%s", kerr_message(e));
            return -1;
        }
        char hbuf[256];
        snprintf(hbuf, sizeof hbuf, "%.*s", host.len > 0 ? host.len : 0, host.p ? host.p : "");
        kclient *k = admin_pool_get(&x->pool, hbuf, port);
        if (!k) {
            *cause = fmt(&x->a, "%s", x->c.err);
            return -1;
        }
        int16_t dv = kclient_pick_version(k, KAPI_DESCRIBE_TRANSACTIONS);
        if (dv < 0) {
            *cause = "The broker does not support DESCRIBE_TRANSACTIONS";
            return -1;
        }
        DescribeTransactionsRequest dr;
        DescribeTransactionsRequest_init(&dr);
        dr.transactional_ids = &key;
        dr.transactional_ids_count = 1;
        DescribeTransactionsResponse dresp;
        if (kclient_request(k, KAPI_DESCRIBE_TRANSACTIONS, dv, &dr, &dresp, &x->a) != 0) {
            *cause = fmt(&x->a, "%s", k->err);
            return -1;
        }
        const DescribeTransactionsResponse_TransactionState *st = NULL;
        for (int32_t i = 0; i < dresp.transaction_states_count; i++)
            if (kstr_eq_c(dresp.transaction_states[i].transactional_id, tid)) st = &dresp.transaction_states[i];
        if (!st) continue;
        e = st->error_code;
        if (e == KERR_COORDINATOR_LOAD_IN_PROGRESS || e == KERR_NOT_COORDINATOR || e == KERR_COORDINATOR_NOT_AVAILABLE)
            continue;
        d->coordinator = node;
        d->st = st;
        d->error = e;
        if (e == KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            d->cause = fmt(&x->a, "DescribeTransactions request for transactionalId `%s` failed due to authorization "
                                  "failure", tid);
        else if (e == KERR_TRANSACTIONAL_ID_NOT_FOUND)
            d->cause = fmt(&x->a, "DescribeTransactions request for transactionalId `%s` failed because the ID could "
                                  "not be found", tid);
        else if (e)
            d->cause = fmt(&x->a, "DescribeTransactions request for transactionalId `%s` failed due to unexpected "
                                  "error", tid);
        return 0;
    }
    *cause = "Timed out waiting for a node assignment. Call: describeTransactions(api=FIND_COORDINATOR)";
    return -1;
}

typedef struct tp_ref {
    const char *topic;
    int32_t partition;
} tp_ref;

/* A transaction's partitions in java.util.HashSet<TopicPartition> order. */
static tp_ref *txn_partitions(txn_ctx *x, const DescribeTransactionsResponse_TransactionState *st, size_t *n) {
    size_t total = 0;
    for (int32_t i = 0; i < st->topics_count; i++)
        total += st->topics[i].partitions_count > 0 ? (size_t)st->topics[i].partitions_count : 0;
    tp_ref *v = karena_calloc(&x->a, total + 1, sizeof *v);
    int32_t *h = karena_calloc(&x->a, total + 1, sizeof *h);
    size_t *order = karena_calloc(&x->a, total + 1, sizeof *order);
    tp_ref *out = karena_calloc(&x->a, total + 1, sizeof *out);
    if (!v || !h || !order || !out) {
        *n = 0;
        return NULL;
    }
    size_t k = 0;
    for (int32_t i = 0; i < st->topics_count; i++) {
        const char *topic = ks(&x->a, st->topics[i].topic);
        for (int32_t p = 0; p < st->topics[i].partitions_count; p++) {
            int32_t part = st->topics[i].partitions[p];
            bool dup = false;
            for (size_t q = 0; q < k && !dup; q++) dup = v[q].partition == part && strcmp(v[q].topic, topic) == 0;
            if (dup) continue;
            v[k] = (tp_ref){topic, part};
            h[k] = java_topic_partition_hash(topic, part);
            k++;
        }
    }
    if (java_hashmap_order(h, k, java_hashmap_capacity(k, 0), order) != 0)
        for (size_t i = 0; i < k; i++) order[i] = i;
    for (size_t i = 0; i < k; i++) out[i] = v[order[i]];
    *n = k;
    return out;
}

/* ---- commands ---- */

static int cmd_list(txn_ctx *x) {
    listing *ls;
    size_t n;
    const char *cause;
    if (list_all(x, NULL, 0, &ls, &n, &cause) != 0) return fail("Failed to list transactions", cause);
    static const char *headers[] = {"TransactionalId", "Coordinator", "ProducerId", "TransactionState"};
    table t = {4, headers, NULL, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const char *row[4] = {ls[i].transactional_id, fmt(&x->a, "%d", ls[i].broker),
                              fmt(&x->a, "%" PRId64, ls[i].producer_id), state_string(ls[i].state)};
        table_add(&t, &x->a, row);
    }
    table_print(&t);
    return 0;
}

static int cmd_describe(txn_ctx *x, const char *tid) {
    description d;
    const char *cause;
    const char *what = fmt(&x->a, "Failed to describe transaction state of transactional-id `%s`", tid);
    if (describe_one(x, tid, &d, &cause) != 0) return fail(what, cause);
    if (d.error) return fail(what, d.cause);
    const DescribeTransactionsResponse_TransactionState *st = d.st;
    const char *start = "None", *duration = "None";
    if (st->transaction_start_time_ms >= 0) {
        start = fmt(&x->a, "%" PRId64, st->transaction_start_time_ms);
        duration = fmt(&x->a, "%" PRId64, now_ms() - st->transaction_start_time_ms);
    }
    size_t np;
    tp_ref *tps = txn_partitions(x, st, &np);
    size_t len = 1;
    for (size_t i = 0; i < np; i++) len += strlen(tps[i].topic) + 13;
    char *joined = karena_calloc(&x->a, len, 1);
    size_t pos = 0;
    for (size_t i = 0; joined && i < np; i++)
        pos += (size_t)snprintf(joined + pos, len - pos, "%s%s-%d", i ? "," : "", tps[i].topic, tps[i].partition);
    static const char *headers[] = {"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch",
                                    "TransactionState", "TransactionTimeoutMs", "CurrentTransactionStartTimeMs",
                                    "TransactionDurationMs", "TopicPartitions"};
    table t = {9, headers, NULL, 0, 0};
    const char *row[9] = {fmt(&x->a, "%d", d.coordinator), tid, fmt(&x->a, "%" PRId64, st->producer_id),
                          fmt(&x->a, "%d", st->producer_epoch), state_string(ks(&x->a, st->transaction_state)),
                          fmt(&x->a, "%d", st->transaction_timeout_ms), start, duration, joined ? joined : ""};
    table_add(&t, &x->a, row);
    table_print(&t);
    return 0;
}

static int cmd_describe_producers(txn_ctx *x, const argp_result *r) {
    const char *topic = argp_get(r, "topic");
    int32_t partition = atoi(argp_get(r, "partition"));
    int broker_given = argp_has(r, "broker-id");
    int32_t broker = broker_given ? atoi(argp_get(r, "broker-id")) : -1;
    const char *cause;
    const DescribeProducersResponse_PartitionResponse *pr =
        describe_producers(x, topic, partition, broker_given, broker, &cause);
    if (!pr) {
        const char *clause = broker_given ? fmt(&x->a, "broker %d", broker) : "leader";
        return fail(fmt(&x->a, "Failed to describe producers for partition %s-%d on %s", topic, partition, clause),
                    cause);
    }
    static const char *headers[] = {"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence",
                                    "LastTimestamp", "CurrentTransactionStartOffset"};
    table t = {6, headers, NULL, 0, 0};
    for (int32_t i = 0; i < pr->active_producers_count; i++) {
        const DescribeProducersResponse_ProducerState *p = &pr->active_producers[i];
        const char *row[6] = {
            fmt(&x->a, "%" PRId64, p->producer_id), fmt(&x->a, "%d", p->producer_epoch),
            fmt(&x->a, "%d", p->coordinator_epoch < 0 ? -1 : p->coordinator_epoch), fmt(&x->a, "%d", p->last_sequence),
            fmt(&x->a, "%" PRId64, p->last_timestamp),
            p->current_txn_start_offset < 0 ? "None" : fmt(&x->a, "%" PRId64, p->current_txn_start_offset)};
        table_add(&t, &x->a, row);
    }
    table_print(&t);
    return 0;
}

/* AbortTransactionSpec.toString */
static const char *spec_string(karena *a, const char *topic, int32_t partition, int64_t pid, int32_t epoch,
                               int32_t coord_epoch) {
    return fmt(a, "AbortTransactionSpec(topicPartition=%s-%d, producerId=%" PRId64 ", producerEpoch=%d, "
                  "coordinatorEpoch=%d)", topic, partition, pid, epoch, coord_epoch);
}

/* Admin.abortTransaction: WriteTxnMarkers (ABORT) to the partition leader. */
static int write_abort_marker(txn_ctx *x, const char *topic, int32_t partition, int64_t pid, int16_t epoch,
                              int32_t coord_epoch) {
    const char *spec = spec_string(&x->a, topic, partition, pid, epoch, coord_epoch);
    const char *what = fmt(&x->a, "Failed to abort transaction %s", spec);
    for (int attempt = 0; attempt < 20; attempt++) {
        if (attempt) usleep(250 * 1000);
        const char *topics[1] = {topic};
        if (metadata(x, topics, 1) != 0) return fail(what, x->c.err);
        const MetadataResponse_MetadataResponsePartition *mp = md_partition(&x->md, topic, partition);
        if (!mp || mp->leader_id < 0) continue;
        kclient *k = admin_pool_node(&x->pool, &x->md, mp->leader_id);
        if (!k) return fail(what, x->c.err);
        int16_t v = kclient_pick_version(k, KAPI_WRITE_TXN_MARKERS);
        if (v < 0) return fail(what, "The broker does not support WRITE_TXN_MARKERS");
        WriteTxnMarkersRequest req;
        WriteTxnMarkersRequest_init(&req);
        WriteTxnMarkersRequest_WritableTxnMarker m;
        WriteTxnMarkersRequest_WritableTxnMarker_init(&m);
        WriteTxnMarkersRequest_WritableTxnMarkerTopic mt;
        WriteTxnMarkersRequest_WritableTxnMarkerTopic_init(&mt);
        mt.name = kstr_from(topic);
        mt.partition_indexes = &partition;
        mt.partition_indexes_count = 1;
        m.producer_id = pid;
        m.producer_epoch = epoch;
        m.transaction_result = false;
        m.topics = &mt;
        m.topics_count = 1;
        m.coordinator_epoch = coord_epoch;
        req.markers = &m;
        req.markers_count = 1;
        WriteTxnMarkersResponse resp;
        if (kclient_request(k, KAPI_WRITE_TXN_MARKERS, v, &req, &resp, &x->a) != 0) return fail(what, k->err);
        if (resp.markers_count != 1 || resp.markers[0].producer_id != pid)
            return fail(what, "WriteTxnMarkers response included unexpected marker entries");
        const WriteTxnMarkersResponse_WritableTxnMarkerResult *mr = &resp.markers[0];
        if (mr->topics_count != 1 || !kstr_eq_c(mr->topics[0].name, topic))
            return fail(what, "WriteTxnMarkers response included unexpected topic entries");
        if (mr->topics[0].partitions_count != 1 || mr->topics[0].partitions[0].partition_index != partition)
            return fail(what, fmt(&x->a, "WriteTxnMarkers response included unexpected partition entries for topic %s",
                                  topic));
        int16_t e = mr->topics[0].partitions[0].error_code;
        switch (e) {
        case KERR_NONE: return 0;
        case KERR_CLUSTER_AUTHORIZATION_FAILED:
            return fail(what, fmt(&x->a, "WriteTxnMarkers request with %s failed due to cluster authorization error",
                                  spec));
        case KERR_INVALID_PRODUCER_EPOCH:
            return fail(what, fmt(&x->a, "WriteTxnMarkers request with %s failed due an invalid producer epoch", spec));
        case KERR_TRANSACTION_COORDINATOR_FENCED:
            return fail(what, fmt(&x->a, "WriteTxnMarkers request with %s failed since the provided coordinator epoch "
                                         "%d has been fenced by the active coordinator", spec, coord_epoch));
        case KERR_NOT_LEADER_OR_FOLLOWER:
        case KERR_REPLICA_NOT_AVAILABLE:
        case KERR_BROKER_NOT_AVAILABLE:
        case KERR_UNKNOWN_TOPIC_OR_PARTITION: continue; /* find the leader again */
        default:
            return fail(what, fmt(&x->a, "WriteTxnMarkers request with %s failed due to unexpected error: %s", spec,
                                  kerr_message(e)));
        }
    }
    return fail(what, "Timed out waiting for a node assignment. Call: abortTransaction(api=METADATA)");
}

static int cmd_abort(txn_ctx *x, const argp_result *r) {
    const char *topic = argp_get(r, "topic");
    int32_t partition = atoi(argp_get(r, "partition"));
    const char *start = argp_get(r, "start-offset"), *pid_s = argp_get(r, "producer-id");
    if (!start && !pid_s)
        return fail_plain("The transaction to abort must be identified either with --start-offset (for brokers on "
                          "3.0 or above) or with --producer-id, --producer-epoch, and --coordinator-epoch (for older "
                          "brokers)");
    if (!start) {
        const char *epoch_s = argp_get(r, "producer-epoch"), *ce_s = argp_get(r, "coordinator-epoch");
        if (!epoch_s) return fail_plain("Missing required argument --producer-epoch");
        if (!ce_s) return fail_plain("Missing required argument --coordinator-epoch");
        int32_t ce = atoi(ce_s);
        if (ce < 0) ce = 0; /* a producer never committed/aborted shows -1; 0 is <= any epoch */
        return write_abort_marker(x, topic, partition, strtoll(pid_s, NULL, 10), (int16_t)atoi(epoch_s), ce);
    }
    int64_t start_offset = strtoll(start, NULL, 10);
    const char *cause;
    const DescribeProducersResponse_PartitionResponse *pr = describe_producers(x, topic, partition, 0, -1, &cause);
    if (!pr)
        return fail(fmt(&x->a, "Failed to validate producer state for partition %s-%d", topic, partition), cause);
    for (int32_t i = 0; i < pr->active_producers_count; i++) {
        const DescribeProducersResponse_ProducerState *p = &pr->active_producers[i];
        if (p->current_txn_start_offset < 0 || p->current_txn_start_offset != start_offset) continue;
        return write_abort_marker(x, topic, partition, p->producer_id, (int16_t)p->producer_epoch,
                                  p->coordinator_epoch < 0 ? 0 : p->coordinator_epoch);
    }
    return fail_plain(fmt(&x->a, "Could not find any open transactions starting at offset %" PRId64 " on partition "
                                 "%s-%d", start_offset, topic, partition));
}

typedef struct open_txn {
    const char *topic;
    int32_t partition;
    DescribeProducersResponse_ProducerState ps;
} open_txn;

static int32_t java_long_hash(int64_t v) { return (int32_t)((uint64_t)v ^ ((uint64_t)v >> 32)); }

static int cmd_find_hanging(txn_ctx *x, const argp_result *r) {
    int broker_given = argp_has(r, "broker-id");
    int32_t broker = broker_given ? atoi(argp_get(r, "broker-id")) : -1;
    const char *topic = argp_get(r, "topic");
    if (!topic && !broker_given)
        return fail_plain("The `find-hanging` command requires either --topic or --broker-id to limit the scope of "
                          "the search");
    if (argp_has(r, "partition") && !topic) return fail_plain("The --partition argument requires --topic to be provided");
    int64_t max_ms = (int64_t)(argp_get(r, "max-transaction-timeout") ? atoi(argp_get(r, "max-transaction-timeout"))
                                                                       : 15) * 60000;
    /* the partitions to search */
    size_t ntp = 0, captp = 64;
    tp_ref *tps = karena_calloc(&x->a, captp, sizeof *tps);
    if (topic && argp_has(r, "partition")) {
        tps[ntp++] = (tp_ref){topic, atoi(argp_get(r, "partition"))};
    } else {
        const char *one[1] = {topic};
        if (metadata(x, topic ? one : NULL, topic ? 1 : -1) != 0)
            return fail(topic ? "Failed to describe 1 topics" : "Failed to list topics", x->c.err);
        for (int32_t i = 0; i < x->md.topics_count; i++) {
            const MetadataResponse_MetadataResponseTopic *t = &x->md.topics[i];
            if (t->error_code) {
                if (topic)
                    return fail("Failed to describe 1 topics",
                                t->error_code == KERR_UNKNOWN_TOPIC_OR_PARTITION
                                    ? "This server does not host this topic-partition."
                                    : kerr_message(t->error_code));
                continue;
            }
            for (int32_t p = 0; p < t->partitions_count; p++) {
                const MetadataResponse_MetadataResponsePartition *mp = &t->partitions[p];
                bool has = !broker_given;
                for (int32_t q = 0; !has && q < mp->replica_nodes_count; q++) has = mp->replica_nodes[q] == broker;
                if (!has) continue;
                if (ntp == captp) {
                    tp_ref *nv = karena_calloc(&x->a, captp * 2, sizeof *nv);
                    memcpy(nv, tps, ntp * sizeof *tps);
                    tps = nv;
                    captp *= 2;
                }
                tps[ntp++] = (tp_ref){ks(&x->a, t->name), mp->partition_index};
            }
        }
    }
    /* candidates: open transactions idle longer than the timeout, in the
     * order of the HashMap<TopicPartition, ...> the admin client returns */
    int32_t *h = karena_calloc(&x->a, ntp + 1, sizeof *h);
    size_t *order = karena_calloc(&x->a, ntp + 1, sizeof *order);
    for (size_t i = 0; i < ntp; i++) h[i] = java_topic_partition_hash(tps[i].topic, tps[i].partition);
    if (java_hashmap_order(h, ntp, java_hashmap_capacity(ntp, ntp), order) != 0)
        for (size_t i = 0; i < ntp; i++) order[i] = i;
    size_t ncand = 0, capc = 16;
    open_txn *cand = karena_calloc(&x->a, capc, sizeof *cand);
    int64_t now = now_ms();
    for (size_t oi = 0; oi < ntp; oi++) {
        const tp_ref *tp = &tps[order[oi]];
        const char *cause;
        const DescribeProducersResponse_PartitionResponse *pr =
            describe_producers(x, tp->topic, tp->partition, broker_given, broker, &cause);
        if (!pr) {
            char bid[32];
            if (broker_given) snprintf(bid, sizeof bid, "Optional[%d]", broker);
            else snprintf(bid, sizeof bid, "Optional.empty");
            return fail(fmt(&x->a, "Failed to describe producers for %zu partitions on broker %s", ntp, bid), cause);
        }
        for (int32_t i = 0; i < pr->active_producers_count; i++) {
            const DescribeProducersResponse_ProducerState *p = &pr->active_producers[i];
            if (p->current_txn_start_offset < 0 || now - p->last_timestamp <= max_ms) continue;
            if (ncand == capc) {
                open_txn *nv = karena_calloc(&x->a, capc * 2, sizeof *nv);
                memcpy(nv, cand, ncand * sizeof *cand);
                cand = nv;
                capc *= 2;
            }
            cand[ncand++] = (open_txn){tp->topic, tp->partition, *p};
        }
    }
    static const char *headers[] = {"Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch",
                                    "StartOffset", "LastTimestamp", "Duration(min)"};
    table t = {8, headers, NULL, 0, 0};
    if (ncand) {
        /* group by producer id (HashMap<Long, List> order) */
        int64_t *pids = karena_calloc(&x->a, ncand, sizeof *pids);
        int32_t *ph = karena_calloc(&x->a, ncand, sizeof *ph);
        size_t npids = 0;
        for (size_t i = 0; i < ncand; i++) {
            bool seen = false;
            for (size_t q = 0; q < npids && !seen; q++) seen = pids[q] == cand[i].ps.producer_id;
            if (!seen) ph[npids] = java_long_hash(cand[i].ps.producer_id), pids[npids++] = cand[i].ps.producer_id;
        }
        size_t *porder = karena_calloc(&x->a, npids, sizeof *porder);
        if (java_hashmap_order(ph, npids, java_hashmap_capacity(npids, 0), porder) != 0)
            for (size_t i = 0; i < npids; i++) porder[i] = i;
        listing *ls;
        size_t nls;
        const char *cause;
        if (list_all(x, pids, (int)npids, &ls, &nls, &cause) != 0)
            return fail(fmt(&x->a, "Failed to list transactions for %zu producers", npids), cause);
        size_t ntids = 0; /* distinct transactional ids found: Kafka describes them in one call */
        for (size_t i = 0; i < nls; i++) {
            bool wanted = false, dup = false;
            for (size_t q = 0; q < npids && !wanted; q++) wanted = pids[q] == ls[i].producer_id;
            for (size_t q = 0; q < i && !dup; q++) dup = strcmp(ls[q].transactional_id, ls[i].transactional_id) == 0;
            if (wanted && !dup) ntids++;
        }
        for (size_t pi = 0; pi < npids; pi++) {
            int64_t pid = pids[porder[pi]];
            const char *tid = NULL;
            for (size_t i = 0; i < nls; i++)
                if (ls[i].producer_id == pid) tid = ls[i].transactional_id;
            description d = {0};
            bool described = false;
            if (tid) {
                if (describe_one(x, tid, &d, &cause) != 0 || (d.error && d.error != KERR_TRANSACTIONAL_ID_NOT_FOUND))
                    return fail(fmt(&x->a, "Failed to describe %zu transactions", ntids), d.error ? d.cause : cause);
                described = !d.error;
            }
            size_t ntx = 0;
            tp_ref *txp = described ? txn_partitions(x, d.st, &ntx) : NULL;
            for (size_t i = 0; i < ncand; i++) {
                const open_txn *o = &cand[i];
                if (o->ps.producer_id != pid) continue;
                bool expected = false;
                for (size_t q = 0; q < ntx && !expected; q++)
                    expected = txp[q].partition == o->partition && strcmp(txp[q].topic, o->topic) == 0;
                if (expected) continue; /* the coordinator still owes this partition its marker */
                const char *row[8] = {
                    o->topic, fmt(&x->a, "%d", o->partition), fmt(&x->a, "%" PRId64, o->ps.producer_id),
                    fmt(&x->a, "%d", o->ps.producer_epoch),
                    fmt(&x->a, "%d", o->ps.coordinator_epoch < 0 ? -1 : o->ps.coordinator_epoch),
                    fmt(&x->a, "%" PRId64, o->ps.current_txn_start_offset),
                    fmt(&x->a, "%" PRId64, o->ps.last_timestamp),
                    fmt(&x->a, "%" PRId64, (now - o->ps.last_timestamp) / 60000)};
                table_add(&t, &x->a, row);
            }
        }
    }
    table_print(&t);
    return 0;
}

/* No broker answers: the admin client's calls time out; each command
 * reports its first call's failure in its own words. */
static int unreachable(txn_ctx *x, const argp_result *r) {
    const char *name = r->command->name, *topic = argp_get(r, "topic");
    const char *part = argp_get(r, "partition");
    const char *t = "Timed out waiting for a node assignment. Call: ";
    if (strcmp(name, "list") == 0)
        return fail("Failed to list transactions", fmt(&x->a, "%slistTransactions(api=METADATA)", t));
    if (strcmp(name, "describe") == 0)
        return fail(fmt(&x->a, "Failed to describe transaction state of transactional-id `%s`",
                        argp_get(r, "transactional-id")),
                    fmt(&x->a, "%sdescribeTransactions(api=FIND_COORDINATOR)", t));
    const char *dp = fmt(&x->a, "%sdescribeProducers(api=METADATA)", t);
    if (strcmp(name, "describe-producers") == 0) {
        const char *clause = argp_has(r, "broker-id") ? fmt(&x->a, "broker %s", argp_get(r, "broker-id")) : "leader";
        if (argp_has(r, "broker-id")) dp = fmt(&x->a, "%sdescribeProducers(api=DESCRIBE_PRODUCERS)", t);
        return fail(fmt(&x->a, "Failed to describe producers for partition %s-%s on %s", topic, part, clause), dp);
    }
    if (strcmp(name, "abort") == 0) {
        if (!argp_get(r, "start-offset") && !argp_get(r, "producer-id")) return cmd_abort(x, r);
        if (argp_get(r, "start-offset"))
            return fail(fmt(&x->a, "Failed to validate producer state for partition %s-%s", topic, part), dp);
        if (!argp_get(r, "producer-epoch") || !argp_get(r, "coordinator-epoch")) return cmd_abort(x, r);
        int32_t ce = atoi(argp_get(r, "coordinator-epoch"));
        return fail(fmt(&x->a, "Failed to abort transaction %s",
                        spec_string(&x->a, topic, atoi(part), strtoll(argp_get(r, "producer-id"), NULL, 10),
                                    atoi(argp_get(r, "producer-epoch")), ce < 0 ? 0 : ce)),
                    fmt(&x->a, "%sabortTransaction(api=METADATA)", t));
    }
    /* find-hanging: its argument checks come first */
    if ((!topic && !argp_has(r, "broker-id")) || (part && !topic)) return cmd_find_hanging(x, r);
    if (topic && part) {
        const char *bid = argp_has(r, "broker-id") ? fmt(&x->a, "Optional[%s]", argp_get(r, "broker-id"))
                                                   : "Optional.empty";
        return fail(fmt(&x->a, "Failed to describe producers for 1 partitions on broker %s", bid), dp);
    }
    if (topic) return fail("Failed to describe 1 topics", fmt(&x->a, "%sdescribeTopics", t));
    return fail("Failed to list topics", fmt(&x->a, "%slistTopics", t));
}

int tool_transactions(int argc, char **argv) {
    argp_result r;
    int rc;
    if (argp_parse(&txn_parser, argc, argv, &r, &rc)) {
        argp_free(&r);
        return rc;
    }
    txn_ctx x;
    memset(&x, 0, sizeof x);
    kclient_init(&x.c, "adminclient-1");
    karena_init(&x.a, 0);
    admin_pool_init(&x.pool, &x.c);
    const char *config = argp_get(&r, "command-config");
    if (!r.command) {
        /* argparse4j: the subcommand is required */
        argp_print_usage(&txn_parser, NULL, stderr);
        fprintf(stderr, "kafka-transactions.sh: error: too few arguments\n");
        rc = 1;
        goto out;
    }
    if (config && admin_apply_command_config(&x.c, config) != 0) {
        rc = 1;
        goto out;
    }
    if (kclient_connect(&x.c, argp_get(&r, "bootstrap-server")) != 0) {
        rc = unreachable(&x, &r);
        goto out;
    }
    const char *name = r.command->name;
    if (strcmp(name, "list") == 0) rc = cmd_list(&x);
    else if (strcmp(name, "describe") == 0) rc = cmd_describe(&x, argp_get(&r, "transactional-id"));
    else if (strcmp(name, "describe-producers") == 0) rc = cmd_describe_producers(&x, &r);
    else if (strcmp(name, "abort") == 0) rc = cmd_abort(&x, &r);
    else rc = cmd_find_hanging(&x, &r);
out:
    fflush(stdout);
    admin_pool_close(&x.pool);
    kclient_close(&x.c);
    karena_free(&x.a);
    argp_free(&r);
    return rc;
}
