/*
 * reply.h - turn a decision (bridge_answer) into what libmilter is told: a status
 * (continue, reject, tempfail) and the three arguments of smfi_setreply, escaped.
 *
 * The status is chosen from the reply code's class (5xx reject, 4xx tempfail), never from
 * the action alone, and a reply whose SMTP and enhanced code classes disagree, or that is
 * malformed, becomes 451 4.3.0: an inconsistency can cost a retry, never a bounce.
 * Pure functions: no allocation, callable from any thread.
 */
#ifndef MXSANE_MILTER_REPLY_H
#define MXSANE_MILTER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "bridge.h"

/* libmilter refuses a reply text longer than this. */
#define MILTER_MAXREPLYLEN 980
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF; the text is cut
 * so that "CODE DSN TEXT" stays within this many. */
#define MILTER_MAXLINE 510

enum milter_verdict { MV_CONTINUE = 0, MV_REJECT, MV_TEMPFAIL };

struct milter_reply {
	enum milter_verdict what;
	char rcode[4];                 /* "556" (empty for MV_CONTINUE) */
	char xcode[16];                /* "5.1.10" */
	char text[MILTER_MAXREPLYLEN]; /* escaped: every % doubled, no CR/LF or controls */
};

void milter_reply_from_answer(const struct bridge_answer *a, struct milter_reply *r);

/* Escape text for smfi_setreply into out (at most max bytes plus NUL, max < outlen):
 * '%' becomes "%%" (never split), controls and non-ASCII become '?'.  Returns the length. */
size_t milter_escape_text(char *out, size_t outlen, size_t max, const char *text);

#endif
