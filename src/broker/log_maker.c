/* log_maker.c - new partitions' directories made off the event loop (see log_maker.h).
 *
 * Two mutex-protected FIFOs: jobs to make (taken by the worker one at a
 * time) and jobs made (taken whole by the loop). The worker writes the
 * eventfd after each job, so the loop opens partitions while later ones are
 * still being made. */
#include "broker/log_maker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/log.h"

typedef struct make_job {
    char *dir;
    log_made made;
    struct make_job *next;
} make_job;

typedef struct job_fifo {
    make_job *head, *tail;
} job_fifo;

struct log_maker {
    kloop *loop;
    log_made_fn fn;
    void *ctx;
    int efd;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work;   /* a job was queued, or stopping */
    pthread_cond_t made;   /* a job was made */
    job_fifo todo, done;   /* under mu */
    int unmade;            /* queued and not yet made (in todo or being made); under mu */
    bool stopping;         /* under mu */
};

static void fifo_push(job_fifo *f, make_job *j) {
    j->next = NULL;
    if (f->tail) f->tail->next = j;
    else f->head = j;
    f->tail = j;
}

static make_job *fifo_pop(job_fifo *f) {
    make_job *j = f->head;
    if (j && !(f->head = j->next)) f->tail = NULL;
    return j;
}

static void *worker_main(void *arg) {
    log_maker *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        make_job *j = fifo_pop(&m->todo);
        if (!j) {
            if (m->stopping) break;
            pthread_cond_wait(&m->work, &m->mu);
            continue;
        }
        pthread_mutex_unlock(&m->mu);
        int rc = plog_make_dir(j->dir, j->made.topic_id.b);
        j->made.result = rc;
        j->made.err = rc < 0 ? errno : 0;
        pthread_mutex_lock(&m->mu);
        fifo_push(&m->done, j);
        m->unmade--;
        pthread_cond_broadcast(&m->made);
        uint64_t one = 1;
        ssize_t w = write(m->efd, &one, sizeof one); /* EAGAIN only when the count is huge: still readable */
        (void)w;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* Opening a made partition holds the loop 50-100 us: one wake opens at most
 * this many, and the eventfd is written again for the rest. */
#define DELIVER_PER_WAKE 16

/* Hands up to max made jobs (< 0: all) to fn, oldest first, and frees them.
 * Loop thread. Returns whether made jobs are left. */
static bool deliver(log_maker *m, int max) {
    for (int n = 0; max < 0 || n < max; n++) {
        pthread_mutex_lock(&m->mu);
        make_job *j = fifo_pop(&m->done);
        pthread_mutex_unlock(&m->mu);
        if (!j) return false;
        m->fn(m->ctx, &j->made);
        free(j->dir);
        free(j);
    }
    pthread_mutex_lock(&m->mu);
    bool left = m->done.head != NULL;
    pthread_mutex_unlock(&m->mu);
    return left;
}

static void on_wake(kloop *l, int fd, int events, void *arg) {
    (void)l;
    (void)events;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    if (deliver(arg, DELIVER_PER_WAKE)) {
        uint64_t one = 1; /* the rest at the next turn, after the other clients' events */
        ssize_t w = write(fd, &one, sizeof one);
        (void)w;
    }
}

log_maker *log_maker_new(kloop *loop, log_made_fn fn, void *ctx) {
    log_maker *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    *m = (log_maker){.loop = loop, .fn = fn, .ctx = ctx, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->work, NULL);
    pthread_cond_init(&m->made, NULL);
    if (m->efd < 0 || loop_watch(loop, m->efd, LOOP_READ, on_wake, m) != 0) goto fail;
    int err = pthread_create(&m->worker, NULL, worker_main, m);
    if (err != 0) {
        loop_unwatch(loop, m->efd);
        errno = err;
        goto fail;
    }
    pthread_setname_np(m->worker, "log-maker");
    return m;
fail:;
    int saved = errno;
    if (m->efd >= 0) close(m->efd);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->work);
    pthread_cond_destroy(&m->made);
    free(m);
    errno = saved;
    return NULL;
}

int log_maker_submit(log_maker *m, const char *dir, const kuuid *topic_id, int32_t partition) {
    make_job *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(dir))) {
        free(j);
        errno = ENOMEM;
        return -1;
    }
    j->made.topic_id = *topic_id;
    j->made.partition = partition;
    pthread_mutex_lock(&m->mu);
    fifo_push(&m->todo, j);
    m->unmade++;
    pthread_cond_signal(&m->work);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

void log_maker_drain(log_maker *m) {
    pthread_mutex_lock(&m->mu);
    while (m->unmade > 0) pthread_cond_wait(&m->made, &m->mu);
    pthread_mutex_unlock(&m->mu);
    deliver(m, -1);
}

void log_maker_free(log_maker *m) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->stopping = true; /* the worker makes what is queued, then returns */
    pthread_cond_signal(&m->work);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->worker, NULL);
    for (make_job *j = m->done.head, *next; j; j = next) {
        next = j->next;
        free(j->dir);
        free(j);
    }
    loop_unwatch(m->loop, m->efd);
    close(m->efd);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->work);
    pthread_cond_destroy(&m->made);
    free(m);
}
