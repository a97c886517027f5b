/* test_loop.c - the event loop's ordering of timers and readable fds.
 *
 * A deadline that passed while the loop was busy must take effect before
 * the I/O that arrived meanwhile (a group member's session that expired at
 * t must not still count for a DeleteGroups read after t). Prints
 * "loop: N passed, M failed".
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"

static int g_pass, g_fail;

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (cond) {                                                      \
            g_pass++;                                                    \
        } else {                                                         \
            g_fail++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                \
    } while (0)

static char order[8];
static int norder;

static void on_timer(kloop *l, void *arg) {
    (void)l;
    (void)arg;
    if (norder < (int)sizeof order - 1) order[norder++] = 'T';
}

static void on_readable(kloop *l, int fd, int events, void *arg) {
    (void)events;
    (void)arg;
    char c;
    if (read(fd, &c, 1) == 1 && norder < (int)sizeof order - 1) order[norder++] = 'R';
    loop_unwatch(l, fd);
    loop_stop(l);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loop with a timer due in timer_ms and a pipe p with one byte to read
 * (on_read watches p[0]); the order record cleared. NULL if it cannot be made. */
static kloop *loop_with_timer_and_byte(int p[2], int64_t timer_ms, loop_fd_fn on_read) {
    kloop *l = loop_new();
    CHECK(l != NULL);
    if (!l) return NULL;
    CHECK(pipe(p) == 0);
    norder = 0;
    memset(order, 0, sizeof order);
    loop_timer_add(l, timer_ms, on_timer, NULL);
    CHECK(loop_watch(l, p[0], LOOP_READ, on_read, NULL) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    return l;
}

static void loop_and_pipe_free(kloop *l, int p[2]) {
    close(p[0]);
    close(p[1]);
    loop_free(l);
}

/* The timer is due and the fd readable when the loop first looks: the timer
 * runs first. */
static void test_due_timer_before_io(void) {
    int p[2];
    kloop *l = loop_with_timer_and_byte(p, 5, on_readable);
    if (!l) return;
    sleep_ms(20); /* both are ready before the loop runs */
    CHECK(loop_run(l) == 0);
    CHECK(strcmp(order, "TR") == 0);
    loop_and_pipe_free(l, p);
}

/* A timer not yet due does not run before the I/O. */
static void test_future_timer_after_io(void) {
    int p[2];
    kloop *l = loop_with_timer_and_byte(p, 60000, on_readable);
    if (!l) return;
    CHECK(loop_run(l) == 0);
    CHECK(strcmp(order, "R") == 0);
    loop_and_pipe_free(l, p);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t fired_ns;

static void on_timer_stop(kloop *l, void *arg) {
    (void)arg;
    fired_ns = now_ns();
    loop_stop(l);
}

/* A timer never fires before its full delay: added at any point inside a
 * millisecond, it runs at least delay ms later (a long-polling fetch that
 * asks for 74 ms must not be answered after 73.6). */
static void test_timer_never_early(void) {
    int early = 0;
    for (int i = 0; i < 40; i++) {
        kloop *l = loop_new();
        CHECK(l != NULL);
        if (!l) return;
        /* start at a different fraction of a millisecond each time */
        struct timespec ts = {0, (long)(i % 10) * 97000L + 13000L};
        nanosleep(&ts, NULL);
        int64_t delay = 1 + i % 7;
        fired_ns = 0;
        int64_t t0 = now_ns();
        CHECK(loop_timer_add(l, delay, on_timer_stop, NULL) != 0);
        /* the loop is busy a little before it next waits (as after a
         * request handler), often into the next millisecond */
        struct timespec busy = {0, (long)((i / 10) % 4) * 230000L + 150000L};
        nanosleep(&busy, NULL);
        CHECK(loop_run(l) == 0);
        if (fired_ns - t0 < delay * 1000000) {
            early++;
            fprintf(stderr, "timer of %lld ms fired after %lld us\n", (long long)delay,
                    (long long)((fired_ns - t0) / 1000));
        }
        loop_free(l);
    }
    CHECK(early == 0);
}

static void on_readable_stay(kloop *l, int fd, int events, void *arg) {
    (void)events;
    (void)arg;
    char c;
    if (read(fd, &c, 1) == 1 && norder < (int)sizeof order - 1) order[norder++] = 'R';
    loop_unwatch(l, fd);
}

static void on_pass_end(kloop *l, void *arg) {
    int *calls = arg;
    (*calls)++;
    if (norder < (int)sizeof order - 1) order[norder++] = 'E';
    loop_stop(l);
}

/* The pass-end hook (where the server writes the answers of a pass) runs
 * once per pass, after that pass's I/O and due timers, and before loop_run
 * returns for a stop asked during the pass; removed, it runs no more. */
static void test_pass_end_after_the_pass(void) {
    int p[2];
    kloop *l = loop_with_timer_and_byte(p, 5, on_readable_stay);
    if (!l) return;
    int calls = 0;
    loop_set_pass_end(l, on_pass_end, &calls);
    sleep_ms(20);
    CHECK(loop_run(l) == 0);
    CHECK(strcmp(order, "TRE") == 0);
    CHECK(calls == 1);
    loop_and_pipe_free(l, p);
    kloop *l2 = loop_new(); /* a stopped loop stays stopped: a second one for the removal */
    CHECK(l2 != NULL);
    if (!l2) return;
    loop_set_pass_end(l2, on_pass_end, &calls);
    loop_set_pass_end(l2, NULL, NULL);
    loop_timer_add(l2, 1, on_timer, NULL);
    CHECK(loop_run_for(l2, 20) == 0);
    CHECK(calls == 1);
    CHECK(strcmp(order, "TRET") == 0);
    loop_free(l2);
}

int main(void) {
    test_due_timer_before_io();
    test_pass_end_after_the_pass();
    test_future_timer_after_io();
    test_timer_never_early();
    printf("loop: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
