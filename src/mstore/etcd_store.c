/* etcd_store.c - the metadata store of a cluster, on etcd (see
 * ../shared/design/cluster.md and docs/cluster.md).
 *
 * Keys under P = <etcd.prefix>/<cluster id>/ (values are Kafka metadata
 * records, each framed as in __cluster_metadata, several as
 * [uvarint length][record]...):
 *   log                 the records of the last change; etcd's revisions of
 *                       this key are the metadata log every node applies
 *   topics/<name>       TopicRecord + its PartitionRecords (current state:
 *                       the compare-and-set unit and the snapshot)
 *   configs/<type>/<resource>/<key>  ConfigRecord
 *   producer-ids        ProducerIdsRecord
 *   features/<name>     FeatureLevelRecord
 *   scram/<mechanism>/<user>  UserScramCredentialRecord
 *   acls/<id>           AccessControlEntryRecord (id in hex)
 *   quotas/<user>/<client-id>/<ip>/<key>  ClientQuotaRecord (each part "-"
 *                       when absent, "d" for the default, else "n" and the
 *                       name in hex, so any name is one safe key segment)
 *   brokers/<id>        RegisterBrokerRecord, under this node's lease;
 *                       broker epoch = the key's create_revision
 *   controller          the controller's node id, under its lease;
 *                       controller epoch = the key's create_revision
 * and <etcd.prefix>/cluster.id, which binds the prefix to one cluster.
 *
 * A change is one etcd transaction: compares (topic absent, or unchanged
 * since the revision this node's image holds; producer-ids unchanged; the
 * controller epoch for the controller's own decisions), then the state keys
 * and the log key. Nothing is applied when it is written: every node,
 * including the writer, applies changes as the watch on P delivers them, in
 * revision order; a commit completes once its revision has been applied.
 *
 * Liveness: the registration lives on a lease of broker.session.timeout.ms,
 * kept alive every broker.heartbeat.interval.ms. A node that cannot renew
 * it in time fences itself (leads nothing) before etcd lets the lease go and
 * the controller moves its partitions; it registers again, with a new
 * epoch, once etcd answers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/bootstrap.h"
#include "broker/storage_cmd.h"
#include "controller/controller.h"
#include "controller/reassign.h"
#include "metadata/mlog.h"
#include "metadata/topic_records.h"
#include "mstore/etcd.h"
#include "mstore/etcd_store.h"
#include "mstore/mstore.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "util/log.h"

#define COMPONENT "kafka.server.BrokerLifecycleManager"
#define CTL_COMPONENT "kafka.controller.QuorumController"
#define REQUEST_TIMEOUT_MS 5000
#define CONFLICT_WAIT_MS 1000   /* a conflict's revision may not touch P: stop waiting for it */
#define TICK_MS 100
#define MAX_TXN_OPS 120          /* etcd's --max-txn-ops is 128 */
#define CTL_MAX_CHANGES 100
#define TXN_MAX_TOPICS 50        /* a changed topic is a compare and a put */
#define BALANCE_SOON_MS 10       /* KRaft: the next balancing pass at once when one was cut short */
#define COMPACT_EVERY_MS 60000   /* the controller trims etcd's history this often */
#define COMPACT_KEEP 10000       /* revisions kept: a node this far behind reloads a snapshot */

typedef struct pending {
    struct pending *next;
    struct etcd_store *s;     /* the etcd answer's callback gets the pending itself */
    mstore_done_fn done;
    void *arg;
    bool answered;            /* etcd answered the transaction */
    mstore_status st;
    int64_t wait_rev;         /* complete once applied_rev reaches it */
    int64_t since_ms;
} pending;

typedef struct etcd_store {
    mstore base;
    broker *b;
    etcd_client *etcd;
    char endpoints[1024];
    char root[256];           /* <etcd.prefix> */
    char prefix[512];         /* P */
    size_t prefix_len;
    int64_t session_ms, heartbeat_ms;
    bool unclean_election;
    bool auto_rebalance;      /* auto.leader.rebalance.enable */
    int64_t imbalance_check_ms; /* leader.imbalance.check.interval.seconds */
    bool balance_scheduled;   /* KRaft's ImbalanceSchedule: SCHEDULED */
    bool balance_soon;        /* the last pass was cut short: IMMEDIATELY, else DEFERRED */
    int64_t balance_at_ms;
    bool left;                /* deregistered on the way out: our key's deletion is no news */
    bool in_controlled_shutdown; /* our registration says so */
    int64_t lease_id;
    int64_t broker_epoch;     /* create_revision of our registration */
    int64_t reg_lease_id;     /* the lease our registration lives on */
    kuuid incarnation;
    int64_t last_renewed_ms;  /* monotonic: last keep-alive etcd confirmed */
    bool registering;
    bool keepalive_inflight;
    int64_t applied_rev;      /* every change of P up to here is in the image */
    int64_t producer_ids_rev; /* mod_revision of producer-ids (0: absent) */
    int32_t controller_id;    /* -1: none */
    int64_t controller_epoch;
    bool campaigning;
    bool ctl_inflight;
    etcd_watch *watch;
    bool watch_lost;          /* said so once; quiet until it is back */
    bool needs_snapshot;      /* history compacted: reload before watching again */
    bool reloading;
    pending *pending;
    loop_timer_id keepalive_timer, tick_timer;
    int64_t last_compact_ms;
} etcd_store;

static void watch_events(void *arg, const etcd_watch_batch *wb);
static void run_controller(etcd_store *s);
static void campaign(etcd_store *s);
static void reregister(etcd_store *s);
static void reload_snapshot(etcd_store *s);
static void maybe_unfence(etcd_store *s);

/* ---- keys and values ---- */

static size_t key_of(const etcd_store *s, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t key_of(const etcd_store *s, char *out, size_t cap, const char *fmt, ...) {
    int n = snprintf(out, cap, "%s", s->prefix);
    if (n < 0 || (size_t)n >= cap) return cap ? cap - 1 : 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    return (size_t)n + (size_t)m < cap ? (size_t)n + (size_t)m : cap - 1;
}

/* Does key (k, n) equal P + suffix / start with P + prefix? */
static const char *key_rest(const etcd_store *s, const uint8_t *k, size_t n, size_t *rest_len) {
    if (n < s->prefix_len || memcmp(k, s->prefix, s->prefix_len) != 0) return NULL;
    *rest_len = n - s->prefix_len;
    return (const char *)k + s->prefix_len;
}

static bool rest_is(const char *rest, size_t n, const char *what) {
    return strlen(what) == n && memcmp(rest, what, n) == 0;
}

static bool rest_starts(const char *rest, size_t n, const char *what) {
    size_t l = strlen(what);
    return n >= l && memcmp(rest, what, l) == 0;
}

/* Append one framed record as [uvarint length][frame]. */
static int put_frame(kwriter *w, const mrecord *rec) {
    kwriter f;
    kw_init(&f);
    int rc = mrecord_encode(rec, &f);
    if (rc == 0 && !f.err) {
        kw_uvarint(w, (uint32_t)f.len);
        kw_raw(w, f.buf, f.len);
    }
    kw_free(&f);
    return rc == 0 && !w->err ? 0 : -1;
}

/* Decode a value of framed records, all of them first: a value with one bad
 * frame is refused whole, nothing of it applied. Then fn for each (records
 * in a). */
static int each_frame(const uint8_t *p, size_t n, karena *a, int (*fn)(void *ctx, const mrecord *r), void *ctx) {
    kreader r;
    kr_init(&r, p, n);
    mrecord *recs = NULL;
    size_t count = 0, cap = 0;
    while (kr_remaining(&r) > 0) {
        uint32_t len = kr_uvarint(&r);
        const uint8_t *fp = kr_take(&r, len);
        if (r.err || !fp) return -1;
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            mrecord *nr = karena_calloc(a, nc, sizeof *nr);
            if (!nr) return -1;
            if (count) memcpy(nr, recs, count * sizeof *recs);
            recs = nr;
            cap = nc;
        }
        if (mrecord_decode(fp, len, a, &recs[count]) < 0) return -1;
        count++;
    }
    for (size_t i = 0; i < count; i++)
        if (recs[i].data && fn(ctx, &recs[i]) < 0) return -1;
    return 0;
}

