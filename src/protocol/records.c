/* records.c - record batch validation, iteration, building and conversion
 * (see records.h for the formats and the contract of each function).
 *
 * The produce path follows Kafka 3.6.1: UnifiedLog.analyzeAndValidateRecords
 * checks each batch's size, magic and CRC; LogValidator then checks the batch
 * fields and every record. Uncompressed v2 input is validated where it lies;
 * only compressed batches are decompressed, into one bounded scratch buffer.
 */
#include "protocol/records.h"

#include <string.h>
#include <zlib.h>

#include "protocol/errors.h"
#include "util/crc32c.h"

#define LEGACY_LOG_OVERHEAD 12       /* offset + size */
#define LEGACY_OVERHEAD_V0 14        /* crc, magic, attributes, key len, value len */
#define LEGACY_OVERHEAD_V1 22        /* ... plus the timestamp */
#define LEGACY_ATTR_TIMESTAMP_TYPE 0x08
#define DEFAULT_MAX_MESSAGE_BYTES 1048588

void rec_validate_opts_default(rec_validate_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES;
    o->timestamp_difference_max_ms = INT64_MAX;
    o->max_decompressed = REC_DEFAULT_MAX_DECOMPRESSED;
}

/* Wrapping adds: base + delta on hostile input must not be undefined. */
static inline int64_t add_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

/* Sequence numbers wrap from INT32_MAX to 0 (DefaultRecordBatch.incrementSequence). */
static int32_t sequence_add(int32_t seq, int32_t inc) {
    if (inc >= 0 && seq > INT32_MAX - inc) return inc - (INT32_MAX - seq) - 1;
    return (int32_t)((uint32_t)seq + (uint32_t)inc);
}

/* ---- v2 record parsing ---- */

/* Read a varint length-prefixed byte string; negative lengths are null. */
static kbytes read_var_bytes(kreader *r) {
    kbytes b = {NULL, -1};
    int32_t n = kr_varint(r);
    if (r->err || n < 0) return b;
    const uint8_t *p = kr_take(r, (size_t)n);
    if (p) {
        b.p = p;
        b.len = n;
    }
    return b;
}

/* Parse one record at r. Headers are stored in arena memory when a is set,
 * otherwise only checked. Returns 0 or -1 (malformed: Kafka's "Found invalid
 * record structure" family). */
static int parse_record(kreader *r, const batch_header *h, rec_record *out, karena *a) {
    int32_t size = kr_varint(r);
    if (r->err || size < 0 || (size_t)size > kr_remaining(r)) return -1;
    kreader body;
    kr_init(&body, kr_take(r, (size_t)size), (size_t)size);

    out->attributes = kr_i8(&body);
    int64_t ts_delta = kr_varlong(&body);
    int32_t off_delta = kr_varint(&body);
    out->timestamp = (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND)
                         ? h->max_timestamp
                         : add_wrap(h->base_timestamp, ts_delta);
    out->offset = add_wrap(h->base_offset, off_delta);
    out->sequence = h->base_sequence >= 0 ? sequence_add(h->base_sequence, off_delta) : -1;
    out->key = read_var_bytes(&body);
    out->value = read_var_bytes(&body);
    int32_t nh = kr_varint(&body);
    if (body.err || nh < 0 || (size_t)nh > kr_remaining(&body)) return -1;
    out->header_count = nh;
    out->headers = NULL;
    if (nh > 0 && a) {
        out->headers = karena_calloc(a, (size_t)nh, sizeof(rec_header));
        if (!out->headers) return -1;
    }
    for (int32_t i = 0; i < nh && !body.err; i++) {
        int32_t klen = kr_varint(&body);
        if (body.err || klen < 0) return -1;
        const uint8_t *k = kr_take(&body, (size_t)klen);
        kbytes v = read_var_bytes(&body);
        if (out->headers) {
            out->headers[i].key = (kbytes){k, klen};
            out->headers[i].value = v;
        }
    }
    /* the record must be exactly `size` bytes */
    if (body.err || kr_remaining(&body) != 0) return -1;
    return 0;
}

/* The records area of a batch, decompressed into scratch when compressed.
 * Returns 0, or -1 when undecodable or larger than max_out. */
static int batch_records_area(const uint8_t *batch, const batch_header *h, kwriter *scratch,
                              size_t max_out, const uint8_t **p, size_t *n) {
    size_t size = batch_total_size(h);
    const uint8_t *recs = batch + BATCH_HEADER_SIZE;
    size_t recs_len = size - BATCH_HEADER_SIZE;
    int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec == KCODEC_NONE) {
        *p = recs;
        *n = recs_len;
        return 0;
    }
    kw_reset(scratch);
    if (kdecompress(codec, recs, recs_len, scratch, max_out) != 0) return -1;
    *p = scratch->buf ? scratch->buf : (const uint8_t *)"";
    *n = scratch->len;
    return 0;
}

/* ---- iteration ---- */

/* Common header checks for a stored/served v2 batch: enough bytes, sane
 * batchLength, magic 2, known codec, non-negative count. */
