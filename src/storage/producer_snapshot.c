/* producer_snapshot.c - Kafka's producer state snapshot files (see
 * producer_snapshot.h). */
#include "storage/producer_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "storage/fileio.h"
#include "util/crc32c.h"

#define PSNAP_MAX_FILE (256u << 20)
#define PSNAP_TMP_SUFFIX ".tmp"

size_t psnap_encoded_size(int n) { return PSNAP_HEADER_SIZE + (size_t)(n > 0 ? n : 0) * PSNAP_ENTRY_SIZE; }

void psnap_encode(const psnap_entry *e, int n, uint8_t *out) {
    bh_put_u16(out, PSNAP_VERSION);
    bh_put_u32(out + 6, (uint32_t)n);
    uint8_t *p = out + PSNAP_HEADER_SIZE;
    for (int i = 0; i < n; i++, p += PSNAP_ENTRY_SIZE) {
        bh_put_u64(p, (uint64_t)e[i].producer_id);
        bh_put_u16(p + 8, (uint16_t)e[i].epoch);
        bh_put_u32(p + 10, (uint32_t)e[i].last_sequence);
        bh_put_u64(p + 14, (uint64_t)e[i].last_offset);
        bh_put_u32(p + 22, (uint32_t)e[i].offset_delta);
        bh_put_u64(p + 26, (uint64_t)e[i].timestamp);
        bh_put_u32(p + 34, (uint32_t)e[i].coordinator_epoch);
        bh_put_u64(p + 38, (uint64_t)e[i].current_txn_first_offset);
    }
    size_t len = psnap_encoded_size(n);
    bh_put_u32(out + PSNAP_CRC_OFFSET, crc32c(0, out + PSNAP_ENTRIES_OFFSET, len - PSNAP_ENTRIES_OFFSET));
}

static int corrupt(char *why, size_t whylen, const char *msg) {
    if (why && whylen) snprintf(why, whylen, "%s", msg);
    return PSNAP_CORRUPT;
}

int psnap_decode(const uint8_t *buf, size_t len, psnap_entry **out, int *n, char *why, size_t whylen) {
    *out = NULL;
    *n = 0;
    if (len < PSNAP_HEADER_SIZE) return corrupt(why, whylen, "Snapshot failed schema validation: too short");
    int16_t version = (int16_t)bh_get_u16(buf);
    int32_t count = (int32_t)bh_get_u32(buf + 6);
    /* Kafka reads the whole schema first: a bad count fails before the version check */
    if (count < 0) return corrupt(why, whylen, "Snapshot failed schema validation: negative entry count");
    if ((uint64_t)count * PSNAP_ENTRY_SIZE > len - PSNAP_HEADER_SIZE)
        return corrupt(why, whylen, "Snapshot failed schema validation: entries past the end of the file");
    if (version != PSNAP_VERSION) {
        if (why && whylen) snprintf(why, whylen, "Snapshot contained an unknown file version %d", version);
        return PSNAP_CORRUPT;
    }
    uint32_t stored = bh_get_u32(buf + PSNAP_CRC_OFFSET);
    uint32_t computed = crc32c(0, buf + PSNAP_ENTRIES_OFFSET, len - PSNAP_ENTRIES_OFFSET);
    if (stored != computed) {
        if (why && whylen)
            snprintf(why, whylen, "Snapshot is corrupt (CRC is no longer valid). Stored crc: %" PRIu32
                     ". Computed crc: %" PRIu32, stored, computed);
        return PSNAP_CORRUPT;
    }
    if (count == 0) return 0;
    psnap_entry *v = malloc((size_t)count * sizeof *v);
    if (!v) return -1;
    const uint8_t *p = buf + PSNAP_HEADER_SIZE;
    for (int i = 0; i < count; i++, p += PSNAP_ENTRY_SIZE) {
        v[i].producer_id = (int64_t)bh_get_u64(p);
        v[i].epoch = (int16_t)bh_get_u16(p + 8);
        v[i].last_sequence = (int32_t)bh_get_u32(p + 10);
        v[i].last_offset = (int64_t)bh_get_u64(p + 14);
        v[i].offset_delta = (int32_t)bh_get_u32(p + 22);
        v[i].timestamp = (int64_t)bh_get_u64(p + 26);
        v[i].coordinator_epoch = (int32_t)bh_get_u32(p + 34);
        v[i].current_txn_first_offset = (int64_t)bh_get_u64(p + 38);
    }
    *out = v;
    *n = count;
    return 0;
}

