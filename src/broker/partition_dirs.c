/* partition_dirs.c - partition directories made and removed off the event loop (see partition_dirs.h).
 *
 * Two mutex-protected FIFOs: jobs to do (taken by the worker one at a time)
 * and directories made (taken by the loop). The worker writes the eventfd
 * after each directory it makes, so the loop opens partitions while later
 * ones are still being made. */
#include "broker/partition_dirs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "storage/log.h"
#include "util/log.h"

#define COMPONENT "kafka.log.LogManager"

/* Opening a made partition holds the loop 50-150 us, more when the disk is
 * busy: one wake opens partitions for at most this long (at least one), and
 * the eventfd is written again for the rest, so the other clients' requests
 * wait at most about this long between two wakes. */
#define DELIVER_BUDGET_NS (500 * 1000)

/* The worker's nice value, relative to the loop's 0: at 10 it weighs about
 * a tenth of the loop in the scheduler, so the loop gets a core back sooner
 * when it wakes and the worker yields most of the CPU while both want it. */
#define PDIRS_NICE 10

typedef enum { JOB_MAKE, JOB_REMOVE, JOB_RETIRE } job_kind;

typedef struct dir_job {
    char *dir;
    job_kind kind;
    int32_t first_epoch; /* make: plog_make_dir's */
    pdir_made made;
    struct dir_job *next;
} dir_job;

typedef struct job_fifo {
    dir_job *head, *tail;
} job_fifo;

struct pdirs {
    kloop *loop;
    pdir_made_fn fn;
    void *ctx;
    int efd;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work;   /* a job was queued, or stopping */
    pthread_cond_t made;   /* a directory was made */
    job_fifo todo, done;   /* under mu */
    int unmade;            /* make jobs queued and not yet made (in todo or being made); under mu */
    bool stopping;         /* under mu */
};

static void fifo_push(job_fifo *f, dir_job *j) {
    j->next = NULL;
    if (f->tail) f->tail->next = j;
    else f->head = j;
    f->tail = j;
}

static dir_job *fifo_pop(job_fifo *f) {
    dir_job *j = f->head;
    if (j && !(f->head = j->next)) f->tail = NULL;
    return j;
}

static void job_free(dir_job *j) {
    free(j->dir);
    free(j);
}

/* A retired directory is renamed even at shutdown (its name must be free at
 * the next start); removals then wait for the next start. Failures of the
 * removal: the next start tries again. */
static void retire_or_remove(const dir_job *j, bool stopping) {
    char gone[PATH_MAX];
    const char *doomed = j->dir;
    if (j->kind == JOB_RETIRE) {
        if (plog_retire_dir(j->dir, gone, sizeof gone) == 0) {
            doomed = gone;
        } else if (errno == ENOENT) {
            return;
        } else {
            log_warn(COMPONENT, "Could not rename the deleted log %s (%s): removing it in place", j->dir,
                     strerror(errno));
            stopping = false; /* its name must not outlive the broker */
        }
    }
    if (!stopping) plog_remove_dir(doomed);
}

