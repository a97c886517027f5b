/* test_replication_sim.c - a seeded, deterministic simulation of a whole
 * replicated cluster: the real controller (controller/controller.c over
 * metadata/image.c), the leader's ISR/HW logic (replica/partition_repl.c)
 * and the follower's truncation (replica/truncation.c), with Kafka's
 * invariants checked after every step.
 *
 * Model (no I/O; one simulated clock in ms):
 *  - 3-5 brokers, 1-3 partitions of one topic, RF 3, min.insync.replicas 2,
 *    unclean election off.
 *  - The store (etcd's stand-in): one ordered log of metadata records and
 *    the image it makes. Registrations (broker epoch = a new number each
 *    time), FenceBrokerRecords when a session lapses (no heartbeat for
 *    SESSION_MS), and after every change the controller's
 *    ctl_leadership_changes() until it has nothing left to change.
 *    AlterPartition is validated against the store as Kafka's
 *    ReplicationControlManager does (broker epoch of the sender, leader
 *    epoch, leader, partition epoch = the compare-and-set, KIP-903 broker
 *    epochs of the new ISR); sometimes OPERATION_NOT_ATTEMPTED (the CAS lost
 *    to an unrelated write), sometimes the answer is lost.
 *  - Each broker applies the store's log at its own pace (its own position
 *    and image), calling pr_make_leader/pr_make_follower for every partition
 *    whose epochs changed, as KRaft brokers apply metadata deltas.
 *  - Heartbeats travel with delays and losses. A broker whose heartbeat
 *    answer says "fenced" (or that sees its own FenceBrokerRecord) registers
 *    again with a new broker epoch and rebuilds its partition state from its
 *    (possibly stale) image. With self-fencing on (per seed), a broker that
 *    has had no heartbeat answer for SESSION_MS - HB_MS stops leading until
 *    one comes; it checks that timer once a step, so a broker resumed from a
 *    pause serves its backlog first (a zombie leader). Without it, zombies
 *    last until the broker hears it was fenced.
 *  - Each replica: a log of (leader epoch, value) with a flushed prefix, an
 *    epoch cache, and a HW checkpoint. A crash loses the in-memory state;
 *    the broker may restart once the store has fenced it, with the unflushed
 *    suffix lost (a power loss) or its whole disk lost, re-registering with
 *    a new broker epoch and a fresh image.
 *  - Followers fetch from the leader they believe in (Fetch v12+: leader
 *    epoch, lastFetchedEpoch; DivergingEpoch via tr_leader_check_fetch,
 *    tr_offset_to_truncate and tr_apply_truncation), with delays, losses
 *    and reordering. Producers append unique values with acks=all to the
 *    leader the store names or, sometimes, to any replica (stale clients,
 *    zombies); a value is acknowledged when pr_check_enough_replicas says
 *    done without error.
 *  - Faults: crash, restart (keeping the disk, losing the unflushed tail,
 *    losing the whole disk), pause/resume, message loss.
 *
 * Invariants after every step:
 *   I1 at most one broker ever leads a partition at a given leader epoch;
 *   I2 leader and partition epochs never go down (in the store, and in each
 *      broker incarnation's partition state);
 *   I3 HW <= LEO on every replica; a leader's HW never goes down while it
 *      leads the same epoch in the same incarnation;
 *   I4 a leader's HW <= the LEO of every member of its maximal ISR (members
 *      whose broker epoch is the one their fetches carried), and the store's
 *      leader's HW <= the LEO of every member of the store's ISR;
 *   I5 the committed log (the union of every leader's [0, HW) at any time)
 *      is never rewritten: every leader's and every replica's [0, HW) is a
 *      prefix of it, and a follower never truncates below its own HW;
 *   I6 every member of the store's ISR holds the whole committed log (so an
 *      election can never lose a committed record); every acknowledged value
 *      is committed at the offset it was appended at, and acks of one
 *      leader epoch come in offset order;
 *   I7 (end of seed) after healing every fault and running until quiet:
 *      each partition has a leader and a full ISR, all replicas are
 *      identical, the committed log is their prefix, every acknowledged
 *      value is there exactly once at its offset.
 *
 * Excluded (properties of Kafka 3.6.1's design, not bugs here):
 *   - KIP-966: a broker that is a member of a partition's ISR in the store
 *     when it restarts comes back with that partition's data whole, even if
 *     its crash was a power loss or a lost disk. Kafka 3.6.1 keeps the last
 *     ISR member in the ISR when it dies and elects it when it returns, so
 *     if it lost acknowledged records (unflushed tail, empty disk), they are
 *     gone (Eligible Leader Replicas, KIP-966, fix that in 3.7+). Counted as
 *     "KIP-966 kept" in the summary.
 *   - Unclean election (it may lose acknowledged records by definition).
 *
 * Rules the broker and the store must keep, found by this simulation (the
 * three modules needed no change; SIM_MUTANT 6 and 7 bring the losses back):
 *   - A broker that registers again after losing its lease must rebuild its
 *     partitions from metadata that has caught up with its new registration
 *     (KRaft keeps a broker fenced until then), not from the image it had:
 *     that image may be older than the partition epoch its in-memory state
 *     had reached through AlterPartition answers, and a zombie rebuilt from
 *     an older, smaller ISR advanced its HW over its own zombie appends.
 *   - A compare-and-set that fails on an unrelated write (etcd compares the
 *     topic's key) must be re-validated and retried by the writer, never
 *     answered OPERATION_NOT_ATTEMPTED: the leader then reverts its maximal
 *     ISR while an earlier copy of the same proposal (sent before a timeout,
 *     delayed, or an etcd txn whose answer was lost) can still commit, and
 *     the ISR gains a member the HW no longer waited for.
 *
 * Run: make BUILD=build build/tests/test_replication_sim && build/tests/test_replication_sim
 *      SIM_SEEDS=n SIM_STEPS=n   how many seeds (default 20000, 3000 under ASan) and fault steps (300)
 *      SIM_MUTANT=n              switch one safety mechanism off (see `mutant`): seeds must fail
 *      build/tests/test_replication_sim <seed>   replays one seed, tracing every event
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/controller.h"
#include "metadata/image.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "replica/partition_repl.h"
#include "replica/truncation.h"
#include "util/arena.h"

#include "unit_check.h"

#define MAXB 5
#define MAXP 3
#define RF 3
#define MIN_ISR 2
#define MAXLOG 1024
#define MAXEC 256
#define MAXMSG 1024
#define MAXPROD 256
#define MAXSREC 4096
#define MAXEPOCH 2048
#define MAXACK 1024
#define MAXVAL 8192
#define FETCH_MAX 8

#define SESSION_MS 500
#define HB_MS 100
#define SELF_FENCE_MS (SESSION_MS - HB_MS)
#define LAG_MS 300
#define PRODUCE_TIMEOUT_MS 1000
#define FETCH_TIMEOUT_MS 300
#define ALTER_TIMEOUT_MS 300
#define HEAL_STEPS 4000

/* ---------------- randomness, trace ---------------- */

static uint64_t rng;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

#define TRACE_RING 64
typedef struct tline {
    int64_t t;
    int step;
    const char *fmt;
    long long a[6];
} tline;
static tline ring[TRACE_RING];
static unsigned ring_n;
static int verbose;
static int64_t now;
static int cur_step;

/* Trace lines are kept unformatted in a ring (formatting every event would
 * cost more than the simulation) and printed when a seed fails. */
static void tr6(const char *fmt, long long a, long long b, long long c, long long d, long long e, long long f, ...) {
    tline *l = &ring[ring_n++ % TRACE_RING];
    l->t = now;
    l->step = cur_step;
    l->fmt = fmt;
    l->a[0] = a, l->a[1] = b, l->a[2] = c, l->a[3] = d, l->a[4] = e, l->a[5] = f;
    if (verbose) {
        fprintf(stderr, "  [%d t=%lld] ", l->step, (long long)l->t);
        fprintf(stderr, fmt, a, b, c, d, e, f);
        fputc('\n', stderr);
    }
}
#define TR(...) tr6(__VA_ARGS__, 0LL, 0LL, 0LL, 0LL, 0LL, 0LL)

