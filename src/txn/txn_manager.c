/* txn_manager.c - see txn_manager.h. The decisions are txn_coord.c's; this
 * file keeps the table of transactional ids, writes __transaction_state,
 * follows its leadership, sends the markers and runs the timers. */
#include "txn/txn_manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "net/kafka_client.h"
#include "protocol/batch_header.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "txn/txn_log.h"
#include "util/log.h"
#include "util/props.h"

#define LOGC "kafka.coordinator.transaction.TransactionCoordinator"
#define LOGS "kafka.coordinator.transaction.TransactionStateManager"
#define LOGM "kafka.coordinator.transaction.TransactionMarkerChannelManager"

#define NBUCKETS 4096
#define MARKER_RETRY_MS 100        /* resend markers owed after this */
#define MARKER_FATAL_RETRY_MS 1000 /* an answer Kafka treats as a bug: try again, slowly */
#define COMPLETE_RETRY_MS 200      /* a Complete* write that failed retriably */

typedef enum tm_part_state { TM_PART_NONE, TM_PART_LOADING, TM_PART_LOADED } tm_part_state;

typedef struct tm_part {
    tm_part_state state;
    int32_t epoch;        /* leader epoch = coordinator epoch */
    uint32_t incarnation; /* changes at every load/unload */
    int64_t load_next;    /* loading cursor, and the end offset captured at the start */
    int64_t load_end;
    int64_t load_started_ms;
} tm_part;

/* One transactional id this coordinator owns. */
typedef struct tm_txn {
    txn_meta *m;
    int32_t part;
    struct tm_txn *next;        /* hash chain */
    int markers_inflight;       /* WriteTxnMarkers requests out */
    loop_timer_id marker_timer; /* resend scheduled; 0 none */
    struct txn_manager *tm;
} tm_txn;

/* A broker markers are sent to. */
typedef struct tm_node {
    int32_t id;
    char host[256];
    int port;
    kc_conn *conn;
    struct tm_marker *queue, **tail; /* markers waiting for the request in flight */
    bool busy;                       /* one WriteTxnMarkers request in flight */
    struct tm_node *next;
} tm_node;

/* A write waiting for replication. */
typedef struct tm_write {
    struct txn_manager *tm; /* NULL once answered at shutdown */
    char *tid;
    size_t tid_len;
    int32_t part;
    uint32_t incarnation;
    int32_t coord_epoch;
    txn_decision d;
    txn_done_fn done; /* NULL: no client waits (markers' completion, timeouts, expiry) */
    void *arg;
    loop_timer_id retry_timer;
    struct tm_write *prev, *next;
} tm_write;

struct txn_manager {
    broker *b;
    txn_config cfg;
    tm_txn *buckets[NBUCKETS];
    tm_part *parts;
    int32_t nparts;
    kuuid topic_id;
    uint32_t next_incarnation;
    bool topic_creating;
    bool shut;
    loop_timer_id abort_timer, expire_timer;
    loop_timer_id load_timer; /* continues loading partitions; 0 = idle */
    tm_write *writes;
    tm_node *nodes;
};

/* ---- helpers ---- */

static int64_t cfg_ms(txn_manager *tm, const char *key, int64_t dflt) {
    const char *v = props_get(&tm->b->cfg.raw, key);
    long long n = v ? strtoll(v, NULL, 10) : 0;
    return n > 0 ? n : dflt;
}

static uint32_t hash_tid(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h % NBUCKETS;
}

static tm_txn *lookup(txn_manager *tm, const char *tid, size_t n) {
    for (tm_txn *x = tm->buckets[hash_tid(tid, n)]; x; x = x->next)
        if (strlen(x->m->transactional_id) == n && memcmp(x->m->transactional_id, tid, n) == 0) return x;
    return NULL;
}

static tm_txn *insert(txn_manager *tm, txn_meta *m, int32_t part) {
    tm_txn *x = calloc(1, sizeof *x);
    if (!x) abort();
    x->m = m;
    x->part = part;
    x->tm = tm;
    uint32_t h = hash_tid(m->transactional_id, strlen(m->transactional_id));
    x->next = tm->buckets[h];
    tm->buckets[h] = x;
    return x;
}

static void txn_free(txn_manager *tm, tm_txn *x) {
    if (x->marker_timer) loop_timer_cancel(tm->b->loop, x->marker_timer);
    txn_meta_free(x->m);
    free(x);
}

static void remove_txn(txn_manager *tm, tm_txn *x) {
    tm_txn **pp = &tm->buckets[hash_tid(x->m->transactional_id, strlen(x->m->transactional_id))];
    while (*pp && *pp != x) pp = &(*pp)->next;
    if (*pp) *pp = x->next;
    txn_free(tm, x);
}

static topic_rt *state_topic(txn_manager *tm) { return broker_topic(tm->b, KSTR_LIT(TXN_STATE_TOPIC)); }

/* The id's partition if this node owns it: NULL with *err NOT_COORDINATOR
 * or COORDINATOR_LOAD_IN_PROGRESS otherwise (Kafka's getTransactionState). */
static tm_part *owned_part(txn_manager *tm, const char *tid, size_t n, int32_t *index, int16_t *err) {
    topic_rt *t = state_topic(tm);
    *err = KERR_NONE;
    if (!t || t->nparts <= 0 || t->nparts != tm->nparts) {
        *err = KERR_NOT_COORDINATOR;
        return NULL;
    }
    int32_t i = txn_partition_for(tid, n, tm->nparts);
    tm_part *p = &tm->parts[i];
    if (p->state == TM_PART_LOADING) *err = KERR_COORDINATOR_LOAD_IN_PROGRESS;
    else if (p->state != TM_PART_LOADED) *err = KERR_NOT_COORDINATOR;
    if (*err) return NULL;
    *index = i;
    return p;
}

/* ---- __transaction_state topic ---- */

