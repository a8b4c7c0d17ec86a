/*
 * policy_client - load and behaviour client for mxsane-policyd tests (tests/integration/32).
 *
 *   policy_client -a ADDR [-i IDLE] [-n REQUESTS | -d SECONDS] [-c CONC] [-R RCPT]...
 *                 [-S SENDER] [-t TIMEOUT_MS] [-H HOLD_MS] [-g GAP_MS]
 *
 * ADDR is inet:HOST:PORT or unix:/path.  Phases:
 *   1. open IDLE connections and keep them open without sending anything;
 *   2. on CONC other connections, send requests one after the other on each connection
 *      (REQUESTS in all, or for SECONDS), with a GAP_MS pause between requests, recipients
 *      taken in turn from the -R list; measure the latency of each;
 *   3. check that every idle connection is still open (not closed by the server), then keep
 *      them HOLD_MS longer (so a test can look at the server meanwhile).
 * Output, one "key=value ..." line, then one line per distinct reply ("reply COUNT TEXT") and
 * per distinct last reply of a connection ("last COUNT TEXT"):
 *   idle_opened= idle_alive= requests= answered= timeouts= dropped= p50_ms= p99_ms= max_ms=
 * A request not answered within TIMEOUT_MS (default 10000) counts as a timeout; a live
 * connection the server closes counts as dropped.  Exit 0 when every request was answered
 * and nothing was dropped, 1 otherwise, 2 on usage or setup errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct live {
	int fd;
	bool busy, dead;
	uint64_t sent_us, next_us;
	char buf[2048];
	size_t len;
	int last; /* index into replies of the last reply, -1 none */
};

struct replyc {
	char text[512];
	unsigned long count, last;
};

