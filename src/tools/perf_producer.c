/* perf_producer.c - kafka-producer-perf-test: producer throughput/latency.
 *
 * Kafka's ProducerPerformance rebuilt on librdkafka. It sends
 * --num-records records of --record-size random capital letters (or
 * payloads picked at random from --payload-file), throttled to
 * --throughput records/s, and reports what Kafka's tool reports: a line
 * every 5 s for the window, then the total with latency percentiles.
 * Latency is measured from the send call to the delivery report, which a
 * poller thread serves continuously (as Java's producer I/O thread runs
 * callbacks), so waiting in the throttle does not inflate it.
 *
 * The command line follows argparse4j, as the Java tool's does: unique
 * prefixes of option names are accepted, --producer-props takes one or
 * more values, errors print the usage and "producer-performance: error: ...".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tools/client_props.h"
#include "tools/javafmt.h"
#include "tools/tools.h"

#define PROG "producer-performance"
#define REPORT_INTERVAL_MS 5000

/* ---- argparse4j-style command line --------------------------------- */

enum { A_TOPIC, A_NUM, A_SIZE, A_FILE, A_DELIM, A_TPUT, A_PROPS, A_CONFIG, A_METRICS, A_TXID, A_TXDUR, A_HELP, A_N };

static const struct {
    const char *flag, *metavar;
    int nargs; /* 0 flag, 1 one value, 2 one or more */
} pargs[A_N] = {
    [A_TOPIC] = {"--topic", "TOPIC", 1},
    [A_NUM] = {"--num-records", "NUM-RECORDS", 1},
    [A_SIZE] = {"--record-size", "RECORD-SIZE", 1},
    [A_FILE] = {"--payload-file", "PAYLOAD-FILE", 1},
    [A_DELIM] = {"--payload-delimiter", "PAYLOAD-DELIMITER", 1},
    [A_TPUT] = {"--throughput", "THROUGHPUT", 1},
    [A_PROPS] = {"--producer-props", "PROP-NAME=PROP-VALUE", 2},
    [A_CONFIG] = {"--producer.config", "CONFIG-FILE", 1},
    [A_METRICS] = {"--print-metrics", NULL, 0},
    [A_TXID] = {"--transactional-id", "TRANSACTIONAL-ID", 1},
    [A_TXDUR] = {"--transaction-duration-ms", "TRANSACTION-DURATION", 1},
    [A_HELP] = {"--help", NULL, 0},
};

static const char usage_text[] =
    "usage: producer-performance [-h] --topic TOPIC --num-records NUM-RECORDS\n"
    "                            [--payload-delimiter PAYLOAD-DELIMITER]\n"
    "                            --throughput THROUGHPUT\n"
    "                            [--producer-props PROP-NAME=PROP-VALUE [PROP-NAME=PROP-VALUE ...]]\n"
    "                            [--producer.config CONFIG-FILE] [--print-metrics]\n"
    "                            [--transactional-id TRANSACTIONAL-ID]\n"
    "                            [--transaction-duration-ms TRANSACTION-DURATION]\n"
    "                            (--record-size RECORD-SIZE | --payload-file PAYLOAD-FILE)\n";

static const char help_text[] =
    "\n"
    "This tool is used to verify the producer performance.\n"
    "\n"
    "named arguments:\n"
    "  -h, --help             show this help message and exit\n"
    "  --topic TOPIC          topic to send the records to\n"
    "  --num-records NUM-RECORDS\n"
    "                         how many records to send\n"
    "  --payload-delimiter PAYLOAD-DELIMITER\n"
    "                         separator of the payloads in --payload-file  (ignored\n"
    "                         without --payload-file)  (default: \\n)\n"
    "  --throughput THROUGHPUT\n"
    "                         cap  on  records  per  second, approximately;  -1\n"
    "                         means no cap\n"
    "  --producer-props PROP-NAME=PROP-VALUE [PROP-NAME=PROP-VALUE ...]\n"
    "                         producer settings such as bootstrap.servers and\n"
    "                         client.id; these win over --producer.config\n"
    "  --producer.config CONFIG-FILE\n"
    "                         producer properties file\n"
    "  --print-metrics        print the producer's metrics when done\n"
    "                         (default: false)\n"
    "  --transactional-id TRANSACTIONAL-ID\n"
    "                         transactional id used when --transaction-duration-ms\n"
    "                         is  positive   (default:   performance-producer-\n"
    "                         default-transactional-id)\n"
    "  --transaction-duration-ms TRANSACTION-DURATION\n"
    "                         commit the open transaction once it is this old;\n"
    "                         transactions are used only when this is positive\n"
    "                         (default: 0)\n"
    "\n"
    "  either --record-size or --payload-file must be specified but not both.\n"
    "\n"
    "  --record-size RECORD-SIZE\n"
    "                         size of each record in bytes; give exactly one of\n"
    "                         --record-size and --payload-file\n"
    "  --payload-file PAYLOAD-FILE\n"
    "                         UTF-8 text file of payloads, one picked at random\n"
    "                         for each record; give exactly one of --record-size\n"
    "                         and --payload-file\n";

