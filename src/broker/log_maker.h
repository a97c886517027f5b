/* log_maker.h - new partitions' directories made off the event loop.
 *
 * A partition created while the broker runs (CreateTopics, CreatePartitions,
 * the first group's __consumer_offsets) needs a directory and four files
 * (plog_make_dir). On ext4 that costs 0.3-0.5 ms a partition, so a topic of
 * 50 partitions held the loop 25-35 ms and 200 held it 50-80 ms: every other
 * client's requests waited (bench/create_bench.py). Kafka creates logs on its
 * metadata publisher thread, beside the request handlers. Here one worker
 * thread makes the directories in submission order; the loop hears of each
 * through an eventfd and opens the made directory (a few opens, no creates:
 * tens of microseconds). Until then the partition is not open on this node,
 * as a replica placed here in a cluster is not until it opens (topics.c).
 *
 * The worker calls only plog_make_dir, which touches the file system and no
 * log; everything else stays on the loop.
 */
#ifndef SAMSA_BROKER_LOG_MAKER_H
#define SAMSA_BROKER_LOG_MAKER_H

#include <stdint.h>

#include "net/loop.h"
#include "protocol/wire.h"

typedef struct log_maker log_maker;

/* One made directory, as delivered to the loop. */
typedef struct log_made {
    kuuid topic_id;
    int32_t partition;
    int result; /* plog_make_dir's: 0 made, 1 was there already, -1 failed (err) */
    int err;
} log_made;

typedef void (*log_made_fn)(void *ctx, const log_made *m);

/* Starts the worker; fn(ctx, m) runs on loop's thread for each made
 * directory, in submission order. NULL (errno) if the thread or eventfd
 * cannot be made: the caller then makes directories itself. */
log_maker *log_maker_new(kloop *loop, log_made_fn fn, void *ctx);
/* Queues dir (copied) to be made for the topic's partition. 0, or -1 (ENOMEM). */
int log_maker_submit(log_maker *m, const char *dir, const kuuid *topic_id, int32_t partition);
/* Waits until every queued directory is made and delivers them all, on the
 * caller's thread (the loop's). */
void log_maker_drain(log_maker *m);
/* Stops the worker once it has made what is queued, and frees m (NULL is
 * fine). What was made and not delivered is dropped: the directories are
 * whole empty logs, which the next start opens as it finds them. */
void log_maker_free(log_maker *m);

#endif
