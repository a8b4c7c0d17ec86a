/*
 * netlist.h - lists of IPv4/IPv6 networks (CIDR) and of domains, and matching against them.
 *
 * Used for bogus_networks (MX target addresses nobody can deliver to), skip.clients,
 * policy.allow_clients and (through domtab.h) skip.domains.  Lists are built once (at
 * configuration load) and then only read, so matching is safe from any number of threads.
 * A short list is matched by a scan; netlist_index builds an index whose lookup does not
 * scan, for lists read from files (any size).
 */
#ifndef MXSANE_NETLIST_H
#define MXSANE_NETLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domtab.h"

struct cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t plen;   /* prefix length, 0..32 or 0..128 */
	uint8_t addr[16];
};

struct netindex;

struct netlist {
	struct cidr *v; /* in the order added (what netlist_equal compares) */
	size_t n;
	struct netindex *idx; /* NULL until netlist_index; dropped by netlist_add */
};

/* Parse "192.0.2.0/24", "2001:db8::/32", or a bare address (full-length prefix).
 * Host bits beyond the prefix are an error (it is usually a typo). On error returns false and
 * writes a reason ("bad prefix length", ...) to err. */
bool cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);

/* Append a copy; false on out of memory.  Drops the index (netlist_index builds it again). */
bool netlist_add(struct netlist *l, const struct cidr *c);
/* Index the list as it is now, for lookups that do not scan; call once the list is complete.
 * false on out of memory (the list still matches, by a scan). */
bool netlist_index(struct netlist *l);
/* Fill with the built-in special-purpose list (this network, loopback, link-local,
 * multicast, reserved, broadcast, RFC 1918, CGNAT, benchmarking, documentation, ULA,
 * ::/128, ::1/128, fe80::/10, ff00::/8 ...).  false on out of memory. */
bool netlist_add_builtin_bogus(struct netlist *l);
void netlist_free(struct netlist *l);

/* Same networks in the same order (a reload that keeps the list keeps what was judged). */
bool netlist_equal(const struct netlist *a, const struct netlist *b);

/* Does the address (4 or 16 bytes, network order) fall in any network of the list?
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by its IPv4 part. */
bool netlist_match(const struct netlist *l, int family, const void *addr);
/* Same for a textual address ("192.0.2.1", "2001:db8::1", "[2001:db8::1]",
 * "IPv6:2001:db8::1"); false if it does not parse. */
bool netlist_match_str(const struct netlist *l, const char *addr);

/* Domain lists (struct domlist) are in domtab.h. */

#endif
