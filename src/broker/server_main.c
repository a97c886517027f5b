/* server_main.c - kafka-server-start: configure, recover, serve, shut down.
 *
 * Start-up order: configuration -> meta.properties check -> metadata log
 * replay -> partition logs (recovery) -> group coordinator load ->
 * listeners. Shutdown (SIGTERM/SIGINT) reverses it: in a cluster, with
 * controlled.shutdown.enable, first move this node's leaderships to other
 * in-sync replicas and leave the ISRs (Kafka's controlled shutdown), then
 * deregister; stop accepting, answer what is in flight, flush logs, write
 * checkpoints. A second signal skips what is left of the controlled shutdown.
 */
#include "broker/server_main.h"
#include "broker/sasl_broker.h"
#include "broker/authz.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cleaner/log_cleaner.h"
#include "storage/write_pool.h"
#include "broker/broker.h"
#include "broker/dispatch.h"
#include "broker/fetch_wait.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/partition_txn.h"
#include "broker/storage_cmd.h"
#include "broker/topics.h"
#include "broker/txn_verify.h"
#include "controller/controller.h"
#include "group/group.h"
#include "metrics/exporter.h"
#include "mstore/etcd_store.h"
#include "mstore/mstore.h"
#include "net/server.h"
#include "protocol/gen/kmsg.h"
#include "storage/fdcache.h"
#include "storage/page_trim.h"
#include "storage/syncer.h"
#include "txn/txn_manager.h"
#include "util/log.h"
#include "util/log_files.h"
#include "util/sd_notify.h"

#define COMPONENT "kafka.server.KafkaRaftServer"

extern const char samsa_default_server_properties[];

static void usage(void) {
    fprintf(stderr, "USAGE: kafka-server-start.sh [-daemon] server.properties [--override property=value]*\n");
}

/* ---- accessors from broker.h ---- */

int32_t broker_node_id(const broker *b) { return b->cfg.node_id; }

static const listener *client_listener(const broker *b) {
    for (int i = 0; i < b->cfg.nadvertised; i++)
        if (strcmp(b->cfg.advertised[i].name, b->cfg.controller_listener_names) != 0)
            return &b->cfg.advertised[i];
    return b->cfg.nadvertised ? &b->cfg.advertised[0] : NULL;
}

const char *broker_advertised_host(const broker *b) {
    const listener *l = client_listener(b);
    if (!l || !l->host[0]) {
        static char host[256];
        if (!host[0] && gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
        return host;
    }
    return l->host;
}

int32_t broker_advertised_port(const broker *b) {
    const listener *l = client_listener(b);
    return l ? l->port : 9092;
}

/* ---- periodic work ---- */

/* Kafka's LogManager first checks retention log.initial.task.delay.ms (30 s)
 * after start-up, then every log.retention.check.interval.ms; records with
 * old timestamps must stay readable until then. The other upkeep (flush,
 * time-based roll, deleted files) runs every second. */
#define RETENTION_INITIAL_DELAY_MS 30000
#define PRODUCER_EXPIRATION_CHECK_INTERVAL_MS 600000 /* Kafka's producer.id.expiration.check.interval.ms */

static void appends_follow_config(broker *b);

static void maintenance_tick(kloop *l, void *arg) {
    broker *b = arg;
    appends_follow_config(b);
    int64_t now = wall_clock_ms();
    int64_t mono = monotonic_ms();
    if (b->next_retention_check_ms == 0) {
        /* Kafka's internal log.initial.task.delay.ms: first check 30 s after start */
        const char *d = props_get(&b->cfg.raw, "log.initial.task.delay.ms");
        b->next_retention_check_ms = b->started_ms + (d ? atoll(d) : RETENTION_INITIAL_DELAY_MS);
    }
    bool retention_due = mono >= b->next_retention_check_ms;
    if (retention_due) b->next_retention_check_ms = mono + b->cfg.log_retention_check_interval_ms;
    /* Kafka's producer-expiration task: every producer.id.expiration.check.interval.ms */
    static int64_t next_producer_expiry_ms;
    bool expiry_due = mono >= next_producer_expiry_ms;
    if (expiry_due) {
        const char *iv = props_get(&b->cfg.raw, "producer.id.expiration.check.interval.ms");
        next_producer_expiry_ms = mono + (iv ? atoll(iv) : PRODUCER_EXPIRATION_CHECK_INTERVAL_MS);
    }
    int n = broker_topic_count(b);
    topic_rt **ts = malloc(sizeof(*ts) * (size_t)(n ? n : 1));
    if (ts) {
        n = broker_topics_list(b, ts, n);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < ts[i]->nparts; p++) {
                if (!ts[i]->parts[p]) continue;
                /* the producer state follows the log start (partition_txn.h) */
                part_txn_maintenance(ts[i]->parts[p], now, retention_due);
                if (expiry_due) part_txn_expire_producers(ts[i]->parts[p], now, b->cfg.producer_id_expiration_ms);
            }
        free(ts);
    }
    loop_timer_add(l, 1000, maintenance_tick, b);
}

