/*
 * listen.h - listening endpoints of mxsane-policyd, written as in Postfix's
 * check_policy_service: "inet:127.0.0.1:10045", "inet:[::1]:10045", "127.0.0.1:10045" (inet
 * implied) or "unix:/absolute/path".  Host names are refused: a policy service address is
 * written numerically so that what is bound never depends on DNS or /etc/hosts.
 *
 * Call from main() only.
 */
#ifndef MXSANE_POLICY_LISTEN_H
#define MXSANE_POLICY_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct listen_addr {
	int family; /* AF_INET, AF_INET6 or AF_UNIX */
	struct sockaddr_storage ss;
	socklen_t sslen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* AF_UNIX */
	char text[160];                                         /* canonical form, for logs */
	bool created; /* listen_open created the unix socket file ... */
	dev_t dev;    /* ... with this device and inode */
	ino_t ino;
};

/* Parse spec.  0, or -1 with err ("inet:localhost:10045: ..."). */
int listen_parse(const char *spec, struct listen_addr *out, char *err, size_t errlen);

/*
 * Create, bind and listen (non-blocking, close-on-exec).  A unix socket: a stale socket left
 * by a dead instance is removed first (daemon_remove_stale_socket: never a symlink or a live
 * socket), the socket is created mode 0600 and then set to 0660, owned by uid:gid when those
 * are not -1 (so the group given with -u USER:GROUP, e.g. postfix, may connect).
 * Returns the descriptor, or -1 with err naming the address.
 */
int listen_open(struct listen_addr *a, uid_t uid, gid_t gid, char *err, size_t errlen);

/* Remove the unix socket file listen_open created, if it is still that one (same device and
 * inode: a socket another instance put there since is left alone).  No-op for inet. */
void listen_cleanup(struct listen_addr *a);

#endif
