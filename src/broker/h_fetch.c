/* h_fetch.c - Fetch v0-15: fetch sessions, zero-copy reads, long polling.
 *
 * A fetch turns into a list of targets (partition, offset, byte limit):
 * the request's partitions for a full fetch, or a session's partitions for
 * an incremental one (KIP-227, fetch_session.c). Each target is read from
 * its log as a file range that goes to the socket with sendfile (no copy
 * through user space); Fetch v0-3 clients get a down-converted copy in the
 * old message format instead.
 *
 * If fewer than min_bytes are available and max_wait_ms > 0, the request is
 * parked; an append to any partition re-checks parked fetches without
 * building a response, and the deadline answers with what there is. No
 * busy waiting.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/authz.h"
#include "broker/fetch_session.h"
#include "broker/fetch_wait.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/partition_txn.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "replica/replica_manager.h"

/* One partition to read. */
typedef struct fetch_target {
    kstr topic;
    kuuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t last_fetched_epoch; /* v12+: -1 = no divergence check */
    int64_t log_start_offset;   /* the fetcher's (followers) */
    bool known;            /* the partition existed when the fetch arrived */
    bool denied;           /* not authorized (TOPIC_AUTHORIZATION_FAILED) */
    fsession_part *cached; /* the session's entry, resolved when answering */
} fetch_target;

typedef struct fetch_ctx {
    kreq *req;
    int32_t min_bytes;
    int32_t max_bytes;
    bool read_committed;
    int32_t replica_id;      /* >= 0: a follower (reads to the LEO); -2: a debugging consumer; -1: a consumer */
    bool incremental;        /* leave out partitions without news */
    int32_t session_id;      /* answered to the client */
    fetch_target *targets;
    int ntargets;
    loop_timer_id timer;
    struct fetch_ctx *prev, *next; /* parked fetches */
} fetch_ctx;

static fetch_ctx *parked;
static broker *the_broker;

static partition *target_partition(broker *b, int16_t v, const fetch_target *t, topic_rt **topic_out) {
    topic_rt *topic = v >= 13 ? broker_topic_by_id(b, &t->topic_id) : broker_topic(b, t->topic);
    *topic_out = topic;
    int16_t err;
    return broker_partition_led(b, topic, t->partition, &err);
}

/* Partition.readRecords' check for a follower's fetch (v12+): its last
 * fetched epoch ends before its fetch offset on this leader, or is unknown
 * here. Then *epoch and *end_offset are what to answer as DivergingEpoch. */
static bool fetch_diverges(partition *p, const fetch_target *t, int32_t *epoch, int64_t *end_offset) {
    *epoch = -1;
    *end_offset = -1;
    if (t->last_fetched_epoch < 0) return false;
    plog_end_offset_for_epoch(p->log, t->last_fetched_epoch, epoch, end_offset);
    return *epoch < t->last_fetched_epoch || *end_offset < t->fetch_offset;
}

/* Kafka's answer for a partition that failed to read
 * (ReplicaManager.createLogReadResult(Throwable), FetchResponse.partitionResponse):
 * no watermarks, no log start, no records. Fetch v5 and older get
 * NOT_LEADER_OR_FOLLOWER for a storage error (KafkaApis.maybeDownConvertStorageError). */
static void partition_error(int16_t v, FetchResponse_PartitionData *po, int16_t code) {
    if (code == KERR_KAFKA_STORAGE_ERROR && v <= 5) code = KERR_NOT_LEADER_OR_FOLLOWER;
    po->error_code = code;
    po->high_watermark = -1;
    po->last_stable_offset = -1;
    po->log_start_offset = -1;
    po->records = (krecords){NULL, 0, -1, 0};
    po->aborted_transactions = NULL;
    po->aborted_transactions_count = -1;
}

/* Kafka's FetchIsolation: followers read to the LEO, read_committed
 * consumers to the last stable offset, other consumers to the HW. (A
 * debugging consumer, replica id -2, reads to the LEO as before.) */
