/* test_elections.c - the controller's elections on request, leader
 * balancing and controlled shutdown (controller/controller.c: ctl_elect_leader,
 * ctl_balance_leaders, ctl_controlled_shutdown), case by case against
 * Kafka 3.6.1's ReplicationControlManager / PartitionChangeBuilder, then a
 * seeded simulation: brokers die, return and shut down in a controlled way
 * while the liveness controller and the balancer run, checking after every
 * step that
 *   - a leader is always an alive member of its ISR (or -1), the ISR never
 *     empty and made of replicas;
 *   - a controlled shutdown leaves the broker leading only partitions no
 *     other alive ISR member could take, and in no ISR with another member;
 *   - once every broker is back and the balancer has settled, every
 *     partition is led by its preferred replica.
 *
 * Run: make build/tests/test_elections && build/tests/test_elections [seeds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/controller.h"
#include "metadata/image.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#include "unit_check.h"

/* ---- building an image ---- */

static void register_broker(mimage *img, int32_t id, int64_t epoch) {
    RegisterBrokerRecord r;
    RegisterBrokerRecord_init(&r);
    r.broker_id = id;
    r.broker_epoch = epoch;
    r.fenced = false;
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
    id.b[0] = 0x17;
    id.b[15] = (uint8_t)n;
    return id;
}

/* Topic n with one partition: replicas, isr, leader as given. */
static void add_partition(mimage *img, int n, const int32_t *replicas, int nr, const int32_t *isr, int ni,
                          int32_t leader) {
    char name[16];
    snprintf(name, sizeof name, "t%d", n);
    TopicRecord tr;
    TopicRecord_init(&tr);
    tr.name = kstr_from(name);
    tr.topic_id = topic_id(n);
    mrecord rec = {KMETA_TOPIC_RECORD, 0, &tr};
    CHECK(mimage_apply(img, &rec) == 0, "topic %d", n);
    PartitionRecord pr;
    PartitionRecord_init(&pr);
    pr.partition_id = 0;
    pr.topic_id = tr.topic_id;
    pr.replicas = (int32_t *)replicas;
    pr.replicas_count = nr;
    pr.isr = (int32_t *)isr;
    pr.isr_count = ni;
    pr.leader = leader;
    pr.leader_epoch = 5;
    pr.partition_epoch = 7;
    mrecord prec = {KMETA_PARTITION_RECORD, 0, &pr};
    CHECK(mimage_apply(img, &prec) == 0, "partition %d", n);
}

static const mtopic *topic(const mimage *img, int n) {
    kuuid id = topic_id(n);
    return mimage_topic_by_id(img, &id);
}

static const mpartition *part(const mimage *img, int n) {
    const mtopic *t = topic(img, n);
    return t && t->nparts ? &t->parts[0] : NULL;
}

static mimage *three_brokers(void) {
    mimage *img = mimage_new(1);
    for (int id = 1; id <= 3; id++) register_broker(img, id, 10 * id);
    return img;
}

/* ---- ctl_elect_leader ---- */

static int16_t elect(mimage *img, int n, int8_t type, PartitionChangeRecord **r, karena *a) {
    return ctl_elect_leader(img, topic(img, n), part(img, n), type, r, a);
}

