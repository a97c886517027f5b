/* checkpoint.c - Kafka's checkpoint text files (see checkpoint.h). */
#include "storage/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/fileio.h"

/* No checkpoint we write comes near this; a bigger file is not ours. */
#define CKPT_MAX_FILE_BYTES (256u << 20)
#define TOPIC_NAME_MAX 249

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* With sync false the same rename dance runs without either fsync: the
 * caller makes the file durable later (a new partition, see syncer.h). */
static int write_atomic(const char *path, const void *data, size_t len, bool sync) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = storage_fio.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (fio_write_full(fd, data, len) != 0 || (sync && storage_fio.fsync(fd) != 0)) {
        int saved = errno;
        storage_fio.close(fd);
        storage_fio.unlink(tmp);
        errno = saved;
        return -1;
    }
    if (storage_fio.close(fd) != 0 || storage_fio.rename(tmp, path) != 0) {
        int saved = errno;
        storage_fio.unlink(tmp);
        errno = saved;
        return -1;
    }
    if (!sync) return 0;
    /* The rename is only durable once the directory entry is. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    return fio_fsync_dir(dir);
}

int ckpt_write_atomic(const char *path, const void *data, size_t len) { return write_atomic(path, data, len, true); }

/* Reads a whole small file into a NUL-terminated malloc'd buffer. */
static int read_small_file(const char *path, char **out, size_t *outlen) {
    int fd = storage_fio.open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* Most of these files are a few lines (two per partition are read at
     * start-up): one read that comes back short of the buffer is the whole
     * file (a regular file reads short only at its end); no fstat. */
    char first[4096];
    ssize_t got;
    do got = storage_fio.pread(fd, first, sizeof first, 0);
    while (got < 0 && errno == EINTR);
    if (got >= 0 && (size_t)got < sizeof first) {
        storage_fio.close(fd);
        char *buf = malloc((size_t)got + 1);
        if (!buf) {
            errno = ENOMEM;
            return -1;
        }
        memcpy(buf, first, (size_t)got);
        buf[got] = '\0';
        *out = buf;
        *outlen = (size_t)got;
        return 0;
    }
    int64_t size = fio_file_size(fd);
    if (size < 0 || size > (int64_t)CKPT_MAX_FILE_BYTES) {
        if (size >= 0) errno = EFBIG;
        int saved = errno;
        storage_fio.close(fd);
        errno = saved;
        return -1;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        storage_fio.close(fd);
        errno = ENOMEM;
        return -1;
    }
    if (size > 0 && fio_pread_full(fd, buf, (size_t)size, 0) != 0) {
        int saved = errno;
        free(buf);
        storage_fio.close(fd);
        errno = saved;
        return -1;
    }
    storage_fio.close(fd);
    buf[size] = '\0';
    *out = buf;
    *outlen = (size_t)size;
    return 0;
}

/* A cursor over the lines of a text buffer. */
typedef struct line_cursor {
    char *p, *end;
    int lineno;
} line_cursor;

/* Next line, NUL-terminated in place (without '\n'); NULL at end. */
static char *next_line(line_cursor *c) {
    if (c->p >= c->end) return NULL;
    char *start = c->p;
    char *nl = memchr(start, '\n', (size_t)(c->end - start));
    if (nl) {
        *nl = '\0';
        c->p = nl + 1;
    } else {
        c->p = c->end;
    }
    c->lineno++;
    return start;
}

/* Parses a decimal integer in [min, max] that must be the whole token. */
static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *v) {
    if (!*s) return false;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < min || x > max) return false;
    *v = x;
    return true;
}

/* Splits a line on runs of spaces/tabs into at most max tokens; returns the
 * count, or max + 1 when there are more. */
static int split_tokens(char *line, char **tok, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
        if (n == max) return max + 1;
        tok[n++] = t;
    }
    return n;
}

/* Parses the "0\n<count>\n" prologue shared by both checkpoint kinds. */
static int parse_prologue(line_cursor *c, int64_t *count) {
    char *tok[2];
    char *l = next_line(c);
    int64_t version;
    if (!l || split_tokens(l, tok, 1) != 1 || !parse_i64(tok[0], 0, 0, &version)) return -1;
    l = next_line(c);
    if (!l || split_tokens(l, tok, 1) != 1 || !parse_i64(tok[0], 0, INT32_MAX, count)) return -1;
    return 0;
}