/* A topic's current state as TopicRecord + PartitionRecords. */
static int encode_topic(const mtopic *t, kwriter *w) {
    TopicRecord tr;
    mtopic_to_record(t, &tr);
    mrecord rec = {KMETA_TOPIC_RECORD, 0, &tr};
    if (put_frame(w, &rec) < 0) return -1;
    for (int i = 0; i < t->nparts; i++) {
        PartitionRecord pr;
        mpartition_to_record(t, &t->parts[i], &pr);
        mrecord prec = {KMETA_PARTITION_RECORD, 0, &pr};
        if (put_frame(w, &prec) < 0) return -1;
    }
    return 0;
}

static int apply_to_image(void *ctx, const mrecord *r) { return mimage_apply(ctx, r); }

static void stamp_topic(mtopic *t, int64_t rev) {
    t->store_rev = rev;
    for (int i = 0; i < t->nparts; i++) t->parts[i].store_rev = rev;
}

/* ---- pending commits ---- */

static void complete_ready(etcd_store *s) {
    int64_t now = monotonic_ms();
    for (;;) {
        pending **pp = &s->pending, *p = NULL;
        for (; *pp; pp = &(*pp)->next) {
            pending *c = *pp;
            bool applied = c->answered && c->wait_rev <= s->applied_rev;
            bool gave_up = c->answered && c->st == MSTORE_CONFLICT && now - c->since_ms >= CONFLICT_WAIT_MS;
            bool unanswered = c->answered && c->st != MSTORE_OK;
            if (applied || gave_up || (unanswered && c->st != MSTORE_CONFLICT)) {
                p = c;
                *pp = c->next;
                break;
            }
            if (c->answered && c->st == MSTORE_OK && now - c->since_ms > 4 * REQUEST_TIMEOUT_MS) {
                /* written but never seen: the watch is broken; say so rather than hang */
                c->st = MSTORE_UNAVAILABLE;
                p = c;
                *pp = c->next;
                break;
            }
        }
        if (!p) return;
        /* callbacks may start new commits: the list is re-walked after each */
        if (p->done) p->done(s->b, p->arg, p->st);
        free(p);
    }
}

/* A pending commit lives until etcd answered it (every completion needs
 * the answer), so it is the answer's context: nothing else to free when
 * the store closes with transactions in flight. */
static void txn_answered(void *arg, const etcd_result *r) {
    pending *p = arg;
    etcd_store *s = p->s;
    p->answered = true;
    p->since_ms = monotonic_ms();
    if (r->status != ETCD_OK) {
        log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] Metadata change not written: etcd: %s",
                 s->b->cfg.node_id, r->error ? r->error : "unreachable");
        p->st = MSTORE_UNAVAILABLE;
    } else {
        p->st = r->succeeded ? MSTORE_OK : MSTORE_CONFLICT;
        p->wait_rev = r->revision;
    }
    complete_ready(s);
}

/* ---- building a transaction from records ---- */

typedef struct txn_build {
    etcd_cmp cmps[MAX_TXN_OPS];
    etcd_op ops[MAX_TXN_OPS];
    int ncmps, nops;
    karena *a;
} txn_build;

/* P + the formatted rest, in the arena (names come from requests: up to 249
 * characters, resource names and config keys longer still, so no fixed buffer). */
static char *arena_key(const etcd_store *s, karena *a, size_t *len, const char *fmt, const char *x, const char *y,
                       const char *z) {
    char *rest = karena_sprintf(a, fmt, x, y, z);
    char *k = rest ? karena_sprintf(a, "%s%s", s->prefix, rest) : NULL;
    *len = k ? strlen(k) : 0;
    return k;
}

static bool add_cmp(txn_build *t, etcd_cmp c) {
    if (t->ncmps >= MAX_TXN_OPS) return false;
    t->cmps[t->ncmps++] = c;
    return true;
}

static bool add_op(txn_build *t, etcd_op o) {
    if (t->nops >= MAX_TXN_OPS) return false;
    t->ops[t->nops++] = o;
    return true;
}

/* A key of its own per record (SCRAM credentials, ACL bindings): the
 * record framed as its value (put), or the key deleted (rec NULL). The
 * value lives in the arena. False when the key is missing, out of memory,
 * or the transaction is full. */
static bool put_or_delete_key(txn_build *t, karena *a, char *k, size_t kl, const mrecord *rec) {
    if (!k) return false;
    if (!rec) return add_op(t, (etcd_op){ETCD_OP_DELETE, k, kl, NULL, 0, 0, NULL, 0});
    kwriter w;
    kw_init(&w);
    uint8_t *v = put_frame(&w, rec) == 0 ? karena_alloc(a, w.len) : NULL;
    size_t vl = w.len;
    if (v) memcpy(v, w.buf, vl);
    kw_free(&w);
    return v && add_op(t, (etcd_op){ETCD_OP_PUT, k, kl, v, vl, 0, NULL, 0});
}

/* quotas/<user>/<client-id>/<ip>/<key> of a ClientQuotaRecord (see the
 * head of this file); NULL when an entity type repeats or is unknown. */
static char *quota_key(const etcd_store *s, karena *a, const ClientQuotaRecord *r, size_t *len) {
    kstr names[MQE_NTYPES];
    uint8_t has = 0;
    for (int i = 0; i < r->entity_count; i++) {
        int t = mquota_type_from(r->entity[i].entity_type);
        if (t < 0 || (has & (1u << t))) return NULL;
        has |= (uint8_t)(1u << t);
        names[t] = r->entity[i].entity_name;
    }
    size_t cap = 16;
    for (int t = 0; t < MQE_NTYPES; t++)
        if ((has & (1u << t)) && names[t].len > 0) cap += 2 * (size_t)names[t].len;
    char *parts = karena_alloc(a, cap);
    char *key = kstr_dup(r->key, a);
    if (!parts || !key) return NULL;
    size_t o = 0;
    for (int t = 0; t < MQE_NTYPES; t++) {
        if (!(has & (1u << t))) parts[o++] = '-';
        else if (names[t].len < 0) parts[o++] = 'd';
        else {
            parts[o++] = 'n';
            for (int32_t j = 0; j < names[t].len; j++, o += 2)
                snprintf(parts + o, 3, "%02x", (unsigned char)names[t].p[j]);
        }
        parts[o++] = '/';
    }
    parts[o] = '\0';
    return arena_key(s, a, len, "quotas/%s%s%s", parts, key, "");
}

/* Topics a batch touches, by id or (new) by name. */
static bool touches(const mrecord *recs, int n, const kuuid *id) {
    for (int i = 0; i < n; i++) {
        const kuuid *t = NULL;
        if (recs[i].type == KMETA_PARTITION_RECORD) t = &((const PartitionRecord *)recs[i].data)->topic_id;
        else if (recs[i].type == KMETA_PARTITION_CHANGE_RECORD) t = &((const PartitionChangeRecord *)recs[i].data)->topic_id;
        else if (recs[i].type == KMETA_REMOVE_TOPIC_RECORD) t = &((const RemoveTopicRecord *)recs[i].data)->topic_id;
        else if (recs[i].type == KMETA_TOPIC_RECORD) t = &((const TopicRecord *)recs[i].data)->topic_id;
        if (t && memcmp(t->b, id->b, 16) == 0) return true;
    }
    return false;
}

/* Returns MSTORE_OK with the transaction built, or MSTORE_CONFLICT when the
 * records do not apply to the image (someone changed it first). */
