/* records_view.h - walk the records of one v2 record batch, for the tools.
 *
 * A read-only view used by kafka-dump-log: decompresses the batch body when
 * needed (via protocol/compress.h) and yields each record's fields as slices
 * into either the batch or the decompressed copy. Every length is checked
 * against the bytes that remain before it is used.
 */
#ifndef SAMSA_TOOLS_RECORDS_VIEW_H
#define SAMSA_TOOLS_RECORDS_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/wire.h"

typedef struct rv_record {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    kbytes key;            /* len -1: null key */
    kbytes value;          /* len -1: null value */
    int32_t header_count;
    const uint8_t *headers; /* start of the header section, for rv_header_key */
    size_t headers_len;
} rv_record;

typedef struct rv_iter {
    kreader r;             /* over the (decompressed) records section */
    kwriter plain;         /* owns decompressed bytes, if any */
    int32_t remaining;     /* records left per the batch header */
    char err[160];
} rv_iter;

/* Prepares iteration over a whole batch (header included, size bytes).
 * Returns 0, or -1 with a message in err (bad header, decompression failed).
 * rv_iter_free() must be called after a successful init. */
int rv_iter_init(rv_iter *it, const uint8_t *batch, size_t size, char *err, size_t errlen);
/* 1 with *out filled, 0 at the end, -1 on a malformed record (it->err). */
int rv_iter_next(rv_iter *it, rv_record *out);
void rv_iter_free(rv_iter *it);

/* Key of the i-th header of a record (i < header_count); null kstr if bad. */
kstr rv_header_key(const rv_record *r, int32_t i);

#endif
