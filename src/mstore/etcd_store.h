/* etcd_store.h - what the etcd metadata store offers beyond mstore.h. */
#ifndef SAMSA_ETCD_STORE_H
#define SAMSA_ETCD_STORE_H

#include "mstore/mstore.h"

/* Marks this node's registration as in controlled shutdown (Kafka's
 * InControlledShutdown, KRaft's BrokerRegistrationChangeRecord): the same
 * RegisterBrokerRecord (version 1) with in_controlled_shutdown set, under the
 * same key, broker epoch and lease; every node applies it from the watch.
 * Leaders must then not wait for this node's replicas to join their ISRs
 * (Partition.isReplicaIsrEligible). Blocks up to etcd's request timeout. */
void mstore_etcd_enter_controlled_shutdown(mstore *s);

/* Leaves the cluster now, before the node closes: deletes this node's
 * registration (and the controller key if it holds it) so that the others
 * fence it at once and elect nothing onto it; the deletion coming back
 * through the watch is not taken as a lost session. Blocks up to etcd's
 * request timeout. No-op for another backend or when already left. */
void mstore_etcd_leave(mstore *s);

#endif
