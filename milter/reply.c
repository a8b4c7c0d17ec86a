/*
 * reply.c - decision to libmilter status and reply, with the code classes kept consistent.
 */
#include "reply.h"

#include <stdio.h>
#include <string.h>

#define FALLBACK_TEXT "temporary local problem, try again later"

size_t milter_escape_text(char *out, size_t outlen, size_t max, const char *text)
{
	size_t o = 0;
	if (outlen == 0)
		return 0;
	if (max >= outlen)
		max = outlen - 1;
	for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
		if (*p == '%') {
			if (o + 2 > max)
				break;
			out[o++] = '%';
			out[o++] = '%';
			continue;
		}
		if (o + 1 > max)
			break;
		out[o++] = (*p < 0x20 || *p >= 0x7f) ? '?' : (char)*p;
	}
	out[o] = '\0';
	return o;
}

/* "[245].d{1,3}.d{1,3}" whose class is the SMTP code's class. */
static bool dsn_ok(const char *dsn, int code)
{
	const char *p = dsn;
	if (p[0] != (char)('0' + code / 100) || p[1] != '.')
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

static void set(struct milter_reply *r, enum milter_verdict what, int code, const char *dsn,
                const char *text)
{
	r->what = what;
	snprintf(r->rcode, sizeof(r->rcode), "%03d", code);
	snprintf(r->xcode, sizeof(r->xcode), "%s", dsn);
	/* "rcode SP xcode SP text" within one RFC 5321 reply line (and libmilter's limit) */
	size_t max = MILTER_MAXLINE - strlen(r->rcode) - strlen(r->xcode) - 2;
	if (max > MILTER_MAXREPLYLEN)
		max = MILTER_MAXREPLYLEN;
	milter_escape_text(r->text, sizeof(r->text), max, text);
}

void milter_reply_from_answer(const struct bridge_answer *a, struct milter_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (a->code == 0 && (a->action == ACT_ACCEPT || a->action == ACT_WARN)) {
		r->what = MV_CONTINUE;
		return;
	}
	if (a->code >= 500 && a->code <= 599 && dsn_ok(a->dsn, a->code)) {
		set(r, MV_REJECT, a->code, a->dsn, a->text);
		return;
	}
	if (a->code >= 400 && a->code <= 499 && dsn_ok(a->dsn, a->code)) {
		set(r, MV_TEMPFAIL, a->code, a->dsn, a->text);
		return;
	}
	/* No valid reply for a tempfail/reject, or a reply with mixed classes. */
	set(r, MV_TEMPFAIL, 451, "4.3.0", FALLBACK_TEXT);
}
