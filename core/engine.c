/*
 * engine.c - one check from request to verdict: skip rules, the MX lookup (following a
 * CNAME at the domain), concurrent A/AAAA lookups of every target, the deadline, and the
 * verdict rules in verdict_decide().  Lookups go through the record-set cache and a table of
 * in-flight queries shared by all checks, so concurrent checks of the same name (or of
 * domains sharing MX hosts) send one query.
 */
#include "engine.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arena.h"
#include "cache.h"
#include "dnsmsg.h"
#include "evloop.h"
#include "log.h"
#include "resolver.h"

/* MX hosts whose lookups run at once, most preferred first; the next starts when one ends.
 * Every host of the set is looked at (within the check's deadline): the window only bounds
 * the burst of queries a domain with hundreds of MX records can cause. */
#define TARGET_WINDOW  32
#define REPLY_TEXT_MAX 900 /* bytes of reply text (without code and DSN) */
#define INFLIGHT_BKTS  1024
#define FAM_A          0
#define FAM_AAAA       1
#define DOMAIN_CHAIN   (-1) /* tidx of the lookups for the domain itself (MX, CNAME chain) */

struct inflight;
struct check;

/* One check waiting for one in-flight query.  Owned by the in-flight entry; a check that
 * finishes first just clears chk. */
struct waiter {
	struct waiter *next;          /* in the in-flight entry's list */
	struct waiter *cprev, *cnext; /* in the check's list */
	struct check *chk;
	int tidx, fam;
};

struct inflight {
	struct inflight *hnext;
	struct engine *e;
	struct waiter *waiters;
	uint16_t qtype;
	uint32_t hash;
	char name[DOMAIN_MAX + 2];
};

struct famlook {
	unsigned hops;
	bool started, pending, alias, temp, done;
	bool usable;         /* final holds a non-bogus address: computed once when final is set */
	struct rrset *final; /* last answer (OK/NODATA/NXDOMAIN), or NULL */
	const char *fail;    /* temporary failure reason (arena) */
};

struct target {
	uint16_t pref;
	const char *host; /* in c->mxset's data, or c->cur for the implicit MX */
	bool skip;        /* not looked up (IP literal, invalid) */
	bool active;      /* counted in the check's window of hosts being looked up */
	const char *problem_static;
	struct famlook f[2];
};

/* Copy a NUL-terminated name into a fixed buffer, cut to fit (snprintf "%s" without the
 * format machinery: several times per check). */