static int64_t fetch_upper_bound(const partition *p, int32_t replica_id, bool read_committed) {
    if (replica_id != -1) return plog_end_offset(p->log);
    return read_committed ? part_txn_lso(p) : p->high_watermark;
}

/* LocalLog.addAbortedTransactions: the aborted transactions overlapping a
 * read_committed read from fetch_offset, from the .txnindex files. */
static int add_aborted_transactions(partition *p, int64_t fetch_offset, int64_t upper_bound, karena *a,
                                    FetchResponse_PartitionData *po) {
    aborted_list l = {0};
    if (plog_collect_aborted_txns(p->log, fetch_offset, upper_bound, &l) != 0) {
        aborted_list_free(&l);
        return -1;
    }
    if (l.n > 0) {
        po->aborted_transactions = karena_calloc(a, (size_t)l.n, sizeof *po->aborted_transactions);
        if (!po->aborted_transactions) {
            aborted_list_free(&l);
            return -1;
        }
        for (int i = 0; i < l.n; i++) {
            po->aborted_transactions[i].producer_id = l.v[i].producer_id;
            po->aborted_transactions[i].first_offset = l.v[i].first_offset;
        }
    }
    po->aborted_transactions_count = l.n;
    aborted_list_free(&l);
    return 0;
}

/* Fill one partition's answer; returns the record bytes included. */
static int64_t read_target(broker *b, kreq *req, const fetch_target *t, int64_t budget, bool first_data,
                           bool read_committed, int32_t replica_id, FetchResponse_PartitionData *po) {
    int16_t v = req->api_version;
    karena *a = &req->arena;
    FetchResponse_PartitionData_init(po);
    po->partition_index = t->partition;
    po->high_watermark = -1;
    po->last_stable_offset = -1;
    po->log_start_offset = -1;
    po->records = (krecords){NULL, 0, -1, 0};
    /* Kafka's log read lists aborted transactions only for read_committed
     * consumers; read_uncommitted answers a null list */
    po->aborted_transactions = NULL;
    po->aborted_transactions_count = read_committed ? 0 : -1;
    topic_rt *topic;
    partition *p = target_partition(b, v, t, &topic);
    if (t->denied) {
        partition_error(v, po, KERR_TOPIC_AUTHORIZATION_FAILED);
        return 0;
    }
    if (!p) {
        partition_error(v, po, topic || v < 13 ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_UNKNOWN_TOPIC_ID);
        return 0;
    }
    if (t->current_leader_epoch >= 0 && t->current_leader_epoch != p->leader_epoch) {
        partition_error(v, po, t->current_leader_epoch > p->leader_epoch ? KERR_UNKNOWN_LEADER_EPOCH
                                                                         : KERR_FENCED_LEADER_EPOCH);
        return 0;
    }
    po->high_watermark = p->high_watermark;
    po->last_stable_offset = part_txn_lso(p);
    po->log_start_offset = plog_start_offset(p->log);
    /* Partition.readRecords: a follower whose last fetched epoch ends
     * before its fetch offset on this leader (or that the leader does not
     * know) is told where they diverge, and gets no records. */
    int32_t div_epoch;
    int64_t div_end;
    if (replica_id >= 0 && fetch_diverges(p, t, &div_epoch, &div_end)) {
        po->diverging_epoch.epoch = div_epoch;
        po->diverging_epoch.end_offset = div_end;
        return 0;
    }
    int32_t limit = t->max_bytes;
    if (budget < limit) limit = (int32_t)(budget > 0 ? budget : 0);
    plog_slice s = {-1, 0, 0};
    int64_t max_offset = fetch_upper_bound(p, replica_id, read_committed);
    if (replica_id >= 0 && rm_leader_throttled(b, p, replica_id)) return 0; /* over the replication quota */
    int rc = plog_read(p->log, t->fetch_offset, limit, first_data, max_offset, &s);
    if (rc == 0 && replica_id >= 0) rm_leader_sent(b, p, replica_id, s.len);
    if (rc != 0) {
        partition_error(v, po, rc == PLOG_OFFSET_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE : KERR_KAFKA_STORAGE_ERROR);
        return 0;
    }
    if (s.len <= 0) return 0;
    if (read_committed && replica_id == -1 && add_aborted_transactions(p, t->fetch_offset, max_offset, a, po) != 0) {
        partition_error(v, po, KERR_KAFKA_STORAGE_ERROR);
        return 0;
    }
    if (v > 3) {
        po->records = (krecords){NULL, s.len, s.fd, s.file_pos};
        return s.len;
    }
    /* Old consumers read message format v0 (Fetch v0-1) or v1 (v2-3). */
    uint8_t *tmp = karena_alloc(a, (size_t)s.len);
    kwriter w;
    kw_init(&w);
    int64_t n = 0;
    if (tmp && pread(s.fd, tmp, (size_t)s.len, s.file_pos) == s.len &&
        records_down_convert_from(tmp, (size_t)s.len, v <= 1 ? 0 : 1, t->fetch_offset, &w, a) == 0 && !w.err &&
        w.len > 0) {
        uint8_t *copy = karena_alloc(a, w.len);
        if (copy) {
            memcpy(copy, w.buf, w.len);
            po->records = (krecords){copy, (int32_t)w.len, -1, 0};
            n = (int64_t)w.len;
        }
    }
    kw_free(&w);
    return n;
}

