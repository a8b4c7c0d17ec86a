/*
 * gate.c - admission of MTA connections under the open file limit (see gate.h).
 *
 * Why an accept() of our own: libmilter's listener (mi_listener, listener.c in 8.17) polls
 * the listening socket and calls accept(); when that fails with EMFILE or ENFILE it goes
 * straight back to poll, which reports the same waiting connection again: the listener spins
 * at 100 % of a core, logs nothing, and the MTA's connection waits unanswered in the listen
 * queue until the MTA times out.  And the sessions it accepted before can take every
 * descriptor, so that c-ares cannot open the socket of any DNS query and every held session
 * is answered with a temporary failure.  libmilter has no hook for this, so this file
 * defines accept() itself: the program's definition comes before libc's when libmilter.so
 * (or libmilter.a) calls accept(), and libmilter's listener thread is its only caller here.
 *
 * Descriptors are allocated lowest number first.  A connection whose descriptor is at or
 * above the ceiling is closed at once: sessions never hold the top `reserve` numbers, which
 * stay for the engine's DNS sockets and the log.  When accept() fails for lack of
 * descriptors all the same, a spare descriptor is closed to take the connection off the queue
 * and close it, then opened again; without a spare, we wait a little so that the listener
 * cannot spin.
 */
#define accept mxsane_libc_accept /* libc's prototype out of the way of ours below */
#include <sys/socket.h>
#undef accept

#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int accept(int fd, struct sockaddr *addr, socklen_t *len);

static rlim_t g_nofile;
static atomic_uint g_ceiling; /* 0: no ceiling */
static atomic_uint_least64_t g_refused;
static int g_spare = -1;
/* listener thread only */
static time_t g_log_at;
static uint64_t g_quiet;

static unsigned ceiling_of(rlim_t nofile, unsigned reserve)
{
	if (!nofile || nofile == RLIM_INFINITY)
		return 0;
	if (nofile <= (rlim_t)reserve + 1)
		return 1; /* a limit that small leaves nothing for sessions: refuse all */
	rlim_t c = nofile - reserve;
	return c > 0x7fffffff ? 0 : (unsigned)c;
}

void gate_init(rlim_t nofile, unsigned reserve)
{
	g_nofile = nofile;
	atomic_store(&g_ceiling, ceiling_of(nofile, reserve));
	if (g_spare < 0)
		g_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void gate_set_reserve(unsigned reserve)
{
	atomic_store(&g_ceiling, ceiling_of(g_nofile, reserve));
}

unsigned gate_ceiling(void)
{
	return atomic_load(&g_ceiling);
}

uint64_t gate_refused(void)
{
	return atomic_load(&g_refused);
}

static void refused(const char *why)
{
	struct timespec now;
	atomic_fetch_add(&g_refused, 1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < g_log_at) {
		g_quiet++;
		return;
	}
	if (g_quiet)
		log_msg(LOG_WARNING,
		        "MTA connection refused: %s (and %llu more in the last second); raise the "
		        "open file limit (systemd LimitNOFILE=, ulimit -n)",
		        why, (unsigned long long)g_quiet);
	else
		log_msg(LOG_WARNING,
		        "MTA connection refused: %s; raise the open file limit (systemd "
		        "LimitNOFILE=, ulimit -n)",
		        why);
	g_quiet = 0;
	g_log_at = now.tv_sec + 1;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int cfd = accept4(fd, addr, len, SOCK_CLOEXEC);
	unsigned ceiling = atomic_load(&g_ceiling);
	if (cfd >= 0) {
		if (ceiling && (unsigned)cfd >= ceiling) {
			char why[160];
			close(cfd);
			snprintf(why, sizeof(why),
			         "every descriptor below %u is in use, the other %llu of the open "
			         "file limit are kept for DNS queries",
			         ceiling, (unsigned long long)(g_nofile - ceiling));
			refused(why);
			errno = ECONNABORTED; /* libmilter goes on quietly */
			return -1;
		}
		return cfd;
	}
	int e = errno;
	if (e != EMFILE && e != ENFILE)
		return -1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (g_spare >= 0) {
		close(g_spare);
		g_spare = -1;
		/* the listening socket blocks: only if a connection is waiting */
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
			int x = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (x >= 0)
				close(x);
		}
		g_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	} else {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	refused(e == EMFILE ? "the process is out of file descriptors (EMFILE)"
	                    : "the system is out of file descriptors (ENFILE)");
	errno = e;
	return -1;
}
