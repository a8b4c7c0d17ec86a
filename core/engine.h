/*
 * engine.h - the decision engine: from an address and a role to a verdict, an action and
 * the SMTP reply, with the evidence behind it.
 *
 * Flow of one check: parse the address (addr.h), apply the skip rules, then ask DNS (through
 * the record-set cache and one set of in-flight queries shared by all checks): the MX set of
 * the domain (following a CNAME at the domain, at most 8 hops), then the addresses of every
 * MX host, most preferred first, 32 hosts at a time (or of the domain itself when it has no
 * MX: the implicit MX).  A is asked first, AAAA when A gives nothing usable or has not
 * answered after a quarter of the budget; mxsane-check (engine_set_wait_all) asks both.
 * The verdict rules (RFC 5321 5.1, RFC 7505, RFC 2181 10.3) are applied in one place,
 * rules_decide() in rules.c (pure functions over the evidence, evidence.h); the action
 * comes from the configuration, the reply from the table in verdict.h, and
 * `mode = "monitor"` turns reject/tempfail into warn.  With recipient_policies_file, the
 * entry of the recipient's domain (for a sender check: of the recipient it is made for,
 * check_request.policy_recipient) replaces checks.sender, mode and actions (rpolicy.h).
 *
 * Threading: an engine belongs to one evloop and its thread.  Programs with many threads
 * (the milter) run the engine in one thread and hand requests over (milter/engine_thread.h).
 * Time: the engine reads evloop_now() of its loop; it never reads the clock itself.
 */
#ifndef MXSANE_ENGINE_H
#define MXSANE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "resolver.h"
#include "verdict.h"

struct evloop;
struct engine;
struct check;

struct check_request {
	enum role role;
	const char *address;     /* as received: "<a@b>", "a@b", "<>", ""; or NULL with domain */
	size_t address_len;      /* bytes of address (it need not be NUL-terminated) */
	const char *domain;      /* alternatively a bare domain (mxsane-check); NULL otherwise */
	const char *client_addr; /* textual client IP or NULL: skip.clients */
	bool authenticated;      /* SASL-authenticated session: sender checks are skipped */
	bool local_submission;   /* mail submitted on this machine (sendmail(1), not SMTP over
	                          * TCP): sender checks are skipped unless checks.local_sender */
	bool want_addresses;     /* fill mx_info.addrs (mxsane-check); the daemons log only the
	                          * MX hosts and skip the cost of the address texts */
	uint64_t deadline;       /* absolute evloop time (ms) by which the verdict is due, or 0:
	                          * now + resolver.timeout_ms.  The earlier of the two applies, so
	                          * several checks of one request can share one budget. */
	/* Or: the address's domain as engine_check_cached() left it in its `prepared` buffer
	 * (parsed, normalised, the skip and check gates passed).  engine_check() then goes
	 * straight to DNS: a cache miss is parsed and judged once. */
	const char *prepared_domain;
	/* A sender check: the recipient its verdict is applied for, as received ("<a@b>",
	 * "a@b"; need not be NUL-terminated), or NULL.  With recipient_policies_file set, the
	 * entry of that recipient's domain decides whether the sender is checked and how its
	 * verdict is acted on; without one (or without a recipient) the main configuration
	 * does.  A recipient check uses its own domain's entry. */
	const char *policy_recipient;
	size_t policy_recipient_len;
};

struct mx_info {
	uint16_t pref;
	const char *host;         /* "" for a "." (null MX) entry */
	bool usable;              /* has at least one non-bogus address */
	bool alias;               /* the exchange is a CNAME */
	bool temp;                /* a lookup for it failed temporarily */
	size_t naddr;             /* 0 unless the request set want_addresses */
	const char *const *addrs; /* textual addresses, bogus ones included */
	const bool *addr_bogus;   /* per address */
	const uint32_t *addr_ttl; /* per address: seconds left of its A or AAAA set's TTL */
	uint32_t ttl;             /* seconds left of the MX set's TTL (RFC 2181 5.2: one TTL per
	                           * set); 0 for the implicit MX */
	const char *problem;      /* NULL if fine, else plain words */
};

/* Everything a front-end needs; valid only during the callback (copy what you keep). */
struct check_result {
	enum role role;
	enum verdict verdict;
	enum action action;            /* what to do: after monitor mode and outage guard */
	enum action configured_action; /* what the configuration says for the verdict */
	bool monitor;                  /* action was softened by mode = "monitor" */
	const char *policy;            /* the recipient_policies_file entry that applied
	                                * ("customer.example", ".customer.example"), or NULL:
	                                * the main configuration's actions and mode */
	bool outage;                   /* action was softened by the DNS outage guard */
	struct reply reply;            /* code/dsn for action tempfail/reject, else {0,NULL} */
	const char *address;           /* for a reply (code set): the address as given,
	                                * sanitised for printing; "" otherwise */
	const char *domain;            /* A-label domain checked ("" if none) */
	const char *reason;    /* plain words: "example.net does not accept mail (null MX)" */
	const char *text;      /* reply text, when reply.code is set (else ""):
	                        * "<bob@example.net>: example.net does not ...";
	                        * front-ends send it through reply_text()/reply_line()
	                        * (verdict.h), which bound and clean the line */
	const char *header;    /* X-MXSane header value for warn: "mx_cname example.net (...)" */
	uint32_t ttl;          /* seconds this verdict may be cached for */
	bool cached;           /* every record set came from the cache */
	double ms;             /* time taken */
	bool implicit_mx;      /* no MX: the domain's own addresses were used */
	const char *canonical; /* domain after CNAMEs at the domain, or NULL */
	size_t nmx;
	const struct mx_info *mx; /* sorted by preference; for implicit MX one entry */
	size_t nnotes;
	const char *const *notes; /* remarks: ignored null MX entry, capped target list, ... */
};

