/*
 * outage.h - the DNS outage guard: over the last resilience.outage_window checks, when more
 * than outage_ratio of them failed temporarily (dns_error), DNS itself is judged down, and
 * on_dns_outage = "accept" lets mail through (with a warning) instead of tempfailing it all.
 * Each change of state is logged once.  At least 10 checks are needed to judge.
 */
#ifndef MXSANE_OUTAGE_H
#define MXSANE_OUTAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct outage_guard {
	uint8_t *ring; /* recent outcomes, 1 = dns_error */
	size_t size, pos, fill, errors;
	bool outage;
	uint64_t transitions; /* changes of state so far */
};

/* Record one check's outcome (window and ratio from cfg; a new window size starts afresh).
 * Returns whether DNS is judged down now.  Inline: once per check. */
/* The general case of outage_record. */
bool outage_slow(struct outage_guard *g, const struct config *cfg, bool dns_error);
static inline bool outage_record(struct outage_guard *g, const struct config *cfg, bool dns_error)
{
	if (!g->ring || g->size != cfg->outage_window || g->fill < g->size || dns_error ||
	    g->ring[g->pos] || g->errors)
		return outage_slow(g, cfg, dns_error);
	/* the usual case: a success replaces a success, with no error in the window */
	g->pos = g->pos + 1 == g->size ? 0 : g->pos + 1;
	return g->outage;
}
void outage_free(struct outage_guard *g); /* leaves it empty and reusable */

#endif