typedef struct perf_args {
    const char *val[A_N];
    int given[A_N];
    const char **props;
    size_t nprops;
} perf_args;

static int arg_error(const char *fmt, const char *a, const char *b) {
    fputs(usage_text, stderr);
    fprintf(stderr, PROG ": error: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* Finds the option `tok` names, exactly or as a unique prefix. */
static int match_flag(const char *tok, size_t len, int *ambiguous) {
    int found = -1, count = 0;
    *ambiguous = 0;
    if (len == 2 && strncmp(tok, "-h", 2) == 0) return A_HELP;
    for (int i = 0; i < A_N; i++) {
        if (strlen(pargs[i].flag) == len && strncmp(pargs[i].flag, tok, len) == 0) return i;
        if (strncmp(pargs[i].flag, tok, len) == 0) {
            found = i;
            count++;
        }
    }
    if (count > 1) *ambiguous = 1;
    return count == 1 ? found : -1;
}

/* Returns 0, or the exit code after printing an argparse4j-style error. */
static int parse_perf_args(perf_args *a, int argc, char **argv, int *exit_now) {
    *exit_now = 0;
    a->props = calloc((size_t)argc + 1, sizeof *a->props);
    if (!a->props) return 1;
    for (int i = 1; i < argc; i++) {
        const char *tok = argv[i];
        if (tok[0] != '-' || tok[1] == 0) {
            char q[512];
            snprintf(q, sizeof q, "'%s'", tok);
            return arg_error("unrecognized arguments: %s%s", q, "");
        }
        const char *eq = strchr(tok, '=');
        size_t len = eq ? (size_t)(eq - tok) : strlen(tok);
        int amb;
        int k = match_flag(tok, len, &amb);
        if (k < 0) {
            char q[512];
            snprintf(q, sizeof q, "'%.*s'", (int)len, tok);
            if (amb) return arg_error("ambiguous option: %s%s", q, "");
            return arg_error("unrecognized arguments: %s%s", q, "");
        }
        if (k == A_HELP) {
            fputs(usage_text, stdout);
            fputs(help_text, stdout);
            *exit_now = 1;
            return 0;
        }
        a->given[k] = 1;
        if (pargs[k].nargs == 0) continue;
        if (pargs[k].nargs == 1) {
            if (eq) a->val[k] = eq + 1;
            else if (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] && !(argv[i + 1][1] >= '0' && argv[i + 1][1] <= '9')))
                a->val[k] = argv[++i];
            else return arg_error("argument %s: expected one argument%s", pargs[k].flag, "");
            continue;
        }
        /* One or more values, up to the next option. */
        size_t before = a->nprops;
        if (eq) a->props[a->nprops++] = eq + 1;
        while (i + 1 < argc && argv[i + 1][0] != '-') a->props[a->nprops++] = argv[++i];
        if (a->nprops == before) return arg_error("argument %s: expected at least one argument%s", pargs[k].flag, "");
    }
    static const int required[] = {A_TOPIC, A_NUM, A_TPUT};
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++)
        if (!a->given[required[r]]) return arg_error("argument %s is required%s", pargs[required[r]].flag, "");
    if (a->given[A_SIZE] && a->given[A_FILE])
        return arg_error("argument --payload-file: not allowed with argument %s%s", "--record-size", "");
    if (!a->given[A_SIZE] && !a->given[A_FILE])
        return arg_error("one of the arguments --record-size --payload-file is required%s%s", "", "");
    return 0;
}