static void checkpoint_tick(kloop *l, void *arg) {
    broker *b = arg;
    topics_write_checkpoints(b);
    loop_timer_add(l, b->cfg.log_flush_offset_checkpoint_interval_ms, checkpoint_tick, b);
}

/* ---- controlled shutdown ----
 *
 * Kafka's BrokerLifecycleManager.beginControlledShutdown, with the
 * controller's part (handleBrokerInControlledShutdown) done by this node
 * itself through the metadata store under compare-and-set: the partitions
 * it leads move to the first other alive ISR member in assignment order, it
 * leaves every ISR that has another member, and it waits until those
 * changes are applied before it deregisters. Partitions nobody else can lead
 * stay with it until then. Bounded by broker.session.timeout.ms: by then
 * the controller would have fenced a silent broker anyway. Clients see
 * NOT_LEADER_OR_FOLLOWER (retriable) from here for what has moved. */

#define CS_BATCH 100            /* partitions per change */
#define CS_TXN_TOPICS 50        /* topics per change (etcd's transaction limit) */
#define CS_RETRY_MS 200
#define CS_DEFAULT_BOUND_MS 9000

static struct {
    bool active;
    int64_t deadline_ms;
    int moved;
    loop_timer_id deadline_timer;
} cs;

static void cs_finish(broker *b, const char *how) {
    if (!cs.active) return;
    cs.active = false;
    if (cs.deadline_timer) loop_timer_cancel(b->loop, cs.deadline_timer);
    cs.deadline_timer = 0;
    log_info("kafka.server.BrokerLifecycleManager", "[BrokerLifecycleManager id=%d] Controlled shutdown %s (%d "
             "partition change(s))", b->cfg.node_id, how, cs.moved);
    b->shutting_down = true;
    loop_stop(b->loop);
}

static void cs_step(kloop *l, void *arg);

static void cs_committed(broker *b, void *arg, mstore_status st) {
    (void)arg;
    if (!cs.active) return;
    /* applied (or refused: the image moved on): decide again from the image */
    loop_timer_add(b->loop, st == MSTORE_OK || st == MSTORE_CONFLICT ? 0 : CS_RETRY_MS, cs_step, b);
}

static void cs_step(kloop *l, void *arg) {
    (void)l;
    broker *b = arg;
    if (!cs.active) return;
    karena a;
    karena_init(&a, 0);
    mrecord recs[CS_BATCH];
    int n = ctl_controlled_shutdown(b->image, b->cfg.node_id, recs, CS_BATCH, &a);
    int topics = 0;
    for (int i = 0; i < n; i++) {
        const PartitionChangeRecord *r = recs[i].data;
        if (i == 0 || memcmp(&r->topic_id, &((const PartitionChangeRecord *)recs[i - 1].data)->topic_id,
                             sizeof r->topic_id) != 0) {
            if (++topics > CS_TXN_TOPICS) {
                n = i;
                break;
            }
        }
    }
    if (n == 0) {
        karena_free(&a);
        cs_finish(b, "completed");
        return;
    }
    cs.moved += n;
    mstore_commit(b->store, recs, n, 0, cs_committed, NULL);
    karena_free(&a);
}