static mstore_status build_txn(etcd_store *s, const mrecord *recs, int n, unsigned flags, txn_build *t) {
    karena *a = t->a;
    const mimage *img = s->b->image;
    /* The touched topics' state after the change: their current state and
     * the records, applied to a scratch image. */
    mimage *scratch = mimage_new(img->node_id);
    if (!scratch) return MSTORE_IO;
    mstore_status st = MSTORE_OK;
    for (int i = 0; i < img->ntopics && st == MSTORE_OK; i++) {
        const mtopic *mt = img->topics[i];
        if (!touches(recs, n, &mt->id)) continue;
        kwriter w;
        kw_init(&w);
        if (encode_topic(mt, &w) < 0 || each_frame(w.buf, w.len, a, apply_to_image, scratch) < 0) st = MSTORE_IO;
        kw_free(&w);
    }
    kwriter logv;
    kw_init(&logv);
    for (int i = 0; i < n && st == MSTORE_OK; i++) {
        bool scram = recs[i].type == KMETA_USER_SCRAM_CREDENTIAL_RECORD ||
                     recs[i].type == KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD ||
                     recs[i].type == KMETA_ACCESS_CONTROL_ENTRY_RECORD ||
                     recs[i].type == KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD ||
                     recs[i].type == KMETA_CLIENT_QUOTA_RECORD;
        if (recs[i].type != KMETA_CONFIG_RECORD && recs[i].type != KMETA_PRODUCER_IDS_RECORD &&
            recs[i].type != KMETA_FEATURE_LEVEL_RECORD && !scram && mimage_apply(scratch, &recs[i]) < 0)
            st = MSTORE_CONFLICT;
        if (put_frame(&logv, &recs[i]) < 0) st = MSTORE_IO;
    }
    /* topics: created, changed or removed */
    for (int i = 0; i < scratch->ntopics && st == MSTORE_OK; i++) {
        const mtopic *nt = scratch->topics[i];
        const mtopic *old = mimage_topic_by_id(img, &nt->id);
        if (!old && mimage_topic(img, kstr_from(nt->name))) {
            st = MSTORE_CONFLICT; /* the name is taken */
            break;
        }
        size_t kl;
        char *k = arena_key(s, a, &kl, "topics/%s%s%s", nt->name, "", "");
        kwriter w;
        kw_init(&w);
        if (encode_topic(nt, &w) < 0) st = MSTORE_IO;
        uint8_t *v = w.len ? karena_alloc(a, w.len) : NULL;
        if (v) memcpy(v, w.buf, w.len);
        size_t vl = w.len;
        kw_free(&w);
        if (!k || !v) st = MSTORE_IO;
        if (st != MSTORE_OK) break;
        etcd_cmp c = {old ? ETCD_CMP_MOD : ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, old ? old->store_rev : 0, NULL, 0};
        etcd_op o = {ETCD_OP_PUT, k, kl, v, vl, 0, NULL, 0};
        if (!add_cmp(t, c) || !add_op(t, o)) st = MSTORE_IO;
    }
    for (int i = 0; i < n && st == MSTORE_OK; i++) {
        if (recs[i].type != KMETA_REMOVE_TOPIC_RECORD) continue;
        const mtopic *old = mimage_topic_by_id(img, &((const RemoveTopicRecord *)recs[i].data)->topic_id);
        if (!old) {
            st = MSTORE_CONFLICT;
            break;
        }
        size_t kl, cl;
        char *k = arena_key(s, a, &kl, "topics/%s%s%s", old->name, "", "");
        char *ck = arena_key(s, a, &cl, "configs/2/%s/%s%s", old->name, "", "");
        uint8_t *cend = ck ? karena_alloc(a, cl) : NULL;
        if (!k || !cend) {
            st = MSTORE_IO;
            break;
        }
        size_t cel = etcd_prefix_end(ck, cl, cend);
        if (!add_cmp(t, (etcd_cmp){ETCD_CMP_MOD, ETCD_EQUAL, k, kl, old->store_rev, NULL, 0}) ||
            !add_op(t, (etcd_op){ETCD_OP_DELETE, k, kl, NULL, 0, 0, NULL, 0}) ||
            !add_op(t, (etcd_op){ETCD_OP_DELETE, ck, cl, NULL, 0, 0, cend, cel}))
            st = MSTORE_IO;
    }
    /* configs, producer ids, features */
    for (int i = 0; i < n && st == MSTORE_OK; i++) {
        if (recs[i].type == KMETA_CONFIG_RECORD) {
            const ConfigRecord *cr = recs[i].data;
            char *type = karena_sprintf(a, "%d", cr->resource_type);
            char *res = kstr_dup(cr->resource_name, a), *name = kstr_dup(cr->name, a);
            size_t kl = 0;
            char *k = type && res && name ? arena_key(s, a, &kl, "configs/%s/%s/%s", type, res, name) : NULL;
            kwriter w;
            kw_init(&w);
            uint8_t *v = NULL;
            size_t vl = 0;
            if (k && cr->value.len >= 0 && put_frame(&w, &recs[i]) == 0 && (v = karena_alloc(a, w.len))) {
                memcpy(v, w.buf, w.len);
                vl = w.len;
            }
            kw_free(&w);
            if (!k || (cr->value.len >= 0 && !v)) st = MSTORE_IO;
            else if (!add_op(t, cr->value.len >= 0 ? (etcd_op){ETCD_OP_PUT, k, kl, v, vl, 0, NULL, 0}
                                                    : (etcd_op){ETCD_OP_DELETE, k, kl, NULL, 0, 0, NULL, 0}))
                st = MSTORE_IO;
        } else if (recs[i].type == KMETA_USER_SCRAM_CREDENTIAL_RECORD ||
                   recs[i].type == KMETA_REMOVE_USER_SCRAM_CREDENTIAL_RECORD) {
            /* the credential's current state, replaced or deleted as a whole */
            bool put = recs[i].type == KMETA_USER_SCRAM_CREDENTIAL_RECORD;
            kstr uname = put ? ((const UserScramCredentialRecord *)recs[i].data)->name
                             : ((const RemoveUserScramCredentialRecord *)recs[i].data)->name;
            int8_t mech = put ? ((const UserScramCredentialRecord *)recs[i].data)->mechanism
                              : ((const RemoveUserScramCredentialRecord *)recs[i].data)->mechanism;
            char *ms = karena_sprintf(a, "%d", mech), *user = kstr_dup(uname, a);
            size_t kl = 0;
            char *k = ms && user ? arena_key(s, a, &kl, "scram/%s/%s%s", ms, user, "") : NULL;
            if (!put_or_delete_key(t, a, k, kl, put ? &recs[i] : NULL)) st = MSTORE_IO;
        } else if (recs[i].type == KMETA_ACCESS_CONTROL_ENTRY_RECORD ||
                   recs[i].type == KMETA_REMOVE_ACCESS_CONTROL_ENTRY_RECORD) {
            /* one key per binding, named by its record id */
            bool put = recs[i].type == KMETA_ACCESS_CONTROL_ENTRY_RECORD;
            const kuuid *id = put ? &((const AccessControlEntryRecord *)recs[i].data)->id
                                  : &((const RemoveAccessControlEntryRecord *)recs[i].data)->id;
            char hex[33];
            for (int j = 0; j < 16; j++) snprintf(hex + 2 * j, 3, "%02x", id->b[j]);
            size_t kl = 0;
            char *k = arena_key(s, a, &kl, "acls/%s%s%s", hex, "", "");
            if (!put_or_delete_key(t, a, k, kl, put ? &recs[i] : NULL)) st = MSTORE_IO;
        } else if (recs[i].type == KMETA_CLIENT_QUOTA_RECORD) {
            /* one key per entity and quota key: the value set, or removed */
            const ClientQuotaRecord *cr = recs[i].data;
            size_t kl = 0;
            char *k = quota_key(s, a, cr, &kl);
            if (!put_or_delete_key(t, a, k, kl, cr->remove ? NULL : &recs[i])) st = MSTORE_IO;
        } else if (recs[i].type == KMETA_PRODUCER_IDS_RECORD || recs[i].type == KMETA_FEATURE_LEVEL_RECORD) {
            bool pids = recs[i].type == KMETA_PRODUCER_IDS_RECORD;
            size_t kl;
            char *fname = pids ? NULL : kstr_dup(((const FeatureLevelRecord *)recs[i].data)->name, a);
            char *k = pids ? arena_key(s, a, &kl, "producer-ids%s%s%s", "", "", "")
                           : (fname ? arena_key(s, a, &kl, "features/%s%s%s", fname, "", "") : NULL);
            kwriter w;
            kw_init(&w);
            uint8_t *v = NULL;
            size_t vl = 0;
            if (k && put_frame(&w, &recs[i]) == 0 && (v = karena_alloc(a, w.len))) {
                memcpy(v, w.buf, w.len);
                vl = w.len;
            }
            kw_free(&w);
            if (!k || !v) {
                st = MSTORE_IO;
                break;
            }
            if (pids) {
                etcd_cmp c = {s->producer_ids_rev ? ETCD_CMP_MOD : ETCD_CMP_CREATE, ETCD_EQUAL, k, kl,
                              s->producer_ids_rev, NULL, 0};
                if (!add_cmp(t, c)) st = MSTORE_IO;
            } else if (!add_cmp(t, (etcd_cmp){ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, 0, NULL, 0})) {
                st = MSTORE_IO; /* features are set once, at bootstrap */
            }
            if (!add_op(t, (etcd_op){ETCD_OP_PUT, k, kl, v, vl, 0, NULL, 0})) st = MSTORE_IO;
        }
    }
    if (st == MSTORE_OK && (flags & MSTORE_AS_CONTROLLER)) {
        size_t kl;
        char *k = arena_key(s, a, &kl, "controller%s%s%s", "", "", "");
        if (!k || !add_cmp(t, (etcd_cmp){ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, s->controller_epoch, NULL, 0}))
            st = MSTORE_IO;
    }
    if (st == MSTORE_OK) {
        size_t kl;
        char *k = arena_key(s, a, &kl, "log%s%s%s", "", "", "");
        uint8_t *v = karena_alloc(a, logv.len ? logv.len : 1);
        if (!k || !v) st = MSTORE_IO;
        else {
            memcpy(v, logv.buf, logv.len);
            if (!add_op(t, (etcd_op){ETCD_OP_PUT, k, kl, v, logv.len, 0, NULL, 0})) st = MSTORE_IO;
        }
    }
    kw_free(&logv);
    mimage_free(scratch);
    return st;
}

