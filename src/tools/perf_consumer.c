/* perf_consumer.c - kafka-consumer-perf-test: consumer throughput.
 *
 * Kafka's ConsumerPerformance rebuilt on librdkafka. It joins a group
 * (perf-consumer-<n> unless --group), reads --messages records from the
 * topic (from the beginning unless --from-latest) and prints Kafka's
 * header and result line: start/end time, MB and records read and their
 * rates, time spent in rebalances and the fetch-only rates. With
 * --show-detailed-stats it prints a line per --reporting-interval instead.
 * Records are taken in batches of up to 500 per poll, like Java's
 * max.poll.records, so the reporting clock advances the same way.
 *
 * Speed: librdkafka's fetch thread, which parses every record, is the
 * limit, so the loop does as little per record as it can (batches off the
 * consumer queue, one clock read per batch, only byte counting), and two
 * librdkafka start-up waits the Java consumer does not have are avoided
 * (see on_rebalance and the metadata request before subscribing).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tools/client_props.h"
#include "tools/javafmt.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define MAX_POLL_RECORDS 500

static const opt_spec cperf_specs[] = {
    {"broker-list", OPT_ARG, "String: broker-list", "DEPRECATED, use --bootstrap-server instead; "
     "ignored if --bootstrap-server is given. Brokers as HOST1:PORT1,HOST2:PORT2.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to", "REQUIRED unless "
     "--broker-list(deprecated) is given. Broker(s) to connect to.", NULL, 0},
    {"topic", OPT_ARG, "String: topic", "REQUIRED: the topic to read.", NULL, 0},
    {"group", OPT_ARG, "String: gid", "The consumer group to read as.", "perf-consumer-<random>", 0},
    {"fetch-size", OPT_ARG, "Integer: size", "Most bytes fetched per partition in one request.", "1048576", 0},
    {"from-latest", OPT_FLAG, NULL, "Without a committed offset for the group, start at the newest "
     "record instead of the oldest.", NULL, 0},
    {"socket-buffer-size", OPT_ARG, "Integer: size", "TCP receive buffer size.", "2097152", 0},
    {"threads", OPT_ARG, "Integer: count", "DEPRECATED AND IGNORED: number of processing threads.", "10", 0},
    {"num-fetch-threads", OPT_ARG, "Integer: count", "DEPRECATED AND IGNORED: number of fetcher threads.", "1", 0},
    {"consumer.config", OPT_ARG, "String: config file", "Consumer properties file.", NULL, 0},
    {"print-metrics", OPT_FLAG, NULL, "Print the consumer's metrics at the end.", NULL, 0},
    {"show-detailed-stats", OPT_FLAG, NULL, "Print statistics for every reporting interval "
     "(see reporting-interval).", NULL, 0},
    {"timeout", OPT_ARG_OPTIONAL, "Long: milliseconds", "Give up when no record has arrived for this many ms.",
     "10000", 0},
    {"messages", OPT_ARG, "Long: count", "REQUIRED: how many records to read.", NULL, 0},
    {"reporting-interval", OPT_ARG, "Long: interval_ms", "How often, in ms, progress is printed.", "5000", 0},
    {"date-format", OPT_ARG, "String: date format", "SimpleDateFormat pattern for the time fields.",
     "yyyy-MM-dd HH:mm:ss:SSS", 0},
    {"hide-header", OPT_FLAG, NULL, "Do not print the header line.", NULL, 0},
};

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Rebalance bookkeeping (Kafka's ConsumerPerfRebListener). */
typedef struct join_clock {
    int64_t join_start, join_total, join_round;
    int64_t reset_offset; /* RD_KAFKA_OFFSET_BEGINNING or _END (--from-latest) */
} join_clock;

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    join_clock *jc = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int64_t elapsed = wall_ms() - jc->join_start;
        jc->join_total += elapsed;
        jc->join_round += elapsed;
        /* librdkafka treats "no committed offset" as an error and waits
         * 100 ms before it looks up the auto.offset.reset position; the Java
         * consumer looks it up at once. Reading the committed offsets here
         * and assigning the reset position explicitly for partitions that
         * have none gives the same start offsets without that wait. */
        if (rd_kafka_committed(rk, parts, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
                    parts->elems[i].offset = jc->reset_offset;
        rd_kafka_assign(rk, parts);
    } else {
        jc->join_start = wall_ms();
        rd_kafka_assign(rk, NULL);
    }
}

