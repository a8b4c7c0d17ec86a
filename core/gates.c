/*
 * gates.c - whether a check is run at all: checks.sender / checks.recipient, authenticated
 * and locally submitted senders, skip.clients, the address itself (null sender, literal,
 * unparseable), skip.domains; and for a sender check made for a recipient, that recipient's
 * check_sender in recipient_policies_file (rpolicy.h).  Every front-end's requests pass here, in
 * the engine only, so the milter and the policy service skip (and log) alike.
 */
#include <string.h>

#include "engine_int.h"
#include "netlist.h"

/* Is the client in skip.clients?  The answer for the last client is kept: the sender and
 * recipient checks of a request (and a session's messages) ask about the same one. */
static bool client_skipped(struct engine *e, const char *client)
{
	size_t l = strnlen(client, sizeof(e->skip_client));
	if (e->skip_cfg == e->cfg && l < sizeof(e->skip_client) &&
	    memcmp(e->skip_client, client, l + 1) == 0)
		return e->skip_last;
	bool hit = netlist_match_str(&e->cfg->skip_clients, client);
	if (l < sizeof(e->skip_client)) {
		memcpy(e->skip_client, client, l + 1);
		e->skip_cfg = e->cfg;
		e->skip_last = hit;
	}
	return hit;
}

const struct rpolicy *gates_sender_policy(const struct config *cfg, const char *rcpt, size_t len)
{
	struct addr_parsed ap;

	if (!rcpt || !addr_parse(rcpt, len, &ap) || ap.kind != ADDR_DOMAIN)
		return NULL;
	return rpolicies_lookup(cfg->rpolicies, ap.domain);
}

const char *gates_skip_reason(struct engine *e, struct arena *ar, const struct check_request *req,
                              const struct rpolicy *pol, char *domain)
{
	const struct config *cfg = e->cfg;
	struct addr_parsed ap;

	if (req->role == ROLE_SENDER && pol && !pol->check_sender)
		return arena_concat(ar, "sender checks are disabled for mail to ",
		                    rpolicies_name(cfg->rpolicies, pol),
		                    " (recipient_policies_file)", NULL);
	if (req->role == ROLE_SENDER && !pol && !cfg->check_sender)
		return "sender checks are disabled";
	if (req->role == ROLE_RECIPIENT && !cfg->check_recipient)
		return "recipient checks are disabled";
	if (req->role == ROLE_SENDER && req->authenticated)
		return "authenticated sender";
	/* A local program's sender is the site's own business, often a name that only exists
	 * inside it (root@host.internal): a tempfail would keep the mail on the machine for
	 * good, with no bounce.  Its recipients are still checked. */
	if (req->role == ROLE_SENDER && req->local_submission && !cfg->check_local_sender)
		return "locally submitted mail (sender not checked: checks.local_sender = false)";
	if (req->client_addr && client_skipped(e, req->client_addr))
		return arena_printf(
		        ar, "client %s is in skip.clients",
		        result_printable(ar, req->client_addr, strlen(req->client_addr)));
	if (req->domain) {
		char why[128];
		if (!domain_normalize(req->domain, strlen(req->domain), domain, why, sizeof(why)))
			return arena_printf(ar, "invalid domain: %s", why);
	} else {
		addr_parse(req->address ? req->address : "", req->address ? req->address_len : 0,
		           &ap);
		switch (ap.kind) {
		case ADDR_DOMAIN: copy_name(domain, DOMAIN_MAX + 1, ap.domain); break;
		case ADDR_NULL: return req->role == ROLE_SENDER ? "null sender" : "empty address";
		case ADDR_LITERAL: return "address literal";
		case ADDR_NODOMAIN: return "address without a domain";
		case ADDR_INVALID: return arena_printf(ar, "unparseable address: %s", ap.reason);
		}
	}
	if (domlist_match(&cfg->skip_domains, domain))
		return arena_printf(ar, "%s is in skip.domains", domain);
	return NULL;
}
