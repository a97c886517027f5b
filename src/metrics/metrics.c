/* metrics.c - counters and histograms updated on the request path (see
 * metrics.h). */
#include "metrics/metrics.h"

#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

topic_metrics metrics_all_topics;
req_metrics metrics_requests[METRICS_REQ_SLOTS];

/* The requests whose handlers are running, innermost last: a handler can
 * answer another connection's parked request, whose connection then
 * dispatches its next request inside it. A request answered before its
 * handler returns spent no time waiting elsewhere (RemoteTimeMs 0); one
 * that finishes is taken off (its slot NULL) so nothing touches it after. */
#define MAX_NESTED 16
static struct kreq *in_handler[MAX_NESTED];
static int depth;

int64_t metrics_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t metrics_window_of(int64_t mono_ns) {
    return (uint32_t)(mono_ns / ((int64_t)METRICS_WINDOW_S * 1000000000));
}

/* ---- histograms ---- */

void histo_bucket_range(int i, uint64_t *low, uint64_t *width) {
    if (i < HISTO_SUB) {
        *low = (uint64_t)i;
        *width = 1;
        return;
    }
    int msb = (i - HISTO_SUB) / HISTO_SUB + HISTO_SUB_BITS;
    int sub = (i - HISTO_SUB) % HISTO_SUB;
    *width = 1ull << (msb - HISTO_SUB_BITS);
    *low = (uint64_t)(HISTO_SUB + sub) * *width;
}

void histo_record(histo *h, uint64_t us, uint32_t window) {
    if (h->window != window) {
        /* a new window: the current one becomes the previous, or both go
         * when more than one window passed without a value */
        if (h->window + 1 == window) memcpy(h->prev, h->cur, sizeof h->prev);
        else memset(h->prev, 0, sizeof h->prev);
        memset(h->cur, 0, sizeof h->cur);
        h->window = window;
    }
    h->cur[histo_bucket(us)]++;
    h->count++;
}