static void topic_created(broker *b, void *arg, int16_t error) {
    (void)b;
    txn_manager *tm = arg;
    tm->topic_creating = false;
    if (error && error != KERR_TOPIC_ALREADY_EXISTS)
        log_warn("kafka.server.DefaultAutoTopicCreationManager", "Cannot create %s (error %s)", TXN_STATE_TOPIC,
                 kerr_name(error));
    else if (!error)
        log_info("kafka.server.DefaultAutoTopicCreationManager", "Created internal topic %s with %d partitions",
                 TXN_STATE_TOPIC, tm->b->cfg.transaction_state_log_num_partitions);
}

/* Created on first FindCoordinator, as Kafka's AutoTopicCreationManager
 * with TransactionStateManager.transactionTopicConfigs. */
static int16_t ensure_topic(txn_manager *tm) {
    broker *b = tm->b;
    if (state_topic(tm)) return KERR_NONE;
    if (tm->topic_creating) return KERR_COORDINATOR_NOT_AVAILABLE;
    char seg[32], isr[16];
    snprintf(seg, sizeof seg, "%lld", (long long)cfg_ms(tm, "transaction.state.log.segment.bytes", 104857600));
    snprintf(isr, sizeof isr, "%d", b->cfg.transaction_state_log_min_isr);
    kstr keys[5] = {KSTR_LIT("unclean.leader.election.enable"), KSTR_LIT("compression.type"),
                    KSTR_LIT("cleanup.policy"), KSTR_LIT("min.insync.replicas"), KSTR_LIT("segment.bytes")};
    kstr vals[5] = {KSTR_LIT("false"), KSTR_LIT("uncompressed"), KSTR_LIT("compact"), kstr_from(isr), kstr_from(seg)};
    karena a;
    karena_init(&a, 0);
    const char *msg = NULL;
    tm->topic_creating = true;
    int16_t e = broker_create_topic(b, KSTR_LIT(TXN_STATE_TOPIC), b->cfg.transaction_state_log_num_partitions,
                                    b->cfg.transaction_state_log_replication_factor, NULL, keys, vals, 5, false, &msg,
                                    &a, topic_created, tm);
    if (e) {
        tm->topic_creating = false;
        if (e != KERR_TOPIC_ALREADY_EXISTS)
            log_warn("kafka.server.DefaultAutoTopicCreationManager", "Cannot create %s (error %s: %s)",
                     TXN_STATE_TOPIC, kerr_name(e), msg ? msg : "");
    }
    karena_free(&a);
    return state_topic(tm) ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
}

int16_t txn_manager_coordinator(broker *b, const char *tid, size_t tid_len, broker_node *out) {
    txn_manager *tm = b->txns;
    if (!tm) return KERR_COORDINATOR_NOT_AVAILABLE;
    int16_t e = ensure_topic(tm);
    if (e) return e;
    topic_rt *t = state_topic(tm);
    const mpartition *mp = t && t->nparts > 0 ? broker_mpartition(b, t, txn_partition_for(tid, tid_len, t->nparts))
                                              : NULL;
    if (!mp || mp->leader < 0 || !broker_node_lookup(b, mp->leader, out) ||
        (mp->leader == broker_node_id(b) && broker_partition_making(t, mp->partition_id)))
        return KERR_COORDINATOR_NOT_AVAILABLE; /* this node's partition is still being made (topics.h) */
    /* InitProducerId follows: have its producer id ready */
    if (out->id == broker_node_id(b)) broker_prefetch_producer_ids(b);
    return KERR_NONE;
}

/* ---- writes ---- */

