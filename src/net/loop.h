/* loop.h - the single-threaded event loop: epoll for file descriptors and a
 * binary min-heap of timers.
 *
 * Everything in the broker runs on this one thread, as in Redis: handlers
 * never block on the network, and deferred work (long-polling fetches,
 * group rebalances, periodic log maintenance) is driven by timers.
 */
#ifndef SAMSA_LOOP_H
#define SAMSA_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kloop kloop;

#define LOOP_READ 1
#define LOOP_WRITE 2

typedef void (*loop_fd_fn)(kloop *l, int fd, int events, void *arg);
typedef void (*loop_timer_fn)(kloop *l, void *arg);

kloop *loop_new(void);
void loop_free(kloop *l);
/* Register fd for events (LOOP_READ|LOOP_WRITE); re-registering changes the
 * mask. Returns 0 or -1. */
int loop_watch(kloop *l, int fd, int events, loop_fd_fn fn, void *arg);
void loop_unwatch(kloop *l, int fd);

/* Timers: a handle > 0 that stays valid until the timer fires or is cancelled. */
typedef uint64_t loop_timer_id;
loop_timer_id loop_timer_add(kloop *l, int64_t delay_ms, loop_timer_fn fn, void *arg);
void loop_timer_cancel(kloop *l, loop_timer_id id);

/* Called once at the end of every pass of loop_run (after that pass's events
 * and due timers, before the loop waits again): work gathered during a pass
 * and done once for all of it, as Redis's beforeSleep writes the replies of a
 * pass. One per loop; fn NULL removes it. */
void loop_set_pass_end(kloop *l, loop_timer_fn fn, void *arg);

/* Monotonic milliseconds, cached per loop iteration (cheap to call). */
int64_t loop_now_ms(kloop *l);
/* Wall-clock milliseconds since the epoch (for record timestamps). */
int64_t wall_clock_ms(void);
int64_t monotonic_ms(void);
int64_t monotonic_ns(void);

/* Time the loop has spent waiting for events (idle) and its age, in ns
 * (metrics: the event loop's idle share, Kafka's *AvgIdlePercent). Either
 * may be asked from another thread than the loop's. */
int64_t loop_idle_ns(const kloop *l);
int64_t loop_age_ns(const kloop *l);

/* Runs until loop_stop(); returns 0. */
int loop_run(kloop *l);
/* Runs for ms (or until loop_stop()), then returns 0 and can be run again:
 * for tests that drive a loop step by step. */
int loop_run_for(kloop *l, int64_t ms);
void loop_stop(kloop *l);
bool loop_stopping(const kloop *l);

#endif