static void copy_name(char *dst, size_t size, const char *src)
{
	size_t l = strnlen(src, size - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

struct check {
	struct engine *e;
	struct config *cfg;
	check_cb cb;
	void *arg;
	enum role role;
	uint64_t start, deadline;
	struct ev_timer *timer;
	struct ev_timer *hedge; /* asks AAAA of hosts whose A has not answered yet */
	struct waiter *waiters; /* pending waits of this check */
	unsigned pending;       /* lookups outstanding */
	unsigned issuing;       /* >0 while issuing a batch of lookups: do not finish yet */
	unsigned busy;          /* call depth inside this check: free only at 0 */
	bool finished;
	bool want_addresses;
	bool cache_only;  /* engine_check_cached: never ask DNS ... */
	bool would_block; /* ... and it would have had to: ended without a result */
	unsigned hits;    /* record sets taken from the cache (stats, counted at the end) */

	char domain[DOMAIN_MAX + 1];
	char cur[DOMAIN_MAX + 2]; /* MX chain: name asked now */
	unsigned hops;            /* CNAME hops at the domain, counted across replies */
	unsigned nvisited;
	const char *visited[DNS_MAX_CNAME + 1]; /* names of the chain (arena) */
	struct rrset *mxset;                    /* final MX answer */
	bool implicit;
	const char *chain_fail; /* temporary failure of the domain chain */
	const char *chain_perm; /* permanent failure (nxdomain) */

	struct target *t;
	size_t nt;
	size_t next_target; /* the first target not yet started */
	unsigned active;    /* targets with lookups outstanding (at most TARGET_WINDOW) */
	bool any_started;   /* a target has been looked up (or taken from the MX set's memo) */

	uint32_t ttl;
	bool all_cached, any_rrset;

	struct arena ar;
	const char *notes[16];
	size_t nnotes;
	const char *raw; /* the address as given (arena copy, cut at ADDR_MAX + 1 octets:
	                  * anything longer is refused, so never in a reply) */
	size_t rawlen;
	/* last: the arena's first buffer (not cleared), enough for a usual check's targets,
	 * results and texts (more goes to heap blocks) */
	_Alignas(16) unsigned char arena_mem[2048];
};

struct engine {
	struct evloop *loop;
	struct config *cfg;
	struct resolver *res;
	struct resolver *retired[4];
	struct resolver_probe *probe; /* do the servers recurse?  (at start and each reload) */
	struct ev_timer *reap_timer;
	struct cache *cache;
	struct inflight *fl[INFLIGHT_BKTS];
	size_t ninflight;
	bool wait_all, closing;
	struct engine_stats st;
	/* the last client judged against skip.clients (a request's checks share their client) */
	const struct config *skip_cfg;
	bool skip_last;
	char skip_client[64];
	/* finished checks kept for the next ones (a check is about 3 KiB: no malloc/free per
	 * check on the warm path) */
	struct check *spare[16];
	size_t nspare;
	/* DNS outage guard: ring of recent outcomes (1 = dns_error) */
	uint8_t *ring;
	size_t ring_size, ring_pos, ring_fill, ring_errors;
	bool outage;
};

static void check_finish(struct check *c);
static void check_detach(struct check *c);
static void lookup(struct check *c, int tidx, int fam, const char *name, uint16_t qtype);

/* ---------------------------------------------------------------- helpers */

static void add_note(struct check *c, const char *s)
{
	if (c->nnotes < sizeof(c->notes) / sizeof(c->notes[0]))
		c->notes[c->nnotes++] = s;
}

static uint32_t fnv(const char *s, uint16_t t)
{
	uint32_t h = 2166136261u ^ t;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Printable ASCII copy of network input for replies: controls and non-ASCII become '?',
 * one pair of surrounding angle brackets is removed, long input is cut with "...". */
static const char *sanitize(struct arena *ar, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	size_t max = 300, n = len > max ? max : len;
	char *p = arena_alloc(ar, n + 4);
	if (!p)
		return "";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		p[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	if (len > max)
		memcpy(p + n, "...", 4);
	return p;
}

static uint32_t clamp_ttl(const struct config *cfg, uint32_t ttl)
{
	if (ttl < cfg->cache_min_ttl)
		ttl = cfg->cache_min_ttl;
	if (ttl > cfg->cache_max_ttl)
		ttl = cfg->cache_max_ttl;
	return ttl;
}

/* The verdict lives no longer than any answer behind it. */
static void account_ttl(struct check *c, uint32_t left)
{
	if (!c->any_rrset || left < c->ttl)
		c->ttl = left;
	c->any_rrset = true;
}

static void account(struct check *c, struct rrset *rs, bool cached)
{
	account_ttl(c, rrset_ttl_left(rs, evloop_now(c->e->loop)));
	if (!cached)
		c->all_cached = false;
	else
		c->hits++;
}

/* ---------------------------------------------------------------- in-flight queries */

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

static void deliver(struct check *c, int tidx, int fam, struct rrset *rs, bool cached);

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

	if (abuf) {
		dns_parse_reply(abuf, alen, fl->name, fl->qtype, &rep);
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
				deliver(c, tidx, fam, rs, false);
			else
				deliver(c, tidx, fam, NULL, false); /* out of memory */
		}
		free(w);
	}
	rrset_unref(rs);
	free(fl);
}

static void lookup(struct check *c, int tidx, int fam, const char *name, uint16_t qtype)
{
	struct engine *e = c->e;
	if (e->closing) {
		deliver(c, tidx, fam, NULL, false);
		return;
	}
	struct rrset *rs = cache_get(e->cache, name, qtype, evloop_now(e->loop));
	if (rs) {
		deliver(c, tidx, fam, rs, true);
		rrset_unref(rs);
		return;
	}
	if (c->cache_only) {
		/* the answer needs DNS: end here, silently; the caller asks again the usual way */
		c->would_block = true;
		c->finished = true;
		check_detach(c);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		deliver(c, tidx, fam, NULL, false);
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
			deliver(c, tidx, fam, NULL, false);
			return;
		}
		fl->e = e;
		fl->qtype = qtype;
		fl->hash = h;
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
		resolver_query(e->res, fl->name, qtype, on_dns, fl);
	}
}

/* ---------------------------------------------------------------- the state machine */

static bool target_usable(const struct check *c, const struct target *t, bool *alias);
static void target_settled(struct check *c, struct target *t);
static void arm_hedge(struct check *c);

static void check_free(struct check *c);

static void enter(struct check *c)
{
	c->busy++;
}

/* Leave a call into the check; returns true if the check is gone. */
static bool leave(struct check *c)
{
	if (--c->busy == 0 && c->finished) {
		check_free(c);
		return true;
	}
	return false;
}

static bool should_finish(struct check *c)
{
	if (c->finished || c->issuing)
		return false;
	if (c->pending == 0 && (c->t == NULL || c->next_target >= c->nt))
		return true;
	if (c->e->wait_all || c->t == NULL)
		return false;
	/* The verdict cannot get better than ok once a non-alias target is usable. */
	for (size_t i = 0; i < c->nt; i++) {
		bool alias;
		if (target_usable(c, &c->t[i], &alias) && !alias)
			return true;
	}
	return false;
}

static void maybe_finish(struct check *c)
{
	if (should_finish(c))
		check_finish(c);
}

static void start_family(struct check *c, size_t i, int f)
{
	struct target *t = &c->t[i];
	t->f[f].started = true;
	t->f[f].pending = true;
	lookup(c, (int)i, f, t->host, f == FAM_A ? DNS_T_A : DNS_T_AAAA);
}

/* Until when the answers that made target t usable stay valid (ms). */
static uint64_t usable_until(const struct target *t)
{
	const struct famlook *f = t->f[FAM_A].usable ? &t->f[FAM_A] : &t->f[FAM_AAAA];
	return f->final ? rrset_expires(f->final) : 0;
}

/*
 * Ask for the targets' addresses, most preferred first, at most TARGET_WINDOW hosts at a
 * time (deliver() starts the next when one has settled).  The daemons ask A first and AAAA only
 * when A gives no usable address (see after_a): most mail hosts have an IPv4 address, and this
 * saves a third of the queries for domains with their own MX host.  mxsane-check (wait_all)
 * asks both at once for complete evidence.
 */
static void start_targets(struct check *c)
{
	struct engine *e = c->e;
	uint64_t now = evloop_now(e->loop);
	/* The MX set's memo (cache.h): an earlier check found its first host usable in the
	 * cache.  Only with the configuration that judged it, never for mxsane-check. */
	bool memo =
	        !e->wait_all && !c->want_addresses && !c->implicit && c->mxset && c->cfg == e->cfg;

	c->issuing++;
	while (c->next_target < c->nt && c->active < TARGET_WINDOW && !c->finished) {
		bool alias;
		size_t i = c->next_target++;
		struct target *t = &c->t[i];
		bool first = !c->any_started; /* the first host looked up at all */
		if (t->skip)
			continue;
		c->any_started = true;
		if (first && memo && rrset_mx_memo(c->mxset) > now) {
			/* usable as before, without its lookup; the result lives as long as the
			 * answers behind the memo */
			t->f[FAM_A].started = t->f[FAM_A].done = t->f[FAM_A].usable = true;
			account_ttl(c, cache_ttl_left(rrset_mx_memo(c->mxset), now));
			c->hits++;
			break;
		}
		t->active = true;
		c->active++;
		start_family(c, i, FAM_A);
		if (e->wait_all) {
			if (!c->finished)
				start_family(c, i, FAM_AAAA);
		} else if (target_usable(c, t, &alias) && !alias) {
			/* answered from the cache and usable: the verdict is ok whatever the less
			 * preferred hosts hold, so they are not looked up (a warm check of a
			 * provider's five MX hosts costs one address lookup, not five) */
			if (first && memo)
				rrset_set_mx_memo(c->mxset, usable_until(t));
			target_settled(c, t);
			break;
		}
		target_settled(c, t);
	}
	c->issuing--;
	arm_hedge(c);
	maybe_finish(c);
}

/*
 * The daemons ask AAAA only once A has ended.  An A lookup that does not answer would use the
 * whole budget, and AAAA would never be asked: a host reachable over IPv6 would be a
 * temporary failure, where mxsane-check (which asks both at once) finds it usable.  So a host
 * whose A has not answered after a quarter of the budget (c-ares' first try) has its AAAA
 * asked too.  Answers that come in time, the usual case, cost no extra query.
 */
static void on_hedge(struct evloop *loop, void *arg)
{
	struct check *c = arg;
	(void)loop;
	c->hedge = NULL;
	enter(c);
	c->issuing++;
	for (size_t i = 0; i < c->next_target && !c->finished; i++) {
		struct target *t = &c->t[i];
		if (t->f[FAM_A].pending && !t->f[FAM_AAAA].started)
			start_family(c, i, FAM_AAAA);
	}
	c->issuing--;
	maybe_finish(c);
	leave(c);
}

static void arm_hedge(struct check *c)
{
	if (!c->pending || c->hedge || c->finished || c->e->wait_all || c->cache_only)
		return; /* (answered from the cache, the usual case: nothing to wait for) */
	bool waiting = false;
	for (size_t i = 0; i < c->next_target && !waiting; i++)
		waiting = c->t[i].f[FAM_A].pending && !c->t[i].f[FAM_AAAA].started;
	if (!waiting)
		return;
	uint64_t when = evloop_now(c->e->loop) + c->cfg->timeout_ms / 4;
	if (when < c->deadline)
		c->hedge = evloop_timer(c->e->loop, when, on_hedge, c); /* none: no hedge */
}

/* A target whose lookups have all ended leaves the window (once). */
static void target_settled(struct check *c, struct target *t)
{
	if (t->active && !t->f[FAM_A].pending && !t->f[FAM_AAAA].pending) {
		t->active = false;
		c->active--;
	}
}

static bool family_usable(const struct check *c, const struct famlook *fl);
static void family_set_final(const struct check *c, struct famlook *fl, struct rrset *rs);

/* The A lookup of target tidx has ended: ask AAAA unless A already made it usable.  A name
 * that does not exist (NXDOMAIN) has no AAAA either: no need to ask. */
static void after_a(struct check *c, int tidx)
{
	struct target *t = &c->t[tidx];
	struct famlook *a = &t->f[FAM_A], *aaaa = &t->f[FAM_AAAA];
	if (aaaa->started || a->pending || family_usable(c, a))
		return;
	if (a->final && rrset_status(a->final) == DNSR_NXDOMAIN) {
		aaaa->started = aaaa->done = true;
		aaaa->alias = a->alias;
		family_set_final(c, aaaa, a->final);
		return;
	}
	start_family(c, (size_t)tidx, FAM_AAAA);
}

static void got_mx(struct check *c, struct rrset *rs)
{
	const struct config *cfg = c->cfg;
	size_t n = rrset_count(rs), nnull = 0;
	bool null_pref0 = false;
	const char *cur = NULL;
	struct mx_rec m = {0};

	while (rrset_mx_next(rs, &cur, &m)) {
		if (m.host[0] == '\0') {
			nnull++;
			if (m.pref == 0)
				null_pref0 = true;
		}
	}
	if (nnull == n && null_pref0) {
		check_finish(c); /* null MX */
		return;
	}
	if (nnull && nnull < n) {
		if (cfg->mixed_null_mx == MIXED_NULL_IS_NULL) {
			add_note(c, "a \".\" (null MX) record is published together with real MX "
			            "records; treated as null MX (checks.mixed_null_mx)");
			check_finish(c);
			return;
		}
		add_note(c,
		         "a \".\" (null MX) record is published together with real MX records "
		         "(RFC 7505 forbids this); it was ignored and the other records checked");
	}
	c->t = arena_alloc(&c->ar, sizeof(*c->t) * (n ? n : 1));
	if (!c->t) {
		c->chain_fail = "out of memory";
		check_finish(c);
		return;
	}
	/* The set is in preference order already, and says which exchanges repeat a more
	 * preferred one, are invalid or IP literals (judged once, cache.h): one pass. */
	cur = NULL;
	while (rrset_mx_next(rs, &cur, &m)) {
		if ((m.host[0] == '\0' && nnull < n) || (m.flags & MXF_DUP))
			continue; /* ignored null entry, or the same host again */
		struct target *t = &c->t[c->nt++];
		t->pref = m.pref;
		t->host = m.host; /* c->mxset holds a reference: valid for the whole check */
		if (m.host[0] == '\0') {
			t->skip = true;
			t->problem_static = arena_printf(
			        &c->ar,
			        "is not a valid null MX: preference %u, RFC 7505 requires 0",
			        m.pref);
		} else if (m.flags & MXF_INVALID) {
			t->skip = true;
			t->problem_static = "is not a valid host name";
		} else if (m.flags & MXF_IPLIT) {
			t->skip = true;
			t->problem_static = "is an IP address written as a host name";
		}
	}
	start_targets(c);
}

static void deliver_chain(struct check *c, struct rrset *rs)
{
	if (!rs) {
		c->chain_fail = "out of memory";
		check_finish(c);
		return;
	}
	switch (rrset_status(rs)) {
	case DNSR_CNAME: {
		const char *tgt = rrset_target(rs);
		c->hops += rrset_cnames(rs);
		if (c->hops > DNS_MAX_CNAME) {
			c->chain_fail = arena_printf(&c->ar, "CNAME chain at %s is longer than %d",
			                             c->domain, DNS_MAX_CNAME);
			check_finish(c);
			return;
		}
		for (unsigned i = 0; i < c->nvisited; i++)
			if (strcmp(c->visited[i], tgt) == 0) {
				c->chain_fail = arena_printf(&c->ar, "CNAME loop at %s (via %s)",
				                             c->domain, tgt);
				check_finish(c);
				return;
			}
		c->visited[c->nvisited++] = arena_strdup(&c->ar, tgt);
		copy_name(c->cur, sizeof(c->cur), tgt);
		lookup(c, DOMAIN_CHAIN, 0, c->cur, DNS_T_MX);
		return;
	}
	case DNSR_OK:
	case DNSR_NODATA:
	case DNSR_NXDOMAIN:
		c->hops += rrset_cnames(rs);
		if (c->hops > DNS_MAX_CNAME) {
			c->chain_fail = arena_printf(&c->ar, "CNAME chain at %s is longer than %d",
			                             c->domain, DNS_MAX_CNAME);
			check_finish(c);
			return;
		}
		break;
	case DNSR_TEMPFAIL:
	case DNSR_MALFORMED:
		c->chain_fail = arena_printf(&c->ar, "MX lookup for %s: %s", c->cur, rrset_why(rs));
		check_finish(c);
		return;
	}
	switch (rrset_status(rs)) {
	case DNSR_OK:
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->mxset = rrset_ref(rs);
		got_mx(c, rs);
		return;
	case DNSR_NODATA:
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->mxset = rrset_ref(rs);
		/* No MX: the implicit MX is the domain itself (RFC 5321 5.1). */
		c->implicit = true;
		c->t = arena_alloc(&c->ar, sizeof(*c->t));
		if (!c->t) {
			c->chain_fail = "out of memory";
			check_finish(c);
			return;
		}
		c->nt = 1;
		c->t[0].host = c->cur; /* the chain is over: c->cur no longer changes */
		start_targets(c);
		return;
	case DNSR_NXDOMAIN:
		c->mxset = rrset_ref(rs);
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->chain_perm = "nxdomain";
		check_finish(c);
		return;
	default: return;
	}
}

static void deliver_target(struct check *c, int tidx, int fam, struct rrset *rs)
{
	struct target *t = &c->t[tidx];
	struct famlook *f = &t->f[fam];

	if (!rs) {
		f->pending = false;
		f->temp = true;
		f->fail = "out of memory";
		return;
	}
	switch (rrset_status(rs)) {
	case DNSR_CNAME:
		f->alias = true;
		f->hops += rrset_cnames(rs);
		if (f->hops > DNS_MAX_CNAME) {
			f->pending = false;
			f->temp = true;
			f->fail = "CNAME chain too long or looping";
			return;
		}
		/* rs outlives the call: lookup() copies the name for an in-flight query */
		lookup(c, tidx, fam, rrset_target(rs), fam == FAM_A ? DNS_T_A : DNS_T_AAAA);
		return;
	case DNSR_OK:
	case DNSR_NODATA:
	case DNSR_NXDOMAIN:
		if (rrset_is_alias(rs))
			f->alias = true;
		f->hops += rrset_cnames(rs);
		f->pending = false;
		if (f->hops > DNS_MAX_CNAME) {
			f->temp = true;
			f->fail = "CNAME chain too long or looping";
			return;
		}
		f->done = true;
		family_set_final(c, f, rs);
		return;
	case DNSR_TEMPFAIL:
	case DNSR_MALFORMED:
		f->pending = false;
		f->temp = true;
		f->fail = arena_strdup(&c->ar, rrset_why(rs));
		return;
	}
}

static void deliver(struct check *c, int tidx, int fam, struct rrset *rs, bool cached)
{
	if (c->finished)
		return;
	if (rs)
		account(c, rs, cached);
	enter(c);
	if (tidx == DOMAIN_CHAIN) {
		deliver_chain(c, rs);
	} else {
		deliver_target(c, tidx, fam, rs);
		if (fam == FAM_A && !c->finished)
			after_a(c, tidx);
		target_settled(c, &c->t[tidx]);
		/* a host left the window: the next one's turn (start_targets' own loop does it
		 * for answers that come from the cache while it runs) */
		if (!c->finished && !c->issuing && !should_finish(c))
			start_targets(c);
	}
	maybe_finish(c);
	leave(c);
}

static void on_deadline(struct evloop *loop, void *arg)
{
	struct check *c = arg;
	(void)loop;
	c->timer = NULL;
	enter(c);
	if (!c->chain_fail && !c->mxset)
		c->chain_fail =
		        arena_printf(&c->ar, "no answer for the MX lookup of %s within %u ms",
		                     c->cur, (unsigned)(c->deadline - c->start));
	for (size_t i = 0; i < c->nt; i++)
		for (int f = 0; f < 2; f++)
			if (c->t[i].f[f].pending) {
				c->t[i].f[f].pending = false;
				c->t[i].f[f].temp = true;
				c->t[i].f[f].fail =
				        arena_printf(&c->ar, "no answer within %u ms",
				                     (unsigned)(c->deadline - c->start));
			}
	check_finish(c);
	leave(c);
}

/* ---------------------------------------------------------------- verdict rules */

static bool addr_bogus(const struct config *cfg, uint16_t qtype, const uint8_t *a)
{
	return netlist_match(&cfg->bogus_networks, qtype == DNS_T_A ? AF_INET : AF_INET6, a);
}

static bool family_usable(const struct check *c, const struct famlook *fl)
{
	(void)c;
	return fl->usable;
}

/* Set the final answer of a family and judge its addresses: once per record set while the
 * bogus networks stay the same (the judgment is kept with the cached set; a check still
 * running with an older configuration judges for itself). */
static void family_set_final(const struct check *c, struct famlook *fl, struct rrset *rs)
{
	bool memo = c->cfg == c->e->cfg;
	rrset_unref(fl->final);
	fl->final = rrset_ref(rs);
	fl->usable = false;
	if (rrset_status(rs) != DNSR_OK)
		return;
	if (memo && rrset_judgment(rs, &fl->usable))
		return;
	for (size_t i = 0; i < rrset_count(rs) && !fl->usable; i++)
		if (!addr_bogus(c->cfg, rrset_type(rs), rrset_addr(rs, i)))
			fl->usable = true;
	if (memo)
		rrset_set_judgment(rs, fl->usable);
}

/* A target is usable if one of its final answers holds a non-bogus address; it counts as an
 * alias only if every family that makes it usable was reached through a CNAME. */
static bool target_usable(const struct check *c, const struct target *t, bool *alias)
{
	/* A first, as the daemons ask: a usable A settles the host, and so does an NXDOMAIN for
	 * A (RFC 8020: nothing exists at the name), whatever AAAA holds.  mxsane-check, which
	 * asks both at once, judges them in the same order and so reaches the same verdict. */
	const struct rrset *af = t->f[FAM_A].final;
	bool a = family_usable(c, &t->f[FAM_A]);
	bool aaaa = family_usable(c, &t->f[FAM_AAAA]) && !(af && rrset_status(af) == DNSR_NXDOMAIN);
	*alias = false;
	if (!a && !aaaa)
		return false;
	*alias = !((a && !t->f[FAM_A].alias) || (aaaa && !t->f[FAM_AAAA].alias));
	return true;
}

/* RFC 8020: an NXDOMAIN settles a name, whatever the type asked: nothing exists there, so
 * a failed lookup of the other family cannot make the host usable. */
static bool target_nxdomain(const struct target *t)
{
	for (int f = 0; f < 2; f++)
		if (t->f[f].final && rrset_status(t->f[f].final) == DNSR_NXDOMAIN)
			return true;
	return false;
}

/* A lookup that could still have made the host usable failed or has not ended. */
static bool target_temp(const struct target *t)
{
	if (target_nxdomain(t))
		return false;
	return t->f[0].temp || t->f[1].temp || t->f[0].pending || t->f[1].pending;
}

/* Neither family was asked: nothing is known of the host. */
static bool target_unlooked(const struct target *t)
{
	return !t->skip && !t->f[FAM_A].started && !t->f[FAM_AAAA].started;
}

static bool target_exists(const struct target *t)
{
	if (target_nxdomain(t))
		return false;
	for (int f = 0; f < 2; f++)
		if (t->f[f].final)
			return true;
	return false;
}

static size_t target_naddr(const struct target *t)
{
	size_t n = 0;
	for (int f = 0; f < 2; f++)
		if (t->f[f].final && rrset_status(t->f[f].final) == DNSR_OK)
			n += rrset_count(t->f[f].final);
	return n;
}

/* Plain-words problem of one target, NULL if usable. */
static const char *target_problem(struct check *c, const struct target *t)
{
	bool alias;
	if (t->problem_static)
		return t->problem_static;
	if (target_usable(c, t, &alias))
		return alias ? "is an alias (CNAME), not a host name (RFC 2181 10.3)" : NULL;
	/* Not looked up, or still pending when the verdict was settled by a more preferred
	 * host: nothing is known against it.  (A check that ends on its deadline has turned
	 * every pending lookup into a temporary failure first.) */
	if ((!t->f[FAM_A].started && !t->f[FAM_AAAA].started) ||
	    ((t->f[FAM_A].pending || t->f[FAM_AAAA].pending) && !t->f[FAM_A].temp &&
	     !t->f[FAM_AAAA].temp))
		return NULL;
	if (target_temp(t)) {
		const char *why = t->f[0].fail ? t->f[0].fail : t->f[1].fail;
		return arena_printf(&c->ar, "temporary DNS failure: %s",
		                    why ? why : "lookup still pending");
	}
	if (!target_exists(t))
		return "does not exist (NXDOMAIN)";
	if (target_naddr(t) == 0)
		return "has no address records";
	return "has only unusable addresses (loopback, private or reserved)";
}

/*
 * The rules, in one place.  "A temporary failure beats a permanent negative": when nothing
 * usable was found and any lookup that could have produced a usable host failed
 * temporarily, the verdict is dns_error.
 */
static enum verdict verdict_decide(struct check *c, const char **detail)
{
	if (c->chain_fail) {
		*detail = c->chain_fail;
		return V_DNS_ERROR;
	}
	if (c->chain_perm) {
		*detail = c->hops ? arena_printf(&c->ar, "alias target %s does not exist", c->cur)
		                  : "the domain does not exist";
		return V_NXDOMAIN;
	}
	if (!c->mxset) {
		*detail = "no answer";
		return V_DNS_ERROR;
	}
	if (!c->t) { /* finished from got_mx: null MX */
		*detail = "null MX";
		return V_NULL_MX;
	}
	bool any_ok = false, any_alias = false, any_temp = false;
	size_t unlooked = 0;
	const char *alias_host = NULL, *temp_why = NULL;
	for (size_t i = 0; i < c->nt; i++) {
		struct target *t = &c->t[i];
		bool alias;
		if (t->skip)
			continue;
		if (target_unlooked(t)) {
			unlooked++;
			continue;
		}
		if (target_usable(c, t, &alias)) {
			if (alias) {
				any_alias = true;
				if (!alias_host)
					alias_host = t->host;
			} else {
				any_ok = true;
			}
		} else if (target_temp(t)) {
			any_temp = true;
			if (!temp_why)
				temp_why = arena_printf(
				        &c->ar, "%s: %s", t->host,
				        t->f[0].fail ? t->f[0].fail
				                     : (t->f[1].fail ? t->f[1].fail : "no answer"));
		}
	}
	if (any_ok) {
		*detail = "";
		return V_OK;
	}
	if (any_alias) {
		*detail = arena_printf(&c->ar, "MX target %s is an alias", alias_host);
		return V_MX_CNAME;
	}
	if (any_temp) {
		*detail = temp_why;
		return V_DNS_ERROR;
	}
	if (unlooked) {
		/* The deadline came before every host was looked at: what is left might be
		 * usable.  Temporary: a later try finds the answers so far in the cache. */
		*detail = arena_printf(&c->ar, "%zu of %zu MX hosts not looked at within %u ms",
		                       unlooked, c->nt, (unsigned)(c->deadline - c->start));
		return V_DNS_ERROR;
	}
	if (c->mxset && rrset_cut(c->mxset)) {
		/* More MX records than one set keeps (DNS_MAX_RECORDS): those dropped were never
		 * looked at, and a sender may use them.  Nothing is proved, and asking again
		 * would not look further: accepted, with a note. */
		add_note(c, arena_printf(&c->ar,
		                         "the MX set has more than %d records: none of the %zu "
		                         "looked at is usable, the rest were not looked at",
		                         DNS_MAX_RECORDS, c->nt));
		*detail = "";
		return V_OK;
	}
	if (c->implicit && target_naddr(&c->t[0]) == 0) {
		*detail = "no MX and no address records";
		return V_NO_MAIL_HOST;
	}
	if (c->implicit) {
		/* The domain's own addresses are its mail host (RFC 5321 5.1), and they are
		 * judged as an MX host's are: addresses in bogus_networks are local policy, not
		 * DNS proof that the domain takes no mail (that is what a null MX says). */
		*detail = "no MX, and the domain's own addresses are all loopback, private or "
		          "reserved";
		return V_BROKEN_MX;
	}
	/* broken MX: summarise the first few problems */
	char buf[400];
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->nt && i < 3; i++) {
		const char *p = target_problem(c, &c->t[i]);
		int n = snprintf(buf + o, sizeof(buf) - o, "%s%s %s", i ? "; " : "",
		                 c->t[i].host[0] ? c->t[i].host : ".", p ? p : "?");
		if (n < 0 || (size_t)n >= sizeof(buf) - o)
			break;
		o += (size_t)n;
	}
	if (c->nt > 3 && o + 8 < sizeof(buf))
		snprintf(buf + o, sizeof(buf) - o, "; ...");
	*detail = arena_strdup(&c->ar, buf);
	return V_BROKEN_MX;
}