static void write_unlink(tm_write *w) {
    if (w->prev) w->prev->next = w->next;
    else w->tm->writes = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void write_free(tm_write *w) {
    txn_decision_free(&w->d);
    free(w->tid);
    free(w);
}

static void start_markers(txn_manager *tm, tm_txn *x);
static void write_issue(tm_write *w);

static void retry_write_fire(kloop *l, void *arg) {
    (void)l;
    tm_write *w = arg;
    w->retry_timer = 0;
    write_unlink(w);
    write_issue(w);
}

/* The write's replication finished (or failed before it started). */
static void write_finished(tm_write *w, int16_t err) {
    txn_manager *tm = w->tm;
    write_unlink(w);
    tm_txn *x = lookup(tm, w->tid, w->tid_len);
    bool same = x && w->part < tm->nparts && tm->parts[w->part].incarnation == w->incarnation &&
                tm->parts[w->part].state == TM_PART_LOADED;
    if (!same) {
        /* the partition was dropped (maybe reloaded, reading this very
         * record) meanwhile: the table is no longer this write's to change */
        if (w->done) w->done(w->arg, KERR_NOT_COORDINATOR, -1, -1);
        write_free(w);
        return;
    }
    txn_append_outcome o;
    txn_append_done(x->m, &w->d, err, w->coord_epoch, wall_clock_ms(), &o);
    if (err) log_info(LOGS, "Appending transaction state of %s failed: %s (answered %s)", x->m->transactional_id,
                      kerr_name(err), kerr_name(o.err));
    if (o.retry) {
        w->prev = NULL;
        w->next = tm->writes;
        if (tm->writes) tm->writes->prev = w;
        tm->writes = w;
        w->retry_timer = loop_timer_add(tm->b->loop, COMPLETE_RETRY_MS, retry_write_fire, w);
        return;
    }
    txn_done_fn done = w->done;
    void *arg = w->arg;
    if (o.remove) {
        log_info(LOGS, "Removed expired transactional id %s", x->m->transactional_id);
        remove_txn(tm, x);
        x = NULL;
    }
    if (o.send_markers && x) start_markers(tm, x);
    write_free(w);
    if (done) done(arg, o.err, o.producer_id, o.producer_epoch);
}

static void write_replicated(broker *b, void *arg, int16_t error) {
    (void)b;
    tm_write *w = arg;
    if (!w->tm) { /* answered at shutdown */
        write_free(w);
        return;
    }
    write_finished(w, error);
}

/* Append w's record to its partition, then wait for replication. */
static void write_issue(tm_write *w) {
    txn_manager *tm = w->tm;
    w->prev = NULL;
    w->next = tm->writes;
    if (tm->writes) tm->writes->prev = w;
    tm->writes = w;
    topic_rt *t = state_topic(tm);
    int16_t e = KERR_NONE;
    partition *p = t ? broker_partition_led(tm->b, t, w->part, &e) : NULL;
    if (!p) {
        write_finished(w, t ? e : KERR_UNKNOWN_TOPIC_OR_PARTITION);
        return;
    }
    kwriter k, v;
    kw_init(&k);
    kw_init(&v);
    txn_log_key(&k, w->tid, w->tid_len);
    bool tomb = w->d.op == TXN_OP_EXPIRE;
    int vrc = tomb ? 0 : txn_log_value(&v, &w->d.transit);
    int64_t first = -1;
    if (k.err || v.err || vrc != 0) {
        e = KERR_UNKNOWN_SERVER_ERROR;
    } else {
        rec_builder rb;
        rec_builder_init(&rb, 0, 0, -1, -1, -1, false, false);
        kbytes kb = {k.buf, (int32_t)k.len};
        kbytes vb = tomb ? (kbytes){NULL, -1} : (kbytes){v.buf, (int32_t)v.len};
        rec_builder_add(&rb, wall_clock_ms(), kb, vb, NULL, 0);
        kwriter bw;
        kw_init(&bw);
        if (rec_builder_finish(&rb, &bw) != 0 || bw.err) e = KERR_UNKNOWN_SERVER_ERROR;
        else e = broker_append_batch(tm->b, p, bw.buf, bw.len, &first);
        rec_builder_free(&rb);
        kw_free(&bw);
    }
    kw_free(&k);
    kw_free(&v);
    if (e) {
        write_finished(w, e);
        return;
    }
    broker_await_replication(tm->b, p, first + 1, (int32_t)cfg_ms(tm, "request.timeout.ms", 30000),
                             write_replicated, w);
}

/* Write d (moved) for x; done answers the client. */
static void write_decision(txn_manager *tm, tm_txn *x, txn_decision *d, txn_done_fn done, void *arg) {
    tm_write *w = calloc(1, sizeof *w);
    if (!w) abort();
    w->tm = tm;
    w->tid_len = strlen(x->m->transactional_id);
    w->tid = strdup(x->m->transactional_id);
    if (!w->tid) abort();
    w->part = x->part;
    w->incarnation = tm->parts[x->part].incarnation;
    w->coord_epoch = tm->parts[x->part].epoch;
    w->d = *d;
    memset(d, 0, sizeof *d);
    w->done = done;
    w->arg = arg;
    write_issue(w);
}

/* ---- markers ---- */

static tm_node *node_conn(txn_manager *tm, int32_t id) {
    broker_node bn;
    if (!broker_peer_lookup(tm->b, id, &bn)) return NULL;
    tm_node *n = tm->nodes;
    while (n && n->id != id) n = n->next;
    if (n && n->conn && (strcmp(n->host, bn.host) != 0 || n->port != bn.port)) {
        kc_conn *c = n->conn;
        n->conn = NULL;
        kc_conn_free(c); /* its callbacks see KC_CANCELLED and retry */
    }
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n) abort();
        n->id = id;
        n->tail = &n->queue;
        n->next = tm->nodes;
        tm->nodes = n;
    }
    if (!n->conn) {
        kc_config cfg;
        kc_config_defaults(&cfg);
        char cid[64];
        snprintf(cid, sizeof cid, "broker-%d-txn-marker-sender", tm->b->cfg.node_id);
        cfg.client_id = cid;
        cfg.request_timeout_ms = (int)cfg_ms(tm, "request.timeout.ms", 30000);
        snprintf(n->host, sizeof n->host, "%s", bn.host);
        n->port = bn.port;
        n->conn = kc_conn_new(tm->b->loop, n->host, n->port, &cfg);
    }
    return n->conn ? n : NULL;
}

/* One transaction's markers queued for (or in) a request to a node. */
typedef struct tm_marker {
    char *tid;
    size_t tid_len;
    uint32_t incarnation;
    int64_t producer_id;
    struct tm_marker *next;
} tm_marker;

/* A WriteTxnMarkers request in flight: its node and the markers it carries. */
typedef struct marker_batch {
    txn_manager *tm;
    tm_node *node;
    tm_marker *markers;
} marker_batch;

static void markers_free(tm_marker *e) {
    while (e) {
        tm_marker *next = e->next;
        free(e->tid);
        free(e);
        e = next;
    }
}

static void markers_resend_fire(kloop *l, void *arg);

static void schedule_resend(txn_manager *tm, tm_txn *x, int64_t delay) {
    if (x->marker_timer || tm->shut) return;
    x->marker_timer = loop_timer_add(tm->b->loop, delay, markers_resend_fire, x);
}

/* Every marker written: write Complete*. */
static void maybe_complete(txn_manager *tm, tm_txn *x) {
    txn_decision d;
    if (x->markers_inflight == 0 && txn_markers_ready(x->m, &d)) {
        log_debug(LOGM, "Sending %s's transaction markers for %s completed; writing %s",
                  x->m->transactional_id, d.result == TXN_RESULT_COMMIT ? "commit" : "abort",
                  d.result == TXN_RESULT_COMMIT ? "CompleteCommit" : "CompleteAbort");
        write_decision(tm, x, &d, NULL, NULL);
    }
}

/* The entry's transaction, if this coordinator incarnation still has it. */
static tm_txn *marker_txn(txn_manager *tm, const tm_marker *e) {
    tm_txn *x = lookup(tm, e->tid, e->tid_len);
    return x && x->part < tm->nparts && tm->parts[x->part].incarnation == e->incarnation &&
                   x->m->producer_id == e->producer_id
               ? x
               : NULL;
}

/* One of x's requests is over: complete, or send what is still owed later. */
static void marker_settled(txn_manager *tm, tm_txn *x, int64_t delay) {
    if (x->markers_inflight > 0) x->markers_inflight--;
    if (!x->m->markers_pending) return;
    if (x->m->partitions.n == 0) maybe_complete(tm, x);
    else if (x->markers_inflight == 0) schedule_resend(tm, x, delay);
}

static void marker_answered(kc_status st, kc_resp *resp, void *arg);

