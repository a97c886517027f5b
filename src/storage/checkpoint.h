/* checkpoint.h - Kafka's small text files: offset checkpoints, the leader
 * epoch checkpoint and partition.metadata.
 *
 * Formats (identical to Kafka 3.6.1, so its tools read ours and vice versa):
 *   recovery-point-offset-checkpoint, log-start-offset-checkpoint (one per
 *   log dir):   "0\n<count>\n<topic> <partition> <offset>\n..."
 *   leader-epoch-checkpoint (per partition): "0\n<count>\n<epoch> <offset>\n..."
 *   partition.metadata: "version: 0\ntopic_id: <22-char url-safe base64>\n"
 * Every write is atomic: write "<path>.tmp", fsync it, rename over <path>,
 * fsync the directory. A crash leaves either the old or the new file. The
 * per-partition files can also be written with sync false: no fsync, for a
 * partition being created, whose files are made durable together later.
 * All I/O goes through storage_fio (fileio.h). Errors are returned as -1
 * with errno set (EINVAL for a malformed file); a missing file reads as
 * empty where that makes sense, noted per function.
 */
#ifndef SAMSA_STORAGE_CHECKPOINT_H
#define SAMSA_STORAGE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_RECOVERY_POINT_FILE "recovery-point-offset-checkpoint"
#define CKPT_LOG_START_FILE "log-start-offset-checkpoint"
#define CKPT_LEADER_EPOCH_FILE "leader-epoch-checkpoint"
#define CKPT_PARTITION_METADATA_FILE "partition.metadata"
#define CKPT_REPLICATION_OFFSET_FILE "replication-offset-checkpoint"

/* Replace path's contents atomically (see above). */
int ckpt_write_atomic(const char *path, const void *data, size_t len);

/* ---- dir-level offset checkpoints ---- */

typedef struct ckpt_offset_entry {
    char *topic;          /* owned by the ckpt_offsets that holds it */
    int32_t partition;
    int64_t offset;
} ckpt_offset_entry;

typedef struct ckpt_offsets {
    ckpt_offset_entry *v;
    size_t n;
} ckpt_offsets;

/* Reads a checkpoint. A missing file gives 0 and an empty set. Returns -1
 * with errno (EINVAL: malformed, err says where). Free with ckpt_offsets_free. */
int ckpt_offsets_read(const char *path, ckpt_offsets *out, char *err, size_t errlen);
/* Writes entries (topic strings borrowed) atomically. */
int ckpt_offsets_write(const char *path, const ckpt_offset_entry *v, size_t n);
void ckpt_offsets_free(ckpt_offsets *c);
/* Offset recorded for topic-partition, or -1 when absent. */
int64_t ckpt_offsets_find(const ckpt_offsets *c, const char *topic, int32_t partition);

/* ---- replication-offset-checkpoint (high watermarks) ----
 *
 * Kafka's ReplicaManager.checkpointHighWatermarks: one file per log dir,
 * <log_dir>/replication-offset-checkpoint, in the offset checkpoint format
 * above, holding the high watermark of every partition (leader or follower)
 * whose log is in that dir. Written atomically (the whole set each time,
 * Kafka every replica.high.watermark.checkpoint.interval.ms); read at
 * start-up to seed each log's high watermark (Kafka clamps it to [log
 * start, LEO]). */
/* Writes entries (topic strings borrowed) as log_dir's checkpoint. Refuses
 * (EINVAL) an entry a reader would refuse: an empty or over-long topic name
 * or one with whitespace, a negative partition or offset. */
int ckpt_hw_write(const char *log_dir, const ckpt_offset_entry *v, size_t n);
/* Reads log_dir's checkpoint (missing file: 0, empty set). -1 with errno
 * EINVAL (err says where) for a malformed file: bad version or count, a line
 * that is not "topic partition offset", a negative high watermark, a
 * partition named twice. Free with ckpt_offsets_free. */
int ckpt_hw_read(const char *log_dir, ckpt_offsets *out, char *err, size_t errlen);

/* ---- leader-epoch-checkpoint ---- */

typedef struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} epoch_entry;

/* Reads into a malloc'd array (*out, caller frees; NULL when n == 0). A
 * missing or empty file gives 0 entries. */
int ckpt_epochs_read(const char *path, epoch_entry **out, size_t *n);
int ckpt_epochs_write(const char *path, const epoch_entry *v, size_t n, bool sync);

/* ---- partition.metadata ---- */

/* Returns 0 and the topic id; -1 with errno ENOENT (absent or empty: what a
 * crash leaves of a file written without sync) or EINVAL. */
int ckpt_partition_metadata_read(const char *path, uint8_t topic_id[16]);
int ckpt_partition_metadata_write(const char *path, const uint8_t topic_id[16], bool sync);

/* Kafka's Uuid.toString(): url-safe base64 without padding, 22 chars + NUL. */
void kafka_uuid_to_string(const uint8_t id[16], char out[23]);
/* Parses exactly 22 base64url chars; 0 or -1. */
int kafka_uuid_from_string(const char *s, size_t len, uint8_t id[16]);

#endif
