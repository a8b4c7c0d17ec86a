/*
 * listen.c - parse, bind and remove mxsane-policyd's listening sockets (see listen.h).
 */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

static int parse_port(const char *s, unsigned *port)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || errno || v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int listen_parse(const char *spec, struct listen_addr *out, char *err, size_t errlen)
{
	char host[128];
	const char *rest, *colon;
	unsigned port;

	memset(out, 0, sizeof(*out));
	if (strncmp(spec, "unix:", 5) == 0) {
		const char *path = spec + 5;
		if (path[0] != '/') {
			snprintf(err, errlen, "%s: a unix socket path must be absolute", spec);
			return -1;
		}
		if (strlen(path) >= sizeof(out->path)) {
			snprintf(err, errlen, "%s: socket path longer than %zu bytes", spec,
			         sizeof(out->path) - 1);
			return -1;
		}
		struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
		out->family = AF_UNIX;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path));
		memcpy(out->path, path, strlen(path) + 1);
		out->sslen = (socklen_t)sizeof(*sun);
		snprintf(out->text, sizeof(out->text), "unix:%.150s", path);
		return 0;
	}
	rest = strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen, "%s: expected inet:[IPv6]:PORT", spec);
			return -1;
		}
		size_t hl = (size_t)(close - rest - 1);
		if (hl >= sizeof(host)) {
			snprintf(err, errlen, "%s: bad IPv6 address", spec);
			return -1;
		}
		memcpy(host, rest + 1, hl);
		host[hl] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(rest, ':');
		if (!colon) {
			snprintf(err, errlen,
			         "%s: expected inet:HOST:PORT, inet:[IPv6]:PORT or unix:/path",
			         spec);
			return -1;
		}
		size_t hl = (size_t)(colon - rest);
		if (hl >= sizeof(host) || memchr(rest, ':', hl)) {
			snprintf(err, errlen,
			         "%s: write an IPv6 address in brackets: inet:[::1]:PORT", spec);
			return -1;
		}
		memcpy(host, rest, hl);
		host[hl] = '\0';
	}
	if (parse_port(colon + 1, &port) < 0) {
		snprintf(err, errlen, "%s: bad port \"%s\" (1..65535)", spec, colon + 1);
		return -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
	if (rest[0] != '[' && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		out->family = s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->sslen = (socklen_t)sizeof(*s4);
		snprintf(out->text, sizeof(out->text), "inet:%s:%u", host, port);
		return 0;
	}
	if (rest[0] == '[' && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		out->family = s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->sslen = (socklen_t)sizeof(*s6);
		snprintf(out->text, sizeof(out->text), "inet:[%s]:%u", host, port);
		return 0;
	}
	snprintf(err, errlen,
	         "%s: \"%s\" is not a numeric IPv4 or [IPv6] address (host names are not "
	         "resolved: write inet:127.0.0.1:%u or inet:[::1]:%u)",
	         spec, host, port, port);
	return -1;
}

int listen_open(struct listen_addr *a, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char why[512];
	int fd = -1, one = 1;
	mode_t old_umask = 0;
	bool umask_set = false;

	if (a->family == AF_UNIX && daemon_remove_stale_socket(a->path, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text, why);
		return -1;
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s: socket: %s", a->text, strerror(errno));
		goto fail;
	}
	if (a->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (a->family == AF_UNIX) {
		/* no moment in which anybody but the owner may connect */
		old_umask = umask(0177);
		umask_set = true;
	}
	if (bind(fd, (struct sockaddr *)&a->ss, a->sslen) < 0) {
		snprintf(err, errlen, "cannot bind %s: %s", a->text, strerror(errno));
		goto fail;
	}
	if (umask_set) {
		struct stat st;
		umask(old_umask);
		umask_set = false;
		if (lstat(a->path, &st) == 0) {
			a->created = true;
			a->dev = st.st_dev;
			a->ino = st.st_ino;
		}
		if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(a->path, uid, gid) < 0) {
			snprintf(err, errlen, "cannot listen on %s: chown: %s", a->text,
			         strerror(errno));
			unlink(a->path);
			goto fail;
		}
		if (chmod(a->path, 0660) < 0) {
			snprintf(err, errlen, "cannot listen on %s: chmod 0660: %s", a->text,
			         strerror(errno));
			unlink(a->path);
			goto fail;
		}
	}
	if (listen(fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", a->text, strerror(errno));
		if (a->family == AF_UNIX)
			unlink(a->path);
		goto fail;
	}
	return fd;
fail:
	if (umask_set)
		umask(old_umask);
	if (fd >= 0)
		close(fd);
	return -1;
}

void listen_cleanup(struct listen_addr *a)
{
	struct stat st;
	if (a->family != AF_UNIX || !a->created)
		return;
	if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == a->ino &&
	    st.st_dev == a->dev)
		unlink(a->path);
	a->created = false;
}