void ckpt_offsets_free(ckpt_offsets *c) {
    for (size_t i = 0; i < c->n; i++) free(c->v[i].topic);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

/* By topic, then partition. */
static int cmp_topic_partition(const char *topic, int32_t partition, const ckpt_offset_entry *e) {
    int c = strcmp(topic, e->topic);
    if (c) return c;
    return (partition > e->partition) - (partition < e->partition);
}

static int cmp_entry(const void *a, const void *b) {
    const ckpt_offset_entry *x = a;
    return cmp_topic_partition(x->topic, x->partition, b);
}

int ckpt_offsets_read(const char *path, ckpt_offsets *out, char *err, size_t errlen) {
    out->v = NULL;
    out->n = 0;
    char *buf;
    size_t len;
    if (read_small_file(path, &buf, &len) != 0) {
        if (errno == ENOENT) return 0;
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    line_cursor c = {buf, buf + len, 0};
    int64_t count;
    if (parse_prologue(&c, &count) != 0) {
        set_err(err, errlen, "%s: bad version/count at line %d", path, c.lineno);
        goto malformed;
    }
    /* Each entry needs at least "t 0 0\n": never trust count beyond that. */
    if ((uint64_t)count > len / 6 + 1) {
        set_err(err, errlen, "%s: count %" PRId64 " exceeds file size", path, count);
        goto malformed;
    }
    out->v = calloc((size_t)count ? (size_t)count : 1, sizeof *out->v);
    if (!out->v) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        char *l = next_line(&c), *tok[3];
        int64_t part, off;
        if (!l || split_tokens(l, tok, 3) != 3 || strlen(tok[0]) > TOPIC_NAME_MAX ||
            !parse_i64(tok[1], 0, INT32_MAX, &part) || !parse_i64(tok[2], INT64_MIN, INT64_MAX, &off)) {
            set_err(err, errlen, "%s: bad entry at line %d", path, c.lineno);
            goto malformed;
        }
        ckpt_offset_entry *e = &out->v[out->n];
        if (!(e->topic = strdup(tok[0]))) {
            ckpt_offsets_free(out);
            free(buf);
            errno = ENOMEM;
            return -1;
        }
        e->partition = (int32_t)part;
        e->offset = off;
        out->n++;
    }
    /* Trailing blank lines are harmless; anything else means a bad count. */
    for (char *l; (l = next_line(&c));) {
        char *tok[1];
        if (split_tokens(l, tok, 0) != 0) {
            set_err(err, errlen, "%s: more entries than the count %" PRId64, path, count);
            goto malformed;
        }
    }
    free(buf);
    /* Sorted for ckpt_offsets_find: a start-up looks up every partition. */
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_entry);
    return 0;
malformed:
    ckpt_offsets_free(out);
    free(buf);
    errno = EINVAL;
    return -1;
}

/* Growable text buffer for writers. */
typedef struct textbuf {
    char *p;
    size_t len, cap;
    bool oom;
} textbuf;

static void tb_printf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(textbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap - b->len <= (size_t)n) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static int tb_commit(textbuf *b, const char *path, bool sync) {
    int rc;
    if (b->oom) {
        errno = ENOMEM;
        rc = -1;
    } else {
        rc = write_atomic(path, b->p ? b->p : "", b->len, sync);
    }
    int saved = errno;
    free(b->p);
    errno = saved;
    return rc;
}

int ckpt_offsets_write(const char *path, const ckpt_offset_entry *v, size_t n) {
    textbuf b = {0};
    tb_printf(&b, "0\n%zu\n", n);
    for (size_t i = 0; i < n; i++)
        tb_printf(&b, "%s %" PRId32 " %" PRId64 "\n", v[i].topic, v[i].partition, v[i].offset);
    return tb_commit(&b, path, true);
}

int64_t ckpt_offsets_find(const ckpt_offsets *c, const char *topic, int32_t partition) {
    size_t lo = 0, hi = c->n; /* sorted by ckpt_offsets_read */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = cmp_topic_partition(topic, partition, &c->v[mid]);
        if (cmp == 0) return c->v[mid].offset;
        if (cmp < 0) hi = mid;
        else lo = mid + 1;
    }
    return -1;
}

