/* txn_handlers.c - the transaction coordinator's request handlers (Kafka
 * 3.6.1's KafkaApis: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
 * DescribeTransactions, ListTransactions; InitProducerId is in
 * broker/h_admin.c next to the idempotent path). The coordinator's
 * decisions and writes are txn_manager.c's. No authorizer: every
 * authorization check of KafkaApis passes. */
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/handlers.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "txn/txn_manager.h"

/* Clients before these versions do not know PRODUCER_FENCED. */
static int16_t fenced_for(int16_t err, int16_t version, int16_t first_version_knowing) {
    return version < first_version_knowing && err == KERR_PRODUCER_FENCED ? KERR_INVALID_PRODUCER_EPOCH : err;
}

/* ---- AddPartitionsToTxn ---- */

typedef AddPartitionsToTxnRequest_AddPartitionsToTxnTopic apt_topic;
typedef AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult apt_topic_result;

typedef struct apt_ctx {
    kreq *req;
    int pending; /* transactions not answered yet, + 1 while they are started */
    AddPartitionsToTxnResponse resp;
} apt_ctx;

/* One transaction of the request and where its answer goes. */
typedef struct apt_txn {
    apt_ctx *ctx;
    const apt_topic *topics;
    int ntopics;
    apt_topic_result **out; /* the results array to fill (arena) */
    int32_t *out_count;
} apt_txn;

static void apt_maybe_reply(apt_ctx *c) {
    if (--c->pending > 0) return;
    KREQ_REPLY(c->req, AddPartitionsToTxnResponse, &c->resp);
}

/* The transaction's partitions in request order, each with err(i) (one
 * error for all when errs is NULL). */
static void apt_fill(apt_txn *t, int16_t one, const int16_t *errs) {
    kreq *req = t->ctx->req;
    apt_topic_result *res = karena_calloc(&req->arena, (size_t)(t->ntopics > 0 ? t->ntopics : 1), sizeof *res);
    if (!res) abort();
    int k = 0;
    for (int i = 0; i < t->ntopics; i++) {
        AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_init(&res[i]);
        res[i].name = t->topics[i].name;
        int np = t->topics[i].partitions_count > 0 ? t->topics[i].partitions_count : 0;
        res[i].results_by_partition = karena_calloc(&req->arena, (size_t)(np ? np : 1), sizeof *res[i].results_by_partition);
        if (!res[i].results_by_partition) abort();
        res[i].results_by_partition_count = np;
        for (int j = 0; j < np; j++, k++) {
            AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult *pr = &res[i].results_by_partition[j];
            AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_init(pr);
            pr->partition_index = t->topics[i].partitions[j];
            pr->partition_error_code = errs ? errs[k] : one;
        }
    }
    *t->out = res;
    *t->out_count = t->ntopics;
}

static void apt_answered(void *arg, int16_t err, int64_t pid, int16_t epoch) {
    (void)pid;
    (void)epoch;
    apt_txn *t = arg;
    apt_fill(t, fenced_for(err, t->ctx->req->api_version, 2), NULL);
    apt_maybe_reply(t->ctx);
}

static int count_partitions(const apt_topic *topics, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += topics[i].partitions_count > 0 ? topics[i].partitions_count : 0;
    return k;
}

static int tpset_index(const txn_tpset *s, kstr topic, int32_t partition) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i].partition == partition && kstr_eq_c(topic, s->v[i].topic)) return i;
    return -1;
}

