/* metadata_quorum.c - kafka-metadata-quorum: state of the KRaft metadata quorum.
 *
 * Follows Kafka's MetadataQuorumCommand (argparse4j command line):
 * `describe --status` prints the cluster id (DescribeCluster) and the
 * quorum's leader, epoch, high watermark, follower lag and members;
 * `describe --replication` prints one table row per voter and observer
 * (DescribeQuorum on __cluster_metadata-0).
 */
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

static const argp_arg quorum_main_args[] = {
    {"--bootstrap-server", NULL, ARGP_STORE, ARGP_STRING, 1,
     "Comma-separated host:port pairs of the Kafka brokers to connect to.", NULL},
    {"--command-config", NULL, ARGP_STORE, ARGP_STRING, 0,
     "A properties file with settings for the admin client.", NULL},
};

static const argp_arg quorum_describe_args[] = {
    {"--status", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0,
     "Print a summary of the quorum: leader, epoch, high watermark, lag and members.", "Status"},
    {"--replication", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0,
     "Print how far each voter and observer has replicated the metadata log.", "Replication"},
    {"--human-readable", NULL, ARGP_STORE_TRUE, ARGP_STRING, 0,
     "Show timestamps as time elapsed since then.", "Replication"},
};

static const argp_command quorum_commands[] = {
    {"describe", "Show the state of the metadata quorum.", quorum_describe_args, 3},
};

static const argp_parser quorum_parser = {
    "kafka-metadata-quorum", "This tool shows the state of the KRaft metadata quorum.",
    quorum_main_args, 2, quorum_commands, 1,
    NULL, NULL, NULL, 0,
};

/* Kafka's mainNoExit prints a failure's message, then its stack trace. */
static int fail_with(const char *message) {
    fprintf(stderr, "%s\njava.util.concurrent.ExecutionException: %s\n", message, message);
    return 1;
}

static int terse(const char *message) {
    fprintf(stderr, "%s\n", message);
    return 1;
}

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Fetches the quorum of __cluster_metadata-0. Returns its partition data,
 * or NULL after printing the failure. */
static const DescribeQuorumResponse_PartitionData *describe_quorum(kclient *c, karena *a) {
    char msg[700];
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_QUORUM);
    if (v < 0) {
        fail_with("org.apache.kafka.common.errors.UnsupportedVersionException: "
                  "The broker does not support DESCRIBE_QUORUM");
        return NULL;
    }
    DescribeQuorumRequest req;
    DescribeQuorumRequest_init(&req);
    DescribeQuorumRequest_TopicData topic;
    DescribeQuorumRequest_TopicData_init(&topic);
    DescribeQuorumRequest_PartitionData part;
    DescribeQuorumRequest_PartitionData_init(&part);
    part.partition_index = 0;
    topic.topic_name = KSTR_LIT("__cluster_metadata");
    topic.partitions = &part;
    topic.partitions_count = 1;
    req.topics = &topic;
    req.topics_count = 1;
    DescribeQuorumResponse resp;
    if (kclient_request(c, KAPI_DESCRIBE_QUORUM, v, &req, &resp, a) != 0) {
        snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
        fail_with(msg);
        return NULL;
    }
    if (resp.error_code != 0) {
        snprintf(msg, sizeof msg, "%s: %s", java_error_class(resp.error_code), kerr_message(resp.error_code));
        fail_with(msg);
        return NULL;
    }
    /* The admin client checks the answer is about exactly that partition. */
    if (resp.topics_count != 1 || !kstr_eq_c(resp.topics[0].topic_name, "__cluster_metadata") ||
        resp.topics[0].partitions_count != 1 || resp.topics[0].partitions[0].partition_index != 0) {
        fail_with("org.apache.kafka.common.errors.UnknownServerException: "
                  "DescribeMetadataQuorum received a response for an unexpected topic partition");
        return NULL;
    }
    const DescribeQuorumResponse_PartitionData *p = &resp.topics[0].partitions[0];
    if (p->error_code != 0) {
        snprintf(msg, sizeof msg, "%s: %s", java_error_class(p->error_code), kerr_message(p->error_code));
        fail_with(msg);
        return NULL;
    }
    return p;
}

static const DescribeQuorumResponse_ReplicaState *find_leader(const DescribeQuorumResponse_PartitionData *p) {
    for (int32_t i = 0; i < p->current_voters_count; i++)
        if (p->current_voters[i].replica_id == p->leader_id) return &p->current_voters[i];
    return NULL;
}

