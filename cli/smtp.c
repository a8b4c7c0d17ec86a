/*
 * smtp.c - parallel SMTP probes for mxsane-check --smtp (see smtp.h): one non-blocking
 * connection per address, each a small state machine driven by the evloop, one deadline
 * timer for the whole set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"
#include "smtp.h"
#include "text.h"

#define LINE_MAX_  512 /* octets of one reply line kept; the rest of the line is skipped */
#define REPLY_MAXL 100 /* lines of one reply */

enum stage { ST_CONNECT, ST_BANNER, ST_EHLO, ST_MAIL, ST_RCPT, ST_DONE };

struct sess {
	struct smtp_set *set;
	struct smtp_result *res;
	int fd;
	enum stage st;
	char buf[LINE_MAX_ + 1];
	size_t len;
	bool skipping;  /* inside an over-long line: drop octets up to its end */
	unsigned lines; /* lines of the current reply */
	char first[LINE_MAX_ + 1];
	uint64_t start;
};

struct smtp_set {
	struct evloop *loop;
	struct sess *s;
	size_t n, left;
	int timeout_ms;
	char *helo, *rcpt;
	struct ev_timer *deadline, *later;
	smtp_done_cb done;
	void *arg;
};

/* Text from the server, as shown: text.h's one rule. */
static void copy_clean(char *dst, size_t size, const char *src)
{
	text_printable(dst, size, src, strlen(src), 0);
}

static void finish_later(struct evloop *loop, void *arg)
{
	struct smtp_set *set = arg;
	set->later = NULL;
	evloop_cancel(loop, set->deadline);
	set->deadline = NULL;
	set->done(set->arg);
}

static void sess_end(struct sess *s)
{
	struct smtp_set *set = s->set;
	if (s->st == ST_DONE)
		return;
	if (s->fd >= 0) {
		evloop_unwatch(set->loop, s->fd);
		close(s->fd);
		s->fd = -1;
	}
	s->st = ST_DONE;
	s->res->ms = (unsigned)(evloop_now(set->loop) - s->start);
	if (--set->left == 0 && !set->later) {
		set->later = evloop_timer(set->loop, evloop_now(set->loop), finish_later, set);
		if (!set->later) /* out of memory: the deadline timer still ends the set */
			return;
	}
}

/* what failed: "WHAT: DETAIL" (DETAIL may be "") */
static void fail(struct sess *s, const char *what, const char *detail)
{
	snprintf(s->res->error, sizeof(s->res->error), "%s%s%s", what, detail[0] ? ": " : "",
	         detail);
	sess_end(s);
}