int psnap_path(char *buf, size_t cap, const char *dir, int64_t offset) {
    int w = snprintf(buf, cap, "%s/%020" PRId64 PSNAP_SUFFIX, dir, offset);
    if (w < 0 || (size_t)w >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int psnap_write(const char *dir, int64_t offset, const psnap_entry *e, int n) {
    return psnap_write_sync(dir, offset, e, n, true);
}

int psnap_write_sync(const char *dir, int64_t offset, const psnap_entry *e, int n, bool sync) {
    char path[PATH_MAX], tmp[PATH_MAX];
    if (psnap_path(path, sizeof path, dir, offset) != 0) return -1;
    if (snprintf(tmp, sizeof tmp, "%s" PSNAP_TMP_SUFFIX, path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t len = psnap_encoded_size(n);
    uint8_t *buf = malloc(len);
    if (!buf) return -1;
    psnap_encode(e, n, buf);
    int fd = storage_fio.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd >= 0) {
        rc = fio_write_full(fd, buf, len);
        if (rc == 0 && sync) rc = storage_fio.fsync(fd);
        int saved = errno;
        storage_fio.close(fd);
        errno = saved;
        if (rc == 0) rc = storage_fio.rename(tmp, path);
        if (rc != 0) {
            saved = errno;
            storage_fio.unlink(tmp);
            errno = saved;
        }
    }
    free(buf);
    if (rc == 0 && sync) rc = fio_fsync_dir(dir);
    return rc;
}

int psnap_read(const char *dir, int64_t offset, psnap_entry **out, int *n, char *why, size_t whylen) {
    *out = NULL;
    *n = 0;
    char path[PATH_MAX];
    if (psnap_path(path, sizeof path, dir, offset) != 0) return -1;
    int fd = storage_fio.open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return -1;
    int64_t size = fio_file_size(fd);
    int rc = -1;
    if (size > (int64_t)PSNAP_MAX_FILE) {
        rc = corrupt(why, whylen, "Snapshot is too large");
    } else if (size >= 0) {
        uint8_t *buf = malloc(size ? (size_t)size : 1);
        if (buf && fio_pread_full(fd, buf, (size_t)size, 0) == 0)
            rc = psnap_decode(buf, (size_t)size, out, n, why, whylen);
        free(buf);
    }
    int saved = errno;
    storage_fio.close(fd);
    errno = saved;
    return rc;
}

/* Digits then ".snapshot" exactly; the offset must fit an int64. */
static int parse_name(const char *name, int64_t *offset) {
    size_t len = strlen(name), slen = sizeof(PSNAP_SUFFIX) - 1;
    if (len <= slen || len - slen > 19 || strcmp(name + len - slen, PSNAP_SUFFIX) != 0) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len - slen; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (name[i] - '0');
    }
    *offset = v;
    return 0;
}

/* 20-digit names (ours, Kafka's) of offsets that need all 20 digits do not
 * exist below INT64_MAX's 19 digits: strip leading zeros before the limit. */
static const char *skip_zeros(const char *name) {
    while (name[0] == '0' && name[1] >= '0' && name[1] <= '9') name++;
    return name;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int psnap_parse_name(const char *name, int64_t *offset) { return parse_name(skip_zeros(name), offset); }

int psnap_list(const char *dir, int64_t **offsets, int *n_out) {
    *offsets = NULL;
    *n_out = 0;
    fio_dir d;
    if (fio_dir_open(&d, dir) != 0) return -1;
    int64_t *v = NULL;
    int n = 0, cap = 0, rc = 0;
    const char *name;
    while ((name = fio_dir_next(&d))) {
        size_t len = strlen(name);
        const char *tmp_suffix = PSNAP_SUFFIX PSNAP_TMP_SUFFIX;
        size_t tlen = strlen(tmp_suffix);
        if (len > tlen && strcmp(name + len - tlen, tmp_suffix) == 0) {
            char path[PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path) storage_fio.unlink(path);
            continue;
        }
        int64_t off;
        if (psnap_parse_name(name, &off) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
        }
        v[n++] = off;
    }
    if (!name && errno != 0) rc = -1; /* a failed read of the directory, not its end */
    int saved = errno;
    fio_dir_close(&d);
    if (rc != 0) {
        free(v);
        errno = saved;
        return -1;
    }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_i64);
    *offsets = v;
    *n_out = n;
    return 0;
}

int psnap_delete(const char *dir, int64_t offset) {
    char path[PATH_MAX];
    if (psnap_path(path, sizeof path, dir, offset) != 0) return -1;
    if (storage_fio.unlink(path) != 0 && errno != ENOENT) return -1;
    return 0;
}

int psnap_delete_below(const char *dir, int64_t below) {
    int64_t *offs;
    int n;
    if (psnap_list(dir, &offs, &n) != 0) return -1;
    int removed = 0, rc = 0;
    for (int i = 0; i < n && offs[i] < below; i++) {
        if (psnap_delete(dir, offs[i]) != 0) rc = -1;
        else removed++;
    }
    free(offs);
    return rc ? -1 : removed;
}
