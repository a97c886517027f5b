/* render.c - the text of GET /metrics (Prometheus text format 0.0.4).
 *
 * Names and labels are what the Prometheus JMX exporter's Kafka rules
 * (kafka-2_0_0.yml, lowercaseOutputName) make of Kafka's MBeans: a
 * `...PerSec` meter's Count becomes `kafka_<domain>_<type>_<name>_total`, a
 * gauge's Value `kafka_<domain>_<type>_<name>`, a histogram's Count
 * `..._count` and its NNthPercentile `...{quantile="0.NN"}`; MBean keys
 * become labels. Consumer lag is named as kafka-exporter names it. Every
 * family is written as one block (HELP, TYPE, samples), as the format
 * requires. Reads the broker's state on the loop thread; writes only into
 * out and a scratch array kept between scrapes.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/dispatch.h"
#include "group/gcoord.h"
#include "metrics/exporter.h"
#include "metrics/metrics.h"
#include "net/server.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "storage/page_trim.h"

static topic_rt **scratch;
static int scratch_cap;

/* Kept between scrapes (see render_logs). */
typedef struct log_row {
    int32_t topic;  /* index into the topic list */
    int32_t part;
    int64_t v[4];   /* size, log start, log end, segments */
} log_row;

static log_row *log_rows;
static int log_rows_cap;
static mbuf prefix; /* `name{topic="T",partition="` of the topic being written */

void metrics_render_free(void) {
    free(scratch);
    scratch = NULL;
    scratch_cap = 0;
    free(log_rows);
    log_rows = NULL;
    log_rows_cap = 0;
    mb_free(&prefix);
}

static void family(mbuf *o, const char *name, const char *type, const char *help) {
    mb_str(o, "# HELP ");
    mb_str(o, name);
    mb_ch(o, ' ');
    mb_str(o, help);
    mb_str(o, "\n# TYPE ");
    mb_str(o, name);
    mb_ch(o, ' ');
    mb_str(o, type);
    mb_ch(o, '\n');
}

static void sample_u64(mbuf *o, const char *name, uint64_t v) {
    mb_str(o, name);
    mb_ch(o, ' ');
    mb_u64(o, v);
    mb_ch(o, '\n');
}

/* name{label="value"  (the caller adds more labels, then closes with end_labels) */
static void open_labels(mbuf *o, const char *name, const char *label, const char *value, size_t vlen) {
    mb_str(o, name);
    mb_ch(o, '{');
    mb_str(o, label);
    mb_str(o, "=\"");
    mb_label_value(o, value, vlen);
    mb_ch(o, '"');
}

static void add_label(mbuf *o, const char *label, const char *value, size_t vlen) {
    mb_ch(o, ',');
    mb_str(o, label);
    mb_str(o, "=\"");
    mb_label_value(o, value, vlen);
    mb_ch(o, '"');
}

static void add_label_i64(mbuf *o, const char *label, int64_t v) {
    mb_ch(o, ',');
    mb_str(o, label);
    mb_str(o, "=\"");
    mb_i64(o, v);
    mb_ch(o, '"');
}

static void end_labels_i64(mbuf *o, int64_t v) {
    mb_str(o, "} ");
    mb_i64(o, v);
    mb_ch(o, '\n');
}

/* The topics, from the registry into the scratch array. */
static int list_topics(broker *b) {
    int n = broker_topic_count(b);
    if (n > scratch_cap) {
        int cap = n + n / 2 + 16;
        topic_rt **s = realloc(scratch, sizeof *s * (size_t)cap);
        if (!s) return 0;
        scratch = s;
        scratch_cap = cap;
    }
    return broker_topics_list(b, scratch, scratch_cap);
}

/* ---- BrokerTopicMetrics ---- */

typedef struct topic_family {
    const char *name;
    size_t off; /* of the counter in topic_metrics */
    const char *help;
} topic_family;

