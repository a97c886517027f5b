/* h_fetch.c - Fetch v0-15, with long polling.
 *
 * A fetch reads each partition from its log as a file range that goes to
 * the socket with sendfile (no copy through user space), except for
 * Fetch v0-3, whose clients need the old message format and get a
 * down-converted copy. If fewer than min_bytes are available and
 * max_wait_ms > 0, the request is parked; an append to any partition, or
 * the deadline, re-runs it (fetch_wait below). No busy waiting.
 *
 * Fetch sessions (KIP-227): this broker declines to create sessions
 * (answers session id 0, which the protocol allows), so clients send full
 * fetches; an incremental fetch for an unknown session gets
 * FETCH_SESSION_ID_NOT_FOUND.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/fetch_wait.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/records.h"
#include "util/log.h"

typedef struct fetch_waiter {
    struct fetch_waiter *prev, *next;
    kreq *req;
    FetchRequest r;
    loop_timer_id timer;
} fetch_waiter;

static fetch_waiter *waiters; /* one broker per process */
static broker *the_broker;

/* Build the response for r. Returns the bytes of record data gathered; with
 * errors set *had_error. Does not send. */
static int64_t fetch_build(broker *b, kreq *req, const FetchRequest *r, FetchResponse *resp, bool *had_error) {
    karena *a = &req->arena;
    int16_t v = req->api_version;
    int64_t total = 0;
    int64_t max_bytes = v >= 3 ? r->max_bytes : INT32_MAX;
    if (max_bytes <= 0) max_bytes = 1;
    bool read_committed = r->isolation_level == 1;
    bool first_data = true; /* KIP-74: the first batch goes even if over the limits */
    *had_error = false;
    FetchResponse_init(resp);
    resp->session_id = 0;
    int32_t nt = r->topics_count > 0 ? r->topics_count : 0;
    resp->responses = karena_calloc(a, (size_t)(nt ? nt : 1), sizeof *resp->responses);
    if (!resp->responses) return -1;
    resp->responses_count = nt;
    for (int i = 0; i < nt; i++) {
        const FetchRequest_FetchTopic *ft = &r->topics[i];
        FetchResponse_FetchableTopicResponse *to = &resp->responses[i];
        FetchResponse_FetchableTopicResponse_init(to);
        to->topic = ft->topic;
        to->topic_id = ft->topic_id;
        topic_rt *t = v >= 13 ? broker_topic_by_id(b, &ft->topic_id) : broker_topic(b, ft->topic);
        int32_t np = ft->partitions_count > 0 ? ft->partitions_count : 0;
        to->partitions = karena_calloc(a, (size_t)(np ? np : 1), sizeof *to->partitions);
        if (!to->partitions) return -1;
        to->partitions_count = np;
        for (int j = 0; j < np; j++) {
            const FetchRequest_FetchPartition *fp = &ft->partitions[j];
            FetchResponse_PartitionData *po = &to->partitions[j];
            FetchResponse_PartitionData_init(po);
            po->partition_index = fp->partition;
            po->high_watermark = -1;
            po->last_stable_offset = -1;
            po->log_start_offset = -1;
            po->records = (krecords){NULL, 0, -1, 0};
            if (read_committed) {
                po->aborted_transactions = NULL;
                po->aborted_transactions_count = 0;
            }
            partition *p = (t && fp->partition >= 0 && fp->partition < t->nparts) ? t->parts[fp->partition] : NULL;
            if (!p) {
                po->error_code = t || v < 13 ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_UNKNOWN_TOPIC_ID;
                *had_error = true;
                continue;
            }
            po->high_watermark = p->high_watermark;
            po->last_stable_offset = p->high_watermark;
            po->log_start_offset = plog_start_offset(p->log);
            if (fp->current_leader_epoch >= 0 && fp->current_leader_epoch != p->leader_epoch) {
                po->error_code = fp->current_leader_epoch > p->leader_epoch ? KERR_UNKNOWN_LEADER_EPOCH
                                                                            : KERR_FENCED_LEADER_EPOCH;
                *had_error = true;
                continue;
            }
            int64_t remaining = max_bytes - total;
            int32_t limit = fp->partition_max_bytes;
            if (remaining < limit) limit = (int32_t)(remaining > 0 ? remaining : 0);
            plog_slice s = {-1, 0, 0};
            int rc = plog_read(p->log, fp->fetch_offset, limit, first_data, p->high_watermark, &s);
            if (rc == PLOG_OFFSET_OUT_OF_RANGE) {
                po->error_code = KERR_OFFSET_OUT_OF_RANGE;
                *had_error = true;
                continue;
            }
            if (rc != 0) {
                po->error_code = KERR_KAFKA_STORAGE_ERROR;
                *had_error = true;
                continue;
            }
            if (s.len <= 0) continue;
            if (v <= 3) {
                /* Old consumers read message format v0 (Fetch v0-1) or v1 (v2-3). */
                uint8_t *tmp = karena_alloc(a, (size_t)s.len);
                kwriter w;
                kw_init(&w);
                if (tmp && pread(s.fd, tmp, (size_t)s.len, s.file_pos) == s.len &&
                    records_down_convert_from(tmp, (size_t)s.len, v <= 1 ? 0 : 1, fp->fetch_offset, &w, a) == 0 &&
                    !w.err) {
                    uint8_t *copy = karena_alloc(a, w.len ? w.len : 1);
                    if (copy) {
                        if (w.len) memcpy(copy, w.buf, w.len);
                        po->records = (krecords){copy, (int32_t)w.len, -1, 0};
                        total += (int64_t)w.len;
                    }
                }
                kw_free(&w);
            } else {
                po->records = (krecords){NULL, s.len, s.fd, s.file_pos};
                total += s.len;
            }
            if (s.len > 0) first_data = false;
        }
    }
    return total;
}

