/* records.h - Kafka record batches: validate, iterate, build, convert.
 *
 * Everything the broker and tools need to know about the bytes inside a
 * `records` field, on top of batch_header.h (the fixed v2 header) and
 * compress.h (codecs):
 *   - records_validate(): the produce-path checks Kafka 3.6.1 makes
 *     (UnifiedLog.analyzeAndValidateRecords + LogValidator), in place, with
 *     no allocation for uncompressed v2 input; legacy v0/v1 message sets are
 *     converted to one v2 batch;
 *   - rec_iter: the records of one v2 batch, decompressed when needed;
 *   - rec_builder: writes a v2 batch (internal logs, tools, tests);
 *   - records_find_timestamp(): ListOffsets by timestamp within a batch;
 *   - records_down_convert(): v2 -> v0/v1 message sets for old fetchers.
 *
 * v2 record layout (DefaultRecord): length varint | attributes i8 |
 * timestampDelta varlong | offsetDelta varint | keyLength varint | key |
 * valueLength varint | value | headerCount varint |
 * [headerKeyLength varint | headerKey | headerValueLength varint | value]*.
 * Legacy message (LegacyRecord): offset i64 | size i32 | crc u32 (CRC-32 of
 * magic..end) | magic i8 | attributes i8 | [timestamp i64, v1 only] |
 * key bytes(i32 length) | value bytes(i32 length).
 */
#ifndef SAMSA_RECORDS_H
#define SAMSA_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/batch_header.h"
#include "protocol/compress.h"
#include "protocol/wire.h"
#include "util/arena.h"

#define REC_NO_TIMESTAMP (-1LL)
/* Default bound on a batch's decompressed size (rec_iter, and validation
 * when opts->max_decompressed is 0). */
#define REC_DEFAULT_MAX_DECOMPRESSED ((size_t)128 << 20)

/* What produce validation found. */
typedef struct rec_batch_info {
    int32_t batch_count;        /* batches in the buffer */
    int32_t record_count;       /* records in all batches */
    int64_t max_timestamp;      /* largest timestamp (after LogAppendTime rewrite); -1 if none */
    int32_t offset_of_max_timestamp; /* record index (0-based within the append) of it; -1 if none */
    int64_t first_timestamp;    /* timestamp of the first record */
    int64_t producer_id; int16_t producer_epoch; int32_t base_sequence; /* of the first batch */
    bool is_transactional, is_control;
    int codec;                  /* compression of the first batch */
    int8_t source_magic;        /* magic of the input (0/1 means *converted was produced) */
    /* Set on failure too: records without a key in a compacted topic, and
     * the batch indexes of the first three (Kafka's RecordErrors). */
    int32_t keyless_count;
    int32_t keyless_index[3];
} rec_batch_info;

typedef struct rec_validate_opts {
    int32_t max_message_bytes;  /* max.message.bytes: each batch's size (batchLength+12) limit */
    bool log_append_time;       /* message.timestamp.type=LogAppendTime */
    int64_t now_ms;
    int64_t timestamp_difference_max_ms; /* message.timestamp.difference.max.ms (INT64_MAX) */
    size_t max_decompressed;    /* bound for decompression; 0 = REC_DEFAULT_MAX_DECOMPRESSED */
    /* Optional, zero = off / Kafka's produce-from-client behaviour: */
    bool use_before_after;      /* use the two bounds below (3.6 message.timestamp.before/after.max.ms)
                                   instead of timestamp_difference_max_ms for both directions */
    int64_t timestamp_before_max_ms, timestamp_after_max_ms;
    bool compacted;             /* cleanup.policy=compact: records must have keys */
    const char *topic_partition;/* "topic-partition": with it, a keyless record's error message is
                                   Kafka's (in the arena), else a static summary */
    bool internal_origin;       /* not from a client (e.g. coordinator appends): skip the client-only
                                   checks (baseOffset 0, one batch, no control batches, sequence) */
} rec_validate_opts;

/* Kafka's defaults: max.message.bytes 1048588, CreateTime, no timestamp
 * bound, now = 0 (set it). */
void rec_validate_opts_default(rec_validate_opts *o);

/* Validate the `records` of one partition of a Produce request IN PLACE: one
 * v2 batch (several only with opts->internal_origin), or a legacy v0/v1
 * message set. Checks, in Kafka's order: sizes (batchLength sane, whole
 * batches, no trailing partial batch), magic, baseOffset 0, batch size vs
 * max_message_bytes, CRC, attributes/codec, lastOffsetDelta+1 ==
 * recordCount > 0, no control batch, sequence set when producerId is, then
 * every record parsed exactly (after decompression), offset deltas 0..n-1,
 * timestamps, keys for compacted topics.
 *
 * On success returns 0 (KERR_NONE). A v2 batch may be rewritten in place:
 * maxTimestamp set to the records' max (CreateTime) or now with the
 * timestamp-type attribute (LogAppendTime), CRC recomputed. baseOffset and
 * partitionLeaderEpoch are NOT touched (see records_assign_offsets).
 * A legacy message set is converted to one new v2 batch (same codec, record
 * timestamps kept, offsets renumbered from 0) in *converted (arena memory),
 * which the caller appends instead; otherwise *converted is NULL.
 *
 * On failure returns Kafka's error code and sets *errmsg (static string):
 * CORRUPT_MESSAGE (2) bad CRC/sizes/magic/undecodable compressed data,
 * MESSAGE_TOO_LARGE (10), INVALID_TIMESTAMP (32), INVALID_RECORD (87) for
 * record structure, offsets, counts, control batches, sequences, missing
 * keys (as Kafka), UNSUPPORTED_COMPRESSION_TYPE (76) for codec ids 5..7.
 * info, converted, converted_len and errmsg may be NULL. */
