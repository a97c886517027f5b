/* log_cleaner.c - the broker's log cleaner threads and their manager (see
 * log_cleaner.h). Kafka 3.6.1: LogCleaner.CleanerThread, LogCleanerManager. */
#include "cleaner/log_cleaner.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/config_internal.h"
#include "broker/partition_txn.h"
#include "broker/producer_state.h"
#include "broker/topics.h"
#include "net/loop.h"
#include "storage/cleaner.h"
#include "storage/log.h"
#include "storage/offset_map.h"
#include "util/log.h"

#define COMPONENT "kafka.log.LogCleaner"
#define MAX_THREADS 16
#define MIN_BACKOFF_MS 10

/* One clean handed to a worker. Everything the worker reads is owned here,
 * copied on the loop; `log` is an identity only, never used off the loop. */
typedef struct lc_job {
    char dir[PATH_MAX], log_dir[PATH_MAX], topic[256];
    int32_t partition;
    plog *log;
    int64_t end; /* first uncleanable offset: the guard set on the plog */
    cleaner_config cfg;
    cleaner_input in;
    aborted_list aborted;
    cleaner_producer *producers;
    int64_t map_bytes;
    double load_factor;
    atomic_bool abort; /* set by the loop once the log was deleted or truncated under it */
    /* result */
    int rc;
    cleaner_stats st;
    char err[256];
    int64_t started_ms;
} lc_job;

typedef enum { W_IDLE, W_BUSY, W_FINISHED } worker_state;

typedef struct lc_worker {
    int id;
    pthread_t thread;
    bool started;         /* a thread runs (or ran, not joined yet) in this slot */
    worker_state state;   /* guarded by mu */
    bool retire;          /* guarded by mu: exit once idle (log.cleaner.threads lowered) */
    bool exited;          /* guarded by mu: the thread returned; the loop joins it */
    lc_job *job;          /* set with W_BUSY by the loop */
    /* swap handoff: the worker fills these and waits for swap_done */
    bool swap_pending, swap_done;
    int64_t swap_base;
    const int64_t *swap_old;
    int swap_n;
    int swap_rc;
    /* worker-owned */
    offset_map map;
    bool map_ok;
    int64_t map_bytes;
    double map_load;
    /* throttle */
    int64_t window_start_ns, window_bytes;
} lc_worker;

typedef struct lc {
    broker *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    int efd;
    lc_worker w[MAX_THREADS];
    int nworkers; /* slots in use: the wanted threads, then retiring ones */
    int threads;  /* log.cleaner.threads in effect (workers 0..threads-1) */
    _Atomic double max_bytes_per_sec; /* log.cleaner.io.max.bytes.per.second, read by the workers */
    loop_timer_id timer;
    bool timer_set;
    /* Kafka's uncleanable partitions: a clean failed (a malformed batch, an
     * I/O error); not tried again while the same log is open. Loop-owned. */
    struct uncleanable {
        plog *log;
        char dir[PATH_MAX];
    } *uncleanable;
    int nuncleanable;
} lc;

static lc *g_lc;

/* ---- broker configs (re-read every pass: dynamic ones apply live) ---- */

static double broker_double(broker *b, const char *name, double dflt) {
    karena a;
    karena_init(&a, 0);
    const char *v = broker_config_value(b, name, &a);
    double x;
    if (!v || !config_parse_double(v, &x)) x = dflt;
    karena_free(&a);
    return x;
}

static bool broker_bool(broker *b, const char *name, bool dflt) {
    karena a;
    karena_init(&a, 0);
    const char *v = broker_config_value(b, name, &a);
    bool x;
    if (!v || !config_parse_bool(v, &x)) x = dflt;
    karena_free(&a);
    return x;
}

/* ---- the worker thread ---- */

static void wake_loop(lc *c) {
    uint64_t one = 1;
    ssize_t r = write(c->efd, &one, sizeof one);
    (void)r; /* a full counter still wakes the loop */
}

