/*
 * parse.h - mxsane-report: one line of a log, in any form a decision line reaches a disk,
 * into the fields the report counts.
 *
 * Forms read: the decision record itself (key=value or JSON, as `-f` writes it, with or
 * without the "PROG[PID]: " tag), behind an RFC 3339 syslog prefix (Debian 12 rsyslog:
 * "2026-12-04T19:07:01.123456+00:00 host mxsane-milter[4711]: ..."; journalctl -o short-iso:
 * "2026-12-04T19:07:01+0000 host ..."), behind a traditional syslog prefix ("Dec  4 19:07:01
 * host ..."), and journalctl -o json (the record is the MESSAGE field).
 */
#ifndef MXSANE_REPORT_PARSE_H
#define MXSANE_REPORT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* A string inside the line or inside the caller's scratch buffer (not NUL-terminated). */
struct rstr {
	const char *p;
	size_t n;
};

struct rdec {
	bool has_time;
	int64_t t_ms; /* UTC, milliseconds since the epoch */
	enum verdict verdict;
	enum action action;
	int would; /* enum action, or -1 when the line has no would= */
	enum role role;
	bool monitor;
	bool repeat; /* repeats the sender verdict already logged for the same transaction */
	struct rstr prog, domain, client, sender, recipient, queue_id;
};

enum rline {
	RL_DECISION, /* *d filled */
	RL_OTHER,    /* a well-formed log line that is not a decision (another program's) */
	RL_BAD,      /* binary, truncated, or a decision that does not parse */
};

/* Scratch bytes parse_line may need: at least the line's length times 2 plus 64. */
#define PARSE_SCRATCH(n) ((n)*2 + 64)

/* Parse line [p, p+n) (no newline).  Unescaped values are written to scratch, which must
 * hold PARSE_SCRATCH(n) bytes; d's strings point into the line or into scratch.
 * year_now/now_ms place the yearless traditional syslog timestamps: the year of now, or
 * the year before when that would put the line more than a day in the future; those
 * timestamps are local time (TZ). */
enum rline parse_line(const char *p, size_t n, struct rdec *d, char *scratch, int64_t now_ms);

/* Parse a --since/--until time: "YYYY-MM-DD", "YYYY-MM-DD[T ]HH:MM[:SS[.frac]]", each with
 * an optional "Z", "+HH:MM" or "+HHMM" (UTC when absent).  false if malformed. */
bool parse_time_arg(const char *s, int64_t *out_ms);

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone involved). */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
