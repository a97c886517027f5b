/* reassign.c - partition reassignment decisions (see reassign.h). */
#include "controller/reassign.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

/* A list of broker ids in the arena. */
typedef struct ids {
    int32_t *v;
    int32_t n;
} ids;

static bool has(ids l, int32_t id) {
    for (int i = 0; i < l.n; i++)
        if (l.v[i] == id) return true;
    return false;
}

static bool same(ids x, ids y) {
    return x.n == y.n && (x.n == 0 || memcmp(x.v, y.v, sizeof(int32_t) * (size_t)x.n) == 0);
}

/* Does x hold every member of y (Replicas.contains)? */
static bool holds_all(ids x, ids y) {
    for (int i = 0; i < y.n; i++)
        if (!has(x, y.v[i])) return false;
    return true;
}

static ids ids_new(int32_t cap, karena *a) {
    ids l = {karena_calloc(a, (size_t)(cap > 0 ? cap : 1), sizeof(int32_t)), 0};
    return l;
}

static ids ids_of(const int32_t *v, int32_t n) { return (ids){(int32_t *)v, n > 0 ? n : 0}; }

/* Members of x not in y, in x's order. */
static ids minus(ids x, ids y, karena *a) {
    ids r = ids_new(x.n, a);
    for (int i = 0; r.v && i < x.n; i++)
        if (!has(y, x.v[i])) r.v[r.n++] = x.v[i];
    return r;
}

static int cmp_id(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return a < b ? -1 : a > b;
}

/* Members of x not in y, ascending and once each (a TreeSet). */
static ids sorted_minus(ids x, ids y, karena *a) {
    ids r = minus(x, y, a);
    if (!r.v) return r;
    qsort(r.v, (size_t)r.n, sizeof(int32_t), cmp_id);
    int32_t m = 0;
    for (int i = 0; i < r.n; i++)
        if (m == 0 || r.v[m - 1] != r.v[i]) r.v[m++] = r.v[i];
    r.n = m;
    return r;
}

bool rsg_in_progress(const mpartition *p) { return p->nremoving > 0 || p->nadding > 0; }

/* Kafka's PartitionChangeBuilder over one partition: targets start as the
 * partition's state; build() turns them into the record. */
typedef struct change_builder {
    const mimage *img;
    const mtopic *t;
    const mpartition *p;
    ids isr, replicas, removing, adding;
    bool unclean; /* Election.UNCLEAN (else ONLINE) */
} change_builder;

static void builder_init(change_builder *cb, const mimage *img, const mtopic *t, const mpartition *p) {
    *cb = (change_builder){img, t, p, ids_of(p->isr, p->nisr), ids_of(p->replicas, p->nreplicas),
                           ids_of(p->removing, p->nremoving), ids_of(p->adding, p->nadding), false};
}

/* isAcceptableLeader: registered and not fenced. */
static bool acceptable(const change_builder *cb, int32_t id) { return id >= 0 && mimage_broker_alive(cb->img, id); }

static bool valid_leader(const change_builder *cb, int32_t id) { return has(cb->isr, id) && acceptable(cb, id); }

/* PartitionReassignmentReplicas.maybeCompleteReassignment on the targets. */
static void complete_if_needed(change_builder *cb, karena *a) {
    if (cb->removing.n == 0 && cb->adding.n == 0) return;
    ids isr = cb->isr, replicas = cb->replicas;
    if (cb->removing.n > 0) {
        isr = minus(cb->isr, cb->removing, a);
        if (!isr.v || isr.n == 0) return;
        replicas = minus(cb->replicas, cb->removing, a);
        if (!replicas.v || replicas.n == 0) return;
    }
    for (int i = 0; i < cb->adding.n; i++)
        if (!has(isr, cb->adding.v[i])) return;
    cb->isr = isr;
    cb->replicas = replicas;
    cb->removing = (ids){NULL, 0};
    cb->adding = (ids){NULL, 0};
}

/* electAnyLeader: the current leader if still valid, else the first valid
 * target replica, else (unclean) the first acceptable one. */
