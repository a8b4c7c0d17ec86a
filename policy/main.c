/*
 * mxsane-policyd - Postfix SMTP access policy delegation server: judges the sender and
 * recipient domains of every RCPT with the mxsane engine and answers DUNNO, a reject or
 * tempfail reply, or PREPEND X-MXSane for a warning.
 *
 * This file is process plumbing only: options, configuration and reload, binding, privilege
 * drop, detaching, pid file, signals (signalfd on the event loop) and the clean stop.  The
 * connections are in server.c, the request parser in request.c, the decisions in core/.
 *
 * Exit status: 0 clean stop (or -n/-V), 64 usage, 69 cannot listen, 71 operating system
 * error, 78 configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "confread.h"
#include "daemon.h"
#include "engine.h"
#include "evloop.h"
#include "httpd.h"
#include "listen.h"
#include "log.h"
#include "resolver.h"
#include "server.h"

#define PROG "mxsane-policyd"

struct app {
	const char *conf_arg;    /* -c */
	const char *conf_path;   /* file the configuration came from, NULL: built-in defaults */
	const char *listen_arg;  /* -l */
	const char *metrics_arg; /* -m */
	const char *user;        /* -u */
	const char *pidfile;     /* -P */
	bool foreground, check_only, stdio, debug;

	struct config *cfg;
	struct listen_addr la;
	int lfd;
	struct evloop *loop;
	struct engine *e;
	struct server *srv;
	int sigfd;
	bool stopping;
	bool pid_written;
	rlim_t nofile;     /* open file limit (soft) */
	unsigned base_fds; /* descriptors open before the first client */

	/* metrics.listen (GET /metrics on the same loop), or mfd -1 */
	struct httpd_addr ma;
	int mfd;
	struct httpd *httpd;
	struct metrics_reloads reloads;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG
	        " [-c FILE] [-l LISTEN] [-m LISTEN] [-f] [-n] [-V] [-u USER[:GROUP]]\n"
	        "                      [-P PIDFILE] [-s] [-d]\n"
	        "  -c FILE    configuration file (default %s, built-in defaults if it is absent)\n"
	        "  -l LISTEN  listen here instead of policy.listen: inet:127.0.0.1:10045,\n"
	        "             inet:[::1]:10045 or unix:/path\n"
	        "  -m LISTEN  serve GET /metrics here instead of metrics.listen:\n"
	        "             inet:127.0.0.1:9326, inet:[::1]:9326 or unix:/path\n"
	        "  -f         stay in the foreground and log to stderr\n"
	        "  -n         check the configuration and exit\n"
	        "  -V         print the version and exit\n"
	        "  -u USER[:GROUP]  drop privileges to USER after binding (required as root)\n"
	        "  -P PIDFILE write the process id to PIDFILE\n"
	        "  -s         serve one connection on stdin/stdout (Postfix spawn(8)) and exit\n"
	        "  -d         debug logging\n",
	        CONFIG_DEFAULT_PATH);
}

/* A startup error: to stderr while there is a terminal to tell, and to the log.  In spawn
 * mode stderr is the connection to Postfix: never write there. */
static int fail_start(const struct app *a, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail_start(const struct app *a, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!a->foreground && !a->stdio)
		fprintf(stderr, PROG ": %s\n", msg);
	log_msg(LOG_ERR, "%s", msg);
	return code;
}

/* How many client connections the open file limit leaves room for, with the servers of cfg:
 * the limit, less what was open before the first client (base_fds), less the reserve. */
static unsigned fd_room(const struct app *a, const struct config *cfg)
{
	rlim_t keep = (rlim_t)a->base_fds + daemon_fd_reserve(cfg->nservers);
	if (a->nofile <= keep)
		return 1; /* one client at a time, rather than none */
	rlim_t room = a->nofile - keep;
	return room > 1000000 ? 1000000u : (unsigned)room;
}

