/*
 * netlist.c - CIDR and domain lists (see netlist.h), and the built-in list of networks an MX
 * target address must not be in.
 *
 * A list is matched by a linear scan until it is indexed (netindex.c).  Text handed to cidr_parse
 * and netlist_match_str comes from configuration files or DNS-derived strings: it is copied
 * into bounded buffers before inet_pton sees it.
 */
#include "netlist.h"

#include "netindex.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The built-in bogus networks: addresses no mail can be delivered to from the Internet.
 * Taken from the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890), keeping
 * the blocks that are not globally reachable.  Blocks the registries mark globally reachable
 * are left out even where they sit inside a reserved range (2001::/23 as a whole is NOT
 * listed: 2001:1::1/128 PCP anycast, 2001:3::/32 AMT, 2001:4:112::/48 AS112-v6 ... are real
 * destinations).  ::ffff:0:0/96 (IPv4-mapped, RFC 4291) is not listed either: a mapped
 * address is judged by its IPv4 part (see netlist_match).  Keep man/mxsane.conf.5 in step.
 */
static const char *const builtin_bogus[] = {
        /* IPv4 */
        "0.0.0.0/8",       /* "this network", RFC 791 / RFC 1122 3.2.1.3 */
        "10.0.0.0/8",      /* private use, RFC 1918 */
        "100.64.0.0/10",   /* shared address space (CGNAT), RFC 6598 */
        "127.0.0.0/8",     /* loopback, RFC 1122 3.2.1.3 */
        "169.254.0.0/16",  /* link local, RFC 3927 */
        "172.16.0.0/12",   /* private use, RFC 1918 */
        "192.0.0.0/24",    /* IETF protocol assignments, RFC 6890 */
        "192.0.2.0/24",    /* documentation TEST-NET-1, RFC 5737 */
        "192.88.99.0/24",  /* deprecated 6to4 relay anycast, RFC 7526 */
        "192.168.0.0/16",  /* private use, RFC 1918 */
        "198.18.0.0/15",   /* benchmarking, RFC 2544 */
        "198.51.100.0/24", /* documentation TEST-NET-2, RFC 5737 */
        "203.0.113.0/24",  /* documentation TEST-NET-3, RFC 5737 */
        "224.0.0.0/4",     /* multicast, RFC 5771 */
        "240.0.0.0/4",     /* reserved, RFC 1112; includes broadcast 255.255.255.255 */
        /* IPv6 */
        "::/128",         /* unspecified address, RFC 4291 2.5.2 */
        "::1/128",        /* loopback, RFC 4291 2.5.3 */
        "64:ff9b:1::/48", /* local-use IPv4/IPv6 translation, RFC 8215 */
        "100::/64",       /* discard-only, RFC 6666 */
        "2001::/32",      /* Teredo, RFC 4380 */
        "2001:2::/48",    /* benchmarking, RFC 5180 */
        "2001:10::/28",   /* deprecated ORCHID, RFC 4843 */
        "2001:20::/28",   /* ORCHIDv2 (identifiers, not routable locators), RFC 7343 */
        "2001:db8::/32",  /* documentation, RFC 3849 */
        "3fff::/20",      /* documentation, RFC 9637 */
        "5f00::/16",      /* SRv6 segment identifiers, RFC 9602 */
        "fc00::/7",       /* unique local, RFC 4193 */
        "fe80::/10",      /* link-local unicast, RFC 4291 2.5.6 */
        "fec0::/10",      /* deprecated site-local, RFC 3879 */
        "ff00::/8",       /* multicast, RFC 4291 2.7 */
};

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

bool cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN];
	char why[64];
	const char *slash;
	size_t alen, maxbits;
	unsigned long plen;
	struct cidr c;

	memset(&c, 0, sizeof(c));
	if (s == NULL || out == NULL || *s == '\0') {
		set_err(err, errlen, "empty network");
		return false;
	}
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf)) {
		set_err(err, errlen, "bad address");
		return false;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (memchr(buf, ':', alen) != NULL) {
		c.family = AF_INET6;
		maxbits = 128;
	} else {
		c.family = AF_INET;
		maxbits = 32;
	}
	if (inet_pton(c.family, buf, c.addr) != 1) {
		set_err(err, errlen, "bad address");
		return false;
	}

	if (slash == NULL) {
		plen = maxbits;
	} else {
		const char *d = slash + 1;
		size_t nd = strspn(d, "0123456789");

		/* Digits only: strtoul alone would take " 24", "+24" and "-0". */
		if (nd == 0 || d[nd] != '\0') {
			set_err(err, errlen, "bad prefix length");
			return false;
		}
		if (nd > 3) {
			set_err(err, errlen, "prefix too long");
			return false;
		}
		plen = strtoul(d, NULL, 10);
		if (plen > maxbits) {
			set_err(err, errlen, "prefix too long");
			return false;
		}
	}
	c.plen = (uint8_t)plen;

	/* Host bits must be zero: "192.0.2.1/24" is nearly always a typo for a /32 or a /24. */
	for (size_t bit = plen; bit < maxbits; bit++) {
		if (c.addr[bit / 8] & (0x80u >> (bit % 8))) {
			snprintf(why, sizeof(why), "host bits set beyond /%lu", plen);
			set_err(err, errlen, why);
			return false;
		}
	}
	*out = c;
	return true;
}

