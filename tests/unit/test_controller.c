/* test_controller.c - the controller's leadership decisions
 * (controller/controller.c) and the image's broker registry, directly and
 * in a seeded simulation: brokers die and return at random, the controller
 * reacts until nothing is left to change, and Kafka's invariants are checked
 * after every step:
 *   - a partition's leader is -1 or an alive member of its ISR;
 *   - the ISR is never empty and only holds replicas;
 *   - leader epochs and partition epochs never go down, and the leader
 *     epoch moves exactly when the leader changes;
 *   - with unclean election off, a new leader was in the ISR before it was
 *     elected (no committed data can be lost);
 *   - a partition with an alive ISR member has a leader (availability).
 *
 * Run: make build/tests/test_controller && build/tests/test_controller [seeds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/controller.h"
#include "metadata/image.h"
#include "protocol/gen/kmsg.h"

#include "unit_check.h"

/* ---- building an image ---- */

static void register_broker(mimage *img, int32_t id, int64_t epoch, bool fenced) {
    RegisterBrokerRecord r;
    RegisterBrokerRecord_init(&r);
    r.broker_id = id;
    r.broker_epoch = epoch;
    r.fenced = fenced;
    RegisterBrokerRecord_BrokerEndpoint ep;
    RegisterBrokerRecord_BrokerEndpoint_init(&ep);
    ep.name = KSTR_LIT("PLAINTEXT");
    ep.host = KSTR_LIT("127.0.0.1");
    ep.port = (uint16_t)(9091 + id);
    r.end_points = &ep;
    r.end_points_count = 1;
    r.rack = KSTR_NULL;
    mrecord rec = {KMETA_REGISTER_BROKER_RECORD, 0, &r};
    CHECK(mimage_apply(img, &rec) == 0, "register %d", id);
}

static void fence(mimage *img, int32_t id) {
    const mbroker *br = mimage_broker(img, id);
    FenceBrokerRecord f;
    FenceBrokerRecord_init(&f);
    f.id = id;
    f.epoch = br ? br->epoch : 0;
    mrecord rec = {KMETA_FENCE_BROKER_RECORD, 0, &f};
    mimage_apply(img, &rec);
}

static kuuid topic_id(int n) {
    kuuid id;
    memset(&id, 0, sizeof id);
    id.b[0] = 0x42;
    id.b[15] = (uint8_t)n;
    return id;
}

static void add_topic(mimage *img, int n, int nparts, const int32_t *replicas, int rf) {
    char name[16];
    snprintf(name, sizeof name, "t%d", n);
    TopicRecord tr;
    TopicRecord_init(&tr);
    tr.name = kstr_from(name);
    tr.topic_id = topic_id(n);
    mrecord rec = {KMETA_TOPIC_RECORD, 0, &tr};
    CHECK(mimage_apply(img, &rec) == 0, "topic %d", n);
    for (int p = 0; p < nparts; p++) {
        PartitionRecord pr;
        PartitionRecord_init(&pr);
        pr.partition_id = p;
        pr.topic_id = tr.topic_id;
        pr.replicas = (int32_t *)&replicas[p * rf];
        pr.replicas_count = rf;
        pr.isr = (int32_t *)&replicas[p * rf];
        pr.isr_count = rf;
        pr.leader = replicas[p * rf];
        pr.leader_epoch = 0;
        pr.partition_epoch = 0;
        mrecord prec = {KMETA_PARTITION_RECORD, 0, &pr};
        CHECK(mimage_apply(img, &prec) == 0, "partition %d-%d", n, p);
    }
}

/* Run the controller until it changes nothing; returns the rounds taken. */
static int settle(mimage *img, bool unclean) {
    for (int round = 0; round < 10; round++) {
        karena a;
        karena_init(&a, 0);
        mrecord recs[256];
        int n = ctl_leadership_changes(img, unclean, recs, 256, &a);
        for (int i = 0; i < n; i++) CHECK(mimage_apply(img, &recs[i]) == 0, "change applies");
        karena_free(&a);
        if (n == 0) return round;
    }
    return -1;
}

static const mpartition *part(const mimage *img, int t, int p) {
    kuuid id = topic_id(t);
    const mtopic *mt = mimage_topic_by_id(img, &id);
    return mt && p < mt->nparts ? &mt->parts[p] : NULL;
}

/* ---- direct cases ---- */

