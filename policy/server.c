/*
 * server.c - connections of mxsane-policyd: accept, read, parse, check, reply, time out.
 *
 * A connection moves through: receiving a request (parser fed from the read-ahead buffer) ->
 * checking (at most one engine check at a time: the sender, then the recipient) -> reply
 * queued -> next request.  Reading goes on while a check runs, so a client that goes away is
 * noticed and its check cancelled; what it sends meanwhile waits in the read-ahead buffer.
 *
 * The engine may run the check callback synchronously from engine_check (cache hits, skips):
 * `starting` tells the callback not to re-enter conn_process, which is already on the stack.
 * Every function that may close (and free) a connection returns false when it did; callers
 * must not touch the connection after that.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "evloop.h"
#include "decision.h"
#include "log.h"
#include "request.h"
#include "text.h"

/* A header line stays below 998 octets (RFC 5322); a reply line is reply_line()'s (verdict.h). */
#define HEADER_MAX 900

struct listener {
	int fd;
	char name[160];
};

struct conn {
	struct server *s;
	struct conn *prev, *next;
	int rfd, wfd;
	bool stdio;
	char peer[96];      /* address and port (or unix credentials), for connection messages */
	char peer_addr[64]; /* the asking MTA's address alone: peer= of every decision line */

	struct preq *parser;
	struct policy_request req; /* valid while have_req */
	bool have_req;
	bool req_rcpt;     /* its protocol_state is RCPT (the checks run only then) */
	uint64_t req_seq;  /* number of the current request, server-wide */
	int step;          /* 0: sender check next, 1: recipient check next, 2: reply */
	struct check *chk; /* pending engine check, or NULL while it runs synchronously */
	bool pending;      /* a check is running */
	bool starting;     /* inside engine_check */

	/* the answer being built for the current request */
	char answer[1200];
	bool answer_final; /* reject/tempfail: no further check */
	bool answer_warn;  /* a PREPEND is in answer */
	/* The transaction whose sender verdict was last logged: Postfix's instance attribute
	 * (one per message) and the sender.  The sender is checked again for each further
	 * recipient of that message; those lines are marked repeat=yes when the verdict is the
	 * same (a dns_error followed by ok is logged twice, plain).  Compared by length and bytes
	 * (no hashing per line: this runs for every sender check). */
	char logged_instance[64]; /* the last sender line logged: its transaction, */
	char logged_sender[256];  /* sender (longer ones are never marked as repeats) */
	size_t logged_il, logged_sl;
	int logged_verdict; /* and verdict */

	char *in; /* read ahead, not yet fed to the parser */
	size_t inlen, inoff;
	bool in_borrowed; /* in is the server's scratch buffer (inside conn_read only) */
	char *out;        /* replies not yet written */
	size_t outlen, outoff, outcap;

	unsigned rev;            /* events registered on rfd */
	bool rwatched, wwatched; /* reading / writing is on (registered, or rfile) */
	bool rfile;              /* rfd is a regular file (-s < file): epoll refuses those, */
	struct ev_timer *rtimer; /* so it is read from a timer instead */

	bool eof;                        /* end of input seen */
	bool closing;                    /* close once the current reply is written (shutdown) */
	uint64_t last_active, req_start; /* ms; req_start 0: no partial request */
	uint64_t req_deadline;           /* ms: all checks of the current request end by then */
	struct ev_timer *timer;
	uint64_t timer_when;
};

struct server {
	struct evloop *loop;
	struct engine *e;
	struct listener *ls;
	size_t nls;
	struct conn *conns;
	size_t nconns;
	unsigned idle_ms;
	unsigned max_conns;
	unsigned fd_room; /* 0: none; else at most this many (open file limit less reserve) */
	unsigned long long nofile;
	bool shutting;
	bool stdio_mode;
	struct ev_timer *grace_timer;
	void (*done)(void *);
	void *done_arg;
	bool done_called;
	int spare_fd; /* kept open to accept-and-close when out of descriptors */
	uint64_t refuse_log_at, refused_quiet;
	uint64_t req_seq; /* requests numbered as they complete */
	/* The log context of one request rendered once for its sender and recipient lines:
	 * valid for request ctx_seq (0: none) in format ctx_fmt; ctx_len 0 if too long. */
	uint64_t ctx_seq;
	enum log_format ctx_fmt;
	size_t ctx_len;
	char ctx_buf[3072];
	struct server_stats st;
	char scratch[SERVER_BACKLOG_MAX];
};

