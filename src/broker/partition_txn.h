/* partition_txn.h - the partition side of transactions: a partition's log
 * and its producer state (producer_state.h) kept in step.
 *
 * Every append (leader produce, coordinator appends, follower replication)
 * goes through here so the producer state sees each batch: ongoing
 * transactions, COMMIT/ABORT markers, completed aborted transactions, which
 * are written to the .txnindex of the segment holding their marker (Kafka's
 * UnifiedLog.append + LogSegment.updateTxnIndex). Producer snapshots are
 * taken at every roll, with the state exactly at the new segment's base,
 * and the state is rebuilt from snapshot + log (re-creating .txnindex
 * entries a crash lost) at start-up and after truncation. The high
 * watermark and the log start moving are passed on (the last stable offset
 * follows them).
 */
#ifndef SAMSA_PARTITION_TXN_H
#define SAMSA_PARTITION_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

/* A new producer state rebuilt from the log (pstate_load) and the roll
 * hook installed. At partition open and after follower truncation. */
void part_txn_load(partition *p);

/* Leader append (plog_append) of already validated batches; the producer
 * state follows. Returns 0 or -1 with errno (as plog_append). */
int part_txn_append(partition *p, uint8_t *batches, size_t len, int64_t *first_offset, int64_t *last_offset);
/* The same in plog_append_begin's three steps (log.h): begin, the write
 * (plog_write_run, on any thread), end (the producer state follows). */
int part_txn_append_begin(partition *p, uint8_t *batches, size_t len, plog_write *w);
int part_txn_append_end(partition *p, const plog_write *w, int64_t *first_offset, int64_t *last_offset);

/* Follower append (plog_append_as_follower, same contract); the producer
 * state follows every batch appended, and snapshots taken at rolls inside
 * the append describe exactly the batches below the new segment. */
int part_txn_append_as_follower(partition *p, const uint8_t *batches, size_t len, int64_t *last_offset_out,
                                size_t *used_out, char *err, size_t errlen);
/* The same in plog_append_as_follower_begin's three steps (log.h): begin,
 * the write (plog_write_run, on any thread) when w->len > 0, end. */
int part_txn_append_as_follower_begin(partition *p, const uint8_t *batches, size_t len, plog_write *w, char *err,
                                      size_t errlen);
int part_txn_append_as_follower_end(partition *p, const plog_write *w, int64_t *last_offset_out, size_t *used_out,
                                    char *err, size_t errlen);

/* Kafka's UnifiedLog.lastStableOffset. */
int64_t part_txn_lso(const partition *p);

/* The high watermark moved (p->high_watermark): decided transactions below
 * it become stable. */
void part_txn_hw_moved(partition *p);

/* The log start may have moved (retention, DeleteRecords, a follower
 * following its leader): the producer state forgets transactions below it
 * and snapshots below it are deleted. */
void part_txn_log_start_moved(partition *p);

/* The periodic log maintenance (plog_tick when retention is due, else
 * plog_housekeeping), then part_txn_log_start_moved when the log start
 * moved. */
void part_txn_maintenance(partition *p, int64_t now_ms, bool retention_due);

/* Kafka's removeExpiredProducers (every
 * producer.id.expiration.check.interval.ms): producers without an open
 * transaction whose last write is expiration_ms (producer.id.expiration.ms)
 * old are forgotten. */
void part_txn_expire_producers(partition *p, int64_t now_ms, int64_t expiration_ms);

#endif