static void cs_timed_out(kloop *l, void *arg) {
    (void)l;
    cs.deadline_timer = 0;
    cs_finish(arg, "timed out");
}

/* Starts it when it applies (a cluster, controlled.shutdown.enable);
 * false: shut down at once. */
static bool cs_begin(broker *b) {
    const char *en = props_get(&b->cfg.raw, "controlled.shutdown.enable");
    if (!mstore_is_cluster(b->store) || (en && strcmp(en, "false") == 0)) return false;
    const char *bound = props_get(&b->cfg.raw, "broker.session.timeout.ms");
    int64_t bound_ms = bound && atoll(bound) > 0 ? atoll(bound) : CS_DEFAULT_BOUND_MS;
    log_info("kafka.server.BrokerLifecycleManager", "[BrokerLifecycleManager id=%d] Beginning controlled shutdown.",
             b->cfg.node_id);
    mstore_etcd_enter_controlled_shutdown(b->store);
    cs.active = true;
    cs.moved = 0;
    cs.deadline_ms = monotonic_ms() + bound_ms;
    cs.deadline_timer = loop_timer_add(b->loop, bound_ms, cs_timed_out, b);
    loop_timer_add(b->loop, 0, cs_step, b);
    return true;
}

static void signal_event(kloop *l, int fd, int events, void *arg) {
    (void)events;
    broker *b = arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        log_info(COMPONENT, "Received signal %s, shutting down", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        if (cs.active) { /* a second signal: now */
            cs_finish(b, "cut short");
            continue;
        }
        if (!b->shutting_down && !cs.active && sd_notify_state("STOPPING=1") < 0)
            log_warn(COMPONENT, "Could not tell the service manager we are stopping: %s", strerror(errno));
        if (b->shutting_down || !cs_begin(b)) {
            b->shutting_down = true;
            loop_stop(l);
        }
    }
}

/* ---- start-up ---- */

/* Every client connection and every segment holds descriptors; the common
 * soft limit of 1024 would refuse connections long before max.connections.
 * Java raises it in the JVM launcher; we take the hard limit here. Index
 * files share a pool sized to a sixteenth of it. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_warn(COMPONENT, "Could not raise the open file limit from %llu: %s", (unsigned long long)was,
                     strerror(errno));
            rl.rlim_cur = was;
        }
    }
    rlim_t pool = rl.rlim_cur / 16;
    fdc_set_capacity(pool > FDC_MAX_CAPACITY ? FDC_MAX_CAPACITY : (int)pool);
}

static int load_props(int argc, char **argv, props *p, bool *embedded) {
    int i = 1;
    if (i < argc && strcmp(argv[i], "-daemon") == 0) i++; /* accepted: we stay in the foreground */
    *embedded = true;
    if (i < argc && strncmp(argv[i], "--", 2) != 0) {
        char err[1024];
        if (props_load_file(p, argv[i], err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        *embedded = false;
        i++;
    } else if (props_load_string(p, samsa_default_server_properties) != 0) {
        return -1;
    }
    for (; i < argc; i++) {
        const char *kv = NULL;
        if (strcmp(argv[i], "--override") == 0 && i + 1 < argc) kv = argv[++i];
        else if (strncmp(argv[i], "--override=", 11) == 0) kv = argv[i] + 11;
        else {
            usage();
            return -1;
        }
        const char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "Invalid command line properties: %s\n", kv);
            return -1;
        }
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        props_set(p, key, eq + 1);
    }
    return 0;
}

/* Every log dir must be formatted with one cluster id. The embedded config
 * formats its dir on first use, so `samsa-broker` alone just works. */