/* KafkaApis.maybeConvertFetchedData: a zstd topic cannot be read below
 * Fetch v10, nor a topic with message.downconversion.enable=false below v4;
 * the partition is answered with only the error (null records). */
static void maybe_conversion_error(broker *b, int16_t v, const fetch_target *t, FetchResponse_PartitionData *po) {
    if (v >= 10) return;
    topic_rt *topic;
    if (!target_partition(b, v, t, &topic)) return;
    int16_t code = KERR_NONE;
    if (strcmp(topic->cfg.compression_type, "zstd") == 0) code = KERR_UNSUPPORTED_COMPRESSION_TYPE;
    else if (v <= 3 && !topic->cfg.message_downconversion_enable) code = KERR_UNSUPPORTED_VERSION;
    if (code == KERR_NONE) return;
    partition_error(v, po, code);
    po->records = KRECORDS_NULL;
}

/* Has the client not seen this answer yet (incremental fetches)? */
static bool has_news(const fetch_target *t, const FetchResponse_PartitionData *po) {
    const fsession_part *c = t->cached;
    if (!c || !c->sent) return true;
    return po->records.len > 0 || po->error_code != KERR_NONE || po->high_watermark != c->high_watermark ||
           po->last_stable_offset != c->last_stable_offset || po->log_start_offset != c->log_start_offset;
}

static void remember(fetch_target *t, const FetchResponse_PartitionData *po) {
    fsession_part *c = t->cached;
    if (!c) return;
    c->sent = true;
    c->high_watermark = po->high_watermark;
    c->last_stable_offset = po->last_stable_offset;
    c->log_start_offset = po->log_start_offset;
}

