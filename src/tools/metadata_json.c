/* metadata_json.c - metadata records as Kafka's JSON (see metadata_json.h).
 *
 * A record is read twice with the generated field table: once to find
 * where each field's value starts (tagged fields come at the end of their
 * struct on the wire but print in schema order), then once to print. Every
 * read is bounds-checked by kreader; anything malformed ends as Kafka's
 * "Error at <offset>, skipping." line. */
#include "tools/metadata_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"
#include "util/base64.h"
#include "util/strbuf.h"

enum { MJ_INT8, MJ_INT16, MJ_INT32, MJ_INT64, MJ_UINT16, MJ_UINT32, MJ_FLOAT64, MJ_BOOL,
       MJ_STRING, MJ_BYTES, MJ_UUID, MJ_RECORDS, MJ_STRUCT };

typedef struct mj_struct mj_struct;
typedef struct mj_field {
    const char *name;
    int type;
    int array;
    int16_t min_v, max_v;     /* versions the field is in */
    int16_t null_min, null_max;
    int16_t tag_min, tag_max; /* versions where it is tagged (-1: never) */
    int32_t tag;
    const mj_struct *sub;
    const char *dflt;
} mj_field;
struct mj_struct {
    const mj_field *fields;
    int nfields;
};
typedef struct mj_message {
    int16_t api_key;
    const char *type_name;
    int16_t flex_min;
    int16_t min_v, max_v;
    const mj_struct *root;
} mj_message;

#include "tools/metadata_json_schema.inc"

#define MAX_DEPTH 8
#define MAX_FIELDS 32

/* ---- output ---- */

/* Kafka's Uuid.toString: url-safe base64 without padding. */
static void jb_uuid(strbuf *b, const uint8_t u[16]) {
    char enc[32];
    base64_encode(u, 16, enc);
    size_t n = strlen(enc);
    while (n > 0 && enc[n - 1] == '=') n--;
    for (size_t i = 0; i < n; i++) {
        if (enc[i] == '+') enc[i] = '-';
        else if (enc[i] == '/') enc[i] = '_';
    }
    strbuf_add(b, "\"", 1);
    strbuf_add(b, enc, n);
    strbuf_add(b, "\"", 1);
}

/* Java's Double.toString: shortest digits that read back, plain between
 * 1e-3 and 1e7, else d.dddE<n>. */
static void jb_double(strbuf *b, double d) {
    if (isnan(d)) {
        strbuf_str(b, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        strbuf_str(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    char digits[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d) break;
    }
    /* digits = [-]D.DDDDe[+-]XX */
    const char *p = digits;
    bool neg = *p == '-';
    if (neg) p++;
    char mant[24];
    int m = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[m++] = *p;
    mant[m] = 0;
    int exp = atoi(p + 1);
    while (m > 1 && mant[m - 1] == '0') mant[--m] = 0;
    if (neg) strbuf_add(b, "-", 1);
    double a = fabs(d);
    if (a == 0 || (a >= 1e-3 && a < 1e7)) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) strbuf_add(b, i < m ? &mant[i] : "0", 1);
            strbuf_add(b, ".", 1);
            if (exp + 1 < m) strbuf_add(b, mant + exp + 1, (size_t)(m - exp - 1));
            else strbuf_add(b, "0", 1);
        } else {
            strbuf_str(b, "0.");
            for (int i = 0; i < -exp - 1; i++) strbuf_add(b, "0", 1);
            strbuf_add(b, mant, (size_t)m);
        }
    } else {
        strbuf_add(b, mant, 1);
        strbuf_add(b, ".", 1);
        if (m > 1) strbuf_add(b, mant + 1, (size_t)(m - 1));
        else strbuf_add(b, "0", 1);
        strbuf_printf(b, "E%d", exp);
    }
}

/* ---- reading ---- */

static bool in_range(int16_t v, int16_t lo, int16_t hi) { return lo >= 0 && v >= lo && v <= hi; }

typedef struct ctx {
    int16_t version;
    bool flex;
    int depth;
} ctx;

static int value(ctx *c, kreader *r, const mj_field *f, strbuf *out);

/* One scalar (or struct) element; out NULL = skip. */
static int element(ctx *c, kreader *r, const mj_field *f, bool nullable, strbuf *out);

/* JsonConverter writes a tagged field only when it differs from its
 * schema default (null, an empty array, "", zero uuid, the number given). */
static bool is_default_json(const mj_field *f, const char *v) {
    const char *d = f->dflt ? f->dflt : "";
    if (strcmp(d, "null") == 0) return strcmp(v, "null") == 0;
    if (f->array) return strcmp(v, "[]") == 0;
    switch (f->type) {
    case MJ_STRING: {
        size_t n = strlen(d);
        return strlen(v) == n + 2 && v[0] == '"' && strncmp(v + 1, d, n) == 0 && v[n + 1] == '"';
    }
    case MJ_BYTES:
    case MJ_RECORDS: return strcmp(v, "\"\"") == 0;
    case MJ_UUID: return strcmp(v, "\"AAAAAAAAAAAAAAAAAAAAAA\"") == 0;
    case MJ_BOOL: return strcmp(v, *d ? d : "false") == 0;
    case MJ_STRUCT: return false;
    default: return strcmp(v, *d ? d : "0") == 0;
    }
}

