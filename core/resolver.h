/*
 * resolver.h - asynchronous DNS queries through c-ares 1.18, driven by an evloop.
 *
 * Asks the configured servers directly (never /etc/hosts, no search list).  c-ares' own
 * retry timing is bounded by the configured budget: per-try timeout = budget / 4, three
 * tries; the caller (engine) enforces the overall deadline of a verdict on top.
 *
 * Queries go over UDP (EDNS stays off).  A truncated answer is asked again over TCP by the
 * resolver itself, on a c-ares channel that carries only that query while it runs: c-ares
 * 1.18 answers a reset TCP connection by retrying every query of the channel, so one domain
 * whose TCP answers end in resets would otherwise fail the unrelated lookups in flight.  The
 * caller still sees one query, one callback; the TCP try adds at most its own c-ares tries
 * (the engine's deadline still bounds the verdict).  At most 32 TCP channels exist; past that,
 * TCP queries share them.
 * One resolver belongs to one evloop thread.
 */
#ifndef MXSANE_RESOLVER_H
#define MXSANE_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct resolver;

/* Result of one query: status is an ARES_* code, or RESOLVER_ENOFD.  For ARES_SUCCESS,
 * ARES_ENODATA and ARES_ENOTFOUND, abuf holds the raw reply (parse it with dns_parse_reply);
 * for other codes abuf is NULL and the failure is temporary. */

/* The query could not get a socket: the process (EMFILE) or the system (ENFILE) is out of
 * file descriptors.  A local failure that says nothing about the DNS server or the name;
 * c-ares itself reports it as ARES_ECONNREFUSED, like a server that refused. */
#define RESOLVER_ENOFD (-1)
typedef void (*resolver_cb)(void *arg, int status, const uint8_t *abuf, size_t alen);

/* servers: "IP", "IP:PORT", "[IPv6]:PORT" strings; n == 0 uses /etc/resolv.conf.
 * On failure returns NULL with a reason in err. */
struct resolver *resolver_new(struct evloop *loop, char *const *servers, size_t n,
                              unsigned budget_ms, char *err, size_t errlen);
/* Callbacks of pending queries (UDP or TCP) run with ARES_EDESTRUCTION.  Accepts NULL. */
void resolver_free(struct resolver *r);

/* Start a query (class IN).  The callback runs later from the evloop, never from inside
 * this call... except when c-ares fails the query immediately, or r is being freed (then it
 * runs at once, with ARES_EDESTRUCTION for the latter). */
void resolver_query(struct resolver *r, const char *name, uint16_t qtype, resolver_cb cb,
                    void *arg);

size_t resolver_pending(const struct resolver *r);

/* Query types as the metrics tell them apart: A, AAAA, MX, anything else. */
#define RESOLVER_QTYPES 4
static inline unsigned resolver_qtype_index(uint16_t qtype)
{
	return qtype == 1 ? 0 : qtype == 28 ? 1 : qtype == 15 ? 2 : 3;
}
/* Count each UDP answer that came back truncated (and was asked again over TCP, or handed
 * over as it is) in counters[resolver_qtype_index(qtype)]; the array must outlive r.
 * NULL: not counted (the default). */
void resolver_count_truncated(struct resolver *r, uint64_t *counters);
/* Queries sent so far, a truncated one asked again over TCP counting twice (for statistics
 * and benchmarks). */
uint64_t resolver_sent(const struct resolver *r);

/*
 * Does each server offer recursion?  mxsane needs a recursive resolver: an authoritative-only
 * server answers its own zones and refers every other question elsewhere (a referral proves
 * nothing and gives a temporary failure).  One query per server (". NS", RD set), on a
 * channel of its own; cb runs once per server from the loop, with the server as configured
 * (or as read from /etc/resolv.conf when n == 0), the outcome and plain words.  Free with
 * resolver_probe_free() (no callback runs after that); NULL on out of memory.
 */
enum probe_outcome { PROBE_RECURSIVE, PROBE_NO_RECURSION, PROBE_NO_ANSWER };
typedef void (*resolver_probe_cb)(void *arg, const char *server, enum probe_outcome o,
                                  const char *detail);
struct resolver_probe;
struct resolver_probe *resolver_probe_start(struct evloop *loop, char *const *servers, size_t n,
                                            unsigned budget_ms, resolver_probe_cb cb, void *arg);
bool resolver_probe_pending(const struct resolver_probe *p); /* answers still awaited */
void resolver_probe_free(struct resolver_probe *p);          /* accepts NULL */

/* One-time process initialisation (ares_library_init): call from main() before any
 * thread is created.  0 or an ARES_* error. */
int resolver_library_init(void);

#endif
