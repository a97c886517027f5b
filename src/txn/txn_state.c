/* txn_state.c - see txn_state.h. */
#include "txn/txn_state.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"

static const char *const state_names[TXN_NSTATES] = {
    "Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
    "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence",
};

#define BIT(s) (1u << (s))

/* validPreviousStates of each state, as bit sets. */
static const unsigned valid_previous[TXN_NSTATES] = {
    [TXN_EMPTY] = BIT(TXN_EMPTY) | BIT(TXN_COMPLETE_COMMIT) | BIT(TXN_COMPLETE_ABORT),
    [TXN_ONGOING] = BIT(TXN_ONGOING) | BIT(TXN_EMPTY) | BIT(TXN_COMPLETE_COMMIT) | BIT(TXN_COMPLETE_ABORT),
    [TXN_PREPARE_COMMIT] = BIT(TXN_ONGOING),
    [TXN_PREPARE_ABORT] = BIT(TXN_ONGOING) | BIT(TXN_PREPARE_EPOCH_FENCE),
    [TXN_COMPLETE_COMMIT] = BIT(TXN_PREPARE_COMMIT),
    [TXN_COMPLETE_ABORT] = BIT(TXN_PREPARE_ABORT),
    [TXN_DEAD] = BIT(TXN_EMPTY) | BIT(TXN_COMPLETE_ABORT) | BIT(TXN_COMPLETE_COMMIT),
    [TXN_PREPARE_EPOCH_FENCE] = BIT(TXN_ONGOING),
};

const char *txn_state_name(int state) {
    return state >= 0 && state < TXN_NSTATES ? state_names[state] : NULL;
}

int txn_state_from_name(const char *name, size_t len) {
    for (int i = 0; i < TXN_NSTATES; i++)
        if (strlen(state_names[i]) == len && memcmp(state_names[i], name, len) == 0) return i;
    return -1;
}

bool txn_state_valid_previous(txn_state_id to, txn_state_id from) {
    if ((unsigned)to >= TXN_NSTATES || (unsigned)from >= TXN_NSTATES) return false;
    return (valid_previous[to] & BIT(from)) != 0;
}

bool txn_state_expiration_allowed(txn_state_id s) {
    return s == TXN_EMPTY || s == TXN_COMPLETE_COMMIT || s == TXN_COMPLETE_ABORT;
}

/* ---- partition sets ---- */

void txn_tpset_init(txn_tpset *s) { memset(s, 0, sizeof *s); }

void txn_tpset_clear(txn_tpset *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i].topic);
    s->n = 0;
}

void txn_tpset_free(txn_tpset *s) {
    txn_tpset_clear(s);
    free(s->v);
    txn_tpset_init(s);
}

static int tp_cmp(const char *t, size_t tl, int32_t p, const txn_tp *e) {
    size_t el = strlen(e->topic);
    int c = memcmp(t, e->topic, tl < el ? tl : el);
    if (c) return c;
    if (tl != el) return tl < el ? -1 : 1;
    return p < e->partition ? -1 : p > e->partition;
}

/* Index of the element, or -(insertion point) - 1. */
static int tp_find(const txn_tpset *s, const char *t, size_t tl, int32_t p) {
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = tp_cmp(t, tl, p, &s->v[mid]);
        if (c == 0) return mid;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return -lo - 1;
}

int txn_tpset_add(txn_tpset *s, const char *topic, size_t topic_len, int32_t partition) {
    int i = tp_find(s, topic, topic_len, partition);
    if (i >= 0) return 0;
    i = -i - 1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 4;
        txn_tp *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    char *t = malloc(topic_len + 1);
    if (!t) return -1;
    memcpy(t, topic, topic_len);
    t[topic_len] = 0;
    memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof *s->v);
    s->v[i].topic = t;
    s->v[i].partition = partition;
    s->n++;
    return 0;
}

bool txn_tpset_contains(const txn_tpset *s, const char *topic, size_t topic_len, int32_t partition) {
    return tp_find(s, topic, topic_len, partition) >= 0;
}

bool txn_tpset_remove(txn_tpset *s, const char *topic, size_t topic_len, int32_t partition) {
    int i = tp_find(s, topic, topic_len, partition);
    if (i < 0) return false;
    free(s->v[i].topic);
    memmove(&s->v[i], &s->v[i + 1], (size_t)(s->n - i - 1) * sizeof *s->v);
    s->n--;
    return true;
}

bool txn_tpset_subset(const txn_tpset *sub, const txn_tpset *super) {
    for (int i = 0; i < sub->n; i++)
        if (!txn_tpset_contains(super, sub->v[i].topic, strlen(sub->v[i].topic), sub->v[i].partition))
            return false;
    return true;
}

bool txn_tpset_equal(const txn_tpset *a, const txn_tpset *b) {
    return a->n == b->n && txn_tpset_subset(a, b);
}

