/*
 * rules.c - the verdict rules (RFC 5321 5.1, RFC 7505, RFC 2181 10.3, RFC 8020), as pure
 * functions over the evidence a check collected (evidence.h): no I/O, no clock.
 */
#include "evidence.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsmsg.h"
#include "netlist.h"

bool rules_addr_bogus(const struct config *cfg, uint16_t qtype, const uint8_t *a)
{
	return netlist_match(&cfg->bogus_networks, qtype == DNS_T_A ? AF_INET : AF_INET6, a);
}

/* Judged once per record set while the bogus networks stay the same (the judgment is kept
 * with the cached set; a check still running with an older configuration judges for
 * itself). */
void rules_family_final(const struct config *cfg, bool memo, struct famlook *fl, struct rrset *rs)
{
	rrset_unref(fl->final);
	fl->final = rrset_ref(rs);
	fl->usable = false;
	if (rrset_status(rs) != DNSR_OK)
		return;
	if (memo && rrset_judgment(rs, &fl->usable))
		return;
	for (size_t i = 0; i < rrset_count(rs) && !fl->usable; i++)
		if (!rules_addr_bogus(cfg, rrset_type(rs), rrset_addr(rs, i)))
			fl->usable = true;
	if (memo)
		rrset_set_judgment(rs, fl->usable);
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

bool rules_target_temp(const struct target *t)
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

size_t rules_target_naddr(const struct target *t)
{
	size_t n = 0;
	for (int f = 0; f < 2; f++)
		if (t->f[f].final && rrset_status(t->f[f].final) == DNSR_OK)
			n += rrset_count(t->f[f].final);
	return n;
}

const char *rules_target_problem(struct arena *ar, const struct target *t)
{
	bool alias;
	if (t->problem_static)
		return t->problem_static;
	if (rules_target_usable(t, &alias))
		return alias ? "is an alias (CNAME), not a host name (RFC 2181 10.3)" : NULL;
	/* Not looked up, or still pending when the verdict was settled by a more preferred
	 * host: nothing is known against it.  (A check that ends on its deadline has turned
	 * every pending lookup into a temporary failure first.) */
	if ((!t->f[FAM_A].started && !t->f[FAM_AAAA].started) ||
	    ((t->f[FAM_A].pending || t->f[FAM_AAAA].pending) && !t->f[FAM_A].temp &&
	     !t->f[FAM_AAAA].temp))
		return NULL;
	if (rules_target_temp(t)) {
		const char *why = t->f[0].fail ? t->f[0].fail : t->f[1].fail;
		return arena_printf(ar, "temporary DNS failure: %s",
		                    why ? why : "lookup still pending");
	}
	if (!target_exists(t))
		return "does not exist (NXDOMAIN)";
	if (rules_target_naddr(t) == 0)
		return "has no address records";
	return "has only unusable addresses (loopback, private or reserved)";
}

/*
 * The rules, in one place.  "A temporary failure beats a permanent negative": when nothing
 * usable was found and any lookup that could have produced a usable host failed
 * temporarily, the verdict is dns_error.
 */
enum verdict rules_decide(const struct evidence *c, struct arena *ar, const char **detail,
                          const char **note)
{
	if (c->chain_fail) {
		*detail = c->chain_fail;
		return V_DNS_ERROR;
	}
	if (c->chain_nxdomain) {
		*detail = c->hops ? arena_printf(ar, "alias target %s does not exist", c->cur)
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
		const struct target *t = &c->t[i];
		bool alias;
		if (t->skip)
			continue;
		if (target_unlooked(t)) {
			unlooked++;
			continue;
		}
		if (rules_target_usable(t, &alias)) {
			if (alias) {
				any_alias = true;
				if (!alias_host)
					alias_host = t->host;
			} else {
				any_ok = true;
			}
		} else if (rules_target_temp(t)) {
			any_temp = true;
			if (!temp_why)
				temp_why = arena_printf(
				        ar, "%s: %s", t->host,
				        t->f[0].fail ? t->f[0].fail
				                     : (t->f[1].fail ? t->f[1].fail : "no answer"));
		}
	}
	if (any_ok) {
		*detail = "";
		return V_OK;
	}
	if (any_alias) {
		*detail = arena_printf(ar, "MX target %s is an alias", alias_host);
		return V_MX_CNAME;
	}
	if (any_temp) {
		*detail = temp_why;
		return V_DNS_ERROR;
	}
	if (unlooked) {
		/* The deadline came before every host was looked at: what is left might be
		 * usable.  Temporary: a later try finds the answers so far in the cache. */
		*detail = arena_printf(ar, "%zu of %zu MX hosts not looked at within %u ms",
		                       unlooked, c->nt, c->budget_ms);
		return V_DNS_ERROR;
	}
	if (c->mxset && rrset_cut(c->mxset)) {
		/* More MX records than one set keeps (DNS_MAX_RECORDS): those dropped were never
		 * looked at, and a sender may use them.  Nothing is proved, and asking again
		 * would not look further: accepted, with a note. */
		*note = (arena_printf(ar,
		                      "the MX set has more than %d records: none of the %zu "
		                      "looked at is usable, the rest were not looked at",
		                      DNS_MAX_RECORDS, c->nt));
		*detail = "";
		return V_OK;
	}
	if (c->implicit && rules_target_naddr(&c->t[0]) == 0) {
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
		const char *p = rules_target_problem(ar, &c->t[i]);
		int n = snprintf(buf + o, sizeof(buf) - o, "%s%s %s", i ? "; " : "",
		                 c->t[i].host[0] ? c->t[i].host : ".", p ? p : "?");
		if (n < 0 || (size_t)n >= sizeof(buf) - o)
			break;
		o += (size_t)n;
	}
	if (c->nt > 3 && o + 8 < sizeof(buf))
		snprintf(buf + o, sizeof(buf) - o, "; ...");
	*detail = arena_strdup(ar, buf);
	return V_BROKEN_MX;
}

const char *rules_reason(const struct evidence *c, struct arena *ar, enum verdict v,
                         const char *detail)
{
	const char *d = c->domain;
	switch (v) {
	case V_OK: return arena_concat(ar, d, " has a usable mail server", NULL);
	case V_NULL_MX: return arena_concat(ar, d, " does not accept mail (null MX)", NULL);
	case V_NXDOMAIN:
		return c->hops ? arena_printf(ar, "%s does not exist (%s)", d, detail)
		               : arena_printf(ar, "%s does not exist", d);
	case V_NO_MAIL_HOST: return arena_printf(ar, "%s has no mail server (%s)", d, detail);
	case V_BROKEN_MX: return arena_printf(ar, "%s has no usable mail server (%s)", d, detail);
	case V_MX_CNAME:
		return arena_printf(ar, "%s is reachable only through an MX alias (%s)", d, detail);
	case V_DNS_ERROR: return arena_printf(ar, "temporary DNS failure for %s (%s)", d, detail);
	case V_SKIPPED:
	case V__COUNT: break;
	}
	return detail;
}
