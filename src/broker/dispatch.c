/* dispatch.c - from a request frame to its handler, and back.
 *
 * Decodes the request header, checks the API and version against the table
 * of what this broker advertises (exactly Kafka 3.6.1's list from the lab),
 * and calls the handler. Also implements kreq (request.h): responses get
 * their size prefix and header here, and the connection is told when the
 * request is done so it can read the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/dispatch.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/sasl_broker.h"
#include "metrics/metrics.h"
#include "net/server.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define COMPONENT "kafka.server.KafkaApis"

typedef void (*handler_fn)(broker *b, kreq *req);

typedef struct api_entry {
    int16_t key;
    int16_t min_version, max_version;
    handler_fn handler;
} api_entry;

/* What this broker advertises in ApiVersions: Kafka 3.6.1's list (lab §1). */
static const api_entry apis[] = {
    {KAPI_PRODUCE, 0, 9, h_produce},
    {KAPI_FETCH, 0, 15, h_fetch},
    {KAPI_LIST_OFFSETS, 0, 8, h_list_offsets},
    {KAPI_METADATA, 0, 12, h_metadata},
    {KAPI_OFFSET_COMMIT, 0, 8, h_offset_commit},
    {KAPI_OFFSET_FETCH, 0, 8, h_offset_fetch},
    {KAPI_FIND_COORDINATOR, 0, 4, h_find_coordinator},
    {KAPI_JOIN_GROUP, 0, 9, h_join_group},
    {KAPI_HEARTBEAT, 0, 4, h_heartbeat},
    {KAPI_LEAVE_GROUP, 0, 5, h_leave_group},
    {KAPI_SYNC_GROUP, 0, 5, h_sync_group},
    {KAPI_DESCRIBE_GROUPS, 0, 5, h_describe_groups},
    {KAPI_LIST_GROUPS, 0, 4, h_list_groups},
    {KAPI_SASL_HANDSHAKE, 0, 1, h_sasl_handshake},
    {KAPI_API_VERSIONS, 0, 3, h_api_versions},
    {KAPI_CREATE_TOPICS, 0, 7, h_create_topics},
    {KAPI_DELETE_TOPICS, 0, 6, h_delete_topics},
    {KAPI_DELETE_RECORDS, 0, 2, h_delete_records},
    {KAPI_INIT_PRODUCER_ID, 0, 4, h_init_producer_id},
    {KAPI_OFFSET_FOR_LEADER_EPOCH, 0, 4, h_offset_for_leader_epoch},
    {KAPI_ADD_PARTITIONS_TO_TXN, 0, 4, h_add_partitions_to_txn},
    {KAPI_ADD_OFFSETS_TO_TXN, 0, 3, h_add_offsets_to_txn},
    {KAPI_END_TXN, 0, 3, h_end_txn},
    {KAPI_WRITE_TXN_MARKERS, 0, 1, h_write_txn_markers},
    {KAPI_TXN_OFFSET_COMMIT, 0, 3, h_txn_offset_commit},
    {KAPI_DESCRIBE_ACLS, 0, 3, h_describe_acls},
    {KAPI_CREATE_ACLS, 0, 3, h_create_acls},
    {KAPI_DELETE_ACLS, 0, 3, h_delete_acls},
    {KAPI_DESCRIBE_CONFIGS, 0, 4, h_describe_configs},
    {KAPI_ALTER_CONFIGS, 0, 2, h_alter_configs},
    {KAPI_ALTER_REPLICA_LOG_DIRS, 0, 2, h_alter_replica_log_dirs},
    {KAPI_DESCRIBE_LOG_DIRS, 0, 4, h_describe_log_dirs},
    {KAPI_SASL_AUTHENTICATE, 0, 2, h_sasl_authenticate},
    {KAPI_CREATE_PARTITIONS, 0, 3, h_create_partitions},
    {KAPI_CREATE_DELEGATION_TOKEN, 0, 3, h_create_delegation_token},
    {KAPI_RENEW_DELEGATION_TOKEN, 0, 2, h_renew_delegation_token},
    {KAPI_EXPIRE_DELEGATION_TOKEN, 0, 2, h_expire_delegation_token},
    {KAPI_DESCRIBE_DELEGATION_TOKEN, 0, 3, h_describe_delegation_token},
    {KAPI_DELETE_GROUPS, 0, 2, h_delete_groups},
    {KAPI_ELECT_LEADERS, 0, 2, h_elect_leaders},
    {KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 1, h_incremental_alter_configs},
    {KAPI_ALTER_PARTITION_REASSIGNMENTS, 0, 0, h_alter_partition_reassignments},
    {KAPI_LIST_PARTITION_REASSIGNMENTS, 0, 0, h_list_partition_reassignments},
    {KAPI_OFFSET_DELETE, 0, 0, h_offset_delete},
    {KAPI_DESCRIBE_CLIENT_QUOTAS, 0, 1, h_describe_client_quotas},
    {KAPI_ALTER_CLIENT_QUOTAS, 0, 1, h_alter_client_quotas},
    {KAPI_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, h_describe_user_scram_credentials},
    {KAPI_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, h_alter_user_scram_credentials},
    {KAPI_DESCRIBE_QUORUM, 0, 1, h_describe_quorum},
    {KAPI_UPDATE_FEATURES, 0, 1, h_update_features},
    {KAPI_DESCRIBE_CLUSTER, 0, 0, h_describe_cluster},
    {KAPI_DESCRIBE_PRODUCERS, 0, 0, h_describe_producers},
    {KAPI_UNREGISTER_BROKER, 0, 0, h_unregister_broker},
    {KAPI_DESCRIBE_TRANSACTIONS, 0, 0, h_describe_transactions},
    {KAPI_LIST_TRANSACTIONS, 0, 0, h_list_transactions},
};
#define NAPIS ((int)(sizeof apis / sizeof apis[0]))

