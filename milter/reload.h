/*
 * reload.h - the signal thread of mxsane-milter: SIGUSR1 reloads the configuration.
 *
 * libmilter's smfi_main() owns SIGHUP, SIGTERM and SIGINT (its own sigwait thread); this
 * thread sigwaits SIGUSR1 (and SIGUSR2, used only to stop it).  Both must be blocked in
 * every thread: block them in main() before any thread is created.
 *
 * On SIGUSR1 the file is loaded and validated completely with config_load(); an invalid
 * file is logged with its "FILE:LINE: message" and the configuration in use stays; a valid
 * one is handed to the engine thread (engine_thread_reconfigure).  Connections are not touched.
 */
#ifndef MXSANE_MILTER_RELOAD_H
#define MXSANE_MILTER_RELOAD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct engine_thread;
struct config;

/* Load and validate the file a reload reads: path (an explicit -c FILE), or NULL for
 * CONFIG_DEFAULT_PATH.  The new configuration (caller unrefs), or NULL with err; *missing
 * tells that the default file does not exist (built-in defaults stay). */
struct config *reload_load(const char *path, bool *missing, char *err, size_t errlen);

/* Add the signals this module waits for to set. */
void reload_signals(sigset_t *set);

/* Start the thread.  path: the file to reload (NULL: CONFIG_DEFAULT_PATH, if it exists by
 * then); socket: milter.socket in use (a change is reported as needing a restart), NULL when
 * -p overrides it.
 * 0, or -1 with err. */
int reload_start(struct engine_thread *b, const char *path, const char *socket, char *err,
                 size_t errlen);
/* Before reload_start: metrics.listen of the configuration in use (NULL: not set), so that
 * a reload that changes it says it needs a restart.  Not called (-m overrides the key):
 * nothing is said.  0, or -1 on out of memory. */
int reload_watch_metrics(const char *listen);

/* Stop and join the thread (no-op if not started). */
void reload_stop(void);

#endif
