/* test_reassign.c - partition reassignment decisions (controller/reassign.c)
 * against Kafka 3.6.1's ReplicationControlManager / PartitionChangeBuilder /
 * PartitionReassignmentReplicas / PartitionReassignmentRevert cases: the
 * validation errors and messages, the record that starts a reassignment,
 * the controller's completion once the adding replicas are in the ISR
 * (the leader re-elected when it is removed), immediate completion of a
 * shrink or reordering, cancel (revert), and the image carrying the
 * adding/removing replicas.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/reassign.h"
#include "metadata/image.h"
#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"

#include "unit_check.h"

static void register_broker(mimage *img, int32_t id) {
    RegisterBrokerRecord r;
    RegisterBrokerRecord_init(&r);
    r.broker_id = id;
    r.broker_epoch = 10 * id;
    r.fenced = false;
    r.rack = KSTR_NULL;
    mrecord rec = {KMETA_REGISTER_BROKER_RECORD, 0, &r};
    CHECK(mimage_apply(img, &rec) == 0, "register %d", id);
}

static void fence(mimage *img, int32_t id) {
    FenceBrokerRecord f;
    FenceBrokerRecord_init(&f);
    f.id = id;
    f.epoch = 10 * id;
    mrecord rec = {KMETA_FENCE_BROKER_RECORD, 0, &f};
    mimage_apply(img, &rec);
}

static kuuid topic_id(void) {
    kuuid id;
    memset(&id, 0, sizeof id);
    id.b[0] = 0x42;
    return id;
}

/* Topic "t", partition 0 with replicas/isr/leader, on brokers 1..nb. */
static mimage *image(int nb, const int32_t *replicas, int nr, const int32_t *isr, int ni, int32_t leader) {
    mimage *img = mimage_new(1);
    for (int id = 1; id <= nb; id++) register_broker(img, id);
    TopicRecord tr;
    TopicRecord_init(&tr);
    tr.name = KSTR_LIT("t");
    tr.topic_id = topic_id();
    mrecord rec = {KMETA_TOPIC_RECORD, 0, &tr};
    CHECK(mimage_apply(img, &rec) == 0, "topic");
    PartitionRecord pr;
    PartitionRecord_init(&pr);
    pr.partition_id = 0;
    pr.topic_id = tr.topic_id;
    pr.replicas = (int32_t *)replicas;
    pr.replicas_count = nr;
    pr.isr = (int32_t *)isr;
    pr.isr_count = ni;
    pr.removing_replicas_count = 0;
    pr.adding_replicas_count = 0;
    pr.leader = leader;
    pr.leader_epoch = 5;
    pr.partition_epoch = 7;
    mrecord prec = {KMETA_PARTITION_RECORD, 0, &pr};
    CHECK(mimage_apply(img, &prec) == 0, "partition");
    return img;
}

static const mpartition *part(const mimage *img) { return &mimage_topic(img, KSTR_LIT("t"))->parts[0]; }

static bool list_is(const int32_t *v, int32_t n, const char *want) {
    char buf[128] = "";
    size_t at = 0;
    for (int i = 0; i < n; i++) at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%d", i ? "," : "", v[i]);
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "  got [%s], want [%s]\n", buf, want);
        return false;
    }
    return true;
}

static void apply(mimage *img, PartitionChangeRecord *r) {
    mrecord rec = {KMETA_PARTITION_CHANGE_RECORD, 0, r};
    CHECK(r && mimage_apply(img, &rec) == 0, "apply change");
}

/* An ISR change as the leader's AlterPartition would commit it. */
static void set_isr(mimage *img, const int32_t *isr, int n) {
    PartitionChangeRecord r;
    PartitionChangeRecord_init(&r);
    r.topic_id = topic_id();
    r.partition_id = 0;
    r.isr = (int32_t *)isr;
    r.isr_count = n;
    apply(img, &r);
}

static int16_t alter(mimage *img, const int32_t *target, int n, PartitionChangeRecord **r, const char **msg,
                     karena *a) {
    return rsg_alter(img, KSTR_LIT("t"), 0, target, n, false, r, msg, a);
}