static const char *reason_for(struct check *c, enum verdict v, const char *detail)
{
	const char *d = c->domain;
	switch (v) {
	case V_OK: return arena_concat(&c->ar, d, " has a usable mail server", NULL);
	case V_NULL_MX: return arena_concat(&c->ar, d, " does not accept mail (null MX)", NULL);
	case V_NXDOMAIN:
		return c->hops ? arena_printf(&c->ar, "%s does not exist (%s)", d, detail)
		               : arena_printf(&c->ar, "%s does not exist", d);
	case V_NO_MAIL_HOST: return arena_printf(&c->ar, "%s has no mail server (%s)", d, detail);
	case V_BROKEN_MX:
		return arena_printf(&c->ar, "%s has no usable mail server (%s)", d, detail);
	case V_MX_CNAME:
		return arena_printf(&c->ar, "%s is reachable only through an MX alias (%s)", d,
		                    detail);
	case V_DNS_ERROR:
		return arena_printf(&c->ar, "temporary DNS failure for %s (%s)", d, detail);
	case V_SKIPPED:
	case V__COUNT: break;
	}
	return detail;
}

/* ---------------------------------------------------------------- outage guard */

static void outage_record(struct engine *e, bool dns_error)
{
	const struct config *cfg = e->cfg;
	if (!e->ring || e->ring_size != cfg->outage_window) {
		free(e->ring);
		e->ring = calloc(cfg->outage_window, 1);
		e->ring_size = e->ring ? cfg->outage_window : 0;
		e->ring_pos = e->ring_fill = e->ring_errors = 0;
		if (!e->ring)
			return;
	}
	if (e->ring_fill == e->ring_size)
		e->ring_errors -= e->ring[e->ring_pos];
	else
		e->ring_fill++;
	e->ring[e->ring_pos] = dns_error ? 1 : 0;
	e->ring_errors += e->ring[e->ring_pos];
	e->ring_pos = (e->ring_pos + 1) % e->ring_size;
	/* Judge only once a meaningful sample exists: at least 10 checks. */
	bool was = e->outage;
	e->outage = e->ring_fill >= 10 &&
	            (double)e->ring_errors > cfg->outage_ratio * (double)e->ring_fill;
	if (e->outage != was)
		log_msg(e->outage ? LOG_ERR : LOG_NOTICE,
		        e->outage ? "DNS outage: %zu of the last %zu checks failed temporarily; "
		                    "on_dns_outage=%s%s"
		                  : "DNS outage over: %zu of the last %zu checks failed; "
		                    "on_dns_outage=%s%s",
		        e->ring_errors, e->ring_fill,
		        cfg->on_dns_outage == OUTAGE_ACCEPT ? "accept" : "tempfail",
		        e->outage && cfg->on_dns_outage == OUTAGE_ACCEPT
		                ? ": ACCEPTING MAIL WITHOUT DNS CHECKS until lookups succeed again"
		                : "");
}

