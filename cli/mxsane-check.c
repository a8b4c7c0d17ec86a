/*
 * mxsane-check - diagnose a domain's (or address's) mail routing the way the daemons judge
 * it: the MX set, each target and its addresses, what is wrong and why, the verdict, and the
 * action and SMTP reply a daemon would give.  Optionally (--smtp) connects to port 25 of
 * every usable target and reports the banner.
 *
 * Exit status: 0 every NAME accepted (warn included), 1 some NAME would be rejected,
 * 2 some would be tempfailed and none rejected, 64 usage error, 78 configuration error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "evloop.h"
#include "log.h"
#include "resolver.h"

#define EX_OK_     0
#define EX_REJECT  1
#define EX_TEMP    2
#define EX_INPUT   65 /* a NAME that is no domain and no address (EX_DATAERR) */
#define EX_USAGE_  64
#define EX_CONFIG_ 78

struct opts {
	bool json, smtp;
	int smtp_port;
	int smtp_timeout_ms;
	enum role role;
};

struct job {
	const struct opts *o;
	const char *name;
	bool done;
	enum action action;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mxsane-check [-c FILE] [-s SERVER[:PORT]] [-r sender|recipient] [-j]\n"
	        "                    [--smtp [--smtp-port N] [--smtp-timeout MS]] NAME...\n"
	        "       mxsane-check -V\n"
	        "NAME is a domain (example.net) or an address (bob@example.net, "
	        "<bob@example.net>).\n"
	        "  -c FILE    configuration file (default %s, if it exists)\n"
	        "  -s SERVER  ask this DNS server (IP, IP:PORT or [IPv6]:PORT) instead of\n"
	        "             resolver.servers\n"
	        "  -r ROLE    judge NAME as a sender or a recipient domain (default recipient)\n"
	        "  -j         one JSON object per NAME instead of the checklist\n"
	        "  --smtp     also connect to port 25 of each usable MX target and show the "
	        "banner\n"
	        "exit: 0 accepted, 1 would be rejected, 2 would be tempfailed, 64 usage,\n"
	        "      65 a NAME is no domain and no address, 78 config\n",
	        CONFIG_DEFAULT_PATH);
}

/* ---- SMTP banner probe ---- */

struct probe {
	bool ok;
	char text[256];
};

static void smtp_probe(const char *addr, int port, int timeout_ms, struct probe *p)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1;
	memset(&ss, 0, sizeof(ss));
	p->ok = false;
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(p->text, sizeof(p->text), "socket: %s", strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		snprintf(p->text, sizeof(p->text), "connect: %s", strerror(errno));
		goto out;
	}
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, timeout_ms) != 1) {
		snprintf(p->text, sizeof(p->text), "connect: timed out after %d ms", timeout_ms);
		goto out;
	}
	int err = 0;
	socklen_t el = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		snprintf(p->text, sizeof(p->text), "connect: %s", strerror(err));
		goto out;
	}
	char buf[512];
	size_t got = 0;
	pfd.events = POLLIN;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		if (poll(&pfd, 1, timeout_ms) != 1) {
			snprintf(p->text, sizeof(p->text), "no banner within %d ms", timeout_ms);
			goto out;
		}
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0) {
			snprintf(p->text, sizeof(p->text), "connection closed before the banner");
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	p->ok = strncmp(buf, "220", 3) == 0;
	snprintf(p->text, sizeof(p->text), "%.200s", buf);
	ssize_t w = write(fd, "QUIT\r\n", 6);
	(void)w;
out:
	close(fd);
}

/* ---- output ---- */