static bool conn_process(struct conn *c);
static bool conn_flush(struct conn *c);
static void conn_close(struct conn *c);
static void on_conn_io(struct evloop *loop, int fd, unsigned events, void *arg);
static void on_rfile(struct evloop *loop, void *arg);

/* ------------------------------------------------------------------ bookkeeping */

static void server_maybe_done(struct server *s)
{
	if (s->nconns == 0 && (s->shutting || s->stdio_mode) && !s->done_called) {
		s->done_called = true;
		if (s->grace_timer)
			evloop_cancel(s->loop, s->grace_timer);
		s->grace_timer = NULL;
		if (s->done)
			s->done(s->done_arg);
	}
}

static uint64_t conn_deadline(const struct conn *c)
{
	return (c->req_start ? c->req_start : c->last_active) + c->s->idle_ms;
}

static void on_conn_timer(struct evloop *loop, void *arg);

static void conn_arm(struct conn *c)
{
	uint64_t when = conn_deadline(c);
	if (c->timer && c->timer_when <= when)
		return; /* fires first, then re-arms for the later deadline */
	evloop_cancel(c->s->loop, c->timer);
	c->timer = evloop_timer(c->s->loop, when, on_conn_timer, c);
	c->timer_when = when;
	/* out of memory: no idle timeout for this connection until the next arm */
}

static void on_conn_timer(struct evloop *loop, void *arg)
{
	struct conn *c = arg;
	uint64_t now = evloop_now(loop);
	c->timer = NULL;
	if (c->pending) {
		c->last_active = now; /* the engine answers within resolver.timeout_ms */
		conn_arm(c);
		return;
	}
	if (now < conn_deadline(c)) {
		conn_arm(c);
		return;
	}
	if (c->req_start)
		log_msg(LOG_INFO, "client %s: request not complete after %u s; closing", c->peer,
		        c->s->idle_ms / 1000);
	else
		log_msg(LOG_INFO, "client %s: idle for %u s; closing", c->peer,
		        c->s->idle_ms / 1000);
	c->s->st.idle_closed++;
	conn_close(c);
}

/* Register the events the connection can use now. */
static void conn_watch(struct conn *c)
{
	bool want_r = !c->eof && !c->closing && c->inlen - c->inoff < SERVER_BACKLOG_MAX &&
	              c->outlen - c->outoff < SERVER_OUTPUT_MAX;
	bool want_w = c->outlen > c->outoff;
	struct evloop *loop = c->s->loop;

	if (c->rfd == c->wfd) {
		unsigned ev = (want_r ? EV_READ : 0) | (want_w ? EV_WRITE : 0);
		if (!c->rwatched || ev != c->rev) {
			/* 0 keeps the socket registered: errors and hang-ups are still reported */
			if (evloop_watch(loop, c->rfd, ev, on_conn_io, c) == 0) {
				c->rev = ev;
				c->rwatched = true;
			}
		}
		return;
	}
	/* separate descriptors (stdio): a pipe reports hang-up even when not asked, so an
	 * unwanted side is removed from the loop altogether */
	if (want_r && !c->rwatched) {
		if (evloop_watch(loop, c->rfd, EV_READ, on_conn_io, c) == 0)
			c->rwatched = true;
		else if (errno == EPERM)
			c->rwatched = c->rfile = true; /* a regular file: always readable */
	} else if (!want_r && c->rwatched) {
		if (!c->rfile)
			evloop_unwatch(loop, c->rfd);
		c->rwatched = false;
	}
	if (c->rfile && c->rwatched && !c->rtimer)
		c->rtimer = evloop_timer(loop, evloop_now(loop), on_rfile, c);
	else if (c->rfile && !c->rwatched && c->rtimer) {
		evloop_cancel(loop, c->rtimer);
		c->rtimer = NULL;
	}
	if (want_w && !c->wwatched) {
		if (evloop_watch(loop, c->wfd, EV_WRITE, on_conn_io, c) == 0)
			c->wwatched = true;
	} else if (!want_w && c->wwatched) {
		evloop_unwatch(loop, c->wfd);
		c->wwatched = false;
	}
}

