/*
 * dnsdelay - a DNS front that forwards every query to an upstream server (the benchmark's
 * knotd) and holds each answer DELAY_MS before passing it on: a model of a recursive
 * resolver whose answers take that long.  It also counts the queries, which is how the
 * benchmarks measure the DNS queries a checker sends per decision.
 *
 *   dnsdelay -l HOST:PORT [-l HOST:PORT]... -u UPSTREAM_PORT [-d DELAY_MS] [-s STATSFILE]
 *            [-t LIFETIME_S]
 *
 * Listens on every -l address (IPv4, UDP and TCP); upstream is 127.0.0.1:UPSTREAM_PORT.
 * UDP: one epoll loop; queries get a fresh ID upstream (a table of 65536 slots maps it back
 * to the client and its ID), answers wait in a FIFO until receipt + DELAY_MS.  TCP: one thread
 * per client connection, one upstream TCP connection each, each answer delayed the same way.
 * Counts: total, per transport, per type (A, AAAA, MX, other).  On SIGUSR1 and at exit the
 * counts are written to STATSFILE (atomically: written aside, then renamed) as one line
 *   queries=N udp=N tcp=N mx=N a=N aaaa=N other=N answers=N dropped=N
 * Bounds: a UDP query of at most 4096 octets, a UDP answer of at most 1500 (the clients
 * here send no EDNS: answers stay below 512), a TCP message of at most 65535, at most
 * 65536 UDP queries outstanding (the oldest slot is reused), 16384 answers held, 256 TCP connections; the
 * process exits after LIFETIME_S seconds (default 1800) or on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#define MSG_MAX   4096
#define MAX_LIS   4
#define QUEUE_MAX 16384
#define HELD_MAX  1500
#define TCP_MAX   256

static atomic_ullong st_total, st_udp, st_tcp, st_mx, st_a, st_aaaa, st_other, st_answers,
	st_dropped;
static atomic_int g_tcp_conns;
static unsigned g_delay_ms = 20;
static uint16_t g_up_port;
static const char *g_stats;

struct slot {
	bool used;
	uint16_t id;
	int lfd; /* listening UDP socket the query came in on */
	struct sockaddr_in from;
};

struct held {
	uint64_t release_us;
	int lfd;
	struct sockaddr_in to;
	uint16_t len;
	uint8_t msg[HELD_MAX];
};

static struct slot g_slots[65536];
static struct held *g_q; /* ring */
static size_t g_qhead, g_qlen;

static void count_query(const uint8_t *m, size_t len, bool tcp)
{
	atomic_fetch_add(&st_total, 1);
	atomic_fetch_add(tcp ? &st_tcp : &st_udp, 1);
	/* the type follows the first question name */
	size_t o = 12;
	while (o < len && m[o] != 0) {
		if ((m[o] & 0xc0) != 0)
			break;
		o += (size_t)m[o] + 1;
	}
	uint16_t t = 0;
	if (o + 2 < len)
		t = (uint16_t)(m[o + 1] << 8 | m[o + 2]);
	atomic_fetch_add(t == 15 ? &st_mx : t == 1 ? &st_a : t == 28 ? &st_aaaa : &st_other, 1);
}

static void write_stats(void)
{
	if (!g_stats)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", g_stats);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "queries=%llu udp=%llu tcp=%llu mx=%llu a=%llu aaaa=%llu other=%llu answers=%llu "
		   "dropped=%llu\n",
		atomic_load(&st_total), atomic_load(&st_udp), atomic_load(&st_tcp),
		atomic_load(&st_mx), atomic_load(&st_a), atomic_load(&st_aaaa),
		atomic_load(&st_other), atomic_load(&st_answers), atomic_load(&st_dropped));
	fclose(f);
	rename(tmp, g_stats);
}

