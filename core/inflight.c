/*
 * inflight.c - the table of DNS queries in flight, shared by all checks of an engine: a
 * check that needs a record set takes it from the cache, or waits for the query already
 * asking for it, or starts one.  Concurrent checks of one name (or of domains sharing MX
 * hosts) send one query; the answer goes into the cache and to every waiting check.
 */
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "evloop.h"

static uint32_t fnv(const char *s, uint16_t t)
{
	uint32_t h = 2166136261u ^ t;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static uint32_t clamp_ttl(const struct config *cfg, uint32_t ttl)
{
	if (ttl < cfg->cache_min_ttl)
		ttl = cfg->cache_min_ttl;
	if (ttl > cfg->cache_max_ttl)
		ttl = cfg->cache_max_ttl;
	return ttl;
}

/* The outcome of a query whose reply came back (metrics). */
static enum dns_outcome outcome_of(const struct dns_reply *rep)
{
	switch (rep->status) {
	case DNSR_OK:
	case DNSR_CNAME: return DNSO_NOERROR;
	case DNSR_NODATA: return DNSO_NODATA;
	case DNSR_NXDOMAIN: return DNSO_NXDOMAIN;
	case DNSR_MALFORMED: return DNSO_MALFORMED;
	case DNSR_TEMPFAIL: break;
	}
	switch (rep->rcode) { /* an answer that proves nothing: by its code */
	case 0: return DNSO_NOERROR;
	case 3: return DNSO_NXDOMAIN;
	case 5: return DNSO_REFUSED;
	default: return DNSO_SERVFAIL;
	}
}

static void waiter_unlink_check(struct waiter *w)
{
	struct check *c = w->chk;
	if (!c)
		return;
	if (w->cprev)
		w->cprev->cnext = w->cnext;
	else
		c->waiters = w->cnext;
	if (w->cnext)
		w->cnext->cprev = w->cprev;
	w->cprev = w->cnext = NULL;
	w->chk = NULL;
}

static void on_dns(void *arg, int status, const uint8_t *abuf, size_t alen)
{
	struct inflight *fl = arg;
	struct engine *e = fl->e;
	const struct config *cfg = e->cfg;
	uint64_t now = evloop_now(e->loop);
	struct rrset *rs = NULL;
	struct dns_reply rep;

	/* unlink from the table first: a callback below may ask the same name again */
	struct inflight **pp = &e->fl[fl->hash % INFLIGHT_BKTS];
	while (*pp && *pp != fl)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = fl->hnext;
	e->ninflight--;

	enum dns_outcome oc;
	if (abuf) {
		dns_parse_reply(abuf, alen, fl->name, fl->qtype, &rep);
		oc = outcome_of(&rep);
		uint32_t ttl;
		switch (rep.status) {
		case DNSR_OK:
		case DNSR_CNAME:
		case DNSR_NODATA:
		case DNSR_NXDOMAIN: ttl = clamp_ttl(cfg, rep.has_ttl ? rep.ttl : 0); break;
		default: ttl = cfg->cache_error_ttl; break;
		}
		rs = rrset_new(fl->name, fl->qtype, &rep, NULL, ttl, now);
		dns_reply_clear(&rep);
	} else {
		char why[96];
		oc = status == ARES_ETIMEOUT                                   ? DNSO_TIMEOUT
		     : status == ARES_ECONNREFUSED || status == ARES_ESERVFAIL ? DNSO_SERVFAIL
		     : status == ARES_EREFUSED || status == ARES_ENOTIMP       ? DNSO_REFUSED
		     : status == ARES_EBADRESP || status == ARES_EFORMERR      ? DNSO_MALFORMED
		                                                               : DNSO_ERROR;
		if (status == ARES_ETIMEOUT)
			snprintf(why, sizeof(why), "no answer from the DNS server (timeout)");
		else if (status == RESOLVER_ENOFD)
			snprintf(why, sizeof(why),
			         "local resource limit: no file descriptor for the DNS query "
			         "(EMFILE/ENFILE)");
		else if (status == ARES_ECONNREFUSED)
			snprintf(why, sizeof(why),
			         "the DNS server answered SERVFAIL or REFUSED, or was unreachable");
		else
			snprintf(why, sizeof(why), "DNS lookup failed (%s)", ares_strerror(status));
		/* not kept: shutting down, or a local shortage that says nothing of the name */
		bool keep = status != ARES_EDESTRUCTION && status != RESOLVER_ENOFD;
		rs = rrset_new(fl->name, fl->qtype, NULL, why, keep ? cfg->cache_error_ttl : 0,
		               now);
	}
	if (rs)
		cache_put(e->cache, rs, now);
	e->m.dns[resolver_qtype_index(fl->qtype)][oc]++;
	if (status != ARES_EDESTRUCTION)
		hist_observe_ms(&e->m.dns_rtt, now - fl->sent);

	struct waiter *w = fl->waiters, *next;
	fl->waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		struct check *c = w->chk;
		if (c) {
			int tidx = w->tidx, fam = w->fam;
			waiter_unlink_check(w);
			c->pending--;
			if (rs)
				check_deliver(c, tidx, fam, rs, false);
			else
				check_deliver(c, tidx, fam, NULL, false); /* out of memory */
		}
		free(w);
	}
	rrset_unref(rs);
	free(fl);
}

