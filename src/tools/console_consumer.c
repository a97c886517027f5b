/* console_consumer.c - kafka-console-consumer: records -> stdout.
 *
 * Kafka's ConsoleConsumer rebuilt on librdkafka. Without --partition it
 * subscribes as a member of a group (--group, or a fresh
 * console-consumer-<n> whose offsets are not committed, as Kafka does);
 * with --partition it assigns that one partition and seeks to --offset.
 * Records are printed by Kafka's default formatter rules (print.key,
 * print.timestamp, separators, null.literal, ...) and flushed one by one.
 * It stops at --max-messages, after --timeout-ms without a record, or on
 * SIGINT/SIGTERM, then prints "Processed a total of N messages" to stderr.
 * On a signal it exits with 128+signal, like the JVM that runs Kafka's tool.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "tools/client_props.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define CONSUMER_CONFIG_CLASS "org.apache.kafka.clients.consumer.ConsumerConfig"
#define CONSUMER_LOGGER "kafka.tools.ConsoleConsumer$"

static const opt_spec consumer_specs[] = {
    {"topic", OPT_ARG, "String: topic", "The topic to read from.", NULL, 0},
    {"whitelist", OPT_ARG, "String: Java regex (String)", "DEPRECATED, use --include instead; "
     "ignored if --include is given. Regular expression of the topics to read.", NULL, 0},
    {"include", OPT_ARG, "String: Java regex (String)", "Regular expression of the topics to read.", NULL, 0},
    {"partition", OPT_ARG, "Integer: partition", "Read only this partition, starting at its end "
     "unless --offset says otherwise.", NULL, 0},
    {"offset", OPT_ARG, "String: consume offset", "Where to start reading: a non-negative offset, "
     "'earliest' for the beginning or 'latest' for the end.", "latest", 0},
    {"consumer-property", OPT_ARG, "String: consumer_prop", "key=value settings passed to the consumer.", NULL, 1},
    {"consumer.config", OPT_ARG, "String: config file", "Consumer properties file; "
     "--consumer-property settings win over it.", NULL, 0},
    {"formatter", OPT_ARG, "String: class", "Class that turns records into output text.",
     "kafka.tools.DefaultMessageFormatter", 0},
    {"property", OPT_ARG, "String: prop",
     "key=value settings for the formatter. Known ones:\n print.timestamp=true|false\n"
     " print.key=true|false\n print.offset=true|false\n print.partition=true|false\n"
     " print.headers=true|false\n print.value=true|false\n key.separator=<key.separator>\n"
     " line.separator=<line.separator>\n headers.separator=<line.separator>\n"
     " null.literal=<null.literal>\n key.deserializer=<key.deserializer>\n"
     " value.deserializer=<value.deserializer>\n header.deserializer=<header.deserializer>", NULL, 1},
    {"formatter-config", OPT_ARG, "String: config file", "Properties file for the formatter; "
     "--property settings win over it.", NULL, 0},
    {"from-beginning", OPT_FLAG, NULL, "Without an offset already committed for the group, "
     "start at the oldest record in the log instead of the newest.", NULL, 0},
    {"max-messages", OPT_ARG, "Integer: num_messages", "Stop after reading this many records; "
     "without it, read until interrupted.", NULL, 0},
    {"timeout-ms", OPT_ARG, "Integer: timeout_ms", "Stop when no record has arrived for this long.", NULL, 0},
    {"skip-message-on-error", OPT_FLAG, NULL, "Skip a record that cannot be formatted instead of stopping.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to", "REQUIRED: broker(s) to connect to.", NULL, 0},
    {"key-deserializer", OPT_ARG, "String: deserializer for key", "", NULL, 0},
    {"value-deserializer", OPT_ARG, "String: deserializer for values", "", NULL, 0},
    {"enable-systest-events", OPT_FLAG, NULL, "Also log consumer lifecycle events (for system tests).", NULL, 0},
    {"isolation-level", OPT_ARG, "String", "Set to read_committed in order to filter out transactional "
     "messages which are not committed. Set to read_uncommitted to read all messages.", "read_uncommitted", 0},
    {"group", OPT_ARG, "String: consumer group id", "The consumer group to join.", NULL, 0},
};

/* ---- formatter ----------------------------------------------------- */

