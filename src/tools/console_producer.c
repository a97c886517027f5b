/* console_producer.c - kafka-console-producer: stdin lines -> records.
 *
 * Kafka's ConsoleProducer rebuilt on librdkafka. Each input line becomes
 * one record; with parse.key / parse.headers the line is split into
 * headers, key and value the way Kafka's LineMessageReader does. The
 * producer is configured as the Java tool configures its KafkaProducer
 * (linger 1000 ms, acks -1, retries 3, request timeout 1500 ms, client id
 * console-producer, idempotence when acks=all) and keys are placed with
 * murmur2 like Java's default partitioner. The ">" prompt is printed only
 * when stdin and stdout are a terminal, as Java does (System.console()).
 * At end of input everything queued is delivered before exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tools/client_props.h"
#include "tools/opts.h"
#include "tools/tools.h"

#define DEFAULT_READER "kafka.tools.ConsoleProducer$LineMessageReader"
#define PRODUCER_CONFIG_CLASS "org.apache.kafka.clients.producer.ProducerConfig"

static const opt_spec producer_specs[] = {
    {"topic", OPT_ARG, "String: topic", "REQUIRED: the topic to write the records to.", NULL, 0},
    {"broker-list", OPT_ARG, "String: broker-list",
     "DEPRECATED, use --bootstrap-server instead; ignored if --bootstrap-server is given. "
     "Brokers as HOST1:PORT1,HOST2:PORT2.", NULL, 0},
    {"bootstrap-server", OPT_ARG, "String: server to connect to",
     "REQUIRED unless --broker-list(deprecated) is given. Broker(s) to connect to, as "
     "HOST1:PORT1,HOST2:PORT2.", NULL, 0},
    {"sync", OPT_FLAG, NULL, "Send each record synchronously: wait for its acknowledgement "
     "before reading the next line.", NULL, 0},
    {"compression-codec", OPT_ARG_OPTIONAL, "String: compression-codec",
     "Compression for produced batches: 'none', 'gzip', 'snappy', 'lz4' or 'zstd'. Given "
     "without a value it means 'gzip'.", NULL, 0},
    {"batch-size", OPT_ARG, "Integer: size", "Bytes of records gathered into one batch when "
     "sending asynchronously; overridden by max-partition-memory-bytes when that is given.",
     "16384", 0},
    {"message-send-max-retries", OPT_ARG, "Integer", "How many times a failed send is "
     "retried before the record is given up (the producer's `retries`).", "3", 0},
    {"retry-backoff-ms", OPT_ARG, "Long", "Wait before retrying a failed send, during which "
     "metadata is refreshed (the producer's `retry.backoff.ms`).", "100", 0},
    {"timeout", OPT_ARG, "Long: timeout_ms", "When sending asynchronously, the longest a "
     "record waits for its batch to fill, in ms (the producer's `linger.ms`).", "1000", 0},
    {"request-required-acks", OPT_ARG, "String: request required acks",
     "The producer's `acks`: acknowledgements required for a produce request.", "-1", 0},
    {"request-timeout-ms", OPT_ARG, "Integer: request timeout ms", "How long a produce "
     "request waits for its acknowledgement; must be positive.", "1500", 0},
    {"metadata-expiry-ms", OPT_ARG, "Long: metadata expiration interval", "Metadata older "
     "than this many ms is refreshed even without leadership changes (the producer's "
     "`metadata.max.age.ms`).", "300000", 0},
    {"max-block-ms", OPT_ARG, "Long: max block on send", "The longest a send may block, "
     "e.g. while the buffer is full.", "60000", 0},
    {"max-memory-bytes", OPT_ARG, "Long: total memory in bytes", "Memory for records "
     "waiting to be sent (the producer's `buffer.memory`).", "33554432", 0},
    {"max-partition-memory-bytes", OPT_ARG, "Integer: memory in bytes per partition",
     "Records smaller than this are grouped per partition up to this size (the producer's "
     "`batch.size`).", "16384", 0},
    {"line-reader", OPT_ARG, "String: reader_class", "Class that turns standard input into "
     "records; the default reads one record per line.", DEFAULT_READER, 0},
    {"socket-buffer-size", OPT_ARG, "Integer: size", "TCP send buffer size (the producer's "
     "`send.buffer.bytes`).", "102400", 0},
    {"property", OPT_ARG, "String: prop",
     "key=value settings for the line reader. Defaults:\n"
     " parse.key=false\n parse.headers=false\n ignore.error=false\n key.separator=\\t\n"
     " headers.delimiter=\\t\n headers.separator=,\n headers.key.separator=:\n"
     " null.marker=   when set, a key, value or header value equal to it becomes null\n"
     "Line layouts:\n parse.headers=true and parse.key=true:\n  \"h1:v1,h2:v2...\\tkey\\tvalue\"\n"
     " parse.key=true:\n  \"key\\tvalue\"\n parse.headers=true:\n  \"h1:v1,h2:v2...\\tvalue\"", NULL, 1},
    {"reader-config", OPT_ARG, "String: config file", "Properties file for the line reader; "
     "--property settings win over it.", NULL, 0},
    {"producer-property", OPT_ARG, "String: producer_prop", "key=value settings passed to "
     "the producer.", NULL, 1},
    {"producer.config", OPT_ARG, "String: config file", "Producer properties file; "
     "--producer-property settings win over it.", NULL, 0},
};

/* ---- line reader ----------------------------------------------------- */

