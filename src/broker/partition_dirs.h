/* partition_dirs.h - partition directories made and removed off the event loop.
 *
 * A partition created while the broker runs (CreateTopics, CreatePartitions,
 * the first group's __consumer_offsets) needs a directory and four files
 * (plog_make_dir). On ext4 that costs 0.3-0.5 ms a partition, so a topic of
 * 50 partitions held the loop 15-70 ms and 200 held it 65-400 ms: every other
 * client's requests waited (bench/create_bench.py). Removing a deleted
 * partition's files costs more: a topic of 200 partitions holding 500 MB held
 * the loop 170 ms. Kafka does both beside its request handlers: it creates
 * logs on its metadata publisher thread, and renames a deleted log's
 * directory to <topic>-<partition>.<id>-delete and removes it later.
 *
 * Here one worker thread ("partition-dirs") takes both kinds of job in
 * submission order, so a directory removed and made again under the same
 * name (a topic deleted and created again) is handled in the right order.
 * A made directory is delivered to the loop through an eventfd, which opens
 * it (a few opens, no creates: tens of microseconds); until then the
 * partition is not open on this node, as a replica placed here in a cluster
 * is not until it opens (topics.c). A deleted partition's directory is
 * renamed on the thread too (a rename in a directory of thousands of
 * partitions costs the loop 50-60 us: 17 ms for a topic of 300), in order
 * before any later make of the same name; a crash before the rename leaves
 * the old directory under the name, which the next start deletes as one of
 * Kafka's stray logs (topics.c).
 *
 * The worker calls only plog_make_dir, plog_retire_dir and plog_remove_dir,
 * which touch the file system and no log; everything else stays on the loop.
 */
#ifndef SAMSA_BROKER_PARTITION_DIRS_H
#define SAMSA_BROKER_PARTITION_DIRS_H

#include <stdint.h>

#include "net/loop.h"
#include "protocol/wire.h"

typedef struct pdirs pdirs;

/* One made directory, as delivered to the loop. */
typedef struct pdir_made {
    kuuid topic_id;
    int32_t partition;
    int32_t first_epoch; /* as given to pdirs_make */
    int result; /* plog_make_dir's: 0 made, 1 was there already, 2 made after retiring another topic's, -1 failed (err) */
    int err;
} pdir_made;

typedef void (*pdir_made_fn)(void *ctx, const pdir_made *m);

/* Starts the worker; fn(ctx, m) runs on loop's thread for each made
 * directory, in submission order. NULL (errno) if the thread or eventfd
 * cannot be made: the caller then does the work itself. */
pdirs *pdirs_new(kloop *loop, pdir_made_fn fn, void *ctx);
/* Queues dir (copied) to be made for the topic's partition, with its
 * leader-epoch-checkpoint when first_epoch >= 0 (plog_make_dir). 0, or -1
 * (ENOMEM). */
int pdirs_make(pdirs *w, const char *dir, const kuuid *topic_id, int32_t partition, int32_t first_epoch);
/* Queues a retired directory (copied) to be removed with everything in it.
 * Nothing is delivered. 0, or -1 (ENOMEM). */
int pdirs_remove(pdirs *w, const char *dir);
/* Queues a deleted partition's directory (copied; its log closed) to be
 * renamed as Kafka does (plog_retire_dir) and then removed. Jobs run in
 * order, so a directory made again under that name later is made after the
 * rename. Nothing is delivered. 0, or -1 (ENOMEM). */
int pdirs_retire(pdirs *w, const char *dir);
/* Waits until every directory queued to be made is made and delivers them
 * all, on the caller's thread (the loop's). */
void pdirs_drain(pdirs *w);
/* Stops the worker and frees w (NULL is fine). Directories queued to be made
 * are made first; what was made and not delivered is dropped (whole empty
 * logs, which the next start opens as it finds them). Removals not started
 * are left to the next start (topics.c removes every *-delete directory). */
void pdirs_free(pdirs *w);

#endif
