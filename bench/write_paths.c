/* write_paths.c - samsa-write-paths: the candidate write paths for the broker's
 * produce append, measured side by side on this machine (issue 18).
 *
 * Every path appends the same bytes (MIB MiB in CHUNK-byte appends at
 * unaligned positions, like 1 MB batches of 1 KiB records) into a fresh file
 * in one directory, in alternating rounds (A B C ... A B C ...), each timed
 * write WAIT seconds after the previous file was deleted (this VM is slow to
 * touch memory it freed a while ago; bench/README.md). Each run reports MB/s,
 * CPU-ms per MB (getrusage of the process, all threads; and per thread) and
 * wall time, and the file is read back and compared in full before its
 * figures count. The paths (bench/README.md, "Write paths on this machine"):
 *
 *   pwrite         pwrite into the page cache, file grown by the writes (the broker today)
 *   fallocate      the same into a file reserved with fallocate KEEP_SIZE (log.preallocate=true)
 *   fallocate-16m  the same, reserved 16 MiB at a time ahead of the appends
 *   direct         O_DIRECT appends from 4 KiB-aligned buffers; the partial last block is kept
 *                  in a staging block and rewritten with the next append
 *   direct-sync    the same, then fdatasync
 *   mmap           memcpy into a mapped file sized ahead with fallocate
 *   mmap-populate  the same, each next chunk's pages populated ahead (MADV_POPULATE_WRITE)
 *   iothread       pwrite done by a second thread fed through a small queue
 *   raw256k        256 KiB aligned pwrites: the machine's page-cache write rate
 *
 *   samsa-write-paths [--dir DIR] [--mib N] [--chunk BYTES] [--rounds N] [--wait SECONDS]
 *                     [--paths a,b,...] [--queue N] [--sync] [--break PATH]
 *
 * --sync ends every path with fdatasync (timed): the cost of getting the data to
 * the disk, which the page-cache paths otherwise leave to the kernel's
 * writeback threads, whose CPU this process does not see (and the file is
 * deleted before most of it is written back).
 *
 * Exit 0 when every run verified (a path the file system refuses, e.g. O_DIRECT,
 * counts as "not supported"), 1 when a run failed or did not verify, 2 on usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define BLOCK 4096u
/* The source repeats with this period; a multiple of BLOCK so that a source
 * address has the alignment of its file offset (what a receive buffer laid
 * out for O_DIRECT would give), and large so a misplaced write shows. */
#define PERIOD (64u << 20)
#define VERIFY_PIECE (1u << 20)
#define RAW_CHUNK (256u << 10)
#define RESERVE_STEP (16u << 20)
#define MAX_ROUNDS 50
#define MAX_QUEUE 64

struct opts {
    const char *dir;
    long mib;
    size_t chunk;
    int rounds;
    double wait_s;
    const char *paths;
    int queue;
    int sync_all;
    const char *break_path; /* test hook: this path skips its last chunk, so verify must fail */
};

/* The bytes every path writes: byte i of the file is src[i % PERIOD]. */
struct source {
    unsigned char *buf;
    size_t len; /* PERIOD plus room for one chunk or verify piece past the period */
};

struct job {
    const char *file;
    uint64_t total;
    size_t chunk;
    const struct source *src;
    int queue;
    int sync_all;  /* --sync */
    int skip_last; /* --break */
};

struct result {
    int supported;
    int ok; /* the run completed and the file verified */
    double wall_s, cpu_s, main_cpu_s, io_cpu_s;
    double load1;
    char note[160];
};

typedef int (*path_fn)(const struct job *j, struct result *r);

struct path {
    const char *name;
    const char *what;
    path_fn run;
};

/* ---- small helpers ------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rusage_s(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const unsigned char *src_at(const struct source *s, uint64_t off) { return s->buf + off % PERIOD; }

static size_t chunk_at(const struct job *j, uint64_t off) {
    uint64_t left = j->total - off;
    return left < j->chunk ? (size_t)left : j->chunk;
}

/* The end of what a path writes: all of it, or all but the last chunk (--break). */
static uint64_t write_end(const struct job *j) {
    if (!j->skip_last) return j->total;
    uint64_t last = (j->total - 1) / j->chunk * j->chunk;
    return last;
}