/* Send every marker queued for n in one request, as Kafka's marker channel
 * drains its queue per broker with one request in flight per node. A
 * transaction's partitions led by n are read now, from the current image. */
static void node_flush(txn_manager *tm, tm_node *n) {
    if (n->busy || !n->queue || tm->shut || !n->conn) return;
    tm_marker *list = n->queue;
    n->queue = NULL;
    n->tail = &n->queue;
    int count = 0, nparts = 0;
    for (tm_marker *e = list; e; e = e->next) {
        tm_txn *x = marker_txn(tm, e);
        count++;
        if (x) nparts += x->m->partitions.n;
    }
    karena a;
    karena_init(&a, 0);
    WriteTxnMarkersRequest req;
    WriteTxnMarkersRequest_init(&req);
    req.markers = karena_calloc(&a, (size_t)count, sizeof *req.markers);
    WriteTxnMarkersRequest_WritableTxnMarkerTopic *tps = karena_calloc(&a, (size_t)(nparts ? nparts : 1), sizeof *tps);
    int32_t *idx = karena_calloc(&a, (size_t)(nparts ? nparts : 1), sizeof *idx);
    if (!req.markers || !tps || !idx) abort();
    req.markers_count = 0;
    int used_tp = 0, used_idx = 0;
    tm_marker *kept = NULL, **kept_tail = &kept;
    for (tm_marker *e = list, *next; e; e = next) {
        next = e->next;
        e->next = NULL;
        tm_txn *x = marker_txn(tm, e);
        txn_meta *m = x ? x->m : NULL;
        WriteTxnMarkersRequest_WritableTxnMarker *mk = &req.markers[req.markers_count];
        WriteTxnMarkersRequest_WritableTxnMarker_init(mk);
        mk->topics = &tps[used_tp];
        mk->topics_count = 0;
        /* the partitions of the transaction (sorted: a topic's are together) this node leads */
        for (int j = 0; m && m->markers_pending && j < m->partitions.n; j++) {
            mtopic *mt = mimage_topic(tm->b->image, kstr_from(m->partitions.v[j].topic));
            if (!mt || m->partitions.v[j].partition >= mt->nparts ||
                mt->parts[m->partitions.v[j].partition].leader != n->id)
                continue;
            WriteTxnMarkersRequest_WritableTxnMarkerTopic *tp = mk->topics_count ? &mk->topics[mk->topics_count - 1] : NULL;
            if (!tp || strcmp(tp->name.p, m->partitions.v[j].topic) != 0) {
                tp = &mk->topics[mk->topics_count++];
                used_tp++;
                WriteTxnMarkersRequest_WritableTxnMarkerTopic_init(tp);
                tp->name = kstr_from(m->partitions.v[j].topic);
                tp->partition_indexes = &idx[used_idx];
                tp->partition_indexes_count = 0;
            }
            idx[used_idx++] = m->partitions.v[j].partition;
            tp->partition_indexes_count++;
        }
        if (!mk->topics_count) { /* gone, cancelled, or its leaders moved: nothing for n now */
            if (x) marker_settled(tm, x, MARKER_RETRY_MS);
            free(e->tid);
            free(e);
            continue;
        }
        mk->producer_id = m->producer_id;
        mk->producer_epoch = m->producer_epoch;
        mk->transaction_result = m->complete.state == TXN_COMPLETE_COMMIT;
        mk->coordinator_epoch = m->markers_coordinator_epoch;
        req.markers_count++;
        *kept_tail = e;
        kept_tail = &e->next;
    }
    if (!kept) {
        karena_free(&a);
        return;
    }
    marker_batch *mb = calloc(1, sizeof *mb);
    if (!mb) abort();
    *mb = (marker_batch){tm, n, kept};
    int16_t v = kc_pick_version(n->conn, KAPI_WRITE_TXN_MARKERS, 1);
    if (v < 0) v = 1;
    n->busy = true;
    if (kc_send_msg(n->conn, KAPI_WRITE_TXN_MARKERS, v, &req, 0, marker_answered, mb) != 0) {
        n->busy = false;
        for (tm_marker *e = kept; e; e = e->next) {
            tm_txn *x = marker_txn(tm, e);
            if (x) marker_settled(tm, x, MARKER_RETRY_MS);
        }
        markers_free(kept);
        free(mb);
    }
    karena_free(&a);
}

/* One transaction's part of a WriteTxnMarkers answer (NULL: the request failed). */
static void marker_result(txn_manager *tm, tm_txn *x, const WriteTxnMarkersResponse *out) {
    int64_t delay = MARKER_RETRY_MS;
    for (int i = 0; out && i < out->markers_count; i++) {
        const WriteTxnMarkersResponse_WritableTxnMarkerResult *mr = &out->markers[i];
        if (mr->producer_id != x->m->producer_id) continue;
        for (int j = 0; j < mr->topics_count; j++) {
            const WriteTxnMarkersResponse_WritableTxnMarkerTopicResult *tr = &mr->topics[j];
            for (int k = 0; k < tr->partitions_count; k++) {
                int16_t e = tr->partitions[k].error_code;
                txn_marker_action act = txn_marker_written(x->m, tr->name.p, (size_t)tr->name.len,
                                                           tr->partitions[k].partition_index, e);
                if (act == TXN_MARKER_CANCEL) {
                    log_info(LOGM, "Markers of %s cancelled: %s", x->m->transactional_id, kerr_name(e));
                    if (x->markers_inflight > 0) x->markers_inflight--;
                    return;
                }
                if (act == TXN_MARKER_FATAL) {
                    log_warn(LOGM, "WriteTxnMarkers for %s on %.*s-%d answered %s; retrying", x->m->transactional_id,
                             tr->name.len, tr->name.p, tr->partitions[k].partition_index, kerr_name(e));
                    delay = MARKER_FATAL_RETRY_MS;
                }
            }
        }
        break; /* one result per producer id */
    }
    marker_settled(tm, x, delay);
}