/* Tell the server its cap; warn when policy.max_connections does not fit. */
static void apply_max_connections(struct app *a, const struct config *cfg)
{
	if (!a->nofile)
		return; /* the limit is unknown: policy.max_connections alone */
	unsigned room = fd_room(a, cfg);
	if (!a->stdio && room < cfg->policy_max_connections)
		log_msg(LOG_WARNING,
		        "policy.max_connections (%u) does not fit the open file limit (%llu): "
		        "at most %u connections are accepted, %u descriptors are kept for DNS "
		        "queries, the log and the listening socket; raise the limit "
		        "(systemd LimitNOFILE=, ulimit -n) or lower policy.max_connections",
		        cfg->policy_max_connections, (unsigned long long)a->nofile, room,
		        a->base_fds + daemon_fd_reserve(cfg->nservers));
	server_set_fd_room(a->srv, room, (unsigned long long)a->nofile);
}

/* The rule of config_load_chosen, the same for the three programs. */
static struct config *load_config(struct app *a, char *err, size_t errlen)
{
	bool defaults;
	struct config *c = config_load_chosen(a->conf_arg, &defaults, err, errlen);
	a->conf_path = defaults ? NULL : (a->conf_arg ? a->conf_arg : CONFIG_DEFAULT_PATH);
	return c;
}

/* SIGHUP/SIGUSR1: load the file again; swap it in only if it is valid and the engine takes
 * it.  Connections are kept either way. */
static void reload(struct app *a)
{
	char err[1024];
	struct stat sb;
	const char *path = a->conf_arg;
	if (!path && stat(CONFIG_DEFAULT_PATH, &sb) == 0)
		path = CONFIG_DEFAULT_PATH;
	if (!path) {
		log_msg(LOG_INFO, "reload: %s does not exist; keeping the built-in defaults",
		        CONFIG_DEFAULT_PATH);
		return;
	}
	struct config *n = config_load(path, err, sizeof(err));
	if (!n) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
		metrics_reload_record(&a->reloads, false, (int64_t)time(NULL));
		return;
	}
	if (!a->listen_arg && strcmp(n->policy_listen, a->cfg->policy_listen) != 0) {
		struct listen_addr la;
		if (listen_parse(n->policy_listen, &la, err, sizeof(err)) < 0) {
			log_msg(LOG_ERR,
			        "reload failed, keeping the running configuration: %s: "
			        "policy.listen: %s",
			        path, err);
			config_unref(n);
			metrics_reload_record(&a->reloads, false, (int64_t)time(NULL));
			return;
		}
		log_msg(LOG_WARNING,
		        "reload: policy.listen changed to %s; still listening on %s until " PROG
		        " is restarted",
		        la.text, a->la.text);
	}
	if (engine_reconfigure(a->e, n, err, sizeof(err)) < 0) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
		config_unref(n);
		metrics_reload_record(&a->reloads, false, (int64_t)time(NULL));
		return;
	}
	if (!a->metrics_arg &&
	    !(n->metrics_listen ? a->cfg->metrics_listen &&
	                                  strcmp(n->metrics_listen, a->cfg->metrics_listen) == 0
	                        : !a->cfg->metrics_listen))
		log_msg(LOG_WARNING,
		        "reload: metrics.listen changed to %s; metrics stay %s%s until " PROG
		        " is restarted",
		        n->metrics_listen ? n->metrics_listen : "(none)",
		        a->mfd >= 0 ? "on " : "off", a->mfd >= 0 ? a->ma.text : "");
	if (n->log_facility != a->cfg->log_facility)
		log_msg(LOG_WARNING, "reload: log.facility changes take effect after a restart");
	server_set_limits(a->srv, n->policy_idle_timeout, n->policy_max_connections);
	apply_max_connections(a, n);
	log_set_format(n->log_format);
	config_unref(a->cfg);
	a->cfg = n;
	a->conf_path = path;
	metrics_reload_record(&a->reloads, true, (int64_t)time(NULL));
	log_msg(LOG_INFO,
	        "configuration reloaded from %s (mode %s, idle_timeout %u s, "
	        "max_connections %u)",
	        path, n->mode == MODE_MONITOR ? "monitor" : "enforce", n->policy_idle_timeout,
	        n->policy_max_connections);
}

