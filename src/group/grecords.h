/* grecords.h - the records the group coordinator keeps in __consumer_offsets.
 *
 * Each record's key and value are an int16 schema version followed by the
 * struct (Kafka's MessageUtil.toVersionPrefixedBytes):
 *   key v0/v1 OffsetCommitKey   (group, topic, partition) -> OffsetCommitValue
 *   key v2    GroupMetadataKey  (group)                   -> GroupMetadataValue
 * A null value is a tombstone. Kafka 3.6.1 writes keys at v1 / v2, offset
 * values at v3 (v1 when an explicit expire timestamp exists) and group
 * values at v3; any version 0-4 is read.
 *
 * grec_replay() applies a run of record batches to a gmgr, which is how the
 * coordinator rebuilds its state at start-up.
 */
#ifndef SAMSA_GROUP_GRECORDS_H
#define SAMSA_GROUP_GRECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group/gstate.h"
#include "protocol/wire.h"
#include "util/arena.h"

#define GREC_KEY_OFFSET 1
#define GREC_KEY_GROUP 2

typedef struct grec_key {
    int kind;          /* GREC_KEY_OFFSET, GREC_KEY_GROUP, or 0 (unknown version: skip) */
    kstr group;
    kstr topic;        /* offset keys */
    int32_t partition;
} grec_key;

/* Parse a key. Returns 0 (kind may be 0 for versions we do not know) or -1. */
int grec_parse_key(const uint8_t *p, size_t n, grec_key *out, karena *a);

/* Encoders append to w. */
void grec_offset_key(kwriter *w, const char *group, const char *topic, int32_t partition);
void grec_offset_value(kwriter *w, const goffset *o);
void grec_group_key(kwriter *w, const char *group);
/* GroupMetadataValue v3 from the group and its members' assignments. */
void grec_group_value(kwriter *w, const kgroup *g);

/* Apply one record (value NULL/len -1 = tombstone) to m. Returns 0, or -1
 * when the record is malformed (it is then skipped). */
int grec_apply(gmgr *m, const uint8_t *key, int32_t key_len, const uint8_t *value,
               int32_t value_len, karena *scratch);

/* Apply every record of whole v2 batches in buf (bytes of __consumer_offsets
 * partition `partition` of nparts). Offsets of transactional batches are
 * kept pending in their group for the batch's producer (they survive
 * across calls, as the log is replayed in chunks, and after the load) and
 * a COMMIT marker commits them, an ABORT drops them. A trailing partial
 * batch is ignored. Returns the number of records applied, or -1 on a
 * corrupt batch. grec_replay: nparts 0, markers reach every group. */
int grec_replay_partition(gmgr *m, const uint8_t *buf, size_t len, int32_t partition, int32_t nparts);
int grec_replay(gmgr *m, const uint8_t *buf, size_t len);

/* A COMMIT (commit) or ABORT marker of producer_id reached partition of
 * nparts (nparts <= 0: every group): completes the producer's pending
 * offsets in the partition's groups. Returns the number committed. */
int grec_txn_marker(gmgr *m, int64_t producer_id, bool commit, int32_t partition, int32_t nparts);

#endif