/* Build and send the response for ctx (which is then freed). */
static void fetch_answer(broker *b, fetch_ctx *ctx) {
    kreq *req = ctx->req;
    karena *a = &req->arena;
    int16_t v = req->api_version;
    FetchResponse resp;
    FetchResponse_init(&resp);
    resp.session_id = ctx->session_id;
    resp.responses = karena_calloc(a, (size_t)(ctx->ntargets ? ctx->ntargets : 1), sizeof *resp.responses);
    FetchResponse_PartitionData *parts =
        karena_calloc(a, (size_t)(ctx->ntargets ? ctx->ntargets : 1), sizeof *parts);
    if (!resp.responses || !parts) {
        free(ctx->targets);
        free(ctx);
        kreq_fail(req, "out of memory");
        return;
    }
    int64_t budget = v >= 3 ? ctx->max_bytes : INT32_MAX;
    if (budget <= 0) budget = 1;
    /* consumer_byte_rate: a consumer over its quota gets an empty answer with the throttle time,
     * and reads at most quota * (samples - 1) windows (KafkaApis.handleFetchRequest) */
    bool quota = ctx->replica_id < 0 && quota_any(b, QUOTA_FETCH);
    int32_t throttle = quota ? quota_check(b, QUOTA_FETCH, req) : 0;
    if (quota && quota_max_in_window(b, QUOTA_FETCH, req) < budget) budget = quota_max_in_window(b, QUOTA_FETCH, req);
    int64_t fetched = 0;
    bool first_data = true; /* KIP-74: the first batch goes even if over the limits */
    int nparts = 0;
    FetchResponse_FetchableTopicResponse *cur = NULL;
    /* Resolve session entries now: the session may have changed while parked. */
    fsession *s = ctx->session_id ? fsession_get(ctx->session_id) : NULL;
    /* KafkaApis answers the partitions it read first, then those it did not
     * know (unknown topic, partition or topic id) */
    for (int pass = 0; pass < 2 && !throttle; pass++) {
        for (int i = 0; i < ctx->ntargets; i++) {
            fetch_target *t = &ctx->targets[i];
            topic_rt *topic;
            if ((target_partition(b, v, t, &topic) != NULL) != (pass == 0)) continue;
            t->cached = s ? fsession_find_part(s, &t->topic, &t->topic_id, t->partition, v) : NULL;
            FetchResponse_PartitionData *po = &parts[nparts];
            int64_t got = read_target(b, req, t, budget, first_data, ctx->read_committed, ctx->replica_id, po);
            maybe_conversion_error(b, v, t, po);
            if (ctx->incremental && !has_news(t, po)) continue;
            remember(t, po);
            metrics_fetched(topic, ctx->replica_id >= 0, po->records.len > 0 ? po->records.len : 0, po->error_code);
            budget -= got;
            fetched += got;
            if (got > 0) first_data = false;
            nparts++;
            /* group consecutive partitions of one topic */
            bool same = cur && (v >= 13 ? memcmp(cur->topic_id.b, t->topic_id.b, 16) == 0
                                        : kstr_eq(cur->topic, t->topic));
            if (!same) {
                cur = &resp.responses[resp.responses_count++];
                FetchResponse_FetchableTopicResponse_init(cur);
                cur->topic = t->topic;
                cur->topic_id = t->topic_id;
                cur->partitions = po;
                cur->partitions_count = 0;
            }
            cur->partitions_count++;
        }
    }
    if (quota && !throttle) throttle = quota_record(b, QUOTA_FETCH, req, (double)fetched);
    if (throttle > req->throttle_ms) req->throttle_ms = throttle; /* or request_percentage's */
    resp.throttle_time_ms = req->throttle_ms;
    free(ctx->targets);
    free(ctx);
    KREQ_REPLY(req, FetchResponse, &resp);
}

/* Record bytes available now, or -1 when the fetch must be answered at once:
 * a partition it reads would answer an error, or it reads none (Kafka's
 * ReplicaManager answers at once on a read error; partitions unknown when
 * the fetch arrived are answered beside it and do not cut the wait short).
 * Allocates nothing, so parked fetches are cheap to re-check. */
static int64_t fetch_available(broker *b, const fetch_ctx *ctx) {
    int64_t total = 0;
    int nknown = 0;
    int16_t v = ctx->req->api_version;
    for (int i = 0; i < ctx->ntargets; i++) {
        const fetch_target *t = &ctx->targets[i];
        if (!t->known) continue;
        nknown++;
        topic_rt *topic;
        partition *p = target_partition(b, v, t, &topic);
        if (!p) return -1;
        if (t->current_leader_epoch >= 0 && t->current_leader_epoch != p->leader_epoch) return -1;
        plog_slice s = {-1, 0, 0};
        int64_t max_offset = fetch_upper_bound(p, ctx->replica_id, ctx->read_committed);
        int32_t e;
        int64_t end;
        if (ctx->replica_id >= 0 && fetch_diverges(p, t, &e, &end)) return -1; /* answer the divergence now */
        /* DelayedFetch: a throttled replica's bytes do not complete the wait */
        if (ctx->replica_id >= 0 && rm_leader_throttled(b, p, ctx->replica_id)) continue;
        if (plog_read(p->log, t->fetch_offset, t->max_bytes, total == 0, max_offset, &s) != 0) return -1;
        total += s.len;
        if (total >= ctx->min_bytes) return total;
    }
    return nknown ? total : -1;
}

