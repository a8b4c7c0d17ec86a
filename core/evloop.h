/*
 * evloop.h - a small epoll event loop: file descriptor watches and one-shot timers.
 *
 * The loop is the only place that reads the clock (CLOCK_MONOTONIC, milliseconds); it hands
 * the time to everything it calls through evloop_now().  One loop belongs to one thread:
 * no function here may be called from another thread, except evloop_wakeup(), and
 * evloop_now()/evloop_update_time() by a thread that holds the lock the loop's thread takes
 * in its wait hooks (evloop_set_after_wait).
 */
#ifndef MXSANE_EVLOOP_H
#define MXSANE_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
struct ev_timer;

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u /* reported only: hang-up or error on the descriptor */

typedef void (*ev_fd_cb)(struct evloop *loop, int fd, unsigned events, void *arg);
typedef void (*ev_timer_cb)(struct evloop *loop, void *arg);

struct evloop *evloop_new(void);       /* NULL on failure (errno set) */
void evloop_free(struct evloop *loop); /* accepts NULL; pending timers are freed, not run */

/* Watch fd for events (EV_READ|EV_WRITE; 0 keeps it registered but idle: not even errors
 * or hang-ups are reported then).  Adding a watched fd again changes its events and
 * callback.  0 or -1 (errno; EPERM for a regular file, which epoll cannot watch). */
int evloop_watch(struct evloop *loop, int fd, unsigned events, ev_fd_cb cb, void *arg);
void evloop_unwatch(struct evloop *loop, int fd);

/* A one-shot timer at absolute monotonic time `when` (ms).  The returned handle is valid
 * until the callback starts or evloop_cancel is called.  NULL on out of memory. */
struct ev_timer *evloop_timer(struct evloop *loop, uint64_t when, ev_timer_cb cb, void *arg);
void evloop_cancel(struct evloop *loop, struct ev_timer *t); /* accepts NULL */

/* Monotonic ms, refreshed once per loop iteration (and by evloop_update_time). */
uint64_t evloop_now(const struct evloop *loop);
uint64_t evloop_update_time(struct evloop *loop);
/* Read the time from clock(arg) instead (ms; a unit test's fake clock, which it moves
 * itself and then runs evloop_run_once(loop, 0) to fire the timers that came due). */
void evloop_set_clock(struct evloop *loop, uint64_t (*clock)(void *arg), void *arg);

/* Run until evloop_stop() is called; returns 0, or -1 if epoll fails. */
int evloop_run(struct evloop *loop);
/* One iteration: wait at most max_wait ms (-1: until an event or timer). */
int evloop_run_once(struct evloop *loop, int max_wait);
void evloop_stop(struct evloop *loop);

/* Thread-safe: make a blocked evloop_run_once return and call the wakeup callback in the
 * loop's thread (set with evloop_set_wakeup).  Async-signal-safe too. */
void evloop_wakeup(struct evloop *loop);
void evloop_set_wakeup(struct evloop *loop, ev_timer_cb cb, void *arg);
/* Call fn(arg) in every iteration, right before the loop waits (e.g. to flush output
 * gathered while handling the previous batch of events).  NULL: none. */
void evloop_set_before_wait(struct evloop *loop, void (*fn)(void *), void *arg);
/* Call fn(arg) right after the wait, before anything else.  With the before-wait hook this
 * brackets the only time the loop's thread does not touch the loop: a program that shares
 * the loop's objects with other threads locks in the after-wait hook and unlocks in the
 * before-wait hook (the milter's engine thread does: milter/engine_thread.h).  NULL: none. */
void evloop_set_after_wait(struct evloop *loop, void (*fn)(void *), void *arg);

#endif