typedef struct line_reader {
    int parse_key, parse_headers, ignore_error;
    const char *key_sep, *headers_delim, *headers_sep, *headers_key_sep;
    const char *null_marker; /* NULL when unset */
    long line_number;
} line_reader;

static int prop_true(const char *v) {
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    return n == 4 && strncasecmp(v, "true", 4) == 0;
}

/* Validates separator combinations like Kafka's reader. Returns an error text or NULL. */
static const char *reader_configure(line_reader *r, const client_props *p) {
    const char *v;
    memset(r, 0, sizeof *r);
    r->key_sep = "\t";
    r->headers_delim = "\t";
    r->headers_sep = ",";
    r->headers_key_sep = ":";
    if ((v = client_props_get(p, "parse.key"))) r->parse_key = prop_true(v);
    if ((v = client_props_get(p, "key.separator"))) r->key_sep = v;
    if ((v = client_props_get(p, "parse.headers"))) r->parse_headers = prop_true(v);
    if ((v = client_props_get(p, "headers.delimiter"))) r->headers_delim = v;
    if ((v = client_props_get(p, "headers.separator"))) r->headers_sep = v;
    if ((v = client_props_get(p, "headers.key.separator"))) r->headers_key_sep = v;
    if ((v = client_props_get(p, "ignore.error"))) r->ignore_error = prop_true(v);
    if (strcmp(r->headers_delim, r->headers_sep) == 0)
        return "headers.delimiter and headers.separator may not be equal";
    if (strcmp(r->headers_delim, r->headers_key_sep) == 0)
        return "headers.delimiter and headers.key.separator may not be equal";
    if (strcmp(r->headers_sep, r->headers_key_sep) == 0)
        return "headers.separator and headers.key.separator may not be equal";
    r->null_marker = client_props_get(p, "null.marker");
    if (r->null_marker) {
        if (strcmp(r->null_marker, r->key_sep) == 0) return "null.marker and key.separator may not be equal";
        if (strcmp(r->null_marker, r->headers_sep) == 0) return "null.marker and headers.separator may not be equal";
        if (strcmp(r->null_marker, r->headers_delim) == 0) return "null.marker and headers.delimiter may not be equal";
        if (strcmp(r->null_marker, r->headers_key_sep) == 0)
            return "null.marker and headers.key.separator may not be equal";
    }
    return NULL;
}

static int is_null_marker(const line_reader *r, const char *s, size_t len) {
    return r->null_marker && strlen(r->null_marker) == len && memcmp(r->null_marker, s, len) == 0;
}

/* Finds the separator at or after `from`; -1 if absent. */
static long find_sep(const char *line, size_t len, size_t from, const char *sep) {
    size_t sl = strlen(sep);
    if (sl == 0) return (long)from;
    for (size_t i = from; i + sl <= len; i++)
        if (memcmp(line + i, sep, sl) == 0) return (long)i;
    return -1;
}

/* One parsed input line; pointers into the line buffer. */
typedef struct parsed_line {
    const char *key; size_t key_len;     /* key NULL = null key */
    const char *value; size_t value_len; /* value NULL = null value */
    rd_kafka_headers_t *headers;         /* owned, may be NULL */
} parsed_line;