/* Reading a regular file: the next buffer, one per loop iteration like a socket. */
static void on_rfile(struct evloop *loop, void *arg)
{
	struct conn *c = arg;
	c->rtimer = NULL;
	on_conn_io(loop, c->rfd, EV_READ, c);
}

static struct conn *conn_new(struct server *s, int rfd, int wfd, bool stdio, const char *peer,
                             const char *peer_addr)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->parser = preq_new();
	c->s = s;
	c->rfd = rfd;
	c->wfd = wfd;
	c->stdio = stdio;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", peer_addr);
	c->last_active = evloop_now(s->loop);
	if (c->parser)
		conn_watch(c);
	if (!c->rwatched) {
		preq_free(c->parser);
		free(c);
		return NULL;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->st.accepted++;
	conn_arm(c);
	return c;
}

/* Close and free: cancels a pending check, drops unwritten replies. */
static void conn_close(struct conn *c)
{
	struct server *s = c->s;
	if (c->pending) {
		if (c->chk)
			engine_cancel(s->e, c->chk);
		c->chk = NULL;
		c->pending = false;
		s->st.cancelled++;
	}
	if (c->rwatched && !c->rfile)
		evloop_unwatch(s->loop, c->rfd);
	evloop_cancel(s->loop, c->rtimer);
	if (c->wwatched)
		evloop_unwatch(s->loop, c->wfd);
	if (c->stdio) {
		/* stdout may be shared with nothing else; closing tells spawn(8) we are done */
		close(c->rfd);
		if (c->wfd != c->rfd)
			close(c->wfd);
	} else {
		close(c->rfd);
	}
	evloop_cancel(s->loop, c->timer);
	preq_free(c->parser);
	if (!c->in_borrowed)
		free(c->in);
	free(c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c);
	server_maybe_done(s);
}

/* ------------------------------------------------------------------ replies */

static bool out_append(struct conn *c, const char *s, size_t len)
{
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 256;
		while (cap < c->outlen + len)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (!n)
			return false;
		c->out = n;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
	return true;
}

static void log_ctx_of(const struct conn *c, struct log_ctx *ctx)
{
	const struct policy_request *r = &c->req;
	memset(ctx, 0, sizeof(*ctx));
	ctx->peer = c->peer_addr;
	ctx->instance = r->v[PA_INSTANCE];
	ctx->queue_id = r->v[PA_QUEUE_ID] && r->v[PA_QUEUE_ID][0] ? r->v[PA_QUEUE_ID] : NULL;
	ctx->client_addr = r->v[PA_CLIENT_ADDRESS];
	ctx->client_name = r->v[PA_CLIENT_NAME];
	ctx->helo = r->v[PA_HELO_NAME];
	ctx->sender = r->v[PA_SENDER];
	ctx->recipient = r->v[PA_RECIPIENT];
}

/* Has this transaction's sender verdict v been logged on this connection already?
 * Remembers it when not.  Without an instance attribute (not from Postfix) every line
 * counts. */
static bool sender_seen(struct conn *c, enum verdict v)
{
	const char *inst = c->req.v[PA_INSTANCE], *snd = c->req.v[PA_SENDER];
	size_t il = inst ? c->req.len[PA_INSTANCE] : 0, sl = snd ? c->req.len[PA_SENDER] : 0;
	if (!il || !snd || il >= sizeof(c->logged_instance) || sl >= sizeof(c->logged_sender)) {
		c->logged_il = 0;
		return false;
	}
	if (il == c->logged_il && sl == c->logged_sl && (int)v == c->logged_verdict &&
	    memcmp(inst, c->logged_instance, il) == 0 && memcmp(snd, c->logged_sender, sl) == 0)
		return true;
	memcpy(c->logged_instance, inst, il);
	memcpy(c->logged_sender, snd, sl);
	c->logged_il = il;
	c->logged_sl = sl;
	c->logged_verdict = (int)v;
	return false;
}

