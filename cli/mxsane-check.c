/*
 * mxsane-check - diagnose a domain's (or address's) mail routing the way the daemons judge
 * it: the MX set with its TTLs, each target and its addresses, what is wrong and why, the
 * verdict, and the action and SMTP reply a daemon would give.  --smtp probes every usable
 * address on port 25 (in parallel, banner, EHLO, optionally RCPT); --all-ns asks each of the
 * zone's authoritative servers; -f checks a list, many NAMEs at once, printed in input order.
 *
 * This file: options, the queue of NAMEs (at most --concurrency in flight, reports printed
 * in input order), and the steps of one NAME (engine check, then probes).  report.c renders,
 * smtp.c probes, allns.c asks the authoritative servers.
 *
 * Exit status: the worst over all NAMEs of 0 accepted (warn included), 3 a server problem
 * (SMTP or propagation), 2 would be tempfailed, 1 would be rejected, 65 a NAME is no domain
 * and no address; 64 usage error, 66 -f FILE unreadable, 78 configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "engine.h"
#include "evloop.h"
#include "log.h"
#include "resolver.h"

#define LINE_MAX_IN     1024   /* octets of one -f line; a longer line is an input error */
#define QUEUE_MAX       100000 /* NAMEs read ahead of the one printed next */
#define PROBES_MAX      32     /* addresses probed per NAME */
#define CONCURRENCY_MAX 10000

struct job;

struct run {
	struct opts o;
	struct evloop *loop;
	struct engine *e;
	struct resolver *rec; /* --all-ns: the resolver that finds the zone's servers */
	FILE *in;             /* -f */
	char **names;
	int nnames, next_name;
	bool eof;
	struct job *head, *tail; /* in input order, printed from head */
	size_t queued, active;
	int status;
};

struct job {
	struct run *run;
	struct job *next;
	char *name;
	struct arena ar;
	struct report rp;
	struct smtp_set *smtp;
	struct smtp_result *probes;
	size_t *probe_mx;
	const char **probe_addr;
	struct allns *allns;
	struct allns_report *prop;
	unsigned pending; /* steps still running: engine check, probes */
	bool done;
	char *out;
	size_t outlen;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mxsane-check [-c FILE] [-s SERVER[:PORT]] [-r sender|recipient] [-j]\n"
	        "                    [--smtp [--rcpt[=ADDRESS]] [--smtp-port N] [--smtp-timeout "
	        "MS]\n"
	        "                     [--helo NAME]] [--all-ns [--ns-port N]]\n"
	        "                    [--concurrency N] (NAME... | -f FILE | -f -)\n"
	        "       mxsane-check -V | --help\n"
	        "NAME is a domain (example.net) or an address (bob@example.net, "
	        "<bob@example.net>).\n"
	        "  -c FILE          configuration file (default %s, if it exists)\n"
	        "  -s SERVER        ask this DNS server (IP, IP:PORT or [IPv6]:PORT) instead of\n"
	        "                   resolver.servers\n"
	        "  -r ROLE          judge NAME as a sender or a recipient domain (default "
	        "recipient)\n"
	        "  -j               one JSON object per NAME instead of the checklist\n"
	        "  -f FILE          check the NAMEs in FILE (- = standard input), one per line\n"
	        "                   (blank lines and lines starting with # are skipped); one line\n"
	        "                   (or one JSON object with -j) per NAME, in input order\n"
	        "  --concurrency N  NAMEs checked at once (default 64 with -f, 1 for NAMEs on the\n"
	        "                   command line; 1..%d)\n"
	        "  --smtp           connect to port 25 of every usable address of every MX "
	        "target,\n"
	        "                   all at once: banner, EHLO (STARTTLS offered?), QUIT\n"
	        "  --rcpt[=ADDRESS] with --smtp: also MAIL FROM:<> and RCPT TO:<ADDRESS>\n"
	        "                   (default postmaster@DOMAIN); never DATA\n"
	        "  --smtp-port N    port to probe (default 25)\n"
	        "  --smtp-timeout MS  one budget for all the probes of a NAME (default 10000)\n"
	        "  --helo NAME      name sent with EHLO (default: this host's name)\n"
	        "  --all-ns         ask every address of each of the zone's name servers,\n"
	        "                   without recursion, for the MX set and the SOA serial\n"
	        "  --ns-port N      port asked on the name servers (default 53)\n"
	        "exit: 0 accepted, 1 would be rejected, 2 would be tempfailed, 3 the servers have\n"
	        "      a problem (no MX target answers on port 25, one refuses the domain's mail\n"
	        "      while another takes it, the name servers disagree), 64 usage, 65 a NAME is\n"
	        "      no domain and no address, 66 FILE unreadable, 78 config; over many NAMEs\n"
	        "      the worst: 65, then 1, 2, 3, 0\n",
	        CONFIG_DEFAULT_PATH, CONCURRENCY_MAX);
}