int records_validate(uint8_t *buf, size_t len, const rec_validate_opts *opts, karena *a,
                     rec_batch_info *info, uint8_t **converted, size_t *converted_len,
                     const char **errmsg);

/* Kafka's message for a keyless record in a compacted topic (arena memory). */
char *records_keyless_message(karena *a, const char *topic_partition);

/* Set baseOffset and partitionLeaderEpoch of every v2 batch in buf (neither
 * is covered by the CRC). Offsets are assigned consecutively from
 * base_offset: each batch gets the next lastOffsetDelta+1. Returns the
 * offset after the last record, or -1 if buf is not whole v2 batches. */
int64_t records_assign_offsets(uint8_t *buf, size_t len, int64_t base_offset, int32_t leader_epoch);

/* Iterate records of one v2 batch (decompressing into arena memory when
 * needed). Keys, values and headers point into the batch or the arena. */
typedef struct rec_header { kbytes key; kbytes value; } rec_header;
typedef struct rec_record {
    int64_t offset; int64_t timestamp;   /* absolute: base + deltas; LogAppendTime -> maxTimestamp */
    kbytes key; kbytes value;            /* len -1 = null */
    int32_t header_count; rec_header *headers; /* headers NULL if skipped (no arena) */
    int8_t attributes;
    int32_t sequence;                    /* baseSequence + offsetDelta, or -1 */
} rec_record;
typedef struct rec_iter {
    batch_header h;
    kreader r;                  /* over the (decompressed) records */
    karena *arena;
    int32_t index;              /* records returned so far */
    int corrupt;
} rec_iter;
/* batch must hold at least one whole batch (batchLength + 12 bytes); a NULL
 * arena is allowed for uncompressed batches (headers are then skipped).
 * Returns 0, or -1 for a malformed header, wrong magic, bad codec or
 * undecodable compressed data. The CRC is not checked here. */
int rec_iter_init(rec_iter *it, const uint8_t *batch, size_t len, karena *a); /* 0 or -1 */
int rec_iter_next(rec_iter *it, rec_record *out); /* 1 = got one, 0 = end, -1 = corrupt */

/* Build a v2 batch (internal logs: cluster metadata, __consumer_offsets; tools; tests). */
typedef struct rec_builder {
    kwriter recs;               /* uncompressed records area */
    int codec;
    int64_t base_offset, producer_id;
    int16_t producer_epoch;
    int32_t base_sequence, partition_leader_epoch;
    bool transactional, control;
    int64_t base_timestamp, max_timestamp, log_append_time; /* log_append_time -1 = CreateTime */
    int32_t count;
    int level;                  /* compression level, 0 = codec default */
} rec_builder;
void rec_builder_init(rec_builder *b, int codec, int64_t base_offset, int64_t producer_id,
                      int16_t producer_epoch, int32_t base_sequence, bool transactional, bool control);
/* Optional settings, before finish. */
void rec_builder_set_log_append_time(rec_builder *b, int64_t now_ms);
void rec_builder_set_leader_epoch(rec_builder *b, int32_t epoch);
void rec_builder_add(rec_builder *b, int64_t timestamp, kbytes key, kbytes value,
                     const rec_header *headers, int32_t header_count);
/* Finish into w (whole batch incl. baseOffset/batchLength, CRC set).
 * Returns 0, or -1 (no records, allocation or compression failure). */
int rec_builder_finish(rec_builder *b, kwriter *w);
void rec_builder_free(rec_builder *b);

/* Rewrite one v2 batch with another codec (a topic's compression.type other
 * than "producer"), keeping records, timestamps, producer fields and
 * attributes; the result (arena memory) has a valid CRC. 0 or -1. */
int records_recompress(const uint8_t *batch, size_t len, int codec, karena *a, uint8_t **out, size_t *out_len);

/* Scan callback with the signature the storage layer takes for ListOffsets by
 * timestamp: the first record of the batch with timestamp >= ts (its
 * absolute offset and timestamp), 1 if found, 0 if none, -1 corrupt. ctx may
 * be a karena * used for decompression, or NULL (a temporary buffer is then
 * used and freed). */
int records_find_timestamp(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                           int64_t *timestamp, void *ctx);

/* Down-conversion for old consumers (Fetch v0-v3 expect magic 0/1 message
 * sets): convert a range of v2 batches to a v1 (or v0) message set,
 * uncompressed, appended to out. Control batches are dropped, headers are
 * lost; a trailing partial batch is ignored (as in a fetch response). a is
 * used for decompression scratch (may be NULL). Returns 0 or -1 (corrupt
 * input, bad magic argument). */
int records_down_convert(const uint8_t *in, size_t len, int8_t magic, kwriter *out, karena *a);
/* Same, skipping records with offsets below first_offset. */
int records_down_convert_from(const uint8_t *in, size_t len, int8_t magic, int64_t first_offset,
                              kwriter *out, karena *a);

#endif
