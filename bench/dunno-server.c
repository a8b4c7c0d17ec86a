/*
 * dunno-server - the reference policy server of the benchmarks: answers every Postfix
 * policy request with "action=DUNNO" at once.  It measures the ceiling of the protocol on
 * this machine (the kernel's loopback, one epoll loop, the load generator), in the same run
 * as the server under test.
 *
 *   dunno-server -l inet:127.0.0.1:PORT|unix:/path [-t LIFETIME_S]
 *
 * Same I/O pattern as a good policy server: one thread, one epoll loop, non-blocking
 * sockets, level-triggered; per readable event one read(2) into the connection's buffer,
 * every complete request in it (up to the empty line) answered, the replies written with one
 * write(2).  It does not parse attributes: the work left is exactly the protocol's.
 * Exits after LIFETIME_S seconds (default 1800) or on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "benchnet.h"

#define BUF_MAX (64 * 1024)

struct conn {
	int fd;
	size_t len;    /* bytes of the current request so far */
	int state;     /* 1: the previous byte was '\n' (a line ended) */
	char *out;     /* unwritten replies */
	size_t outlen, outcap;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

static bool out_add(struct conn *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 256;
		while (cap < c->outlen + n)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p)
			return false;
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
	return true;
}

/* Write what can be written; register for EPOLLOUT when the socket is full.  false: closed */
static bool conn_flush(int ep, struct conn *c)
{
	size_t off = 0;
	while (off < c->outlen) {
		ssize_t n = write(c->fd, c->out + off, c->outlen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(ep, c);
			return false;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	struct epoll_event ev = {.events = EPOLLIN | (c->outlen ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	return true;
}

static void conn_read(int ep, struct conn *c)
{
	char tmp[BUF_MAX];
	ssize_t n;
	do
		n = read(c->fd, tmp, sizeof(tmp));
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_close(ep, c);
		return;
	}
	/* A request ends with an empty line: "\n\n" (a "\r" before "\n" is tolerated). */
	static const char reply[] = "action=DUNNO\n\n";
	for (ssize_t i = 0; i < n; i++) {
		char ch = tmp[i];
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			if (c->state == 1 && c->len > 0) {
				if (!out_add(c, reply, sizeof(reply) - 1)) {
					conn_close(ep, c);
					return;
				}
				c->len = 0;
				c->state = 0;
				continue;
			}
			c->state = 1;
		} else {
			c->state = 0;
		}
		if (++c->len > BUF_MAX) { /* bound: one request of at most 64 KiB */
			conn_close(ep, c);
			return;
		}
	}
	if (c->outlen)
		conn_flush(ep, c);
}

int main(int argc, char **argv)
{
	const char *listen_arg = NULL;
	unsigned lifetime = 1800;
	int opt;

	while ((opt = getopt(argc, argv, "l:t:")) != -1) {
		switch (opt) {
		case 'l': listen_arg = optarg; break;
		case 't': lifetime = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: dunno-server -l inet:HOST:PORT|unix:PATH [-t SECS]\n");
			return 64;
		}
	}
	if (!listen_arg) {
		fprintf(stderr, "dunno-server: -l is required\n");
		return 64;
	}
	int lfd = bench_listen(listen_arg);
	if (lfd < 0)
		return 69;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm(lifetime); /* default action of SIGALRM: exit */

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("dunno-server: epoll");
		return 71;
	}
	struct epoll_event evs[256];
	while (!g_stop) {
		int n = epoll_wait(ep, evs, 256, 1000);
		if (n < 0 && errno != EINTR) {
			perror("dunno-server: epoll_wait");
			return 71;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				for (int k = 0; k < 64; k++) {
					int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					bench_nodelay(fd);
					struct conn *nc = calloc(1, sizeof(*nc));
					if (!nc) {
						close(fd);
						continue;
					}
					nc->fd = fd;
					struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
						close(fd);
						free(nc);
					}
				}
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				if (!conn_flush(ep, c))
					continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_read(ep, c);
		}
	}
	return 0;
}