static int32_t elect(const change_builder *cb, bool *unclean) {
    *unclean = false;
    if (valid_leader(cb, cb->p->leader)) return cb->p->leader;
    for (int i = 0; i < cb->replicas.n; i++)
        if (valid_leader(cb, cb->replicas.v[i])) return cb->replicas.v[i];
    if (cb->unclean)
        for (int i = 0; i < cb->replicas.n; i++)
            if (acceptable(cb, cb->replicas.v[i])) {
                *unclean = true;
                return cb->replicas.v[i];
            }
    return -1;
}

static void set_list(int32_t **v, int32_t *n, ids l) {
    *v = l.v;
    *n = l.n;
}

/* PartitionChangeBuilder.build: NULL when nothing changes (or no memory). */
static PartitionChangeRecord *builder_build(change_builder *cb, karena *a) {
    PartitionChangeRecord *r = karena_alloc(a, sizeof *r);
    if (!r) return NULL;
    PartitionChangeRecord_init(r);
    r->topic_id = cb->t->id;
    r->partition_id = cb->p->partition_id;
    complete_if_needed(cb, a);
    bool unclean;
    int32_t leader = elect(cb, &unclean);
    if (leader != cb->p->leader) {
        r->leader = leader;
        if (unclean) { /* the ISR restarts with the unclean leader alone */
            ids one = ids_new(1, a);
            if (!one.v) return NULL;
            one.v[one.n++] = leader;
            set_list(&r->isr, &r->isr_count, one);
        }
    }
    /* a replica leaving the assignment bumps the leader epoch (MV 3.6: an
     * ISR shrink alone does not) */
    if (r->leader == -2 && !holds_all(cb->replicas, ids_of(cb->p->replicas, cb->p->nreplicas)))
        r->leader = cb->p->leader;
    if (r->isr_count < 0 && cb->isr.n > 0 && !same(cb->isr, ids_of(cb->p->isr, cb->p->nisr)))
        set_list(&r->isr, &r->isr_count, cb->isr);
    if (cb->replicas.n > 0 && !same(cb->replicas, ids_of(cb->p->replicas, cb->p->nreplicas)))
        set_list(&r->replicas, &r->replicas_count, cb->replicas);
    if (!same(cb->removing, ids_of(cb->p->removing, cb->p->nremoving)))
        set_list(&r->removing_replicas, &r->removing_replicas_count, cb->removing);
    if (!same(cb->adding, ids_of(cb->p->adding, cb->p->nadding)))
        set_list(&r->adding_replicas, &r->adding_replicas_count, cb->adding);
    bool noop = r->isr_count < 0 && r->leader == -2 && r->replicas_count < 0 && r->removing_replicas_count < 0 &&
                r->adding_replicas_count < 0;
    return noop ? NULL : r;
}

