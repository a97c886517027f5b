/* fuzz_etcd.c - libFuzzer target for the etcd client's answer parsers: the
 * HTTP/1.1 response parser (fed in pieces whose sizes come from the input),
 * every answer decoder on the body, and the watch stream (JSON object
 * splitter + message decoder) on the same body. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_etcd tests/fuzz/corpus/etcd
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mstore/etcd_internal.h"

#define FUZZ_MAX_INPUT (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > FUZZ_MAX_INPUT) return 0;
    /* the first byte picks the piece size (0 = all at once) */
    size_t piece = data[0];
    data++;
    size--;
    http_resp r;
    http_resp_init(&r);
    json_split s = {0};
    int rc = HTTP_MORE;
    size_t off = 0;
    while (off < size && rc == HTTP_MORE) {
        size_t n = piece ? piece : size;
        if (n > size - off) n = size - off;
        size_t used = 0;
        rc = http_resp_feed(&r, data + off, n, &used);
        if (used > n) __builtin_trap();
        off += used;
        if (rc == HTTP_MORE && used != n) __builtin_trap();
        /* a stream consumer drains complete objects as they come */
        if (rc == HTTP_MORE && http_resp_head_done(&r)) {
            size_t o, ol;
            int sr;
            while ((sr = json_split_next(&s, http_resp_data(&r), http_resp_avail(&r), &o, &ol)) == 1) {
                if (o + ol > http_resp_avail(&r)) __builtin_trap();
                etcd_watch_msg m;
                etcd_watch_msg_decode(&m, http_resp_data(&r) + o, ol);
                if (m.nevents < 0 || (m.nevents && !m.events)) __builtin_trap();
                etcd_watch_msg_free(&m);
                http_resp_consume(&r, o + ol);
                memset(&s, 0, sizeof s);
            }
            if (sr < 0) break;
        }
    }
    if (rc == HTTP_MORE) rc = http_resp_eof(&r);
    if (rc == HTTP_DONE) {
        for (int kind = EK_PUT; kind <= EK_COMPACT; kind++) {
            etcd_answer a;
            etcd_answer_decode(&a, kind, r.status, http_resp_data(&r), http_resp_avail(&r));
            if (a.r.status != ETCD_OK && !a.r.error) __builtin_trap();
            if (a.r.nkvs < 0 || (a.r.nkvs && !a.r.kvs)) __builtin_trap();
            for (int i = 0; i < a.r.nkvs; i++)
                if (!a.r.kvs[i].key || !a.r.kvs[i].value) __builtin_trap();
            if (a.r.status != ETCD_OK && a.r.nkvs) __builtin_trap();
            etcd_answer_free(&a);
        }
    }
    /* the decoders straight on the raw bytes too */
    etcd_watch_msg m;
    etcd_watch_msg_decode(&m, data, size);
    etcd_watch_msg_free(&m);
    http_resp_free(&r);
    return 0;
}
