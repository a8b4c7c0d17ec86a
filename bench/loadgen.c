/*
 * loadgen - Postfix policy protocol load generator for the benchmarks.
 *
 *   loadgen -a ADDR -f DOMAINS [-c CONNS] [-n REQUESTS] [-d SECONDS] [-R DOMAIN] [-o]
 *           [-s SKIP] [-t TIMEOUT_MS] [-L LABEL]
 *
 * Opens CONNS persistent connections to ADDR (inet:HOST:PORT or unix:/path) and on each
 * sends one request at a time, as a Postfix smtpd process does: the next request only after
 * the reply to the previous one.  Requests are what smtpd 3.7 sends at RCPT time with
 * smtpd_delay_reject=yes (request=smtpd_access_policy, protocol_state=RCPT, sender,
 * recipient, client_address, helo_name, ... every attribute, most of them empty).
 * Domains come from the DOMAINS file (one a line) in turn, shared by all connections:
 * sender = u@<next domain>; recipient = u@DOMAIN with -R, else u@<next domain>.
 * -s SKIP starts SKIP lines into the file.  -o: use every line at most once (stop when the
 * list is used up); otherwise the list wraps around.
 *
 * Stops after REQUESTS answers (-n), or after SECONDS (-d), or when the list is used up (-o),
 * whichever comes first; at least one of -n, -d, -o is required.  A request not answered in
 * TIMEOUT_MS (default 10000) is counted as a timeout and its connection closed.
 *
 * Prints one human line and one machine-readable line:
 *   LOADGEN label=L conns=C requests=N errors=E timeouts=T secs=S rps=R p50_us=.. p99_us=..
 *           max_us=.. actions=DUNNO:n,556:n,...
 * where an action is the first word after "action=" (DUNNO, PREPEND, 550, 451, ...).
 * Exit status: 0 when every request was answered, 1 otherwise, 2 on usage or setup errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchnet.h"

#define REQ_MAX   2048
#define REPLY_MAX 4096
#define NACT      32

struct conn {
	int fd;
	bool busy, dead;
	uint64_t sent_us;
	char req[REQ_MAX];
	size_t reqlen, reqoff;
	char rep[REPLY_MAX];
	size_t replen;
};

struct act {
	char name[24];
	uint64_t count;
};

static char **g_dom;
static size_t g_ndom, g_cursor, g_used;
static bool g_once;
static const char *g_rcpt;
static uint32_t *g_lat;
static size_t g_nlat, g_caplat;
static struct act g_act[NACT];
static int g_nact;
static uint64_t g_issued, g_seq;

static void usage(void)
{
	fprintf(stderr, "usage: loadgen -a ADDR -f DOMAINS [-c CONNS] [-n REQUESTS] [-d SECONDS] "
			"[-R DOMAIN] [-o] [-s SKIP] [-t TIMEOUT_MS] [-L LABEL]\n");
	exit(2);
}

static void load_domains(const char *path, size_t skip)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t cap = 0, lineno = 0;
	if (!f) {
		perror(path);
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n\t ")] = '\0';
		if (!line[0] || line[0] == '#' || lineno++ < skip)
			continue;
		if (g_ndom == cap) {
			cap = cap ? cap * 2 : 1024;
			g_dom = realloc(g_dom, cap * sizeof(*g_dom));
			if (!g_dom)
				exit(2);
		}
		g_dom[g_ndom++] = strdup(line);
	}
	fclose(f);
	if (!g_ndom) {
		fprintf(stderr, "%s: no domains (after skipping %zu)\n", path, skip);
		exit(2);
	}
}

/* Next domain, or NULL when -o and the list is used up. */
static const char *next_domain(void)
{
	if (g_once && g_used >= g_ndom)
		return NULL;
	g_used++;
	const char *d = g_dom[g_cursor];
	g_cursor = (g_cursor + 1) % g_ndom;
	return d;
}

