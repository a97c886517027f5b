/* group.h - the consumer group coordinator as the broker sees it.
 *
 * One coordinator per broker owns the groups whose __consumer_offsets
 * partition this node leads and has loaded (a single node: every group;
 * requests for the others answer NOT_COORDINATOR, and
 * COORDINATOR_LOAD_IN_PROGRESS while the partition is being loaded). It
 * keeps groups and committed offsets in memory (gstate.h) and durable in
 * __consumer_offsets: commits and group metadata are answered once
 * replicated (Kafka's requiredAcks=-1). When leadership moves the
 * coordinator loads the partitions gained (replaying their logs) and drops
 * the groups of those lost, as Kafka's onElection/onResignation. The
 * request handlers below are called from the broker's dispatch table on the
 * event-loop thread; JoinGroup, SyncGroup and OffsetCommit may park their
 * request and answer it later.
 */
#ifndef SAMSA_GROUP_H
#define SAMSA_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/request.h"

struct group_coord;

/* Create the coordinator for b (reads b->cfg; nothing is loaded yet). */
struct group_coord *group_coord_new(broker *b);
/* At start-up: replay the __consumer_offsets partitions this node leads
 * (all of each, before anything is served), then start the
 * offsets-retention timer. Returns 0 or -1. */
int group_coord_load(struct group_coord *gc);
/* After every metadata change: load the partitions whose leadership this
 * node gained (or holds at a new leader epoch), drop the groups of those it
 * lost. One pass over the partitions when nothing changed. */
void group_coord_leadership_changed(struct group_coord *gc);
/* Answer parked requests (NOT_COORDINATOR) and cancel timers. */
void group_coord_shutdown(struct group_coord *gc);
void group_coord_free(struct group_coord *gc);

/* A COMMIT or ABORT marker for producer_id was written to
 * __consumer_offsets partition offsets_partition (called by the
 * WriteTxnMarkers handler once the marker is appended): the transactional
 * offsets that producer wrote for that partition's groups become committed
 * (visible to OffsetFetch) or are dropped, as Kafka's
 * GroupCoordinator.scheduleHandleTxnCompletion. */
void group_txn_marker_written(struct group_coord *gc, int32_t offsets_partition, int64_t producer_id,
                              bool commit);

/* __consumer_offsets partition of a group: abs(Java hashCode) % partitions. */
int32_t group_partition_for(const char *group_id, int32_t num_partitions);

/* Request handlers (api keys 10, 11, 14, 12, 13, 8, 9, 15, 16, 42, 47). */
void h_find_coordinator(broker *b, kreq *req);
void h_join_group(broker *b, kreq *req);
void h_sync_group(broker *b, kreq *req);
void h_heartbeat(broker *b, kreq *req);
void h_leave_group(broker *b, kreq *req);
void h_offset_commit(broker *b, kreq *req);
void h_offset_fetch(broker *b, kreq *req);
void h_describe_groups(broker *b, kreq *req);
void h_list_groups(broker *b, kreq *req);
void h_delete_groups(broker *b, kreq *req);
void h_offset_delete(broker *b, kreq *req);

#endif
