/*
 * mxsane-report - what mxsane decided, from its log lines: counts by verdict and action,
 * the sender domains refused, the clients sending from null-MX or nonexistent domains, one
 * domain's or client's history, decisions per hour, and what monitor mode would have
 * refused.  Reads files (plain or gzip-compressed, as logrotate leaves them) or stdin.
 * See mxsane-report(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "parse.h"
#include "report.h"

#define EX_USAGE_     64
#define EX_CANTCREAT_ 73
#define EX_IOERR_     74

/* Longer lines are skipped and counted (rsyslog's own default limit is 8 KiB; a decision
 * line is at most 4 KiB). */
#define LINE_MAX_IN (64u * 1024u)
#define READ_CHUNK  (1024u * 1024u)

static void usage(FILE *f)
{
	fputs("usage: mxsane-report [options] [FILE...]\n"
	      "Summarise mxsane's decision lines from FILEs (plain or gzip; \"-\" or none: "
	      "stdin).\n"
	      "  --since TIME      count decisions at or after TIME "
	      "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])\n"
	      "  --until TIME      count decisions before TIME\n"
	      "  --domain DOMAIN   only this domain's decisions, with its history\n"
	      "  --client ADDR     only this client address's decisions, with its history\n"
	      "  --top N           rows of the top tables (default 10)\n"
	      "  --table NAME      show only this table (repeatable): input verdicts would "
	      "senders\n"
	      "                    clients hours history\n"
	      "  --json            JSON instead of text\n"
	      "  --csv             one table (--table, default verdicts) as CSV\n"
	      "  --html FILE       write a self-contained HTML page with charts to FILE\n"
	      "  -h, --help        this help;  --version  the version\n",
	      f);
}

struct reader {
	struct report *r;
	struct input_counts *in;
	char *buf, *scratch;
	int64_t now_ms;
	const char *first_bad_file;
	uint64_t first_bad_line;
	bool oom;
};

static void one_line(struct reader *rd, const char *p, size_t n, const char *name, uint64_t lineno)
{
	struct rdec d;
	rd->in->lines++;
	if (n > LINE_MAX_IN) {
		rd->in->overlong++;
		if (!rd->first_bad_file) {
			rd->first_bad_file = name;
			rd->first_bad_line = lineno;
		}
		return;
	}
	switch (parse_line(p, n, &d, rd->scratch, rd->now_ms)) {
	case RL_DECISION:
		if (!report_add(rd->r, &d))
			rd->oom = true;
		break;
	case RL_OTHER: rd->in->other++; break;
	case RL_BAD:
		rd->in->bad++;
		if (!rd->first_bad_file) {
			rd->first_bad_file = name;
			rd->first_bad_line = lineno;
		}
		break;
	}
}