/* Adds the headers of "k1:v1,k2:v2" to out. Returns error text or NULL. */
static const char *parse_headers(const line_reader *r, const char *h, size_t hlen,
                                 rd_kafka_headers_t *out, char *err, size_t errlen) {
    size_t ssl = strlen(r->headers_sep), ksl = strlen(r->headers_key_sep);
    /* Java's String.split drops trailing empty pieces. */
    size_t end = hlen;
    while (ssl && end >= ssl && memcmp(h + end - ssl, r->headers_sep, ssl) == 0) end -= ssl;
    size_t pos = 0;
    if (end == 0) {
        /* An empty header section is one pair "" with no key separator. */
        if (!r->ignore_error) {
            snprintf(err, errlen, "No header key separator found in pair '' on line number %ld", r->line_number);
            return err;
        }
        rd_kafka_header_add(out, "", 0, NULL, 0);
        return NULL;
    }
    while (pos <= end) {
        long s = ssl ? find_sep(h, end, pos, r->headers_sep) : -1;
        size_t pe = s < 0 ? end : (size_t)s;
        const char *pair = h + pos;
        size_t plen = pe - pos;
        long k = find_sep(pair, plen, 0, r->headers_key_sep);
        if (k < 0) {
            if (!r->ignore_error) {
                snprintf(err, errlen, "No header key separator found in pair '%.*s' on line number %ld",
                         (int)plen, pair, r->line_number);
                return err;
            }
            rd_kafka_header_add(out, pair, (ssize_t)plen, NULL, 0);
        } else {
            if (is_null_marker(r, pair, (size_t)k)) {
                snprintf(err, errlen, "Header keys should not be equal to the null marker '%s' as they can't be null",
                         r->null_marker);
                return err;
            }
            const char *hv = pair + k + ksl;
            size_t hvl = plen - (size_t)k - ksl;
            if (is_null_marker(r, hv, hvl)) rd_kafka_header_add(out, pair, k, NULL, 0);
            else rd_kafka_header_add(out, pair, k, hv, (ssize_t)hvl);
        }
        if (s < 0) break;
        pos = pe + ssl;
    }
    return NULL;
}

/* Splits a line into headers/key/value. Returns error text or NULL. */
static const char *parse_line(const line_reader *r, const char *line, size_t len, parsed_line *out,
                              char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t header_off = 0, key_off = 0;
    const char *hdr = NULL;
    size_t hdr_len = 0;
    if (r->parse_headers) {
        long i = find_sep(line, len, 0, r->headers_delim);
        if (i < 0) {
            if (!r->ignore_error) {
                snprintf(err, errlen, "No headers delimiter found on line number %ld: '%.*s'", r->line_number,
                         (int)len, line);
                return err;
            }
        } else {
            hdr = line;
            hdr_len = (size_t)i;
            header_off = hdr_len + strlen(r->headers_delim);
        }
    }
    if (r->parse_key) {
        long i = find_sep(line, len, header_off, r->key_sep);
        if (i < 0) {
            if (!r->ignore_error) {
                snprintf(err, errlen, "No key separator found on line number %ld: '%.*s'", r->line_number,
                         (int)len, line);
                return err;
            }
        } else {
            out->key = line + header_off;
            out->key_len = (size_t)i - header_off;
            key_off = out->key_len + strlen(r->key_sep);
            if (is_null_marker(r, out->key, out->key_len)) out->key = NULL;
        }
    }
    out->value = line + header_off + key_off;
    out->value_len = len - header_off - key_off;
    if (is_null_marker(r, out->value, out->value_len)) out->value = NULL;
    if (hdr && !is_null_marker(r, hdr, hdr_len)) {
        out->headers = rd_kafka_headers_new(4);
        const char *e = parse_headers(r, hdr, hdr_len, out->headers, err, errlen);
        if (e) {
            rd_kafka_headers_destroy(out->headers);
            out->headers = NULL;
            return e;
        }
    }
    return NULL;
}

/* ---- producing ----------------------------------------------------- */

typedef struct send_state {
    const char *topic;
    int sync;
    int sync_done;
    rd_kafka_resp_err_t sync_err;
} send_state;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    send_state *st = opaque;
    if (st->sync) {
        st->sync_done = 1;
        st->sync_err = m->err;
        return;
    }
    if (!m->err) return;
    /* Kafka's ErrorLoggingCallback: sizes, not contents. */
    char key[32], val[32];
    if (m->key) snprintf(key, sizeof key, "%zu bytes", m->key_len);
    else snprintf(key, sizeof key, "null");
    if (m->payload) snprintf(val, sizeof val, "%zu bytes", m->len);
    else snprintf(val, sizeof val, "null");
    tool_log("ERROR", "org.apache.kafka.clients.producer.internals.ErrorLoggingCallback",
             "Error when sending message to topic %s with key: %s, value: %s with error:\n%s: %s",
             st->topic, key, val, client_java_exception(m->err), rd_kafka_err2str(m->err));
}

static void drain(rd_kafka_t *rk) {
    while (rd_kafka_outq_len(rk) > 0) rd_kafka_flush(rk, 1000);
}

