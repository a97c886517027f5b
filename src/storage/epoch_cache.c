/* epoch_cache.c - leader epoch cache (see epoch_cache.h). */
#include "storage/epoch_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ec_open(epoch_cache *c, const char *path) {
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path))) {
        errno = ENOMEM;
        return -1;
    }
    epoch_entry *v;
    size_t n;
    if (ckpt_epochs_read(path, &v, &n) != 0) {
        if (errno != EINVAL) {
            int saved = errno;
            free(c->path);
            c->path = NULL;
            errno = saved;
            return -1;
        }
        fprintf(stderr, "storage: ignoring malformed %s; rebuilding from the log\n", path);
        return 0;
    }
    /* Keep only a strictly ascending prefix: the file may be hand-edited. */
    size_t keep = 0;
    while (keep < n && (keep == 0 || (v[keep].epoch > v[keep - 1].epoch &&
                                      v[keep].start_offset >= v[keep - 1].start_offset)))
        keep++;
    c->v = v;
    c->n = keep;
    c->cap = n;
    return 0;
}

int ec_open_known(epoch_cache *c, const char *path, const epoch_entry *v, size_t n) {
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path)) || (n > 0 && !(c->v = malloc(n * sizeof *v)))) {
        free(c->path);
        c->path = NULL;
        errno = ENOMEM;
        return -1;
    }
    if (n > 0) memcpy(c->v, v, n * sizeof *v);
    c->n = c->cap = n;
    return 0;
}

void ec_close(epoch_cache *c) {
    free(c->v);
    free(c->path);
    memset(c, 0, sizeof *c);
}

static int ec_persist(epoch_cache *c) { return ckpt_epochs_write(c->path, c->v, c->n, !c->lazy); }

/* Replace the contents with v[0..n) after persisting it; on failure keep the
 * old contents. Takes ownership of v either way. */
static int ec_commit(epoch_cache *c, epoch_entry *v, size_t n, size_t cap) {
    if (ckpt_epochs_write(c->path, v, n, !c->lazy) != 0) {
        int saved = errno;
        free(v);
        errno = saved;
        return -1;
    }
    free(c->v);
    c->v = v;
    c->n = n;
    c->cap = cap;
    return 0;
}

static epoch_entry *ec_copy(const epoch_cache *c, size_t extra, size_t *cap) {
    *cap = c->n + extra ? c->n + extra : 1;
    epoch_entry *v = malloc(*cap * sizeof *v);
    if (v && c->n) memcpy(v, c->v, c->n * sizeof *v);
    if (!v) errno = ENOMEM;
    return v;
}

int ec_assign(epoch_cache *c, int32_t epoch, int64_t start_offset) {
    if (epoch < 0 || start_offset < 0) {
        errno = EINVAL;
        return -1;
    }
    if (c->n > 0) {
        const epoch_entry *last = &c->v[c->n - 1];
        if (last->epoch == epoch && start_offset >= last->start_offset) return 0; /* nothing new */
    }
    size_t cap;
    epoch_entry *v = ec_copy(c, 1, &cap);
    if (!v) return -1;
    size_t n = c->n;
    /* Entries that would break monotonicity are superseded by the new one. */
    while (n > 0 && (v[n - 1].epoch >= epoch || v[n - 1].start_offset >= start_offset)) n--;
    v[n].epoch = epoch;
    v[n].start_offset = start_offset;
    return ec_commit(c, v, n + 1, cap);
}

int ec_truncate_from_end(epoch_cache *c, int64_t end_offset) {
    if (end_offset < 0 || c->n == 0 || c->v[c->n - 1].start_offset < end_offset) return 0;
    size_t cap;
    epoch_entry *v = ec_copy(c, 0, &cap);
    if (!v) return -1;
    size_t n = c->n;
    while (n > 0 && v[n - 1].start_offset >= end_offset) n--;
    return ec_commit(c, v, n, cap);
}

int ec_truncate_from_start(epoch_cache *c, int64_t start_offset) {
    size_t drop = 0;
    while (drop < c->n && c->v[drop].start_offset <= start_offset) drop++;
    if (drop == 0) return 0;
    /* The latest dropped entry survives, moved up to start_offset. */
    if (drop == 1 && c->v[0].start_offset == start_offset) return 0;
    size_t cap;
    epoch_entry *v = ec_copy(c, 0, &cap);
    if (!v) return -1;
    size_t n = c->n - drop + 1;
    memmove(v, v + drop - 1, n * sizeof *v);
    v[0].start_offset = start_offset;
    return ec_commit(c, v, n, cap);
}

int ec_clear(epoch_cache *c) {
    c->n = 0;
    return ec_persist(c);
}

int32_t ec_latest_epoch(const epoch_cache *c) { return c->n ? c->v[c->n - 1].epoch : -1; }

void ec_end_offset_for(const epoch_cache *c, int32_t epoch, int64_t log_end_offset, int32_t *epoch_out,
                       int64_t *end_offset) {
    *epoch_out = -1;
    *end_offset = -1;
    if (epoch == -1 || c->n == 0) return;
    if (c->v[c->n - 1].epoch == epoch) { /* the current epoch ends at the LEO */
        *epoch_out = epoch;
        *end_offset = log_end_offset;
        return;
    }
    /* First entry with a higher epoch, and the last with epoch <= requested. */
    size_t hi = 0;
    while (hi < c->n && c->v[hi].epoch <= epoch) hi++;
    if (hi == c->n) return; /* larger than every known epoch */
    *end_offset = c->v[hi].start_offset;
    /* An epoch older than all we know answers with itself (Kafka 3.6.1). */
    *epoch_out = hi == 0 ? epoch : c->v[hi - 1].epoch;
}

int32_t ec_epoch_for_offset(const epoch_cache *c, int64_t offset) {
    int32_t prev = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].start_offset == offset) return c->v[i].epoch;
        if (c->v[i].start_offset > offset) return prev;
        prev = c->v[i].epoch;
    }
    return prev;
}
