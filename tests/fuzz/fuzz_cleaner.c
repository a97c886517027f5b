/* fuzz_cleaner.c - libFuzzer target for the log cleaner's input segments
 * (storage/cleaner.c).
 *
 * Input:
 *   [u8 flags][u8 step]
 *   [u16 n][n bytes]  aborted transactions, 3 bytes each: producer id (low
 *                     2 bits), first offset, last offset
 *   [rest]            00000000000000000000.log (an empty active segment
 *                     follows it at base 2^40)
 * flags: bit 0 repairs each v2 batch's CRC so mutations get past it; bit 1
 * uses a 4-slot offset map (the map fills up); bit 2 cleans "much later"
 * (every delete horizon passed); bit 3 stops the clean at its step-th
 * directory change, as a kill -9 would, then runs recovery; bit 4 declares
 * producer 1 active with its last data at offset `step`.
 * Whatever the bytes, the clean must not crash, and afterwards (also after
 * a crash and recovery, and after a second clean of the result) the
 * directory must hold no .cleaned, .swap or .deleted file and only whole v2
 * batches with good CRCs and rising offsets. fsync is stubbed out. Build:
 *   make fuzz-build && build-fuzz/fuzz_cleaner tests/fuzz/corpus/cleaner
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/batch_header.h"
#include "protocol/wire.h"
#include "storage/cleaner.h"
#include "storage/fileio.h"
#include "storage/offset_map.h"
#include "util/crc32c.h"

#define FUZZ_MAX_LOG (1u << 20)
#define ACTIVE_BASE (1LL << 40)

static char root[64];
static char part_dir[160];
static offset_map big_map, small_map;

static int no_sync(int fd) {
    (void)fd;
    return 0;
}

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

static void remove_root(void) {
    clear_dir();
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof root, "%s/fuzz_cleaner.XXXXXX", base);
    if (!mkdtemp(root)) abort();
    snprintf(part_dir, sizeof part_dir, "%s/fuzz-0", root);
    storage_fio.fsync = no_sync;
    storage_fio.fdatasync = no_sync;
    if (omap_init(&big_map, 1 << 16, 0.9) != 0 || omap_init(&small_map, 4 * OMAP_ENTRY_SIZE, 0.9) != 0) abort();
    atexit(remove_root);
    return 0;
}

static void write_file(const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", part_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static void fix_crcs(uint8_t *p, size_t size) {
    size_t pos = 0;
    while (size - pos >= BATCH_HEADER_SIZE) {
        int32_t blen = (int32_t)bh_get_u32(p + pos + BATCH_OFF_LENGTH);
        if (blen < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) return;
        size_t total = (size_t)blen + BATCH_LOG_OVERHEAD;
        if (total > size - pos) return;
        if (p[pos + BATCH_OFF_MAGIC] == 2)
            bh_put_u32(p + pos + BATCH_OFF_CRC, crc32c(0, p + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES));
        pos += total;
    }
}

/* Every *.log of the directory: whole, checksummed v2 batches with rising
 * offsets; no temporary files of the swap protocol. */
static void check_dir(bool batches) {
    DIR *d = opendir(part_dir);
    if (!d) __builtin_trap();
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (strstr(s, ".cleaned") || strstr(s, ".swap") || strstr(s, ".deleted")) __builtin_trap();
        size_t len = strlen(s);
        if (!batches || len < 4 || strcmp(s + len - 4, ".log") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", part_dir, s);
        int fd = open(path, O_RDONLY);
        if (fd < 0) __builtin_trap();
        struct stat st;
        fstat(fd, &st);
        uint8_t *buf = malloc((size_t)st.st_size + 1);
        if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size) __builtin_trap();
        close(fd);
        size_t pos = 0;
        int64_t prev = -1;
        while (pos < (size_t)st.st_size) {
            if ((size_t)st.st_size - pos < BATCH_HEADER_SIZE) __builtin_trap();
            batch_header h;
            batch_header_parse(buf + pos, &h);
            size_t total = batch_total_size(&h);
            if (h.magic != 2 || h.batch_length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
                total > (size_t)st.st_size - pos)
                __builtin_trap();
            if (crc32c(0, buf + pos + BATCH_OFF_ATTRIBUTES, total - BATCH_OFF_ATTRIBUTES) != h.crc) __builtin_trap();
            if (h.base_offset <= prev || h.last_offset_delta < 0) __builtin_trap();
            prev = batch_last_offset(&h);
            pos += total;
        }
        free(buf);
    }
    closedir(d);
}

