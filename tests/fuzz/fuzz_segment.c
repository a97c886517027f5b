/* fuzz_segment.c - libFuzzer target for segment recovery at start-up.
 *
 * The input is a partition directory in miniature:
 *   [u8 flags]
 *   [u16 n][n bytes]  00000000000000000000.index       (absent when n == 0)
 *   [u16 n][n bytes]  00000000000000000000.timeindex   (absent when n == 0)
 *   [u16 n][n bytes]  leader-epoch-checkpoint         (absent when n == 0)
 *   [u16 n][n bytes]  a recovery-point-offset-checkpoint, parsed on its own
 *   [rest]            00000000000000000000.log
 * flags: bit 0 repairs each v2 batch's CRC so mutations get past it; bit 1
 * opens with a recovery point at the end of the file instead of 0, so the
 * segment is trusted and only its indexes are checked; bit 2 appends a
 * fresh batch after recovery; bit 3 opens it as after a clean shutdown (the
 * indexes loaded, only the batches from the last indexed one on checked).
 * The files go into a private temp dir, plog_open recovers them, and every
 * byte below the log end offset is read back with plog_read: what recovery
 * kept must be whole v2 batches with good checksums and rising offsets.
 * fsync is stubbed out (speed; durability is not what is tested). Build:
 *   make fuzz-build && build-fuzz/fuzz_segment tests/fuzz/corpus/segment
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/wire.h"
#include "storage/checkpoint.h"
#include "storage/fileio.h"
#include "storage/log.h"
#include "util/crc32c.h"

#define SEG_NAME "00000000000000000000"
#define FUZZ_MAX_LOG (1u << 20)

static char root[64];      /* private temp dir of this process */
static char part_dir[160]; /* root/fuzz-0, the partition dir */

static int no_sync(int fd) {
    (void)fd;
    return 0;
}

static void clear_dir(void);

static void remove_root(void) {
    clear_dir();
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* tmpfs when there is one: the target is file-system bound */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof root, "%s/fuzz_segment.XXXXXX", base);
    if (!mkdtemp(root)) abort();
    snprintf(part_dir, sizeof part_dir, "%s/fuzz-0", root);
    storage_fio.fsync = no_sync;
    storage_fio.fdatasync = no_sync;
    atexit(remove_root);
    return 0;
}

