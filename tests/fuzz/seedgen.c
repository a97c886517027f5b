/* seedgen.c - writes the generated part of the fuzz seed corpora.
 *
 * Not a fuzz target: a one-off tool whose output is committed under
 * tests/fuzz/corpus/. It writes
 *   request/gen_<key>_v<version>   a frame for every request (api key,
 *                                  version) with schema defaults, encoded by
 *                                  the generated encoders;
 *   metadata/gen_<type>_v<version> every metadata record type and version,
 *                                  plus metadata/seq_topic, a realistic run
 *                                  (feature level, topic, partitions,
 *                                  configs, a change, a removal);
 *   segment/five_codecs_*          partition dirs built by plog_append from
 *                                  the v2 batches in corpus/records.
 * Captured client traffic (request/cap_*) comes from capture_requests.py.
 * Build and run from the repo root after `make`:
 *   cc -std=gnu11 -Isrc -D_GNU_SOURCE tests/fuzz/seedgen.c build/libsamsa.a \
 *      -lz -llz4 -lzstd -lsnappy -lm -lpthread -o build/seedgen && build/seedgen
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata/mlog.h"
#include "protocol/gen/kmsg.h"
#include "storage/log.h"

#define CORPUS "tests/fuzz/corpus"

static void write_seed(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, CORPUS "/%s", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, CORPUS "/%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void request_seeds(void) {
    karena a;
    karena_init(&a, 0);
    for (int i = 0; i < kapi_table_len; i++) {
        int16_t key = kapi_table[i].key;
        const kmsg_type *t = kmsg_request_type(key);
        if (!t) continue;
        for (int16_t v = t->min_version; v <= t->max_version; v++) {
            kwriter w;
            kw_init(&w);
            size_t size_at = kw_reserve(&w, 4);
            RequestHeader h;
            RequestHeader_init(&h);
            h.request_api_key = key;
            h.request_api_version = v;
            h.correlation_id = 7;
            h.client_id = KSTR_LIT("seed");
            RequestHeader_encode(&h, &w, kapi_request_header_version(key, v));
            void *m = karena_alloc(&a, t->size);
            t->init(m);
            t->encode(m, &w, v);
            kw_patch_i32(&w, size_at, (int32_t)(w.len - 4));
            char name[64];
            snprintf(name, sizeof name, "gen_%02d_v%02d", key, v);
            write_seed("request", name, w.buf, w.len);
            kw_free(&w);
            karena_reset(&a);
        }
    }
    karena_free(&a);
}

/* Append one record value as [uvarint length][value]. */
static void put_record(kwriter *out, int16_t type, int16_t version, const void *data) {
    kwriter w;
    kw_init(&w);
    mrecord rec = {type, version, data};
    if (mrecord_encode(&rec, &w) == 0) {
        kw_uvarint(out, (uint32_t)w.len);
        kw_raw(out, w.buf, w.len);
    }
    kw_free(&w);
}

