/* controller.c - leadership decisions from broker liveness (see controller.h). */
#include "controller/controller.h"

#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* BrokerHeartbeatManager.isActive: registered, unfenced and not in a
 * controlled shutdown (a node leaving neither leads nor stays in ISRs). */
static bool alive(const mimage *img, int32_t id) {
    if (id < 0 || !mimage_broker_alive(img, id)) return false;
    const mbroker *br = mimage_broker(img, id);
    return !br || !br->in_controlled_shutdown;
}

/* The first alive member of ids, or -1. */
static int32_t first_alive(const mimage *img, const int32_t *ids, int32_t n) {
    for (int i = 0; i < n; i++)
        if (alive(img, ids[i])) return ids[i];
    return -1;
}

/* The ISR without its members that are not alive (KRaft's handleBrokerFenced
 * removes a fenced broker from every ISR), unless none would be left: then
 * the last leader stays, alone (Kafka keeps the last ISR member so it can
 * come back as leader with its data). NULL when unchanged. */
static int32_t *isr_alive(const mimage *img, const mpartition *p, int32_t *count, karena *a) {
    int32_t nalive = 0;
    for (int i = 0; i < p->nisr; i++)
        if (alive(img, p->isr[i])) nalive++;
    if (nalive == p->nisr) return NULL;
    int32_t *v = karena_calloc(a, (size_t)(p->nisr ? p->nisr : 1), sizeof(int32_t));
    if (!v) return NULL;
    int32_t n = 0;
    for (int i = 0; i < p->nisr; i++)
        if (alive(img, p->isr[i])) v[n++] = p->isr[i];
    if (n == 0) {
        bool leader_in_isr = false;
        for (int i = 0; i < p->nisr; i++)
            if (p->isr[i] == p->leader) leader_in_isr = true;
        if (!leader_in_isr || p->nisr == 1) return NULL; /* nothing better to keep */
        v[n++] = p->leader;
    }
    *count = n;
    return v;
}

/* PartitionChangeBuilder's election: the first replica, in assignment
 * order, that is alive and in the ISR; -1 if none. */
static int32_t first_alive_in_isr(const mimage *img, const mpartition *p) {
    for (int i = 0; i < p->nreplicas; i++)
        for (int k = 0; k < p->nisr; k++)
            if (p->isr[k] == p->replicas[i] && alive(img, p->replicas[i])) return p->replicas[i];
    return first_alive(img, p->isr, p->nisr); /* an ISR member outside the assignment (reassignment) */
}