typedef void (*check_cb)(void *arg, const struct check_result *res);

struct engine_stats {
	uint64_t checks, cache_hits, queries_sent, dns_errors;
	size_t cache_entries, cache_bytes, inflight;
};

/* Create an engine bound to loop, taking a reference to cfg.  NULL with err on failure. */
struct engine *engine_new(struct evloop *loop, struct config *cfg, char *err, size_t errlen);

/* How the engine asks DNS: query() starts one question and calls cb once, later from the
 * loop (or at once on failure), as resolver_query() does; the engine uses its resolver.
 * engine_free() ends the questions still open itself: cb must not be called after it.
 * A unit test gives its own (scripted answers, delays, timeouts) with engine_new_dns(). */
struct engine_dns {
	void (*query)(void *ctx, const char *name, uint16_t qtype, resolver_cb cb, void *arg);
	void *ctx;
};
/* An engine whose every query goes to dns: no resolver, no recursion probe; the resolver
 * settings of cfg (and of later configurations) are not used. */
struct engine *engine_new_dns(struct evloop *loop, struct config *cfg, const struct engine_dns *dns,
                              char *err, size_t errlen);
/* Complete every pending check with dns_error ("shutting down"), then free.  NULL ok. */
void engine_free(struct engine *e);

/* Swap in a new configuration (takes a reference).  Checks already running finish with the
 * configuration they started with.  The cache is kept (it holds DNS data, not verdicts);
 * resolver settings that changed take effect for new queries.  0, or -1 with err (the old
 * configuration stays). */
int engine_reconfigure(struct engine *e, struct config *cfg, char *err, size_t errlen);
const struct config *engine_config(const struct engine *e);

/* When true (mxsane-check), a check waits for every target's lookups to collect full
 * evidence; otherwise it finishes as soon as the verdict can no longer change. */
void engine_set_wait_all(struct engine *e, bool on);

/*
 * Start a check.  cb runs exactly once, in the engine's thread: synchronously before this
 * returns (skips, answers fully in cache, errors) - then NULL is returned - or later from the
 * evloop, then a handle is returned that stays valid until cb runs or engine_cancel().
 * Never fails: out of memory gives a dns_error result (tempfail), never a rejection.
 */
struct check *engine_check(struct engine *e, const struct check_request *req, check_cb cb,
                           void *arg);
/*
 * The same check, but only if it needs no DNS query: true when cb has run (synchronously,
 * before this returns) with a result taken from the cache (or from the skip rules), false
 * when some record set is not cached - then cb has not run, nothing was asked and nothing
 * logged: call engine_check(), with req->prepared_domain = prepared when prepared (a buffer
 * of DOMAIN_MAX + 1 bytes, or NULL) holds a domain ("" when the check could not get so far).  For a
 * thread other than the engine's (milter/engine_thread.h), under the lock that the engine's thread
 * holds while its loop is not waiting.
 */
bool engine_check_cached(struct engine *e, const struct check_request *req, check_cb cb, void *arg,
                         char *prepared);

/* Abandon a pending check: cb will not run.  Lookups it started still fill the cache. */
void engine_cancel(struct engine *e, struct check *c);

void engine_get_stats(const struct engine *e, struct engine_stats *st);
/* Append the engine's metrics to x in the Prometheus text format (metrics.h):
 * mxsane_decisions_total, mxsane_decision_duration_seconds, mxsane_cache_*,
 * mxsane_dns_queries_total, mxsane_dns_truncated_total, mxsane_dns_round_trip_seconds,
 * mxsane_checks_in_flight, mxsane_dns_queries_in_flight, mxsane_outage_*.
 * Same thread rules as engine_check_cached. */
struct expo;
void engine_write_metrics(const struct engine *e, struct expo *x);
/* At start and at each reconfiguration the engine asks each resolver server whether it
 * recurses, and logs a warning for each that does not (or does not answer).  True while
 * those answers are awaited (mxsane-check waits for them before it exits). */
bool engine_probe_pending(const struct engine *e);
/* Drop all cached record sets (e.g. after a change of resolver). */
void engine_flush_cache(struct engine *e);

#endif