static struct sockaddr_storage g_ss;
static socklen_t g_sslen;
static struct replyc g_rep[64];
static int g_nrep;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int parse_addr(const char *a)
{
	memset(&g_ss, 0, sizeof(g_ss));
	if (strncmp(a, "unix:", 5) == 0) {
		struct sockaddr_un *su = (struct sockaddr_un *)&g_ss;
		su->sun_family = AF_UNIX;
		snprintf(su->sun_path, sizeof(su->sun_path), "%s", a + 5);
		g_sslen = sizeof(*su);
		return 0;
	}
	if (strncmp(a, "inet:", 5) == 0)
		a += 5;
	char host[128];
	const char *colon = strrchr(a, ':');
	if (!colon || (size_t)(colon - a) >= sizeof(host))
		return -1;
	memcpy(host, a, (size_t)(colon - a));
	host[colon - a] = '\0';
	int port = atoi(colon + 1);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&g_ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&g_ss;
	if (host[0] == '[') {
		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		g_sslen = sizeof(*s6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
		return -1;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	g_sslen = sizeof(*s4);
	return 0;
}

/* Non-blocking connect; -1 on immediate failure. */
static int start_connect(void)
{
	int fd = socket(g_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (g_ss.ss_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (connect(fd, (struct sockaddr *)&g_ss, g_sslen) < 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait until fd is connected (or failed) within timeout_ms. */
static bool wait_connected(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	int err = 0;
	socklen_t l = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
	return err == 0;
}

/* Still open: nothing to read and no hang-up (we never sent anything, so nothing is owed). */
static bool still_open(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, 0);
	if (r == 0)
		return true;
	if (p.revents & (POLLHUP | POLLERR))
		return false;
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int reply_index(const char *text)
{
	for (int i = 0; i < g_nrep; i++)
		if (strcmp(g_rep[i].text, text) == 0)
			return i;
	if (g_nrep == (int)(sizeof(g_rep) / sizeof(g_rep[0])))
		return g_nrep - 1;
	size_t n = strlen(text);
	if (n >= sizeof(g_rep[0].text))
		n = sizeof(g_rep[0].text) - 1;
	memcpy(g_rep[g_nrep].text, text, n);
	g_rep[g_nrep].text[n] = '\0';
	return g_nrep++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: policy_client -a ADDR [-i IDLE] [-n REQUESTS | -d SECONDS] "
	                "[-c CONC] [-R RCPT]... [-S SENDER] [-t TIMEOUT_MS] [-H HOLD_MS] "
	                "[-g GAP_MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = NULL, *sender = "alice@ok-mx.mxs.test";
	const char *rcpts[32];
	int nrcpt = 0, c;
	long nidle = 0, nreq = 0, conc = 1, timeout_ms = 10000, hold_ms = 0, gap_ms = 0;
	double seconds = 0;

	while ((c = getopt(argc, argv, "a:i:n:d:c:R:S:t:H:g:")) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'i': nidle = atol(optarg); break;
		case 'n': nreq = atol(optarg); break;
		case 'd': seconds = atof(optarg); break;
		case 'c': conc = atol(optarg); break;
		case 'R':
			if (nrcpt < 32)
				rcpts[nrcpt++] = optarg;
			break;
		case 'S': sender = optarg; break;
		case 't': timeout_ms = atol(optarg); break;
		case 'H': hold_ms = atol(optarg); break;
		case 'g': gap_ms = atol(optarg); break;
		default: usage();
		}
	}
	if (!addr || parse_addr(addr) < 0 || conc < 1 || nidle < 0)
		usage();
	if (nrcpt == 0)
		rcpts[nrcpt++] = "bob@ok-mx.mxs.test";

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* ---- 1. idle connections, opened in batches the listen queue can take ---- */
	int *idle = calloc((size_t)nidle + 1, sizeof(int));
	long opened = 0;
	if (!idle)
		return 2;
	for (long i = 0; i < nidle; i += 500) {
		long end = i + 500 < nidle ? i + 500 : nidle;
		for (long k = i; k < end; k++)
			idle[k] = start_connect();
		for (long k = i; k < end; k++) {
			if (idle[k] >= 0 && wait_connected(idle[k], 5000)) {
				opened++;
			} else {
				if (idle[k] >= 0)
					close(idle[k]);
				idle[k] = -1;
			}
		}
	}

	/* ---- 2. live requests ---- */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct live *lv = calloc((size_t)conc, sizeof(*lv));
	size_t maxlat = nreq > 0 ? (size_t)nreq : 1000000;
	uint64_t *lat = calloc(maxlat, sizeof(uint64_t));
	if (ep < 0 || !lv || !lat)
		return 2;
	for (long k = 0; k < conc; k++) {
		lv[k].fd = start_connect();
		lv[k].last = -1;
		if (lv[k].fd < 0 || !wait_connected(lv[k].fd, 5000)) {
			fprintf(stderr, "policy_client: live connection %ld failed\n", k);
			lv[k].dead = true;
			continue;
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)k};
		epoll_ctl(ep, EPOLL_CTL_ADD, lv[k].fd, &ev);
	}
	uint64_t t_end = seconds > 0 ? now_us() + (uint64_t)(seconds * 1e6) : 0;
	unsigned long sent = 0, answered = 0, timeouts = 0, dropped = 0;
	size_t nlat = 0;
	for (;;) {
		uint64_t now = now_us();
		bool any_busy = false;
		for (long k = 0; k < conc; k++) {
			struct live *l = &lv[k];
			if (l->dead)
				continue;
			if (l->busy && now - l->sent_us > (uint64_t)timeout_ms * 1000) {
				timeouts++;
				l->dead = true;
				close(l->fd);
				continue;
			}
			bool can_send = nreq > 0 ? sent < (unsigned long)nreq : now < t_end;
			if (!l->busy && can_send && now >= l->next_us) {
				char req[1024];
				int n = snprintf(
				        req, sizeof(req),
				        "request=smtpd_access_policy\nprotocol_state=RCPT\n"
				        "client_address=198.51.100.20\nsender=%s\n"
				        "recipient=%s\ninstance=load.%lu\n\n",
				        sender, rcpts[sent % (unsigned long)nrcpt], sent);
				if (send(l->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
					dropped++;
					l->dead = true;
					close(l->fd);
					continue;
				}
				l->busy = true;
				l->sent_us = now;
				l->len = 0;
				sent++;
			}
			if (l->busy)
				any_busy = true;
		}
		bool can_more = nreq > 0 ? sent < (unsigned long)nreq : now_us() < t_end;
		bool live_left = false;
		for (long k = 0; k < conc; k++)
			live_left |= !lv[k].dead;
		if (!live_left || (!any_busy && !can_more))
			break;
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, gap_ms > 0 ? 1 : 50);
		for (int i = 0; i < n; i++) {
			struct live *l = &lv[evs[i].data.u64];
			if (l->dead)
				continue;
			ssize_t r = recv(l->fd, l->buf + l->len, sizeof(l->buf) - 1 - l->len, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				dropped++;
				l->dead = true;
				close(l->fd);
				continue;
			}
			l->len += (size_t)r;
			l->buf[l->len] = '\0';
			char *end = strstr(l->buf, "\n\n");
			if (!end || !l->busy)
				continue;
			*end = '\0';
			uint64_t t = now_us();
			if (nlat < maxlat)
				lat[nlat++] = t - l->sent_us;
			answered++;
			int ri = reply_index(l->buf);
			g_rep[ri].count++;
			l->last = ri;
			l->busy = false;
			l->next_us = t + (uint64_t)gap_ms * 1000;
			size_t rest = l->len - (size_t)(end + 2 - l->buf);
			memmove(l->buf, end + 2, rest);
			l->len = rest;
		}
	}

	/* ---- 3. are the idle connections still there? ---- */
	long alive = 0;
	for (long i = 0; i < nidle; i++)
		if (idle[i] >= 0 && still_open(idle[i]))
			alive++;
	if (hold_ms > 0) {
		printf("holding idle_alive=%ld\n", alive);
		fflush(stdout);
		usleep((useconds_t)hold_ms * 1000);
	}

	qsort(lat, nlat, sizeof(uint64_t), cmp_u64);
	double p50 = nlat ? (double)lat[nlat / 2] / 1000.0 : 0;
	double p99 =
	        nlat ? (double)lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1000.0
	             : 0;
	double mx = nlat ? (double)lat[nlat - 1] / 1000.0 : 0;
	for (long k = 0; k < conc; k++)
		if (lv[k].last >= 0)
			g_rep[lv[k].last].last++;
	printf("idle_opened=%ld idle_alive=%ld requests=%lu answered=%lu timeouts=%lu dropped=%lu "
	       "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       opened, alive, sent, answered, timeouts, dropped, p50, p99, mx);
	for (int i = 0; i < g_nrep; i++)
		printf("reply %lu %s\n", g_rep[i].count, g_rep[i].text);
	for (int i = 0; i < g_nrep; i++)
		if (g_rep[i].last)
			printf("last %lu %s\n", g_rep[i].last, g_rep[i].text);
	for (long i = 0; i < nidle; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	for (long k = 0; k < conc; k++)
		if (!lv[k].dead)
			close(lv[k].fd);
	close(ep);
	free(idle);
	free(lv);
	free(lat);
	return (answered == sent && !dropped && !timeouts) ? 0 : 1;
}