/* Queues one record, waiting (up to max_block_ms) while the queue is full. */
static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const char *topic, const parsed_line *pl,
                                       long max_block_ms) {
    long waited = 0;
    for (;;) {
        rd_kafka_headers_t *h = pl->headers ? rd_kafka_headers_copy(pl->headers) : NULL;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(pl->key, pl->key ? pl->key_len : 0),
            RD_KAFKA_V_VALUE((void *)pl->value, pl->value ? pl->value_len : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err && h) rd_kafka_headers_destroy(h);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= max_block_ms) return err;
        rd_kafka_poll(rk, 100);
        waited += 100;
    }
}

static int fail_config(const char *text) {
    fprintf(stderr, "org.apache.kafka.common.config.ConfigException: %s\n", text);
    return 1;
}

/* Java's maybeMergeOptions: the option wins if given, else an existing
 * property stays, else the option's default is used. */
static int merge_option(client_props *p, const opts *o, const char *key, const char *opt,
                        const char *defval) {
    if (opts_has(o, opt) || !client_props_has(p, key)) return client_props_put(p, key, opts_get(o, opt, defval));
    return 0;
}

/* Checks every host:port like Kafka's validatePortOrDie. */
static int valid_host_ports(const char *list) {
    if (!*list) return 0;
    const char *s = list;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        const char *colon = NULL;
        for (size_t i = 0; i < l; i++)
            if (s[i] == ':') colon = s + i;
        if (!colon || colon + 1 >= s + l) return 0;
        for (const char *d = colon + 1; d < s + l; d++)
            if (*d < '0' || *d > '9') return 0;
        if (!e) return 1;
        s = e + 1;
    }
}