static void test_registry(void) {
    mimage *img = mimage_new(1);
    register_broker(img, 3, 30, false);
    register_broker(img, 1, 10, false);
    register_broker(img, 2, 20, true);
    CHECK(img->nbrokers == 3 && img->brokers[0].id == 1 && img->brokers[2].id == 3, "sorted by id");
    CHECK(mimage_broker_alive(img, 1) && !mimage_broker_alive(img, 2), "fenced at registration");
    const mendpoint *e = mbroker_endpoint(mimage_broker(img, 3), "PLAINTEXT");
    CHECK(e && e->port == 9094 && strcmp(e->host, "127.0.0.1") == 0, "endpoint kept");
    fence(img, 1);
    CHECK(!mimage_broker_alive(img, 1), "fenced");
    /* a fence of an older epoch leaves a newer registration alone */
    register_broker(img, 1, 11, false);
    FenceBrokerRecord f;
    FenceBrokerRecord_init(&f);
    f.id = 1;
    f.epoch = 10;
    mrecord rec = {KMETA_FENCE_BROKER_RECORD, 0, &f};
    mimage_apply(img, &rec);
    CHECK(mimage_broker_alive(img, 1), "stale fence ignored");
    UnregisterBrokerRecord u;
    UnregisterBrokerRecord_init(&u);
    u.broker_id = 2;
    mrecord urec = {KMETA_UNREGISTER_BROKER_RECORD, 0, &u};
    CHECK(mimage_apply(img, &urec) == 0 && !mimage_broker(img, 2) && img->nbrokers == 2, "unregistered");
    mimage_free(img);
}

static void test_single_replica(void) {
    mimage *img = mimage_new(1);
    for (int b = 1; b <= 3; b++) register_broker(img, b, b, false);
    int32_t reps[3] = {1, 2, 3};
    add_topic(img, 1, 3, reps, 1);
    CHECK(settle(img, false) == 0, "nothing to do while all live");
    fence(img, 2);
    CHECK(settle(img, false) == 1, "one round");
    const mpartition *p = part(img, 1, 1);
    CHECK(p->leader == -1 && p->nisr == 1 && p->isr[0] == 2, "leader none, last ISR member kept");
    CHECK(p->leader_epoch == 1, "epoch bumped: %d", p->leader_epoch);
    CHECK(part(img, 1, 0)->leader == 1 && part(img, 1, 2)->leader == 3, "others untouched");
    register_broker(img, 2, 7, false); /* back with a new epoch */
    settle(img, false);
    CHECK(p->leader == 2 && p->leader_epoch == 2, "leads again at a new epoch");
    mimage_free(img);
}

static void test_three_replicas(void) {
    mimage *img = mimage_new(1);
    for (int b = 1; b <= 3; b++) register_broker(img, b, b, false);
    int32_t reps[3] = {1, 2, 3};
    add_topic(img, 1, 1, reps, 3);
    fence(img, 1);
    settle(img, false);
    const mpartition *p = part(img, 1, 0);
    CHECK(p->leader == 2, "next ISR member leads: %d", p->leader);
    CHECK(p->nisr == 2 && p->isr[0] == 2 && p->isr[1] == 3, "dead leader leaves the ISR");
    register_broker(img, 1, 8, false);
    settle(img, false);
    CHECK(p->leader == 2 && p->nisr == 2, "a returning replica rejoins only through the leader");
    fence(img, 3);
    settle(img, false);
    CHECK(p->leader == 2 && p->leader_epoch == 1 && p->nisr == 1 && p->isr[0] == 2,
          "a dead follower leaves the ISR at once, the leader epoch stays: epoch %d", p->leader_epoch);
    register_broker(img, 3, 10, false);
    fence(img, 1);
    fence(img, 2);
    fence(img, 3);
    settle(img, false);
    /* both fenced in one image: the last leader is the member kept */
    CHECK(p->leader == -1 && p->nisr == 1 && p->isr[0] == 2, "last leader kept, no leader");
    register_broker(img, 1, 11, false); /* out of the ISR: clean election cannot pick it */
    settle(img, false);
    CHECK(p->leader == -1, "no unclean election");
    settle(img, true);
    CHECK(p->leader == 1 && p->nisr == 1 && p->isr[0] == 1, "unclean: an alive replica, ISR restarts with it");
    mimage_free(img);
}

/* ---- simulation ---- */

static uint64_t rng;
static uint32_t next_rand(uint32_t bound) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % bound);
}

typedef struct snap {
    int32_t leader, leader_epoch, partition_epoch;
    int32_t isr[8];
    int nisr;
} snap;

