/* samsa_bench.c - the load generator behind bench/run.sh.
 *
 * One small binary with one sub-command per measurement that needs a fast,
 * predictable client (Python would be the bottleneck):
 *
 *   produce  BOOTSTRAP TOPIC PARTITIONS SIZE COUNT SECONDS ACKS
 *            librdkafka producer, batching on (linger.ms=5, batch.size=1 MiB),
 *            records spread round-robin over the partitions; stops after
 *            COUNT records or SECONDS, whichever comes first, then waits for
 *            every delivery report. Prints records/s and MB/s.
 *   acklatency BOOTSTRAP TOPIC RATE SECONDS SIZE ACKS [MAX_IN_FLIGHT]
 *            produce latency as the producer sees it: paced at RATE
 *            records/s (linger.ms=0), from the send call to the delivery
 *            report, which a poller thread serves continuously. ACKS is
 *            1 or all. MAX_IN_FLIGHT requests per connection (default 5,
 *            Java's producer default; librdkafka's own is 1,000,000, which
 *            sends every record in a request of its own whatever the
 *            broker's pace). Prints p50/p99/p99.9/max in microseconds.
 *   latency  BOOTSTRAP TOPIC RATE SECONDS SIZE
 *            producer and consumer in one process; each record carries its
 *            send time (CLOCK_MONOTONIC), the consumer subtracts it from its
 *            receive time. Paced at RATE records/s. Prints p50/p99/p99.9/max.
 *   rawproduce HOST PORT TOPIC PARTITIONS SIZE SECONDS ACKS [CODEC [BATCH_BYTES]]
 *            the broker's own produce limit, without a client library in
 *            the way: one pre-built v2 batch per partition (about
 *            BATCH_BYTES of records, default 256 KiB; uncompressed, or in
 *            CODEC with random letters) sent in Produce v7 requests over one
 *            connection, 8 in flight, for SECONDS. ACKS is 1 or -1. Prints
 *            records/s and requests/s (small batches measure the broker's
 *            cost per request rather than per byte).
 *   rawfetch HOST PORT TOPIC PARTITIONS SECONDS [MAX_BYTES]
 *            the broker's own consume limit: Fetch v11 over one connection,
 *            one request per partition always in flight (MAX_BYTES per
 *            partition, default 1 MiB), responses read fully but only batch
 *            headers walked; a partition read to its end starts over. Prints
 *            bytes (whole batches), MB/s and records/s.
 *   conns    HOST PORT COUNT SECONDS
 *            opens COUNT idle TCP connections, prints "connected=N", then
 *            holds them until stdin closes or SECONDS pass.
 *   metadata HOST PORT TOPIC|- REPEAT
 *            times REPEAT raw Metadata v1 requests for TOPIC (- for all
 *            topics) on one connection, from request written to response
 *            fully read; prints the partition count the answer carried.
 *   diskwrite FILE MIB SYNC [WRITE_KIB [WINDOW_MIB]]
 *            sequential writes of WRITE_KIB (default 1024); SYNC=1 ends with
 *            fdatasync (counted). Prints MB/s and its own CPU-ms per MB.
 *   diskstream FILE MAX_MIB SECONDS
 *            the sustained write rate: sequential writes handed to writeback
 *            every 32 MiB, for at most MAX_MIB or SECONDS, then fdatasync.
 *   txnproduce BOOTSTRAP TOPIC PARTITIONS SIZE PER_TXN SECONDS idempotent|transactional
 *            idempotent acks=all produce, or transactions of PER_TXN records
 *            round-robin over the partitions committed one after another,
 *            for SECONDS. Prints records/s and commit p50/p99/max in ms.
 *   isoconsume BOOTSTRAP TOPIC PARTITIONS read_committed|read_uncommitted COUNT
 *            reads COUNT records from the beginning with that isolation
 *            level; records/s and MB/s from the first record.
 *   mockcluster SECONDS TOPIC:PARTITIONS...
 *            the peer of the produce comparison: librdkafka's in-memory
 *            mock cluster (one broker) with those topics, in this process;
 *            prints "bootstrap=HOST:PORT", then serves until stdin closes or
 *            SECONDS pass.
 *
 * Every result is one line of key=value pairs on stdout, parsed by
 * bench/bench.py. Every loop is bounded in count and in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "protocol/batch_header.h"
#include "protocol/compress.h"
#include "protocol/gen/fetch_request.h"
#include "protocol/gen/fetch_response.h"
#include "protocol/wire.h"
#include "util/crc32c.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "samsa-bench: %s: %s\n", what, detail);
    exit(1);
}

static long parse_long(const char *s, const char *name, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) die(name, "out of range or not a number");
    return v;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[256];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die(k, err);
}

/* ---- produce ------------------------------------------------------------ */

static atomic_long delivered_ok, delivered_err;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err)
        atomic_fetch_add(&delivered_err, 1);
    else
        atomic_fetch_add(&delivered_ok, 1);
}

static rd_kafka_t *new_producer_cb(const char *bootstrap, const char *acks, const char *linger_ms,
                                   const char *max_in_flight,
                                   void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *), void *opaque);

static rd_kafka_t *new_producer(const char *bootstrap, const char *acks, const char *linger_ms) {
    return new_producer_cb(bootstrap, acks, linger_ms, NULL, on_delivery, NULL);
}

/* max_in_flight: NULL keeps librdkafka's default. */
static rd_kafka_t *new_producer_cb(const char *bootstrap, const char *acks, const char *linger_ms,
                                   const char *max_in_flight,
                                   void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *), void *opaque) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, opaque);
    if (max_in_flight) conf_set(conf, "max.in.flight.requests.per.connection", max_in_flight);
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "acks", acks);
    conf_set(conf, "linger.ms", linger_ms);
    conf_set(conf, "batch.size", "1048576");
    conf_set(conf, "queue.buffering.max.messages", "1000000");
    conf_set(conf, "queue.buffering.max.kbytes", "262144"); /* bounds the tail after SECONDS */
    conf_set(conf, "enable.idempotence", "false");
    conf_set(conf, "compression.type", "none");
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    return rk;
}

/* Produces one record, serving delivery reports while the local queue is full.
 * msgflags: RD_KAFKA_MSG_F_COPY when the caller reuses the payload buffer;
 * 0 when it stays unchanged until the producer is destroyed (librdkafka then
 * copies it once, into the batch, as Java's producer does). */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition, void *payload, size_t len,
                       int msgflags, int64_t deadline_ns) {
    for (;;) {
        if (rd_kafka_produce(rkt, partition, msgflags, payload, len, NULL, 0, NULL) == 0) return 0;
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) return -1;
        if (now_ns() > deadline_ns) return -1;
        rd_kafka_poll(rk, 1);
    }
}