static void apt_one(broker *b, apt_txn *t, kstr tid, int64_t pid, int16_t epoch, bool verify_only) {
    kreq *req = t->ctx->req;
    if (!authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, tid)) {
        apt_fill(t, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, NULL);
        apt_maybe_reply(t->ctx);
        return;
    }
    int total = count_partitions(t->topics, t->ntopics);
    int16_t *errs = karena_calloc(&req->arena, (size_t)(total ? total : 1), sizeof *errs);
    if (!errs) abort();
    /* partitions of unknown topics fail the whole transaction (the others: OPERATION_NOT_ATTEMPTED) */
    bool unknown = false;
    int k = 0;
    for (int i = 0; i < t->ntopics; i++) {
        const mtopic *mt = mimage_topic(b->image, t->topics[i].name);
        bool topic_ok = authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TOPIC, t->topics[i].name);
        for (int j = 0; j < t->topics[i].partitions_count; j++, k++) {
            int32_t p = t->topics[i].partitions[j];
            bool known = mt && p >= 0 && p < mt->nparts;
            errs[k] = !topic_ok ? KERR_TOPIC_AUTHORIZATION_FAILED
                      : known   ? KERR_OPERATION_NOT_ATTEMPTED
                                : KERR_UNKNOWN_TOPIC_OR_PARTITION;
            unknown |= !known || !topic_ok;
        }
    }
    if (unknown) {
        apt_fill(t, 0, errs);
        apt_maybe_reply(t->ctx);
        return;
    }
    txn_tpset parts;
    txn_tpset_init(&parts);
    for (int i = 0; i < t->ntopics; i++)
        for (int j = 0; j < t->topics[i].partitions_count; j++)
            if (txn_tpset_add(&parts, t->topics[i].name.p, (size_t)t->topics[i].name.len,
                              t->topics[i].partitions[j]) != 0)
                abort();
    size_t tid_len = tid.len > 0 ? (size_t)tid.len : 0;
    if (!verify_only) {
        txn_mgr_add_partitions(b->txns, tid.p, tid_len, pid, epoch, &parts, apt_answered, t);
    } else {
        int16_t *set_errs = calloc((size_t)(parts.n ? parts.n : 1), sizeof *set_errs);
        if (!set_errs) abort();
        txn_mgr_verify(b->txns, tid.p, tid_len, pid, epoch, &parts, set_errs);
        k = 0;
        for (int i = 0; i < t->ntopics; i++)
            for (int j = 0; j < t->topics[i].partitions_count; j++, k++)
                errs[k] = set_errs[tpset_index(&parts, t->topics[i].name, t->topics[i].partitions[j])];
        free(set_errs);
        apt_fill(t, 0, errs);
        apt_maybe_reply(t->ctx);
    }
    txn_tpset_free(&parts);
}