static int struct_value(ctx *c, kreader *r, const mj_struct *s, strbuf *out) {
    if (++c->depth > MAX_DEPTH || s->nfields > MAX_FIELDS) return -1;
    /* where each field's value starts: untagged in order, tagged from the tag section */
    kreader at[MAX_FIELDS];
    bool present[MAX_FIELDS];
    for (int i = 0; i < s->nfields; i++) {
        const mj_field *f = &s->fields[i];
        present[i] = false;
        if (!in_range(c->version, f->min_v, f->max_v)) continue;
        if (c->flex && in_range(c->version, f->tag_min, f->tag_max)) continue;
        at[i] = *r;
        present[i] = true;
        if (value(c, r, f, NULL) != 0 || r->err) return -1;
    }
    if (c->flex) {
        uint32_t ntags = kr_uvarint(r);
        if (r->err || ntags > kr_remaining(r)) return -1;
        for (uint32_t t = 0; t < ntags; t++) {
            uint32_t tag = kr_uvarint(r);
            uint32_t size = kr_uvarint(r);
            if (r->err || size > kr_remaining(r)) return -1;
            const uint8_t *p = kr_take(r, size);
            if (!p) return -1;
            for (int i = 0; i < s->nfields; i++) {
                const mj_field *f = &s->fields[i];
                if (f->tag < 0 || (uint32_t)f->tag != tag || !in_range(c->version, f->tag_min, f->tag_max) ||
                    !in_range(c->version, f->min_v, f->max_v))
                    continue;
                kr_init(&at[i], p, size);
                kreader probe = at[i];
                if (value(c, &probe, f, NULL) != 0 || probe.err) return -1;
                present[i] = true;
            }
        }
    }
    if (out) {
        strbuf_add(out, "{", 1);
        bool first = true;
        for (int i = 0; i < s->nfields; i++) {
            if (!present[i]) continue;
            const mj_field *f = &s->fields[i];
            kreader vr = at[i];
            /* tagged: only when it differs from the default (JsonConverter's check) */
            if (c->flex && in_range(c->version, f->tag_min, f->tag_max)) {
                strbuf tmp = {0};
                kreader probe = vr;
                if (value(c, &probe, f, &tmp) != 0) {
                    free(tmp.p);
                    return -1;
                }
                if (tmp.p && !is_default_json(f, tmp.p)) {
                    strbuf_printf(out, "%s\"%s\":", first ? "" : ",", f->name);
                    if (tmp.p) strbuf_str(out, tmp.p);
                    first = false;
                }
                free(tmp.p);
                continue;
            }
            strbuf_printf(out, "%s\"%s\":", first ? "" : ",", f->name);
            first = false;
            if (value(c, &vr, f, out) != 0) return -1;
        }
        strbuf_add(out, "}", 1);
    }
    c->depth--;
    return 0;
}

static int element(ctx *c, kreader *r, const mj_field *f, bool nullable, strbuf *out) {
    switch (f->type) {
    case MJ_INT8: {
        int8_t v = kr_i8(r);
        if (out) strbuf_printf(out, "%d", v);
        break;
    }
    case MJ_INT16: {
        int16_t v = kr_i16(r);
        if (out) strbuf_printf(out, "%d", v);
        break;
    }
    case MJ_INT32: {
        int32_t v = kr_i32(r);
        if (out) strbuf_printf(out, "%" PRId32, v);
        break;
    }
    case MJ_INT64: {
        int64_t v = kr_i64(r);
        if (out) strbuf_printf(out, "%" PRId64, v);
        break;
    }
    case MJ_UINT16: {
        uint16_t v = kr_u16(r);
        if (out) strbuf_printf(out, "%u", v);
        break;
    }
    case MJ_UINT32: {
        uint32_t v = kr_u32(r);
        if (out) strbuf_printf(out, "%" PRIu32, v);
        break;
    }
    case MJ_FLOAT64: {
        double v = kr_f64(r);
        if (out && !r->err) jb_double(out, v);
        break;
    }
    case MJ_BOOL: {
        bool v = kr_bool(r);
        if (out) strbuf_str(out, v ? "true" : "false");
        break;
    }
    case MJ_UUID: {
        kuuid u = kr_uuid(r);
        if (out && !r->err) jb_uuid(out, u.b);
        break;
    }
    case MJ_STRING: {
        kstr s = kr_string(r, c->flex, nullable);
        if (r->err) return -1;
        if (out) {
            if (s.len < 0) strbuf_str(out, "null");
            else strbuf_json_string(out, s.p, (size_t)s.len);
        }
        break;
    }
    case MJ_BYTES:
    case MJ_RECORDS: {
        kbytes bts = kr_bytes(r, c->flex, nullable);
        if (r->err) return -1;
        if (out) {
            if (bts.len < 0) {
                strbuf_str(out, "null");
            } else {
                char *enc = malloc(base64_encoded_len((size_t)bts.len) + 1);
                if (!enc) return -1;
                base64_encode(bts.p, (size_t)bts.len, enc);
                strbuf_json_string(out, enc, strlen(enc));
                free(enc);
            }
        }
        break;
    }
    case MJ_STRUCT:
        if (!f->sub) return -1;
        return struct_value(c, r, f->sub, out);
    default:
        return -1;
    }
    return r->err ? -1 : 0;
}

