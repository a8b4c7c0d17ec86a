/*
 * dnsmsg.c - bounded walker for raw DNS replies: question check, CNAME chain, records of the
 * asked type with TTLs, and the negative TTL from the SOA in the authority section.
 */
#include "dnsmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_LEN      12
#define MAX_PTRS     64   /* compression pointers followed in one name */
#define MAX_RR_TOTAL 2048 /* RRs walked in one message */

struct rr {
	char owner[DOMAIN_MAX + 2];
	bool owner_odd;
	uint16_t type, klass;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static bool host_octet(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * Read a possibly compressed name at *off.  Writes lower-case presentation form without the
 * trailing dot ("" for the root) into out (outlen >= 2).  Octets that cannot appear in a host
 * name are written as \DDD and flagged in *odd; a presentation form too long for out is
 * truncated and flagged too.  Advances *off past the name as stored at *off.
 * Returns false if the encoding is invalid.
 */
static bool read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outlen,
                      bool *odd)
{
	size_t pos = *off, o = 0, wire = 0;
	unsigned ptrs = 0;
	bool jumped = false;

	*odd = false;
	out[0] = '\0';
	for (;;) {
		if (pos >= len)
			return false;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++ptrs > MAX_PTRS)
				return false;
			size_t target = ((size_t)(l & 0x3f) << 8) | msg[pos + 1];
			if (target >= pos) /* only backwards: no loops */
				return false;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = target;
			continue;
		}
		if (l & 0xc0) /* 0x40/0x80: extended label types, obsolete */
			return false;
		pos++;
		if (l == 0)
			break;
		wire += (size_t)l + 1;
		if (wire > 254 || pos + l > len)
			return false;
		if (o > 0 && o + 1 < outlen)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[pos + i];
			if (host_octet(c)) {
				if (o + 1 < outlen) {
					out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
					continue;
				}
			} else if (o + 4 < outlen) {
				o += (size_t)snprintf(out + o, outlen - o, "\\%03u", c);
				*odd = true;
				continue;
			}
			*odd = true; /* truncated */
		}
		pos += l;
	}
	out[o] = '\0';
	if (!jumped)
		*off = pos;
	return true;
}

static bool read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *rr)
{
	if (!read_name(msg, len, off, rr->owner, sizeof(rr->owner), &rr->owner_odd))
		return false;
	if (*off + 10 > len)
		return false;
	const uint8_t *p = msg + *off;
	rr->type = get16(p);
	rr->klass = get16(p + 2);
	rr->ttl = get32(p + 4);
	if (rr->ttl > 0x7fffffffu) /* RFC 2181 8: treat as zero */
		rr->ttl = 0;
	rr->rdlen = get16(p + 8);
	rr->rdoff = *off + 10;
	if (rr->rdoff + rr->rdlen > len)
		return false;
	*off = rr->rdoff + rr->rdlen;
	return true;
}

static void name_lower_nodot(const char *in, char *out, size_t outlen)
{
	size_t i = 0;
	for (; in[i] && i + 1 < outlen; i++)
		out[i] = (char)((in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i]);
	if (i > 0 && out[i - 1] == '.')
		i--;
	out[i] = '\0';
}

static enum dns_status fail(struct dns_reply *out, enum dns_status st, const char *why)
{
	free(out->mx);
	free(out->addr);
	out->mx = NULL;
	out->addr = NULL;
	out->n = 0;
	out->has_ttl = false;
	out->status = st;
	snprintf(out->why, sizeof(out->why), "%s", why);
	return st;
}

static uint32_t min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

enum dns_status dns_parse_reply(const uint8_t *buf, size_t len, const char *qname, uint16_t qtype,
                                struct dns_reply *out)
{
	struct rr *rrs = NULL;
	char want[DOMAIN_MAX + 2], qn[DOMAIN_MAX + 2];
	size_t off = HDR_LEN, nrr = 0;
	bool odd;

	memset(out, 0, sizeof(*out));
	name_lower_nodot(qname, want, sizeof(want));
	snprintf(out->canon, sizeof(out->canon), "%s", want);

	if (len < HDR_LEN)
		return fail(out, DNSR_MALFORMED, "reply shorter than a DNS header");
	if (!(buf[2] & 0x80))
		return fail(out, DNSR_MALFORMED, "not a reply (QR bit clear)");
	out->rcode = buf[3] & 0x0f;
	unsigned qd = get16(buf + 4), an = get16(buf + 6), ns = get16(buf + 8);
	if (qd != 1)
		return fail(out, DNSR_MALFORMED, "reply does not carry exactly one question");
	if (!read_name(buf, len, &off, qn, sizeof(qn), &odd) || off + 4 > len)
		return fail(out, DNSR_MALFORMED, "malformed question section");
	if (strcmp(qn, want) != 0 || get16(buf + off) != qtype || get16(buf + off + 2) != 1)
		return fail(out, DNSR_MALFORMED, "reply is for another question");
	off += 4;