static int check_v2_header(const uint8_t *batch, size_t len, batch_header *h) {
    if (len < BATCH_HEADER_SIZE) return -1;
    batch_header_parse(batch, h);
    if (h->batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) return -1;
    if (batch_total_size(h) > len) return -1;
    if (h->magic != 2) return -1;
    if ((h->attributes & BATCH_ATTR_COMPRESSION_MASK) > KCODEC_ZSTD) return -1;
    if (h->record_count < 0) return -1;
    return 0;
}

/* Open an iterator; compressed records go to the arena, or to scratch when
 * there is no arena (then they live until the caller frees scratch). */
static int iter_open(rec_iter *it, const uint8_t *batch, size_t len, karena *a, kwriter *scratch) {
    memset(it, 0, sizeof *it);
    it->arena = a;
    if (check_v2_header(batch, len, &it->h) != 0) return -1;
    int codec = it->h.attributes & BATCH_ATTR_COMPRESSION_MASK;
    const uint8_t *p;
    size_t n;
    if (codec == KCODEC_NONE) {
        p = batch + BATCH_HEADER_SIZE;
        n = batch_total_size(&it->h) - BATCH_HEADER_SIZE;
    } else if (a) {
        kwriter tmp;
        kw_init(&tmp);
        int rc = batch_records_area(batch, &it->h, &tmp, REC_DEFAULT_MAX_DECOMPRESSED, &p, &n);
        uint8_t *copy = rc == 0 ? karena_alloc(a, n) : NULL;
        if (copy) memcpy(copy, p, n);
        kw_free(&tmp);
        if (!copy) return -1;
        p = copy;
    } else if (scratch) {
        if (batch_records_area(batch, &it->h, scratch, REC_DEFAULT_MAX_DECOMPRESSED, &p, &n) != 0)
            return -1;
    } else {
        return -1;
    }
    kr_init(&it->r, p, n);
    return 0;
}

int rec_iter_init(rec_iter *it, const uint8_t *batch, size_t len, karena *a) {
    return iter_open(it, batch, len, a, NULL);
}

int rec_iter_next(rec_iter *it, rec_record *out) {
    if (it->corrupt) return -1;
    if (it->index >= it->h.record_count) {
        if (kr_remaining(&it->r) != 0) { /* bytes left after the declared count */
            it->corrupt = 1;
            return -1;
        }
        return 0;
    }
    if (parse_record(&it->r, &it->h, out, it->arena) != 0) {
        it->corrupt = 1;
        return -1;
    }
    it->index++;
    return 1;
}

/* ---- validation ---- */

typedef struct vstate {
    const rec_validate_opts *o;
    int64_t before_max, after_max;
    size_t max_decompressed;
    rec_batch_info *info;
    int32_t total;              /* records seen so far in the append */
    const char **errmsg;
    karena *arena;
    int32_t record_in_batch;    /* index of the record being checked within its batch (v2) */
} vstate;

char *records_keyless_message(karena *a, const char *topic_partition) {
    return karena_sprintf(a, "Compacted topic cannot accept message without key in topic partition %s",
                          topic_partition);
}

static int fail(vstate *st, int code, const char *msg) {
    if (st->errmsg) *st->errmsg = msg;
    return code;
}

/* Kafka's validateKey + validateTimestamp for one record. Returns 0, or the
 * error this record contributes (INVALID_RECORD or INVALID_TIMESTAMP). */
static int check_record(vstate *st, bool batch_log_append, int64_t ts, bool has_key) {
    if (st->o->compacted && !has_key) {
        if (st->info) {
            rec_batch_info *in = st->info;
            if (in->keyless_count < 3) in->keyless_index[in->keyless_count] = st->total + st->record_in_batch;
            in->keyless_count++;
        }
        return KERR_INVALID_RECORD;
    }
    if (!st->o->log_append_time && ts != REC_NO_TIMESTAMP) {
        __int128 diff = (__int128)st->o->now_ms - ts;
        if (diff > st->before_max || -diff > st->after_max) return KERR_INVALID_TIMESTAMP;
    } else if (batch_log_append) {
        return KERR_INVALID_TIMESTAMP; /* producers may not set LogAppendTime */
    }
    return 0;
}

/* Kafka collects per-record errors over a batch, then fails it with
 * INVALID_TIMESTAMP if any record had one, else INVALID_RECORD. */
static int record_errors_result(vstate *st, bool ts_err, bool rec_err) {
    if (ts_err) return fail(st, KERR_INVALID_TIMESTAMP, "record timestamp out of range or LogAppendTime set by producer");
    if (rec_err && st->o->topic_partition && st->arena && st->info && st->info->keyless_count > 0) {
        /* LogValidator.processRecordErrors around validateKey's RecordErrors */
        const rec_batch_info *in = st->info;
        char *list = karena_sprintf(st->arena, "%s", "");
        for (int i = 0; list && i < in->keyless_count && i < 3; i++)
            list = karena_sprintf(st->arena, "%s%sRecordError(batchIndex=%d, message='%s')", list, i ? ", " : "",
                                  (int)in->keyless_index[i], records_keyless_message(st->arena, st->o->topic_partition));
        char *msg = list ? karena_sprintf(st->arena,
                                          "One or more records have been rejected due to %d record errors in total, "
                                          "and only showing the first three errors at most: [%s]",
                                          (int)in->keyless_count, list)
                         : NULL;
        if (msg) return fail(st, KERR_INVALID_RECORD, msg);
    }
    if (rec_err) return fail(st, KERR_INVALID_RECORD, "compacted topic cannot accept a record without key");
    return 0;
}