static const api_entry *find_api(int16_t key) {
    for (int i = 0; i < NAPIS; i++)
        if (apis[i].key == key) return &apis[i];
    return NULL;
}

/* ---- kreq ---- */

static void kreq_free(kreq *req) {
    metrics_request_end(req);
    karena_free(&req->arena);
    free(req->frame);
    free(req);
}

/* The request is finished: detach it from its connection and let the
 * connection read the next one. */
static void kreq_finish(kreq *req) {
    kconn *c = req->conn;
    if (c) {
        kconn_set_udata(c, NULL);
        kconn_request_done(c);
    }
    kreq_free(req);
}

kwriter *kreq_response_begin(kreq *req) {
    kwriter *w = malloc(sizeof *w);
    if (!w) return NULL;
    kw_init(w);
    req->out = w;
    req->size_at = kw_reserve(w, 4);
    ResponseHeader h;
    ResponseHeader_init(&h);
    h.correlation_id = req->correlation_id;
    ResponseHeader_encode(&h, w, kapi_response_header_version(req->api_key, req->api_version));
    return w;
}

void kreq_response_end(kreq *req) {
    kwriter *w = req->out;
    req->out = NULL;
    if (w) {
        if (w->err || kw_size(w) - 4 > INT32_MAX) {
            log_error(COMPONENT, "Could not encode the response to %s v%d",
                      kapi_lookup(req->api_key) ? kapi_lookup(req->api_key)->name : "?",
                      req->api_version);
            kw_free(w);
            free(w);
            if (req->conn) kconn_close(req->conn, "response encoding failed");
            req->conn = NULL;
        } else {
            kw_patch_i32(w, req->size_at, (int32_t)(kw_size(w) - 4));
            metrics_request_sending(req);
            req->out = w;
            if (quota_hold(req)) return; /* throttled: quota.c sends it and finishes the request */
            req->out = NULL;
            if (req->conn) kconn_send(req->conn, w);
            else {
                kw_free(w);
                free(w);
            }
        }
    }
    kreq_finish(req);
}

void kreq_no_response(kreq *req) { kreq_finish(req); }

void kreq_fail(kreq *req, const char *why) {
    kconn *c = req->conn;
    if (c) {
        const kapi_info *info = kapi_lookup(req->api_key);
        log_warn("kafka.network.Processor", "Closing connection from %s: %s (%s v%d, correlation id %d)",
                 kconn_peer(c), why, info ? info->name : "?", req->api_version, req->correlation_id);
        kconn_set_udata(c, NULL);
        req->conn = NULL;
        kconn_close(c, NULL);
    }
    kreq_free(req);
}

/* ---- ApiVersions ---- */