/* GET /metrics: the engine's metrics, then the policy service's own. */
static void render_metrics(void *arg, struct expo *x)
{
	struct app *a = arg;
	struct server_stats st;

	engine_write_metrics(a->e, x);
	server_get_stats(a->srv, &st);
	expo_family(x, "mxsane_policy_connections", "gauge", "Policy client connections open now.");
	expo_u64(x, "mxsane_policy_connections", "", st.open);
	expo_family(x, "mxsane_policy_connections_total", "counter",
	            "Policy client connections by what became of them: accepted (served), "
	            "refused (closed at once: over policy.max_connections or the open file "
	            "limit), closed_idle (closed by policy.idle_timeout), malformed (closed "
	            "for a malformed request).");
	expo_u64(x, "mxsane_policy_connections_total", "result=\"accepted\"", st.accepted);
	expo_u64(x, "mxsane_policy_connections_total", "result=\"refused\"", st.refused);
	expo_u64(x, "mxsane_policy_connections_total", "result=\"closed_idle\"", st.idle_closed);
	expo_u64(x, "mxsane_policy_connections_total", "result=\"malformed\"", st.malformed);
	expo_family(x, "mxsane_policy_requests_total", "counter", "Policy requests answered.");
	expo_u64(x, "mxsane_policy_requests_total", "", st.requests);
	metrics_write_reloads(x, &a->reloads);
	httpd_write_metrics(a->httpd, x);
	metrics_write_build_info(x, PROG);
}

static void on_done(void *arg)
{
	struct app *a = arg;
	evloop_stop(a->loop);
}

static void stop(struct app *a, const char *why)
{
	if (a->stopping) {
		log_msg(LOG_INFO, "%s: already stopping", why);
		return;
	}
	a->stopping = true;
	log_msg(LOG_INFO, "%s: stopping (answering requests in progress for at most %u ms)", why,
	        a->cfg->timeout_ms);
	server_shutdown(a->srv, a->cfg->timeout_ms + 200);
	/* Close the listening socket now: merely not accepting would let the kernel go on
	 * completing handshakes into the listen queue, and those clients would wait for us. */
	if (a->lfd >= 0) {
		listen_cleanup(&a->la);
		close(a->lfd);
		a->lfd = -1;
	}
}

static void on_signal(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct app *a = arg;
	struct signalfd_siginfo si;
	(void)loop;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
		case SIGUSR1: reload(a); break;
		case SIGTERM: stop(a, "SIGTERM"); break;
		case SIGINT: stop(a, "SIGINT"); break;
		default: break;
		}
	}
}

static void flush_log(void *arg)
{
	(void)arg;
	log_flush();
}