static int g_step, g_seen;
static int stop_at_step(void *ctx, const char *step) {
    (void)ctx;
    (void)step;
    return ++g_seen == g_step;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > FUZZ_MAX_LOG) return 0;
    kreader r;
    kr_init(&r, data, size);
    uint8_t flags = (uint8_t)kr_i8(&r);
    uint8_t step = (uint8_t)kr_i8(&r);
    size_t txn_n = kr_remaining(&r) >= 2 ? kr_u16(&r) : 0;
    if (txn_n > kr_remaining(&r)) txn_n = kr_remaining(&r);
    const uint8_t *txn_bytes = txn_n ? kr_take(&r, txn_n) : NULL;
    size_t log_n = kr_remaining(&r);
    const uint8_t *log_bytes = log_n ? kr_take(&r, log_n) : NULL;

    aborted_txn aborted[64];
    int naborted = 0;
    for (size_t i = 0; i + 3 <= txn_n && naborted < 64; i += 3)
        aborted[naborted++] = (aborted_txn){0, txn_bytes[i] & 3, txn_bytes[i + 1], txn_bytes[i + 2], txn_bytes[i + 2]};

    clear_dir();
    if (mkdir(part_dir, 0755) != 0) abort();
    uint8_t *copy = malloc(log_n ? log_n : 1);
    if (!copy) return 0;
    if (log_n) memcpy(copy, log_bytes, log_n);
    if (flags & 1) fix_crcs(copy, log_n);
    write_file("00000000000000000000.log", copy, log_n);
    write_file("00000000000000000000.index", NULL, 0);
    write_file("00000000000000000000.timeindex", NULL, 0);
    free(copy);
    write_file("00000001099511627776.log", NULL, 0); /* the active segment at 2^40 */

    cleaner_config cfg;
    cleaner_config_defaults(&cfg);
    cfg.delete_retention_ms = 1000;
    cfg.segment_bytes = 1 << 16;
    cleaner_producer prod = {1, step, 0};
    cleaner_input in = {.dir = part_dir,
                        .first_dirty_offset = 0,
                        .first_uncleanable_offset = ACTIVE_BASE,
                        .aborted = aborted,
                        .naborted = naborted,
                        .producers = &prod,
                        .nproducers = (flags & 16) ? 1 : 0,
                        .now_ms = (flags & 4) ? (1LL << 50) : 1000};
    if (flags & 8) {
        in.fault = stop_at_step;
        g_step = step;
        g_seen = 0;
    }
    offset_map *m = (flags & 2) ? &small_map : &big_map;
    cleaner_stats st;
    char err[256];
    err[0] = 0;
    int rc = cleaner_clean(&cfg, &in, m, &st, err, sizeof err);
    if (getenv("FUZZ_CLEANER_VERBOSE")) /* which seeds get how far */
        fprintf(stderr, "clean: rc %d (%s) kept %lld of %lld records, end %lld\n", rc, err,
                (long long)st.records_retained, (long long)st.records_read, (long long)st.end_offset);
    if (rc == CLEANER_CRASHED && cleaner_recover_dir(part_dir) != 0) __builtin_trap();
    if (rc != 0 && rc != -1 && rc != CLEANER_CRASHED) __builtin_trap();
    if (rc == -1 && errno != EINVAL) return 0; /* an I/O failure: nothing to check */
    /* a refused (malformed) input stays as it was: only no leftovers then */
    check_dir(rc != -1);
    if (rc == 0) {
        /* the cleaned log is valid input to the next clean */
        in.fault = NULL;
        in.first_dirty_offset = st.end_offset < ACTIVE_BASE ? st.end_offset : 0;
        in.now_ms += 1000000;
        if (cleaner_clean(&cfg, &in, m, &st, err, sizeof err) != 0) __builtin_trap();
        check_dir(true);
    }
    return 0;
}
