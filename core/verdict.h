/*
 * verdict.h - the closed set of outcomes mxsane knows, the actions an admin can map them to,
 * and the one table that turns (verdict, action, role) into an SMTP reply.
 *
 * Everything here is pure: no allocation, no I/O, callable from any thread.
 */
#ifndef MXSANE_VERDICT_H
#define MXSANE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

/* Verdict classes (RFC 5321 5.1, RFC 7505, RFC 2181 10.3).  Order is part of the ABI of the
 * configuration: actions[] is indexed by it. */
enum verdict {
	V_OK = 0,       /* at least one usable mail host */
	V_NULL_MX,      /* RFC 7505 null MX: the domain accepts no mail */
	V_NXDOMAIN,     /* the domain does not exist */
	V_NO_MAIL_HOST, /* exists, but no MX and no usable A/AAAA (implicit MX) */
	V_BROKEN_MX,    /* MX records exist, none has a usable target */
	V_MX_CNAME,     /* usable only through MX targets that are aliases */
	V_DNS_ERROR,    /* a lookup that could change the answer failed temporarily */
	V_SKIPPED,      /* nothing to check (null sender, address literal, skip lists, ...) */
	V__COUNT
};

enum role { ROLE_SENDER = 0, ROLE_RECIPIENT = 1 };

/* Ordered by severity: a larger value never yields a "kinder" answer. */
enum action { ACT_ACCEPT = 0, ACT_WARN, ACT_TEMPFAIL, ACT_REJECT, ACT__COUNT };

enum mode { MODE_ENFORCE = 0, MODE_MONITOR };

/* Names as used in configuration files and logs ("null_mx", "reject", "sender", ...).
 * Never NULL for a valid enum value. */
const char *verdict_name(enum verdict v);
const char *action_name(enum action a);
const char *role_name(enum role r);
/* Parse a name; returns false if unknown. */
bool verdict_from_name(const char *s, enum verdict *out);
bool action_from_name(const char *s, enum action *out);

/* The reply for a tempfail or reject action.  `code` is 0 and `dsn` NULL for accept/warn.
 * A tempfail always gets a 4xx with a 4.x.x DSN and a reject a 5xx with a 5.x.x DSN,
 * whatever the verdict, so SMTP and enhanced code classes always agree (Postfix drops a
 * milter that mixes them). */
struct reply {
	int code;        /* 550, 451, ... or 0 */
	const char *dsn; /* "5.7.27", ... or NULL; static storage */
};
struct reply reply_for(enum verdict v, enum action a, enum role r);

/* mxsane's own temporary failures, never a rejection: an internal failure (out of memory,
 * shutting down, a malformed reply) is 451 4.3.0; an answer that did not come in time is
 * 451 4.4.3. */
struct reply reply_internal_failure(void);
struct reply reply_timeout(void);

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets including CRLF. */
#define REPLY_LINE_MAX 510

/*
 * The one builder of reply text: text made printable (text.h; with TEXT_PERCENT every '%'
 * doubled for libmilter) and cut so that "CODE DSN TEXT" fits in REPLY_LINE_MAX octets.
 * reply_text writes the text alone (libmilter takes code, DSN and text apart),
 * reply_line the whole line.  Both return the length written; out is NUL-terminated.
 */
size_t reply_text(char *out, size_t outlen, struct reply r, const char *text, unsigned flags);
size_t reply_line(char *out, size_t outlen, struct reply r, const char *text);

#endif
