/* offsets_format.c - __consumer_offsets records in Kafka's words (see
 * offsets_format.h).
 *
 * A group's members print in the iteration order of the Scala 2.13
 * mutable.HashMap GroupMetadata keeps them in (keyed by member id): table
 * of 16 buckets doubled when an insert reaches 3/4 of it, bucket = improved
 * String hash & (size - 1), ascending hash within a bucket, insertion order
 * among equal hashes. */
#include "tools/offsets_format.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/gen/consumer_protocol_assignment.h"
#include "protocol/gen/group_metadata_key.h"
#include "protocol/gen/group_metadata_value.h"
#include "protocol/gen/offset_commit_key.h"
#include "protocol/gen/offset_commit_value.h"
#include "protocol/wire.h"
#include "tools/java_compat.h"
#include "util/arena.h"
#include "util/strbuf.h"

static void sb_kstr(strbuf *b, kstr s) {
    if (s.len > 0) strbuf_add(b, s.p, (size_t)s.len);
}

/* "%X".format(BigInt(1, bytes)): upper-case hex without leading zeros. */
static void sb_hex(strbuf *b, const uint8_t *p, int32_t n) {
    if (n <= 0) return;
    int32_t i = 0;
    while (i < n && p[i] == 0) i++;
    if (i == n) {
        strbuf_add(b, "0", 1);
        return;
    }
    strbuf_printf(b, "%X", p[i]);
    for (i++; i < n; i++) strbuf_printf(b, "%02X", p[i]);
}

/* One member's "<id>=<assignment>" in Kafka's words. */
static void member_assignment(strbuf *b, const GroupMetadataValue_MemberMetadata *mm, bool consumer, karena *a) {
    sb_kstr(b, mm->member_id);
    strbuf_add(b, "=", 1);
    if (!consumer) {
        sb_hex(b, mm->assignment.p, mm->assignment.len);
        return;
    }
    kreader r;
    kr_init(&r, mm->assignment.p, mm->assignment.len > 0 ? (size_t)mm->assignment.len : 0);
    int16_t v = kr_i16(&r);
    if (v > 3) v = 3; /* checkAssignmentVersion: newer reads as the highest known */
    ConsumerProtocolAssignment asg;
    if (r.err || v < 0 || ConsumerProtocolAssignment_decode(&asg, &r, v, a) != 0 || r.err) {
        strbuf_add(b, "[]", 2); /* Kafka stops with a SchemaException here */
        return;
    }
    strbuf_add(b, "[", 1);
    bool first = true;
    for (int32_t t = 0; t < asg.assigned_partitions_count; t++) {
        const ConsumerProtocolAssignment_TopicPartition *tp = &asg.assigned_partitions[t];
        for (int32_t k = 0; k < tp->partitions_count; k++) {
            if (!first) strbuf_add(b, ", ", 2);
            first = false;
            sb_kstr(b, tp->topic);
            strbuf_printf(b, "-%" PRId32, tp->partitions[k]);
        }
    }
    strbuf_add(b, "]", 1);
    if (asg.user_data.len > 0) {
        size_t before = b->len;
        strbuf_add(b, ":", 1);
        sb_hex(b, asg.user_data.p, asg.user_data.len);
        if (b->len == before + 1) b->len = before; /* no digits: no suffix */
    }
}

typedef struct member_slot {
    int32_t index;  /* in the value's member list */
    int32_t hash;   /* improved hash */
    uint32_t bucket;
} member_slot;

