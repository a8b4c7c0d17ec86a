/*
 * supervise.c - keep one worker process running the milter; replace it when it dies.
 */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t start_worker(const struct supervise_ops *ops, const sigset_t *chld)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* A supervisor killed with SIGKILL takes its worker along: an orphan would keep
		 * serving the socket of a service that is stopped (and block its restart). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(EX_OSERR);
		sigprocmask(SIG_UNBLOCK, chld, NULL);
		exit(ops->worker(ops->arg));
	}
	if (pid < 0)
		log_msg(LOG_ERR, "cannot start a worker process: fork: %s", strerror(errno));
	return pid;
}

int supervise(const struct supervise_ops *ops)
{
	sigset_t set, chld;
	pid_t worker = -1;
	bool stopping = false;
	unsigned long restarts = 0;
	long long started = 0;
	int rc = EX_OK;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);

	for (;;) {
		long long wait_ms = -1;
		if (worker < 0 && stopping)
			break;
		if (worker < 0) {
			long long now = now_ms();
			if (started && now - started < SUPERVISE_MIN_INTERVAL_MS) {
				wait_ms = SUPERVISE_MIN_INTERVAL_MS - (now - started);
			} else {
				started = now;
				worker = start_worker(ops, &chld);
				if (worker > 0 && restarts)
					log_msg(LOG_WARNING,
					        "worker process %ld started (restart %lu)",
					        (long)worker, restarts);
				if (worker < 0)
					wait_ms = 1000;
			}
		}

		siginfo_t info;
		int sig;
		if (wait_ms >= 0) {
			struct timespec ts = {.tv_sec = wait_ms / 1000,
			                      .tv_nsec = (long)(wait_ms % 1000) * 1000000L};
			sig = sigtimedwait(&set, &info, &ts);
		} else {
			sig = sigwaitinfo(&set, &info);
		}
		if (sig < 0)
			continue; /* EAGAIN (time to start a worker) or EINTR */

		if (sig == SIGUSR1) {
			if (ops->reload)
				ops->reload(ops->arg);
			if (worker > 0)
				kill(worker, SIGUSR1);
			continue;
		}
		if (sig != SIGCHLD) {
			/* libmilter's meanings: HUP and TERM stop, INT aborts */
			stopping = true;
			if (worker > 0)
				kill(worker, sig);
			continue;
		}

		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != worker)
				continue;
			worker = -1;
			if (WIFSIGNALED(status) && !stopping) {
				restarts++;
				log_msg(LOG_ERR,
				        "worker process %ld killed by signal %d (%s) after %lld "
				        "ms: the "
				        "MTA applies its milter_default_action to the sessions it "
				        "had "
				        "open; starting a new one",
				        (long)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
				        now_ms() - started);
				continue;
			}
			if (WIFEXITED(status)) {
				rc = WEXITSTATUS(status);
				if (!stopping)
					log_msg(rc == EX_OK ? LOG_INFO : LOG_ERR,
					        "worker process %ld exited with status %d: "
					        "stopping",
					        (long)pid, rc);
			} else {
				rc = EX_SOFTWARE;
				log_msg(LOG_ERR,
				        "worker process %ld killed by signal %d while stopping",
				        (long)pid, WTERMSIG(status));
			}
			stopping = true;
		}
	}
	return rc;
}
