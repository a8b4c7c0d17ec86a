/*
 * resolver.c - c-ares channel wired to an evloop via ARES_OPT_SOCK_STATE_CB, with one timer
 * re-armed from ares_timeout() after every step.
 */
#include "resolver.h"

#include <ares.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct resolver *resolver_new(struct evloop *loop, char *const *servers, size_t n,
			      unsigned budget_ms, char *err, size_t errlen)
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
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
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
	(void)timeouts;
	q->r->pending--;
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