void h_add_partitions_to_txn(broker *b, kreq *req) {
    AddPartitionsToTxnRequest r;
    if (KREQ_DECODE(req, AddPartitionsToTxnRequest, &r) < 0) return;
    apt_ctx *c = karena_calloc(&req->arena, 1, sizeof *c);
    if (!c) return kreq_fail(req, "out of memory");
    c->req = req;
    AddPartitionsToTxnResponse_init(&c->resp);
    c->resp.results_by_transaction = NULL;
    c->resp.results_by_transaction_count = 0;
    c->resp.results_by_topic_v3_and_below = NULL;
    c->resp.results_by_topic_v3_and_below_count = 0;
    c->pending = 1;
    if (req->api_version < 4) {
        apt_txn *t = karena_calloc(&req->arena, 1, sizeof *t);
        if (!t) return kreq_fail(req, "out of memory");
        *t = (apt_txn){c, r.v3_and_below_topics, r.v3_and_below_topics_count > 0 ? r.v3_and_below_topics_count : 0,
                       &c->resp.results_by_topic_v3_and_below, &c->resp.results_by_topic_v3_and_below_count};
        c->pending++;
        if (!b->txns) apt_answered(t, KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        else apt_one(b, t, r.v3_and_below_transactional_id, r.v3_and_below_producer_id, r.v3_and_below_producer_epoch,
                     false);
        apt_maybe_reply(c);
        return;
    }
    /* v4+ batches come from brokers verifying a transaction (KafkaApis) */
    if (!authz_cluster(req, AZ_OP_CLUSTER_ACTION)) {
        c->resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        apt_maybe_reply(c);
        return;
    }
    int n = r.transactions_count > 0 ? r.transactions_count : 0;
    for (int i = 0; i < n; i++)
        if (r.transactions[i].transactional_id.len < 0)
            return kreq_fail(req, "Transactional ID can not be null in request.");
    if (!KREQ_ALLOC_ARRAY(req, n, c->resp.results_by_transaction)) return kreq_fail(req, "out of memory");
    c->resp.results_by_transaction_count = n;
    c->pending += n;
    for (int i = 0; i < n; i++) {
        AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction *tx = &r.transactions[i];
        AddPartitionsToTxnResponse_AddPartitionsToTxnResult *o = &c->resp.results_by_transaction[i];
        AddPartitionsToTxnResponse_AddPartitionsToTxnResult_init(o);
        o->transactional_id = tx->transactional_id;
        o->topic_results = NULL;
        o->topic_results_count = 0;
        apt_txn *t = karena_calloc(&req->arena, 1, sizeof *t);
        if (!t) abort();
        *t = (apt_txn){c, tx->topics, tx->topics_count > 0 ? tx->topics_count : 0, &o->topic_results,
                       &o->topic_results_count};
        if (!b->txns) apt_answered(t, KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        else apt_one(b, t, tx->transactional_id, tx->producer_id, tx->producer_epoch, tx->verify_only);
    }
    apt_maybe_reply(c);
}

/* ---- AddOffsetsToTxn, EndTxn ---- */

static void add_offsets_answered(void *arg, int16_t err, int64_t pid, int16_t epoch) {
    (void)pid;
    (void)epoch;
    kreq *req = arg;
    AddOffsetsToTxnResponse resp;
    AddOffsetsToTxnResponse_init(&resp);
    resp.error_code = fenced_for(err, req->api_version, 2);
    KREQ_REPLY(req, AddOffsetsToTxnResponse, &resp);
}

void h_add_offsets_to_txn(broker *b, kreq *req) {
    AddOffsetsToTxnRequest r;
    if (KREQ_DECODE(req, AddOffsetsToTxnRequest, &r) < 0) return;
    if (!authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, r.transactional_id))
        return add_offsets_answered(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
    if (!authz_allowed_k(req, AZ_OP_READ, AZ_RES_GROUP, r.group_id))
        return add_offsets_answered(req, KERR_GROUP_AUTHORIZATION_FAILED, -1, -1);
    if (!b->txns) return add_offsets_answered(req, KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
    txn_mgr_add_offsets(b->txns, r.transactional_id.p, r.transactional_id.len > 0 ? (size_t)r.transactional_id.len : 0,
                        r.producer_id, r.producer_epoch, r.group_id.p, r.group_id.len > 0 ? (size_t)r.group_id.len : 0,
                        add_offsets_answered, req);
}

static void end_txn_answered(void *arg, int16_t err, int64_t pid, int16_t epoch) {
    (void)pid;
    (void)epoch;
    kreq *req = arg;
    EndTxnResponse resp;
    EndTxnResponse_init(&resp);
    resp.error_code = fenced_for(err, req->api_version, 2);
    KREQ_REPLY(req, EndTxnResponse, &resp);
}

void h_end_txn(broker *b, kreq *req) {
    EndTxnRequest r;
    if (KREQ_DECODE(req, EndTxnRequest, &r) < 0) return;
    if (!authz_allowed_k(req, AZ_OP_WRITE, AZ_RES_TRANSACTIONAL_ID, r.transactional_id))
        return end_txn_answered(req, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
    if (!b->txns) return end_txn_answered(req, KERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
    txn_mgr_end_txn(b->txns, r.transactional_id.p, r.transactional_id.len > 0 ? (size_t)r.transactional_id.len : 0,
                    r.producer_id, r.producer_epoch, r.committed ? TXN_RESULT_COMMIT : TXN_RESULT_ABORT,
                    end_txn_answered, req);
}

/* ---- DescribeTransactions, ListTransactions ---- */

static void describe_one(broker *b, kreq *req, kstr tid, DescribeTransactionsResponse_TransactionState *o) {
    DescribeTransactionsResponse_TransactionState_init(o);
    o->transactional_id = tid;
    o->transaction_state = KSTR_LIT("");
    o->topics = NULL;
    o->topics_count = 0;
    const txn_meta *m = NULL;
    if (!authz_allowed_k(req, AZ_OP_DESCRIBE, AZ_RES_TRANSACTIONAL_ID, tid))
        o->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED; /* KafkaApis */
    else if (!b->txns) o->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    else if (tid.len <= 0) o->error_code = KERR_INVALID_REQUEST;
    else o->error_code = txn_mgr_describe(b->txns, tid.p, (size_t)tid.len, &m);
    if (o->error_code || !m) return;
    o->transaction_state = kstr_from(txn_state_name(m->state));
    o->transaction_timeout_ms = m->timeout_ms;
    o->transaction_start_time_ms = m->start_ms;
    o->producer_id = m->producer_id;
    o->producer_epoch = m->producer_epoch;
    /* the set is sorted: one entry per run of a topic */
    int ntopics = 0;
    for (int i = 0; i < m->partitions.n; i++)
        if (i == 0 || strcmp(m->partitions.v[i].topic, m->partitions.v[i - 1].topic) != 0) ntopics++;
    DescribeTransactionsResponse_TopicData *td =
        karena_calloc(&req->arena, (size_t)(ntopics ? ntopics : 1), sizeof *td);
    int32_t *ps = karena_calloc(&req->arena, (size_t)(m->partitions.n ? m->partitions.n : 1), sizeof *ps);
    if (!td || !ps) abort();
    int t = -1;
    for (int i = 0; i < m->partitions.n; i++) {
        if (i == 0 || strcmp(m->partitions.v[i].topic, m->partitions.v[i - 1].topic) != 0) {
            DescribeTransactionsResponse_TopicData_init(&td[++t]);
            /* copied: the metadata may change before the answer is encoded */
            td[t].topic = kstr_from(karena_strndup(&req->arena, m->partitions.v[i].topic, strlen(m->partitions.v[i].topic)));
            td[t].partitions = &ps[i];
            td[t].partitions_count = 0;
        }
        ps[i] = m->partitions.v[i].partition;
        td[t].partitions_count++;
    }
    o->topics = td;
    o->topics_count = ntopics;
}

void h_describe_transactions(broker *b, kreq *req) {
    DescribeTransactionsRequest r;
    if (KREQ_DECODE(req, DescribeTransactionsRequest, &r) < 0) return;
    DescribeTransactionsResponse resp;
    DescribeTransactionsResponse_init(&resp);
    int n = r.transactional_ids_count > 0 ? r.transactional_ids_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, n, resp.transaction_states)) return kreq_fail(req, "out of memory");
    resp.transaction_states_count = n;
    for (int i = 0; i < n; i++) describe_one(b, req, r.transactional_ids[i], &resp.transaction_states[i]);
    KREQ_REPLY(req, DescribeTransactionsResponse, &resp);
}

typedef struct list_ctx {
    kreq *req;
    const ListTransactionsRequest *r;
    bool state_wanted[TXN_NSTATES];
    ListTransactionsResponse_TransactionState *v;
    int n, cap;
} list_ctx;

static void list_one(void *arg, const txn_meta *m) {
    list_ctx *c = arg;
    if (c->r->producer_id_filters_count > 0) {
        bool hit = false;
        for (int i = 0; i < c->r->producer_id_filters_count && !hit; i++)
            hit = c->r->producer_id_filters[i] == m->producer_id;
        if (!hit) return;
    }
    if (c->r->state_filters_count > 0 && !c->state_wanted[m->state]) return;
    /* KafkaApis: only the transactional ids one may DESCRIBE */
    if (!authz_allowed_quiet(c->req, AZ_OP_DESCRIBE, AZ_RES_TRANSACTIONAL_ID,
                             (kstr){m->transactional_id, (int32_t)strlen(m->transactional_id)}))
        return;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        ListTransactionsResponse_TransactionState *nv = karena_calloc(&c->req->arena, (size_t)cap, sizeof *nv);
        if (!nv) abort();
        if (c->n) memcpy(nv, c->v, (size_t)c->n * sizeof *nv);
        c->v = nv;
        c->cap = cap;
    }
    ListTransactionsResponse_TransactionState *o = &c->v[c->n++];
    ListTransactionsResponse_TransactionState_init(o);
    o->transactional_id = kstr_from(karena_strndup(&c->req->arena, m->transactional_id, strlen(m->transactional_id)));
    o->producer_id = m->producer_id;
    o->transaction_state = kstr_from(txn_state_name(m->state));
}

void h_list_transactions(broker *b, kreq *req) {
    ListTransactionsRequest r;
    if (KREQ_DECODE(req, ListTransactionsRequest, &r) < 0) return;
    ListTransactionsResponse resp;
    ListTransactionsResponse_init(&resp);
    resp.unknown_state_filters = NULL;
    resp.unknown_state_filters_count = 0;
    resp.transaction_states = NULL;
    resp.transaction_states_count = 0;
    list_ctx c = {.req = req, .r = &r};
    int nf = r.state_filters_count > 0 ? r.state_filters_count : 0;
    if (!KREQ_ALLOC_ARRAY(req, nf, resp.unknown_state_filters)) return kreq_fail(req, "out of memory");
    if (!b->txns) {
        resp.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        bool loading = txn_mgr_list(b->txns, NULL, NULL) == KERR_COORDINATOR_LOAD_IN_PROGRESS;
        if (loading) {
            resp.error_code = KERR_COORDINATOR_LOAD_IN_PROGRESS;
        } else {
            for (int i = 0; i < nf; i++) {
                int s = txn_state_from_name(r.state_filters[i].p, r.state_filters[i].len > 0 ? (size_t)r.state_filters[i].len : 0);
                if (s >= 0) c.state_wanted[s] = true;
                else resp.unknown_state_filters[resp.unknown_state_filters_count++] = r.state_filters[i];
            }
            resp.error_code = txn_mgr_list(b->txns, list_one, &c);
            resp.transaction_states = c.v;
            resp.transaction_states_count = c.n;
        }
    }
    KREQ_REPLY(req, ListTransactionsResponse, &resp);
}
