/*
 * httpd.c - the metrics endpoint's HTTP server: accept with a bound, read one bounded
 * request, answer it from one buffer, close; a deadline per connection (see httpd.h).
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "evloop.h"

struct hconn {
	struct httpd *h;
	struct hconn *prev, *next;
	int fd;
	struct ev_timer *timer;
	char in[HTTPD_REQUEST_MAX];
	size_t inlen;
	bool answering; /* the request was read; out is being written */
	char *out;      /* head and body */
	size_t outlen, outoff;
};

struct httpd {
	struct evloop *loop;
	int lfd;
	bool paused;
	struct ev_timer *pause_timer;
	httpd_render_cb render;
	void *arg;
	struct hconn *conns;
	struct httpd_stats st;
};

static void on_hconn_io(struct evloop *loop, int fd, unsigned events, void *arg);

static void hconn_close(struct hconn *c)
{
	struct httpd *h = c->h;
	evloop_unwatch(h->loop, c->fd);
	close(c->fd);
	evloop_cancel(h->loop, c->timer);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->st.open--;
	free(c->out);
	free(c);
}

static void on_hconn_timer(struct evloop *loop, void *arg)
{
	struct hconn *c = arg;
	(void)loop;
	c->timer = NULL;
	c->h->st.timeouts++;
	hconn_close(c);
}

/* Write what is left of the answer; false when the connection was closed. */
static bool hconn_flush(struct hconn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true; /* EV_WRITE is on: the rest when the client reads */
		hconn_close(c);
		return false;
	}
	hconn_close(c);
	return false;
}

static void hconn_answer(struct hconn *c, int status, const char *reason, const char *ctype,
                         const char *body, size_t bodylen, bool head_only)
{
	char head[256];
	int hl = snprintf(head, sizeof(head),
	                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                  "Connection: close\r\n\r\n",
	                  status, reason, ctype, bodylen);
	if (status == 200)
		c->h->st.served++;
	else
		c->h->st.errors++;
	if (head_only)
		bodylen = 0;
	c->out = malloc((size_t)hl + bodylen);
	if (!c->out) {
		hconn_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)hl);
	if (bodylen)
		memcpy(c->out + hl, body, bodylen);
	c->outlen = (size_t)hl + bodylen;
	c->answering = true;
	/* reading is over: whatever else the client sends is ignored */
	if (evloop_watch(c->h->loop, c->fd, EV_WRITE, on_hconn_io, c) < 0) {
		hconn_close(c);
		return;
	}
	hconn_flush(c);
}

static void text_answer(struct hconn *c, int status, const char *reason, const char *msg)
{
	hconn_answer(c, status, reason, "text/plain; charset=utf-8", msg, strlen(msg), false);
}

/* A complete request head is in c->in[0..end): answer it. */
static void hconn_request(struct hconn *c, size_t end)
{
	char *line = c->in;
	char *eol = memchr(line, '\n', end);
	if (!eol)
		eol = line + end;
	size_t ll = (size_t)(eol - line);
	if (ll && line[ll - 1] == '\r')
		ll--;
	line[ll] = '\0';
	/* METHOD SP TARGET SP HTTP/1.x */
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    sp2 == sp1 + 1) {
		text_answer(c, 400, "Bad Request", "bad request\n");
		return;
	}
	*sp1 = *sp2 = '\0';
	const char *method = line, *target = sp1 + 1;
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		text_answer(c, 405, "Method Not Allowed", "only GET and HEAD\n");
		return;
	}
	size_t tl = strcspn(target, "?");
	if (tl == 1 && target[0] == '/') {
		static const char idx[] = "mxsane: metrics are at /metrics\n";
		hconn_answer(c, 200, "OK", "text/plain; charset=utf-8", idx, sizeof(idx) - 1, head);
		return;
	}
	if (tl != 8 || strncmp(target, "/metrics", 8) != 0) {
		text_answer(c, 404, "Not Found", "not found; metrics are at /metrics\n");
		return;
	}
	struct expo x;
	expo_init(&x);
	c->h->render(c->h->arg, &x);
	if (x.failed)
		text_answer(c, 500, "Internal Server Error",
		            "metrics too large or out of memory\n");
	else
		hconn_answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		             x.buf ? x.buf : "", x.len, head);
	expo_free(&x);
}

/* The end of the request head (after the empty line), or 0 when not there yet. */
static size_t head_end(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '\n')
			continue;
		if (s[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void on_hconn_io(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct hconn *c = arg;
	(void)loop;
	(void)fd;
	if (c->answering) {
		if (events & EV_ERROR) {
			hconn_close(c);
			return;
		}
		hconn_flush(c);
		return;
	}
	for (;;) {
		if (c->inlen == sizeof(c->in)) {
			text_answer(c, 431, "Request Header Fields Too Large",
			            "request too long\n");
			return;
		}
		ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* gone, or said all it will say without a complete request */
			hconn_close(c);
			return;
		}
		size_t from = c->inlen > 3 ? c->inlen - 3 : 0;
		c->inlen += (size_t)n;
		size_t end = head_end(c->in + from, c->inlen - from);
		if (end) {
			hconn_request(c, from + end);
			return;
		}
	}
}

static void on_accept(struct evloop *loop, int fd, unsigned events, void *arg);

static void on_pause_over(struct evloop *loop, void *arg)
{
	struct httpd *h = arg;
	h->pause_timer = NULL;
	if (evloop_watch(loop, h->lfd, EV_READ, on_accept, h) == 0)
		h->paused = false;
	else
		h->pause_timer =
		        evloop_timer(loop, evloop_now(loop) + HTTPD_PAUSE_MS, on_pause_over, h);
}

static void on_accept(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct httpd *h = arg;
	(void)events;
	for (int i = 0; i < HTTPD_ACCEPT_BURST; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* the queue stays full until descriptors come back: do not spin */
				evloop_unwatch(loop, h->lfd);
				h->paused = true;
				h->pause_timer = evloop_timer(
				        loop, evloop_now(loop) + HTTPD_PAUSE_MS, on_pause_over, h);
			}
			return;
		}
		if (h->st.open >= HTTPD_MAX_CONNS) {
			h->st.refused++;
			close(cfd);
			continue;
		}
		struct hconn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->h = h;
		c->fd = cfd;
		c->timer =
		        evloop_timer(loop, evloop_now(loop) + HTTPD_TIMEOUT_MS, on_hconn_timer, c);
		if (!c->timer || evloop_watch(loop, cfd, EV_READ, on_hconn_io, c) < 0) {
			evloop_cancel(loop, c->timer);
			close(cfd);
			free(c);
			continue;
		}
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		h->st.open++;
	}
}

