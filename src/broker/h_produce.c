/* h_produce.c - Produce v0-9: validate each partition's records, append,
 * answer with the offsets.
 *
 * The hot path: records are validated in place in the request frame (no
 * copy for uncompressed v2 batches), appended with one write per partition,
 * and acknowledged once in the log (and fsynced when flush.messages says
 * so). On one node acks=1 and acks=all are the same: the ISR is this node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/fetch_wait.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/partition_txn.h"
#include "broker/txn_verify.h"
#include "broker/producer_state.h"
#include "broker/topics.h"
#include "net/server.h"
#include "protocol/batch_header.h"
#include "protocol/compress.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "replica/replica_manager.h"
#include "storage/write_pool.h"
#include "util/array.h"
#include "util/log.h"

#define COMPONENT "kafka.server.ReplicaManager"

static bool is_internal_topic(const char *name) {
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

/* The answer to a failed leader append (errno set by the log). */
static int16_t append_error(const partition *p) {
    /* Kafka's RecordBatchTooLargeException: a batch can never fit a segment */
    if (errno == EMSGSIZE) return KERR_RECORD_LIST_TOO_LARGE;
    log_error(COMPONENT, "Error appending to %s-%d: %s", p->topic->name, p->index, strerror(errno));
    return KERR_KAFKA_STORAGE_ERROR;
}

/* After a leader append: the HW and waiting fetches. */
static void leader_appended(broker *b, partition *p) {
    rm_leader_appended(b, p);
    broker_partition_appended(b, p); /* followers' fetches wait for the LEO */
}

/* The leader's append of validated, checked batches: log, producer state
 * and .txnindex (partition_txn.h), then the HW and waiting fetches. */
static int16_t leader_append(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *first_offset) {
    int64_t last;
    if (part_txn_append(p, batch, len, first_offset, &last) != 0) return append_error(p);
    leader_appended(b, p);
    return KERR_NONE;
}

/* A request's appends whose data writes run together, on the write pool's
 * threads (storage/write_pool.h), once every partition of the request is
 * validated and begun: the copies of several partitions' batches into the
 * page cache then use more than one core. Nothing else runs between a
 * partition's begin and its end (the loop waits for the writes), so the
 * rest of the broker sees each append whole, as before. A partition named
 * twice in a request ends the group first. Lives in the request's arena. */
typedef struct pending_append {
    topic_rt *t;
    partition *p;
    batch_header h;
    int16_t acks;
    int64_t now;
    ProduceResponse_PartitionProduceResponse *out;
    int64_t *wait_for;
    plog_write w;
    int64_t first;  /* once ended: the first offset assigned, or */
    int16_t error;  /* the append's error */
} pending_append;

typedef struct append_group {
    pending_append *v;
    plog_write **writes; /* room for cap pointers: the writes handed to the pool */
    int n, cap, ended;   /* v[0..ended) are answered */
} append_group;

static void append_done(topic_rt *t, partition *p, const batch_header *h, size_t len, int16_t acks, int64_t now,
                        int64_t first, ProduceResponse_PartitionProduceResponse *out, int64_t *wait_for);
static void append_refused(const topic_rt *t, const partition *p, size_t len, int16_t error,
                           ProduceResponse_PartitionProduceResponse *out);

/* Writes the group's begun appends and ends them, in request order. */
static void append_group_end(broker *b, append_group *g) {
    if (!g || g->ended == g->n) return;
    int n = g->n - g->ended;
    for (int i = 0; i < n; i++) g->writes[i] = &g->v[g->ended + i].w;
    wpool_run(b->appends, g->writes, n, WPOOL_PARALLEL_MIN_BYTES);
    /* Every append ends before any is answered: answering may complete
     * other requests, and a connection's next request then runs at once
     * (net/server.c), which must find these logs whole. */
    for (int i = g->ended; i < g->n; i++) {
        pending_append *a = &g->v[i];
        int64_t last;
        a->error = part_txn_append_end(a->p, &a->w, &a->first, &last) == 0 ? KERR_NONE : append_error(a->p);
    }
    int start = g->ended, end = g->n;
    g->ended = end;
    for (int i = start; i < end; i++) {
        pending_append *a = &g->v[i];
        if (a->error != KERR_NONE) {
            append_refused(a->t, a->p, a->w.len, a->error, a->out);
            continue;
        }
        append_done(a->t, a->p, &a->h, a->w.len, a->acks, a->now, a->first, a->out, a->wait_for);
    }
    for (int i = start; i < end; i++)
        if (g->v[i].error == KERR_NONE) leader_appended(b, g->v[i].p);
}

/* Kafka's AppendOrigin.Coordinator: no sequence checks (the coordinator
 * writes offsets and markers for producers), only the producer epoch of a
 * data batch; markers are checked by their writer (pstate_check_marker). */
int16_t broker_append_batch(broker *b, partition *p, uint8_t *batch, size_t len, int64_t *first_offset) {
    if (len >= BATCH_HEADER_SIZE) {
        batch_header h;
        batch_header_parse(batch, &h);
        int16_t ec = pstate_check_epoch(p->producers, &h);
        if (ec != KERR_NONE) return ec;
    }
    return leader_append(b, p, batch, len, first_offset);
}

/* One step of Kafka's batch iterator over a produce payload: 1 with the
 * batch's size and magic, 0 when no whole batch is left, -1 when the
 * framing is corrupt (size below the minimum, unknown magic). */
