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
 *   latency  BOOTSTRAP TOPIC RATE SECONDS SIZE
 *            producer and consumer in one process; each record carries its
 *            send time (CLOCK_MONOTONIC), the consumer subtracts it from its
 *            receive time. Paced at RATE records/s. Prints p50/p99/p99.9/max.
 *   conns    HOST PORT COUNT SECONDS
 *            opens COUNT idle TCP connections, prints "connected=N", then
 *            holds them until stdin closes or SECONDS pass.
 *   metadata HOST PORT TOPIC REPEAT
 *            times REPEAT raw Metadata v1 requests for TOPIC on one
 *            connection (request written to response fully read).
 *   diskwrite FILE MIB SYNC
 *            sequential 1 MiB writes; SYNC=1 ends with fdatasync (counted).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "protocol/wire.h"

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

static rd_kafka_t *new_producer(const char *bootstrap, const char *acks, const char *linger_ms) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", bootstrap);
    conf_set(conf, "acks", acks);
    conf_set(conf, "linger.ms", linger_ms);
    conf_set(conf, "batch.size", "1048576");
    conf_set(conf, "queue.buffering.max.messages", "1000000");
    conf_set(conf, "queue.buffering.max.kbytes", "1048576");
    conf_set(conf, "enable.idempotence", "false");
    conf_set(conf, "compression.type", "none");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) die("rd_kafka_new", err);
    return rk;
}

/* Produces one record, serving delivery reports while the local queue is full. */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition, void *payload, size_t len,
                       int64_t deadline_ns) {
    for (;;) {
        if (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, payload, len, NULL, 0, NULL) == 0) return 0;
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
        if (produce_one(rk, rkt, (int32_t)(sent % partitions), payload, size, deadline) != 0) break;
    }
    /* Waiting for the tail counts: throughput is what the broker acknowledged. */
    rd_kafka_flush(rk, 30000);
    double secs = (double)(now_ns() - start) / 1e9;
    long ok = atomic_load(&delivered_ok), bad = atomic_load(&delivered_err);
    printf("records=%ld seconds=%.3f rec_per_s=%.0f mb_per_s=%.2f errors=%ld unacked=%ld\n", ok, secs, ok / secs,
           (double)ok * (double)size / secs / 1e6, bad, sent - ok - bad);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return bad == 0 && ok > 0 ? 0 : 2;
}

/* ---- latency ------------------------------------------------------------ */

/* Payloads start with this tag and the send time; warm-up records carry 0. */
#define LAT_MAGIC 0x53414d53414c4154ULL