static void marker_answered(kc_status st, kc_resp *resp, void *arg) {
    marker_batch *mb = arg;
    txn_manager *tm = mb->tm;
    if (tm->shut) { /* the connections are being freed */
        markers_free(mb->markers);
        free(mb);
        return;
    }
    tm_node *n = mb->node;
    n->busy = false;
    WriteTxnMarkersResponse out;
    bool ok = st == KC_OK && kc_resp_decode(resp, &out) == 0;
    if (!ok && st != KC_CANCELLED)
        log_debug(LOGM, "WriteTxnMarkers to node %d failed: %s", n->id, st != KC_OK ? kc_status_name(st) : "bad answer");
    for (tm_marker *e = mb->markers; e; e = e->next) {
        tm_txn *x = marker_txn(tm, e);
        if (x) marker_result(tm, x, ok ? &out : NULL);
    }
    markers_free(mb->markers);
    free(mb);
    node_flush(tm, n);
}

/* Queue the markers still owed, for each partition's leader. */
static void send_markers(txn_manager *tm, tm_txn *x) {
    txn_meta *m = x->m;
    if (!m->markers_pending || tm->shut || x->markers_inflight > 0) return;
    /* partitions whose topic is gone are done (Kafka: "likely deleted already") */
    for (int i = 0; i < m->partitions.n;) {
        mtopic *mt = mimage_topic(tm->b->image, kstr_from(m->partitions.v[i].topic));
        if (mt && m->partitions.v[i].partition >= 0 && m->partitions.v[i].partition < mt->nparts) {
            i++;
            continue;
        }
        log_info(LOGM, "Partition %s-%d of %s has no leader and is likely deleted; skipping its marker",
                 m->partitions.v[i].topic, m->partitions.v[i].partition, m->transactional_id);
        txn_remove_partition(m, m->partitions.v[i].topic, strlen(m->partitions.v[i].topic),
                             m->partitions.v[i].partition);
    }
    int n = m->partitions.n;
    if (n == 0) {
        maybe_complete(tm, x);
        return;
    }
    int32_t *leader = calloc((size_t)n, sizeof *leader);
    tm_node **touched = calloc((size_t)n, sizeof *touched);
    if (!leader || !touched) abort();
    for (int i = 0; i < n; i++) {
        mtopic *mt = mimage_topic(tm->b->image, kstr_from(m->partitions.v[i].topic));
        leader[i] = mt->parts[m->partitions.v[i].partition].leader;
    }
    bool unsent = false;
    int ntouched = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = leader[j] == leader[i];
        if (seen) continue;
        tm_node *nd = leader[i] >= 0 ? node_conn(tm, leader[i]) : NULL;
        if (!nd) {
            unsent = true; /* no leader now: try again shortly */
            continue;
        }
        tm_marker *e = calloc(1, sizeof *e);
        if (!e || !(e->tid = strdup(m->transactional_id))) abort();
        e->tid_len = strlen(m->transactional_id);
        e->incarnation = tm->parts[x->part].incarnation;
        e->producer_id = m->producer_id;
        *nd->tail = e;
        nd->tail = &e->next;
        x->markers_inflight++;
        touched[ntouched++] = nd;
    }
    for (int i = 0; i < ntouched; i++) node_flush(tm, touched[i]);
    free(leader);
    free(touched);
    if (unsent && x->markers_inflight == 0) schedule_resend(tm, x, MARKER_RETRY_MS);
}

static void markers_resend_fire(kloop *l, void *arg) {
    (void)l;
    tm_txn *x = arg;
    x->marker_timer = 0;
    send_markers(x->tm, x);
}

static void start_markers(txn_manager *tm, tm_txn *x) {
    log_debug(LOGM, "Sending %s's transaction markers for %s (%d partitions)", x->m->transactional_id,
              x->m->complete.state == TXN_COMPLETE_COMMIT ? "commit" : "abort", x->m->partitions.n);
    send_markers(tm, x);
}

/* ---- operations ---- */

/* The owned id, or NULL with *err (NONE: owned but unknown). */
static tm_txn *find_owned(txn_manager *tm, const char *tid, size_t n, int32_t *part, int16_t *err) {
    if (!owned_part(tm, tid, n, part, err)) return NULL;
    return lookup(tm, tid, n);
}

/* Decisions that need no write are answered here; writes go out. */
static void carry_out(txn_manager *tm, tm_txn *x, txn_decision *d, txn_done_fn done, void *arg) {
    if (!d->append) {
        int16_t e = d->err;
        int64_t pid = d->producer_id;
        int16_t ep = d->producer_epoch;
        txn_decision_free(d);
        done(arg, e, pid, ep);
        return;
    }
    write_decision(tm, x, d, done, arg);
}

static int16_t next_pid(void *ctx, int64_t *out) { return broker_take_producer_id(ctx, out); }

void txn_mgr_init_producer_id(txn_manager *tm, const char *tid, size_t tid_len, int32_t timeout_ms,
                              int64_t expected_pid, int16_t expected_epoch, txn_done_fn done, void *arg) {
    if (tid_len == 0) return done(arg, KERR_INVALID_REQUEST, -1, -1);
    if (timeout_ms <= 0 || timeout_ms > tm->cfg.max_timeout_ms)
        return done(arg, KERR_INVALID_TRANSACTION_TIMEOUT, -1, -1);
    int32_t part;
    int16_t err;
    tm_txn *x = find_owned(tm, tid, tid_len, &part, &err);
    if (err) return done(arg, err, -1, -1);
    txn_meta *m = x ? x->m : NULL;
    txn_pid_source src = {next_pid, tm->b};
    txn_decision d;
    bool has_expected = expected_pid != -1;
    txn_init_producer_id(&tm->cfg, &m, tid, tid_len, timeout_ms, has_expected, expected_pid, expected_epoch, &src,
                         wall_clock_ms(), &d);
    if (!x && m) x = insert(tm, m, part); /* kept even if the write fails, as Kafka */
    carry_out(tm, x, &d, done, arg);
}

void txn_mgr_add_partitions(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                            int16_t producer_epoch, const txn_tpset *parts, txn_done_fn done, void *arg) {
    int32_t part;
    int16_t err = KERR_NONE;
    tm_txn *x = tid_len ? find_owned(tm, tid, tid_len, &part, &err) : NULL;
    if (err) return done(arg, err, -1, -1);
    txn_decision d;
    txn_add_partitions(x ? x->m : NULL, tid_len, producer_id, producer_epoch, parts, wall_clock_ms(), &d);
    carry_out(tm, x, &d, done, arg);
}

