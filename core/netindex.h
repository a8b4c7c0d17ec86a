/*
 * netindex.h - an index over a list of CIDR networks whose lookup does not scan the list:
 * one sorted table of network addresses per prefix length, searched by bisection for each
 * prefix length the list uses (at most 33 for IPv4, 129 for IPv6).  100,000 networks of a
 * handful of lengths take a few dozen comparisons per lookup.
 *
 * Built once from a finished list (netlist_index in netlist.h), then only read: lookups are
 * safe from any number of threads.
 */
#ifndef MXSANE_NETINDEX_H
#define MXSANE_NETINDEX_H

#include <stdbool.h>
#include <stddef.h>

struct cidr;
struct netindex;

/* Index the n networks of v (not kept: the index holds its own copy).  NULL on out of
 * memory. */
struct netindex *netindex_build(const struct cidr *v, size_t n);
void netindex_free(struct netindex *x); /* accepts NULL */

/* Is the address (family AF_INET: 4 bytes, AF_INET6: 16 bytes, network order) in one of the
 * networks of that family?  No IPv4-mapped handling here: netlist_match does that. */
bool netindex_match(const struct netindex *x, int family, const void *addr);

#endif