static const topic_family topic_families[] = {
    {"kafka_server_brokertopicmetrics_messagesin_total", offsetof(topic_metrics, messages_in),
     "Records appended as leader (kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec)"},
    {"kafka_server_brokertopicmetrics_bytesin_total", offsetof(topic_metrics, bytes_in),
     "Record bytes appended as leader (BytesInPerSec)"},
    {"kafka_server_brokertopicmetrics_bytesout_total", offsetof(topic_metrics, bytes_out),
     "Record bytes sent to consumers (BytesOutPerSec)"},
    {"kafka_server_brokertopicmetrics_failedproducerequests_total", offsetof(topic_metrics, failed_produce),
     "Partition appends that failed (FailedProduceRequestsPerSec)"},
    {"kafka_server_brokertopicmetrics_failedfetchrequests_total", offsetof(topic_metrics, failed_fetch),
     "Partition reads that failed (FailedFetchRequestsPerSec)"},
    {"kafka_server_brokertopicmetrics_totalproducerequests_total", offsetof(topic_metrics, total_produce),
     "Partition appends requested (TotalProduceRequestsPerSec)"},
    {"kafka_server_brokertopicmetrics_totalfetchrequests_total", offsetof(topic_metrics, total_fetch),
     "Partition reads requested by consumers (TotalFetchRequestsPerSec)"},
};

static uint64_t topic_counter(const topic_metrics *m, size_t off) {
    return *(const uint64_t *)((const char *)m + off);
}

static void render_topic_metrics(mbuf *o, topic_rt **ts, int n) {
    for (size_t f = 0; f < sizeof topic_families / sizeof topic_families[0]; f++) {
        const topic_family *tf = &topic_families[f];
        family(o, tf->name, "counter", tf->help);
        sample_u64(o, tf->name, topic_counter(&metrics_all_topics, tf->off));
        for (int i = 0; i < n; i++) {
            open_labels(o, tf->name, "topic", ts[i]->name, strlen(ts[i]->name));
            end_labels_i64(o, (int64_t)topic_counter(&ts[i]->metrics, tf->off));
        }
    }
}

/* ---- RequestMetrics ---- */

static const char *request_name(int slot) {
    if (slot == METRICS_FETCH_CONSUMER) return "FetchConsumer";
    if (slot == METRICS_FETCH_FOLLOWER) return "FetchFollower";
    const kapi_info *info = kapi_lookup((int16_t)slot);
    return info ? info->name : NULL;
}

/* Is the API served at all (any version advertised)? */
static bool served(int slot) {
    if (slot >= METRICS_API_SLOTS) return true;
    const kapi_info *info = kapi_lookup((int16_t)slot);
    if (!info) return false;
    for (int v = info->min_version; v <= info->max_version; v++)
        if (dispatch_api_supported((int16_t)slot, (int16_t)v)) return true;
    return false;
}

typedef struct time_family {
    const char *name;
    const char *count_name;
    size_t off; /* of the histogram in req_metrics; (size_t)-1: Samsa has no such wait (always 0) */
    const char *help;
} time_family;

static const time_family time_families[] = {
    {"kafka_network_requestmetrics_totaltimems", "kafka_network_requestmetrics_totaltimems_count",
     offsetof(req_metrics, total), "Request time in ms, receipt to answer sent (TotalTimeMs)"},
    {"kafka_network_requestmetrics_requestqueuetimems", "kafka_network_requestmetrics_requestqueuetimems_count",
     (size_t)-1, "Time in the request queue in ms; the event loop has none (RequestQueueTimeMs)"},
    {"kafka_network_requestmetrics_localtimems", "kafka_network_requestmetrics_localtimems_count",
     offsetof(req_metrics, local), "Time in the handler in ms (LocalTimeMs)"},
    {"kafka_network_requestmetrics_remotetimems", "kafka_network_requestmetrics_remotetimems_count",
     offsetof(req_metrics, remote), "Time waiting for replicas, data or other requests in ms (RemoteTimeMs)"},
    {"kafka_network_requestmetrics_responsequeuetimems", "kafka_network_requestmetrics_responsequeuetimems_count",
     (size_t)-1, "Time in the response queue in ms; the event loop has none (ResponseQueueTimeMs)"},
    {"kafka_network_requestmetrics_responsesendtimems", "kafka_network_requestmetrics_responsesendtimems_count",
     offsetof(req_metrics, send), "Time handing the answer to the socket in ms (ResponseSendTimeMs)"},
};

