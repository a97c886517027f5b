/* kafka_client.h - a non-blocking Kafka protocol client on the event loop,
 * for broker-to-broker traffic (replica fetchers, later transaction markers).
 *
 * One kc_conn per destination (host, port). It connects lazily (first send,
 * or kc_connect), non-blocking with a timeout, sets TCP_NODELAY and the
 * configured socket buffer sizes, then runs ApiVersions v3 with this
 * client's software name and version (KIP-511); a broker that answers
 * UNSUPPORTED_VERSION is asked again at the ApiVersions version it lists,
 * or v0, as Kafka's NetworkClient does. The broker's version range per API
 * is kept for kc_pick_version.
 *
 * Requests are framed here (request header v1, or v2 for flexible versions,
 * with the client id), get correlation ids in the order they go out, and are
 * pipelined up to max_in_flight; more wait in a queue, as do requests sent
 * while connecting. Responses come back in order: a response whose
 * correlation id is not the oldest one in flight closes the connection.
 *
 * Every request's callback is called exactly once:
 *   KC_OK               with the response body;
 *   KC_TIMEOUT          its timeout passed (counted from kc_send). A request
 *                       already on the wire cannot be taken back, so its
 *                       connection is closed, as Kafka's NetworkClient does
 *                       (the others in flight then get KC_DISCONNECTED);
 *   KC_DISCONNECTED     the connection broke while it was in flight, or the
 *                       response could not be read (bad size, correlation
 *                       id, header);
 *   KC_CONNECT_FAILED   it was waiting for a connection that could not be
 *                       made (refused, unresolvable, connect timeout, failed
 *                       ApiVersions);
 *   KC_UNSUPPORTED_VERSION the broker does not serve api_key at that version;
 *   KC_CANCELLED        kc_conn_free was called first.
 * A broken connection is not retried on its own for in-flight requests;
 * requests still queued (or the next kc_send) reconnect after an
 * exponential backoff from reconnect_backoff_ms up to
 * reconnect_backoff_max_ms (+-20% jitter, as Kafka), reset by a successful
 * ApiVersions.
 *
 * Callbacks run on the loop, never inside kc_send. A callback may call
 * kc_send and kc_conn_free (on this connection too); after kc_conn_free the
 * kc_conn must not be used. kc_conn_free calls every outstanding callback
 * with KC_CANCELLED before it returns, so callers that free their per-request
 * state in the callback need no other clean-up.
 *
 * Responses: the frame size is checked against max_response_bytes before
 * anything is allocated. A frame that fits the connection's read buffer is
 * read there; a larger one (a replica Fetch response of tens of MB) gets one
 * buffer of exactly its size that the socket is read into. In the callback,
 * kc_resp_take() hands the frame over to the caller (no copy for frames that
 * got their own buffer), e.g. to append its record batches to a log.
 *
 * Names other than numeric addresses are resolved on a short-lived helper
 * thread (getaddrinfo blocks); numeric addresses need none.
 */
#ifndef SAMSA_KAFKA_CLIENT_H
#define SAMSA_KAFKA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "protocol/wire.h"
#include "util/arena.h"

typedef struct kc_conn kc_conn;

typedef enum kc_status {
    KC_OK = 0,
    KC_TIMEOUT,
    KC_DISCONNECTED,
    KC_CONNECT_FAILED,
    KC_UNSUPPORTED_VERSION,
    KC_CANCELLED,
} kc_status;

typedef struct kc_config {
    const char *client_id;         /* request header client id; default "samsa-broker" */
    const char *software_name;     /* ApiVersions v3+ (KIP-511); default "samsa" */
    const char *software_version;  /* default "3.6.1" */
    int connect_timeout_ms;        /* socket.connection.setup.timeout.ms; default 10000 */
    int request_timeout_ms;        /* used when kc_send gets timeout_ms <= 0; default 30000 */
    int max_in_flight;             /* max.in.flight.requests.per.connection; default 5 */
    int reconnect_backoff_ms;      /* reconnect.backoff.ms; default 50 */
    int reconnect_backoff_max_ms;  /* reconnect.backoff.max.ms; default 1000 */
    int send_buffer_bytes;         /* SO_SNDBUF; <= 0 leaves the OS default */
    int receive_buffer_bytes;      /* SO_RCVBUF; <= 0 leaves the OS default */
    int32_t max_response_bytes;    /* largest response frame accepted; default 256 MiB */
} kc_config;

/* What a callback gets. body reads the response body (after the response
 * header; empty unless status is KC_OK). arena is scratch memory for
 * decoding, freed when the callback returns. */
typedef struct kc_resp {
    kreader body;
    karena *arena;
    int16_t api_key, api_version;
    int32_t correlation_id;        /* -1 if the request never went out */
    /* private */
    uint8_t *frame_;
    size_t frame_len_;
    bool frame_owned_;
} kc_resp;

typedef void (*kc_cb)(kc_status status, kc_resp *resp, void *arg);
/* Encodes a request body at version into w; 0 or -1 (generated T_encode). */
typedef int (*kc_encode_fn)(const void *msg, kwriter *w, int16_t version);

