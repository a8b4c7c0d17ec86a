/*
 * server.h - the policy service: every client connection of mxsane-policyd on one evloop,
 * next to the engine's DNS sockets.  No thread or process per connection.
 *
 * Per connection: non-blocking I/O, the request parser (request.h), one check at a time
 * (sender, then recipient), replies queued in order (pipelined requests are answered one
 * after the other), an idle timeout, and nothing left behind when the client goes away
 * (a pending check is cancelled with engine_cancel).
 *
 * Bounds per connection: one request as in request.h; at most SERVER_BACKLOG_MAX bytes read
 * ahead while a check runs (reading pauses beyond); at most SERVER_OUTPUT_MAX bytes of replies
 * waiting for a client that does not read (no further request is processed beyond).
 * Bound on connections: policy.max_connections, and the room the open file limit leaves
 * (server_set_fd_room); more are accepted and closed at once.  When the process is out of
 * descriptors all the same, a spare descriptor kept for the purpose is closed to accept the
 * newcomer and close it, so that it learns at once and the listener does not spin.
 *
 * All functions run in the loop's thread.  The server never exits the process.
 */
#ifndef MXSANE_POLICY_SERVER_H
#define MXSANE_POLICY_SERVER_H

#include <stddef.h>
#include <stdint.h>

#define SERVER_BACKLOG_MAX (16 * 1024)
#define SERVER_OUTPUT_MAX  (16 * 1024)

struct evloop;
struct engine;
struct server;

struct server_stats {
	size_t open;          /* connections open now */
	uint64_t accepted;    /* connections served */
	uint64_t refused;     /* closed at once: over either bound, or out of fds */
	uint64_t requests;    /* requests answered */
	uint64_t malformed;   /* connections closed for a malformed request */
	uint64_t idle_closed; /* connections closed by the idle timeout */
	uint64_t cancelled;   /* checks abandoned because the client went away */
};

/* The engine (and the loop) must outlive the server.  NULL on out of memory. */
struct server *server_new(struct evloop *loop, struct engine *e);
/* Close every connection (pending checks are cancelled) and free.  Accepts NULL.  Listening
 * descriptors are not closed: they belong to the caller. */
void server_free(struct server *s);

/* idle_timeout_s: a connection with nothing in progress is closed after this long without
 * traffic, and a request must be complete within this long of its first byte.  Applies at
 * once to open connections too. */
void server_set_limits(struct server *s, unsigned idle_timeout_s, unsigned max_connections);

/* At most room connections, whatever policy.max_connections says: the open file limit
 * (nofile, for the log) less the descriptors the process keeps for DNS and itself.  0: no
 * such bound (the default). */
void server_set_fd_room(struct server *s, unsigned room, unsigned long long nofile);

/* Accept connections on a listening descriptor (non-blocking).  name: for logs.  0 or -1. */
int server_add_listener(struct server *s, int fd, const char *name);

/* One connection on rfd/wfd (Postfix spawn(8): stdin/stdout).  It is answered like any
 * other, except that at end of input the requests already received are still answered;
 * then the done callback runs.  0 or -1 (errno). */
int server_add_stdio(struct server *s, int rfd, int wfd);

/* Called once, from the loop, when the server has nothing left to do: after
 * server_shutdown() when the last connection is closed, or when the stdio connection ends. */
void server_set_done(struct server *s, void (*done)(void *arg), void *arg);

/*
 * Stop: stop accepting (the listening descriptors are unwatched and forgotten, not closed:
 * the caller should close them at once, or the kernel keeps queueing connections); close idle
 * connections and those in the middle of receiving a request; let connections with a check
 * running get their answer (then close them), for at most grace_ms; then close the rest.
 */
void server_shutdown(struct server *s, unsigned grace_ms);

void server_get_stats(const struct server *s, struct server_stats *st);

#endif
