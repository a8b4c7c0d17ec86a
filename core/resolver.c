/*
 * resolver.c - c-ares channels wired to an evloop via ARES_OPT_SOCK_STATE_CB, with one timer
 * re-armed from ares_timeout() of every busy channel after every step.
 *
 * Why more than one channel: c-ares 1.18 handles a read error on a TCP connection (a reset
 * by the server) in handle_error(), which closes every socket of that channel to the server,
 * UDP and TCP, and moves every query pending on it to its next try.  One domain whose TCP
 * answer ends in a reset, asked three times, used up all three tries of every unrelated
 * lookup in flight at that moment (a 4xx for good mail).  So:
 *   - the main channel is UDP only: ARES_FLAG_IGNTC hands a truncated reply to on_udp_answer
 *     instead of switching the query to TCP on the same channel;
 *   - a truncated reply is asked again on a TCP channel (ARES_FLAG_USEVC) that carries only
 *     that query while it runs, so a reset costs tries of that query and of no other.
 * TCP channels are made when first needed, kept for reuse while idle (an idle channel holds
 * no socket: without ARES_FLAG_STAYOPEN c-ares closes them when its last query ends), and
 * at most TCP_CHANNELS_MAX exist: beyond that, re-asked queries share the least busy one.
 */
#include "resolver.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmsg.h"
#include "evloop.h"

/* Bound on TCP channels (each one a TCP connection while busy, ~50 KiB of c-ares tables),
 * and on those kept while idle. */
#define TCP_CHANNELS_MAX  32
#define TCP_CHANNELS_IDLE 4
#define DNS_UDP_MAX       512 /* RFC 1035 4.2.1; EDNS stays off */

struct chan {
	struct resolver *r;
	ares_channel ch;
	size_t pending; /* queries on this channel */
};

struct resolver {
	struct evloop *loop;
	struct chan udp;                    /* every query starts here */
	struct chan *tcp[TCP_CHANNELS_MAX]; /* tcp[0..ntcp-1]: made on the first truncation */
	size_t ntcp;
	char *servers_csv; /* NULL: /etc/resolv.conf; for the TCP channels */
	unsigned budget_ms;
	struct ev_timer *timer;
	size_t pending; /* callbacks still owed to callers */
	uint64_t sent;
	uint64_t *truncated; /* resolver_count_truncated, or NULL */
	unsigned depth;      /* inside ares_process_fd: no channel may be destroyed */
	bool in_free;
};

struct query {
	struct resolver *r;
	struct chan *c; /* the channel it is on now */
	resolver_cb cb;
	void *arg;
	uint16_t qtype;
	char name[]; /* kept to ask again over TCP */
};

int resolver_library_init(void)
{
	return ares_library_init(ARES_LIB_INIT_ALL);
}

static void arm_timer(struct resolver *r);

/* Destroy idle TCP channels beyond TCP_CHANNELS_IDLE.  Only outside ares_process_fd: a
 * callback may run inside one channel's processing. */
static void reap_idle(struct resolver *r)
{
	size_t idle = 0;
	if (r->depth || r->in_free)
		return;
	for (size_t i = 0; i < r->ntcp;) {
		struct chan *c = r->tcp[i];
		if (c->pending || ++idle <= TCP_CHANNELS_IDLE) {
			i++;
			continue;
		}
		ares_destroy(c->ch); /* idle: no callback runs */
		free(c);
		r->tcp[i] = r->tcp[--r->ntcp];
		r->tcp[r->ntcp] = NULL;
	}
}

static void process(struct chan *c, ares_socket_t rfd, ares_socket_t wfd)
{
	struct resolver *r = c->r;
	r->depth++;
	errno = 0; /* see finish */
	ares_process_fd(c->ch, rfd, wfd);
	r->depth--;
}