static void etcd_commit(mstore *base, const mrecord *recs, int n, unsigned flags, mstore_done_fn done, void *arg) {
    etcd_store *s = (etcd_store *)base;
    pending *p = calloc(1, sizeof *p);
    txn_build *t = malloc(sizeof *t);
    karena a;
    karena_init(&a, 0);
    mstore_status st = (!p || !t) ? MSTORE_IO : MSTORE_OK;
    if (st == MSTORE_OK) {
        memset(t, 0, sizeof *t);
        t->a = &a;
        st = build_txn(s, recs, n, flags, t);
        if (st == MSTORE_IO && t->nops >= MAX_TXN_OPS)
            log_warn(COMPONENT, "A metadata change of %d records needs more than %d etcd operations", n, MAX_TXN_OPS);
    }
    if (st == MSTORE_OK) {
        p->s = s;
        p->done = done;
        p->arg = arg;
        p->since_ms = monotonic_ms();
        p->next = s->pending;
        s->pending = p;
        if (etcd_txn(s->etcd, t->cmps, t->ncmps, t->ops, t->nops, NULL, 0, txn_answered, p) != 0) {
            p->answered = true;
            p->st = MSTORE_UNAVAILABLE;
        }
        p = NULL;
    }
    karena_free(&a);
    free(t);
    if (p) free(p);
    if (st != MSTORE_OK) {
        if (done) done(s->b, arg, st);
        return;
    }
    complete_ready(s);
}

/* ---- applying what the watch delivers ---- */

typedef struct apply_ctx {
    etcd_store *s;
    int64_t rev;
} apply_ctx;

/* Apply one record of a change; the topics it touches now stand at the
 * change's revision (their key was written in the same transaction). */
static int apply_logged(void *arg, const mrecord *r) {
    apply_ctx *c = arg;
    mimage *img = c->s->b->image;
    if (mimage_apply(img, r) < 0) {
        log_warn(COMPONENT, "A metadata record (type %d) does not apply to the image; ignored", r->type);
        return 0;
    }
    const kuuid *id = NULL;
    if (r->type == KMETA_TOPIC_RECORD) id = &((const TopicRecord *)r->data)->topic_id;
    else if (r->type == KMETA_PARTITION_RECORD) id = &((const PartitionRecord *)r->data)->topic_id;
    else if (r->type == KMETA_PARTITION_CHANGE_RECORD) id = &((const PartitionChangeRecord *)r->data)->topic_id;
    mtopic *t = id ? mimage_topic_by_id(img, id) : NULL;
    if (t) stamp_topic(t, c->rev);
    return 0;
}

static void apply_log_value(etcd_store *s, const etcd_kv *kv) {
    apply_ctx c = {s, kv->mod_revision};
    karena a;
    karena_init(&a, 0);
    if (each_frame(kv->value, kv->value_len, &a, apply_logged, &c) < 0)
        log_error(COMPONENT, "Refusing a corrupt metadata change at etcd revision %lld", (long long)kv->mod_revision);
    karena_free(&a);
}

/* brokers/<id>: a registration, with its epoch from the key. */
static void apply_registration(etcd_store *s, mimage *img, const etcd_kv *kv) {
    karena a;
    karena_init(&a, 0);
    kreader r;
    kr_init(&r, kv->value, kv->value_len);
    uint32_t len = kr_uvarint(&r);
    const uint8_t *fp = kr_take(&r, len);
    mrecord rec;
    if (r.err || !fp || mrecord_decode(fp, len, &a, &rec) < 0 || rec.type != KMETA_REGISTER_BROKER_RECORD || !rec.data) {
        log_error(COMPONENT, "Refusing a foreign broker registration under %s", s->prefix);
        karena_free(&a);
        return;
    }
    RegisterBrokerRecord *reg = (RegisterBrokerRecord *)rec.data;
    reg->broker_epoch = kv->create_revision;
    reg->fenced = false;
    if (mimage_apply(img, &rec) < 0) log_warn(COMPONENT, "Broker registration of %d does not apply", reg->broker_id);
    karena_free(&a);
}

static void fence_in_image(etcd_store *s, int32_t id) {
    mbroker *br = mimage_broker(s->b->image, id);
    if (!br) return;
    FenceBrokerRecord f;
    FenceBrokerRecord_init(&f);
    f.id = id;
    f.epoch = br->epoch;
    mrecord rec = {KMETA_FENCE_BROKER_RECORD, 0, &f};
    mimage_apply(s->b->image, &rec);
}

static int32_t parse_id(const char *p, size_t n) {
    if (n == 0 || n > 10) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v > INT32_MAX ? -1 : (int32_t)v;
}

static void self_fence(etcd_store *s, const char *why) {
    if (s->b->fenced) return;
    s->b->fenced = true;
    log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] Fenced: %s. Leading nothing until registered again.",
             s->b->cfg.node_id, why);
}

static void apply_event(etcd_store *s, const etcd_event *ev) {
    size_t n;
    const char *rest = key_rest(s, ev->kv.key, ev->kv.key_len, &n);
    if (!rest) return;
    if (rest_is(rest, n, "log")) {
        if (!ev->is_delete) apply_log_value(s, &ev->kv);
        return;
    }
    if (rest_is(rest, n, "producer-ids")) {
        if (!ev->is_delete) s->producer_ids_rev = ev->kv.mod_revision;
        return;
    }
    if (rest_starts(rest, n, "brokers/")) {
        int32_t id = parse_id(rest + 8, n - 8);
        if (id < 0) return;
        if (!ev->is_delete) {
            apply_registration(s, s->b->image, &ev->kv);
        } else {
            fence_in_image(s, id);
            /* an earlier registration of ours expiring after we registered
             * again is history, not news */
            if (id == s->b->cfg.node_id && !s->registering && !s->left && ev->kv.mod_revision > s->broker_epoch) {
                self_fence(s, "its registration in etcd is gone (session expired)");
                reregister(s);
            }
        }
        return;
    }
    if (rest_is(rest, n, "controller")) {
        if (ev->is_delete) {
            s->controller_id = -1;
            s->controller_epoch = 0;
            campaign(s);
        } else {
            s->controller_id = parse_id((const char *)ev->kv.value, ev->kv.value_len);
            s->controller_epoch = ev->kv.create_revision;
            if (s->controller_id == s->b->cfg.node_id)
                log_info(CTL_COMPONENT, "[QuorumController id=%d] Becoming the active controller at epoch %lld",
                         s->b->cfg.node_id, (long long)s->controller_epoch);
        }
        return;
    }
    /* topics/, configs/, features/, scram/, acls/, quotas/: the state that the log key already carried */
}

static void watch_events(void *arg, const etcd_watch_batch *wb) {
    etcd_store *s = arg;
    if (wb->status != ETCD_OK || wb->compact_revision > 0) {
        /* The watch ended: follow again from what we have (a compacted
         * revision would need a fresh snapshot: fence and restart is safer). */
        s->watch = NULL;
        if (wb->compact_revision > 0) {
            log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] etcd compacted revision %lld before this node applied "
                                "it: reloading the metadata", s->b->cfg.node_id, (long long)s->applied_rev + 1);
            s->needs_snapshot = true;
            reload_snapshot(s);
            return;
        }
        if (!s->watch_lost)
            log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] Lost the etcd watch (%s); following again from "
                                "revision %lld", s->b->cfg.node_id, wb->error ? wb->error : "closed",
                     (long long)s->applied_rev + 1);
        s->watch_lost = true;
        return; /* store_tick starts it again, at most every TICK_MS */
    }
    if (s->watch_lost) {
        log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Following etcd again", s->b->cfg.node_id);
        s->watch_lost = false;
    }
    for (int i = 0; i < wb->nevents; i++) {
        if (wb->events[i].kv.mod_revision <= s->applied_rev) continue;
        apply_event(s, &wb->events[i]);
        /* everything of this revision is in the batch: it counts as applied */
        if (i + 1 == wb->nevents || wb->events[i + 1].kv.mod_revision != wb->events[i].kv.mod_revision)
            s->applied_rev = wb->events[i].kv.mod_revision;
    }
    /* Not wb->revision: etcd hands a watch that is behind at most 1000
     * revisions per message (watchBatchMaxRevs), each under header.revision
     * = its current revision; counting that as applied skipped the rest. */
    broker_metadata_applied(s->b);
    maybe_unfence(s);
    complete_ready(s);
    run_controller(s);
}

