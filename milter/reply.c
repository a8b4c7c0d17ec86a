/*
 * reply.c - decision to libmilter status and reply, with the code classes kept consistent.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

#include "text.h"

#define FALLBACK_TEXT "temporary local problem, try again later"

/* "[245].d{1,3}.d{1,3}" whose class is the SMTP code's class. */
static bool dsn_ok(const char *dsn, int code)
{
	const char *p = dsn;
	if (!p || p[0] != (char)('0' + code / 100) || p[1] != '.')
		return false;
	p += 2;
	for (int part = 0; part < 2; part++) {
		int n = 0;
		while (*p >= '0' && *p <= '9' && n < 4) {
			p++;
			n++;
		}
		if (n < 1 || n > 3)
			return false;
		if (part == 0 && *p++ != '.')
			return false;
	}
	return *p == '\0';
}

static void set(struct milter_reply *r, enum milter_verdict what, struct reply rep,
                const char *text)
{
	r->what = what;
	snprintf(r->rcode, sizeof(r->rcode), "%03d", rep.code);
	snprintf(r->xcode, sizeof(r->xcode), "%s", rep.dsn);
	reply_text(r->text, sizeof(r->text), rep, text, TEXT_PERCENT);
}

void milter_reply_failure(struct milter_reply *out, struct reply rep, const char *text)
{
	memset(out, 0, sizeof(*out));
	out->verdict = V_DNS_ERROR;
	set(out, MV_TEMPFAIL, rep, text);
}

void milter_reply_from_result(const struct check_result *res, struct milter_reply *r)
{
	struct reply rep = res->reply;
	memset(r, 0, sizeof(*r));
	r->verdict = res->verdict;
	if (rep.code == 0 && (res->action == ACT_ACCEPT || res->action == ACT_WARN)) {
		r->what = MV_CONTINUE;
		if (res->action == ACT_WARN && res->header)
			text_printable(r->header, sizeof(r->header), res->header,
			               strlen(res->header), 0);
		return;
	}
	const char *text = res->text && res->text[0] ? res->text : res->reason;
	if (rep.code >= 500 && rep.code <= 599 && dsn_ok(rep.dsn, rep.code)) {
		set(r, MV_REJECT, rep, text);
		return;
	}
	if (rep.code >= 400 && rep.code <= 499 && dsn_ok(rep.dsn, rep.code)) {
		set(r, MV_TEMPFAIL, rep, text);
		return;
	}
	/* No valid reply for a tempfail/reject, or a reply with mixed classes. */
	set(r, MV_TEMPFAIL, reply_internal_failure(), FALLBACK_TEXT);
}