static int check_formatted(broker *b, bool embedded) {
    const char *dirs[MAX_LOG_DIRS + 1];
    int n = 0;
    for (int i = 0; i < b->cfg.nlog_dirs; i++) dirs[n++] = b->cfg.log_dirs[i];
    if (b->cfg.metadata_log_dir[0] && strcmp(b->cfg.metadata_log_dir, b->cfg.log_dirs[0]) != 0)
        dirs[n++] = b->cfg.metadata_log_dir;
    char first[64] = "";
    for (int i = 0; i < n; i++) {
        char cid[64], err[512];
        int nid = -1;
        int rc = storage_read_meta(dirs[i], cid, sizeof cid, &nid, err, sizeof err);
        if (rc == 1 && embedded) {
            if (!first[0]) storage_random_uuid(first);
            if (storage_format_dir(dirs[i], first, b->cfg.node_id, err, sizeof err) != 0) {
                log_error(COMPONENT, "%s", err);
                return -1;
            }
            log_info(COMPONENT, "Formatted %s with metadata.version %s (cluster id %s)", dirs[i],
                     METADATA_VERSION_NAME, first);
            snprintf(cid, sizeof cid, "%s", first);
            nid = b->cfg.node_id;
            rc = 0;
        }
        if (rc == 1) {
            /* Kafka's main() logs this under kafka.Kafka$ with the exception on the next line. */
            log_error("kafka.Kafka$", "Exiting Kafka due to fatal exception");
            printf("org.apache.kafka.common.KafkaException: No `meta.properties` found in %s (have you run "
                   "`kafka-storage.sh` to format the directory?)\n",
                   dirs[i]);
            fflush(stdout);
            return -1;
        }
        if (rc < 0) {
            log_error(COMPONENT, "Exiting Kafka due to fatal exception: %s", err);
            return -1;
        }
        if (nid != b->cfg.node_id) {
            log_error(COMPONENT,
                      "Exiting Kafka due to fatal exception: Stored node id %d doesn't match previous node id "
                      "%d in %s/meta.properties. If you moved your data, make sure your configured node id "
                      "matches. If you intend to create a new node, you should remove all data in your data "
                      "directories.",
                      nid, b->cfg.node_id, dirs[i]);
            return -1;
        }
        if (!first[0]) snprintf(first, sizeof first, "%s", cid);
        else if (strcmp(first, cid) != 0) {
            log_error(COMPONENT, "Exiting Kafka due to fatal exception: Invalid cluster.id in %s/meta.properties. "
                                 "Expected %s, but read %s", dirs[i], first, cid);
            return -1;
        }
    }
    snprintf(b->cluster_id, sizeof b->cluster_id, "%s", first);
    return 0;
}

/* The metadata store: etcd when metadata.store=etcd (a cluster), else the
 * local __cluster_metadata log. */
static mstore *open_metadata_store(broker *b, char *err, size_t errlen) {
    const char *kind = props_get(&b->cfg.raw, "metadata.store");
    if (kind && strcmp(kind, "etcd") == 0) return mstore_etcd_open(b, err, errlen);
    const char *mdir = b->cfg.metadata_log_dir[0] ? b->cfg.metadata_log_dir : b->cfg.log_dirs[0];
    mstore *s = mstore_local_open(b, mdir, err, errlen);
    /* One node is its own cluster: it registers in memory, as the only broker. */
    if (s && broker_register_locally(b) != 0) {
        snprintf(err, errlen, "cannot register this node");
        mstore_close(s);
        return NULL;
    }
    return s;
}

/* num.network.threads, on a machine with cores to spare: below
 * network.threads.min.cpus online CPUs the sockets stay on the request loop
 * (on 2 cores the hand-off between threads cost more CPU and latency than it
 * brought: bench/README.md, "Network threads"). */
static int network_threads_for(const broker_config *cfg) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = cpus >= cfg->network_threads_min_cpus ? cfg->num_network_threads : 0;
    if (n > 0)
        log_info("kafka.network.SocketServer", "%d network threads (num.network.threads) on %ld CPUs", n, cpus);
    else
        log_info("kafka.network.SocketServer",
                 "Connections are served on the request loop: %ld CPUs, fewer than network.threads.min.cpus=%d",
                 cpus, cfg->network_threads_min_cpus);
    return n;
}

/* The write pool: num.io.threads threads write a produce request's
 * partitions at once, the loop being one of them; capped at the online CPUs,
 * since more writers than cores only take turns. None with one CPU or
 * num.io.threads=1: the loop writes alone, as before. */
