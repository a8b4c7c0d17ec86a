/*
 * daemon.h - process-level chores shared by mxsane-milter and mxsane-policyd: detaching,
 * pid files, stale socket removal, dropping privileges and the open file limit, each step
 * checked.
 * Call from main() only (not thread-safe); functions report errors, main() decides to exit.
 */
#ifndef MXSANE_DAEMON_H
#define MXSANE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Resolve "USER" or "USER:GROUP" (names or numeric ids).  GROUP defaults to USER's
 * primary group.  0, or -1 with err. */
int daemon_lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen);

/*
 * Drop root to uid/gid in the fixed order: supplementary groups (initgroups for the user, or
 * just gid), setgid, setuid; then verify that root cannot be regained.  If not running as
 * root and already uid/gid, succeeds.  0, or -1 with err.
 */
int daemon_drop_privileges(const char *spec, char *err, size_t errlen);

/* Policy for root: a daemon started as root without -u refuses to run (returns -1 with an
 * explanation), unless the user given is root itself ("-u root": explicitly allowed). */
int daemon_check_root(const char *user_spec, char *err, size_t errlen);

/* Fork into the background, setsid, chdir("/"), stdio to /dev/null.  Returns in the child
 * only; the parent exits 0.  -1 with err on failure (in the original process). */
int daemon_detach(char *err, size_t errlen);

/* Write our pid to path (O_EXCL on a temp file then rename).  0 or -1 with err. */
int daemon_write_pidfile(const char *path, char *err, size_t errlen);
void daemon_remove_pidfile(const char *path); /* accepts NULL */

/*
 * Remove a socket left by a dead instance: only if path is a socket (lstat: a symlink is
 * never followed or removed) and nobody accepts connections on it.  A live socket is an
 * error ("another instance is running").  Missing path: 0.  0 or -1 with err.
 */
int daemon_remove_stale_socket(const char *path, char *err, size_t errlen);

/* Raise the soft open file limit to the hard limit (1048576 when the hard limit is
 * unlimited), so that as many connections fit as the system allows.  Returns the soft limit
 * in force afterwards, 0 if it cannot be read. */
rlim_t daemon_raise_nofile(void);

/* Ignore the signals whose default action ends a process and that no daemon uses (SIGALRM,
 * SIGVTALRM, SIGPROF, SIGIO, SIGPWR): a stray kill must not stop the mail filter. */
void daemon_ignore_signals(void);

/*
 * Descriptors a daemon keeps for itself beyond its client connections, so that a full house
 * of clients never leaves a check without a socket for its DNS query: per DNS server one UDP
 * and one TCP socket (c-ares retries truncated answers over TCP) for the queries and as many
 * again for the recursion probe run at start and at each reload; and DAEMON_FD_SLACK for the
 * log socket (reconnected when syslog restarts), the configuration file read at reload, the
 * pid file and /etc/resolv.conf.  nservers 0 (the servers of /etc/resolv.conf) counts as 3,
 * the most glibc reads.  Descriptors already open when the daemon starts serving are not
 * included: see daemon_fds_open().
 */
#define DAEMON_FD_SLACK 8
unsigned daemon_fd_reserve(size_t nservers);

/* How many descriptors the process has open now (from /proc/self/fd); -1 if unknown. */
int daemon_fds_open(void);

#endif