/* ---- the controller ---- */

static void controller_committed(broker *b, void *arg, mstore_status st) {
    (void)b;
    etcd_store *s = arg;
    s->ctl_inflight = false;
    if (st == MSTORE_OK || st == MSTORE_CONFLICT) run_controller(s);
}

/* How many of recs (PartitionChangeRecords, grouped by topic) fit one etcd
 * transaction: at most TXN_MAX_TOPICS topics. */
static int fit_txn(const mrecord *recs, int n) {
    int topics = 0;
    for (int i = 0; i < n; i++) {
        const PartitionChangeRecord *r = recs[i].data;
        bool new_topic = i == 0 || memcmp(&r->topic_id, &((const PartitionChangeRecord *)recs[i - 1].data)->topic_id,
                                          sizeof r->topic_id) != 0;
        if (new_topic && ++topics > TXN_MAX_TOPICS) return i;
    }
    return n;
}

/* The node that holds the controller key moves leadership after liveness. */
static void run_controller(etcd_store *s) {
    if (s->controller_id != s->b->cfg.node_id || s->b->fenced || s->ctl_inflight || s->left) return;
    karena a;
    karena_init(&a, 0);
    mrecord recs[CTL_MAX_CHANGES];
    int n = ctl_leadership_changes(s->b->image, s->unclean_election, recs, CTL_MAX_CHANGES, &a);
    /* then reassignments whose adding replicas joined the ISR (controller/reassign.h) */
    if (n == 0) n = rsg_completions(s->b->image, recs, CTL_MAX_CHANGES, &a);
    n = fit_txn(recs, n); /* the rest comes in the next round */
    if (n > 0) {
        for (int i = 0; i < n; i++) {
            const PartitionChangeRecord *r = recs[i].data;
            const mtopic *t = mimage_topic_by_id(s->b->image, &r->topic_id);
            log_info(CTL_COMPONENT, "[QuorumController id=%d] Partition %s-%d: leader %d", s->b->cfg.node_id,
                     t ? t->name : "?", r->partition_id, r->leader);
        }
        s->ctl_inflight = true;
        etcd_commit(&s->base, recs, n, MSTORE_AS_CONTROLLER, controller_committed, s);
    }
    karena_free(&a);
}

/* auto.leader.rebalance.enable, as KRaft's QuorumController schedules
 * maybeBalancePartitionLeaders: once a partition is led by another replica
 * than its preferred one, a preferred election for every such partition
 * leader.imbalance.check.interval.seconds later (at once again when a pass
 * was cut short). KRaft does not use leader.imbalance.per.broker.percentage.
 * Run from the tick, after the liveness decisions have settled. */
static void maybe_balance(etcd_store *s, int64_t now) {
    if (!s->auto_rebalance || s->controller_id != s->b->cfg.node_id || s->b->fenced || s->left) {
        s->balance_scheduled = false;
        return;
    }
    if (!s->balance_scheduled) {
        if (!ctl_leaders_imbalanced(s->b->image)) return;
        s->balance_at_ms = now + (s->balance_soon ? BALANCE_SOON_MS : s->imbalance_check_ms);
        s->balance_scheduled = true;
        return;
    }
    if (now < s->balance_at_ms || s->ctl_inflight) return;
    s->balance_scheduled = false;
    karena a;
    karena_init(&a, 0);
    mrecord recs[CTL_MAX_CHANGES];
    bool more = false;
    int n = ctl_balance_leaders(s->b->image, recs, CTL_MAX_CHANGES, &more, &a);
    int fit = fit_txn(recs, n);
    s->balance_soon = more || fit < n;
    if (fit > 0) {
        for (int i = 0; i < fit; i++) {
            const PartitionChangeRecord *r = recs[i].data;
            const mtopic *t = mimage_topic_by_id(s->b->image, &r->topic_id);
            log_info(CTL_COMPONENT, "[QuorumController id=%d] Partition %s-%d: leader %d (preferred replica)",
                     s->b->cfg.node_id, t ? t->name : "?", r->partition_id, r->leader);
        }
        s->ctl_inflight = true;
        etcd_commit(&s->base, recs, fit, MSTORE_AS_CONTROLLER, controller_committed, s);
    }
    karena_free(&a);
}

static void campaign_answered(void *arg, const etcd_result *r) {
    etcd_store *s = arg;
    s->campaigning = false;
    if (r->status != ETCD_OK) return; /* the tick tries again */
    (void)r->succeeded;               /* the watch says who won */
}

/* etcd's election: create the controller key under our lease if absent. */
static void campaign(etcd_store *s) {
    if (s->campaigning || s->controller_id >= 0 || s->b->fenced || !s->lease_id || s->left) return;
    char k[600];
    size_t kl = key_of(s, k, sizeof k, "controller");
    char v[16];
    int vl = snprintf(v, sizeof v, "%d", s->b->cfg.node_id);
    etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, 0, NULL, 0};
    etcd_op o = {ETCD_OP_PUT, k, kl, v, (size_t)vl, s->lease_id, NULL, 0};
    s->campaigning = true;
    if (etcd_txn(s->etcd, &c, 1, &o, 1, NULL, 0, campaign_answered, s) != 0) s->campaigning = false;
}

/* ---- liveness ---- */

static int encode_registration(etcd_store *s, kwriter *w) {
    karena a;
    karena_init(&a, 0);
    RegisterBrokerRecord r;
    broker_registration(s->b, s->incarnation, &r, &a);
    /* KRaft's BrokerRegistrationChangeRecord(InControlledShutdown): here the
     * registration itself says so (the field is in version 1) */
    r.in_controlled_shutdown = s->in_controlled_shutdown;
    mrecord rec = {KMETA_REGISTER_BROKER_RECORD, s->in_controlled_shutdown ? 1 : 0, &r};
    int rc = put_frame(w, &rec);
    karena_free(&a);
    return rc;
}

/* Registered under a fresh lease: lead again what the image gives us, but
 * only once the image holds everything up to the registration (KRaft keeps
 * a broker fenced until its metadata caught up). Earlier, a node that had
 * been paused past its session would lead from its old image: a partition
 * whose ISR it still believed to be itself alone would acknowledge acks=all
 * records the new leader never gets. */
static void maybe_unfence(etcd_store *s) {
    if (!s->b->fenced || s->registering || !s->broker_epoch || s->reg_lease_id != s->lease_id ||
        s->applied_rev < s->broker_epoch)
        return;
    s->b->fenced = false;
    log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Registered again with broker epoch %lld",
             s->b->cfg.node_id, (long long)s->broker_epoch);
}

static void register_answered(void *arg, const etcd_result *r) {
    etcd_store *s = arg;
    s->registering = false;
    if (r->status != ETCD_OK || !r->succeeded) {
        /* not yet: the old registration has not expired, or etcd is away */
        return;
    }
    s->broker_epoch = r->revision;
    s->reg_lease_id = s->lease_id;
    s->last_renewed_ms = monotonic_ms();
    maybe_unfence(s);
}

static void lease_granted(void *arg, const etcd_result *r) {
    etcd_store *s = arg;
    if (r->status != ETCD_OK || r->lease_id == 0) {
        s->registering = false;
        return;
    }
    s->lease_id = r->lease_id;
    s->last_renewed_ms = monotonic_ms();
    char k[600];
    size_t kl = key_of(s, k, sizeof k, "brokers/%d", s->b->cfg.node_id);
    kwriter w;
    kw_init(&w);
    if (encode_registration(s, &w) < 0) {
        kw_free(&w);
        s->registering = false;
        return;
    }
    etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, 0, NULL, 0};
    etcd_op o = {ETCD_OP_PUT, k, kl, w.buf, w.len, s->lease_id, NULL, 0};
    if (etcd_txn(s->etcd, &c, 1, &o, 1, NULL, 0, register_answered, s) != 0) s->registering = false;
    kw_free(&w);
}