static int cmd_produce(int argc, char **argv) {
    if (argc != 7) die("usage", "produce BOOTSTRAP TOPIC PARTITIONS SIZE COUNT SECONDS ACKS");
    const char *bootstrap = argv[0], *topic = argv[1], *acks = argv[6];
    int partitions = (int)parse_long(argv[2], "PARTITIONS", 1, 100000);
    size_t size = (size_t)parse_long(argv[3], "SIZE", 1, 1 << 20);
    long count = parse_long(argv[4], "COUNT", 1, 1000000000L);
    long seconds = parse_long(argv[5], "SECONDS", 1, 3600);

    rd_kafka_t *rk = new_producer(bootstrap, acks, "5");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *payload = malloc(size);
    if (!payload) die("malloc", "payload");
    memset(payload, 'x', size);

    /* Metadata first, so connection set-up is not counted as throughput. */
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_metadata_destroy(md);

    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)seconds * 1000000000;
    long sent = 0;
    for (; sent < count; sent++) {
        if ((sent & 1023) == 0) {
            rd_kafka_poll(rk, 0);
            if (now_ns() > deadline) break;
        }
        if (produce_one(rk, rkt, (int32_t)(sent % partitions), payload, size, 0, deadline) != 0) break;
    }
    /* Waiting for the tail counts: throughput is what the broker acknowledged. */
    rd_kafka_flush(rk, 30000);
    double secs = (double)(now_ns() - start) / 1e9;
    long ok = atomic_load(&delivered_ok), bad = atomic_load(&delivered_err);
    printf("records=%ld seconds=%.3f rec_per_s=%.0f mb_per_s=%.2f errors=%ld unacked=%ld\n", ok, secs, ok / secs,
           (double)ok * (double)size / secs / 1e6, bad, sent - ok - bad);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk); /* drops what a timed-out flush left, which points into payload */
    free(payload);
    return bad == 0 && ok > 0 ? 0 : 2;
}

/* ---- latency ------------------------------------------------------------ */

/* Payloads start with this tag, the send time (0 for warm-up records) and
 * the run id, so records of an earlier run in the same topic are ignored. */
#define LAT_MAGIC 0x53414d53414c4154ULL

typedef struct lat_state {
    rd_kafka_t *consumer;
    int64_t *samples; /* ns, one per measured record received */
    int64_t *sent_at; /* send time of each sample, ns after start */
    int64_t start;
    int64_t run_id;
    long cap, n;
    atomic_long warm_seen;
    atomic_int stop;
} lat_state;

static void *consume_loop(void *arg) {
    lat_state *st = arg;
    while (!atomic_load(&st->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->consumer, 50);
        if (!m) continue;
        int64_t recv = now_ns();
        if (!m->err && m->len >= 24) {
            uint64_t magic;
            int64_t sent, run_id;
            memcpy(&magic, m->payload, 8);
            memcpy(&sent, (const char *)m->payload + 8, 8);
            memcpy(&run_id, (const char *)m->payload + 16, 8);
            if (magic == LAT_MAGIC && run_id == st->run_id) {
                if (sent == 0)
                    atomic_fetch_add(&st->warm_seen, 1);
                else if (st->n < st->cap) {
                    st->sent_at[st->n] = sent - st->start;
                    st->samples[st->n++] = recv - sent;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Where the records over 1 ms were sent, as bursts: slow records sent within 20 ms of the
 * previous slow one belong to its burst. Written as "START_s:SPAN_ms:COUNT:MAX_ms" joined by
 * commas, the 12 bursts with the most records in time order ("-" for none), so a periodic stall
 * (a timer, a flush) shows as bursts at a fixed interval and a scheduling hiccup as a lone one.
 * samples and sent_at are in arrival order, which is send order for one partition. */
static void describe_slow_bursts(const int64_t *samples, const int64_t *sent_at, long n, char *out, size_t cap) {
    enum { KEEP = 12 };
    struct burst { int64_t start, end, max; long count; } top[KEEP], cur = {0};
    int kept = 0;
    for (long i = 0; i <= n; i++) {
        int slow = i < n && samples[i] > 1000000;
        if (slow && cur.count && sent_at[i] - cur.end <= 20000000) {
            cur.end = sent_at[i];
            if (samples[i] > cur.max) cur.max = samples[i];
            cur.count++;
            continue;
        }
        if (cur.count && (i == n || slow)) {
            /* close the current burst: keep it if it is among the KEEP largest */
            int at = kept < KEEP ? kept++ : -1;
            if (at < 0) {
                int small = 0;
                for (int k = 1; k < KEEP; k++)
                    if (top[k].count < top[small].count) small = k;
                if (top[small].count < cur.count) at = small;
            }
            if (at >= 0) top[at] = cur;
            cur.count = 0;
        }
        if (slow) cur = (struct burst){sent_at[i], sent_at[i], samples[i], 1};
    }
    /* time order */
    for (int a = 1; a < kept; a++)
        for (int b = a; b > 0 && top[b].start < top[b - 1].start; b--) {
            struct burst t = top[b];
            top[b] = top[b - 1];
            top[b - 1] = t;
        }
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < kept && len + 64 < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%.3f:%.1f:%ld:%.1f", k ? "," : "", top[k].start / 1e9,
                                (top[k].end - top[k].start) / 1e6, top[k].count, top[k].max / 1e6);
    if (!kept) snprintf(out, cap, "-");
}

static rd_kafka_t *new_latency_consumer(const char *bootstrap, const char *topic) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "group.id", "samsa-bench-latency");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "fetch.wait.max.ms", "100");
    conf_set(conf, "fetch.min.bytes", "1");
    conf_set(conf, "fetch.error.backoff.ms", "10");
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new consumer", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign", topic);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static int cmd_latency(int argc, char **argv) {
    if (argc != 5) die("usage", "latency BOOTSTRAP TOPIC RATE SECONDS SIZE");
    const char *bootstrap = argv[0], *topic = argv[1];
    long rate = parse_long(argv[2], "RATE", 1, 10000000);
    long seconds = parse_long(argv[3], "SECONDS", 1, 600);
    size_t size = (size_t)parse_long(argv[4], "SIZE", 24, 1 << 20);
    long total = rate * seconds;

    /* Latency, not throughput: send as soon as possible (linger 0), acks=1. */
    rd_kafka_t *producer = new_producer(bootstrap, "1", "0");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, topic, NULL);
    lat_state st = {.cap = total, .n = 0};
    st.samples = malloc(sizeof(int64_t) * (size_t)total);
    st.sent_at = malloc(sizeof(int64_t) * (size_t)total);
    uint8_t *payload = calloc(1, size);
    if (!st.samples || !st.sent_at || !payload) die("malloc", "latency buffers");
    uint64_t magic = LAT_MAGIC;
    memcpy(payload, &magic, 8);
    st.run_id = now_ns() ^ ((int64_t)getpid() << 40);
    memcpy(payload + 16, &st.run_id, 8);

    /* Warm-up: the topic exists and the consumer is fetching before timing starts. */
    int64_t zero = 0;
    memcpy(payload + 8, &zero, 8);
    produce_one(producer, rkt, 0, payload, size, RD_KAFKA_MSG_F_COPY, now_ns() + 10000000000LL);
    rd_kafka_flush(producer, 10000);
    st.consumer = new_latency_consumer(bootstrap, topic);
    pthread_t th;
    pthread_create(&th, NULL, consume_loop, &st);
    int64_t warm_deadline = now_ns() + 15000000000LL;
    while (atomic_load(&st.warm_seen) == 0 && now_ns() < warm_deadline) {
        produce_one(producer, rkt, 0, payload, size, RD_KAFKA_MSG_F_COPY, warm_deadline);
        rd_kafka_flush(producer, 1000);
        rd_kafka_poll(producer, 20);
    }
    if (atomic_load(&st.warm_seen) == 0) die("latency", "consumer never received the warm-up records");

    /* Paced sending: every tick sends the records whose slot has come. */
    int64_t start = now_ns(), interval = 1000000000LL / rate;
    st.start = start; /* read by the consumer only for measured records, sent after this */
    int64_t hard_deadline = start + (int64_t)(seconds + 10) * 1000000000;
    long sent = 0;
    while (sent < total && now_ns() < hard_deadline) {
        int64_t due_at = start + sent * interval;
        int64_t t = now_ns();
        if (t < due_at) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = due_at - t > 200000 ? 200000 : due_at - t};
            nanosleep(&ts, NULL);
            rd_kafka_poll(producer, 0);
            continue;
        }
        int64_t stamp = now_ns();
        memcpy(payload + 8, &stamp, 8);
        if (produce_one(producer, rkt, 0, payload, size, RD_KAFKA_MSG_F_COPY, hard_deadline) != 0) break;
        sent++;
        if ((sent & 255) == 0) rd_kafka_poll(producer, 0);
    }
    double send_secs = (double)(now_ns() - start) / 1e9;
    rd_kafka_flush(producer, 10000);
    /* Let the last records arrive (bounded). */
    int64_t drain_deadline = now_ns() + 5000000000LL;
    while (st.n < sent && now_ns() < drain_deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&st.stop, 1);
    pthread_join(th, NULL);

    long n = st.n;
    if (n == 0) die("latency", "no records received");
    /* Where the slow ones were: a stall shows as a cluster in time. */
    long over_1ms = 0;
    int64_t first_slow = -1, last_slow = -1;
    for (long i = 0; i < n; i++) {
        if (st.samples[i] <= 1000000) continue;
        over_1ms++;
        if (first_slow < 0) first_slow = st.sent_at[i];
        last_slow = st.sent_at[i];
    }
    char bursts[1024];
    describe_slow_bursts(st.samples, st.sent_at, n, bursts, sizeof bursts);
    qsort(st.samples, (size_t)n, sizeof(int64_t), cmp_i64);
