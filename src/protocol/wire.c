/* wire.c - Kafka's primitive wire types (see wire.h). */
#include "protocol/wire.h"

#include <stdlib.h>
#include <string.h>

bool kstr_eq(kstr a, kstr b) {
    if (a.len != b.len) return false;
    return a.len <= 0 || memcmp(a.p, b.p, (size_t)a.len) == 0;
}

bool kstr_eq_c(kstr a, const char *s) {
    if (a.len < 0 || !s) return false;
    size_t n = strlen(s);
    return (size_t)a.len == n && memcmp(a.p, s, n) == 0;
}

char *kstr_dup(kstr s, karena *a) {
    return karena_strndup(a, s.len > 0 ? s.p : "", s.len > 0 ? (size_t)s.len : 0);
}

/* ---- reader ---- */

static inline const uint8_t *need(kreader *r, size_t n) {
    if (r->err || r->len - r->pos < n) {
        r->err = 1;
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

int8_t kr_i8(kreader *r) {
    const uint8_t *p = need(r, 1);
    return p ? (int8_t)p[0] : 0;
}

uint16_t kr_u16(kreader *r) {
    const uint8_t *p = need(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

int16_t kr_i16(kreader *r) { return (int16_t)kr_u16(r); }

uint32_t kr_u32(kreader *r) {
    const uint8_t *p = need(r, 4);
    if (!p) return 0;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int32_t kr_i32(kreader *r) { return (int32_t)kr_u32(r); }

int64_t kr_i64(kreader *r) {
    const uint8_t *p = need(r, 8);
    if (!p) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return (int64_t)v;
}

double kr_f64(kreader *r) {
    uint64_t u = (uint64_t)kr_i64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

bool kr_bool(kreader *r) { return kr_i8(r) != 0; }

kuuid kr_uuid(kreader *r) {
    kuuid u;
    const uint8_t *p = need(r, 16);
    if (p) memcpy(u.b, p, 16);
    else memset(u.b, 0, 16);
    return u;
}

uint64_t kr_uvarlong(kreader *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = need(r, 1);
        if (!p) return 0;
        v |= (uint64_t)(p[0] & 0x7f) << shift;
        if (!(p[0] & 0x80)) return v;
    }
    r->err = 1; /* more than 10 bytes */
    return 0;
}

uint32_t kr_uvarint(kreader *r) {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        const uint8_t *p = need(r, 1);
        if (!p) return 0;
        v |= (uint32_t)(p[0] & 0x7f) << shift;
        if (!(p[0] & 0x80)) return v;
    }
    r->err = 1; /* more than 5 bytes */
    return 0;
}

int32_t kr_varint(kreader *r) {
    uint32_t u = kr_uvarint(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kr_varlong(kreader *r) {
    uint64_t u = kr_uvarlong(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/* Length prefix of a string/bytes; -1 = null. */
static int64_t read_len(kreader *r, bool compact, bool wide) {
    if (compact) {
        uint32_t n = kr_uvarint(r);
        return (int64_t)n - 1;
    }
    return wide ? kr_i32(r) : kr_i16(r);
}

kstr kr_string(kreader *r, bool compact, bool nullable) {
    kstr s = {NULL, -1};
    int64_t n = read_len(r, compact, false);
    if (r->err) return s;
    if (n < 0) {
        if (n != -1 || !nullable) r->err = 1;
        return s;
    }
    if (n > 0x7fff && !compact) { r->err = 1; return s; }
    const uint8_t *p = need(r, (size_t)n);
    if (!p) return s;
    s.p = (const char *)p;
    s.len = (int32_t)n;
    return s;
}

kbytes kr_bytes(kreader *r, bool compact, bool nullable) {
    kbytes b = {NULL, -1};
    int64_t n = read_len(r, compact, true);
    if (r->err) return b;
    if (n < 0) {
        if (n != -1 || !nullable) r->err = 1;
        return b;
    }
    const uint8_t *p = need(r, (size_t)n);
    if (!p) return b;
    b.p = p;
    b.len = (int32_t)n;
    return b;
}

krecords kr_records(kreader *r, bool compact) {
    kbytes b = kr_bytes(r, compact, true);
    krecords rec = {b.p, b.len, -1, 0};
    return rec;
}

int32_t kr_array_len(kreader *r, bool compact, bool nullable, size_t min_elem_size) {
    int64_t n = compact ? (int64_t)kr_uvarint(r) - 1 : kr_i32(r);
    if (r->err) return 0;
    if (n < 0) {
        if (n != -1 || !nullable) { r->err = 1; return 0; }
        return -1;
    }
    if (min_elem_size == 0) min_elem_size = 1;
    if ((uint64_t)n > (r->len - r->pos) / min_elem_size) {
        r->err = 1;
        return 0;
    }
    return (int32_t)n;
}

void kr_skip(kreader *r, size_t n) { (void)need(r, n); }

const uint8_t *kr_take(kreader *r, size_t n) { return need(r, n); }

void kr_skip_tagged_fields(kreader *r) {
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)kr_uvarint(r); /* tag */
        uint32_t size = kr_uvarint(r);
        kr_skip(r, size);
    }
}

/* ---- writer ---- */

void kw_init(kwriter *w) { memset(w, 0, sizeof *w); }

void kw_free(kwriter *w) {
    free(w->buf);
    free(w->refs);
    memset(w, 0, sizeof *w);
}

void kw_reset(kwriter *w) {
    w->len = 0;
    w->nrefs = 0;
    w->file_bytes = 0;
    w->err = 0;
}

static uint8_t *grow(kwriter *w, size_t n) {
    if (w->err) return NULL;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n) {
            if (cap > SIZE_MAX / 2) { w->err = 1; return NULL; }
            cap *= 2;
        }
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) { w->err = 1; return NULL; }
        w->buf = nb;
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void kw_raw(kwriter *w, const void *src, size_t n) {
    if (!n) return;
    uint8_t *p = grow(w, n);
    if (p) memcpy(p, src, n);
}

void kw_i8(kwriter *w, int8_t v) {
    uint8_t *p = grow(w, 1);
    if (p) p[0] = (uint8_t)v;
}

void kw_u16(kwriter *w, uint16_t v) {
    uint8_t *p = grow(w, 2);
    if (!p) return;
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void kw_i16(kwriter *w, int16_t v) { kw_u16(w, (uint16_t)v); }

void kw_u32(kwriter *w, uint32_t v) {
    uint8_t *p = grow(w, 4);
    if (!p) return;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void kw_i32(kwriter *w, int32_t v) { kw_u32(w, (uint32_t)v); }

void kw_i64(kwriter *w, int64_t v) {
    uint8_t *p = grow(w, 8);
    if (!p) return;
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)u;
        u >>= 8;
    }
}

void kw_f64(kwriter *w, double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    kw_i64(w, (int64_t)u);
}

void kw_bool(kwriter *w, bool v) { kw_i8(w, v ? 1 : 0); }

void kw_uuid(kwriter *w, const kuuid *u) { kw_raw(w, u->b, 16); }

void kw_uvarlong(kwriter *w, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    kw_raw(w, tmp, (size_t)n);
}

void kw_uvarint(kwriter *w, uint32_t v) { kw_uvarlong(w, v); }

void kw_varint(kwriter *w, int32_t v) {
    kw_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(kwriter *w, int64_t v) {
    kw_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

int kw_uvarint_size(uint32_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void kw_string(kwriter *w, bool compact, kstr s) {
    if (s.len < 0) {
        if (compact) kw_uvarint(w, 0);
        else kw_i16(w, -1);
        return;
    }
    if (compact) kw_uvarint(w, (uint32_t)s.len + 1);
    else kw_i16(w, (int16_t)s.len);
    kw_raw(w, s.p, (size_t)s.len);
}

void kw_bytes(kwriter *w, bool compact, kbytes b) {
    if (b.len < 0) {
        if (compact) kw_uvarint(w, 0);
        else kw_i32(w, -1);
        return;
    }
    if (compact) kw_uvarint(w, (uint32_t)b.len + 1);
    else kw_i32(w, b.len);
    kw_raw(w, b.p, (size_t)b.len);
}

void kw_records(kwriter *w, bool compact, const krecords *rec) {
    if (rec->fd < 0 || rec->len < 0) {
        kbytes b = {rec->p, rec->len};
        kw_bytes(w, compact, b);
        return;
    }
    if (compact) kw_uvarint(w, (uint32_t)rec->len + 1);
    else kw_i32(w, rec->len);
    if (rec->len == 0 || w->err) return;
    if (w->nrefs == w->caprefs) {
        int nc = w->caprefs ? w->caprefs * 2 : 8;
        kw_fileref *nr = realloc(w->refs, sizeof(*nr) * (size_t)nc);
        if (!nr) { w->err = 1; return; }
        w->refs = nr;
        w->caprefs = nc;
    }
    kw_fileref *f = &w->refs[w->nrefs++];
    f->at = w->len;
    f->fd = rec->fd;
    f->offset = rec->file_offset;
    f->len = rec->len;
    w->file_bytes += rec->len;
}

void kw_array_len(kwriter *w, bool compact, int32_t n) {
    if (compact) kw_uvarint(w, n < 0 ? 0 : (uint32_t)n + 1);
    else kw_i32(w, n);
}

size_t kw_reserve(kwriter *w, size_t n) {
    size_t at = w->len;
    uint8_t *p = grow(w, n);
    if (p) memset(p, 0, n);
    return at;
}

uint8_t *kw_room(kwriter *w, size_t n) {
    uint8_t *p = grow(w, n);
    if (p) w->len -= n;
    return p;
}

void kw_patch_i32(kwriter *w, size_t at, int32_t v) {
    if (w->err || at + 4 > w->len) return;
    uint32_t u = (uint32_t)v;
    w->buf[at] = (uint8_t)(u >> 24);
    w->buf[at + 1] = (uint8_t)(u >> 16);
    w->buf[at + 2] = (uint8_t)(u >> 8);
    w->buf[at + 3] = (uint8_t)u;
}
