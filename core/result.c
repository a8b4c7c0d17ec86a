/*
 * result.c - the result of a finished check as the front-ends get it (engine.h's struct
 * check_result): the action (of the recipient's policy when one applies) after monitor mode
 * and the outage guard, the reply from
 * verdict.h's table with its bounded text, the warning header, the TTL, and the MX hosts
 * with what is wrong with each.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "engine_int.h"
#include "evloop.h"
#include "text.h"

/* An address from the network as a reply shows it (text.h), in the arena. */
const char *result_printable(struct arena *ar, const char *s, size_t len)
{
	char *p = arena_alloc(ar, TEXT_ADDRESS_MAX + 4);
	if (!p)
		return "";
	text_address(p, TEXT_ADDRESS_MAX + 4, s, len);
	return p;
}

void result_emit(struct check *c, enum verdict v, const char *detail, const char *reason)
{
	struct engine *e = c->e;
	const struct config *cfg = c->cfg;
	struct check_result r;
	struct mx_info *mx = NULL;

	memset(&r, 0, sizeof(r));
	r.role = c->role;
	r.verdict = v;
	/* a recipient policy's entry is complete (rpolicy.h): it replaces actions and mode */
	const struct rpolicy *pol = c->pol;
	r.configured_action = pol ? (enum action)pol->actions[v] : cfg->actions[v];
	r.action = r.configured_action;
	if (pol)
		r.policy = rpolicies_name(cfg->rpolicies, pol);
	e->st.checks++;
	e->st.cache_hits += c->hits;
	if (v != V_SKIPPED)
		outage_record(&e->guard, e->cfg, v == V_DNS_ERROR);
	if (v == V_DNS_ERROR) {
		e->st.dns_errors++;
		if (e->guard.outage && cfg->on_dns_outage == OUTAGE_ACCEPT && r.action > ACT_WARN) {
			r.action = ACT_WARN;
			r.outage = true;
		}
	}
	if ((pol ? (enum mode)pol->mode : cfg->mode) == MODE_MONITOR && r.action > ACT_WARN) {
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
		r.address = c->raw ? result_printable(&c->ar, c->raw, c->rawlen) : "";
		r.text = r.address[0] ? arena_concat(&c->ar, "<", r.address, ">: ", reason, NULL)
		                      : arena_strdup(&c->ar, reason);
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
	uint64_t took = evloop_now(e->loop) - c->start;
	r.ms = (double)took;
	e->m.decisions[v][r.action][c->role == ROLE_RECIPIENT]
	              [r.monitor || r.outage ? 1 + r.configured_action : 0]++;
	hist_observe_ms(&e->m.duration, took);
	r.implicit_mx = c->ev.implicit;
	r.canonical = strcmp(c->cur, c->domain) != 0 && c->cur[0] ? c->cur : NULL;

	if (c->ev.nt) {
		mx = arena_alloc(&c->ar, sizeof(*mx) * c->ev.nt);
		for (size_t i = 0; mx && i < c->ev.nt; i++) {
			struct target *t = &c->ev.t[i];
			struct mx_info *m = &mx[i];
			size_t n = c->want_addresses ? rules_target_naddr(t) : 0, k = 0;
			const char **addrs =
			        n ? arena_alloc(&c->ar, sizeof(char *) * (n + 1)) : NULL;
			bool *bog = n ? arena_alloc(&c->ar, sizeof(bool) * (n + 1)) : NULL;
			uint32_t *attl = n ? arena_alloc(&c->ar, sizeof(uint32_t) * (n + 1)) : NULL;
			/* the records' own TTLs: for mxsane-check (the daemons do not show them) */
			if (c->want_addresses && c->ev.mxset && !c->ev.implicit)
				m->ttl = rrset_ttl_left(c->ev.mxset, evloop_now(e->loop));
			m->pref = t->pref;
			m->host = t->host;
			m->usable = rules_target_usable(t, &m->alias);
			m->alias = t->f[0].alias || t->f[1].alias;
			m->temp = rules_target_temp(t);
			m->problem = rules_target_problem(&c->ar, t);
			for (int f = 0; f < 2 && addrs && bog && attl; f++) {
				struct rrset *s = t->f[f].final;
				if (!s || rrset_status(s) != DNSR_OK)
					continue;
				for (size_t j = 0; j < rrset_count(s); j++) {
					char txt[INET6_ADDRSTRLEN];
					int af = rrset_type(s) == DNS_T_A ? AF_INET : AF_INET6;
					inet_ntop(af, rrset_addr(s, j), txt, sizeof(txt));
					bog[k] = rules_addr_bogus(cfg, rrset_type(s),
					                          rrset_addr(s, j));
					attl[k] = rrset_ttl_left(s, evloop_now(e->loop));
					addrs[k++] = arena_strdup(&c->ar, txt);
				}
			}
			m->naddr = addrs && bog && attl ? k : 0;
			m->addrs = addrs;
			m->addr_bogus = bog;
			m->addr_ttl = attl;
		}
		r.mx = mx;
		r.nmx = mx ? c->ev.nt : 0;
	} else if (c->ev.mxset && v == V_NULL_MX) {
		/* show the null MX record itself */
		size_t n = rrset_count(c->ev.mxset), i = 0;
		const char *cur = NULL;
		struct mx_rec m = {0};
		mx = arena_alloc(&c->ar, sizeof(*mx) * (n ? n : 1));
		while (mx && i < n && rrset_mx_next(c->ev.mxset, &cur, &m)) {
			mx[i].host = m.host;
			mx[i].pref = m.pref;
			mx[i].ttl = rrset_ttl_left(c->ev.mxset, evloop_now(e->loop));
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

void result_emit_oom(const struct check_request *req, check_cb cb, void *arg)
{
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
}
