/* test_kafka_client.c - the non-blocking Kafka client (src/net/kafka_client.c).
 *
 * Against a real samsa-broker (the build dir of this binary, or
 * $SAMSA_BUILD), formatted into a temp dir on free loopback ports:
 * ApiVersions, Metadata, CreateTopics, Produce v9 of a built batch, Fetch
 * v15 of it back (bytes compared; a ~900 KB batch comes back in a frame of
 * its own that the callback takes without a copy), 100 pipelined requests
 * answered in correlation order, a name that needs resolving ("localhost"),
 * and the broker killed with requests in flight (all fail; a later send
 * reconnects once it is back). Against fake servers (a thread with blocking
 * sockets): a port where nothing listens, a listener that never answers
 * (timeouts on time), ApiVersions v3 refused (fallback to v0), a response
 * frame larger than the limit (connection closed, nothing allocated), a
 * wrong correlation id, an in-flight timeout, an API the broker does not
 * list, and kc_conn_free (KC_CANCELLED, also from inside a callback).
 * The broker is killed at exit. Prints "test_kafka_client: N passed, M failed".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/kafka_client.h"
#include "net/loop.h"
#include "protocol/gen/kmsg.h"
#include "protocol/errors.h"
#include "protocol/records.h"

static int g_pass, g_fail;

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (cond) {                                                      \
            g_pass++;                                                    \
        } else {                                                         \
            g_fail++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                \
    } while (0)

/* ------------------------------------------------------------ helpers */

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int listener(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static bool port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* loop_stop is final for a loop: every scenario runs on a loop of its own,
 * with a guard that ends it if the scenario hangs. */
static bool g_guard_fired;
static void on_guard(kloop *l, void *arg) {
    (void)arg;
    g_guard_fired = true;
    loop_stop(l);
}
static void run(kloop *l, int max_ms) {
    g_guard_fired = false;
    loop_timer_id g = loop_timer_add(l, max_ms, on_guard, NULL);
    loop_run(l);
    if (!g_guard_fired) loop_timer_cancel(l, g);
    CHECK(!g_guard_fired);
}

typedef struct result {
    int calls;
    kc_status st;
    int32_t corr;
    int64_t at_ms;
} result;

static void record_cb(kc_status st, kc_resp *resp, void *arg) {
    result *r = arg;
    r->calls++;
    r->st = st;
    r->corr = resp->correlation_id;
    r->at_ms = monotonic_ms();
}

/* ------------------------------------------------------------ the broker */

static char g_build[PATH_MAX];
static char g_dir[64];
static char g_conf[128];
static pid_t g_broker;
static int g_port;

static void kill_broker(void) {
    if (g_broker > 0) {
        kill(g_broker, SIGKILL);
        waitpid(g_broker, NULL, 0);
        g_broker = 0;
    }
}

static void cleanup(void) {
    kill_broker();
    if (g_dir[0] && !getenv("KC_TEST_KEEP")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
        g_dir[0] = 0;
    }
}

static void on_signal(int sig) {
    if (g_broker > 0) kill(g_broker, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool find_build(const char *argv0) {
    const char *env = getenv("SAMSA_BUILD");
    if (env && *env) {
        snprintf(g_build, sizeof g_build, "%s", env);
    } else {
        /* argv0 is <build>/tests/test_kafka_client */
        snprintf(g_build, sizeof g_build, "%s", argv0);
        for (int i = 0; i < 2; i++) {
            char *s = strrchr(g_build, '/');
            if (!s) {
                snprintf(g_build, sizeof g_build, "%s", i == 0 ? "." : "..");
                break;
            }
            *s = 0;
        }
    }
    char bin[PATH_MAX + 32];
    snprintf(bin, sizeof bin, "%s/samsa-broker", g_build);
    return access(bin, X_OK) == 0;
}

static pid_t spawn(char *const argv[], const char *logpath) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    if (!freopen(logpath, "a", stdout)) _exit(1);
    if (dup2(1, 2) < 0) _exit(1);
    execv(argv[0], argv);
    _exit(127);
}

static bool format_broker(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/samsa-kc-test.XXXXXX");
    if (!mkdtemp(g_dir)) {
        g_dir[0] = 0;
        return false;
    }
    g_port = free_port();
    int cport = free_port();
    if (g_port < 0 || cport < 0) return false;
    snprintf(g_conf, sizeof g_conf, "%s/server.properties", g_dir);
    FILE *f = fopen(g_conf, "w");
    if (!f) return false;
    fprintf(f,
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:%d\n"
            "listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d\n"
            "advertised.listeners=PLAINTEXT://127.0.0.1:%d\ncontroller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n"
            "log.dirs=%s/data\nnum.partitions=1\noffsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n",
            cport, g_port, cport, g_port, g_dir);
    fclose(f);
    char bin[PATH_MAX + 32], logp[128];
    snprintf(bin, sizeof bin, "%s/samsa-broker", g_build);
    snprintf(logp, sizeof logp, "%s/format.log", g_dir);
    char *argv[] = {bin, "storage", "format", "-t", "q1Sh-9_ISia_zwGINzRvyQ", "-c", g_conf, NULL};
    pid_t pid = spawn(argv, logp);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool start_broker(void) {
    char bin[PATH_MAX + 32], logp[128];
    snprintf(bin, sizeof bin, "%s/samsa-broker", g_build);
    snprintf(logp, sizeof logp, "%s/broker.log", g_dir);
    char *argv[] = {bin, g_conf, NULL};
    g_broker = spawn(argv, logp);
    if (g_broker < 0) return false;
    for (int i = 0; i < 1500; i++) {
        if (port_open(g_port)) return true;
        if (waitpid(g_broker, NULL, WNOHANG) == g_broker) {
            g_broker = 0;
            break;
        }
        usleep(10000);
    }
    fprintf(stderr, "broker did not start; see %s\n", logp);
    return false;
}

/* ------------------------------------------------------ broker scenario */

#define TOPIC "kc-test"
#define BIG_VALUE (900 * 1024)

typedef struct flow {
    kloop *l;
    kc_conn *c;
    int step;
    kuuid topic_id;
    kwriter batch, big_batch;
    int npipe, pipe_ok;
    int32_t last_corr;
    bool order_ok;
} flow;

static void flow_next(flow *f);

static void flow_cb(kc_status st, kc_resp *resp, void *arg) {
    flow *f = arg;
    karena *a = resp->arena;
    CHECK(st == KC_OK);
    if (st != KC_OK) {
        fprintf(stderr, "step %d: %s\n", f->step, kc_status_name(st));
        loop_stop(f->l);
        return;
    }
    switch (f->step) {
    case 0: /* kc_connect */
        CHECK(kc_ready(f->c));
        CHECK(kc_conn_stats(f->c)->api_versions_version == 3);
        CHECK(kc_pick_version(f->c, KAPI_METADATA, 12) == 12);
        CHECK(kc_pick_version(f->c, KAPI_PRODUCE, 9) == 9);
        CHECK(kc_pick_version(f->c, KAPI_FETCH, 15) == 15);
        CHECK(kc_pick_version(f->c, KAPI_FETCH, 4) == 4);
        CHECK(kc_pick_version(f->c, 1000, 3) == -1);
        break;
    case 1: { /* Metadata */
        MetadataResponse m;
        CHECK(kc_resp_decode(resp, &m) == 0);
        CHECK(m.brokers_count == 1);
        if (m.brokers_count == 1) CHECK(m.brokers[0].node_id == 1 && m.brokers[0].port == g_port);
        break;
    }
    case 2: { /* CreateTopics */
        CreateTopicsResponse m;
        CHECK(kc_resp_decode(resp, &m) == 0);
        CHECK(m.topics_count == 1);
        if (m.topics_count == 1) {
            CHECK(m.topics[0].error_code == 0);
            f->topic_id = m.topics[0].topic_id;
            CHECK(!kuuid_is_zero(&f->topic_id));
        }
        break;
    }
    case 3:
    case 5: { /* Produce */
        ProduceResponse m;
        CHECK(kc_resp_decode(resp, &m) == 0);
        CHECK(m.responses_count == 1 && m.responses[0].partition_responses_count == 1);
        if (m.responses_count == 1 && m.responses[0].partition_responses_count == 1) {
            CHECK(m.responses[0].partition_responses[0].error_code == 0);
            CHECK(m.responses[0].partition_responses[0].base_offset == (f->step == 3 ? 0 : 3));
        }
        break;
    }
    case 4:
    case 6: { /* Fetch */
        const kwriter *want = f->step == 4 ? &f->batch : &f->big_batch;
        const uint8_t *body_before = resp->body.buf;
        size_t flen = 0;
        uint8_t *frame = kc_resp_take(resp, &flen);
        CHECK(frame != NULL);
        if (f->step == 6) {
            /* its own buffer: handed over, not copied */
            CHECK(resp->body.buf == body_before);
            CHECK(kc_conn_stats(f->c)->largest_frame_alloc >= BIG_VALUE);
        } else {
            CHECK(resp->body.buf != body_before); /* small: copied out of the read buffer */
        }
        FetchResponse m;
        CHECK(kc_resp_decode(resp, &m) == 0);
        CHECK(m.error_code == 0 && m.responses_count == 1);
        if (m.responses_count == 1 && m.responses[0].partitions_count == 1) {
            const FetchResponse_PartitionData *p = &m.responses[0].partitions[0];
            CHECK(p->error_code == 0);
            CHECK(p->records.len == (int32_t)want->len);
            CHECK(p->records.p >= frame && p->records.p + p->records.len <= frame + flen);
            /* the broker sets baseOffset and partitionLeaderEpoch (outside the CRC); the rest is ours */
            if (p->records.len == (int32_t)want->len && want->len > 17)
                CHECK(memcmp(p->records.p + 16, want->buf + 16, want->len - 16) == 0);
        }
        free(frame);
        break;
    }
    default:
        break;
    }
    (void)a;
    f->step++;
    flow_next(f);
}

static void pipe_cb(kc_status st, kc_resp *resp, void *arg) {
    flow *f = arg;
    int idx = f->npipe++;
    if (st == KC_OK) f->pipe_ok++;
    if (resp->correlation_id <= f->last_corr) f->order_ok = false;
    f->last_corr = resp->correlation_id;
    MetadataResponse m;
    if (st != KC_OK || kc_resp_decode(resp, &m) != 0 || m.brokers_count != 1) f->order_ok = false;
    (void)idx;
    if (f->npipe == 100) {
        f->step++;
        flow_next(f);
    }
}

static int send_produce(flow *f, const kwriter *batch) {
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.index = 0;
    pd.records = (krecords){batch->buf, (int32_t)batch->len, -1, 0};
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    td.name = KSTR_LIT(TOPIC);
    td.partition_data = &pd;
    td.partition_data_count = 1;
    ProduceRequest req;
    ProduceRequest_init(&req);
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = &td;
    req.topic_data_count = 1;
    return kc_send_msg(f->c, KAPI_PRODUCE, 9, &req, 10000, flow_cb, f);
}

static int send_fetch(kc_conn *c, kuuid topic_id, int64_t offset, int32_t min_bytes, int32_t max_wait, kc_cb cb,
                      void *arg) {
    FetchRequest_FetchPartition fp;
    FetchRequest_FetchPartition_init(&fp);
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 4 << 20;
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchTopic_init(&ft);
    ft.topic_id = topic_id;
    ft.partitions = &fp;
    ft.partitions_count = 1;
    FetchRequest req;
    FetchRequest_init(&req);
    req.replica_state.replica_id = -1;
    req.max_wait_ms = max_wait;
    req.min_bytes = min_bytes;
    req.max_bytes = 8 << 20;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = &ft;
    req.topics_count = 1;
    return kc_send_msg(c, KAPI_FETCH, 15, &req, max_wait + 10000, cb, arg);
}

static void flow_next(flow *f) {
    int rc = 0;
    switch (f->step) {
    case 1: {
        MetadataRequest req;
        MetadataRequest_init(&req);
        req.topics_count = -1;
        rc = kc_send_msg(f->c, KAPI_METADATA, 12, &req, 0, flow_cb, f);
        break;
    }
    case 2: {
        CreateTopicsRequest_CreatableTopic t;
        CreateTopicsRequest_CreatableTopic_init(&t);
        t.name = KSTR_LIT(TOPIC);
        t.num_partitions = 1;
        t.replication_factor = 1;
        CreateTopicsRequest req;
        CreateTopicsRequest_init(&req);
        req.topics = &t;
        req.topics_count = 1;
        req.timeout_ms = 5000;
        rc = kc_send_msg(f->c, KAPI_CREATE_TOPICS, 7, &req, 0, flow_cb, f);
        break;
    }
    case 3:
        rc = send_produce(f, &f->batch);
        break;
    case 4:
        rc = send_fetch(f->c, f->topic_id, 0, 1, 500, flow_cb, f);
        break;
    case 5:
        rc = send_produce(f, &f->big_batch);
        break;
    case 6:
        rc = send_fetch(f->c, f->topic_id, 3, 1, 500, flow_cb, f);
        break;
    case 7: {
        /* 100 pipelined Metadata requests from one prepared body (kc_send) */
        MetadataRequest req;
        MetadataRequest_init(&req);
        req.topics_count = -1;
        kwriter body;
        kw_init(&body);
        MetadataRequest_encode(&req, &body, 12);
        f->last_corr = -1;
        f->order_ok = true;
        for (int i = 0; i < 100; i++) rc |= kc_send(f->c, KAPI_METADATA, 12, &body, 0, pipe_cb, f);
        kw_free(&body);
        CHECK(kc_outstanding(f->c) == 100);
        break;
    }
    case 8:
        CHECK(f->pipe_ok == 100);
        CHECK(f->order_ok);
        loop_stop(f->l);
        return;
    default:
        break;
    }
    CHECK(rc == 0);
    if (rc != 0) loop_stop(f->l);
}

static void build_batches(flow *f) {
    rec_builder b;
    kw_init(&f->batch);
    rec_builder_init(&b, 0, 0, -1, -1, -1, false, false);
    int64_t now = wall_clock_ms();
    rec_builder_add(&b, now, (kbytes){(const uint8_t *)"k1", 2}, (kbytes){(const uint8_t *)"hello", 5}, NULL, 0);
    rec_builder_add(&b, now, (kbytes){NULL, -1}, (kbytes){(const uint8_t *)"world", 5}, NULL, 0);
    rec_builder_add(&b, now + 1, (kbytes){(const uint8_t *)"k3", 2}, (kbytes){NULL, -1}, NULL, 0);
    CHECK(rec_builder_finish(&b, &f->batch) == 0);
    rec_builder_free(&b);

    uint8_t *big = malloc(BIG_VALUE);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG_VALUE; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (uint8_t)(x >> 16);
    }
    kw_init(&f->big_batch);
    rec_builder_init(&b, 0, 0, -1, -1, -1, false, false);
    rec_builder_add(&b, now, (kbytes){NULL, -1}, (kbytes){big, BIG_VALUE}, NULL, 0);
    CHECK(rec_builder_finish(&b, &f->big_batch) == 0);
    rec_builder_free(&b);
    free(big);
}

static kuuid g_topic_id;

static void test_broker_flow(void) {
    flow f;
    memset(&f, 0, sizeof f);
    build_batches(&f);
    f.l = loop_new();
    kc_config cfg;
    kc_config_defaults(&cfg);
    cfg.client_id = "kc-test";
    cfg.max_in_flight = 8;
    cfg.send_buffer_bytes = 1 << 20;
    cfg.receive_buffer_bytes = 1 << 20;
    f.c = kc_conn_new(f.l, "127.0.0.1", g_port, &cfg);
    CHECK(f.c != NULL);
    CHECK(kc_pick_version(f.c, KAPI_METADATA, 12) == -1); /* nothing known yet */
    CHECK(kc_connect(f.c, 5000, flow_cb, &f) == 0);
    run(f.l, 30000);
    CHECK(f.step == 8);
    const kc_stats *s = kc_conn_stats(f.c);
    CHECK(s->connects == 1 && s->disconnects == 0 && s->connect_failures == 0);
    g_topic_id = f.topic_id;
    kc_conn_free(f.c);
    loop_free(f.l);
    kw_free(&f.batch);
    kw_free(&f.big_batch);
}

/* A name resolved on the helper thread ("localhost" may list ::1 first,
 * where nothing listens: the next address is tried). */
typedef struct waiter {
    result r;
    kloop *l;
} waiter;

static void stop_loop_cb(kc_status st, kc_resp *resp, void *arg) {
    waiter *w = arg;
    record_cb(st, resp, &w->r);
    loop_stop(w->l);
}

static void test_hostname(void) {
    waiter w = {{0}, loop_new()};
    kc_conn *c = kc_conn_new(w.l, "localhost", g_port, NULL);
    CHECK(kc_connect(c, 5000, stop_loop_cb, &w) == 0);
    run(w.l, 10000);
    CHECK(w.r.calls == 1 && w.r.st == KC_OK);
    CHECK(kc_ready(c));
    kc_conn_free(c);
    loop_free(w.l);
}

/* The broker killed with requests in flight; a send after its restart reconnects. */
typedef struct killer {
    kloop *l;
    kc_conn *c;
    result r[3];
    result after;
    int phase;
} killer;

static void after_cb(kc_status st, kc_resp *resp, void *arg) {
    killer *k = arg;
    record_cb(st, resp, &k->after);
    loop_stop(k->l);
}

static void on_kill(kloop *l, void *arg) {
    (void)l;
    killer *k = arg;
    CHECK(kc_outstanding(k->c) == 3);
    kill_broker();
}

static void on_ready_for_kill(kc_status st, kc_resp *resp, void *arg) {
    (void)resp;
    killer *k = arg;
    CHECK(st == KC_OK);
    /* long polls that park at the broker: min_bytes far above what the log has */
    for (int i = 0; i < 3; i++) CHECK(send_fetch(k->c, g_topic_id, 0, 64 << 20, 20000, record_cb, &k->r[i]) == 0);
    loop_timer_add(k->l, 300, on_kill, k);
}

static void on_restarted(kloop *l, void *arg) {
    (void)l;
    killer *k = arg;
    for (int i = 0; i < 3; i++) CHECK(k->r[i].calls == 1 && k->r[i].st == KC_DISCONNECTED);
    CHECK(start_broker());
    MetadataRequest req;
    MetadataRequest_init(&req);
    req.topics_count = -1;
    CHECK(kc_send_msg(k->c, KAPI_METADATA, 12, &req, 10000, after_cb, k) == 0);
}

static void test_broker_killed(void) {
    killer k;
    memset(&k, 0, sizeof k);
    k.l = loop_new();
    k.c = kc_conn_new(k.l, "127.0.0.1", g_port, NULL);
    CHECK(kc_connect(k.c, 5000, on_ready_for_kill, &k) == 0);
    loop_timer_add(k.l, 1000, on_restarted, &k);
    run(k.l, 30000);
    for (int i = 0; i < 3; i++) CHECK(k.r[i].calls == 1);
    CHECK(k.after.calls == 1 && k.after.st == KC_OK);
    const kc_stats *s = kc_conn_stats(k.c);
    CHECK(s->connects == 2 && s->disconnects == 1);
    kc_conn_free(k.c);
    loop_free(k.l);
}

/* ------------------------------------------------------- fake servers */

enum { FAKE_SILENT, FAKE_VERSIONS_THEN_SILENT, FAKE_FALLBACK, FAKE_HUGE, FAKE_BADCORR };

typedef struct fake {
    int lfd, port, mode;
    pthread_t th;
    int requests;            /* requests read */
    int16_t av_versions[4];  /* ApiVersions versions seen */
    int nav;
    bool client_closed;      /* read EOF after the last answer */
} fake;

static int read_full(int fd, void *p, size_t n) {
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0) return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one request frame; returns its api key (version, corr out) or -1. */
static int read_request(int fd, int16_t *version, int32_t *corr) {
    uint8_t sz[4];
    if (read_full(fd, sz, 4) != 0) return -1;
    uint32_t n = ((uint32_t)sz[0] << 24) | ((uint32_t)sz[1] << 16) | ((uint32_t)sz[2] << 8) | sz[3];
    if (n < 8 || n > (1u << 20)) return -1;
    uint8_t *b = malloc(n);
    if (!b || read_full(fd, b, n) != 0) {
        free(b);
        return -1;
    }
    kreader r;
    kr_init(&r, b, n);
    int16_t key = kr_i16(&r);
    *version = kr_i16(&r);
    *corr = kr_i32(&r);
    free(b);
    return key;
}

static void send_frame(int fd, int32_t corr, bool flexible_header, const kwriter *body) {
    kwriter w;
    kw_init(&w);
    size_t at = kw_reserve(&w, 4);
    kw_i32(&w, corr);
    if (flexible_header) kw_no_tagged_fields(&w);
    if (body) kw_raw(&w, body->buf, body->len);
    kw_patch_i32(&w, at, (int32_t)(w.len - 4));
    write_full(fd, w.buf, w.len);
    kw_free(&w);
}

static void send_api_versions(int fd, int32_t corr, int16_t version, int16_t error) {
    ApiVersionsResponse_ApiVersion keys[3];
    int16_t list[3][3] = {{KAPI_API_VERSIONS, 0, 3}, {KAPI_METADATA, 0, 12}, {KAPI_FETCH, 4, 15}};
    for (int i = 0; i < 3; i++) {
        ApiVersionsResponse_ApiVersion_init(&keys[i]);
        keys[i].api_key = list[i][0];
        keys[i].min_version = list[i][1];
        keys[i].max_version = list[i][2];
    }
    ApiVersionsResponse m;
    ApiVersionsResponse_init(&m);
    m.error_code = error;
    m.api_keys = keys;
    m.api_keys_count = error ? 0 : 3;
    kwriter body;
    kw_init(&body);
    ApiVersionsResponse_encode(&m, &body, version);
    send_frame(fd, corr, false, &body);
    kw_free(&body);
}

static void *fake_main(void *arg) {
    fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    int16_t ver;
    int32_t corr;
    int key;
    while ((key = read_request(fd, &ver, &corr)) >= 0) {
        f->requests++;
        if (f->mode == FAKE_SILENT) continue;
        if (key == KAPI_API_VERSIONS) {
            if (f->nav < 4) f->av_versions[f->nav++] = ver;
            if (f->mode == FAKE_FALLBACK && ver > 0) send_api_versions(fd, corr, 0, KERR_UNSUPPORTED_VERSION);
            else send_api_versions(fd, corr, ver, 0);
            continue;
        }
        if (f->mode == FAKE_HUGE) {
            uint8_t hdr[4 + 100] = {0x7f, 0xff, 0xff, 0xf0};
            memcpy(hdr + 4, &corr, 4);
            write_full(fd, hdr, sizeof hdr);
        } else if (f->mode == FAKE_BADCORR) {
            send_frame(fd, corr + 1000, true, NULL);
        } else if (f->mode == FAKE_FALLBACK) {
            break;
        }
        /* FAKE_VERSIONS_THEN_SILENT: never answers */
    }
    /* read until the client closes (or the listener is shut) */
    char tmp[256];
    ssize_t r;
    while ((r = recv(fd, tmp, sizeof tmp, 0)) > 0) {
    }
    if (r == 0) f->client_closed = true;
    close(fd);
    return NULL;
}

static bool fake_start(fake *f, int mode) {
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->lfd = listener(&f->port);
    if (f->lfd < 0) return false;
    return pthread_create(&f->th, NULL, fake_main, f) == 0;
}

static void fake_stop(fake *f) {
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* Nothing listens: the callback comes at once, not after the timeout; the
 * next attempt waits out the reconnect backoff. */
typedef struct refused {
    kloop *l;
    kc_conn *c;
    result r1, r2;
    int64_t t0;
} refused;

static void refused_cb2(kc_status st, kc_resp *resp, void *arg) {
    refused *x = arg;
    record_cb(st, resp, &x->r2);
    loop_stop(x->l);
}

static void refused_cb1(kc_status st, kc_resp *resp, void *arg) {
    refused *x = arg;
    record_cb(st, resp, &x->r1);
    /* resending from the callback is fine */
    CHECK(kc_connect(x->c, 5000, refused_cb2, x) == 0);
}

static void test_refused(void) {
    refused x;
    memset(&x, 0, sizeof x);
    x.l = loop_new();
    kc_config cfg;
    kc_config_defaults(&cfg);
    cfg.reconnect_backoff_ms = 200;
    cfg.reconnect_backoff_max_ms = 400;
    x.c = kc_conn_new(x.l, "127.0.0.1", free_port(), &cfg);
    MetadataRequest req;
    MetadataRequest_init(&req);
    x.t0 = monotonic_ms();
    CHECK(kc_send_msg(x.c, KAPI_METADATA, 12, &req, 5000, refused_cb1, &x) == 0);
    run(x.l, 5000);
    CHECK(x.r1.calls == 1 && x.r1.st == KC_CONNECT_FAILED && x.r1.corr == -1);
    CHECK(x.r1.at_ms - x.t0 < 1000);
    CHECK(x.r2.calls == 1 && x.r2.st == KC_CONNECT_FAILED);
    CHECK(x.r2.at_ms - x.r1.at_ms >= 150 && x.r2.at_ms - x.r1.at_ms < 1500); /* 200 ms +-20% backoff */
    CHECK(kc_conn_stats(x.c)->connect_failures == 2);
    kc_conn_free(x.c);
    loop_free(x.l);
}

/* Accepts and never answers: a queued request times out on time. */
static void test_silent(void) {
    fake f;
    CHECK(fake_start(&f, FAKE_SILENT));
    waiter w = {{0}, loop_new()};
    kc_conn *c = kc_conn_new(w.l, "127.0.0.1", f.port, NULL);
    MetadataRequest req;
    MetadataRequest_init(&req);
    int64_t t0 = monotonic_ms();
    CHECK(kc_send_msg(c, KAPI_METADATA, 12, &req, 300, stop_loop_cb, &w) == 0);
    run(w.l, 5000);
    CHECK(w.r.calls == 1 && w.r.st == KC_TIMEOUT);
    CHECK(w.r.at_ms - t0 >= 295 && w.r.at_ms - t0 < 800);
    CHECK(kc_status_error_code(w.r.st) == 7); /* REQUEST_TIMED_OUT */
    kc_conn_free(c);
    loop_free(w.l);
    fake_stop(&f);
    CHECK(f.requests == 1); /* just ApiVersions */
}

/* ApiVersions answered, the rest in flight never: the first timeout closes
 * the connection and the others in flight fail at once; an API the broker
 * does not list fails without being sent. */
typedef struct inflight {
    kloop *l;
    kc_conn *c;
    result r[3], unsup;
    int done;
} inflight;

static void inflight_cb(kc_status st, kc_resp *resp, void *arg);

static void inflight_ready(kc_status st, kc_resp *resp, void *arg) {
    (void)resp;
    inflight *x = arg;
    CHECK(st == KC_OK);
    CHECK(kc_pick_version(x->c, KAPI_METADATA, 12) == 12);
    CHECK(kc_pick_version(x->c, KAPI_FETCH, 3) == -1); /* below the broker's min 4 */
    CHECK(kc_pick_version(x->c, KAPI_PRODUCE, 9) == -1);
    MetadataRequest req;
    MetadataRequest_init(&req);
    for (int i = 0; i < 3; i++) CHECK(kc_send_msg(x->c, KAPI_METADATA, 12, &req, i == 0 ? 300 : 5000, inflight_cb, &x->r[i]) == 0);
    ProduceRequest p;
    ProduceRequest_init(&p);
    CHECK(kc_send_msg(x->c, KAPI_PRODUCE, 9, &p, 5000, inflight_cb, &x->unsup) == 0);
}

static inflight *g_inflight;
static void inflight_cb(kc_status st, kc_resp *resp, void *arg) {
    record_cb(st, resp, arg);
    if (++g_inflight->done == 4) loop_stop(g_inflight->l);
}

static void test_inflight_timeout(void) {
    fake f;
    CHECK(fake_start(&f, FAKE_VERSIONS_THEN_SILENT));
    inflight x;
    memset(&x, 0, sizeof x);
    g_inflight = &x;
    x.l = loop_new();
    x.c = kc_conn_new(x.l, "127.0.0.1", f.port, NULL);
    int64_t t0 = monotonic_ms();
    CHECK(kc_connect(x.c, 5000, inflight_ready, &x) == 0);
    run(x.l, 5000);
    CHECK(x.unsup.calls == 1 && x.unsup.st == KC_UNSUPPORTED_VERSION);
    CHECK(x.r[0].calls == 1 && x.r[0].st == KC_TIMEOUT);
    CHECK(x.r[0].at_ms - t0 >= 295 && x.r[0].at_ms - t0 < 1000);
    for (int i = 1; i < 3; i++) {
        CHECK(x.r[i].calls == 1 && x.r[i].st == KC_DISCONNECTED);
        CHECK(x.r[i].at_ms - x.r[0].at_ms < 100);
    }
    CHECK(x.r[0].corr > 0 && x.r[1].corr == x.r[0].corr + 1 && x.r[2].corr == x.r[1].corr + 1);
    CHECK(kc_conn_stats(x.c)->disconnects == 1);
    kc_conn_free(x.c);
    loop_free(x.l);
    fake_stop(&f);
    CHECK(f.requests == 4); /* ApiVersions and three Metadata; no Produce */
    CHECK(f.client_closed);
}

/* ApiVersions v3 refused with UNSUPPORTED_VERSION and no versions listed: v0. */
static void test_fallback(void) {
    fake f;
    CHECK(fake_start(&f, FAKE_FALLBACK));
    waiter w = {{0}, loop_new()};
    kc_conn *c = kc_conn_new(w.l, "127.0.0.1", f.port, NULL);
    CHECK(kc_connect(c, 5000, stop_loop_cb, &w) == 0);
    run(w.l, 5000);
    CHECK(w.r.calls == 1 && w.r.st == KC_OK);
    CHECK(kc_conn_stats(c)->api_versions_version == 0);
    CHECK(kc_pick_version(c, KAPI_METADATA, 9) == 9);
    kc_conn_free(c);
    loop_free(w.l);
    fake_stop(&f);
    CHECK(f.nav == 2 && f.av_versions[0] == 3 && f.av_versions[1] == 0);
}

/* A frame size above max_response_bytes (or a wrong correlation id) closes
 * the connection; the huge size is never allocated. */
static void test_bad_response(int mode) {
    fake f;
    CHECK(fake_start(&f, mode));
    waiter w = {{0}, loop_new()};
    kc_config cfg;
    kc_config_defaults(&cfg);
    cfg.max_response_bytes = 1 << 20;
    kc_conn *c = kc_conn_new(w.l, "127.0.0.1", f.port, &cfg);
    MetadataRequest req;
    MetadataRequest_init(&req);
    CHECK(kc_send_msg(c, KAPI_METADATA, 12, &req, 5000, stop_loop_cb, &w) == 0);
    run(w.l, 5000);
    CHECK(w.r.calls == 1 && w.r.st == KC_DISCONNECTED);
    CHECK(kc_conn_stats(c)->largest_frame_alloc == 0);
    CHECK(kc_conn_stats(c)->disconnects == 1);
    kc_conn_free(c);
    loop_free(w.l);
    fake_stop(&f);
    CHECK(f.client_closed);
}

/* kc_conn_free cancels: every callback once, with KC_CANCELLED, before it
 * returns; and a callback may free the connection that calls it. */
typedef struct canceller {
    kc_conn *c;
    result r[4];
    int n;
} canceller;
static canceller g_cx;

static void cancel_cb(kc_status st, kc_resp *resp, void *arg) {
    record_cb(st, resp, arg);
    g_cx.n++;
    CHECK(kc_send_msg(g_cx.c, KAPI_METADATA, 12, &(MetadataRequest){0}, 100, cancel_cb, arg) == -1 ||
          st != KC_CANCELLED);
}

static void free_in_cb(kc_status st, kc_resp *resp, void *arg) {
    record_cb(st, resp, arg);
    g_cx.n++;
    kc_conn_free(g_cx.c); /* the others are cancelled now */
    g_cx.c = NULL;
}

static void test_free(void) {
    fake f;
    CHECK(fake_start(&f, FAKE_SILENT));
    kloop *l = loop_new();
    memset(&g_cx, 0, sizeof g_cx);
    g_cx.c = kc_conn_new(l, "127.0.0.1", f.port, NULL);
    MetadataRequest req;
    MetadataRequest_init(&req);
    for (int i = 0; i < 3; i++) CHECK(kc_send_msg(g_cx.c, KAPI_METADATA, 12, &req, 5000, cancel_cb, &g_cx.r[i]) == 0);
    kc_conn_free(g_cx.c);
    CHECK(g_cx.n == 3);
    for (int i = 0; i < 3; i++) CHECK(g_cx.r[i].calls == 1 && g_cx.r[i].st == KC_CANCELLED);
    kc_conn_free(NULL);

    /* freed from the first of three timeouts */
    memset(&g_cx, 0, sizeof g_cx);
    g_cx.c = kc_conn_new(l, "127.0.0.1", f.port, NULL);
    CHECK(kc_send_msg(g_cx.c, KAPI_METADATA, 12, &req, 200, free_in_cb, &g_cx.r[0]) == 0);
    CHECK(kc_send_msg(g_cx.c, KAPI_METADATA, 12, &req, 5000, record_cb, &g_cx.r[1]) == 0);
    CHECK(kc_connect(g_cx.c, 5000, record_cb, &g_cx.r[2]) == 0);
    loop_timer_add(l, 600, on_guard, NULL);
    loop_run(l);
    CHECK(g_cx.c == NULL);
    CHECK(g_cx.r[0].calls == 1 && g_cx.r[0].st == KC_TIMEOUT);
    CHECK(g_cx.r[1].calls == 1 && g_cx.r[1].st == KC_CANCELLED);
    CHECK(g_cx.r[2].calls == 1 && g_cx.r[2].st == KC_CANCELLED);
    loop_free(l);
    fake_stop(&f);
}

/* Requests after an adopted socket broke are refused; queued ones fail. */
static void test_adopted(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    waiter w = {{0}, loop_new()};
    kc_conn *c = kc_conn_new_fd(w.l, sv[0], NULL);
    CHECK(c != NULL);
    MetadataRequest req;
    MetadataRequest_init(&req);
    CHECK(kc_send_msg(c, KAPI_METADATA, 12, &req, 5000, stop_loop_cb, &w) == 0);
    close(sv[1]);
    run(w.l, 5000);
    CHECK(w.r.calls == 1 && w.r.st == KC_CONNECT_FAILED);
    CHECK(kc_send_msg(c, KAPI_METADATA, 12, &req, 5000, stop_loop_cb, &w) == -1);
    kc_conn_free(c);
    loop_free(w.l);
}

int main(int argc, char **argv) {
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    test_refused();
    test_silent();
    test_inflight_timeout();
    test_fallback();
    test_bad_response(FAKE_HUGE);
    test_bad_response(FAKE_BADCORR);
    test_free();
    test_adopted();
    int p1 = g_pass, f1 = g_fail;
    if (find_build(argv[0]) && !getenv("SAMSA_NO_BROKER")) {
        atexit(cleanup);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGABRT, on_signal);
        signal(SIGSEGV, on_signal);
        bool ok = format_broker() && start_broker();
        CHECK(ok);
        if (ok) {
            test_broker_flow();
            test_hostname();
            test_broker_killed();
        }
        cleanup();
        printf("test_kafka_client: %d passed, %d failed (fake servers %d/%d, broker %d/%d)\n", g_pass, g_fail, p1,
               f1, g_pass - p1, g_fail - f1);
    } else {
        printf("test_kafka_client: %d passed, %d failed (no samsa-broker in %s: broker tests skipped)\n", g_pass,
               g_fail, g_build);
    }
    return g_fail ? 1 : 0;
}
