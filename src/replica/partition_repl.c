/* partition_repl.c - the leader's view of one partition (see partition_repl.h).
 * Each function names the Kafka 3.6.1 code it mirrors
 * (core/src/main/scala/kafka/cluster/Partition.scala, Replica.scala). */
#include "replica/partition_repl.h"

#include <string.h>

#include "protocol/errors.h"

/* ---- small helpers ---- */

static bool has(const int32_t *v, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

static pr_replica *remote(partition_repl *p, int32_t id) {
    for (int i = 0; i < p->nremote; i++)
        if (p->r[i].id == id) return &p->r[i];
    return NULL;
}

static const pr_replica *remote_c(const partition_repl *p, int32_t id) {
    for (int i = 0; i < p->nremote; i++)
        if (p->r[i].id == id) return &p->r[i];
    return NULL;
}

static const pr_broker *broker_c(const partition_repl *p, int32_t id) {
    for (int i = 0; i < p->nbrokers; i++)
        if (p->brokers[i].id == id) return &p->brokers[i];
    return NULL;
}

/* ReplicaState.Empty */
static void replica_empty(pr_replica *r, int32_t id) {
    memset(r, 0, sizeof *r);
    r->id = id;
    r->leo = -1;
    r->log_start_offset = -1;
    r->last_fetch_leader_leo = 0;
    r->last_fetch_ms = 0;
    r->last_caught_up_ms = 0;
    r->fetch_broker_epoch = PR_NO_EPOCH;
}

/* ReplicaState.isCaughtUp */
static bool is_caught_up(const pr_replica *r, int64_t leader_leo, int64_t now_ms, int64_t max_lag_ms) {
    return leader_leo == r->leo || now_ms - r->last_caught_up_ms <= max_lag_ms;
}

/* Partition.isReplicaIsrEligible (KRaft) + isBrokerEpochIsrEligible (KIP-903):
 * not fenced, not shutting down, and the broker epoch of its fetch matches
 * the registered one (or the fetch sent -1, which bypasses the check). */
static bool isr_eligible(const partition_repl *p, int32_t id) {
    const pr_replica *r = remote_c(p, id);
    if (!r) return false;
    const pr_broker *b = broker_c(p, id);
    if (!b || !b->alive || b->shutting_down) return false;
    if (r->fetch_broker_epoch == PR_NO_EPOCH) return false;
    return r->fetch_broker_epoch == -1 || r->fetch_broker_epoch == b->broker_epoch;
}

int pr_maximal_isr(const partition_repl *p, int32_t *out) {
    int n = 0;
    for (int i = 0; i < p->nisr; i++) out[n++] = p->isr[i];
    if (p->state == PR_PENDING_EXPAND && !has(out, n, p->pending_expand_id) && n < PR_MAX_REPLICAS)
        out[n++] = p->pending_expand_id;
    return n;
}

bool pr_in_isr(const partition_repl *p, int32_t id) { return has(p->isr, p->nisr, id); }

static bool in_maximal_isr(const partition_repl *p, int32_t id) {
    return has(p->isr, p->nisr, id) || (p->state == PR_PENDING_EXPAND && p->pending_expand_id == id);
}

/* UnifiedLog.maybeIncrementHighWatermark: never backwards, never past LEO. */
static bool maybe_increment_hw(partition_repl *p, int64_t new_hw) {
    if (new_hw > p->leo) new_hw = p->leo;
    if (new_hw > p->hw) {
        p->hw = new_hw;
        return true;
    }
    return false;
}

/* Partition.maybeIncrementLeaderHW: the smallest LEO among the maximal ISR
 * and the replicas that are caught up and eligible to join it (so that a
 * catching-up follower is not left behind forever), starting from the
 * leader's own LEO. */
static bool maybe_increment_leader_hw(partition_repl *p, int64_t now_ms) {
    if (!p->is_leader) return false;
    int64_t new_hw = p->leo;
    for (int i = 0; i < p->nremote; i++) {
        const pr_replica *r = &p->r[i];
        if (r->leo < new_hw &&
            (in_maximal_isr(p, r->id) ||
             (is_caught_up(r, p->leo, now_ms, p->replica_lag_time_max_ms) && isr_eligible(p, r->id))))
            new_hw = r->leo;
    }
    return maybe_increment_hw(p, new_hw);
}

/* Partition.addBrokerEpochToIsr */
static void fill_alter(partition_repl *p, pr_alter *a, const int32_t *isr, int nisr) {
    memset(a, 0, sizeof *a);
    a->seq = ++p->next_seq;
    a->leader_id = p->local_id;
    a->leader_epoch = p->leader_epoch;
    a->partition_epoch = p->partition_epoch;
    a->nisr = nisr;
    for (int i = 0; i < nisr; i++) {
        a->isr[i] = isr[i];
        if (isr[i] == p->local_id) {
            a->isr_broker_epochs[i] = p->local_broker_epoch;
        } else {
            const pr_replica *r = remote_c(p, isr[i]);
            a->isr_broker_epochs[i] = r && r->fetch_broker_epoch != PR_NO_EPOCH ? r->fetch_broker_epoch : -1;
        }
    }
}

/* ---- public ---- */

void pr_init(partition_repl *p, int32_t local_id, int64_t local_broker_epoch, int64_t replica_lag_time_max_ms,
             int min_isr, int64_t leo, int64_t hw) {
    memset(p, 0, sizeof *p);
    p->local_id = local_id;
    p->local_broker_epoch = local_broker_epoch;
    p->replica_lag_time_max_ms = replica_lag_time_max_ms;
    p->min_isr = min_isr;
    p->leader_id = -1;
    p->leader_epoch = -1;
    p->partition_epoch = -1;
    p->leader_epoch_start_offset = -1;
    p->leo = leo;
    p->hw = hw < leo ? hw : leo;
    p->state = PR_COMMITTED;
    p->pending_expand_id = -1;
}

void pr_set_broker(partition_repl *p, int32_t id, bool alive, bool shutting_down, int64_t broker_epoch) {
    pr_broker *b = NULL;
    for (int i = 0; i < p->nbrokers; i++)
        if (p->brokers[i].id == id) b = &p->brokers[i];
    if (!b) {
        if (p->nbrokers >= PR_MAX_REPLICAS) return;
        b = &p->brokers[p->nbrokers++];
        b->id = id;
    }
    b->alive = alive;
    b->shutting_down = shutting_down;
    b->broker_epoch = broker_epoch;
}

/* Partition.updateAssignmentAndIsr */
static void update_assignment_and_isr(partition_repl *p, const pr_meta *m, bool is_leader) {
    p->nreplicas = m->nreplicas < PR_MAX_REPLICAS ? m->nreplicas : PR_MAX_REPLICAS;
    memcpy(p->replicas, m->replicas, sizeof(int32_t) * (size_t)p->nreplicas);
    if (is_leader) {
        pr_replica keep[PR_MAX_REPLICAS];
        int n = 0;
        for (int i = 0; i < p->nreplicas; i++) {
            int32_t id = p->replicas[i];
            if (id == p->local_id) continue;
            const pr_replica *old = remote_c(p, id);
            if (old) keep[n] = *old;
            else replica_empty(&keep[n], id);
            n++;
        }
        memcpy(p->r, keep, sizeof(pr_replica) * (size_t)n);
        p->nremote = n;
    } else {
        p->nremote = 0;
    }
    p->nisr = m->nisr < PR_MAX_REPLICAS ? m->nisr : PR_MAX_REPLICAS;
    memcpy(p->isr, m->isr, sizeof(int32_t) * (size_t)p->nisr);
    p->state = PR_COMMITTED;
    p->pending_expand_id = -1;
}

/* Replica.resetReplicaState */
static void reset_replica_state(pr_replica *r, int64_t now_ms, int64_t leader_leo, bool new_leader, bool in_sync) {
    int64_t caught_up = in_sync ? now_ms : 0;
    if (new_leader) {
        int32_t id = r->id;
        replica_empty(r, id);
        r->last_fetch_leader_leo = -1; /* UnifiedLog.UnknownOffset */
        r->last_caught_up_ms = caught_up;
    } else {
        r->last_fetch_leader_leo = leader_leo;
        r->last_fetch_ms = in_sync ? now_ms : 0;
        r->last_caught_up_ms = caught_up;
    }
}

int pr_make_leader(partition_repl *p, const pr_meta *m, int64_t now_ms, bool *hw_advanced) {
    if (hw_advanced) *hw_advanced = false;
    if (m->partition_epoch < p->partition_epoch) return -1;
    bool is_new_leader = !p->is_leader;
    bool is_new_epoch = m->leader_epoch > p->leader_epoch;
    /* Departure from Kafka 3.6.1 (see the header): metadata that repeats the
     * partition epoch an in-flight change is based on keeps that change. */
    bool keep_pending = p->is_leader && p->state != PR_COMMITTED && m->leader_epoch == p->leader_epoch &&
                        m->partition_epoch == p->partition_epoch && p->pending.partition_epoch == m->partition_epoch;
    pr_state_kind kept_state = p->state;
    int32_t kept_expand = p->pending_expand_id;
    update_assignment_and_isr(p, m, true);
    if (keep_pending) {
        p->state = kept_state;
        p->pending_expand_id = kept_expand;
    }
    if (is_new_epoch) {
        int64_t start = p->leo;
        for (int i = 0; i < p->nremote; i++)
            reset_replica_state(&p->r[i], now_ms, start, is_new_leader, has(m->isr, m->nisr, p->r[i].id));
        p->leader_epoch = m->leader_epoch;
        p->leader_epoch_start_offset = start;
    }
    p->partition_epoch = m->partition_epoch;
    p->leader_id = p->local_id;
    p->is_leader = true;
    bool adv = maybe_increment_leader_hw(p, now_ms);
    if (hw_advanced) *hw_advanced = adv;
    return is_new_leader ? 1 : 0;
}

int pr_make_follower(partition_repl *p, const pr_meta *m) {
    if (m->partition_epoch < p->partition_epoch) return -1;
    bool is_new_epoch = m->leader_epoch > p->leader_epoch;
    p->leader_id = m->leader;
    p->leader_epoch = m->leader_epoch;
    p->leader_epoch_start_offset = -1;
    p->partition_epoch = m->partition_epoch;
    p->is_leader = false;
    pr_meta none = *m;
    none.nisr = 0; /* a follower keeps no ISR */
    update_assignment_and_isr(p, &none, false);
    return is_new_epoch ? 1 : 0;
}

int pr_check_append(const partition_repl *p, int acks) {
    if (!p->is_leader) return KERR_NOT_LEADER_OR_FOLLOWER;
    if (acks == -1 && p->nisr < p->min_isr) return KERR_NOT_ENOUGH_REPLICAS;
    return KERR_NONE;
}

bool pr_leader_appended(partition_repl *p, int64_t new_leo, int64_t now_ms) {
    p->leo = new_leo;
    return maybe_increment_leader_hw(p, now_ms);
}

void pr_set_local_log(partition_repl *p, int64_t leo) {
    p->leo = leo;
    if (p->hw > leo) p->hw = leo;
}

int64_t pr_follower_update_hw(partition_repl *p, int64_t leader_hw) {
    p->hw = leader_hw > p->leo ? p->leo : leader_hw;
    return p->hw;
}

/* Replica.updateFetchState: lastCaughtUpTimeMs is the latest time t at which
 * the follower's fetch offset reached the leader's LEO at t. */
static void update_fetch_state(pr_replica *r, int64_t fetch_offset, int64_t log_start, int64_t now_ms,
                               int64_t leader_leo, int64_t broker_epoch) {
    int64_t caught_up = r->last_caught_up_ms;
    if (fetch_offset >= leader_leo) {
        if (now_ms > caught_up) caught_up = now_ms;
    } else if (fetch_offset >= r->last_fetch_leader_leo) {
        if (r->last_fetch_ms > caught_up) caught_up = r->last_fetch_ms;
    }
    r->log_start_offset = log_start;
    r->leo = fetch_offset;
    if (leader_leo > r->last_fetch_leader_leo) r->last_fetch_leader_leo = leader_leo;
    r->last_fetch_ms = now_ms;
    r->last_caught_up_ms = caught_up;
    r->fetch_broker_epoch = broker_epoch;
}

pr_fetch_result pr_follower_fetched(partition_repl *p, int32_t id, int64_t fetch_offset, int64_t log_start_offset,
                                    int64_t broker_epoch, int64_t now_ms, pr_alter *alter) {
    pr_fetch_result res = {KERR_NONE, false, false};
    if (!p->is_leader) {
        res.error = KERR_NOT_LEADER_OR_FOLLOWER;
        return res;
    }
    pr_replica *r = remote(p, id);
    if (!r) {
        res.error = KERR_UNKNOWN_LEADER_EPOCH;
        return res;
    }
    int64_t prev_leo = r->leo;
    update_fetch_state(r, fetch_offset, log_start_offset, now_ms, p->leo, broker_epoch);

    /* maybeExpandIsr -> needsExpandIsr: canAddReplicaToIsr && isFollowerInSync
     * (reached the HW and the start of the current leader epoch). */
    if (p->state == PR_COMMITTED && !has(p->isr, p->nisr, id) && isr_eligible(p, id) && r->leo >= p->hw &&
        p->leader_epoch_start_offset >= 0 && r->leo >= p->leader_epoch_start_offset && p->nisr < PR_MAX_REPLICAS) {
        /* prepareIsrExpand */
        int32_t isr[PR_MAX_REPLICAS];
        int n = p->nisr;
        memcpy(isr, p->isr, sizeof(int32_t) * (size_t)n);
        isr[n++] = id;
        fill_alter(p, &p->pending, isr, n);
        p->state = PR_PENDING_EXPAND;
        p->pending_expand_id = id;
        if (alter) *alter = p->pending;
        res.propose = true;
    }
    if (prev_leo != r->leo) res.hw_advanced = maybe_increment_leader_hw(p, now_ms);
    return res;
}

/* Partition.getOutOfSyncReplicas / isFollowerOutOfSync */
int pr_out_of_sync(const partition_repl *p, int64_t now_ms, int32_t *out) {
    if (!p->is_leader || p->state != PR_COMMITTED) return 0;
    int n = 0;
    for (int i = 0; i < p->nisr; i++) {
        int32_t id = p->isr[i];
        if (id == p->local_id) continue;
        const pr_replica *r = remote_c(p, id);
        if (!r || !is_caught_up(r, p->leo, now_ms, p->replica_lag_time_max_ms)) out[n++] = id;
    }
    return n;
}

bool pr_maybe_shrink(partition_repl *p, int64_t now_ms, pr_alter *alter) {
    int32_t out[PR_MAX_REPLICAS];
    int nout = pr_out_of_sync(p, now_ms, out);
    if (nout == 0) return false;
    /* prepareIsrShrink */
    int32_t isr[PR_MAX_REPLICAS];
    int n = 0;
    for (int i = 0; i < p->nisr; i++)
        if (!has(out, nout, p->isr[i])) isr[n++] = p->isr[i];
    fill_alter(p, &p->pending, isr, n);
    p->state = PR_PENDING_SHRINK;
    p->pending_expand_id = -1;
    if (alter) *alter = p->pending;
    return true;
}

/* Partition.handleAlterPartitionUpdate (after submitAlterPartition's check
 * that the answer is for the state still in flight). */
bool pr_alter_committed(partition_repl *p, const pr_alter *r, int64_t now_ms, bool *applied) {
    if (applied) *applied = false;
    if (p->state == PR_COMMITTED || r->seq != p->pending.seq) return false; /* out of date */
    if (r->leader_epoch != p->leader_epoch) return false;                   /* stale leader epoch: stay pending */
    if (r->partition_epoch < p->partition_epoch) return false;              /* we know a newer version */
    p->nisr = r->nisr < PR_MAX_REPLICAS ? r->nisr : PR_MAX_REPLICAS;
    memcpy(p->isr, r->isr, sizeof(int32_t) * (size_t)p->nisr);
    p->partition_epoch = r->partition_epoch;
    p->state = PR_COMMITTED;
    p->pending_expand_id = -1;
    if (applied) *applied = true;
    return maybe_increment_leader_hw(p, now_ms);
}

/* Partition.handleAlterPartitionError */
bool pr_alter_failed(partition_repl *p, uint64_t seq, int error) {
    if (p->state == PR_COMMITTED || seq != p->pending.seq) return false;
    switch (error) {
    case KERR_OPERATION_NOT_ATTEMPTED:
    case KERR_INELIGIBLE_REPLICA:
        /* The controller says the request was not applied: back to the last
         * committed state (the maximal ISR loses a pending addition). */
        p->state = PR_COMMITTED;
        p->pending_expand_id = -1;
        return false;
    case KERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KERR_UNKNOWN_TOPIC_ID:
    case KERR_FENCED_LEADER_EPOCH:
    case KERR_INVALID_UPDATE_VERSION:
    case KERR_INVALID_REQUEST:
    case KERR_NEW_LEADER_ELECTED:
        return false; /* stay pending until new metadata */
    default:
        return true; /* retry the same request */
    }
}

int pr_check_enough_replicas(const partition_repl *p, int64_t required_offset, bool *done) {
    if (!p->is_leader) {
        *done = false;
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (p->hw >= required_offset) {
        *done = true;
        int32_t max_isr[PR_MAX_REPLICAS];
        int n = pr_maximal_isr(p, max_isr);
        return p->min_isr <= n ? KERR_NONE : KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    }
    *done = false;
    return KERR_NONE;
}