static int parse_ll(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static void print_progress(const char *datefmt, long long bytes, long long last_bytes, long long msgs,
                           long long last_msgs, int64_t start, int64_t end, int64_t join_round) {
    char d[128], a[64], b[64], c[64], e[64], f[64];
    double elapsed = (double)(end - start);
    double total_mb = (double)bytes / (1024 * 1024);
    double interval_mb = (double)(bytes - last_bytes) / (1024 * 1024);
    int64_t fetch_ms = end - start - join_round;
    printf("%s, %d, %s, %s, %lld, %s", java_date(d, sizeof d, datefmt, end), 0, java_fixed(a, sizeof a, total_mb, 4),
           java_fixed(b, sizeof b, 1000.0 * interval_mb / elapsed, 4), msgs,
           java_fixed(c, sizeof c, ((double)(msgs - last_msgs) / elapsed) * 1000.0, 4));
    printf(", %" PRId64 ", %" PRId64 ", %s, %s\n", join_round, fetch_ms,
           java_fixed(e, sizeof e, fetch_ms <= 0 ? 0.0 : 1000.0 * interval_mb / (double)fetch_ms, 4),
           java_fixed(f, sizeof f, fetch_ms <= 0 ? 0.0 : 1000.0 * (double)(msgs - last_msgs) / (double)fetch_ms, 4));
    fflush(stdout);
}

int tool_consumer_perf_test(int argc, char **argv) {
    opts o;
    client_props props = {0};
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    int rc = 1;
    char err[1024];

    if (opts_parse(&o, cperf_specs, OPTS_COUNT(cperf_specs), argc, argv) != 0) {
        rc = opts_usage_error(&o, o.err);
        goto out;
    }
    if (!opts_has(&o, "help") && !opts_has(&o, "version") && !opts_has(&o, "bootstrap-server") &&
        !opts_has(&o, "broker-list")) {
        rc = opts_usage_error(&o, "Missing required option(s) [bootstrap-server]");
        goto out;
    }
    if (opts_has(&o, "threads") || opts_has(&o, "num-fetch-threads"))
        printf("WARNING: option [threads] and [num-fetch-threads] have been deprecated and will be ignored by the test\n");
    int ec;
    if (opts_maybe_help_or_version(&o, "This tool is used to verify the consumer performance.", &ec)) {
        rc = ec;
        goto out;
    }
    if ((rc = opts_require(&o, "topic")) != 0 || (rc = opts_require(&o, "messages")) != 0) goto out;
    rc = 1;
    long long num_messages, timeout_ms = 10000, interval_ms = 5000, fetch_size = 1048576, sockbuf = 2097152;
    static const struct { const char *name; long long *dst; } nums[] = {
        {"messages", NULL}, {"timeout", NULL}, {"reporting-interval", NULL}, {"fetch-size", NULL},
        {"socket-buffer-size", NULL},
    };
    long long *dsts[] = {&num_messages, &timeout_ms, &interval_ms, &fetch_size, &sockbuf};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const char *v = opts_get(&o, nums[i].name, NULL);
        if (!v) continue;
        int bad = parse_ll(v, dsts[i]) != 0;
        if (!bad && strcmp(nums[i].name, "reporting-interval") == 0) bad = v[0] < '0' || v[0] > '9';
        if (bad) {
            snprintf(err, sizeof err, "Cannot parse argument '%s' of option %s", v, nums[i].name);
            rc = opts_usage_error(&o, err);
            goto out;
        }
    }
    if (interval_ms <= 0) {
        fprintf(stderr, "Reporting interval must be greater than 0.\njava.lang.IllegalArgumentException: Reporting interval must be greater than 0.\n");
        goto out;
    }
    int detailed = opts_has(&o, "show-detailed-stats");
    const char *datefmt = opts_get(&o, "date-format", "yyyy-MM-dd HH:mm:ss:SSS");
    if (!opts_has(&o, "hide-header")) {
        const char *extra = ", rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
        if (!detailed)
            printf("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec%s\n", extra);
        else
            printf("time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec%s\n", extra);
        fflush(stdout);
    }

    if (opts_has(&o, "consumer.config") &&
        client_props_load_file(&props, opts_get(&o, "consumer.config", ""), err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    char group[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    srand((unsigned)(now.tv_nsec ^ now.tv_sec ^ getpid()));
    snprintf(group, sizeof group, "perf-consumer-%d", rand() % 100000);
    char num[32];
    client_props_put(&props, "bootstrap.servers", opts_has(&o, "bootstrap-server") ? opts_get(&o, "bootstrap-server", "")
                                                                                    : opts_get(&o, "broker-list", ""));
    client_props_put(&props, "group.id", opts_get(&o, "group", group));
    snprintf(num, sizeof num, "%lld", sockbuf);
    client_props_put(&props, "receive.buffer.bytes", num);
    snprintf(num, sizeof num, "%lld", fetch_size);
    client_props_put(&props, "max.partition.fetch.bytes", num);
    client_props_put(&props, "auto.offset.reset", opts_has(&o, "from-latest") ? "latest" : "earliest");
    client_props_put(&props, "check.crcs", "false");
    if (!client_props_has(&props, "client.id")) client_props_put(&props, "client.id", "perf-consumer-client");

    join_clock jc = {0};
    jc.reset_offset = opts_has(&o, "from-latest") ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    client_conf_defaults(conf);
    rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", err, sizeof err);
    if (client_props_apply(&props, conf, CLIENT_CONSUMER, "org.apache.kafka.clients.consumer.ConsumerConfig", err,
                           sizeof err) != 0) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    rd_kafka_conf_set_opaque(conf, &jc);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "Failed to construct kafka consumer\n%s\n", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(rk);
    int64_t start_ms = wall_ms();
    jc.join_start = start_ms;
    /* Learn the partitions' leaders while the group join runs: a partition
     * assigned before librdkafka knows its leader waits 500 ms to look up
     * its start offset. Kept until the end; only a handle. */
    rkt = rd_kafka_topic_new(rk, opts_get(&o, "topic", ""), NULL);
    /* Also what creates a missing topic, as the Java consumer's subscription does. */
    if (rkt)
        client_consumer_topic_metadata(rk, rkt, client_props_get(&props, "client.id"),
                                       client_props_get(&props, "group.id"), 10000);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, opts_get(&o, "topic", ""), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (e) {
        fprintf(stderr, "%s\n", rd_kafka_err2str(e));
        goto out;
    }

    /* The consumer queue, read in batches: one lock and clock read per
     * batch instead of per record, which leaves librdkafka's fetch thread
     * (the real limit: it parses every record) more of the CPU. */
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    long long msgs = 0, bytes = 0, last_msgs = 0, last_bytes = 0;
    int64_t cur = wall_ms(), last_report = cur, last_consumed = cur;
    while (msgs < num_messages && cur - last_consumed <= timeout_ms) {
        /* One Java poll(100ms): wait for the first record, then take what is ready. */
        rd_kafka_message_t *batch[MAX_POLL_RECORDS];
        ssize_t n = 0;
        rd_kafka_message_t *first = rd_kafka_consumer_poll(rk, 100);
        if (first) {
            batch[n++] = first;
            ssize_t more = rd_kafka_consume_batch_queue(queue, 0, batch + 1, MAX_POLL_RECORDS - 1);
            if (more > 0) n += more;
        }
        cur = wall_ms();
        int got = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (!m->err) {
                got = 1;
                msgs++;
                bytes += (long long)(m->key_len + m->len); /* both 0 when null */
                if (cur - last_report >= interval_ms) {
                    if (detailed)
                        print_progress(datefmt, bytes, last_bytes, msgs, last_msgs, last_report, cur, jc.join_round);
                    jc.join_round = 0;
                    last_report = cur;
                    last_msgs = msgs;
                    last_bytes = bytes;
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (got) last_consumed = cur;
    }
    rd_kafka_queue_destroy(queue);
    if (msgs < num_messages)
        printf("WARNING: Exiting before consuming the expected number of messages: timeout (%lld ms) exceeded. "
               "You can use the --timeout option to increase the timeout.\n", timeout_ms);
    int64_t end_ms = wall_ms();
    rd_kafka_consumer_close(rk);
    if (rkt) rd_kafka_topic_destroy(rkt);
    rkt = NULL;
    rd_kafka_destroy(rk);
    rk = NULL;

    double elapsed_sec = (double)(end_ms - start_ms) / 1000.0;
    int64_t fetch_ms = (end_ms - start_ms) - jc.join_total;
    if (!detailed) {
        double mb = (double)bytes / (1024 * 1024);
        char s1[128], s2[128], a[64], b[64], c[64], d[64], f[64];
        printf("%s, %s, %s, %s, %lld, %s, %" PRId64 ", %" PRId64 ", %s, %s\n", java_date(s1, sizeof s1, datefmt, start_ms),
               java_date(s2, sizeof s2, datefmt, end_ms), java_fixed(a, sizeof a, mb, 4),
               java_fixed(b, sizeof b, mb / elapsed_sec, 4), msgs, java_fixed(c, sizeof c, (double)msgs / elapsed_sec, 4),
               jc.join_total, fetch_ms, java_fixed(d, sizeof d, mb / ((double)fetch_ms / 1000.0), 4),
               java_fixed(f, sizeof f, (double)msgs / ((double)fetch_ms / 1000.0), 4));
    }
    if (opts_has(&o, "print-metrics")) {
        printf("\n%-60s   %s\n", "Metric Name", "Value");
        printf("%-60s : %lld\n", "consumer-fetch-manager-metrics:records-consumed-total:{client-id=perf-consumer-client}", msgs);
    }
    fflush(stdout);
    rc = 0;

out:
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (rk) rd_kafka_destroy(rk);
    client_props_free(&props);
    opts_free(&o);
    return rc;
}