static int run(struct app *a)
{
	char err[1024];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int rc = EX_OK;

	log_open(PROG, a->foreground, a->cfg->log_facility);
	log_set_format(a->cfg->log_format);
	log_set_debug(a->debug);

	if (daemon_check_root(a->user, err, sizeof(err)) < 0)
		return fail_start(a, EX_USAGE, "%s", err);
	if (a->user && geteuid() == 0 &&
	    daemon_lookup_user(a->user, &uid, &gid, err, sizeof(err)) < 0)
		return fail_start(a, EX_USAGE, "-u %s: %s", a->user, err);
	a->nofile = daemon_raise_nofile();

	if (resolver_library_init() != 0)
		return fail_start(a, EX_OSERR, "cannot initialise c-ares");
	a->loop = evloop_new();
	if (!a->loop)
		return fail_start(a, EX_OSERR, "event loop: %s", strerror(errno));
	a->e = engine_new(a->loop, a->cfg, err, sizeof(err));
	if (!a->e)
		return fail_start(a, EX_CONFIG, "%s", err);

	if (!a->stdio) {
		a->lfd = listen_open(&a->la, uid, gid, err, sizeof(err));
		if (a->lfd < 0)
			return fail_start(a, EX_UNAVAILABLE, "%s", err);
		const char *mspec = a->metrics_arg ? a->metrics_arg : a->cfg->metrics_listen;
		if (mspec) {
			a->mfd = httpd_listen(mspec, uid, gid, &a->ma, err, sizeof(err));
			if (a->mfd < 0)
				return fail_start(a, EX_UNAVAILABLE, "%s", err);
		}
	}
	if (a->user && daemon_drop_privileges(a->user, err, sizeof(err)) < 0)
		return fail_start(a, EX_OSERR, "-u %s: %s", a->user, err);
	if (!a->foreground && !a->stdio && daemon_detach(err, sizeof(err)) < 0)
		return fail_start(a, EX_OSERR, "%s", err);
	if (a->pidfile) {
		if (daemon_write_pidfile(a->pidfile, err, sizeof(err)) < 0)
			return fail_start(a, EX_OSERR, "pid file: %s", err);
		a->pid_written = true;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->sigfd < 0 || evloop_watch(a->loop, a->sigfd, EV_READ, on_signal, a) < 0)
		return fail_start(a, EX_OSERR, "signalfd: %s", strerror(errno));

	a->srv = server_new(a->loop, a->e);
	if (!a->srv)
		return fail_start(a, EX_OSERR, "out of memory");
	server_set_limits(a->srv, a->cfg->policy_idle_timeout, a->cfg->policy_max_connections);
	/* Everything but the clients is open by now (the recursion probe's sockets may be too:
	 * they are in the reserve, so counting them as well errs on the safe side). */
	int open_now = daemon_fds_open();
	a->base_fds = open_now > 0 ? (unsigned)open_now : 16;
	if (a->mfd >= 0) /* the metrics clients' descriptors are kept out of the clients' room */
		a->base_fds += HTTPD_MAX_CONNS;
	apply_max_connections(a, a->cfg);
	server_set_done(a->srv, on_done, a);
	if (a->stdio) {
		if (server_add_stdio(a->srv, STDIN_FILENO, STDOUT_FILENO) < 0)
			return fail_start(a, EX_OSERR, "stdin/stdout: %s", strerror(errno));
		log_msg(LOG_DEBUG, "serving one connection on stdin/stdout");
	} else {
		if (server_add_listener(a->srv, a->lfd, a->la.text) < 0)
			return fail_start(a, EX_OSERR, "event loop: %s", strerror(errno));
		if (a->mfd >= 0 && !(a->httpd = httpd_new(a->loop, a->mfd, render_metrics, a)))
			return fail_start(a, EX_OSERR, "metrics: out of memory");
		log_msg(LOG_INFO,
		        "listening on %s (configuration %s, mode %s, metrics %s, idle_timeout %u "
		        "s, "
		        "max_connections %u, open file limit %llu)",
		        a->la.text, a->conf_path ? a->conf_path : "built-in defaults",
		        a->cfg->mode == MODE_MONITOR ? "monitor" : "enforce",
		        a->mfd >= 0 ? a->ma.text : "off", a->cfg->policy_idle_timeout,
		        a->cfg->policy_max_connections, (unsigned long long)a->nofile);
	}
	if (!a->conf_path)
		log_msg(LOG_WARNING, "WARNING: %s does not exist: running with built-in defaults",
		        CONFIG_DEFAULT_PATH);

	/* The decision lines of one loop iteration (often dozens of requests under load) go
	 * out with one write(2) before the loop waits again, instead of one each. */
	if (log_batch_begin())
		evloop_set_before_wait(a->loop, flush_log, NULL);
	if (evloop_run(a->loop) < 0) {
		log_msg(LOG_ERR, "event loop: %s", strerror(errno));
		rc = EX_OSERR;
	}
	struct server_stats st;
	server_get_stats(a->srv, &st);
	if (!a->stdio)
		log_msg(LOG_INFO,
		        "stopped: %llu connections served, %llu requests answered, %llu malformed, "
		        "%llu refused, %llu closed idle, %llu checks cancelled",
		        (unsigned long long)st.accepted, (unsigned long long)st.requests,
		        (unsigned long long)st.malformed, (unsigned long long)st.refused,
		        (unsigned long long)st.idle_closed, (unsigned long long)st.cancelled);
	log_batch_end();
	return rc;
}