/* Send a command; the commands are short and the socket's buffer is empty between them. */
static bool send_cmd(struct sess *s, const char *verb, const char *arg, const char *tail)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "%s%s%s\r\n", verb, arg, tail);
	if (n < 0 || (size_t)n >= sizeof(line))
		return false;
	ssize_t w = send(s->fd, line, (size_t)n, MSG_NOSIGNAL);
	if (w != n) {
		fail(s, "write failed", w < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

static void quit(struct sess *s)
{
	ssize_t w = send(s->fd, "QUIT\r\n", 6, MSG_NOSIGNAL);
	(void)w; /* the answer to QUIT is not awaited */
	sess_end(s);
}

/* A complete reply (code, first line in s->first, all lines seen) arrived. */
static void on_reply(struct sess *s, int code)
{
	struct smtp_result *r = s->res;
	struct smtp_set *set = s->set;
	switch (s->st) {
	case ST_BANNER:
		r->banner = code;
		copy_clean(r->banner_text, sizeof(r->banner_text), s->first);
		if (code != 220) {
			snprintf(r->error, sizeof(r->error), "banner is not 220: %.100s",
			         r->banner_text);
			quit(s);
			return;
		}
		if (send_cmd(s, "EHLO ", set->helo, ""))
			s->st = ST_EHLO;
		return;
	case ST_EHLO:
		r->ehlo = code;
		if (code != 250) {
			copy_clean(r->error, sizeof(r->error), s->first);
			quit(s);
			return;
		}
		if (!set->rcpt) {
			quit(s);
			return;
		}
		if (send_cmd(s, "MAIL FROM:<>", "", ""))
			s->st = ST_MAIL;
		return;
	case ST_MAIL:
		r->mail = code;
		if (code / 100 != 2) {
			copy_clean(r->rcpt_text, sizeof(r->rcpt_text), s->first);
			quit(s);
			return;
		}
		if (send_cmd(s, "RCPT TO:<", set->rcpt, ">"))
			s->st = ST_RCPT;
		return;
	case ST_RCPT:
		r->rcpt = code;
		copy_clean(r->rcpt_text, sizeof(r->rcpt_text), s->first);
		quit(s);
		return;
	default: return;
	}
}

/* One reply line (NUL-terminated, without CR LF). */
static void on_line(struct sess *s, const char *line)
{
	if (strlen(line) < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (line[3] && line[3] != ' ' && line[3] != '-')) {
		char t[80];
		copy_clean(t, sizeof(t), line);
		fail(s, "not an SMTP reply", t);
		return;
	}
	if (s->lines++ == 0)
		memcpy(s->first, line, strlen(line) + 1);
	if (s->st == ST_EHLO && s->lines > 1 && strlen(line) >= 12 &&
	    strncasecmp(line + 4, "STARTTLS", 8) == 0 && (line[12] == '\0' || line[12] == ' '))
		s->res->starttls = true;
	if (line[3] == '-') {
		if (s->lines >= REPLY_MAXL)
			fail(s, "reply of more than 100 lines", "");
		return;
	}
	s->lines = 0;
	on_reply(s, (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
}

static void on_readable(struct sess *s)
{
	char in[2048];
	ssize_t n = recv(s->fd, in, sizeof(in), 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		fail(s, "read failed", strerror(errno));
		return;
	}
	if (n == 0) {
		static const char *const what[] = {
		        [ST_BANNER] = "connection closed before the banner",
		        [ST_EHLO] = "connection closed before the EHLO reply",
		        [ST_MAIL] = "connection closed before the MAIL reply",
		        [ST_RCPT] = "connection closed before the RCPT reply"};
		fail(s, what[s->st] ? what[s->st] : "connection closed", "");
		return;
	}
	for (ssize_t i = 0; i < n && s->st != ST_DONE; i++) {
		char ch = in[i];
		if (ch == '\n') {
			if (s->skipping) {
				s->skipping = false;
				s->len = 0;
				continue;
			}
			if (s->len && s->buf[s->len - 1] == '\r')
				s->len--;
			s->buf[s->len] = '\0';
			s->len = 0;
			on_line(s, s->buf);
			continue;
		}
		if (s->skipping)
			continue;
		if (s->len == LINE_MAX_) {
			/* keep the first LINE_MAX_ octets as the line, drop the rest */
			s->buf[s->len] = '\0';
			s->len = 0;
			s->skipping = true;
			on_line(s, s->buf);
			continue;
		}
		s->buf[s->len++] = ch;
	}
}

static void on_event(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct sess *s = arg;
	(void)fd;
	if (s->st == ST_CONNECT) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			fail(s, "connect", strerror(err));
			return;
		}
		if (!(events & (EV_WRITE | EV_READ)))
			return;
		s->res->connected = true;
		s->st = ST_BANNER;
		if (evloop_watch(loop, s->fd, EV_READ, on_event, s) < 0)
			fail(s, "epoll", strerror(errno));
		return;
	}
	on_readable(s);
}

static void on_deadline(struct evloop *loop, void *arg)
{
	struct smtp_set *set = arg;
	static const char *const what[] = {[ST_CONNECT] = "connect: no answer",
	                                   [ST_BANNER] = "no banner",
	                                   [ST_EHLO] = "no reply to EHLO",
	                                   [ST_MAIL] = "no reply to MAIL FROM",
	                                   [ST_RCPT] = "no reply to RCPT TO"};
	set->deadline = NULL;
	for (size_t i = 0; i < set->n; i++) {
		struct sess *s = &set->s[i];
		if (s->st == ST_DONE)
			continue;
		snprintf(s->res->error, sizeof(s->res->error), "%s within %d ms", what[s->st],
		         set->timeout_ms);
		sess_end(s);
	}
	if (set->later) {
		evloop_cancel(loop, set->later);
		set->later = NULL;
	}
	set->done(set->arg);
}

static void sess_start(struct smtp_set *set, struct sess *s, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) {
			fail(s, "not an address", addr);
			return;
		}
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) {
			fail(s, "not an address", addr);
			return;
		}
	}
	s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		fail(s, "socket", strerror(errno));
		return;
	}
	if (connect(s->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		fail(s, "connect", strerror(errno));
		return;
	}
	if (evloop_watch(set->loop, s->fd, EV_WRITE, on_event, s) < 0)
		fail(s, "epoll", strerror(errno));
}

struct smtp_set *smtp_start(struct evloop *loop, const char *const *addrs, size_t n,
                            const struct smtp_params *p, struct smtp_result *out, smtp_done_cb done,
                            void *arg)
{
	struct smtp_set *set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	set->loop = loop;
	set->n = set->left = n;
	set->timeout_ms = p->timeout_ms;
	set->done = done;
	set->arg = arg;
	set->s = calloc(n ? n : 1, sizeof(*set->s));
	set->helo = strdup(p->helo);
	set->rcpt = p->rcpt ? strdup(p->rcpt) : NULL;
	uint64_t now = evloop_now(loop);
	set->deadline = evloop_timer(loop, now + (uint64_t)p->timeout_ms, on_deadline, set);
	if (!set->s || !set->helo || (p->rcpt && !set->rcpt) || !set->deadline)
		goto fail;
	if (n == 0) {
		set->later = evloop_timer(loop, now, finish_later, set);
		if (!set->later)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct sess *s = &set->s[i];
		memset(&out[i], 0, sizeof(out[i]));
		copy_clean(out[i].addr, sizeof(out[i].addr), addrs[i]);
		s->set = set;
		s->res = &out[i];
		s->fd = -1;
		s->st = ST_CONNECT;
		s->start = now;
	}
	for (size_t i = 0; i < n; i++)
		sess_start(set, &set->s[i], addrs[i], p->port);
	return set;
fail:
	evloop_cancel(loop, set->deadline);
	free(set->s);
	free(set->helo);
	free(set->rcpt);
	free(set);
	return NULL;
}

void smtp_free(struct smtp_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		struct sess *s = &set->s[i];
		if (s->fd >= 0) {
			evloop_unwatch(set->loop, s->fd);
			close(s->fd);
		}
	}
	evloop_cancel(set->loop, set->deadline);
	evloop_cancel(set->loop, set->later);
	free(set->s);
	free(set->helo);
	free(set->rcpt);
	free(set);
}
