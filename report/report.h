/*
 * report.h - mxsane-report: counting decisions and turning the counts into tables, which
 * out.c writes as aligned text, JSON, CSV or an HTML page.
 */
#ifndef MXSANE_REPORT_REPORT_H
#define MXSANE_REPORT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "parse.h"

struct report_opts {
	bool has_since, has_until;
	int64_t since_ms, until_ms; /* [since, until) */
	const char *domain;         /* history of one domain (case-insensitive), or NULL */
	const char *client;         /* history of one client address, or NULL */
	size_t top;                 /* rows of the top tables */
};

/* What the input held, line by line. */
struct input_counts {
	uint64_t files, lines, decisions, other, bad, overlong, repeats, out_of_range, no_time;
	uint64_t read_errors; /* files that could not be opened or were cut (gzip) */
	bool has_first;
	int64_t first_ms, last_ms; /* of the counted decisions */
};

struct report;

struct report *report_new(const struct report_opts *o);
void report_free(struct report *r);
/* Count one decision (the filters of the options apply).  false: out of memory. */
bool report_add(struct report *r, const struct rdec *d);
struct input_counts *report_input(struct report *r);

/* A table: cells are row-major, ncols per row, owned by the table. */
struct table {
	const char *name;  /* "verdicts": the JSON key, the --table name */
	const char *title; /* for text and HTML */
	size_t ncols;
	const char *const *cols;
	uint32_t numeric; /* bit i: column i is a count */
	size_t nrows, cap;
	char **cells;
};

enum { T_INPUT, T_VERDICTS, T_WOULD, T_SENDERS, T_CLIENTS, T_HOURS, T_HISTORY, T__COUNT };
extern const char *const table_names[T__COUNT];

/* Build every table from the counts; tables[T_HISTORY] is empty without --domain/--client.
 * false: out of memory. */
bool report_tables(struct report *r, struct table tables[T__COUNT]);
void tables_free(struct table tables[T__COUNT]);

/* "2026-12-04T19:07:01Z" (UTC, seconds), or with only the hour: "2026-12-04T19:00Z" */
void fmt_time(char *out, size_t len, int64_t ms, bool hour_only);

/* Writers (out.c).  want[i]: table i is shown.  Return false on a write error. */
bool out_text(FILE *f, const struct table *t, const bool *want);
bool out_json(FILE *f, const struct table *t, const bool *want);
bool out_csv(FILE *f, const struct table *one);
bool out_html(FILE *f, const struct table *t, const bool *want);

#endif
