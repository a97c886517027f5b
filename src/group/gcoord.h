/* gcoord.h - private glue between the group coordinator's parts: the
 * broker-side object (coordinator.c) that the request handlers
 * (handlers.c) use. Not for other modules: they use group.h. */
#ifndef SAMSA_GROUP_GCOORD_H
#define SAMSA_GROUP_GCOORD_H

#include <stdbool.h>

#include "broker/broker.h"
#include "group/gstate.h"
#include "protocol/wire.h"

#define OFFSETS_TOPIC "__consumer_offsets"

struct gc_timer;
struct gc_write;

/* This coordinator's view of one __consumer_offsets partition (Kafka's
 * ownedPartitions / loadingPartitions / epochForPartitionId). */
typedef enum gc_part_state {
    GC_PART_NONE,      /* not led here: its groups are not in memory */
    GC_PART_LOADING,   /* led; replaying its log: COORDINATOR_LOAD_IN_PROGRESS */
    GC_PART_LOADED,    /* led and loaded: its groups are served */
} gc_part_state;

typedef struct gc_part {
    gc_part_state state;
    int32_t epoch;         /* leader epoch it was loaded (or is loading) at */
    uint32_t incarnation;  /* changes at every load/unload: stale write completions see it */
    int64_t load_next;     /* loading cursor and the end offset captured at the start */
    int64_t load_end;
    int64_t load_started_ms;
} gc_part;

typedef struct group_coord {
    broker *b;
    gmgr mgr;
    struct gc_timer *timers;       /* every armed timer, to free at exit */
    loop_timer_id retention_timer;
    loop_timer_id load_timer;      /* continues loading partitions; 0 = idle */
    bool offsets_creating;         /* __consumer_offsets creation under way */
    gc_part *parts;                /* one per __consumer_offsets partition */
    int32_t nparts;
    kuuid parts_topic_id;          /* the topic incarnation parts describe */
    struct gc_write *writes;       /* appended, waiting for replication */
    uint32_t next_incarnation;
} group_coord;

/* The __consumer_offsets partition of a group, creating the topic on first
 * use. NULL with *err set (COORDINATOR_NOT_AVAILABLE when impossible,
 * NOT_COORDINATOR when another node leads it). */
partition *gc_offsets_partition(group_coord *gc, const char *group_id, int16_t *err);
/* Create __consumer_offsets if missing. Returns a Kafka error code. */
int16_t gc_ensure_offsets_topic(group_coord *gc);
/* Where clients find a group's coordinator: the leader of its partition. */
bool gc_coordinator_node(group_coord *gc, const char *group_id, broker_node *out, int16_t *err);
/* Is any partition loading (ListGroups answers COORDINATOR_LOAD_IN_PROGRESS)? */
bool gc_any_loading(group_coord *gc);
/* May the group be served or expired here (its partition is loaded)? */
bool gc_group_loaded(group_coord *gc, const char *group_id);

/* Completion of a coordinator write: the append's raw error (KERR_NONE
 * once replicated as Kafka's requiredAcks=-1 wants), the offset of the
 * first record written (-1 on error), and whether the partition is still
 * loaded as it was at the append (not dropped or reloaded meanwhile).
 * Callers map the error with gc_offset_commit_error or gc_group_store_error. */
typedef void (*gc_written_fn)(group_coord *gc, void *arg, int16_t error, int64_t first_offset,
                              bool same_incarnation);

/* Append records (parallel key/value writers' bytes; value len -1 =
 * tombstone) for a group as one batch, then wait for the partition's high
 * watermark to pass it (offsets.commit.timeout.ms). done is called once,
 * possibly before this returns. */
void gc_append(group_coord *gc, const char *group_id, int n, const kbytes *keys, const kbytes *values,
               gc_written_fn done, void *arg);

/* The same for a transactional offset commit: one TRANSACTIONAL batch of
 * the producer (base sequence 0), as Kafka's storeOffsets writes it. */
void gc_append_txn(group_coord *gc, const char *group_id, int n, const kbytes *keys, const kbytes *values,
                   int64_t producer_id, int16_t producer_epoch, gc_written_fn done, void *arg);

/* GroupMetadataManager's translations of append errors: storeOffsets and
 * storeGroup (they differ in REQUEST_TIMED_OUT and the size errors). */
int16_t gc_offset_commit_error(int16_t append_error);
int16_t gc_group_store_error(int16_t append_error);

/* Write offset tombstones (and a group tombstone if group_too) for a group,
 * not waiting for replication (Kafka's cleanupGroupMetadata appends with
 * requiredAcks=0). Returns the append error, mapped as for commits. */
int16_t gc_write_tombstones(group_coord *gc, const char *group_id, int n, const goffset *const *offs,
                            bool group_too);

#endif