static void unpark(fetch_ctx *c) {
    if (c->prev) c->prev->next = c->next;
    else parked = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void park_timeout(kloop *l, void *arg) {
    (void)l;
    fetch_ctx *c = arg;
    c->timer = 0;
    unpark(c);
    fetch_answer(the_broker, c);
}

void broker_partition_appended(broker *b, partition *p) {
    (void)p;
    fetch_ctx *c = parked;
    while (c) {
        fetch_ctx *next = c->next;
        int64_t bytes = c->req->conn ? fetch_available(b, c) : -1;
        if (bytes < 0 || bytes >= c->min_bytes) {
            loop_timer_cancel(b->loop, c->timer);
            unpark(c);
            fetch_answer(b, c);
        }
        c = next;
    }
}

void fetch_wait_init(broker *b) {
    the_broker = b;
    fsession_init(b);
}

void fetch_wait_shutdown(broker *b) {
    while (parked) {
        fetch_ctx *c = parked;
        loop_timer_cancel(b->loop, c->timer);
        unpark(c);
        fetch_answer(b, c);
    }
    fsession_shutdown();
}

/* Targets of a full fetch: the request's partitions, in order. */
static int targets_from_request(fetch_ctx *ctx, const FetchRequest *r) {
    int n = 0;
    for (int i = 0; i < r->topics_count; i++) n += r->topics[i].partitions_count > 0 ? r->topics[i].partitions_count : 0;
    ctx->targets = calloc((size_t)(n ? n : 1), sizeof *ctx->targets);
    if (!ctx->targets) return -1;
    for (int i = 0; i < r->topics_count; i++) {
        const FetchRequest_FetchTopic *ft = &r->topics[i];
        for (int j = 0; j < ft->partitions_count; j++) {
            fetch_target *t = &ctx->targets[ctx->ntargets++];
            t->topic = ft->topic;
            t->topic_id = ft->topic_id;
            t->partition = ft->partitions[j].partition;
            t->fetch_offset = ft->partitions[j].fetch_offset;
            t->max_bytes = ft->partitions[j].partition_max_bytes;
            t->current_leader_epoch = ft->partitions[j].current_leader_epoch;
            t->last_fetched_epoch = ft->partitions[j].last_fetched_epoch;
            t->log_start_offset = ft->partitions[j].log_start_offset;
        }
    }
    return 0;
}

/* Targets of a session: all its partitions, with the session's entries. */
static int targets_from_session(fetch_ctx *ctx, fsession *s, karena *a) {
    ctx->targets = calloc((size_t)(s->nparts ? s->nparts : 1), sizeof *ctx->targets);
    if (!ctx->targets) return -1;
    for (int i = 0; i < s->nparts; i++) {
        fsession_part *sp = &s->parts[i];
        fetch_target *t = &ctx->targets[ctx->ntargets++];
        /* copy the name: the session may change before a parked fetch answers */
        t->topic = kstr_from(karena_strndup(a, sp->topic, strlen(sp->topic)));
        t->topic_id = sp->topic_id;
        t->partition = sp->partition;
        t->fetch_offset = sp->fetch_offset;
        t->max_bytes = sp->max_bytes;
        t->current_leader_epoch = sp->current_leader_epoch;
        t->last_fetched_epoch = -1;
        t->log_start_offset = -1;
    }
    return 0;
}

static void answer_error(kreq *req, int16_t code) {
    FetchResponse resp;
    FetchResponse_init(&resp);
    resp.error_code = code;
    resp.session_id = 0;
    KREQ_REPLY(req, FetchResponse, &resp);
}

void h_fetch(broker *b, kreq *req) {
    FetchRequest r;
    if (KREQ_DECODE(req, FetchRequest, &r) < 0) return;
    fetch_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return kreq_fail(req, "out of memory");
    ctx->req = req;
    ctx->min_bytes = r.min_bytes;
    ctx->max_bytes = r.max_bytes;
    ctx->read_committed = r.isolation_level == 1;
    ctx->replica_id = req->api_version >= 15 ? r.replica_state.replica_id : r.replica_id;
    if (ctx->replica_id < -2) ctx->replica_id = -1;
    metrics_fetch_kind(req, ctx->replica_id >= 0);
    int rc = 0;
    if (req->api_version < 7 || r.session_epoch == FSESSION_FINAL_EPOCH) {
        /* Sessionless full fetch (closing the session named, if any). */
        if (req->api_version >= 7 && r.session_id != 0) fsession_remove(r.session_id);
        rc = targets_from_request(ctx, &r);
    } else if (r.session_epoch == FSESSION_INITIAL_EPOCH) {
        /* Full fetch that opens a new session (replacing the one named). */
        if (r.session_id != 0) fsession_remove(r.session_id);
        fsession *s = fsession_create(b, req->api_version, &r);
        ctx->session_id = s ? s->id : 0;
        rc = targets_from_request(ctx, &r);
    } else {
        /* Incremental fetch in an existing session. */
        int16_t err = KERR_NONE;
        fsession *s = fsession_update(b, req->api_version, &r, &err);
        if (!s) {
            free(ctx);
            answer_error(req, err);
            return;
        }
        ctx->session_id = s->id;
        ctx->incremental = true;
        rc = targets_from_session(ctx, s, &req->arena);
    }
    if (rc != 0) {
        free(ctx->targets);
        free(ctx);
        return kreq_fail(req, "out of memory");
    }
    /* KafkaApis: a follower needs CLUSTER_ACTION, a consumer READ on each topic */
    bool follower_ok = ctx->replica_id < 0 || authz_cluster(req, AZ_OP_CLUSTER_ACTION);
    int ndenied = 0;
    kstr last_name = KSTR_NULL;
    bool last_denied = false;
    for (int i = 0; i < ctx->ntargets; i++) {
        topic_rt *topic;
        fetch_target *t = &ctx->targets[i];
        partition *p = target_partition(b, req->api_version, t, &topic);
        kstr tname = topic ? kstr_from(topic->name) : t->topic;
        if (!follower_ok) {
            t->denied = true;
        } else if (ctx->replica_id < 0 && (topic || req->api_version < 13)) {
            /* once per topic (a topic's partitions come together), so one denial line per topic */
            if (i > 0 && kstr_eq(tname, last_name)) t->denied = last_denied;
            else t->denied = !authz_allowed_k(req, AZ_OP_READ, AZ_RES_TOPIC, tname);
            last_name = tname;
            last_denied = t->denied;
        }
        if (t->denied) {
            p = NULL;
            ndenied++;
        }
        t->known = p != NULL;
        /* ReplicaManager.updateFollowerFetchState, once per fetch as it
         * arrives: the fetch offset is the follower's log end. Not for a
         * fetch the leader answers with an epoch error or a divergence. */
        if (p && ctx->replica_id >= 0 &&
            (t->current_leader_epoch < 0 || t->current_leader_epoch == p->leader_epoch)) {
            int32_t e;
            int64_t end;
            if (!fetch_diverges(p, t, &e, &end))
                rm_follower_fetched(b, p, ctx->replica_id, req->api_version >= 15 ? r.replica_state.replica_epoch : -1,
                                    t->fetch_offset, t->log_start_offset);
        }
    }
    int64_t bytes = fetch_available(b, ctx);
    if (r.max_wait_ms <= 0 || bytes < 0 || bytes >= r.min_bytes || ctx->ntargets == ndenied || b->shutting_down) {
        fetch_answer(b, ctx);
        return;
    }
    ctx->next = parked;
    if (parked) parked->prev = ctx;
    parked = ctx;
    ctx->timer = loop_timer_add(b->loop, r.max_wait_ms, park_timeout, ctx);
}