/* ---------------------------------------------------------------- results */

static void emit(struct check *c, enum verdict v, const char *detail, const char *reason)
{
	struct engine *e = c->e;
	const struct config *cfg = c->cfg;
	struct check_result r;
	struct mx_info *mx = NULL;

	memset(&r, 0, sizeof(r));
	r.role = c->role;
	r.verdict = v;
	r.configured_action = cfg->actions[v];
	r.action = r.configured_action;
	e->st.checks++;
	e->st.cache_hits += c->hits;
	if (v != V_SKIPPED)
		outage_record(e, v == V_DNS_ERROR);
	if (v == V_DNS_ERROR) {
		e->st.dns_errors++;
		if (e->outage && cfg->on_dns_outage == OUTAGE_ACCEPT && r.action > ACT_WARN) {
			r.action = ACT_WARN;
			r.outage = true;
		}
	}
	if (cfg->mode == MODE_MONITOR && r.action > ACT_WARN) {
		r.action = ACT_WARN;
		r.monitor = true;
	}
	r.reply = (r.action == ACT_TEMPFAIL || r.action == ACT_REJECT)
	                  ? reply_for(v, r.action, c->role)
	                  : (struct reply){0, NULL};
	r.domain = c->domain;
	r.reason = reason;
	r.address = r.text = "";
	if (r.reply.code) {
		/* only a reply carries the address (an accepted check, the usual one, needs no
		 * copy and no text) */
		r.address = c->raw ? sanitize(&c->ar, c->raw, c->rawlen) : "";
		r.text = r.address[0] ? arena_concat(&c->ar, "<", r.address, ">: ", reason, NULL)
		                      : arena_strdup(&c->ar, reason);
		if (strlen(r.text) > REPLY_TEXT_MAX) {
			/* libmilter takes at most 980 characters per reply line; Postfix's
			 * policy client a line of 2 KiB with the code: keep every front-end
			 * well inside. */
			char *t = (char *)(uintptr_t)r.text;
			memcpy(t + REPLY_TEXT_MAX - 3, "...", 4);
		}
	}
	if (r.action == ACT_WARN) {
		const char *d = detail && detail[0] ? detail : reason;
		if (r.monitor || r.outage)
			r.header = arena_printf(&c->ar, "%s %s (%s; would %s%s)", verdict_name(v),
			                        c->domain, d, action_name(r.configured_action),
			                        r.outage ? ", not applied: DNS outage" : "");
		else
			r.header =
			        arena_printf(&c->ar, "%s %s (%s)", verdict_name(v), c->domain, d);
	}
	r.ttl = v == V_DNS_ERROR ? cfg->cache_error_ttl : (c->any_rrset ? c->ttl : 0);
	r.cached = c->any_rrset && c->all_cached;
	r.ms = (double)(evloop_now(e->loop) - c->start);
	r.implicit_mx = c->implicit;
	r.canonical = strcmp(c->cur, c->domain) != 0 && c->cur[0] ? c->cur : NULL;

	if (c->nt) {
		mx = arena_alloc(&c->ar, sizeof(*mx) * c->nt);
		for (size_t i = 0; mx && i < c->nt; i++) {
			struct target *t = &c->t[i];
			struct mx_info *m = &mx[i];
			size_t n = c->want_addresses ? target_naddr(t) : 0, k = 0;
			const char **addrs =
			        n ? arena_alloc(&c->ar, sizeof(char *) * (n + 1)) : NULL;
			bool *bog = n ? arena_alloc(&c->ar, sizeof(bool) * (n + 1)) : NULL;
			uint32_t *attl = n ? arena_alloc(&c->ar, sizeof(uint32_t) * (n + 1)) : NULL;
			uint64_t now = evloop_now(e->loop);
			m->ttl = c->mxset && !c->implicit ? rrset_ttl_left(c->mxset, now) : 0;
			m->pref = t->pref;
			m->host = t->host;
			m->usable = target_usable(c, t, &m->alias);
			m->alias = t->f[0].alias || t->f[1].alias;
			m->temp = target_temp(t);
			m->problem = target_problem(c, t);
			for (int f = 0; f < 2 && addrs && bog && attl; f++) {
				struct rrset *s = t->f[f].final;
				if (!s || rrset_status(s) != DNSR_OK)
					continue;
				for (size_t j = 0; j < rrset_count(s); j++) {
					char txt[INET6_ADDRSTRLEN];
					int af = rrset_type(s) == DNS_T_A ? AF_INET : AF_INET6;
					inet_ntop(af, rrset_addr(s, j), txt, sizeof(txt));
					bog[k] = addr_bogus(cfg, rrset_type(s), rrset_addr(s, j));
					attl[k] = rrset_ttl_left(s, now);
					addrs[k++] = arena_strdup(&c->ar, txt);
				}
			}
			m->naddr = addrs && bog && attl ? k : 0;
			m->addrs = addrs;
			m->addr_bogus = bog;
			m->addr_ttl = attl;
		}
		r.mx = mx;
		r.nmx = mx ? c->nt : 0;
	} else if (c->mxset && v == V_NULL_MX) {
		/* show the null MX record itself */
		size_t n = rrset_count(c->mxset), i = 0;
		const char *cur = NULL;
		struct mx_rec m = {0};
		mx = arena_alloc(&c->ar, sizeof(*mx) * (n ? n : 1));
		while (mx && i < n && rrset_mx_next(c->mxset, &cur, &m)) {
			mx[i].host = m.host;
			mx[i].pref = m.pref;
			mx[i].ttl = rrset_ttl_left(c->mxset, evloop_now(e->loop));
			mx[i].problem = NULL;
			i++;
		}
		r.mx = mx;
		r.nmx = mx ? n : 0;
	}
	r.nnotes = c->nnotes;
	r.notes = c->notes;
	c->cb(c->arg, &r);
}

