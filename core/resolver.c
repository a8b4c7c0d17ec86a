/*
 * resolver.c - c-ares channel wired to an evloop via ARES_OPT_SOCK_STATE_CB, with one timer
 * re-armed from ares_timeout() after every step.
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

struct resolver {
	struct evloop *loop;
	ares_channel ch;
	struct ev_timer *timer;
	size_t pending;
	uint64_t sent;
	bool in_free;
};

struct query {
	struct resolver *r;
	resolver_cb cb;
	void *arg;
};

int resolver_library_init(void)
{
	return ares_library_init(ARES_LIB_INIT_ALL);
}

static void arm_timer(struct resolver *r);

static void on_timer(struct evloop *loop, void *arg)
{
	struct resolver *r = arg;
	(void)loop;
	r->timer = NULL;
	errno = 0; /* see on_answer */
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(r);
}

static void arm_timer(struct resolver *r)
{
	struct timeval tv, *tvp;

	if (r->in_free)
		return;
	evloop_cancel(r->loop, r->timer);
	r->timer = NULL;
	if (!r->pending)
		return;
	tvp = ares_timeout(r->ch, NULL, &tv);
	if (!tvp)
		return;
	uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)(tvp->tv_usec + 999) / 1000;
	r->timer = evloop_timer(r->loop, evloop_now(r->loop) + ms, on_timer, r);
}

static void on_io(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct resolver *r = arg;
	(void)loop;
	errno = 0; /* see on_answer */
	ares_process_fd(r->ch, (events & EV_READ) ? fd : ARES_SOCKET_BAD,
			(events & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	arm_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	if (!readable && !writable) {
		evloop_unwatch(r->loop, fd);
		return;
	}
	/* If the watch cannot be registered the query times out through ares_timeout. */
	(void)evloop_watch(r->loop, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
			   on_io, r);
}

static struct resolver *resolver_new_flags(struct evloop *loop, char *const *servers, size_t n,
					   unsigned budget_ms, int flags, char *err, size_t errlen)
{
	struct ares_options o;
	struct resolver *r = calloc(1, sizeof(*r));
	char *csv = NULL;
	int rc;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | flags;
	o.timeout = (int)(budget_ms / 4 < 50 ? 50 : budget_ms / 4);
	o.tries = 3;
	o.ndots = 0;
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	o.lookups = (char *)(uintptr_t) "b"; /* DNS only; never the hosts file */
	rc = ares_init_options(&r->ch, &o,
			       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				       ARES_OPT_NDOTS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot initialise resolver: %s", ares_strerror(rc));
		r->ch = NULL;
		goto fail;
	}
	if (n > 0) {
		size_t len = 1;
		for (size_t i = 0; i < n; i++)
			len += strlen(servers[i]) + 1;
		csv = malloc(len);
		if (!csv) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		csv[0] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (i)
				strcat(csv, ",");
			strcat(csv, servers[i]);
		}
		rc = ares_set_servers_ports_csv(r->ch, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "bad resolver servers \"%s\": %s", csv,
				 ares_strerror(rc));
			goto fail;
		}
	}
	free(csv);
	return r;
fail:
	free(csv);
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
	if (r->ch)
		ares_destroy(r->ch); /* runs pending callbacks with ARES_EDESTRUCTION */
	free(r);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct query *q = arg;
	/* c-ares 1.18 gives up on a server whose socket() fails and ends the query with
	 * ARES_ECONNREFUSED, as for a server that refused: when the last thing that failed
	 * since we called into c-ares (errno is cleared before each call) was a lack of
	 * descriptors, say so instead of blaming the server. */
	int e = errno;
	(void)timeouts;
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

void resolver_query(struct resolver *r, const char *name, uint16_t qtype, resolver_cb cb,
		    void *arg)
{
	struct query *q = malloc(sizeof(*q));
	if (!q) {
		cb(arg, ARES_ENOMEM, NULL, 0);
		return;
	}
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	r->pending++;
	r->sent++;
	errno = 0; /* see on_answer */
	ares_query(r->ch, name, 1 /* C_IN */, qtype, on_answer, q);
	arm_timer(r);
}

size_t resolver_pending(const struct resolver *r)
{
	return r->pending;
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
		/* NOCHECKRESP: a REFUSED reply is handed over, with the header to judge */
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
		ps->r->sent++;
		ares_query(ps->r->ch, ".", 1 /* C_IN */, DNS_T_NS, probe_answer, ps);
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