typedef enum { DES_PASS, DES_VOID, DES_INT, DES_LONG, DES_SHORT, DES_FLOAT, DES_DOUBLE, DES_UUID } deser_kind;

typedef struct formatter {
    int noop;
    int print_timestamp, print_key, print_value, print_partition, print_offset, print_headers;
    const char *key_sep, *line_sep, *headers_sep, *null_literal;
    deser_kind key_des, value_des, header_des;
} formatter;

static int is_true(const char *v) {
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return n == 4 && strncasecmp(v, "true", 4) == 0;
}

/* Maps a Java deserializer class to what we print. Returns -1 if unknown. */
static int deserializer_kind(const char *cls, deser_kind *out) {
    static const struct { const char *name; deser_kind k; } known[] = {
        {"StringDeserializer", DES_PASS}, {"ByteArrayDeserializer", DES_PASS},
        {"ByteBufferDeserializer", DES_PASS}, {"BytesDeserializer", DES_PASS},
        {"VoidDeserializer", DES_VOID}, {"IntegerDeserializer", DES_INT},
        {"LongDeserializer", DES_LONG}, {"ShortDeserializer", DES_SHORT},
        {"FloatDeserializer", DES_FLOAT}, {"DoubleDeserializer", DES_DOUBLE},
        {"UUIDDeserializer", DES_UUID},
    };
    const char *prefix = "org.apache.kafka.common.serialization.";
    if (strncmp(cls, prefix, strlen(prefix)) != 0) return -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(cls + strlen(prefix), known[i].name) == 0) {
            *out = known[i].k;
            return 0;
        }
    return -1;
}

static const char *formatter_configure(formatter *f, const client_props *p) {
    const char *v;
    memset(f, 0, sizeof *f);
    f->print_value = 1;
    f->key_sep = "\t";
    f->line_sep = "\n";
    f->headers_sep = ",";
    f->null_literal = "null";
    if ((v = client_props_get(p, "print.timestamp"))) f->print_timestamp = is_true(v);
    if ((v = client_props_get(p, "print.key"))) f->print_key = is_true(v);
    if ((v = client_props_get(p, "print.offset"))) f->print_offset = is_true(v);
    if ((v = client_props_get(p, "print.partition"))) f->print_partition = is_true(v);
    if ((v = client_props_get(p, "print.headers"))) f->print_headers = is_true(v);
    if ((v = client_props_get(p, "print.value"))) f->print_value = is_true(v);
    if ((v = client_props_get(p, "key.separator"))) f->key_sep = v;
    if ((v = client_props_get(p, "line.separator"))) f->line_sep = v;
    if ((v = client_props_get(p, "headers.separator"))) f->headers_sep = v;
    if ((v = client_props_get(p, "null.literal"))) f->null_literal = v;
    if ((v = client_props_get(p, "key.deserializer")) && deserializer_kind(v, &f->key_des) != 0) return v;
    if ((v = client_props_get(p, "value.deserializer")) && deserializer_kind(v, &f->value_des) != 0) return v;
    if ((v = client_props_get(p, "headers.deserializer")) && deserializer_kind(v, &f->header_des) != 0) return v;
    return NULL;
}

static uint64_t be_uint(const unsigned char *b, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | b[i];
    return v;
}

/* Java's Double.toString is close enough to %.17g trimmed for our use. */
static void write_java_double(FILE *out, double d) {
    if (d != d) { fputs("NaN", out); return; }
    if (d == 1.0 / 0.0) { fputs("Infinity", out); return; }
    if (d == -1.0 / 0.0) { fputs("-Infinity", out); return; }
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    fputs(buf, out);
    if (!strpbrk(buf, ".eEn")) fputs(".0", out);
}

