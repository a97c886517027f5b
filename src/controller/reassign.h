/* reassign.h - partition reassignment as Kafka 3.6.1's KRaft controller
 * does it (ReplicationControlManager.alterPartitionReassignments /
 * listPartitionReassignments, PartitionReassignmentReplicas,
 * PartitionReassignmentRevert, PartitionChangeBuilder).
 *
 * A reassignment goes through three stages:
 *  1. a PartitionChangeRecord puts every target replica into the
 *     assignment (replicas = target + the current ones being removed) and
 *     records adding_replicas (target - current) and removing_replicas
 *     (current - target), both sorted;
 *  2. the added replicas fetch from the leader until the leader takes them
 *     into the ISR;
 *  3. once every adding replica is in the ISR (and one not being removed
 *     is), a second record sets replicas = target, drops the removed ones
 *     from the ISR, clears adding/removing, and elects another leader if
 *     the leader was removed.
 * A reassignment whose target needs no new replica (a reordering, a
 * shrink) completes in its first record. Cancelling reverts: the adding
 * replicas leave the assignment and the ISR.
 *
 * Pure: no I/O, no clock. Records and their arrays live in the arena.
 */
#ifndef SAMSA_REASSIGN_H
#define SAMSA_REASSIGN_H

#include <stdbool.h>

#include "metadata/image.h"
#include "util/arena.h"

struct PartitionChangeRecord;

/* Is a reassignment of p in progress (adding or removing replicas)? */
bool rsg_in_progress(const mpartition *p);

/* ReplicationControlManager.alterPartitionReassignment for one partition:
 * target (ntarget ids) is the new assignment, or NULL to cancel.
 * unclean_allowed: unclean.leader.election.enable for the topic (a cancel
 * that leaves no ISR member needs it, as Kafka's revert does).
 * Returns KERR_NONE with *out the change, or *out NULL when nothing needs
 * to change; else the error with *msg set to Kafka's message:
 *  - UNKNOWN_TOPIC_OR_PARTITION "Unable to find a topic named t." /
 *    "Unable to find partition t:9.";
 *  - INVALID_REPLICA_ASSIGNMENT for an empty list, an unregistered broker,
 *    a broker named twice ("The manual partition assignment includes ...");
 *  - NO_REASSIGNMENT_IN_PROGRESS for a cancel with none. */
int16_t rsg_alter(const mimage *img, kstr topic, int32_t partition, const int32_t *target, int32_t ntarget,
                  bool unclean_allowed, struct PartitionChangeRecord **out, const char **msg, karena *a);

/* The controller's step 3 (PartitionChangeBuilder's
 * completeReassignmentIfNeeded): for every reassignment whose adding
 * replicas are all in the ISR, the record that completes it. At most max
 * records, grouped by topic; returns how many were written to out. */
int rsg_completions(const mimage *img, mrecord *out, int max, karena *a);

#endif