int ctl_leadership_changes(const mimage *img, bool unclean_allowed, mrecord *out, int max, karena *a) {
    int n = 0;
    for (int t = 0; t < img->ntopics && n < max; t++) {
        const mtopic *mt = img->topics[t];
        for (int i = 0; i < mt->nparts && n < max; i++) {
            const mpartition *p = &mt->parts[i];
            int32_t nisr = -1;
            int32_t *isr = isr_alive(img, p, &nisr, a);
            bool leader_alive = p->leader >= 0 && alive(img, p->leader);
            if (leader_alive && !isr) continue;
            int32_t leader = leader_alive ? p->leader : first_alive_in_isr(img, p);
            if (leader < 0 && unclean_allowed) leader = first_alive(img, p->replicas, p->nreplicas);
            if (leader == p->leader && !isr) continue; /* nothing to change (-1 stays -1) */
            /* An unclean leader (not in the ISR) restarts the ISR with itself,
             * as Kafka's PartitionChangeBuilder does. */
            const int32_t *cur = isr ? isr : p->isr;
            int32_t ncur = isr ? nisr : p->nisr;
            bool in_isr = false;
            for (int k = 0; k < ncur; k++)
                if (cur[k] == leader) in_isr = true;
            if (leader >= 0 && !in_isr) {
                isr = karena_alloc(a, sizeof(int32_t));
                if (!isr) return n;
                isr[0] = leader;
                nisr = 1;
            }
            PartitionChangeRecord *r = karena_alloc(a, sizeof *r);
            if (!r) return n;
            PartitionChangeRecord_init(r);
            r->partition_id = p->partition_id;
            r->topic_id = mt->id;
            r->leader = leader == p->leader ? -2 : leader; /* -2: no leader change (no epoch bump) */
            r->isr = isr;
            r->isr_count = isr ? nisr : -1;
            r->replicas = NULL;
            r->replicas_count = -1;
            out[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
        }
    }
    return n;
}

/* ---- elections on request, balancing, controlled shutdown ---- */

static bool in_list(const int32_t *ids, int32_t n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* PartitionChangeBuilder.isValidNewLeader over the current ISR. */
static bool valid_leader(const mimage *img, const mpartition *p, int32_t id) {
    return id >= 0 && in_list(p->isr, p->nisr, id) && alive(img, id);
}

static PartitionChangeRecord *change_of(const mtopic *t, const mpartition *p, karena *a) {
    PartitionChangeRecord *r = karena_alloc(a, sizeof *r);
    if (!r) return NULL;
    PartitionChangeRecord_init(r);
    r->partition_id = p->partition_id;
    r->topic_id = t->id;
    r->leader = -2; /* no leader change */
    r->isr = NULL;
    r->isr_count = -1;
    r->replicas = NULL;
    r->replicas_count = -1;
    return r;
}

/* PartitionChangeBuilder.electPreferredLeader: the leader it settles on. */
static int32_t preferred_election(const mimage *img, const mpartition *p) {
    if (p->nreplicas > 0 && valid_leader(img, p, p->replicas[0])) return p->replicas[0];
    if (valid_leader(img, p, p->leader)) return p->leader;
    for (int i = 1; i < p->nreplicas; i++)
        if (valid_leader(img, p, p->replicas[i])) return p->replicas[i];
    return -1;
}

static int32_t preferred_replica(const mpartition *p) { return p->nreplicas > 0 ? p->replicas[0] : -1; }

int16_t ctl_elect_leader(const mimage *img, const mtopic *t, const mpartition *p, int8_t election_type,
                         PartitionChangeRecord **out, karena *a) {
    *out = NULL;
    if (election_type != CTL_ELECTION_PREFERRED && election_type != CTL_ELECTION_UNCLEAN) return KERR_INVALID_REQUEST;
    if (election_type == CTL_ELECTION_PREFERRED ? p->leader == preferred_replica(p) : p->leader >= 0)
        return KERR_ELECTION_NOT_NEEDED;
    int32_t leader = -1;
    bool unclean = false;
    if (election_type == CTL_ELECTION_PREFERRED) {
        leader = preferred_election(img, p);
    } else {
        /* electAnyLeader: there is no leader here (checked above) */
        for (int i = 0; i < p->nreplicas && leader < 0; i++)
            if (valid_leader(img, p, p->replicas[i])) leader = p->replicas[i];
        if (leader < 0) {
            leader = first_alive(img, p->replicas, p->nreplicas);
            unclean = leader >= 0;
        }
    }
    if (leader == p->leader)
        return election_type == CTL_ELECTION_PREFERRED ? KERR_PREFERRED_LEADER_NOT_AVAILABLE
                                                       : KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    PartitionChangeRecord *r = change_of(t, p, a);
    if (!r) return KERR_UNKNOWN_SERVER_ERROR;
    r->leader = leader;
    if (unclean) {
        /* an unclean leader restarts the ISR with itself alone */
        r->isr = karena_alloc(a, sizeof(int32_t));
        if (!r->isr) return KERR_UNKNOWN_SERVER_ERROR;
        r->isr[0] = leader;
        r->isr_count = 1;
    }
    *out = r;
    return KERR_NONE;
}

bool ctl_leaders_imbalanced(const mimage *img) {
    for (int t = 0; t < img->ntopics; t++)
        for (int i = 0; i < img->topics[t]->nparts; i++) {
            const mpartition *p = &img->topics[t]->parts[i];
            if (p->leader != preferred_replica(p)) return true;
        }
    return false;
}

int ctl_balance_leaders(const mimage *img, mrecord *out, int max, bool *more, karena *a) {
    int n = 0;
    *more = false;
    for (int t = 0; t < img->ntopics; t++) {
        const mtopic *mt = img->topics[t];
        for (int i = 0; i < mt->nparts; i++) {
            const mpartition *p = &mt->parts[i];
            if (p->leader == preferred_replica(p)) continue;
            int32_t leader = preferred_election(img, p);
            if (leader == p->leader) continue;
            if (n >= max) {
                *more = true;
                return n;
            }
            PartitionChangeRecord *r = change_of(mt, p, a);
            if (!r) return n;
            r->leader = leader;
            out[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
        }
    }
    return n;
}

int ctl_controlled_shutdown(const mimage *img, int32_t broker_id, mrecord *out, int max, karena *a) {
    int n = 0;
    for (int t = 0; t < img->ntopics && n < max; t++) {
        const mtopic *mt = img->topics[t];
        for (int i = 0; i < mt->nparts && n < max; i++) {
            const mpartition *p = &mt->parts[i];
            if (!in_list(p->isr, p->nisr, broker_id) || p->nisr < 2) continue;
            /* the new leader: the first replica, in assignment order, alive
             * and in the ISR without broker_id */
            int32_t leader = p->leader;
            if (p->leader == broker_id || !valid_leader(img, p, p->leader)) {
                leader = -1;
                for (int k = 0; k < p->nreplicas && leader < 0; k++)
                    if (p->replicas[k] != broker_id && valid_leader(img, p, p->replicas[k])) leader = p->replicas[k];
                if (leader < 0) continue; /* no one else can lead: keep it (see controller.h) */
            }
            int32_t *isr = karena_calloc(a, (size_t)p->nisr, sizeof(int32_t));
            PartitionChangeRecord *r = isr ? change_of(mt, p, a) : NULL;
            if (!r) return n;
            int32_t m = 0;
            for (int k = 0; k < p->nisr; k++)
                if (p->isr[k] != broker_id) isr[m++] = p->isr[k];
            r->isr = isr;
            r->isr_count = m;
            if (leader != p->leader) r->leader = leader;
            out[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
        }
    }
    return n;
}
