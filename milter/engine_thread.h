/*
 * engine_thread.h - the milter's engine thread: libmilter calls back in many threads (its
 * worker pool), the engine is single-threaded (engine.h).  This module owns one thread
 * running an evloop with the engine in it, hands each check over and the reply back.
 *
 * One request shape and one result: a caller gives a struct milter_check (the engine's own
 * check_request and the decision line's log context) and gets the struct milter_reply that
 * libmilter is told (reply.h).  The engine thread holds a lock on the engine except while
 * its loop waits (evloop's wait hooks).  engine_thread_check():
 *  - first, under that lock, engine_check_cached(): when every record set the check needs
 *    is in the cache (the usual case on a busy server) the caller gets its reply and logs
 *    the decision itself - no job, no hand-over to the engine thread and back;
 *  - otherwise the request, now prepared (parsed and past the gates: not done twice), is
 *    copied into a job, queued under a second mutex, and the engine thread is woken
 *    (evloop_wakeup, an eventfd).  The engine thread starts engine_check(); the result
 *    callback builds the reply into the job, logs the decision and signals the waiting
 *    thread.
 * The caller gives up at a deadline it chooses (waiting for the lock or for the job); a job
 * abandoned that way is freed by whichever side finishes last (reference count).  Nothing
 * here ever produces a rejection on its own: a timeout answers reply_timeout() (451 4.4.3)
 * and every internal failure (out of memory, engine thread gone, shutting down)
 * reply_internal_failure() (451 4.3.0); both are logged as decisions.
 *
 * Time: this module does not read the clock; callers pass an absolute CLOCK_MONOTONIC
 * deadline.
 *
 * Threads: engine_thread_new, _start, _stop and _free from one controlling thread (main);
 * engine_thread_check, _budget_ms and _reconfigure from any thread.
 */
#ifndef MXSANE_ENGINE_THREAD_H
#define MXSANE_ENGINE_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "decision.h"
#include "engine.h"
#include "reply.h"

struct engine_thread;

/* One check as a milter callback asks for it. */
struct milter_check {
	struct check_request req; /* address NULL means ""; strings are copied if needed */
	struct log_ctx log;       /* context for the decision's log line */
	/* A sender check at RCPT: verdict + 1 of the sender line already logged for this
	 * message (0: none); the same verdict again is logged with repeat=yes. */
	int logged_verdict;
};

enum engine_thread_status {
	ET_ANSWERED = 0, /* the engine decided */
	ET_TIMEOUT,      /* no answer before the deadline: 451 4.4.3 */
	ET_FAILED,       /* internal failure or shutting down: 451 4.3.0 */
};

/*
 * Create the engine thread's loop and engine with configuration cfg (takes a reference).
 * The thread is not started yet: a process that forks (detaches) does so between
 * engine_thread_new and engine_thread_start.  NULL with a reason in err on failure.
 */
struct engine_thread *engine_thread_new(struct config *cfg, char *err, size_t errlen);

/* Start the thread.  Call with the signals the thread must not take blocked (it inherits
 * the caller's signal mask).  0, or -1 with err. */
int engine_thread_start(struct engine_thread *t, char *err, size_t errlen);

/*
 * Serve GET /metrics (httpd.h) on the listening descriptor lfd (it stays the caller's) from
 * the engine thread's loop: the engine's metrics, then extra(arg, x) (in the engine thread,
 * may be NULL), the reloads, the endpoint's own and build information.  Call between
 * engine_thread_new and engine_thread_start.  0, or -1 (out of memory).
 */
struct expo;
int engine_thread_serve_metrics(struct engine_thread *t, int lfd,
                                void (*extra)(void *arg, struct expo *x), void *arg);
/* The reload counters the metrics show (engine_thread_reconfigure's outcome is counted
 * here; a caller counts the files it refused itself). */
struct metrics_reloads *engine_thread_reloads(struct engine_thread *t);

/* resolver.timeout_ms of the configuration in use: a caller waits that long plus a margin. */
unsigned engine_thread_budget_ms(struct engine_thread *t);

/* Whether the configuration in use has a recipient_policies_file: then the sender's verdict
 * depends on the recipient, and the milter checks the sender at each RCPT. */
bool engine_thread_sender_at_rcpt(struct engine_thread *t);

/*
 * Check one address; blocks the calling thread until the engine answers or until deadline
 * (CLOCK_MONOTONIC, absolute).  out is always filled: with the engine's decision, or with a
 * tempfail of this module's own, which it also logs.
 */
enum engine_thread_status engine_thread_check(struct engine_thread *t,
                                              const struct milter_check *mc,
                                              const struct timespec *deadline,
                                              struct milter_reply *out);

/*
 * Hand a new, validated configuration to the engine thread (takes ownership of the caller's
 * reference).  Asynchronous: the engine thread calls engine_reconfigure() between checks and
 * logs the outcome; if that fails the old configuration stays.  Checks already running
 * finish with the configuration they started with; nothing is dropped.
 */
void engine_thread_reconfigure(struct engine_thread *t, struct config *cfg);

/*
 * Stop: new checks fail at once (451 4.3.0), the engine is freed in its thread (pending
 * checks complete as dns_error, 451 4.4.3), queued jobs are failed, and the thread is joined.
 * Safe to call when engine_thread_start was never called or failed.
 */
void engine_thread_stop(struct engine_thread *t);

/* Stop (if still running) and free.  Waits until no thread is inside engine_thread_check any
 * more (each one is bounded by its deadline).  Accepts NULL. */
void engine_thread_free(struct engine_thread *t);

#endif