#define PCT(p) (st.samples[(long)((double)(n - 1) * (p))] / 1000.0)
    printf("sent=%ld received=%ld achieved_rate=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
           "over_1ms=%ld first_slow_s=%.3f last_slow_s=%.3f slow_bursts=%s\n",
           sent, n, sent / send_secs, PCT(0.50), PCT(0.99), PCT(0.999), st.samples[n - 1] / 1000.0, over_1ms,
           first_slow / 1e9, last_slow / 1e9, bursts);
#undef PCT
    rd_kafka_consumer_close(st.consumer);
    rd_kafka_destroy(st.consumer);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(producer);
    free(st.samples);
    free(st.sent_at);
    free(payload);
    return 0;
}

/* ---- acklatency --------------------------------------------------------- */

/* Send time of each record (indexed by its msg_opaque) and, once its
 * delivery report is served, its latency; -1 for a failed delivery. */
typedef struct ack_state {
    rd_kafka_t *rk;
    int64_t *sent_ns, *lat_ns;
    long cap;
    atomic_long acked, failed;
    atomic_int stop;
} ack_state;

static void on_ack(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    ack_state *st = opaque;
    long i = (long)(intptr_t)m->_private;
    if (i < 0 || i >= st->cap) return; /* warm-up record */
    if (m->err) {
        st->lat_ns[i] = -1;
        atomic_fetch_add(&st->failed, 1);
    } else {
        st->lat_ns[i] = now_ns() - st->sent_ns[i];
        atomic_fetch_add(&st->acked, 1);
    }
}

/* Serves delivery reports as they come, so the pacing loop's sleeps do not
 * delay them (as Java's producer I/O thread runs callbacks). */
static void *ack_poller(void *arg) {
    ack_state *st = arg;
    while (!atomic_load(&st->stop)) rd_kafka_poll(st->rk, 20);
    return NULL;
}

static int cmd_acklatency(int argc, char **argv) {
    if (argc != 6 && argc != 7) die("usage", "acklatency BOOTSTRAP TOPIC RATE SECONDS SIZE ACKS [MAX_IN_FLIGHT]");
    const char *bootstrap = argv[0], *topic = argv[1], *acks = argv[5];
    long rate = parse_long(argv[2], "RATE", 1, 1000000);
    long seconds = parse_long(argv[3], "SECONDS", 1, 600);
    size_t size = (size_t)parse_long(argv[4], "SIZE", 1, 1 << 20);
    long total = rate * seconds;
    const char *max_in_flight = argc == 7 ? argv[6] : "5";
    parse_long(max_in_flight, "MAX_IN_FLIGHT", 1, 1000000);

    ack_state st = {.cap = total};
    st.sent_ns = calloc((size_t)total, sizeof(int64_t));
    st.lat_ns = calloc((size_t)total, sizeof(int64_t));
    char *payload = malloc(size);
    if (!st.sent_ns || !st.lat_ns || !payload) die("malloc", "acklatency buffers");
    memset(payload, 'x', size);
    st.rk = new_producer_cb(bootstrap, acks, "0", max_in_flight, on_ack, &st);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(st.rk, topic, NULL);
    pthread_t th;
    pthread_create(&th, NULL, ack_poller, &st);

    /* Warm-up (not counted): metadata known, connection to the leader open. */
    for (int i = 0; i < 10; i++)
        rd_kafka_produce(rkt, 0, 0, payload, size, NULL, 0, (void *)(intptr_t)-1);
    rd_kafka_flush(st.rk, 10000);

    int64_t start = now_ns(), interval = 1000000000LL / rate;
    int64_t hard_deadline = start + (int64_t)(seconds + 10) * 1000000000;
    long sent = 0;
    while (sent < total && now_ns() < hard_deadline) {
        int64_t due_at = start + sent * interval;
        int64_t t = now_ns();
        if (t < due_at) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = due_at - t > 200000 ? 200000 : due_at - t};
            nanosleep(&ts, NULL);
            continue;
        }
        st.sent_ns[sent] = now_ns();
        if (rd_kafka_produce(rkt, 0, 0, payload, size, NULL, 0, (void *)(intptr_t)sent) != 0) break;
        sent++;
    }
    double send_secs = (double)(now_ns() - start) / 1e9;
    rd_kafka_flush(st.rk, 10000);
    atomic_store(&st.stop, 1);
    pthread_join(th, NULL);

    long n = 0, over_2ms = 0;
    for (long i = 0; i < sent; i++) {
        if (st.lat_ns[i] <= 0) continue;
        if (st.lat_ns[i] > 2000000) over_2ms++;
        st.lat_ns[n++] = st.lat_ns[i];
    }
    if (n == 0) die("acklatency", "no record acknowledged");
    qsort(st.lat_ns, (size_t)n, sizeof(int64_t), cmp_i64);
