/* records_view.c - walk the records of one v2 record batch (see records_view.h). */
#include "tools/records_view.h"

#include <stdio.h>
#include <string.h>

#include "protocol/batch_header.h"
#include "protocol/compress.h"

/* A decompressed batch body may not exceed this; bounds memory on bad input. */
#define RV_MAX_PLAIN (256u * 1024 * 1024)

int rv_iter_init(rv_iter *it, const uint8_t *batch, size_t size, char *err, size_t errlen) {
    memset(it, 0, sizeof *it);
    kw_init(&it->plain);
    if (size < BATCH_HEADER_SIZE) {
        snprintf(err, errlen, "Record batch is smaller than its header (%zu bytes)", size);
        return -1;
    }
    batch_header h;
    batch_header_parse(batch, &h);
    if (h.record_count < 0) {
        snprintf(err, errlen, "Found invalid record count %d in magic v2 batch", h.record_count);
        return -1;
    }
    const uint8_t *body = batch + BATCH_HEADER_SIZE;
    size_t body_len = size - BATCH_HEADER_SIZE;
    int codec = h.attributes & BATCH_ATTR_COMPRESSION_MASK;
    if (codec != KCODEC_NONE) {
        if (kdecompress(codec, body, body_len, &it->plain, RV_MAX_PLAIN) != 0 || it->plain.err) {
            snprintf(err, errlen, "Failed to decompress record batch (codec %s)", kcodec_name(codec));
            kw_free(&it->plain);
            return -1;
        }
        body = it->plain.buf;
        body_len = it->plain.len;
    }
    kr_init(&it->r, body, body_len);
    it->remaining = h.record_count;
    return 0;
}

static int fail(rv_iter *it, const char *msg) {
    snprintf(it->err, sizeof it->err, "%s", msg);
    return -1;
}

/* Reads a varint-length-prefixed byte string (-1 = null). */
static kbytes read_varbytes(kreader *r) {
    kbytes b = {NULL, -1};
    int32_t n = kr_varint(r);
    if (r->err || n < 0) return b;
    if ((size_t)n > kr_remaining(r)) {
        r->err = 1;
        return b;
    }
    b.p = kr_take(r, (size_t)n);
    b.len = n;
    return b;
}

int rv_iter_next(rv_iter *it, rv_record *out) {
    if (it->remaining <= 0) return 0;
    kreader *r = &it->r;
    int32_t len = kr_varint(r);
    if (r->err || len < 0 || (size_t)len > kr_remaining(r))
        return fail(it, "Record is larger than the bytes left in its batch");
    kreader rec;
    kr_init(&rec, kr_take(r, (size_t)len), (size_t)len);
    memset(out, 0, sizeof *out);
    out->attributes = kr_i8(&rec);
    out->timestamp_delta = kr_varlong(&rec);
    out->offset_delta = kr_varint(&rec);
    out->key = read_varbytes(&rec);
    out->value = read_varbytes(&rec);
    out->header_count = kr_varint(&rec);
    if (rec.err || out->header_count < 0) return fail(it, "Malformed record");
    out->headers = rec.buf + rec.pos;
    out->headers_len = kr_remaining(&rec);
    /* Check the headers now so rv_header_key never meets bad lengths. */
    for (int32_t i = 0; i < out->header_count; i++) {
        int32_t klen = kr_varint(&rec);
        if (rec.err || klen < 0 || (size_t)klen > kr_remaining(&rec)) return fail(it, "Malformed record header");
        kr_skip(&rec, (size_t)klen);
        (void)read_varbytes(&rec);
        if (rec.err) return fail(it, "Malformed record header");
    }
    if (kr_remaining(&rec) != 0) return fail(it, "Record has bytes after its last header");
    it->remaining--;
    return 1;
}

void rv_iter_free(rv_iter *it) { kw_free(&it->plain); }

kstr rv_header_key(const rv_record *r, int32_t i) {
    kreader h;
    kr_init(&h, r->headers, r->headers_len);
    for (int32_t k = 0; k < r->header_count && !h.err; k++) {
        int32_t klen = kr_varint(&h);
        if (h.err || klen < 0 || (size_t)klen > kr_remaining(&h)) break;
        const char *kp = (const char *)kr_take(&h, (size_t)klen);
        if (k == i) return (kstr){kp, klen};
        (void)read_varbytes(&h);
    }
    return KSTR_NULL;
}
