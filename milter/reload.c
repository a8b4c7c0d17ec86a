/*
 * reload.c - SIGUSR1: load, validate, hand over; never drop the configuration in use.
 */
#include "reload.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine_thread.h"
#include "config.h"
#include "daemon.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"

static pthread_t g_thread;
static bool g_started;
static atomic_bool g_stop;
static struct engine_thread *g_et;
static char *g_path;   /* explicit -c FILE, or NULL */
static char *g_socket; /* socket in use */
/* metrics.listen of the configuration the worker started with ("" when not set), or NULL
 * when -m overrides it: a change needs a restart, and a reload says so */
static char *g_metrics;

void reload_signals(sigset_t *set)
{
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

struct config *reload_load(const char *path, bool *missing, char *err, size_t errlen)
{
	const char *p = path ? path : CONFIG_DEFAULT_PATH;
	struct stat st;

	*missing = false;
	if (!path && stat(p, &st) < 0 && errno == ENOENT) {
		*missing = true;
		snprintf(err, errlen, "%s does not exist", p);
		return NULL;
	}
	return config_load(p, err, errlen);
}

static void reload(void)
{
	const char *path = g_path ? g_path : CONFIG_DEFAULT_PATH;
	char err[1024];
	bool missing;

	struct config *cfg = reload_load(g_path, &missing, err, sizeof(err));
	if (!cfg) {
		log_msg(missing ? LOG_WARNING : LOG_ERR,
		        "reload: %s: keeping the configuration in use", err);
		metrics_reload_record(engine_thread_reloads(g_et), false, (int64_t)time(NULL));
		return;
	}
	if (cfg->milter_socket && g_socket && strcmp(cfg->milter_socket, g_socket) != 0)
		log_msg(LOG_WARNING,
		        "reload: milter.socket changed to %s: still listening on %s until "
		        "restarted",
		        cfg->milter_socket, g_socket);
	if (g_metrics && strcmp(cfg->metrics_listen ? cfg->metrics_listen : "", g_metrics) != 0)
		log_msg(LOG_WARNING,
		        "reload: metrics.listen changed to %s: metrics stay %s%s until restarted",
		        cfg->metrics_listen ? cfg->metrics_listen : "(none)",
		        g_metrics[0] ? "on " : "off", g_metrics);
	log_msg(LOG_INFO, "reload: %s is valid, switching to it", path);
	gate_set_reserve(daemon_fd_reserve(cfg->nservers)); /* the servers may have changed */
	engine_thread_reconfigure(g_et, cfg);
}

static void *reload_main(void *arg)
{
	sigset_t set;
	(void)arg;
	pthread_setname_np(pthread_self(), "mxs-signals");
	sigemptyset(&set);
	reload_signals(&set);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (atomic_load(&g_stop))
			break;
		if (sig == SIGUSR1)
			reload();
	}
	return NULL;
}

int reload_start(struct engine_thread *b, const char *path, const char *socket, char *err,
                 size_t errlen)
{
	g_et = b;
	g_path = path ? strdup(path) : NULL;
	g_socket = socket ? strdup(socket) : NULL;
	if ((path && !g_path) || (socket && !g_socket)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = pthread_create(&g_thread, NULL, reload_main, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the signal thread: %s", strerror(rc));
		return -1;
	}
	g_started = true;
	return 0;
}

void reload_stop(void)
{
	if (g_started) {
		atomic_store(&g_stop, true);
		pthread_kill(g_thread, SIGUSR2);
		pthread_join(g_thread, NULL);
		g_started = false;
	}
	free(g_path);
	free(g_socket);
	free(g_metrics);
	g_path = g_socket = g_metrics = NULL;
}

int reload_watch_metrics(const char *listen)
{
	free(g_metrics);
	g_metrics = strdup(listen ? listen : "");
	return g_metrics ? 0 : -1;
}
