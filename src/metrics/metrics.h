/* metrics.h - the broker's counters and latency histograms, as Kafka's
 * MBeans count them (docs/metrics.md maps each to its MBean and to the name
 * the Prometheus JMX exporter gives it).
 *
 * Everything here is updated on the event-loop thread with plain
 * increments: no locks, no allocation. Per-topic counters live in the
 * topic's runtime state (topic_rt.metrics), so they go away with the topic
 * as Kafka removes a deleted topic's BrokerTopicMetrics; the all-topics
 * totals and the request metrics are process globals (one broker per
 * process). The exporter (exporter.h) reads them when scraped.
 */
#ifndef SAMSA_METRICS_H
#define SAMSA_METRICS_H

#include <stdbool.h>
#include <stdint.h>

/* BrokerTopicMetrics of one topic (and, in metrics_all_topics, of all). */
typedef struct topic_metrics {
    uint64_t messages_in;      /* MessagesInPerSec */
    uint64_t bytes_in;         /* BytesInPerSec */
    uint64_t bytes_out;        /* BytesOutPerSec (consumers only, as Kafka) */
    uint64_t failed_produce;   /* FailedProduceRequestsPerSec */
    uint64_t failed_fetch;     /* FailedFetchRequestsPerSec */
    uint64_t total_produce;    /* TotalProduceRequestsPerSec (per partition) */
    uint64_t total_fetch;      /* TotalFetchRequestsPerSec (per partition) */
} topic_metrics;

extern topic_metrics metrics_all_topics;

/* ---- latency histograms ----
 *
 * Log-linear buckets of microseconds: exact below 8 us, then 8 buckets per
 * power of two (at most 12.5% off) up to 2^32 us. Kafka's histograms are
 * biased to the last five minutes; these keep the current and the previous
 * window of METRICS_WINDOW_S seconds, so quantiles describe the last
 * 30-60 s, and a cumulative count. */
#define HISTO_SUB_BITS 3
#define HISTO_SUB (1 << HISTO_SUB_BITS)
#define HISTO_BUCKETS (HISTO_SUB + (32 - HISTO_SUB_BITS) * HISTO_SUB)
#define METRICS_WINDOW_S 30

typedef struct histo {
    uint64_t count;            /* since start */
    uint32_t window;           /* window id of cur */
    uint32_t cur[HISTO_BUCKETS];
    uint32_t prev[HISTO_BUCKETS];
} histo;

static inline int histo_bucket(uint64_t us) {
    if (us < HISTO_SUB) return (int)us;
    int msb = 63 - __builtin_clzll(us);
    if (msb > 31) return HISTO_BUCKETS - 1;
    int sub = (int)((us >> (msb - HISTO_SUB_BITS)) & (HISTO_SUB - 1));
    return HISTO_SUB + (msb - HISTO_SUB_BITS) * HISTO_SUB + sub;
}
/* The smallest value of bucket i and its width. */
void histo_bucket_range(int i, uint64_t *low, uint64_t *width);
void histo_record(histo *h, uint64_t us, uint32_t window);
/* The q-quantile (0 < q <= 1) in microseconds over the windows still
 * current at window; 0 when nothing was recorded. */
uint64_t histo_quantile(const histo *h, double q, uint32_t window);
uint32_t metrics_window_of(int64_t mono_ns);

/* ---- request metrics (kafka.network:type=RequestMetrics) ---- */

#define METRICS_API_SLOTS 72           /* API keys 0..71 */
#define METRICS_FETCH_CONSUMER METRICS_API_SLOTS /* "FetchConsumer" */
#define METRICS_FETCH_FOLLOWER (METRICS_API_SLOTS + 1)
#define METRICS_REQ_SLOTS (METRICS_API_SLOTS + 2)
#define METRICS_MAX_VERSION 16
#define METRICS_ERROR_SLOTS 128        /* error codes -1..126 */

typedef struct req_metrics {
    uint64_t requests[METRICS_MAX_VERSION + 1]; /* RequestsPerSec by version */
    uint64_t errors[METRICS_ERROR_SLOTS];       /* ErrorsPerSec by error code + 1 */
    histo total, local, remote, send;           /* TotalTimeMs, LocalTimeMs, RemoteTimeMs, ResponseSendTimeMs */
} req_metrics;

extern req_metrics metrics_requests[METRICS_REQ_SLOTS];

struct broker;
struct kreq;
struct topic_rt;
struct ProduceResponse;

int64_t metrics_now_ns(void);
/* dispatch.c: a request's handler is about to run / has returned (it may
 * have answered already) / the answer is being sent / it is finished (the
 * kreq is about to be freed). */
void metrics_request_start(struct kreq *req);
void metrics_request_returned(void);
void metrics_request_sending(struct kreq *req);
void metrics_request_end(struct kreq *req);
/* h_fetch.c: a fetch from a follower or a consumer (FetchFollower or
 * FetchConsumer as well as Fetch). */
void metrics_fetch_kind(struct kreq *req, bool follower);
/* One error code in an answer (Kafka's response errorCounts): KREQ_REPLY
 * counts every error_code of the answer it sends (error_counts.h). */
void metrics_error(int16_t api_key, int16_t code);

/* h_produce.c: a leader appended count records of bytes to t. */
static inline void metrics_produced(topic_metrics *t, uint64_t records, uint64_t bytes) {
    t->messages_in += records;
    t->bytes_in += bytes;
    metrics_all_topics.messages_in += records;
    metrics_all_topics.bytes_in += bytes;
}
/* The produce answer is final: partitions requested and failed per topic. */
void metrics_produce_answered(struct broker *b, const struct ProduceResponse *resp);
/* h_fetch.c: one partition of a fetch answer (t NULL for unknown topics). */
void metrics_fetched(struct topic_rt *t, bool follower, int64_t bytes, int16_t error);

#endif
