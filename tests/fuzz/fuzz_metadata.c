/* fuzz_metadata.c - libFuzzer target for metadata log records and the image.
 *
 * The input is a run of metadata record values, each as [uvarint length]
 * [value], the way record values sit in __cluster_metadata-0's batches.
 * Each value goes to mrecord_decode; what decodes must re-encode to bytes
 * that decode and encode to the same bytes again, and is then applied to
 * one image shared by the whole run, so sequences (topic, then partitions,
 * then changes and removals) reach mimage_apply's consistency checks.
 * Build and run:
 *   make fuzz-build && build-fuzz/fuzz_metadata tests/fuzz/corpus/metadata
 */
#include <stdlib.h>
#include <string.h>

#include "metadata/image.h"
#include "metadata/mlog.h"
#include "protocol/gen/kmsg.h"

#define FUZZ_ARENA_LIMIT (64u << 20)
#define FUZZ_MAX_RECORDS 64

static void check_round_trip(const mrecord *rec, karena *a) {
    kwriter w1, w2;
    kw_init(&w1);
    kw_init(&w2);
    if (mrecord_encode(rec, &w1) < 0 || w1.err) goto out;
    mrecord again;
    if (mrecord_decode(w1.buf, w1.len, a, &again) < 0) __builtin_trap();
    if (again.type != rec->type || again.version != rec->version || !again.data) __builtin_trap();
    if (mrecord_encode(&again, &w2) < 0 || w2.err) goto out;
    if (w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len) != 0) __builtin_trap();
out:
    kw_free(&w1);
    kw_free(&w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mimage *img = mimage_new(1);
    if (!img) return 0;
    karena a;
    karena_init(&a, FUZZ_ARENA_LIMIT);
    kreader r;
    kr_init(&r, data, size);
    for (int n = 0; n < FUZZ_MAX_RECORDS && kr_remaining(&r) > 0; n++) {
        uint32_t len = kr_uvarint(&r);
        if (r.err || len > kr_remaining(&r)) break;
        /* a private copy, so ASan catches reads past the value */
        uint8_t *value = malloc(len ? len : 1);
        if (!value) break;
        memcpy(value, kr_take(&r, len), len);
        mrecord rec;
        if (mrecord_decode(value, len, &a, &rec) == 0 && rec.data) {
            const kmsg_type *t = kmsg_metadata_type(rec.type);
            /* versions past the schema's are not ours to re-encode */
            if (t && rec.version >= t->min_version && rec.version <= t->max_version)
                check_round_trip(&rec, &a);
            img->last_offset = n;
            (void)mimage_apply(img, &rec);
        }
        free(value);
    }
    karena_free(&a);
    mimage_free(img);
    return 0;
}