/* Set maxTimestamp and the timestamp type of a v2 batch, fixing the CRC,
 * unless they already hold those values (Kafka's setMaxTimestamp). */
static void set_max_timestamp(uint8_t *b, size_t size, bool log_append, int64_t max_ts) {
    uint16_t attr = bh_get_u16(b + BATCH_OFF_ATTRIBUTES);
    uint16_t want = log_append ? (uint16_t)(attr | BATCH_ATTR_TIMESTAMP_LOG_APPEND)
                               : (uint16_t)(attr & ~BATCH_ATTR_TIMESTAMP_LOG_APPEND);
    if (attr == want && (int64_t)bh_get_u64(b + BATCH_OFF_MAX_TIMESTAMP) == max_ts) return;
    bh_put_u16(b + BATCH_OFF_ATTRIBUTES, want);
    bh_put_u64(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    bh_put_u32(b + BATCH_OFF_CRC, crc32c(0, b + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
}

/* LogValidator's checks of one v2 batch (header already sane, CRC good). */
static int validate_v2_batch(vstate *st, uint8_t *b, kwriter *scratch, int64_t *batch_max,
                             int32_t *batch_max_index) {
    batch_header h;
    batch_header_parse(b, &h);
    if (!st->o->internal_origin) {
        if ((int64_t)h.last_offset_delta + 1 <= 0)
            return fail(st, KERR_INVALID_RECORD, "batch has an invalid offset range");
        if (h.record_count <= 0)
            return fail(st, KERR_INVALID_RECORD, "invalid reported count for record batch");
        if ((int64_t)h.last_offset_delta + 1 != h.record_count)
            return fail(st, KERR_INVALID_RECORD, "inconsistent batch offset range and count of records");
        if (h.attributes & BATCH_ATTR_CONTROL)
            return fail(st, KERR_INVALID_RECORD, "clients are not allowed to write control records");
        if (h.producer_id >= 0 && h.base_sequence < 0)
            return fail(st, KERR_INVALID_RECORD, "invalid sequence number in record batch with producerId");
    } else if (h.record_count < 0 || (int64_t)h.last_offset_delta + 1 != h.record_count) {
        return fail(st, KERR_INVALID_RECORD, "inconsistent batch offset range and count of records");
    }

    const uint8_t *p;
    size_t n;
    size_t size = batch_total_size(&h);
    if (batch_records_area(b, &h, scratch, st->max_decompressed, &p, &n) != 0)
        return fail(st, KERR_CORRUPT_MESSAGE, "compressed records cannot be decompressed or exceed the size limit");

    bool batch_log_append = (h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) != 0;
    bool compressed = (h.attributes & BATCH_ATTR_COMPRESSION_MASK) != KCODEC_NONE;
    bool ts_err = false, rec_err = false;
    int64_t max_ts = REC_NO_TIMESTAMP;
    int32_t max_index = -1;
    kreader r;
    kr_init(&r, p, n);
    for (int32_t i = 0; i < h.record_count; i++) {
        rec_record rec;
        if (parse_record(&r, &h, &rec, NULL) != 0)
            return fail(st, KERR_INVALID_RECORD, "found invalid record structure");
        if ((uint64_t)rec.offset - (uint64_t)h.base_offset != (uint64_t)i)
            return fail(st, KERR_INVALID_RECORD, "record offset deltas are not 0..recordCount-1");
        st->record_in_batch = i;
        int e = check_record(st, batch_log_append, rec.timestamp, rec.key.len >= 0);
        if (e == KERR_INVALID_TIMESTAMP) ts_err = true;
        else if (e) rec_err = true;
        if (st->total == 0 && i == 0 && st->info) st->info->first_timestamp = rec.timestamp;
        if (rec.timestamp > max_ts) {
            max_ts = rec.timestamp;
            max_index = st->total + i;
        }
    }
    if (kr_remaining(&r) != 0)
        return fail(st, KERR_INVALID_RECORD, "incorrect declared batch size, records still remaining");
    int e = record_errors_result(st, ts_err, rec_err);
    if (e) return e;

    /* In place: Kafka points a compressed batch's max at its last record. */
    if (compressed && max_index >= 0) max_index = st->total + h.record_count - 1;
    if (st->o->log_append_time) set_max_timestamp(b, size, true, st->o->now_ms);
    else set_max_timestamp(b, size, false, max_ts);
    st->total += h.record_count;
    *batch_max = max_ts;
    *batch_max_index = max_index;
    return 0;
}

/* ---- legacy (magic 0/1) messages ---- */

typedef struct legacy_msg {
    int64_t offset;
    int8_t magic, attributes;
    int64_t timestamp;          /* -1 for v0 */
    kbytes key, value;
    bool crc_ok;
} legacy_msg;

/* Parse one whole legacy message of entry_size bytes (offset+size+message).
 * Returns 0 or -1 (structure). The CRC result goes to m->crc_ok. */
static int legacy_parse(const uint8_t *p, size_t entry_size, legacy_msg *m) {
    kreader r;
    kr_init(&r, p, entry_size);
    m->offset = kr_i64(&r);
    (void)kr_i32(&r); /* size, already checked by the caller */
    uint32_t crc = kr_u32(&r);
    size_t crc_from = r.pos;
    m->magic = kr_i8(&r);
    m->attributes = kr_i8(&r);
    if (r.err || m->magic < 0 || m->magic > 1) return -1;
    m->crc_ok = crc32(0L, p + crc_from, (uInt)(entry_size - crc_from)) == crc;
    m->timestamp = m->magic == 1 ? kr_i64(&r) : REC_NO_TIMESTAMP;
    m->key = kr_bytes(&r, false, true);
    m->value = kr_bytes(&r, false, true);
    if (r.err || kr_remaining(&r) != 0) return -1;
    return 0;
}

/* Size of the next legacy or v2 entry from its size field, with Kafka's
 * checks (ByteBufferLogInputStream.nextBatchSize). 0 on success. */
static int next_entry(vstate *st, const uint8_t *p, size_t remaining, size_t *size, int8_t *magic, int *err) {
    if (remaining < LEGACY_LOG_OVERHEAD) {
        *err = fail(st, KERR_CORRUPT_MESSAGE, "trailing partial record batch");
        return -1;
    }
    int32_t rsize = (int32_t)bh_get_u32(p + BATCH_OFF_LENGTH);
    if (rsize < LEGACY_OVERHEAD_V0) {
        *err = fail(st, KERR_CORRUPT_MESSAGE, "record size is less than the minimum record overhead");
        return -1;
    }
    if (remaining < BATCH_OFF_MAGIC + 1) {
        *err = fail(st, KERR_CORRUPT_MESSAGE, "trailing partial record batch");
        return -1;
    }
    *magic = (int8_t)p[BATCH_OFF_MAGIC];
    if (*magic < 0 || *magic > 2) {
        *err = fail(st, KERR_CORRUPT_MESSAGE, "invalid magic found in record");
        return -1;
    }
    *size = (size_t)rsize + LEGACY_LOG_OVERHEAD;
    if (*size > remaining) {
        *err = fail(st, KERR_CORRUPT_MESSAGE, "trailing partial record batch");
        return -1;
    }
    return 0;
}

/* Collects converted records into a v2 builder, with the timestamp checks. */
typedef struct legacy_conv {
    rec_builder b;
    int64_t max_ts;
    bool ts_err, rec_err;
} legacy_conv;

static void legacy_add(vstate *st, legacy_conv *c, const legacy_msg *m, bool batch_log_append,
                       int64_t ts) {
    int e = check_record(st, batch_log_append, ts, m->key.len >= 0);
    if (e == KERR_INVALID_TIMESTAMP) c->ts_err = true;
    else if (e) c->rec_err = true;
    if (c->ts_err || c->rec_err) return; /* the append will fail; stop building */
    if (ts > c->max_ts) c->max_ts = ts;
    if (st->total == 0 && st->info) st->info->first_timestamp = ts;
    rec_builder_add(&c->b, ts, m->key, m->value, NULL, 0);
    st->total++;
}

/* Deep entries of a compressed legacy wrapper. */
static int legacy_inner(vstate *st, legacy_conv *c, const legacy_msg *w, kwriter *scratch) {
    int codec = w->attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (w->value.len < 0)
        return fail(st, KERR_CORRUPT_MESSAGE, "compressed legacy message has a null value");
    kw_reset(scratch);
    int rc = (codec == KCODEC_LZ4 && w->magic == 0)
                 ? kdecompress_lz4_legacy(w->value.p, (size_t)w->value.len, scratch, st->max_decompressed)
                 : kdecompress(codec, w->value.p, (size_t)w->value.len, scratch, st->max_decompressed);
    if (rc != 0)
        return fail(st, KERR_CORRUPT_MESSAGE, "compressed records cannot be decompressed or exceed the size limit");
    bool wrapper_log_append = w->magic == 1 && (w->attributes & LEGACY_ATTR_TIMESTAMP_TYPE);
    const uint8_t *p = scratch->buf;
    size_t left = scratch->len;
    int n = 0;
    while (left > 0) {
        if (left < LEGACY_LOG_OVERHEAD + LEGACY_OVERHEAD_V0)
            return fail(st, KERR_CORRUPT_MESSAGE, "truncated inner legacy message");
        int32_t rsize = (int32_t)bh_get_u32(p + 8);
        if (rsize < LEGACY_OVERHEAD_V0 || (size_t)rsize > left - LEGACY_LOG_OVERHEAD)
            return fail(st, KERR_CORRUPT_MESSAGE, "invalid inner legacy message size");
        size_t esize = (size_t)rsize + LEGACY_LOG_OVERHEAD;
        legacy_msg m;
        if (legacy_parse(p, esize, &m) != 0)
            return fail(st, KERR_CORRUPT_MESSAGE, "invalid inner legacy message");
        if (m.attributes & BATCH_ATTR_COMPRESSION_MASK)
            return fail(st, KERR_INVALID_RECORD, "compressed outer record has a compressed inner record");
        if (m.magic != w->magic)
            return fail(st, KERR_INVALID_RECORD, "inner record magic does not match outer magic");
        if (!m.crc_ok)
            return fail(st, KERR_CORRUPT_MESSAGE, "inner legacy message is corrupt (CRC mismatch)");
        int64_t ts = wrapper_log_append ? w->timestamp : m.timestamp;
        legacy_add(st, c, &m, wrapper_log_append, ts);
        p += esize;
        left -= esize;
        n++;
    }
    if (n == 0) return fail(st, KERR_INVALID_RECORD, "compressed legacy message has no records");
    return 0;
}

static int validate_legacy(vstate *st, const uint8_t *buf, size_t len, int source_codec, karena *a,
                           kwriter *scratch, uint8_t **converted, size_t *converted_len) {
    if (!a) return fail(st, KERR_UNKNOWN_SERVER_ERROR, "legacy conversion needs an arena");
    legacy_conv c;
    memset(&c, 0, sizeof c);
    c.max_ts = REC_NO_TIMESTAMP;
    rec_builder_init(&c.b, source_codec, 0, -1, -1, -1, false, false);
    if (st->o->log_append_time) rec_builder_set_log_append_time(&c.b, st->o->now_ms);
    int8_t first_magic = (int8_t)buf[BATCH_OFF_MAGIC];
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        size_t esize = (size_t)(int32_t)bh_get_u32(buf + pos + 8) + LEGACY_LOG_OVERHEAD;
        const uint8_t *p = buf + pos;
        pos += esize;
        if ((int8_t)p[BATCH_OFF_MAGIC] != first_magic) {
            rc = fail(st, KERR_INVALID_RECORD, "batch magic is not the same as the first batch's");
            break;
        }
        legacy_msg m;
        if (legacy_parse(p, esize, &m) != 0) {
            rc = fail(st, KERR_CORRUPT_MESSAGE, "invalid legacy message structure");
            break;
        }
        if (m.attributes & BATCH_ATTR_COMPRESSION_MASK) {
            rc = legacy_inner(st, &c, &m, scratch);
        } else {
            bool log_append = m.magic == 1 && (m.attributes & LEGACY_ATTR_TIMESTAMP_TYPE);
            legacy_add(st, &c, &m, log_append, m.timestamp);
        }
        if (rc == 0 && (c.ts_err || c.rec_err)) rc = record_errors_result(st, c.ts_err, c.rec_err);
    }
    if (rc == 0) {
        kwriter w;
        kw_init(&w);
        if (rec_builder_finish(&c.b, &w) != 0 || w.err) {
            rc = fail(st, KERR_CORRUPT_MESSAGE, "legacy message set could not be converted");
        } else {
            uint8_t *out = karena_alloc(a, w.len);
            if (!out) {
                rc = fail(st, KERR_UNKNOWN_SERVER_ERROR, "out of memory converting legacy records");
            } else {
                memcpy(out, w.buf, w.len);
                if (converted) *converted = out;
                if (converted_len) *converted_len = w.len;
                if (st->info) {
                    st->info->record_count = st->total;
                    st->info->max_timestamp = st->o->log_append_time ? st->o->now_ms : c.max_ts;
                    st->info->offset_of_max_timestamp = st->total - 1; /* Kafka's v2 builder */
                    if (st->o->log_append_time) st->info->first_timestamp = st->o->now_ms;
                }
            }
        }
        kw_free(&w);
    }
    rec_builder_free(&c.b);
    return rc;
}

/* ---- produce validation entry point ---- */

int records_validate(uint8_t *buf, size_t len, const rec_validate_opts *opts, karena *a,
                     rec_batch_info *info, uint8_t **converted, size_t *converted_len,
                     const char **errmsg) {
    vstate st;
    memset(&st, 0, sizeof st);
    st.o = opts;
    st.info = info;
    st.errmsg = errmsg;
    st.arena = a;
    st.max_decompressed = opts->max_decompressed ? opts->max_decompressed : REC_DEFAULT_MAX_DECOMPRESSED;
    st.before_max = opts->use_before_after ? opts->timestamp_before_max_ms : opts->timestamp_difference_max_ms;
    st.after_max = opts->use_before_after ? opts->timestamp_after_max_ms : opts->timestamp_difference_max_ms;
    if (errmsg) *errmsg = NULL;
    if (converted) *converted = NULL;
    if (converted_len) *converted_len = 0;
    if (info) {
        memset(info, 0, sizeof *info);
        info->max_timestamp = REC_NO_TIMESTAMP;
        info->offset_of_max_timestamp = -1;
        info->first_timestamp = REC_NO_TIMESTAMP;
        info->producer_id = -1;
        info->producer_epoch = -1;
        info->base_sequence = -1;
    }
    if (len == 0) return fail(&st, KERR_INVALID_RECORD, "produce request has no record batches");

    /* Pass 1 (analyzeAndValidateRecords): framing, size limit, CRC. */
    int32_t batches = 0;
    int source_codec = KCODEC_NONE;
    for (size_t pos = 0; pos < len;) {
        size_t size;
        int8_t magic;
        int err;
        uint8_t *b = buf + pos;
        if (next_entry(&st, b, len - pos, &size, &magic, &err) != 0) return err;
        if (magic == 2 && !opts->internal_origin && bh_get_u64(b + BATCH_OFF_BASE_OFFSET) != 0)
            return fail(&st, KERR_INVALID_RECORD, "the baseOffset of the record batch should be 0");
        if (opts->max_message_bytes > 0 && size > (size_t)opts->max_message_bytes)
            return fail(&st, KERR_MESSAGE_TOO_LARGE, "record batch is larger than max.message.bytes");
        int codec;
        if (magic == 2) {
            if (size < BATCH_HEADER_SIZE)
                return fail(&st, KERR_CORRUPT_MESSAGE, "record batch is smaller than its header");
            if (crc32c(0, b + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES) != bh_get_u32(b + BATCH_OFF_CRC))
                return fail(&st, KERR_CORRUPT_MESSAGE, "record batch is corrupt (CRC mismatch)");
            codec = bh_get_u16(b + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK;
        } else {
            uint32_t stored = bh_get_u32(b + LEGACY_LOG_OVERHEAD);
            const uint8_t *from = b + LEGACY_LOG_OVERHEAD + 4;
            if (crc32(0L, from, (uInt)(size - LEGACY_LOG_OVERHEAD - 4)) != stored)
                return fail(&st, KERR_CORRUPT_MESSAGE, "record is corrupt (CRC mismatch)");
            codec = b[BATCH_OFF_MAGIC + 1] & BATCH_ATTR_COMPRESSION_MASK;
        }
        if (codec > KCODEC_ZSTD)
            return fail(&st, KERR_UNSUPPORTED_COMPRESSION_TYPE, "unknown compression type id");
        if (codec != KCODEC_NONE) source_codec = codec;
        batches++;
        pos += size;
    }

    /* Pass 2 (LogValidator). */
    int8_t first_magic = (int8_t)buf[BATCH_OFF_MAGIC];
    if ((first_magic == 2 || source_codec != KCODEC_NONE) && batches > 1 && !opts->internal_origin)
        return fail(&st, KERR_INVALID_RECORD, "compressed outer record has more than one batch");
    if (info) {
        info->batch_count = batches;
        info->codec = first_magic == 2 ? (bh_get_u16(buf + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_COMPRESSION_MASK)
                                       : source_codec;
        info->source_magic = first_magic;
    }

    kwriter scratch; /* decompressed records; untouched for uncompressed v2 */
    kw_init(&scratch);
    int rc = 0;
    if (first_magic != 2) {
        rc = validate_legacy(&st, buf, len, source_codec, a, &scratch, converted, converted_len);
        kw_free(&scratch);
        return rc;
    }
    int64_t max_ts = REC_NO_TIMESTAMP;
    int32_t max_index = -1;
    for (size_t pos = 0; pos < len && rc == 0;) {
        uint8_t *b = buf + pos;
        size_t size = (size_t)(int32_t)bh_get_u32(b + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
        pos += size;
        if ((int8_t)b[BATCH_OFF_MAGIC] != 2) {
            rc = fail(&st, KERR_INVALID_RECORD, "batch magic is not the same as the first batch's");
            break;
        }
        int64_t bmax;
        int32_t bidx;
        rc = validate_v2_batch(&st, b, &scratch, &bmax, &bidx);
        if (rc == 0 && bmax > max_ts) {
            max_ts = bmax;
            max_index = bidx;
        }
    }
    kw_free(&scratch);
    if (rc != 0) return rc;
    if (info) {
        batch_header h;
        batch_header_parse(buf, &h);
        info->record_count = st.total;
        info->producer_id = h.producer_id;
        info->producer_epoch = h.producer_epoch;
        info->base_sequence = h.base_sequence;
        info->is_transactional = (h.attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
        info->is_control = (h.attributes & BATCH_ATTR_CONTROL) != 0;
        if (opts->log_append_time) {
            info->max_timestamp = opts->now_ms;
            info->offset_of_max_timestamp = st.total - 1;
            info->first_timestamp = opts->now_ms;
        } else {
            info->max_timestamp = max_ts;
            info->offset_of_max_timestamp = max_index;
        }
    }
    return KERR_NONE;
}

int64_t records_assign_offsets(uint8_t *buf, size_t len, int64_t base_offset, int32_t leader_epoch) {
    int64_t next = base_offset;
    for (size_t pos = 0; pos < len;) {
        batch_header h;
        if (check_v2_header(buf + pos, len - pos, &h) != 0) return -1;
        bh_put_u64(buf + pos + BATCH_OFF_BASE_OFFSET, (uint64_t)next);
        bh_put_u32(buf + pos + BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
        next = add_wrap(next, (int64_t)h.last_offset_delta + 1);
        pos += batch_total_size(&h);
    }
    return next;
}

/* ---- builder ---- */

static int zz32_size(int32_t v) {
    uint32_t u = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
    return kw_uvarint_size(u);
}

static int zz64_size(int64_t v) {
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    int n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

static int var_bytes_size(kbytes b) {
    return b.len < 0 ? zz32_size(-1) : zz32_size(b.len) + b.len;
}

static void write_var_bytes(kwriter *w, kbytes b) {
    if (b.len < 0) {
        kw_varint(w, -1);
        return;
    }
    kw_varint(w, b.len);
    kw_raw(w, b.p, (size_t)b.len);
}

void rec_builder_init(rec_builder *b, int codec, int64_t base_offset, int64_t producer_id,
                      int16_t producer_epoch, int32_t base_sequence, bool transactional, bool control) {
    memset(b, 0, sizeof *b);
    kw_init(&b->recs);
    b->codec = codec;
    b->base_offset = base_offset;
    b->producer_id = producer_id;
    b->producer_epoch = producer_epoch;
    b->base_sequence = base_sequence;
    b->partition_leader_epoch = -1;
    b->transactional = transactional;
    b->control = control;
    b->base_timestamp = REC_NO_TIMESTAMP;
    b->max_timestamp = REC_NO_TIMESTAMP;
    b->log_append_time = -1;
}

void rec_builder_set_log_append_time(rec_builder *b, int64_t now_ms) { b->log_append_time = now_ms; }
void rec_builder_set_leader_epoch(rec_builder *b, int32_t epoch) { b->partition_leader_epoch = epoch; }

void rec_builder_add(rec_builder *b, int64_t timestamp, kbytes key, kbytes value,
                     const rec_header *headers, int32_t header_count) {
    if (b->count == 0) b->base_timestamp = timestamp;
    if (timestamp > b->max_timestamp) b->max_timestamp = timestamp;
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp);
    if (header_count < 0) header_count = 0;
    int64_t size = 1 + zz64_size(ts_delta) + zz32_size(b->count) + var_bytes_size(key) +
                   var_bytes_size(value) + zz32_size(header_count);
    for (int32_t i = 0; i < header_count; i++)
        size += zz32_size(headers[i].key.len < 0 ? 0 : headers[i].key.len) +
                (headers[i].key.len < 0 ? 0 : headers[i].key.len) + var_bytes_size(headers[i].value);
    if (size > INT32_MAX) {
        b->recs.err = 1;
        return;
    }
    kwriter *w = &b->recs;
    kw_varint(w, (int32_t)size);
    kw_i8(w, 0); /* record attributes: unused */
    kw_varlong(w, ts_delta);
    kw_varint(w, b->count);
    write_var_bytes(w, key);
    write_var_bytes(w, value);
    kw_varint(w, header_count);
    for (int32_t i = 0; i < header_count; i++) {
        kbytes k = headers[i].key;
        if (k.len < 0) k = (kbytes){(const uint8_t *)"", 0}; /* header keys are never null */
        write_var_bytes(w, k);
        write_var_bytes(w, headers[i].value);
    }
    b->count++;
}

int rec_builder_finish(rec_builder *b, kwriter *w) {
    if (b->count == 0 || b->recs.err) return -1;
    size_t start = w->len;
    kw_i64(w, b->base_offset);
    size_t len_at = kw_reserve(w, 4);
    kw_i32(w, b->partition_leader_epoch);
    kw_i8(w, 2);
    size_t crc_at = kw_reserve(w, 4);
    int16_t attr = (int16_t)(b->codec & BATCH_ATTR_COMPRESSION_MASK);
    if (b->log_append_time >= 0) attr |= BATCH_ATTR_TIMESTAMP_LOG_APPEND;
    if (b->transactional) attr |= BATCH_ATTR_TRANSACTIONAL;
    if (b->control) attr |= BATCH_ATTR_CONTROL;
    kw_i16(w, attr);
    kw_i32(w, b->count - 1);
    kw_i64(w, b->base_timestamp);
    kw_i64(w, b->log_append_time >= 0 ? b->log_append_time : b->max_timestamp);
    kw_i64(w, b->producer_id);
    kw_i16(w, b->producer_epoch);
    kw_i32(w, b->base_sequence);
    kw_i32(w, b->count);
    if (b->codec == KCODEC_NONE) kw_raw(w, b->recs.buf, b->recs.len);
    else if (kcompress(b->codec, b->recs.buf, b->recs.len, w, b->level) != 0) {
        if (!w->err) w->len = start;
        return -1;
    }
    if (w->err) return -1;
    size_t total = w->len - start;
    if (total - BATCH_LOG_OVERHEAD > INT32_MAX) {
        w->len = start;
        return -1;
    }
    kw_patch_i32(w, len_at, (int32_t)(total - BATCH_LOG_OVERHEAD));
    uint32_t crc = crc32c(0, w->buf + start + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES);
    kw_patch_i32(w, crc_at, (int32_t)crc);
    return 0;
}

void rec_builder_free(rec_builder *b) { kw_free(&b->recs); }

/* ---- timestamp lookup ---- */

int records_find_timestamp(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                           int64_t *timestamp, void *ctx) {
    batch_header h;
    if (check_v2_header(batch, len, &h) != 0) return -1;
    if (h.max_timestamp < ts) return 0; /* nothing in this batch can match */
    kwriter scratch;
    kw_init(&scratch);
    rec_iter it;
    int rc = iter_open(&it, batch, len, NULL, &scratch);
    (void)ctx; /* decompression uses scratch: nothing of it outlives the call */
    if (rc == 0) {
        rec_record rec;
        while ((rc = rec_iter_next(&it, &rec)) == 1) {
            if (rec.timestamp >= ts) {
                *offset = rec.offset;
                *timestamp = rec.timestamp;
                break;
            }
        }
    }
    kw_free(&scratch);
    return rc;
}

/* ---- down-conversion ---- */

static void write_legacy(kwriter *out, int8_t magic, int64_t offset, int8_t attributes, int64_t ts,
                         kbytes key, kbytes value) {
    size_t start = out->len;
    kw_i64(out, offset);
    size_t size_at = kw_reserve(out, 4);
    size_t crc_at = kw_reserve(out, 4);
    kw_i8(out, magic);
    kw_i8(out, attributes);
    if (magic == 1) kw_i64(out, ts);
    kw_bytes(out, false, key);
    kw_bytes(out, false, value);
    if (out->err) return;
    kw_patch_i32(out, size_at, (int32_t)(out->len - start - LEGACY_LOG_OVERHEAD));
    uLong crc = crc32(0L, out->buf + crc_at + 4, (uInt)(out->len - crc_at - 4));
    kw_patch_i32(out, crc_at, (int32_t)(uint32_t)crc);
}

int records_down_convert_from(const uint8_t *in, size_t len, int8_t magic, int64_t first_offset,
                              kwriter *out, karena *a) {
    if (magic != 0 && magic != 1) return -1;
    (void)a; /* scratch below is reused across batches instead */
    kwriter scratch;
    kw_init(&scratch);
    int rc = 0;
    for (size_t pos = 0; pos + LEGACY_LOG_OVERHEAD <= len && rc == 0;) {
        const uint8_t *b = in + pos;
        int32_t blen = (int32_t)bh_get_u32(b + BATCH_OFF_LENGTH);
        if (blen < LEGACY_OVERHEAD_V0) { rc = -1; break; }
        size_t size = (size_t)blen + LEGACY_LOG_OVERHEAD;
        if (size > len - pos) break; /* partial batch at the end of a fetch range */
        pos += size;
        int8_t bmagic = (int8_t)b[BATCH_OFF_MAGIC];
        if (bmagic != 2) {
            if (bmagic == magic) kw_raw(out, b, size); /* already in the wanted format */
            else rc = -1;
            continue;
        }
        rec_iter it;
        if (iter_open(&it, b, size, NULL, &scratch) != 0) { rc = -1; break; }
        if (it.h.attributes & BATCH_ATTR_CONTROL) continue; /* old consumers never see markers */
        int8_t attr = (magic == 1 && (it.h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND))
                          ? LEGACY_ATTR_TIMESTAMP_TYPE : 0;
        rec_record rec;
        int r;
        while ((r = rec_iter_next(&it, &rec)) == 1)
            if (rec.offset >= first_offset)
                write_legacy(out, magic, rec.offset, attr, rec.timestamp, rec.key, rec.value);
        if (r < 0) rc = -1;
    }
    kw_free(&scratch);
    return rc == 0 && !out->err ? 0 : -1;
}

int records_down_convert(const uint8_t *in, size_t len, int8_t magic, kwriter *out, karena *a) {
    return records_down_convert_from(in, len, magic, INT64_MIN, out, a);
}

/* ---- broker-side recompression ---- */

int records_recompress(const uint8_t *batch, size_t len, int codec, karena *a, uint8_t **out, size_t *out_len) {
    rec_iter it;
    if (rec_iter_init(&it, batch, len, a) != 0) return -1;
    const batch_header *h = &it.h;
    rec_builder b;
    rec_builder_init(&b, codec, h->base_offset, h->producer_id, h->producer_epoch, h->base_sequence,
                     (h->attributes & BATCH_ATTR_TRANSACTIONAL) != 0, (h->attributes & BATCH_ATTR_CONTROL) != 0);
    rec_builder_set_leader_epoch(&b, h->partition_leader_epoch);
    if (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) rec_builder_set_log_append_time(&b, h->max_timestamp);
    rec_record r;
    int rc;
    while ((rc = rec_iter_next(&it, &r)) == 1)
        rec_builder_add(&b, r.timestamp, r.key, r.value, r.headers, r.headers ? r.header_count : 0);
    kwriter w;
    kw_init(&w);
    if (rc == 0) rc = rec_builder_finish(&b, &w);
    rec_builder_free(&b);
    if (rc == 0 && !w.err) {
        *out = karena_alloc(a, w.len);
        if (*out) {
            memcpy(*out, w.buf, w.len);
            *out_len = w.len;
        } else {
            rc = -1;
        }
    } else {
        rc = -1;
    }
    kw_free(&w);
    return rc;
}