/* A fenced node registers again: a new lease, a new broker epoch. */
static void reregister(etcd_store *s) {
    if (s->registering || s->left) return;
    s->registering = true;
    s->lease_id = 0;
    int64_t ttl = (s->session_ms + 999) / 1000;
    if (etcd_lease_grant(s->etcd, ttl < 2 ? 2 : ttl, lease_granted, s) != 0) s->registering = false;
}

static void keepalive_answered(void *arg, const etcd_result *r) {
    etcd_store *s = arg;
    s->keepalive_inflight = false;
    if (r->status != ETCD_OK) return; /* the tick fences us if this lasts */
    if (r->ttl <= 0) {
        self_fence(s, "its etcd lease expired");
        reregister(s);
        return;
    }
    s->last_renewed_ms = monotonic_ms();
    /* Fenced by the tick (no answer in time) but the lease outlived the
     * silence: our registration and broker epoch never lapsed, so nobody
     * took over; lead again. Without this the node stayed fenced for good
     * while the cluster still named it leader (a re-registration only starts
     * when keep-alives stop, and they had resumed). */
    if (s->b->fenced && !s->registering && s->lease_id && s->lease_id == s->reg_lease_id &&
        s->applied_rev >= s->broker_epoch) {
        s->b->fenced = false;
        log_info(COMPONENT, "[BrokerLifecycleManager id=%d] etcd answers keep-alives again; registration with "
                            "broker epoch %lld never lapsed, leading again",
                 s->b->cfg.node_id, (long long)s->broker_epoch);
    }
}

static void keepalive_tick(kloop *l, void *arg) {
    etcd_store *s = arg;
    if (s->lease_id && !s->keepalive_inflight && !s->registering) {
        s->keepalive_inflight = true;
        if (etcd_lease_keepalive(s->etcd, s->lease_id, keepalive_answered, s) != 0) s->keepalive_inflight = false;
    }
    s->keepalive_timer = loop_timer_add(l, s->heartbeat_ms, keepalive_tick, s);
}

static void compacted(void *arg, const etcd_result *r) {
    (void)arg;
    /* "required revision has been compacted" when another node did it first: fine */
    if (r->status != ETCD_OK && r->error && !strstr(r->error, "compacted"))
        log_warn(CTL_COMPONENT, "Could not compact etcd's history: %s", r->error);
}

static void store_tick(kloop *l, void *arg) {
    etcd_store *s = arg;
    int64_t now = monotonic_ms();
    /* Stop leading before etcd can let the lease go and others take over:
     * a heartbeat interval of margin. */
    if (!s->b->fenced && s->last_renewed_ms && now - s->last_renewed_ms > s->session_ms - s->heartbeat_ms)
        self_fence(s, "no etcd keep-alive within broker.session.timeout.ms");
    if (s->b->fenced && !s->registering && (!s->lease_id || now - s->last_renewed_ms > s->session_ms))
        reregister(s);
    if (s->needs_snapshot) reload_snapshot(s);
    else if (!s->watch) {
        uint8_t end[600];
        size_t el = etcd_prefix_end(s->prefix, s->prefix_len, end);
        s->watch = etcd_watch_start(s->etcd, s->prefix, s->prefix_len, end, el, s->applied_rev + 1, watch_events, s);
    }
    campaign(s);
    complete_ready(s);
    maybe_balance(s, now);
    /* Like Kafka's metadata snapshots, bounded history: the controller
     * compacts etcd, keeping the last COMPACT_KEEP revisions. */
    if (s->controller_id == s->b->cfg.node_id && now - s->last_compact_ms >= COMPACT_EVERY_MS) {
        s->last_compact_ms = now;
        if (s->applied_rev > COMPACT_KEEP) etcd_compact(s->etcd, s->applied_rev - COMPACT_KEEP, compacted, s);
    }
    s->tick_timer = loop_timer_add(l, TICK_MS, store_tick, s);
}

/* ---- the mstore interface ---- */

static int32_t etcd_controller_id(const mstore *base) { return ((const etcd_store *)base)->controller_id; }
static int64_t etcd_end_offset(const mstore *base) { return ((const etcd_store *)base)->applied_rev; }
static int32_t etcd_epoch(const mstore *base) { return (int32_t)((const etcd_store *)base)->controller_epoch; }

/* Leave at once rather than after the session timeout: drop our keys
 * (the registration, and the controller key if we hold it). Once. */
static void leave(etcd_store *s) {
    if (s->left) return;
    s->left = true;
    if (s->lease_id && s->broker_epoch && !s->b->fenced) {
        char k[600];
        size_t kl = key_of(s, k, sizeof k, "brokers/%d", s->b->cfg.node_id);
        char ck[600];
        size_t ckl = key_of(s, ck, sizeof ck, "controller");
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", s->b->cfg.node_id);
        etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, s->broker_epoch, NULL, 0};
        etcd_op ops[1] = {{ETCD_OP_DELETE, k, kl, NULL, 0, 0, NULL, 0}};
        etcd_sync_result r;
        etcd_txn_sync(s->etcd, &c, 1, ops, 1, NULL, 0, &r);
        etcd_sync_result_free(&r);
        etcd_cmp cc = {ETCD_CMP_VALUE, ETCD_EQUAL, ck, ckl, 0, v, (size_t)vl};
        etcd_op cop = {ETCD_OP_DELETE, ck, ckl, NULL, 0, 0, NULL, 0};
        etcd_txn_sync(s->etcd, &cc, 1, &cop, 1, NULL, 0, &r);
        etcd_sync_result_free(&r);
        log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Deregistered from the cluster", s->b->cfg.node_id);
    }
}

static void etcd_close(mstore *base) {
    etcd_store *s = (etcd_store *)base;
    leave(s);
    if (s->keepalive_timer) loop_timer_cancel(s->b->loop, s->keepalive_timer);
    if (s->tick_timer) loop_timer_cancel(s->b->loop, s->tick_timer);
    if (s->watch) etcd_watch_cancel(s->watch);
    etcd_free(s->etcd);
    while (s->pending) {
        pending *p = s->pending;
        s->pending = p->next;
        free(p);
    }
    free(s);
}

static int etcd_start(mstore *base, char *err, size_t errlen);
static const mstore_ops etcd_ops = {"etcd",     etcd_commit, etcd_controller_id, etcd_end_offset,
                                    etcd_epoch, etcd_start,  etcd_close,         NULL};

void mstore_etcd_enter_controlled_shutdown(mstore *base) {
    if (!base || base->ops != &etcd_ops) return;
    etcd_store *s = (etcd_store *)base;
    if (s->in_controlled_shutdown || s->left || s->b->fenced || !s->broker_epoch || s->lease_id != s->reg_lease_id)
        return;
    s->in_controlled_shutdown = true;
    char k[600];
    size_t kl = key_of(s, k, sizeof k, "brokers/%d", s->b->cfg.node_id);
    kwriter w;
    kw_init(&w);
    if (encode_registration(s, &w) == 0) {
        /* only our own registration: same key, same broker epoch, same lease */
        etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, s->broker_epoch, NULL, 0};
        etcd_op o = {ETCD_OP_PUT, k, kl, w.buf, w.len, s->lease_id, NULL, 0};
        etcd_sync_result r;
        if (etcd_txn_sync(s->etcd, &c, 1, &o, 1, NULL, 0, &r) != ETCD_OK || !r.r.succeeded)
            log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] Could not mark the registration as in controlled "
                                "shutdown: %s", s->b->cfg.node_id, r.r.error ? r.r.error : "it changed");
        etcd_sync_result_free(&r);
    }
    kw_free(&w);
}

void mstore_etcd_leave(mstore *base) {
    if (base && base->ops == &etcd_ops) leave((etcd_store *)base);
}

/* ---- start-up ---- */

static int boot_apply(void *ctx, const mrecord *r) {
    if (mimage_apply(ctx, r) < 0) log_warn(COMPONENT, "Metadata record (type %d) from etcd does not apply", r->type);
    return 0;
}

/* Build img from a range read of all of P at one revision: a snapshot.
 * Topics and features first, then configs (they name topics), then
 * brokers and the controller. */
