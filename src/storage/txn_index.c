/* txn_index.c - Kafka's .txnindex files (see txn_index.h). */
#include "storage/txn_index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/batch_header.h"
#include "storage/fileio.h"

/* Entries read per pread while scanning. */
#define TXI_CHUNK 128

void aborted_txn_encode(const aborted_txn *t, uint8_t out[ABORTED_TXN_SIZE]) {
    bh_put_u16(out, (uint16_t)t->version);
    bh_put_u64(out + 2, (uint64_t)t->producer_id);
    bh_put_u64(out + 10, (uint64_t)t->first_offset);
    bh_put_u64(out + 18, (uint64_t)t->last_offset);
    bh_put_u64(out + 26, (uint64_t)t->last_stable_offset);
}

void aborted_txn_decode(const uint8_t in[ABORTED_TXN_SIZE], aborted_txn *t) {
    t->version = (int8_t)in[0]; /* AbortedTxn.version() is buffer.get(0) */
    t->producer_id = (int64_t)bh_get_u64(in + 2);
    t->first_offset = (int64_t)bh_get_u64(in + 10);
    t->last_offset = (int64_t)bh_get_u64(in + 18);
    t->last_stable_offset = (int64_t)bh_get_u64(in + 26);
}

int txi_path(char *buf, size_t cap, const char *dir, int64_t base) {
    int w = snprintf(buf, cap, "%s/%020" PRId64 TXN_INDEX_SUFFIX, dir, base);
    if (w < 0 || (size_t)w >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int open_file(txn_index *x, int flags) {
    int fd = storage_fio.open(x->path, O_RDWR | O_CLOEXEC | flags, 0644);
    if (fd < 0) return -1;
    int64_t size = fio_file_size(fd);
    if (size < 0) {
        int saved = errno;
        storage_fio.close(fd);
        errno = saved;
        return -1;
    }
    x->fd = fd;
    x->size = size;
    return 0;
}

int txi_open(txn_index *x, const char *dir, int64_t base) {
    memset(x, 0, sizeof *x);
    x->fd = -1;
    x->start_offset = base;
    x->last_offset = -1;
    char path[4096];
    if (txi_path(path, sizeof path, dir, base) != 0) return -1;
    if (!(x->path = strdup(path))) return -1;
    if (open_file(x, 0) != 0 && errno != ENOENT) {
        int saved = errno;
        free(x->path);
        x->path = NULL;
        errno = saved;
        return -1;
    }
    return 0;
}

void txi_close(txn_index *x) {
    if (x->fd >= 0) storage_fio.close(x->fd);
    x->fd = -1;
    free(x->path);
    x->path = NULL;
}

int txi_append(txn_index *x, const aborted_txn *t) {
    if (x->last_offset >= 0 && x->last_offset >= t->last_offset) {
        errno = EINVAL;
        return -1;
    }
    if (x->fd < 0 && open_file(x, O_CREAT) != 0) return -1;
    uint8_t buf[ABORTED_TXN_SIZE];
    aborted_txn_encode(t, buf);
    if (fio_pwrite_full(x->fd, buf, sizeof buf, x->size) != 0) {
        int saved = errno;
        storage_fio.ftruncate(x->fd, x->size);
        errno = saved;
        return -1;
    }
    x->size += ABORTED_TXN_SIZE;
    x->last_offset = t->last_offset;
    return 0;
}

int txi_flush(txn_index *x) { return x->fd >= 0 ? storage_fio.fsync(x->fd) : 0; }

int txi_reset(txn_index *x) {
    if (x->fd >= 0 && storage_fio.ftruncate(x->fd, 0) != 0) return -1;
    x->size = 0;
    x->last_offset = -1;
    return 0;
}

/* Calls fn on each whole entry in order with its file position; fn returns
 * nonzero to stop. 0, TXI_BAD_VERSION or -1. */
typedef int (*entry_fn)(const aborted_txn *t, int64_t pos, void *ctx);
static int each_entry(txn_index *x, entry_fn fn, void *ctx) {
    if (x->fd < 0) return 0;
    int64_t whole = x->size - x->size % ABORTED_TXN_SIZE;
    uint8_t buf[TXI_CHUNK * ABORTED_TXN_SIZE];
    for (int64_t pos = 0; pos < whole;) {
        int64_t want = whole - pos < (int64_t)sizeof buf ? whole - pos : (int64_t)sizeof buf;
        if (fio_pread_full(x->fd, buf, (size_t)want, pos) != 0) return -1;
        for (int64_t k = 0; k < want; k += ABORTED_TXN_SIZE) {
            aborted_txn t;
            aborted_txn_decode(buf + k, &t);
            if (t.version > ABORTED_TXN_VERSION) return TXI_BAD_VERSION;
            if (fn(&t, pos + k, ctx)) return 0;
        }
        pos += want;
    }
    return 0;
}

typedef struct truncate_ctx {
    int64_t offset, cut_at, new_last;
} truncate_ctx;

static int truncate_visit(const aborted_txn *t, int64_t pos, void *ctx) {
    truncate_ctx *c = ctx;
    if (t->last_offset >= c->offset) {
        c->cut_at = pos;
        return 1;
    }
    c->new_last = t->last_offset;
    return 0;
}

int txi_truncate_to(txn_index *x, int64_t offset) {
    truncate_ctx c = {offset, -1, -1};
    int rc = each_entry(x, truncate_visit, &c);
    if (rc != 0 || c.cut_at < 0) return rc;
    if (storage_fio.ftruncate(x->fd, c.cut_at) != 0) return -1;
    x->size = c.cut_at;
    x->last_offset = c.new_last;
    return 0;
}

int txi_delete(txn_index *x) {
    char *path = x->path;
    x->path = NULL;
    txi_close(x);
    int rc = 0;
    if (path && storage_fio.unlink(path) != 0 && errno != ENOENT) rc = -1;
    free(path);
    return rc;
}

static int list_push(aborted_list *l, const aborted_txn *t) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 8;
        aborted_txn *nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = *t;
    return 0;
}

void aborted_list_free(aborted_list *l) {
    free(l->v);
    memset(l, 0, sizeof *l);
}

typedef struct all_ctx {
    aborted_list list;
    bool oom;
} all_ctx;

static int all_visit(const aborted_txn *t, int64_t pos, void *ctx) {
    (void)pos;
    all_ctx *c = ctx;
    if (list_push(&c->list, t) != 0) c->oom = true;
    return c->oom;
}

int txi_read_all(txn_index *x, aborted_txn **out, int *n) {
    all_ctx c = {{0}, false};
    int rc = each_entry(x, all_visit, &c);
    if (rc == 0 && c.oom) rc = -1;
    if (rc != 0) {
        aborted_list_free(&c.list);
        *out = NULL;
        *n = 0;
        return rc;
    }
    *out = c.list.v;
    *n = c.list.n;
    return 0;
}

typedef struct sanity_ctx {
    int64_t start;
    bool bad;
} sanity_ctx;

static int sanity_visit(const aborted_txn *t, int64_t pos, void *ctx) {
    (void)pos;
    sanity_ctx *c = ctx;
    if (t->last_offset < c->start) c->bad = true;
    return c->bad;
}

int txi_sanity_check(txn_index *x) {
    sanity_ctx c = {x->start_offset, false};
    int rc = each_entry(x, sanity_visit, &c);
    if (rc == 0 && c.bad) {
        errno = EINVAL;
        return -1;
    }
    return rc;
}

typedef struct collect_ctx {
    int64_t fetch_offset, upper_bound;
    aborted_list *out;
    bool complete, oom;
} collect_ctx;

static int collect_visit(const aborted_txn *t, int64_t pos, void *ctx) {
    (void)pos;
    collect_ctx *c = ctx;
    if (t->last_offset >= c->fetch_offset && t->first_offset < c->upper_bound && list_push(c->out, t) != 0) {
        c->oom = true;
        return 1;
    }
    if (t->last_stable_offset >= c->upper_bound) {
        c->complete = true;
        return 1;
    }
    return 0;
}

int txi_collect(txn_index *x, int64_t fetch_offset, int64_t upper_bound, aborted_list *out, bool *complete) {
    collect_ctx c = {fetch_offset, upper_bound, out, false, false};
    int rc = each_entry(x, collect_visit, &c);
    if (rc == 0 && c.oom) {
        errno = ENOMEM;
        rc = -1;
    }
    *complete = c.complete;
    return rc;
}

int txi_collect_segments(txn_index *const *segs, int nsegs, int64_t fetch_offset, int64_t upper_bound,
                         aborted_list *out) {
    for (int i = 0; i < nsegs; i++) {
        bool complete = false;
        int rc = txi_collect(segs[i], fetch_offset, upper_bound, out, &complete);
        if (rc != 0) return rc;
        if (complete) break;
    }
    return 0;
}