#define PCT(p) (st.lat_ns[(long)((double)(n - 1) * (p))] / 1000.0)
    printf("sent=%ld acked=%ld failed=%ld achieved_rate=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f "
           "over_2ms=%ld\n",
           sent, atomic_load(&st.acked), atomic_load(&st.failed), sent / send_secs, PCT(0.50), PCT(0.99),
           PCT(0.999), st.lat_ns[n - 1] / 1000.0, over_2ms);
#undef PCT
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(st.rk);
    free(st.sent_ns);
    free(st.lat_ns);
    free(payload);
    return atomic_load(&st.failed) == 0 ? 0 : 2;
}

/* ---- conns -------------------------------------------------------------- */

static int connect_nonblocking(const struct sockaddr_in *sa) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* HOST (IPv4 literal) and PORT arguments as an address. */
static struct sockaddr_in parse_addr(const char *host, const char *port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_long(port, "PORT", 1, 65535))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("HOST", "not an IPv4 address");
    return sa;
}

/* A blocking connection to sa; TCP_NODELAY for request/response timing. */
static int connect_or_die(const struct sockaddr_in *sa, bool nodelay) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) die("connect", strerror(errno));
    int one = 1;
    if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int cmd_conns(int argc, char **argv) {
    if (argc != 4) die("usage", "conns HOST PORT COUNT SECONDS");
    struct sockaddr_in sa = parse_addr(argv[0], argv[1]);
    long count = parse_long(argv[2], "COUNT", 1, 60000);
    long seconds = parse_long(argv[3], "SECONDS", 1, 3600);
    int *fds = malloc(sizeof(int) * (size_t)count);
    if (!fds) die("malloc", "fds");
    long opened = 0;
    /* In waves well under the listen backlog, each confirmed connected. */
    const long wave = 256;
    int64_t deadline = now_ns() + 60000000000LL;
    while (opened < count && now_ns() < deadline) {
        long n = count - opened < wave ? count - opened : wave;
        struct pollfd *pf = calloc((size_t)n, sizeof *pf);
        long k = 0;
        for (; k < n; k++) {
            int fd = connect_nonblocking(&sa);
            if (fd < 0) break;
            pf[k] = (struct pollfd){.fd = fd, .events = POLLOUT};
        }
        long pending = k;
        while (pending > 0 && now_ns() < deadline) {
            if (poll(pf, (nfds_t)k, 1000) < 0 && errno != EINTR) break;
            pending = 0;
            for (long i = 0; i < k; i++) {
                if (pf[i].fd < 0 || !pf[i].revents) {
                    if (pf[i].fd >= 0) pending++;
                    continue;
                }
                int soerr = 0;
                socklen_t l = sizeof soerr;
                getsockopt(pf[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
                if (soerr == 0) fds[opened++] = pf[i].fd;
                else close(pf[i].fd);
                pf[i].fd = -1;
            }
        }
        for (long i = 0; i < k; i++)
            if (pf[i].fd >= 0) close(pf[i].fd);
        free(pf);
        if (k < n) break; /* out of descriptors or ports */
    }
    printf("connected=%ld\n", opened);
    fflush(stdout);
    /* Hold until the parent closes our stdin or the time is up. */
    struct pollfd in = {.fd = 0, .events = POLLIN};
    int64_t hold_until = now_ns() + (int64_t)seconds * 1000000000;
    while (now_ns() < hold_until) {
        int r = poll(&in, 1, 200);
        if (r > 0) {
            char buf[64];
            if (read(0, buf, sizeof buf) <= 0) break;
        }
    }
    for (long i = 0; i < opened; i++) close(fds[i]);
    free(fds);
    return opened == count ? 0 : 2;
}

/* ---- metadata ----------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Counts the partitions of all topics in a Metadata v1 response body;
 * -1 if it does not parse or a topic carries an error. */
static int64_t count_partitions_v1(const uint8_t *body, size_t len) {
    kreader r;
    kr_init(&r, body, len);
    kr_i32(&r); /* correlation id */
    int32_t brokers = kr_array_len(&r, false, false, 14);
    for (int32_t i = 0; i < brokers && !r.err; i++) {
        kr_i32(&r);
        kr_string(&r, false, false);
        kr_i32(&r);
        kr_string(&r, false, true);
    }
    kr_i32(&r); /* controller id */
    int32_t topics = kr_array_len(&r, false, false, 9);
    int64_t total = 0;
    for (int32_t t = 0; t < topics && !r.err; t++) {
        if (kr_i16(&r) != 0) return -1;
        kr_string(&r, false, false);
        kr_bool(&r);
        int32_t parts = kr_array_len(&r, false, false, 18);
        for (int32_t p = 0; p < parts && !r.err; p++) {
            kr_i16(&r);
            kr_i32(&r);
            kr_i32(&r);
            for (int k = 0; k < 2 && !r.err; k++) { /* replicas, isr */
                int32_t n = kr_array_len(&r, false, false, 4);
                if (n > 0) kr_skip(&r, (size_t)n * 4);
            }
        }
        total += parts;
    }
    return r.err || topics < 0 ? -1 : total;
}

static int cmd_metadata(int argc, char **argv) {
    if (argc != 4) die("usage", "metadata HOST PORT TOPIC|- REPEAT   (- asks for all topics)");
    struct sockaddr_in sa = parse_addr(argv[0], argv[1]);
    const char *topic = argv[2];
    int repeat = (int)parse_long(argv[3], "REPEAT", 1, 10000);
    int fd = connect_or_die(&sa, true);

    int64_t *times = malloc(sizeof(int64_t) * (size_t)repeat);
    uint8_t *body = NULL;
    size_t body_cap = 0, body_len = 0;
    if (!times) die("malloc", "times");
    for (int i = 0; i < repeat; i++) {
        kwriter w;
        kw_init(&w);
        kw_i32(&w, 0); /* size, patched below */
        kw_i16(&w, 3); /* Metadata */
        kw_i16(&w, 1);
        kw_i32(&w, i);
        kw_string(&w, false, kstr_from("samsa-bench"));
        if (strcmp(topic, "-") == 0) {
            kw_array_len(&w, false, -1); /* null: all topics */
        } else {
            kw_array_len(&w, false, 1);
            kw_string(&w, false, kstr_from(topic));
        }
        if (w.err) die("kwriter", "out of memory");
        uint32_t size = htonl((uint32_t)(w.len - 4));
        memcpy(w.buf, &size, 4);
        int64_t t0 = now_ns();
        if (write(fd, w.buf, w.len) != (ssize_t)w.len) die("write", strerror(errno));
        kw_free(&w);
        uint32_t rsize;
        if (read_full(fd, &rsize, 4) != 0) die("read", "connection closed");
        rsize = ntohl(rsize);
        if (rsize > (256u << 20)) die("metadata", "response larger than 256 MiB");
        if (rsize > body_cap) {
            free(body);
            body_cap = rsize;
            body = malloc(body_cap);
            if (!body) die("malloc", "response");
        }
        if (read_full(fd, body, rsize) != 0) die("read", "connection closed");
        times[i] = now_ns() - t0;
        body_len = rsize;
    }
    int64_t parts = count_partitions_v1(body, body_len);
    qsort(times, (size_t)repeat, sizeof(int64_t), cmp_i64);
    printf("partitions=%" PRId64 " bytes=%zu min_ms=%.3f median_ms=%.3f max_ms=%.3f\n", parts, body_len, times[0] / 1e6,
           times[repeat / 2] / 1e6, times[repeat - 1] / 1e6);
    free(times);
    free(body);
    close(fd);
    return parts >= 0 ? 0 : 2;
}

/* ---- rawproduce --------------------------------------------------------- */

/* One v2 batch of n records with size-byte values, no keys: uncompressed
 * with values of 'x', or in codec with values of random capital letters,
 * different in every record (so the codec, and the broker's validation,
 * have work to do). */
static void build_batch(kwriter *w, int n, size_t size, int64_t now_ms, int codec) {
    uint8_t *value = malloc(size);
    if (!value) die("malloc", "value");
    memset(value, 'x', size);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    kwriter recs;
    kw_init(&recs);
    for (int i = 0; i < n; i++) {
        if (codec != KCODEC_NONE)
            for (size_t j = 0; j < size; j++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* xorshift64 */
                value[j] = (uint8_t)('A' + rng % 26);
            }
        kwriter one;
        kw_init(&one);
        kw_i8(&one, 0);        /* attributes */
        kw_varlong(&one, 0);   /* timestamp delta */
        kw_varint(&one, i);    /* offset delta */
        kw_varint(&one, -1);   /* null key */
        kw_varint(&one, (int32_t)size);
        kw_raw(&one, value, size);
        kw_varint(&one, 0);    /* no headers */
        kw_varint(&recs, (int32_t)one.len);
        kw_raw(&recs, one.buf, one.len);
        kw_free(&one);
    }
    free(value);
    if (codec != KCODEC_NONE) {
        kwriter packed;
        kw_init(&packed);
        if (kcompress(codec, recs.buf, recs.len, &packed, 0) != 0) die("kcompress", "failed");
        kw_free(&recs);
        recs = packed;
    }
    size_t start = w->len;
    kw_i64(w, 0);                                        /* base offset */
    kw_i32(w, (int32_t)(BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD + recs.len));
    kw_i32(w, -1);                                       /* leader epoch */
    kw_i8(w, 2);                                         /* magic */
    kw_u32(w, 0);                                        /* crc, below */
    kw_i16(w, (int16_t)codec);                           /* attributes: the codec */
    kw_i32(w, n - 1);                                    /* last offset delta */
    kw_i64(w, now_ms);
    kw_i64(w, now_ms);
    kw_i64(w, -1);                                       /* producer id */
    kw_i16(w, -1);
    kw_i32(w, -1);                                       /* base sequence */
    kw_i32(w, n);
    kw_raw(w, recs.buf, recs.len);
    kw_free(&recs);
    if (w->err) die("kwriter", "out of memory");
    uint8_t *b = w->buf + start;
    uint32_t crc = htonl(crc32c(0, b + BATCH_OFF_ATTRIBUTES, w->len - start - BATCH_OFF_ATTRIBUTES));
    memcpy(b + BATCH_OFF_CRC, &crc, 4);
}

/* Reads one response frame into *buf (grown as needed); its size or -1. */
static ssize_t read_frame(int fd, uint8_t **buf, size_t *cap) {
    uint32_t n;
    if (read_full(fd, &n, 4) != 0) return -1;
    n = ntohl(n);
    if (n > (64u << 20)) return -1;
    if (n > *cap) {
        free(*buf);
        *cap = n;
        if (!(*buf = malloc(n))) return -1;
    }
    return read_full(fd, *buf, n) == 0 ? (ssize_t)n : -1;
}

/* First partition error code of a Produce v7 response; -1 if malformed. */
static int produce_v7_error(const uint8_t *body, size_t len) {
    kreader r;
    kr_init(&r, body, len);
    kr_i32(&r);
    int32_t topics = kr_array_len(&r, false, false, 6);
    if (topics < 1) return -1;
    kr_string(&r, false, false);
    int32_t parts = kr_array_len(&r, false, false, 30);
    if (parts < 1) return -1;
    kr_i32(&r);
    int16_t ec = kr_i16(&r);
    return r.err ? -1 : ec;
}

static int cmd_rawproduce(int argc, char **argv) {
    if (argc < 7 || argc > 9) die("usage", "rawproduce HOST PORT TOPIC PARTITIONS SIZE SECONDS ACKS [CODEC [BATCH_BYTES]]");
    static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    int codec = -1;
    for (int c = 0; c < 5; c++)
        if (!strcmp(argc >= 8 ? argv[7] : "none", codecs[c])) codec = c;
    if (codec < 0) die("usage", "CODEC: none, gzip, snappy, lz4 or zstd");
    struct sockaddr_in sa = parse_addr(argv[0], argv[1]);
    const char *topic = argv[2];
    int partitions = (int)parse_long(argv[3], "PARTITIONS", 1, 64);
    size_t size = (size_t)parse_long(argv[4], "SIZE", 1, 1 << 20);
    long seconds = parse_long(argv[5], "SECONDS", 1, 600);
    int acks = (int)parse_long(argv[6], "ACKS", -1, 1);
    long batch_bytes = argc == 9 ? parse_long(argv[8], "BATCH_BYTES", 1, 16 << 20) : 262144;
    int per_batch = (int)(batch_bytes / (long)(size + 8));
    if (per_batch < 1) per_batch = 1;

    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    kwriter batch;
    kw_init(&batch);
    build_batch(&batch, per_batch, size, (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000, codec);

    /* One request, re-sent as is; only the correlation id changes. */
    kwriter req;
    kw_init(&req);
    kw_i32(&req, 0);
    kw_i16(&req, 0); /* Produce */
    kw_i16(&req, 7);
    kw_i32(&req, 0); /* correlation id at offset 8 */
    kw_string(&req, false, kstr_from("samsa-bench"));
    kw_string(&req, false, KSTR_NULL); /* transactional id */
    kw_i16(&req, (int16_t)acks);
    kw_i32(&req, 30000);
    kw_array_len(&req, false, 1);
    kw_string(&req, false, kstr_from(topic));
    kw_array_len(&req, false, partitions);
    for (int p = 0; p < partitions; p++) {
        kw_i32(&req, p);
        kw_bytes(&req, false, (kbytes){batch.buf, (int32_t)batch.len});
    }
    if (req.err) die("kwriter", "out of memory");
    uint32_t total = htonl((uint32_t)(req.len - 4));
    memcpy(req.buf, &total, 4);
    kw_free(&batch);

    int fd = connect_or_die(&sa, false);
    const int in_flight_max = 8;
    int in_flight = 0, errors = 0;
    long acked = 0, requests = 0;
    int32_t corr = 0;
    uint8_t *resp = NULL;
    size_t resp_cap = 0;
    int64_t start = now_ns(), deadline = start + seconds * 1000000000LL;
    for (;;) {
        bool sending = now_ns() < deadline;
        if (sending && in_flight < in_flight_max) {
            int32_t c = htonl((uint32_t)corr++);
            memcpy(req.buf + 8, &c, 4);
            size_t off = 0;
            while (off < req.len) {
                ssize_t n = write(fd, req.buf + off, req.len - off);
                if (n <= 0) die("write", strerror(errno));
                off += (size_t)n;
            }
            in_flight++;
            continue;
        }
        if (in_flight == 0) break;
        ssize_t n = read_frame(fd, &resp, &resp_cap);
        if (n < 0) die("read", "connection closed or bad frame");
        in_flight--;
        int ec = produce_v7_error(resp, (size_t)n);
        if (ec == 0) {
            acked += (long)per_batch * partitions;
            requests++;
        } else {
            errors++;
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    printf("records=%ld seconds=%.3f rec_per_s=%.0f mb_per_s=%.2f errors=%d batch_records=%d requests=%ld req_per_s=%.0f\n",
           acked, secs, acked / secs, (double)acked * (double)size / secs / 1e6, errors, per_batch, requests,
           requests / secs);
    free(resp);
    kw_free(&req);
    close(fd);
    return errors == 0 && acked > 0 ? 0 : 2;
}

/* ---- rawfetch ----------------------------------------------------------- */

/* The broker's own consume limit, as rawproduce is for produce: Fetch v11
 * (the newest version that still names topics and is not flexible) over
 * one connection, one single-partition request in flight per partition, so
 * the broker always has the next request waiting. Each response is read
 * fully off the socket, as a client would, but only the batch headers are
 * walked (to count records and find the next offset): no per-record work.
 * A partition read to its high watermark starts again at its log start, so
 * the load stays steady for the whole run (from page cache). */

#define RAWFETCH_VERSION 11
#define RAWFETCH_MAX_PARTITIONS 64

typedef struct fetch_totals {
    int64_t records, bytes, responses, wraps, errors;
} fetch_totals;

/* Walks the complete batches of one partition's records (a partial batch
 * at the end is what max bytes cut off; it is fetched again next time).
 * Returns the offset after the last complete batch, or `offset` if none. */
static int64_t walk_batches(const uint8_t *p, int32_t len, int64_t offset, fetch_totals *t) {
    size_t pos = 0, n = len > 0 ? (size_t)len : 0;
    while (n - pos >= BATCH_HEADER_SIZE) {
        const uint8_t *b = p + pos;
        uint32_t batch_len = bh_get_u32(b + BATCH_OFF_LENGTH);
        if (batch_len < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || batch_len > n - pos - BATCH_LOG_OVERHEAD) break;
        int64_t base = (int64_t)bh_get_u64(b + BATCH_OFF_BASE_OFFSET);
        int32_t last_delta = (int32_t)bh_get_u32(b + BATCH_OFF_LAST_OFFSET_DELTA);
        int32_t count = (int32_t)bh_get_u32(b + BATCH_OFF_RECORD_COUNT);
        t->records += count > 0 ? count : 0;
        t->bytes += (int64_t)batch_len + BATCH_LOG_OVERHEAD;
        offset = base + last_delta + 1;
        pos += (size_t)batch_len + BATCH_LOG_OVERHEAD;
    }
    return offset;
}

/* Writes one Fetch v11 request for one partition, correlation id corr. */
static void send_fetch(int fd, const char *topic, int32_t partition, int64_t offset, int32_t max_bytes, int32_t corr) {
    FetchRequest_FetchPartition part;
    FetchRequest_FetchPartition_init(&part);
    part.partition = partition;
    part.fetch_offset = offset;
    part.partition_max_bytes = max_bytes;
    FetchRequest_FetchTopic top;
    FetchRequest_FetchTopic_init(&top);
    top.topic = kstr_from(topic);
    top.partitions = &part;
    top.partitions_count = 1;
    FetchRequest req;
    FetchRequest_init(&req);
    req.max_wait_ms = 0; /* data is there; never park the request */
    req.min_bytes = 1;
    req.max_bytes = max_bytes;
    req.isolation_level = 0;
    req.topics = &top;
    req.topics_count = 1;

    kwriter w;
    kw_init(&w);
    kw_i32(&w, 0); /* size, patched below */
    kw_i16(&w, 1); /* Fetch */
    kw_i16(&w, RAWFETCH_VERSION);
    kw_i32(&w, corr);
    kw_string(&w, false, kstr_from("samsa-bench"));
    if (FetchRequest_encode(&req, &w, RAWFETCH_VERSION) != 0 || w.err) die("kwriter", "Fetch request");
    kw_patch_i32(&w, 0, (int32_t)(w.len - 4));
    size_t off = 0;
    while (off < w.len) {
        ssize_t n = write(fd, w.buf + off, w.len - off);
        if (n <= 0) die("write", strerror(errno));
        off += (size_t)n;
    }
    kw_free(&w);
}

static int cmd_rawfetch(int argc, char **argv) {
    if (argc != 5 && argc != 6) die("usage", "rawfetch HOST PORT TOPIC PARTITIONS SECONDS [MAX_BYTES]");
    struct sockaddr_in sa = parse_addr(argv[0], argv[1]);
    const char *topic = argv[2];
    int partitions = (int)parse_long(argv[3], "PARTITIONS", 1, RAWFETCH_MAX_PARTITIONS);
    long seconds = parse_long(argv[4], "SECONDS", 1, 600);
    int32_t max_bytes = argc == 6 ? (int32_t)parse_long(argv[5], "MAX_BYTES", 1024, 32 << 20) : 1 << 20;

    int fd = connect_or_die(&sa, true);

    int64_t next_offset[RAWFETCH_MAX_PARTITIONS] = {0};
    int32_t sent_for[RAWFETCH_MAX_PARTITIONS]; /* partition of each request in flight, by corr % partitions */
    fetch_totals t = {0};
    uint8_t *resp = NULL;
    size_t resp_cap = 0;
    karena arena;
    karena_init(&arena, 0);
    int32_t corr = 0, acked = 0;
    int64_t start = now_ns(), deadline = start + seconds * 1000000000LL;
    /* Responses come back in request order, one per partition in flight. */
    for (int p = 0; p < partitions; p++) {
        sent_for[corr % partitions] = p;
        send_fetch(fd, topic, p, 0, max_bytes, corr++);
    }
    while (acked < corr) {
        ssize_t n = read_frame(fd, &resp, &resp_cap);
        if (n < 4) die("read", "connection closed or bad frame");
        kreader r;
        kr_init(&r, resp, (size_t)n);
        int32_t got_corr = kr_i32(&r);
        if (got_corr != acked) die("rawfetch", "response out of order");
        int32_t p = sent_for[acked % partitions];
        acked++;
        FetchResponse fr;
        karena_reset(&arena);
        if (FetchResponse_decode(&fr, &r, RAWFETCH_VERSION, &arena) != 0 || r.err) die("rawfetch", "bad Fetch response");
        t.responses++;
        const FetchResponse_PartitionData *pd =
            fr.responses_count == 1 && fr.responses[0].partitions_count == 1 ? &fr.responses[0].partitions[0] : NULL;
        if (fr.error_code != 0 || !pd || pd->error_code != 0) {
            t.errors++;
            next_offset[p] = 0;
        } else {
            next_offset[p] = walk_batches(pd->records.p, pd->records.len, next_offset[p], &t);
            if (next_offset[p] >= pd->high_watermark) {
                next_offset[p] = pd->log_start_offset > 0 ? pd->log_start_offset : 0;
                t.wraps++;
            }
        }
        if (t.errors > 100) die("rawfetch", "more than 100 Fetch errors");
        if (now_ns() < deadline) {
            sent_for[corr % partitions] = p;
            send_fetch(fd, topic, p, next_offset[p], max_bytes, corr++);
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    printf("records=%" PRId64 " bytes=%" PRId64 " seconds=%.3f mb_per_s=%.2f rec_per_s=%.0f responses=%" PRId64
           " wraps=%" PRId64 " errors=%" PRId64 " in_flight=%d max_bytes=%d\n",
           t.records, t.bytes, secs, (double)t.bytes / secs / 1e6, (double)t.records / secs, t.responses, t.wraps,
           t.errors, partitions, max_bytes);
    karena_free(&arena);
    free(resp);
    close(fd);
    return t.errors == 0 && t.bytes > 0 ? 0 : 2;
}

/* ---- diskwrite ---------------------------------------------------------- */

/* This process's user+system CPU time so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmd_diskwrite(int argc, char **argv) {
    if (argc < 3 || argc > 5) die("usage", "diskwrite FILE MIB SYNC [WRITE_KIB [WINDOW_MIB]]");
    long mib = parse_long(argv[1], "MIB", 1, 65536);
    int sync = (int)parse_long(argv[2], "SYNC", 0, 1);
    size_t chunk = argc >= 4 ? (size_t)parse_long(argv[3], "WRITE_KIB", 4, 1024) << 10 : 1 << 20;
    /* WINDOW_MIB: as the broker's log.page.cache.window.bytes does, the
     * pages a window behind the end are dropped, 8 MiB at a time, so the
     * writes reuse memory just freed. On this one thread without waiting for
     * the disk (the broker waits on its trimming thread): writeback starts
     * half a window behind, and a drop skips what is not written back yet
     * (the next drop, which starts at 0 too, takes it). */
    int64_t window = argc == 5 ? (int64_t)parse_long(argv[4], "WINDOW_MIB", 0, 65536) << 20 : 0;
    const int64_t step = 8 << 20;
    int64_t started = 0, trimmed = 0;
    if ((1u << 20) % chunk) die("WRITE_KIB", "must divide 1024");
    char *buf = malloc(chunk);
    if (!buf) die("malloc", "buffer");
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 131 + 7);
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(argv[0], strerror(errno));
    int64_t t0 = now_ns();
    double c0 = cpu_seconds();
    for (long i = 0; i < mib * (long)((1u << 20) / chunk); i++) {
        if (write(fd, buf, chunk) != (ssize_t)chunk) die("write", strerror(errno));
        int64_t written = (int64_t)(i + 1) * (int64_t)chunk;
        while (window && written - (started + step) >= window / 2) {
            if (sync_file_range(fd, started, step, SYNC_FILE_RANGE_WRITE) != 0)
                die("sync_file_range", strerror(errno));
            started += step;
        }
        while (window && written - (trimmed + step) >= window) {
            trimmed += step;
            posix_fadvise(fd, 0, trimmed, POSIX_FADV_DONTNEED);
        }
    }
    if (sync && fdatasync(fd) != 0) die("fdatasync", strerror(errno));
    double secs = (double)(now_ns() - t0) / 1e9;
    double mb = (double)mib * (double)(1 << 20) / 1e6;
    double cpu_ms_per_mb = (cpu_seconds() - c0) * 1000 / mb;
    close(fd);
    unlink(argv[0]);
    free(buf);
    printf("mib=%ld seconds=%.3f mb_per_s=%.1f cpu_ms_per_mb=%.3f\n", mib, secs, mb / secs, cpu_ms_per_mb);
    return 0;
}

/* ---- diskstream --------------------------------------------------------- */

/* The disk's sustained write rate, which a short burst into the page cache
 * hides (this VM's disk takes a burst, then throttles). Sequential 1 MiB
 * writes; every 32 MiB window is handed to writeback at once
 * (sync_file_range WRITE) and the window before it is waited for, so at
 * most two windows are dirty and the time bound covers the flushing too.
 * Stops after MAX_MIB or SECONDS, then fdatasync (counted). */
static int cmd_diskstream(int argc, char **argv) {
    if (argc != 3) die("usage", "diskstream FILE MAX_MIB SECONDS");
    long max_mib = parse_long(argv[1], "MAX_MIB", 32, 65536);
    long seconds = parse_long(argv[2], "SECONDS", 1, 600);
    const size_t chunk = 1 << 20;
    const long window_mib = 32;
    char *buf = malloc(chunk);
    if (!buf) die("malloc", "buffer");
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 131 + 7);
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(argv[0], strerror(errno));
    int64_t t0 = now_ns(), deadline = t0 + seconds * 1000000000LL;
    long mib = 0;
    while (mib < max_mib && now_ns() < deadline) {
        for (long i = 0; i < window_mib; i++, mib++)
            if (write(fd, buf, chunk) != (ssize_t)chunk) die("write", strerror(errno));
        off64_t win = (off64_t)window_mib << 20, at = (off64_t)(mib - window_mib) << 20;
        if (sync_file_range(fd, at, win, SYNC_FILE_RANGE_WRITE) != 0) die("sync_file_range", strerror(errno));
        if (at >= win &&
            sync_file_range(fd, at - win, win,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            die("sync_file_range", strerror(errno));
    }
    if (fdatasync(fd) != 0) die("fdatasync", strerror(errno));
    double secs = (double)(now_ns() - t0) / 1e9;
    close(fd);
    unlink(argv[0]);
    free(buf);
    printf("mib=%ld seconds=%.3f mb_per_s=%.1f\n", mib, secs, (double)mib * (double)chunk / secs / 1e6);
    return 0;
}

/* ---- transactions --------------------------------------------------------- */

static void check_txn(rd_kafka_error_t *e, const char *what) {
    if (!e) return;
    fprintf(stderr, "%s: %s\n", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    exit(2);
}

/* Idempotent (MODE idempotent: acks=all, records streamed) or transactional
 * (MODE transactional: PER_TXN records round-robin over the partitions, then
 * commit_transaction, again and again) produce for SECONDS. Prints records/s
 * and, for transactions, commit latency percentiles (commit call to return). */
static int cmd_txnproduce(int argc, char **argv) {
    if (argc != 7) die("usage", "txnproduce BOOTSTRAP TOPIC PARTITIONS SIZE PER_TXN SECONDS idempotent|transactional");
    const char *bootstrap = argv[0], *topic = argv[1], *mode = argv[6];
    int partitions = (int)parse_long(argv[2], "PARTITIONS", 1, 100000);
    size_t size = (size_t)parse_long(argv[3], "SIZE", 1, 1 << 20);
    long per_txn = parse_long(argv[4], "PER_TXN", 1, 1000000);
    long seconds = parse_long(argv[5], "SECONDS", 1, 3600);
    bool txn = strcmp(mode, "transactional") == 0;
    if (!txn && strcmp(mode, "idempotent") != 0) die("MODE", mode);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "enable.idempotence", "true");
    conf_set(conf, "linger.ms", "5");
    conf_set(conf, "batch.size", "1048576");
    conf_set(conf, "queue.buffering.max.kbytes", "262144");
    conf_set(conf, "compression.type", "none");
    if (txn) {
        char tid[64];
        snprintf(tid, sizeof tid, "samsa-bench-%d", (int)getpid());
        conf_set(conf, "transactional.id", tid);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *payload = malloc(size);
    long cap = 1000000;
    int64_t *commits = malloc(sizeof *commits * (size_t)cap);
    if (!payload || !commits) die("malloc", "payload");
    memset(payload, 'x', size);
    if (txn) check_txn(rd_kafka_init_transactions(rk, 30000), "init_transactions");
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) rd_kafka_metadata_destroy(md);

    int64_t start = now_ns();
    int64_t deadline = start + (int64_t)seconds * 1000000000;
    long sent = 0, ncommits = 0;
    while (now_ns() < deadline) {
        if (txn) check_txn(rd_kafka_begin_transaction(rk), "begin_transaction");
        for (long i = 0; i < per_txn; i++, sent++) {
            if ((sent & 1023) == 0) rd_kafka_poll(rk, 0);
            if (produce_one(rk, rkt, (int32_t)(sent % partitions), payload, size, 0, deadline + 30000000000LL) != 0)
                die("produce", rd_kafka_err2str(rd_kafka_last_error()));
        }
        if (txn) {
            int64_t t0 = now_ns();
            check_txn(rd_kafka_commit_transaction(rk, 30000), "commit_transaction");
            if (ncommits < cap) commits[ncommits++] = now_ns() - t0;
        }
    }
    rd_kafka_flush(rk, 30000);
    double secs = (double)(now_ns() - start) / 1e9;
    long ok = atomic_load(&delivered_ok), bad = atomic_load(&delivered_err);
    printf("records=%ld seconds=%.3f rec_per_s=%.0f mb_per_s=%.2f errors=%ld transactions=%ld", ok, secs, ok / secs,
           (double)ok * (double)size / secs / 1e6, bad, ncommits);
    if (ncommits > 0) {
        qsort(commits, (size_t)ncommits, sizeof *commits, cmp_i64);
        printf(" commit_p50_ms=%.2f commit_p99_ms=%.2f commit_max_ms=%.2f", commits[ncommits / 2] / 1e6,
               commits[(ncommits * 99) / 100] / 1e6, commits[ncommits - 1] / 1e6);
    }
    printf("\n");
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    free(commits);
    return bad == 0 && ok > 0 ? 0 : 2;
}

/* Reads PARTITIONS partitions of TOPIC from the beginning with the given
 * isolation level until COUNT records were read or SECONDS passed. */
static int cmd_isoconsume(int argc, char **argv) {
    if (argc != 5) die("usage", "isoconsume BOOTSTRAP TOPIC PARTITIONS read_committed|read_uncommitted COUNT");
    const char *bootstrap = argv[0], *topic = argv[1], *iso = argv[3];
    int partitions = (int)parse_long(argv[2], "PARTITIONS", 1, 100000);
    long count = parse_long(argv[4], "COUNT", 1, 1000000000L);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "group.id", "samsa-bench-isoconsume");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "isolation.level", iso);
    conf_set(conf, "fetch.max.bytes", "52428800");
    conf_set(conf, "max.partition.fetch.bytes", "10485760");
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new consumer", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign", topic);
    rd_kafka_topic_partition_list_destroy(parts);
    long n = 0;
    int64_t bytes = 0, start = 0, deadline = now_ns() + 120 * 1000000000LL;
    while (n < count && now_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (!m->err) {
            if (n == 0) start = now_ns(); /* from the first record: connection set-up is not reading */
            n++;
            bytes += (int64_t)m->len;
        }
        rd_kafka_message_destroy(m);
    }
    double secs = start ? (double)(now_ns() - start) / 1e9 : 0;
    printf("records=%ld seconds=%.3f rec_per_s=%.0f mb_per_s=%.2f\n", n, secs, secs > 0 ? n / secs : 0,
           secs > 0 ? (double)bytes / secs / 1e6 : 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n >= count ? 0 : 2;
}

/* ---- mockcluster ---------------------------------------------------------- */

static int cmd_mockcluster(int argc, char **argv) {
    if (argc < 2) die("usage", "mockcluster SECONDS TOPIC:PARTITIONS...");
    long seconds = parse_long(argv[0], "SECONDS", 1, 7200);
    /* The mock needs a client handle for its bookkeeping; it serves on its own threads. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "log_level", "4"); /* no notice that this handle has no bootstrap.servers */
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) die("rd_kafka_mock_cluster_new", "failed");
    for (int i = 1; i < argc; i++) {
        char name[256];
        const char *colon = strrchr(argv[i], ':');
        if (!colon || (size_t)(colon - argv[i]) >= sizeof name) die("TOPIC:PARTITIONS", argv[i]);
        memcpy(name, argv[i], (size_t)(colon - argv[i]));
        name[colon - argv[i]] = 0;
        int parts = (int)parse_long(colon + 1, "PARTITIONS", 1, 10000);
        if (rd_kafka_mock_topic_create(mc, name, parts, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) die("topic_create", name);
    }
    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    /* Serve until the parent closes stdin (or the time bound). */
    int64_t deadline = now_ns() + seconds * 1000000000LL;
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    while (now_ns() < deadline) {
        int n = poll(&pfd, 1, 200);
        if (n > 0) {
            char buf[64];
            if (read(0, buf, sizeof buf) <= 0) break;
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage", "samsa-bench produce|acklatency|latency|rawproduce|rawfetch|conns|metadata|diskwrite|diskstream|txnproduce|isoconsume|mockcluster ARGS...");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "produce")) return cmd_produce(argc - 2, argv + 2);
    if (!strcmp(cmd, "acklatency")) return cmd_acklatency(argc - 2, argv + 2);
    if (!strcmp(cmd, "latency")) return cmd_latency(argc - 2, argv + 2);
    if (!strcmp(cmd, "rawproduce")) return cmd_rawproduce(argc - 2, argv + 2);
    if (!strcmp(cmd, "rawfetch")) return cmd_rawfetch(argc - 2, argv + 2);
    if (!strcmp(cmd, "conns")) return cmd_conns(argc - 2, argv + 2);
    if (!strcmp(cmd, "metadata")) return cmd_metadata(argc - 2, argv + 2);
    if (!strcmp(cmd, "diskwrite")) return cmd_diskwrite(argc - 2, argv + 2);
    if (!strcmp(cmd, "diskstream")) return cmd_diskstream(argc - 2, argv + 2);
    if (!strcmp(cmd, "txnproduce")) return cmd_txnproduce(argc - 2, argv + 2);
    if (!strcmp(cmd, "isoconsume")) return cmd_isoconsume(argc - 2, argv + 2);
    if (!strcmp(cmd, "mockcluster")) return cmd_mockcluster(argc - 2, argv + 2);
    die("unknown command", cmd);
    return 1;
}
