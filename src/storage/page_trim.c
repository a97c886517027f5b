/* page_trim.c - write back and drop log ranges off the event loop (see page_trim.h).
 *
 * A bounded ring of {duplicated fd, range} under one mutex, shared by every
 * log; the worker takes one range at a time. The ring holds 256 ranges (at
 * most 8 MiB each: 2 GiB of appends ahead of the disk); past that, ranges
 * are skipped and their pages stay cached, as without the window. */
#include "storage/page_trim.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define RING 256

typedef struct range {
    int fd;
    int64_t off, len;
} range;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t worker;
static range ring[RING]; /* under mu */
static unsigned head, count;
static bool running, stopping; /* running: the starting thread's; stopping: under mu */
static atomic_uint_least64_t trimmed;

static void trim(const range *r) {
    /* Dirty pages cannot be dropped: write them back first and wait. The
     * drop then runs from the start of the file: the page cache holds large
     * folios (up to 2 MiB on ext4), and one that reaches into the range
     * before it is dropped only by a range that covers it whole. Pages
     * already dropped cost a lookup each. */
    if (sync_file_range(r->fd, r->off, r->len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) == 0 &&
        posix_fadvise(r->fd, 0, r->off + r->len, POSIX_FADV_DONTNEED) == 0)
        atomic_fetch_add_explicit(&trimmed, (uint64_t)r->len, memory_order_relaxed);
}

static void *run(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!count && !stopping) pthread_cond_wait(&wake, &mu);
        if (stopping) break;
        range r = ring[head];
        head = (head + 1) % RING;
        count--;
        pthread_mutex_unlock(&mu);
        trim(&r);
        close(r.fd);
        pthread_mutex_lock(&mu);
    }
    while (count) { /* stopping: the rest stay cached */
        close(ring[head].fd);
        head = (head + 1) % RING;
        count--;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int ptrim_start(void) {
    if (running) return 0;
    stopping = false;
    /* The worker takes no signals: the broker reads its own through signalfd. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&worker, NULL, run, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) return -1;
    pthread_setname_np(worker, "page-trim");
    running = true;
    return 0;
}

void ptrim_stop(void) {
    if (!running) return;
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    pthread_join(worker, NULL);
    running = false;
}

void ptrim_submit(int fd, int64_t off, int64_t len) {
    if (fd < 0 || off < 0 || len <= 0) return;
    if (!running) {
        trim(&(range){fd, off, len});
        return;
    }
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return;
    pthread_mutex_lock(&mu);
    bool queued = count < RING && !stopping;
    if (queued) {
        ring[(head + count) % RING] = (range){dup_fd, off, len};
        count++;
        pthread_cond_signal(&wake);
    }
    pthread_mutex_unlock(&mu);
    if (!queued) close(dup_fd);
}

uint64_t ptrim_bytes_trimmed(void) { return atomic_load_explicit(&trimmed, memory_order_relaxed); }