int txn_tpset_union(txn_tpset *dst, const txn_tpset *src) {
    for (int i = 0; i < src->n; i++)
        if (txn_tpset_add(dst, src->v[i].topic, strlen(src->v[i].topic), src->v[i].partition))
            return -1;
    return 0;
}

int txn_tpset_copy(txn_tpset *dst, const txn_tpset *src) {
    txn_tpset_clear(dst);
    return txn_tpset_union(dst, src);
}

void txn_transit_free(txn_transit *t) { txn_tpset_free(&t->partitions); }

/* ---- metadata ---- */

txn_meta *txn_meta_new(const char *transactional_id, size_t id_len, int64_t producer_id,
                       int64_t last_producer_id, int16_t producer_epoch,
                       int16_t last_producer_epoch, int32_t timeout_ms, txn_state_id state,
                       int64_t now_ms) {
    txn_meta *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->transactional_id = malloc(id_len + 1);
    if (!m->transactional_id) {
        free(m);
        return NULL;
    }
    memcpy(m->transactional_id, transactional_id, id_len);
    m->transactional_id[id_len] = 0;
    m->producer_id = producer_id;
    m->last_producer_id = last_producer_id;
    m->producer_epoch = producer_epoch;
    m->last_producer_epoch = last_producer_epoch;
    m->timeout_ms = timeout_ms;
    m->state = state;
    m->pending = TXN_NO_STATE;
    txn_tpset_init(&m->partitions);
    txn_tpset_init(&m->complete.partitions);
    m->start_ms = -1;
    m->last_update_ms = now_ms;
    return m;
}

void txn_meta_free(txn_meta *m) {
    if (!m) return;
    txn_tpset_free(&m->partitions);
    txn_transit_free(&m->complete);
    free(m->transactional_id);
    free(m);
}

/* Kafka's private prepareTransitionTo. `parts` NULL means no partitions.
 * The transit's lastProducerId is the current producer id, as in Kafka. */
static int prepare_to(txn_meta *m, txn_state_id to, int64_t producer_id, int16_t epoch,
                      int16_t last_epoch, int32_t timeout_ms, const txn_tpset *parts,
                      int64_t start_ms, int64_t update_ms, txn_transit *out) {
    memset(out, 0, sizeof *out);
    txn_tpset_init(&out->partitions);
    if (txn_pending(m)) return -1;
    if (producer_id < 0) return -1;
    if (to != TXN_DEAD && epoch < 0) return -1;
    if (!txn_state_valid_previous(to, m->state)) return -1;
    if (parts && txn_tpset_copy(&out->partitions, parts)) {
        txn_tpset_free(&out->partitions);
        return -1;
    }
    out->producer_id = producer_id;
    out->last_producer_id = m->producer_id;
    out->producer_epoch = epoch;
    out->last_producer_epoch = last_epoch;
    out->timeout_ms = timeout_ms;
    out->state = to;
    out->start_ms = start_ms;
    out->last_update_ms = update_ms;
    m->pending = (int)to;
    return 0;
}

int txn_prepare_fence_epoch(txn_meta *m, txn_transit *out) {
    if (m->producer_epoch == INT16_MAX) {
        memset(out, 0, sizeof *out);
        return -1; /* bumping would overflow */
    }
    int16_t bumped = m->has_failed_epoch_fence ? m->producer_epoch : (int16_t)(m->producer_epoch + 1);
    return prepare_to(m, TXN_PREPARE_EPOCH_FENCE, m->producer_id, bumped, TXN_NO_PRODUCER_EPOCH,
                      m->timeout_ms, &m->partitions, m->start_ms, m->last_update_ms, out);
}

int txn_prepare_increment_epoch(txn_meta *m, int32_t new_timeout_ms, bool has_expected,
                                int16_t expected_epoch, int64_t now_ms, txn_transit *out) {
    memset(out, 0, sizeof *out);
    if (txn_epoch_exhausted(m->producer_epoch)) return -1;
    int16_t bumped = (int16_t)(m->producer_epoch + 1);
    int16_t next = bumped, last = TXN_NO_PRODUCER_EPOCH;
    if (has_expected) {
        if (m->producer_epoch == TXN_NO_PRODUCER_EPOCH || expected_epoch == m->producer_epoch) {
            /* a producer continuing after an error, nobody else initialised since */
            last = m->producer_epoch;
        } else if (expected_epoch == m->last_producer_epoch) {
            /* a retry of a bump that succeeded: answer the current epoch again */
            next = m->producer_epoch;
            last = m->last_producer_epoch;
        } else {
            return KERR_PRODUCER_FENCED;
        }
    }
    return prepare_to(m, TXN_EMPTY, m->producer_id, next, last, new_timeout_ms, NULL, -1, now_ms, out);
}

static bool has_pending_transaction(const txn_meta *m) {
    return m->state == TXN_ONGOING || m->state == TXN_PREPARE_ABORT || m->state == TXN_PREPARE_COMMIT;
}