static int pwrite_all(int fd, const unsigned char *buf, size_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        if (w == 0) return -EIO;
        buf += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static void set_note(struct result *r, const char *what, int err) {
    snprintf(r->note, sizeof r->note, "%s: %s", what, strerror(err));
}

/* The end of every path: fdatasync with --sync, then close. */
static int finish(int fd, const struct job *j, int rc) {
    if (rc == 0 && j->sync_all && fdatasync(fd) != 0) rc = -errno;
    close(fd);
    return rc;
}

/* ---- a, b, f: pwrite into the page cache -------------------------------- */

/* Reserves [*reserved, end + step) when an append would pass *reserved; as
 * log.preallocate does, a failed reservation is noted and the writes go on. */
static void reserve_ahead(int fd, uint64_t end, uint64_t step, uint64_t total, uint64_t *reserved, struct result *r) {
    if (step == 0 || end <= *reserved) return;
    uint64_t to = end + step < total ? end + step : total;
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)*reserved, (off_t)(to - *reserved)) != 0 && !r->note[0])
        set_note(r, "fallocate (went on without)", errno);
    *reserved = to;
}

/* step 0: no reservation; step >= total: the whole file at the first append. */
static int pwrite_chunks(const struct job *j, struct result *r, uint64_t step) {
    int fd = open(j->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return set_note(r, "open", errno), -1;
    int rc = 0;
    uint64_t reserved = 0;
    for (uint64_t off = 0; off < write_end(j) && rc == 0; off += chunk_at(j, off)) {
        reserve_ahead(fd, off + chunk_at(j, off), step, j->total, &reserved, r);
        rc = pwrite_all(fd, src_at(j->src, off), chunk_at(j, off), off);
    }
    rc = finish(fd, j, rc);
    if (rc != 0) set_note(r, "pwrite/fdatasync", -rc);
    return rc == 0 ? 0 : -1;
}

static int run_pwrite(const struct job *j, struct result *r) { return pwrite_chunks(j, r, 0); }

static int run_fallocate(const struct job *j, struct result *r) { return pwrite_chunks(j, r, j->total); }

static int run_fallocate_step(const struct job *j, struct result *r) { return pwrite_chunks(j, r, RESERVE_STEP); }

static int run_raw256k(const struct job *j, struct result *r) {
    struct job raw = *j;
    raw.chunk = RAW_CHUNK;
    return pwrite_chunks(&raw, r, 0);
}

/* ---- c: O_DIRECT appends ------------------------------------------------- */

/* How a file system says it does not do O_DIRECT (EINVAL on most, EOPNOTSUPP on some). */
static int direct_refused(int err) { return err == EINVAL || err == EOPNOTSUPP; }

/* An O_DIRECT log writes whole aligned blocks, so the partial block at its end
 * lives in memory (`tail`) and is written again, completed, by the next
 * append. Full blocks in the middle of an append go straight from the
 * source, whose addresses have their file offsets' alignment. */
struct dio_log {
    int fd;
    uint64_t block_off; /* file offset of the tail block */
    size_t tail_len;    /* bytes of data in it */
    unsigned char *tail, *spare;
};

static int pwritev_exact(int fd, struct iovec *iov, int n, uint64_t off) {
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    ssize_t w;
    do w = pwritev(fd, iov, n, (off_t)off);
    while (w < 0 && errno == EINTR);
    if (w < 0) return -errno;
    return (size_t)w == want ? 0 : -EIO; /* a short direct write: treat as failed */
}

static int dio_append(struct dio_log *l, const unsigned char *data, size_t n) {
    size_t have = l->tail_len;
    if (have + n < BLOCK) { /* still inside the tail block: rewrite it */
        memcpy(l->tail + have, data, n);
        memset(l->tail + have + n, 0, BLOCK - have - n);
        l->tail_len += n;
        return pwritev_exact(l->fd, &(struct iovec){l->tail, BLOCK}, 1, l->block_off);
    }
    struct iovec iov[3];
    int k = 0;
    size_t first = have ? BLOCK - have : 0;
    if (first) {
        memcpy(l->tail + have, data, first);
        iov[k++] = (struct iovec){l->tail, BLOCK};
    }
    size_t mid = (n - first) & ~(size_t)(BLOCK - 1), left = n - first - mid;
    if ((uintptr_t)(data + first) % BLOCK) return -EFAULT; /* the source must be laid out aligned */
    if (mid) iov[k++] = (struct iovec){(void *)(data + first), mid};
    if (left) {
        memcpy(l->spare, data + first + mid, left);
        memset(l->spare + left, 0, BLOCK - left);
        iov[k++] = (struct iovec){l->spare, BLOCK};
    }
    int rc = pwritev_exact(l->fd, iov, k, l->block_off);
    l->block_off += (first ? BLOCK : 0) + mid;
    l->tail_len = left;
    unsigned char *t = l->tail; /* the new tail is in spare */
    l->tail = l->spare;
    l->spare = t;
    return rc;
}

static int direct_chunks(const struct job *j, struct result *r, int sync) {
    int fd = open(j->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0 && direct_refused(errno)) return r->supported = 0, 0;
    if (fd < 0) return set_note(r, "open O_DIRECT", errno), -1;
    struct dio_log l = {.fd = fd, .tail = aligned_alloc(BLOCK, BLOCK), .spare = aligned_alloc(BLOCK, BLOCK)};
    int rc = l.tail && l.spare ? 0 : -ENOMEM, attempts = 0;
    for (uint64_t off = 0; off < write_end(j) && rc == 0; off += chunk_at(j, off), attempts++)
        rc = dio_append(&l, src_at(j->src, off), chunk_at(j, off));
    /* The padding of the last block is not data: a real log keeps its size apart. */
    if (rc == 0 && ftruncate(fd, (off_t)write_end(j)) != 0) rc = -errno;
    if (rc == 0 && (sync || j->sync_all) && fdatasync(fd) != 0) rc = -errno;
    if (direct_refused(-rc) && attempts == 1) r->supported = 0; /* the first write refused: open allowed, writes not */
    else if (rc != 0) set_note(r, "O_DIRECT write", -rc);
    free(l.tail);
    free(l.spare);
    close(fd);
    return rc == 0 || !r->supported ? 0 : -1;
}

static int run_direct(const struct job *j, struct result *r) { return direct_chunks(j, r, 0); }

static int run_direct_sync(const struct job *j, struct result *r) { return direct_chunks(j, r, 1); }

/* ---- d: memcpy into a mapped, preallocated file -------------------------- */

/* Pages of [off, off+n) faulted in writable in one call rather than one
 * fault per page during the memcpy; the per-range form of MAP_POPULATE. */
static void populate(unsigned char *map, uint64_t off, size_t n, struct result *r) {
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off / page * page;
    if (n && madvise(map + start, (size_t)(off + n - start), MADV_POPULATE_WRITE) != 0 && !r->note[0])
        set_note(r, "MADV_POPULATE_WRITE (went on without)", errno);
}

static int mmap_chunks(const struct job *j, struct result *r, int ahead) {
    int fd = open(j->file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return set_note(r, "open", errno), -1;
    /* Sized (and reserved) ahead: a mapping cannot grow the file. */
    if (fallocate(fd, 0, 0, (off_t)j->total) != 0 && ftruncate(fd, (off_t)j->total) != 0) {
        set_note(r, "fallocate/ftruncate", errno);
        close(fd);
        return -1;
    }
    unsigned char *map = mmap(NULL, j->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        set_note(r, "mmap", errno);
        close(fd);
        return -1;
    }
    if (ahead) populate(map, 0, chunk_at(j, 0), r);
    for (uint64_t off = 0; off < write_end(j); off += chunk_at(j, off)) {
        uint64_t next = off + chunk_at(j, off);
        if (ahead && next < j->total) populate(map, next, chunk_at(j, next), r);
        memcpy(map + off, src_at(j->src, off), chunk_at(j, off));
    }
    munmap(map, j->total);
    int rc = finish(fd, j, 0); /* fdatasync writes the pages the mapping dirtied */
    if (rc != 0) set_note(r, "fdatasync", -rc);
    return rc == 0 ? 0 : -1;
}

static int run_mmap(const struct job *j, struct result *r) { return mmap_chunks(j, r, 0); }

static int run_mmap_populate(const struct job *j, struct result *r) { return mmap_chunks(j, r, 1); }

/* ---- e: pwrite on an I/O thread ------------------------------------------ */

/* The main thread hands each chunk (a range of the source, which stays valid
 * for the whole run, as a request buffer would until its write is done) to
 * one I/O thread and waits only for queue space. */
struct ioq {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    uint64_t off[MAX_QUEUE];
    size_t len[MAX_QUEUE];
    int head, count, cap, done, err, fd;
    const struct source *src;
    double cpu_s; /* the I/O thread's own CPU, measured by itself */
};

static int ioq_pop(struct ioq *q, uint64_t *off, size_t *len) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->done) pthread_cond_wait(&q->not_empty, &q->mu);
    int got = q->count > 0;
    if (got) {
        *off = q->off[q->head];
        *len = q->len[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        /* Wake a producer waiting on a full queue only once it is half empty:
         * a wake-up per append costs more than the append at 16 KiB. */
        if (q->count <= q->cap / 2) pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

static void *io_thread(void *arg) {
    struct ioq *q = arg;
    uint64_t off;
    size_t len;
    /* Ends when the queue is closed and empty; after an error it drains without writing. */
    while (ioq_pop(q, &off, &len)) {
        int rc = q->err ? 0 : pwrite_all(q->fd, src_at(q->src, off), len, off);
        if (rc != 0) q->err = -rc; /* only this thread writes err until the join */
    }
    q->cpu_s = rusage_s(RUSAGE_THREAD);
    return NULL;
}

static void ioq_push(struct ioq *q, uint64_t off, size_t len) {
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    int tail = (q->head + q->count) % q->cap;
    q->off[tail] = off;
    q->len[tail] = len;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

static int run_iothread(const struct job *j, struct result *r) {
    struct ioq q = {.mu = PTHREAD_MUTEX_INITIALIZER, .not_full = PTHREAD_COND_INITIALIZER,
                    .not_empty = PTHREAD_COND_INITIALIZER, .cap = j->queue, .src = j->src};
    q.fd = open(j->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (q.fd < 0) return set_note(r, "open", errno), -1;
    pthread_t t;
    int rc = pthread_create(&t, NULL, io_thread, &q);
    if (rc != 0) {
        set_note(r, "pthread_create", rc);
        close(q.fd);
        return -1;
    }
    for (uint64_t off = 0; off < write_end(j); off += chunk_at(j, off)) ioq_push(&q, off, chunk_at(j, off));
    pthread_mutex_lock(&q.mu);
    q.done = 1;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
    pthread_join(t, NULL);
    r->io_cpu_s = q.cpu_s;
    if (q.err) {
        close(q.fd);
        return set_note(r, "pwrite (I/O thread)", q.err), -1;
    }
    rc = finish(q.fd, j, 0); /* on the main thread: the broker's flush would be elsewhere too */
    if (rc != 0) set_note(r, "fdatasync", -rc);
    return rc == 0 ? 0 : -1;
}

static const struct path PATHS[] = {
    {"pwrite", "a. pwrite into the page cache, file grown by the writes (the broker today)", run_pwrite},
    {"fallocate", "b. pwrite into a file reserved with fallocate KEEP_SIZE (log.preallocate=true)", run_fallocate},
    {"fallocate-16m", "b. the same, reserved 16 MiB at a time ahead of the appends", run_fallocate_step},
    {"direct", "c. O_DIRECT appends from aligned buffers, tail block rewritten, no fdatasync", run_direct},
    {"direct-sync", "c. the same, then fdatasync", run_direct_sync},
    {"mmap", "d. memcpy into a mapped file sized by fallocate", run_mmap},
    {"mmap-populate", "d. the same, next chunk populated ahead (MADV_POPULATE_WRITE)", run_mmap_populate},
    {"iothread", "e. pwrite on a second thread fed through a queue", run_iothread},
    {"raw256k", "f. 256 KiB aligned pwrites into the page cache (machine's rate)", run_raw256k},
};
#define NPATHS ((int)(sizeof PATHS / sizeof PATHS[0]))

/* ---- verify -------------------------------------------------------------- */

/* Read back in full: the size must be the total and every byte the source's. */
static int verify(const struct job *j, struct result *r) {
    int fd = open(j->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return set_note(r, "verify open", errno), -1;
    struct stat st = {0};
    int bad = fstat(fd, &st) != 0 || (uint64_t)st.st_size != j->total;
    if (bad) snprintf(r->note, sizeof r->note, "verify: size %lld, expected %llu", (long long)st.st_size, (unsigned long long)j->total);
    unsigned char *buf = malloc(VERIFY_PIECE);
    if (!buf) bad = 1;
    for (uint64_t off = 0; !bad && off < j->total;) {
        size_t want = j->total - off < VERIFY_PIECE ? (size_t)(j->total - off) : VERIFY_PIECE;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0 || memcmp(buf, src_at(j->src, off), (size_t)got) != 0) {
            snprintf(r->note, sizeof r->note, "verify: bytes differ in the MiB at %llu", (unsigned long long)off);
            bad = 1;
        }
        off += got > 0 ? (uint64_t)got : 0;
    }
    free(buf);
    close(fd);
    return bad ? -1 : 0;
}

/* ---- one run, rounds, report --------------------------------------------- */

static void run_one(const struct path *p, const struct job *j, struct result *r) {
    memset(r, 0, sizeof *r);
    r->supported = 1;
    double t0 = now_s(), c0 = rusage_s(RUSAGE_SELF), m0 = rusage_s(RUSAGE_THREAD);
    int rc = p->run(j, r);
    r->wall_s = now_s() - t0;
    r->cpu_s = rusage_s(RUSAGE_SELF) - c0;
    r->main_cpu_s = rusage_s(RUSAGE_THREAD) - m0;
    double load[1] = {0};
    if (getloadavg(load, 1) == 1) r->load1 = load[0];
    r->ok = rc == 0 && r->supported && verify(j, r) == 0;
    unlink(j->file);
}

static double per_mb(double s, uint64_t bytes) { return s * 1000 / ((double)bytes / 1e6); }

static void print_run(int round, const struct path *p, const struct job *j, const struct result *r) {
    if (!r->supported) {
        printf("round=%d path=%s supported=no\n", round, p->name);
    } else {
        printf("round=%d path=%s supported=yes verified=%s mb_per_s=%.1f wall_s=%.3f cpu_ms_per_mb=%.3f "
               "main_cpu_ms_per_mb=%.3f io_cpu_ms_per_mb=%.3f load1=%.2f%s%s\n",
               round, p->name, r->ok ? "yes" : "NO", (double)j->total / 1e6 / r->wall_s, r->wall_s,
               per_mb(r->cpu_s, j->total), per_mb(r->main_cpu_s, j->total), per_mb(r->io_cpu_s, j->total),
               r->load1, r->note[0] ? " note=" : "", r->note);
    }
    fflush(stdout);
}

struct span {
    double lo, hi;
    int n;
};

static void span_add(struct span *s, double v) {
    if (s->n == 0 || v < s->lo) s->lo = v;
    if (s->n == 0 || v > s->hi) s->hi = v;
    s->n++;
}

static void span_fmt(char *out, size_t cap, const struct span *s, const char *fmt) {
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, fmt, s->lo);
    snprintf(hi, sizeof hi, fmt, s->hi);
    if (s->n == 0) snprintf(out, cap, "-");
    else if (s->n == 1 || !strcmp(lo, hi)) snprintf(out, cap, "%s", lo);
    else snprintf(out, cap, "%s-%s", lo, hi);
}

/* One table row per path: ranges over the rounds that verified. */
static void print_row(const struct path *p, const struct job *j, struct result *runs, int rounds) {
    struct span mbs = {0}, cpu = {0}, main_cpu = {0}, io = {0}, wall = {0}, load = {0};
    int unsupported = 0, failed = 0;
    for (int i = 0; i < rounds; i++) {
        struct result *r = &runs[i];
        if (!r->supported) { unsupported++; continue; }
        if (!r->ok) { failed++; continue; }
        span_add(&mbs, (double)j->total / 1e6 / r->wall_s);
        span_add(&cpu, per_mb(r->cpu_s, j->total));
        span_add(&main_cpu, per_mb(r->main_cpu_s, j->total));
        span_add(&io, per_mb(r->io_cpu_s, j->total));
        span_add(&wall, r->wall_s);
        span_add(&load, r->load1);
    }
    if (unsupported == rounds) {
        printf("| %s | not supported by this file system | | | | | |\n", p->name);
        return;
    }
    char f[6][72];
    span_fmt(f[0], sizeof f[0], &mbs, "%.0f");
    span_fmt(f[1], sizeof f[1], &cpu, "%.2f");
    span_fmt(f[2], sizeof f[2], &main_cpu, "%.2f");
    span_fmt(f[3], sizeof f[3], &io, "%.2f");
    span_fmt(f[4], sizeof f[4], &wall, "%.2f");
    span_fmt(f[5], sizeof f[5], &load, "%.1f");
    printf("| %s | %s | %s | %s | %s | %s | %s |%s\n", p->name, f[0], f[1], f[2], f[3], f[4], f[5],
           failed ? " FAILED in some rounds" : "");
}

/* ---- set-up -------------------------------------------------------------- */

static int build_source(struct source *s, size_t chunk) {
    size_t extra = chunk > VERIFY_PIECE ? chunk : VERIFY_PIECE;
    s->len = (PERIOD + extra + 2 * BLOCK - 1) / BLOCK * BLOCK; /* aligned_alloc wants a multiple */
    s->buf = aligned_alloc(BLOCK, s->len);
    if (!s->buf) return -1;
    uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64: cheap bytes that do not repeat within the period */
    for (size_t i = 0; i < PERIOD; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(s->buf + i, &x, 8);
    }
    memcpy(s->buf + PERIOD, s->buf, s->len - PERIOD); /* periodic past the end */
    return 0;
}

static const char *fs_name(const char *dir) {
    struct statfs sf;
    if (statfs(dir, &sf) != 0) return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    default: return "other";
    }
}

/* Whether the file system takes an aligned O_DIRECT write at all. */
static const char *probe_direct(const char *dir) {
    char file[4200];
    snprintf(file, sizeof file, "%s/probe-direct.dat", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0) return direct_refused(errno) ? "not supported (open refused)" : "open failed";
    void *b = aligned_alloc(BLOCK, BLOCK);
    const char *verdict = "supported";
    if (!b) verdict = "unknown (no memory)";
    else {
        memset(b, 0, BLOCK);
        if (pwrite(fd, b, BLOCK, 0) != (ssize_t)BLOCK) verdict = direct_refused(errno) ? "not supported (write refused)" : "write failed";
    }
    free(b);
    close(fd);
    unlink(file);
    return verdict;
}

static void usage(void) {
    fprintf(stderr, "usage: samsa-write-paths [--dir DIR] [--mib N] [--chunk BYTES] [--rounds N] [--wait SECONDS]\n"
                    "                         [--paths a,b,...] [--queue N] [--sync] [--break PATH]\n"
                    "paths:");
    for (int i = 0; i < NPATHS; i++) fprintf(stderr, " %s", PATHS[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

static long num_arg(const char *s, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) usage();
    return v;
}

static void parse_opts(int argc, char **argv, struct opts *o) {
    static const struct option lo[] = {{"dir", 1, 0, 'd'},   {"mib", 1, 0, 'm'},   {"chunk", 1, 0, 'c'},
                                       {"rounds", 1, 0, 'r'}, {"wait", 1, 0, 'w'},  {"paths", 1, 0, 'p'},
                                       {"queue", 1, 0, 'q'},  {"break", 1, 0, 'b'}, {"sync", 0, 0, 's'},
                                       {0, 0, 0, 0}};
    *o = (struct opts){.mib = 1024, .chunk = 1040000, .rounds = 3, .wait_s = 3, .queue = 4};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o->dir = optarg; break;
        case 'm': o->mib = num_arg(optarg, 1, 1 << 20); break;
        case 'c': o->chunk = (size_t)num_arg(optarg, 1, 64 << 20); break;
        case 'r': o->rounds = (int)num_arg(optarg, 1, MAX_ROUNDS); break;
        case 'w': o->wait_s = (double)num_arg(optarg, 0, 600); break;
        case 'p': o->paths = optarg; break;
        case 'q': o->queue = (int)num_arg(optarg, 1, MAX_QUEUE); break;
        case 'b': o->break_path = optarg; break;
        case 's': o->sync_all = 1; break;
        default: usage();
        }
    }
    if (optind != argc) usage();
}

/* Selected paths in table order; an unknown name is a usage error. */
static int select_paths(const char *list, int *sel) {
    int n = 0;
    for (int i = 0; i < NPATHS; i++) sel[i] = list == NULL;
    if (!list) return NPATHS;
    char *copy = strdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < NPATHS; i++)
            if (!strcmp(t, PATHS[i].name)) sel[i] = found = 1;
        if (!found) {
            fprintf(stderr, "unknown path %s\n", t);
            free(copy);
            usage();
        }
    }
    free(copy);
    for (int i = 0; i < NPATHS; i++) n += sel[i];
    return n;
}

static int make_workdir(const struct opts *o, char *out, size_t cap) {
    const char *base = o->dir ? o->dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(out, cap, "%s/samsa-write-paths-XXXXXX", base);
    if (!mkdtemp(out)) return fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno)), -1;
    return 0;
}