/* Writes bytes through a deserializer. Returns -1 with err set on bad size. */
static int write_field(FILE *out, const formatter *f, deser_kind k, const void *data, size_t len,
                       char *err, size_t errlen) {
    const unsigned char *b = data;
    if (!data) {
        fputs(f->null_literal, out);
        return 0;
    }
    static const struct { deser_kind k; size_t size; const char *name; } sizes[] = {
        {DES_INT, 4, "IntegerDeserializer"}, {DES_LONG, 8, "LongDeserializer"},
        {DES_SHORT, 2, "ShortDeserializer"}, {DES_FLOAT, 4, "FloatDeserializer"},
        {DES_DOUBLE, 8, "DoubleDeserializer"},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].k == k && len != sizes[i].size) {
            snprintf(err, errlen, "Size of data received by %s is not %zu", sizes[i].name, sizes[i].size);
            return -1;
        }
    switch (k) {
    case DES_PASS: fwrite(data, 1, len, out); break;
    case DES_VOID: fputs("null", out); break;
    case DES_INT: fprintf(out, "%" PRId32, (int32_t)(uint32_t)be_uint(b, 4)); break;
    case DES_LONG: fprintf(out, "%" PRId64, (int64_t)be_uint(b, 8)); break;
    case DES_SHORT: fprintf(out, "%d", (int)(int16_t)(uint16_t)be_uint(b, 2)); break;
    case DES_FLOAT: {
        uint32_t u = (uint32_t)be_uint(b, 4);
        float fl;
        memcpy(&fl, &u, 4);
        write_java_double(out, fl);
        break;
    }
    case DES_DOUBLE: {
        uint64_t u = be_uint(b, 8);
        double d;
        memcpy(&d, &u, 8);
        write_java_double(out, d);
        break;
    }
    case DES_UUID: fwrite(data, 1, len, out); break; /* Java's UUIDDeserializer reads the text form */
    }
    return 0;
}

/* Kafka's DefaultMessageFormatter.writeTo. Returns -1 with err on failure. */
static int format_record(FILE *out, const formatter *f, const rd_kafka_message_t *m, char *err, size_t errlen) {
    if (f->noop) return 0;
    if (f->print_timestamp) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (tt == RD_KAFKA_TIMESTAMP_CREATE_TIME) fprintf(out, "CreateTime:%" PRId64, ts);
        else if (tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) fprintf(out, "LogAppendTime:%" PRId64, ts);
        else fputs("NO_TIMESTAMP", out);
        fputs(f->print_offset || f->print_partition || f->print_headers || f->print_key || f->print_value
                  ? f->key_sep : f->line_sep, out);
    }
    if (f->print_partition) {
        fprintf(out, "Partition:%" PRId32, m->partition);
        fputs(f->print_offset || f->print_headers || f->print_key || f->print_value ? f->key_sep : f->line_sep, out);
    }
    if (f->print_offset) {
        fprintf(out, "Offset:%" PRId64, m->offset);
        fputs(f->print_headers || f->print_key || f->print_value ? f->key_sep : f->line_sep, out);
    }
    if (f->print_headers) {
        rd_kafka_headers_t *hdrs = NULL;
        size_t count = 0;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) count = rd_kafka_header_cnt(hdrs);
        if (count == 0) fputs("NO_HEADERS", out);
        for (size_t i = 0; i < count; i++) {
            const char *name;
            const void *val;
            size_t vlen;
            rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen);
            fprintf(out, "%s:", name);
            if (write_field(out, f, f->header_des, val, vlen, err, errlen) != 0) return -1;
            if (i + 1 < count) fputs(f->headers_sep, out);
        }
        fputs(f->print_key || f->print_value ? f->key_sep : f->line_sep, out);
    }
    if (f->print_key) {
        if (write_field(out, f, f->key_des, m->key, m->key_len, err, errlen) != 0) return -1;
        fputs(f->print_value ? f->key_sep : f->line_sep, out);
    }
    if (f->print_value) {
        if (write_field(out, f, f->value_des, m->payload, m->len, err, errlen) != 0) return -1;
        fputs(f->line_sep, out);
    }
    return 0;
}