static int hw_path(char *buf, size_t cap, const char *log_dir) {
    if (snprintf(buf, cap, "%s/%s", log_dir, CKPT_REPLICATION_OFFSET_FILE) >= (int)cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int ckpt_hw_write(const char *log_dir, const ckpt_offset_entry *v, size_t n) {
    char path[PATH_MAX];
    if (hw_path(path, sizeof path, log_dir) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        size_t tl = v[i].topic ? strlen(v[i].topic) : 0;
        if (tl == 0 || tl > TOPIC_NAME_MAX || strpbrk(v[i].topic, " \t\r\n") || v[i].partition < 0 ||
            v[i].offset < 0) {
            errno = EINVAL;
            return -1;
        }
    }
    return ckpt_offsets_write(path, v, n);
}

int ckpt_hw_read(const char *log_dir, ckpt_offsets *out, char *err, size_t errlen) {
    char path[PATH_MAX];
    out->v = NULL;
    out->n = 0;
    if (hw_path(path, sizeof path, log_dir) != 0) {
        set_err(err, errlen, "%s: %s", log_dir, strerror(errno));
        return -1;
    }
    if (ckpt_offsets_read(path, out, err, errlen) != 0) return -1;
    const ckpt_offset_entry *bad = NULL;
    for (size_t i = 0; i < out->n && !bad; i++)
        if (out->v[i].offset < 0) bad = &out->v[i];
    if (bad) {
        set_err(err, errlen, "%s: negative high watermark for %s-%" PRId32, path, bad->topic, bad->partition);
        goto malformed;
    }
    /* A partition named twice: neighbours once sorted (ckpt_offsets_read sorts). */
    for (size_t i = 1; i < out->n && !bad; i++)
        if (cmp_entry(&out->v[i - 1], &out->v[i]) == 0) bad = &out->v[i];
    if (bad) {
        set_err(err, errlen, "%s: %s-%" PRId32 " appears twice", path, bad->topic, bad->partition);
        goto malformed;
    }
    return 0;
malformed:
    ckpt_offsets_free(out);
    errno = EINVAL;
    return -1;
}

int ckpt_epochs_read(const char *path, epoch_entry **out, size_t *n) {
    *out = NULL;
    *n = 0;
    char *buf;
    size_t len;
    if (read_small_file(path, &buf, &len) != 0) return errno == ENOENT ? 0 : -1;
    if (len == 0) { /* created without sync, then a crash: as if absent */
        free(buf);
        return 0;
    }
    line_cursor c = {buf, buf + len, 0};
    int64_t count;
    epoch_entry *v = NULL;
    if (parse_prologue(&c, &count) != 0 || (uint64_t)count > len / 4 + 1) goto malformed;
    v = calloc((size_t)count ? (size_t)count : 1, sizeof *v);
    if (!v) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        char *l = next_line(&c), *tok[2];
        int64_t epoch, off;
        if (!l || split_tokens(l, tok, 2) != 2 || !parse_i64(tok[0], 0, INT32_MAX, &epoch) ||
            !parse_i64(tok[1], 0, INT64_MAX, &off))
            goto malformed;
        v[i].epoch = (int32_t)epoch;
        v[i].start_offset = off;
    }
    free(buf);
    *out = v;
    *n = (size_t)count;
    return 0;
malformed:
    free(v);
    free(buf);
    errno = EINVAL;
    return -1;
}

int ckpt_epochs_write(const char *path, const epoch_entry *v, size_t n, bool sync) {
    textbuf b = {0};
    tb_printf(&b, "0\n%zu\n", n);
    for (size_t i = 0; i < n; i++) tb_printf(&b, "%" PRId32 " %" PRId64 "\n", v[i].epoch, v[i].start_offset);
    return tb_commit(&b, path, sync);
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void kafka_uuid_to_string(const uint8_t id[16], char out[23]) {
    int o = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = ((uint32_t)id[i] << 16) | ((uint32_t)id[i + 1] << 8) | id[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    /* The 16th byte leaves two characters and no padding. */
    out[o++] = b64url[id[15] >> 2];
    out[o++] = b64url[(id[15] & 3) << 4];
    out[o] = '\0';
}

static int b64url_value(char ch) {
    const char *p = ch ? strchr(b64url, ch) : NULL;
    return p ? (int)(p - b64url) : -1;
}

int kafka_uuid_from_string(const char *s, size_t len, uint8_t id[16]) {
    if (len != 22) return -1;
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 16) id[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Canonical encodings leave the unused low bits zero. */
    return (o == 16 && acc == 0) ? 0 : -1;
}

int ckpt_partition_metadata_read(const char *path, uint8_t topic_id[16]) {
    char *buf;
    size_t len;
    if (read_small_file(path, &buf, &len) != 0) return -1;
    if (len == 0) { /* created without sync, then a crash: as if absent */
        free(buf);
        errno = ENOENT;
        return -1;
    }
    line_cursor c = {buf, buf + len, 0};
    bool have_version = false, have_id = false;
    for (char *l; (l = next_line(&c));) {
        char *colon = strchr(l, ':');
        if (!colon) continue;
        *colon = '\0';
        char *val = colon + 1;
        while (*val == ' ') val++;
        size_t vlen = strcspn(val, " \r");
        if (strcmp(l, "version") == 0) {
            have_version = vlen == 1 && val[0] == '0';
            if (!have_version) break;
        } else if (strcmp(l, "topic_id") == 0) {
            have_id = kafka_uuid_from_string(val, vlen, topic_id) == 0;
        }
    }
    free(buf);
    if (!have_version || !have_id) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int ckpt_partition_metadata_write(const char *path, const uint8_t topic_id[16], bool sync) {
    char id[23], text[64];
    kafka_uuid_to_string(topic_id, id);
    int n = snprintf(text, sizeof text, "version: 0\ntopic_id: %s\n", id);
    return write_atomic(path, text, (size_t)n, sync);
}
