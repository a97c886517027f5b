/* replica_manager.h - the replicas this node holds, in their roles (Kafka
 * 3.6.1's ReplicaManager with its fetcher threads and DelayedProduce
 * purgatory, on the event loop).
 *
 * Leader: tracks each follower from its fetches (partition_repl.h), moves
 * the high watermark, completes acks=all waiters when it passes their
 * offset, and changes the ISR (shrink after replica.lag.time.max.ms, expand
 * once caught up) as a PartitionChangeRecord committed through the metadata
 * store: the store's compare-and-set on the topic is the fence (a leader
 * that lost its epoch cannot change anything).
 * Follower: one fetcher per source broker sends Fetch v15 with ReplicaState
 * {node id, broker epoch} for all partitions it follows there, appends what
 * comes exactly as the leader wrote it, truncates where the leader reports a
 * DivergingEpoch, and takes the leader's high watermark.
 *
 * The pure decisions live in partition_repl.c and truncation.c; this file
 * does the I/O. One broker per process (module state is static).
 */
#ifndef SAMSA_REPLICA_MANAGER_H
#define SAMSA_REPLICA_MANAGER_H

#include "broker/broker.h"

void rm_init(broker *b);
/* Stops the fetchers and answers every waiter (NOT_LEADER_OR_FOLLOWER). */
void rm_shutdown(broker *b);

/* Set up the replication state of a partition just opened (its log is at
 * LEO; hw from the replication-offset-checkpoint, -1 if none). */
void rm_partition_opened(broker *b, partition *p, int64_t checkpoint_hw);
/* The image's state of p (leader, epochs, replicas, ISR) may have changed:
 * become leader or follower as it says. */
void rm_partition_follow(broker *b, partition *p, const mpartition *mp);
/* p is about to be freed: forget it, answer its waiters. */
void rm_partition_close(broker *b, partition *p);

/* The leader appended to p (its LEO moved). */
void rm_leader_appended(broker *b, partition *p);

/* Leader side of a follower's Fetch (ReplicaManager.updateFollowerFetchState):
 * replica_id fetched p at fetch_offset with its log start and broker epoch
 * (-1 unknown). Returns a Kafka error for the partition, or KERR_NONE. */
int16_t rm_follower_fetched(broker *b, partition *p, int32_t replica_id, int64_t replica_epoch, int64_t fetch_offset,
                            int64_t log_start_offset);

/* Replication throttles (leader.replication.throttled.rate and the topic's
 * leader.replication.throttled.replicas): whether a read for this follower
 * must return nothing now, and the bytes sent to it. */
bool rm_leader_throttled(broker *b, partition *p, int32_t replica_id);
void rm_leader_sent(broker *b, partition *p, int32_t replica_id, int64_t bytes);

/* Counters for tests and DescribeLogDirs: the leader's view of how far a
 * replica is (-1 unknown), and whether p's ISR is complete. */
int64_t rm_replica_leo(const partition *p, int32_t replica_id);

#endif