static void *worker_main(void *arg) {
    pdirs *w = arg;
    /* Below the request loop: ext4's inode allocation made this thread
     * CPU-bound for 1 s while it made 200 partitions, and at equal priority
     * the loop then waited up to 5 ms for a core after each wake-up (perf
     * sched: 1 s of scheduling delay, a producer's p99 3-4 ms). */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), PDIRS_NICE); /* if refused, it runs as before */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        dir_job *j = fifo_pop(&w->todo);
        if (!j) {
            if (w->stopping) break;
            pthread_cond_wait(&w->work, &w->mu);
            continue;
        }
        if (j->kind != JOB_MAKE) {
            bool skip = w->stopping; /* shutting down: the next start removes it */
            pthread_mutex_unlock(&w->mu);
            retire_or_remove(j, skip);
            job_free(j);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        int rc = plog_make_dir(j->dir, j->made.topic_id.b, j->first_epoch);
        j->made.result = rc;
        j->made.err = rc < 0 ? errno : 0;
        pthread_mutex_lock(&w->mu);
        fifo_push(&w->done, j);
        w->unmade--;
        pthread_cond_broadcast(&w->made);
        uint64_t one = 1;
        ssize_t n = write(w->efd, &one, sizeof one); /* EAGAIN only when the count is huge: still readable */
        (void)n;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hands made directories to fn, oldest first, until none is left or, with
 * budget_ns > 0, that much time has passed. Loop thread. Returns whether
 * made ones are left. */
static bool deliver(pdirs *w, int64_t budget_ns) {
    int64_t until = budget_ns > 0 ? monotonic_ns() + budget_ns : 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        dir_job *j = fifo_pop(&w->done);
        pthread_mutex_unlock(&w->mu);
        if (!j) return false;
        w->fn(w->ctx, &j->made);
        job_free(j);
        if (until && monotonic_ns() >= until) break;
    }
    pthread_mutex_lock(&w->mu);
    bool left = w->done.head != NULL;
    pthread_mutex_unlock(&w->mu);
    return left;
}

static void on_wake(kloop *l, int fd, int events, void *arg) {
    (void)l;
    (void)events;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    if (deliver(arg, DELIVER_BUDGET_NS)) {
        uint64_t one = 1; /* the rest at the next turn, after the other clients' events */
        ssize_t wr = write(fd, &one, sizeof one);
        (void)wr;
    }
}

pdirs *pdirs_new(kloop *loop, pdir_made_fn fn, void *ctx) {
    pdirs *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    *w = (pdirs){.loop = loop, .fn = fn, .ctx = ctx, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->made, NULL);
    if (w->efd < 0 || loop_watch(loop, w->efd, LOOP_READ, on_wake, w) != 0) goto fail;
    int err = pthread_create(&w->worker, NULL, worker_main, w);
    if (err != 0) {
        loop_unwatch(loop, w->efd);
        errno = err;
        goto fail;
    }
    pthread_setname_np(w->worker, "partition-dirs");
    return w;
fail:;
    int saved = errno;
    if (w->efd >= 0) close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->made);
    free(w);
    errno = saved;
    return NULL;
}

static int submit(pdirs *w, const char *dir, job_kind kind, const kuuid *topic_id, int32_t partition,
                  int32_t first_epoch) {
    dir_job *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(dir))) {
        free(j);
        errno = ENOMEM;
        return -1;
    }
    j->kind = kind;
    j->first_epoch = first_epoch;
    j->made.first_epoch = first_epoch;
    if (topic_id) j->made.topic_id = *topic_id;
    j->made.partition = partition;
    pthread_mutex_lock(&w->mu);
    fifo_push(&w->todo, j);
    if (kind == JOB_MAKE) w->unmade++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int pdirs_make(pdirs *w, const char *dir, const kuuid *topic_id, int32_t partition, int32_t first_epoch) {
    return submit(w, dir, JOB_MAKE, topic_id, partition, first_epoch);
}

int pdirs_remove(pdirs *w, const char *dir) { return submit(w, dir, JOB_REMOVE, NULL, -1, -1); }

int pdirs_retire(pdirs *w, const char *dir) { return submit(w, dir, JOB_RETIRE, NULL, -1, -1); }

void pdirs_drain(pdirs *w) {
    pthread_mutex_lock(&w->mu);
    while (w->unmade > 0) pthread_cond_wait(&w->made, &w->mu);
    pthread_mutex_unlock(&w->mu);
    deliver(w, 0);
}

void pdirs_free(pdirs *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true; /* the worker makes and retires what is queued, skips removals, then returns */
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->worker, NULL);
    for (dir_job *j = w->done.head, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    loop_unwatch(w->loop, w->efd);
    close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->made);
    free(w);
}
