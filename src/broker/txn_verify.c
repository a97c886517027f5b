/* txn_verify.c - transaction verification before a transactional append
 * (see txn_verify.h). */
#include "broker/txn_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/kafka_client.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "txn/txn_log.h"
#include "util/log.h"
#include "util/props.h"

#define COMPONENT "kafka.server.AddPartitionsToTxnManager"
#define TXN_STATE_TOPIC "__transaction_state"

/* A coordinator node we talk to. */
typedef struct tv_node {
    int32_t id;
    char host[256];
    int port;
    kc_conn *conn;
    struct tv_node *next;
} tv_node;

static tv_node *nodes;

typedef struct tv_req {
    broker *b;
    txn_verify_fn cb;
    void *arg;
    char *topic;
    int32_t partition;
} tv_req;

bool txn_verify_enabled(broker *b) {
    const char *v = props_get(&b->cfg.raw, "transaction.partition.verification.enable");
    return !v || strcmp(v, "false") != 0;
}

static kc_conn *conn_for(broker *b, int32_t id) {
    broker_node bn;
    if (!broker_peer_lookup(b, id, &bn)) return NULL;
    tv_node *n = nodes;
    while (n && n->id != id) n = n->next;
    if (n && n->conn && (strcmp(n->host, bn.host) != 0 || n->port != bn.port)) {
        kc_conn *c = n->conn; /* the node moved: its callbacks see KC_CANCELLED */
        n->conn = NULL;
        kc_conn_free(c);
    }
    if (!n) {
        n = calloc(1, sizeof *n);
        if (!n) return NULL;
        n->id = id;
        n->next = nodes;
        nodes = n;
    }
    if (!n->conn) {
        kc_config cfg;
        kc_config_defaults(&cfg);
        char cid[64];
        snprintf(cid, sizeof cid, "broker-%d-txn-verifier", b->cfg.node_id);
        cfg.client_id = cid;
        const char *t = props_get(&b->cfg.raw, "request.timeout.ms");
        cfg.request_timeout_ms = t && atoi(t) > 0 ? atoi(t) : 30000;
        snprintf(n->host, sizeof n->host, "%s", bn.host);
        n->port = bn.port;
        n->conn = kc_conn_new(b->loop, n->host, n->port, &cfg);
    }
    return n->conn;
}

static void finish(tv_req *r, int16_t error) {
    txn_verify_fn cb = r->cb;
    void *arg = r->arg;
    broker *b = r->b;
    free(r->topic);
    free(r);
    cb(b, arg, error);
}

/* AddPartitionsToTxnHandler.onComplete for one transaction, one partition. */
static void answered(kc_status st, kc_resp *resp, void *arg) {
    tv_req *r = arg;
    AddPartitionsToTxnResponse out;
    if (st == KC_UNSUPPORTED_VERSION) {
        /* a coordinator without verify-only: Kafka skips verification */
        finish(r, KERR_NONE);
        return;
    }
    if (st != KC_OK || kc_resp_decode(resp, &out) != 0) {
        log_warn(COMPONENT, "AddPartitionsToTxnRequest failed with a network exception: %s", kc_status_name(st));
        finish(r, KERR_NETWORK_EXCEPTION);
        return;
    }
    if (out.error_code != KERR_NONE) {
        /* clients are not shown CLUSTER_AUTHORIZATION_FAILED */
        finish(r, out.error_code == KERR_CLUSTER_AUTHORIZATION_FAILED ? KERR_INVALID_TXN_STATE : out.error_code);
        return;
    }
    int16_t error = KERR_NONE;
    for (int i = 0; i < out.results_by_transaction_count; i++) {
        const AddPartitionsToTxnResponse_AddPartitionsToTxnResult *tr = &out.results_by_transaction[i];
        for (int j = 0; j < tr->topic_results_count; j++) {
            const AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult *tp = &tr->topic_results[j];
            if (!kstr_eq_c(tp->name, r->topic)) continue;
            for (int k = 0; k < tp->results_by_partition_count; k++)
                if (tp->results_by_partition[k].partition_index == r->partition)
                    error = tp->results_by_partition[k].partition_error_code;
        }
    }
    /* producers expect INVALID_PRODUCER_EPOCH here */
    finish(r, error == KERR_PRODUCER_FENCED ? KERR_INVALID_PRODUCER_EPOCH : error);
}

void txn_verify_partition(broker *b, kstr transactional_id, int64_t producer_id, int16_t producer_epoch, kstr topic,
                          int32_t partition, txn_verify_fn cb, void *arg) {
    tv_req *r = calloc(1, sizeof *r);
    if (!r) {
        cb(b, arg, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    *r = (tv_req){b, cb, arg, strndup(topic.p ? topic.p : "", topic.len > 0 ? (size_t)topic.len : 0), partition};
    if (!r->topic) {
        finish(r, KERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    /* ReplicaManager.getTransactionCoordinator: the leader of the id's
     * __transaction_state partition; no topic or no leader: not available */
    kstr tname = {TXN_STATE_TOPIC, (int32_t)strlen(TXN_STATE_TOPIC)};
    topic_rt *ts = broker_topic(b, tname);
    if (!ts || ts->nparts <= 0) {
        finish(r, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    int32_t part = txn_partition_for(transactional_id.p, (size_t)transactional_id.len, ts->nparts);
    const mpartition *mp = broker_mpartition(b, ts, part);
    kc_conn *c = mp && mp->leader >= 0 ? conn_for(b, mp->leader) : NULL;
    if (!c) {
        finish(r, KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    AddPartitionsToTxnRequest req;
    AddPartitionsToTxnRequest_init(&req);
    AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction txn;
    AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction_init(&txn);
    AddPartitionsToTxnRequest_AddPartitionsToTxnTopic tp;
    AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_init(&tp);
    tp.name = topic;
    tp.partitions = &r->partition;
    tp.partitions_count = 1;
    txn.transactional_id = transactional_id;
    txn.producer_id = producer_id;
    txn.producer_epoch = producer_epoch;
    txn.verify_only = true;
    txn.topics = &tp;
    txn.topics_count = 1;
    req.transactions = &txn;
    req.transactions_count = 1;
    if (kc_send_msg(c, KAPI_ADD_PARTITIONS_TO_TXN, 4, &req, 0, answered, r) != 0) finish(r, KERR_NETWORK_EXCEPTION);
}

void txn_verify_shutdown(void) {
    while (nodes) {
        tv_node *n = nodes;
        nodes = n->next;
        kc_conn_free(n->conn);
        free(n);
    }
}