static void test_preferred(void) {
    mimage *img = three_brokers();
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const int32_t rep[] = {1, 2, 3};
    /* 1: preferred leads already */
    add_partition(img, 1, rep, 3, rep, 3, 1);
    CHECK(elect(img, 1, CTL_ELECTION_PREFERRED, &r, &a) == KERR_ELECTION_NOT_NEEDED && !r, "preferred leads");
    /* 2: 2 leads, 1 alive and in the ISR: 1 again, epoch bump only via leader */
    add_partition(img, 2, rep, 3, rep, 3, 2);
    CHECK(elect(img, 2, CTL_ELECTION_PREFERRED, &r, &a) == KERR_NONE && r && r->leader == 1 && r->isr_count == -1,
          "moves to the preferred replica");
    if (r) {
        mrecord rec = {KMETA_PARTITION_CHANGE_RECORD, 0, r};
        CHECK(mimage_apply(img, &rec) == 0 && part(img, 2)->leader == 1 && part(img, 2)->leader_epoch == 6,
              "applies with a new leader epoch");
    }
    /* 3: preferred not in the ISR, the leader valid: not available */
    const int32_t isr23[] = {2, 3};
    add_partition(img, 3, rep, 3, isr23, 2, 2);
    CHECK(elect(img, 3, CTL_ELECTION_PREFERRED, &r, &a) == KERR_PREFERRED_LEADER_NOT_AVAILABLE && !r,
          "preferred out of the ISR");
    /* 4: preferred fenced */
    add_partition(img, 4, rep, 3, rep, 3, 3);
    fence(img, 1);
    CHECK(elect(img, 4, CTL_ELECTION_PREFERRED, &r, &a) == KERR_PREFERRED_LEADER_NOT_AVAILABLE, "preferred fenced");
    /* 5: no leader, preferred fenced: the next alive ISR member in assignment order */
    add_partition(img, 5, rep, 3, rep, 3, -1);
    CHECK(elect(img, 5, CTL_ELECTION_PREFERRED, &r, &a) == KERR_NONE && r && r->leader == 2,
          "next valid replica when there is no leader");
    /* 6: no leader and nobody valid */
    const int32_t isr1[] = {1};
    add_partition(img, 6, rep, 3, isr1, 1, -1);
    CHECK(elect(img, 6, CTL_ELECTION_PREFERRED, &r, &a) == KERR_PREFERRED_LEADER_NOT_AVAILABLE, "nobody valid");
    CHECK(elect(img, 6, 7, &r, &a) == KERR_INVALID_REQUEST, "unknown election type");
    /* one replica: it leads, nothing to do (a single node) */
    const int32_t one[] = {2};
    add_partition(img, 7, one, 1, one, 1, 2);
    CHECK(elect(img, 7, CTL_ELECTION_PREFERRED, &r, &a) == KERR_ELECTION_NOT_NEEDED, "single replica");
    karena_free(&a);
    mimage_free(img);
}

static void test_unclean(void) {
    mimage *img = three_brokers();
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const int32_t rep[] = {1, 2, 3};
    add_partition(img, 1, rep, 3, rep, 3, 2);
    CHECK(elect(img, 1, CTL_ELECTION_UNCLEAN, &r, &a) == KERR_ELECTION_NOT_NEEDED, "a leader: not needed");
    /* no leader, ISR {1} fenced: unclean picks the first alive replica, ISR = it */
    const int32_t isr1[] = {1};
    add_partition(img, 2, rep, 3, isr1, 1, -1);
    fence(img, 1);
    CHECK(elect(img, 2, CTL_ELECTION_UNCLEAN, &r, &a) == KERR_NONE && r && r->leader == 2 && r->isr_count == 1 &&
              r->isr[0] == 2,
          "unclean leader with the ISR reset");
    /* no leader, an alive ISR member: clean choice, ISR untouched */
    const int32_t isr13[] = {1, 3};
    add_partition(img, 3, rep, 3, isr13, 2, -1);
    CHECK(elect(img, 3, CTL_ELECTION_UNCLEAN, &r, &a) == KERR_NONE && r && r->leader == 3 && r->isr_count == -1,
          "clean when possible");
    /* nobody alive */
    fence(img, 2);
    fence(img, 3);
    add_partition(img, 4, rep, 3, isr1, 1, -1);
    CHECK(elect(img, 4, CTL_ELECTION_UNCLEAN, &r, &a) == KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE, "nobody alive");
    karena_free(&a);
    mimage_free(img);
}

/* ---- ctl_balance_leaders ---- */

static void test_balance(void) {
    mimage *img = three_brokers();
    karena a;
    karena_init(&a, 0);
    const int32_t r123[] = {1, 2, 3}, r231[] = {2, 3, 1}, r312[] = {3, 1, 2}, isr23[] = {2, 3};
    add_partition(img, 1, r123, 3, r123, 3, 2);  /* 1 is back in the ISR: moves */
    add_partition(img, 2, r231, 3, r231, 3, 2);  /* balanced */
    add_partition(img, 3, r312, 3, r312, 3, 1);  /* moves to 3 */
    add_partition(img, 4, r123, 3, isr23, 2, 2); /* 1 not in the ISR: stays */
    CHECK(ctl_leaders_imbalanced(img), "imbalanced");
    mrecord recs[8];
    bool more;
    int n = ctl_balance_leaders(img, recs, 8, &more, &a);
    CHECK(n == 2 && !more, "two moves, got %d", n);
    for (int i = 0; i < n; i++) CHECK(mimage_apply(img, &recs[i]) == 0, "applies");
    CHECK(part(img, 1)->leader == 1 && part(img, 3)->leader == 3 && part(img, 4)->leader == 2, "preferred leaders");
    n = ctl_balance_leaders(img, recs, 8, &more, &a);
    CHECK(n == 0 && ctl_leaders_imbalanced(img), "nothing more; t4 stays imbalanced");
    /* the cap: one at a time */
    mimage *img2 = three_brokers();
    add_partition(img2, 1, r123, 3, r123, 3, 3);
    add_partition(img2, 2, r123, 3, r123, 3, 2);
    n = ctl_balance_leaders(img2, recs, 1, &more, &a);
    CHECK(n == 1 && more, "capped with more");
    karena_free(&a);
    mimage_free(img);
    mimage_free(img2);
}