static struct wpool *append_pool_for(int64_t io_threads) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long writers = io_threads < cpus ? (long)io_threads : cpus;
    if (writers < 2) {
        log_info("kafka.server.KafkaRequestHandlerPool", "Appends are written on the request loop alone "
                 "(num.io.threads=%lld, %ld CPUs)", (long long)io_threads, cpus);
        return NULL;
    }
    log_info("kafka.server.KafkaRequestHandlerPool", "A produce request's partitions are written by up to %ld "
             "threads at once (num.io.threads=%lld, %ld CPUs)", writers, (long long)io_threads, cpus);
    return wpool_new((int)writers - 1);
}

/* num.io.threads changed live (kafka-configs --entity-type brokers), as
 * Kafka resizes its request handler pool: the pool is replaced between
 * requests (its helpers are joined; none is writing then). */
static void appends_follow_config(broker *b) {
    int64_t want = broker_config_i64(b, "num.io.threads", b->cfg.num_io_threads);
    if (want == b->appends_io_threads) return;
    log_info("kafka.server.KafkaRequestHandlerPool", "Reconfiguring the append writers: num.io.threads %lld -> %lld",
             (long long)b->appends_io_threads, (long long)want);
    wpool_free(b->appends);
    b->appends = append_pool_for(want);
    b->appends_io_threads = want;
}