static void on_check_done(void *arg, const struct check_result *res)
{
	struct conn *c = arg;
	struct log_ctx ctx;

	c->pending = false;
	c->chk = NULL;
	log_ctx_of(c, &ctx);
	if (res->role == ROLE_SENDER)
		ctx.repeat = sender_seen(c, res->verdict);
	struct server *s = c->s;
	enum log_format fmt = log_get_format();
	if (s->ctx_seq != c->req_seq || s->ctx_fmt != fmt) {
		s->ctx_len = log_render_ctx(s->ctx_buf, sizeof(s->ctx_buf), fmt, &ctx);
		s->ctx_seq = c->req_seq;
		s->ctx_fmt = fmt;
	}
	if (s->ctx_len) {
		ctx.rendered = s->ctx_buf;
		ctx.rendered_len = s->ctx_len;
		ctx.rendered_fmt = fmt;
	}
	log_decision(&ctx, res);

	if ((res->action == ACT_REJECT || res->action == ACT_TEMPFAIL) && res->reply.code) {
		/* the first check that does not accept the mail decides; a warning from an
		 * earlier check gives way to it */
		char line[REPLY_LINE_MAX + 1];
		reply_line(line, sizeof(line), res->reply,
		           res->text && res->text[0] ? res->text : res->reason);
		snprintf(c->answer, sizeof(c->answer), "action=%s\n\n", line);
		c->answer_final = true;
		c->answer_warn = false;
	} else if (res->action == ACT_WARN && !c->answer_warn && !c->answer_final) {
		char hdr[HEADER_MAX + 1], fallback[600];
		const char *h = res->header;
		if (!h || !h[0]) {
			snprintf(fallback, sizeof(fallback), "%s %s", verdict_name(res->verdict),
			         res->domain ? res->domain : "");
			h = fallback;
		}
		text_printable(hdr, sizeof(hdr), h, strlen(h), 0);
		snprintf(c->answer, sizeof(c->answer), "action=PREPEND X-MXSane: %s\n\n", hdr);
		c->answer_warn = true;
	}
	if (!c->starting)
		conn_process(c); /* may close c */
}

static bool state_is_rcpt(const struct policy_request *r)
{
	return r->v[PA_PROTOCOL_STATE] && strcasecmp(r->v[PA_PROTOCOL_STATE], "RCPT") == 0;
}

