/*
 * socket.c - opening the milter socket as root, with stale-socket removal and permissions.
 */
#include "socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "daemon.h"

static char *g_path; /* unix socket we created */
static dev_t g_dev;
static ino_t g_ino;

const char *milter_socket_path(const char *spec)
{
	if (spec[0] == '/')
		return spec;
	if (strncasecmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncasecmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

int milter_socket_open(const char *spec, bool chown_to, uid_t uid, gid_t gid, char *err,
                       size_t errlen)
{
	const char *path = milter_socket_path(spec);
	char why[512];
	struct stat st;

	if (path && !path[0]) {
		snprintf(err, errlen, "socket %s: empty path", spec);
		return -1;
	}
	if (path && daemon_remove_stale_socket(path, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "socket %s: %s", spec, why);
		return -1;
	}
	/* smfi_setconn takes a char *: hand it a copy that lives as long as the process */
	static char *conn;
	free(conn);
	conn = strdup(spec);
	if (!conn || smfi_setconn(conn) != MI_SUCCESS) {
		snprintf(err, errlen, "socket %s: invalid connection spec", spec);
		return -1;
	}

	mode_t old = umask(0117);
	errno = 0;
	/* false: whatever is at the path now was not there a moment ago; never remove it */
	int rc = smfi_opensocket(false);
	int e = errno;
	umask(old);
	if (rc != MI_SUCCESS) {
		snprintf(err, errlen, "cannot open socket %s: %s", spec,
		         e ? strerror(e)
		           : "invalid spec, unknown host or port (see the mail log for details)");
		return -1;
	}
	if (!path)
		return 0;

	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "socket %s: not a socket after creating it", spec);
		return -1;
	}
	if (chown_to && lchown(path, uid, gid) < 0) {
		snprintf(err, errlen, "socket %s: chown %u:%u: %s", spec, (unsigned)uid,
		         (unsigned)gid, strerror(errno));
		return -1;
	}
	if (chmod(path, 0660) < 0) {
		snprintf(err, errlen, "socket %s: chmod 0660: %s", spec, strerror(errno));
		return -1;
	}
	/* remembered absolute: a detached daemon runs in / */
	char cwd[4096];
	free(g_path);
	g_path = NULL;
	if (path[0] == '/')
		g_path = strdup(path);
	else if (getcwd(cwd, sizeof(cwd)) && asprintf(&g_path, "%s/%s", cwd, path) < 0)
		g_path = NULL;
	g_dev = st.st_dev;
	g_ino = st.st_ino;
	return 0;
}

void milter_socket_cleanup(void)
{
	struct stat st;
	if (!g_path)
		return;
	if (lstat(g_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == g_dev &&
	    st.st_ino == g_ino)
		unlink(g_path);
	free(g_path);
	g_path = NULL;
}

static bool loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		        &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

bool milter_socket_exposed(const char *spec)
{
	const char *rest, *at;
	int family;
	char host[256];

	if (strncasecmp(spec, "inet:", 5) == 0) {
		rest = spec + 5;
		family = AF_INET;
	} else if (strncasecmp(spec, "inet6:", 6) == 0) {
		rest = spec + 6;
		family = AF_INET6;
	} else {
		return false;
	}
	at = strchr(rest, '@');
	if (!at || !at[1])
		return true; /* libmilter binds INADDR_ANY / in6addr_any */
	/* "[192.0.2.1]" / "[::1]": a numeric address in brackets, as libmilter takes it */
	size_t n = strlen(at + 1);
	const char *h = at + 1;
	if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return true;
	memcpy(host, h, n);
	host[n] = '\0';

	/* the first address, as libmilter's gethostbyname binds the first one */
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return true; /* cannot tell: say so rather than stay silent */
	bool exposed = !loopback(ai->ai_addr);
	freeaddrinfo(ai);
	return exposed;
}