/* Read one input to its end.  false: it could not be opened or read completely. */
static bool read_input(struct reader *rd, const char *name)
{
	gzFile g;
	bool is_stdin = strcmp(name, "-") == 0;
	if (is_stdin) {
		int fd = dup(STDIN_FILENO);
		g = fd >= 0 ? gzdopen(fd, "rb") : NULL;
		if (!g && fd >= 0)
			close(fd);
		name = "(stdin)";
	} else {
		errno = 0;
		g = gzopen(name, "rb");
	}
	if (!g) {
		fprintf(stderr, "mxsane-report: %s: %s\n", name,
		        errno ? strerror(errno) : "cannot open");
		rd->in->read_errors++;
		return false;
	}
	rd->in->files++;
	gzbuffer(g, 256 * 1024);
	size_t have = 0;
	bool skipping = false, ok = true;
	uint64_t lineno = 0;
	for (;;) {
		int got = gzread(g, rd->buf + have, READ_CHUNK);
		if (got < 0) {
			int zerr;
			const char *msg = gzerror(g, &zerr);
			fprintf(stderr, "mxsane-report: %s: %s (the rest of the file is skipped)\n",
			        name, zerr == Z_ERRNO ? strerror(errno) : msg);
			ok = false;
			got = 0;
		}
		size_t end = have + (size_t)got;
		const char *p = rd->buf, *e = rd->buf + end;
		for (;;) {
			const char *nl = memchr(p, '\n', (size_t)(e - p));
			if (!nl)
				break;
			lineno++;
			if (skipping)
				skipping = false; /* the end of an overlong line */
			else
				one_line(rd, p, (size_t)(nl - p), name, lineno);
			p = nl + 1;
		}
		have = (size_t)(e - p);
		if (skipping) {
			have = 0;
		} else if (have > LINE_MAX_IN) {
			/* a line longer than any log line: counted once, skipped to its end */
			rd->in->overlong++;
			rd->in->lines++;
			if (!rd->first_bad_file) {
				rd->first_bad_file = name;
				rd->first_bad_line = lineno + 1;
			}
			skipping = true;
			have = 0;
		} else {
			memmove(rd->buf, p, have);
		}
		if (got == 0) {
			if (have)
				one_line(rd, rd->buf, have, name, ++lineno); /* no final newline */
			break;
		}
	}
	if (ok && !gzeof(g) && !is_stdin)
		ok = false;
	int zerr = gzclose(g);
	if (zerr != Z_OK && ok) {
		fprintf(stderr, "mxsane-report: %s: %s\n", name,
		        zerr == Z_BUF_ERROR ? "the compressed data is cut short" : "read error");
		ok = false;
	}
	if (!ok)
		rd->in->read_errors++;
	return ok;
}

static bool table_index(const char *name, int *out)
{
	for (int i = 0; i < T__COUNT; i++)
		if (strcmp(name, table_names[i]) == 0) {
			*out = i;
			return true;
		}
	return false;
}