/* Bytes a fetch would return now, or -1 if some partition would answer an
 * error; allocates nothing, so a parked fetch can be re-checked on every
 * append without growing its arena. */
static int64_t fetch_available(broker *b, int16_t v, const FetchRequest *r) {
    int64_t total = 0;
    for (int i = 0; i < r->topics_count; i++) {
        const FetchRequest_FetchTopic *ft = &r->topics[i];
        topic_rt *t = v >= 13 ? broker_topic_by_id(b, &ft->topic_id) : broker_topic(b, ft->topic);
        for (int j = 0; j < ft->partitions_count; j++) {
            const FetchRequest_FetchPartition *fp = &ft->partitions[j];
            partition *p = (t && fp->partition >= 0 && fp->partition < t->nparts) ? t->parts[fp->partition] : NULL;
            if (!p) return -1;
            plog_slice s = {-1, 0, 0};
            int rc = plog_read(p->log, fp->fetch_offset, fp->partition_max_bytes, total == 0, p->high_watermark, &s);
            if (rc != 0) return -1;
            total += s.len;
            if (total >= r->min_bytes) return total;
        }
    }
    return total;
}

static void fetch_send(kreq *req, FetchResponse *resp) { KREQ_REPLY(req, FetchResponse, resp); }

static void waiter_remove(fetch_waiter *w) {
    if (w->prev) w->prev->next = w->next;
    else waiters = w->next;
    if (w->next) w->next->prev = w->prev;
}

/* Complete a parked fetch (timeout, new data, or shutdown). */
static void waiter_complete(fetch_waiter *w) {
    waiter_remove(w);
    FetchResponse resp;
    bool err;
    fetch_build(the_broker, w->req, &w->r, &resp, &err);
    fetch_send(w->req, &resp);
    free(w);
}

static void waiter_timeout(kloop *l, void *arg) {
    (void)l;
    fetch_waiter *w = arg;
    w->timer = 0;
    waiter_complete(w);
}

void broker_partition_appended(broker *b, partition *p) {
    (void)p;
    /* Re-check parked fetches: few at a time on a broker, and a check is a
     * handful of index look-ups without I/O. */
    fetch_waiter *w = waiters;
    while (w) {
        fetch_waiter *next = w->next;
        if (!w->req->conn) {
            /* client gone: answer into the void now */
            loop_timer_cancel(b->loop, w->timer);
            waiter_complete(w);
        } else {
            int64_t bytes = fetch_available(b, w->req->api_version, &w->r);
            if (bytes < 0 || bytes >= w->r.min_bytes) {
                loop_timer_cancel(b->loop, w->timer);
                waiter_complete(w);
            }
        }
        w = next;
    }
}

void fetch_wait_init(broker *b) { the_broker = b; }

void fetch_wait_shutdown(broker *b) {
    while (waiters) {
        loop_timer_cancel(b->loop, waiters->timer);
        waiter_complete(waiters);
    }
}

void h_fetch(broker *b, kreq *req) {
    FetchRequest r;
    if (KREQ_DECODE(req, FetchRequest, &r) < 0) return;
    if (req->api_version >= 7 && r.session_id != 0) {
        /* We never hand out session ids, so any id is unknown. */
        FetchResponse resp;
        FetchResponse_init(&resp);
        resp.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
        fetch_send(req, &resp);
        return;
    }
    FetchResponse resp;
    bool err;
    int64_t bytes = fetch_build(b, req, &r, &resp, &err);
    if (bytes < 0) {
        kreq_fail(req, "out of memory");
        return;
    }
    if (r.max_wait_ms <= 0 || bytes >= r.min_bytes || err || r.topics_count <= 0 || b->shutting_down) {
        fetch_send(req, &resp);
        return;
    }
    fetch_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        fetch_send(req, &resp);
        return;
    }
    w->req = req;
    w->r = r; /* its arrays live in the request's arena: valid until answered */
    w->next = waiters;
    if (waiters) waiters->prev = w;
    waiters = w;
    w->timer = loop_timer_add(b->loop, r.max_wait_ms, waiter_timeout, w);
}