static const struct {
    double q;
    const char *label;
} quantiles[] = {{0.50, "0.50"}, {0.75, "0.75"}, {0.95, "0.95"}, {0.99, "0.99"}, {0.999, "0.999"}};

static void render_request_metrics(mbuf *o, uint32_t window) {
    const char *rq = "kafka_network_requestmetrics_requests_total";
    family(o, rq, "counter", "Requests answered, by API and version (RequestsPerSec)");
    for (int s = 0; s < METRICS_REQ_SLOTS; s++) {
        const char *name = request_name(s);
        if (!name) continue;
        for (int v = 0; v <= METRICS_MAX_VERSION; v++) {
            uint64_t c = metrics_requests[s].requests[v];
            if (!c) continue;
            open_labels(o, rq, "request", name, strlen(name));
            add_label_i64(o, "version", v);
            end_labels_i64(o, (int64_t)c);
        }
    }
    const char *er = "kafka_network_requestmetrics_errors_total";
    family(o, er, "counter", "Error codes in answers, by API and error (ErrorsPerSec)");
    for (int s = 0; s < METRICS_API_SLOTS; s++) {
        const char *name = request_name(s);
        if (!name) continue;
        for (int e = 0; e < METRICS_ERROR_SLOTS; e++) {
            uint64_t c = metrics_requests[s].errors[e];
            if (!c) continue;
            const char *ename = kerr_name((int16_t)(e - 1));
            open_labels(o, er, "request", name, strlen(name));
            add_label(o, "error", ename, strlen(ename));
            end_labels_i64(o, (int64_t)c);
        }
    }
    for (size_t f = 0; f < sizeof time_families / sizeof time_families[0]; f++) {
        const time_family *tf = &time_families[f];
        family(o, tf->name, "gauge", tf->help);
        for (int s = 0; s < METRICS_REQ_SLOTS; s++) {
            const char *name = request_name(s);
            if (!name || !served(s)) continue;
            const histo *h = tf->off == (size_t)-1 ? NULL
                                                    : (const histo *)((const char *)&metrics_requests[s] + tf->off);
            for (size_t q = 0; q < sizeof quantiles / sizeof quantiles[0]; q++) {
                open_labels(o, tf->name, "request", name, strlen(name));
                add_label(o, "quantile", quantiles[q].label, strlen(quantiles[q].label));
                mb_str(o, "} ");
                mb_milli(o, h ? histo_quantile(h, quantiles[q].q, window) : 0);
                mb_ch(o, '\n');
            }
        }
        family(o, tf->count_name, "counter", tf->help);
        for (int s = 0; s < METRICS_REQ_SLOTS; s++) {
            const char *name = request_name(s);
            if (!name || !served(s)) continue;
            open_labels(o, tf->count_name, "request", name, strlen(name));
            end_labels_i64(o, (int64_t)metrics_requests[s].total.count);
        }
    }
}

/* ---- ReplicaManager, controller, logs ---- */

static void gauge(mbuf *o, const char *name, const char *help, int64_t v) {
    family(o, name, "gauge", help);
    mb_str(o, name);
    mb_ch(o, ' ');
    mb_i64(o, v);
    mb_ch(o, '\n');
}

