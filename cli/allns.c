/*
 * allns.c - the propagation check of mxsane-check --all-ns (see allns.h): find the zone and
 * its servers through the resolver, then ask each server's addresses directly, without
 * recursion, over UDP sockets of our own on the evloop.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "allns.h"
#include "dnsmsg.h"
#include "evloop.h"
#include "log.h"
#include "resolver.h"

#define REPLY_MAX 4096

enum { Q_MX, Q_SOA };

struct srv {
	struct allns *a;
	int fd;
	uint16_t id[2];
	unsigned char *q[2]; /* the queries as sent (ares_mkquery), for resends */
	int qlen[2];
	bool got[2];
	struct allns_server *out;
};

struct allns {
	struct evloop *loop;
	struct resolver *rec;
	struct allns_report *r;
	char domain[256];
	char cand[256]; /* zone candidate being asked for NS */
	int port;
	unsigned budget_ms;
	unsigned pending; /* resolver queries outstanding */
	size_t nns;
	char ns[ALLNS_MAX_NS][256];
	struct lookup {
		struct allns *a;
		size_t ns;
		uint16_t type;
	} look[ALLNS_MAX_NS * 2];
	struct srv srv[ALLNS_MAX_ADDRS];
	size_t nsrv, left;
	struct ev_timer *retry, *deadline, *later;
	bool freeing; /* the owner called allns_free while resolver queries were outstanding */
	bool over;    /* done has run: late answers are dropped */
	allns_done_cb done;
	void *arg;
};

/* A resolver answer arrived: false when it is still wanted.  The last answer after
 * allns_free frees the check (the resolver holds pointers into it until then). */
static bool unwanted(struct allns *a)
{
	a->pending--;
	if (a->freeing) {
		if (a->pending == 0)
			free(a);
		return true;
	}
	return a->over;
}

static void finish_later(struct evloop *loop, void *arg)
{
	struct allns *a = arg;
	a->later = NULL;
	evloop_cancel(loop, a->retry);
	evloop_cancel(loop, a->deadline);
	a->retry = a->deadline = NULL;
	a->over = true;
	a->done(a->arg);
}

static void finish(struct allns *a)
{
	if (!a->later)
		a->later = evloop_timer(a->loop, evloop_now(a->loop), finish_later, a);
	/* out of memory: the deadline timer (when armed) still ends the check */
}

/* Compare the answers of the servers that answered: distinct MX sets and serials. */
static void tally(struct allns_report *r)
{
	r->mx_sets = r->serials = r->lame = r->silent = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct allns_server *s = &r->s[i];
		if (s->st == NS_LAME)
			r->lame++;
		if (s->st == NS_SILENT)
			r->silent++;
		if (s->st != NS_OK)
			continue;
		bool seen_mx = false, seen_serial = false;
		for (size_t k = 0; k < i; k++) {
			const struct allns_server *t = &r->s[k];
			if (t->st != NS_OK)
				continue;
			if (strcmp(t->mx, s->mx) == 0)
				seen_mx = true;
			if (t->has_serial == s->has_serial && t->serial == s->serial)
				seen_serial = true;
		}
		r->mx_sets += !seen_mx;
		r->serials += !seen_serial;
	}
}

static void srv_close(struct srv *s)
{
	if (s->fd >= 0) {
		evloop_unwatch(s->a->loop, s->fd);
		close(s->fd);
		s->fd = -1;
	}
}

static void srv_done(struct srv *s)
{
	struct allns *a = s->a;
	srv_close(s);
	if (--a->left == 0) {
		tally(a->r);
		finish(a);
	}
}

static int mx_cmp(const void *x, const void *y)
{
	const struct ares_mx_reply *const *p = x, *const *q = y;
	if ((*p)->priority != (*q)->priority)
		return (*p)->priority < (*q)->priority ? -1 : 1;
	return strcasecmp((*p)->host, (*q)->host);
}

