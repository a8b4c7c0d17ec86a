/*
 * socket.h - the milter's listening socket: libmilter connection specs ("unix:/path",
 * "local:/path", "/path", "inet:PORT@HOST", "inet6:PORT@HOST"), opening it as root with safe
 * handling of what may already be at a unix socket's path, and its permissions.
 *
 * Call from main() only, before smfi_main().
 */
#ifndef MXSANE_MILTER_SOCKET_H
#define MXSANE_MILTER_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Filesystem path of a unix-domain spec (a pointer into spec), or NULL for inet/inet6. */
const char *milter_socket_path(const char *spec);

/*
 * Register spec with libmilter and open the listening socket (smfi_register must have been
 * called).  For a unix socket: first remove a socket left by a dead instance, never
 * following or removing a symbolic link or anything that is not a socket, and refusing a
 * socket somebody still accepts connections on; then create it mode 0660 (umask 0117), owned
 * by uid:gid when `chown_to` (so that the MTA's group can connect after privileges are
 * dropped).  0, or -1 with a message naming the socket in err.
 */
int milter_socket_open(const char *spec, bool chown_to, uid_t uid, gid_t gid, char *err,
                       size_t errlen);

/* True for an inet or inet6 spec that listens where other machines can connect: no host
 * (libmilter binds every address), or a host whose address is not loopback.  False for
 * unix sockets and loopback addresses (127.0.0.0/8, ::1). */
bool milter_socket_exposed(const char *spec);

/* Remove the unix socket this process created, if it is still the same file.  Safe to call
 * for inet sockets or when nothing was opened. */
void milter_socket_cleanup(void);

#endif
