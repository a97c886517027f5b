/* log_cleaner.h - the broker's log cleaner: Kafka 3.6.1's LogCleaner and
 * LogCleanerManager around the file-level core in storage/cleaner.h.
 *
 * log.cleaner.threads worker threads each own an offset map of
 * log.cleaner.dedupe.buffer.size / threads bytes (load factor
 * log.cleaner.io.buffer.load.factor). The event loop picks work: every
 * log.cleaner.backoff.ms (and right after a clean ends) it looks at every
 * log with cleanup.policy compact (or compact,delete), asks cleaner_decide,
 * and hands the filthiest one not already being cleaned to an idle worker,
 * with what only the loop may read: the aborted transactions from the
 * log's .txnindex files and the active producers' last records.
 *
 * Threads: a worker reads only segments below the clean's end (never the
 * active one, never appended to) and writes *.cleaned files. The swap of
 * each cleaned group (renames, then the live plog's segment list) runs on
 * the loop: the worker posts it through an eventfd and waits. Deleting or
 * truncating the segments being cleaned meanwhile (retention, DeleteRecords,
 * follower truncation, topic deletion) aborts the clean (plog_cleaning_*):
 * the swap is refused and the cleaned files dropped. The checkpoint
 * (cleaner-offset-checkpoint) is written on the loop when a clean ends,
 * lowered when a log was truncated below it, and its entry removed when
 * the partition is deleted.
 *
 * After each pass the loop runs the retention of every compacted log not
 * being cleaned (Kafka's cleaner thread calls deleteOldSegments on
 * LogCleanerManager.deletableLogs): a cleanup.policy=compact,delete log
 * loses its old segments at the cleaner's pace (log.cleaner.backoff.ms),
 * besides the broker's log.retention.check.interval.ms.
 *
 * Broker configs are re-read at every pass (dynamic ones apply without
 * restart), topic configs come from the topic's resolved settings. A
 * changed log.cleaner.threads (Kafka's LogCleaner.reconfigure) starts the
 * missing workers, or retires those above the new count: their clean is
 * aborted, they exit once idle and the loop joins them. Threads are named
 * log-cleaner-N.
 * log.cleaner.enable=false: nothing starts.
 */
#ifndef SAMSA_CLEANER_LOG_CLEANER_H
#define SAMSA_CLEANER_LOG_CLEANER_H

#include <stdint.h>

struct broker;

/* Starts the workers and the pass timer on b->loop (after topics_init).
 * Returns 0, or -1 (the cleaner stays off; logged). */
int log_cleaner_start(struct broker *b);
/* Aborts running cleans (their swaps are refused), joins the workers. */
void log_cleaner_stop(void);
/* A deleted partition: its checkpoint entry goes (Kafka's updateCheckpoints
 * with partitionToRemove). partition_dir is the log's directory. */
void log_cleaner_forget(const char *partition_dir, const char *topic, int32_t partition);

#endif