static void print_trace(void) {
    unsigned from = ring_n > TRACE_RING ? ring_n - TRACE_RING : 0;
    fprintf(stderr, "  last %u events:\n", ring_n - from);
    for (unsigned i = from; i < ring_n; i++) {
        const tline *l = &ring[i % TRACE_RING];
        fprintf(stderr, "  [%d t=%lld] ", l->step, (long long)l->t);
        fprintf(stderr, l->fmt, l->a[0], l->a[1], l->a[2], l->a[3], l->a[4], l->a[5]);
        fputc('\n', stderr);
    }
}

static uint64_t cur_seed;
static int seed_failed;
static const char *prog = "test_replication_sim";

/* SIM_MUTANT=n switches one safety mechanism off, to show the invariants
 * catch its absence (each must make some seeds fail):
 *  1 no KIP-966 exclusion: the last ISR member may come back without data
 *  2 the controller skips the KIP-903 broker epoch check of a new ISR
 *  3 the controller skips the partition epoch compare-and-set
 *  4 unclean election
 *  5 followers truncate to their HW on a new leader (pre-KIP-101), not by epoch
 *  6 a broker that registers again rebuilds its partitions from the image
 *    it has, without catching up first (see reregister)
 *  7 the controller answers OPERATION_NOT_ATTEMPTED when its compare-and-set
 *    loses to an unrelated write (see ctl_alter) */
static int mutant;

#define SCHECK(cond, ...)                                                                             \
    do {                                                                                              \
        if (!(cond) && !seed_failed) {                                                                    \
            failed++;                                                                                 \
            seed_failed = 1;                                                                          \
            fprintf(stderr, "FAIL seed %llu step %d t=%lld (%s:%d): ", (unsigned long long)cur_seed, \
                    cur_step, (long long)now, __FILE__, __LINE__);                                    \
            fprintf(stderr, __VA_ARGS__);                                                             \
            fprintf(stderr, "\n");                                                                    \
            if (!verbose) print_trace();                                                              \
            fprintf(stderr, "  replay: %s %llu\n", prog, (unsigned long long)cur_seed);               \
        }                                                                                             \
    } while (0)

/* ---------------- the model ---------------- */

typedef struct rec {
    int32_t epoch;
    int32_t value;
} rec;

/* A store record, kept in our own form and turned into Kafka's metadata
 * records for mimage_apply. */
enum { SR_REGISTER, SR_FENCE, SR_TOPIC, SR_PARTITION, SR_CHANGE };
typedef struct srec {
    int type;
    int32_t id;     /* broker */
    int64_t epoch;  /* broker epoch */
    int part;
    int32_t leader; /* SR_CHANGE: -2 no change */
    int nisr;       /* SR_CHANGE: -1 no change */
    int32_t isr[RF];
} srec;

enum { M_FETCH, M_FETCH_RESP, M_ALTER, M_ALTER_RESP, M_HB, M_HB_RESP };
typedef struct msg {
    int type;
    int64_t at;
    uint64_t order;
    int to;          /* broker, 0 = the store/controller */
    uint64_t to_inc; /* connections die with the incarnation */
    int from;
    uint64_t from_inc;
    int part;
    uint64_t fseq;
    int32_t leader_epoch;
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t broker_epoch;
    int error;
    int32_t div_epoch;
    int64_t div_end;
    int64_t hw, leader_leo;
    int64_t sent_at;
    int nrec;
    rec recs[FETCH_MAX];
    pr_alter alter;
} msg;

typedef struct replica {
    bool hosted;
    rec log[MAXLOG];
    int64_t len, flushed, saved_hw;
    epoch_entry ec[MAXEC];
    size_t nec;
    partition_repl pr;
    int32_t img_le, img_pe; /* the image state last given to pr */
    int64_t verified;       /* log[0, verified) matches the committed log */
    /* checks, per incarnation */
    uint64_t chk_inc;
    int32_t seen_le, seen_pe, term_epoch;
    int64_t term_hw;
    /* fetcher */
    uint64_t fseq;
    bool inflight;
    int64_t fetch_sent, next_fetch;
    /* AlterPartition in flight */
    bool alter_wait;
    uint64_t alter_seq;
    uint64_t alter_attempt; /* a resend is a new connection: older answers never arrive */
    int64_t alter_sent;
} replica;

typedef struct broker {
    bool up, paused, self_fenced;
    uint64_t inc;
    int64_t bepoch;
    mimage *img;
    int applied;        /* store log records applied to img */
    int64_t last_ok;    /* send time of the last heartbeat the store accepted */
    int64_t next_hb;
    int64_t wake_at;    /* paused: resume then; down: restart not before */
    int lag;            /* how slowly it applies metadata */
    int64_t meta_stall; /* applies no metadata before (a slow watch) */
    replica r[MAXP];
} broker;

typedef struct produce {
    int b, p;
    uint64_t inc;
    int32_t epoch;
    int64_t offset;
    int32_t value;
    int64_t deadline;
} produce;

typedef struct ack {
    int32_t value, epoch;
    int64_t offset;
} ack;

typedef struct sim {
    int nb, np;
    bool self_fence;
    int crash_odds, pause_odds, drop_odds, produce_odds;
    kuuid topic_id;
    int32_t replicas[MAXP][RF];
    /* store */
    srec log[MAXSREC];
    int nlog;
    mimage *store;
    int64_t last_seen[MAXB + 1];
    int64_t next_bepoch;
    int32_t store_le[MAXP], store_pe[MAXP], store_leader[MAXP];
    /* brokers */
    broker b[MAXB + 1];
    /* network */
    msg q[MAXMSG];
    int nq;
    uint64_t order;
    /* clients */
    produce prod[MAXPROD];
    int nprod;
    int32_t next_value;
    int32_t client_leader[MAXP]; /* the producers' metadata: refreshed on errors, or now and then */
    /* checks */
    rec committed[MAXP][MAXLOG];
    int64_t committed_len[MAXP];
    int8_t leader_of[MAXP][MAXEPOCH];
    ack acks[MAXP][MAXACK];
    int nacks[MAXP];
    int32_t last_ack_epoch[MAXP];
    int64_t last_ack_offset[MAXP];
    bool calm;
    /* stats */
    long acked, appended, crashes, power_losses, disk_losses, kip966, pauses, reregisters, self_fences, elections,
        diverging, truncations, stale_epoch_isr, alter_ok, alter_refused, zombie_appends, not_enough, after_append, timeouts,
        heal_steps;
} sim;

static sim S;

