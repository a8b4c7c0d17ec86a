/*
 * engine_metrics.c - the engine's counters (engine_int.h's struct engine_counters, counted
 * where things happen: result.c, inflight.c, check.c, the cache and the resolvers) written
 * out in the Prometheus text format at scrape time.
 */
#include <stdio.h>

#include "engine_int.h"

static const char *const qtype_label[RESOLVER_QTYPES] = {"A", "AAAA", "MX", "other"};
static const char *const outcome_label[DNSO__COUNT] = {
        "noerror", "nxdomain", "nodata", "servfail", "refused", "timeout", "malformed", "error"};

static void write_decisions(const struct engine *e, struct expo *x)
{
	char lb[160];
	expo_family(x, "mxsane_decisions_total", "counter",
	            "Checks decided, by verdict, action done and role; \"would\" is the action "
	            "the configuration asks for when monitor mode or the DNS outage guard "
	            "softened it to warn.");
	for (int v = 0; v < V__COUNT; v++)
		for (int a = 0; a < ACT__COUNT; a++)
			for (int r = 0; r < 2; r++)
				for (int w = 0; w <= ACT__COUNT; w++) {
					uint64_t n = e->m.decisions[v][a][r][w];
					if (!n)
						continue;
					int k = snprintf(lb, sizeof(lb),
					                 "verdict=\"%s\",action=\"%s\",role=\"%s\"",
					                 verdict_name((enum verdict)v),
					                 action_name((enum action)a),
					                 role_name((enum role)r));
					if (w && k > 0 && (size_t)k < sizeof(lb))
						snprintf(lb + k, sizeof(lb) - (size_t)k,
						         ",would=\"%s\"",
						         action_name((enum action)(w - 1)));
					expo_u64(x, "mxsane_decisions_total", lb, n);
				}
	expo_family(x, "mxsane_decision_duration_seconds", "histogram",
	            "Time from the start of a check to its verdict (0 for answers from the "
	            "cache: the engine's clock counts milliseconds).");
	expo_hist(x, "mxsane_decision_duration_seconds", "", &e->m.duration);
}

static void write_cache(const struct engine *e, struct expo *x)
{
	expo_family(x, "mxsane_cache_hits_total", "counter",
	            "DNS record sets a decided check took from the cache.");
	expo_u64(x, "mxsane_cache_hits_total", "", e->st.cache_hits);
	expo_family(x, "mxsane_cache_misses_total", "counter",
	            "DNS record sets not in the cache (asked, or joined a query in flight).");
	expo_u64(x, "mxsane_cache_misses_total", "", e->m.cache_misses);
	expo_family(x, "mxsane_cache_entries", "gauge", "DNS record sets in the cache now.");
	expo_u64(x, "mxsane_cache_entries", "", cache_entries(e->cache));
	expo_family(x, "mxsane_cache_bytes", "gauge", "Memory the cached record sets take.");
	expo_u64(x, "mxsane_cache_bytes", "", cache_bytes(e->cache));
	expo_family(x, "mxsane_cache_evictions_total", "counter",
	            "Record sets evicted to stay within cache.max_entries.");
	expo_u64(x, "mxsane_cache_evictions_total", "", cache_evictions(e->cache));
}

static void write_dns(const struct engine *e, struct expo *x)
{
	char lb[96];
	expo_family(x, "mxsane_dns_queries_total", "counter",
	            "DNS queries by type and outcome.  truncated: a UDP answer that came back "
	            "truncated and was asked again over TCP (that try is counted again with its "
	            "own outcome); servfail also counts queries that every server answered "
	            "SERVFAIL or REFUSED or that no server answered at all (c-ares reports "
	            "these alike); error: a local failure (no descriptor, out of memory, "
	            "shutting down).");
	for (int t = 0; t < RESOLVER_QTYPES; t++) {
		for (int o = 0; o < DNSO__COUNT; o++) {
			/* the engine asks A, AAAA and MX: other types only if ever asked */
			if (t == RESOLVER_QTYPES - 1 && !e->m.dns[t][o])
				continue;
			snprintf(lb, sizeof(lb), "type=\"%s\",outcome=\"%s\"", qtype_label[t],
			         outcome_label[o]);
			expo_u64(x, "mxsane_dns_queries_total", lb, e->m.dns[t][o]);
		}
		if (t == RESOLVER_QTYPES - 1 && !e->m.truncated[t])
			continue;
		snprintf(lb, sizeof(lb), "type=\"%s\",outcome=\"truncated\"", qtype_label[t]);
		expo_u64(x, "mxsane_dns_queries_total", lb, e->m.truncated[t]);
	}
	expo_family(x, "mxsane_dns_round_trip_seconds", "histogram",
	            "Time from asking a DNS query to its answer or failure (a retry over TCP "
	            "included; millisecond resolution: a faster answer counts 0).");
	expo_hist(x, "mxsane_dns_round_trip_seconds", "", &e->m.dns_rtt);
	expo_family(x, "mxsane_dns_queries_in_flight", "gauge", "DNS queries awaiting an answer.");
	expo_u64(x, "mxsane_dns_queries_in_flight", "", e->ninflight);
}

void engine_write_metrics(const struct engine *e, struct expo *x)
{
	write_decisions(e, x);
	expo_family(x, "mxsane_checks_in_flight", "gauge", "Checks waiting for DNS now.");
	expo_u64(x, "mxsane_checks_in_flight", "", e->m.checks_waiting);
	write_cache(e, x);
	write_dns(e, x);
	expo_family(x, "mxsane_dns_outage", "gauge",
	            "1 while the DNS outage guard judges DNS down (resilience.outage_ratio of "
	            "the last outage_window checks failed temporarily), else 0.");
	expo_u64(x, "mxsane_dns_outage", "", e->guard.outage ? 1 : 0);
	expo_family(x, "mxsane_dns_outage_transitions_total", "counter",
	            "Changes of the DNS outage guard's state (into and out of an outage).");
	expo_u64(x, "mxsane_dns_outage_transitions_total", "", e->guard.transitions);
}