static int parse_long_arg(const char *flag, const char *s, const char *type, long long lo, long long hi,
                          long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char why[600];
        snprintf(why, sizeof why, "'%s' to %s (For input string: \"%s\")", s, type, s);
        char msg[700];
        snprintf(msg, sizeof msg, "argument %s: could not convert %s", flag, why);
        return arg_error("%s%s", msg, "");
    }
    *out = v;
    return 0;
}

/* ---- statistics (Kafka's ProducerPerformance.Stats) ----------------- */

typedef struct stats {
    pthread_mutex_t lock;
    int64_t start, window_start;
    int *latencies;
    size_t nlat;
    int64_t sampling, iteration;
    size_t index;
    int64_t count, bytes, total_latency;
    int max_latency;
    int64_t window_count, window_total_latency, window_bytes;
    int window_max_latency;
    int64_t errors;
} stats;

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void print_window(stats *s) {
    int64_t elapsed = wall_ms() - s->window_start;
    double recs = 1000.0 * (double)s->window_count / (double)elapsed;
    double mb = 1000.0 * (double)s->window_bytes / (double)elapsed / (1024.0 * 1024.0);
    char a[64], b[64], c[64], d[64];
    printf("%" PRId64 " records sent, %s records/sec (%s MB/sec), %s ms avg latency, %s ms max latency.\n",
           s->window_count, java_fixed(a, sizeof a, recs, 1), java_fixed(b, sizeof b, mb, 2),
           java_fixed(c, sizeof c, (double)s->window_total_latency / (double)s->window_count, 1),
           java_fixed(d, sizeof d, (double)s->window_max_latency, 1));
    fflush(stdout);
}

