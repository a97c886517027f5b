/* wire.h - Kafka's primitive wire types: bounds-checked reader, growable writer.
 *
 * The generated codecs (src/protocol/gen/) are built only from these calls.
 * A reader never reads past its buffer: the first failure sets r->err and
 * every later read returns zero values, so a decoder checks r->err once.
 * A writer grows its buffer; an allocation failure sets w->err.
 *
 * Records may be written as "file references" (fd, offset, length) that the
 * network layer later sends with sendfile(2): the writer then holds the bytes
 * around them and a list of where each file range goes.
 */
#ifndef SAMSA_WIRE_H
#define SAMSA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

/* A string as on the wire: not NUL-terminated. len == -1 means null. */
typedef struct kstr {
    const char *p;
    int32_t len;
} kstr;

/* Bytes; len == -1 means null. */
typedef struct kbytes {
    const uint8_t *p;
    int32_t len;
} kbytes;

/* A records field: in memory (p, len), or, when fd >= 0, len bytes of file
 * fd starting at file_offset (sent with sendfile). len == -1 means null. */
typedef struct krecords {
    const uint8_t *p;
    int32_t len;
    int fd;              /* -1 unless this is a file reference */
    int64_t file_offset;
} krecords;

typedef struct kuuid {
    uint8_t b[16];
} kuuid;

#define KSTR_NULL ((kstr){NULL, -1})
#define KSTR_LIT(s) ((kstr){(s), (int32_t)(sizeof(s) - 1)})
#define KRECORDS_NULL ((krecords){NULL, -1, -1, 0})

static inline kstr kstr_from(const char *s) {
    kstr k;
    k.p = s;
    k.len = s ? (int32_t)__builtin_strlen(s) : -1;
    return k;
}
bool kstr_eq(kstr a, kstr b);
bool kstr_eq_c(kstr a, const char *s);
/* Copy into a NUL-terminated arena string ("" for null). */
char *kstr_dup(kstr s, karena *a);

static inline bool kuuid_is_zero(const kuuid *u) {
    for (int i = 0; i < 16; i++)
        if (u->b[i]) return false;
    return true;
}

/* ---- reader ---- */

typedef struct kreader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int err; /* 0 ok; nonzero after the first bad read */
} kreader;

static inline void kr_init(kreader *r, const void *buf, size_t len) {
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}
static inline size_t kr_remaining(const kreader *r) { return r->err ? 0 : r->len - r->pos; }

int8_t kr_i8(kreader *r);
int16_t kr_i16(kreader *r);
int32_t kr_i32(kreader *r);
int64_t kr_i64(kreader *r);
uint16_t kr_u16(kreader *r);
uint32_t kr_u32(kreader *r);
double kr_f64(kreader *r);
bool kr_bool(kreader *r);
kuuid kr_uuid(kreader *r);
uint32_t kr_uvarint(kreader *r);
int32_t kr_varint(kreader *r);  /* zig-zag */
int64_t kr_varlong(kreader *r); /* zig-zag */
uint64_t kr_uvarlong(kreader *r);
/* Strings and bytes point into the reader's buffer (no copy). compact
 * selects the flexible-version encoding (unsigned varint length + 1). A null
 * value when !nullable is an error. */
kstr kr_string(kreader *r, bool compact, bool nullable);
kbytes kr_bytes(kreader *r, bool compact, bool nullable);
krecords kr_records(kreader *r, bool compact);
/* Array length; -1 for null. Fails if the count could not possibly fit in
 * the bytes that remain (each element takes at least min_elem_size bytes),
 * so a hostile length never drives a large allocation. */
int32_t kr_array_len(kreader *r, bool compact, bool nullable, size_t min_elem_size);
void kr_skip(kreader *r, size_t n);
/* Skip a whole tagged-field section (flexible versions): count, then
 * tag/size/bytes per field. Used for structs with no known tags. */
void kr_skip_tagged_fields(kreader *r);
/* Bytes after pos as a slice (for embedded sub-buffers). */
const uint8_t *kr_take(kreader *r, size_t n);

/* ---- writer ---- */

typedef struct kw_fileref {
    size_t at;        /* position in buf where the file bytes belong */
    int fd;
    int64_t offset;
    int32_t len;
} kw_fileref;

typedef struct kwriter {
    uint8_t *buf;
    size_t len;       /* bytes of buf in use */
    size_t cap;
    kw_fileref *refs; /* file ranges spliced in, in order of position */
    int nrefs, caprefs;
    int64_t file_bytes; /* total bytes in refs (they count in frame sizes) */
    int err;
} kwriter;

void kw_init(kwriter *w);
void kw_free(kwriter *w);
void kw_reset(kwriter *w);
/* Logical size: buffer bytes plus file-reference bytes. */
static inline int64_t kw_size(const kwriter *w) { return (int64_t)w->len + w->file_bytes; }
void kw_raw(kwriter *w, const void *p, size_t n);
void kw_i8(kwriter *w, int8_t v);
void kw_i16(kwriter *w, int16_t v);
void kw_i32(kwriter *w, int32_t v);
void kw_i64(kwriter *w, int64_t v);
void kw_u16(kwriter *w, uint16_t v);
void kw_u32(kwriter *w, uint32_t v);
void kw_f64(kwriter *w, double v);
void kw_bool(kwriter *w, bool v);
void kw_uuid(kwriter *w, const kuuid *u);
void kw_uvarint(kwriter *w, uint32_t v);
void kw_varint(kwriter *w, int32_t v);
void kw_varlong(kwriter *w, int64_t v);
void kw_uvarlong(kwriter *w, uint64_t v);
void kw_string(kwriter *w, bool compact, kstr s);
void kw_bytes(kwriter *w, bool compact, kbytes b);
void kw_records(kwriter *w, bool compact, const krecords *rec);
void kw_array_len(kwriter *w, bool compact, int32_t n); /* n == -1: null */
/* Empty tagged-field section (count 0). */
static inline void kw_no_tagged_fields(kwriter *w) { kw_uvarint(w, 0); }
/* Reserve n bytes and return their position, to patch later. */
size_t kw_reserve(kwriter *w, size_t n);
/* Room for n more bytes at the end, neither committed nor cleared (a codec
 * writes its output there): the write pointer, or NULL with w->err set.
 * The caller commits what it wrote by adding it to w->len. */
uint8_t *kw_room(kwriter *w, size_t n);
void kw_patch_i32(kwriter *w, size_t at, int32_t v);
/* Size of an unsigned varint. */
int kw_uvarint_size(uint32_t v);

#endif