static void render_replica_manager(mbuf *o, topic_rt **ts, int n) {
    int64_t parts = 0, leaders = 0, under = 0, under_min = 0, at_min = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < ts[i]->nparts; j++) {
            const partition *p = ts[i]->parts[j];
            if (!p) continue;
            parts++;
            if (!p->is_leader) continue;
            leaders++;
            /* Partition.isUnderReplicated / isUnderMinIsr / isAtMinIsr */
            if (p->repl.nisr < p->repl.nreplicas) under++;
            if (p->repl.nisr < ts[i]->cfg.min_insync_replicas) under_min++;
            if (p->repl.nisr == ts[i]->cfg.min_insync_replicas) at_min++;
        }
    }
    gauge(o, "kafka_server_replicamanager_partitioncount", "Partitions with a replica on this broker (PartitionCount)",
          parts);
    gauge(o, "kafka_server_replicamanager_leadercount", "Partitions this broker leads (LeaderCount)", leaders);
    gauge(o, "kafka_server_replicamanager_underreplicatedpartitions",
          "Led partitions whose ISR is smaller than their replicas (UnderReplicatedPartitions)", under);
    gauge(o, "kafka_server_replicamanager_underminisrpartitioncount",
          "Led partitions whose ISR is below min.insync.replicas (UnderMinIsrPartitionCount)", under_min);
    gauge(o, "kafka_server_replicamanager_atminisrpartitioncount",
          "Led partitions whose ISR is at min.insync.replicas (AtMinIsrPartitionCount)", at_min);
    gauge(o, "kafka_server_replicamanager_offlinereplicacount",
          "Replicas on failed log directories (OfflineReplicaCount)", 0);
}

static void render_controller(mbuf *o, broker *b) {
    bool active = broker_controller_id(b) == broker_node_id(b);
    int64_t offline = 0, topics = 0, partitions = 0;
    if (active) {
        for (int i = 0; i < b->image->ntopics; i++) {
            const mtopic *t = b->image->topics[i];
            if (!t) continue;
            topics++;
            partitions += t->nparts;
            for (int j = 0; j < t->nparts; j++)
                if (t->parts[j].leader < 0) offline++;
        }
    }
    gauge(o, "kafka_controller_kafkacontroller_activecontrollercount",
          "1 on the active controller (ActiveControllerCount)", active ? 1 : 0);
    gauge(o, "kafka_controller_kafkacontroller_offlinepartitionscount",
          "Partitions without a leader, on the active controller (OfflinePartitionsCount)", offline);
    gauge(o, "kafka_controller_kafkacontroller_globaltopiccount", "Topics, on the active controller (GlobalTopicCount)",
          topics);
    gauge(o, "kafka_controller_kafkacontroller_globalpartitioncount",
          "Partitions, on the active controller (GlobalPartitionCount)", partitions);
}

/* One pass over the partitions collects what the log families need (their
 * structs are touched once, not once per family); the families are then
 * written from log_rows, kept between scrapes. */
static int collect_logs(topic_rt **ts, int n) {
    int count = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ts[i]->nparts; j++)
            if (ts[i]->parts[j] && ts[i]->parts[j]->log) count++;
    if (count > log_rows_cap) {
        int cap = count + count / 2 + 16;
        log_row *r = realloc(log_rows, sizeof *r * (size_t)cap);
        if (!r) return 0;
        log_rows = r;
        log_rows_cap = cap;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ts[i]->nparts && k < count; j++) {
            const partition *p = ts[i]->parts[j];
            if (!p || !p->log) continue;
            log_rows[k].topic = i;
            log_rows[k].part = j;
            log_rows[k].v[0] = plog_size(p->log);
            log_rows[k].v[1] = plog_start_offset(p->log);
            log_rows[k].v[2] = plog_end_offset(p->log);
            log_rows[k].v[3] = plog_segment_count(p->log);
            k++;
        }
    return k;
}