static int next_produce_batch(const uint8_t *buf, size_t len, size_t pos, size_t *size, int8_t *magic) {
    size_t rem = len - pos;
    if (rem < BATCH_LOG_OVERHEAD) return 0;
    int32_t blen = (int32_t)bh_get_u32(buf + pos + BATCH_OFF_LENGTH);
    if (blen < 14) return -1; /* smaller than the smallest legacy message */
    if (rem < BATCH_OFF_MAGIC + 1) return 0;
    *magic = (int8_t)buf[pos + BATCH_OFF_MAGIC];
    if (*magic < 0 || *magic > 2) return -1;
    *size = (size_t)blen + BATCH_LOG_OVERHEAD;
    return rem < *size ? 0 : 1;
}

/* Kafka's ProduceRequest.validateRecords: from v3 a partition carries
 * exactly one batch, of magic 2, and zstd only from v7. Returns the error
 * (and *msg) or KERR_NONE. */
static int16_t check_produce_v3_records(int16_t version, const uint8_t *buf, size_t len, const char **msg) {
    size_t size = 0;
    int8_t magic = 0;
    int rc = next_produce_batch(buf, len, 0, &size, &magic);
    if (rc < 0) {
        *msg = "Invalid record batch framing";
        return KERR_CORRUPT_MESSAGE;
    }
    if (rc == 0) {
        *msg = "Produce requests with version 3 or later must have at least one record batch per partition";
        return KERR_INVALID_RECORD;
    }
    if (magic != 2) {
        *msg = "Produce requests with version 3 or later are only allowed to contain record batches with magic version 2";
        return KERR_INVALID_RECORD;
    }
    int codec = bh_get_u16(buf + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK;
    if (version < 7 && codec == KCODEC_ZSTD) {
        *msg = "Produce requests with version below 7 are not allowed to use ZStandard compression";
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
    size_t size2;
    rc = next_produce_batch(buf, len, size, &size2, &magic);
    if (rc < 0) {
        *msg = "Invalid record batch framing";
        return KERR_CORRUPT_MESSAGE;
    }
    if (rc > 0) {
        *msg = "Produce requests with version 3 or later are only allowed to contain exactly one record batch per partition";
        return KERR_INVALID_RECORD;
    }
    return KERR_NONE;
}

/* The codec a topic's compression.type imposes, or -1 for "producer". */
static int topic_codec(const topic_rt *t) {
    static const char *const names[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    for (int c = 0; c < 5; c++)
        if (strcmp(t->cfg.compression_type, names[c]) == 0) return c;
    return -1;
}

/* An acks=all answer waiting for the high watermark (Kafka's
 * DelayedProduce): the request is answered when the last partition is
 * replicated, failed or timed out. Lives in the request's arena. */
typedef struct produce_wait {
    kreq *req;
    ProduceResponse resp;
    int holds;               /* partitions waiting + 1 while the handler runs */
    bool no_response;        /* acks=0: nothing is answered (the connection closes on an error) */
    bool any_error;
} produce_wait;

typedef struct partition_wait {
    produce_wait *w;
    ProduceResponse_PartitionProduceResponse *out;
    partition *p;
    int64_t required;        /* last offset + 1 */
    struct partition_wait *next;
} partition_wait;

static void produce_wait_release(broker *b, produce_wait *w) {
    if (--w->holds > 0) return;
    metrics_produce_answered(b, &w->resp);
    /* producer_byte_rate: the request's size, after the append (KafkaApis.handleProduceRequest) */
    int32_t throttle = quota_record(b, QUOTA_PRODUCE, w->req, (double)w->req->frame_len);
    if (throttle > w->req->throttle_ms) w->req->throttle_ms = throttle; /* or request_percentage's */
    w->resp.throttle_time_ms = w->req->throttle_ms;
    if (!w->no_response) {
        KREQ_REPLY(w->req, ProduceResponse, &w->resp);
    } else if (w->any_error) {
        /* on an error Kafka closes the connection so the producer notices and refreshes its metadata */
        kreq_fail(w->req, "error on a produce request with acks=0");
    } else {
        kreq_no_response(w->req);
    }
}

static void partition_replicated(broker *b, void *arg, int16_t error) {
    partition_wait *pw = arg;
    pw->out->error_code = error; /* the offsets stay, as in Kafka's DelayedProduce */
    produce_wait_release(b, pw->w);
}

/* A batch waiting for its transaction verification (txn_verify.h). */
typedef struct partition_verify {
    bool needed;
    produce_wait *w;
    ProduceResponse_PartitionProduceResponse *out;
    kstr topic;
    int32_t index;
    uint8_t *buf;
    size_t len;
    uint32_t generation; /* pstate_txn_generation when the verification started */
    int16_t acks;
    int32_t timeout_ms;
    int64_t now;
    struct partition_verify *next;
} partition_verify;

static void append_partition(broker *b, topic_rt *t, partition *p, uint8_t *buf, size_t len, batch_header *hp,
                             int16_t acks, int64_t now, ProduceResponse_PartitionProduceResponse *out,
                             int64_t *wait_for, append_group *g);

/* The checks records_validate makes for partition `index` of t (Kafka's
 * LogValidator settings). */
static void validate_opts(const topic_rt *t, int32_t index, int64_t now, karena *a, rec_validate_opts *opts) {
    rec_validate_opts_default(opts);
    opts->max_message_bytes = t->cfg.max_message_bytes;
    opts->log_append_time = t->cfg.log_append_time;
    opts->now_ms = now;
    opts->timestamp_difference_max_ms = t->cfg.message_timestamp_difference_max_ms;
    opts->compacted = strstr(t->cfg.cleanup_policy, "compact") != NULL;
    /* named only in a keyless record's error, which only a compacted topic gives */
    opts->topic_partition = opts->compacted ? karena_sprintf(a, "%s-%d", t->name, index) : NULL;
}

/* A partition's batch validated ahead on the write pool (validate_ahead):
 * what records_validate gave, to be taken where it would have run. */
typedef struct prevalidated {
    bool done;          /* validated ahead: the fields below hold */
    int ec;
    rec_batch_info info;
    const char *errmsg; /* static or in arena */
    karena arena;       /* the job's own: several jobs of one request run at once */
    uint8_t *buf;       /* the job: the batch in the frame, validated in place */
    size_t len;
    rec_validate_opts opts;
} prevalidated;

/* Validate and append one partition's records; fills the response entry.
 * With acks=all, *wait_for gets the offset the HW must reach (else -1).
 * A transactional batch that needs verification is not appended: *verify
 * is filled (needed) and the caller asks the coordinator. pre: its batch
 * validated ahead, or NULL. */
static void produce_partition(broker *b, kreq *req, topic_rt *t, const ProduceRequest_PartitionProduceData *pd,
                              int16_t acks, kstr transactional_id, ProduceResponse_PartitionProduceResponse *out,
                              int64_t now, partition **wait_p, int64_t *wait_for, partition_verify *verify,
                              append_group *g, prevalidated *pre) {
    *wait_for = -1;
    out->index = pd->index;
    int16_t perr;
    partition *p = broker_partition_led(b, t, pd->index, &perr);
    if (!p) {
        out->error_code = perr;
        return;
    }
    /* named again in this request: its producer state must see the first batch */
    if (plog_append_in_flight(p->log)) append_group_end(b, g);
    *wait_p = p;
    if (req->api_version >= 3 && pd->records.len >= 0) {
        const char *why = NULL;
        int16_t ec = check_produce_v3_records(req->api_version, pd->records.p, (size_t)pd->records.len, &why);
        if (ec != KERR_NONE) {
            /* KafkaApis answers these with new PartitionResponse(error): no message */
            out->error_code = ec;
            return;
        }
    }
    if (pd->records.len <= 0) {
        out->error_code = KERR_CORRUPT_MESSAGE;
        out->error_message = KSTR_LIT("The produce request contains no records");
        return;
    }
    /* acks=all needs min.insync.replicas in the (committed) ISR. Kafka's
     * NotEnoughReplicasException message stays in its log; the answer
     * carries the log start offset and no message. */
    if (pr_check_append(&p->repl, acks) == KERR_NOT_ENOUGH_REPLICAS) {
        out->error_code = KERR_NOT_ENOUGH_REPLICAS;
        out->log_start_offset = plog_start_offset(p->log);
        char isr[160];
        size_t n = 0;
        isr[0] = 0;
        for (int i = 0; i < p->repl.nisr && n + 12 < sizeof isr; i++)
            n += (size_t)snprintf(isr + n, sizeof isr - n, i ? ", %d" : "%d", p->repl.isr[i]);
        log_error(COMPONENT, "Error processing append operation on partition %s-%d: The size of the current ISR "
                  "Set(%s) is insufficient to satisfy the min.isr requirement of %d for partition %s-%d", t->name,
                  p->index, isr, t->cfg.min_insync_replicas, t->name, p->index);
        return;
    }
    rec_validate_opts opts;
    validate_opts(t, p->index, now, &req->arena, &opts);
    rec_batch_info info;
    uint8_t *converted = NULL;
    size_t converted_len = 0;
    const char *errmsg = NULL;
    /* The frame is ours: validation may rewrite timestamps and CRC in place. */
    uint8_t *buf = (uint8_t *)pd->records.p;
    int ec;
    if (pre && pre->done) { /* the same checks, made on the pool */
        ec = pre->ec;
        info = pre->info;
        /* the answer may outlive the job's arena */
        if (pre->errmsg) errmsg = karena_sprintf(&req->arena, "%s", pre->errmsg);
    } else {
        ec = records_validate(buf, (size_t)pd->records.len, &opts, &req->arena, &info, &converted, &converted_len,
                              &errmsg);
    }
    if (ec != KERR_NONE) {
        out->error_code = (int16_t)ec;
        /* Only Kafka's RecordValidationException (INVALID_RECORD,
         * INVALID_TIMESTAMP) reaches the client with a message; corrupt and
         * too large batches are answered with the error alone. */
        if (errmsg && (ec == KERR_INVALID_RECORD || ec == KERR_INVALID_TIMESTAMP))
            out->error_message = kstr_from(errmsg);
        if (ec == KERR_INVALID_RECORD && info.keyless_count > 0 && opts.topic_partition) {
            /* Kafka's RecordErrors of validateKey: one per keyless record */
            int n = info.keyless_count < 3 ? info.keyless_count : 3;
            out->record_errors = karena_calloc(&req->arena, (size_t)n, sizeof *out->record_errors);
            for (int i = 0; out->record_errors && i < n; i++) {
                ProduceResponse_BatchIndexAndErrorMessage_init(&out->record_errors[i]);
                out->record_errors[i].batch_index = info.keyless_index[i];
                out->record_errors[i].batch_index_error_message =
                    kstr_from(records_keyless_message(&req->arena, opts.topic_partition));
            }
            if (out->record_errors) out->record_errors_count = n;
        } else if (ec == KERR_INVALID_RECORD && errmsg) {
            out->record_errors = karena_calloc(&req->arena, 1, sizeof *out->record_errors);
            if (out->record_errors) {
                ProduceResponse_BatchIndexAndErrorMessage_init(out->record_errors);
                out->record_errors[0].batch_index = 0;
                out->record_errors[0].batch_index_error_message = kstr_from(errmsg);
                out->record_errors_count = 1;
            }
        }
        /* Kafka reports the log start with record validation errors */
        if (ec == KERR_INVALID_RECORD || ec == KERR_INVALID_TIMESTAMP) out->log_start_offset = plog_start_offset(p->log);
        log_info(COMPONENT, "Error processing append operation on partition %s-%d: %s", t->name, p->index,
                 errmsg ? errmsg : kerr_name((int16_t)ec));
        return;
    }
    if (converted) {
        buf = converted;
    }
    size_t len = converted ? converted_len : (size_t)pd->records.len;
    /* A topic with its own compression.type stores every batch in that codec. */
    int want = topic_codec(t);
    if (want >= 0 && (bh_get_u16(buf + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK) != want) {
        uint8_t *re = NULL;
        size_t re_len = 0;
        if (records_recompress(buf, len, want, &req->arena, &re, &re_len) != 0) {
            out->error_code = KERR_CORRUPT_MESSAGE;
            return;
        }
        buf = re;
        len = re_len;
    }
    batch_header h;
    batch_header_parse(buf, &h);
    /* KIP-890: a producer's first transactional batch on this partition
     * waits for the coordinator to confirm the partition is in its
     * transaction (txn_verify.h) */
    if (transactional_id.len >= 0 && (h.attributes & BATCH_ATTR_TRANSACTIONAL) && h.producer_id >= 0 &&
        !pstate_txn_ongoing(p->producers, h.producer_id) && txn_verify_enabled(b)) {
        verify->buf = buf;
        verify->len = len;
        verify->generation = pstate_txn_generation(p->producers, h.producer_id);
        verify->needed = true;
        return;
    }
    append_partition(b, t, p, buf, len, &h, acks, now, out, wait_for, g);
}

/* The append once the batch is valid (and verified): producer checks,
 * the log, the answer. */
static void append_partition(broker *b, topic_rt *t, partition *p, uint8_t *buf, size_t len, batch_header *hp,
                             int16_t acks, int64_t now, ProduceResponse_PartitionProduceResponse *out,
                             int64_t *wait_for, append_group *g) {
    batch_header h = *hp;
    /* Idempotent producers: a retried batch is answered, not written again. */
    bool duplicate = false;
    int64_t first = -1;
    int16_t pec = pstate_check(p->producers, &h, &duplicate, &first);
    if (pec != KERR_NONE) {
        out->error_code = pec;
        out->log_start_offset = plog_start_offset(p->log); /* Kafka: unknownLogAppendInfoWithLogStartOffset */
        log_info(COMPONENT, "Refusing a batch of producer %lld (epoch %d, sequence %d) on %s-%d: %s",
                 (long long)h.producer_id, h.producer_epoch, h.base_sequence, t->name, p->index, kerr_name(pec));
        return;
    }
    if (duplicate) {
        /* A retry of a batch already in the log: answered with its offsets,
         * with acks=all once the original is replicated. */
        out->base_offset = first;
        out->log_append_time_ms = -1;
        out->log_start_offset = plog_start_offset(p->log);
        if (acks == -1) *wait_for = first + h.last_offset_delta + 1;
        return;
    }
    if (g && g->n < g->cap) {
        pending_append *a = &g->v[g->n];
        if (part_txn_append_begin(p, buf, len, &a->w) != 0) {
            append_refused(t, p, len, append_error(p), out);
            return;
        }
        a->t = t;
        a->p = p;
        a->h = h;
        a->acks = acks;
        a->now = now;
        a->out = out;
        a->wait_for = wait_for;
        g->n++;
        return; /* answered by append_group_end */
    }
    int16_t aec = leader_append(b, p, buf, len, &first);
    if (aec != KERR_NONE) {
        append_refused(t, p, len, aec, out);
        return;
    }
    append_done(t, p, &h, len, acks, now, first, out, wait_for);
}

/* RecordBatchTooLargeException and KafkaStorageException: the error alone
 * in the answer (the message stays in the log). */
static void append_refused(const topic_rt *t, const partition *p, size_t len, int16_t error,
                           ProduceResponse_PartitionProduceResponse *out) {
    out->error_code = error;
    if (error == KERR_RECORD_LIST_TOO_LARGE)
        log_error(COMPONENT, "Error processing append operation on partition %s-%d: Message batch size is %zu "
                  "bytes in append to partition %s-%d which exceeds the maximum configured segment size of %lld.",
                  t->name, p->index, len, t->name, p->index, (long long)t->cfg.segment_bytes);
}

/* The answer to an appended batch. */
static void append_done(topic_rt *t, partition *p, const batch_header *h, size_t len, int16_t acks, int64_t now,
                        int64_t first, ProduceResponse_PartitionProduceResponse *out, int64_t *wait_for) {
    metrics_produced(&t->metrics, (uint64_t)h->last_offset_delta + 1, len);
    out->base_offset = first;
    out->log_append_time_ms = t->cfg.log_append_time ? now : -1;
    out->log_start_offset = plog_start_offset(p->log);
    if (acks == -1) *wait_for = plog_end_offset(p->log);
}

/* ReplicaManager.appendEntries for a batch whose verification answered. */
static void partition_verified(broker *b, void *arg, int16_t error) {
    partition_verify *pv = arg;
    ProduceResponse_PartitionProduceResponse *out = pv->out;
    kreq *req = pv->w->req;
    if (error != KERR_NONE) {
        out->error_code = error;
        if (error == KERR_INVALID_TXN_STATE) {
            out->error_message = KSTR_LIT("Partition was not added to the transaction");
        } else if (error == KERR_CONCURRENT_TRANSACTIONS || error == KERR_COORDINATOR_LOAD_IN_PROGRESS ||
                   error == KERR_COORDINATOR_NOT_AVAILABLE || error == KERR_NOT_COORDINATOR) {
            out->error_code = KERR_NOT_ENOUGH_REPLICAS;
            out->error_message = kstr_from(karena_sprintf(
                &req->arena, "Unable to verify the partition has been added to the transaction. Underlying error: %s",
                kerr_name(error)));
        }
        pv->w->any_error = true;
        produce_wait_release(b, pv->w);
        return;
    }
    topic_rt *t = broker_topic(b, pv->topic);
    int16_t perr = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    partition *p = t ? broker_partition_led(b, t, pv->index, &perr) : NULL;
    batch_header h;
    batch_header_parse(pv->buf, &h);
    int64_t wait_for = -1;
    if (!p) {
        out->error_code = perr;
    } else if (!pstate_txn_ongoing(p->producers, h.producer_id) &&
               pstate_txn_generation(p->producers, h.producer_id) != pv->generation) {
        /* UnifiedLog: the transaction changed while we asked (VerificationGuard) */
        out->error_code = KERR_INVALID_TXN_STATE;
        out->error_message = KSTR_LIT("Record was not part of an ongoing transaction");
    } else {
        append_partition(b, t, p, pv->buf, pv->len, &h, pv->acks, pv->now, out, &wait_for, NULL);
    }
    if (out->error_code != KERR_NONE) pv->w->any_error = true;
    if (wait_for >= 0 && out->error_code == KERR_NONE) {
        partition_wait *pw = karena_calloc(&req->arena, 1, sizeof *pw);
        if (pw) {
            *pw = (partition_wait){pv->w, out, p, wait_for, NULL};
            pv->w->holds++;
            broker_await_replication(b, p, wait_for, pv->timeout_ms, partition_replicated, pw);
        }
    }
    produce_wait_release(b, pv->w);
}

/* One Produce request from its decoding to its answer. Lives in the
 * request's arena. */
typedef struct produce_req {
    kreq *req;
    ProduceRequest r;
    produce_wait *w;
    partition_wait *candidates; /* appended partitions that may wait for their HW */
    partition_verify *verifies;
    int partitions;             /* named in the request */
    prevalidated *pre;          /* per partition named, in request order, or NULL (validate_ahead) */
    int64_t now;                /* the wall clock its validation used; 0 = not yet read */
    void *quota;                /* request_percentage sensor (quota_request_begin), or NULL */
    int64_t handler_ns;         /* its share of the loop's time, for that quota */
} produce_req;

/* Decodes the request; NULL when it was refused (and freed). */
static produce_req *produce_decode(kreq *req) {
    produce_req *pr = karena_calloc(&req->arena, 1, sizeof *pr);
    if (!pr) {
        kreq_fail(req, "out of memory");
        return NULL;
    }
    if (KREQ_DECODE(req, ProduceRequest, &pr->r) < 0) return NULL;
    pr->req = req;
    for (int i = 0; i < pr->r.topic_data_count; i++)
        if (pr->r.topic_data[i].partition_data_count > 0) pr->partitions += pr->r.topic_data[i].partition_data_count;
    return pr;
}

/* Validates every partition and appends it, or begins its append in g
 * (answered once g ends). false when the request failed (g ended, the
 * request freed). */
static bool produce_begin(broker *b, produce_req *pr, append_group *g) {
    kreq *req = pr->req;
    const ProduceRequest *rq = &pr->r;
    produce_wait *w = karena_calloc(&req->arena, 1, sizeof *w);
    if (!w) {
        append_group_end(b, g);
        kreq_fail(req, "out of memory");
        return false;
    }
    pr->w = w;
    w->req = req;
    w->holds = 1;
    ProduceResponse *resp = &w->resp;
    ProduceResponse_init(resp);
    int64_t now = pr->now ? pr->now : wall_clock_ms();
    bool bad_acks = rq->acks != 0 && rq->acks != 1 && rq->acks != -1;
    int k = 0; /* the partition's place in the request */
    /* KafkaApis: a transactional producer needs WRITE on its transactional id */
    bool txn_denied = rq->transactional_id.len >= 0 &&
                      !authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, rq->transactional_id);
    resp->responses = karena_calloc(&req->arena, (size_t)(rq->topic_data_count > 0 ? rq->topic_data_count : 1),
                                   sizeof *resp->responses);
    if (!resp->responses) {
        append_group_end(b, g);
        kreq_fail(req, "out of memory");
        return false;
    }
    resp->responses_count = rq->topic_data_count > 0 ? rq->topic_data_count : 0;
    for (int i = 0; i < resp->responses_count; i++) {
        const ProduceRequest_TopicProduceData *td = &rq->topic_data[i];
        ProduceResponse_TopicProduceResponse *to = &resp->responses[i];
        ProduceResponse_TopicProduceResponse_init(to);
        to->name = td->name;
        int32_t np = td->partition_data_count > 0 ? td->partition_data_count : 0;
        to->partition_responses = karena_calloc(&req->arena, (size_t)(np ? np : 1), sizeof *to->partition_responses);
        if (!to->partition_responses) {
            append_group_end(b, g);
            kreq_fail(req, "out of memory");
            return false;
        }
        to->partition_responses_count = np;
        topic_rt *t = broker_topic(b, td->name);
        bool topic_ok = txn_denied || authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TOPIC, td->name);
        for (int j = 0; j < np; j++, k++) {
            ProduceResponse_PartitionProduceResponse *po = &to->partition_responses[j];
            ProduceResponse_PartitionProduceResponse_init(po);
            po->index = td->partition_data[j].index;
            /* Kafka's answer for a failed partition: no offsets, no time */
            po->base_offset = -1;
            po->log_append_time_ms = -1;
            po->log_start_offset = -1;
            if (txn_denied) po->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            else if (!topic_ok) po->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (bad_acks) po->error_code = KERR_INVALID_REQUIRED_ACKS;
            else if (!t) po->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (is_internal_topic(t->name)) po->error_code = KERR_INVALID_TOPIC_EXCEPTION;
            else {
                /* the offset the HW must reach is known once the append ends (append_group) */
                partition_wait *pw = karena_calloc(&req->arena, 1, sizeof *pw);
                partition_verify v = {0};
                if (!pw) {
                    append_group_end(b, g);
                    kreq_fail(req, "out of memory");
                    return false;
                }
                *pw = (partition_wait){w, po, NULL, -1, pr->candidates};
                produce_partition(b, req, t, &td->partition_data[j], rq->acks, rq->transactional_id, po, now, &pw->p,
                                  &pw->required, &v, g, pr->pre ? &pr->pre[k] : NULL);
                if (v.needed) {
                    partition_verify *pv = karena_calloc(&req->arena, 1, sizeof *pv);
                    if (!pv) {
                        append_group_end(b, g);
                        kreq_fail(req, "out of memory");
                        return false;
                    }
                    *pv = (partition_verify){true, w, po, td->name, po->index, v.buf, v.len, v.generation, rq->acks,
                                             rq->timeout_ms, now, pr->verifies};
                    pr->verifies = pv;
                } else {
                    pr->candidates = pw;
                }
            }
        }
    }
    return true;
}

/* Once every append of the request has ended: the answer now, or the
 * waits for verifications and the high watermark. The request may be gone
 * on return. */
static void produce_finish(broker *b, produce_req *pr) {
    kreq *req = pr->req;
    produce_wait *w = pr->w;
    ProduceResponse *resp = &w->resp;
    bool any_error = false;
    for (int i = 0; i < resp->responses_count; i++)
        for (int j = 0; j < resp->responses[i].partition_responses_count; j++)
            if (resp->responses[i].partition_responses[j].error_code) any_error = true;
    partition_wait *waits = NULL;
    for (partition_wait *pw = pr->candidates, *next; pw; pw = next) {
        next = pw->next;
        if (pw->required >= 0 && pw->out->error_code == KERR_NONE) {
            pw->next = waits;
            waits = pw;
        }
    }
    w->no_response = pr->r.acks == 0;
    w->any_error = any_error;
    if (pr->r.acks == 0 && !pr->verifies) {
        /* No answer is expected; on an error Kafka closes the connection so
         * the producer notices and refreshes its metadata. */
        metrics_produce_answered(b, resp);
        if (any_error) kreq_fail(req, "error on a produce request with acks=0");
        else kreq_no_response(req);
        return;
    }
    /* batches waiting for their transaction's verification: the request
     * (frame, arena) stays until each is appended or refused */
    for (partition_verify *pv = pr->verifies; pv; pv = pv->next) w->holds++;
    for (partition_verify *pv = pr->verifies, *next; pv; pv = next) {
        next = pv->next;
        batch_header h;
        batch_header_parse(pv->buf, &h);
        txn_verify_partition(b, pr->r.transactional_id, h.producer_id, h.producer_epoch, pv->topic, pv->index,
                             partition_verified, pv);
    }
    /* acks=all: the answer waits for every appended partition's HW. The
     * request holds the partitions it appended to; a partition cannot be
     * freed while it has waiters (they are answered first). */
    int32_t timeout_ms = pr->r.timeout_ms;
    for (partition_wait *pw = waits; pw; pw = pw->next) w->holds++;
    for (partition_wait *pw = waits; pw; pw = pw->next)
        broker_await_replication(b, pw->p, pw->required, timeout_ms, partition_replicated, pw);
    produce_wait_release(b, w);
}

/* ---- the requests of one turn of the loop, appended together ----
 *
 * With a write pool, a Produce request is not handled when it arrives but
 * at the end of the loop's turn (a timer due at once), with every other
 * Produce request that arrived in the same turn: their partitions' data
 * writes then run at once on the pool's threads, so several producers'
 * copies into the page cache use several cores, not only the partitions
 * of one request. A connection has one request at a time, so its order
 * is kept; requests of other connections were concurrent anyway. */

static int64_t elapsed_ns(int64_t since) { return (int64_t)monotonic_ns() - since; }

static void produce_turn_run(kloop *l, void *arg);
static void produce_turn_requests(broker *b);

static void produce_turn_add(broker *b, kreq *req) {
    req->next_waiting = NULL;
    if (b->produce_turn_tail) b->produce_turn_tail->next_waiting = req;
    else b->produce_turn = req;
    b->produce_turn_tail = req;
    if (!b->produce_turn_timer) b->produce_turn_timer = loop_timer_add(b->loop, 0, produce_turn_run, b);
}

/* Handles the requests queued so far: decoded and begun in arrival order,
 * their writes run together, then each is answered. Answering may queue a
 * connection's next request: it waits for the next turn. */
static void produce_turn_handle(broker *b) {
    /* Answers given meanwhile (ours, and those of requests waiting for the
     * partitions we append to) start no connection's next request until
     * every request of the turn is answered: none of them may find a
     * partition it holds deleted, or a log with a write in flight. */
    net_server_hold(b->server);
    produce_turn_requests(b);
    net_server_release(b->server);
}

/* The arrays of a turn, owned by the broker and grown to the largest turn
 * so far: a turn allocates nothing of its own. */
typedef struct produce_scratch {
    produce_req **reqs;
    pending_append *appends;
    plog_write **writes;
    prevalidated *pre;     /* validate_ahead: one per partition of the turn */
    prevalidated **jobs;
    int reqs_cap, appends_cap, writes_cap, pre_cap, jobs_cap;
    int pre_used;          /* entries whose arenas are to be freed */
} produce_scratch;

static produce_scratch *scratch_of(broker *b) {
    if (!b->produce_scratch) b->produce_scratch = calloc(1, sizeof *b->produce_scratch);
    return b->produce_scratch;
}

/* ---- validation ahead ----
 *
 * records_validate (the CRC, decompression, every record's framing) is the
 * produce path's CPU besides the copies; Kafka runs it on its request
 * handler threads. When a turn carries at least WPOOL_PARALLEL_MIN_BYTES
 * of v2 batches in two or more partitions, they are all validated at once
 * on the write pool before the requests are begun; produce_partition then
 * takes each result where it would have validated, so the answers and
 * their order are those of validation on the loop. A batch of a partition
 * that is then refused for another reason was validated for nothing, as
 * its bytes were received for nothing. */

static void validate_one(void *ctx, int i) {
    prevalidated *v = ((prevalidated **)ctx)[i];
    /* v2 batches only (validated_ahead): nothing is converted */
    v->ec = records_validate(v->buf, v->len, &v->opts, &v->arena, &v->info, NULL, NULL, &v->errmsg);
}

/* A partition's records that validate_ahead takes: one or more v2 batches
 * of a v3+ request (older requests and magics are converted on the loop). */
static bool validated_ahead(const produce_req *pr, const ProduceRequest_PartitionProduceData *pd) {
    return pr->req->api_version >= 3 && pd->records.p && pd->records.len >= BATCH_HEADER_SIZE &&
           pd->records.p[BATCH_OFF_MAGIC] == 2;
}

/* The validation work of those records, in bytes of a plain batch's CRC: a
 * compressed batch is decompressed and each of its records read, whatever
 * its size on the wire (repetitive records shrink a hundredfold), so it
 * counts 512 bytes a record (the first batch's count) and four times its
 * size at least. */
static size_t validation_bytes(const ProduceRequest_PartitionProduceData *pd) {
    size_t len = (size_t)pd->records.len;
    if (!(bh_get_u16(pd->records.p + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK)) return len;
    int32_t records = (int32_t)bh_get_u32(pd->records.p + BATCH_OFF_RECORD_COUNT);
    size_t by_records = records > 0 ? (size_t)records * 512 : 0;
    return by_records > len * 4 ? by_records : len * 4;
}

static void validate_ahead(broker *b, produce_scratch *sc, produce_req **prs, int live, int partitions) {
    sc->pre_used = 0;
    if (!b->appends || partitions < 2) return;
    size_t total = 0;
    int n = 0;
    for (int r = 0; r < live; r++)
        for (int i = 0; i < prs[r]->r.topic_data_count; i++) {
            const ProduceRequest_TopicProduceData *td = &prs[r]->r.topic_data[i];
            for (int j = 0; j < td->partition_data_count; j++)
                if (validated_ahead(prs[r], &td->partition_data[j])) {
                    total += validation_bytes(&td->partition_data[j]);
                    n++;
                }
        }
    if (n < 2 || total < WPOOL_PARALLEL_MIN_BYTES) return;
    if (array_reserve((void **)&sc->pre, &sc->pre_cap, partitions, sizeof *sc->pre) != 0 ||
        array_reserve((void **)&sc->jobs, &sc->jobs_cap, n, sizeof *sc->jobs) != 0)
        return; /* validated on the loop */
    int64_t now = wall_clock_ms();
    int used = 0, jobs = 0;
    for (int r = 0; r < live; r++) {
        produce_req *pr = prs[r];
        pr->now = now;
        pr->pre = &sc->pre[used];
        for (int i = 0; i < pr->r.topic_data_count; i++) {
            const ProduceRequest_TopicProduceData *td = &pr->r.topic_data[i];
            topic_rt *t = broker_topic(b, td->name);
            for (int j = 0; j < td->partition_data_count; j++) {
                const ProduceRequest_PartitionProduceData *pd = &td->partition_data[j];
                prevalidated *v = &sc->pre[used++];
                memset(v, 0, sizeof *v);
                karena_init(&v->arena, 0);
                if (!t || !validated_ahead(pr, pd)) continue;
                v->done = true;
                v->buf = (uint8_t *)pd->records.p;
                v->len = (size_t)pd->records.len;
                validate_opts(t, pd->index, now, &pr->req->arena, &v->opts);
                sc->jobs[jobs++] = v;
            }
        }
    }
    sc->pre_used = used;
    wpool_run_each(b->appends, validate_one, sc->jobs, jobs);
}

/* The job arenas, once every request of the turn is begun. */
static void validate_ahead_done(produce_scratch *sc) {
    for (int i = 0; i < sc->pre_used; i++) karena_free(&sc->pre[i].arena);
    sc->pre_used = 0;
}

static void produce_turn_requests(broker *b) {
    kreq *list = b->produce_turn;
    b->produce_turn = b->produce_turn_tail = NULL;
    int n = 0;
    for (kreq *q = list; q; q = q->next_waiting) n++;
    produce_scratch *sc = scratch_of(b);
    produce_req **prs = NULL;
    if (sc && array_reserve((void **)&sc->reqs, &sc->reqs_cap, n, sizeof *sc->reqs) == 0) prs = sc->reqs;
    int live = 0, partitions = 0;
    for (kreq *q = list, *next; q; q = next) {
        next = q->next_waiting;
        q->next_waiting = NULL;
        if (!prs) {
            kreq_fail(q, "out of memory");
            continue;
        }
        if (!q->conn) {
            /* closed before its turn: nothing was acknowledged, and the
             * authorizer has no principal to ask about */
            kreq_no_response(q);
            continue;
        }
        int64_t t0 = monotonic_ns();
        void *quota = quota_request_begin(b, q);
        produce_req *pr = produce_decode(q);
        if (!pr) continue;
        pr->quota = quota;
        pr->handler_ns = elapsed_ns(t0);
        prs[live++] = pr;
        partitions += pr->partitions;
    }
    if (!prs) return;
    int64_t tv = monotonic_ns();
    validate_ahead(b, sc, prs, live, partitions);
    int64_t validate_share = live ? elapsed_ns(tv) / live : 0;
    append_group g = {0};
    if (array_reserve((void **)&sc->appends, &sc->appends_cap, partitions, sizeof *sc->appends) == 0 &&
        array_reserve((void **)&sc->writes, &sc->writes_cap, partitions, sizeof *sc->writes) == 0) {
        g.v = sc->appends;
        g.writes = sc->writes;
        g.cap = partitions;
        memset(g.v, 0, (size_t)partitions * sizeof *g.v);
    } /* else g.cap 0: appended one by one */
    int begun = 0;
    for (int i = 0; i < live; i++) {
        int64_t t0 = monotonic_ns();
        if (!produce_begin(b, prs[i], &g)) {
            prs[i] = NULL; /* answered and freed */
            continue;
        }
        prs[i]->handler_ns += elapsed_ns(t0) + validate_share;
        begun++;
    }
    validate_ahead_done(sc);
    int64_t t0 = monotonic_ns();
    append_group_end(b, &g);
    int64_t write_share = begun ? elapsed_ns(t0) / begun : 0;
    for (int i = 0; i < live; i++) {
        if (!prs[i]) continue;
        void *quota = prs[i]->quota;
        int64_t spent = prs[i]->handler_ns + write_share;
        int64_t t1 = monotonic_ns();
        produce_finish(b, prs[i]); /* the request may be gone */
        if (quota) quota_request_end(b, quota, spent + elapsed_ns(t1));
    }
}

/* Rounds of a turn: answering a round's requests takes their connections'
 * next pipelined frames, already read, which form the next round at once
 * instead of waiting for the loop's next pass; their answers then leave in
 * one write at the pass's end (server.c, worker_pass_end). Bounded, so the
 * other connections' input is read between. */
#define PRODUCE_TURN_ROUNDS 16

static void produce_turn_run(kloop *l, void *arg) {
    (void)l;
    broker *b = arg;
    b->produce_turn_timer = 0;
    /* A round's answers may add the timer again: it stays, and finds
     * nothing or what came after the last round. */
    for (int round = 0; round < PRODUCE_TURN_ROUNDS && b->produce_turn; round++) produce_turn_handle(b);
}

void produce_turn_shutdown(broker *b) {
    loop_timer_cancel(b->loop, b->produce_turn_timer);
    b->produce_turn_timer = 0;
    /* what was received is appended and answered; answers may queue more */
    for (int rounds = 0; b->produce_turn && rounds < 1000; rounds++) produce_turn_handle(b);
    while (b->produce_turn) {
        kreq *q = b->produce_turn;
        b->produce_turn = q->next_waiting;
        kreq_fail(q, "the broker is shutting down");
    }
    b->produce_turn_tail = NULL;
    if (b->produce_scratch) {
        free(b->produce_scratch->reqs);
        free(b->produce_scratch->appends);
        free(b->produce_scratch->writes);
        free(b->produce_scratch->pre);
        free(b->produce_scratch->jobs);
        free(b->produce_scratch);
        b->produce_scratch = NULL;
    }
}

void h_produce(broker *b, kreq *req) {
    if (b->appends) {
        produce_turn_add(b, req); /* handled at the end of this turn */
        return;
    }
    /* appended one partition after another; an answer given meanwhile to a
     * request waiting on one of them starts nothing before this one ends */
    produce_req *pr = produce_decode(req);
    if (!pr) return;
    net_server_hold(b->server);
    if (produce_begin(b, pr, NULL)) produce_finish(b, pr);
    net_server_release(b->server);
}
