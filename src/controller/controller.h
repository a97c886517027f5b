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

#endif