static void render_logs(mbuf *o, topic_rt **ts, int n) {
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"kafka_log_log_size", "Bytes in the partition's segments (kafka.log:type=Log,name=Size)"},
        {"kafka_log_log_logstartoffset", "The partition's log start offset (LogStartOffset)"},
        {"kafka_log_log_logendoffset", "The partition's log end offset (LogEndOffset)"},
        {"kafka_log_log_numlogsegments", "Segments in the partition's log (NumLogSegments)"},
    };
    int rows = collect_logs(ts, n);
    for (int f = 0; f < 4; f++) {
        family(o, fams[f].name, "gauge", fams[f].help);
        int cur = -1;
        for (int k = 0; k < rows; k++) {
            const log_row *r = &log_rows[k];
            if (r->topic != cur) {
                cur = r->topic;
                prefix.len = 0;
                prefix.err = false;
                open_labels(&prefix, fams[f].name, "topic", ts[cur]->name, strlen(ts[cur]->name));
                mb_str(&prefix, ",partition=\"");
                if (prefix.err) break;
            }
            mb_mem(o, prefix.p, prefix.len);
            mb_u64(o, (uint64_t)r->part);
            mb_mem(o, "\"} ", 3);
            mb_i64(o, r->v[f]);
            mb_ch(o, '\n');
        }
    }
}

/* ---- network ---- */