static void on_timer(struct evloop *loop, void *arg)
{
	struct resolver *r = arg;
	(void)loop;
	r->timer = NULL;
	/* a callback below may add TCP channels: ntcp is read on every round */
	if (r->udp.pending)
		process(&r->udp, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	for (size_t i = 0; i < r->ntcp; i++)
		if (r->tcp[i]->pending)
			process(r->tcp[i], ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	reap_idle(r);
	arm_timer(r);
}

/* The earliest ares_timeout() of the busy channels; false when none has a query waiting. */
static bool next_timeout(struct chan *c, struct timeval *min, bool have)
{
	struct timeval tv, *tvp;
	if (!c->pending)
		return have;
	tvp = ares_timeout(c->ch, have ? min : NULL, &tv);
	if (!tvp)
		return have;
	*min = *tvp;
	return true;
}

static void arm_timer(struct resolver *r)
{
	struct timeval min;
	bool have;

	if (r->in_free)
		return;
	evloop_cancel(r->loop, r->timer);
	r->timer = NULL;
	if (!r->pending)
		return;
	have = next_timeout(&r->udp, &min, false);
	for (size_t i = 0; i < r->ntcp; i++)
		have = next_timeout(r->tcp[i], &min, have);
	if (!have)
		return;
	uint64_t ms = (uint64_t)min.tv_sec * 1000 + (uint64_t)(min.tv_usec + 999) / 1000;
	r->timer = evloop_timer(r->loop, evloop_now(r->loop) + ms, on_timer, r);
}

static void on_io(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct chan *c = arg;
	struct resolver *r = c->r;
	(void)loop;
	process(c, (events & EV_READ) ? fd : ARES_SOCKET_BAD,
	        (events & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	reap_idle(r);
	arm_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct chan *c = data;
	if (!readable && !writable) {
		evloop_unwatch(c->r->loop, fd);
		return;
	}
	/* If the watch cannot be registered the query times out through ares_timeout. */
	(void)evloop_watch(c->r->loop, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
	                   on_io, c);
}

/* servers_csv NULL: the servers of /etc/resolv.conf.  0 or -1 with a reason in err. */
static int chan_init(struct chan *c, struct resolver *r, int flags, char *err, size_t errlen)
{
	struct ares_options o;
	int rc;

	c->r = r;
	c->pending = 0;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | flags;
	o.timeout = (int)(r->budget_ms / 4 < 50 ? 50 : r->budget_ms / 4);
	o.tries = 3;
	o.ndots = 0;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = c;
	o.lookups = (char *)(uintptr_t) "b"; /* DNS only; never the hosts file */
	rc = ares_init_options(&c->ch, &o,
	                       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	                               ARES_OPT_NDOTS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot initialise resolver: %s", ares_strerror(rc));
		c->ch = NULL;
		return -1;
	}
	if (r->servers_csv) {
		rc = ares_set_servers_ports_csv(c->ch, r->servers_csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "bad resolver servers \"%s\": %s", r->servers_csv,
			         ares_strerror(rc));
			ares_destroy(c->ch);
			c->ch = NULL;
			return -1;
		}
	}
	return 0;
}

/* flags are added to those of the main (UDP) channel. */
static struct resolver *resolver_new_flags(struct evloop *loop, char *const *servers, size_t n,
                                           unsigned budget_ms, int flags, char *err, size_t errlen)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->budget_ms = budget_ms;
	if (n > 0) {
		size_t len = 1;
		for (size_t i = 0; i < n; i++)
			len += strlen(servers[i]) + 1;
		r->servers_csv = malloc(len);
		if (!r->servers_csv) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		r->servers_csv[0] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(r->servers_csv, ",");
			strcat(r->servers_csv, servers[i]);
		}
	}
	/* IGNTC: a truncated reply comes back to on_udp_answer, see the top of this file */
	if (chan_init(&r->udp, r, ARES_FLAG_IGNTC | flags, err, errlen) != 0)
		goto fail;
	return r;
fail:
	resolver_free(r);
	return NULL;
}

struct resolver *resolver_new(struct evloop *loop, char *const *servers, size_t n,
                              unsigned budget_ms, char *err, size_t errlen)
{
	return resolver_new_flags(loop, servers, n, budget_ms, 0, err, errlen);
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	r->in_free = true;
	evloop_cancel(r->loop, r->timer);
	r->timer = NULL;
	/* ares_destroy runs pending callbacks with ARES_EDESTRUCTION; in_free keeps
	 * on_udp_answer from moving a query to a TCP channel meanwhile. */
	for (size_t i = 0; i < r->ntcp; i++) {
		ares_destroy(r->tcp[i]->ch);
		free(r->tcp[i]);
	}
	if (r->udp.ch)
		ares_destroy(r->udp.ch);
	free(r->servers_csv);
	free(r);
}

static void finish(struct query *q, int status, unsigned char *abuf, int alen)
{
	/* c-ares 1.18 gives up on a server whose socket() fails and ends the query with
	 * ARES_ECONNREFUSED, as for a server that refused: when the last thing that failed
	 * since we called into c-ares (errno is cleared before each call) was a lack of
	 * descriptors, say so instead of blaming the server.  Read first: nothing between the
	 * c-ares callback and here sets errno. */
	int e = errno;
	q->r->pending--;
	if (status == ARES_ECONNREFUSED && (e == EMFILE || e == ENFILE))
		status = RESOLVER_ENOFD;
	if (status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOTFOUND)
		abuf = NULL;
	if (!abuf)
		alen = 0;
	if (status == ARES_SUCCESS && !abuf)
		status = ARES_EBADRESP;
	q->cb(q->arg, status, abuf, (size_t)(alen > 0 ? alen : 0));
	free(q);
}

static void on_tcp_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	(void)timeouts;
	q->c->pending--;
	finish(q, status, abuf, alen);
}

