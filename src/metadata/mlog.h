/* mlog.h - the cluster metadata log, __cluster_metadata-0.
 *
 * Kafka's KRaft layout: a partition log in the metadata log dir whose
 * records are metadata records framed as
 *   [uvarint frame version=1][uvarint api key][uvarint record version][record]
 * with a null key. Changes are appended as one batch per operation (so a
 * topic and its partitions appear atomically), then applied to the image.
 *
 * Snapshots (KIP-630, metadata/snapshot.h): once
 * metadata.log.max.record.bytes.between.snapshots bytes were appended (or
 * replayed at start-up) since the last snapshot, or
 * metadata.log.max.snapshot.interval.ms passed and a record came, the image
 * is written as <offset>-<epoch>.checkpoint in the log's directory (on the
 * caller's thread: a few ms per thousand topics). Start-up loads the newest
 * snapshot that reads back whole and replays only the log after it. As
 * Kafka's KafkaMetadataLog.maybeClean, while the log and the snapshots
 * exceed metadata.max.retention.bytes (or the oldest snapshot is older than
 * metadata.max.retention.ms), the log start moves up to the next snapshot:
 * segments wholly below it and the older snapshots are deleted (checked at
 * start-up, after each snapshot, and on an append at most every 60 s). The
 * newest snapshot and the log after it always stay.
 */
#ifndef SAMSA_MLOG_H
#define SAMSA_MLOG_H

#include <stdint.h>

#include "metadata/image.h"
#include "storage/log.h"

typedef struct mlog mlog;

typedef struct mlog_options {
    int64_t segment_bytes;               /* metadata.log.segment.bytes (1 GiB) */
    int64_t segment_ms;                  /* metadata.log.segment.ms (7 days) */
    int64_t max_bytes_between_snapshots; /* metadata.log.max.record.bytes.between.snapshots (20 MiB) */
    int64_t max_snapshot_interval_ms;    /* metadata.log.max.snapshot.interval.ms (1 h; 0 = off) */
    int64_t retention_bytes;             /* metadata.max.retention.bytes (100 MiB; -1 = unlimited) */
    int64_t retention_ms;                /* metadata.max.retention.ms (7 days; -1 = unlimited) */
    int64_t file_delete_delay_ms;        /* deleted segments linger as .deleted this long (60 s) */
} mlog_options;
void mlog_options_defaults(mlog_options *o);

/* Open (creating if needed) <dir>/__cluster_metadata-0 and replay it into
 * img. fsync_each: fsync every append (metadata changes are rare and must
 * survive power loss, as Kafka's controller does). */
int mlog_open(const char *dir, mimage *img, mlog **out, char *err, size_t errlen);
/* The same with options (NULL = defaults). */
int mlog_open_with(const char *dir, mimage *img, const mlog_options *opts, mlog **out, char *err, size_t errlen);
/* Write a snapshot of the image now (nothing when the newest snapshot is at
 * the log's end already), then clean as retention allows. 0 or -1. */
int mlog_snapshot(mlog *m);
int mlog_snapshot_count(const mlog *m);
/* End offset of the newest snapshot, -1 when there is none. */
int64_t mlog_latest_snapshot_offset(const mlog *m);
/* Append records as one batch, fsync it, then apply them to the image.
 * Returns 0, or -1 when the write failed (nothing applied). */
int mlog_append(mlog *m, const mrecord *recs, int n);
/* The same without the fsync: the records are applied once written to the
 * page cache; the caller makes them durable (plog_sync_handle on
 * mlog_plog, or plog_flush) before it tells anyone they are committed. */
int mlog_append_unsynced(mlog *m, const mrecord *recs, int n);
int64_t mlog_end_offset(const mlog *m);
int32_t mlog_leader_epoch(const mlog *m);
plog *mlog_plog(mlog *m);
void mlog_close(mlog *m);

/* Encode one metadata record value in the framing above. */
int mrecord_encode(const mrecord *rec, kwriter *w);
/* Decode one record value; the struct is allocated from a. */
int mrecord_decode(const uint8_t *p, size_t len, karena *a, mrecord *out);

#endif
