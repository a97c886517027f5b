/* snapshot.h - __cluster_metadata snapshots (KIP-630), Kafka 3.6's format.
 *
 * A snapshot is the metadata image written as records, so start-up reads
 * the image instead of replaying the whole log. File: in the log's
 * directory, "<end offset %020d>-<epoch %010d>.checkpoint", where the end
 * offset is one past the last log offset it contains and the epoch that
 * record's leader epoch (Kafka's OffsetAndEpoch snapshot id). Content: v2
 * record batches at offsets 0.. (Kafka's RecordsSnapshotWriter):
 *   a control batch holding one SnapshotHeaderRecord (control type 3,
 *     version 0, lastContainedLogTimestamp),
 *   data batches of metadata records (framed as in the log, <= 8 MiB each)
 *     in MetadataImage.write's order: features (metadata.version, the ZK
 *     migration state), brokers, topics with their partitions, configs,
 *     producer ids, SCRAM credentials,
 *   a control batch holding one SnapshotFooterRecord (control type 4).
 * A snapshot is written to "<id>-<random>.checkpoint.part", fsynced, made
 * read-only and renamed; a crash leaves only a .part file, which start-up
 * removes. A snapshot without its footer, or with a bad CRC, is invalid.
 */
#ifndef SAMSA_METADATA_SNAPSHOT_H
#define SAMSA_METADATA_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata/image.h"

typedef struct msnap_id {
    int64_t end_offset; /* one past the last contained log offset */
    int32_t epoch;      /* leader epoch of the last contained record */
} msnap_id;

typedef enum { MSNAP_FILE_NONE = 0, MSNAP_FILE_CHECKPOINT, MSNAP_FILE_PARTIAL, MSNAP_FILE_DELETED } msnap_file_kind;

/* Kafka's Snapshots.parse: what kind of snapshot file `name` (a base name)
 * is, and its id. MSNAP_FILE_NONE for any other file. */
msnap_file_kind msnap_parse_name(const char *name, msnap_id *id);
/* "<offset>-<epoch>.checkpoint" into buf. */
void msnap_file_name(char *buf, size_t len, msnap_id id);

/* Called for each record of an image, in snapshot order. The record is
 * only valid during the call. Return non-zero to stop. */
typedef int (*msnap_record_fn)(const mrecord *rec, void *ctx);
int msnap_image_records(const mimage *img, msnap_record_fn fn, void *ctx);

/* Write a snapshot of img as id into dir (durable when it returns 0).
 * last_contained_ts: the append time of the last contained record. Returns
 * 0 and the file's size, or -1 with a message in err (no file is left). */
int msnap_write(const char *dir, const mimage *img, msnap_id id, int64_t last_contained_ts, int64_t now_ms,
                int64_t *size_out, char *err, size_t errlen);

/* Apply every record of a snapshot held in buf to img (a fresh image).
 * Checks what Kafka's reader checks: batches whole with valid CRCs, a
 * header first and a footer last. Returns 0, or -1 with a message in err
 * (img may then hold part of the snapshot: throw it away). */
int msnap_read_buf(const uint8_t *buf, size_t len, mimage *img, int64_t *last_contained_ts, char *err,
                   size_t errlen);
/* The same from a file. */
int msnap_read_file(const char *path, mimage *img, int64_t *last_contained_ts, char *err, size_t errlen);

/* lastContainedLogTimestamp from a snapshot file's header, -1 if unreadable. */
int64_t msnap_header_timestamp(const char *path, char *err, size_t errlen);

/* The snapshots of dir, ascending by id; *ids is malloc'd (free it). With
 * remove_stale, .checkpoint.part and .checkpoint.deleted files are removed
 * (Kafka's recoverSnapshots). Returns the count, or -1. */
int msnap_list(const char *dir, bool remove_stale, msnap_id **ids);

#endif