typedef struct lat_state {
    rd_kafka_t *consumer;
    int64_t *samples; /* ns, one per measured record received */
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
        if (!m->err && m->len >= 16) {
            uint64_t magic;
            int64_t sent;
            memcpy(&magic, m->payload, 8);
            memcpy(&sent, (const char *)m->payload + 8, 8);
            if (magic == LAT_MAGIC) {
                if (sent == 0)
                    atomic_fetch_add(&st->warm_seen, 1);
                else if (st->n < st->cap)
                    st->samples[st->n++] = recv - sent;
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
    size_t size = (size_t)parse_long(argv[4], "SIZE", 16, 1 << 20);
    long total = rate * seconds;

    /* Latency, not throughput: send as soon as possible (linger 0), acks=1. */
    rd_kafka_t *producer = new_producer(bootstrap, "1", "0");
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, topic, NULL);
    lat_state st = {.cap = total, .n = 0};
    st.samples = malloc(sizeof(int64_t) * (size_t)total);
    uint8_t *payload = calloc(1, size);
    if (!st.samples || !payload) die("malloc", "latency buffers");
    uint64_t magic = LAT_MAGIC;
    memcpy(payload, &magic, 8);

    /* Warm-up: the topic exists and the consumer is fetching before timing starts. */
    int64_t zero = 0;
    memcpy(payload + 8, &zero, 8);
    produce_one(producer, rkt, 0, payload, size, now_ns() + 10000000000LL);
    rd_kafka_flush(producer, 10000);
    st.consumer = new_latency_consumer(bootstrap, topic);
    pthread_t th;
    pthread_create(&th, NULL, consume_loop, &st);
    int64_t warm_deadline = now_ns() + 15000000000LL;
    while (atomic_load(&st.warm_seen) == 0 && now_ns() < warm_deadline) {
        produce_one(producer, rkt, 0, payload, size, warm_deadline);
        rd_kafka_flush(producer, 1000);
        rd_kafka_poll(producer, 20);
    }
    if (atomic_load(&st.warm_seen) == 0) die("latency", "consumer never received the warm-up records");

    /* Paced sending: every tick sends the records whose slot has come. */
    int64_t start = now_ns(), interval = 1000000000LL / rate;
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
        if (produce_one(producer, rkt, 0, payload, size, hard_deadline) != 0) break;
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
    qsort(st.samples, (size_t)n, sizeof(int64_t), cmp_i64);
#define PCT(p) (st.samples[(long)((double)(n - 1) * (p))] / 1000.0)
    printf("sent=%ld received=%ld achieved_rate=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f\n", sent, n,
           sent / send_secs, PCT(0.50), PCT(0.99), PCT(0.999), st.samples[n - 1] / 1000.0);
#undef PCT
    rd_kafka_consumer_close(st.consumer);
    rd_kafka_destroy(st.consumer);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(producer);
    free(st.samples);
    free(payload);
    return 0;
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

static int cmd_conns(int argc, char **argv) {
    if (argc != 4) die("usage", "conns HOST PORT COUNT SECONDS");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_long(argv[1], "PORT", 1, 65535))};
    if (inet_pton(AF_INET, argv[0], &sa.sin_addr) != 1) die("HOST", "not an IPv4 address");
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

/* Counts the partitions of the first topic in a Metadata v1 response body. */
static int32_t count_partitions_v1(const uint8_t *body, size_t len) {
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
    if (topics < 1 || r.err) return -1;
    int16_t err = kr_i16(&r);
    kr_string(&r, false, false);
    kr_bool(&r);
    int32_t parts = kr_array_len(&r, false, false, 18);
    return r.err || err ? -1 : parts;
}

static int cmd_metadata(int argc, char **argv) {
    if (argc != 4) die("usage", "metadata HOST PORT TOPIC REPEAT");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_long(argv[1], "PORT", 1, 65535))};
    if (inet_pton(AF_INET, argv[0], &sa.sin_addr) != 1) die("HOST", "not an IPv4 address");
    const char *topic = argv[2];
    int repeat = (int)parse_long(argv[3], "REPEAT", 1, 10000);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

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
        kw_array_len(&w, false, 1);
        kw_string(&w, false, kstr_from(topic));
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
    int32_t parts = count_partitions_v1(body, body_len);
    qsort(times, (size_t)repeat, sizeof(int64_t), cmp_i64);
    printf("partitions=%d bytes=%zu min_ms=%.3f median_ms=%.3f max_ms=%.3f\n", parts, body_len, times[0] / 1e6,
           times[repeat / 2] / 1e6, times[repeat - 1] / 1e6);
    free(times);
    free(body);
    close(fd);
    return parts >= 0 ? 0 : 2;
}

/* ---- diskwrite ---------------------------------------------------------- */

static int cmd_diskwrite(int argc, char **argv) {
    if (argc != 3) die("usage", "diskwrite FILE MIB SYNC");
    long mib = parse_long(argv[1], "MIB", 1, 65536);
    int sync = (int)parse_long(argv[2], "SYNC", 0, 1);
    size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    if (!buf) die("malloc", "buffer");
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 131 + 7);
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(argv[0], strerror(errno));
    int64_t t0 = now_ns();
    for (long i = 0; i < mib; i++)
        if (write(fd, buf, chunk) != (ssize_t)chunk) die("write", strerror(errno));
    if (sync && fdatasync(fd) != 0) die("fdatasync", strerror(errno));
    double secs = (double)(now_ns() - t0) / 1e9;
    close(fd);
    unlink(argv[0]);
    free(buf);
    printf("mib=%ld seconds=%.3f mb_per_s=%.1f\n", mib, secs, (double)mib * (double)chunk / secs / 1e6);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die("usage", "samsa-bench produce|latency|conns|metadata|diskwrite ARGS...");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "produce")) return cmd_produce(argc - 2, argv + 2);
    if (!strcmp(cmd, "latency")) return cmd_latency(argc - 2, argv + 2);
    if (!strcmp(cmd, "conns")) return cmd_conns(argc - 2, argv + 2);
    if (!strcmp(cmd, "metadata")) return cmd_metadata(argc - 2, argv + 2);
    if (!strcmp(cmd, "diskwrite")) return cmd_diskwrite(argc - 2, argv + 2);
    die("unknown command", cmd);
    return 1;
}
