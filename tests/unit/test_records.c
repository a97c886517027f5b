/* test_records.c - record batches and codecs: round trips, golden bytes,
 * corruptions, legacy conversion, down-conversion.
 *
 * The golden arrays were written out from the format descriptions in
 * records.h (Kafka's DefaultRecordBatch / LegacyRecord layouts): a plain
 * batch, an idempotent batch with a header and a null value as librdkafka
 * sends them, and v0/v1 message sets including a gzip wrapper.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/compress.h"
#include "protocol/errors.h"
#include "protocol/records.h"
#include "util/crc32c.h"

#include <zlib.h>

static int passed, failed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) passed++;                                                      \
        else {                                                                   \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                      \
        if (_a == _b) passed++;                                                  \
        else {                                                                   \
            failed++;                                                            \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, \
                    __LINE__, #a, _a, #b, _b);                                   \
        }                                                                        \
    } while (0)

static const uint8_t golden_simple[70] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x00, 0x00, 0x00, 0x00,
    0x02, 0xe9, 0x9b, 0x8d, 0xd8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf,
    0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00,
    0x00, 0x02, 0x6b, 0x02, 0x76, 0x00,
};
static const uint8_t golden_idem[93] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x51, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x15, 0x32, 0xb3, 0x9e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x8b, 0xcf,
    0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x1c, 0x00, 0x00,
    0x00, 0x06, 0x6b, 0x65, 0x79, 0x0a, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x20, 0x00, 0x0a, 0x02,
    0x01, 0x01, 0x02, 0x0a, 0x74, 0x72, 0x61, 0x63, 0x65, 0x06, 0x61, 0x62, 0x63,
};
static const uint8_t golden_v1[74] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1a, 0xa5, 0xda, 0x6a, 0x62,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x00, 0x00, 0x00, 0x02, 0x6b, 0x31,
    0x00, 0x00, 0x00, 0x02, 0x76, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x18, 0xda, 0x67, 0x44, 0xc2, 0x01, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x07,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x02, 0x76, 0x32,
};
static const uint8_t golden_v0[28] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0xa4, 0xad, 0x20, 0x11,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x01, 0x62,
};
static const uint8_t golden_v1_gzip[93] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x51, 0xb1, 0x35, 0x38, 0x93,
    0x01, 0x01, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
    0x00, 0x3b, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x63, 0x60, 0x80, 0x03,
    0x89, 0xb7, 0xa1, 0x76, 0xe1, 0x8c, 0x40, 0x06, 0x63, 0xf7, 0xf9, 0xa7, 0x19, 0x60, 0x46, 0x05,
    0x88, 0xa8, 0x84, 0xca, 0x83, 0x44, 0xc4, 0x6f, 0xcd, 0xf9, 0x7f, 0x12, 0xae, 0x86, 0x09, 0xc4,
    0xa8, 0xfa, 0x0f, 0x04, 0x00, 0x56, 0xa7, 0x56, 0xaa, 0x47, 0x00, 0x00, 0x00,
};

#define NOW 1700000000000LL

static kbytes B(const char *s) { return s ? (kbytes){(const uint8_t *)s, (int32_t)strlen(s)} : (kbytes){NULL, -1}; }

static bool bytes_eq(kbytes a, const char *s) {
    if (!s) return a.len == -1;
    return a.len == (int32_t)strlen(s) && memcmp(a.p, s, (size_t)a.len) == 0;
}

static rec_validate_opts opts_now(void) {
    rec_validate_opts o;
    rec_validate_opts_default(&o);
    o.now_ms = NOW;
    return o;
}

/* Recompute a v2 batch's CRC after a test edits it. */
static void fix_crc(uint8_t *b, size_t size) {
    bh_put_u32(b + BATCH_OFF_CRC, crc32c(0, b + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
}

static bool crc_ok(const uint8_t *b, size_t size) {
    return bh_get_u32(b + BATCH_OFF_CRC) == crc32c(0, b + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES);
}

static int validate(uint8_t *buf, size_t len, const rec_validate_opts *o, karena *a, rec_batch_info *info) {
    const char *msg = NULL;
    uint8_t *conv = NULL;
    size_t conv_len = 0;
    int rc = records_validate(buf, len, o, a, info, &conv, &conv_len, &msg);
    if (rc != 0 && !msg) {
        failed++;
        fprintf(stderr, "error %d without message\n", rc);
    }
    return rc;
}

/* The standard three-record batch used by the round trips. */
static void build_sample(kwriter *w, int codec) {
    rec_builder b;
    rec_builder_init(&b, codec, 0, -1, -1, -1, false, false);
    rec_header h1[1] = {{B("h1"), B("v1")}};
    rec_header h3[2] = {{B("a"), B("")}, {B("b"), B(NULL)}};
    rec_builder_add(&b, NOW - 10, B("key0"), B("value0"), h1, 1);
    rec_builder_add(&b, NOW - 5, B("key1"), B(NULL), NULL, 0);
    rec_builder_add(&b, NOW - 7, B(NULL), B(""), h3, 2);
    CHECK_EQ(rec_builder_finish(&b, w), 0);
    rec_builder_free(&b);
}

static void check_sample_records(const uint8_t *batch, size_t len, int64_t base_offset, karena *a) {
    rec_iter it;
    CHECK_EQ(rec_iter_init(&it, batch, len, a), 0);
    rec_record r;
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(r.offset, base_offset);
    CHECK_EQ(r.timestamp, NOW - 10);
    CHECK(bytes_eq(r.key, "key0") && bytes_eq(r.value, "value0"));
    CHECK_EQ(r.header_count, 1);
    CHECK(r.headers && bytes_eq(r.headers[0].key, "h1") && bytes_eq(r.headers[0].value, "v1"));
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(r.offset, base_offset + 1);
    CHECK_EQ(r.timestamp, NOW - 5);
    CHECK(bytes_eq(r.key, "key1") && bytes_eq(r.value, NULL));
    CHECK_EQ(r.header_count, 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(r.timestamp, NOW - 7);
    CHECK(bytes_eq(r.key, NULL) && bytes_eq(r.value, ""));
    CHECK_EQ(r.header_count, 2);
    CHECK(r.headers && bytes_eq(r.headers[0].key, "a") && bytes_eq(r.headers[0].value, "") &&
          bytes_eq(r.headers[1].key, "b") && bytes_eq(r.headers[1].value, NULL));
    CHECK_EQ(rec_iter_next(&it, &r), 0);
}

static void test_round_trips(void) {
    for (int codec = 0; codec <= 4; codec++) {
        karena a;
        karena_init(&a, 0);
        kwriter w;
        kw_init(&w);
        build_sample(&w, codec);
        batch_header h;
        batch_header_parse(w.buf, &h);
        CHECK_EQ(h.magic, 2);
        CHECK_EQ(h.attributes & 7, codec);
        CHECK_EQ(h.record_count, 3);
        CHECK_EQ(h.last_offset_delta, 2);
        CHECK_EQ(h.max_timestamp, NOW - 5);
        CHECK_EQ(h.base_timestamp, NOW - 10);
        CHECK_EQ(batch_total_size(&h), w.len);
        CHECK(crc_ok(w.buf, w.len));

        rec_validate_opts o = opts_now();
        rec_batch_info info;
        CHECK_EQ(validate(w.buf, w.len, &o, &a, &info), KERR_NONE);
        CHECK_EQ(info.batch_count, 1);
        CHECK_EQ(info.record_count, 3);
        CHECK_EQ(info.max_timestamp, NOW - 5);
        CHECK_EQ(info.offset_of_max_timestamp, codec ? 2 : 1);
        CHECK_EQ(info.first_timestamp, NOW - 10);
        CHECK_EQ(info.codec, codec);
        CHECK_EQ(info.producer_id, -1);
        CHECK(!info.is_transactional && !info.is_control);
        check_sample_records(w.buf, w.len, 0, &a);

        /* the storage layer then numbers it */
        CHECK_EQ(records_assign_offsets(w.buf, w.len, 500, 7), 503);
        CHECK(crc_ok(w.buf, w.len)); /* baseOffset and epoch lie outside the CRC */
        check_sample_records(w.buf, w.len, 500, &a);

        int64_t off, ts;
        CHECK_EQ(records_find_timestamp(w.buf, w.len, NOW - 6, &off, &ts, &a), 1);
        CHECK_EQ(off, 501);
        CHECK_EQ(ts, NOW - 5);
        CHECK_EQ(records_find_timestamp(w.buf, w.len, NOW - 100, &off, &ts, NULL), 1);
        CHECK_EQ(off, 500);
        CHECK_EQ(records_find_timestamp(w.buf, w.len, NOW, &off, &ts, NULL), 0);

        /* LogAppendTime rewrites the header and keeps the CRC right */
        records_assign_offsets(w.buf, w.len, 0, 0);
        o.log_append_time = true;
        o.now_ms = NOW + 1000;
        CHECK_EQ(validate(w.buf, w.len, &o, &a, &info), KERR_NONE);
        batch_header_parse(w.buf, &h);
        CHECK(h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND);
        CHECK_EQ(h.max_timestamp, NOW + 1000);
        CHECK(crc_ok(w.buf, w.len));
        CHECK_EQ(info.max_timestamp, NOW + 1000);
        CHECK_EQ(info.offset_of_max_timestamp, 2);
        rec_iter it;
        rec_record r;
        CHECK_EQ(rec_iter_init(&it, w.buf, w.len, &a), 0);
        while (rec_iter_next(&it, &r) == 1) CHECK_EQ(r.timestamp, NOW + 1000);
        kw_free(&w);
        karena_free(&a);
    }
}

static void test_golden(void) {
    karena a;
    karena_init(&a, 0);
    rec_validate_opts o = opts_now();
    rec_batch_info info;
    uint8_t buf[256];

    memcpy(buf, golden_simple, sizeof golden_simple);
    CHECK_EQ(validate(buf, sizeof golden_simple, &o, &a, &info), KERR_NONE);
    CHECK(memcmp(buf, golden_simple, sizeof golden_simple) == 0); /* nothing to rewrite */
    CHECK_EQ(info.record_count, 1);
    CHECK_EQ(info.max_timestamp, NOW);
    rec_iter it;
    rec_record r;
    CHECK_EQ(rec_iter_init(&it, buf, sizeof golden_simple, NULL), 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK(bytes_eq(r.key, "k") && bytes_eq(r.value, "v"));
    CHECK_EQ(r.timestamp, NOW);
    CHECK_EQ(rec_iter_next(&it, &r), 0);

    /* the builder writes the same bytes from the same inputs */
    rec_builder b;
    rec_builder_init(&b, 0, 0, -1, -1, -1, false, false);
    rec_builder_set_leader_epoch(&b, 0);
    rec_builder_add(&b, NOW, B("k"), B("v"), NULL, 0);
    kwriter w;
    kw_init(&w);
    CHECK_EQ(rec_builder_finish(&b, &w), 0);
    CHECK_EQ(w.len, sizeof golden_simple);
    CHECK(w.len == sizeof golden_simple && memcmp(w.buf, golden_simple, w.len) == 0);
    rec_builder_free(&b);
    kw_free(&w);

    memcpy(buf, golden_idem, sizeof golden_idem);
    CHECK_EQ(validate(buf, sizeof golden_idem, &o, &a, &info), KERR_NONE);
    CHECK_EQ(info.producer_id, 1000);
    CHECK_EQ(info.producer_epoch, 0);
    CHECK_EQ(info.base_sequence, 0);
    CHECK_EQ(info.record_count, 2);
    CHECK_EQ(info.max_timestamp, NOW + 5);
    CHECK_EQ(info.offset_of_max_timestamp, 1);
    CHECK_EQ(rec_iter_init(&it, buf, sizeof golden_idem, &a), 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK(bytes_eq(r.key, "key") && bytes_eq(r.value, "hello"));
    CHECK_EQ(r.sequence, 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK(bytes_eq(r.key, NULL) && bytes_eq(r.value, NULL));
    CHECK_EQ(r.offset, 1);
    CHECK_EQ(r.sequence, 1);
    CHECK_EQ(r.timestamp, NOW + 5);
    CHECK_EQ(r.header_count, 1);
    CHECK(r.headers && bytes_eq(r.headers[0].key, "trace") && bytes_eq(r.headers[0].value, "abc"));
    CHECK_EQ(rec_iter_next(&it, &r), 0);
    karena_free(&a);
}

/* Run validation on a copy of golden_idem after edit() changes it. */
static int corrupt_case(void (*edit)(uint8_t *, size_t *), bool recrc, rec_validate_opts *o) {
    uint8_t buf[512];
    size_t len = sizeof golden_idem;
    memcpy(buf, golden_idem, len);
    edit(buf, &len);
    if (recrc) fix_crc(buf, len);
    karena a;
    karena_init(&a, 0);
    rec_validate_opts def = opts_now();
    rec_batch_info info;
    int rc = validate(buf, len, o ? o : &def, &a, &info);
    karena_free(&a);
    return rc;
}

static void e_crc(uint8_t *b, size_t *n) { (void)n; b[70] ^= 1; }
static void e_len_small(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + 8, 10); }
static void e_len_mid(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + 8, 40); }
static void e_len_big(uint8_t *b, size_t *n) { bh_put_u32(b + 8, (uint32_t)(*n)); }
static void e_trunc(uint8_t *b, size_t *n) { (void)b; *n -= 1; }
static void e_trunc_head(uint8_t *b, size_t *n) { (void)b; *n = 8; }
static void e_trailing(uint8_t *b, size_t *n) { memset(b + *n, 0, 5); *n += 5; }
static void e_magic(uint8_t *b, size_t *n) { (void)n; b[16] = 3; }
static void e_magic_neg(uint8_t *b, size_t *n) { (void)n; b[16] = 0xff; }
static void e_lod(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, 5); }
static void e_count(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + BATCH_OFF_RECORD_COUNT, 3); bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, 2); }
static void e_count_low(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + BATCH_OFF_RECORD_COUNT, 1); bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, 0); }
static void e_count_zero(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + BATCH_OFF_RECORD_COUNT, 0); bh_put_u32(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)-1); }
static void e_codec(uint8_t *b, size_t *n) { (void)n; b[BATCH_OFF_ATTRIBUTES + 1] |= 5; }
static void e_control(uint8_t *b, size_t *n) { (void)n; b[BATCH_OFF_ATTRIBUTES + 1] |= BATCH_ATTR_CONTROL; }
static void e_base_offset(uint8_t *b, size_t *n) { (void)n; b[7] = 9; }
static void e_seq(uint8_t *b, size_t *n) { (void)n; bh_put_u32(b + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1); }
static void e_lat(uint8_t *b, size_t *n) { (void)n; b[BATCH_OFF_ATTRIBUTES + 1] |= BATCH_ATTR_TIMESTAMP_LOG_APPEND; }
static void e_two(uint8_t *b, size_t *n) { memcpy(b + *n, b, *n); *n *= 2; }
/* first record: length 0x12? replace its key length varint by a 6-byte one */
static void e_varint(uint8_t *b, size_t *n) {
    size_t r = BATCH_HEADER_SIZE; /* record 0: len, attr, tsDelta, offDelta, keyLen... */
    b[r + 4] = 0xff; b[r + 5] = 0xff; b[r + 6] = 0xff; b[r + 7] = 0xff; b[r + 8] = 0xff; b[r + 9] = 0x7f;
    (void)n;
}
static void e_offdelta(uint8_t *b, size_t *n) { (void)n; b[BATCH_HEADER_SIZE + 3] = 0x04; } /* delta 2 */
static void e_reclen(uint8_t *b, size_t *n) { (void)n; b[BATCH_HEADER_SIZE] += 2; } /* record claims 1 more byte */
static void e_hdrcount(uint8_t *b, size_t *n) { b[*n - 11] = 0x01; } /* 2nd record: headers -1 */
static void e_old_ts(uint8_t *b, size_t *n) { (void)n; bh_put_u64(b + BATCH_OFF_BASE_TIMESTAMP, 1000); }

