/* txn_log.c - see txn_log.h. */
#include "txn/txn_log.h"

#include <string.h>

#include "protocol/gen/transaction_log_key.h"
#include "protocol/gen/transaction_log_value.h"
#include "util/arena.h"

void txn_log_key(kwriter *w, const char *tid, size_t tid_len) {
    TransactionLogKey k;
    TransactionLogKey_init(&k);
    k.transactional_id = (kstr){tid, (int32_t)tid_len};
    kw_i16(w, TXN_LOG_KEY_VERSION);
    TransactionLogKey_encode(&k, w, TXN_LOG_KEY_VERSION);
}

int txn_log_value(kwriter *w, const txn_transit *t) {
    if (t->state == TXN_EMPTY && t->partitions.n) return -1;
    const txn_tpset *s = &t->partitions;
    kw_i16(w, TXN_LOG_VALUE_VERSION);
    kw_i64(w, t->producer_id);
    kw_i16(w, t->producer_epoch);
    kw_i32(w, t->timeout_ms);
    kw_i8(w, (int8_t)t->state);
    if (t->state == TXN_EMPTY) {
        kw_array_len(w, false, -1);
    } else {
        /* v0 by hand: the set is sorted, so each topic's partitions are one run */
        int ntopics = 0;
        for (int i = 0; i < s->n; i++)
            if (i == 0 || strcmp(s->v[i].topic, s->v[i - 1].topic)) ntopics++;
        kw_array_len(w, false, ntopics);
        for (int i = 0; i < s->n;) {
            int j = i;
            while (j < s->n && strcmp(s->v[j].topic, s->v[i].topic) == 0) j++;
            kw_string(w, false, kstr_from(s->v[i].topic));
            kw_array_len(w, false, j - i);
            for (int k = i; k < j; k++) kw_i32(w, s->v[k].partition);
            i = j;
        }
    }
    kw_i64(w, t->last_update_ms);
    kw_i64(w, t->start_ms);
    return 0;
}

int txn_log_parse_key(const uint8_t *p, size_t n, kstr *tid) {
    kreader r;
    kr_init(&r, p, n);
    int16_t version = kr_i16(&r);
    if (r.err) return -1;
    if (version != 0) return 0;
    *tid = kr_string(&r, false, false);
    return r.err || tid->len < 0 ? -1 : 1;
}

int txn_log_parse_value(const uint8_t *p, size_t n, txn_transit *out) {
    memset(out, 0, sizeof *out);
    txn_tpset_init(&out->partitions);
    kreader r;
    kr_init(&r, p, n);
    int16_t version = kr_i16(&r);
    if (r.err || version < 0 || version > 1) return -1;
    karena a;
    karena_init(&a, n * 8 + 4096); /* decoded arrays are at most a few times the input */
    TransactionLogValue v;
    int rc = TransactionLogValue_decode(&v, &r, version, &a);
    if (rc == 0 && (v.transaction_status < 0 || v.transaction_status >= TXN_NSTATES)) rc = -1;
    if (rc == 0) {
        out->producer_id = v.producer_id;
        out->last_producer_id = TXN_NO_PRODUCER_ID;
        out->producer_epoch = v.producer_epoch;
        out->last_producer_epoch = TXN_NO_PRODUCER_EPOCH;
        out->timeout_ms = v.transaction_timeout_ms;
        out->state = (txn_state_id)v.transaction_status;
        out->last_update_ms = v.transaction_last_update_timestamp_ms;
        out->start_ms = v.transaction_start_timestamp_ms;
        if (out->state != TXN_EMPTY) {
            for (int32_t i = 0; rc == 0 && i < v.transaction_partitions_count; i++) {
                const TransactionLogValue_PartitionsSchema *ps = &v.transaction_partitions[i];
                /* no topic name holds a NUL; the sets keep C strings */
                if (ps->topic.len > 0 && memchr(ps->topic.p, 0, (size_t)ps->topic.len)) rc = -1;
                for (int32_t j = 0; rc == 0 && j < ps->partition_ids_count; j++)
                    if (txn_tpset_add(&out->partitions, ps->topic.p ? ps->topic.p : "",
                                      (size_t)(ps->topic.len > 0 ? ps->topic.len : 0),
                                      ps->partition_ids[j]))
                        rc = -1;
            }
        }
    }
    karena_free(&a);
    if (rc != 0) txn_transit_free(out);
    return rc;
}

txn_meta *txn_log_meta(const char *tid, size_t tid_len, const txn_transit *v) {
    txn_meta *m = txn_meta_new(tid, tid_len, v->producer_id, TXN_NO_PRODUCER_ID, v->producer_epoch,
                               TXN_NO_PRODUCER_EPOCH, v->timeout_ms, v->state, v->last_update_ms);
    if (!m) return NULL;
    m->start_ms = v->start_ms;
    if (v->state != TXN_EMPTY && txn_tpset_copy(&m->partitions, &v->partitions)) {
        txn_meta_free(m);
        return NULL;
    }
    return m;
}

int32_t txn_java_string_hash(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    uint32_t h = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = p[i];
        size_t extra = cp >= 0xf0 && cp < 0xf8 ? 3 : cp >= 0xe0 && cp < 0xf0 ? 2 : cp >= 0xc0 && cp < 0xe0 ? 1 : 0;
        bool bad = cp >= 0x80 && extra == 0;
        if (extra) {
            if (i + extra >= len) bad = true;
            for (size_t k = 1; !bad && k <= extra; k++)
                if ((p[i + k] & 0xc0) != 0x80) bad = true;
            if (!bad) {
                cp &= 0x3fu >> extra;
                for (size_t k = 1; k <= extra; k++) cp = cp << 6 | (p[i + k] & 0x3f);
            }
        }
        if (bad) {
            cp = 0xfffd; /* Java's decoder replaces a malformed byte */
            extra = 0;
        }
        i += 1 + extra;
        if (cp >= 0x10000) { /* a surrogate pair: two UTF-16 units */
            cp -= 0x10000;
            h = h * 31 + (0xd800 + (cp >> 10));
            h = h * 31 + (0xdc00 + (cp & 0x3ff));
        } else {
            h = h * 31 + cp;
        }
    }
    return (int32_t)h;
}

int32_t txn_partition_for(const char *id, size_t len, int32_t num_partitions) {
    int32_t h = txn_java_string_hash(id, len);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h); /* Kafka's Utils.abs */
    return num_partitions > 0 ? a % num_partitions : 0;
}
