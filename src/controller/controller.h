/* controller.h - the controller's decisions as pure functions of the
 * metadata image (Kafka's ReplicationControlManager and
 * PartitionChangeBuilder, for what a cluster of etcd-fenced brokers needs).
 *
 * No I/O, no clock: given an image, the records that bring partition
 * leadership in line with broker liveness. The etcd store runs them on the
 * node that holds the controller key and commits the result fenced by the
 * controller epoch; tests and a simulator call them directly.
 */
#ifndef SAMSA_CONTROLLER_H
#define SAMSA_CONTROLLER_H

#include "metadata/image.h"
#include "util/arena.h"

struct PartitionChangeRecord;

/* Leadership changes the image calls for, as PartitionChangeRecords:
 *  - a partition whose leader is not alive gets a new leader: the first
 *    replica in assignment order that is alive and in the ISR, or none (-1);
 *  - brokers that are not alive leave every ISR (KRaft's handleBrokerFenced),
 *    except that the last leader stays when no member would be left (Kafka
 *    keeps the last ISR member so it can come back as leader);
 *  - a partition without a leader whose ISR has an alive member gets it;
 *    with unclean election allowed, any alive replica will do.
 * At most `max` records; returns how many were written to out (records and
 * their arrays in a). */
int ctl_leadership_changes(const mimage *img, bool unclean_allowed, mrecord *out, int max, karena *a);

/* Kafka's ElectionType (ElectLeaders' electionType). */
#define CTL_ELECTION_PREFERRED 0
#define CTL_ELECTION_UNCLEAN 1

/* ReplicationControlManager.electLeader for one partition of topic t (an
 * ElectLeaders request), through PartitionChangeBuilder's elections over
 * alive brokers:
 *  - PREFERRED: ELECTION_NOT_NEEDED when the first replica in the
 *    assignment leads; else the first replica if it is alive and in the ISR;
 *    else no change while the leader is alive and in the ISR
 *    (PREFERRED_LEADER_NOT_AVAILABLE); else the next alive ISR member in
 *    assignment order;
 *  - UNCLEAN: ELECTION_NOT_NEEDED while there is a leader; else the first
 *    alive ISR member, else the first alive replica (the ISR restarts with
 *    it alone); none: ELIGIBLE_LEADERS_NOT_AVAILABLE.
 * KERR_NONE with *out (in a) set to the change; else the error, *out NULL.
 * An election type other than 0 or 1 is KERR_INVALID_REQUEST. */
int16_t ctl_elect_leader(const mimage *img, const mtopic *t, const mpartition *p, int8_t election_type,
                         struct PartitionChangeRecord **out, karena *a);

/* Does any partition have a leader other than its preferred replica (the
 * first in the assignment)? KRaft's arePartitionLeadersImbalanced. */
bool ctl_leaders_imbalanced(const mimage *img);

/* KRaft's maybeBalancePartitionLeaders: a preferred election for every
 * imbalanced partition, the records of those that change. KRaft's
 * controller ignores leader.imbalance.per.broker.percentage (the ZooKeeper
 * controller's threshold): any imbalanced partition is a candidate. At most
 * max records; *more is set when there were more than max. */
int ctl_balance_leaders(const mimage *img, mrecord *out, int max, bool *more, karena *a);

/* Controlled shutdown of broker_id (KRaft's handleBrokerInControlledShutdown
 * through generateLeaderAndIsrUpdates, with broker_id never an acceptable
 * leader): every partition whose ISR holds broker_id and another member
 * loses it from the ISR; where broker_id leads, the first replica in
 * assignment order that is alive and in the remaining ISR takes over. A
 * partition with no other alive ISR member keeps broker_id as leader and in
 * its ISR (Kafka keeps it in the ISR; its controller also drops the leader,
 * which here the liveness rules would give straight back). At most max
 * records; 0 when nothing is left to move. */
int ctl_controlled_shutdown(const mimage *img, int32_t broker_id, mrecord *out, int max, karena *a);

#endif