/* The MX set of a reply in a canonical form (sorted, lower case, with trailing dots). */
static void mx_text(const unsigned char *buf, int len, int rcode, char *out, size_t size)
{
	struct ares_mx_reply *mx = NULL, *sorted[64];
	size_t n = 0, used = 0;
	if (rcode == 3) {
		snprintf(out, size, "the domain does not exist");
		return;
	}
	int rc = ares_parse_mx_reply(buf, len, &mx);
	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && !mx)) {
		snprintf(out, size, "no MX records");
		return;
	}
	if (rc != ARES_SUCCESS) {
		snprintf(out, size, "unreadable MX answer (%s)", ares_strerror(rc));
		return;
	}
	for (struct ares_mx_reply *m = mx; m && n < 64; m = m->next)
		sorted[n++] = m;
	qsort(sorted, n, sizeof(sorted[0]), mx_cmp);
	out[0] = '\0';
	for (size_t i = 0; i < n && used + 1 < size; i++) {
		char host[300];
		log_escape_kv(host, sizeof(host), sorted[i]->host);
		for (char *c = host; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		int w = snprintf(out + used, size - used, "%s%u %s.", i ? " " : "",
		                 sorted[i]->priority, host);
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	ares_free_data(mx);
}

static void on_reply(struct srv *s, const unsigned char *buf, int len)
{
	struct allns_server *o = s->out;
	if (len < 12)
		return;
	uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
	int which = id == s->id[Q_MX] && !s->got[Q_MX]     ? Q_MX
	            : id == s->id[Q_SOA] && !s->got[Q_SOA] ? Q_SOA
	                                                   : -1;
	/* a reply must be a response (QR) with our ID and our question, octet for octet (the
	 * question follows the 12-octet header in both) */
	if (which < 0 || !(buf[2] & 0x80) || len < s->qlen[which] ||
	    memcmp(buf + 4, s->q[which] + 4, 2) != 0 ||
	    strncasecmp((const char *)buf + 12, (const char *)s->q[which] + 12,
	                (size_t)(s->qlen[which] - 12)) != 0)
		return;
	s->got[which] = true;
	int rcode = buf[3] & 0x0f;
	bool aa = buf[2] & 0x04, tc = buf[2] & 0x02;
	if (rcode == 5 || rcode == 2 || (!aa && o->st == NS_OK)) {
		o->st = NS_LAME;
		snprintf(o->why, sizeof(o->why), "lame: %s",
		         rcode == 5   ? "REFUSED (does not serve the zone)"
		         : rcode == 2 ? "SERVFAIL"
		                      : "answer not authoritative (AA clear)");
		s->got[Q_MX] = s->got[Q_SOA] = true;
	} else if (tc) {
		o->st = NS_BAD;
		snprintf(o->why, sizeof(o->why), "truncated answer (not compared)");
		s->got[Q_MX] = s->got[Q_SOA] = true;
	} else if (which == Q_MX) {
		mx_text(buf, len, rcode, o->mx, sizeof(o->mx));
	} else {
		struct ares_soa_reply *soa = NULL;
		if (ares_parse_soa_reply(buf, len, &soa) == ARES_SUCCESS && soa) {
			o->has_serial = true;
			o->serial = soa->serial;
		}
		if (soa)
			ares_free_data(soa);
	}
	if (s->got[Q_MX] && s->got[Q_SOA])
		srv_done(s);
}

static void on_readable(struct evloop *loop, int fd, unsigned events, void *arg)
{
	struct srv *s = arg;
	unsigned char buf[REPLY_MAX];
	(void)loop;
	(void)events;
	for (int i = 0; i < 4 && s->fd == fd; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			s->out->st = NS_SILENT;
			snprintf(s->out->why, sizeof(s->out->why), "does not answer: %s",
			         strerror(errno));
			srv_done(s);
			return;
		}
		on_reply(s, buf, (int)n);
	}
}

static void send_queries(struct srv *s)
{
	for (int q = 0; q < 2; q++)
		if (!s->got[q] && s->fd >= 0) {
			ssize_t w = send(s->fd, s->q[q], (size_t)s->qlen[q], 0);
			(void)w; /* a lost datagram is what the retry and the deadline are for */
		}
}

static void on_retry(struct evloop *loop, void *arg)
{
	struct allns *a = arg;
	(void)loop;
	a->retry = NULL;
	for (size_t i = 0; i < a->nsrv; i++)
		if (a->srv[i].fd >= 0)
			send_queries(&a->srv[i]);
}