/* value / 1e9 with six decimals */
static void mb_nano(mbuf *o, uint64_t v) {
    mb_u64(o, v / 1000000000);
    char frac[7] = {'.'};
    uint64_t f = v % 1000000000 / 1000;
    for (int i = 6; i >= 1; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    mb_mem(o, frac, sizeof frac);
}

static void render_network(mbuf *o, broker *b) {
    /* the network threads are Kafka's network processors; the broker's loop
     * is its request handler pool */
    uint64_t idle = b->loop ? (uint64_t)loop_idle_ns(b->loop) : 0;
    uint64_t age = b->loop ? (uint64_t)loop_age_ns(b->loop) : 1;
    uint64_t shares[2] = {b->server ? (uint64_t)(net_server_network_idle_share(b->server) * 1e9) : 0,
                          age ? (uint64_t)((double)idle / (double)age * 1e9) : 0};
    static const char *const idle_names[2] = {"kafka_network_socketserver_networkprocessoravgidle_percent",
                                              "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent"};
    static const char *const idle_helps[2] = {
        "Average share of time the network threads waited for work since start, 0-1 "
        "(NetworkProcessorAvgIdlePercent MeanRate)",
        "Share of time the request loop waited for work since start, 0-1 (RequestHandlerAvgIdlePercent MeanRate)"};
    for (int i = 0; i < 2; i++) {
        family(o, idle_names[i], "gauge", idle_helps[i]);
        mb_str(o, idle_names[i]);
        mb_ch(o, ' ');
        mb_nano(o, shares[i]);
        mb_ch(o, '\n');
    }
    family(o, "samsa_loop_idle_seconds_total", "counter",
           "Time the request loop waited for work (rate() gives its recent idle share)");
    mb_str(o, "samsa_loop_idle_seconds_total ");
    mb_nano(o, idle);
    mb_ch(o, '\n');
    family(o, "samsa_log_page_cache_trimmed_bytes_total", "counter",
           "Log bytes written back and dropped from the page cache behind log.page.cache.window.bytes");
    mb_str(o, "samsa_log_page_cache_trimmed_bytes_total ");
    mb_u64(o, ptrim_bytes_trimmed());
    mb_ch(o, '\n');

    /* Kafka's socket-server-metrics, one sample per listener (counted where connections are accepted:
     * networkProcessor 0) */
    static const struct {
        const char *name, *type, *help;
    } conn_families[3] = {
        {"kafka_server_socket_server_metrics_connection_count", "gauge",
         "Open connections (kafka.server:type=socket-server-metrics,attribute connection-count)"},
        {"kafka_server_socket_server_metrics_connection_creation_total", "counter",
         "Connections accepted (kafka.server:type=socket-server-metrics,attribute connection-creation-total)"},
        {"kafka_server_socket_server_metrics_connection_close_total", "counter",
         "Connections closed (kafka.server:type=socket-server-metrics,attribute connection-close-total)"},
    };
    int nlisteners = b->server ? net_server_listener_count(b->server) : 0;
    for (int f = 0; f < 3; f++) {
        family(o, conn_families[f].name, conn_families[f].type, conn_families[f].help);
        for (int i = 0; i < nlisteners; i++) {
            const char *listener = "";
            const net_listener_stats *st = net_server_listener_stats(b->server, i, &listener);
            if (!st) continue;
            open_labels(o, conn_families[f].name, "listener", listener, strlen(listener));
            add_label(o, "networkProcessor", "0", 1);
            end_labels_i64(o, f == 0 ? st->connections : (int64_t)(f == 1 ? st->created : st->closed));
        }
    }
}

/* ---- group coordinator and consumer lag ---- */

static void render_groups(mbuf *o, broker *b) {
    const gmgr *m = b->groups ? &b->groups->mgr : NULL;
    int64_t by_state[GROUP_DEAD + 1] = {0}, groups = 0, offsets = 0;
    for (int i = 0; m && i < m->nbuckets; i++)
        for (const kgroup *g = m->buckets[i]; g; g = g->next) {
            groups++;
            if (g->state >= 0 && g->state <= GROUP_DEAD) by_state[g->state]++;
            offsets += g->noffsets;
        }
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroups", "Groups this coordinator owns (NumGroups)",
          groups);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroupspreparingrebalance",
          "Groups in PreparingRebalance (NumGroupsPreparingRebalance)", by_state[GROUP_PREPARING_REBALANCE]);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroupscompletingrebalance",
          "Groups in CompletingRebalance (NumGroupsCompletingRebalance)", by_state[GROUP_COMPLETING_REBALANCE]);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroupsstable", "Groups in Stable (NumGroupsStable)",
          by_state[GROUP_STABLE]);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroupsdead", "Groups in Dead (NumGroupsDead)",
          by_state[GROUP_DEAD]);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numgroupsempty", "Groups in Empty (NumGroupsEmpty)",
          by_state[GROUP_EMPTY]);
    gauge(o, "kafka_coordinator_group_groupmetadatamanager_numoffsets", "Committed offsets held (NumOffsets)",
          offsets);

    const char *mem = "kafka_consumergroup_members";
    family(o, mem, "gauge", "Members of the group (kafka-exporter)");
    for (int i = 0; m && i < m->nbuckets; i++)
        for (const kgroup *g = m->buckets[i]; g; g = g->next) {
            open_labels(o, mem, "consumergroup", g->id, strlen(g->id));
            end_labels_i64(o, g->nmembers);
        }
    /* committed offset and lag (the high watermark minus the committed
     * offset, as kafka-consumer-groups --describe shows it), for the
     * partitions with a replica on this broker */
    static const char *const fams[2] = {"kafka_consumergroup_current_offset", "kafka_consumergroup_lag"};
    static const char *const helps[2] = {"Committed offset of the group (kafka-exporter)",
                                         "High watermark minus committed offset (kafka-exporter)"};
    for (int f = 0; f < 2; f++) {
        family(o, fams[f], "gauge", helps[f]);
        for (int i = 0; m && i < m->nbuckets; i++)
            for (const kgroup *g = m->buckets[i]; g; g = g->next) {
                size_t glen = strlen(g->id);
                for (int k = 0; k < g->nobuckets; k++)
                    for (const goffset *off = g->obuckets[k]; off; off = off->next) {
                        int64_t v = off->offset;
                        if (f == 1) {
                            partition *p = broker_partition(b, kstr_from(off->topic), off->partition);
                            if (!p) continue;
                            v = p->high_watermark - off->offset;
                        }
                        open_labels(o, fams[f], "consumergroup", g->id, glen);
                        add_label(o, "topic", off->topic, strlen(off->topic));
                        add_label_i64(o, "partition", off->partition);
                        end_labels_i64(o, v);
                    }
            }
    }
}