/* Stop waiting: detach from in-flight queries and the deadline. */
static void check_detach(struct check *c)
{
	struct waiter *w = c->waiters, *next;
	for (; w; w = next) {
		next = w->cnext;
		w->chk = NULL; /* the in-flight entry frees it */
		w->cprev = w->cnext = NULL;
	}
	c->waiters = NULL;
	if (c->timer)
		evloop_cancel(c->e->loop, c->timer);
	c->timer = NULL;
	if (c->hedge)
		evloop_cancel(c->e->loop, c->hedge);
	c->hedge = NULL;
}

static void check_free(struct check *c)
{
	check_detach(c);
	for (size_t i = 0; i < c->nt; i++)
		for (int f = 0; f < 2; f++)
			rrset_unref(c->t[i].f[f].final);
	rrset_unref(c->mxset);
	config_unref(c->cfg);
	arena_free(&c->ar);
	struct engine *e = c->e;
	if (e->nspare < sizeof(e->spare) / sizeof(e->spare[0]))
		e->spare[e->nspare++] = c;
	else
		free(c);
}

static void check_finish(struct check *c)
{
	const char *detail = "";
	if (c->finished)
		return;
	c->finished = true;
	check_detach(c);
	enum verdict v = verdict_decide(c, &detail);
	emit(c, v, detail, reason_for(c, v, detail));
	/* freed by the outermost leave() */
}