int server_main(int argc, char **argv) {
    /* Request frames and replica fetch responses of several MiB are
     * malloc'd and freed per request: above glibc's default thresholds each
     * one is a fresh mmap (or a trimmed heap) whose pages fault in zeroed,
     * 12-16% of a follower's CPU under replication (bench/README.md). Keep
     * them in the heap, and give memory back past 64 MiB of free top. */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* kafka-run-class.sh's LOG_DIR (log4j's kafka.logs.dir): server.log,
     * controller.log, ... there, rolled hourly; without it, stdout only. */
    const char *log_dir = getenv("LOG_DIR");
    if (log_dir && *log_dir) {
        char lerr[512];
        if (log_files_open(log_dir, lerr, sizeof lerr) != 0)
            fprintf(stderr, "log4j:ERROR %s; logging to stdout only\n", lerr);
    }
    props p;
    props_init(&p);
    bool embedded;
    if (load_props(argc, argv, &p, &embedded) != 0) {
        props_free(&p);
        return 1;
    }
    broker *b = calloc(1, sizeof *b);
    if (!b) return 1;
    char err[1024];
    if (broker_config_load(&b->cfg, &p, err, sizeof err) != 0 ||
        broker_config_check_security(&b->cfg, err, sizeof err) != 0) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: %s", err);
        fprintf(stderr, "%s\n", err);
        broker_config_free(&b->cfg); /* idempotent: a failed load has freed it */
        props_free(&p);
        free(b);
        return 1;
    }
    props_free(&p);
    if (check_formatted(b, embedded) != 0) {
        broker_config_free(&b->cfg);
        free(b);
        return 1;
    }
    raise_fd_limit();
    int64_t t0 = monotonic_ms();
    log_info(COMPONENT, "[KafkaRaftServer nodeId=%d] Starting (cluster id %s)", b->cfg.node_id, b->cluster_id);

    /* Block the signals we handle so they arrive through the loop. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    /* After the mask: the worker must not take the signals signalfd reads. */
    if (syncer_start() != 0)
        log_warn(COMPONENT, "Could not start the background fsync thread; new partitions are synced inline");
    if (b->cfg.log_page_cache_window_bytes > 0 && ptrim_start() != 0)
        log_warn(COMPONENT, "Could not start the page-cache trimming thread; log ranges are trimmed inline");

    b->loop = loop_new();
    b->image = mimage_new(b->cfg.node_id);
    err[0] = 0;
    if (b->loop && b->image) b->store = open_metadata_store(b, err, sizeof err);
    if (!b->store) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: cannot open the metadata store: %s", err);
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (topics_init(b) != 0) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: cannot open the logs");
        return 1;
    }
    fetch_wait_init(b);
    b->groups = group_coord_new(b);
    if (!b->groups || group_coord_load(b->groups) != 0) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: cannot load consumer groups");
        return 1;
    }
    b->txns = txn_manager_new(b);
    if (!b->txns) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: cannot start the transaction coordinator");
        return 1;
    }
    txn_manager_start(b->txns);
    if (mstore_start(b->store, err, sizeof err) != 0) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: %s", err);
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    net_config nc = {
        .max_request_bytes = b->cfg.socket_request_max_bytes,
        .max_idle_ms = b->cfg.connections_max_idle_ms,
        .max_connections = b->cfg.max_connections,
        .max_connections_per_ip = b->cfg.max_connections_per_ip,
        .send_buffer_bytes = b->cfg.socket_send_buffer_bytes,
        .receive_buffer_bytes = b->cfg.socket_receive_buffer_bytes,
        .network_threads = network_threads_for(&b->cfg),
    };
    b->appends_io_threads = b->cfg.num_io_threads;
    b->appends = append_pool_for(b->appends_io_threads);
    b->server = net_server_new(b->loop, &nc, dispatch_request, dispatch_connection_closed, b);
    if (b->server) net_server_set_accept_throttle(b->server, quota_accept_throttle);
    /* The cleaner's threads exist (and carry their names) before a client can connect. */
    if (log_cleaner_start(b) != 0) log_warn(COMPONENT, "The log cleaner is not running");
    if (broker_authz_start(b, err, sizeof err) != 0 || broker_sasl_start(b, err, sizeof err) != 0 ||
        broker_listeners_start(b, err, sizeof err) != 0 || metrics_exporter_start(b, err, sizeof err) != 0) {
        log_error(COMPONENT, "Exiting Kafka due to fatal exception: %s", err);
        fprintf(stderr, "%s\n", err);
        log_cleaner_stop();
        return 1;
    }
    if (sfd >= 0) loop_watch(b->loop, sfd, LOOP_READ, signal_event, b);
    loop_timer_add(b->loop, 1000, maintenance_tick, b);
    loop_timer_add(b->loop, b->cfg.log_flush_offset_checkpoint_interval_ms, checkpoint_tick, b);
    b->started_ms = monotonic_ms();
    log_info(COMPONENT, "[KafkaRaftServer nodeId=%d] Kafka Server started (in %lld ms)", b->cfg.node_id,
             (long long)(b->started_ms - t0));

    /* systemd's Type=notify: the listeners are open, clients can connect. */
    if (sd_notify_state("READY=1") < 0)
        log_warn(COMPONENT, "Could not tell the service manager we are ready: %s", strerror(errno));

    loop_run(b->loop);

    log_info("kafka.server.BrokerServer", "[BrokerServer id=%d] shutting down", b->cfg.node_id);
    produce_turn_shutdown(b); /* requests of the last turn: appended and answered */
    mstore_settle(b->store); /* metadata changes still being fsynced: completed (may make partitions) */
    topics_settle(b); /* partitions being made: opened, and the requests waiting for them answered */
    mstore_etcd_leave(b->store); /* deregistered first: nothing is elected onto this node any more */
    net_server_stop_listening(b->server);
    metrics_exporter_stop();
    fetch_wait_shutdown(b);
    quota_shutdown(b);
    log_cleaner_stop(); /* running cleans abort before the logs close */
    group_coord_shutdown(b->groups);
    txn_manager_shutdown(b->txns);
    txn_verify_shutdown(); /* produce requests waiting for a verification are answered */
    net_server_free(b->server, 2000);
    wpool_free(b->appends); /* no request runs any more */
    broker_sasl_stop(b); /* after the connections: closing them drops their sessions */
    broker_authz_stop(b);
    broker_listeners_free(b);
    group_coord_free(b->groups);
    txn_manager_free(b->txns);
    syncer_stop(); /* new partitions' directories are durable before the logs close */
    ptrim_stop();
    mstore_close(b->store); /* leaves the cluster: etcd forgets this node */
    topics_close_all(b);
    topics_mark_clean_shutdown(b);
    mimage_free(b->image);
    loop_free(b->loop);
    if (sfd >= 0) close(sfd);
    log_info(COMPONENT, "[KafkaRaftServer nodeId=%d] shut down completed", b->cfg.node_id);
    broker_config_free(&b->cfg);
    free(b);
    log_files_close();
    return 0;
}
