/*
 * dnsmsg.h - a bounded walker for raw DNS replies (RFC 1035 wire format).
 *
 * c-ares 1.18's ares_parse_*_reply functions drop TTLs and negative-answer data, so mxsane
 * reads the reply itself.  Replies come from the network and are hostile: every offset is
 * checked against the message length, compression pointers must point backwards and are
 * limited in number, names are limited to 255 octets, and any inconsistency gives
 * DNSR_MALFORMED rather than a guess.  Pure functions, no I/O, safe from any thread.
 */
#ifndef MXSANE_DNSMSG_H
#define MXSANE_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define DNS_T_A     1
#define DNS_T_CNAME 5
#define DNS_T_NS    2
#define DNS_T_SOA   6
#define DNS_T_MX    15
#define DNS_T_AAAA  28

#define DNS_MAX_RECORDS 256 /* records of the asked type kept from one reply; more are dropped */
#define DNS_MAX_CNAME   8   /* CNAME hops followed, within a reply and across replies */

enum dns_status {
	DNSR_OK = 0,    /* records of the asked type found (possibly after CNAMEs) */
	DNSR_NODATA,    /* the (final) name exists, no records of that type (proved: SOA, or AA) */
	DNSR_NXDOMAIN,  /* the (final) name does not exist (from an AA or RA server) */
	DNSR_CNAME,     /* the answer ends at an alias whose target must be asked separately */
	DNSR_TEMPFAIL,  /* SERVFAIL, REFUSED, timeout, referral, unproved empty answer: later */
	DNSR_MALFORMED, /* reply could not be trusted (bad format, wrong question, loop) */
};

struct dns_mx {
	uint16_t pref;
	char host[DOMAIN_MAX + 2]; /* lower case, no trailing dot; "" is the root (null MX) */
	bool host_invalid;         /* the exchange is not a usable host name (odd octets) */
};

struct dns_reply {
	enum dns_status status;
	int rcode;
	uint32_t ttl;               /* positive: min TTL of used CNAME and data RRs;
	                             * negative: min(SOA TTL, SOA MINIMUM, CNAME TTLs) (RFC 2308) */
	bool has_ttl;               /* false for a negative answer without SOA, and for failures */
	unsigned cnames;            /* CNAME hops taken inside this reply */
	char canon[DOMAIN_MAX + 2]; /* final owner name (== question if no CNAME) */
	size_t n;                   /* records of the asked type kept (<= DNS_MAX_RECORDS) */
	size_t total;               /* records of the asked type in the reply (n or more) */
	struct dns_mx *mx;          /* qtype MX: n entries, or NULL */
	uint8_t (*addr)[16];        /* qtype A (first 4 bytes used) / AAAA: n entries */
	char why[96];               /* for MALFORMED/TEMPFAIL: plain words */
};

/*
 * Parse reply buf[0..len) to the question (qname, qtype).  qname is compared
 * case-insensitively and without trailing dot.  Fills *out; the caller frees with
 * dns_reply_clear().  Returns out->status.  Never fails to initialise *out.
 */
enum dns_status dns_parse_reply(const uint8_t *buf, size_t len, const char *qname, uint16_t qtype,
                                struct dns_reply *out);
void dns_reply_clear(struct dns_reply *r);

/* Is name (lower case, no trailing dot) equal to zone or below it?  "" is the root. */
bool dns_name_within(const char *name, const char *zone);

const char *dns_status_name(enum dns_status s);
const char *dns_type_name(uint16_t t);

#endif