static int value(ctx *c, kreader *r, const mj_field *f, strbuf *out) {
    bool nullable = in_range(c->version, f->null_min, f->null_max);
    if (!f->array) return element(c, r, f, nullable, out);
    int32_t n = kr_array_len(r, c->flex, nullable, 1);
    if (r->err) return -1;
    if (n < 0) {
        if (out) strbuf_str(out, "null");
        return 0;
    }
    if (out) strbuf_add(out, "[", 1);
    for (int32_t i = 0; i < n; i++) {
        if (out && i) strbuf_add(out, ",", 1);
        if (element(c, r, f, false, out) != 0) return -1;
    }
    if (out) strbuf_add(out, "]", 1);
    return 0;
}

static const mj_message *message_for(int16_t key) {
    for (size_t i = 0; i < sizeof mj_messages / sizeof mj_messages[0]; i++)
        if (mj_messages[i].api_key == key) return &mj_messages[i];
    return NULL;
}

static char *errorf(int64_t offset, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *errorf(int64_t offset, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    char *s = NULL;
    if (asprintf(&s, "Error at %" PRId64 ", skipping. %s", offset, why) < 0) return NULL;
    return s;
}

char *metadata_record_json(const uint8_t *p, size_t len, int64_t offset) {
    kreader r;
    kr_init(&r, p, len);
    /* AbstractApiMessageSerde.read */
    uint32_t frame = kr_uvarint(&r);
    if (r.err) return errorf(offset, "Error while reading field 'frame version'");
    if (frame != 1)
        return errorf(offset,
                      "Could not deserialize metadata record due to unknown frame version %u(only frame version "
                      "1 is supported)",
                      frame);
    uint32_t type = kr_uvarint(&r);
    if (r.err) return errorf(offset, "Error while reading field 'type'");
    uint32_t version = kr_uvarint(&r);
    if (r.err) return errorf(offset, "Error while reading field 'version'");
    if (type > 0x7fff) return errorf(offset, "Value for field 'type' was too large");
    if (version > 0x7fff) return errorf(offset, "Value for field 'version' was too large");
    const mj_message *m = message_for((int16_t)type);
    if (!m) return errorf(offset, "Unknown metadata id %u", type);
    ctx c = {(int16_t)version, (int16_t)version >= m->flex_min && m->flex_min >= 0, 0};
    strbuf data = {0};
    kreader probe = r;
    if ((int16_t)version < m->min_v || (int16_t)version > m->max_v || struct_value(&c, &probe, m->root, NULL) != 0) {
        free(data.p);
        return errorf(offset, "Failed to deserialize record with type %u", type);
    }
    if (kr_remaining(&probe) > 0)
        return errorf(offset, "Found %zu byte(s) of garbage after %u", kr_remaining(&probe), type);
    c.depth = 0;
    if (struct_value(&c, &r, m->root, &data) != 0 || data.oom) {
        free(data.p);
        return errorf(offset, "Failed to deserialize record with type %u", type);
    }
    strbuf out = {0};
    strbuf_printf(&out, "{\"type\":\"%s\",\"version\":%u,\"data\":", m->type_name, version);
    strbuf_str(&out, data.p ? data.p : "{}");
    strbuf_str(&out, "}");
    free(data.p);
    if (out.oom) {
        free(out.p);
        return NULL;
    }
    return out.p;
}

char *snapshot_header_json(const uint8_t *value, size_t len) {
    kreader r;
    kr_init(&r, value, len);
    int16_t v = kr_i16(&r);
    int64_t ts = kr_i64(&r);
    kr_skip_tagged_fields(&r);
    if (r.err) return NULL;
    char *s = NULL;
    if (asprintf(&s, "{\"version\":%d,\"lastContainedLogTimestamp\":%" PRId64 "}", v, ts) < 0) return NULL;
    return s;
}

char *snapshot_footer_json(const uint8_t *value, size_t len) {
    kreader r;
    kr_init(&r, value, len);
    int16_t v = kr_i16(&r);
    kr_skip_tagged_fields(&r);
    if (r.err) return NULL;
    char *s = NULL;
    if (asprintf(&s, "{\"version\":%d}", v) < 0) return NULL;
    return s;
}