/* Start the next check of the current request, or queue its reply.  false: c was closed. */
static bool conn_step(struct conn *c)
{
	const struct policy_request *r = &c->req;
	struct check_request cr;
	int step = c->step++;

	memset(&cr, 0, sizeof(cr));
	cr.client_addr = r->v[PA_CLIENT_ADDRESS] && r->v[PA_CLIENT_ADDRESS][0]
	                         ? r->v[PA_CLIENT_ADDRESS]
	                         : NULL;
	cr.authenticated = r->v[PA_SASL_USERNAME] && r->v[PA_SASL_USERNAME][0];
	cr.deadline = c->req_deadline;
	/* checks.sender, checks.recipient and the other gates are the engine's: a check it
	 * does not run ends as "skipped", logged as in the milter */
	if (step == 0 && c->req_rcpt && r->v[PA_SENDER]) {
		cr.role = ROLE_SENDER;
		cr.address = r->v[PA_SENDER];
		cr.address_len = r->len[PA_SENDER];
		/* the recipient's entry in recipient_policies_file (if any) decides how the
		 * sender's verdict applies to this recipient: the engine looks it up */
		cr.policy_recipient = r->v[PA_RECIPIENT];
		cr.policy_recipient_len = r->v[PA_RECIPIENT] ? r->len[PA_RECIPIENT] : 0;
	} else if (step <= 1 && c->req_rcpt && !c->answer_final && r->v[PA_RECIPIENT]) {
		c->step = 2;
		cr.role = ROLE_RECIPIENT;
		cr.address = r->v[PA_RECIPIENT];
		cr.address_len = r->len[PA_RECIPIENT];
	} else {
		/* every check done: answer */
		if (!c->req_rcpt)
			log_msg(LOG_DEBUG, "client %s: protocol_state=%s: DUNNO", c->peer,
			        r->v[PA_PROTOCOL_STATE] ? r->v[PA_PROTOCOL_STATE] : "(none)");
		const char *a = c->answer[0] ? c->answer : "action=DUNNO\n\n";
		c->have_req = false;
		c->s->st.requests++;
		if (!out_append(c, a, strlen(a))) {
			log_msg(LOG_ERR, "client %s: out of memory; closing", c->peer);
			conn_close(c);
			return false;
		}
		return conn_flush(c);
	}
	c->pending = true;
	c->starting = true;
	struct check *h = engine_check(c->s->e, &cr, on_check_done, c);
	c->starting = false;
	if (c->pending)
		c->chk = h;
	return true;
}

/* ------------------------------------------------------------------ I/O */

/* Nothing more will happen on this connection: close it (stdio at end of input, or stop). */
static bool conn_finished(const struct conn *c)
{
	return !c->pending && !c->have_req && c->outoff == c->outlen &&
	       (c->closing || (c->eof && c->inoff == c->inlen));
}

/* Write what can be written.  false: c was closed. */
static bool conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = write(c->wfd, c->out + c->outoff, c->outlen - c->outoff);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_msg(LOG_INFO, "client %s: write: %s; closing", c->peer,
			        strerror(errno));
			conn_close(c);
			return false;
		}
		c->outoff += (size_t)n;
		c->last_active = evloop_now(c->s->loop);
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->outcap > 4096) {
			free(c->out);
			c->out = NULL;
			c->outcap = 0;
		}
	}
	if (conn_finished(c)) {
		if (c->eof && !preq_idle(c->parser))
			log_msg(LOG_INFO, "client %s: input ended in the middle of a request",
			        c->peer);
		conn_close(c);
		return false;
	}
	conn_watch(c);
	return true;
}

/* Feed read-ahead bytes to the parser and run checks until something has to wait.
 * false: c was closed. */
static bool conn_process(struct conn *c)
{
	while (!c->pending) {
		if (c->have_req) {
			if (!conn_step(c))
				return false;
			continue;
		}
		if (c->closing || c->inoff == c->inlen ||
		    c->outlen - c->outoff >= SERVER_OUTPUT_MAX)
			break;
		size_t used = 0;
		const char *why = NULL;
		enum preq_status st = preq_feed(c->parser, c->in + c->inoff, c->inlen - c->inoff,
		                                &used, &c->req, &why);
		c->inoff += used;
		if (st == PREQ_ERROR) {
			log_msg(LOG_WARNING,
			        "client %s: malformed request: %s; closing the connection", c->peer,
			        why ? why : "?");
			c->s->st.malformed++;
			conn_close(c);
			return false;
		}
		if (st == PREQ_DONE) {
			c->have_req = true;
			c->req_rcpt = state_is_rcpt(&c->req);
			c->req_seq = ++c->s->req_seq;
			c->step = 0;
			/* one budget for the whole request, sender and recipient checks together */
			c->req_deadline =
			        evloop_now(c->s->loop) + engine_config(c->s->e)->timeout_ms;
			c->answer[0] = '\0';
			c->answer_final = c->answer_warn = false;
			c->req_start = 0;
		} else if (!c->req_start && !preq_idle(c->parser)) {
			c->req_start = evloop_now(c->s->loop);
		}
	}
	if (c->inoff == c->inlen) {
		if (!c->in_borrowed)
			free(c->in);
		c->in = NULL;
		c->in_borrowed = false;
		c->inoff = c->inlen = 0;
	}
	if (conn_finished(c)) {
		if (c->eof && !preq_idle(c->parser))
			log_msg(LOG_INFO, "client %s: input ended in the middle of a request",
			        c->peer);
		conn_close(c);
		return false;
	}
	conn_watch(c);
	conn_arm(c);
	return true;
}

