/*
 * benchnet.c - address parsing, listening sockets and the clock for bench/ programs.
 */
#include "benchnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int bench_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *su = (struct sockaddr_un *)ss;
		if (strlen(spec + 5) >= sizeof(su->sun_path)) {
			fprintf(stderr, "%s: path too long\n", spec);
			return -1;
		}
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, spec + 5);
		*len = sizeof(*su);
		return 0;
	}
	if (strncmp(spec, "inet:", 5) != 0)
		goto bad;
	char host[128];
	const char *h = spec + 5, *colon;
	size_t hl;
	if (*h == '[') {
		const char *e = strchr(h, ']');
		if (!e || e[1] != ':')
			goto bad;
		hl = (size_t)(e - h - 1);
		h++;
		colon = e + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			goto bad;
		hl = (size_t)(colon - h);
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	int port = atoi(colon + 1);
	if (port <= 0 || port > 65535)
		goto bad;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
bad:
	fprintf(stderr, "bad address \"%s\" (inet:HOST:PORT, inet:[IPv6]:PORT, unix:PATH)\n",
		spec);
	return -1;
}

int bench_listen(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (bench_parse_addr(spec, &ss, &len) < 0)
		return -1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, "%s: ", spec);
		perror("bind/listen");
		close(fd);
		return -1;
	}
	return fd;
}

void bench_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

uint64_t bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
