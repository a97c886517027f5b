/* write_pool.c - a request's appends written on several threads at once
 * (write_pool.h). One mutex guards the run: a run has a handful of jobs
 * (writes, validations) of up to a MB each, so claiming them is nothing
 * next to the work. */
#include "storage/write_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define MAX_HELPERS 64

struct wpool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a run has writes to claim, or stop */
    pthread_cond_t done; /* the run's last write finished */
    int helpers;         /* at most this many threads */
    int started;
    pthread_t threads[MAX_HELPERS];
    /* the current run, under mu: fn(ctx, i) for i in [0, n) */
    void (*fn)(void *ctx, int i);
    void *ctx;
    int n, next, finished;
    unsigned run_id;
    bool stop;
};

/* Claims and runs jobs of the current run until none is left; called
 * with mu held, returns with it held. */
static void drain(wpool *p) {
    while (p->next < p->n) {
        int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, i);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->n) pthread_cond_signal(&p->done);
    }
}

static void *helper_main(void *arg) {
    wpool *p = arg;
    pthread_mutex_lock(&p->mu);
    unsigned seen = p->run_id;
    for (;;) {
        while (!p->stop && p->run_id == seen) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        seen = p->run_id;
        drain(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

wpool *wpool_new(int helpers) {
    wpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->helpers = helpers < 1 ? 1 : helpers > MAX_HELPERS ? MAX_HELPERS : helpers;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    return p;
}

void wpool_free(wpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Starts helpers up to `want` (at most the pool's size); those that cannot
 * be started are simply not there, and the caller writes their share. */
static void start_helpers(wpool *p, int want) {
    if (want > p->helpers) want = p->helpers;
    while (p->started < want) {
        pthread_t t;
        if (pthread_create(&t, NULL, helper_main, p) != 0) return;
        char name[16] = "append-writer-N"; /* within 15 characters (top -H, ps -L) */
        name[14] = (char)('0' + p->started % 10);
        pthread_setname_np(t, name);
        p->threads[p->started++] = t;
    }
}

void wpool_run_each(wpool *p, void (*fn)(void *ctx, int i), void *ctx, int n) {
    if (!p || n < 2) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    start_helpers(p, n - 1);
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->next = 0;
    p->finished = 0;
    p->run_id++;
    pthread_cond_broadcast(&p->work);
    drain(p);
    while (p->finished < p->n) pthread_cond_wait(&p->done, &p->mu);
    p->fn = NULL;
    p->ctx = NULL;
    p->n = p->next = p->finished = 0;
    pthread_mutex_unlock(&p->mu);
}

static void run_write(void *ctx, int i) { plog_write_run(((plog_write *const *)ctx)[i]); }

void wpool_run(wpool *p, plog_write *const *w, int n, size_t min_parallel) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += w[i]->len;
    if (!p || n < 2 || total < min_parallel) {
        for (int i = 0; i < n; i++) plog_write_run(w[i]);
        return;
    }
    wpool_run_each(p, run_write, (void *)w, n);
}

int wpool_threads(const wpool *p) { return p ? p->started : 0; }