static int describe_status(kclient *c, karena *a) {
    char msg[700];
    int16_t v = kclient_pick_version(c, KAPI_DESCRIBE_CLUSTER);
    char *cluster_id = NULL;
    if (v >= 0) {
        DescribeClusterRequest req;
        DescribeClusterRequest_init(&req);
        DescribeClusterResponse resp;
        if (kclient_request(c, KAPI_DESCRIBE_CLUSTER, v, &req, &resp, a) != 0) {
            snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
            return fail_with(msg);
        }
        if (resp.error_code != 0) {
            snprintf(msg, sizeof msg, "%s: %s", java_error_class(resp.error_code),
                     admin_error_text(resp.error_code, resp.error_message, a));
            return fail_with(msg);
        }
        cluster_id = resp.cluster_id.len >= 0 ? kstr_dup(resp.cluster_id, a) : NULL;
    } else {
        MetadataResponse md;
        if (kclient_metadata(c, NULL, 0, &md, NULL, a) != 0) {
            snprintf(msg, sizeof msg, "org.apache.kafka.common.errors.TimeoutException: %s", c->err);
            return fail_with(msg);
        }
        cluster_id = md.cluster_id.len >= 0 ? kstr_dup(md.cluster_id, a) : NULL;
    }
    const DescribeQuorumResponse_PartitionData *p = describe_quorum(c, a);
    if (!p) return 1;
    const DescribeQuorumResponse_ReplicaState *leader = find_leader(p);
    if (!leader) return fail_with("java.util.NoSuchElementException: No value present");
    /* The voter furthest behind: the first one with the smallest end offset. */
    const DescribeQuorumResponse_ReplicaState *laggard = &p->current_voters[0];
    for (int32_t i = 1; i < p->current_voters_count; i++)
        if (p->current_voters[i].log_end_offset < laggard->log_end_offset) laggard = &p->current_voters[i];
    int64_t lag_time;
    if (leader == laggard) lag_time = 0;
    else if (leader->last_caught_up_timestamp >= 0 && laggard->last_caught_up_timestamp >= 0)
        lag_time = leader->last_caught_up_timestamp - laggard->last_caught_up_timestamp;
    else lag_time = -1;
    printf("ClusterId:              %s\n", cluster_id ? cluster_id : "null");
    printf("LeaderId:               %d\n", p->leader_id);
    printf("LeaderEpoch:            %d\n", p->leader_epoch);
    printf("HighWatermark:          %lld\n", (long long)p->high_watermark);
    printf("MaxFollowerLag:         %lld\n", (long long)(leader->log_end_offset - laggard->log_end_offset));
    printf("MaxFollowerLagTimeMs:   %lld\n", (long long)lag_time);
    printf("CurrentVoters:          [");
    for (int32_t i = 0; i < p->current_voters_count; i++) printf("%s%d", i ? "," : "", p->current_voters[i].replica_id);
    printf("]\nCurrentObservers:       [");
    for (int32_t i = 0; i < p->observers_count; i++) printf("%s%d", i ? "," : "", p->observers[i].replica_id);
    printf("]\n");
    return 0;
}

#define QUORUM_COLUMNS 6

typedef struct quorum_row {
    char cell[QUORUM_COLUMNS][64];
} quorum_row;

/* Formats a timestamp column; -1 when unknown. Returns -1 (after printing
 * Kafka's clock-drift error) when a human-readable age cannot be given. */
static int format_timestamp(char *out, size_t len, int64_t ts, int human, const char *desc) {
    if (ts < 0) {
        snprintf(out, len, "-1");
        return 0;
    }
    if (!human) {
        snprintf(out, len, "%lld", (long long)ts);
        return 0;
    }
    int64_t now = now_ms();
    if (!(ts > 0 && ts <= now)) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "Error while computing relative time, possible drift in system clock.\n"
                 "Current timestamp is %lld, %s timestamp is %lld",
                 (long long)now, desc, (long long)ts);
        fprintf(stderr, "%s\norg.apache.kafka.common.KafkaException: %s\n", msg, msg);
        return -1;
    }
    snprintf(out, len, "%lld ms ago", (long long)(now - ts));
    return 0;
}