static void finish_skipped(struct check *c, const char *why)
{
	c->finished = true;
	emit(c, V_SKIPPED, why, why);
	check_free(c);
}

/* Is the client in skip.clients?  The answer for the last client is kept: the sender and
 * recipient checks of a request (and a session's messages) ask about the same one. */
static bool client_skipped(struct engine *e, const char *client)
{
	size_t l = strnlen(client, sizeof(e->skip_client));
	if (e->skip_cfg == e->cfg && l < sizeof(e->skip_client) &&
	    memcmp(e->skip_client, client, l + 1) == 0)
		return e->skip_last;
	bool hit = netlist_match_str(&e->cfg->skip_clients, client);
	if (l < sizeof(e->skip_client)) {
		memcpy(e->skip_client, client, l + 1);
		e->skip_cfg = e->cfg;
		e->skip_last = hit;
	}
	return hit;
}

/* ---------------------------------------------------------------- public */

static struct check *check_start(struct engine *e, const struct check_request *req, check_cb cb,
                                 void *arg, bool cache_only, bool *would_block)
{
	*would_block = false;
	const struct config *cfg = e->cfg;
	struct check *c = e->nspare ? e->spare[--e->nspare] : malloc(sizeof(*c));
	struct addr_parsed ap;

	if (!c) {
		/* Out of memory: a temporary failure, never a rejection. */
		struct check_result r;
		memset(&r, 0, sizeof(r));
		r.role = req->role;
		r.verdict = V_DNS_ERROR;
		r.configured_action = r.action = ACT_TEMPFAIL;
		r.reply = reply_for(V_DNS_ERROR, ACT_TEMPFAIL, req->role);
		r.address = r.domain = "";
		r.reason = r.text = "temporary local failure (out of memory)";
		cb(arg, &r);
		return NULL;
	}
	memset(c, 0, offsetof(struct check, arena_mem));
	arena_init(&c->ar, c->arena_mem, sizeof(c->arena_mem));
	c->e = e;
	c->cfg = config_ref(e->cfg);
	c->cb = cb;
	c->arg = arg;
	c->role = req->role;
	c->want_addresses = req->want_addresses;
	c->start = evloop_now(e->loop);
	c->all_cached = true;
	c->cache_only = cache_only;

	if (req->address) {
		/* kept as given: sanitised only if a reply needs it (emit) */
		size_t n = req->address_len > ADDR_MAX + 1 ? ADDR_MAX + 1 : req->address_len;
		char *raw = arena_alloc(&c->ar, n + 1);
		if (raw) {
			memcpy(raw, req->address, n);
			c->raw = raw;
			c->rawlen = n;
		}
	}

	if ((req->role == ROLE_SENDER && !cfg->check_sender) ||
	    (req->role == ROLE_RECIPIENT && !cfg->check_recipient)) {
		finish_skipped(c, req->role == ROLE_SENDER ? "sender checks are disabled"
		                                           : "recipient checks are disabled");
		return NULL;
	}
	if (req->role == ROLE_SENDER && req->authenticated) {
		finish_skipped(c, "authenticated sender");
		return NULL;
	}
	/* A local program's sender is the site's own business, often a name that only exists
	 * inside it (root@host.internal): a tempfail would keep the mail on the machine for
	 * good, with no bounce.  Its recipients are still checked. */
	if (req->role == ROLE_SENDER && req->local_submission && !cfg->check_local_sender) {
		finish_skipped(
		        c,
		        "locally submitted mail (sender not checked: checks.local_sender = false)");
		return NULL;
	}
	if (req->client_addr && client_skipped(e, req->client_addr)) {
		finish_skipped(c, arena_printf(&c->ar, "client %s is in skip.clients",
		                               sanitize(&c->ar, req->client_addr,
		                                        strlen(req->client_addr))));
		return NULL;
	}
	if (req->domain) {
		char why[128];
		if (!domain_normalize(req->domain, strlen(req->domain), c->domain, why,
		                      sizeof(why))) {
			finish_skipped(c, arena_printf(&c->ar, "invalid domain: %s", why));
			return NULL;
		}
	} else {
		addr_parse(req->address ? req->address : "", req->address ? req->address_len : 0,
		           &ap);
		switch (ap.kind) {
		case ADDR_DOMAIN: copy_name(c->domain, sizeof(c->domain), ap.domain); break;
		case ADDR_NULL:
			finish_skipped(c,
			               req->role == ROLE_SENDER ? "null sender" : "empty address");
			return NULL;
		case ADDR_LITERAL: finish_skipped(c, "address literal"); return NULL;
		case ADDR_NODOMAIN: finish_skipped(c, "address without a domain"); return NULL;
		case ADDR_INVALID:
			finish_skipped(c,
			               arena_printf(&c->ar, "unparseable address: %s", ap.reason));
			return NULL;
		}
	}
	if (domlist_match(&cfg->skip_domains, c->domain)) {
		finish_skipped(c, arena_printf(&c->ar, "%s is in skip.domains", c->domain));
		return NULL;
	}

	copy_name(c->cur, sizeof(c->cur), c->domain);
	c->visited[0] = c->domain;
	c->nvisited = 1;
	c->deadline = c->start + cfg->timeout_ms;
	if (req->deadline && req->deadline < c->deadline)
		c->deadline = req->deadline > c->start ? req->deadline : c->start;
	enter(c);
	lookup(c, DOMAIN_CHAIN, 0, c->domain, DNS_T_MX);
	*would_block = c->would_block;
	/* The deadline matters only to a check that has to wait: one answered from the cache
	 * has finished by now and never touches the timer heap. */
	if (!c->finished) {
		c->timer = evloop_timer(e->loop, c->deadline, on_deadline, c);
		if (!c->timer) {
			c->chain_fail = "out of memory";
			check_finish(c);
		}
	}
	if (leave(c))
		return NULL;
	return c;
}

