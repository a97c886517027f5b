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

/* ISR without `gone`, unless that would empty it. NULL when unchanged. */
static int32_t *isr_without(const mpartition *p, int32_t gone, int32_t *count, karena *a) {
    bool member = false;
    for (int i = 0; i < p->nisr; i++)
        if (p->isr[i] == gone) member = true;
    if (!member || p->nisr <= 1) return NULL;
    int32_t *v = karena_calloc(a, (size_t)p->nisr, sizeof(int32_t));
    if (!v) return NULL;
    int32_t n = 0;
    for (int i = 0; i < p->nisr; i++)
        if (p->isr[i] != gone) v[n++] = p->isr[i];
    *count = n;
    return v;
}

int ctl_leadership_changes(const mimage *img, bool unclean_allowed, mrecord *out, int max, karena *a) {
    int n = 0;
    for (int t = 0; t < img->ntopics && n < max; t++) {
        const mtopic *mt = img->topics[t];
        for (int i = 0; i < mt->nparts && n < max; i++) {
            const mpartition *p = &mt->parts[i];
            if (p->leader >= 0 && alive(img, p->leader)) continue;
            int32_t leader = first_alive(img, p->isr, p->nisr);
            if (leader < 0 && unclean_allowed) leader = first_alive(img, p->replicas, p->nreplicas);
            int32_t nisr = -1;
            int32_t *isr = p->leader >= 0 ? isr_without(p, p->leader, &nisr, a) : NULL;
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
            r->leader = leader;
            r->isr = isr;
            r->isr_count = isr ? nisr : -1;
            r->replicas = NULL;
            r->replicas_count = -1;
            out[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
        }
    }
    return n;
}