static int simulate(uint64_t seed, int steps) {
    int before = failed;
    rng = seed * 2654435761u + 1;
    int nb = 3 + (int)next_rand(3);
    bool unclean = next_rand(4) == 0;
    mimage *img = mimage_new(1);
    int64_t epoch = 1;
    for (int b = 1; b <= nb; b++) register_broker(img, b, epoch++, false);
    int ntopics = 1 + (int)next_rand(3);
    snap prev[4][8];
    int nparts[4];
    for (int t = 0; t < ntopics; t++) {
        int rf = 1 + (int)next_rand(3);
        nparts[t] = 1 + (int)next_rand(8);
        int32_t reps[64];
        for (int p = 0; p < nparts[t]; p++) {
            int start = (int)next_rand((uint32_t)nb);
            for (int r = 0; r < rf; r++) reps[p * rf + r] = 1 + (start + r) % nb;
        }
        add_topic(img, t, nparts[t], reps, rf);
    }
    for (int step = 0; step < steps && failed == before; step++) {
        for (int t = 0; t < ntopics; t++)
            for (int p = 0; p < nparts[t]; p++) {
                const mpartition *mp = part(img, t, p);
                snap *s = &prev[t][p];
                s->leader = mp->leader;
                s->leader_epoch = mp->leader_epoch;
                s->partition_epoch = mp->partition_epoch;
                s->nisr = mp->nisr;
                memcpy(s->isr, mp->isr, sizeof(int32_t) * (size_t)mp->nisr);
            }
        int32_t b = 1 + (int32_t)next_rand((uint32_t)nb);
        if (mimage_broker_alive(img, b)) fence(img, b);
        else register_broker(img, b, epoch++, false);
        CHECK(settle(img, unclean) >= 0, "seed %llu: controller settles", (unsigned long long)seed);
        for (int t = 0; t < ntopics; t++)
            for (int p = 0; p < nparts[t]; p++) {
                const mpartition *mp = part(img, t, p);
                const snap *s = &prev[t][p];
                bool in_isr = false, any_alive = false, was_isr = false;
                for (int i = 0; i < mp->nisr; i++) {
                    if (mp->isr[i] == mp->leader) in_isr = true;
                    if (mimage_broker_alive(img, mp->isr[i])) any_alive = true;
                    bool replica = false;
                    for (int r = 0; r < mp->nreplicas; r++)
                        if (mp->replicas[r] == mp->isr[i]) replica = true;
                    CHECK(replica, "seed %llu step %d: ISR member %d is a replica", (unsigned long long)seed, step,
                          mp->isr[i]);
                }
                for (int i = 0; i < s->nisr; i++)
                    if (s->isr[i] == mp->leader) was_isr = true;
                CHECK(mp->nisr >= 1, "seed %llu step %d: ISR never empty", (unsigned long long)seed, step);
                CHECK(mp->leader == -1 || (in_isr && mimage_broker_alive(img, mp->leader)),
                      "seed %llu step %d t%d-%d: leader %d alive and in ISR", (unsigned long long)seed, step, t, p,
                      mp->leader);
                CHECK(mp->leader_epoch >= s->leader_epoch && mp->partition_epoch >= s->partition_epoch,
                      "seed %llu step %d: epochs monotonic", (unsigned long long)seed, step);
                CHECK((mp->leader != s->leader) == (mp->leader_epoch > s->leader_epoch),
                      "seed %llu step %d t%d-%d: leader epoch moves with the leader (%d->%d, %d->%d)",
                      (unsigned long long)seed, step, t, p, s->leader, mp->leader, s->leader_epoch,
                      mp->leader_epoch);
                CHECK(unclean || mp->leader == -1 || mp->leader == s->leader || was_isr,
                      "seed %llu step %d: clean election picks from the ISR", (unsigned long long)seed, step);
                CHECK(!any_alive || mp->leader != -1, "seed %llu step %d t%d-%d: available when an ISR member lives",
                      (unsigned long long)seed, step, t, p);
            }
    }
    mimage_free(img);
    return failed == before ? 0 : -1;
}

int main(int argc, char **argv) {
    test_registry();
    test_single_replica();
    test_three_replicas();
    int seeds = argc > 1 ? atoi(argv[1]) : 2000;
    int bad = 0;
    for (int s = 1; s <= seeds && bad < 3; s++)
        if (simulate((uint64_t)s, 200) != 0) bad++;
    printf("test_controller: %d passed, %d failed (%d simulated seeds x 200 steps)\n", passed, failed, seeds);
    return failed ? 1 : 0;
}
