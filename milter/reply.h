/*
 * reply.h - turn a decision (the engine's check_result) into what libmilter is told: a
 * status (continue, reject, tempfail), the three arguments of smfi_setreply, and the
 * X-MXSane header of a warning.
 *
 * The status is chosen from the reply code's class (5xx reject, 4xx tempfail), never from
 * the action alone, and a reply whose SMTP and enhanced code classes disagree, or that is
 * malformed, becomes reply_internal_failure() (451 4.3.0): an inconsistency can cost a retry,
 * never a bounce.  The text is reply_text()'s (verdict.h): printable, every '%' doubled,
 * "CODE DSN TEXT" within one reply line.  Pure functions: callable from any thread.
 */
#ifndef MXSANE_MILTER_REPLY_H
#define MXSANE_MILTER_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "verdict.h"

/* A header line stays below 998 octets (RFC 5322). */
#define MILTER_HEADER_MAX 900

enum milter_verdict { MV_CONTINUE = 0, MV_REJECT, MV_TEMPFAIL };

struct milter_reply {
	enum milter_verdict what;
	enum verdict verdict;               /* the engine's (or dns_error for a failure) */
	char rcode[4];                      /* "556" (empty for MV_CONTINUE) */
	char xcode[16];                     /* "5.1.10" */
	char text[REPLY_LINE_MAX + 1];      /* escaped: every % doubled, no CR/LF */
	char header[MILTER_HEADER_MAX + 1]; /* X-MXSane value for a warning, "" if none */
};

void milter_reply_from_result(const struct check_result *r, struct milter_reply *out);
/* mxsane's own temporary failure (reply_internal_failure or reply_timeout) with text. */
void milter_reply_failure(struct milter_reply *out, struct reply rep, const char *text);

#endif