struct check *engine_check(struct engine *e, const struct check_request *req, check_cb cb,
                           void *arg)
{
	bool wb;
	return check_start(e, req, cb, arg, false, &wb);
}

bool engine_check_cached(struct engine *e, const struct check_request *req, check_cb cb, void *arg)
{
	bool wb = false;
	check_start(e, req, cb, arg, true, &wb); /* never pending: finished or given up */
	return !wb;
}

void engine_cancel(struct engine *e, struct check *c)
{
	(void)e;
	if (!c || c->finished)
		return;
	c->finished = true;
	check_detach(c);
	if (c->busy == 0)
		check_free(c);
}

/* A server that does not recurse answers only its own zones, and refers every other
 * question elsewhere: mxsane then tempfails most mail.  Said loudly, once per start or reload. */
static void on_probe(void *arg, const char *server, enum probe_outcome o, const char *detail)
{
	(void)arg;
	switch (o) {
	case PROBE_RECURSIVE: break;
	case PROBE_NO_RECURSION:
		log_msg(LOG_WARNING,
		        "WARNING: resolver server %s does not offer recursion (%s): it answers "
		        "only "
		        "the zones it serves itself; for any other domain its referrals are "
		        "temporary failures (4xx). Set resolver.servers to a recursive resolver",
		        server, detail);
		break;
	case PROBE_NO_ANSWER:
		log_msg(LOG_WARNING,
		        "WARNING: resolver server %s did not answer a recursive query for the "
		        "root's "
		        "NS records (%s): lookups through it may fail (4xx)",
		        server, detail);
		break;
	}
}