/* log.cleaner.io.max.bytes.per.second (Kafka's Throttler), and stopping. */
static int on_progress(void *ctx, int64_t bytes) {
    lc_worker *w = ctx;
    lc *c = g_lc;
    bool stop;
    pthread_mutex_lock(&c->mu);
    stop = c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (stop || atomic_load(&w->job->abort)) return 1;
    double rate = atomic_load(&c->max_bytes_per_sec); /* a change applies mid-clean */
    if (rate <= 0 || rate >= 1e300) return 0;
    int64_t now = monotonic_ns();
    w->window_bytes += bytes;
    double elapsed_s = (double)(now - w->window_start_ns) / 1e9;
    double needed_s = (double)w->window_bytes / rate;
    if (needed_s > elapsed_s) {
        double sleep_s = needed_s - elapsed_s;
        if (sleep_s > 1.0) sleep_s = 1.0;
        struct timespec ts = {(time_t)sleep_s, (long)((sleep_s - (double)(time_t)sleep_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    if (elapsed_s > 1.0) { /* a new window every second */
        w->window_start_ns = monotonic_ns();
        w->window_bytes = 0;
    }
    return 0;
}

/* The swap runs on the loop (on_wake): post it and wait. */
static int on_swap(void *ctx, const cleaner_input *in, int64_t base, const int64_t *old, int nold) {
    (void)in;
    lc_worker *w = ctx;
    lc *c = g_lc;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        return CLEANER_ABORTED;
    }
    w->swap_base = base;
    w->swap_old = old;
    w->swap_n = nold;
    w->swap_done = false;
    w->swap_pending = true;
    wake_loop(c);
    while (!w->swap_done) pthread_cond_wait(&c->cv, &c->mu);
    int rc = w->swap_rc;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void run_job(lc_worker *w, lc_job *j) {
    if (!w->map_ok || w->map_bytes != j->map_bytes || w->map_load != j->load_factor) {
        if (w->map_ok) omap_free(&w->map);
        w->map_ok = omap_init(&w->map, j->map_bytes, j->load_factor) == 0;
        w->map_bytes = j->map_bytes;
        w->map_load = j->load_factor;
        if (!w->map_ok) {
            j->rc = -1;
            snprintf(j->err, sizeof j->err, "offset map of %" PRId64 " bytes: %s", j->map_bytes, strerror(errno));
            return;
        }
    }
    w->window_start_ns = monotonic_ns();
    w->window_bytes = 0;
    j->in.progress = on_progress;
    j->in.progress_ctx = w;
    j->in.swap = on_swap;
    j->in.swap_ctx = w;
    j->rc = cleaner_clean(&j->cfg, &j->in, &w->map, &j->st, j->err, sizeof j->err);
    if (j->rc == -1 && !j->err[0]) snprintf(j->err, sizeof j->err, "%s", strerror(errno));
}

static void *worker_main(void *arg) {
    lc_worker *w = arg;
    lc *c = g_lc;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stopping && w->state != W_BUSY && !(w->retire && w->state == W_IDLE))
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stopping || w->state != W_BUSY) break; /* stopping, or retired while idle */
        lc_job *j = w->job;
        pthread_mutex_unlock(&c->mu);
        run_job(w, j);
        pthread_mutex_lock(&c->mu);
        w->state = W_FINISHED;
        wake_loop(c);
    }
    w->exited = true;
    wake_loop(c);
    pthread_mutex_unlock(&c->mu);
    if (w->map_ok) omap_free(&w->map);
    w->map_ok = false;
    return NULL;
}

/* ---- the loop side ---- */

static partition *find_partition(broker *b, const lc_job *j) {
    topic_rt *t = broker_topic(b, kstr_from(j->topic));
    if (!t || j->partition < 0 || j->partition >= t->nparts) return NULL;
    partition *p = t->parts[j->partition];
    return p && p->log == j->log ? p : NULL;
}

static void log_dir_of(const char *dir, char *out, size_t cap) {
    snprintf(out, cap, "%s", dir);
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = 0;
    else snprintf(out, cap, ".");
}

/* A worker's group is cleaned: swap it in, files and the live log. Called
 * with mu held (the worker waits). */
static int do_swap(lc *c, lc_worker *w) {
    lc_job *j = w->job;
    partition *p = find_partition(c->b, j);
    if (!p || !plog_cleaning_ok(p->log, j->end)) return CLEANER_ABORTED;
    plog_forget_indexes(p->log, w->swap_old, w->swap_n);
    int rc = cleaner_swap_group(&j->in, w->swap_base, w->swap_old, w->swap_n);
    if (rc != 0) {
        /* the directory was completed or undone on the spot; the open log may
         * no longer match it either way: it fails until reopened (Kafka takes
         * the log dir offline) */
        log_error(COMPONENT, "Swapping in the cleaned segment %" PRId64 " of %s failed: %s", w->swap_base, j->dir,
                  strerror(errno));
        plog_mark_failed(p->log);
        return rc;
    }
    if (plog_replace_segments(p->log, w->swap_base, w->swap_old, w->swap_n) != 0) {
        log_error(COMPONENT, "Opening the cleaned segment %" PRId64 " of %s failed: %s", w->swap_base, j->dir,
                  strerror(errno));
        return -1;
    }
    return 0;
}

static void job_free(lc_job *j) {
    if (!j) return;
    aborted_list_free(&j->aborted);
    free(j->producers);
    free(j);
}

/* Kafka's doneCleaning: the checkpoint moves to the clean's end. */
static void finish_job(lc *c, lc_worker *w) {
    lc_job *j = w->job;
    partition *p = find_partition(c->b, j);
    bool live = p && plog_cleaning_ok(p->log, j->end);
    if (p) plog_cleaning_done(p->log);
    if (j->rc == 0 && live) {
        if (cleaner_checkpoint_update(j->log_dir, j->topic, j->partition, j->st.end_offset) != 0)
            log_warn(COMPONENT, "Could not update %s in %s: %s", CLEANER_CHECKPOINT_FILE, j->log_dir,
                     strerror(errno));
        double secs = (double)(monotonic_ms() - j->started_ms) / 1000.0;
        log_info(COMPONENT,
                 "[kafka-log-cleaner-thread-%d]: Log cleaner thread %d cleaned log %s-%d (dirty section = [%" PRId64
                 ", %" PRId64 "])\n\t%.1f MB of log processed in %.1f seconds, %" PRId64 " segments replaced, %d "
                 "written, %" PRId64 " of %" PRId64 " records retained, map %.1f%% full",
                 w->id, w->id, j->topic, j->partition, j->in.first_dirty_offset, j->st.end_offset,
                 (double)j->st.bytes_read / 1048576.0, secs, (int64_t)j->st.segments_replaced, j->st.groups,
                 j->st.records_retained, j->st.records_read, 100.0 * j->st.map_utilization);
    } else if (j->rc == CLEANER_ABORTED || !live) {
        log_info(COMPONENT, "[kafka-log-cleaner-thread-%d]: The cleaning for partition %s-%d is aborted", w->id,
                 j->topic, j->partition);
    } else {
        log_error(COMPONENT, "[kafka-log-cleaner-thread-%d]: Unexpected exception thrown when cleaning log %s-%d. "
                  "Marking its partition (%s-%d) as uncleanable: %s", w->id, j->topic, j->partition, j->topic,
                  j->partition, j->err);
        struct uncleanable *u = realloc(c->uncleanable, (size_t)(c->nuncleanable + 1) * sizeof *u);
        if (u) {
            c->uncleanable = u;
            u[c->nuncleanable].log = j->log;
            snprintf(u[c->nuncleanable].dir, sizeof u->dir, "%s", j->dir);
            c->nuncleanable++;
        }
    }
    job_free(j);
    w->job = NULL;
    w->state = W_IDLE;
    if (w->retire) pthread_cond_broadcast(&c->cv); /* it may exit now */
}

static void schedule_pass(lc *c, int64_t delay_ms);
static void reap_workers(lc *c);

static void on_wake(kloop *l, int fd, int events, void *arg) {
    (void)l;
    (void)events;
    lc *c = arg;
    uint64_t v;
    while (read(fd, &v, sizeof v) > 0) {}
    bool finished = false;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nworkers; i++) {
        lc_worker *w = &c->w[i];
        if (w->swap_pending) {
            w->swap_pending = false;
            w->swap_rc = do_swap(c, w);
            w->swap_done = true;
            pthread_cond_broadcast(&c->cv);
        }
        if (w->state == W_FINISHED) {
            finish_job(c, w);
            finished = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    reap_workers(c); /* a retired worker exited */
    if (finished) schedule_pass(c, 0);
}

/* ---- the number of threads (Kafka's LogCleaner.reconfigure) ---- */

static int wanted_threads(broker *b) {
    int64_t n = broker_config_i64(b, "log.cleaner.threads", 1);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* A worker that takes jobs: started, not retiring, not gone. */
static bool worker_usable(const lc *c, int i) {
    return i < c->threads && c->w[i].started && !c->w[i].exited;
}

/* Starts slot i's thread (the slot is free: never started, or joined). */
static int start_worker(lc *c, int i) {
    lc_worker *w = &c->w[i];
    memset(w, 0, sizeof *w);
    w->id = i;
    w->state = W_IDLE;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return -1;
    /* As Kafka's kafka-log-cleaner-thread-N, within 15 characters (top -H, ps -L). Named by the
     * creator, not the thread, so the name shows as soon as this returns. */
    char name[16];
    snprintf(name, sizeof name, "log-cleaner-%d", i % 100); /* i < MAX_THREADS */
    pthread_setname_np(w->thread, name);
    w->started = true;
    if (i >= c->nworkers) c->nworkers = i + 1;
    return 0;
}

/* Joins the workers that exited, and gives back the slots on top. */
static void reap_workers(lc *c) {
    for (int i = 0; i < c->nworkers; i++) {
        pthread_mutex_lock(&c->mu);
        bool gone = c->w[i].started && c->w[i].exited;
        pthread_mutex_unlock(&c->mu);
        if (gone) {
            pthread_join(c->w[i].thread, NULL);
            c->w[i].started = false;
        }
    }
    while (c->nworkers > c->threads && !c->w[c->nworkers - 1].started) c->nworkers--;
}

/* log.cleaner.threads changed live (kafka-configs --entity-type brokers):
 * Kafka restarts its cleaner threads with the new count, aborting the
 * cleans under way. Here the workers above the new count retire (their
 * clean is aborted, they exit once idle, the loop joins them) and missing
 * ones start; the others keep cleaning. Idempotent: run at every pass. */
static void resize_workers(lc *c) {
    int want = wanted_threads(c->b);
    if (want != c->threads)
        log_info(COMPONENT, "Reconfiguring the log cleaner: log.cleaner.threads %d -> %d", c->threads, want);
    c->threads = want;
    atomic_store(&c->max_bytes_per_sec,
                 broker_double(c->b, "log.cleaner.io.max.bytes.per.second", 1.7976931348623157e308));
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nworkers; i++) {
        lc_worker *w = &c->w[i];
        if (!w->started || w->exited) continue;
        bool retire = i >= c->threads;
        if (retire && !w->retire && w->job) atomic_store(&w->job->abort, true);
        w->retire = retire;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    reap_workers(c);
    for (int i = 0; i < c->threads; i++)
        if (!c->w[i].started && start_worker(c, i) != 0) {
            log_error(COMPONENT, "Cannot start log cleaner thread %d: %s", i, strerror(errno));
            break;
        }
}

/* ---- picking the filthiest log (grabFilthiestCompactedLog) ---- */

typedef struct candidate {
    partition *p;
    cleaner_decision d;
} candidate;

/* Marked uncleanable while this very log stays open (a reopened or
 * recreated log at the same address has another directory or was closed:
 * compared by both). */
static bool is_uncleanable(lc *c, const partition *p) {
    for (int i = 0; i < c->nuncleanable; i++)
        if (c->uncleanable[i].log == p->log && strcmp(c->uncleanable[i].dir, plog_dir(p->log)) == 0) return true;
    return false;
}

static bool being_cleaned(lc *c, const partition *p) {
    for (int i = 0; i < c->nworkers; i++)
        if (c->w[i].job && c->w[i].job->log == p->log) return true;
    return false;
}

static int load_checkpoint(const char *log_dir, ckpt_offsets *ck) {
    char err[128];
    if (cleaner_checkpoint_read(log_dir, ck, err, sizeof err) != 0) {
        log_warn(COMPONENT, "Could not read %s in %s: %s", CLEANER_CHECKPOINT_FILE, log_dir, err);
        memset(ck, 0, sizeof *ck);
        return -1;
    }
    return 0;
}

/* Fills the view for cleaner_decide; segs is malloc'd. */
static int make_view(partition *p, const topic_config *tc, int64_t checkpoint, cleaner_log_view *v) {
    plog *l = p->log;
    int n = plog_segment_count(l);
    cleaner_segment_info *segs = calloc((size_t)(n ? n : 1), sizeof *segs);
    if (!segs) return -1;
    for (int i = 0; i < n; i++) {
        int64_t rolling;
        plog_segment_info(l, i, &segs[i].base, &segs[i].size, &segs[i].largest_timestamp, &rolling);
        segs[i].first_batch_timestamp = rolling;
    }
    memset(v, 0, sizeof *v);
    v->segs = segs;
    v->nsegs = n;
    v->log_start_offset = plog_start_offset(l);
    v->log_end_offset = plog_end_offset(l);
    v->last_stable_offset = part_txn_lso(p);
    v->checkpoint_offset = checkpoint;
    v->min_compaction_lag_ms = tc->min_compaction_lag_ms;
    v->max_compaction_lag_ms = tc->max_compaction_lag_ms;
    v->min_cleanable_ratio = tc->min_cleanable_dirty_ratio;
    return 0;
}

static lc_job *make_job(lc *c, topic_rt *t, partition *p, const cleaner_decision *d) {
    broker *b = c->b;
    lc_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    atomic_init(&j->abort, false);
    snprintf(j->dir, sizeof j->dir, "%s", plog_dir(p->log));
    log_dir_of(j->dir, j->log_dir, sizeof j->log_dir);
    snprintf(j->topic, sizeof j->topic, "%s", t->name);
    j->partition = p->index;
    j->log = p->log;
    j->end = d->first_uncleanable_offset;
    cleaner_config_defaults(&j->cfg);
    j->cfg.segment_bytes = t->cfg.segment_bytes;
    j->cfg.max_index_bytes = t->cfg.segment_index_bytes;
    j->cfg.index_interval_bytes = t->cfg.index_interval_bytes;
    j->cfg.delete_retention_ms = t->cfg.delete_retention_ms;
    if (plog_collect_all_aborted_txns(p->log, &j->aborted) != 0) {
        job_free(j);
        return NULL;
    }
    int np = p->producers ? pstate_producer_count(p->producers) : 0;
    j->producers = calloc((size_t)(np ? np : 1), sizeof *j->producers);
    if (!j->producers) {
        job_free(j);
        return NULL;
    }
    int k = 0;
    for (int i = 0; i < np; i++) {
        pstate_info info;
        if (pstate_producer_at(p->producers, i, &info) != 0) continue;
        j->producers[k++] = (cleaner_producer){info.producer_id, info.last_data_offset, info.epoch};
    }
    int threads = c->threads;
    int64_t dedupe = broker_config_i64(b, "log.cleaner.dedupe.buffer.size", 134217728);
    j->map_bytes = dedupe / threads;
    if (j->map_bytes > INT32_MAX) j->map_bytes = INT32_MAX;
    j->load_factor = broker_double(b, "log.cleaner.io.buffer.load.factor", OMAP_DEFAULT_LOAD_FACTOR);
    j->in.dir = j->dir;
    j->in.first_dirty_offset = d->first_dirty_offset;
    j->in.first_uncleanable_offset = d->first_uncleanable_offset;
    j->in.aborted = j->aborted.v;
    j->in.naborted = j->aborted.n;
    j->in.producers = j->producers;
    j->in.nproducers = k;
    j->in.now_ms = wall_clock_ms();
    j->started_ms = monotonic_ms();
    return j;
}

/* One pass: every compacted log is looked at (checkpoint upkeep), idle
 * workers get the filthiest ones. */
static void pass(lc *c) {
    broker *b = c->b;
    resize_workers(c);
    int idle = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nworkers; i++) {
        lc_job *j = c->w[i].job;
        if (c->w[i].state == W_IDLE && worker_usable(c, i)) idle++;
        else if (j && c->w[i].state == W_BUSY) {
            /* abortAndPauseCleaning: stop reading what is gone */
            partition *p = find_partition(b, j);
            if (!p || !plog_cleaning_ok(p->log, j->end)) atomic_store(&j->abort, true);
        }
    }
    pthread_mutex_unlock(&c->mu);
    /* the checkpoint of the log dir last read (one file per log dir) */
    char ck_dir[PATH_MAX] = "";
    ckpt_offsets ck = {0};
    int n = broker_topic_count(b);
    topic_rt **ts = malloc(sizeof(*ts) * (size_t)(n ? n : 1));
    if (!ts) return;
    n = broker_topics_list(b, ts, n);
    candidate *cands = NULL;
    int ncands = 0, capcands = 0;
    int64_t now = wall_clock_ms();
    for (int i = 0; i < n; i++) {
        topic_rt *t = ts[i];
        if (!t->cfg.compact) continue;
        for (int pi = 0; pi < t->nparts; pi++) {
            partition *p = t->parts[pi];
            if (!p || !p->log || being_cleaned(c, p) || is_uncleanable(c, p)) continue;
            char log_dir[PATH_MAX];
            log_dir_of(plog_dir(p->log), log_dir, sizeof log_dir);
            if (strcmp(ck_dir, log_dir) != 0) {
                ckpt_offsets_free(&ck);
                load_checkpoint(log_dir, &ck);
                snprintf(ck_dir, sizeof ck_dir, "%s", log_dir);
            }
            int64_t checkpoint = ckpt_offsets_find(&ck, t->name, p->index);
            /* maybeTruncateCheckpoint */
            int64_t trunc = plog_take_truncation(p->log);
            if (checkpoint >= 0 && trunc < checkpoint) {
                checkpoint = trunc;
                cleaner_checkpoint_update(log_dir, t->name, p->index, trunc);
                ck_dir[0] = 0; /* re-read after a write */
            }
            cleaner_log_view v;
            if (make_view(p, &t->cfg, checkpoint, &v) != 0) continue;
            cleaner_decision d;
            if (v.nsegs >= 1) cleaner_decide(&v, now, &d);
            free((void *)v.segs);
            if (v.nsegs < 1) continue;
            if (d.force_checkpoint_update) {
                cleaner_checkpoint_update(log_dir, t->name, p->index, d.first_dirty_offset);
                ck_dir[0] = 0;
            }
            if (!d.should_clean || idle == 0 || d.first_uncleanable_offset <= d.first_dirty_offset) continue;
            if (ncands == capcands) {
                capcands = capcands ? capcands * 2 : 8;
                candidate *nc = realloc(cands, (size_t)capcands * sizeof *nc);
                if (!nc) break;
                cands = nc;
            }
            cands[ncands++] = (candidate){p, d};
        }
    }
    /* the filthiest first: a log past max.compaction.lag.ms, then by ratio */
    for (int assigned = 0; assigned < idle && ncands > 0; assigned++) {
        int best = 0;
        for (int k = 1; k < ncands; k++) {
            const cleaner_decision *x = &cands[k].d, *y = &cands[best].d;
            bool xnow = x->max_compaction_delay_ms > 0, ynow = y->max_compaction_delay_ms > 0;
            if (xnow != ynow ? xnow : x->cleanable_ratio > y->cleanable_ratio) best = k;
        }
        candidate cd = cands[best];
        cands[best] = cands[--ncands];
        lc_job *j = make_job(c, cd.p->topic, cd.p, &cd.d);
        if (!j) continue;
        plog_cleaning_begin(cd.p->log, j->end);
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < c->nworkers; i++)
            if (c->w[i].state == W_IDLE && worker_usable(c, i)) {
                c->w[i].job = j;
                c->w[i].state = W_BUSY;
                j = NULL;
                break;
            }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        if (j) { /* no idle worker after all */
            plog_cleaning_done(cd.p->log);
            job_free(j);
        }
    }
    /* Kafka's cleaner thread after each clean: deleteOldSegments on every
     * compacted log not being cleaned and not uncleanable
     * (LogCleanerManager.deletableLogs), so compact,delete logs keep their
     * time and size retention at the cleaner's pace */
    for (int i = 0; i < n; i++) {
        topic_rt *t = ts[i];
        if (!t->cfg.compact) continue;
        for (int pi = 0; pi < t->nparts; pi++) {
            partition *p = t->parts[pi];
            if (p && p->log && !being_cleaned(c, p) && !is_uncleanable(c, p)) part_txn_maintenance(p, now, true);
        }
    }
    ckpt_offsets_free(&ck);
    free(cands);
    free(ts);
}

static void on_timer(kloop *l, void *arg) {
    (void)l;
    lc *c = arg;
    c->timer_set = false;
    pass(c);
    schedule_pass(c, -1);
}

/* delay_ms < 0: log.cleaner.backoff.ms. */
static void schedule_pass(lc *c, int64_t delay_ms) {
    if (delay_ms < 0) {
        delay_ms = broker_config_i64(c->b, "log.cleaner.backoff.ms", 15000);
        if (delay_ms < MIN_BACKOFF_MS) delay_ms = MIN_BACKOFF_MS;
    }
    if (c->timer_set) loop_timer_cancel(c->b->loop, c->timer);
    c->timer = loop_timer_add(c->b->loop, delay_ms, on_timer, c);
    c->timer_set = true;
}

int log_cleaner_start(broker *b) {
    if (!broker_bool(b, "log.cleaner.enable", true)) return 0;
    lc *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->b = b;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->threads = wanted_threads(b);
    atomic_init(&c->max_bytes_per_sec,
                broker_double(b, "log.cleaner.io.max.bytes.per.second", 1.7976931348623157e308));
    if (c->efd < 0 || loop_watch(b->loop, c->efd, LOOP_READ, on_wake, c) != 0) {
        log_error(COMPONENT, "Cannot start the log cleaner: %s", strerror(errno));
        if (c->efd >= 0) close(c->efd);
        free(c);
        return -1;
    }
    g_lc = c;
    for (int i = 0; i < c->threads; i++)
        if (start_worker(c, i) != 0) {
            c->threads = i; /* the next pass tries again */
            break;
        }
    log_info(COMPONENT, "Starting the log cleaner (%d thread(s))", c->nworkers);
    schedule_pass(c, -1);
    return 0;
}

void log_cleaner_stop(void) {
    lc *c = g_lc;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    for (int i = 0; i < c->nworkers; i++)
        if (c->w[i].swap_pending) { /* the loop is gone: refuse */
            c->w[i].swap_pending = false;
            c->w[i].swap_rc = CLEANER_ABORTED;
            c->w[i].swap_done = true;
        }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nworkers; i++)
        if (c->w[i].started) pthread_join(c->w[i].thread, NULL);
    for (int i = 0; i < c->nworkers; i++)
        if (c->w[i].job) {
            partition *p = find_partition(c->b, c->w[i].job);
            if (p) plog_cleaning_done(p->log);
            job_free(c->w[i].job);
        }
    if (c->timer_set) loop_timer_cancel(c->b->loop, c->timer);
    loop_unwatch(c->b->loop, c->efd);
    close(c->efd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->uncleanable);
    g_lc = NULL;
    free(c);
}

void log_cleaner_forget(const char *partition_dir, const char *topic, int32_t partition) {
    lc *c = g_lc;
    for (int i = 0; c && i < c->nuncleanable;) /* a new partition of that name starts clean */
        if (strcmp(c->uncleanable[i].dir, partition_dir) == 0) c->uncleanable[i] = c->uncleanable[--c->nuncleanable];
        else i++;
    char log_dir[PATH_MAX];
    log_dir_of(partition_dir, log_dir, sizeof log_dir);
    ckpt_offsets ck;
    if (load_checkpoint(log_dir, &ck) != 0) return;
    bool present = ckpt_offsets_find(&ck, topic, partition) >= 0;
    ckpt_offsets_free(&ck);
    if (present && cleaner_checkpoint_update(log_dir, topic, partition, -1) != 0)
        log_warn(COMPONENT, "Could not update %s in %s: %s", CLEANER_CHECKPOINT_FILE, log_dir, strerror(errno));
}