static void oom(void)
{
	fprintf(stderr, "mxsane-check: out of memory\n");
	exit(71);
}

/* Is NAME something to check?  A domain must be a valid name, an address must parse; the
 * null address "<>" and address literals are valid input that the engine skips. */
static bool input_valid(const struct check_request *req, char *why, size_t whylen)
{
	if (req->domain) {
		char dom[DOMAIN_MAX + 1], reason[128];
		if (domain_normalize(req->domain, strlen(req->domain), dom, reason, sizeof(reason)))
			return true;
		snprintf(why, whylen, "invalid domain: %s", reason);
		return false;
	}
	struct addr_parsed ap;
	if (addr_parse(req->address, req->address_len, &ap))
		return true;
	snprintf(why, whylen, "unparseable address: %s", ap.reason);
	return false;
}

/* ---------------------------------------------------------------- one NAME */

static void job_finish(struct job *j)
{
	struct run *run = j->run;
	FILE *f;
	report_judge(&j->rp, &j->ar);
	f = open_memstream(&j->out, &j->outlen);
	if (!f)
		oom();
	report_write(f, &j->rp);
	if (fclose(f) != 0)
		oom();
	smtp_free(j->smtp);
	j->smtp = NULL;
	allns_free(j->allns);
	j->allns = NULL;
	j->done = true;
	run->active--;
	run->status = status_worst(run->status, j->rp.status);
}

static void step_done(struct job *j)
{
	if (--j->pending == 0)
		job_finish(j);
}

static void on_probes(void *arg)
{
	step_done(arg);
}

static void start_probes(struct job *j)
{
	const struct opts *o = &j->run->o;
	const struct cres *r = j->rp.r;
	size_t n = 0;
	if (r->verdict == V_NULL_MX || r->verdict == V_NXDOMAIN || r->verdict == V_SKIPPED)
		return;
	j->probes = arena_alloc(&j->ar, sizeof(*j->probes) * PROBES_MAX);
	j->probe_mx = arena_alloc(&j->ar, sizeof(*j->probe_mx) * PROBES_MAX);
	j->probe_addr = arena_alloc(&j->ar, sizeof(char *) * PROBES_MAX);
	if (!j->probes || !j->probe_mx || !j->probe_addr)
		oom();
	for (size_t i = 0; i < r->nmx; i++)
		for (size_t k = 0; k < r->mx[i].naddr; k++) {
			if (r->mx[i].bogus[k] || n == PROBES_MAX)
				continue;
			j->probe_addr[n] = r->mx[i].addrs[k];
			j->probe_mx[n++] = i;
		}
	if (!n)
		return;
	const char *rcpt = NULL;
	if (o->rcpt)
		rcpt = o->rcpt_addr ? o->rcpt_addr
		                    : arena_printf(&j->ar, "postmaster@%s", r->domain);
	struct smtp_params p = {.port = o->smtp_port,
	                        .timeout_ms = o->smtp_timeout_ms,
	                        .helo = o->helo,
	                        .rcpt = rcpt};
	j->smtp = smtp_start(j->run->loop, j->probe_addr, n, &p, j->probes, on_probes, j);
	if (!j->smtp)
		oom();
	j->rp.probes = j->probes;
	j->rp.probe_mx = j->probe_mx;
	j->rp.nprobes = n;
	j->pending++;
}