/* ---- process ---- */

static int64_t start_time_ms;

static long read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (long)n;
}

static int64_t count_open_fds(void) {
    /* Linux 6.2+ reports the count as the directory's size: listing 20,000
     * descriptors costs the kernel a dentry each, half a scrape's time */
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) return (int64_t)st.st_size;
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096];
    int64_t n = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0) break;
        for (long pos = 0; pos < got;) {
            const struct dirent64 *d = (const struct dirent64 *)(buf + pos);
            if (d->d_name[0] != '.') n++;
            pos += d->d_reclen;
        }
    }
    close(fd);
    return n - 1; /* the descriptor reading the directory */
}

static void render_process(mbuf *o) {
    char stat[1024];
    uint64_t utime = 0, stime = 0, vsize = 0, rss = 0;
    if (read_small("/proc/self/stat", stat, sizeof stat) > 0) {
        const char *p = strrchr(stat, ')');
        /* fields after the command: 3 state ... 14 utime 15 stime ... 23 vsize 24 rss */
        for (int field = 2; p && *p; field++) {
            p = strchr(p, ' ');
            if (!p) break;
            p++;
            if (field == 13) utime = strtoull(p, NULL, 10);
            else if (field == 14) stime = strtoull(p, NULL, 10);
            else if (field == 22) vsize = strtoull(p, NULL, 10);
            else if (field == 23) {
                rss = strtoull(p, NULL, 10);
                break;
            }
        }
    }
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    mb_str(o, "process_cpu_seconds_total ");
    mb_milli(o, tick > 0 ? (utime + stime) * 1000 / (uint64_t)tick : 0);
    mb_ch(o, '\n');
    gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.", (int64_t)rss * page);
    gauge(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (int64_t)vsize);
    gauge(o, "process_open_fds", "Number of open file descriptors.", count_open_fds());
    struct rlimit rl;
    int64_t max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (int64_t)rl.rlim_cur : -1;
    gauge(o, "process_max_fds", "Maximum number of open file descriptors.", max_fds);
    family(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    mb_str(o, "process_start_time_seconds ");
    mb_milli(o, (uint64_t)start_time_ms);
    mb_ch(o, '\n');
}

/* How long the previous render took (the loop is busy for that long). */
static uint64_t last_render_us;

void metrics_render(broker *b, mbuf *out) {
    int64_t t0 = metrics_now_ns();
    if (!start_time_ms) start_time_ms = wall_clock_ms() - (monotonic_ms() - b->started_ms);
    int n = list_topics(b);
    uint32_t window = metrics_window_of(metrics_now_ns());
    render_topic_metrics(out, scratch, n);
    render_request_metrics(out, window);
    render_replica_manager(out, scratch, n);
    render_controller(out, b);
    render_logs(out, scratch, n);
    render_network(out, b);
    render_groups(out, b);
    render_process(out);
    family(out, "samsa_metrics_render_seconds", "gauge",
           "Time the previous scrape of this endpoint took to render, in seconds (the event loop was busy for it)");
    mb_str(out, "samsa_metrics_render_seconds ");
    mb_u64(out, last_render_us / 1000000);
    char frac[8] = {'.', (char)('0' + last_render_us / 100000 % 10), (char)('0' + last_render_us / 10000 % 10),
                    (char)('0' + last_render_us / 1000 % 10), (char)('0' + last_render_us / 100 % 10),
                    (char)('0' + last_render_us / 10 % 10), (char)('0' + last_render_us % 10), '\n'};
    mb_mem(out, frac, sizeof frac);
    last_render_us = (uint64_t)(metrics_now_ns() - t0) / 1000;
}
