/*
 * engine_int.h - what the files of the engine share (not for front-ends: engine.h is the
 * interface).  The engine is: the in-flight query table (inflight.c), the lookup state
 * machine of one check (check.c), the verdict rules over the evidence it collects (rules.c,
 * evidence.h), the outage guard (outage.c), the result handed to the front-end (result.c),
 * and the engine object itself (engine.c).
 */
#ifndef MXSANE_ENGINE_INT_H
#define MXSANE_ENGINE_INT_H

#include "arena.h"
#include "cache.h"
#include "dnsmsg.h"
#include "engine.h"
#include "evidence.h"
#include "metrics.h"
#include "outage.h"
#include "resolver.h"

/* MX hosts whose lookups run at once, most preferred first; the next starts when one ends.
 * Every host of the set is looked at (within the check's deadline): the window only bounds
 * the burst of queries a domain with hundreds of MX records can cause. */
#define TARGET_WINDOW 32
#define INFLIGHT_BKTS 1024
#define DOMAIN_CHAIN  (-1) /* tidx of the lookups for the domain itself (MX, CNAME chain) */

#include <string.h>

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
	uint64_t sent; /* evloop time the query was asked (round-trip histogram) */
	uint16_t qtype;
	uint32_t hash;
	char name[DOMAIN_MAX + 2];
};

struct check {
	struct engine *e;
	struct config *cfg;
	check_cb cb;
	void *arg;
	enum role role;
	const struct rpolicy *pol; /* recipient_policies_file entry (in cfg), or NULL */
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
	bool waiting;     /* counted in the engine's checks_waiting */

	char domain[DOMAIN_MAX + 1];
	char cur[DOMAIN_MAX + 2]; /* MX chain: name asked now */
	/* what DNS said so far, as the rules read it (evidence.h): the chain at the domain
	 * (hops, chain_fail, chain_nxdomain), the MX set (mxset, implicit), the targets (t, nt);
	 * ev.domain and ev.cur point at the arrays above */
	struct evidence ev;
	unsigned nvisited;
	const char *visited[DNS_MAX_CNAME + 1]; /* names of the chain (arena) */

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

/* What a DNS query came to, as the metrics count it (engine_metrics.c names them). */
enum dns_outcome {
	DNSO_NOERROR = 0, /* an answer, a proved empty answer excepted (also a referral) */
	DNSO_NXDOMAIN,
	DNSO_NODATA,
	DNSO_SERVFAIL, /* also: every server answered SERVFAIL or REFUSED, or was unreachable
	                * (c-ares 1.18 reports these alike) */
	DNSO_REFUSED,
	DNSO_TIMEOUT,
	DNSO_MALFORMED,
	DNSO_ERROR, /* local: out of memory or of descriptors, shutting down */
	DNSO__COUNT
};

/* The engine's metrics: plain counters, written only in the engine's thread (or under the
 * lock a front-end holds for engine_check_cached), read at scrape time in the same way. */
struct engine_counters {
	/* [verdict][action done][role][what monitor mode or the outage guard softened:
	 * 0 nothing, else 1 + the configured action] */
	uint64_t decisions[V__COUNT][ACT__COUNT][2][ACT__COUNT + 1];
	struct hist duration;
	uint64_t cache_misses;
	uint64_t dns[RESOLVER_QTYPES][DNSO__COUNT];
	uint64_t truncated[RESOLVER_QTYPES]; /* counted by the resolvers */
	struct hist dns_rtt;
	size_t checks_waiting; /* checks waiting for DNS now */
};

struct engine {
	struct evloop *loop;
	struct config *cfg;
	struct resolver *res;
	struct engine_dns dns; /* how queries are asked: e->res, or a test's script */
	bool scripted;         /* dns is a test's: no resolver, no probe */
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
	/* DNS outage guard */
	struct outage_guard guard;
	struct engine_counters m;
};

/* Copy a NUL-terminated name into a fixed buffer, cut to fit (snprintf "%s" without the
 * format machinery: several times per check). */
static inline void copy_name(char *dst, size_t size, const char *src)
{
	size_t l = strnlen(src, size - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* inflight.c: ask for name/qtype on behalf of check c (its target tidx, family fam, or
 * DOMAIN_CHAIN): from the cache, or by joining or starting an in-flight query.  The answer
 * reaches check_deliver(), maybe before this returns. */
void inflight_lookup(struct check *c, int tidx, int fam, const char *name, uint16_t qtype);
/* A check stops waiting: its waits are left to the in-flight entries, which free them. */
void inflight_detach(struct check *c);
/* Shutting down: end every query still in flight as the resolver's destruction does
 * (ARES_EDESTRUCTION), so the checks waiting for them finish with dns_error.  A test's DNS
 * (engine_new_dns) has no resolver whose destruction would do it. */
void inflight_abort_all(struct engine *e);

/* check.c */
void check_deliver(struct check *c, int tidx, int fam, struct rrset *rs, bool cached);
void check_finish(struct check *c);
void check_detach(struct check *c);
void check_free(struct check *c);
/* With cache_only (engine_check_cached), a check that would need DNS ends silently with
 * *would_block set, and its domain in prepared (if given; engine.h). */
struct check *check_start(struct engine *e, const struct check_request *req, check_cb cb, void *arg,
                          bool cache_only, bool *would_block, char *prepared);

/* gates.c: NULL when the check goes on (domain, DOMAIN_MAX + 1 bytes, holds the domain to
 * check), else why it is skipped (in ar). */
const char *gates_skip_reason(struct engine *e, struct arena *ar, const struct check_request *req,
                              const struct rpolicy *pol, char *domain);
/* gates.c: the recipient_policies_file entry for a sender check made for the recipient
 * address given (NULL: none, or no file). */
const struct rpolicy *gates_sender_policy(const struct config *cfg, const char *rcpt, size_t len);
void check_cancel(struct check *c);

/* result.c: build the result of a finished check and hand it to the front-end's callback. */
void result_emit(struct check *c, enum verdict v, const char *detail, const char *reason);
/* The result for a check that could not even start (out of memory): dns_error, tempfail. */
void result_emit_oom(const struct check_request *req, check_cb cb, void *arg);
/* An address from the network as replies and texts show it (text_address), in the arena. */
const char *result_printable(struct arena *ar, const char *s, size_t len);

#endif
