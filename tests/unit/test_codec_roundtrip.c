/* test_codec_roundtrip.c - checks the generated protocol codecs.
 *
 * 1. Every top-level type at every valid version: fill with deterministic
 *    non-default values, encode, decode, re-encode; the bytes must match
 *    and the decoder must consume exactly what the encoder wrote.
 * 2. Every strict prefix of those encodings (all of them for small ones, a
 *    sample for big ones) must fail to decode cleanly.
 * 3. Hostile array lengths are rejected before anything is allocated.
 * 4. A few encodings checked byte by byte against Kafka's documented layout.
 *
 * Run: make build/tests/test_codec_roundtrip && build/tests/test_codec_roundtrip
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/errors.h"
#include "protocol/gen/kmsg.h"
#include "protocol/wire.h"
#include "util/arena.h"

#include "unit_check.h"

/* ---- deterministic sample values used by gen_samples.inc ---- */

static uint64_t sample_counter;

static int64_t sample_number(void)
{
    sample_counter++;
    return (int64_t)(sample_counter * 7 + 3);
}

static bool sample_bool(void) { return (++sample_counter & 1) != 0; }

/* Null about a third of the time, where the version allows it. */
static bool sample_null(bool allowed) { return allowed && (++sample_counter % 3 == 0); }

static kuuid sample_uuid(void)
{
    kuuid u;
    sample_counter++;
    for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)(sample_counter * 31 + (uint64_t)i);
    return u;
}

static kstr sample_kstr(karena *a, bool nullable)
{
    if (sample_null(nullable)) return KSTR_NULL;
    return kstr_from(karena_sprintf(a, "s%llu", (unsigned long long)++sample_counter));
}

static kbytes sample_kbytes(karena *a, bool nullable)
{
    if (sample_null(nullable)) return (kbytes){NULL, -1};
    int32_t n = (int32_t)(++sample_counter % 5) + 1;
    uint8_t *p = karena_alloc(a, (size_t)n);
    for (int32_t i = 0; p && i < n; i++) p[i] = (uint8_t)(sample_counter + (uint64_t)i);
    return (kbytes){p, p ? n : 0};
}

static krecords sample_krecords(karena *a, bool nullable)
{
    kbytes b = sample_kbytes(a, nullable);
    return (krecords){b.p, b.len, -1, 0};
}

#include "gen_samples.inc"

/* ---- round trips ---- */

/* memcmp with empty buffers allowed (an empty kwriter has buf == NULL). */
static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static const struct sample_entry *find_sample(const char *name)
{
    for (size_t i = 0; i < sizeof sample_table / sizeof sample_table[0]; i++)
        if (strcmp(sample_table[i].name, name) == 0) return &sample_table[i];
    return NULL;
}

/* Decode every (or a sample of every) strict prefix; each must fail. */
static void check_prefixes(const kmsg_type *t, int16_t v, const uint8_t *buf, size_t len)
{
    karena a;
    karena_init(&a, 0);
    void *m = malloc(t->size);
    size_t step = len <= 600 ? 1 : len / 300;
    int bad = 0;
    for (size_t n = 0; n < len; n += (n + 64 >= len ? 1 : step)) {
        kreader r;
        kr_init(&r, buf, n);
        karena_reset(&a);
        if (t->decode(m, &r, v, &a) != -1 || !r.err) bad++;
    }
    CHECK(bad == 0, "%s v%d: %d truncated prefixes decoded", t->name, v, bad);
    free(m);
    karena_free(&a);
}