static void start_probe(struct engine *e)
{
	resolver_probe_free(e->probe);
	e->probe = resolver_probe_start(e->loop, e->cfg->servers, e->cfg->nservers,
	                                e->cfg->timeout_ms, on_probe, e);
}

bool engine_probe_pending(const struct engine *e)
{
	return resolver_probe_pending(e->probe);
}

struct engine *engine_new(struct evloop *loop, struct config *cfg, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->loop = loop;
	e->cfg = config_ref(cfg);
	e->cache = cache_new(cfg->cache_max_entries);
	if (!e->cache) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	e->res = resolver_new(loop, cfg->servers, cfg->nservers, cfg->timeout_ms, err, errlen);
	if (!e->res)
		goto fail;
	start_probe(e);
	return e;
fail:
	engine_free(e);
	return NULL;
}

static bool same_resolver(const struct config *a, const struct config *b)
{
	if (a->timeout_ms != b->timeout_ms || a->nservers != b->nservers)
		return false;
	for (size_t i = 0; i < a->nservers; i++)
		if (strcmp(a->servers[i], b->servers[i]) != 0)
			return false;
	return true;
}

static void reap(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	(void)loop;
	e->reap_timer = NULL;
	bool again = false;
	for (size_t i = 0; i < sizeof(e->retired) / sizeof(e->retired[0]); i++) {
		if (!e->retired[i])
			continue;
		if (resolver_pending(e->retired[i]) == 0) {
			resolver_free(e->retired[i]);
			e->retired[i] = NULL;
		} else {
			again = true;
		}
	}
	if (again)
		e->reap_timer = evloop_timer(e->loop, evloop_now(e->loop) + 1000, reap, e);
}

int engine_reconfigure(struct engine *e, struct config *cfg, char *err, size_t errlen)
{
	if (!same_resolver(e->cfg, cfg)) {
		struct resolver *nr = resolver_new(e->loop, cfg->servers, cfg->nservers,
		                                   cfg->timeout_ms, err, errlen);
		if (!nr)
			return -1;
		size_t slot = 0, n = sizeof(e->retired) / sizeof(e->retired[0]);
		while (slot < n && e->retired[slot])
			slot++;
		if (slot == n) { /* too many reloads in flight: cut the oldest short */
			resolver_free(e->retired[0]);
			e->retired[0] = NULL;
			slot = 0;
		}
		e->retired[slot] = e->res;
		e->res = nr;
		if (!e->reap_timer)
			e->reap_timer = evloop_timer(e->loop, evloop_now(e->loop), reap, e);
		/* answers from other servers may differ: start afresh */
		cache_clear(e->cache);
	}
	cache_set_limit(e->cache, cfg->cache_max_entries);
	if (!netlist_equal(&e->cfg->bogus_networks, &cfg->bogus_networks))
		cache_forget_judgments(e->cache);
	e->skip_cfg = NULL; /* judged against the old skip.clients */
	config_unref(e->cfg);
	e->cfg = config_ref(cfg);
	start_probe(e);
	return 0;
}

const struct config *engine_config(const struct engine *e)
{
	return e->cfg;
}

void engine_set_wait_all(struct engine *e, bool on)
{
	e->wait_all = on;
}

void engine_get_stats(const struct engine *e, struct engine_stats *st)
{
	*st = e->st;
	st->cache_entries = cache_entries(e->cache);
	st->cache_bytes = cache_bytes(e->cache);
	st->inflight = e->ninflight;
}

void engine_flush_cache(struct engine *e)
{
	cache_clear(e->cache);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	e->closing = true;
	resolver_probe_free(e->probe);
	/* Destroying the resolvers runs every pending query's callback with
	 * ARES_EDESTRUCTION, which completes the checks waiting on them (dns_error). */
	for (size_t i = 0; i < sizeof(e->retired) / sizeof(e->retired[0]); i++)
		resolver_free(e->retired[i]);
	resolver_free(e->res);
	e->res = NULL;
	if (e->reap_timer)
		evloop_cancel(e->loop, e->reap_timer);
	cache_free(e->cache);
	while (e->nspare)
		free(e->spare[--e->nspare]);
	free(e->ring);
	config_unref(e->cfg);
	free(e);
}