/* ReplicationControlManager.validateManualPartitionAssignment. */
static int16_t validate_target(const mimage *img, const int32_t *target, int32_t n, const char **msg, karena *a) {
    if (n <= 0) {
        *msg = "The manual partition assignment includes an empty replica list.";
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    ids sorted = ids_new(n, a);
    if (!sorted.v) return KERR_UNKNOWN_SERVER_ERROR;
    memcpy(sorted.v, target, sizeof(int32_t) * (size_t)n);
    sorted.n = n;
    qsort(sorted.v, (size_t)n, sizeof(int32_t), cmp_id);
    for (int i = 0; i < n; i++) {
        if (!mimage_broker(img, sorted.v[i])) {
            *msg = karena_sprintf(a, "The manual partition assignment includes broker %d, but no such broker is "
                                     "registered.", sorted.v[i]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (i > 0 && sorted.v[i] == sorted.v[i - 1]) {
            *msg = karena_sprintf(a, "The manual partition assignment includes the broker %d more than once.",
                                  sorted.v[i]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    return KERR_NONE;
}

/* changePartitionReassignment: stage 1 (or all stages at once). */
static int16_t change(const mimage *img, const mtopic *t, const mpartition *p, const int32_t *target, int32_t n,
                      PartitionChangeRecord **out, const char **msg, karena *a) {
    int16_t ec = validate_target(img, target, n, msg, a);
    if (ec != KERR_NONE) return ec;
    ids cur = ids_of(p->replicas, p->nreplicas), tgt = ids_of(target, n);
    /* PartitionReassignmentReplicas(current, target) */
    ids removing = sorted_minus(cur, tgt, a), adding = sorted_minus(tgt, cur, a);
    ids replicas = ids_new(tgt.n + removing.n, a);
    if (!removing.v || !adding.v || !replicas.v) return KERR_UNKNOWN_SERVER_ERROR;
    memcpy(replicas.v, tgt.v, sizeof(int32_t) * (size_t)tgt.n);
    if (removing.n) memcpy(replicas.v + tgt.n, removing.v, sizeof(int32_t) * (size_t)removing.n);
    replicas.n = tgt.n + removing.n;
    change_builder cb;
    builder_init(&cb, img, t, p);
    if (!same(replicas, cur)) cb.replicas = replicas;
    if (removing.n) cb.removing = removing;
    if (adding.n) cb.adding = adding;
    *out = builder_build(&cb, a);
    return KERR_NONE;
}

/* cancelPartitionReassignment through PartitionReassignmentRevert. */
static int16_t cancel(const mimage *img, const mtopic *t, const mpartition *p, bool unclean_allowed,
                      PartitionChangeRecord **out, const char **msg, karena *a) {
    if (!rsg_in_progress(p)) {
        *msg = kerr_message(KERR_NO_REASSIGNMENT_IN_PROGRESS);
        return KERR_NO_REASSIGNMENT_IN_PROGRESS;
    }
    ids adding = ids_of(p->adding, p->nadding);
    ids replicas = minus(ids_of(p->replicas, p->nreplicas), adding, a); /* originalReplicas */
    ids isr = minus(ids_of(p->isr, p->nisr), adding, a);
    ids one = ids_new(1, a);
    if (!replicas.v || !isr.v || !one.v) return KERR_UNKNOWN_SERVER_ERROR;
    if (isr.n == 0) {
        if (replicas.n == 0) {
            *msg = "Invalid replica assignment: addingReplicas contains all replicas.";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (!unclean_allowed) {
            *msg = karena_sprintf(a, "Unable to revert partition assignment for %s:%d because it would require an "
                                     "unclean leader election.", t->name, p->partition_id);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        one.v[one.n++] = replicas.v[0];
        isr = one;
    }
    change_builder cb;
    builder_init(&cb, img, t, p);
    cb.unclean = unclean_allowed;
    cb.isr = isr;
    cb.replicas = replicas;
    cb.removing = (ids){NULL, 0};
    cb.adding = (ids){NULL, 0};
    *out = builder_build(&cb, a);
    return KERR_NONE;
}

int16_t rsg_alter(const mimage *img, kstr topic, int32_t partition, const int32_t *target, int32_t ntarget,
                  bool unclean_allowed, PartitionChangeRecord **out, const char **msg, karena *a) {
    *out = NULL;
    *msg = NULL;
    const mtopic *t = mimage_topic(img, topic);
    if (!t) {
        *msg = karena_sprintf(a, "Unable to find a topic named %.*s.", topic.len, topic.p);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (partition < 0 || partition >= t->nparts) {
        *msg = karena_sprintf(a, "Unable to find partition %.*s:%d.", topic.len, topic.p, partition);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    const mpartition *p = &t->parts[partition];
    if (!target) return cancel(img, t, p, unclean_allowed, out, msg, a);
    return change(img, t, p, target, ntarget, out, msg, a);
}

int rsg_completions(const mimage *img, mrecord *out, int max, karena *a) {
    int n = 0;
    for (int i = 0; i < img->ntopics && n < max; i++) {
        const mtopic *t = img->topics[i];
        for (int k = 0; k < t->nparts && n < max; k++) {
            const mpartition *p = &t->parts[k];
            if (!rsg_in_progress(p)) continue;
            change_builder cb;
            builder_init(&cb, img, t, p);
            complete_if_needed(&cb, a);
            if (rsg_in_progress(&(mpartition){.nremoving = cb.removing.n, .nadding = cb.adding.n})) continue;
            builder_init(&cb, img, t, p); /* build() completes it again, from the start */
            PartitionChangeRecord *r = builder_build(&cb, a);
            if (r) out[n++] = (mrecord){KMETA_PARTITION_CHANGE_RECORD, 0, r};
        }
    }
    return n;
}