static void json_str(const char *s)
{
	char esc[2048];
	if (!s) {
		fputs("null", stdout);
		return;
	}
	log_escape_json(esc, sizeof(esc), s);
	printf("\"%s\"", esc);
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

static void print_input_error(const struct opts *o, const char *name, const char *why)
{
	char esc[4 * 1024 + 3];
	if (o->json) {
		printf("{\"name\":");
		json_str(name);
		printf(",\"error\":");
		json_str(why);
		printf("}\n");
		return;
	}
	log_escape_kv(esc, sizeof(esc), name);
	fprintf(stderr, "mxsane-check: %s: %s\n", esc, why);
}

static void print_json(const struct job *j, const struct check_result *r)
{
	fputs("{\"name\":", stdout);
	json_str(j->name);
	fputs(",\"domain\":", stdout);
	json_str(r->domain);
	printf(",\"role\":\"%s\",\"verdict\":\"%s\",\"action\":\"%s\"", role_name(r->role),
	       verdict_name(r->verdict), action_name(r->action));
	printf(",\"configured_action\":\"%s\"", action_name(r->configured_action));
	if (r->reply.code) {
		printf(",\"code\":%d,\"dsn\":\"%s\",\"reply\":", r->reply.code, r->reply.dsn);
		char buf[1200];
		snprintf(buf, sizeof(buf), "%d %s %s", r->reply.code, r->reply.dsn, r->text);
		json_str(buf);
	} else {
		fputs(",\"code\":null,\"dsn\":null,\"reply\":null", stdout);
	}
	fputs(",\"header\":", stdout);
	json_str(r->header);
	printf(",\"ttl\":%u,\"cache\":\"%s\",\"ms\":%.1f,\"implicit_mx\":%s", r->ttl,
	       r->cached ? "hit" : "miss", r->ms, r->implicit_mx ? "true" : "false");
	fputs(",\"canonical\":", stdout);
	json_str(r->canonical);
	fputs(",\"reason\":", stdout);
	json_str(r->reason);
	fputs(",\"notes\":[", stdout);
	for (size_t i = 0; i < r->nnotes; i++) {
		if (i)
			putchar(',');
		json_str(r->notes[i]);
	}
	fputs("],\"mx\":[", stdout);
	for (size_t i = 0; i < r->nmx; i++) {
		const struct mx_info *m = &r->mx[i];
		char host[300];
		snprintf(host, sizeof(host), "%s.", m->host);
		printf("%s{\"pref\":%u,\"host\":", i ? "," : "", m->pref);
		json_str(host);
		fputs(",\"addresses\":[", stdout);
		for (size_t k = 0; k < m->naddr; k++) {
			if (k)
				putchar(',');
			json_str(m->addrs[k]);
		}
		fputs("],\"bogus\":[", stdout);
		bool first = true;
		for (size_t k = 0; k < m->naddr; k++)
			if (m->addr_bogus[k]) {
				if (!first)
					putchar(',');
				first = false;
				json_str(m->addrs[k]);
			}
		printf("],\"usable\":%s,\"alias\":%s,\"temporary\":%s,\"problem\":",
		       m->usable ? "true" : "false", m->alias ? "true" : "false",
		       m->temp ? "true" : "false");
		json_str(m->problem);
		if (j->o->smtp) {
			fputs(",\"smtp\":[", stdout);
			bool f2 = true;
			for (size_t k = 0; k < m->naddr; k++) {
				if (m->addr_bogus[k])
					continue;
				struct probe p;
				smtp_probe(m->addrs[k], j->o->smtp_port, j->o->smtp_timeout_ms, &p);
				printf("%s{\"address\":", f2 ? "" : ",");
				f2 = false;
				json_str(m->addrs[k]);
				printf(",\"ok\":%s,\"%s\":", p.ok ? "true" : "false",
				       p.ok ? "banner" : "error");
				json_str(p.text);
				putchar('}');
			}
			putchar(']');
		}
		putchar('}');
	}
	fputs("]}\n", stdout);
}

static const char *mark(bool good)
{
	return good ? "[ok]" : "[!!]";
}

static void print_text(const struct job *j, const struct check_result *r)
{
	/* the argument as the log shows network input: a terminal escape sequence or any other
	 * control octet in it is written as \xHH, never passed to the terminal */
	char name[4 * 1024 + 3];
	log_escape_kv(name, sizeof(name), j->name);
	printf("%s (%s)\n", name, role_name(r->role));
	if (r->verdict == V_SKIPPED) {
		printf("  not checked: %s\n", r->reason);
		printf("  verdict: skipped, action: accept\n\n");
		return;
	}
	if (r->canonical)
		printf("  domain: %s (alias of %s)\n", r->domain, r->canonical);
	else
		printf("  domain: %s\n", r->domain);
	bool exists = r->verdict != V_NXDOMAIN && r->verdict != V_DNS_ERROR;
	if (r->verdict == V_DNS_ERROR)
		printf("  [??] could not be checked: %s\n", r->reason);
	else
		printf("  %s domain %s\n", mark(exists), exists ? "exists" : "does not exist");
	if (r->verdict == V_NULL_MX) {
		printf("  [!!] null MX (RFC 7505): the domain says it accepts no mail\n");
	} else if (r->implicit_mx) {
		printf("  [!!] no MX records: mail goes to the domain's own address (implicit "
		       "MX)\n");
	} else if (exists && r->nmx) {
		printf("  [ok] %zu MX record%s\n", r->nmx, r->nmx == 1 ? "" : "s");
	} else if (exists && r->verdict != V_DNS_ERROR) {
		printf("  [!!] no MX records\n");
	}
	for (size_t i = 0; i < r->nmx; i++) {
		const struct mx_info *m = &r->mx[i];
		bool good = m->usable && !m->alias && !m->problem;
		if (r->implicit_mx)
			printf("  %s %s (implicit MX)", mark(m->usable), m->host);
		else
			printf("  %s MX %u %s.", r->verdict == V_NULL_MX ? "[!!]" : mark(good),
			       m->pref, m->host);
		if (m->problem)
			printf(": %s", m->problem);
		printf("\n");
		for (size_t k = 0; k < m->naddr; k++)
			printf("         %s%s\n", m->addrs[k],
			       m->addr_bogus[k] ? "  (unusable: loopback/private/reserved)" : "");
		if (j->o->smtp)
			for (size_t k = 0; k < m->naddr; k++) {
				if (m->addr_bogus[k])
					continue;
				struct probe p;
				smtp_probe(m->addrs[k], j->o->smtp_port, j->o->smtp_timeout_ms, &p);
				printf("         smtp %s port %d: %s%s\n", m->addrs[k],
				       j->o->smtp_port, p.ok ? "" : "FAILED: ", p.text);
			}
	}
	for (size_t i = 0; i < r->nnotes; i++)
		printf("  note: %s\n", r->notes[i]);
	printf("  verdict: %s: %s\n", verdict_name(r->verdict), r->reason);
	if (r->reply.code)
		printf("  action:  %s: %d %s %s\n", action_name(r->action), r->reply.code,
		       r->reply.dsn, r->text);
	else if (r->action == ACT_WARN)
		printf("  action:  warn: accepted, header X-MXSane: %s\n",
		       r->header ? r->header : "");
	else
		printf("  action:  %s\n", action_name(r->action));
	printf("  cache:   %s, ttl %u s, %.0f ms\n\n", r->cached ? "hit" : "miss", r->ttl, r->ms);
}

static void on_result(void *arg, const struct check_result *r)
{
	struct job *j = arg;
	if (j->o->json)
		print_json(j, r);
	else
		print_text(j, r);
	fflush(stdout);
	j->action = r->action;
	j->done = true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"smtp", no_argument, NULL, 'S'},
	        {"smtp-port", required_argument, NULL, 'P'},
	        {"smtp-timeout", required_argument, NULL, 'T'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct opts o = {.role = ROLE_RECIPIENT, .smtp_port = 25, .smtp_timeout_ms = 5000};
	const char *conf = NULL, *server = NULL;
	char err[512];
	int c, rc = EX_OK_;

	while ((c = getopt_long(argc, argv, "c:s:r:jhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 's': server = optarg; break;
		case 'j': o.json = true; break;
		case 'S': o.smtp = true; break;
		case 'r':
			if (strcmp(optarg, "sender") == 0)
				o.role = ROLE_SENDER;
			else if (strcmp(optarg, "recipient") == 0)
				o.role = ROLE_RECIPIENT;
			else {
				fprintf(stderr, "mxsane-check: -r takes sender or recipient\n");
				return EX_USAGE_;
			}
			break;
		case 'P':
		case 'T': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > (c == 'P' ? 65535 : 600000)) {
				fprintf(stderr, "mxsane-check: bad number \"%s\"\n", optarg);
				return EX_USAGE_;
			}
			if (c == 'P')
				o.smtp_port = (int)v;
			else
				o.smtp_timeout_ms = (int)v;
			break;
		}
		case 'h': usage(stdout); return EX_OK_;
		case 'V': printf("mxsane-check %s\n", MXSANE_VERSION); return EX_OK_;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE_;
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
	log_open("mxsane-check", true, LOG_MAIL);
	if (resolver_library_init() != 0) {
		fprintf(stderr, "mxsane-check: cannot initialise c-ares\n");
		return EX_CONFIG_;
	}
	struct evloop *loop = evloop_new();
	if (!loop) {
		fprintf(stderr, "mxsane-check: %s\n", strerror(errno));
		return EX_CONFIG_;
	}
	struct engine *e = engine_new(loop, cfg, err, sizeof(err));
	if (!e) {
		fprintf(stderr, "mxsane-check: %s\n", err);
		return server ? EX_USAGE_ : EX_CONFIG_;
	}
	engine_set_wait_all(e, true);
	uint64_t probe_end = evloop_update_time(loop) + cfg->timeout_ms;

	bool any_reject = false, any_temp = false, any_bad = false;
	for (int i = optind; i < argc; i++) {
		struct job j = {.o = &o, .name = argv[i]};
		struct check_request req = {.role = o.role, .want_addresses = true};
		const char *n = argv[i];
		if (strchr(n, '@') || n[0] == '<') {
			req.address = n;
			req.address_len = strlen(n);
		} else {
			req.domain = n;
		}
		char why[160];
		if (!input_valid(&req, why, sizeof(why))) {
			/* a typo is not a domain that would be accepted: say so, and exit 65 */
			print_input_error(&o, n, why);
			any_bad = true;
			continue;
		}
		engine_check(e, &req, on_result, &j);
		while (!j.done)
			if (evloop_run_once(loop, -1) < 0) {
				fprintf(stderr, "mxsane-check: event loop: %s\n", strerror(errno));
				return EX_CONFIG_;
			}
		if (j.action == ACT_REJECT)
			any_reject = true;
		else if (j.action == ACT_TEMPFAIL)
			any_temp = true;
	}
	/* the warning about a server that does not recurse is printed before the program ends;
	 * it was asked when the engine started, and is not waited for beyond one budget from then
	 */
	while (engine_probe_pending(e)) {
		uint64_t now = evloop_update_time(loop);
		if (now >= probe_end || evloop_run_once(loop, (int)(probe_end - now)) < 0)
			break;
	}
	engine_free(e);
	evloop_free(loop);
	config_unref(cfg);
	if (any_bad)
		rc = EX_INPUT;
	else if (any_reject)
		rc = EX_REJECT;
	else if (any_temp)
		rc = EX_TEMP;
	return rc;
}