/* ---- ctl_controlled_shutdown ---- */

static void test_controlled_shutdown(void) {
    mimage *img = three_brokers();
    karena a;
    karena_init(&a, 0);
    const int32_t r123[] = {1, 2, 3}, r213[] = {2, 1, 3}, one[] = {1}, r12[] = {1, 2}, isr1[] = {1};
    add_partition(img, 1, r123, 3, r123, 3, 1); /* leads: 2 takes over, ISR {2,3} */
    add_partition(img, 2, r213, 3, r213, 3, 2); /* follower: leaves the ISR */
    add_partition(img, 3, one, 1, one, 1, 1);   /* only replica: keeps it */
    add_partition(img, 4, r12, 2, isr1, 1, 1);  /* only ISR member: keeps it */
    const int32_t r132[] = {1, 3, 2};
    add_partition(img, 5, r132, 3, r132, 3, 1); /* 3 before 2 in the assignment */
    fence(img, 3);
    mrecord recs[8];
    int n = ctl_controlled_shutdown(img, 1, recs, 8, &a);
    CHECK(n == 3, "three changes, got %d", n);
    for (int i = 0; i < n; i++) CHECK(mimage_apply(img, &recs[i]) == 0, "applies");
    const mpartition *p1 = part(img, 1), *p2 = part(img, 2), *p3 = part(img, 3), *p4 = part(img, 4),
                     *p5 = part(img, 5);
    CHECK(p1->leader == 2 && p1->nisr == 2 && p1->isr[0] == 2 && p1->isr[1] == 3, "t1 moved to 2");
    CHECK(p2->leader == 2 && p2->leader_epoch == 5 && p2->nisr == 2 && p2->isr[0] == 2 && p2->isr[1] == 3,
          "t2: 1 left the ISR, same leader epoch");
    CHECK(p3->leader == 1 && p3->nisr == 1, "t3 kept");
    CHECK(p4->leader == 1 && p4->nisr == 1, "t4 kept");
    CHECK(p5->leader == 2 && p5->nisr == 2, "t5: 3 is fenced, 2 takes over");
    CHECK(ctl_controlled_shutdown(img, 1, recs, 8, &a) == 0, "nothing left");
    /* the balancer does not give leadership back: 1 is out of the ISRs */
    bool more;
    CHECK(ctl_balance_leaders(img, recs, 8, &more, &a) == 0, "no balancing back");
    karena_free(&a);
    mimage_free(img);
}

/* ---- simulation ---- */

static uint64_t rng;
static uint32_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

#define NB 4
#define NT 12

static void apply_all(mimage *img, const mrecord *recs, int n) {
    for (int i = 0; i < n; i++) CHECK(mimage_apply(img, &recs[i]) == 0, "change applies");
}

static void check_invariants(const mimage *img, uint64_t seed, int step) {
    for (int t = 0; t < img->ntopics; t++)
        for (int i = 0; i < img->topics[t]->nparts; i++) {
            const mpartition *p = &img->topics[t]->parts[i];
            bool leader_ok = p->leader == -1;
            for (int k = 0; k < p->nisr; k++) {
                bool is_replica = false;
                for (int j = 0; j < p->nreplicas; j++) is_replica |= p->replicas[j] == p->isr[k];
                CHECK(is_replica, "seed %llu step %d: ISR member %d is a replica", (unsigned long long)seed, step,
                      p->isr[k]);
                if (p->isr[k] == p->leader) leader_ok = true;
            }
            CHECK(p->nisr > 0, "seed %llu step %d: ISR not empty", (unsigned long long)seed, step);
            CHECK(leader_ok, "seed %llu step %d: leader %d in the ISR", (unsigned long long)seed, step, p->leader);
        }
}