/* Fill c->req with the next request; false when the domain list is used up. */
static bool build_request(struct conn *c)
{
	const char *sd = next_domain();
	const char *rd = g_rcpt ? g_rcpt : next_domain();
	if (!sd || !rd)
		return false;
	g_seq++;
	int n = snprintf(c->req, sizeof(c->req),
			 "request=smtpd_access_policy\n"
			 "protocol_state=RCPT\n"
			 "protocol_name=ESMTP\n"
			 "client_address=198.18.%u.%u\n"
			 "client_name=mail%llu.client.example\n"
			 "client_port=%u\n"
			 "reverse_client_name=mail%llu.client.example\n"
			 "server_address=127.0.0.1\n"
			 "server_port=25\n"
			 "helo_name=mail%llu.client.example\n"
			 "sender=user%llu@%s\n"
			 "recipient=rcpt%llu@%s\n"
			 "recipient_count=0\n"
			 "queue_id=\n"
			 "instance=%llx.%llx.0\n"
			 "size=0\n"
			 "etrn_domain=\n"
			 "stress=\n"
			 "sasl_method=\n"
			 "sasl_username=\n"
			 "sasl_sender=\n"
			 "ccert_subject=\n"
			 "ccert_issuer=\n"
			 "ccert_fingerprint=\n"
			 "ccert_pubkey_fingerprint=\n"
			 "encryption_protocol=\n"
			 "encryption_cipher=\n"
			 "encryption_keysize=0\n"
			 "policy_context=\n"
			 "compatibility_level=3.6\n"
			 "mail_version=3.7.11\n"
			 "\n",
			 (unsigned)(g_seq >> 8) & 255, (unsigned)g_seq & 255,
			 (unsigned long long)g_seq, 1024 + (unsigned)(g_seq % 60000),
			 (unsigned long long)g_seq, (unsigned long long)g_seq,
			 (unsigned long long)g_seq, sd, (unsigned long long)g_seq, rd,
			 (unsigned long long)(g_seq * 2654435761u), (unsigned long long)g_seq);
	if (n < 0 || (size_t)n >= sizeof(c->req)) {
		fprintf(stderr, "loadgen: request too long (domain %s)\n", sd);
		exit(2);
	}
	c->reqlen = (size_t)n;
	c->reqoff = 0;
	return true;
}

static void record_action(const char *rep, size_t len)
{
	const char *p = memmem(rep, len, "action=", 7);
	char name[24] = "?";
	if (p) {
		p += 7;
		size_t k = 0;
		while (k + 1 < sizeof(name) && p + k < rep + len && p[k] != ' ' && p[k] != '\n')
			k++;
		memcpy(name, p, k);
		name[k] = '\0';
	}
	for (int i = 0; i < g_nact; i++)
		if (strcmp(g_act[i].name, name) == 0) {
			g_act[i].count++;
			return;
		}
	if (g_nact < NACT) {
		snprintf(g_act[g_nact].name, sizeof(g_act[0].name), "%s", name);
		g_act[g_nact++].count = 1;
	}
}