	switch (out->rcode) {
	case 0: /* NOERROR */
	case 3: /* NXDOMAIN */ break;
	case 2: return fail(out, DNSR_TEMPFAIL, "server failure (SERVFAIL)");
	case 5: return fail(out, DNSR_TEMPFAIL, "query refused (REFUSED)");
	case 4: return fail(out, DNSR_TEMPFAIL, "not implemented (NOTIMP)");
	case 1: return fail(out, DNSR_TEMPFAIL, "format error (FORMERR)");
	default: {
		char why[40];
		snprintf(why, sizeof(why), "unexpected rcode %d", out->rcode);
		return fail(out, DNSR_TEMPFAIL, why);
	}
	}
	if (buf[2] & 0x02)
		return fail(out, DNSR_TEMPFAIL, "truncated reply");

	if ((size_t)an + ns > MAX_RR_TOTAL)
		return fail(out, DNSR_MALFORMED, "too many records in reply");
	rrs = calloc((size_t)an + ns + 1, sizeof(*rrs));
	if (!rrs)
		return fail(out, DNSR_TEMPFAIL, "out of memory");
	for (unsigned i = 0; i < an + ns; i++) {
		if (!read_rr(buf, len, &off, &rrs[nrr])) {
			free(rrs);
			return fail(out, DNSR_MALFORMED, "malformed resource record");
		}
		nrr++;
	}

	/* Follow the CNAME chain inside the answer section, keeping its names: an answer
	 * record owned by none of them answers another question. */
	uint32_t ttl = UINT32_MAX;
	char chain[DNS_MAX_CNAME + 1][DOMAIN_MAX + 2];
	char *cur = chain[0];
	snprintf(cur, sizeof(chain[0]), "%s", want);
	for (;;) {
		size_t i;
		for (i = 0; i < an; i++)
			if (rrs[i].type == DNS_T_CNAME && rrs[i].klass == 1 &&
			    strcmp(rrs[i].owner, cur) == 0)
				break;
		if (i == an || qtype == DNS_T_CNAME)
			break;
		if (++out->cnames > DNS_MAX_CNAME) {
			free(rrs);
			return fail(out, DNSR_MALFORMED, "CNAME chain too long or looping");
		}
		char *next = chain[out->cnames];
		size_t o = rrs[i].rdoff;
		if (!read_name(buf, len, &o, next, sizeof(chain[0]), &odd) ||
		    o != rrs[i].rdoff + rrs[i].rdlen || odd || next[0] == '\0') {
			free(rrs);
			return fail(out, DNSR_MALFORMED, "malformed CNAME record");
		}
		cur = next;
		ttl = min32(ttl, rrs[i].ttl);
	}
	snprintf(out->canon, sizeof(out->canon), "%s", cur);
	if (an > 0) {
		/* RFC 2181 5.4.1: data for other names is not to be trusted; a reply holding
		 * nothing for the asked name or its aliases answers another question, and is no
		 * negative answer for this one */
		bool related = false;
		for (size_t i = 0; i < an && !related; i++)
			for (unsigned k = 0; k <= out->cnames && !related; k++)
				related = strcmp(rrs[i].owner, chain[k]) == 0;
		if (!related) {
			free(rrs);
			return fail(out, DNSR_MALFORMED,
			            "the answer holds records for another name only");
		}
	}

	/* Records of the asked type at the final name. */
	size_t cnt = 0;
	for (size_t i = 0; i < an; i++)
		if (rrs[i].type == qtype && rrs[i].klass == 1 && strcmp(rrs[i].owner, cur) == 0)
			cnt++;
	out->total = cnt;
	if (cnt > DNS_MAX_RECORDS)
		cnt = DNS_MAX_RECORDS;
	if (cnt > 0 && out->rcode == 0) {
		if (qtype == DNS_T_MX)
			out->mx = calloc(cnt, sizeof(*out->mx));
		else
			out->addr = calloc(cnt, sizeof(*out->addr));
		if (!out->mx && !out->addr) {
			free(rrs);
			return fail(out, DNSR_TEMPFAIL, "out of memory");
		}
		for (size_t i = 0; i < an && out->n < cnt; i++) {
			struct rr *r = &rrs[i];
			if (r->type != qtype || r->klass != 1 || strcmp(r->owner, cur) != 0)
				continue;
			if (qtype == DNS_T_MX) {
				struct dns_mx *m = &out->mx[out->n];
				size_t o = r->rdoff + 2;
				if (r->rdlen < 3 ||
				    !read_name(buf, len, &o, m->host, sizeof(m->host), &odd) ||
				    o != r->rdoff + r->rdlen) {
					free(rrs);
					return fail(out, DNSR_MALFORMED, "malformed MX record");
				}
				m->pref = get16(buf + r->rdoff);
				m->host_invalid = odd;
			} else {
				size_t alen = qtype == DNS_T_A ? 4 : 16;
				if (r->rdlen != alen) {
					free(rrs);
					return fail(out, DNSR_MALFORMED,
					            "malformed address record");
				}
				memcpy(out->addr[out->n], buf + r->rdoff, alen);
			}
			ttl = min32(ttl, r->ttl);
			out->n++;
		}
		out->ttl = ttl;
		out->has_ttl = true;
		out->status = DNSR_OK;
		free(rrs);
		return DNSR_OK;
	}

