/* syncer.h - makes new partition directories durable off the event loop.
 *
 * Creating a partition durably costs about six fsyncs (partition.metadata,
 * leader-epoch-checkpoint, the new directory, its parent, and the rename
 * dances around them): 1.4-1.9 ms per partition on the single event-loop
 * thread, so one CreateTopics of 500 partitions stalled every client for a
 * second or more. A new partition's files are instead written without fsync
 * and handed to this worker thread, which fsyncs them (the two files, the
 * directory, and each parent directory once per batch) in the background.
 *
 * Nothing acknowledged depends on it: the topic's existence is durable in
 * the metadata log before the partition is opened, and a partition lost in
 * a crash before the worker got to it is recreated empty from the metadata,
 * which is exactly what it held (records are only durable after a flush, and
 * a log's first flush makes its directory durable first, see plog_flush).
 * Empty files left by such a crash read as absent (checkpoint.h).
 *
 * Without syncer_start (tools, unit tests) every submission is synced at
 * once on the caller's thread. The worker uses the real system calls, not
 * the storage_fio table, which belongs to the engine's thread.
 */
#ifndef SAMSA_STORAGE_SYNCER_H
#define SAMSA_STORAGE_SYNCER_H

#include <stdbool.h>
#include <stdint.h>

/* Starts the worker thread. Returns 0 or -1 (then submissions stay synchronous). */
int syncer_start(void);
/* Waits for every submitted directory to be synced, then stops the thread. */
void syncer_stop(void);

/* Queues dir (copied) for syncing; returns a ticket for syncer_done. Without
 * a worker (or memory) it syncs at once: 0 (done) or, when that failed, a
 * ticket that is never done. */
uint64_t syncer_submit(const char *dir);
/* Has the ticket's directory been synced? Once any background sync failed,
 * always false: callers then sync themselves and see the error. */
bool syncer_done(uint64_t ticket);

/* Syncs a partition directory now, on the caller's thread, through
 * storage_fio: its partition.metadata and leader-epoch-checkpoint (when
 * present), the directory and its parent. Returns 0 or -1 with errno. */
int syncer_sync_now(const char *dir);

#endif
