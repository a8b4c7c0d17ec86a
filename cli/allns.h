/*
 * allns.h - the propagation check of mxsane-check --all-ns: is the MX set the same on every
 * authoritative server of the domain's zone?
 *
 * Through the resolver (recursive): the zone (the closest name at or above the domain that
 * has NS records), its name servers, and their IPv4 and IPv6 addresses.  Then each address
 * directly, over UDP, without recursion (RD clear): the domain's MX set and the zone's SOA
 * serial.  A server that does not answer within the budget (one retry at a third of it), or
 * answers without the AA bit or with REFUSED/SERVFAIL (lame), is reported as such; the
 * answers of the others are compared.  Bounds: 13 name servers, 32 addresses, replies of 4096
 * octets (a truncated reply is reported, not retried over TCP).
 */
#ifndef MXSANE_CLI_ALLNS_H
#define MXSANE_CLI_ALLNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct evloop;
struct resolver;
struct allns;

#define ALLNS_MAX_NS    13
#define ALLNS_MAX_ADDRS 32

enum allns_status { NS_OK, NS_LAME, NS_SILENT, NS_BAD };

struct allns_server {
	char ns[256];  /* the name server, no trailing dot */
	char addr[48]; /* the address asked */
	enum allns_status st;
	char why[400]; /* for LAME / SILENT / BAD: plain words */
	bool has_serial;
	uint32_t serial;
	char mx[600]; /* the MX set in a canonical form: "10 a.example. 20 b.example.",
	               * "no MX records", "the domain does not exist" */
};

struct allns_report {
	char zone[256];
	char error[400]; /* the check could not be done (no NS found, lookups failed) */
	size_t n;
	struct allns_server s[ALLNS_MAX_ADDRS];
	size_t mx_sets, serials; /* distinct values among the servers that answered */
	size_t lame, silent;
};

typedef void (*allns_done_cb)(void *arg);

/* Start the check of domain (A-label, no trailing dot), asking servers on port, within
 * budget_ms for each step; rec is the recursive resolver (the caller's, kept until done).
 * done(arg) runs once from the loop, never inside this call; out (the caller's) is filled
 * by then.  NULL on out of memory. */
struct allns *allns_start(struct evloop *loop, struct resolver *rec, const char *domain, int port,
                          unsigned budget_ms, struct allns_report *out, allns_done_cb done,
                          void *arg);
void allns_free(struct allns *a); /* stops what still runs; done does not run; NULL ok */

/* Is there a problem worth exit status 3 (disagreement, lame or silent server)? */
bool allns_problem(const struct allns_report *r);
void allns_write_text(FILE *f, const struct allns_report *r);
void allns_write_line(FILE *f, const struct allns_report *r);
void allns_write_json(FILE *f, const struct allns_report *r);

#endif
