/*
 * outage.c - the DNS outage guard (outage.h).
 */
#include "outage.h"

#include <stdlib.h>

#include "log.h"

bool outage_slow(struct outage_guard *e, const struct config *cfg, bool dns_error)
{
	if (!e->ring || e->size != cfg->outage_window) {
		free(e->ring);
		e->ring = calloc(cfg->outage_window, 1);
		e->size = e->ring ? cfg->outage_window : 0;
		e->pos = e->fill = e->errors = 0;
		if (!e->ring)
			return false;
	}
	if (e->fill == e->size)
		e->errors -= e->ring[e->pos];
	else
		e->fill++;
	e->ring[e->pos] = dns_error ? 1 : 0;
	e->errors += e->ring[e->pos];
	e->pos = (e->pos + 1) % e->size;
	/* Judge only once a meaningful sample exists: at least 10 checks. */
	bool was = e->outage;
	e->outage = e->fill >= 10 && (double)e->errors > cfg->outage_ratio * (double)e->fill;
	if (e->outage != was)
		log_msg(e->outage ? LOG_ERR : LOG_NOTICE,
		        e->outage ? "DNS outage: %zu of the last %zu checks failed temporarily; "
		                    "on_dns_outage=%s%s"
		                  : "DNS outage over: %zu of the last %zu checks failed; "
		                    "on_dns_outage=%s%s",
		        e->errors, e->fill,
		        cfg->on_dns_outage == OUTAGE_ACCEPT ? "accept" : "tempfail",
		        e->outage && cfg->on_dns_outage == OUTAGE_ACCEPT
		                ? ": ACCEPTING MAIL WITHOUT DNS CHECKS until lookups succeed again"
		                : "");
	if (e->outage != was)
		e->transitions++;
	return e->outage;
}

void outage_free(struct outage_guard *g)
{
	free(g->ring);
	*g = (struct outage_guard){0};
}