void inflight_lookup(struct check *c, int tidx, int fam, const char *name, uint16_t qtype)
{
	struct engine *e = c->e;
	if (e->closing) {
		check_deliver(c, tidx, fam, NULL, false);
		return;
	}
	struct rrset *rs = cache_get(e->cache, name, qtype, evloop_now(e->loop));
	if (rs) {
		check_deliver(c, tidx, fam, rs, true);
		rrset_unref(rs);
		return;
	}
	if (c->cache_only) {
		/* not a miss yet: engine_check() asks again, and counts it then */
		/* the answer needs DNS: end here, silently; the caller asks again the usual way */
		c->would_block = true;
		c->finished = true;
		check_detach(c);
		return;
	}
	e->m.cache_misses++;
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		check_deliver(c, tidx, fam, NULL, false);
		return;
	}
	uint32_t h = fnv(name, qtype);
	struct inflight *fl = e->fl[h % INFLIGHT_BKTS];
	for (; fl; fl = fl->hnext)
		if (fl->qtype == qtype && fl->hash == h && strcmp(fl->name, name) == 0)
			break;
	bool fresh = false;
	if (!fl) {
		fl = calloc(1, sizeof(*fl));
		if (!fl) {
			free(w);
			check_deliver(c, tidx, fam, NULL, false);
			return;
		}
		fl->e = e;
		fl->qtype = qtype;
		fl->hash = h;
		fl->sent = evloop_now(e->loop);
		copy_name(fl->name, sizeof(fl->name), name);
		fl->hnext = e->fl[h % INFLIGHT_BKTS];
		e->fl[h % INFLIGHT_BKTS] = fl;
		e->ninflight++;
		fresh = true;
	}
	w->chk = c;
	w->tidx = tidx;
	w->fam = fam;
	w->next = fl->waiters;
	fl->waiters = w;
	w->cnext = c->waiters;
	if (c->waiters)
		c->waiters->cprev = w;
	c->waiters = w;
	c->pending++;
	if (fresh) {
		e->st.queries_sent++;
		e->dns.query(e->dns.ctx, fl->name, qtype, on_dns, fl);
	}
}

void inflight_detach(struct check *c)
{
	struct waiter *w = c->waiters, *next;
	for (; w; w = next) {
		next = w->cnext;
		w->chk = NULL; /* the in-flight entry frees it */
		w->cprev = w->cnext = NULL;
	}
	c->waiters = NULL;
}

void inflight_abort_all(struct engine *e)
{
	for (size_t b = 0; b < INFLIGHT_BKTS; b++)
		while (e->fl[b])
			on_dns(e->fl[b], ARES_EDESTRUCTION, NULL, 0); /* unlinks and frees it */
}