/* A TCP channel with no query on it, else a new one, else the least busy; NULL when none
 * can be made. */
static struct chan *tcp_channel(struct resolver *r)
{
	struct chan *best = NULL;
	for (size_t i = 0; i < r->ntcp; i++)
		if (!best || r->tcp[i]->pending < best->pending)
			best = r->tcp[i];
	if ((best && !best->pending) || r->ntcp == TCP_CHANNELS_MAX)
		return best;
	struct chan *c = calloc(1, sizeof(*c));
	char err[160];
	if (!c || chan_init(c, r, ARES_FLAG_USEVC, err, sizeof(err)) != 0) {
		free(c);
		return best; /* share rather than fail */
	}
	r->tcp[r->ntcp++] = c;
	return c;
}

static void on_udp_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	struct resolver *r = q->r;
	struct chan *tc;
	(void)timeouts;
	q->c->pending--;
	/* Truncated: the TC bit, or a reply c-ares cut to 512 bytes (IGNTC keeps only that much
	 * of an oversized UDP reply).  Asked again over TCP; when no TCP channel can be had, the
	 * truncated reply goes to the caller, who sees a temporary failure in it. */
	bool trunc = abuf && alen >= 12 && ((abuf[2] & 0x02) || alen >= DNS_UDP_MAX);
	if (trunc && r->truncated)
		r->truncated[resolver_qtype_index(q->qtype)]++;
	if (trunc && !r->in_free && (tc = tcp_channel(r)) != NULL) {
		q->c = tc;
		tc->pending++;
		r->sent++;
		ares_query(tc->ch, q->name, 1 /* C_IN */, q->qtype, on_tcp_answer, q);
		return; /* the timer is re-armed by whoever runs c-ares (on_io, on_timer) */
	}
	finish(q, status, abuf, alen);
}

void resolver_query(struct resolver *r, const char *name, uint16_t qtype, resolver_cb cb, void *arg)
{
	size_t len = strlen(name);
	struct query *q = r->in_free ? NULL : malloc(sizeof(*q) + len + 1);
	if (!q) {
		cb(arg, r->in_free ? ARES_EDESTRUCTION : ARES_ENOMEM, NULL, 0);
		return;
	}
	q->r = r;
	q->c = &r->udp;
	q->cb = cb;
	q->arg = arg;
	q->qtype = qtype;
	memcpy(q->name, name, len + 1);
	r->pending++;
	r->udp.pending++;
	r->sent++;
	errno = 0; /* see finish */
	ares_query(r->udp.ch, name, 1 /* C_IN */, qtype, on_udp_answer, q);
	arm_timer(r);
}

size_t resolver_pending(const struct resolver *r)
{
	return r->pending;
}

void resolver_count_truncated(struct resolver *r, uint64_t *counters)
{
	r->truncated = counters;
}

uint64_t resolver_sent(const struct resolver *r)
{
	return r->sent;
}

/* ---------------------------------------------------------------- recursion probe */

struct probe_server {
	struct resolver_probe *p;
	struct resolver *r; /* a channel of its own, to this server only */
	char name[64];
	bool done;
};