static int parse_hostport(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *c = strrchr(s, ':');
	memset(sa, 0, sizeof(*sa));
	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* ---- TCP: a thread per client connection ---- */

static bool read_full(int fd, void *buf, size_t n)
{
	size_t o = 0;
	while (o < n) {
		ssize_t r = read(fd, (char *)buf + o, n - o);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		o += (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	size_t o = 0;
	while (o < n) {
		ssize_t r = write(fd, (const char *)buf + o, n - o);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		o += (size_t)r;
	}
	return true;
}

static void *tcp_client(void *arg)
{
	int cfd = (int)(intptr_t)arg, ufd = -1;
	uint8_t *buf = malloc(65537);
	struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons(g_up_port)};
	up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = {.tv_sec = 30};
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!buf)
		goto out;
	ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&up, sizeof(up)) < 0)
		goto out;
	setsockopt(ufd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	bench_nodelay(cfd);
	bench_nodelay(ufd);
	for (;;) {
		uint8_t lb[2];
		if (!read_full(cfd, lb, 2))
			break;
		size_t len = (size_t)(lb[0] << 8 | lb[1]);
		if (len < 12 || !read_full(cfd, buf + 2, len))
			break;
		buf[0] = lb[0];
		buf[1] = lb[1];
		count_query(buf + 2, len, true);
		if (!write_full(ufd, buf, len + 2) || !read_full(ufd, lb, 2))
			break;
		len = (size_t)(lb[0] << 8 | lb[1]);
		if (!read_full(ufd, buf + 2, len))
			break;
		buf[0] = lb[0];
		buf[1] = lb[1];
		struct timespec d = {.tv_sec = g_delay_ms / 1000,
				     .tv_nsec = (long)(g_delay_ms % 1000) * 1000000L};
		while (nanosleep(&d, &d) < 0 && errno == EINTR)
			;
		atomic_fetch_add(&st_answers, 1);
		if (!write_full(cfd, buf, len + 2))
			break;
	}
out:
	free(buf);
	if (ufd >= 0)
		close(ufd);
	close(cfd);
	atomic_fetch_sub(&g_tcp_conns, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in lis[MAX_LIS];
	int nlis = 0, opt;
	unsigned lifetime = 1800;

	while ((opt = getopt(argc, argv, "l:u:d:s:t:")) != -1) {
		switch (opt) {
		case 'l':
			if (nlis == MAX_LIS || parse_hostport(optarg, &lis[nlis]) < 0) {
				fprintf(stderr, "dnsdelay: bad -l %s (IPv4:PORT, at most %d)\n", optarg,
					MAX_LIS);
				return 64;
			}
			nlis++;
			break;
		case 'u': g_up_port = (uint16_t)atoi(optarg); break;
		case 'd': g_delay_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': g_stats = optarg; break;
		case 't': lifetime = (unsigned)strtoul(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (!nlis || !g_up_port)
		goto usage;

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &ss, NULL); /* threads inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	alarm(lifetime);

	g_q = calloc(QUEUE_MAX, sizeof(*g_q));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!g_q || ep < 0 || sfd < 0) {
		perror("dnsdelay");
		return 71;
	}
	int udp[MAX_LIS], tcp[MAX_LIS];
	struct epoll_event ev;
	for (int i = 0; i < nlis; i++) {
		int one = 1;
		udp[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		tcp[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(tcp[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		int big = 4 << 20;
		setsockopt(udp[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		if (bind(udp[i], (struct sockaddr *)&lis[i], sizeof(lis[i])) < 0 ||
		    bind(tcp[i], (struct sockaddr *)&lis[i], sizeof(lis[i])) < 0 ||
		    listen(tcp[i], 128) < 0) {
			perror("dnsdelay: bind");
			return 69;
		}
		ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, udp[i], &ev);
		ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 100u + (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, tcp[i], &ev);
	}
	int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in up = {.sin_family = AF_INET, .sin_port = htons(g_up_port)};
	up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int big = 4 << 20;
	setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (connect(ufd, (struct sockaddr *)&up, sizeof(up)) < 0) {
		perror("dnsdelay: upstream");
		return 69;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 200};
	epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
	ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 300};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	write_stats();

	uint16_t next_id = 1;
	uint8_t m[MSG_MAX];
	for (;;) {
		int wait_ms = -1;
		if (g_qlen) {
			uint64_t now = bench_now_us(), rel = g_q[g_qhead].release_us;
			wait_ms = rel <= now ? 0 : (int)((rel - now + 999) / 1000);
		}
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, wait_ms);
		if (n < 0 && errno != EINTR)
			return 71;
		for (int i = 0; i < n; i++) {
			uint32_t k = evs[i].data.u32;
			if (k == 300) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					write_stats();
					if (si.ssi_signo != SIGUSR1)
						return 0;
				}
			} else if (k >= 100 && k < 100 + MAX_LIS) {
				int cfd = accept4(tcp[k - 100], NULL, NULL, SOCK_CLOEXEC);
				if (cfd < 0)
					continue;
				pthread_t th;
				if (atomic_load(&g_tcp_conns) >= TCP_MAX) {
					close(cfd);
					continue;
				}
				atomic_fetch_add(&g_tcp_conns, 1);
				if (pthread_create(&th, NULL, tcp_client, (void *)(intptr_t)cfd) != 0) {
					atomic_fetch_sub(&g_tcp_conns, 1);
					close(cfd);
					continue;
				}
				pthread_detach(th);
			} else if (k < MAX_LIS) {
				for (int b = 0; b < 64; b++) {
					struct sockaddr_in from;
					socklen_t fl = sizeof(from);
					ssize_t r = recvfrom(udp[k], m, sizeof(m), 0,
							     (struct sockaddr *)&from, &fl);
					if (r < 0)
						break;
					if (r < 12)
						continue;
					count_query(m, (size_t)r, false);
					uint16_t id = next_id++;
					struct slot *s = &g_slots[id];
					if (s->used)
						atomic_fetch_add(&st_dropped, 1);
					s->used = true;
					s->id = (uint16_t)(m[0] << 8 | m[1]);
					s->lfd = udp[k];
					s->from = from;
					m[0] = (uint8_t)(id >> 8);
					m[1] = (uint8_t)id;
					send(ufd, m, (size_t)r, 0);
				}
			} else if (k == 200) {
				for (int b = 0; b < 64; b++) {
					ssize_t r = recv(ufd, m, sizeof(m), 0);
					if (r < 0)
						break;
					if (r < 12 || r > HELD_MAX)
						continue; /* no EDNS here: answers stay below 512 */
					uint16_t id = (uint16_t)(m[0] << 8 | m[1]);
					struct slot *s = &g_slots[id];
					if (!s->used)
						continue;
					s->used = false;
					if (g_qlen == QUEUE_MAX) {
						atomic_fetch_add(&st_dropped, 1);
						continue;
					}
					struct held *h = &g_q[(g_qhead + g_qlen++) % QUEUE_MAX];
					h->release_us = bench_now_us() + (uint64_t)g_delay_ms * 1000;
					h->lfd = s->lfd;
					h->to = s->from;
					h->len = (uint16_t)r;
					memcpy(h->msg, m, (size_t)r);
					h->msg[0] = (uint8_t)(s->id >> 8);
					h->msg[1] = (uint8_t)s->id;
				}
			}
		}
		uint64_t now = bench_now_us();
		while (g_qlen && g_q[g_qhead].release_us <= now) {
			struct held *h = &g_q[g_qhead];
			sendto(h->lfd, h->msg, h->len, 0, (struct sockaddr *)&h->to, sizeof(h->to));
			atomic_fetch_add(&st_answers, 1);
			g_qhead = (g_qhead + 1) % QUEUE_MAX;
			g_qlen--;
		}
	}
usage:
	fprintf(stderr, "usage: dnsdelay -l HOST:PORT [-l ...] -u UPSTREAM_PORT [-d DELAY_MS] "
			"[-s STATSFILE] [-t LIFETIME_S]\n");
	return 64;
}