/* KIP-511: client software name and version must match this pattern. */
static bool valid_software_field(kstr s) {
    if (s.len <= 0) return false;
    for (int i = 0; i < s.len; i++) {
        char ch = s.p[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        bool inner = ch == '-' || ch == '.';
        if (!alnum && !(inner && i > 0 && i < s.len - 1)) return false;
    }
    return true;
}

static void fill_api_versions(ApiVersionsResponse *resp, karena *a) {
    resp->api_keys = karena_calloc(a, NAPIS, sizeof(ApiVersionsResponse_ApiVersion));
    resp->api_keys_count = resp->api_keys ? NAPIS : 0;
    for (int i = 0; i < resp->api_keys_count; i++) {
        ApiVersionsResponse_ApiVersion_init(&resp->api_keys[i]);
        resp->api_keys[i].api_key = apis[i].key;
        resp->api_keys[i].min_version = apis[i].min_version;
        resp->api_keys[i].max_version = apis[i].max_version;
    }
}

void h_api_versions(broker *b, kreq *req) {
    ApiVersionsResponse resp;
    ApiVersionsResponse_init(&resp);
    fill_api_versions(&resp, &req->arena);
    if (req->api_version > 3) {
        /* Unknown future version: answer v0 with the list (KIP-511). */
        resp.error_code = KERR_UNSUPPORTED_VERSION;
        req->api_version = 0;
        KREQ_REPLY(req, ApiVersionsResponse, &resp);
        return;
    }
    ApiVersionsRequest r;
    if (KREQ_DECODE(req, ApiVersionsRequest, &r) < 0) return;
    if (req->api_version >= 3 &&
        (!valid_software_field(r.client_software_name) || !valid_software_field(r.client_software_version))) {
        resp.error_code = KERR_INVALID_REQUEST;
        KREQ_REPLY(req, ApiVersionsResponse, &resp);
        return;
    }
    resp.throttle_time_ms = 0;
    /* Features as a 3.6 KRaft node reports them: metadata.version 3.6-IV2 (14). */
    resp.supported_features = karena_calloc(&req->arena, 1, sizeof(*resp.supported_features));
    if (resp.supported_features) {
        ApiVersionsResponse_SupportedFeatureKey_init(resp.supported_features);
        resp.supported_features_count = 1;
        resp.supported_features[0].name = KSTR_LIT("metadata.version");
        resp.supported_features[0].min_version = 1;
        resp.supported_features[0].max_version = 14;
    }
    resp.finalized_features = karena_calloc(&req->arena, 1, sizeof(*resp.finalized_features));
    if (resp.finalized_features) {
        ApiVersionsResponse_FinalizedFeatureKey_init(resp.finalized_features);
        resp.finalized_features_count = 1;
        resp.finalized_features[0].name = KSTR_LIT("metadata.version");
        resp.finalized_features[0].min_version_level = b->image->metadata_version;
        resp.finalized_features[0].max_version_level = b->image->metadata_version;
    }
    resp.finalized_features_epoch = b->image->last_offset;
    KREQ_REPLY(req, ApiVersionsResponse, &resp);
}

/* ---- entry points from the network layer ---- */

void dispatch_request(void *ctx, kconn *c, uint8_t *frame, size_t len) {
    broker *b = ctx;
    /* after a v0 SaslHandshake: a raw SASL token, not a request */
    if (b->sasl && broker_sasl_raw_frame(b, c, frame, len)) return;
    kreq *req = calloc(1, sizeof *req);
    if (!req) {
        free(frame);
        kconn_close(c, "out of memory");
        return;
    }
    req->broker = b;
    req->conn = c;
    req->frame = frame;
    req->frame_len = len;
    req->received_ms = loop_now_ms(b->loop);
    karena_init(&req->arena, 0);
    kconn_set_udata(c, req);

    kreader r;
    kr_init(&r, frame, len);
    req->api_key = kr_i16(&r);
    req->api_version = kr_i16(&r);
    const api_entry *api = find_api(req->api_key);
    const kapi_info *info = kapi_lookup(req->api_key);
    if (!api || !info) {
        char why[96];
        snprintf(why, sizeof why, "unknown API key %d", req->api_key);
        kreq_fail(req, why);
        return;
    }
    int16_t hv;
    if (req->api_key == KAPI_API_VERSIONS && req->api_version > api->max_version)
        hv = 2; /* KIP-511: a newer ApiVersions uses the flexible header */
    else if (req->api_version < api->min_version || req->api_version > api->max_version) {
        char why[96];
        snprintf(why, sizeof why, "unsupported version %d of %s", req->api_version, info->name);
        kreq_fail(req, why);
        return;
    } else
        hv = kapi_request_header_version(req->api_key, req->api_version);
    kr_init(&r, frame, len);
    RequestHeader h;
    RequestHeader_init(&h);
    if (RequestHeader_decode(&h, &r, hv, &req->arena) < 0) {
        req->correlation_id = h.correlation_id;
        kreq_fail(req, "malformed request header");
        return;
    }
    req->correlation_id = h.correlation_id;
    req->client_id = h.client_id;
    req->body = r;
    /* a SASL listener serves only the SASL exchange until authenticated */
    if (b->sasl && !broker_sasl_admit(b, req)) return;
    b->request_listener = kconn_listener(c); /* endpoints in answers: this listener's */
    metrics_request_start(req);
    void *quota = quota_request_begin(b, req); /* request_percentage (broker/quota.h) */
    int64_t q0 = quota ? monotonic_ns() : 0;
    api->handler(b, req);
    if (quota) quota_request_end(b, quota, monotonic_ns() - q0);
    b->request_listener = NULL;
    metrics_request_returned(); /* req may be gone */
}

void dispatch_connection_closed(void *ctx, kconn *c) {
    broker *b = ctx;
    broker_sasl_connection_closed(b, c);
    kreq *req = kconn_udata(c);
    if (req) req->conn = NULL; /* its owner answers into the void later */
}

bool dispatch_api_supported(int16_t key, int16_t version) {
    const api_entry *a = find_api(key);
    return a && version >= a->min_version && version <= a->max_version;
}