typedef struct kc_stats {
    uint64_t connects;             /* connections that completed ApiVersions */
    uint64_t connect_failures;
    uint64_t disconnects;          /* established connections lost or closed on error */
    uint64_t responses;
    uint64_t bytes_in, bytes_out;
    size_t largest_frame_alloc;    /* biggest buffer allocated for one frame */
    int16_t api_versions_version;  /* ApiVersions version the broker accepted, -1 none yet */
} kc_stats;

/* TLS for broker-to-broker traffic: fn tells, per destination, the client
 * TLS context to connect with (NULL: plain TCP). Set once by the broker;
 * connections made before keep their transport. */
struct tls_ctx;
typedef const struct tls_ctx *(*kc_tls_policy_fn)(void *arg, const char *host, int port);
void kc_set_tls_policy(kc_tls_policy_fn fn, void *arg);

/* Which destinations want SASL (a SASL_PLAINTEXT or SASL_SSL endpoint), and
 * with which mechanism (PLAIN, SCRAM-SHA-256/512) and credentials: after
 * ApiVersions the connection runs SaslHandshake v1 and SaslAuthenticate
 * before it is ready; a failed authentication breaks it (and is retried
 * after the backoff). */
typedef struct kc_sasl_creds {
    char mechanism[32];
    char username[256];
    char password[256];
} kc_sasl_creds;
typedef bool (*kc_sasl_policy_fn)(void *arg, const char *host, int port, kc_sasl_creds *out);
void kc_set_sasl_policy(kc_sasl_policy_fn fn, void *arg);

void kc_config_defaults(kc_config *cfg);
/* cfg may be NULL (defaults); strings in it are copied. Does no I/O. */
kc_conn *kc_conn_new(kloop *l, const char *host, int port, const kc_config *cfg);
/* Adopts an already connected socket (tests, fuzzing): ApiVersions starts at
 * once; once it breaks there is no address to reconnect to: queued requests
 * fail with KC_CONNECT_FAILED and kc_send returns -1. */
kc_conn *kc_conn_new_fd(kloop *l, int fd, const kc_config *cfg);
/* Calls every outstanding callback with KC_CANCELLED, closes the socket and
 * frees the connection (after the current callback returns, if called from
 * one). NULL is fine. */
void kc_conn_free(kc_conn *c);

/* Starts connecting if not connected; cb gets KC_OK when ApiVersions is done
 * (at once, on the loop, if it already is), or an error, within timeout_ms. */
int kc_connect(kc_conn *c, int timeout_ms, kc_cb cb, void *arg);
bool kc_ready(const kc_conn *c);

/* min(our_max, broker's max) if that is not below the broker's min, else -1;
 * -1 before the first ApiVersions completed or when the broker does not list
 * the API. The last answer is kept while reconnecting (a request whose
 * version the reconnected broker no longer serves gets
 * KC_UNSUPPORTED_VERSION). */
int16_t kc_pick_version(const kc_conn *c, int16_t api_key, int16_t our_max);
/* The broker's range for api_key; false if unknown or not listed. */
bool kc_broker_versions(const kc_conn *c, int16_t api_key, int16_t *min, int16_t *max);

/* Queues a request; the callback is called exactly once, later, on the loop.
 * timeout_ms <= 0 uses request_timeout_ms. Returns 0, or -1 when it could
 * not be queued (encoding failed, out of memory, a body with file
 * references, the connection being freed or an adopted socket gone); then
 * cb is not called. */
int kc_send(kc_conn *c, int16_t api_key, int16_t version, const kwriter *body, int timeout_ms, kc_cb cb,
            void *arg);
int kc_send_fn(kc_conn *c, int16_t api_key, int16_t version, kc_encode_fn encode, const void *msg, int timeout_ms,
               kc_cb cb, void *arg);
/* msg is the generated request struct for api_key (kmsg_request_type). */
int kc_send_msg(kc_conn *c, int16_t api_key, int16_t version, const void *msg, int timeout_ms, kc_cb cb, void *arg);

/* In a KC_OK callback: takes the response frame (malloc'd, caller frees with
 * free()); *len gets its size. resp->body is moved onto the returned buffer.
 * A frame that had its own buffer is handed over without a copy; a small one
 * is copied out of the read buffer. NULL on allocation failure or when there
 * is no frame. */
uint8_t *kc_resp_take(kc_resp *resp, size_t *len);
/* In a KC_OK callback: decodes the body with the generated response struct
 * for resp->api_key into out (arena memory). 0 or -1. */
int kc_resp_decode(kc_resp *resp, void *out);

const char *kc_status_name(kc_status st);
/* The Kafka error code a status stands for (REQUEST_TIMED_OUT,
 * NETWORK_EXCEPTION, UNSUPPORTED_VERSION; 0 for KC_OK). */
int16_t kc_status_error_code(kc_status st);

/* Requests queued and in flight. */
int kc_outstanding(const kc_conn *c);
const kc_stats *kc_conn_stats(const kc_conn *c);
const char *kc_conn_name(const kc_conn *c); /* "host:port" */

#endif