int tool_console_producer(int argc, char **argv) {
    opts o;
    client_props reader_props = {0}, pprops = {0};
    rd_kafka_t *rk = NULL;
    char *line = NULL;
    int rc = 1;
    char err[1024];

    if (opts_parse(&o, producer_specs, OPTS_COUNT(producer_specs), argc, argv) != 0) {
        rc = opts_usage_error(&o, o.err);
        goto out;
    }
    if (!opts_has(&o, "help") && !opts_has(&o, "version") && !opts_has(&o, "bootstrap-server") &&
        !opts_has(&o, "broker-list")) {
        rc = opts_usage_error(&o, "Missing required option(s) [bootstrap-server]");
        goto out;
    }
    int ec;
    if (opts_maybe_help_or_version(&o, "This tool helps to read data from standard input and publish it to Kafka.",
                                   &ec)) {
        rc = ec;
        goto out;
    }
    if ((rc = opts_require(&o, "topic")) != 0) goto out;
    rc = 1;
    const char *topic = opts_get(&o, "topic", NULL);
    const char *servers = opts_has(&o, "bootstrap-server") ? opts_get(&o, "bootstrap-server", "")
                                                            : opts_get(&o, "broker-list", "");
    if (!valid_host_ports(servers)) {
        rc = opts_usage_error(&o, "Please provide valid host:port like host1:9091,host2:9092\n ");
        goto out;
    }
    const char *reader_class = opts_get(&o, "line-reader", DEFAULT_READER);
    if (strcmp(reader_class, DEFAULT_READER) != 0 && strcmp(reader_class, "kafka.tools.LineMessageReader") != 0) {
        fprintf(stderr, "java.lang.ClassNotFoundException: %s\n", reader_class);
        goto out;
    }

    /* Reader settings: file, then topic, then --property. */
    if (opts_has(&o, "reader-config") &&
        client_props_load_file(&reader_props, opts_get(&o, "reader-config", ""), err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    client_props_put(&reader_props, "topic", topic);
    for (size_t i = 0; i < opts_count(&o, "property"); i++)
        client_props_put_kv(&reader_props, opts_get_at(&o, "property", i));
    line_reader reader;
    const char *rerr = reader_configure(&reader, &reader_props);
    if (rerr) {
        fprintf(stderr, "org.apache.kafka.common.KafkaException: %s\n", rerr);
        goto out;
    }

    /* Producer settings, in the Java tool's order of precedence. */
    if (opts_has(&o, "producer.config") &&
        client_props_load_file(&pprops, opts_get(&o, "producer.config", ""), err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    for (size_t i = 0; i < opts_count(&o, "producer-property"); i++)
        client_props_put_kv(&pprops, opts_get_at(&o, "producer-property", i));
    client_props_put(&pprops, "bootstrap.servers", servers);
    const char *codec = "none";
    if (opts_has(&o, "compression-codec")) {
        codec = opts_get(&o, "compression-codec", "");
        if (!*codec) codec = "gzip";
    }
    client_props_put(&pprops, "compression.type", codec);
    if (!client_props_has(&pprops, "client.id")) client_props_put(&pprops, "client.id", "console-producer");
    merge_option(&pprops, &o, "linger.ms", "timeout", "1000");
    merge_option(&pprops, &o, "acks", "request-required-acks", "-1");
    merge_option(&pprops, &o, "request.timeout.ms", "request-timeout-ms", "1500");
    merge_option(&pprops, &o, "retries", "message-send-max-retries", "3");
    merge_option(&pprops, &o, "retry.backoff.ms", "retry-backoff-ms", "100");
    merge_option(&pprops, &o, "send.buffer.bytes", "socket-buffer-size", "102400");
    merge_option(&pprops, &o, "buffer.memory", "max-memory-bytes", "33554432");
    merge_option(&pprops, &o, "batch.size", "batch-size", "16384");
    merge_option(&pprops, &o, "batch.size", "max-partition-memory-bytes", "16384");
    merge_option(&pprops, &o, "metadata.max.age.ms", "metadata-expiry-ms", "300000");
    merge_option(&pprops, &o, "max.block.ms", "max-block-ms", "60000");

    const char *ct = client_props_get(&pprops, "compression.type");
    if (strcmp(ct, "none") && strcmp(ct, "gzip") && strcmp(ct, "snappy") && strcmp(ct, "lz4") && strcmp(ct, "zstd")) {
        snprintf(err, sizeof err,
                 "Invalid value %s for configuration compression.type: String must be one of: none, gzip, snappy, lz4, zstd",
                 ct);
        rc = fail_config(err);
        goto out;
    }
    /* Java 3.x turns idempotence on by default unless settings conflict. */
    if (!client_props_has(&pprops, "enable.idempotence")) {
        const char *acks = client_props_get(&pprops, "acks");
        int all = strcmp(acks, "-1") == 0 || strcasecmp(acks, "all") == 0;
        const char *inflight = client_props_get(&pprops, "max.in.flight.requests.per.connection");
        if (all && strtol(client_props_get(&pprops, "retries"), NULL, 10) != 0 &&
            (!inflight || strtol(inflight, NULL, 10) <= 5))
            client_props_put(&pprops, "enable.idempotence", "true");
    }
    long max_block_ms = strtol(client_props_get(&pprops, "max.block.ms"), NULL, 10);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    client_conf_defaults(conf);
    rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err);
    rd_kafka_conf_set(conf, "message.timeout.ms", "120000", err, sizeof err); /* Java delivery.timeout.ms */
    if (client_props_apply(&pprops, conf, CLIENT_PRODUCER, PRODUCER_CONFIG_CLASS, err, sizeof err) != 0) {
        rd_kafka_conf_destroy(conf);
        rc = fail_config(err);
        goto out;
    }
    send_state st = {.topic = topic, .sync = opts_has(&o, "sync")};
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "org.apache.kafka.common.KafkaException: Failed to construct kafka producer: %s\n", err);
        goto out;
    }

    int prompt = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    size_t cap = 0;
    rc = 0;
    for (;;) {
        reader.line_number++;
        if (prompt) {
            fputs(">", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) break;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        parsed_line pl;
        const char *perr = parse_line(&reader, line, len, &pl, err, sizeof err);
        if (perr) {
            fprintf(stderr, "org.apache.kafka.common.KafkaException: %s\n", perr);
            rc = 1;
            break;
        }
        st.sync_done = 0;
        rd_kafka_resp_err_t e = produce_one(rk, topic, &pl, max_block_ms);
        if (pl.headers) rd_kafka_headers_destroy(pl.headers);
        if (e) {
            if (st.sync) {
                fprintf(stderr, "java.util.concurrent.ExecutionException: %s: %s\n", client_java_exception(e),
                        rd_kafka_err2str(e));
                rc = 1;
                break;
            }
            rd_kafka_message_t fake = {.err = e, .key = (void *)pl.key, .key_len = pl.key_len,
                                       .payload = (void *)pl.value, .len = pl.value_len};
            on_delivery(rk, &fake, &st);
            continue;
        }
        if (st.sync) {
            while (!st.sync_done) rd_kafka_poll(rk, 100);
            if (st.sync_err) {
                fprintf(stderr, "java.util.concurrent.ExecutionException: %s: %s\n",
                        client_java_exception(st.sync_err), rd_kafka_err2str(st.sync_err));
                rc = 1;
                break;
            }
        } else {
            rd_kafka_poll(rk, 0);
        }
    }
    drain(rk);

out:
    if (rk) rd_kafka_destroy(rk);
    free(line);
    client_props_free(&reader_props);
    client_props_free(&pprops);
    opts_free(&o);
    fflush(stdout);
    return rc;
}
