/* fuzz_records.c - libFuzzer target for record batch parsing.
 *
 * Feeds arbitrary bytes to the produce-path validator (which may rewrite its
 * input, so it gets a private copy), then to the iterator, the timestamp
 * lookup and down-conversion on the original bytes. The first input byte
 * picks validation options so that both timestamp types, compacted topics
 * and internal appends are covered, and whether the harness repairs the
 * first checksum so that mutations get past the CRC check. Build:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_records.c src/protocol/records.c src/protocol/compress.c \
 *     src/protocol/wire.c src/protocol/errors.c src/util/arena.c src/util/crc32c.c \
 *     -lz -llz4 -lzstd -lsnappy -o build/fuzz_records
 *   build/fuzz_records tests/fuzz/corpus/records
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "protocol/records.h"
#include "util/crc32c.h"

#define FUZZ_MAX_DECOMPRESSED (4u << 20)

/* Make the first entry's checksum right, so mutations reach the checks
 * behind the CRC instead of all dying there. */
static void fix_first_crc(uint8_t *p, size_t size) {
    if (size < 26) return;
    size_t n = (size_t)(int32_t)bh_get_u32(p + BATCH_OFF_LENGTH) + BATCH_LOG_OVERHEAD;
    if ((int32_t)bh_get_u32(p + BATCH_OFF_LENGTH) < 14 || n > size) return;
    if (p[BATCH_OFF_MAGIC] == 2 && n >= BATCH_HEADER_SIZE)
        bh_put_u32(p + BATCH_OFF_CRC, crc32c(0, p + BATCH_OFF_ATTRIBUTES, n - BATCH_OFF_ATTRIBUTES));
    else if (p[BATCH_OFF_MAGIC] < 2)
        bh_put_u32(p + 12, (uint32_t)crc32(0L, p + 16, (uInt)(n - 16)));
}

static void iterate(const uint8_t *data, size_t size, karena *a) {
    rec_iter it;
    if (rec_iter_init(&it, data, size, a) != 0) return;
    rec_record r;
    size_t sum = 0;
    while (rec_iter_next(&it, &r) == 1) {
        /* touch every byte the iterator hands out */
        for (int32_t i = 0; i < r.key.len; i++) sum += r.key.p[i];
        for (int32_t i = 0; i < r.value.len; i++) sum += r.value.p[i];
        for (int32_t h = 0; r.headers && h < r.header_count; h++) {
            for (int32_t i = 0; i < r.headers[h].key.len; i++) sum += r.headers[h].key.p[i];
            for (int32_t i = 0; i < r.headers[h].value.len; i++) sum += r.headers[h].value.p[i];
        }
    }
    volatile size_t sink = sum;
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    data++;
    size--;

    karena a;
    karena_init(&a, 64u << 20);
    rec_validate_opts o;
    rec_validate_opts_default(&o);
    o.now_ms = 1700000000000LL;
    o.max_decompressed = FUZZ_MAX_DECOMPRESSED;
    o.log_append_time = flags & 1;
    o.compacted = flags & 2;
    o.internal_origin = flags & 4;
    if (flags & 8) o.timestamp_difference_max_ms = 3600 * 1000;

    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (flags & 0x20) fix_first_crc(copy, size);
    rec_batch_info info;
    uint8_t *conv = NULL;
    size_t conv_len = 0;
    const char *msg = NULL;
    int rc = records_validate(copy, size, &o, &a, &info, &conv, &conv_len, &msg);
    if (rc == 0 && conv) {
        /* a converted legacy set must itself be a valid internal batch */
        iterate(conv, conv_len, &a);
        rec_validate_opts o2 = o;
        o2.internal_origin = true;
        o2.log_append_time = false;
        o2.timestamp_difference_max_ms = INT64_MAX;
        o2.compacted = false;
        o2.max_message_bytes = 0;
        if (records_validate(conv, conv_len, &o2, &a, NULL, NULL, NULL, &msg) != 0) __builtin_trap();
    }
    free(copy);

    iterate(data, size, &a);
    iterate(data, size, NULL);
    int64_t off, ts;
    (void)records_find_timestamp(data, size, 1700000000000LL, &off, &ts, NULL);
    kwriter w;
    kw_init(&w);
    (void)records_down_convert(data, size, (int8_t)((flags >> 4) & 1), &w, &a);
    kw_free(&w);
    karena_free(&a);
    return 0;
}
