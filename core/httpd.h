/*
 * httpd.h - a tiny HTTP/1.0 and 1.1 server on an evloop, for one thing only: answering
 * `GET /metrics` (and HEAD) with text the caller renders at each request.  Every other path
 * is 404, every other method 405, anything that is not a request line 400.  One request per
 * connection (the answer says "Connection: close"), which every Prometheus version accepts.
 *
 * It shares the loop of the daemon's checks, so each step is short and everything from the
 * network is bounded and hostile:
 *  - at most HTTPD_MAX_CONNS connections at once; more are accepted and closed at once, and
 *    at most HTTPD_ACCEPT_BURST are accepted per loop iteration (1,000 clients connecting
 *    cost the checks nothing but a few cheap accept/close calls per iteration);
 *  - a request (line and headers) of at most HTTPD_REQUEST_MAX octets: longer is 431;
 *  - every connection ends HTTPD_TIMEOUT_MS after it was accepted, whatever it has sent or
 *    read (a slow client, or one that never reads the answer, is closed);
 *  - when the process is out of descriptors, accepting pauses for HTTPD_PAUSE_MS instead of
 *    spinning on the listening socket.
 *
 * All functions run in the loop's thread.
 */
#ifndef MXSANE_HTTPD_H
#define MXSANE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics.h"

#define HTTPD_MAX_CONNS    64
#define HTTPD_ACCEPT_BURST 128
#define HTTPD_REQUEST_MAX  4096
#define HTTPD_TIMEOUT_MS   5000
#define HTTPD_PAUSE_MS     200

struct evloop;
struct httpd;

/* Render the body of GET /metrics into x (empty at the call).  Called in the loop's thread;
 * an x that failed (expo.failed) is answered 500. */
typedef void (*httpd_render_cb)(void *arg, struct expo *x);

struct httpd_stats {
	size_t open;       /* connections open now */
	uint64_t served;   /* answers 200 */
	uint64_t errors;   /* answers 4xx/5xx (garbage, unknown path, too long) */
	uint64_t refused;  /* closed at accept: over HTTPD_MAX_CONNS */
	uint64_t timeouts; /* closed at HTTPD_TIMEOUT_MS */
};

/* Serve on the listening descriptor lfd (non-blocking; it stays the caller's).  NULL on out
 * of memory or when the loop refuses the descriptor. */
struct httpd *httpd_new(struct evloop *loop, int lfd, httpd_render_cb render, void *arg);
/* Close every connection and stop watching lfd (not closed).  Accepts NULL. */
void httpd_free(struct httpd *h);
void httpd_get_stats(const struct httpd *h, struct httpd_stats *st);
/* Its own metrics (mxsane_metrics_http_*), as a render callback may append them. */
void httpd_write_metrics(const struct httpd *h, struct expo *x);

/*
 * Where metrics.listen says: "inet:HOST:PORT" (HOST an IPv4 address or [IPv6]) or
 * "unix:/path".  httpd_listen() binds and listens (non-blocking, close-on-exec); a unix
 * socket left by a dead instance is removed first (daemon_remove_stale_socket), the new one
 * is made mode 0660 and owned by uid:gid when those are not -1.  Returns the descriptor, or
 * -1 with err naming the address.  httpd_listen_cleanup() removes the unix socket file it
 * made, if it is still that one.
 */
struct httpd_addr {
	char text[160]; /* as given, for logs and the start line */
	char path[108]; /* unix: the socket file, "" otherwise */
	bool created;
	dev_t dev;
	ino_t ino;
};
int httpd_listen(const char *spec, uid_t uid, gid_t gid, struct httpd_addr *a, char *err,
                 size_t errlen);
void httpd_listen_cleanup(struct httpd_addr *a);

#endif