void txn_mgr_add_offsets(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id,
                         int16_t producer_epoch, const char *group, size_t group_len, txn_done_fn done,
                         void *arg) {
    int32_t part;
    int16_t err = KERR_NONE;
    tm_txn *x = tid_len ? find_owned(tm, tid, tid_len, &part, &err) : NULL;
    if (err) return done(arg, err, -1, -1);
    topic_rt *ot = broker_topic(tm->b, KSTR_LIT("__consumer_offsets"));
    int32_t np = ot && ot->nparts > 0 ? ot->nparts : tm->b->cfg.offsets_topic_num_partitions;
    txn_decision d;
    txn_add_offsets(x ? x->m : NULL, tid_len, producer_id, producer_epoch, group, group_len, np, wall_clock_ms(),
                    &d);
    carry_out(tm, x, &d, done, arg);
}

void txn_mgr_end_txn(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                     txn_result result, txn_done_fn done, void *arg) {
    int32_t part;
    int16_t err = KERR_NONE;
    tm_txn *x = tid_len ? find_owned(tm, tid, tid_len, &part, &err) : NULL;
    if (err) return done(arg, err, -1, -1);
    txn_decision d;
    txn_end_txn(x ? x->m : NULL, tid_len, producer_id, producer_epoch, result, wall_clock_ms(), &d);
    carry_out(tm, x, &d, done, arg);
}

void txn_mgr_verify(txn_manager *tm, const char *tid, size_t tid_len, int64_t producer_id, int16_t producer_epoch,
                    const txn_tpset *parts, int16_t *errs) {
    int32_t part;
    int16_t err = KERR_NONE;
    tm_txn *x = tid_len ? find_owned(tm, tid, tid_len, &part, &err) : NULL;
    if (err) {
        for (int i = 0; i < parts->n; i++) errs[i] = err;
        return;
    }
    txn_verify_partitions(x ? x->m : NULL, tid_len, producer_id, producer_epoch, parts, errs);
}

int16_t txn_mgr_describe(txn_manager *tm, const char *tid, size_t tid_len, const txn_meta **out) {
    int32_t part;
    int16_t err;
    tm_txn *x = find_owned(tm, tid, tid_len, &part, &err);
    if (err) return err;
    if (!x || x->m->state == TXN_DEAD) return KERR_TRANSACTIONAL_ID_NOT_FOUND;
    *out = x->m;
    return KERR_NONE;
}

int16_t txn_mgr_list(txn_manager *tm, void (*fn)(void *arg, const txn_meta *m), void *arg) {
    for (int32_t i = 0; i < tm->nparts; i++)
        if (tm->parts[i].state == TM_PART_LOADING) return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    for (int i = 0; i < NBUCKETS; i++)
        for (tm_txn *x = tm->buckets[i]; x; x = x->next)
            if (fn && x->m->state != TXN_DEAD && tm->parts[x->part].state == TM_PART_LOADED) fn(arg, x->m);
    return KERR_NONE;
}

/* ---- timers: timed-out transactions, expired ids ---- */

static void abort_tick(kloop *l, void *arg);
static void expire_tick(kloop *l, void *arg);

/* Collect first: writes may complete at once and change the table. */
static tm_txn **collect(txn_manager *tm, bool (*want)(txn_manager *, tm_txn *, int64_t), int64_t now, int *n) {
    int cap = 16;
    *n = 0;
    tm_txn **v = malloc((size_t)cap * sizeof *v);
    if (!v) abort();
    for (int i = 0; i < NBUCKETS; i++)
        for (tm_txn *x = tm->buckets[i]; x; x = x->next) {
            if (tm->parts[x->part].state != TM_PART_LOADED || !want(tm, x, now)) continue;
            if (*n == cap && !(v = realloc(v, (size_t)(cap *= 2) * sizeof *v))) abort();
            v[(*n)++] = x;
        }
    return v;
}

static bool want_timed_out(txn_manager *tm, tm_txn *x, int64_t now) {
    (void)tm;
    return txn_timed_out(x->m, now);
}

static bool want_expired(txn_manager *tm, tm_txn *x, int64_t now) { return txn_should_expire(&tm->cfg, x->m, now); }

static void abort_tick(kloop *l, void *arg) {
    (void)l;
    txn_manager *tm = arg;
    int64_t now = wall_clock_ms();
    int n;
    tm_txn **v = collect(tm, want_timed_out, now, &n);
    for (int i = 0; i < n; i++) {
        txn_decision d;
        if (txn_abort_timed_out(v[i]->m, now, &d) != 0) continue;
        log_info(LOGC, "Aborting transaction %s (producer id %lld) that timed out after %d ms",
                 v[i]->m->transactional_id, (long long)v[i]->m->producer_id, v[i]->m->timeout_ms);
        write_decision(tm, v[i], &d, NULL, NULL);
    }
    free(v);
    tm->abort_timer = loop_timer_add(
        tm->b->loop, cfg_ms(tm, "transaction.abort.timed.out.transaction.cleanup.interval.ms", 10000), abort_tick, tm);
}

static void expire_tick(kloop *l, void *arg) {
    (void)l;
    txn_manager *tm = arg;
    int64_t now = wall_clock_ms();
    int n;
    tm_txn **v = collect(tm, want_expired, now, &n);
    for (int i = 0; i < n; i++) {
        txn_decision d;
        if (txn_expire(&tm->cfg, v[i]->m, now, &d) != 0) continue;
        write_decision(tm, v[i], &d, NULL, NULL);
    }
    free(v);
    tm->expire_timer = loop_timer_add(
        tm->b->loop, cfg_ms(tm, "transaction.remove.expired.transaction.cleanup.interval.ms", 3600000), expire_tick,
        tm);
}

/* ---- loading and unloading ---- */

