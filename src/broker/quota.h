/* quota.h - client quota enforcement, as Kafka 3.6.1's ClientQuotaManager
 * (produce/fetch byte rates) and ClientRequestQuotaManager
 * (request_percentage), with the quotas of the metadata image
 * (ClientQuotaRecords, broker/h_quotas.c).
 *
 * A quota is looked up in DefaultQuotaCallback's order (user+client-id,
 * user+default client, user, default user+client-id, default user+default
 * client, default user, client-id, default client-id) and measured as a
 * Rate over quota.window.num (11) samples of quota.window.size.seconds
 * (1 s). A violation gives a throttle time of
 * (observed - quota) / quota * window, as QuotaUtils.throttleTime; the
 * response carries it in throttle_time_ms and the connection reads nothing
 * more until it is over (KIP-219; dispatch.c).
 *
 * A node without quotas of a kind pays one comparison per request; sensors
 * are made once per (user, client-id) seen, never per request.
 */
#ifndef SAMSA_QUOTA_H
#define SAMSA_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/wire.h"

struct broker;
struct kreq;

#define QUOTA_SAMPLES 11
#define QUOTA_WINDOW_MS 1000

/* Kafka's Rate over a SampledStat (values per second). */
typedef struct qrate {
    int64_t last_ms[QUOTA_SAMPLES]; /* each sample's window start */
    double value[QUOTA_SAMPLES];
    int nused, cur;
} qrate;

void qrate_init(qrate *r);
void qrate_record(qrate *r, double v, int64_t now_ms);
/* Rate.windowSize: the elapsed time the rate is over, at least
 * (samples - 1) windows. */
int64_t qrate_window_ms(qrate *r, int64_t now_ms);
/* The rate per second now. */
double qrate_measure(qrate *r, int64_t now_ms);
/* QuotaUtils.throttleTime: round((value - bound) / bound * window); 0 when within. */
int64_t quota_throttle_ms(double value, double bound, int64_t window_ms);

/* Kafka's TokenBucket (controller_mutation_rate): tokens refill at quota
 * per second up to a burst of samples * window * quota; a fresh bucket is
 * full (its last refill is at time 0). Tokens may go below zero. */
typedef struct qbucket {
    double tokens;
    int64_t last_ms;
} qbucket;

/* Refill to now and return the tokens. */
double qbucket_measure(qbucket *t, double quota, int64_t now_ms);
/* Refill, then take v tokens. */
void qbucket_record(qbucket *t, double quota, double v, int64_t now_ms);
/* ControllerMutationQuotaManager.throttleTimeMs: round(-tokens / quota * 1000) ms. */
int32_t qbucket_throttle_ms(double tokens, double quota);

typedef enum { QUOTA_PRODUCE, QUOTA_FETCH, QUOTA_REQUEST, QUOTA_CONNECTION, QUOTA_MUTATION, QUOTA_NKINDS } quota_kind;

/* Record value (bytes; percent for QUOTA_REQUEST) against the quota of the
 * request's (principal, client id) and return the throttle time in ms (0:
 * within the quota, or no quota). Request quotas are capped at one window
 * (ClientRequestQuotaManager). */
int32_t quota_record(struct broker *b, quota_kind kind, const struct kreq *req, double value);
/* The throttle time the request would get now without recording anything
 * (fetch: checked before reading, so a throttled fetch reads nothing). */
int32_t quota_check(struct broker *b, quota_kind kind, const struct kreq *req);
/* ClientQuotaManager.getMaxValueInQuotaWindow: quota * (samples - 1) *
 * window seconds; INT32_MAX when the request has no quota of this kind. */
int32_t quota_max_in_window(struct broker *b, quota_kind kind, const struct kreq *req);
/* request_percentage (ClientRequestQuotaManager), approximated: before the
 * handler, the time already recorded decides the request's throttle (capped
 * at one window) and req->throttle_ms is set; after it, the handler's wall
 * time is recorded (the request may be gone by then, so the sensor is
 * returned by begin; NULL = nothing to record). SASL and exempt APIs are
 * not metered. */
void *quota_request_begin(struct broker *b, struct kreq *req);
void quota_request_end(struct broker *b, void *sensor, int64_t handler_ns);
/* connection_creation_rate (ConnectionQuotas): record a new connection from
 * ip (the ip's quota, else the default ip's) and return how long to hold it
 * before closing it unserved, capped at one window; 0 = accept. ctx is the
 * broker. */
int64_t quota_accept_throttle(void *ctx, const char *ip);
/* controller_mutation_rate (KIP-599, ControllerMutationQuotaManager): the
 * partitions a CreateTopics, CreatePartitions or DeleteTopics creates or
 * deletes are taken from the (user, client-id)'s token bucket. From
 * strict_since on, an operation when the bucket is already below zero is
 * refused (THROTTLING_QUOTA_EXCEEDED) and nothing is taken; older versions
 * are permissive: the operation goes ahead and only the response is
 * throttled. Either way the response carries the longest throttle time. */
typedef struct qmutation {
    void *binding;       /* NULL: no quota applies */
    bool strict;
    int32_t throttle_ms; /* the last violation's throttle time */
} qmutation;

void quota_mutation_begin(struct broker *b, const struct kreq *req, int16_t strict_since, qmutation *m);
/* Record permits (partitions); false when the operation is refused. */
bool quota_mutation_record(struct broker *b, qmutation *m, double permits);
/* The throttle time the response carries (the larger of the mutation's
 * and request_percentage's); the connection is muted that long after it. */
int32_t quota_mutation_end(qmutation *m, struct kreq *req);

/* Is any quota of this kind set (the fast path)? */
bool quota_any(struct broker *b, quota_kind kind);

/* Muting: the response is sent now (or, for versions before client-side
 * throttling, after the delay) and the connection's next request is read
 * when throttle_ms is over. Called by kreq_response_end; true when the
 * request is kept until then (quota_release finishes it). */
bool quota_hold(struct kreq *req);
/* Shutdown: finish every held request now. */
void quota_shutdown(struct broker *b);

#endif