static void on_deadline(struct evloop *loop, void *arg)
{
	struct allns *a = arg;
	a->deadline = NULL;
	evloop_cancel(loop, a->retry);
	a->retry = NULL;
	for (size_t i = 0; i < a->nsrv; i++) {
		struct srv *s = &a->srv[i];
		if (s->fd < 0)
			continue;
		s->out->st = NS_SILENT;
		snprintf(s->out->why, sizeof(s->out->why), "does not answer within %u ms",
		         a->budget_ms);
		srv_close(s);
	}
	a->left = 0;
	if (a->nsrv == 0 && !a->r->error[0])
		snprintf(a->r->error, sizeof(a->r->error),
		         "the name servers were not found within %u ms", 2 * a->budget_ms);
	tally(a->r);
	if (a->later) {
		evloop_cancel(loop, a->later);
		a->later = NULL;
	}
	a->over = true;
	a->done(a->arg);
}

static int server_cmp(const void *x, const void *y)
{
	const struct allns_server *p = x, *q = y;
	int c = strcmp(p->ns, q->ns);
	return c ? c : strcmp(p->addr, q->addr);
}

/* Every address known: ask each server directly. */
static void ask_servers(struct allns *a)
{
	struct allns_report *r = a->r;
	if (r->n == 0) {
		if (!r->error[0])
			snprintf(r->error, sizeof(r->error),
			         "none of the %zu name servers of %s has an address", a->nns,
			         r->zone);
		finish(a);
		return;
	}
	uint64_t now = evloop_now(a->loop);
	qsort(r->s, r->n, sizeof(r->s[0]), server_cmp);
	a->nsrv = a->left = r->n;
	for (size_t i = 0; i < r->n; i++) {
		struct srv *s = &a->srv[i];
		struct allns_server *o = &r->s[i];
		s->a = a;
		s->out = o;
		s->fd = -1;
		o->st = NS_OK;
		snprintf(o->mx, sizeof(o->mx), "(no answer)");
		for (int q = 0; q < 2; q++) {
			s->id[q] = (uint16_t)(arc4random() & 0xffff);
			if (ares_mkquery(q == Q_MX ? a->domain : r->zone, 1 /* IN */,
			                 q == Q_MX ? DNS_T_MX : DNS_T_SOA, s->id[q], 0 /* no RD */,
			                 &s->q[q], &s->qlen[q]) != ARES_SUCCESS) {
				o->st = NS_BAD;
				snprintf(o->why, sizeof(o->why), "cannot build the query");
			}
		}
		struct sockaddr_storage ss;
		socklen_t sl;
		memset(&ss, 0, sizeof(ss));
		if (o->st == NS_OK && strchr(o->addr, ':')) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)a->port);
			inet_pton(AF_INET6, o->addr, &s6->sin6_addr);
			sl = sizeof(*s6);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)a->port);
			inet_pton(AF_INET, o->addr, &s4->sin_addr);
			sl = sizeof(*s4);
		}
		if (o->st == NS_OK) {
			s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&ss, sl) < 0 ||
			    evloop_watch(a->loop, s->fd, EV_READ, on_readable, s) < 0) {
				o->st = NS_SILENT;
				snprintf(o->why, sizeof(o->why), "cannot send: %s",
				         strerror(errno));
			}
		}
		if (o->st != NS_OK) {
			srv_close(s);
			a->left--;
			continue;
		}
		send_queries(s);
	}
	if (a->left == 0) {
		tally(r);
		finish(a);
		return;
	}
	a->retry = evloop_timer(a->loop, now + a->budget_ms / 3, on_retry, a);
	evloop_cancel(a->loop, a->deadline);
	a->deadline = evloop_timer(a->loop, now + a->budget_ms, on_deadline, a);
}

static void on_addr(void *arg, int status, const uint8_t *abuf, size_t alen)
{
	struct lookup *l = arg;
	struct allns *a = l->a;
	struct allns_report *r = a->r;
	if (unwanted(a))
		return;
	if (abuf && status == ARES_SUCCESS) {
		struct dns_reply rep;
		if (dns_parse_reply(abuf, alen, a->ns[l->ns], l->type, &rep) == DNSR_OK)
			for (size_t i = 0; i < rep.n && r->n < ALLNS_MAX_ADDRS; i++) {
				struct allns_server *o = &r->s[r->n++];
				memset(o, 0, sizeof(*o));
				snprintf(o->ns, sizeof(o->ns), "%s", a->ns[l->ns]);
				inet_ntop(l->type == DNS_T_A ? AF_INET : AF_INET6, rep.addr[i],
				          o->addr, sizeof(o->addr));
			}
		dns_reply_clear(&rep);
	}
	if (a->pending == 0)
		ask_servers(a);
}

