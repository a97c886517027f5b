/* partition_repl.h - the leader's view of one replicated partition (Kafka
 * 3.6.1's kafka.cluster.Partition and Replica, the replication part).
 *
 * Pure logic: no I/O, no clock reads, no globals. The caller passes the time
 * (now_ms), the local log end offset after appends, the metadata it learns
 * (partition state, broker registrations) and the controller's answers to
 * AlterPartition; the functions say what changed (HW advanced, an ISR change
 * to send) and the caller does the I/O (sending AlterPartition, completing
 * delayed produces, persisting the leader epoch). One struct per partition.
 *
 * Kafka's PartitionState: the committed ISR (as the controller last
 * confirmed it) and, while an AlterPartition is in flight, a pending change.
 * The "maximal ISR" (KIP-497) is the committed ISR plus the replica a
 * pending expansion adds; a pending shrink keeps the committed ISR. The HW
 * and acks=all use the maximal ISR; min.insync.replicas at append time uses
 * the committed ISR, as Kafka does.
 */
#ifndef SAMSA_REPLICA_PARTITION_REPL_H
#define SAMSA_REPLICA_PARTITION_REPL_H

#include <stdbool.h>
#include <stdint.h>

#define PR_MAX_REPLICAS 16
#define PR_NO_EPOCH (-2) /* Kafka's Option.empty for a broker epoch */

/* Kafka's ReplicaState for a remote replica (kept only while leader). */
typedef struct pr_replica {
    int32_t id;
    int64_t leo;                   /* -1: unknown (UNKNOWN_OFFSET_METADATA) */
    int64_t log_start_offset;      /* -1: unknown */
    int64_t last_fetch_leader_leo; /* leader LEO at the time of its last fetch */
    int64_t last_fetch_ms;
    int64_t last_caught_up_ms;
    int64_t fetch_broker_epoch;    /* from its Fetch (ReplicaState.ReplicaEpoch); PR_NO_EPOCH none */
} pr_replica;

/* What the metadata cache says about a broker (for isReplicaIsrEligible). */
typedef struct pr_broker {
    int32_t id;
    bool alive;                    /* registered and unfenced */
    bool shutting_down;            /* controlled shutdown in progress */
    int64_t broker_epoch;          /* registered broker epoch */
} pr_broker;

typedef enum { PR_COMMITTED = 0, PR_PENDING_EXPAND, PR_PENDING_SHRINK } pr_state_kind;

/* An AlterPartition request to send (Kafka's LeaderAndIsr with BrokerState
 * epochs), or a controller answer to it. */
typedef struct pr_alter {
    uint64_t seq;             /* which proposal; answers carry it back */
    int32_t leader_id;
    int32_t leader_epoch;
    int32_t partition_epoch;  /* the version the change is based on / the new version */
    int nisr;
    int32_t isr[PR_MAX_REPLICAS];
    int64_t isr_broker_epochs[PR_MAX_REPLICAS]; /* -1: not checked (Kafka sends -1 when unknown) */
} pr_alter;

/* The partition state a metadata change (KRaft PartitionRecord /
 * PartitionChangeRecord, or LeaderAndIsr) carries. */
typedef struct pr_meta {
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int nreplicas;
    int32_t replicas[PR_MAX_REPLICAS];
    int nisr;
    int32_t isr[PR_MAX_REPLICAS];
} pr_meta;

typedef struct partition_repl {
    /* configuration */
    int32_t local_id;
    int64_t local_broker_epoch;
    int64_t replica_lag_time_max_ms; /* replica.lag.time.max.ms */
    int min_isr;                     /* min.insync.replicas */

    /* leadership */
    bool is_leader;
    int32_t leader_id;               /* -1 none */
    int32_t leader_epoch;            /* -1 before any */
    int32_t partition_epoch;         /* -1 before any */
    int64_t leader_epoch_start_offset; /* -1 unless leader */

    /* local log */
    int64_t leo;
    int64_t hw;

    /* assignment (remote replicas only in r[]) */
    int nreplicas;
    int32_t replicas[PR_MAX_REPLICAS];
    int nremote;
    pr_replica r[PR_MAX_REPLICAS];
    int nbrokers;
    pr_broker brokers[PR_MAX_REPLICAS]; /* metadata cache, any replica ids seen */

    /* PartitionState */
    int nisr;
    int32_t isr[PR_MAX_REPLICAS]; /* committed */
    pr_state_kind state;
    int32_t pending_expand_id;    /* PR_PENDING_EXPAND: the replica being added */
    pr_alter pending;             /* the request in flight */
    uint64_t next_seq;
} partition_repl;

/* Result of a follower fetch on the leader. */
typedef struct pr_fetch_result {
    int error;          /* KERR_NONE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH (not a replica) */
    bool hw_advanced;   /* complete delayed produces/fetches */
    bool propose;       /* an expansion was prepared: send *alter to the controller */
} pr_fetch_result;

/* A fresh partition hosted by local_id: no leader, epochs -1, the local log
 * at (leo, hw). */
void pr_init(partition_repl *p, int32_t local_id, int64_t local_broker_epoch, int64_t replica_lag_time_max_ms,
             int min_isr, int64_t leo, int64_t hw);

/* The metadata cache's view of broker id (Kafka's KRaftMetadataCache
 * isBrokerFenced / isBrokerShuttingDown / getAliveBrokerEpoch), used by
 * isReplicaIsrEligible. Unknown brokers are not alive; at most
 * PR_MAX_REPLICAS distinct ids are kept (more are ignored). */
void pr_set_broker(partition_repl *p, int32_t id, bool alive, bool shutting_down, int64_t broker_epoch);