static void cleanup(struct app *a)
{
	httpd_free(a->httpd);
	if (a->mfd >= 0) {
		httpd_listen_cleanup(&a->ma);
		close(a->mfd);
	}
	server_free(a->srv);
	engine_free(a->e);
	if (a->sigfd >= 0) {
		if (a->loop)
			evloop_unwatch(a->loop, a->sigfd);
		close(a->sigfd);
	}
	if (a->lfd >= 0) {
		listen_cleanup(&a->la);
		close(a->lfd);
	}
	evloop_free(a->loop);
	if (a->pid_written)
		daemon_remove_pidfile(a->pidfile);
	config_unref(a->cfg);
}

int main(int argc, char **argv)
{
	struct app a;
	char err[1024];
	int c;

	memset(&a, 0, sizeof(a));
	a.lfd = a.sigfd = a.mfd = -1;
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	                                         {"version", no_argument, NULL, 'V'},
	                                         {NULL, 0, NULL, 0}};
	while ((c = getopt_long(argc, argv, "c:l:m:fnVu:P:sdh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': a.conf_arg = optarg; break;
		case 'l': a.listen_arg = optarg; break;
		case 'm': a.metrics_arg = optarg; break;
		case 'f': a.foreground = true; break;
		case 'n': a.check_only = true; break;
		case 'V': printf(PROG " %s\n", MXSANE_VERSION); return EX_OK;
		case 'u': a.user = optarg; break;
		case 'P': a.pidfile = optarg; break;
		case 's': a.stdio = true; break;
		case 'd': a.debug = true; break;
		case 'h': usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	if (a.metrics_arg && !conf_metrics_listen_valid(a.metrics_arg)) {
		fprintf(stderr,
		        PROG ": -m %s: expected inet:IP:PORT, inet:[IPv6]:PORT or unix:/path\n",
		        a.metrics_arg);
		usage(stderr);
		return EX_USAGE;
	}
	if (a.pidfile && a.pidfile[0] != '/') {
		fprintf(stderr, PROG ": -P %s: the pid file path must be absolute\n", a.pidfile);
		return EX_USAGE;
	}

	/* Signals are taken from a signalfd in the loop: block them before anything else (the
	 * mask survives daemon_detach's fork).  A client that goes away must not kill us. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* signals it has no use for are never fatal (SIGUSR1 and SIGHUP reload, TERM and INT
	 * stop) */
	daemon_ignore_signals();
	signal(SIGUSR2, SIG_IGN);

	a.cfg = load_config(&a, err, sizeof(err));
	if (!a.cfg) {
		fprintf(stderr, PROG ": %s\n", err);
		return EX_CONFIG;
	}
	if (a.listen_arg) {
		if (listen_parse(a.listen_arg, &a.la, err, sizeof(err)) < 0) {
			fprintf(stderr, PROG ": -l %s\n", err);
			config_unref(a.cfg);
			return EX_USAGE;
		}
	} else if (listen_parse(a.cfg->policy_listen, &a.la, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s: policy.listen: %s\n",
		        a.conf_path ? a.conf_path : "built-in defaults", err);
		config_unref(a.cfg);
		return EX_CONFIG;
	}
	if (a.check_only) {
		if (!a.conf_path)
			fprintf(stderr, PROG ": warning: %s does not exist\n", CONFIG_DEFAULT_PATH);
		printf("configuration OK: %s\n",
		       a.conf_path ? a.conf_path
		                   : "built-in defaults, " CONFIG_DEFAULT_PATH " not found");
		config_unref(a.cfg);
		return EX_OK;
	}

	atomic_store(&a.reloads.last_ok_unix, (int64_t)time(NULL)); /* the load at start */
	int rc = run(&a);
	cleanup(&a);
	return rc;
}