/* After conn_process on the borrowed scratch buffer: keep the unread rest in a buffer of
 * the connection's own.  false: c was closed (out of memory). */
static bool conn_keep_rest(struct conn *c)
{
	if (!c->in_borrowed)
		return true;
	size_t rest = c->inlen - c->inoff;
	char *copy = rest ? malloc(rest) : NULL;
	if (rest && !copy) {
		c->in = NULL;
		c->in_borrowed = false;
		c->inoff = c->inlen = 0;
		log_msg(LOG_ERR, "client %s: out of memory; closing", c->peer);
		conn_close(c);
		return false;
	}
	if (rest)
		memcpy(copy, c->in + c->inoff, rest);
	c->in = copy;
	c->in_borrowed = false;
	c->inoff = 0;
	c->inlen = rest;
	return true;
}

/* One read (fairness: a busy client gets one buffer per loop iteration).  false: closed. */
static bool conn_read(struct conn *c)
{
	struct server *s = c->s;
	size_t ahead = c->inlen - c->inoff;
	size_t room = SERVER_BACKLOG_MAX - ahead;
	ssize_t n;

	if (ahead >= SERVER_BACKLOG_MAX)
		return true;
	do
		n = read(c->rfd, s->scratch, room);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		log_msg(LOG_INFO, "client %s: read: %s; closing", c->peer, strerror(errno));
		conn_close(c);
		return false;
	}
	if (n == 0) {
		c->eof = true;
		if (!c->stdio) {
			/* the client is gone: nobody is left to answer */
			if (c->pending || c->have_req || !preq_idle(c->parser) || ahead)
				log_msg(LOG_INFO,
				        "client %s: disconnected with a request in progress",
				        c->peer);
			else
				log_msg(LOG_DEBUG, "client %s: disconnected", c->peer);
			conn_close(c);
			return false;
		}
		return conn_process(c);
	}
	c->last_active = evloop_now(s->loop);
	if (ahead == 0 && !c->pending && !c->have_req) {
		/* The usual case, nothing read ahead: the parser takes the bytes straight from
		 * the scratch buffer (it copies what it keeps), and only what it leaves - the
		 * start of the next request - is copied before the buffer is used again. */
		free(c->in);
		c->in = s->scratch;
		c->in_borrowed = true;
		c->inoff = 0;
		c->inlen = (size_t)n;
		if (!conn_process(c))
			return false;
		return conn_keep_rest(c);
	}
	if (c->inoff > 0 && c->inoff == c->inlen)
		c->inoff = c->inlen = 0;
	if (c->inoff > 0) {
		memmove(c->in, c->in + c->inoff, ahead);
		c->inoff = 0;
		c->inlen = ahead;
	}
	char *nb = realloc(c->in, c->inlen + (size_t)n);
	if (!nb) {
		log_msg(LOG_ERR, "client %s: out of memory; closing", c->peer);
		conn_close(c);
		return false;
	}
	c->in = nb;
	memcpy(c->in + c->inlen, s->scratch, (size_t)n);
	c->inlen += (size_t)n;
	if (c->pending || c->have_req) {
		conn_watch(c); /* may pause reading when the read-ahead is full */
		return true;
	}
	return conn_process(c);
}

