/*
 * bridge.h - hand checks from many threads (libmilter's worker pool) to the one thread that
 * owns the engine, and the answers back.
 *
 * The engine is single-threaded (engine.h): the bridge owns an "engine thread" running an
 * evloop with the engine in it, and a lock on the engine that this thread holds except
 * while its loop waits (evloop's wait hooks).  Any thread calls bridge_check():
 *  - first, under that lock, engine_check_cached(): when every record set the check needs
 *    is in the cache (the usual case on a busy server) the caller gets its answer and logs
 *    the decision itself - no job, no hand-over to the engine thread and back;
 *  - otherwise the request is copied into a job, queued under a second mutex, and the engine
 *    thread is woken (evloop_wakeup, an eventfd).  The engine thread starts engine_check();
 *    the result callback copies what a front-end needs into the job, logs the decision
 *    there (log_decision with the job's copy of the log context) and signals the waiting
 *    thread.
 * The caller gives up at a deadline it chooses (waiting for the lock or for the job); a job
 * abandoned that way is freed by whichever side finishes last (reference count).  Nothing
 * here ever produces a rejection on its own: a timeout answers 451 4.4.3 and every
 * internal failure (out of memory, engine thread gone, shutting down) 451 4.3.0.
 *
 * Time: the bridge does not read the clock; callers pass an absolute CLOCK_MONOTONIC
 * deadline.
 *
 * Threads: bridge_new, bridge_start, bridge_stop and bridge_free from one controlling thread
 * (main); bridge_check, bridge_budget_ms and bridge_reconfigure from any thread.
 */
#ifndef MXSANE_BRIDGE_H
#define MXSANE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "decision.h"
#include "verdict.h"

struct bridge;

/* Bounds of what an answer carries (libmilter takes at most 980 bytes of reply). */
#define BRIDGE_TEXT_MAX   1000
#define BRIDGE_HEADER_MAX 900

struct bridge_request {
	enum role role;
	const char *address;     /* as received: "<a@b>", "<>", "a@b"; NULL means "" */
	const char *client_addr; /* textual client IP (skip.clients), or NULL */
	bool authenticated;      /* SASL-authenticated session: the engine skips sender checks */
	bool local_submission;   /* submitted on this machine: see check_request in engine.h */
	struct log_ctx log;      /* context for the decision's log line; every field is copied */
};

enum bridge_status {
	BRIDGE_ANSWERED = 0, /* the engine decided */
	BRIDGE_TIMEOUT,      /* no answer before the deadline: 451 4.4.3 */
	BRIDGE_FAILED,       /* internal failure or shutting down: 451 4.3.0 */
};

/* A self-contained copy of a decision: no pointers into engine memory. */
struct bridge_answer {
	enum bridge_status status;
	enum verdict verdict;
	enum action action;
	int code;                       /* 4xx or 5xx for tempfail/reject; 0 otherwise */
	char dsn[16];                   /* "5.1.10", "" when code is 0 */
	char text[BRIDGE_TEXT_MAX];     /* reply text (no code): "<a@b>: b does not ..." */
	char header[BRIDGE_HEADER_MAX]; /* X-MXSane value for warn, "" if none */
};

/*
 * Create the engine thread's loop and engine with configuration cfg (takes a reference).
 * The thread is not started yet: a process that forks (detaches) does so between
 * bridge_new and bridge_start.  NULL with a reason in err on failure.
 */
struct bridge *bridge_new(struct config *cfg, char *err, size_t errlen);

/* Start the engine thread.  Call with the signals the thread must not take blocked (it
 * inherits the caller's signal mask).  0, or -1 with err. */
int bridge_start(struct bridge *b, char *err, size_t errlen);

/* resolver.timeout_ms of the configuration in use: a caller waits that long plus a margin. */
unsigned bridge_budget_ms(struct bridge *b);

/*
 * Check one address; blocks the calling thread until the engine answers or until deadline
 * (CLOCK_MONOTONIC, absolute).  ans is always filled: with the engine's decision
 * (BRIDGE_ANSWERED), or with a tempfail of the bridge's own (BRIDGE_TIMEOUT: 451 4.4.3,
 * BRIDGE_FAILED: 451 4.3.0), which the bridge also logs.  Returns ans->status.
 */
enum bridge_status bridge_check(struct bridge *b, const struct bridge_request *rq,
                                const struct timespec *deadline, struct bridge_answer *ans);

/*
 * Hand a new, validated configuration to the engine thread (takes ownership of the caller's
 * reference).  Asynchronous: the engine thread calls engine_reconfigure() between checks and
 * logs the outcome; if that fails the old configuration stays.  Checks already running
 * finish with the configuration they started with; nothing is dropped.
 */
void bridge_reconfigure(struct bridge *b, struct config *cfg);

/*
 * Stop: new checks fail at once (451 4.3.0), the engine is freed in its thread (pending
 * checks complete as dns_error, 451 4.4.3), queued jobs are failed, and the thread is joined.
 * Safe to call when bridge_start was never called or failed.
 */
void bridge_stop(struct bridge *b);

/* Stop (if still running) and free.  Waits until no thread is inside bridge_check any more (each
 * one is bounded by its deadline).  Accepts NULL. */
void bridge_free(struct bridge *b);

#endif