/* Remove whatever the last run left in the partition dir (it has no subdirs). */
static void clear_dir(void) {
    DIR *d = opendir(part_dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", part_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    if (rmdir(part_dir) != 0 && errno != ENOENT) abort();
}

static void write_file(const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", part_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

/* Take a u16-length-prefixed section; NULL with *n = 0 when absent. */
static const uint8_t *section(kreader *r, size_t *n) {
    size_t want = kr_u16(r);
    if (want > kr_remaining(r)) want = kr_remaining(r);
    *n = want;
    return want ? kr_take(r, want) : NULL;
}

static void fix_crcs(uint8_t *p, size_t size) {
    size_t pos = 0;
    while (size - pos >= BATCH_HEADER_SIZE) {
        int32_t blen = (int32_t)bh_get_u32(p + pos + BATCH_OFF_LENGTH);
        if (blen < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) return;
        size_t total = (size_t)blen + BATCH_LOG_OVERHEAD;
        if (total > size - pos) return;
        if (p[pos + BATCH_OFF_MAGIC] == 2)
            bh_put_u32(p + pos + BATCH_OFF_CRC,
                       crc32c(0, p + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
        pos += total;
    }
}

/* One valid uncompressed batch holding one record (null key, empty value). */
static size_t make_batch(uint8_t *b, int64_t ts) {
    /* length 6 (zig-zag 12), attributes, timestamp delta, offset delta,
     * key length -1 (zig-zag 1), value length 0, header count 0 */
    static const uint8_t record[] = {0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    size_t total = BATCH_HEADER_SIZE + sizeof record;
    memset(b, 0, BATCH_HEADER_SIZE);
    bh_put_u32(b + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    bh_put_u32(b + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
    b[BATCH_OFF_MAGIC] = 2;
    bh_put_u64(b + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)ts);
    bh_put_u64(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    bh_put_u64(b + BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
    bh_put_u16(b + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)-1);
    bh_put_u32(b + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    bh_put_u32(b + BATCH_OFF_RECORD_COUNT, 1);
    memcpy(b + BATCH_HEADER_SIZE, record, sizeof record);
    bh_put_u32(b + BATCH_OFF_CRC, crc32c(0, b + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
    return total;
}

/* Read [start, LEO) back; every batch must be intact and in order. */
static void read_all(plog *l) {
    int64_t offset = plog_start_offset(l), end = plog_end_offset(l);
    int64_t prev_last = -1;
    uint8_t *buf = NULL;
    while (offset < end) {
        plog_slice s;
        int rc = plog_read(l, offset, 1 << 20, true, end, &s);
        if (rc != 0 || s.len <= 0) break;
        uint8_t *nb = realloc(buf, (size_t)s.len);
        if (!nb) break;
        buf = nb;
        if (pread(s.fd, buf, (size_t)s.len, s.file_pos) != s.len) __builtin_trap();
        size_t pos = 0;
        while (pos < (size_t)s.len) {
            if ((size_t)s.len - pos < BATCH_HEADER_SIZE) __builtin_trap();
            batch_header h;
            batch_header_parse(buf + pos, &h);
            if (h.magic != 2 || h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) __builtin_trap();
            size_t total = batch_total_size(&h);
            if (total > (size_t)s.len - pos) __builtin_trap();
            if (crc32c(0, buf + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES) != h.crc)
                __builtin_trap();
            if (h.base_offset <= prev_last || h.last_offset_delta < 0) __builtin_trap();
            prev_last = batch_last_offset(&h);
            pos += total;
        }
        if (prev_last < offset) break; /* no progress: stop rather than spin */
        offset = prev_last + 1;
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > FUZZ_MAX_LOG) return 0;
    kreader r;
    kr_init(&r, data, size);
    uint8_t flags = (uint8_t)kr_i8(&r);
    size_t idx_n, tidx_n, epochs_n, ckpt_n;
    const uint8_t *idx = section(&r, &idx_n);
    const uint8_t *tidx = section(&r, &tidx_n);
    const uint8_t *epochs = section(&r, &epochs_n);
    const uint8_t *ckpt = section(&r, &ckpt_n);
    size_t log_n = kr_remaining(&r);
    const uint8_t *log_bytes = log_n ? kr_take(&r, log_n) : NULL;

    clear_dir();
    if (mkdir(part_dir, 0755) != 0) abort();
    uint8_t *log_copy = malloc(log_n ? log_n : 1);
    if (!log_copy) return 0;
    if (log_n) memcpy(log_copy, log_bytes, log_n);
    if (flags & 1) fix_crcs(log_copy, log_n);
    write_file(SEG_NAME ".log", log_copy, log_n);
    free(log_copy);
    if (idx_n) write_file(SEG_NAME ".index", idx, idx_n);
    if (tidx_n) write_file(SEG_NAME ".timeindex", tidx, tidx_n);
    if (epochs_n) write_file("leader-epoch-checkpoint", epochs, epochs_n);
    if (ckpt_n) {
        write_file("recovery-point-offset-checkpoint", ckpt, ckpt_n);
        char path[256], err[256];
        snprintf(path, sizeof path, "%s/recovery-point-offset-checkpoint", part_dir);
        ckpt_offsets c;
        if (ckpt_offsets_read(path, &c, err, sizeof err) == 0) {
            (void)ckpt_offsets_find(&c, "fuzz", 0);
            ckpt_offsets_free(&c);
        }
        unlink(path);
    }

    log_config cfg;
    log_config_defaults(&cfg);
    cfg.segment_index_bytes = 4096; /* small indexes: full-index rolls get reached */
    plog *l = NULL;
    char err[512];
    int64_t recovery_point = (flags & 2) ? INT64_MAX / 2 : 0;
    bool clean = flags & 8;
    bool trusted = (flags & 2) || clean; /* a trusted segment may hold anything */
    if (plog_open(part_dir, "fuzz", 0, NULL, &cfg, recovery_point, -1, clean, &l, err, sizeof err) != 0) return 0;
    int64_t leo = plog_end_offset(l);
    if (leo < plog_start_offset(l)) __builtin_trap();
    if (!trusted) read_all(l);
    if (flags & 4) {
        uint8_t b[128];
        size_t n = make_batch(b, 1700000000000LL);
        int64_t first, last;
        if (plog_append(l, b, n, 0, &first, &last) == 0 && first != leo) __builtin_trap();
        if (!trusted) read_all(l);
    }
    int32_t epoch_out;
    int64_t end_off, ts_off, ts;
    (void)plog_end_offset_for_epoch(l, 0, &epoch_out, &end_off);
    (void)plog_offset_for_timestamp(l, 0, NULL, NULL, &ts_off, &ts);
    (void)plog_max_timestamp(l, NULL, NULL, &ts_off, &ts);
    plog_close(l);
    return 0;
}