/* ---- consuming ----------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int usage_fail(opts *o, const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    return opts_usage_error(o, msg);
}

int tool_console_consumer(int argc, char **argv) {
    opts o;
    client_props fprops = {0}, file_props = {0}, extra_props = {0}, cprops = {0};
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *sub_topic = NULL; /* --topic without --partition: the subscribed topic */
    int rc = 1;
    char err[1024];
    long long partition = -1, max_messages = -1, timeout_ms = -1;
    int64_t start_offset = RD_KAFKA_OFFSET_END;

    if (opts_parse(&o, consumer_specs, OPTS_COUNT(consumer_specs), argc, argv) != 0) {
        rc = opts_usage_error(&o, o.err);
        goto out;
    }
    int ec;
    if (opts_maybe_help_or_version(&o, "This tool helps to read data from Kafka topics and outputs it to standard output.",
                                   &ec)) {
        rc = ec;
        goto out;
    }
    if (opts_has(&o, "consumer.config") &&
        client_props_load_file(&file_props, opts_get(&o, "consumer.config", ""), err, sizeof err) != 0) {
        fprintf(stderr, "Exception in thread \"main\" %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < opts_count(&o, "consumer-property"); i++)
        client_props_put_kv(&extra_props, opts_get_at(&o, "consumer-property", i));
    if (opts_has(&o, "partition") && parse_int(opts_get(&o, "partition", ""), -2147483648LL, 2147483647LL, &partition)) {
        rc = usage_fail(&o, "Cannot parse argument '%s' of option partition", opts_get(&o, "partition", ""));
        goto out;
    }
    formatter fmt;
    const char *fclass = opts_get(&o, "formatter", "kafka.tools.DefaultMessageFormatter");
    int noop = 0;
    if (strcmp(fclass, "kafka.tools.NoOpMessageFormatter") == 0) noop = 1;
    else if (strcmp(fclass, "kafka.tools.DefaultMessageFormatter") != 0 &&
             strcmp(fclass, "kafka.tools.LoggingMessageFormatter") != 0) {
        fprintf(stderr, "Exception in thread \"main\" java.lang.ClassNotFoundException: %s\n", fclass);
        goto out;
    }
    if (opts_has(&o, "formatter-config") &&
        client_props_load_file(&fprops, opts_get(&o, "formatter-config", ""), err, sizeof err) != 0) {
        fprintf(stderr, "Exception in thread \"main\" %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < opts_count(&o, "property"); i++) client_props_put_kv(&fprops, opts_get_at(&o, "property", i));
    if (opts_has(&o, "max-messages") &&
        parse_int(opts_get(&o, "max-messages", ""), -2147483648LL, 2147483647LL, &max_messages)) {
        rc = usage_fail(&o, "Cannot parse argument '%s' of option max-messages", opts_get(&o, "max-messages", ""));
        goto out;
    }
    if (opts_has(&o, "timeout-ms") &&
        parse_int(opts_get(&o, "timeout-ms", ""), -2147483648LL, 2147483647LL, &timeout_ms)) {
        rc = usage_fail(&o, "Cannot parse argument '%s' of option timeout-ms", opts_get(&o, "timeout-ms", ""));
        goto out;
    }
    const char *kd = opts_get(&o, "key-deserializer", NULL), *vd = opts_get(&o, "value-deserializer", NULL);
    if (kd && *kd) client_props_put(&fprops, "key.deserializer", kd);
    if (vd && *vd) client_props_put(&fprops, "value.deserializer", vd);
    const char *bad_class = formatter_configure(&fmt, &fprops);
    if (bad_class) {
        fprintf(stderr, "Exception in thread \"main\" java.lang.ClassNotFoundException: %s\n", bad_class);
        goto out;
    }
    fmt.noop = noop;

    const char *topic = opts_get(&o, "topic", NULL);
    const char *include = opts_has(&o, "include") ? opts_get(&o, "include", NULL) : opts_get(&o, "whitelist", NULL);
    if ((topic != NULL) + (include != NULL) != 1) {
        rc = opts_usage_error(&o, opts_has(&o, "whitelist")
                                      ? "Exactly one of --include/--topic is required. --whitelist is DEPRECATED use "
                                        "--include instead; ignored if --include specified."
                                      : "Exactly one of --include/--topic is required. ()");
        goto out;
    }
    int from_beginning = opts_has(&o, "from-beginning");
    if (opts_has(&o, "partition")) {
        if (!topic) { rc = opts_usage_error(&o, "The topic is required when partition is specified."); goto out; }
        if (from_beginning && opts_has(&o, "offset")) {
            rc = opts_usage_error(&o, "Options from-beginning and offset cannot be specified together.");
            goto out;
        }
    } else if (opts_has(&o, "offset")) {
        rc = opts_usage_error(&o, "The partition is required when offset is specified.");
        goto out;
    }
    if (opts_has(&o, "offset")) {
        const char *ov = opts_get(&o, "offset", "latest");
        long long n;
        if (strcasecmp(ov, "earliest") == 0) start_offset = RD_KAFKA_OFFSET_BEGINNING;
        else if (strcasecmp(ov, "latest") == 0) start_offset = RD_KAFKA_OFFSET_END;
        else if (parse_int(ov, 0, INT64_MAX, &n) == 0) start_offset = n;
        else {
            rc = usage_fail(&o, "The provided offset value '%s' is incorrect. Valid values are 'earliest', 'latest', "
                                "or a non-negative long.", ov);
            goto out;
        }
    } else if (from_beginning) {
        start_offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if ((rc = opts_require(&o, "bootstrap-server")) != 0) goto out;
    rc = 1;

    /* One group id, wherever it was given. */
    const char *ids[3] = {opts_get(&o, "group", NULL), client_props_get(&file_props, "group.id"),
                          client_props_get(&extra_props, "group.id")};
    const char *group = NULL;
    char detected[600] = "";
    int distinct = 0;
    for (int i = 0; i < 3; i++) {
        if (!ids[i]) continue;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (ids[j] && strcmp(ids[j], ids[i]) == 0) seen = 1;
        if (seen) continue;
        size_t l = strlen(detected);
        snprintf(detected + l, sizeof detected - l, "%s'%s'", distinct ? ", " : "", ids[i]);
        distinct++;
        if (!group) group = ids[i];
    }
    if (distinct > 1) {
        snprintf(err, sizeof err,
                 "The group ids provided in different places (directly using '--group', via '--consumer-property', "
                 "or via '--consumer.config') do not match. Detected group ids: %s", detected);
        rc = opts_usage_error(&o, err);
        goto out;
    }
    char generated[64];
    for (size_t i = 0; i < file_props.n; i++) client_props_put(&cprops, file_props.keys[i], file_props.vals[i]);
    if (group) {
        client_props_put(&cprops, "group.id", group);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        srand((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid()));
        snprintf(generated, sizeof generated, "console-consumer-%d", rand() % 100000);
        client_props_put(&cprops, "group.id", generated);
        /* A throwaway group's offsets are not worth committing. */
        if (!client_props_has(&cprops, "enable.auto.commit")) client_props_put(&cprops, "enable.auto.commit", "false");
    }
    if (group && opts_has(&o, "partition")) {
        rc = opts_usage_error(&o, "Options group and partition cannot be specified together.");
        goto out;
    }
    for (size_t i = 0; i < extra_props.n; i++) client_props_put(&cprops, extra_props.keys[i], extra_props.vals[i]);
    const char *aor = client_props_get(&cprops, "auto.offset.reset");
    if (aor) {
        if (from_beginning && strcmp(aor, "earliest") != 0) {
            fprintf(stderr, "Can't simultaneously specify --from-beginning and 'auto.offset.reset=%s', please remove one option\n",
                    aor);
            goto out;
        }
    } else {
        client_props_put(&cprops, "auto.offset.reset", from_beginning ? "earliest" : "latest");
    }
    client_props_put(&cprops, "bootstrap.servers", opts_get(&o, "bootstrap-server", ""));
    if (!client_props_has(&cprops, "client.id")) client_props_put(&cprops, "client.id", "console-consumer");
    if (opts_has(&o, "isolation-level") || !client_props_has(&cprops, "isolation.level"))
        client_props_put(&cprops, "isolation.level", opts_get(&o, "isolation-level", "read_uncommitted"));

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    client_conf_defaults(conf);
    rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", err, sizeof err);
    if (client_props_apply(&cprops, conf, CLIENT_CONSUMER, CONSUMER_CONFIG_CLASS, err, sizeof err) != 0) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "org.apache.kafka.common.config.ConfigException: %s\n", err);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        tool_log("ERROR", CONSUMER_LOGGER, "Unknown error when running consumer: \norg.apache.kafka.common.KafkaException: "
                 "Failed to construct kafka consumer: %s", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(rk);

    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;
    if (opts_has(&o, "partition")) {
        rd_kafka_topic_partition_list_add(tl, topic, (int32_t)partition)->offset = start_offset;
        e = rd_kafka_assign(rk, tl);
    } else {
        char *pattern = NULL;
        if (include && asprintf(&pattern, "^(%s)$", include) < 0) pattern = NULL;
        rd_kafka_topic_partition_list_add(tl, include ? (pattern ? pattern : include) : topic, RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(rk, tl);
        free(pattern);
    }
    rd_kafka_topic_partition_list_destroy(tl);
    if (e) {
        tool_log("ERROR", CONSUMER_LOGGER, "Unknown error when running consumer: \n%s: %s", client_java_exception(e),
                 rd_kafka_err2str(e));
        goto out;
    }
    /* A subscription to one named topic: a handle for it makes librdkafka
     * ask for it with allow.auto.create.topics, which creates it where the
     * broker allows, as the Java consumer's subscription does; while it is
     * missing it is reported in Java's words once a second (librdkafka's
     * group looks it up as often and joins as soon as it exists). */
    if (!opts_has(&o, "partition") && !include) sub_topic = rd_kafka_topic_new(rk, topic, NULL);
    int topic_known = sub_topic ? 0 : 1;
    int64_t next_lookup = 0;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    long long count = 0;
    int64_t wait_start = now_ms();
    rc = 0;
    while (!stop_signal && (max_messages == -1 || count < max_messages)) {
        if (!topic_known && now_ms() >= next_lookup) {
            topic_known = client_consumer_topic_metadata(rk, sub_topic, client_props_get(&cprops, "client.id"),
                                                         client_props_get(&cprops, "group.id"), 500) == 1;
            next_lookup = now_ms() + 1000;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (timeout_ms >= 0 && now_ms() - wait_start > timeout_ms) {
                tool_log("ERROR", CONSUMER_LOGGER, "Error processing message, terminating consumer process: \n"
                         "org.apache.kafka.common.errors.TimeoutException");
                break;
            }
            continue;
        }
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                char fe[512];
                rd_kafka_fatal_error(rk, fe, sizeof fe);
                tool_log("ERROR", CONSUMER_LOGGER, "Error processing message, terminating consumer process: \n"
                         "org.apache.kafka.common.KafkaException: %s", fe);
                rd_kafka_message_destroy(m);
                break;
            }
            if (sub_topic && m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                /* librdkafka's "Subscribed topic not available": look it
                 * up ourselves, and say so in Java's words */
                topic_known = 0;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                tool_log("WARN", "org.apache.kafka.clients.consumer.internals.ConsumerCoordinator", "%s",
                         rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        count++;
        wait_start = now_ms();
        if (format_record(stdout, &fmt, m, err, sizeof err) != 0) {
            rd_kafka_message_destroy(m);
            if (opts_has(&o, "skip-message-on-error")) {
                tool_log("ERROR", CONSUMER_LOGGER, "Error processing message, skipping this message: \n"
                         "org.apache.kafka.common.errors.SerializationException: %s", err);
                continue;
            }
            tool_log("ERROR", CONSUMER_LOGGER, "Unknown error when running consumer: \n"
                     "org.apache.kafka.common.errors.SerializationException: %s", err);
            rc = 1;
            break;
        }
        rd_kafka_message_destroy(m);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "Unable to write to standard out, closing consumer.\n");
            break;
        }
    }
    rd_kafka_consumer_close(rk);
    if (sub_topic) rd_kafka_topic_destroy(sub_topic);
    sub_topic = NULL;
    rd_kafka_destroy(rk);
    rk = NULL;
    fprintf(stderr, "Processed a total of %lld messages\n", count);
    fflush(stderr);
    if (opts_has(&o, "enable-systest-events") && stop_signal) {
        printf("shutdown_complete\n");
        fflush(stdout);
    }
    if (stop_signal) rc = 128 + stop_signal;

out:
    if (sub_topic) rd_kafka_topic_destroy(sub_topic);
    if (rk) rd_kafka_destroy(rk);
    client_props_free(&fprops);
    client_props_free(&file_props);
    client_props_free(&extra_props);
    client_props_free(&cprops);
    opts_free(&o);
    return rc;
}