/* Apply one batch's records to partition i's ids. */
static void replay_batch(txn_manager *tm, int32_t i, const uint8_t *batch, size_t len, karena *a) {
    batch_header h;
    batch_header_parse(batch, &h);
    if (h.attributes & BATCH_ATTR_CONTROL) return;
    rec_iter it;
    if (h.magic != 2 || rec_iter_init(&it, batch, len, a) != 0) {
        log_warn(LOGS, "Skipping a corrupt batch in %s-%d at offset %lld", TXN_STATE_TOPIC, i,
                 (long long)h.base_offset);
        return;
    }
    rec_record rec;
    int rc;
    while ((rc = rec_iter_next(&it, &rec)) == 1) {
        kstr tid;
        if (rec.key.len < 0 || txn_log_parse_key(rec.key.p, (size_t)rec.key.len, &tid) != 1) continue;
        tm_txn *x = lookup(tm, tid.p, (size_t)tid.len);
        if (rec.value.len < 0) { /* tombstone: the id expired */
            if (x) remove_txn(tm, x);
            continue;
        }
        txn_transit v;
        if (txn_log_parse_value(rec.value.p, (size_t)rec.value.len, &v) != 0) {
            log_warn(LOGS, "Skipping a malformed value for %.*s in %s-%d", tid.len, tid.p, TXN_STATE_TOPIC, i);
            continue;
        }
        txn_meta *m = txn_log_meta(tid.p, (size_t)tid.len, &v);
        txn_transit_free(&v);
        if (!m) abort();
        if (x) {
            txn_meta_free(x->m);
            x->m = m;
            x->part = i;
        } else {
            insert(tm, m, i);
        }
    }
    if (rc < 0) log_warn(LOGS, "Corrupt records in %s-%d batch at offset %lld", TXN_STATE_TOPIC, i,
                         (long long)h.base_offset);
}

/* How much one turn of the event loop replays before letting requests in
 * (the others get COORDINATOR_LOAD_IN_PROGRESS meanwhile). */
#define LOAD_BYTES_PER_TURN (4 << 20)

/* Replay partition i's log from its cursor, reading about budget bytes
 * (<= 0: all). Returns true once the end captured at the start is reached. */
static bool load_some(txn_manager *tm, int32_t i, partition *p, int64_t budget) {
    tm_part *tp = &tm->parts[i];
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    karena a;
    karena_init(&a, 0);
    int64_t read_total = 0;
    if (tp->load_next < plog_start_offset(p->log)) tp->load_next = plog_start_offset(p->log);
    while (tp->load_next < tp->load_end && (budget <= 0 || read_total < budget)) {
        int64_t off = tp->load_next;
        plog_slice s;
        int rc = plog_read(p->log, off, 1 << 20, true, tp->load_end, &s);
        ssize_t got = -1;
        if (rc == 0 && s.len > 0 && (size_t)s.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)s.len);
            if (nb) buf = nb, cap = (size_t)s.len;
        }
        if (rc == 0 && s.len > 0 && (size_t)s.len <= cap) got = pread(s.fd, buf, (size_t)s.len, s.file_pos);
        if (got <= 0) { /* unreadable: what was read is what there is */
            if (rc != 0 || s.len > 0)
                log_warn(LOGS, "Cannot read %s-%d at offset %lld while loading", TXN_STATE_TOPIC, i, (long long)off);
            tp->load_next = tp->load_end;
            break;
        }
        read_total += got;
        size_t pos = 0;
        int64_t next = off;
        while ((size_t)got - pos >= BATCH_HEADER_SIZE) {
            batch_header h;
            batch_header_parse(buf + pos, &h);
            size_t whole = (size_t)h.batch_length + BATCH_LOG_OVERHEAD;
            if (h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || whole > (size_t)got - pos) break;
            if (h.base_offset + h.last_offset_delta >= off) replay_batch(tm, i, buf + pos, whole, &a);
            karena_reset(&a);
            next = h.base_offset + h.last_offset_delta + 1;
            pos += whole;
        }
        if (next <= off) { /* no progress: stop rather than spin */
            tp->load_next = tp->load_end;
            break;
        }
        tp->load_next = next;
    }
    karena_free(&a);
    free(buf);
    return tp->load_next >= tp->load_end;
}

/* The partition is whole: serve it; transactions caught in Prepare* get
 * their markers again. */
static void finish_load(txn_manager *tm, int32_t i) {
    tm_part *tp = &tm->parts[i];
    tp->state = TM_PART_LOADED;
    int n = 0, cap = 16, count = 0;
    tm_txn **owed = malloc((size_t)cap * sizeof *owed);
    if (!owed) abort();
    for (int k = 0; k < NBUCKETS; k++)
        for (tm_txn *x = tm->buckets[k]; x; x = x->next) {
            if (x->part != i) continue;
            count++;
            if (!txn_on_load(x->m, tp->epoch, wall_clock_ms())) continue;
            if (n == cap && !(owed = realloc(owed, (size_t)(cap *= 2) * sizeof *owed))) abort();
            owed[n++] = x;
        }
    log_info(LOGS, "[Transaction State Manager %d]: Finished loading %d transaction metadata from %s-%d in %lld "
                   "milliseconds, of which 0 milliseconds was spent in the scheduler.",
             broker_node_id(tm->b), count, TXN_STATE_TOPIC, i, (long long)(monotonic_ms() - tp->load_started_ms));
    for (int k = 0; k < n; k++) start_markers(tm, owed[k]);
    free(owed);
}

static void load_tick(kloop *l, void *arg);

static void schedule_loading(txn_manager *tm) {
    if (tm->load_timer || tm->shut) return;
    for (int32_t i = 0; i < tm->nparts; i++)
        if (tm->parts[i].state == TM_PART_LOADING) {
            tm->load_timer = loop_timer_add(tm->b->loop, 0, load_tick, tm);
            return;
        }
}

static void load_tick(kloop *l, void *arg) {
    (void)l;
    txn_manager *tm = arg;
    tm->load_timer = 0;
    topic_rt *t = state_topic(tm);
    for (int32_t i = 0; t && i < tm->nparts && i < t->nparts; i++) {
        if (tm->parts[i].state != TM_PART_LOADING || !t->parts[i] || !t->parts[i]->log) continue;
        if (load_some(tm, i, t->parts[i], LOAD_BYTES_PER_TURN)) finish_load(tm, i);
        break; /* one partition's share per turn */
    }
    schedule_loading(tm);
}

