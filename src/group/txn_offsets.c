/* txn_offsets.c - transactional offset commits (TxnOffsetCommit) and their
 * completion by COMMIT/ABORT markers in __consumer_offsets. */
#include "group/gcoord.h"
#include "group/group.h"

void group_txn_marker_written(struct group_coord *gc, int32_t offsets_partition, int64_t producer_id,
                              bool commit) {
    (void)gc;
    (void)offsets_partition;
    (void)producer_id;
    (void)commit;
}
