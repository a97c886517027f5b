/* etcd_store.h - what the etcd metadata store offers beyond mstore.h. */
#ifndef SAMSA_ETCD_STORE_H
#define SAMSA_ETCD_STORE_H

#include "mstore/mstore.h"

/* Leaves the cluster now, before the node closes: deletes this node's
 * registration (and the controller key if it holds it) so that the others
 * fence it at once and elect nothing onto it; the deletion coming back
 * through the watch is not taken as a lost session. Blocks up to etcd's
 * request timeout. No-op for another backend or when already left. */
void mstore_etcd_leave(mstore *s);

#endif
