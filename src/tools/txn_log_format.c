/* txn_log_format.c - __transaction_state records in Kafka's words.
 *
 * The partitions of a transaction print in the iteration order of the
 * Scala 2.13 mutable.HashSet TransactionMetadata keeps them in: buckets
 * by (improved) TopicPartition hash, ascending hash within a bucket, the
 * table sized as addPartitions' ++= sizes it (one call per topic).
 */
#include "tools/txn_log_format.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/transaction_log_key.h"
#include "protocol/gen/transaction_log_value.h"
#include "protocol/wire.h"
#include "tools/java_compat.h"
#include "util/arena.h"

static const char *state_name(int8_t id) {
    static const char *names[] = {"Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
                                  "CompleteCommit", "CompleteAbort", "Dead",          "PrepareEpochFence"};
    return id >= 0 && id < 8 ? names[id] : NULL;
}

typedef struct tp_entry {
    const char *topic;
    int32_t topic_len;
    int32_t partition;
    int32_t hash; /* improved hash */
    uint32_t bucket;
} tp_entry;

static int tp_cmp(const void *a, const void *b) {
    const tp_entry *x = a, *y = b;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* scala.collection.mutable.HashSet.tableSizeFor */
static uint32_t table_size_for(int64_t capacity) {
    int64_t c = capacity - 1 > 4 ? capacity - 1 : 4;
    uint32_t hob = 1;
    while ((int64_t)hob * 2 <= c) hob *= 2;
    return hob * 2 > (1u << 30) ? (1u << 30) : hob * 2;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* "[t-0,t-1]" in HashSet order; Empty transactions list none (Kafka skips
 * addPartitions for them). */
static char *partitions_string(const TransactionLogValue *v) {
    size_t n = 0;
    for (int32_t i = 0; i < v->transaction_partitions_count; i++)
        if (v->transaction_partitions[i].partition_ids_count > 0) n += (size_t)v->transaction_partitions[i].partition_ids_count;
    if (v->transaction_status == 0) n = 0;
    tp_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return NULL;
    /* table size: each topic's ++= hints its own size, small sets grow on add */
    uint32_t cap = 16;
    size_t size = 0, k = 0;
    for (int32_t i = 0; n && i < v->transaction_partitions_count; i++) {
        const TransactionLogValue_PartitionsSchema *ps = &v->transaction_partitions[i];
        int32_t cnt = ps->partition_ids_count > 0 ? ps->partition_ids_count : 0;
        uint32_t target = table_size_for((int64_t)((double)(cnt + 1) / 0.75));
        if (target > cap) cap = target;
        char *topic = strndup(ps->topic.p ? ps->topic.p : "", ps->topic.len > 0 ? (size_t)ps->topic.len : 0);
        for (int32_t j = 0; j < cnt; j++) {
            /* a set: a partition listed twice counts once */
            bool dup = false;
            for (size_t q = 0; q < k && !dup; q++)
                dup = e[q].partition == ps->partition_ids[j] && e[q].topic_len == ps->topic.len &&
                      memcmp(e[q].topic, ps->topic.p, (size_t)(ps->topic.len > 0 ? ps->topic.len : 0)) == 0;
            if (dup) continue;
            if (cnt <= 4 && size + 1 >= (size_t)cap * 3 / 4) cap *= 2;
            int32_t h = topic ? java_topic_partition_hash(topic, ps->partition_ids[j]) : 0;
            e[k] = (tp_entry){ps->topic.p, ps->topic.len, ps->partition_ids[j], h ^ (int32_t)((uint32_t)h >> 16), 0};
            k++;
            size++;
        }
        free(topic);
    }
    for (size_t i = 0; i < k; i++) e[i].bucket = (uint32_t)e[i].hash & (cap - 1);
    qsort(e, k, sizeof *e, tp_cmp);
    size_t len = 3;
    for (size_t i = 0; i < k; i++) len += (size_t)(e[i].topic_len > 0 ? e[i].topic_len : 0) + 14;
    char *s = malloc(len);
    if (!s) {
        free(e);
        return NULL;
    }
    size_t pos = 0;
    s[pos++] = '[';
    for (size_t i = 0; i < k; i++)
        pos += (size_t)snprintf(s + pos, len - pos, "%s%.*s-%" PRId32, i ? "," : "",
                                e[i].topic_len > 0 ? (int)e[i].topic_len : 0, e[i].topic ? e[i].topic : "",
                                e[i].partition);
    snprintf(s + pos, len - pos, "]");
    free(e);
    return s;
}

void txn_log_format(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **key_out,
                    char **value_out) {
    *key_out = *value_out = NULL;
    karena a;
    karena_init(&a, 0);
    kreader r;
    kr_init(&r, key, key_len > 0 ? (size_t)key_len : 0);
    int16_t kv = kr_i16(&r);
    TransactionLogKey k;
    if (r.err || kv != 0 || TransactionLogKey_decode(&k, &r, kv, &a) != 0) {
        *key_out = dup_printf("unknown::version=%d", r.err ? -1 : kv);
        karena_free(&a);
        return;
    }
    *key_out = dup_printf("transaction_metadata::transactionalId=%.*s", k.transactional_id.len > 0 ? (int)k.transactional_id.len : 0,
                          k.transactional_id.p ? k.transactional_id.p : "");
    if (!value || value_len < 0) {
        *value_out = strdup("<DELETE>");
        karena_free(&a);
        return;
    }
    kr_init(&r, value, (size_t)value_len);
    int16_t vv = kr_i16(&r);
    TransactionLogValue v;
    if (r.err || vv < 0 || vv > 1 || TransactionLogValue_decode(&v, &r, vv, &a) != 0) {
        /* Kafka throws IllegalStateException here and the tool stops */
        *value_out = dup_printf("<unknown value version %d>", vv);
        karena_free(&a);
        return;
    }
    const char *state = state_name(v.transaction_status);
    char *parts = partitions_string(&v);
    *value_out = dup_printf("producerId:%" PRId64 ",producerEpoch:%d,state=%s,partitions=%s,"
                            "txnLastUpdateTimestamp=%" PRId64 ",txnTimeoutMs=%" PRId32,
                            v.producer_id, v.producer_epoch, state ? state : "Unknown", parts ? parts : "[]",
                            v.transaction_last_update_timestamp_ms, v.transaction_timeout_ms);
    free(parts);
    karena_free(&a);
}
