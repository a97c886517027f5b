/* fuzz_txn_log.c - libFuzzer target for __transaction_state records
 * (src/txn/txn_log.c).
 *
 * The input is [u8 key length][key][value]: the key goes to
 * txn_log_parse_key (and its id to txn_partition_for), the value to
 * txn_log_parse_value. A value that parses must re-encode (at v0) to bytes
 * that parse to the same fields and encode to the same bytes again, and
 * must load as a metadata that txn_on_load can resume. Build and run:
 *   make fuzz-build && build-fuzz/fuzz_txn_log tests/fuzz/corpus/txn_log
 */
#include <stdlib.h>
#include <string.h>

#include "txn/txn_coord.h"
#include "txn/txn_log.h"

static bool same(const txn_transit *a, const txn_transit *b) {
    return a->producer_id == b->producer_id && a->producer_epoch == b->producer_epoch &&
           a->timeout_ms == b->timeout_ms && a->state == b->state && a->start_ms == b->start_ms &&
           a->last_update_ms == b->last_update_ms && txn_tpset_equal(&a->partitions, &b->partitions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t klen = data[0];
    if (klen > size - 1) klen = size - 1;
    /* private copies, so ASan catches reads past either part */
    uint8_t *key = malloc(klen ? klen : 1);
    size_t vlen = size - 1 - klen;
    uint8_t *value = malloc(vlen ? vlen : 1);
    if (!key || !value) goto out;
    memcpy(key, data + 1, klen);
    memcpy(value, data + 1 + klen, vlen);

    kstr tid = KSTR_NULL;
    int krc = txn_log_parse_key(key, klen, &tid);
    if (krc == 1) {
        int32_t p = txn_partition_for(tid.p, (size_t)tid.len, 50);
        if (p < 0 || p >= 50) __builtin_trap();
    } else {
        tid = KSTR_LIT("fuzz");
    }

    txn_transit v;
    if (txn_log_parse_value(value, vlen, &v) == 0) {
        kwriter w1, w2;
        kw_init(&w1);
        kw_init(&w2);
        if (txn_log_value(&w1, &v) != 0 || w1.err) __builtin_trap(); /* Empty never has partitions */
        txn_transit again;
        if (txn_log_parse_value(w1.buf, w1.len, &again) != 0) __builtin_trap();
        if (!same(&v, &again)) __builtin_trap();
        if (txn_log_value(&w2, &again) != 0 || w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len) != 0)
            __builtin_trap();
        txn_meta *m = txn_log_meta(tid.p, (size_t)tid.len, &v);
        if (m) {
            bool resume = txn_on_load(m, 1, 0);
            bool prepared = v.state == TXN_PREPARE_COMMIT || v.state == TXN_PREPARE_ABORT;
            /* a record with a negative producer id or epoch cannot be completed (Kafka throws) */
            bool sane = v.producer_id >= 0 && v.producer_epoch >= 0;
            if (resume != (prepared && sane)) __builtin_trap();
            txn_meta_free(m);
        }
        txn_transit_free(&again);
        txn_transit_free(&v);
        kw_free(&w1);
        kw_free(&w2);
    }
out:
    free(key);
    free(value);
    return 0;
}