static void image_from_snapshot(etcd_store *s, mimage *img, const etcd_result *r) {
    karena a;
    karena_init(&a, 0);
    s->producer_ids_rev = 0;
    s->controller_id = -1;
    s->controller_epoch = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < r->nkvs; i++) {
            const etcd_kv *kv = &r->kvs[i];
            size_t n;
            const char *rest = key_rest(s, kv->key, kv->key_len, &n);
            if (!rest) continue;
            if (pass == 0 && (rest_starts(rest, n, "topics/") || rest_starts(rest, n, "features/") ||
                              rest_starts(rest, n, "scram/") || rest_starts(rest, n, "acls/") ||
                              rest_starts(rest, n, "quotas/") || rest_is(rest, n, "producer-ids"))) {
                if (each_frame(kv->value, kv->value_len, &a, boot_apply, img) < 0) {
                    log_error(COMPONENT, "Refusing a corrupt value under %.*s", (int)kv->key_len, (const char *)kv->key);
                    continue;
                }
                if (rest_starts(rest, n, "topics/")) {
                    mtopic *t = mimage_topic(img, (kstr){rest + 7, (int32_t)(n - 7)});
                    if (t) stamp_topic(t, kv->mod_revision);
                }
                if (rest_is(rest, n, "producer-ids")) s->producer_ids_rev = kv->mod_revision;
            } else if (pass == 1 && rest_starts(rest, n, "configs/")) {
                if (each_frame(kv->value, kv->value_len, &a, boot_apply, img) < 0)
                    log_error(COMPONENT, "Refusing a corrupt value under %.*s", (int)kv->key_len, (const char *)kv->key);
            } else if (pass == 2 && rest_starts(rest, n, "brokers/")) {
                apply_registration(s, img, kv);
            } else if (pass == 2 && rest_is(rest, n, "controller")) {
                s->controller_id = parse_id((const char *)kv->value, kv->value_len);
                s->controller_epoch = kv->create_revision;
            }
        }
    }
    karena_free(&a);
    s->applied_rev = r->revision;
}

static int load_snapshot(etcd_store *s, char *err, size_t errlen) {
    uint8_t end[600];
    size_t el = etcd_prefix_end(s->prefix, s->prefix_len, end);
    etcd_sync_result r;
    int st = etcd_range_sync(s->etcd, s->prefix, s->prefix_len, end, el, 0, 0, &r);
    if (st != ETCD_OK) {
        snprintf(err, errlen, "cannot read the cluster metadata from etcd at %s: %s", s->endpoints,
                 r.r.error ? r.r.error : "unreachable");
        etcd_sync_result_free(&r);
        return -1;
    }
    image_from_snapshot(s, s->b->image, &r.r);
    etcd_sync_result_free(&r);
    return 0;
}

/* The history this node needed was compacted away: a fresh snapshot
 * replaces the image, then the watch goes on from its revision. */
static void snapshot_read(void *arg, const etcd_result *r) {
    etcd_store *s = arg;
    s->reloading = false;
    if (r->status != ETCD_OK) return; /* the tick asks again */
    mimage *img = mimage_new(s->b->cfg.node_id);
    if (!img) return;
    image_from_snapshot(s, img, r);
    mimage *old = s->b->image;
    s->b->image = img;
    mimage_free(old);
    s->needs_snapshot = false;
    log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Reloaded the metadata from etcd at revision %lld (%d topics)",
             s->b->cfg.node_id, (long long)s->applied_rev, img->ntopics);
    broker_metadata_applied(s->b);
    maybe_unfence(s);
    complete_ready(s);
    run_controller(s);
}

static void reload_snapshot(etcd_store *s) {
    if (s->reloading) return;
    uint8_t end[600];
    size_t el = etcd_prefix_end(s->prefix, s->prefix_len, end);
    s->reloading = true;
    if (etcd_range(s->etcd, s->prefix, s->prefix_len, end, el, 0, 0, snapshot_read, s) != 0) s->reloading = false;
}

/* Bind <etcd.prefix> to this cluster id, or refuse a node of another one. */
static int check_cluster_id(etcd_store *s, char *err, size_t errlen) {
    char k[300];
    size_t kl = (size_t)snprintf(k, sizeof k, "%s/cluster.id", s->root);
    const char *cid = s->b->cluster_id;
    etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, 0, NULL, 0};
    etcd_op put = {ETCD_OP_PUT, k, kl, cid, strlen(cid), 0, NULL, 0};
    etcd_op get = {ETCD_OP_RANGE, k, kl, NULL, 0, 0, NULL, 0};
    etcd_sync_result r;
    int st = etcd_txn_sync(s->etcd, &c, 1, &put, 1, &get, 1, &r);
    if (st != ETCD_OK) {
        snprintf(err, errlen, "cannot reach etcd at %s: %s", s->endpoints, r.r.error ? r.r.error : "no answer");
        etcd_sync_result_free(&r);
        return -1;
    }
    int rc = 0;
    if (!r.r.succeeded && r.r.nkvs > 0) {
        const etcd_kv *kv = &r.r.kvs[0];
        if (kv->value_len != strlen(cid) || memcmp(kv->value, cid, kv->value_len) != 0) {
            snprintf(err, errlen, "Invalid cluster.id in: %s/meta.properties. Expected %.*s, but read %s (etcd %s)",
                     s->b->cfg.log_dirs[0], (int)kv->value_len, (const char *)kv->value, cid, k);
            rc = -1;
        }
    }
    etcd_sync_result_free(&r);
    return rc;
}

static int grant_start_lease(etcd_store *s, int64_t ttl, char *err, size_t errlen) {
    etcd_sync_result r;
    if (etcd_lease_grant_sync(s->etcd, ttl, &r) != ETCD_OK || r.r.lease_id == 0) {
        snprintf(err, errlen, "cannot get a lease from etcd at %s: %s", s->endpoints, r.r.error ? r.r.error : "no answer");
        etcd_sync_result_free(&r);
        return -1;
    }
    s->lease_id = r.r.lease_id;
    etcd_sync_result_free(&r);
    return 0;
}

/* Register under a new lease; an earlier registration of this id must
 * expire first (a restarted node waits up to the session timeout; a live
 * duplicate never expires and the node gives up). Nothing keeps the new
 * lease alive while waiting, and the wait (session + 1 s) outlasts its TTL:
 * a lease half its TTL old is replaced by a fresh one before the next try
 * (the unused one expires with no key on it). Without this a node restarted
 * at once after a kill -9 found its own lease gone ("requested lease not
 * found") just as its old registration expired, and exited. */
static int register_at_start(etcd_store *s, char *err, size_t errlen) {
    int64_t ttl = (s->session_ms + 999) / 1000;
    if (ttl < 2) ttl = 2;
    etcd_sync_result r;
    if (grant_start_lease(s, ttl, err, errlen) != 0) return -1;
    int64_t granted_ms = monotonic_ms();
    char k[600];
    size_t kl = key_of(s, k, sizeof k, "brokers/%d", s->b->cfg.node_id);
    kwriter w;
    kw_init(&w);
    if (encode_registration(s, &w) < 0) {
        kw_free(&w);
        snprintf(err, errlen, "cannot encode the broker registration");
        return -1;
    }
    int64_t deadline = monotonic_ms() + s->session_ms + 1000;
    bool waited = false;
    for (;;) {
        if (monotonic_ms() - granted_ms >= ttl * 1000 / 2) {
            if (grant_start_lease(s, ttl, err, errlen) != 0) {
                kw_free(&w);
                return -1;
            }
            granted_ms = monotonic_ms();
        }
        etcd_cmp c = {ETCD_CMP_CREATE, ETCD_EQUAL, k, kl, 0, NULL, 0};
        etcd_op o = {ETCD_OP_PUT, k, kl, w.buf, w.len, s->lease_id, NULL, 0};
        int st = etcd_txn_sync(s->etcd, &c, 1, &o, 1, NULL, 0, &r);
        if (st == ETCD_OK && r.r.succeeded) {
            s->broker_epoch = r.r.revision;
            s->reg_lease_id = s->lease_id;
            etcd_sync_result_free(&r);
            break;
        }
        if (st != ETCD_OK) {
            snprintf(err, errlen, "cannot register with etcd at %s: %s", s->endpoints,
                     r.r.error ? r.r.error : "no answer");
            etcd_sync_result_free(&r);
            kw_free(&w);
            return -1;
        }
        etcd_sync_result_free(&r);
        if (monotonic_ms() >= deadline) {
            /* Kafka's DuplicateBrokerRegistrationException */
            snprintf(err, errlen, "Another broker is registered with that broker id (node.id=%d).", s->b->cfg.node_id);
            kw_free(&w);
            return -1;
        }
        if (!waited) {
            log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Node %d is still registered; waiting up to %lld ms for "
                                "its session to expire", s->b->cfg.node_id, s->b->cfg.node_id,
                     (long long)(s->session_ms + 1000));
            waited = true;
        }
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kw_free(&w);
    s->last_renewed_ms = monotonic_ms();
    return 0;
}