static void test_corruptions(void) {
    CHECK_EQ(corrupt_case(e_crc, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_len_small, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_len_mid, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_len_big, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_trunc, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_trunc_head, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_trailing, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_magic, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_magic_neg, false, NULL), KERR_CORRUPT_MESSAGE);
    CHECK_EQ(corrupt_case(e_lod, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_count, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_count_low, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_count_zero, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_codec, true, NULL), KERR_UNSUPPORTED_COMPRESSION_TYPE);
    CHECK_EQ(corrupt_case(e_control, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_base_offset, false, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_seq, true, NULL), KERR_INVALID_RECORD);
    /* LogAppendTime from a producer: Kafka only objects on a LogAppendTime
     * topic; on a CreateTime topic the records take maxTimestamp and the
     * flag is cleared */
    CHECK_EQ(corrupt_case(e_lat, true, NULL), KERR_NONE);
    CHECK_EQ(corrupt_case(e_two, false, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_varint, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_offdelta, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_reclen, true, NULL), KERR_INVALID_RECORD);
    CHECK_EQ(corrupt_case(e_hdrcount, true, NULL), KERR_INVALID_RECORD);

    rec_validate_opts o = opts_now();
    o.max_message_bytes = 80;
    CHECK_EQ(corrupt_case(e_crc, false, &o), KERR_MESSAGE_TOO_LARGE); /* size is checked before CRC */
    o = opts_now();
    o.log_append_time = true;
    CHECK_EQ(corrupt_case(e_lat, true, &o), KERR_INVALID_TIMESTAMP);
    o = opts_now();
    o.timestamp_difference_max_ms = 60000;
    CHECK_EQ(corrupt_case(e_old_ts, true, &o), KERR_INVALID_TIMESTAMP);
    o.use_before_after = true;
    o.timestamp_before_max_ms = INT64_MAX;
    o.timestamp_after_max_ms = 0;
    CHECK_EQ(corrupt_case(e_old_ts, true, &o), KERR_NONE);
    o = opts_now();
    o.compacted = true;
    CHECK_EQ(corrupt_case(e_old_ts, true, &o), KERR_INVALID_RECORD); /* 2nd record has no key */
    o = opts_now();
    o.internal_origin = true;
    CHECK_EQ(corrupt_case(e_two, false, &o), KERR_NONE);
    CHECK_EQ(corrupt_case(e_control, true, &o), KERR_NONE);

    /* an empty records field */
    karena a;
    karena_init(&a, 0);
    o = opts_now();
    uint8_t z[1];
    CHECK_EQ(validate(z, 0, &o, &a, NULL), KERR_INVALID_RECORD);

    /* a wrong maxTimestamp is corrected (CreateTime), CRC with it */
    uint8_t buf[256];
    memcpy(buf, golden_idem, sizeof golden_idem);
    bh_put_u64(buf + BATCH_OFF_MAX_TIMESTAMP, 5);
    fix_crc(buf, sizeof golden_idem);
    CHECK_EQ(validate(buf, sizeof golden_idem, &o, &a, NULL), KERR_NONE);
    CHECK(memcmp(buf, golden_idem, sizeof golden_idem) == 0);

    /* rec_iter notices the same structural problems */
    rec_iter it;
    rec_record r;
    memcpy(buf, golden_idem, sizeof golden_idem);
    bh_put_u32(buf + BATCH_OFF_RECORD_COUNT, 1);
    CHECK_EQ(rec_iter_init(&it, buf, sizeof golden_idem, &a), 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(rec_iter_next(&it, &r), -1); /* bytes left over */
    memcpy(buf, golden_idem, sizeof golden_idem);
    bh_put_u32(buf + BATCH_OFF_RECORD_COUNT, 3);
    CHECK_EQ(rec_iter_init(&it, buf, sizeof golden_idem, &a), 0);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(rec_iter_next(&it, &r), 1);
    CHECK_EQ(rec_iter_next(&it, &r), -1); /* ran out */
    CHECK_EQ(rec_iter_init(&it, golden_idem, 60, &a), -1);
    CHECK_EQ(rec_iter_init(&it, golden_idem, sizeof golden_idem - 1, &a), -1);
    karena_free(&a);
}

/* A zstd batch whose records would inflate far past the bound. */
static void test_bomb(void) {
    size_t big = 32u << 20;
    uint8_t *zeros = calloc(1, big);
    kwriter recs;
    kw_init(&recs);
    /* one record whose value is 32 MiB of zeros */
    kw_varint(&recs, (int32_t)(1 + 1 + 1 + 1 + kw_uvarint_size((uint32_t)big * 2) + big + 1));
    kw_i8(&recs, 0);
    kw_varlong(&recs, 0);
    kw_varint(&recs, 0);
    kw_varint(&recs, -1);
    kw_varint(&recs, (int32_t)big);
    kw_raw(&recs, zeros, big);
    kw_varint(&recs, 0);
    for (int codec = 1; codec <= 4; codec++) {
        kwriter w;
        kw_init(&w);
        kw_i64(&w, 0);
        kw_i32(&w, 0);
        kw_i32(&w, -1);
        kw_i8(&w, 2);
        kw_u32(&w, 0);
        kw_i16(&w, (int16_t)codec);
        kw_i32(&w, 0);
        kw_i64(&w, NOW);
        kw_i64(&w, NOW);
        kw_i64(&w, -1);
        kw_i16(&w, -1);
        kw_i32(&w, -1);
        kw_i32(&w, 1);
        CHECK_EQ(kcompress(codec, recs.buf, recs.len, &w, 0), 0);
        CHECK(w.len < (4u << 20)); /* it compresses well */
        kw_patch_i32(&w, 8, (int32_t)(w.len - 12));
        fix_crc(w.buf, w.len);
        karena a;
        karena_init(&a, 0);
        rec_validate_opts o = opts_now();
        o.max_message_bytes = 8 << 20;
        o.max_decompressed = 1u << 20;
        CHECK_EQ(validate(w.buf, w.len, &o, &a, NULL), KERR_CORRUPT_MESSAGE);
        o.max_decompressed = 64u << 20;
        CHECK_EQ(validate(w.buf, w.len, &o, &a, NULL), KERR_NONE);
        kwriter out;
        kw_init(&out);
        CHECK_EQ(kdecompress(codec, w.buf + 61, w.len - 61, &out, 4096), -1);
        CHECK_EQ(out.len, 0); /* partial output dropped */
        kw_free(&out);
        kw_free(&w);
        karena_free(&a);
    }
    kw_free(&recs);
    free(zeros);
}

static void test_codecs(void) {
    size_t sizes[] = {0, 1, 100, 65535, 65536, 65537, 300000};
    for (int codec = 1; codec <= 4; codec++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            uint8_t *in = malloc(n + 1);
            uint32_t x = 12345;
            for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                in[i] = (i % 7 == 0) ? (uint8_t)(x >> 24) : (uint8_t)(i % 13); /* half compressible */
            }
            kwriter c, d;
            kw_init(&c);
            kw_init(&d);
            CHECK_EQ(kcompress(codec, in, n, &c, 0), 0);
            CHECK_EQ(kdecompress(codec, c.buf, c.len, &d, n), 0);
            CHECK(d.len == n && (n == 0 || memcmp(d.buf, in, n) == 0));
            if (n > 0) {
                kw_reset(&d);
                CHECK_EQ(kdecompress(codec, c.buf, c.len, &d, n - 1), -1); /* one byte over */
                kw_reset(&d);
                CHECK_EQ(kdecompress(codec, c.buf, c.len - 1, &d, n + 10), -1); /* truncated */
            }
            kw_free(&c);
            kw_free(&d);
            free(in);
        }
    }
    /* framing details */
    const char *text = "hello hello hello hello hello snappy";
    kwriter c, d;
    kw_init(&c);
    kw_init(&d);
    CHECK_EQ(kcompress(KCODEC_SNAPPY, (const uint8_t *)text, strlen(text), &c, 0), 0);
    CHECK(c.len > 16 && memcmp(c.buf, "\x82SNAPPY\0\0\0\0\1\0\0\0\1", 16) == 0);
    /* a raw snappy block, as some non-Java clients send */
    size_t raw_len = (size_t)(int32_t)bh_get_u32(c.buf + 16);
    CHECK_EQ(kdecompress(KCODEC_SNAPPY, c.buf + 20, raw_len, &d, 1000), 0);
    CHECK(d.len == strlen(text) && memcmp(d.buf, text, d.len) == 0);
    kw_reset(&c);
    kw_reset(&d);
    /* two concatenated gzip members read as one stream */
    CHECK_EQ(kcompress(KCODEC_GZIP, (const uint8_t *)"abc", 3, &c, 0), 0);
    CHECK(c.buf[0] == 0x1f && c.buf[1] == 0x8b);
    CHECK_EQ(kcompress(KCODEC_GZIP, (const uint8_t *)"def", 3, &c, 9), 0);
    CHECK_EQ(kdecompress(KCODEC_GZIP, c.buf, c.len, &d, 100), 0);
    CHECK(d.len == 6 && memcmp(d.buf, "abcdef", 6) == 0);
    kw_reset(&c);
    kw_reset(&d);
    /* lz4: Kafka's frame flags; a magic-0 client's wrong header checksum */
    CHECK_EQ(kcompress(KCODEC_LZ4, (const uint8_t *)text, strlen(text), &c, 0), 0);
    CHECK(c.len > 7 && c.buf[0] == 0x04 && c.buf[1] == 0x22 && c.buf[2] == 0x4d && c.buf[3] == 0x18);
    CHECK_EQ(c.buf[4] & 0x20, 0x20); /* independent blocks */
    CHECK_EQ(c.buf[5], 0x40);        /* 64 KiB blocks */
    c.buf[6] ^= 0x5a;
    CHECK_EQ(kdecompress(KCODEC_LZ4, c.buf, c.len, &d, 1000), -1);
    CHECK_EQ(kdecompress_lz4_legacy(c.buf, c.len, &d, 1000), 0);
    CHECK(d.len == strlen(text) && memcmp(d.buf, text, d.len) == 0);
    /* garbage and unknown codecs */
    kw_reset(&d);
    for (int codec = 0; codec <= 7; codec++)
        CHECK_EQ(kdecompress(codec, (const uint8_t *)"garbage!garbage!", 16, &d, 1000), -1);
    CHECK_EQ(kcompress(5, (const uint8_t *)"x", 1, &c, 0), -1);
    CHECK(strcmp(kcodec_name(KCODEC_ZSTD), "zstd") == 0);
    kw_free(&c);
    kw_free(&d);
}