static int settle(mimage *img, karena *a) {
    mrecord recs[64];
    for (int round = 0; round < 20; round++) {
        int n = ctl_leadership_changes(img, false, recs, 64, a);
        apply_all(img, recs, n);
        if (n == 0) return 0;
    }
    return -1;
}

static void simulate(uint64_t seed, int steps) {
    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    mimage *img = mimage_new(1);
    int64_t epoch = 100;
    for (int id = 1; id <= NB; id++) register_broker(img, id, epoch++);
    for (int t = 0; t < NT; t++) {
        int32_t rep[3];
        int first = (int)(next_rand() % NB);
        for (int k = 0; k < 3; k++) rep[k] = 1 + (first + k) % NB;
        add_partition(img, t, rep, 3, rep, 3, rep[0]);
    }
    karena a;
    karena_init(&a, 0);
    mrecord recs[64];
    for (int step = 0; step < steps; step++) {
        int32_t id = 1 + (int32_t)(next_rand() % NB);
        switch (next_rand() % 4) {
        case 0: /* dies */
            fence(img, id);
            break;
        case 1: /* returns (its replicas caught up: back into the ISRs) */
            if (!mimage_broker_alive(img, id)) register_broker(img, id, epoch++);
            break;
        case 2: { /* controlled shutdown, then it is gone */
            if (!mimage_broker_alive(img, id)) break;
            int n, rounds = 0;
            while ((n = ctl_controlled_shutdown(img, id, recs, 64, &a)) > 0 && rounds++ < 10) apply_all(img, recs, n);
            CHECK(n == 0, "seed %llu step %d: controlled shutdown settles", (unsigned long long)seed, step);
            for (int t = 0; t < img->ntopics; t++) {
                const mpartition *p = &img->topics[t]->parts[0];
                bool member = false;
                for (int k = 0; k < p->nisr; k++) member |= p->isr[k] == id;
                bool other_valid = false;
                for (int k = 0; k < p->nisr; k++)
                    other_valid |= p->isr[k] != id && mimage_broker_alive(img, p->isr[k]);
                CHECK(!member || !other_valid, "seed %llu step %d: broker %d left every ISR it could leave",
                      (unsigned long long)seed, step, id);
                CHECK(p->leader != id || !other_valid, "seed %llu step %d: %d leads only what nobody else can",
                      (unsigned long long)seed, step, id);
            }
            fence(img, id);
            break;
        }
        default: { /* the balancer */
            bool more;
            int n = ctl_balance_leaders(img, recs, 64, &more, &a);
            apply_all(img, recs, n);
            break;
        }
        }
        CHECK(settle(img, &a) == 0, "seed %llu step %d: settles", (unsigned long long)seed, step);
        check_invariants(img, seed, step);
        karena_free(&a);
        karena_init(&a, 0);
    }
    /* everyone back, full ISRs again (replication caught up): balanced */
    for (int id = 1; id <= NB; id++)
        if (!mimage_broker_alive(img, id)) register_broker(img, id, epoch++);
    for (int t = 0; t < img->ntopics; t++) {
        const mpartition *p = &img->topics[t]->parts[0];
        PartitionChangeRecord r;
        PartitionChangeRecord_init(&r);
        r.topic_id = img->topics[t]->id;
        r.partition_id = 0;
        r.isr = p->replicas;
        r.isr_count = p->nreplicas;
        mrecord rec = {KMETA_PARTITION_CHANGE_RECORD, 0, &r};
        CHECK(mimage_apply(img, &rec) == 0, "ISR expands");
    }
    CHECK(settle(img, &a) == 0, "settles");
    bool more;
    int n = ctl_balance_leaders(img, recs, 64, &more, &a);
    apply_all(img, recs, n);
    CHECK(!ctl_leaders_imbalanced(img), "seed %llu: balanced at the end", (unsigned long long)seed);
    karena_free(&a);
    mimage_free(img);
}

int main(int argc, char **argv) {
    test_preferred();
    test_unclean();
    test_balance();
    test_controlled_shutdown();
    int seeds = argc > 1 ? atoi(argv[1]) : 500;
    for (int s = 1; s <= seeds && failed < 10; s++) simulate((uint64_t)s, 100);
    printf("test_elections: %d passed, %d failed (%d simulated seeds x 100 steps)\n", passed, failed, seeds);
    return failed ? 1 : 0;
}