static void on_allns(void *arg)
{
	step_done(arg);
}

static void start_allns(struct job *j)
{
	struct run *run = j->run;
	if (j->rp.r->verdict == V_SKIPPED || !j->rp.r->domain[0])
		return;
	j->prop = arena_alloc(&j->ar, sizeof(*j->prop));
	if (!j->prop)
		oom();
	j->allns = allns_start(run->loop, run->rec, j->rp.r->domain, run->o.dns_port,
	                       run->o.timeout_ms, j->prop, on_allns, j);
	if (!j->allns)
		oom();
	j->rp.prop = j->prop;
	j->pending++;
}

static void on_result(void *arg, const struct check_result *r)
{
	struct job *j = arg;
	j->rp.r = cres_copy(&j->ar, r);
	if (!j->rp.r)
		oom();
	if (j->run->o.smtp)
		start_probes(j);
	if (j->run->o.all_ns)
		start_allns(j);
	step_done(j);
}

static void job_start(struct run *run, char *name, const char *input_error)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		oom();
	j->run = run;
	j->name = name;
	j->rp.o = &run->o;
	j->rp.name = name;
	if (run->tail)
		run->tail->next = j;
	else
		run->head = j;
	run->tail = j;
	run->queued++;
	run->active++;
	j->pending = 1;
	char why[160];
	struct check_request req = {.role = run->o.role, .want_addresses = true};
	if (!input_error) {
		if (strchr(name, '@') || name[0] == '<') {
			req.address = name;
			req.address_len = strlen(name);
		} else {
			req.domain = name;
		}
		if (!input_valid(&req, why, sizeof(why)))
			input_error = why;
	}
	if (input_error) {
		/* a typo is not a domain that would be accepted: say so, and exit 65 */
		j->rp.input_error = arena_strdup(&j->ar, input_error);
		step_done(j);
		return;
	}
	engine_check(run->e, &req, on_result, j);
}

/* ---------------------------------------------------------------- the queue */

/* The next NAME (malloc'd) or NULL at the end; *err set for a line that is no NAME. */
static char *next_name(struct run *run, const char **err)
{
	*err = NULL;
	if (!run->in) {
		if (run->next_name >= run->nnames)
			return NULL;
		char *s = strdup(run->names[run->next_name++]);
		if (!s)
			oom();
		return s;
	}
	for (;;) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n = getline(&line, &cap, run->in);
		if (n < 0) {
			free(line);
			if (ferror(run->in))
				fprintf(stderr, "mxsane-check: reading the NAMEs: %s\n",
				        strerror(errno));
			return NULL;
		}
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		               line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		size_t lead = strspn(line, " \t");
		if (strlen(line) != len) {
			*err = "the line holds a NUL octet";
			line[strlen(line)] = '\0';
		} else if (len - lead > LINE_MAX_IN) {
			*err = "longer than 1024 octets";
			line[lead + 64] = '\0';
		} else if (line[lead] == '\0' || line[lead] == '#') {
			free(line);
			continue;
		}
		memmove(line, line + lead, strlen(line + lead) + 1);
		return line;
	}
}

static void fill(struct run *run)
{
	while (!run->eof && run->active < run->o.concurrency && run->queued < QUEUE_MAX) {
		const char *err;
		char *name = next_name(run, &err);
		if (!name) {
			run->eof = true;
			break;
		}
		job_start(run, name, err);
	}
}

static void flush(struct run *run)
{
	bool any = false;
	while (run->head && run->head->done) {
		struct job *j = run->head;
		if (j->outlen)
			fwrite(j->out, 1, j->outlen,
			       j->rp.input_error && !run->o.json && !run->o.batch ? stderr
			                                                          : stdout);
		run->head = j->next;
		if (!run->head)
			run->tail = NULL;
		run->queued--;
		free(j->out);
		free(j->name);
		arena_free(&j->ar);
		free(j);
		any = true;
	}
	if (any)
		fflush(stdout);
}