static bool has(const int32_t *v, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

/* ---------------- the store ---------------- */

static int apply_srec(mimage *img, const srec *s) {
    switch (s->type) {
    case SR_REGISTER: {
        RegisterBrokerRecord r;
        RegisterBrokerRecord_init(&r);
        r.broker_id = s->id;
        r.broker_epoch = s->epoch;
        r.fenced = false;
        r.end_points = NULL;
        r.end_points_count = 0;
        r.rack = KSTR_NULL;
        mrecord m = {KMETA_REGISTER_BROKER_RECORD, 0, &r};
        return mimage_apply(img, &m);
    }
    case SR_FENCE: {
        FenceBrokerRecord f;
        FenceBrokerRecord_init(&f);
        f.id = s->id;
        f.epoch = s->epoch;
        mrecord m = {KMETA_FENCE_BROKER_RECORD, 0, &f};
        return mimage_apply(img, &m);
    }
    case SR_TOPIC: {
        TopicRecord t;
        TopicRecord_init(&t);
        t.name = KSTR_LIT("t");
        t.topic_id = S.topic_id;
        mrecord m = {KMETA_TOPIC_RECORD, 0, &t};
        return mimage_apply(img, &m);
    }
    case SR_PARTITION: {
        PartitionRecord pr;
        PartitionRecord_init(&pr);
        pr.partition_id = s->part;
        pr.topic_id = S.topic_id;
        pr.replicas = S.replicas[s->part];
        pr.replicas_count = RF;
        pr.isr = S.replicas[s->part];
        pr.isr_count = RF;
        pr.leader = S.replicas[s->part][0];
        pr.leader_epoch = 0;
        pr.partition_epoch = 0;
        mrecord m = {KMETA_PARTITION_RECORD, 0, &pr};
        return mimage_apply(img, &m);
    }
    case SR_CHANGE: {
        PartitionChangeRecord c;
        PartitionChangeRecord_init(&c);
        c.partition_id = s->part;
        c.topic_id = S.topic_id;
        c.leader = s->leader;
        c.isr = s->nisr >= 0 ? (int32_t *)s->isr : NULL;
        c.isr_count = s->nisr;
        mrecord m = {KMETA_PARTITION_CHANGE_RECORD, 0, &c};
        return mimage_apply(img, &m);
    }
    }
    return -1;
}

static const mpartition *img_part(const mimage *img, int p) {
    const mtopic *t = mimage_topic_by_id(img, &S.topic_id);
    return t && p < t->nparts ? &t->parts[p] : NULL;
}

static void store_append(const srec *s) {
    if (S.nlog >= MAXSREC) {
        SCHECK(false, "store log full");
        return;
    }
    SCHECK(apply_srec(S.store, s) == 0, "store applies record type %d", s->type);
    S.log[S.nlog++] = *s;
}

/* The controller: ctl_leadership_changes until nothing is left. */
static void ctl_react(void) {
    for (int round = 0; round < 10; round++) {
        karena a;
        karena_init(&a, 0);
        mrecord out[MAXP * 2];
        int n = ctl_leadership_changes(S.store, mutant == 4, out, MAXP * 2, &a);
        for (int i = 0; i < n; i++) {
            const PartitionChangeRecord *c = out[i].data;
            srec s = {.type = SR_CHANGE, .part = c->partition_id, .leader = c->leader, .nisr = c->isr_count};
            for (int k = 0; k < c->isr_count && k < RF; k++) s.isr[k] = c->isr[k];
            TR("ctl: p%lld leader %lld isr n=%lld [%lld %lld %lld]", (long long)s.part, (long long)s.leader,
               (long long)s.nisr, (long long)(s.nisr > 0 ? s.isr[0] : -1), (long long)(s.nisr > 1 ? s.isr[1] : -1),
               (long long)(s.nisr > 2 ? s.isr[2] : -1));
            store_append(&s);
        }
        karena_free(&a);
        if (n == 0) return;
    }
    SCHECK(false, "the controller settles");
}

static void store_register(int b, int64_t epoch) {
    srec s = {.type = SR_REGISTER, .id = b, .epoch = epoch};
    store_append(&s);
    S.last_seen[b] = now;
    ctl_react();
}

/* Sessions: a registration not heard from for SESSION_MS is fenced. */
static void store_sessions(void) {
    for (int b = 1; b <= S.nb; b++) {
        const mbroker *br = mimage_broker(S.store, b);
        if (!br || br->fenced || now - S.last_seen[b] <= SESSION_MS) continue;
        TR("store: session of %lld (epoch %lld) lapsed: fenced", (long long)b, (long long)br->epoch);
        srec s = {.type = SR_FENCE, .id = b, .epoch = br->epoch};
        store_append(&s);
        ctl_react();
    }
}

/* ---------------- network ---------------- */

static msg *send_msg(int type, int to, int from) {
    if (S.nq >= MAXMSG) return NULL;
    msg *m = &S.q[S.nq++];
    memset(m, 0, sizeof *m);
    m->type = type;
    m->to = to;
    m->from = from;
    m->to_inc = to > 0 ? S.b[to].inc : 0;
    m->from_inc = from > 0 ? S.b[from].inc : 0;
    m->order = S.order++;
    m->sent_at = now;
    /* delays reorder messages; a few are very late (a congested link, a
     * retransmission): requests of a broker incarnation that is gone */
    uint32_t r = rnd(256);
    int64_t d = 1 + (int64_t)rnd(r == 0 ? 3 * SESSION_MS : r < 4 ? 1000 : r < 32 ? 200 : 25);
    m->at = now + d;
    if (!S.calm && S.drop_odds && rnd((uint32_t)S.drop_odds) == 0) m->at = INT64_MAX; /* lost */
    return m;
}

/* ---------------- checks helpers ---------------- */

static void advance_verified(int b, int p) {
    replica *r = &S.b[b].r[p];
    const rec *c = S.committed[p];
    while (r->verified < r->len && r->verified < S.committed_len[p] && r->log[r->verified].epoch == c[r->verified].epoch &&
           r->log[r->verified].value == c[r->verified].value)
        r->verified++;
}

/* A leader's HW moved: its [0, HW) must agree with the committed log and
 * extends it (I5). */
static void note_hw(int b, int p) {
    replica *r = &S.b[b].r[p];
    if (!r->pr.is_leader) return;
    advance_verified(b, p);
    int64_t hw = r->pr.hw;
    SCHECK(r->verified >= hw || r->verified >= S.committed_len[p],
           "I5: leader %d of p%d at epoch %d: [0,%lld) differs from the committed log at %lld", b, p,
           r->pr.leader_epoch, (long long)hw, (long long)r->verified);
    while (S.committed_len[p] < hw && r->verified == S.committed_len[p]) {
        S.committed[p][S.committed_len[p]] = r->log[S.committed_len[p]];
        S.committed_len[p]++;
        r->verified++;
    }
}

static void set_local_len(int b, int p, int64_t len) {
    replica *r = &S.b[b].r[p];
    r->len = len;
    if (r->flushed > len) r->flushed = len;
    if (r->verified > len) r->verified = len;
    pr_set_local_log(&r->pr, len);
}

static void truncate_replica(int b, int p, int64_t to, const char *why) {
    replica *r = &S.b[b].r[p];
    int64_t before = r->len;
    int64_t len = tr_apply_truncation(r->ec, &r->nec, r->len, to);
    if (len < before) {
        S.truncations++;
        TR("b%lld p%lld truncates %lld -> %lld, hw %lld", (long long)b, (long long)p, (long long)before,
           (long long)len, (long long)r->pr.hw);
        SCHECK(len >= r->pr.hw, "I5: b%d p%d truncates to %lld below its HW %lld (%s)", b, p, (long long)len,
               (long long)r->pr.hw, why);
    }
    set_local_len(b, p, len);
}

/* ---------------- producers ---------------- */

/* Pending produces stay in append order (acks of a leader complete in offset order). */
static void drop_produce(int i) {
    memmove(&S.prod[i], &S.prod[i + 1], sizeof(produce) * (size_t)(S.nprod - i - 1));
    S.nprod--;
}

static void fail_produces(int b, int p) {
    for (int i = 0; i < S.nprod; i++)
        if (S.prod[i].b == b && (p < 0 || S.prod[i].p == p)) drop_produce(i--);
}

static void complete_produces(void) {
    for (int i = 0; i < S.nprod; i++) {
        produce *pp = &S.prod[i];
        broker *B = &S.b[pp->b];
        if (B->paused) continue; /* frozen: completes (or not) when it resumes */
        replica *r = &B->r[pp->p];
        bool done = false;
        int err;
        if (!B->up || B->inc != pp->inc || B->self_fenced || r->pr.leader_epoch != pp->epoch) {
            done = true;
            err = KERR_NOT_LEADER_OR_FOLLOWER;
        } else {
            err = pr_check_enough_replicas(&r->pr, pp->offset + 1, &done);
            if (!done && now >= pp->deadline) {
                done = true;
                err = KERR_REQUEST_TIMED_OUT;
            }
        }
        if (!done) continue;
        if (err == KERR_NONE) {
            int p = pp->p;
            note_hw(pp->b, p);
            TR("ack p%lld offset %lld value %lld by b%lld epoch %lld", (long long)p, (long long)pp->offset,
               (long long)pp->value, (long long)pp->b, (long long)pp->epoch);
            SCHECK(pp->offset < r->len && r->log[pp->offset].value == pp->value,
                   "acked value %d is still at offset %lld on its leader b%d", pp->value, (long long)pp->offset,
                   pp->b);
            SCHECK(pp->offset < S.committed_len[p] && S.committed[p][pp->offset].value == pp->value &&
                       S.committed[p][pp->offset].epoch == pp->epoch,
                   "I6: acked value %d (p%d offset %lld epoch %d) is committed (committed len %lld)", pp->value, p,
                   (long long)pp->offset, pp->epoch, (long long)S.committed_len[p]);
            if (S.last_ack_epoch[p] == pp->epoch)
                SCHECK(pp->offset > S.last_ack_offset[p], "I6: acks of epoch %d in offset order (%lld after %lld)",
                       pp->epoch, (long long)pp->offset, (long long)S.last_ack_offset[p]);
            S.last_ack_epoch[p] = pp->epoch;
            S.last_ack_offset[p] = pp->offset;
            if (S.nacks[p] < MAXACK) S.acks[p][S.nacks[p]++] = (ack){pp->value, pp->epoch, pp->offset};
            S.acked++;
        } else if (err == KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND) {
            S.after_append++;
        } else if (err == KERR_REQUEST_TIMED_OUT) {
            S.timeouts++;
        }
        drop_produce(i--);
    }
}

/* A producer sends to the leader its metadata names (a zombie, after a
 * pause, until it answers an error), or now and then to any replica. */
static void produce_one(void) {
    int p = (int)rnd((uint32_t)S.np);
    if (rnd(30) == 0 || S.client_leader[p] <= 0) S.client_leader[p] = S.store_leader[p];
    int b = rnd(10) == 0 ? S.replicas[p][rnd(RF)] : S.client_leader[p];
    if (b <= 0) return;
    broker *B = &S.b[b];
    replica *r = &B->r[p];
    if (B->paused || !r->hosted || r->len >= MAXLOG - 8 || S.nprod >= MAXPROD || S.next_value >= MAXVAL - 1) return;
    int err = !B->up || B->self_fenced ? KERR_NOT_LEADER_OR_FOLLOWER : pr_check_append(&r->pr, -1);
    if (err == KERR_NOT_ENOUGH_REPLICAS) S.not_enough++;
    if (err != KERR_NONE) {
        S.client_leader[p] = S.store_leader[p]; /* refresh metadata */
        return;
    }
    int64_t off = r->len;
    r->log[off] = (rec){r->pr.leader_epoch, ++S.next_value};
    SCHECK(tr_assign(r->ec, &r->nec, MAXEC, r->pr.leader_epoch, off) >= 0, "epoch cache room");
    r->len++;
    S.appended++;
    const mpartition *mp = img_part(S.store, p);
    if (mp->leader != b || mp->leader_epoch != r->pr.leader_epoch) S.zombie_appends++;
    TR("produce p%lld value %lld at b%lld offset %lld epoch %lld", (long long)p, (long long)S.next_value,
       (long long)b, (long long)off, (long long)r->pr.leader_epoch);
    produce *pp = &S.prod[S.nprod++];
    *pp = (produce){b, p, B->inc, r->pr.leader_epoch, off, S.next_value, now + PRODUCE_TIMEOUT_MS};
    if (pr_leader_appended(&r->pr, r->len, now)) note_hw(b, p);
}

/* ---------------- brokers: metadata ---------------- */

static void set_brokers(int b, int p) {
    broker *B = &S.b[b];
    for (int i = 0; i < B->img->nbrokers; i++) {
        const mbroker *br = &B->img->brokers[i];
        pr_set_broker(&B->r[p].pr, br->id, !br->fenced, false, br->epoch);
    }
}

static void start_fetcher(replica *r) {
    r->inflight = false;
    r->fseq++;
    r->next_fetch = now;
}

static void sync_partition(int b, int p) {
    broker *B = &S.b[b];
    replica *r = &B->r[p];
    if (!r->hosted) return;
    const mpartition *mp = img_part(B->img, p);
    if (!mp || (mp->leader_epoch == r->img_le && mp->partition_epoch == r->img_pe)) return;
    r->img_le = mp->leader_epoch;
    r->img_pe = mp->partition_epoch;
    pr_meta m;
    memset(&m, 0, sizeof m);
    m.leader = mp->leader;
    m.leader_epoch = mp->leader_epoch;
    m.partition_epoch = mp->partition_epoch;
    m.nreplicas = mp->nreplicas;
    memcpy(m.replicas, mp->replicas, sizeof(int32_t) * (size_t)mp->nreplicas);
    m.nisr = mp->nisr;
    memcpy(m.isr, mp->isr, sizeof(int32_t) * (size_t)mp->nisr);
    bool was_leader = r->pr.is_leader;
    int32_t old_le = r->pr.leader_epoch;
    if (m.leader == b) {
        bool adv;
        if (pr_make_leader(&r->pr, &m, now, &adv) < 0) return;
        TR("b%lld p%lld leads epoch %lld pe %lld (len %lld hw %lld)", (long long)b, (long long)p,
           (long long)m.leader_epoch, (long long)m.partition_epoch, (long long)r->len, (long long)r->pr.hw);
        if (!was_leader || r->pr.leader_epoch != old_le) /* maybeAssignEpochStartOffset */
            SCHECK(tr_assign(r->ec, &r->nec, MAXEC, r->pr.leader_epoch, r->len) >= 0, "epoch cache room");
        r->inflight = false;
        if (r->pr.state == PR_COMMITTED) r->alter_wait = false;
        if (adv) note_hw(b, p);
    } else {
        int rc = pr_make_follower(&r->pr, &m);
        if (rc < 0) return;
        TR("b%lld p%lld follows %lld at epoch %lld pe %lld", (long long)b, (long long)p, (long long)m.leader,
           (long long)m.leader_epoch, (long long)m.partition_epoch);
        r->alter_wait = false;
        if (was_leader) fail_produces(b, p);
        if (rc == 1 && mutant == 5) truncate_replica(b, p, r->pr.hw, "mutant 5");
        if (rc == 1 || was_leader) start_fetcher(r);
    }
}

static void reregister(int b);

/* Apply store records [applied, upto) to b's image. quiet: a fresh
 * snapshot (restart): partitions are synced once at the end. */
static void apply_meta(int b, int upto, bool quiet) {
    broker *B = &S.b[b];
    while (B->applied < upto) {
        const srec *s = &S.log[B->applied++];
        SCHECK(apply_srec(B->img, s) == 0, "b%d applies record %d", b, B->applied - 1);
        if (quiet) continue;
        if (s->type == SR_REGISTER || s->type == SR_FENCE)
            for (int p = 0; p < S.np; p++)
                if (B->r[p].hosted) set_brokers(b, p);
        if (s->type == SR_FENCE && s->id == b && s->epoch == B->bepoch) {
            TR("b%lld sees its own fence", (long long)b);
            reregister(b);
            continue;
        }
        for (int p = 0; p < S.np; p++) sync_partition(b, p);
    }
    if (quiet)
        for (int p = 0; p < S.np; p++)
            if (B->r[p].hosted) {
                set_brokers(b, p);
                sync_partition(b, p);
            }
}

/* New in-memory state for every partition (a restart or a new
 * registration): the log, epoch cache and HW stay. */
static void reset_partitions(int b) {
    broker *B = &S.b[b];
    for (int p = 0; p < S.np; p++) {
        replica *r = &B->r[p];
        if (!r->hosted) continue;
        pr_init(&r->pr, b, B->bepoch, LAG_MS, MIN_ISR, r->len, r->pr.hw);
        r->img_le = r->img_pe = -1;
        r->inflight = false;
        r->alter_wait = false;
        r->fseq++;
    }
}

/* The store says our registration is gone: register again (new broker
 * epoch) and rebuild the partition state from an image that has caught up
 * with that registration, as a KRaft broker stays fenced until its
 * metadata reaches the offset of its registration. Rebuilding from the
 * image the broker had (behind) is unsafe, found by this simulation (seed
 * 349 before this rule): a zombie leader had learned ISR {4,3} at
 * partition epoch 5 from an AlterPartition answer, its image still said
 * epoch 4, ISR {4}; rebuilt from that, its HW passed a record it had just
 * appended as a zombie, a record the new leader never had. */
static void reregister(int b) {
    broker *B = &S.b[b];
    S.reregisters++;
    fail_produces(b, -1);
    B->inc++;
    B->bepoch = S.next_bepoch++;
    B->self_fenced = false;
    B->last_ok = now;
    B->next_hb = now + HB_MS;
    TR("b%lld registers again with epoch %lld", (long long)b, (long long)B->bepoch);
    reset_partitions(b);
    store_register(b, B->bepoch);
    if (mutant == 6) {
        for (int p = 0; p < S.np; p++)
            if (B->r[p].hosted) {
                set_brokers(b, p);
                sync_partition(b, p);
            }
        return;
    }
    apply_meta(b, S.nlog, true);
}

/* ---------------- brokers: faults ---------------- */

static void crash(int b) {
    broker *B = &S.b[b];
    B->up = false;
    B->paused = false;
    B->inc++;
    B->wake_at = now + 50 + rnd(SESSION_MS * 2);
    fail_produces(b, -1);
    for (int p = 0; p < S.np; p++) {
        B->r[p].inflight = false;
        B->r[p].alter_wait = false;
    }
    S.crashes++;
    TR("b%lld crashes", (long long)b);
}

static void restart(int b) {
    broker *B = &S.b[b];
    int kind = rnd(4); /* 0,1: process crash; 2: power loss (unflushed tail); 3: disk lost */
    for (int p = 0; p < S.np; p++) {
        replica *r = &B->r[p];
        if (!r->hosted) continue;
        int64_t len = r->len, hw = r->saved_hw;
        if (kind >= 2) {
            const mpartition *mp = img_part(S.store, p);
            if (has(mp->isr, mp->nisr, b) && mutant != 1) {
                S.kip966++; /* excluded: see the header */
            } else if (kind == 2) {
                len = r->flushed;
                S.power_losses++;
            } else {
                len = 0;
                hw = 0;
                S.disk_losses++;
            }
        }
        if (hw > len) hw = len;
        /* recovery: the log's prefix, the cache rebuilt from its batches */
        r->len = len;
        r->flushed = len;
        r->saved_hw = hw;
        if (r->verified > len) r->verified = len;
        r->nec = 0;
        for (int64_t o = 0; o < len; o++) tr_assign(r->ec, &r->nec, MAXEC, r->log[o].epoch, o);
        r->pr.hw = hw;
    }
    B->up = true;
    B->inc++;
    B->bepoch = S.next_bepoch++;
    B->self_fenced = false;
    B->last_ok = now;
    B->next_hb = now + HB_MS;
    TR("b%lld restarts (loss kind %lld: 2 tail, 3 disk) with epoch %lld", (long long)b,
       (long long)(kind < 2 ? 0 : kind), (long long)B->bepoch);
    reset_partitions(b);
    store_register(b, B->bepoch);
    apply_meta(b, S.nlog, true); /* a fresh snapshot */
}

/* ---------------- brokers: fetch ---------------- */

static void send_fetch(int b, int p) {
    broker *B = &S.b[b];
    replica *r = &B->r[p];
    int32_t l = r->pr.leader_id;
    if (r->pr.is_leader || l <= 0 || l == b) return;
    if (r->inflight && now - r->fetch_sent < FETCH_TIMEOUT_MS) return;
    if (!r->inflight && now < r->next_fetch) return;
    msg *m = send_msg(M_FETCH, l, b);
    if (!m) return;
    m->part = p;
    m->fseq = ++r->fseq;
    m->leader_epoch = r->pr.leader_epoch;
    m->fetch_offset = r->len;
    m->last_fetched_epoch = mutant == 5 ? -1 : tr_latest_epoch(r->ec, r->nec);
    m->broker_epoch = B->bepoch;
    r->inflight = true;
    r->fetch_sent = now;
}

static void send_alter(int b, int p, const pr_alter *a) {
    replica *r = &S.b[b].r[p];
    r->alter_wait = true;
    r->alter_seq = a->seq;
    r->alter_sent = now;
    msg *m = send_msg(M_ALTER, 0, b);
    if (!m) return;
    m->part = p;
    m->fseq = ++r->alter_attempt;
    m->alter = *a;
    m->broker_epoch = S.b[b].bepoch;
    TR("b%lld p%lld proposes isr n=%lld [%lld %lld] pe %lld", (long long)b, (long long)p, (long long)a->nisr,
       (long long)a->isr[0], (long long)(a->nisr > 1 ? a->isr[1] : -1), (long long)a->partition_epoch);
}

static void leader_fetch(int b, const msg *req) {
    broker *B = &S.b[b];
    int p = req->part;
    replica *r = &B->r[p];
    msg *resp = send_msg(M_FETCH_RESP, req->from, b);
    if (!resp) return;
    resp->to_inc = req->from_inc;
    resp->part = p;
    resp->fseq = req->fseq;
    resp->leader_epoch = req->leader_epoch;
    resp->fetch_offset = req->fetch_offset;
    resp->div_epoch = -1;
    resp->div_end = -1;
    if (!r->hosted || !r->pr.is_leader || B->self_fenced) {
        resp->error = KERR_NOT_LEADER_OR_FOLLOWER;
        return;
    }
    if (req->leader_epoch != r->pr.leader_epoch) {
        resp->error = req->leader_epoch < r->pr.leader_epoch ? KERR_FENCED_LEADER_EPOCH : KERR_UNKNOWN_LEADER_EPOCH;
        return;
    }
    resp->hw = r->pr.hw;
    resp->leader_leo = r->len;
    tr_read_check rc = tr_leader_check_fetch(r->ec, r->nec, r->len, 0, req->fetch_offset, req->last_fetched_epoch,
                                             &resp->div_epoch, &resp->div_end);
    if (rc == TR_READ_OUT_OF_RANGE) {
        resp->error = KERR_OFFSET_OUT_OF_RANGE;
        return;
    }
    if (rc == TR_READ_DIVERGING) {
        S.diverging++;
        return; /* no fetch state update with a diverging epoch */
    }
    int k = 0;
    while (k < FETCH_MAX && req->fetch_offset + k < r->len) {
        resp->recs[k] = r->log[req->fetch_offset + k];
        k++;
    }
    resp->nrec = k;
    pr_alter a;
    pr_fetch_result fr =
        pr_follower_fetched(&r->pr, req->from, req->fetch_offset, 0, req->broker_epoch, now, &a);
    if (fr.error != KERR_NONE) {
        resp->error = fr.error;
        resp->nrec = 0;
        return;
    }
    if (fr.propose) send_alter(b, p, &a);
    if (fr.hw_advanced) note_hw(b, p);
    TR("b%lld p%lld fetch from b%lld at %lld (sent t=%lld): hw %lld", (long long)b, (long long)p,
       (long long)req->from, (long long)req->fetch_offset, (long long)req->sent_at, (long long)r->pr.hw);
}

static void follower_response(int b, const msg *m) {
    broker *B = &S.b[b];
    int p = m->part;
    replica *r = &B->r[p];
    if (!r->inflight || m->fseq != r->fseq) return;
    r->inflight = false;
    r->next_fetch = now + (m->error || m->nrec == 0 ? (int64_t)rnd(30) : 0);
    if (r->pr.is_leader || m->leader_epoch != r->pr.leader_epoch || m->fetch_offset != r->len) return;
    if (m->error == KERR_OFFSET_OUT_OF_RANGE) {
        /* fetchOffsetAndTruncate: the leader's LEO is below ours */
        if (m->leader_leo < r->len) truncate_replica(b, p, m->leader_leo, "out of range");
        return;
    }
    if (m->error) return;
    if (m->div_epoch >= 0 || m->div_end >= 0) {
        tr_decision d = tr_offset_to_truncate(r->ec, r->nec, r->len, r->len, m->div_epoch, m->div_end);
        TR("b%lld p%lld diverging (%lld, %lld) -> truncate to %lld", (long long)b, (long long)p,
           (long long)m->div_epoch, (long long)m->div_end, (long long)d.offset);
        truncate_replica(b, p, d.offset, "diverging epoch");
        r->next_fetch = now;
        return;
    }
    for (int i = 0; i < m->nrec && r->len < MAXLOG; i++) {
        r->log[r->len] = m->recs[i];
        SCHECK(tr_assign(r->ec, &r->nec, MAXEC, m->recs[i].epoch, r->len) >= 0, "epoch cache room");
        r->len++;
    }
    pr_set_local_log(&r->pr, r->len);
    pr_follower_update_hw(&r->pr, m->hw);
    advance_verified(b, p);
}

/* ---------------- the controller's AlterPartition ---------------- */

static void ctl_alter(const msg *m) {
    const pr_alter *a = &m->alter;
    int p = m->part;
    const mpartition *mp = img_part(S.store, p);
    const mbroker *sender = mimage_broker(S.store, m->from);
    int err = KERR_NONE;
    if (!sender || sender->epoch != m->broker_epoch) err = KERR_STALE_BROKER_EPOCH;
    else if (a->leader_epoch > mp->leader_epoch || a->partition_epoch > mp->partition_epoch)
        err = KERR_NOT_CONTROLLER;
    else if (a->leader_epoch < mp->leader_epoch) err = KERR_FENCED_LEADER_EPOCH;
    else if (m->from != mp->leader) err = KERR_INVALID_REQUEST;
    else if (a->partition_epoch < mp->partition_epoch && mutant != 3) err = KERR_INVALID_UPDATE_VERSION;
    else if (!has(a->isr, a->nisr, mp->leader)) err = KERR_INVALID_REQUEST;
    else {
        for (int i = 0; i < a->nisr; i++) {
            if (!has(mp->replicas, mp->nreplicas, a->isr[i])) err = KERR_INVALID_REQUEST;
            const mbroker *br = mimage_broker(S.store, a->isr[i]);
            if (err != KERR_NONE) continue;
            if (!br || br->fenced) err = KERR_INELIGIBLE_REPLICA;
            else if (a->isr_broker_epochs[i] != -1 && a->isr_broker_epochs[i] != br->epoch) {
                S.stale_epoch_isr++; /* KIP-903: a replica that came back since its fetch */
                if (mutant != 2) err = KERR_INELIGIBLE_REPLICA;
            }
        }
    }
    SCHECK(err != KERR_NOT_CONTROLLER, "b%d p%d proposes epochs (%d, %d) above the store's (%d, %d)", m->from, p,
           a->leader_epoch, a->partition_epoch, mp->leader_epoch, mp->partition_epoch);
    /* A compare-and-set that lost to an unrelated write (etcd compares the
     * topic's key) is re-validated and retried by the writer: it must not
     * answer OPERATION_NOT_ATTEMPTED, since an earlier copy of the same
     * proposal (sent before a timeout, delayed) may still be applied after
     * the leader reverted its maximal ISR (mutant 7 shows the loss). */
    if (mutant == 7 && err == KERR_NONE && !S.calm && rnd(10) == 0) err = KERR_OPERATION_NOT_ATTEMPTED;
    pr_alter res = *a;
    if (err == KERR_NONE) {
        bool same = a->nisr == mp->nisr;
        for (int i = 0; same && i < a->nisr; i++) same = has(mp->isr, mp->nisr, a->isr[i]);
        if (!same) {
            srec s = {.type = SR_CHANGE, .part = p, .leader = -2, .nisr = a->nisr};
            memcpy(s.isr, a->isr, sizeof(int32_t) * (size_t)a->nisr);
            store_append(&s);
            ctl_react();
            mp = img_part(S.store, p);
        }
        res.leader_id = mp->leader;
        res.leader_epoch = mp->leader_epoch;
        res.partition_epoch = mp->partition_epoch;
        res.nisr = mp->nisr;
        memcpy(res.isr, mp->isr, sizeof(int32_t) * (size_t)mp->nisr);
        S.alter_ok++;
    } else {
        S.alter_refused++;
    }
    TR("ctl: alter from b%lld p%lld le %lld pe %lld n=%lld -> err %lld", (long long)m->from, (long long)p,
       (long long)a->leader_epoch, (long long)a->partition_epoch, (long long)a->nisr, (long long)err);
    msg *r = send_msg(M_ALTER_RESP, m->from, 0);
    if (!r) return;
    r->to_inc = m->from_inc;
    r->part = p;
    r->fseq = m->fseq;
    r->alter = res;
    r->error = err;
}

static void alter_answer(int b, const msg *m) {
    replica *r = &S.b[b].r[m->part];
    if (!r->alter_wait || m->alter.seq != r->alter_seq || m->fseq != r->alter_attempt) return;
    if (m->error == KERR_NONE) {
        bool applied;
        if (pr_alter_committed(&r->pr, &m->alter, now, &applied)) note_hw(b, m->part);
        TR("b%lld p%lld alter committed (applied %lld) pe %lld nisr %lld hw %lld", (long long)b, (long long)m->part,
           (long long)applied, (long long)r->pr.partition_epoch, (long long)r->pr.nisr, (long long)r->pr.hw);
        r->alter_wait = false;
    } else if (pr_alter_failed(&r->pr, m->alter.seq, m->error)) {
        r->alter_sent = now - ALTER_TIMEOUT_MS + 20; /* resend soon */
    } else {
        r->alter_wait = false; /* reverted, or pending until new metadata */
    }
}

/* ---------------- delivery ---------------- */

static void deliver(const msg *m) {
    if (m->to == 0) {
        if (m->type == M_ALTER) {
            ctl_alter(m);
        } else if (m->type == M_HB) {
            const mbroker *br = mimage_broker(S.store, m->from);
            bool ok = br && br->epoch == m->broker_epoch && !br->fenced;
            if (ok) S.last_seen[m->from] = now;
            msg *r = send_msg(M_HB_RESP, m->from, 0);
            if (!r) return;
            r->to_inc = m->from_inc;
            r->broker_epoch = m->broker_epoch;
            r->error = ok ? KERR_NONE : KERR_STALE_BROKER_EPOCH;
            r->hw = m->sent_at; /* the time the lease was renewed from */
        }
        return;
    }
    broker *B = &S.b[m->to];
    if (!B->up || B->inc != m->to_inc) return;
    switch (m->type) {
    case M_FETCH:
        leader_fetch(m->to, m);
        break;
    case M_FETCH_RESP:
        follower_response(m->to, m);
        break;
    case M_ALTER_RESP:
        alter_answer(m->to, m);
        break;
    case M_HB_RESP:
        if (m->broker_epoch != B->bepoch) break;
        if (m->error == KERR_NONE) {
            if (m->hw > B->last_ok) B->last_ok = m->hw;
            if (B->self_fenced && now - B->last_ok < SELF_FENCE_MS) {
                B->self_fenced = false;
                TR("b%lld lease renewed: leads again", (long long)m->to);
            }
        } else {
            TR("b%lld heartbeat: fenced", (long long)m->to);
            reregister(m->to);
        }
        break;
    }
}

static int msg_cmp(const msg *a, const msg *b) {
    if (a->at != b->at) return a->at < b->at ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void deliver_due(void) {
    for (;;) {
        int best = -1;
        for (int i = 0; i < S.nq; i++) {
            const msg *m = &S.q[i];
            if (m->at > now) continue;
            if (m->to > 0 && S.b[m->to].paused) continue; /* waits in the socket buffer */
            if (best < 0 || msg_cmp(m, &S.q[best]) < 0) best = i;
        }
        if (best < 0) break;
        msg m = S.q[best];
        S.q[best] = S.q[--S.nq];
        deliver(&m);
    }
    for (int i = 0; i < S.nq; i++)
        if (S.q[i].at == INT64_MAX) S.q[i--] = S.q[--S.nq];
}

/* ---------------- a broker's periodic work ---------------- */

static void broker_tick(int b) {
    broker *B = &S.b[b];
    if (!B->up || B->paused) return;
    /* lease timer */
    if (S.self_fence && !B->self_fenced && now - B->last_ok >= SELF_FENCE_MS) {
        B->self_fenced = true;
        S.self_fences++;
        fail_produces(b, -1);
        TR("b%lld self-fences (last heartbeat answer from t=%lld)", (long long)b, (long long)B->last_ok);
    }
    if (now >= B->next_hb) {
        msg *m = send_msg(M_HB, 0, b);
        if (m) m->broker_epoch = B->bepoch;
        B->next_hb = now + HB_MS;
    }
    /* metadata */
    if (!S.calm && rnd(300) == 0) B->meta_stall = now + (int64_t)rnd(1000);
    if (B->applied < S.nlog && rnd((uint32_t)B->lag) == 0 && (S.calm || now >= B->meta_stall)) {
        int upto = rnd(3) == 0 ? S.nlog : B->applied + 1 + (int)rnd(3);
        apply_meta(b, upto < S.nlog ? upto : S.nlog, false);
        if (!B->up || B->paused) return;
    }
    for (int p = 0; p < S.np; p++) {
        replica *r = &B->r[p];
        if (!r->hosted) continue;
        if (!S.calm && rnd(6) == 0) r->flushed = r->len;
        if (!S.calm && rnd(6) == 0) r->saved_hw = r->pr.hw;
        if (S.calm) {
            r->flushed = r->len;
            r->saved_hw = r->pr.hw;
        }
        if (r->pr.is_leader) {
            if (B->self_fenced) continue;
            pr_alter a;
            if (rnd(3) == 0 && pr_maybe_shrink(&r->pr, now, &a)) send_alter(b, p, &a);
            if (r->alter_wait) {
                if (r->pr.state == PR_COMMITTED || r->pr.pending.seq != r->alter_seq) {
                    r->alter_wait = false;
                } else if (now - r->alter_sent >= ALTER_TIMEOUT_MS) {
                    /* no answer: the request or the answer was lost */
                    if (pr_alter_failed(&r->pr, r->alter_seq, KERR_REQUEST_TIMED_OUT)) {
                        pr_alter again = r->pr.pending;
                        send_alter(b, p, &again);
                    } else {
                        r->alter_wait = false;
                    }
                }
            }
        } else {
            send_fetch(b, p);
        }
    }
}

/* ---------------- invariants ---------------- */

static void check_all(void) {
    for (int p = 0; p < S.np; p++) {
        const mpartition *mp = img_part(S.store, p);
        SCHECK(mp->leader_epoch >= S.store_le[p] && mp->partition_epoch >= S.store_pe[p],
               "I2: store epochs of p%d go down (%d,%d) -> (%d,%d)", p, S.store_le[p], S.store_pe[p],
               mp->leader_epoch, mp->partition_epoch);
        if (mp->leader != S.store_leader[p]) S.elections++;
        S.store_le[p] = mp->leader_epoch;
        S.store_pe[p] = mp->partition_epoch;
        S.store_leader[p] = mp->leader;
        for (int b = 1; b <= S.nb; b++) {
            broker *B = &S.b[b];
            replica *r = &B->r[p];
            if (!r->hosted) continue;
            advance_verified(b, p);
            SCHECK(r->pr.hw <= r->len && r->pr.leo == r->len, "I3: b%d p%d HW %lld LEO %lld log %lld", b, p,
                   (long long)r->pr.hw, (long long)r->pr.leo, (long long)r->len);
            SCHECK(r->verified >= r->pr.hw, "I5: b%d p%d [0,%lld) below its HW is not the committed log (%lld)", b,
                   p, (long long)r->pr.hw, (long long)r->verified);
            if (!B->up) continue;
            partition_repl *pr = &r->pr;
            if (r->chk_inc != B->inc) { /* a new incarnation */
                r->chk_inc = B->inc;
                r->seen_le = r->seen_pe = -1;
                r->term_epoch = -1;
            }
            SCHECK(pr->leader_epoch >= r->seen_le && pr->partition_epoch >= r->seen_pe,
                   "I2: b%d p%d epochs go down (%d,%d) -> (%d,%d)", b, p, r->seen_le, r->seen_pe, pr->leader_epoch,
                   pr->partition_epoch);
            r->seen_le = pr->leader_epoch;
            r->seen_pe = pr->partition_epoch;
            if (!pr->is_leader) {
                r->term_epoch = -1;
                continue;
            }
            int32_t le = pr->leader_epoch;
            if (le >= 0 && le < MAXEPOCH) {
                if (S.leader_of[p][le] == 0) S.leader_of[p][le] = (int8_t)b;
                SCHECK(S.leader_of[p][le] == b, "I1: p%d epoch %d led by b%d and b%d", p, le, S.leader_of[p][le], b);
            }
            if (r->term_epoch == le)
                SCHECK(pr->hw >= r->term_hw, "I3: leader b%d p%d HW went down %lld -> %lld in epoch %d", b, p,
                       (long long)r->term_hw, (long long)pr->hw, le);
            r->term_epoch = le;
            r->term_hw = pr->hw;
            note_hw(b, p);
            SCHECK(tr_latest_epoch(r->ec, r->nec) == le, "leader b%d p%d: epoch cache ends with %d, not %d", b, p,
                   tr_latest_epoch(r->ec, r->nec), le);
            /* I4, the leader's own view */
            int32_t mx[PR_MAX_REPLICAS];
            int n = pr_maximal_isr(pr, mx);
            for (int i = 0; i < n; i++) {
                if (mx[i] == b) continue;
                const broker *M = &S.b[mx[i]];
                const pr_replica *rs = NULL;
                for (int k = 0; k < pr->nremote; k++)
                    if (pr->r[k].id == mx[i]) rs = &pr->r[k];
                /* A member that came back (new broker epoch, maybe with less
                 * data) is checked once the leader knows that registration:
                 * by then it has applied the ISR change that removed the old
                 * one (the store fences before it lets a broker register). */
                bool known = false;
                for (int k = 0; k < pr->nbrokers; k++)
                    if (pr->brokers[k].id == mx[i])
                        known = pr->brokers[k].alive && pr->brokers[k].broker_epoch == M->bepoch;
                /* A pending expansion proposed for an earlier incarnation (the
                 * controller will refuse it: KIP-903) holds the HW, harmlessly. */
                if (pr->state == PR_PENDING_EXPAND && pr->pending_expand_id == mx[i])
                    for (int k = 0; k < pr->pending.nisr; k++)
                        if (pr->pending.isr[k] == mx[i] && pr->pending.isr_broker_epochs[k] != -1 &&
                            pr->pending.isr_broker_epochs[k] != M->bepoch)
                            known = false;
                if (!M->up || !rs || !known || rs->fetch_broker_epoch != M->bepoch) continue;
                SCHECK(pr->hw <= M->r[p].len, "I4: leader b%d p%d HW %lld > LEO %lld of maximal-ISR member b%d", b,
                       p, (long long)pr->hw, (long long)M->r[p].len, mx[i]);
            }
        }
        /* I4 and I6 against the store */
        int L = mp->leader;
        bool leader_current = L > 0 && S.b[L].up && S.b[L].r[p].pr.is_leader &&
                              S.b[L].r[p].pr.leader_epoch == mp->leader_epoch;
        for (int i = 0; i < mp->nisr; i++) {
            int m = mp->isr[i];
            const replica *mr = &S.b[m].r[p];
            SCHECK(mr->verified >= S.committed_len[p],
                   "I6: store ISR member b%d of p%d lacks committed records (matches %lld of %lld, len %lld)", m, p,
                   (long long)mr->verified, (long long)S.committed_len[p], (long long)mr->len);
            if (leader_current)
                SCHECK(S.b[L].r[p].pr.hw <= mr->len, "I4: leader b%d p%d HW %lld > LEO %lld of store ISR member b%d",
                       L, p, (long long)S.b[L].r[p].pr.hw, (long long)mr->len, m);
        }
    }
}

/* Every fault healed and every message delivered: is everything settled? */
static bool quiet(void) {
    for (int b = 1; b <= S.nb; b++)
        if (!S.b[b].up || S.b[b].paused || S.b[b].self_fenced || S.b[b].applied < S.nlog) return false;
    for (int p = 0; p < S.np; p++) {
        const mpartition *mp = img_part(S.store, p);
        if (mp->leader <= 0 || mp->nisr != RF) return false;
        const replica *l = &S.b[mp->leader].r[p];
        if (!l->pr.is_leader || l->pr.state != PR_COMMITTED || l->pr.hw != l->len) return false;
        for (int i = 0; i < RF; i++) {
            const replica *r = &S.b[S.replicas[p][i]].r[p];
            if (r->len != l->len || r->pr.hw != l->len || memcmp(r->log, l->log, sizeof(rec) * (size_t)l->len) != 0)
                return false;
        }
    }
    return true;
}

static void final_checks(void) {
    static uint16_t seen[MAXVAL];
    for (int p = 0; p < S.np; p++) {
        const mpartition *mp = img_part(S.store, p);
        SCHECK(mp->leader > 0 && mp->nisr == RF, "I7: p%d healed: leader %d, ISR of %d", p, mp->leader, mp->nisr);
        if (mp->leader <= 0) continue;
        const replica *l = &S.b[mp->leader].r[p];
        for (int i = 0; i < RF; i++) {
            const replica *r = &S.b[S.replicas[p][i]].r[p];
            SCHECK(r->len == l->len && memcmp(r->log, l->log, sizeof(rec) * (size_t)l->len) == 0,
                   "I7: p%d replica b%d (len %lld) identical to the leader b%d's (len %lld)", p, S.replicas[p][i],
                   (long long)r->len, mp->leader, (long long)l->len);
        }
        SCHECK(l->len >= S.committed_len[p] &&
                   memcmp(l->log, S.committed[p], sizeof(rec) * (size_t)S.committed_len[p]) == 0,
               "I7: p%d the committed log (%lld) is the leader's prefix", p, (long long)S.committed_len[p]);
        memset(seen, 0, sizeof seen);
        for (int64_t o = 0; o < l->len; o++) {
            int32_t v = l->log[o].value;
            SCHECK(v > 0 && v < MAXVAL && !seen[v], "I7: p%d value %d appears twice (offset %lld)", p, v, (long long)o);
            if (v > 0 && v < MAXVAL) seen[v] = 1;
        }
        for (int i = 0; i < S.nacks[p]; i++) {
            const ack *a = &S.acks[p][i];
            SCHECK(a->offset < l->len && l->log[a->offset].value == a->value && l->log[a->offset].epoch == a->epoch,
                   "I7: p%d acked value %d at offset %lld (epoch %d) is in the final log", p, a->value,
                   (long long)a->offset, a->epoch);
        }
    }
}

/* ---------------- one seed ---------------- */

static void simulate(uint64_t seed, int steps) {
    cur_seed = seed;
    seed_failed = 0;
    ring_n = 0;
    memset(&S, 0, sizeof S);
    rng = seed * 0x9E3779B97F4A7C15ull + 0x5A5A;
    now = 1000;
    cur_step = 0;
    S.nb = 3 + (int)rnd(3);
    S.np = 1 + (int)rnd(MAXP);
    S.self_fence = rnd(4) != 0;
    S.crash_odds = 40 + (int)rnd(200);
    S.pause_odds = 40 + (int)rnd(200);
    S.drop_odds = rnd(4) == 0 ? 0 : 8 + (int)rnd(40);
    S.produce_odds = 1 + (int)rnd(3);
    S.topic_id.b[0] = 0x5a;
    S.topic_id.b[15] = 1;
    S.next_bepoch = 100;
    S.store = mimage_new(0);
    for (int p = 0; p < S.np; p++) {
        /* RF distinct brokers, a random order */
        int32_t all[MAXB];
        for (int i = 0; i < S.nb; i++) all[i] = i + 1;
        for (int i = 0; i < RF; i++) {
            int j = i + (int)rnd((uint32_t)(S.nb - i));
            int32_t t = all[i];
            all[i] = all[j];
            all[j] = t;
            S.replicas[p][i] = all[i];
        }
        S.last_ack_epoch[p] = -1;
    }
    for (int b = 1; b <= S.nb; b++) {
        broker *B = &S.b[b];
        B->up = true;
        B->inc = 1;
        B->bepoch = S.next_bepoch++;
        B->img = mimage_new(b);
        B->last_ok = now;
        B->next_hb = now + (int64_t)rnd(HB_MS);
        B->lag = 1 + (int)rnd(6);
        for (int p = 0; p < S.np; p++) {
            replica *r = &B->r[p];
            r->hosted = has(S.replicas[p], RF, b);
            if (!r->hosted) continue;
            pr_init(&r->pr, b, B->bepoch, LAG_MS, MIN_ISR, 0, 0);
            r->img_le = r->img_pe = -1;
            r->chk_inc = B->inc;
            r->seen_le = r->seen_pe = r->term_epoch = -1;
        }
        srec s = {.type = SR_REGISTER, .id = b, .epoch = B->bepoch};
        store_append(&s);
        S.last_seen[b] = now;
    }
    srec t = {.type = SR_TOPIC};
    store_append(&t);
    for (int p = 0; p < S.np; p++) {
        srec s = {.type = SR_PARTITION, .part = p};
        store_append(&s);
        S.store_leader[p] = S.replicas[p][0];
    }
    for (int b = 1; b <= S.nb; b++) apply_meta(b, S.nlog, true);
    TR("seed: %lld brokers, %lld partitions, self-fence %lld, drop 1/%lld", (long long)S.nb, (long long)S.np,
       (long long)S.self_fence, (long long)S.drop_odds);

    int heal_left = HEAL_STEPS;
    for (int step = 0; !seed_failed; step++) {
        cur_step = step;
        if (step == steps) {
            S.calm = true;
            TR("heal: no more faults");
        }
        if (S.calm) {
            if (heal_left-- == 0) break;
            S.heal_steps++;
        }
        now += 1 + (int64_t)rnd(20);
        deliver_due();
        store_sessions();
        if (!S.calm && rnd((uint32_t)S.produce_odds) == 0) produce_one();
        /* faults */
        int out = 0;
        for (int b = 1; b <= S.nb; b++) out += !S.b[b].up || S.b[b].paused;
        if (!S.calm && out < 2 && rnd((uint32_t)S.crash_odds) == 0) {
            int b = 1 + (int)rnd((uint32_t)S.nb);
            if (rnd(2) == 0 && S.store_leader[0] > 0) b = S.store_leader[0];
            if (S.b[b].up) crash(b);
        }
        if (!S.calm && out < 2 && rnd((uint32_t)S.pause_odds) == 0) {
            int b = 1 + (int)rnd((uint32_t)S.nb);
            if (rnd(2) == 0 && S.store_leader[0] > 0) b = S.store_leader[0];
            if (S.b[b].up && !S.b[b].paused) {
                S.b[b].paused = true;
                S.b[b].wake_at = now + 20 + rnd(SESSION_MS * 2);
                S.pauses++;
                TR("b%lld pauses until t=%lld", (long long)b, (long long)S.b[b].wake_at);
            }
        }
        for (int b = 1; b <= S.nb; b++) {
            broker *B = &S.b[b];
            if (B->paused && (S.calm || now >= B->wake_at)) {
                B->paused = false;
                TR("b%lld resumes", (long long)b);
            }
            if (!B->up && (S.calm || now >= B->wake_at)) {
                const mbroker *br = mimage_broker(S.store, b);
                if (br && br->fenced) restart(b); /* its old registration must be gone first */
            }
        }
        for (int b = 1; b <= S.nb; b++) broker_tick(b);
        complete_produces();
        check_all();
        if (S.calm && step % 4 == 0 && quiet()) break;
    }
    if (!seed_failed) {
        SCHECK(quiet(), "I7: the cluster settles after healing (%d steps)", HEAL_STEPS);
        final_checks();
    }
    mimage_free(S.store);
    for (int b = 1; b <= S.nb; b++) mimage_free(S.b[b].img);
}

int main(int argc, char **argv) {
#if defined(__SANITIZE_ADDRESS__)
    int seeds = 3000;
#else
    int seeds = 20000;
#endif
    int steps = 300;
    prog = argv[0];
    if (getenv("SIM_SEEDS")) seeds = atoi(getenv("SIM_SEEDS"));
    if (getenv("SIM_STEPS")) steps = atoi(getenv("SIM_STEPS"));
    if (getenv("SIM_MUTANT")) mutant = atoi(getenv("SIM_MUTANT"));
    uint64_t first = 1;
    if (argc > 1) { /* replay one seed, tracing every event */
        first = (uint64_t)strtoull(argv[1], NULL, 10);
        seeds = 1;
        verbose = 1;
    }
    int bad = 0;
    long stale = 0, acked = 0, appended = 0, crashes = 0, power = 0, disk = 0, kip = 0, pauses = 0, rereg = 0, sfence = 0,
         elections = 0, div = 0, truncs = 0, aok = 0, aref = 0, zombie = 0, ne = 0, aa = 0, to = 0;
    long long committed = 0;
    for (int i = 0; i < seeds && bad < 3; i++) {
        simulate(first + (uint64_t)i, steps);
        if (seed_failed) bad++;
        else passed++; /* a seed that kept every invariant */
        acked += S.acked, appended += S.appended, crashes += S.crashes, power += S.power_losses;
        disk += S.disk_losses, kip += S.kip966, pauses += S.pauses, rereg += S.reregisters;
        sfence += S.self_fences, elections += S.elections, div += S.diverging, truncs += S.truncations;
        aok += S.alter_ok, aref += S.alter_refused, zombie += S.zombie_appends, ne += S.not_enough;
        aa += S.after_append, to += S.timeouts, stale += S.stale_epoch_isr;
        for (int p = 0; p < S.np; p++) committed += S.committed_len[p];
    }
    printf("test_replication_sim: %d seeds x %d steps: %ld appended, %ld acked, %lld committed; %ld crashes "
           "(%ld tails and %ld disks lost, %ld kept whole: KIP-966), %ld pauses, %ld re-registrations, %ld "
           "self-fences, %ld leader changes, %ld zombie appends, %ld DivergingEpoch, %ld truncations, "
           "AlterPartition %ld ok / %ld refused (%ld with a stale broker epoch, KIP-903), NOT_ENOUGH_REPLICAS %ld, AFTER_APPEND %ld, timeouts %ld\n",
           seeds, steps, appended, acked, committed, crashes, power, disk, kip, pauses, rereg, sfence, elections,
           zombie, div, truncs, aok, aref, stale, ne, aa, to);
    printf("test_replication_sim: %d passed, %d failed (seeds)\n", passed, failed);
    return failed ? 1 : 0;
}