struct httpd *httpd_new(struct evloop *loop, int lfd, httpd_render_cb render, void *arg)
{
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->loop = loop;
	h->lfd = lfd;
	h->render = render;
	h->arg = arg;
	if (evloop_watch(loop, lfd, EV_READ, on_accept, h) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	while (h->conns)
		hconn_close(h->conns);
	if (!h->paused)
		evloop_unwatch(h->loop, h->lfd);
	evloop_cancel(h->loop, h->pause_timer);
	free(h);
}

void httpd_get_stats(const struct httpd *h, struct httpd_stats *st)
{
	*st = h->st;
}

void httpd_write_metrics(const struct httpd *h, struct expo *x)
{
	expo_family(x, "mxsane_metrics_http_connections", "gauge",
	            "Connections to this metrics endpoint open now.");
	expo_u64(x, "mxsane_metrics_http_connections", "", h->st.open);
	expo_family(x, "mxsane_metrics_http_requests_total", "counter",
	            "Connections to this metrics endpoint by what became of them: ok (answered "
	            "200), error (answered 4xx/5xx), refused (closed at accept, over the bound), "
	            "timeout (closed unfinished at the deadline).");
	expo_u64(x, "mxsane_metrics_http_requests_total", "result=\"ok\"",
	         h->st.served + 1); /* + 1: this answer */
	expo_u64(x, "mxsane_metrics_http_requests_total", "result=\"error\"", h->st.errors);
	expo_u64(x, "mxsane_metrics_http_requests_total", "result=\"refused\"", h->st.refused);
	expo_u64(x, "mxsane_metrics_http_requests_total", "result=\"timeout\"", h->st.timeouts);
}

/* "inet:1.2.3.4:PORT", "inet:[::1]:PORT" or "unix:/path" into ss; false if not one. */
static bool parse_spec(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *path,
                       size_t pathlen)
{
	memset(ss, 0, sizeof(*ss));
	path[0] = '\0';
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *su = (struct sockaddr_un *)ss;
		const char *p = spec + 5;
		if (p[0] != '/' || strlen(p) >= sizeof(su->sun_path) || strlen(p) >= pathlen)
			return false;
		su->sun_family = AF_UNIX;
		strcpy(su->sun_path, p);
		strcpy(path, p);
		*len = sizeof(*su);
		return true;
	}
	if (strncmp(spec, "inet:", 5) != 0)
		return false;
	const char *h = spec + 5, *colon;
	char host[64];
	size_t hl;
	bool v6 = h[0] == '[';
	if (v6) {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			return false;
		hl = (size_t)(close - h - 1);
		h++;
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return false;
		hl = (size_t)(colon - h);
	}
	if (hl == 0 || hl >= sizeof(host))
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	char *endp;
	unsigned long port = strtoul(colon + 1, &endp, 10);
	if (!colon[1] || *endp || port == 0 || port > 65535)
		return false;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return false;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	return true;
}

int httpd_listen(const char *spec, uid_t uid, gid_t gid, struct httpd_addr *a, char *err,
                 size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd = -1, one = 1;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", spec);
	if (!parse_spec(spec, &ss, &len, a->path, sizeof(a->path))) {
		snprintf(err, errlen,
		         "metrics.listen %s: expected inet:IP:PORT, inet:[IPv6]:PORT "
		         "or unix:/path",
		         a->text);
		return -1;
	}
	if (a->path[0] && daemon_remove_stale_socket(a->path, err, errlen) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (!a->path[0])
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	mode_t old = a->path[0] ? umask(0177) : 0;
	int rc = bind(fd, (struct sockaddr *)&ss, len);
	if (a->path[0])
		umask(old);
	if (rc < 0)
		goto fail;
	if (a->path[0]) {
		struct stat sb;
		a->created = true;
		if (stat(a->path, &sb) == 0) {
			a->dev = sb.st_dev;
			a->ino = sb.st_ino;
		}
		if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(a->path, uid, gid) < 0)
			goto fail;
		if (chmod(a->path, 0660) < 0)
			goto fail;
	}
	if (listen(fd, 128) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "metrics.listen %s: %s", a->text, strerror(errno));
	if (fd >= 0)
		close(fd);
	httpd_listen_cleanup(a);
	return -1;
}

void httpd_listen_cleanup(struct httpd_addr *a)
{
	struct stat sb;
	if (!a->created)
		return;
	if (lstat(a->path, &sb) == 0 && S_ISSOCK(sb.st_mode) && sb.st_dev == a->dev &&
	    sb.st_ino == a->ino)
		unlink(a->path);
	a->created = false;
}