static void ask_zone(struct allns *a);

static void on_ns(void *arg, int status, const uint8_t *abuf, size_t alen)
{
	struct allns *a = arg;
	struct allns_report *r = a->r;
	if (unwanted(a))
		return;
	if (status == ARES_SUCCESS && abuf) {
		struct hostent *h = NULL;
		if (ares_parse_ns_reply(abuf, (int)alen, &h) == ARES_SUCCESS && h && h->h_aliases &&
		    h->h_aliases[0]) {
			snprintf(r->zone, sizeof(r->zone), "%s", a->cand);
			for (size_t i = 0; h->h_aliases[i] && a->nns < ALLNS_MAX_NS; i++) {
				char *n = h->h_aliases[i];
				size_t l = strlen(n);
				if (l && n[l - 1] == '.')
					n[--l] = '\0';
				if (l == 0 || l > 253)
					continue;
				snprintf(a->ns[a->nns++], sizeof(a->ns[0]), "%s", n);
			}
			ares_free_hostent(h);
			if (a->nns == 0) {
				snprintf(r->error, sizeof(r->error), "no usable NS record for %s",
				         r->zone);
				finish(a);
				return;
			}
			for (size_t i = 0; i < a->nns; i++)
				for (int f = 0; f < 2; f++) {
					struct lookup *l = &a->look[i * 2 + (size_t)f];
					l->a = a;
					l->ns = i;
					l->type = f ? DNS_T_AAAA : DNS_T_A;
					a->pending++;
				}
			for (size_t i = 0; i < a->nns * 2; i++)
				resolver_query(a->rec, a->ns[a->look[i].ns], a->look[i].type,
				               on_addr, &a->look[i]);
			return;
		}
		if (h)
			ares_free_hostent(h);
	}
	if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
		/* no NS here: the zone is higher up */
		const char *dot = strchr(a->cand, '.');
		if (dot && dot[1]) {
			memmove(a->cand, dot + 1, strlen(dot + 1) + 1);
			ask_zone(a);
			return;
		}
		snprintf(r->error, sizeof(r->error), "no zone with NS records found above %s",
		         a->domain);
	} else {
		snprintf(r->error, sizeof(r->error), "NS lookup for %s failed: %s", a->cand,
		         status == RESOLVER_ENOFD ? "out of file descriptors"
		                                  : ares_strerror(status));
	}
	finish(a);
}

static void ask_zone(struct allns *a)
{
	a->pending++;
	resolver_query(a->rec, a->cand, DNS_T_NS, on_ns, a);
}

struct allns *allns_start(struct evloop *loop, struct resolver *rec, const char *domain, int port,
                          unsigned budget_ms, struct allns_report *out, allns_done_cb done,
                          void *arg)
{
	struct allns *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	memset(out, 0, sizeof(*out));
	a->loop = loop;
	a->rec = rec;
	a->r = out;
	a->port = port;
	a->budget_ms = budget_ms;
	a->done = done;
	a->arg = arg;
	snprintf(a->domain, sizeof(a->domain), "%s", domain);
	snprintf(a->cand, sizeof(a->cand), "%s", domain);
	/* one budget for the lookups through the resolver, another for the servers */
	a->deadline =
	        evloop_timer(loop, evloop_now(loop) + 2 * (uint64_t)budget_ms, on_deadline, a);
	if (!a->deadline) {
		free(a);
		return NULL;
	}
	ask_zone(a);
	return a;
}

void allns_free(struct allns *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nsrv; i++) {
		srv_close(&a->srv[i]);
		for (int q = 0; q < 2; q++)
			if (a->srv[i].q[q])
				ares_free_string(a->srv[i].q[q]);
	}
	a->nsrv = 0;
	evloop_cancel(a->loop, a->retry);
	evloop_cancel(a->loop, a->deadline);
	evloop_cancel(a->loop, a->later);
	a->retry = a->deadline = a->later = NULL;
	if (a->pending) {
		a->freeing = true; /* freed by the last resolver callback (unwanted) */
		return;
	}
	free(a);
}