/* ---------------------------------------------------------------- options */

static bool number(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "mxsane-check: bad number \"%s\" (%ld..%ld)\n", s, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

/* Only what a host name or address literal holds: nothing that could end the command. */
static bool helo_ok(const char *s)
{
	size_t n = strlen(s);
	return n && n < 256 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789.-[]:_") == n;
}

/* Printable ASCII without space or angle brackets, with an @: nothing that could end the
 * RCPT command or add another. */
static bool rcpt_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > 254 || !strchr(s, '@'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '<' || s[i] == '>')
			return false;
	return true;
}

int main(int argc, char **argv)
{
	enum { O_SMTP = 256, O_SPORT, O_STIME, O_RCPT, O_HELO, O_ALLNS, O_NSPORT, O_CONC };
	static const struct option longopts[] = {
	        {"smtp", no_argument, NULL, O_SMTP},
	        {"smtp-port", required_argument, NULL, O_SPORT},
	        {"smtp-timeout", required_argument, NULL, O_STIME},
	        {"rcpt", optional_argument, NULL, O_RCPT},
	        {"helo", required_argument, NULL, O_HELO},
	        {"all-ns", no_argument, NULL, O_ALLNS},
	        {"ns-port", required_argument, NULL, O_NSPORT},
	        {"concurrency", required_argument, NULL, O_CONC},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct run run = {.o = {.role = ROLE_RECIPIENT,
	                        .smtp_port = 25,
	                        .smtp_timeout_ms = 10000,
	                        .dns_port = 53,
	                        .concurrency = 64}};
	struct opts *o = &run.o;
	const char *conf = NULL, *server = NULL, *file = NULL;
	char err[512];
	int c;
	long v;
	bool conc_set = false;

	if (gethostname(o->helo, sizeof(o->helo) - 1) != 0 || !helo_ok(o->helo))
		snprintf(o->helo, sizeof(o->helo), "localhost");
	while ((c = getopt_long(argc, argv, "c:s:r:f:jhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 's': server = optarg; break;
		case 'f': file = optarg; break;
		case 'j': o->json = true; break;
		case O_SMTP: o->smtp = true; break;
		case O_ALLNS: o->all_ns = true; break;
		case 'r':
			if (strcmp(optarg, "sender") == 0)
				o->role = ROLE_SENDER;
			else if (strcmp(optarg, "recipient") == 0)
				o->role = ROLE_RECIPIENT;
			else {
				fprintf(stderr, "mxsane-check: -r takes sender or recipient\n");
				return EX_USAGE_;
			}
			break;
		case O_SPORT:
			if (!number(optarg, 1, 65535, &v))
				return EX_USAGE_;
			o->smtp_port = (int)v;
			break;
		case O_NSPORT:
			if (!number(optarg, 1, 65535, &v))
				return EX_USAGE_;
			o->dns_port = (int)v;
			break;
		case O_STIME:
			if (!number(optarg, 1, 600000, &v))
				return EX_USAGE_;
			o->smtp_timeout_ms = (int)v;
			break;
		case O_CONC:
			if (!number(optarg, 1, CONCURRENCY_MAX, &v))
				return EX_USAGE_;
			o->concurrency = (unsigned)v;
			conc_set = true;
			break;
		case O_RCPT:
			o->rcpt = true;
			if (optarg && !rcpt_ok(optarg)) {
				fprintf(stderr, "mxsane-check: --rcpt: not an address: %s\n",
				        optarg);
				return EX_USAGE_;
			}
			o->rcpt_addr = optarg;
			break;
		case O_HELO:
			if (!helo_ok(optarg)) {
				fprintf(stderr, "mxsane-check: --helo: not a host name: %s\n",
				        optarg);
				return EX_USAGE_;
			}
			snprintf(o->helo, sizeof(o->helo), "%s", optarg);
			break;
		case 'h': usage(stdout); return EX_OK_;
		case 'V': printf("mxsane-check %s\n", MXSANE_VERSION); return EX_OK_;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	if ((optind >= argc) == !file) {
		if (file)
			fprintf(stderr,
			        "mxsane-check: -f and NAMEs on the command line: choose one\n");
		usage(stderr);
		return EX_USAGE_;
	}
	if (o->rcpt && !o->smtp) {
		fprintf(stderr, "mxsane-check: --rcpt needs --smtp\n");
		return EX_USAGE_;
	}
	if (file) {
		o->batch = true;
		run.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (!run.in) {
			fprintf(stderr, "mxsane-check: %s: %s\n", file, strerror(errno));
			return EX_NOINPUT;
		}
	} else {
		run.names = argv + optind;
		run.nnames = argc - optind;
		/* NAMEs on the command line are checked one after another unless asked
		 * otherwise: a NAME given twice is answered from the cache the second time, and
		 * the DNS outage guard sees the checks in order, as a daemon would */
		if (!conc_set)
			o->concurrency = 1;
	}

	bool defaults;
	struct config *cfg = config_load_chosen(conf, &defaults, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "mxsane-check: %s\n", err);
		return EX_CONFIG_;
	}
	if (defaults)
		fprintf(stderr, "mxsane-check: warning: %s does not exist: built-in defaults\n",
		        CONFIG_DEFAULT_PATH);
	if (server && config_set_servers(cfg, &server, 1, err, sizeof(err)) < 0) {
		fprintf(stderr, "mxsane-check: -s %s\n", err);
		config_unref(cfg);
		return EX_USAGE_;
	}
	/* Records keep their own TTLs here (each is shown, and one above a day is worth a
	 * note); the daemons' bounds are applied only to say how long they cache the verdict. */
	o->cache_min_ttl = cfg->cache_min_ttl;
	o->cache_max_ttl = cfg->cache_max_ttl;
	o->timeout_ms = cfg->timeout_ms;
	cfg->cache_min_ttl = 0;
	cfg->cache_max_ttl = INT32_MAX;
	/* -f with --smtp keeps up to --concurrency x 32 probe sockets open besides the DNS
	 * ones: take the whole allowance the system grants, as a daemon would */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	log_open("mxsane-check", true, LOG_MAIL);
	if (resolver_library_init() != 0) {
		fprintf(stderr, "mxsane-check: cannot initialise c-ares\n");
		return EX_CONFIG_;
	}
	run.loop = evloop_new();
	if (!run.loop) {
		fprintf(stderr, "mxsane-check: %s\n", strerror(errno));
		return EX_CONFIG_;
	}
	run.e = engine_new(run.loop, cfg, err, sizeof(err));
	if (!run.e) {
		fprintf(stderr, "mxsane-check: %s\n", err);
		return server ? EX_USAGE_ : EX_CONFIG_;
	}
	engine_set_wait_all(run.e, true);
	if (o->all_ns) {
		run.rec = resolver_new(run.loop, cfg->servers, cfg->nservers, cfg->timeout_ms, err,
		                       sizeof(err));
		if (!run.rec) {
			fprintf(stderr, "mxsane-check: %s\n", err);
			return EX_CONFIG_;
		}
	}
	uint64_t probe_end = evloop_update_time(run.loop) + cfg->timeout_ms;

	for (;;) {
		fill(&run);
		flush(&run);
		if (run.eof && !run.head)
			break;
		if (evloop_run_once(run.loop, -1) < 0) {
			fprintf(stderr, "mxsane-check: event loop: %s\n", strerror(errno));
			return EX_CONFIG_;
		}
	}
	/* the warning about a server that does not recurse is printed before the program ends;
	 * it was asked when the engine started, and is not waited for beyond one budget from then
	 */
	while (engine_probe_pending(run.e)) {
		uint64_t now = evloop_update_time(run.loop);
		if (now >= probe_end || evloop_run_once(run.loop, (int)(probe_end - now)) < 0)
			break;
	}
	engine_free(run.e);
	resolver_free(run.rec);
	evloop_free(run.loop);
	config_unref(cfg);
	if (run.in && run.in != stdin)
		fclose(run.in);
	return run.status;
}