static void test_validation(void) {
    const int32_t r1[] = {1};
    mimage *img = image(3, r1, 1, r1, 1, 1);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    CHECK(rsg_alter(img, KSTR_LIT("nope"), 0, r1, 1, false, &r, &msg, &a) == KERR_UNKNOWN_TOPIC_OR_PARTITION &&
              strcmp(msg, "Unable to find a topic named nope.") == 0,
          "unknown topic");
    CHECK(rsg_alter(img, KSTR_LIT("t"), 3, r1, 1, false, &r, &msg, &a) == KERR_UNKNOWN_TOPIC_OR_PARTITION &&
              strcmp(msg, "Unable to find partition t:3.") == 0,
          "unknown partition");
    CHECK(alter(img, r1, 0, &r, &msg, &a) == KERR_INVALID_REPLICA_ASSIGNMENT &&
              strcmp(msg, "The manual partition assignment includes an empty replica list.") == 0,
          "empty list");
    const int32_t r19[] = {9, 1};
    CHECK(alter(img, r19, 2, &r, &msg, &a) == KERR_INVALID_REPLICA_ASSIGNMENT &&
              strcmp(msg, "The manual partition assignment includes broker 9, but no such broker is registered.") == 0,
          "unregistered broker");
    const int32_t r2121[] = {2, 1, 2};
    CHECK(alter(img, r2121, 3, &r, &msg, &a) == KERR_INVALID_REPLICA_ASSIGNMENT &&
              strcmp(msg, "The manual partition assignment includes the broker 2 more than once.") == 0,
          "duplicate broker");
    CHECK(alter(img, NULL, -1, &r, &msg, &a) == KERR_NO_REASSIGNMENT_IN_PROGRESS && !r &&
              strcmp(msg, "No partition reassignment is in progress.") == 0,
          "cancel with none");
    /* the same assignment: nothing to change */
    CHECK(alter(img, r1, 1, &r, &msg, &a) == KERR_NONE && !r, "same assignment: no record");
    /* a fenced broker is still registered: accepted */
    fence(img, 3);
    const int32_t r13[] = {1, 3};
    CHECK(alter(img, r13, 2, &r, &msg, &a) == KERR_NONE && r, "fenced but registered");
    karena_free(&a);
    mimage_free(img);
}

/* RF 1 -> 3: adding 2,3; completes once both are in the ISR. */
static void test_grow(void) {
    const int32_t r1[] = {1};
    mimage *img = image(3, r1, 1, r1, 1, 1);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    const int32_t target[] = {1, 2, 3};
    CHECK(alter(img, target, 3, &r, &msg, &a) == KERR_NONE && r, "grow starts");
    CHECK(r && r->leader == -2 && r->isr_count == -1, "no leader or ISR change");
    CHECK(r && list_is(r->replicas, r->replicas_count, "1,2,3"), "replicas");
    CHECK(r && list_is(r->adding_replicas, r->adding_replicas_count, "2,3"), "adding");
    CHECK(r && r->removing_replicas_count == -1, "removing unchanged (empty)");
    apply(img, r);
    CHECK(rsg_in_progress(part(img)) && part(img)->leader_epoch == 5, "in progress, same leader epoch");
    mrecord out[4];
    CHECK(rsg_completions(img, out, 4, &a) == 0, "not complete before the ISR has them");
    const int32_t isr12[] = {1, 2};
    set_isr(img, isr12, 2);
    CHECK(rsg_completions(img, out, 4, &a) == 0, "not complete with one of two");
    const int32_t isr123[] = {1, 2, 3};
    set_isr(img, isr123, 3);
    CHECK(rsg_completions(img, out, 4, &a) == 1, "completes");
    PartitionChangeRecord *c = (PartitionChangeRecord *)out[0].data;
    CHECK(c->leader == -2 && c->isr_count == -1 && c->replicas_count == -1, "only the lists clear");
    CHECK(c->adding_replicas_count == 0 && c->removing_replicas_count == -1, "adding cleared");
    apply(img, c);
    CHECK(!rsg_in_progress(part(img)) && list_is(part(img)->replicas, part(img)->nreplicas, "1,2,3"), "done");
    CHECK(rsg_completions(img, out, 4, &a) == 0, "nothing more");
    karena_free(&a);
    mimage_free(img);
}

/* Move [1,2] -> [3,4] with leader 1: replicas 3,4,1,2; completion drops
 * 1,2 from replicas and ISR and elects 3 with a new leader epoch. */
static void test_move_leader(void) {
    const int32_t r12[] = {1, 2};
    mimage *img = image(4, r12, 2, r12, 2, 1);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    const int32_t target[] = {4, 3};
    CHECK(alter(img, target, 2, &r, &msg, &a) == KERR_NONE && r, "move starts");
    CHECK(r && list_is(r->replicas, r->replicas_count, "4,3,1,2"), "replicas = target + removing");
    CHECK(r && list_is(r->adding_replicas, r->adding_replicas_count, "3,4"), "adding sorted");
    CHECK(r && list_is(r->removing_replicas, r->removing_replicas_count, "1,2"), "removing sorted");
    CHECK(r && r->leader == -2, "no leader change while starting");
    apply(img, r);
    mrecord out[4];
    const int32_t isr123[] = {1, 2, 3};
    set_isr(img, isr123, 3);
    CHECK(rsg_completions(img, out, 4, &a) == 0, "4 not in the ISR yet");
    const int32_t isr1234[] = {1, 2, 3, 4};
    set_isr(img, isr1234, 4);
    CHECK(rsg_completions(img, out, 4, &a) == 1, "completes");
    PartitionChangeRecord *c = (PartitionChangeRecord *)out[0].data;
    CHECK(c->leader == 4, "the first target replica in the ISR leads (%d)", c->leader);
    CHECK(list_is(c->isr, c->isr_count, "3,4") && list_is(c->replicas, c->replicas_count, "4,3"), "isr, replicas");
    CHECK(c->adding_replicas_count == 0 && c->removing_replicas_count == 0, "lists cleared");
    int32_t epoch = part(img)->leader_epoch;
    apply(img, c);
    CHECK(part(img)->leader == 4 && part(img)->leader_epoch == epoch + 1 && !rsg_in_progress(part(img)),
          "applied: new leader, new epoch");
    karena_free(&a);
    mimage_free(img);
}

