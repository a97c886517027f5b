/* controller.c - leadership decisions from broker liveness (see controller.h). */
#include "controller/controller.h"

#include <string.h>

#include "protocol/gen/kmsg.h"

static bool alive(const mimage *img, int32_t id) { return id >= 0 && mimage_broker_alive(img, id); }

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
