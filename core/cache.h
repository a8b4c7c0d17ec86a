/*
 * cache.h - the record-set cache: DNS answers keyed by (name, type), kept for their TTL.
 *
 * Caching record sets rather than verdicts lets the many domains that share a provider's MX
 * hosts share those hosts' address lookups.  An entry ("rrset") is one compact allocation
 * whose DNS data never changes; it is reference counted so a check in progress keeps the
 * record sets it uses even if the cache evicts them meanwhile.  The one mutable part is a
 * memo the engine may attach: its judgment of an address set (usable or not under the
 * configured bogus networks), so a warm check does not match addresses again, and for an
 * MX set whether its first host was found usable, so a warm check need not look it up.
 * Bounded by max_entries; eviction is least recently used, approximately (second chance:
 * oldest first, sparing once an entry looked up since it was last considered), so that a
 * hit writes only the entry itself.
 * The cache never reads the clock: every call is handed `now` (monotonic milliseconds).
 * Not thread-safe: one cache belongs to one engine, driven by one thread.
 * Hash keys are randomised per process (SipHash) so hostile names cannot flood a bucket.
 */
#ifndef MXSANE_CACHE_H
#define MXSANE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsmsg.h"

struct rrset;
struct cache;

/* Build a record set from a parsed reply (or from a failure: r may be NULL, then status
 * is DNSR_TEMPFAIL with reason `why`), valid for ttl seconds from now.  The result has one
 * reference, owned by the caller.  NULL on out of memory. */
struct rrset *rrset_new(const char *name, uint16_t qtype, const struct dns_reply *r,
                        const char *why, uint32_t ttl, uint64_t now);
struct rrset *rrset_ref(struct rrset *s);
void rrset_unref(struct rrset *s); /* accepts NULL */

const char *rrset_name(const struct rrset *s);
uint16_t rrset_type(const struct rrset *s);
enum dns_status rrset_status(const struct rrset *s);
/* CNAME target (status DNSR_CNAME) or, for OK answers reached through CNAMEs, the final
 * owner name; NULL if no alias was involved. */
const char *rrset_target(const struct rrset *s);
bool rrset_is_alias(const struct rrset *s);
/* CNAME records followed inside the reply this set came from (0..DNS_MAX_CNAME). */
unsigned rrset_cnames(const struct rrset *s);
const char *rrset_why(const struct rrset *s); /* reason for TEMPFAIL/MALFORMED, or "" */
size_t rrset_count(const struct rrset *s);
/* The reply held more records than were kept (DNS_MAX_RECORDS): the set is incomplete. */
bool rrset_cut(const struct rrset *s);
/*
 * MX records come in preference order (stable: equal preferences keep the order of the
 * answer), with what the engine needs to know of each exchange, judged once when the set
 * was built.
 */
#define MXF_INVALID 0x01 /* odd octets in the name (written \DDD) */
#define MXF_IPLIT   0x02 /* an IP address written as a host name */
#define MXF_DUP     0x04 /* the same exchange as a more preferred record */
struct mx_rec {
	uint16_t pref;
	uint8_t flags;    /* MXF_* */
	const char *host; /* "" for the root (null MX); points into the set */
	size_t hostlen;
};
/* The record after *cursor (NULL: the first); false after the last.  Walk with the same
 * cursor and rec: a walk over all records is linear. */
bool rrset_mx_next(const struct rrset *s, const char **cursor, struct mx_rec *rec);
/* i-th address, 4 bytes (A) or 16 bytes (AAAA) */
const uint8_t *rrset_addr(const struct rrset *s, size_t i);
/* The engine's memo for an A/AAAA set: false if none, else *usable.  Set once judged;
 * cache_forget_judgments() drops every memo of the cache (the bogus networks changed). */
bool rrset_judgment(const struct rrset *s, bool *usable);
void rrset_set_judgment(struct rrset *s, bool usable);
/* The engine's memo for an MX set: until this time (monotonic ms), the first of its
 * exchanges that is looked up at all is known to have a usable address without an alias
 * (an earlier check found it so in the cache, with answers valid until then).  0: none.
 * cache_forget_judgments() drops it as well. */
uint64_t rrset_mx_memo(const struct rrset *s);
void rrset_set_mx_memo(struct rrset *s, uint64_t until);
/* When the set expires (monotonic ms). */
uint64_t rrset_expires(const struct rrset *s);
/* Seconds left to live at `now` (0 when expired), rounded up: of a set, or until a
 * monotonic time in ms (a memo's). */
uint32_t rrset_ttl_left(const struct rrset *s, uint64_t now);
uint32_t cache_ttl_left(uint64_t expires, uint64_t now);
/* Size of the allocation, for memory accounting. */
size_t rrset_size(const struct rrset *s);

struct cache *cache_new(uint32_t max_entries);
void cache_free(struct cache *c); /* accepts NULL; entries still referenced elsewhere live on */
void cache_set_limit(struct cache *c, uint32_t max_entries); /* evicts down to the new limit */

/* Look up a live entry; returns a NEW reference (caller unrefs) or NULL if absent or expired
 * (an expired entry is dropped).  A hit marks the entry used (spared by the next eviction). */
struct rrset *cache_get(struct cache *c, const char *name, uint16_t qtype, uint64_t now);

/* Insert s (the cache takes its own reference) until it expires, replacing any entry with
 * the same key and evicting the least recently used entries over the limit.  An rrset
 * already expired at now, or max_entries 0: nothing is stored. */
void cache_put(struct cache *c, struct rrset *s, uint64_t now);

size_t cache_entries(const struct cache *c);
/* Entries evicted so far to stay within max_entries (expired or cleared ones not counted). */
uint64_t cache_evictions(const struct cache *c);
size_t cache_bytes(const struct cache *c); /* sum of rrset_size of stored entries */
void cache_clear(struct cache *c);
void cache_forget_judgments(struct cache *c); /* accepts NULL */

#endif
