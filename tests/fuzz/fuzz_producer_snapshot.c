/* fuzz_producer_snapshot.c - libFuzzer target for the producer state
 * snapshot reader (storage/producer_snapshot.c) and loading it into the
 * producer state (broker/producer_state.c).
 *
 * The input is a `<offset>.snapshot` file's bytes. It is decoded in memory
 * and, through the file path, read and loaded into a pstate; a snapshot that
 * decodes must re-encode to the same entries, and a loaded state must answer
 * its queries and write a snapshot that decodes to its producers. Build and
 * run: make fuzz-build && build-fuzz/fuzz_producer_snapshot tests/fuzz/corpus/producer_snapshot
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/producer_state.h"
#include "storage/producer_snapshot.h"
#include "util/log.h"

#define FUZZ_MAX_INPUT (1u << 20)

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR); /* corrupt snapshots are warned about: noise */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_psnap.%d", base, (int)getpid());
    mkdir(dir, 0755);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT) return 0;
    psnap_entry *e = NULL;
    int n = 0;
    char why[200];
    int rc = psnap_decode(data, size, &e, &n, why, sizeof why);
    if (rc == 0) {
        /* what decodes re-encodes to the same entries */
        uint8_t *again = malloc(psnap_encoded_size(n));
        if (again) {
            psnap_encode(e, n, again);
            psnap_entry *e2 = NULL;
            int n2 = 0;
            if (psnap_decode(again, psnap_encoded_size(n), &e2, &n2, NULL, 0) != 0 || n2 != n ||
                (n && memcmp(e, e2, sizeof *e * (size_t)n) != 0))
                __builtin_trap();
            free(e2);
            free(again);
        }
    }
    free(e);

    /* the same bytes as a file in a partition dir, loaded into a state */
    char path[128];
    psnap_path(path, sizeof path, dir, 100);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    pstate *s = pstate_new();
    if (!s) return 0;
    int64_t loaded = pstate_snapshot_load(s, dir, 0, 1000, 0, 0);
    if ((loaded == 100) != (rc == 0)) __builtin_trap(); /* file and memory agree */
    if (loaded == 100) {
        int count = pstate_producer_count(s);
        for (int i = 0; i < count; i++) {
            pstate_info pi;
            if (pstate_producer_at(s, i, &pi) != 0) __builtin_trap();
            bool dup;
            int64_t dup_offset;
            batch_header h = {.producer_id = pi.producer_id, .producer_epoch = pi.epoch,
                              .base_sequence = (int32_t)((uint32_t)pi.last_sequence + 1), .magic = 2};
            (void)pstate_check(s, &h, &dup, &dup_offset);
        }
        (void)pstate_last_stable_offset(s, 1000, 0);
        /* written back at a higher offset, it decodes to the same producers */
        if (pstate_snapshot_write(s, dir, 200) == 0) {
            psnap_entry *w = NULL;
            int nw = 0;
            if (psnap_read(dir, 200, &w, &nw, NULL, 0) != 0 || nw != count) __builtin_trap();
            free(w);
        }
    }
    pstate_free(s);
    psnap_delete_below(dir, INT64_MAX);
    return 0;
}
