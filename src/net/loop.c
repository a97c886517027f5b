/* loop.c - epoll event loop with a timer heap (see loop.h). */
#include "net/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

typedef struct fd_watch {
    loop_fd_fn fn;
    void *arg;
    int events; /* 0 = not watched */
} fd_watch;

typedef struct timer {
    int64_t due_ns; /* monotonic nanoseconds: a timer never fires before its full delay */
    loop_timer_id id;
    loop_timer_fn fn;
    void *arg;
} timer;

struct kloop {
    int epfd;
    fd_watch *watches; /* indexed by fd */
    int nwatches;
    timer *heap;
    int nheap, capheap;
    loop_timer_id next_id;
    int64_t now_ms;
    bool stop;
    bool paused; /* loop_run_for's time is up */
    int64_t created_ns;
    int64_t idle_ns;   /* time spent waiting in epoll_wait (metrics, read from other threads: atomic) */
    loop_timer_fn pass_end; /* loop_set_pass_end */
    void *pass_end_arg;
};

int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kloop *loop_new(void) {
    kloop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->next_id = 1;
    l->now_ms = monotonic_ms();
    l->created_ns = monotonic_ns();
    return l;
}

void loop_free(kloop *l) {
    if (!l) return;
    close(l->epfd);
    free(l->watches);
    free(l->heap);
    free(l);
}

int loop_watch(kloop *l, int fd, int events, loop_fd_fn fn, void *arg) {
    if (fd < 0) return -1;
    if (fd >= l->nwatches) {
        int n = l->nwatches ? l->nwatches : 64;
        while (n <= fd) n *= 2;
        fd_watch *nw = realloc(l->watches, sizeof(*nw) * (size_t)n);
        if (!nw) return -1;
        memset(nw + l->nwatches, 0, sizeof(*nw) * (size_t)(n - l->nwatches));
        l->watches = nw;
        l->nwatches = n;
    }
    struct epoll_event ev = {0};
    ev.events = ((events & LOOP_READ) ? EPOLLIN : 0) | ((events & LOOP_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    int op = l->watches[fd].events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0) return -1;
    l->watches[fd].fn = fn;
    l->watches[fd].arg = arg;
    /* remember that it is registered even with an empty mask */
    l->watches[fd].events = events ? events : 0x100;
    return 0;
}

void loop_unwatch(kloop *l, int fd) {
    if (fd < 0 || fd >= l->nwatches || !l->watches[fd].events) return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    memset(&l->watches[fd], 0, sizeof l->watches[fd]);
}

/* ---- timer heap ---- */

static void heap_swap(kloop *l, int a, int b) {
    timer t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
}

static void heap_up(kloop *l, int i) {
    while (i > 0) {
        int p = (i - 1) / 2;
        if (l->heap[p].due_ns <= l->heap[i].due_ns) break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(kloop *l, int i) {
    for (;;) {
        int c = 2 * i + 1;
        if (c >= l->nheap) break;
        if (c + 1 < l->nheap && l->heap[c + 1].due_ns < l->heap[c].due_ns) c++;
        if (l->heap[i].due_ns <= l->heap[c].due_ns) break;
        heap_swap(l, i, c);
        i = c;
    }
}

static void heap_remove_at(kloop *l, int i) {
    l->nheap--;
    if (i == l->nheap) return;
    l->heap[i] = l->heap[l->nheap];
    heap_up(l, i);
    heap_down(l, i);
}

loop_timer_id loop_timer_add(kloop *l, int64_t delay_ms, loop_timer_fn fn, void *arg) {
    if (l->nheap == l->capheap) {
        int n = l->capheap ? l->capheap * 2 : 64;
        timer *nh = realloc(l->heap, sizeof(*nh) * (size_t)n);
        if (!nh) return 0;
        l->heap = nh;
        l->capheap = n;
    }
    if (delay_ms < 0) delay_ms = 0;
    if (delay_ms > INT64_MAX / 2000000) delay_ms = INT64_MAX / 2000000;
    timer *t = &l->heap[l->nheap];
    /* Nanoseconds, not whole milliseconds: with the clock truncated to
     * milliseconds a timer added at 10.9 ms for 74 ms would be due at 84 ms,
     * 73.1 ms later. */
    t->due_ns = monotonic_ns() + delay_ms * 1000000;
    t->id = l->next_id++;
    t->fn = fn;
    t->arg = arg;
    l->nheap++;
    heap_up(l, l->nheap - 1);
    return l->next_id - 1;
}

void loop_timer_cancel(kloop *l, loop_timer_id id) {
    if (!id) return;
    /* Linear: cancellations are rare next to firings and the heap is small. */
    for (int i = 0; i < l->nheap; i++) {
        if (l->heap[i].id == id) {
            heap_remove_at(l, i);
            return;
        }
    }
}

int64_t loop_now_ms(kloop *l) { return l->now_ms; }

void loop_stop(kloop *l) { l->stop = true; }
bool loop_stopping(const kloop *l) { return l->stop; }

static void run_due_timers(kloop *l) {
    int64_t now_ns = monotonic_ns();
    l->now_ms = now_ns / 1000000;
    /* Timers added while firing get a due time >= now, so this terminates. */
    int budget = l->nheap;
    while (l->nheap > 0 && l->heap[0].due_ns <= now_ns && budget-- > 0) {
        timer t = l->heap[0];
        heap_remove_at(l, 0);
        t.fn(l, t.arg);
    }
}

int loop_run(kloop *l) {
    struct epoll_event evs[256];
    while (!l->stop && !l->paused) {
        int timeout = 1000;
        if (l->nheap > 0) {
            /* Round the wait up: waking a fraction of a millisecond early
             * would find the timer not due and spin until it is. */
            int64_t d = l->heap[0].due_ns - monotonic_ns();
            int64_t ms = d <= 0 ? 0 : (d + 999999) / 1000000;
            timeout = ms > 1000 ? 1000 : (int)ms;
        }
        int64_t wait_from = timeout ? monotonic_ns() : 0;
        int n = epoll_wait(l->epfd, evs, 256, timeout);
        if (timeout) __atomic_fetch_add(&l->idle_ns, monotonic_ns() - wait_from, __ATOMIC_RELAXED);
        if (n < 0 && errno != EINTR) return -1;
        /* Deadlines that passed while we waited (or were busy) take effect
         * before the requests that arrived meanwhile: a session that expired
         * at t must not still count for a DeleteGroups read just after t. */
        run_due_timers(l);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd >= l->nwatches || !l->watches[fd].fn) continue;
            int ev = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ev |= LOOP_READ;
            if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ev |= LOOP_WRITE;
            fd_watch w = l->watches[fd];
            w.fn(l, fd, ev, w.arg);
        }
        run_due_timers(l);
        if (l->pass_end) l->pass_end(l, l->pass_end_arg);
    }
    return 0;
}

void loop_set_pass_end(kloop *l, loop_timer_fn fn, void *arg) {
    l->pass_end = fn;
    l->pass_end_arg = arg;
}

static void pause_timer(kloop *l, void *arg) {
    (void)arg;
    l->paused = true;
}

int loop_run_for(kloop *l, int64_t ms) {
    if (l->stop) return 0;
    loop_timer_id t = loop_timer_add(l, ms, pause_timer, NULL);
    int rc = loop_run(l);
    if (!l->paused) loop_timer_cancel(l, t);
    l->paused = false;
    return rc;
}

int64_t loop_idle_ns(const kloop *l) { return __atomic_load_n(&l->idle_ns, __ATOMIC_RELAXED); }
int64_t loop_age_ns(const kloop *l) { return monotonic_ns() - l->created_ns; }