/* Partition.makeLeader: m names the local broker leader. Returns -1 (and
 * changes nothing) when m.partition_epoch is older than the one known
 * (Kafka skips it); otherwise 1 if the local replica was not the leader
 * before, else 0. A new leader epoch starts at the current LEO: the caller
 * must assign (leader_epoch, leader_epoch_start_offset) in the epoch cache
 * (maybeAssignEpochStartOffset) before appending. Replica states are reset
 * (resetReplicaState); the ISR becomes m's and the HW may advance
 * (*hw_advanced).
 * Kafka drops a pending AlterPartition here whenever the partition epoch is
 * >= the known one. One deliberate departure: metadata with the same leader
 * epoch and the same partition epoch the pending change is based on (the
 * record of a change whose AlterPartition answer already arrived, replayed
 * late by the metadata log) keeps the pending change. Dropping it shrinks
 * the maximal ISR while the controller may still commit the expansion, so
 * the HW can pass the new member's LEO and an election of that member loses
 * acknowledged records (found by tests/unit/test_replication.c; Kafka 3.6.1
 * through 3.7 have that window). */
int pr_make_leader(partition_repl *p, const pr_meta *m, int64_t now_ms, bool *hw_advanced);

/* Partition.makeFollower: m names another broker (or none) leader. Returns
 * -1 when m is stale (older partition epoch), 1 when the leader epoch is new
 * (the fetcher must restart: truncate via DivergingEpoch from its LEO),
 * else 0. */
int pr_make_follower(partition_repl *p, const pr_meta *m);

/* Partition.appendRecordsToLeader, the check before the append: with
 * acks=all (acks == -1) and a committed ISR smaller than min.insync.replicas
 * the append is refused with KERR_NOT_ENOUGH_REPLICAS; not leader gives
 * KERR_NOT_LEADER_OR_FOLLOWER; else KERR_NONE. */
int pr_check_append(const partition_repl *p, int acks);

/* Partition.appendRecordsToLeader, after the append: the leader's LEO is
 * new_leo; returns whether the HW advanced (maybeIncrementLeaderHW). */
bool pr_leader_appended(partition_repl *p, int64_t new_leo, int64_t now_ms);

/* The local log was truncated or appended to as a follower (or recovered):
 * LEO becomes leo; the HW is capped at it (UnifiedLog.updateHighWatermark). */
void pr_set_local_log(partition_repl *p, int64_t leo);

/* Follower side of ReplicaFetcherThread.processPartitionData: the HW from a
 * fetch response, capped to the local LEO (it may go down on a follower, as
 * UnifiedLog.updateHighWatermark allows). Returns the new HW. */
int64_t pr_follower_update_hw(partition_repl *p, int64_t leader_hw);

/* Partition.updateFollowerFetchState (+ Replica.updateFetchState,
 * maybeExpandIsr, maybeIncrementLeaderHW): follower `id` fetched at
 * fetch_offset (its LEO) with its log start offset and broker epoch, the
 * leader's LEO when the read was done being p->leo. Call only for fetches
 * without a DivergingEpoch answer, as Kafka. When .propose is set, *alter
 * holds the AlterPartition to send (the state is now PENDING_EXPAND).
 * Not leader: .error NOT_LEADER_OR_FOLLOWER; not a replica: UNKNOWN_LEADER_EPOCH
 * (followerReplicaOrThrow with a leader epoch in the request). */
pr_fetch_result pr_follower_fetched(partition_repl *p, int32_t id, int64_t fetch_offset, int64_t log_start_offset,
                                    int64_t broker_epoch, int64_t now_ms, pr_alter *alter);

/* Partition.getOutOfSyncReplicas: writes the ISR followers that have not
 * been caught up within replica.lag.time.max.ms into out (PR_MAX_REPLICAS
 * room) and returns how many; 0 while a change is in flight. */
int pr_out_of_sync(const partition_repl *p, int64_t now_ms, int32_t *out);

/* Partition.maybeShrinkIsr: when followers are out of sync and nothing is
 * in flight, prepares the shrink (state PENDING_SHRINK; the maximal ISR
 * stays the committed one) into *alter and returns true. */
bool pr_maybe_shrink(partition_repl *p, int64_t now_ms, pr_alter *alter);

/* Partition.handleAlterPartitionUpdate: the controller committed *r (its
 * seq, leader epoch, new partition epoch and ISR). Ignored (returns false,
 * *applied false) when it answers another proposal than the one in flight,
 * a different leader epoch, or an older partition epoch; otherwise the ISR
 * becomes committed and the HW may advance (returned). */
bool pr_alter_committed(partition_repl *p, const pr_alter *r, int64_t now_ms, bool *applied);

/* Partition.handleAlterPartitionError: the controller refused proposal seq
 * with error. OPERATION_NOT_ATTEMPTED and INELIGIBLE_REPLICA revert to the
 * last committed state (the maximal ISR shrinks back); the listed
 * non-retriable errors leave the change pending until new metadata arrives;
 * anything else (a transport error) asks for a retry of the same request:
 * returns true then. */
bool pr_alter_failed(partition_repl *p, uint64_t seq, int error);

/* Partition.checkEnoughReplicasReachOffset for a delayed acks=all produce
 * whose last offset + 1 is required_offset: *done once HW >= required
 * offset; the error is then NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when
 * the maximal ISR is smaller than min.insync.replicas. Not leader:
 * *done false, NOT_LEADER_OR_FOLLOWER. */
int pr_check_enough_replicas(const partition_repl *p, int64_t required_offset, bool *done);

/* The maximal ISR (committed + pending expansion) into out; returns count. */
int pr_maximal_isr(const partition_repl *p, int32_t *out);
bool pr_in_isr(const partition_repl *p, int32_t id);

#endif
