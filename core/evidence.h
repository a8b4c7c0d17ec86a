/*
 * evidence.h - what DNS said about one domain, as the lookup state machine (check.c) collects
 * it, and the verdict rules over it (rules.c).
 *
 * The rules are pure functions: they read the evidence (and the record sets it holds), write
 * texts into the caller's arena, and do no I/O and read no clock.  A unit test can build
 * evidence by hand and judge it; the engine builds it from answers and judges it the same way.
 */
#ifndef MXSANE_EVIDENCE_H
#define MXSANE_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "dnsmsg.h"
#include "verdict.h"

#define FAM_A    0
#define FAM_AAAA 1

/* The address lookup of one MX host in one family (A or AAAA). */
struct famlook {
	unsigned hops;
	bool started, pending, alias, temp, done;
	bool usable;         /* final holds a non-bogus address: computed once when final is set */
	struct rrset *final; /* last answer (OK/NODATA/NXDOMAIN), or NULL */
	const char *fail;    /* temporary failure reason (arena) */
};

/* One MX host (or the domain itself, for the implicit MX). */
struct target {
	uint16_t pref;
	const char *host; /* in the MX set's data, or the domain for the implicit MX */
	bool skip;        /* not looked up (IP literal, invalid) */
	bool active;      /* counted in the check's window of hosts being looked up */
	const char *problem_static;
	struct famlook f[2];
};

/* Everything the verdict rules look at. */
struct evidence {
	const char *domain;     /* the domain checked (A-label) */
	const char *cur;        /* after the CNAMEs at the domain (== domain without one) */
	unsigned hops;          /* CNAME hops at the domain */
	const char *chain_fail; /* the MX lookup of the domain failed temporarily: why */
	bool chain_nxdomain;    /* the domain (or its alias target) does not exist */
	struct rrset *mxset;    /* the final MX answer (OK or NODATA), or NULL */
	bool implicit;          /* no MX: the one target is the domain itself */
	struct target *t;       /* MX hosts in preference order; NULL for a null MX */
	size_t nt;
	unsigned budget_ms; /* the check's budget, for "within N ms" texts */
};

/* Is the address (4 or 16 octets, by qtype) in bogus_networks? */
bool rules_addr_bogus(const struct config *cfg, uint16_t qtype, const uint8_t *a);

/* Set the final answer of a family (taking a reference) and judge its addresses.  With
 * memo, the judgment is kept with the record set (cache.h) and reused: only when cfg is
 * the configuration whose bogus_networks the cache's judgments belong to. */
void rules_family_final(const struct config *cfg, bool memo, struct famlook *fl, struct rrset *rs);

/* A target is usable if one of its final answers holds a non-bogus address, judged A first
 * (a usable A, or an NXDOMAIN for A, settles it: RFC 8020, nothing exists at the name),
 * whatever AAAA holds; mxsane-check, which asks both at once, judges them in the same order.
 * *alias: every family that makes it usable was reached through a CNAME.  (Inline: the
 * lookup state machine asks after every answer.) */
static inline bool rules_target_usable(const struct target *t, bool *alias)
{
	bool a = t->f[FAM_A].usable;
	if (a && !t->f[FAM_A].alias) {
		*alias = false;
		return true;
	}
	const struct rrset *af = t->f[FAM_A].final;
	bool aaaa = t->f[FAM_AAAA].usable && !(af && rrset_status(af) == DNSR_NXDOMAIN);
	*alias = false;
	if (!a && !aaaa)
		return false;
	*alias = !(aaaa && !t->f[FAM_AAAA].alias);
	return true;
}
/* A lookup that could still have made the host usable failed or has not ended. */
bool rules_target_temp(const struct target *t);
/* Address records of the host's final answers (bogus ones included). */
size_t rules_target_naddr(const struct target *t);
/* Plain words for what is wrong with the host, or NULL if nothing is known against it. */
const char *rules_target_problem(struct arena *ar, const struct target *t);

/*
 * The verdict, with a detail text ("" for ok), and maybe a remark for the result's notes
 * (*note, else left alone).  "A temporary failure beats a permanent negative": when nothing
 * usable was found and a lookup that could have produced a usable host failed temporarily,
 * the verdict is dns_error; a 5xx verdict needs DNS proof.
 */
enum verdict rules_decide(const struct evidence *ev, struct arena *ar, const char **detail,
                          const char **note);
/* The plain-words reason of a verdict: "example.net does not accept mail (null MX)". */
const char *rules_reason(const struct evidence *ev, struct arena *ar, enum verdict v,
                         const char *detail);

#endif