static void roundtrip_one(const kmsg_type *t, const struct sample_entry *s, int16_t v)
{
    karena a;
    karena_init(&a, 0);
    kwriter w1, w2;
    kw_init(&w1);
    kw_init(&w2);
    void *m1 = karena_alloc(&a, t->size);
    void *m2 = karena_alloc(&a, t->size);

    s->fill(m1, v, &a);
    int rc = t->encode(m1, &w1, v);
    CHECK(rc == 0, "%s v%d: encode failed", t->name, v);

    kreader r;
    kr_init(&r, w1.buf, w1.len);
    rc = t->decode(m2, &r, v, &a);
    CHECK(rc == 0 && r.pos == w1.len, "%s v%d: decode rc=%d pos=%zu len=%zu", t->name, v, rc,
          r.pos, w1.len);

    rc = t->encode(m2, &w2, v);
    CHECK(rc == 0 && same_bytes(w1.buf, w1.len, w2.buf, w2.len),
          "%s v%d: re-encoding differs (%zu vs %zu bytes)", t->name, v, w1.len, w2.len);

    check_prefixes(t, v, w1.buf, w1.len);

    /* A freshly initialised struct must round-trip too (all defaults). */
    t->init(m1);
    kw_reset(&w1);
    kw_reset(&w2);
    t->encode(m1, &w1, v);
    kr_init(&r, w1.buf, w1.len);
    rc = t->decode(m2, &r, v, &a);
    t->encode(m2, &w2, v);
    CHECK(rc == 0 && r.pos == w1.len && same_bytes(w1.buf, w1.len, w2.buf, w2.len),
          "%s v%d: default struct does not round-trip", t->name, v);

    kw_free(&w1);
    kw_free(&w2);
    karena_free(&a);
}

static void test_roundtrips(void)
{
    int versions = 0;
    for (int i = 0; i < kmsg_types_len; i++) {
        const kmsg_type *t = &kmsg_types[i];
        const struct sample_entry *s = find_sample(t->name);
        CHECK(s != NULL, "%s: no sample filler", t->name);
        if (!s) continue;
        for (int v = t->min_version; v <= t->max_version; v++) {
            roundtrip_one(t, s, (int16_t)v);
            versions++;
        }
    }
    printf("codec: round-tripped %d types at %d versions\n", kmsg_types_len, versions);
}

/* ---- hostile lengths ---- */

static void expect_rejected(const char *what, const kmsg_type *t, int16_t v,
                            const uint8_t *buf, size_t len)
{
    karena a;
    karena_init(&a, 0);
    void *m = karena_alloc(&a, t->size);
    size_t before = a.total;
    kreader r;
    kr_init(&r, buf, len);
    int rc = t->decode(m, &r, v, &a);
    CHECK(rc == -1 && r.err, "%s: accepted", what);
    CHECK(a.total - before < 4096, "%s: allocated %zu bytes", what, a.total - before);
    karena_free(&a);
}

static void test_hostile_lengths(void)
{
    const kmsg_type *meta = kmsg_request_type(KAPI_METADATA);
    const kmsg_type *fetch = kmsg_request_type(KAPI_FETCH);
    CHECK(meta && fetch, "request types missing");
    if (!meta || !fetch) return;

    /* Metadata v1: topics count 0x7fffffff with nothing after it. */
    static const uint8_t m1[] = {0x7f, 0xff, 0xff, 0xff};
    expect_rejected("metadata v1 huge topics", meta, 1, m1, sizeof m1);
    /* Metadata v9 (flexible): compact count as a 5-byte varint. */
    static const uint8_t m9[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x00};
    expect_rejected("metadata v9 huge topics", meta, 9, m9, sizeof m9);
    /* Negative count other than -1. */
    static const uint8_t mneg[] = {0xff, 0xff, 0xff, 0xfe};
    expect_rejected("metadata v1 count -2", meta, 1, mneg, sizeof mneg);
    /* Null topics where v0 does not allow it. */
    static const uint8_t mnull[] = {0xff, 0xff, 0xff, 0xff};
    expect_rejected("metadata v0 null topics", meta, 0, mnull, sizeof mnull);

    /* Fetch v4: one topic whose partition count is huge. */
    static const uint8_t f4[] = {
        0xff, 0xff, 0xff, 0xff,           /* replica_id */
        0x00, 0x00, 0x01, 0xf4,           /* max_wait_ms */
        0x00, 0x00, 0x00, 0x01,           /* min_bytes */
        0x00, 0x10, 0x00, 0x00,           /* max_bytes */
        0x00,                             /* isolation_level */
        0x00, 0x00, 0x00, 0x01,           /* topics: 1 */
        0x00, 0x01, 't',                  /* topic "t" */
        0x10, 0x00, 0x00, 0x00,           /* partitions: 268435456 */
        0x00, 0x00, 0x00, 0x00,
    };
    expect_rejected("fetch v4 huge partitions", fetch, 4, f4, sizeof f4);

    /* A string length past the end of the buffer. */
    const kmsg_type *hdr = kmsg_type_by_name("RequestHeader");
    static const uint8_t h1[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x7f, 0xff, 'x'};
    expect_rejected("header v1 long client id", hdr, 1, h1, sizeof h1);
    /* A tagged field whose size runs past the end. */
    static const uint8_t h2[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                                 0xff, 0xff, 0x01, 0x07, 0x7f, 0x00};
    expect_rejected("header v2 long tagged field", hdr, 2, h2, sizeof h2);
}