static void stats_record(stats *s, int latency, int64_t bytes, int64_t now) {
    s->count++;
    s->bytes += bytes;
    s->total_latency += latency;
    if (latency > s->max_latency) s->max_latency = latency;
    s->window_count++;
    s->window_bytes += bytes;
    s->window_total_latency += latency;
    if (latency > s->window_max_latency) s->window_max_latency = latency;
    if (s->iteration % s->sampling == 0 && s->index < s->nlat) s->latencies[s->index++] = latency;
    if (now - s->window_start >= REPORT_INTERVAL_MS) {
        print_window(s);
        s->window_start = wall_ms();
        s->window_count = s->window_max_latency = 0;
        s->window_total_latency = s->window_bytes = 0;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void print_total(stats *s) {
    int64_t elapsed = wall_ms() - s->start;
    double recs = 1000.0 * (double)s->count / (double)elapsed;
    double mb = 1000.0 * (double)s->bytes / (double)elapsed / (1024.0 * 1024.0);
    size_t size = s->index < s->nlat ? s->index : s->nlat;
    qsort(s->latencies, size, sizeof *s->latencies, cmp_int);
    static const double pct[4] = {0.5, 0.95, 0.99, 0.999};
    int v[4];
    for (int i = 0; i < 4; i++) v[i] = s->latencies[(size_t)(pct[i] * (double)size)];
    char a[64], b[64], c[64], d[64];
    printf("%" PRId64 " records sent, %s records/sec (%s MB/sec), %s ms avg latency, %s ms max latency, "
           "%d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.\n",
           s->count, java_fixed(a, sizeof a, recs, 6), java_fixed(b, sizeof b, mb, 2),
           java_fixed(c, sizeof c, (double)s->total_latency / (double)s->count, 2),
           java_fixed(d, sizeof d, (double)s->max_latency, 2), v[0], v[1], v[2], v[3]);
    fflush(stdout);
}

/* Delivery report: msg_opaque carries the send time in ms. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    stats *s = opaque;
    int64_t now = wall_ms();
    int latency = (int)(now - (int64_t)(intptr_t)m->_private);
    pthread_mutex_lock(&s->lock);
    if (!m->err) {
        stats_record(s, latency, (int64_t)m->len, now);
        s->iteration++;
    } else {
        s->errors++;
        fprintf(stderr, "%s: %s\n", client_java_exception(m->err), rd_kafka_err2str(m->err));
    }
    pthread_mutex_unlock(&s->lock);
}

typedef struct poller {
    rd_kafka_t *rk;
    volatile int stop;
} poller;

static void *poll_loop(void *arg) {
    poller *p = arg;
    while (!p->stop) rd_kafka_poll(p->rk, 50);
    return NULL;
}

/* ---- throttling (Kafka's ThroughputThrottler) ------------------------ */

typedef struct throttler {
    int64_t start_ms, sleep_time_ns, target, deficit_ns;
} throttler;

static int should_throttle(const throttler *t, int64_t so_far, int64_t send_start_ms) {
    if (t->target < 0) return 0;
    float elapsed_sec = (float)(send_start_ms - t->start_ms) / 1000.f;
    return elapsed_sec > 0 && ((float)so_far / elapsed_sec) > (float)t->target;
}

static void throttle(throttler *t) {
    if (t->target == 0) {
        for (;;) pause(); /* Java waits forever for a wakeup that never comes */
    }
    t->deficit_ns += t->sleep_time_ns;
    if (t->deficit_ns >= 2000000) {
        struct timespec ts = {t->deficit_ns / 1000000000, t->deficit_ns % 1000000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        t->deficit_ns = 0;
    }
}

/* ---- payloads ------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

typedef struct payloads {
    char *data;   /* owned file contents */
    char **items; /* pointers into data */
    size_t *lens;
    size_t n;
} payloads;

static int load_payloads(payloads *pl, const char *path, const char *delim) {
    char abs[4096];
    if (path[0] == '/') snprintf(abs, sizeof abs, "%s", path);
    else {
        char cwd[2048];
        snprintf(abs, sizeof abs, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", path);
    }
    printf("Reading payloads from: %s\n", abs);
    fflush(stdout);
    FILE *f = fopen(path, "rb");
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (!f || size <= 0) {
        if (f) fclose(f);
        fprintf(stderr, "Exception in thread \"main\" java.lang.IllegalArgumentException: File does not exist or empty file provided.\n");
        return -1;
    }
    rewind(f);
    pl->data = malloc((size_t)size + 1);
    if (!pl->data || fread(pl->data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    pl->data[size] = 0;
    size_t dl = strlen(delim);
    size_t cap = 16;
    pl->items = malloc(cap * sizeof *pl->items);
    pl->lens = malloc(cap * sizeof *pl->lens);
    if (!pl->items || !pl->lens) return -1;
    char *p = pl->data, *end = pl->data + size;
    for (;;) {
        char *hit = dl ? memmem(p, (size_t)(end - p), delim, dl) : NULL;
        char *stop = hit ? hit : end;
        if (pl->n == cap) {
            cap *= 2;
            char **ni = realloc(pl->items, cap * sizeof *ni);
            size_t *nl = realloc(pl->lens, cap * sizeof *nl);
            if (!ni || !nl) return -1;
            pl->items = ni;
            pl->lens = nl;
        }
        pl->items[pl->n] = p;
        pl->lens[pl->n++] = (size_t)(stop - p);
        if (!hit) break;
        p = hit + dl;
    }
    /* Java's split drops trailing empty strings. */
    while (pl->n > 1 && pl->lens[pl->n - 1] == 0) pl->n--;
    printf("Number of messages read: %zu\n", pl->n);
    fflush(stdout);
    return 0;
}

/* ---- metrics ------------------------------------------------------- */

static void print_metrics(const stats *s, const char *client_id, int64_t elapsed_ms) {
    char tags[256];
    snprintf(tags, sizeof tags, "{client-id=%s}", client_id);
    struct { const char *name; double v; } m[] = {
        {"record-error-total", (double)s->errors},
        {"record-send-rate", elapsed_ms > 0 ? 1000.0 * (double)s->count / (double)elapsed_ms : 0},
        {"record-send-total", (double)s->count},
        {"request-latency-avg", s->count ? (double)s->total_latency / (double)s->count : 0},
        {"request-latency-max", (double)s->max_latency},
    };
    size_t width = 0;
    char names[5][400];
    for (size_t i = 0; i < 5; i++) {
        snprintf(names[i], sizeof names[i], "producer-metrics:%s:%s", m[i].name, tags);
        if (strlen(names[i]) > width) width = strlen(names[i]);
    }
    printf("\n%-*s   %s\n", (int)width, "Metric Name", "Value");
    for (size_t i = 0; i < 5; i++) {
        char v[64];
        printf("%-*s : %s\n", (int)width, names[i], java_fixed(v, sizeof v, m[i].v, 3));
    }
    fflush(stdout);
}

/* ---- main ---------------------------------------------------------- */

int tool_producer_perf_test(int argc, char **argv) {
    perf_args a = {0};
    client_props props = {0};
    payloads pl = {0};
    stats st = {0};
    rd_kafka_t *rk = NULL;
    char *payload = NULL;
    int rc = 1, exit_now;
    char err[1024];

    if (argc <= 1) {
        fputs(usage_text, stdout);
        fputs(help_text, stdout);
        return 0;
    }
    if ((rc = parse_perf_args(&a, argc, argv, &exit_now)) != 0 || exit_now) goto out;
    rc = 1;
    long long num_records, record_size = 0, throughput, tx_duration = 0;
    if (parse_long_arg("--num-records", a.val[A_NUM], "Long", INT64_MIN, INT64_MAX, &num_records) ||
        (a.given[A_SIZE] &&
         parse_long_arg("--record-size", a.val[A_SIZE], "Integer", INT32_MIN, INT32_MAX, &record_size)) ||
        parse_long_arg("--throughput", a.val[A_TPUT], "Integer", INT32_MIN, INT32_MAX, &throughput) ||
        (a.given[A_TXDUR] &&
         parse_long_arg("--transaction-duration-ms", a.val[A_TXDUR], "Long", INT64_MIN, INT64_MAX, &tx_duration)))
        goto out;
    int transactions = tx_duration > 0;
    const char *delim = a.given[A_DELIM] ? a.val[A_DELIM] : "\\n";
    if (strcmp(delim, "\\n") == 0) delim = "\n";
    if (a.nprops == 0 && !a.given[A_CONFIG]) {
        rc = arg_error("Either --producer-props or --producer.config must be specified.%s%s", "", "");
        goto out;
    }
    if (a.given[A_FILE] && load_payloads(&pl, a.val[A_FILE], delim) != 0) goto out;
    if (a.given[A_CONFIG] && client_props_load_file(&props, a.val[A_CONFIG], err, sizeof err) != 0) {
        fprintf(stderr, "Exception in thread \"main\" %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < a.nprops; i++) {
        const char *p = a.props[i];
        const char *eq = strchr(p, '=');
        /* Java splits on every '=' and wants exactly two non-empty-tailed pieces. */
        if (!eq || eq == p || strchr(eq + 1, '=') || !eq[1]) {
            fprintf(stderr, "Exception in thread \"main\" java.lang.IllegalArgumentException: Invalid property: %s\n", p);
            goto out;
        }
        client_props_put_kv(&props, p);
    }
    if (transactions) client_props_put(&props, "transactional.id",
                                       a.given[A_TXID] ? a.val[A_TXID] : "performance-producer-default-transactional-id");
    if (!client_props_has(&props, "client.id")) client_props_put(&props, "client.id", "perf-producer-client");
    if (!client_props_has(&props, "bootstrap.servers")) {
        fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.config.ConfigException: Missing required "
                        "configuration \"bootstrap.servers\" which has no default value.\n");
        goto out;
    }

    /* The Java producer's defaults, where librdkafka's differ. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    client_conf_defaults(conf);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    rd_kafka_conf_set(conf, "batch.size", "16384", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "32768", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "2147483647", err, sizeof err);
    rd_kafka_conf_set(conf, "message.timeout.ms", "120000", err, sizeof err);
    rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err);
    const char *acks = client_props_get(&props, "acks");
    if (!client_props_has(&props, "enable.idempotence") && (!acks || !strcmp(acks, "all") || !strcmp(acks, "-1")))
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
    if (client_props_apply(&props, conf, CLIENT_PRODUCER, "org.apache.kafka.clients.producer.ProducerConfig", err,
                           sizeof err) != 0) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.config.ConfigException: %s\n", err);
        goto out;
    }
    long max_block_ms = 60000;
    if (client_props_get(&props, "max.block.ms")) max_block_ms = strtol(client_props_get(&props, "max.block.ms"), NULL, 10);
    pthread_mutex_init(&st.lock, NULL);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.KafkaException: Failed to construct kafka producer: %s\n", err);
        goto out;
    }
    if (transactions) {
        rd_kafka_error_t *te = rd_kafka_init_transactions(rk, max_block_ms);
        if (te) {
            fprintf(stderr, "Exception in thread \"main\" org.apache.kafka.common.KafkaException: %s\n", rd_kafka_error_string(te));
            rd_kafka_error_destroy(te);
            goto out;
        }
    }

    if (record_size > 0 || a.given[A_SIZE]) {
        payload = malloc(record_size > 0 ? (size_t)record_size : 1);
        if (!payload) goto out;
    }
    if (num_records <= 0) num_records = 0;
    st.sampling = num_records ? num_records / (num_records < 500000 ? num_records : 500000) : 1;
    st.nlat = (size_t)(num_records / st.sampling) + 1;
    st.latencies = calloc(st.nlat, sizeof *st.latencies);
    if (!st.latencies) goto out;
    st.start = st.window_start = wall_ms();
    throttler th = {.start_ms = wall_ms(), .target = throughput,
                    .sleep_time_ns = throughput > 0 ? 1000000000LL / throughput : INT64_MAX};
    poller pol = {.rk = rk};
    pthread_t poll_thread;
    pthread_create(&poll_thread, NULL, poll_loop, &pol);

    int64_t tx_size = 0, tx_start = 0;
    for (long long i = 0; i < num_records; i++) {
        const char *data;
        size_t len;
        if (pl.n) {
            size_t pick = (size_t)(rng_next() % pl.n);
            data = pl.items[pick];
            len = pl.lens[pick];
        } else {
            for (long long j = 0; j < record_size; j++) payload[j] = (char)('A' + rng_next() % 26);
            data = payload;
            len = (size_t)record_size;
        }
        if (transactions && tx_size == 0) {
            rd_kafka_error_t *te = rd_kafka_begin_transaction(rk);
            if (te) rd_kafka_error_destroy(te);
            tx_start = wall_ms();
        }
        int64_t send_start = wall_ms();
        long waited = 0;
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(a.val[A_TOPIC]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_OPAQUE((void *)(intptr_t)send_start), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && waited < max_block_ms) {
                usleep(1000);
                waited += 1;
                continue;
            }
            fprintf(stderr, "%s: %s\n", client_java_exception(e), rd_kafka_err2str(e));
            break;
        }
        if (i == 0) {
            /* Java's first send blocks until the topic's metadata is known;
             * without that pause the throttle would see a burst at t=0. */
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, a.val[A_TOPIC], NULL);
            const struct rd_kafka_metadata *md = NULL;
            if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, (int)max_block_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
                rd_kafka_metadata_destroy(md);
            if (rkt) rd_kafka_topic_destroy(rkt);
        }
        tx_size++;
        if (transactions && tx_duration <= send_start - tx_start) {
            rd_kafka_error_t *te = rd_kafka_commit_transaction(rk, -1);
            if (te) {
                fprintf(stderr, "%s\n", rd_kafka_error_string(te));
                rd_kafka_error_destroy(te);
            }
            tx_size = 0;
        }
        if (should_throttle(&th, i, send_start)) throttle(&th);
    }
    if (transactions && tx_size != 0) {
        rd_kafka_error_t *te = rd_kafka_commit_transaction(rk, -1);
        if (te) rd_kafka_error_destroy(te);
    }
    /* Java closes the producer (delivering everything) before the total. */
    while (rd_kafka_outq_len(rk) > 0) rd_kafka_flush(rk, 100);
    pol.stop = 1;
    pthread_join(poll_thread, NULL);
    if (a.given[A_METRICS]) {
        print_total(&st);
        print_metrics(&st, client_props_get(&props, "client.id"), wall_ms() - st.start);
        rd_kafka_destroy(rk);
    } else {
        rd_kafka_destroy(rk);
        print_total(&st);
    }
    rk = NULL;
    pthread_mutex_destroy(&st.lock);
    rc = 0;

out:
    if (rk) rd_kafka_destroy(rk);
    free(payload);
    free(st.latencies);
    free(pl.data);
    free(pl.items);
    free(pl.lens);
    free(a.props);
    client_props_free(&props);
    return rc;
}