static void check_converted(const uint8_t *conv, size_t len, int codec, int n, const char *const *keys,
                            const char *const *values, const int64_t *ts, karena *a) {
    batch_header h;
    CHECK(len >= BATCH_HEADER_SIZE);
    if (len < BATCH_HEADER_SIZE) return;
    batch_header_parse(conv, &h);
    CHECK_EQ(h.magic, 2);
    CHECK_EQ(h.attributes & 7, codec);
    CHECK_EQ(h.record_count, n);
    CHECK_EQ(h.producer_id, -1);
    CHECK_EQ(batch_total_size(&h), len);
    CHECK(crc_ok(conv, len));
    rec_iter it;
    rec_record r;
    CHECK_EQ(rec_iter_init(&it, conv, len, a), 0);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(rec_iter_next(&it, &r), 1);
        CHECK_EQ(r.offset, i);
        CHECK(bytes_eq(r.key, keys[i]));
        CHECK(bytes_eq(r.value, values[i]));
        CHECK_EQ(r.timestamp, ts[i]);
    }
    CHECK_EQ(rec_iter_next(&it, &r), 0);
}

static int validate_legacy(const uint8_t *src, size_t len, rec_validate_opts *o, karena *a,
                           rec_batch_info *info, uint8_t **conv, size_t *conv_len) {
    uint8_t *buf = karena_alloc(a, len);
    memcpy(buf, src, len);
    const char *msg;
    return records_validate(buf, len, o, a, info, conv, conv_len, &msg);
}

