/*
 * engine.c - the engine object: its resolver (or a test's scripted DNS), the cache, the
 * recursion probe at start and reload, reconfiguration, statistics and shutdown.  A check
 * itself runs in check.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "evloop.h"
#include "log.h"
#include "netlist.h"
#include "resolver.h"

struct check *engine_check(struct engine *e, const struct check_request *req, check_cb cb,
                           void *arg)
{
	bool wb;
	return check_start(e, req, cb, arg, false, &wb, NULL);
}

bool engine_check_cached(struct engine *e, const struct check_request *req, check_cb cb, void *arg,
                         char *prepared)
{
	bool wb = false;
	if (prepared)
		prepared[0] = '\0';
	check_start(e, req, cb, arg, true, &wb, prepared); /* never pending: done or given up */
	return !wb;
}

void engine_cancel(struct engine *e, struct check *c)
{
	(void)e;
	check_cancel(c);
}

/* The engine's own way of asking: its current resolver (replaced on reload). */
static void resolver_ask(void *ctx, const char *name, uint16_t qtype, resolver_cb cb, void *arg)
{
	struct engine *e = ctx;
	resolver_query(e->res, name, qtype, cb, arg);
}

/* A server that does not recurse answers only its own zones, and refers every other
 * question elsewhere: mxsane then tempfails most mail.  Said loudly, once per start or reload. */
static void on_probe(void *arg, const char *server, enum probe_outcome o, const char *detail)
{
	(void)arg;
	switch (o) {
	case PROBE_RECURSIVE: break;
	case PROBE_NO_RECURSION:
		log_msg(LOG_WARNING,
		        "WARNING: resolver server %s does not offer recursion (%s): it answers "
		        "only "
		        "the zones it serves itself; for any other domain its referrals are "
		        "temporary failures (4xx). Set resolver.servers to a recursive resolver",
		        server, detail);
		break;
	case PROBE_NO_ANSWER:
		log_msg(LOG_WARNING,
		        "WARNING: resolver server %s did not answer a recursive query for the "
		        "root's "
		        "NS records (%s): lookups through it may fail (4xx)",
		        server, detail);
		break;
	}
}

static void start_probe(struct engine *e)
{
	resolver_probe_free(e->probe);
	e->probe = resolver_probe_start(e->loop, e->cfg->servers, e->cfg->nservers,
	                                e->cfg->timeout_ms, on_probe, e);
}

bool engine_probe_pending(const struct engine *e)
{
	return resolver_probe_pending(e->probe);
}

static struct engine *engine_create(struct evloop *loop, struct config *cfg,
                                    const struct engine_dns *dns, char *err, size_t errlen)
{
	struct engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->loop = loop;
	e->cfg = config_ref(cfg);
	e->cache = cache_new(cfg->cache_max_entries);
	if (!e->cache) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (dns) {
		e->dns = *dns;
		e->scripted = true;
	} else {
		e->res = resolver_new(loop, cfg->servers, cfg->nservers, cfg->timeout_ms, err,
		                      errlen);
		if (!e->res)
			goto fail;
		resolver_count_truncated(e->res, e->m.truncated);
		e->dns = (struct engine_dns){resolver_ask, e};
		start_probe(e);
	}
	return e;
fail:
	engine_free(e);
	return NULL;
}

struct engine *engine_new(struct evloop *loop, struct config *cfg, char *err, size_t errlen)
{
	return engine_create(loop, cfg, NULL, err, errlen);
}

struct engine *engine_new_dns(struct evloop *loop, struct config *cfg, const struct engine_dns *dns,
                              char *err, size_t errlen)
{
	return engine_create(loop, cfg, dns, err, errlen);
}

static bool same_resolver(const struct config *a, const struct config *b)
{
	if (a->timeout_ms != b->timeout_ms || a->nservers != b->nservers)
		return false;
	for (size_t i = 0; i < a->nservers; i++)
		if (strcmp(a->servers[i], b->servers[i]) != 0)
			return false;
	return true;
}

static void reap(struct evloop *loop, void *arg)
{
	struct engine *e = arg;
	(void)loop;
	e->reap_timer = NULL;
	bool again = false;
	for (size_t i = 0; i < sizeof(e->retired) / sizeof(e->retired[0]); i++) {
		if (!e->retired[i])
			continue;
		if (resolver_pending(e->retired[i]) == 0) {
			resolver_free(e->retired[i]);
			e->retired[i] = NULL;
		} else {
			again = true;
		}
	}
	if (again)
		e->reap_timer = evloop_timer(e->loop, evloop_now(e->loop) + 1000, reap, e);
}

int engine_reconfigure(struct engine *e, struct config *cfg, char *err, size_t errlen)
{
	if (!e->scripted && !same_resolver(e->cfg, cfg)) {
		struct resolver *nr = resolver_new(e->loop, cfg->servers, cfg->nservers,
		                                   cfg->timeout_ms, err, errlen);
		if (!nr)
			return -1;
		resolver_count_truncated(nr, e->m.truncated);
		size_t slot = 0, n = sizeof(e->retired) / sizeof(e->retired[0]);
		while (slot < n && e->retired[slot])
			slot++;
		if (slot == n) { /* too many reloads in flight: cut the oldest short */
			resolver_free(e->retired[0]);
			e->retired[0] = NULL;
			slot = 0;
		}
		e->retired[slot] = e->res;
		e->res = nr;
		if (!e->reap_timer)
			e->reap_timer = evloop_timer(e->loop, evloop_now(e->loop), reap, e);
		/* answers from other servers may differ: start afresh */
		cache_clear(e->cache);
	}
	cache_set_limit(e->cache, cfg->cache_max_entries);
	if (!netlist_equal(&e->cfg->bogus_networks, &cfg->bogus_networks))
		cache_forget_judgments(e->cache);
	e->skip_cfg = NULL; /* judged against the old skip.clients */
	config_unref(e->cfg);
	e->cfg = config_ref(cfg);
	if (!e->scripted)
		start_probe(e);
	return 0;
}

const struct config *engine_config(const struct engine *e)
{
	return e->cfg;
}

void engine_set_wait_all(struct engine *e, bool on)
{
	e->wait_all = on;
}

void engine_get_stats(const struct engine *e, struct engine_stats *st)
{
	*st = e->st;
	st->cache_entries = cache_entries(e->cache);
	st->cache_bytes = cache_bytes(e->cache);
	st->inflight = e->ninflight;
}

void engine_flush_cache(struct engine *e)
{
	cache_clear(e->cache);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	e->closing = true;
	resolver_probe_free(e->probe);
	/* Destroying the resolvers runs every pending query's callback with
	 * ARES_EDESTRUCTION, which completes the checks waiting on them (dns_error). */
	for (size_t i = 0; i < sizeof(e->retired) / sizeof(e->retired[0]); i++)
		resolver_free(e->retired[i]);
	resolver_free(e->res);
	e->res = NULL;
	inflight_abort_all(e); /* a test's DNS: its answers still to come are not awaited */
	if (e->reap_timer)
		evloop_cancel(e->loop, e->reap_timer);
	cache_free(e->cache);
	while (e->nspare)
		free(e->spare[--e->nspare]);
	outage_free(&e->guard);
	config_unref(e->cfg);
	free(e);
}