int txn_prepare_rotate_producer_id(txn_meta *m, int64_t new_producer_id, int32_t new_timeout_ms,
                                   int64_t now_ms, bool record_last_epoch, txn_transit *out) {
    if (has_pending_transaction(m)) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return prepare_to(m, TXN_EMPTY, new_producer_id, 0,
                      record_last_epoch ? m->producer_epoch : TXN_NO_PRODUCER_EPOCH, new_timeout_ms,
                      NULL, -1, now_ms, out);
}

int txn_prepare_add_partitions(txn_meta *m, const txn_tpset *added, int64_t now_ms,
                               txn_transit *out) {
    int64_t start = m->start_ms;
    if (m->state == TXN_EMPTY || m->state == TXN_COMPLETE_ABORT || m->state == TXN_COMPLETE_COMMIT)
        start = now_ms;
    txn_tpset all;
    txn_tpset_init(&all);
    if (txn_tpset_copy(&all, &m->partitions) || txn_tpset_union(&all, added)) {
        txn_tpset_free(&all);
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = prepare_to(m, TXN_ONGOING, m->producer_id, m->producer_epoch, m->last_producer_epoch,
                        m->timeout_ms, &all, start, now_ms, out);
    txn_tpset_free(&all);
    return rc;
}

int txn_prepare_abort_or_commit(txn_meta *m, txn_state_id to, int64_t now_ms, txn_transit *out) {
    return prepare_to(m, to, m->producer_id, m->producer_epoch, m->last_producer_epoch, m->timeout_ms,
                      &m->partitions, m->start_ms, now_ms, out);
}

int txn_prepare_complete(txn_meta *m, int64_t now_ms, txn_transit *out) {
    txn_state_id to = m->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    int rc = prepare_to(m, to, m->producer_id, m->producer_epoch, m->last_producer_epoch,
                        m->timeout_ms, NULL, m->start_ms, now_ms, out);
    /* the Prepare* state is in the log: a later fence may bump again */
    if (rc == 0) m->has_failed_epoch_fence = false;
    return rc;
}

int txn_prepare_dead(txn_meta *m, txn_transit *out) {
    return prepare_to(m, TXN_DEAD, m->producer_id, m->producer_epoch, m->last_producer_epoch,
                      m->timeout_ms, NULL, m->start_ms, m->last_update_ms, out);
}

static bool same_producer_epoch(const txn_meta *m, const txn_transit *t) {
    return t->producer_epoch == m->producer_epoch && t->producer_id == m->producer_id;
}

static bool valid_epoch_bump(const txn_meta *m, const txn_transit *t) {
    return t->producer_epoch == m->producer_epoch + 1 ||
           (t->producer_epoch == 0 && t->producer_id != m->producer_id);
}

int txn_complete_transition(txn_meta *m, const txn_transit *t) {
    if (!txn_pending(m) || m->pending != (int)t->state) return -1;
    switch (t->state) {
    case TXN_EMPTY: /* InitProducerId */
        if ((m->producer_epoch != t->producer_epoch && !valid_epoch_bump(m, t)) ||
            t->partitions.n != 0 || t->start_ms != -1)
            return -1;
        m->timeout_ms = t->timeout_ms;
        m->producer_epoch = t->producer_epoch;
        m->last_producer_epoch = t->last_producer_epoch;
        m->producer_id = t->producer_id;
        m->last_producer_id = t->last_producer_id;
        break;
    case TXN_ONGOING: /* AddPartitions */
        if (!same_producer_epoch(m, t) || !txn_tpset_subset(&m->partitions, &t->partitions) ||
            m->timeout_ms != t->timeout_ms)
            return -1;
        if (txn_tpset_union(&m->partitions, &t->partitions)) return -1;
        m->start_ms = t->start_ms;
        break;
    case TXN_PREPARE_ABORT:
    case TXN_PREPARE_COMMIT: /* EndTxn */
        if (!same_producer_epoch(m, t) || !txn_tpset_equal(&m->partitions, &t->partitions) ||
            m->timeout_ms != t->timeout_ms || m->start_ms != t->start_ms)
            return -1;
        break;
    case TXN_COMPLETE_ABORT:
    case TXN_COMPLETE_COMMIT: /* markers written */
        if (!same_producer_epoch(m, t) || m->timeout_ms != t->timeout_ms || t->start_ms == -1)
            return -1;
        m->start_ms = t->start_ms;
        txn_tpset_clear(&m->partitions);
        break;
    case TXN_PREPARE_EPOCH_FENCE: /* always replaced by PrepareAbort before any write */
    case TXN_DEAD:                /* an expired id is removed, never completed */
    default:
        return -1;
    }
    m->last_update_ms = t->last_update_ms;
    m->pending = TXN_NO_STATE;
    m->state = t->state;
    return 0;
}

int txn_remove_partition(txn_meta *m, const char *topic, size_t topic_len, int32_t partition) {
    if (m->state != TXN_PREPARE_COMMIT && m->state != TXN_PREPARE_ABORT) return -1;
    txn_tpset_remove(&m->partitions, topic, topic_len, partition);
    return 0;
}
