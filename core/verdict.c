/*
 * verdict.c - names of verdicts, actions and roles, and the one table that maps a verdict to
 * an SMTP reply (see verdict.h).  Front-ends never pick reply codes themselves.
 *
 * Codes: RFC 7505 4.1 for null MX (550 5.7.27 sender, 556 5.1.10 recipient), RFC 3463 for
 * the rest (X.1.8 bad sender's system address, X.1.2 bad destination system address, X.4.4
 * unable to route, X.4.3 directory server failure).  Note that Postfix rewrites X.1.y codes
 * that come from a policy server in recipient context (5.1.10 -> 5.1.0, 5.1.8 -> 5.1.2);
 * milter replies reach the client unchanged.
 */
#include "verdict.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static const char *const verdict_names[V__COUNT] = {
        [V_OK] = "ok",
        [V_NULL_MX] = "null_mx",
        [V_NXDOMAIN] = "nxdomain",
        [V_NO_MAIL_HOST] = "no_mail_host",
        [V_BROKEN_MX] = "broken_mx",
        [V_MX_CNAME] = "mx_cname",
        [V_DNS_ERROR] = "dns_error",
        [V_SKIPPED] = "skipped",
};

static const char *const action_names[ACT__COUNT] = {
        [ACT_ACCEPT] = "accept",
        [ACT_WARN] = "warn",
        [ACT_TEMPFAIL] = "tempfail",
        [ACT_REJECT] = "reject",
};

static const char *const role_names[] = {
        [ROLE_SENDER] = "sender",
        [ROLE_RECIPIENT] = "recipient",
};

const char *verdict_name(enum verdict v)
{
	if ((unsigned)v >= V__COUNT)
		return "unknown";
	return verdict_names[v];
}

const char *action_name(enum action a)
{
	if ((unsigned)a >= ACT__COUNT)
		return "unknown";
	return action_names[a];
}

const char *role_name(enum role r)
{
	if ((unsigned)r >= sizeof(role_names) / sizeof(role_names[0]))
		return "unknown";
	return role_names[r];
}

/* Names are matched exactly (configuration files use the lower-case names above). */
bool verdict_from_name(const char *s, enum verdict *out)
{
	if (s == NULL)
		return false;
	for (unsigned i = 0; i < V__COUNT; i++) {
		if (strcmp(s, verdict_names[i]) == 0) {
			if (out != NULL)
				*out = (enum verdict)i;
			return true;
		}
	}
	return false;
}

bool action_from_name(const char *s, enum action *out)
{
	if (s == NULL)
		return false;
	for (unsigned i = 0; i < ACT__COUNT; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			if (out != NULL)
				*out = (enum action)i;
			return true;
		}
	}
	return false;
}

/* [verdict][role]: reject and tempfail replies. */
struct reply_pair {
	struct reply reject;
	struct reply tempfail;
};

/* Used where no specific reply is defined: ok and skipped (whose action is always accept, so
 * these should never be sent), and out-of-range values.  Still class-consistent. */
static const struct reply generic_reject = {550, "5.7.1"};
static const struct reply generic_tempfail = {451, "4.3.0"};

static const struct reply_pair replies[V__COUNT][2] =
        {
                [V_OK] =
                        {
                                [ROLE_SENDER] = {{550, "5.7.1"}, {451, "4.3.0"}},
                                [ROLE_RECIPIENT] = {{550, "5.7.1"}, {451, "4.3.0"}},
                        },
                /* RFC 7505 4.1, and its 4xx counterparts. */
                [V_NULL_MX] =
                        {
                                [ROLE_SENDER] = {{550, "5.7.27"}, {450, "4.7.27"}},
                                [ROLE_RECIPIENT] = {{556, "5.1.10"}, {450, "4.1.10"}},
                        },
                [V_NXDOMAIN] =
                        {
                                [ROLE_SENDER] = {{550, "5.1.8"}, {450, "4.1.8"}},
                                [ROLE_RECIPIENT] = {{550, "5.1.2"}, {450, "4.1.2"}},
                        },
                [V_NO_MAIL_HOST] =
                        {
                                [ROLE_SENDER] = {{550, "5.1.8"}, {450, "4.1.8"}},
                                [ROLE_RECIPIENT] = {{550, "5.1.2"}, {450, "4.1.2"}},
                        },
                [V_BROKEN_MX] =
                        {
                                [ROLE_SENDER] = {{550, "5.1.8"}, {450, "4.1.8"}},
                                [ROLE_RECIPIENT] = {{550, "5.4.4"}, {450, "4.4.4"}},
                        },
                [V_MX_CNAME] =
                        {
                                [ROLE_SENDER] = {{550, "5.1.8"}, {450, "4.1.8"}},
                                [ROLE_RECIPIENT] = {{550, "5.4.4"}, {450, "4.4.4"}},
                        },
                /*
                 * A DNS error is temporary by nature: the next try may well succeed.  It must never
                 * turn into a 5xx, so even a "reject" (which config_load refuses for dns_error, but
                 * this table does not rely on that) gets the 4xx reply.  This is the one exception
                 * to "reject gives 5xx": callers must derive the SMTP outcome (milter
                 * SMFIS_TEMPFAIL vs SMFIS_REJECT, policy action) from the reply code class, not
                 * from the action, or the reply is dropped.
                 */
                [V_DNS_ERROR] =
                        {
                                [ROLE_SENDER] = {{451, "4.4.3"}, {451, "4.4.3"}},
                                [ROLE_RECIPIENT] = {{451, "4.4.3"}, {451, "4.4.3"}},
                        },
                [V_SKIPPED] =
                        {
                                [ROLE_SENDER] = {{550, "5.7.1"}, {451, "4.3.0"}},
                                [ROLE_RECIPIENT] = {{550, "5.7.1"}, {451, "4.3.0"}},
                        },
};

struct reply reply_for(enum verdict v, enum action a, enum role r)
{
	static const struct reply none = {0, NULL};
	bool known = (unsigned)v < V__COUNT && (r == ROLE_SENDER || r == ROLE_RECIPIENT);

	switch (a) {
	case ACT_TEMPFAIL: return known ? replies[v][r].tempfail : generic_tempfail;
	case ACT_REJECT: return known ? replies[v][r].reject : generic_reject;
	case ACT_ACCEPT:
	case ACT_WARN:
	case ACT__COUNT:
	default: return none;
	}
}

struct reply reply_internal_failure(void)
{
	return generic_tempfail;
}

struct reply reply_timeout(void)
{
	return replies[V_DNS_ERROR][ROLE_RECIPIENT].tempfail;
}

/* Octets of "CODE DSN " before the text. */
static size_t reply_prefix_len(struct reply r)
{
	return 4 + (r.dsn ? strlen(r.dsn) + 1 : 0);
}

size_t reply_text(char *out, size_t outlen, struct reply r, const char *text, unsigned flags)
{
	size_t room = REPLY_LINE_MAX - reply_prefix_len(r) + 1;
	if (room > outlen)
		room = outlen;
	return text_printable(out, room, text ? text : "", text ? strlen(text) : 0, flags);
}

size_t reply_line(char *out, size_t outlen, struct reply r, const char *text)
{
	int n = snprintf(out, outlen, "%03d %s%s", r.code, r.dsn ? r.dsn : "", r.dsn ? " " : "");
	if (n < 0 || (size_t)n >= outlen)
		return outlen ? strlen(out) : 0;
	return (size_t)n + reply_text(out + n, outlen - (size_t)n, r, text, 0);
}