/* ---- golden encodings ---- */

static void check_bytes(const char *what, const kwriter *w, const uint8_t *want, size_t n)
{
    bool same = w->err == 0 && same_bytes(w->buf, w->len, want, n);
    if (!same) {
        fprintf(stderr, "%s: got", what);
        for (size_t i = 0; i < w->len; i++) fprintf(stderr, " %02x", w->buf[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same, "%s: bytes differ", what);
}

static void test_golden(void)
{
    kwriter w;
    kw_init(&w);
    karena a;
    karena_init(&a, 0);

    /* ApiVersions v3 request, as the Java client sends it. */
    {
        ApiVersionsRequest req;
        ApiVersionsRequest_init(&req);
        req.client_software_name = KSTR_LIT("apache-kafka-java");
        req.client_software_version = KSTR_LIT("3.6.1");
        ApiVersionsRequest_encode(&req, &w, 3);
        static const uint8_t want[] = {
            18, 'a', 'p', 'a', 'c', 'h', 'e', '-', 'k', 'a', 'f', 'k', 'a', '-', 'j', 'a', 'v', 'a',
            6, '3', '.', '6', '.', '1',
            0, /* no tagged fields */
        };
        check_bytes("ApiVersionsRequest v3", &w, want, sizeof want);
        ApiVersionsRequest back;
        kreader r;
        kr_init(&r, want, sizeof want);
        CHECK(ApiVersionsRequest_decode(&back, &r, 3, &a) == 0 &&
                  kstr_eq_c(back.client_software_name, "apache-kafka-java") &&
                  kstr_eq_c(back.client_software_version, "3.6.1"),
              "ApiVersionsRequest v3 decode");
        /* v0 has no body at all. */
        kw_reset(&w);
        ApiVersionsRequest_encode(&req, &w, 0);
        CHECK(w.len == 0, "ApiVersionsRequest v0 should be empty");
    }

    /* Metadata v12 request with a null topics array ("all topics"). */
    {
        MetadataRequest req;
        MetadataRequest_init(&req);
        req.topics_count = -1;
        kw_reset(&w);
        MetadataRequest_encode(&req, &w, 12);
        static const uint8_t want[] = {
            0x00, /* topics: null (compact) */
            0x01, /* allow_auto_topic_creation: default true */
            0x00, /* include_topic_authorized_operations */
            0x00, /* no tagged fields */
        };
        check_bytes("MetadataRequest v12 null topics", &w, want, sizeof want);
        MetadataRequest back;
        kreader r;
        kr_init(&r, want, sizeof want);
        CHECK(MetadataRequest_decode(&back, &r, 12, &a) == 0 && back.topics_count == -1 &&
                  back.allow_auto_topic_creation,
              "MetadataRequest v12 decode");
    }

    /* RequestHeader v2: client id stays a classic (int16) string even in
     * the flexible header, then a tagged-field section. An unknown tag
     * is skipped on decode. */
    {
        static const uint8_t in[] = {
            0x00, 0x12,             /* api key 18 */
            0x00, 0x03,             /* api version 3 */
            0x00, 0x00, 0x00, 0x07, /* correlation id */
            0x00, 0x05, 'h', 'e', 'l', 'l', 'o',
            0x01,                   /* one tagged field */
            0x05, 0x02, 0xaa, 0xbb, /* tag 5, 2 bytes */
        };
        RequestHeader h;
        kreader r;
        kr_init(&r, in, sizeof in);
        int rc = RequestHeader_decode(&h, &r, 2, &a);
        CHECK(rc == 0 && r.pos == sizeof in && h.request_api_key == 18 &&
                  h.request_api_version == 3 && h.correlation_id == 7 &&
                  kstr_eq_c(h.client_id, "hello"),
              "RequestHeader v2 decode with unknown tag");
        kw_reset(&w);
        RequestHeader_encode(&h, &w, 2);
        /* Re-encoded: the same fields, an empty tagged-field section. */
        uint8_t want2[sizeof in - 4];
        memcpy(want2, in, sizeof want2 - 1);
        want2[sizeof want2 - 1] = 0x00;
        check_bytes("RequestHeader v2 encode", &w, want2, sizeof want2);

        /* v1: a null client id is int16 -1. */
        h.client_id = KSTR_NULL;
        kw_reset(&w);
        RequestHeader_encode(&h, &w, 1);
        static const uint8_t want1[] = {0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0xff, 0xff};
        check_bytes("RequestHeader v1 null client id", &w, want1, sizeof want1);
    }

    /* ApiVersions v3 response with a tagged int64 (finalized features
     * epoch, tag 1) and a tagged bool (zk migration ready, tag 3). */
    {
        ApiVersionsResponse resp;
        ApiVersionsResponse_init(&resp);
        ApiVersionsResponse_ApiVersion key = {KAPI_API_VERSIONS, 0, 3};
        resp.api_keys = &key;
        resp.api_keys_count = 1;
        resp.finalized_features_epoch = 5;
        resp.zk_migration_ready = true;
        kw_reset(&w);
        ApiVersionsResponse_encode(&resp, &w, 3);
        static const uint8_t want[] = {
            0x00, 0x00,             /* error code */
            0x02,                   /* one api key (compact) */
            0x00, 0x12, 0x00, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x00, 0x00, 0x00, /* throttle time */
            0x02,                   /* two tagged fields */
            0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 5,
            0x03, 0x01, 0x01,
        };
        check_bytes("ApiVersionsResponse v3 tagged", &w, want, sizeof want);
        ApiVersionsResponse back;
        kreader r;
        kr_init(&r, want, sizeof want);
        CHECK(ApiVersionsResponse_decode(&back, &r, 3, &a) == 0 &&
                  back.finalized_features_epoch == 5 && back.zk_migration_ready &&
                  back.api_keys_count == 1 && back.api_keys[0].max_version == 3 &&
                  back.supported_features_count == 0,
              "ApiVersionsResponse v3 decode");
        /* At v0 the tagged fields do not exist and nothing is flexible. */
        kw_reset(&w);
        ApiVersionsResponse_encode(&resp, &w, 0);
        static const uint8_t want0[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                        0x00, 0x12, 0x00, 0x00, 0x00, 0x03};
        check_bytes("ApiVersionsResponse v0", &w, want0, sizeof want0);
    }

    /* Fetch v15 request: replica_state is a tagged struct (tag 1); it is
     * written only because it differs from its default. */
    {
        FetchRequest req;
        FetchRequest_init(&req);
        req.max_wait_ms = 500;
        req.min_bytes = 1;
        req.max_bytes = 1024;
        req.session_epoch = -1;
        req.replica_state.replica_id = 2;
        req.replica_state.replica_epoch = 9;
        kw_reset(&w);
        FetchRequest_encode(&req, &w, 15);
        static const uint8_t want[] = {
            0x00, 0x00, 0x01, 0xf4, /* max_wait_ms */
            0x00, 0x00, 0x00, 0x01, /* min_bytes */
            0x00, 0x00, 0x04, 0x00, /* max_bytes */
            0x00,                   /* isolation_level */
            0x00, 0x00, 0x00, 0x00, /* session_id */
            0xff, 0xff, 0xff, 0xff, /* session_epoch */
            0x01,                   /* topics: empty */
            0x01,                   /* forgotten topics: empty */
            0x01,                   /* rack id "" */
            0x01,                   /* one tagged field */
            0x01, 0x0d,             /* tag 1, 13 bytes */
            0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 9, 0x00,
        };
        check_bytes("FetchRequest v15 tagged struct", &w, want, sizeof want);
    }

    /* The API table and header versions. */
    {
        const kapi_info *p = kapi_lookup(KAPI_PRODUCE);
        CHECK(p && strcmp(p->name, "Produce") == 0 && p->min_version == 0 &&
                  p->max_version == 9 && p->first_flexible == 9,
              "kapi_lookup(Produce)");
        const kapi_info *q = kapi_lookup(KAPI_DESCRIBE_QUORUM);
        CHECK(q && strcmp(q->name, "DescribeQuorum") == 0, "kapi_lookup(DescribeQuorum)");
        CHECK(kapi_lookup(-1) == NULL && kapi_lookup(10000) == NULL, "kapi_lookup unknown");
        CHECK(KAPI_API_VERSIONS == 18 && KAPI_FETCH == 1, "api key enum");
        CHECK(kapi_request_header_version(KAPI_METADATA, 9) == 2 &&
                  kapi_request_header_version(KAPI_METADATA, 8) == 1 &&
                  kapi_request_header_version(KAPI_CONTROLLED_SHUTDOWN, 0) == 0,
              "request header versions");
        CHECK(kapi_response_header_version(KAPI_API_VERSIONS, 3) == 0 &&
                  kapi_response_header_version(KAPI_FETCH, 12) == 1 &&
                  kapi_response_header_version(KAPI_FETCH, 11) == 0,
              "response header versions");
        CHECK(KMETA_TOPIC_RECORD == 2, "metadata record enum");
        const kmsg_type *tr = kmsg_metadata_type(KMETA_TOPIC_RECORD);
        CHECK(tr && strcmp(tr->name, "TopicRecord") == 0, "kmsg_metadata_type");
        const kmsg_type *fr = kmsg_response_type(KAPI_FETCH);
        CHECK(fr && strcmp(fr->name, "FetchResponse") == 0, "kmsg_response_type");
    }

    /* Error codes. */
    CHECK(strcmp(kerr_name(KERR_UNKNOWN_TOPIC_OR_PARTITION), "UNKNOWN_TOPIC_OR_PARTITION") == 0 &&
              strcmp(kerr_message(3), "This server does not host this topic-partition.") == 0 &&
              strcmp(kerr_name(-1), "UNKNOWN_SERVER_ERROR") == 0 &&
              strcmp(kerr_name(9999), "UNKNOWN") == 0 && kerr_is_retriable(KERR_NOT_LEADER_OR_FOLLOWER) &&
              !kerr_is_retriable(KERR_NONE),
          "error table");

    karena_free(&a);
    kw_free(&w);
}

/* Cross-check mode, driven by codegen/crosscheck_kafka_python.py: each
 * stdin line is "request|response <api key> <version> <hex>" produced by
 * another Kafka implementation; decode it, re-encode it, and print OK when
 * every byte was consumed and the re-encoding is identical. */
static int reencode_lines(void)
{
    char kind[16];
    int key, version;
    static char hex[1 << 20];
    static uint8_t buf[1 << 19];
    int bad = 0;
    while (scanf("%15s %d %d %1048575s", kind, &key, &version, hex) == 4) {
        size_t n = strlen(hex) / 2;
        for (size_t i = 0; i < n; i++) {
            unsigned byte;
            sscanf(hex + 2 * i, "%2x", &byte);
            buf[i] = (uint8_t)byte;
        }
        const kmsg_type *t = strcmp(kind, "request") == 0 ? kmsg_request_type((int16_t)key)
                                                           : kmsg_response_type((int16_t)key);
        if (!t) {
            printf("FAIL no type\n");
            bad++;
            continue;
        }
        karena a;
        karena_init(&a, 0);
        void *m = karena_alloc(&a, t->size);
        kreader r;
        kr_init(&r, buf, n);
        int rc = t->decode(m, &r, (int16_t)version, &a);
        kwriter w;
        kw_init(&w);
        t->encode(m, &w, (int16_t)version);
        if (rc != 0 || r.pos != n) {
            printf("FAIL %s v%d decode rc=%d pos=%zu/%zu\n", t->name, version, rc, r.pos, n);
            bad++;
        } else if (!same_bytes(w.buf, w.len, buf, n)) {
            printf("FAIL %s v%d re-encoding differs\n", t->name, version);
            bad++;
        } else {
            printf("OK %s v%d\n", t->name, version);
        }
        kw_free(&w);
        karena_free(&a);
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--reencode") == 0) return reencode_lines();
    test_golden();
    test_hostile_lengths();
    test_roundtrips();
    printf("codec: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