uint64_t histo_quantile(const histo *h, double q, uint32_t window) {
    const uint32_t *a = NULL, *b = NULL;
    if (h->window == window) {
        a = h->cur;
        b = h->prev;
    } else if (h->window + 1 == window) {
        a = h->cur; /* what was current is the previous window now */
    } else {
        return 0;
    }
    uint64_t n = 0;
    for (int i = 0; i < HISTO_BUCKETS; i++) n += a[i] + (b ? b[i] : 0);
    if (n == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    uint64_t seen = 0;
    for (int i = 0; i < HISTO_BUCKETS; i++) {
        seen += a[i] + (b ? b[i] : 0);
        if (seen >= rank) {
            uint64_t low, width;
            histo_bucket_range(i, &low, &width);
            return low + width / 2; /* the bucket's middle */
        }
    }
    return 0;
}

/* ---- requests ---- */

static int slot_of(int16_t api_key) {
    return api_key >= 0 && api_key < METRICS_API_SLOTS ? api_key : -1;
}

void metrics_request_start(struct kreq *req) {
    req->m_start_ns = metrics_now_ns();
    req->m_local_ns = 0;
    req->m_send_ns = 0;
    if (depth < MAX_NESTED) in_handler[depth] = req;
    depth++;
}

void metrics_request_returned(void) {
    if (depth == 0) return;
    depth--;
    if (depth >= MAX_NESTED) return;
    /* not answered yet: it waits (purgatory, long poll) from now on */
    if (in_handler[depth]) in_handler[depth]->m_local_ns = metrics_now_ns();
    in_handler[depth] = NULL;
}

void metrics_request_sending(struct kreq *req) { req->m_send_ns = metrics_now_ns(); }

void metrics_fetch_kind(struct kreq *req, bool follower) { req->m_kind = follower ? 2 : 1; }

static void record_times(req_metrics *m, uint64_t total, uint64_t local, uint64_t remote, uint64_t send,
                         uint32_t w) {
    histo_record(&m->total, total, w);
    histo_record(&m->local, local, w);
    histo_record(&m->remote, remote, w);
    histo_record(&m->send, send, w);
}

void metrics_request_end(struct kreq *req) {
    for (int i = 0; i < depth && i < MAX_NESTED; i++)
        if (in_handler[i] == req) in_handler[i] = NULL;
    int slot = slot_of(req->api_key);
    if (slot < 0 || req->m_start_ns == 0) return; /* refused before its handler ran */
    int64_t now = metrics_now_ns();
    int64_t sent_at = req->m_send_ns ? req->m_send_ns : now;
    int64_t local_end = req->m_local_ns ? req->m_local_ns : sent_at;
    uint64_t total = (uint64_t)(now - req->m_start_ns) / 1000;
    uint64_t local = (uint64_t)(local_end - req->m_start_ns) / 1000;
    uint64_t remote = req->m_local_ns ? (uint64_t)(sent_at - req->m_local_ns) / 1000 : 0;
    uint64_t send = (uint64_t)(now - sent_at) / 1000;
    uint32_t w = metrics_window_of(now);
    req_metrics *m = &metrics_requests[slot];
    int v = req->api_version >= 0 && req->api_version <= METRICS_MAX_VERSION ? req->api_version : METRICS_MAX_VERSION;
    m->requests[v]++;
    record_times(m, total, local, remote, send, w);
    if (req->m_kind) {
        req_metrics *f = &metrics_requests[req->m_kind == 2 ? METRICS_FETCH_FOLLOWER : METRICS_FETCH_CONSUMER];
        f->requests[v]++;
        record_times(f, total, local, remote, send, w);
    }
}

void metrics_error(int16_t api_key, int16_t code) {
    int slot = slot_of(api_key);
    if (slot < 0 || code < -1 || code + 1 >= METRICS_ERROR_SLOTS) return;
    metrics_requests[slot].errors[code + 1]++;
}

/* ---- produce and fetch ---- */

/* Kafka's ReplicaManager.appendToLocalLog does not count these as failed
 * produce requests (the client's or the cluster's state, not the broker's
 * failure). */
static bool produce_failure(int16_t code) {
    switch (code) {
    case KERR_NONE:
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_MESSAGE_TOO_LARGE:
    case KERR_RECORD_LIST_TOO_LARGE:
    case KERR_CORRUPT_MESSAGE:
    case KERR_KAFKA_STORAGE_ERROR:
    case KERR_INVALID_TOPIC_EXCEPTION:
    case KERR_INVALID_REQUIRED_ACKS:
        return false;
    default:
        return true;
    }
}

void metrics_produce_answered(broker *b, const ProduceResponse *resp) {
    for (int i = 0; i < resp->responses_count; i++) {
        const ProduceResponse_TopicProduceResponse *to = &resp->responses[i];
        topic_rt *t = NULL;
        bool looked = false;
        for (int j = 0; j < to->partition_responses_count; j++) {
            int16_t code = to->partition_responses[j].error_code;
            metrics_all_topics.total_produce++;
            if (!looked) {
                t = broker_topic(b, to->name);
                looked = true;
            }
            if (t) t->metrics.total_produce++;
            if (produce_failure(code)) {
                metrics_all_topics.failed_produce++;
                if (t) t->metrics.failed_produce++;
            }
        }
    }
}

/* As for produce: Kafka's readFromLog does not count these as failed. */
static bool fetch_failure(int16_t code) {
    switch (code) {
    case KERR_NONE:
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_UNKNOWN_TOPIC_ID:
    case KERR_INCONSISTENT_TOPIC_ID:
    case KERR_NOT_LEADER_OR_FOLLOWER:
    case KERR_REPLICA_NOT_AVAILABLE:
    case KERR_UNKNOWN_LEADER_EPOCH:
    case KERR_FENCED_LEADER_EPOCH:
    case KERR_KAFKA_STORAGE_ERROR:
    case KERR_OFFSET_OUT_OF_RANGE:
        return false;
    default:
        return true;
    }
}

void metrics_fetched(topic_rt *t, bool follower, int64_t bytes, int16_t error) {
    if (follower) return; /* replication traffic has its own meters in Kafka */
    metrics_all_topics.total_fetch++;
    if (t) t->metrics.total_fetch++;
    if (bytes > 0) {
        metrics_all_topics.bytes_out += (uint64_t)bytes;
        if (t) t->metrics.bytes_out += (uint64_t)bytes;
    }
    if (fetch_failure(error)) {
        metrics_all_topics.failed_fetch++;
        if (t) t->metrics.failed_fetch++;
    }
}