static void on_conn_io(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct conn *c = arg;
	(void)loop;
	if (fd == c->rfd && (events & EV_READ) && !c->eof) {
		if (!conn_read(c))
			return;
		if (c->rfile)
			conn_watch(c); /* next buffer at the next iteration, if still wanted */
	}
	if (fd == c->wfd && (events & EV_WRITE)) {
		bool was_full = c->outlen - c->outoff >= SERVER_OUTPUT_MAX;
		if (!conn_flush(c))
			return;
		if (was_full && !conn_process(c))
			return;
	}
	if ((events & EV_ERROR) && !(events & (EV_READ | EV_WRITE))) {
		if (c->stdio && fd == c->rfd && c->rfd != c->wfd) {
			/* hang-up on stdin while not reading: look again when reading resumes */
			evloop_unwatch(c->s->loop, c->rfd);
			c->rwatched = false;
			return;
		}
		log_msg(LOG_INFO, "client %s: connection error or hang-up; closing", c->peer);
		conn_close(c);
	}
}

/* ------------------------------------------------------------------ accepting */

/* out: "192.0.2.1:41234", "[2001:db8::1]:41234" or "unix:pid=..,uid=.."; host: the address
 * alone ("unix" for a unix socket), at least INET6_ADDRSTRLEN bytes. */
static void peer_name(int fd, const struct sockaddr_storage *ss, char *out, size_t outlen,
                      char *host)
{
	snprintf(host, INET6_ADDRSTRLEN, "unix");
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, INET6_ADDRSTRLEN);
		snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, INET6_ADDRSTRLEN);
		snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		struct ucred uc;
		socklen_t l = sizeof(uc);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0)
			snprintf(out, outlen, "unix:pid=%d,uid=%u", (int)uc.pid, (unsigned)uc.uid);
		else
			snprintf(out, outlen, "unix");
	}
}

/* Log refusals at most once a second, with the number kept quiet in between. */
static void log_refusal(struct server *s, const char *peer, const char *why)
{
	uint64_t now = evloop_now(s->loop);
	if (now < s->refuse_log_at) {
		s->refused_quiet++;
		return;
	}
	if (s->refused_quiet)
		log_msg(LOG_WARNING,
		        "connection from %s refused: %s (and %llu more in the last second)", peer,
		        why, (unsigned long long)s->refused_quiet);
	else
		log_msg(LOG_WARNING, "connection from %s refused: %s", peer, why);
	s->refused_quiet = 0;
	s->refuse_log_at = now + 1000;
}

/* policy.allow_clients: when set, a TCP peer outside it is closed before anything is read.
 * A unix socket is left to its file permissions. */
static bool peer_allowed(const struct config *cfg, const struct sockaddr_storage *ss)
{
	if (!cfg || !cfg->policy_allow_set)
		return true;
	if (ss->ss_family == AF_INET)
		return netlist_match(&cfg->policy_allow_clients, AF_INET,
		                     &((const struct sockaddr_in *)ss)->sin_addr);
	if (ss->ss_family == AF_INET6)
		return netlist_match(&cfg->policy_allow_clients, AF_INET6,
		                     &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

static void on_accept(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct server *s = arg;
	(void)loop;
	(void)events;
	for (int i = 0; i < 64 && !s->shutting; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
				/* out of descriptors: take the connection off the queue with the
				 * spare and close it, so the client learns at once instead of
				 * hanging */
				close(s->spare_fd);
				cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
				if (cfd >= 0)
					close(cfd);
				s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				s->st.refused++;
				log_refusal(s, "?",
				            "out of file descriptors (raise the open file limit)");
				continue;
			}
			log_msg(LOG_ERR, "accept: %s", strerror(errno));
			return;
		}
		char peer[96], host[INET6_ADDRSTRLEN];
		peer_name(cfd, &ss, peer, sizeof(peer), host);
		if (!peer_allowed(engine_config(s->e), &ss)) {
			close(cfd);
			s->st.refused++;
			log_refusal(s, peer, "not in policy.allow_clients");
			continue;
		}
		if (s->nconns >= s->max_conns) {
			char why[128];
			close(cfd);
			s->st.refused++;
			snprintf(why, sizeof(why),
			         "%zu connections open (policy.max_connections = %u)", s->nconns,
			         s->max_conns);
			log_refusal(s, peer, why);
			continue;
		}
		if (s->fd_room && s->nconns >= s->fd_room) {
			char why[192];
			close(cfd);
			s->st.refused++;
			snprintf(why, sizeof(why),
			         "%zu connections open, all the open file limit (%llu) allows: the "
			         "other descriptors are kept for DNS queries",
			         s->nconns, s->nofile);
			log_refusal(s, peer, why);
			continue;
		}
		if (!conn_new(s, cfd, cfd, false, peer, host)) {
			log_msg(LOG_ERR, "client %s: out of memory; closing", peer);
			close(cfd);
			continue;
		}
		log_msg(LOG_DEBUG, "client %s: connected (%zu open)", peer, s->nconns);
	}
}

