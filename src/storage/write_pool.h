/* write_pool.h - the data writes of several logs' appends, at once.
 *
 * On a produce request that carries several partitions, the copy of each
 * batch into the page cache (the pwrite, most of the broker's produce CPU)
 * is independent of the others: each goes to its own file. The pool runs a
 * request's writes on the calling thread and on up to `helpers` threads
 * beside it, and returns when all are done, so the caller's single-threaded
 * view of the logs is unchanged (plog_append_begin / plog_append_end around
 * it, log.h). Kafka spreads the same work over num.io.threads request
 * handler threads. The same threads run other independent jobs of the
 * loop's (wpool_run_each): the produce turn's batch validation.
 *
 * The helper threads ("append-writer-N") start at the first run that uses
 * them: an idle broker holds none. Owned by one thread (the event loop);
 * wpool_run is not reentrant.
 */
#ifndef SAMSA_STORAGE_WRITE_POOL_H
#define SAMSA_STORAGE_WRITE_POOL_H

#include <stddef.h>

#include "storage/log.h"

typedef struct wpool wpool;

/* Writes below this many bytes in all are best left to the caller alone: a
 * helper's wake-up costs more than it saves (bench/README.md, "Appends
 * written in parallel"). The min_parallel the broker passes to wpool_run. */
#define WPOOL_PARALLEL_MIN_BYTES (256 << 10)

/* A pool with up to `helpers` threads beside the caller (>= 1), or NULL
 * (out of memory). */
wpool *wpool_new(int helpers);
/* Stops and joins the helpers. NULL is fine. */
void wpool_free(wpool *p);

/* Runs every write of w[0..n) (plog_write_run: each one's err tells how it
 * went) and returns when all are done. Writes of fewer than min_parallel
 * bytes in all, or a single write, run on the caller alone: waking a helper
 * costs more than it saves on small writes. A helper that cannot be started
 * leaves its share to the caller. */
void wpool_run(wpool *p, plog_write *const *w, int n, size_t min_parallel);

/* Runs fn(ctx, i) for every i in [0, n) on the caller and the helpers at
 * once, and returns when all are done; n < 2 runs on the caller alone.
 * Each call may touch only what is its own (the broker validates a turn's
 * batches this way, broker/h_produce.c). The caller decides whether the
 * work is worth the wake-ups. */
void wpool_run_each(wpool *p, void (*fn)(void *ctx, int i), void *ctx, int n);

/* Helper threads started so far (tests, metrics). */
int wpool_threads(const wpool *p);

#endif
