/* syncer.c - background fsync of new partition directories (see syncer.h).
 *
 * One mutex-protected FIFO of directory paths; the worker takes the whole
 * queue at once, syncs every directory in it, then each distinct parent
 * once, and only then publishes the last ticket it covered. */
#include "storage/syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/checkpoint.h"
#include "storage/fileio.h"

typedef struct job {
    char *dir;
    uint64_t ticket;
    struct job *next;
} job;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t worker;
static job *queue_head, *queue_tail;
static uint64_t next_ticket = 1;   /* under mu */
static bool running, stopping;      /* running: engine thread only; stopping: under mu */
static atomic_uint_least64_t synced_upto;
static atomic_bool failed;

typedef int (*open_fn)(const char *path, int flags, mode_t mode);
typedef int (*fsync_fn)(int fd);
typedef int (*close_fn)(int fd);

typedef struct sys_calls {
    open_fn open;
    fsync_fn fsync;
    close_fn close;
} sys_calls;

static int real_open(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }
static const sys_calls real_calls = {real_open, fsync, close};

/* fsync one path; a missing file is fine when may_be_absent. */
static int sync_path(const sys_calls *sc, const char *path, int flags, bool may_be_absent) {
    int fd = sc->open(path, flags | O_CLOEXEC, 0);
    if (fd < 0) return may_be_absent && errno == ENOENT ? 0 : -1;
    int rc = sc->fsync(fd);
    int saved = errno;
    sc->close(fd);
    errno = saved;
    return rc;
}

/* The partition's own files and directory (not its parent). */
static int sync_partition(const sys_calls *sc, const char *dir) {
    char path[PATH_MAX];
    static const char *const files[] = {CKPT_PARTITION_METADATA_FILE, CKPT_LEADER_EPOCH_FILE};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= (int)sizeof path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (sync_path(sc, path, O_RDONLY, true) != 0) return -1;
    }
    return sync_path(sc, dir, O_RDONLY | O_DIRECTORY, false);
}

/* "<parent>" of dir into buf. */
static void parent_of(const char *dir, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", dir);
    char *slash = strrchr(buf, '/');
    if (!slash) snprintf(buf, cap, ".");
    else if (slash == buf) slash[1] = '\0';
    else *slash = '\0';
}

static void *worker_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!queue_head && !stopping) pthread_cond_wait(&wake, &mu);
        job *batch = queue_head;
        queue_head = queue_tail = NULL;
        bool stop = stopping;
        pthread_mutex_unlock(&mu);
        if (!batch) {
            if (stop) break;
            continue;
        }
        /* A directory that vanished meanwhile (topic deleted) needs nothing. */
        bool ok = true;
        uint64_t last = 0;
        char parent[PATH_MAX] = "", p[PATH_MAX];
        for (job *j = batch; j; j = j->next) {
            if (sync_partition(&real_calls, j->dir) != 0 && errno != ENOENT) ok = false;
            parent_of(j->dir, p, sizeof p);
            if (strcmp(p, parent) != 0) {
                if (parent[0] && sync_path(&real_calls, parent, O_RDONLY | O_DIRECTORY, true) != 0) ok = false;
                memcpy(parent, p, sizeof parent);
            }
            last = j->ticket;
        }
        if (parent[0] && sync_path(&real_calls, parent, O_RDONLY | O_DIRECTORY, true) != 0) ok = false;
        if (!ok) atomic_store(&failed, true);
        atomic_store(&synced_upto, last);
        while (batch) {
            job *next = batch->next;
            free(batch->dir);
            free(batch);
            batch = next;
        }
    }
    return NULL;
}

int syncer_start(void) {
    if (running) return 0;
    stopping = false;
    if (pthread_create(&worker, NULL, worker_main, NULL) != 0) return -1;
    running = true;
    return 0;
}

void syncer_stop(void) {
    if (!running) return;
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    pthread_join(worker, NULL);
    running = false;
}

int syncer_sync_now(const char *dir) {
    /* The engine's thread: through storage_fio, so tests can inject faults. */
    sys_calls sc = {storage_fio.open, storage_fio.fsync, storage_fio.close};
    if (sync_partition(&sc, dir) != 0) return -1;
    char parent[PATH_MAX];
    parent_of(dir, parent, sizeof parent);
    return sync_path(&sc, parent, O_RDONLY | O_DIRECTORY, false);
}

uint64_t syncer_submit(const char *dir) {
    job *j = running ? malloc(sizeof *j) : NULL;
    if (j && !(j->dir = strdup(dir))) {
        free(j);
        j = NULL;
    }
    if (!j) /* a failure shows again at the log's first flush, which retries */
        return syncer_sync_now(dir) == 0 ? 0 : UINT64_MAX;
    j->next = NULL;
    pthread_mutex_lock(&mu);
    uint64_t ticket = j->ticket = next_ticket++;
    if (queue_tail) queue_tail->next = j;
    else queue_head = j;
    queue_tail = j;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu); /* j belongs to the worker from here */
    return ticket;
}

bool syncer_done(uint64_t ticket) {
    if (ticket == 0) return true;
    return !atomic_load(&failed) && atomic_load(&synced_upto) >= ticket;
}
