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

typedef struct group_coord {
    broker *b;
    gmgr mgr;
    struct gc_timer *timers;       /* every armed timer, to free at exit */
    loop_timer_id retention_timer;
    bool offsets_creating;         /* __consumer_offsets creation under way */
} group_coord;

/* The __consumer_offsets partition of a group, creating the topic on first
 * use. NULL with *err set (COORDINATOR_NOT_AVAILABLE) when impossible. */
partition *gc_offsets_partition(group_coord *gc, const char *group_id, int16_t *err);
/* Create __consumer_offsets if missing. Returns a Kafka error code. */
int16_t gc_ensure_offsets_topic(group_coord *gc);
/* Where clients find a group's coordinator: the leader of its partition. */
bool gc_coordinator_node(group_coord *gc, const char *group_id, broker_node *out, int16_t *err);

/* Append records (parallel key/value writers' bytes; value len -1 =
 * tombstone) for a group as one batch. Returns the error a commit should
 * report (Kafka's mapping of append errors). */
int16_t gc_append(group_coord *gc, const char *group_id, int n, const kbytes *keys,
                  const kbytes *values);

/* Write offset tombstones (and a group tombstone if group_too) for a group. */
int16_t gc_write_tombstones(group_coord *gc, const char *group_id, int n, const goffset *const *offs,
                            bool group_too);

#endif
