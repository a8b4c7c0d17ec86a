/*
 * dnswire.h - DNS reply messages built by hand (RFC 1035 wire format), for unit tests: a
 * header with chosen rcode and flags, the question, and records (MX, CNAME, A, AAAA, SOA, NS)
 * written one after the other.  Names are written without compression.  A message holds at
 * most sizeof(struct msg.b) octets; the builders do not check it (tests stay well inside).
 */
#ifndef MXSANE_TEST_DNSWIRE_H
#define MXSANE_TEST_DNSWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dnsmsg.h"

struct msg {
	uint8_t b[16384];
	size_t n;
};

/* Header flags besides QR and RD: AA and TC go into the third octet, RA into the fourth. */
#define F_AA 0x04
#define F_TC 0x02
#define F_RA 0x80

static inline void put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static inline void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static inline void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* "a.example" (a trailing dot or none); "" is the root. */
static inline void putname(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		put8(m, (unsigned)l);
		memcpy(m->b + m->n, name, l);
		m->n += l;
		name += l;
		if (*name == '.')
			name++;
	}
	put8(m, 0);
}

static inline void header_flags(struct msg *m, unsigned rcode, unsigned an, unsigned ns,
                                unsigned flags)
{
	m->n = 0;
	put16(m, 0x1234);
	put8(m, 0x81 | (flags & (F_AA | F_TC))); /* QR, RD */
	put8(m, (flags & F_RA) | rcode);
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, 0);
}

/* A reply from a recursive resolver (RA set, AA clear) */
static inline void header(struct msg *m, unsigned rcode, unsigned an, unsigned ns)
{
	header_flags(m, rcode, an, ns, F_RA);
}

static inline void question(struct msg *m, const char *name, unsigned type)
{
	putname(m, name);
	put16(m, type);
	put16(m, 1);
}

static inline void rr_head(struct msg *m, const char *owner, unsigned type, uint32_t ttl)
{
	putname(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
}

/* RDLENGTH is written once the data is: rr_rdata_begin() returns where it goes. */
static inline size_t rr_rdata_begin(struct msg *m)
{
	size_t lenpos = m->n;
	put16(m, 0);
	return lenpos;
}

static inline void rr_rdata_end(struct msg *m, size_t lenpos)
{
	size_t len = m->n - lenpos - 2;
	m->b[lenpos] = (uint8_t)(len >> 8);
	m->b[lenpos + 1] = (uint8_t)(len & 0xff);
}

static inline void rr_mx(struct msg *m, const char *owner, uint32_t ttl, unsigned pref,
                         const char *host)
{
	rr_head(m, owner, DNS_T_MX, ttl);
	size_t lenpos = rr_rdata_begin(m);
	put16(m, pref);
	putname(m, host);
	rr_rdata_end(m, lenpos);
}

static inline void rr_cname(struct msg *m, const char *owner, uint32_t ttl, const char *target)
{
	rr_head(m, owner, DNS_T_CNAME, ttl);
	size_t lenpos = rr_rdata_begin(m);
	putname(m, target);
	rr_rdata_end(m, lenpos);
}

static inline void rr_a(struct msg *m, const char *owner, uint32_t ttl, const uint8_t ip[4])
{
	rr_head(m, owner, DNS_T_A, ttl);
	put16(m, 4);
	memcpy(m->b + m->n, ip, 4);
	m->n += 4;
}

static inline void rr_aaaa(struct msg *m, const char *owner, uint32_t ttl, const uint8_t ip[16])
{
	rr_head(m, owner, DNS_T_AAAA, ttl);
	put16(m, 16);
	memcpy(m->b + m->n, ip, 16);
	m->n += 16;
}

/* The negative TTL of a reply with this SOA is min(ttl, minimum) (RFC 2308 3). */
static inline void rr_soa(struct msg *m, const char *owner, uint32_t ttl, uint32_t minimum)
{
	rr_head(m, owner, DNS_T_SOA, ttl);
	size_t lenpos = rr_rdata_begin(m);
	putname(m, "ns.example");
	putname(m, "hostmaster.example");
	put32(m, 1);
	put32(m, 3600);
	put32(m, 600);
	put32(m, 86400);
	put32(m, minimum);
	rr_rdata_end(m, lenpos);
}

static inline void rr_ns(struct msg *m, const char *owner, const char *host)
{
	rr_head(m, owner, DNS_T_NS, 3600);
	size_t lenpos = rr_rdata_begin(m);
	putname(m, host);
	rr_rdata_end(m, lenpos);
}

#endif