struct resolver_probe {
	resolver_probe_cb cb;
	void *arg;
	size_t n, left;
	bool freeing;
	struct probe_server s[];
};

static void probe_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct probe_server *ps = arg;
	struct resolver_probe *p = ps->p;
	(void)timeouts;
	ps->r->pending--;
	ps->r->udp.pending--;
	ps->done = true;
	p->left--;
	if (p->freeing)
		return;
	if (abuf && alen >= 12 && (abuf[2] & 0x80)) {
		bool ra = abuf[3] & 0x80;
		char detail[96];
		snprintf(detail, sizeof(detail), "RA bit %s in its reply (rcode %d)",
		         ra ? "set" : "clear", abuf[3] & 0x0f);
		p->cb(p->arg, ps->name, ra ? PROBE_RECURSIVE : PROBE_NO_RECURSION, detail);
	} else {
		p->cb(p->arg, ps->name, PROBE_NO_ANSWER, ares_strerror(status));
	}
}

/* The servers c-ares takes from /etc/resolv.conf, as "IP:PORT" strings (malloc'd array). */
static char **system_servers(size_t *n)
{
	ares_channel ch;
	struct ares_addr_port_node *list = NULL;
	char **v = NULL;
	*n = 0;
	if (ares_init(&ch) != ARES_SUCCESS)
		return NULL;
	if (ares_get_servers_ports(ch, &list) == ARES_SUCCESS) {
		size_t k = 0;
		for (struct ares_addr_port_node *a = list; a; a = a->next)
			k++;
		v = k ? calloc(k, sizeof(*v)) : NULL;
		for (struct ares_addr_port_node *a = list; v && a; a = a->next) {
			char ip[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 10];
			int port = a->udp_port ? a->udp_port : 53;
			if (!inet_ntop(a->family, &a->addr, ip, sizeof(ip)))
				continue;
			snprintf(buf, sizeof(buf), a->family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip,
			         port);
			if ((v[*n] = strdup(buf)) != NULL)
				(*n)++;
		}
		ares_free_data(list);
	}
	ares_destroy(ch);
	return v;
}

struct resolver_probe *resolver_probe_start(struct evloop *loop, char *const *servers, size_t n,
                                            unsigned budget_ms, resolver_probe_cb cb, void *arg)
{
	size_t nsys = 0;
	char **sys = NULL;
	if (n == 0) {
		sys = system_servers(&nsys);
		servers = sys;
		n = nsys;
	}
	struct resolver_probe *p = calloc(1, sizeof(*p) + n * sizeof(p->s[0]));
	if (!p)
		goto out;
	p->cb = cb;
	p->arg = arg;
	for (size_t i = 0; i < n; i++) {
		struct probe_server *ps = &p->s[p->n];
		char err[160];
		/* NOCHECKRESP: a REFUSED reply is handed over, with the header to judge; the
		 * header of a truncated reply (truncation is ignored here) tells RA as well */
		ps->r = resolver_new_flags(loop, &servers[i], 1, budget_ms, ARES_FLAG_NOCHECKRESP,
		                           err, sizeof(err));
		if (!ps->r)
			continue;
		ps->p = p;
		snprintf(ps->name, sizeof(ps->name), "%s", servers[i]);
		p->n++;
	}
	p->left = p->n;
	/* Queries only once every channel exists: a failure at once calls back right away */
	for (size_t i = 0; i < p->n; i++) {
		struct probe_server *ps = &p->s[i];
		ps->r->pending++;
		ps->r->udp.pending++;
		ps->r->sent++;
		ares_query(ps->r->udp.ch, ".", 1 /* C_IN */, DNS_T_NS, probe_answer, ps);
		arm_timer(ps->r);
	}
out:
	for (size_t i = 0; i < nsys; i++)
		free(sys[i]);
	free(sys);
	return p;
}

bool resolver_probe_pending(const struct resolver_probe *p)
{
	return p && p->left > 0;
}

void resolver_probe_free(struct resolver_probe *p)
{
	if (!p)
		return;
	p->freeing = true;
	for (size_t i = 0; i < p->n; i++)
		resolver_free(p->s[i].r);
	free(p);
}