	/*
	 * A negative answer, or none at all.  RFC 2308 2.1/2.2: NXDOMAIN and NODATA carry the
	 * SOA of the zone in the authority section, and its TTL and MINIMUM bound how long the
	 * answer may be cached (5).  NS records there without an SOA make a referral: the
	 * server does not recurse for us (or sent us "upward", to the root) and said nothing
	 * about the name.  Only an authoritative server (AA) or a recursive one (RA) can deny
	 * a name; an empty answer without SOA is believed only from an authoritative server.
	 */
	bool soa = false, has_ns = false;
	bool aa = buf[2] & 0x04, ra = buf[3] & 0x80;
	for (size_t i = an; i < nrr; i++) {
		struct rr *r = &rrs[i];
		if (r->klass != 1)
			continue;
		if (r->type == DNS_T_NS)
			has_ns = true;
		if (r->type != DNS_T_SOA || soa)
			continue;
		size_t o = r->rdoff;
		char tmp[DOMAIN_MAX + 2];
		if (!read_name(buf, len, &o, tmp, sizeof(tmp), &odd) ||
		    !read_name(buf, len, &o, tmp, sizeof(tmp), &odd) ||
		    o + 20 != r->rdoff + r->rdlen) {
			free(rrs);
			return fail(out, DNSR_MALFORMED, "malformed SOA record");
		}
		if (!dns_name_within(cur, r->owner)) {
			free(rrs);
			return fail(out, DNSR_MALFORMED,
			            "the SOA in the authority section is for an unrelated zone");
		}
		uint32_t minimum = get32(buf + o + 16);
		if (minimum > 0x7fffffffu)
			minimum = 0;
		ttl = min32(ttl, min32(r->ttl, minimum));
		soa = true;
	}
	free(rrs);
	if (out->rcode == 0 && out->cnames > 0 && !soa) {
		/* An authoritative server that is not authoritative for the target stops at the
		 * alias: the caller asks the target itself. */
		out->status = DNSR_CNAME;
		out->has_ttl = ttl != UINT32_MAX;
		out->ttl = out->has_ttl ? ttl : 0;
		return DNSR_CNAME;
	}
	if (!aa && !ra)
		return fail(out, DNSR_TEMPFAIL,
		            has_ns && !soa ? "referral instead of an answer (the server does not "
		                             "recurse: RFC 2308 2.2)"
		                           : "negative answer from a server that is neither "
		                             "authoritative nor recursive");
	if (out->rcode == 0 && !soa) {
		if (has_ns)
			return fail(out, DNSR_TEMPFAIL,
			            "referral instead of an answer (NS records without SOA: "
			            "RFC 2308 2.2)");
		if (!aa)
			return fail(out, DNSR_TEMPFAIL,
			            "empty answer without SOA from a server that is not "
			            "authoritative (no proof of NODATA: RFC 2308 2.2)");
	}
	out->status = out->rcode == 3 ? DNSR_NXDOMAIN : DNSR_NODATA;
	out->has_ttl = soa;
	out->ttl = soa ? ttl : 0;
	return out->status;
}

bool dns_name_within(const char *name, const char *zone)
{
	size_t nl = strlen(name), zl = strlen(zone);
	if (zl == 0)
		return true; /* the root holds every name */
	if (zl > nl || strcmp(name + nl - zl, zone) != 0)
		return false;
	return zl == nl || name[nl - zl - 1] == '.';
}

void dns_reply_clear(struct dns_reply *r)
{
	if (!r)
		return;
	free(r->mx);
	free(r->addr);
	r->mx = NULL;
	r->addr = NULL;
	r->n = 0;
}

const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNSR_OK: return "ok";
	case DNSR_NODATA: return "nodata";
	case DNSR_NXDOMAIN: return "nxdomain";
	case DNSR_CNAME: return "cname";
	case DNSR_TEMPFAIL: return "tempfail";
	case DNSR_MALFORMED: return "malformed";
	}
	return "?";
}

const char *dns_type_name(uint16_t t)
{
	switch (t) {
	case DNS_T_A: return "A";
	case DNS_T_AAAA: return "AAAA";
	case DNS_T_MX: return "MX";
	case DNS_T_CNAME: return "CNAME";
	case DNS_T_SOA: return "SOA";
	}
	return "?";
}
