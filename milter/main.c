/*
 * mxsane-milter - libmilter daemon for Postfix (smtpd_milters) and Sendmail
 * (INPUT_MAIL_FILTER): checks the sender domain at MAIL FROM and each recipient domain at
 * RCPT TO, and rejects, tempfails or marks (X-MXSane header) mail to and from domains that
 * cannot receive mail.
 *
 * This file is the process: options, configuration, socket, privileges, threads, signals.
 * Start-up order: load the configuration; refuse root without -u; block the signals every
 * thread must leave to the signal threads (before any thread exists); check that the
 * engine can be created (engine_thread_new); open the socket as root; drop privileges; detach;
 * write the pid file; then supervise (supervise.h): the milter itself runs in a worker
 * process, replaced at once if it dies, while this process keeps the socket.  The worker
 * creates the engine, starts the engine thread and the SIGUSR1 thread and runs smfi_main()
 * until SIGTERM, then stops the engine thread (pending checks complete as tempfail).  The
 * supervisor removes the pid file and the socket last.
 *
 * Exit status: 0 ok, 64 usage, 69 socket or service failure, 71 system error, 78
 * configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "engine_thread.h"
#include "callbacks.h"
#include "config.h"
#include "confread.h"
#include "daemon.h"
#include "gate.h"
#include "httpd.h"
#include "log.h"
#include "reload.h"
#include "resolver.h"
#include "conn.h"
#include "socket.h"
#include "supervise.h"

/* Stack of libmilter's connection threads (see main()). */
#define MILTER_THREAD_STACK (512u * 1024u)

struct opts {
	const char *conf, *socket, *user, *pidfile, *metrics;
	bool foreground, check, version, debug;
};

static bool g_stderr_open = true; /* until detached */
static bool g_logging;            /* log_open done */
static bool g_foreground;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mxsane-milter [-c FILE] [-p SOCKET] [-m LISTEN] [-f] [-n] [-V]\n"
	        "                     [-u USER[:GROUP]] [-P PIDFILE] [-d]\n"
	        "  -c FILE     configuration file (default %s; built-in defaults if it does\n"
	        "              not exist)\n"
	        "  -p SOCKET   listen on SOCKET instead of milter.socket: unix:/path,\n"
	        "              inet:PORT@HOST or inet6:PORT@HOST\n"
	        "  -m LISTEN   serve GET /metrics here instead of metrics.listen:\n"
	        "              inet:127.0.0.1:9325, inet:[::1]:9325 or unix:/path\n"
	        "  -f          stay in the foreground and log to stderr\n"
	        "  -n          check the configuration and exit (0 valid, 78 invalid)\n"
	        "  -V          print the version and exit\n"
	        "  -u USER[:GROUP]  drop root to USER (and GROUP) after opening the socket\n"
	        "  -P PIDFILE  write the process id to PIDFILE\n"
	        "  -d          debug logging\n",
	        CONFIG_DEFAULT_PATH);
}

/* Say it where someone will see it: stderr until detached, and the log. */
static void vsay(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vsay(int prio, const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (g_logging)
		log_msg(prio, "%s", msg);
	if (g_stderr_open && (!g_logging || !g_foreground))
		fprintf(stderr, "mxsane-milter: %s\n", msg);
}

/* An error (stderr until detached, and the log). */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(LOG_ERR, fmt, ap);
	va_end(ap);
}

/* A warning, seen the same way. */
static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(LOG_WARNING, fmt, ap);
	va_end(ap);
}