/* Kafka's onElection: replay the partition (led here) up to its end now;
 * a small log at once, a big one a share per event-loop turn. */
static void start_load(txn_manager *tm, int32_t i, partition *p, bool all_now) {
    tm_part *tp = &tm->parts[i];
    tp->state = TM_PART_LOADING;
    tp->epoch = p->leader_epoch;
    tp->incarnation = tm->next_incarnation++;
    tp->load_next = plog_start_offset(p->log);
    tp->load_end = plog_end_offset(p->log);
    tp->load_started_ms = monotonic_ms();
    if (load_some(tm, i, p, all_now ? 0 : LOAD_BYTES_PER_TURN)) finish_load(tm, i);
}

/* Drop every id of the partitions marked in lost (or all when lost is NULL). */
static void unload(txn_manager *tm, const bool *lost) {
    for (int k = 0; k < NBUCKETS; k++) {
        tm_txn **pp = &tm->buckets[k];
        while (*pp) {
            tm_txn *x = *pp;
            if (lost && !lost[x->part]) {
                pp = &x->next;
                continue;
            }
            *pp = x->next;
            txn_free(tm, x);
        }
    }
    for (int32_t i = 0; i < tm->nparts; i++) {
        if (lost && !lost[i]) continue;
        if (tm->parts[i].state != TM_PART_NONE)
            log_info(LOGC, "[TransactionCoordinator id=%d] Resigned as the transaction coordinator for partition %d "
                           "in epoch %d", broker_node_id(tm->b), i, tm->parts[i].epoch);
        tm->parts[i].state = TM_PART_NONE;
        tm->parts[i].incarnation = 0;
    }
}

static void sync_leadership(txn_manager *tm, bool all_now) {
    broker *b = tm->b;
    topic_rt *t = state_topic(tm);
    int32_t n = t ? t->nparts : 0;
    if (tm->nparts && (!t || n != tm->nparts || memcmp(&t->id, &tm->topic_id, sizeof t->id) != 0)) {
        unload(tm, NULL);
        free(tm->parts);
        tm->parts = NULL;
        tm->nparts = 0;
    }
    if (!t || n <= 0) return;
    if (!tm->nparts) {
        tm->parts = calloc((size_t)n, sizeof *tm->parts);
        if (!tm->parts) abort();
        tm->nparts = n;
        tm->topic_id = t->id;
    }
    bool *lost = calloc((size_t)n, sizeof *lost);
    if (!lost) abort();
    bool any = false;
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[i];
        bool led = p && p->log && p->is_leader && !b->fenced;
        if (tm->parts[i].state != TM_PART_NONE && (!led || tm->parts[i].epoch != p->leader_epoch))
            lost[i] = any = true;
    }
    if (any) unload(tm, lost);
    free(lost);
    for (int32_t i = 0; i < n; i++) {
        partition *p = t->parts[i];
        bool led = p && p->log && p->is_leader && !b->fenced;
        if (led && tm->parts[i].state == TM_PART_NONE) {
            log_info(LOGC, "[TransactionCoordinator id=%d] Elected as the txn coordinator for partition %d at epoch %d",
                     broker_node_id(b), i, p->leader_epoch);
            start_load(tm, i, p, all_now);
        }
    }
    schedule_loading(tm);
}

/* ---- lifecycle ---- */

txn_manager *txn_manager_new(broker *b) {
    txn_manager *tm = calloc(1, sizeof *tm);
    if (!tm) return NULL;
    tm->b = b;
    tm->cfg.max_timeout_ms = b->cfg.transaction_max_timeout_ms > 0 ? b->cfg.transaction_max_timeout_ms : 900000;
    tm->cfg.id_expiration_ms = b->cfg.transactional_id_expiration_ms > 0 ? b->cfg.transactional_id_expiration_ms
                                                                         : 604800000LL;
    tm->next_incarnation = 1;
    return tm;
}

void txn_manager_start(txn_manager *tm) {
    /* at start-up nothing is served yet: load everything led at once */
    sync_leadership(tm, true);
    tm->abort_timer = loop_timer_add(
        tm->b->loop, cfg_ms(tm, "transaction.abort.timed.out.transaction.cleanup.interval.ms", 10000), abort_tick, tm);
    tm->expire_timer = loop_timer_add(
        tm->b->loop, cfg_ms(tm, "transaction.remove.expired.transaction.cleanup.interval.ms", 3600000), expire_tick,
        tm);
}

void txn_manager_leadership_changed(txn_manager *tm) {
    if (tm && !tm->shut) sync_leadership(tm, false);
}

void txn_manager_shutdown(txn_manager *tm) {
    if (!tm) return;
    tm->shut = true;
    while (tm->writes) {
        tm_write *w = tm->writes;
        write_unlink(w);
        txn_done_fn done = w->done;
        void *arg = w->arg;
        if (w->retry_timer) {
            loop_timer_cancel(tm->b->loop, w->retry_timer);
            write_free(w);
        } else {
            w->tm = NULL; /* the replica manager frees it when it lets go */
        }
        if (done) done(arg, KERR_NOT_COORDINATOR, -1, -1);
    }
    while (tm->nodes) {
        tm_node *n = tm->nodes;
        tm->nodes = n->next;
        kc_conn_free(n->conn);
        markers_free(n->queue);
        free(n);
    }
    if (tm->abort_timer) loop_timer_cancel(tm->b->loop, tm->abort_timer);
    if (tm->expire_timer) loop_timer_cancel(tm->b->loop, tm->expire_timer);
    if (tm->load_timer) loop_timer_cancel(tm->b->loop, tm->load_timer);
    tm->abort_timer = tm->expire_timer = tm->load_timer = 0;
}

void txn_manager_free(txn_manager *tm) {
    if (!tm) return;
    unload(tm, NULL);
    free(tm->parts);
    free(tm);
}
