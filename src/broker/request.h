/* request.h - one Kafka request in flight, and how a handler answers it.
 *
 * The network layer hands the broker one complete request frame at a time
 * per connection (Kafka's ordering: the next request of a connection is not
 * read until this one is answered). A handler decodes req->body with the
 * generated codec for (api_key, api_version), and answers exactly once:
 *
 *     MetadataResponse resp; MetadataResponse_init(&resp); ...
 *     KREQ_REPLY(req, MetadataResponse, &resp);
 *
 * or kreq_no_response() (acks=0 produce) or kreq_fail() (close the
 * connection). It may answer later (long-polling fetch, JoinGroup): it keeps
 * the kreq and answers from a timer or another request. If the connection
 * dies meanwhile, req->conn becomes NULL and the answer is simply dropped.
 *
 * Ownership: the kreq owns its frame and its arena; both are freed when it
 * is answered. Everything decoded from the body points into the frame or
 * the arena, so it stays valid until then.
 */
#ifndef SAMSA_REQUEST_H
#define SAMSA_REQUEST_H

#include <stdint.h>

#include "metrics/error_counts.h"
#include "protocol/wire.h"
#include "util/arena.h"

struct broker;
struct kconn;

typedef struct kreq {
    struct broker *broker;
    struct kconn *conn;      /* NULL once the connection has closed */
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kstr client_id;
    karena arena;            /* request-lifetime memory */
    uint8_t *frame;          /* owned: the request bytes after the size prefix */
    size_t frame_len;
    kreader body;            /* positioned after the request header */
    int64_t received_ms;     /* monotonic */
    kwriter *out;            /* response under construction (kreq_response_begin) */
    size_t size_at;          /* where the frame size goes in out */
    struct kreq *next_waiting; /* free for the owner of a deferred request */
    /* request timing for metrics/metrics.h (monotonic ns; 0 = not reached) */
    int64_t m_start_ns, m_local_ns, m_send_ns;
    int32_t throttle_ms;     /* client quotas: mute the connection this long after answering (broker/quota.h) */
    uint8_t m_kind;          /* fetches: 1 from a consumer, 2 from a follower */
} kreq;

/* Start the response: returns the writer to encode the body into; the
 * response header (correlation id, tagged fields when flexible) is written. */
kwriter *kreq_response_begin(kreq *req);
/* Finish: send the response and free the request. */
void kreq_response_end(kreq *req);
/* Answer nothing (Produce with acks=0) and free the request. */
void kreq_no_response(kreq *req);
/* Close the connection (malformed request) and free the request. */
void kreq_fail(kreq *req, const char *why);

/* (every error code of the answer is counted for ErrorsPerSec, metrics/) */
#define KREQ_REPLY(req, Type, msgp)                                   \
    do {                                                              \
        kwriter *kreq_w_ = kreq_response_begin(req);                 \
        if (kreq_w_) Type##_encode((msgp), kreq_w_, (req)->api_version); \
        metrics_errors_##Type((msgp), (req)->api_key, (req)->api_version); \
        kreq_response_end(req);                                       \
    } while (0)

/* A response array of n elements (at least one slot, so a count of zero
 * still gives a non-NULL pointer) in the request's arena; NULL when out of
 * memory. */
#define KREQ_ALLOC_ARRAY(req, n, ptr) \
    ((ptr) = karena_calloc(&(req)->arena, (size_t)((n) > 0 ? (n) : 1), sizeof *(ptr)))

/* Decode the body with the generated decoder; on failure logs, closes the
 * connection and returns -1 (the request is then freed: do not touch it). */
#define KREQ_DECODE(req, Type, msgp)                                                  \
    (Type##_init(msgp), Type##_decode((msgp), &(req)->body, (req)->api_version, &(req)->arena) == 0 \
         ? 0                                                                          \
         : (kreq_fail((req), "could not parse " #Type), -1))

#endif