int main(int argc, char **argv)
{
	enum {
		O_SINCE = 256,
		O_UNTIL,
		O_DOMAIN,
		O_CLIENT,
		O_TOP,
		O_TABLE,
		O_JSON,
		O_CSV,
		O_HTML,
		O_VERSION
	};
	static const struct option lopts[] = {{"since", required_argument, NULL, O_SINCE},
	                                      {"until", required_argument, NULL, O_UNTIL},
	                                      {"domain", required_argument, NULL, O_DOMAIN},
	                                      {"client", required_argument, NULL, O_CLIENT},
	                                      {"top", required_argument, NULL, O_TOP},
	                                      {"table", required_argument, NULL, O_TABLE},
	                                      {"json", no_argument, NULL, O_JSON},
	                                      {"csv", no_argument, NULL, O_CSV},
	                                      {"html", required_argument, NULL, O_HTML},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {"version", no_argument, NULL, O_VERSION},
	                                      {NULL, 0, NULL, 0}};
	struct report_opts o = {.top = 10};
	bool want[T__COUNT] = {false}, any_table = false, json = false, csv = false;
	const char *html = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		int ti;
		char *e;
		switch (c) {
		case O_SINCE:
		case O_UNTIL:
			if (!parse_time_arg(optarg, c == O_SINCE ? &o.since_ms : &o.until_ms)) {
				fprintf(stderr, "mxsane-report: --%s: not a time: %s\n",
				        c == O_SINCE ? "since" : "until", optarg);
				return EX_USAGE_;
			}
			*(c == O_SINCE ? &o.has_since : &o.has_until) = true;
			break;
		case O_DOMAIN: o.domain = optarg; break;
		case O_CLIENT: o.client = optarg; break;
		case O_TOP:
			errno = 0;
			unsigned long long v = strtoull(optarg, &e, 10);
			if (errno || *e || e == optarg || v == 0 || v > 1000000) {
				fprintf(stderr,
				        "mxsane-report: --top: not a count 1..1000000: %s\n",
				        optarg);
				return EX_USAGE_;
			}
			o.top = (size_t)v;
			break;
		case O_TABLE:
			if (!table_index(optarg, &ti)) {
				fprintf(stderr, "mxsane-report: --table: no table named %s\n",
				        optarg);
				return EX_USAGE_;
			}
			want[ti] = any_table = true;
			break;
		case O_JSON: json = true; break;
		case O_CSV: csv = true; break;
		case O_HTML: html = optarg; break;
		case 'h': usage(stdout); return 0;
		case O_VERSION: printf("mxsane-report %s\n", MXSANE_VERSION); return 0;
		default: usage(stderr); return EX_USAGE_;
		}
	}
	if (json && csv) {
		fputs("mxsane-report: --json and --csv exclude each other\n", stderr);
		return EX_USAGE_;
	}
	int ncsv = 0, csv_table = T_VERDICTS;
	for (int i = 0; i < T__COUNT; i++)
		if (want[i]) {
			ncsv++;
			csv_table = i;
		}
	if (csv && ncsv > 1) {
		fputs("mxsane-report: --csv writes one table: give at most one --table\n", stderr);
		return EX_USAGE_;
	}
	if ((want[T_HISTORY]) && !o.domain && !o.client) {
		fputs("mxsane-report: the history table needs --domain or --client\n", stderr);
		return EX_USAGE_;
	}
	if (!any_table)
		for (int i = 0; i < T__COUNT; i++)
			want[i] = i != T_HISTORY || o.domain || o.client;

	struct reader rd = {.now_ms = (int64_t)time(NULL) * 1000};
	rd.r = report_new(&o);
	rd.buf = malloc(READ_CHUNK + LINE_MAX_IN + 1);
	rd.scratch = malloc(PARSE_SCRATCH(LINE_MAX_IN));
	if (!rd.r || !rd.buf || !rd.scratch) {
		fputs("mxsane-report: out of memory\n", stderr);
		return 71;
	}
	rd.in = report_input(rd.r);
	bool inputs_ok = true;
	if (optind == argc)
		inputs_ok = read_input(&rd, "-");
	for (int i = optind; i < argc && !rd.oom; i++)
		inputs_ok &= read_input(&rd, argv[i]);
	free(rd.buf);
	free(rd.scratch);
	if (rd.oom) {
		fputs("mxsane-report: out of memory\n", stderr);
		report_free(rd.r);
		return 71;
	}
	uint64_t bad = rd.in->bad + rd.in->overlong;
	if (bad)
		fprintf(stderr,
		        "mxsane-report: skipped %llu bad line%s (binary, cut short or too long; "
		        "the "
		        "first: %s line %llu)\n",
		        (unsigned long long)bad, bad == 1 ? "" : "s", rd.first_bad_file,
		        (unsigned long long)rd.first_bad_line);

	struct table t[T__COUNT];
	int rc = inputs_ok ? 0 : 1;
	if (!report_tables(rd.r, t)) {
		fputs("mxsane-report: out of memory\n", stderr);
		rc = 71;
	} else {
		bool w = true;
		if (html) {
			FILE *f = fopen(html, "w");
			if (!f) {
				fprintf(stderr, "mxsane-report: %s: %s\n", html, strerror(errno));
				rc = EX_CANTCREAT_;
			} else {
				bool hw = out_html(f, t, want);
				if (fclose(f) != 0 || !hw) {
					fprintf(stderr, "mxsane-report: %s: write error\n", html);
					rc = EX_IOERR_;
				}
			}
		}
		if (csv)
			w = out_csv(stdout, &t[csv_table]);
		else if (json)
			w = out_json(stdout, t, want);
		else if (!html)
			w = out_text(stdout, t, want);
		if (!w || fflush(stdout) != 0) {
			fputs("mxsane-report: write error on standard output\n", stderr);
			rc = EX_IOERR_;
		}
	}
	tables_free(t);
	report_free(rd.r);
	return rc;
}