static void test_legacy(void) {
    karena a;
    karena_init(&a, 0);
    rec_validate_opts o = opts_now();
    rec_batch_info info;
    uint8_t *conv;
    size_t conv_len;

    CHECK_EQ(validate_legacy(golden_v1, sizeof golden_v1, &o, &a, &info, &conv, &conv_len), KERR_NONE);
    CHECK_EQ(info.source_magic, 1);
    CHECK_EQ(info.record_count, 2);
    CHECK_EQ(info.max_timestamp, NOW + 7);
    {
        const char *k[] = {"k1", NULL}, *v[] = {"v1", "v2"};
        int64_t ts[] = {NOW, NOW + 7};
        check_converted(conv, conv_len, 0, 2, k, v, ts, &a);
    }
    CHECK_EQ(validate_legacy(golden_v0, sizeof golden_v0, &o, &a, &info, &conv, &conv_len), KERR_NONE);
    {
        const char *k[] = {"a"}, *v[] = {"b"};
        int64_t ts[] = {-1};
        check_converted(conv, conv_len, 0, 1, k, v, ts, &a);
    }
    CHECK_EQ(validate_legacy(golden_v1_gzip, sizeof golden_v1_gzip, &o, &a, &info, &conv, &conv_len), KERR_NONE);
    CHECK_EQ(info.codec, KCODEC_GZIP);
    {
        const char *k[] = {"x", "z"}, *v[] = {"y", NULL};
        int64_t ts[] = {NOW + 1, NOW + 2};
        check_converted(conv, conv_len, KCODEC_GZIP, 2, k, v, ts, &a);
    }
    /* LogAppendTime on conversion */
    o.log_append_time = true;
    CHECK_EQ(validate_legacy(golden_v1, sizeof golden_v1, &o, &a, &info, &conv, &conv_len), KERR_NONE);
    {
        batch_header h;
        batch_header_parse(conv, &h);
        CHECK(h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND);
        CHECK_EQ(h.max_timestamp, NOW);
        CHECK_EQ(info.max_timestamp, NOW);
    }
    o.log_append_time = false;

    /* corruptions: outer CRC, inner CRC, mixed magic, wrapper + another message */
    uint8_t buf[512];
    memcpy(buf, golden_v1, sizeof golden_v1);
    buf[30] ^= 1;
    CHECK_EQ(validate_legacy(buf, sizeof golden_v1, &o, &a, &info, &conv, &conv_len), KERR_CORRUPT_MESSAGE);
    memcpy(buf, golden_v1, sizeof golden_v1);
    memcpy(buf + sizeof golden_v1, golden_v0, sizeof golden_v0);
    CHECK_EQ(validate_legacy(buf, sizeof golden_v1 + sizeof golden_v0, &o, &a, &info, &conv, &conv_len),
             KERR_INVALID_RECORD);
    memcpy(buf, golden_v1_gzip, sizeof golden_v1_gzip);
    memcpy(buf + sizeof golden_v1_gzip, golden_v1, sizeof golden_v1);
    CHECK_EQ(validate_legacy(buf, sizeof golden_v1_gzip + sizeof golden_v1, &o, &a, &info, &conv, &conv_len),
             KERR_INVALID_RECORD);
    o.timestamp_difference_max_ms = 3;
    CHECK_EQ(validate_legacy(golden_v1, sizeof golden_v1, &o, &a, &info, &conv, &conv_len), KERR_INVALID_TIMESTAMP);
    o.timestamp_difference_max_ms = INT64_MAX;

    /* an inner message with a bad CRC inside a correctly checksummed wrapper:
     * rebuild the wrapper around a damaged inner set */
    {
        uint8_t inner[128];
        size_t inner_len = sizeof golden_v1;
        memcpy(inner, golden_v1, inner_len);
        inner[37] ^= 1; /* in the first message's value */
        kwriter w, gz;
        kw_init(&w);
        kw_init(&gz);
        CHECK_EQ(kcompress(KCODEC_GZIP, inner, inner_len, &gz, 0), 0);
        kw_i64(&w, 1);
        size_t size_at = kw_reserve(&w, 4);
        size_t crc_at = kw_reserve(&w, 4);
        kw_i8(&w, 1);
        kw_i8(&w, 1);
        kw_i64(&w, NOW);
        kw_i32(&w, -1);
        kw_bytes(&w, false, (kbytes){gz.buf, (int32_t)gz.len});
        kw_patch_i32(&w, size_at, (int32_t)(w.len - 12));
        kw_patch_i32(&w, crc_at, (int32_t)crc32(0L, w.buf + 16, (uInt)(w.len - 16)));
        CHECK_EQ(validate_legacy(w.buf, w.len, &o, &a, &info, &conv, &conv_len), KERR_CORRUPT_MESSAGE);
        inner[37] ^= 1;
        kw_reset(&gz);
        CHECK_EQ(kcompress(KCODEC_GZIP, inner, inner_len, &gz, 0), 0);
        w.len = 30; /* back to just before the value */
        kw_bytes(&w, false, (kbytes){gz.buf, (int32_t)gz.len});
        kw_patch_i32(&w, size_at, (int32_t)(w.len - 12));
        kw_patch_i32(&w, crc_at, (int32_t)crc32(0L, w.buf + 16, (uInt)(w.len - 16)));
        CHECK_EQ(validate_legacy(w.buf, w.len, &o, &a, &info, &conv, &conv_len), KERR_NONE);
        kw_free(&w);
        kw_free(&gz);
    }
    karena_free(&a);
}