/* A shrink whose target is in the ISR completes in the first record,
 * with a leader epoch bump (a replica left the assignment). */
static void test_shrink_immediate(void) {
    const int32_t r123[] = {1, 2, 3};
    mimage *img = image(3, r123, 3, r123, 3, 2);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    const int32_t target[] = {2};
    CHECK(alter(img, target, 1, &r, &msg, &a) == KERR_NONE && r, "shrink");
    CHECK(r && r->leader == 2 && list_is(r->replicas, r->replicas_count, "2") && list_is(r->isr, r->isr_count, "2"),
          "completes at once, same leader with an epoch bump");
    CHECK(r && r->adding_replicas_count == -1 && r->removing_replicas_count == -1, "never in progress");
    /* reordering: completes at once without an epoch bump */
    const int32_t reorder[] = {3, 1, 2};
    CHECK(alter(img, reorder, 3, &r, &msg, &a) == KERR_NONE && r && r->leader == -2 &&
              list_is(r->replicas, r->replicas_count, "3,1,2") && r->isr_count == -1,
          "reorder");
    /* the leader removed: a new one from the remaining ISR */
    const int32_t target13[] = {3, 1};
    CHECK(alter(img, target13, 2, &r, &msg, &a) == KERR_NONE && r && r->leader == 3 &&
              list_is(r->isr, r->isr_count, "1,3"),
          "leader removed: 3 elected");
    karena_free(&a);
    mimage_free(img);
}

/* Cancel: adding replicas leave assignment and ISR; removing ones stay. */
static void test_cancel(void) {
    const int32_t r12[] = {1, 2};
    mimage *img = image(4, r12, 2, r12, 2, 1);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    const int32_t target[] = {3, 4};
    CHECK(alter(img, target, 2, &r, &msg, &a) == KERR_NONE && r, "start");
    apply(img, r);
    const int32_t isr123[] = {1, 2, 3};
    set_isr(img, isr123, 3);
    CHECK(alter(img, NULL, -1, &r, &msg, &a) == KERR_NONE && r, "cancel");
    CHECK(r && list_is(r->replicas, r->replicas_count, "1,2") && list_is(r->isr, r->isr_count, "1,2"),
          "reverted");
    CHECK(r && r->adding_replicas_count == 0 && r->removing_replicas_count == 0, "lists cleared");
    CHECK(r && r->leader == 1, "epoch bump (replicas left)");
    apply(img, r);
    CHECK(!rsg_in_progress(part(img)), "no longer in progress");
    /* a reassignment whose whole ISR is being added cannot revert cleanly */
    const int32_t r1[] = {1};
    mimage *img2 = image(3, r1, 1, r1, 1, 1);
    const int32_t t2[] = {2};
    CHECK(alter(img2, t2, 1, &r, &msg, &a) == KERR_NONE && r, "start 1 -> 2");
    apply(img2, r);
    const int32_t isr2[] = {2};
    set_isr(img2, isr2, 1); /* contrived: 1 left the ISR */
    CHECK(alter(img2, NULL, -1, &r, &msg, &a) == KERR_INVALID_REPLICA_ASSIGNMENT &&
              strcmp(msg, "Unable to revert partition assignment for t:0 because it would require an unclean "
                          "leader election.") == 0,
          "unclean revert refused");
    CHECK(rsg_alter(img2, KSTR_LIT("t"), 0, NULL, -1, true, &r, &msg, &a) == KERR_NONE && r &&
              list_is(r->isr, r->isr_count, "1") && list_is(r->replicas, r->replicas_count, "1"),
          "unclean revert allowed");
    mimage_free(img2);
    karena_free(&a);
    mimage_free(img);
}

/* A new reassignment over a running one starts from the current replicas
 * (which include the adding ones), as Kafka's changePartitionReassignment. */
static void test_replace(void) {
    const int32_t r1[] = {1};
    mimage *img = image(4, r1, 1, r1, 1, 1);
    karena a;
    karena_init(&a, 0);
    PartitionChangeRecord *r;
    const char *msg;
    const int32_t t2[] = {2};
    CHECK(alter(img, t2, 1, &r, &msg, &a) == KERR_NONE && r, "start 1 -> 2");
    apply(img, r);
    CHECK(list_is(part(img)->replicas, part(img)->nreplicas, "2,1"), "2,1");
    const int32_t t3[] = {3};
    CHECK(alter(img, t3, 1, &r, &msg, &a) == KERR_NONE && r, "then 3");
    CHECK(r && list_is(r->replicas, r->replicas_count, "3,1,2") &&
              list_is(r->removing_replicas, r->removing_replicas_count, "1,2") &&
              list_is(r->adding_replicas, r->adding_replicas_count, "3"),
          "target + removing (1,2)");
    karena_free(&a);
    mimage_free(img);
}

int main(void) {
    test_validation();
    test_grow();
    test_move_leader();
    test_shrink_immediate();
    test_cancel();
    test_replace();
    printf("test_reassign: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
