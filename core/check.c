/*
 * check.c - one check from request to verdict: the skip and check gates, the MX lookup
 * (following a CNAME at the domain), the address lookups of every MX host (a window of
 * TARGET_WINDOW hosts, most preferred first; A, then AAAA), the deadline; at the end the
 * evidence goes to the rules (rules.c) and the result to the front-end (result.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "evloop.h"
#include "netlist.h"

static void add_note(struct check *c, const char *s)
{
	if (c->nnotes < sizeof(c->notes) / sizeof(c->notes[0]))
		c->notes[c->nnotes++] = s;
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

/* The final answer of a family, judged against the check's bogus networks (with the
 * cache's memo only under the engine's current configuration). */
static void family_set_final(const struct check *c, struct famlook *fl, struct rrset *rs)
{
	rules_family_final(c->cfg, c->cfg == c->e->cfg, fl, rs);
}

static void target_settled(struct check *c, struct target *t);
static void arm_hedge(struct check *c);

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
	if (c->pending == 0 && (c->ev.t == NULL || c->next_target >= c->ev.nt))
		return true;
	if (c->e->wait_all || c->ev.t == NULL)
		return false;
	/* The verdict cannot get better than ok once a non-alias target is usable. */
	for (size_t i = 0; i < c->ev.nt; i++) {
		bool alias;
		if (rules_target_usable(&c->ev.t[i], &alias) && !alias)
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
	struct target *t = &c->ev.t[i];
	t->f[f].started = true;
	t->f[f].pending = true;
	inflight_lookup(c, (int)i, f, t->host, f == FAM_A ? DNS_T_A : DNS_T_AAAA);
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
	bool memo = !e->wait_all && !c->want_addresses && !c->ev.implicit && c->ev.mxset &&
	            c->cfg == e->cfg;

	c->issuing++;
	while (c->next_target < c->ev.nt && c->active < TARGET_WINDOW && !c->finished) {
		bool alias;
		size_t i = c->next_target++;
		struct target *t = &c->ev.t[i];
		bool first = !c->any_started; /* the first host looked up at all */
		if (t->skip)
			continue;
		c->any_started = true;
		if (first && memo && rrset_mx_memo(c->ev.mxset) > now) {
			/* usable as before, without its lookup; the result lives as long as the
			 * answers behind the memo */
			t->f[FAM_A].started = t->f[FAM_A].done = t->f[FAM_A].usable = true;
			account_ttl(c, cache_ttl_left(rrset_mx_memo(c->ev.mxset), now));
			c->hits++;
			break;
		}
		t->active = true;
		c->active++;
		start_family(c, i, FAM_A);
		if (e->wait_all) {
			if (!c->finished)
				start_family(c, i, FAM_AAAA);
		} else if (rules_target_usable(t, &alias) && !alias) {
			/* answered from the cache and usable: the verdict is ok whatever the less
			 * preferred hosts hold, so they are not looked up (a warm check of a
			 * provider's five MX hosts costs one address lookup, not five) */
			if (first && memo)
				rrset_set_mx_memo(c->ev.mxset, usable_until(t));
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
		struct target *t = &c->ev.t[i];
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
		waiting = c->ev.t[i].f[FAM_A].pending && !c->ev.t[i].f[FAM_AAAA].started;
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

/* The A lookup of target tidx has ended: ask AAAA unless A already made it usable.  A name
 * that does not exist (NXDOMAIN) has no AAAA either: no need to ask. */
static void after_a(struct check *c, int tidx)
{
	struct target *t = &c->ev.t[tidx];
	struct famlook *a = &t->f[FAM_A], *aaaa = &t->f[FAM_AAAA];
	if (aaaa->started || a->pending || a->usable)
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
	c->ev.t = arena_alloc(&c->ar, sizeof(*c->ev.t) * (n ? n : 1));
	if (!c->ev.t) {
		c->ev.chain_fail = "out of memory";
		check_finish(c);
		return;
	}
	/* The set is in preference order already, and says which exchanges repeat a more
	 * preferred one, are invalid or IP literals (judged once, cache.h): one pass. */
	cur = NULL;
	while (rrset_mx_next(rs, &cur, &m)) {
		if ((m.host[0] == '\0' && nnull < n) || (m.flags & MXF_DUP))
			continue; /* ignored null entry, or the same host again */
		struct target *t = &c->ev.t[c->ev.nt++];
		t->pref = m.pref;
		t->host = m.host; /* c->ev.mxset holds a reference: valid for the whole check */
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
		c->ev.chain_fail = "out of memory";
		check_finish(c);
		return;
	}
	switch (rrset_status(rs)) {
	case DNSR_CNAME: {
		const char *tgt = rrset_target(rs);
		c->ev.hops += rrset_cnames(rs);
		if (c->ev.hops > DNS_MAX_CNAME) {
			c->ev.chain_fail =
			        arena_printf(&c->ar, "CNAME chain at %s is longer than %d",
			                     c->domain, DNS_MAX_CNAME);
			check_finish(c);
			return;
		}
		for (unsigned i = 0; i < c->nvisited; i++)
			if (strcmp(c->visited[i], tgt) == 0) {
				c->ev.chain_fail = arena_printf(&c->ar, "CNAME loop at %s (via %s)",
				                                c->domain, tgt);
				check_finish(c);
				return;
			}
		c->visited[c->nvisited++] = arena_strdup(&c->ar, tgt);
		copy_name(c->cur, sizeof(c->cur), tgt);
		inflight_lookup(c, DOMAIN_CHAIN, 0, c->cur, DNS_T_MX);
		return;
	}
	case DNSR_OK:
	case DNSR_NODATA:
	case DNSR_NXDOMAIN:
		c->ev.hops += rrset_cnames(rs);
		if (c->ev.hops > DNS_MAX_CNAME) {
			c->ev.chain_fail =
			        arena_printf(&c->ar, "CNAME chain at %s is longer than %d",
			                     c->domain, DNS_MAX_CNAME);
			check_finish(c);
			return;
		}
		break;
	case DNSR_TEMPFAIL:
	case DNSR_MALFORMED:
		c->ev.chain_fail =
		        arena_printf(&c->ar, "MX lookup for %s: %s", c->cur, rrset_why(rs));
		check_finish(c);
		return;
	}
	switch (rrset_status(rs)) {
	case DNSR_OK:
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->ev.mxset = rrset_ref(rs);
		got_mx(c, rs);
		return;
	case DNSR_NODATA:
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->ev.mxset = rrset_ref(rs);
		/* No MX: the implicit MX is the domain itself (RFC 5321 5.1). */
		c->ev.implicit = true;
		c->ev.t = arena_alloc(&c->ar, sizeof(*c->ev.t));
		if (!c->ev.t) {
			c->ev.chain_fail = "out of memory";
			check_finish(c);
			return;
		}
		c->ev.nt = 1;
		c->ev.t[0].host = c->cur; /* the chain is over: c->cur no longer changes */
		start_targets(c);
		return;
	case DNSR_NXDOMAIN:
		c->ev.mxset = rrset_ref(rs);
		if (rrset_is_alias(rs) && rrset_target(rs))
			copy_name(c->cur, sizeof(c->cur), rrset_target(rs));
		c->ev.chain_nxdomain = true;
		check_finish(c);
		return;
	default: return;
	}
}

static void deliver_target(struct check *c, int tidx, int fam, struct rrset *rs)
{
	struct target *t = &c->ev.t[tidx];
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
		inflight_lookup(c, tidx, fam, rrset_target(rs),
		                fam == FAM_A ? DNS_T_A : DNS_T_AAAA);
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

void check_deliver(struct check *c, int tidx, int fam, struct rrset *rs, bool cached)
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
		target_settled(c, &c->ev.t[tidx]);
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
	if (!c->ev.chain_fail && !c->ev.mxset)
		c->ev.chain_fail =
		        arena_printf(&c->ar, "no answer for the MX lookup of %s within %u ms",
		                     c->cur, (unsigned)(c->deadline - c->start));
	for (size_t i = 0; i < c->ev.nt; i++)
		for (int f = 0; f < 2; f++)
			if (c->ev.t[i].f[f].pending) {
				c->ev.t[i].f[f].pending = false;
				c->ev.t[i].f[f].temp = true;
				c->ev.t[i].f[f].fail =
				        arena_printf(&c->ar, "no answer within %u ms",
				                     (unsigned)(c->deadline - c->start));
			}
	check_finish(c);
	leave(c);
}

/* Stop waiting: detach from in-flight queries and the deadline. */
void check_detach(struct check *c)
{
	inflight_detach(c);
	if (c->timer)
		evloop_cancel(c->e->loop, c->timer);
	c->timer = NULL;
	if (c->hedge)
		evloop_cancel(c->e->loop, c->hedge);
	c->hedge = NULL;
}

void check_free(struct check *c)
{
	check_detach(c);
	for (size_t i = 0; i < c->ev.nt; i++)
		for (int f = 0; f < 2; f++)
			rrset_unref(c->ev.t[i].f[f].final);
	rrset_unref(c->ev.mxset);
	config_unref(c->cfg);
	arena_free(&c->ar);
	struct engine *e = c->e;
	if (c->waiting)
		e->m.checks_waiting--;
	if (e->nspare < sizeof(e->spare) / sizeof(e->spare[0]))
		e->spare[e->nspare++] = c;
	else
		free(c);
}

void check_finish(struct check *c)
{
	const char *detail = "";
	if (c->finished)
		return;
	c->finished = true;
	check_detach(c);
	const char *note = NULL;
	enum verdict v = rules_decide(&c->ev, &c->ar, &detail, &note);
	if (note)
		add_note(c, note);
	result_emit(c, v, detail, rules_reason(&c->ev, &c->ar, v, detail));
	/* freed by the outermost leave() */
}

static void finish_skipped(struct check *c, const char *why)
{
	c->finished = true;
	result_emit(c, V_SKIPPED, why, why);
	check_free(c);
}

struct check *check_start(struct engine *e, const struct check_request *req, check_cb cb, void *arg,
                          bool cache_only, bool *would_block, char *prepared)
{
	*would_block = false;
	const struct config *cfg = e->cfg;
	struct check *c = e->nspare ? e->spare[--e->nspare] : malloc(sizeof(*c));

	if (!c) {
		result_emit_oom(req, cb, arg);
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

	/* the recipient's policy, when the configuration has any: a sender check's from the
	 * recipient it is made for (its check_sender is one of the gates), a recipient check's
	 * from its own domain once the gates have found it */
	if (cfg->rpolicies && req->role == ROLE_SENDER)
		c->pol = gates_sender_policy(cfg, req->policy_recipient, req->policy_recipient_len);
	if (req->prepared_domain && req->prepared_domain[0]) {
		copy_name(c->domain, sizeof(c->domain), req->prepared_domain);
	} else {
		const char *why = gates_skip_reason(e, &c->ar, req, c->pol, c->domain);
		if (why) {
			finish_skipped(c, why);
			return NULL;
		}
	}
	if (cfg->rpolicies && req->role == ROLE_RECIPIENT)
		c->pol = rpolicies_lookup(cfg->rpolicies, c->domain);
	copy_name(c->cur, sizeof(c->cur), c->domain);
	c->visited[0] = c->domain;
	c->nvisited = 1;
	c->deadline = c->start + cfg->timeout_ms;
	if (req->deadline && req->deadline < c->deadline)
		c->deadline = req->deadline > c->start ? req->deadline : c->start;
	c->ev.domain = c->domain;
	c->ev.cur = c->cur;
	c->ev.budget_ms = (unsigned)(c->deadline - c->start);
	enter(c);
	inflight_lookup(c, DOMAIN_CHAIN, 0, c->domain, DNS_T_MX);
	*would_block = c->would_block;
	if (c->would_block && prepared)
		copy_name(prepared, DOMAIN_MAX + 1, c->domain);
	/* The deadline matters only to a check that has to wait: one answered from the cache
	 * has finished by now and never touches the timer heap. */
	if (!c->finished) {
		c->timer = evloop_timer(e->loop, c->deadline, on_deadline, c);
		if (!c->timer) {
			c->ev.chain_fail = "out of memory";
			check_finish(c);
		} else {
			c->waiting = true;
			e->m.checks_waiting++;
		}
	}
	if (leave(c))
		return NULL;
	return c;
}

void check_cancel(struct check *c)
{
	if (!c || c->finished)
		return;
	c->finished = true;
	check_detach(c);
	if (c->busy == 0)
		check_free(c);
}