static int slot_cmp(const void *x, const void *y) {
    const member_slot *a = x, *b = y;
    if (a->bucket != b->bucket) return a->bucket < b->bucket ? -1 : 1;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static char *group_value_json(const GroupMetadataValue *v, karena *a) {
    bool consumer = v->protocol_type.len == 8 && memcmp(v->protocol_type.p, "consumer", 8) == 0;
    int32_t n = v->members_count > 0 ? v->members_count : 0;
    member_slot *slots = calloc((size_t)(n ? n : 1), sizeof *slots);
    if (!slots) return NULL;
    /* a map: a member id listed twice keeps its first place, its last value */
    uint32_t cap = 16;
    int32_t size = 0;
    for (int32_t i = 0; i < n; i++) {
        const kstr id = v->members[i].member_id;
        int32_t h = java_string_hash(id.p ? id.p : "", id.len > 0 ? (size_t)id.len : 0);
        h ^= (int32_t)((uint32_t)h >> 16);
        bool dup = false;
        for (int32_t j = 0; j < size && !dup; j++) {
            const kstr o = v->members[slots[j].index].member_id;
            if (o.len == id.len && (id.len <= 0 || memcmp(o.p, id.p, (size_t)id.len) == 0)) {
                slots[j].index = i;
                dup = true;
            }
        }
        if ((uint32_t)size + 1 >= cap * 3 / 4) cap *= 2;
        if (dup) continue;
        slots[size++] = (member_slot){i, h, 0};
    }
    for (int32_t i = 0; i < size; i++) slots[i].bucket = (uint32_t)slots[i].hash & (cap - 1);
    /* equal (bucket, hash): keep insertion order, which index gives except for a re-put duplicate */
    qsort(slots, (size_t)size, sizeof *slots, slot_cmp);
    strbuf asg = {0};
    strbuf_add(&asg, "{", 1);
    for (int32_t i = 0; i < size; i++) {
        if (i) strbuf_add(&asg, ",", 1);
        member_assignment(&asg, &v->members[slots[i].index], consumer, a);
    }
    strbuf_add(&asg, "}", 1);
    free(slots);
    strbuf out = {0};
    strbuf_add(&out, "{\"protocolType\":", 16);
    strbuf_json_string(&out, v->protocol_type.p ? v->protocol_type.p : "",
                   v->protocol_type.len > 0 ? (size_t)v->protocol_type.len : 0);
    strbuf_add(&out, ",\"protocol\":", 12);
    if (v->protocol.len < 0) strbuf_add(&out, "null", 4);
    else strbuf_json_string(&out, v->protocol.p ? v->protocol.p : "", (size_t)v->protocol.len);
    strbuf_printf(&out, ",\"generationId\":%" PRId32 ",\"assignment\":", v->generation);
    strbuf_json_string(&out, asg.p ? asg.p : "{}", asg.p ? asg.len : 2);
    strbuf_add(&out, "}", 1);
    bool oom = asg.oom || out.oom;
    free(asg.p);
    if (oom) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

static int fail(char **error_out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **error_out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(error_out, fmt, ap) < 0) *error_out = NULL;
    va_end(ap);
    return -1;
}

int offsets_format(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **key_out,
                   char **value_out, char **error_out) {
    *key_out = *value_out = *error_out = NULL;
    if (key_len < 0)
        return fail(error_out, "org.apache.kafka.common.KafkaException: Failed to decode message using offset topic "
                               "decoder (message had a missing key)");
    karena a;
    karena_init(&a, 16u << 20);
    kreader r;
    kr_init(&r, key, (size_t)key_len);
    int16_t kv = kr_i16(&r);
    int rc = 0;
    if (r.err) {
        rc = fail(error_out, "java.nio.BufferUnderflowException");
    } else if (kv == 0 || kv == 1) {
        OffsetCommitKey k;
        if (OffsetCommitKey_decode(&k, &r, kv, &a) != 0 || r.err) {
            rc = fail(error_out, "java.nio.BufferUnderflowException");
            goto out;
        }
        strbuf ks = {0};
        strbuf_add(&ks, "offset_commit::group=", 21);
        sb_kstr(&ks, k.group);
        strbuf_add(&ks, ",partition=", 11);
        sb_kstr(&ks, k.topic);
        strbuf_printf(&ks, "-%" PRId32, k.partition);
        *key_out = ks.p;
        if (!value || value_len < 0) {
            *value_out = strdup("<DELETE>");
            goto out;
        }
        kreader vr;
        kr_init(&vr, value, (size_t)value_len);
        int16_t vv = kr_i16(&vr);
        OffsetCommitValue ov;
        if (vr.err || vv < 0 || vv > 4) {
            rc = fail(error_out, "java.lang.IllegalStateException: Unknown offset message version: %d", vv);
            goto out;
        }
        if (OffsetCommitValue_decode(&ov, &vr, vv, &a) != 0 || vr.err) {
            rc = fail(error_out, "java.nio.BufferUnderflowException");
            goto out;
        }
        strbuf vs = {0};
        strbuf_printf(&vs, "offset=%" PRId64, ov.offset);
        if (ov.metadata.len > 0) {
            strbuf_add(&vs, ",metadata=", 10);
            sb_kstr(&vs, ov.metadata);
        }
        *value_out = vs.p;
    } else if (kv == 2) {
        GroupMetadataKey k;
        if (GroupMetadataKey_decode(&k, &r, kv, &a) != 0 || r.err) {
            rc = fail(error_out, "java.nio.BufferUnderflowException");
            goto out;
        }
        strbuf ks = {0};
        strbuf_add(&ks, "group_metadata::group=", 22);
        sb_kstr(&ks, k.group);
        *key_out = ks.p;
        if (!value || value_len < 0) {
            *value_out = strdup("<DELETE>");
            goto out;
        }
        kreader vr;
        kr_init(&vr, value, (size_t)value_len);
        int16_t vv = kr_i16(&vr);
        GroupMetadataValue gv;
        if (vr.err || vv < 0 || vv > 4) {
            rc = fail(error_out, "java.lang.IllegalStateException: Unknown group metadata message version: %d", vv);
            goto out;
        }
        if (GroupMetadataValue_decode(&gv, &vr, vv, &a) != 0 || vr.err) {
            rc = fail(error_out, "java.nio.BufferUnderflowException");
            goto out;
        }
        *value_out = group_value_json(&gv, &a);
    } else {
        if (asprintf(key_out, "unknown::version=%d", kv) < 0) *key_out = NULL;
    }
out:
    karena_free(&a);
    if (rc != 0) {
        free(*key_out);
        free(*value_out);
        *key_out = *value_out = NULL;
    }
    return rc;
}