static void record_latency(uint64_t us)
{
	if (g_nlat == g_caplat) {
		g_caplat = g_caplat ? g_caplat * 2 : 65536;
		g_lat = realloc(g_lat, g_caplat * sizeof(*g_lat));
		if (!g_lat) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(2);
		}
	}
	g_lat[g_nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void conn_kill(int ep, struct conn *c)
{
	if (c->dead)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dead = true;
	c->busy = false;
}

/* Write the rest of the request.  false: the connection failed. */
static bool conn_write(int ep, struct conn *c)
{
	while (c->reqoff < c->reqlen) {
		ssize_t n = write(c->fd, c->req + c->reqoff, c->reqlen - c->reqoff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return false;
		c->reqoff += (size_t)n;
	}
	struct epoll_event ev = {.events = EPOLLIN | (c->reqoff < c->reqlen ? EPOLLOUT : 0),
				 .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return true;
}

/* Start the next request on c if allowed; false when nothing more may be sent. */
static bool conn_send(int ep, struct conn *c, bool may_send)
{
	if (!may_send || !build_request(c))
		return false;
	c->busy = true;
	c->replen = 0;
	c->sent_us = bench_now_us();
	g_issued++;
	if (!conn_write(ep, c))
		conn_kill(ep, c);
	return true;
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *file = NULL, *label = "run";
	unsigned conns = 16, timeout_ms = 10000;
	uint64_t max_req = 0;
	double secs = 0;
	size_t skip = 0;
	int opt;

	while ((opt = getopt(argc, argv, "a:f:c:n:d:R:os:t:L:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'f': file = optarg; break;
		case 'c': conns = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': max_req = strtoull(optarg, NULL, 10); break;
		case 'd': secs = strtod(optarg, NULL); break;
		case 'R': g_rcpt = optarg; break;
		case 'o': g_once = true; break;
		case 's': skip = strtoul(optarg, NULL, 10); break;
		case 't': timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'L': label = optarg; break;
		default: usage();
		}
	}
	if (!addr || !file || conns == 0 || conns > 10000 || (!max_req && secs <= 0 && !g_once))
		usage();
	load_domains(file, skip);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < conns + 64) {
		rl.rlim_cur = rl.rlim_max < conns + 64 ? rl.rlim_max : conns + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	struct sockaddr_storage ss;
	socklen_t sl;
	if (bench_parse_addr(addr, &ss, &sl) < 0)
		return 2;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn *cs = calloc(conns, sizeof(*cs));
	if (ep < 0 || !cs) {
		perror("loadgen");
		return 2;
	}
	for (unsigned i = 0; i < conns; i++) {
		struct conn *c = &cs[i];
		c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, sl) < 0) {
			fprintf(stderr, "loadgen: connect %s: %s\n", addr, strerror(errno));
			return 2;
		}
		if (ss.ss_family != AF_UNIX)
			bench_nodelay(c->fd);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}

	uint64_t t0 = bench_now_us();
	uint64_t end_us = secs > 0 ? t0 + (uint64_t)(secs * 1e6) : UINT64_MAX;
	uint64_t answered = 0, errors = 0, timeouts = 0;
	bool stop_sending = false;
	for (unsigned i = 0; i < conns; i++)
		if (!conn_send(ep, &cs[i], !max_req || g_issued < max_req))
			stop_sending = true;

	struct epoll_event evs[512];
	uint64_t last_sweep = t0;
	for (;;) {
		unsigned busy = 0, alive = 0;
		for (unsigned i = 0; i < conns; i++) {
			busy += cs[i].busy;
			alive += !cs[i].dead;
		}
		if (busy == 0 || alive == 0)
			break;
		int n = epoll_wait(ep, evs, 512, 100);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 2;
		}
		uint64_t now = bench_now_us();
		if (now >= end_us)
			stop_sending = true;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->dead)
				continue;
			if ((evs[i].events & EPOLLOUT) && !conn_write(ep, c)) {
				errors++;
				conn_kill(ep, c);
				continue;
			}
			if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				continue;
			ssize_t r = read(c->fd, c->rep + c->replen, sizeof(c->rep) - c->replen);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0 || !c->busy) {
				/* closed by the server, or data nobody asked for */
				errors++;
				conn_kill(ep, c);
				continue;
			}
			c->replen += (size_t)r;
			char *e = memmem(c->rep, c->replen, "\n\n", 2);
			if (!e) {
				if (c->replen == sizeof(c->rep)) {
					errors++;
					conn_kill(ep, c);
				}
				continue;
			}
			if ((size_t)(e + 2 - c->rep) != c->replen) {
				errors++; /* more than one reply to one request */
				conn_kill(ep, c);
				continue;
			}
			record_latency(now - c->sent_us);
			record_action(c->rep, c->replen);
			answered++;
			c->busy = false;
			if (!stop_sending && !conn_send(ep, c, !max_req || g_issued < max_req))
				stop_sending = true;
		}
		if (now - last_sweep > 100000) {
			last_sweep = now;
			for (unsigned i = 0; i < conns; i++)
				if (cs[i].busy && now > cs[i].sent_us &&
				    now - cs[i].sent_us > (uint64_t)timeout_ms * 1000) {
					timeouts++;
					conn_kill(ep, &cs[i]);
				}
		}
	}
	double el = (double)(bench_now_us() - t0) / 1e6;
	qsort(g_lat, g_nlat, sizeof(*g_lat), cmp_u32);
	uint32_t p50 = g_nlat ? g_lat[(g_nlat - 1) / 2] : 0;
	uint32_t p99 = g_nlat ? g_lat[(size_t)((double)(g_nlat - 1) * 0.99)] : 0;
	uint32_t mx = g_nlat ? g_lat[g_nlat - 1] : 0;
	double rps = el > 0 ? (double)answered / el : 0;
	char acts[1024];
	size_t o = 0;
	acts[0] = '\0';
	for (int i = 0; i < g_nact && o < sizeof(acts) - 64; i++)
		o += (size_t)snprintf(acts + o, sizeof(acts) - o, "%s%s:%llu", i ? "," : "",
				      g_act[i].name, (unsigned long long)g_act[i].count);
	printf("loadgen %s: %u conns, %llu requests in %.2f s: %.0f req/s; latency p50 %.3f ms, "
	       "p99 %.3f ms, max %.3f ms; %llu errors, %llu timeouts; actions %s\n",
	       label, conns, (unsigned long long)answered, el, rps, p50 / 1000.0, p99 / 1000.0,
	       mx / 1000.0, (unsigned long long)errors, (unsigned long long)timeouts, acts);
	printf("LOADGEN label=%s conns=%u requests=%llu errors=%llu timeouts=%llu secs=%.3f "
	       "rps=%.1f p50_us=%u p99_us=%u max_us=%u actions=%s\n",
	       label, conns, (unsigned long long)answered, (unsigned long long)errors,
	       (unsigned long long)timeouts, el, rps, p50, p99, mx, acts);
	return (errors || timeouts) ? 1 : 0;
}