/* Lists are built once at configuration load.  The capacity is not kept in the struct (other
 * code copies and compares it): it is the next power of two of n, so growing stays linear
 * for lists read from files of any size. */
bool netlist_add(struct netlist *l, const struct cidr *c)
{
	struct cidr *v;

	if (l == NULL || c == NULL || l->n >= SIZE_MAX / sizeof(*v) / 2)
		return false;
	netindex_free(l->idx);
	l->idx = NULL;
	if ((l->n & (l->n - 1)) == 0) { /* n is 0 or a power of two: full */
		v = realloc(l->v, (l->n ? l->n * 2 : 1) * sizeof(*v));
		if (v == NULL)
			return false;
		l->v = v;
	}
	l->v[l->n++] = *c;
	return true;
}

bool netlist_index(struct netlist *l)
{
	if (l == NULL)
		return false;
	netindex_free(l->idx);
	l->idx = netindex_build(l->v, l->n);
	return l->idx != NULL;
}

bool netlist_add_builtin_bogus(struct netlist *l)
{
	for (size_t i = 0; i < sizeof(builtin_bogus) / sizeof(builtin_bogus[0]); i++) {
		struct cidr c;

		/* The table is ours: a parse failure is a programming error, caught by tests. */
		if (!cidr_parse(builtin_bogus[i], &c, NULL, 0))
			return false;
		if (!netlist_add(l, &c))
			return false;
	}
	return true;
}

void netlist_free(struct netlist *l)
{
	if (l == NULL)
		return;
	free(l->v);
	netindex_free(l->idx);
	l->v = NULL;
	l->idx = NULL;
	l->n = 0;
}

static bool prefix_match(const uint8_t *net, unsigned plen, const uint8_t *addr)
{
	unsigned full = plen / 8, rest = plen % 8;
	uint8_t mask;

	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - rest));
	return (net[full] & mask) == (addr[full] & mask);
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool netlist_equal(const struct netlist *a, const struct netlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].family != b->v[i].family || a->v[i].plen != b->v[i].plen ||
		    memcmp(a->v[i].addr, b->v[i].addr, sizeof(a->v[i].addr)) != 0)
			return false;
	return true;
}

bool netlist_match(const struct netlist *l, int family, const void *addr)
{
	const uint8_t *a = addr;
	const uint8_t *a4 = NULL;

	if (l == NULL || addr == NULL)
		return false;
	if (family == AF_INET)
		a4 = a;
	else if (family != AF_INET6)
		return false;
	else if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0)
		a4 = a + 12;

	if (l->idx != NULL)
		return (a4 != NULL && netindex_match(l->idx, AF_INET, a4)) ||
		       (family == AF_INET6 && netindex_match(l->idx, AF_INET6, a));
	for (size_t i = 0; i < l->n; i++) {
		const struct cidr *c = &l->v[i];

		/* A mapped ::ffff:a.b.c.d is judged by a.b.c.d against the IPv4 entries; IPv6
		 * entries still see the full address (so "::/0" covers it too). */
		if (c->family == AF_INET && a4 != NULL && prefix_match(c->addr, c->plen, a4))
			return true;
		if (c->family == AF_INET6 && family == AF_INET6 &&
		    prefix_match(c->addr, c->plen, a))
			return true;
	}
	return false;
}

/* The usual client address, a dotted quad in canonical form ("192.0.2.1": no leading
 * zeros), without inet_pton's copy and call; anything else goes the long way. */
static bool quad_fast(const char *s, size_t len, uint8_t out[4])
{
	unsigned part = 0, val = 0, digits = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (ch >= '0' && ch <= '9') {
			if (digits == 1 && val == 0)
				return false; /* leading zero */
			val = val * 10 + (unsigned)(ch - '0');
			if (++digits > 3 || val > 255)
				return false;
		} else if (ch == '.' && digits && part < 3) {
			out[part++] = (uint8_t)val;
			val = digits = 0;
		} else {
			return false;
		}
	}
	if (!digits || part != 3)
		return false;
	out[3] = (uint8_t)val;
	return true;
}

bool netlist_match_str(const struct netlist *l, const char *addr)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t bin[16];
	size_t len;

	if (l == NULL || addr == NULL)
		return false;
	len = strnlen(addr, 128);
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len >= 5 && strncasecmp(addr, "IPv6:", 5) == 0) {
		addr += 5;
		len -= 5;
		if (len == 0 || len >= sizeof(buf))
			return false;
		memcpy(buf, addr, len);
		buf[len] = '\0';
		return inet_pton(AF_INET6, buf, bin) == 1 && netlist_match(l, AF_INET6, bin);
	}
	if (quad_fast(addr, len, bin))
		return netlist_match(l, AF_INET, bin);
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, addr, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1)
		return netlist_match(l, AF_INET, bin);
	if (inet_pton(AF_INET6, buf, bin) == 1)
		return netlist_match(l, AF_INET6, bin);
	return false;
}