/* A run holds one file of MIB MiB at a time (the mmap path's full size at once). */
static int check_space(const char *dir, uint64_t total) {
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0) return fprintf(stderr, "statvfs %s: %s\n", dir, strerror(errno)), -1;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize, margin = 64u << 20;
    if (total + margin > avail) {
        fprintf(stderr, "refused: %llu MiB to write, %llu MiB free in %s\n", (unsigned long long)(total >> 20),
                (unsigned long long)(avail >> 20), dir);
        return -1;
    }
    return 0;
}

static void run_rounds(const struct opts *o, const int *sel, struct job *j, struct result (*res)[MAX_ROUNDS]) {
    for (int round = 1; round <= o->rounds; round++) {
        for (int i = 0; i < NPATHS; i++) {
            if (!sel[i]) continue;
            j->skip_last = o->break_path && !strcmp(o->break_path, PATHS[i].name);
            sleep_s(o->wait_s); /* see the header: no reuse of memory freed just before */
            run_one(&PATHS[i], j, &res[i][round - 1]);
            print_run(round, &PATHS[i], j, &res[i][round - 1]);
        }
    }
}

int main(int argc, char **argv) {
    struct opts o;
    parse_opts(argc, argv, &o);
    int sel[NPATHS];
    select_paths(o.paths, sel);
    char dir[4096], file[4200];
    if (make_workdir(&o, dir, sizeof dir) != 0) return 1;
    struct source src;
    uint64_t total = (uint64_t)o.mib << 20;
    int status = 1;
    if (check_space(dir, total) != 0 || build_source(&src, o.chunk) != 0) goto out;
    snprintf(file, sizeof file, "%s/write-path.dat", dir);
    double load[3] = {0};
    getloadavg(load, 3);
    printf("dir=%s fs=%s o_direct=%s mib=%ld chunk=%zu rounds=%d wait_s=%.0f queue=%d sync=%d cpus=%ld load=%.2f,%.2f,%.2f\n",
           dir, fs_name(dir), probe_direct(dir), o.mib, o.chunk, o.rounds, o.wait_s, o.queue, o.sync_all,
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
    struct job j = {.file = file, .total = total, .chunk = o.chunk, .src = &src, .queue = o.queue, .sync_all = o.sync_all};
    static struct result res[NPATHS][MAX_ROUNDS];
    run_rounds(&o, sel, &j, res);
    printf("\n| path | MB/s | CPU-ms/MB (process) | main thread CPU-ms/MB | I/O thread CPU-ms/MB | wall s | load avg (1 min) |\n"
           "|---|---|---|---|---|---|---|\n");
    status = 0;
    for (int i = 0; i < NPATHS; i++) {
        if (!sel[i]) continue;
        print_row(&PATHS[i], &j, res[i], o.rounds);
        for (int r = 0; r < o.rounds; r++)
            if (res[i][r].supported && !res[i][r].ok) status = 1;
    }
    free(src.buf);
out:
    rmdir(dir);
    return status;
}