/* v2 -> v1/v0 -> (produce validation) -> v2 gives the records back. */
static void test_down_convert(void) {
    for (int codec = 0; codec <= 4; codec++) {
        for (int8_t magic = 0; magic <= 1; magic++) {
            karena a;
            karena_init(&a, 0);
            kwriter w, out;
            kw_init(&w);
            kw_init(&out);
            build_sample(&w, codec);
            /* a control batch in the range is dropped */
            rec_builder cb;
            rec_builder_init(&cb, 0, 3, 5, 0, -1, true, true);
            rec_builder_add(&cb, NOW, B("\0\0\0\0"), B("\0\0\0\0\0\0"), NULL, 0);
            CHECK_EQ(rec_builder_finish(&cb, &w), 0);
            rec_builder_free(&cb);
            records_assign_offsets(w.buf, w.len, 10, 0);
            CHECK_EQ(records_down_convert(w.buf, w.len, magic, &out, &a), 0);
            rec_validate_opts o = opts_now();
            rec_batch_info info;
            uint8_t *conv;
            size_t conv_len;
            CHECK_EQ(validate_legacy(out.buf, out.len, &o, &a, &info, &conv, &conv_len), KERR_NONE);
            const char *k[] = {"key0", "key1", NULL}, *v[] = {"value0", NULL, ""};
            int64_t ts1[] = {NOW - 10, NOW - 5, NOW - 7}, ts0[] = {-1, -1, -1};
            check_converted(conv, conv_len, 0, 3, k, v, magic ? ts1 : ts0, &a);
            CHECK_EQ((int64_t)bh_get_u64(out.buf), 10); /* absolute offsets */
            kw_reset(&out);
            CHECK_EQ(records_down_convert_from(w.buf, w.len - 1, magic, 11, &out, &a), 0);
            CHECK(out.len > 0 && (int64_t)bh_get_u64(out.buf) == 11);
            kw_free(&w);
            kw_free(&out);
            karena_free(&a);
        }
    }
    kwriter out;
    kw_init(&out);
    CHECK_EQ(records_down_convert(golden_simple, sizeof golden_simple, 2, &out, NULL), -1);
    kw_free(&out);
}

/* A topic's compression.type rewrites batches: every codec to every other,
 * records and CRC intact. */
static void test_recompress(void) {
    for (int from = 0; from <= 4; from++) {
        for (int to = 0; to <= 4; to++) {
            karena a;
            karena_init(&a, 0);
            kwriter w;
            kw_init(&w);
            build_sample(&w, from);
            uint8_t *out = NULL;
            size_t out_len = 0;
            CHECK_EQ(records_recompress(w.buf, w.len, to, &a, &out, &out_len), 0);
            if (out) {
                batch_header h;
                batch_header_parse(out, &h);
                CHECK_EQ(h.attributes & BATCH_ATTR_COMPRESSION_MASK, to);
                CHECK(crc_ok(out, out_len));
                check_sample_records(out, out_len, h.base_offset, &a);
            }
            kw_free(&w);
            karena_free(&a);
        }
    }
}

int main(void) {
    test_round_trips();
    test_recompress();
    test_golden();
    test_corruptions();
    test_bomb();
    test_codecs();
    test_legacy();
    test_down_convert();
    printf("records: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