/* A new cluster starts at metadata.version 3.6-IV2, as Kafka's bootstrap. */
/* With the SCRAM credentials of this node's bootstrap.checkpoint
 * (kafka-storage format --add-scram), in the same change: the first node
 * to start brings them, the others' attempts conflict on the feature key. */
static void bootstrap_features(etcd_store *s) {
    if (s->b->image->metadata_version > 0) return;
    const broker_config *cfg = &s->b->cfg;
    const char *dir = cfg->metadata_log_dir[0] ? cfg->metadata_log_dir : cfg->log_dirs[0];
    mimage *boot = NULL;
    char err[256];
    if (bootstrap_load(dir, &boot, err, sizeof err) != 0)
        log_warn(COMPONENT, "[BrokerLifecycleManager id=%d] Ignoring %s/bootstrap.checkpoint: %s", cfg->node_id, dir,
                 err);
    int n = 1 + (boot ? boot->nscram : 0);
    mrecord *recs = calloc((size_t)n, sizeof *recs);
    UserScramCredentialRecord *u = calloc((size_t)n, sizeof *u);
    FeatureLevelRecord r;
    FeatureLevelRecord_init(&r);
    r.name = KSTR_LIT("metadata.version");
    r.feature_level = METADATA_VERSION_LEVEL;
    if (!recs || !u) n = 1;
    mrecord one = {KMETA_FEATURE_LEVEL_RECORD, 0, &r};
    if (recs) recs[0] = one;
    for (int i = 1; i < n; i++) {
        const mscram *c = &boot->scram[i - 1];
        UserScramCredentialRecord_init(&u[i]);
        u[i].name = kstr_from(c->name);
        u[i].mechanism = c->mechanism;
        u[i].salt = (kbytes){c->salt, c->salt_len};
        u[i].stored_key = (kbytes){c->stored_key, c->key_len};
        u[i].server_key = (kbytes){c->server_key, c->key_len};
        u[i].iterations = c->iterations;
        recs[i] = (mrecord){KMETA_USER_SCRAM_CREDENTIAL_RECORD, 0, &u[i]};
    }
    /* a conflict means another node did it */
    etcd_commit(&s->base, recs ? recs : &one, recs ? n : 1, 0, NULL, NULL);
    free(recs);
    free(u);
    mimage_free(boot);
}

static int64_t prop_i64(const broker *b, const char *key, int64_t dflt) {
    const char *v = props_get(&b->cfg.raw, key);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return errno || *end || x <= 0 ? dflt : x;
}

mstore *mstore_etcd_open(broker *b, char *err, size_t errlen) {
    const char *eps = props_get(&b->cfg.raw, "etcd.endpoints");
    if (!eps || !*eps) {
        snprintf(err, errlen, "metadata.store=etcd needs etcd.endpoints (e.g. http://127.0.0.1:2379)");
        return NULL;
    }
    etcd_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base.ops = &etcd_ops;
    s->base.b = b;
    s->base.cluster = true;
    s->b = b;
    s->controller_id = -1;
    snprintf(s->endpoints, sizeof s->endpoints, "%s", eps);
    const char *root = props_get(&b->cfg.raw, "etcd.prefix");
    snprintf(s->root, sizeof s->root, "%s", root && *root ? root : "/samsa");
    size_t rl = strlen(s->root);
    while (rl > 1 && s->root[rl - 1] == '/') s->root[--rl] = 0;
    s->prefix_len = (size_t)snprintf(s->prefix, sizeof s->prefix, "%s/%s/", s->root, b->cluster_id);
    s->session_ms = prop_i64(b, "broker.session.timeout.ms", 9000);
    s->heartbeat_ms = prop_i64(b, "broker.heartbeat.interval.ms", 2000);
    if (s->heartbeat_ms * 2 > s->session_ms) s->heartbeat_ms = s->session_ms / 3 > 0 ? s->session_ms / 3 : 1;
    const char *unclean = props_get(&b->cfg.raw, "unclean.leader.election.enable");
    s->unclean_election = unclean && strcmp(unclean, "true") == 0;
    const char *rebalance = props_get(&b->cfg.raw, "auto.leader.rebalance.enable");
    s->auto_rebalance = !rebalance || strcmp(rebalance, "false") != 0;
    s->imbalance_check_ms = prop_i64(b, "leader.imbalance.check.interval.seconds", 300) * 1000;
    if (getrandom(s->incarnation.b, 16, 0) != 16) memset(s->incarnation.b, 7, 16);
    s->etcd = etcd_new(b->loop, eps, REQUEST_TIMEOUT_MS, err, errlen);
    if (!s->etcd) {
        free(s);
        return NULL;
    }
    log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Joining cluster %s through etcd at %s", b->cfg.node_id,
             b->cluster_id, eps);
    /* The lab's combined-mode settings are accepted; etcd does their job. */
    static const char *const unused[] = {"controller.quorum.voters", "controller.listener.names", "process.roles"};
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++)
        if (props_get(&b->cfg.raw, unused[i]))
            log_info(COMPONENT, "[BrokerLifecycleManager id=%d] %s is not used with metadata.store=etcd: etcd "
                                "elects the controller and orders the metadata", b->cfg.node_id, unused[i]);
    /* Until this incarnation is registered, the image's leaderships may be
     * the previous one's (kill -9 and restart within the session): lead
     * nothing, as KRaft fences an old incarnation when a new one registers.
     * A restarted node used to lead its old partitions with a stale HW, and
     * coordinate their groups and transactions, until its old lease expired. */
    b->fenced = true;
    if (check_cluster_id(s, err, errlen) != 0 || load_snapshot(s, err, errlen) != 0) {
        etcd_free(s->etcd);
        free(s);
        return NULL;
    }
    log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Loaded the metadata at etcd revision %lld (%d topics, %d "
                        "brokers, controller %d)",
             b->cfg.node_id, (long long)s->applied_rev, b->image->ntopics, b->image->nbrokers, s->controller_id);
    return &s->base;
}

/* Register only now that the logs are open: a lease must not run out while
 * thousands of partitions are recovered. Changes since the snapshot,
 * this registration among them, arrive through the watch. */
static int etcd_start(mstore *base, char *err, size_t errlen) {
    etcd_store *s = (etcd_store *)base;
    broker *b = s->b;
    if (register_at_start(s, err, errlen) != 0) return -1;
    log_info(COMPONENT, "[BrokerLifecycleManager id=%d] Registered with broker epoch %lld", b->cfg.node_id,
             (long long)s->broker_epoch);
    /* Serve with an image that has this registration and everything since
     * the first snapshot (other nodes, topics): a second snapshot, then the
     * runtime follows it. Without it a node could answer "All brokers are
     * currently fenced" until its watch caught up. */
    mimage *img = mimage_new(b->cfg.node_id);
    uint8_t send[600];
    size_t sel = etcd_prefix_end(s->prefix, s->prefix_len, send);
    etcd_sync_result r;
    if (!img || etcd_range_sync(s->etcd, s->prefix, s->prefix_len, send, sel, 0, 0, &r) != ETCD_OK) {
        snprintf(err, errlen, "cannot read the cluster metadata from etcd at %s: %s", s->endpoints,
                 img && r.r.error ? r.r.error : "unreachable");
        if (img) etcd_sync_result_free(&r);
        mimage_free(img);
        return -1;
    }
    image_from_snapshot(s, img, &r.r);
    etcd_sync_result_free(&r);
    mimage *old = b->image;
    b->image = img;
    mimage_free(old);
    b->fenced = false; /* the image holds this registration (read after it) */
    broker_metadata_applied(b);
    uint8_t end[600];
    size_t el = etcd_prefix_end(s->prefix, s->prefix_len, end);
    s->watch = etcd_watch_start(s->etcd, s->prefix, s->prefix_len, end, el, s->applied_rev + 1, watch_events, s);
    s->keepalive_timer = loop_timer_add(b->loop, s->heartbeat_ms, keepalive_tick, s);
    s->tick_timer = loop_timer_add(b->loop, TICK_MS, store_tick, s);
    bootstrap_features(s);
    campaign(s);
    return 0;
}