static int add_rows(quorum_row *rows, size_t *n, const DescribeQuorumResponse_ReplicaState *leader,
                    const DescribeQuorumResponse_ReplicaState *states, int32_t count, int skip_id, int32_t skip,
                    const char *status, int human) {
    for (int32_t i = 0; i < count; i++) {
        const DescribeQuorumResponse_ReplicaState *s = &states[i];
        if (skip_id && s->replica_id == skip) continue;
        quorum_row *r = &rows[(*n)++];
        snprintf(r->cell[0], sizeof r->cell[0], "%d", s->replica_id);
        snprintf(r->cell[1], sizeof r->cell[1], "%lld", (long long)s->log_end_offset);
        snprintf(r->cell[2], sizeof r->cell[2], "%lld", (long long)(leader->log_end_offset - s->log_end_offset));
        if (format_timestamp(r->cell[3], sizeof r->cell[3], s->last_fetch_timestamp, human, "last fetch") != 0 ||
            format_timestamp(r->cell[4], sizeof r->cell[4], s->last_caught_up_timestamp, human, "last caught up") != 0)
            return -1;
        snprintf(r->cell[5], sizeof r->cell[5], "%s", status);
    }
    return 0;
}

static void print_row(const char *const *cells, const size_t *widths) {
    for (int i = 0; i < QUORUM_COLUMNS; i++) printf("%-*s\t", (int)widths[i], cells[i]);
    printf("\n");
}

static int describe_replication(kclient *c, karena *a, int human) {
    const DescribeQuorumResponse_PartitionData *p = describe_quorum(c, a);
    if (!p) return 1;
    const DescribeQuorumResponse_ReplicaState *leader = find_leader(p);
    if (!leader) return fail_with("java.util.NoSuchElementException: No value present");
    size_t total = (size_t)(p->current_voters_count + (p->observers_count > 0 ? p->observers_count : 0)) + 1;
    quorum_row *rows = karena_calloc(a, total, sizeof *rows);
    size_t n = 0;
    if (add_rows(rows, &n, leader, leader, 1, 0, 0, "Leader", human) != 0 ||
        add_rows(rows, &n, leader, p->current_voters, p->current_voters_count, 1, p->leader_id, "Follower", human) != 0 ||
        add_rows(rows, &n, leader, p->observers, p->observers_count, 0, 0, "Observer", human) != 0)
        return 1;
    static const char *const headers[QUORUM_COLUMNS] = {"NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                                         "LastCaughtUpTimestamp", "Status"};
    size_t widths[QUORUM_COLUMNS];
    for (int i = 0; i < QUORUM_COLUMNS; i++) {
        widths[i] = strlen(headers[i]);
        for (size_t r = 0; r < n; r++)
            if (strlen(rows[r].cell[i]) > widths[i]) widths[i] = strlen(rows[r].cell[i]);
    }
    print_row(headers, widths);
    for (size_t r = 0; r < n; r++) {
        const char *cells[QUORUM_COLUMNS];
        for (int i = 0; i < QUORUM_COLUMNS; i++) cells[i] = rows[r].cell[i];
        print_row(cells, widths);
    }
    return 0;
}

int tool_metadata_quorum(int argc, char **argv) {
    argp_result r;
    int rc;
    if (argp_parse(&quorum_parser, argc, argv, &r, &rc)) {
        argp_free(&r);
        return rc;
    }
    kclient c;
    kclient_init(&c, "adminclient-1");
    karena a;
    karena_init(&a, 0);
    const char *config = argp_get(&r, "command-config");
    int status = argp_has(&r, "status"), replication = argp_has(&r, "replication");
    int human = argp_has(&r, "human-readable");
    if (config && access(config, F_OK) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "Properties file %s does not exists!", config);
        rc = terse(msg);
        goto out;
    }
    if (config && admin_apply_command_config(&c, config) != 0) {
        rc = 1;
        goto out;
    }
    if (status && replication) {
        rc = terse("Only one of --status or --replication should be specified with describe sub-command");
        goto out;
    }
    if (!status && !replication) {
        rc = terse("One of --status or --replication must be specified with describe sub-command");
        goto out;
    }
    if (status && human) {
        rc = terse("The option --human-readable is only supported along with --replication");
        goto out;
    }
    if (kclient_connect(&c, argp_get(&r, "bootstrap-server")) != 0) {
        rc = fail_with(status ? "org.apache.kafka.common.errors.TimeoutException: "
                                "Timed out waiting for a node assignment. Call: describeCluster"
                              : "org.apache.kafka.common.errors.TimeoutException: "
                                "Timed out waiting for a node assignment. Call: describeMetadataQuorum");
        goto out;
    }
    rc = status ? describe_status(&c, &a) : describe_replication(&c, &a, human);
out:
    kclient_close(&c);
    karena_free(&a);
    argp_free(&r);
    return rc;
}
