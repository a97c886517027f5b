/* page_trim.h - keeps the page cache of the logs to a window behind their ends.
 *
 * A log that grows without bound grows its page cache into memory nothing
 * has touched for a while. On a VM whose balloon hands free memory back to
 * the host (free page reporting: WSL2, Docker Desktop, this project's CI
 * VM), every such page is faulted in and zeroed by the host at first touch,
 * and the produce path's copy into the page cache costs 3-6x what it costs
 * in memory freed a moment ago (bench/README.md, "The page cache kept to a
 * window"). Writing back and dropping a log's pages once they are a window
 * behind its end lets the next appends reuse memory that was just freed.
 *
 * The broker's loop queues ranges; one worker thread ("page-trim") writes
 * each back (sync_file_range: start and wait, no fsync, so durability is as
 * before: recovery points move only with fsync) and drops its clean pages
 * (POSIX_FADV_DONTNEED). A consumer that reads further back than the window
 * reads from the disk, as it would from Kafka once the page cache had
 * evicted those pages. Nothing here is needed for correctness: a full queue
 * or an error just leaves the pages cached.
 *
 * Without ptrim_start (tools, unit tests) each range is trimmed at once on
 * the caller's thread.
 */
#ifndef SAMSA_STORAGE_PAGE_TRIM_H
#define SAMSA_STORAGE_PAGE_TRIM_H

#include <stdint.h>

/* Starts the worker. 0, or -1 (then ranges are trimmed on the caller's thread). */
int ptrim_start(void);
/* Stops the worker; ranges still queued are left cached. */
void ptrim_stop(void);

/* Writes back [off, off + len) of fd's file, then drops the file's pages
 * from its start up to off + len (so a large folio that straddled an
 * earlier range goes too); later, on the worker (fd is duplicated: the
 * caller may close its own). */
void ptrim_submit(int fd, int64_t off, int64_t len);

/* Bytes whose pages were written back and dropped so far (metrics, tests). */
uint64_t ptrim_bytes_trimmed(void);

#endif