static void metadata_seeds(void) {
    karena a;
    karena_init(&a, 0);
    for (int i = 0; i < kmsg_types_len; i++) {
        const kmsg_type *t = &kmsg_types[i];
        if (strcmp(t->kind, "metadata") != 0 || t->api_key < 0) continue;
        for (int16_t v = t->min_version; v <= t->max_version; v++) {
            void *m = karena_alloc(&a, t->size);
            t->init(m);
            kwriter w;
            kw_init(&w);
            put_record(&w, t->api_key, v, m);
            char name[64];
            snprintf(name, sizeof name, "gen_%02d_v%02d", t->api_key, v);
            write_seed("metadata", name, w.buf, w.len);
            kw_free(&w);
        }
    }

    kuuid id = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
    int32_t replicas[] = {1};
    kwriter w;
    kw_init(&w);
    FeatureLevelRecord fl;
    FeatureLevelRecord_init(&fl);
    fl.name = KSTR_LIT("metadata.version");
    fl.feature_level = 14;
    put_record(&w, KMETA_FEATURE_LEVEL_RECORD, 0, &fl);
    TopicRecord tr;
    TopicRecord_init(&tr);
    tr.name = KSTR_LIT("seed-topic");
    tr.topic_id = id;
    put_record(&w, KMETA_TOPIC_RECORD, 0, &tr);
    for (int32_t p = 0; p < 2; p++) {
        PartitionRecord pr;
        PartitionRecord_init(&pr);
        pr.partition_id = p;
        pr.topic_id = id;
        pr.replicas = replicas;
        pr.replicas_count = 1;
        pr.isr = replicas;
        pr.isr_count = 1;
        pr.leader = 1;
        put_record(&w, KMETA_PARTITION_RECORD, 0, &pr);
    }
    ConfigRecord cr;
    ConfigRecord_init(&cr);
    cr.resource_type = MRES_TOPIC;
    cr.resource_name = KSTR_LIT("seed-topic");
    cr.name = KSTR_LIT("retention.ms");
    cr.value = KSTR_LIT("1000");
    put_record(&w, KMETA_CONFIG_RECORD, 0, &cr);
    cr.resource_type = MRES_BROKER;
    cr.resource_name = KSTR_LIT("1");
    cr.name = KSTR_LIT("log.retention.ms");
    cr.value = KSTR_NULL;
    put_record(&w, KMETA_CONFIG_RECORD, 0, &cr);
    PartitionChangeRecord pc;
    PartitionChangeRecord_init(&pc);
    pc.partition_id = 1;
    pc.topic_id = id;
    pc.leader = 1;
    pc.isr = replicas;
    pc.isr_count = 1;
    put_record(&w, KMETA_PARTITION_CHANGE_RECORD, 0, &pc);
    ProducerIdsRecord pi;
    ProducerIdsRecord_init(&pi);
    pi.broker_id = 1;
    pi.next_producer_id = 1000;
    put_record(&w, KMETA_PRODUCER_IDS_RECORD, 0, &pi);
    RemoveTopicRecord rt;
    RemoveTopicRecord_init(&rt);
    rt.topic_id = id;
    put_record(&w, KMETA_REMOVE_TOPIC_RECORD, 0, &rt);
    write_seed("metadata", "seq_topic", w.buf, w.len);
    kw_free(&w);

    /* regression: a change on a partition whose epochs are at INT32_MAX
     * overflowed (UB) in mimage_apply */
    kw_init(&w);
    put_record(&w, KMETA_TOPIC_RECORD, 0, &tr);
    PartitionRecord pr;
    PartitionRecord_init(&pr);
    pr.partition_id = 0;
    pr.topic_id = id;
    pr.replicas = replicas;
    pr.replicas_count = 1;
    pr.isr = replicas;
    pr.isr_count = 1;
    pr.leader = 1;
    pr.leader_epoch = INT32_MAX;
    pr.partition_epoch = INT32_MAX;
    put_record(&w, KMETA_PARTITION_RECORD, 0, &pr);
    pc.partition_id = 0;
    put_record(&w, KMETA_PARTITION_CHANGE_RECORD, 0, &pc);
    write_seed("metadata", "regress_epoch_overflow", w.buf, w.len);
    kw_free(&w);
    karena_free(&a);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20;
    uint8_t *p = malloc(cap);
    *n = p ? fread(p, 1, cap, f) : 0;
    fclose(f);
    return p;
}

static void put_section(kwriter *w, const uint8_t *p, size_t n) {
    kw_u16(w, (uint16_t)n);
    if (n) kw_raw(w, p, n);
}

/* Pack a partition dir into fuzz_segment's input layout. */
static void pack_segment(const char *dir, uint8_t flags, bool with_indexes, const char *name) {
    static const char *const names[] = {"00000000000000000000.index", "00000000000000000000.timeindex",
                                        "leader-epoch-checkpoint"};
    kwriter w;
    kw_init(&w);
    kw_i8(&w, (int8_t)flags);
    char path[512];
    for (int i = 0; i < 3; i++) {
        size_t n = 0;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        uint8_t *p = (with_indexes || i == 2) ? slurp(path, &n) : NULL;
        put_section(&w, p, n);
        free(p);
    }
    static const char ckpt[] = "0\n2\nfuzz 0 3\nother 7 120\n";
    put_section(&w, (const uint8_t *)ckpt, sizeof ckpt - 1);
    size_t n = 0;
    snprintf(path, sizeof path, "%s/00000000000000000000.log", dir);
    uint8_t *p = slurp(path, &n);
    if (p) kw_raw(&w, p, n);
    free(p);
    write_seed("segment", name, w.buf, w.len);
    kw_free(&w);
}

static void segment_seeds(void) {
    static const char *const batches[] = {"v2_none", "v2_gzip", "v2_snappy", "v2_lz4", "v2_zstd"};
    char root[] = "/tmp/seedgen.XXXXXX";
    if (!mkdtemp(root)) return;
    char dir[256], path[512], err[256];
    snprintf(dir, sizeof dir, "%s/fuzz-0", root);
    log_config cfg;
    log_config_defaults(&cfg);
    cfg.index_interval_bytes = 1; /* an index entry per batch */
    plog *l;
    if (plog_open(dir, "fuzz", 0, NULL, &cfg, 0, -1, false, &l, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
            snprintf(path, sizeof path, CORPUS "/records/%s", batches[i]);
            size_t n;
            uint8_t *p = slurp(path, &n);
            int64_t first, last;
            if (p && n > 1 && plog_append(l, p + 1, n - 1, round, &first, &last) != 0)
                fprintf(stderr, "append %s failed\n", batches[i]);
            free(p);
        }
    }
    plog_close(l);
    pack_segment(dir, 0, true, "five_codecs_indexed");
    pack_segment(dir, 0, false, "five_codecs_no_index");
    pack_segment(dir, 2, true, "five_codecs_trusted");
    pack_segment(dir, 1 | 4, true, "five_codecs_crcfix_append");
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", root);
}

int main(void) {
    request_seeds();
    metadata_seeds();
    segment_seeds();
    return 0;
}
