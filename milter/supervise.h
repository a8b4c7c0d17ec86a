/*
 * supervise.h - the process an admin starts (the supervisor) holds the listening socket and
 * runs the milter in a worker process, which it replaces at once when it dies.
 *
 * Why: libmilter 8.17 stores a macro packet with an odd number of strings (or an
 * unterminated last string) as it is, and smfi_getsymval() then reads past the end of its
 * array; anyone who can connect to the socket can send one, and no filter can look at the
 * packet before libmilter stores it or avoid the lookups it needs (docs/robustness.md).
 * Postfix's master(8) keeps its daemons the same way: a crash costs the sessions open in
 * the dead process (the MTA applies its milter_default_action to them: Postfix's default
 * tempfail answers 4xx, nothing is lost), never the service.
 *
 * The listening socket was opened before (smfi_opensocket): libmilter keeps it in a static
 * variable that a forked worker inherits, and smfi_main() in the worker accepts on it
 * instead of opening a new one.  Connections that arrive while no worker runs wait in the
 * socket's backlog: none is refused, and a unix socket's path is never removed and
 * re-created.
 *
 * Signals: SIGTERM, SIGHUP and SIGINT stop the worker (passed on: libmilter's meanings) and
 * then the supervisor; SIGUSR1 calls ops->reload in the supervisor, then is passed on, so
 * that a worker started later starts with the configuration the running one reloaded.
 *
 * Call from main() only, single-threaded, with SIGHUP, SIGINT, SIGTERM, SIGUSR1 and
 * SIGUSR2 blocked (supervise() blocks SIGCHLD too; the worker starts with that mask, less
 * SIGCHLD).
 */
#ifndef MXSANE_MILTER_SUPERVISE_H
#define MXSANE_MILTER_SUPERVISE_H

/* At most this many worker starts per second: a worker that dies at once (every packet of
 * an attacker's stream, or a bug at start) costs the machine at most that much forking.
 * Connections wait in the socket's backlog meanwhile. */
#define SUPERVISE_MIN_INTERVAL_MS 100

struct supervise_ops {
	/* Runs in each new worker process; returns its exit status. */
	int (*worker)(void *arg);
	/* SIGUSR1 in the supervisor (may be NULL). */
	void (*reload)(void *arg);
	void *arg;
};

/*
 * Start a worker and keep one running until told to stop.  A worker killed by a signal
 * (SIGSEGV, SIGABRT, SIGKILL...) is logged and replaced.  A worker that exits by itself
 * ends the supervisor with the worker's exit status (a start-up failure: replacing it would
 * fail the same way); so does a stop (normally 0).  Returns that exit status.
 */
int supervise(const struct supervise_ops *ops);

#endif
