/* fetch_session.h - incremental fetch sessions (KIP-227).
 *
 * A session remembers the partitions a consumer fetches and what it was
 * last told about each, so an incremental fetch only names the partitions
 * that changed and its answer only carries partitions with news. Sessions
 * live in a bounded cache (max.incremental.fetch.session.cache.slots,
 * 1000 as in Kafka), least recently used evicted first.
 */
#ifndef SAMSA_FETCH_SESSION_H
#define SAMSA_FETCH_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "protocol/gen/kmsg.h"

#define FSESSION_INITIAL_EPOCH 0
#define FSESSION_FINAL_EPOCH (-1)
#define FSESSION_CACHE_SLOTS 1000

typedef struct fsession_part {
    char *topic;               /* owned */
    kuuid topic_id;
    int32_t partition;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    bool sent;                 /* told the client at least once */
    int64_t high_watermark;    /* what the client was last told */
    int64_t last_stable_offset;
    int64_t log_start_offset;
} fsession_part;

typedef struct fsession {
    int32_t id;
    int32_t epoch;             /* the epoch the next request must carry */
    int64_t last_used_ms;
    fsession_part *parts;
    int nparts, cap;
} fsession;

void fsession_init(broker *b);
void fsession_shutdown(void);
/* A new session holding the request's partitions; NULL if none can be had. */
fsession *fsession_create(broker *b, int16_t version, const FetchRequest *r);
/* Check the request's session id and epoch (FETCH_SESSION_ID_NOT_FOUND,
 * INVALID_FETCH_SESSION_EPOCH in *err), apply its partition changes and
 * forgotten topics, and move to the next epoch. */
fsession *fsession_update(broker *b, int16_t version, const FetchRequest *r, int16_t *err);
fsession *fsession_get(int32_t id);
void fsession_remove(int32_t id);
fsession_part *fsession_find_part(fsession *s, const kstr *topic, const kuuid *topic_id, int32_t partition,
                                  int16_t version);
int fsession_count(void);

#endif