/* An absolute copy of path (the daemon changes to / when it detaches). */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *out = NULL;
	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int ch;
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {NULL, 0, NULL, 0}};
	while ((ch = getopt_long(argc, argv, "c:p:m:fnVu:P:dh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->conf = optarg; break;
		case 'p': o->socket = optarg; break;
		case 'm': o->metrics = optarg; break;
		case 'f': o->foreground = true; break;
		case 'n': o->check = true; break;
		case 'V': o->version = true; break;
		case 'u': o->user = optarg; break;
		case 'P': o->pidfile = optarg; break;
		case 'd': o->debug = true; break;
		case 'h': usage(stdout); exit(EX_OK);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mxsane-milter: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	if (o->metrics && !conf_metrics_listen_valid(o->metrics)) {
		fprintf(stderr,
		        "mxsane-milter: -m %s: expected inet:IP:PORT, inet:[IPv6]:PORT or "
		        "unix:/path\n",
		        o->metrics);
		return -1;
	}
	if (o->socket && !o->socket[0]) {
		fprintf(stderr, "mxsane-milter: -p needs a socket\n");
		return -1;
	}
	return 0;
}

/* What a worker process needs; cfg is the supervisor's current configuration. */
struct worker_ctx {
	struct config *cfg;
	int metrics_fd;        /* metrics.listen's socket (opened by the supervisor), or -1 */
	bool metrics_fixed;    /* -m gave it: metrics.listen is not looked at */
	const char *conf_path; /* NULL: built-in defaults (reload reads the default path) */
	const char *socket;    /* milter.socket in use, NULL when -p overrides it */
};

/* The milter's part of GET /metrics (engine_thread_serve_metrics), in the engine thread. */
static void write_milter_metrics(void *arg, struct expo *x)
{
	uint64_t open, total;
	(void)arg;
	conn_sessions(&open, &total);
	expo_family(x, "mxsane_milter_sessions", "gauge",
	            "MTA connections (milter sessions) open now in this worker.");
	expo_u64(x, "mxsane_milter_sessions", "", open);
	expo_family(x, "mxsane_milter_sessions_total", "counter",
	            "MTA connections (milter sessions) this worker served.");
	expo_u64(x, "mxsane_milter_sessions_total", "", total);
	expo_family(x, "mxsane_milter_sessions_refused_total", "counter",
	            "MTA connections closed at once: no descriptor left under the open file "
	            "limit's reserve for DNS.");
	expo_u64(x, "mxsane_milter_sessions_refused_total", "", gate_refused());
}

/* The milter proper, in a worker process (supervise.h): the engine, its thread, the
 * SIGUSR1 thread and smfi_main() on the socket the supervisor opened.  Exit status. */
static int worker_main(void *arg)
{
	struct worker_ctx *w = arg;
	struct engine_thread *b;
	char err[1024];
	int rc = EX_OK;

	b = engine_thread_new(w->cfg, err, sizeof(err));
	if (!b) {
		report("cannot create the engine: %s", err);
		return EX_CONFIG;
	}
	callbacks_desc(b); /* registered by the supervisor; this points the callbacks at b */
	if (w->metrics_fd >= 0 &&
	    engine_thread_serve_metrics(b, w->metrics_fd, write_milter_metrics, NULL) < 0) {
		report("metrics: out of memory");
		engine_thread_free(b);
		return EX_OSERR;
	}
	if (!w->metrics_fixed && reload_watch_metrics(w->cfg->metrics_listen) < 0) {
		report("out of memory");
		engine_thread_free(b);
		return EX_OSERR;
	}
	if (engine_thread_start(b, err, sizeof(err)) < 0 ||
	    reload_start(b, w->conf_path, w->socket, err, sizeof(err)) < 0) {
		report("%s", err);
		reload_stop();
		engine_thread_free(b);
		return EX_OSERR;
	}
	/* libmilter starts a thread per MTA connection (one per SMTP session for Postfix) with
	 * default attributes: an 8 MiB stack each, of which glibc keeps only 40 MiB cached, so
	 * beyond 5 concurrent sessions every connection paid an mmap, a munmap and fresh page
	 * faults.  The callbacks need a few KiB (the checks themselves run on the engine
	 * thread, started above with the usual size). */
	pthread_attr_t ta;
	if (pthread_attr_init(&ta) == 0) {
		if (pthread_attr_setstacksize(&ta, MILTER_THREAD_STACK) != 0 ||
		    pthread_setattr_default_np(&ta) != 0)
			log_msg(LOG_WARNING,
			        "cannot set the connection threads' stack size: keeping "
			        "the default");
		pthread_attr_destroy(&ta);
	}
	if (smfi_main() != MI_SUCCESS) {
		report("the milter library stopped with an error (see the mail log)");
		rc = EX_UNAVAILABLE;
	}
	reload_stop();
	/* Pending checks complete (tempfail) and the engine thread ends.  After smfi_main()
	 * returns, libmilter's workers may still serve open connections until the process
	 * exits: the engine thread stays allocated (reachable through the callbacks) and answers
	 * them 451 4.3.0. */
	engine_thread_stop(b);
	return rc;
}

/* SIGUSR1 in the supervisor: the worker reloads (and logs) on its own; this keeps the same
 * file for a worker started later, silently, and only when it is valid. */
static void supervisor_reload(void *arg)
{
	struct worker_ctx *w = arg;
	char err[1024];
	bool missing;
	struct config *cfg = reload_load(w->conf_path, &missing, err, sizeof(err));
	if (cfg) {
		config_unref(w->cfg);
		w->cfg = cfg;
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct config *cfg = NULL;
	struct engine_thread *b = NULL;
	char err[1024];
	char *conf_path = NULL, *pidfile = NULL;
	bool defaults = false, pid_written = false;
	uid_t uid = 0;
	gid_t gid = 0;
	int rc = EX_OK;
	struct httpd_addr ma;
	int mfd = -1;

	if (parse_opts(argc, argv, &o) < 0)
		return EX_USAGE;
	if (o.version) {
		printf("mxsane-milter %s\n", MXSANE_VERSION);
		return EX_OK;
	}

	/* Configuration: -c FILE, else the default file, else built-in defaults (the rule of
	 * config_load_chosen, the same for the three programs). */
	if (o.conf && !(conf_path = absolute(o.conf))) {
		fprintf(stderr, "mxsane-milter: out of memory\n");
		return EX_OSERR;
	}
	cfg = config_load_chosen(conf_path, &defaults, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "mxsane-milter: %s\n", err);
		free(conf_path);
		return EX_CONFIG;
	}
	if (!defaults && !conf_path && !(conf_path = strdup(CONFIG_DEFAULT_PATH))) {
		fprintf(stderr, "mxsane-milter: out of memory\n");
		config_unref(cfg);
		return EX_OSERR;
	}
	if (o.check) {
		if (defaults)
			fprintf(stderr, "mxsane-milter: warning: %s does not exist\n",
			        CONFIG_DEFAULT_PATH);
		printf("configuration OK: %s%s\n", defaults ? "built-in defaults, " : "",
		       defaults ? CONFIG_DEFAULT_PATH " not found" : conf_path);
		config_unref(cfg);
		free(conf_path);
		return EX_OK;
	}
	const char *spec = o.socket ? o.socket : cfg->milter_socket;

	g_foreground = o.foreground;
	log_open("mxsane-milter", o.foreground, cfg->log_facility);
	log_set_format(cfg->log_format);
	log_set_debug(o.debug);
	g_logging = true;

	if (daemon_check_root(o.user, err, sizeof(err)) < 0) {
		report("%s", err);
		rc = EX_USAGE;
		goto out;
	}
	if (o.user && daemon_lookup_user(o.user, &uid, &gid, err, sizeof(err)) < 0) {
		report("-u %s: %s", o.user, err);
		rc = EX_USAGE;
		goto out;
	}
	/* As many sessions as the system allows; a share of the limit stays for DNS. */
	rlim_t nofile = daemon_raise_nofile();
	gate_init(nofile, daemon_fd_reserve(cfg->nservers));
	if (o.pidfile && !(pidfile = absolute(o.pidfile))) {
		report("out of memory");
		rc = EX_OSERR;
		goto out;
	}

	/* Before any thread exists: the signals belong to the two signal threads (libmilter's
	 * for HUP/TERM/INT, ours for USR1), every other thread inherits this mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	reload_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* signals it has no use for are never fatal (SIGUSR2 is blocked above: its reload
	 * thread uses it internally) */
	daemon_ignore_signals();

	if (resolver_library_init() != 0) {
		report("cannot initialise c-ares");
		rc = EX_OSERR;
		goto out;
	}
	/* Each worker creates its own engine; this one only proves, before anything else
	 * happens, that the configuration makes one. */
	b = engine_thread_new(cfg, err, sizeof(err));
	if (!b) {
		report("cannot create the engine: %s", err);
		rc = EX_CONFIG;
		goto out;
	}
	engine_thread_free(b);
	if (smfi_register(*callbacks_desc(NULL)) != MI_SUCCESS) {
		report("smfi_register failed");
		rc = EX_OSERR;
		goto out;
	}
	/* libmilter waits this long for the MTA's next command (and to write a reply) before it
	 * closes the session; its own default is 7210 s.  See milter.timeout in mxsane.conf(5)
	 * for why it cannot be as short as the MTA's wait for us. */
	smfi_settimeout((int)cfg->milter_timeout);
	if (milter_socket_open(spec, o.user && geteuid() == 0, uid, gid, err, sizeof(err)) < 0) {
		report("%s", err);
		rc = EX_UNAVAILABLE;
		goto out;
	}
	const char *mspec = o.metrics ? o.metrics : cfg->metrics_listen;
	if (mspec) {
		bool own = o.user && geteuid() == 0;
		mfd = httpd_listen(mspec, own ? uid : (uid_t)-1, own ? gid : (gid_t)-1, &ma, err,
		                   sizeof(err));
		if (mfd < 0) {
			report("%s", err);
			rc = EX_UNAVAILABLE;
			goto out;
		}
	}
	/* Whoever can connect to the socket speaks to libmilter, which trusts its peer: one
	 * malformed macro packet kills a worker and the sessions on it (docs/robustness.md). */
	if (milter_socket_exposed(spec))
		warn("WARNING: socket %s accepts connections from other machines: anyone who can "
		     "reach it can make the milter drop the sessions in progress; use a unix "
		     "socket (created mode 0660) or a loopback address, or firewall the port",
		     spec);
	if (o.user && daemon_drop_privileges(o.user, err, sizeof(err)) < 0) {
		report("-u %s: %s", o.user, err);
		rc = EX_OSERR;
		goto out;
	}
	if (!o.foreground) {
		if (daemon_detach(err, sizeof(err)) < 0) {
			report("%s", err);
			rc = EX_OSERR;
			goto out;
		}
		g_stderr_open = false;
	}
	if (pidfile) {
		if (daemon_write_pidfile(pidfile, err, sizeof(err)) < 0) {
			report("pid file: %s", err);
			rc = EX_OSERR;
			goto out;
		}
		pid_written = true;
	}
	log_msg(LOG_INFO,
	        "mxsane-milter %s listening on %s, mode %s, configuration %s, metrics %s, "
	        "timeout %u s, open file limit %llu (MTA connections refused from descriptor %u "
	        "on)",
	        MXSANE_VERSION, spec, cfg->mode == MODE_MONITOR ? "monitor" : "enforce",
	        defaults ? "built-in defaults" : conf_path, mfd >= 0 ? ma.text : "off",
	        cfg->milter_timeout, (unsigned long long)nofile, gate_ceiling());
	if (defaults)
		log_msg(LOG_WARNING, "WARNING: %s does not exist: running with built-in defaults",
		        CONFIG_DEFAULT_PATH);
	struct worker_ctx w = {.cfg = config_ref(cfg),
	                       .metrics_fd = mfd,
	                       .metrics_fixed = o.metrics != NULL,
	                       .conf_path = conf_path,
	                       .socket = o.socket ? NULL : spec};
	struct supervise_ops ops = {.worker = worker_main, .reload = supervisor_reload, .arg = &w};
	rc = supervise(&ops);
	config_unref(w.cfg);
	log_msg(LOG_INFO, "stopping");

out:
	config_unref(cfg);
	milter_socket_cleanup();
	if (mfd >= 0) {
		httpd_listen_cleanup(&ma);
		close(mfd);
	}
	if (pid_written)
		daemon_remove_pidfile(pidfile);
	if (rc == EX_OK)
		log_msg(LOG_INFO, "stopped");
	free(pidfile);
	free(conf_path);
	return rc;
}