/* ------------------------------------------------------------------ public */

struct server *server_new(struct evloop *loop, struct engine *e)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->e = e;
	s->idle_ms = 300 * 1000;
	s->max_conns = 20000;
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return s;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	s->done_called = true; /* no callback from here */
	while (s->conns)
		conn_close(s->conns);
	for (size_t i = 0; i < s->nls; i++)
		evloop_unwatch(s->loop, s->ls[i].fd);
	free(s->ls);
	evloop_cancel(s->loop, s->grace_timer);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	free(s);
}

void server_set_limits(struct server *s, unsigned idle_timeout_s, unsigned max_connections)
{
	unsigned old = s->idle_ms;
	s->idle_ms = idle_timeout_s * 1000u;
	s->max_conns = max_connections;
	if (s->idle_ms < old)
		for (struct conn *c = s->conns; c; c = c->next) {
			evloop_cancel(s->loop, c->timer);
			c->timer = NULL;
			conn_arm(c);
		}
}

void server_set_fd_room(struct server *s, unsigned room, unsigned long long nofile)
{
	s->fd_room = room;
	s->nofile = nofile;
}

int server_add_listener(struct server *s, int fd, const char *name)
{
	struct listener *n = realloc(s->ls, (s->nls + 1) * sizeof(*n));
	if (!n)
		return -1;
	s->ls = n;
	if (evloop_watch(s->loop, fd, EV_READ, on_accept, s) < 0)
		return -1;
	s->ls[s->nls].fd = fd;
	snprintf(s->ls[s->nls].name, sizeof(s->ls[s->nls].name), "%s", name);
	s->nls++;
	return 0;
}

int server_add_stdio(struct server *s, int rfd, int wfd)
{
	for (int fd = rfd;; fd = wfd) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -1;
		if (fd == wfd)
			break;
	}
	if (!conn_new(s, rfd, wfd, true, "stdin", "stdin"))
		return -1;
	s->stdio_mode = true;
	return 0;
}

void server_set_done(struct server *s, void (*done)(void *arg), void *arg)
{
	s->done = done;
	s->done_arg = arg;
}

static void on_grace_over(struct evloop *loop, void *arg)
{
	struct server *s = arg;
	(void)loop;
	s->grace_timer = NULL;
	if (s->nconns)
		log_msg(LOG_WARNING,
		        "stopping: closing %zu connection%s still waiting for an answer", s->nconns,
		        s->nconns == 1 ? "" : "s");
	while (s->conns)
		conn_close(s->conns);
	server_maybe_done(s);
}

void server_shutdown(struct server *s, unsigned grace_ms)
{
	if (s->shutting)
		return;
	s->shutting = true;
	for (size_t i = 0; i < s->nls; i++)
		evloop_unwatch(s->loop, s->ls[i].fd);
	s->nls = 0; /* forgotten: the caller may close them now */
	struct conn *c = s->conns, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->pending || c->have_req || c->outoff < c->outlen) {
			c->closing = true; /* answer this request, then close */
			conn_watch(c);
		} else {
			conn_close(c);
		}
	}
	if (s->nconns)
		s->grace_timer =
		        evloop_timer(s->loop, evloop_now(s->loop) + grace_ms, on_grace_over, s);
	server_maybe_done(s);
}

void server_get_stats(const struct server *s, struct server_stats *st)
{
	*st = s->st;
	st->open = s->nconns;
}
